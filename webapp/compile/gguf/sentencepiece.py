"""A tokenizer.json for a SentencePiece ("llama") GGUF vocabulary, encoding as llama.cpp's SPM tokenizer does."""

from __future__ import annotations

from typing import Any

from webapp.compile.gguf.reader import GGUFError
from webapp.compile.gguf.vocab import BYTE, Vocabulary, added_tokens, post_processor

SPACE = "\u2581"  # "▁", SentencePiece's visible space


def sentencepiece_merges(vocab: Vocabulary) -> list[list[str]]:
    """BPE merges equivalent to llama.cpp's SPM loop.

    llama.cpp starts from single characters and repeatedly joins the adjacent pair whose concatenation is
    the highest-scoring vocabulary piece. A BPE model does the same if every split of every piece into two
    pieces is a merge, ranked by the score of the piece they make.

    One difference remains: llama.cpp can join a character that is not itself a piece into a piece, while
    `tokenizers` turns such a character into byte tokens first. Vocabularies trained by SentencePiece hold
    every character of their pieces, so this does not arise with them.
    """
    ids = {text: token_id for token_id, text in enumerate(vocab.tokens)}  # later duplicates win, like llama.cpp
    ranked = []
    for text, token_id in ids.items():
        for cut in range(1, len(text)):
            left, right = text[:cut], text[cut:]
            if left in ids and right in ids:
                # Ties (equal scores) go to the earlier piece, then the earlier split.
                ranked.append((-vocab.scores[token_id], token_id, cut, left, right))
    ranked.sort()
    return [[left, right] for *_, left, right in ranked]


def sentencepiece_tokenizer(vocab: Vocabulary) -> dict[str, Any]:
    """The tokenizer.json dictionary: SentencePiece as a byte-fallback BPE, as Hugging Face converts Llama's."""
    if not vocab.scores:
        raise GGUFError("a SentencePiece GGUF needs tokenizer.ggml.scores, and this one has none.")
    byte_fallback = any(kind == BYTE for kind in vocab.token_types)
    # llama.cpp writes a space before the text and after every special token; `tokenizers` normalizes each
    # stretch of text between added tokens separately, so a Prepend normalizer does the same.
    normalizers: list[dict[str, Any]] = [{"type": "Prepend", "prepend": SPACE}] if vocab.add_space_prefix else []
    normalizers.append({"type": "Replace", "pattern": {"String": " "}, "content": SPACE})
    decoders: list[dict[str, Any]] = [
        {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
    ]
    if vocab.add_space_prefix:
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    unk = vocab.tokens[vocab.unk_id] if vocab.unk_id is not None else None
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens(vocab),
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": None,
        "post_processor": post_processor(vocab),
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": byte_fallback, "ignore_merges": False,
            "vocab": {text: token_id for token_id, text in enumerate(vocab.tokens)},
            "merges": sentencepiece_merges(vocab),
        },
    }
