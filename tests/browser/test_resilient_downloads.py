"""Model downloads survive the network: the service worker retries a shard cut mid-body twice (at
different offsets), resuming with Range, and a file answered 503 once; the load completes, the stored
shard is byte-for-byte the file, and no file is asked for more often than its failures need. A load
cut off by going offline offers Resume, which fetches only what was not stored; Cancel stops a load."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import own_chat_page
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from tests.support.cutting_network import cutting_host
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

MODEL = model_id("q4f32_1")
SHARD = "params_shard_0.bin"
LOAD_TIMEOUT_MS = 600_000
CUTS = [20_000, 50_000]  # the shard is about 84 KB: cut, resume, cut further on, resume


@pytest.fixture(scope="module")
def models() -> Path:
    return compiled_models_dir("q4f32_1")[0]


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("resilient"), models_dir_override=models)
    wrap = lambda app: cutting_host(app, cuts={SHARD: CUTS}, fail_once={"tokenizer.json"})  # noqa: E731
    with LiveServer(settings, wrap=wrap) as live:
        yield live


def test_a_cut_shard_and_a_503_are_retried_and_the_model_loads(browser: Browser, server: LiveServer,
                                                                 models: Path) -> None:
    assert (models / MODEL / SHARD).stat().st_size > max(CUTS)
    with own_chat_page(browser, server.url) as page:
        page.wait_for_function("navigator.serviceWorker.ready.then(() => Boolean(navigator.serviceWorker.controller))")
        page.select_option("#model-select", MODEL)
        page.click("#load-model")
        expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
        asked = Counter(path.rsplit("/", 1)[-1] for method, path in server.requests
                        if method == "GET" and f"/{MODEL}" in path)
        assert asked[SHARD] == 1 + len(CUTS), asked
        assert asked["tokenizer.json"] == 2, asked
        assert asked["mlc-chat-config.json"] == asked["tensor-cache.json"] == asked[f"{MODEL}.wasm"] == 1, asked
        stored = page.evaluate("""async (name) => {
          const cache = await caches.open("webllm/model");
          const key = (await cache.keys()).find((request) => request.url.endsWith(name));
          const bytes = await (await cache.match(key)).arrayBuffer();
          const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
          return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
        }""", SHARD)
        assert stored == hashlib.sha256((models / MODEL / SHARD).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def outage() -> threading.Event:
    return threading.Event()


@pytest.fixture(scope="module")
def flaky_server(models: Path, outage: threading.Event,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("offline"), models_dir_override=models)
    wrap = lambda app: cutting_host(app, cuts={}, fail_once=set(), down=outage)  # noqa: E731
    with LiveServer(settings, wrap=wrap) as live:
        yield live


def wait_for_weights(page: Page, server: LiveServer, since: int = 0) -> None:
    """Until the download reaches the weights (server.requests after the first `since`; a minute at most)."""
    for _ in range(600):
        if any(path.endswith(SHARD) for _, path in server.requests[since:]):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page never asked for the weights")


def test_going_offline_mid_download_offers_resume_which_fetches_only_the_rest(
        browser: Browser, flaky_server: LiveServer, outage: threading.Event) -> None:
    with own_chat_page(browser, flaky_server.url) as page:
        page.wait_for_function("navigator.serviceWorker.ready.then(() => Boolean(navigator.serviceWorker.controller))")
        outage.set()  # the weights do not come: the connection goes while the model downloads
        page.select_option("#model-select", MODEL)
        page.click("#load-model")
        wait_for_weights(page, flaky_server)
        page.context.set_offline(True)
        expect(page.locator("#engine-error-message")).to_contain_text("The connection dropped while",
                                                                     timeout=LOAD_TIMEOUT_MS)
        expect(page.locator("#reload-model")).to_have_text("Resume")
        outage.clear()
        page.context.set_offline(False)
        page.click("#reload-model")
        expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
        asked = Counter(path.rsplit("/", 1)[-1] for method, path in flaky_server.requests
                        if method == "GET" and f"/{MODEL}" in path)
        # What was stored before the cut is not fetched again; only the weights are.
        assert asked["mlc-chat-config.json"] == asked["tokenizer.json"] == asked["tensor-cache.json"] == 1, asked
        assert asked[f"{MODEL}.wasm"] == 1 and asked[SHARD] >= 2, asked


def test_cancel_stops_a_load_and_keeps_what_was_stored(browser: Browser, flaky_server: LiveServer,
                                                       outage: threading.Event) -> None:
    with own_chat_page(browser, flaky_server.url) as page:
        # Without the service worker the dropped shard fails at once, before Cancel can be pressed.
        page.wait_for_function("navigator.serviceWorker.ready.then(() => Boolean(navigator.serviceWorker.controller))")
        outage.set()
        try:
            asked = len(flaky_server.requests)
            page.select_option("#model-select", MODEL)
            page.click("#load-model")
            wait_for_weights(page, flaky_server, since=asked)
            page.click("#cancel-load")
            expect(page.locator("#engine-status")).to_have_attribute("data-state", "idle")
            expect(page.locator("#load-progress-box")).to_be_hidden()
            expect(page.locator("#engine-error")).to_be_hidden()
            config = page.evaluate("caches.open('webllm/config').then((c) => c.keys()).then((k) => k.map((r) => r.url))")
            assert [url for url in config if url.endswith(f"/{MODEL}/resolve/main/mlc-chat-config.json")]
        finally:
            outage.clear()
