"""WebLLM's prebuilt model list, read from the vendored web-llm without a JavaScript engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webapp.prebuilt import WEBLLM_JS, PrebuiltListError, prebuilt_libraries


def test_the_vendored_list_names_each_hub_repos_library() -> None:
    text = WEBLLM_JS.read_text()
    version = re.search(r'const modelVersion = "([^"]+)";', text).group(1)
    prefix = re.search(r'const modelLibURLPrefix = "([^"]+)";', text).group(1)
    libraries = prebuilt_libraries()
    assert libraries["mlc-ai/SmolLM2-360M-Instruct-q4f32_1-MLC"] == (
        f"{prefix}{version}/SmolLM2-360M-Instruct-q4f32_1_cs1k-webgpu.wasm")
    assert len(libraries) > 100 and all(url.startswith(prefix + version + "/") for url in libraries.values())
    # Commented-out entries are not models WebLLM offers.
    assert "mlc-ai/DeepSeek-R1-Distill-Qwen-1.5B-q4f16_1-MLC" not in libraries


ENTRY = ('{ model: "https://huggingface.co/mlc-ai/%s", model_id: "%s", '
         'model_lib: modelLibURLPrefix + modelVersion + "/%s" },')
HEAD = 'const modelVersion = "v9/base";\nconst modelLibURLPrefix = "https://libs.example/";\n'


def test_the_entry_named_after_its_repository_wins(tmp_path: Path) -> None:
    js = tmp_path / "index.js"
    js.write_text(HEAD + "const prebuiltAppConfig = {\n  model_list: [\n    // a note\n"
                  + ENTRY % ("M", "M-1k", "m-small.wasm") + ENTRY % ("M", "M", "m.wasm")
                  + ENTRY % ("M", "M-b4", "m-b4.wasm") + "\n  ],\n};\n")
    assert prebuilt_libraries(js) == {"mlc-ai/M": "https://libs.example/v9/base/m.wasm"}


@pytest.mark.parametrize(("text", "what"), [
    ("", "no `const modelVersion"),
    (HEAD, "no `const prebuiltAppConfig"),
    (HEAD + "const prebuiltAppConfig = { cacheBackend: 'cache' };", "no `model_list: ["),
    (HEAD + "const prebuiltAppConfig = { model_list: [ { model: `x` } ] };", "unexpected '`x`"),
    (HEAD + "const prebuiltAppConfig = { model_list: [ { model_id: 'x' } ] };", "has no `model` URL"),
    (HEAD + "const prebuiltAppConfig = { model_list: [ "
     + (ENTRY % ("M", "M", "m.wasm")).replace("modelVersion +", "f() +") + " ] };", "unexpected '()"),
])
def test_an_unexpected_shape_is_one_clear_error_naming_the_file(tmp_path: Path, text: str, what: str) -> None:
    js = tmp_path / "index.js"
    js.write_text(text)
    with pytest.raises(PrebuiltListError) as caught:
        prebuilt_libraries(js)
    assert str(js) in str(caught.value) and what in str(caught.value) and "--lib-url" in str(caught.value)


def test_a_missing_webllm_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(PrebuiltListError, match="run scripts/setup"):
        prebuilt_libraries(tmp_path / "missing.js")
