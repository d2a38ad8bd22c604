"""Build a Hugging Face tokenizer.json from a GGUF vocabulary that encodes exactly as llama.cpp does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webapp.compile.gguf.reader import GGUFError
from webapp.compile.gguf.sentencepiece import sentencepiece_tokenizer
from webapp.compile.gguf.vocab import Vocabulary, added_tokens, post_processor

# The pre-tokenizer regexes of llama.cpp's llama-vocab.cpp, as Hugging Face pre-tokenizers.
# GPT-2's own split is ByteLevel(use_regex=True); llama.cpp implements the same regex by hand.
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_LEVEL_NO_SPLIT = {**_BYTE_LEVEL, "use_regex": False}
_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2 differs from Llama 3 only in splitting every digit on its own.
_QWEN2_REGEX = _LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")
# GPT-4o's (o200k, Phi-4-mini's): words split where case changes, contractions kept on the word.
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
_GPT4O_REGEX = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTION}|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTION}"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _split_then_bytes(regex: str) -> dict[str, Any]:
    split = {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}
    return {"type": "Sequence", "pretokenizers": [split, _BYTE_LEVEL_NO_SPLIT]}


@dataclass(frozen=True)
class PreTokenizer:
    """How one family of `tokenizer.ggml.pre` values splits text, and its BPE flags in llama.cpp."""

    hf: dict[str, Any]
    ignore_merges: bool = False  # a whole word already in the vocabulary is one token, merges or not


_GPT2 = PreTokenizer(_BYTE_LEVEL)
# Each digit alone (llama.cpp's first regex "\p{N}"), then GPT-2's split.
_DIGITS_GPT2 = PreTokenizer(
    {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]}
)
PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    **dict.fromkeys(("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"),
                    _DIGITS_GPT2),
    **dict.fromkeys(("gpt-2", "phi-2", "mpt", "olmo", "jais"), _GPT2),
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3"),
                    PreTokenizer(_split_then_bytes(_LLAMA3_REGEX), ignore_merges=True)),
    **dict.fromkeys(("dbrx", "smaug-bpe"), PreTokenizer(_split_then_bytes(_LLAMA3_REGEX))),
    **dict.fromkeys(("qwen2", "stablelm2"), PreTokenizer(_split_then_bytes(_QWEN2_REGEX))),
    "gpt-4o": PreTokenizer(_split_then_bytes(_GPT4O_REGEX)),
}


def tokenizer_json(vocab: Vocabulary, source: str = "the GGUF file") -> str:
    """The tokenizer.json text (Hugging Face `tokenizers` format) for a byte-level BPE or SentencePiece vocabulary."""
    if vocab.model == "llama":
        return json.dumps(sentencepiece_tokenizer(vocab), ensure_ascii=False)
    if vocab.model != "gpt2":
        raise GGUFError(
            f"{source} uses the tokenizer model {vocab.model!r}; Hearth converts byte-level BPE (\"gpt2\") and "
            f"SentencePiece (\"llama\") GGUF tokenizers. Compile the Hugging Face checkpoint instead."
        )
    pre = PRE_TOKENIZERS.get(vocab.pre or "")
    if pre is None:
        raise GGUFError(
            f"{source} has the pre-tokenizer {vocab.pre!r}, which Hearth does not reproduce (it knows "
            f"{', '.join(sorted(PRE_TOKENIZERS))}). Compile the Hugging Face checkpoint instead."
        )
    return json.dumps(_byte_level_tokenizer(vocab, pre), ensure_ascii=False)


def _byte_level_tokenizer(vocab: Vocabulary, pre: PreTokenizer) -> dict[str, Any]:
    # Added tokens keep their GGUF text as the vocabulary key: llama.cpp's converter stores user-defined
    # tokens as plain text (not byte-level text), and `tokenizers` finds an added token's id by its text.
    # Later duplicates win, as in llama.cpp's token_to_id map.
    model_vocab = {text: token_id for token_id, text in enumerate(vocab.tokens)}
    merges = []
    for merge in vocab.merges:
        # llama.cpp splits at the first space after the first character.
        cut = merge.find(" ", 1)
        if cut < 0:
            raise GGUFError(f"BPE merge {merge!r} in tokenizer.ggml.merges has no space between its two parts.")
        left, right = merge[:cut], merge[cut + 1:]
        if not {left, right, left + right} <= model_vocab.keys():
            raise GGUFError(
                f"BPE merge {merge!r} in tokenizer.ggml.merges uses or makes a token not in the vocabulary.")
        merges.append([left, right])
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens(vocab),
        "normalizer": None,
        "pre_tokenizer": pre.hf,
        "post_processor": post_processor(vocab),
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": pre.ignore_merges, "vocab": model_vocab, "merges": merges,
        },
    }
