"""The quantization schemes (QUANTIZATIONS), and group quantization: its numpy quantizer and GPU layers.

Group quantization (q4*_1) stores each weight row in groups of GROUP_SIZE values along the input
dimension: one scale per group (max |w| / 7) and 4-bit codes q = round(w / scale) + 7 in 0..14,
eight codes per uint32, lowest nibble first. Dequantization is (q - 7) * scale in the model's
dtype: one rounding, done the same way by numpy (dequantize_weight) and by the library
(GroupQuantLinear / GroupQuantEmbedding), so the reference and the GPU see identical weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from webapp.compile.gguf_quant import GGUFQuantization
from webapp.compile.scheme import Quantization, QuantizationError, swap_layers

if TYPE_CHECKING:
    from collections.abc import Callable

    from tvm.relax.frontend import nn

    from webapp.compile.gguf_quant import BlockSource

GROUP_SIZE = 32
BITS = 4
CODES_PER_WORD = 32 // BITS  # 4-bit codes packed into one uint32
MAX_CODE = 2 ** (BITS - 1) - 1  # 7: codes are stored offset by this, so 0..14 means -7..7


# ---- numpy: what the weight writer stores, and what the reference computes with ----


def quantize_weight(weight: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """[rows, cols] float weight -> (codes uint32 [rows, cols / 8], scales dtype [rows, cols / 32])."""
    rows, cols = weight.shape
    if cols % GROUP_SIZE:
        raise QuantizationError(f"a weight with {cols} columns cannot be split into groups of {GROUP_SIZE}")
    groups = weight.astype(np.float32).reshape(rows, cols // GROUP_SIZE, GROUP_SIZE)
    # The scale is rounded to the storage dtype first, so codes are chosen against the scale the GPU will use.
    scale = (np.abs(groups).max(axis=-1) / MAX_CODE).astype(dtype)
    safe_scale = np.where(scale == 0, 1, scale).astype(np.float32)[..., None]
    codes = np.clip(np.rint(groups / safe_scale) + MAX_CODE, 0, 2 * MAX_CODE).astype(np.uint32)
    codes = codes.reshape(rows, cols // CODES_PER_WORD, CODES_PER_WORD)
    shifts = np.arange(CODES_PER_WORD, dtype=np.uint32) * BITS
    packed = np.bitwise_or.reduce(codes << shifts, axis=-1).astype(np.uint32)
    return packed, scale


def dequantize_weight(packed: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The exact inverse the library computes: (code - 7) * scale, in the scales' dtype."""
    rows, words = packed.shape
    shifts = np.arange(CODES_PER_WORD, dtype=np.uint32) * BITS
    codes = (packed[..., None] >> shifts) & np.uint32(2**BITS - 1)
    dtype = scale.dtype
    centred = codes.reshape(rows, words * CODES_PER_WORD).astype(dtype) - dtype.type(MAX_CODE)
    return centred * np.repeat(scale, GROUP_SIZE, axis=1)


# ---- TVM: the quantized layers and the model rewrite ----


def _dequantize_te(packed, scale, dtype: str, row, col):
    # One element of the dequantized weight, as a TE expression (shared by linear and embedding).
    from tvm import tirx

    word = packed[row, col // CODES_PER_WORD]
    shift = (col % CODES_PER_WORD * BITS).astype("uint32")
    code = tirx.bitwise_and(tirx.shift_right(word, shift), tirx.const(2**BITS - 1, "uint32"))
    return (code.astype(dtype) - tirx.const(MAX_CODE, dtype)) * scale[row, col // GROUP_SIZE]


def _make_layers():
    # Defined lazily so importing this module (e.g. for the CLI's list of names) does not import TVM.
    from tvm import te
    from tvm.relax.frontend import nn
    from tvm.relax.frontend.nn import op

    def dequantize(layer) -> nn.Tensor:
        rows, cols = layer.shape

        def compute(packed: te.Tensor, scale: te.Tensor) -> te.Tensor:
            return te.compute(
                (rows, cols), lambda r, c: _dequantize_te(packed, scale, layer.dtype, r, c), name="dequantize"
            )

        return op.tensor_expr_op(compute, "dequantize", [layer.q_weight, layer.q_scale])

    class GroupQuantLinear(nn.Module):
        """nn.Linear whose weight is stored as 4-bit group codes and scales."""

        def __init__(self, in_features: int, out_features: int, bias: bool, dtype: str):
            self.shape = (out_features, in_features)
            self.dtype = dtype
            self.q_weight = nn.Parameter((out_features, in_features // CODES_PER_WORD), "uint32")
            self.q_scale = nn.Parameter((out_features, in_features // GROUP_SIZE), dtype)
            self.bias = nn.Parameter((out_features,), dtype) if bias else None

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            # dequantize -> transpose -> matmul fuse into one kernel (FuseTransposeMatmul + FuseOps).
            out = op.matmul(x, op.permute_dims(dequantize(self)))
            return out + self.bias if self.bias is not None else out

    class GroupQuantEmbedding(nn.Module):
        """nn.Embedding stored as 4-bit group codes: rows are dequantized as they are looked up."""

        def __init__(self, num: int, dim: int, dtype: str):
            self.shape = (num, dim)
            self.dtype = dtype
            self.q_weight = nn.Parameter((num, dim // CODES_PER_WORD), "uint32")
            self.q_scale = nn.Parameter((num, dim // GROUP_SIZE), dtype)

        def forward(self, ids: nn.Tensor) -> nn.Tensor:
            dim = self.shape[1]

            def compute(packed: te.Tensor, scale: te.Tensor, token_ids: te.Tensor) -> te.Tensor:
                count = token_ids.shape[0]
                return te.compute(
                    (count, dim),
                    lambda t, c: _dequantize_te(packed, scale, self.dtype, token_ids[t], c),
                    name="dequantize_take",
                )

            return op.tensor_expr_op(compute, "dequantize_take", [self.q_weight, self.q_scale, ids])

        def lm_head_forward(self, x: nn.Tensor) -> nn.Tensor:
            """x @ table^T, for models whose output projection is the embedding table (fused by fusion.py)."""
            return op.matmul(x, op.permute_dims(dequantize(self)))

    return GroupQuantLinear, GroupQuantEmbedding


@dataclass(frozen=True)
class NoQuantization(Quantization):
    """q0f32 / q0f16: plain float weights, cast to the scheme's dtype."""

    def quantize_model(self, model: nn.Module) -> nn.Module:
        """The float model is already in its stored form."""
        return model


@dataclass(frozen=True)
class GroupQuantization(Quantization):
    """q4f32_1 / q4f16_1: mlc-llm's 4-bit symmetric group codes, one scale per GROUP_SIZE values."""

    def quantize_model(self, model: nn.Module) -> nn.Module:
        """Swap every Linear and Embedding of a float model for its group-quantized form (in place)."""
        linear_cls, embedding_cls = _make_layers()
        return swap_layers(
            model, self, GROUP_SIZE, "q0f32 or q0f16",
            lambda node: linear_cls(node.in_features, node.out_features, node.bias is not None, self.dtype),
            lambda node: embedding_cls(node.num, node.dim, self.dtype),
        )  # fmt: skip

    def quantize_layer(
        self, prefix: str, leaves: set[str], load: Callable[[str], np.ndarray], blocks: BlockSource | None
    ) -> dict[str, np.ndarray]:
        """Codes and scales of "<prefix>.weight", quantized from float."""
        packed, scale = quantize_weight(load(f"{prefix}.weight"), self.dtype)
        return {f"{prefix}.q_weight": packed, f"{prefix}.q_scale": scale}


# The schemes `hearth compile -q` takes; a new scheme is one class and one row here.
QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        NoQuantization("q0f32", "float32"),
        NoQuantization("q0f16", "float16"),
        GroupQuantization("q4f32_1", "float32"),
        GroupQuantization("q4f16_1", "float16"),
        GGUFQuantization("q4f32_gguf", "float32"),
    )
}


def get_quantization(name: str) -> Quantization:
    """Look up a quantization scheme by name."""
    try:
        return QUANTIZATIONS[name]
    except KeyError:
        raise QuantizationError(f"unknown quantization {name!r}: choose one of {', '.join(QUANTIZATIONS)}") from None
