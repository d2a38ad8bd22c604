"""Write a small but structurally valid MLC model directory, as a model host sees one.

The weights are random bytes: hosting, the custom-model Check button and the model picker care
about files, sizes and headers, not about whether the numbers make a good model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from webapp.compile.link import TVMJS_REQUIRED_EXPORTS

WASM_MAGIC = b"\0asm\x01\0\0\0"


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _uleb(len(payload)) + payload


# A real model library is megabytes of compiled model; the fake one is this size, as before it was a
# wasm-looking file, so the page's download sizes stay what the browser tests expect.
FAKE_LIBRARY_BYTES = 3008
# A function body WebAssembly rejects (0xFF is no opcode): the library's header and export section are
# a model library's, which is all hosting and `hearth validate` read, yet a browser cannot compile it.
UNCOMPILABLE_BODY = b"\x02\x00\xff"
VALID_BODY = b"\x02\x00\x0b"  # no locals, end


def tiny_wasm(exports: frozenset[str] = TVMJS_REQUIRED_EXPORTS, body: bytes = VALID_BODY, size: int = 0) -> bytes:
    """A WebAssembly module exporting these names (memory, and a function per other name).

    size pads the module to that many bytes with a custom section (which WebAssembly ignores).
    """
    functions = sorted(name for name in exports if name != "memory")
    names = [(name, 0, index) for index, name in enumerate(functions)] + [("memory", 2, 0)] * ("memory" in exports)
    module = WASM_MAGIC + b"".join((
        _section(1, b"\x01\x60\x00\x00"),  # one type: () -> ()
        _section(3, _uleb(len(functions)) + b"\x00" * len(functions)),
        _section(5, b"\x01\x00\x01"),  # one memory, at least one page
        _section(7, _uleb(len(names)) + b"".join(_uleb(len(n)) + n.encode() + bytes([kind]) + _uleb(i)
                                                   for n, kind, i in names)),
        _section(10, _uleb(len(functions)) + body * len(functions)),
    ))
    for length_bytes in (1, 2, 3):  # the section's length is a LEB128 of 1 to 3 bytes here
        padding = size - len(module) - 1 - length_bytes - len(b"\x03pad")
        custom = _section(0, b"\x03pad" + bytes(max(padding, 0)))
        if padding >= 0 and len(module) + len(custom) == size:
            return module + custom
    return module


def fake_library() -> bytes:
    """The fake model's library: passes `hearth validate`, fails to compile in a browser."""
    return tiny_wasm(body=UNCOMPILABLE_BODY, size=FAKE_LIBRARY_BYTES)


def write_fake_model(
    models_dir: Path,
    model_id: str = "Tiny-Llama-q4f32_1",
    quantization: str = "q4f32_1",
    shard_sizes: tuple[int, ...] = (40_000, 25_000),
    display_name: str | None = None,
    context_window_size: int = 2048,
) -> Path:
    """Create models_dir/<model_id>/ and models_dir/libs/<model_id>.wasm; return the model dir."""
    model_dir = models_dir / model_id
    model_dir.mkdir(parents=True)
    records = []
    for index, size in enumerate(shard_sizes):
        name = f"params_shard_{index}.bin"
        (model_dir / name).write_bytes(os.urandom(size))
        records.append({
            "dataPath": name,
            "format": "raw-shard",
            "nbytes": size,
            "records": [{"name": f"layer{index}.weight", "shape": [size // 4], "dtype": "float32",
                         "format": "f32-to-bf16", "nbytes": size, "byteOffset": 0}],
        })
    (model_dir / "tensor-cache.json").write_text(json.dumps({"metadata": {"ParamSize": len(records)},
                                                             "records": records}))
    config = {
        "model_type": "llama",
        "quantization": quantization,
        "context_window_size": context_window_size,
        "prefill_chunk_size": 128,
        "vocab_size": 256,
        "conv_template": {"name": "chatml", "system_template": "<|im_start|>system\n{system_message}<|im_end|>\n"},
        "tokenizer_files": ["tokenizer.json"],
    }
    (model_dir / "mlc-chat-config.json").write_text(json.dumps(config))
    (model_dir / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    if display_name is not None:
        (model_dir / "hearth-model.json").write_text(json.dumps({"display_name": display_name}))
    libs = models_dir / "libs"
    libs.mkdir(exist_ok=True)
    (libs / f"{model_id}.wasm").write_bytes(fake_library())
    return model_dir
