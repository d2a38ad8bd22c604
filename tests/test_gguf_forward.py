"""Weights read from the SmolLM2 GGUF, run through a plain Hugging Face-style Llama, decode as llama.cpp does."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
tokenizers = pytest.importorskip("tokenizers")
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python runs the GGUF as the reference")

from tests.support.llamacpp import greedy_steps  # noqa: E402
from tests.test_gguf_quants import requantize  # noqa: E402

from webapp.compile.gguf import load_gguf_checkpoint  # noqa: E402
from webapp.compile.gguf.chat import render_conversation  # noqa: E402

QUESTION = "What is the capital of France? Answer in one word."
STEPS = 16  # greedy tokens compared, stop tokens included (generation goes on past them)
MIN_AGREEING = 8
NEAR_TIE = 0.1  # logits: a gap this small in llama.cpp's own choice is within its quantized arithmetic


class LlamaReference:
    """A numpy Llama forward pass in Hugging Face's conventions (half-split rotary pairs), float32, KV cache."""

    def __init__(self, config: dict, weights: dict[str, np.ndarray]) -> None:
        self.c = config
        self.w = weights
        self.n_heads, self.n_kv = config["num_attention_heads"], config["num_key_value_heads"]
        self.head_dim = config["head_dim"]
        half = self.head_dim // 2
        self.inv_freq = config["rope_theta"] ** (-np.arange(half, dtype=np.float64) * 2 / self.head_dim)
        self.lm_head = weights["model.embed_tokens.weight"] if config["tie_word_embeddings"] else weights[
            "lm_head.weight"]
        self.cache: list[tuple[np.ndarray, np.ndarray]] = []

    def _norm(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        variance = np.mean(x * x, axis=-1, keepdims=True)
        return x / np.sqrt(variance + self.c["rms_norm_eps"]) * weight

    def _rope(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        # x: [tokens, heads, head_dim]; HF rotates the pair (i, i + head_dim/2) by position * inv_freq[i].
        angles = positions[:, None] * self.inv_freq[None, :]
        cos, sin = np.cos(angles)[:, None, :].astype(np.float32), np.sin(angles)[:, None, :].astype(np.float32)
        first, second = np.split(x, 2, axis=-1)
        return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)

    def _attention(self, layer: int, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        p = f"model.layers.{layer}.self_attn."
        tokens = x.shape[0]
        q = (x @ self.w[p + "q_proj.weight"].T).reshape(tokens, self.n_heads, self.head_dim)
        k = (x @ self.w[p + "k_proj.weight"].T).reshape(tokens, self.n_kv, self.head_dim)
        v = (x @ self.w[p + "v_proj.weight"].T).reshape(tokens, self.n_kv, self.head_dim)
        q, k = self._rope(q, positions), self._rope(k, positions)
        if layer < len(self.cache):
            k = np.concatenate([self.cache[layer][0], k])
            v = np.concatenate([self.cache[layer][1], v])
            self.cache[layer] = (k, v)
        else:
            self.cache.append((k, v))
        group = self.n_heads // self.n_kv  # each KV head serves `group` query heads
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(self.head_dim)  # a numpy scalar would upcast
        # Causal mask: query at position p sees keys 0..p.
        key_pos = np.arange(k.shape[0])
        scores = np.where(key_pos[None, None, :] <= positions[None, :, None], scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        out = np.einsum("hqk,khd->qhd", probs, v).reshape(tokens, -1)
        return out @ self.w[p + "o_proj.weight"].T

    def _mlp(self, layer: int, x: np.ndarray) -> np.ndarray:
        p = f"model.layers.{layer}.mlp."
        gate = x @ self.w[p + "gate_proj.weight"].T
        up = x @ self.w[p + "up_proj.weight"].T
        return (gate / (1 + np.exp(-gate)) * up) @ self.w[p + "down_proj.weight"].T  # SiLU(gate) * up

    def forward(self, ids: list[int]) -> np.ndarray:
        """Logits of the last of `ids`, appended after everything already in the cache."""
        start = self.cache[0][0].shape[0] if self.cache else 0
        positions = np.arange(start, start + len(ids), dtype=np.float64)
        x = self.w["model.embed_tokens.weight"][ids]
        for layer in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            x = x + self._attention(layer, self._norm(x, self.w[p + "input_layernorm.weight"]), positions)
            x = x + self._mlp(layer, self._norm(x, self.w[p + "post_attention_layernorm.weight"]))
        assert x.dtype == np.float32
        x = self._norm(x[-1:], self.w["model.norm.weight"])
        return (x @ self.lm_head.T)[0]


def stored_order(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py row order for q_proj/k_proj: each head's halves interleaved."""
    return rows.reshape(n_heads, 2, rows.shape[0] // n_heads // 2, -1).swapaxes(1, 2).reshape(rows.shape)


@pytest.fixture(scope="module", params=["Q4_1", "Q4_K_M"])
def smollm2(request, smollm2: Path, tmp_path_factory) -> Path:
    """The packaged Q4_1 file, and llama.cpp's Q4_K_M of it (Q5_0, Q4_K, Q6_K and Q8_0 tensors)."""
    if request.param == "Q4_1":
        return smollm2
    return requantize(smollm2, tmp_path_factory.mktemp("q4km") / "smollm2-q4_k_m.gguf", request.param)


@pytest.fixture(scope="module")
def setup(smollm2: Path):
    started = time.perf_counter()
    checkpoint = load_gguf_checkpoint(smollm2)
    loaded = time.perf_counter()
    weights = dict(checkpoint.tensors())
    decoded = time.perf_counter()
    print(f"\nGGUF load {loaded - started:.2f} s, dequantize {decoded - loaded:.2f} s")
    prompt_text = render_conversation(checkpoint.conv_template, [{"role": "user", "content": QUESTION}])
    tok = tokenizers.Tokenizer.from_str(checkpoint.tokenizer_json)
    return checkpoint, weights, tok, prompt_text


@pytest.fixture(scope="module")
def llama_cpp_run(smollm2: Path, setup) -> tuple[list[int], list[int], list[np.ndarray]]:
    """llama.cpp's greedy tokens at temperature 0, and the logits it chose each one from."""
    _, _, tok, prompt_text = setup
    prompt = tok.encode(prompt_text, add_special_tokens=False).ids
    # logits_all: llama-cpp-python 0.3.36 only copies logits into `scores` in that mode.
    model = llama_cpp.Llama(str(smollm2), n_ctx=256, n_threads=os.cpu_count() or 1, logits_all=True,
                            verbose=False)
    assert model.tokenize(prompt_text.encode(), add_bos=False, special=True) == prompt
    chosen, logits = greedy_steps(model, prompt, STEPS)
    return prompt, chosen, logits


def test_gguf_weights_decode_like_llama_cpp(request, setup, llama_cpp_run) -> None:
    """Fed llama.cpp's own greedy tokens, the numpy model picks the same next token at every step.

    llama.cpp multiplies with 8-bit quantized activations, so where its two best tokens are nearly tied the
    float32 model may pick the other one; such steps must be near-ties in llama.cpp's logits. Up to the first
    disagreement both run on the same tokens, so that count is how far free-running greedy decoding agrees.
    """
    checkpoint, weights, tok, _ = setup
    prompt, expected, reference = llama_cpp_run
    model = LlamaReference(checkpoint.config, weights)
    started = time.perf_counter()
    ours = [model.forward(prompt)] + [model.forward([token]) for token in expected[:-1]]
    elapsed = time.perf_counter() - started
    picked = [int(np.argmax(logits)) for logits in ours]
    differ = [i for i, (a, b) in enumerate(zip(picked, expected)) if a != b]
    agree = differ[0] if differ else STEPS
    stop = next((i for i, t in enumerate(expected) if t in checkpoint.stop_token_ids), STEPS)
    variant = request.node.callspec.params["smollm2"]
    print(f"\n[{variant}] numpy forward {elapsed:.2f} s for {len(prompt)} + {STEPS - 1} tokens; greedy agrees on "
          f"the first {agree}/{STEPS} tokens, {STEPS - len(differ)}/{STEPS} steps pick the same token"
          f"\nllama.cpp answer: {tok.decode(expected[:stop])!r}\nllama.cpp ids {expected}\nnumpy picks   {picked}")
    assert "Paris" in tok.decode(expected[:stop])
    assert len(differ) <= 2, (picked, expected)
    for i in differ:
        margin = reference[i][expected[i]] - reference[i][picked[i]]
        assert margin < NEAR_TIE, f"step {i}: llama.cpp preferred {expected[i]} by {margin:.3f} logits"
    if variant == "Q4_1":  # the file Hearth ships: free-running greedy decoding must agree throughout
        assert agree >= MIN_AGREEING, (picked, expected)


def test_gguf_without_unpermuting_q_and_k_the_model_breaks(setup, llama_cpp_run) -> None:
    """The control: keep llama.cpp's Q/K row order and the logits no longer track llama.cpp's."""
    checkpoint, weights, _, _ = setup
    prompt, _, llama_logits = llama_cpp_run
    reference = llama_logits[0]
    scrambled = dict(weights)
    for name in weights:
        for part, heads in (("q_proj", "num_attention_heads"), ("k_proj", "num_key_value_heads")):
            if f".self_attn.{part}." in name:
                scrambled[name] = stored_order(weights[name], checkpoint.config[heads])
    right = LlamaReference(checkpoint.config, weights).forward(prompt)
    wrong = LlamaReference(checkpoint.config, scrambled).forward(prompt)
    right_corr = np.corrcoef(right, reference)[0, 1]
    wrong_corr = np.corrcoef(wrong, reference)[0, 1]
    print(f"\nlogit correlation with llama.cpp: unpermuted {right_corr:.4f}, stored order {wrong_corr:.4f}")
    assert right_corr > 0.99
    assert wrong_corr < right_corr - 0.05
    assert int(np.argmax(right)) == int(np.argmax(reference))
