"""Hearth's own attention kernel for a prompt's tokens attending to each other, without barriers.

The paged KV cache takes its attention kernels as functions of the model library. TVM's kernel for
a prompt's self-attention (`tir_attention_prefill_ragged`) stages tiles of queries, keys and values
through workgroup memory with barriers between steps: on SwiftShader, where the invocations of a
workgroup are fibers and each barrier switches all of them, it took 29% of the built-in model's
prefill (42 tokens), for under 1% of its arithmetic.

This one gives each (query token, head) pair one thread that walks its visible keys once with an
online softmax, keeping its query and output row in registers: no workgroup memory, no barriers.
It computes what TVM's does (same arguments, same log2-domain `lse` for merging with the attention
over cached pages), for caches that rotate q and k before attention (RopeMode NORMAL or NONE).
"""

from __future__ import annotations

import math

import tvm
from tvm.relax.frontend.nn.llm.kv_cache import RopeMode
from tvm.script import tirx as T

# The name of TVM's kernel in the model's IRModule (its PrimFunc's own name).
RAGGED_PREFILL = "batch_prefill_ragged_kv"
THREADS = 64
LOG2_E = math.log2(math.e)


def ragged_prefill(num_kv_heads: int, num_heads: int, head_dim: int, dtype: str) -> tvm.tirx.PrimFunc:
    """batch_prefill_ragged_kv with TVM's signature: one thread per (query token, head), causal or not."""
    group = num_heads // num_kv_heads

    @T.prim_func(s_tir=True)
    def batch_prefill_ragged_kv(  # pylint: disable=too-many-arguments,too-many-locals
        var_q: T.handle,  # [total_len, h_q, d]
        var_q_indptr: T.handle,  # [batch_size + 1]
        var_k: T.handle,  # [total_len, h_kv, d]
        var_v: T.handle,  # [total_len, h_kv, d]
        var_kv_indptr: T.handle,  # [batch_size + 1]
        var_q_rope_position: T.handle,  # [total_q_len], unused: q and k come rotated
        var_k_rope_pos_offset: T.handle,  # [b], unused
        var_output: T.handle,  # [total_len, h_q, d]
        var_lse: T.handle,  # [total_len, h_q]
        causal: T.int32,
        rotary_mode: T.int32,
        rope_scale: T.float32,
        rope_theta: T.float32,
        sm_scale: T.float32,
    ):
        T.func_attr({"tirx.is_scheduled": True})
        batch_size = T.int32()
        qo_len = T.int32()
        kv_len = T.int32()
        q_indptr_elem_offset = T.int32()
        kv_indptr_elem_offset = T.int32()
        q_rope_position_elem_offset = T.int32()
        k_rope_pos_offset_elem_offset = T.int32()
        q = T.match_buffer(var_q, (qo_len, num_heads, head_dim), dtype)
        q_indptr = T.match_buffer(var_q_indptr, (batch_size + 1,), "int32", elem_offset=q_indptr_elem_offset)
        k = T.match_buffer(var_k, (kv_len, num_kv_heads, head_dim), dtype)
        v = T.match_buffer(var_v, (kv_len, num_kv_heads, head_dim), dtype)
        kv_indptr = T.match_buffer(var_kv_indptr, (batch_size + 1,), "int32", elem_offset=kv_indptr_elem_offset)
        T.match_buffer(var_q_rope_position, (qo_len,), "int32", elem_offset=q_rope_position_elem_offset)
        T.match_buffer(var_k_rope_pos_offset, (batch_size,), "int32", elem_offset=k_rope_pos_offset_elem_offset)
        output = T.match_buffer(var_output, (qo_len, num_heads, head_dim), dtype)
        lse = T.match_buffer(var_lse, (qo_len, num_heads), "float32")

        for bx in T.thread_binding((qo_len * num_heads + THREADS - 1) // THREADS, thread="blockIdx.x"):
            for tx in T.thread_binding(THREADS, thread="threadIdx.x"):
                with T.sblock("attention"):
                    # Declared by hand: inferred regions would name the let-bound bounds below.
                    T.reads()
                    T.writes()
                    query = T.sblock_alloc_buffer((head_dim,), "float32", scope="local")
                    acc = T.sblock_alloc_buffer((head_dim,), "float32", scope="local")
                    batch = T.sblock_alloc_buffer((1,), "int32", scope="local")
                    running = T.sblock_alloc_buffer((3,), "float32", scope="local")  # max, sum, score
                    pair: T.let[T.int32] = bx * THREADS + tx
                    row: T.let[T.int32] = pair // num_heads
                    head: T.let[T.int32] = pair % num_heads
                    kv_head: T.let[T.int32] = head // group
                    if row < qo_len:
                        # The sequence this token belongs to: the last whose first token is <= row.
                        batch[0] = 0
                        for b in T.serial(batch_size):
                            if q_indptr[b] <= row:
                                batch[0] = b
                        q_start: T.let[T.int32] = q_indptr[batch[0]]
                        q_count: T.let[T.int32] = q_indptr[batch[0] + 1] - q_start
                        kv_start: T.let[T.int32] = kv_indptr[batch[0]]
                        kv_count: T.let[T.int32] = kv_indptr[batch[0] + 1] - kv_start
                        # Causal: query i of n sees the keys up to its own position among kv_count.
                        visible: T.let[T.int32] = T.if_then_else(causal > 0, T.min(kv_count - q_count + (row - q_start) + 1, kv_count), kv_count)
                        for i in T.unroll(head_dim):
                            query[i] = T.Cast("float32", q[row, head, i]) * sm_scale * T.float32(LOG2_E)
                            acc[i] = T.float32(0)
                        running[0] = T.float32(-5e4)
                        running[1] = T.float32(0)
                        for j in T.serial(visible):
                            running[2] = T.float32(0)
                            for i in T.unroll(head_dim):
                                running[2] = running[2] + query[i] * T.Cast("float32", k[kv_start + j, kv_head, i])
                            # Online softmax in base 2: rescale what was summed when the max grows.
                            maximum: T.let[T.float32] = T.max(running[0], running[2])
                            rescale: T.let[T.float32] = T.exp2(running[0] - maximum)
                            weight: T.let[T.float32] = T.exp2(running[2] - maximum)
                            running[1] = running[1] * rescale + weight
                            for i in T.unroll(head_dim):
                                acc[i] = acc[i] * rescale + weight * T.Cast("float32", v[kv_start + j, kv_head, i])
                            running[0] = maximum
                        for i in T.unroll(head_dim):
                            output[row, head, i] = T.Cast(dtype, acc[i] / T.max(running[1], T.float32(1e-30)))
                        lse[row, head] = running[0] + T.log2(T.max(running[1], T.float32(1e-30)))

    return batch_prefill_ragged_kv


def use_own_attention(mod: tvm.IRModule, num_kv_heads: int, num_heads: int, head_dim: int, dtype: str,
                      rope_mode: int) -> tvm.IRModule:
    """The module with TVM's ragged prefill kernel replaced by ragged_prefill (GPU targets)."""
    if rope_mode == RopeMode.INLINE or RAGGED_PREFILL not in [gv.name_hint for gv in mod.get_global_vars()]:
        return mod  # INLINE rotates inside the kernel, which this one does not do
    gv = mod.get_global_var(RAGGED_PREFILL)
    kernel = ragged_prefill(num_kv_heads, num_heads, head_dim, dtype).with_attr("global_symbol", RAGGED_PREFILL)
    mod = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    mod[gv] = kernel
    return mod
