"""The model host: model files in the Hugging Face layout, which WebLLM and huggingface-hub both fetch.

URLs: /models/<repo>/resolve/<revision>/<file> (repo = name or org/name, revision = main or the
commit sha), /libs/<name>.wasm and /models/index.json; the Hub's JSON API is in webapp.hub_api.
Every answer comes from the model's manifest: content-hash ETags, X-Repo-Commit, sizes. Nothing
outside the models directory is ever opened: names are checked, then the resolved path (symlinks
followed) must still lie inside it.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from webapp.catalog import RESERVED_NAMES, HostedModel, find_model, scan_models
from webapp.mlc.files import LIB_NAME_PATTERN
from webapp.mlc.manifest import FileRecord
from webapp.settings import Settings

REVISION = "main"
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")
# One path segment: no separators, no NUL, no leading dot (so no "." / ".." / hidden files).
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")
# Under a commit sha a file can never change; under "main" it can, so clients revalidate.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


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


def hub_error(status: int, code: str, message: str, commit: str | None = None) -> Response:
    """An error huggingface-hub recognises: HEAD has no body, so the kind travels in X-Error-Code."""
    headers = {"X-Error-Code": code, "X-Error-Message": message}
    if commit:  # lets the client cache that this file is absent at this commit
        headers["X-Repo-Commit"] = commit
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def split_resolve_path(rest: str) -> tuple[str, str, str] | None:
    """(repo id, revision, file) from '<repo>/resolve/<revision>/<file>', repo being name or org/name."""
    parts = rest.split("/")
    for repo_parts in (1, 2):
        if len(parts) == repo_parts + 3 and parts[repo_parts] == "resolve":
            return "/".join(parts[:repo_parts]), parts[repo_parts + 1], parts[repo_parts + 2]
    return None


def check_revision(hosted: HostedModel, revision: str) -> Response | None:
    """None when the revision is main or the model's commit, else the Hub's RevisionNotFound."""
    if revision in (REVISION, hosted.manifest.commit):
        return None
    return hub_error(404, "RevisionNotFound",
                     f"{hosted.model_id} has no revision {revision!r}: use main or {hosted.manifest.commit}")


def model_file(request: Request) -> Response:
    """GET/HEAD /models/<repo>/resolve/<revision>/<file>, with Range, content-hash ETags and 304."""
    settings: Settings = request.app.state.settings
    parsed = split_resolve_path(request.path_params["rest"])
    if parsed is None:
        return hub_error(404, "EntryNotFound", "not found: model files are at /models/<repo>/resolve/<revision>/<file>")
    repo_id, revision, name = parsed
    if not all(SAFE_FILE_NAME.match(part) for part in (*repo_id.split("/"), revision, name)):
        return PlainTextResponse("bad path: only plain file names are served", status_code=400)
    hosted = find_model(settings, repo_id)
    if hosted is None:
        if revision == REVISION and repo_id.split("/")[0] not in RESERVED_NAMES:
            # A directory that is not (yet) a complete model: its files stay readable under main, so a
            # browser's Check can say what is wrong with them; the Hub API does not list it.
            return _serve(request, settings.models_dir, (*repo_id.split("/"), name), missing=hub_error(
                404, "RepoNotFound", f"no model {repo_id!r} is hosted here"))
        return hub_error(404, "RepoNotFound", f"no model {repo_id!r} is hosted here")
    if refused := check_revision(hosted, revision):
        return refused
    commit = hosted.manifest.commit
    record = hosted.manifest.file(name)
    if record is None:
        return hub_error(404, "EntryNotFound", f"{repo_id} has no file {name!r}", commit)
    root = settings.libs_dir if record.in_libs else settings.models_dir
    names = (name,) if record.in_libs else (*repo_id.split("/"), name)
    extra = {"X-Repo-Commit": commit, "Cache-Control": IMMUTABLE if revision == commit else REVALIDATE}
    if settings.accel_redirect and request.method == "GET":
        return _accel_redirect(settings, root, names, record, extra)
    return _serve(request, root, names, record, extra)


def _accel_redirect(settings: Settings, root: Path, names: tuple[str, ...], record: FileRecord,
                    extra: dict[str, str]) -> Response:
    """Behind nginx: this answers the headers, nginx sends the bytes (sendfile, Range, no Python)."""
    try:
        path = resolve_inside(root, *names)
    except PathRefused as refused:
        return PlainTextResponse(str(refused), status_code=refused.status)
    if not path.is_relative_to(settings.models_dir):  # nginx serves only what lies under its alias
        return PlainTextResponse("not found", status_code=404)
    relative = path.relative_to(settings.models_dir).as_posix()
    headers = {**extra, **_record_headers(record), "X-Accel-Redirect": f"{settings.accel_redirect}{relative}"}
    return Response(headers=headers)


def _record_headers(record: FileRecord) -> dict[str, str]:
    # Starlette's ETag is mtime + size: two equal-size shards would share it. Ours names the bytes.
    headers = {"ETag": record.etag, "X-Linked-Size": str(record.size)}
    if record.is_lfs:
        headers["X-Linked-Etag"] = record.etag
    return headers


def model_lib(request: Request) -> Response:
    """GET/HEAD a model library (.wasm) from <models>/libs/."""
    settings: Settings = request.app.state.settings
    name = request.path_params["name"]
    if not LIB_NAME_PATTERN.match(name):
        return PlainTextResponse("bad path: model libraries are <name>.wasm", status_code=400)
    return _serve(request, settings.libs_dir, (name,))


def models_index(request: Request) -> JSONResponse:
    """GET /models/index.json: the hosted models, with absolute URLs WebLLM can use as they are."""
    settings: Settings = request.app.state.settings
    hosted, _broken = scan_models(settings)
    return JSONResponse({"models": [model_entry(request, model) for model in hosted]})


def resolve_url(request: Request, repo_id: str, revision: str, name: str = "") -> str:
    """The absolute URL of a file (or, with no name, the base WebLLM takes) under a revision."""
    return str(request.url_for("model_file", rest=f"{repo_id}/resolve/{revision}/{name}"))


def model_entry(request: Request, hosted: HostedModel) -> dict[str, object]:
    """One model as the page's model picker and WebLLM's ModelRecord need it, plus its pinned URLs."""
    model, manifest = hosted.model, hosted.manifest
    commit = manifest.commit
    libraries = {schedule: _library_entry(request, hosted, record)
                 for schedule, record in manifest.library_records.items()}
    lib_url = libraries["fallback"]["url"]
    return {
        "id": model.model_id,
        "display_name": model.display_name,
        "total_bytes": hosted.total_bytes,
        "quantization": model.quantization,
        "architecture": model.model_type,
        "context_window_size": model.context_window_size,
        "required_features": model.required_features,
        # WebLLM appends resolve/main/ itself only when absent; giving it keeps the URL explicit.
        "model_url": resolve_url(request, model.model_id, REVISION),
        "model_lib_url": lib_url,
        "commit": commit,
        # Pinned to the commit: immutable, so browsers and huggingface-hub cache them for good.
        "pinned_model_url": resolve_url(request, model.model_id, commit),
        "pinned_model_lib_url": libraries["fallback"]["pinned_url"],
        "integrity": manifest.integrity(),
        # One library per schedule set (webapp.compile.schedule_sets): the page picks by its adapter.
        "libraries": libraries,
        "description": model.description,
        "default": model.default,
    }


def _library_entry(request: Request, hosted: HostedModel, record: FileRecord) -> dict[str, object]:
    """Where one of a model's libraries is served, pinned and not, with its size and the integrity block for it."""
    model_id, commit = hosted.model.model_id, hosted.manifest.commit
    if record.in_libs:
        url = str(request.url_for("model_lib", name=record.path))
    else:
        url = resolve_url(request, model_id, REVISION, record.path)
    return {"url": url, "pinned_url": resolve_url(request, model_id, commit, record.path), "bytes": record.size,
            "integrity": hosted.manifest.integrity(record)}


def _serve(request: Request, root: Path, names: tuple[str, ...], record: FileRecord | None = None,
           extra: dict[str, str] | None = None, missing: Response | None = None) -> Response:
    try:
        path = resolve_inside(root, *names)
    except PathRefused as refused:
        if missing is not None and refused.status == 404:
            return missing
        return PlainTextResponse(str(refused), status_code=refused.status)
    response = ModelFileResponse(path, stat_result=path.stat())
    for header, value in {**(_record_headers(record) if record else {}), **(extra or {})}.items():
        response.headers[header] = value
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
    kept = {k: v for k, v in response.headers.items()
            if k in ("etag", "last-modified", "cache-control", "x-repo-commit")}
    return Response(status_code=304, headers=kept)
