"""Accurate float32 sin/cos for WebGPU kernels, replacing WGSL's built-ins when TIR is lowered.

WGSL lets sin/cos be approximate (absolute error 2^-11), and SwiftShader's are off by up to
1.9e-4, where float32 could be within 6e-8. Rotary embeddings feed these straight into every
query and key, so the error reaches the logits (about 3e-4 of their range, enough to flip
near-tied greedy choices). Here sin/cos are computed as the Cephes library does: reduce the
angle by pi/2 in three exact steps (Cody-Waite), then a short polynomial on [-pi/4, pi/4].
Only basic arithmetic, which WGSL rounds correctly.
"""

from __future__ import annotations

import tvm
from tvm import tirx

# pi/2 split so k * part is exact for |k| < 2^16 (angles up to ~1e5 radians).
_HALF_PI_PARTS = (1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8)
_TWO_OVER_PI = 0.636619772367581343
# Cephes sinf/cosf minimax coefficients on [-pi/4, pi/4].
_SIN = (-1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4)
_COS = (4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5)
# Registered above TVM's own WebGPU rule (level 10), so this one is used.
LOWERING_LEVEL = 100
_registered = False


def _f32(value: float) -> tirx.PrimExpr:
    return tirx.const(value, "float32")


def _sin_cos_of_quadrant(x: tirx.PrimExpr, quadrant_shift: int) -> tirx.PrimExpr:
    # x = k * pi/2 + r with |r| <= pi/4; then sin(x) is +-sin(r) or +-cos(r) by k mod 4.
    k = tirx.round(x * _f32(_TWO_OVER_PI))
    r = x
    for part in _HALF_PI_PARTS:
        r = r - k * _f32(part)
    r2 = r * r
    sin_r = r + r * r2 * (_f32(_SIN[0]) + r2 * (_f32(_SIN[1]) + r2 * _f32(_SIN[2])))
    cos_r = _f32(1.0) - _f32(0.5) * r2 + r2 * r2 * (_f32(_COS[0]) + r2 * (_f32(_COS[1]) + r2 * _f32(_COS[2])))
    quadrant = tirx.bitwise_and(k.astype("int32") + quadrant_shift, 3)
    value = tirx.Select(tirx.bitwise_and(quadrant, 1) == 0, sin_r, cos_r)
    return tirx.Select(quadrant >= 2, -value, value)


def _lower(op_name: str, quadrant_shift: int):
    builtin = tvm.ir.Op.get(op_name).get_attr("webgpu.FLowerIntrinsic")

    def lower(call: tirx.Call) -> tirx.PrimExpr:
        (x,) = call.args
        if str(call.ty.dtype) != "float32":  # other widths keep WGSL's built-in
            return builtin(call)
        return _sin_cos_of_quadrant(x, quadrant_shift)

    return lower


def use_precise_sin_cos() -> None:
    """Make every later WebGPU build in this process compute sin/cos accurately (idempotent)."""
    global _registered
    if _registered:
        return
    sin, cos = _lower("tirx.sin", 0), _lower("tirx.cos", 1)  # cos(x) = sin(x + pi/2): one quadrant on
    tirx.op.register_intrin_lowering("tirx.sin", "webgpu", f=sin, level=LOWERING_LEVEL)
    tirx.op.register_intrin_lowering("tirx.cos", "webgpu", f=cos, level=LOWERING_LEVEL)
    _registered = True
