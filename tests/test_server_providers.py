"""Providers the server's owner defines in a YAML file: checked on start, keys kept on the server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import LiveServer
from tests.test_relay import Upstream, page_token, upstream  # noqa: F401 - the echoing endpoint fixture
from webapp.cli import main
from webapp.server_providers import ProvidersFileError, load_providers
from webapp.settings import Settings

TEAM_KEY = "team-secret-93c1"


def providers_file(tmp_path: Path, url: str, **changes: object) -> Path:
    provider = {"id": "team", "name": "Team LLM", "type": "openai", "base_url": url,
                "api_key": "${TEAM_KEY}", "headers": {"X-Team": "${TEAM_HEADER}"},
                "models": [{"id": "smollm2", "label": "SmolLM2", "context_length": 2048}], **changes}
    path = tmp_path / "providers.yaml"
    path.write_text(json.dumps({"providers": [provider]}))  # JSON is YAML
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"id": "Team LLM"}, "must be lowercase letters"),
    ({"type": "cohere"}, "type 'cohere' is not one of openai, anthropic, gemini, azure"),
    ({"base_url": "ftp://x"}, "must be an http(s) URL"),
    ({"api_key": "${NOT_SET_ANYWHERE}"}, "names ${NOT_SET_ANYWHERE}, which is not set"),
    ({"models": [{"id": "m", "contex_length": 5}]}, "unknown field 'contex_length'"),
    ({"models": []}, "list at least one model"),
])
def test_a_bad_providers_file_is_refused_by_name(tmp_path: Path, changes: dict, message: str) -> None:
    path = providers_file(tmp_path, "http://127.0.0.1:1/v1", **changes)
    with pytest.raises(ProvidersFileError) as caught:
        load_providers(path, {"TEAM_KEY": TEAM_KEY, "TEAM_HEADER": "h"})
    assert message in str(caught.value) and "providers[0]" in str(caught.value)


def test_hearth_serve_says_what_is_wrong_and_exits(tmp_path: Path) -> None:
    path = providers_file(tmp_path, "http://127.0.0.1:1/v1")
    result = CliRunner().invoke(main, ["serve", "--providers", str(path), "--port", "0"], env={"TEAM_KEY": ""})
    assert result.exit_code != 0 and "TEAM_HEADER" in result.output and "not set" in result.output


def test_the_relay_adds_the_key_which_the_page_never_sees(tmp_path: Path, upstream: str) -> None:  # noqa: F811
    path = providers_file(tmp_path, f"{upstream}/v1")
    providers = load_providers(path, {"TEAM_KEY": TEAM_KEY, "TEAM_HEADER": "header-secret"})
    settings = Settings(data_dir=tmp_path / "data", models_dir_override=tmp_path / "models", server_providers=providers)
    with LiveServer(settings) as hearth:
        listed = httpx.get(hearth.url + "/api/server-providers")
        page = httpx.get(hearth.url + "/")
        envelope = {"provider": "team", "path": "/chat/completions", "method": "POST",
                    "headers": {"Content-Type": "application/json", "Authorization": "Bearer from-the-page"},
                    "body": json.dumps({"model": "smollm2", "messages": [], "stream": True})}
        answer = httpx.post(hearth.url + "/relay", content=json.dumps(envelope),
                            headers={"Origin": hearth.url, "X-Hearth-Token": page_token(hearth.url)})
        escape = httpx.post(hearth.url + "/relay", content=json.dumps({**envelope, "path": "/../admin"}),
                            headers={"Origin": hearth.url, "X-Hearth-Token": page_token(hearth.url)})
    assert answer.status_code == 200 and "[DONE]" in answer.text
    seen = Upstream.seen[-1]
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["Authorization"] == f"Bearer {TEAM_KEY}", "the server's key replaces anything the page sent"
    assert seen["headers"]["X-Team"] == "header-secret"
    assert listed.json()["providers"][0]["models"][0]["id"] == "smollm2"
    assert listed.json()["providers"][0]["headerNames"] == ["X-Team"] and listed.json()["providers"][0]["hasKey"]
    for response in (listed, page, answer):
        assert TEAM_KEY not in response.text and "header-secret" not in response.text
    assert escape.status_code == 400 and "stay under its base URL" in escape.text
