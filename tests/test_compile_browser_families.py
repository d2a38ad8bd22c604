"""Every family's tiny model, compiled by `hearth compile`, runs in the unmodified WebLLM on SwiftShader.

Once per family of tests.tinycheckpoint.FAMILIES besides Llama (test_compile_browser.py covers it) and
per library (the fallback and the GPU schedule sets):
served by the real app, WebLLM's greedy tokens must be the numpy reference's, logits within the
tolerance of test_compile_browser.py, for a plain prompt and a chat through the compiled template.
The numpy reference is itself checked against llama.cpp per family in test_compile_llamacpp.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser.chromium import PROBE, open_page
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from tests.test_compile_browser import LOGIT_TOLERANCE
from tests.tinycheckpoint import FAMILIES
from tests.webllm import chat_prompt_ids, check_greedy, library_url
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

QUANTIZATION = "q4f32_1"
PROMPT = "Grouped-query attention shares every key and value head among several query heads, and"
CHAT = "What is the hearth?"
STEPS = 12


@pytest.fixture(scope="module", params=[(name, schedule) for name in FAMILIES if name != "llama"
                                        for schedule in ("fallback", "gpu")], ids=lambda param: "-".join(param))
def webllm_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, browser: Browser):
    """(model directory, [prompt result, chat result]) of WebLLM running one of the family's compiled
    libraries (schedule sets)."""
    family, schedule = request.param
    models, _ = compiled_models_dir(QUANTIZATION, family)
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_dir_override=models)
    requests = [{"prompt": PROMPT}, {"messages": [{"role": "user", "content": CHAT}]}]
    with LiveServer(settings) as server, open_page(browser) as page:
        page.goto(f"{server.url}/library")
        results = page.evaluate(
            PROBE.read_text(),
            {"origin": server.url, "modelId": model_id(QUANTIZATION, family), "requests": requests,
             "maxTokens": STEPS, "libUrl": library_url(server.url, model_id(QUANTIZATION, family), schedule)},
        )  # fmt: skip
        errors = [line for line in page.hearth_console if line.startswith(("error: Error", "pageerror"))]
    assert not errors
    return models / model_id(QUANTIZATION, family), results


def test_webllm_greedy_tokens_equal_the_numpy_reference(webllm_run: tuple[Path, list[dict]]) -> None:
    from tokenizers import Tokenizer

    model_dir, results = webllm_run
    prompt_ids = Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(PROMPT).ids
    check_greedy(model_dir, prompt_ids, results[0], STEPS, LOGIT_TOLERANCE)


def test_webllm_chat_through_the_compiled_template(webllm_run: tuple[Path, list[dict]]) -> None:
    model_dir, results = webllm_run
    check_greedy(model_dir, chat_prompt_ids(model_dir, CHAT), results[1], STEPS, LOGIT_TOLERANCE)
