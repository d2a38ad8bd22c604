"""Fuse each weight's dequantize kernel into the matmul that consumes it.

FuseOps never merges an injective producer into a matmul, so a quantized layer would launch two
kernels per call and write its whole weight back to memory in float between them. After FuseOps
and FuseTIR have formed the matmul kernels (NT_matmul, fused_NT_matmul_add, ...), this groups
`matmul(x, dequantize(codes, scales), ...)` by pattern and fuses it into one kernel, which
dlight then schedules as a GEMV/GEMM that reads the 4-bit codes directly.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl.pattern import GlobalVarPattern, TuplePattern, is_op, wildcard

# Extra inputs a fused matmul may take after x and the weight (bias, residual...).
MAX_EPILOGUE_INPUTS = 3


def _callee(ctx: relax.transform.PatternCheckContext, name: str) -> str:
    call = ctx.annotated_expr[name]
    return call.args[0].name_hint if isinstance(call, relax.Call) and isinstance(call.args[0], relax.GlobalVar) else ""


def _pattern(epilogue_inputs: int):
    weight = is_op("relax.call_tir")(GlobalVarPattern(), TuplePattern([wildcard(), wildcard()]), add_constraint=False)
    matmul = is_op("relax.call_tir")(
        GlobalVarPattern(),
        TuplePattern([wildcard(), weight] + [wildcard() for _ in range(epilogue_inputs)]),
        add_constraint=False,
    )

    def check(ctx: relax.transform.PatternCheckContext) -> bool:
        producer, consumer = _callee(ctx, "weight"), _callee(ctx, "matmul")
        return producer.startswith("dequantize") and "matmul" in consumer

    return ("dequantize_matmul", matmul, {"weight": weight, "matmul": matmul}, check)


@tvm.transform.module_pass(opt_level=0, name="FuseDequantizeMatmul")
class FuseDequantizeMatmul:  # pylint: disable=too-few-public-methods
    """Group dequantize + matmul(+epilogue) call_tirs into one function, then fuse it into one PrimFunc."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        passes = [relax.transform.FuseOpsByPattern([_pattern(n)]) for n in range(MAX_EPILOGUE_INPUTS + 1)]
        return tvm.transform.Sequential([*passes, relax.transform.FuseTIR()])(mod)
