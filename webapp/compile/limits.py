"""Check every generated WGSL kernel against the WebGPU limits WebLLM can count on.

WebLLM asks the adapter for these limits (detectGPUDevice) and SwiftShader, the software GPU,
grants no more; a kernel over them fails only when the browser creates its pipeline, so the
compiler checks them itself and names the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webapp.compile.errors import CompileError

MAX_INVOCATIONS_PER_WORKGROUP = 256
MAX_WORKGROUP_STORAGE_BYTES = 32 * 1024
MAX_STORAGE_BUFFERS_PER_STAGE = 10

_SCALAR_BYTES = {"f32": 4, "i32": 4, "u32": 4, "f16": 2, "bool": 4}
_KERNEL = re.compile(r"@compute\s+@workgroup_size\(([^)]*)\)\s*fn\s+(\w+)")
_WORKGROUP_VAR = re.compile(r"var<workgroup>\s+\w+\s*:\s*array<(vec(\d)<)?(\w+)>?,\s*(\d+)>")


class KernelLimitError(CompileError):
    """A generated kernel needs more than the WebGPU limits allow; the message names it."""


@dataclass(frozen=True)
class KernelUsage:
    """What one WGSL kernel asks of the device."""

    name: str
    invocations: int
    workgroup_bytes: int
    storage_buffers: int


def _sections(source: str) -> list[str]:
    # TVM's WebGPU module prints each kernel as a self-contained WGSL program after a marker line.
    parts = re.split(r"^// Function: .*$", source, flags=re.MULTILINE)
    return [part for part in parts if "@compute" in part]


def kernel_usage(source: str) -> list[KernelUsage]:
    """Per-kernel invocations, workgroup memory and storage buffers of a WebGPU module's WGSL."""
    usages = []
    for section in _sections(source):
        match = _KERNEL.search(section)
        if match is None:
            continue
        invocations = 1
        for size in match.group(1).split(","):
            invocations *= int(size.strip().rstrip("u") or 1)
        workgroup_bytes = sum(
            _SCALAR_BYTES.get(scalar, 4) * int(lanes or 1) * int(count)
            for _, lanes, scalar, count in _WORKGROUP_VAR.findall(section)
        )
        usages.append(KernelUsage(match.group(2), invocations, workgroup_bytes, section.count("var<storage")))
    return usages


def check_kernels(source: str) -> list[KernelUsage]:
    """Raise KernelLimitError for the first kernel over a limit; return all usages otherwise."""
    usages = kernel_usage(source)
    for usage in usages:
        problems = []
        if usage.invocations > MAX_INVOCATIONS_PER_WORKGROUP:
            problems.append(f"{usage.invocations} invocations per workgroup (limit {MAX_INVOCATIONS_PER_WORKGROUP})")
        if usage.workgroup_bytes > MAX_WORKGROUP_STORAGE_BYTES:
            problems.append(f"{usage.workgroup_bytes} bytes of workgroup memory (limit {MAX_WORKGROUP_STORAGE_BYTES})")
        if usage.storage_buffers > MAX_STORAGE_BUFFERS_PER_STAGE:
            problems.append(f"{usage.storage_buffers} storage buffers (limit {MAX_STORAGE_BUFFERS_PER_STAGE})")
        if problems:
            raise KernelLimitError(f"kernel {usage.name} needs {', '.join(problems)}")
    return usages


def webgpu_source(executable) -> str:
    """The WGSL of every kernel in a built executable (empty for CPU builds)."""
    sources = []
    pending = list(executable.mod.imports)
    while pending:
        module = pending.pop()
        if module.kind == "webgpu":
            sources.append(module.inspect_source())
        pending.extend(module.imports)
    return "\n".join(sources)
