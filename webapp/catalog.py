"""Which models this server hosts: the checked model directories under the models directory, with manifests.

A model lives in <models>/<name>/ or, as on the Hugging Face Hub, <models>/<org>/<name>/ (id "org/name").
Each hosted model is read from its manifest; a directory whose manifest is stale is re-checked and its
changed files hashed, inline when they are small, else once in the background while it shows as indexing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webapp.mlc.files import CHAT_CONFIG, MODEL_ID_PATTERN, REPO_ID_PATTERN, TENSOR_CACHE
from webapp.mlc.manifest import Manifest, pending_bytes, update_manifest
from webapp.mlc.model_dir import MLCModel, ModelDirError, find_library, read_model_dir
from webapp.settings import LIBS_DIR_NAME, Settings

# Names that cannot be a model or an organisation: libs/ holds libraries, api/ is the Hub API's prefix.
RESERVED_NAMES = frozenset({LIBS_DIR_NAME, "api"})
# A request hashes at most this much inline (a new config, a small model); more goes to a background thread.
INLINE_HASH_BYTES = 64 * 1024 * 1024
_indexing: set[Path] = set()
_indexing_lock = threading.Lock()


@dataclass(frozen=True)
class HostedModel:
    """A model directory that is complete, with its library and its manifest."""

    manifest: Manifest

    @property
    def model(self) -> MLCModel:
        return self.manifest.model

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def lib_bytes(self) -> int:
        return self.manifest.library_record.size

    @property
    def total_bytes(self) -> int:
        """Everything a browser downloads to run the model: weights, config, tokenizer, library."""
        return self.model.total_bytes + self.lib_bytes


@dataclass(frozen=True)
class BrokenModel:
    """A directory that looks like a model but cannot be served; `problem` says what to fix."""

    model_id: str
    problem: str


def model_dirs(settings: Settings) -> list[tuple[str, Path]]:
    """(id, directory) of every candidate model directory, sorted by id; organisations are one level deep."""
    root = settings.models_dir
    if not root.is_dir():
        return []
    found: list[tuple[str, Path]] = []
    for entry in sorted(root.iterdir()):
        if entry.name in RESERVED_NAMES or entry.name.startswith(".") or not entry.is_dir():
            continue
        if _is_organisation(entry):
            found += [(f"{entry.name}/{child.name}", child) for child in sorted(entry.iterdir())
                      if child.is_dir() and not child.name.startswith(".")]
        else:
            found.append((entry.name, entry))
    return found


def scan_models(settings: Settings) -> tuple[list[HostedModel], list[BrokenModel]]:
    """Every model directory, sorted by id; broken ones are reported, not hidden."""
    hosted: list[HostedModel] = []
    broken: list[BrokenModel] = []
    for model_id, path in model_dirs(settings):
        if not REPO_ID_PATTERN.match(model_id):
            broken.append(BrokenModel(model_id, "the directory name is not a valid model id "
                                                "(letters, digits, '.', '_' and '-' only)"))
            continue
        try:
            hosted.append(_hosted(path, settings, model_id))
        except ModelDirError as exc:
            broken.append(BrokenModel(model_id, str(exc)))
    return hosted, broken


def find_model(settings: Settings, model_id: str) -> HostedModel | None:
    """The hosted model with this id (a name or org/name), or None when it is absent or broken."""
    if not REPO_ID_PATTERN.match(model_id) or model_id.split("/")[0] in RESERVED_NAMES:
        return None
    path = settings.models_dir.joinpath(*model_id.split("/"))
    if "/" in model_id and not _is_organisation(path.parent):
        return None
    try:
        return _hosted(path, settings, model_id)
    except ModelDirError:
        return None


def index_all(settings: Settings, progress: Callable[[str], None] | None = None) -> list[BrokenModel]:
    """Bring every manifest up to date now (hearth serve's start-up); returns what cannot be served."""
    broken = []
    for model_id, path in model_dirs(settings):
        pending = pending_bytes(path, settings.libs_dir) if path.is_dir() else 0
        if pending > INLINE_HASH_BYTES and progress:
            progress(f"hashing {model_id} ({pending / 1e9:.2f} GB, once)")
        try:
            update_manifest(path, settings.libs_dir, model_id)
        except (ModelDirError, OSError) as exc:
            broken.append(BrokenModel(model_id, str(exc)))
    return broken


def _is_organisation(path: Path) -> bool:
    # A model directory has its config or tensor cache; an organisation only holds directories.
    if not path.is_dir() or (path / CHAT_CONFIG).exists() or (path / TENSOR_CACHE).exists():
        return False
    if not MODEL_ID_PATTERN.match(path.name):
        return False
    children = [child for child in path.iterdir() if not child.name.startswith(".")]
    return bool(children) and all(child.is_dir() for child in children)


def _hosted(path: Path, settings: Settings, model_id: str) -> HostedModel:
    libs_dir = settings.libs_dir
    if not path.is_dir():
        raise ModelDirError(f"{path} is not a directory")
    if not path.resolve().is_relative_to(settings.models_dir):
        raise ModelDirError(f"{path} links outside {settings.models_dir}: only files inside it are served")
    if pending_bytes(path, libs_dir) > INLINE_HASH_BYTES:
        model = read_model_dir(path, model_id)  # a broken model says why, not "indexing"
        find_library(path, libs_dir, model.model_lib, model_id)
        _index_in_background(path, libs_dir, model_id)
        raise ModelDirError("is being indexed: its files are hashed once, then it is served (reload in a while)")
    return HostedModel(update_manifest(path, libs_dir, model_id))


def _index_in_background(path: Path, libs_dir: Path, model_id: str) -> None:
    with _indexing_lock:
        if path in _indexing:
            return
        _indexing.add(path)

    def run() -> None:
        try:
            update_manifest(path, libs_dir, model_id)
        except (ModelDirError, OSError):
            pass  # reported by the next scan, which re-reads the directory
        finally:
            with _indexing_lock:
                _indexing.discard(path)

    threading.Thread(target=run, name=f"index {model_id}", daemon=True).start()
