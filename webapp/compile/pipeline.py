"""compile_model: a checkpoint (Hugging Face directory or GGUF file) -> an MLC model directory and its WebGPU library.

Layout written for `output = MODELS_DIR/<id>`:
    MODELS_DIR/<id>/            mlc-chat-config.json, tensor-cache.json, params_shard_*.bin,
                                tokenizer.json, hearth-model.json {"display_name", "model_lib", "gpu_model_lib"}
    MODELS_DIR/libs/<id>.wasm   the model library for every adapter (or wherever lib_output says)
    MODELS_DIR/libs/<id>-gpu.wasm  the same model scheduled for real GPUs, beside it (webapp.compile.schedule_sets)
Everything is checked before the slow steps start; webapp.compile.output stages and renames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webapp.compile.chat_config import chat_config
from webapp.compile.output import destinations, refuse_existing, staged_output
from webapp.compile.quantize import get_quantization
from webapp.compile.schedule_sets import ScheduleSet
from webapp.compile.scheme import Param, Quantization
from webapp.compile.source import Checkpoint, is_gguf, read_checkpoint
from webapp.compile.weights import ConversionStats
from webapp.mlc.files import CHAT_CONFIG, HEARTH_META, library_meta
from webapp.mlc.write import write_json

Progress = Callable[[str], None]


@dataclass
class CompileResult:
    """Where compile_model put things, and how long each step took (seconds)."""

    model_dir: Path
    lib_path: Path  # the fallback set's library, which runs on every adapter
    quantization: str
    gpu_lib_path: Path | None = None  # the GPU set's, when built
    lib_bytes: int = 0  # of lib_path
    kernels: int = 0  # in lib_path
    weights: ConversionStats | None = None
    timings: dict[str, float] = field(default_factory=dict)


def default_quantization(source: Path) -> str:
    """q4f32_gguf for a GGUF (its Q4_0/Q4_1/Q8_0 blocks stay exact), q4f32_1 for a checkpoint directory."""
    return "q4f32_gguf" if is_gguf(source) else "q4f32_1"


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
    gpu_library: bool = True,
    progress: Progress | None = None,
) -> CompileResult:
    """Compile a checkpoint of a family in ARCHITECTURES for WebLLM; see the module docstring for what is written.

    gpu_library=False builds only the fallback library (half the compile time; slower on real GPUs).
    """
    from webapp.compile.runtime import find_emcc
    from webapp.compile.schedule_sets import FALLBACK, GPU, library_path

    say = progress or (lambda _line: None)
    spec = get_quantization(quantization)
    model_dir, lib_path = destinations(output, lib_output)
    refuse_existing(model_dir, force)
    checkpoint = read_checkpoint(
        source, spec, context_window_size=context_window_size, prefill_chunk_size=prefill_chunk_size
    )
    mlc_config = chat_config(
        checkpoint.config, spec, checkpoint.hf_config, checkpoint.generation, checkpoint.tokenizer, conv_template,
        own_template=checkpoint.conv_template, family_template=checkpoint.architecture.conv_template,
    )
    find_emcc()  # before the slow steps: a missing linker should not cost minutes first

    libraries = {FALLBACK: lib_path, **({GPU: library_path(lib_path, GPU)} if gpu_library else {})}
    result = CompileResult(model_dir=model_dir, lib_path=lib_path, quantization=spec.name,
                           gpu_lib_path=libraries.get(GPU))
    with staged_output(model_dir, list(libraries.values())) as (staging, staged_libs):
        staged = dict(zip(libraries, staged_libs, strict=True))

        def say_final_name(line: str) -> None:  # progress names the libraries as they will be, not staged
            for chosen, staged_lib in staged.items():
                line = line.replace(staged_lib.name, libraries[chosen].name)
            say(line)

        for chosen, staged_lib in staged.items():
            params = _build_and_link(checkpoint, chosen, staged_lib, result, say_final_name)
        names = {chosen.name: path.name for chosen, path in libraries.items()}
        _write_model_files(checkpoint, spec, params, mlc_config, staging, names, display_name, result, say)
    result.lib_bytes = lib_path.stat().st_size
    say(f"wrote {model_dir} and {', '.join(str(path) for path in libraries.values())}")
    return result


def _build_and_link(
    checkpoint: Checkpoint, chosen: ScheduleSet, staged_lib: Path, result: CompileResult, say: Progress
) -> list[Param]:
    """Compile and link the checkpoint's model with one schedule set; return its parameters, in load order.

    Timings add up over the sets; the kernel count is the first (fallback) library's.
    """
    from webapp.compile.build import build_library
    from webapp.compile.limits import check_kernels, webgpu_source
    from webapp.compile.link import link_model_library
    from webapp.compile.runtime import ensure_runtime
    from webapp.compile.target import webgpu_tvm_target

    start = time.monotonic()
    runtime_home = ensure_runtime(say)
    result.timings["runtime"] = result.timings.get("runtime", 0.0) + time.monotonic() - start

    say(f"compiling the model for WebGPU ({checkpoint.model.quantization.name}, {chosen.name} kernels)")
    start = time.monotonic()
    library = build_library(checkpoint.model, webgpu_tvm_target(), chosen)
    kernels = len(check_kernels(webgpu_source(library.executable)))
    result.kernels = result.kernels or kernels
    seconds = time.monotonic() - start
    result.timings["compile"] = result.timings.get("compile", 0.0) + seconds
    say(f"compiled {kernels} WebGPU kernels in {seconds:.0f} s")

    start = time.monotonic()
    link_model_library(library.executable, staged_lib, progress=say, runtime_home=runtime_home)
    result.timings["link"] = result.timings.get("link", 0.0) + time.monotonic() - start
    return library.params


def _write_model_files(
    checkpoint: Checkpoint,
    spec: Quantization,
    params: list[Param],
    mlc_config: dict[str, Any],
    staging: Path,
    lib_names: dict[str, str],
    display_name: str | None,
    result: CompileResult,
    say: Progress,
) -> None:
    from webapp.compile.weights import convert_weights

    say("converting weights")
    stats = convert_weights(checkpoint.loader.load, params, spec, staging, say, blocks=checkpoint.blocks)
    result.weights = stats
    result.timings["weights"] = stats.seconds
    say(f"wrote {stats.nbytes / 1e6:.1f} MB of weights ({stats.megabytes_per_second:.0f} MB/s)")
    write_json(staging / CHAT_CONFIG, mlc_config)
    (staging / "tokenizer.json").write_bytes(checkpoint.tokenizer_bytes)
    name = display_name or f"{checkpoint.name} ({spec.name})"
    write_json(staging / HEARTH_META, library_meta({"display_name": name}, lib_names))

