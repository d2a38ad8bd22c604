"""The Llama family's name mapping: which Hugging Face tensors make each parameter of llama/model.py."""

from __future__ import annotations

import re

# Fused parameters of model.py and the Hugging Face tensors they concatenate (along the output rows).
_FUSED = (
    (re.compile(r"^(.*\.self_attn)\.qkv_proj\.(weight|bias)$"), ("q_proj", "k_proj", "v_proj")),
    (re.compile(r"^(.*\.mlp)\.gate_up_proj\.(weight)$"), ("gate_proj", "up_proj")),
)


def hf_sources(name: str) -> list[str]:
    """The Hugging Face tensor names one model parameter is made from, in concatenation order."""
    for pattern, parts in _FUSED:
        match = pattern.match(name)
        if match:
            owner, leaf = match.groups()
            return [f"{owner}.{part}.{leaf}" for part in parts]
    return [name]


