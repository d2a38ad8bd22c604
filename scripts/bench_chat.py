#!/usr/bin/env python3
"""Benchmark the chat app with many saved conversations, in headless Chromium against a live Hearth.

In one run, for an empty browser profile and for one holding N conversations of M messages each
(default 200 × 50, written into IndexedDB in the page's own record format): the time from navigation
to the page being interactive (data-hearth="ready": the catalogue listed, every conversation read and
checked, the sidebar drawn), and the time to switch between two long conversations (click in the
sidebar → transcript drawn, measured in the page). The ratio is full / empty. Figures are printed and
saved as JSON. Aim: interactive under 1 s, switching under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "bench_chat.json"
# Writes the conversations straight into IndexedDB (the page's schema), then the page is reloaded.
SEED = """async ({ count, messages }) => {
  const open = await new Promise((resolve, reject) => {
    const request = indexedDB.open("hearth");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const text = "The hearth is the heart of the home, where the fire is kept and the stories are told. ".repeat(4);
  const tx = open.transaction("conversations", "readwrite");
  const now = Date.now();
  for (let c = 0; c < count; c += 1) {
    const list = [];
    let parent = null;
    for (let m = 0; m < messages; m += 1) {
      const role = m % 2 ? "assistant" : "user";
      const message = { id: `m-${c}-${m}`, parent, role, content: `${m}: ${text}`, time: now - (messages - m) * 1000 };
      if (role === "assistant") Object.assign(message, { model: null, finish: "stop", stopped: false, stats: null });
      list.push(message);
      parent = message.id;
    }
    tx.objectStore("conversations").put({ format: 1, id: `c-${c}`, title: `Conversation ${c}`, titleSource: "user",
      pinned: false, created: now - c * 60000, updated: now - c * 60000, model: null, systemPrompt: "", params: {},
      messages: list, leaf: parent });
  }
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  open.close();
}"""
SWITCH = """async ({ ids, rounds }) => {
  const times = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const id of ids) {
      const start = performance.now();
      document.querySelector(`#conversation-list [data-id="${id}"] [data-action=open]`).click();
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
      times.push(performance.now() - start);
    }
  }
  return times;
}"""


def page_figures(page: Any, url: str, rounds: int) -> dict[str, Any]:
    loads = []
    for _ in range(rounds):
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("html[data-hearth=ready]")
        loads.append(time.perf_counter() - start)
    count = page.locator("#conversation-list .conversation-item").count()
    figures: dict[str, Any] = {"interactive_s": statistics.median(loads), "loads_s": loads, "conversations": count}
    if count >= 2:
        switches = page.evaluate(SWITCH, {"ids": ["c-0", "c-1"], "rounds": rounds * 5})
        figures.update(switch_ms=statistics.median(switches), switch_max_ms=max(switches))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    from tests.browser.chromium import chromium_page
    from tests.conftest import LiveServer
    from tests.fakemodel import write_fake_model
    from webapp.settings import Settings

    with tempfile.TemporaryDirectory() as data, chromium_page() as page:
        models = Path(data) / "models"
        write_fake_model(models)
        with LiveServer(Settings(data_dir=Path(data) / "data", models_dir_override=models)) as server:
            empty = page_figures(page, server.url + "/", args.rounds)
            page.evaluate(SEED, {"count": args.conversations, "messages": args.messages})
            full = page_figures(page, server.url + "/", args.rounds)
    result = {
        "conversations": args.conversations, "messages_each": args.messages, "empty": empty, "full": full,
        "interactive_ratio": full["interactive_s"] / empty["interactive_s"],
    }
    print(f"page interactive, empty profile:           {empty['interactive_s'] * 1000:.0f} ms")
    print(f"page interactive, {args.conversations} × {args.messages} messages:     "
          f"{full['interactive_s'] * 1000:.0f} ms  (×{result['interactive_ratio']:.2f})")
    print(f"switch between two conversations:          {full['switch_ms']:.1f} ms median, "
          f"{full['switch_max_ms']:.1f} ms worst")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
