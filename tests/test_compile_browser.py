"""`hearth compile` output runs in the unmodified WebLLM engine, in Chromium on WebGPU (SwiftShader),
served by the real Hearth app, and greedy decoding gives the numpy reference's token ids.

Token ids come from a WebLLM logit processor: processSampledToken receives each id the GPU
sampler picked, and processLogits the logits it sampled from (returned unchanged). The prompt
goes through completions.create, which prepends nothing (no BOS, no chat template, no system
prompt) and tokenizes with the same tokenizer.json, so Python's encoding is the prompt WebLLM
prefills; usage.prompt_tokens confirms the length.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.browser.chromium import CHROMIUM, PROBE, chromium_page
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

PROMPTS = [
    "The hearth is",
    "WebGPU lets a web page use",
    "Grouped-query attention shares every key and value head among several query heads, and",
]
STEPS = 16
# The GPU's logits differ from the float64 reference by float32 rounding (about 1e-5 of the
# largest logit; 3e-4 before precise_math replaced WGSL's approximate sin/cos). Greedy decoding
# must agree exactly: with every logit within the tolerance, a top-1 lead of more than twice the
# tolerance cannot flip, and the margin check makes sure the test data has such leads.
LOGIT_TOLERANCE = 1e-4  # relative to the largest |logit| of the step
MIN_MARGIN = 2 * LOGIT_TOLERANCE


@pytest.fixture(scope="module", params=["q0f32", "q4f32_1"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    quantization = request.param
    models, _ = compiled_models_dir(quantization)
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_dir_override=models)
    with LiveServer(settings) as server:
        yield server, models / model_id(quantization)


def _reference(model_dir: Path):
    from webapp.compile.llama.config import LlamaConfig
    from webapp.compile.reference import ReferenceLlama, float_weights, read_params

    config = LlamaConfig(**json.loads((model_dir / "mlc-chat-config.json").read_text())["model_config"])
    return ReferenceLlama(config, float_weights(read_params(model_dir)))


def test_webllm_greedy_tokens_equal_the_numpy_reference(served: tuple[LiveServer, Path]) -> None:
    from tokenizers import Tokenizer

    server, model_dir = served
    with chromium_page() as page:
        # Any page of the app: the probe then runs under its real headers (CSP, COEP).
        page.goto(f"{server.url}/library")
        results = page.evaluate(
            PROBE.read_text(),
            {"origin": server.url, "modelId": model_dir.name, "prompts": PROMPTS, "maxTokens": STEPS},
        )
        assert not [line for line in page.hearth_console if line.startswith(("error: Error", "pageerror"))]

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    reference = _reference(model_dir)
    for prompt, result in zip(PROMPTS, results, strict=True):
        prompt_ids = tokenizer.encode(prompt).ids
        assert result["promptTokens"] == len(prompt_ids), prompt
        expected, expected_logits = reference.generate(prompt_ids, STEPS)
        for step, logits in enumerate(expected_logits):
            top2 = np.sort(logits)[-2:]
            assert top2[1] - top2[0] > MIN_MARGIN * np.abs(logits).max(), f"test data has a near-tie at step {step}"

        assert result["tokens"] == expected, prompt
        assert len(result["logits"]) == STEPS
        for step, (ours, theirs) in enumerate(zip(result["logits"], expected_logits, strict=True)):
            scale = np.abs(theirs).max()
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=LOGIT_TOLERANCE * scale, err_msg=f"step {step}")
        # The text WebLLM returns is the decoding of exactly those ids.
        assert result["text"] == tokenizer.decode(expected, skip_special_tokens=False)
