"""The page picks one of a hosted model's two libraries by the adapter (static/js/library-choice.js).

On this machine's SwiftShader the page chooses the barrier-free library, says so in the model's
details, and WebLLM fetches that library and not the GPU one. The choice for adapters this machine
does not have is checked on the adapter-info values real browsers report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.request import urlopen

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import own_chat_page
from tests.browser.test_chat_with_model import load_model
from tests.compiled import compiled_models_dir, model_id
from tests.conftest import LiveServer
from webapp.settings import Settings

pytestmark = [pytest.mark.compiler, pytest.mark.browser, pytest.mark.timeout(900)]

MODEL = model_id("q4f32_1")
CHOOSE = """async ({ libraries, gpu }) => {
  const { chooseLibrary } = await import("/static/js/library-choice.js");
  return chooseLibrary(libraries, gpu);
}"""
# adapter.info as browsers report it: (vendor, architecture, description, isFallbackAdapter).
HARDWARE = {
    "nvidia": ("nvidia", "ada-lovelace", "", False),
    "amd": ("amd", "rdna-3", "", False),
    "intel": ("intel", "gen-12lp", "", False),
    "apple": ("apple", "metal-3", "", False),
    "qualcomm": ("qualcomm", "adreno-7xx", "", False),
}
SOFTWARE = {
    "swiftshader": ("google", "swiftshader", "", False),
    "llvmpipe": ("mesa", "", "llvmpipe (LLVM 15.0.6, 256 bits)", False),
    "lavapipe": ("mesa", "", "lavapipe", False),
    "warp": ("microsoft", "", "Microsoft Basic Render Driver", False),
    "a fallback adapter on hardware": ("intel", "gen-9", "", True),
}


@pytest.fixture(scope="module")
def served(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, dict]]:
    """(a chat page, the model's index.json entry) with the tiny model and both its libraries hosted."""
    models, _ = compiled_models_dir("q4f32_1")
    settings = Settings(data_dir=tmp_path_factory.mktemp("choice"), models_dir_override=models)
    with LiveServer(settings) as live, own_chat_page(browser, live.url) as page:
        with urlopen(f"{live.url}/models/index.json") as response:
            entry = next(m for m in json.load(response)["models"] if m["id"] == MODEL)
        yield page, entry


def probed(vendor: str, architecture: str, description: str, fallback: bool) -> dict:
    """What gpu.js probeGpu returns for an adapter reporting these values."""
    return {"ok": True, "problem": None, "features": [], "maxStorageBufferBindingSize": 1 << 30,
            "adapter": {"vendor": vendor, "architecture": architecture, "description": description,
                        "isFallbackAdapter": fallback}}


def test_index_lists_both_libraries_with_their_own_integrity(served: tuple[Page, dict]) -> None:
    _, entry = served
    libraries = entry["libraries"]
    assert set(libraries) == {"fallback", "gpu"}
    # Readers that know one library (a custom model's URL, WebLLM pointed here) get the one for every adapter.
    assert libraries["fallback"]["url"] == entry["model_lib_url"] and entry["model_lib_url"].endswith(f"/libs/{MODEL}.wasm")
    assert libraries["gpu"]["url"].endswith(f"/libs/{MODEL}-gpu.wasm")
    assert libraries["fallback"]["integrity"]["model_lib"] != libraries["gpu"]["integrity"]["model_lib"]
    assert libraries["fallback"]["integrity"]["config"] == libraries["gpu"]["integrity"]["config"]


@pytest.mark.parametrize("name", HARDWARE)
def test_a_hardware_adapter_gets_the_gpu_library(served: tuple[Page, dict], name: str) -> None:
    page, entry = served
    chosen = page.evaluate(CHOOSE, {"libraries": entry["libraries"], "gpu": probed(*HARDWARE[name])})
    assert chosen["schedule"] == "gpu" and chosen["url"] == entry["libraries"]["gpu"]["url"]
    assert chosen["integrity"] == entry["libraries"]["gpu"]["integrity"]
    assert chosen["reason"].startswith("GPU-tuned kernels, for ") and HARDWARE[name][0] in chosen["reason"]


@pytest.mark.parametrize("name", SOFTWARE)
def test_a_software_or_fallback_adapter_gets_the_barrier_free_library(served: tuple[Page, dict], name: str) -> None:
    page, entry = served
    chosen = page.evaluate(CHOOSE, {"libraries": entry["libraries"], "gpu": probed(*SOFTWARE[name])})
    assert chosen["schedule"] == "fallback" and chosen["url"] == entry["libraries"]["fallback"]["url"]
    assert chosen["reason"].startswith("barrier-free kernels, for the software adapter")


def test_no_gpu_library_or_no_adapter_means_the_one_library(served: tuple[Page, dict]) -> None:
    page, entry = served
    only = {"fallback": entry["libraries"]["fallback"]}
    alone = page.evaluate(CHOOSE, {"libraries": only, "gpu": probed(*HARDWARE["nvidia"])})
    assert alone["schedule"] == "fallback" and alone["reason"].startswith("one library for every GPU")
    none = page.evaluate(CHOOSE, {"libraries": entry["libraries"], "gpu": {"ok": False, "adapter": None}})
    assert none["schedule"] == "fallback"


def test_the_catalogue_builds_the_record_a_hardware_adapter_would_load(served: tuple[Page, dict]) -> None:
    """hostedEntry wires the choice into WebLLM's record: the GPU library's URL and integrity hash."""
    page, entry = served
    record = page.evaluate("""async ({ hosted, gpu }) => {
      const { buildCatalogue } = await import("/static/js/models.js");
      const found = buildCatalogue({ hosted, gpu, prebuilt: { model_list: [] } }).byId.get(hosted[0].id);
      return { record: found.record, library: found.library };
    }""", {"hosted": [entry], "gpu": probed(*HARDWARE["amd"])})
    assert record["record"]["model_lib"] == entry["libraries"]["gpu"]["url"]
    assert record["record"]["integrity"] == entry["libraries"]["gpu"]["integrity"]
    assert record["library"]["schedule"] == "gpu"


def test_swiftshader_loads_the_barrier_free_library_and_the_page_says_so(served: tuple[Page, dict]) -> None:
    page, entry = served
    assert page.evaluate("() => hearth.gpu.adapter.architecture") == "swiftshader"
    record = page.evaluate(f"() => hearth.catalogue.byId.get({json.dumps(MODEL)}).record")
    assert record["model_lib"] == entry["libraries"]["fallback"]["url"]
    assert record["integrity"]["model_lib"] == entry["libraries"]["fallback"]["integrity"]["model_lib"]

    load_model(page, MODEL)
    page.click("#open-models")
    details = page.locator("#model-details")
    expect(details).to_contain_text("barrier-free kernels, for the software adapter (google swiftshader)")
    libraries = page.evaluate("""async () => (await (await caches.open("webllm/wasm")).keys()).map((r) => r.url)""")
    assert entry["libraries"]["fallback"]["url"] in libraries
    assert not any(url.endswith("-gpu.wasm") for url in libraries)

