"""Static files: the MIME types browsers insist on, validators and 304s."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/vendor/web-llm/index.js", "text/javascript"),
        ("/static/vendor/purify.es.mjs", "text/javascript"),
        ("/sw.js", "text/javascript"),
        ("/libs/Tiny-Llama-q4f32_1.wasm", "application/wasm"),
        ("/models/Tiny-Llama-q4f32_1/resolve/main/tensor-cache.json", "application/json"),
        ("/models/index.json", "application/json"),
        ("/", "text/html"),
    ],
)
def test_mime_types(client: TestClient, path: str, content_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == content_type


def test_static_files_revalidate_with_etag_and_answer_304(client: TestClient) -> None:
    first = client.get("/static/vendor/htmx.min.js")
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["ETag"] and first.headers["Last-Modified"]
    again = client.get("/static/vendor/htmx.min.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    since = client.get("/static/vendor/htmx.min.js", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304


def test_app_shell_lists_pages_and_every_static_file(client: TestClient) -> None:
    shell = client.get("/app-shell.json").json()
    assert shell["urls"][:2] == ["/", "/library"]
    assert "/static/vendor/web-llm/index.js" in shell["urls"]
    assert not any(url.endswith((".map", ".hearth-stamp")) for url in shell["urls"])
    for url in shell["urls"]:
        assert client.get(url).status_code == 200, url
    assert len(shell["version"]) == 16
