"""What a Gemma 2 / Gemma 3 GGUF's metadata says beyond the Llama-like keys, as llama.cpp reads it."""

from __future__ import annotations

from typing import Any

from webapp.compile.gemma.config import DEFAULT_PATTERN

# llama.cpp's defaults for keys a Gemma GGUF may leave out.
GEMMA2_SLIDING_WINDOW = 4096
GEMMA2_ATTN_SOFTCAP = 50.0
GEMMA2_FINAL_SOFTCAP = 30.0
LOCAL_ROPE_THETA = 10000.0
# Layer counts of the 27B models, whose attention scale llama.cpp takes from hidden / heads, not head_dim.
LAYERS_OF_27B = {"gemma2": 46, "gemma3": 62}


def gemma_hf_config(gf: Any, family: str) -> dict[str, Any]:
    """config.json keys of a Gemma GGUF that gguf/config.py's common reader does not give."""
    key = f"{family}."
    hidden = gf.get_int(key + "embedding_length")
    heads = gf.get_int(key + "attention.head_count")
    head_dim = gf.get_int(key + "attention.key_length", default=hidden // heads)
    gemma2 = family == "gemma2"
    scalar = hidden // heads if gf.get_int(key + "block_count") == LAYERS_OF_27B[family] else head_dim
    config: dict[str, Any] = {
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": scalar,
        "sliding_window": gf.get_int(key + "attention.sliding_window", GEMMA2_SLIDING_WINDOW if gemma2 else None),
        "sliding_window_pattern": gf.get_int(key + "attention.sliding_window_pattern", DEFAULT_PATTERN[family]),
        # llama.cpp soft-caps every Gemma 2's attention scores and logits, at 50 and 30 unless the file says.
        "attn_logit_softcapping": gf.get_float(key + "attn_logit_softcapping", GEMMA2_ATTN_SOFTCAP) if gemma2 else None,
        "final_logit_softcapping": (gf.get_float(key + "final_logit_softcapping", GEMMA2_FINAL_SOFTCAP) if gemma2
                                    else gf.get(key + "final_logit_softcapping") or None),
    }
    if not gemma2:
        config["rope_local_base_freq"] = gf.get_float(key + "rope.freq_base_swa", LOCAL_ROPE_THETA)
    return config
