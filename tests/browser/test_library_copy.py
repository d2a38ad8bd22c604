"""The Hosted models page in a browser: a model's pinned URLs and integrity block copy with one press."""

from __future__ import annotations

import json

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageEvents
from tests.browser.test_look import AXE, RUN_AXE
from tests.conftest import LiveServer


def open_model(page: Page, live_server: LiveServer) -> dict:
    """Open /library, then a model's details (swapped in by htmx); return that model's index.json entry."""
    entry = httpx.get(f"{live_server.url}/models/index.json").json()["models"][0]
    page.goto("/library")
    page.click(f'#hosted-models a[href="/library/{entry["id"]}"]')
    expect(page.locator("#model-detail #pinned-model-url")).to_have_text(entry["pinned_model_url"])
    return entry


def test_copy_puts_a_pinned_url_and_the_integrity_block_on_the_clipboard(page: Page, live_server: LiveServer,
                                                                          events: PageEvents) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.add_init_script(path=str(AXE))
    entry = open_model(page, live_server)
    assert page.evaluate(RUN_AXE) == []  # the buttons have names; the status lines are announced
    page.get_by_role("button", name="Copy the pinned library URL").click()
    expect(page.locator("#pinned-model-lib-url + .copy [role=status]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == entry["pinned_model_lib_url"]
    page.get_by_role("button", name="Copy the pinned model URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == entry["pinned_model_url"]
    page.get_by_role("button", name="Copy the integrity block").click()
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == entry["integrity"]
    assert events.page_errors == []  # (axe's own inline styles meet the page's CSP: console errors, not ours)


def test_without_the_clipboard_api_copy_selects_the_text(page: Page, live_server: LiveServer,
                                                         events: PageEvents) -> None:
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined })")
    entry = open_model(page, live_server)
    page.get_by_role("button", name="Copy the pinned model URL").click()
    expect(page.locator("#pinned-model-url + .copy [role=status]")).to_contain_text("Selected")
    assert page.evaluate("window.getSelection().toString()") == entry["pinned_model_url"]
    assert events.page_errors == [] and events.console_errors == []
