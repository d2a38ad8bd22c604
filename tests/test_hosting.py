"""The model host: HF layout, Range/HEAD/ETag/304, the index, and refusal of every path outside it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import LiveServer
from tests.fakemodel import write_fake_model
from webapp.catalog import index_all
from webapp.settings import Settings

MODEL = "/models/Tiny-Llama-q4f32_1/resolve/main"


def test_index_lists_hosted_models_with_urls_webllm_can_use(client: TestClient, models_dir: Path) -> None:
    [entry] = client.get("/models/index.json").json()["models"]
    model_dir = models_dir / "Tiny-Llama-q4f32_1"
    on_disk = sum(p.stat().st_size for p in model_dir.iterdir() if not p.name.startswith("hearth-"))
    lib_bytes = (models_dir / "libs" / "Tiny-Llama-q4f32_1.wasm").stat().st_size
    assert entry["id"] == "Tiny-Llama-q4f32_1"
    assert entry["display_name"] == "Tiny Llama"
    assert entry["quantization"] == "q4f32_1"
    assert entry["required_features"] == []
    assert entry["total_bytes"] == on_disk + lib_bytes
    assert entry["model_url"] == "http://127.0.0.1:8000/models/Tiny-Llama-q4f32_1/resolve/main/"
    assert entry["model_lib_url"] == "http://127.0.0.1:8000/libs/Tiny-Llama-q4f32_1.wasm"
    assert client.get(entry["model_url"] + "mlc-chat-config.json").json()["model_type"] == "llama"
    assert client.get(entry["model_lib_url"]).content[:4] == b"\0asm"


def test_index_marks_f16_models_and_leaves_out_broken_ones(client: TestClient, models_dir: Path) -> None:
    write_fake_model(models_dir, model_id="Big-q4f16_1", quantization="q4f16_1")
    no_lib = write_fake_model(models_dir, model_id="NoLib-q0f32", quantization="q0f32")
    (models_dir / "libs" / "NoLib-q0f32.wasm").unlink()
    truncated = write_fake_model(models_dir, model_id="Cut-q0f32", quantization="q0f32")
    with open(truncated / "params_shard_1.bin", "r+b") as shard:
        shard.truncate(100)
    models = {m["id"]: m for m in client.get("/models/index.json").json()["models"]}
    assert set(models) == {"Tiny-Llama-q4f32_1", "Big-q4f16_1"}
    assert models["Big-q4f16_1"]["required_features"] == ["shader-f16"]
    library = client.get("/library").text
    assert "NoLib-q0f32" in library and "model library" in library and str(no_lib.parent / "libs") in library
    assert "Cut-q0f32" in library and "cut short" in library


def test_head_gives_length_without_body(client: TestClient, models_dir: Path) -> None:
    response = client.head(f"{MODEL}/params_shard_0.bin")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == 40_000
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content == b""


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=0-99", 0, 100), ("bytes=39990-", 39990, 40000), ("bytes=-10", 39990, 40000), ("bytes=5-5", 5, 6)],
)
def test_range_requests_get_206_with_the_exact_bytes(
    client: TestClient, models_dir: Path, range_header: str, start: int, end: int
) -> None:
    data = (models_dir / "Tiny-Llama-q4f32_1" / "params_shard_0.bin").read_bytes()
    response = client.get(f"{MODEL}/params_shard_0.bin", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}"
    assert response.content == data[start:end]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_unsatisfiable_range_is_416(client: TestClient) -> None:
    response = client.get(f"{MODEL}/params_shard_0.bin", headers={"Range": "bytes=50000-60000"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */40000"


def test_model_files_have_etags_and_answer_304(client: TestClient) -> None:
    first = client.get(f"{MODEL}/tensor-cache.json")
    assert first.headers["ETag"]
    again = client.get(f"{MODEL}/tensor-cache.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Access-Control-Allow-Origin"] == "*"
    other = client.get(f"{MODEL}/tensor-cache.json", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_only_the_main_revision_is_served(client: TestClient) -> None:
    assert client.get("/models/Tiny-Llama-q4f32_1/resolve/v2/tensor-cache.json").status_code == 404


# Paths a hostile page or person could send; none may read anything outside the models directory.
HOSTILE_PATHS = [
    f"{MODEL}/../../../../secret.txt",
    f"{MODEL}/../../../secret.txt",
    f"{MODEL}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    f"{MODEL}/..%2f..%2f..%2f..%2fsecret.txt",
    f"{MODEL}/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    f"{MODEL}/%252e%252e%252fsecret.txt",
    f"{MODEL}/..\\..\\..\\..\\secret.txt",
    f"{MODEL}/%5c..%5c..%5c..%5c..%5csecret.txt",
    f"{MODEL}//etc/passwd",
    f"{MODEL}/%2fetc%2fpasswd",
    f"{MODEL}/C:%5cWindows%5cwin.ini",
    f"{MODEL}/tokenizer.json%00.wasm",
    f"{MODEL}/.hidden",
    f"{MODEL}/",
    f"{MODEL}/escape.json",
    "/models/..%2f..%2fsecret/resolve/main/x",
    "/models/%2e%2e/resolve/main/secret.txt",
    "/models/Tiny-Llama-q4f32_1/resolve/..%2f..%2f..%2f/secret.txt",
    "/models/linked/resolve/main/mlc-chat-config.json",
    "/models/libs/resolve/main/Tiny-Llama-q4f32_1.wasm",
    "/libs/../../secret.txt",
    "/libs/..%2f..%2fsecret.wasm",
    "/libs/%2e%2e%2fsecret.wasm",
    "/libs//etc/passwd",
    "/libs/escape.wasm",
]


@pytest.fixture
def hostile_setup(tmp_path: Path, models_dir: Path) -> Path:
    """Secrets beside the models directory, and symlinks inside it that point at them."""
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    for name in ("secret.txt", "secret.wasm", "mlc-chat-config.json"):
        (secret_dir / name).write_text("TOP-SECRET")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (models_dir.parent / "secret.wasm").write_text("TOP-SECRET")
    model = models_dir / "Tiny-Llama-q4f32_1"
    (model / ".hidden").write_text("TOP-SECRET")
    os.symlink(secret_dir / "secret.txt", model / "escape.json")
    os.symlink(secret_dir, models_dir / "linked")
    os.symlink(secret_dir / "secret.wasm", models_dir / "libs" / "escape.wasm")
    return secret_dir


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """Send the request line exactly as written: HTTP clients would normalise these paths away."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_hostile_path_table_is_big_enough() -> None:
    assert len(HOSTILE_PATHS) >= 15


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_paths_are_refused(hostile_setup: Path, live_server: LiveServer, path: str) -> None:
    status, response = raw_get(live_server.port, path)
    assert status in (400, 404), response[:200]
    assert b"TOP-SECRET" not in response


def test_nul_byte_in_the_request_line_is_refused(hostile_setup: Path, live_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(f"GET {MODEL}/escape.json\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        response = sock.recv(65536)
    assert response.split(b" ", 2)[1] in (b"400", b"404")
    assert b"TOP-SECRET" not in response


def test_symlinks_inside_the_directory_still_work(live_server: LiveServer, models_dir: Path) -> None:
    model = models_dir / "Tiny-Llama-q4f32_1"
    os.symlink(model / "tokenizer.json", model / "tokenizer-alias.json")
    status, response = raw_get(live_server.port, f"{MODEL}/tokenizer-alias.json")
    assert status == 200
    assert response.endswith((model / "tokenizer.json").read_bytes())


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_large_files_stream_in_constant_memory(tmp_path: Path) -> None:
    models = tmp_path / "big-models"
    model = write_fake_model(models, model_id="Huge-q0f32", shard_sizes=(1000,))
    size = 512 * 1024 * 1024
    with open(model / "params_shard_9.bin", "wb") as sparse:  # sparse: no disk, real bytes to serve
        sparse.truncate(size)
    settings = Settings(data_dir=tmp_path / "data", models_dir_override=models)
    assert index_all(settings) == []  # as `hearth serve` does before it listens: hashed once, up front
    with LiveServer(settings) as server:
        before = _rss_bytes()
        received = 0
        url = f"{server.url}/models/Huge-q0f32/resolve/main/params_shard_9.bin"
        with httpx.stream("GET", url, timeout=120) as response:
            for chunk in response.iter_bytes(1 << 20):
                received += len(chunk)
        growth = _rss_bytes() - before
    assert received == size
    assert growth < 64 * 1024 * 1024, f"serving {size >> 20} MiB grew memory by {growth >> 20} MiB"
