"""Hearth's own dlight rules: matmuls without workgroup barriers, for decode, the output head and prompts.

dlight's GEMV gives each output row a workgroup whose threads split the reduction and combine
their partial sums through workgroup memory, a tree of barriers; its Matmul stages tiles through
workgroup memory with two barriers per step of K. On a real GPU that spreads a small layer over
many cores and reuses each load. On SwiftShader (Chromium's CPU WebGPU, what CI and machines
without a GPU run) the invocations of a workgroup are fibers and every barrier switches all of
them: SmolLM2-135M decoded at 15-35 s per token, and dlight's Matmul took 44 of the 47 s of
kernel time in a 37-token prompt.

RowGEMV (decode, output head) and RowGEMM (prompts, in tiles of TOKEN_TILE tokens, up to
ROWS_PER_THREAD rows per thread so that each input value loaded serves several rows) give each
thread whole output rows: adjacent threads take adjacent rows, each loops over the full reduction
in registers and writes its results once, so the kernels have no barrier and no workgroup memory.
On a real GPU they are slower than dlight's (fewer threads in flight, a warp reads rows K elements
apart rather than consecutive words, no reuse through workgroup memory), but a forward pass of the
small models Hearth ships stays short there, and one library has to serve both: WebLLM loads one
kernel per function.
"""

from __future__ import annotations

import tvm
import tvm_ffi
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
# Output rows per thread in RowGEMM: each input value loaded is used for this many rows.
ROWS_PER_THREAD = 4
# Values per quantization block (ggml's 32): RowGEMM widens a block's scale and minimum once.
QUANT_BLOCK = 32
# Values per packed word in a quantization block's inner loop (4-bit codes: 8 per uint32).
PACKED_LANES = 8


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
        # The padded input is staged per reduction step in registers (past the prompt it repeats the
        # last token, see _clamp_padded_reads); the padded output is never stored.
        weights = {sch.get(producer.block_rv).name_hint for producer in producers}
        sch.pad_einsum(block, [TOKEN_TILE, 1, 1])
        padded_inputs = [p for p in sch.get_producers(block) if sch.get(p).name_hint not in weights]
        tokens, rows, reduction = sch.get_loops(block)
        token_tiles, token = sch.split(tokens, factors=[None, TOKEN_TILE])
        per_thread = _rows_per_thread(sch.get(rows).extent)
        row_groups, row, row_rep = sch.split(rows, factors=[None, ROW_THREADS, per_thread])
        blocks, words, values = _split_by_block(sch, reduction)
        sch.reorder(token_tiles, row_groups, row, blocks, words, values, row_rep, token)
        sch.bind(sch.fuse(token_tiles, row_groups), "blockIdx.x")
        sch.bind(row, "threadIdx.x")
        write_back = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(write_back, row, preserve_unit_loops=True)
        # The epilogue (residual add) and the un-padding join the write-back: one store per output.
        auto_inline_consumer_chain(sch, write_back)
        # The weight (dequantized where it is stored quantized) is computed once per element into a
        # register and used for the whole token tile; what the dequantize computes per quantization
        # block first (a widened scale and minimum) once per block of QUANT_BLOCK elements. Each
        # input value loaded is used for all the thread's rows.
        for position, producer in enumerate(reversed(producers)):  # the weight itself comes last
            sch.compute_at(producer.block_rv, values if position == 0 else blocks)
        for padded in padded_inputs:
            sch.compute_at(padded, values)
        staged = [producer.block_rv for producer in producers] + padded_inputs
        for stage in staged:
            sch.set_scope(stage, 0, "local")
        if producers:
            # The packed words the weight's values come from: loaded once per word, not per value.
            value_block = producers[-1].block_rv
            for index, buffer in enumerate(_global_reads(sch, value_block)):
                if buffer:
                    packed = sch.cache_read(value_block, index, "local")
                    sch.compute_at(packed, words)
                    staged.append(packed)
        sch.decompose_reduction(block, blocks)
        for stage in staged:
            sch.unroll(sch.get_loops(stage)[-1])
        sch.unroll(row_rep)
        sch.unroll(token)
        padded_names = {sch.get(padded).name_hint for padded in padded_inputs}
        return s_tir.Schedule(_clamp_padded_reads(sch.mod["main"], padded_names))


def _clamp_padded_reads(func: tirx.PrimFunc, block_names: set[str]) -> tirx.PrimFunc:
    # pad_einsum reads the input as `t < seq_len ? x[t, k] : 0`, which WGSL code generation turns
    # into a branch per value: on SwiftShader those branches took most of a prompt matmul's time.
    # In the padding blocks the read becomes x[min(t, seq_len - 1), k], always in bounds: a padded
    # token then repeats the last one, and its outputs are never stored (the write-back keeps its
    # predicate), so no branch is needed.
    if_then_else = tvm.ir.Op.get("prim.if_then_else")

    def clamp(call: tvm.ir.expr.Call) -> tvm.ir.expr.Expr:
        if not call.op.same_as(if_then_else):
            return call
        condition, then, otherwise = call.args
        zero = isinstance(otherwise, tirx.FloatImm | tirx.IntImm) and otherwise.value == 0
        if not (zero and isinstance(condition, tvm.ir.prim.expr.LT) and isinstance(then, tvm.ir.expr.TensorLoad)):
            return call
        bounded = [tirx.min(i, condition.b - 1) if tvm_ffi.structural_equal(i, condition.a) else i for i in then.indices]
        return tirx.BufferLoad(then.source, bounded)

    def in_padding(block: s_tir.SBlock) -> s_tir.SBlock:
        return tvm_ffi.structural_map(block, [(tvm.ir.expr.Call, clamp)]) if block.name_hint in block_names else block

    return tvm_ffi.structural_map(func, [(s_tir.SBlock, in_padding)])


def _global_reads(sch: s_tir.Schedule, block: s_tir.SBlockRV) -> list[bool]:
    # For each buffer the block reads: whether it is global memory (a kernel argument).
    return [read.source.scope() == "global" for read in sch.get(block).reads]


def _rows_per_thread(extent: tirx.PrimExpr) -> int:
    # The most output rows per thread (up to ROWS_PER_THREAD) that tile the layer exactly, so no
    # thread carries a predicate per row.
    rows = extent.value if isinstance(extent, tirx.IntImm) else 0
    return next((n for n in range(ROWS_PER_THREAD, 1, -1) if rows % (n * ROW_THREADS) == 0), 1)


def _split_by_block(sch: s_tir.Schedule, reduction: s_tir.LoopRV) -> tuple[s_tir.LoopRV, s_tir.LoopRV, s_tir.LoopRV]:
    # (blocks, words, lanes): QUANT_BLOCK values per block in words of PACKED_LANES where the
    # reduction divides, else the reduction as blocks of one value.
    extent = sch.get(reduction).extent
    whole = isinstance(extent, tirx.IntImm) and extent.value % QUANT_BLOCK == 0
    words, lanes = (QUANT_BLOCK // PACKED_LANES, PACKED_LANES) if whole else (1, 1)
    blocks, word, lane = sch.split(reduction, factors=[None, words, lanes])
    return blocks, word, lane


def _is_matmul(block: tirx.SBlock) -> bool:
    # out[token, row] += x[token, k] * w[row, k]: one read indexed by (token, k), one by (row, k).
    token, row, k = (iter_var.var for iter_var in block.iter_vars)
    used = [collect_block_iter_vars_used_in_access_region(block, read.region) for read in block.reads]
    return {token, k} in used and {row, k} in used
