"""The Anthropic, Gemini and Azure types end to end, and a gateway's key, through LiteLLM's real proxy
in front of llama.cpp's real server (both on loopback): every route ends at the same SmolLM2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_chat
from tests.support.litellm_proxy import installed, litellm_proxy
from tests.support.provider_servers import MODEL_ALIAS, llamacpp_server

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not installed(), reason="scripts/setup installs the LiteLLM proxy into .venv-litellm")]
MASTER_KEY = "sk-master-8d1e"


@pytest.fixture(scope="module")
def litellm(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llamacpp_server(smollm2) as llama, litellm_proxy(llama, MODEL_ALIAS, MASTER_KEY,
                                                           tmp_path_factory.mktemp("litellm")) as url:
        yield url


@pytest.fixture
def app(page: Page) -> Page:
    page.add_init_script("localStorage.setItem('hearth.autoTitles', 'off')")
    return open_chat(page)


def chat_with(page: Page, definition: dict, key: str) -> None:
    page.evaluate("([d, k]) => hearth.providers.register(d, { keys: [k] })",
                  [{"id": "gw", "name": "Gateway", "models": [{"id": MODEL_ALIAS}], **definition}, key])
    page.select_option("#model-select", f"@gw/{MODEL_ALIAS}")
    page.evaluate("() => { hearth.chat.current.params.max_tokens = 12; }")
    page.fill("#prompt", "What is the capital of France?")
    page.press("#prompt", "Enter")


def reply_text(page: Page) -> str:
    page.wait_for_function("""() => {
        const last = hearth.chat.current.messages.at(-1);
        return hearth.chat.generating === null && last?.role === "assistant" && last.finish;
    }""", timeout=90_000)
    return page.locator('#transcript article.message[data-role="assistant"] .answer').last.inner_text()


def test_a_wrong_gateway_key_is_told_and_the_right_one_chats(app: Page, litellm: str) -> None:
    chat_with(app, {"type": "openai", "baseUrl": f"{litellm}/v1"}, "not-the-key")
    expect(app.locator("#chat-error")).to_be_visible(timeout=60_000)
    message = app.locator("#chat-error-message").inner_text()
    # LiteLLM without a database says 400 "No connected db." to any key but its master key.
    assert "Gateway refused the key (400)" in message and "Check the API key" in message, message
    app.evaluate("() => hearth.chat.newChat()")
    chat_with(app, {"type": "openai", "baseUrl": f"{litellm}/v1"}, MASTER_KEY)
    assert reply_text(app).strip()


@pytest.mark.parametrize("definition", [
    {"type": "anthropic"},
    {"type": "gemini"},
    {"type": "azure", "azureMode": "classic", "apiVersion": "2024-10-21"},
], ids=["anthropic", "gemini", "azure"])
def test_each_type_chats_through_the_gateway(app: Page, litellm: str, definition: dict) -> None:
    chat_with(app, {**definition, "baseUrl": litellm}, MASTER_KEY)
    assert reply_text(app).strip()


def test_the_doctor_names_a_wrong_key_and_an_unknown_model(app: Page, litellm: str) -> None:
    def verify(model: str, key: str) -> None:
        app.evaluate("([d, k]) => hearth.providers.register(d, { keys: [k] })",
                     [{"id": "gw", "name": "Gateway", "baseUrl": f"{litellm}/v1", "models": [{"id": model}]}, key])
        app.click("#open-providers")
        app.click('#provider-list li[data-provider-id="gw"] button:has-text("Edit")')
        app.click("#pv-verify")

    verify(MODEL_ALIAS, "not-the-key")
    auth = app.locator('#pv-doctor li[data-step="auth"]')
    expect(auth).to_have_attribute("data-ok", "false", timeout=60_000)
    expect(auth).to_contain_text("refused the key")
    app.click("#providers-dialog [data-close-dialog]")
    verify("no-such-model", MASTER_KEY)
    model = app.locator('#pv-doctor li[data-step="model"]')
    expect(model).to_have_attribute("data-ok", "false", timeout=60_000)
    expect(model).to_contain_text("has no such model")
