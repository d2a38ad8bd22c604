"""Descending argsort of probability rows for WebGPU: a bitonic sorting network in TIR.

TVM's own GPU sort launches kernels on blockIdx.z, which TVM 0.27's WebGPU code generator
rejects (it reserves z to extend x). This network needs only blockIdx.x. Each row is padded to
a power of two n with -1 (below every probability). A workgroup of `threads` threads sorts a
block of 2 * threads elements in workgroup memory, running every compare-exchange step whose
pairs lie inside its block in one launch; only steps with longer strides run as launches over
the whole row. Rows of at most 2 * threads entries sort in one launch; a 49152-token vocabulary
takes 36 launches (a launch per step would be 138). Ties keep the lower token id first.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from webapp.compile.tir_util import for_each


@T.macro
def _order_pair(keys, order, row, i, partner, descending):
    # Put i and partner in the wanted direction (the lower token id wins ties). Both are written
    # unconditionally: no branch around workgroup-memory writes, where barriers must not go.
    key_i = keys[row, i]
    key_p = keys[row, partner]
    index_i = order[row, i]
    index_p = order[row, partner]
    first_wins = T.Or(key_i > key_p, T.And(key_i == key_p, index_i < index_p))
    swap = T.Cast("int32", first_wins) != T.Cast("int32", descending)
    keys[row, i] = T.Select(swap, key_p, key_i)
    keys[row, partner] = T.Select(swap, key_i, key_p)
    order[row, i] = T.Select(swap, index_p, index_i)
    order[row, partner] = T.Select(swap, index_i, index_p)


@T.macro
def _global_step(keys, order, n, stage, step, p):
    # Pair p of a step with stride j = 2^(stage - step); blocks of 2^(stage+1) alternate direction.
    row = p // (n // 2)
    pair = p % (n // 2)
    j = T.shift_left(1, stage - step)
    i = pair // j * 2 * j + pair % j
    _order_pair(keys, order, row, i, i + j, T.bitwise_and(T.shift_right(i, stage + 1), 1) == 0)


@T.macro
def _load(probs, keys, order, vocab, n, i):
    row = i // n
    col = i % n
    keys[row, col] = T.if_then_else(col < vocab, probs[row, T.min(col, vocab - 1)], T.float32(-1))
    order[row, col] = col


@T.macro
def _store(keys, order, sorted_probs, sorted_indices, vocab, i):
    row = i // vocab
    col = i % vocab
    sorted_probs[row, col] = keys[row, col]
    sorted_indices[row, col] = order[row, col]


@T.macro
def _block_step(shared_keys, shared_order, bx, block, n, stage, j, tx):
    # Pair tx of one stride-j step inside the block; the direction comes from the row position.
    i = tx // j * 2 * j + tx % j
    position = (bx * block + i) % n
    _order_pair(shared_keys, shared_order, 0, i, i + j, T.bitwise_and(T.shift_right(position, stage + 1), 1) == 0)


@T.macro(hygienic=False)
def _block_sort(src, dst, scratch, vocab, n, block, threads, batch, merge_stage, first, last):
    # One launch: each workgroup loads a block of 2 * threads elements into workgroup memory, runs
    # the strides that stay inside it, and stores it back (or, the last time, into the outputs).
    # first: every stage up to the block size, from the probabilities; else: the strides below
    # the block size of stage merge_stage.
    probs, keys, order, sorted_probs, sorted_indices = src[0], scratch[0], scratch[1], dst[0], dst[1]
    for bx in T.thread_binding(batch * (n // block), "blockIdx.x"):
        with T.sblock("block_sort"):
            # Opaque block: it only scopes the workgroup buffers, so no access regions to infer.
            T.reads()
            T.writes()
            shared_keys = T.sblock_alloc_buffer((1, block), "float32", scope="shared")
            shared_order = T.sblock_alloc_buffer((1, block), "int32", scope="shared")
            for half in range(2):
                for tx in T.thread_binding(threads, "threadIdx.x"):
                    src_row = (bx * block + half * threads + tx) // n
                    src_col = (bx * block + half * threads + tx) % n
                    if first:
                        shared_keys[0, half * threads + tx] = T.if_then_else(
                            src_col < vocab, probs[src_row, T.min(src_col, vocab - 1)], T.float32(-1)
                        )
                        shared_order[0, half * threads + tx] = src_col
                    else:
                        shared_keys[0, half * threads + tx] = keys[src_row, src_col]
                        shared_order[0, half * threads + tx] = order[src_row, src_col]
            if first:
                for stage in range(block.bit_length() - 1):
                    for step in range(stage + 1):
                        for tx in T.thread_binding(threads, "threadIdx.x"):
                            stride = T.shift_left(1, stage - step)
                            _block_step(shared_keys, shared_order, bx, block, n, stage, stride, tx)
            else:
                for step in range(block.bit_length() - 1):
                    for tx in T.thread_binding(threads, "threadIdx.x"):
                        _block_step(
                            shared_keys, shared_order, bx, block, n, merge_stage,
                            T.shift_left(1, block.bit_length() - 2 - step), tx,
                        )  # fmt: skip
            for half in range(2):
                for tx in T.thread_binding(threads, "threadIdx.x"):
                    dst_row = (bx * block + half * threads + tx) // n
                    dst_col = (bx * block + half * threads + tx) % n
                    if last:
                        if dst_col < vocab:
                            sorted_probs[dst_row, dst_col] = shared_keys[0, half * threads + tx]
                            sorted_indices[dst_row, dst_col] = shared_order[0, half * threads + tx]
                    else:
                        keys[dst_row, dst_col] = shared_keys[0, half * threads + tx]
                        order[dst_row, dst_col] = shared_order[0, half * threads + tx]


def argsort_descending(vocab: int, threads: int) -> tirx.PrimFunc:
    """probs[batch, vocab] -> (sorted probs, token ids), largest first; threads=1 builds CPU loops."""
    n = 1 << max(1, (vocab - 1).bit_length())
    log_n = n.bit_length() - 1
    if threads == 1:
        return _argsort_loops(vocab, n, log_n)
    block = min(n, 2 * threads)
    block_log = block.bit_length() - 1
    block_threads = block // 2

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
            src, dst, scratch = (probs,), (sorted_probs, sorted_indices), (keys, order)
            if log_n == block_log:
                _block_sort(src, dst, scratch, vocab, n, block, block_threads, batch, 0, True, True)
            else:
                _block_sort(src, dst, scratch, vocab, n, block, block_threads, batch, 0, True, False)
                for merge_stage in range(block_log, log_n - 1):
                    for merge_step in range(merge_stage - block_log + 1):
                        for_each(batch * (n // 2), threads, _global_step, (keys, order, n, merge_stage, merge_step))
                    _block_sort(src, dst, scratch, vocab, n, block, block_threads, batch, merge_stage, False, False)
                for last_step in range(log_n - block_log):
                    for_each(batch * (n // 2), threads, _global_step, (keys, order, n, log_n - 1, last_step))
                _block_sort(src, dst, scratch, vocab, n, block, block_threads, batch, log_n - 1, False, True)

    return argsort_descending


def _argsort_loops(vocab: int, n: int, log_n: int) -> tirx.PrimFunc:
    # The same network as plain loops, every step over the whole row (for the CPU build).
    @T.prim_func(s_tir=True)
    def argsort_descending(var_probs: T.handle, var_sorted: T.handle, var_indices: T.handle):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True, "op_pattern": 8})
        batch = T.int32()
        probs = T.match_buffer(var_probs, (batch, vocab), "float32")
        sorted_probs = T.match_buffer(var_sorted, (batch, vocab), "float32")
        sorted_indices = T.match_buffer(var_indices, (batch, vocab), "int32")
        with T.sblock("root"):
            keys = T.sblock_alloc_buffer((batch, n), "float32")
            order = T.sblock_alloc_buffer((batch, n), "int32")
            for_each(batch * n, 1, _load, (probs, keys, order, vocab, n))
            for stage in range(log_n):
                for step in range(stage + 1):
                    for_each(batch * (n // 2), 1, _global_step, (keys, order, n, stage, step))
            for_each(batch * vocab, 1, _store, (keys, order, sorted_probs, sorted_indices, vocab))

    return argsort_descending
