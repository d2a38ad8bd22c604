"""Top-p sampling from sorted probabilities in one launch: one workgroup per sample, no GPU scan.

WebLLM draws u in [0, 1) and calls sample_with_top_p(sorted_probs, sorted_indices, u, row, top_p).
The nucleus is the sorted prefix up to the first token whose cumulative probability reaches top_p;
the sample is the first token whose cumulative probability exceeds u times the nucleus' mass
(TVM's sample_top_p_top_k_from_sorted_prob without top-k). Each of the workgroup's threads sums a
contiguous chunk; each then adds up the chunks before its own, finds its chunk's crossings, and
the first crossing wins. TVM's version needs a multi-launch GPU scan and
gave wrong tokens on WebGPU (SwiftShader) for top_p = 1.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

_NONE = 2**30  # "no crossing in this chunk": larger than any token position


def sample_top_p(vocab: int, threads: int) -> tirx.PrimFunc:
    """The PrimFunc behind sample_with_top_p for a vocabulary; threads=1 builds CPU loops."""
    gpu = threads > 1
    chunk = (vocab + threads - 1) // threads
    scope = "shared" if gpu else "global"

    def lanes(count: int):
        return T.thread_binding(count, thread="threadIdx.x") if gpu else T.serial(count)

    def samples(count):
        return T.thread_binding(count, thread="blockIdx.x") if gpu else T.serial(count)

    @T.prim_func(s_tir=True)
    def sample_top_p(
        var_probs: T.handle, var_indices: T.handle, var_uniform: T.handle, var_rows: T.handle,
        var_top_p: T.handle, var_tokens: T.handle,
    ):  # fmt: skip
        # op_pattern 8 (opaque): not fusable, and Relax's pattern analysis must not inspect it.
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True, "op_pattern": 8})
        batch, count = T.int32(), T.int32()
        probs = T.match_buffer(var_probs, (batch, vocab), "float32")
        indices = T.match_buffer(var_indices, (batch, vocab), "int32")
        uniform = T.match_buffer(var_uniform, (count,), "float32")
        rows = T.match_buffer(var_rows, (count,), "int32")
        top_p = T.match_buffer(var_top_p, (batch,), "float32")
        tokens = T.match_buffer(var_tokens, (count,), "int32")
        with T.sblock("root"):
            for s in samples(count):
                with T.sblock("sample"):
                    # Opaque block: it only scopes the workgroup buffers, so no access regions to infer.
                    T.reads()
                    T.writes()
                    partial = T.sblock_alloc_buffer((threads,), "float32", scope=scope)
                    cut = T.sblock_alloc_buffer((threads,), "int32", scope=scope)
                    cut_mass = T.sblock_alloc_buffer((threads,), "float32", scope=scope)
                    pick = T.sblock_alloc_buffer((threads,), "int32", scope=scope)
                    row = rows[s]
                    # Each thread writes only its own slot of the workgroup arrays, and every write is
                    # unconditional: barriers then go between the phases, never inside a branch.
                    for t in lanes(threads):
                        total = T.float32(0)
                        for k in range(chunk):
                            if t * chunk + k < vocab:
                                total += probs[row, t * chunk + k]
                        partial[t] = total
                    # Where the running sum first reaches top_p in each chunk.
                    for t in lanes(threads):
                        running = T.float32(0)
                        for c in range(t):
                            running += partial[c]
                        found = _NONE
                        found_mass = T.float32(0)
                        for k in range(chunk):
                            if t * chunk + k < vocab:
                                running += probs[row, t * chunk + k]
                                if running >= top_p[row] and found == _NONE:
                                    found = t * chunk + k
                                    found_mass = running
                        cut[t] = found
                        cut_mass[t] = found_mass
                    # The first crossing closes the nucleus (the whole row when top_p is never reached);
                    # then the first token in each chunk whose running sum exceeds u times its mass.
                    for t in lanes(threads):
                        last = vocab - 1
                        mass = T.float32(0)
                        for c in range(threads):
                            mass += partial[c]
                        for c in range(threads):
                            # Read into locals first: TVM cannot track workgroup reads inside conditions.
                            crossing = cut[threads - 1 - c]
                            crossing_mass = cut_mass[threads - 1 - c]
                            if crossing != _NONE:
                                last = crossing
                                mass = crossing_mass
                        running = T.float32(0)
                        for c in range(t):
                            running += partial[c]
                        found = _NONE
                        for k in range(chunk):
                            if t * chunk + k < vocab:
                                running += probs[row, t * chunk + k]
                                if running > uniform[s] * mass and found == _NONE:
                                    found = T.min(t * chunk + k, last)
                        pick[t] = T.min(found, last)
                    # The first pick wins (clamped to the nucleus: rounding can put u * mass past its end).
                    for t in lanes(threads):
                        if t == 0:
                            chosen = _NONE
                            for c in range(threads):
                                chosen = T.min(chosen, pick[c])
                            tokens[s] = indices[row, chosen]

    return sample_top_p
