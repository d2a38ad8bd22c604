"""Write a tiny, random-weight Hugging Face Llama checkpoint with a real byte-level BPE tokenizer.

Everything is seeded, so the same arguments give the same bytes (compiled outputs are cached by
a hash of them). The weights are scaled so greedy decoding has clear winners: float32 rounding on
the GPU should never flip an argmax.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

CORPUS = [
    "The hearth is the heart of the home, where the fire is kept and the stories are told.",
    "A model that runs in your browser keeps your words on your own machine.",
    "WebGPU lets a web page use the graphics card for general computation.",
    "Quantization stores each weight in four bits, with one scale for every group of thirty-two.",
    "Rotary embeddings turn positions into rotations of pairs of numbers inside each attention head.",
    "Grouped-query attention shares every key and value head among several query heads.",
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs!",
    "0123456789 + - * / = ( ) [ ] { } < > ? ! , . ; : ' \" @ # $ % ^ & _ ~ `",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 384
GEMMA = {"hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
         "query_pre_attn_scalar": 16, "sliding_window": 16, "rms_norm_eps": 1e-6}
# One tiny checkpoint per family Hearth compiles: config.json overrides of llama_config(). Output heads
# are untied: a tiny random model whose head is its embedding table only repeats its last token.
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {},
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"},
    # Qwen3's heads are wider than hidden_size / heads, as in the published ones (head_dim 128).
    "qwen3": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 32},
    # A sliding window of 16 in a context of 512, which prompts and decoding cross (prefill chunks at the
    # window, so prompts take several).
    "mistral": {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "sliding_window": 16},
    # Phi-4-mini's shape: fused q/k/v and gate/up, rotary embedding over 3/4 of each head.
    "phi3": {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "partial_rotary_factor": 0.75},
    # Gemma: tied embeddings, llama.cpp's attention scale (query_pre_attn_scalar = head_dim), a sliding
    # window of 16 that every test's prompt and decoding cross (prefill chunks at the window, so prompts
    # take several). Gemma 2's attention soft-cap is small enough to squash this
    # model's scores (spread about 4; uncapped, its logits move by 11-16% of the largest).
    "gemma2": {**GEMMA, "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2",
               "final_logit_softcapping": 30.0, "attn_logit_softcapping": 5.0},
    # Gemma 3: six layers, so that the sixth attends over everything with the global rope base.
    "gemma3": {**GEMMA, "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "num_hidden_layers": 6,
               "rope_theta": 1e6, "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6},
}


def build_tokenizer() -> Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 style, like SmolLM2's) trained on CORPUS."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def llama_config(vocab_size: int, **overrides: Any) -> dict[str, Any]:
    """config.json of a 2-layer grouped-query Llama small enough to compile and run in seconds."""
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": vocab_size,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "bfloat16",
    }
    config.update(overrides)
    return config


def _weights(config: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads, kv_heads, head_dim = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    qwen = config["architectures"] == ["Qwen2ForCausalLM"]
    # Llama's attention_bias gives q/k/v and o biases; Qwen2 always has q/k/v biases and no o bias.
    llama_bias = config["architectures"] == ["LlamaForCausalLM"] and config.get("attention_bias", False)
    gemma = config["architectures"][0].startswith("Gemma")
    qk_norm = config["architectures"] in (["Qwen3ForCausalLM"], ["Gemma3ForCausalLM"])
    # Gemma's RMSNorms multiply by 1 + weight, so its weights are stored around 0, not 1.
    norm_base = 0.0 if gemma else 1.0

    def dense(rows: int, cols: int, gain: float = 1.0) -> np.ndarray:
        return rng.standard_normal((rows, cols)) * gain / np.sqrt(cols)

    weights = {"model.embed_tokens.weight": rng.standard_normal((config["vocab_size"], hidden))}
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        weights[f"{prefix}.input_layernorm.weight"] = norm_base + 0.1 * rng.standard_normal(hidden)
        weights[f"{prefix}.post_attention_layernorm.weight"] = norm_base + 0.1 * rng.standard_normal(hidden)
        if gemma:
            for name in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
                weights[f"{prefix}.{name}.weight"] = 0.1 * rng.standard_normal(hidden)
        projections = (("q_proj", heads * head_dim), ("k_proj", kv_heads * head_dim), ("v_proj", kv_heads * head_dim))
        for name, rows in projections:
            weights[f"{prefix}.self_attn.{name}.weight"] = dense(rows, hidden, 2.0)
            if qwen or llama_bias:
                weights[f"{prefix}.self_attn.{name}.bias"] = 0.1 * rng.standard_normal(rows)
        weights[f"{prefix}.self_attn.o_proj.weight"] = dense(hidden, heads * head_dim)
        if llama_bias:
            weights[f"{prefix}.self_attn.o_proj.bias"] = 0.1 * rng.standard_normal(hidden)
        if qk_norm:
            weights[f"{prefix}.self_attn.q_norm.weight"] = norm_base + 0.1 * rng.standard_normal(head_dim)
            weights[f"{prefix}.self_attn.k_norm.weight"] = norm_base + 0.1 * rng.standard_normal(head_dim)
        weights[f"{prefix}.mlp.gate_proj.weight"] = dense(inter, hidden)
        weights[f"{prefix}.mlp.up_proj.weight"] = dense(inter, hidden)
        weights[f"{prefix}.mlp.down_proj.weight"] = dense(hidden, inter)
    weights["model.norm.weight"] = norm_base + 0.1 * rng.standard_normal(hidden)
    if not config["tie_word_embeddings"]:
        # A wide output projection: logits several units apart, so argmax is robust to rounding.
        weights["lm_head.weight"] = dense(config["vocab_size"], hidden, 4.0)
    if config["architectures"] == ["Phi3ForCausalLM"]:  # Phi-3 stores the projections fused
        for layer in range(config["num_hidden_layers"]):
            prefix = f"model.layers.{layer}"
            parts = [weights.pop(f"{prefix}.self_attn.{name}.weight") for name in ("q_proj", "k_proj", "v_proj")]
            weights[f"{prefix}.self_attn.qkv_proj.weight"] = np.concatenate(parts)
            parts = [weights.pop(f"{prefix}.mlp.{name}.weight") for name in ("gate_proj", "up_proj")]
            weights[f"{prefix}.mlp.gate_up_proj.weight"] = np.concatenate(parts)
    # Checkpoints ship bfloat16; the loader widens it exactly.
    return {name: np.ascontiguousarray(w.astype(ml_dtypes.bfloat16)) for name, w in weights.items()}


def write_tiny_checkpoint(directory: Path, *, seed: int = 0, **config_overrides: Any) -> Path:
    """Write config.json, model.safetensors, tokenizer.json and generation_config.json; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    # A vocabulary larger than the tokenizer's is allowed (Qwen2 pads it, too).
    config = llama_config(config_overrides.pop("vocab_size", tokenizer.get_vocab_size()), **config_overrides)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 0}))
    tokenizer.save(str(directory / "tokenizer.json"))
    save_file(_weights(config, seed), str(directory / "model.safetensors"))
    return directory


# The tiny Gemma 3's config.json values equal to transformers' Gemma3TextConfig defaults, which
# save_pretrained leaves out of a multimodal checkpoint's text_config (PretrainedConfig.to_diff_dict).
GEMMA3_TEXT_DEFAULTS = {"rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": True,
                        "hidden_activation": "gelu_pytorch_tanh", "rope_local_base_freq": 10000.0,
                        "sliding_window_pattern": 6}
# Where Gemma3ForConditionalGeneration keeps Gemma3ForCausalLM's tensors, by transformers version:
# (prefix of the text-only name, what replaces it).
GEMMA3_MULTIMODAL_NAMES = {"before-4.52": ("", "language_model."), "since-4.52": ("model.", "model.language_model.")}


def write_gemma3_multimodal(text_only: Path, directory: Path, naming: str) -> Path:
    """The tiny Gemma3ForCausalLM checkpoint at `text_only` as a Gemma3ForConditionalGeneration one.

    Its text model's config goes under text_config without the keys equal to transformers' defaults, its
    tensors under the `naming` prefix of GEMMA3_MULTIMODAL_NAMES, beside a few random vision-tower and
    projector tensors (a SigLIP encoder's names) that the text model does not use.
    """
    from safetensors.numpy import load_file

    directory.mkdir(parents=True, exist_ok=True)
    config = json.loads((text_only / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"], config["architectures"]
    # The 4B's config keeps eos_token_id outside text_config; hidden_act is not a Gemma3TextConfig key.
    left_out = {"architectures", "torch_dtype", "eos_token_id", "hidden_act"}
    left_out |= {key for key, value in GEMMA3_TEXT_DEFAULTS.items() if config.get(key) == value}
    text = {key: value for key, value in config.items() if key not in left_out}
    vision = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "image_size": 28,
              "patch_size": 14, "num_attention_heads": 2, "num_hidden_layers": 1, "vision_use_head": False}
    multimodal = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                  "eos_token_id": config["eos_token_id"], "mm_tokens_per_image": 4, "torch_dtype": "bfloat16",
                  "text_config": text, "vision_config": vision}  # fmt: skip
    (directory / "config.json").write_text(json.dumps(multimodal, indent=2))
    for name in ("tokenizer.json", "generation_config.json"):
        (directory / name).write_bytes((text_only / name).read_bytes())
    old, new = GEMMA3_MULTIMODAL_NAMES[naming]
    weights = {new + name[len(old):]: values for name, values in load_file(str(text_only / "model.safetensors")).items()}
    owner = "model." if naming == "since-4.52" else ""
    rng = np.random.default_rng(1)
    for name, shape in (("vision_tower.vision_model.embeddings.patch_embedding.weight", (32, 3, 14, 14)),
                        ("vision_tower.vision_model.post_layernorm.weight", (32,)),
                        ("multi_modal_projector.mm_input_projection_weight", (32, config["hidden_size"])),
                        ("multi_modal_projector.mm_soft_emb_norm.weight", (32,))):  # fmt: skip
        weights[owner + name] = rng.standard_normal(shape).astype(ml_dtypes.bfloat16)
    save_file(weights, str(directory / "model.safetensors"))
    return directory
