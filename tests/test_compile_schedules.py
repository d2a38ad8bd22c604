"""Decode's matmuls and the argsort compile to WGSL with no workgroup barrier (slow on SwiftShader).

A structural check, not a timing: SwiftShader runs a workgroup's invocations as fibers, so every
barrier costs a switch of all of them. Exactness is the browser test's job (test_compile_browser).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.wgsl import wgsl_kernels
from tests.tinycheckpoint import write_tiny_checkpoint

pytestmark = pytest.mark.compiler


@pytest.mark.parametrize("quantization", ["q0f32", "q4f32_1", "q4f32_gguf"])
def test_decode_matmuls_and_argsort_have_no_barriers(quantization: str, tmp_path: Path) -> None:
    import tvm
    from tvm import relax

    from webapp.compile.build import export_module, pipeline
    from webapp.compile.limits import webgpu_source
    from webapp.compile.pipeline import read_checkpoint
    from webapp.compile.quantize import get_quantization
    from webapp.compile.target import webgpu_tvm_target

    spec = get_quantization(quantization)
    model = read_checkpoint(write_tiny_checkpoint(tmp_path / "checkpoint"), spec).model
    target = webgpu_tvm_target()
    mod, meta = export_module(model, target)
    # Only decode and argsort_probs (and what they call) are kept: every matmul left is a decode GEMV.
    with target, tvm.transform.PassContext(config={"tirx.disable_cse_tir": True}):
        executable = relax.build(mod, target=target, relax_pipeline=pipeline(target, meta, ("decode", "argsort_probs")))
    kernels = wgsl_kernels(webgpu_source(executable))
    checked = [name for name in kernels if "matmul" in name or "argsort" in name]
    assert any("argsort" in name for name in checked)
    assert sum("matmul" in name for name in checked) >= 4  # qkv, o, gate/up, down (and the head)
    for name in checked:
        assert "workgroupBarrier" not in kernels[name], name
        assert "var<workgroup>" not in kernels[name], name
