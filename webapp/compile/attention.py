"""Hearth's own attention kernels for the paged KV cache, without workgroup memory or barriers.

The paged KV cache takes its attention kernels as functions of the model library. TVM's kernels
for a prompt's self-attention (batch_prefill_ragged_kv), for a prompt over cached keys
(batch_prefill_paged_kv: a chat's next turn, a long prompt's next chunk) and for decoding
(batch_decode_paged_kv) stage queries, keys and values through workgroup memory with barriers
between steps: on SwiftShader, where the invocations of a workgroup are fibers and each barrier switches all of them,
they took 29% of the built-in model's prefill (42 tokens) and 20% of each decoded token, for under
1% of the arithmetic; and compiling TVM's paged prefill took 1.6 s of a cached page load.

These give each (token, head) pair one thread that walks its visible keys once with an online
softmax, keeping its query and output row in registers. They compute what TVM's do (same
arguments, same log2-domain `lse` for merging partial attentions), for caches that rotate q and k
before attention. Llama's family uses them on GPU targets (llama/model.py, adapt_kv_cache), and
the windowed decoding kernel too where the model has a sliding window (Mistral's); Gemma keeps
TVM's, which it rewrites for soft-capping and its window (gemma/softcap.py, window.py).
"""

from __future__ import annotations

import math
from typing import Any

import tvm
from tvm import relax
from tvm.relax.frontend.nn.llm._kernel_common import _declare_length_info, _get_kv_chunk_len, _get_seq_offset
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache
from tvm.script import tirx as T

from webapp.compile.cache_kernels import attention_kernels

# The global symbols of TVM's kernels that Hearth's replace.
RAGGED_PREFILL = "batch_prefill_ragged_kv"
PAGED_PREFILL = "batch_prefill_paged_kv"
DECODE = "batch_decode_paged_kv"
DECODE_WINDOWED = "batch_decode_paged_kv_sliding_window"
# Slots per KV-cache page: TVM's kernels are built for 16, the size WebLLM's engine asks for.
PAGE_SIZE = 16
THREADS = 64
LOG2_E = math.log2(math.e)


# What every kernel here does for its (query row, head): the online softmax's state in registers
# (query pre-scaled into base 2; running = max, sum, score), and the output row and log2-domain lse.
@T.macro(hygienic=False)
def _start(q, row, head):
    for i in T.unroll(head_dim):
        query[i] = T.Cast("float32", q[row, head, i]) * sm_scale * T.float32(LOG2_E)
        acc[i] = T.float32(0)
    running[0] = T.float32(-5e4)
    running[1] = T.float32(0)


@T.macro(hygienic=False)
def _finish(output, lse, row, head):
    for i in T.unroll(head_dim):
        output[row, head, i] = T.Cast(dtype, acc[i] / T.max(running[1], T.float32(1e-30)))
    lse[row, head] = running[0] + T.log2(T.max(running[1], T.float32(1e-30)))


@T.macro(hygienic=False)
def _find_sequence(q_indptr, batch_size, row):
    # The sequence query token `row` belongs to: the last whose first token is <= row.
    batch[0] = 0
    for b in T.serial(batch_size):
        if q_indptr[b] <= row:
            batch[0] = b


def _visible(causal: Any, keys: Any, queries: Any, index: Any) -> Any:
    """How many keys query `index` of `queries` (the sequence's last tokens) sees: causal, up to its own position."""
    return T.if_then_else(causal > 0, T.max(T.min(keys - queries + index + 1, keys), 0), keys)


@T.macro(hygienic=False)
def _attend_key(keys, key_at, values, value_at):
    """Fold one key into the online softmax: its row is keys[key_at + (i,)], its value's values[value_at + (i,)]."""
    running[2] = T.float32(0)
    for i in T.unroll(head_dim):
        running[2] = running[2] + query[i] * T.Cast("float32", keys[key_at + (i,)])
    # Online softmax in base 2: rescale what was summed when the max grows.
    maximum: T.let[T.float32] = T.max(running[0], running[2])
    rescale: T.let[T.float32] = T.exp2(running[0] - maximum)
    weight: T.let[T.float32] = T.exp2(running[2] - maximum)
    running[1] = running[1] * rescale + weight
    for i in T.unroll(head_dim):
        acc[i] = acc[i] * rescale + weight * T.Cast("float32", values[value_at + (i,)])
    running[0] = maximum


@T.macro(hygienic=False)
def _attend_pages(pages, page_values, first_page, kv_head, count, seq, length_info, windowed):
    """Attend over `count` slots of sequence `seq`'s pages, in order: its first ones, or with a sliding
    window (length_info [3, b]) its attention sink's and then its window's."""
    for j in T.serial(count):
        slot: T.let[T.int32] = _get_seq_offset(j, seq, length_info, windowed)
        page: T.let[T.int32] = page_values[first_page + slot // PAGE_SIZE]
        offset: T.let[T.int32] = slot % PAGE_SIZE
        _attend_key(pages, (page, 0, kv_head, offset), pages, (page, 1, kv_head, offset))


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
                        _find_sequence(q_indptr, batch_size, row)
                        q_start: T.let[T.int32] = q_indptr[batch[0]]
                        q_count: T.let[T.int32] = q_indptr[batch[0] + 1] - q_start
                        kv_start: T.let[T.int32] = kv_indptr[batch[0]]
                        kv_count: T.let[T.int32] = kv_indptr[batch[0] + 1] - kv_start
                        visible: T.let[T.int32] = _visible(causal, kv_count, q_count, row - q_start)
                        _start(q, row, head)
                        for j in T.serial(visible):
                            _attend_key(k, (kv_start + j, kv_head), v, (kv_start + j, kv_head))
                        _finish(output, lse, row, head)

    return batch_prefill_ragged_kv


def paged_decode(
    num_kv_heads: int, num_heads: int, head_dim: int, dtype: str, windowed: bool = False
) -> tvm.tirx.PrimFunc:
    """batch_decode_paged_kv with TVM's signature: one thread per (sequence, head) over its cached pages.

    `windowed`: batch_decode_paged_kv_sliding_window, the kernel the runtime calls for "mha_sliding"
    layers, whose length info also has each sequence's window offset and attention sink, read as
    TVM's kernel reads them (so window.py clips it the same way).
    """
    group = num_heads // num_kv_heads

    @T.prim_func(s_tir=True)
    def batch_decode_paged_kv(  # pylint: disable=too-many-arguments,too-many-locals
        var_q: T.handle,  # [b, h_q, d]
        var_pages: T.handle,  # [pages, 2 (k, v), h_kv, PAGE_SIZE, d]
        var_page_indptr: T.handle,  # [b + 1]
        var_page_values: T.handle,  # [nnz_pages]
        var_length_info: T.handle,  # [b]: slots used in each sequence's last page; windowed [3, b] (see above)
        var_k_rope_pos_offset: T.handle,  # [b], unused: k comes rotated
        var_q_rope_position: T.handle,  # [b], unused
        var_output: T.handle,  # [b, h_q, d]
        var_lse: T.handle,  # [b, h_q]
        rotary_mode: T.int32,
        rope_scale: T.float32,
        rope_theta: T.float32,
        sm_scale: T.float32,
    ):
        T.func_attr({"tirx.is_scheduled": True})
        batch_size = T.int32()
        nnz_pages = T.int32()
        max_num_pages = T.int32()
        page_indptr_elem_offset = T.int32()
        page_values_elem_offset = T.int32()
        k_rope_pos_offset_elem_offset = T.int32()
        q_rope_position_elem_offset = T.int32()
        length_info_elem_offset = T.int32()
        q = T.match_buffer(var_q, (batch_size, num_heads, head_dim), dtype)
        pages = T.match_buffer(var_pages, (max_num_pages, 2, num_kv_heads, PAGE_SIZE, head_dim), dtype)
        page_indptr = T.match_buffer(var_page_indptr, (batch_size + 1,), "int32", elem_offset=page_indptr_elem_offset)
        page_values = T.match_buffer(var_page_values, (nnz_pages,), "int32", elem_offset=page_values_elem_offset)
        length_info = _declare_length_info(var_length_info, batch_size, windowed, length_info_elem_offset)
        T.match_buffer(var_k_rope_pos_offset, (batch_size,), "int32", elem_offset=k_rope_pos_offset_elem_offset)
        T.match_buffer(var_q_rope_position, (batch_size,), "int32", elem_offset=q_rope_position_elem_offset)
        output = T.match_buffer(var_output, (batch_size, num_heads, head_dim), dtype)
        lse = T.match_buffer(var_lse, (batch_size, num_heads), "float32")

        for bx in T.thread_binding((batch_size * num_heads + THREADS - 1) // THREADS, thread="blockIdx.x"):
            for tx in T.thread_binding(THREADS, thread="threadIdx.x"):
                with T.sblock("attention"):
                    T.reads()
                    T.writes()
                    query = T.sblock_alloc_buffer((head_dim,), "float32", scope="local")
                    acc = T.sblock_alloc_buffer((head_dim,), "float32", scope="local")
                    running = T.sblock_alloc_buffer((3,), "float32", scope="local")  # max, sum, score
                    pair: T.let[T.int32] = bx * THREADS + tx
                    seq: T.let[T.int32] = pair // num_heads
                    head: T.let[T.int32] = pair % num_heads
                    kv_head: T.let[T.int32] = head // group
                    if seq < batch_size:
                        first_page: T.let[T.int32] = page_indptr[seq]
                        page_count: T.let[T.int32] = page_indptr[seq + 1] - first_page
                        # Slots in use: the whole pages and the last one's (less the window's offset).
                        used: T.let[T.int32] = T.if_then_else(
                            page_count > 0, _get_kv_chunk_len(page_count, PAGE_SIZE, seq, length_info, windowed), 0)
                        _start(q, seq, head)
                        _attend_pages(pages, page_values, first_page, kv_head, used, seq, length_info, windowed)
                        _finish(output, lse, seq, head)

    return batch_decode_paged_kv


def paged_prefill(num_kv_heads: int, num_heads: int, head_dim: int, dtype: str) -> tvm.tirx.PrimFunc:
    """batch_prefill_paged_kv with TVM's signature: one thread per (query token, head) over its
    sequence's cached pages, causal or not.

    The cache calls it when a sequence already holds keys (a chat's next turn, a prompt's next chunk):
    the new tokens attend to the cached ones here, to each other in the ragged kernel, and the two
    partial results merge by their lse. Without a sliding window, as paged_decode.
    """
    group = num_heads // num_kv_heads

    @T.prim_func(s_tir=True)
    def batch_prefill_paged_kv(  # pylint: disable=too-many-arguments,too-many-locals
        var_q: T.handle,  # [total_len, h_q, d]
        var_q_indptr: T.handle,  # [b + 1]
        var_pages: T.handle,  # [pages, 2 (k, v), h_kv, PAGE_SIZE, d]
        var_page_indptr: T.handle,  # [b + 1]
        var_page_values: T.handle,  # [nnz_pages]
        var_length_info: T.handle,  # [b]: slots used in each sequence's last page
        var_k_rope_pos_offset: T.handle,  # [b], unused: k comes rotated
        var_q_rope_position: T.handle,  # [total_len], unused
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
        total_len = T.int32()
        nnz_pages = T.int32()
        max_num_pages = T.int32()
        q_indptr_elem_offset = T.int32()
        page_indptr_elem_offset = T.int32()
        page_values_elem_offset = T.int32()
        k_rope_pos_offset_elem_offset = T.int32()
        q_rope_position_elem_offset = T.int32()
        length_info_elem_offset = T.int32()
        q = T.match_buffer(var_q, (total_len, num_heads, head_dim), dtype)
        q_indptr = T.match_buffer(var_q_indptr, (batch_size + 1,), "int32", elem_offset=q_indptr_elem_offset)
        pages = T.match_buffer(var_pages, (max_num_pages, 2, num_kv_heads, PAGE_SIZE, head_dim), dtype)
        page_indptr = T.match_buffer(var_page_indptr, (batch_size + 1,), "int32", elem_offset=page_indptr_elem_offset)
        page_values = T.match_buffer(var_page_values, (nnz_pages,), "int32", elem_offset=page_values_elem_offset)
        length_info = _declare_length_info(var_length_info, batch_size, False, length_info_elem_offset)
        T.match_buffer(var_k_rope_pos_offset, (batch_size,), "int32", elem_offset=k_rope_pos_offset_elem_offset)
        T.match_buffer(var_q_rope_position, (total_len,), "int32", elem_offset=q_rope_position_elem_offset)
        output = T.match_buffer(var_output, (total_len, num_heads, head_dim), dtype)
        lse = T.match_buffer(var_lse, (total_len, num_heads), "float32")

        for bx in T.thread_binding((total_len * num_heads + THREADS - 1) // THREADS, thread="blockIdx.x"):
            for tx in T.thread_binding(THREADS, thread="threadIdx.x"):
                with T.sblock("attention"):
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
                    if row < total_len:
                        _find_sequence(q_indptr, batch_size, row)
                        q_start: T.let[T.int32] = q_indptr[batch[0]]
                        q_count: T.let[T.int32] = q_indptr[batch[0] + 1] - q_start
                        first_page: T.let[T.int32] = page_indptr[batch[0]]
                        page_count: T.let[T.int32] = page_indptr[batch[0] + 1] - first_page
                        used: T.let[T.int32] = T.if_then_else(
                            page_count > 0, _get_kv_chunk_len(page_count, PAGE_SIZE, batch[0], length_info, False), 0)
                        visible: T.let[T.int32] = _visible(causal, used, q_count, row - q_start)
                        _start(q, row, head)
                        _attend_pages(pages, page_values, first_page, kv_head, visible, batch[0], length_info, False)
                        _finish(output, lse, row, head)

    return batch_prefill_paged_kv


def use_own_attention(
    cache: PagedKVCache, num_kv_heads: int, num_heads: int, head_dim: int, dtype: str, windowed: bool = False
) -> int:
    """Replace TVM's ragged and paged prefill and paged decode kernels of a just-created cache with
    Hearth's; how many.

    `windowed`: the windowed decode kernel too (a model with "mha_sliding" layers; elsewhere it is
    never called, and TVM's is left as it was). For caches that rotate q and k before attention
    (RopeMode NORMAL or NONE): INLINE rotates inside the kernels, which these do not do.
    """
    ours = {
        RAGGED_PREFILL: lambda: ragged_prefill(num_kv_heads, num_heads, head_dim, dtype),
        PAGED_PREFILL: lambda: paged_prefill(num_kv_heads, num_heads, head_dim, dtype),
        DECODE: lambda: paged_decode(num_kv_heads, num_heads, head_dim, dtype),
    }
    if windowed:
        ours[DECODE_WINDOWED] = lambda: paged_decode(num_kv_heads, num_heads, head_dim, dtype, windowed=True)
    builder = relax.BlockBuilder.current()
    replaced = 0
    for gvar, func in attention_kernels(cache):
        name = str(func.attrs["global_symbol"]) if func.attrs and "global_symbol" in func.attrs else ""
        if name in ours:
            builder.update_func(gvar, ours[name]().with_attr("global_symbol", name))
            replaced += 1
    return replaced
