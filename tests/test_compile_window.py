"""A sliding window shorter than the context (Mistral's, Phi-3's) is kept, and the context is not capped at it.

llama.cpp runs Mistral without its window (test_compile_llamacpp.py compares the two within it), so here
the library compiled for TVM's CPU target is checked against the numpy reference, which masks the keys
outside the window: the same greedy tokens and logits within test_compile_llamacpp.py's tolerance, for a
prompt that prefills in chunks past the window and decoding further past it. In WebLLM, the tiny Mistral
runs past its window in test_compile_browser_families.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.tinycheckpoint import FAMILIES, build_tokenizer, llama_config, write_tiny_checkpoint

pytestmark = pytest.mark.compiler

WINDOW = 16
PREFILL_CHUNK = 8
STEPS = 24
PROMPT = "Grouped-query attention shares every key and value head among several query heads, and"
LOGIT_TOLERANCE = 2e-4  # of the step's largest |logit|, as test_compile_llamacpp.py's float32 against llama.cpp

# name -> (config.json overrides, --context-window, (context window, sliding window, prefill chunk) read)
CONFIG_CASES = {
    "context-past-the-window": ({**FAMILIES["mistral"], "sliding_window": 64}, 128, (128, 64, 64)),
    # Mistral 7B v0.1: at the default context of 4096 its window of 4096 never clips, so it is left out.
    "window-as-long-as-the-context": ({**FAMILIES["mistral"], "sliding_window": 4096,
                                       "max_position_embeddings": 32768}, None, (4096, None, 1024)),
    # Phi-3-mini-4k: a window of 2047 in 4096 positions.
    "phi3-mini-4k": ({**FAMILIES["phi3"], "sliding_window": 2047, "max_position_embeddings": 4096}, None,
                     (4096, 2047, 1024)),
}  # fmt: skip


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_the_window_is_read_and_the_context_is_not_capped_at_it(case: str) -> None:
    from webapp.compile.architectures import config_from_hf

    overrides, context, expected = CONFIG_CASES[case]
    config = config_from_hf(llama_config(384, **overrides), context_window_size=context)
    assert (config.context_window_size, config.sliding_window, config.prefill_chunk_size) == expected


@pytest.mark.parametrize("family", ["mistral", "phi3"])
def test_cpu_library_attends_over_the_window_only(family: str, tmp_path: Path) -> None:
    import tvm

    from webapp.compile.build import build_library
    from webapp.compile.native import NativeChat
    from webapp.compile.quantize import get_quantization
    from webapp.compile.source import read_checkpoint

    directory = write_tiny_checkpoint(tmp_path / family, **{**FAMILIES[family], "sliding_window": WINDOW})
    spec = get_quantization("q0f32")
    checkpoint = read_checkpoint(directory, spec, prefill_chunk_size=PREFILL_CHUNK)
    assert (checkpoint.config.sliding_window, checkpoint.config.context_window_size) == (WINDOW, 512)
    library = build_library(checkpoint.model, tvm.target.Target({"kind": "llvm"}))
    weights = dict(spec.convert(library.params, checkpoint.loader.load))
    prompt = build_tokenizer().encode(PROMPT).ids
    assert len(prompt) > WINDOW + PREFILL_CHUNK  # later chunks see keys outside the window

    ours, our_logits = NativeChat(library.executable, library.metadata, weights).generate(prompt, STEPS)
    as_float64 = {name: values.astype(np.float64) for name, values in weights.items()}
    windowed = checkpoint.architecture.reference(checkpoint.config, as_float64)
    theirs, their_logits = windowed.generate(prompt, STEPS)
    assert ours == theirs
    for step, (a, b) in enumerate(zip(our_logits, their_logits, strict=True)):
        np.testing.assert_allclose(a, b, rtol=0, atol=LOGIT_TOLERANCE * np.abs(b).max(), err_msg=f"step {step}")

    # Attending over the whole sequence gives other logits from the first step on: the window shows.
    whole = checkpoint.architecture.reference(replace(checkpoint.config, sliding_window=None), as_float64)
    first_logits = whole.generate(prompt, 1)[1][0]
    assert np.abs(first_logits - their_logits[0]).max() > 100 * LOGIT_TOLERANCE * np.abs(their_logits[0]).max()
