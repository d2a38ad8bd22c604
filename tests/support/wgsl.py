"""The WGSL kernels in a WebGPU model library, or in the source TVM printed for one."""

from __future__ import annotations

import re


def wgsl_kernels(text: str | bytes) -> dict[str, str]:
    """Each kernel's WGSL by name: TVM writes every kernel as its own program after a
    "// Function: <name>" line (in a .wasm, inside a data segment: hence bytes are read as latin-1)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    parts = re.split(r"// Function: (\w+)\n", text)
    return {name: body for name, body in zip(parts[1::2], parts[2::2], strict=True) if "@compute" in body}
