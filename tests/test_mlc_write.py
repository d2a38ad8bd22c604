"""webapp.mlc.write: weight shards and tensor-cache.json that read back exactly and pass the model-dir check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from webapp.compile.reference import read_params
from webapp.mlc.files import CHAT_CONFIG, TENSOR_CACHE
from webapp.mlc.model_dir import read_model_dir
from webapp.mlc.write import ALIGNMENT, write_json, write_tensor_cache


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "a.weight": rng.standard_normal((7, 5)).astype(np.float32),
        "b.q_weight": rng.integers(0, 2**32, (3, 4), dtype=np.uint32),
        "c.odd": rng.standard_normal(3).astype(np.float16),  # 6 bytes: the next tensor must be realigned
        "d.big": rng.standard_normal((64, 64)).astype(np.float32),
    }


def test_tensors_read_back_exactly_from_aligned_shards(tmp_path: Path) -> None:
    tensors = _tensors()
    stats = write_tensor_cache(tmp_path, tensors.items(), shard_bytes=4096)

    cache = json.loads((tmp_path / TENSOR_CACHE).read_text())
    # d.big (16 KiB) exceeds a shard on its own, so it gets one; the small ones share the first.
    assert [len(shard["records"]) for shard in cache["records"]] == [3, 1]
    assert stats.shards == ("params_shard_0.bin", "params_shard_1.bin")
    for shard in cache["records"]:
        assert (tmp_path / shard["dataPath"]).stat().st_size == shard["nbytes"]
        for record in shard["records"]:
            assert record["byteOffset"] % ALIGNMENT == 0 and record["format"] == "raw"
    restored = read_params(tmp_path)
    assert list(restored) == list(tensors)
    for name, array in tensors.items():
        assert restored[name].dtype == array.dtype and np.array_equal(restored[name], array)
    assert stats.nbytes == sum(a.nbytes for a in tensors.values())
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_written_directory_passes_the_model_dir_check(tmp_path: Path) -> None:
    write_tensor_cache(tmp_path, _tensors().items())
    write_json(tmp_path / CHAT_CONFIG, {"model_type": "llama", "quantization": "q0f32", "tokenizer_files": ["tokenizer.json"]})
    (tmp_path / "tokenizer.json").write_text("{}")
    model = read_model_dir(tmp_path)
    assert model.shard_bytes == (tmp_path / "params_shard_0.bin").stat().st_size
