"""The model compiled for the native LLVM CPU target decodes exactly like the numpy reference.

This catches math bugs (RoPE, GQA, quantization layout, fused projections, prefill chunking)
in seconds, before the browser test spends minutes linking and loading a WebGPU library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.tinycheckpoint import write_tiny_checkpoint

pytestmark = pytest.mark.compiler

STEPS = 16
# A prompt longer than the prefill chunk below, so prefill runs in several calls as in WebLLM.
PROMPT = "The hearth keeps the fire; quantization keeps four bits for every weight of the model."
PREFILL_CHUNK = 8

VARIANTS = {
    "llama-q0f32": ("q0f32", {}),
    "llama-q4f32_1": ("q4f32_1", {}),
    "tied-q4f32_1": ("q4f32_1", {"tie_word_embeddings": True}),
    "qwen2-bias-q0f32": ("q0f32", {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}),
    "llama3-rope-q4f32_1": (
        "q4f32_1",
        {
            "rope_theta": 500000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        },
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_cpu_library_decodes_like_the_numpy_reference(variant: str, tmp_path: Path) -> None:
    import tvm
    from tokenizers import Tokenizer

    from webapp.compile.build import build_library
    from webapp.compile.native import NativeChat
    from webapp.compile.pipeline import read_checkpoint
    from webapp.compile.quantize import get_quantization
    from webapp.compile.reference import ReferenceLlama, float_weights, read_params
    from webapp.compile.weights import convert_weights

    quantization_name, overrides = VARIANTS[variant]
    quantization = get_quantization(quantization_name)
    source = write_tiny_checkpoint(tmp_path / "checkpoint", **overrides)
    checkpoint = read_checkpoint(source, quantization, prefill_chunk_size=PREFILL_CHUNK)
    library = build_library(checkpoint.model, tvm.target.Target({"kind": "llvm"}))
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    convert_weights(checkpoint.loader.load, library.params, quantization, weights_dir, lambda _line: None)
    stored = read_params(weights_dir)
    prompt = Tokenizer.from_file(str(source / "tokenizer.json")).encode(PROMPT).ids
    assert len(prompt) > 2 * PREFILL_CHUNK

    expected, expected_logits = ReferenceLlama(checkpoint.config, float_weights(stored)).generate(prompt, STEPS)
    actual, actual_logits = NativeChat(library.executable, library.metadata, stored).generate(prompt, STEPS)

    assert actual == expected
    for step, (ours, theirs) in enumerate(zip(actual_logits, expected_logits)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-3 * np.abs(theirs).max(), err_msg=f"step {step}")


def test_metadata_lists_every_parameter_in_load_order(tmp_path: Path) -> None:
    import tvm

    from webapp.compile.build import build_library
    from webapp.compile.pipeline import read_checkpoint
    from webapp.compile.quantize import get_quantization

    quantization = get_quantization("q4f32_1")
    checkpoint = read_checkpoint(write_tiny_checkpoint(tmp_path), quantization)
    library = build_library(checkpoint.model, tvm.target.Target({"kind": "llvm"}))
    metadata = library.metadata
    vm = tvm.relax.VirtualMachine(library.executable, tvm.cpu())
    reported = __import__("json").loads(str(vm["_metadata"]()))

    params = checkpoint.model.params
    assert reported["params"] == [{"name": p.name, "shape": list(p.shape), "dtype": p.dtype} for p in params]
    assert reported["prefill_chunk_size"] == checkpoint.config.prefill_chunk_size
    assert reported["kv_state_kind"] == "kv_cache"
    assert reported["memory_usage"]["prefill"] > 0
    assert reported == metadata
    # Linear and embedding weights are 4-bit codes with scales; norms stay float.
    names = {p.name: p.dtype for p in params}
    assert names["model.layers.0.self_attn.qkv_proj.q_weight"] == "uint32"
    assert names["model.embed_tokens.q_scale"] == "float32"
    assert names["model.norm.weight"] == "float32"
