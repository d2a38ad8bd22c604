"""One manifest per hosted model: each file's size and hashes, the commit sha derived from them, SRI hashes.

The manifest (hearth-manifest.json in the model directory) is what the model host answers from:
ETags, the Hugging Face tree and commit sha, index.json. Files are hashed once; afterwards a file
whose size and mtime match its record is trusted, so no request re-hashes a shard. Whoever writes a
model directory (compile, pull, install-default) calls update_manifest before the directory goes live.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from webapp.mlc.files import CHAT_CONFIG, MANIFEST, TOKENIZER_FILES
from webapp.mlc.model_dir import MLCModel, ModelDirError, find_gpu_library, find_library, read_json, read_model_dir
from webapp.mlc.write import write_json

FORMAT = 2  # 2: a second library, for real GPUs
HASH_CHUNK = 1 << 20
# Files served as Git LFS objects in the Hugging Face tree (their ETag is the sha256, as on the Hub).
LFS_SUFFIXES = (".bin", ".wasm", ".safetensors", ".gguf", ".model")
# One rebuild at a time per directory: two threads would race on its manifest's temporary file. A
# model being hashed in the background must not hold up requests for the others, hence one lock each.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()
# Manifests of directories Hearth may not write to (a read-only mount) live here instead.
_IN_MEMORY: dict[Path, Manifest] = {}


@dataclass(frozen=True)
class FileRecord:
    """One file of the model's repository tree."""

    path: str  # its name in the tree (MLC model directories are flat)
    size: int
    mtime_ns: int
    sha256: str
    git_sha1: str  # the git blob id, `git hash-object`: the Hub's oid for non-LFS files
    in_libs: bool = False  # the model library, kept in <models>/libs/ but listed at the tree's root

    @property
    def is_lfs(self) -> bool:
        """Large binary files: the Hub stores them in LFS and names them by sha256."""
        return self.path.endswith(LFS_SUFFIXES)

    @property
    def etag(self) -> str:
        """A content-unique ETag, quoted: huggingface-hub names its cached blobs by it."""
        return f'"{self.sha256 if self.is_lfs else self.git_sha1}"'

    @property
    def sri(self) -> str:
        """The Subresource Integrity hash WebLLM's ModelRecord.integrity takes."""
        return "sha256-" + base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")


@dataclass(frozen=True)
class Manifest:
    """A checked model directory, its library and every file's hashes."""

    model: MLCModel
    library: str  # the library's name in the tree (the one for every adapter)
    files: tuple[FileRecord, ...]
    gpu_library: str | None = None  # the library scheduled for real GPUs, if the model has one

    @property
    def commit(self) -> str:
        """A 40-hex sha that changes whenever any file's name or bytes change."""
        digest = hashlib.sha1()
        for record in sorted(self.files, key=lambda r: r.path):
            digest.update(f"{record.path}\0{record.git_sha1}\n".encode())
        return digest.hexdigest()

    def file(self, name: str) -> FileRecord | None:
        """The record of one file of the tree, or None."""
        return next((record for record in self.files if record.path == name), None)

    @property
    def library_record(self) -> FileRecord:
        record = self.file(self.library)
        assert record is not None
        return record

    @property
    def library_records(self) -> dict[str, FileRecord]:
        """Each schedule set's library: {"fallback": ..., "gpu": ...}, the GPU one only if there is one."""
        records = {"fallback": self.library_record}
        gpu = self.file(self.gpu_library) if self.gpu_library else None
        if gpu is not None:
            records["gpu"] = gpu
        return records

    def integrity(self, library: FileRecord | None = None) -> dict[str, Any]:
        """WebLLM's ModelRecord.integrity: SRI hashes of the config, a library (the fallback one unless
        given) and the tokenizer."""
        tokenizers = {r.path: r.sri for r in self.files if r.path in TOKENIZER_FILES and r.path in self.model.files}
        config = self.file(CHAT_CONFIG)
        assert config is not None
        return {"config": config.sri, "model_lib": (library or self.library_record).sri, "tokenizer": tokenizers}

    def to_json(self) -> dict[str, Any]:
        model = {k: v for k, v in asdict(self.model).items() if k != "path"}
        return {"format": FORMAT, "commit": self.commit, "library": self.library, "gpu_library": self.gpu_library,
                "model": model, "files": [asdict(record) for record in self.files]}


def hash_file(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, read once in 1 MiB chunks."""
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest()


def tree_files(model_dir: Path, libraries: list[Path]) -> dict[str, tuple[Path, bool]]:
    """name -> (path on disk, kept in libs/) for every file the model's tree lists."""
    real_root = model_dir.resolve()
    files: dict[str, tuple[Path, bool]] = {}
    for entry in sorted(model_dir.iterdir()):
        if entry.name.startswith(".") or entry.name == MANIFEST:
            continue
        try:
            real = entry.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        # A symlink out of the model directory is never listed (nor served).
        if real.is_file() and real.is_relative_to(real_root):
            files[entry.name] = (entry, False)
    for library in libraries:
        if library.parent.resolve() != real_root:
            files[library.name] = (library, True)
    return files


def load_manifest(model_dir: Path) -> Manifest | None:
    """The manifest last written for this directory (fresh or not), or None."""
    if model_dir in _IN_MEMORY:
        return _IN_MEMORY[model_dir]
    try:
        data = read_json(model_dir / MANIFEST)
        if data.get("format") != FORMAT:
            return None
        model = MLCModel(path=model_dir, **{**data["model"], "files": tuple(data["model"]["files"])})
        return Manifest(model=model, library=data["library"], gpu_library=data["gpu_library"],
                        files=tuple(FileRecord(**record) for record in data["files"]))
    except (ModelDirError, AttributeError, KeyError, TypeError):
        return None  # absent, or written by another version: rebuilt from the files


def is_fresh(manifest: Manifest, model_dir: Path, libs_dir: Path) -> bool:
    """True when every file still has the size and mtime it was hashed with, and none came or went."""
    lib_paths = [(libs_dir if library.in_libs else model_dir) / library.path
                 for library in manifest.library_records.values()]
    listed = tree_files(model_dir, [path for path in lib_paths if path.is_file()])
    if set(listed) != {record.path for record in manifest.files}:
        return False
    for record in manifest.files:
        path, in_libs = listed[record.path]
        try:
            stat = path.stat()
        except OSError:
            return False
        if (stat.st_size, stat.st_mtime_ns, in_libs) != (record.size, record.mtime_ns, record.in_libs):
            return False
    return True


def pending_bytes(model_dir: Path, libs_dir: Path) -> int:
    """How many bytes update_manifest would hash now (0 when the manifest is fresh)."""
    old = load_manifest(model_dir)
    if old is not None and is_fresh(old, model_dir, libs_dir):
        return 0
    known = {r.path: r for r in old.files} if old else {}
    total = 0
    for name, (path, _in_libs) in tree_files(model_dir, []).items():
        stat = path.stat()
        record = known.get(name)
        if record is None or (record.size, record.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            total += stat.st_size
    return total


def update_manifest(model_dir: Path, libs_dir: Path, model_id: str | None = None,
                    hashed: dict[str, tuple[str, str]] | None = None) -> Manifest:
    """Check the directory and bring its manifest up to date, hashing only files that changed.

    hashed: (sha256, git sha1) of files the caller hashed as it wrote them (a pull), taken as they are.
    Raises ModelDirError (with what to fix) when the directory is not a complete model.
    """
    old = load_manifest(model_dir)
    if old is not None and is_fresh(old, model_dir, libs_dir):  # the common case: no lock needed
        return _with_id(old, model_id)
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(model_dir, threading.Lock())
    with lock:
        old = load_manifest(model_dir)
        if old is not None and is_fresh(old, model_dir, libs_dir):
            return _with_id(old, model_id)
        model = read_model_dir(model_dir, model_id)
        library = find_library(model_dir, libs_dir, model.model_lib, model.model_id)
        gpu_library = find_gpu_library(model_dir, libs_dir, model.gpu_model_lib)
        libraries = [library, *([gpu_library] if gpu_library else [])]
        known = {r.path: r for r in old.files} if old else {}
        for name, (sha256, git_sha1) in (hashed or {}).items():
            stat = (model_dir / name).stat()
            known[name] = FileRecord(name, stat.st_size, stat.st_mtime_ns, sha256, git_sha1)
        records = []
        for name, (path, in_libs) in tree_files(model_dir, libraries).items():
            stat = path.stat()
            record = known.get(name)
            if record is None or (record.size, record.mtime_ns, record.in_libs) != (
                    stat.st_size, stat.st_mtime_ns, in_libs):
                sha256, git_sha1 = hash_file(path)
                record = FileRecord(name, stat.st_size, stat.st_mtime_ns, sha256, git_sha1, in_libs)
            records.append(record)
        manifest = Manifest(model=model, library=library.name, files=tuple(records),
                            gpu_library=gpu_library.name if gpu_library else None)
        _save(model_dir, manifest)
        return manifest


def _with_id(manifest: Manifest, model_id: str | None) -> Manifest:
    if model_id is None or manifest.model.model_id == model_id:
        return manifest
    return replace(manifest, model=replace(manifest.model, model_id=model_id))


def _save(model_dir: Path, manifest: Manifest) -> None:
    try:
        write_json(model_dir / MANIFEST, manifest.to_json())
        _IN_MEMORY.pop(model_dir, None)
    except OSError:  # a read-only directory: hashed once per process instead of once
        _IN_MEMORY[model_dir] = manifest
