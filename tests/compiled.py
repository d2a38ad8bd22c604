"""Compile the tiny test checkpoint once per input hash and keep the result in Hearth's cache.

A cache entry is keyed by everything that shapes the output: the compiler's sources, the TVM
version, the web runtime's inputs, the checkpoint's bytes and the quantization. It is a models
directory (<entry>/models/<id>/ and <entry>/models/libs/<id>.wasm) that `hearth serve` can host.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.tinycheckpoint import FAMILIES, write_tiny_checkpoint



def model_id(quantization: str, family: str = "llama") -> str:
    """The test model's id (directory name) for a quantization and a family of tests.tinycheckpoint.FAMILIES."""
    return f"tiny-{family}-{quantization}"


def _input_hash(*parts: str | Path) -> str:
    """Hash of the compiler's inputs (webapp.compile.cachekey) and the given strings and files."""
    from webapp.compile.cachekey import compiler_digest

    digest = compiler_digest()
    for part in parts:
        if isinstance(part, Path):
            for path in sorted(part.iterdir()) if part.is_dir() else [part]:
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        else:
            digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def _cached(key: str, build: Callable[[Path], None]) -> Path:
    """The cache entry for key, made by build(staging directory) if absent; renamed into place whole."""
    from webapp.compile.runtime import cache_dir

    root = cache_dir() / "compiled-tests"
    entry = root / key
    if entry.is_dir():
        return entry
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        build(staging)
        try:
            os.rename(staging, entry)
        except OSError:  # another run finished the same entry first: keep theirs
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def compiled_models_dir(
    quantization: str, family: str = "llama", prefill_chunk_size: int | None = None
) -> tuple[Path, dict[str, float]]:
    """A models directory holding a family's compiled tiny model; (path, timings of the compile, {} when cached).
    prefill_chunk_size: a build whose prompts prefill in chunks of that many tokens."""
    from webapp.compile.pipeline import compile_model

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hearth-tiny-") as scratch:
        checkpoint = write_tiny_checkpoint(Path(scratch) / f"tiny-{family}", **FAMILIES[family])

        def build(staging: Path) -> None:
            start = time.monotonic()
            result = compile_model(checkpoint, quantization, staging / "models" / model_id(quantization, family),
                                   prefill_chunk_size=prefill_chunk_size)
            timings.update(result.timings, total=time.monotonic() - start)

        chunk = f" chunk={prefill_chunk_size}" if prefill_chunk_size else ""  # the default builds keep their key
        entry = _cached(_input_hash(checkpoint, f"q={quantization}{chunk}"), build)
    return entry / "models", timings


def multi_shard_models_dir(quantization: str, shard_bytes: int) -> Path:
    """A models directory holding the tiny Llama with its weights packed into shards of at most shard_bytes:
    the same tensors, config, tokenizer and library; only tensor-cache.json and the shard files differ."""
    import numpy as np

    from webapp.mlc.files import TENSOR_CACHE
    from webapp.mlc.write import write_tensor_cache

    compiled = compiled_models_dir(quantization)[0]
    name = model_id(quantization)
    source, library = compiled / name, compiled / "libs" / f"{name}.wasm"

    def tensors() -> Iterator[tuple[str, Any]]:
        for shard in json.loads((source / TENSOR_CACHE).read_text())["records"]:
            data = (source / shard["dataPath"]).read_bytes()
            for record in shard["records"]:
                array = np.frombuffer(data, dtype=record["dtype"], count=int(np.prod(record["shape"])),
                                      offset=record["byteOffset"])
                yield record["name"], array.reshape(record["shape"])

    # The server writes its manifest (hashes) next to the files it hosts: not an input.
    inputs = sorted(path for path in source.iterdir() if path.name != "hearth-manifest.json")

    def build(staging: Path) -> None:
        target = staging / "models" / name
        target.mkdir(parents=True)
        (staging / "models" / "libs").mkdir()
        shutil.copy2(library, staging / "models" / "libs" / library.name)
        for path in inputs:
            if path.name != TENSOR_CACHE and not path.name.startswith("params_shard_"):
                shutil.copy2(path, target / path.name)
        write_tensor_cache(target, tensors(), shard_bytes)

    writer = Path(__file__).parent.parent / "webapp" / "mlc" / "write.py"
    return _cached(_input_hash(*inputs, library, writer, f"shards<={shard_bytes}"), build) / "models"


def compiled_abi_library(vocab: int) -> Path:
    """A WebGPU library holding only WebLLM's sampling and logit-processing functions for a vocabulary."""
    import tvm
    from tvm import relax

    from webapp.compile.abi import ABI_FUNCTIONS, attach_abi
    from webapp.compile.build import pipeline
    from webapp.compile.link import link_model_library
    from webapp.compile.target import webgpu_tvm_target

    name = f"hearth-abi-{vocab}.wasm"

    def build(staging: Path) -> None:
        target = webgpu_tvm_target()
        meta: dict[str, Any] = {}
        mod = attach_abi(tvm.IRModule(), target, vocab, meta)
        with target:
            executable = relax.build(mod, target=target, relax_pipeline=pipeline(target, meta, ABI_FUNCTIONS))
        link_model_library(executable, staging / name)

    return _cached(_input_hash(f"abi vocab={vocab}"), build) / name


def scale_add_module(host_only: bool = False) -> Any:
    """Relax `main(x, y) = 2 * x + y` over a dynamic length n: one TIR kernel, scheduled for WebGPU
    (or, with host_only, the unscheduled module)."""
    import tvm
    from tvm import relax, te
    from tvm.s_tir import dlight as dl

    from webapp.compile.target import webgpu_tvm_target

    builder = relax.BlockBuilder()
    n = tvm.tirx.Var("n", "int64")
    x = relax.Var("x", relax.TensorType((n,), "float32"))
    y = relax.Var("y", relax.TensorType((n,), "float32"))
    with builder.function("main", [x, y]):
        with builder.dataflow():
            out = builder.emit_te(
                lambda a, b: te.compute(a.shape, lambda i: a[i] * 2.0 + b[i], name="scale_add"),
                x,
                y,
                primfunc_name_hint="scale_add",
            )
            result = builder.emit_output(out)
        builder.emit_func_output(result)
    mod = builder.get()
    if host_only:
        return mod
    with webgpu_tvm_target():
        # Bind the loop to blocks of threads, as a GPU kernel must be.
        return dl.ApplyDefaultSchedule(dl.gpu.Fallback())(mod)
