"""Custom models in a real browser: the form, the Check against real hosts, the store, export and import."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import HOSTED_ID, NOT_MLC_ID, READY, NoCorsHost, PageEvents, open_chat
from tests.fakemodel import write_fake_model

pytestmark = pytest.mark.browser

FIELDS = {
    "model_id": "#cm-id",
    "display_name": "#cm-name",
    "model_url": "#cm-url",
    "model_lib_url": "#cm-lib",
    "estimated_size_mb": "#cm-size",
    "context_window_size": "#cm-context",
    "required_features": "#cm-features",
    "description": "#cm-description",
}
MODEL = {
    "model_id": "My-Tiny-q4f32_1",
    "display_name": "My tiny model",
    "model_url": f"/models/{HOSTED_ID}",
    "model_lib_url": f"/libs/{HOSTED_ID}.wasm",
}


@pytest.fixture
def chat(page: Page) -> Page:
    """The chat page with its Models view open, where custom models are managed."""
    open_chat(page)
    page.click("#open-models")
    return page


def open_form(page: Page) -> None:
    if not page.evaluate("document.getElementById('custom-form-box').open"):
        page.click("#custom-form-title")


def fill(page: Page, **values: str) -> None:
    open_form(page)
    for name, value in values.items():
        page.fill(FIELDS[name], value)


def add_model(page: Page, **overrides: str) -> dict[str, str]:
    model = {**MODEL, **overrides}
    fill(page, **model)
    page.click("#cm-save")
    page.wait_for_selector(f'#custom-model-list li[data-model-id="{model["model_id"]}"]')
    return model


def check(page: Page, model_url: str, lib_url: str) -> str:
    """Press Check and return the result's state ("ok" or "failed")."""
    fill(page, model_url=model_url, model_lib_url=lib_url)
    page.click("#cm-check")
    page.wait_for_selector("#cm-check-result[data-state=ok], #cm-check-result[data-state=failed]")
    return page.get_attribute("#cm-check-result", "data-state")


def stored(page: Page) -> dict:
    return json.loads(page.evaluate("localStorage.getItem('customModels')"))


def test_add_check_and_save_a_model_from_this_server(chat: Page, live_server) -> None:
    fill(chat, **MODEL)
    assert check(chat, MODEL["model_url"], MODEL["model_lib_url"]) == "ok"
    result = chat.inner_text("#cm-check-result")
    for fact in ("llama", "q4f32_1", "2048 tokens", "chatml", "2 weight files"):
        assert fact in result
    shards = sum(path.stat().st_size for path in (live_server.settings.models_dir / HOSTED_ID).glob("params_shard_*"))
    lib = (live_server.settings.models_dir / "libs" / f"{HOSTED_ID}.wasm").stat().st_size

    chat.click("#cm-save")
    item = chat.locator(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"]')
    assert "My tiny model" in item.inner_text()
    assert "(checked)" in item.inner_text()
    doc = stored(chat)
    assert doc["version"] == 1
    [saved] = doc["models"]
    assert saved["model_id"] == MODEL["model_id"]
    assert saved["model_url"] == MODEL["model_url"]
    assert saved["checked"]["total_bytes"] == shards + lib
    assert saved["checked"]["quantization"] == "q4f32_1"
    # Check hashed what WebLLM verifies, as the server's own manifest does.
    index = chat.evaluate("fetch('/models/index.json').then((r) => r.json())")
    hosted = next(model for model in index["models"] if model["id"] == HOSTED_ID)
    assert saved["checked"]["integrity"] == hosted["integrity"]
    assert set(hosted["integrity"]) == {"config", "model_lib", "tokenizer"}

    option = chat.locator(f'#model-select option[value="{MODEL["model_id"]}"]')
    assert option.locator("xpath=..").get_attribute("label") == "Your custom models"
    # Not downloaded yet: the selector shows the size the Check measured.
    size = chat.evaluate(f"import('/static/js/format.js').then((m) => m.formatBytes({shards + lib}))")
    expect(option).to_have_text(f"My tiny model · {size}")
    record = chat.evaluate(f"hearth.catalogue.byId.get('{MODEL['model_id']}').record")
    assert record["model"] == f"{live_server.url}/models/{HOSTED_ID}"
    assert record["model_lib"] == f"{live_server.url}/libs/{HOSTED_ID}.wasm"
    assert record["integrity"] == hosted["integrity"]


def test_check_says_cors_refused_when_the_host_answers_without_cors(chat: Page, no_cors_host: NoCorsHost) -> None:
    config_url = f"{no_cors_host.model_url}/resolve/main/mlc-chat-config.json"
    with urllib.request.urlopen(config_url) as response:  # the file is there; only CORS is missing
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] is None
    assert check(chat, no_cors_host.model_url, no_cors_host.lib_url) == "failed"
    assert chat.inner_text("#cm-check-result").startswith(f"CORS refused: {no_cors_host.url} answered")


def test_check_says_host_unreachable_when_nothing_listens(chat: Page, closed_origin: str) -> None:
    assert check(chat, f"{closed_origin}/some-model", f"{closed_origin}/lib.wasm") == "failed"
    assert chat.inner_text("#cm-check-result").startswith(f"Host unreachable: nothing answered at {closed_origin}")


def test_check_says_file_missing_for_a_404(chat: Page, live_server) -> None:
    assert check(chat, "/models/no-such-model", f"/libs/{HOSTED_ID}.wasm") == "failed"
    expected = f"File missing: {live_server.url}/models/no-such-model/resolve/main/mlc-chat-config.json answered 404"
    assert chat.inner_text("#cm-check-result").startswith(expected)


def test_check_says_not_an_mlc_model_for_other_json(chat: Page) -> None:
    assert check(chat, f"/models/{NOT_MLC_ID}", f"/libs/{HOSTED_ID}.wasm") == "failed"
    assert chat.inner_text("#cm-check-result").startswith("Not an MLC model:")


def test_check_says_a_missing_library_is_missing(chat: Page, live_server) -> None:
    assert check(chat, f"/models/{HOSTED_ID}", "/libs/nothing-here.wasm") == "failed"
    assert chat.inner_text("#cm-check-result").startswith(f"File missing: {live_server.url}/libs/nothing-here.wasm")


def test_check_says_blocked_by_content_policy_and_names_the_flag(chat: Page) -> None:
    with socket.socket() as unlisted:  # a local origin the server was not told about
        unlisted.bind(("127.0.0.1", 0))
        origin = f"http://127.0.0.1:{unlisted.getsockname()[1]}"
        assert check(chat, f"{origin}/m", f"{origin}/m.wasm") == "failed"
    text = chat.inner_text("#cm-check-result")
    assert text.startswith("Blocked by this page's content policy")
    assert f"--model-host {origin}" in text


def test_check_warns_that_an_f16_model_cannot_run_on_this_gpu(chat: Page, live_server) -> None:
    write_fake_model(live_server.settings.models_dir, model_id="Tiny-q4f16_1", quantization="q4f16_1")
    fill(chat, model_id="Tiny-q4f16_1-copy")
    assert chat.input_value("#cm-features") == "shader-f16", "an f16 id pre-fills the feature"
    chat.fill("#cm-features", "")
    assert check(chat, "/models/Tiny-q4f16_1", "/libs/Tiny-q4f16_1.wasm") == "ok"
    assert "cannot run here" in chat.inner_text("#cm-check-result .check-warning")


def test_f16_custom_model_needs_shader_f16_even_without_the_feature_listed(chat: Page) -> None:
    add_model(chat, model_id="Other-q4f16_1-MLC", required_features="")
    option = chat.locator('#model-select option[value="Other-q4f16_1-MLC"]')
    assert "can't run on this GPU" in option.inner_text()
    record = chat.evaluate("hearth.catalogue.byId.get('Other-q4f16_1-MLC').record")
    assert record["required_features"] == ["shader-f16"]


@pytest.mark.parametrize("taken", ["My-Tiny-q4f32_1", HOSTED_ID, "Llama-3.2-1B-Instruct-q4f32_1-MLC",
                                   "snowflake-arctic-embed-s-q0f32-MLC-b4"],
                         ids=["custom", "hosted", "prebuilt", "prebuilt-embedding"])
def test_a_taken_model_id_is_refused(chat: Page, taken: str) -> None:
    add_model(chat)
    fill(chat, **{**MODEL, "model_id": taken, "display_name": "Second"})
    chat.click("#cm-save")
    assert chat.inner_text("#cm-id-error").startswith("A model with this ID already exists")
    assert chat.get_attribute("#cm-id", "aria-invalid") == "true"
    assert [m["model_id"] for m in stored(chat)["models"]] == [MODEL["model_id"]]


BAD_INPUT = [
    ("model_id", "", "Give the model an ID"),
    ("model_id", "has space", "The model ID cannot contain spaces."),
    ("model_id", "slash/id", "Use only letters, digits"),
    ("display_name", "  ", "Give the model a display name."),
    ("model_url", "huggingface.co/mlc-ai/x", "The model URL must start with https://, http:// or /"),
    ("model_url", "javascript:alert(1)", "The model URL must start with https://, http:// or /"),
    ("model_url", "//evil.example/x", "The model URL must start with https://, http:// or /"),
    ("model_url", "https://host/model?token=1", "The model URL cannot have a query"),
    ("model_lib_url", "", "The model library URL is required."),
    ("model_lib_url", "/libs/model.bin", "The model library URL must end in .wasm."),
    ("estimated_size_mb", "-5", "The estimated size is a number of megabytes"),
    ("context_window_size", "1.5", "The context window is a whole number of tokens"),
    ("required_features", "shader f16!", "List WebGPU features as names"),
]


def test_bad_input_gets_one_clear_message_on_its_field(chat: Page) -> None:
    for field, value, message in BAD_INPUT:  # one page for the whole table: each case refills the form
        fill(chat, **{**MODEL, "estimated_size_mb": "", "context_window_size": "", "required_features": "",
                      field: value})
        chat.click("#cm-save")
        case = f"{field}={value!r}"
        assert chat.inner_text(f"{FIELDS[field]}-error").startswith(message), case
        assert chat.get_attribute(FIELDS[field], "aria-invalid") == "true", case
        assert chat.inner_text("#cm-errors") == "One field needs fixing: see below.", case
        assert chat.evaluate("document.activeElement.id") == FIELDS[field][1:], case
    assert chat.evaluate("localStorage.getItem('customModels')") is None


def test_edit_a_custom_model(chat: Page) -> None:
    add_model(chat)
    option = chat.locator(f'#model-select option[value="{MODEL["model_id"]}"]')
    expect(option).to_have_text("My tiny model · size unknown")  # neither checked nor estimated
    chat.click(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"] button[data-action=edit]')
    assert chat.input_value("#cm-id") == MODEL["model_id"]
    assert chat.inner_text("#custom-form-title") == "Edit My tiny model"
    chat.fill("#cm-name", "Renamed model")
    chat.fill("#cm-context", "1024")
    chat.fill("#cm-size", "950")
    chat.click("#cm-save")
    chat.wait_for_selector("#cm-status:has-text('Saved changes to Renamed model')")
    [saved] = stored(chat)["models"]
    assert saved["display_name"] == "Renamed model"
    assert saved["context_window_size"] == 1024
    record = chat.evaluate(f"hearth.catalogue.byId.get('{MODEL['model_id']}').record")
    assert record["overrides"] == {"context_window_size": 1024}
    expect(option).to_have_text("Renamed model · about 950 MB (estimated)")


def test_delete_asks_first_and_only_deletes_when_confirmed(chat: Page, events: PageEvents) -> None:
    add_model(chat)
    delete = f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"] button[data-action=delete]'
    chat.click(delete)
    assert chat.is_visible("#confirm-dialog")
    assert "My tiny model" in chat.inner_text("#confirm-message")
    chat.click("#confirm-cancel")
    assert len(stored(chat)["models"]) == 1
    chat.click(delete)
    chat.click("#confirm-ok")
    chat.wait_for_selector(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"]', state="detached")
    assert stored(chat)["models"] == []
    assert chat.locator(f'#model-select option[value="{MODEL["model_id"]}"]').count() == 0
    assert events.dialogs == [], "no window.confirm: the page's own dialog asks"


def test_only_custom_models_offer_delete(chat: Page) -> None:
    chat.select_option("#model-select", HOSTED_ID)
    assert chat.locator("button[data-action=delete]").count() == 0
    add_model(chat)
    assert chat.locator("button[data-action=delete]").count() == 1
    assert chat.locator("#custom-model-list li").count() == 1


def test_export_then_import_restores_the_list(chat: Page, tmp_path: Path) -> None:
    add_model(chat)
    add_model(chat, model_id="Second-q4f32_1", display_name="Second")
    with chat.expect_download() as download:
        chat.click("#custom-export")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name == "hearth-custom-models.json"
    assert json.loads(exported.read_text()) == stored(chat)

    chat.evaluate("localStorage.clear()")
    chat.reload()
    chat.wait_for_selector(READY)
    chat.click("#open-models")
    assert chat.locator("#custom-model-list li").count() == 0
    chat.set_input_files("#custom-import", exported)
    chat.wait_for_selector("#custom-import-report[data-state=ok]")
    assert "imported 2 models." in chat.inner_text("#custom-import-report")
    assert [m["model_id"] for m in stored(chat)["models"]] == [MODEL["model_id"], "Second-q4f32_1"]


def test_import_skips_bad_and_duplicate_entries_and_says_why(chat: Page, tmp_path: Path) -> None:
    add_model(chat)
    good = {**MODEL, "model_id": "Fresh-q4f32_1"}
    doc = {"version": 1, "models": [
        good,
        {**MODEL},  # already saved
        {**MODEL, "model_id": "No-Url", "model_url": ""},
        {**MODEL, "model_id": HOSTED_ID},
        "not even an object",
    ]}
    upload = tmp_path / "models.json"
    upload.write_text(json.dumps(doc))
    chat.set_input_files("#custom-import", upload)
    chat.wait_for_selector("#custom-import-report[data-state=ok]")
    report = chat.inner_text("#custom-import-report")
    assert "imported 1 model, skipped 4:" in report
    assert f"{MODEL['model_id']}: A model with this ID already exists" in report
    assert "No-Url: The model URL is required." in report
    assert f"{HOSTED_ID}: A model with this ID already exists" in report
    assert "entry 5:" in report
    assert [m["model_id"] for m in stored(chat)["models"]] == [MODEL["model_id"], "Fresh-q4f32_1"]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "This file is not JSON"),
    ('{"version": 1}', 'This file has no "models" list'),
    ('{"version": 7, "models": []}', "This file has format version 7, made by a newer Hearth"),
])
def test_import_of_an_unusable_file_changes_nothing(chat: Page, tmp_path: Path, content: str, message: str) -> None:
    upload = tmp_path / "bad.json"
    upload.write_text(content)
    chat.set_input_files("#custom-import", upload)
    chat.wait_for_selector("#custom-import-report[data-state=failed]")
    assert chat.inner_text("#custom-import-report").startswith(message)
    assert chat.evaluate("localStorage.getItem('customModels')") is None


def test_display_name_with_markup_shows_as_text(chat: Page, events: PageEvents) -> None:
    name = "<img src=x onerror=alert(1)>"
    add_model(chat, display_name=name)
    item = chat.locator(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"]')
    assert chat.inner_text(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"] .custom-name') == name
    assert item.locator("img").count() == 0
    chat.select_option("#model-select", MODEL["model_id"])
    assert name in chat.inner_text(f'#model-select option[value="{MODEL["model_id"]}"]')
    chat.click(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"] button[data-action=delete]')
    assert name in chat.inner_text("#confirm-message")
    chat.click("#confirm-cancel")
    assert chat.locator("body img").count() == 0
    assert events.dialogs == []
    assert events.console_errors == []


@pytest.mark.parametrize("corrupt", ["{not json", '{"version": 1, "models": "nope"}', '["a list"]',
                                     '{"version": 99, "models": []}'])
def test_corrupt_storage_is_backed_up_and_the_list_starts_empty(page: Page, corrupt: str) -> None:
    page.goto("/static/icon.svg")  # same origin, so the value is in place before the chat page reads it
    page.evaluate("value => localStorage.setItem('customModels', value)", corrupt)
    open_chat(page)
    backups = page.evaluate("Object.keys(localStorage).filter((key) => key.startsWith('customModels.corrupt-'))")
    assert len(backups) == 1
    assert page.evaluate(f"localStorage.getItem('{backups[0]}')") == corrupt
    notice = page.inner_text("#notices")
    assert "could not be read" in notice and backups[0] in notice and "the list starts empty" in notice
    assert page.locator("#custom-model-list li").count() == 0
    page.click("#open-models")
    assert page.is_visible("#custom-empty")
    assert stored(page) == {"version": 1, "models": []}


def test_one_bad_entry_keeps_the_good_ones(page: Page) -> None:
    doc = {"version": 1, "models": [MODEL, {"model_id": "bad id"}]}
    page.goto("/static/icon.svg")
    page.evaluate("value => localStorage.setItem('customModels', value)", json.dumps(doc))
    open_chat(page)
    assert "the 1 that could be read were kept" in page.inner_text("#notices")
    assert [m["model_id"] for m in stored(page)["models"]] == [MODEL["model_id"]]


def test_custom_models_survive_a_reload(chat: Page) -> None:
    add_model(chat)
    chat.reload()
    chat.wait_for_selector(READY)
    assert chat.locator(f'#custom-model-list li[data-model-id="{MODEL["model_id"]}"]').count() == 1
    assert chat.locator(f'#model-select option[value="{MODEL["model_id"]}"]').count() == 1
    assert chat.inner_text("#notices") == ""
