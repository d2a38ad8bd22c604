"""Checkpoint files -> float parameters by model name: safetensors directories, and every loader's shape check."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from webapp.compile.errors import CompileError

if TYPE_CHECKING:
    from webapp.compile.multimodal import MultimodalLayout

# A family's name mapping: model parameter -> the checkpoint tensors it is made of, in concatenation order.
Sources = Callable[[str], list[str]]


class CheckpointError(CompileError):
    """The checkpoint's weight files are missing, unreadable or do not match config.json."""


def check_shapes(
    shapes: Mapping[str, tuple[int, ...]],
    expected: Mapping[str, tuple[int, ...]],
    sources_of: Sources,
    where: str,
    config_name: str,
) -> None:
    """Check a checkpoint's tensor shapes (by HF name) make every expected model parameter."""
    for name, shape in expected.items():
        sources = sources_of(name)
        missing = [source for source in sources if source not in shapes]
        if missing:
            raise CheckpointError(
                f"{where} has no tensor {missing[0]} (needed for {name}); if the checkpoint is a variant "
                f"Hearth's compiler does not build, compile it with `hearth compile --backend mlc-llm`"
            )
        rows = sum(shapes[source][0] for source in sources)
        rest = {shapes[source][1:] for source in sources}
        if len(rest) != 1 or (rows, *rest.pop()) != tuple(shape):
            found = ", ".join(f"{source} {list(shapes[source])}" for source in sources)
            raise CheckpointError(f"{found} do not make {name} of shape {list(shape)} as {config_name} implies")


class SafetensorsLoader:
    """Reads float weights lazily from a checkpoint directory's *.safetensors files."""

    def __init__(
        self,
        checkpoint: Path,
        sources: Sources,
        values: Callable[[str, np.ndarray], np.ndarray] | None = None,
        multimodal: MultimodalLayout | None = None,
    ):
        self.checkpoint = checkpoint
        self.values = values  # the family's change from checkpoint values to stored ones (Gemma's 1 + w)
        self._files = self._index(checkpoint)
        # A multimodal checkpoint keeps its text model's tensors under a prefix; the rest are not read.
        self.sources = multimodal.text_sources(sources, self._files, str(checkpoint)) if multimodal else sources

    @staticmethod
    def _index(checkpoint: Path) -> dict[str, Path]:
        from safetensors import safe_open

        files = sorted(checkpoint.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{checkpoint} has no *.safetensors weight files")
        index: dict[str, Path] = {}
        for path in files:
            try:
                with safe_open(str(path), framework="numpy") as handle:
                    index.update((key, path) for key in handle.keys())
            except Exception as exc:  # safetensors raises its own error types, and OSError
                raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
        return index

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor in the checkpoint with its shape, read from the file headers only."""
        from safetensors import safe_open

        shapes: dict[str, tuple[int, ...]] = {}
        for path in sorted(set(self._files.values())):
            with safe_open(str(path), framework="numpy") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        return shapes

    def check(self, expected: Mapping[str, tuple[int, ...]]) -> None:
        """Fail before any compiling if a parameter's tensors are missing or shaped wrongly."""
        check_shapes(self.shapes(), expected, self.sources, str(self.checkpoint), "config.json")

    def load(self, name: str) -> np.ndarray:
        """One model parameter as float32 (bf16 and f16 widen exactly)."""
        from safetensors import safe_open

        parts = []
        for source in self.sources(name):
            with safe_open(str(self._files[source]), framework="numpy") as handle:
                parts.append(handle.get_tensor(source).astype(np.float32))
        values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return self.values(name, values) if self.values else values


def read_json_file(path: Path) -> dict:
    """Parse a checkpoint JSON file, or fail with a CheckpointError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent} has no {path.name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return data
