"""Hearth's own dlight rules: matmuls without workgroup barriers, for decode, the output head and prompts.

dlight's GEMV gives each output row a workgroup whose threads split the reduction and combine
their partial sums through workgroup memory, a tree of barriers; its Matmul stages tiles through
workgroup memory with two barriers per step of K. On a real GPU that spreads a small layer over
many cores and reuses each load. On SwiftShader (Chromium's CPU WebGPU, what CI and machines
without a GPU run) the invocations of a workgroup are fibers and every barrier switches all of
them: SmolLM2-135M decoded at 15-35 s per token, and dlight's Matmul took 44 of the 47 s of
kernel time in a 37-token prompt.

RowGEMV (decode, output head) and RowGEMM (prompts, in tiles of TOKEN_TILE tokens) give each
thread whole output rows: adjacent threads take adjacent rows, each loops over the full reduction
in registers and writes its results once, so the kernels have no barrier and no workgroup memory.
On a real GPU they are slower than dlight's (fewer threads in flight, a warp reads rows K elements
apart rather than consecutive words, no reuse through workgroup memory), but a forward pass of the
small models Hearth ships stays short there, and one library has to serve both: WebLLM loads one
kernel per function.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import (
    collect_block_iter_vars_used_in_access_region,
    is_gemv,
    normalize,
    normalize_prim_func,
)
from tvm.s_tir.dlight.base import try_inline_contiguous_spatial
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.s_tir.dlight.gpu.matmul import auto_inline_consumer_chain
from tvm.target import Target

# Threads per workgroup: enough rows per workgroup to fill SwiftShader's SIMD lanes and a real
# GPU's warps, few enough that the 576-row layers of a small model still make several workgroups.
ROW_THREADS = 64
# Prompt tokens per thread in RowGEMM: each weight value is decoded once and used this many times.
# 16 rather than 8 decodes each weight value half as often for a chat prompt of 40-odd tokens.
TOKEN_TILE = 16
# Values per quantization block (ggml's 32): RowGEMM widens a block's scale and minimum once.
QUANT_BLOCK = 32


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


class RowGEMM(GPUScheduleRule):
    """A prompt's matmul (tokens x K times a weight [N, K]) with one thread per output row and token tile."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        block_infos = normalize_prim_func(sch)
        if block_infos is None:
            return None
        kinds = [info.dom_kind() for info in block_infos]
        if kinds.count("SSR") != 1 or any("R" in kind and kind != "SSR" for kind in kinds):
            return None
        position = kinds.index("SSR")
        producers, main, rest = block_infos[:position], block_infos[position], block_infos[position + 1 :]
        if any(kind != "SS" for kind in kinds[:position]) or len(rest) > 1 or not all(b.is_injective() for b in rest):
            return None
        block = main.block_rv
        if not _is_matmul(sch.get(block)):
            return None
        # Round the tokens up to whole tiles so that each thread's accumulators have a fixed count
        # (a predicate on the token would leave their size symbolic, which WGSL cannot declare).
        # The padded input is read in place (zero past the prompt); the padded output is never stored.
        weights = {sch.get(producer.block_rv).name_hint for producer in producers}
        sch.pad_einsum(block, [TOKEN_TILE, 1, 1])
        for producer in sch.get_producers(block):
            if sch.get(producer).name_hint not in weights:
                sch.compute_inline(producer)
        tokens, rows, reduction = sch.get_loops(block)
        token_tiles, token = sch.split(tokens, factors=[None, TOKEN_TILE])
        row_groups, row = sch.split(rows, factors=[None, ROW_THREADS])
        sch.reorder(token_tiles, row_groups, row, reduction, token)
        sch.bind(sch.fuse(token_tiles, row_groups), "blockIdx.x")
        sch.bind(row, "threadIdx.x")
        write_back = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(write_back, row, preserve_unit_loops=True)
        # The epilogue (residual add) and the un-padding join the write-back: one store per output.
        auto_inline_consumer_chain(sch, write_back)
        # The weight (dequantized where it is stored quantized) is computed once per element into a
        # register and used for the whole token tile; what the dequantize computes per quantization
        # block first (a widened scale and minimum) once per block of QUANT_BLOCK elements.
        blocks, values = _split_by_block(sch, reduction)
        for position, producer in enumerate(reversed(producers)):  # the weight itself comes last
            sch.compute_at(producer.block_rv, values if position == 0 else blocks, preserve_unit_loops=True)
        for producer in producers:
            sch.set_scope(producer.block_rv, 0, "local")
        sch.decompose_reduction(block, blocks)
        sch.unroll(token)
        return sch


def _split_by_block(sch: s_tir.Schedule, reduction: s_tir.LoopRV) -> tuple[s_tir.LoopRV, s_tir.LoopRV]:
    # (blocks, values) with QUANT_BLOCK values per block where the reduction divides, else the
    # reduction as blocks of one value.
    extent = sch.get(reduction).extent
    factor = QUANT_BLOCK if isinstance(extent, tirx.IntImm) and extent.value % QUANT_BLOCK == 0 else 1
    blocks, values = sch.split(reduction, factors=[None, factor])
    return blocks, values


def _is_matmul(block: tirx.SBlock) -> bool:
    # out[token, row] += x[token, k] * w[row, k]: one read indexed by (token, k), one by (row, k).
    token, row, k = (iter_var.var for iter_var in block.iter_vars)
    used = [collect_block_iter_vars_used_in_access_region(block, read.region) for read in block.reads]
    return {token, k} in used and {row, k} in used
