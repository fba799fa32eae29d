"""Numeric extras torch has beside the core ops: ``rsub``, ``gcd``/``lcm``, ``nextafter``,
``isposinf``/``isneginf``, ``deg2rad``/``rad2deg``, ``frexp``, ``positive``,
``nanquantile``, ``torch.gradient`` and ``unravel_index``.

Where torch has a gradient the op is built from darklib's differentiable ops (so autograd
and ``create_graph`` come from them), or is a small Function with ``backward_graph``;
integer-only ops (gcd, lcm) and flags work on the arrays directly, on either backend.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, broadcast_error
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.ops import elementwise as E
from darklib.ops._promote import promote, result_dtype
from darklib.ops.shape import _check_tensor, cat, diff, movedim, norm_dim, norm_dims, reshape
from darklib.tensor import Tensor

_I64 = np.dtype(np.int64)


def _other_tensor(other: Any, op: str) -> Tensor:
    if not isinstance(other, Tensor):
        raise InvalidType(
            f"{op}(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}"
        )
    return other


def _same_device(op: str, a: Tensor, b: Tensor) -> None:
    if type(a.array) is not type(b.array):
        raise RuntimeError(
            f"{op}(): expected all tensors on the same device, got {a.device} and {b.device}"
        )


# ------------------------------------------------------------------ arithmetic


def rsub(input: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """``other - alpha * input`` (``sub`` with the operands swapped), as ``torch.rsub``:
    ``input`` is a tensor, ``other`` a tensor or a number."""
    x = _check_tensor(input, "rsub")
    return E.sub(other, x, alpha=alpha)


def positive(input: Tensor) -> Tensor:
    """``+input``: the tensor itself; refused for bool tensors, as torch."""
    x = _check_tensor(input, "positive")
    if x.array.dtype.kind == "b":
        raise RuntimeError("positive: the `+` operator, on a bool tensor is not supported")
    return x


def _integer_op(name: str, ufunc: str):
    def op(input: Tensor, other: Tensor) -> Tensor:
        a = _check_tensor(input, name)
        b = _other_tensor(other, name)
        _same_device(name, a, b)
        _dt.check_limited_promotion(a.array.dtype, b.array.dtype)
        dt = result_dtype(a, b)
        if dt.kind not in "iu":
            raise NotImplementedError(
                f'{name}(): "{name}" is not implemented for {_dt.from_numpy_dtype(dt)} '
                "(integer tensors only)"
            )
        av, bv = a.array.astype(dt, copy=False), b.array.astype(dt, copy=False)
        xp = get_xp(av)
        try:
            out = getattr(xp, ufunc)(av, bv)
        except ValueError as e:
            raise broadcast_error(name, e, av, bv) from None
        return Tensor._wrap(xp.asarray(out).astype(dt, copy=False))

    op.__name__ = op.__qualname__ = name
    return op


gcd = _integer_op("gcd", "gcd")
gcd.__doc__ = "Elementwise greatest common divisor of two integer tensors (non-negative)."
lcm = _integer_op("lcm", "lcm")
lcm.__doc__ = (
    "Elementwise least common multiple of two integer tensors (wrapping on overflow, as torch)."
)


class NextAfter(Function):
    """The next representable value after ``a`` towards ``b``; torch's gradient: the
    identity for ``a``, zeros for ``b``."""

    @staticmethod
    def forward(ctx, a, b):
        return get_xp(a).nextafter(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, (get_xp(g).zeros_like(g) if ctx.needs_input_grad[1] else None)

    @staticmethod
    def backward_graph(ctx, g):
        return g, (g * 0 if ctx.needs_input_grad[1] else None)


def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next floating-point value after ``input`` towards ``other``, elementwise."""
    a = _check_tensor(input, "nextafter")
    b = _other_tensor(other, "nextafter")
    _same_device("nextafter", a, b)
    dt = result_dtype(a, b)
    if dt.kind != "f":
        raise NotImplementedError(
            f'nextafter(): "nextafter" is not implemented for {_dt.from_numpy_dtype(dt)} '
            "(floating-point tensors only)"
        )
    a, b = promote(a, b)
    return NextAfter.apply(a, b)


def isposinf(input: Tensor) -> Tensor:
    """Where ``input`` is +inf (a bool tensor; all False for integer and bool tensors)."""
    arr = _check_tensor(input, "isposinf").array
    xp = get_xp(arr)
    if arr.dtype.kind != "f":
        return Tensor._wrap(xp.zeros(arr.shape, np.bool_))
    return Tensor._wrap(xp.asarray(arr == np.inf))


def isneginf(input: Tensor) -> Tensor:
    """Where ``input`` is -inf (a bool tensor; all False for integer and bool tensors)."""
    arr = _check_tensor(input, "isneginf").array
    xp = get_xp(arr)
    if arr.dtype.kind != "f":
        return Tensor._wrap(xp.zeros(arr.shape, np.bool_))
    return Tensor._wrap(xp.asarray(arr == -np.inf))


class Angle(Function):
    """The argument of a real number: pi for negatives, 0 otherwise, NaN kept; torch's
    gradient for real inputs: zero."""

    @staticmethod
    def forward(ctx, x):
        xp = get_xp(x)
        out = xp.where(x < 0, np.pi, 0.0).astype(x.dtype)
        return xp.where(xp.isnan(x), x, out)

    @staticmethod
    def backward(ctx, g):
        return get_xp(g).zeros_like(g)

    @staticmethod
    def backward_graph(ctx, g):
        return g * 0


def angle(input: Tensor) -> Tensor:
    """The angle (argument) of each element: pi where negative, else 0 (darklib has no
    complex dtypes); integers and bools give the default float dtype, as torch."""
    return Angle.apply(_as_float(_check_tensor(input, "angle")))


def _as_float(x: Tensor) -> Tensor:
    return x if x.array.dtype.kind == "f" else x.to(_dt.default_float())


def deg2rad(input: Tensor) -> Tensor:
    """Degrees to radians (integer and bool inputs give the default float dtype)."""
    return E.mul(_as_float(_check_tensor(input, "deg2rad")), math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    """Radians to degrees (integer and bool inputs give the default float dtype)."""
    return E.mul(_as_float(_check_tensor(input, "rad2deg")), 180 / math.pi)


frexp_result = namedtuple("frexp", ["mantissa", "exponent"])


class Frexp(Function):
    """The mantissa of ``x = mantissa * 2 ** exponent`` (computed by the wrapper); torch's
    gradient ``grad / exponent.exp2()``, the power of two in the default float dtype."""

    @staticmethod
    def forward(ctx, x, mantissa, exponent):
        ctx.exponent = exponent
        return mantissa

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        return (g / xp.exp2(ctx.exponent.astype(_dt.default_float()))).astype(g.dtype), None, None

    @staticmethod
    def backward_graph(ctx, g):
        xp = get_xp(g.array)
        scale = Tensor._wrap(xp.exp2(ctx.exponent.astype(_dt.default_float())))
        return E.div(g, scale), None, None


def frexp(input: Tensor) -> Any:
    """``(mantissa, exponent)`` with ``input = mantissa * 2 ** exponent``, the mantissa in
    (-1, -0.5] or [0.5, 1) (0, inf and NaN: themselves with exponent 0); the exponent is
    int32, the mantissa has the input's dtype and a gradient."""
    x = _check_tensor(input, "frexp")
    if x.array.dtype.kind != "f":
        raise RuntimeError(
            f"frexp(): only supports floating-point dtypes, got {x.dtype} (convert with .float())"
        )
    xp = get_xp(x.array)
    m, e = xp.frexp(x.array)
    e = e.astype(np.int32, copy=False)
    return frexp_result(Frexp.apply(x, m.astype(x.array.dtype, copy=False), e), Tensor._wrap(e))


# ------------------------------------------------------------------ nanquantile

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile_q(q: Any, x: Tensor, op: str) -> tuple[np.ndarray, bool]:
    """``q`` as a 1-D float64 host array of values in [0, 1], and whether it was a scalar."""
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(
                f"{op}(): q must be a scalar or 1D tensor, got shape {list(q.shape)}"
            )
        if q.array.dtype != x.array.dtype:
            raise RuntimeError(
                f"{op}(): q tensor must be same dtype as the input tensor, got {q.dtype} and "
                f"{x.dtype}"
            )
        qs = np.asarray(q.tolist(), np.float64).reshape(-1)
        scalar = q.ndim == 0  # (a 0-d q adds no dim, as a number)
    elif isinstance(q, builtins.bool) or not isinstance(q, int | float | np.integer | np.floating):
        raise InvalidType(f"{op}(): q must be a number or a tensor, got {type(q).__name__}")
    else:
        qs, scalar = np.asarray([float(q)]), True
    if ((qs < 0) | (qs > 1) | np.isnan(qs)).any():
        bad = qs[(qs < 0) | (qs > 1) | np.isnan(qs)][0]
        raise RuntimeError(f"{op}(): q must be in the range [0, 1] but got {bad}")
    return qs, scalar


@autocasts("nanquantile")
def nanquantile(
    input: Tensor,
    q: Any,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """:func:`quantile` ignoring NaN: each slice's quantiles among its non-NaN values (a
    slice of NaN only gives NaN). ``q``: a number or a 0-d/1-D tensor of the input's
    dtype in [0, 1] (a tensor adds a leading dim); ``interpolation`` 'linear', 'lower',
    'higher', 'midpoint' or 'nearest' (ties to even), as torch."""
    op = "nanquantile"
    x = _check_tensor(input, op)
    if x.array.dtype.kind != "f":
        raise RuntimeError(
            f"{op}(): input tensor must be either float or double dtype, got {x.dtype}"
        )
    if interpolation not in _INTERPOLATIONS:
        raise InvalidValue(
            f"{op}(): interpolation must be one of linear, lower, higher, midpoint or nearest, "
            f"but got {interpolation}"
        )
    qs, scalar = _quantile_q(q, x, op)
    if x.array.size == 0:
        raise RuntimeError(f"{op}(): input tensor must be non-empty, got shape {list(x.shape)}")
    from darklib.ops.indexing import gather
    from darklib.ops.reduction import sort

    if dim is None:
        src, d = reshape(x, -1), None
    else:
        d = norm_dim(dim, x.ndim, op)
        src = reshape(x, 1) if x.ndim == 0 else movedim(x, d, -1)
    vals = sort(src, -1).values  # NaN last; (*, n)
    arr = vals.array
    xp = get_xp(arr)
    dt = arr.dtype
    count = (~xp.isnan(arr)).sum(-1, keepdims=True)  # non-NaN per slice, (*, 1)
    # ranks in the input's dtype (as torch), q along the last dim: (*, nq)
    ranks = xp.asarray(qs, dt) * (count - 1).astype(dt)
    ranks = xp.where(ranks < 0, xp.zeros((), dt), ranks)  # all NaN: rank 0, a NaN
    if interpolation == "lower":
        ranks = xp.floor(ranks)
    elif interpolation == "higher":
        ranks = xp.ceil(ranks)
    elif interpolation == "nearest":
        ranks = xp.round(ranks)  # (half to even, as torch's round)
    below = ranks.astype(_I64)
    out = gather(vals, -1, Tensor._wrap(below))
    if interpolation in ("linear", "midpoint"):
        above = gather(vals, -1, Tensor._wrap(xp.ceil(ranks).astype(_I64)))
        w = (
            xp.full(ranks.shape, 0.5, dt)
            if interpolation == "midpoint"
            else ranks - xp.floor(ranks)
        )
        # torch's lerp: from the nearer end
        gap = E.sub(above, out)
        up = E.add(out, E.mul(gap, Tensor._wrap(w)))
        down = E.sub(above, E.mul(gap, Tensor._wrap((1 - w).astype(dt))))
        out = E.where(Tensor._wrap(w < 0.5), up, down)
    out = movedim(out, -1, 0)  # (nq, *): the q dim leads
    if keepdim:
        if d is None:
            out = reshape(out, len(qs), *([1] * x.ndim))
        elif x.ndim:
            out = out.unsqueeze(d + 1)
    return out[0] if scalar else out


# ------------------------------------------------------------------ gradient


def _along(t: Tensor, d: int, start: Any, stop: Any) -> Tensor:
    return t[(slice(None),) * d + (slice(start, stop),)]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, builtins.bool | np.bool_
    )


def _gradient_spacing(spacing: Any, n: int, dims_given: bool) -> list:
    """``spacing`` as one scalar or coordinate tensor per differentiated dim."""
    if spacing is None:
        return [1] * n
    if _is_number(spacing):
        return [spacing] * n
    if not isinstance(spacing, Sequence) or isinstance(spacing, str):
        raise InvalidType(
            f"gradient(): spacing must be a number, a sequence of numbers or a sequence of "
            f"tensors, got {type(spacing).__name__}"
        )
    items = list(spacing)
    tensors = bool(items) and isinstance(items[0], Tensor)
    for i, s in enumerate(items):
        if tensors and not isinstance(s, Tensor):
            raise InvalidType(
                f"gradient(): expected Tensor as element {i} in argument spacing, but got "
                f"{type(s).__name__}"
            )
        if not tensors and not _is_number(s):
            raise InvalidType(
                f"gradient(): expected a number as element {i} in argument spacing, but got "
                f"{type(s).__name__}"
            )
    if len(items) != n:
        if dims_given:
            raise RuntimeError(
                "gradient(): expected spacing to be unspecified, a scalar or it's spacing and "
                f"dim arguments to have the same length, but got a spacing argument of length "
                f"{len(items)} and a dim argument of length {n}."
            )
        raise RuntimeError(
            "gradient(): expected spacing to be unspecified, a scalar, or a list of length "
            f"equal to 'self.dim() = {n}', since dim argument was not given, but got a list "
            f"of length {len(items)}"
        )
    return items


def _gradient_uniform(f: Tensor, d: int, h: Any, edge_order: int) -> Tensor:
    center = E.div(E.div(E.sub(_along(f, d, 2, None), _along(f, d, 0, -2)), h), 2)
    if edge_order == 1:
        first = E.div(E.sub(_along(f, d, 1, 2), _along(f, d, 0, 1)), h)
        last = E.div(E.sub(_along(f, d, -1, None), _along(f, d, -2, -1)), h)
    else:
        first = E.div(
            E.sub(
                E.add(E.mul(_along(f, d, 0, 1), -1.5), E.mul(_along(f, d, 1, 2), 2.0)),
                E.mul(_along(f, d, 2, 3), 0.5),
            ),
            h,
        )
        last = E.div(
            E.add(
                E.add(E.mul(_along(f, d, -3, -2), 0.5), E.mul(_along(f, d, -2, -1), -2.0)),
                E.mul(_along(f, d, -1, None), 1.5),
            ),
            h,
        )
    return cat([first, center, last], d)


def _gradient_coordinates(f: Tensor, d: int, x: Tensor, edge_order: int) -> Tensor:
    shape = [1] * f.ndim
    shape[d] = -1
    dx = diff(x)
    dx1, dx2 = dx[:-1], dx[1:]
    a = reshape(E.div(E.neg(dx2), E.mul(dx1, E.add(dx1, dx2))), *shape)
    b = reshape(E.div(E.sub(dx2, dx1), E.mul(dx1, dx2)), *shape)
    c = reshape(E.div(dx1, E.mul(dx2, E.add(dx1, dx2))), *shape)
    center = E.add(
        E.add(E.mul(a, _along(f, d, 0, -2)), E.mul(b, _along(f, d, 1, -1))),
        E.mul(c, _along(f, d, 2, None)),
    )
    h0, hm1 = dx[0], dx[-1]
    if edge_order == 1:
        first = E.div(E.sub(_along(f, d, 1, 2), _along(f, d, 0, 1)), h0)
        last = E.div(E.sub(_along(f, d, -1, None), _along(f, d, -2, -1)), hm1)
    else:  # (edge_order 2: at least 3 samples, so 2 steps)
        h1, hm2 = dx[1], dx[-2]
        s0 = E.add(h0, h1)
        a0 = E.div(E.neg(E.add(E.mul(h0, 2.0), h1)), E.mul(h0, s0))
        b0 = E.div(s0, E.mul(h0, h1))
        c0 = E.div(E.neg(h0), E.mul(h1, s0))
        first = E.add(
            E.add(E.mul(a0, _along(f, d, 0, 1)), E.mul(b0, _along(f, d, 1, 2))),
            E.mul(c0, _along(f, d, 2, 3)),
        )
        s1 = E.add(hm1, hm2)
        a1 = E.div(hm1, E.mul(hm2, s1))
        b1 = E.div(E.neg(s1), E.mul(hm1, hm2))
        c1 = E.div(E.add(E.mul(hm1, 2), hm2), E.mul(hm1, s1))
        last = E.add(
            E.add(E.mul(a1, _along(f, d, -3, -2)), E.mul(b1, _along(f, d, -2, -1))),
            E.mul(c1, _along(f, d, -1, None)),
        )
    return cat([first, center, last], d)


def gradient(
    input: Tensor, *, spacing: Any = None, dim: Any = None, edge_order: int = 1
) -> tuple[Tensor, ...]:
    """Estimated derivatives of ``input`` along each dim in ``dim`` (all dims by default),
    as ``torch.gradient``: central differences inside, one-sided ones of order
    ``edge_order`` (1 or 2) at the edges. ``spacing``: one number for every dim, one per
    dim, or a 1-D tensor of coordinates per dim (non-uniform samples). One tensor per dim,
    differentiable."""
    op = "gradient"
    f = _check_tensor(input, op)
    if f.array.dtype == np.uint8:
        raise RuntimeError("gradient(): does not support uint8 input")
    if dim is None:
        dims = tuple(range(f.ndim))
    else:
        dims = norm_dims(dim, builtins.max(f.ndim, 1), op)
    items = _gradient_spacing(spacing, len(dims), dim is not None)
    if isinstance(edge_order, builtins.bool) or edge_order not in (1, 2):
        raise RuntimeError(
            f"gradient(): only supports edge_order=1 and edge_order=2, got {edge_order}"
        )
    for d in dims:
        if f.ndim == 0 or f.shape[d] < edge_order + 1:
            raise RuntimeError(
                "gradient(): expected each dimension size to be at least edge_order+1 "
                f"(edge_order={edge_order}, input of shape {list(f.shape)}, dim {d})"
            )
    out = []
    for d, s in zip(dims, items):
        if isinstance(s, Tensor):
            if s.ndim != 1:
                raise RuntimeError(
                    "gradient(): expected each element of spacing to have one dimension, but "
                    f"got an element with {s.ndim} dimensions!"
                )
            _same_device(op, f, s)
            if s.shape[0] != f.shape[d]:
                raise RuntimeError(
                    f"gradient(): the coordinates for dim {d} have {s.shape[0]} values but the "
                    f"input has {f.shape[d]} along it"
                )
            out.append(_gradient_coordinates(f, d, s, edge_order))
        else:
            out.append(_gradient_uniform(f, d, s, edge_order))
    return tuple(out)


# ------------------------------------------------------------------ unravel_index


def unravel_index(indices: Tensor, shape: Any) -> tuple[Tensor, ...]:
    """Flat indices into an array of ``shape`` as a tuple of coordinate tensors (int64, of
    ``indices``' shape), as ``torch.unravel_index`` (indices wrap modulo the sizes)."""
    op = "unravel_index"
    idx = _check_tensor(indices, op)
    if idx.array.dtype.kind not in "iu":
        raise InvalidType(f"{op}(): expected 'indices' to be integer dtype, but got {idx.dtype}")
    if isinstance(shape, int | np.integer) and not isinstance(shape, builtins.bool):
        sizes = (int(shape),)
    elif isinstance(shape, Sequence) and not isinstance(shape, str):
        for s in shape:
            if not isinstance(s, int | np.integer) or isinstance(s, builtins.bool):
                raise InvalidType(
                    f"{op}(): expected 'shape' sequence to only contain ints, but got "
                    f"{type(s).__name__}"
                )
        sizes = tuple(int(s) for s in shape)
    else:
        raise InvalidType(
            f"{op}(): expected 'shape' to be int or sequence of ints, but got "
            f"{type(shape).__name__}"
        )
    if builtins.any(s < 0 for s in sizes):
        raise InvalidValue(f"{op}(): 'shape' cannot have negative values, but got {sizes}")
    if not sizes:
        return ()
    a = idx.array.astype(_I64, copy=False)
    if 0 in sizes and a.size:
        raise RuntimeError(f"{op}(): ZeroDivisionError: 'shape' {sizes} has a zero size")
    xp = get_xp(a)
    coefs = [1] * len(sizes)
    for i in range(len(sizes) - 2, -1, -1):
        coefs[i] = coefs[i + 1] * sizes[i + 1]
    with np.errstate(all="ignore"):
        cols = (a[..., None] // xp.asarray(coefs, _I64)) % xp.asarray(
            [builtins.max(s, 1) for s in sizes], _I64
        )
    return tuple(Tensor._wrap(cols[..., i].copy()) for i in range(len(sizes)))
