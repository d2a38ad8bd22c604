"""Map a GGUF's metadata to the Hugging Face `config.json` dictionary of its family (ARCHITECTURES)."""

from __future__ import annotations

from typing import Any

from webapp.compile.architectures import OTHER_BACKEND_HINT
from webapp.compile.gguf.reader import GGUFError, GGUFFile, shortest_float32

# llama.cpp's default when a GGUF has no <arch>.rope.freq_base.
DEFAULT_ROPE_THETA = 10000.0
# Biases llama.cpp loads when present (TENSOR_NOT_REQUIRED) and leaves out when not.
OPTIONAL_BIASES = ("attn_q", "attn_k", "attn_v", "attn_output")


def hf_config(gf: GGUFFile) -> dict[str, Any]:
    """The Hugging Face config of a GGUF (shapes, norms, rope, special token ids), under its family's names."""
    row = gf.check_architecture()
    assert row.gguf is not None
    key = f"{row.gguf.architecture}."
    rope_scaling = _rope_scaling(gf, key, row.gguf.linear_rope)
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
        raise GGUFError(f"{gf.path}: key and value head sizes differ; {row.name} models use one head size. "
                        f"{OTHER_BACKEND_HINT}")
    rope_dims = gf.get_int(key + "rope.dimension_count", default=head_dim)
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
        "architectures": [row.hf_architectures[0]],
        "model_type": row.name,
        "hidden_size": hidden,
        "intermediate_size": gf.get_int(key + "feed_forward_length"),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "num_hidden_layers": gf.get_int(key + "block_count"),
        "head_dim": head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": shortest_float32(gf.get_float(key + "attention.layer_norm_rms_epsilon")),
        "rope_theta": shortest_float32(gf.get_float(key + "rope.freq_base", DEFAULT_ROPE_THETA)),
        "rope_scaling": rope_scaling,
        "max_position_embeddings": gf.get_int(key + "context_length"),
        "vocab_size": vocab_size,
        # llama.cpp's converter drops output.weight when the head shares the embedding matrix.
        "tie_word_embeddings": "output.weight" not in gf.tensors,
        # Any bias makes the family's biased attention; the loader gives zeros for the ones left out.
        "attention_bias": any(f"blk.{i}.{part}.bias" in gf.tensors for i in range(gf.get_int(key + "block_count"))
                              for part in OPTIONAL_BIASES),
        "mlp_bias": "blk.0.ffn_up.bias" in gf.tensors,
        "torch_dtype": "float32",
    }
    if rope_dims != head_dim:  # the family's config reader refuses it where the family has no such thing
        config["partial_rotary_factor"] = rope_dims / head_dim
    window = gf.get(key + "attention.sliding_window")
    if window:
        config["sliding_window"] = int(window)
    if row.gguf.extra_config:
        config.update(row.gguf.extra_config(gf, row.gguf.architecture))
    for hf_key, gguf_key in (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("pad_token_id", "padding")):
        value = gf.get(f"tokenizer.ggml.{gguf_key}_token_id")
        if value is not None:
            config[hf_key] = int(value)
    return config


def _rope_scaling(gf: GGUFFile, key: str, linear: bool) -> dict[str, Any] | None:
    """config.json's rope_scaling for the scaling the file says, where the family takes it; else refused."""
    if "rope_freqs.weight" in gf.tensors:
        raise GGUFError(
            f"{gf.path} carries rope_freqs.weight (Llama 3.1-style rope scaling), which Hearth's GGUF reader "
            f"does not convert yet; compile the Hugging Face checkpoint instead, or with `--backend mlc-llm`."
        )
    kind = gf.get(key + "rope.scaling.type")
    if kind in (None, "none"):
        return None
    if kind == "linear" and linear:
        return {"rope_type": "linear", "factor": shortest_float32(gf.get_float(key + "rope.scaling.factor"))}
    raise GGUFError(f"{gf.path}: rope scaling {kind!r} ({key}rope.scaling.type) is not supported by Hearth's "
                    f"compiler. {OTHER_BACKEND_HINT}")
