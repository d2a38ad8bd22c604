"""The offline app shell: after one visit the chat page opens with the network off, models excepted."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import HOSTED_ID, READY

pytestmark = pytest.mark.browser

SHELL_CACHES = "caches.keys().then((names) => names.filter((name) => name.startsWith('hearth-shell-')))"


def visit_once(page: Page) -> str:
    """Open the chat page and wait until the service worker has kept the shell; return the shell version."""
    page.goto("/")
    page.wait_for_selector(READY)
    page.wait_for_function("navigator.serviceWorker.ready.then(() => true)")
    return page.evaluate("fetch('/app-shell.json').then((r) => r.json()).then((shell) => shell.version)")


def test_the_page_opens_offline_after_one_visit(page: Page) -> None:
    version = visit_once(page)
    assert page.evaluate(SHELL_CACHES) == [f"hearth-shell-{version}"]
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector(READY)
    assert page.title() == "Chat · Hearth"
    assert "swiftshader" in page.inner_text("#gpu-summary").lower()
    assert page.locator('#model-select option[value="SmolLM2-360M-Instruct-q4f32_1-MLC"]').count() == 1
    # The hosted list is not part of the shell: the page says so and carries on.
    assert "Could not list the models on this server" in page.inner_text("#notices")
    page.goto("/library")
    assert page.locator("h1").inner_text() == "Hosted models"


def test_hosted_models_stay_listed_offline(page: Page) -> None:
    """Offline, the server's models are listed as it last listed them: cached ones can still load."""
    hosted = f'#model-select option[value="{HOSTED_ID}"]'
    visit_once(page)
    assert page.locator(hosted).count() == 1
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector(READY)
    assert page.locator(hosted).count() == 1
    assert "listed as it last listed them" in page.inner_text("#notices")


def test_an_unreadable_remembered_listing_is_kept_aside(page: Page) -> None:
    visit_once(page)
    page.evaluate("localStorage.setItem('hearthHostedModels', '[{not json')")
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector(READY)
    assert page.locator(f'#model-select option[value="{HOSTED_ID}"]').count() == 0
    assert "Prebuilt and custom models are still listed" in page.inner_text("#notices")
    assert page.evaluate("localStorage.getItem('hearthHostedModels.unreadable')") == "[{not json"


def test_cached_pages_keep_their_isolation_headers(page: Page) -> None:
    visit_once(page)
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector(READY)
    assert page.evaluate("crossOriginIsolated") is True
    headers = page.evaluate("""async () => {
      const name = (await caches.keys()).find((n) => n.startsWith('hearth-shell-'));
      const response = await (await caches.open(name)).match('/static/js/main.js');
      return Object.fromEntries(response.headers);
    }""")
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert headers["cross-origin-resource-policy"] == "same-origin"


def test_the_shell_leaves_models_and_webllm_caches_alone(page: Page) -> None:
    visit_once(page)
    page.evaluate("""async () => {
      await (await caches.open('webllm/model')).put('/models/x/resolve/main/params_shard_0.bin', new Response('w'));
      await caches.open('hearth-shell-stale');
    }""")
    page.reload()  # a visit online refreshes the shell and drops stale shell caches
    page.wait_for_selector(READY)
    page.wait_for_function(f"{SHELL_CACHES}.then((names) => names.length === 1 && names[0] !== 'hearth-shell-stale')")
    assert "webllm/model" in page.evaluate("caches.keys()")
    shell = page.evaluate("""async () => {
      const name = (await caches.keys()).find((n) => n.startsWith('hearth-shell-'));
      return (await (await caches.open(name)).keys()).map((request) => new URL(request.url).pathname);
    }""")
    assert "/" in shell and "/static/js/main.js" in shell and "/static/vendor/web-llm/index.js" in shell
    assert not [path for path in shell if path.startswith(("/models/", "/libs/"))]

    page.context.set_offline(True)
    outcome = page.evaluate("fetch('/models/index.json').then(() => 'answered', () => 'failed')")
    assert outcome == "failed", "model listings and files are never served from the shell"
