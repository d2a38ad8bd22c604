"""A post-norm, its residual add and the next norm compile to one kernel; pre-norm blocks are left alone.

Structural checks on the compiled library and the Relax module; that the fused kernel computes the
same tokens is the parity tests' job (test_compile_browser_families.py for both libraries on
SwiftShader, test_compile_llamacpp.py on the CPU target).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compiled import compiled_models_dir, model_id
from tests.support.wgsl import wgsl_kernels
from tests.tinycheckpoint import FAMILIES, write_tiny_checkpoint
from webapp.compile.norm_fusion import KERNEL_NAME

pytestmark = pytest.mark.compiler

QUANTIZATION = "q4f32_1"


def _fused_calls(family: str, tmp_path: Path) -> int:
    """How many calls of the fused kernel the tiny model's decode has after the pass (WebGPU target)."""
    import tvm
    from tvm import relax

    from webapp.compile.build import export_module
    from webapp.compile.norm_fusion import FuseNormAddNorm
    from webapp.compile.pipeline import read_checkpoint
    from webapp.compile.quantize import get_quantization
    from webapp.compile.target import webgpu_tvm_target

    checkpoint = write_tiny_checkpoint(tmp_path / family, **FAMILIES[family])
    model = read_checkpoint(checkpoint, get_quantization(QUANTIZATION)).model
    target = webgpu_tvm_target()
    mod, _ = export_module(model, target)
    with target:
        mod = FuseNormAddNorm(target)(mod)
    callees = []

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and expr.op == tvm.ir.Op.get("relax.call_tir"):
            callees.append(expr.args[0].name_hint)

    relax.analysis.post_order_visit(mod["decode"].body, visit)
    return callees.count(KERNEL_NAME)


@pytest.mark.parametrize(("family", "layers"), [("gemma2", 2), ("gemma3", 6)])
def test_post_norm_blocks_fuse_two_pairs_of_norms_per_layer(family: str, layers: int, tmp_path: Path) -> None:
    # After attention and after the MLP: post-norm + residual + the next norm (the last: the final norm).
    assert FAMILIES[family].get("num_hidden_layers", 2) == layers
    assert _fused_calls(family, tmp_path) == 2 * layers


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_pre_norm_blocks_keep_the_residual_add_in_the_matmul(family: str, tmp_path: Path) -> None:
    # Their residual add is the o_proj / down_proj matmul's epilogue: fusing it into the norm saves nothing.
    assert _fused_calls(family, tmp_path) == 0


def test_both_gemma_libraries_hold_the_fused_kernel_and_the_fallback_one_has_no_barrier() -> None:
    models, _ = compiled_models_dir(QUANTIZATION, "gemma2")
    libraries = {path.name: path.read_bytes() for path in (models / "libs").glob(f"{model_id(QUANTIZATION, 'gemma2')}*.wasm")}
    assert len(libraries) == 2  # the fallback set's and the GPU set's
    kernels = {name: wgsl_kernels(library) for name, library in libraries.items()}
    for name, found in kernels.items():
        fused = [kernel for kernel in found if kernel.startswith(KERNEL_NAME)]
        assert fused, name
        barrier = any("workgroupBarrier" in found[kernel] for kernel in fused)
        assert barrier == name.endswith("-gpu.wasm"), name  # the GPU set combines a row's sums in a workgroup
