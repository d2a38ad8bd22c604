"""The browser tests' own guard: a request that would leave the machine is stopped and counted."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import OUTSIDE

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("url", "outside"), [
    ("https://huggingface.co/mlc-ai/x/resolve/main/mlc-chat-config.json", True),
    ("https://raw.githubusercontent.com/mlc-ai/binary-mlc-llm-libs/main/x.wasm", True),
    ("http://127.0.0.1.example.org/x", True),
    ("http://10.0.0.1/x", True),
    ("http://127.0.0.1:8000/", False),
    ("http://127.0.0.1/static/js/main.js", False),
])
def test_the_guard_knows_what_leaves_the_machine(url: str, outside: bool) -> None:
    assert bool(OUTSIDE.match(url)) is outside


def test_a_request_to_the_internet_is_blocked_and_counted(context: BrowserContext, outside_requests: list[str]) -> None:
    page = context.new_page()
    page.goto("/")
    # huggingface.co is allowed by the page's CSP, so only the guard stands in the way.
    outcome = page.evaluate("fetch('https://huggingface.co/robots.txt').then(() => 'reached', () => 'blocked')")
    assert outcome == "blocked"
    assert outside_requests == ["https://huggingface.co/robots.txt"]
    outside_requests.clear()  # counted and seen: the fixture would fail the test for it otherwise
