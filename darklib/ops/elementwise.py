"""Elementwise ops: arithmetic, unary math, activations, clamp, where, comparisons.

Each op is one Function over raw arrays; broadcasting is undone by the autograd engine.
Functional wrappers (lowercase) handle dtype promotion and Python scalars.
"""

from __future__ import annotations

import math
from typing import Any

from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.ops._promote import promote
from darklib.tensor import Tensor

# ------------------------------------------------------------------ binary arithmetic


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (g * b if na else None), (g * a if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = g / b if na else None
        gb = -g * a / (b * b) if nb else None
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
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
                with _quiet(xp):
                    ga = g * xp.where(b == 0, 0, b * a ** (b - 1))
        if nb:
            xp = get_xp(out)
            with _quiet(xp):
                gb = g * xp.where((a == 0) & (b >= 0), 0, out * xp.log(a))
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
        return _minmax_grads(ctx, g, a > b, a == b)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = get_xp(a)
        ctx.save_for_backward(a, b)
        return xp.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _minmax_grads(ctx, g, a < b, a == b)


def _minmax_grads(ctx, g, a_wins, tie):
    # Ties split the gradient evenly, as PyTorch does.
    dt = g.dtype
    wa = a_wins.astype(dt) + 0.5 * tie.astype(dt)
    na, nb = ctx.needs_input_grad
    return (g * wa if na else None), (g * (1 - wa) if nb else None)


# ------------------------------------------------------------------ unary math


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_xp(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * get_xp(a).sign(a)


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


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        xp = get_xp(a)
        with _quiet(xp):
            return xp.log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        with _quiet(xp):
            out = xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_xp(a).sin(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * get_xp(a).cos(a)


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_xp(a).cos(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return -g * get_xp(a).sin(a)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = get_xp(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        # tanh form: no overflow for large |a|, one transcendental per element
        out = get_xp(a).tanh(a * 0.5)
        out += 1
        out *= 0.5
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


class ReLU(Function):
    @staticmethod
    def forward(ctx, a):
        out = get_xp(a).maximum(a, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (out > 0)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, a, slope):
        ctx.save_for_backward(a)
        ctx.slope = slope
        return get_xp(a).where(a > 0, a, a * slope)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return get_xp(a).where(a > 0, g, g * ctx.slope), None


class ELU(Function):
    @staticmethod
    def forward(ctx, a, alpha):
        xp = get_xp(a)
        neg = alpha * xp.expm1(xp.minimum(a, 0))
        ctx.save_for_backward(a, neg)
        ctx.alpha = alpha
        return xp.where(a > 0, a, neg)

    @staticmethod
    def backward(ctx, g):
        a, neg = ctx.saved_tensors
        return get_xp(a).where(a > 0, g, g * (neg + ctx.alpha)), None


class GELU(Function):
    @staticmethod
    def forward(ctx, a, approximate):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.approximate = approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (a + 0.044715 * a**3)
            return 0.5 * a * (1 + xp.tanh(inner))
        return 0.5 * a * (1 + _erf(xp, a * _INV_SQRT2))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        if ctx.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (a + 0.044715 * a**3)
            th = xp.tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return g * (0.5 * (1 + th) + 0.5 * a * (1 - th * th) * d_inner), None
        cdf = 0.5 * (1 + _erf(xp, a * _INV_SQRT2))
        pdf = xp.exp(-0.5 * a * a) * _INV_SQRT_2PI
        return g * (cdf + a * pdf), None


class SiLU(Function):
    @staticmethod
    def forward(ctx, a):
        xp = get_xp(a)
        s = 0.5 * (xp.tanh(a * 0.5) + 1)
        ctx.save_for_backward(a, s)
        return a * s

    @staticmethod
    def backward(ctx, g):
        a, s = ctx.saved_tensors
        return g * s * (1 + a * (1 - s))


class Softplus(Function):
    @staticmethod
    def forward(ctx, a, beta, threshold):
        xp = get_xp(a)
        ctx.save_for_backward(a)
        ctx.beta, ctx.threshold = beta, threshold
        ba = a * beta
        soft = (xp.maximum(ba, 0) + xp.log1p(xp.exp(-xp.abs(ba)))) / beta
        return xp.where(ba > threshold, a, soft)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = get_xp(a)
        ba = a * ctx.beta
        s = 0.5 * (xp.tanh(ba * 0.5) + 1)
        return xp.where(ba > ctx.threshold, g, g * s), None, None


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
        return g * keep, None, None


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return get_xp(cond).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        _, na, nb = ctx.needs_input_grad
        xp = get_xp(g)
        zero = xp.zeros((), g.dtype)
        return (
            None,
            xp.where(cond, g, zero) if na else None,
            xp.where(cond, zero, g) if nb else None,
        )


# ------------------------------------------------------------------ helpers

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_ERFC_COEFFS = (
    0.17087277,
    -0.82215223,
    1.48851587,
    -1.13520398,
    0.27886807,
    -0.18628806,
    0.09678418,
    0.37409196,
    1.00002368,
    -1.26551223,
)


def _erf(xp, x):
    """erf without SciPy, on either backend: Numerical Recipes' erfc (Chebyshev fit),
    accurate to 1.2e-7, which is float32 precision."""
    z = xp.abs(x)
    t = 1 / (1 + 0.5 * z)
    poly = 0.0
    for c in _ERFC_COEFFS:  # Horner's rule, highest power first
        poly = poly * t + c
    poly = poly - z * z
    erfc = t * xp.exp(poly)
    return xp.where(x >= 0, 1 - erfc, erfc - 1).astype(x.dtype, copy=False)


class _quiet:
    """Silence NumPy's divide/invalid warnings where inf/nan results are the right answer."""

    def __init__(self, xp):
        self.np = xp.__name__ == "numpy"

    def __enter__(self):
        if self.np:
            import numpy as np

            self.old = np.seterr(divide="ignore", invalid="ignore")

    def __exit__(self, *exc):
        if self.np:
            import numpy as np

            np.seterr(**self.old)


def _binary(fn: type[Function], a: Any, b: Any, floating: bool = False) -> Tensor:
    a, b = promote(a, b, floating=floating)
    if not isinstance(a, Tensor):
        # scalar <op> tensor: swap into Tensor-first form for ops that commute
        return fn.apply(Tensor._wrap(get_xp(b.array).asarray(a, dtype=b.array.dtype)), b)
    return fn.apply(a, b)


def _tensor(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    return x


# ------------------------------------------------------------------ functional API


def add(input: Any, other: Any, *, alpha: float = 1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, input, other)


def sub(input: Any, other: Any, *, alpha: float = 1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, input, other)


def mul(input: Any, other: Any) -> Tensor:
    return _binary(Mul, input, other)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    if rounding_mode is None:
        return _binary(Div, input, other, floating=True)
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(
            f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}"
        )
    a, b = promote(input, other)
    out = _binary(Div, a, b, floating=True).detach()
    xp = get_xp(out.array)
    res = xp.floor(out.array) if rounding_mode == "floor" else xp.trunc(out.array)
    dt = (a if isinstance(a, Tensor) else b).array.dtype
    return Tensor._wrap(res.astype(dt))


def pow(input: Any, exponent: Any) -> Tensor:
    if (
        isinstance(input, Tensor)
        and isinstance(exponent, int | float)
        and not isinstance(exponent, bool)
    ):
        if isinstance(exponent, float) and input.array.dtype.kind != "f":
            input = input.float()
        return Pow.apply(input, exponent)
    return _binary(Pow, input, exponent)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return _binary(Maximum, input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return _binary(Minimum, input, other)


def neg(input: Tensor) -> Tensor:
    return Neg.apply(_tensor(input, "neg"))


def abs(input: Tensor) -> Tensor:
    return Abs.apply(_tensor(input, "abs"))


def _float_unary(fn: type[Function], x: Tensor, name: str) -> Tensor:
    x = _tensor(x, name)
    if x.array.dtype.kind != "f":
        x = x.float()
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


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _activation(ReLU, input, inplace, "relu")


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _activation(LeakyReLU, input, inplace, "leaky_relu", float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _activation(ELU, input, inplace, "elu", float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_tensor(input, "gelu"), approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _activation(SiLU, input, inplace, "silu")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(_tensor(input, "softplus"), float(beta), float(threshold))


def _activation(fn: type[Function], input: Tensor, inplace: bool, name: str, *args: Any) -> Tensor:
    """Apply ``fn``; with ``inplace`` the result replaces the input (Tensor._inplace)."""
    _tensor(input, name)
    if not inplace:
        return fn.apply(input, *args)
    return input._inplace(name + "_", lambda t: fn.apply(t, *args))


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    input = _tensor(input, "clamp")
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return Clamp.apply(input, min, max)


clip = clamp


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    cond = _tensor(condition, "where")
    if cond.array.dtype.kind != "b":
        cond = Tensor._wrap(cond.array != 0)
    a, b = promote(input, other)
    xp = get_xp(cond.array)
    if not isinstance(a, Tensor):
        a = Tensor._wrap(xp.asarray(a, dtype=b.array.dtype if isinstance(b, Tensor) else None))
    if not isinstance(b, Tensor):
        b = Tensor._wrap(xp.asarray(b, dtype=a.array.dtype))
    return Where.apply(cond, a, b)


# comparisons and other non-differentiable elementwise ops


def _compare(op: str, a: Any, b: Any) -> Tensor:
    a, b = promote(a, b)
    if not isinstance(a, Tensor):
        a, b, op = b, a, _FLIP[op]
    bb = b.array if isinstance(b, Tensor) else b
    if isinstance(b, Tensor) and type(bb) is not type(a.array):
        raise RuntimeError(
            f"comparison: expected both tensors on the same device, got {a.device} and {b.device}"
        )
    return Tensor._wrap(_CMP[op](a.array, bb))


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


def _nograd_unary(name: str, keep_dtype: bool = True):
    def op(input: Tensor) -> Tensor:
        arr = _tensor(input, name).array
        out = getattr(get_xp(arr), name)(arr)
        return Tensor._wrap(out.astype(arr.dtype) if keep_dtype else out)

    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (not differentiable: its gradient is zero almost everywhere)."
    return op


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by sign; NaN maps to 0 as in PyTorch (not differentiable)."""
    arr = _tensor(input, "sign").array
    xp = get_xp(arr)
    out = xp.sign(arr)
    if arr.dtype.kind == "f":
        out = xp.where(xp.isnan(arr), 0, out).astype(arr.dtype)
    return Tensor._wrap(out)


floor = _nograd_unary("floor")
ceil = _nograd_unary("ceil")
round = _nograd_unary("round")
trunc = _nograd_unary("trunc")
isnan = _nograd_unary("isnan", keep_dtype=False)
isinf = _nograd_unary("isinf", keep_dtype=False)
isfinite = _nograd_unary("isfinite", keep_dtype=False)


def logical_not(input: Tensor) -> Tensor:
    return Tensor._wrap(~_tensor(input, "logical_not").array.astype(bool))


def _logical(name: str):
    def op(input: Tensor, other: Tensor) -> Tensor:
        a = _tensor(input, name).array
        b = other.array if isinstance(other, Tensor) else other
        return Tensor._wrap(getattr(get_xp(a), name)(a, b))

    op.__name__ = name
    return op


logical_and = _logical("logical_and")
logical_or = _logical("logical_or")
logical_xor = _logical("logical_xor")
