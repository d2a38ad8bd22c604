"""`hearth validate`: a model directory or URL is checked as WebLLM will load it; bad input gets one clear message."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import LiveServer
from tests.fakemodel import tiny_wasm, write_fake_model
from webapp.cli import main
from webapp.mlc.manifest import update_manifest

MODEL_ID = "Tiny-Llama-q4f32_1"


def run(*args: str) -> tuple[int, str, dict | None]:
    """(exit code, all output, the --json report when asked for)."""
    result = CliRunner().invoke(main, ["validate", *args])
    report = json.loads(result.stdout) if "--json" in args else None
    return result.exit_code, result.output, report


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_a_complete_model_directory_passes_with_its_size_and_memory(models_dir: Path) -> None:
    code, output, _ = run(str(models_dir / MODEL_ID))
    assert code == 0, output
    assert "will load" in output and "Download" in output and "GPU memory" in output
    code, _, report = run(str(models_dir / MODEL_ID), "--json")
    model_files = [p for p in (models_dir / MODEL_ID).iterdir() if not p.name.startswith("hearth-")]
    assert code == 0 and report["ok"] is True and report["problems"] == []
    library = models_dir / "libs" / f"{MODEL_ID}.wasm"
    assert report["download_bytes"] == sum(p.stat().st_size for p in model_files) + library.stat().st_size
    assert report["gpu_bytes_estimate"] > 65_000


def _corrupt_same_size(model: Path) -> None:
    update_manifest(model, model.parent / "libs")  # the manifest records the good bytes
    shard = model / "params_shard_0.bin"
    shard.write_bytes(os.urandom(shard.stat().st_size))


def _rewrite_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        config = json.loads((model / "mlc-chat-config.json").read_text())
        change(config)
        (model / "mlc-chat-config.json").write_text(json.dumps(config))
    return apply


# (what is wrong, how to break a good model, what the message must say)
BAD_DIRECTORIES: list[tuple[str, Callable[[Path], None], str]] = [
    ("no config", lambda m: (m / "mlc-chat-config.json").unlink(), "mlc-chat-config.json: is missing"),
    ("HTML config", lambda m: (m / "mlc-chat-config.json").write_text("<!doctype html><html>"), "is not valid JSON"),
    ("no conv_template", _rewrite_config(lambda c: c.pop("conv_template")), "has no 'conv_template'"),
    ("bad context window", _rewrite_config(lambda c: c.update(context_window_size="big")), "context_window_size"),
    ("no tokenizer listed", _rewrite_config(lambda c: c.update(tokenizer_files=[])), "'tokenizer_files' must list"),
    ("tokenizer missing", lambda m: (m / "tokenizer.json").unlink(), "tokenizer.json: is listed"),
    ("legacy tensor cache", lambda m: (m / "tensor-cache.json").rename(m / "ndarray-cache.json"), "copy this file"),
    ("tensor cache not MLC", lambda m: (m / "tensor-cache.json").write_text("{}"), "not an MLC tensor cache"),
    ("missing shard", lambda m: (m / "params_shard_1.bin").unlink(), "params_shard_1.bin: is listed"),
    ("truncated shard", lambda m: os.truncate(m / "params_shard_0.bin", 100), "cut short"),
    ("shard too big", lambda m: (m / "params_shard_1.bin").write_bytes(os.urandom(25_001)), "25001 bytes"),
    ("corrupted shard", _corrupt_same_size, "does not match its recorded sha256"),
    ("library not wasm", lambda m: (m.parent / "libs" / f"{MODEL_ID}.wasm").write_text("<html>"), "is not WebAssembly"),
    ("library damaged", lambda m: (m.parent / "libs" / f"{MODEL_ID}.wasm").write_bytes(tiny_wasm()[:40]),
     "truncated or damaged"),
    ("library lacks exports", lambda m: (m.parent / "libs" / f"{MODEL_ID}.wasm").write_bytes(
        tiny_wasm(frozenset({"memory", "_initialize"}))), "exports that tvmjs needs"),
    ("no library", lambda m: (m.parent / "libs" / f"{MODEL_ID}.wasm").unlink(), "is missing: put it in"),
]


@pytest.mark.parametrize(("wrong", "damage", "message"), BAD_DIRECTORIES, ids=[b[0] for b in BAD_DIRECTORIES])
def test_bad_directories_get_one_clear_message_and_exit_1(models_dir: Path, wrong: str,
                                                          damage: Callable[[Path], None], message: str) -> None:
    model = models_dir / MODEL_ID
    damage(model)
    before = snapshot(models_dir)
    code, output, _ = run(str(model))
    assert code == 1
    assert message in output
    assert "will not load" in output
    assert snapshot(models_dir) == before  # validation changes nothing
    _, _, report = run(str(model), "--json")
    assert report["ok"] is False and any(message in p["message"] or message in p["where"] + ": " + p["message"]
                                         for p in report["problems"])


def test_a_library_inside_the_directory_passes(models_dir: Path) -> None:
    shutil.move(models_dir / "libs" / f"{MODEL_ID}.wasm", models_dir / MODEL_ID / "model.wasm")
    code, output, report = run(str(models_dir / MODEL_ID), "--json")
    assert code == 0, output
    assert report["library"] == str(models_dir / MODEL_ID / "model.wasm")


def test_a_gpu_library_is_checked_and_a_missing_one_only_warns(models_dir: Path) -> None:
    meta = models_dir / MODEL_ID / "hearth-model.json"
    meta.write_text(json.dumps({"model_lib": f"{MODEL_ID}.wasm", "gpu_model_lib": f"{MODEL_ID}-gpu.wasm"}))
    code, output, report = run(str(models_dir / MODEL_ID), "--json")
    assert code == 0, output
    [warning] = report["problems"]
    assert warning["severity"] == "warning" and f"GPU library {MODEL_ID}-gpu.wasm" in warning["message"]

    (models_dir / "libs" / f"{MODEL_ID}-gpu.wasm").write_bytes(b"not wasm")
    code, output, report = run(str(models_dir / MODEL_ID), "--json")
    assert code == 1 and any(f"{MODEL_ID}-gpu.wasm" in p["where"] for p in report["problems"]), output


def test_the_built_in_models_real_library_passes(tmp_path: Path) -> None:
    from webapp.default_model import MODEL_ID as BUILT_IN
    from webapp.settings import Settings

    installed = Settings().models_dir / BUILT_IN
    if not installed.is_dir():
        pytest.skip(f"{installed} is missing: run scripts/setup (it installs the built-in model)")
    code, output, _ = run(str(installed))
    assert code == 0, output


# ---- over HTTP ----


def test_a_model_on_a_live_hearth_passes_with_its_library_found_in_the_tree(live_server: LiveServer,
                                                                           models_dir: Path) -> None:
    code, output, report = run(f"{live_server.url}/models/{MODEL_ID}", "--json")
    assert code == 0, output
    assert report["library"] == f"{live_server.url}/models/{MODEL_ID}/resolve/main/{MODEL_ID}.wasm"
    assert report["problems"] == [], report["problems"]
    local = run(str(models_dir / MODEL_ID), "--json")[2]
    assert report["download_bytes"] == local["download_bytes"]


class StaticHandler(SimpleHTTPRequestHandler):
    """A plain file server in the Hub layout: no CORS, no ETags, no Range; HTML for the page paths."""

    def translate_path(self, path: str) -> str:
        return super().translate_path(path.replace("/resolve/main/", "/", 1))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def static_host(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "static"
    write_fake_model(root, model_id=MODEL_ID)
    (root / "page" / "resolve" / "main").mkdir(parents=True)
    for name in ("mlc-chat-config.json", "index.html"):
        (root / "page" / name).write_text("<!doctype html><title>Sign in</title>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(StaticHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_a_host_without_cors_is_refused_and_says_which_header(static_host: tuple[str, Path]) -> None:
    url, root = static_host
    code, output, _ = run(f"{url}/{MODEL_ID}", "--lib-url", f"{url}/libs/{MODEL_ID}.wasm")
    assert code == 1
    assert "Access-Control-Allow-Origin" in output


def test_a_truncated_shard_on_a_host_is_caught_by_its_size(static_host: tuple[str, Path]) -> None:
    url, root = static_host
    os.truncate(root / MODEL_ID / "params_shard_1.bin", 10)
    code, output, _ = run(f"{url}/{MODEL_ID}", "--lib-url", f"{url}/libs/{MODEL_ID}.wasm")
    assert code == 1 and "is 10 bytes but tensor-cache.json says 25000" in output


def test_html_where_json_was_expected(static_host: tuple[str, Path]) -> None:
    url, _root = static_host
    code, output, _ = run(f"{url}/page")
    assert code == 1 and "is not JSON" in output and "'<!doctype html>" in output and "web page" in output
    assert output.count("error:") == 1


def test_a_404_says_the_file_is_not_there(live_server: LiveServer) -> None:
    code, output, _ = run(f"{live_server.url}/models/Not-Hosted")
    assert code == 1 and "answered HTTP 404" in output


def test_an_unreachable_host_says_so(closed_port: int) -> None:
    code, output, _ = run(f"http://127.0.0.1:{closed_port}/models/{MODEL_ID}")
    assert code == 1 and "cannot be fetched" in output and "check the host is up" in output


def test_a_url_without_a_library_asks_for_lib_url(static_host: tuple[str, Path]) -> None:
    url, _root = static_host
    code, output, _ = run(f"{url}/{MODEL_ID}")
    assert code == 1 and "--lib-url" in output


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port where nothing listens: bound (so nobody else takes it) but never listened on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()
