"""The per-model manifest: sizes, sha256, git blob ids, the derived commit sha, SRI, and hashing only once."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.fakemodel import write_fake_model
from webapp.mlc.files import MANIFEST
from webapp.mlc.manifest import load_manifest, update_manifest

MODEL_ID = "Tiny-Llama-q4f32_1"


def test_manifest_records_every_file_with_sizes_and_hashes_git_agrees_with(models_dir: Path) -> None:
    model_dir = models_dir / MODEL_ID
    manifest = update_manifest(model_dir, models_dir / "libs")
    on_disk = {p.name: p for p in model_dir.iterdir() if p.name != MANIFEST}
    on_disk[f"{MODEL_ID}.wasm"] = models_dir / "libs" / f"{MODEL_ID}.wasm"
    assert {r.path for r in manifest.files} == set(on_disk)
    for record in manifest.files:
        data = on_disk[record.path].read_bytes()
        assert record.size == len(data)
        assert record.sha256 == hashlib.sha256(data).hexdigest()
        git = subprocess.run(["git", "hash-object", "--no-filters", str(on_disk[record.path])],
                             capture_output=True, text=True, check=True)
        assert record.git_sha1 == git.stdout.strip()
    assert manifest.library_record.in_libs
    saved = json.loads((model_dir / MANIFEST).read_text())
    assert saved["commit"] == manifest.commit and len(manifest.commit) == 40
    int(manifest.commit, 16)


def test_sri_hashes_cover_config_tokenizer_and_library(models_dir: Path) -> None:
    manifest = update_manifest(models_dir / MODEL_ID, models_dir / "libs")
    def sri(path: Path) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    assert manifest.integrity() == {
        "config": sri(models_dir / MODEL_ID / "mlc-chat-config.json"),
        "model_lib": sri(models_dir / "libs" / f"{MODEL_ID}.wasm"),
        "tokenizer": {"tokenizer.json": sri(models_dir / MODEL_ID / "tokenizer.json")},
    }


@pytest.mark.parametrize("change", ["shard bytes", "library bytes", "new file", "removed file"])
def test_commit_changes_whenever_any_file_changes(models_dir: Path, change: str) -> None:
    model_dir, libs = models_dir / MODEL_ID, models_dir / "libs"
    before = update_manifest(model_dir, libs).commit
    assert update_manifest(model_dir, libs).commit == before  # nothing changed, nothing moves
    if change == "shard bytes":
        shard = model_dir / "params_shard_0.bin"
        data = bytearray(shard.read_bytes())
        data[7] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif change == "library bytes":
        (libs / f"{MODEL_ID}.wasm").write_bytes(b"\0asm\x01\0\0\0" + os.urandom(100))
    elif change == "new file":
        (model_dir / "README.md").write_text("hello")
    elif change == "removed file":
        (model_dir / "hearth-model.json").write_text("{}")
        middle = update_manifest(model_dir, libs).commit
        assert middle != before
        before = middle
        (model_dir / "hearth-model.json").unlink()
    assert update_manifest(model_dir, libs).commit != before


def test_a_library_moved_into_the_model_directory_is_found_there(models_dir: Path) -> None:
    model_dir, libs = models_dir / MODEL_ID, models_dir / "libs"
    before = update_manifest(model_dir, libs)
    shutil.move(libs / f"{MODEL_ID}.wasm", model_dir / f"{MODEL_ID}.wasm")  # keeps size and mtime
    after = update_manifest(model_dir, libs)
    assert before.library_record.in_libs and not after.library_record.in_libs
    assert after.commit == before.commit  # the same tree: same names, same bytes


def test_unchanged_files_are_never_hashed_again(models_dir: Path) -> None:
    """Keyed by size and mtime: bytes swapped under an unchanged size and mtime are (by design) not re-read."""
    model_dir, libs = models_dir / MODEL_ID, models_dir / "libs"
    first = update_manifest(model_dir, libs)
    shard = model_dir / "params_shard_0.bin"
    stat = shard.stat()
    shard.write_bytes(os.urandom(stat.st_size))
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert update_manifest(model_dir, libs).file("params_shard_0.bin") == first.file("params_shard_0.bin")
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched: hashed again
    fresh = update_manifest(model_dir, libs).file("params_shard_0.bin")
    assert fresh is not None and fresh.sha256 == hashlib.sha256(shard.read_bytes()).hexdigest()


def test_a_hand_copied_directory_gets_its_manifest_on_first_listing(client: TestClient, models_dir: Path,
                                                                     tmp_path: Path) -> None:
    copied = write_fake_model(tmp_path / "elsewhere", model_id="Copied-q4f32_1")
    shutil.copytree(copied, models_dir / "Copied-q4f32_1")
    shutil.copy(tmp_path / "elsewhere" / "libs" / "Copied-q4f32_1.wasm", models_dir / "libs")
    assert not (models_dir / "Copied-q4f32_1" / MANIFEST).exists()
    models = {m["id"]: m for m in client.get("/models/index.json").json()["models"]}
    manifest = load_manifest(models_dir / "Copied-q4f32_1")
    assert manifest is not None and models["Copied-q4f32_1"]["commit"] == manifest.commit
    assert models["Copied-q4f32_1"]["integrity"] == manifest.integrity()


def test_index_reads_the_manifest_instead_of_reparsing_the_model(client: TestClient, models_dir: Path) -> None:
    client.get("/models/index.json")
    config = models_dir / MODEL_ID / "mlc-chat-config.json"
    stat = config.stat()
    # Same size and mtime, other content: only a listing that re-parsed the config would see it.
    config.write_text(config.read_text().replace('"q4f32_1"', '"q9f32_9"'))
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    [entry] = client.get("/models/index.json").json()["models"]
    assert entry["quantization"] == "q4f32_1"


def test_a_library_inside_the_model_directory_is_found_and_served(client: TestClient, models_dir: Path) -> None:
    model_dir = models_dir / MODEL_ID
    inside = model_dir / "whatever-name.wasm"
    shutil.move(models_dir / "libs" / f"{MODEL_ID}.wasm", inside)
    [entry] = client.get("/models/index.json").json()["models"]
    assert entry["model_lib_url"] == f"http://127.0.0.1:8000/models/{MODEL_ID}/resolve/main/whatever-name.wasm"
    response = client.get(entry["model_lib_url"])
    assert response.content == inside.read_bytes()
    assert response.headers["content-type"] == "application/wasm"


def test_a_missing_library_says_where_it_must_go(client: TestClient, models_dir: Path) -> None:
    (models_dir / "libs" / f"{MODEL_ID}.wasm").unlink()
    assert client.get("/models/index.json").json()["models"] == []
    page = client.get("/library").text
    assert f"{MODEL_ID}.wasm is missing" in page
    assert str(models_dir / MODEL_ID) in page and str(models_dir / "libs") in page


def test_organisation_folders_give_org_slash_name_ids(client: TestClient, models_dir: Path) -> None:
    org = models_dir / "mlc-ai"
    model_dir = write_fake_model(org, model_id="SmolLM2-360M-Instruct-q4f32_1-MLC")
    (org / "libs" / f"{model_dir.name}.wasm").rename(model_dir / f"{model_dir.name}.wasm")  # the library inside
    (org / "libs").rmdir()
    models = {m["id"]: m for m in client.get("/models/index.json").json()["models"]}
    repo = "mlc-ai/SmolLM2-360M-Instruct-q4f32_1-MLC"
    assert set(models) == {MODEL_ID, repo}
    assert models[repo]["model_url"] == f"http://127.0.0.1:8000/models/{repo}/resolve/main/"
    config = client.get(models[repo]["model_url"] + "mlc-chat-config.json")
    assert config.status_code == 200 and config.json()["model_type"] == "llama"
    assert client.get(f"/library/{repo}", headers={"HX-Request": "true"}).status_code == 200
