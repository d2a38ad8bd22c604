"""Each family compiled for TVM's CPU target decodes like llama.cpp running the same weights as a GGUF.

Per family: a tiny random checkpoint in its Hugging Face layout, and the same weights written as a GGUF
the way llama.cpp's converter writes them (tests/tinygguf.py). Hearth must read both into the same
parameters, bit for bit; its library, compiled from the checkpoint and given the GGUF's weights, must
pick llama.cpp's greedy tokens at every step, with logits within LOGIT_TOLERANCE. Both sides compute in
float32 (F32 weights, F32 KV cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.support.llamacpp import greedy_steps
from tests.tinycheckpoint import FAMILIES as CHECKPOINTS
from tests.tinycheckpoint import GEMMA3_MULTIMODAL_NAMES, write_gemma3_multimodal, write_tiny_checkpoint
from tests.tinygguf import write_tiny_gguf

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python runs the GGUF as the reference")

pytestmark = pytest.mark.compiler

STEPS = 16
PROMPT = "The hearth keeps the fire; quantization keeps four bits for every weight of the model."
PREFILL_CHUNK = 8  # shorter than the prompt: prefill runs in several chunks, as in WebLLM
# llama.cpp runs Mistral without its sliding window (its converter writes a "llama" GGUF), the same as
# Mistral within the window only: Mistral's prompt fits in it, and decoding crosses it.
WINDOWED_PROMPT = "The hearth keeps the fire;"
# float32 on both sides, summed in different orders, with ggml's own exp and rope: measured within
# 2e-5 of the step's largest |logit|; this leaves room for other CPUs' SIMD paths.
LOGIT_TOLERANCE = 2e-4
GGML_TYPE_F32 = 0

GEMMA3_4B = {**CHECKPOINTS["gemma3"], "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
# name -> (config.json overrides, GGUF tensors the converted file leaves out)
# llama.cpp runs Mistral GGUFs as Llama ones (its converter writes them so).
FAMILIES: dict[str, tuple[dict, tuple[str, ...]]] = {
    **{name: (overrides, ()) for name, overrides in CHECKPOINTS.items()},
    # Tied embeddings, as in Qwen2.5-0.5B: the GGUF has no output.weight. (Its greedy tokens repeat the
    # last one, as tiny random tied models do; every logit is compared all the same.)
    "qwen2-tied": ({**CHECKPOINTS["qwen2"], "tie_word_embeddings": True}, ()),
    # q/k/v biases but no o_proj bias: llama.cpp loads every Llama attention bias only if it is there.
    "llama-no-o-bias": ({"attention_bias": True}, ("blk.0.attn_output.bias", "blk.1.attn_output.bias")),
    # Gemma3ForConditionalGeneration (4B and up) in both tensor namings, compiled as its text model, which
    # is the GGUF llama.cpp's converter writes; with the 4B's linear rope scaling (by 8) of full attention.
    **{f"gemma3-multimodal-{naming}": (GEMMA3_4B, ()) for naming in GEMMA3_MULTIMODAL_NAMES},
}


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """(name, checkpoint directory, GGUF of the same weights)."""
    overrides, drop = FAMILIES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    directory = write_tiny_checkpoint(root / "checkpoint", **overrides)
    gguf_path = write_tiny_gguf(directory, root / "tiny.gguf", drop=drop)
    if request.param.startswith("gemma3-multimodal-"):  # Hearth compiles the same weights in that layout;
        # llama.cpp's converter writes its text model as the same GGUF.
        naming = request.param.removeprefix("gemma3-multimodal-")
        directory = write_gemma3_multimodal(directory, root / "multimodal", naming)
    return request.param, directory, gguf_path


def _stored(checkpoint) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return dict(checkpoint.model.quantization.convert(checkpoint.model.params, checkpoint.loader.load))


def _prompt(directory: Path, unkept_window: int | None = None) -> list[int]:
    """PROMPT's ids, or WINDOWED_PROMPT's for a model whose window llama.cpp does not keep (its size)."""
    from tokenizers import Tokenizer

    text = WINDOWED_PROMPT if unkept_window else PROMPT
    ids = Tokenizer.from_file(str(directory / "tokenizer.json")).encode(text).ids
    if unkept_window:  # several chunks within the window, and decoding past it
        assert PREFILL_CHUNK < len(ids) <= unkept_window < len(ids) + STEPS
    else:
        assert len(ids) > 2 * PREFILL_CHUNK
    return ids


def llama_cpp_greedy(gguf_path: Path, prompt: list[int], steps: int) -> tuple[list[int], list[np.ndarray]]:
    """llama.cpp's greedy tokens and the logits it chose each one from."""
    # logits_all: llama-cpp-python only copies logits into `scores` in that mode.
    model = llama_cpp.Llama(
        str(gguf_path), n_ctx=256, n_threads=os.cpu_count() or 1, logits_all=True, verbose=False,
        type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32,
    )  # fmt: skip
    return greedy_steps(model, prompt, steps)


def test_gguf_and_checkpoint_give_the_same_parameters(family: tuple[str, Path, Path]) -> None:
    from webapp.compile.quantize import get_quantization
    from webapp.compile.source import read_checkpoint

    name, directory, gguf_path = family
    spec = get_quantization("q0f32")
    from_dir, from_gguf = read_checkpoint(directory, spec), read_checkpoint(gguf_path, spec)
    if name == "mistral":  # the GGUF says "llama" and keeps no sliding window
        assert (from_gguf.config.model_type, from_gguf.config.context_window_size) == ("llama", 512)
    else:
        assert from_gguf.config == from_dir.config
    assert from_gguf.model.params == from_dir.model.params
    ours, theirs = _stored(from_gguf), _stored(from_dir)
    dropped = {f"model.layers.{i}.self_attn.o_proj.bias" for i in range(2)} if FAMILIES[name][1] else set()
    for param, values in ours.items():
        expected = np.zeros_like(values) if param in dropped else theirs[param]
        np.testing.assert_array_equal(values, expected, err_msg=param)


def test_cpu_library_decodes_like_llama_cpp(family: tuple[str, Path, Path]) -> None:
    """The library compiled from the family's checkpoint, given the GGUF's weights, picks llama.cpp's tokens."""
    import tvm

    from webapp.compile.build import build_library
    from webapp.compile.native import NativeChat
    from webapp.compile.quantize import get_quantization
    from webapp.compile.source import read_checkpoint

    name, directory, gguf_path = family
    spec = get_quantization("q0f32")
    checkpoint = read_checkpoint(directory, spec, prefill_chunk_size=PREFILL_CHUNK)
    model = checkpoint.model
    library = build_library(model, tvm.target.Target({"kind": "llvm"}))
    weights = dict(spec.convert(library.params, read_checkpoint(gguf_path, spec).loader.load))
    window = getattr(checkpoint.config, "sliding_window", None)
    unkept = window if name == "mistral" else None
    prompt = _prompt(directory, unkept)
    # The steps whose logits come from a sequence within the window where llama.cpp does not keep it.
    shared = STEPS if unkept is None else unkept - len(prompt) + 1

    ours, our_logits = NativeChat(library.executable, library.metadata, weights).generate(prompt, STEPS)
    theirs, their_logits = llama_cpp_greedy(gguf_path, prompt, STEPS)

    worst = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(our_logits[:shared], their_logits))
    print(f"\n[{name}] greedy tokens {ours}; largest logit difference {worst:.2e} of the step's largest |logit|")
    _assert_same_steps(ours[:shared], our_logits[:shared], theirs[:shared], their_logits[:shared])
    if window:  # the numpy reference, which the browser test uses, keeps the window all the way
        as_float64 = {name: values.astype(np.float64) for name, values in weights.items()}
        numpy_model = checkpoint.architecture.reference(model.config, as_float64)
        reference, reference_logits = numpy_model.generate(prompt, STEPS)
        _assert_same_steps(reference[:shared], reference_logits[:shared], theirs[:shared], their_logits[:shared])
        _assert_same_steps(ours, our_logits, reference, reference_logits)


def _assert_same_steps(ours: list[int], our_logits: list, theirs: list[int], their_logits: list) -> None:
    assert ours == theirs
    for step, (a, b) in enumerate(zip(our_logits, their_logits, strict=True)):
        np.testing.assert_allclose(a, b, rtol=0, atol=LOGIT_TOLERANCE * np.abs(b).max(), err_msg=f"step {step}")
