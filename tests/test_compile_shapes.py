"""Real model shapes compile for WebGPU with every kernel inside SwiftShader's limits (no weights needed)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.compiler, pytest.mark.timeout(900)]

# config.json fields of published checkpoints (the ones WebLLM users run most), as Hugging Face ships them.
SHAPES = {
    "SmolLM2-135M": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
        "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "max_position_embeddings": 8192, "tie_word_embeddings": True,
    },
    "Qwen2.5-0.5B": {
        "architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
        "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": True,
    },
    "Llama-3.2-1B": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
        "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("model", "quantization"), [("SmolLM2-135M", "q4f32_1"), ("Qwen2.5-0.5B", "q4f16_1"), ("Llama-3.2-1B", "q4f32_1")]
)
def test_published_shapes_compile_for_webgpu_within_limits(model: str, quantization: str) -> None:
    from webapp.compile.architectures import config_from_hf
    from webapp.compile.build import build_library, define_model
    from webapp.compile.limits import check_kernels, webgpu_source
    from webapp.compile.quantize import get_quantization
    from webapp.compile.target import webgpu_tvm_target

    config = config_from_hf(SHAPES[model])
    library = build_library(define_model(config, get_quantization(quantization)), webgpu_tvm_target())
    metadata = library.metadata
    usages = check_kernels(webgpu_source(library.executable))  # raises naming the first kernel over a limit
    names = {usage.name for usage in usages}
    assert any(name.startswith("batch_decode_paged_kv") for name in names)
    assert any("argsort_descending" in name for name in names)
    assert metadata["prefill_chunk_size"] == 1024 and metadata["context_window_size"] == 4096
    # Embedding codes+scales and final norm; per layer two norms and four quantized projections
    # (codes+scales each), plus the q/k/v bias for Qwen2. WebLLM loads exactly these by name.
    per_layer = 2 + 4 * 2 + (1 if config.attention_bias else 0)
    assert len(metadata["params"]) == 3 + per_layer * config.num_hidden_layers
