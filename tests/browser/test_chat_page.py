"""The chat page in a real Chromium: it loads cleanly, checks the GPU, lists and marks models, runs the engine."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import HOSTED_ID, READY, PageEvents

pytestmark = pytest.mark.browser

CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.__cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`));
"""


def test_chat_page_loads_without_console_errors_or_csp_violations(page: Page, events: PageEvents) -> None:
    requested: list[str] = []
    page.context.on("request", lambda request: requested.append(request.url))
    page.add_init_script(CSP_WATCH)
    page.goto("/")
    page.wait_for_selector(READY)
    page.wait_for_function("navigator.serviceWorker.ready.then(() => true)")
    assert page.evaluate("window.__cspViolations") == []
    assert events.console_errors == []
    assert events.page_errors == []
    assert page.title() == "Chat · Hearth"
    downloads = [url for url in requested if "/resolve/" in url or "/libs/" in url]
    assert downloads == [], "nothing of a model is fetched before the person asks to load one"


def test_capability_check_names_swiftshader_and_the_missing_shader_f16(chat: Page) -> None:
    summary = chat.inner_text("#gpu-summary")
    assert "swiftshader" in summary.lower()
    assert "No shader-f16" in summary
    assert chat.get_attribute("#gpu-status", "data-state") == "ok"
    features = chat.text_content("#gpu-features")
    assert "Largest storage buffer: 1024 MiB" in features
    assert "shader-f16" not in features
    gpu = chat.evaluate("hearth.gpu")
    assert gpu["adapter"]["architecture"] == "swiftshader"


def test_f16_prebuilt_model_is_marked_with_its_f32_alternative(chat: Page) -> None:
    f16_id, f32_id = "SmolLM2-360M-Instruct-q4f16_1-MLC", "SmolLM2-360M-Instruct-q4f32_1-MLC"
    option = chat.locator(f'#model-select option[value="{f16_id}"]')
    assert "can't run on this GPU" in option.inner_text()
    assert option.get_attribute("data-alternative") == f32_id

    # WebLLM's records give the GPU memory a model needs, not its download size: the selector does not guess.
    expect(chat.locator(f'#model-select option[value="{f32_id}"]')).to_have_text(f"{f32_id} · size unknown")
    chat.select_option("#model-select", f16_id)
    assert "Needs shader-f16" in chat.inner_text("#model-problems")
    assert chat.is_disabled("#load-model")
    chat.click("#use-alternative")
    assert chat.input_value("#model-select") == f32_id
    assert chat.locator("#model-problems").count() == 0
    assert chat.is_enabled("#load-model")


def test_f16_record_without_required_features_still_needs_shader_f16(chat: Page) -> None:
    # WebLLM's Qwen2.5-0.5B q4f16_1 record omits required_features; its quantization gives it away.
    qwen = "Qwen2.5-0.5B-Instruct-q4f16_1-MLC"
    original = chat.evaluate(f"""async () => (await import("/static/vendor/web-llm/index.js"))
      .prebuiltAppConfig.model_list.find((r) => r.model_id === "{qwen}")""")
    assert "required_features" not in original
    record = chat.evaluate(f"hearth.catalogue.appConfig.model_list.find((r) => r.model_id === '{qwen}')")
    assert record["required_features"] == ["shader-f16"], "the page adds what the record omits"
    option = chat.locator('#model-select option[value="Qwen2.5-0.5B-Instruct-q4f16_1-MLC"]')
    assert option.get_attribute("class") == "unrunnable"
    assert option.get_attribute("data-alternative") == "Qwen2.5-0.5B-Instruct-q4f32_1-MLC"


def test_hosted_model_is_listed_first_with_its_download_size_and_absolute_urls(chat: Page, live_server) -> None:
    first = chat.locator("#model-select optgroup").first
    assert first.get_attribute("label") == "On this server"
    assert first.locator("option").first.inner_text() == "Tiny Llama · 68.8 kB"
    record = chat.evaluate(f"hearth.catalogue.byId.get('{HOSTED_ID}').record")
    assert record["model"] == f"{live_server.url}/models/{HOSTED_ID}/resolve/main/"
    assert record["model_lib"] == f"{live_server.url}/libs/{HOSTED_ID}.wasm"


def test_loading_a_model_whose_library_is_not_wasm_fails_in_plain_words(chat: Page) -> None:
    """The worker really fetches the hosted model and compiles its library, which is random bytes."""
    requested: list[str] = []
    chat.context.on("request", lambda request: requested.append(request.url))
    workers: list[str] = []
    chat.on("worker", lambda worker: workers.append(worker.url))
    chat.select_option("#model-select", HOSTED_ID)
    chat.click("#load-model")
    chat.wait_for_selector("#engine-status[data-state=error]", timeout=60_000)
    assert "model library (.wasm) could not be loaded" in chat.inner_text("#engine-error-message")
    assert chat.text_content("#engine-error-detail").startswith("CompileError")
    assert any(url.endswith(f"/models/{HOSTED_ID}/resolve/main/mlc-chat-config.json") for url in requested)
    assert any(url.endswith(f"/libs/{HOSTED_ID}.wasm") for url in requested)
    assert [url.removeprefix(chat.url.rstrip("/")) for url in workers] == ["/static/js/worker.js"]
    assert chat.is_enabled("#load-model"), "a failed load must leave the picker usable"
    assert chat.is_enabled("#send"), "sending loads the model again (load on send)"


def test_library_page_shares_the_shell_without_console_errors(page: Page, events: PageEvents) -> None:
    page.goto("/library")
    page.wait_for_function("navigator.serviceWorker.ready.then(() => true)")
    page.click("text=Tiny Llama")
    page.wait_for_selector("#model-detail h2")
    assert page.inner_text("#model-detail h2") == "Tiny Llama"
    assert events.console_errors == []
    assert events.page_errors == []
