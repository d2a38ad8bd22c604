"""Compiling from a GGUF: q4f32_gguf keeps its blocks bit for bit, and the CPU build computes with exactly them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_gguf_reading import write_tiny_llama

pytestmark = pytest.mark.compiler

# Every Q4 layout llama.cpp writes, mixed inside the fused q/k/v (Q4_1 + Q4_0) and gate/up projections,
# and one float tensor (ffn_down) that q4f32_gguf must quantize itself. The embedding is Q8_0.
BLOCK_TYPES = {"attn_q": "Q4_1", "attn_k": "Q4_0", "attn_v": "Q4_1", "attn_output": "Q4_0",
               "ffn_gate": "Q4_1", "ffn_up": "Q4_1", "ffn_down": "F32"}
PROMPT_IDS = [97, 10, 20, 30, 40, 50, 60, 70, 80, 90, 5, 15, 25]  # token ids of the tiny GGUF's 98
FOLLOW_IDS = [3, 33, 63, 93]  # fed one at a time after the prompt: the decode path
PREFILL_CHUNK = 8  # shorter than the prompt: prefill runs in two chunks, as in WebLLM


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny_llama(path, types=BLOCK_TYPES)
    return path


def _stored(checkpoint, quantization) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return dict(quantization.convert(checkpoint.model.params, checkpoint.loader.load, checkpoint.blocks))


def test_f16_widening_in_the_library_is_exact_for_every_finite_half() -> None:
    import tvm
    from tvm import te

    from webapp.compile.gguf_quant import _f16_to_f32

    bits = te.placeholder((1 << 16,), "uint32", name="bits")
    widened = te.compute(bits.shape, lambda i: _f16_to_f32(bits[i]), name="widened")
    function = tvm.compile(te.create_prim_func([bits, widened]), target="llvm")
    halves = np.arange(1 << 16, dtype=np.uint32)
    out = tvm.runtime.tensor(np.zeros(1 << 16, np.float32))
    function(tvm.runtime.tensor(halves), out)

    expected = halves.astype(np.uint16).view(np.float16).astype(np.float32)
    finite = np.isfinite(expected)  # scales are never infinite or NaN; the quantizer refuses them
    assert finite.sum() == 63488  # zeros, subnormals and normals of both signs
    assert np.array_equal(out.numpy()[finite].view(np.uint32), expected[finite].view(np.uint32))


def test_gguf_blocks_are_stored_bit_for_bit(tiny_gguf: Path) -> None:
    from webapp.compile.quantize import get_quantization
    from webapp.compile.reference import float_weights
    from webapp.compile.source import read_checkpoint

    spec = get_quantization("q4f32_gguf")
    checkpoint = read_checkpoint(tiny_gguf, spec)
    stored = _stored(checkpoint, spec)
    restored = float_weights(stored)
    exact = [name for name in restored if name.endswith(("qkv_proj.weight", "o_proj.weight", "gate_up_proj.weight"))]
    exact.append("model.embed_tokens.weight")
    assert len(exact) == 3 * 2 + 1
    for name in exact:
        np.testing.assert_array_equal(restored[name], checkpoint.loader.load(name), err_msg=name)
    # The embedding kept 8 bits; the float ffn_down was quantized to 4 bits, within half a step per block.
    assert stored["model.embed_tokens.q_weight"].shape[1] * 4 == restored["model.embed_tokens.weight"].shape[1]
    down = checkpoint.loader.load("model.layers.0.mlp.down_proj.weight")
    blocks = down.reshape(down.shape[0], -1, 32)
    half_step = (blocks.max(-1) - blocks.min(-1)) / 15 / 2
    error = np.abs(restored["model.layers.0.mlp.down_proj.weight"] - down).reshape(blocks.shape)
    assert np.all(error <= half_step[..., None] * 1.01 + 1e-6)


def test_smollm2_q4_1_and_q8_0_tensors_are_stored_bit_for_bit(smollm2: Path) -> None:
    from webapp.compile.quantize import get_quantization
    from webapp.compile.reference import float_weights
    from webapp.compile.source import read_checkpoint

    spec = get_quantization("q4f32_gguf")
    checkpoint = read_checkpoint(smollm2, spec)
    restored = float_weights(_stored(checkpoint, spec))
    assert len(restored) == 30 * 6 + 2
    for name, values in restored.items():  # every parameter, norms included, is what the GGUF holds
        np.testing.assert_array_equal(values, checkpoint.loader.load(name), err_msg=name)


def test_cpu_library_from_a_gguf_computes_like_the_numpy_reference(tiny_gguf: Path) -> None:
    import tvm

    from webapp.compile.build import build_library
    from webapp.compile.native import NativeChat
    from webapp.compile.quantize import get_quantization
    from webapp.compile.reference import ReferenceLlama, float_weights
    from webapp.compile.source import read_checkpoint

    spec = get_quantization("q4f32_gguf")
    checkpoint = read_checkpoint(tiny_gguf, spec, prefill_chunk_size=PREFILL_CHUNK)
    library = build_library(checkpoint.model, tvm.target.Target({"kind": "llvm"}))
    stored = _stored(checkpoint, spec)
    native = NativeChat(library.executable, library.metadata, stored)
    reference = ReferenceLlama(checkpoint.config, float_weights(stored))

    steps = [(native.feed(PROMPT_IDS), reference.forward(PROMPT_IDS))]
    steps += [(native.feed([token]), reference.forward([token])) for token in FOLLOW_IDS]
    for step, (ours, theirs) in enumerate(steps):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * np.abs(theirs).max(), err_msg=f"step {step}")
