"""`hearth compile --backend mlc-llm`: how to install it when it is missing, and, when present, its
three steps run with Hearth's options and land in Hearth's layout, whole or not at all.

mlc-llm itself cannot be installed here (MLC's wheel index is not reachable), so the runs use the
recording stand-in in tests/stand_ins/mlc_llm; what is tested is Hearth's side of the exchange.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.tinycheckpoint import write_tiny_checkpoint
from webapp.catalog import scan_models
from webapp.cli import main
from webapp.compile.mlc_llm_backend import mlc_llm_installed
from webapp.settings import Settings

STAND_IN = Path(__file__).parent / "stand_ins"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-llama")


def run_compile(args: list[str], log: Path, fail: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(STAND_IN), "MLC_STAND_IN_LOG": str(log)}
    if fail:
        env["MLC_STAND_IN_FAIL"] = fail
    return subprocess.run([sys.executable, "-m", "webapp", "compile", *args, "--backend", "mlc-llm"],
                          env=env, capture_output=True, text=True, timeout=300)


def test_missing_mlc_llm_says_how_to_install_it(checkpoint: Path, tmp_path: Path) -> None:
    if mlc_llm_installed():
        pytest.skip("the real mlc-llm is installed in this environment")
    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", "q4f16_1", "-o",
                                       str(tmp_path / "models" / "tiny"), "--backend", "mlc-llm"])
    assert result.exit_code == 1
    assert "pip install --pre -U -f https://mlc.ai/wheels mlc-llm-nightly-cpu mlc-ai-nightly-cpu" in result.output
    assert not (tmp_path / "models").exists()


def test_unknown_quantization_is_named(checkpoint: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compile", str(checkpoint), "-q", "q5f99", "-o",
                                       str(tmp_path / "models" / "tiny"), "--backend", "mlc-llm"])
    assert result.exit_code == 1
    assert "mlc-llm has no quantization 'q5f99'" in result.output and "q4f16_1" in result.output


def test_a_source_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    result = run_compile([str(tmp_path), "-q", "q4f32_1", "-o", str(tmp_path / "models" / "x")], tmp_path / "log")
    assert result.returncode == 1
    assert "neither a .gguf file nor a Hugging Face checkpoint directory with config.json" in result.stderr
    assert not (tmp_path / "models").exists()


def test_the_three_steps_run_in_order_into_the_hearth_layout(checkpoint: Path, tmp_path: Path) -> None:
    models, log = tmp_path / "models", tmp_path / "calls.jsonl"
    result = run_compile([str(checkpoint), "-q", "q4f16_1", "-o", str(models / "tiny-mlc"),
                          "--context-window", "2048", "--prefill-chunk", "512", "--name", "Tiny via MLC"], log)
    assert result.returncode == 0, result.stderr
    convert, gen_config, compile_ = [json.loads(line) for line in log.read_text().splitlines()]
    staging = convert[convert.index("-o") + 1]
    assert convert == ["convert_weight", str(checkpoint), "--quantization", "q4f16_1", "-o", staging]
    assert gen_config == ["gen_config", str(checkpoint), "--quantization", "q4f16_1", "--conv-template", "chatml",
                          "-o", staging, "--context-window-size", "2048", "--prefill-chunk-size", "512"]
    assert compile_[:4] == ["compile", f"{staging}/mlc-chat-config.json", "--device", "webgpu"]
    assert Path(staging).name.startswith(".tiny-mlc.partial-")  # built beside the output, then renamed

    [hosted], broken = scan_models(Settings(models_dir_override=models))
    assert broken == []
    assert hosted.model_id == "tiny-mlc" and hosted.manifest.library == "tiny-mlc.wasm"
    assert hosted.model.display_name == "Tiny via MLC"
    assert sorted(p.name for p in models.iterdir()) == ["libs", "tiny-mlc"]
    assert "Compiled tiny-mlc with mlc-llm" in result.stdout


@pytest.mark.parametrize("step", ["convert_weight", "gen_config", "compile"])
def test_a_failing_step_is_reported_and_leaves_nothing(checkpoint: Path, tmp_path: Path, step: str) -> None:
    models = tmp_path / "models"
    result = run_compile([str(checkpoint), "-q", "q4f32_1", "-o", str(models / "tiny-mlc")],
                         tmp_path / "calls.jsonl", fail=step)
    assert result.returncode == 1
    assert f"mlc_llm {step} failed (exit 1)" in result.stderr
    assert f"{step} cannot handle this model" in result.stderr
    assert not [p for p in models.rglob("*") if p.is_file()]
