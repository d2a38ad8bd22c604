"""The attention kernels a paged KV cache was just created with, in the module being built."""

from __future__ import annotations

import tvm_ffi
from tvm import relax, tirx
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache


def attention_kernels(cache: PagedKVCache) -> list[tuple[relax.GlobalVar, tirx.PrimFunc]]:
    """(global var, TIR function) of each kernel of the cache that computes attention (takes sm_scale)."""
    builder = relax.BlockBuilder.current()
    module = builder.get()
    kernels: list[tuple[relax.GlobalVar, tirx.PrimFunc]] = []

    def collect(gvar: relax.GlobalVar) -> relax.GlobalVar:
        func = module[gvar] if gvar in module else None
        attention = isinstance(func, tirx.PrimFunc) and any(p.name == "sm_scale" for p in func.params)
        if attention and not any(gvar.same_as(seen) for seen, _ in kernels):
            kernels.append((gvar, func))
        return gvar

    # The cache is a variable bound to its creating call, whose arguments name every kernel.
    tvm_ffi.structural_map(builder.lookup_binding(cache._expr), [(relax.GlobalVar, collect)])  # noqa: SLF001
    return kernels
