"""The hosted-model library: full pages for browsers, partials for htmx, names always escaped."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

from starlette.testclient import TestClient

from webapp.mlc.manifest import load_manifest

HTMX = {"HX-Request": "true"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_library_is_a_full_page_for_browsers_and_a_partial_for_htmx(client: TestClient) -> None:
    page = client.get("/library")
    partial = client.get("/library", headers=HTMX)
    assert page.headers["Vary"] == "HX-Request" and partial.headers["Vary"] == "HX-Request"
    assert "<html" in page.text and "<html" not in partial.text
    [section] = [attrs for tag, attrs in tags(partial.text) if tag == "section"]
    assert section["id"] == "hosted-models" and section["hx-target"] == "this"
    assert "Tiny Llama" in partial.text
    # The page includes the same partial: one piece of markup, two ways in.
    assert 'id="hosted-models"' in page.text and "Tiny Llama" in page.text


def test_boosted_requests_get_the_full_page(client: TestClient) -> None:
    response = client.get("/library", headers={**HTMX, "HX-Boosted": "true"})
    assert "<html" in response.text


def test_model_details_list_files_and_urls(client: TestClient, models_dir: Path) -> None:
    detail = client.get("/library/Tiny-Llama-q4f32_1", headers=HTMX)
    assert detail.status_code == 200
    assert "<html" not in detail.text
    for name in ("mlc-chat-config.json", "tensor-cache.json", "tokenizer.json", "params_shard_0.bin"):
        assert name in detail.text
    assert "http://127.0.0.1:8000/models/Tiny-Llama-q4f32_1/resolve/main/" in detail.text
    assert "http://127.0.0.1:8000/libs/Tiny-Llama-q4f32_1.wasm" in detail.text
    manifest = load_manifest(models_dir / "Tiny-Llama-q4f32_1")
    assert manifest is not None
    assert f"http://127.0.0.1:8000/models/Tiny-Llama-q4f32_1/resolve/{manifest.commit}/" in detail.text
    assert manifest.integrity()["config"] in detail.text and manifest.library_record.sri in detail.text
    assert all(record.sha256 in detail.text for record in manifest.files)
    assert "<html" in client.get("/library/Tiny-Llama-q4f32_1").text


def test_unknown_model_is_a_404_page(client: TestClient) -> None:
    response = client.get("/library/Nope")
    assert response.status_code == 404
    assert "No hosted model is called" in response.text


def test_hostile_display_names_are_escaped(client: TestClient, models_dir: Path) -> None:
    payload = '<img src=x onerror=alert(1)><script>alert(2)</script>'
    meta = models_dir / "Tiny-Llama-q4f32_1" / "hearth-model.json"
    meta.write_text(json.dumps({"display_name": payload, "description": payload}))
    for response in (client.get("/library"), client.get("/library/Tiny-Llama-q4f32_1")):
        assert payload not in response.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
        assert not [tag for tag, _ in tags(response.text) if tag == "img"]
        assert all(attrs.get("onerror") is None for _, attrs in tags(response.text))
        assert [attrs.get("src") for tag, attrs in tags(response.text) if tag == "script"] == [
            "/static/vendor/htmx.min.js", "/static/js/shell.js", "/static/js/copy-buttons.js"]


def test_check_validates_a_hosted_model_and_catches_a_corrupted_shard(client: TestClient, models_dir: Path) -> None:
    detail = client.get("/library/Tiny-Llama-q4f32_1", headers=HTMX).text
    assert 'hx-get="/library/Tiny-Llama-q4f32_1/check"' in detail
    ok = client.get("/library/Tiny-Llama-q4f32_1/check", headers=HTMX)
    assert ok.status_code == 200 and "will load" in ok.text and "<html" not in ok.text
    shard = models_dir / "Tiny-Llama-q4f32_1" / "params_shard_0.bin"
    stat = shard.stat()
    shard.write_bytes(bytes(stat.st_size))  # same size and mtime, other bytes: only a hash tells
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    bad = client.get("/library/Tiny-Llama-q4f32_1/check", headers=HTMX)
    assert "will not load" in bad.text and "does not match its recorded sha256" in bad.text
    assert "<html" in client.get("/library/Tiny-Llama-q4f32_1/check").text
    assert client.get("/library/Nope/check").status_code == 404
