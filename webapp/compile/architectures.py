"""The model families Hearth's compiler builds (ARCHITECTURES), one row each, as mlc-llm keeps its MODELS.

A row says how to read the family's config (Hugging Face config.json, or a GGUF's metadata through
its GGUFLayout), which model definition to build, how checkpoint tensors map onto its parameters,
the numpy reference it is checked against, and its chat format when nothing else says. Adding a
family is one module plus one row; everything else looks the family up here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from webapp.compile.errors import CompileError
from webapp.compile.gemma.config import GemmaConfig, read_gemma_config
from webapp.compile.gemma.gguf import gemma_hf_config
from webapp.compile.gemma.loader import hf_values as gemma_hf_values
from webapp.compile.gemma.multimodal import GEMMA3_MULTIMODAL
from webapp.compile.llama.config import ConfigError, LlamaConfig, read_llama_config
from webapp.compile.llama.loader import hf_sources as llama_hf_sources
from webapp.compile.multimodal import MultimodalLayout

if TYPE_CHECKING:
    from tvm.relax.frontend import nn

OTHER_BACKEND_HINT = "Compile it with `hearth compile --backend mlc-llm` (the official compiler) instead."
# GGUF per-layer tensor names (after "blk.N.") -> Hugging Face names (after "model.layers.N."), as
# llama.cpp's convert_hf_to_gguf.py writes them for every Llama-like family.
LLAMA_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}

# Gemma's GGUF names: a norm after attention and after the MLP as well, and ffn_norm is the one before it.
GEMMA2_LAYER_NAMES = {
    **LLAMA_LAYER_NAMES,
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}

# Phi-3's GGUF names: q/k/v in one attn_qkv tensor, gate/up in one ffn_up tensor (gate rows first).
PHI3_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_qkv": "self_attn.qkv_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_up": "mlp.gate_up_proj",
    "ffn_down": "mlp.down_proj",
}


@dataclass(frozen=True)
class GGUFLayout:
    """How llama.cpp writes one family into a GGUF file."""

    architecture: str  # general.architecture, also the prefix of its metadata keys
    layer_names: dict[str, str] = field(default_factory=lambda: dict(LLAMA_LAYER_NAMES))
    # convert_hf_to_gguf.py reorders q/k rows for ggml's interleaved ("normal") rope in Llama
    # files only; families ggml runs with NEOX rope (Qwen2, Qwen3, Gemma...) keep HF's row order.
    permuted_qk: bool = False
    # (GGUFFile, general.architecture) -> the family's config.json keys beyond the common ones gguf/config.py reads
    extra_config: Callable[[Any, str], dict[str, Any]] | None = None
    # What llama.cpp's converter adds to every RMSNorm weight (Gemma's 1 + w); a GGUF read as a Hugging
    # Face checkpoint (write_hf_checkpoint, for the mlc-llm backend) takes it off again.
    norm_shift: float = 0.0
    # The family's config reader takes linear rope scaling (rope.scaling.type "linear" and its factor;
    # Gemma 3 4B and up scale their full-attention layers' positions by 8); otherwise any scaling is refused.
    linear_rope: bool = False


@dataclass(frozen=True)
class Architecture:
    """One model family: everything the pipeline needs to compile and check it."""

    name: str  # model_type in mlc-chat-config.json
    hf_architectures: tuple[str, ...]  # config.json "architectures" values of this family
    read_config: Callable[..., Any]  # (config.json dict, model_type=, context_window_size=, prefill_chunk_size=)
    config_class: type  # the dataclass read_config returns; mlc-chat-config.json's model_config rebuilds it
    model: Callable[[Any, str], nn.Module]  # (config, dtype) -> the float model definition
    hf_sources: Callable[[str], list[str]]  # model parameter -> checkpoint tensors it is made of
    reference: Callable[[Any, dict[str, np.ndarray]], Any]  # (config, float weights) -> numpy model
    gguf: GGUFLayout | None  # None: Hearth reads no GGUF of this family
    # The family's vision-language checkpoints, whose text model Hearth compiles alone; None: refused.
    multimodal: MultimodalLayout | None = None
    # Chat format when "auto" finds none in the GGUF or by the tokenizer's special tokens (chat_config.py).
    conv_template: str = "LM"
    # (parameter, float32 values of its checkpoint tensors) -> the values the model stores (Gemma's norms: 1 + w)
    hf_values: Callable[[str, np.ndarray], np.ndarray] | None = None


def _llama_model(config: LlamaConfig, dtype: str) -> nn.Module:
    from webapp.compile.llama.model import LlamaForCausalLM

    return LlamaForCausalLM(config, dtype)


def _llama_reference(config: LlamaConfig, weights: dict[str, np.ndarray]) -> Any:
    from webapp.compile.reference import ReferenceLlama

    return ReferenceLlama(config, weights)


def _gemma_model(config: Any, dtype: str) -> nn.Module:
    from webapp.compile.gemma.model import GemmaForCausalLM

    return GemmaForCausalLM(config, dtype)


def _gemma_reference(config: Any, weights: dict[str, np.ndarray]) -> Any:
    from webapp.compile.gemma.reference import ReferenceGemma

    return ReferenceGemma(config, weights)


def _gemma_family(
    name: str, hf: str, layer_names: dict[str, str], multimodal: MultimodalLayout | None = None
) -> Architecture:
    gguf = GGUFLayout(name, layer_names, extra_config=gemma_hf_config, norm_shift=1.0, linear_rope=name == "gemma3")
    return Architecture(
        name=name, hf_architectures=(hf,), read_config=read_gemma_config, config_class=GemmaConfig,
        model=_gemma_model, hf_sources=llama_hf_sources, reference=_gemma_reference, gguf=gguf, conv_template="gemma",
        hf_values=gemma_hf_values, multimodal=multimodal,
    )


def _as_stored(name: str) -> list[str]:
    # Checkpoints that store each parameter under the model's own name, fused projections included.
    return [name]


def _llama_family(
    name: str, hf: str, gguf: GGUFLayout | None, hf_sources: Callable[[str], list[str]] = llama_hf_sources
) -> Architecture:
    return Architecture(
        name=name, hf_architectures=(hf,), read_config=read_llama_config, config_class=LlamaConfig,
        model=_llama_model, hf_sources=hf_sources, reference=_llama_reference, gguf=gguf,
    )


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        _llama_family("llama", "LlamaForCausalLM", GGUFLayout("llama", permuted_qk=True)),
        # Qwen2 is Llama with q/k/v biases, Qwen3 Llama with q/k norms (read_llama_config sets them).
        _llama_family("qwen2", "Qwen2ForCausalLM", GGUFLayout("qwen2")),
        _llama_family("qwen3", "Qwen3ForCausalLM", GGUFLayout("qwen3", {
            **LLAMA_LAYER_NAMES, "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
        })),  # fmt: skip
        # Mistral is Llama with sliding-window attention; llama.cpp writes its GGUFs as "llama" ones.
        _llama_family("mistral", "MistralForCausalLM", None),
        # Phi-3 stores q/k/v and gate/up fused already, as model.py computes them; the GGUF too.
        _llama_family("phi3", "Phi3ForCausalLM", GGUFLayout("phi3", PHI3_LAYER_NAMES), _as_stored),
        _gemma_family("gemma2", "Gemma2ForCausalLM", GEMMA2_LAYER_NAMES),
        # Gemma 3's text-only models (1B, 270M), and the text model of the multimodal ones (4B, 12B, 27B).
        _gemma_family("gemma3", "Gemma3ForCausalLM", {
            **GEMMA2_LAYER_NAMES, "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
        }, GEMMA3_MULTIMODAL),  # fmt: skip
    )
}


def _hf_names(arch: Architecture) -> tuple[str, ...]:
    return arch.hf_architectures + ((arch.multimodal.hf_architecture,) if arch.multimodal else ())


def supported_names() -> str:
    """The Hugging Face architecture names Hearth compiles, for messages."""
    return ", ".join(name for arch in ARCHITECTURES.values() for name in _hf_names(arch))


def architecture(model_type: str) -> Architecture:
    """The row of a model_type (as a compiled model's config records it)."""
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise CompileError(f"unknown model type {model_type!r}: Hearth's compiler knows {known}") from None


def architecture_for_hf(raw: dict[str, Any]) -> Architecture:
    """The row for a Hugging Face config.json, by its "architectures" list."""
    names = raw.get("architectures")
    if not isinstance(names, list) or not names:
        raise ConfigError("config.json has no 'architectures' list, so the model family is unknown")
    for arch in ARCHITECTURES.values():
        if any(name in _hf_names(arch) for name in names):
            return arch
    raise ConfigError(
        f"unsupported architecture {', '.join(map(str, names))}: Hearth's compiler handles "
        f"{supported_names()}. {OTHER_BACKEND_HINT}"
    )


def architecture_for_gguf(gguf_architecture: str) -> Architecture | None:
    """The row whose GGUF files say general.architecture = gguf_architecture, if any."""
    return next((a for a in ARCHITECTURES.values() if a.gguf and a.gguf.architecture == gguf_architecture), None)


def text_model_config(raw: dict[str, Any]) -> tuple[dict[str, Any], MultimodalLayout | None]:
    """The config.json of the model Hearth compiles: raw itself, or a multimodal checkpoint's text model
    (with the layout its tensors follow)."""
    if not isinstance(raw, dict):
        raise ConfigError("config.json must hold a JSON object")
    layout = architecture_for_hf(raw).multimodal
    if layout is None or layout.hf_architecture not in raw["architectures"]:
        return raw, None
    return layout.text_config(raw), layout


def config_from_hf(
    raw: dict[str, Any], *, context_window_size: int | None = None, prefill_chunk_size: int | None = None
) -> Any:
    """The checked configuration of a parsed Hugging Face config.json, read by its family's reader
    (a multimodal checkpoint's: its text model's)."""
    raw = text_model_config(raw)[0]
    arch = architecture_for_hf(raw)
    return arch.read_config(
        raw, model_type=arch.name, context_window_size=context_window_size, prefill_chunk_size=prefill_chunk_size
    )


def config_from_dict(model_config: dict[str, Any]) -> Any:
    """A configuration back from its to_dict() (mlc-chat-config.json's model_config)."""
    return architecture(str(model_config.get("model_type"))).config_class(**model_config)
