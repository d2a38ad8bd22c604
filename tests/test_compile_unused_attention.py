"""The KV cache's kernels WebLLM never calls are left out of the library, so the page never compiles them.

Structural checks on the compiled tiny libraries; that the models still answer right without them is
the parity tests' job (test_compile_browser.py, test_compile_browser_families.py and
test_default_model_browser.py in WebLLM on SwiftShader, test_compile_llamacpp.py on the CPU target).
"""

from __future__ import annotations

import pytest

from tests.compiled import compiled_models_dir, model_id
from tests.support.wgsl import wgsl_kernels

pytestmark = pytest.mark.compiler

QUANTIZATION = "q4f32_1"
TREE_MASK = ("tree_attn",)
SLIDING_WINDOW = ("sliding_window",)


def _kernel_names(family: str) -> dict[str, set[str]]:
    """The kernels of each of a tiny model's two libraries (fallback and GPU set), by library file."""
    models, _ = compiled_models_dir(QUANTIZATION, family)
    libraries = sorted((models / "libs").glob(f"{model_id(QUANTIZATION, family)}*.wasm"))
    assert len(libraries) == 2, libraries
    return {path.name: set(wgsl_kernels(path.read_bytes())) for path in libraries}


def _having(kernels: set[str], parts: tuple[str, ...]) -> set[str]:
    return {kernel for kernel in kernels if any(part in kernel for part in parts)}


def test_a_model_without_sliding_layers_has_neither_tree_mask_nor_sliding_window_kernels() -> None:
    for library, kernels in _kernel_names("llama").items():
        assert {"batch_prefill_ragged_kv_kernel", "batch_prefill_paged_kv_kernel"} <= kernels, library
        assert _having(kernels, TREE_MASK + SLIDING_WINDOW) == set(), library


def test_gemma_keeps_its_local_layers_sliding_window_kernels_and_drops_the_tree_mask_ones() -> None:
    for library, kernels in _kernel_names("gemma2").items():
        assert _having(kernels, SLIDING_WINDOW), library
        assert _having(kernels, TREE_MASK) == set(), library
