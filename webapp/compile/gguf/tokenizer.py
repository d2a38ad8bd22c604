"""Build a Hugging Face tokenizer.json from a GGUF vocabulary that encodes exactly as llama.cpp does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webapp.compile.gguf.reader import GGUFError, GGUFFile

# GGUF token types (gguf.TokenType); llama.cpp matches CONTROL, USER_DEFINED and UNKNOWN tokens in text.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Token texts llama.cpp treats as end-of-generation (and as control tokens) whatever their stored type.
EOG_TEXTS = (
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<|end_of_text|>", "<EOT>",
)

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
}


@dataclass(frozen=True)
class Vocabulary:
    """The tokenizer part of a GGUF's metadata."""

    model: str  # tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece)...
    pre: str | None
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    pad_id: int | None
    add_bos: bool
    add_eos: bool

    def is_special(self, token_id: int) -> bool:
        """True for tokens llama.cpp only matches in text when asked to parse special tokens."""
        kind = self.token_types[token_id]
        return kind in (CONTROL, UNKNOWN) or (kind == USER_DEFINED and self.tokens[token_id] in EOG_TEXTS)


def read_vocabulary(gf: GGUFFile) -> Vocabulary:
    """Read and check the tokenizer metadata."""
    tokens = gf.get_list("tokenizer.ggml.tokens")
    types = gf.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    if len(types) < len(tokens):
        raise GGUFError(f"{gf.path}: tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens.")

    def token_id(name: str) -> int | None:
        value = gf.get(f"tokenizer.ggml.{name}_token_id")
        if value is None:
            return None
        if not 0 <= int(value) < len(tokens):
            raise GGUFError(f"{gf.path}: tokenizer.ggml.{name}_token_id {value} is outside the vocabulary.")
        return int(value)

    model = gf.get_str("tokenizer.ggml.model")
    return Vocabulary(
        model=model,
        pre=gf.get("tokenizer.ggml.pre"),
        tokens=tokens,
        token_types=[int(t) for t in types[: len(tokens)]],
        merges=gf.get_list("tokenizer.ggml.merges") if model == "gpt2" else [],
        bos_id=token_id("bos"),
        eos_id=token_id("eos"),
        unk_id=token_id("unknown"),
        pad_id=token_id("padding"),
        # llama.cpp's defaults for BPE vocabularies; the llama3 family turns add_bos on.
        add_bos=bool(gf.get("tokenizer.ggml.add_bos_token", gf.get("tokenizer.ggml.pre") in
                            ("llama3", "llama-v3", "llama-bpe", "falcon3"))),
        add_eos=bool(gf.get("tokenizer.ggml.add_eos_token", False)),
    )


def tokenizer_json(vocab: Vocabulary, source: str = "the GGUF file") -> str:
    """The tokenizer.json text (Hugging Face `tokenizers` format) for a byte-level BPE vocabulary."""
    if vocab.model != "gpt2":
        kind = "SentencePiece" if vocab.model == "llama" else repr(vocab.model)
        raise GGUFError(
            f"{source} uses a {kind} tokenizer; Hearth converts byte-level BPE (\"gpt2\") GGUF tokenizers only. "
            f"Compile the Hugging Face checkpoint, which carries its own tokenizer.json."
        )
    pre = PRE_TOKENIZERS.get(vocab.pre or "")
    if pre is None:
        raise GGUFError(
            f"{source} has the pre-tokenizer {vocab.pre!r}, which Hearth does not reproduce (it knows "
            f"{', '.join(sorted(PRE_TOKENIZERS))}). Compile the Hugging Face checkpoint instead."
        )
    return json.dumps(_tokenizer_dict(vocab, pre), ensure_ascii=False)


def _tokenizer_dict(vocab: Vocabulary, pre: PreTokenizer) -> dict[str, Any]:
    # Added tokens keep their GGUF text as the vocabulary key: llama.cpp's converter stores user-defined
    # tokens as plain text (not byte-level text), and `tokenizers` finds an added token's id by its text.
    model_vocab: dict[str, int] = {}
    added = []
    for token_id, text in enumerate(vocab.tokens):
        kind = vocab.token_types[token_id]
        if kind in (CONTROL, UNKNOWN, USER_DEFINED) or vocab.is_special(token_id):
            added.append({
                "id": token_id, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                # Matched on the raw text, before byte-level mapping, as llama.cpp does.
                "normalized": False, "special": vocab.is_special(token_id),
            })
        # Later duplicates win, as in llama.cpp's token_to_id map.
        model_vocab[text] = token_id
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
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre.hf,
        "post_processor": _post_processor(vocab),
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": pre.ignore_merges, "vocab": model_vocab, "merges": merges,
        },
    }


def _post_processor(vocab: Vocabulary) -> dict[str, Any] | None:
    # `add_special_tokens=True` in Hugging Face is llama.cpp's add_special: BOS/EOS as the GGUF asks.
    single: list[dict[str, Any]] = []
    special: dict[str, Any] = {}
    for wanted, token_id in ((vocab.add_bos, vocab.bos_id), (vocab.add_eos, vocab.eos_id)):
        if wanted and token_id is None:
            raise GGUFError("the GGUF asks to add a BOS/EOS token but does not say which token that is.")
    if vocab.add_bos:
        bos = vocab.tokens[vocab.bos_id]  # type: ignore[index]
        single.append({"SpecialToken": {"id": bos, "type_id": 0}})
        special[bos] = {"id": bos, "ids": [vocab.bos_id], "tokens": [bos]}
    single.append({"Sequence": {"id": "A", "type_id": 0}})
    if vocab.add_eos:
        eos = vocab.tokens[vocab.eos_id]  # type: ignore[index]
        single.append({"SpecialToken": {"id": eos, "type_id": 0}})
        special[eos] = {"id": eos, "ids": [vocab.eos_id], "tokens": [eos]}
    if not special:
        return None
    pair = single + [item if "SpecialToken" in item else {"Sequence": {"id": "B", "type_id": 1}}
                     for item in single]
    return {"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special}
