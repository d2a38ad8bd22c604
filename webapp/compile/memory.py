"""Record each function's planned workspace in _metadata, once memory planning has sized it."""

from __future__ import annotations

import json
from typing import Any

import tvm
from tvm import relax


def _storage_bytes(func: relax.Function) -> int:
    # After StaticPlanBlockMemory, a function's temporaries live in alloc_storage calls whose
    # sizes are constants when every symbolic dimension has an upper bound.
    alloc_storage = tvm.ir.Op.get("relax.memory.alloc_storage")
    total = 0

    def visit(expr: relax.Expr) -> None:
        nonlocal total
        if isinstance(expr, relax.Call) and expr.op == alloc_storage:
            size = expr.args[0]
            if isinstance(size, relax.ShapeExpr) and all(isinstance(v, tvm.tirx.IntImm) for v in size.values):
                total += int(size.values[0])

    relax.analysis.post_order_visit(func, visit)
    return total


@tvm.transform.module_pass(opt_level=0, name="AttachMemoryUsage")
class AttachMemoryUsage:  # pylint: disable=too-few-public-methods
    """Add {"memory_usage": {function: bytes}} to the metadata and rewrite _metadata to return it."""

    def __init__(self, metadata: dict[str, Any]):
        self.metadata = metadata

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        usage = {
            gv.name_hint: _storage_bytes(func)
            for gv, func in mod.functions_items()
            if isinstance(func, relax.Function) and gv.name_hint != "_metadata"
        }
        self.metadata["memory_usage"] = {name: size for name, size in sorted(usage.items()) if size}
        body = tvm.ir.StringImm(json.dumps(self.metadata, sort_keys=True))
        mod = mod.clone()  # a pass must not change the module it was given
        old = mod["_metadata"]
        mod["_metadata"] = relax.Function([], body, ret_ty=None, attrs=old.attrs)
        return mod
