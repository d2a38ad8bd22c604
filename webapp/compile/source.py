"""What `hearth compile` compiles from: a Hugging Face checkpoint directory or a GGUF file, read and checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from webapp.compile.architectures import Architecture, architecture, config_from_hf, text_model_config
from webapp.compile.errors import CompileError
from webapp.compile.gguf_quant import BlockSource
from webapp.compile.loaders import SafetensorsLoader, read_json_file
from webapp.compile.scheme import Quantization

if TYPE_CHECKING:
    from webapp.compile.build import ModelDefinition

GGUF_SUFFIX = ".gguf"


class WeightLoader(Protocol):
    """Float weights by model parameter name (SafetensorsLoader, GGUFLoader)."""

    def check(self, expected: dict[str, tuple[int, ...]]) -> None: ...

    def load(self, name: str) -> np.ndarray: ...


@dataclass(frozen=True)
class Checkpoint:
    """A checked source, ready to compile: one shape whether it came from a directory or a GGUF file."""

    path: Path
    name: str  # what the model picker shows by default
    hf_config: dict[str, Any]  # Hugging Face config.json (of the text model alone, for a multimodal checkpoint)
    config: Any  # the family's config dataclass
    architecture: Architecture  # the family's row in ARCHITECTURES
    model: ModelDefinition  # the family's model, built once for this config and quantization
    tokenizer: dict[str, Any]  # parsed tokenizer.json
    tokenizer_bytes: bytes  # tokenizer.json exactly as the model directory gets it
    generation: dict[str, Any]  # sampling settings the source carries (mlc-chat-config.json names)
    conv_template: dict[str, Any] | None  # the source's own chat format, inline; None: pick one from tokens
    loader: WeightLoader
    blocks: BlockSource | None  # the GGUF's stored blocks, for q4f32_gguf to keep; None for directories


def is_gguf(source: Path) -> bool:
    """True when SOURCE names a GGUF file rather than a checkpoint directory."""
    return source.suffix.lower() == GGUF_SUFFIX or source.is_file()


def read_checkpoint(
    source: Path,
    quantization: Quantization,
    *,
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
) -> Checkpoint:
    """Read and check a source and its weight headers, and build its model once for `quantization`.

    CompileError says what is wrong and what to do.
    """
    sizes = {"context_window_size": context_window_size, "prefill_chunk_size": prefill_chunk_size}
    read = _read_gguf if is_gguf(source) else _read_directory
    checkpoint = read(source, sizes, quantization)
    checkpoint.loader.check(checkpoint.model.float_shapes)
    return checkpoint


def _define(config: Any, quantization: Quantization) -> tuple[Architecture, ModelDefinition]:
    from webapp.compile.build import define_model

    return architecture(config.model_type), define_model(config, quantization)


def _read_directory(source: Path, sizes: dict[str, int | None], quantization: Quantization) -> Checkpoint:
    if not source.is_dir():
        raise CompileError(f"{source} does not exist: give a Hugging Face checkpoint directory or a .gguf file")
    hf_config, multimodal = text_model_config(read_json_file(source / "config.json"))
    config = config_from_hf(hf_config, **sizes)
    arch, model = _define(config, quantization)
    tokenizer_path = source / "tokenizer.json"
    tokenizer = _check_tokenizer(read_json_file(tokenizer_path), config, str(tokenizer_path))
    generation_path = source / "generation_config.json"
    generation = read_json_file(generation_path) if generation_path.exists() else {}
    return Checkpoint(
        path=source,
        name=source.name,
        hf_config=hf_config,
        config=config,
        architecture=arch,
        model=model,
        tokenizer=tokenizer,
        tokenizer_bytes=tokenizer_path.read_bytes(),
        generation=generation,
        conv_template=None,
        loader=SafetensorsLoader(source, arch.hf_sources, arch.hf_values, multimodal),
        blocks=None,
    )


def _read_gguf(source: Path, sizes: dict[str, int | None], quantization: Quantization) -> Checkpoint:
    from webapp.compile.gguf import load_gguf_checkpoint
    from webapp.compile.gguf.loader import GGUFLoader

    gguf = load_gguf_checkpoint(source)  # GGUFError is a CompileError
    config = config_from_hf(gguf.config, **sizes)
    arch, model = _define(config, quantization)
    tokenizer = _check_tokenizer(json.loads(gguf.tokenizer_json), config, f"the tokenizer of {source}")
    loader = GGUFLoader(gguf, arch.hf_sources)
    return Checkpoint(
        path=source,
        name=source.stem,
        hf_config=gguf.config,
        config=config,
        architecture=arch,
        model=model,
        tokenizer=tokenizer,
        tokenizer_bytes=gguf.tokenizer_json.encode("utf-8"),
        generation=dict(gguf.generation_defaults),
        conv_template=gguf.conv_template,
        loader=loader,
        blocks=loader,
    )


def _check_tokenizer(data: dict[str, Any], config: Any, where: str) -> dict[str, Any]:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(json.dumps(data))
    except Exception as exc:  # the tokenizers library raises a bare Exception on bad input
        raise CompileError(f"{where} is not a tokenizer the tokenizers library can load ({exc})") from None
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > config.vocab_size:
        raise CompileError(
            f"{where} has {size} tokens but the model's vocab_size is {config.vocab_size}: "
            f"the checkpoint's files do not belong together"
        )
    return data
