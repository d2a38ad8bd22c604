"""Gemma's checkpoint mapping: llama/loader.py's fused q/k/v and gate/up, and RMSNorm weights as 1 + w.

Hugging Face's Gemma RMSNorm multiplies by (1 + weight); the model multiplies by its stored weight,
so the 1 is added when the checkpoint is read. llama.cpp's converter adds it when it writes a GGUF,
so GGUF norms are read as they are.
"""

from __future__ import annotations

import numpy as np


def hf_values(name: str, values: np.ndarray) -> np.ndarray:
    """A Hugging Face Gemma parameter's values in the model's form."""
    return values + np.float32(1) if name.endswith("norm.weight") else values
