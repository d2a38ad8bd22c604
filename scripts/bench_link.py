#!/usr/bin/env python3
"""Link one small WebGPU model library with the old and the current link profile and compare their cost.

"old" is how Hearth linked before: emcc -O3 over the runtime bitcode (wasm-ld runs LTO over all of
it, then wasm-opt -O3). "new" is `link_model_library` as it stands: the runtime's cached wasm
objects and wasm-opt -O1. Both link the same executable (a one-kernel Relax module built for
WebGPU), interleaved, `--repeat` times. CPU seconds are user + system of the emcc process tree
(getrusage of waited-for children), which a loaded machine disturbs far less than wall time.

With `--speed-rounds N` both libraries are also loaded in headless Chromium (SwiftShader WebGPU)
through WebLLM's bundled tvmjs, N times each, and a few runtime paths are timed (the minimum over
rounds is reported): a full-vocabulary top-p sample (std::sort in wasm), softmax in place,
tensor allocation through the FFI, and calls of the VM's `main` (interpreter + WebGPU dispatch).

Run from the repository root after scripts/setup:
    .venv/bin/python scripts/bench_link.py --repeat 3 --speed-rounds 5
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.compile import link  # noqa: E402 - needs the repository on sys.path
from webapp.compile.runtime import (  # noqa: E402
    EMCC_OUTPUT_TAIL_CHARS,
    MANIFEST_NAME,
    cache_dir,
    emcc_env,
    ensure_runtime,
    find_emcc,
    runtime_library_paths,
)

# The link before this profile: TVM's create_tvmjs_wasm options, -O3, against the bitcode.
OLD_FLAGS: tuple[str, ...] = ("-O3", *link.TVMJS_LINK_FLAGS)
PROFILES = ("old", "new")
Runs = dict[str, list[dict[str, float]]]  # profile -> one measurement per link

WEBLLM_BUNDLE = ROOT / "node_modules" / "@mlc-ai" / "web-llm" / "lib" / "index.js"
WEBLLM_TVMJS_BINDING = "libExports$2"  # tvmjs's module object inside WebLLM's bundle
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan",
    "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
]  # fmt: skip

# Times each path in microseconds per call (the WebGPU queue is drained before the clock stops).
SPEED_IN_PAGE = """
async ({ lib }) => {
  const { tvmjs } = await import("/tvmjs.js");
  const bytes = await (await fetch("/" + lib)).arrayBuffer();
  const r = {};
  let t = performance.now();
  const tvm = await tvmjs.instantiate(bytes, tvmjs.createPolyfillWASI(), () => {});
  r.instantiate_ms = performance.now() - t;
  const gpu = await tvmjs.detectGPUDevice();
  if (gpu === undefined) throw new Error("no WebGPU adapter");
  tvm.initWebGPU(gpu.device);
  const dev = tvm.webgpu(), cpu = tvm.cpu(), V = 49152;
  tvm.beginScope();
  const keep = (x) => tvm.detachFromCurrentScope(x);
  const vm = keep(tvm.createVirtualMachine(dev));
  await tvm.asyncLoadWebGPUPipelines(vm.getInternalModule());
  const main = keep(vm.getFunction("main"));
  const softmax = keep(tvm.getGlobalFunc("vm.builtin.apply_softmax_with_temperature"));
  const sample = keep(tvm.getGlobalFunc("vm.builtin.sample_top_p_from_prob"));
  const logits = new Float32Array(V).map((_, i) => Math.sin(i * 0.37) * 8);
  const prob = keep(tvm.empty([1, V], "float32", cpu).copyFrom(logits));
  const work = keep(tvm.empty([1, V], "float32", cpu).copyFrom(logits));
  const gx = keep(tvm.empty([7], "float32", dev)), gy = keep(tvm.empty([7], "float32", dev));
  tvm.endScope();
  softmax(prob, 1.0);
  async function timeit(name, n, body) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) { tvm.beginScope(); body(i); tvm.endScope(); }
    await dev.sync();
    r[name] = Math.min(r[name] ?? Infinity, (performance.now() - t0) / n * 1000);
  }
  for (let round = 0; round < 5; round++) {  // the minimum of 5 (the first warms V8 up) resists load
    await timeit("sort_sample_us", 60, () => sample(prob, 1.0, 0.999));
    await timeit("softmax_us", 300, () => softmax(work, 1.0));
    await timeit("tensor_alloc_us", 5000, (i) => tvm.empty([i % 500 + 1, 3], "float32", cpu));
    await timeit("vm_main_us", 2000, () => main(gx, gy));
  }
  return r;
}
"""


def scale_add_executable() -> Any:
    """The link test's one-kernel module (`main(x, y) = 2 * x + y`), built for WebGPU."""
    import tvm

    from tests.compiled import scale_add_module
    from webapp.compile.target import webgpu_tvm_target

    return tvm.compile(scale_add_module(), target=webgpu_tvm_target())


def link_old(executable: Any, output: Path, home: Path) -> None:
    """The previous link: emcc -O3 over the runtime bitcode and the executable's wasm objects."""
    emcc = find_emcc()
    bitcode = [str(p) for p in runtime_library_paths(home)]

    def fcompile(file_name: str, objects: Sequence[str], options: Sequence[str] | None = None) -> None:
        command = [emcc, *OLD_FLAGS, "-o", file_name, *bitcode, *objects, *(options or ())]
        result = subprocess.run(command, env=emcc_env(), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-EMCC_OUTPUT_TAIL_CHARS:]
            raise SystemExit(f"the old link failed:\n{tail}")

    fcompile.object_format = "o"  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as workspace:
        executable.export_library(str(output), fcompile=fcompile, workspace_dir=workspace)
    problems = link.check_tvmjs_interface(link.read_wasm_interface(output))
    if problems:
        raise SystemExit(f"the old profile's library would not load in WebLLM: {problems}")


def measure(run: Callable[[], None], output: Path) -> dict[str, float]:
    """CPU seconds of the child processes `run` waited for, wall seconds, and the library's size."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data = output.read_bytes()
    return {
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "wall_s": round(wall, 2),
        "bytes": len(data),
        "gzip_bytes": len(gzip.compress(data, compresslevel=9)),
        "load_before": round(load, 2),
    }


def serve(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def time_in_browser(libraries: dict[str, Path], rounds: int) -> dict[str, dict[str, float]]:
    """Each profile's minimum per timed path over `rounds` fresh browsers, interleaved."""
    from playwright.sync_api import sync_playwright

    bundle = WEBLLM_BUNDLE.read_text()
    if f"var {WEBLLM_TVMJS_BINDING} = " not in bundle:
        raise SystemExit(f"{WEBLLM_BUNDLE} no longer binds tvmjs as {WEBLLM_TVMJS_BINDING}")
    best: dict[str, dict[str, float]] = {profile: {} for profile in libraries}
    with tempfile.TemporaryDirectory(prefix="hearth-bench-site-") as site:
        (Path(site) / "tvmjs.js").write_text(f"{bundle}\nexport {{ {WEBLLM_TVMJS_BINDING} as tvmjs }};\n")
        (Path(site) / "index.html").write_text("<!doctype html><title>bench</title>\n")
        for profile, path in libraries.items():
            (Path(site) / f"{profile}.wasm").write_bytes(path.read_bytes())
        server, url = serve(Path(site))
        try:
            with sync_playwright() as playwright:
                for round_ in range(rounds):
                    for profile in libraries:
                        browser = playwright.chromium.launch(
                            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
                        )
                        try:
                            page = browser.new_page()
                            page.goto(f"{url}/index.html")
                            result = page.evaluate(SPEED_IN_PAGE, {"lib": f"{profile}.wasm"})
                        finally:
                            browser.close()
                        print(f"  speed round {round_ + 1} {profile}: {_fmt(result)}", flush=True)
                        for name, value in result.items():
                            best[profile][name] = round(min(best[profile].get(name, value), value), 1)
        finally:
            server.shutdown()
            server.server_close()
    return best


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {_number(value)}" for name, value in values.items())


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def summarise(runs: Runs) -> dict[str, Any]:
    median = {
        profile: {key: statistics.median(run[key] for run in profile_runs) for key in profile_runs[0]}
        for profile, profile_runs in runs.items()
    }
    old, new = median["old"], median["new"]
    ratio = {
        "cpu_old_over_new": round(old["cpu_s"] / new["cpu_s"], 2),
        "wall_old_over_new": round(old["wall_s"] / new["wall_s"], 2),
        "bytes_new_over_old": round(new["bytes"] / old["bytes"], 3),
        "gzip_bytes_new_over_old": round(new["gzip_bytes"] / old["gzip_bytes"], 3),
    }
    return {"median": median, "ratio": ratio}


def link_both(executable: Any, home: Path, library: dict[str, Path], repeat: int) -> Runs:
    """Link with each profile `repeat` times, interleaved so that load changes hit both alike."""
    link_with = {
        "old": lambda: link_old(executable, library["old"], home),
        "new": lambda: link.link_model_library(executable, library["new"], runtime_home=home),
    }
    runs: Runs = {profile: [] for profile in PROFILES}
    for attempt in range(repeat):
        for profile in PROFILES:
            result = measure(link_with[profile], library[profile])
            runs[profile].append(result)
            print(f"link {attempt + 1}/{repeat} {profile}: {_fmt(result)}", flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=2, help="links per profile, interleaved (default 2)")
    parser.add_argument(
        "--speed-rounds", type=int, default=0, help="browser timing rounds per profile (default 0: none)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSON file to write (default: <cache>/bench/link-<time>.json)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.speed_rounds < 0:
        parser.error("--repeat must be at least 1 and --speed-rounds at least 0")
    output = args.output or cache_dir() / "bench" / f"link-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)

    home = ensure_runtime(lambda line: print(f"runtime: {line}", flush=True))  # once, cached: not timed
    print("building the small executable", flush=True)
    executable = scale_add_executable()
    with tempfile.TemporaryDirectory(prefix="hearth-bench-libs-") as libs:
        library = {profile: Path(libs) / f"{profile}.wasm" for profile in PROFILES}
        runs = link_both(executable, home, library, args.repeat)
        report = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "profiles": {
                "old": {"emcc_flags": list(OLD_FLAGS), "runtime": "bitcode (.bc)"},
                "new": {"emcc_flags": list(link.EMCC_LINK_FLAGS), "runtime": "wasm objects (.o)"},
            },
            "runtime_build": json.loads((home / MANIFEST_NAME).read_text()),
            "runs": runs,
            **summarise(runs),
        }
        for profile in PROFILES:
            print(f"{profile:>4}: median {_fmt(report['median'][profile])}")
        print(f"ratio: {_fmt(report['ratio'])}")
        output.write_text(json.dumps(report, indent=2) + "\n")  # kept should the browser part fail
        if args.speed_rounds:
            report["browser_speed_min"] = speed = time_in_browser(library, args.speed_rounds)
            for profile in PROFILES:
                print(f"{profile:>4} in Chromium (min): {_fmt(speed[profile])}")
            output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
