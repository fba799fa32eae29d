"""Elementwise ops: arithmetic, unary math, activations, clamp, where, comparisons.

Each op is one Function over raw arrays; broadcasting is undone by the autograd engine.
Functional wrappers (lowercase) handle dtype promotion and Python scalars.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.autograd import Function, broadcast_error, higher_order
from darklib.backend import get_xp, gpu_special
from darklib.errors import InvalidType, InvalidValue
from darklib.kernels import fused, normal
from darklib.kernels import parallel as par
from darklib.ops._promote import _cast, promote, result_dtype
from darklib.tensor import Tensor

# ------------------------------------------------------------------ binary arithmetic


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g

    @staticmethod
    def backward_graph(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)

    @staticmethod
    def backward_graph(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        # only what the gradients need: an operand changed in place after y * 2 (or after
        # y * w for a w without grad) is no error, as in torch
        na, nb = ctx.needs_input_grad
        ctx.save_for_backward(a if nb else None, b if na else None)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (g * b if na else None), (g * a if nb else None)

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (g * ctx.lift(b, 1) if na else None), (g * ctx.lift(a, 0) if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = g / b if na else None
        gb = -g * a / b / b if nb else None  # (b * b would over- or underflow first)
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        b = ctx.lift(b, 1)
        return (g / b if na else None), (-g * ctx.lift(a, 0) / b / b if nb else None)


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = get_xp(a)
        if a.dtype.kind in "iu" and not isinstance(b, int) and (b < 0).any():
            # integer powers with negative exponents, as PyTorch: 1 and -1 stay, others are 0
            bb = xp.abs(b.astype(xp.int64))  # (abs of int8 -128 is -128 again)
            out = xp.where(b < 0, xp.where(xp.abs(a) == 1, a**bb, 0), a ** xp.where(b < 0, 0, b))
            return out.astype(a.dtype, copy=False)
        out = a**b
        # the output only for the exponent's gradient (as torch): x ** 2 then y += 1 is fine
        ctx.save_for_backward(a, b, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:
            if isinstance(b, int | float):
                ga = g * b * a ** (b - 1) if b != 0 else g * 0
            else:
                xp = get_xp(a)
                ga = g * xp.where(b == 0, 0, b * a ** (b - 1))
        if nb:
            xp = get_xp(out)
            gb = g * xp.where((a == 0) & (b >= 0), 0, out * xp.log(a))
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a, b, out = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        at, ga, gb = ctx.lift(a, 0), None, None
        if na:
            if isinstance(b, int | float):
                ga = g * b * at ** (b - 1) if b != 0 else g * 0
            else:
                bt = ctx.lift(b, 1)
                ga = g * where(bt == 0, 0.0, bt * at ** (bt - 1))
        if nb:
            zero = Tensor._wrap((a == 0) & (b >= 0))
            gb = g * where(zero, 0.0, ctx.lift_output(out) * log(at))
        return ga, gb


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = get_xp(a)
        ctx.save_for_backward(a, b)
        return xp.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _minmax_grads(ctx, g, a < b, a > b, a == b)

    backward_graph = staticmethod(higher_order.piecewise_linear)


class LogAddExp(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return get_xp(a).logaddexp(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        # softmax weights of the two operands (finite for infinite ones)
        return g * _sigmoid(xp, a - b), g * _sigmoid(xp, b - a)

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        d = ctx.lift(a, 0) - ctx.lift(b, 1)
        return g * sigmoid(d), g * sigmoid(-d)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = get_xp(a)
        ctx.save_for_backward(a, b)
        return xp.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _minmax_grads(ctx, g, a > b, a < b, a == b)

    backward_graph = staticmethod(higher_order.piecewise_linear)


_INT_OF_SIZE = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


def _where(xp, cond, a, b):
    """``xp.where(cond, a, b)``; on NumPy without a branch per element for large operands.

    NumPy's where branches on every element: on activations, whose signs look random to the
    branch predictor, it ran ~7 ms per 2M floats here, four times the bitwise blend
    ``(a & m) | (b & ~m)`` on the operands' bits (m all ones where cond), which is exact
    for every value (NaN payloads and signed zeros included).
    """
    if xp is not np:
        return xp.where(cond, a, b)
    dtype = np.result_type(a, b)  # before asarray: Python scalars stay weak, as in where
    shape = np.broadcast_shapes(np.shape(cond), np.shape(a), np.shape(b))
    ity = _INT_OF_SIZE.get(dtype.itemsize)
    if ity is None or dtype.kind == "c" or math.prod(shape) < 1 << 14:
        return np.where(cond, a, b)
    a = np.broadcast_to(np.asarray(a, dtype), shape).view(ity)
    b = np.broadcast_to(np.asarray(b, dtype), shape).view(ity)
    mask = np.broadcast_to(cond, shape).astype(ity)  # 0 or 1
    np.negative(mask, out=mask)  # 0 or all ones
    out = np.bitwise_and(a, mask)
    np.invert(mask, out=mask)
    out |= np.bitwise_and(b, mask, out=mask)
    return out.view(dtype)


def _put(out: np.ndarray, mask: np.ndarray, value: Any) -> np.ndarray:
    """``out[mask] = value`` in place (``value`` an array of out's shape or a number), as
    a blend of the bits (see :func:`_where`): NumPy's masked ``copyto`` branches on each
    element, 40x slower on random signs. Exact for every value (NaN, -0.0)."""
    ity = _INT_OF_SIZE.get(out.dtype.itemsize)
    if ity is None or out.dtype.kind == "c" or not out.flags.c_contiguous:
        np.copyto(out, value, where=mask, casting="unsafe")
        return out
    o = out.view(ity)
    m = np.asarray(mask).astype(ity)  # (an array also for a 0-d mask)
    if np.ndim(value) == 0 and value == 0 and not np.signbit(value):  # clear the bits
        m -= 1  # 0 where mask, all ones elsewhere
        o &= m
        return out
    np.negative(m, out=m)  # all ones where mask
    v = np.asarray(value).astype(out.dtype, copy=False) if np.ndim(value) == 0 else value
    d = np.bitwise_xor(np.ascontiguousarray(v).reshape(np.shape(v)).view(ity), o)
    d &= m
    o ^= d
    return out


def _minmax_grads(ctx, g, a_loses, b_loses, tie):
    # As PyTorch: ties split the gradient evenly, and where a NaN is involved (no order)
    # both operands get all of it.
    xp = get_xp(g)
    half = g * 0.5
    zero = xp.zeros((), g.dtype)
    na, nb = ctx.needs_input_grad
    ga = _where(xp, tie, half, _where(xp, a_loses, zero, g)) if na else None
    gb = _where(xp, tie, half, _where(xp, b_loses, zero, g)) if nb else None
    return ga, gb


# ------------------------------------------------------------------ unary math


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g

    @staticmethod
    def backward_graph(ctx, g):
        return -g


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_xp(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        sgn = xp.sign(a)
        if a.dtype.kind == "f":
            sgn = xp.where(xp.isnan(a), 0, sgn).astype(a.dtype, copy=False)
        return g * sgn

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        return higher_order.linked(
            ctx, g * Tensor._wrap(Abs.backward(ctx, get_xp(a).ones_like(a))), 0
        )


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = get_xp(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out

    @staticmethod
    def backward_graph(ctx, g):
        (out,) = ctx.saved_tensors
        return g * ctx.lift_output(out)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        xp = get_xp(a)
        return xp.log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        return g / ctx.lift(a, 0)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        out = xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)

    @staticmethod
    def backward_graph(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * ctx.lift_output(out))


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_xp(a).sin(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * get_xp(a).cos(a)

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        return g * cos(ctx.lift(a, 0))


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_xp(a).cos(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return -g * get_xp(a).sin(a)

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        return -g * sin(ctx.lift(a, 0))


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = get_xp(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        if fused.applies(g, out):
            return fused.kernel("tanh_grad")(g, out)
        return g * (1 - out * out)

    @staticmethod
    def backward_graph(ctx, g):
        (out,) = ctx.saved_tensors
        y = ctx.lift_output(out)
        return g * (1 - y * y)


def _sigmoid(xp: Any, a: Any) -> Any:
    """1 / (1 + e^-a), as torch computes it: accurate in both tails (e^-a overflowing to
    inf gives the 0 torch gives below -88.7 in float32); half precision in float32."""
    if a.dtype.itemsize < 4:
        return _sigmoid(xp, a.astype(xp.float32)).astype(a.dtype)
    if fused.applies(a):
        return fused.kernel("sigmoid")(a)
    e = xp.negative(a, out=xp.empty_like(a))  # an array even for 0-d input
    xp.exp(e, out=e)
    e += 1
    return xp.reciprocal(e, out=e)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = _sigmoid(get_xp(a), a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        if fused.applies(g, out):
            return fused.kernel("sigmoid_grad")(g, out)
        return g * out * (1 - out)

    @staticmethod
    def backward_graph(ctx, g):
        (out,) = ctx.saved_tensors
        y = ctx.lift_output(out)
        return g * y * (1 - y)


class ReLU(Function):
    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        if xp is np:
            out = np.empty(a.shape, a.dtype)
            # 0 first: where the two are equal NumPy keeps the second, so -0.0 stays -0.0
            par.elementwise(lambda p, out: np.maximum(0, p, out=out), out, a)
        else:
            out = xp.maximum(0, a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        xp = get_xp(g)
        if xp is not np:  # one fused kernel, and no host sync for a NaN check
            if fused.applies(g, out):
                return fused.kernel("relu_grad")(g, out)
            return xp.where(out <= 0, xp.zeros((), g.dtype), g)
        res = np.empty(g.shape, g.dtype)
        par.elementwise(_relu_grad, res, g, out)
        return res

    @staticmethod
    def backward_graph(ctx, g):  # the mask is piecewise constant: a zero derivative
        (out,) = ctx.saved_tensors
        return higher_order.linked(ctx, where(Tensor._wrap(out <= 0), 0.0, g), 0)


def _relu_grad(g: np.ndarray, y: np.ndarray, *, out: np.ndarray) -> None:
    """``g`` where the ReLU output ``y`` is not <= 0 (NaN outputs pass their gradient, as in torch).

    A multiply by the mask is several times faster than ``where`` on NumPy; only a gradient
    that holds NaN or inf (inf * 0 is NaN) needs the slower ``where``.
    """
    keep = np.less_equal(y, 0, out=np.empty(y.shape, np.bool_))  # an array even for 0-d
    np.logical_not(keep, out=keep)
    # inf * 0 is repaired below
    np.multiply(g, keep, out=out)
    if g.dtype.kind != "f" or np.isfinite(np.add.reduce(out, axis=None)):
        return
    np.copyto(out, _where(np, keep, g, np.zeros((), g.dtype)))


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, a, slope):
        ctx.save_for_backward(a)
        ctx.slope = slope
        xp = get_xp(a)
        if fused.applies(a) and math.isfinite(slope):
            return fused.kernel("leaky_relu")(a, slope)
        if xp is not np or slope == 0 or not math.isfinite(slope):  # inf * 0 needs where
            return _where(xp, a > 0, a, a * slope)
        out = np.empty(a.shape, np.result_type(a, slope))
        par.elementwise(lambda p, out: _leaky(p, slope, out), out, a)
        return out

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        s = ctx.slope
        xp = get_xp(a)
        if xp is not np:
            if fused.applies(g, a) and math.isfinite(s):
                return fused.kernel("leaky_relu_grad")(g, a, s), None
            return _where(xp, a > 0, g, g * s), None
        res = np.empty(g.shape, g.dtype)

        def grad(g, a, *, out):  # g * (1 where a > 0, else slope): multiplies, not a where
            keep = np.greater(a, 0)
            np.logical_not(keep, out=out)
            out *= s
            out += keep  # exactly 1 or slope (NaN inputs take the slope, as in torch)
            out *= g

        par.elementwise(grad, res, g, a)
        return res, None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        return higher_order.linked(ctx, (where(Tensor._wrap(a > 0), g, g * ctx.slope), None), 0)


def _leaky(a: np.ndarray, slope: float, out: np.ndarray) -> None:
    """a where a > 0, else a * slope, as max(a, slope * a) (or min for slope > 1): on
    NumPy twenty times faster than ``where``; NaN, -0.0 and infinities come out the same
    for any finite non-zero slope."""
    np.multiply(a, slope, out=out)
    (np.maximum if slope <= 1 else np.minimum)(a, out, out=out)


class ELU(Function):
    """torch's elu kernel, for elu, selu and celu alike: ``scale x`` where x > 0 (NaN
    included), else ``alpha scale expm1(x input_scale)``; half precision in float32."""

    @staticmethod
    def forward(ctx, a, alpha, scale=1.0, input_scale=1.0):
        xp = get_xp(a)
        ctx.alpha, ctx.scale, ctx.input_scale = alpha, scale, input_scale
        x = _wide(xp, a)
        neg = xp.multiply(x, input_scale, out=xp.empty(x.shape, x.dtype))
        if xp is np:
            _blocked(np.expm1, neg, neg)
        else:
            xp.expm1(neg, out=neg)
        neg *= alpha * scale
        out = xp.multiply(x, scale, out=xp.empty(x.shape, x.dtype))
        if xp is np:
            _put(out, np.less_equal(x, 0), neg)
        else:
            out = xp.where(x <= 0, neg, out)
        ctx.save_for_backward(a)
        return out.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        # torch's: g input_scale alpha scale exp(x input_scale) at x <= 0, g scale above
        # (NaN too); exp of the negative part only (no inf in the branch not taken)
        x = _wide(xp, a)
        d = xp.minimum(x, 0, out=xp.empty(x.shape, x.dtype))
        if ctx.input_scale != 1:
            d *= ctx.input_scale
        if xp is np:
            _blocked(np.exp, d, d)
        else:
            xp.exp(d, out=d)
        d *= ctx.input_scale * ctx.alpha * ctx.scale
        d = d.astype(g.dtype, copy=False)
        d *= g
        pos = g * ctx.scale if ctx.scale != 1 else g
        return _nd(xp, _where(xp, a <= 0, d, pos)), None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        # exp of the negative part only (exp(100) = inf in the branch not taken would make
        # its gradient 0 * inf)
        s = ctx.input_scale
        grad = g * (exp(ctx.lift(a, 0).clamp(max=0) * s) * (ctx.alpha * ctx.scale * s))
        return where(Tensor._wrap(a <= 0), grad, g * ctx.scale), None, None, None


def _wide(xp, a):
    """Half-precision input in float32 (torch computes half activations in float32)."""
    return a.astype(xp.float32) if a.dtype.itemsize < 4 else a


class GELU(Function):
    """``x Phi(x)`` as one op: exact (``x/2 erfc(-x/sqrt 2)``, accurate where x << 0,
    where torch's ``1 + erf`` cancels) or torch's tanh approximation. float32 on the CPU
    runs fused blocks (:func:`_gelu32`, :func:`_gelu_tanh32`) split over threads."""

    @staticmethod
    def forward(ctx, a, approximate):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.approximate = approximate
        x = _wide(xp, a)
        if xp is np and x.dtype == np.float32:
            out = np.empty(x.shape, np.float32)
            _blocked(_gelu_tanh32 if approximate == "tanh" else _gelu32, out, x)
            return out.astype(a.dtype, copy=False)
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))
            y = 0.5 * x * (1 + xp.tanh(inner))
        else:
            y = 0.5 * x * _erfc(xp, x * -_INV_SQRT2)  # 1 + erf(x/sqrt2), exact where x << 0
        return y.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        x = _wide(xp, a)
        if xp is np and x.dtype == np.float32 and g.dtype == np.float32:
            out = np.empty(np.broadcast_shapes(g.shape, x.shape), np.float32)
            fn = _gelu_tanh_grad32 if ctx.approximate == "tanh" else _gelu_grad32
            _blocked(fn, out, np.broadcast_to(g, out.shape), np.broadcast_to(x, out.shape))
            return out, None
        if ctx.approximate == "tanh":
            x_sq = x * x
            th = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x_sq * x)))
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x_sq)
            d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * d_inner
        else:
            cdf = 0.5 * _erfc(xp, x * -_INV_SQRT2)
            d = cdf + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return (g * d).astype(g.dtype, copy=False), None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        x = ctx.lift(a, 0)
        if ctx.approximate == "tanh":
            th = tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3))
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * d_inner
        else:
            d = 0.5 * erfc(x * -_INV_SQRT2) + x * exp(-0.5 * x * x) * _INV_SQRT_2PI
        return g * d, None


def _gelu32(x: np.ndarray, *, out: np.ndarray) -> None:
    """Exact GELU of a float32 block: ``x Phi(x)``, with ``h = Phi(-|x|)`` (``erfc(|x|/sqrt
    2) / 2``, no cancellation) and Phi(x) = h where x is negative, 1 - h elsewhere (chosen
    by the sign bit, :func:`_by_sign`). GELU(inf) = inf, GELU(-inf) = -inf * 0 = NaN, as
    torch, with no fix-up pass."""
    h = _half_erfc_pos32(x, _INV_SQRT2)
    np.subtract(1, h, out=out)
    _by_sign(x, h, out, out)
    out *= x


def _gelu_grad32(g: np.ndarray, x: np.ndarray, *, out: np.ndarray) -> None:
    """``g (Phi(x) + x phi(x))`` of a float32 block (Phi from erfc of |x|, as forward)."""
    h, gauss = _half_erfc_pos32(x, _INV_SQRT2, keep_gauss=True)
    np.subtract(1, h, out=out)
    _by_sign(x, h, out, out)  # Phi(x)
    gauss *= x
    gauss *= _INV_SQRT_2PI
    out += gauss
    out *= g


def _by_sign(x: np.ndarray, neg: np.ndarray, pos: np.ndarray, out: np.ndarray) -> None:
    """``neg`` where x's sign bit is set (-0.0 included), ``pos`` elsewhere (float32
    blocks): a blend of the bits by the sign spread over the word, four integer passes
    where ``_put`` with a comparison took seven (and GELU a NaN check for x = inf)."""
    m = np.right_shift(x.view(np.int32), 31)  # all ones where negative
    d = np.bitwise_xor(neg.view(np.int32), pos.view(np.int32))
    d &= m
    np.bitwise_xor(pos.view(np.int32), d, out=out.view(np.int32))


def _gelu_tanh32(x: np.ndarray, *, out: np.ndarray) -> None:
    """torch's ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, in its order."""
    np.multiply(x, x, out=out)
    out *= x
    out *= 0.044715
    out += x
    out *= _SQRT_2_OVER_PI
    np.tanh(out, out=out)
    out += 1
    out *= x
    out *= 0.5


def _gelu_tanh_grad32(g: np.ndarray, x: np.ndarray, *, out: np.ndarray) -> None:
    """torch's gelu tanh backward: ``g (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi)
    (1 + 3 * 0.044715 x^2))`` with ``t = tanh(sqrt(2/pi) (x + 0.044715 x^3))``."""
    x_sq = np.multiply(x, x)
    t = np.multiply(x_sq, x)
    t *= 0.044715
    t += x
    t *= _SQRT_2_OVER_PI
    np.tanh(t, out=t)
    x_sq *= 3 * 0.044715
    x_sq += 1
    x_sq *= _SQRT_2_OVER_PI  # d inner
    np.multiply(t, t, out=out)
    np.subtract(1, out, out=out)
    out *= x
    out *= 0.5
    out *= x_sq
    t += 1
    t *= 0.5
    out += t
    out *= g


class SiLU(Function):
    @staticmethod
    def forward(ctx, a):
        s = _sigmoid(get_xp(a), a)
        ctx.save_for_backward(a, s)
        return a * s

    @staticmethod
    def backward(ctx, g):
        a, s = ctx.saved_tensors
        return g * s * (1 + a * (1 - s))

    @staticmethod
    def backward_graph(ctx, g):
        a, _ = ctx.saved_tensors
        x = ctx.lift(a, 0)
        s = sigmoid(x)
        return g * s * (1 + x * (1 - s))


class Mish(Function):
    """``x * tanh(softplus(x))`` as one op (torch's formula: ``tanh(log1p(exp(x)))``)."""

    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        x = _wide(xp, a)
        t = xp.tanh(xp.log1p(xp.exp(x)))
        ctx.save_for_backward(a, t)
        return (x * t).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        a, t = ctx.saved_tensors
        xp = get_xp(a)
        x = _wide(xp, a)
        return (g * (t + x * _sigmoid(xp, x) * (1 - t * t))).astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        (a, _) = ctx.saved_tensors
        return higher_order.recompute(ctx, g, lambda x: x * tanh(softplus(x)), (a,))


class Hardswish(Function):
    """``x * clamp(x + 3, 0, 6) / 6`` as one op. The gradient is selected as torch's: 0 up
    to -3, ``x / 3 + 1/2`` below 3, else (NaN included) the incoming gradient itself."""

    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        x = _wide(xp, a)
        return (x * xp.clip(x + 3, 0, 6) / 6).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        x = _wide(xp, a)
        if xp is np and x.dtype == g.dtype and x.shape == g.shape:
            out = np.empty(g.shape, g.dtype)
            _blocked(_hardswish_grad, out, g, x)
            return out
        mid = xp.where(x < 3, g * (x / 3 + 0.5), g).astype(g.dtype, copy=False)
        return xp.where(a <= -3, 0, mid).astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        x = ctx.lift(a, 0)
        mid = where(Tensor._wrap(a < 3), g * (x / 3 + 0.5), g)
        return where(Tensor._wrap(a <= -3), 0.0, mid)


def _hardswish_grad(g: np.ndarray, x: np.ndarray, *, out: np.ndarray) -> None:
    np.divide(x, 3, out=out)
    out += 0.5
    out *= g
    _put(out, ~np.less(x, 3), g)  # (NaN too)
    _put(out, np.less_equal(x, -3), 0)


class Hardtanh(Function):
    """``clamp(x, lo, hi)`` whose gradient passes strictly inside the bounds, and at NaN
    when ``nan_slope`` (torch's hardtanh and relu6; not its hardsigmoid)."""

    @staticmethod
    def forward(ctx, a, lo, hi, nan_slope=True):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi, ctx.nan_slope = lo, hi, nan_slope
        if xp is not np:
            return xp.clip(a, lo, hi)
        out = np.empty(a.shape, a.dtype)
        par.elementwise(lambda p, out: np.clip(p, lo, hi, out=out), out, a)
        return out

    @staticmethod
    def _keep(xp, a, lo, hi, nan_slope):
        if nan_slope:  # not outside: NaN passes
            return ~((a <= lo) | (a >= hi))
        return (a > lo) & (a < hi)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(g)
        if xp is not np or g.shape != a.shape:
            keep = Hardtanh._keep(xp, a, ctx.lo, ctx.hi, ctx.nan_slope)
            return _where(xp, keep, g, xp.zeros((), g.dtype)), None, None, None
        lo, hi, nan_slope = ctx.lo, ctx.hi, ctx.nan_slope
        res = np.empty(g.shape, g.dtype)

        def grad(g, a, *, out):
            _masked_grad(g, Hardtanh._keep(np, a, lo, hi, nan_slope), out)

        par.elementwise(grad, res, g, a)
        return res, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        keep = Hardtanh._keep(get_xp(a), a, ctx.lo, ctx.hi, ctx.nan_slope)
        return higher_order.linked(ctx, (where(Tensor._wrap(keep), g, 0.0), None, None, None), 0)


def _masked_grad(g: np.ndarray, keep: np.ndarray, out: np.ndarray, scale: Any = None) -> None:
    """``g`` (times ``scale``) where ``keep``, else exactly +0 (inf and NaN gradients
    included, as torch's selects)."""
    if scale is None:
        np.copyto(out, g)
    else:
        np.multiply(g, scale, out=out)
    _put(out, ~keep, 0)


class Hardsigmoid(Function):
    """torch's ``min(max(x + 3, 0), 6) / 6``; gradient ``g / 6`` strictly inside
    (-3, 3), else 0 (NaN too)."""

    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        x = _wide(xp, a)
        out = xp.add(x, 3, out=xp.empty(x.shape, x.dtype))
        xp.clip(out, 0, 6, out=out)
        out /= 6
        return out.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(g)
        keep = (a > -3) & (a < 3)
        # (torch's float64 kernel multiplies by float32(1/6); the exact 1/6 here, see
        # test_fuzz_layers' test_hardsigmoid_backward_is_exact_sixth)
        sixth = g.dtype.type(1 / 6)
        if xp is not np or g.shape != a.shape:
            return _where(xp, keep, g * sixth, xp.zeros((), g.dtype))
        res = np.empty(g.shape, g.dtype)
        _masked_grad(g, keep, res, sixth)
        return res

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        keep = Tensor._wrap((a > -3) & (a < 3))
        return higher_order.linked(ctx, where(keep, g * (1 / 6), 0.0), 0)


class Threshold(Function):
    """``value`` where ``x <= threshold``, else ``x`` (NaN passes, with its gradient)."""

    @staticmethod
    def forward(ctx, a, threshold, value):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.threshold = threshold
        out = a.copy()
        if xp is np:
            _put(out, np.less_equal(a, threshold), value)
            return out
        return xp.where(a <= threshold, xp.asarray(value, a.dtype), a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return _zero_where(g, a <= ctx.threshold), None, None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        drop = Tensor._wrap(a <= ctx.threshold)
        return higher_order.linked(ctx, (where(drop, 0.0, g), None, None), 0)


def _zero_where(g: Any, drop: Any) -> Any:
    """``g`` with exact zeros where ``drop`` (same shapes on NumPy: one copy, one masked
    write)."""
    xp = get_xp(g)
    if xp is not np or np.shape(g) != np.shape(drop):
        return _where(xp, drop, xp.zeros((), g.dtype), g)
    out = np.array(g)  # (a copy, and an array for a 0-d g)
    _put(out, drop, 0)
    return out


class Hardshrink(Function):
    """``x`` where ``|x| > lambd`` (NaN too, with slope 1), else 0."""

    @staticmethod
    def forward(ctx, a, lambd):
        ctx.save_for_backward(a)
        ctx.lambd = lambd
        return _zero_where(a, _shrunk(a, lambd))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return _zero_where(g, _shrunk(a, ctx.lambd)), None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        drop = Tensor._wrap(_shrunk(a, ctx.lambd))
        return higher_order.linked(ctx, (where(drop, 0.0, g), None), 0)


def _shrunk(a: Any, lambd: float) -> Any:
    """Where ``-lambd <= a <= lambd`` (NaN: no), as torch's shrink kernels test it."""
    xp = get_xp(a)
    return xp.abs(a) <= lambd


class Softshrink(Hardshrink):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else +0; NaN stays
    NaN with slope 1. (Its gradient is hardshrink's.)"""

    @staticmethod
    def forward(ctx, a, lambd):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.lambd = lambd
        out = xp.copysign(xp.asarray(lambd, a.dtype), a, out=xp.empty(a.shape, a.dtype))
        xp.subtract(a, out, out=out)
        return _zero_where(out, _shrunk(a, lambd))


class PReLU(Function):
    """``x`` where ``x > 0``, else ``w x``, with ``w`` broadcast against ``x`` (one slope,
    or one per channel shaped ``(C, 1, ...)``): torch's prelu and its two gradients
    (``w`` gets ``x g`` where ``x <= 0``, NaN included)."""

    @staticmethod
    def forward(ctx, a, w):
        xp = get_xp(a)
        ctx.save_for_backward(a, w)
        out = _nd(xp, xp.multiply(a, w))
        if xp is np and out.shape == a.shape:
            _put(out, np.greater(a, 0), a)
            return out
        return xp.where(a > 0, a, out)

    @staticmethod
    def backward(ctx, g):
        a, w = ctx.saved_tensors
        xp = get_xp(g)
        pos = a > 0
        ga = gw = None
        if ctx.needs_input_grad[0]:
            ga = _nd(xp, xp.multiply(g, w))
            if xp is np and ga.shape == pos.shape:
                _put(ga, pos, g)
            else:
                ga = xp.where(pos, g, ga)
        if ctx.needs_input_grad[1]:
            p = _nd(xp, xp.multiply(a, g))
            if xp is np and p.shape == pos.shape:
                _put(p, pos, 0)
            else:
                p = xp.where(pos, xp.zeros((), p.dtype), p)
            gw = _sum_to(xp, p, w.shape)
        return ga, gw

    @staticmethod
    def backward_graph(ctx, g):
        a, w = ctx.saved_tensors
        pos = Tensor._wrap(a > 0)
        need = ctx.needs_input_grad
        ga = where(pos, g, g * ctx.lift(w, 1)) if need[0] else None
        gw = where(pos, 0.0, g * ctx.lift(a, 0)) if need[1] else None
        return higher_order.linked(ctx, (ga, gw), 0)


def _nd(xp: Any, r: Any) -> Any:
    """A ufunc's result as a writable array (NumPy gives scalars for 0-d operands)."""
    return r if isinstance(r, xp.ndarray) else xp.array(r)


def _sum_to(xp: Any, g: Any, shape: tuple) -> Any:
    """``g`` summed down to the broadcast ``shape``."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    return (g.sum(axis=axes) if axes else g).reshape(shape)


class LogSigmoid(Function):
    """torch's ``min(x, 0) - log1p(exp(-|x|))`` and its gradient from the same
    ``exp(-|x|)``: ``g (1 - z / (1 + z))`` below 0, ``-g z / (1 + z)`` else (NaN too)."""

    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        x = _wide(xp, a)
        z = xp.abs(x, out=xp.empty(x.shape, x.dtype))
        xp.negative(z, out=z)
        if xp is np:
            _blocked(np.exp, z, z)
            out = np.empty_like(z)
            _blocked(np.log1p, out, z)
        else:
            xp.exp(z, out=z)
            out = xp.log1p(z)
        xp.subtract(xp.minimum(x, 0), out, out=out)
        ctx.save_for_backward(a, z)
        return out.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        a, z = ctx.saved_tensors
        xp = get_xp(g)
        r = xp.add(z, 1, out=xp.empty(z.shape, z.dtype))
        xp.divide(z, r, out=r)  # sigmoid(-|x|)
        d = _where(xp, a < 0, 1 - r, r)  # 1 - sigmoid(x) (NaN: NaN)
        return (g * d).astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        (a, _) = ctx.saved_tensors
        x = ctx.lift(a, 0)
        neg = Tensor._wrap(a < 0)
        s = sigmoid(-abs(x))  # z / (1 + z)
        return g * where(neg, 1 - s, s)


class GLU(Function):
    """``a * sigmoid(b)`` for the halves ``a, b`` of ``dim``, its gradient written into one
    buffer of the input's shape (no zero-filled buffer per half)."""

    @staticmethod
    def forward(ctx, x, dim):
        xp = get_xp(x)
        a, b = _halves(x, dim)
        s = _sigmoid(xp, b)
        ctx.save_for_backward(x, s)
        ctx.dim = dim
        return a * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        xp = get_xp(g)
        a, _ = _halves(x, ctx.dim)
        gx = xp.empty(x.shape, np.result_type(g, x))
        ga, gb = _halves(gx, ctx.dim)
        xp.multiply(g, s, out=ga)
        xp.multiply(ga, a, out=gb)
        gb *= 1 - s
        return gx, None

    @staticmethod
    def backward_graph(ctx, g):
        x, _ = ctx.saved_tensors
        dim = ctx.dim

        def glu_of(t: Tensor, _: Any = None) -> Tensor:
            a, b = t.chunk(2, dim)
            return a * sigmoid(b)

        return higher_order.recompute(ctx, g, glu_of, (x, None))


def _halves(x: Any, dim: int) -> tuple:
    h = x.shape[dim] // 2
    lo = (slice(None),) * dim
    return x[(*lo, slice(0, h))], x[(*lo, slice(h, None))]


class Softplus(Function):
    @staticmethod
    def forward(ctx, a, beta, threshold):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.beta, ctx.threshold = beta, threshold
        ba = a * beta
        soft = (xp.maximum(ba, 0) + xp.log1p(xp.exp(-xp.abs(ba)))) / beta
        return _where(xp, ba > threshold, a, soft)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        ba = a * ctx.beta
        return _where(xp, ba > ctx.threshold, g, g * _sigmoid(xp, ba)), None, None

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        ba = ctx.lift(a, 0) * ctx.beta
        return where(Tensor._wrap(a * ctx.beta > ctx.threshold), g, g * sigmoid(ba)), None, None


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, lo, hi):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        return xp.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        keep = True
        if ctx.lo is not None:
            keep = a >= ctx.lo
        if ctx.hi is not None:
            keep = keep & (a <= ctx.hi)
        return _where(get_xp(g), keep, g, 0), None, None  # (an inf or NaN g: exact zeros)

    backward_graph = staticmethod(higher_order.piecewise_linear)


class ClampTensor(Function):
    """clamp with tensor bounds (either may be None): the whole gradient goes to the input
    where ``lo <= a <= hi``, to ``lo`` where ``a < lo < hi``, to ``hi`` where ``a > hi``
    or ``hi < lo`` (ties go to the input, unlike maximum/minimum), as torch."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        xp = get_xp(a)
        ctx.save_for_backward(a, lo, hi)
        out = a if lo is None else xp.maximum(a, lo)
        return out if hi is None else xp.minimum(out, hi)

    @staticmethod
    def backward(ctx, g):
        a, lo, hi = ctx.saved_tensors
        xp = get_xp(g)
        zero = xp.zeros((), g.dtype)
        keep = True if lo is None else a >= lo
        if hi is not None:
            keep = keep & (a <= hi)
        ga = xp.where(keep, g, zero)
        glo = ghi = None
        if lo is not None and ctx.needs_input_grad[1]:
            below = a < lo if hi is None else (a < lo) & (lo < hi)
            glo = xp.where(below, g, zero)
        if hi is not None and ctx.needs_input_grad[2]:
            above = a > hi if lo is None else (a > hi) | (hi < lo)
            ghi = xp.where(above, g, zero)
        return ga, glo, ghi

    backward_graph = staticmethod(higher_order.piecewise_linear)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return _where(get_xp(cond), cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        _, na, nb = ctx.needs_input_grad
        xp = get_xp(g)
        zero = xp.zeros((), g.dtype)
        return (
            None,
            _where(xp, cond, g, zero) if na else None,
            _where(xp, cond, zero, g) if nb else None,
        )

    @staticmethod
    def backward_graph(ctx, g):
        (cond,) = ctx.saved_tensors
        _, na, nb = ctx.needs_input_grad
        c = Tensor._wrap(cond)
        return None, (where(c, g, 0.0) if na else None), (where(c, 0.0, g) if nb else None)


class Remainder(Function):
    """Python's ``%`` (sign of the divisor) when ``floor``, C's ``fmod`` (sign of the dividend)
    otherwise."""

    @staticmethod
    def forward(ctx, a, b, floor):
        xp = get_xp(a)
        ctx.save_for_backward(a, b)
        ctx.floor = floor
        return xp.remainder(a, b) if floor else xp.fmod(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        gb = None
        if ctx.needs_input_grad[1]:
            q = xp.floor_divide(a, b) if ctx.floor else xp.trunc(a / b)
            gb = -g * q
        return g, gb, None

    backward_graph = staticmethod(higher_order.piecewise_linear)


class Step(Function):
    """Piecewise-constant ops (floor, round, sign, rounding division): gradient zero, but
    the output stays in the graph, as in PyTorch."""

    @staticmethod
    def forward(ctx, a, b, op):
        return op(a) if b is None else op(a, b)

    @staticmethod
    def backward(ctx, g):
        na, nb = ctx.needs_input_grad[:2]
        zero = get_xp(g).zeros_like(g)
        return (zero if na else None), (zero if nb else None), None

    backward_graph = staticmethod(higher_order.piecewise_linear)


def _unary(name: str, f: Callable, df: Callable, save_out: bool = False) -> type[Function]:
    """A Function for ``f(xp, a)`` whose derivative is ``df(xp, a, out)``: of the input
    alone (``out`` is None), or with ``save_out`` of the output alone (``a`` is None). Only
    that one is saved, as torch does, so that an in-place change of the other before
    backward is allowed (``y = x.log1p(); y += 1``)."""

    def forward(ctx, a):
        xp = get_xp(a)
        out = f(xp, a)
        ctx.save_for_backward(None if save_out else a, out if save_out else None)
        return out

    def backward(ctx, g):
        a, out = ctx.saved_tensors
        xp = get_xp(g)
        return g * df(xp, a, out)

    def backward_graph(ctx, g):  # df with darklib as its array module: recorded ops
        import darklib

        a, out = ctx.saved_tensors
        if save_out:
            return g * df(darklib, None, ctx.lift_output(out))
        return g * df(darklib, ctx.lift(a, 0), None)

    return type(
        name,
        (Function,),
        {
            "forward": staticmethod(forward),
            "backward": backward,
            "backward_graph": backward_graph,
        },
    )


_LN2, _LN10 = math.log(2), math.log(10)
Log1p = _unary("Log1p", lambda xp, a: xp.log1p(a), lambda xp, a, o: 1 / (1 + a))
Expm1 = _unary("Expm1", lambda xp, a: xp.expm1(a), lambda xp, a, o: o + 1, save_out=True)
Log2 = _unary("Log2", lambda xp, a: xp.log2(a), lambda xp, a, o: 1 / (a * _LN2))
Log10 = _unary("Log10", lambda xp, a: xp.log10(a), lambda xp, a, o: 1 / (a * _LN10))
Exp2 = _unary("Exp2", lambda xp, a: xp.exp2(a), lambda xp, a, o: o * _LN2, save_out=True)
Tan = _unary("Tan", lambda xp, a: xp.tan(a), lambda xp, a, o: 1 + o * o, save_out=True)
Asin = _unary("Asin", lambda xp, a: xp.arcsin(a), lambda xp, a, o: 1 / xp.sqrt(1 - a * a))
Acos = _unary("Acos", lambda xp, a: xp.arccos(a), lambda xp, a, o: -1 / xp.sqrt(1 - a * a))
Atan = _unary("Atan", lambda xp, a: xp.arctan(a), lambda xp, a, o: 1 / (1 + a * a))
Sinh = _unary("Sinh", lambda xp, a: xp.sinh(a), lambda xp, a, o: xp.cosh(a))
Cosh = _unary("Cosh", lambda xp, a: xp.cosh(a), lambda xp, a, o: xp.sinh(a))
Asinh = _unary("Asinh", lambda xp, a: xp.arcsinh(a), lambda xp, a, o: 1 / xp.sqrt(a * a + 1))
Acosh = _unary("Acosh", lambda xp, a: xp.arccosh(a), lambda xp, a, o: 1 / xp.sqrt(a * a - 1))
Atanh = _unary("Atanh", lambda xp, a: xp.arctanh(a), lambda xp, a, o: 1 / (1 - a * a))
Erfc = _unary(
    "Erfc", lambda xp, a: _erfc(xp, a), lambda xp, a, o: -_TWO_OVER_SQRT_PI * xp.exp(-a * a)
)


def _erfinv_again(xp: Any, a: Any) -> Any:
    """erfinv of the saved input, recomputed by its derivative (as torch: the input, not
    the output, is saved); ``xp`` is darklib itself under create_graph."""
    return xp.erfinv(a) if hasattr(xp, "Tensor") else _erfinv(xp, a)


Erfinv = _unary(
    "Erfinv",
    lambda xp, a: _erfinv(xp, a),
    lambda xp, a, o: (0.5 * _SQRT_PI) * xp.exp(_erfinv_again(xp, a) ** 2),
)
Erf = _unary("Erf", lambda xp, a: _erf(xp, a), lambda xp, a, o: _TWO_OVER_SQRT_PI * xp.exp(-a * a))
Frac = _unary("Frac", lambda xp, a: a - xp.trunc(a), lambda xp, a, o: 1)


class Atan2(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return get_xp(a).arctan2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        r2 = a * a + b * b
        d = xp.where(r2 == 0, xp.zeros((), g.dtype), g / r2)  # 0 at the origin, as torch
        return d * b, -d * a

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        at, bt = ctx.lift(a, 0), ctx.lift(b, 1)
        origin = Tensor._wrap(a * a + b * b == 0)
        d = where(origin, 0.0, g / where(origin, 1.0, at * at + bt * bt))  # 0 at the origin
        return d * bt, -d * at


# ------------------------------------------------------------------ helpers

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)


def _erf(xp, x):
    """erf without SciPy, to the precision of x's dtype (CuPy's erf ufunc on the GPU).

    NumPy: float32 (half precision is computed in it, as torch does) by the fused blocks
    below (:func:`_erf32`), float64 by kernels/normal.py's polynomial fits (within 2 ulps
    of the exact value).
    """
    if x.dtype.itemsize < 4:
        return _erf(xp, x.astype(xp.float32)).astype(x.dtype)
    if xp is not np:  # one kernel instead of one per term
        return gpu_special("erf")(x)
    if x.dtype == np.float32:
        out = np.empty(x.shape, np.float32)
        _blocked(_erf32, out, x)
        return out
    return normal.erf(x)


def _erfc(xp, x):
    """1 - erf(x) to the precision of x's dtype, also where it is tiny (x large)."""
    if x.dtype.itemsize < 4:
        return _erfc(xp, x.astype(xp.float32)).astype(x.dtype)
    if xp is not np:
        return gpu_special("erfc")(x)
    if x.dtype == np.float32:
        out = np.empty(x.shape, np.float32)
        _blocked(_erfc32, out, x)
        return out
    return normal.erfc(x)


# float32 erf and erfc on NumPy, evaluated in float32 in a few in-place passes over
# cache-sized blocks (:func:`_blocked`): erfc(z) = t exp(P(t) - z^2), t = 1 / (1 + z/2)
# for z >= 0 (Numerical Recipes' form, refitted: within 4.6e-8 relative of erfc on
# [0, 10.1], past which float32's erfc is 0), and below |x| = 0.9 erf(x) = x + x Q(x^2)
# (2.2e-8 relative). Measured on 1e7+ points (tests/test_elementwise.py): erf within
# 1 ulp-ish of the correctly rounded value, erfc likewise with the exact z^2 below.
_ERFC32_P = (
    0.14294511385898157,
    -0.6701846949878709,
    1.1321834937486386,
    -0.6643896009428042,
    -0.10580990849349825,
    0.014301405665430922,
    0.03038460944736926,
    0.38747048833658043,
    0.9985430973846443,
    -1.2654439582887935,
)
_ERF32_Q = (
    -0.000588667785226587,
    0.004973097607508178,
    -0.02675332130564122,
    0.11281466172750645,
    -0.376124626433947,
    0.12837914541276071,
)
_ERF32_NEAR = 0.9  # |x| below: the series-like Q; above: 1 - erfc
# erf alone (not erfc) needs 1 - erfc only to an absolute 1e-8 or so: below |x| = 1 a
# longer x + x R(x^2) (relative error 1.2e-09), above it erfc = t exp(S(t) - x^2)
# with S of degree 5 (absolute error 3.7e-11) and x^2 rounded. Fitted (Lawson's
# weighted least squares) to mpmath values; within 1.5 ulps of the exact erf on 3e6
# points (the split at 0.9 gave 1.9, at 1.2 2.3: x R(x^2) rounds more as it grows), in
# 3 fewer polynomial terms than erfc's and without its exact split of x^2.
_ERF32_R = (
    7.8537247059198e-05,
    -0.0008010157359015085,
    0.005188324130512221,
    -0.02685381036066538,
    0.1128358511798042,
    -0.37612625822161166,
    0.12837916572652747,
)
_ERF32_S = (
    0.29045767766819114,
    -0.8823935312839981,
    0.6631829347527896,
    0.15513000770766977,
    1.0431980009206467,
    -1.2690006668887213,
)
_ERF32_SPLIT = 1.0
# values per block: the scratch of a block stays in the caches (L2 and L3), and each of the
# formula's 20-40 NumPy calls works on enough values to hide its 1-2 us of Python overhead
# (1e6 float32 values on one thread, erf / exact gelu / its gradient: 9.0 / 5.3 / 6.1 ms
# in blocks of 16 Ki, 7.3 / 4.2 / 5.0 ms in blocks of 64 Ki; 128 Ki and 256 Ki no faster)
_BLOCK = 1 << 16


def _blocked(fn: Callable[..., Any], out: np.ndarray, *arrays: np.ndarray) -> None:
    """``fn(*blocks, out=block)`` over aligned flat blocks of ``out`` (C-contiguous) and
    ``arrays`` (of its shape), split over threads (:func:`par.elementwise`): a formula of
    many in-place NumPy passes then runs on blocks that stay in cache, with small scratch."""

    def piece(*parts: np.ndarray, out: np.ndarray) -> None:
        flat = [np.ascontiguousarray(p).reshape(-1) for p in parts]
        dst = out.reshape(-1)
        for s in range(0, max(dst.size, 1), _BLOCK):
            e = s + _BLOCK
            fn(*(f[s:e] for f in flat), out=dst[s:e])

    par.elementwise(piece, out, *arrays)


def _horner(t: np.ndarray, coeffs: tuple, out: np.ndarray) -> np.ndarray:
    """``coeffs[0] t^n + ... + coeffs[n]`` into ``out``, in place."""
    np.multiply(t, np.float32(coeffs[0]), out=out)
    out += np.float32(coeffs[1])
    for c in coeffs[2:]:
        out *= t
        out += np.float32(c)
    return out


def _half_erfc_pos32(x: np.ndarray, scale: float, keep_gauss: bool = False) -> Any:
    """``erfc(|x| scale) / 2`` of a float32 block (with ``keep_gauss``, also
    ``exp(-(x scale)^2)``), by the fit above. exp(-z^2) here rounds z^2 (relative error
    z^2 2^-24 in the far tail: GELU's, where torch's own is 0 or cancelled)."""
    z = np.abs(x)
    if scale != 1:
        z *= np.float32(scale)
    t = np.multiply(z, np.float32(0.5))
    t += 1
    np.reciprocal(t, out=t)
    r = _horner(t, (*_ERFC32_P[:-1], _ERFC32_P[-1] + math.log(0.5)), np.empty_like(z))
    z *= z
    if keep_gauss:
        np.negative(z, out=z)
        np.exp(z, out=z)
        np.exp(r, out=r)
        r *= z
        r *= t
        return r, z
    r -= z
    np.exp(r, out=r)
    r *= t
    return r


def _erfc_pos32(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """erfc(z) for a float32 block of z >= 0 (or NaN), with z^2 exact: z = zh + zl with
    zh's low 12 bits cleared, z^2 = zh^2 (exact) + zl (z + zh)."""
    t = np.multiply(z, np.float32(0.5))
    t += 1
    np.reciprocal(t, out=t)
    _horner(t, _ERFC32_P, out)
    zh = np.bitwise_and(z.view(np.int32), np.int32(-4096)).view(np.float32)
    lo = np.subtract(z, zh)
    lo *= np.add(z, zh)
    out -= lo
    np.exp(out, out=out)
    out *= t
    np.multiply(zh, zh, out=zh)
    np.negative(zh, out=zh)
    np.exp(zh, out=zh)
    out *= zh
    return out


def _erf_small32(x: np.ndarray) -> np.ndarray:
    """erf(x) = x + x Q(x^2) for |x| < 0.9 (float32 block)."""
    q = _horner(np.multiply(x, x), _ERF32_Q, np.empty_like(x))
    q *= x
    q += x
    return q


def _erf32(x: np.ndarray, *, out: np.ndarray) -> None:
    """erf of a float32 block: 1 - erfc(|x|) from the short fit, its sign from x (the
    sign bit or-ed in: np.copysign costs 7 plain passes), x + x R(x^2) below 1.2."""
    z = np.abs(x)
    t = np.multiply(z, np.float32(0.5))
    t += 1
    np.reciprocal(t, out=t)
    _horner(t, _ERF32_S, out)
    small = np.less(z, np.float32(_ERF32_SPLIT))
    z *= z
    out -= z
    np.exp(out, out=out)
    out *= t  # erfc(|x|): 0 at inf (t = 0, exp(-inf) = 0), NaN stays
    np.subtract(1, out, out=out)
    sign = np.bitwise_and(x.view(np.int32), np.int32(-(2**31)))
    np.bitwise_or(out.view(np.int32), sign, out=out.view(np.int32))
    r = _horner(np.multiply(x, x), _ERF32_R, t)
    r *= x
    r += x
    _put(out, small, r)


def _erfc32(x: np.ndarray, *, out: np.ndarray) -> None:
    z = np.abs(x)
    np.minimum(z, np.float32(10.5), out=z)  # erfc = 0 (inf: no inf - inf in z^2)
    _erfc_pos32(z, out)
    _put(out, np.less(x, 0), np.subtract(2, out))
    small = _erf_small32(x)
    np.subtract(1, small, out=small)
    _put(out, np.less(z, np.float32(_ERF32_NEAR)), small)


# Acklam's rational approximation of the normal quantile (relative error below 1.2e-9)
_Q_A = (
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.357751867269,
    -30.66479806614716,
    2.506628277459239,
)
_Q_B = (
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
    1.0,
)
_Q_C = (
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
)
_Q_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416, 1.0)
_Q_LOW = 0.02425


def normal_quantile(xp: Any, p: Any) -> Any:
    """The standard normal quantile (inverse CDF) of probabilities ``p`` in (0, 1)."""

    def poly(coeffs: tuple, t: Any) -> Any:
        out = 0.0
        for c in coeffs:
            out = out * t + c
        return out

    p = xp.clip(p, 1e-300, 1 - 1e-16)
    q = p - 0.5
    r = q * q
    mid = q * poly(_Q_A, r) / poly(_Q_B, r)
    tail_p = xp.minimum(p, 1 - p)  # each tail from its own side
    t = xp.sqrt(-2 * xp.log(xp.maximum(tail_p, 1e-300)))
    tail = poly(_Q_C, t) / poly(_Q_D, t)
    return xp.where(tail_p < _Q_LOW, xp.where(p < 0.5, tail, -tail), mid)


def _erfinv(xp: Any, y: Any) -> Any:
    """The inverse of erf on (-1, 1) (+-inf at +-1, NaN outside): the normal quantile of
    (1 + y) / 2 scaled, then two Newton steps on erf (on erfc from the tail 1 - |y| where
    |y| >= 1/2), to the precision of y's dtype."""
    if y.dtype.itemsize < 4:
        return _erfinv(xp, y.astype(xp.float32)).astype(y.dtype)
    if xp is np:  # one polynomial per value (kernels/normal.py: 250x faster)
        return normal.erfinv(y)
    yw = y.astype(xp.float64)
    a = xp.abs(yw)
    # |y| >= 1/2 from its tail q = 1 - |y| (exact there): erf(x) - y has no digits left
    # near 1, erfc(x) - q keeps them all (erfinv(1 - 2^-53) was 0.3% off)
    q = xp.where(a >= 0.5, 1 - a, 0.5)
    far = -normal_quantile(xp, q / 2) / math.sqrt(2)
    x = normal_quantile(xp, (1 + yw) / 2) / math.sqrt(2)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(2):
            x = x - (_erf(xp, x) - yw) / (_TWO_OVER_SQRT_PI * xp.exp(-x * x))
            far = far + (_erfc(xp, far) - q) / (_TWO_OVER_SQRT_PI * xp.exp(-far * far))
    x = xp.where(a >= 0.5, xp.copysign(far, yw), x)
    x = xp.where(xp.abs(yw) == 1, xp.copysign(xp.inf, yw), x)
    x = xp.where(xp.abs(yw) > 1, xp.nan, x)
    return x.astype(y.dtype)


def _binary(fn: type[Function], a: Any, b: Any, floating: bool = False) -> Tensor:
    if isinstance(a, Tensor) and isinstance(b, Tensor):  # (comparisons do mix them)
        _dt.check_limited_promotion(a.array.dtype, b.array.dtype)
    a, b = promote(a, b, floating=floating)
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise InvalidType(
                f"{fn.__name__.lower()}: expected a tensor operand, got "
                f"{type(a).__name__} and {type(b).__name__}"
            )
        # scalar <op> tensor: the scalar becomes a 0-d array of the tensor's dtype
        return fn.apply(Tensor._wrap(_dt.scalar_array(get_xp(b.array), a, b.array.dtype)), b)
    return fn.apply(a, b)


def _tensor(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{name}: expected a Tensor, got {type(x).__name__}")
    return x


def _is_bool(x: Any) -> bool:
    return isinstance(x, bool | np.bool_) or (isinstance(x, Tensor) and x.array.dtype.kind == "b")


def _no_bool(name: str, *xs: Any) -> None:
    for x in xs:
        if isinstance(x, Tensor) and x.array.dtype.kind == "b":
            raise RuntimeError(f'{name}: "{name}" is not implemented for bool tensors')


# ------------------------------------------------------------------ functional API


def _scaled(op: str, alpha: Any, input: Any, other: Any) -> Any:
    """``alpha * other`` for add/sub, computed in the dtype of the result (as torch: an
    int8 ``other`` is not multiplied in int8, and alpha does not promote)."""
    alpha = _dt.number(alpha)  # (np.float32(1.5) is a float alpha, as torch's)
    if not isinstance(alpha, int | float):  # (bool is an int)
        raise InvalidType(f"{op}(): argument 'alpha' must be a number, not {type(alpha).__name__}")
    rdt = result_dtype(input, other)
    if isinstance(alpha, bool) and rdt.kind != "b":
        raise RuntimeError(f"{op}: Boolean alpha only supported for Boolean results")
    if isinstance(alpha, float) and rdt.kind != "f":
        raise RuntimeError(
            f"{op}: for integral input tensors, argument alpha must not be a floating point "
            f"number (got {alpha})"
        )
    if alpha == 1 and not isinstance(alpha, bool):  # (a float 1.0 alpha: checked, no product)
        return other
    if not isinstance(other, Tensor):
        return bool(other and alpha) if rdt.kind == "b" else other * alpha
    other = _cast(other, rdt)
    if rdt.kind == "b":  # bool arithmetic: alpha acts as bool(alpha)
        return other if alpha else logical_and(other, False)
    return mul(other, alpha)


def add(input: Any, other: Any, *, alpha: float = 1) -> Tensor:
    """``input + alpha * other``, with broadcasting and PyTorch's type promotion."""
    if type(alpha) is not int or alpha != 1:  # (1.0, True, np.float32(1) are checked)
        other = _scaled("add", alpha, input, other)
    return _binary(Add, input, other)


def sub(input: Any, other: Any, *, alpha: float = 1) -> Tensor:
    """``input - alpha * other``; bool tensors are refused, as in PyTorch."""
    if _is_bool(input) or _is_bool(other):
        raise RuntimeError(
            "sub: subtraction, the `-` operator, with a bool tensor is not supported; "
            "to invert a mask use the `~` or `logical_not()` operator instead"
        )
    if type(alpha) is not int or alpha != 1:
        other = _scaled("sub", alpha, input, other)
    return _binary(Sub, input, other)


def mul(input: Any, other: Any) -> Tensor:
    return _binary(Mul, input, other)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give float32), or ``rounding_mode='floor'`` / ``'trunc'``,
    which keep the promoted dtype; integer division by zero raises, as in PyTorch."""
    if rounding_mode is None:
        return _binary(Div, input, other, floating=True)
    if rounding_mode not in ("floor", "trunc"):
        raise InvalidValue(
            f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}"
        )
    a, b = promote(input, other)
    ref = a if isinstance(a, Tensor) else b
    if ref.array.dtype.kind == "b":
        raise RuntimeError(f"div: rounding_mode={rounding_mode!r} is not implemented for bool")
    if not isinstance(a, Tensor):
        a = Tensor._wrap(_dt.scalar_array(get_xp(b.array), a, b.array.dtype))
    bv = b.array if isinstance(b, Tensor) else b
    if ref.array.dtype.kind in "iu":
        if (get_xp(a.array).asarray(bv) == 0).any():
            raise RuntimeError("ZeroDivisionError: integer division by zero (div)")
    return Step.apply(a, b, _floor_div if rounding_mode == "floor" else _trunc_div)


def _floor_div(a: Any, b: Any) -> Any:
    xp = get_xp(a)
    return xp.floor_divide(a, b)


def _trunc_div(a: Any, b: Any) -> Any:
    xp = get_xp(a)
    if a.dtype.kind == "f":
        return xp.trunc(a / b).astype(a.dtype, copy=False)
    q = xp.floor_divide(a, b)
    if a.dtype.kind == "i":  # floor and trunc differ on inexact negative quotients
        q = q + ((q < 0) & (q * b != a)).astype(q.dtype)
    return q


subtract, multiply, divide, true_divide = sub, mul, div, div


def floor_divide(input: Any, other: Any) -> Tensor:
    """``input // other``, rounding toward minus infinity (PyTorch's floor_divide)."""
    return div(input, other, rounding_mode="floor")


def remainder(input: Any, other: Any) -> Tensor:
    """Python's modulus ``input % other``: the result has the sign of ``other``."""
    return _remainder(input, other, True, "remainder")


def fmod(input: Any, other: Any) -> Tensor:
    """C's ``fmod``: the result has the sign of ``input``."""
    return _remainder(input, other, False, "fmod")


def _remainder(input: Any, other: Any, floor: bool, name: str) -> Tensor:
    a, b = promote(input, other)
    ref = a if isinstance(a, Tensor) else b
    if not isinstance(a, Tensor):
        a = Tensor._wrap(_dt.scalar_array(get_xp(b.array), a, b.array.dtype))
    _no_bool(name, a)
    if ref.array.dtype.kind in "iu":
        bv = b.array if isinstance(b, Tensor) else b
        if (get_xp(a.array).asarray(bv) == 0).any():
            raise RuntimeError(f"ZeroDivisionError: integer modulo by zero ({name})")
    return Remainder.apply(a, b, floor)


def pow(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent``; integer tensors to negative integer scalar powers are refused."""
    if isinstance(exponent, np.generic):  # NumPy scalars as Python numbers (torch's rule)
        exponent = _dt.number(exponent)
    if isinstance(input, np.generic):
        input = _dt.number(input)
    if isinstance(input, Tensor) and isinstance(exponent, bool) and _is_bool(input):
        return Tensor._wrap(input.array | (not exponent))  # x ** True = x, x ** False = True
    if (
        isinstance(input, Tensor)
        and isinstance(exponent, int | float)
        and not isinstance(exponent, bool)
    ):
        kind = input.array.dtype.kind
        if isinstance(exponent, float) and kind != "f":
            input = input.to(_dt.get_default_dtype())  # ints: the default float dtype
        elif kind in "iub":
            if exponent < 0:
                raise RuntimeError("pow: integers to negative integer powers are not allowed")
            if kind == "b":
                input = input.long()
        return Pow.apply(input, exponent)
    if _is_bool(input) and _is_bool(exponent):  # bool ** True (a scalar) was handled above
        raise RuntimeError('pow: "pow" is not implemented for bool')
    return _binary(Pow, input, exponent)


def _no_number(op: str, input: Any, other: Any) -> None:
    """maximum/minimum take tensors only, as torch's (whose TypeError this is): a number
    operand such as -1 would wrap into a uint8 tensor's dtype and win."""
    for pos, name, v in ((1, "input", input), (2, "other", other)):
        if isinstance(v, bool | int | float | np.generic):
            raise InvalidType(
                f"{op}(): argument '{name}' (position {pos}) must be Tensor, not "
                f"{type(v).__name__} (use {op}(x, dl.tensor(v)), or clamp for a number bound)"
            )


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum; NaN propagates; ties split the gradient evenly."""
    _no_number("maximum", input, other)
    return _binary(Maximum, input, other)


def logaddexp(input: Any, other: Any) -> Tensor:
    """``log(exp(input) + exp(other))`` without overflow (floating-point inputs)."""
    a, b = promote(input, other)
    for t in (a, b):
        if isinstance(t, Tensor):
            float_only(t, "logaddexp")
    return _binary(LogAddExp, a, b)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum; NaN propagates; ties split the gradient evenly."""
    _no_number("minimum", input, other)
    return _binary(Minimum, input, other)


def neg(input: Tensor) -> Tensor:
    x = _tensor(input, "neg")
    if x.array.dtype.kind == "b":
        raise RuntimeError(
            "neg: negation, the `-` operator, on a bool tensor is not supported; "
            "use the `~` or `logical_not()` operator instead"
        )
    return Neg.apply(x)


def abs(input: Tensor) -> Tensor:
    x = _tensor(input, "abs")
    _no_bool("abs", x)
    return Abs.apply(x)


negative, absolute = neg, abs


def _float_unary(fn: type[Function], x: Tensor, name: str) -> Tensor:
    x = _tensor(x, name)
    if x.array.dtype.kind != "f":
        x = x.to(_dt.get_default_dtype())  # ints: the default float dtype
    return fn.apply(x)


def exp(input: Tensor) -> Tensor:
    return _float_unary(Exp, input, "exp")


def log(input: Tensor) -> Tensor:
    return _float_unary(Log, input, "log")


def sqrt(input: Tensor) -> Tensor:
    return _float_unary(Sqrt, input, "sqrt")


def rsqrt(input: Tensor) -> Tensor:
    return pow(_float_unary(Sqrt, input, "rsqrt"), -1)


def sin(input: Tensor) -> Tensor:
    return _float_unary(Sin, input, "sin")


def cos(input: Tensor) -> Tensor:
    return _float_unary(Cos, input, "cos")


def tanh(input: Tensor) -> Tensor:
    return _float_unary(Tanh, input, "tanh")


def sigmoid(input: Tensor) -> Tensor:
    return _float_unary(Sigmoid, input, "sigmoid")


def _float_unary_op(fn: type[Function], name: str) -> Callable[[Tensor], Tensor]:
    def op(input: Tensor) -> Tensor:
        return _float_unary(fn, input, name)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (integer inputs give float32), differentiable."
    return op


log1p = _float_unary_op(Log1p, "log1p")
expm1 = _float_unary_op(Expm1, "expm1")
log2 = _float_unary_op(Log2, "log2")
log10 = _float_unary_op(Log10, "log10")
exp2 = _float_unary_op(Exp2, "exp2")
tan = _float_unary_op(Tan, "tan")
asin = arcsin = _float_unary_op(Asin, "asin")
acos = arccos = _float_unary_op(Acos, "acos")
atan = arctan = _float_unary_op(Atan, "atan")
sinh = _float_unary_op(Sinh, "sinh")
cosh = _float_unary_op(Cosh, "cosh")
erf = _float_unary_op(Erf, "erf")
erfc = _float_unary_op(Erfc, "erfc")
erfinv = _float_unary_op(Erfinv, "erfinv")
asinh = arcsinh = _float_unary_op(Asinh, "asinh")
acosh = arccosh = _float_unary_op(Acosh, "acosh")
atanh = arctanh = _float_unary_op(Atanh, "atanh")


class FMax(Function):
    """fmax/fmin (``pick`` is the NumPy ufunc): NaN loses to a number; the gradient goes
    whole to the operand taken (to ``a`` at ties, as torch)."""

    @staticmethod
    def forward(ctx, a, b, pick):
        ctx.save_for_backward(a, b)
        ctx.is_max = pick == "fmax"
        return getattr(get_xp(a), pick)(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        took_a = ((a >= b) if ctx.is_max else (a <= b)) | xp.isnan(b)
        zero = xp.zeros((), g.dtype)
        return xp.where(took_a, g, zero), xp.where(took_a, zero, g), None

    backward_graph = staticmethod(higher_order.piecewise_linear)


def fmax(input: Any, other: Any) -> Tensor:
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    a, b = promote(input, other)
    return FMax.apply(a, b, "fmax")


def fmin(input: Any, other: Any) -> Tensor:
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    a, b = promote(input, other)
    return FMax.apply(a, b, "fmin")


class CopySign(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = get_xp(a).copysign(a, b)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_tensors
        xp = get_xp(g)
        # +-1 where the sign flipped or not; 0 at a == 0, as torch
        ratio = xp.where(a == 0, xp.zeros((), g.dtype), out / a)
        return g * ratio, xp.zeros_like(g)  # the sign source gets a zero gradient

    backward_graph = staticmethod(higher_order.piecewise_linear)


def copysign(input: Any, other: Any) -> Tensor:
    """``|input|`` with the sign of ``other`` (of its sign bit: -0.0 counts as negative)."""
    return _binary(CopySign, input, other, floating=True)


def signbit(input: Tensor) -> Tensor:
    """Whether the sign bit is set (True for -0.0 and negative values)."""
    x = _tensor(input, "signbit")
    return Tensor._wrap(get_xp(x.array).signbit(x.array))


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """0 where ``input < 0`` (or NaN), ``values`` where it is 0, 1 where it is positive. Not
    differentiable (torch neither); ``input`` and ``values`` share one dtype."""
    x = _tensor(input, "heaviside")
    v = _tensor(values, "heaviside")
    if x.array.dtype != v.array.dtype:
        raise RuntimeError(
            f"heaviside: input ({x.dtype}) and values ({v.dtype}) must have the same dtype"
        )
    a, b = x.array, v.array
    xp = get_xp(a)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError as e:
        raise broadcast_error("heaviside", e, a, b) from None
    return Tensor._wrap(xp.where(a == 0, b, (a > 0).astype(a.dtype)).astype(a.dtype))


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """``input * 2 ** other`` (a float result; differentiable in ``input``)."""
    x = _tensor(input, "ldexp")
    if x.array.dtype.kind != "f":
        x = x.to(result_dtype(x, 1.0))
    two = Tensor._wrap(_dt.scalar_array(get_xp(x.array), 2.0, x.array.dtype))
    return mul(x, pow(two, _tensor(other, "ldexp")))  # 2 ** other in x's dtype


def float_power(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent`` computed in float64, as torch.float_power."""
    a = input.double() if isinstance(input, Tensor) else float(input)
    b = exponent.double() if isinstance(exponent, Tensor) else float(exponent)
    if not isinstance(a, Tensor):
        a = Tensor._wrap(get_xp(b.array).asarray(a, dtype=np.float64))
    return pow(a, b)


class LogAddExp2(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return get_xp(a).logaddexp2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        return g * _sigmoid(xp, (a - b) * _LN2), g * _sigmoid(xp, (b - a) * _LN2)

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        d = (ctx.lift(a, 0) - ctx.lift(b, 1)) * _LN2
        return g * sigmoid(d), g * sigmoid(-d)


def logaddexp2(input: Any, other: Any) -> Tensor:
    """``log2(2**input + 2**other)`` without overflow (floating-point inputs)."""
    a, b = promote(input, other)
    for t in (a, b):
        if isinstance(t, Tensor):
            float_only(t, "logaddexp2")
    return _binary(LogAddExp2, a, b)


def atan2(input: Tensor, other: Any) -> Tensor:
    """Elementwise ``atan(input / other)`` with the quadrant of (other, input)."""
    return _binary(Atan2, input, other, floating=True)


arctan2 = atan2


def square(input: Tensor) -> Tensor:
    """``input * input``; bool inputs give int64, as in PyTorch."""
    x = _tensor(input, "square")
    if x.array.dtype.kind == "b":
        x = x.long()
    return mul(x, x)


def reciprocal(input: Tensor) -> Tensor:
    """``1 / input`` (integer inputs give float32)."""
    return div(1.0, _tensor(input, "reciprocal"))


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    if _tensor(input, "relu").array.dtype.kind == "b":
        raise RuntimeError("relu: bool inputs are not supported")
    return _activation(ReLU, input, inplace, "relu")


def float_only(input: Any, op: str) -> Tensor:
    """``input`` as a tensor, refusing integer and bool ones (torch has no such kernels for
    the smooth activations; computing them would wrap, truncate or change dtypes)."""
    x = _tensor(input, op)
    if x.array.dtype.kind != "f":
        raise NotImplementedError(
            f"{op}: not implemented for {x.dtype} input; convert it with .float() first"
        )
    return x


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    x = float_only(input, "leaky_relu")
    return _activation(LeakyReLU, x, inplace, "leaky_relu", float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _activation(ELU, float_only(input, "elu"), inplace, "elu", float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise InvalidValue(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(float_only(input, "gelu"), approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _activation(SiLU, float_only(input, "silu"), inplace, "silu")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(float_only(input, "softplus"), float(beta), float(threshold))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return _activation(Mish, float_only(input, "mish"), inplace, "mish")


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``."""
    return _activation(Hardswish, float_only(input, "hardswish"), inplace, "hardswish")


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, stable for large ``|x|``."""
    return LogSigmoid.apply(float_only(input, "logsigmoid"))


def _activation(fn: type[Function], input: Tensor, inplace: bool, name: str, *args: Any) -> Tensor:
    """Apply ``fn``; with ``inplace`` the result replaces the input (Tensor._inplace)."""
    _tensor(input, name)
    if not inplace:
        return fn.apply(input, *args)
    return input._inplace(name + "_", lambda t: fn.apply(t, *args))


def _is_real(v: Any) -> bool:
    return isinstance(v, bool | int | float | np.bool_ | np.integer | np.floating)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Limit values to ``[min, max]`` (numbers or broadcastable tensors). NaN stays NaN;
    where ``min > max`` the result is ``max``, as in PyTorch. The gradient passes where
    ``min <= input <= max``."""
    input = _tensor(input, "clamp")
    if isinstance(min, np.generic) or isinstance(max, np.generic):
        min, max = _dt.number(min), _dt.number(max)  # NumPy scalars as Python numbers
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of min and max must be given")
    for name, v in (("min", min), ("max", max)):
        if not (v is None or isinstance(v, Tensor) or _is_real(v)):
            raise InvalidType(
                f"clamp(): argument '{name}' must be a number or a Tensor, not {type(v).__name__}"
            )
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        check_broadcast("clamp", input, min, max)
        dt = result_dtype(input, *(b for b in (min, max) if b is not None))
        xp = get_xp(input.array)

        def bound(b: Any) -> Tensor | None:
            if b is None or isinstance(b, Tensor):
                return b if b is None else _cast(b, dt)
            return Tensor._wrap(_dt.scalar_array(xp, b, dt))

        return ClampTensor.apply(_cast(input, dt), bound(min), bound(max))
    if input.array.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        input = input.to(_dt.get_default_dtype())  # ints: the default float dtype
    if input.array.dtype.kind in "iu":  # bounds in the tensor's type: -1 wraps into uint8
        dt = input.array.dtype
        min, max = (None if v is None else _dt.fill_value(v, dt, "clamp") for v in (min, max))
    return Clamp.apply(input, min, max)


clip = clamp


def clamp_min(input: Tensor, min: Any) -> Tensor:
    return clamp(input, min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    return clamp(input, max=max)


def where(condition: Tensor, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` holds, else ``other`` (tensors or numbers, broadcast).

    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``.
    """
    cond = _tensor(condition, "where")
    if input is None and other is None:
        from darklib.ops.indexing import nonzero

        return nonzero(cond, as_tuple=True)
    if cond.array.dtype.kind != "b":
        if cond.array.dtype != np.uint8:  # (uint8 masks: accepted, as torch still does)
            raise InvalidType(
                f"where(): expected condition to be a boolean tensor, but got a tensor with "
                f"dtype {cond.dtype} (compare it, e.g. condition != 0, or use .bool())"
            )
        cond = Tensor._wrap(cond.array != 0)
    input, other = _dt.number(input), _dt.number(other)
    for v in (input, other):  # a number must fit the result's dtype (300 into uint8 raises)
        if isinstance(v, bool | int | float):
            _dt.fill_value(v, result_dtype(input, other), "where", to_inf=True)
    a, b = promote(input, other)
    xp = get_xp(cond.array)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        dt = result_dtype(a, b)
        a, b = (Tensor._wrap(_dt.scalar_array(xp, v, dt)) for v in (a, b))
    if not isinstance(a, Tensor):
        a = Tensor._wrap(_dt.scalar_array(xp, a, b.array.dtype))
    if not isinstance(b, Tensor):
        b = Tensor._wrap(_dt.scalar_array(xp, b, a.array.dtype))
    return Where.apply(cond, a, b)


def check_broadcast(name: str, *operands: Any) -> None:
    """Raise, naming ``name`` (the op the user called) and the shapes, when the tensors
    among ``operands`` do not broadcast; composite ops check first so that the error does
    not name the inner op that would have failed."""
    arrays = [x.array for x in operands if isinstance(x, Tensor)]
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError as e:
        raise broadcast_error(name, e, *arrays) from None


def lerp(input: Tensor, end: Tensor, weight: Any) -> Tensor:
    """``input + weight * (end - input)``, as torch computes it: from ``end`` where
    ``|weight| >= 0.5`` (``end - (end - input) * (1 - weight)``), so that weight 1 gives
    ``end`` exactly (``1e20 + (1 - 1e20)`` is 0) and an infinite input stays infinite."""
    check_broadcast("lerp", input, end, weight)
    weight = _dt.number(weight)
    diff = sub(end, input)
    if not isinstance(weight, Tensor):
        if -0.5 < weight < 0.5:
            return add(input, mul(weight, diff))
        return sub(end, mul(diff, 1 - weight))
    near_end = ge(abs(weight), 0.5)
    return where(near_end, sub(end, mul(diff, sub(1, weight))), add(input, mul(weight, diff)))


def _value_for(rdt: np.dtype, value: Any) -> Any:
    """addcmul/addcdiv's ``value`` in the result's kind (torch casts it: an integer result
    takes ``int(value)``)."""
    return int(value) if rdt.kind in "iu" else value


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: float = 1) -> Tensor:
    """``input + value * tensor1 * tensor2``, computed in the result's dtype."""
    check_broadcast("addcmul", input, tensor1, tensor2)
    rdt = result_dtype(input, tensor1, tensor2)
    if rdt.kind == "b":
        raise NotImplementedError("addcmul: not implemented for bool tensors")
    t1, t2 = _cast(tensor1, rdt), _cast(tensor2, rdt)
    return add(input, mul(mul(t1, _value_for(rdt, value)), t2))


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: float = 1) -> Tensor:
    """``input + value * tensor1 / tensor2``; two integer tensors are refused, as torch."""
    kinds = [t.array.dtype.kind if isinstance(t, Tensor) else "f" for t in (tensor1, tensor2)]
    if all(k in "biu" for k in kinds):
        raise RuntimeError(
            "addcdiv: integer division is not supported: tensor1 and tensor2 are both "
            "integer tensors (write input + value * (tensor1 / tensor2) for a true division)"
        )
    check_broadcast("addcdiv", input, tensor1, tensor2)
    rdt = result_dtype(input, tensor1, tensor2)
    t1, t2 = _cast(tensor1, rdt), _cast(tensor2, rdt)
    return add(input, div(mul(t1, _value_for(rdt, value)), t2))


def _float_arg(v: Any, op: str, name: str) -> Any:
    """A float argument: a real number, a 0-d tensor, or None (passed on as None)."""
    if isinstance(v, Tensor) and v.ndim == 0:
        v = v.item()
    if v is None or isinstance(v, bool | int | float | np.bool_ | np.integer | np.floating):
        return v
    raise InvalidType(f"{op}(): argument '{name}' must be float, not {type(v).__name__}")


def nan_to_num(
    input: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """Replace NaN by ``nan`` and infinities by ``posinf``/``neginf`` (default: the dtype's
    largest and lowest finite values). The gradient passes where the input was finite."""
    x = _tensor(input, "nan_to_num")
    nan = 0.0 if nan is None else nan
    nan, posinf, neginf = (
        _float_arg(v, "nan_to_num", name)
        for v, name in ((nan, "nan"), (posinf, "posinf"), (neginf, "neginf"))
    )
    if x.array.dtype.kind != "f":
        return x.clone()
    info = np.finfo(x.array.dtype)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    xp = get_xp(x.array)
    mask = Tensor._wrap(xp.isfinite(x.array))

    def fill() -> Any:  # values beyond the dtype's range become +-inf, silently as torch
        f = xp.where(xp.isnan(x.array), nan, xp.where(x.array > 0, hi, lo))
        return f.astype(x.array.dtype)

    return Where.apply(mask, x, Tensor._wrap(_dt.silent(fill)))


# comparisons and other non-differentiable elementwise ops


class ZeroGradient(Function):
    """``value`` in the graph of ``like`` (and of the ``others``) with a zero gradient: what
    an in-place comparison or logical op (lt_, eq_, logical_and_, ...) makes of a tensor
    when it or an operand requires grad, as torch's ``LtBackward0`` (the tensor keeps
    requiring grad; zeros flow back)."""

    @staticmethod
    def forward(ctx, like, value, *others):
        ctx.shapes = [(a.shape, a.dtype) for a in (like, *others)]
        return value

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        zeros = [xp.zeros(shape, dt) for shape, dt in ctx.shapes]
        return zeros[0], None, *zeros[1:]

    @staticmethod
    def backward_graph(ctx, g):
        xp = get_xp(g.array)
        zeros = [Tensor._wrap(xp.zeros(shape, dt)) for shape, dt in ctx.shapes]
        return zeros[0], None, *zeros[1:]


def _compare(op: str, a: Any, b: Any) -> Tensor:
    a, b = promote(a, b)
    if not isinstance(a, Tensor):
        a, b, op = b, a, _FLIP[op]
    bb = b.array if isinstance(b, Tensor) else b
    if isinstance(b, Tensor) and type(bb) is not type(a.array):
        raise RuntimeError(
            f"comparison: expected both tensors on the same device, got {a.device} and {b.device}"
        )
    try:  # (x == 1e300: no overflow warning)
        return Tensor._wrap(_dt.silent(_CMP[op], a.array, bb))
    except ValueError as e:
        raise broadcast_error(op, e, a.array, bb) from None


_CMP = {
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
}
_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


def eq(input: Any, other: Any) -> Tensor:
    return _compare("eq", input, other)


def ne(input: Any, other: Any) -> Tensor:
    return _compare("ne", input, other)


def lt(input: Any, other: Any) -> Tensor:
    return _compare("lt", input, other)


def le(input: Any, other: Any) -> Tensor:
    return _compare("le", input, other)


def gt(input: Any, other: Any) -> Tensor:
    return _compare("gt", input, other)


def ge(input: Any, other: Any) -> Tensor:
    return _compare("ge", input, other)


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def isclose(
    input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> Tensor:
    """``|input - other| <= atol + rtol * |other|`` elementwise (bool); infinities are
    close only to themselves, whatever the tolerances (as torch)."""
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"isclose: rtol ({rtol}) and atol ({atol}) must be non-negative")
    _tensor(input, "isclose")
    if isinstance(other, Tensor) and other.array.dtype != input.array.dtype:
        raise RuntimeError(  # as torch: no promotion, int64 vs float32 is a mistake
            f"isclose: input is {input.array.dtype.name} but other is "
            f"{other.array.dtype.name}; they must have the same dtype"
        )
    a, b = promote(input, other)
    bb = b.array if isinstance(b, Tensor) else b
    xp = get_xp(a.array)
    try:
        np.broadcast_shapes(a.array.shape, np.shape(bb))
    except ValueError as e:
        raise broadcast_error("isclose", e, a.array, bb) from None
    if not (math.isinf(atol) or math.isinf(rtol)):
        return Tensor._wrap(xp.isclose(a.array, bb, rtol=rtol, atol=atol, equal_nan=equal_nan))
    # an infinite tolerance: every finite pair is close (NumPy would also match inf to 0)
    same = a.array == bb
    if equal_nan:
        same = same | (xp.isnan(a.array) & xp.isnan(bb))
    return Tensor._wrap(xp.where(xp.isfinite(a.array) & xp.isfinite(bb), True, same))


def allclose(
    input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """True when :func:`isclose` holds everywhere."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and the same values."""
    a, b = _tensor(input, "equal"), _tensor(other, "equal")
    if a.array.shape != b.array.shape:
        return False
    return bool((a.array == b.array).all())


def _step_unary(name: str, op: Callable) -> Callable[[Tensor], Tensor]:
    def fn(input: Tensor) -> Tensor:
        x = _tensor(input, name)
        kind = x.array.dtype.kind
        if kind in "iub":
            if kind == "b":
                raise RuntimeError(f'{name}: "{name}" is not implemented for bool tensors')
            return Tensor._wrap(x.array.copy())  # integers are already whole
        return Step.apply(x, None, op)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name}; its gradient is zero (the output stays in the graph)."
    return fn


floor = _step_unary("floor", lambda a: get_xp(a).floor(a))
ceil = _step_unary("ceil", lambda a: get_xp(a).ceil(a))
trunc = fix = _step_unary("trunc", lambda a: get_xp(a).trunc(a))
_round0 = _step_unary("round", lambda a: get_xp(a).round(a))


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even (as PyTorch), optionally to ``decimals`` places; zero gradient."""
    if decimals == 0:
        return _round0(input)
    x = _tensor(input, "round")
    if x.array.dtype.kind != "f":
        return Tensor._wrap(get_xp(x.array).round(x.array, decimals))

    def rounded(a: Any) -> Any:  # half precision scales in float32 (10**d * x overflows)
        wide = a.astype(get_xp(a).float32) if a.dtype.itemsize < 4 else a
        return get_xp(a).round(wide, decimals).astype(a.dtype, copy=False)

    return Step.apply(x, None, rounded)


def _sign(a: Any) -> Any:
    xp = get_xp(a)
    out = xp.sign(a)
    if a.dtype.kind == "f":  # NaN maps to 0, as in PyTorch
        out = xp.where(xp.isnan(a), 0, out).astype(a.dtype, copy=False)
    return out


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by sign (NaN gives 0, bool stays bool, as in PyTorch); zero gradient."""
    x = _tensor(input, "sign")
    if x.array.dtype.kind == "b":
        return Tensor._wrap(x.array.copy())
    if x.array.dtype.kind != "f":
        return Tensor._wrap(_sign(x.array))
    return Step.apply(x, None, _sign)


sgn = sign


def frac(input: Tensor) -> Tensor:
    """``input - trunc(input)``; the gradient is 1."""
    x = _tensor(input, "frac")
    if x.array.dtype.kind != "f":
        raise RuntimeError(f"frac: expected a floating-point tensor, got {x.dtype}")
    return Frac.apply(x)


def _flag_unary(name: str):
    def op(input: Tensor) -> Tensor:
        arr = _tensor(input, name).array
        return Tensor._wrap(getattr(get_xp(arr), name)(arr))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (a bool tensor)."
    return op


isnan = _flag_unary("isnan")
isinf = _flag_unary("isinf")
isfinite = _flag_unary("isfinite")


def logical_not(input: Tensor) -> Tensor:
    return Tensor._wrap(~_tensor(input, "logical_not").array.astype(bool))


def _logical(name: str):
    def op(input: Tensor, other: Any) -> Tensor:
        a = _tensor(input, name).array
        b = other.array if isinstance(other, Tensor) else other
        try:
            return Tensor._wrap(getattr(get_xp(a), name)(a, b))
        except ValueError as e:
            raise broadcast_error(name, e, a, b) from None

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name.replace('_', ' ')} of the truth values (a bool tensor)."
    return op


logical_and = _logical("logical_and")
logical_or = _logical("logical_or")
logical_xor = _logical("logical_xor")


def _bitwise(name: str, ufunc: str | None = None, kinds: str = "iub"):
    """Bitwise ops on integer (and bool) tensors: ``&``, ``|``, ``^``, ``<<``, ``>>``."""

    def op(input: Any, other: Any) -> Tensor:
        a, b = promote(input, other)
        ref = a if isinstance(a, Tensor) else b
        if ref.array.dtype.kind not in kinds:
            raise RuntimeError(f'{name}: "{name}" is not implemented for {ref.dtype}')
        av = a.array if isinstance(a, Tensor) else a
        bv = b.array if isinstance(b, Tensor) else b
        try:
            return Tensor._wrap(getattr(get_xp(ref.array), ufunc or name)(av, bv))
        except ValueError as e:
            raise broadcast_error(name, e, av, bv) from None

    op.__name__ = op.__qualname__ = name
    return op


bitwise_and = _bitwise("bitwise_and")
bitwise_or = _bitwise("bitwise_or")
bitwise_xor = _bitwise("bitwise_xor")
bitwise_left_shift = _bitwise("bitwise_left_shift", "left_shift", "iu")
bitwise_right_shift = _bitwise("bitwise_right_shift", "right_shift", "iu")


def bitwise_not(input: Tensor) -> Tensor:
    """``~input``: logical not for bool tensors, two's complement for integers."""
    arr = _tensor(input, "bitwise_not").array
    if arr.dtype.kind not in "iub":
        raise RuntimeError(f'bitwise_not: "bitwise_not" is not implemented for {input.dtype}')
    return Tensor._wrap(get_xp(arr).invert(arr))


class Logit(Function):
    @staticmethod
    def forward(ctx, x, eps):
        xp = get_xp(x)
        ctx.save_for_backward(x)
        ctx.eps = eps
        z = x if eps is None else xp.clip(x, eps, 1 - eps)
        return xp.log(z / (1 - z))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xp = get_xp(g)
        out = g / (x * (1 - x))
        if ctx.eps is None:  # outside [0, 1] the log is NaN, and so is its slope
            return xp.where((x < 0) | (x > 1), xp.nan, out).astype(g.dtype), None
        # inputs the clamp moved get no gradient (those on its bounds still do, as torch)
        clamped = (x < ctx.eps) | (x > 1 - ctx.eps)
        return xp.where(clamped, xp.zeros((), out.dtype), out), None

    @staticmethod
    def backward_graph(ctx, g):
        (x,) = ctx.saved_tensors
        xt = ctx.lift(x, 0)
        out = g / (xt * (1 - xt))
        if ctx.eps is None:
            return where(Tensor._wrap((x < 0) | (x > 1)), math.nan, out), None
        return where(Tensor._wrap((x < ctx.eps) | (x > 1 - ctx.eps)), 0.0, out), None


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``, with ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given."""
    x = _tensor(input, "logit")
    if x.array.dtype.kind != "f":
        x = x.to(_dt.get_default_dtype())  # ints: the default float dtype
    return Logit.apply(x, None if eps is None else float(eps))


class Hypot(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = get_xp(a).hypot(a, b)  # scaled: no overflow or underflow; hypot(inf, nan) = inf
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        # (NaN at the origin, as torch)
        scale = g / out
        return a * scale, b * scale

    @staticmethod
    def backward_graph(ctx, g):
        a, b, out = ctx.saved_tensors
        scale = g / ctx.lift_output(out)
        return ctx.lift(a, 0) * scale, ctx.lift(b, 1) * scale


def hypot(input: Tensor, other: Any) -> Tensor:
    """``sqrt(input**2 + other**2)`` elementwise, without overflow or underflow."""
    return _binary(Hypot, input, other, floating=True)


class XLogY(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = get_xp(a)
        ctx.save_for_backward(a, b)
        return xp.where((a == 0) & ~xp.isnan(b), 0, a * xp.log(b)).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        na, nb = ctx.needs_input_grad
        # log(y) even at x == 0 (torch zeroes it only where x == 0 and y <= 0)
        ga = g * xp.where((a == 0) & (b <= 0), 0, xp.log(b)) if na else None
        gb = g * a / b if nb else None
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        at, bt = ctx.lift(a, 0), ctx.lift(b, 1)
        ga = g * where(Tensor._wrap((a == 0) & (b <= 0)), 0.0, log(bt)) if na else None
        gb = g * at / bt if nb else None
        return ga, gb


def xlogy(input: Any, other: Any) -> Tensor:
    """``input * log(other)``, and 0 where ``input`` is 0 (unless ``other`` is NaN)."""
    return _binary(XLogY, input, other, floating=True)
