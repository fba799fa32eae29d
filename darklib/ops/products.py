"""Products and combinatorics: tensordot, kron, block_diag, cartesian_prod, combinations,
vander; addmv, addr, addbmm; histograms (histc, histogram); renorm; the trapezoid rule;
cov and corrcoef; diagonal embedding and the scatter family (select/slice/diagonal).

Most of these are compositions of darklib's differentiable ops (permute, reshape, matmul,
mul, sum, cumsum, cat, index_select...), so that they get gradients of any order and run
on either device with no code of their own. Three small Functions remain where a
composition would cost more than the op: :class:`DiagonalScatter` (a diagonal written into
a copy, the adjoint of ``diagonal``: diag_embed and diagonal_scatter), and the histogram
outputs, which torch marks as having no derivative (:class:`_NoDerivative`).
"""

from __future__ import annotations

import builtins
import itertools
import math
import numbers
import warnings
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, Node, higher_order
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.ops import elementwise as E
from darklib.ops import reduction as R
from darklib.ops import shape as S
from darklib.ops._promote import result_dtype
from darklib.ops.indexing import IndexPut, index_select
from darklib.ops.linalg import matmul, outer, scaled_sum
from darklib.tensor import Tensor

# ------------------------------------------------------------------ argument helpers


def _tensor(x: Any, op: str, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{op}(): argument '{name}' must be Tensor, not {type(x).__name__}")
    return x


def _int_arg(v: Any, op: str, name: str) -> int:
    if isinstance(v, Tensor) and v.numel() == 1 and v.array.dtype.kind in "iu":
        return int(v.item())
    if isinstance(v, builtins.bool) or not isinstance(v, numbers.Integral):
        raise InvalidType(f"{op}(): argument '{name}' must be int, not {type(v).__name__}")
    return int(v)


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def _const(arr: Any) -> Tensor:
    """A constant tensor (no graph) holding ``arr``."""
    return Tensor._wrap(arr)


def _zeros(like: Tensor, shape: Sequence[int], dtype: Any = None) -> Tensor:
    xp = get_xp(like.array)
    return _const(xp.zeros(tuple(shape), like.array.dtype if dtype is None else dtype))


def _cast(x: Tensor, dt: np.dtype) -> Tensor:
    return x if x.array.dtype == dt else x.to(_dt.from_numpy_dtype(dt))


# ------------------------------------------------------------------ tensordot, kron


def _dims_list(v: Any, op: str) -> list[int]:
    if isinstance(v, Tensor):
        v = v.tolist()
    if not isinstance(v, Sequence) or isinstance(v, str):
        raise InvalidType(
            f"{op}(): each list of dims must be a list of ints, got {type(v).__name__} ({v!r})"
        )
    for i, d in enumerate(v):
        if isinstance(d, builtins.bool) or not isinstance(d, numbers.Integral):
            raise InvalidType(
                f"{op}(): dims must be lists of ints, but found element of type "
                f"{type(d).__name__} at pos {i}"
            )
    return [int(d) for d in v]


def _tensordot_dims(dims: Any, a: Tensor, b: Tensor) -> tuple[list[int], list[int]]:
    op = "tensordot"
    if isinstance(dims, Tensor):  # one int, or two lists as the rows of a (2, k) tensor
        if dims.numel() == 1:
            dims = dims.item()
        elif dims.ndim == 2 and dims.shape[0] == 2:
            dims = dims.tolist()
        else:
            raise InvalidValue(
                f"{op}(): a dims tensor holds one int or two lists of dims (shape (2, k)), "
                f"got shape {_shape(dims)}"
            )
    if isinstance(dims, numbers.Integral) and not isinstance(dims, builtins.bool):
        n = int(dims)
        if n < 0:
            raise InvalidValue(f"{op}(): expects dims >= 0, but got dims={n}")
        if n > builtins.min(a.ndim, b.ndim):
            raise InvalidValue(
                f"{op}(): expects dims <= ndim of both inputs, but got dims={n} for shapes "
                f"{_shape(a)} and {_shape(b)}"
            )
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    if isinstance(dims, Sequence) and not isinstance(dims, str) and len(dims) == 2:
        return _dims_list(dims[0], op), _dims_list(dims[1], op)
    raise InvalidType(
        f"{op}(): expects dims to be int or tuple[list[int], list[int]] or list[list[int]] "
        f"containing two lists, but got dims={dims!r}"
    )


def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """Sum of products over the dims ``dims`` of ``a`` and ``b``, as ``torch.tensordot``.

    ``dims`` is an int ``n`` (the last ``n`` dims of ``a`` with the first ``n`` of ``b``),
    a pair of lists of dims, or a tensor holding either. Output shape: the remaining dims of
    ``a`` then those of ``b``. A contracted dim of size 1 on one side is summed away on the
    other, as torch does. Computed as one matmul of the permuted, flattened operands.

    Example::

        >>> dl.tensordot(dl.randn(3, 4, 5), dl.randn(4, 5, 6), dims=2).shape
        (3, 6)
    """
    op = "tensordot"
    a, b = _tensor(a, op, "a"), _tensor(b, op, "b")
    if a.array.dtype != b.array.dtype:
        raise InvalidType(
            f"{op}(): both inputs should have same dtype, got {a.dtype.name} and {b.dtype.name}"
        )
    da, db = _tensordot_dims(dims, a, b)
    if len(da) != len(db):
        raise InvalidValue(
            f"{op}(): both dimension lists should have same length, got {da} and {db}"
        )
    for t, ds in ((a, da), (b, db)):
        if t.ndim == 0 and ds:
            raise OutOfRange(f"{op}(): Dimension specified as {ds[0]} but tensor has no dimensions")
    da = list(S.norm_dims(da, a.ndim, op)) if da else []
    db = list(S.norm_dims(db, b.ndim, op)) if db else []
    for x, y in zip(da, db):
        sa, sb = a.shape[x], b.shape[y]
        if sa == sb:
            continue
        if sa == 1:
            b = R.sum(b, y, keepdim=True)
        elif sb == 1:
            a = R.sum(a, x, keepdim=True)
        else:
            raise InvalidValue(
                f"{op}(): contracted dimensions need to match, but first has size {sa} in dim "
                f"{x} and second has size {sb} in dim {y} (shapes {_shape(a)} and {_shape(b)})"
            )
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    k = math.prod(a.shape[d] for d in da)
    out_shape = [a.shape[d] for d in free_a] + [b.shape[d] for d in free_b]
    pa, pb = free_a + da, db + free_b
    ma = a if pa == sorted(pa) else S.permute(a, pa)
    mb = b if pb == sorted(pb) else S.permute(b, pb)
    ma = S.reshape(ma, math.prod(a.shape[d] for d in free_a), k)
    mb = S.reshape(mb, k, math.prod(b.shape[d] for d in free_b))
    return S.reshape(matmul(ma, mb), out_shape)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: block ``(i, j, ...)`` of the result is ``input[i, j, ...] *
    other`` (the operand with fewer dims gets leading 1s). Shape: the products of the sizes.

    Example::

        >>> dl.kron(dl.eye(2), dl.ones(2, 2)).shape
        (4, 4)
    """
    a, b = _tensor(input, "kron"), _tensor(other, "kron", "other")
    nd = builtins.max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    # (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) -> (a0, b0, a1, b1, ...) -> (a0*b0, a1*b1, ...)
    ra = S.reshape(a, [v for s in sa for v in (s, 1)])
    rb = S.reshape(b, [v for s in sb for v in (1, s)])
    return S.reshape(E.mul(ra, rb), [x * y for x, y in zip(sa, sb)])


# ------------------------------------------------------------------ block_diag, combinatorics


def block_diag(*tensors: Tensor) -> Tensor:
    """A block-diagonal matrix of the inputs (0-d is 1x1, 1-D of size n is 1xn, 2-D as is),
    in the promoted dtype; zeros elsewhere. With no inputs, an empty (1, 0) tensor."""
    op = "block_diag"
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise InvalidType(
                f"{op}(): expected Tensor as element {i} in argument 0, but got {type(t).__name__}"
            )
        if t.ndim > 2:
            raise InvalidValue(
                f"{op}(): Input tensors must have 2 or fewer dimensions. Input {i} has "
                f"{t.ndim} dimensions (shape {_shape(t)})"
            )
    if not tensors:
        return Tensor._wrap(np.zeros((1, 0), _dt.get_default_dtype().np))
    dt = result_dtype(*tensors)
    mats = [
        S.reshape(_cast(t, dt), (1, t.numel()) if t.ndim < 2 else tuple(t.shape)) for t in tensors
    ]
    width = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        c = m.shape[1]
        rows.append(S.pad(m, (left, width - left - c)))
        left += c
    return S.cat(rows, 0)


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """All tuples of one element from each 1-D input, as rows (``itertools.product`` order):
    shape (prod of sizes, number of inputs); one input is returned as is."""
    op = "cartesian_prod"
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    if not tensors:
        raise InvalidValue(f"{op}(): expects a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if _tensor(t, op, f"tensors[{i}]").ndim != 1:
            raise InvalidValue(f"{op}(): Expect a 1D vector, but got shape {_shape(t)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = S.meshgrid(*tensors, indexing="ij")
    return S.stack([S.reshape(g, -1) for g in grids], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-``r`` combinations of a 1-D tensor's elements as rows, in
    ``itertools.combinations`` order (``with_replacement`` allows repeats). ``r=0`` gives
    an empty 1-D tensor, as torch."""
    op = "combinations"
    x = _tensor(input, op)
    if x.ndim != 1:
        raise InvalidValue(f"{op}(): Expect a 1D vector, but got shape {_shape(x)}")
    r = _int_arg(r, op, "r")
    if r < 0:
        raise InvalidValue(f"{op}(): Expect a non-negative number, but got {r}")
    if r == 0:
        return _zeros(x, (0,))
    make = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.fromiter(
        itertools.chain.from_iterable(make(range(x.shape[0]), r)), dtype=np.int64
    ).reshape(-1, r)
    xp = get_xp(x.array)
    picked = index_select(x, 0, _const(xp.asarray(idx.reshape(-1))))
    return S.reshape(picked, idx.shape[0], r)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of a 1-D ``x``: column ``j`` is ``x ** (N - 1 - j)`` (``x **
    j`` when ``increasing``); ``N`` defaults to ``len(x)``. Integer and bool inputs give
    int64, as torch. Powers are running products, so gradients are exact at 0."""
    op = "vander"
    x = _tensor(x, op, "x")
    if x.ndim != 1:
        raise InvalidValue(f"{op}(): x must be a one-dimensional tensor, got shape {_shape(x)}")
    n = x.shape[0]
    N = n if N is None else _int_arg(N, op, "N")
    if N < 0:
        raise InvalidValue(f"{op}(): N must be non-negative, got {N}")
    if x.array.dtype.kind in "biu":
        x = x.to(_dt.int64)
    xp = get_xp(x.array)
    out = _const(xp.ones((n, builtins.min(N, 1)), x.array.dtype))
    if N > 1:
        powers = R.cumprod(S.expand(S.unsqueeze(x, 1), (n, N - 1)), 1)
        out = S.cat([out, powers], 1)
    return out if increasing else S.flip(out, 1)


# ------------------------------------------------------------------ add*: addmv, addr, addbmm


def _same_dtype(op: str, *tensors: Tensor) -> None:
    if len({t.array.dtype for t in tensors}) > 1:
        names = ", ".join(t.dtype.name for t in tensors)
        raise InvalidType(f"{op}(): input tensors must have the same dtype, but got {names}")


@autocasts("addmv")
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``. Shape: mat (n, m), vec (m,), input
    expandable to (n,); output (n,). With ``beta=0`` the input's values are ignored."""
    op = "addmv"
    input, mat, vec = _tensor(input, op), _tensor(mat, op, "mat"), _tensor(vec, op, "vec")
    if mat.ndim != 2 or vec.ndim != 1 or input.ndim > 1:
        raise InvalidValue(
            f"{op}(): vector + matrix @ vector expected, got {input.ndim}, {mat.ndim}, "
            f"{vec.ndim} dims (shapes {_shape(input)}, {_shape(mat)}, {_shape(vec)})"
        )
    n, m = mat.shape
    if vec.shape[0] != m or (input.ndim == 1 and input.shape[0] not in (1, n)):
        got = "x".join(map(str, input.shape)) or "scalar"
        raise InvalidValue(
            f"{op}(): size mismatch, got input ({got}), mat ({n}x{m}), vec ({vec.shape[0]})"
        )
    _same_dtype(op, input, mat, vec)
    return scaled_sum(op, input, matmul(mat, vec), beta, alpha)


@autocasts("addr")
def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``. Shape: vec1 (n,), vec2 (m,), input
    expandable to (n, m). Dtypes promote, as torch's addr; bool tensors give
    ``(beta and input) or (alpha and vec1 outer vec2)``."""
    op = "addr"
    input = _tensor(input, op)
    vec1, vec2 = _tensor(vec1, op, "vec1"), _tensor(vec2, op, "vec2")
    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v.ndim != 1:
            raise InvalidValue(
                f"{op}(): Expected 1-D argument {name}, but got {v.ndim}-D (shape {_shape(v)})"
            )
    dt = result_dtype(input, vec1, vec2)
    input, vec1, vec2 = _cast(input, dt), _cast(vec1, dt), _cast(vec2, dt)
    return scaled_sum(op, input, outer(vec1, vec2), beta, alpha)


@autocasts("addbmm")
def addbmm(
    input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1
) -> Tensor:
    """``beta * input + alpha * sum_i(batch1[i] @ batch2[i])``. Shape: batch1 (b, n, m),
    batch2 (b, m, p), input expandable to (n, p). One GEMM over the batch folded into the
    inner dimension."""
    op = "addbmm"
    input = _tensor(input, op)
    b1, b2 = _tensor(batch1, op, "batch1"), _tensor(batch2, op, "batch2")
    for name, t in (("batch1", b1), ("batch2", b2)):
        if t.ndim != 3:
            raise InvalidValue(f"{op}(): {name} must be a 3D tensor, got shape {_shape(t)}")
    if b1.shape[0] != b2.shape[0]:
        raise InvalidValue(
            f"{op}(): batch1 and batch2 must have same number of batches, got "
            f"{b1.shape[0]} and {b2.shape[0]} (shapes {_shape(b1)} and {_shape(b2)})"
        )
    b, n, m = b1.shape
    if b2.shape[1] != m:
        raise InvalidValue(
            f"{op}(): Incompatible matrix sizes for bmm ({n}x{m} and {b2.shape[1]}x{b2.shape[2]})"
        )
    _same_dtype(op, input, b1, b2)
    p = b2.shape[2]
    lhs = S.reshape(S.permute(b1, 1, 0, 2), n, b * m)
    prod = matmul(lhs, S.reshape(b2, b * m, p))
    return scaled_sum(op, input, prod, beta, alpha)


# ------------------------------------------------------------------ histograms


class _NoDerivative(Function):
    """A value computed from its inputs with no derivative: its output takes part in the
    graph (requires_grad where an input does, as torch's), and a backward through it is
    an error that names the op, never a silent zero."""

    @staticmethod
    def forward(ctx, value, name, *inputs):
        ctx.about = name
        return value

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError(f"the derivative for '{ctx.about}' is not implemented.")


def _float_input(x: Tensor, op: str, kinds: tuple) -> np.dtype:
    dt = x.array.dtype
    if dt not in kinds:
        raise InvalidType(
            f"{op}(): not implemented for {x.dtype.name} input; expected "
            + " or ".join(np.dtype(k).name for k in kinds)
        )
    return dt


def histc(input: Tensor, bins: int = 100, min: Any = 0, max: Any = 0) -> Tensor:
    """Counts of the elements in ``bins`` equal-width bins over ``[min, max]`` (the data's
    own range when ``min == max``; a bin either side of a constant range). Elements outside
    are ignored; one equal to ``max`` counts in the last bin. Same dtype as the (floating)
    input; no gradient, as torch's ``histc``."""
    op = "histc"
    x = _tensor(input, op)
    dt = _float_input(x, op, (np.float16, np.float32, np.float64))
    bins = _int_arg(bins, op, "bins")
    if bins <= 0:
        raise InvalidValue(f"{op}(): bins must be > 0, but got {bins}")
    lo, hi = builtins.float(min), builtins.float(max)
    arr = x.array.reshape(-1)
    xp = get_xp(arr)
    if lo == hi and arr.size:
        lo, hi = builtins.float(arr.min()), builtins.float(arr.max())
    elif lo > hi:
        raise InvalidValue(f"{op}(): max must be larger than min, got min={min} and max={max}")
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidValue(f"{op}(): range of [{lo}, {hi}] is not finite")
    # the bin of x is floor((x - min) * bins / (max - min)), in the input's precision as
    # torch computes it (float32 for float16, whose products would overflow)
    ct = np.dtype(np.float32) if dt == np.float16 else dt
    a = arr.astype(ct, copy=False)
    with np.errstate(all="ignore"):  # (silent on overflow, as torch)
        lo_a, hi_a = xp.asarray(lo, dtype=dt).astype(ct), xp.asarray(hi, dtype=dt).astype(ct)
        v = a[(a >= lo_a) & (a <= hi_a)]
        pos = ((v - lo_a) * xp.asarray(bins, dtype=ct) / (hi_a - lo_a)).astype(np.int64)
    pos = xp.clip(pos, 0, bins - 1)
    return Tensor._wrap(xp.bincount(pos, minlength=bins).astype(dt))


histogram_result = namedtuple("histogram", ["hist", "bin_edges"])


def _edges(lo: float, hi: float, bins: int, dt: np.dtype) -> np.ndarray:
    """``bins + 1`` equal-width bin edges from ``lo`` to ``hi`` in ``dt``, to the bit as
    torch's linspace makes them: the step rounded to ``dt``, the first half counted up
    from ``lo`` and the rest down from ``hi``, each edge one fused multiply-add (emulated
    in a wider type, on the host: they are few)."""
    wide = np.float64 if dt == np.float32 else np.longdouble
    with np.errstate(all="ignore"):  # (a range wider than the dtype: inf, as torch's)
        lo_d, hi_d = dt.type(lo), dt.type(hi)
        step = wide(dt.type((hi_d - lo_d) / dt.type(bins)))
        i = np.arange(bins + 1).astype(wide)
        up = wide(lo_d) + step * i
        down = wide(hi_d) - step * (bins - i)
        return np.where(i < (bins + 1) // 2, up, down).astype(dt)


def histogram(
    input: Tensor,
    bins: Any = 100,
    *,
    range: Sequence[float] | None = None,
    weight: Tensor | None = None,
    density: bool = False,
) -> Any:
    """``(hist, bin_edges)`` of the (flattened) input, as ``torch.histogram``.

    Args:
        bins: an int (that many equal bins over ``range``, by default the data's min and
            max, widened by 0.5 each side when they are equal) or a 1-D tensor of
            increasing bin edges (the input's dtype).
        range: ``(min, max)`` for int ``bins``.
        weight: per-element weights, the input's shape and dtype.
        density: normalise so that the histogram integrates to 1 over the bins.

    The last bin includes its right edge; elements outside the edges are ignored. Float32
    and float64 only, as torch. The outputs have no derivative (a backward through them
    raises, as torch's).
    """
    op = "histogram"
    x = _tensor(input, op)
    dt = _float_input(x, op, (np.float32, np.float64))
    arr = x.array.reshape(-1)
    xp = get_xp(arr)
    w = None
    if weight is not None:
        w = _tensor(weight, op, "weight")
        if tuple(w.shape) != tuple(x.shape):
            raise InvalidValue(
                f"{op}(): weight should have the same shape as input, got weight "
                f"{_shape(w)} and input {_shape(x)}"
            )
        if w.array.dtype != dt:
            raise InvalidType(
                f"{op}(): input and weight should have the same dtype, got "
                f"{x.dtype.name} and {w.dtype.name}"
            )
    if isinstance(bins, Tensor):
        if range is not None:
            raise InvalidValue(f"{op}(): range is only for an int number of bins")
        if bins.array.dtype != dt:
            raise InvalidType(
                f"{op}(): input and bins tensors should have the same dtype, got input "
                f"{x.dtype.name} and bins {bins.dtype.name}"
            )
        if bins.ndim != 1:
            raise InvalidValue(
                f"{op}(): bins tensor should have one dimension, got shape {_shape(bins)}"
            )
        if bins.shape[0] < 2:
            raise InvalidValue(f"{op}(): bins must be > 0, but got {bins.shape[0] - 1}")
        edges = bins.array.copy()
    else:
        nb = _int_arg(bins, op, "bins")
        if nb <= 0:
            raise InvalidValue(f"{op}(): bins must be > 0, but got {nb}")
        if range is not None:
            if len(range) != 2:
                raise InvalidValue(f"{op}(): range must be (min, max), got {range!r}")
            lo, hi = builtins.float(range[0]), builtins.float(range[1])
            if lo > hi:
                raise InvalidValue(f"{op}(): min should not exceed max, but got min {lo} max {hi}")
        elif arr.size:
            lo, hi = builtins.float(arr.min()), builtins.float(arr.max())
        else:
            lo, hi = 0.0, 1.0
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InvalidValue(f"{op}(): range [{lo}, {hi}] is not finite")
        edges = xp.asarray(_edges(lo, hi, nb, dt))
    nb = edges.shape[0] - 1
    keep = (arr >= edges[0]) & (arr <= edges[-1])
    pos = xp.minimum(xp.searchsorted(edges, arr[keep], side="right") - 1, nb - 1)
    wts = None if w is None else w.array.reshape(-1)[keep]
    hist = xp.bincount(pos, weights=wts, minlength=nb).astype(dt)
    if density:
        with np.errstate(all="ignore"):  # (an empty histogram is NaN, as torch's)
            hist = hist / hist.sum() / (edges[1:] - edges[:-1])
    inputs = (x,) if w is None else (x, w)
    return histogram_result(
        _NoDerivative.apply(hist, op, *inputs), _NoDerivative.apply(edges, op, *inputs)
    )


# ------------------------------------------------------------------ renorm


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` is scaled to norm
    ``maxnorm`` (times ``1 / (1 + 1e-7 / norm)``, as torch); the others are unchanged.
    Differentiable through the norm, as torch's. Float16 runs its norms in float32."""
    op = "renorm"
    x = _tensor(input, op)
    if x.array.dtype.kind != "f":
        raise InvalidType(f"{op}(): expected a floating-point input, got {x.dtype.name}")
    if x.ndim < 2:
        raise InvalidValue(
            f"{op}(): input needs at least 2 dimensions, got {x.ndim} dimensions "
            f"(shape {_shape(x)})"
        )
    d = S.norm_dim(dim, x.ndim, op)
    p, maxnorm = builtins.float(p), builtins.float(maxnorm)
    if not p > 0:
        raise InvalidValue(f"{op}(): non-positive-norm not supported, got p={p}")
    if not maxnorm >= 0:
        raise InvalidValue(f"{op}(): expected maxnorm to be >= 0 but got {maxnorm}")
    acc = x.to(_dt.float32) if x.array.dtype == np.float16 else x
    others = tuple(i for i in range(x.ndim) if i != d)
    norms = R.norm(acc, p, dim=others, keepdim=True)
    if maxnorm == math.inf:  # nothing to scale (maxnorm / norm would be inf where unused)
        return E.mul(x, 1.0)
    factor = E.where(norms > maxnorm, E.div(maxnorm, E.add(norms, 1e-7)), 1.0)
    return _cast(E.mul(acc, factor), x.array.dtype)


# ------------------------------------------------------------------ trapezoid rule


def _trapezoid(op: str, y: Any, x: Any, dx: Any, dim: Any, cumulative: bool) -> Tensor:
    y = _tensor(y, op, "y")
    if y.array.dtype.kind == "b":
        raise InvalidType(f"{op}(): received a bool input for `y`, but bool is not supported")
    if x is not None and dx is not None:
        raise InvalidType(f"{op}(): pass either x or dx, not both")
    if y.ndim == 0:
        raise OutOfRange(f"{op}(): Dimension specified as {dim} but tensor has no dimensions")
    d = S.norm_dim(dim, y.ndim, op)
    back = d - y.ndim  # the same dim counted from the end (x may broadcast in front)
    n = y.shape[d]
    m = builtins.max(n - 1, 0)
    lo, hi = S.narrow(y, d, 0, m), S.narrow(y, d, builtins.min(1, n), m)
    if x is None:
        step = 1 if dx is None else dx
        if isinstance(step, Tensor):
            step = step.item()
        if cumulative:
            return R.cumsum(E.mul(E.add(lo, hi), step / 2), back)
        if n == 0:
            return _zeros(y, [s for i, s in enumerate(y.shape) if i != d])
        ends = E.add(S.select(y, d, 0), S.select(y, d, -1))
        return E.mul(E.sub(R.sum(y, d), E.mul(ends, 0.5)), step)
    x = _tensor(x, op, "x")
    if x.ndim == 1:
        if x.shape[0] != n:
            raise InvalidValue(
                f"{op}(): There must be one `x` value for each sample point: x has "
                f"{x.shape[0]} values, y {_shape(y)} has {n} along dim {d}"
            )
        x = S.reshape(x, [n if i == d else 1 for i in range(y.ndim)])
        xd = d
    else:
        xd = x.ndim + back
        if xd < 0:
            raise OutOfRange(
                f"{op}(): x of shape {_shape(x)} has no dim {d} to match y {_shape(y)}"
            )
    k = x.shape[xd]
    km = builtins.max(k - 1, 0)
    steps = E.sub(S.narrow(x, xd, builtins.min(1, k), km), S.narrow(x, xd, 0, km))
    E.check_broadcast(op, steps, lo)
    if n == 0 and not cumulative:
        return _zeros(y, [s for i, s in enumerate(y.shape) if i != d])
    terms = E.mul(steps, E.add(lo, hi))
    total = R.cumsum(terms, back) if cumulative else R.sum(terms, back)
    return E.div(total, 2)


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The trapezoid rule along ``dim``: the integral of ``y`` sampled at ``x`` (a 1-D
    tensor of ``y.shape[dim]`` points, or one that broadcasts with ``y``) or at spacing
    ``dx`` (default 1). Integer inputs give the default float dtype, as torch."""
    return _trapezoid("trapezoid", y, x, dx, dim, False)


def trapz(y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """Alias of :func:`trapezoid`."""
    return _trapezoid("trapz", y, x, dx, dim, False)


def cumulative_trapezoid(
    y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1
) -> Tensor:
    """The running trapezoid rule along ``dim``: one value fewer than ``y`` has there."""
    return _trapezoid("cumulative_trapezoid", y, x, dx, dim, True)


# ------------------------------------------------------------------ cov, corrcoef


def _weights(w: Any, name: str, n: int, integral: bool) -> Tensor:
    op = "cov"
    w = _tensor(w, op, name)
    if w.ndim > 1:
        raise InvalidValue(
            f"{op}(): expected {name} to have one or fewer dimensions but got {name} with "
            f"{w.ndim} dimensions"
        )
    if w.numel() != n:
        raise InvalidValue(
            f"{op}(): expected {name} to have the same numel as there are observations in the "
            f"input but got {w.numel()} != {n}"
        )
    kind = w.array.dtype.kind
    if integral and kind not in "iu":
        raise InvalidType(
            f"{op}(): expected {name} to have integral dtype but got {name} with "
            f"{w.dtype.name} dtype"
        )
    if not integral and kind != "f":
        raise InvalidType(
            f"{op}(): expected {name} to have floating point dtype but got {name} with "
            f"{w.dtype.name} dtype"
        )
    if w.numel() and builtins.bool((w.array < 0).any()):
        raise InvalidValue(f"{op}(): {name} cannot be negative")
    return S.reshape(w, -1)


def cov(
    input: Tensor,
    *,
    correction: int = 1,
    fweights: Tensor | None = None,
    aweights: Tensor | None = None,
) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` (observations in
    the columns; a 1-D input is one variable and gives a 0-d result).

    Args:
        correction: subtracted from the number of observations (1: unbiased, 0: the
            maximum-likelihood estimate); with weights, from their sum as numpy's.
        fweights: integer frequency weights, one per observation.
        aweights: floating observation weights, one per observation.

    Integer inputs give the default float dtype. Where the degrees of freedom are <= 0 a
    warning is issued and the result is inf or NaN, as torch's.
    """
    op = "cov"
    x = _tensor(input, op)
    if x.ndim > 2:
        raise InvalidValue(
            f"{op}(): expected input to have two or fewer dimensions but got an input with "
            f"{x.ndim} dimensions (shape {_shape(x)})"
        )
    if x.array.dtype.kind == "b":
        raise InvalidType(f"{op}(): bool dtype is not supported for input")
    if isinstance(correction, builtins.bool) or not isinstance(correction, numbers.Integral):
        raise InvalidType(
            f"{op}(): argument 'correction' must be int, not {type(correction).__name__}"
        )
    x = S.reshape(x, 1, -1) if x.ndim < 2 else x
    n = x.shape[1]
    fw = None if fweights is None else _weights(fweights, "fweights", n, True)
    aw = None if aweights is None else _weights(aweights, "aweights", n, False)
    dt = result_dtype(x, *([aw] if aw is not None else []))
    if dt.kind != "f":
        dt = _dt.get_default_dtype().np
    x = _cast(x, dt)
    w = None
    if fw is not None:
        w = _cast(fw, dt)
    if aw is not None:
        aw = _cast(aw, dt)
        w = aw if w is None else E.mul(w, aw)
    if w is None:
        w_sum: Any = n
        avg = E.div(R.sum(x, 1), n)
    else:
        w_sum = R.sum(w)
        if builtins.float(w_sum.item()) == 0:
            raise InvalidValue(f"{op}(): weights sum to zero, can't be normalized")
        avg = E.div(R.sum(E.mul(x, w), 1), w_sum)
    if w is None:
        norm: Any = n - correction
    elif correction == 0:
        norm = w_sum
    elif aw is None:
        norm = E.sub(w_sum, correction)
    else:
        norm = E.sub(w_sum, E.div(E.mul(R.sum(E.mul(w, aw)), correction), w_sum))
    if builtins.float(norm.item() if isinstance(norm, Tensor) else norm) <= 0:
        warnings.warn(
            "cov(): degrees of freedom is <= 0. Correction should be strictly less than the "
            "number of observations.",
            UserWarning,
            stacklevel=2,
        )
        # +0, as torch clamps it (norm * 0 of a negative norm was -0: -inf covariances)
        norm = 0 if not isinstance(norm, Tensor) else E.mul(E.abs(norm), 0)
    xm = E.sub(x, S.unsqueeze(avg, 1))
    right = xm if w is None else E.mul(xm, w)
    c = E.div(matmul(xm, right.mT), norm)
    return S.reshape(c, ()) if c.shape[0] == 1 else c  # (one variable: 0-d, as torch)


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the rows of ``input`` (:func:`cov` normalised by
    the standard deviations, clipped to [-1, 1]); a 1-D input gives 1 (or NaN)."""
    op = "corrcoef"
    x = _tensor(input, op)
    if x.ndim > 2:
        raise InvalidValue(
            f"{op}(): expected input to have two or fewer dimensions but got an input with "
            f"{x.ndim} dimensions (shape {_shape(x)})"
        )
    c = cov(x)
    if c.ndim == 0:
        return E.div(c, c)
    sd = E.sqrt(S.diagonal(c))
    c = E.div(E.div(c, S.unsqueeze(sd, 1)), S.unsqueeze(sd, 0))
    return E.clamp(c, -1, 1)


# ------------------------------------------------------------------ diagonals and scatters


class DiagonalScatter(Function):
    """A copy of ``x`` with ``src`` written on the diagonal (``offset``, dims ``d1``, ``d2``,
    the diagonal running along src's last dim, as :func:`darklib.diagonal` returns it).
    Linear in both inputs: x's gradient is g with the diagonal zeroed, src's the diagonal
    of g; their graphs (create_graph) are this op again."""

    @staticmethod
    def forward(ctx, x, src, offset, d1, d2):
        ctx.params = (offset, d1, d2)
        out = x.copy()
        S.Diagonal.view(out, offset, d1, d2)[...] = src
        return out

    @staticmethod
    def backward(ctx, g):
        nx, ns = ctx.needs_input_grad[:2]
        gx = gs = None
        if nx:
            gx = g.copy()
            S.Diagonal.view(gx, *ctx.params)[...] = 0
        if ns:
            gs = get_xp(g).diagonal(g, *ctx.params).copy()
        return gx, gs, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        params, shape = ctx.params, tuple(g.shape)

        def put(x, v):
            return DiagonalScatter.forward(Node(DiagonalScatter, ()), x, v, *params)

        return higher_order.linear_adjoints(
            ctx,
            g,
            {0: lambda u: put(u, 0), 1: lambda w: put(get_xp(w).zeros(shape, w.dtype), w)},
        )


def _scatter_src(op: str, x: Tensor, src: Any, expected: list[int]) -> Tensor:
    src = _tensor(src, op, "src")
    if _shape(src) != expected:
        raise InvalidValue(
            f"{op}(): expected src to have a size equal to the slice of self. src size = "
            f"{_shape(src)}, slice size = {expected}"
        )
    return _cast(src, x.array.dtype)  # (torch casts src to the input's dtype)


def diagonal_scatter(
    input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1
) -> Tensor:
    """A copy of ``input`` with ``src`` on its diagonal (as :func:`darklib.diagonal` with
    the same ``offset``, ``dim1``, ``dim2`` returns it)."""
    op = "diagonal_scatter"
    x = _tensor(input, op)
    if x.ndim < 2:
        raise InvalidValue(f"{op}(): expected a tensor of 2 or more dims, got shape {_shape(x)}")
    d1, d2 = S.norm_dim(dim1, x.ndim, op), S.norm_dim(dim2, x.ndim, op)
    if d1 == d2:
        raise InvalidValue(f"{op}(): diagonal dimensions cannot be identical {dim1}, {dim2}")
    offset = _int_arg(offset, op, "offset")
    expected = _shape(S.diagonal(x, offset, d1, d2))
    return DiagonalScatter.apply(x, _scatter_src(op, x, src, expected), offset, d1, d2)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """A tensor with one more dim whose diagonals (``offset``, in the planes of ``dim1``
    and ``dim2`` of the output) hold the input's last dim; zeros elsewhere.

    Example::

        >>> dl.diag_embed(dl.ones(5, 3)).shape
        (5, 3, 3)
    """
    op = "diag_embed"
    x = _tensor(input, op)
    nd = x.ndim + 1
    d1, d2 = S.norm_dim(dim1, nd, op), S.norm_dim(dim2, nd, op)
    if d1 == d2:
        raise InvalidValue(f"{op}(): diagonal dimensions cannot be identical {dim1}, {dim2}")
    offset = _int_arg(offset, op, "offset")
    if x.ndim == 0:
        raise OutOfRange(f"{op}(): expected a tensor of 1 or more dims, got a 0-d tensor")
    m = x.shape[-1] + builtins.abs(offset)
    batch = iter(x.shape[:-1])
    shape = [m if i in (d1, d2) else next(batch) for i in range(nd)]
    return DiagonalScatter.apply(_zeros(x, shape), x, offset, d1, d2)


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A 2-D matrix with the flattened input on diagonal ``offset``."""
    x = _tensor(input, "diagflat")
    return diag_embed(S.reshape(x, -1), _int_arg(offset, "diagflat", "offset"))


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of ``input`` with ``src`` written at ``index`` along ``dim`` (src has the
    shape of ``input.select(dim, index)``)."""
    op = "select_scatter"
    x = _tensor(input, op)
    if x.ndim == 0:
        raise OutOfRange(f"{op}(): select() cannot be applied to a 0-dim tensor.")
    d = S.norm_dim(dim, x.ndim, op)
    n = x.shape[d]
    i = _int_arg(index, op, "index")
    if not -n <= i < n:
        raise OutOfRange(
            f"{op}(): index {i} out of range for tensor of size {_shape(x)} at dimension {d}"
        )
    expected = [s for j, s in enumerate(x.shape) if j != d]
    src = _scatter_src(op, x, src, expected)
    return IndexPut.apply(x, src, (slice(None),) * d + (i % n,), False)


def slice_scatter(
    input: Tensor,
    src: Tensor,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> Tensor:
    """A copy of ``input`` with ``src`` written at ``input[start:end:step]`` along ``dim``
    (src has that slice's shape)."""
    op = "slice_scatter"
    x = _tensor(input, op)
    if x.ndim == 0:
        raise OutOfRange(f"{op}(): slice() cannot be applied to a 0-dim tensor.")
    d = S.norm_dim(dim, x.ndim, op)
    step = _int_arg(step, op, "step")
    if step <= 0:
        raise InvalidValue(f"{op}(): slice step must be positive, got {step}")
    a = None if start is None else _int_arg(start, op, "start")
    b = None if end is None else _int_arg(end, op, "end")
    a, b, _ = slice(a, b, step).indices(x.shape[d])
    b = builtins.max(a, b)
    expected = _shape(x)
    expected[d] = len(range(a, b, step))
    src = _scatter_src(op, x, src, expected)
    return IndexPut.apply(x, src, (slice(None),) * d + (slice(a, b, step),), False)


def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """:func:`darklib.narrow` as a new tensor, not a view."""
    return S.narrow(_tensor(input, "narrow_copy"), dim, start, length).clone()
