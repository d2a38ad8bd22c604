"""A tiny Relax module built for WebGPU links into a model library that tvmjs loads and runs on WebGPU."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser

from tests.browser.chromium import open_page
from tests.compiled import scale_add_module
from webapp.compile import link
from webapp.compile.errors import CompileError
from webapp.compile.runtime import CACHE_DIR_ENV, ensure_runtime
from webapp.compile.target import webgpu_target, webgpu_tvm_target

pytestmark = [pytest.mark.compiler, pytest.mark.timeout(1800)]

REPO_ROOT = Path(__file__).resolve().parent.parent
WEBLLM_BUNDLE = REPO_ROOT / "node_modules" / "@mlc-ai" / "web-llm" / "lib" / "index.js"
# Inside WebLLM's bundle, tvmjs is the module object bound to this name (not exported by WebLLM).
WEBLLM_TVMJS_BINDING = "var libExports$2 = requireLib$2();"
THREADS_PER_BLOCK = 256
# Linking the runtime objects with `wasm-opt -O1` gives a 3.75 MB library; without wasm-opt it is
# 6.3 MB (scripts/bench_link.py measures time and size against LTO + -O3).
MAX_LIBRARY_BYTES = 4_200_000


@pytest.fixture(scope="module")
def webgpu_executable() -> Any:
    import tvm

    return tvm.compile(scale_add_module(), target=webgpu_tvm_target())


@pytest.fixture(scope="module")
def model_library(webgpu_executable: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_runtime(progress=lambda line: print(f"runtime: {line}", flush=True))  # not part of the timing
    output = tmp_path_factory.mktemp("lib") / "scale_add-webgpu.wasm"
    start = time.monotonic()
    path = link.link_model_library(webgpu_executable, output, progress=print)
    print(f"link: {time.monotonic() - start:.1f} s, {path.stat().st_size} bytes")
    return path


def test_link_writes_one_wasm_and_nothing_else(model_library: Path) -> None:
    assert model_library.read_bytes()[:4] == b"\0asm"
    assert [p.name for p in model_library.parent.iterdir()] == [model_library.name]


def test_library_offers_what_tvmjs_needs(model_library: Path) -> None:
    interface = link.read_wasm_interface(model_library)
    assert link.check_tvmjs_interface(interface) == []
    # The FFI calls back into JavaScript through these two imports.
    assert ("env", "TVMFFIWasmSafeCall") in interface.imports
    assert ("env", "TVMFFIWasmFunctionDeleter") in interface.imports
    assert {"TVMFFIFunctionCall", "TVMWasmAllocSpace", "_initialize"} <= set(interface.exports)


def test_library_is_optimised(model_library: Path) -> None:
    size = model_library.stat().st_size
    assert size < MAX_LIBRARY_BYTES, f"{size} bytes: did wasm-opt run on the library?"


def test_tvmjs_constants_match_the_webllm_bundle() -> None:
    bundle = _webllm_bundle()
    glue = re.search(r"var wasmImports=\{([^}]*)\}", bundle)
    assert glue is not None, "WebLLM's tvmjs glue changed shape; re-read it"
    provided = {entry.split(":")[0] for entry in glue.group(1).split(",")}
    assert provided == link.TVMJS_GLUE_IMPORTS
    flat = re.sub(r"\s+", "", bundle)
    called = set(re.findall(r"exports\.(TVM[A-Za-z]+)\(", flat))
    assert len(called) >= 10, called  # the pattern still finds tvmjs's calls into the library
    assert called <= link.TVMJS_REQUIRED_EXPORTS


def test_check_reports_unknown_imports_and_missing_exports() -> None:
    interface = link.WasmInterface(
        imports=(("env", "TVMFFIWasmSafeCall"), ("env", "some_undefined_symbol")),
        exports=tuple(link.TVMJS_REQUIRED_EXPORTS - {"TVMFFIFunctionCall"}),
    )
    problems = link.check_tvmjs_interface(interface)
    assert len(problems) == 2
    assert "env.some_undefined_symbol" in problems[0]
    assert "TVMFFIFunctionCall" in problems[1]


def test_link_refuses_an_executable_built_for_the_cpu(tmp_path: Path) -> None:
    import tvm

    executable = tvm.compile(scale_add_module(host_only=True), target=tvm.target.Target({"kind": "llvm"}))
    output = tmp_path / "cpu.wasm"
    with pytest.raises(CompileError, match="webgpu_target"):
        link.link_model_library(executable, output)
    assert list(tmp_path.iterdir()) == []  # no library, no partial file


def test_link_wants_a_wasm_file_name(webgpu_executable: Any, tmp_path: Path) -> None:
    with pytest.raises(CompileError, match=r"\.wasm"):
        link.link_model_library(webgpu_executable, tmp_path / "lib.so")


def test_link_without_emcc_says_how_to_install_it(
    webgpu_executable: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with pytest.raises(CompileError, match="apt-get install emscripten"):
        link.link_model_library(webgpu_executable, tmp_path / "lib.wasm")


def test_target_helper_gives_webgpu_with_a_wasm32_host() -> None:
    target = webgpu_tvm_target()
    assert target.kind.name == "webgpu"
    assert target.host.attrs["mtriple"] == "wasm32-unknown-unknown-wasm"
    assert int(target.attrs["max_num_threads"]) == THREADS_PER_BLOCK
    assert webgpu_target() == webgpu_target() and webgpu_target() is not webgpu_target()
    assert bool(webgpu_tvm_target(subgroups=True).attrs["supports_subgroups"])


# --- in the browser -----------------------------------------------------------------------------


def _webllm_bundle() -> str:
    if not WEBLLM_BUNDLE.is_file():
        pytest.skip(f"{WEBLLM_BUNDLE} is missing: run scripts/setup (npm ci) first")
    return WEBLLM_BUNDLE.read_text()


@pytest.fixture()
def site(model_library: Path, tmp_path: Path) -> Iterator[str]:
    """A local HTTP server with the library and WebLLM's own tvmjs as an ES module."""
    bundle = _webllm_bundle()
    assert WEBLLM_TVMJS_BINDING in bundle, "WebLLM's bundle no longer binds tvmjs as libExports$2"
    (tmp_path / "tvmjs.js").write_text(bundle + "\nexport { libExports$2 as tvmjs };\n")
    (tmp_path / "index.html").write_text("<!doctype html><title>tvmjs</title>\n")
    (tmp_path / "lib.wasm").write_bytes(model_library.read_bytes())

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Load the library the way WebLLM 0.2.86 does (instantiate, detectGPUDevice, initWebGPU,
# createVirtualMachine, asyncLoadWebGPUPipelines), then run main on each input pair.
RUN_IN_PAGE = """
async ({ inputs }) => {
  const { tvmjs } = await import("/tvmjs.js");
  const wasm = await (await fetch("/lib.wasm")).arrayBuffer();
  const tvm = await tvmjs.instantiate(wasm, tvmjs.createPolyfillWASI(), console.log);
  const gpu = await tvmjs.detectGPUDevice();
  if (gpu === undefined) throw new Error("no WebGPU adapter");
  tvm.initWebGPU(gpu.device);
  const dev = tvm.webgpu();
  tvm.beginScope();
  const vm = tvm.detachFromCurrentScope(tvm.createVirtualMachine(dev));
  await tvm.asyncLoadWebGPUPipelines(vm.getInternalModule());
  const main = vm.getFunction("main");
  const outputs = [];
  for (const [x, y] of inputs) {
    const gx = tvm.empty([x.length], "float32", dev).copyFrom(x);
    const gy = tvm.empty([y.length], "float32", dev).copyFrom(y);
    const host = tvm.empty([x.length], "float32", tvm.cpu());
    host.copyFrom(main(gx, gy));
    await dev.sync();
    outputs.push(Array.from(host.toArray()));
  }
  tvm.endScope();
  return { outputs, adapter: gpu.adapterInfo.architecture || gpu.adapterInfo.vendor };
}
"""


@pytest.mark.browser
def test_library_runs_on_webgpu_in_chromium(site: str, browser: Browser) -> None:
    rng = np.random.default_rng(7)
    # Lengths that are and are not a multiple of the block size: n is dynamic in the kernel.
    inputs = [rng.standard_normal((2, n)).astype(np.float32) for n in (1000, THREADS_PER_BLOCK, 7)]
    with open_page(browser) as page:
        try:
            page.goto(f"{site}/index.html")
            result = page.evaluate(RUN_IN_PAGE, {"inputs": [[x.tolist(), y.tolist()] for x, y in inputs]})
        except Exception as exc:
            raise AssertionError(f"in the page: {exc}\nconsole:\n" + "\n".join(page.hearth_console)) from exc
    assert result["adapter"] == "swiftshader", result["adapter"]
    for (x, y), got in zip(inputs, result["outputs"], strict=True):
        np.testing.assert_allclose(np.asarray(got, dtype=np.float32), 2 * x + y, rtol=1e-6, atol=1e-6)
