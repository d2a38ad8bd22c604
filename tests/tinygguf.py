"""Write a tiny Hugging Face checkpoint (tests/tinycheckpoint.py) as a GGUF, the way llama.cpp's converter does.

Written from the GGUF spec and llama.cpp's tensor names with the `gguf` package: metadata under the
family's prefix, HF tensors renamed (blk.N.attn_q...), Llama's q/k rows reordered for ggml's
interleaved rotary pairs, float32 weights (the bf16 values, exactly), and the byte-level BPE
tokenizer as tokens, types and merges. llama.cpp then runs the same weights Hearth compiles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# HF per-layer names (after "model.layers.N.") -> GGUF names (after "blk.N."), as in llama.cpp's tensor map.
LAYER_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.qkv_proj": "attn_qkv",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.gate_up_proj": "ffn_up",  # Phi-3: gate rows, then up rows
    "mlp.down_proj": "ffn_down",
}
# Gemma's differ: a norm after attention and after the MLP too; "ffn_norm" is the one before the MLP.
GEMMA_LAYER_NAMES = {
    **LAYER_NAMES,
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}
GLOBAL_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
# general.architecture and tokenizer.ggml.pre by config.json architecture.
FAMILIES = {
    "LlamaForCausalLM": ("llama", "gpt-2"),
    "Qwen2ForCausalLM": ("qwen2", "qwen2"),
    "Qwen3ForCausalLM": ("qwen3", "qwen2"),
    "MistralForCausalLM": ("llama", "gpt-2"),  # llama.cpp converts Mistral checkpoints as Llama
    "Phi3ForCausalLM": ("phi3", "gpt-2"),
    "Gemma2ForCausalLM": ("gemma2", "gpt-2"),
    "Gemma3ForCausalLM": ("gemma3", "gpt-2"),
}
# config.json key -> Gemma metadata key, written when the config has it (as convert_hf_to_gguf.py does).
GEMMA_KEYS = {
    "sliding_window": "attention.sliding_window",
    "attn_logit_softcapping": "attn_logit_softcapping",
    "final_logit_softcapping": "final_logit_softcapping",
    "rope_local_base_freq": "rope.freq_base_swa",
}
NORMAL, CONTROL = 1, 3


def gguf_name(hf_name: str, arch: str = "llama") -> str:
    """llama.cpp's name for a Hugging Face tensor name of a family (general.architecture)."""
    owner, _, leaf = hf_name.rpartition(".")
    if owner in GLOBAL_NAMES:
        return f"{GLOBAL_NAMES[owner]}.{leaf}"
    _, _, layer, part = owner.split(".", 3)
    names = GEMMA_LAYER_NAMES if arch.startswith("gemma") else LAYER_NAMES
    return f"blk.{layer}.{names[part]}.{leaf}"


def interleave_rotary_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's Llama q/k permutation: each head's pair (i, i + d/2) onto rows 2i, 2i + 1."""
    head_dim = rows.shape[0] // n_heads
    return rows.reshape(n_heads, 2, head_dim // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def write_tiny_gguf(checkpoint: Path, path: Path, drop: tuple[str, ...] = (), **metadata: int | float | str) -> Path:
    """The checkpoint directory's config, float32 weights and tokenizer as one GGUF file at `path`.

    `drop` leaves out tensors by GGUF name; `metadata` sets `<arch>.<key>` (dots written as "__").
    """
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((checkpoint / "config.json").read_text())
    arch, pre = FAMILIES[config["architectures"][0]]
    writer = gguf.GGUFWriter(path, arch)
    keys: dict[str, int | float] = {
        "context_length": config["max_position_embeddings"], "embedding_length": config["hidden_size"],
        "feed_forward_length": config["intermediate_size"], "block_count": config["num_hidden_layers"],
        "attention.head_count": config["num_attention_heads"],
        "attention.head_count_kv": config["num_key_value_heads"], "attention.key_length": config["head_dim"],
        "attention.value_length": config["head_dim"],
        "attention.layer_norm_rms_epsilon": float(config["rms_norm_eps"]),
        "rope.freq_base": float(config["rope_theta"]),
        "rope.dimension_count": int(config["head_dim"] * config.get("partial_rotary_factor", 1.0)),
    }  # fmt: skip
    if arch.startswith("gemma"):
        keys.update({gguf_key: config[key] for key, gguf_key in GEMMA_KEYS.items() if config.get(key) is not None})
    if arch == "gemma3" and config.get("rope_scaling"):  # the 4B and up: linear, on the full-attention layers
        keys.update({"rope.scaling.type": "linear", "rope.scaling.factor": float(config["rope_scaling"]["factor"])})
    keys.update({key.replace("__", "."): value for key, value in metadata.items()})
    for key, value in keys.items():
        if isinstance(value, str):
            writer.add_string(f"{arch}.{key}", value)
        elif isinstance(value, float):
            writer.add_float32(f"{arch}.{key}", value)
        else:
            writer.add_uint32(f"{arch}.{key}", value)
    _add_tokenizer(writer, json.loads((checkpoint / "tokenizer.json").read_text()), pre, config)
    heads = {"attn_q": config["num_attention_heads"], "attn_k": config["num_key_value_heads"]}
    for hf_name, values in load_file(str(checkpoint / "model.safetensors")).items():
        name = gguf_name(hf_name, arch)
        if name in drop:
            continue
        values = values.astype(np.float32)
        if arch.startswith("gemma") and hf_name.endswith("norm.weight"):
            values = values + np.float32(1)  # Gemma's RMSNorm weight w multiplies as 1 + w
        part = name.split(".")[-2]
        if arch == "llama" and part in heads:
            values = interleave_rotary_rows(values, heads[part])
        writer.add_tensor(name, np.ascontiguousarray(values))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tokenizer(writer, tokenizer: dict, pre: str, config: dict) -> None:  # type: ignore[no-untyped-def]
    vocab = tokenizer["model"]["vocab"]
    specials = {token["id"] for token in tokenizer["added_tokens"] if token.get("special")}
    tokens = sorted(vocab, key=vocab.__getitem__)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_string("tokenizer.ggml.pre", pre)
    writer.add_token_list(tokens)
    writer.add_token_types([CONTROL if vocab[t] in specials else NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_uint32("tokenizer.ggml.bos_token_id", config["bos_token_id"])
    writer.add_uint32("tokenizer.ggml.eos_token_id", config["eos_token_id"])
    writer.add_bool("tokenizer.ggml.add_bos_token", False)
