"""Room on the GPU before download: the tiny model, its config claiming an 8M-token context window,
needs a KV cache buffer per layer larger than WebGPU lets the engine create on SwiftShader; loading it
is refused before its weights or library are asked for, saying what was compared and what window
fits, and leaves nothing stored. With a window the person chooses in the chat settings, real WebLLM
loads it, on a GPU device whose buffer limit is the one the page compared against."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import own_chat_page
from tests.browser.test_chat_engine import new_chat
from tests.browser.test_chat_with_model import _link_or_copy
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(900)]

MODEL = model_id("q4f32_1")
LONG_WINDOW = 1 << 23  # tokens: more than the tiny model's KV cache fits in a 1 GiB buffer per layer
CHOSEN_WINDOW = 512  # what the model was compiled for
LARGEST_SETTING = 1 << 20  # the chat settings' largest context window (static/js/params.js)
PAGE_TOKENS = 16  # WebLLM's KV cache page
LOAD_TIMEOUT_MS = 600_000
MODEL_FILES = """async (model) => {
  const urls = [];
  for (const name of ["webllm/config", "webllm/wasm", "webllm/model"]) {
    if (await caches.has(name)) urls.push(...(await (await caches.open(name)).keys()).map((r) => r.url));
  }
  return urls.filter((url) => url.includes(model));
}"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled tiny model, its mlc-chat-config.json claiming LONG_WINDOW (a new file, not the cache's)."""
    compiled, _ = compiled_models_dir("q4f32_1")
    target = tmp_path_factory.mktemp("gpu-room") / "models"
    shutil.copytree(compiled, target, copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("hearth-manifest.json"))
    config_path = target / MODEL / "mlc-chat-config.json"
    config = json.loads(config_path.read_text())
    config_path.unlink()  # a hard link into the compile cache: write a new file
    config_path.write_text(json.dumps({**config, "context_window_size": LONG_WINDOW}))
    return target


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("gpu-room-data"), models_dir_override=models)
    with LiveServer(settings) as live:
        yield live


def kv_layer_bytes(config: dict, tokens: int) -> int:
    """One layer's KV cache in TVM's paged layout: pages of 16 tokens plus one, keys and values, f32."""
    model = config["model_config"]
    pages = math.ceil(tokens / PAGE_TOKENS) + 1
    return pages * PAGE_TOKENS * 2 * model["num_key_value_heads"] * model["head_dim"] * 4


def test_a_model_too_big_for_the_gpus_buffers_is_refused_before_download_and_loads_with_a_smaller_window(
        browser: Browser, server: LiveServer, models: Path) -> None:
    config = json.loads((models / MODEL / "mlc-chat-config.json").read_text())
    with own_chat_page(browser, server.url) as page:
        asked = len(server.requests)
        page.select_option("#model-select", MODEL)
        page.click("#load-model")
        message = page.locator("#engine-error-message")
        expect(message).to_contain_text(f"cannot run on this GPU with a context window of {LONG_WINDOW:,} tokens")
        assert "Nothing was downloaded" in message.inner_text()
        assert "Chat settings → Context window" in message.inner_text()
        assert "WebGPU does not tell a page how much memory the GPU has" in message.inner_text()
        detail = page.text_content("#engine-error-detail")
        compared = re.search(r"the largest buffer the model needs, (\d+) bytes, with the engine's "
                             r"(maxStorageBufferBindingSize|maxBufferSize) of (\d+) bytes", detail)
        assert compared, detail
        assert int(compared.group(1)) == kv_layer_bytes(config, LONG_WINDOW)
        limit = int(compared.group(3))
        fits = next(window for window in (LARGEST_SETTING >> shift for shift in range(13))
                    if kv_layer_bytes(config, window) <= limit)
        assert f"Pick a context window of {fits:,} tokens or fewer" in message.inner_text()
        expect(page.locator("#reload-smaller")).to_have_text(f"Load with a {fits} token context window")
        expect(page.locator("#engine-status")).to_have_attribute("data-state", "idle")
        # Only the config and the tensor list were read to tell; neither is left in the browser.
        fetched = {path.rsplit("/", 1)[-1] for _, path in server.requests[asked:] if MODEL in path}
        assert fetched == {"mlc-chat-config.json", "tensor-cache.json"}, fetched
        assert page.evaluate(MODEL_FILES, MODEL) == []

        new_chat(page, context_window_size=CHOSEN_WINDOW)
        page.click("#load-model")
        expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready", timeout=LOAD_TIMEOUT_MS)
        expect(page.locator("#engine-error")).to_be_hidden()
        assert page.evaluate("hearth.session.state.contextWindow") == CHOSEN_WINDOW
        device = page.evaluate("hearth.session.deviceLimits()")
        assert limit == min(device["maxBufferSize"], device["maxStorageBufferBindingSize"]), (limit, device)
        assert device[compared.group(2)] == limit
