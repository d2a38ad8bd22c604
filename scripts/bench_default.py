#!/usr/bin/env python3
"""Benchmark the built-in model: WebLLM in Chromium beside llama.cpp on the same GGUF, in one run.

- Prefill and decode tokens/s of SmolLM2-135M-Instruct (Hearth's q4f32_gguf build) in the unmodified
  WebLLM engine in headless Chromium, once per library (the barrier-free "fallback" schedule set and
  the "gpu" one, webapp/compile/schedule_sets.py), with WebGPU dispatches per decoded token, and of
  llama.cpp (llama-cpp-python) running the GGUF it was built from on the same CPU, with the same
  prompt ids and the same number of greedy tokens; the ratios are WebLLM / llama.cpp.
- Time from a cached page load to the first token, through the real chat page: the page is opened
  and the model loaded once (filling the browser's caches), then the page is reloaded and timed to
  ready, to the model loaded, and to the first token of a reply.
- Compile time of the default model: the cached build's record, or a fresh compile with --recompile.

WebGPU runs on SwiftShader (the CPU) by default; --gpu runs Chromium on the machine's GPU through
Vulkan instead, so the figures compare with WebLLM's published ones. llama.cpp stays on the CPU
(the PyPI wheel is a CPU build). Figures are printed and saved as JSON.
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

DEFAULT_OUTPUT = ROOT / ".bench" / "bench_default.json"
PROMPT = "What is the capital of France? Answer in one word."
# The engine API, greedy, no penalties, a fixed number of tokens: WebLLM's own usage figures.
# Tokens added to the last request to count WebGPU dispatches per decoded token.
EXTRA_TOKENS = 4
ENGINE_RUN = """
async ({ origin, modelId, libUrl, prompt, tokens, rounds, extra }) => {
  const webllm = await import(`${origin}/static/vendor/web-llm/index.js`);
  const appConfig = { model_list: [{
    model: `${origin}/models/${modelId}/resolve/main/`, model_id: modelId, model_lib: libUrl,
  }] };
  const engine = new webllm.MLCEngine({ appConfig });
  const loadStart = performance.now();
  await engine.reload(modelId);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const ask = async (maxTokens) => {
    await engine.resetChat();
    const before = globalThis.hearthDispatches;
    const reply = await engine.chat.completions.create({
      messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, temperature: 0,
      repetition_penalty: 1.0, frequency_penalty: 0, presence_penalty: 0, ignore_eos: true,
    });
    return { ...reply.usage.extra, prompt_tokens: reply.usage.prompt_tokens, dispatches: globalThis.hearthDispatches - before,
             completion_tokens: reply.usage.completion_tokens, text: reply.choices[0].message.content };
  };
  const runs = [];
  for (let round = 0; round < rounds; round += 1) runs.push(await ask(tokens));
  const longer = await ask(tokens + extra);
  const adapter = await (await navigator.gpu.requestAdapter()).info;
  await engine.unload();
  return { loadSeconds, runs, dispatchesPerToken: (longer.dispatches - runs.at(-1).dispatches) / extra,
           adapter: adapter.architecture || adapter.vendor || adapter.description };
}
"""
# Time from the first paint of a reply's text: a MutationObserver stamps performance.now().
WATCH_FIRST_TOKEN = """() => {
  window.hearthFirstToken = null;
  new MutationObserver(() => {
    const body = document.querySelector('#transcript .message[data-role=assistant]:last-child .message-body');
    if (window.hearthFirstToken === null && body && body.textContent.trim()) window.hearthFirstToken = performance.now();
  }).observe(document.querySelector('#transcript'), { subtree: true, childList: true, characterData: true });
}"""


def llama_cpp_figures(gguf: Path, prompt_ids: list[int], tokens: int, rounds: int) -> dict[str, Any]:
    """Prefill and greedy decode of the same ids with llama.cpp on every CPU core."""
    from llama_cpp import Llama

    threads = os.cpu_count() or 1
    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    runs = []
    for _ in range(rounds):
        llm.reset()
        start = time.perf_counter()
        llm.eval(prompt_ids)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        out = []
        for _ in range(tokens):
            token = llm.sample(top_k=1, temp=0.0, top_p=1.0, min_p=0.0)
            out.append(token)
            llm.eval([token])
        decode = time.perf_counter() - start
        runs.append({"prefill_s": prefill, "decode_s": decode, "text": llm.detokenize(out).decode(errors="replace")})
    return {
        "threads": threads,
        "prefill_tokens_per_s": statistics.median(len(prompt_ids) / r["prefill_s"] for r in runs),
        "decode_tokens_per_s": statistics.median(tokens / r["decode_s"] for r in runs),
        "runs": runs,
    }


def webllm_figures(server_url: str, model_id: str, lib_url: str, tokens: int, rounds: int, gpu: bool) -> dict[str, Any]:
    """WebLLM's own prefill and decode figures for the same prompt with one library, after one warm-up
    request, and its WebGPU dispatches per decoded token."""
    from scripts.bench_compile import COUNT_DISPATCHES
    from tests.browser.chromium import chromium_page

    with chromium_page(gpu=gpu) as page:
        page.add_init_script(COUNT_DISPATCHES)
        page.goto(f"{server_url}/library")  # the app's real headers (CSP, COEP)
        result = page.evaluate(ENGINE_RUN, {
            "origin": server_url, "modelId": model_id, "libUrl": lib_url, "prompt": PROMPT, "tokens": tokens,
            "rounds": rounds + 1, "extra": EXTRA_TOKENS,
        })  # fmt: skip
    runs = result["runs"][1:]  # the first compiles shader pipelines and warms buffers
    return {
        "library": lib_url.rsplit("/", 1)[-1],
        "adapter": result["adapter"],
        "dispatches_per_token": result["dispatchesPerToken"],
        "load_s": result["loadSeconds"],
        "prompt_tokens": runs[0]["prompt_tokens"],
        "prefill_tokens_per_s": statistics.median(r["prefill_tokens_per_s"] for r in runs),
        "decode_tokens_per_s": statistics.median(r["decode_tokens_per_s"] for r in runs),
        "runs": runs,
    }


def cached_page_figures(server_url: str, gpu: bool) -> dict[str, Any]:
    """Through the chat page: load and ask once, then restart the browser on the same profile (the model
    now in its caches) and time a new chat's first token.

    Times are from the start of the second start's navigation (performance.now() in the page). A new
    chat, because the page reopens the last conversation, whose history would lengthen the prompt; a
    restarted browser, because a tab opened while another tab's WebGPU device is torn down waits seconds
    for the GPU process on SwiftShader (measured 4.9 s in requestAdapter), which would time the teardown."""
    from tests.browser.chromium import profile_page

    def load_and_ask(page: Any) -> dict[str, Any]:
        page.goto(f"{server_url}/", timeout=0)
        page.wait_for_selector("html[data-hearth=ready]", timeout=0)
        page.click("#new-chat")
        ready = page.evaluate("performance.now()")
        page.click("#load-model")
        page.wait_for_selector("#engine-status[data-state=ready]", timeout=0)
        loaded = page.evaluate("performance.now()")
        page.evaluate(WATCH_FIRST_TOKEN)
        page.fill("#prompt", PROMPT)
        page.click("#send")
        page.wait_for_function("() => window.hearthFirstToken !== null", timeout=0, polling=50)
        first = page.evaluate("window.hearthFirstToken")
        page.wait_for_selector("#transcript .message[data-role=assistant]:not([aria-busy=true])", timeout=0)
        reply = page.locator("#transcript .message[data-role=assistant] .message-body").last.inner_text()
        return {"page_ready_s": ready / 1000, "model_loaded_s": loaded / 1000, "first_token_s": first / 1000,
                "reply": reply.strip()}

    with tempfile.TemporaryDirectory(prefix="hearth-bench-profile-") as profile:
        with profile_page(Path(profile), gpu) as page:
            load_and_ask(page)  # downloads the model into the browser's caches
        with profile_page(Path(profile), gpu) as page:
            return load_and_ask(page)


def compile_figures(recompile: bool) -> dict[str, Any]:
    """The default model's compile time: the cached build's record, or a fresh compile into a temp dir."""
    from webapp import default_model
    from webapp.compile.pipeline import compile_model

    models, key, compiled_now = default_model.ensure_compiled(print)
    record = json.loads((models.parent / default_model.BUILD_RECORD).read_text())
    figures: dict[str, Any] = {"cached_build": key, "recorded": record, "compiled_in_this_run": compiled_now}
    if recompile:
        with tempfile.TemporaryDirectory(prefix="hearth-bench-compile-") as scratch:
            start = time.perf_counter()
            result = compile_model(default_model.gguf_path(), default_model.QUANTIZATION,
                                   Path(scratch) / default_model.MODEL_ID, progress=print)
            figures["fresh"] = {"seconds": time.perf_counter() - start, "steps": result.timings,
                                "lib_bytes": result.lib_bytes}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32, help="greedy tokens decoded per request [default: 32]")
    parser.add_argument("--rounds", type=int, default=3, help="timed requests per engine, medians [default: 3]")
    parser.add_argument("--gpu", action="store_true", help="Chromium on the real GPU (Vulkan), not SwiftShader")
    parser.add_argument("--recompile", action="store_true", help="also time a fresh compile (minutes)")
    parser.add_argument("--no-page", action="store_true", help="skip the chat-page first-token timing")
    parser.add_argument("--libraries", nargs="+", choices=("fallback", "gpu"), default=("fallback", "gpu"),
                        help="which of the model's libraries to run in the engine [default: both]")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file [default: {DEFAULT_OUTPUT}]"
    )
    args = parser.parse_args()

    from tests.conftest import LiveServer
    from tests.webllm import chat_prompt_ids, hosted_libraries
    from webapp import default_model
    from webapp.settings import Settings

    report: dict[str, Any] = {
        "machine": platform.platform(), "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "prompt": PROMPT, "tokens": args.tokens, "webgpu": "gpu (Vulkan)" if args.gpu else "SwiftShader (CPU)",
    }  # fmt: skip
    report["compile"] = compile_figures(args.recompile)
    models, _key, _compiled = default_model.ensure_compiled(print)
    prompt_ids = chat_prompt_ids(models / default_model.MODEL_ID, PROMPT)
    report["llama_cpp"] = llama_cpp_figures(default_model.gguf_path(), prompt_ids, args.tokens, args.rounds)
    with (
        tempfile.TemporaryDirectory(prefix="hearth-bench-data-") as data,
        LiveServer(Settings(data_dir=Path(data), models_dir_override=models)) as server,
    ):
        libraries = hosted_libraries(server.url, default_model.MODEL_ID)
        report["webllm"] = {
            schedule: webllm_figures(server.url, default_model.MODEL_ID, url, args.tokens, args.rounds, args.gpu)
            for schedule, url in libraries.items() if schedule in args.libraries
        }
        if not args.no_page:  # the library the page itself picks for this adapter
            report["chat_page"] = cached_page_figures(server.url, args.gpu)
    report["ratio_webllm_over_llama_cpp"] = {
        schedule: {phase: figures[f"{phase}_tokens_per_s"] / report["llama_cpp"][f"{phase}_tokens_per_s"]
                   for phase in ("prefill", "decode")}
        for schedule, figures in report["webllm"].items()
    }

    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
