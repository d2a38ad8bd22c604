"""The official compiler as a backend: mlc-llm's convert_weight, gen_config and compile, when installed.

mlc-llm ships only through MLC's own wheel index, so Hearth never depends on it; when the package
is importable, `hearth compile --backend mlc-llm` runs its three documented steps with the same
options and the same output layout as Hearth's own compiler (webapp.compile.output).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from webapp.compile.chat_config import pick_conv_template, tokenizer_vocab
from webapp.compile.errors import CompileError
from webapp.compile.output import destinations, refuse_existing, staged_output
from webapp.mlc.files import CHAT_CONFIG, HEARTH_META
from webapp.mlc.write import write_json

Progress = Callable[[str], None]

MLC_LLM_INSTALL = (
    "the mlc-llm backend needs MLC's own packages, which are not on PyPI: install them with "
    "`python -m pip install --pre -U -f https://mlc.ai/wheels mlc-llm-nightly-cpu mlc-ai-nightly-cpu`; "
    "WebGPU libraries also need emscripten 3.1.56 and MLC's web runtime "
    "(https://llm.mlc.ai/docs/install/emcc.html). Or leave out --backend to use Hearth's own compiler."
)
# The quantization modes mlc-llm's webgpu builds accept (python/mlc_llm/quantization/quantization.py).
MLC_LLM_QUANTIZATIONS = (
    "q0f16", "q0bf16", "q0f32", "q3f16_0", "q3f16_1", "q4f16_0", "q4f16_1", "q4bf16_0", "q4bf16_1",
    "q4f32_1", "q4f16_2", "q4f16_autoawq", "q4f16_ft",
)  # fmt: skip
# Runs on every WebGPU (no shader-f16 needed), like Hearth's own default for checkpoints.
MLC_LLM_DEFAULT_QUANTIZATION = "q4f32_1"
# How much of a failing step's output goes into the error: its last lines say what broke.
ERROR_TAIL_LINES = 5


def mlc_llm_installed() -> bool:
    """True when `python -m mlc_llm` can run in this interpreter."""
    return importlib.util.find_spec("mlc_llm") is not None


def compile_with_mlc_llm(
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
) -> Path:
    """Run mlc-llm's three steps into the Hearth layout; returns the model directory."""
    say = progress or (lambda _line: None)
    if quantization not in MLC_LLM_QUANTIZATIONS:
        raise CompileError(f"mlc-llm has no quantization {quantization!r}: use one of {', '.join(MLC_LLM_QUANTIZATIONS)}")
    if not mlc_llm_installed():
        raise CompileError(MLC_LLM_INSTALL)
    model_dir, lib_path = destinations(output, lib_output)
    refuse_existing(model_dir, force)
    with tempfile.TemporaryDirectory(prefix="hearth-mlc-") as scratch:
        checkpoint = _hugging_face_dir(source, Path(scratch), say)
        template = pick_conv_template(conv_template, _vocab(checkpoint))
        with staged_output(model_dir, [lib_path]) as (staging, [staged_lib]):
            for title, args in mlc_llm_steps(
                checkpoint, quantization, staging, staged_lib, template, context_window_size, prefill_chunk_size
            ):
                _run_step(title, args, say)
            if not (staging / CHAT_CONFIG).is_file() or not staged_lib.is_file():
                raise CompileError(f"mlc_llm finished without writing {CHAT_CONFIG} and the .wasm library")
            name = display_name or f"{source.stem if source.is_file() else source.name} ({quantization}, mlc-llm)"
            write_json(staging / HEARTH_META, {"display_name": name, "model_lib": lib_path.name})
    say(f"wrote {model_dir} and {lib_path}")
    return model_dir


def mlc_llm_steps(
    checkpoint: Path,
    quantization: str,
    staging: Path,
    staged_lib: Path,
    conv_template: str,
    context_window_size: int | None,
    prefill_chunk_size: int | None,
) -> list[tuple[str, list[str]]]:
    """(title, command line) of each documented step, in order."""
    mlc = [sys.executable, "-m", "mlc_llm"]
    quant = ["--quantization", quantization]
    gen_config = [*mlc, "gen_config", str(checkpoint), *quant, "--conv-template", conv_template, "-o", str(staging)]
    if context_window_size:
        gen_config += ["--context-window-size", str(context_window_size)]
    if prefill_chunk_size:
        gen_config += ["--prefill-chunk-size", str(prefill_chunk_size)]
    return [
        ("converting weights", [*mlc, "convert_weight", str(checkpoint), *quant, "-o", str(staging)]),
        ("writing mlc-chat-config.json", gen_config),
        ("compiling the WebGPU library",
         [*mlc, "compile", str(staging / CHAT_CONFIG), "--device", "webgpu", "-o", str(staged_lib)]),
    ]  # fmt: skip


def _hugging_face_dir(source: Path, scratch: Path, say: Progress) -> Path:
    # mlc-llm reads Hugging Face checkpoints only: a GGUF goes through Hearth's reader first.
    if source.is_file() and source.suffix == ".gguf":
        from webapp.compile.gguf import load_gguf_checkpoint, write_hf_checkpoint

        say(f"writing {source.name} as a Hugging Face checkpoint for mlc-llm")
        checkpoint = scratch / source.stem
        write_hf_checkpoint(load_gguf_checkpoint(source), checkpoint)
        return checkpoint
    if not (source / "config.json").is_file():
        raise CompileError(f"{source} is neither a .gguf file nor a Hugging Face checkpoint directory with config.json")
    return source


def _vocab(checkpoint: Path) -> dict[str, int]:
    path = checkpoint / "tokenizer.json"
    try:
        return tokenizer_vocab(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CompileError(f"{path} is missing: WebLLM needs tokenizer.json") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompileError(f"{path} is not valid JSON ({exc})") from None


def _run_step(title: str, args: list[str], say: Progress) -> None:
    say(f"mlc_llm: {title}")
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            say(f"  {line.rstrip()}")
    if process.returncode != 0:
        raise CompileError(f"mlc_llm {args[3]} failed (exit {process.returncode}): " + " | ".join(tail))
    say(f"mlc_llm: {title} took {time.monotonic() - start:.0f} s")
