#!/usr/bin/env python3
"""Benchmark a long reply rendering while it streams: the incremental renderer beside a full render per frame.

A 20,000-token reply (about 80,000 characters, 30 code blocks in a dozen languages, lists, tables) is fed
to the chat page's markdown at a steady rate of a few tokens a frame, in headless Chromium against a
live Hearth, twice in one run:
- incremental: createReplyRenderer() (static/js/reply-renderer.js), what the chat uses;
- naive: renderReply() of the whole text once a frame (how chat-ui.js rendered a streaming reply);
and first a baseline that renders nothing, for how long the machine alone makes frames.
Each page is warmed first (the reply rendered once off screen, every grammar compiled: a page after
its first reply). Figures per approach: its rendering work in each frame (every animation-frame
callback it asked for, timed), the frames themselves (requestAnimationFrame deltas), long tasks
(PerformanceObserver 'longtask'), the final render and the whole run; and naive / incremental ratios.
Frames are wall-clock: on a busy machine other processes lengthen them, so the load average is kept
too. Printed and saved as JSON (.bench/render.json by default)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "render.json"
CHARS_PER_TOKEN = 4
FRAME_BUDGET_MS = 50  # the aim: no frame longer than this while a reply streams
STYLES = "/static/css/markdown.css"
# One language per code block, in turn; "" is a block without one (highlight.js guesses).
LANGUAGES = ("python", "javascript", "bash", "json", "typescript", "rust", "go", "sql", "", "yaml", "css",
             "java", "cpp", "html")
CODE = {
    "python": 'def mean(values: list[float]) -> float:\n    """The average of values."""\n'
              "    if not values:\n        raise ValueError('no values')  # say what is wrong\n"
              "    return sum(values) / len(values)\n\n",
    "javascript": "export async function load(url, { signal } = {}) {\n  const response = await fetch(url, { signal });\n"
                  "  if (!response.ok) throw new Error(`${url} answered ${response.status}`);\n"
                  "  return response.json(); // parsed\n}\n\n",
    "bash": '#!/usr/bin/env bash\nset -euo pipefail\nfor file in "$@"; do\n  echo "checking $file"\n'
            '  grep -c "TODO" "$file" || true\ndone\n\n',
    "json": '{\n  "name": "hearth",\n  "version": 7,\n  "models": ["SmolLM2-135M", "Tiny-Llama"],\n'
            '  "offline": true,\n  "ratio": 0.75\n}\n',
    "typescript": "interface Message {\n  role: 'user' | 'assistant';\n  content: string;\n}\n"
                  "export function last(messages: Message[]): Message | undefined {\n  return messages.at(-1);\n}\n\n",
    "rust": "fn main() {\n    let words: Vec<&str> = \"a b c\".split(' ').collect();\n"
            "    for (index, word) in words.iter().enumerate() {\n        println!(\"{index}: {word}\");\n    }\n}\n\n",
    "go": "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n"
          "\t\tfmt.Printf(\"step %d\\n\", i)\n\t}\n}\n\n",
    "sql": "SELECT c.id, c.title, count(m.id) AS messages\nFROM conversations AS c\n"
           "LEFT JOIN messages AS m ON m.conversation_id = c.id\nWHERE c.updated_at > now() - interval '7 days'\n"
           "GROUP BY c.id\nORDER BY messages DESC;\n\n",
    "": "$ hearth serve\nServing Hearth on http://127.0.0.1:8000\nModels directory: ~/.local/share/hearth/models\n"
        "Press Ctrl+C to stop.\n\n",
    "yaml": "services:\n  hearth:\n    image: hearth:latest\n    ports:\n      - \"8000:8000\"\n"
            "    environment:\n      HEARTH_MODELS: /models\n\n",
    "css": ".message {\n  display: grid;\n  gap: 0.5rem;\n  padding: 0.75rem 1rem;\n}\n"
           ".message[data-role=\"user\"] { background: var(--panel); }\n\n",
    "java": "public final class Greeter {\n    private final String name;\n"
            "    public Greeter(String name) { this.name = name; }\n"
            "    public String greet() { return \"Hello, \" + name + \"!\"; }\n}\n\n",
    "cpp": "#include <vector>\n#include <numeric>\n\nint total(const std::vector<int>& xs) {\n"
           "    return std::accumulate(xs.begin(), xs.end(), 0);\n}\n\n",
    "html": "<section class=\"card\">\n  <h2>Title</h2>\n  <p>Some <em>text</em> and a <a href=\"/x\">link</a>.</p>\n"
            "</section>\n\n",
}
PARAGRAPH = ("The renderer keeps every finished block and only redraws the last one, so a **long reply** stays "
             "responsive; `inline code`, *emphasis* and [links](https://example.org/docs) render as they arrive. ")
TABLE = ("| Approach | Work per frame | Longest frame |\n|:--|:--|--:|\n| naive | the whole reply | grows |\n"
         "| incremental | the last block | flat |\n\n")
# Feeds the reply to one approach at `charsPerMs`, in whole tokens, on a requestAnimationFrame loop, and
# reports that approach's frames, its own rendering work per frame (each animation-frame callback it
# asked for, timed) and the page's long tasks. The page was warmed by WARM_UP.
STREAM = """async ({ text, mode, charsPerMs, tokenChars, budget }) => {
  const { createReplyRenderer, renderReply } = await import("/static/js/reply-renderer.js");
  const nextFrame = window.requestAnimationFrame.bind(window);
  const work = [];
  window.requestAnimationFrame = (callback) => nextFrame((now) => {
    const started = performance.now();
    callback(now);
    work.push(performance.now() - started);
  });
  const target = document.createElement("div");
  target.className = "message-body";
  (document.getElementById("transcript") ?? document.body).append(target);
  const naive = (body) => {  // chat-ui.js's throttle: the latest text, rendered whole, once a frame
    let latest = null;
    return {
      update(text) {
        const scheduled = latest !== null;
        latest = text;
        if (scheduled) return;
        requestAnimationFrame(() => { renderReply(body, latest); latest = null; });
      },
      finish(text) { renderReply(body, text); },
    };
  };
  // "baseline" renders nothing: what the machine alone does to frames (other processes, the compositor).
  const views = { incremental: () => createReplyRenderer(target), naive: () => naive(target),
                  baseline: () => ({ update() {}, finish() {} }) };
  const view = views[mode]();
  const longTasks = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longTasks.push(entry.duration);
  });
  observer.observe({ type: "longtask" });
  const frames = [];
  const start = performance.now();
  await new Promise((resolve) => {
    let previous = start;
    const tick = (now) => {
      frames.push(now - previous);
      previous = now;
      const tokens = Math.floor(((now - start) * charsPerMs) / tokenChars);
      const length = Math.min(text.length, tokens * tokenChars);
      view.update(text.slice(0, length));
      if (length < text.length) nextFrame(tick);
      else resolve();
    };
    nextFrame(tick);
  });
  const finishStart = performance.now();
  view.finish(text);
  const finishMs = performance.now() - finishStart;
  await new Promise((resolve) => setTimeout(resolve, 200));  // long-task entries arrive late
  observer.disconnect();
  window.requestAnimationFrame = nextFrame;
  const shown = target.querySelectorAll(".code-block").length;
  target.remove();
  const worst = (values) => [...values].sort((a, b) => b - a);
  const sortedFrames = worst(frames);
  const sortedWork = worst(work);
  const median = (sorted) => sorted[Math.floor(sorted.length / 2)] ?? 0;
  return {
    frames: frames.length, longest_frame_ms: sortedFrames[0], median_frame_ms: median(sortedFrames),
    p99_frame_ms: sortedFrames[Math.floor(frames.length / 100)],
    frames_over_budget: frames.filter((ms) => ms > budget).length,
    renders: work.length, longest_render_ms: sortedWork[0] ?? 0, median_render_ms: median(sortedWork),
    p99_render_ms: sortedWork[Math.floor(work.length / 100)] ?? 0,
    render_total_ms: work.reduce((sum, ms) => sum + ms, 0), renders_over_budget: work.filter((ms) => ms > budget).length,
    long_tasks: longTasks.length, longest_task_ms: Math.max(0, ...longTasks),
    long_task_total_ms: longTasks.reduce((sum, ms) => sum + ms, 0),
    finish_ms: finishMs, total_ms: performance.now() - start, code_blocks_shown: shown,
  };
}"""
# The replies' stylesheet (until base.html links it); the whole reply rendered once off screen, and
# highlight.js's grammars compiled, as they are on a page after its first reply.
WARM_UP = """async ({ text, styles }) => {
  if (!document.querySelector(`link[href="${styles}"]`)) {
    const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href: styles });
    document.head.append(link);
    await new Promise((resolve) => { link.onload = resolve; link.onerror = resolve; });
  }
  const { createReplyRenderer } = await import("/static/js/reply-renderer.js");
  createReplyRenderer(document.createElement("div")).finish(text);
  await new Promise((resolve) => setTimeout(resolve, 3000));
}"""


def build_reply(tokens: int, code_blocks: int) -> str:
    """A reply of about `tokens` tokens (CHARS_PER_TOKEN each) with `code_blocks` code blocks spread through it."""
    blocks = [_code_block(index) for index in range(code_blocks)]
    # Sections end on a whole sentence, so each is given half a paragraph more than its share.
    prose = max(0, (tokens * CHARS_PER_TOKEN - sum(map(len, blocks))) // (code_blocks + 1) + len(PARAGRAPH) // 2)
    return "".join(_section(index, prose) + (blocks[index] if index < code_blocks else "")
                   for index in range(code_blocks + 1))


def _code_block(index: int) -> str:
    language = LANGUAGES[index % len(LANGUAGES)]
    return f"```{language}\n{(CODE[language] * 5).rstrip()}\n```\n\n"


def _section(index: int, size: int) -> str:
    """A heading and about `size` characters of paragraphs and lists (a table in every tenth)."""
    text = f"## Step {index + 1}\n\n" + (TABLE if index % 10 == 5 else "")
    filler = (PARAGRAPH * 3 + "\n\n- first point, with `code`\n- second point, **bold**\n\n") * (size // 400 + 1)
    return text + filler[: max(0, size - len(text))].rsplit(". ", 1)[0] + ".\n\n"


def measure(page: Any, url: str, text: str, mode: str, tokens_per_second: float) -> dict[str, Any]:
    """One approach on a freshly loaded, warmed chat page."""
    from tests.browser.conftest import READY

    page.goto(url)
    page.wait_for_selector(READY)
    page.evaluate(WARM_UP, {"text": text, "styles": STYLES})
    chars_per_ms = tokens_per_second * CHARS_PER_TOKEN / 1000
    return page.evaluate(STREAM, {"text": text, "mode": mode, "charsPerMs": chars_per_ms,
                                  "tokenChars": CHARS_PER_TOKEN, "budget": FRAME_BUDGET_MS})


def ratios(naive: dict[str, Any], incremental: dict[str, Any]) -> dict[str, float | None]:
    """naive / incremental for the figures where smaller is better."""
    keys = ("median_render_ms", "p99_render_ms", "longest_render_ms", "render_total_ms", "p99_frame_ms",
            "longest_frame_ms", "long_task_total_ms", "finish_ms")
    return {key: (naive[key] / incremental[key] if incremental[key] else None) for key in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="reply length in tokens (default 20000)")
    parser.add_argument("--code-blocks", type=int, default=30, help="code blocks in the reply (default 30)")
    parser.add_argument("--tokens-per-frame", type=float, default=4,
                        help="streaming rate in tokens per 60 Hz frame (default 4, i.e. 240 tokens/s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)

    from tests.browser.chromium import chromium_page
    from tests.conftest import LiveServer
    from tests.fakemodel import write_fake_model
    from webapp.settings import Settings

    text = build_reply(args.tokens, args.code_blocks)
    tokens_per_second = args.tokens_per_frame * 60
    report: dict[str, Any] = {
        "reply": {"characters": len(text), "tokens": len(text) // CHARS_PER_TOKEN, "code_blocks": args.code_blocks},
        "tokens_per_second": tokens_per_second,
        "frame_budget_ms": FRAME_BUDGET_MS,
        # Frames are wall-clock time: on a busy machine other processes lengthen them; renders less so.
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average_before": os.getloadavg()},
    }
    with tempfile.TemporaryDirectory(prefix="hearth-bench-render-") as scratch:
        models = Path(scratch) / "models"
        write_fake_model(models)
        settings = Settings(data_dir=Path(scratch) / "data", models_dir_override=models)
        with LiveServer(settings) as server, chromium_page() as page:
            report["chromium"] = page.context.browser.version
            for mode in ("baseline", "incremental", "naive"):
                print(f"streaming {report['reply']['tokens']} tokens, {mode} …", file=sys.stderr)
                report[mode] = measure(page, server.url + "/", text, mode, tokens_per_second)
    report["naive_over_incremental"] = ratios(report["naive"], report["incremental"])
    report["incremental_within_budget"] = {
        "renders": report["incremental"]["longest_render_ms"] <= FRAME_BUDGET_MS,
        "frames": report["incremental"]["longest_frame_ms"] <= FRAME_BUDGET_MS,
    }
    report["machine"]["load_average_after"] = os.getloadavg()

    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
