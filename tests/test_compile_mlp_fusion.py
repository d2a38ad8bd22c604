"""A decode step's gate/up projection computes silu(gate) * up in its own kernel, in both libraries.

Structural checks on the compiled libraries and their VM code; that the gated kernel computes the
same tokens is the parity tests' job (test_compile_browser.py and test_compile_browser_families.py
for both libraries on SwiftShader, test_compile_llamacpp.py on the CPU target).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.compiled import compiled_models_dir, model_id
from tests.support.wgsl import wgsl_kernels
from tests.tinycheckpoint import FAMILIES, write_tiny_checkpoint
from webapp.compile.mlp_fusion import KERNEL_NAME

pytestmark = pytest.mark.compiler

LAYERS = 2  # the tiny Llama's and Qwen 3's (tests/tinycheckpoint.py)
# What FuseOps makes of the split, silu and multiply on their own: fused_split_silu_multiply, fused_split2_silu_...
UNFUSED = re.compile(r"split\d*_silu\d*_multiply")


def _calls(family: str, quantization: str, schedule_set: str, tmp_path: Path) -> dict[str, list[str]]:
    """The kernels decode and prefill call, in order, in the tiny model's WebGPU library of one set."""
    from webapp.compile.build import build_library
    from webapp.compile.pipeline import read_checkpoint
    from webapp.compile.quantize import get_quantization
    from webapp.compile.schedule_sets import SCHEDULE_SETS
    from webapp.compile.target import webgpu_tvm_target

    checkpoint = write_tiny_checkpoint(tmp_path / family, **FAMILIES[family])
    model = read_checkpoint(checkpoint, get_quantization(quantization)).model
    text = build_library(model, webgpu_tvm_target(), SCHEDULE_SETS[schedule_set]).executable.as_text()
    functions = {part.split(":", 1)[0]: part for part in text.split("\n@")}
    return {
        name: [line.split()[1] for line in functions[name].splitlines() if line.strip().startswith("call ")]
        for name in ("decode", "prefill")
    }


@pytest.mark.parametrize("schedule_set", ["fallback", "gpu"])
@pytest.mark.parametrize(("family", "quantization"), [
    ("llama", "q4f32_1"), ("llama", "q4f32_gguf"), ("llama", "q0f32"), ("qwen3", "q4f32_1"),
])  # fmt: skip
def test_decode_calls_one_gated_kernel_per_layer_and_no_split_silu_multiply(
    family: str, quantization: str, schedule_set: str, tmp_path: Path
) -> None:
    calls = _calls(family, quantization, schedule_set, tmp_path)
    gated = [name for name in calls["decode"] if name.endswith(KERNEL_NAME)]
    assert len(gated) == LAYERS
    # The quantized weight is dequantized inside it (fused_dequantize*_NT_matmul_silu_multiply).
    assert all(name.startswith("fused_dequantize") for name in gated) == (quantization != "q0f32")
    assert not [name for name in calls["decode"] if UNFUSED.search(name)]
    # Prompts keep their GEMM and the separate SwiGLU kernel.
    assert len([name for name in calls["prefill"] if UNFUSED.search(name)]) == LAYERS
    assert not [name for name in calls["prefill"] if name.endswith(KERNEL_NAME)]


@pytest.mark.parametrize("quantization", ["q4f32_1", "q4f32_gguf"])
def test_both_libraries_hold_the_gated_kernel_and_the_fallback_one_has_no_barrier(quantization: str) -> None:
    models, _ = compiled_models_dir(quantization)
    libraries = {path.name: path.read_bytes() for path in (models / "libs").glob(f"{model_id(quantization)}*.wasm")}
    assert len(libraries) == 2  # the fallback set's and the GPU set's
    for name, library in libraries.items():
        kernels = wgsl_kernels(library)
        gated = [body for kernel, body in kernels.items() if kernel.endswith(f"{KERNEL_NAME}_kernel")]
        assert len(gated) == 1, name
        # The GPU set combines each output's partial sums across a workgroup.
        assert ("workgroupBarrier" in gated[0]) == name.endswith("-gpu.wasm"), name
