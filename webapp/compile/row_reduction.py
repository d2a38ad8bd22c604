"""A dlight rule for a row's reduction by any reducer (max, min, sum...): one workgroup per row.

dlight's Reduction rule takes only reductions written as `x = x + y`, and its GeneralReduction
wants a softmax-like chain of blocks, so a plain `max` over the last axis fell through to dlight's
Fallback: one thread per row, reading the whole row serially and storing its running maximum to
memory after every element. The sampling ABI's softmax (abi.py) takes such a max over the whole
vocabulary for every token: on SwiftShader it was 17% of the built-in model's decode step (90 ms of
527 ms, scripts/bench_kernels.py), beside a sum over the same row that dlight's Reduction scheduled
and that took under 1 ms.

Here the row's reduction is split across a workgroup: each thread folds every THREADS-th element
into a register (rfactor), then the workgroup combines the THREADS partial results (TVM lowers a
reduction loop bound to threads into a tree through workgroup memory, log2(THREADS) barriers per
row: a handful, not one per element as in the kernels schedules.py avoids).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.target import Target

# Threads per row: a row of a 49152-word vocabulary is 768 loads per thread.
THREADS = 64


class RowReduction(GPUScheduleRule):
    """A kernel that is one reduction over its innermost axis, by any commutative reducer."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        block_infos = normalize_prim_func(sch)
        if block_infos is None or len(block_infos) != 1:
            return None
        kinds = [info.kind for info in block_infos[0].iters]
        if kinds.count("R") != 1 or kinds[-1] != "R" or set(kinds[:-1]) - {"S"}:
            return None
        block = block_infos[0].block_rv
        *spatial, reduction = sch.get_loops(block)
        row = sch.fuse(*spatial) if spatial else sch.add_unit_loop(block)
        _, lane = sch.split(reduction, factors=[None, THREADS])
        partial = sch.rfactor(lane, factor_axis=0)
        # The partial results: each thread's own, in registers.
        row, step, lane = sch.get_loops(partial)
        sch.reorder(lane, step)
        sch.bind(row, "blockIdx.x")
        sch.bind(lane, "threadIdx.x")
        sch.set_scope(partial, 0, "local")
        sch.decompose_reduction(partial, step)
        # The row's result: the workgroup's threads combine their partial ones.
        sch.reverse_compute_at(block, row)
        sch.bind(sch.get_loops(block)[-1], "threadIdx.x")
        return sch
