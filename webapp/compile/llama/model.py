"""The Llama-family decoder in TVM's nn frontend, ordered bottom-up: attention, MLP, block, model.

Parameter paths follow Hugging Face's (model.layers.0.self_attn...), except that q/k/v and
gate/up are fused into one projection each (qkv_proj, gate_up_proj): one matmul instead of
three or two. loader.py does the fusing when weights are converted.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax, te
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache, RopeMode, TIRPagedKVCache

from webapp.compile import schedule_sets
from webapp.compile.attention import use_own_attention
from webapp.compile.llama.config import LlamaConfig
from webapp.compile.window import RUNTIME_WINDOW, window_kernels


class LlamaEmbedding(nn.Embedding):
    """The token embedding, which models with tied embeddings also use as their output projection."""

    def lm_head_forward(self, hidden_states: Tensor) -> Tensor:
        """hidden_states @ table^T: [..., hidden] -> [..., vocab]."""
        return op.matmul(hidden_states, op.permute_dims(self.weight))


class LlamaAttention(nn.Module):
    """Grouped-query self-attention; RoPE and the KV cache live in the paged KV cache's kernels."""

    def __init__(self, config: LlamaConfig, dtype: str):
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        qkv_width = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, qkv_width, bias=config.attention_bias, dtype=dtype)
        self.o_proj = nn.Linear(
            self.num_heads * self.head_dim, config.hidden_size, bias=config.o_proj_bias, dtype=dtype
        )
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(self.head_dim, -1, config.rms_norm_eps, bias=False, dtype=dtype)
            self.k_norm = nn.RMSNorm(self.head_dim, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.qk_norm = config.qk_norm

    def forward(self, hidden_states: Tensor, kv_cache: PagedKVCache, layer_id: int) -> Tensor:
        batch, seq_len, _ = hidden_states.shape
        heads, kv_heads, head_dim = self.num_heads, self.num_kv_heads, self.head_dim
        # [batch, seq, (heads + 2 * kv_heads) * head_dim] -> one row per q, k and v head
        qkv = op.reshape(self.qkv_proj(hidden_states), (batch, seq_len, heads + 2 * kv_heads, head_dim))
        if self.qk_norm:  # each query and key head normalised on its own, before the cache rotates it
            q, k, v = op.split(qkv, [heads, heads + kv_heads], axis=2)
            qkv = op.concat([self.q_norm(q), self.k_norm(k), v], dim=2)
        # The cache rotates q and k, appends k and v for this layer, and attends over the sequence.
        attended = kv_cache.attention_with_fused_qkv(layer_id, qkv, heads, sm_scale=head_dim**-0.5)
        return self.o_proj(op.reshape(attended, (batch, seq_len, heads * head_dim)))


class LlamaMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)), with gate and up computed by one fused matmul."""

    def __init__(self, config: LlamaConfig, dtype: str):
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False, dtype=dtype)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = op.split(self.gate_up_proj(x), 2, axis=-1)
        return self.down_proj(op.silu(gate) * up)


class LlamaDecoderLayer(nn.Module):
    """One pre-norm block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: LlamaConfig, dtype: str):
        self.input_layernorm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.self_attn = LlamaAttention(config, dtype)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.mlp = LlamaMLP(config, dtype)

    def forward(self, hidden_states: Tensor, kv_cache: PagedKVCache, layer_id: int) -> Tensor:
        hidden_states = hidden_states + self.self_attn(self.input_layernorm(hidden_states), kv_cache, layer_id)
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class LlamaModel(nn.Module):
    """Token embedding, the stack of decoder layers, and the final norm."""

    def __init__(self, config: LlamaConfig, dtype: str):
        self.embed_tokens = LlamaEmbedding(config.vocab_size, config.hidden_size, dtype=dtype)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, dtype) for _ in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)

    def forward(self, input_embeds: Tensor, kv_cache: PagedKVCache) -> Tensor:
        hidden_states = input_embeds
        for layer_id, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states, kv_cache, layer_id)
        return self.norm(hidden_states)


def _last_position(hidden_states: te.Tensor) -> te.Tensor:
    # [1, seq_len, hidden] -> [1, 1, hidden]: only the last position's logits are sampled from.
    batch, seq_len, hidden = hidden_states.shape
    return te.compute((batch, 1, hidden), lambda b, _, h: hidden_states[b, seq_len - 1, h], name="last_position")


class LlamaForCausalLM(nn.Module):
    """The decoder plus its output projection, with the entry points WebLLM calls (see export_spec)."""

    def __init__(self, config: LlamaConfig, dtype: str):
        self.config = config
        self.dtype = dtype
        self.model = LlamaModel(config, dtype)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False, dtype=dtype)

    def logits(self, hidden_states: Tensor) -> Tensor:
        """Project hidden states onto the vocabulary; logits are always float32 for the sampler."""
        if self.config.tie_word_embeddings:
            logits = self.model.embed_tokens.lm_head_forward(hidden_states)
        else:
            logits = self.lm_head(hidden_states)
        return logits.astype("float32") if logits.dtype != "float32" else logits

    def embed(self, input_ids: Tensor) -> Tensor:
        """Token ids [seq_len] -> embeddings [seq_len, hidden]."""
        return self.model.embed_tokens(input_ids)

    def prefill(self, input_embeds: Tensor, kv_cache: PagedKVCache) -> tuple[Tensor, PagedKVCache]:
        """Run a chunk of the prompt through the model; return the last position's logits [1, 1, vocab]."""
        hidden_states = self.model(input_embeds, kv_cache)
        last = op.tensor_expr_op(_last_position, "last_position", [hidden_states])
        return self.logits(last), kv_cache

    def decode(self, input_embeds: Tensor, kv_cache: PagedKVCache) -> tuple[Tensor, PagedKVCache]:
        """Run one new token through the model; return its logits [1, 1, vocab]."""
        return self.logits(self.model(input_embeds, kv_cache)), kv_cache

    def create_tir_paged_kv_cache(
        self,
        max_batch_size: tvm.tirx.Var,
        max_total_seq_len: tvm.tirx.Var,
        prefill_chunk_size: tvm.tirx.Var,
        page_size: tvm.tirx.Var,
        support_sliding_window: tvm.tirx.Var,
    ) -> PagedKVCache:
        """The paged KV cache with TIR attention kernels for the target being compiled for."""
        config = self.config
        cache = TIRPagedKVCache(
            max_batch_size=max_batch_size,
            max_total_seq_len=max_total_seq_len,
            prefill_chunk_size=prefill_chunk_size,
            page_size=page_size,
            support_sliding_window=support_sliding_window,
            layer_partition=relax.ShapeExpr([0, config.num_hidden_layers]),
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            qk_head_dim=config.head_dim,
            v_head_dim=config.head_dim,
            mla_original_qk_head_dim=0,
            mla_original_v_head_dim=0,
            rope_scale=1,
            rope_ext_factors=relax.prim_value(0),
            enable_disaggregation=False,
            dtype=self.dtype,
            target=tvm.target.Target.current(allow_none=False),
            **self.kv_cache_layout(),
        )
        self.adapt_kv_cache(cache)
        return cache

    def adapt_kv_cache(self, cache: PagedKVCache) -> None:
        """What a family changes in the cache's kernels once they are made.

        Llama's: on GPU targets, in the fallback schedule set, Hearth's barrier-free kernels for a
        prompt's self-attention and for decoding (webapp/compile/attention.py) in place of TVM's.
        With a sliding window, the windowed kernels keep it (webapp/compile/window.py): Hearth's
        windowed decoding kernel, and TVM's for a prompt over cached pages. The self-attention
        kernel serves each prefill chunk, which fits in the window (llama/config.py), so no key of
        it falls outside.
        """
        config = self.config
        windowed = config.sliding_window is not None
        gpu = tvm.target.Target.current(allow_none=False).kind.name != "llvm"
        if gpu and schedule_sets.current().own_attention:
            heads = (config.num_key_value_heads, config.num_attention_heads, config.head_dim)
            use_own_attention(cache, *heads, self.dtype, windowed=windowed)
        if windowed:
            window_kernels(cache, config, self.dtype)

    def kv_cache_layout(self) -> dict[str, Any]:
        """The KV cache's per-family arguments: attention kind per layer, and how it rotates keys."""
        config = self.config
        layout: dict[str, Any] = {
            "attn_kind": "mha",
            # NORMAL: the cache rotates q and k before attention, the way Hugging Face's Llama does.
            "rope_mode": RopeMode.NORMAL,
            "rope_theta": config.rope_theta,
            "rope_scaling": config.rope_scaling or {},
            "rotary_dim": config.rotary_dimensions,
        }
        if config.sliding_window is not None:
            # Every layer windowed; the runtime's own window clips nothing (its page tables clash in
            # WebGPU, see window.py), the windowed kernels clip to config.sliding_window. TVM 0.27's
            # runtime allocates a prefill's q/k/v buffers only if some layer's kind is "mha", so one
            # "mha" entry follows the last layer: the layer partition ends before it, so it has no
            # pages, and no layer of the model is it.
            kinds = ["mha_sliding"] * config.num_hidden_layers + ["mha"]
            layout.update(attn_kind=kinds, layer_sliding_window_size=RUNTIME_WINDOW)
        return layout

    def export_spec(self) -> dict[str, dict[str, Any]]:
        """The exported functions as data: argument specs per function, in WebLLM's calling convention.

        "packed" params: every function takes the whole weight list as its last argument, the
        tuple WebLLM builds with getParamsFromCacheByName from _metadata's params.
        """
        hidden, dtype = self.config.hidden_size, self.dtype
        with_params = {"param_mode": "packed", "effect_mode": "none"}
        no_params = {"param_mode": "none", "effect_mode": "none"}
        return {
            "embed": {"input_ids": nn.spec.Tensor(["seq_len"], "int32"), "$": with_params},
            "prefill": {
                "input_embeds": nn.spec.Tensor([1, "seq_len", hidden], dtype),
                "kv_cache": nn.spec.Object(object_type=PagedKVCache),
                "$": with_params,
            },
            "decode": {
                "input_embeds": nn.spec.Tensor([1, 1, hidden], dtype),
                "kv_cache": nn.spec.Object(object_type=PagedKVCache),
                "$": with_params,
            },
            "create_tir_paged_kv_cache": {
                "max_batch_size": int,
                "max_total_seq_len": int,
                "prefill_chunk_size": int,
                "page_size": int,
                "support_sliding_window": int,
                "$": no_params,
            },
        }
