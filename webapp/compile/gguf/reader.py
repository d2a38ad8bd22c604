"""Open a GGUF file with the `gguf` package and read its metadata, turning every failure into a GGUFError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np

from webapp.compile.architectures import ARCHITECTURES, Architecture, architecture_for_gguf
from webapp.compile.errors import CompileError

GGUF_MAGIC = b"GGUF"
# general.architecture of llama.cpp's multimodal projector ("mmproj") files: an image encoder, no language model.
MMPROJ_ARCHITECTURE = "clip"
# Header: magic (4), version (4), tensor count (8), metadata count (8).
HEADER_BYTES = 24
OTHER_BACKEND_HINT = (
    "Hearth's own compiler reads GGUF files of the architectures "
    f"{', '.join(a.gguf.architecture for a in ARCHITECTURES.values() if a.gguf)}; for others compile the "
    "Hugging Face checkpoint with `hearth compile --backend mlc-llm`."
)


class GGUFError(CompileError, ValueError):
    """A GGUF file cannot be read or converted; the message says what is wrong, where, and what to do.

    A CompileError, so `hearth compile` reports it as one line like any other bad input.
    """


class GGUFFile:
    """Typed access to one GGUF file's metadata and tensor records (tensor data stays memory-mapped)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _check_header(self.path)
        try:
            self.reader = gguf.GGUFReader(self.path, "r")
        except (ValueError, IndexError, OverflowError, MemoryError, UnicodeDecodeError) as exc:
            # The gguf package reports truncation as numpy reshape/view errors; say what it means.
            raise GGUFError(
                f"{self.path} is not a readable GGUF file: its metadata or tensor data is cut short or corrupt "
                f"(the file has {self.path.stat().st_size} bytes; the reader said: {exc}). "
                f"Download it again and check its size."
            ) from None
        size = self.path.stat().st_size
        for tensor in self.reader.tensors:
            if int(tensor.data_offset) + int(tensor.n_bytes) > size:
                raise GGUFError(f"{self.path} is truncated: tensor {tensor.name} runs past the end of the file.")
        self.tensors = {tensor.name: tensor for tensor in self.reader.tensors}

    @property
    def architecture(self) -> str:
        """The `general.architecture` value, e.g. "llama"."""
        return self.get_str("general.architecture")

    def get(self, key: str, default: Any = None) -> Any:
        """One metadata value as a Python scalar, string or list (strings decoded as UTF-8)."""
        field = self.reader.fields.get(key)
        if field is None:
            return default
        try:
            return field.contents()
        except UnicodeDecodeError as exc:
            raise GGUFError(f"{self.path}: metadata {key} holds text that is not UTF-8 ({exc}).") from None

    def require(self, key: str) -> Any:
        """A metadata value that must be present."""
        if key not in self.reader.fields:
            raise GGUFError(
                f"{self.path} lacks the required metadata key {key!r}; it was not written by a complete "
                f"GGUF converter (llama.cpp's convert_hf_to_gguf.py writes it)."
            )
        return self.get(key)

    def get_str(self, key: str) -> str:
        """A required string value."""
        value = self.require(key)
        if not isinstance(value, str):
            raise GGUFError(f"{self.path}: metadata {key} should be text, found {type(value).__name__}.")
        return value

    def get_int(self, key: str, default: int | None = None) -> int:
        """An integer value; required unless a default is given."""
        value = self.get(key) if default is not None else self.require(key)
        if value is None:
            return int(default)  # type: ignore[arg-type]
        if isinstance(value, bool) or not isinstance(value, int):
            raise GGUFError(f"{self.path}: metadata {key} should be an integer, found {value!r}.")
        return value

    def get_float(self, key: str, default: float | None = None) -> float:
        """A floating-point value; required unless a default is given."""
        value = self.get(key) if default is not None else self.require(key)
        if value is None:
            return float(default)  # type: ignore[arg-type]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GGUFError(f"{self.path}: metadata {key} should be a number, found {value!r}.")
        return float(value)

    def get_list(self, key: str) -> list[Any]:
        """A required array value."""
        value = self.require(key)
        if not isinstance(value, list):
            raise GGUFError(f"{self.path}: metadata {key} should be an array, found {type(value).__name__}.")
        return value

    def check_architecture(self) -> Architecture:
        """The family's row in ARCHITECTURES, or a GGUFError naming the way forward when there is none."""
        name = self.architecture
        if name == MMPROJ_ARCHITECTURE:
            raise GGUFError(
                f"{self.path} is a multimodal projector (mmproj) file: general.architecture 'clip' is the image "
                f"encoder of a vision-language model, not a language model. Pass the text model's GGUF (the "
                f"release's other .gguf file) instead; Hearth compiles the text part only."
            )
        arch = architecture_for_gguf(name)
        if arch is None:
            raise GGUFError(f"{self.path} holds a {name!r} model. {OTHER_BACKEND_HINT}")
        return arch


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32: GGUF's 1e-5 reads back as 9.999999747378752e-06."""
    return float(str(np.float32(value)))


def _check_header(path: Path) -> None:
    # Checked before the gguf package sees the file, whose errors for these cases are cryptic.
    try:
        with path.open("rb") as handle:
            head = handle.read(HEADER_BYTES)
    except FileNotFoundError:
        raise GGUFError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise GGUFError(f"{path} is a directory, not a GGUF file.") from None
    except OSError as exc:
        raise GGUFError(f"{path} cannot be read ({exc.strerror}).") from None
    if head[:4] != GGUF_MAGIC:
        raise GGUFError(
            f"{path} is not a GGUF file (it does not start with the bytes 'GGUF'). "
            f"Give a .gguf model file, or a Hugging Face checkpoint directory."
        )
    if len(head) < HEADER_BYTES:
        raise GGUFError(f"{path} is truncated: the GGUF header is {len(head)} bytes long, not {HEADER_BYTES}.")
