"""Where a compiled model goes, and how it gets there whole or not at all.

Both backends (Hearth's own and mlc-llm) write MODELS_DIR/<id>/ and MODELS_DIR/libs/<id>.wasm,
which is what `hearth serve --models-dir MODELS_DIR` hosts. Everything is built beside its
destination under dot-names (the server skips them) and renamed into place only on success.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Sequence
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
def staged_output(model_dir: Path, lib_paths: Sequence[Path]) -> Iterator[tuple[Path, list[Path]]]:
    """Yield (staging directory, a staged path per library); on success all replace the real ones."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = model_dir.with_name(f".{model_dir.name}.partial-{tag}")
    staged_libs = [lib.with_name(f".{lib.stem}.partial-{tag}.wasm") for lib in lib_paths]
    for lib in lib_paths:
        lib.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    try:
        yield staging, staged_libs
        move_into_place(staging, dict(zip(staged_libs, lib_paths, strict=True)), model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for staged in staged_libs:
            staged.unlink(missing_ok=True)


def move_into_place(staging: Path, libraries: dict[Path, Path], model_dir: Path) -> None:
    """Rename a staged model directory and its libraries (staged path -> destination) into place."""
    from webapp.mlc.manifest import update_manifest
    from webapp.mlc.model_dir import ModelDirError

    # The libraries first: a model directory must never be visible without them.
    for staged, lib_path in libraries.items():
        staged.replace(lib_path)
    libs_dir = next(iter(libraries.values())).parent
    try:  # hashed now, once, so the server never has to: renames keep each file's mtime
        update_manifest(staging, libs_dir, model_dir.name)
    except ModelDirError as exc:
        raise CompileError(f"the compiled model in {staging} is incomplete: {exc}") from exc
    if model_dir.exists():
        old = model_dir.with_name(f".{model_dir.name}.old-{uuid.uuid4().hex[:8]}")
        model_dir.rename(old)
        shutil.rmtree(old)
    staging.rename(model_dir)
