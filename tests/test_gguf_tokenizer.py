"""The tokenizer.json built from a GGUF encodes and decodes exactly as llama.cpp does with the GGUF itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is the reference tokenizer")

from webapp.compile.gguf import GGUFError, load_gguf_checkpoint  # noqa: E402
from webapp.compile.gguf.reader import GGUFFile  # noqa: E402
from webapp.compile.gguf.tokenizer import tokenizer_json  # noqa: E402
from webapp.compile.gguf.vocab import read_vocabulary  # noqa: E402

CORPUS = [
    "Hello world",
    "What is the capital of France? Answer in one word.",
    "The quick brown fox jumps over the lazy dog's back; it's 3:45pm, isn't it? I'll go, you'd stay.",
    "Café déjà vu, naïve façade, Ærøskøbing, Straße, İstanbul",
    "Здравствуйте, как дела? Ελληνικά κείμενα. עברית. العربية ١٢٣",
    "你好，世界！这是一个测试。日本語のテキスト、カタカナ。한국어 텍스트",
    "emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ✨",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(10))\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }\t// C code",
    '{"key": [1, 2.5, -3e10], "nested": {"a": null}}',
    "<html><body class=\"x\">Hi &amp; bye</body></html>",
    "numbers 1 12 123 1234 12345 1234567890 3.14159 -42 1,000,000 0x1F 1e-5",
    "digits glued: abc123def 2024-11-21 v1.2.3 ½ ² ٣ 𝟙",
    "   leading spaces",
    "trailing spaces   ",
    "a  b   c    d     e",
    "\t\ttabs\tand\t\tmore\t",
    "\n\nnewlines\n\n\nhere\n",
    " \n \t \r\n mixed \r\n\r\n whitespace \t\n ",
    "\u00a0no-break\u00a0space\u2009thin\u3000ideographic\u200bzero-width",
    "",
    " ",
    "\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>glued<|endoftext|>tokens<|im_start|>",
    "almost special: <|im_start| <im_end|> <|im_end",
    "<repo_name>hearth<file_sep>main.py<filename>x",
    "UPPER lower MiXeD CamelCase snake_case kebab-case",
    "punctuation!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) ___ +++ === ~~~ ```",
    "Mr. O'Neil's cat's toys — “quoted” ‘single’ «guillemets» … ellipsis",
    "URL https://example.org/path?q=1&r=two#frag and mail a.b@example.com",
    "math: ∑_{i=1}^{n} x_i² ≤ √2 · π ≈ 3.14; ∀x ∃y: x → y",
    "Zalgo: Z̷̢̛a̶l̸g̴o̵ t̷e̸x̵t̶",
    "Hindi हिन्दी, Thai ภาษาไทย, Tamil தமிழ், Georgian ქართული",
    "long word: pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
    "x" * 300,
    "ab " * 50,
]


@pytest.fixture(scope="module")
def tokenizer_text(smollm2: Path) -> str:
    return load_gguf_checkpoint(smollm2).tokenizer_json


@pytest.fixture(scope="module")
def ours(tokenizer_text: str) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_str(tokenizer_text)


@pytest.fixture(scope="module")
def reference(smollm2: Path) -> llama_cpp.Llama:
    return llama_cpp.Llama(str(smollm2), vocab_only=True, verbose=False)


def _encode(tok: tokenizers.Tokenizer, text: str, *, special: bool, add_special: bool) -> list[int]:
    # llama.cpp's parse_special=False means control tokens in the text are plain text; in `tokenizers`
    # that is encode_special_tokens=True.
    tok.encode_special_tokens = not special
    try:
        return tok.encode(text, add_special_tokens=add_special).ids
    finally:
        tok.encode_special_tokens = False


@pytest.mark.parametrize("special", [True, False], ids=["parse-special", "plain-text"])
@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_gguf_tokenizer_matches_llama_cpp(ours, reference, text: str, special: bool) -> None:
    expected = reference.tokenize(text.encode("utf-8"), add_bos=False, special=special)
    assert _encode(ours, text, special=special, add_special=False) == expected


@pytest.mark.parametrize("text", CORPUS[:3] + CORPUS[23:24], ids=range(4))
def test_gguf_tokenizer_adds_bos_like_llama_cpp(ours, reference, text: str) -> None:
    # SmolLM2's GGUF says add_bos_token = false, so both must add nothing.
    expected = reference.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    assert _encode(ours, text, special=True, add_special=True) == expected


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_gguf_tokenizer_decodes_back_to_the_text(ours, reference, text: str) -> None:
    ids = _encode(ours, text, special=True, add_special=False)
    assert ours.decode(ids, skip_special_tokens=False) == text
    assert reference.detokenize(ids, special=True).decode("utf-8") == text


@pytest.fixture(scope="module")
def smollm2_metadata(smollm2: Path) -> list[tuple[str, object, list]]:
    reader = gguf.GGUFReader(smollm2)
    return [(key, field.contents(), field.types) for key, field in reader.fields.items()
            if not key.startswith("GGUF.") and key != "general.architecture"]


def _relabelled_vocab(metadata, target: Path, pre: str, drop: tuple[str, ...] = (),
                      tokens: dict[int, tuple[str, int]] | None = None) -> Path:
    """A tensor-less GGUF: SmolLM2's metadata under another pre-tokenizer name (llama.cpp loads it vocab-only).

    `tokens` replaces some tokens' text and type: {id: (text, gguf token type)}.
    """
    writer = gguf.GGUFWriter(target, "llama")
    for key, value, types in metadata:
        if key in drop:
            continue
        if tokens and key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
            value = list(value)
            for token_id, (text, kind) in tokens.items():
                value[token_id] = text if key == "tokenizer.ggml.tokens" else kind
        sub_type = types[-1] if types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, pre if key == "tokenizer.ggml.pre" else value, types[0], sub_type=sub_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


# Pre-tokenizer families other than SmolLM2's, checked on SmolLM2's vocabulary under another name.
# For llama-bpe the add_bos_token key is dropped: llama.cpp then adds BOS by default for that family.
OTHER_PRE = {"gpt-2": (), "llama-bpe": ("tokenizer.ggml.add_bos_token",), "qwen2": (), "starcoder": (),
             "gpt-4o": ()}  # Phi-4-mini's


@pytest.fixture(scope="module", params=list(OTHER_PRE))
def relabelled(request, smollm2_metadata, tmp_path_factory) -> tuple[tokenizers.Tokenizer, llama_cpp.Llama]:
    folder = tmp_path_factory.mktemp("vocab")
    path = _relabelled_vocab(smollm2_metadata, folder / "vocab.gguf", request.param, OTHER_PRE[request.param])
    tok = tokenizers.Tokenizer.from_str(tokenizer_json(read_vocabulary(GGUFFile(path))))
    return tok, llama_cpp.Llama(str(path), vocab_only=True, verbose=False)


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_gguf_other_pre_tokenizers_match_llama_cpp(relabelled, text: str) -> None:
    tok, reference = relabelled
    for add_bos in (False, True):
        expected = reference.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        assert _encode(tok, text, special=True, add_special=add_bos) == expected


USER_DEFINED = {15: ("<tool>", 4), 16: (" hello wörld", 4)}  # llama.cpp stores these as plain text


@pytest.fixture(scope="module")
def user_defined(smollm2_metadata, tmp_path_factory) -> tuple[tokenizers.Tokenizer, llama_cpp.Llama]:
    path = _relabelled_vocab(smollm2_metadata, tmp_path_factory.mktemp("user") / "user.gguf", "smollm",
                             tokens=USER_DEFINED)
    tok = tokenizers.Tokenizer.from_str(tokenizer_json(read_vocabulary(GGUFFile(path))))
    return tok, llama_cpp.Llama(str(path), vocab_only=True, verbose=False)


@pytest.mark.parametrize("text", ["say hello wörld now", "a<tool>b hello wörld<|im_end|>", "hello world"])
def test_gguf_user_defined_tokens_match_llama_cpp(user_defined, text: str) -> None:
    tok, reference = user_defined
    for special in (True, False):  # user-defined tokens are matched either way
        expected = reference.tokenize(text.encode("utf-8"), add_bos=False, special=special)
        assert _encode(tok, text, special=special, add_special=False) == expected
    ids = _encode(tok, text, special=True, add_special=False)
    assert tok.decode(ids, skip_special_tokens=False) == text
    assert reference.detokenize(ids, special=True).decode("utf-8") == text


def test_gguf_tokenizer_json_declares_smollm2_specials(ours, tokenizer_text: str) -> None:
    data = json.loads(tokenizer_text)
    specials = {t["content"]: t["id"] for t in data["added_tokens"] if t["special"]}
    assert specials["<|endoftext|>"] == 0 and specials["<|im_start|>"] == 1 and specials["<|im_end|>"] == 2
    assert len(specials) == 17
    assert len(data["model"]["merges"]) == 48900
    assert ours.get_vocab_size() == 49152


def test_gguf_unknown_pre_tokenizer_is_refused(smollm2_metadata, tmp_path: Path) -> None:
    path = _relabelled_vocab(smollm2_metadata, tmp_path / "odd.gguf", "no-such-pre")
    with pytest.raises(GGUFError, match="pre-tokenizer 'no-such-pre'.*Hugging Face checkpoint"):
        tokenizer_json(read_vocabulary(GGUFFile(path)))
