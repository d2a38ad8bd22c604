"""The offline app shell: the service worker script and the list of URLs it keeps."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from webapp import __version__
from webapp.paths import STATIC_DIR, TEMPLATES_DIR

# Pages the shell keeps so they open with the network off.
SHELL_PAGES = ("/", "/library")
SERVICE_WORKER = STATIC_DIR / "js" / "sw.js"
# Source maps are for developers with a network; the shell need not carry them.
SKIPPED_SUFFIXES = (".map", ".d.ts")


def service_worker(request: Request) -> Response:
    """GET /sw.js: served from the root so its scope covers every page."""
    response = FileResponse(SERVICE_WORKER, media_type="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


def app_shell(request: Request) -> JSONResponse:
    """GET /app-shell.json: the shell's URLs and a version that changes when any of them does."""
    files = _shell_files()
    version = _version(tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    urls = [*SHELL_PAGES, *("/static/" + p.relative_to(STATIC_DIR).as_posix() for p in files
                            if p.is_relative_to(STATIC_DIR) and p != SERVICE_WORKER)]
    response = JSONResponse({"version": version, "urls": urls})
    response.headers["Cache-Control"] = "no-cache"
    return response


def _shell_files() -> list[Path]:
    found = [p for root in (STATIC_DIR, TEMPLATES_DIR) for p in root.rglob("*") if p.is_file()]
    return sorted(p for p in found if not p.name.endswith(SKIPPED_SUFFIXES) and not p.name.startswith("."))


@lru_cache(maxsize=4)
def _version(signature: tuple[tuple[str, int, int], ...]) -> str:
    # Keyed by path, mtime and size, so contents are hashed again only when a file changed.
    digest = hashlib.sha256(__version__.encode())
    for path, _mtime, _size in signature:
        digest.update(path.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]
