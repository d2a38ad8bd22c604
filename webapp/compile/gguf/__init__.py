"""GGUF input for Hearth's compiler: a GGUF of a family in ARCHITECTURES read as a Hugging Face checkpoint."""

from webapp.compile.gguf.checkpoint import GGUFCheckpoint, load_gguf_checkpoint, write_hf_checkpoint
from webapp.compile.gguf.packaged import packaged_gguf
from webapp.compile.gguf.reader import GGUFError
from webapp.compile.gguf.tensors import GGUFTensor, Q4Blocks

__all__ = [
    "GGUFCheckpoint",
    "GGUFError",
    "GGUFTensor",
    "Q4Blocks",
    "load_gguf_checkpoint",
    "packaged_gguf",
    "write_hf_checkpoint",
]
