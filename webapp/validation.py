"""Will this model load in WebLLM? One set of rules for a model directory on disk and one behind a URL.

`hearth validate`, `hearth pull` and the Hosted models page use these rules. Each problem names the
file or URL, says what is wrong and what to do. Errors mean WebLLM will not load the model; warnings
mean it will, but something (a Hub client, a COEP page, a cache) will trip over the host.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from webapp.mlc.files import (
    CHAT_CONFIG,
    HEARTH_META,
    LEGACY_TENSOR_CACHE,
    LIBRARY_KEYS,
    MANIFEST,
    TENSOR_CACHE,
    TOKENIZER_FILES,
)
from webapp.mlc.manifest import hash_file, tree_files
from webapp.mlc.model_dir import ModelDirError, find_gpu_library, find_library, read_model_dir, shard_files

ERROR, WARNING = "error", "warning"
REQUIRED_CONFIG_FIELDS = ("model_type", "quantization", "context_window_size", "conv_template", "tokenizer_files")
WASM_MAGIC = b"\0asm"
# An origin that is not the host's own, for the CORS checks.
PROBE_ORIGIN = "https://hearth-validate.invalid"
HTTP_TIMEOUT_S = 20.0
# WebLLM's rule (cleanModelUrl): a URL without /resolve/<rev>/ gets resolve/main/ appended.
REVISION_IN_URL = re.compile(r"/resolve/[^/]+/$")
# Beyond weights and KV cache, WebLLM's runtime allocates scratch (logits, activations): a rough margin.
RUNTIME_OVERHEAD_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One finding: how bad, where (a file or URL), and what to do about it."""

    severity: str  # "error" or "warning"
    where: str
    message: str


@dataclass
class Report:
    """What validation found, for people (lines) and scripts (JSON)."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    download_bytes: int | None = None
    gpu_bytes_estimate: int | None = None
    library: str | None = None

    @property
    def ok(self) -> bool:
        """True when the model will load: no errors (warnings allowed)."""
        return not any(p.severity == ERROR for p in self.problems)

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(ERROR, where, message))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(WARNING, where, message))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "ok": self.ok, "download_bytes": self.download_bytes,
                "gpu_bytes_estimate": self.gpu_bytes_estimate, "library": self.library,
                "problems": [asdict(p) for p in self.problems]}


# ---- rules shared by both kinds of source ----


def check_config(report: Report, config: Any, where: str) -> dict[str, Any]:
    """mlc-chat-config.json: a JSON object with the fields WebLLM reads (None: already reported unreadable)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        report.error(where, "must hold a JSON object: it is not an MLC chat config")
        return {}
    for name in REQUIRED_CONFIG_FIELDS:
        if name not in config:
            report.error(where, f"has no {name!r}: convert the model again with mlc-llm or `hearth compile`")
    if "context_window_size" in config and not (isinstance(config["context_window_size"], int)
                                                 and config["context_window_size"] != 0):
        report.error(where, f"'context_window_size' must be a whole number, not {config['context_window_size']!r}")
    listed = config.get("tokenizer_files", [])
    if not isinstance(listed, list) or not any(name in listed for name in TOKENIZER_FILES):
        report.error(where, "'tokenizer_files' must list tokenizer.json (or tokenizer.model): WebLLM loads only those")
    return config


def check_tensor_cache(report: Report, data: Any, where: str) -> dict[str, int]:
    """tensor-cache.json: its records, each shard's byte count (None: already reported unreadable)."""
    if data is None:
        return {}
    try:
        return shard_files(data, Path(where))
    except ModelDirError as exc:
        report.error(where, str(exc).removeprefix(f"{where}: ").removeprefix(f"{where} "))
        return {}


def check_wasm(report: Report, data: bytes, where: str) -> None:
    """The model library: a WebAssembly binary exporting what tvmjs (inside WebLLM) calls."""
    from webapp.compile.errors import CompileError
    from webapp.compile.link import check_tvmjs_interface, read_wasm_interface

    if data[:4] != WASM_MAGIC:
        report.error(where, "is not WebAssembly (it does not start with \\0asm): download the model's .wasm again")
        return
    with tempfile.NamedTemporaryFile(suffix=".wasm") as copy:  # the reader takes a path
        copy.write(data)
        copy.flush()
        try:
            interface = read_wasm_interface(copy.name)
        except (CompileError, IndexError, UnicodeDecodeError):
            interface = None
    if interface is None:
        report.error(where, "is a truncated or damaged WebAssembly binary: download it again")
        return
    for problem in check_tvmjs_interface(interface):
        report.error(where, f"will not load in WebLLM: {problem}")


def estimate_gpu_bytes(config: dict[str, Any], shard_bytes: int) -> int:
    """Weights + a full KV cache + a margin: roughly what the GPU must hold."""
    model = config.get("model_config") if isinstance(config.get("model_config"), dict) else {}
    layers = model.get("num_hidden_layers") or 0
    heads = model.get("num_attention_heads") or 1
    kv_heads = model.get("num_key_value_heads") or heads
    head_dim = model.get("head_dim") or (model.get("hidden_size") or 0) // heads
    context = config.get("context_window_size") if isinstance(config.get("context_window_size"), int) else 0
    element = 2 if "f16" in str(config.get("quantization", "")) else 4
    kv_cache = 2 * layers * kv_heads * head_dim * max(context, 0) * element
    return shard_bytes + kv_cache + RUNTIME_OVERHEAD_BYTES


# ---- a model directory on disk ----


def validate_dir(path: Path, libs_dir: Path | None = None, expected_sha256: dict[str, str] | None = None) -> Report:
    """Check a model directory (and its library, inside it or in libs_dir) as WebLLM will load it.

    Hashes every file that has a recorded sha256 (the manifest, or expected_sha256 from a pull's tree).
    """
    report = Report(str(path))
    libs_dir = libs_dir or path.parent / "libs"
    if not path.is_dir():
        report.error(str(path), "is not a directory: give the folder that holds mlc-chat-config.json")
        return report
    config = check_config(report, _local_json(report, path / CHAT_CONFIG), str(path / CHAT_CONFIG))
    cache_path = path / TENSOR_CACHE
    if not cache_path.exists() and (path / LEGACY_TENSOR_CACHE).exists():
        report.error(str(path / LEGACY_TENSOR_CACHE), f"WebLLM 0.2.80+ fetches {TENSOR_CACHE}: copy this file "
                                                      "to that name (the format is the same)")
        cache_path = path / LEGACY_TENSOR_CACHE
    shards = check_tensor_cache(report, _local_json(report, cache_path), str(cache_path))
    for name, nbytes in shards.items():
        shard = path / name
        if not shard.is_file():
            report.error(str(shard), f"is listed in {TENSOR_CACHE} but missing: download it again")
        elif shard.stat().st_size != nbytes:
            report.error(str(shard), f"has {shard.stat().st_size} bytes but {TENSOR_CACHE} says {nbytes}: "
                                     "it was cut short or is another file; download it again")
    for name in config.get("tokenizer_files", []) if isinstance(config.get("tokenizer_files"), list) else []:
        if name in TOKENIZER_FILES and not (path / name).is_file():
            report.error(str(path / name), f"is listed in {CHAT_CONFIG} 'tokenizer_files' but missing")
    libraries = _local_libraries(report, path, libs_dir)
    _check_hashes(report, path, libraries, expected_sha256 or {})
    if report.ok:
        model = read_model_dir(path)
        # What a browser downloads: the model and one library (the fallback one; a GPU's is about as big).
        report.download_bytes = model.total_bytes + (libraries[0].stat().st_size if libraries else 0)
        report.gpu_bytes_estimate = estimate_gpu_bytes(config, model.shard_bytes)
    return report


def _local_json(report: Report, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        report.error(str(path), "is missing: an MLC model directory needs it")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.error(str(path), f"is not valid JSON ({exc}): download or convert it again")
    return None


def _local_libraries(report: Report, path: Path, libs_dir: Path) -> list[Path]:
    """The model's libraries (for every adapter, then for real GPUs if named), each checked as WebAssembly."""
    meta = _meta(path)
    try:
        library = find_library(path, libs_dir, meta.get(LIBRARY_KEYS["fallback"]), path.name)
    except ModelDirError as exc:
        report.error(str(path), str(exc).removeprefix("its "))
        return []
    report.library = str(library)
    gpu_name = meta.get(LIBRARY_KEYS["gpu"])
    gpu_library = find_gpu_library(path, libs_dir, gpu_name if isinstance(gpu_name, str) else None)
    if isinstance(gpu_name, str) and gpu_library is None:
        report.warn(str(path), f"{HEARTH_META} names the GPU library {gpu_name}, which is in neither {path} nor "
                               f"{libs_dir}: real GPUs get {library.name}, which runs everywhere but slower; "
                               "copy the GPU library there too")
    libraries = [library, *([gpu_library] if gpu_library else [])]
    for each in libraries:
        check_wasm(report, each.read_bytes(), str(each))
    return libraries


def _meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / HEARTH_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _check_hashes(report: Report, path: Path, libraries: list[Path], expected: dict[str, str]) -> None:
    files = {name: file for name, (file, _in_libs) in tree_files(path, libraries).items()}
    recorded = expected or _manifest_hashes(path, files)
    for name, sha256 in sorted(recorded.items()):
        if name in files and hash_file(files[name])[0] != sha256:
            report.error(str(files[name]), f"does not match its recorded sha256 ({sha256[:12]}…): the bytes are "
                                           f"corrupt; download it again (or, if you changed it on purpose, delete "
                                           f"{MANIFEST} so Hearth hashes it anew)")


def _manifest_hashes(path: Path, files: dict[str, Path]) -> dict[str, str]:
    # A file whose size changed is simply newer than the manifest; same size, other bytes is corruption.
    try:
        records = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["files"]
        return {r["path"]: r["sha256"] for r in records
                if r["path"] in files and files[r["path"]].stat().st_size == r["size"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


# ---- a model behind a URL ----


def model_base_url(url: str) -> str:
    """The URL WebLLM fetches files under: as given when it names a revision, else with resolve/main/."""
    base = url if url.endswith("/") else url + "/"
    return base if REVISION_IN_URL.search(base) else base + "resolve/main/"


def validate_url(url: str, lib_url: str | None = None, client: Any = None) -> Report:
    """Check a model over HTTP as a browser on another origin will fetch it, headers included."""
    import httpx

    report = Report(url)
    base = model_base_url(url)
    own = client is None
    client = client or httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=True)
    try:
        fetch = _Fetcher(report, client)
        config = check_config(report, fetch.json(base + CHAT_CONFIG), base + CHAT_CONFIG)
        if report.problems and not config:
            return report
        shards = check_tensor_cache(report, fetch.json(base + TENSOR_CACHE), base + TENSOR_CACHE)
        etags: dict[str, str] = {}
        for name, nbytes in shards.items():
            size, etag = fetch.size(base + name)
            if size is not None and size != nbytes:
                report.error(base + name, f"is {size} bytes but {TENSOR_CACHE} says {nbytes}: the host has a "
                                          "truncated or different file")
            if etag:
                etags.setdefault(etag, name)
                if etags[etag] != name:
                    report.warn(base + name, f"has the same ETag as {etags[etag]}: Hugging Face clients would "
                                             "store both as one file; serve content-hash ETags")
        tokenizer = next((n for n in TOKENIZER_FILES if n in config.get("tokenizer_files", [])), "tokenizer.json")
        fetch.total += fetch.size(base + tokenizer)[0] or 0
        lib_url = lib_url or _library_from_tree(client, base)
        if lib_url is None:
            report.error(url, "no model library found: pass --lib-url with the URL of its .wasm")
        else:
            report.library = lib_url
            if (data := fetch.bytes(lib_url)) is not None:
                check_wasm(report, data, lib_url)
        _check_headers(report, client, base + CHAT_CONFIG, base + next(iter(shards), CHAT_CONFIG), lib_url)
        if report.ok:
            report.download_bytes = sum(shards.values()) + fetch.total
            report.gpu_bytes_estimate = estimate_gpu_bytes(config, sum(shards.values()))
    finally:
        if own:
            client.close()
    return report


@dataclass
class _Fetcher:
    report: Report
    client: Any
    total: int = 0  # bytes of the non-shard files fetched (config, tokenizer, library)

    def _get(self, url: str, method: str = "GET") -> Any:
        import httpx

        try:
            response = self.client.request(method, url, headers={"Origin": PROBE_ORIGIN})
        except httpx.HTTPError as exc:
            self.report.error(url, f"cannot be fetched ({type(exc).__name__}: {exc}): check the host is up "
                                   "and the URL is right")
            return None
        if response.status_code >= 400:
            self.report.error(url, f"answered HTTP {response.status_code}: the file is not there; check the URL")
            return None
        return response

    def json(self, url: str) -> Any:
        response = self._get(url)
        if response is None:
            return None
        try:
            self.total += len(response.content)
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            start = response.text[:40].strip()
            self.report.error(url, f"is not JSON ({kind}, starting {start!r}): the URL probably points at a "
                                   "web page, not at an MLC model directory")
            return None

    def size(self, url: str) -> tuple[int | None, str | None]:
        response = self._get(url, "HEAD")
        if response is None:
            return None, None
        length = response.headers.get("x-linked-size") or response.headers.get("content-length")
        return (int(length) if length and length.isdigit() else None), response.headers.get("etag")

    def bytes(self, url: str) -> bytes | None:
        response = self._get(url)
        if response is None:
            return None
        self.total += len(response.content)
        return response.content


def _library_from_tree(client: Any, base: str) -> str | None:
    # A Hearth (and any Hub-like host) lists the library in the repository tree, beside the weights.
    match = re.search(r"^(.*)/([^/]+(?:/[^/]+)?)/resolve/([^/]+)/$", base)
    if not match:
        return None
    endpoint, repo, revision = match.groups()
    try:
        tree = client.get(f"{endpoint}/api/models/{repo}/tree/{revision}").json()
    except Exception:  # noqa: BLE001 - any failure just means "not a Hub-like host"
        return None
    wasm = [e["path"] for e in tree if isinstance(e, dict) and str(e.get("path", "")).endswith(".wasm")]
    return base + wasm[0] if len(wasm) == 1 else None


def _check_headers(report: Report, client: Any, json_url: str, shard_url: str, lib_url: str | None) -> None:
    import httpx

    checks: list[tuple[str, Callable[[httpx.Response], None]]] = [
        (json_url, lambda r: _cors(report, json_url, r)),
        (shard_url, lambda r: _cors(report, shard_url, r)),
    ]
    try:
        for url, check in checks:
            check(client.get(url, headers={"Origin": PROBE_ORIGIN, "Range": "bytes=0-0"}))
        preflight = client.options(shard_url, headers={"Origin": PROBE_ORIGIN, "Access-Control-Request-Method": "GET",
                                                       "Access-Control-Request-Headers": "range"})
        if preflight.status_code >= 400 or not preflight.headers.get("access-control-allow-origin"):
            report.warn(shard_url, f"answers a CORS preflight (OPTIONS) with {preflight.status_code} and no "
                                   "Access-Control-Allow-Origin: pages that send a Range header cannot fetch it")
        if lib_url:
            wasm = client.head(lib_url, headers={"Origin": PROBE_ORIGIN})
            if wasm.headers.get("content-type", "").split(";")[0].strip() != "application/wasm":
                report.warn(lib_url, f"is served as {wasm.headers.get('content-type')!r}: serve .wasm as "
                                     "application/wasm so browsers compile it while it downloads")
    except httpx.HTTPError as exc:
        report.error(shard_url, f"stopped answering while its headers were checked ({exc})")


def _cors(report: Report, url: str, response: Any) -> None:
    allow = response.headers.get("access-control-allow-origin")
    if allow not in ("*", PROBE_ORIGIN):
        report.error(url, "has no Access-Control-Allow-Origin for other origins: a page elsewhere cannot read it; "
                          "send Access-Control-Allow-Origin: * on model files")
    if response.headers.get("access-control-allow-credentials", "").lower() == "true":
        report.warn(url, "allows credentials: model files should be public, without credentials")
    corp = response.headers.get("cross-origin-resource-policy")
    if corp not in (None, "cross-origin"):
        report.error(url, f"sends Cross-Origin-Resource-Policy: {corp}: cross-origin-isolated pages cannot load it; "
                          "send cross-origin")
    elif corp is None:
        report.warn(url, "sends no Cross-Origin-Resource-Policy: add cross-origin for pages that embed it no-cors")
    if response.status_code != 206:
        report.warn(url, f"answers a Range request with {response.status_code}, not 206: downloads cannot resume")
    elif not re.fullmatch(r"bytes 0-0/\d+", response.headers.get("content-range", "")):
        report.warn(url, "sends no numeric Content-Range with 206: Hugging Face clients cannot resume")
