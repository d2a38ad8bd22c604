"""The Llama-family configuration, read from a Hugging Face checkpoint's own config.json."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from webapp.compile.errors import CompileError

# Hugging Face architecture name -> Hearth's name for the family (written as model_type).
ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
}
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

    model_type: str  # family: "llama" or "qwen2" (Qwen2 is Llama with q/k/v biases)
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

    @property
    def architecture_name(self) -> str:
        """The Hugging Face architecture this configuration came from."""
        return next(name for name, family in ARCHITECTURES.items() if family == self.model_type)

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


def _architecture(raw: dict[str, Any]) -> str:
    architectures = raw.get("architectures")
    if not isinstance(architectures, list) or not architectures:
        raise ConfigError("config.json has no 'architectures' list, so the model family is unknown")
    for name in architectures:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    raise ConfigError(
        f"unsupported architecture {', '.join(map(str, architectures))}: Hearth's compiler handles "
        f"{', '.join(ARCHITECTURES)}; for others use `hearth compile --backend mlc-llm`"
    )


def _rope_scaling(raw: dict[str, Any]) -> dict[str, Any] | None:
    scaling = raw.get("rope_scaling")
    if scaling is None:
        return None
    kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
    if kind in (None, "default"):
        return None
    if kind != "llama3":
        raise ConfigError(f"config.json: rope_scaling type {kind!r} is not supported (only 'llama3')")
    keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
    missing = [key for key in keys if not isinstance(scaling.get(key), (int, float))]
    if missing:
        raise ConfigError(f"config.json: llama3 rope_scaling needs {', '.join(missing)}")
    return {"rope_type": "llama3", **{key: float(scaling[key]) for key in keys}}


def config_from_hf(
    raw: dict[str, Any],
    *,
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
) -> LlamaConfig:
    """Build a checked LlamaConfig from a parsed Hugging Face config.json."""
    if not isinstance(raw, dict):
        raise ConfigError("config.json must hold a JSON object")
    model_type = _architecture(raw)
    hidden_act = raw.get("hidden_act", "silu")
    if hidden_act != "silu":
        raise ConfigError(f"config.json: hidden_act {hidden_act!r} is not supported (Llama-family models use 'silu')")
    if raw.get("mlp_bias"):
        raise ConfigError("config.json: mlp_bias=true is not supported")
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
    max_positions = _field(raw, "max_position_embeddings", int)
    context = context_window_size or min(max_positions, DEFAULT_CONTEXT_WINDOW_SIZE)
    chunk = min(prefill_chunk_size or DEFAULT_PREFILL_CHUNK_SIZE, context)
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
        # Qwen2 always has q/k/v biases and no o_proj bias; Llama's attention_bias covers all four.
        attention_bias=model_type == "qwen2" or attention_bias,
        o_proj_bias=model_type == "llama" and attention_bias,
        context_window_size=context,
        prefill_chunk_size=chunk,
    )
