"""The MLC conversation template, stop tokens and sampling defaults that match a GGUF's chat template."""

from __future__ import annotations

import re
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from webapp.compile.gguf.reader import GGUFFile, shortest_float32
from webapp.compile.gguf.vocab import EOG_TEXTS, Vocabulary

SYSTEM = "{system_message}"
# Probe conversations; the marker texts cannot occur in a template.
_USER1, _USER2, _ASSISTANT, _SYSTEM = "\x01user one\x01", "\x01user two\x01", "\x01reply\x01", "\x01system\x01"
_PROBES: tuple[list[dict[str, str]], ...] = (
    [{"role": "user", "content": _USER1}],
    [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER1}],
    [{"role": "user", "content": _USER1}, {"role": "assistant", "content": _ASSISTANT},
     {"role": "user", "content": _USER2}],
)
_CHATML_SYSTEM = re.compile(r"<\|im_start\|>system\n(.*)<\|im_end\|>\n", re.DOTALL)

# GGUF general.sampling.* keys and the mlc-chat-config.json fields WebLLM reads for them.
_SAMPLING_KEYS = {"temp": "temperature", "top_p": "top_p", "penalty_repeat": "repetition_penalty"}


def chatml(system_message: str, stop_token_ids: list[int]) -> dict[str, Any]:
    """mlc-llm's "chatml" conversation template, as mlc-chat-config.json inlines it, with this system message."""
    return {
        "name": "chatml",
        "system_template": f"<|im_start|>system\n{SYSTEM}<|im_end|>\n",
        "system_message": system_message,
        "roles": {"user": "<|im_start|>user", "assistant": "<|im_start|>assistant"},
        "role_templates": {"user": "{user_message}", "assistant": "{assistant_message}", "tool": "{tool_message}"},
        "messages": [],
        "seps": ["<|im_end|>\n"],
        "role_content_sep": "\n",
        "role_empty_sep": "\n",
        "stop_str": ["<|im_end|>"],
        "stop_token_ids": stop_token_ids,
        "function_string": "",
        "use_function_calling": False,
    }


def render_conversation(conv: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """The prompt WebLLM builds from a conversation template (Conversation.getPromptArray), as one string."""
    system_message = conv["system_message"]
    if messages and messages[0]["role"] == "system":
        system_message, messages = messages[0]["content"], messages[1:]
    parts = []
    if system_message or conv.get("render_empty_system_message") is not False:
        parts.append(conv["system_template"].replace(SYSTEM, system_message))
    seps = conv["seps"]
    for index, message in enumerate(messages):
        parts.append(conv["roles"][message["role"]] + conv["role_content_sep"] + message["content"]
                     + seps[index % len(seps)])
    parts.append(conv["roles"]["assistant"] + conv["role_empty_sep"])
    return "".join(parts)


def render_chat_template(template: str, messages: list[dict[str, str]], vocab: Vocabulary) -> str:
    """Render a Hugging Face chat template (Jinja, sandboxed: the text comes from a downloaded file)."""

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception

    def text(token_id: int | None) -> str:
        return vocab.tokens[token_id] if token_id is not None else ""

    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True,
        bos_token=text(vocab.bos_id), eos_token=text(vocab.eos_id),
    )


def stop_token_ids(vocab: Vocabulary, gf: GGUFFile) -> list[int]:
    """Tokens that end a reply: EOS, the GGUF's EOT/EOM ids, and end-of-turn tokens llama.cpp knows by text."""
    ids: list[int] = []
    for token_id in (vocab.eos_id, gf.get("tokenizer.ggml.eot_token_id"), gf.get("tokenizer.ggml.eom_token_id")):
        if token_id is not None and int(token_id) not in ids:
            ids.append(int(token_id))
    for token_id, text in enumerate(vocab.tokens):
        if text in EOG_TEXTS and vocab.is_special(token_id) and token_id not in ids:
            ids.append(token_id)
    return ids


def conversation_template(gf: GGUFFile, vocab: Vocabulary) -> tuple[dict[str, Any] | None, str]:
    """An inline MLC conversation template proven to render like the GGUF's chat template, and why/why not.

    WebLLM 0.2.86 reads `conv_template` in mlc-chat-config.json as an object (it spreads it into its
    Conversation), so the template is returned in full, not as a name. Returns (None, reason) when the
    chat template is missing or not one Hearth recognises; the caller then asks for --conv-template.
    """
    template = gf.get("tokenizer.chat_template")
    if not template:
        return None, "the GGUF has no tokenizer.chat_template"
    try:
        rendered = [render_chat_template(template, probe, vocab) for probe in _PROBES]
    except Exception as exc:  # noqa: BLE001 - any failure of a downloaded template only means "not recognised"
        return None, f"its chat template does not render ({type(exc).__name__}: {exc})"
    if "<|im_start|>" not in template:
        return None, "its chat template is not ChatML, the only family Hearth maps so far"
    mismatch = "its chat template looks like ChatML but renders differently from mlc-llm's chatml"
    user_at = rendered[0].find(f"<|im_start|>user\n{_USER1}")
    if user_at < 0:
        return None, mismatch
    before_user = rendered[0][:user_at]
    match = _CHATML_SYSTEM.fullmatch(before_user)
    if before_user and not match:
        return None, f"its chat template opens with {before_user[:60]!r}, which ChatML does not"
    conv = chatml(match.group(1) if match else "", stop_token_ids(vocab, gf))
    if not match:
        # No default system prompt: render nothing until the user gives one.
        conv["render_empty_system_message"] = False
    for probe, expected in zip(_PROBES, rendered):
        if render_conversation(conv, probe) != expected:
            return None, mismatch
    return conv, "ChatML, checked by rendering the GGUF's chat template"


def generation_defaults(gf: GGUFFile) -> dict[str, float]:
    """Sampling defaults the GGUF carries (general.sampling.*), under mlc-chat-config.json names."""
    defaults = {}
    for key, field in _SAMPLING_KEYS.items():
        value = gf.get(f"general.sampling.{key}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            defaults[field] = shortest_float32(value)
    return defaults
