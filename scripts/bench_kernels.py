#!/usr/bin/env python3
"""Where a model's WebGPU time goes: time per kernel for a prompt's prefill and per decoded token.

Loads a model (the built-in one by default) in the unmodified WebLLM engine in headless Chromium
(SwiftShader unless --gpu), then turns on tvmjs's own debug mode (`debugLogFinish`), which submits
each kernel on its own and logs when the queue has finished it. The gap between one kernel's finish
and the previous one's is that kernel's time (the CPU queues kernels far faster than SwiftShader
runs them, so the queue never idles). One request of 1 token gives the prefill's kernels; a second
of 1 + --tokens tokens, minus the first, gives the decode's per token. Figures are printed and saved
as JSON; they are for finding the slow kernels, not for quoting as speeds (each kernel is its own
submit here, which the engine does not do).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "bench_kernels.json"
PROMPT = "What is the capital of France? Answer in one word."
FINISH_MARK = "[Debug] finish shader"
RUN = """
async ({ origin, modelId, prompt, tokens }) => {
  const webllm = await import(`${origin}/static/vendor/web-llm/index.js`);
  const appConfig = { model_list: [{ model: `${origin}/models/${modelId}/resolve/main/`, model_id: modelId,
      model_lib: `${origin}/libs/${modelId}.wasm` }] };
  const engine = new webllm.MLCEngine({ appConfig });
  await engine.reload(modelId);
  const ask = (maxTokens) => engine.chat.completions.create({
    messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, temperature: 0, ignore_eos: true });
  await ask(2);  // compiles the shader pipelines and warms the buffers
  const finished = [];
  const log = console.log;
  console.log = (...args) => {
    const text = String(args[0]);
    const at = text.indexOf(%(mark)s);
    if (at >= 0) finished.push([performance.now(), text.slice(at + %(mark)s.length)]);
    else log.apply(console, args);
  };
  const gpu = engine.loadedModelIdToPipeline.get(modelId).tvm.lib.webGPUContext;
  gpu.debugLogFinish = true;
  const phases = {};
  for (const [name, maxTokens] of [["first", 1], ["more", 1 + tokens]]) {
    await engine.resetChat();
    const start = performance.now();
    finished.length = 0;
    const reply = await ask(maxTokens);
    phases[name] = { start, finished: finished.slice(), usage: reply.usage };
  }
  gpu.debugLogFinish = false;
  console.log = log;
  await engine.unload();
  return phases;
}
""" % {"mark": json.dumps(FINISH_MARK)}


def kernel_times(phase: dict[str, Any]) -> dict[str, list[float]]:
    """Milliseconds per kernel name, one entry per launch: the gap since the previous finish."""
    times: dict[str, list[float]] = defaultdict(list)
    previous = phase["start"]
    for at, name in phase["finished"]:
        times[name].append(at - previous)
        previous = at
    return times


def summary(first: dict[str, list[float]], more: dict[str, list[float]], tokens: int) -> dict[str, Any]:
    """Prefill ms per kernel (the one-token request), decode ms per token per kernel (the difference)."""
    prefill = {name: {"ms": sum(t), "launches": len(t)} for name, t in first.items()}
    decode = {}
    for name in more:
        extra_ms = sum(more[name]) - sum(first.get(name, []))
        extra_launches = len(more[name]) - len(first.get(name, []))
        if extra_launches:
            decode[name] = {"ms_per_token": extra_ms / tokens, "launches_per_token": extra_launches / tokens}
    return {
        "prefill_ms": sum(k["ms"] for k in prefill.values()),
        "prefill": dict(sorted(prefill.items(), key=lambda kv: -kv[1]["ms"])),
        "decode_ms_per_token": sum(k["ms_per_token"] for k in decode.values()),
        "decode_launches_per_token": sum(k["launches_per_token"] for k in decode.values()),
        "decode": dict(sorted(decode.items(), key=lambda kv: -kv[1]["ms_per_token"])),
    }


def print_table(title: str, rows: dict[str, dict[str, float]], key: str, total: float, top: int) -> None:
    print(f"{title}: {total:.0f} ms")
    for name, row in list(rows.items())[:top]:
        launches = row.get("launches", row.get("launches_per_token"))
        print(f"  {row[key]:9.1f} ms  {100 * row[key] / total:5.1f}%  x{launches:<5g} {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, help="MODELS_DIR holding <id>/ and libs/<id>.wasm "
                        "[default: the built-in model's cached build]")
    parser.add_argument("--model-id", help="the model in --models-dir [default: the built-in model's id]")
    parser.add_argument("--tokens", type=int, default=4, help="decoded tokens to average over [default: 4]")
    parser.add_argument("--top", type=int, default=15, help="kernels printed per phase [default: 15]")
    parser.add_argument("--gpu", action="store_true", help="Chromium on the real GPU (Vulkan), not SwiftShader")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file [default: {DEFAULT_OUTPUT}]"
    )
    args = parser.parse_args()

    from tests.browser.chromium import chromium_page
    from tests.conftest import LiveServer
    from webapp import default_model
    from webapp.mlc.write import write_json
    from webapp.settings import Settings

    models = args.models_dir or default_model.ensure_compiled(print)[0]
    model_id = args.model_id or default_model.MODEL_ID
    with (
        tempfile.TemporaryDirectory(prefix="hearth-bench-data-") as data,
        LiveServer(Settings(data_dir=Path(data), models_dir_override=models)) as server,
        chromium_page(gpu=args.gpu) as page,
    ):
        page.goto(f"{server.url}/library")  # the app's real headers (CSP, COEP)
        phases = page.evaluate(
            RUN, {"origin": server.url, "modelId": model_id, "prompt": PROMPT, "tokens": args.tokens}
        )
    report = summary(kernel_times(phases["first"]), kernel_times(phases["more"]), args.tokens)
    report.update(model_id=model_id, prompt_tokens=phases["first"]["usage"]["prompt_tokens"], tokens=args.tokens)
    print_table(f"prefill of {report['prompt_tokens']} tokens", report["prefill"], "ms", report["prefill_ms"], args.top)
    print_table("decode, per token", report["decode"], "ms_per_token", report["decode_ms_per_token"], args.top)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output, report)
    print(f"kernel times saved in {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
