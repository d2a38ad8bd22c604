"""Helpers for driving the chat app in tests: archives to import, IndexedDB reads, the sidebar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def message(mid: str, parent: str | None, role: str, content: str, time: int, **extra: Any) -> dict[str, Any]:
    record = {"id": mid, "parent": parent, "role": role, "content": content, "time": time}
    if role == "assistant":
        record.update({"model": extra.pop("model", "Tiny-Llama-q4f32_1"), "finish": extra.pop("finish", "stop"),
                       "stopped": extra.pop("stopped", False), "stats": extra.pop("stats", None)})
    record.update(extra)
    return record


def conversation(cid: str, title: str, updated: int, turns: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    """A saved conversation of (question, answer) turns, one branch, in the archive's record format."""
    messages, parent = [], None
    for index, (question, answer) in enumerate(turns):
        q = message(f"{cid}-q{index}", parent, "user", question, updated - 1000 * (len(turns) - index))
        a = message(f"{cid}-a{index}", q["id"], "assistant", answer, q["time"] + 500)
        messages += [q, a]
        parent = a["id"]
    record = {"format": 1, "id": cid, "title": title, "titleSource": "user", "pinned": False,
              "created": updated - DAY_MS, "updated": updated, "model": "Tiny-Llama-q4f32_1",
              "systemPrompt": "", "params": {}, "messages": messages, "leaf": parent}
    record.update(extra)
    return record


def archive(conversations: list[dict[str, Any]], presets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"format": "hearth-archive", "version": 1, "exported": "2026-12-01T00:00:00Z",
            "conversations": conversations, "presets": presets or []}


def open_settings(page: Page) -> None:
    page.click("#open-settings")
    page.wait_for_selector("#settings-dialog[open]")


def import_archive(page: Page, tmp_path: Path, doc: dict[str, Any], name: str = "chats.json") -> str:
    """Import an archive through the settings dialog; returns the import report's text."""
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    open_settings(page)
    page.set_input_files("#archive-import", str(path))
    page.wait_for_selector("#archive-report[data-state]")
    report = page.inner_text("#archive-report")
    page.click("#settings-dialog [data-close-dialog]")
    return report


def saved_records(page: Page, store: str = "conversations") -> list[Any]:
    """Every value in one of the page's IndexedDB stores, read straight from the database."""
    return page.evaluate("""(store) => new Promise((resolve, reject) => {
      const open = indexedDB.open("hearth");
      open.onsuccess = () => {
        const request = open.result.transaction(store).objectStore(store).getAll();
        request.onsuccess = () => { resolve(request.result); open.result.close(); };
        request.onerror = () => reject(request.error);
      };
      open.onerror = () => reject(open.error);
    })""", store)


def sidebar_titles(page: Page) -> list[str]:
    return page.locator("#conversation-list .conversation-title").all_inner_texts()


def conversation_item(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("#conversation-list .conversation-item", has=page.locator(".conversation-title", has_text=title))


def item_action(page: Page, title: str, action: str) -> None:
    """Press a conversation's Rename / Pin / Delete, which show under the pointer (or the keyboard's focus)."""
    item = conversation_item(page, title)
    item.hover()
    item.locator(f"[data-action={action}]").click()
