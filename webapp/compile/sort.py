"""Descending argsort of probability rows for WebGPU: a bitonic sorting network in TIR.

TVM's own GPU sort launches kernels on blockIdx.z, which TVM 0.27's WebGPU code generator
rejects (it reserves z to extend x). This network needs only blockIdx.x: the row is padded to a
power of two n, and each of the log2(n) * (log2(n) + 1) / 2 compare-exchange steps is one launch
of n / 2 threads. Ties keep the lower token id first, so the result is deterministic.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from webapp.compile.tir_util import for_each


@T.macro
def _load(probs, keys, order, vocab, n, i):
    # Pad each row to n with -1, below every probability, so padding sorts last.
    row = i // n
    col = i % n
    keys[row, col] = T.if_then_else(col < vocab, probs[row, T.min(col, vocab - 1)], T.float32(-1))
    order[row, col] = col


@T.macro
def _compare_exchange(keys, order, n, stage, step, p):
    # Pair p of this step compares elements i and i + j; blocks of size 2^(stage+1) alternate direction.
    row = p // (n // 2)
    pair = p % (n // 2)
    j = T.shift_left(1, stage - step)
    i = pair // j * 2 * j + pair % j
    partner = i + j
    descending = T.bitwise_and(T.shift_right(i, stage + 1), 1) == 0
    first_wins = T.Or(
        keys[row, i] > keys[row, partner],
        T.And(keys[row, i] == keys[row, partner], order[row, i] < order[row, partner]),
    )
    if T.Cast("int32", first_wins) != T.Cast("int32", descending):
        key = T.float32(0)
        key = keys[row, i]
        keys[row, i] = keys[row, partner]
        keys[row, partner] = key
        index = T.int32(0)
        index = order[row, i]
        order[row, i] = order[row, partner]
        order[row, partner] = index


@T.macro
def _store(keys, order, sorted_probs, sorted_indices, vocab, n, i):
    row = i // vocab
    col = i % vocab
    sorted_probs[row, col] = keys[row, col]
    sorted_indices[row, col] = order[row, col]


def argsort_descending(vocab: int, threads: int) -> tirx.PrimFunc:
    """probs[batch, vocab] -> (sorted probs, token ids), largest first; threads=1 builds a CPU loop."""
    n = 1 << max(1, (vocab - 1).bit_length())
    log_n = n.bit_length() - 1

    @T.prim_func(s_tir=True)
    def argsort_descending(var_probs: T.handle, var_sorted: T.handle, var_indices: T.handle):
        # op_pattern 8 (opaque): not fusable, and Relax's pattern analysis must not inspect it.
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True, "op_pattern": 8})
        batch = T.int32()
        probs = T.match_buffer(var_probs, (batch, vocab), "float32")
        sorted_probs = T.match_buffer(var_sorted, (batch, vocab), "float32")
        sorted_indices = T.match_buffer(var_indices, (batch, vocab), "int32")
        # Relax's analyses expect a root block around a kernel's body.
        with T.sblock("root"):
            keys = T.sblock_alloc_buffer((batch, n), "float32")
            order = T.sblock_alloc_buffer((batch, n), "int32")
            for_each(batch * n, threads, _load, (probs, keys, order, vocab, n))
            for stage in range(log_n):
                for step in range(stage + 1):
                    for_each(batch * (n // 2), threads, _compare_exchange, (keys, order, n, stage, step))
            for_each(batch * vocab, threads, _store, (keys, order, sorted_probs, sorted_indices, vocab, n))

    return argsort_descending
