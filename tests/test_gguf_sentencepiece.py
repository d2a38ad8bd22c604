"""A SentencePiece ("llama") GGUF vocabulary becomes a tokenizer.json that encodes and decodes like llama.cpp.

Two layouts: Llama 2's (a space before the text, <s>/</s>) and Gemma's (no space prefix, <pad> <eos>
<bos> <unk> first, its turn markers as user-defined tokens), each read by llama.cpp as that family.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is the reference tokenizer")

from tests.test_gguf_tokenizer import CORPUS  # noqa: E402

from webapp.compile.gguf.reader import GGUFFile  # noqa: E402
from webapp.compile.gguf.tokenizer import tokenizer_json  # noqa: E402
from webapp.compile.gguf.vocab import read_vocabulary  # noqa: E402

SPACE = "\u2581"
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
GEMMA_TURN = "<start_of_turn>user\nWhat is the hearth?<end_of_turn>\n<start_of_turn>model\n"
HPARAMS = ("block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
           "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon")


def gpt2_chars_to_bytes() -> dict[str, int]:
    """Inverse of GPT-2's byte-to-character table (printable Latin-1 kept, other bytes moved past 255)."""
    kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in kept}
    moved = [b for b in range(256) if b not in kept]
    table.update({chr(256 + i): b for i, b in enumerate(moved)})
    return table


def _pieces(reader: gguf.GGUFReader) -> list[str]:
    # SmolLM2's byte-level tokens turned back into text ("▁" for spaces), in SmolLM2's order; like a trained
    # SentencePiece vocabulary, every character of a piece is a piece.
    to_byte = gpt2_chars_to_bytes()
    pieces: dict[str, None] = {}
    for text, kind in zip(reader.fields["tokenizer.ggml.tokens"].contents(),
                          reader.fields["tokenizer.ggml.token_type"].contents()):
        try:
            piece = bytes(to_byte[c] for c in text).decode("utf-8").replace(" ", SPACE)
        except (KeyError, UnicodeDecodeError):  # control tokens, and pieces that split a character
            continue
        if kind == 1 and piece:
            pieces.setdefault(piece)
    singles = {p for p in pieces if len(p) == 1}
    return [p for p in pieces if all(c in singles for c in p)]


# layout -> (general.architecture, leading tokens and their types, (bos, eos, unk) ids, add_space_prefix or None)
LAYOUTS = {
    "llama": ("llama", [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)], (1, 2, 0), None),
    "gemma": ("gemma3", [("<pad>", CONTROL), ("<eos>", CONTROL), ("<bos>", CONTROL), ("<unk>", UNKNOWN)], (2, 1, 3),
              False),
}
TURN_TOKENS = {"llama": [("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL)],
               "gemma": [("<start_of_turn>", USER_DEFINED), ("<end_of_turn>", USER_DEFINED)]}


def write_spm_vocab(source: Path, target: Path, layout: str = "llama") -> Path:
    """A tensor-less SentencePiece GGUF laid out like Llama 2's or Gemma's, with SmolLM2's tokens as its pieces.

    No SentencePiece GGUF ships on PyPI, so the pieces come from SmolLM2's (see _pieces); other characters
    fall back to the <0xNN> byte tokens.
    """
    reader = gguf.GGUFReader(source)
    arch, leading, (bos, eos, unk), space_prefix = LAYOUTS[layout]
    kept = _pieces(reader)
    head = leading + [(f"<0x{b:02X}>", BYTE) for b in range(256)] + TURN_TOKENS[layout]
    tokens = [text for text, _ in head] + kept
    types = [kind for _, kind in head] + [NORMAL] * len(kept)
    scores = [0.0] * len(head) + [-float(i) for i in range(len(kept))]
    writer = gguf.GGUFWriter(target, arch)
    for name in HPARAMS:
        field = reader.fields[f"llama.{name}"]
        writer.add_key_value(f"{arch}.{name}", field.contents(), field.types[0])
    if arch == "gemma3":  # llama.cpp requires Gemma 3's window even to read the vocabulary
        writer.add_uint32("gemma3.attention.sliding_window", 512)
    # Llama 2's add_bos_token and add_space_prefix are left out: llama.cpp turns both on for SentencePiece.
    writer.add_string("tokenizer.ggml.model", "llama")
    if space_prefix is not None:
        writer.add_bool("tokenizer.ggml.add_space_prefix", space_prefix)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_scores(scores)
    writer.add_uint32("tokenizer.ggml.bos_token_id", bos)
    writer.add_uint32("tokenizer.ggml.eos_token_id", eos)
    writer.add_uint32("tokenizer.ggml.unknown_token_id", unk)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


@pytest.fixture(scope="module", params=list(LAYOUTS))
def spm(request, smollm2: Path, tmp_path_factory) -> tuple[tokenizers.Tokenizer, llama_cpp.Llama]:
    path = write_spm_vocab(smollm2, tmp_path_factory.mktemp("spm") / "spm.gguf", request.param)
    tok = tokenizers.Tokenizer.from_str(tokenizer_json(read_vocabulary(GGUFFile(path))))
    return tok, llama_cpp.Llama(str(path), vocab_only=True, verbose=False)


def _detokenize(reference: llama_cpp.Llama, ids: list[int]) -> str:
    # llama.cpp's own llama_detokenize (llama-cpp-python's detokenize() joins pieces without its space rule).
    vocab = llama_cpp.llama_model_get_vocab(reference.model)
    buffer = ctypes.create_string_buffer(16 * len(ids) + 16)
    count = llama_cpp.llama_detokenize(vocab, (llama_cpp.llama_token * len(ids))(*ids), len(ids), buffer,
                                       len(buffer), False, True)
    return buffer.raw[:count].decode("utf-8")


@pytest.mark.parametrize("special", [True, False], ids=["parse-special", "plain-text"])
@pytest.mark.parametrize("text", [*CORPUS, GEMMA_TURN], ids=range(len(CORPUS) + 1))
def test_gguf_sentencepiece_matches_llama_cpp(spm, text: str, special: bool) -> None:
    tok, reference = spm
    tok.encode_special_tokens = not special
    try:
        for add_bos in (True, False):
            expected = reference.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
            assert tok.encode(text, add_special_tokens=add_bos).ids == expected
    finally:
        tok.encode_special_tokens = False


@pytest.mark.parametrize("text", [*CORPUS, GEMMA_TURN], ids=range(len(CORPUS) + 1))
def test_gguf_sentencepiece_decodes_like_llama_cpp(spm, text: str) -> None:
    tok, reference = spm
    ids = tok.encode(text, add_special_tokens=False).ids
    decoded = tok.decode(ids, skip_special_tokens=False)
    assert decoded == _detokenize(reference, ids)
    if "<|im" not in text and "_of_turn>" not in text:  # SentencePiece with a space prefix writes one after
        # a special token, so only plain text is sure to come back
        assert decoded == text
