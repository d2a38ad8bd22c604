"""Reading GGUF files: config and names, exact block decoding, the Q/K row order, errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")

from webapp.compile.gguf import GGUFError, load_gguf_checkpoint, write_hf_checkpoint  # noqa: E402
from webapp.compile.gguf.tensors import unpermute_rows  # noqa: E402

RNG = np.random.default_rng(7)
HIDDEN, HEADS, KV_HEADS, FFN, LAYERS = 64, 4, 2, 96, 2
HEAD_DIM = HIDDEN // HEADS


def llama_cpp_permute(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """What llama.cpp's convert_hf_to_gguf.py does to q_proj/k_proj rows (written from its description)."""
    head_dim = rows.shape[0] // n_heads
    # HF pairs row i with row i + head_dim/2 within a head; GGUF puts each pair on adjacent rows.
    order = [h * head_dim + j * (head_dim // 2) + i
             for h in range(n_heads) for i in range(head_dim // 2) for j in range(2)]
    return rows[order]


# Blocks of 32 values, written byte by byte as ggml lays them out, with the values they stand for.
def q4_1_blocks(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    scale = RNG.uniform(0.01, 0.1, (rows, cols // 32)).astype(np.float16)
    minimum = RNG.uniform(-1, 0, (rows, cols // 32)).astype(np.float16)
    q = RNG.integers(0, 16, (rows, cols // 32, 32), dtype=np.uint8)
    packed = q[..., :16] | (q[..., 16:] << 4)  # byte j: element j low, element j + 16 high
    raw = np.concatenate([scale[..., None].view(np.uint8), minimum[..., None].view(np.uint8), packed], axis=-1)
    values = q * scale[..., None].astype(np.float32) + minimum[..., None].astype(np.float32)
    return raw.reshape(rows, -1), values.reshape(rows, cols)


def q4_0_blocks(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    scale = RNG.uniform(0.01, 0.1, (rows, cols // 32)).astype(np.float16)
    q = RNG.integers(0, 16, (rows, cols // 32, 32), dtype=np.uint8)
    raw = np.concatenate([scale[..., None].view(np.uint8), q[..., :16] | (q[..., 16:] << 4)], axis=-1)
    values = (q.astype(np.float32) - 8) * scale[..., None].astype(np.float32)
    return raw.reshape(rows, -1), values.reshape(rows, cols)


def q8_0_blocks(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    scale = RNG.uniform(0.001, 0.01, (rows, cols // 32)).astype(np.float16)
    q = RNG.integers(-128, 128, (rows, cols // 32, 32), dtype=np.int8)
    raw = np.concatenate([scale[..., None].view(np.uint8), q.view(np.uint8)], axis=-1)
    return raw.reshape(rows, -1), (q * scale[..., None].astype(np.float32)).reshape(rows, cols)


def bf16_values(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    bits = (RNG.standard_normal((rows, cols)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return bits.view(np.uint8).reshape(rows, -1), (bits.astype(np.uint32) << 16).view(np.float32)


ENCODERS = {"Q4_1": q4_1_blocks, "Q4_0": q4_0_blocks, "Q8_0": q8_0_blocks, "BF16": bf16_values}


def write_tiny_llama(path: Path, arch: str = "llama", drop: str | None = None,
                     types: dict[str, str] | None = None, extra: dict[str, object] | None = None,
                     ) -> dict[str, np.ndarray]:
    """A two-layer Llama GGUF with every tensor type Hearth decodes; returns each tensor's values (GGUF layout)."""
    types = {"attn_q": "Q4_1", "attn_k": "Q4_0", "attn_v": "F16", "attn_output": "BF16",
             "ffn_gate": "Q8_0", "ffn_up": "Q4_1", "ffn_down": "F32", **(types or {})}
    tokens = [chr(c) for c in range(33, 127)] + ["Ġ", "Ġa", "<|im_start|>", "<|im_end|>"]
    writer = gguf.GGUFWriter(path, arch)
    meta = {
        f"{arch}.block_count": LAYERS, f"{arch}.context_length": 128, f"{arch}.embedding_length": HIDDEN,
        f"{arch}.feed_forward_length": FFN, f"{arch}.attention.head_count": HEADS,
        f"{arch}.attention.head_count_kv": KV_HEADS,
    }
    for key, value in meta.items():
        if key != drop:
            writer.add_uint32(key, value)
    if drop != f"{arch}.attention.layer_norm_rms_epsilon":
        writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_string("tokenizer.ggml.pre", "smollm")
    if drop != "tokenizer.ggml.tokens":
        writer.add_token_list(tokens)
    writer.add_token_types([1] * (len(tokens) - 2) + [3, 3])
    writer.add_token_merges(["Ġ a"])
    writer.add_uint32("tokenizer.ggml.eos_token_id", len(tokens) - 1)
    for key, value in (extra or {}).items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_float32(key, value)
    values: dict[str, np.ndarray] = {}

    def add(name: str, shape: tuple[int, ...], kind: str) -> None:
        qtype = getattr(gguf.GGMLQuantizationType, kind)
        if kind in ENCODERS:
            raw, values[name] = ENCODERS[kind](*shape)
            writer.add_tensor(name, raw, raw_dtype=qtype)
        elif kind not in ("F16", "F32"):  # a type Hearth refuses: any bytes will do
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = RNG.integers(0, 256, (shape[0], shape[1] // block * size), dtype=np.uint8)
            writer.add_tensor(name, raw, raw_dtype=qtype)
        else:
            values[name] = RNG.standard_normal(shape).astype(np.float16 if kind == "F16" else np.float32)
            writer.add_tensor(name, values[name])

    add("token_embd.weight", (len(tokens), HIDDEN), "Q8_0")
    add("output_norm.weight", (HIDDEN,), "F32")
    for i in range(LAYERS):
        shapes = {"attn_q": (HIDDEN, HIDDEN), "attn_k": (KV_HEADS * HEAD_DIM, HIDDEN),
                  "attn_v": (KV_HEADS * HEAD_DIM, HIDDEN), "attn_output": (HIDDEN, HIDDEN),
                  "ffn_gate": (FFN, HIDDEN), "ffn_up": (FFN, HIDDEN), "ffn_down": (HIDDEN, FFN)}
        for part, shape in shapes.items():
            add(f"blk.{i}.{part}.weight", shape, types[part])
        add(f"blk.{i}.attn_norm.weight", (HIDDEN,), "F32")
        add(f"blk.{i}.ffn_norm.weight", (HIDDEN,), "F32")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return values


def test_gguf_tiny_llama_decodes_every_type_exactly(tmp_path: Path) -> None:
    expected = write_tiny_llama(tmp_path / "tiny.gguf")
    checkpoint = load_gguf_checkpoint(tmp_path / "tiny.gguf")
    raw = dict(checkpoint.raw_tensors())
    for name, values in checkpoint.tensors():
        gguf_name = raw[name].gguf_name
        if ".q_proj." in name:
            values = llama_cpp_permute(values, HEADS)
        elif ".k_proj." in name:
            values = llama_cpp_permute(values, KV_HEADS)
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, expected[gguf_name].astype(np.float32), err_msg=name)


def test_gguf_q4_blocks_give_the_stored_nibbles_scales_and_minimums(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny.gguf")
    raw = dict(load_gguf_checkpoint(tmp_path / "tiny.gguf").raw_tensors())
    up = raw["model.layers.0.mlp.up_proj.weight"]  # Q4_1, not permuted
    blocks = up.q4_blocks()
    assert (up.ggml_type, blocks.q.shape, blocks.scale.shape) == ("Q4_1", (FFN, HIDDEN), (FFN, HIDDEN // 32))
    assert blocks.q.max() <= 15 and blocks.scale.dtype == np.float16
    np.testing.assert_array_equal(blocks.dequantize(), up.dequantize())
    k_proj = raw["model.layers.1.self_attn.k_proj.weight"]  # Q4_0, rows put back in HF order
    np.testing.assert_array_equal(k_proj.q4_blocks().dequantize(), k_proj.dequantize())
    with pytest.raises(GGUFError, match="not a Q4_0/Q4_1"):
        raw["model.layers.0.mlp.gate_proj.weight"].q4_blocks()


def test_gguf_unpermute_undoes_llama_cpp_permutation() -> None:
    hf = RNG.standard_normal((6 * 8, 5)).astype(np.float32)
    stored = llama_cpp_permute(hf, 6)
    assert not np.array_equal(stored, hf)
    np.testing.assert_array_equal(unpermute_rows(stored, 6), hf)
    np.testing.assert_array_equal(unpermute_rows(llama_cpp_permute(hf[:, 0], 6), 6), hf[:, 0])  # biases


@pytest.fixture(scope="module")
def smollm2_checkpoint(smollm2: Path):
    return load_gguf_checkpoint(smollm2)


def test_gguf_smollm2_config_and_names(smollm2_checkpoint) -> None:
    checkpoint = smollm2_checkpoint
    config = checkpoint.config
    assert {k: config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                   "num_key_value_heads", "num_hidden_layers", "head_dim", "vocab_size",
                                   "max_position_embeddings", "bos_token_id", "eos_token_id")} == {
        "hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9, "num_key_value_heads": 3,
        "num_hidden_layers": 30, "head_dim": 64, "vocab_size": 49152, "max_position_embeddings": 8192,
        "bos_token_id": 1, "eos_token_id": 2}
    assert config["rms_norm_eps"] == 1e-5 and config["rope_theta"] == 100000.0
    assert config["tie_word_embeddings"] is True and config["model_type"] == "llama"
    raw = dict(checkpoint.raw_tensors())
    assert len(raw) == 272 and "lm_head.weight" not in raw
    assert raw["model.embed_tokens.weight"].ggml_type == "Q8_0"
    assert raw["model.layers.29.self_attn.q_proj.weight"].gguf_name == "blk.29.attn_q.weight"
    assert raw["model.layers.3.mlp.down_proj.weight"].shape == (576, 1536)
    assert sum(t.ggml_type == "Q4_1" for t in raw.values()) == 210


def test_gguf_smollm2_chat_settings(smollm2_checkpoint) -> None:
    checkpoint = smollm2_checkpoint
    conv = checkpoint.conv_template
    assert conv is not None and conv["name"] == "chatml"
    assert conv["system_message"] == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert checkpoint.stop_token_ids == [2, 0]  # <|im_end|> (EOS), <|endoftext|>
    assert conv["stop_token_ids"] == [2, 0] and conv["stop_str"] == ["<|im_end|>"]
    assert checkpoint.generation_defaults == {}  # this GGUF carries no general.sampling.* keys
    assert checkpoint.tokenizer_info["token_postproc_method"] == "byte_level"


CHATML_NO_DEFAULT_SYSTEM = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'"
    " + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA2_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content']"
    " + ' [/INST]' }}{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
)


def test_gguf_chatml_without_default_system_prompt(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "t.gguf", extra={"tokenizer.chat_template": CHATML_NO_DEFAULT_SYSTEM,
                                                 "general.sampling.temp": 0.6, "general.sampling.top_p": 0.9})
    checkpoint = load_gguf_checkpoint(tmp_path / "t.gguf")
    conv = checkpoint.conv_template
    assert conv is not None and conv["system_message"] == "" and conv["render_empty_system_message"] is False
    assert checkpoint.generation_defaults == {"temperature": 0.6, "top_p": 0.9}


@pytest.mark.parametrize("template, reason", [
    (None, "no tokenizer.chat_template"),
    (LLAMA2_TEMPLATE, "not ChatML"),
    ("{{ raise_exception('no') }}", "does not render"),
    # ChatML markers but a different layout: no newline after the role.
    (CHATML_NO_DEFAULT_SYSTEM.replace("'\\n' + message['content']", "message['content']"), "renders differently"),
])
def test_gguf_unrecognised_chat_templates_give_no_conv_template(tmp_path: Path, template, reason: str) -> None:
    extra = {"tokenizer.chat_template": template} if template else {}
    write_tiny_llama(tmp_path / "t.gguf", extra=extra)
    checkpoint = load_gguf_checkpoint(tmp_path / "t.gguf")
    assert checkpoint.conv_template is None
    assert reason in checkpoint.conv_template_note


def test_gguf_write_hf_checkpoint_round_trips(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny.gguf")
    checkpoint = load_gguf_checkpoint(tmp_path / "tiny.gguf")
    out = write_hf_checkpoint(checkpoint, tmp_path / "hf")
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    saved = load_file(out / "model.safetensors")
    decoded = dict(checkpoint.tensors())
    assert saved.keys() == decoded.keys()
    for name, values in decoded.items():
        np.testing.assert_array_equal(saved[name], values, err_msg=name)
    assert json.loads((out / "config.json").read_text())["num_key_value_heads"] == KV_HEADS
    # ids as write_tiny_llama lays the vocabulary out: "!" is 0, "<|im_start|>" 96.
    assert Tokenizer.from_file(str(out / "tokenizer.json")).encode("<|im_start|>a").ids == [96, 64]
    assert json.loads((out / "tokenizer_config.json").read_text())["eos_token"] == "<|im_end|>"


def _truncations(path: Path, tmp_path: Path) -> list[Path]:
    data = path.read_bytes()
    cuts = [0, 3, 10, 200, len(data) // 2, len(data) - 1]
    result = []
    for cut in cuts:
        target = tmp_path / f"cut{cut}.gguf"
        target.write_bytes(data[:cut])
        result.append(target)
    return result


def test_gguf_truncated_files_are_refused(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny.gguf")
    for path in _truncations(tmp_path / "tiny.gguf", tmp_path):
        with pytest.raises(GGUFError, match=r"truncated|cut short|not a GGUF") as info:
            load_gguf_checkpoint(path)
        assert str(path) in str(info.value)


def test_gguf_truncated_smollm2_is_refused(smollm2: Path, tmp_path: Path) -> None:
    target = tmp_path / "half.gguf"
    with smollm2.open("rb") as source:
        target.write_bytes(source.read(50_000_000))
    with pytest.raises(GGUFError, match="cut short|truncated"):
        load_gguf_checkpoint(target)


@pytest.mark.parametrize("content, message", [
    (b"", "not a GGUF file"),
    (b"PK\x03\x04 a zip file, not a model" * 4, "not a GGUF file"),
    (b'{"architectures": ["LlamaForCausalLM"]}', "not a GGUF file"),
    (b"GGUF\x03\x00", "truncated"),
])
def test_gguf_non_gguf_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError, match=message):
        load_gguf_checkpoint(path)


def test_gguf_missing_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="does not exist"):
        load_gguf_checkpoint(tmp_path / "nope.gguf")
    with pytest.raises(GGUFError, match="is a directory"):
        load_gguf_checkpoint(tmp_path)


def test_gguf_unsupported_architecture_names_the_mlc_llm_backend(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "falcon.gguf", arch="falcon")
    names = r"architectures llama, qwen2, qwen3, phi3, gemma2, gemma3;"
    with pytest.raises(GGUFError, match=rf"'falcon' model.*{names}.*--backend mlc-llm"):
        load_gguf_checkpoint(tmp_path / "falcon.gguf")


def test_gguf_mixture_of_experts_is_refused(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "moe.gguf", extra={"llama.expert_count": 8})
    with pytest.raises(GGUFError, match=r"mixture-of-experts.*--backend mlc-llm"):
        load_gguf_checkpoint(tmp_path / "moe.gguf")


@pytest.mark.parametrize("key", ["llama.embedding_length", "llama.attention.head_count", "tokenizer.ggml.tokens",
                                 "llama.attention.layer_norm_rms_epsilon"])
def test_gguf_missing_metadata_is_named(tmp_path: Path, key: str) -> None:
    write_tiny_llama(tmp_path / "tiny.gguf", drop=key)
    with pytest.raises(GGUFError, match=f"lacks the required metadata key '{key}'"):
        load_gguf_checkpoint(tmp_path / "tiny.gguf")


def test_gguf_unsupported_tensor_type_is_named(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "iq.gguf", types={"ffn_up": "IQ4_NL"})
    with pytest.raises(GGUFError, match="blk.0.ffn_up.weight is stored as IQ4_NL.*Pick a GGUF quantized with"):
        load_gguf_checkpoint(tmp_path / "iq.gguf")


def test_gemma_gguf_becomes_the_hugging_face_checkpoint_it_came_from(tmp_path: Path) -> None:
    # llama.cpp's converter stores Gemma's norms as 1 + w; as a Hugging Face checkpoint (what the mlc-llm
    # backend compiles from a GGUF) they must be w again, and the config must read back the same.
    from safetensors.numpy import load_file

    from tests.tinycheckpoint import FAMILIES, write_tiny_checkpoint
    from tests.tinygguf import write_tiny_gguf
    from webapp.compile.architectures import config_from_hf

    directory = write_tiny_checkpoint(tmp_path / "checkpoint", **FAMILIES["gemma3"])
    out = write_hf_checkpoint(load_gguf_checkpoint(write_tiny_gguf(directory, tmp_path / "g.gguf")), tmp_path / "hf")
    original, saved = load_file(directory / "model.safetensors"), load_file(out / "model.safetensors")
    assert saved.keys() == original.keys()
    for name, values in original.items():
        np.testing.assert_array_equal(saved[name], values.astype(np.float32), err_msg=name)
    assert config_from_hf(json.loads((out / "config.json").read_text())) == config_from_hf(
        json.loads((directory / "config.json").read_text()))
