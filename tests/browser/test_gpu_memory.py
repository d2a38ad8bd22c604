"""The GPU memory estimate before a download, in the page's own module: published models' shapes (their
mlc-chat-config.json fields) at their context windows, against the buffer limits WebLLM's device gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import own_chat_page
from tests.conftest import LiveServer
from webapp.settings import Settings

pytestmark = pytest.mark.browser

GIB = 1 << 30
# Llama-3.1-8B-Instruct and Qwen2.5-7B-Instruct-1M as MLC publishes them (q4f16_1: a 16-bit KV cache).
LLAMA_31_8B = {"quantization": "q4f16_1", "context_window_size": 131072, "model_config": {
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}}
QWEN_25_7B_1M = {"quantization": "q4f16_1", "context_window_size": 1010000, "model_config": {
    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "hidden_size": 3584}}
# Gemma 7B unquantized: its 256000 × 3072 embedding table alone is 1.5 GiB of 16-bit floats.
GEMMA_7B_Q0 = {"quantization": "q0f16", "context_window_size": 8192, "model_config": {
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256}}
GEMMA_TENSORS = {"records": [{"dataPath": "params_shard_0.bin", "nbytes": 4_000_000_000, "records": [
    {"name": "model.embed_tokens.weight", "nbytes": 256000 * 3072 * 2}, {"name": "lm_head.q_weight", "nbytes": 1000}]}]}
# 4 GB of weights in shards of tensors of at most 64 MB.
TENSORS = {"records": [{"dataPath": f"params_shard_{i}.bin", "nbytes": 40_000_000, "records": [
    {"name": f"layer.{i}.weight", "nbytes": 64_000_000 if i == 7 else 40_000_000}]} for i in range(100)]}
SWIFTSHADER = {"maxBufferSize": 4 * GIB, "maxStorageBufferBindingSize": GIB}

ESTIMATE = """async ({config, tensors, window, limits}) => {
  const gpu = await import("/static/js/gpu-memory.js");
  const shape = gpu.memoryShape(config, tensors);
  const estimate = gpu.estimateGpuMemory(shape, window);
  return { estimate, problem: gpu.gpuMemoryProblem("The model", shape, estimate, gpu.engineBufferLimit(limits)) };
}"""


@pytest.fixture(scope="module")
def chat(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One chat page for the module: the estimate needs the page's modules, not a model."""
    root = tmp_path_factory.mktemp("gpu-memory")
    with LiveServer(Settings(data_dir=root / "data", models_dir_override=root / "models")) as live, \
            own_chat_page(browser, live.url) as page:
        yield page


def estimate(page: Page, config: dict, window: int | None = None, tensors: dict = TENSORS,
             limits: dict = SWIFTSHADER) -> dict:
    return page.evaluate(ESTIMATE, {"config": config, "tensors": tensors, "window": window, "limits": limits})


def test_a_long_window_that_fits_each_buffer_is_not_refused_though_its_total_is_large(chat: Page) -> None:
    result = estimate(chat, LLAMA_31_8B)
    # 8193 pages of 16 tokens × keys and values × 8 KV heads × 128 values × 2 bytes, per layer.
    assert result["estimate"]["kvPerLayer"] == 8193 * 16 * 2 * 8 * 128 * 2 < GIB
    assert result["estimate"]["kv"] == 32 * result["estimate"]["kvPerLayer"]
    assert result["estimate"]["weights"] == 4_000_000_000
    assert result["estimate"]["total"] == 4_000_000_000 + result["estimate"]["kv"]
    assert result["problem"] is None, "WebGPU gives no total to compare with: only buffers are checked"


def test_a_million_token_window_is_refused_with_the_largest_window_that_fits(chat: Page) -> None:
    problem = estimate(chat, QWEN_25_7B_1M)["problem"]
    # 2^19 tokens would need 32769 pages × 32 kB: one page over 1 GiB. 2^18 fits.
    assert problem["window"] == 1 << 18
    assert "with a context window of 1,010,000 tokens" in problem["message"]
    assert "Pick a context window of 262,144 tokens or fewer" in problem["message"]
    assert "maxStorageBufferBindingSize" in problem["message"]
    compared = f"{63126 * 16 * 2048} bytes, with the engine's maxStorageBufferBindingSize of {GIB} bytes"
    assert compared in problem["detail"]
    assert estimate(chat, QWEN_25_7B_1M, window=1 << 18)["problem"] is None, "the chosen window is what is checked"


def test_a_weight_too_big_for_one_buffer_asks_for_a_smaller_model(chat: Page) -> None:
    problem = estimate(chat, GEMMA_7B_Q0, tensors=GEMMA_TENSORS)["problem"]
    assert problem["window"] is None
    assert "its largest weight (model.embed_tokens.weight) takes 1.6 GB in one GPU buffer" in problem["message"]
    assert "Pick a smaller model." in problem["message"]


def test_the_engine_gets_the_limits_webllm_asks_for_not_the_adapters(chat: Page) -> None:
    adapters = [
        {"maxBufferSize": 4 * GIB, "maxStorageBufferBindingSize": 4 * GIB},
        {"maxBufferSize": 2 * GIB, "maxStorageBufferBindingSize": GIB // 2},
        {"maxBufferSize": GIB // 2, "maxStorageBufferBindingSize": GIB},
    ]
    got = chat.evaluate("""async (adapters) => {
      const { engineBufferLimit } = await import("/static/js/gpu-memory.js");
      return adapters.map((limits) => [engineBufferLimit(limits).bytes, engineBufferLimit(limits).limit]);
    }""", adapters)
    # WebLLM asks for 1 GiB of each, settling for 256 MiB buffers and 128 MiB bindings on smaller adapters.
    assert got == [[GIB, "maxStorageBufferBindingSize"], [GIB // 8, "maxStorageBufferBindingSize"],
                   [GIB // 4, "maxBufferSize"]]
