"""Browser fixtures: Debian's Chromium with WebGPU on SwiftShader, once per session; a fresh context per test.

Nothing may leave the machine: every request to a host other than 127.0.0.1 is aborted and counted,
and each test fails if there was one. Side servers on 127.0.0.1 play the other model hosts.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.chromium import INSECURE_HOST
from tests.conftest import LiveServer
from tests.fakemodel import write_fake_model
from webapp.settings import Settings

LOCAL_HOST = "127.0.0.1"
OUTSIDE = re.compile(rf"^(?!https?://(?:127\.0\.0\.1|{re.escape(INSECURE_HOST)})[:/])")
READY = "html[data-hearth=ready]"
HOSTED_ID = "Tiny-Llama-q4f32_1"
NOT_MLC_ID = "not-an-mlc-model"
# Records the length of the last reply's text at each change: a streamed reply grows in steps.
RECORD_UPDATES = """() => {
  window.replyUpdates = [];
  new MutationObserver(() => {
    const reply = document.querySelector('#transcript .message[data-role=assistant]:last-child .message-body');
    if (reply) window.replyUpdates.push(reply.textContent.length);
  }).observe(document.querySelector('#transcript'), {subtree: true, childList: true, characterData: true});
}"""


class NoCorsHandler(SimpleHTTPRequestHandler):
    """Static files in the Hugging Face layout (…/<id>/resolve/main/<file>), without any CORS header."""

    def translate_path(self, path: str) -> str:
        return super().translate_path(path.replace("/resolve/main/", "/", 1))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@dataclass
class NoCorsHost:
    """A model host that serves a complete model but lets no other origin read it."""

    url: str
    model_url: str
    lib_url: str


@pytest.fixture(scope="session")
def no_cors_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NoCorsHost]:
    root = tmp_path_factory.mktemp("no-cors-host")
    write_fake_model(root, model_id=HOSTED_ID)
    handler = functools.partial(NoCorsHandler, directory=str(root))
    server = ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://{LOCAL_HOST}:{server.server_address[1]}"
    yield NoCorsHost(url=url, model_url=f"{url}/{HOSTED_ID}", lib_url=f"{url}/libs/{HOSTED_ID}.wasm")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def closed_origin() -> Iterator[str]:
    """An origin where nothing listens: the port is bound (so nobody else takes it) but never listened on."""
    sock = socket.socket()
    sock.bind((LOCAL_HOST, 0))
    yield f"http://{LOCAL_HOST}:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def models_dir(models_dir: Path) -> Path:
    """The shared models directory, plus a folder whose JSON is not an MLC model's."""
    not_mlc = models_dir / NOT_MLC_ID
    not_mlc.mkdir()
    (not_mlc / "mlc-chat-config.json").write_text(json.dumps({"hello": "world"}))
    (not_mlc / "tensor-cache.json").write_text(json.dumps({"records": "none"}))
    return models_dir


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path, no_cors_host: NoCorsHost, closed_origin: str) -> Settings:
    """The page may fetch from the side hosts (connect-src), so what stops it there is CORS or the network."""
    return Settings(data_dir=tmp_path / "data", models_dir_override=models_dir,
                    model_hosts=(no_cors_host.url, closed_origin))


@pytest.fixture
def outside_requests() -> list[str]:
    """URLs the page tried to fetch beyond 127.0.0.1 (each was blocked)."""
    return []


def guarded_context(browser: Browser, base_url: str, outside_requests: list[str]) -> BrowserContext:
    """A fresh profile (storage, caches, service workers) whose requests may only go to this machine."""
    context = browser.new_context(base_url=base_url, accept_downloads=True)

    def block(route):  # type: ignore[no-untyped-def]
        outside_requests.append(route.request.url)
        route.abort("blockedbyclient")

    # Matched by Playwright's driver, so requests to the test servers never wait on Python.
    context.route(OUTSIDE, block)
    return context


@contextmanager
def own_chat_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A chat page in a guarded context of its own (for a module's shared page); fails if it left the machine."""
    outside: list[str] = []
    context = guarded_context(browser, base_url, outside)
    try:
        yield open_chat(context.new_page())
    finally:
        context.close()
    assert outside == [], f"the page tried to leave the machine: {outside}"


@pytest.fixture
def context(browser: Browser, live_server: LiveServer, outside_requests: list[str]) -> Iterator[BrowserContext]:
    context = guarded_context(browser, live_server.url, outside_requests)
    yield context
    context.close()
    assert outside_requests == [], f"the page tried to leave the machine: {outside_requests}"


@dataclass
class PageEvents:
    """What a page said while a test drove it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def events() -> PageEvents:
    return PageEvents()


@pytest.fixture
def page(context: BrowserContext, events: PageEvents) -> Page:
    """A page that records console errors, uncaught exceptions and dialogs (dismissing them)."""
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and events.console_errors.append(message.text))
    page.on("pageerror", lambda error: events.page_errors.append(str(error)))

    def dismiss(dialog):  # type: ignore[no-untyped-def]
        events.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return page


def open_chat(page: Page) -> Page:
    """Open the chat page and wait until it has checked the GPU and listed the models."""
    page.goto("/")
    page.wait_for_selector(READY)
    return page


@pytest.fixture
def chat(page: Page) -> Page:
    return open_chat(page)
