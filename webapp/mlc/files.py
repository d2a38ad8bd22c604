"""Names and limits of the files in an MLC model directory, as WebLLM 0.2.86 fetches them."""

import re
from typing import Any

CHAT_CONFIG = "mlc-chat-config.json"
TENSOR_CACHE = "tensor-cache.json"
# Conversions older than mlc-llm #3326 wrote this name; WebLLM >= 0.2.80 never asks for it.
LEGACY_TENSOR_CACHE = "ndarray-cache.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
# Hearth's own sidecar: display name and which model libraries the directory goes with.
HEARTH_META = "hearth-model.json"
# hearth-model.json's key for each schedule set's library (webapp.compile.schedule_sets): "model_lib"
# runs on every adapter; "gpu_model_lib", when there is one, is the same model scheduled for real GPUs.
LIBRARY_KEYS = {"fallback": "model_lib", "gpu": "gpu_model_lib"}
# Hearth's per-model manifest: every file's size, hashes and the commit sha derived from them.
MANIFEST = "hearth-manifest.json"

SHARD_PATTERN = re.compile(r"^params_shard_\d+\.bin$")
# Model ids become URL path segments and directory names: keep them plain.
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A repository id as on the Hugging Face Hub: a model id, optionally under one organisation.
REPO_ID_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LIB_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,191}\.wasm$")

# Quantization names whose weights or activations are float16 need the WebGPU feature shader-f16.
F16_FEATURE = "shader-f16"


def library_meta(meta: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """hearth-model.json's fields with the library file of each schedule set ({"fallback": "x.wasm", ...})."""
    return {**meta, **{LIBRARY_KEYS[schedule]: name for schedule, name in names.items()}}


def needs_shader_f16(quantization: str) -> bool:
    """True when a quantization (e.g. q4f16_1, q0f16) computes in float16."""
    return "f16" in quantization
