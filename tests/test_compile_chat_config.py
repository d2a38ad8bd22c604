"""mlc-chat-config.json carries what WebLLM 0.2.86 needs: an inline chat template, windows, token ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.tinycheckpoint import build_tokenizer, llama_config
from webapp.compile.chat_config import ChatConfigError, chat_config
from webapp.compile.architectures import config_from_hf
from webapp.compile.quantize import get_quantization


def _tokenizer(*special: str) -> dict[str, Any]:
    data = json.loads(build_tokenizer().to_str())
    start = max(token["id"] for token in data["added_tokens"]) + 1000
    data["added_tokens"] += [{"id": start + i, "content": token, "special": True} for i, token in enumerate(special)]
    return data


def _without(tokenizer: dict[str, Any], *tokens: str) -> dict[str, Any]:
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] not in tokens]
    for token in tokens:
        tokenizer["model"]["vocab"].pop(token, None)
    return tokenizer


def _config(tokenizer: dict[str, Any], template: str = "auto", **hf: Any) -> dict[str, Any]:
    hf_config = llama_config(2048, **hf)
    return chat_config(config_from_hf(hf_config), get_quantization("q4f32_1"), hf_config, {}, tokenizer, template)


def test_webllm_fields_are_present() -> None:
    config = _config(_tokenizer())
    # Without sliding_window_size: -1, LLMChatPipeline sees two windows and refuses to load.
    assert config["sliding_window_size"] == -1
    assert config["context_window_size"] == 512  # max_position_embeddings, below the 4096 default
    assert config["prefill_chunk_size"] == 512
    assert config["tokenizer_files"] == ["tokenizer.json"]
    assert config["tokenizer_info"]["token_postproc_method"] == "byte_level"
    assert config["model_type"] == "llama" and config["quantization"] == "q4f32_1"
    assert config["model_config"]["num_key_value_heads"] == 2
    # WebLLM spreads the template into its Conversation: it must be an object with seps and roles.
    template = config["conv_template"]
    assert isinstance(template, dict) and template["seps"] and set(template["roles"]) == {"user", "assistant", "tool"}


def test_chatml_is_picked_from_the_tokenizer_and_stops_on_im_end() -> None:
    tokenizer = _tokenizer()
    config = _config(tokenizer)
    template = config["conv_template"]
    im_end = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<|im_end|>")
    assert template["name"] == "chatml"
    assert im_end in template["stop_token_ids"] and template["stop_str"] == ["<|im_end|>"]


def test_llama3_template_starts_with_begin_of_text() -> None:
    specials = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    tokenizer = _tokenizer(*specials)
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    template = _config(_without(tokenizer, "<|im_start|>", "<|im_end|>"))["conv_template"]
    assert template["name"] == "llama-3"
    assert template["system_prefix_token_ids"] == [ids["<|begin_of_text|>"]]
    assert set(template["stop_token_ids"]) >= {ids["<|eot_id|>"], ids["<|end_of_text|>"]}


def test_plain_text_template_for_base_models() -> None:
    config = _config(_without(_tokenizer(), "<|im_start|>", "<|im_end|>"), bos_token_id=0, eos_token_id=0)
    assert config["conv_template"]["name"] == "LM"
    assert config["conv_template"]["system_prefix_token_ids"] == [0]
    assert config["conv_template"]["stop_token_ids"] == [0]


def test_explicit_template_needs_its_tokens() -> None:
    with pytest.raises(ChatConfigError, match="no token '<\\|eot_id\\|>'"):
        _config(_tokenizer(), "llama-3")
    with pytest.raises(ChatConfigError, match="unknown chat template 'vicuna'"):
        _config(_tokenizer(), "vicuna")



def test_gemma_template_has_user_and_model_turns() -> None:
    tokenizer = _tokenizer("<bos>", "<start_of_turn>", "<end_of_turn>")
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    config = _config(_without(tokenizer, "<|im_start|>", "<|im_end|>"), bos_token_id=ids["<bos>"], eos_token_id=1)
    template = config["conv_template"]
    assert template["name"] == "gemma"
    turns = (template["roles"]["user"], template["roles"]["assistant"])
    assert turns == ("<start_of_turn>user", "<start_of_turn>model")
    assert template["seps"] == ["<end_of_turn>\n"] and template["role_content_sep"] == "\n"
    assert template["system_prefix_token_ids"] == [ids["<bos>"]]
    assert set(template["stop_token_ids"]) == {ids["<end_of_turn>"], 1}
