"""The Hugging Face Hub's JSON API for hosted models, so huggingface-hub can use a Hearth as its endpoint.

With endpoint="http://<host>/models", huggingface-hub asks:
    /models/api/models/<repo>                     repo info for main: id, sha, siblings
    /models/api/models/<repo>/revision/<rev>      the same for a revision (main or the commit sha)
    /models/api/models/<repo>/tree/<rev>[/<dir>]  the file list (MLC model directories are flat)
then HEAD and GET /models/<repo>/resolve/<rev>/<file> (webapp.hosting). Everything comes from the
model's manifest; nothing is hashed per request. Xet is never advertised: plain HTTP downloads only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from webapp.catalog import HostedModel, find_model
from webapp.hosting import IMMUTABLE, REVALIDATE, REVISION, check_revision, hub_error
from webapp.mlc.manifest import FileRecord

# The size of a Git LFS pointer file, which the Hub reports beside an LFS object.
LFS_POINTER_SIZE = 134


def repo_api(request: Request) -> Response:
    """GET /models/api/models/<repo>[/revision/<rev> | /tree/<rev>[/<dir>]]."""
    repo_id, kind, revision, subdir = _split(request.path_params["rest"])
    hosted = find_model(request.app.state.settings, repo_id)
    if hosted is None:
        return hub_error(404, "RepoNotFound", f"no model {repo_id!r} is hosted here")
    if kind not in ("info", "revision", "tree"):
        return hub_error(404, "EntryNotFound", f"this Hearth answers only info, revision and tree for {repo_id}")
    if refused := check_revision(hosted, revision):
        return refused
    headers = {"Cache-Control": IMMUTABLE if revision == hosted.manifest.commit else REVALIDATE}
    if kind == "tree":
        if subdir:  # a flat repository: no folder has entries
            return hub_error(404, "EntryNotFound", f"{repo_id} has no folder {subdir!r}", hosted.manifest.commit)
        return JSONResponse([tree_entry(record) for record in hosted.manifest.files], headers=headers)
    return JSONResponse(repo_info(hosted), headers=headers)


def repo_info(hosted: HostedModel) -> dict[str, Any]:
    """The Hub's model info: what snapshot_download and scripts such as hfd read."""
    manifest = hosted.manifest
    newest = max(record.mtime_ns for record in manifest.files) / 1e9
    return {
        "id": hosted.model_id,
        "modelId": hosted.model_id,
        "sha": manifest.commit,
        "private": False,
        "gated": False,
        "disabled": False,
        "lastModified": datetime.fromtimestamp(newest, UTC).isoformat().replace("+00:00", "Z"),
        "library_name": "mlc-llm",
        "tags": ["mlc-llm", "web-llm", hosted.model.quantization],
        "siblings": [sibling(record) for record in manifest.files],
    }


def sibling(record: FileRecord) -> dict[str, Any]:
    """One entry of repo info's siblings."""
    entry: dict[str, Any] = {"rfilename": record.path, "size": record.size, "blobId": record.git_sha1}
    if record.is_lfs:
        entry["lfs"] = {"size": record.size, "sha256": record.sha256, "pointerSize": LFS_POINTER_SIZE}
    return entry


def tree_entry(record: FileRecord) -> dict[str, Any]:
    """One entry of the tree listing; LFS files carry their sha256, which pulls verify."""
    entry: dict[str, Any] = {"type": "file", "path": record.path, "size": record.size, "oid": record.git_sha1}
    if record.is_lfs:
        entry["lfs"] = {"oid": record.sha256, "size": record.size, "pointerSize": LFS_POINTER_SIZE}
    return entry


def _split(rest: str) -> tuple[str, str, str, str]:
    """(repo id, kind, revision, folder) from the path after /models/api/models/."""
    parts = rest.strip("/").split("/")
    for repo_parts in (2, 1):  # org/name first: "org/name/tree/main" must not read as repo "org"
        head, tail = parts[:repo_parts], parts[repo_parts:]
        if not tail:
            return "/".join(head), "info", REVISION, ""
        if tail[0] in ("revision", "tree") and len(tail) >= 2:
            return "/".join(head), tail[0], tail[1], "/".join(tail[2:])
    return rest, "unknown", REVISION, ""
