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

from webapp.compile.gguf import GGUFError, load_gguf_checkpoint, packaged_gguf  # noqa: E402
from webapp.compile.gguf.chat import render_conversation  # noqa: E402

QUESTION = "What is the capital of France? Answer in one word."
STEPS = 16  # greedy tokens compared, stop tokens included (generation goes on past them)
MIN_AGREEING = 8


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


def greedy(step, prompt: list[int], steps: int) -> list[int]:
    """Greedy decoding: `step(ids)` feeds ids and returns the next-token logits."""
    out: list[int] = []
    logits = step(prompt)
    for _ in range(steps):
        out.append(int(np.argmax(logits)))
        logits = step([out[-1]])
    return out


@pytest.fixture(scope="module")
def smollm2() -> Path:
    try:
        return packaged_gguf()
    except GGUFError as exc:
        pytest.skip(str(exc))


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
def llama_cpp_run(smollm2: Path, setup):
    _, _, tok, prompt_text = setup
    prompt = tok.encode(prompt_text, add_special_tokens=False).ids
    # logits_all: llama-cpp-python 0.3.36 only copies logits into `scores` in that mode.
    model = llama_cpp.Llama(str(smollm2), n_ctx=256, n_threads=os.cpu_count() or 1, logits_all=True,
                            verbose=False)
    assert model.tokenize(prompt_text.encode(), add_bos=False, special=True) == prompt

    def step(ids: list[int]) -> np.ndarray:
        model.eval(ids)
        return np.array(model.scores[model.n_tokens - 1], dtype=np.float32)

    first_logits = step(prompt)
    model.reset()
    return prompt, greedy(step, prompt, STEPS), first_logits


def test_gguf_weights_greedy_decode_like_llama_cpp(setup, llama_cpp_run) -> None:
    checkpoint, weights, tok, _ = setup
    prompt, expected, _ = llama_cpp_run
    started = time.perf_counter()
    ours = greedy(LlamaReference(checkpoint.config, weights).forward, prompt, STEPS)
    agree = next((i for i, (a, b) in enumerate(zip(ours, expected)) if a != b), STEPS)
    stop = next((i for i, t in enumerate(expected) if t in checkpoint.stop_token_ids), STEPS)
    print(f"\nnumpy decode {time.perf_counter() - started:.2f} s; prompt {len(prompt)} tokens; "
          f"{agree}/{STEPS} greedy tokens agree\nllama.cpp answer: {tok.decode(expected[:stop])!r}"
          f"\nllama.cpp ids {expected}\nnumpy ids     {ours}")
    assert agree >= MIN_AGREEING, (ours, expected)
    assert "Paris" in tok.decode(ours[:stop])


def test_gguf_without_unpermuting_q_and_k_the_model_breaks(setup, llama_cpp_run) -> None:
    """The control: keep llama.cpp's Q/K row order and the logits no longer track llama.cpp's."""
    checkpoint, weights, _, _ = setup
    prompt, _, reference = llama_cpp_run
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
