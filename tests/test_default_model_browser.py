"""The built-in SmolLM2 model, served by Hearth, answers chat prompts in WebLLM token for token like numpy,
with either of its libraries (the barrier-free one and the GPU one, webapp/compile/schedule_sets.py).

The unmodified WebLLM engine in Chromium (WebGPU on SwiftShader) loads the cached build of the default
model from a live Hearth server and answers each prompt greedily through chat.completions, so WebLLM
applies the model's own ChatML template. The numpy reference runs the same prompt ids on the weights
exactly as the library dequantizes them (GGUF Q4_1/Q8_0 blocks, kept as they are by q4f32_gguf).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser.chromium import PROBE, open_page
from tests.conftest import LiveServer
from tests.webllm import chat_prompt_ids, check_greedy, library_url
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(3600)]

# Prompts whose reference has a clear top-1 lead at each of the 16 steps (smallest lead: 0.7% of
# the largest logit); many questions to this 135M model have near-ties within a few tokens.
PROMPTS = [
    "What is the capital of France? Answer in one word.",
    "How many days are in a week?",
    "What color is the sky?",
]
STEPS = 16
# Thirty float32 layers drift further from the float64 reference than the tiny test model's two.
LOGIT_TOLERANCE = 1e-3  # relative to the largest |logit| of the step


# The GPU library runs ten times slower on SwiftShader (barriers): one prompt, fewer steps.
GPU_LIBRARY_STEPS = 8


def webllm_run(browser: Browser, data: Path, schedule: str, prompts: list[str], steps: int) -> tuple[Path, list]:
    """The cached build of the built-in model (compiled on first use) and WebLLM's answers with one of its libraries."""
    from webapp.default_model import MODEL_ID, ensure_compiled

    models, _key, _compiled = ensure_compiled(print)
    settings = Settings(data_dir=data, models_dir_override=models)
    requests = [{"messages": [{"role": "user", "content": prompt}]} for prompt in prompts]
    with LiveServer(settings) as server, open_page(browser) as page:
        page.goto(f"{server.url}/library")  # the probe runs under the app's real headers (CSP, COEP)
        results = page.evaluate(PROBE.read_text(), {
            "origin": server.url, "modelId": MODEL_ID, "requests": requests, "maxTokens": steps,
            "libUrl": library_url(server.url, MODEL_ID, schedule),
        })  # fmt: skip
        assert not [line for line in page.hearth_console if line.startswith(("error: Error", "pageerror"))]
    return models / MODEL_ID, results


@pytest.fixture(scope="module")
def webllm_answers(smollm2: Path, browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """WebLLM's answers to every prompt with the library SwiftShader gets (the barrier-free one)."""
    return webllm_run(browser, tmp_path_factory.mktemp("data"), "fallback", PROMPTS, STEPS)


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_webllm_answers_like_the_numpy_reference(webllm_answers: tuple[Path, list], index: int) -> None:
    model_dir, results = webllm_answers
    prompt_ids = chat_prompt_ids(model_dir, PROMPTS[index])
    check_greedy(model_dir, prompt_ids, results[index], STEPS, LOGIT_TOLERANCE)


def test_the_gpu_library_answers_like_the_numpy_reference_too(
    smollm2: Path, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The library real GPUs get (dlight's schedules, TVM's attention), run here on SwiftShader."""
    model_dir, [result] = webllm_run(browser, tmp_path_factory.mktemp("data"), "gpu", PROMPTS[:1], GPU_LIBRARY_STEPS)
    check_greedy(model_dir, chat_prompt_ids(model_dir, PROMPTS[0]), result, GPU_LIBRARY_STEPS, LOGIT_TOLERANCE)
