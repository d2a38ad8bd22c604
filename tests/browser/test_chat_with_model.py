"""A library compiled by `hearth compile` loads through the real chat page, streams a reply, and Stop ends it.

The tiny test model has random weights, so whether it samples a stop token early is chance. The page
is given a copy of it whose config lists no stop tokens or strings: then only Stop (or a full
context, hundreds of tokens away) can end a reply, and the test cannot race the model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RECORD_UPDATES, PageEvents, open_chat
from tests.compiled import compiled_models_dir, model_id
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

QUANTIZATION = "q4f32_1"
# Loading compiles every WGSL kernel on SwiftShader (on the CPU): allow minutes, not seconds.
LOAD_TIMEOUT_MS = 600_000
REPLY_TIMEOUT_MS = 120_000
# Text changes seen in the reply before pressing Stop: proof that it arrives piece by piece.
STREAMED_UPDATES = 4


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system: copying is fine, just slower
        shutil.copy2(source, target)


def never_stopping_copy(models: Path, model: str, target: Path) -> Path:
    """A models directory holding `model` with every stop token and stop string removed from its config."""
    (target / "libs").mkdir(parents=True)
    _link_or_copy(str(models / "libs" / f"{model}.wasm"), str(target / "libs" / f"{model}.wasm"))
    shutil.copytree(models / model, target / model, copy_function=_link_or_copy)
    config_path = target / model / "mlc-chat-config.json"
    config = json.loads(config_path.read_text())
    config["conv_template"].update(stop_token_ids=[], stop_str=[])
    config_path.unlink()  # a hard link: write a new file rather than through to the cache
    config_path.write_text(json.dumps(config))
    return target


@pytest.fixture(scope="module")
def compiled_models() -> Path:
    models, _timings = compiled_models_dir(QUANTIZATION)
    return models


@pytest.fixture
def settings(tmp_path: Path, compiled_models: Path) -> Settings:
    models = never_stopping_copy(compiled_models, model_id(QUANTIZATION), tmp_path / "models")
    return Settings(data_dir=tmp_path / "data", models_dir_override=models)


def load_model(page: Page, model: str) -> None:
    """Pick a model in the page and load it, waiting through WebLLM's phases until it is ready."""
    page.select_option("#model-select", model)
    page.click("#load-model")
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "loading")
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)


def test_compiled_library_streams_through_the_chat_page_and_stop_ends_the_reply(
    page: Page, events: PageEvents
) -> None:
    chat = open_chat(page)
    load_model(chat, model_id(QUANTIZATION))

    chat.evaluate(RECORD_UPDATES)
    chat.fill("#prompt", "Tell me about the hearth.")
    chat.click("#send")
    reply = chat.locator("#transcript .message[data-role=assistant]").last
    expect(reply).to_have_attribute("aria-busy", "true")
    expect(chat.locator("#stop")).to_be_visible()
    # A function, not an expression: an expression would be eval'd, which the page's CSP forbids.
    chat.wait_for_function(
        "(wanted) => new Set(window.replyUpdates.filter((n) => n > 0)).size >= wanted",
        arg=STREAMED_UPDATES, timeout=REPLY_TIMEOUT_MS,
    )
    chat.click("#stop")

    expect(reply).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
    meta = reply.locator(".message-meta")
    expect(meta).to_contain_text("Stopped")
    expect(meta).to_contain_text("decode")
    generated = re.search(r"· (\d+) tokens$", meta.inner_text())
    assert generated, meta.inner_text()
    # Stopped early: far short of the 512-token context that would otherwise end the reply.
    assert 0 < int(generated.group(1)) < 400
    assert reply.locator(".message-body").inner_text().strip()
    assert not chat.locator("#stop").is_visible()
    assert events.page_errors == [] and events.console_errors == []

    # The page is ready for the next question after a stop.
    expect(chat.locator("#send")).to_be_enabled()
