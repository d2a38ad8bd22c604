"""`hearth pull`: copy a model onto this Hearth from the Hub, another Hearth or a mirror, resumably.

huggingface-hub does what it is for: the endpoint (HF_ENDPOINT, --endpoint), the token (HF_TOKEN and
its token file), offline mode (HF_HUB_OFFLINE), the repo info and file tree with their hashes. The
bytes come through Hearth's own loop, because huggingface-hub deletes a partial file on failure and a
killed pull should lose nothing: each file streams into a .part file in a staging directory (a
dot-name inside the models directory, keyed by the commit, so a rerun finds it), continues with a
Range request, is checked against its sha256 (or git blob id) and only then renamed. When every file
is there the staging directory is validated and renamed into place: a model appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from webapp.catalog import RESERVED_NAMES
from webapp.hosting import SAFE_FILE_NAME
from webapp.mlc.files import REPO_ID_PATTERN
from webapp.mlc.manifest import FileRecord, load_manifest, update_manifest
from webapp.prebuilt import PrebuiltListError, prebuilt_libraries
from webapp.validation import validate_dir

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 20
HTTP_TIMEOUT_S = 30.0
# Progress lines at most this often (a TTY would redraw; logs and the page want few lines).
PROGRESS_INTERVAL_S = 1.0


class PullError(Exception):
    """A pull that cannot go on; the message says what is wrong and what to do."""


class PullCancelled(PullError):
    """The pull was cancelled (from the page); finished and partial files stay for a later pull."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch, with what it must hash to."""

    name: str
    size: int
    url: str
    sha256: str | None = None
    git_sha1: str | None = None


@dataclass(frozen=True)
class Source:
    """What to pull: a repository at one commit, as a file list."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    headers: dict[str, str] = field(default_factory=dict)  # the token, for the Hub and private mirrors


@dataclass
class PullResult:
    """What a pull did, for people and for --json."""

    model_id: str
    path: str
    commit: str
    files: int
    total_bytes: int
    fetched_bytes: int = 0
    reused_files: int = 0
    seconds: float = 0.0
    changed: bool = True


Progress = Callable[[str], None]


def check_repo_id(repo_id: str) -> str:
    """The repo id if it is one (name or org/name, plain characters), else a PullError saying so."""
    if not REPO_ID_PATTERN.match(repo_id) or repo_id.split("/")[0] in RESERVED_NAMES:
        raise PullError(f"{repo_id!r} is not a repository id: use <name> or <org>/<name> with letters, digits, "
                        "'.', '_' and '-' (no '..', slashes at the ends, backslashes or absolute paths)")
    return repo_id


def hub_source(repo_id: str, endpoint: str | None = None, revision: str = "main", lib_url: str | None = None,
               libraries: Mapping[str, str] | None = None) -> Source:
    """List a repository on the Hub or a Hub-compatible endpoint (another Hearth: http://host/models).

    The library is lib_url when given, else the repository's own .wasm, else the one the prebuilt
    list names (libraries: repo id → library URL; WebLLM's vendored list when None).
    """
    return _with_library(_listing(repo_id, endpoint, revision), lib_url, libraries)


def _listing(repo_id: str, endpoint: str | None, revision: str) -> Source:
    """The repository's files at one commit, as its endpoint lists them."""
    import httpx2  # huggingface-hub 2.x's HTTP client: its transport errors are not OSErrors
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError,
    )
    from huggingface_hub.utils import build_hf_headers

    check_repo_id(repo_id)
    endpoint = (endpoint or constants.ENDPOINT or DEFAULT_ENDPOINT).rstrip("/")
    if constants.HF_HUB_OFFLINE:
        raise PullError("HF_HUB_OFFLINE is set, so nothing can be downloaded: unset it to pull")
    api = HfApi(endpoint=endpoint)
    try:
        info = api.model_info(repo_id, revision=revision)
        tree = list(api.list_repo_tree(repo_id, revision=info.sha, recursive=True))
    except GatedRepoError:
        raise PullError(f"{repo_id} at {endpoint} is gated: accept its terms on the Hub, then log in "
                        "(hf auth login) or set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise PullError(f"{endpoint} has no model {repo_id!r} (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise PullError(f"{repo_id} at {endpoint} has no revision {revision!r}") from None
    except OfflineModeIsEnabled:
        raise PullError("HF_HUB_OFFLINE is set, so nothing can be downloaded: unset it to pull") from None
    except (HfHubHTTPError, httpx2.HTTPError, OSError, ValueError) as exc:
        raise PullError(f"cannot list {repo_id} at {endpoint}: {_first_line(exc)}; check the endpoint URL "
                        "and that the host is up") from None
    files = []
    for entry in tree:
        if not hasattr(entry, "size"):  # a folder
            continue
        name = entry.path
        if name.startswith(".") or name == "README.md":  # .gitattributes and the model card: not the model
            continue
        if not SAFE_FILE_NAME.match(name):
            raise PullError(f"{endpoint} lists {name!r} in {repo_id}: not a plain file name, so nothing was "
                            "written; an MLC model directory is flat")
        sha256 = entry.lfs.sha256 if entry.lfs else None
        files.append(RemoteFile(name, entry.size, f"{endpoint}/{repo_id}/resolve/{info.sha}/{name}", sha256,
                                None if entry.lfs else entry.blob_id))
    return Source(repo_id, info.sha, tuple(files), build_hf_headers(token=None, library_name="hearth"))


def _with_library(source: Source, lib_url: str | None, libraries: Mapping[str, str] | None) -> Source:
    """source with its model library: lib_url when given, else its own .wasm, else the prebuilt list's."""
    if lib_url is None:
        if any(remote.name.endswith(".wasm") for remote in source.files):
            return source
        lib_url = _prebuilt_library(source.repo_id, libraries)
    library = RemoteFile(lib_url.rstrip("/").rsplit("/", 1)[-1], -1, lib_url)
    return replace(source, files=(*source.files, library))


def _prebuilt_library(repo_id: str, libraries: Mapping[str, str] | None) -> str:
    # A Hub MLC repository holds no library: WebLLM's prebuilt list (the version the page runs) names it.
    try:
        listed = prebuilt_libraries() if libraries is None else libraries
    except PrebuiltListError as exc:
        raise PullError(f"{repo_id} holds no model library (.wasm), and {exc}") from None
    if repo_id not in listed:
        raise PullError(f"{repo_id} holds no model library (.wasm) and WebLLM's prebuilt list has no entry for it: "
                        "give the URL of its library with --lib-url")
    return listed[repo_id]


def url_source(url: str, lib_url: str | None = None) -> Source:
    """A source from the URL of a model directory on a Hub-like host: <endpoint>/<repo>[/resolve/<rev>/]."""
    match = re.match(r"^(https?://.+?)/((?:[^/]+/)?[^/]+?)(?:/resolve/([^/]+))?/?$", url)
    if not match:
        raise PullError(f"{url} is not the URL of a model directory: give http(s)://<host>/<repo>[/resolve/<rev>/]")
    endpoint, repo_id, revision = match.groups()
    # The repository is the last one or two segments; try the longer one first (org/name).
    candidates = [(endpoint, repo_id)]
    if "/" in repo_id:
        org, name = repo_id.split("/")
        candidates.append((f"{endpoint}/{org}", name))
    last: PullError | None = None
    for base, repo in candidates:
        try:
            listed = _listing(repo, base, revision or "main")
        except PullError as exc:
            last = exc
            continue
        return _with_library(listed, lib_url, None)
    assert last is not None
    raise last


def pull(source: Source, models_dir: Path, force: bool = False, progress: Progress | None = None,
         cancel: threading.Event | None = None) -> PullResult:
    """Fetch every file of source into models_dir/<repo id>, resuming an earlier attempt's files.

    cancel, once set, stops the pull at the next chunk with PullCancelled.
    """
    import httpx

    say = progress or (lambda _line: None)
    target = models_dir.joinpath(*source.repo_id.split("/"))
    result = PullResult(source.repo_id, str(target), source.commit, len(source.files),
                        sum(max(f.size, 0) for f in source.files))
    existing = load_manifest(target) if target.is_dir() else None
    if existing is not None and _same_model(existing.commit, source, target):
        result.changed = False
        return result
    if target.exists() and not force:
        raise PullError(f"{target} already holds a different model with the id {source.repo_id}: "
                        "pass --force to replace it, or remove it first")
    staging = models_dir / f".pull-{source.repo_id.replace('/', '--')}-{source.commit[:12]}"
    start = time.monotonic()
    try:
        staging.mkdir(parents=True, exist_ok=True)
        with httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=True, headers=source.headers) as client:
            meter = _Meter(result.total_bytes, say, cancel or threading.Event())
            hashed = {}
            for remote in source.files:
                fetched, digests = _fetch(client, remote, staging, meter)
                result.fetched_bytes += fetched
                result.reused_files += fetched == 0
                if digests:
                    hashed[remote.name] = digests
        _finish(source, staging, target, hashed)
    except httpx.TransportError as exc:  # the host went away, or never answered (a --lib-url or prebuilt library)
        raise PullError(f"cannot fetch {exc.request.url} ({_first_line(exc)}): check the network and that the host "
                        f"is up, then run the pull again; finished files are kept in {staging}") from None
    except OSError as exc:
        raise PullError(f"cannot write into {models_dir} ({exc.strerror or exc}): free some space or fix its "
                        f"permissions, then run the pull again; finished files are kept in {staging}") from None
    result.seconds = round(time.monotonic() - start, 2)
    say(f"pulled {source.repo_id} ({result.total_bytes / 1e6:.1f} MB, {result.fetched_bytes / 1e6:.1f} MB "
        f"fetched) into {target}")
    return result


def _same_model(commit: str, source: Source, target: Path) -> bool:
    # The same commit from another Hearth; from the Hub (no Hearth manifest there) compare the hashes.
    if commit == source.commit:
        return True
    manifest = load_manifest(target)
    mine = {r.path: r for r in manifest.files} if manifest else {}
    return len(mine) == len(source.files) and all(_same_file(mine.get(f.name), f) for f in source.files)


def _same_file(record: FileRecord | None, remote: RemoteFile) -> bool:
    # The Hub lists a sha256 for LFS files and a git blob id for the rest; a library from a URL
    # (--lib-url or the prebuilt list) has no hash to compare, and its name carries its version.
    if record is None:
        return False
    if remote.sha256 or remote.git_sha1:
        return remote.sha256 in (None, record.sha256) and remote.git_sha1 in (None, record.git_sha1)
    return remote.size < 0


class _Hasher:
    """sha256 and git blob sha1 of a file of known size, fed as it is written (no second read)."""

    def __init__(self, size: int) -> None:
        self.sha256, self.git_sha1 = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.git_sha1.update(chunk)

    def feed_file(self, path: Path) -> _Hasher:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                self.update(chunk)
        return self

    def matches(self, remote: RemoteFile) -> bool:
        return (remote.sha256 in (None, self.sha256.hexdigest())
                and remote.git_sha1 in (None, self.git_sha1.hexdigest()))

    def digests(self) -> tuple[str, str]:
        return self.sha256.hexdigest(), self.git_sha1.hexdigest()


def _fetch(client: Any, remote: RemoteFile, staging: Path, meter: _Meter) -> tuple[int, tuple[str, str] | None]:
    """Bring one file into staging (resuming its .part), verify it, rename it: (bytes fetched, its hashes).

    A file of unknown size (a --lib-url library) is checked only by arriving whole, and not hashed here.
    """
    final, part = staging / remote.name, staging / f".{remote.name}.part"
    known_size = remote.size >= 0
    if final.is_file() and known_size and final.stat().st_size == remote.size:
        hasher = _Hasher(remote.size).feed_file(final)
        if hasher.matches(remote):  # finished before: verified, not fetched again
            meter.skip(remote.size)
            return 0, hasher.digests()
    final.unlink(missing_ok=True)
    offset = part.stat().st_size if part.is_file() and known_size else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    fetched = 0
    with client.stream("GET", remote.url, headers=headers) as response:
        if response.status_code == 416 and offset:  # the .part is already complete (or too long)
            part.unlink()
            return _fetch(client, remote, staging, meter)
        if response.status_code >= 400:
            raise PullError(f"{remote.url} answered HTTP {response.status_code}: the source lost the file; "
                            "run the pull again later")
        if response.status_code != 206:
            offset = 0  # the server sent the whole file
        hasher = _Hasher(remote.size)
        if offset:
            hasher.feed_file(part)
        meter.skip(offset)
        with part.open("ab" if offset else "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                hasher.update(chunk)
                fetched += len(chunk)
                meter.add(remote.name, len(chunk))
    if known_size and (part.stat().st_size != remote.size or not hasher.matches(remote)):
        part.unlink()
        raise PullError(f"{remote.name} from {remote.url} does not match the size or hash the source lists: "
                        "it was corrupted on the way or changed at the source; run the pull again")
    part.replace(final)
    return fetched, hasher.digests() if known_size else None


def _finish(source: Source, staging: Path, target: Path, hashed: dict[str, tuple[str, str]]) -> None:
    """Validate the complete staging directory and rename it into place.

    Nothing is added: the copy is the source's tree, so it has the source's commit sha. The library
    sits inside the model directory, where the catalog finds it.
    """
    for stray in staging.glob(".*.part"):
        stray.unlink()
    report = validate_dir(staging, libs_dir=staging)  # every file was verified as it arrived
    if not report.ok:
        problems = "; ".join(f"{Path(p.where).name}: {p.message}" for p in report.problems if p.severity == "error")
        raise PullError(f"the pulled files do not make a model WebLLM can load ({problems}); nothing was "
                        f"installed, the files are in {staging}")
    update_manifest(staging, staging, source.repo_id, hashed)  # hashed as they arrived: not read again
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # pull() refused this unless --force
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)


class _Meter:
    """Progress over all files: bytes, speed, ETA; one line per second at most."""

    def __init__(self, total: int, say: Progress, cancel: threading.Event) -> None:
        self.total, self.say, self.cancel = total, say, cancel
        self.done = self.fetched = 0
        self.start = self.last = time.monotonic()

    def skip(self, nbytes: int) -> None:
        self.done += nbytes

    def add(self, name: str, nbytes: int) -> None:
        if self.cancel.is_set():
            raise PullCancelled("the pull was cancelled")
        self.done += nbytes
        self.fetched += nbytes
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_S or self.done >= self.total:
            self.last = now
            speed = self.fetched / max(now - self.start, 1e-6)
            eta = (self.total - self.done) / speed if speed else 0
            self.say(f"{name}: {self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB, {speed / 1e6:.1f} MB/s, "
                     f"ETA {eta:.0f} s")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
