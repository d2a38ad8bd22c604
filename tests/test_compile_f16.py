"""The shader-f16 quantizations compile, link and convert, though this machine's GPU cannot run them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.compiled import compiled_models_dir, model_id
from webapp.mlc.files import HEARTH_META, TENSOR_CACHE
from webapp.mlc.model_dir import read_model_dir

pytestmark = [pytest.mark.compiler, pytest.mark.timeout(1800)]


@pytest.mark.parametrize("quantization", ["q0f16", "q4f16_1"])
def test_f16_model_is_complete_and_stored_in_half_precision(quantization: str) -> None:
    from webapp.compile.reference import read_params

    models, _ = compiled_models_dir(quantization)
    model_dir = models / model_id(quantization)
    model = read_model_dir(model_dir)
    assert model.quantization == quantization
    assert model.required_features == ["shader-f16"]
    meta = json.loads((model_dir / HEARTH_META).read_text())
    library = models / "libs" / meta["model_lib"]
    # The WGSL travels inside the library; f16 kernels must declare the extension.
    assert b"enable f16;" in library.read_bytes()

    dtypes = {
        record["name"]: record["dtype"]
        for shard in json.loads((model_dir / TENSOR_CACHE).read_text())["records"]
        for record in shard["records"]
    }
    assert dtypes["model.norm.weight"] == "float16"
    if quantization == "q0f16":
        assert set(dtypes.values()) == {"float16"}
    else:
        assert dtypes["model.layers.0.mlp.down_proj.q_weight"] == "uint32"
        assert dtypes["model.layers.0.mlp.down_proj.q_scale"] == "float16"
        params = read_params(model_dir)
        assert np.isfinite(params["model.layers.0.mlp.down_proj.q_scale"]).all()


def test_gemma_builds_for_webgpu_in_half_precision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Gemma's own rotary kernel keeps q and k in the model's dtype (they were float32 beside float16 v)."""
    from tests.tinycheckpoint import FAMILIES, write_tiny_checkpoint
    from webapp.compile.build import build_library
    from webapp.compile.quantize import get_quantization
    from webapp.compile.source import read_checkpoint
    from webapp.compile.target import webgpu_tvm_target

    directory = write_tiny_checkpoint(tmp_path / "gemma2", **FAMILIES["gemma2"])
    library = build_library(read_checkpoint(directory, get_quantization("q4f16_1")).model, webgpu_tvm_target())
    dtypes = {param.name: param.dtype for param in library.params}
    assert dtypes["model.layers.0.self_attn.qkv_proj.q_scale"] == "float16"
