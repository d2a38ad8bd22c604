"""Map a Llama GGUF's metadata to the Hugging Face `config.json` dictionary a LlamaForCausalLM reads."""

from __future__ import annotations

from typing import Any

from webapp.compile.gguf.reader import OTHER_BACKEND_HINT, GGUFError, GGUFFile, shortest_float32

# llama.cpp's default when a Llama GGUF has no llama.rope.freq_base.
DEFAULT_ROPE_THETA = 10000.0


def hf_config(gf: GGUFFile) -> dict[str, Any]:
    """The Hugging Face config of a Llama GGUF (shapes, norms, rope, special token ids)."""
    arch = gf.check_architecture()
    key = f"{arch}."
    if gf.get(key + "expert_count", 0):
        raise GGUFError(f"{gf.path} holds a mixture-of-experts model (Mixtral style). {OTHER_BACKEND_HINT}")
    hidden = gf.get_int(key + "embedding_length")
    n_heads = gf.get_int(key + "attention.head_count")
    n_kv_heads = gf.get_int(key + "attention.head_count_kv", default=n_heads)
    if n_heads <= 0 or n_kv_heads <= 0 or n_heads % n_kv_heads:
        raise GGUFError(
            f"{gf.path}: {n_heads} attention heads cannot be shared by {n_kv_heads} key/value heads "
            f"({key}attention.head_count / head_count_kv)."
        )
    head_dim = gf.get_int(key + "attention.key_length", default=hidden // n_heads)
    if gf.get_int(key + "attention.value_length", default=head_dim) != head_dim:
        raise GGUFError(f"{gf.path}: key and value head sizes differ; Llama models use one head size.")
    rope_dims = gf.get_int(key + "rope.dimension_count", default=head_dim)
    if rope_dims != head_dim:
        raise GGUFError(
            f"{gf.path}: rotary embedding covers {rope_dims} of {head_dim} head dimensions; "
            f"partial rotary embeddings are not part of the Llama architecture Hearth compiles."
        )
    tokens = gf.get_list("tokenizer.ggml.tokens")
    vocab_size = gf.get_int(key + "vocab_size", default=len(tokens))
    embed = gf.tensors.get("token_embd.weight")
    if embed is None:
        raise GGUFError(f"{gf.path} has no token_embd.weight tensor; it is not a complete model.")
    if int(embed.shape[1]) != vocab_size or int(embed.shape[0]) != hidden:
        raise GGUFError(
            f"{gf.path}: token_embd.weight is {list(reversed(embed.shape.tolist()))} but the metadata says "
            f"vocab {vocab_size} x hidden {hidden}."
        )
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": gf.get_int(key + "feed_forward_length"),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "num_hidden_layers": gf.get_int(key + "block_count"),
        "head_dim": head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": shortest_float32(gf.get_float(key + "attention.layer_norm_rms_epsilon")),
        "rope_theta": shortest_float32(gf.get_float(key + "rope.freq_base", DEFAULT_ROPE_THETA)),
        "rope_scaling": _rope_scaling(gf, key),
        "max_position_embeddings": gf.get_int(key + "context_length"),
        "vocab_size": vocab_size,
        # llama.cpp's converter drops output.weight when the head shares the embedding matrix.
        "tie_word_embeddings": "output.weight" not in gf.tensors,
        "attention_bias": "blk.0.attn_q.bias" in gf.tensors,
        "mlp_bias": "blk.0.ffn_up.bias" in gf.tensors,
        "torch_dtype": "float32",
    }
    for hf_key, gguf_key in (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("pad_token_id", "padding")):
        value = gf.get(f"tokenizer.ggml.{gguf_key}_token_id")
        if value is not None:
            config[hf_key] = int(value)
    return config


def _rope_scaling(gf: GGUFFile, key: str) -> dict[str, Any] | None:
    if "rope_freqs.weight" in gf.tensors:
        raise GGUFError(
            f"{gf.path} carries rope_freqs.weight (Llama 3.1-style rope scaling), which Hearth's GGUF reader "
            f"does not convert yet; compile the Hugging Face checkpoint instead."
        )
    kind = gf.get(key + "rope.scaling.type")
    if kind in (None, "none"):
        return None
    if kind == "linear":
        return {"rope_type": "linear", "factor": gf.get_float(key + "rope.scaling.factor")}
    raise GGUFError(f"{gf.path}: rope scaling {kind!r} is not supported by Hearth's GGUF reader (only linear).")
