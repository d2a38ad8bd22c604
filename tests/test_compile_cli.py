"""`hearth compile` refuses bad input with one clear line, a non-zero exit and no output left behind."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.tinycheckpoint import write_tiny_checkpoint
from webapp.cli import main

pytestmark = pytest.mark.compiler


def _edit_config(**changes: object) -> Callable[[Path], None]:
    def edit(checkpoint: Path) -> None:
        path = checkpoint / "config.json"
        config = json.loads(path.read_text())
        config.update(changes)
        path.write_text(json.dumps(config))

    return edit


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda checkpoint: (checkpoint / name).write_bytes(data)


def _delete(name: str) -> Callable[[Path], None]:
    return lambda checkpoint: (checkpoint / name).unlink()


def _drop_tensor(name: str) -> Callable[[Path], None]:
    def edit(checkpoint: Path) -> None:
        from safetensors.numpy import load_file, save_file

        tensors = load_file(str(checkpoint / "model.safetensors"))
        del tensors[name]
        save_file(tensors, str(checkpoint / "model.safetensors"))

    return edit


# (how to break the checkpoint, quantization, what the one error line must say)
BAD_INPUTS = {
    "unsupported-architecture": (_edit_config(architectures=["GPT2LMHeadModel"]), "q4f32_1", "unsupported architecture GPT2LMHeadModel"),
    "missing-config": (_delete("config.json"), "q4f32_1", "has no config.json"),
    "malformed-config": (_write("config.json", b"{not json"), "q4f32_1", "config.json is not valid JSON"),
    "config-missing-field": (_edit_config(hidden_size=None), "q4f32_1", "config.json has no 'hidden_size'"),
    "bad-gqa": (_edit_config(num_key_value_heads=3), "q4f32_1", "must be a multiple of num_key_value_heads"),
    "missing-tokenizer": (_delete("tokenizer.json"), "q4f32_1", "has no tokenizer.json"),
    "malformed-tokenizer": (_write("tokenizer.json", b'{"model": 1}'), "q4f32_1", "is not a tokenizer"),
    "missing-weights": (_delete("model.safetensors"), "q4f32_1", "has no *.safetensors weight files"),
    "corrupt-weights": (_write("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage"), "q4f32_1", "is not a readable safetensors file"),
    "missing-tensor": (_drop_tensor("model.layers.1.mlp.up_proj.weight"), "q4f32_1", "has no tensor model.layers.1.mlp.up_proj.weight"),
    "shape-mismatch": (_edit_config(intermediate_size=192), "q4f32_1", "do not make model.layers.0.mlp.gate_up_proj.weight"),
    "unknown-quantization": (lambda _checkpoint: None, "q3f16_1", "unknown quantization 'q3f16_1'"),
}


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.name.startswith("."))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_fails_with_one_line_and_no_output(case: str, tmp_path: Path) -> None:
    breaks, quantization, message = BAD_INPUTS[case]
    checkpoint = write_tiny_checkpoint(tmp_path / "checkpoint")
    breaks(checkpoint)
    models = tmp_path / "models"

    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", quantization, "-o", str(models / "tiny")])

    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.count("Error:") == 1 and result.output.rstrip().count("\n") == 0, result.output
    assert not models.exists() or _leftovers(models) == []


def test_missing_emcc_is_reported_before_any_slow_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = write_tiny_checkpoint(tmp_path / "checkpoint")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    models = tmp_path / "models"

    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", "q0f32", "-o", str(models / "tiny")])

    assert result.exit_code == 1
    assert "emcc (Emscripten) is not installed" in result.output
    assert not models.exists()


def test_failure_after_staging_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An emcc that fails: the checks pass, the staging directory is made, then the runtime build fails.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "emcc"
    fake.write_text("#!/bin/sh\necho 'emcc: broken on purpose' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HEARTH_CACHE_DIR", str(tmp_path / "cache"))
    checkpoint = write_tiny_checkpoint(tmp_path / "checkpoint")
    models = tmp_path / "models"

    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", "q0f32", "-o", str(models / "tiny")])

    assert result.exit_code == 1
    assert "is emscripten installed correctly?" in result.output
    assert _leftovers(models) == []


def test_existing_output_is_kept_unless_forced(tmp_path: Path) -> None:
    checkpoint = write_tiny_checkpoint(tmp_path / "checkpoint")
    output = tmp_path / "models" / "tiny"
    output.mkdir(parents=True)
    (output / "keep.txt").write_text("mine")

    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", "q0f32", "-o", str(output)])

    assert result.exit_code == 1
    assert "already exists: remove it or pass --force" in result.output
    assert (output / "keep.txt").read_text() == "mine"


def test_help_names_every_quantization() -> None:
    from webapp.compile.quantize import QUANTIZATIONS

    result = CliRunner().invoke(main, ["compile", "--help"])
    assert result.exit_code == 0
    for name in QUANTIZATIONS:
        assert name in result.output


def _truncated_smollm2(path: Path, smollm2: Path) -> None:
    # Cut inside the tensor data: the header and metadata read fine, the weights run past the end.
    with smollm2.open("rb") as source:
        path.write_bytes(source.read(40_000_000))


def _gpt2_gguf(path: Path, _smollm2: Path | None) -> None:
    from tests.test_gguf_reading import write_tiny_llama

    write_tiny_llama(path, arch="gpt2")


def _gguf_without_tokens(path: Path, _smollm2: Path | None) -> None:
    from tests.test_gguf_reading import write_tiny_llama

    write_tiny_llama(path, drop="tokenizer.ggml.tokens")


def _not_gguf(path: Path, _smollm2: Path | None) -> None:
    path.write_bytes(b"PK\x03\x04 a zip file, not a model")


# (how to make the file, what the one error line must say)
BAD_GGUFS = {
    "truncated": (_truncated_smollm2, "is cut short or corrupt (the file has 40000000 bytes"),
    "unsupported-architecture": (_gpt2_gguf, "holds a 'gpt2' model"),
    "no-tokenizer": (_gguf_without_tokens, "lacks the required metadata key 'tokenizer.ggml.tokens'"),
    "not-a-gguf": (_not_gguf, "is not a GGUF file"),
}


@pytest.mark.parametrize("case", BAD_GGUFS)
def test_bad_gguf_fails_with_one_line_and_no_output(case: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    make, message = BAD_GGUFS[case]
    source = tmp_path / "model.gguf"
    make(source, request.getfixturevalue("smollm2") if case == "truncated" else None)
    models = tmp_path / "models"

    result = CliRunner().invoke(main, ["compile", str(source), "-o", str(models / "model")])

    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.count("Error:") == 1 and result.output.rstrip().count("\n") == 0, result.output
    assert not models.exists() or _leftovers(models) == []


def test_cli_imports_no_compiler_dependencies() -> None:
    """`hearth serve` must start fast: TVM and numpy load only when `hearth compile` runs."""
    import subprocess
    import sys

    code = "import sys, webapp.cli; print(sorted(m for m in ('tvm', 'numpy', 'tokenizers') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_no_gpu_library_writes_the_one_library_for_every_adapter(tmp_path: Path) -> None:
    checkpoint = write_tiny_checkpoint(tmp_path / "checkpoint")
    models = tmp_path / "models"

    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", "q0f32", "-o", str(models / "tiny"),
                                       "--no-gpu-library"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(f"library {models / 'libs' / 'tiny.wasm'}")
    assert sorted(path.name for path in (models / "libs").iterdir()) == ["tiny.wasm"]
    meta = json.loads((models / "tiny" / "hearth-model.json").read_text())
    assert meta["model_lib"] == "tiny.wasm" and "gpu_model_lib" not in meta
