"""The relay and the provider worker's policy, on a real server: who may use them, and what they refuse."""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.front_servers import free_port, serving, stop, wait_for_port
from tests.support.stream_replay import Firehose
from webapp.relay import forbidden_reason, relay_allowed_networks
from webapp.settings import Settings

SECRET_PROMPT = "my very private question 7f3a"
SECRET_KEY = "sk-test-4b1d"


class Upstream(BaseHTTPRequestHandler):
    """A plain HTTP endpoint (no CORS at all) that echoes what it got, as a stream."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Upstream.seen.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(Upstream) as url:
        yield url


@pytest.fixture
def hearth(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(Settings(data_dir=tmp_path / "data", models_dir_override=tmp_path / "models")) as server:
        yield server


def page_token(url: str) -> str:
    """The token the page at this Hearth's URL carries for its owner-only routes."""
    html = httpx.get(url + "/").text
    return html.split('name="hearth-token" content="', 1)[1].split('"', 1)[0]


def relay(server: LiveServer, envelope: dict, *, origin: str | None = "own", token: str | None = "own") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = server.url if origin == "own" else origin
    if token:
        headers["X-Hearth-Token"] = page_token(server.url) if token == "own" else token
    return httpx.post(server.url + "/relay", content=json.dumps(envelope), headers=headers)


def chat_envelope(url: str) -> dict:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": SECRET_PROMPT}], "stream": True})
    return {"url": url, "method": "POST", "headers": {"Authorization": f"Bearer {SECRET_KEY}",
                                                      "Content-Type": "application/json"}, "body": body}


def test_the_relay_passes_a_call_and_its_stream(hearth: LiveServer, upstream: str,
                                                caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = relay(hearth, chat_envelope(upstream + "/v1/chat/completions"))
    assert answer.status_code == 200 and answer.headers["x-hearth-relay"] == "passed"
    assert answer.headers["content-type"] == "text/event-stream"
    assert '"content":"hi"' in answer.text and "[DONE]" in answer.text
    seen = Upstream.seen[-1]
    assert seen["path"] == "/v1/chat/completions" and SECRET_PROMPT in seen["body"]
    assert seen["headers"]["Authorization"] == f"Bearer {SECRET_KEY}"
    assert "Origin" not in seen["headers"] and "Cookie" not in seen["headers"]
    logged = caplog.text + "".join(capfd.readouterr())
    assert SECRET_PROMPT not in logged and SECRET_KEY not in logged and "hi" not in caplog.text


@pytest.mark.parametrize(("origin", "token", "message"), [
    ("https://evil.example", "own", "only from this server's own page"),
    (None, "own", "only from this server's own page"),
    ("own", None, "stale or not from this server"),
    ("own", "guessed", "stale or not from this server"),
])
def test_the_relay_serves_this_servers_page_only(hearth: LiveServer, upstream: str, origin: str | None,
                                                 token: str | None, message: str) -> None:
    before = len(Upstream.seen)
    answer = relay(hearth, chat_envelope(upstream + "/x"), origin=origin, token=token)
    assert answer.status_code == 403 and message in answer.json()["error"]["message"]
    assert answer.headers["x-hearth-relay"] == "refused"
    assert len(Upstream.seen) == before, "nothing was called"


@pytest.mark.parametrize(("url", "message"), [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://169.254.10.1/", "link-local address"),
    ("http://[fe80::1]/", "link-local address"),
    ("file:///etc/passwd", "http(s) URLs only"),
    ("ftp://127.0.0.1/", "http(s) URLs only"),
    ("http://user:pw@127.0.0.1/", "user name or password"),
])
def test_the_relay_refuses_forbidden_targets(hearth: LiveServer, url: str, message: str) -> None:
    answer = relay(hearth, chat_envelope(url))
    assert answer.status_code in (400, 403) and message in answer.json()["error"]["message"]


def test_the_owner_can_allow_a_refused_network() -> None:
    address = ipaddress.ip_address("169.254.10.1")
    assert forbidden_reason(address, ()) == "a link-local address"
    assert forbidden_reason(address, relay_allowed_networks(("169.254.0.0/16",))) is None


def test_the_relay_caps_the_request_size(hearth: LiveServer, upstream: str) -> None:
    envelope = chat_envelope(upstream + "/x")
    envelope["body"] = "x" * (33 * 1024 * 1024)
    answer = relay(hearth, envelope)
    assert answer.status_code == 413 and "MiB limit" in answer.json()["error"]["message"]


def test_an_unreachable_target_is_said_as_such(hearth: LiveServer) -> None:
    answer = relay(hearth, chat_envelope("http://127.0.0.1:9/v1/chat/completions"))
    assert answer.status_code == 502 and answer.headers["x-hearth-relay"] == "unreachable"


def test_provider_origins_widen_only_the_workers_policy(hearth: LiveServer) -> None:
    token = page_token(hearth.url)
    refused = httpx.post(hearth.url + "/api/connect-origins", json={"origin": "https://api.example.com"},
                         headers={"Origin": "https://evil.example", "X-Hearth-Token": token})
    assert refused.status_code == 403
    added = httpx.post(hearth.url + "/api/connect-origins", json={"origin": "https://API.example.com:443/v1"},
                       headers={"Origin": hearth.url, "X-Hearth-Token": token})
    assert added.json() == {"origins": ["https://api.example.com"]}
    worker = httpx.get(hearth.url + "/provider-worker.js")
    assert "connect-src 'self' https://api.example.com" in worker.headers["content-security-policy"]
    assert worker.headers["cache-control"] == "no-store"
    page = httpx.get(hearth.url + "/")
    assert "api.example.com" not in page.headers["content-security-policy"], "the page itself reaches no provider"
    bad = httpx.post(hearth.url + "/api/connect-origins", json={"origin": "javascript:alert(1)"},
                     headers={"Origin": hearth.url, "X-Hearth-Token": token})
    assert bad.status_code == 400 and "not an http(s) origin" in bad.json()["error"]["message"]


def test_registered_origins_survive_a_restart_and_a_bad_file_is_kept(tmp_path: Path) -> None:
    from webapp.connect_origins import ConnectOrigins

    path = tmp_path / "connect-origins.json"
    ConnectOrigins(path).add("http://10.0.0.5:8080")
    assert ConnectOrigins(path).all() == ("http://10.0.0.5:8080",)
    path.write_text("{not json")
    assert ConnectOrigins(path).all() == ()
    assert (tmp_path / "connect-origins.json.unreadable").read_text() == "{not json"


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_a_100_mb_reply_streams_through_with_flat_memory(tmp_path: Path) -> None:
    port = free_port()
    hearth = subprocess.Popen([sys.executable, "-m", "webapp", "serve", "--port", str(port),
                               "--models-dir", str(tmp_path / "models")],
                              env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        with serving(Firehose) as firehose:
            wait_for_port(port, hearth, "hearth serve")
            url = f"http://127.0.0.1:{port}"
            envelope = chat_envelope(f"{firehose}/v1/chat/completions")
            before = rss_kb(hearth.pid)
            peak = before
            received = 0
            with httpx.stream("POST", url + "/relay", content=json.dumps(envelope), timeout=120,
                              headers={"Origin": url, "X-Hearth-Token": page_token(url)}) as answer:
                for chunk in answer.iter_raw():
                    received += len(chunk)
                    if received % (8 << 20) < len(chunk):
                        peak = max(peak, rss_kb(hearth.pid))
    finally:
        stop(hearth)
    assert received == Firehose.total_bytes()
    assert peak - before < 40 * 1024, f"the relay's memory grew by {(peak - before) // 1024} MiB: it buffered"
