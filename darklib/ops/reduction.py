"""Reductions: sum, mean, var/std, max/min (values and indices), amax/amin, argmax/argmin,
logsumexp, softmax/log_softmax, prod, all/any, norm, cumsum.

Each differentiable reduction is one Function whose backward broadcasts the output gradient
back over the reduced dims (a broadcast view, no copy where the array library allows it).
"""

from __future__ import annotations

import builtins
import functools
import math
import warnings
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, higher_order
from darklib.backend import get_xp, gpu_scatter, is_cuda_array
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.ops import elementwise as _E
from darklib.ops.shape import _check_tensor, _int, norm_dim, norm_dims
from darklib.ops.shape import reshape as _reshape
from darklib.tensor import Tensor

_I64 = np.dtype(np.int64)

# PyTorch's torch.return_types.max / min: a (values, indices) named tuple
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])


# ------------------------------------------------------------------ helpers


def _axes(x: Tensor, dim: Any, op: str) -> tuple[int, ...] | None:
    """Reduction axes for the array library: None for all dims (dim None or empty)."""
    if type(dim) is int and x.array.ndim:  # the common case first
        nd = x.array.ndim
        if -nd <= dim < nd:
            return (dim % nd,)
    if dim is None or (isinstance(dim, tuple | list) and len(dim) == 0):
        return None
    dims = norm_dims(dim, x.ndim, op)
    return () if x.ndim == 0 else dims


def _prep(x: Tensor, dim: Any, keepdim: bool, op: str) -> tuple[Tensor, Any, bool]:
    """Checked (input, axes, keepdim); a 0-d input is reduced as shape (1,), which gives a
    0-d result either way and keeps NumPy from handing back scalars instead of arrays."""
    axes = _axes(x, dim, op)
    if x.ndim == 0:
        return _reshape(x, 1), (0,), False
    return x, axes, bool(keepdim)


def _kept_shape(in_shape: tuple, axes: tuple | None) -> tuple:
    """The output shape with keepdim=True."""
    if axes is None:
        return (1,) * len(in_shape)
    return tuple(1 if i in axes else n for i, n in enumerate(in_shape))


def _squeezed(out_k: Any, in_shape: tuple, axes: tuple | None, keepdim: bool) -> Any:
    """A reduction computed with keepdims=True, as the caller asked for it."""
    if keepdim:
        return out_k
    return out_k.reshape(
        tuple(n for i, n in enumerate(in_shape) if not (axes is None or i in axes))
    )


def _count(in_shape: tuple, axes: tuple | None) -> int:
    return math.prod(in_shape if axes is None else [in_shape[a] for a in axes])


def _spread(g, in_shape, axes):
    """Broadcast an output gradient (either keepdim form) back over the input's shape; an
    array, or a tensor (create_graph) through differentiable ops."""
    g = g.reshape(_kept_shape(in_shape, axes))
    if isinstance(g, Tensor):
        return g.expand(in_shape)
    return get_xp(g).broadcast_to(g, in_shape)


def _no_zeros(x: Any, op: str) -> None:
    """(create_graph) products are differentiated twice through out / x: not at zeros."""
    if (x == 0).any():
        raise NotImplementedError(
            f"create_graph=True: darklib cannot differentiate the backward of {op} over "
            "entries that are zero yet"
        )


def _arr(xp, r):
    # NumPy turns full reductions into scalars; keep 0-d arrays
    return r if isinstance(r, xp.ndarray) else xp.asarray(r)


def _max_or_zero(x, axis):
    """The max along ``axis`` (kept), to subtract before exp; 0 for empty inputs."""
    if x.size == 0:
        return 0
    return x.max(axis=axis, keepdims=True)


def _as_float(x: Tensor, op: str) -> Tensor:
    if x.array.dtype.kind != "f":
        raise RuntimeError(
            f"{op}(): expected a floating-point input, got {x.dtype}; convert it with .float()"
        )
    return x


def _cast_dtype(x: Tensor, dtype: Any) -> Tensor:
    """x in ``dtype`` if one is given (integer sums accumulate in int64 and are cast back:
    the same wrapped result as summing in the narrow type, as torch)."""
    if dtype is None:
        return x
    npd = _dt.to_numpy_dtype(dtype)
    return x if x.array.dtype == npd else x.to(npd)


# ------------------------------------------------------------------ Functions


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.in_shape, ctx.axes = x.shape, axes
        xp = get_xp(x)
        acc = _I64 if x.dtype.kind in "biu" else None
        return _arr(xp, x.sum(axis=axes, keepdims=keepdim, dtype=acc))

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.in_shape, ctx.axes), None, None

    @staticmethod
    def backward_graph(ctx, g):
        return _spread(g, ctx.in_shape, ctx.axes), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.in_shape, ctx.axes = x.shape, axes
        ctx.n = _count(x.shape, axes)
        xp = get_xp(x)
        if not ctx.n:  # NaN, as torch, without NumPy's "Mean of empty slice" warning
            return _arr(xp, x.sum(axis=axes, keepdims=keepdim) * xp.nan)
        return _arr(xp, x.mean(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        return _spread(g / ctx.n if ctx.n else g * math.nan, ctx.in_shape, ctx.axes), None, None

    @staticmethod
    def backward_graph(ctx, g):
        return _spread(g / ctx.n if ctx.n else g * math.nan, ctx.in_shape, ctx.axes), None, None


def _acc_dtype(xp: Any, dt: np.dtype) -> np.dtype:
    """The dtype torch accumulates running sums, products and variances in: int64 for
    integers, float32 for half precision, and float64 for float32 on the CPU (its CPU
    kernels accumulate in double: a cumsum of a million 0.1s lands on 100,000)."""
    if dt.kind in "biu":
        return _I64
    if dt.itemsize < 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64) if xp is np else dt


class Var(Function):
    """Variance (``take_sqrt=False``) or standard deviation, with Bessel-style correction,
    accumulated in :func:`_acc_dtype` (squares of float16 or of 1e20 would overflow)."""

    @staticmethod
    def forward(ctx, x, axes, correction, keepdim, take_sqrt):
        xp = get_xp(x)
        n = _count(x.shape, axes)
        denom = builtins.max(0.0, n - correction)
        xa = x.astype(_acc_dtype(xp, x.dtype), copy=False)
        diff = xa - xa.sum(axis=axes, keepdims=True) / (n or math.nan)  # mean, NaN if n = 0
        out = _arr(xp, (diff * diff).sum(axis=axes, keepdims=keepdim) / denom)
        if take_sqrt:
            xp.sqrt(out, out=out)
        out = out.astype(x.dtype, copy=False)
        if denom == 0:
            warnings.warn(
                f"{'std' if take_sqrt else 'var'}(): degrees of freedom is <= 0 (reducing {n} "
                f"element(s) with correction={correction})",
                UserWarning,
                stacklevel=4,
            )
        ctx.save_for_backward(diff, out if take_sqrt else None)
        ctx.in_shape, ctx.axes, ctx.sqrt = x.shape, axes, take_sqrt
        ctx.dof = n - correction  # PyTorch's backward does not clamp it at 0
        return out

    @staticmethod
    def backward(ctx, g):
        diff, out = ctx.saved_tensors
        shape = _kept_shape(ctx.in_shape, ctx.axes)
        xp = get_xp(g)
        g = g.reshape(shape)
        if ctx.sqrt:  # d std = d var / (2 std), and 0 where std is 0 (as PyTorch)
            o = out.reshape(shape)
            g = xp.where(o == 0, xp.zeros((), g.dtype), g / (2 * o))
        if ctx.axes is None and ctx.dof <= 0:
            # torch's var_backward over all dims with no degrees of freedom left: the
            # gradient is g * (NaN where x equals the mean, else +inf), whatever the sign
            # of x - mean (with an explicit dim it stays 2 / dof * (x - mean), below)
            inf = xp.where(diff == 0, xp.asarray(math.nan, diff.dtype), math.inf)
            return (inf * g.astype(diff.dtype, copy=False)), None, None, None, None
        scale = g * (2.0 / ctx.dof if ctx.dof else math.inf)
        return diff * scale.astype(diff.dtype, copy=False), None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        diff, _ = ctx.saved_tensors
        dims = tuple(range(len(ctx.in_shape))) if ctx.axes is None else ctx.axes
        keep = len(g.shape) == len(ctx.in_shape)
        dof, take_sqrt = ctx.dof, ctx.sqrt

        def forward(x):
            d = x - x.mean(dims, keepdim=True)
            v = (d * d).sum(dims, keepdim=keep) / dof
            return v.sqrt() if take_sqrt else v

        # x - mean stands for x: the variance ignores the mean
        return higher_order.recompute(ctx, g, forward, (diff,))


class Extreme(Function):
    """amax/amin and whole-tensor max/min: ties share the gradient evenly (as PyTorch).

    A NaN result gives amax/amin NaN gradients; whole-tensor max/min (``nan_hits``) send
    the gradient to the NaN entries instead, as PyTorch does."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, is_max, nan_hits=False):
        xp = get_xp(x)
        red = x.max if is_max else x.min
        out_k = _arr(xp, red(axis=axes, keepdims=True))
        ctx.save_for_backward(x, out_k)
        ctx.axes, ctx.nan_hits = axes, nan_hits
        return _squeezed(out_k, x.shape, axes, keepdim)

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        xp = get_xp(x)
        hit = x == out_k
        if ctx.nan_hits and x.dtype.kind == "f":
            hit |= xp.isnan(x) & xp.isnan(out_k)
        count = hit.sum(axis=ctx.axes, keepdims=True).astype(g.dtype)
        share = g.reshape(out_k.shape) / count
        if ctx.nan_hits:  # whole-tensor max/min: the share goes to the hits only (an inf
            # or NaN share leaves the others at 0), as torch on the CPU; amax/amin multiply
            return xp.where(hit, share, 0).astype(g.dtype, copy=False), None, None, None, None
        return hit * share, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, out_k = ctx.saved_tensors
        hit = x == out_k
        if ctx.nan_hits and x.dtype.kind == "f":
            hit |= get_xp(x).isnan(x) & get_xp(x).isnan(out_k)
        axes, out_shape = ctx.axes, ctx._out_shape
        share = (hit / hit.sum(axis=axes, keepdims=True)).astype(x.dtype)

        def pick(v):  # the winners' mean, as in the gradient's tie rule
            return (share * v).sum(axis=axes, keepdims=True).reshape(out_shape)

        return higher_order.linear_adjoints(ctx, g, {0: pick})


class ExtremeDim(Function):
    """max/min along one dim: the gradient goes to the returned index."""

    @staticmethod
    def forward(ctx, x, idx_k, axis, keepdim):
        xp = get_xp(x)
        ctx.in_shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(idx_k)
        vals = xp.take_along_axis(x, idx_k, axis=axis)
        return vals if keepdim else vals.reshape(idx_k.shape[:axis] + idx_k.shape[axis + 1 :])

    @staticmethod
    def backward(ctx, g):
        (idx_k,) = ctx.saved_tensors
        xp = get_xp(g)
        axis, shape = ctx.axis, ctx.in_shape
        pos = xp.arange(shape[axis]).reshape((-1,) + (1,) * (len(shape) - axis - 1))
        g = g.reshape(idx_k.shape)
        return xp.where(pos == idx_k, g, xp.zeros((), g.dtype)), None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx_k,) = ctx.saved_tensors
        axis, out_shape = ctx.axis, ctx._out_shape

        def pick(v):
            return get_xp(v).take_along_axis(v, idx_k, axis=axis).reshape(out_shape)

        return higher_order.linear_adjoints(ctx, g, {0: pick})


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = get_xp(x)
        if x.size == 0:  # max has no identity: the sum of no exponentials is 0, its log -inf
            m = xp.zeros(_kept_shape(x.shape, axes), x.dtype)
        else:
            m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), m.dtype))
        e = x - m
        xp.exp(e, out=e)
        out_k = xp.log(e.sum(axis=axes, keepdims=True))
        out_k += m
        ctx.save_for_backward(x, out_k)
        ctx.axes = axes
        return _squeezed(out_k, x.shape, axes, keepdim)

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        p = x - out_k
        get_xp(x).exp(p, out=p)
        return p * g.reshape(out_k.shape), None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, out_k = ctx.saved_tensors
        lse = ctx.lift_output(out_k.reshape(ctx._out_shape)).reshape(out_k.shape)
        return (ctx.lift(x, 0) - lse).exp() * g.reshape(out_k.shape), None, None


def softmax_grad(g: Any, y: Any, axis: int) -> Any:
    """The input gradient of a softmax along ``axis`` whose output is ``y``."""
    gy = g * y
    gy -= y * gy.sum(axis=axis, keepdims=True)
    return gy


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = get_xp(x)
        # rows of -inf give NaN, as in PyTorch, without NumPy's warnings
        y = x - _max_or_zero(x, axis)
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return softmax_grad(g, y, ctx.axis), None

    @staticmethod
    def backward_graph(ctx, g):
        (y,) = ctx.saved_tensors
        yt = ctx.lift_output(y)
        gy = g * yt
        return gy - yt * gy.sum(ctx.axis, keepdim=True), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = get_xp(x)
        z = x - _max_or_zero(x, axis)
        e = xp.exp(z)
        z -= xp.log(e.sum(axis=axis, keepdims=True))
        ctx.save_for_backward(z)
        ctx.axis = axis
        return z

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        p = get_xp(y).exp(y)
        p *= g.sum(axis=ctx.axis, keepdims=True)
        return g - p, None

    @staticmethod
    def backward_graph(ctx, g):
        (y,) = ctx.saved_tensors
        return g - ctx.lift_output(y).exp() * g.sum(ctx.axis, keepdim=True), None


class Prod(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdim):
        xp = get_xp(x)
        acc = _I64 if x.dtype.kind in "biu" else None
        out_k = _arr(xp, x.prod(axis=axis, keepdims=True, dtype=acc))
        ctx.save_for_backward(x, out_k)
        ctx.axis = axis
        if keepdim and axis is not None:
            return out_k
        return out_k.reshape(() if axis is None else out_k.shape[:axis] + out_k.shape[axis + 1 :])

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        xp = get_xp(x)
        axis = ctx.axis
        if not (x == 0).any():  # PyTorch's formula: the product over each element
            return g.reshape(out_k.shape) * out_k / x, None, None
        if axis is None:  # as PyTorch: only a lone zero gets a gradient, the others' product
            zero = x == 0
            others = xp.where(zero, 1, x).prod() if zero.sum() == 1 else 0
            return xp.where(zero, g.reshape(()) * others, 0).astype(x.dtype), None, None
        # along a dim, d(prod)/dx_i = product of all the others, from exclusive prefix and
        # suffix products (dividing the product by x_i would give 0/0)
        xm = xp.moveaxis(x, axis, -1)
        n = xm.shape[-1]
        others = xp.ones(xm.shape, x.dtype)
        if n > 1:
            others[..., 1:] = xp.cumprod(xm[..., :-1], axis=-1)
            suffix = xp.flip(xp.cumprod(xp.flip(xm[..., 1:], axis=-1), axis=-1), axis=-1)
            others[..., :-1] *= suffix
        gk = g.reshape(_kept_shape(x.shape, (axis,)))
        return xp.moveaxis(others, -1, axis) * gk, None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, out_k = ctx.saved_tensors
        _no_zeros(x, "prod")
        out = ctx.lift_output(out_k.reshape(ctx._out_shape)).reshape(out_k.shape)
        return g.reshape(out_k.shape) * out / ctx.lift(x, 0), None, None


class Norm2(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = get_xp(x)
        xa = x.astype(xp.float32) if x.dtype.itemsize < 4 else x  # half: sum in float32
        out_k = xp.sqrt(_arr(xp, (xa * xa).sum(axis=axes, keepdims=True))).astype(x.dtype)
        ctx.save_for_backward(x, out_k)
        return _squeezed(out_k, x.shape, axes, keepdim)

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        xp = get_xp(x)
        scale = xp.where(out_k == 0, xp.zeros((), g.dtype), g.reshape(out_k.shape) / out_k)
        return x * scale, None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, out_k = ctx.saved_tensors
        norm = ctx.lift_output(out_k.reshape(ctx._out_shape)).reshape(out_k.shape)
        zero = Tensor._wrap(out_k == 0)
        scale = _E.where(zero, 0.0, g.reshape(out_k.shape) / _E.where(zero, 1.0, norm))
        return ctx.lift(x, 0) * scale, None, None


class NormP(Function):
    """(sum |x|^p)^(1/p) for a finite p other than 0, 1, 2; torch's gradient, which is 0
    (not NaN) where the norm is 0 and, for p < 1, at zero entries."""

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        xp = get_xp(x)
        xa = x.astype(xp.float32) if x.dtype.itemsize < 4 else x  # half: sum in float32
        out_k = _arr(xp, (xp.abs(xa) ** p).sum(axis=axes, keepdims=True)) ** (1 / p)
        out_k = out_k.astype(x.dtype, copy=False)
        ctx.save_for_backward(x, out_k)
        ctx.p = p
        return _squeezed(out_k, x.shape, axes, keepdim)

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        p = ctx.p
        xp = get_xp(x)
        zero = xp.zeros((), g.dtype)
        g = g.reshape(out_k.shape)
        scaled = xp.sign(x) * xp.abs(x) ** (p - 1)
        if p < 1:
            return xp.where(x == 0, zero, scaled) * g * out_k ** (1 - p), None, None, None
        scale = xp.where(out_k == 0, zero, g / out_k ** (p - 1))
        return scaled * scale, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, out_k = ctx.saved_tensors
        p, xt = ctx.p, ctx.lift(x, 0)
        norm = ctx.lift_output(out_k.reshape(ctx._out_shape)).reshape(out_k.shape)
        g = g.reshape(out_k.shape)
        scaled = xt.sign() * xt.abs() ** (p - 1)
        if p < 1:
            at_zero = Tensor._wrap(x == 0)
            scaled = _E.where(at_zero, 0.0, xt.sign() * _E.where(at_zero, 1.0, xt.abs()) ** (p - 1))
            return scaled * g * norm ** (1 - p), None, None, None
        zero = Tensor._wrap(out_k == 0)
        return (
            scaled * _E.where(zero, 0.0, g / _E.where(zero, 1.0, norm) ** (p - 1)),
            None,
            None,
            None,
        )


def _running(fn: Any, a: Any, axis: int) -> Any:
    """cumsum/cumprod (``fn``) accumulated in :func:`_acc_dtype`; integers give int64,
    floats keep their dtype."""
    xp = get_xp(a)
    acc = _acc_dtype(xp, a.dtype)
    out = fn(a, axis=axis, dtype=acc)
    return out if a.dtype.kind in "biu" else out.astype(a.dtype, copy=False)


def _reverse_cumsum(g: Any, axis: int) -> Any:
    xp = get_xp(g)
    return xp.flip(_running(xp.cumsum, xp.flip(g, axis=axis), axis), axis=axis)


class CountNonzero(Function):
    """The 0-norm: the count of non-zero entries (as x's dtype), whose gradient is 0."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape = x.shape
        return _arr(get_xp(x), (x != 0).sum(axis=axes, keepdims=keepdim, dtype=x.dtype))

    @staticmethod
    def backward(ctx, g):
        return get_xp(g).zeros(ctx.shape, g.dtype), None, None

    backward_graph = staticmethod(higher_order.piecewise_linear)


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return _running(get_xp(x).cumsum, x, axis)

    @staticmethod
    def backward(ctx, g):
        return _reverse_cumsum(g, ctx.axis), None

    @staticmethod
    def backward_graph(ctx, g):
        axis = ctx.axis
        return higher_order.linear_adjoints(
            ctx, g, {0: lambda v: _running(get_xp(v).cumsum, v, axis)}
        )


# ------------------------------------------------------------------ functional API


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple, or None for all). Integer and bool inputs sum to
    int64, as in PyTorch.

    Example::

        >>> dl.ones(2, 3).sum(dim=-1)
        tensor([3., 3.])
    """
    x = _cast_dtype(_check_tensor(input, "sum"), dtype)
    return _cast_dtype(Sum.apply(*_prep(x, dim, keepdim, "sum")), dtype)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over ``dim`` (an int, a tuple, or None for all); floating-point inputs only."""
    x = _cast_dtype(_check_tensor(input, "mean"), dtype)
    if x.array.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be a floating point "
            f"dtype, got {x.dtype}; pass dtype=dl.float32 or call .float() first"
        )
    return Mean.apply(*_prep(x, dim, keepdim, "mean"))


def _var_args(op: str, dim: Any, unbiased: Any, keepdim: bool, correction: Any):
    if isinstance(dim, builtins.bool | np.bool_):  # legacy var(input, unbiased)
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise RuntimeError(f"{op}(): pass either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, float(correction), bool(keepdim)


def var(
    input: Tensor,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Variance over ``dim`` with ``correction`` (1 = unbiased, Bessel's; 0 = population).

    Also accepts PyTorch's legacy ``unbiased`` flag: ``x.var(0, False)``, ``x.var(False)``.
    """
    x = _as_float(_check_tensor(input, "var"), "var")
    dim, corr, keepdim = _var_args("var", dim, unbiased, keepdim, correction)
    x, axes, keepdim = _prep(x, dim, keepdim, "var")
    return Var.apply(x, axes, corr, keepdim, False)


def std(
    input: Tensor,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Standard deviation over ``dim``; see :func:`var` for ``correction``/``unbiased``."""
    x = _as_float(_check_tensor(input, "std"), "std")
    dim, corr, keepdim = _var_args("std", dim, unbiased, keepdim, correction)
    x, axes, keepdim = _prep(x, dim, keepdim, "std")
    return Var.apply(x, axes, corr, keepdim, True)


def _extreme(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Any:
    op = "max" if is_max else "min"
    if isinstance(dim, Tensor):  # max(a, b): elementwise
        return _E.maximum(input, dim) if is_max else _E.minimum(input, dim)
    x = _check_tensor(input, op)
    if dim is None:
        if x.array.size == 0:
            raise RuntimeError(
                f"{op}(): expected reduction dim to be specified for input.numel() == 0 "
                f"(shape {list(x.shape)}); specify the reduction dim with the 'dim' argument"
            )
        return Extreme.apply(*_prep(x, None, False, op), is_max, True)
    d = norm_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return _extreme(_reshape(x, 1), 0, False, is_max)
    if x.shape[d] == 0:
        raise OutOfRange(
            f"{op}(): expected reduction dim {d} to have non-zero size, got shape {list(x.shape)}"
        )
    xp = get_xp(x.array)
    idx_k = (xp.argmax if is_max else xp.argmin)(x.array, axis=d, keepdims=True)
    values = ExtremeDim.apply(x, idx_k, d, bool(keepdim))
    idx = idx_k if keepdim else idx_k.reshape(values.shape)
    result = max_result if is_max else min_result
    return result(values, Tensor._wrap(idx.astype(_I64, copy=False)))


def max(input: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None) -> Any:
    """``max(x)``: the largest element (0-d). ``max(x, dim, keepdim=False)``: a named tuple
    ``(values, indices)`` along ``dim``. ``max(x, other)`` (or ``other=``): elementwise
    maximum.

    Gradient: to the selected index along ``dim``; shared evenly among ties for ``max(x)``.
    """
    return _extreme(input, _dim_or_other("max", dim, other), keepdim, True)


def min(input: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None) -> Any:
    """``min(x)``, ``min(x, dim, keepdim=False)`` -> ``(values, indices)``, or ``min(a, b)``
    (or ``min(a, other=b)``)."""
    return _extreme(input, _dim_or_other("min", dim, other), keepdim, False)


def _dim_or_other(op: str, dim: Any, other: Any) -> Any:
    """max/min's second argument: torch names it ``other`` in the elementwise form."""
    if other is None:
        return dim
    if dim is not None:
        raise InvalidType(f"{op}(): pass either dim or other, not both")
    if not isinstance(other, Tensor):
        raise InvalidType(f"{op}(): argument 'other' must be Tensor, not {type(other).__name__}")
    return other


def _amaxmin(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    op = "amax" if is_max else "amin"
    x, axes, keepdim = _prep(_check_tensor(input, op), dim, keepdim, op)
    reduced = range(x.ndim) if axes is None else axes
    for a in reduced:
        if x.shape[a] == 0:
            raise OutOfRange(
                f"{op}(): expected reduction dim {a} to have non-zero size, got "
                f"shape {list(x.shape)}"
            )
    return Extreme.apply(x, axes, keepdim, is_max)


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (an int or tuple; all dims by default). Ties share the gradient."""
    return _amaxmin(input, dim, keepdim, True)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (an int or tuple; all dims by default). Ties share the gradient."""
    return _amaxmin(input, dim, keepdim, False)


def _argext(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    op = "argmax" if is_max else "argmin"
    x = _check_tensor(input, op)
    if x.array.dtype.kind == "b":
        raise RuntimeError(f"{op}(): does not support bool input; convert it with .long()")
    xp = get_xp(x.array)
    fn = xp.argmax if is_max else xp.argmin
    if dim is None:
        if x.array.size == 0:
            raise OutOfRange(
                f"{op}(): expected reduction dim to be specified for an empty "
                f"input of shape {list(x.shape)}"
            )
        idx = _arr(xp, fn(x.array.reshape(-1)))
        if keepdim:
            idx = idx.reshape((1,) * x.ndim)
        return Tensor._wrap(idx.astype(_I64, copy=False))
    d = norm_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return Tensor._wrap(xp.zeros((), _I64))
    if x.shape[d] == 0:
        raise OutOfRange(
            f"{op}(): expected reduction dim {d} to have non-zero size, got shape {list(x.shape)}"
        )
    return Tensor._wrap(fn(x.array, axis=d, keepdims=bool(keepdim)).astype(_I64, copy=False))


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the maximum along ``dim`` (of the flattened tensor when ``dim`` is None)."""
    return _argext(input, dim, keepdim, True)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the minimum along ``dim`` (of the flattened tensor when ``dim`` is None)."""
    return _argext(input, dim, keepdim, False)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x), dim))`` computed stably (the max is subtracted first)."""
    x = _check_tensor(input, "logsumexp")
    if x.array.dtype.kind != "f":
        x = x.to(_dt.get_default_dtype())  # ints: the default float dtype
    return LogSumExp.apply(*_prep(x, dim, keepdim, "logsumexp"))


def _softmax_dim(x: Tensor, dim: Any, op: str) -> int:
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. Change the call to "
            "include dim=X as an argument.",
            UserWarning,
            stacklevel=4,
        )
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return norm_dim(dim, x.ndim, op)


def _softmax_like(fn: type[Function], input: Tensor, dim: Any, dtype: Any, op: str) -> Tensor:
    x = _cast_dtype(_check_tensor(input, op), dtype)
    if x.array.dtype.kind != "f":
        raise NotImplementedError(
            f"{op}(): expected a floating-point input, got {x.dtype}; pass "
            "dtype=dl.float32 or call .float() first"
        )
    d = _softmax_dim(x, dim, op)
    if x.ndim == 0:
        return _reshape(fn.apply(_reshape(x, 1), 0), ())
    return fn.apply(x, d)


@autocasts("softmax")
def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``exp(x) / sum(exp(x), dim)``, stable, as one fused op.

    Args:
        input: input tensor.
        dim: dim along which the values sum to 1.
        dtype: cast the input to this dtype first.
    """
    return _softmax_like(Softmax, input, dim, _positional_dtype(_stacklevel, dtype), "softmax")


@autocasts("log_softmax")
def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``x - logsumexp(x, dim)``, stable, as one fused op."""
    dtype = _positional_dtype(_stacklevel, dtype)
    return _softmax_like(LogSoftmax, input, dim, dtype, "log_softmax")


def _positional_dtype(third: Any, dtype: Any) -> Any:
    """The dtype of ``softmax(x, dim, dtype)``: torch.softmax's third parameter is the
    dtype, F.softmax's a legacy ``_stacklevel`` (these functions serve as both)."""
    return third if dtype is None and isinstance(third, _dt.dtype) else dtype


@autocasts("prod")
def prod(
    input: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """Product of all elements, or along one ``dim``. Integer and bool inputs give int64."""
    x = _cast_dtype(_check_tensor(input, "prod"), dtype)
    if dim is not None:
        norm_dim(dim, x.ndim, "prod")
    x, axes, keepdim = _prep(x, dim, keepdim, "prod")
    return _cast_dtype(Prod.apply(x, None if axes is None else axes[0], keepdim), dtype)


def _logical(input: Tensor, dim: Any, keepdim: bool, op: str) -> Tensor:
    x = _check_tensor(input, op)
    if isinstance(dim, tuple | list) and len(dim) == 0:  # no dims: elementwise truth
        arr = x.array
        return Tensor._wrap((arr != 0).astype(np.uint8 if arr.dtype == np.uint8 else np.bool_))
    x, axes, keepdim = _prep(x, dim, keepdim, op)
    arr = x.array
    out = _arr(get_xp(arr), getattr(arr, op)(axis=axes, keepdims=keepdim))
    return Tensor._wrap(out.astype(np.uint8) if arr.dtype == np.uint8 else out)


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where every element (along ``dim``) is non-zero."""
    return _logical(input, dim, keepdim, "all")


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where some element (along ``dim``) is non-zero."""
    return _logical(input, dim, keepdim, "any")


def norm(
    input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None
) -> Tensor:
    """Vector p-norm over ``dim`` (all dims by default); ``'fro'`` is the 2-norm.

    ``p`` may be any number, ``inf`` or ``-inf``. At zero the 2-norm's gradient is 0.
    """
    x = _cast_dtype(_check_tensor(input, "norm"), dtype)
    if x.array.dtype.kind != "f":
        raise RuntimeError(f"norm(): expected a floating-point input, got {x.dtype}")
    if p is None or p == "fro":
        p = 2
    if p == "nuc":
        return _nuclear_norm(x, dim, keepdim)
    if isinstance(p, str):
        raise RuntimeError(f"norm(): p={p!r} is not supported; use a number, inf, 'fro' or 'nuc'")
    x, axes, keepdim = _prep(x, dim, keepdim, "norm")
    p = float(p)
    if p == 2:
        return Norm2.apply(x, axes, keepdim)
    if p == math.inf:
        return amax(_E.abs(x), () if axes is None else axes, keepdim)
    if p == -math.inf:
        return amin(_E.abs(x), () if axes is None else axes, keepdim)
    if p == 0:  # the count of non-zeros: in the graph with a zero gradient, as torch
        return CountNonzero.apply(x, axes, keepdim)
    if p == 1:
        return sum(_E.abs(x), axes, keepdim)
    return NormP.apply(x, p, axes, keepdim)


def _nuclear_norm(x: Tensor, dim: Any, keepdim: bool) -> Tensor:
    """norm(p='nuc'): over the two dims ``dim`` (a 2-D input's by default)."""
    if dim is None:
        if x.ndim != 2:
            raise RuntimeError(
                f"norm(): p='nuc' needs a 2-D input or two dims, got shape {tuple(x.shape)}"
            )
        dim = (0, 1)
    dims = norm_dims(dim, x.ndim, "norm")
    if len(dims) != 2:
        raise RuntimeError(f"norm(): p='nuc' needs two dims, got {dim}")
    from darklib.linalg import matrix_norm  # (its gradient has gradients too)

    return matrix_norm(x, "nuc", dim=dims, keepdim=keepdim)


def _cumulative(fn: type[Function], input: Tensor, dim: int, dtype: Any, op: str) -> Tensor:
    """cumsum / cumprod: dtype cast, dim check, 0-d inputs run as 1-element vectors."""
    x = _cast_dtype(_check_tensor(input, op), dtype)
    d = norm_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return _cast_dtype(_reshape(fn.apply(_reshape(x, 1), 0), ()), dtype)
    return _cast_dtype(fn.apply(x, d), dtype)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``. Integer and bool inputs give int64."""
    return _cumulative(Cumsum, input, dim, dtype, "cumsum")


# ------------------------------------------------------------------ sorting and friends

sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])
median_result = namedtuple("median", ["values", "indices"])
nanmedian_result = namedtuple("nanmedian", ["values", "indices"])
mode_result = namedtuple("mode", ["values", "indices"])
aminmax_result = namedtuple("aminmax", ["min", "max"])


class TakeAlong(Function):
    """``take_along_axis`` with indices distinct along ``axis`` (sort, topk, median): the
    gradient is written back to the taken positions."""

    @staticmethod
    def forward(ctx, x, idx, axis):
        ctx.in_shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(idx)
        return get_xp(x).take_along_axis(x, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        from darklib.ops.indexing import _flat_index

        (idx,) = ctx.saved_tensors
        gx = get_xp(g).zeros(ctx.in_shape, g.dtype)
        gx.reshape(-1)[_flat_index(ctx.in_shape, ctx.axis, idx).reshape(-1)] = g.reshape(-1)
        return gx, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        axis = ctx.axis
        return higher_order.linear_adjoints(
            ctx, g, {0: lambda v: get_xp(v).take_along_axis(v, idx, axis=axis)}
        )


class MedianAll(Extreme):
    """The median of all elements; as PyTorch, its gradient is shared by every element
    equal to it (Extreme's backward)."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, is_max, nan_hits):
        xp = get_xp(x)
        if x.dtype.kind == "f" and xp.isnan(x).any():
            out = xp.full((), np.nan, x.dtype)
        else:
            out = xp.sort(x)[(x.size - 1) // 2]
        ctx.save_for_backward(x, xp.asarray(out).reshape(1))
        ctx.axes, ctx.nan_hits = None, True
        return xp.asarray(out).reshape(())


def _on_input_device(fn: Any) -> Any:
    """Run ``fn(input, ...)`` on the GPU holding ``input`` (CuPy allocates on the current
    device): for ops that compute indices outside Function.apply (sort, topk, median...)."""

    @functools.wraps(fn)
    def run(input: Any, *args: Any, **kwargs: Any) -> Any:
        arr = getattr(input, "array", None)
        if arr is None or not is_cuda_array(arr):
            return fn(input, *args, **kwargs)
        with arr.device:
            return fn(input, *args, **kwargs)

    return run


def _sort_indices(arr: Any, axis: int, descending: bool, stable: bool) -> Any:
    """Indices that sort ``arr`` along ``axis``; NaN counts as the largest (as PyTorch)."""
    xp = get_xp(arr)
    kind = "stable" if stable else None
    if not descending:
        return xp.argsort(arr, axis=axis, kind=kind)
    # descending and still stable among equals: sort the reversed array ascending, reverse
    n = arr.shape[axis]
    rev = xp.argsort(xp.flip(arr, axis=axis), axis=axis, kind="stable")
    return (n - 1) - xp.flip(rev, axis=axis)


def _rows(arr: Any, axis: int) -> Any:
    """``arr`` with ``axis`` moved last, as (rows, n)."""
    return np.moveaxis(arr, axis, -1).reshape(-1, arr.shape[axis])


def _unrows(idx: Any, shape: tuple, axis: int) -> Any:
    """(rows, m) indices from :func:`_rows` back in ``shape``'s layout, m along ``axis``."""
    lead = shape[:axis] + shape[axis + 1 :]
    return np.moveaxis(idx.reshape(*lead, idx.shape[-1]), -1, axis)


def _equal(a: Any, v: Any) -> Any:
    """``a == v`` with NaN equal to NaN (the sort's view: NaN is one value, the largest)."""
    eq = a == v
    if a.dtype.kind in "fc" and np.isnan(v).any():
        eq |= np.isnan(a) & np.isnan(v)
    return eq


def _before(a: Any, v: Any, descending: bool) -> Any:
    """Where ``a`` sorts strictly before ``v`` (ascending or descending; NaN largest)."""
    if a.dtype.kind not in "fc":
        return a > v if descending else a < v
    if descending:
        return (a > v) | (np.isnan(a) & ~np.isnan(v))
    return (a < v) | (~np.isnan(a) & np.isnan(v))


def _first_ties(a: Any, v: Any, before: Any, count: Any) -> Any:
    """The stable sort's choice among ties: where ``a`` sorts before ``v`` plus the first
    ``count`` (per row) elements equal to ``v`` in index order; (rows, n) booleans."""
    eq = _equal(a, v)
    return before | (eq & (np.cumsum(eq, axis=1) <= count[:, None]))


def _topk_rows(a: Any, k: int, largest: bool) -> Any:
    """The first ``k`` of the stable sort of each row of (rows, n) ``a`` (descending if
    ``largest``; NaN largest), by partition: the k candidates' ties at the cut are settled
    as the stable sort settles them (lowest indices first), and only they are sorted."""
    n = a.shape[1]
    cut = n - k if largest else k - 1
    part = np.argpartition(a, cut, axis=1)
    part = part[:, cut:] if largest else part[:, :k]
    vals = np.take_along_axis(a, part, axis=1)
    v = vals[:, :1] if largest else vals[:, k - 1 :]  # the cut's value: the worst kept
    # rows where some element equal to the cut's value was left out: pick as the sort does
    short = _equal(a, v).sum(axis=1) > _equal(vals, v).sum(axis=1)
    if short.any():
        sub, vs = a[short], v[short]
        before = _before(sub, vs, largest)
        take = _first_ties(sub, vs, before, k - before.sum(axis=1))
        part[short] = np.nonzero(take)[1].reshape(-1, k)
    part.sort(axis=1)  # index order, so that the stable sort below keeps ties in it
    vals = np.take_along_axis(a, part, axis=1)
    return np.take_along_axis(part, _sort_indices(vals, 1, largest, True), axis=1)


def _topk_blocks(a: Any, k: int, largest: bool, size: int) -> Any:
    """:func:`_topk_rows` for k small beside the rows: the row is cut into ``size`` groups
    of ``nb`` values (group g holds positions g, g + nb, g + 2 nb, ...; the tail past
    ``nb * size`` is kept aside), and only the k groups with the best extremes (and the
    tail) can hold the top k, when every other group's extreme is strictly worse; rows
    with a tie there take the whole row.

    Groups of interleaved positions, not runs of neighbours: their extremes are a NumPy
    reduction over the middle axis of (rows, size, nb), vectorised along the rows of
    ``nb`` values (0.4-0.7 ms for (256, 10000) float32, where the maxima of contiguous
    runs, a reduction along a short last axis, took 2.5-5 ms). The k best groups are
    those reaching the k-th best extreme, found by ``np.partition`` of the values
    (3-6x faster than ``argpartition``), and their members are gathered by flat
    positions (``take_along_axis`` with a broadcast index took 1.2 ms)."""
    rows, n = a.shape
    nb = n // size
    groups = a[:, : nb * size].reshape(rows, size, nb)
    # NaN is the largest value: it wins a group's max, and loses its min (fmin skips it)
    best = np.maximum.reduce(groups, axis=1) if largest else np.fmin.reduce(groups, axis=1)
    kth = nb - k if largest else k - 1  # np.partition puts NaN last, as the largest
    cut = np.partition(best, kth, axis=1)[:, kth : kth + 1]
    if largest:
        keep = best >= cut
        if best.dtype.kind in "fc":
            keep |= np.isnan(best)
    else:
        keep = best <= cut
    ok = keep.sum(axis=1) == k  # else another group ties with the k-th (or NaN cut)
    out = np.empty((rows, k), np.int64)
    every = bool(ok.all())
    if every or ok.any():
        pick = np.nonzero(keep if every else keep[ok])[1].reshape(-1, k)  # ascending groups
        m = pick.shape[0]
        # members in index order: (member, group) ascends, then the tail
        where = (np.arange(size)[:, None] * nb + pick[:, None, :]).reshape(m, size * k)
        if nb * size < n:
            tail = np.broadcast_to(np.arange(nb * size, n), (m, n - nb * size))
            where = np.concatenate([where, tail], axis=1)
        sub = a if every else a[ok]
        flat = where + (np.arange(m) * n)[:, None]
        cand = np.take(sub.reshape(-1), flat)
        found = np.take_along_axis(where, _topk_rows(cand, k, largest), axis=1)
        if every:
            return found
        out[ok] = found
    out[~ok] = _topk_rows(a[~ok], k, largest)
    return out


def _topk_indices(arr: Any, axis: int, k: int, largest: bool) -> Any:
    """``_sort_indices(arr, axis, largest, True)`` cut to its first ``k`` along ``axis``,
    without sorting whole rows (NumPy). Groups of about sqrt(n / k) values balance the
    two partitions of :func:`_topk_blocks` (over n / size group extremes, then over
    k * size candidates)."""
    a = _rows(arr, axis)
    n = a.shape[1]
    size = builtins.min(64, math.isqrt(n // k))
    out = _topk_blocks(a, k, largest, size) if size >= 8 else _topk_rows(a, k, largest)
    return _unrows(out, arr.shape, axis)


def _kth_index(arr: Any, axis: int, q: int) -> Any:
    """``_sort_indices(arr, axis, False, True)[q]`` along ``axis`` (kept as a dim of 1),
    from a partition (NumPy): ties with the q-th value are settled as the stable sort
    settles them."""
    a = _rows(arr, axis)
    pick = np.argpartition(a, q, axis=1)[:, q : q + 1]
    v = np.take_along_axis(a, pick, axis=1)
    tied = _equal(a, v).sum(axis=1) > 1
    if tied.any():
        sub, vs = a[tied], v[tied]
        # the (q + 1)-th in sorted order: after those before it, the j-th equal one
        j = q + 1 - _before(sub, vs, False).sum(axis=1)
        pick[tied] = np.argmax(np.cumsum(_equal(sub, vs), axis=1) == j[:, None], axis=1)[:, None]
    return _unrows(pick, arr.shape, axis)


def _sort_prep(input: Tensor, dim: int, op: str) -> tuple[Tensor, int]:
    x = _check_tensor(input, op)
    d = norm_dim(dim, x.ndim, op)
    return (_reshape(x, 1), 0) if x.ndim == 0 else (x, d)


def searchsorted(
    sorted_sequence: Tensor,
    input: Any,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
) -> Tensor:
    """Insertion positions of ``input`` in ``sorted_sequence``, sorted along its last dim:
    1-D sequences take any ``input``; N-D ones search row by row (``input`` with the same
    leading dims). ``right``/``side='right'``: after equal values."""
    seq = _check_tensor(sorted_sequence, "searchsorted")
    if side is not None:
        if side not in ("left", "right") or (right and side == "left"):
            raise RuntimeError(f"searchsorted(): side must be 'left' or 'right', got {side!r}")
        right = side == "right"
    xp = get_xp(seq.array)
    vals = input.array if isinstance(input, Tensor) else xp.asarray(input)
    how = "right" if right else "left"
    if seq.ndim > 1 and tuple(vals.shape[:-1]) != tuple(seq.shape[:-1]):
        raise RuntimeError(
            f"searchsorted(): boundaries {tuple(seq.shape)} and input {tuple(vals.shape)} "
            "must have the same leading dims"
        )
    if seq.array.dtype.kind == "f" and bool(xp.isnan(seq.array).any()):
        out = _bisect(xp, seq.array.reshape(-1) if seq.ndim <= 1 else seq.array, vals, right)
    elif seq.ndim <= 1:
        out = xp.searchsorted(seq.array.reshape(-1), vals, side=how)
    else:
        # row by row at once: how many boundaries lie below each value (NaN past them all)
        below = seq.array[..., None, :] <= vals[..., None] if right else None
        if below is None:
            below = seq.array[..., None, :] < vals[..., None]
        out = below.sum(axis=-1)
        out = xp.where(xp.isnan(vals), seq.shape[-1], out) if vals.dtype.kind == "f" else out
    return Tensor._wrap(_arr(xp, out).astype(np.int32 if out_int32 else _I64))


def _bisect(xp: Any, seq: Any, vals: Any, right: bool) -> Any:
    """torch's binary search step by step, for boundaries that hold NaN, where the answer
    depends on the steps: a comparison with NaN is false, so the search moves right past
    a NaN boundary (``searchsorted([1, 5, nan], 6)`` is 3, not NumPy's 2). ``seq`` is 1-D,
    or (..., n) with ``vals`` (..., m) of the same leading dims; all values at once."""
    n = seq.shape[-1]
    lo = xp.zeros(vals.shape, np.int64)
    hi = xp.full(vals.shape, n, np.int64)
    for _ in range(int(n).bit_length() + 1):  # (the interval halves: no host check needed)
        active = lo < hi
        mid = (lo + hi) >> 1
        safe = xp.minimum(mid, n - 1)
        mv = seq[safe] if seq.ndim == 1 else xp.take_along_axis(seq, safe, axis=-1)
        with np.errstate(invalid="ignore"):
            up = ~(mv > vals) if right else ~(mv >= vals)
        lo = xp.where(active & up, mid + 1, lo)
        hi = xp.where(active & ~up, mid, hi)
    return lo


def bucketize(
    input: Any, boundaries: Tensor, *, out_int32: bool = False, right: bool = False
) -> Tensor:
    """The bucket of each value among 1-D sorted ``boundaries`` (searchsorted's argument
    order reversed, as torch)."""
    if not isinstance(boundaries, Tensor) or boundaries.ndim != 1:
        raise RuntimeError("bucketize(): boundaries tensor must be 1 dimension")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def isin(
    elements: Any, test_elements: Any, *, assume_unique: bool = False, invert: bool = False
) -> Tensor:
    """Whether each of ``elements`` is among ``test_elements`` (tensors or numbers)."""
    el = elements if isinstance(elements, Tensor) else Tensor._wrap(np.asarray(elements))
    xp = get_xp(el.array)
    test = test_elements.array if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return Tensor._wrap(xp.isin(el.array, test, assume_unique=assume_unique, invert=invert))


@_on_input_device
def sort(
    input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False
) -> tuple[Tensor, Tensor]:
    """``(values, indices)`` sorted along ``dim``; NaN sorts as the largest value.

    Equal elements keep their order (the sort is always stable here). Gradients flow to
    the values' original positions.
    """
    x, d = _sort_prep(input, dim, "sort")
    idx = _sort_indices(x.array, d, bool(descending), True).astype(_I64, copy=False)
    values = TakeAlong.apply(x, idx, d)
    if input.ndim == 0:
        return sort_result(_reshape(values, ()), Tensor._wrap(idx.reshape(())))
    return sort_result(values, Tensor._wrap(idx))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices :func:`sort` would return."""
    return sort(input, dim, descending, stable).indices


@_on_input_device
def topk(
    input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
) -> tuple[Tensor, Tensor]:
    """The ``k`` largest (or smallest) elements along ``dim`` as ``(values, indices)``,
    in sorted order."""
    x, d = _sort_prep(input, dim, "topk")
    _no_bool(x, "topk")
    k = _int(k, "topk", "k")
    n = x.shape[d]
    if not 0 <= k <= n:
        raise RuntimeError(
            f"topk(): selected index k={k} out of range for dimension {d} of size {n} "
            f"(input shape {list(input.shape)})"
        )
    if get_xp(x.array) is np and 0 < k and 2 * k <= n:
        idx = _topk_indices(x.array, d, k, bool(largest)).astype(_I64, copy=False)
    else:
        idx = _sort_indices(x.array, d, bool(largest), True)
        idx = idx[(slice(None),) * d + (slice(0, k),)].astype(_I64, copy=False)
    values = TakeAlong.apply(x, idx, d)
    if input.ndim == 0:
        return topk_result(_reshape(values, ()), Tensor._wrap(idx.reshape(())))
    return topk_result(values, Tensor._wrap(idx))


def _no_bool(x: Tensor, op: str) -> None:
    if x.array.dtype == bool:
        raise RuntimeError(f"{op}: bool tensors are not supported (torch neither); use .int()")


def _nan_of(x: Tensor) -> Tensor:
    """The median of an empty tensor, as torch: NaN, still in the graph (zero gradients);
    integer and bool tensors keep their dtype (NaN cast to it: int64's lowest, True)."""
    if x.array.dtype.kind == "f":
        return _E.mul(x.sum(), math.nan)
    host = _dt.silent(lambda: np.asarray(math.nan).astype(x.array.dtype))  # the host's cast
    return Tensor._wrap(get_xp(x.array).asarray(host))


def _nonempty_dim(x: Any, dim: Any, op: str) -> tuple:
    """``(x, d, n)`` for a selection along ``dim`` (median, nanmedian, mode): its length
    ``n`` must not be 0."""
    x, d = _sort_prep(x, dim, op)
    n = x.shape[d]
    if n == 0:
        raise OutOfRange(f"{op}(): expected dim {d} of shape {list(x.shape)} to be non-empty")
    return x, d, n


@_on_input_device
def median(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """The lower median (of all elements, or ``(values, indices)`` along ``dim``); NaN
    propagates, as in PyTorch."""
    x = _check_tensor(input, "median")
    if dim is None:
        if x.array.size == 0:
            return _nan_of(x)
        _no_bool(x, "median")
        return MedianAll.apply(_reshape(x, -1), None, False, True, True)
    _no_bool(x, "median")
    x, d, n = _nonempty_dim(x, dim, "median")
    xp = get_xp(x.array)
    k = (n - 1) // 2
    if xp is np:
        pick = _kth_index(x.array, d, k)
    else:
        pick = _sort_indices(x.array, d, False, True)[(slice(None),) * d + (slice(k, k + 1),)]
    if x.array.dtype.kind == "f":  # a NaN anywhere along dim is the median
        isn = xp.isnan(x.array)
        first_nan = xp.argmax(isn, axis=d, keepdims=True)
        pick = xp.where(isn.any(axis=d, keepdims=True), first_nan, pick)
    pick = pick.astype(_I64, copy=False)
    values = TakeAlong.apply(x, pick, d)
    if input.ndim == 0 or not keepdim:
        shape = () if input.ndim == 0 else pick.shape[:d] + pick.shape[d + 1 :]
        return median_result(_reshape(values, shape), Tensor._wrap(pick.reshape(shape)))
    return median_result(values, Tensor._wrap(pick))


class NanMedianAll(Extreme):
    """The median of the non-NaN elements (NaN if there are none); as PyTorch, its gradient
    is shared by every element equal to it (NaN ones when the result is NaN)."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, is_max, nan_hits):
        xp = get_xp(x)
        ordered = xp.sort(x)  # NaN last
        if x.dtype.kind == "f":
            m = x.size - xp.count_nonzero(xp.isnan(x))  # on the device: no host round trip
            k = xp.maximum(m - 1, 0) // 2
            out = xp.where(m > 0, xp.take(ordered, k), xp.asarray(np.nan, x.dtype))
        else:
            out = ordered[(x.size - 1) // 2]
        out = xp.asarray(out, x.dtype).reshape(1)
        ctx.save_for_backward(x, out)
        ctx.axes, ctx.nan_hits = None, True
        return out.reshape(())


@_on_input_device
def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """:func:`median` ignoring NaN: the lower median of the non-NaN elements (of all
    elements, or ``(values, indices)`` along ``dim``), NaN only where every element is NaN.

    Along ``dim`` the index is that of the picked element, ties resolved as :func:`median`
    resolves them (PyTorch's choice); for an all-NaN row it is the first NaN (PyTorch's
    index there depends on its partial sort). The gradient goes to that index; without
    ``dim`` it is shared by every element equal to the result, as PyTorch shares it.

    Example::

        >>> dl.tensor([1.0, float("nan"), 3.0, 2.0]).nanmedian()
        tensor(2.)
    """
    x = _check_tensor(input, "nanmedian")
    if dim is None:
        if x.array.size == 0:
            return _nan_of(x)
        return NanMedianAll.apply(_reshape(x, -1), None, False, True, True)
    x, d, n = _nonempty_dim(x, dim, "nanmedian")
    xp = get_xp(x.array)
    order = _sort_indices(x.array, d, False, True)  # NaN last, in their original order
    if x.array.dtype.kind == "f":
        m = n - xp.isnan(x.array).sum(axis=d, keepdims=True)
        k = xp.maximum(m - 1, 0) // 2
    else:
        k = xp.full((*order.shape[:d], 1, *order.shape[d + 1 :]), (n - 1) // 2, _I64)
    pick = xp.take_along_axis(order, k.astype(_I64, copy=False), axis=d).astype(_I64, copy=False)
    values = TakeAlong.apply(x, pick, d)
    if input.ndim == 0 or not keepdim:
        shape = () if input.ndim == 0 else pick.shape[:d] + pick.shape[d + 1 :]
        return nanmedian_result(_reshape(values, shape), Tensor._wrap(pick.reshape(shape)))
    return nanmedian_result(values, Tensor._wrap(pick))


@_on_input_device
def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> Any:
    """The most frequent value along ``dim`` and its index, as ``(values, indices)``.

    Among equally frequent values the smallest wins, and the index is its last occurrence
    (PyTorch's choice on the CPU for rows of up to 16 elements; for longer rows PyTorch's
    index is any occurrence, as its sort there is not stable). Each NaN counts as a value
    of its own, as in PyTorch (``[3, nan, 3, nan, nan]`` gives 3), and loses ties to the
    numbers, so NaN is the mode only of a row of NaNs (where NaNs tie with numbers,
    PyTorch's pick follows its sort's order among the NaNs: either may come out there).
    The gradient goes to the returned index.

    Example::

        >>> dl.tensor([3, 1, 3, 1, 2]).mode()
        mode(values=tensor(1), indices=tensor(3))
    """
    x, d, n = _nonempty_dim(input, dim, "mode")
    xp = get_xp(x.array)
    a = xp.moveaxis(x.array, d, -1)
    rows = a.reshape(-1, n)
    order = xp.argsort(rows, axis=-1, kind="stable")  # equal values keep their order
    srt = xp.take_along_axis(rows, order, axis=-1)
    new = srt[:, 1:] != srt[:, :-1]  # where a run of equal values starts
    starts = xp.concatenate([xp.ones((rows.shape[0], 1), bool), new], axis=1)
    run = xp.cumsum(starts, axis=1) - 1  # run number of each sorted position
    flat = run + xp.arange(rows.shape[0]).reshape(-1, 1) * n
    if xp is np:
        counts = np.bincount(flat.reshape(-1), minlength=rows.size)
    else:  # (CuPy's bincount syncs twice and fails on empty input: scatter-add instead,
        # into int32, as cupyx.scatter_add refuses int64; counts stay below n < 2**31)
        counts = xp.zeros(rows.size, np.int32)
        gpu_scatter("scatter_add")(counts, flat.reshape(-1), 1)
    counts = counts.reshape(-1, n)
    count_at = xp.take_along_axis(counts, run, axis=1)
    first = xp.argmax(count_at, axis=1)  # first position of the longest (smallest) run
    last = first + xp.take_along_axis(count_at, first[:, None], axis=1)[:, 0] - 1
    # (NaNs sort last and each starts a run of its own: NaN != NaN)
    pick = xp.take_along_axis(order, last[:, None], axis=1).astype(_I64, copy=False)
    pick = xp.moveaxis(pick.reshape((*a.shape[:-1], 1)), -1, d)
    values = TakeAlong.apply(x, pick, d)
    if input.ndim == 0 or not keepdim:
        shape = () if input.ndim == 0 else pick.shape[:d] + pick.shape[d + 1 :]
        return mode_result(_reshape(values, shape), Tensor._wrap(pick.reshape(shape)))
    return mode_result(values, Tensor._wrap(pick))


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> Any:
    """``(min, max)`` over all elements or along ``dim``."""
    d = () if dim is None else dim
    return aminmax_result(amin(input, d, keepdim), amax(input, d, keepdim))


def var_mean(
    input: Tensor,
    dim: Any = None,
    unbiased: Any = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``(var, mean)`` over ``dim``."""
    return _with_mean(var, input, dim, unbiased, keepdim, correction)


def std_mean(
    input: Tensor,
    dim: Any = None,
    unbiased: Any = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``(std, mean)`` over ``dim``."""
    return _with_mean(std, input, dim, unbiased, keepdim, correction)


def _with_mean(
    stat: Any, input: Tensor, dim: Any, unbiased: Any, keepdim: bool, correction: float | None
) -> tuple[Tensor, Tensor]:
    """``(stat, mean)``; a bool in ``dim``'s place is the legacy ``unbiased`` (all dims)."""
    first = stat(input, dim, unbiased, keepdim, correction=correction)
    if isinstance(dim, builtins.bool | np.bool_):
        dim = None
    return first, mean(input, dim, keepdim)


def count_nonzero(input: Tensor, dim: Any = None) -> Tensor:
    """The number of non-zero elements (int64), in all or along ``dim``."""
    x = _check_tensor(input, "count_nonzero")
    axes = _axes(x, dim, "count_nonzero")
    return Tensor._wrap(_arr(get_xp(x.array), (x.array != 0).sum(axis=axes, dtype=_I64)))


def nansum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum treating NaN as zero (their gradient is zero)."""
    x = _check_tensor(input, "nansum")
    if x.array.dtype.kind == "f":
        x = _E.where(_E.isnan(x), 0.0, x)
    return sum(x, dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over the non-NaN elements."""
    x = _as_float(_check_tensor(input, "nanmean"), "nanmean")
    n = sum(_E.logical_not(_E.isnan(x)), dim, keepdim)
    return _E.div(nansum(x, dim, keepdim, dtype=dtype), n)


class Cumprod(Function):
    @staticmethod
    def forward(ctx, x, axis):
        out = _running(get_xp(x).cumprod, x, axis)
        ctx.save_for_backward(x, out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        xp, a = get_xp(g), ctx.axis

        if not (x == 0).any():
            return _reverse_cumsum(g * out, a) / x, None
        # with zeros: d out_j / d x_i = prod_{k <= j, k != i} x_k, one masked cumprod per i
        xm, gm = xp.moveaxis(x, a, -1), xp.moveaxis(g, a, -1)
        n = xm.shape[-1]
        eye = xp.eye(n, dtype=bool)
        rep = xp.where(eye, xp.ones((), x.dtype), xm[..., None, :])  # x with x_i -> 1
        part = xp.cumprod(rep, axis=-1) * xp.triu(xp.ones((n, n), x.dtype))
        gx = (part * gm[..., None, :]).sum(axis=-1)
        return xp.moveaxis(gx, -1, a), None

    @staticmethod
    def backward_graph(ctx, g):
        x, out = ctx.saved_tensors
        _no_zeros(x, "cumprod")
        a = ctx.axis
        later = (g * ctx.lift_output(out)).flip(a).cumsum(a).flip(a)  # sum over j >= i
        return later / ctx.lift(x, 0), None


def _logcumsumexp(a: Any, axis: int) -> Any:
    return _accumulate(get_xp(a).logaddexp, a, axis)


class LogCumSumExp(Function):
    """log(cumsum(exp(x))) as a running logaddexp; the gradient as torch computes it, in
    log space with positive and negative parts apart (no overflow)."""

    @staticmethod
    def forward(ctx, x, axis):
        out = _logcumsumexp(x, axis)
        ctx.save_for_backward(x, out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        xp, axis = get_xp(g), ctx.axis

        def reverse(a: Any) -> Any:
            return xp.flip(_logcumsumexp(xp.flip(a, axis), axis), axis)

        log_g = xp.log(xp.abs(g))
        floor = xp.asarray(-xp.inf, g.dtype)
        pos = xp.exp(reverse(xp.where(g > 0, log_g, floor) - out) + x)
        neg = xp.exp(reverse(xp.where(g < 0, log_g, floor) - out) + x)
        return pos - neg, None

    @staticmethod
    def backward_graph(ctx, g):
        x, _ = ctx.saved_tensors
        a, xp = ctx.axis, get_xp(x)
        top = _max_or_zero(x, a)  # shifted by the largest entry: no overflow in exp
        top = Tensor._wrap(xp.where(xp.isfinite(top), top, 0).astype(x.dtype, copy=False))

        def forward(x, _):  # log(cumsum(exp(x - top))) + top, from differentiable ops
            return (x - top).exp().cumsum(a).log() + top

        return higher_order.recompute(ctx, g, forward, (x, None))


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """``log(cumsum(exp(input)))`` along ``dim``, computed without overflow."""
    x = _as_float(_check_tensor(input, "logcumsumexp"), "logcumsumexp")
    return _cumulative(LogCumSumExp, x, dim, None, "logcumsumexp")


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running product along ``dim``. Integer and bool inputs give int64."""
    return _cumulative(Cumprod, input, dim, dtype, "cumprod")


kthvalue_result = namedtuple("kthvalue", ["values", "indices"])
cummax_result = namedtuple("cummax", ["values", "indices"])
cummin_result = namedtuple("cummin", ["values", "indices"])


@_on_input_device
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """The ``k``-th smallest element along ``dim`` as ``(values, indices)``."""
    x, d = _sort_prep(input, dim, "kthvalue")
    k = _int(k, "kthvalue", "k")
    n = x.shape[d]
    if not 1 <= k <= n:
        raise OutOfRange(f"kthvalue(): k={k} is out of range for dimension {d} of size {n}")
    if get_xp(x.array) is np:
        pick = _kth_index(x.array, d, k - 1).astype(_I64, copy=False)
    else:
        order = _sort_indices(x.array, d, False, True)
        pick = order[(slice(None),) * d + (slice(k - 1, k),)].astype(_I64, copy=False)
    values = TakeAlong.apply(x, pick, d)
    if input.ndim == 0 or not keepdim:
        shape = () if input.ndim == 0 else pick.shape[:d] + pick.shape[d + 1 :]
        return kthvalue_result(_reshape(values, shape), Tensor._wrap(pick.reshape(shape)))
    return kthvalue_result(values, Tensor._wrap(pick))


def _accumulate(fn: Any, a: Any, axis: int) -> Any:
    """``fn.accumulate(a, axis)``; CuPy accumulates only add and multiply, so there
    :func:`_log_scan`."""
    if get_xp(a) is np:
        return fn.accumulate(a, axis=axis)
    return _log_scan(fn, a, axis)


def _log_scan(fn: Any, a: Any, axis: int) -> Any:
    """An inclusive scan of the binary ufunc ``fn`` in log2(n) whole-array steps: after
    the step of width s, each element holds fn over the 2s elements ending at it."""
    xp = get_xp(a)
    out = xp.moveaxis(a, axis, -1).copy()
    s = 1
    while s < out.shape[-1]:
        out[..., s:] = fn(out[..., s:], out[..., :-s])  # the right side is a new array
        s *= 2
    return xp.moveaxis(out, -1, axis)


def _scan_extreme(fn: Any, a: np.ndarray, axis: int) -> np.ndarray:
    """``fn.accumulate(a, axis)`` for ``np.maximum`` or ``np.minimum`` (exact in any order),
    as whole-slice NumPy calls.

    NumPy's own accumulate walks the array one element at a time: 10 ns per value along a
    leading axis, 3.3 ns along the last (cummax of (64, 4096) float32 took 2.8 and 0.9 ms
    for dims 0 and 1, torch 1.5 and 0.3 ms for values and indices). Here, with enough
    values per step (rows times trailing dims), the scan is one call per step over whole
    slices. Otherwise the axis is cut into chunks of 16: one call per step within the
    chunks, over every row and chunk at once, then the chunks' last values accumulated
    (a 16th of the array) and carried into the chunks after them (one call). Chunks of
    16 measured best, 8 to 64 within 20%: (64, 4096) along dim 1 0.54 ms, (256, 10000)
    3.6 ms (NumPy 8.5 ms), one row of 1e6 1.3 ms (3.3 ms). The last chunk is padded with
    copies of the last slice (after every real position: they change none of them).
    """
    n = a.shape[axis]
    pre, post = math.prod(a.shape[:axis]), math.prod(a.shape[axis + 1 :])
    if a.size < _SCAN_MIN or n < 2:
        return fn.accumulate(a, axis=axis)
    c = 1 if pre * post >= _SCAN_WIDTH else -(-n // _SCAN_CHUNK)
    k = -(-n // c)
    b = np.ascontiguousarray(a).reshape(pre, n, post)
    if c * k > n:  # (a copy either way: the scan runs in place)
        b = np.concatenate([b, np.repeat(b[:, -1:], c * k - n, axis=1)], axis=1)
    else:
        b = b.copy()
    b4 = b.reshape(pre, c, k, post)
    for j in range(1, k):
        fn(b4[:, :, j - 1], b4[:, :, j], out=b4[:, :, j])
    if c > 1:
        carry = fn.accumulate(b4[:, :, k - 1], axis=1)  # the running extreme at chunk ends
        fn(b4[:, 1:], carry[:, :-1, None], out=b4[:, 1:])
    return b[:, :n].reshape(a.shape)


_SCAN_MIN = 1 << 14  # values below which NumPy's accumulate is as fast
_SCAN_WIDTH = 4096  # values per step from which one chunk spans the scanned axis
_SCAN_CHUNK = 16


class CumExtreme(Function):
    """cummax/cummin's values: ``Gather`` along ``axis`` at ``idx``, handed its result
    (NumPy's running extreme, which is already ``x[idx]``); Gather's gradients."""

    @staticmethod
    def forward(ctx, x, idx, axis, values):
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(idx)
        return values

    @staticmethod
    def backward(ctx, g):
        from darklib.ops.indexing import Gather

        return (*Gather.backward(ctx, g), None)

    @staticmethod
    def backward_graph(ctx, g):
        from darklib.ops.indexing import Gather

        return Gather.backward_graph(ctx, g)


def _cum_extreme(input: Tensor, dim: int, is_max: bool) -> Any:
    from darklib.ops.indexing import Gather

    op = "cummax" if is_max else "cummin"
    x = _check_tensor(input, op)
    d = norm_dim(dim, x.ndim, op)
    if x.ndim == 0:
        res = _cum_extreme(_reshape(x, 1), 0, is_max)
        return type(res)(_reshape(res[0], ()), _reshape(res[1], ()))
    xp = get_xp(x.array)
    if xp is np:  # whole-slice scans (:func:`_scan_extreme`)
        acc = _scan_extreme(np.maximum if is_max else np.minimum, x.array, d)
    else:
        acc = _accumulate(xp.maximum if is_max else xp.minimum, x.array, d)
    # the latest position holding the running extreme (PyTorch's choice among ties)
    shape = [1] * x.ndim
    shape[d] = -1
    small = x.shape[d] < 2**31  # (int32 positions: half the memory to scan)
    pos = xp.arange(x.shape[d], dtype=np.int32 if small else _I64).reshape(shape)
    # a NaN takes over, as in torch: from there on the index is the latest NaN's
    hit = (x.array == acc) | xp.isnan(x.array) if x.array.dtype.kind == "f" else x.array == acc
    if xp is np:
        idx = _scan_extreme(np.maximum, hit * pos, d).astype(_I64)
    else:
        idx = _accumulate(xp.maximum, xp.where(hit, pos, 0), d).astype(_I64)
    if xp is np:  # NumPy's running extreme is already x[idx] (of equals, the later one)
        values = CumExtreme.apply(x, idx, d, acc)
    else:
        values = Gather.apply(x, idx, d)
    result = cummax_result if is_max else cummin_result
    return result(values, Tensor._wrap(idx))


def cummax(input: Tensor, dim: int) -> Any:
    """Running maximum along ``dim`` as ``(values, indices)``."""
    return _cum_extreme(input, dim, True)


def cummin(input: Tensor, dim: int) -> Any:
    """Running minimum along ``dim`` as ``(values, indices)``."""
    return _cum_extreme(input, dim, False)


# the weight of the upper neighbour, from the position q * (n - 1) and its floor
_QUANTILE_WEIGHTS = {
    "linear": lambda pos, lo: pos - lo,
    "lower": lambda pos, lo: np.zeros_like(pos),
    "higher": lambda pos, lo: (pos > lo).astype(np.float64),
    "midpoint": lambda pos, lo: np.where(pos > lo, 0.5, 0.0),
    "nearest": lambda pos, lo: np.round(pos) - lo,
}


@autocasts("quantile")
def quantile(
    input: Tensor,
    q: Any,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """The ``q``-th quantiles (``q`` a number or a 1-D tensor in [0, 1]) along ``dim`` (of
    all elements when ``dim`` is None) between the sorted neighbours at ``q * (n - 1)``:
    ``interpolation`` 'linear', 'lower', 'higher', 'midpoint' or 'nearest' (ties to
    even, as torch); a tensor ``q`` adds a leading dim."""
    if interpolation not in _QUANTILE_WEIGHTS:
        raise InvalidValue(
            f"quantile(): interpolation must be one of {', '.join(map(repr, _QUANTILE_WEIGHTS))}, "
            f"got {interpolation!r}"
        )
    x = _as_float(_check_tensor(input, "quantile"), "quantile")
    from darklib.ops.extras import _quantile_q  # (q's shape, dtype and range, as torch)

    qs, scalar_q = _quantile_q(q, x, "quantile")
    if x.array.size == 0:
        raise RuntimeError(f"quantile(): input tensor must be non-empty, got shape {list(x.shape)}")
    if x.ndim == 0:  # a 0-d tensor is its own quantile, along dim 0 or -1 too
        norm_dim(0 if dim is None else dim, 1, "quantile")
        dim = None
    if dim is None:
        src, d = _reshape(x, -1), 0
    else:
        src, d = x, norm_dim(dim, x.ndim, "quantile")
    vals = sort(src, d).values
    n = vals.shape[d]
    pos = qs * (n - 1)
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    from darklib.ops.indexing import index_select

    xp = get_xp(x.array)
    shape = [1] * vals.ndim
    shape[d] = -1
    weight = _QUANTILE_WEIGHTS[interpolation](pos, lo)
    if interpolation in ("lower", "higher", "nearest"):  # a pick, no arithmetic (inf stays)
        out = index_select(vals, d, Tensor._wrap(np.where(weight > 0, hi, lo)))
    else:  # torch's lerp: from the nearer end, so that infinities are not inf - inf
        a = index_select(vals, d, Tensor._wrap(lo))
        b = index_select(vals, d, Tensor._wrap(hi))
        diff = _E.sub(b, a)
        w = weight.reshape(shape)
        near = Tensor._wrap(xp.asarray(w < 0.5))
        up = _E.add(a, _E.mul(diff, Tensor._wrap(xp.asarray(w, x.array.dtype))))
        down = _E.sub(b, _E.mul(diff, Tensor._wrap(xp.asarray(1 - w, x.array.dtype))))
        out = _E.where(near, up, down)
    # a slice holding NaN has a NaN quantile (sorted last: that element, as torch)
    from darklib.ops.shape import narrow

    last = narrow(vals, d, n - 1, 1)
    out = _E.where(Tensor._wrap(xp.isnan(last.array)), last, out)
    from darklib.ops.shape import movedim

    out = movedim(out, d, 0)  # the q dim leads, as in PyTorch
    if keepdim:
        kept = [1] * x.ndim if dim is None else list(x.shape)
        if dim is not None:
            kept[d] = 1
        out = _reshape(out, len(qs), *kept)
    else:
        out = _reshape(out, len(qs), *([] if dim is None else list(out.shape[1:])))
    return out[0] if scalar_q else out


def _numpy_names(fn: Callable) -> Callable:
    """Also take NumPy's ``axis=`` and ``keepdims=`` for ``dim=`` and ``keepdim=``, as
    torch's reductions do."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        if not kw:
            return fn(*args)
        for alias, name in (("axis", "dim"), ("keepdims", "keepdim")):
            if alias in kw:
                if name in kw:
                    raise InvalidType(f"{fn.__name__}(): got both {name}= and {alias}=")
                kw[name] = kw.pop(alias)
        return fn(*args, **kw)

    return wrapper


for _name in (
    "sum mean var std max min amax amin argmax argmin logsumexp prod all any norm median "
    "nanmedian mode "
    "aminmax var_mean std_mean count_nonzero nansum nanmean quantile"
).split():
    globals()[_name] = _numpy_names(globals()[_name])
