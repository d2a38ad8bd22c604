"""`hearth host` and its printed configurations: nginx and Caddy started for real in front of it, headers checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from huggingface_hub import snapshot_download

from tests.conftest import LiveServer
from tests.fakemodel import write_fake_model
from tests.support.front_servers import KINDS, front_server, installed
from webapp.cli import main
from webapp.host_configs import ACCEL_PREFIX
from webapp.mlc.manifest import update_manifest
from webapp.settings import Settings

MODEL_ID = "Twin-q4f32_1"
SHARD = 30_000  # both shards this size: an mtime+size ETag would give them one


@pytest.fixture
def hosted(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    write_fake_model(models, model_id=MODEL_ID, shard_sizes=(SHARD, SHARD))
    return models


@pytest.fixture
def hearth_host(tmp_path: Path, hosted: Path) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path / "data", models_dir_override=hosted, accel_redirect=ACCEL_PREFIX)
    with LiveServer(settings, pages=False) as server:
        yield server


@pytest.fixture(params=KINDS)
def front(request: pytest.FixtureRequest, tmp_path: Path, hosted: Path, hearth_host: LiveServer) -> Iterator[str]:
    """nginx or Caddy, started with the configuration `hearth host --print-config` prints, on a loopback port."""
    if not installed(request.param):
        pytest.skip(f"{request.param} is not installed: run scripts/setup")
    with front_server(request.param, hosted, hearth_host.port, tmp_path) as url:
        yield url


def shard_url(base: str, revision: str = "main", index: int = 0) -> str:
    return f"{base}/models/{MODEL_ID}/resolve/{revision}/params_shard_{index}.bin"


def test_shards_come_through_with_cors_corp_content_hash_etags_and_no_gzip(front: str, hosted: Path) -> None:
    etags = set()
    for index in (0, 1):
        response = httpx.get(shard_url(front, index=index),
                             headers={"Origin": "https://chat.example", "Accept-Encoding": "gzip, br"})
        data = (hosted / MODEL_ID / f"params_shard_{index}.bin").read_bytes()
        assert response.status_code == 200 and response.content == data
        assert "content-encoding" not in response.headers
        assert response.headers["access-control-allow-origin"] == "*"
        assert len(response.headers.get_list("access-control-allow-origin")) == 1
        assert response.headers["cross-origin-resource-policy"] == "cross-origin"
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert response.headers["x-linked-size"] == str(SHARD)
        assert "X-Repo-Commit" in response.headers["access-control-expose-headers"]
        etags.add(response.headers["etag"])
    assert len(etags) == 2


def test_only_pinned_paths_are_immutable(front: str, hosted: Path) -> None:
    commit = update_manifest(hosted / MODEL_ID, hosted / "libs").commit
    pinned, main_ = httpx.get(shard_url(front, commit)), httpx.get(shard_url(front))
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert main_.headers["cache-control"] == "no-cache"
    assert pinned.headers["x-repo-commit"] == main_.headers["x-repo-commit"] == commit
    assert len(pinned.headers.get_list("cache-control")) == 1


def test_preflight_range_and_head(front: str, hosted: Path) -> None:
    preflight = httpx.options(shard_url(front), headers={"Origin": "https://chat.example",
                                                        "Access-Control-Request-Method": "GET",
                                                        "Access-Control-Request-Headers": "range"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Range" in preflight.headers["access-control-allow-headers"]
    data = (hosted / MODEL_ID / "params_shard_1.bin").read_bytes()
    ranged = httpx.get(shard_url(front, index=1), headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{SHARD}"
    head = httpx.head(shard_url(front, index=1))
    assert head.status_code == 200 and head.headers["x-linked-size"] == str(SHARD) and head.content == b""
    config = httpx.get(f"{front}/models/{MODEL_ID}/resolve/main/mlc-chat-config.json")
    assert config.headers["content-type"].startswith("application/json") and config.json()["model_type"] == "llama"


def test_huggingface_hub_and_validate_work_through_the_front_server(front: str, hosted: Path, tmp_path: Path) -> None:
    snapshot = Path(snapshot_download(MODEL_ID, endpoint=f"{front}/models", cache_dir=tmp_path / "hf", token=False))
    for name in ("params_shard_0.bin", "params_shard_1.bin", "mlc-chat-config.json"):
        assert (snapshot / name).read_bytes() == (hosted / MODEL_ID / name).read_bytes()
    assert (snapshot / f"{MODEL_ID}.wasm").read_bytes() == (hosted / "libs" / f"{MODEL_ID}.wasm").read_bytes()
    result = CliRunner().invoke(main, ["validate", f"{front}/models/{MODEL_ID}", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["problems"] == [], report


def test_the_model_host_alone_serves_no_pages(hearth_host: LiveServer) -> None:
    assert httpx.get(f"{hearth_host.url}/").status_code == 404
    assert httpx.get(f"{hearth_host.url}/library").status_code == 404
    [entry] = httpx.get(f"{hearth_host.url}/models/index.json").json()["models"]
    assert entry["id"] == MODEL_ID


def test_allow_origin_limits_cors_to_the_listed_origins(tmp_path: Path, hosted: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", models_dir_override=hosted, allow_origins=("https://chat.example",))
    with LiveServer(settings, pages=False) as server:
        allowed = httpx.get(shard_url(server.url), headers={"Origin": "https://chat.example"})
        other = httpx.get(shard_url(server.url), headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://chat.example"
    assert other.headers["access-control-allow-origin"] == "null"
    assert allowed.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in allowed.headers


@pytest.mark.parametrize("kind", ["s3-cors", "cloudfront"])
def test_bucket_and_cdn_configs_are_json_with_open_cors(kind: str, hosted: Path) -> None:
    result = CliRunner().invoke(main, ["host", str(hosted), "--print-config", kind])
    assert result.exit_code == 0
    text = json.dumps(json.loads(result.output))
    assert "Range" in text and '"*"' in text and "GET" in text
