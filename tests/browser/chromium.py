"""Launch Debian's Chromium headless with WebGPU on SwiftShader (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# A name for 127.0.0.1 that is not "localhost": pages opened through it are not a secure context.
INSECURE_HOST = "hearth.test"
QUIET_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Belt and braces with the tests' request guards: no name resolves anywhere but here.
    f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# A real WebGPU adapter on the CPU (SwiftShader): no shader-f16, 1 GiB storage buffers.
WEBGPU_ARGS = [
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader",
]
CHROMIUM_ARGS = QUIET_ARGS + WEBGPU_ARGS
# The machine's own GPU through Vulkan, for benchmarks on machines that have one.
GPU_ARGS = QUIET_ARGS + ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=vulkan",
                         "--ignore-gpu-blocklist"]
PROBE = Path(__file__).resolve().parent / "webllm_probe.js"


@contextmanager
def open_page(browser: Any, init_script: str | None = None) -> Iterator[Any]:
    """A page in a fresh context of `browser`; console errors are kept in page.hearth_console.

    The app's service worker is blocked: requests it answered would bypass page.route()."""
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.hearth_console = []
        page.on("console", lambda message: page.hearth_console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: page.hearth_console.append(f"pageerror: {error}"))
        if init_script:
            page.add_init_script(init_script)
        yield page
    finally:
        context.close()


def launch(playwright: Any, gpu: bool = False) -> Any:
    """Debian's Chromium, headless, with WebGPU on SwiftShader (or on the real GPU: `gpu`)."""
    args = GPU_ARGS if gpu else CHROMIUM_ARGS
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)


@contextmanager
def profile_page(profile: Path, gpu: bool = False) -> Iterator[Any]:
    """A page in a browser started on the profile folder `profile`: what one run stores there (caches,
    IndexedDB, localStorage) the next run on the same folder finds, as after a user restarts the browser.
    The app's service worker is blocked, as in open_page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=GPU_ARGS if gpu else CHROMIUM_ARGS, headless=True,
            service_workers="block",
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@contextmanager
def chromium_page(init_script: str | None = None, gpu: bool = False) -> Iterator[Any]:
    """A page in a browser of its own, for scripts (tests share the session's `browser` fixture:
    Playwright's sync API cannot run twice at once in one thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, gpu)
        try:
            with open_page(browser, init_script) as page:
                yield page
        finally:
            browser.close()
