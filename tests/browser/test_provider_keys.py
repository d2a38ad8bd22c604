"""Provider keys in the real page: where they are kept, that remembered ones are not plain text, and
that they reach the server (in turn, when there are several) — against llama.cpp's server with a key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import open_chat
from tests.support.provider_servers import MODEL_ALIAS, RecordingFront, llamacpp_server, running

pytestmark = pytest.mark.browser
RIGHT_KEY = "sk-right-5e2a"


@pytest.fixture(scope="module")
def keyed_llama(smollm2: Path) -> Iterator[str]:
    with llamacpp_server(smollm2, api_key=RIGHT_KEY) as url:
        yield url


@pytest.fixture
def front(keyed_llama: str) -> Iterator[RecordingFront]:
    with running(RecordingFront(keyed_llama.removesuffix("/v1"))) as server:
        yield server


@pytest.fixture
def app(page: Page) -> Page:
    page.add_init_script("localStorage.setItem('hearth.autoTitles', 'off')")
    return open_chat(page)


def add_in_form(page: Page, base_url: str, keys: str, remember: bool) -> None:
    page.click("#open-providers")
    page.click("#provider-add")
    page.fill("#pv-id", "keyed")
    page.fill("#pv-base", base_url)
    page.fill("#pv-keys", keys)
    page.set_checked("#pv-remember", remember)
    page.click("#pv-add-model")
    page.fill('#pv-models [data-column="id"]', MODEL_ALIAS)
    page.click("#pv-save")


def stored_text(page: Page) -> str:
    """Everything this origin keeps in localStorage, sessionStorage and IndexedDB, as text."""
    return page.evaluate("""async () => {
        const parts = [JSON.stringify(localStorage), JSON.stringify(sessionStorage)];
        for (const info of await indexedDB.databases()) {
          const db = await new Promise((ok) => { const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); });
          for (const name of db.objectStoreNames) {
            const all = await new Promise((ok) => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => ok(r.result); });
            parts.push(JSON.stringify(all, (k, v) => v instanceof CryptoKey ? `CryptoKey(${v.extractable})` : v));
          }
        }
        return parts.join("\\n");
    }""")


def keys_kept(page: Page) -> str | None:
    return page.evaluate("() => hearth.providers.list().find((p) => p.id === 'keyed')?.keysKept ?? null")


def test_a_session_key_is_gone_in_a_new_tab_and_never_in_lasting_storage(app: Page, context: BrowserContext,
                                                                          front: RecordingFront) -> None:
    add_in_form(app, f"{front.url}/v1", RIGHT_KEY, remember=False)
    expect(app.locator("#pv-key-where")).to_contain_text("this browser session only")
    assert keys_kept(app) == "session"
    assert RIGHT_KEY not in app.evaluate("() => JSON.stringify(localStorage)")
    other = open_chat(context.new_page())  # sessionStorage is this tab's: a closed browser forgets it the same way
    assert keys_kept(other) is None


def test_a_remembered_key_is_encrypted_at_rest_and_works_in_a_new_tab(app: Page, context: BrowserContext,
                                                                       front: RecordingFront) -> None:
    add_in_form(app, f"{front.url}/v1", RIGHT_KEY, remember=True)
    expect(app.locator("#pv-key-where")).to_contain_text("remembered in this browser, encrypted")
    kept = stored_text(app)
    assert RIGHT_KEY not in kept and "CryptoKey(false)" in kept, "ciphertext only, under a non-extractable key"
    other = open_chat(context.new_page())
    assert keys_kept(other) == "remembered"
    other.click("#open-providers")
    other.click("#provider-forget-keys")
    assert keys_kept(other) is None
    assert RIGHT_KEY not in stored_text(other)


def test_a_wrong_key_is_told_and_several_keys_are_used_in_turn(app: Page, front: RecordingFront) -> None:
    app.evaluate("""(base) => hearth.providers.register({ id: "keyed", name: "Keyed", baseUrl: base,
        models: [{ id: "smollm2" }] }, { keys: ["sk-wrong"] })""", f"{front.url}/v1")
    app.select_option("#model-select", f"@keyed/{MODEL_ALIAS}")
    app.fill("#prompt", "Hi")
    app.press("#prompt", "Enter")
    expect(app.locator("#chat-error-message")).to_contain_text("refused the key (401)", timeout=30_000)
    expect(app.locator("#chat-error-message")).to_contain_text("Check the API key")
    app.evaluate(f"""(base) => hearth.providers.register({{ id: "keyed", name: "Keyed", baseUrl: base,
        models: [{{ id: "smollm2" }}] }}, {{ keys: ["{RIGHT_KEY}", "sk-second"] }})""", f"{front.url}/v1")
    app.evaluate("() => { hearth.chat.current.params.max_tokens = 4; }")
    app.fill("#prompt", "Hi")
    app.press("#prompt", "Enter")
    app.wait_for_function("() => hearth.chat.generating === null && hearth.chat.current.messages.at(-1)?.finish",
                          timeout=60_000)
    app.fill("#prompt", "Hi again")
    app.press("#prompt", "Enter")
    # The box still holds the first refusal's words (hidden): wait for it to be shown again.
    expect(app.locator("#chat-error")).to_be_visible(timeout=30_000)
    expect(app.locator("#chat-error-message")).to_contain_text("refused the key (401)")
    sent = [r.headers.get("authorization") for r in front.chats()]
    assert sent == ["Bearer sk-wrong", f"Bearer {RIGHT_KEY}", "Bearer sk-second"], "the keys in turn"
    assert json.dumps(app.evaluate("() => hearth.providers.list()")).count(RIGHT_KEY) == 0, "list() shows no keys"
