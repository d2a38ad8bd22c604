"""Model output is untrusted: the page's markdown module, fed hostile replies, must never run script."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import READY, PageEvents, open_chat

pytestmark = pytest.mark.browser

# Each payload tries to set window.__pwned or open a dialog, by a different road.
HOSTILE = {
    "img-onerror": "<img src=x onerror=\"window.__pwned=1;alert(1)\">",
    "script-tag": "<script>window.__pwned=1</script>",
    "javascript-link": "[click me](javascript:window.__pwned=1)",
    "javascript-link-mixed-case": "[click me](  JaVaScRiPt:window.__pwned=1)",
    "javascript-html-link": "<a href=\"javascript:window.__pwned=1\">click me</a>",
    "entity-encoded-javascript": "<a href=\"&#106;avascript:window.__pwned=1\">click me</a>",
    "data-html-link": "[click me](data:text/html,<script>window.__pwned=1</script>)",
    "svg-onload": "<svg onload=\"window.__pwned=1\"><script>window.__pwned=1</script></svg>",
    "svg-use": "<svg><use href=\"data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'>"
               "<image href='x' onerror='window.__pwned=1'/></svg>#x\"/></svg>",
    "iframe-srcdoc": "<iframe srcdoc=\"<script>parent.__pwned=1</script>\"></iframe>",
    "iframe-javascript": "<iframe src=\"javascript:parent.__pwned=1\"></iframe>",
    "object-embed": "<object data=\"javascript:window.__pwned=1\"></object><embed src=\"x.swf\">",
    "form-action": "<form action=\"javascript:window.__pwned=1\"><button>Send</button></form>",
    "details-ontoggle": "<details open ontoggle=\"window.__pwned=1\"><summary>x</summary></details>",
    "style-tag": "<style>body { display: none }</style>",
    "style-attribute": "<p style=\"background:url(javascript:window.__pwned=1)\">styled</p>",
    "mxss-math": "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned=1>",
    "meta-refresh": "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__pwned=1\">",
    "base-href": "<base href=\"javascript:window.__pwned=1//\">[relative](/x)",
    "markdown-image-onerror": "![x](x\" onerror=\"window.__pwned=1)",
    "image-attribute-breakout": "![a\" onerror=\"window.__pwned=1](https://example.org/a.png)",
    "autolink-javascript": "<javascript:window.__pwned=1>",
    "code-class-injection": "<code class=\"hidden notice\">x</code>",
}
RENDER = """async ([text, fn]) => {
  const markdown = await import("/static/js/markdown.js");
  document.getElementById("markdown-under-test")?.remove();
  const target = document.createElement("div");
  target.id = "markdown-under-test";
  document.body.append(target);
  if (fn === "renderMarkdown") markdown.renderMarkdown(target, text);
  else target.append(markdown.sanitizeHtml(text));
  for (const link of target.querySelectorAll("a")) link.click();
  await new Promise((resolve) => setTimeout(resolve, 50));
  return target.innerHTML;
}"""
FORBIDDEN = "script, iframe, object, embed, form, style, svg, math, meta, base, input, button, details, [style]"
# Chromium reports inline handlers and styles to the CSP when it parses them, even in DOMPurify's inert
# document: refusals, not executions, and only raw HTML given to the sanitiser itself can cause them.
PARSE_TIME_REFUSALS = ("Executing inline event handler violates", "Applying inline style violates")


def render(page: Page, text: str, fn: str = "renderMarkdown") -> str:
    return page.evaluate(RENDER, [text, fn])


def assert_harmless(page: Page, events: PageEvents, html: str) -> None:
    """Nothing ran, and nothing that could run (or fetch, or restyle the page) is left in the output."""
    rendered = page.locator("#markdown-under-test")
    assert page.evaluate("window.__pwned") is None, html
    assert events.dialogs == []
    assert rendered.locator(FORBIDDEN).count() == 0, html
    attributes = page.evaluate("""() => [...document.querySelectorAll('#markdown-under-test *')]
      .flatMap((el) => [...el.attributes].map((a) => `${a.name}=${a.value}`))""")
    assert not [a for a in attributes if a.startswith("on")], html
    assert not [a for a in attributes if a.startswith("class=") and not a.startswith("class=language-")], html
    for href in page.eval_on_selector_all("#markdown-under-test a[href]", "links => links.map((a) => a.href)"):
        assert href.startswith(("http://", "https://", "mailto:")), html
    for src in page.eval_on_selector_all("#markdown-under-test img", "images => images.map((i) => i.src)"):
        assert src.startswith("data:image/"), html
    assert page.url.endswith("/"), "a link click navigated away"


def test_hostile_markdown_never_runs_script(chat: Page, events: PageEvents) -> None:
    for name, payload in HOSTILE.items():
        html = render(chat, payload)
        assert_harmless(chat, events, f"{name}: {html}")
        assert events.console_errors == [], f"{name}: a CSP report or blocked request means it reached a parser"
    chat.wait_for_timeout(500)  # for anything that would run late (image errors, timers)
    assert chat.evaluate("window.__pwned") is None
    assert events.dialogs == []


def test_the_sanitiser_alone_disarms_raw_hostile_html(chat: Page, events: PageEvents) -> None:
    for name, payload in HOSTILE.items():
        html = render(chat, payload, fn="sanitizeHtml")
        assert_harmless(chat, events, f"{name}: {html}")
        assert [e for e in events.console_errors if not e.startswith(PARSE_TIME_REFUSALS)] == [], name
    chat.wait_for_timeout(500)
    assert chat.evaluate("window.__pwned") is None
    assert events.dialogs == []


def test_raw_html_in_a_reply_is_shown_as_text_except_bare_tags(chat: Page) -> None:
    render(chat, 'Use <div class="x">here</div>, H<sub>2</sub>O, line<br>break and <img src=x onerror=alert(1)>')
    rendered = chat.locator("#markdown-under-test")
    assert '<div class="x">here</div>' in rendered.inner_text()
    assert "<img src=x onerror=alert(1)>" in rendered.inner_text()
    assert rendered.locator("sub").inner_text() == "2"
    assert rendered.locator("br").count() == 1
    assert rendered.locator("div, img").count() == 0


def test_markdown_keeps_formatting_and_makes_links_safe(chat: Page) -> None:
    text = ("# Title\n\n**bold** and *soft* `code`\n\n```python\nprint(1)\n```\n\n- one\n- two\n\n"
            "| a | b |\n|:--|--:|\n| 1 | 2 |\n\n[site](https://example.org) and <mailto:a@example.org>\n\n"
            "![remote](https://example.org/pixel.png) ![inline](data:image/png;base64,iVBORw0KGgo=)")
    chat.evaluate(RENDER.replace("for (const link of target.querySelectorAll(\"a\")) link.click();", ""),
                  [text, "renderMarkdown"])
    rendered = chat.locator("#markdown-under-test")
    assert rendered.locator("h1").inner_text() == "Title"
    assert rendered.locator("strong").inner_text() == "bold"
    assert rendered.locator("pre code.language-python").inner_text().strip() == "print(1)"
    assert rendered.locator("li").count() == 2
    assert rendered.locator("td").count() == 2
    link = rendered.locator("a[href='https://example.org']")
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert link.get_attribute("target") == "_blank"
    assert rendered.locator("a[href='mailto:a@example.org']").count() == 1
    # A remote image would leak that the reply was read (and the CSP forbids it): its alt text stays.
    assert "[image: remote]" in rendered.inner_text()
    assert rendered.locator("img").count() == 1


def test_a_restored_conversation_renders_replies_through_the_sanitiser(page: Page, events: PageEvents) -> None:
    conversation = {"version": 1, "messages": [
        {"role": "user", "content": "<b>not bold</b> <img src=x onerror=alert(1)>"},
        {"role": "assistant", "content": "**bold** <img src=x onerror=alert(2)>",
         "stats": {"prefill": 120.5, "decode": 9.25, "tokens": 12}},
        {"role": "assistant", "content": "cut short", "stopped": True},
    ]}
    page.goto("/static/icon.svg")
    page.evaluate("value => localStorage.setItem('hearth.conversation', value)", json.dumps(conversation))
    open_chat(page)
    messages = page.locator("#transcript .message")
    assert messages.count() == 3
    assert messages.nth(0).locator(".message-body").inner_text() == conversation["messages"][0]["content"]
    assert messages.nth(1).locator("strong").inner_text() == "bold"
    assert page.locator("#transcript img").count() == 0
    assert messages.nth(1).locator(".message-meta").inner_text() == \
        "prefill 120.5 tokens/s · decode 9.3 tokens/s · 12 tokens"
    assert messages.nth(2).locator(".message-meta").inner_text() == "Stopped"
    assert events.dialogs == []

    page.reload()
    page.wait_for_selector(READY)
    assert page.locator("#transcript .message").count() == 3, "the conversation survives a reload"
    page.click("#new-chat")
    assert page.locator("#transcript .message").count() == 0
    assert page.locator("#conversation-list .conversation-item").count() == 1, "the restored chat stays saved"
