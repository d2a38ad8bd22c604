"""q4f32_gguf: weights in GGUF's own 4-bit (Q4_0/Q4_1) and 8-bit (Q8_0) blocks, kept bit for bit; f32 compute.

Linear weights: a 4-bit code q (0..15) per value and, per block of 32 values along a row, a float16
scale and minimum: value = q * scale + minimum. That is ggml's Q4_1; Q4_0 is the case minimum =
-8 * scale, which float16 holds exactly. Codes pack eight to a uint32, lowest nibble first; the
scale and minimum pack into one uint32 (scale in the low 16 bits). No float16 type reaches the
shader: it widens the halves with integer operations, which is exact, so the library runs without
shader-f16, and its download is the GGUF's size rather than that of float32 scales.
The embedding table (also the output head when tied): an 8-bit code per value and a float32 scale
per block of 32: value = (code - 128) * scale. That is ggml's Q8_0 (int8 values, float16 scale,
widened exactly). llama.cpp keeps this most sensitive matrix at 8 bits in its Q4 files; so do we.
Tensors stored in other GGUF types, or read from a Hugging Face checkpoint, are quantized into the
same layout from float, by ggml's own rules (min/max per block; max |w| / 127).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from webapp.compile.errors import CompileError
from webapp.compile.scheme import Quantization, swap_layers

if TYPE_CHECKING:
    from tvm.relax.frontend import nn

    from webapp.compile.gguf.tensors import Q4Blocks, Q8Blocks

BLOCK = 32  # values per scale (and minimum), as in ggml's Q4_0, Q4_1 and Q8_0
Q4_MAX = 15
Q8_OFFSET = 128  # 8-bit codes are stored as q + 128, so 0..255 holds int8's -128..127
SCALE_MIN = "q_scale_min"  # the 4-bit layers' packed float16 (scale, minimum) parameter


class BlockSource(Protocol):
    """Raw GGUF blocks by model parameter name (GGUFLoader); None where a tensor has another type."""

    def q4_blocks(self, name: str) -> Q4Blocks | None: ...

    def q8_blocks(self, name: str) -> Q8Blocks | None: ...


# ---- numpy: packing, quantizing, and the exact values the library computes ----


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """[rows, cols] codes -> uint32 [rows, cols * bits / 32], lowest bits first."""
    per_word = 32 // bits
    rows, cols = codes.shape
    grouped = codes.astype(np.uint32).reshape(rows, cols // per_word, per_word)
    shifts = np.arange(per_word, dtype=np.uint32) * bits
    return np.bitwise_or.reduce(grouped << shifts, axis=-1).astype(np.uint32)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """The inverse of pack_codes: uint32 [rows, words] -> uint32 codes [rows, words * 32 / bits]."""
    per_word = 32 // bits
    shifts = np.arange(per_word, dtype=np.uint32) * bits
    codes = (packed[..., None] >> shifts) & np.uint32(2**bits - 1)
    return codes.reshape(packed.shape[0], -1)


def pack_scale_min(scale: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """float16 scale and minimum [rows, blocks] -> uint32 [rows, blocks], scale in the low half."""
    low = scale.astype(np.float16).view(np.uint16).astype(np.uint32)
    high = minimum.astype(np.float16).view(np.uint16).astype(np.uint32)
    return low | (high << np.uint32(16))


def unpack_scale_min(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint32 [rows, blocks] -> (scale, minimum) as float32, widened exactly from float16."""
    low = (packed & np.uint32(0xFFFF)).astype(np.uint16).view(np.float16)
    high = (packed >> np.uint32(16)).astype(np.uint16).view(np.float16)
    return low.astype(np.float32), high.astype(np.float32)


def _blocks(weight: np.ndarray) -> np.ndarray:
    rows, cols = weight.shape
    if cols % BLOCK:
        raise CompileError(f"a weight with {cols} columns cannot be split into blocks of {BLOCK}")
    return weight.astype(np.float32).reshape(rows, cols // BLOCK, BLOCK)


def _finite_f16(values: np.ndarray, what: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        half = values.astype(np.float16)
    if not np.all(np.isfinite(half)):
        raise CompileError(f"a {what} does not fit in float16: the weights are not those of a trained model")
    return half


def q4_from_blocks(blocks: Q4Blocks) -> tuple[np.ndarray, np.ndarray]:
    """GGUF Q4_0/Q4_1 blocks -> (codes, packed scale and minimum), bit for bit."""
    return pack_codes(blocks.q, 4), pack_scale_min(blocks.scale, blocks.minimum)


def q4_from_float(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float weight -> (codes, packed scale and minimum), by ggml's Q4_1 rule (min/max per block)."""
    groups = _blocks(weight)
    low, high = groups.min(axis=-1), groups.max(axis=-1)
    scale = _finite_f16((high - low) / Q4_MAX, "4-bit block scale")
    minimum = _finite_f16(low, "4-bit block minimum")
    # Codes are chosen against the float16 scale and minimum the library will use.
    step = np.where(scale == 0, 1, scale).astype(np.float32)[..., None]
    codes = np.clip(np.rint((groups - minimum.astype(np.float32)[..., None]) / step), 0, Q4_MAX)
    return pack_codes(codes.reshape(weight.shape), 4), pack_scale_min(scale, minimum)


def dequantize_q4(packed: np.ndarray, scale_min: np.ndarray) -> np.ndarray:
    """float32 values exactly as the library computes them: code * scale + minimum."""
    codes = unpack_codes(packed, 4).astype(np.float32)
    scale, minimum = unpack_scale_min(scale_min)
    return codes * np.repeat(scale, BLOCK, axis=1) + np.repeat(minimum, BLOCK, axis=1)


def q8_from_blocks(blocks: Q8Blocks) -> tuple[np.ndarray, np.ndarray]:
    """GGUF Q8_0 blocks -> (codes, float32 scales), bit for bit."""
    codes = blocks.q.astype(np.int32) + Q8_OFFSET
    return pack_codes(codes, 8), blocks.scale.astype(np.float32)


def q8_from_float(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float weight -> (codes, float32 scales), by ggml's Q8_0 rule (max |w| / 127, scale in float16)."""
    groups = _blocks(weight)
    scale = _finite_f16(np.abs(groups).max(axis=-1) / 127, "8-bit block scale").astype(np.float32)
    step = np.where(scale == 0, 1, scale)[..., None]
    codes = np.clip(np.rint(groups / step), -127, 127).astype(np.int32) + Q8_OFFSET
    return pack_codes(codes.reshape(weight.shape), 8), scale


def dequantize_q8(packed: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 values exactly as the library computes them: (code - 128) * scale."""
    codes = unpack_codes(packed, 8).astype(np.float32) - np.float32(Q8_OFFSET)
    return codes * np.repeat(scale.astype(np.float32), BLOCK, axis=1)


# ---- TVM: the layers that dequantize on the GPU ----


def _f16_to_f32(bits: Any) -> Any:
    # float16 bits (a uint32 below 2^16) -> float32, exactly, with no select: a select whose arms
    # read memory is lowered to branches, which cost most of a decode kernel's time on SwiftShader.
    from tvm import tirx

    u32, f32 = "uint32", "float32"
    sign = tirx.shift_right(bits, tirx.const(15, u32)) & tirx.const(1, u32)
    exponent = tirx.shift_right(bits, tirx.const(10, u32)) & tirx.const(0x1F, u32)
    mantissa = bits & tirx.const(0x3FF, u32)
    # Rebias the exponent from 15 to 127 and widen the mantissa from 10 to 23 bits: the magnitude of
    # a normal number. For exponent 0 this reads (1 + m/1024) * 2^-15, and the subnormal m/1024 * 2^-14
    # is twice that minus 2^-14, exactly (infinities and NaN never occur in quantized scales).
    widened = tirx.reinterpret(
        f32, tirx.shift_left(exponent + tirx.const(112, u32), tirx.const(23, u32)) | tirx.shift_left(mantissa, tirx.const(13, u32))
    )
    subnormal = (exponent == tirx.const(0, u32)).astype(f32)
    magnitude = widened * (tirx.const(1.0, f32) + subnormal) - subnormal * tirx.const(2.0**-14, f32)
    return magnitude * (tirx.const(1.0, f32) - tirx.const(2.0, f32) * sign.astype(f32))


def _code(packed: Any, row: Any, col: Any, bits: int) -> Any:
    from tvm import tirx

    per_word = 32 // bits
    word = packed[row, col // per_word]
    shift = (col % per_word * bits).astype("uint32")
    return tirx.bitwise_and(tirx.shift_right(word, shift), tirx.const(2**bits - 1, "uint32"))


def _q4_weight(shape: tuple[int, int], packed: Any, scale_min: Any) -> Any:
    # Three stages: each block's scale and minimum widened from float16, then the values. A prompt's
    # matmul (schedules.RowGEMM) then widens a block's pair once for its 32 values, not for every
    # value: with 16-token tiles, the gate/up kernel of a 42-token prompt took half the time.
    from tvm import te, tirx

    blocks = (shape[0], shape[1] // BLOCK)
    low, high = tirx.const(0xFFFF, "uint32"), tirx.const(16, "uint32")
    scale = te.compute(blocks, lambda r, b: _f16_to_f32(scale_min[r, b] & low), name="dequantize_scale")
    minimum = te.compute(blocks, lambda r, b: _f16_to_f32(tirx.shift_right(scale_min[r, b], high)), name="dequantize_min")
    return te.compute(
        shape,
        lambda r, c: _code(packed, r, c, 4).astype("float32") * scale[r, c // BLOCK] + minimum[r, c // BLOCK],
        name="dequantize",
    )


def _q8_value(packed: Any, scale: Any, row: Any, col: Any) -> Any:
    from tvm import tirx

    code = _code(packed, row, col, 8).astype("float32") - tirx.const(Q8_OFFSET, "float32")
    return code * scale[row, col // BLOCK]


def _make_layers() -> tuple[type, type]:
    # Defined lazily so importing this module does not import TVM.
    from tvm import te
    from tvm.relax.frontend import nn
    from tvm.relax.frontend.nn import op

    def dequantize(shape: tuple[int, int], weight: Callable, codes: nn.Tensor, scales: nn.Tensor) -> nn.Tensor:
        # Named "dequantize*": the fusion pass folds such a producer into the matmul that reads it.
        return op.tensor_expr_op(lambda packed, scale: weight(shape, packed, scale), "dequantize", [codes, scales])

    def q8_weight(shape: tuple[int, int], packed: te.Tensor, scale: te.Tensor) -> te.Tensor:
        return te.compute(shape, lambda r, c: _q8_value(packed, scale, r, c), name="dequantize")

    class Q4Linear(nn.Module):
        """nn.Linear (float32) whose weight is stored as 4-bit codes with a float16 scale and minimum per block."""

        def __init__(self, in_features: int, out_features: int, bias: bool):
            self.shape = (out_features, in_features)
            self.q_weight = nn.Parameter((out_features, in_features // 8), "uint32")
            self.q_scale_min = nn.Parameter((out_features, in_features // BLOCK), "uint32")
            self.bias = nn.Parameter((out_features,), "float32") if bias else None

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            weight = dequantize(self.shape, _q4_weight, self.q_weight, self.q_scale_min)
            out = op.matmul(x, op.permute_dims(weight))
            return out + self.bias if self.bias is not None else out

    class Q8Embedding(nn.Module):
        """nn.Embedding (float32) stored as 8-bit codes with a scale per block; also the tied output head."""

        def __init__(self, num: int, dim: int):
            self.shape = (num, dim)
            self.q_weight = nn.Parameter((num, dim // 4), "uint32")
            self.q_scale = nn.Parameter((num, dim // BLOCK), "float32")

        def forward(self, ids: nn.Tensor) -> nn.Tensor:
            dim = self.shape[1]

            def compute(packed: te.Tensor, scale: te.Tensor, token_ids: te.Tensor) -> te.Tensor:
                return te.compute(
                    (token_ids.shape[0], dim),
                    lambda t, c: _q8_value(packed, scale, token_ids[t], c),
                    name="dequantize_take",
                )

            return op.tensor_expr_op(compute, "dequantize_take", [self.q_weight, self.q_scale, ids])

        def lm_head_forward(self, x: nn.Tensor) -> nn.Tensor:
            """x @ table^T, for models whose output projection is the embedding table."""
            return op.matmul(x, op.permute_dims(dequantize(self.shape, q8_weight, self.q_weight, self.q_scale)))

    return Q4Linear, Q8Embedding


@dataclass(frozen=True)
class GGUFQuantization(Quantization):
    """q4f32_gguf: Linear weights in Q4_1 blocks, the embedding in Q8_0 blocks, kept exactly from a GGUF."""

    def quantize_model(self, model: nn.Module) -> nn.Module:
        """Swap every Linear for Q4Linear and every Embedding for Q8Embedding (in place)."""
        linear_cls, embedding_cls = _make_layers()
        return swap_layers(
            model, self, BLOCK, "q0f32",
            lambda node: linear_cls(node.in_features, node.out_features, node.bias is not None),
            lambda node: embedding_cls(node.num, node.dim),
        )  # fmt: skip

    def quantize_layer(
        self, prefix: str, leaves: set[str], load: Callable[[str], np.ndarray], blocks: BlockSource | None
    ) -> dict[str, np.ndarray]:
        """The stored arrays of one layer, exact where the GGUF's blocks allow, else quantized from float."""
        name = f"{prefix}.weight"
        if SCALE_MIN in leaves:  # a 4-bit linear layer
            raw4 = blocks.q4_blocks(name) if blocks is not None else None
            packed, scales = q4_from_blocks(raw4) if raw4 is not None else q4_from_float(load(name))
            return {f"{prefix}.q_weight": packed, f"{prefix}.{SCALE_MIN}": scales}
        raw8 = blocks.q8_blocks(name) if blocks is not None else None
        packed, scale = q8_from_blocks(raw8) if raw8 is not None else q8_from_float(load(name))
        return {f"{prefix}.q_weight": packed, f"{prefix}.q_scale": scale}
