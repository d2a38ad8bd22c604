"""Link a compiled Relax VM executable with the cached TVM web runtime into one WebGPU model library."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from webapp.compile.errors import CompileError
from webapp.compile.runtime import (
    EMCC_OUTPUT_TAIL_CHARS,
    Progress,
    emcc_env,
    ensure_runtime,
    find_emcc,
    runtime_object_paths,
)

# The link options of tvm.support.emcc.create_tvmjs_wasm (TVM 0.27), which WebLLM's model libraries
# are built with, less its -O3: a reactor module (no main) exporting its C API; undefined symbols
# become imports that tvmjs provides (TVMFFIWasmSafeCall, TVMFFIWasmFunctionDeleter, WASI).
TVMJS_LINK_FLAGS: tuple[str, ...] = (
    "-std=c++17",
    "--no-entry",
    "-s", "WASM_BIGINT=1",
    "-s", "ERROR_ON_UNDEFINED_SYMBOLS=0",
    "-s", "STANDALONE_WASM=1",
    "-s", "ALLOW_MEMORY_GROWTH=1",
    "-s", "TOTAL_MEMORY=160MB",
)  # fmt: skip

# How the linked module is optimised. Its code is LLVM -O3 output already (the runtime objects and
# the model's host code); wasm-opt -O3 over it costs about 100 CPU seconds (67 after LTO) to make
# the library about 5% smaller than wasm-opt -O1 does in 11 s (3.55 vs 3.75 MB; gzip 640 vs 702
# kB). Timed in Chromium through tvmjs (scripts/bench_link.py), the runtime runs as fast: top-p
# sort, softmax and VM calls alike; tensor allocation through the FFI is perhaps 10% (<1 us) slower.
# emcc -O1 runs no wasm-opt of its own (the library would keep a 1.1 MB name section and LLVM's
# padded encoding: 6.3 MB), so the passes of its -O2/-O3 run are named here at binaryen's -O1.
LINK_OPTIMISE_FLAGS: tuple[str, ...] = (
    "-O1",
    "-s", "BINARYEN_EXTRA_PASSES=post-emscripten,-O1,low-memory-unused,zero-filled-memory",
)  # fmt: skip
EMCC_LINK_FLAGS: tuple[str, ...] = (*LINK_OPTIMISE_FLAGS, *TVMJS_LINK_FLAGS)
LINK_TIMEOUT_S = 3600

# What tvmjs (the copy bundled in WebLLM 0.2.86, tvmjs 0.28.0-dev0) hands a library at instantiation:
# its emscripten glue's `wasmImports` under both "env" and "wasi_snapshot_preview1", plus a few
# more under "env". Any other import makes WebAssembly.instantiate fail in the browser.
TVMJS_GLUE_IMPORTS = frozenset({
    "TVMFFIWasmFunctionDeleter", "TVMFFIWasmSafeCall", "clock_time_get",
    "emscripten_notify_memory_growth", "environ_get", "environ_sizes_get", "fd_close", "fd_read",
    "fd_seek", "fd_write", "proc_exit",
})  # fmt: skip
TVMJS_ENV_IMPORTS = frozenset({"__cxa_thread_atexit", "__console_log"})
TVMJS_PROVIDED_IMPORTS = frozenset(
    {(module, name) for module in ("env", "wasi_snapshot_preview1") for name in TVMJS_GLUE_IMPORTS}
    | {("env", name) for name in TVMJS_ENV_IMPORTS}
)
# The library exports that tvmjs calls (asyncify_* are optional: tvmjs probes for them).
TVMJS_REQUIRED_EXPORTS = frozenset({
    "memory", "_initialize", "TVMWasmAllocSpace", "TVMWasmFreeSpace", "TVMFFIWasmFunctionCreate",
    "TVMFFIWasmGetLastError", "TVMFFIFunctionCall", "TVMFFIFunctionGetGlobal",
    "TVMFFIFunctionSetGlobal", "TVMFFIObjectIncRef", "TVMFFIObjectDecRef", "TVMFFIAnyViewToOwnedAny",
    "TVMFFIDataTypeToString", "TVMFFIErrorSetRaisedFromCStr", "TVMFFIGetTypeInfo",
    "TVMFFITypeKeyToIndex",
})  # fmt: skip

_WASM_MAGIC = b"\0asm"


class Exportable(Protocol):
    """What `tvm.compile` / `relax.build` return: a VM executable that can export a library."""

    def export_library(self, file_name: str, *, fcompile: Any = None, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class WasmInterface:
    """The imports (module, name) and export names of a WebAssembly binary."""

    imports: tuple[tuple[str, str], ...]
    exports: tuple[str, ...]


def link_model_library(
    executable: Exportable,
    output: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    runtime_home: Path | None = None,
) -> Path:
    """Link `executable` (built for `webgpu_target()`) with the TVM web runtime into `output`.

    The runtime comes from the cache (`ensure_runtime`, built on first use) as wasm objects, so
    the link is wasm-ld over objects and one `wasm-opt -O1` run (11-14 CPU seconds for the tiny
    test models, instead of 115-160 with LTO of the bitcode and -O3). The library is
    written under a temporary name beside `output` and renamed into place once it linked and
    offers what tvmjs needs; returns the output path.
    """
    say = progress or (lambda _line: None)
    output = Path(output)
    if output.suffix != ".wasm":
        raise CompileError(f"{output}: a model library's file name must end in .wasm")
    emcc = find_emcc()
    home = runtime_home if runtime_home is not None else ensure_runtime(say)
    libraries = runtime_object_paths(home)
    missing = [str(p) for p in libraries if not p.is_file()]
    if missing:
        raise CompileError(f"the TVM web runtime in {home} is incomplete (missing {', '.join(missing)})")

    output.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the output, so the final rename is atomic; emcc needs the .wasm suffix.
    partial = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:8]}.partial.wasm")

    def fcompile(file_name: str, objects: Sequence[str], options: Sequence[str] | None = None) -> None:
        _check_wasm_objects(objects)
        command = [emcc, *EMCC_LINK_FLAGS, "-o", file_name, *map(str, libraries), *objects]
        command += list(options or ())
        _run_emcc(command, output)

    # export_library writes the host code in this format ("o": wasm object files). Not LLVM
    # bitcode: TVM's LLVM 22 bitcode cannot be read by Debian's LLVM 14 linker.
    fcompile.object_format = "o"  # type: ignore[attr-defined]

    say(f"linking {output.name} (well under a minute)")
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="hearth-link-") as workspace:
            executable.export_library(str(partial), fcompile=fcompile, workspace_dir=workspace)
        problems = check_tvmjs_interface(read_wasm_interface(partial))
        if problems:
            details = "\n".join(problems)
            raise CompileError(f"{output}: the linked library would not load in WebLLM:\n{details}")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    say(f"linked {output.name} ({output.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - start:.0f} s")
    return output


def _check_wasm_objects(objects: Sequence[str]) -> None:
    for obj in objects:
        with open(obj, "rb") as handle:
            if handle.read(4) != _WASM_MAGIC:
                raise CompileError(
                    f"{Path(obj).name} from the executable is not WebAssembly: compile the model for "
                    "webapp.compile.target.webgpu_target() (a WebGPU target with a wasm32 host)"
                )


def _run_emcc(command: list[str], output: Path) -> None:
    try:
        result = subprocess.run(
            command, env=emcc_env(), capture_output=True, text=True, timeout=LINK_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CompileError(f"linking {output} took over {LINK_TIMEOUT_S} s; gave up") from exc
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-EMCC_OUTPUT_TAIL_CHARS:]
        raise CompileError(f"emcc could not link {output}:\n$ {' '.join(command)}\n{tail}")


def check_tvmjs_interface(interface: WasmInterface) -> list[str]:
    """What keeps a library from loading in WebLLM's tvmjs: unknown imports, missing exports."""
    problems = []
    unknown = sorted(i for i in interface.imports if i not in TVMJS_PROVIDED_IMPORTS)
    if unknown:
        names = ", ".join(f"{module}.{name}" for module, name in unknown)
        problems.append(f"imports that tvmjs does not provide (undefined symbols at link time): {names}")
    missing = sorted(TVMJS_REQUIRED_EXPORTS - set(interface.exports))
    if missing:
        problems.append(f"exports that tvmjs needs but the library lacks: {', '.join(missing)}")
    return problems


def read_wasm_interface(path: str | os.PathLike[str]) -> WasmInterface:
    """Read the import and export sections of a WebAssembly binary."""
    data = Path(path).read_bytes()
    if data[:4] != _WASM_MAGIC:
        raise CompileError(f"{path} is not a WebAssembly binary")
    reader = _Reader(data, 8)  # magic and version
    imports: list[tuple[str, str]] = []
    exports: list[str] = []
    while reader.pos < len(data):
        section_id = reader.byte()
        end = reader.uleb() + reader.pos
        if section_id == 2:  # imports: module, name, kind, description
            for _ in range(reader.uleb()):
                imports.append((reader.name(), reader.name()))
                reader.skip_import_description()
        elif section_id == 7:  # exports: name, kind, index
            for _ in range(reader.uleb()):
                exports.append(reader.name())
                reader.byte()
                reader.uleb()
        reader.pos = end
    return WasmInterface(tuple(imports), tuple(exports))


class _Reader:
    """A cursor over the WebAssembly binary format (just what the import/export sections need)."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            value = self.byte()
            result |= (value & 0x7F) << shift
            shift += 7
            if value < 0x80:
                return result

    def name(self) -> str:
        length = self.uleb()
        self.pos += length
        return self.data[self.pos - length : self.pos].decode("utf-8")

    def limits(self) -> None:
        has_max = self.byte() & 1
        self.uleb()
        if has_max:
            self.uleb()

    def skip_import_description(self) -> None:
        kind = self.byte()
        if kind == 0:  # function: type index
            self.uleb()
        elif kind == 1:  # table: element type, limits
            self.byte()
            self.limits()
        elif kind == 2:  # memory: limits
            self.limits()
        elif kind == 3:  # global: value type, mutability
            self.pos += 2
        else:
            raise CompileError(f"unknown WebAssembly import kind {kind}")
