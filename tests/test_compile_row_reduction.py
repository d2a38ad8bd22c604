"""A row's max (the sampling softmax's, over the whole vocabulary) is split across a workgroup
(webapp/compile/row_reduction.py), not left to dlight's Fallback, which ran it on one thread per row
and stored the running maximum to memory after every element.

Structural checks on the WGSL; that the scheduled max is right is the browser parity tests' job
(test_compile_browser: greedy tokens come from softmax_with_temperature's maxima, in both libraries).
"""

from __future__ import annotations

import re

import pytest

from tests.compiled import compiled_models_dir, model_id
from tests.support.wgsl import wgsl_kernels

pytestmark = pytest.mark.compiler


def _row_function(reduce):
    """An IRModule with one function reducing a (batch, 1000) tensor over its last axis, legalized."""
    from tvm import relax, tirx

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((tirx.Var("batch_size", "int64"), 1000), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            output = bb.emit_output(reduce(x))
        bb.emit_func_output(output)
    return relax.transform.LegalizeOps()(bb.get())


def _prim_funcs(mod):
    from tvm import tirx

    return [func for func in mod.functions.values() if isinstance(func, tirx.PrimFunc)]


@pytest.mark.parametrize("suffix", ["", "-gpu"])
def test_the_softmax_max_in_both_libraries_is_one_workgroup_per_row(suffix: str) -> None:
    models, _ = compiled_models_dir("q4f32_1")
    kernels = wgsl_kernels((models / "libs" / f"{model_id('q4f32_1')}{suffix}.wasm").read_bytes())
    source = kernels["max_kernel"]
    assert "workgroupBarrier" in source and "var<workgroup>" in source
    # The row's result is stored once, after the workgroup combined its threads' partial maxima.
    output = re.search(r"var<storage, read_write> (\w+) ", source).group(1)
    assert source.count(f"{output}[") == 1


@pytest.mark.parametrize("reducer", ["max", "min", "sum"])
def test_the_rule_takes_a_reduction_over_the_last_axis_by_any_reducer(reducer: str) -> None:
    from tvm import relax

    from webapp.compile.row_reduction import RowReduction, THREADS
    from webapp.compile.target import webgpu_tvm_target

    mod = _row_function(lambda x: getattr(relax.op, reducer)(x, axis=-1, keepdims=True))
    (func,) = _prim_funcs(mod)
    schedule = RowReduction().apply(func, webgpu_tvm_target(), False)
    assert schedule is not None
    text = schedule.mod.script()
    assert 'thread="blockIdx.x"' in text and f'T.thread_binding(T.int64({THREADS}), thread="threadIdx.x")' in text


def test_the_rule_declines_a_kernel_that_is_more_than_one_reduction() -> None:
    from tvm import relax

    from webapp.compile.row_reduction import RowReduction
    from webapp.compile.target import webgpu_tvm_target

    mod = _row_function(lambda x: relax.op.nn.softmax(x, axis=-1))
    (func,) = _prim_funcs(mod)  # max, exp, sum and divide: one kernel of several blocks
    assert RowReduction().apply(func, webgpu_tvm_target(), False) is None
