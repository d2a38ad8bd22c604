"""The Gemma 2 / Gemma 3 configuration, read from a checkpoint's config.json (or a GGUF's, via gguf/config.py)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from webapp.compile.llama.config import (
    DEFAULT_CONTEXT_WINDOW_SIZE, DEFAULT_PREFILL_CHUNK_SIZE, OTHER_BACKEND, ConfigError, _field, attention_shape,
)  # fmt: skip

# Every pattern-th layer attends over the whole context, the others over a sliding window
# (Hugging Face's defaults when config.json gives neither sliding_window_pattern nor layer_types).
DEFAULT_PATTERN = {"gemma2": 2, "gemma3": 6}
GELU_TANH = ("gelu_pytorch_tanh", "gelu_tanh", "gelu")  # Gemma's "gelu" has always meant the tanh form


@dataclass(frozen=True)
class GemmaConfig:
    """Every number the Gemma model definition needs, checked for consistency."""

    model_type: str  # "gemma2", or "gemma3" (adds q/k norms and a rope base per layer kind)
    hidden_size: int  # width of the residual stream; embeddings are scaled by its square root
    intermediate_size: int  # width of the GELU-tanh gated MLP's hidden layer
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    rms_norm_eps: float  # inside every RMSNorm; their weights are stored as 1 + w (see gemma/loader.py)
    rope_theta: float  # rotary base of the full-attention layers
    rope_local_theta: float  # rotary base of the sliding-window layers (Gemma 3: 10000; Gemma 2: rope_theta)
    rope_scale: float  # linear rope scaling of the full-attention layers (positions divided by it); 1: none
    query_pre_attn_scalar: float  # attention scores are scaled by its inverse square root
    final_logit_softcapping: float | None  # logits -> tanh(logits / c) * c; None: none
    sliding_window: int  # keys a sliding-window layer attends to (its own position included)
    sliding_window_pattern: int  # layer i is a full-attention layer when (i + 1) % pattern == 0
    qk_norm: bool  # an RMSNorm over each query and key head before rotary embedding (Gemma 3)
    context_window_size: int  # default KV-cache length WebLLM allocates (a runtime setting)
    prefill_chunk_size: int  # most tokens one prefill call takes; at most the sliding window (see model.py)
    tie_word_embeddings: bool = True  # Gemma's output projection is always its embedding table
    # Attention scores -> tanh(s / c) * c before the softmax (Gemma 2: 50), in the KV cache's kernels
    # (gemma/softcap.py); None: none.
    attn_logit_softcapping: float | None = None

    def is_sliding(self, layer: int) -> bool:
        """True when `layer` attends over the sliding window only."""
        return (layer + 1) % self.sliding_window_pattern != 0

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (mlc-chat-config.json's model_config)."""
        return asdict(self)


def _pattern(raw: dict[str, Any], model_type: str, layers: int) -> int:
    # Gemma 3 configs say sliding_window_pattern (older) or layer_types (newer); Gemma 2 alternates.
    pattern = raw.get("sliding_window_pattern") or DEFAULT_PATTERN[model_type]
    if not isinstance(pattern, int) or isinstance(pattern, bool) or pattern < 1:
        raise ConfigError(f"config.json: sliding_window_pattern must be a positive integer, not {pattern!r}")
    kinds = raw.get("layer_types")
    if kinds is None:
        return pattern
    expected = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)]
    if kinds != expected:
        raise ConfigError(
            f"config.json: layer_types is not one full-attention layer after every {pattern - 1} sliding-window "
            f"ones, the only order Hearth's compiler builds; use {OTHER_BACKEND}"
        )
    return pattern


def _softcap(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"config.json: '{name}' must be a positive number or null, not {value!r}")
    return float(value)


def _rope_scale(raw: dict[str, Any]) -> float:
    scaling = raw.get("rope_scaling")
    if scaling is None:
        return 1.0
    kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
    factor = scaling.get("factor") if isinstance(scaling, dict) else None
    if kind in (None, "default"):
        return 1.0
    if kind != "linear" or isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
        raise ConfigError(
            f"config.json: rope_scaling {scaling!r} is not supported for Gemma by Hearth's compiler (it does "
            f"'linear' with a positive factor); use {OTHER_BACKEND}"
        )
    return float(factor)


def read_gemma_config(
    raw: dict[str, Any],
    *,
    model_type: str,
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
) -> GemmaConfig:
    """Build a checked GemmaConfig from a parsed Hugging Face config.json of the family `model_type`."""
    activation = raw.get("hidden_activation") or raw.get("hidden_act") or "gelu_pytorch_tanh"
    if activation not in GELU_TANH:
        raise ConfigError(f"config.json: hidden_activation {activation!r} is not supported (Gemma uses "
                          f"'gelu_pytorch_tanh'); use {OTHER_BACKEND}")
    if raw.get("attention_bias"):
        raise ConfigError(f"config.json: attention_bias=true is not supported for Gemma; use {OTHER_BACKEND}")
    if raw.get("tie_word_embeddings") is False:
        raise ConfigError("config.json: tie_word_embeddings=false is not supported for Gemma (its output "
                          f"projection is its embedding table); use {OTHER_BACKEND}")
    hidden_size, num_heads, num_kv_heads, head_dim = attention_shape(raw)
    layers = _field(raw, "num_hidden_layers", int)
    window = _field(raw, "sliding_window", int)
    context = context_window_size or min(_field(raw, "max_position_embeddings", int), DEFAULT_CONTEXT_WINDOW_SIZE)
    # The paged KV cache applies the window to keys of earlier chunks only; within one chunk every
    # query sees every key, which is the same only while a chunk fits in the window.
    chunk = min(prefill_chunk_size or DEFAULT_PREFILL_CHUNK_SIZE, context, window)
    rope_theta = _field(raw, "rope_theta", float, 10000.0)
    local_theta = _field(raw, "rope_local_base_freq", float, 10000.0) if model_type == "gemma3" else rope_theta
    for name, theta in (("rope_theta", rope_theta), ("rope_local_base_freq", local_theta)):
        if not math.isfinite(theta):
            raise ConfigError(f"config.json: {name} must be finite, not {theta!r}")
    return GemmaConfig(
        model_type=model_type,
        hidden_size=hidden_size,
        intermediate_size=_field(raw, "intermediate_size", int),
        num_hidden_layers=layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=head_dim,
        vocab_size=_field(raw, "vocab_size", int),
        rms_norm_eps=_field(raw, "rms_norm_eps", float, 1e-6),
        rope_theta=rope_theta,
        rope_local_theta=local_theta,
        rope_scale=_rope_scale(raw) if model_type == "gemma3" else 1.0,
        query_pre_attn_scalar=_field(raw, "query_pre_attn_scalar", float, float(head_dim)),
        final_logit_softcapping=_softcap(raw, "final_logit_softcapping"),
        attn_logit_softcapping=_softcap(raw, "attn_logit_softcapping"),
        sliding_window=window,
        sliding_window_pattern=_pattern(raw, model_type, layers),
        qk_norm=model_type == "gemma3",
        context_window_size=context,
        prefill_chunk_size=chunk,
    )
