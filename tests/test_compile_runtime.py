"""The TVM web runtime builds from the wheels' sources with Debian's emcc, once, cached by content hash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webapp.compile import runtime
from webapp.compile.errors import CompileError
from webapp.settings import default_cache_dir

pytestmark = [pytest.mark.compiler, pytest.mark.timeout(1800)]

REPO_ROOT = Path(__file__).resolve().parent.parent
LLVM_BITCODE_MAGIC = b"BC\xc0\xde"
WASM_MAGIC = b"\0asm"
# wasm_runtime.bc is the whole runtime in one translation unit (about 16 MB; 7 MB as an object).
MIN_BYTES = {"wasm_runtime": 4_000_000, "tvmjs_support": 50_000, "webgpu_runtime": 50_000}


@pytest.fixture(scope="module")
def runtime_home() -> Path:
    """The cached runtime (built here on a fresh machine: a few minutes)."""
    return runtime.ensure_runtime(progress=lambda line: print(f"runtime: {line}", flush=True))


def test_runtime_is_llvm_bitcode_in_a_tvm_home_tree(runtime_home: Path) -> None:
    assert runtime_home == runtime.cache_dir() / "runtime" / runtime.runtime_key()
    libraries = runtime.runtime_library_paths(runtime_home)
    for name, path in zip(runtime.RUNTIME_LIBRARIES, libraries, strict=True):
        assert path == runtime_home / "web" / "dist" / "wasm" / f"{name}.bc"
        assert path.read_bytes()[:4] == LLVM_BITCODE_MAGIC, path
        assert path.stat().st_size > MIN_BYTES[name], path
    manifest = json.loads((runtime_home / runtime.MANIFEST_NAME).read_text())
    assert manifest["key"] == runtime_home.name
    assert manifest["wheels"]["apache-tvm"] == "0.27.0.post1"
    assert set(manifest["libraries"]) == set(manifest["objects"]) == set(runtime.RUNTIME_LIBRARIES)


def test_runtime_is_also_lowered_into_relocatable_wasm_objects(runtime_home: Path) -> None:
    objects = runtime.runtime_object_paths(runtime_home)
    for name, path in zip(runtime.RUNTIME_LIBRARIES, objects, strict=True):
        assert path == runtime_home / "web" / "dist" / "wasm" / f"{name}.o"
        data = path.read_bytes()
        assert data[:4] == WASM_MAGIC, path
        # A relocatable object (what wasm-ld links) carries a custom section named "linking".
        assert b"\x07linking" in data, path
        assert path.stat().st_size > MIN_BYTES[name] / 2, path


def test_tvm_finds_the_runtime_with_tvm_home(runtime_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # TVM's own linker helper looks the bitcode up under $TVM_HOME/web/dist/wasm.
    from tvm.support.emcc import find_wasm_lib

    monkeypatch.setenv("TVM_HOME", str(runtime_home))
    libraries = runtime.runtime_library_paths(runtime_home)
    for name, path in zip(runtime.RUNTIME_LIBRARIES, libraries, strict=True):
        assert find_wasm_lib(f"{name}.bc") == [str(path)]


def test_second_call_is_a_cache_hit(runtime_home: Path) -> None:
    outputs = [*runtime.runtime_library_paths(runtime_home), *runtime.runtime_object_paths(runtime_home)]
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    lines: list[str] = []
    start = time.monotonic()
    again = runtime.ensure_runtime(progress=lines.append)
    elapsed = time.monotonic() - start
    assert again == runtime_home
    assert lines == []  # nothing compiled, nothing to report
    assert elapsed < 10, f"a cache hit took {elapsed:.1f} s"
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(runtime.CACHE_DIR_ENV, str(tmp_path))
    assert runtime.cache_dir() == tmp_path
    monkeypatch.delenv(runtime.CACHE_DIR_ENV)
    assert runtime.cache_dir() == default_cache_dir()


def test_cache_key_covers_the_project_headers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    headers = tmp_path / "runtime_include"
    shutil.copytree(runtime.RUNTIME_INCLUDE_DIR, headers)
    monkeypatch.setattr(runtime, "RUNTIME_INCLUDE_DIR", headers)
    key = runtime.runtime_key()
    assert runtime.runtime_key() == key  # stable
    utils = headers / "src" / "support" / "utils.h"
    utils.write_text(utils.read_text() + "\n// changed\n")
    assert runtime.runtime_key() != key


def test_cache_key_covers_the_build_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    key = runtime.runtime_key()
    monkeypatch.setattr(runtime, "EMCC_LOWER_FLAGS", ("-O2",))
    lowered_differently = runtime.runtime_key()
    monkeypatch.setattr(runtime, "EMCC_COMPILE_FLAGS", ("-O2",))
    assert len({key, lowered_differently, runtime.runtime_key()}) == 3


def test_project_headers_only_fill_gaps_in_the_wheel() -> None:
    sources = runtime._collect_sources()
    ours = {rel for rel, path in sources.items() if runtime.RUNTIME_INCLUDE_DIR in path.parents}
    assert "src/support/ring_buffer.h" in ours
    assert "3rdparty/compiler-rt/builtin_fp16.h" in ours
    assert sources["web/emcc/wasm_runtime.cc"].parent.name == "emcc"


def test_missing_emcc_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(runtime.CACHE_DIR_ENV, str(tmp_path / "cache"))
    with pytest.raises(CompileError, match="apt-get install emscripten"):
        runtime.ensure_runtime()
    assert not (tmp_path / "cache").exists()


def _start_build(cache: Path) -> subprocess.Popen[str]:
    # A build in its own session, so killing its group also kills the emcc it started.
    code = "from webapp.compile.runtime import ensure_runtime; ensure_runtime(lambda s: print(s, flush=True))"
    env = dict(os.environ, **{runtime.CACHE_DIR_ENV: str(cache)})
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _kill_once_compiling(build: subprocess.Popen[str]) -> None:
    assert build.stdout is not None
    for line in build.stdout:
        if line.startswith("compiling"):
            break
    else:
        pytest.fail(f"the build ended (code {build.wait()}) before it started compiling")
    os.killpg(build.pid, signal.SIGKILL)
    build.wait()


def test_interrupted_build_leaves_no_cache_entry(tmp_path: Path) -> None:
    key = runtime.runtime_key()
    entries = tmp_path / "runtime"

    _kill_once_compiling(_start_build(tmp_path))
    assert not (entries / key).exists()
    first_leftovers = set(entries.glob(f".tmp-{key}-*"))
    assert len(first_leftovers) == 1  # the killed build's staging directory, never renamed

    # The next build clears what the killed one left before it starts its own.
    _kill_once_compiling(_start_build(tmp_path))
    assert not (entries / key).exists()
    second_leftovers = set(entries.glob(f".tmp-{key}-*"))
    assert len(second_leftovers) == 1 and not second_leftovers & first_leftovers


# Exercises Hearth's stand-in headers natively (the browser test never reaches these paths):
# fp16 widening of every half value, base64 round trips of every length mod 3, the RPC byte queue.
HEADER_CHECK_CC = r"""
#include "src/support/arena.h"
#include "src/support/base64.h"
#include "src/support/bytes_io.h"
#include "src/support/ring_buffer.h"
#include "src/support/utils.h"
#include <tvm/support/cuda/nvtx.h>
#include "builtin_fp16.h"
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  FILE* out = std::fopen(argv[1], "wb");
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    float value = __extendXfYf2__<uint16_t, uint16_t, 10, float, uint32_t, 23>(uint16_t(bits));
    std::fwrite(&value, sizeof(value), 1, out);
  }
  std::fclose(out);
  for (int length = 0; length < 40; ++length) {
    std::string data, text;
    for (int i = 0; i < length; ++i) data.push_back(char(i * 37 + 11));
    tvm::support::BytesOutStream sink(&text);
    tvm::support::Base64OutStream encoder(&sink);
    encoder.Write(data.data(), data.size());
    encoder.Finish();
    if (length == 5) std::printf("base64 %s\n", text.c_str());
    std::string padded = " \n" + text;
    tvm::support::BytesInStream source(padded);
    tvm::support::Base64InStream decoder(&source);
    decoder.InitPosition();
    std::string back(length + 4, '?');
    size_t n = 0, got;
    while ((got = decoder.Read(&back[n], 2)) > 0) n += got;
    back.resize(n);
    if (back != data) std::printf("base64 round trip failed at length %d\n", length);
  }
  tvm::support::RingBuffer queue;
  queue.Write("hello world", 11);
  char head[6] = {0};
  queue.Read(head, 5);
  queue.WriteWithCallback([](void* p, size_t) { std::memcpy(p, "XYZ", 3); return size_t(3); }, 10);
  std::string rest;
  while (queue.bytes_available() != 0) {
    queue.ReadWithCallback([&](const void* p, size_t n) {
      size_t k = n < 4 ? n : 4;
      rest.append(static_cast<const char*>(p), k);
      return k;
    }, queue.bytes_available());
  }
  std::printf("queue %s|%s\n", head, rest.c_str());
  tvm::support::Arena arena;
  arena.allocate_<char>(100)[99] = 1;
  arena.RecycleAll();
  std::printf("starts %d%d\n", tvm::support::StartsWith("RPCSessionTimeoutError: x", "RPCSessionTimeoutError: "),
              tvm::support::StartsWith("ab", "abc"));
  tvm::support::NVTXScopedRange range("unused");
  return 0;
}
"""


def test_project_headers_behave(tmp_path: Path) -> None:
    import numpy as np

    if shutil.which("g++") is None:
        pytest.skip("g++ is missing: apt-get install g++")
    ffi = runtime._package_dir("tvm_ffi")
    tirx = runtime._package_dir("tvm_tirx")
    include = runtime.RUNTIME_INCLUDE_DIR
    (tmp_path / "check.cc").write_text(HEADER_CHECK_CC)
    subprocess.run(
        ["g++", "-std=c++17", "-O1", f"-I{include}", f"-I{include / 'include'}",
         f"-I{include / '3rdparty' / 'compiler-rt'}", f"-I{ffi / 'include'}", f"-I{tirx / 'include'}",
         "check.cc", "-o", "check", f"-L{ffi / 'lib'}", "-ltvm_ffi", f"-Wl,-rpath,{ffi / 'lib'}"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    result = subprocess.run(
        [str(tmp_path / "check"), str(tmp_path / "fp16.bin")], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["base64 CzBVep8=", "queue hello| worldXYZ", "starts 10"]
    widened = np.fromfile(tmp_path / "fp16.bin", dtype=np.float32)
    expected = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    assert np.array_equal(widened.view(np.uint32), expected.view(np.uint32))  # bit for bit, NaNs too
