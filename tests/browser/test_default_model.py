"""The built-in model answers through the real chat page: streamed, with speeds, Stop, a second turn, and offline.

The model is SmolLM2-135M-Instruct compiled by `hearth install-default` (cached by content hash), hosted
by the real app, run by the unmodified WebLLM in a Web Worker on SwiftShader WebGPU. Nothing may leave
the machine: the `context` fixture blocks and counts every request beyond 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.browser.conftest import READY, RECORD_UPDATES, PageEvents, open_chat
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(3600)]

PARIS_PROMPT = "What is the capital of France? Answer in one word."
FOLLOW_UP = "And of Italy?"  # meaningful only with the first exchange before it
LOAD_TIMEOUT_MS = 900_000
REPLY_TIMEOUT_MS = 1_800_000
STREAMED_UPDATES = 3

# Keep what the page hands the engine, to see that a second question carries the first exchange.
RECORD_SENT = """() => {
  const session = window.hearth.session;
  const reply = session.reply.bind(session);
  window.sentMessages = [];
  session.reply = (messages, params, onText, options) => {
    if (!options?.background) window.sentMessages.push(structuredClone(messages));
    return reply(messages, params, onText, options);
  };
}"""
RECORD_PHASES = """() => {
  window.loadPhases = [];
  const phase = document.querySelector('#load-phase');
  new MutationObserver(() => window.loadPhases.push(phase.textContent))
    .observe(phase, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def default_model_id() -> str:
    from webapp.default_model import MODEL_ID

    return MODEL_ID


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A models directory holding only the built-in model, installed (hard-linked) from Hearth's cache."""
    from webapp.default_model import install_default_model

    models = tmp_path / "models"
    install_default_model(models, progress=print)
    return Settings(data_dir=tmp_path / "data", models_dir_override=models)


@pytest.fixture
def page(page: Page) -> Page:
    """Titles are a second completion: on SwiftShader each costs this model a minute of prefill, so the
    tests that are not about titles turn the setting off (tests/browser/test_chat_engine.py covers them)."""
    page.add_init_script("localStorage.setItem('hearth.autoTitles', 'off')")
    return page


def load_selected_model(page: Page) -> None:
    page.click("#load-model")
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)


def ask(page: Page, question: str) -> str:
    """Send a question and wait for the whole streamed reply; return its text."""
    replies = page.locator("#transcript .message[data-role=assistant]")
    before = replies.count()
    page.fill("#prompt", question)
    page.click("#send")
    expect(replies).to_have_count(before + 1)
    reply = replies.last
    expect(reply).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    return reply.locator(".message-body").inner_text()


def last_meta(page: Page) -> str:
    return page.locator("#transcript .message[data-role=assistant]").last.locator(".message-meta").inner_text()


def test_default_model_answers_streams_continues_and_stops(page: Page, events: PageEvents, default_model_id: str) -> None:
    chat = open_chat(page)
    # Nobody chose a model yet: the built-in one is selected.
    assert chat.input_value("#model-select") == default_model_id
    load_selected_model(chat)
    chat.evaluate(RECORD_SENT)
    chat.evaluate(RECORD_UPDATES)

    answer = ask(chat, PARIS_PROMPT)
    assert "paris" in answer.lower(), answer
    assert len(set(chat.evaluate("window.replyUpdates"))) >= 2  # it arrived in pieces, not at once
    meta = last_meta(chat)
    assert "prefill" in meta and "decode" in meta and "tokens/s" in meta, meta

    # The reply is sampled (the model's own temperature 0.2, top_p 0.9), so what this 135M model
    # makes of the follow-up varies; what must hold is that the engine was given the whole chat.
    second = ask(chat, FOLLOW_UP)
    assert second.strip()
    first_sent, second_sent = chat.evaluate("window.sentMessages")
    assert first_sent == [{"role": "user", "content": PARIS_PROMPT}]
    assert second_sent[:2] == [{"role": "user", "content": PARIS_PROMPT}, {"role": "assistant", "content": answer}]
    assert second_sent[2] == {"role": "user", "content": FOLLOW_UP}

    chat.evaluate("() => { window.replyUpdates = []; }")
    chat.fill("#prompt", "Write a long story about a dragon who guards a library.")
    chat.click("#send")
    chat.wait_for_function(
        "(wanted) => new Set(window.replyUpdates.filter((n) => n > 0)).size >= wanted",
        arg=STREAMED_UPDATES, timeout=REPLY_TIMEOUT_MS,
    )
    chat.click("#stop")
    stopped = chat.locator("#transcript .message[data-role=assistant]").last
    expect(stopped).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    expect(stopped.locator(".message-meta")).to_contain_text("Stopped")
    assert events.page_errors == [] and events.console_errors == []


def test_default_model_answers_offline_from_the_browsers_caches(
    context: BrowserContext, page: Page, events: PageEvents, outside_requests: list[str]
) -> None:
    chat = open_chat(page)
    load_selected_model(chat)
    assert "paris" in ask(chat, PARIS_PROMPT).lower()

    context.set_offline(True)
    offline_requests: list[str] = []

    def note(request: Request) -> None:
        offline_requests.append(request.url)

    context.on("request", note)
    chat.reload()
    chat.wait_for_selector(READY)
    chat.evaluate(RECORD_PHASES)
    load_selected_model(chat)
    phases = set(chat.evaluate("window.loadPhases"))
    assert "Loading weights from the browser cache" in phases and "Downloading weights" not in phases, phases
    answer = ask(chat, PARIS_PROMPT)
    assert answer.strip()
    # Weights, tokenizer, config and library all came from WebLLM's caches: no model file was asked
    # for (the page's attempt at /models/index.json failed; it listed the models it remembered).
    assert not [url for url in offline_requests if "/resolve/main/" in url or "/libs/" in url], offline_requests
    assert outside_requests == []
    assert events.page_errors == []


def test_default_model_loads_on_send_then_regenerates_and_answers_an_edited_question(
    page: Page, events: PageEvents, default_model_id: str
) -> None:
    chat = open_chat(page)
    assert chat.input_value("#model-select") == default_model_id
    assert chat.get_attribute("#engine-status", "data-state") == "idle"
    chat.click("#open-settings")
    chat.fill("#param-temperature", "0")  # greedy: a regenerated answer is the same answer
    chat.click("#settings-save")

    # No Load button pressed: sending loads the model, with its progress in the conversation.
    chat.fill("#prompt", PARIS_PROMPT)
    chat.press("#prompt", "Enter")
    expect(chat.locator("#load-progress-box")).to_be_visible()
    expect(chat.locator("#engine-status")).to_have_attribute("data-state", "generating", timeout=LOAD_TIMEOUT_MS)
    reply = chat.locator("#transcript .message[data-role=assistant]").last
    expect(reply).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    first = reply.locator(".message-body").inner_text()
    assert "paris" in first.lower(), first

    reply.locator("button[data-action=regenerate]").click()
    expect(chat.locator(".version-count")).to_have_text("2/2", timeout=REPLY_TIMEOUT_MS)
    reply = chat.locator("#transcript .message[data-role=assistant]").last
    expect(reply).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    assert "paris" in reply.locator(".message-body").inner_text().lower()

    question = chat.locator("#transcript .message[data-role=user]").last
    question.locator("button[data-action=edit]").click()
    chat.fill("#transcript .edit-box textarea", "What is the capital of Italy? Answer in one word.")
    chat.click("#transcript button[data-action=edit-send]")
    expect(chat.locator("#transcript .message[data-role=user] .version-count")).to_have_text("2/2")
    reply = chat.locator("#transcript .message[data-role=assistant]").last
    expect(reply).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    expect(chat.locator("#send")).to_be_enabled(timeout=REPLY_TIMEOUT_MS)
    assert "rome" in reply.locator(".message-body").inner_text().lower()
    # The first question and both its answers are still there, a version away.
    chat.locator("#transcript .message[data-role=user] button[aria-label='Show the previous version']").click()
    expect(chat.locator("#transcript .message[data-role=assistant] .version-count")).to_have_text("2/2")
    assert events.page_errors == [] and events.console_errors == []
