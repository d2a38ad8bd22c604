"""Every response carries the isolation and safety headers; CORS is open on model files only."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from webapp.app import create_app
from webapp.settings import Settings

PAGES = ["/", "/library", "/library/Tiny-Llama-q4f32_1", "/sw.js", "/app-shell.json",
         "/static/vendor/htmx.min.js", "/static/vendor/web-llm/index.js", "/no-such-page"]
MODEL_FILES = ["/models/index.json", "/models/Tiny-Llama-q4f32_1/resolve/main/mlc-chat-config.json",
               "/models/Tiny-Llama-q4f32_1/resolve/main/params_shard_0.bin", "/libs/Tiny-Llama-q4f32_1.wasm"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_cross_origin_isolated_and_locked_down(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_csp_lets_webllm_run_and_forbids_inline_script(client: TestClient) -> None:
    policy = dict(
        directive.strip().split(" ", 1) for directive in client.get("/").headers["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self' 'wasm-unsafe-eval'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["worker-src"] == "'self'"
    assert "https://huggingface.co" in policy["connect-src"].split()
    assert "https://raw.githubusercontent.com" in policy["connect-src"].split()
    assert policy["object-src"] == "'none'"
    assert "'unsafe-inline'" not in policy["style-src"]


def test_extra_model_hosts_are_allowed_to_connect(settings: Settings) -> None:
    custom = Settings(data_dir=settings.data_dir, models_dir_override=settings.models_dir,
                      model_hosts=("https://models.example.org/",))
    with TestClient(create_app(custom)) as client:
        connect = client.get("/").headers["Content-Security-Policy"].split("connect-src ")[1].split(";")[0]
    assert "https://models.example.org" in connect.split()


@pytest.mark.parametrize("coep", ["credentialless", "off"])
def test_coep_is_a_setting(settings: Settings, coep: str) -> None:
    custom = Settings(data_dir=settings.data_dir, models_dir_override=settings.models_dir, coep=coep)  # type: ignore[arg-type]
    with TestClient(create_app(custom)) as client:
        headers = client.get("/").headers
    assert headers.get("Cross-Origin-Embedder-Policy") == (None if coep == "off" else coep)


def test_unknown_coep_is_refused() -> None:
    with pytest.raises(ValueError, match="coep must be one of"):
        Settings(coep="unsafe-none")  # type: ignore[arg-type]


@pytest.mark.parametrize("path", MODEL_FILES)
def test_model_files_are_open_to_any_origin_without_credentials(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers.get("Vary", "").strip() != "*"


@pytest.mark.parametrize("path", MODEL_FILES)
def test_model_files_answer_a_cors_preflight(client: TestClient, path: str) -> None:
    response = client.options(path, headers={"Origin": "https://elsewhere.example",
                                             "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "range"})
    assert response.status_code == 204 and response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Range" in response.headers["Access-Control-Allow-Headers"]
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "X-Repo-Commit" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_pages_get_no_preflight_answer(client: TestClient) -> None:
    response = client.options("/library", headers={"Origin": "https://elsewhere.example",
                                                   "Access-Control-Request-Method": "GET"})
    assert response.status_code != 204
    assert "Access-Control-Allow-Origin" not in response.headers
