"""Compile the tiny test checkpoint once per input hash and keep the result in Hearth's cache.

A cache entry is keyed by everything that shapes the output: the compiler's sources, the TVM
version, the web runtime's inputs, the checkpoint's bytes and the quantization. It is a models
directory (<entry>/models/<id>/ and <entry>/models/libs/<id>.wasm) that `hearth serve` can host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.tinycheckpoint import write_tiny_checkpoint



def model_id(quantization: str) -> str:
    """The test model's id (directory name) for a quantization."""
    return f"tiny-llama-{quantization}"


def _input_hash(checkpoint: Path, quantization: str) -> str:
    from webapp.compile.cachekey import compiler_digest, update_with_files

    digest = compiler_digest()
    update_with_files(digest, sorted(checkpoint.iterdir()), checkpoint)
    digest.update(f"q={quantization}".encode())
    return digest.hexdigest()[:16]


def compiled_models_dir(quantization: str, **checkpoint_overrides: Any) -> tuple[Path, dict[str, float]]:
    """A models directory holding the compiled tiny model; (path, timings of the compile, {} when cached)."""
    from webapp.compile.pipeline import compile_model
    from webapp.compile.runtime import cache_dir

    with tempfile.TemporaryDirectory(prefix="hearth-tiny-") as scratch:
        checkpoint = write_tiny_checkpoint(Path(scratch) / "tiny-llama", **checkpoint_overrides)
        root = cache_dir() / "compiled-tests"
        entry = root / _input_hash(checkpoint, quantization)
        models = entry / "models"
        if (models / model_id(quantization)).is_dir():
            return models, {}
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=root))
        try:
            start = time.monotonic()
            result = compile_model(checkpoint, quantization, staging / "models" / model_id(quantization))
            result.timings["total"] = time.monotonic() - start
            try:
                os.rename(staging, entry)
            except OSError:  # another run finished the same entry first: keep theirs
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return models, result.timings
