"""A sliding window, kept by the paged KV cache's windowed kernels themselves (Gemma's local layers, Mistral's).

Why not the cache's own per-layer window: TVM 0.27's runtime builds two page tables per step, the
whole sequence's for full-attention layers and the window's for "mha_sliding" ones, and copies both
to the device. On CUDA and the CPU each copy lands at its own offset of one merged buffer
(CachedPagedKVCacheAuxDataManager); on every other device, WebGPU included, the plain manager copies
both into the same per-depth buffers (page_indptr_on_depths_device_[d], page_indices_..., the
length info), the window's last. So in WebGPU every full-attention layer reads the window's page
table: right while the sequence fits in the window, wrong past it.

So the runtime gets a window longer than any sequence (RUNTIME_WINDOW): both tables are then the
same and the overwrite is harmless. The windowed kernels (those the runtime calls for "mha_sliding"
layers, whose length info has three rows: last page length, window offset, sink) clip to the real
window themselves: where they read the window's offset they read max(0, keys - window) more, so they
see only the last `window` keys; the windowed prefill kernel, whose mask for the new chunk's queries
is built around its window, is made again for the real one.
"""

from __future__ import annotations

from typing import Any

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.ir.expr import TensorLoad
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache, _attention_prefill, _attention_prefill_cpu

from webapp.compile.errors import CompileError
from webapp.compile.cache_kernels import attention_kernels

# Longer than any sequence a KV cache holds, so the runtime's window never clips (int32 positions).
RUNTIME_WINDOW = 1 << 30
# Row of the window offset in a windowed kernel's length info [3, batch].
WINDOW_OFFSET_ROW = 1


def _buffer(func: tirx.PrimFunc, *names: str) -> Any:
    (buffer,) = [b for b in func.params if b.name in names]
    return buffer


def _is_windowed(func: tirx.PrimFunc) -> bool:
    lengths = [b for b in func.params if b.name == "length_info"]
    return len(lengths) == 1 and len(lengths[0].ty.shape) == 2


def _is_row(load: TensorLoad, row: int) -> bool:
    first = load.indices[0]
    return isinstance(first, tirx.IntImm) and int(first.value) == row


def clip_to_window(func: tirx.PrimFunc, window: int) -> tirx.PrimFunc:
    """A windowed attention kernel that attends over the last `window` keys of each sequence only."""
    lengths = _buffer(func, "length_info")
    indptr = _buffer(func, "page_table_indptr", "page_indptr")
    page_size = int(_buffer(func, "pages").ty.shape[3])
    clipped = []

    def clip(load: TensorLoad) -> Any:
        if not load.source.same_as(lengths) or not _is_row(load, WINDOW_OFFSET_ROW):
            return load
        seq = load.indices[1]
        # The kernel's own key count: (pages - 1) * page_size + last page length - offset + sink.
        keys = ((tirx.BufferLoad(indptr, [seq + 1]) - tirx.BufferLoad(indptr, [seq]) - 1) * page_size
                + tirx.BufferLoad(lengths, [0, seq]) - load + tirx.BufferLoad(lengths, [2, seq]))
        clipped.append(load)
        return load + tirx.max(keys - window, 0)

    body = tvm_ffi.structural_map(func.body, [(TensorLoad, clip)])
    if not clipped:
        raise CompileError(
            f"keeping the sliding window: TVM's kernel {func.attrs['global_symbol']} never reads its window "
            f"offset (window.py follows TVM 0.27's kernels); use --backend mlc-llm"
        )
    return func.with_body(body)


def _masked_keys_keep_maximum(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """TVM 0.27's CPU paged-prefill kernel, where a masked key leaves the running maximum as it was.

    Its masked branch sets only the score, so the update after it reads a new maximum that is unset
    (a query whose first key is masked: NaN) or the previous query's. Only the windowed kernel masks
    keys of earlier chunks, so only it needs this.
    """
    kept = []

    def keep(branch: tirx.IfThenElse) -> tirx.IfThenElse:
        update = branch.then_case  # new_m[0] = max(m_val[0], S_val[0])
        if not (isinstance(update, tirx.BufferStore) and update.buffer.name == "new_m" and branch.else_case):
            return branch
        kept.append(branch)
        unchanged = tirx.BufferStore(update.buffer, update.value.a, update.indices)
        return tirx.IfThenElse(branch.condition, update, tirx.SeqStmt([unchanged, branch.else_case]))

    body = tvm_ffi.structural_map(func.body, [(tirx.IfThenElse, keep)])
    if len(kept) != 1:
        raise CompileError(
            f"keeping the sliding window: TVM's kernel {func.attrs['global_symbol']} does not update its running "
            f"maximum in one masked branch (window.py follows TVM 0.27's kernels); use --backend mlc-llm"
        )
    return func.with_body(body)


def _windowed_prefill(config: Any, dtype: str, target: tvm.target.Target) -> tirx.PrimFunc:
    # TVM's own factory, as TIRPagedKVCache calls it, with the real window for its chunk mask.
    heads = (config.num_key_value_heads, config.num_attention_heads, config.head_dim, dtype, True, {})
    if target.kind.name == "llvm":
        return _masked_keys_keep_maximum(_attention_prefill_cpu(*heads, sliding_window_size=config.sliding_window))
    return _attention_prefill(*heads, target, sliding_window_size=config.sliding_window)


def window_kernels(cache: PagedKVCache, config: Any, dtype: str) -> int:
    """Make the cache's windowed kernels keep config.sliding_window (see the module docstring); returns how many."""
    builder = relax.BlockBuilder.current()
    target = tvm.target.Target.current(allow_none=False)
    windowed = [(gvar, func) for gvar, func in attention_kernels(cache) if _is_windowed(func)]
    for gvar, func in windowed:
        if any(b.name == "q_indptr" for b in func.params):  # prefill, not decode
            func = _windowed_prefill(config, dtype, target)
        builder.update_func(gvar, clip_to_window(func, config.sliding_window))
    return len(windowed)
