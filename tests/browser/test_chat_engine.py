"""The chat app's mechanics through the real WebLLM engine: streaming, titles, regenerate and versions,
edit, continue, delete, Stop, a reply that keeps streaming into its own conversation while another is
open, presets, and the context-window rule. The engine runs Hearth's tiny compiled test model (random
weights, stop tokens removed so only max_tokens or Stop ends a reply), loaded once for the module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.chatapp import archive, conversation, conversation_item, import_archive, open_settings, saved_records
from tests.browser.conftest import RECORD_UPDATES, guarded_context, open_chat
from tests.browser.test_chat_with_model import never_stopping_copy
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

QUANTIZATION = "q4f32_1"
MODEL = model_id(QUANTIZATION)
LOAD_TIMEOUT_MS = 600_000
REPLY_TIMEOUT_MS = 180_000
CONTINUE_PROMPT = "Continue exactly where your last reply stopped, without repeating any of it."
# What the page hands the session: every request's messages, parameters and whether it ran in the background.
RECORD_SENT = """() => {
  const session = window.hearth.session;
  const reply = session.reply.bind(session);
  window.sent = [];
  session.reply = (messages, params, onText, options) => {
    window.sent.push({ messages: structuredClone(messages), params: { ...params }, background: Boolean(options?.background) });
    return reply(messages, params, onText, options);
  };
}"""


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    models, _ = compiled_models_dir(QUANTIZATION)
    root = tmp_path_factory.mktemp("chat-engine")
    settings = Settings(data_dir=root / "data", models_dir_override=never_stopping_copy(models, MODEL, root / "models"))
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def app(browser: Browser, engine_server: LiveServer) -> Iterator[Page]:
    """One page for the module, with the tiny model loaded once (loading compiles every shader)."""
    outside: list[str] = []
    context = guarded_context(browser, engine_server.url, outside)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    open_chat(page)
    page.select_option("#model-select", MODEL)
    page.click("#load-model")
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
    page.evaluate(RECORD_SENT)
    yield page
    context.close()
    assert outside == [], outside


def new_chat(page: Page, **params: object) -> None:
    page.click("#new-chat")
    if params:
        open_settings(page)
        for name, value in params.items():
            page.fill(f"#param-{name}", str(value))
        page.click("#settings-save")
        expect(page.locator("#settings-dialog")).not_to_be_visible()


def send(page: Page, text: str) -> None:
    """Send a message, and return once its reply has started (a load may come first: Send stays
    enabled until then, so waiting for it alone could end before anything happened)."""
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    page.wait_for_function("""(text) => {
        const messages = hearth.chat.current.messages;
        const question = messages.findLast((m) => m.role === "user" && m.content === text);
        return question && (hearth.chat.generating !== null || messages.some((m) => m.parent === question.id));
    }""", arg=text, timeout=REPLY_TIMEOUT_MS)


def wait_reply(page: Page) -> None:
    last = page.locator("#transcript .message[data-role=assistant]").last
    expect(last).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("#send")).to_be_enabled(timeout=REPLY_TIMEOUT_MS)


def click_and_wait_reply(page: Page, button: Locator) -> None:
    """Click a button that asks for a reply, and return once that reply has ended. The page saves the
    conversation before it asks the engine, so the reply before stays on screen, finished, for a moment:
    waiting on the screen alone could return before anything was asked."""
    asked = page.evaluate("window.sent.filter((request) => !request.background).length")
    button.click()
    page.wait_for_function("(asked) => window.sent.filter((request) => !request.background).length > asked",
                           arg=asked, timeout=REPLY_TIMEOUT_MS)
    wait_reply(page)


def replies(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#transcript .message[data-role=assistant]")


def current_record(page: Page) -> dict:
    cid = page.evaluate("hearth.chat.current.id")
    return next(record for record in saved_records(page) if record["id"] == cid)


def test_a_reply_streams_is_saved_with_its_model_and_stats_and_gets_a_title(app: Page) -> None:
    new_chat(app, max_tokens=12)
    app.evaluate("() => { window.sent = []; }")
    send(app, "Tell me about the hearth.")
    wait_reply(app)
    meta = replies(app).last.locator(".message-meta").inner_text()
    assert "Cut off at the token limit" in meta and "decode" in meta and meta.endswith("12 tokens"), meta
    record = current_record(app)
    question, answer = record["messages"]
    assert question["content"] == "Tell me about the hearth." and answer["parent"] == question["id"]
    assert answer["model"] == MODEL and answer["finish"] == "length" and answer["stats"]["tokens"] == 12
    assert app.evaluate("window.sent")[0]["params"] == {"max_tokens": 12}
    assert re.fullmatch(r"[\d,]+ / 512 tokens", app.inner_text("#context-meter"))

    # The title comes from a small background completion, and never blocks the composer.
    app.wait_for_function("() => hearth.chat.current.titleSource === 'model'", timeout=REPLY_TIMEOUT_MS)
    titling = [request for request in app.evaluate("window.sent") if request["background"]]
    assert len(titling) == 1 and titling[0]["params"]["max_tokens"] == 16
    assert "Tell me about the hearth." in titling[0]["messages"][0]["content"]
    title = app.evaluate("hearth.chat.current.title")
    expect(app.locator("#conversation-title")).to_have_text(title)
    assert app.locator("#conversation-list [aria-current=true] .conversation-title").inner_text() == title


def test_regenerate_keeps_the_earlier_reply_as_a_version(app: Page) -> None:
    first = replies(app).last.locator(".message-body").inner_text()
    click_and_wait_reply(app, replies(app).last.locator("button[data-action=regenerate]"))
    expect(replies(app)).to_have_count(1)
    expect(app.locator(".version-count")).to_have_text("2/2")
    second = replies(app).last.locator(".message-body").inner_text()
    # Switching versions saves the choice before it redraws: wait for the count, then read.
    app.click("button[aria-label='Show the previous version']")
    expect(app.locator(".version-count")).to_have_text("1/2")
    assert replies(app).last.locator(".message-body").inner_text() == first
    app.click("button[aria-label='Show the next version']")
    expect(app.locator(".version-count")).to_have_text("2/2")
    assert replies(app).last.locator(".message-body").inner_text() == second
    assert len(current_record(app)["messages"]) == 3


def test_editing_a_question_sends_it_again_and_keeps_the_old_branch(app: Page) -> None:
    app.evaluate("() => { window.sent = []; }")
    question = app.locator("#transcript .message[data-role=user]").last
    question.locator("button[data-action=edit]").click()
    app.fill("#transcript .edit-box textarea", "Tell me about the fire instead.")
    click_and_wait_reply(app, app.locator("#transcript button[data-action=edit-send]"))
    sent = [request for request in app.evaluate("window.sent") if not request["background"]]
    assert sent[-1]["messages"] == [{"role": "user", "content": "Tell me about the fire instead."}]
    user = app.locator("#transcript .message[data-role=user]").last
    expect(user.locator(".version-count")).to_have_text("2/2")
    user.locator("button[aria-label='Show the previous version']").click()
    expect(app.locator("#transcript .message[data-role=user] .message-body")).to_have_text("Tell me about the hearth.")
    expect(replies(app).last.locator(".version-count")).to_have_text("2/2"), "the old branch kept both its replies"
    user = app.locator("#transcript .message[data-role=user]").last
    user.locator("button[aria-label='Show the next version']").click()
    expect(app.locator("#transcript .message[data-role=user] .message-body")).to_have_text("Tell me about the fire instead.")


def test_a_reply_cut_at_max_tokens_can_be_continued(app: Page) -> None:
    app.evaluate("() => { window.sent = []; }")
    before = replies(app).last.locator(".message-body").inner_text()
    click_and_wait_reply(app, replies(app).last.locator("button[data-action=continue]"))
    after = replies(app).last.locator(".message-body").inner_text()
    assert after.startswith(before.rstrip()) and len(after) > len(before)
    sent = [request for request in app.evaluate("window.sent") if not request["background"]][-1]["messages"]
    assert sent[-1] == {"role": "user", "content": CONTINUE_PROMPT}
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"].strip() == before.strip()


def test_deleting_a_message_removes_it_and_keeps_the_rest(app: Page) -> None:
    count = len(current_record(app)["messages"])
    replies(app).last.locator("button[data-action=delete]").click()
    expect(replies(app)).to_have_count(0)
    expect(app.locator("#transcript .message[data-role=user]")).to_have_count(1)
    assert len(current_record(app)["messages"]) == count - 1


def test_escape_stops_a_reply_and_it_keeps_its_text(app: Page) -> None:
    new_chat(app, max_tokens=400)
    app.evaluate(RECORD_UPDATES)
    send(app, "Write a long story.")
    app.wait_for_function("() => new Set(window.replyUpdates.filter((n) => n > 0)).size >= 3", timeout=REPLY_TIMEOUT_MS)
    app.keyboard.press("Escape")
    wait_reply(app)
    reply = replies(app).last
    expect(reply.locator(".message-meta")).to_contain_text("Stopped")
    assert reply.locator(".message-body").inner_text().strip()
    assert current_record(app)["messages"][-1]["stopped"] is True


def test_a_reply_keeps_streaming_into_its_own_conversation_while_another_is_open(app: Page) -> None:
    other_id = app.evaluate("hearth.chat.current.id")  # the stopped story, from the test before
    other_before = current_record(app)
    new_chat(app, max_tokens=300)
    app.evaluate(RECORD_UPDATES)
    send(app, "Tell me everything.")
    streaming_id = app.evaluate("hearth.chat.current.id")
    app.wait_for_function("() => window.replyUpdates.some((n) => n > 0)", timeout=REPLY_TIMEOUT_MS)
    app.locator(f"#conversation-list [data-id='{other_id}'] [data-action=open]").click()
    expect(app.locator("#transcript .message")).to_have_count(2)
    assert app.locator("#transcript .message[aria-busy=true]").count() == 0
    length_then = app.evaluate(f"hearth.conversations.get('{streaming_id}').messages.at(-1).content.length")
    app.wait_for_function(f"(n) => hearth.conversations.get('{streaming_id}').messages.at(-1).content.length > n",
                          arg=length_then, timeout=REPLY_TIMEOUT_MS)
    app.locator(f"#conversation-list [data-id='{streaming_id}'] [data-action=open]").click()
    streaming = replies(app).last
    expect(streaming).to_have_attribute("aria-busy", "true")
    app.click("#stop")
    wait_reply(app)
    records = {record["id"]: record for record in saved_records(app)}
    assert records[other_id]["messages"] == other_before["messages"], "nothing was written into the other chat"
    mine = records[streaming_id]["messages"]
    assert [m["role"] for m in mine] == ["user", "assistant"] and mine[1]["content"].strip()


def test_a_preset_starts_a_chat_with_its_system_prompt_and_parameters(app: Page, engine_server: LiveServer) -> None:
    new_chat(app)
    open_settings(app)
    # The loaded model's own defaults, from its mlc-chat-config.json, stand beside the fields.
    config = json.loads((engine_server.settings.models_dir / MODEL / "mlc-chat-config.json").read_text())
    expect(app.locator("#param-temperature-default")).to_have_text(f"Model default: {config['temperature']}.")
    assert app.get_attribute("#param-top_p", "placeholder") == str(config["top_p"])
    app.fill("#system-prompt", "You are terse.")
    app.fill("#param-temperature", "0")
    app.fill("#param-max_tokens", "6")
    app.fill("#preset-name", "Terse")
    app.click("#preset-save")
    expect(app.locator("#preset-list li")).to_have_count(1)
    app.click("#settings-cancel")
    app.evaluate("() => { window.sent = []; }")
    open_settings(app)
    app.click("#preset-list button[data-action=start]")
    expect(app.locator("#settings-dialog")).not_to_be_visible()
    send(app, "Hello")
    wait_reply(app)
    request = [r for r in app.evaluate("window.sent") if not r["background"]][0]
    assert request["messages"][0] == {"role": "system", "content": "You are terse."}
    assert request["params"] == {"temperature": 0, "max_tokens": 6}
    assert saved_records(app, "presets")[0]["params"] == {"temperature": 0, "max_tokens": 6}


def test_a_conversation_longer_than_the_context_window_leaves_out_its_oldest_turns(app: Page, tmp_path: Path) -> None:
    turn = "The hearth is the heart of the home, where the fire is kept and the stories are told. " * 3
    long = conversation("c-long", "Long one", 1_700_000_000_000, [(f"{i}: {turn}", f"{i}: {turn}") for i in range(8)],
                        systemPrompt="Keep the fire.", params={"context_window_size": 256, "max_tokens": 8})
    import_archive(app, tmp_path, archive([long]))
    conversation_item(app, "Long one").locator("[data-action=open]").click()
    # Another model answered it (one this server does not have): the page says so, and reloads nothing.
    expect(app.locator("#model-mismatch")).to_be_visible()
    assert "not available here" in app.inner_text("#model-mismatch-text")
    assert app.get_attribute("#engine-status", "data-state") == "ready"
    app.evaluate("() => { window.sent = []; }")
    send(app, "What is kept?")
    # A different context window needs the model loaded again: that happens on send, then the reply.
    wait_reply(app)
    assert app.evaluate("hearth.session.state.contextWindow") == 256
    note = app.inner_text("#context-note")
    assert re.search(r"The \d+ oldest messages were left out", note), note
    request = [r for r in app.evaluate("window.sent") if not r["background"]][0]
    messages = request["messages"]
    assert messages[0] == {"role": "system", "content": "Keep the fire."}
    assert messages[1]["role"] == "user" and messages[-1] == {"role": "user", "content": "What is kept?"}
    assert len(messages) < 1 + 16 + 1
    counts = app.evaluate("(texts) => hearth.session.countTokens(texts)", [m["content"] for m in messages])
    assert sum(counts) + 8 * len(messages) + 32 + 8 <= 256
    used = int(app.inner_text("#context-meter").split(" / ")[0].replace(",", ""))
    assert used <= 256
    assert app.locator("#chat-error").is_hidden() and app.locator("#engine-error").is_hidden()
    assert app.errors == []  # type: ignore[attr-defined]
