"""Group quantization: the codes the writer stores, and the library dequantizing them bit for bit as numpy does."""

from __future__ import annotations

import numpy as np
import pytest

from webapp.compile.quantize import (
    CODES_PER_WORD,
    GROUP_SIZE,
    MAX_CODE,
    QuantizationError,
    dequantize_weight,
    get_quantization,
    quantize_weight,
)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_quantized_weight_is_within_half_a_step(dtype: str) -> None:
    weight = np.random.default_rng(1).standard_normal((6, 4 * GROUP_SIZE)).astype(np.float32)
    packed, scale = quantize_weight(weight, dtype)
    assert packed.dtype == np.uint32 and packed.shape == (6, 4 * GROUP_SIZE // CODES_PER_WORD)
    assert scale.dtype == dtype and scale.shape == (6, 4)
    restored = dequantize_weight(packed, scale).astype(np.float32)
    step = np.repeat(scale.astype(np.float32), GROUP_SIZE, axis=1)
    # Half a quantization step, plus the float16 rounding of the product.
    assert np.all(np.abs(restored - weight) <= step / 2 + np.abs(weight) * (1e-3 if dtype == "float16" else 1e-6))


def test_codes_are_packed_lowest_nibble_first() -> None:
    # A group whose values are exactly code - 7 (scale 1): the packing is then plain to read.
    codes = np.arange(GROUP_SIZE) % (2 * MAX_CODE + 1)
    codes[0] = 2 * MAX_CODE  # the group's largest |value| sets the scale to 1
    weight = (codes - MAX_CODE).astype(np.float32)[None, :]
    packed, scale = quantize_weight(weight, "float32")
    assert scale[0, 0] == 1.0
    first_word = sum(int(code) << (4 * i) for i, code in enumerate(codes[:CODES_PER_WORD]))
    assert int(packed[0, 0]) == first_word


def test_all_zero_group_stays_zero() -> None:
    packed, scale = quantize_weight(np.zeros((1, GROUP_SIZE), np.float32), "float32")
    assert scale[0, 0] == 0 and np.all(dequantize_weight(packed, scale) == 0)


def test_weight_width_must_split_into_groups() -> None:
    with pytest.raises(QuantizationError, match="groups of 32"):
        quantize_weight(np.zeros((2, 40), np.float32), "float32")


def test_unknown_quantization_names_the_known_ones() -> None:
    with pytest.raises(QuantizationError, match="q0f32, q0f16, q4f32_1, q4f16_1"):
        get_quantization("q4f16_2")


@pytest.mark.compiler
@pytest.mark.parametrize("quantization", ["q4f32_1", "q4f16_1"])
def test_library_dequantizes_exactly_like_numpy(quantization: str) -> None:
    """Look up every row of a quantized embedding on the CPU build: bit-identical to dequantize_weight."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend import nn

    spec = get_quantization(quantization)
    rows, cols = 40, 3 * GROUP_SIZE

    class Table(nn.Module):
        def __init__(self) -> None:
            self.embed = nn.Embedding(rows, cols, dtype=spec.dtype)

        def forward(self, ids: nn.Tensor) -> nn.Tensor:
            return self.embed(ids)

    model = spec.quantize_model(Table())
    forward = {"ids": nn.spec.Tensor([rows], "int32"), "$": {"param_mode": "packed", "effect_mode": "none"}}
    mod, params = model.export_tvm({"forward": forward})
    target = tvm.target.Target({"kind": "llvm"})
    executable = relax.build(mod, target=target)
    vm = relax.VirtualMachine(executable, tvm.cpu())

    weight = (np.random.default_rng(2).standard_normal((rows, cols)) * 3).astype(np.float32)
    packed, scale = quantize_weight(weight, spec.dtype)
    assert [name for name, _ in params] == ["embed.q_weight", "embed.q_scale"]
    ids = tvm.runtime.tensor(np.arange(rows, dtype=np.int32))
    looked_up = vm["forward"](ids, [tvm.runtime.tensor(packed), tvm.runtime.tensor(scale)]).numpy()

    expected = dequantize_weight(packed, scale)
    assert looked_up.dtype == expected.dtype
    assert np.array_equal(looked_up.view(np.uint16 if spec.dtype == "float16" else np.uint32),
                          expected.view(np.uint16 if spec.dtype == "float16" else np.uint32))
