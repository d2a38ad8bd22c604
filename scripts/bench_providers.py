#!/usr/bin/env python3
"""A remote provider called directly from the browser versus through Hearth's relay, in one run.

Against llama.cpp's OpenAI-compatible server (the SmolLM2 GGUF) on loopback, from the real chat page
in Debian's Chromium: time to first token and decode tokens/s of the same reply (temperature 0,
max_tokens 64), the two ways interleaved round by round; and the relay's peak RSS (VmHWM of a real
`hearth serve`) while a 100 MiB streamed reply passes through it. Printed and saved to
.bench/providers.json. Run from the repository root after scripts/setup:
    .venv/bin/python scripts/bench_providers.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import launch  # noqa: E402 - after the path is set
from tests.support.front_servers import free_port, serving, wait_for_port  # noqa: E402
from tests.support.provider_servers import MODEL_ALIAS, llamacpp_server  # noqa: E402
from tests.support.stream_replay import Firehose  # noqa: E402
from tests.test_relay import page_token  # noqa: E402
from webapp.compile.gguf import packaged_gguf  # noqa: E402

QUESTION = "Name three rivers in Europe and say one thing about each."


def hearth_serve(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "webapp", "serve", "--port", str(port),
                                "--models-dir", str(data / "models")],
                               env={"HOME": str(data), "PATH": "/usr/bin:/bin"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_port(port, process, "hearth serve")
    return process, f"http://127.0.0.1:{port}"


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def reply_stats(page, via: str, llama: str) -> dict:  # type: ignore[no-untyped-def]
    page.evaluate("""([via, base]) => hearth.providers.register({ id: via, name: via, baseUrl: base, via,
        models: [{ id: "smollm2" }] })""", [via, llama])
    page.evaluate("() => hearth.chat.newChat()")
    page.select_option("#model-select", f"@{via}/{MODEL_ALIAS}")
    page.evaluate("() => Object.assign(hearth.chat.current.params, { temperature: 0, max_tokens: 64 })")
    page.fill("#prompt", QUESTION)
    page.press("#prompt", "Enter")
    page.wait_for_function("""() => { const m = hearth.chat.current.messages.at(-1);
        return hearth.chat.generating === null && m?.role === "assistant" && m.finish; }""", timeout=180_000)
    return page.evaluate("() => hearth.chat.current.messages.at(-1).stats")


def relay_memory(url: str, pid: int) -> dict:
    with serving(Firehose) as firehose:
        envelope = {"url": f"{firehose}/v1/chat/completions", "method": "POST",
                    "headers": {"Content-Type": "application/json"}, "body": "{}"}
        before = vm_hwm(pid)
        received = 0
        with httpx.stream("POST", url + "/relay", content=json.dumps(envelope), timeout=300,
                          headers={"Origin": url, "X-Hearth-Token": page_token(url)}) as answer:
            for chunk in answer.iter_raw():
                received += len(chunk)
    return {"streamed_bytes": received, "peak_rss_before": before, "peak_rss_after": vm_hwm(pid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch, llamacpp_server(packaged_gguf()) as llama:
        hearth, url = hearth_serve(Path(scratch))
        try:
            runs: dict[str, list[dict]] = {"direct": [], "relay": []}
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(base_url=url)
                page.add_init_script("localStorage.setItem('hearth.autoTitles', 'off')")
                page.goto("/")
                page.wait_for_selector("html[data-hearth=ready]")
                reply_stats(page, "direct", llama)  # warm llama.cpp's prompt cache and the worker
                for _ in range(args.rounds):
                    for via in ("direct", "relay"):
                        runs[via].append(reply_stats(page, via, llama))
                browser.close()
            memory = relay_memory(url, hearth.pid)
        finally:
            hearth.terminate()
            hearth.wait(timeout=10)
    summary = {via: {"first_token_ms_median": statistics.median(r["firstTokenMs"] for r in rs),
                     "decode_tokens_per_s_median": statistics.median(r["decode"] for r in rs),
                     "rounds": rs} for via, rs in runs.items()}
    added = summary["relay"]["first_token_ms_median"] - summary["direct"]["first_token_ms_median"]
    ratio = summary["relay"]["decode_tokens_per_s_median"] / summary["direct"]["decode_tokens_per_s_median"]
    result = {"peer": "llama.cpp server (llama-cpp-python 0.3.36), SmolLM2-135M-Instruct Q4_1", "rounds": args.rounds,
              **summary, "relay_adds_first_token_ms": added, "relay_decode_ratio": ratio, "relay_memory": memory}
    out = ROOT / ".bench" / "providers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    grew = (memory["peak_rss_after"] - memory["peak_rss_before"]) / 2**20
    print(f"first token: direct {summary['direct']['first_token_ms_median']:.0f} ms, relay "
          f"{summary['relay']['first_token_ms_median']:.0f} ms (relay adds {added:+.0f} ms)")
    print(f"decode: direct {summary['direct']['decode_tokens_per_s_median']:.1f} tok/s, relay "
          f"{summary['relay']['decode_tokens_per_s_median']:.1f} tok/s (ratio {ratio:.2f}, estimated from characters)")
    print(f"relay peak RSS over a {memory['streamed_bytes'] / 2**20:.0f} MiB reply: grew {grew:.1f} MiB "
          f"(from {memory['peak_rss_before'] / 2**20:.0f} MiB)")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
