"""What people see: screenshots of the chat, the Models view, the chat settings and the library at
1280×800 and 390×844, light and dark, written to .bench/screens/ for a person to look at; and axe-core
(npm, used by the tests only) finds no serious or critical accessibility violation on any of them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.chatapp import archive, conversation, conversation_item, import_archive
from tests.browser.conftest import READY, guarded_context

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENS = ROOT / ".bench" / "screens"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
REPLY = """Here is a table and some code.

| Quantization | Bits | Runs on |
|---|---|---|
| q4f32_1 | 4 | any WebGPU |
| q4f16_1 | 4 | shader-f16 |

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

That is **all**: `greet("hearth")` says hello."""
RUN_AXE = """async () => {
  const result = await axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "best-practice"] });
  return result.violations.filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
}"""


def seeded(page: Page, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    chats = [conversation("c-look", "Tables and code", now, [("Show me a table and some code.", REPLY)]),
             conversation("c-older", "An older chat", now - 86_400_000 * 3, [("Hello", "Hi there.")])]
    import_archive(page, tmp_path, archive(chats))
    if not page.is_visible("#sidebar"):
        page.click("#sidebar-toggle")  # on a phone the list is in the drawer
    conversation_item(page, "Tables and code").locator("[data-action=open]").click()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_every_view_looks_right_and_has_no_serious_accessibility_violation(
    browser: Browser, live_server, outside_requests, tmp_path: Path, device: str, scheme: str  # type: ignore[no-untyped-def]
) -> None:
    assert AXE.is_file(), f"{AXE} is missing: run scripts/setup"
    SCREENS.mkdir(parents=True, exist_ok=True)
    context = guarded_context(browser, live_server.url, outside_requests)
    context.add_init_script(path=str(AXE))
    try:
        page = context.new_page()
        page.set_viewport_size(VIEWPORTS[device])
        page.emulate_media(color_scheme=scheme)
        page.goto("/")
        page.wait_for_selector(READY)
        seeded(page, tmp_path)
        views = {
            "chat": lambda: None,
            "models": lambda: page.click("#open-models"),
            "settings": lambda: page.click("#open-settings"),
        }
        found = {}
        for name, show in views.items():
            page.keyboard.press("Escape")
            show()
            page.wait_for_timeout(150)  # the drawer and dialogs settle
            page.screenshot(path=str(SCREENS / f"{name}-{device}-{scheme}.png"))
            found[name] = page.evaluate(RUN_AXE)
        page.keyboard.press("Escape")
        if device == "phone":
            page.click("#sidebar-toggle")
            page.wait_for_timeout(300)
            page.screenshot(path=str(SCREENS / f"drawer-{device}-{scheme}.png"))
            found["drawer"] = page.evaluate(RUN_AXE)
        page.goto("/library")
        page.screenshot(path=str(SCREENS / f"library-{device}-{scheme}.png"))
        found["library"] = page.evaluate(RUN_AXE)
        assert {name: v for name, v in found.items() if v} == {}
    finally:
        context.close()
    assert outside_requests == []
