"""Reductions: sum, mean, var/std, max/min (values and indices), amax/amin, argmax/argmin,
logsumexp, softmax/log_softmax, prod, all/any, norm, cumsum.

Each differentiable reduction is one Function whose backward broadcasts the output gradient
back over the reduced dims (a broadcast view, no copy where the array library allows it).
"""

from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.ops import elementwise as _E
from darklib.ops.elementwise import _quiet
from darklib.ops.shape import _check_tensor, norm_dim, norm_dims
from darklib.ops.shape import reshape as _reshape
from darklib.tensor import Tensor

_I64 = np.dtype(np.int64)

# PyTorch's torch.return_types.max / min: a (values, indices) named tuple
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])


# ------------------------------------------------------------------ helpers


def _axes(x: Tensor, dim: Any, op: str) -> tuple[int, ...] | None:
    """Reduction axes for the array library: None for all dims (dim None or empty)."""
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


def _count(in_shape: tuple, axes: tuple | None) -> int:
    return math.prod(in_shape if axes is None else [in_shape[a] for a in axes])


def _spread(g, in_shape, axes):
    """Broadcast an output gradient (either keepdim form) back over the input's shape."""
    g = g.reshape(_kept_shape(in_shape, axes))
    return get_xp(g).broadcast_to(g, in_shape)


def _arr(xp, r):
    # NumPy turns full reductions into scalars; keep 0-d arrays
    return r if isinstance(r, xp.ndarray) else xp.asarray(r)


def _as_float(x: Tensor, op: str) -> Tensor:
    if x.array.dtype.kind != "f":
        raise RuntimeError(
            f"{op}(): expected a floating-point input, got {x.dtype}; convert it with .float()"
        )
    return x


def _cast_dtype(x: Tensor, dtype: Any) -> Tensor:
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


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.in_shape, ctx.axes = x.shape, axes
        ctx.n = _count(x.shape, axes)
        xp = get_xp(x)
        with _quiet(xp):
            return _arr(xp, x.mean(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        return _spread(g / ctx.n if ctx.n else g * math.nan, ctx.in_shape, ctx.axes), None, None


class Var(Function):
    """Variance (``take_sqrt=False``) or standard deviation, with Bessel-style correction."""

    @staticmethod
    def forward(ctx, x, axes, correction, keepdim, take_sqrt):
        xp = get_xp(x)
        n = _count(x.shape, axes)
        denom = builtins.max(0.0, n - correction)
        diff = x - x.mean(axis=axes, keepdims=True)
        with _quiet(xp):
            out = _arr(xp, (diff * diff).sum(axis=axes, keepdims=keepdim) / x.dtype.type(denom))
            if take_sqrt:
                xp.sqrt(out, out=out)
        if denom == 0:
            warnings.warn(
                f"{'std' if take_sqrt else 'var'}(): degrees of freedom is <= 0 (reducing {n} "
                f"element(s) with correction={correction})",
                RuntimeWarning,
                stacklevel=4,
            )
        ctx.save_for_backward(diff, out if take_sqrt else None)
        ctx.in_shape, ctx.axes, ctx.denom, ctx.sqrt = x.shape, axes, denom, take_sqrt
        return out

    @staticmethod
    def backward(ctx, g):
        diff, out = ctx.saved_tensors
        shape = _kept_shape(ctx.in_shape, ctx.axes)
        xp = get_xp(g)
        with _quiet(xp):
            scale = g.reshape(shape) * (2.0 / ctx.denom if ctx.denom else math.inf)
            if ctx.sqrt:
                scale = scale / (2 * out.reshape(shape))
        return diff * scale.astype(diff.dtype, copy=False), None, None, None, None


class Extreme(Function):
    """amax/amin and whole-tensor max/min: ties share the gradient evenly (as PyTorch)."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, is_max):
        xp = get_xp(x)
        red = x.max if is_max else x.min
        out_k = _arr(xp, red(axis=axes, keepdims=True))
        ctx.save_for_backward(x, out_k)
        ctx.axes = axes
        return (
            out_k
            if keepdim
            else out_k.reshape(
                tuple(n for i, n in enumerate(x.shape) if not (axes is None or i in axes))
            )
        )

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        xp = get_xp(x)
        hit = x == out_k
        if x.dtype.kind == "f":
            hit |= xp.isnan(x) & xp.isnan(out_k)
        hit = hit.astype(g.dtype)
        count = hit.sum(axis=ctx.axes, keepdims=True)
        return hit * (g.reshape(out_k.shape) / count), None, None, None


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


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = get_xp(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), m.dtype))
        e = x - m
        xp.exp(e, out=e)
        with _quiet(xp):
            out_k = xp.log(e.sum(axis=axes, keepdims=True))
        out_k += m
        ctx.save_for_backward(x, out_k)
        ctx.axes = axes
        return (
            out_k
            if keepdim
            else out_k.reshape(
                tuple(n for i, n in enumerate(x.shape) if not (axes is None or i in axes))
            )
        )

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        p = x - out_k
        get_xp(x).exp(p, out=p)
        return p * g.reshape(out_k.shape), None, None


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = get_xp(x)
        y = x - x.max(axis=axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        gy = g * y
        gy -= y * gy.sum(axis=ctx.axis, keepdims=True)
        return gy, None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = get_xp(x)
        z = x - x.max(axis=axis, keepdims=True)
        e = xp.exp(z)
        with _quiet(xp):
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


class Prod(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdim):
        xp = get_xp(x)
        ctx.save_for_backward(x)
        ctx.axis = axis
        acc = _I64 if x.dtype.kind in "biu" else None
        return _arr(xp, x.prod(axis=axis, keepdims=keepdim, dtype=acc))

    @staticmethod
    def backward(ctx, g):
        # d(prod)/dx_i = product of all the others, from exclusive prefix and suffix products:
        # exact where inputs hold zeros, where dividing the product by x_i would fail.
        (x,) = ctx.saved_tensors
        xp = get_xp(x)
        axis = ctx.axis
        xm = x.reshape(-1) if axis is None else xp.moveaxis(x, axis, -1)
        n = xm.shape[-1]
        others = xp.ones(xm.shape, x.dtype)
        if n > 1:
            others[..., 1:] = xp.cumprod(xm[..., :-1], axis=-1)
            suffix = xp.flip(xp.cumprod(xp.flip(xm[..., 1:], axis=-1), axis=-1), axis=-1)
            others[..., :-1] *= suffix
        if axis is None:
            return (others * g.reshape(())).reshape(x.shape), None, None
        gk = g.reshape(_kept_shape(x.shape, (axis,)))
        return xp.moveaxis(others, -1, axis) * gk, None, None


class Norm2(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = get_xp(x)
        out_k = xp.sqrt(_arr(xp, (x * x).sum(axis=axes, keepdims=True)))
        ctx.save_for_backward(x, out_k)
        return (
            out_k
            if keepdim
            else out_k.reshape(
                tuple(n for i, n in enumerate(x.shape) if not (axes is None or i in axes))
            )
        )

    @staticmethod
    def backward(ctx, g):
        x, out_k = ctx.saved_tensors
        xp = get_xp(x)
        with _quiet(xp):
            scale = xp.where(out_k == 0, xp.zeros((), g.dtype), g.reshape(out_k.shape) / out_k)
        return x * scale, None, None


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        acc = _I64 if x.dtype.kind in "biu" else None
        return get_xp(x).cumsum(x, axis=axis, dtype=acc)

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        a = ctx.axis
        return xp.flip(xp.cumsum(xp.flip(g, axis=a), axis=a), axis=a), None


# ------------------------------------------------------------------ functional API


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple, or None for all). Integer and bool inputs sum to
    int64, as in PyTorch.

    Example::

        >>> dl.ones(2, 3).sum(dim=-1)
        tensor([3., 3.])
    """
    x = _cast_dtype(_check_tensor(input, "sum"), dtype)
    return Sum.apply(*_prep(x, dim, keepdim, "sum"))


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
    if isinstance(dim, builtins.bool):  # legacy var(input, unbiased)
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
        return Extreme.apply(*_prep(x, None, False, op), is_max)
    d = norm_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return _extreme(_reshape(x, 1), 0, False, is_max)
    if x.shape[d] == 0:
        raise IndexError(
            f"{op}(): expected reduction dim {d} to have non-zero size, got shape {list(x.shape)}"
        )
    xp = get_xp(x.array)
    idx_k = (xp.argmax if is_max else xp.argmin)(x.array, axis=d, keepdims=True)
    values = ExtremeDim.apply(x, idx_k, d, bool(keepdim))
    idx = idx_k if keepdim else idx_k.reshape(values.shape)
    result = max_result if is_max else min_result
    return result(values, Tensor._wrap(idx.astype(_I64, copy=False)))


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """``max(x)``: the largest element (0-d). ``max(x, dim, keepdim=False)``: a named tuple
    ``(values, indices)`` along ``dim``. ``max(x, other)``: elementwise maximum.

    Gradient: to the selected index along ``dim``; shared evenly among ties for ``max(x)``.
    """
    return _extreme(input, dim, keepdim, True)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """``min(x)``, ``min(x, dim, keepdim=False)`` -> ``(values, indices)``, or ``min(a, b)``."""
    return _extreme(input, dim, keepdim, False)


def _amaxmin(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    op = "amax" if is_max else "amin"
    x, axes, keepdim = _prep(_check_tensor(input, op), dim, keepdim, op)
    reduced = range(x.ndim) if axes is None else axes
    for a in reduced:
        if x.shape[a] == 0:
            raise IndexError(
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
    xp = get_xp(x.array)
    fn = xp.argmax if is_max else xp.argmin
    if dim is None:
        if x.array.size == 0:
            raise RuntimeError(
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
        raise IndexError(
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
        x = x.float()
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
        raise RuntimeError(
            f"{op}(): expected a floating-point input, got {x.dtype}; pass "
            "dtype=dl.float32 or call .float() first"
        )
    d = _softmax_dim(x, dim, op)
    if x.ndim == 0:
        return _reshape(fn.apply(_reshape(x, 1), 0), ())
    return fn.apply(x, d)


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``exp(x) / sum(exp(x), dim)``, stable, as one fused op.

    Args:
        input: input tensor.
        dim: dim along which the values sum to 1.
        dtype: cast the input to this dtype first.
    """
    return _softmax_like(Softmax, input, dim, dtype, "softmax")


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``x - logsumexp(x, dim)``, stable, as one fused op."""
    return _softmax_like(LogSoftmax, input, dim, dtype, "log_softmax")


def prod(
    input: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """Product of all elements, or along one ``dim``. Integer and bool inputs give int64."""
    x = _cast_dtype(_check_tensor(input, "prod"), dtype)
    if dim is not None:
        norm_dim(dim, x.ndim, "prod")
    x, axes, keepdim = _prep(x, dim, keepdim, "prod")
    return Prod.apply(x, None if axes is None else axes[0], keepdim)


def _logical(input: Tensor, dim: Any, keepdim: bool, op: str) -> Tensor:
    x, axes, keepdim = _prep(_check_tensor(input, op), dim, keepdim, op)
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
    if isinstance(p, str):
        raise RuntimeError(f"norm(): p={p!r} is not supported; use a number, inf or 'fro'")
    x, axes, keepdim = _prep(x, dim, keepdim, "norm")
    p = float(p)
    if p == 2:
        return Norm2.apply(x, axes, keepdim)
    if p == math.inf:
        return amax(_E.abs(x), () if axes is None else axes, keepdim)
    if p == -math.inf:
        return amin(_E.abs(x), () if axes is None else axes, keepdim)
    if p == 0:
        nz = (x.array != 0).sum(axis=axes, keepdims=keepdim, dtype=x.array.dtype)
        return Tensor._wrap(_arr(get_xp(x.array), nz))
    if p == 1:
        return sum(_E.abs(x), axes, keepdim)
    return _E.pow(sum(_E.pow(_E.abs(x), p), axes, keepdim), 1.0 / p)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``. Integer and bool inputs give int64."""
    x = _cast_dtype(_check_tensor(input, "cumsum"), dtype)
    d = norm_dim(dim, x.ndim, "cumsum")
    if x.ndim == 0:
        return _reshape(Cumsum.apply(_reshape(x, 1), 0), ())
    return Cumsum.apply(x, d)
