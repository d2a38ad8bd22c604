"""Cache keys for compiled outputs: a hash of everything that shapes them, so any change rebuilds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from webapp.paths import PACKAGE_DIR

# The code that decides what a compiled model contains.
COMPILER_SOURCES = (PACKAGE_DIR / "compile", PACKAGE_DIR / "mlc")


def update_with_files(digest: Any, paths: Iterable[Path], root: Path) -> None:
    """Feed each file's name (relative to root) and bytes to a hashlib digest."""
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


def compiler_digest() -> Any:
    """A sha256 already fed with the compiler's sources, the TVM version and the web runtime's key."""
    from webapp.compile.runtime import runtime_key

    digest = hashlib.sha256()
    sources = sorted(p for root in COMPILER_SOURCES for p in root.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    update_with_files(digest, sources, PACKAGE_DIR)
    digest.update(f"tvm={metadata.version('apache-tvm')} runtime={runtime_key()}".encode())
    return digest
