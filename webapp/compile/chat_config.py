"""mlc-chat-config.json for a compiled model: what WebLLM 0.2.86 reads besides the weights.

WebLLM spreads `conv_template` into its Conversation (getConversation: {...conv_template,
...conv_config}), so the template must be an inline object, as mlc-llm writes it; a bare name
would spread into character keys. `sliding_window_size: -1` must be present: when it is
missing, LLMChatPipeline treats the model as having both a context and a sliding window and
refuses to load it.
"""

from __future__ import annotations

from typing import Any

from webapp.compile.errors import CompileError
from webapp.compile.scheme import Quantization

CONV_TEMPLATES = ("auto", "chatml", "llama-3", "gemma", "LM")
# Sampling defaults for what the checkpoint does not set (generation_config.json, a GGUF's
# general.sampling.*). Hearth compiles small models for browsers, and at mlc-llm's defaults (1.0, 1.0,
# no penalty) they ramble and loop. These are SmolLM2's model-card settings (temperature 0.2,
# top_p 0.9) plus a mild repetition penalty: with llama.cpp on SmolLM2-135M, 160-token answers at
# temperature 0.2 went from 26-50% distinct words without it to 66-72% with 1.1.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.9
DEFAULT_REPETITION_PENALTY = 1.1


class ChatConfigError(CompileError):
    """The checkpoint's tokenizer or generation settings do not fit the requested chat template."""


def _token_id(vocab: dict[str, int], token: str) -> int:
    if token not in vocab:
        raise ChatConfigError(f"tokenizer.json has no token {token!r}, which this chat template needs")
    return vocab[token]


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def tokenizer_vocab(tokenizer: dict[str, Any]) -> dict[str, int]:
    """Token string -> id from a parsed tokenizer.json: the model's vocabulary plus added tokens."""
    model_vocab = tokenizer.get("model", {}).get("vocab", {})
    # WordPiece/BPE/WordLevel keep a dict; Unigram keeps [piece, score] pairs in id order.
    vocab = dict(model_vocab) if isinstance(model_vocab, dict) else {p[0]: i for i, p in enumerate(model_vocab)}
    vocab.update({t["content"]: t["id"] for t in tokenizer.get("added_tokens", []) if "content" in t})
    return vocab


def token_postproc_method(tokenizer: dict[str, Any]) -> str:
    """How WebLLM's grammar engine must turn token strings into bytes (only used for JSON mode)."""

    def types(node: Any) -> list[str]:
        if not isinstance(node, dict):
            return []
        return [str(node.get("type")), *(t for child in node.get("decoders", []) for t in types(child))]

    decoders = types(tokenizer.get("decoder"))
    if "ByteLevel" in decoders:
        return "byte_level"
    if "ByteFallback" in decoders:
        return "byte_fallback"
    return "raw"


def _template(name: str, vocab: dict[str, int], bos: list[int], eos: list[int]) -> dict[str, Any]:
    common = {
        "name": name,
        "system_prefix_token_ids": None,
        "add_role_after_system_message": True,
        "role_templates": {"user": "{user_message}", "assistant": "{assistant_message}", "tool": "{tool_message}"},
        "messages": [],
        "function_string": "",
        "use_function_calling": False,
    }
    if name == "chatml":
        end = _token_id(vocab, "<|im_end|>")
        _token_id(vocab, "<|im_start|>")
        return {
            **common,
            "system_template": "<|im_start|>system\n{system_message}<|im_end|>\n",
            "system_message": "You are a helpful assistant.",
            "roles": {"user": "<|im_start|>user", "assistant": "<|im_start|>assistant", "tool": "<|im_start|>user"},
            "seps": ["<|im_end|>\n"],
            "role_content_sep": "\n",
            "role_empty_sep": "\n",
            "stop_str": ["<|im_end|>"],
            "stop_token_ids": sorted({end, *eos}),
        }
    if name == "llama-3":
        stops = [_token_id(vocab, "<|eot_id|>"), _token_id(vocab, "<|end_of_text|>")]
        return {
            **common,
            "system_template": "<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>",
            "system_message": "You are a helpful, respectful and honest assistant.",
            "system_prefix_token_ids": [_token_id(vocab, "<|begin_of_text|>")],
            "roles": {
                "user": "<|start_header_id|>user",
                "assistant": "<|start_header_id|>assistant",
                "tool": "<|start_header_id|>ipython",
            },
            "seps": ["<|eot_id|>"],
            "role_content_sep": "<|end_header_id|>\n\n",
            "role_empty_sep": "<|end_header_id|>\n\n",
            "stop_str": ["<|end_of_text|>", "<|eot_id|>"],
            "stop_token_ids": sorted({*stops, *eos}),
        }
    if name == "gemma":  # Gemma has no system turn; WebLLM puts the system message before the first one
        end = _token_id(vocab, "<end_of_turn>")
        _token_id(vocab, "<start_of_turn>")
        roles = {"user": "<start_of_turn>user", "assistant": "<start_of_turn>model", "tool": "<start_of_turn>user"}
        return _without_system_turn(common, bos, roles, "<end_of_turn>\n", "\n", ["<end_of_turn>"], {end, *eos})
    # "LM": plain text continuation, for base models without a chat format.
    return _without_system_turn(common, bos, {"user": "", "assistant": "", "tool": ""}, "", "", [], set(eos))


def _without_system_turn(
    common: dict[str, Any], bos: list[int], roles: dict[str, str], sep: str, role_sep: str,
    stop_str: list[str], stop_ids: set[int],
) -> dict[str, Any]:
    # Formats whose system message, if any, is plain text before the first turn, after BOS.
    return {
        **common,
        "system_template": "{system_message}",
        "system_message": "",
        "system_prefix_token_ids": bos[:1] or None,
        "roles": roles,
        "seps": [sep],
        "role_content_sep": role_sep,
        "role_empty_sep": role_sep,
        "stop_str": stop_str,
        "stop_token_ids": sorted(stop_ids),
    }


def pick_conv_template(requested: str, vocab: dict[str, int], fallback: str = "LM") -> str:
    """Resolve "auto" from the tokenizer's special tokens, else the family's `fallback`; check a choice is known."""
    if requested not in CONV_TEMPLATES:
        raise ChatConfigError(f"unknown chat template {requested!r}: choose one of {', '.join(CONV_TEMPLATES)}")
    if requested != "auto":
        return requested
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return "chatml"
    if "<|start_header_id|>" in vocab and "<|eot_id|>" in vocab:
        return "llama-3"
    if "<start_of_turn>" in vocab and "<end_of_turn>" in vocab:
        return "gemma"
    return fallback


def chat_config(
    config: Any,
    quantization: Quantization,
    hf_config: dict[str, Any],
    generation: dict[str, Any],
    tokenizer: dict[str, Any],
    conv_template: str = "auto",
    own_template: dict[str, Any] | None = None,
    family_template: str = "LM",
) -> dict[str, Any]:
    """The mlc-chat-config.json object for a compiled checkpoint.

    own_template is the chat format the checkpoint itself carries (a GGUF's, checked by rendering
    its chat template); "auto" takes it when there is one, else picks one from the tokenizer, else
    takes the family's default (its ARCHITECTURES row).
    """
    vocab = tokenizer_vocab(tokenizer)
    bos = _as_list(generation.get("bos_token_id", hf_config.get("bos_token_id")))
    eos = _as_list(generation.get("eos_token_id", hf_config.get("eos_token_id")))
    pad = _as_list(generation.get("pad_token_id", hf_config.get("pad_token_id")))
    if conv_template == "auto" and own_template is not None:
        template = own_template
    else:
        template = _template(pick_conv_template(conv_template, vocab, family_template), vocab, bos, eos)
    result = {
        "version": "0.1.0",
        "model_type": config.model_type,
        "quantization": quantization.name,
        "model_config": config.to_dict(),
        "vocab_size": config.vocab_size,
        "context_window_size": config.context_window_size,
        "sliding_window_size": -1,
        "prefill_chunk_size": config.prefill_chunk_size,
        "attention_sink_size": 0,
        "tensor_parallel_shards": 1,
        "pipeline_parallel_stages": 1,
        "temperature": float(generation.get("temperature", DEFAULT_TEMPERATURE)),
        "top_p": float(generation.get("top_p", DEFAULT_TOP_P)),
        "repetition_penalty": float(generation.get("repetition_penalty", DEFAULT_REPETITION_PENALTY)),
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "tokenizer_files": ["tokenizer.json"],
        "tokenizer_info": {
            "token_postproc_method": token_postproc_method(tokenizer),
            "prepend_space_in_encode": False,
            "strip_space_in_decode": False,
        },
        "conv_template": template,
        "bos_token_id": bos[0] if bos else None,
        "eos_token_id": eos[0] if len(eos) == 1 else eos,
        "pad_token_id": pad[0] if pad else 0,
    }
    # WebLLM takes bos_token_id as given when the key exists, so an unknown one is left out.
    return {key: value for key, value in result.items() if value is not None}
