"""The Llama-family configuration (Llama, Qwen2, Qwen3, Mistral, Phi-3), read from a checkpoint's config.json."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from webapp.compile.errors import CompileError

OTHER_BACKEND = "`hearth compile --backend mlc-llm`"
# WebLLM runs prefill in chunks of at most this many tokens; the library is compiled for it.
DEFAULT_PREFILL_CHUNK_SIZE = 1024
# The KV cache WebLLM allocates is sized by the context window; checkpoints often claim 32k+
# positions, which would not fit a browser's GPU budget. The chat config carries this default.
DEFAULT_CONTEXT_WINDOW_SIZE = 4096


class ConfigError(CompileError):
    """config.json describes a model Hearth cannot compile; the message says what to fix."""


@dataclass(frozen=True)
class LlamaConfig:
    """Every number the Llama-family model definition needs, checked for consistency."""

    # family: "llama"; "qwen2" (Llama with q/k/v biases), "qwen3" (with q/k norms), "mistral" (with a
    # sliding window), "phi3" (q/k/v and gate/up stored fused, rotary embedding over part of each head)
    model_type: str
    hidden_size: int  # width of the residual stream
    intermediate_size: int  # width of the SwiGLU MLP's hidden layer
    num_hidden_layers: int  # number of decoder blocks
    num_attention_heads: int  # query heads
    num_key_value_heads: int  # key/value heads; fewer than query heads means grouped-query attention
    head_dim: int  # width of one attention head
    vocab_size: int  # rows of the embedding table and of the logits
    rms_norm_eps: float  # epsilon inside every RMSNorm
    rope_theta: float  # base of the rotary position embedding's frequencies
    rope_scaling: dict[str, Any] | None  # None, or Llama 3's {"rope_type": "llama3", factor, ...}
    tie_word_embeddings: bool  # the output projection reuses the embedding table
    attention_bias: bool  # q/k/v projections carry a bias (Qwen2, some Llamas)
    o_proj_bias: bool  # the attention output projection carries a bias (Llama attention_bias=true)
    context_window_size: int  # default KV-cache length WebLLM allocates (a runtime setting)
    prefill_chunk_size: int  # most tokens one prefill call takes (compiled into the library)
    qk_norm: bool = False  # an RMSNorm over each query and key head before rotary embedding (Qwen3)
    rotary_dim: int | None = None  # leading dimensions of each head the rotary embedding turns; None: all
    # Keys each query attends to, its own included (Mistral's, Phi-3's sliding window); None: all of them
    # (no window, or one no shorter than the context window, which then never clips).
    sliding_window: int | None = None

    @property
    def rotary_dimensions(self) -> int:
        """How many leading dimensions of each q/k head are rotated (Phi-4-mini: 3/4 of them)."""
        return self.rotary_dim or self.head_dim

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (mlc-chat-config.json's model_config)."""
        return asdict(self)


def _field(raw: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = raw.get(name)
    if value is None:
        value = default
    if value is None:
        raise ConfigError(f"config.json has no '{name}'; it is required for {raw.get('model_type', 'this')} models")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"config.json: '{name}' must be {kind.__name__}, not {value!r}")
    if kind in (int, float) and value <= 0:
        raise ConfigError(f"config.json: '{name}' must be positive, not {value!r}")
    return value


def _rope_scaling(raw: dict[str, Any]) -> dict[str, Any] | None:
    scaling = raw.get("rope_scaling")
    if scaling is None:
        return None
    kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
    if kind in (None, "default"):
        return None
    if kind != "llama3":
        raise ConfigError(
            f"config.json: rope_scaling type {kind!r} is not supported by Hearth's compiler (it does 'llama3'); "
            f"use {OTHER_BACKEND}"
        )
    keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
    missing = [key for key in keys if not isinstance(scaling.get(key), (int, float))]
    if missing:
        raise ConfigError(f"config.json: llama3 rope_scaling needs {', '.join(missing)}")
    return {"rope_type": "llama3", **{key: float(scaling[key]) for key in keys}}


def _refuse_unsupported(raw: dict[str, Any]) -> None:
    # Features of some checkpoints of these families that the model definition does not have.
    for key in ("num_experts", "num_local_experts", "n_routed_experts"):
        if isinstance(raw.get(key), int) and raw[key] > 0:
            raise ConfigError(
                f"config.json: {key}={raw[key]} makes this a mixture-of-experts model, which Hearth's compiler "
                f"does not build; use {OTHER_BACKEND}"
            )
    if raw.get("use_sliding_window"):
        raise ConfigError(
            f"config.json: use_sliding_window=true is not supported by Hearth's compiler; use {OTHER_BACKEND}"
        )


def _sliding_window(raw: dict[str, Any], model_type: str, context: int) -> int | None:
    # Mistral and Phi-3 attend to the last sliding_window positions only; null means all of them.
    window = raw.get("sliding_window") if model_type in ("mistral", "phi3") else None
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        raise ConfigError(f"config.json: 'sliding_window' must be a positive integer or null, not {window!r}")
    return window if window < context else None


def _rotary_dim(raw: dict[str, Any], model_type: str, head_dim: int) -> int | None:
    factor = raw.get("partial_rotary_factor", 1.0)
    if factor == 1.0:
        return None
    rotary = int(head_dim * factor) if isinstance(factor, (int, float)) and model_type == "phi3" else 0
    if rotary <= 0 or rotary % 2:
        raise ConfigError(
            f"config.json: partial_rotary_factor={factor!r} is not supported for {model_type} by Hearth's compiler; "
            f"use {OTHER_BACKEND}"
        )
    return rotary


def attention_shape(raw: dict[str, Any]) -> tuple[int, int, int, int]:
    """hidden_size, query heads, key/value heads and head_dim of a config.json, checked for rotary attention."""
    hidden_size = _field(raw, "hidden_size", int)
    num_heads = _field(raw, "num_attention_heads", int)
    num_kv_heads = _field(raw, "num_key_value_heads", int, num_heads)
    if num_heads % num_kv_heads:
        raise ConfigError(
            f"config.json: num_attention_heads ({num_heads}) must be a multiple of num_key_value_heads ({num_kv_heads})"
        )
    head_dim = _field(raw, "head_dim", int, hidden_size // num_heads)
    if head_dim % 2:
        raise ConfigError(f"config.json: head_dim ({head_dim}) must be even for rotary embeddings")
    return hidden_size, num_heads, num_kv_heads, head_dim


def read_llama_config(
    raw: dict[str, Any],
    *,
    model_type: str,
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
) -> LlamaConfig:
    """Build a checked LlamaConfig from a parsed Hugging Face config.json of the family `model_type`."""
    _refuse_unsupported(raw)
    hidden_act = raw.get("hidden_act", "silu")
    if hidden_act != "silu":
        raise ConfigError(f"config.json: hidden_act {hidden_act!r} is not supported (Llama-family models use 'silu')")
    if raw.get("mlp_bias"):
        raise ConfigError("config.json: mlp_bias=true is not supported")
    hidden_size, num_heads, num_kv_heads, head_dim = attention_shape(raw)
    max_positions = _field(raw, "max_position_embeddings", int)
    context = context_window_size or min(max_positions, DEFAULT_CONTEXT_WINDOW_SIZE)
    window = _sliding_window(raw, model_type, context)
    # The paged KV cache applies the window to keys of earlier chunks only; within one chunk every
    # query sees every key before it, which is the same only while a chunk fits in the window.
    chunk = min(prefill_chunk_size or DEFAULT_PREFILL_CHUNK_SIZE, context, window or context)
    attention_bias = bool(raw.get("attention_bias", False))
    rope_theta = _field(raw, "rope_theta", float, 10000.0)
    if not math.isfinite(rope_theta):
        raise ConfigError(f"config.json: rope_theta must be finite, not {rope_theta!r}")
    return LlamaConfig(
        model_type=model_type,
        hidden_size=hidden_size,
        intermediate_size=_field(raw, "intermediate_size", int),
        num_hidden_layers=_field(raw, "num_hidden_layers", int),
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=head_dim,
        vocab_size=_field(raw, "vocab_size", int),
        rms_norm_eps=_field(raw, "rms_norm_eps", float, 1e-6),
        rope_theta=rope_theta,
        rope_scaling=_rope_scaling(raw),
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        # Qwen2 always has q/k/v biases and no o_proj bias; elsewhere attention_bias covers all four.
        attention_bias=model_type == "qwen2" or attention_bias,
        o_proj_bias=model_type != "qwen2" and attention_bias,
        context_window_size=context,
        prefill_chunk_size=chunk,
        qk_norm=model_type == "qwen3",
        rotary_dim=_rotary_dim(raw, model_type, head_dim),
        sliding_window=window,
    )
