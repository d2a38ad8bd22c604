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
CHUNK = 4  # prefill chunk of the chunked build (tokens)
QUANTIZATION_CHUNKED = "q4f32_1"


def run_webllm(browser: Browser, data: Path, models: Path, quantization: str, schedule: str,
               requests: list[dict]) -> list[dict]:
    """Serve a models directory with the real app; WebLLM loads the tiny model with one of its two
    libraries (schedule sets) and answers the requests, recording what it sampled."""
    settings = Settings(data_dir=data, models_dir_override=models)
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
    return results


@pytest.fixture(scope="module", params=[(q, schedule) for q in ("q0f32", "q4f32_1") for schedule in ("fallback", "gpu")],
                ids=lambda param: "-".join(param))
def webllm_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> tuple[Path, list[dict]]:
    """Every prompt, then the chat, with one quantization and one library."""
    quantization, schedule = request.param
    models, _ = compiled_models_dir(quantization)
    requests = [{"prompt": prompt} for prompt in PROMPTS] + [{"messages": CHAT}]
    return models / model_id(quantization), run_webllm(
        browser, tmp_path_factory.mktemp("data"), models, quantization, schedule, requests)


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


@pytest.mark.parametrize("schedule", ["fallback", "gpu"])
def test_a_prompt_prefilled_in_chunks_attends_to_the_keys_already_cached(
    schedule: str, tmp_path: Path, browser: Browser
) -> None:
    """A build whose prompts prefill CHUNK tokens at a time: each chunk after the first attends to the
    cached keys (the paged prefill kernel, as a chat's next turn does) and to its own tokens, and
    the two partial results merge. The tokens still equal the reference's."""
    from tokenizers import Tokenizer

    models, _ = compiled_models_dir(QUANTIZATION_CHUNKED, prefill_chunk_size=CHUNK)
    model_dir = models / model_id(QUANTIZATION_CHUNKED)
    prompt_ids = Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(PROMPTS[-1]).ids
    assert len(prompt_ids) > 3 * CHUNK  # several chunks over cached keys
    (result,) = run_webllm(browser, tmp_path, models, QUANTIZATION_CHUNKED, schedule, [{"prompt": PROMPTS[-1]}])
    check_greedy(model_dir, prompt_ids, result, STEPS, LOGIT_TOLERANCE)
