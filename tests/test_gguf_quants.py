"""Every block type Hearth decodes gives bit for bit the floats of ggml's own dequantize_row_* functions."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python carries ggml, the reference decoder")

from webapp.compile.gguf import load_gguf_checkpoint  # noqa: E402
from webapp.compile.gguf.tensors import BLOCK_TYPES  # noqa: E402


def ggml() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    return lib


def ggml_dequantize(raw: np.ndarray, type_name: str, shape: tuple[int, ...]) -> np.ndarray:
    """ggml's dequantize_row_<type> over a whole tensor's blocks."""
    suffix = type_name[:-2].lower() + "_K" if type_name.endswith("_K") else type_name.lower()
    function = getattr(ggml(), f"dequantize_row_{suffix}")
    function.argtypes, function.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64], None
    raw = np.ascontiguousarray(raw)
    out = np.empty(shape, dtype=np.float32)
    function(raw.ctypes.data, out.ctypes.data, out.size)
    return out


@pytest.mark.parametrize("type_name", BLOCK_TYPES)
def test_gguf_quants_match_ggml_bit_for_bit(type_name: str) -> None:
    qtype = gguf.GGMLQuantizationType[type_name]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows, cols = 8, 512
    values = np.random.default_rng(3).standard_normal((rows, cols)).astype(np.float32)
    raw = np.zeros((rows, cols // block * size), dtype=np.uint8)
    written = ggml().ggml_quantize_chunk(int(qtype), values.ctypes.data, raw.ctypes.data, 0, rows, cols, None)
    assert written == raw.size
    np.testing.assert_array_equal(gguf.quants.dequantize(raw, qtype), ggml_dequantize(raw, type_name, (rows, cols)))


def requantize(source: Path, target: Path, ftype: str) -> Path:
    """llama.cpp's quantizer, as llama-quantize --allow-requantize runs it (its log goes to /dev/null)."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.allow_requantize = True
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    assert status == 0, f"llama_model_quantize failed ({status})"
    return target


# Requantized from the Q4_1 file. For SmolLM2's 576-wide rows llama.cpp falls back from K-quants to
# Q4_0/Q5_0/Q5_1/Q8_0 on most tensors, so these mixes cover every type in BLOCK_TYPES except Q2_K.
@pytest.mark.parametrize("ftype", ["Q4_K_M", "Q3_K_M", "Q5_K_M"])
def test_gguf_requantized_smollm2_decodes_like_ggml(smollm2: Path, tmp_path: Path, ftype: str) -> None:
    checkpoint = load_gguf_checkpoint(requantize(smollm2, tmp_path / f"{ftype}.gguf", ftype))
    seen: set[str] = set()
    for name, tensor in checkpoint.raw_tensors():
        if tensor.ggml_type in BLOCK_TYPES:
            seen.add(tensor.ggml_type)
            # raw() holds rows in Hugging Face order, so ggml's decode of it is the HF-layout tensor.
            expected = ggml_dequantize(tensor.raw(), tensor.ggml_type, tensor.shape)
            np.testing.assert_array_equal(tensor.dequantize(), expected, err_msg=name)
    assert any(t.endswith("_K") for t in seen), seen
