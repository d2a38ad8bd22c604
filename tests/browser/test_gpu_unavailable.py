"""Without a usable GPU the page says why in plain words, and no model can be loaded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright

from tests.browser.conftest import CHROMIUM, INSECURE_HOST, QUIET_ARGS, READY, guarded_context

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser_without_webgpu_flags(playwright: Playwright) -> Iterator[Browser]:
    """Chromium as it starts on this headless machine by default: WebGPU finds no adapter."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=QUIET_ARGS)
    yield browser
    browser.close()


def assert_nothing_can_load(page: Page) -> None:
    assert page.get_attribute("#gpu-status", "data-state") == "unavailable"
    page.select_option("#model-select", "SmolLM2-360M-Instruct-q4f32_1-MLC")
    assert page.is_disabled("#load-model")
    assert page.locator("#model-problems li").count() == 1


def test_no_adapter_is_explained(browser_without_webgpu_flags: Browser, live_server, outside_requests) -> None:
    context = guarded_context(browser_without_webgpu_flags, live_server.url, outside_requests)
    page = context.new_page()
    page.goto("/")
    page.wait_for_selector(READY)
    assert page.inner_text("#gpu-summary").startswith("WebGPU is present but found no usable GPU.")
    assert_nothing_can_load(page)
    assert "Turn on hardware acceleration" in page.inner_text("#model-problems")
    context.close()
    assert outside_requests == []


def test_insecure_context_is_explained(browser: Browser, live_server, outside_requests) -> None:
    context = guarded_context(browser, f"http://{INSECURE_HOST}:{live_server.port}", outside_requests)
    page = context.new_page()
    page.goto("/")
    page.wait_for_selector(READY)
    assert page.evaluate("isSecureContext") is False
    summary = page.inner_text("#gpu-summary")
    assert summary.startswith("This page is not a secure context")
    assert "http://localhost, http://127.0.0.1 or over https" in summary
    assert_nothing_can_load(page)
    context.close()
    assert outside_requests == []
