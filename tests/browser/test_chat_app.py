"""The chat app's own mechanics in a real Chromium, without a model: layout, drawer, saved conversations
in IndexedDB (rename, search, pin, delete, reload), the old localStorage conversation migrating once,
a corrupt record set aside, export and import, keyboard use, and a failed load on send."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.chatapp import (
    DAY_MS, archive, conversation, conversation_item, import_archive, item_action, open_settings, saved_records,
    sidebar_titles,
)
from tests.browser.conftest import HOSTED_ID, READY, PageEvents, open_chat

pytestmark = pytest.mark.browser


def now_ms() -> int:
    return int(time.time() * 1000)


def three_conversations() -> list[dict]:
    now = now_ms()
    return [
        conversation("c-today", "Fire and stories", now - 1000, [("Tell me about the hearth", "It is the heart.")]),
        conversation("c-week", "Quantization notes", now - 3 * DAY_MS, [("What is q4f32?", "Four-bit weights.")]),
        conversation("c-old", "Rotary embeddings", now - 30 * DAY_MS,
                     [("How do rotations encode positions?", "Pairs of numbers turn."), ("And heads?", "Each one.")]),
    ]


def test_the_conversation_fills_the_page_and_the_models_view_is_a_dialog(chat: Page, events: PageEvents) -> None:
    chat.set_viewport_size({"width": 1280, "height": 800})
    composer = chat.locator("#composer").bounding_box()
    transcript = chat.locator(".transcript-scroll").bounding_box()
    assert composer["y"] + composer["height"] <= 800
    assert transcript["width"] > 800, "the conversation takes the main area"
    assert chat.locator("#sidebar").is_visible()
    assert chat.get_attribute("#transcript", "role") == "log" and chat.get_attribute("#transcript", "aria-label")
    assert not chat.locator("#gpu-status").is_visible(), "the GPU report is out of the chat column"
    chat.click("#open-models")
    expect(chat.locator("#gpu-status")).to_be_visible()
    expect(chat.locator("#custom-models")).to_be_visible()
    assert "swiftshader" in chat.inner_text("#gpu-summary").lower()
    chat.keyboard.press("Escape")
    expect(chat.locator("#models-dialog")).not_to_be_visible()
    assert events.page_errors == [] and events.console_errors == []


def test_on_a_phone_the_sidebar_is_a_drawer_and_the_composer_is_on_screen(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    chat = open_chat(page)
    box = chat.locator("#prompt").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 844, box
    assert chat.locator("#send").bounding_box()["y"] + 10 < 844
    assert not chat.locator("#sidebar").is_visible()
    chat.click("#sidebar-toggle")
    expect(chat.locator("#sidebar")).to_be_visible()
    assert chat.get_attribute("#sidebar-toggle", "aria-expanded") == "true"
    expect(chat.locator("#chat-search")).to_be_focused()
    chat.keyboard.press("Escape")
    expect(chat.locator("#sidebar")).not_to_be_visible()


def test_conversations_are_listed_renamed_searched_pinned_deleted_and_kept(chat: Page, tmp_path: Path) -> None:
    report = import_archive(chat, tmp_path, archive(three_conversations()))
    assert "Imported 3 conversations" in report
    groups = chat.locator("#conversation-list .conversation-group h3").all_text_contents()
    assert groups == ["Today", "Previous 7 days", "Older"]
    assert sidebar_titles(chat) == ["Fire and stories", "Quantization notes", "Rotary embeddings"]
    assert "Tiny Llama" in conversation_item(chat, "Fire and stories").locator(".conversation-meta").inner_text()

    # Open one: its messages are on screen, its title in the header.
    conversation_item(chat, "Rotary embeddings").locator("[data-action=open]").click()
    expect(chat.locator("#transcript .message")).to_have_count(4)
    expect(chat.locator("#conversation-title")).to_have_text("Rotary embeddings")

    # Rename through the dialog.
    item_action(chat, "Quantization notes", "rename")
    chat.fill("#rename-title", "Four-bit weights")
    chat.keyboard.press("Enter")
    expect(conversation_item(chat, "Four-bit weights")).to_have_count(1)

    # Search covers titles and message text.
    chat.fill("#chat-search", "pairs of numbers")
    assert sidebar_titles(chat) == ["Rotary embeddings"]
    chat.fill("#chat-search", "four-bit")
    assert sidebar_titles(chat) == ["Four-bit weights"]
    chat.fill("#chat-search", "nothing like this")
    assert sidebar_titles(chat) == [] and chat.is_visible("#conversation-empty")
    chat.fill("#chat-search", "")

    # Pinning moves an old one to the top.
    item_action(chat, "Rotary embeddings", "pin")
    assert chat.locator("#conversation-list .conversation-group h3").first.text_content() == "Pinned"
    assert sidebar_titles(chat)[0] == "Rotary embeddings"

    # Delete asks first; cancelling keeps it.
    item_action(chat, "Fire and stories", "delete")
    assert "Fire and stories" in chat.inner_text("#confirm-message")
    chat.click("#confirm-cancel")
    assert len(sidebar_titles(chat)) == 3
    item_action(chat, "Fire and stories", "delete")
    chat.click("#confirm-ok")
    expect(conversation_item(chat, "Fire and stories")).to_have_count(0)

    chat.reload()
    chat.wait_for_selector(READY)
    assert sidebar_titles(chat) == ["Rotary embeddings", "Four-bit weights"]
    records = {record["id"]: record for record in saved_records(chat)}
    assert set(records) == {"c-week", "c-old"}
    assert records["c-old"]["pinned"] is True and records["c-week"]["titleSource"] == "user"


LEGACY = {"version": 1, "messages": [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris.", "stats": {"prefill": 10.0, "decode": 5.0, "tokens": 3}},
    {"role": "user", "content": "And Italy?"},
    {"role": "assistant", "content": "Rome", "stopped": True},
]}


def test_the_old_single_conversation_migrates_once_and_only_once(page: Page) -> None:
    page.goto("/static/icon.svg")  # same origin: the value is in place before the chat page reads it
    page.evaluate("value => localStorage.setItem('hearth.conversation', value)", json.dumps(LEGACY))
    chat = open_chat(page)
    messages = chat.locator("#transcript .message")
    expect(messages).to_have_count(4)
    assert messages.nth(1).locator(".message-meta").inner_text() == \
        "prefill 10.0 tokens/s · decode 5.0 tokens/s · 3 tokens"
    assert messages.nth(3).locator(".message-meta").inner_text() == "Stopped"
    assert sidebar_titles(chat) == ["What is the capital of France?"]
    assert "earlier conversation" in chat.inner_text("#notices")
    assert chat.evaluate("localStorage.getItem('hearth.conversation')") is None
    assert json.loads(chat.evaluate("localStorage.getItem('hearth.conversation.migrated')")) == LEGACY

    # An old tab writes the key again: the marker in IndexedDB keeps it from coming in twice.
    chat.evaluate("value => localStorage.setItem('hearth.conversation', value)", json.dumps(LEGACY))
    chat.reload()
    chat.wait_for_selector(READY)
    assert len(saved_records(chat)) == 1
    assert sidebar_titles(chat) == ["What is the capital of France?"]


def test_a_corrupt_record_is_set_aside_and_the_others_load(chat: Page, tmp_path: Path) -> None:
    import_archive(chat, tmp_path, archive(three_conversations()[:2]))
    chat.evaluate("""() => new Promise((resolve, reject) => {
      const open = indexedDB.open("hearth");
      open.onsuccess = () => {
        const tx = open.result.transaction("conversations", "readwrite");
        tx.objectStore("conversations").put({ id: "c-bad", format: 1, title: 42, messages: "nope" });
        tx.oncomplete = () => { open.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
    })""")
    chat.reload()
    chat.wait_for_selector(READY)
    assert sidebar_titles(chat) == ["Fire and stories", "Quantization notes"]
    notice = chat.inner_text("#notices")
    assert "1 saved conversation could not be read" in notice and "set aside" in notice
    aside = saved_records(chat, "unreadable")
    assert len(aside) == 1 and aside[0]["key"] == "c-bad" and aside[0]["value"]["title"] == 42
    assert {record["id"] for record in saved_records(chat)} == {"c-today", "c-week"}


def with_versions() -> dict:
    """A conversation whose reply was regenerated once (two versions), with a system prompt and parameters."""
    now = now_ms()
    record = conversation("c-versions", "Versions", now, [("Name a color", "Red.")],
                          systemPrompt="Answer in one word.", params={"temperature": 0.5, "max_tokens": 32})
    extra = {"id": "c-versions-a0b", "parent": "c-versions-q0", "role": "assistant", "content": "Blue, *surely*.",
             "time": now - 100, "model": "Tiny-Llama-q4f32_1", "finish": "abort", "stopped": True,
             "stats": {"prefill": 1.5, "decode": 2.5, "tokens": 4, "estimated": False}}
    record["messages"].append(extra)
    record["leaf"] = extra["id"]
    return record


def test_export_all_then_import_into_a_clean_browser_gives_identical_conversations(
    chat: Page, tmp_path: Path, browser, live_server, outside_requests  # type: ignore[no-untyped-def]
) -> None:
    from tests.browser.conftest import guarded_context

    import_archive(chat, tmp_path, archive([*three_conversations(), with_versions()], presets=[
        {"id": "p-1", "name": "Terse", "model": HOSTED_ID, "systemPrompt": "Be brief.", "params": {"top_p": 0.5}}]))
    before = sorted(saved_records(chat), key=lambda r: r["id"])
    open_settings(chat)
    with chat.expect_download() as download:
        chat.click("#export-all-json")
    exported = tmp_path / "export.json"
    download.value.save_as(exported)
    with chat.expect_download() as markdown_download:
        chat.click("#export-all-md")
    markdown = Path(markdown_download.value.path()).read_text()
    for record in before:
        for msg in record["messages"]:
            assert msg["content"] in markdown, msg["content"]
    assert "Answer in one word." in markdown

    # A clean browser profile (no storage at all) imports the file.
    fresh = guarded_context(browser, live_server.url, outside_requests)
    try:
        page = fresh.new_page()
        open_chat(page)
        report = import_archive(page, tmp_path, json.loads(exported.read_text()), name="again.json")
        assert "Imported 4 conversations and 1 preset" in report
        after = sorted(saved_records(page), key=lambda r: r["id"])
        assert after == before
        assert saved_records(page, "presets") == saved_records(chat, "presets")
        conversation_item(page, "Versions").locator("[data-action=open]").click()
        expect(page.locator(".version-count")).to_have_text("2/2")
    finally:
        fresh.close()


def test_an_import_says_which_conversations_it_skipped_and_why(chat: Page, tmp_path: Path) -> None:
    good = three_conversations()[0]
    orphan = conversation("c-orphan", "Orphan", now_ms(), [("q", "a")])
    orphan["messages"][1]["parent"] = "missing"
    report = import_archive(chat, tmp_path, archive([good, {"title": "No format"}, orphan]))
    assert "Imported 1 conversation and 0 presets." in report
    assert "Skipped conversation 2 “No format”: it has format undefined, not 1." in report
    assert "Skipped conversation 3 “Orphan”: a message answers one that is not there." in report
    assert sidebar_titles(chat) == ["Fire and stories"]

    path = tmp_path / "not-ours.json"
    path.write_text(json.dumps({"messages": []}))
    open_settings(chat)
    chat.set_input_files("#archive-import", str(path))
    expect(chat.locator("#archive-report")).to_have_attribute("data-state", "failed")
    assert "not a Hearth conversations export" in chat.inner_text("#archive-report")


def test_keyboard_new_chat_line_breaks_and_a_failed_load_on_send_gives_the_text_back(chat: Page, tmp_path: Path) -> None:
    import_archive(chat, tmp_path, archive(three_conversations()[:1]))
    conversation_item(chat, "Fire and stories").locator("[data-action=open]").click()
    expect(chat.locator("#transcript .message")).to_have_count(2)
    chat.keyboard.press("Control+Shift+O")
    expect(chat.locator("#transcript .message")).to_have_count(0)
    expect(chat.locator("#conversation-title")).to_have_text("New chat")

    # The hosted test model's library is random bytes: sending loads it (load on send) and fails.
    chat.select_option("#model-select", HOSTED_ID)
    chat.focus("#prompt")
    chat.keyboard.type("first line")
    chat.keyboard.press("Shift+Enter")
    chat.keyboard.type("second line")
    assert chat.input_value("#prompt") == "first line\nsecond line"
    chat.keyboard.press("Enter")
    expect(chat.locator("#engine-error")).to_be_visible(timeout=60_000)
    assert "model library (.wasm) could not be loaded" in chat.inner_text("#engine-error-message")
    expect(chat.locator("#prompt")).to_have_value("first line\nsecond line")
    expect(chat.locator("#transcript .message")).to_have_count(0)
    assert chat.get_attribute("#engine-status", "data-state") == "error"
    assert sidebar_titles(chat) == ["Fire and stories"], "a failed first exchange leaves no empty chat behind"


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(chat: Page) -> None:
    seen = set()
    for _ in range(40):
        chat.keyboard.press("Tab")
        focused = chat.evaluate("""() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          return { id: el.id, outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 };
        }""")
        if focused["id"]:
            seen.add(focused["id"])
            assert focused["outline"], f"#{focused['id']} has no visible focus"
    for control in ("new-chat", "chat-search", "model-select", "load-model", "open-settings", "open-models", "prompt"):
        assert control in seen, (control, seen)
