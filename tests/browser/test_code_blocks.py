"""Code and tables in replies: highlight.js's colours through a sanitiser of its own, a Copy button per block,
tables that scroll sideways, and themes that follow the system's light or dark scheme."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.chromium import INSECURE_HOST
from tests.browser.conftest import READY, PageEvents, open_chat
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

STYLES = "/static/css/markdown.css"
# Renders a finished reply into a fresh element, with the replies' stylesheet on the page.
RENDER = """async ([text, styles]) => {
  if (!document.querySelector(`link[href="${styles}"]`)) {
    const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href: styles });
    document.head.append(link);
    await new Promise((resolve, reject) => { link.onload = resolve; link.onerror = reject; });
  }
  const { renderReply } = await import("/static/js/reply-renderer.js");
  document.getElementById("reply-under-test")?.remove();
  const target = document.createElement("div");
  target.id = "reply-under-test";
  // Where replies go: the chat page's body does not scroll, so anything after the app is off screen.
  document.getElementById("transcript").prepend(target);
  renderReply(target, text);
  return target.innerHTML;
}"""
# Every element and attribute inside the highlighted code of the reply.
CODE_MARKUP = """() => [...document.querySelectorAll('#reply-under-test pre code *')].map((el) => ({
  tag: el.tagName, attributes: [...el.attributes].map((a) => [a.name, a.value]) }))"""
HIGHLIGHT_CLASS = re.compile(r"^(?:hljs-[a-z][\w-]*|[a-z]+_+)$")
PYTHON = 'def greet(name):\n    """Say hello."""\n    return f"Hello, {name}!"  # friendly\n'
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# A little of each common kind of code, so every token colour of the themes is on screen.
SAMPLES = {
    "python": PYTHON,
    "javascript": "export const answer = async (x) => { /* doc */ return `${x}` + 42; };\n",
    "html": '<!doctype html>\n<a href="/x" class="y">link</a> &amp;\n',
    "css": ".message:hover { color: #fff; margin: 0 auto !important; }\n",
    "json": '{"key": [1, true, null, "text"]}\n',
    "bash": 'for f in *.txt; do echo "$f" | grep -c TODO; done  # count\n',
    "sql": "SELECT id, count(*) FROM t WHERE name LIKE 'a%' GROUP BY id;\n",
    "rust": "fn main() { let x: Vec<u8> = vec![1, 2]; println!(\"{:?}\", x); }\n",
    "diff": "--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n",
    "markdown": "# Heading\n\n**bold** and [link](https://example.org)\n",
    "yaml": "key: value\nlist:\n  - 1\n  - 'two'\n",
}
HOSTILE_CODE = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>\n'
                '<a href="javascript:window.__pwned=1" onclick="window.__pwned=1">x</a>\n')


def render(page: Page, text: str) -> str:
    return page.evaluate(RENDER, [text, STYLES])


def fence(language: str, code: str) -> str:
    return f"```{language}\n{code}```\n"


def test_code_is_highlighted_with_nothing_but_highlight_spans(chat: Page, events: PageEvents) -> None:
    render(chat, fence("python", PYTHON) + "\n" + fence("html", HOSTILE_CODE) + "\n" + fence("js", "let x = 1;\n"))
    code = chat.locator("#reply-under-test pre code")
    assert code.count() == 3
    python = code.nth(0)
    assert python.get_attribute("class") == "language-python hljs"
    assert python.locator("span.hljs-keyword").first.inner_text() == "def"
    assert python.locator("span.hljs-comment").inner_text() == "# friendly"
    assert python.text_content() == PYTHON, "highlighting changes no character of the code"
    assert code.nth(1).text_content() == HOSTILE_CODE
    assert code.nth(1).locator("span").count() > 5, "the hostile HTML is highlighted as HTML source"
    markup = chat.evaluate(CODE_MARKUP)
    assert markup and {element["tag"] for element in markup} == {"SPAN"}
    for element in markup:  # a span of embedded language (script in HTML) is left without a class
        assert {name for name, _ in element["attributes"]} <= {"class"}, element
        assert all(HIGHLIGHT_CLASS.match(name) for _, value in element["attributes"] for name in value.split()), element
    assert chat.locator("#reply-under-test img, #reply-under-test script, #reply-under-test a").count() == 0
    chat.wait_for_timeout(300)
    assert chat.evaluate("window.__pwned") is None
    assert events.page_errors == [] and events.console_errors == [] and events.dialogs == []


def test_an_unknown_language_is_shown_plain(chat: Page, events: PageEvents) -> None:
    # Unknown to highlight.js; a name marked accepts and the sanitiser strips; one too long to be a name.
    languages = ["nosuchlang", "brainfuck++", "../../etc", "x" * 60]
    render(chat, "\n".join(fence(language, "x := 1\n") for language in languages))
    for index, language in enumerate(languages):
        block = chat.locator("#reply-under-test .code-block").nth(index)
        assert block.locator("code").text_content() == "x := 1\n", language
        assert block.locator("code span").count() == 0, language
        assert "hljs" in block.locator("code").get_attribute("class").split()
    assert chat.locator("#reply-under-test .code-language").all_inner_texts() == ["nosuchlang", "brainfuck++", "text", "text"]
    assert events.page_errors == [] and events.console_errors == []


def test_a_block_without_a_language_is_guessed_or_left_plain(chat: Page) -> None:
    render(chat, fence("", "#include <stdio.h>\nint main(void) {\n  printf(\"hi\\n\");\n  return 0;\n}\n")
           + "\n" + fence("", "just a few plain words\n"))
    guessed, plain = chat.locator("#reply-under-test .code-block").all()
    assert re.search(r"\blanguage-(c|cpp)\b", guessed.locator("code").get_attribute("class"))
    assert guessed.locator("span.hljs-keyword").count() > 0
    assert guessed.locator(".code-language").inner_text() in ("C", "C++")
    assert plain.locator("code span").count() == 0
    assert plain.locator(".code-language").inner_text() == "text"


def test_each_code_block_has_its_language_and_a_labelled_copy_button(chat: Page) -> None:
    render(chat, "Intro\n\n" + fence("py", PYTHON) + "\n- a step:\n\n  ```sh\n  ls -la\n  ```\n")
    blocks = chat.locator("#reply-under-test .code-block")
    assert blocks.count() == 2
    assert blocks.nth(0).locator(".code-language").inner_text() == "Python"
    assert blocks.nth(0).locator("button").get_attribute("aria-label") == "Copy Python code"
    assert blocks.nth(1).locator(".code-language").inner_text() == "Bash"
    assert chat.locator("#reply-under-test li .code-block").count() == 1
    again = chat.evaluate("""async () => {
      const { addReplyTools } = await import("/static/js/reply-tools.js");
      const reply = document.getElementById("reply-under-test");
      addReplyTools(reply);
      return reply.querySelectorAll(".code-tools").length;
    }""")
    assert again == 2, "adding the tools twice adds them once"
    for button in chat.locator("#reply-under-test button").all():
        button.focus()
        assert chat.evaluate("document.activeElement.classList.contains('code-copy')")


def test_copy_puts_the_code_on_the_clipboard(context: BrowserContext, chat: Page) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    render(chat, fence("python", PYTHON) + "\n" + fence("", "second\n"))
    first = chat.locator("#reply-under-test .code-block").first
    first.locator("button").click()
    expect(first.locator("[role=status]")).to_have_text("Copied")
    assert chat.evaluate("navigator.clipboard.readText()") == PYTHON.rstrip("\n")
    second = chat.locator("#reply-under-test .code-block").nth(1)
    second.locator("button").click()
    expect(second.locator("[role=status]")).to_have_text("Copied")
    assert chat.evaluate("navigator.clipboard.readText()") == "second"
    expect(first.locator("[role=status]")).to_have_text("", timeout=5000)


def test_copy_works_on_a_plain_http_page_without_the_clipboard_api(context: BrowserContext,
                                                                   live_server: LiveServer) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    secure = open_chat(context.new_page())
    secure.evaluate("navigator.clipboard.writeText('not the code')")
    insecure = context.new_page()
    insecure.goto(f"http://{INSECURE_HOST}:{live_server.port}/")
    insecure.wait_for_selector(READY)
    assert insecure.evaluate("navigator.clipboard === undefined"), "a plain-http page has no Clipboard API"
    render(insecure, fence("python", PYTHON))
    insecure.locator("#reply-under-test button").click()
    expect(insecure.locator("#reply-under-test [role=status]")).to_have_text("Copied")
    assert secure.evaluate("navigator.clipboard.readText()").rstrip("\n") == PYTHON.rstrip("\n")


def test_tables_are_bordered_and_scroll_sideways_on_a_phone(chat: Page) -> None:
    chat.set_viewport_size({"width": 390, "height": 844})
    header = "| " + " | ".join(f"column {n}" for n in range(12)) + " |\n"
    rule = "|" + "---|" * 12 + "\n"
    row = "| " + " | ".join("a-rather-long-cell-value" for _ in range(12)) + " |\n"
    render(chat, "A wide table:\n\n" + header + rule + row * 3)
    frame = chat.locator("#reply-under-test .table-scroll")
    assert frame.locator("table th").count() == 12
    assert frame.get_attribute("tabindex") == "0" and frame.get_attribute("role") == "region"
    sizes = frame.evaluate("(el) => ({ scroll: el.scrollWidth, client: el.clientWidth, "
                           "right: el.getBoundingClientRect().right })")
    assert sizes["scroll"] > sizes["client"], "the table is wider than the phone, so its frame scrolls"
    assert sizes["right"] <= 390, "and the frame itself stays on screen"
    cell = frame.locator("td").first
    assert cell.evaluate("(el) => getComputedStyle(el).borderTopStyle") == "solid"
    frame.focus()
    chat.keyboard.press("ArrowRight")
    scrolled = frame.evaluate("""(el) => new Promise((resolve) => {
      const started = performance.now();
      const check = () => (el.scrollLeft > 0 || performance.now() - started > 3000
        ? resolve(el.scrollLeft) : requestAnimationFrame(check));
      check();
    })""")
    assert scrolled > 0, "the focused frame scrolls with the keyboard"


@pytest.mark.parametrize(("scheme", "background"), [("light", "rgb(254, 254, 254)"), ("dark", "rgb(43, 43, 43)")])
def test_code_colours_follow_the_colour_scheme_and_stay_readable(page: Page, events: PageEvents, scheme: str,
                                                                  background: str) -> None:
    page.emulate_media(color_scheme=scheme)
    page.set_viewport_size({"width": 1280, "height": 2400})  # every token on screen, where axe measures it
    page.add_init_script(path=AXE)  # scripts added this way are not subject to the page's CSP
    open_chat(page)
    render(page, "Some code:\n\n" + "\n".join(fence(language, code) for language, code in SAMPLES.items())
           + "\n| a | b |\n|:--|--:|\n| `x` | **2** |\n")
    code = page.locator("#reply-under-test pre code").first
    assert code.evaluate("(el) => getComputedStyle(el).backgroundColor") == background
    keyword = code.locator(".hljs-keyword").first
    assert keyword.evaluate("(el) => getComputedStyle(el).color") != code.evaluate("(el) => getComputedStyle(el).color")
    assert events.console_errors == [], "the themes load under the page's CSP"
    results = page.evaluate("""async () => {
      const { violations, passes } = await axe.run("#reply-under-test");
      return {
        violations: violations.filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(", ")}`),
        contrastChecked: passes.find((rule) => rule.id === "color-contrast")?.nodes.length ?? 0,
      };
    }""")
    assert results["contrastChecked"] > 50, "axe measured the contrast of the highlighted tokens"
    violations = results["violations"]
    assert violations == [], f"axe-core, {scheme}"
