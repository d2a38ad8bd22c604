"""Pulls from the Hosted models page: started, watched and cancelled through htmx, only by the server's owner."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import LiveServer
from tests.fakemodel import write_fake_model
from tests.support.slow_network import slow_shards
from webapp.app import create_app
from webapp.settings import Settings

HTMX = {"HX-Request": "true"}
SOURCE_ID = "Source-Model-q4f32_1"
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LiveServer]:
    models = tmp_path / "source-models"
    write_fake_model(models, model_id=SOURCE_ID, shard_sizes=(1_000_000, 1_000_000))
    with LiveServer(Settings(data_dir=tmp_path / "sd", models_dir_override=models), wrap=slow_shards) as server:
        yield server


def page_client(tmp_path: Path, **settings: object) -> TestClient:
    dest = Settings(data_dir=tmp_path / "dd", models_dir_override=tmp_path / "dest-models", **settings)
    return TestClient(create_app(dest), base_url=BASE)


def token_of(client: TestClient) -> str:
    return re.search(r'name="token" value="([^"]+)"', client.get("/library").text).group(1)


def wait_for_state(client: TestClient, state: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        html = client.get("/library/pulls", headers=HTMX).text
        if f'<span class="state">{state}</span>' in html:
            return html
        time.sleep(0.1)
    raise AssertionError(f"no pull reached {state}: {html}")


def test_a_pull_from_the_page_shows_progress_and_then_the_model(source: LiveServer, tmp_path: Path) -> None:
    with page_client(tmp_path) as client:
        form = {"token": token_of(client), "source": SOURCE_ID, "endpoint": f"{source.url}/models"}
        started = client.post("/library/pulls", data=form, headers={**HTMX, "Origin": BASE})
        assert started.status_code == 200 and 'hx-trigger="every 1s"' in started.text  # it polls while running
        assert SOURCE_ID in started.text and "running" in started.text
        done = wait_for_state(client, "done")
        assert f"{SOURCE_ID} is hosted" in done and 'hx-trigger="every 1s"' not in done
        assert SOURCE_ID in client.get("/library", headers=HTMX).text
        assert client.get(f"/models/{SOURCE_ID}/resolve/main/params_shard_0.bin").content == (
            source.settings.models_dir / SOURCE_ID / "params_shard_0.bin").read_bytes()


def test_a_plain_form_post_gets_a_303_back_to_the_page(source: LiveServer, tmp_path: Path) -> None:
    with page_client(tmp_path) as client:
        form = {"token": token_of(client), "source": SOURCE_ID, "endpoint": f"{source.url}/models"}
        response = client.post("/library/pulls", data=form, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/library"
        wait_for_state(client, "done")


def test_a_pull_can_be_cancelled_and_nothing_is_installed(source: LiveServer, tmp_path: Path) -> None:
    with page_client(tmp_path) as client:
        token = token_of(client)
        client.post("/library/pulls", data={"token": token, "source": SOURCE_ID,
                                            "endpoint": f"{source.url}/models"}, headers=HTMX)
        running = client.get("/library/pulls", headers=HTMX).text
        job_id = re.search(r'data-pull-id="(\d+)"', running).group(1)
        cancelled = client.post(f"/library/pulls/{job_id}/cancel", data={"token": token}, headers=HTMX)
        assert cancelled.status_code == 200
        html = wait_for_state(client, "cancelled")
        assert "files fetched so far are kept" in html
        assert not (tmp_path / "dest-models" / SOURCE_ID).exists()


@pytest.mark.parametrize(("headers", "form", "message"), [
    ({}, {}, "stale or not from this server"),
    ({}, {"token": "guessed"}, "stale or not from this server"),
    ({"Origin": "https://evil.example"}, {"token": None}, "only from this server&#39;s own page"),
])
def test_pulls_need_this_pages_token_and_origin(source: LiveServer, tmp_path: Path, headers: dict, form: dict,
                                               message: str) -> None:
    with page_client(tmp_path) as client:
        token = token_of(client)
        data = {"source": SOURCE_ID, "endpoint": f"{source.url}/models",
                **{k: (token if v is None else v) for k, v in form.items()}}
        response = client.post("/library/pulls", data=data, headers={**HTMX, **headers})
        assert response.status_code == 403 and message in response.text
        assert "data-pull-id" not in client.get("/library/pulls", headers=HTMX).text
        response = client.post("/library/pulls/1/cancel", data=data, headers={**HTMX, **headers})
        assert response.status_code == 403


def test_beyond_loopback_page_pulls_need_an_admin_token(source: LiveServer, tmp_path: Path) -> None:
    with page_client(tmp_path, listen_host="0.0.0.0") as client:
        assert "restart it with" in client.get("/library").text and 'name="source"' not in client.get("/library").text
        response = client.post("/library/pulls", data={"token": token_of_hidden(client), "source": SOURCE_ID},
                               headers=HTMX)
        assert response.status_code == 403 and "--admin-token" in response.text
    with page_client(tmp_path, listen_host="0.0.0.0", admin_token="s3cret") as client:
        token = token_of(client)
        form = {"token": token, "source": SOURCE_ID, "endpoint": f"{source.url}/models"}
        assert client.post("/library/pulls", data=form, headers=HTMX).status_code == 403
        assert client.post("/library/pulls", data={**form, "admin_token": "s3cret"}, headers=HTMX).status_code == 200
        wait_for_state(client, "done")


def token_of_hidden(client: TestClient) -> str:
    return client.app.state.page_token  # the page shows no form when locked; the token still guards the route


def test_a_bad_source_fails_with_its_message_escaped(tmp_path: Path) -> None:
    with page_client(tmp_path) as client:
        hostile = "<img src=x onerror=alert(1)>"
        client.post("/library/pulls", data={"token": token_of(client), "source": hostile}, headers=HTMX)
        html = wait_for_state(client, "failed")
        assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "is not a repository id" in html
