"""Remote providers in the real page, against llama.cpp's real OpenAI-compatible server on loopback.

A recording front stands between the page and llama.cpp (tests/support/provider_servers.py): it
shows what reached the server and whether the page hung up, and one copy sends no CORS headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_chat
from tests.conftest import LiveServer
from tests.support.front_servers import free_port
from tests.support.provider_servers import MODEL_ALIAS, RecordingFront, llamacpp_server, running

pytestmark = pytest.mark.browser
REPLY_MS = 60_000
ENTRY = f"@llama/{MODEL_ALIAS}"


@pytest.fixture(scope="module")
def llama(smollm2: Path) -> Iterator[str]:
    with llamacpp_server(smollm2) as url:
        yield url


@pytest.fixture
def front(llama: str) -> Iterator[RecordingFront]:
    with running(RecordingFront(llama.removesuffix("/v1"))) as server:
        yield server


@pytest.fixture
def closed_front(llama: str) -> Iterator[RecordingFront]:
    """Up, answering, but without a single CORS header."""
    with running(RecordingFront(llama.removesuffix("/v1"), cors=False)) as server:
        yield server


def register(page: Page, base_url: str, **extra: object) -> None:
    """Add a provider as a script in the console would (hearth.providers.register)."""
    definition = {"id": "llama", "name": "Local llama", "type": "openai", "baseUrl": base_url,
                  "models": [{"id": MODEL_ALIAS}], **extra}
    page.evaluate("(d) => hearth.providers.register(d)", definition)


def sent_for(front: RecordingFront, question: str) -> dict:
    """The body of the chat call that asked this question (titles are asked in calls of their own)."""
    return next(r.body for r in front.chats() if r.body["messages"][-1]["content"] == question)


def send(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def last_reply(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('#transcript article.message[data-role="assistant"]').last


def wait_for_reply(page: Page, timeout: int = REPLY_MS):  # type: ignore[no-untyped-def]
    """The last reply, once it is written (or stopped)."""
    page.wait_for_function("""() => {
        const last = hearth.chat.current.messages.at(-1);
        return hearth.chat.generating === null && last?.role === "assistant" && !last.pending && last.finish;
    }""", timeout=timeout)
    return last_reply(page)


def test_a_provider_added_in_the_form_lists_verifies_and_chats(chat: Page, front: RecordingFront) -> None:
    chat.click("#open-providers")
    chat.click("#provider-add")
    chat.fill("#pv-id", "llama")
    chat.fill("#pv-name", "Local llama")
    chat.fill("#pv-base", "127.0.0.1:8080/v1")
    chat.click("#pv-save")
    expect(chat.locator("#pv-base-error")).to_contain_text("That is not a URL: it starts with http:// or https://")
    assert chat.evaluate("() => hearth.providers.list().length") == 0, "nothing saved"
    chat.fill("#pv-base", f"{front.url}/v1/chat/completions")
    expect(chat.locator("#pv-trim-box")).to_be_visible()
    chat.click("#pv-trim")
    expect(chat.locator("#pv-base")).to_have_value(f"{front.url}/v1")
    chat.click("#pv-fetch-models")
    expect(chat.locator("#pv-models-note")).to_have_text("The endpoint lists 1 model.")
    expect(chat.locator('#pv-models [data-column="id"]')).to_have_value(MODEL_ALIAS)
    expect(chat.locator("#pv-url-preview")).to_have_text(f"{front.url}/v1/chat/completions")
    chat.click("#pv-verify")
    expect(chat.locator('#pv-doctor li[data-step="chat"]')).to_have_attribute("data-ok", "true", timeout=REPLY_MS)
    assert chat.locator('#pv-doctor > li[data-ok="false"]').count() == 0
    chat.click("#pv-save")
    chat.click("#providers-dialog [data-close-dialog]")

    chat.select_option("#model-select", ENTRY)
    expect(chat.locator("#model-select option:checked")).to_have_text(f"{MODEL_ALIAS} · Local llama")
    send(chat, "What is the capital of France?")
    reply = wait_for_reply(chat)
    expect(reply.locator(".message-author")).to_have_text(f"{MODEL_ALIAS} · Local llama")
    assert reply.locator(".message-body").inner_text().strip()
    # llama.cpp streams no usage: the speed is an estimate, and says so.
    expect(reply.locator(".message-meta")).to_contain_text("(estimated)")
    sent = sent_for(front, "What is the capital of France?")
    assert set(sent) == {"model", "messages", "stream", "stream_options"}, "the request body is minimal by default"
    assert sent["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}


def test_a_dropped_parameter_never_reaches_the_server(chat: Page, front: RecordingFront) -> None:
    register(chat, f"{front.url}/v1", dropParams=["stream_options", "temperature"])
    chat.select_option("#model-select", ENTRY)
    chat.evaluate("() => { hearth.chat.current.params.temperature = 0; }")
    send(chat, "Say hello.")
    wait_for_reply(chat)
    sent = sent_for(front, "Say hello.")
    assert "stream_options" not in sent and "temperature" not in sent
    assert sent["stream"] is True


def test_a_server_without_cors_works_only_through_the_relay(chat: Page, closed_front: RecordingFront) -> None:
    register(chat, f"{closed_front.url}/v1")
    chat.select_option("#model-select", ENTRY)
    send(chat, "Hello?")
    expect(chat.locator("#chat-error")).to_be_visible(timeout=REPLY_MS)
    expect(chat.locator("#chat-error-message")).to_contain_text("could not be reached from this browser")
    expect(chat.locator("#prompt")).to_have_value("Hello?")

    chat.click("#open-providers")
    chat.click('#provider-list li[data-provider-id="llama"] button:has-text("Edit")')
    chat.click("#pv-verify")
    cors = chat.locator('#pv-doctor li[data-step="cors"]')
    expect(cors).to_have_attribute("data-ok", "false", timeout=REPLY_MS)
    expect(cors).to_contain_text("CORS headers are missing")
    expect(cors).to_contain_text("OLLAMA_ORIGINS")
    chat.select_option("#pv-via", "relay")
    chat.click("#pv-save")
    chat.click("#providers-dialog [data-close-dialog]")
    chat.select_option("#model-select", ENTRY)
    send(chat, "Hello?")
    reply = wait_for_reply(chat)
    assert reply.locator(".message-body").inner_text().strip()
    assert closed_front.chats(), "the relayed call reached the server"


def test_the_doctor_tells_a_stopped_server_from_a_closed_one(chat: Page) -> None:
    register(chat, f"http://127.0.0.1:{free_port()}/v1")
    chat.click("#open-providers")
    chat.click('#provider-list li[data-provider-id="llama"] button:has-text("Edit")')
    chat.click("#pv-verify")
    reachable = chat.locator('#pv-doctor li[data-step="reachable"]')
    expect(reachable).to_have_attribute("data-ok", "false", timeout=30_000)
    expect(reachable).to_contain_text("Nothing answers")


def test_the_page_itself_reaches_no_provider_and_no_other_origin(chat: Page, front: RecordingFront,
                                                                 live_server: LiveServer) -> None:
    register(chat, f"{front.url}/v1")
    other = f"http://127.0.0.1:{free_port()}/"
    blocked = chat.evaluate("""async (urls) => {
        const results = [];
        for (const url of urls) {
          const violation = new Promise((resolve) => document.addEventListener("securitypolicyviolation",
            (e) => resolve(e.blockedURI), { once: true }));
          try { await fetch(url); results.push("fetched"); } catch { results.push(await violation); }
        }
        return results;
    }""", [f"{front.url}/v1/models", other])
    assert blocked == [f"{front.url}/v1/models", other.rstrip("/")] or all(b != "fetched" for b in blocked), blocked
    assert not front.requests, "the page's own fetch never reached the provider"


def test_model_lists_refresh_on_their_own_and_a_failing_one_is_kept_stale(chat: Page, front: RecordingFront) -> None:
    register(chat, f"{front.url}/v1")
    chat.evaluate("""() => hearth.providers.register({ id: "gone", name: "Gone", baseUrl: "http://127.0.0.1:9/v1",
        models: [{ id: "m" }], modelList: { ids: ["a", "b"], fetchedAt: 1 } })""")
    chat.click("#open-providers")
    live = chat.locator('#provider-list li[data-provider-id="llama"] .model-list-note')
    expect(live).to_contain_text("the endpoint lists 1 model", timeout=20_000)
    stale = chat.locator('#provider-list li[data-provider-id="gone"] .model-list-note')
    expect(stale).to_have_attribute("data-stale", "true", timeout=20_000)
    expect(stale).to_contain_text("the last good one had 2 models")


# Last in the module: llama.cpp goes on generating the stopped reply for a while after the hang-up.
def test_stop_closes_the_connection_to_the_server(page: Page, front: RecordingFront) -> None:
    # No title afterwards: the story's call is the one to watch.
    page.add_init_script("localStorage.setItem('hearth.autoTitles', 'off')")
    chat = open_chat(page)
    register(chat, f"{front.url}/v1")
    chat.select_option("#model-select", ENTRY)
    chat.evaluate("() => { hearth.chat.current.params.max_tokens = 400; }")
    story = "Write a very long story about a lighthouse keeper, with many chapters."
    send(chat, story)
    reply = last_reply(chat)
    expect(reply.locator(".message-body")).not_to_be_empty(timeout=REPLY_MS)
    chat.click("#stop")
    reply = wait_for_reply(chat, 20_000)
    expect(reply.locator(".message-meta")).to_contain_text("Stopped")
    assert reply.locator(".message-body").inner_text().strip(), "the text so far is kept"
    call = next(r for r in front.chats() if r.body["messages"][-1]["content"] == story)
    for _ in range(50):
        if call.hung_up:
            break
        chat.wait_for_timeout(100)
    assert call.hung_up, "the server saw the connection close"
