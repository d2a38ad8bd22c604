"""The model host: MLC model files in the Hugging Face layout WebLLM expects, and model libraries.

URLs: /models/<model_id>/resolve/main/<file>, /libs/<name>.wasm and /models/index.json.
Nothing outside the models directory is ever opened: names are checked, then the resolved
path (symlinks followed) must still lie inside it.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from webapp.catalog import HostedModel, scan_models
from webapp.mlc.files import LIB_NAME_PATTERN, MODEL_ID_PATTERN
from webapp.settings import LIBS_DIR_NAME, Settings

REVISION = "main"
# One path segment: no separators, no NUL, no leading dot (so no "." / ".." / hidden files).
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")


class ModelFileResponse(FileResponse):
    """A file streamed in 1 MiB chunks: weights are big, and memory must not grow with them."""

    chunk_size = 1024 * 1024


class PathRefused(Exception):
    """The request names something that is not a plain file inside the models directory."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def resolve_inside(root: Path, *names: str) -> Path:
    """The file root/names... if every name is a plain segment and the real path stays in root."""
    if any(not SAFE_FILE_NAME.match(name) for name in names):
        raise PathRefused(400, "bad path: only plain file names are served")
    real_root = root.resolve()
    try:
        target = real_root.joinpath(*names).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise PathRefused(404, "not found") from None
    if not target.is_relative_to(real_root) or not target.is_file():
        raise PathRefused(404, "not found")
    return target


def model_file(request: Request) -> Response:
    """GET/HEAD one file of a hosted model directory, with Range, ETag and 304 support."""
    settings: Settings = request.app.state.settings
    model_id, revision = request.path_params["model_id"], request.path_params["revision"]
    # libs/ lives beside the model directories but is not a model.
    if revision != REVISION or model_id == LIBS_DIR_NAME or not MODEL_ID_PATTERN.match(model_id):
        return PlainTextResponse("not found", status_code=404)
    return _serve(request, settings.models_dir, model_id, request.path_params["file"])


def model_lib(request: Request) -> Response:
    """GET/HEAD a model library (.wasm)."""
    settings: Settings = request.app.state.settings
    name = request.path_params["name"]
    if not LIB_NAME_PATTERN.match(name):
        return PlainTextResponse("bad path: model libraries are <name>.wasm", status_code=400)
    return _serve(request, settings.libs_dir, name)


def models_index(request: Request) -> JSONResponse:
    """GET /models/index.json: the hosted models, with absolute URLs WebLLM can use as they are."""
    settings: Settings = request.app.state.settings
    hosted, _broken = scan_models(settings)
    return JSONResponse({"models": [model_entry(request, model) for model in hosted]})


def model_entry(request: Request, hosted: HostedModel) -> dict[str, object]:
    """One model as the page's model picker and WebLLM's ModelRecord need it."""
    model = hosted.model
    return {
        "id": model.model_id,
        "display_name": model.display_name,
        "total_bytes": hosted.total_bytes,
        "quantization": model.quantization,
        "architecture": model.model_type,
        "context_window_size": model.context_window_size,
        "required_features": model.required_features,
        # WebLLM appends resolve/main/ itself only when absent; giving it keeps the URL explicit.
        "model_url": str(request.url_for("model_file", model_id=model.model_id, revision=REVISION, file="")),
        "model_lib_url": str(request.url_for("model_lib", name=hosted.lib_name)),
        "description": model.description,
        "default": model.default,
    }


def _serve(request: Request, root: Path, *names: str) -> Response:
    try:
        path = resolve_inside(root, *names)
    except PathRefused as refused:
        return PlainTextResponse(str(refused), status_code=refused.status)
    response = ModelFileResponse(path, stat_result=path.stat())
    if is_not_modified(response.headers, request.headers):
        return not_modified(response)
    return response


def is_not_modified(response_headers: Headers, request_headers: Headers) -> bool:
    """True when the client's If-None-Match / If-Modified-Since says it has this version."""
    if if_none_match := request_headers.get("if-none-match"):
        etag = response_headers.get("etag")
        return etag is not None and (
            if_none_match.strip() == "*"
            or etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
        )
    since = _http_date(request_headers.get("if-modified-since"))
    modified = _http_date(response_headers.get("last-modified"))
    return since is not None and modified is not None and modified <= since


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def not_modified(response: Response) -> Response:
    """A 304 carrying the validators of the full response."""
    kept = {k: v for k, v in response.headers.items() if k in ("etag", "last-modified", "cache-control")}
    return Response(status_code=304, headers=kept)
