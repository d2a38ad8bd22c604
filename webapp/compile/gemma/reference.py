"""A numpy forward pass of Gemma 2 / Gemma 3 on the stored weights (norm weights already 1 + w), in float64."""

from __future__ import annotations

import math

import numpy as np

from webapp.compile.gemma.config import GemmaConfig
from webapp.compile.reference import ReferenceLlama


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


class ReferenceGemma(ReferenceLlama):
    """Greedy generation with a plain KV cache; sliding layers see only the last sliding_window keys."""

    def __init__(self, config: GemmaConfig, weights: dict[str, np.ndarray]):
        exponents = np.arange(config.head_dim // 2, dtype=np.float64) * 2 / config.head_dim
        self.local_freq = 1.0 / config.rope_local_theta**exponents
        self.global_freq = 1.0 / config.rope_theta**exponents / config.rope_scale
        # Not ReferenceLlama.__init__: its rope frequencies are one set for every layer.
        self.config = config  # type: ignore[assignment]
        self.w = weights
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.reset()

    def _attention(self, x: np.ndarray, layer: int, start: int) -> np.ndarray:
        c: GemmaConfig = self.config  # type: ignore[assignment]
        q, k, v = self._qkv(x, layer)
        sliding = c.is_sliding(layer)
        positions = np.arange(start, start + x.shape[0], dtype=np.float64)
        freq = self.local_freq if sliding else self.global_freq
        q, k = self._rotate(q, positions, freq), self._rotate(k, positions, freq)
        window = c.sliding_window if sliding else None
        out = self._attend(q, k, v, layer, start, 1 / math.sqrt(c.query_pre_attn_scalar), window,
                           c.attn_logit_softcapping)
        return self._linear(out, f"model.layers.{layer}.self_attn.o_proj")

    def _mlp(self, x: np.ndarray, layer: int) -> np.ndarray:
        gate, up = np.split(self._linear(x, f"model.layers.{layer}.mlp.gate_up_proj"), 2, axis=-1)
        return self._linear(_gelu_tanh(gate) * up, f"model.layers.{layer}.mlp.down_proj")

    def forward_all(self, token_ids: list[int], last_only: bool = False) -> np.ndarray:
        """Append tokens to the sequence; return the logits after every one of them [tokens, vocab]."""
        c: GemmaConfig = self.config  # type: ignore[assignment]
        start = self.keys[0].shape[0]
        x = self.w["model.embed_tokens.weight"][np.asarray(token_ids)] * math.sqrt(c.hidden_size)
        for layer in range(c.num_hidden_layers):
            p = f"model.layers.{layer}"
            attended = self._attention(self._norm(x, f"{p}.input_layernorm.weight"), layer, start)
            x = x + self._norm(attended, f"{p}.post_attention_layernorm.weight")
            mixed = self._mlp(self._norm(x, f"{p}.pre_feedforward_layernorm.weight"), layer)
            x = x + self._norm(mixed, f"{p}.post_feedforward_layernorm.weight")
        hidden = self._norm(x[-1:] if last_only else x, "model.norm.weight")
        logits = hidden @ self.w["model.embed_tokens.weight"].T
        cap = c.final_logit_softcapping
        return logits if cap is None else np.tanh(logits / cap) * cap
