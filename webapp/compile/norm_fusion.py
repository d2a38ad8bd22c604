"""Fuse a post-norm, the residual add after it and the next pre-norm into one kernel with two outputs.

Which residual adds cost a dispatch of their own: in a pre-norm block (Llama's family) the
residual add follows the o_proj / down_proj matmul, and FuseOps already makes it that matmul's
epilogue (fused_NT_matmul_add), so fusing it into the next norm instead would only move it.
In a block with post-norms (Gemma 2 and 3: `x + post_norm(attention(...))`) the add follows a
norm; FuseOps fuses the two (fused_rms_norm_add) but cannot also take the next pre-norm, whose
input has a second consumer (the next residual), so each pair of norms is two launches. Here
`rms_norm(residual + rms_norm(x, w1), w2)` becomes one hand-written, scheduled kernel returning
(sum, normed): one launch instead of two per pair, two pairs per block.

The kernel: "fallback" (SwiftShader) gives each row one thread, with no workgroup memory or
barrier; "gpu" gives each row a workgroup whose threads read consecutive elements and combine
their partial sums through workgroup memory. The CPU target gets plain loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator
from tvm.script import tirx as T

from webapp.compile import schedule_sets

KERNEL_NAME = "fused_rms_norm_add_rms_norm"
GPU_THREADS = 128  # per row in the "gpu" set: a workgroup, each thread summing every 128th element
FALLBACK_ROWS_PER_GROUP = 4  # rows (threads) per workgroup in the "fallback" set: SwiftShader's SIMD width


def norm_add_norm(hidden: int, dtype: str, eps1: float, eps2: float, lanes: int, rows_per_group: int) -> tirx.PrimFunc:
    """(residual + rms_norm(x, w1), rms_norm(that sum, w2)) over rows of `hidden`, accumulated in float32.

    lanes > 1: a workgroup per row, lanes threads; rows_per_group > 1: one thread per row;
    both 1: CPU loops.
    """
    per_lane = (hidden + lanes - 1) // lanes
    scope = "shared" if lanes > 1 else "local"
    inv_hidden = 1.0 / hidden

    gpu = lanes > 1 or rows_per_group > 1

    def groups(n):  # workgroups (CPU: rows), each taking rows_per_group rows
        count = (n + rows_per_group - 1) // rows_per_group
        return T.thread_binding(count, thread="blockIdx.x") if gpu else T.serial(count)

    def members():  # the rows of a workgroup, a thread each
        return T.thread_binding(T.int64(rows_per_group), thread="threadIdx.x") if rows_per_group > 1 else T.serial(1)

    def lane_loop():  # the threads sharing one row
        return T.thread_binding(lanes, thread="threadIdx.x") if lanes > 1 else T.serial(1)

    @T.prim_func(s_tir=True)
    def kernel(var_x: T.handle, var_residual: T.handle, w1: T.Buffer((hidden,), dtype),
               w2: T.Buffer((hidden,), dtype), var_sum: T.handle, var_normed: T.handle):  # fmt: skip
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True, "op_pattern": 8})
        n = T.int64()
        x = T.match_buffer(var_x, (T.int64(1), n, hidden), dtype)
        residual = T.match_buffer(var_residual, (T.int64(1), n, hidden), dtype)
        total = T.match_buffer(var_sum, (T.int64(1), n, hidden), dtype)
        normed = T.match_buffer(var_normed, (T.int64(1), n, hidden), dtype)
        with T.sblock("root"):
            for group in groups(n):
                for member in members():
                    with T.sblock("row"):
                        # Opaque block: it scopes the partial sums, so no access regions to infer.
                        T.reads()
                        T.writes()
                        first = T.sblock_alloc_buffer((lanes,), "float32", scope=scope)
                        second = T.sblock_alloc_buffer((lanes,), "float32", scope=scope)
                        # Locals become one-element buffers, and WGSL's must be 32-bit (ForceNarrowIndexToInt32).
                        t = T.Cast("int32", group * rows_per_group + member)
                        if group * rows_per_group + member < n:
                            # Each lane writes only its own slot, unconditionally: barriers go between
                            # the three loops, never inside a branch.
                            for lane in lane_loop():
                                acc = T.float32(0)
                                for i in range(per_lane):
                                    if i * lanes + lane < hidden:
                                        v = T.Cast("float32", x[0, t, i * lanes + lane])
                                        acc += v * v
                                first[lane] = acc
                            for lane in lane_loop():
                                squares = T.float32(0)
                                for c in range(lanes):
                                    squares += first[c]
                                scale = T.rsqrt(squares * T.float32(inv_hidden) + T.float32(eps1))
                                acc = T.float32(0)
                                for i in range(per_lane):
                                    k = i * lanes + lane
                                    if k < hidden:
                                        post = T.Cast(dtype, T.Cast("float32", x[0, t, k]) * scale
                                                      * T.Cast("float32", w1[k]))  # fmt: skip
                                        s = residual[0, t, k] + post
                                        total[0, t, k] = s
                                        acc += T.Cast("float32", s) * T.Cast("float32", s)
                                second[lane] = acc
                            for lane in lane_loop():
                                squares = T.float32(0)
                                for c in range(lanes):
                                    squares += second[c]
                                scale = T.rsqrt(squares * T.float32(inv_hidden) + T.float32(eps2))
                                for i in range(per_lane):
                                    k = i * lanes + lane
                                    if k < hidden:  # the lane's own writes from the loop above
                                        normed[0, t, k] = T.Cast(dtype, T.Cast("float32", total[0, t, k]) * scale
                                                                 * T.Cast("float32", w2[k]))  # fmt: skip

    return kernel.without_attr("global_symbol")  # named by the module (AttachGlobalSymbol)


@dataclass(frozen=True)
class _Match:
    """`total = residual + rms_norm(x, w1)` whose sum feeds `normed = rms_norm(total, w2)`."""

    x: relax.Expr
    residual: relax.Expr
    w1: relax.Expr
    w2: relax.Expr
    eps1: float
    eps2: float
    normed: relax.Var


def _row_norm(value: relax.Expr | None) -> bool:
    """An rms_norm over the last axis of [1, seq_len, hidden], with a [hidden] weight."""
    if not (isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.nn.rms_norm")):
        return False
    info = value.ty
    if not isinstance(info, relax.TensorType) or info.ndim != 3:
        return False
    shape = info.shape.values if isinstance(info.shape, relax.ShapeExpr) else None
    axes = [int(a) for a in value.attrs.axes]
    return bool(shape) and isinstance(shape[0], tirx.IntImm) and int(shape[0]) == 1 and \
        isinstance(shape[2], tirx.IntImm) and axes in ([-1], [2]) and info.dtype in ("float32", "float16")


def _matches(func: relax.Function) -> dict[relax.Var, _Match]:
    """The add bindings to fuse, by their variable."""
    bound: dict[relax.Var, relax.Expr] = {}
    found: dict[relax.Var, _Match] = {}
    add = tvm.ir.Op.get("relax.add")
    for block in func.body.blocks if isinstance(func.body, relax.SeqExpr) else []:
        for binding in block.bindings:
            if not isinstance(binding, relax.VarBinding):
                continue
            bound[binding.var] = binding.value
            norm = binding.value
            if not _row_norm(norm) or not isinstance(norm.args[0], relax.Var):
                continue
            total = bound.get(norm.args[0])
            if norm.args[0] in found or not (isinstance(total, relax.Call) and total.op == add):
                continue
            for post, residual in ((total.args[1], total.args[0]), (total.args[0], total.args[1])):
                inner = bound.get(post) if isinstance(post, relax.Var) else None
                same = _row_norm(inner) and tvm_ffi.structural_equal(inner.ty, norm.ty) and \
                    tvm_ffi.structural_equal(residual.ty, norm.ty)
                if same:
                    found[norm.args[0]] = _Match(inner.args[0], residual, inner.args[1], norm.args[1],
                                                 float(inner.attrs.epsilon), float(norm.attrs.epsilon), binding.var)
                    break
    return found


@mutator
class _Rewriter(PyExprMutator):  # pylint: disable=abstract-method
    """Replace each matched add with the fused kernel's first output and its norm with the second."""

    def __init__(self, mod: tvm.IRModule, lanes: int, rows_per_group: int):
        super().__init__(mod)
        self.lanes, self.rows_per_group = lanes, rows_per_group
        self.matches: dict[relax.Var, _Match] = {}
        self.fused: dict[relax.Var, relax.Var] = {}  # the second norm's variable -> the kernel's tuple
        self.kernels: dict[tuple, tvm.ir.GlobalVar] = {}

    def _kernel(self, hidden: int, dtype: str, eps1: float, eps2: float) -> tvm.ir.GlobalVar:
        key = (hidden, dtype, eps1, eps2)
        if key not in self.kernels:
            func = norm_add_norm(hidden, dtype, eps1, eps2, self.lanes, self.rows_per_group)
            self.kernels[key] = self.builder_.add_func(func, KERNEL_NAME)
        return self.kernels[key]

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        match = self.matches.get(binding.var)
        if match is not None:
            info = binding.var.ty
            kernel = self._kernel(int(info.shape.values[2]), info.dtype, match.eps1, match.eps2)
            args = [self.visit_expr(e) for e in (match.x, match.residual, match.w1, match.w2)]
            pair = self.builder_.emit(relax.call_tir(kernel, args, [info, info]))
            self.fused[match.normed] = pair
            self._bind(binding.var, pair, 0)
        elif binding.var in self.fused:
            self._bind(binding.var, self.fused[binding.var], 1)
        else:
            super().visit_var_binding_(binding)

    def _bind(self, var: relax.Var, pair: relax.Var, index: int) -> None:
        # The original variable keeps its name and kind (dataflow or not); its value is one output.
        self.builder_.emit_normalized(relax.VarBinding(var, self.builder_.normalize(relax.TupleGetItem(pair, index))))

    def rewrite(self) -> tvm.IRModule:
        for gvar, func in list(self.builder_.get().functions_items()):
            if isinstance(func, relax.Function):
                self.matches = _matches(func)
                if self.matches:
                    new = relax.analysis.remove_all_unused(self.visit_expr(func))
                    self.builder_.update_func(gvar, new)
        return self.builder_.get()


@tvm.transform.module_pass(opt_level=0, name="FuseNormAddNorm")
class FuseNormAddNorm:  # pylint: disable=too-few-public-methods
    """rms_norm(residual + rms_norm(x, w1), w2) -> one kernel returning (sum, normed); before LegalizeOps."""

    def __init__(self, target: tvm.target.Target):
        self.gpu = target.kind.name != "llvm"

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        if not self.gpu:
            return _Rewriter(mod, 1, 1).rewrite()
        if schedule_sets.current() is schedule_sets.FALLBACK:  # barrier-free: one thread per row
            return _Rewriter(mod, 1, FALLBACK_ROWS_PER_GROUP).rewrite()
        return _Rewriter(mod, GPU_THREADS, 1).rewrite()
