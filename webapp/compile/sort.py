"""Descending argsort of probability rows for WebGPU: a merge sort by rank, with no barriers.

Each launch merges neighbouring sorted runs of length L into runs of 2L. Every element is its own
thread: its place in the merged run is its place in its own run plus the number of elements of the
neighbouring run that come before it, found by binary search. Elements are ordered by probability,
largest first, and ties by the lower token id, so the order is strict and the places form a
permutation. A 49152-token vocabulary takes 16 merge launches and one to load.

Nothing is shared between threads within a launch, so there are no workgroup barriers: on
SwiftShader (CPU WebGPU, whose workgroup invocations are fibers) the bitonic network this replaces,
with its in-workgroup phases, took about 3.5 s per sampled token. On a real GPU the work is
O(n log^2 n) reads, tiny next to a model's forward pass. TVM's own GPU sort cannot be used: it
launches kernels on blockIdx.z, which TVM 0.27's WebGPU code generator rejects.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from webapp.compile.tir_util import for_each


def _before(key_a, index_a, key_b, index_b):
    # The sort's order: larger probability first, then lower token id.
    return T.Or(key_a > key_b, T.And(key_a == key_b, index_a < index_b))


@T.macro
def _load(probs, keys, order, vocab, i):
    keys[0, i // vocab, i % vocab] = probs[i // vocab, i % vocab]
    order[0, i // vocab, i % vocab] = i % vocab


@T.macro
def _merge(keys, order, sorted_probs, sorted_indices, vocab, stage, last, i):
    # Element i of a run of length 2^stage moves to its place in the merged run of 2^(stage + 1).
    # Stage s reads copy s % 2 of the scratch and writes the other; the last stage writes the outputs.
    src = stage % 2
    row = i // vocab
    col = i % vocab
    run_start = T.shift_left(T.shift_right(col, stage), stage)
    partner_start = T.bitwise_xor(run_start, T.shift_left(1, stage))
    partner_len = T.max(0, T.min(T.shift_left(1, stage), vocab - partner_start))
    key = keys[src, row, col]
    index = order[src, row, col]
    # How many of the partner run's elements come before this one: a binary search over it.
    ahead = 0
    for k in range(stage + 1):
        probe = ahead + T.shift_left(1, stage - k)
        # Nested rather than `and`: TIR evaluates both sides, and the read must stay inside the run.
        if probe <= partner_len:
            other = partner_start + probe - 1
            if _before(keys[src, row, other], order[src, row, other], key, index):
                ahead = probe
    place = T.shift_left(T.shift_right(col, stage + 1), stage + 1) + (col - run_start) + ahead
    if last:
        sorted_probs[row, place] = key
        sorted_indices[row, place] = index
    else:
        keys[1 - src, row, place] = key
        order[1 - src, row, place] = index


def argsort_descending(vocab: int, threads: int) -> tirx.PrimFunc:
    """probs[batch, vocab] -> (sorted probs, token ids), largest first; threads=1 builds CPU loops."""
    stages = max(1, (vocab - 1).bit_length())

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
            # Two scratch copies: each merge reads one and writes the other.
            keys = T.sblock_alloc_buffer((2, batch, vocab), "float32")
            order = T.sblock_alloc_buffer((2, batch, vocab), "int32")
            out = (sorted_probs, sorted_indices)
            for_each(batch * vocab, threads, _load, (probs, keys, order, vocab))
            for stage in range(stages - 1):
                for_each(batch * vocab, threads, _merge, (keys, order, *out, vocab, stage, False))
            for_each(batch * vocab, threads, _merge, (keys, order, *out, vocab, stages - 1, True))

    return argsort_descending
