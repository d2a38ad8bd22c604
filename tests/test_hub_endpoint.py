"""Hearth as a Hugging Face endpoint: the real huggingface_hub client downloads from a live Hearth on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from tests.conftest import LiveServer
from tests.fakemodel import write_fake_model
from webapp.mlc.manifest import Manifest, update_manifest
from webapp.settings import Settings

BARE = "Tiny-Llama-q4f32_1"
ORG = "mlc-ai/Twin-Shards-q4f32_1-MLC"
# Two shards of exactly one size: an mtime+size ETag would make the client store them as one blob.
TWIN_SIZES = (30_000, 30_000)


@pytest.fixture
def hub(tmp_path: Path, models_dir: Path) -> Iterator[LiveServer]:
    twin = write_fake_model(models_dir / "mlc-ai", model_id=ORG.split("/")[1], shard_sizes=TWIN_SIZES)
    (models_dir / "mlc-ai" / "libs" / f"{twin.name}.wasm").rename(twin / f"{twin.name}.wasm")
    (models_dir / "mlc-ai" / "libs").rmdir()
    with LiveServer(Settings(data_dir=tmp_path / "data", models_dir_override=models_dir)) as server:
        yield server


def endpoint(server: LiveServer) -> str:
    return f"{server.url}/models"


def manifest_of(server: LiveServer, repo_id: str) -> Manifest:
    models = server.settings.models_dir
    return update_manifest(models.joinpath(*repo_id.split("/")), server.settings.libs_dir, repo_id)


def on_disk(server: LiveServer, repo_id: str, name: str) -> bytes:
    record = manifest_of(server, repo_id).file(name)
    assert record is not None
    root = server.settings.libs_dir if record.in_libs else server.settings.models_dir.joinpath(*repo_id.split("/"))
    return (root / name).read_bytes()


@pytest.mark.parametrize("repo_id", [BARE, ORG])
def test_snapshot_download_gets_every_file_byte_for_byte(hub: LiveServer, tmp_path: Path, repo_id: str) -> None:
    manifest = manifest_of(hub, repo_id)
    snapshot = Path(snapshot_download(repo_id, endpoint=endpoint(hub), cache_dir=tmp_path / "hf", token=False))
    assert snapshot.name == manifest.commit
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(r.path for r in manifest.files)
    for record in manifest.files:  # the library travels with the model
        assert (snapshot / record.path).read_bytes() == on_disk(hub, repo_id, record.path)
    assert manifest.library in {p.name for p in snapshot.iterdir()}


def test_equal_size_shards_stay_distinct_blobs(hub: LiveServer, tmp_path: Path) -> None:
    snapshot = Path(snapshot_download(ORG, endpoint=endpoint(hub), cache_dir=tmp_path / "hf", token=False))
    first, second = (snapshot / "params_shard_0.bin").read_bytes(), (snapshot / "params_shard_1.bin").read_bytes()
    assert len(first) == len(second) and first != second
    assert first == on_disk(hub, ORG, "params_shard_0.bin") and second == on_disk(hub, ORG, "params_shard_1.bin")
    blobs = {p.name for p in (snapshot.parents[1] / "blobs").iterdir()}
    assert hashlib.sha256(first).hexdigest() in blobs and hashlib.sha256(second).hexdigest() in blobs


def test_a_second_download_is_served_from_the_client_cache(hub: LiveServer, tmp_path: Path) -> None:
    cache = tmp_path / "hf"
    snapshot_download(BARE, endpoint=endpoint(hub), cache_dir=cache, token=False)
    bodies = [path for method, path in hub.requests if method == "GET" and "/resolve/" in path]
    assert len(bodies) == len(manifest_of(hub, BARE).files)
    hub.requests.clear()
    snapshot_download(BARE, endpoint=endpoint(hub), cache_dir=cache, token=False)
    assert not [path for method, path in hub.requests if method == "GET" and "/resolve/" in path]
    hub.requests.clear()
    commit = manifest_of(hub, BARE).commit
    path = hf_hub_download(BARE, "tokenizer.json", revision=commit, endpoint=endpoint(hub), cache_dir=cache,
                           token=False)
    assert hub.requests == []  # under a commit sha nothing can have changed: not even a HEAD
    assert Path(path).read_bytes() == on_disk(hub, BARE, "tokenizer.json")


def test_a_revision_sha_resolves_and_is_immutable(hub: LiveServer, tmp_path: Path) -> None:
    commit = manifest_of(hub, ORG).commit
    snapshot = snapshot_download(ORG, revision=commit, endpoint=endpoint(hub), cache_dir=tmp_path / "hf",
                                 token=False)
    assert Path(snapshot).name == commit
    pinned = httpx.head(f"{hub.url}/models/{ORG}/resolve/{commit}/params_shard_0.bin")
    main = httpx.head(f"{hub.url}/models/{ORG}/resolve/main/params_shard_0.bin")
    assert pinned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert main.headers["Cache-Control"] == "no-cache"
    for response in (pinned, main):
        assert response.headers["X-Repo-Commit"] == commit
        assert response.headers["ETag"] == response.headers["X-Linked-Etag"]
        assert response.headers["ETag"].strip('"') == hashlib.sha256(on_disk(hub, ORG, "params_shard_0.bin")).hexdigest()
        assert response.headers["X-Linked-Size"] == str(TWIN_SIZES[0])
        assert not [h for h in response.headers if h.lower().startswith("x-xet")]


def test_hf_hub_download_into_a_local_dir(hub: LiveServer, tmp_path: Path) -> None:
    path = hf_hub_download(ORG, "params_shard_1.bin", endpoint=endpoint(hub), local_dir=tmp_path / "here",
                           token=False)
    assert Path(path) == tmp_path / "here" / "params_shard_1.bin"
    assert Path(path).read_bytes() == on_disk(hub, ORG, "params_shard_1.bin")


def test_missing_files_repos_and_revisions_raise_the_hub_errors(hub: LiveServer, tmp_path: Path) -> None:
    options = {"endpoint": endpoint(hub), "cache_dir": tmp_path / "hf", "token": False}
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(BARE, "no-such-file.json", **options)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("someone/not-hosted", "mlc-chat-config.json", **options)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("not-hosted", **options)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(BARE, "mlc-chat-config.json", revision="v2", **options)
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(BARE, revision="0" * 40, **options)


def test_head_errors_carry_the_error_code(hub: LiveServer) -> None:
    missing = httpx.head(f"{hub.url}/models/{BARE}/resolve/main/nope.bin")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
    assert missing.headers["X-Repo-Commit"] == manifest_of(hub, BARE).commit
    assert httpx.head(f"{hub.url}/models/nobody/resolve/main/x.json").headers["X-Error-Code"] == "RepoNotFound"
    assert httpx.get(f"{hub.url}/models/api/models/{BARE}/revision/v9").headers["X-Error-Code"] == "RevisionNotFound"


def test_the_api_lists_siblings_and_a_tree_with_lfs_hashes(hub: LiveServer) -> None:
    manifest = manifest_of(hub, ORG)
    info = httpx.get(f"{hub.url}/models/api/models/{ORG}").json()
    assert info["id"] == ORG and info["sha"] == manifest.commit
    assert {s["rfilename"] for s in info["siblings"]} == {r.path for r in manifest.files}
    for recursive in ("true", "True", "false"):
        tree = httpx.get(f"{hub.url}/models/api/models/{ORG}/tree/{manifest.commit}",
                         params={"recursive": recursive, "expand": "false"}).json()
        shard = next(entry for entry in tree if entry["path"] == "params_shard_0.bin")
        assert shard["lfs"]["oid"] == hashlib.sha256(on_disk(hub, ORG, "params_shard_0.bin")).hexdigest()
        assert shard["size"] == TWIN_SIZES[0] and shard["type"] == "file"
