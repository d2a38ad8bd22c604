"""Model downloads survive the network: the service worker retries a shard cut mid-body twice (at
different offsets), resuming with Range, and a file answered 503 once; the load completes, the stored
shard is byte-for-byte the file, and no file is asked for more often than its failures need. A load
cut off by going offline offers Resume, which fetches only what was not stored, and so does one whose
second shard (of three) is cut until the retries run out: the first shard is never asked for again.
Cancel stops a load."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import own_chat_page
from tests.compiled import compiled_models_dir, model_id, multi_shard_models_dir
from tests.conftest import LiveServer
from tests.support.cutting_network import cutting_host
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

MODEL = model_id("q4f32_1")
SHARD = "params_shard_0.bin"
LOAD_TIMEOUT_MS = 600_000
CUTS = [20_000, 50_000]  # the shard is about 84 KB: cut, resume, cut further on, resume
# The same 84 KB of weights in three shards, which WebLLM fetches one after another (it runs four
# downloads at once only from eight shards up); the second is cut this far in, as often as asked.
SHARD_BYTES = 40_000
SECOND_SHARD = "params_shard_1.bin"
CUT_SECOND_AT = 10_000
CONTROLLED = "navigator.serviceWorker.ready.then(() => Boolean(navigator.serviceWorker.controller))"
STORED_SHA256 = """async (name) => {
  const cache = await caches.open("webllm/model");
  const key = (await cache.keys()).find((request) => request.url.endsWith(name));
  const bytes = await (await cache.match(key)).arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}"""


@pytest.fixture(scope="module")
def models() -> Path:
    return compiled_models_dir("q4f32_1")[0]


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with unreliable_server(models, tmp_path_factory.mktemp("resilient"), cuts={SHARD: CUTS},
                           fail_once={"tokenizer.json"}) as live:
        yield live


@contextmanager
def unreliable_server(models: Path, data_dir: Path, **network: Any) -> Iterator[LiveServer]:
    """A Hearth hosting models behind tests.support.cutting_network (network: cutting_host's options)."""
    network = {"cuts": {}, "fail_once": set(), **network}
    settings = Settings(data_dir=data_dir, models_dir_override=models)
    with LiveServer(settings, wrap=lambda app: cutting_host(app, **network)) as live:
        yield live


def test_a_cut_shard_and_a_503_are_retried_and_the_model_loads(browser: Browser, server: LiveServer,
                                                                 models: Path) -> None:
    assert (models / MODEL / SHARD).stat().st_size > max(CUTS)
    with own_chat_page(browser, server.url) as page:
        page.wait_for_function(CONTROLLED)
        page.select_option("#model-select", MODEL)
        page.click("#load-model")
        expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
        asked = asked_per_file(server)
        assert asked[SHARD] == 1 + len(CUTS), asked
        assert asked["tokenizer.json"] == 2, asked
        assert asked["mlc-chat-config.json"] == asked["tensor-cache.json"] == asked[f"{MODEL}.wasm"] == 1, asked
        assert page.evaluate(STORED_SHA256, SHARD) == hashlib.sha256((models / MODEL / SHARD).read_bytes()).hexdigest()


def asked_per_file(server: LiveServer) -> Counter[str]:
    """How often the page asked the server for each of the model's files (by file name)."""
    return Counter(path.rsplit("/", 1)[-1] for method, path in server.requests
                   if method == "GET" and f"/{MODEL}" in path)


@pytest.fixture(scope="module")
def outage() -> threading.Event:
    return threading.Event()


@pytest.fixture(scope="module")
def flaky_server(models: Path, outage: threading.Event,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with unreliable_server(models, tmp_path_factory.mktemp("offline"), down=outage) as live:
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
        page.wait_for_function(CONTROLLED)
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
        asked = asked_per_file(flaky_server)
        # What was stored before the cut is not fetched again; only the weights are.
        assert asked["mlc-chat-config.json"] == asked["tokenizer.json"] == asked["tensor-cache.json"] == 1, asked
        assert asked[f"{MODEL}.wasm"] == 1 and asked[SHARD] >= 2, asked


def test_cancel_stops_a_load_and_keeps_what_was_stored(browser: Browser, flaky_server: LiveServer,
                                                       outage: threading.Event) -> None:
    with own_chat_page(browser, flaky_server.url) as page:
        # Without the service worker the dropped shard fails at once, before Cancel can be pressed.
        page.wait_for_function(CONTROLLED)
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


@pytest.fixture(scope="module")
def sharded() -> Path:
    return multi_shard_models_dir("q4f32_1", SHARD_BYTES)


@pytest.fixture(scope="module")
def cutting() -> threading.Event:
    return threading.Event()


@pytest.fixture(scope="module")
def sharded_server(sharded: Path, cutting: threading.Event,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with unreliable_server(sharded, tmp_path_factory.mktemp("sharded"),
                           keep_cutting=(cutting, SECOND_SHARD, CUT_SECOND_AT)) as live:
        yield live


def test_a_shard_cut_until_the_retries_run_out_offers_resume_which_never_asks_for_the_shard_before(
        browser: Browser, sharded_server: LiveServer, sharded: Path, cutting: threading.Event) -> None:
    shards = [shard["dataPath"] for shard in json.loads((sharded / MODEL / "tensor-cache.json").read_text())["records"]]
    assert shards == ["params_shard_0.bin", SECOND_SHARD, "params_shard_2.bin"]
    assert (sharded / MODEL / SECOND_SHARD).stat().st_size > CUT_SECOND_AT
    with own_chat_page(browser, sharded_server.url) as page:
        page.wait_for_function(CONTROLLED)
        retries = page.evaluate("import('/static/js/resilient-fetch.js').then((module) => module.RETRIES)")
        cutting.set()
        try:
            page.select_option("#model-select", MODEL)
            page.click("#load-model")
            expect(page.locator("#engine-error-message")).to_contain_text(
                "could not be downloaded, even after retrying", timeout=LOAD_TIMEOUT_MS)
            expect(page.locator("#reload-model")).to_have_text("Resume")
            asked = asked_per_file(sharded_server)
            # Each cut counts as one failure; a resume that fails before its answer is retried inside it too.
            assert asked[shards[0]] == 1 and asked[SECOND_SHARD] >= 1 + retries and not asked[shards[2]], asked
            cut = asked[SECOND_SHARD]
            # The selector says how much is left of the download the server listed.
            stored = ["mlc-chat-config.json", "tokenizer.json", "tensor-cache.json", shards[0]]
            held = sum((sharded / MODEL / name).stat().st_size for name in stored)
            held += (sharded / "libs" / f"{MODEL}.wasm").stat().st_size
            total = page.evaluate(f"hearth.catalogue.byId.get('{MODEL}').size.bytes")
            left, whole = page.evaluate("""([left, whole]) => import("/static/js/format.js")
              .then(({ formatBytes }) => [formatBytes(left), formatBytes(whole)])""", [total - held, total])
            expect(page.locator(f'#model-select option[value="{MODEL}"]')).to_contain_text(
                f" · {left} of {whole} left to download")
        finally:
            cutting.clear()
        page.click("#reload-model")
        expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
        asked = asked_per_file(sharded_server)
        # The first shard was stored before the cut: Resume never asks for it again; the cut one comes whole.
        assert (asked[shards[0]], asked[SECOND_SHARD], asked[shards[2]]) == (1, cut + 1, 1), asked
        assert asked["mlc-chat-config.json"] == asked["tokenizer.json"] == asked["tensor-cache.json"] == 1, asked
        assert asked[f"{MODEL}.wasm"] == 1, asked
        for shard in shards:
            expected = hashlib.sha256((sharded / MODEL / shard).read_bytes()).hexdigest()
            assert page.evaluate(STORED_SHA256, shard) == expected, shard
