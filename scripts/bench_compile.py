#!/usr/bin/env python3
"""Measure Hearth's compiler: runtime build, compile + link, library size, weight conversion, and the
tiny model's decode speed and WebGPU dispatches per token in WebLLM (Chromium, SwiftShader).

Each quantization is compiled fresh (no cache) side by side in one run, for the tiny Llama, and so is
the tiny model of every other family (tests/tinycheckpoint.py FAMILIES) at q4f32_1, so each family has
a baseline. Weight conversion is timed on a random checkpoint shaped like SmolLM2-135M (30 layers,
hidden 576, vocab 49152), since the tiny test model's 0.1 MB says nothing about throughput.
Figures are printed and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "bench_compile.json"
FAMILY_QUANTIZATION = "q4f32_1"  # each family beside the tiny Llama's q4f32_1 figures
PROMPT = "The hearth is"
# Counts every compute dispatch the page makes (WebLLM's tvmjs records one per kernel launch).
COUNT_DISPATCHES = """
(() => {
  const proto = GPUComputePassEncoder.prototype;
  const dispatch = proto.dispatchWorkgroups;
  globalThis.hearthDispatches = 0;
  proto.dispatchWorkgroups = function (...args) {
    globalThis.hearthDispatches += 1;
    return dispatch.apply(this, args);
  };
})();
"""
# Decode `tokens` and `tokens + extra` tokens greedily: the difference in dispatches over `extra`
# is the cost of one more decoded token (forward pass and sampling), free of prefill and set-up.
MEASURE = """
async ({ origin, modelId, prompt, tokens, extra }) => {
  const webllm = await import(`${origin}/static/vendor/web-llm/index.js`);
  const appConfig = { model_list: [{
    model: `${origin}/models/${modelId}/resolve/main/`, model_id: modelId, model_lib: `${origin}/libs/${modelId}.wasm`,
  }] };
  const engine = new webllm.MLCEngine({ appConfig });
  const loadStart = performance.now();
  await engine.reload(modelId);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const run = async (maxTokens) => {
    const before = globalThis.hearthDispatches;
    const reply = await engine.completions.create({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true });
    return { dispatches: globalThis.hearthDispatches - before, usage: reply.usage };
  };
  await run(4);  // warm-up: shader pipelines, buffers
  const short = await run(tokens);
  const long = await run(tokens + extra);
  await engine.unload();
  return {
    loadSeconds,
    decodeTokensPerSecond: long.usage.extra.decode_tokens_per_s,
    prefillTokensPerSecond: long.usage.extra.prefill_tokens_per_s,
    dispatchesPerToken: (long.dispatches - short.dispatches) / extra,
    dispatchesPerRequest: long.dispatches,
  };
}
"""


def measure_runtime(rebuild: bool) -> dict[str, Any]:
    """Runtime bitcode build time: a fresh build in a temporary cache, or the cached build's record."""
    import os

    from webapp.compile import runtime

    if rebuild:
        with tempfile.TemporaryDirectory(prefix="hearth-bench-runtime-") as cache:
            previous = os.environ.get(runtime.CACHE_DIR_ENV)
            os.environ[runtime.CACHE_DIR_ENV] = cache
            try:
                start = time.monotonic()
                home = runtime.ensure_runtime(print)
                seconds = time.monotonic() - start
                per_file = _per_file_seconds(home)
            finally:
                if previous is None:
                    os.environ.pop(runtime.CACHE_DIR_ENV)
                else:
                    os.environ[runtime.CACHE_DIR_ENV] = previous
        return {"seconds": seconds, "fresh": True, "per_file": per_file}
    per_file = _per_file_seconds(runtime.ensure_runtime(print))
    # The files compile in parallel (one per core), so the longest one is about the build's wall time.
    return {"seconds": max(per_file.values()), "fresh": False, "per_file": per_file, "note": "cached build's manifest"}


def _per_file_seconds(home: Path) -> dict[str, float]:
    from webapp.compile.runtime import MANIFEST_NAME

    manifest = json.loads((home / MANIFEST_NAME).read_text())
    return {name: entry["seconds"] for name, entry in manifest["libraries"].items()}


def compile_tiny(quantization: str, models: Path, family: str = "llama") -> dict[str, Any]:
    """Compile a family's tiny test checkpoint from scratch into `models`; return its figures."""
    from tests.compiled import model_id
    from tests.tinycheckpoint import FAMILIES, write_tiny_checkpoint
    from webapp.compile.pipeline import compile_model

    with tempfile.TemporaryDirectory(prefix="hearth-bench-ckpt-") as scratch:
        checkpoint = write_tiny_checkpoint(Path(scratch) / f"tiny-{family}", **FAMILIES[family])
        start = time.monotonic()
        result = compile_model(checkpoint, quantization, models / model_id(quantization, family), progress=print)
        total = time.monotonic() - start
    return {
        "compile_s": result.timings["compile"],
        "link_s": result.timings["link"],
        "compile_and_link_s": result.timings["compile"] + result.timings["link"],
        "total_s": total,
        "library_bytes": result.lib_bytes,
        "kernels": result.kernels,
    }


def convert_smollm_shaped(quantization: str) -> dict[str, Any]:
    """Weight conversion throughput on a random SmolLM2-135M-shaped checkpoint (bf16 safetensors)."""
    from tests.tinycheckpoint import write_tiny_checkpoint
    from webapp.compile.pipeline import read_checkpoint
    from webapp.compile.quantize import get_quantization
    from webapp.compile.weights import convert_weights

    shape = {
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
        "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152, "tie_word_embeddings": True,
    }  # fmt: skip
    spec = get_quantization(quantization)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-convert-") as scratch:
        checkpoint = read_checkpoint(write_tiny_checkpoint(Path(scratch) / "ckpt", **shape), spec)
        out = Path(scratch) / "out"
        out.mkdir()
        stats = convert_weights(checkpoint.loader.load, checkpoint.model.params, spec, out, print)
    return {
        "output_mb": stats.nbytes / 1e6,
        "source_float32_mb": stats.source_bytes / 1e6,
        "seconds": stats.seconds,
        "output_mb_per_s": stats.megabytes_per_second,
        "source_mb_per_s": stats.source_bytes / 1e6 / stats.seconds,
    }


def browser_figures(models: Path, model_ids: list[str], tokens: int, extra: int) -> dict[str, Any]:
    """Load each compiled model in WebLLM through the real app and time greedy decoding."""
    from tests.browser.chromium import chromium_page
    from tests.conftest import LiveServer
    from webapp.settings import Settings

    figures = {}
    with tempfile.TemporaryDirectory(prefix="hearth-bench-data-") as data:
        settings = Settings(data_dir=Path(data), models_dir_override=models)
        with LiveServer(settings) as server:
            for model in model_ids:
                with chromium_page(init_script=COUNT_DISPATCHES) as page:
                    page.goto(f"{server.url}/library")
                    figures[model] = page.evaluate(
                        MEASURE,
                        {"origin": server.url, "modelId": model, "prompt": PROMPT, "tokens": tokens, "extra": extra},
                    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-q", "--quantization", action="append", help="repeatable [default: q0f32 and q4f32_1]")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file [default: {DEFAULT_OUTPUT}]"
    )
    parser.add_argument("--tokens", type=int, default=32, help="decode length of the timed request [default: 32]")
    parser.add_argument(
        "--extra", type=int, default=16, help="tokens added to count dispatches per token [default: 16]"
    )
    parser.add_argument("-f", "--family", action="append",
                        help="repeatable: families other than llama, compiled with q4f32_1 [default: all of them]")
    parser.add_argument("--rebuild-runtime", action="store_true", help="time a fresh runtime build (minutes)")
    parser.add_argument("--no-browser", action="store_true", help="skip the WebLLM measurements")
    args = parser.parse_args()
    from tests.compiled import model_id
    from tests.tinycheckpoint import FAMILIES

    quantizations = args.quantization or ["q0f32", "q4f32_1"]
    families = args.family or [name for name in FAMILIES if name != "llama"]

    report: dict[str, Any] = {"machine": platform.platform(), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    report["runtime_build"] = measure_runtime(args.rebuild_runtime)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-models-") as scratch:
        models = Path(scratch) / "models"
        report["compile"] = {q: compile_tiny(q, models) for q in quantizations}
        report["compile_per_family"] = {f: compile_tiny(FAMILY_QUANTIZATION, models, f) for f in families}
        report["weight_conversion_smollm2_135m_shape"] = {q: convert_smollm_shaped(q) for q in quantizations}
        if not args.no_browser:
            ids = [model_id(q) for q in quantizations] + [model_id(FAMILY_QUANTIZATION, f) for f in families]
            report["webllm_tiny_model"] = browser_figures(models, ids, args.tokens, args.extra)

    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
