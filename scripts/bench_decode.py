#!/usr/bin/env python3
"""Compare WebLLM's prefill and decode speed for two builds of a model in headless Chromium (SwiftShader).

Each models directory (MODELS_DIR/<id>/ plus MODELS_DIR/libs/<id>.wasm, as `hearth compile` writes
it) is served by its own Hearth server and loaded once in its own page; then the same greedy
chat request runs on each in turn, alternating which goes first, for --rounds rounds. Timings on a
small shared machine are noisy, so each figure is the median over rounds, and the two builds see
the same background load. Figures come from WebLLM's own usage report (prefill tokens/s, time per
output token). The greedy texts are compared too: a faster build must still say the same thing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "bench_decode.json"
PROMPT = "What is the capital of France?"
# Loads the model once; each call of the returned function runs one greedy chat request.
LOAD = """
async ({ origin, modelId }) => {
  const webllm = await import(`${origin}/static/vendor/web-llm/index.js`);
  const appConfig = { model_list: [{ model: `${origin}/models/${modelId}/resolve/main/`, model_id: modelId,
      model_lib: `${origin}/libs/${modelId}.wasm` }] };
  const start = performance.now();
  globalThis.hearthEngine = new webllm.MLCEngine({ appConfig });
  await globalThis.hearthEngine.reload(modelId);
  return (performance.now() - start) / 1000;
}
"""
CHAT = """
async ({ prompt, tokens }) => {
  const start = performance.now();
  const reply = await globalThis.hearthEngine.chat.completions.create({
    messages: [{ role: "user", content: prompt }], max_tokens: tokens, temperature: 0, ignore_eos: true,
  });
  return { wall_s: (performance.now() - start) / 1000, text: reply.choices[0].message.content,
           usage: reply.usage };
}
"""


def _model_id(models_dir: Path, model_id: str | None) -> str:
    if model_id:
        return model_id
    ids = [p.name for p in models_dir.iterdir() if p.is_dir() and p.name != "libs"]
    if len(ids) != 1:
        raise SystemExit(f"{models_dir} holds {len(ids)} models ({', '.join(ids)}): name one with --model-id")
    return ids[0]


def _round_figures(run: dict[str, Any]) -> dict[str, float]:
    extra = run["usage"]["extra"]
    return {
        "prefill_tokens_per_s": extra["prefill_tokens_per_s"],
        "time_to_first_token_s": extra["time_to_first_token_s"],
        "decode_s_per_token": extra["time_per_output_token_s"],
        "decode_tokens_per_s": extra["decode_tokens_per_s"],
        "wall_s": run["wall_s"],
    }


def bench(
    builds: dict[str, Path], model_id: str | None, rounds: int, tokens: int, prompt: str, gpu: bool = False
) -> dict[str, Any]:
    """Load every build, run the request `rounds` times on each (alternating order); medians per build."""
    from playwright.sync_api import sync_playwright

    from tests.browser.chromium import launch, open_page
    from tests.conftest import LiveServer
    from webapp.settings import Settings

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    result: dict[str, Any] = {"prompt": prompt, "max_tokens": tokens, "rounds": rounds, "gpu": gpu, "builds": {}}
    with ExitStack() as stack:
        # One browser (Playwright's sync API runs one per process), a page per build.
        browser = launch(stack.enter_context(sync_playwright()), gpu)
        stack.callback(browser.close)
        pages = {}
        for name, models_dir in builds.items():
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hearth-bench-")))
            server = stack.enter_context(LiveServer(Settings(data_dir=data_dir, models_dir_override=models_dir)))
            page = stack.enter_context(open_page(browser))
            page.set_default_timeout(0)
            page.goto(f"{server.url}/library")
            mid = _model_id(models_dir, model_id)
            load_s = page.evaluate(LOAD, {"origin": server.url, "modelId": mid})
            print(f"{name}: loaded {mid} from {models_dir} in {load_s:.1f} s", flush=True)
            result["builds"][name] = {"models_dir": str(models_dir), "model_id": mid, "load_s": load_s}
            pages[name] = page
        order = list(builds)
        for index in range(rounds):
            for name in order if index % 2 == 0 else reversed(order):
                run = pages[name].evaluate(CHAT, {"prompt": prompt, "tokens": tokens})
                runs[name].append(run)
                figures = _round_figures(run)
                print(f"round {index + 1} {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()), flush=True)
    for name, build_runs in runs.items():
        per_round = [_round_figures(run) for run in build_runs]
        medians = {key: statistics.median(r[key] for r in per_round) for key in per_round[0]}
        result["builds"][name].update(medians=medians, rounds=per_round, texts=sorted({r["text"] for r in build_runs}))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path, help="models directory of the baseline build")
    parser.add_argument("candidate", type=Path, help="models directory of the candidate build")
    parser.add_argument("--model-id", help="model id in both directories [default: the only one there]")
    parser.add_argument("--rounds", type=int, default=3, help="requests per build [default: 3]")
    parser.add_argument("--tokens", type=int, default=8, help="tokens to generate per request [default: 8]")
    parser.add_argument("--prompt", default=PROMPT, help=f"user message [default: {PROMPT!r}]")
    parser.add_argument("--gpu", action="store_true", help="WebGPU on the machine's GPU instead of SwiftShader")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file to write")
    args = parser.parse_args()

    started = time.time()
    result = bench({"baseline": args.baseline, "candidate": args.candidate}, args.model_id, args.rounds,
                   args.tokens, args.prompt, args.gpu)  # fmt: skip
    base, cand = (result["builds"][name]["medians"] for name in ("baseline", "candidate"))
    result["speedup"] = {
        "prefill": cand["prefill_tokens_per_s"] / base["prefill_tokens_per_s"],
        "decode": base["decode_s_per_token"] / cand["decode_s_per_token"],
    }
    texts = [result["builds"][name]["texts"] for name in ("baseline", "candidate")]
    result["same_text"] = texts[0] == texts[1]
    result["seconds"] = time.time() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    for name in ("baseline", "candidate"):
        m = result["builds"][name]["medians"]
        print(f"{name:9s} prefill {m['prefill_tokens_per_s']:.3g} tok/s, decode {m['decode_s_per_token']:.3g} s/token"
              f" ({m['decode_tokens_per_s']:.3g} tok/s), load {result['builds'][name]['load_s']:.1f} s")
    print(f"speed-up: prefill x{result['speedup']['prefill']:.2f}, decode x{result['speedup']['decode']:.2f};"
          f" same greedy text: {result['same_text']}; saved {args.output}")


if __name__ == "__main__":
    main()
