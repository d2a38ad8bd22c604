"""The TVM targets Hearth compiles model libraries for, in TVM 0.27's JSON-dict form."""

from __future__ import annotations

from typing import Any

# WebAssembly host code: the Relax VM, the runtime and TIR host stubs all run as wasm32 in the page.
WASM32_MTRIPLE = "wasm32-unknown-unknown-wasm"

# WebGPU guarantees 256 invocations per workgroup (its default maxComputeInvocationsPerWorkgroup);
# SwiftShader and many laptop GPUs allow no more, so kernels are scheduled for that.
WEBGPU_MAX_THREADS_PER_BLOCK = 256

# With subgroups, WebLLM's "sg32" libraries assume 32-wide subgroups.
WEBGPU_SUBGROUP_SIZE = 32


def wasm32_host() -> dict[str, Any]:
    """The LLVM host target that compiles to wasm32 (what TVM links into a tvmjs library)."""
    return {"kind": "llvm", "mtriple": WASM32_MTRIPLE}


def webgpu_target(*, subgroups: bool = False) -> dict[str, Any]:
    """The WebGPU target with a wasm32 host, as the JSON dict `tvm.target.Target(...)` takes.

    `tvm.compile` wants the Target object, not the dict: see `webgpu_tvm_target`.

    `subgroups=True` lets kernels use WGSL subgroup operations (the browser must then offer the
    `subgroups` feature), like WebLLM's `sg32` model libraries.
    """
    target: dict[str, Any] = {
        "kind": "webgpu",
        "host": wasm32_host(),
        "max_num_threads": WEBGPU_MAX_THREADS_PER_BLOCK,
    }
    if subgroups:
        target["supports_subgroups"] = True
        target["thread_warp_size"] = WEBGPU_SUBGROUP_SIZE
    return target


def webgpu_tvm_target(*, subgroups: bool = False) -> Any:
    """`webgpu_target()` as a `tvm.target.Target`, ready for `tvm.compile(mod, target=...)`."""
    import tvm  # heavy: only the compiler pays for it

    return tvm.target.Target(webgpu_target(subgroups=subgroups))
