"""The Gemma 2 / Gemma 3 decoder in TVM's nn frontend, ordered bottom-up: rotary, attention, MLP, block, model.

What differs from llama/model.py: RMSNorm weights are stored as 1 + w (gemma/loader.py), every
block has norms after attention and after the MLP too, the MLP gates with GELU-tanh, embeddings
are scaled by sqrt(hidden), attention scores by query_pre_attn_scalar^-1/2, and the attention
scores and logits may be soft-capped (Gemma 2; the scores inside the KV cache's kernels, see
gemma/softcap.py). Layers alternate between a sliding window and the whole context; the paged KV cache
calls its windowed kernels for the window's layers ("mha_sliding"), which keep the window themselves
(webapp/compile/window.py). The cache has one rotary base, and Gemma 3 has two, so the model rotates q and k
itself and the cache does no rotary embedding.
"""

from __future__ import annotations

from typing import Any

from tvm import te, tirx
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache, RopeMode

from webapp.compile.gemma.config import GemmaConfig
from webapp.compile.gemma.softcap import cap_attention_kernels
from webapp.compile.window import RUNTIME_WINDOW, window_kernels
from webapp.compile.llama.model import LlamaEmbedding, LlamaForCausalLM, LlamaMLP


def _rotary(theta: float, scale: float, head_dim: int):  # type: ignore[no-untyped-def]
    # Hugging Face's rotate_half rotary embedding: pair (i, i + head_dim / 2) of each head turns by
    # position / scale * theta^(-2i / head_dim).
    half = head_dim // 2

    def rotate(x: te.Tensor, positions: te.Tensor) -> te.Tensor:
        def value(b: Any, s: Any, h: Any, i: Any) -> Any:
            pair = tirx.floormod(i, half)
            exponent = (pair * 2).astype("float32") / tirx.const(head_dim, "float32")
            angle = positions[s].astype("float32") / tirx.const(scale, "float32") / tirx.power(
                tirx.const(theta, "float32"), exponent)
            partner = tirx.if_then_else(i < half, -x[b, s, h, i + half], x[b, s, h, i - half])
            # In float32, back in the model's dtype (f16 models: q and k are concatenated with v).
            turned = x[b, s, h, i].astype("float32") * tirx.cos(angle) + partner.astype("float32") * tirx.sin(angle)
            return turned.astype(x.dtype)

        return te.compute(x.shape, value, name="rotary")

    return rotate


class GemmaAttention(nn.Module):
    """Grouped-query self-attention over the paged KV cache, windowed or not as the layer's kind says."""

    def __init__(self, config: GemmaConfig, layer: int, dtype: str):
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        qkv_width = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, qkv_width, bias=False, dtype=dtype)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False, dtype=dtype)
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(self.head_dim, -1, config.rms_norm_eps, bias=False, dtype=dtype)
            self.k_norm = nn.RMSNorm(self.head_dim, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.qk_norm = config.qk_norm
        sliding = config.is_sliding(layer)
        theta = config.rope_local_theta if sliding else config.rope_theta
        self.rotate = _rotary(theta, 1.0 if sliding else config.rope_scale, self.head_dim)
        self.sm_scale = config.query_pre_attn_scalar**-0.5

    def forward(self, hidden_states: Tensor, kv_cache: PagedKVCache, layer_id: int) -> Tensor:
        batch, seq_len, _ = hidden_states.shape
        heads, kv_heads, head_dim = self.num_heads, self.num_kv_heads, self.head_dim
        qkv = op.reshape(self.qkv_proj(hidden_states), (batch, seq_len, heads + 2 * kv_heads, head_dim))
        q, k, v = op.split(qkv, [heads, heads + kv_heads], axis=2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        positions = kv_cache.get_query_positions(batch * seq_len)  # [seq_len], each token's position
        q = op.tensor_expr_op(self.rotate, "rotary_q", [q, positions])
        k = op.tensor_expr_op(self.rotate, "rotary_k", [k, positions])
        qkv = op.concat([q, k, v], dim=2)
        attended = kv_cache.attention_with_fused_qkv(layer_id, qkv, heads, sm_scale=self.sm_scale)
        return self.o_proj(op.reshape(attended, (batch, seq_len, heads * head_dim)))


class GemmaMLP(LlamaMLP):
    """down(gelu_tanh(gate(x)) * up(x)), with gate and up computed by one fused matmul."""

    def forward(self, x: Tensor) -> Tensor:
        gate, up = op.split(self.gate_up_proj(x), 2, axis=-1)
        return self.down_proj(op.gelu(gate, approximate="tanh") * up)


class GemmaDecoderLayer(nn.Module):
    """x + post_norm(attention(norm(x))), then x + post_norm(mlp(pre_norm(x)))."""

    def __init__(self, config: GemmaConfig, layer: int, dtype: str):
        def norm() -> nn.RMSNorm:
            return nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)

        self.input_layernorm = norm()
        self.self_attn = GemmaAttention(config, layer, dtype)
        self.post_attention_layernorm = norm()
        self.pre_feedforward_layernorm = norm()
        self.mlp = GemmaMLP(config, dtype)
        self.post_feedforward_layernorm = norm()

    def forward(self, hidden_states: Tensor, kv_cache: PagedKVCache, layer_id: int) -> Tensor:
        attended = self.self_attn(self.input_layernorm(hidden_states), kv_cache, layer_id)
        hidden_states = hidden_states + self.post_attention_layernorm(attended)
        mixed = self.mlp(self.pre_feedforward_layernorm(hidden_states))
        return hidden_states + self.post_feedforward_layernorm(mixed)


class GemmaModel(nn.Module):
    """Token embedding (scaled by sqrt(hidden) on the way in), the decoder layers, and the final norm."""

    def __init__(self, config: GemmaConfig, dtype: str):
        self.embed_tokens = LlamaEmbedding(config.vocab_size, config.hidden_size, dtype=dtype)
        self.layers = nn.ModuleList([GemmaDecoderLayer(config, i, dtype) for i in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.embed_scale = config.hidden_size**0.5

    def forward(self, input_embeds: Tensor, kv_cache: PagedKVCache) -> Tensor:
        hidden_states = input_embeds * self.embed_scale
        for layer_id, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states, kv_cache, layer_id)
        return self.norm(hidden_states)


class GemmaForCausalLM(LlamaForCausalLM):
    """Llama's entry points (embed, prefill, decode, export_spec) over the Gemma decoder."""

    def __init__(self, config: GemmaConfig, dtype: str):  # noqa: super().__init__ would build a Llama
        self.config = config
        self.dtype = dtype
        self.model = GemmaModel(config, dtype)

    def logits(self, hidden_states: Tensor) -> Tensor:
        """Tied output projection, float32, soft-capped when the config says so (Gemma 2)."""
        logits = super().logits(hidden_states)
        cap = self.config.final_logit_softcapping
        return logits if cap is None else op.tanh(logits / cap) * cap

    def adapt_kv_cache(self, cache: PagedKVCache) -> None:
        """The window kept by the windowed kernels (window.py); scores soft-capped if the config says so."""
        window_kernels(cache, self.config, self.dtype)
        if self.config.attn_logit_softcapping is not None:
            cap_attention_kernels(cache, self.config.attn_logit_softcapping)

    def kv_cache_layout(self) -> dict[str, Any]:
        """A window on the sliding layers; no rotary embedding of the cache's own (GemmaAttention's instead)."""
        config = self.config
        return {
            "attn_kind": ["mha_sliding" if config.is_sliding(i) else "mha" for i in range(config.num_hidden_layers)],
            "rope_mode": RopeMode.NONE,
            "rope_theta": config.rope_theta,
            "rope_scaling": {},
            "rotary_dim": config.head_dim,
            # The runtime's own window clips nothing (its page tables clash in WebGPU); the kernels clip.
            "layer_sliding_window_size": RUNTIME_WINDOW,
        }
