"""The two kernel schedule sets a WebGPU model library is compiled with, and which one a build is using.

"fallback" is Hearth's barrier-free set: schedules.RowGEMV / RowGEMM for the matmuls and
attention.py's kernels for the KV cache, for SwiftShader and other software adapters, where the
invocations of a workgroup are fibers and every barrier switches all of them.

"gpu" is what mlc-llm's own libraries use on real GPUs: dlight's rules (matmuls tiled through
workgroup memory, GEMVs whose threads read consecutive words and combine partial sums across the
workgroup) and TVM's attention kernels, which stage keys and values through workgroup memory.

WebLLM loads one library, with one kernel per function, so a model ships one library per set
(`library_path`) and the page picks by the adapter (static/js/library-choice.js). The fallback
library keeps the model's plain `<id>.wasm` name: it runs on every adapter, so a reader that knows
one library (a custom model's URL, WebLLM pointed at the host) gets the one that always works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# TVM is imported only by the rules: the server names libraries (library_path) without loading it.


def _dlight_rules() -> tuple[Any, ...]:
    from tvm.s_tir import dlight as dl

    from webapp.compile.row_reduction import RowReduction

    # mlc-llm's order: the first rule that accepts a kernel schedules it. Hearth's RowReduction
    # takes the reductions dlight's two decline (a max), which its Fallback ran on one thread.
    return (dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.LowBatchGEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
            RowReduction(), dl.gpu.Fallback())


def _gpu_rules() -> tuple[Any, ...]:
    from webapp.compile.mlp_fusion import GatedGEMV

    # Hearth's gated MLP kernel (mlp_fusion.py) is no dlight layout: its workgroup-per-output schedule.
    return (GatedGEMV(barrier_free=False), *_dlight_rules())


def _barrier_free_rules() -> tuple[Any, ...]:
    from webapp.compile.mlp_fusion import GatedGEMV
    from webapp.compile.schedules import RowGEMM, RowGEMV

    # Hearth's matmuls first; dlight's rules for the layouts and kernels they decline (norms, softmax...).
    return (GatedGEMV(barrier_free=True), RowGEMV(), RowGEMM(), *_dlight_rules())


@dataclass(frozen=True)
class ScheduleSet:
    """How one library's kernels are scheduled."""

    name: str
    own_attention: bool  # Hearth's barrier-free attention kernels in place of TVM's
    rules: Callable[[], tuple[Any, ...]]  # dlight ScheduleRules, first match wins
    library_suffix: str  # appended to the fallback library's file stem

    def schedule(self) -> Any:
        """dlight's pass applying this set's rules to every kernel not scheduled yet."""
        from tvm.s_tir import dlight as dl

        return dl.ApplyDefaultSchedule(*self.rules())


FALLBACK = ScheduleSet("fallback", own_attention=True, rules=_barrier_free_rules, library_suffix="")
GPU = ScheduleSet("gpu", own_attention=False, rules=_gpu_rules, library_suffix="-gpu")
SCHEDULE_SETS = {schedule_set.name: schedule_set for schedule_set in (FALLBACK, GPU)}

_current: ContextVar[ScheduleSet] = ContextVar("schedule_set", default=FALLBACK)


def current() -> ScheduleSet:
    """The set of the library being built (models ask it whether to swap in Hearth's attention)."""
    return _current.get()


@contextmanager
def building(chosen: ScheduleSet) -> Iterator[ScheduleSet]:
    """Build with this set: model definitions and the pipeline read it through `current()`."""
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def library_path(fallback_library: Path, chosen: ScheduleSet) -> Path:
    """Where a set's library goes, beside the fallback one: "x.wasm" -> "x-gpu.wasm" for the GPU set."""
    return fallback_library.with_name(f"{fallback_library.stem}{chosen.library_suffix}.wasm")
