"""Hearth's own attention kernels are the ones in a compiled WebGPU library (webapp/compile/attention.py).

The greedy-token tests in the browser prove they compute the right thing; this proves they are the
kernels that ran: in the fallback library the prompt's attention (over its own tokens and over
cached pages) and the decode's (a windowed model's windowed decode too) have no workgroup barrier,
while the GPU library's, TVM's, have theirs (so the check can see them).
"""

from __future__ import annotations

from tests.compiled import compiled_models_dir, model_id

OWN = ("batch_prefill_ragged_kv_kernel", "batch_prefill_paged_kv_kernel", "batch_decode_paged_kv_kernel")
# What the runtime calls to decode "mha_sliding" layers: every layer of a model with a sliding window.
WINDOWED_DECODE = "batch_decode_paged_kv_sliding_window_kernel"


def _kernel_source(library: bytes, kernel: str) -> str:
    # The library embeds each kernel's WGSL as a NUL-terminated string.
    start = library.index(f"fn {kernel}(".encode())
    return library[start : library.index(b"\0", start)].decode()


def test_the_fallback_librarys_prompt_and_decode_attention_have_no_barriers() -> None:
    models, _ = compiled_models_dir("q4f32_1")
    library = (models / "libs" / f"{model_id('q4f32_1')}.wasm").read_bytes()
    for kernel in OWN:
        source = _kernel_source(library, kernel)
        assert "workgroupBarrier" not in source and "exp2" in source, kernel


def test_the_gpu_library_keeps_tvms_attention_staged_through_workgroup_memory() -> None:
    models, _ = compiled_models_dir("q4f32_1")
    library = (models / "libs" / f"{model_id('q4f32_1')}-gpu.wasm").read_bytes()
    for kernel in OWN:
        assert "workgroupBarrier" in _kernel_source(library, kernel), kernel


def test_a_windowed_models_decode_attention_is_hearths_in_the_fallback_library_only() -> None:
    models, _ = compiled_models_dir("q4f32_1", "mistral")
    for suffix, barriers in (("", False), ("-gpu", True)):
        library = (models / "libs" / f"{model_id('q4f32_1', 'mistral')}{suffix}.wasm").read_bytes()
        for kernel in (OWN[0], WINDOWED_DECODE):
            assert ("workgroupBarrier" in _kernel_source(library, kernel)) == barriers, (suffix, kernel)
