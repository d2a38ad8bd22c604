"""A numpy forward pass of the Llama family (Llama, Qwen2, Qwen3, Mistral, Phi-3), on the stored weights.

It reads the same tensors WebLLM loads (tensor-cache.json and its shards), dequantizes them with the
numpy twins of the library's kernels (quantize.py, gguf_quant.py), and computes in float64: the truth
the compiled library is checked against (greedy token ids must match).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from webapp.compile.llama.config import LlamaConfig
from webapp.compile.gguf_quant import BLOCK, SCALE_MIN, dequantize_q4, dequantize_q8
from webapp.compile.quantize import dequantize_weight
from webapp.mlc.files import TENSOR_CACHE

# tensor-cache.json dtype names -> numpy dtypes (the subset Hearth writes).
_DTYPES = {"float32": np.float32, "float16": np.float16, "uint32": np.uint32, "int32": np.int32}


def read_params(model_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor of an MLC model directory, by name, as stored."""
    cache = json.loads((model_dir / TENSOR_CACHE).read_text(encoding="utf-8"))
    params: dict[str, np.ndarray] = {}
    for shard in cache["records"]:
        data = (model_dir / shard["dataPath"]).read_bytes()
        for record in shard["records"]:
            dtype = _DTYPES[record["dtype"]]
            start = record["byteOffset"]
            flat = np.frombuffer(data[start : start + record["nbytes"]], dtype=dtype)
            params[record["name"]] = flat.reshape(record["shape"])
    return params


def float_weights(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Library parameters -> float64 weights by float-model name, dequantizing each 'x.q_weight' with its scales."""
    weights: dict[str, np.ndarray] = {}
    for name, array in params.items():
        if name.endswith(".q_weight"):
            prefix = name[: -len(".q_weight")]
            weights[f"{prefix}.weight"] = _dequantize(params, prefix).astype(np.float64)
        elif not name.endswith((".q_scale", f".{SCALE_MIN}")):
            weights[name] = array.astype(np.float64)
    return weights


def _dequantize(params: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    # The layout shows in the stored names and shapes: q4f32_gguf's 4-bit layers carry q_scale_min;
    # its 8-bit embedding packs 4 codes per word, mlc-llm's 4-bit group codes 8.
    packed = params[f"{prefix}.q_weight"]
    if f"{prefix}.{SCALE_MIN}" in params:
        return dequantize_q4(packed, params[f"{prefix}.{SCALE_MIN}"])
    scale = params[f"{prefix}.q_scale"]
    if packed.shape[1] * 4 == scale.shape[1] * BLOCK:
        return dequantize_q8(packed, scale)
    return dequantize_weight(packed, scale)


def _rope_frequencies(config: LlamaConfig) -> np.ndarray:
    # Hugging Face's inverse frequencies, with Llama 3's smooth long-context scaling when configured.
    rotary = config.rotary_dimensions
    freq = 1.0 / config.rope_theta ** (np.arange(rotary // 2, dtype=np.float64) * 2 / rotary)
    scaling = config.rope_scaling
    if scaling:
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        original = scaling["original_max_position_embeddings"]
        smooth = np.clip(original / (2 * math.pi) * freq / (high - low) - low / (high - low), 0.0, 1.0)
        freq = (1 - smooth) * freq / scaling["factor"] + smooth * freq
    return freq


class ReferenceLlama:
    """Greedy generation with a plain KV cache, one layer after another, as the model file reads."""

    def __init__(self, config: LlamaConfig, weights: dict[str, np.ndarray]):
        self.config = config
        self.w = weights
        self.freq = _rope_frequencies(config)
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.reset()

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        # RMSNorm over the last axis (the hidden size, or one head's width for q/k norms).
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.config.rms_norm_eps) * self.w[name]

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        out = x @ self.w[f"{name}.weight"].T
        bias = self.w.get(f"{name}.bias")
        return out + bias if bias is not None else out

    def _rotate(self, x: np.ndarray, positions: np.ndarray, freq: np.ndarray | None = None) -> np.ndarray:
        # x: [seq, heads, head_dim]; rotate the two halves of each head's first 2 * len(freq) dimensions
        # (rotate_half convention); the rest of the head passes through unchanged.
        freq = self.freq if freq is None else freq
        angle = positions[:, None] * freq[None, :]  # [seq, rotary / 2]
        cos = np.concatenate([np.cos(angle)] * 2, axis=-1)[:, None, :]
        sin = np.concatenate([np.sin(angle)] * 2, axis=-1)[:, None, :]
        turned, passed = np.split(x, [2 * len(freq)], axis=-1)
        half = turned.shape[-1] // 2
        rotated = np.concatenate([-turned[..., half:], turned[..., :half]], axis=-1)
        return np.concatenate([turned * cos + rotated * sin, passed], axis=-1)

    def _qkv(self, x: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The layer's queries, keys and values [seq, heads, head_dim], q/k-normed where the family does."""
        c = self.config
        prefix = f"model.layers.{layer}.self_attn"
        heads = c.num_attention_heads + 2 * c.num_key_value_heads
        qkv = self._linear(x, f"{prefix}.qkv_proj").reshape(x.shape[0], heads, c.head_dim)
        q, k, v = np.split(qkv, [c.num_attention_heads, c.num_attention_heads + c.num_key_value_heads], axis=1)
        if c.qk_norm:
            q, k = self._norm(q, f"{prefix}.q_norm.weight"), self._norm(k, f"{prefix}.k_norm.weight")
        return q, k, v

    def _attention(self, x: np.ndarray, layer: int, start: int) -> np.ndarray:
        q, k, v = self._qkv(x, layer)
        positions = np.arange(start, start + x.shape[0], dtype=np.float64)
        q, k = self._rotate(q, positions), self._rotate(k, positions)
        out = self._attend(q, k, v, layer, start, 1 / math.sqrt(self.config.head_dim), self.config.sliding_window)
        return self._linear(out, f"model.layers.{layer}.self_attn.o_proj")

    def _attend(
        self, q: np.ndarray, k: np.ndarray, v: np.ndarray, layer: int, start: int, scale: float,
        window: int | None = None, softcap: float | None = None,
    ) -> np.ndarray:
        """Append k, v to the layer's cache; attend q over it causally (and within `window` keys if given).

        `softcap`: scores -> softcap * tanh(scores / softcap) before masking (Gemma 2).
        """
        c = self.config
        self.keys[layer] = np.concatenate([self.keys[layer], k])
        self.values[layer] = np.concatenate([self.values[layer], v])
        group = c.num_attention_heads // c.num_key_value_heads
        keys, values = np.repeat(self.keys[layer], group, axis=1), np.repeat(self.values[layer], group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, keys) * scale
        if softcap is not None:
            scores = softcap * np.tanh(scores / softcap)
        # Causal mask: query i (at position start + i) sees keys up to that position.
        query_pos, key_pos = (start + np.arange(q.shape[0]))[:, None], np.arange(keys.shape[0])[None, :]
        visible = key_pos <= query_pos
        if window is not None:
            visible &= query_pos - key_pos < window
        scores = np.where(visible[None], scores, -np.inf)
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        return np.einsum("hqk,khd->qhd", probs, values).reshape(q.shape[0], -1)

    def _mlp(self, x: np.ndarray, layer: int) -> np.ndarray:
        gate, up = np.split(self._linear(x, f"model.layers.{layer}.mlp.gate_up_proj"), 2, axis=-1)
        return self._linear(gate / (1 + np.exp(-gate)) * up, f"model.layers.{layer}.mlp.down_proj")

    def reset(self) -> None:
        """Forget the cached keys and values (a new sequence)."""
        shape = (0, self.config.num_key_value_heads, self.config.head_dim)
        self.keys = [np.zeros(shape) for _ in range(self.config.num_hidden_layers)]
        self.values = [np.zeros(shape) for _ in range(self.config.num_hidden_layers)]

    def forward(self, token_ids: list[int]) -> np.ndarray:
        """Append tokens to the sequence; return the logits of the last one [vocab]."""
        return self.forward_all(token_ids, last_only=True)[0]

    def forward_all(self, token_ids: list[int], last_only: bool = False) -> np.ndarray:
        """Append tokens to the sequence; return the logits after every one of them [tokens, vocab]."""
        start = self.keys[0].shape[0]
        x = self.w["model.embed_tokens.weight"][np.asarray(token_ids)]
        for layer in range(self.config.num_hidden_layers):
            x = x + self._attention(self._norm(x, f"model.layers.{layer}.input_layernorm.weight"), layer, start)
            x = x + self._mlp(self._norm(x, f"model.layers.{layer}.post_attention_layernorm.weight"), layer)
        hidden = self._norm(x[-1:] if last_only else x, "model.norm.weight")
        head = self.w["model.embed_tokens.weight"] if self.config.tie_word_embeddings else self.w["lm_head.weight"]
        return hidden @ head.T

    def generate(self, prompt_ids: list[int], steps: int) -> tuple[list[int], list[np.ndarray]]:
        """Greedy decoding from a fresh sequence: (token ids, logits before each token)."""
        self.reset()
        tokens: list[int] = []
        all_logits = []
        logits = self.forward(prompt_ids)
        for _ in range(steps):
            all_logits.append(logits)
            tokens.append(int(np.argmax(logits)))
            logits = self.forward([tokens[-1]])
        return tokens, all_logits
