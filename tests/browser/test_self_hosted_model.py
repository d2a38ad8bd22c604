"""A model pulled from one Hearth to another, served by nginx and by Caddy in front of `hearth host`, runs in
WebLLM on a page of a third origin, from its pinned (immutable) URLs, with the SRI hashes of index.json
(WebLLM refuses files that do not match them).

The model is the built-in SmolLM2-135M (installed from Hearth's cache); WebLLM runs unmodified in Chromium on
SwiftShader. Three origins: the source Hearth, the front server (nginx or Caddy, with the configuration
`hearth host --print-config` prints) and the chat page's own Hearth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser

from tests.browser.chromium import PROBE, open_page
from tests.conftest import LiveServer
from tests.support.front_servers import KINDS, front_server, installed
from webapp.cli import main
from webapp.host_configs import ACCEL_PREFIX
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(1800)]

PROMPT = "The capital of France is"
STEPS = 3


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(models directory, model id): the built-in model, pulled by `hearth pull` from a live source Hearth."""
    from webapp.default_model import MODEL_ID, install_default_model

    source_models = tmp_path_factory.mktemp("source") / "models"
    install_default_model(source_models, progress=print)
    dest = tmp_path_factory.mktemp("dest") / "models"
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_dir_override=source_models)
    with LiveServer(settings) as source:
        result = CliRunner().invoke(main, ["pull", MODEL_ID, "--endpoint", f"{source.url}/models",
                                           "--models-dir", str(dest), "--json"])
    assert result.exit_code == 0, result.output
    yield dest, MODEL_ID


@pytest.mark.parametrize("kind", KINDS)
def test_the_pulled_model_runs_in_webllm_through_the_front_server(pulled: tuple[Path, str], kind: str,
                                                                  browser: Browser, tmp_path: Path) -> None:
    if not installed(kind):
        pytest.skip(f"{kind} is not installed: run scripts/setup")
    models, model_id = pulled
    host_settings = Settings(data_dir=tmp_path / "host", models_dir_override=models, accel_redirect=ACCEL_PREFIX)
    with LiveServer(host_settings, pages=False) as host, front_server(kind, models, host.port, tmp_path) as front:
        [entry] = httpx.get(f"{front}/models/index.json").json()["models"]
        pinned_model = entry["pinned_model_url"].replace(host.url, front)
        pinned_lib = entry["pinned_model_lib_url"].replace(host.url, front)
        assert entry["commit"] in pinned_model and pinned_lib.endswith(".wasm")
        page_settings = Settings(data_dir=tmp_path / "page", models_dir_override=tmp_path / "none",
                                 model_hosts=(front,))
        with LiveServer(page_settings) as chat, open_page(browser) as page:
            page.goto(f"{chat.url}/library")  # the probe runs under the page's real CSP and COEP
            host.requests.clear()
            [result] = page.evaluate(PROBE.read_text(), {
                "origin": chat.url, "modelId": model_id, "requests": [{"prompt": PROMPT}], "maxTokens": STEPS,
                "modelUrl": pinned_model, "libUrl": pinned_lib, "integrity": entry["integrity"],
            })
            errors = [line for line in page.hearth_console if line.startswith(("error: Error", "pageerror"))]
    assert not errors
    assert len(result["tokens"]) == STEPS and result["promptTokens"] > 0
    fetched = {path.rsplit("/", 1)[1] for method, path in host.requests if method == "GET"}
    # Every file came through the front server from the pinned URLs (nginx or Caddy sent the bytes).
    tensor_cache = json.loads((models / model_id / "tensor-cache.json").read_text())
    shards = {record["dataPath"] for record in tensor_cache["records"]}
    assert shards <= fetched and Path(pinned_lib).name in fetched
    assert all(f"/resolve/{entry['commit']}/" in path for method, path in host.requests if method == "GET")
    print(f"{kind}: {result['text']!r}")


def test_webllm_refuses_the_files_when_an_sri_hash_is_wrong(pulled: tuple[Path, str], browser: Browser,
                                                           tmp_path: Path) -> None:
    """The integrity block is checked for real: one wrong hash and WebLLM will not load the model."""
    models, model_id = pulled
    with LiveServer(Settings(data_dir=tmp_path / "host", models_dir_override=models)) as host:
        [entry] = httpx.get(f"{host.url}/models/index.json").json()["models"]
        wrong = {**entry["integrity"], "config": "sha256-" + "A" * 43 + "="}
        with open_page(browser) as page:
            page.goto(f"{host.url}/library")
            with pytest.raises(Exception, match="(?i)integrity"):
                page.evaluate(PROBE.read_text(), {
                    "origin": host.url, "modelId": model_id, "requests": [{"prompt": PROMPT}], "maxTokens": 1,
                    "modelUrl": entry["pinned_model_url"], "libUrl": entry["pinned_model_lib_url"],
                    "integrity": wrong,
                })
