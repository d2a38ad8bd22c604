"""Each provider type's adapter on the streams its documentation shows, and the ways a call goes wrong.

The streams are replayed by a real loopback server in small uneven pieces (tests/support/stream_replay.py),
so events, JSON and CRLF pairs arrive split across reads, as they do from real servers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_chat
from tests.support.stream_replay import Replay, stream_replay

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def replay() -> Iterator[str]:
    with stream_replay() as url:
        yield url


@pytest.fixture
def app(page: Page) -> Page:
    page.add_init_script("localStorage.setItem('hearth.autoTitles', 'off')")
    return open_chat(page)


def ask(page: Page, replay: str, kind: str, type_: str = "openai", **extra: object) -> None:
    """Register a provider whose base URL picks the replay, select its model and send a question."""
    definition = {"id": "rec", "name": "Recorded", "type": type_, "baseUrl": f"{replay}/{kind}",
                  "apiVersion": "2024-10-21", "models": [{"id": "m", "priceInput": 3, "priceOutput": 15}], **extra}
    page.evaluate("(d) => hearth.providers.register(d)", definition)
    page.select_option("#model-select", "@rec/m")
    page.fill("#prompt", "Hello?")
    page.press("#prompt", "Enter")


def finished(page: Page):  # type: ignore[no-untyped-def]
    page.wait_for_function("""() => {
        const last = hearth.chat.current.messages.at(-1);
        return hearth.chat.generating === null && last?.role === "assistant" && last.finish;
    }""", timeout=30_000)
    return page.locator('#transcript article.message[data-role="assistant"]').last


@pytest.mark.parametrize(("kind", "type_", "answer", "tokens"), [
    ("openai", "openai", "Hello from OpenAI", 12),
    ("anthropic", "anthropic", "Hello from Claude!", 15),
    ("gemini", "gemini", "Hello from Gemini!", 4),
    ("azure", "azure", "Hello from Azure", None),
])
def test_each_type_streams_its_documented_format(app: Page, replay: str, kind: str, type_: str, answer: str,
                                                 tokens: int | None) -> None:
    ask(app, replay, kind, type_)
    reply = finished(app)
    expect(reply.locator(".answer")).to_have_text(answer)
    meta = reply.locator(".message-meta")
    if tokens is None:
        expect(meta).to_contain_text("(estimated)")  # Azure streamed no usage
    else:
        expect(meta).to_contain_text(f"{tokens} tokens")
        expect(meta).not_to_contain_text("estimated")
        expect(meta).to_contain_text("$")  # priced: the reply's cost, and the chat's
        expect(app.locator("#conversation-cost")).to_contain_text("This chat: $")


def test_reasoning_is_a_collapsed_block_and_not_sent_back(app: Page, replay: str) -> None:
    ask(app, replay, "anthropic", "anthropic")
    reply = finished(app)
    reasoning = reply.locator("details.reasoning")
    expect(reasoning).to_be_visible()
    expect(reasoning).not_to_have_attribute("open", "")
    expect(reasoning.locator("summary")).to_have_text("Reasoning")
    expect(reasoning.locator(".reasoning-text")).to_have_text("The user greets me; I greet back.")
    app.fill("#prompt", "And again?")
    app.press("#prompt", "Enter")
    app.wait_for_function("() => hearth.chat.current.messages.length === 4 && hearth.chat.generating === null")
    history = Replay.bodies[-1]["messages"]
    assert history[1] == {"role": "assistant", "content": "Hello from Claude!"}


@pytest.mark.parametrize(("kind", "extra", "message"), [
    ("anthropic-error", {"type": "anthropic"}, "Recorded stopped with an error: Overloaded"),
    ("html", {}, "answered with a web page, not a stream"),
    ("half", {}, "ended the stream before the reply was finished"),
    ("silent", {"timeoutSeconds": 2}, "did not answer within 2 s"),
])
def test_a_call_gone_wrong_says_why_and_gives_the_message_back(app: Page, replay: str, kind: str, extra: dict,
                                                               message: str) -> None:
    extra = {"type": "openai", **extra}
    ask(app, replay, kind, extra.pop("type"), **extra)
    expect(app.locator("#chat-error")).to_be_visible(timeout=30_000)
    expect(app.locator("#chat-error-message")).to_contain_text(message)
    expect(app.locator("#prompt")).to_have_value("Hello?")
    assert app.evaluate("() => hearth.chat.current.messages.length") == 0


def test_a_refused_parameter_is_dropped_remembered_and_undoable(app: Page, replay: str) -> None:
    ask(app, replay, "refuses-stop", addParams={"stop": ["END"]})
    reply = finished(app)
    expect(reply.locator(".answer")).to_have_text("Hello from OpenAI")
    assert "stop" in Replay.bodies[-2] and "stop" not in Replay.bodies[-1], "asked once more, without it"
    expect(app.locator("#notices")).to_contain_text("refused the parameter stop")
    app.click("#open-providers")
    app.click('#provider-list li[data-provider-id="rec"] button:has-text("Edit")')
    learned = app.locator("#pv-learned .learned-drop")
    expect(learned).to_contain_text("Not sending stop to m")
    learned.locator("button").click()
    expect(learned).to_have_count(0)
    assert app.evaluate("() => hearth.providers.list()[0].learnedDrops.m") == []


def test_providers_export_and_import_with_keys_only_when_asked(app: Page, replay: str, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app.evaluate("(base) => hearth.providers.register({ id: 'mine', name: 'Mine', baseUrl: base, models: [{ id: 'm' }] },"
                 " { keys: ['sk-export-1'] })", f"{replay}/openai")
    app.click("#open-providers")
    files = {}
    for with_keys in (False, True):
        app.set_checked("#provider-export-keys", with_keys)
        with app.expect_download() as download:
            app.click("#provider-export")
        files[with_keys] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[with_keys])
    assert "sk-export-1" not in files[False].read_text() and "sk-export-1" in files[True].read_text()
    app.evaluate("() => hearth.providers.remove('mine')")
    broken = tmp_path / "broken.json"
    document = __import__("json").loads(files[True].read_text())
    document["providers"].append({"id": "Bad Id", "baseUrl": "nope"})
    broken.write_text(__import__("json").dumps(document))
    app.set_input_files("#provider-import", str(broken))
    expect(app.locator("#provider-report")).to_contain_text("Imported 1 provider. Skipped 1: Bad Id")
    listed = app.evaluate("() => hearth.providers.list()")
    assert [(p["id"], p["keysKept"]) for p in listed] == [("mine", "session")]


def test_a_providers_model_can_write_the_titles(page: Page, replay: str) -> None:
    page.add_init_script("localStorage.setItem('hearth.titleModel', '@titler/m')")
    app = open_chat(page)
    app.evaluate("(base) => hearth.providers.register({ id: 'titler', name: 'Titler', baseUrl: base, models: [{ id: 'm' }] })",
                 f"{replay}/openai")
    ask(app, replay, "anthropic", "anthropic")
    finished(app)
    expect(app.locator("#conversation-title")).to_have_text("Hello from OpenAI", timeout=20_000)
    asked = Replay.bodies[-1]["messages"][0]["content"]
    assert asked.startswith("Write a short title") and "Hello?" in asked


def test_server_defined_providers_are_listed_read_only_and_keep_their_key(browser, tmp_path, replay: str) -> None:  # type: ignore[no-untyped-def]
    from tests.browser.conftest import guarded_context
    from tests.conftest import LiveServer
    from webapp.server_providers import load_providers
    from webapp.settings import Settings

    path = tmp_path / "providers.yaml"
    path.write_text(f"providers:\n  - id: team\n    name: Team\n    base_url: {replay}/openai\n"
                    "    api_key: ${TEAM_KEY}\n    models: [{id: m, label: Team model}]\n")
    settings = Settings(data_dir=tmp_path / "data", models_dir_override=tmp_path / "models",
                        server_providers=load_providers(path, {"TEAM_KEY": "team-key-77"}))
    outside: list[str] = []
    with LiveServer(settings) as server:
        context = guarded_context(browser, server.url, outside)
        app = open_chat(context.new_page())
        app.click("#open-providers")
        item = app.locator('#provider-list li[data-provider-id="team"]')
        expect(item).to_contain_text("defined by this server, keys kept there")
        expect(item.locator("button")).to_have_count(0)
        app.click("#providers-dialog [data-close-dialog]")
        app.select_option("#model-select", "@team/m")
        app.fill("#prompt", "Hello?")
        app.press("#prompt", "Enter")
        expect(finished(app).locator(".answer")).to_have_text("Hello from OpenAI")
        assert Replay.headers_seen[-1]["Authorization"] == "Bearer team-key-77", "the relay added the key"
        assert "team-key-77" not in app.content()
        context.close()
    assert outside == []


# The smallest PNG there is: one transparent pixel.
PIXEL_PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                          "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.mark.parametrize(("kind", "type_"), [("openai", "openai"), ("anthropic", "anthropic"), ("gemini", "gemini")])
def test_an_image_goes_to_a_vision_model_in_its_types_format(app: Page, replay: str, tmp_path, kind: str,  # type: ignore[no-untyped-def]
                                                            type_: str) -> None:
    app.evaluate("(d) => hearth.providers.register(d)", {"id": "eye", "name": "Eye", "type": type_,
                 "baseUrl": f"{replay}/{kind}", "models": [{"id": "m", "vision": True}]})
    app.select_option("#model-select", "@eye/m")
    expect(app.locator("#attach-label")).to_be_visible()
    picture = tmp_path / "pixel.png"
    picture.write_bytes(PIXEL_PNG)
    app.set_input_files("#attach-input", str(picture))
    expect(app.locator("#attachments img")).to_have_count(1)
    app.fill("#prompt", "What is in this picture?")
    app.press("#prompt", "Enter")
    finished(app)
    expect(app.locator('#transcript article.message[data-role="user"] img.attached-image')).to_have_count(1)
    sent = Replay.bodies[-1]
    data = __import__("base64").b64encode(PIXEL_PNG).decode()
    if type_ == "openai":
        parts = sent["messages"][-1]["content"]
        assert parts[0] == {"type": "text", "text": "What is in this picture?"}
        assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    elif type_ == "anthropic":
        image = sent["messages"][-1]["content"][0]
        assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    else:
        assert sent["contents"][-1]["parts"][0] == {"inline_data": {"mime_type": "image/png", "data": data}}
    expect(app.locator("#attachments img")).to_have_count(0)
    app.evaluate("(d) => hearth.providers.register(d)", {"id": "eye", "name": "Eye", "type": type_,
                 "baseUrl": f"{replay}/{kind}", "models": [{"id": "m"}]})
    expect(app.locator("#attach-label")).to_be_hidden()
