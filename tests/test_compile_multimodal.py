"""Gemma 3's multimodal checkpoints (Gemma3ForConditionalGeneration) read as the text-only model inside them.

The same tiny weights in the Gemma3ForCausalLM layout and in the multimodal one (text_config, text tensors
under either prefix transformers has used, vision tensors beside them) must give the same configuration
and the same stored parameters, bit for bit; test_compile_llamacpp.py decodes the multimodal ones
against llama.cpp. Refusals of multimodal inputs are in test_compile_refusals.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.tinycheckpoint import FAMILIES, GEMMA3_MULTIMODAL_NAMES, write_gemma3_multimodal, write_tiny_checkpoint

# A config.json shaped like Gemma 3 4B's: text_config gives only what differs from transformers' defaults.
GEMMA3_4B = {
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "eos_token_id": [1, 106],
    "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
                    "num_hidden_layers": 34, "sliding_window": 1024,
                    "rope_scaling": {"rope_type": "linear", "factor": 8.0}},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "num_hidden_layers": 27},
}  # fmt: skip


def test_text_config_takes_transformers_defaults_for_what_it_leaves_out() -> None:
    from webapp.compile.architectures import config_from_hf

    config = config_from_hf(GEMMA3_4B)
    assert config.model_type == "gemma3"
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (2560, 10240, 34)
    # Gemma3TextConfig's defaults: 8 heads sharing 4 key/value heads of 256, scores scaled by 1/sqrt(256),
    # a 262208-token vocabulary, rope bases 1e6 (global) and 1e4 (local), a global layer every 6th.
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (8, 4, 256)
    assert (config.query_pre_attn_scalar, config.vocab_size, config.rms_norm_eps) == (256, 262208, 1e-6)
    assert (config.rope_theta, config.rope_local_theta, config.rope_scale) == (1e6, 1e4, 8.0)
    assert (config.sliding_window, config.sliding_window_pattern, config.qk_norm) == (1024, 6, True)
    assert config.final_logit_softcapping is None and config.attn_logit_softcapping is None


def test_text_config_keeps_the_outer_stop_tokens() -> None:
    from webapp.compile.architectures import text_model_config

    text, layout = text_model_config(GEMMA3_4B)
    assert layout is not None and layout.hf_architecture == "Gemma3ForConditionalGeneration"
    # The outer list stops a chat at <end_of_turn> (106) too; bos and pad are the text model's defaults.
    assert (text["eos_token_id"], text["bos_token_id"], text["pad_token_id"]) == ([1, 106], 2, 0)
    assert text["architectures"] == ["Gemma3ForCausalLM"]
    plain = {**FAMILIES["gemma3"], "architectures": ["Gemma3ForCausalLM"]}
    assert text_model_config(plain) == (plain, None)


@pytest.mark.parametrize("naming", GEMMA3_MULTIMODAL_NAMES)
def test_multimodal_checkpoint_reads_as_its_text_only_checkpoint(naming: str, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from webapp.compile.quantize import get_quantization
    from webapp.compile.source import read_checkpoint

    text_only = write_tiny_checkpoint(tmp_path / "text-only", **FAMILIES["gemma3"])
    multimodal = write_gemma3_multimodal(text_only, tmp_path / "multimodal", naming)
    raw = json.loads((multimodal / "config.json").read_text())
    assert "rope_theta" not in raw["text_config"]
    assert any(".vision_tower." in f".{name}" for name in load_file(multimodal / "model.safetensors"))

    spec = get_quantization("q0f32")
    ours, theirs = read_checkpoint(multimodal, spec), read_checkpoint(text_only, spec)
    assert ours.config == theirs.config
    assert ours.model.params == theirs.model.params
    assert {key: ours.hf_config.get(key) for key in ("bos_token_id", "eos_token_id")} == {
        key: theirs.hf_config[key] for key in ("bos_token_id", "eos_token_id")}
    converted = dict(spec.convert(ours.model.params, ours.loader.load))
    expected = dict(spec.convert(theirs.model.params, theirs.loader.load))
    assert converted.keys() == expected.keys()
    for name, values in converted.items():
        np.testing.assert_array_equal(values, expected[name], err_msg=name)
