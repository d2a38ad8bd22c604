"""Quantization modes: the numpy quantizer the weight writer uses and the layers that dequantize on the GPU.

Group quantization (q4*_1) stores each weight row in groups of GROUP_SIZE values along the input
dimension: one scale per group (max |w| / 7) and 4-bit codes q = round(w / scale) + 7 in 0..14,
eight codes per uint32, lowest nibble first. Dequantization is (q - 7) * scale in the model's
dtype: one rounding, done the same way by numpy (dequantize_weight) and by the library
(GroupQuantLinear / GroupQuantEmbedding), so the reference and the GPU see identical weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from webapp.compile.errors import CompileError

if TYPE_CHECKING:
    from tvm.relax.frontend import nn

    from webapp.compile.gguf_quant import BlockSource

GROUP_SIZE = 32
BITS = 4
CODES_PER_WORD = 32 // BITS  # 4-bit codes packed into one uint32
MAX_CODE = 2 ** (BITS - 1) - 1  # 7: codes are stored offset by this, so 0..14 means -7..7


class QuantizationError(CompileError):
    """A quantization name or a weight shape that Hearth cannot quantize; the message says what to fix."""


@dataclass(frozen=True)
class Quantization:
    """One quantization mode, named as mlc-llm names it (q<bits>f<float bits>_<layout>)."""

    name: str
    # "none": plain float weights; "group": 4-bit symmetric group codes (mlc-llm's q4*_1);
    # "gguf": GGUF's Q4_1/Q8_0 blocks, kept exactly (see gguf_quant.py)
    kind: Literal["none", "group", "gguf"]
    dtype: Literal["float32", "float16"]  # activations, norms, biases and scales

    @property
    def needs_shader_f16(self) -> bool:
        """True when the library computes in float16 (WebGPU feature shader-f16)."""
        return self.dtype == "float16"


QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        Quantization("q0f32", "none", "float32"),
        Quantization("q0f16", "none", "float16"),
        Quantization("q4f32_1", "group", "float32"),
        Quantization("q4f16_1", "group", "float16"),
        Quantization("q4f32_gguf", "gguf", "float32"),
    )
}


def get_quantization(name: str) -> Quantization:
    """Look up a quantization mode by name."""
    try:
        return QUANTIZATIONS[name]
    except KeyError:
        raise QuantizationError(f"unknown quantization {name!r}: choose one of {', '.join(QUANTIZATIONS)}") from None


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


def quantize_model(model: nn.Module, quantization: Quantization) -> nn.Module:
    """Swap every Linear and Embedding of a float model for its group-quantized form (in place)."""
    if quantization.kind == "none":
        return model
    if quantization.kind == "gguf":
        from webapp.compile.gguf_quant import quantize_model_gguf

        return quantize_model_gguf(model)
    from tvm.relax.frontend import nn

    linear_cls, embedding_cls = _make_layers()

    def check(path: str, cols: int) -> None:
        if cols % GROUP_SIZE:
            raise QuantizationError(
                f"{path} has {cols} input columns, not a multiple of {GROUP_SIZE}: "
                f"{quantization.name} cannot store it; use q0f32 or q0f16 for this model"
            )

    class _Swap(nn.Mutator):
        def visit_module(self, name: str, node: nn.Module) -> nn.Module:
            if isinstance(node, nn.Linear):
                check(name, node.in_features)
                return linear_cls(node.in_features, node.out_features, node.bias is not None, quantization.dtype)
            if isinstance(node, nn.Embedding):
                check(name, node.dim)
                return embedding_cls(node.num, node.dim, quantization.dtype)
            return self.visit(name, node)

    return _Swap().visit("", model)


def convert_params(
    library_params: Sequence[tuple[str, tuple[int, ...], str]],
    load: Callable[[str], np.ndarray],
    quantization: Quantization,
    blocks: BlockSource | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield the array for each library parameter (name, shape, dtype), in order.

    load(name) gives a float weight by the float model's parameter name. "x.q_weight" and its
    scales come from quantizing "x.weight" once; every other name is loaded and cast. For q4f32_gguf,
    `blocks` (a GGUF's loader) gives the stored blocks, which are kept as they are where they fit.
    """
    from webapp.compile.gguf_quant import SCALE_MIN, quantize_param

    names = {name for name, _, _ in library_params}
    quantized: dict[str, np.ndarray] = {}
    for name, shape, dtype in library_params:
        prefix, _, leaf = name.rpartition(".")
        if name not in quantized and leaf in ("q_weight", "q_scale", SCALE_MIN):
            if quantization.kind == "gguf":
                quantized = quantize_param(prefix, f"{prefix}.{SCALE_MIN}" in names, load, blocks)
            else:
                packed, scale = quantize_weight(load(f"{prefix}.weight"), quantization.dtype)
                quantized = {f"{prefix}.q_weight": packed, f"{prefix}.q_scale": scale}
        array = quantized.pop(name) if name in quantized else np.ascontiguousarray(load(name).astype(dtype))
        if tuple(array.shape) != tuple(shape) or str(array.dtype) != dtype:
            raise QuantizationError(
                f"weight {name} converts to {array.dtype}{list(array.shape)} "
                f"but the library expects {dtype}{list(shape)}"
            )
        yield name, array
