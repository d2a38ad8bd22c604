#!/usr/bin/env python3
"""Benchmark model downloads into the browser: through the service worker's resilient fetch (retry and
Range resume, static/js/resilient-fetch.js) beside the plain fetch WebLLM does without it, in one run.

The built-in model's files (config, tokenizer, tensor-cache.json, every shard, the library) are
fetched from a Hearth on loopback into the Cache API with Cache.add, four at a time as WebLLM does,
in headless Chromium: once in a profile whose service worker handles them ("resilient") and once in a
profile with service workers blocked ("plain"), alternating for --rounds rounds. Figures: MB/s
(median), the page's longest main-thread task (PerformanceObserver 'longtask'; 0 when none passed
50 ms), and resilient / plain throughput. Aim: resilience costs under 5% and never blocks the page
50 ms. Printed and saved as JSON (.bench/downloads.json by default). Run after scripts/setup:
    .venv/bin/python scripts/bench_downloads.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "downloads.json"
PARALLEL = 4  # WebLLM's tensor-cache downloads run four at a time
# In the page: download every URL into a fresh cache, PARALLEL at a time; the longest task meanwhile.
DOWNLOAD = """async ({ urls, parallel }) => {
  let longest = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longest = Math.max(longest, entry.duration);
  });
  observer.observe({ type: "longtask", buffered: false });
  await caches.delete("bench");
  const cache = await caches.open("bench");
  const queue = [...urls];
  const start = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (queue.length) await cache.add(queue.shift());
  }));
  const seconds = (performance.now() - start) / 1000;
  let bytes = 0;
  for (const request of await cache.keys()) bytes += (await (await cache.match(request)).blob()).size;
  await new Promise((resolve) => setTimeout(resolve, 100));  // let the last long task be reported
  observer.disconnect();
  await caches.delete("bench");
  return { seconds, bytes, longest_task_ms: longest };
}"""


def model_urls(base: str, model_dir: Path, lib_url: str) -> list[str]:
    records = json.loads((model_dir / "tensor-cache.json").read_text())["records"]
    names = ["mlc-chat-config.json", "tokenizer.json", "tensor-cache.json"]
    names += sorted({record["dataPath"] for record in records})
    return [f"{base}{name}" for name in names] + [lib_url]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="downloads per way, medians [default: 3]")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file [default: {DEFAULT_OUTPUT}]"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.browser.chromium import launch
    from tests.conftest import LiveServer
    from webapp import default_model
    from webapp.settings import Settings

    models, _key, _compiled = default_model.ensure_compiled(print)
    report: dict[str, Any] = {
        "machine": platform.platform(), "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "model": default_model.MODEL_ID, "parallel": PARALLEL, "rounds": args.rounds,
    }  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {"resilient": [], "plain": []}
    with (
        tempfile.TemporaryDirectory(prefix="hearth-bench-data-") as data,
        LiveServer(Settings(data_dir=Path(data), models_dir_override=models)) as server,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        index = json.loads(urlopen_text(f"{server.url}/models/index.json"))
        entry = next(model for model in index["models"] if model["id"] == default_model.MODEL_ID)
        urls = model_urls(entry["model_url"].rstrip("/") + "/", models / default_model.MODEL_ID, entry["model_lib_url"])
        pages = {}
        for way, workers in (("resilient", "allow"), ("plain", "block")):
            context = browser.new_context(base_url=server.url, service_workers=workers)
            page = context.new_page()
            page.goto("/")
            page.wait_for_selector("html[data-hearth=ready]")
            if way == "resilient":
                page.wait_for_function("navigator.serviceWorker.ready.then(() => Boolean(navigator.serviceWorker.controller))")
            pages[way] = page
        for _ in range(args.rounds):
            for way, page in pages.items():
                runs[way].append(page.evaluate(DOWNLOAD, {"urls": urls, "parallel": PARALLEL}))
        browser.close()
    for way, results in runs.items():
        report[way] = {
            "mb_per_s": statistics.median(r["bytes"] / r["seconds"] / 1e6 for r in results),
            "bytes": results[0]["bytes"],
            "longest_task_ms": max(r["longest_task_ms"] for r in results),
            "runs": results,
        }
    report["ratio_resilient_over_plain"] = report["resilient"]["mb_per_s"] / report["plain"]["mb_per_s"]
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.output}")
    return 0


def urlopen_text(url: str) -> str:
    from urllib.request import urlopen

    with urlopen(url) as response:  # noqa: S310 - loopback, our own server
        return response.read().decode()


if __name__ == "__main__":
    raise SystemExit(main())
