"""A GGUF file as a Hugging Face-style checkpoint: config, lazily decoded weights, tokenizer and chat settings."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from webapp.compile.architectures import architecture
from webapp.compile.gguf.chat import conversation_template, generation_defaults, stop_token_ids
from webapp.compile.gguf.config import hf_config
from webapp.compile.gguf.reader import GGUFError, GGUFFile
from webapp.compile.gguf.tensors import GGUFTensor, gguf_tensors
from webapp.compile.gguf.tokenizer import tokenizer_json
from webapp.compile.gguf.vocab import Vocabulary, read_vocabulary

# Little-endian, as the safetensors format requires.
_SAFETENSORS_DTYPES = {"float32": ("F32", "<f4"), "float16": ("F16", "<f2")}


@dataclass
class GGUFCheckpoint:
    """Everything the compiler needs from one GGUF file; weights are read only when iterated."""

    path: Path
    name: str  # general.name, or the file name
    config: dict[str, Any]  # Hugging Face config.json
    tokenizer_json: str  # Hugging Face tokenizer.json text
    vocabulary: Vocabulary
    conv_template: dict[str, Any] | None  # inline mlc-llm conversation template, None if not recognised
    conv_template_note: str  # why that template, or why none
    stop_token_ids: list[int]
    generation_defaults: dict[str, float]  # mlc-chat-config.json names: temperature, top_p...
    chat_template: str | None  # the GGUF's Jinja chat template, verbatim
    _tensors: list[GGUFTensor] = field(repr=False)

    def tensors(self) -> Iterator[tuple[str, np.ndarray]]:
        """(Hugging Face name, float32 array) pairs, decoded one at a time, in the HF layout and values."""
        layout = architecture(self.config["model_type"]).gguf
        shift = np.float32(layout.norm_shift if layout else 0.0)
        for tensor in self._tensors:
            values = tensor.dequantize()
            yield tensor.name, values - shift if shift and tensor.name.endswith("norm.weight") else values

    def raw_tensors(self) -> Iterator[tuple[str, GGUFTensor]]:
        """(Hugging Face name, tensor record): its `ggml_type`, `q4_blocks()`, `raw()` or `dequantize()`."""
        for tensor in self._tensors:
            yield tensor.name, tensor

    @property
    def tokenizer_info(self) -> dict[str, Any]:
        """mlc-chat-config.json's tokenizer_info: how WebLLM's grammar engine reads the token table."""
        if self.vocabulary.model == "llama":  # SentencePiece: "▁" for spaces, <0xNN> byte tokens
            space = self.vocabulary.add_space_prefix
            return {"token_postproc_method": "byte_fallback", "prepend_space_in_encode": space,
                    "strip_space_in_decode": space}
        return {"token_postproc_method": "byte_level", "prepend_space_in_encode": False,
                "strip_space_in_decode": False}

    def tokenizer_config(self) -> dict[str, Any]:
        """A minimal Hugging Face tokenizer_config.json: special tokens and the chat template."""
        vocab = self.vocabulary
        config: dict[str, Any] = {
            "add_bos_token": vocab.add_bos,
            "add_eos_token": vocab.add_eos,
            "clean_up_tokenization_spaces": False,
            "model_max_length": self.config["max_position_embeddings"],
            "tokenizer_class": "PreTrainedTokenizerFast",
        }
        for key, token_id in (("bos_token", vocab.bos_id), ("eos_token", vocab.eos_id),
                              ("unk_token", vocab.unk_id), ("pad_token", vocab.pad_id)):
            if token_id is not None:
                config[key] = vocab.tokens[token_id]
        if self.chat_template:
            config["chat_template"] = self.chat_template
        return config


def load_gguf_checkpoint(path: str | Path) -> GGUFCheckpoint:
    """Open a GGUF and check it whole; GGUFError (with what to do) if anything is missing or unsupported."""
    gf = GGUFFile(path)
    config = hf_config(gf)
    layout = gf.check_architecture().gguf
    assert layout is not None  # check_architecture only finds rows with a GGUF layout
    tensors = gguf_tensors(gf, config, layout)
    vocab = read_vocabulary(gf)
    if len(vocab.tokens) != config["vocab_size"]:
        raise GGUFError(f"{gf.path}: {len(vocab.tokens)} tokens but a vocabulary size of {config['vocab_size']}.")
    conv, note = conversation_template(gf, vocab)
    return GGUFCheckpoint(
        path=gf.path,
        name=gf.get("general.name") or gf.path.stem,
        config=config,
        tokenizer_json=tokenizer_json(vocab, str(gf.path)),
        vocabulary=vocab,
        conv_template=conv,
        conv_template_note=note,
        stop_token_ids=stop_token_ids(vocab, gf),
        generation_defaults=generation_defaults(gf),
        chat_template=gf.get("tokenizer.chat_template"),
        _tensors=tensors,
    )


def write_hf_checkpoint(checkpoint: GGUFCheckpoint, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Write config.json, model.safetensors, tokenizer.json and tokenizer_config.json to out_dir.

    The weights are dequantized and written one tensor at a time, so memory stays at one tensor.
    """
    if dtype not in _SAFETENSORS_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_SAFETENSORS_DTYPES)}, not {dtype!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {**checkpoint.config, "torch_dtype": dtype}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "tokenizer.json").write_text(checkpoint.tokenizer_json, encoding="utf-8")
    (out / "tokenizer_config.json").write_text(
        json.dumps(checkpoint.tokenizer_config(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_safetensors(out / "model.safetensors", checkpoint, dtype)
    return out


def _write_safetensors(target: Path, checkpoint: GGUFCheckpoint, dtype: str) -> None:
    # The safetensors format: an 8-byte little-endian header length, a JSON header of names, shapes and
    # byte ranges, then the raw data. Shapes are known up front, so the data can be streamed.
    code, np_dtype = _SAFETENSORS_DTYPES[dtype]
    item = np.dtype(np_dtype).itemsize
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "source": checkpoint.path.name}}
    offset = 0
    for name, tensor in checkpoint.raw_tensors():
        size = int(np.prod(tensor.shape)) * item
        header[name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # keeps the data 8-byte aligned
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(struct.pack("<Q", len(blob)))
        handle.write(blob)
        for _, values in checkpoint.tensors():
            handle.write(np.ascontiguousarray(values, dtype=np_dtype).tobytes())
    partial.replace(target)
