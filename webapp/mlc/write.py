"""Write the files of an MLC model directory: tensor-cache.json with its weight shards, and JSON configs.

Every file is written under a temporary name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from webapp.mlc.files import TENSOR_CACHE

if TYPE_CHECKING:
    import numpy as np

# mlc-llm's shard size: small enough for the browser to fetch and cache one shard at a time.
SHARD_BYTES = 32 * 1024 * 1024
# Tensors start on 16-byte boundaries inside a shard, so typed views and GPU uploads stay aligned.
ALIGNMENT = 16


@dataclass(frozen=True)
class TensorCacheStats:
    """What write_tensor_cache wrote."""

    num_tensors: int
    num_params: int  # elements, summed over tensors
    nbytes: int  # bytes of tensor data, without alignment padding
    shards: tuple[str, ...]


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically (temporary name, then rename)."""
    temporary = _atomic_path(path)
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, indented for people who open it."""
    write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


class _ShardWriter:
    def __init__(self, directory: Path, shard_bytes: int):
        self.directory = directory
        self.shard_bytes = shard_bytes
        self.shards: list[dict[str, Any]] = []
        self._file: BinaryIO | None = None
        self._offset = 0

    def _open(self) -> None:
        self.close()
        name = f"params_shard_{len(self.shards)}.bin"
        self._file = open(_atomic_path(self.directory / name), "wb")  # noqa: SIM115 (closed in close())
        self._offset = 0
        self.shards.append({"dataPath": name, "format": "raw-shard", "nbytes": 0, "records": []})

    def add(self, name: str, array: np.ndarray) -> None:
        data = array.tobytes()
        start = -self._offset % ALIGNMENT + self._offset
        if self._file is None or (self._offset and start + len(data) > self.shard_bytes):
            self._open()
            start = 0
        assert self._file is not None
        self._file.write(b"\0" * (start - self._offset) + data)
        self._offset = start + len(data)
        shard = self.shards[-1]
        shard["nbytes"] = self._offset
        shard["records"].append(
            {
                "name": name,
                "shape": [int(d) for d in array.shape],
                "dtype": str(array.dtype),
                "format": "raw",
                "nbytes": len(data),
                "byteOffset": start,
            }
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            path = self.directory / self.shards[-1]["dataPath"]
            os.replace(_atomic_path(path), path)
            self._file = None


def write_tensor_cache(
    directory: Path, tensors: Iterable[tuple[str, np.ndarray]], shard_bytes: int = SHARD_BYTES
) -> TensorCacheStats:
    """Pack named arrays into params_shard_*.bin files and describe them in tensor-cache.json."""
    writer = _ShardWriter(directory, shard_bytes)
    count = elements = nbytes = 0
    try:
        for name, array in tensors:
            writer.add(name, array)
            count += 1
            elements += int(array.size)
            nbytes += int(array.nbytes)
    finally:
        writer.close()
    metadata = {"ParamSize": count, "ParamBytes": nbytes, "BitsPerParam": 8 * nbytes / max(elements, 1)}
    write_json(directory / TENSOR_CACHE, {"metadata": metadata, "records": writer.shards})
    return TensorCacheStats(count, elements, nbytes, tuple(shard["dataPath"] for shard in writer.shards))
