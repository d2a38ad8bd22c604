"""A GGUF file's weights by model parameter name, decoded in memory: no float32 copy on disk."""

from __future__ import annotations

import re

import numpy as np

from webapp.compile.gguf.checkpoint import GGUFCheckpoint
from webapp.compile.gguf.tensors import GGUFTensor, Q4Blocks, Q8Blocks
from webapp.compile.loaders import Sources, check_shapes

# Attention biases llama.cpp adds only where the file has them; a missing one adds nothing, which is a zero bias.
_OPTIONAL_BIAS = re.compile(r"^(model\.layers\.\d+\.self_attn\.[qkvo]_proj)\.weight$")


class GGUFLoader:
    """The loader interface of loaders.SafetensorsLoader (check, load) over a GGUF, plus its raw blocks."""

    def __init__(self, checkpoint: GGUFCheckpoint, sources: Sources):
        self.checkpoint = checkpoint
        self.sources = sources
        self._tensors: dict[str, GGUFTensor] = dict(checkpoint.raw_tensors())
        self._zero_biases: dict[str, int] = {}  # bias name -> rows, for biases the file leaves out
        for name, tensor in self._tensors.items():
            match = _OPTIONAL_BIAS.match(name)
            if match and f"{match.group(1)}.bias" not in self._tensors:
                self._zero_biases[f"{match.group(1)}.bias"] = tensor.shape[0]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor under its Hugging Face name, with its Hugging Face shape (optional biases included)."""
        shapes = {name: (rows,) for name, rows in self._zero_biases.items()}
        shapes.update((name, tensor.shape) for name, tensor in self._tensors.items())
        return shapes

    def check(self, expected: dict[str, tuple[int, ...]]) -> None:
        """Fail before any compiling if a parameter's tensors are missing or shaped wrongly."""
        check_shapes(self.shapes(), expected, self.sources, str(self.checkpoint.path), "its metadata")

    def _part(self, source: str) -> np.ndarray:
        if source in self._zero_biases:
            return np.zeros(self._zero_biases[source], np.float32)
        return self._tensors[source].dequantize()

    def load(self, name: str) -> np.ndarray:
        """One model parameter as float32, fused parameters concatenated along the rows."""
        parts = [self._part(source) for source in self.sources(name)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def q4_blocks(self, name: str) -> Q4Blocks | None:
        """The parameter's Q4_0/Q4_1 blocks as stored (fused rows concatenated); None if any part is another type."""
        tensors = [self._tensors[source] for source in self.sources(name)]
        if any(tensor.ggml_type not in ("Q4_0", "Q4_1") for tensor in tensors):
            return None
        return Q4Blocks.concatenate([tensor.q4_blocks() for tensor in tensors])

    def q8_blocks(self, name: str) -> Q8Blocks | None:
        """The parameter's Q8_0 blocks as stored; None if any part is another type."""
        tensors = [self._tensors[source] for source in self.sources(name)]
        if any(tensor.ggml_type != "Q8_0" for tensor in tensors):
            return None
        return Q8Blocks.concatenate([tensor.q8_blocks() for tensor in tensors])
