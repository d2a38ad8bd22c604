"""`hearth pull` from a second live Hearth: a whole copy with its library, resumable, verified, never half-written."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import LiveServer
from tests.fakemodel import fake_library, write_fake_model
from tests.support.hub_mirror import file_mirror, without_libraries
from tests.support.slow_network import slow_shards
from webapp.cli import main
from webapp.mlc.manifest import load_manifest, update_manifest
from webapp.prebuilt import prebuilt_libraries
from webapp.pull import PullError, hub_source
from webapp.pull import pull as pull_source
from webapp.settings import Settings

MODEL_ID = "Tiny-Llama-q4f32_1"
ORG_ID = "mlc-ai/Org-Model-q4f32_1-MLC"
LISTED_ID = "mlc-ai/SmolLM2-360M-Instruct-q4f32_1-MLC"  # in WebLLM's prebuilt list; ORG_ID is not


def write_org_model(models_dir: Path, repo_id: str) -> None:
    """A fake model under an organisation, its library inside its directory."""
    org, name = repo_id.split("/")
    write_fake_model(models_dir / org, model_id=name)
    (models_dir / org / "libs" / f"{name}.wasm").rename(models_dir / org / name / f"{name}.wasm")
    (models_dir / org / "libs").rmdir()


@pytest.fixture
def source(tmp_path: Path, models_dir: Path) -> Iterator[LiveServer]:
    """The Hearth pulled from: the standard fake model, and one under an organisation."""
    write_org_model(models_dir, ORG_ID)
    with LiveServer(Settings(data_dir=tmp_path / "data", models_dir_override=models_dir)) as server:
        yield server


def pull(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["pull", *args])
    return result.exit_code, result.output


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.name != "hearth-manifest.json"}


@pytest.mark.parametrize("repo_id", [MODEL_ID, ORG_ID])
def test_a_pull_from_another_hearth_copies_the_model_and_its_library(source: LiveServer, tmp_path: Path,
                                                                      repo_id: str) -> None:
    dest = tmp_path / "dest-models"
    code, output = pull(repo_id, "--endpoint", f"{source.url}/models", "--models-dir", str(dest), "--json")
    assert code == 0, output
    report = json.loads(output)
    src_dir = source.settings.models_dir.joinpath(*repo_id.split("/"))
    src_manifest = update_manifest(src_dir, source.settings.libs_dir, repo_id)
    pulled = dest.joinpath(*repo_id.split("/"))
    assert report["ok"] and report["commit"] == src_manifest.commit and report["path"] == str(pulled)
    expected = {r.path: (source.settings.libs_dir if r.in_libs else src_dir) / r.path for r in src_manifest.files}
    assert files_of(pulled) == {name: path.read_bytes() for name, path in expected.items()}
    assert [p.name for p in dest.rglob(".*")] == []  # no staging or .part files left behind
    with LiveServer(Settings(data_dir=tmp_path / "d2", models_dir_override=dest)) as second:
        import httpx

        [entry] = httpx.get(f"{second.url}/models/index.json").json()["models"]
        assert entry["id"] == repo_id and entry["commit"] == src_manifest.commit  # the same tree, the same sha
        assert httpx.get(entry["model_lib_url"]).content == expected[src_manifest.library].read_bytes()


def test_pulling_again_changes_nothing(source: LiveServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    args = (MODEL_ID, "--endpoint", f"{source.url}/models", "--models-dir", str(dest))
    assert pull(*args)[0] == 0
    source.requests.clear()
    code, output = pull(*args)
    assert code == 0 and "nothing to do" in output
    assert not [path for method, path in source.requests if "/resolve/" in path]


def test_a_different_model_with_the_same_id_needs_force(source: LiveServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    other = write_fake_model(dest, model_id=MODEL_ID, shard_sizes=(1000,))
    before = files_of(other)
    args = (MODEL_ID, "--endpoint", f"{source.url}/models", "--models-dir", str(dest))
    code, output = pull(*args)
    assert code == 1 and "already holds a different model" in output and "--force" in output
    assert files_of(other) == before
    code, output = pull(*args, "--force")
    assert code == 0, output
    assert files_of(dest / MODEL_ID)["params_shard_0.bin"] == (
        source.settings.models_dir / MODEL_ID / "params_shard_0.bin").read_bytes()


@pytest.mark.parametrize("repo_id", ["../etc", "a/../b", "/etc/passwd", "..\\..\\x", "a\\b", "x\0y", "a/b/c",
                                     "libs", "", "org/"])
def test_hostile_repo_ids_are_refused_before_anything_is_written(source: LiveServer, tmp_path: Path,
                                                                 repo_id: str) -> None:
    dest = tmp_path / "dest-models"
    code, output = pull(repo_id, "--endpoint", f"{source.url}/models", "--models-dir", str(dest))
    assert code == 1 and "is not a repository id" in output
    assert not dest.exists()


def test_unreachable_endpoints_and_missing_repos_say_so(source: LiveServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    code, output = pull(MODEL_ID, "--endpoint", "http://127.0.0.1:9/models", "--models-dir", str(dest))
    assert code == 1 and "cannot list" in output and "host is up" in output
    code, output = pull("Not-Hosted", "--endpoint", f"{source.url}/models", "--models-dir", str(dest))
    assert code == 1 and "has no model 'Not-Hosted'" in output
    code, output = pull(MODEL_ID, "--endpoint", f"{source.url}/models", "--revision", "v2", "--models-dir", str(dest))
    assert code == 1 and "has no revision 'v2'" in output
    code, output = pull(MODEL_ID, "--endpoint", f"{source.url}/models", "--models-dir", str(dest), "--json")
    assert code == 0 and json.loads(output)["ok"]
    assert not [p for p in dest.rglob(".*")]


def test_a_corrupted_file_at_the_source_is_caught_by_its_hash(source: LiveServer, tmp_path: Path) -> None:
    model = source.settings.models_dir / MODEL_ID
    update_manifest(model, source.settings.libs_dir)
    shard = model / "params_shard_1.bin"
    stat = shard.stat()
    shard.write_bytes(os.urandom(stat.st_size))  # other bytes, same size and mtime: the tree still lists the old hash
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    dest = tmp_path / "dest-models"
    code, output = pull(MODEL_ID, "--endpoint", f"{source.url}/models", "--models-dir", str(dest))
    assert code == 1 and "params_shard_1.bin" in output and "does not match" in output
    assert not (dest / MODEL_ID).exists()


def test_a_pull_by_url_of_a_model_directory(source: LiveServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    code, output = pull(f"{source.url}/models/{ORG_ID}/resolve/main/", "--models-dir", str(dest))
    assert code == 0, output
    assert (dest / ORG_ID / "mlc-chat-config.json").is_file()


# ---- a Hub MLC repository, which holds no library: WebLLM's prebuilt list names it ----


@pytest.fixture
def hub_repos(tmp_path: Path) -> Iterator[LiveServer]:
    """Two MLC repositories served as the Hub serves mlc-ai's: without their libraries."""
    models = tmp_path / "hub-models"
    for repo_id in (LISTED_ID, ORG_ID):
        write_org_model(models, repo_id)
    with LiveServer(Settings(data_dir=tmp_path / "data", models_dir_override=models), wrap=without_libraries) as hub:
        yield hub


def test_a_hub_repo_gets_the_library_webllms_prebuilt_list_names(hub_repos: LiveServer, tmp_path: Path) -> None:
    listed = prebuilt_libraries()[LISTED_ID]
    lib_path = listed.split("://", 1)[1].split("/", 1)[1]  # the list's URL, less its scheme and host
    mirror_root = tmp_path / "lib-mirror"
    (mirror_root / lib_path).parent.mkdir(parents=True)
    (mirror_root / lib_path).write_bytes(fake_library())
    with file_mirror(mirror_root) as (mirror, asked):
        # The whole list, each library's host replaced by the loopback mirror (tests cannot reach GitHub).
        libraries = {repo: f"{mirror}/{url.split('://', 1)[1].split('/', 1)[1]}"
                     for repo, url in prebuilt_libraries().items()}
        dest = tmp_path / "dest-models"
        result = pull_source(hub_source(LISTED_ID, f"{hub_repos.url}/models", libraries=libraries), dest)
        again = pull_source(hub_source(LISTED_ID, f"{hub_repos.url}/models", libraries=libraries), dest)
    assert asked == [f"/{lib_path}"] and result.changed and not again.changed  # the second pull: nothing to do
    pulled = dest.joinpath(*LISTED_ID.split("/"))
    assert result.path == str(pulled) and (pulled / listed.rsplit("/", 1)[1]).read_bytes() == fake_library()
    src = hub_repos.settings.models_dir.joinpath(*LISTED_ID.split("/"))
    assert {n: b for n, b in files_of(pulled).items() if not n.endswith(".wasm")} == {
        n: b for n, b in files_of(src).items() if not n.endswith(".wasm")}
    with LiveServer(Settings(data_dir=tmp_path / "d2", models_dir_override=dest)) as second:
        import httpx

        [entry] = httpx.get(f"{second.url}/models/index.json").json()["models"]
        assert entry["id"] == LISTED_ID and entry["model_lib_url"].endswith(listed.rsplit("/", 1)[1])


def test_a_hub_repo_the_prebuilt_list_lacks_needs_lib_url(hub_repos: LiveServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    code, output = pull(ORG_ID, "--endpoint", f"{hub_repos.url}/models", "--models-dir", str(dest))
    assert code == 1 and "holds no model library" in output and "--lib-url" in output
    assert not dest.exists()
    with pytest.raises(PullError, match="prebuilt list has no entry"):
        hub_source(LISTED_ID, f"{hub_repos.url}/models", libraries={})


def test_an_unreachable_library_host_is_one_clear_message(hub_repos: LiveServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    code, output = pull(ORG_ID, "--endpoint", f"{hub_repos.url}/models", "--models-dir", str(dest),
                        "--lib-url", "http://127.0.0.1:9/libs/Org-Model.wasm")
    assert code == 1 and "cannot fetch http://127.0.0.1:9/libs/Org-Model.wasm" in output, output
    assert "run the pull again" in output and not (dest / ORG_ID).exists()


# ---- killed and resumed; a full disk ----


@pytest.fixture
def slow_source(tmp_path: Path) -> Iterator[LiveServer]:
    models = tmp_path / "slow-models"
    write_fake_model(models, model_id=MODEL_ID, shard_sizes=(2_000_000, 2_000_000, 2_000_000))
    with LiveServer(Settings(data_dir=tmp_path / "data", models_dir_override=models), wrap=slow_shards) as server:
        yield server


def pull_process(source: LiveServer, dest: Path, **kwargs: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "webapp", "pull", MODEL_ID, "--endpoint", f"{source.url}/models",
               "--models-dir", str(dest)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_a_killed_pull_resumes_without_fetching_finished_files_again(slow_source: LiveServer,
                                                                      tmp_path: Path) -> None:
    dest = tmp_path / "dest-models"
    process = pull_process(slow_source, dest)
    deadline = time.monotonic() + 60
    def halfway() -> bool:  # shard 0 finished, shard 1 partly written
        parts = list(dest.glob(".pull-*/.params_shard_1.bin.part"))
        return bool(list(dest.glob(".pull-*/params_shard_0.bin")) and parts and parts[0].stat().st_size > 200_000)

    while not halfway():
        assert time.monotonic() < deadline and process.poll() is None, "the pull ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    [staging] = dest.glob(".pull-*")
    part_bytes = (staging / ".params_shard_1.bin.part").stat().st_size
    assert 0 < part_bytes < 2_000_000 and not (dest / MODEL_ID).exists()
    slow_source.requests.clear()
    code, output = pull(MODEL_ID, "--endpoint", f"{slow_source.url}/models", "--models-dir", str(dest), "--json")
    assert code == 0, output
    fetched = [path.rsplit("/", 1)[1] for method, path in slow_source.requests if method == "GET" and "/resolve/" in path]
    assert "params_shard_0.bin" not in fetched  # finished before the kill: verified, not fetched again
    assert fetched.count("params_shard_1.bin") == 1 and "params_shard_2.bin" in fetched
    report = json.loads(output)
    assert report["reused_files"] >= 1 and report["fetched_bytes"] < report["total_bytes"] - 2_000_000
    src = slow_source.settings.models_dir / MODEL_ID
    assert files_of(dest / MODEL_ID)["params_shard_1.bin"] == (src / "params_shard_1.bin").read_bytes()
    assert load_manifest(dest / MODEL_ID).commit == update_manifest(src, slow_source.settings.libs_dir).commit


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead


def test_a_full_disk_is_one_clear_message_and_nothing_is_installed(slow_source: LiveServer, tmp_path: Path) -> None:
    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)],
                             capture_output=True).returncode == 0
    try:
        process = pull_process(slow_source, small, preexec_fn=None if mounted else _limit_file_size)
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 1, output
        assert "cannot write into" in output and "free some space" in output and "run the pull again" in output
        assert "Traceback" not in output
        assert not (small / MODEL_ID).exists()
    finally:
        if mounted:
            subprocess.run(["umount", str(small)], check=True)
