"""GGUF tensors as Hugging Face parameters: names, the Q/K row order, float32 values and raw 4-bit blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import gguf
import numpy as np

from webapp.compile.architectures import GGUFLayout
from webapp.compile.gguf.reader import GGUFError, GGUFFile

_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_PATTERN = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")

# Types Hearth decodes (with gguf.quants, checked against ggml's own dequantize_row_* functions). The
# i-quants (IQ*), ternary and FP4 types are left out: they are rare for the small models Hearth runs.
FLOAT_TYPES = ("F32", "F16", "BF16")
BLOCK_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
QK = 32  # elements per Q4_0, Q4_1 and Q8_0 block


def hf_name(gguf_name: str, layout: GGUFLayout) -> str:
    """The Hugging Face parameter name of a GGUF tensor; GGUFError for names the family does not have."""
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    match = _LAYER_PATTERN.match(gguf_name)
    if match and match.group(2) in layout.layer_names:
        layer, part, kind = match.groups()
        return f"model.layers.{layer}.{layout.layer_names[part]}.{kind}"
    raise GGUFError(
        f"tensor {gguf_name!r} is not part of a {layout.architecture} model as Hearth's compiler builds it; "
        f"compile the Hugging Face checkpoint with `hearth compile --backend mlc-llm` instead."
    )


def unpermute_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation so that rotary pairs are (i, i + head_dim/2) again, as in HF.

    llama.cpp's convert_hf_to_gguf.py reorders each head's rows from Hugging Face's half-split rotary
    layout to the interleaved layout of Meta's checkpoints (rows 2i and 2i+1 form a pair), because ggml's
    rope pairs adjacent values. Row order is all that changes, so this works on float rows and on rows of
    raw quantized blocks alike (blocks run along the input dimension, within one row).
    """
    head_dim = rows.shape[0] // n_heads
    if rows.shape[0] % n_heads or head_dim % 2:
        raise GGUFError(f"cannot split {rows.shape[0]} rows into {n_heads} heads of even size.")
    # GGUF row h*head_dim + 2i + j holds HF row h*head_dim + j*head_dim/2 + i.
    grouped = rows.reshape(n_heads, head_dim // 2, 2, *rows.shape[1:])
    return np.ascontiguousarray(grouped.swapaxes(1, 2).reshape(rows.shape))


@dataclass(frozen=True)
class Q4Blocks:
    """A Q4_0/Q4_1 matrix kept in its 4-bit blocks: value = q * scale + minimum, 32 values per block."""

    ggml_type: str  # "Q4_0" or "Q4_1"
    q: np.ndarray  # uint8 [rows, cols], each 0..15, in element order
    scale: np.ndarray  # float16 [rows, cols // 32]
    minimum: np.ndarray  # float16 [rows, cols // 32]; Q4_0 has none stored, it is -8 * scale (exact)

    def dequantize(self) -> np.ndarray:
        """float32 [rows, cols], the same values ggml computes."""
        rows, cols = self.q.shape
        q = self.q.reshape(rows, cols // QK, QK).astype(np.float32)
        scale = self.scale.astype(np.float32)[..., None]
        if self.ggml_type == "Q4_0":
            values = (q - 8.0) * scale
        else:
            values = q * scale + self.minimum.astype(np.float32)[..., None]
        return values.reshape(rows, cols)

    @staticmethod
    def concatenate(parts: list[Q4Blocks]) -> Q4Blocks:
        """Matrices stacked along the rows (fused projections); the result is Q4_1 if any part is."""
        kind = "Q4_0" if all(part.ggml_type == "Q4_0" for part in parts) else "Q4_1"
        return Q4Blocks(kind, *(np.concatenate([getattr(p, f) for p in parts]) for f in ("q", "scale", "minimum")))


@dataclass(frozen=True)
class Q8Blocks:
    """A Q8_0 matrix kept in its 8-bit blocks: value = q * scale, 32 values per block."""

    q: np.ndarray  # int8 [rows, cols], in element order
    scale: np.ndarray  # float16 [rows, cols // 32]

    def dequantize(self) -> np.ndarray:
        """float32 [rows, cols], the same values ggml computes."""
        rows, cols = self.q.shape
        values = self.q.reshape(rows, cols // QK, QK).astype(np.float32) * self.scale.astype(np.float32)[..., None]
        return values.reshape(rows, cols)

    @staticmethod
    def concatenate(parts: list[Q8Blocks]) -> Q8Blocks:
        """Matrices stacked along the rows."""
        return Q8Blocks(np.concatenate([p.q for p in parts]), np.concatenate([p.scale for p in parts]))


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of the file under its Hugging Face name; reads nothing until asked."""

    name: str  # Hugging Face name
    gguf_name: str
    ggml_type: str  # e.g. "Q4_1", "Q8_0", "F32"
    shape: tuple[int, ...]  # Hugging Face shape: (out_features, in_features) for matrices
    _record: Any = field(repr=False)  # gguf.ReaderTensor: metadata and a memory-mapped view of the data
    _unpermute_heads: int | None = None  # head count of the Q/K permutation to undo, or None

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies in the file."""
        return int(self._record.n_bytes)

    def raw(self) -> np.ndarray:
        """The stored bytes as [rows, bytes per row] uint8 (or the float array), rows in Hugging Face order."""
        data = np.asarray(self._record.data)
        if self._unpermute_heads is not None:
            return unpermute_rows(data, self._unpermute_heads)
        return data

    def dequantize(self) -> np.ndarray:
        """The values as float32 in the Hugging Face shape and layout."""
        data = np.asarray(self._record.data)
        if self.ggml_type in ("F32", "F16"):
            values = data.astype(np.float32)
        else:
            values = gguf.quants.dequantize(data, self._record.tensor_type)
        values = values.reshape(self.shape)
        if self._unpermute_heads is not None:
            values = unpermute_rows(values, self._unpermute_heads)
        return values

    def q4_blocks(self) -> Q4Blocks:
        """The 4-bit values, per-block scales and minimums of a Q4_0/Q4_1 matrix, rows in HF order."""
        if self.ggml_type not in ("Q4_0", "Q4_1"):
            raise GGUFError(f"{self.gguf_name} is {self.ggml_type}, not a Q4_0/Q4_1 tensor.")
        rows, cols = self.shape
        block_bytes = gguf.GGML_QUANT_SIZES[self._record.tensor_type][1]
        blocks = self.raw().reshape(rows, cols // QK, block_bytes)
        scale = blocks[..., 0:2].copy().view(np.float16)[..., 0]
        if self.ggml_type == "Q4_1":
            minimum = blocks[..., 2:4].copy().view(np.float16)[..., 0]
            packed = blocks[..., 4:]
        else:
            minimum = (-8.0 * scale.astype(np.float32)).astype(np.float16)
            packed = blocks[..., 2:]
        # Byte j of a block holds element j in its low nibble and element j + 16 in its high nibble.
        q = np.concatenate([packed & 0x0F, packed >> 4], axis=-1).reshape(rows, cols)
        return Q4Blocks(self.ggml_type, q, scale, minimum)

    def q8_blocks(self) -> Q8Blocks:
        """The 8-bit values and per-block scales of a Q8_0 matrix, rows in HF order."""
        if self.ggml_type != "Q8_0":
            raise GGUFError(f"{self.gguf_name} is {self.ggml_type}, not a Q8_0 tensor.")
        rows, cols = self.shape
        # A Q8_0 block: float16 scale, then 32 int8 values.
        blocks = self.raw().reshape(rows, cols // QK, 2 + QK)
        scale = blocks[..., 0:2].copy().view(np.float16)[..., 0]
        q = blocks[..., 2:].copy().view(np.int8).reshape(rows, cols)
        return Q8Blocks(q, scale)


def gguf_tensors(gf: GGUFFile, config: dict[str, Any], layout: GGUFLayout) -> list[GGUFTensor]:
    """Every tensor of a GGUF under its HF name, checked against the config; GGUFError otherwise."""
    n_heads = config["num_attention_heads"]
    n_kv_heads = config["num_key_value_heads"]
    result = []
    for record in gf.reader.tensors:
        name = hf_name(record.name, layout)
        type_name = record.tensor_type.name
        if type_name not in FLOAT_TYPES + BLOCK_TYPES:
            raise GGUFError(
                f"{gf.path}: tensor {record.name} is stored as {type_name}; Hearth's GGUF reader decodes "
                f"{', '.join(FLOAT_TYPES + BLOCK_TYPES)}. Pick a GGUF quantized with one of those (e.g. Q4_K_M)."
            )
        heads = None
        if layout.permuted_qk and ".self_attn.q_proj." in name:
            heads = n_heads
        elif layout.permuted_qk and ".self_attn.k_proj." in name:
            heads = n_kv_heads
        shape = tuple(int(n) for n in reversed(record.shape.tolist()))
        result.append(GGUFTensor(name, record.name, type_name, shape, record, heads))
    _check_complete(gf, config, {t.name: t for t in result}, layout)
    return result


def _check_complete(
    gf: GGUFFile, config: dict[str, Any], tensors: dict[str, GGUFTensor], layout: GGUFLayout
) -> None:
    # The tensors every family here has, separate or fused as the layout stores them; family-specific
    # ones (q/k norms...) are checked against the model's shapes when it is built.
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    q_rows = config["num_attention_heads"] * config["head_dim"]
    kv_rows = config["num_key_value_heads"] * config["head_dim"]
    expected = {
        "model.embed_tokens.weight": (config["vocab_size"], hidden),
        "model.norm.weight": (hidden,),
    }
    if not config["tie_word_embeddings"]:
        expected["lm_head.weight"] = (config["vocab_size"], hidden)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        expected.update({
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (q_rows, hidden),
            p + "self_attn.k_proj.weight": (kv_rows, hidden),
            p + "self_attn.v_proj.weight": (kv_rows, hidden),
            p + "self_attn.qkv_proj.weight": (q_rows + 2 * kv_rows, hidden),
            p + "self_attn.o_proj.weight": (hidden, q_rows),
            p + "mlp.gate_proj.weight": (ffn, hidden),
            p + "mlp.up_proj.weight": (ffn, hidden),
            p + "mlp.gate_up_proj.weight": (2 * ffn, hidden),
            p + "mlp.down_proj.weight": (hidden, ffn),
        })
    stored = set(layout.layer_names.values())
    expected = {name: shape for name, shape in expected.items()
                if not name.startswith("model.layers.") or name.split(".", 3)[3].rsplit(".", 1)[0] in stored}
    for name, shape in expected.items():
        if name not in tensors:
            raise GGUFError(f"{gf.path} is missing the tensor for {name}; the file is incomplete.")
        if tensors[name].shape != shape:
            raise GGUFError(
                f"{gf.path}: tensor {tensors[name].gguf_name} has shape {list(tensors[name].shape)} (rows, columns), "
                f"but the metadata implies {list(shape)}; the file's metadata and weights disagree."
            )

