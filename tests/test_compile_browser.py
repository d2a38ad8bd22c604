"""`hearth compile` output runs in the unmodified WebLLM engine, in Chromium on WebGPU (SwiftShader),
served by the real Hearth app, and greedy decoding gives the numpy reference's token ids.

Token ids come from a WebLLM logit processor: processSampledToken receives each id the GPU
sampler picked, and processLogits the logits it sampled from (returned unchanged). Prompts go
through completions.create, which prepends nothing (no BOS, no chat template, no system prompt)
and tokenizes with the same tokenizer.json, so Python's encoding is the prompt WebLLM prefills;
usage.prompt_tokens confirms the length. One chat.completions request checks the chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser.chromium import PROBE, open_page
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from tests.webllm import chat_prompt_ids, check_greedy, library_url
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

PROMPTS = [
    "The hearth is",
    "WebGPU lets a web page use",
    "Grouped-query attention shares every key and value head among several query heads, and",
]
STEPS = 16
# The GPU's logits differ from the float64 reference by float32 rounding (about 1e-5 of the
# largest logit; 3e-4 before precise_math replaced WGSL's approximate sin/cos).
LOGIT_TOLERANCE = 1e-4  # relative to the largest |logit| of the step
CHAT = [{"role": "user", "content": "What is the hearth?"}]


@pytest.fixture(scope="module", params=[(q, schedule) for q in ("q0f32", "q4f32_1") for schedule in ("fallback", "gpu")],
                ids=lambda param: "-".join(param))
def webllm_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> tuple[Path, list[dict]]:
    """Serve the compiled model with the real app; WebLLM runs one of its two libraries (schedule
    sets) and answers every prompt, then the chat."""
    quantization, schedule = request.param
    models, _ = compiled_models_dir(quantization)
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_dir_override=models)
    requests = [{"prompt": prompt} for prompt in PROMPTS] + [{"messages": CHAT}]
    with LiveServer(settings) as server, open_page(browser) as page:
        # Any page of the app: the probe then runs under its real headers (CSP, COEP).
        page.goto(f"{server.url}/library")
        results = page.evaluate(
            PROBE.read_text(),
            {"origin": server.url, "modelId": model_id(quantization), "requests": requests, "maxTokens": STEPS,
             "libUrl": library_url(server.url, model_id(quantization), schedule)},
        )
        errors = [line for line in page.hearth_console if line.startswith(("error: Error", "pageerror"))]
    assert not errors
    return models / model_id(quantization), results


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_webllm_greedy_tokens_equal_the_numpy_reference(webllm_run: tuple[Path, list[dict]], index: int) -> None:
    from tokenizers import Tokenizer

    model_dir, results = webllm_run
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    check_greedy(model_dir, tokenizer.encode(PROMPTS[index]).ids, results[index], STEPS, LOGIT_TOLERANCE)


def test_webllm_chat_uses_the_compiled_chat_template(webllm_run: tuple[Path, list[dict]]) -> None:
    """chat.completions: WebLLM builds the prompt from mlc-chat-config.json's inline template."""
    from tokenizers import Tokenizer

    model_dir, results = webllm_run
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    template = json.loads((model_dir / "mlc-chat-config.json").read_text())["conv_template"]
    assert template["name"] == "chatml"  # the tokenizer has <|im_start|> and <|im_end|>
    prompt_ids = chat_prompt_ids(model_dir, CHAT[0]["content"])
    assert tokenizer.decode(prompt_ids, skip_special_tokens=False).startswith("<|im_start|>system\n")
    check_greedy(model_dir, prompt_ids, results[-1], STEPS, LOGIT_TOLERANCE)
