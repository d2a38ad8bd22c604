"""Hearth's own dlight rules: a GEMV without workgroup barriers, for decode and the output head.

dlight's GEMV gives each output row a workgroup whose threads split the reduction and combine
their partial sums through workgroup memory, a tree of barriers. On a real GPU that spreads a
small layer over many cores. On SwiftShader (Chromium's CPU WebGPU, what CI and machines without
a GPU run) the invocations of a workgroup are fibers and every barrier switches all of them:
decoding one token of SmolLM2-135M took about 35 s, 7 s of it in the output head alone.

RowGEMV gives each thread whole output rows: adjacent threads take adjacent rows, each loops over
the full reduction in a register and writes its result once, so the kernel has no barrier and no
workgroup memory. On SwiftShader that is 5-10 times faster per kernel. On a real GPU it is slower
than dlight's GEMV (fewer threads in flight, and a warp reads rows K elements apart rather than
consecutive words), but a decode step stays far below a frame's time for the small models Hearth
ships, and the same library has to serve both: WebLLM loads one kernel per function.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import is_gemv, normalize, normalize_prim_func
from tvm.s_tir.dlight.base import try_inline_contiguous_spatial
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.target import Target

# Threads per workgroup: enough rows per workgroup to fill SwiftShader's SIMD lanes and a real
# GPU's warps, few enough that the 576-row layers of a small model still make several workgroups.
ROW_THREADS = 64


class RowGEMV(GPUScheduleRule):
    """A GEMV (matrix times one vector, the weight possibly dequantized inline) with one thread per output row."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        block_infos = try_inline_contiguous_spatial(sch, normalize_prim_func(sch))
        if block_infos is None or len(block_infos) not in (1, 2):
            return None
        epilogue = block_infos[1] if len(block_infos) == 2 else None
        if epilogue is not None and not epilogue.is_injective():
            return None
        main = block_infos[0]
        if len(main.iters) not in (2, 3) or is_gemv(sch, main) is None:
            return None
        # Only rows laid out along the reduction (x @ W^T, W[rows, K]): each thread then walks
        # one row. The other layout stays with dlight's GEMV.
        if not normalize(sch, main):
            return None
        block = main.block_rv
        batch, rows, reduction, inner = sch.get_loops(block)
        bx, tx = sch.split(sch.fuse(batch, rows), factors=[None, ROW_THREADS])
        sch.bind(bx, "blockIdx.x")
        sch.bind(tx, "threadIdx.x")
        # The running sum lives in a register; the output (and any epilogue) is written once.
        write_back = sch.cache_write(block, 0, "local")
        if epilogue is not None:
            # The epilogue (bias, residual) joins the write-back: no float round trip through memory.
            sch.reverse_compute_inline(epilogue.block_rv)
        sch.reverse_compute_at(write_back, tx, preserve_unit_loops=True)
        sch.decompose_reduction(block, reduction)
        # The inner loop runs over the values of one packed word (or one value when unpacked):
        # unrolled, the word is loaded once and its fields shifted out.
        sch.unroll(inner)
        return sch
