"""Gemma 2's soft-capping of attention scores, written into the paged KV cache's own attention kernels.

Gemma 2 squashes every attention score s (q.k times the attention scale) to cap * tanh(s / cap)
before the softmax. The scores live only inside the KV cache's TIR kernels (TVM's
relax.frontend.nn.llm), which have no such step, so after the cache is created its attention
kernels are rewritten: the one store where each kernel first holds a finished, unmasked score gets
the cap around its value. Masked positions are stored elsewhere (a constant, or a mask test when
the softmax reads the scores), so they stay masked.

The kernels keep scores in base-2 units (s * log2 e, for exp2), and tanh commutes with that scale:
cap * tanh(s / cap) * log2 e = C * tanh(x / C) with x = s * log2 e and C = cap * log2 e. tanh is
computed as sign(x) * (1 - t) / (1 + t) with t = exp(-2|x| / C) = exp2(-2|x| / cap): t <= 1, so
nothing overflows for any score, where WGSL's tanh may be sinh / cosh.
"""

from __future__ import annotations

import math
from typing import Any

import tvm_ffi
from tvm import relax, tirx
from tvm.ir.expr import TensorLoad  # what tirx.BufferLoad builds
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache

from webapp.compile.errors import CompileError
from webapp.compile.cache_kernels import attention_kernels

LOG2E = math.log2(math.e)
# The score stores of TVM 0.27's attention kernels: (buffer stored to, buffer its value reads,
# whether that value multiplies in sm_scale). One of these holds the finished score in each kernel.
SCORE_STORES = (
    ("S_val", "S_val", True),  # CPU paged prefill / decode: S_val[0] = S_val[0] * (sm_scale * log2 e)
    ("attention_score", "result", True),  # CPU ragged prefill, tree: result[0] * log2 e * sm_scale
    ("S_local", "t0", False),  # GPU decode: the all-reduced dot product of q and one key
    ("S_smem", "S_local", False),  # GPU prefill, tree: the finished q.k tile, before masking
)


def capped(score: tirx.PrimExpr, cap: float) -> tirx.PrimExpr:
    """cap * tanh(s / cap) of a base-2 score x = s * log2 e, in base-2 units again."""
    def f32(value: float) -> tirx.PrimExpr:
        return tirx.const(value, "float32")

    x, t = tirx.Var("score", "float32"), tirx.Var("score_decay", "float32")
    sign = tirx.Select(x < f32(0.0), f32(-1.0), f32(1.0))
    squashed = f32(cap * LOG2E) * (f32(1.0) - t) / (f32(1.0) + t) * sign
    return tirx.Let(x, score, tirx.Let(t, tirx.exp2(f32(-2.0 / cap) * tirx.abs(x)), squashed))


def _reads(expr: Any, buffer_name: str) -> bool:
    found = []

    def visit(load: TensorLoad) -> TensorLoad:
        found.extend([load] if load.source.name == buffer_name else [])
        return load

    tvm_ffi.structural_map(expr, [(TensorLoad, visit)])
    return bool(found)


def _uses(expr: Any, var: tirx.Var) -> bool:
    found = []

    def visit(v: tirx.Var) -> tirx.Var:
        found.extend([v] if v.same_as(var) else [])
        return v

    tvm_ffi.structural_map(expr, [(tirx.Var, visit)])
    return bool(found)


def _is_score_store(store: tirx.BufferStore, sm_scale: tirx.Var) -> bool:
    return any(
        store.buffer.name == stored and _reads(store.value, read) and _uses(store.value, sm_scale) == scaled
        for stored, read, scaled in SCORE_STORES
    )


def cap_scores(func: tirx.PrimFunc, cap: float) -> tirx.PrimFunc:
    """An attention kernel (one with an sm_scale parameter) whose scores are soft-capped at `cap`."""
    (sm_scale,) = [param for param in func.params if param.name == "sm_scale"]
    rewritten = []

    def rewrite(store: tirx.BufferStore) -> tirx.BufferStore:
        if not _is_score_store(store, sm_scale):
            return store
        rewritten.append(store)
        return tirx.BufferStore(store.buffer, capped(store.value, cap), store.indices)

    body = tvm_ffi.structural_map(func.body, [(tirx.BufferStore, rewrite)])
    name = func.attrs["global_symbol"] if func.attrs and "global_symbol" in func.attrs else "?"
    if len(rewritten) != 1:
        raise CompileError(
            f"soft-capping attention: TVM's kernel {name} has {len(rewritten)} score stores where Hearth "
            f"expects one (SCORE_STORES in {__name__} follows TVM 0.27's kernels); use --backend mlc-llm, "
            f"which leaves the cap out"
        )
    return func.with_body(body)


def cap_attention_kernels(cache: PagedKVCache, cap: float) -> int:
    """Rewrite every attention kernel the cache was created with, in the module being built; returns how many."""
    builder = relax.BlockBuilder.current()
    kernels = attention_kernels(cache)
    for gvar, func in kernels:
        builder.update_func(gvar, cap_scores(func, cap))
    return len(kernels)
