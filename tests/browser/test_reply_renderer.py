"""A reply that streams is rendered block by block, once a frame, and ends exactly as a finished one renders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import PageEvents, guarded_context, open_chat
from tests.browser.test_markdown import FORBIDDEN, HOSTILE, assert_harmless
from tests.conftest import LiveServer
from tests.fakemodel import write_fake_model
from webapp.settings import Settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shared_chat(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, PageEvents]]:
    """One chat page for the whole module (opening one takes seconds): each test renders into its own element."""
    root = tmp_path_factory.mktemp("reply-renderer")
    write_fake_model(root / "models")
    outside: list[str] = []
    events = PageEvents()
    with LiveServer(Settings(data_dir=root / "data", models_dir_override=root / "models")) as server:
        context = guarded_context(browser, server.url, outside)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and events.console_errors.append(message.text))
        page.on("pageerror", lambda error: events.page_errors.append(str(error)))
        page.on("dialog", lambda dialog: (events.dialogs.append(dialog.message), dialog.dismiss()))
        yield open_chat(page), events
        context.close()
    assert outside == [], f"the page tried to leave the machine: {outside}"


@pytest.fixture
def chat(shared_chat: tuple[Page, PageEvents]) -> Page:
    return shared_chat[0]


@pytest.fixture
def events(shared_chat: tuple[Page, PageEvents]) -> PageEvents:
    """What the shared page said during this test alone."""
    events = shared_chat[1]
    for heard in (events.console_errors, events.page_errors, events.dialogs):
        heard.clear()
    return events


# Streams `text` in pieces through createReplyRenderer, one piece a frame, then finishes it. At every
# frame it notes anything forbidden on screen and, with `compare`, whether the screen differs from
# renderReply() of the same text; it returns those notes and the final HTML.
STREAM = """async ({ text, pieces, compare, forbidden }) => {
  const { createReplyRenderer, renderReply } = await import("/static/js/reply-renderer.js");
  document.getElementById("markdown-under-test")?.remove();
  const target = document.createElement("div");
  target.id = "markdown-under-test";
  document.body.append(target);
  const view = createReplyRenderer(target);
  const frame = () => new Promise(requestAnimationFrame);
  const oneShot = (prefix) => {
    const scratch = document.createElement("div");
    renderReply(scratch, prefix);
    return scratch.innerHTML;
  };
  const unsafe = [];
  const different = [];
  let length = 0;
  for (const piece of pieces) {
    length += piece;
    view.update(text.slice(0, length));
    await frame();
    if (target.querySelector(forbidden)) unsafe.push(`${length}: ${target.innerHTML}`);
    if (compare && target.innerHTML !== oneShot(text.slice(0, length))) different.push(length);
  }
  view.finish(text);
  if (!compare) for (const link of target.querySelectorAll("a")) link.click();  // hostile ones lead nowhere
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { unsafe, different, html: target.innerHTML, expected: oneShot(text) };
}"""
# Everything a model writes, including the cases where later text changes an earlier block: a setext
# underline, a list continued after a blank line, a lazy quote, a reference link defined at the end, an
# unclosed fence, bare tags left open, Windows line ends.
REPLY = """# Title

Intro with **bold**, *soft*, `code`, a [link](https://example.org), H<sub>2</sub>O and line<br>break.

Setext heading
--------------

- item one
- item two
  continued lazily

- a loose item after a blank line

  with a second paragraph

1. first
2. second

> a quote
continued lazily

| name | value |
|:-----|------:|
| one  | 1     |
| two  | 2     |

```python
def add(x, y):
    # sum of two numbers
    return x + y
```

```
no language: just some words here
```

```nosuchlang
x := 1
```

Unclosed <b>bold across

paragraphs</b> and <i>italic left open

    indented code

***

A [reference][ref] link, and ~~struck~~ text.

[ref]: https://example.org/ref

A last block that never closes:
```js
const unfinished = { answer: 42 };
"""


def pieces(text: str, sizes: tuple[int, ...]) -> list[int]:
    """Chunk lengths that cover text, cycling through sizes (tokens are a few characters each)."""
    lengths, total, index = [], 0, 0
    while total < len(text):
        size = min(sizes[index % len(sizes)], len(text) - total)
        lengths.append(size)
        total += size
        index += 1
    return lengths


def stream(page: Page, text: str, sizes: tuple[int, ...], compare: bool = False) -> dict:
    return page.evaluate(STREAM, {"text": text, "pieces": pieces(text, sizes), "compare": compare,
                                  "forbidden": FORBIDDEN})


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_replies_are_as_harmless_streamed_as_rendered(chat: Page, events: PageEvents, name: str) -> None:
    result = stream(chat, HOSTILE[name], sizes=(1, 3, 2))
    assert result["unsafe"] == [], f"{name}: something forbidden was on screen while it streamed"
    assert_harmless(chat, events, f"{name}: {result['html']}")
    assert result["html"] == result["expected"]
    assert events.console_errors == [], f"{name}: a CSP report or blocked request means it reached a parser"
    chat.wait_for_timeout(300)  # for anything that would run late (image errors, timers)
    assert chat.evaluate("window.__pwned") is None
    assert events.dialogs == [] and events.page_errors == []


# A reference definition makes the renderer lex the whole reply each frame; without one it lexes the tail.
VARIANTS = {
    "windows-line-ends": REPLY.replace("\n", "\r\n"),
    "no-link-definition": REPLY.replace("[reference][ref]", "[reference](https://example.org/ref)")
                               .replace("[ref]: https://example.org/ref\n", ""),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_streamed_reply_matches_the_one_shot_render_at_every_frame(chat: Page, events: PageEvents,
                                                                     variant: str) -> None:
    result = stream(chat, VARIANTS[variant], sizes=(3, 1, 7, 4, 12, 2, 5), compare=True)
    assert result["different"] == [], "frames where the streamed reply differed from renderReply of its text"
    assert result["html"] == result["expected"]
    rendered = chat.locator("#markdown-under-test")
    assert rendered.locator("h2").inner_text() == "Setext heading"
    assert rendered.locator("a[href='https://example.org/ref']").inner_text() == "reference"
    assert rendered.locator(".code-block").count() == 5
    assert rendered.locator(".table-scroll table td").count() == 4
    assert events.page_errors == [] and events.console_errors == []


def test_finished_blocks_are_rendered_once_and_kept(chat: Page) -> None:
    kept = chat.evaluate("""async () => {
      const { createReplyRenderer } = await import("/static/js/reply-renderer.js");
      const target = document.createElement("div");
      document.body.append(target);
      const view = createReplyRenderer(target);
      const frame = () => new Promise(requestAnimationFrame);
      let text = "```python\\nprint('first block')\\n```\\n\\n";
      view.update(text);
      await frame();
      const code = target.querySelector("pre code");
      const button = target.querySelector(".code-copy");
      let changes = 0;
      new MutationObserver((records) => { changes += records.length; })
        .observe(code, { subtree: true, childList: true, characterData: true, attributes: true });
      for (let index = 0; index < 30; index += 1) {
        text += `Paragraph ${index} grows `;
        for (const word of ["one", "two", "three"]) {
          view.update(text + word);
          await frame();
        }
        text += "three.\\n\\n";
      }
      view.finish(text);
      target.remove();
      return { same: target.querySelector("pre code") === code && target.querySelector(".code-copy") === button,
               changes, paragraphs: target.querySelectorAll("p").length };
    }""")
    assert kept == {"same": True, "changes": 0, "paragraphs": 30}


def test_updates_render_once_a_frame_with_the_latest_text(chat: Page) -> None:
    seen = chat.evaluate("""async () => {
      const { createReplyRenderer } = await import("/static/js/reply-renderer.js");
      const target = document.createElement("div");
      target.textContent = "placeholder";
      document.body.append(target);
      const view = createReplyRenderer(target);
      const emptied = target.textContent;
      for (let count = 1; count <= 50; count += 1) view.update(`**${count}** words`);
      const beforeFrame = target.textContent;
      await new Promise(requestAnimationFrame);
      const afterFrame = target.innerHTML;
      view.update("pending");
      view.finish("final *text*");
      const finished = target.innerHTML;
      await new Promise(requestAnimationFrame);
      target.remove();
      return { emptied, beforeFrame, afterFrame, finished, later: target.innerHTML };
    }""")
    assert seen["emptied"] == "" and seen["beforeFrame"] == ""
    assert seen["afterFrame"] == "<p><strong>50</strong> words</p>\n"
    assert seen["finished"] == "<p>final <em>text</em></p>\n"
    assert seen["later"] == seen["finished"], "finish() drops the frame that update() had asked for"


def test_a_renderer_given_a_shorter_or_different_text_shows_just_that_text(chat: Page) -> None:
    screens = chat.evaluate("""async () => {
      const { createReplyRenderer, renderReply } = await import("/static/js/reply-renderer.js");
      const target = document.createElement("div");
      document.body.append(target);
      const view = createReplyRenderer(target);
      const frame = () => new Promise(requestAnimationFrame);
      // Shorter and other texts than before: a reply regenerated, or cut back, into the same view.
      const withLink = "A [ref] link.\\n\\nSecond\\n\\nThird\\n\\n[ref]: https://example.org/\\n";
      const texts = [withLink, withLink.slice(0, withLink.indexOf("[ref]:")), "Other reply.\\n\\n- one\\n- two",
                     "Other reply.\\n\\nShorter"];
      const screens = [];
      for (const text of texts) {
        view.update(text);
        await frame();
        const expected = document.createElement("div");
        renderReply(expected, text);
        screens.push(target.innerHTML === expected.innerHTML);
      }
      target.remove();
      return screens;
    }""")
    assert screens == [True, True, True, True]
