"""Build the TVM web runtime (bitcode, and wasm objects for linking) from the apache-tvm wheels, cached."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from webapp.compile.errors import CompileError
from webapp.compile.filelock import exclusive
from webapp.settings import default_cache_dir

Progress = Callable[[str], None]

CACHE_DIR_ENV = "HEARTH_CACHE_DIR"

# The runtime pieces a tvmjs model library links against, in link order (as TVM's web/Makefile and
# tvm.support.emcc.create_tvmjs_wasm name them). wasm_runtime is by far the longest to compile.
RUNTIME_LIBRARIES: tuple[str, ...] = ("wasm_runtime", "tvmjs_support", "webgpu_runtime")

# EMCC_CFLAGS of TVM's web/Makefile, less its include flags (INCLUDE_DIRS below).
EMCC_COMPILE_FLAGS: tuple[str, ...] = ("-O3", "-std=c++17", "-Wno-ignored-attributes")

# Each .bc is also lowered once into a wasm object file, which model libraries link against: linking
# the bitcode made wasm-ld run LTO over 16 MB of it at every link (about 48 of 120 CPU seconds). The
# bitcode is already -O3 optimised, so only code generation runs (-O3 there); rerunning the IR passes
# doubled this one-off step (49 s instead of 25 s) for the same library (3.758 vs 3.760 MB).
EMCC_LOWER_FLAGS: tuple[str, ...] = ("-O3", "-Xclang", "-disable-llvm-passes")

# Include path, relative to <home>/web where emcc runs: the Makefile's, plus the apache-tvm-tirx
# headers that stand in for TVM's include/tvm/support/{io,serializer,bytes_io}.h.
INCLUDE_DIRS: tuple[str, ...] = (
    "..",
    "../include",
    "../3rdparty/tvm-ffi/include",
    "../3rdparty/tvm-ffi/3rdparty/dlpack/include",
    "../3rdparty/compiler-rt",
    "../3rdparty/tvm-tirx/include",
)
TIRX_SUPPORT_HEADERS: tuple[str, ...] = ("io.h", "serializer.h", "bytes_io.h")

# Hearth's own stand-ins for headers the wheel lacks, laid out as they sit in a TVM source tree.
RUNTIME_INCLUDE_DIR = Path(__file__).resolve().parent / "runtime_include"

# Bump when the tree layout or build steps change in a way the input hash cannot see.
BUILD_RECIPE_VERSION = "2"
MANIFEST_NAME = "hearth-runtime.json"
BUILD_TIMEOUT_S = 3600
EMCC_OUTPUT_TAIL_CHARS = 4000

# emcc runs some steps with node; Debian's node-acorn lives in /usr/share/nodejs, which a node that
# is not Debian's own (e.g. NodeSource's) does not search.
DEBIAN_NODE_PATH = "/usr/share/nodejs"

_WHEELS = {
    "tvm": "apache-tvm",
    "tvm_ffi": "apache-tvm-ffi",
    "tvm_tirx": "apache-tvm-tirx",
}


def cache_dir() -> Path:
    """Hearth's cache for heavy build outputs: $HEARTH_CACHE_DIR, else the per-user cache."""
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override).expanduser() if override else default_cache_dir()


def find_emcc() -> str:
    """The emcc on PATH, or a CompileError that says how to install it."""
    emcc = shutil.which("emcc")
    if emcc is None:
        raise CompileError(
            "emcc (Emscripten) is not installed or not on PATH; Hearth needs it to build WebGPU "
            "model libraries. Install it with `sudo apt-get install emscripten` (Debian/Ubuntu)."
        )
    return emcc


def emcc_env() -> dict[str, str]:
    """The environment to run emcc in: ours, with Debian's node modules on NODE_PATH."""
    env = dict(os.environ)
    parts = [p for p in env.get("NODE_PATH", "").split(os.pathsep) if p]
    if DEBIAN_NODE_PATH not in parts:
        parts.append(DEBIAN_NODE_PATH)
    env["NODE_PATH"] = os.pathsep.join(parts)
    return env


def runtime_library_paths(home: Path) -> list[Path]:
    """The runtime bitcode files inside a runtime home, in link order (what tvm.support.emcc links)."""
    return [home / "web" / "dist" / "wasm" / f"{name}.bc" for name in RUNTIME_LIBRARIES]


def runtime_object_paths(home: Path) -> list[Path]:
    """The runtime's wasm object files (the bitcode, lowered) inside a runtime home, in link order."""
    return [home / "web" / "dist" / "wasm" / f"{name}.o" for name in RUNTIME_LIBRARIES]


def runtime_key() -> str:
    """The cache key of the runtime the installed wheels, headers and emcc would build."""
    return _input_hash(_collect_sources(), _emcc_version(find_emcc()))


def ensure_runtime(progress: Progress | None = None) -> Path:
    """Build the TVM web runtime once and return its home (a TVM_HOME-like tree).

    The bitcode lies in `<home>/web/dist/wasm/` (see `runtime_library_paths`), where
    `tvm.support.emcc` also looks with TVM_HOME=<home>, beside the same code lowered into wasm
    objects (`runtime_object_paths`), which `link_model_library` links. The home is
    `<cache>/runtime/<hash of every input>/`; a build happens in a temporary directory that is
    renamed into place only on success, under a lock, so parallel or interrupted builds never
    leave a half entry. `progress` gets a line per long step, possibly from worker threads.
    """
    say = progress or (lambda _line: None)
    emcc = find_emcc()
    sources = _collect_sources()
    emcc_version = _emcc_version(emcc)
    key = _input_hash(sources, emcc_version)
    root = cache_dir() / "runtime"
    home = root / key
    if _is_complete(home):
        return home
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f".{key}.lock", say, "waiting for another process that is building the same runtime"):
        if _is_complete(home):  # built by another process while we waited
            return home
        _remove_leftovers(root, key)
        say(f"building the TVM web runtime into {home} (a few minutes, once)")
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        try:
            _arrange_tree(sources, staging)
            timings = _compile_libraries(emcc, staging, say)
            _write_manifest(staging, key, emcc_version, timings)
            staging.chmod(0o755)  # mkdtemp made it private; the cache entry is a plain directory
            os.rename(staging, home)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    say(f"TVM web runtime ready in {home}")
    return home


# --- inputs -----------------------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    # find_spec locates a package without importing it: `import tvm` takes seconds.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CompileError(
            f"The Python package {_WHEELS[package]} is not installed; the runtime is built from its "
            f"files. Install Hearth's compiler extras: `pip install 'hearth[compile]'`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _wheel_versions() -> dict[str, str]:
    versions = {}
    for package, distribution in _WHEELS.items():
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            _package_dir(package)  # raises the install hint when the package is absent
            versions[distribution] = "unknown"
    return versions


def _tree_files(source: Path, dest: str, suffixes: tuple[str, ...] | None = None) -> dict[str, Path]:
    if not source.is_dir():
        raise CompileError(
            f"{source} is missing: the installed wheel does not ship the runtime sources Hearth "
            "builds from. Reinstall the pinned versions: `pip install 'hearth[compile]'`."
        )
    files = {}
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if suffixes is not None and path.suffix not in suffixes:
            continue
        rel = path.relative_to(source).as_posix()
        files[f"{dest}/{rel}" if dest else rel] = path
    return files


def _collect_sources() -> dict[str, Path]:
    """Map each file of the build tree (path relative to its root) to the file it is copied from."""
    tvm = _package_dir("tvm")
    ffi = _package_dir("tvm_ffi")
    tirx = _package_dir("tvm_tirx")
    files: dict[str, Path] = {}
    files.update(_tree_files(tvm / "include", "include"))
    files.update(_tree_files(tvm / "src" / "runtime", "src/runtime"))
    files.update(_tree_files(tvm / "web" / "emcc", "web/emcc", suffixes=(".cc",)))
    files.update(_tree_files(ffi / "include", "3rdparty/tvm-ffi/include"))
    files.update(_tree_files(ffi / "src", "3rdparty/tvm-ffi/src"))
    files.update(
        _tree_files(ffi / "3rdparty" / "dlpack" / "include", "3rdparty/tvm-ffi/3rdparty/dlpack/include")
    )
    for name in TIRX_SUPPORT_HEADERS:
        header = tirx / "include" / "tvm" / "support" / name
        if not header.is_file():
            raise CompileError(
                f"{header} is missing; the runtime needs apache-tvm-tirx's tvm/support headers. "
                "Install the pinned version: `pip install apache-tvm-tirx==0.1.0a4`."
            )
        files[f"3rdparty/tvm-tirx/include/tvm/support/{name}"] = header
    # Our stand-ins fill only the gaps: where a wheel ships the real header, that one is used.
    for rel, path in _tree_files(RUNTIME_INCLUDE_DIR, "").items():
        files.setdefault(rel, path)
    return files


@functools.lru_cache(maxsize=4)
def _emcc_version(emcc: str) -> str:
    # `emcc -v` names both emscripten and the clang behind it; either changes the bitcode.
    # It takes about a second (a Python start and a clang run), so once per process is enough.
    result = subprocess.run(
        [emcc, "-v"], capture_output=True, text=True, env=emcc_env(), timeout=120, check=False
    )
    if result.returncode != 0:
        raise CompileError(f"`{emcc} -v` failed; is emscripten installed correctly?\n{result.stderr}")
    return (result.stdout + result.stderr).strip()


def _input_hash(sources: dict[str, Path], emcc_version: str) -> str:
    digest = hashlib.sha256()

    def feed(*parts: str) -> None:
        for part in parts:
            digest.update(part.encode())
            digest.update(b"\0")

    feed("recipe", BUILD_RECIPE_VERSION, "emcc", emcc_version)
    feed("flags", *EMCC_COMPILE_FLAGS, "include", *INCLUDE_DIRS, "libraries", *RUNTIME_LIBRARIES)
    feed("lower", *EMCC_LOWER_FLAGS)
    for distribution, version in sorted(_wheel_versions().items()):
        feed(distribution, version)
    for rel in sorted(sources):
        feed(rel, hashlib.sha256(sources[rel].read_bytes()).hexdigest())
    return digest.hexdigest()[:16]


# --- build ------------------------------------------------------------------------------------


def _is_complete(home: Path) -> bool:
    outputs = [*runtime_library_paths(home), *runtime_object_paths(home)]
    return (home / MANIFEST_NAME).is_file() and all(p.is_file() for p in outputs)


def _remove_leftovers(root: Path, key: str) -> None:
    # Under the lock nobody else builds this key, so its temporary directories are from builds
    # that were killed; an entry without its manifest was damaged by hand.
    for stale in root.glob(f".tmp-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if (root / key).exists():
        shutil.rmtree(root / key)


def _arrange_tree(sources: dict[str, Path], home: Path) -> None:
    for rel, path in sources.items():
        target = home / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (home / "web" / "dist" / "wasm").mkdir(parents=True, exist_ok=True)


def _compile_command(emcc: str, name: str) -> list[str]:
    return [
        emcc,
        *(f"-I{d}" for d in INCLUDE_DIRS),
        *EMCC_COMPILE_FLAGS,
        "-emit-llvm",
        "-c",
        "-o",
        f"dist/wasm/{name}.bc",
        f"emcc/{name}.cc",
    ]


def _lower_command(emcc: str, name: str) -> list[str]:
    return [emcc, *EMCC_LOWER_FLAGS, "-c", "-o", f"dist/wasm/{name}.o", f"dist/wasm/{name}.bc"]


def _run_emcc_step(command: list[str], home: Path, doing: str) -> float:
    """Run one emcc command in <home>/web; return its wall seconds or raise what `doing` failed."""
    start = time.monotonic()
    try:
        result = subprocess.run(
            command,
            cwd=home / "web",
            env=emcc_env(),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CompileError(f"{doing} took over {BUILD_TIMEOUT_S} s; gave up") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-EMCC_OUTPUT_TAIL_CHARS:]
        raise CompileError(
            f"emcc failed {doing} (in {home / 'web'}):\n$ {' '.join(command)}\n{output}"
        )
    return time.monotonic() - start


def _compile_one(emcc: str, home: Path, name: str, say: Progress) -> tuple[float, float]:
    """Compile one runtime file to bitcode, then lower that to a wasm object; return both times."""
    built = home / "web" / "dist" / "wasm"
    say(f"compiling {name}.bc")
    compiled = _run_emcc_step(
        _compile_command(emcc, name), home, f"compiling the TVM web runtime file {name}.cc"
    )
    say(f"compiled {name}.bc ({(built / f'{name}.bc').stat().st_size / 1e6:.1f} MB) in {compiled:.0f} s")
    lowered = _run_emcc_step(_lower_command(emcc, name), home, f"lowering {name}.bc into {name}.o")
    say(f"lowered {name}.bc into {name}.o in {lowered:.0f} s")
    return compiled, lowered


def _compile_libraries(emcc: str, home: Path, say: Progress) -> dict[str, tuple[float, float]]:
    # One emcc per file, as many at once as there are cores (wasm_runtime first: it is the longest).
    workers = max(1, min(len(RUNTIME_LIBRARIES), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(_compile_one, emcc, home, name, say) for name in RUNTIME_LIBRARIES}
        # Wait for every compile before raising, so no emcc outlives a failed build.
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
        if errors:
            raise errors[0]
        return {name: future.result() for name, future in futures.items()}


def _write_manifest(
    home: Path, key: str, emcc_version: str, timings: dict[str, tuple[float, float]]
) -> None:
    def entries(paths: list[Path], step: int) -> dict[str, dict[str, float]]:
        return {
            name: {"bytes": path.stat().st_size, "seconds": round(timings[name][step], 1)}
            for name, path in zip(RUNTIME_LIBRARIES, paths, strict=True)
        }

    manifest = {
        "key": key,
        "recipe": BUILD_RECIPE_VERSION,
        "wheels": _wheel_versions(),
        "emcc": emcc_version.splitlines()[0] if emcc_version else "",
        "flags": [*EMCC_COMPILE_FLAGS, *(f"-I{d}" for d in INCLUDE_DIRS)],
        "lower_flags": list(EMCC_LOWER_FLAGS),
        "libraries": entries(runtime_library_paths(home), 0),
        "objects": entries(runtime_object_paths(home), 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (home / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
