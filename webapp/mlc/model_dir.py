"""Read and check one MLC model directory: what WebLLM will fetch, and whether it is all there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webapp.mlc.files import (
    CHAT_CONFIG,
    HEARTH_META,
    LEGACY_TENSOR_CACHE,
    LIB_NAME_PATTERN,
    LIBRARY_KEYS,
    SHARD_PATTERN,
    TENSOR_CACHE,
    TOKENIZER_FILES,
    needs_shader_f16,
)


class ModelDirError(ValueError):
    """A model directory is not a complete, readable MLC model; the message says what to fix."""


@dataclass(frozen=True)
class MLCModel:
    """What a model directory holds, as far as hosting and the model picker care."""

    path: Path
    model_id: str
    display_name: str
    model_type: str  # architecture, e.g. "llama"
    quantization: str  # e.g. "q4f32_1"
    context_window_size: int | None
    conv_template: str | None
    shard_bytes: int  # sum of the weight shards: the bulk of the download
    total_bytes: int  # every file WebLLM downloads from the directory
    files: tuple[str, ...]
    model_lib: str | None  # file name under libs/, from hearth-model.json
    description: str
    default: bool  # hearth-model.json says the chat page should offer it first (Hearth's built-in model)
    gpu_model_lib: str | None = None  # the same model scheduled for real GPUs, under libs/ (optional)

    @property
    def required_features(self) -> list[str]:
        """WebGPU features the model cannot run without."""
        return ["shader-f16"] if needs_shader_f16(self.quantization) else []


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a ModelDirError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelDirError(f"{path.name} is missing from {path.parent}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path} is not valid JSON ({exc})") from None


def shard_files(tensor_cache: dict[str, Any], source: Path) -> dict[str, int]:
    """Map each shard named in a tensor-cache.json to its byte count, checking the structure."""
    records = tensor_cache.get("records") if isinstance(tensor_cache, dict) else None
    if not isinstance(records, list) or not records:
        raise ModelDirError(f"{source} has no 'records' list: it is not an MLC tensor cache")
    shards: dict[str, int] = {}
    for index, record in enumerate(records):
        data_path = record.get("dataPath") if isinstance(record, dict) else None
        nbytes = record.get("nbytes") if isinstance(record, dict) else None
        if not isinstance(data_path, str) or not SHARD_PATTERN.match(data_path):
            raise ModelDirError(f"{source}: record {index} has a bad dataPath {data_path!r}")
        if not isinstance(nbytes, int) or nbytes < 0:
            raise ModelDirError(f"{source}: record {index} ({data_path}) has a bad nbytes {nbytes!r}")
        shards[data_path] = nbytes
    return shards


def read_model_dir(path: Path, model_id: str | None = None) -> MLCModel:
    """Read a model directory and check every file WebLLM will fetch is present and sized right.

    model_id defaults to the directory's name (an organisation's models are <org>/<name>).
    """
    if not path.is_dir():
        raise ModelDirError(f"{path} is not a directory")
    config = read_json(path / CHAT_CONFIG)
    if not isinstance(config, dict):
        raise ModelDirError(f"{path / CHAT_CONFIG} must hold a JSON object")
    cache_path = path / TENSOR_CACHE
    if not cache_path.exists() and (path / LEGACY_TENSOR_CACHE).exists():
        raise ModelDirError(
            f"{path} has {LEGACY_TENSOR_CACHE} but WebLLM 0.2.80+ fetches {TENSOR_CACHE}: "
            f"copy it to that name (the format is the same)"
        )
    shards = shard_files(read_json(cache_path), cache_path)
    for name, nbytes in shards.items():
        shard = path / name
        if not shard.is_file():
            raise ModelDirError(f"{shard} is listed in {TENSOR_CACHE} but missing")
        if shard.stat().st_size != nbytes:
            raise ModelDirError(
                f"{shard} has {shard.stat().st_size} bytes but {TENSOR_CACHE} says {nbytes}: "
                "the download or conversion was cut short"
            )
    tokenizer = _tokenizer_file(path, config)
    meta, meta_path = _read_meta(path), path / HEARTH_META
    files = (CHAT_CONFIG, TENSOR_CACHE, tokenizer, *sorted(shards))
    return MLCModel(
        path=path,
        model_id=model_id or path.name,
        display_name=str(meta.get("display_name") or path.name),
        model_type=str(config.get("model_type", "unknown")),
        quantization=str(config.get("quantization", "unknown")),
        context_window_size=_optional_int(config.get("context_window_size")),
        conv_template=_conv_template_name(config.get("conv_template")),
        shard_bytes=sum(shards.values()),
        total_bytes=sum((path / name).stat().st_size for name in files),
        files=files,
        model_lib=_library_name(meta, LIBRARY_KEYS["fallback"], meta_path),
        description=str(meta.get("description") or ""),
        default=meta.get("default") is True,
        gpu_model_lib=_library_name(meta, LIBRARY_KEYS["gpu"], meta_path),
    )


def _library_name(meta: dict[str, Any], key: str, meta_path: Path) -> str | None:
    name = meta.get(key)
    if name is None:
        return None
    if not isinstance(name, str) or not LIB_NAME_PATTERN.match(name):
        raise ModelDirError(f"{meta_path}: {key} must be a library's file name ending in .wasm, not {name!r}")
    return name


def find_library(path: Path, libs_dir: Path, model_lib: str | None, model_id: str) -> Path:
    """The model's library: its named .wasm in the model directory or in libs/, else the one .wasm inside.

    model_lib is hearth-model.json's name for it; without one the name is <model id>.wasm.
    """
    name = model_lib or f"{model_id.rsplit('/', 1)[-1]}.wasm"
    for candidate in (path / name, libs_dir / name):
        if candidate.is_file():
            return candidate
    inside = sorted(p for p in path.glob("*.wasm") if p.is_file() and not p.name.startswith("."))
    if len(inside) == 1:
        return inside[0]
    if len(inside) > 1:
        names = ", ".join(p.name for p in inside)
        raise ModelDirError(f"{path} holds several libraries ({names}): name one as \"model_lib\" in {HEARTH_META}")
    raise ModelDirError(f"its model library {name} is missing: put it in {path}/ or in {libs_dir}/ "
                        "(compile the model, or copy its .wasm there)")


def find_gpu_library(path: Path, libs_dir: Path, gpu_model_lib: str | None) -> Path | None:
    """The model's library for real GPUs, named by hearth-model.json, in the model directory or libs/.

    None when it is not named or not there: the model is then served with its one library, which
    runs on every adapter (only slower on a real GPU), and `hearth validate` says so.
    """
    if gpu_model_lib is None:
        return None
    return next((c for c in (path / gpu_model_lib, libs_dir / gpu_model_lib) if c.is_file()), None)


def _tokenizer_file(path: Path, config: dict[str, Any]) -> str:
    # WebLLM reads tokenizer.json when the config lists it, else tokenizer.model; nothing else.
    listed = config.get("tokenizer_files") or []
    for name in TOKENIZER_FILES:
        if name in listed and (path / name).is_file():
            return name
    raise ModelDirError(
        f"{path} needs tokenizer.json (or tokenizer.model) listed in {CHAT_CONFIG} 'tokenizer_files' and present"
    )


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / HEARTH_META
    if not meta_path.exists():
        return {}
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise ModelDirError(f"{meta_path} must hold a JSON object")
    return meta


def _conv_template_name(template: Any) -> str | None:
    # mlc-llm writes the template inline as an object with a "name"; older configs use a string.
    if isinstance(template, dict):
        return str(template.get("name")) if template.get("name") else None
    return template if isinstance(template, str) else None


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None
