"""Compute a decode step's SwiGLU, silu(gate) * up, inside the gate/up projection's kernel.

A Llama-family MLP computes gate and up with one fused projection [.., 2 * intermediate], then
splits it and takes silu(gate) * up. FuseOps makes the split, silu and multiply one kernel of their
own (fused_split_silu_multiply) but cannot join it to the matmul: its output element j reads two
of the matmul's outputs, j and j + intermediate, which no matmul epilogue does. So each layer of a
decoded token launched two kernels and wrote the projection's 2 * intermediate floats to memory
between them. Here `silu(gate) * up` of a one-token projection becomes one kernel whose output j
takes the dot products of weight rows j and j + intermediate with the input and writes their
SwiGLU: one launch per layer instead of two. The weight is still an input, so FuseDequantizeMatmul
fuses its dequantize in as it does for any matmul (q4f32_1, q4f32_gguf...; q0f32 reads it as is).
Prompts keep the unfused pair: their projection is a GEMM whose schedules (RowGEMM, dlight's
Matmul) reuse each weight value across tokens, and a prompt is one chunk per layer, not one per token.

GatedGEMV schedules the kernel: "fallback" (SwiftShader) gives each output one thread that walks
both rows, with no workgroup memory or barrier; "gpu" gives each output a workgroup whose threads
read consecutive elements of both rows and combine their partial sums across the workgroup. The
CPU target gets plain loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import relax, s_tir, te, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.target import Target

# "matmul" in the name: FuseDequantizeMatmul fuses a dequantized weight into it like any matmul.
KERNEL_NAME = "NT_matmul_silu_multiply"
# The kernel's blocks, by which GatedGEMV knows it (FuseTIR renames the function, not its blocks).
GATE, UP, OUTPUT = "gated_gate", "gated_up", "gated_silu_multiply"
FALLBACK_THREADS = 64  # outputs (threads) per workgroup in the "fallback" set, as schedules.ROW_THREADS
GPU_THREADS = 128  # threads sharing one output's two dot products in the "gpu" set
UNROLL = 8  # reduction steps unrolled per iteration: one packed word of 4-bit codes


def gated_matmul(hidden: int, intermediate: int, dtype: str, weight_dtype: str) -> tirx.PrimFunc:
    """silu(x @ w[:I].T) * (x @ w[I:].T) for one token x [1, 1, hidden] and w [2I, hidden]."""
    one, rows, hidden, intermediate = (tirx.IntImm("int64", n) for n in (1, 2 * intermediate, hidden, intermediate))
    # int64 extents, as the model's buffers have: FuseTIR maps the dequantize's output onto `w`.
    x = te.placeholder((one, one, hidden), dtype, name="x")
    w = te.placeholder((rows, hidden), weight_dtype, name="w")

    def dot(offset: tirx.PrimExpr, name: str) -> te.Tensor:
        k = te.reduce_axis((tirx.IntImm("int64", 0), hidden), name="k")
        return te.compute(
            (one, one, intermediate), lambda b, t, j: te.sum(x[b, t, k] * w[j + offset, k].astype(dtype), axis=k), name=name
        )

    gate, up = dot(tirx.IntImm("int64", 0), GATE), dot(intermediate, UP)
    # silu as relax legalizes it, x * sigmoid(x): the same rounding as the unfused kernel.
    out = te.compute(gate.shape, lambda b, t, j: gate[b, t, j] * te.sigmoid(gate[b, t, j]) * up[b, t, j], name=OUTPUT)
    func = te.create_prim_func([x, w, out]).with_attr("op_pattern", 8)  # opaque: FuseOps leaves it alone
    return func.without_attr("global_symbol")  # named by the module (AttachGlobalSymbol)


@dataclass(frozen=True)
class _Match:
    """`silu(split(NT_matmul(x, w))[0]) * split(...)[1]`, bound to `out`."""

    x: relax.Expr
    weight: relax.Expr


def _tensor(expr: relax.Expr) -> relax.TensorType | None:
    info = expr.ty
    return info if isinstance(info, relax.TensorType) and isinstance(info.shape, relax.ShapeExpr) else None


def _static(info: relax.TensorType) -> list[int] | None:
    dims = info.shape.values
    return [int(d) for d in dims] if all(isinstance(d, tirx.IntImm) for d in dims) else None


def _projection(value: relax.Expr | None) -> _Match | None:
    """An NT matmul of one token by a [2I, hidden] weight, output [1, 1, 2I]."""
    call_tir = tvm.ir.Op.get("relax.call_tir")
    if not (isinstance(value, relax.Call) and value.op == call_tir and value.args[0].name_hint.startswith("NT_matmul")):
        return None
    args = value.args[1].fields
    if len(args) != 2:
        return None
    x, weight = (_tensor(a) for a in args)
    out = _tensor(value)
    if x is None or weight is None or out is None:
        return None
    shapes = [_static(info) for info in (x, weight, out)]
    if any(s is None for s in shapes):
        return None
    (x_shape, w_shape, out_shape) = shapes
    one_token = x_shape[:2] == [1, 1] and len(x_shape) == 3 and len(w_shape) == 2
    fits = one_token and w_shape[1] == x_shape[2] and out_shape == [1, 1, w_shape[0]] and w_shape[0] % 2 == 0
    return _Match(args[0], args[1]) if fits and x.dtype == out.dtype else None


def _matches(func: relax.Function) -> dict[relax.Var, _Match]:
    """The multiply bindings to replace, by their variable."""
    bound: dict[relax.Var, relax.Expr] = {}
    found: dict[relax.Var, _Match] = {}
    split, silu, multiply = (tvm.ir.Op.get(f"relax.{name}") for name in ("split", "nn.silu", "multiply"))

    def halves(var: relax.Expr) -> tuple[relax.Expr, int] | None:  # (the split's input, which half)
        item = bound.get(var) if isinstance(var, relax.Var) else None
        if not isinstance(item, relax.TupleGetItem) or not isinstance(item.tuple_value, relax.Var):
            return None
        parts = bound.get(item.tuple_value)
        if not (isinstance(parts, relax.Call) and parts.op == split):
            return None
        sections = parts.attrs.indices_or_sections
        two = isinstance(sections, tirx.IntImm | int) and int(sections) == 2 and int(parts.attrs.axis) in (-1, 2)
        return (parts.args[0], item.index) if two else None

    for block in func.body.blocks if isinstance(func.body, relax.SeqExpr) else []:
        for binding in block.bindings:
            if not isinstance(binding, relax.VarBinding):
                continue
            bound[binding.var] = binding.value
            value = binding.value
            if not (isinstance(value, relax.Call) and value.op == multiply):
                continue
            for activated, other in ((value.args[0], value.args[1]), (value.args[1], value.args[0])):
                act = bound.get(activated) if isinstance(activated, relax.Var) else None
                if not (isinstance(act, relax.Call) and act.op == silu):
                    continue
                gate, up = halves(act.args[0]), halves(other)
                if gate and up and gate[0].same_as(up[0]) and (gate[1], up[1]) == (0, 1):
                    match = _projection(bound.get(gate[0]) if isinstance(gate[0], relax.Var) else None)
                    if match is not None:
                        found[binding.var] = match
                        break
    return found


@mutator
class _Rewriter(PyExprMutator):  # pylint: disable=abstract-method
    """Replace each matched multiply with one call of the gated kernel."""

    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.matches: dict[relax.Var, _Match] = {}
        self.kernels: dict[tuple, tvm.ir.GlobalVar] = {}

    def _kernel(self, hidden: int, intermediate: int, dtype: str, weight_dtype: str) -> tvm.ir.GlobalVar:
        key = (hidden, intermediate, dtype, weight_dtype)
        if key not in self.kernels:
            self.kernels[key] = self.builder_.add_func(gated_matmul(*key), KERNEL_NAME)
        return self.kernels[key]

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        match = self.matches.get(binding.var)
        if match is None:
            super().visit_var_binding_(binding)
            return
        out, weight = binding.var.ty, match.weight.ty
        kernel = self._kernel(int(weight.shape.values[1]), int(out.shape.values[2]), out.dtype, weight.dtype)
        call = relax.call_tir(kernel, [self.visit_expr(match.x), self.visit_expr(match.weight)], out)
        # The multiply's variable keeps its name and kind (dataflow or not); the projection and split go unused.
        self.builder_.emit_normalized(relax.VarBinding(binding.var, self.builder_.normalize(call)))

    def rewrite(self) -> tvm.IRModule:
        for gvar, func in list(self.builder_.get().functions_items()):
            if isinstance(func, relax.Function):
                self.matches = _matches(func)
                if self.matches:
                    self.builder_.update_func(gvar, relax.analysis.remove_all_unused(self.visit_expr(func)))
        return self.builder_.get()


@tvm.transform.module_pass(opt_level=0, name="FuseGatedMLP")
class FuseGatedMLP:  # pylint: disable=too-few-public-methods
    """A one-token NT_matmul's split + silu + multiply -> one gated kernel; after FuseTransposeMatmul."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return _Rewriter(mod).rewrite()


class GatedGEMV(GPUScheduleRule):
    """Schedules the gated kernel (its weight possibly dequantized inline): a thread or a workgroup per output."""

    def __init__(self, barrier_free: bool):
        self.barrier_free = barrier_free

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        names = [sch.get(block).name_hint for block in sch.get_child_blocks(sch.get_sblock("root"))]
        if names[-3:] != [GATE, UP, OUTPUT]:
            return None
        gate, up, out = (sch.get_sblock(name) for name in (GATE, UP, OUTPUT))
        # The dequantize's blocks (weight last) are computed inline where the dot products read them.
        for name in reversed(names[:-3]):
            sch.compute_inline(sch.get_sblock(name))
        outputs = sch.fuse(*sch.get_loops(out))
        if self.barrier_free:
            groups, thread = sch.split(outputs, factors=[None, FALLBACK_THREADS])
            sch.bind(groups, "blockIdx.x")
            sch.bind(thread, "threadIdx.x")
        else:
            sch.bind(outputs, "blockIdx.x")
            # One thread writes the output; `unit` splits into [1, GPU_THREADS] under a predicate.
            _, writer = sch.split(sch.add_unit_loop(out), factors=[None, GPU_THREADS])
            sch.bind(writer, "threadIdx.x")
        for dot in (gate, up):
            sch.compute_at(dot, thread if self.barrier_free else outputs, preserve_unit_loops=True)
            sch.set_scope(dot, 0, "local")
            reduction = sch.get_loops(dot)[-1]
            if self.barrier_free:
                # The running sum lives in a register; a packed word's values are unrolled so it loads once.
                steps, inner = sch.split(reduction, factors=[None, UNROLL])
                sch.decompose_reduction(dot, steps)
                sch.unroll(inner)
            else:
                # Consecutive threads read consecutive elements; TVM combines their sums (an all-reduce).
                _, lane = sch.split(reduction, factors=[None, GPU_THREADS])
                sch.bind(lane, "threadIdx.x")
        return sch
