"""`hearth install-default`: the built-in SmolLM2 model, compiled once into the cache, installed and hosted as default."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from webapp.app import create_app
from webapp.cli import main
from webapp.settings import Settings

pytestmark = pytest.mark.compiler


@pytest.fixture(scope="module")
def cached(smollm2: Path) -> tuple[Path, str]:
    """(models directory of the cached build, its key): compiled on first use (minutes), then reused."""
    from webapp.default_model import ensure_compiled

    models, key, _compiled = ensure_compiled(print)
    return models, key


def _install(models: Path) -> tuple[str, float]:
    start = time.monotonic()
    result = CliRunner().invoke(main, ["install-default", "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    return result.output, time.monotonic() - start


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_install_links_the_cached_build_once_and_then_changes_nothing(cached: tuple[Path, str], tmp_path: Path) -> None:
    from webapp.default_model import MODEL_ID

    build, _key = cached
    models = tmp_path / "models"
    output, seconds = _install(models)
    assert f"Installed {MODEL_ID} in {models} (linked from the cache)" in output
    model_dir, lib = models / MODEL_ID, models / "libs" / f"{MODEL_ID}.wasm"
    for name in os.listdir(build / MODEL_ID):
        assert (model_dir / name).samefile(build / MODEL_ID / name), name  # hard links: no second copy
    assert lib.samefile(build / "libs" / f"{MODEL_ID}.wasm")
    before = _files(model_dir) | {"lib": (lib.stat().st_ino, lib.stat().st_mtime_ns)}

    again, again_seconds = _install(models)
    print(f"\ninstall from the cache {seconds:.1f} s, again {again_seconds:.1f} s")
    assert f"{MODEL_ID} is already installed in {models}" in again
    assert _files(model_dir) | {"lib": (lib.stat().st_ino, lib.stat().st_mtime_ns)} == before
    assert sorted(p.name for p in models.iterdir()) == [MODEL_ID, "libs"], "no staging leftovers"


def test_install_replaces_a_copy_from_another_build(cached: tuple[Path, str], tmp_path: Path) -> None:
    from webapp.default_model import MODEL_ID

    _build, key = cached
    models = tmp_path / "models"
    _install(models)
    meta = models / MODEL_ID / "hearth-model.json"
    stale = json.loads(meta.read_text()) | {"build": "0123456789abcdef"}
    meta.unlink()  # a hard link into the cache: replace it, never write through it
    meta.write_text(json.dumps(stale))
    (models / MODEL_ID / "params_shard_0.bin").unlink()

    output, _seconds = _install(models)
    assert "Installed" in output
    assert json.loads(meta.read_text())["build"] == key
    assert (models / MODEL_ID / "params_shard_0.bin").is_file()


def test_hosted_index_marks_the_built_in_model_default(cached: tuple[Path, str], tmp_path: Path) -> None:
    from tests.fakemodel import write_fake_model
    from webapp.default_model import DISPLAY_NAME, MODEL_ID, QUANTIZATION

    models = tmp_path / "models"
    _install(models)
    write_fake_model(models, model_id="Another-Model-q4f32_1")
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", models_dir_override=models))) as client:
        entries = {entry["id"]: entry for entry in client.get("/models/index.json").json()["models"]}
    assert entries[MODEL_ID]["default"] is True
    assert entries["Another-Model-q4f32_1"]["default"] is False
    assert entries[MODEL_ID]["display_name"] == DISPLAY_NAME
    assert entries[MODEL_ID]["quantization"] == QUANTIZATION
    assert entries[MODEL_ID]["required_features"] == [], "runs without shader-f16"


def test_built_model_carries_the_ggufs_tokenizer_template_and_stop_tokens(cached: tuple[Path, str],
                                                                          smollm2: Path) -> None:
    from webapp.compile.chat_config import DEFAULT_REPETITION_PENALTY, DEFAULT_TEMPERATURE, DEFAULT_TOP_P
    from webapp.compile.gguf import load_gguf_checkpoint
    from webapp.default_model import MODEL_ID

    build, _key = cached
    gguf = load_gguf_checkpoint(smollm2)
    # The tokenizer.json test_gguf_tokenizer.py proves encodes like llama.cpp, byte for byte.
    assert (build / MODEL_ID / "tokenizer.json").read_text(encoding="utf-8") == gguf.tokenizer_json
    config = json.loads((build / MODEL_ID / "mlc-chat-config.json").read_text())
    assert config["conv_template"] == gguf.conv_template
    assert config["conv_template"]["stop_token_ids"] == [2, 0]  # <|im_end|>, <|endoftext|>
    assert config["conv_template"]["system_message"].startswith("You are a helpful AI assistant named SmolLM")
    assert gguf.generation_defaults == {}, "the file sets no sampling, so Hearth's small-model defaults apply"
    assert (config["temperature"], config["top_p"], config["repetition_penalty"]) == (
        DEFAULT_TEMPERATURE, DEFAULT_TOP_P, DEFAULT_REPETITION_PENALTY)
    assert config["quantization"] == "q4f32_gguf"

