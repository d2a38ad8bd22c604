"""Hugging Face safetensors -> the Llama model's float parameters, fusing q/k/v and gate/up on the way."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from webapp.compile.errors import CompileError

# Fused parameters of model.py and the Hugging Face tensors they concatenate (along the output rows).
_FUSED = (
    (re.compile(r"^(.*\.self_attn)\.qkv_proj\.(weight|bias)$"), ("q_proj", "k_proj", "v_proj")),
    (re.compile(r"^(.*\.mlp)\.gate_up_proj\.(weight)$"), ("gate_proj", "up_proj")),
)


class CheckpointError(CompileError):
    """The checkpoint's weight files are missing, unreadable or do not match config.json."""


def hf_sources(name: str) -> list[str]:
    """The Hugging Face tensor names one model parameter is made from, in concatenation order."""
    for pattern, parts in _FUSED:
        match = pattern.match(name)
        if match:
            owner, leaf = match.groups()
            return [f"{owner}.{part}.{leaf}" for part in parts]
    return [name]


def check_shapes(
    shapes: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], where: str, config_name: str
) -> None:
    """Check a checkpoint's tensor shapes (by HF name) make every expected model parameter."""
    for name, shape in expected.items():
        sources = hf_sources(name)
        missing = [source for source in sources if source not in shapes]
        if missing:
            raise CheckpointError(f"{where} has no tensor {missing[0]} (needed for {name})")
        rows = sum(shapes[source][0] for source in sources)
        rest = {shapes[source][1:] for source in sources}
        if len(rest) != 1 or (rows, *rest.pop()) != tuple(shape):
            found = ", ".join(f"{source} {list(shapes[source])}" for source in sources)
            raise CheckpointError(f"{found} do not make {name} of shape {list(shape)} as {config_name} implies")


class LlamaLoader:
    """Reads float weights lazily from a checkpoint directory's *.safetensors files."""

    def __init__(self, checkpoint: Path):
        self.checkpoint = checkpoint
        self._files = self._index(checkpoint)

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
        check_shapes(self.shapes(), expected, str(self.checkpoint), "config.json")

    def load(self, name: str) -> np.ndarray:
        """One model parameter as float32 (bf16 and f16 widen exactly)."""
        from safetensors import safe_open

        parts = []
        for source in hf_sources(name):
            with safe_open(str(self._files[source]), framework="numpy") as handle:
                parts.append(handle.get_tensor(source).astype(np.float32))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


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
