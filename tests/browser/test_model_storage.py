"""Models in the browser: the storage view lists what WebLLM cached per model (bytes as the server sent
them, offline-ready), deletes one model's entries and no other's, and offline only stored models load;
a GPU device lost under a loaded model keeps the conversation and offers a smaller reload; a file that
no longer matches its recorded hash is refused by name. One page for the module, two copies of the tiny compiled model hosted by a Hearth on loopback."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import READY, own_chat_page
from tests.browser.test_chat_engine import new_chat, send, wait_reply
from tests.browser.test_custom_models import check, fill
from tests.browser.test_chat_with_model import _link_or_copy, never_stopping_copy
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

QUANTIZATION = "q4f32_1"
FIRST = model_id(QUANTIZATION)
SECOND = f"{FIRST}-copy"
LOAD_TIMEOUT_MS = 600_000
# Every URL in WebLLM's three caches, by cache name.
CACHED_URLS = """async () => {
  const out = {};
  for (const name of ["webllm/config", "webllm/wasm", "webllm/model"]) {
    out[name] = (await caches.has(name)) ? (await (await caches.open(name)).keys()).map((r) => r.url) : [];
  }
  return out;
}"""


def second_copy(models: Path) -> None:
    """The same model under another id and name, sharing the first one's library."""
    shutil.copytree(models / FIRST, models / SECOND, copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("hearth-manifest.json", "hearth-model.json"))
    (models / SECOND / "hearth-model.json").write_text(json.dumps(
        {"display_name": "Tiny copy", "model_lib": f"{FIRST}.wasm"}))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiled, _ = compiled_models_dir(QUANTIZATION)
    target = never_stopping_copy(compiled, FIRST, tmp_path_factory.mktemp("storage") / "models")
    second_copy(target)
    return target


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("storage-data"), models_dir_override=models)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture(scope="module")
def app(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with own_chat_page(browser, server.url) as page:
        page.wait_for_function("navigator.serviceWorker.ready.then(() => true)")  # the offline shell is kept
        yield page


def load(page: Page, model: str) -> None:
    page.select_option("#model-select", model)
    page.click("#load-model")
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "loading")
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)


def served_bytes(models: Path, model: str) -> int:
    """What a load downloads: the config, tokenizer, tensor-cache.json and shards, and the library."""
    names = ["mlc-chat-config.json", "tokenizer.json", "tensor-cache.json"]
    shards = [record["dataPath"] for record in json.loads((models / model / "tensor-cache.json").read_text())["records"]]
    files = [models / model / name for name in names + sorted(set(shards))] + [models / "libs" / f"{FIRST}.wasm"]
    return sum(path.stat().st_size for path in files)


def stored_item(page: Page, model: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#stored-models li[data-model-id="{model}"]')


def open_models(page: Page) -> None:
    page.click("#open-models")
    page.wait_for_selector("#models-dialog[open]")


def test_two_loaded_models_are_listed_with_the_bytes_the_server_sent(app: Page, models: Path) -> None:
    load(app, FIRST)
    load(app, SECOND)
    open_models(app)
    for model in (FIRST, SECOND):
        expect(stored_item(app, model)).to_have_attribute("data-bytes", str(served_bytes(models, model)))
        expect(stored_item(app, model)).to_have_attribute("data-offline-ready", "true")
        assert "last used just now" in stored_item(app, model).inner_text()
        option = app.locator(f'#model-select option[value="{model}"]')
        expect(option).to_have_attribute("data-offline-ready", "true")
        assert "offline-ready" in option.inner_text()
    # The hosted models carry their hashes from the server's manifest into WebLLM's records.
    index = app.evaluate("fetch('/models/index.json').then((r) => r.json())")
    for hosted in index["models"]:
        record = app.evaluate(f"hearth.catalogue.byId.get('{hosted['id']}').record")
        assert record["integrity"] == hosted["integrity"] and record["integrity"]["model_lib"].startswith("sha256-")
    assert "used of" in app.inner_text("#storage-usage")
    assert app.locator("#storage-quota").get_attribute("value") != "0"
    assert app.inner_text("#storage-persisted")


def test_deleting_one_model_removes_exactly_its_entries(app: Page, models: Path) -> None:
    before = app.evaluate(CACHED_URLS)
    stored_item(app, FIRST).locator("button[data-action=delete]").click()
    app.click("#confirm-ok")
    expect(stored_item(app, FIRST)).to_have_count(0)
    expect(app.locator("#storage-status")).to_contain_text("Deleted tiny-llama")
    after = app.evaluate(CACHED_URLS)
    first = f"/models/{FIRST}/"
    for name, urls in before.items():
        # Everything of the first model goes, except the library the second one shares; nothing else.
        kept = [url for url in urls if first not in url]
        assert sorted(after[name]) == sorted(kept), name
    assert any(url.endswith(f"/libs/{FIRST}.wasm") for url in after["webllm/wasm"])
    assert any(first in url for url in before["webllm/model"])
    expect(stored_item(app, SECOND)).to_have_attribute("data-offline-ready", "true")
    option = app.locator(f'#model-select option[value="{FIRST}"]')
    expect(option).not_to_have_attribute("data-offline-ready", "true")
    app.click("#models-dialog [data-close-dialog]")


def test_offline_only_the_stored_model_can_be_picked_and_it_loads(app: Page) -> None:
    app.select_option("#model-select", FIRST)  # remembered: the page opens offline on a model it cannot load
    app.context.set_offline(True)
    try:
        app.reload()
        app.wait_for_selector(READY)
        expect(app.locator(f'#model-select option[value="{SECOND}"]')).to_have_attribute("data-offline-ready", "true")
        expect(app.locator("#model-select")).to_have_value(FIRST)
        expect(app.locator("#offline-note")).to_contain_text("only models marked offline-ready")
        expect(app.locator("#load-model")).to_be_disabled()
        load(app, SECOND)
        expect(app.locator(f'#model-select option[value="{FIRST}"]')).to_be_disabled()
    finally:
        app.context.set_offline(False)


def test_a_lost_gpu_device_keeps_the_conversation_and_the_model_loads_again(app: Page) -> None:
    new_chat(app, max_tokens=4)
    send(app, "Tell me about the hearth.")
    wait_reply(app)
    transcript = app.inner_text("#transcript")
    app.evaluate("hearth.session.loseDevice()")
    expect(app.locator("#engine-status")).to_have_attribute("data-state", "error")
    expect(app.locator("#engine-error-message")).to_contain_text("The GPU stopped running Tiny copy")
    expect(app.locator("#engine-error-message")).to_contain_text("Your conversation is kept")
    assert "DeviceLostError: destroyed" in app.text_content("#engine-error-detail")
    assert app.inner_text("#transcript") == transcript
    expect(app.locator("#reload-smaller")).to_have_text("Load with a 256 token context window")

    app.click("#reload-smaller")
    expect(app.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
    assert app.evaluate("hearth.session.state.contextWindow") == 256
    send(app, "And then?")
    wait_reply(app)
    expect(app.locator("#transcript .message[data-role=assistant]")).to_have_count(2)
    expect(app.locator("#context-meter")).to_have_text(re.compile(r"/ 256 tokens$"))


def test_a_file_that_no_longer_matches_its_checked_hash_is_refused_by_name(app: Page, models: Path) -> None:
    app.click("#open-models")
    fill(app, model_id="tiny-checked", display_name="Checked tiny")
    assert check(app, f"/models/{FIRST}", f"/libs/{FIRST}.wasm") == "ok"
    app.click("#cm-save")
    app.wait_for_selector('#custom-model-list li[data-model-id="tiny-checked"]')
    app.click("#models-dialog [data-close-dialog]")
    config = models / FIRST / "mlc-chat-config.json"
    changed = {**json.loads(config.read_text()), "temperature": 0.123}
    config.unlink()  # a hard link into the compile cache: replace the file, never write through it
    config.write_text(json.dumps(changed))

    app.select_option("#model-select", "tiny-checked")
    app.click("#load-model")
    expect(app.locator("#engine-error-message")).to_contain_text(
        "mlc-chat-config.json does not match the hash recorded for it", timeout=LOAD_TIMEOUT_MS)
    expect(app.locator("#engine-status")).to_have_attribute("data-state", "error")
    assert "IntegrityError" in app.text_content("#engine-error-detail")
    config_url = f"/models/{FIRST}/resolve/main/mlc-chat-config.json"
    assert not [url for url in app.evaluate(CACHED_URLS)["webllm/config"] if url.endswith(config_url)]


@contextmanager
def small_quota(page: Page, origin: str, room: int) -> Iterator[None]:
    """The origin's quota made its usage now plus room bytes, while the DevTools session that set it lasts."""
    cdp = page.context.new_cdp_session(page)
    usage = page.evaluate("navigator.storage.estimate().then((estimate) => estimate.usage)")
    cdp.send("Storage.overrideQuotaForOrigin", {"origin": origin, "quotaSize": usage + room})
    try:
        yield
    finally:
        cdp.detach()  # the override ends with the session


def hosted_bytes(page: Page, model: str) -> int:
    return page.evaluate(f"hearth.catalogue.byId.get('{model}').size.bytes")


def test_too_little_room_is_said_before_anything_downloads_and_stored_models_still_load(app: Page, server: LiveServer) -> None:
    with small_quota(app, server.url, 1000):
        asked = len(server.requests)
        app.select_option("#model-select", FIRST)
        app.click("#load-model")
        size = hosted_bytes(app, FIRST)  # the server's listing, as the page states it (1 decimal below 100 MB)
        expect(app.locator("#engine-error-message")).to_contain_text(
            f"This model needs about {size / 1e6:.1f} MB of browser storage and this site may use only about")
        assert "is missing" in app.inner_text("#engine-error-message")
        assert not [path for _, path in server.requests[asked:] if f"/{FIRST}" in path]
        # A model already stored needs no more room: it still loads.
        load(app, SECOND)


def test_delete_all_empties_webllm_caches(app: Page) -> None:
    open_models(app)
    app.click("#stored-clear")
    app.click("#confirm-ok")
    expect(app.locator("#stored-empty")).to_be_visible()
    app.click("#models-dialog [data-close-dialog]")
    assert app.evaluate(CACHED_URLS) == {"webllm/config": [], "webllm/wasm": [], "webllm/model": []}


def test_running_out_of_room_midway_leaves_none_of_the_model_behind(browser: Browser, server: LiveServer) -> None:
    # A profile of its own: deleted caches free their room only once nothing holds them, so usage is exact here.
    with own_chat_page(browser, server.url) as page:
        page.wait_for_function("navigator.serviceWorker.ready.then(() => caches.keys()).then((names) => names.length > 0)")
        # Room for the weights and library the listing counts, not for the config, tokenizer and tensor list too.
        with small_quota(page, server.url, hosted_bytes(page, SECOND) + 8000):
            page.select_option("#model-select", SECOND)
            page.click("#load-model")
            expect(page.locator("#engine-error-message")).not_to_be_empty(timeout=LOAD_TIMEOUT_MS)
            message = page.inner_text("#engine-error-message")
            assert "ran out of room for this site while downloading" in message and "is missing" in message, message
            assert "QuotaExceeded" in page.text_content("#engine-error-detail")
            assert page.evaluate(CACHED_URLS) == {"webllm/config": [], "webllm/wasm": [], "webllm/model": []}
