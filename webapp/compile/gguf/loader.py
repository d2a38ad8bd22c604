"""A GGUF file's weights by model parameter name, decoded in memory: no float32 copy on disk."""

from __future__ import annotations

import numpy as np

from webapp.compile.gguf.checkpoint import GGUFCheckpoint
from webapp.compile.gguf.tensors import GGUFTensor, Q4Blocks, Q8Blocks
from webapp.compile.llama.loader import check_shapes, hf_sources


class GGUFLoader:
    """The loader interface of llama.loader.LlamaLoader (check, load) over a GGUF, plus its raw blocks."""

    def __init__(self, checkpoint: GGUFCheckpoint):
        self.checkpoint = checkpoint
        self._tensors: dict[str, GGUFTensor] = dict(checkpoint.raw_tensors())

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor under its Hugging Face name, with its Hugging Face shape."""
        return {name: tensor.shape for name, tensor in self._tensors.items()}

    def check(self, expected: dict[str, tuple[int, ...]]) -> None:
        """Fail before any compiling if a parameter's tensors are missing or shaped wrongly."""
        check_shapes(self.shapes(), expected, str(self.checkpoint.path), "its metadata")

    def load(self, name: str) -> np.ndarray:
        """One model parameter as float32, fused parameters concatenated along the rows."""
        parts = [self._tensors[source].dequantize() for source in hf_sources(name)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def q4_blocks(self, name: str) -> Q4Blocks | None:
        """The parameter's Q4_0/Q4_1 blocks as stored (fused rows concatenated); None if any part is another type."""
        tensors = [self._tensors[source] for source in hf_sources(name)]
        if any(tensor.ggml_type not in ("Q4_0", "Q4_1") for tensor in tensors):
            return None
        return Q4Blocks.concatenate([tensor.q4_blocks() for tensor in tensors])

    def q8_blocks(self, name: str) -> Q8Blocks | None:
        """The parameter's Q8_0 blocks as stored; None if any part is another type."""
        tensors = [self._tensors[source] for source in hf_sources(name)]
        if any(tensor.ggml_type != "Q8_0" for tensor in tensors):
            return None
        return Q8Blocks.concatenate([tensor.q8_blocks() for tensor in tensors])
