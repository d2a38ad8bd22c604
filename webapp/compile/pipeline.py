"""compile_model: a Hugging Face checkpoint -> an MLC model directory and its WebGPU model library.

Layout written for `output = MODELS_DIR/<id>`:
    MODELS_DIR/<id>/            mlc-chat-config.json, tensor-cache.json, params_shard_*.bin,
                                tokenizer.json, hearth-model.json {"display_name", "model_lib"}
    MODELS_DIR/libs/<id>.wasm   the model library (or wherever lib_output says)
which is exactly what `hearth serve --models-dir MODELS_DIR` hosts. Everything is checked before
the slow steps start, built beside its destination under a dot-name, and renamed into place
only when all of it succeeded.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webapp.compile.chat_config import chat_config
from webapp.compile.errors import CompileError
from webapp.compile.llama.config import LlamaConfig, config_from_hf
from webapp.compile.llama.loader import LlamaLoader, read_json_file
from webapp.compile.quantize import Quantization, get_quantization
from webapp.compile.weights import ConversionStats
from webapp.mlc.files import CHAT_CONFIG, HEARTH_META, LIB_NAME_PATTERN, MODEL_ID_PATTERN
from webapp.mlc.write import write_json

Progress = Callable[[str], None]
LIBS_DIR_NAME = "libs"


@dataclass(frozen=True)
class Checkpoint:
    """A checked Hugging Face checkpoint directory, ready to compile."""

    path: Path
    hf_config: dict[str, Any]
    config: LlamaConfig
    tokenizer: dict[str, Any]
    generation: dict[str, Any]
    loader: LlamaLoader


@dataclass
class CompileResult:
    """Where compile_model put things, and how long each step took (seconds)."""

    model_dir: Path
    lib_path: Path
    quantization: str
    lib_bytes: int = 0
    kernels: int = 0
    weights: ConversionStats | None = None
    timings: dict[str, float] = field(default_factory=dict)


def read_checkpoint(
    source: Path,
    quantization: Quantization,
    *,
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
) -> Checkpoint:
    """Read and check config.json, tokenizer.json, generation_config.json and the weight files' headers."""
    from webapp.compile.build import float_param_shapes

    if not source.is_dir():
        raise CompileError(f"{source} is not a directory: give a Hugging Face checkpoint directory")
    hf_config = read_json_file(source / "config.json")
    config = config_from_hf(hf_config, context_window_size=context_window_size, prefill_chunk_size=prefill_chunk_size)
    tokenizer = _read_tokenizer(source / "tokenizer.json", config)
    generation_path = source / "generation_config.json"
    generation = read_json_file(generation_path) if generation_path.exists() else {}
    loader = LlamaLoader(source)
    loader.check(float_param_shapes(config, quantization))
    return Checkpoint(source, hf_config, config, tokenizer, generation, loader)


def _read_tokenizer(path: Path, config: LlamaConfig) -> dict[str, Any]:
    from tokenizers import Tokenizer

    data = read_json_file(path)
    try:
        tokenizer = Tokenizer.from_str(json.dumps(data))
    except Exception as exc:  # the tokenizers library raises a bare Exception on bad input
        raise CompileError(f"{path} is not a tokenizer the tokenizers library can load ({exc})") from None
    if tokenizer.get_vocab_size(with_added_tokens=True) > config.vocab_size:
        raise CompileError(
            f"{path} has {tokenizer.get_vocab_size(with_added_tokens=True)} tokens but config.json's "
            f"vocab_size is {config.vocab_size}: the checkpoint's files do not belong together"
        )
    return data


def destinations(output: Path, lib_output: Path | None) -> tuple[Path, Path]:
    """(model directory, library path) for an output directory, checking names the server accepts."""
    output = output.resolve()
    if not MODEL_ID_PATTERN.match(output.name):
        raise CompileError(f"{output.name!r} cannot be a model id: use letters, digits, '.', '_' and '-'")
    lib = (lib_output or output.parent / LIBS_DIR_NAME / f"{output.name}.wasm").resolve()
    if not LIB_NAME_PATTERN.match(lib.name):
        raise CompileError(f"{lib.name!r} is not a model library name: it must end in .wasm, without odd characters")
    return output, lib


def compile_model(
    source: Path,
    quantization: str,
    output: Path,
    *,
    lib_output: Path | None = None,
    display_name: str | None = None,
    conv_template: str = "auto",
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> CompileResult:
    """Compile a Llama-family checkpoint for WebLLM; see the module docstring for what is written."""
    from webapp.compile.runtime import find_emcc

    say = progress or (lambda _line: None)
    spec = get_quantization(quantization)
    model_dir, lib_path = destinations(output, lib_output)
    if model_dir.exists() and not force:
        raise CompileError(f"{model_dir} already exists: remove it or pass --force to replace it")
    checkpoint = read_checkpoint(
        source, spec, context_window_size=context_window_size, prefill_chunk_size=prefill_chunk_size
    )
    mlc_config = chat_config(
        checkpoint.config, spec, checkpoint.hf_config, checkpoint.generation, checkpoint.tokenizer, conv_template
    )
    find_emcc()  # before the slow steps: a missing linker should not cost minutes first

    result = CompileResult(model_dir=model_dir, lib_path=lib_path, quantization=spec.name)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    lib_path.parent.mkdir(parents=True, exist_ok=True)
    # Dot-names: the server skips them, and a rename on the same file system is atomic.
    tag = uuid.uuid4().hex[:8]
    staging = model_dir.with_name(f".{model_dir.name}.partial-{tag}")
    staged_lib = lib_path.with_name(f".{lib_path.stem}.partial-{tag}.wasm")

    def say_final_name(line: str) -> None:  # progress names the library as it will be, not staged
        say(line.replace(staged_lib.name, lib_path.name))

    staging.mkdir()
    try:
        _build_and_link(checkpoint, spec, staged_lib, result, say_final_name)
        _write_model_files(checkpoint, spec, mlc_config, staging, lib_path.name, display_name, result, say)
        _move_into_place(staging, staged_lib, model_dir, lib_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        staged_lib.unlink(missing_ok=True)
    result.lib_bytes = lib_path.stat().st_size
    say(f"wrote {model_dir} and {lib_path}")
    return result


def _build_and_link(
    checkpoint: Checkpoint, spec: Quantization, staged_lib: Path, result: CompileResult, say: Progress
) -> None:
    from webapp.compile.build import build_library
    from webapp.compile.limits import check_kernels, webgpu_source
    from webapp.compile.link import link_model_library
    from webapp.compile.runtime import ensure_runtime
    from webapp.compile.target import webgpu_tvm_target

    start = time.monotonic()
    runtime_home = ensure_runtime(say)
    result.timings["runtime"] = time.monotonic() - start

    say(f"compiling the model for WebGPU ({spec.name})")
    start = time.monotonic()
    executable, _ = build_library(checkpoint.config, spec, webgpu_tvm_target())
    result.kernels = len(check_kernels(webgpu_source(executable)))
    result.timings["compile"] = time.monotonic() - start
    say(f"compiled {result.kernels} WebGPU kernels in {result.timings['compile']:.0f} s")

    start = time.monotonic()
    link_model_library(executable, staged_lib, progress=say, runtime_home=runtime_home)
    result.timings["link"] = time.monotonic() - start


def _write_model_files(
    checkpoint: Checkpoint,
    spec: Quantization,
    mlc_config: dict[str, Any],
    staging: Path,
    lib_name: str,
    display_name: str | None,
    result: CompileResult,
    say: Progress,
) -> None:
    from webapp.compile.build import library_params
    from webapp.compile.weights import convert_weights

    say("converting weights")
    stats = convert_weights(checkpoint.loader.load, library_params(checkpoint.config, spec), spec, staging, say)
    result.weights = stats
    result.timings["weights"] = stats.seconds
    say(f"wrote {stats.nbytes / 1e6:.1f} MB of weights ({stats.megabytes_per_second:.0f} MB/s)")
    write_json(staging / CHAT_CONFIG, mlc_config)
    shutil.copyfile(checkpoint.path / "tokenizer.json", staging / "tokenizer.json")
    name = display_name or f"{checkpoint.path.name} ({spec.name})"
    write_json(staging / HEARTH_META, {"display_name": name, "model_lib": lib_name})


def _move_into_place(staging: Path, staged_lib: Path, model_dir: Path, lib_path: Path) -> None:
    # The library first: a model directory must never be visible without its library.
    staged_lib.replace(lib_path)
    if model_dir.exists():
        old = model_dir.with_name(f".{model_dir.name}.old-{uuid.uuid4().hex[:8]}")
        model_dir.rename(old)
        shutil.rmtree(old)
    staging.rename(model_dir)
