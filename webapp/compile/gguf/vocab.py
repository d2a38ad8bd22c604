"""The tokenizer metadata of a GGUF, and the parts of a tokenizer.json every tokenizer model shares."""

from __future__ import annotations

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
# Pre-tokenizer names for which llama.cpp adds BOS unless the GGUF says otherwise.
_BOS_BY_DEFAULT_PRE = ("llama3", "llama-v3", "llama-bpe", "falcon3")


@dataclass(frozen=True)
class Vocabulary:
    """The tokenizer part of a GGUF's metadata."""

    model: str  # tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece)...
    pre: str | None
    tokens: list[str]
    token_types: list[int]
    scores: list[float]  # SentencePiece merge priorities; empty for BPE
    merges: list[str]  # BPE merges, "left right"; empty for SentencePiece
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    pad_id: int | None
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool  # SentencePiece: a space before the text and after every special token

    def is_special(self, token_id: int) -> bool:
        """True for tokens llama.cpp only matches in text when asked to parse special tokens."""
        kind = self.token_types[token_id]
        return kind in (CONTROL, UNKNOWN) or (kind == USER_DEFINED and self.tokens[token_id] in EOG_TEXTS)


def read_vocabulary(gf: GGUFFile) -> Vocabulary:
    """Read and check the tokenizer metadata, with llama.cpp's defaults where a key is absent."""
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
    spm = model == "llama"
    scores = [float(s) for s in gf.get_list("tokenizer.ggml.scores")] if spm else []
    if spm and len(scores) < len(tokens):
        raise GGUFError(f"{gf.path}: tokenizer.ggml.scores has {len(scores)} entries for {len(tokens)} tokens.")
    pre = gf.get("tokenizer.ggml.pre")
    return Vocabulary(
        model=model,
        pre=pre,
        tokens=tokens,
        token_types=[int(t) for t in types[: len(tokens)]],
        scores=scores[: len(tokens)],
        merges=gf.get_list("tokenizer.ggml.merges") if model == "gpt2" else [],
        bos_id=token_id("bos"),
        eos_id=token_id("eos"),
        unk_id=token_id("unknown"),
        pad_id=token_id("padding"),
        add_bos=bool(gf.get("tokenizer.ggml.add_bos_token", spm or pre in _BOS_BY_DEFAULT_PRE)),
        add_eos=bool(gf.get("tokenizer.ggml.add_eos_token", False)),
        add_space_prefix=bool(gf.get("tokenizer.ggml.add_space_prefix", spm)),
    )


def added_tokens(vocab: Vocabulary) -> list[dict[str, Any]]:
    """The tokens matched in raw text before the model runs: control, unknown and user-defined ones."""
    added = []
    for token_id, text in enumerate(vocab.tokens):
        if vocab.token_types[token_id] in (CONTROL, UNKNOWN, USER_DEFINED) or vocab.is_special(token_id):
            added.append({
                "id": token_id, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                # Matched on the raw text, before any normalization or byte mapping, as llama.cpp does.
                "normalized": False, "special": vocab.is_special(token_id),
            })
    return added


def post_processor(vocab: Vocabulary) -> dict[str, Any] | None:
    """BOS/EOS as the GGUF asks: `add_special_tokens=True` in Hugging Face is llama.cpp's add_special."""
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
