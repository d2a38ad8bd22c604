"""What Hearth's compiler does not build is refused by name, naming the mlc-llm backend, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tinycheckpoint import FAMILIES, write_gemma3_multimodal, write_tiny_checkpoint
from tests.tinygguf import write_tiny_gguf

QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}
QWEN3 = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}
GEMMA2, GEMMA3 = FAMILIES["gemma2"], FAMILIES["gemma3"]

# name -> (config.json overrides, GGUF tensors left out, GGUF metadata, the message)
GGUF_CASES = {
    "qwen2-moe": (QWEN2, (), {"expert_count": 4}, r"mixture-of-experts.*--backend mlc-llm"),
    "qwen2-yarn": (QWEN2, (), {"rope__scaling__type": "yarn"},
                   r"rope scaling 'yarn' \(qwen2\.rope\.scaling\.type\).*--backend mlc-llm"),
    # Linear rope scaling is taken from Gemma 3's GGUFs only (its 4B and up); Qwen2's reader has none.
    "qwen2-linear": (QWEN2, (), {"rope__scaling__type": "linear", "rope__scaling__factor": 2.0},
                     r"rope scaling 'linear' \(qwen2\.rope\.scaling\.type\).*--backend mlc-llm"),
    "qwen2-ffn-mismatch": (QWEN2, (), {"feed_forward_length": 192},
                           r"tensor blk\.0\.ffn_gate\.weight has shape \[160, 64\].*metadata implies \[192, 64\]"),
    "qwen2-head-mismatch": (QWEN2, (), {"attention__head_count_kv": 4},
                            r"tensor blk\.0\.attn_k\.weight has shape \[32, 64\].*metadata implies \[64, 64\]"),
    "qwen3-missing-norm": (QWEN3, ("blk.1.attn_k_norm.weight",), {},
                           r"has no tensor model\.layers\.1\.self_attn\.k_norm\.weight.*--backend mlc-llm"),
    "gemma3-missing-post-norm": (GEMMA3, ("blk.1.post_ffw_norm.weight",), {},
                                 r"has no tensor model\.layers\.1\.post_feedforward_layernorm\.weight"),
}  # fmt: skip
# name -> (config.json overrides, the message)
HF_CASES = {
    "moe": ({"num_local_experts": 8}, r"num_local_experts=8 makes this a mixture-of-experts model.*--backend mlc-llm"),
    "yarn": ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, r"rope_scaling type 'yarn'.*--backend mlc-llm"),
    "unknown-family": ({"architectures": ["GPTNeoXForCausalLM"]}, r"unsupported architecture GPTNeoX.*mlc-llm"),
    # Qwen2's window covers only the layers from max_window_layers on, which Hearth's compiler does not build.
    "qwen2-window": ({**QWEN2, "use_sliding_window": True, "sliding_window": 64},
                     r"use_sliding_window=true is not supported.*--backend mlc-llm"),
    "gemma2-attention-softcap": ({**GEMMA2, "attn_logit_softcapping": 0},
                                 r"'attn_logit_softcapping' must be a positive number or null, not 0"),
    "gemma3-layer-order": ({**GEMMA3, "layer_types": ["full_attention"] + ["sliding_attention"] * 5},
                           r"layer_types is not one full-attention layer after every 5 sliding-window ones"),
    "gemma3-yarn": ({**GEMMA3, "rope_scaling": {"rope_type": "yarn", "factor": 8.0}},
                    r"rope_scaling .* not supported for Gemma.*--backend mlc-llm"),
}  # fmt: skip


def _refused(source: Path, output: Path, pattern: str, **options: int) -> None:
    from webapp.compile.errors import CompileError
    from webapp.compile.pipeline import compile_model, default_quantization

    with pytest.raises(CompileError, match=pattern):
        compile_model(source, default_quantization(source), output / "tiny", **options)
    assert not output.exists() or not any(output.iterdir()), "a refused compile wrote something"


@pytest.mark.parametrize("case", GGUF_CASES)
def test_unsupported_gguf_is_refused_by_name(case: str, tmp_path: Path) -> None:
    overrides, drop, metadata, pattern = GGUF_CASES[case]
    directory = write_tiny_checkpoint(tmp_path / "checkpoint", **overrides)
    gguf_path = write_tiny_gguf(directory, tmp_path / "tiny.gguf", drop=drop, **metadata)
    _refused(gguf_path, tmp_path / "models", pattern)


@pytest.mark.parametrize("case", HF_CASES)
def test_unsupported_checkpoint_is_refused_by_name(case: str, tmp_path: Path) -> None:
    overrides, pattern = HF_CASES[case]
    directory = write_tiny_checkpoint(tmp_path / "checkpoint", **overrides)
    _refused(directory, tmp_path / "models", pattern, context_window_size=128)


def test_checkpoint_missing_a_norm_names_it(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    directory = write_tiny_checkpoint(tmp_path / "checkpoint", **QWEN3)
    weights = load_file(str(directory / "model.safetensors"))
    del weights["model.layers.0.self_attn.q_norm.weight"]
    save_file(weights, str(directory / "model.safetensors"))
    assert json.loads((directory / "config.json").read_text())["model_type"] == "qwen3"
    _refused(directory, tmp_path / "models", r"has no tensor model\.layers\.0\.self_attn\.q_norm\.weight")


# (tensor names of the tiny Gemma 3 multimodal checkpoint that the case leaves out) -> the message
MULTIMODAL_CASES = {
    "no-text-model": (r"^(model\.)?language_model\.",
                      r"has no text model tensors: config.json says Gemma3ForConditionalGeneration, whose text "
                      r"model is named language_model\.\* or model\.language_model\.\* \(the image part, "
                      r"vision_tower, multi_modal_projector, is not compiled\)"),
    "missing-norm": (r"^model\.language_model\.layers\.1\.post_feedforward_layernorm\.",
                     r"has no tensor model\.language_model\.layers\.1\.post_feedforward_layernorm\.weight"),
}  # fmt: skip


@pytest.mark.parametrize("case", MULTIMODAL_CASES)
def test_multimodal_checkpoint_without_its_text_tensors_names_them(case: str, tmp_path: Path) -> None:
    import re

    from safetensors.numpy import load_file, save_file

    left_out, pattern = MULTIMODAL_CASES[case]
    text_only = write_tiny_checkpoint(tmp_path / "text-only", **GEMMA3)
    directory = write_gemma3_multimodal(text_only, tmp_path / "checkpoint", "since-4.52")
    weights = load_file(str(directory / "model.safetensors"))
    kept = {name: values for name, values in weights.items() if not re.match(left_out, name)}
    assert 0 < len(kept) < len(weights)
    save_file(kept, str(directory / "model.safetensors"))
    _refused(directory, tmp_path / "models", pattern)


def test_multimodal_projector_gguf_is_refused_naming_the_text_model(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    # llama.cpp's converter writes a vision-language model's image encoder as a separate "mmproj" file.
    path = tmp_path / "mmproj-tiny.gguf"
    writer = gguf.GGUFWriter(path, "clip")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_uint32("clip.vision.embedding_length", 32)
    writer.add_tensor("v.patch_embd.weight", np.zeros((32, 3, 14, 14), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    _refused(path, tmp_path / "models", r"mmproj-tiny\.gguf is a multimodal projector \(mmproj\) file.*"
             r"Pass the text model's GGUF")
