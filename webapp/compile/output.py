"""Where a compiled model goes, and how it gets there whole or not at all.

Both backends (Hearth's own and mlc-llm) write MODELS_DIR/<id>/ and MODELS_DIR/libs/<id>.wasm,
which is what `hearth serve --models-dir MODELS_DIR` hosts. Everything is built beside its
destination under dot-names (the server skips them) and renamed into place only on success.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from webapp.compile.errors import CompileError
from webapp.mlc.files import LIB_NAME_PATTERN, MODEL_ID_PATTERN
from webapp.settings import LIBS_DIR_NAME


def destinations(output: Path, lib_output: Path | None) -> tuple[Path, Path]:
    """(model directory, library path) for an output directory, checking names the server accepts."""
    output = output.resolve()
    if not MODEL_ID_PATTERN.match(output.name):
        raise CompileError(f"{output.name!r} cannot be a model id: use letters, digits, '.', '_' and '-'")
    lib = (lib_output or output.parent / LIBS_DIR_NAME / f"{output.name}.wasm").resolve()
    if not LIB_NAME_PATTERN.match(lib.name):
        raise CompileError(f"{lib.name!r} is not a model library name: it must end in .wasm, without odd characters")
    return output, lib


def refuse_existing(model_dir: Path, force: bool) -> None:
    """An existing model is replaced only when asked to."""
    if model_dir.exists() and not force:
        raise CompileError(f"{model_dir} already exists: remove it or pass --force to replace it")


@contextmanager
def staged_output(model_dir: Path, lib_path: Path) -> Iterator[tuple[Path, Path]]:
    """Yield (staging directory, staged library path); on success both replace the real ones."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    lib_path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = model_dir.with_name(f".{model_dir.name}.partial-{tag}")
    staged_lib = lib_path.with_name(f".{lib_path.stem}.partial-{tag}.wasm")
    staging.mkdir()
    try:
        yield staging, staged_lib
        move_into_place(staging, staged_lib, model_dir, lib_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        staged_lib.unlink(missing_ok=True)


def move_into_place(staging: Path, staged_lib: Path, model_dir: Path, lib_path: Path) -> None:
    """Rename a staged model directory and library over their destinations (same file system)."""
    from webapp.mlc.manifest import update_manifest
    from webapp.mlc.model_dir import ModelDirError

    # The library first: a model directory must never be visible without its library.
    staged_lib.replace(lib_path)
    try:  # hashed now, once, so the server never has to: renames keep each file's mtime
        update_manifest(staging, lib_path.parent, model_dir.name)
    except ModelDirError as exc:
        raise CompileError(f"the compiled model in {staging} is incomplete: {exc}") from exc
    if model_dir.exists():
        old = model_dir.with_name(f".{model_dir.name}.old-{uuid.uuid4().hex[:8]}")
        model_dir.rename(old)
        shutil.rmtree(old)
    staging.rename(model_dir)
