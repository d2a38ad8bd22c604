"""Gemma 3's multimodal checkpoints (4B, 12B, 27B: Gemma3ForConditionalGeneration), read as their text model.

Their config.json nests the text model under text_config, which leaves out every key equal to
transformers' Gemma3TextConfig default (the 4B's gives six keys); their safetensors keep the text model
under language_model.model.* (transformers before 4.52) or model.language_model.* (since), beside the
SigLIP vision tower and its projector, which Hearth does not compile: the model chats in text only.
"""

from __future__ import annotations

from typing import Any

from webapp.compile.llama.config import ConfigError
from webapp.compile.multimodal import MultimodalLayout

HF_ARCHITECTURE = "Gemma3ForConditionalGeneration"
TEXT_ARCHITECTURE = "Gemma3ForCausalLM"
# transformers' Gemma3TextConfig defaults (models/gemma3/configuration_gemma3.py) for every key the
# config reader takes: a text_config without them means these values.
TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131_072,
    "rms_norm_eps": 1e-6,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "tie_word_embeddings": True,
    "rope_theta": 1_000_000.0,
    "attention_bias": False,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
    "rope_scaling": None,
    "rope_local_base_freq": 10_000.0,
    "sliding_window_pattern": 6,
}
# Special tokens the outer config sets for the whole model: the 4B's eos_token_id is [1, 106], <eos> and
# <end_of_turn>, where its text_config (by default) says 1 only, and a chat would not stop at a turn's end.
OUTER_TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def text_config(raw: dict[str, Any]) -> dict[str, Any]:
    """A Gemma3ForConditionalGeneration config.json -> the config.json of its text model as a Gemma3ForCausalLM."""
    nested = raw.get("text_config")
    if nested is None:  # transformers builds the default text model then, and so does Hearth
        nested = {}
    if not isinstance(nested, dict):
        raise ConfigError(f"config.json: text_config must be a JSON object, not {nested!r}")
    outer = {key: raw[key] for key in OUTER_TOKEN_IDS if raw.get(key) is not None}
    return {**TEXT_DEFAULTS, **nested, **outer, "architectures": [TEXT_ARCHITECTURE], "model_type": "gemma3_text"}


GEMMA3_MULTIMODAL = MultimodalLayout(
    hf_architecture=HF_ARCHITECTURE,
    text_config=text_config,
    # Gemma3ForCausalLM's "model.layers.0..." is "language_model.model.layers.0..." in checkpoints saved
    # before transformers 4.52, and "model.language_model.layers.0..." in later ones.
    renames=(("", "language_model."), ("model.", "model.language_model.")),
    image_parts=("vision_tower", "multi_modal_projector"),
)
