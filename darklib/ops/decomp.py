"""Linear algebra: determinants, inverses, solves, factorizations, norms.

torch.linalg's functions (``dl.linalg``, see :mod:`darklib.linalg`) and torch's top-level
names for them (``dl.det``, ``dl.svd``, ``dl.cholesky_solve``...), on the ``linalg`` of
NumPy or CuPy (only routines both have: det, slogdet, inv, solve, cholesky, qr, svd, eigh;
no SciPy). Every op takes batches ``(*, m, n)`` of matrices, in float32 or float64.

How the gradients are made:

- ops with one output are array Functions (``LinalgDet`` and its gradient ``Cofactor``,
  ``LinalgInvEx``, ``LinalgSolveEx``, ``LinalgCholeskyEx``, ``LinalgSolveTriangular``,
  ``CholeskySolve``, ``LinalgPinv``; named as torch names their nodes) with a ``backward``
  on arrays and a ``backward_graph`` in differentiable ops;
- the decompositions with several outputs (``LinalgSlogdet``, ``LinalgQr``, ``LinalgSvd``,
  ``LinalgEigh``) are Functions with torch's tensor interface (``_arrays = False``): the
  engine's array Functions have one output, and these take one gradient per output (None
  for an output that got none, so that, say, the gradient of the singular values alone
  stays finite for repeated ones). Their backward is written in darklib's differentiable
  ops, so that it records a graph under ``create_graph`` and needs no second formula;
- everything else (norms, lstsq, matrix_power, multi_dot, cross, vecdot, cond, vander,
  tensorinv, tensorsolve, logdet...) is a composition of differentiable ops.

Errors follow torch: :class:`LinAlgError` (a RuntimeError) for a singular matrix in
inv/solve or one that is not positive-definite in cholesky, naming the batch element;
``InvalidType`` for integer or half input; ``InvalidValue`` for shapes, naming them.
"""

from __future__ import annotations

import builtins
import math
import operator
import warnings
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function
from darklib.backend import get_xp, to_numpy
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.grad_mode import is_grad_enabled
from darklib.ops import elementwise as E
from darklib.ops import reduction as R
from darklib.ops import shape as S
from darklib.ops.linalg import _matmul, matmul
from darklib.tensor import Tensor

# torch.return_types' named tuples
slogdet_result = namedtuple("slogdet", ["sign", "logabsdet"])
linalg_slogdet_result = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
qr_result = namedtuple("qr", ["Q", "R"])
geqrf_result = namedtuple("geqrf", ["a", "tau"])
linalg_qr_result = namedtuple("linalg_qr", ["Q", "R"])
svd_result = namedtuple("svd", ["U", "S", "V"])
linalg_svd_result = namedtuple("linalg_svd", ["U", "S", "Vh"])
linalg_eigh_result = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
linalg_lstsq_result = namedtuple(
    "linalg_lstsq", ["solution", "residuals", "rank", "singular_values"]
)


class LinAlgError(RuntimeError):
    """A matrix the op cannot work with: singular (inv, solve) or not positive-definite
    (cholesky). ``torch.linalg.LinAlgError``: a RuntimeError, so ``except RuntimeError``
    catches it too."""


LinAlgError.__module__ = "darklib.linalg"


# ------------------------------------------------------------------ checks

_TORCH_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "uint8": "Byte",
    "bool": "Bool",
}


def _tname(x: Tensor) -> str:
    """The dtype's name in torch's messages (Float, Double, Long...)."""
    name = x.array.dtype.name
    return _TORCH_NAMES.get(name, name)


def _tensor(x: Any, op: str, what: str = "A") -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{op}: expected {what} to be a Tensor, got {type(x).__name__}")
    return x


def _floating(x: Any, op: str, what: str = "A", half: bool = False) -> Tensor:
    """``x``, a tensor of float32 or float64 (the dtypes LAPACK and cuSOLVER work in), or
    float16 too where ``half`` (the norms that need no decomposition)."""
    x = _tensor(x, op, what)
    dt = x.array.dtype
    if dt.kind != "f":
        raise InvalidType(
            f"{op}: Expected a floating point tensor as input. Got {_tname(x)} ({what} of "
            f"shape {list(x.shape)}); convert it with .float() or .double()"
        )
    if dt.itemsize < 4 and not half:
        raise InvalidType(
            f"{op}: Low precision dtypes not supported. Got {_tname(x)} ({what} of shape "
            f"{list(x.shape)}); convert it with .float()"
        )
    return x


def _matrices(x: Tensor, op: str, what: str = "A") -> Tensor:
    if x.ndim < 2:
        raise InvalidValue(
            f"{op}: The input tensor {what} must have at least 2 dimensions, got shape "
            f"{list(x.shape)}"
        )
    return x


def _square(x: Tensor, op: str, what: str = "A") -> Tensor:
    _matrices(x, op, what)
    m, n = x.shape[-2:]
    if m != n:
        raise InvalidValue(
            f"{op}: {what} must be batches of square matrices, but they are {m} by {n} "
            f"matrices (shape {list(x.shape)})"
        )
    return x


def _square_float(x: Any, op: str, what: str = "A") -> Tensor:
    return _square(_floating(x, op, what), op, what)


def _same_dtype(op: str, a: Tensor, b: Tensor, na: str = "A", nb: str = "B") -> None:
    if a.array.dtype != b.array.dtype:
        raise InvalidType(
            f"{op}: Expected {na} and {nb} to have the same dtype, but found {na} of type "
            f"{_tname(a)} and {nb} of type {_tname(b)} instead"
        )


def _batch(op: str, a: Tensor, b: Tensor, na: str = "A", nb: str = "B") -> tuple:
    """The broadcast batch shape of two batches of matrices."""
    try:
        return tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2])))
    except ValueError:
        raise InvalidValue(
            f"{op}: the batch dimensions of {na} {list(a.shape)} and {nb} {list(b.shape)} "
            f"do not broadcast ({list(a.shape[:-2])} and {list(b.shape[:-2])})"
        ) from None


def _int_arg(v: Any, op: str, what: str) -> int:
    if isinstance(v, bool):
        raise InvalidType(f"{op}: {what} must be an integer, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise InvalidType(f"{op}: {what} must be an integer, got {type(v).__name__}") from None


# ------------------------------------------------------------------ array helpers


def _swap(x: Any) -> Any:
    return x.swapaxes(-1, -2)


def _expand(x: Any, batch: tuple) -> Any:
    """Array ``x`` (*, r, c) broadcast to ``batch + (r, c)`` (contiguous on the GPU, where
    cuSOLVER wants it)."""
    shape = tuple(batch) + tuple(x.shape[-2:])
    if x.shape == shape:
        return x
    xp = get_xp(x)
    out = xp.broadcast_to(x, shape)
    return out if xp is np else xp.ascontiguousarray(out)


def _eye_like(x: Any, n: int) -> Any:
    return get_xp(x).eye(n, dtype=x.dtype)


def _prefix(index: int, batch: tuple) -> str:
    return f"(Batch element {index}): " if batch else ""


def _zero_pivot(m: np.ndarray) -> int:
    """LAPACK getrf's ``info`` for one matrix: the 1-based column of the first pivot of
    LU with partial pivoting that is exactly zero, or 0 (error path only)."""
    a = np.array(m, copy=True)
    n = a.shape[-1]
    first = 0
    for k in range(n):
        p = k + int(np.argmax(np.abs(a[k:, k])))
        piv = a[p, k]
        if piv == 0:
            first = first or k + 1
            continue  # as getrf, which goes on with the next column
        if p != k:
            a[[k, p]] = a[[p, k]]
        a[k + 1 :, k] /= piv
        a[k + 1 :, k + 1 :] -= np.outer(a[k + 1 :, k], a[k, k + 1 :])
    return first


def _not_pd_order(m: np.ndarray) -> int:
    """LAPACK potrf's ``info`` for one matrix (its lower triangle): the order of the first
    leading minor that is not positive-definite, or 0 (error path only)."""
    n = m.shape[-1]
    low = np.zeros_like(m)
    for j in range(n):
        d = m[j, j] - low[j, :j] @ low[j, :j]
        if not d > 0:  # (NaN too)
            return j + 1
        low[j, j] = np.sqrt(d)
        low[j + 1 :, j] = (m[j + 1 :, j] - low[j + 1 :, :j] @ low[j, :j]) / low[j, j]
    return 0


def _first_failure(a: Any, test: Any) -> tuple[int, int] | None:
    """(flat batch index, ``test``'s answer) for the first matrix of ``a`` where ``test``
    answers non-zero, or None."""
    host = to_numpy(a)
    with np.errstate(all="ignore"):
        for i, m in enumerate(host.reshape((-1, *host.shape[-2:]))):
            k = test(m)
            if k:
                return i, k
    return None


def _singular(a: Any, op: str, solver: bool) -> LinAlgError:
    batch = tuple(a.shape[:-2])
    found = _first_failure(a, _zero_pivot)
    if found is None:  # (a zero pivot from rounding that this LU did not meet)
        where = ""
    else:
        where = _prefix(found[0], batch)
    if solver:
        return LinAlgError(f"{op}: {where}The solver failed because the input matrix is singular.")
    k = "" if found is None else f" {found[1]}"
    return LinAlgError(
        f"{op}: {where}The diagonal element{k} is zero, the inversion could not be "
        "completed because the input matrix is singular."
    )


def _checked(xp: Any, a: Any, out: Any, op: str, solver: bool) -> Any:
    """``out`` of inv/solve on ``a``: CuPy does not raise for a singular matrix (inf or NaN
    come back); where a finite input gave a non-finite result, find the singular one."""
    if xp is np or bool(xp.isfinite(out).all()) or not bool(xp.isfinite(a).all()):
        return out
    if _first_failure(a, _zero_pivot) is not None:
        raise _singular(a, op, solver)
    return out


def _inv(a: Any, op: str) -> Any:
    xp = get_xp(a)
    try:
        out = xp.linalg.inv(a)
    except np.linalg.LinAlgError:  # (CuPy's is NumPy's)
        raise _singular(a, op, False) from None
    return _checked(xp, a, out, op, False)


def _solve(a: Any, b: Any, op: str) -> Any:
    """X with a X = b for a (*, n, n) and b (*, n, k) of the same batch shape."""
    xp = get_xp(a)
    try:
        out = xp.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise _singular(a, op, True) from None
    return _checked(xp, a, out, op, True)


def _cholesky(a: Any, op: str) -> Any:
    xp = get_xp(a)
    out = None
    try:
        if xp is not np:  # the lower triangle, as LAPACK reads it (and torch)
            a = xp.tril(a) + _swap(xp.tril(a, -1))
        out = xp.linalg.cholesky(a)
        # NumPy raises for most failures but gives NaN for a NaN pivot, and CuPy does not
        # raise at all: a failed factorization leaves a pivot that is <= 0 or NaN
        diag = xp.diagonal(out, axis1=-2, axis2=-1)
        if bool((diag > 0).all()) and bool(xp.isfinite(out).all()):
            return out
    except np.linalg.LinAlgError:
        pass
    found = _first_failure(a, _not_pd_order)
    if found is None and out is not None:
        return out
    where = "" if found is None else _prefix(found[0], tuple(a.shape[:-2]))
    order = ""
    if found is not None:
        order = f" (the leading minor of order {found[1]} is not positive-definite)"
    raise LinAlgError(
        f"{op}: {where}The factorization could not be completed because the input is not "
        f"positive-definite{order}."
    )


def _svd(a: Any, full_matrices: bool = False, compute_uv: bool = True) -> Any:
    """``xp.linalg.svd``, with torch's LinAlgError where it cannot converge (non-finite
    input: NumPy raises its own error, CuPy gives NaN)."""
    xp = get_xp(a)
    finite = xp is np or bool(xp.isfinite(a).all())
    if finite:
        try:
            with np.errstate(all="ignore"):
                return xp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
        except np.linalg.LinAlgError:
            finite = bool(np.isfinite(a).all())
    why = "the input matrix is ill-conditioned or has too many repeated singular values"
    if not finite:
        why = "the input matrix contained non-finite values"
    raise LinAlgError(f"linalg.svd: The algorithm failed to converge because {why}.")


def _det(a: Any) -> Any:
    xp = get_xp(a)
    return xp.asarray(xp.linalg.det(a))  # (NumPy gives a scalar for one matrix)


def _cofactor(a: Any) -> Any:
    """The cofactor matrix of each (n, n) matrix, the gradient of det: det(A) A^-T where
    A is invertible, and from the SVD A = U S Vh for any A (also singular ones):
    det(U) det(Vh) U diag(prod_{j != i} s_j) Vh, with no division."""
    xp = get_xp(a)
    n = a.shape[-1]
    if n == 0 or a.size == 0:
        return xp.zeros_like(a)
    if not bool(xp.isfinite(a).all()):
        return xp.full_like(a, np.nan)  # (as det's other gradients of NaN input)
    u, s, vh = _svd(a, full_matrices=True)
    ones = xp.ones((*s.shape[:-1], 1), s.dtype)
    before = xp.cumprod(xp.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = xp.flip(
        xp.cumprod(xp.flip(xp.concatenate([s[..., 1:], ones], axis=-1), axis=-1), axis=-1),
        axis=-1,
    )
    others = before * after * (_det(u) * _det(vh))[..., None]
    return _matmul(u * others[..., None, :], vh)


def _triangle(a: Any, upper: bool, unit: bool) -> Any:
    xp = get_xp(a)
    if unit:
        t = xp.triu(a, 1) if upper else xp.tril(a, -1)
        return t + _eye_like(a, a.shape[-1])
    return xp.triu(a) if upper else xp.tril(a)


_TRI_BLOCK = 32  # rows substituted one by one; the rest of the system updated by a GEMM


def _tri_solve(t: Any, b: Any, upper: bool) -> Any:
    """X with t X = b for triangular t (*, n, n), b (*, n, k), one batch shape, by blocked
    substitution (as LAPACK's trsm). An LU solve of the triangle, pivoting across it, lost
    every digit on ill-conditioned triangles that substitution solves to machine precision.
    A zero on the diagonal gives inf/NaN, as torch's triangular solve (no error)."""
    xp = get_xp(t)
    n = t.shape[-1]
    x = xp.empty(b.shape, xp.result_type(t.dtype, b.dtype))
    starts = range(0, n, _TRI_BLOCK)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for s in reversed(starts) if upper else starts:
            e = min(s + _TRI_BLOCK, n)
            rhs = b[..., s:e, :]
            if upper and e < n:
                rhs = rhs - xp.matmul(t[..., s:e, e:], x[..., e:, :])
            elif not upper and s > 0:
                rhs = rhs - xp.matmul(t[..., s:e, :s], x[..., :s, :])
            for i in range(e - 1, s - 1, -1) if upper else range(s, e):
                lo, hi = (i + 1, e) if upper else (s, i)
                acc = rhs[..., i - s, :]
                if hi > lo:
                    acc = acc - xp.matmul(t[..., i : i + 1, lo:hi], x[..., lo:hi, :])[..., 0, :]
                x[..., i, :] = acc / t[..., i, i, None]
    return x


def _const(like: Tensor, arr: Any) -> Tensor:
    """A constant tensor (no graph) of ``like``'s dtype."""
    return Tensor._wrap(arr.astype(like.array.dtype, copy=False))


def _eye(like: Tensor, n: int) -> Tensor:
    return Tensor._wrap(get_xp(like.array).eye(n, dtype=like.array.dtype))


def _torch_node_name(cls: type[Function]) -> type[Function]:
    """Node type named as torch's (``LinalgSvdBackward0``), also for the tensor-interface
    Functions, whose nodes would otherwise be named ``LinalgSvdBackward``."""
    name = f"{cls.__name__}Backward0"
    cls._node.__name__ = cls._node.__qualname__ = name
    return cls


# ------------------------------------------------------------------ Functions: one output


class LinalgDet(Function):
    """det(A). Gradient: the cofactor matrix, det(A) A^-T, computed from the SVD so that it
    is right for singular matrices too (under create_graph as well, see
    :class:`Cofactor`)."""

    @staticmethod
    def forward(ctx, a):
        out = _det(a)
        ctx.save_for_backward(a)
        return out

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g[..., None, None] * _cofactor(a)

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        return g.unsqueeze(-1).unsqueeze(-1) * Cofactor.apply(ctx.lift(a, 0))


class Cofactor(Function):
    """The cofactor matrix C of each square matrix (det's gradient), an op of its own for
    create_graph: its value from the SVD (right for singular matrices too), its gradient
    det(A) (<G, A^-T> A^-T - A^-T G^T A^-T), which needs A invertible: second derivatives
    of det at a singular matrix raise LinAlgError."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _cofactor(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        it = _swap(_inv(a, "linalg.det (second derivative)"))
        inner = (g * it).sum(axis=(-2, -1))[..., None, None]
        return _det(a)[..., None, None] * (inner * it - _matmul(_matmul(it, _swap(g)), it))

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        at = ctx.lift(a, 0)
        it = LinalgInvEx.apply(at, "linalg.det (second derivative)").mT
        inner = R.sum(g * it, (-2, -1)).unsqueeze(-1).unsqueeze(-1)
        d = LinalgDet.apply(at).unsqueeze(-1).unsqueeze(-1)
        return d * (inner * it - it @ g.mT @ it)


class LinalgInvEx(Function):
    """inv(A). Gradient: -A^-T g A^-T."""

    @staticmethod
    def forward(ctx, a, op):
        out = _inv(a, op)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        yt = _swap(y)
        return -_matmul(_matmul(yt, g), yt), None

    @staticmethod
    def backward_graph(ctx, g):
        (y,) = ctx.saved_tensors
        yt = ctx.lift_output(y).mT
        return -(yt @ g @ yt), None


class LinalgSolveEx(Function):
    """X with A X = B, A (*, n, n), B (*, n, k), batch dims broadcast. Gradients:
    gB = A^-T g, gA = -gB X^T."""

    @staticmethod
    def forward(ctx, a, b, op):
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        x = _solve(_expand(a, batch), _expand(b, batch), op)
        ctx.save_for_backward(a, x)
        ctx.op = op
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        batch = x.shape[:-2]
        gb = _solve(_expand(_swap(a), batch), g, ctx.op)
        ga = -_matmul(gb, _swap(x)) if ctx.needs_input_grad[0] else None
        return ga, (gb if ctx.needs_input_grad[1] else None), None

    @staticmethod
    def backward_graph(ctx, g):
        a, x = ctx.saved_tensors
        at = ctx.lift(a, 0)
        gb = LinalgSolveEx.apply(at.mT, g, ctx.op)
        ga = -(gb @ ctx.lift_output(x).mT) if ctx.needs_input_grad[0] else None
        return ga, (gb if ctx.needs_input_grad[1] else None), None


def _cholesky_inner(l: Any, g: Any) -> Any:
    """Phi(L^T g): the lower triangle of L^T g with its diagonal halved."""
    xp = get_xp(l)
    m = xp.tril(_matmul(_swap(l), g))
    n = l.shape[-1]
    idx = xp.arange(n)
    m[..., idx, idx] *= 0.5
    return m


class LinalgCholeskyEx(Function):
    """L lower triangular with A = L L^T (A's lower triangle is read). Gradient, symmetric
    as torch's (A is taken as symmetric): sym(L^-T Phi(L^T g) L^-1), Phi the lower
    triangle with the diagonal halved."""

    @staticmethod
    def forward(ctx, a, op):
        out = _cholesky(a, op)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (l,) = ctx.saved_tensors
        lt = _swap(l)
        z = _tri_solve(lt, _cholesky_inner(l, g), True)  # L^-T Phi
        ga = _swap(_tri_solve(lt, _swap(z), True))  # L^-T Phi L^-1
        return 0.5 * (ga + _swap(ga)), None

    @staticmethod
    def backward_graph(ctx, g):
        (l,) = ctx.saved_tensors
        xp = get_xp(l)
        n = l.shape[-1]
        mask = xp.tril(xp.ones((n, n), l.dtype)) - 0.5 * xp.eye(n, dtype=l.dtype)
        lt = ctx.lift_output(l).mT
        phi = (lt @ g) * _const(g, mask)
        z = LinalgSolveTriangular.apply(lt, phi, True, False)
        ga = LinalgSolveTriangular.apply(lt, z.mT, True, False).mT
        return 0.5 * (ga + ga.mT), None


class LinalgSolveTriangular(Function):
    """X with T X = B, T the upper or lower triangle of A (unit diagonal if
    ``unitriangular``); batch dims broadcast. Gradients: gB = T^-T g, gA = -gB X^T on the
    triangle that was read (off the diagonal for a unit triangle)."""

    @staticmethod
    def forward(ctx, a, b, upper, unit):
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        t = _triangle(a, upper, unit)
        x = _tri_solve(_expand(t, batch), _expand(b, batch), upper)
        ctx.save_for_backward(a, x)
        ctx.flags = (upper, unit)
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        upper, unit = ctx.flags
        tt = _expand(_swap(_triangle(a, upper, unit)), x.shape[:-2])
        gb = _tri_solve(tt, g, not upper)
        ga = None
        if ctx.needs_input_grad[0]:
            xp = get_xp(a)
            ga = -_matmul(gb, _swap(x))
            k = 1 if unit else 0
            ga = xp.triu(ga, k) if upper else xp.tril(ga, -k)
        return ga, (gb if ctx.needs_input_grad[1] else None), None, None

    @staticmethod
    def backward_graph(ctx, g):
        a, x = ctx.saved_tensors
        upper, unit = ctx.flags
        at = ctx.lift(a, 0)
        gb = LinalgSolveTriangular.apply(at.mT, g, not upper, unit)
        ga = None
        if ctx.needs_input_grad[0]:
            ga = -(gb @ ctx.lift_output(x).mT)
            k = 1 if unit else 0
            ga = S.triu(ga, k) if upper else S.tril(ga, -k)
        return ga, (gb if ctx.needs_input_grad[1] else None), None, None


class CholeskySolve(Function):
    """X = A^-1 B with A = L L^T (``upper``: U^T U) from the factor's triangle, by two
    triangular solves. Gradients as torch's, which take A as made of the whole factor
    (the same where the other triangle is zero, as it is for a Cholesky factor):
    gB = A^-1 g; gL = -(M + M^T) L (``upper``: -U (M + M^T)) with M = gB X^T."""

    @staticmethod
    def forward(ctx, b, l, upper):
        batch = tuple(np.broadcast_shapes(b.shape[:-2], l.shape[:-2]))
        t = _expand(_triangle(l, upper, False), batch)
        x = _cholesky_solve(t, _expand(b, batch), upper)
        ctx.save_for_backward(l, x)
        ctx.upper = upper
        return x

    @staticmethod
    def backward(ctx, g):
        l, x = ctx.saved_tensors
        upper = ctx.upper
        t = _expand(_triangle(l, upper, False), x.shape[:-2])
        gb = _cholesky_solve(t, g, upper)
        gl = None
        if ctx.needs_input_grad[1]:
            m = _matmul(gb, _swap(x))
            m = m + _swap(m)
            gl = -_matmul(_expand(l, m.shape[:-2]), m) if upper else -_matmul(m, l)
        return (gb if ctx.needs_input_grad[0] else None), gl, None

    @staticmethod
    def backward_graph(ctx, g):
        l, x = ctx.saved_tensors
        upper = ctx.upper
        lt = ctx.lift(l, 1)
        gb = CholeskySolve.apply(g, lt, upper)
        gl = None
        if ctx.needs_input_grad[1]:
            m = gb @ ctx.lift_output(x).mT
            m = m + m.mT
            gl = -(lt @ m) if upper else -(m @ lt)
        return (gb if ctx.needs_input_grad[0] else None), gl, None


def _cholesky_solve(t: Any, b: Any, upper: bool) -> Any:
    """A^-1 b from A's triangular factor t (one batch shape): two triangular solves."""
    tt = _swap(t)
    if upper:  # A = U^T U: U^T y = b, then U x = y
        return _tri_solve(t, _tri_solve(tt, b, False), True)
    return _tri_solve(tt, _tri_solve(t, b, False), True)


def _tolerance(s_max: Any, m: int, n: int, atol: Any, rtol: Any) -> Any:
    """torch's cut-off for small singular values: max(atol, rtol * s_max); rtol defaults
    to eps * max(m, n), or to 0 where an atol > 0 is given."""
    xp = get_xp(s_max)
    dt = s_max.dtype
    a = xp.asarray(0.0 if atol is None else atol, dtype=dt)
    if rtol is None:
        default = np.finfo(dt).eps * builtins.max(m, n)
        r = xp.asarray(default, dtype=dt) if atol is None else xp.where(a > 0, 0.0, default)
    else:
        r = xp.asarray(rtol, dtype=dt)
    return xp.maximum(a, r * s_max).astype(dt, copy=False)


def _pinv(a: Any, atol: Any, rtol: Any, hermitian: bool) -> Any:
    xp = get_xp(a)
    m, n = a.shape[-2:]
    if m == 0 or n == 0 or a.size == 0:
        return xp.zeros((*a.shape[:-2], n, m), a.dtype)
    if hermitian:
        w, v = xp.linalg.eigh(a)
        s = xp.abs(w)
        keep = s > _tolerance(s.max(axis=-1, keepdims=True), m, n, atol, rtol)
        winv = xp.where(keep, 1 / xp.where(keep, w, 1), 0).astype(a.dtype, copy=False)
        return _matmul(v * winv[..., None, :], _swap(v))
    u, s, vh = _svd(a)
    keep = s > _tolerance(s[..., :1], m, n, atol, rtol)
    sinv = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype, copy=False)
    return _matmul(_swap(vh) * sinv[..., None, :], _swap(u))


class LinalgPinv(Function):
    """The pseudo-inverse P = A^+ (SVD, or eigh for ``hermitian``), singular values at or
    below max(atol, rtol * s_max) taken as 0. Gradient (where the rank is locally
    constant): -P^T g P^T + (I - A P) g^T P P^T + P^T P g^T (I - P A)."""

    @staticmethod
    def forward(ctx, a, atol, rtol, hermitian):
        out = _pinv(a, atol, rtol, hermitian)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, p = ctx.saved_tensors
        pt, gt = _swap(p), _swap(g)
        left = _matmul(gt, _matmul(p, pt))  # g^T P P^T
        right = _matmul(pt, _matmul(p, gt))  # P^T P g^T
        ga = -_matmul(_matmul(pt, g), pt)
        ga = ga + left - _matmul(a, _matmul(p, left))
        ga = ga + right - _matmul(_matmul(right, p), a)
        return ga, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        a, p = ctx.saved_tensors
        at, pp = ctx.lift(a, 0), ctx.lift_output(p)
        pt, gt = pp.mT, g.mT
        left = gt @ (pp @ pt)
        right = pt @ (pp @ gt)
        ga = -(pt @ g @ pt) + left - at @ (pp @ left) + right - (right @ pp) @ at
        return ga, None, None, None


# ------------------------------------------------------------------ Functions: several outputs


@_torch_node_name
class LinalgSlogdet(Function):
    """(sign, log|det|). Gradient of logabsdet: g A^-T (sign has none). Tensor interface:
    its backward is differentiable ops, so it serves create_graph too."""

    _arrays = False

    @staticmethod
    def forward(ctx, A):
        xp = get_xp(A.array)
        sign, logabs = xp.linalg.slogdet(A.array)
        ctx.save_for_backward(A)
        ctx.set_materialize_grads(False)
        return Tensor._wrap(xp.asarray(sign)), Tensor._wrap(xp.asarray(logabs))

    @staticmethod
    def backward(ctx, g_sign, g_logabs):
        if g_logabs is None:
            return None
        (A,) = ctx.saved_tensors
        try:
            it = inv(A).mT
        except LinAlgError:  # a singular A: the LU solve's inf / NaN, as torch, no error
            it = inv_ex(A).inverse.mT
        return g_logabs.unsqueeze(-1).unsqueeze(-1) * it


@_torch_node_name
class LinalgEigh(Function):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices (one triangle read).
    Gradient (symmetric, distinct eigenvalues where the eigenvectors get one):
    Q (diag(gL) + skew(Q^T gQ) / (l_j - l_i)) Q^T. Tensor interface (see the module)."""

    _arrays = False

    @staticmethod
    def forward(ctx, A, uplo):
        w, v = get_xp(A.array).linalg.eigh(A.array, UPLO=uplo)
        W, V = Tensor._wrap(w), Tensor._wrap(v)
        ctx.save_for_backward(W, V)
        ctx.set_materialize_grads(False)
        return W, V

    @staticmethod
    def backward(ctx, gw, gv):
        W, V = ctx.saved_tensors
        eye = _eye(W, W.shape[-1])
        inner = None
        if gv is not None:
            x = V.mT @ gv
            gap = W.unsqueeze(-2) - W.unsqueeze(-1)  # [i, j] = l_j - l_i
            inner = (x - x.mT) * 0.5 / (gap + eye)  # (0 on the diagonal)
        if gw is not None:
            d = gw.unsqueeze(-1) * eye
            inner = d if inner is None else inner + d
        return V @ inner @ V.mT, None


@_torch_node_name
class LinalgSvd(Function):
    """A = U diag(S) Vh. Gradient (for real matrices, Townsend's formula), with F_ij =
    1 / (s_j^2 - s_i^2):
    U [(F o (U^T gU - gU^T U)) S + S (F o (V^T gV - gV^T V)) + diag(gS)] Vh
    + (I - U U^T) gU S^-1 Vh + U S^-1 gV^T (I - V V^T).
    The singular values alone (gU, gV None) give U diag(gS) Vh, finite for repeated
    ones; the vectors need distinct non-zero singular values (else inf/NaN, as torch).
    With ``full_matrices`` the extra columns of U and rows of Vh get no gradient, as in
    torch. Tensor interface (see the module)."""

    _arrays = False

    @staticmethod
    def forward(ctx, A, full_matrices):
        u, s, vh = _svd(A.array, full_matrices=full_matrices)
        U, Sv, Vh = Tensor._wrap(u), Tensor._wrap(s), Tensor._wrap(vh)
        ctx.save_for_backward(U, Sv, Vh)
        ctx.set_materialize_grads(False)
        return U, Sv, Vh

    @staticmethod
    def backward(ctx, gu, gs, gvh):
        U, Sv, Vh = ctx.saved_tensors
        m, n, k = U.shape[-2], Vh.shape[-1], Sv.shape[-1]
        if U.shape[-1] != k:  # full_matrices: the first k columns / rows
            U = S.narrow(U, -1, 0, k)
            gu = None if gu is None else S.narrow(gu, -1, 0, k)
        if Vh.shape[-2] != k:
            Vh = S.narrow(Vh, -2, 0, k)
            gvh = None if gvh is None else S.narrow(gvh, -2, 0, k)
        eye = _eye(Sv, k)
        inner = None if gs is None else gs.unsqueeze(-1) * eye
        if gu is None and gvh is None:
            return U @ inner @ Vh, None
        s2 = Sv * Sv
        gap = s2.unsqueeze(-2) - s2.unsqueeze(-1) + eye  # [i, j] = s_j^2 - s_i^2
        row, col = Sv.unsqueeze(-2), Sv.unsqueeze(-1)
        if gu is not None:
            x = U.mT @ gu
            t = (x - x.mT) / gap * row  # J S
            inner = t if inner is None else inner + t
        if gvh is not None:
            gv = gvh.mT
            V = Vh.mT
            y = V.mT @ gv
            t = col * ((y - y.mT) / gap)  # S K
            inner = t if inner is None else inner + t
        ga = U @ inner @ Vh
        if gu is not None and m > k:
            ga = ga + ((gu - U @ (U.mT @ gu)) / row) @ Vh
        if gvh is not None and n > k:
            ga = ga + (U / row) @ (gv - V @ (V.mT @ gv)).mT
        return ga, None


def _qr_grad_tall(Q: Tensor, Rm: Tensor, gq: Tensor | None, gr: Tensor | None) -> Tensor:
    """Gradient of A = QR (m >= n, reduced, R invertible):
    (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q, copyltu(M) = tril(M) + tril(M, -1)^T."""
    M = None if gr is None else Rm @ gr.mT
    if gq is not None:
        t = gq.mT @ Q
        M = -t if M is None else M - t
    b = Q @ (S.tril(M) + S.tril(M, -1).mT)
    if gq is not None:
        b = b + gq
    return LinalgSolveTriangular.apply(Rm, b.mT, True, False).mT


@_torch_node_name
class LinalgQr(Function):
    """A = QR by Householder reflections (LAPACK's and cuSOLVER's geqrf: R's diagonal may
    be negative, as torch's). Gradient for mode 'reduced' (and 'complete' with m <= n) of
    full-rank matrices; for wide ones (m < n), A = [X | Y]: the square formula on X with
    gQ + Y gR_Y^T, and Q gR_Y for Y. Tensor interface (see the module)."""

    _arrays = False

    @staticmethod
    def forward(ctx, A, mode):
        a = A.array
        xp = get_xp(a)
        ctx.mode = mode
        ctx.set_materialize_grads(False)
        if mode == "r":
            return Tensor._wrap(xp.zeros((0,), a.dtype)), Tensor._wrap(xp.linalg.qr(a, mode="r"))
        q, r = xp.linalg.qr(a, mode=mode)
        Q, Rm = Tensor._wrap(q), Tensor._wrap(r)
        ctx.save_for_backward(A, Q, Rm)
        return Q, Rm

    @staticmethod
    def backward(ctx, gq, gr):
        if ctx.mode == "r":
            raise RuntimeError(
                "The derivative of linalg.qr depends on Q, which is not computed when "
                "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                "differentiate through linalg.qr."
            )
        A, Q, Rm = ctx.saved_tensors
        m, n = A.shape[-2:]
        if ctx.mode == "complete" and m > n:
            raise RuntimeError(
                "The QR decomposition is not differentiable when mode='complete' and "
                f"nrows > ncols (got {m} by {n} matrices); use mode='reduced'."
            )
        if m >= n:
            return _qr_grad_tall(Q, Rm, gq, gr), None
        y = S.narrow(A, -1, m, n - m)
        gx_r = None if gr is None else S.narrow(gr, -1, 0, m)
        gy_r = None if gr is None else S.narrow(gr, -1, m, n - m)
        if gy_r is not None:
            t = y @ gy_r.mT
            gq = t if gq is None else gq + t
        gx = _qr_grad_tall(Q, S.narrow(Rm, -1, 0, m), gq, gx_r)
        gy = _const(y, get_xp(y.array).zeros(y.shape)) if gy_r is None else Q @ gy_r
        return S.cat([gx, gy], -1), None


# ------------------------------------------------------------------ torch.linalg functions


def det(A: Tensor) -> Tensor:
    """Determinant of each square matrix of ``A`` (*, n, n).

    Gradient: the cofactor matrix (det(A) A^-T), right for singular matrices too.
    """
    return LinalgDet.apply(_square_float(A, "linalg.det"))


def linalg_slogdet(A: Tensor) -> Any:
    """``(sign, logabsdet)`` of det(A), as a named tuple; a singular matrix gives
    ``(0, -inf)``. Gradient of logabsdet: A^-T."""
    sign, logabs = LinalgSlogdet.apply(_square_float(A, "linalg.slogdet"))
    return linalg_slogdet_result(sign, logabs)


@autocasts("linalg_inv")
def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix of ``A``; a singular one raises
    :class:`LinAlgError` naming its batch element."""
    return LinalgInvEx.apply(_square_float(A, "linalg.inv"), "linalg.inv")


def _solve_operands(A: Tensor, B: Tensor, op: str, left: bool = True) -> tuple:
    """A, B checked; B as matrices; whether B was a vector (torch's rule: B.ndim == 1, or
    B.shape == A.shape[:-1])."""
    A = _square_float(A, op)
    B = _floating(B, op, "B")
    _same_dtype(op, A, B)
    if B.ndim == 0:
        raise InvalidValue(
            f"{op}: The input tensor B must have at least 1 dimension (a vector) or 2 (matrices),"
            f" got a 0-d tensor; A has shape {list(A.shape)}"
        )
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    Bm = B.unsqueeze(-1) if vector else B
    n = A.shape[-1]
    rows = Bm.shape[-2] if left or vector else Bm.shape[-1]
    if rows != n:
        eq = "AX = B" if left else "XA = B"
        raise InvalidValue(
            f"{op}: Incompatible shapes of A and B for the equation {eq} ({n}x{n} and "
            f"{Bm.shape[-2]}x{Bm.shape[-1]}); A has shape {list(A.shape)}, B has shape "
            f"{list(B.shape)}"
        )
    _batch(op, A, Bm)
    return A, Bm, vector


@autocasts("linalg_solve")
def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with ``A X = B`` (``X A = B`` for ``left=False``).

    Shape: A (*, n, n); B (*, n, k), or a vector (n,) or (*, n) when ``B.shape ==
    A.shape[:-1]`` (torch's rule), giving X of B's shape; batch dims broadcast. A
    singular matrix raises :class:`LinAlgError`.
    """
    op = "linalg.solve"
    A, Bm, vector = _solve_operands(A, B, op, left)
    if not left:
        if vector:  # x^T A = b^T
            return LinalgSolveEx.apply(A.mT, Bm, op).squeeze(-1)
        return LinalgSolveEx.apply(A.mT, Bm.mT, op).mT
    X = LinalgSolveEx.apply(A, Bm, op)
    return X.squeeze(-1) if vector else X


@autocasts("linalg_cholesky")
def linalg_cholesky(A: Tensor, *, upper: bool = False, _op: str = "linalg.cholesky") -> Tensor:
    """L (lower triangular) with ``A = L L^T`` for symmetric positive-definite ``A`` (its
    lower triangle is read); ``upper=True`` gives U = L^T with A = U^T U, reading the upper
    triangle, as torch. A matrix that is not positive-definite raises
    :class:`LinAlgError` naming the leading minor's order."""
    A = _square_float(A, _op)
    if upper:  # the upper triangle of A is the lower one of A^T
        return LinalgCholeskyEx.apply(A.mT, _op).mT
    return LinalgCholeskyEx.apply(A, _op)


@autocasts("linalg_qr")
def linalg_qr(A: Tensor, mode: str = "reduced") -> Any:
    """``(Q, R)`` with ``A = Q R``, Q with orthonormal columns, R upper triangular.

    ``mode``: 'reduced' (Q (*, m, k), R (*, k, n), k = min(m, n)), 'complete' (Q (*, m,
    m), R (*, m, n)) or 'r' (R only; Q is an empty tensor). Differentiable for 'reduced'
    (and 'complete' where m <= n) on full-rank matrices.
    """
    op = "linalg.qr"
    A = _matrices(_floating(A, op), op)
    if mode not in ("reduced", "complete", "r"):
        raise InvalidValue(
            f"qr received unrecognized mode {mode!r} but expected one of 'reduced' "
            "(default), 'r', or 'complete'"
        )
    Q, Rm = LinalgQr.apply(A, mode)
    return linalg_qr_result(Q, Rm)


@autocasts("linalg_svd")
def linalg_svd(A: Tensor, full_matrices: bool = True, *, driver: str | None = None) -> Any:
    """``(U, S, Vh)`` with ``A = U diag(S) Vh``, S descending.

    Shape: A (*, m, n); with ``full_matrices`` (the default, as torch) U (*, m, m) and Vh
    (*, n, n), else U (*, m, k), Vh (*, k, n), k = min(m, n). ``driver`` (cuSOLVER's
    choice in torch) is ignored. Gradient: see :class:`LinalgSvd`; singular vectors are
    unique up to sign only, so only functions invariant to it have a meaningful one.
    """
    op = "linalg.svd"
    A = _matrices(_floating(A, op), op)
    U, Sv, Vh = LinalgSvd.apply(A, bool(full_matrices))
    return linalg_svd_result(U, Sv, Vh)


def _needs_grad(A: Tensor) -> bool:
    return A.requires_grad and is_grad_enabled()


@autocasts("linalg_svdvals")
def svdvals(A: Tensor, *, driver: str | None = None) -> Tensor:
    """The singular values of ``A`` (*, m, n), descending: (*, min(m, n)). Their gradient
    U diag(g) Vh is defined for repeated ones too."""
    op = "linalg.svdvals"
    A = _matrices(_floating(A, op), op)
    if _needs_grad(A):
        return LinalgSvd.apply(A, False)[1]
    return Tensor._wrap(_svd(A.array, compute_uv=False))


def _uplo(UPLO: Any) -> str:
    u = UPLO.upper() if isinstance(UPLO, str) else UPLO
    if u not in ("L", "U"):
        raise InvalidValue(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return u


@autocasts("linalg_eigh")
def eigh(A: Tensor, UPLO: str = "L") -> Any:
    """``(eigenvalues, eigenvectors)`` of symmetric matrices: eigenvalues ascending, the
    eigenvectors in the columns. Only the lower (``UPLO='L'``) or upper triangle is read.
    Eigenvectors are unique up to sign (and within repeated eigenvalues): the gradient
    through them needs distinct eigenvalues."""
    op = "linalg.eigh"
    A = _square_float(A, op)
    w, v = LinalgEigh.apply(A, _uplo(UPLO))
    return linalg_eigh_result(w, v)


@autocasts("linalg_eigvalsh")
def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of symmetric matrices, ascending."""
    op = "linalg.eigvalsh"
    A = _square_float(A, op)
    uplo = _uplo(UPLO)
    if _needs_grad(A):
        return LinalgEigh.apply(A, uplo)[0]
    with np.errstate(all="ignore"):
        return Tensor._wrap(get_xp(A.array).linalg.eigvalsh(A.array, UPLO=uplo))


def _tol_value(t: Any, op: str, what: str) -> Any:
    if t is None:
        return None
    if isinstance(t, Tensor):
        if t.array.dtype.kind not in "fiu":
            raise InvalidType(f"{op}: {what} must be a real number or tensor, got {t.dtype}")
        return t.array[..., None]  # (per matrix: against the singular values' last axis)
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise InvalidType(f"{op}: {what} must be a number or a tensor, got {type(t).__name__}")
    return float(t)


@autocasts("linalg_pinv")
def pinv(
    A: Tensor,
    rcond: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
) -> Tensor:
    """The Moore-Penrose pseudo-inverse (*, n, m) of ``A`` (*, m, n).

    Singular values at or below ``max(atol, rtol * s_max)`` count as zero; ``rtol``
    defaults to ``eps * max(m, n)``, or to 0 when ``atol > 0`` is given (torch's rule).
    ``rcond`` (torch's older positional form) is ``rtol`` with ``atol=0``.
    ``hermitian=True`` uses eigh (A symmetric, its lower triangle read). Gradient: valid
    where the rank does not change (see :class:`LinalgPinv`).
    """
    op = "linalg.pinv"
    A = _matrices(_floating(A, op), op)
    if hermitian:  # eigh's square check (NumPy's LinAlgError would not be torch's RuntimeError)
        _square(A, op)
    if rcond is not None:
        if atol is not None or rtol is not None:
            raise InvalidValue(f"{op}: give rcond, or atol/rtol, not both")
        atol, rtol = 0.0, rcond
    return LinalgPinv.apply(
        A, _tol_value(atol, op, "atol"), _tol_value(rtol, op, "rtol"), bool(hermitian)
    )


@autocasts("linalg_matrix_rank")
def matrix_rank(
    A: Tensor,
    tol: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
) -> Tensor:
    """The number of singular values (|eigenvalues| for ``hermitian``) above
    ``max(atol, rtol * s_max)`` (defaults as :func:`pinv`), as int64 of the batch shape.
    ``tol`` (torch's older form) is ``atol`` with ``rtol=0``."""
    op = "linalg.matrix_rank"
    A = _matrices(_floating(A, op), op)
    if hermitian:  # eigh's square check (NumPy's LinAlgError would not be torch's RuntimeError)
        _square(A, op)
    if tol is not None:
        if atol is not None or rtol is not None:
            raise InvalidValue(f"{op}: give tol, or atol/rtol, not both")
        atol, rtol = tol, 0.0
    a = A.array
    xp = get_xp(a)
    m, n = a.shape[-2:]
    if m == 0 or n == 0:
        return Tensor._wrap(xp.zeros(a.shape[:-2], np.int64))
    if hermitian:
        with np.errstate(all="ignore"):
            s = xp.abs(xp.linalg.eigvalsh(a))
        s_max = s.max(axis=-1, keepdims=True)
    else:
        s = _svd(a, compute_uv=False)
        s_max = s[..., :1]
    cut = _tolerance(s_max, m, n, _tol_value(atol, op, "atol"), _tol_value(rtol, op, "rtol"))
    return Tensor._wrap((s > cut).sum(axis=-1).astype(np.int64))


@autocasts("linalg_lstsq")
def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None) -> Any:
    """Least-squares solution of ``A X = B`` as ``(solution, residuals, rank,
    singular_values)``, torch's named tuple.

    Shape: A (*, m, n), B (*, m, k) or (*, m) (when B has one dim less than A); batch dims
    broadcast; solution (*, n, k) or (*, n). Computed as ``pinv(A) @ B`` with singular
    values at or below ``rcond * s_max`` (default ``eps * max(m, n)``) taken as zero,
    so that rank-deficient and wide systems get the minimum-norm solution, and
    differentiable in A and B. ``driver`` only chooses which other fields are filled, as
    in torch on the CPU: 'gelsy' (the default) the rank; 'gels' the residuals; 'gelsd'
    and 'gelss' all three. residuals (``|A X - B|^2`` summed over m) are given where
    m > n and every matrix has full rank, else empty.
    """
    op = "linalg.lstsq"
    A = _matrices(_floating(A, op), op)
    B = _floating(B, op, "B")
    _same_dtype(op, A, B)
    drivers = ("gels", "gelsy", "gelsd", "gelss")
    if driver is None:
        driver = "gelsy"
    if driver not in drivers:
        raise InvalidValue(
            f"{op}: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), got {driver!r}"
        )
    if B.ndim < 1 or not (A.ndim >= B.ndim and A.ndim - B.ndim <= 1):
        raise InvalidValue(
            f"{op}: input.dim() must be greater or equal to other.dim() and (input.dim() - "
            f"other.dim()) <= 1; got A of shape {list(A.shape)} and B of shape {list(B.shape)}"
        )
    vector = B.ndim == A.ndim - 1
    Bm = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if Bm.shape[-2] != m:
        raise InvalidValue(
            f"{op}: input.size(-2) should match other.size(-2): A has shape {list(A.shape)}, "
            f"B has shape {list(B.shape)}"
        )
    _batch(op, A, Bm)
    if rcond is None:
        rcond = float(np.finfo(A.array.dtype).eps) * builtins.max(m, n)
    X = matmul(pinv(A, atol=0.0, rtol=rcond), Bm)
    xp = get_xp(A.array)
    empty = Tensor._wrap(xp.zeros((0,), A.array.dtype))
    rank = Tensor._wrap(xp.zeros((0,), np.int64))
    if driver != "gels":
        rank = matrix_rank(A.detach(), atol=0.0, rtol=rcond)
    residuals = empty
    if driver != "gelsy" and m > n:
        full = matrix_rank(A.detach(), atol=0.0, rtol=rcond) if driver == "gels" else rank
        if bool((full.array == n).all()):
            diff = matmul(A, X) - Bm
            residuals = R.sum(diff * diff, -2)  # (*, k): (*, 1) for a vector B, as torch
    sv = empty
    if driver in ("gelsd", "gelss"):
        sv = svdvals(A.detach())
    return linalg_lstsq_result(X.squeeze(-1) if vector else X, residuals, rank, sv)


@autocasts("linalg_solve_triangular")
def solve_triangular(
    A: Tensor,
    B: Tensor,
    *,
    upper: bool,
    left: bool = True,
    unitriangular: bool = False,
) -> Tensor:
    """X with ``T X = B`` (``X T = B`` for ``left=False``), T the upper or lower triangle
    of ``A`` (its diagonal taken as ones for ``unitriangular``); the other triangle is not
    read. Shape: A (*, n, n), B (*, n, k) ((*, k, n) for left=False), batch dims
    broadcast. A zero on the diagonal gives inf/NaN, as torch (no error)."""
    op = "linalg.solve_triangular"
    A = _square_float(A, op)
    B = _floating(B, op, "B")
    _same_dtype(op, A, B)
    if B.ndim < 2:
        raise InvalidValue(
            f"{op}: The input tensor B must have at least 2 dimensions, got shape {list(B.shape)}"
        )
    n = A.shape[-1]
    rows = B.shape[-2] if left else B.shape[-1]
    if rows != n:
        eq = "AX = B" if left else "XA = B"
        raise InvalidValue(
            f"{op}: Incompatible shapes of A and B for the equation {eq} ({n}x{n} and "
            f"{B.shape[-2]}x{B.shape[-1]}); A has shape {list(A.shape)}, B has shape "
            f"{list(B.shape)}"
        )
    _batch(op, A, B)
    if left:
        return LinalgSolveTriangular.apply(A, B, bool(upper), bool(unitriangular))
    # X T = B  <=>  T^T X^T = B^T, T^T the other triangle of A^T
    return LinalgSolveTriangular.apply(A.mT, B.mT, not upper, bool(unitriangular)).mT


def _two_dims(dim: Any, ndim: int, op: str) -> tuple[int, int]:
    if not isinstance(dim, Sequence) or isinstance(dim, str) or len(dim) != 2:
        got = len(dim) if isinstance(dim, Sequence) and not isinstance(dim, str) else dim
        raise InvalidValue(f"{op}: dim must be a 2-tuple. Got {got}")
    d1, d2 = (S.norm_dim(d, ndim, op) for d in dim)
    if d1 == d2:
        raise InvalidValue(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d1, d2


def _norm_input(x: Any, dtype: Any, op: str) -> Tensor:
    """``x`` checked as floating, then cast to ``dtype`` where one is given (a wider float
    only, as torch)."""
    x = _floating(x, op, half=True)
    if dtype is None:
        return x
    npd = _dt.to_numpy_dtype(dtype)
    if npd.kind != "f":
        raise InvalidType(
            f"{op}: dtype should be floating point, but got {_TORCH_NAMES.get(npd.name, npd)}"
        )
    if npd.itemsize < x.array.dtype.itemsize:
        raise InvalidType(
            f"{op}: the dtype of the input ({_tname(x)}) should be convertible without "
            f"narrowing to the specified dtype ({_TORCH_NAMES.get(npd.name, npd)})"
        )
    return x if x.array.dtype == npd else x.to(npd)


def vector_norm(
    x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """``(sum |x|^ord)^(1/ord)`` over ``dim`` (all dims when None), for any real ``ord``;
    ``inf`` / ``-inf`` the largest / smallest |x|, 0 the count of non-zeros.

    Gradient: 0 where the norm is 0; ties of the inf norms share it, as torch.
    """
    op = "linalg.vector_norm"
    x = _norm_input(x, dtype, op)
    if isinstance(ord, bool) or not isinstance(ord, int | float):
        raise InvalidType(f"{op}: argument 'ord' must be Number, not {type(ord).__name__}")
    dims = None
    if dim is not None:
        dims = S.norm_dims(dim, x.ndim, op) if x.ndim else None
        if isinstance(dim, Sequence) and len(dim) == 0:
            dims = None
    if math.isinf(ord):
        reduced = range(x.ndim) if dims is None else dims
        if x.numel() == 0 and (dims is None or any(x.shape[d] == 0 for d in reduced)):
            sign = "" if ord > 0 else "-"
            raise InvalidValue(
                f"{op} cannot compute the {sign}inf norm on an empty tensor because the "
                f"operation does not have an identity (shape {list(x.shape)})"
            )
    out = R.norm(x, ord, dims, keepdim)
    if keepdim and dims is None and out.ndim != x.ndim:
        out = out.reshape((1,) * x.ndim)
    return out


def _empty_min_norm(A: Tensor, ord: Any) -> OutOfRange:
    return OutOfRange(
        f"linalg.matrix_norm: the {ord} norm (a minimum) of empty matrices is not defined, "
        f"got A of shape {list(A.shape)}"
    )


def _sv_reduce(A: Tensor, d1: int, d2: int, keepdim: bool, how: str) -> Tensor:
    """sum / max / min of the singular values of the matrices across dims d1, d2."""
    sv = svdvals(S.movedim(A, (d1, d2), (-2, -1)))
    if how == "sum":
        out = R.sum(sv, -1)
    elif sv.shape[-1] == 0:
        if how == "min":
            raise _empty_min_norm(A, -2)
        out = R.sum(sv, -1)  # (empty matrices: 0, as torch)
    else:
        out = (R.amax if how == "max" else R.amin)(sv, -1)
    if keepdim:
        for d in sorted((d1, d2)):
            out = out.unsqueeze(d)
    return out


def matrix_norm(
    A: Tensor,
    ord: Any = "fro",
    dim: Any = (-2, -1),
    keepdim: bool = False,
    *,
    dtype: Any = None,
) -> Tensor:
    """A matrix norm of the matrices across ``dim`` (the last two by default).

    ``ord``: 'fro' (Frobenius), 'nuc' (sum of singular values), ``inf`` / ``-inf`` (max /
    min row sum of |A|), 1 / -1 (max / min column sum), 2 / -2 (largest / smallest
    singular value). Gradients follow from the ops these are made of (SVD ones:
    U diag(g) Vh of the singular values).
    """
    op = "linalg.matrix_norm"
    A = _norm_input(A, dtype, op)
    _matrices(A, op)
    d1, d2 = _two_dims(dim, A.ndim, op)
    if isinstance(ord, str):
        if ord == "fro":
            return R.norm(A, 2, (d1, d2), keepdim)
        if ord == "nuc":
            return _sv_reduce(_floating(A, op), d1, d2, keepdim, "sum")
        raise InvalidValue(f"{op}: Order {ord} not supported.")
    if (
        isinstance(ord, bool)
        or not isinstance(ord, int | float)
        or ord
        not in (
            1,
            -1,
            2,
            -2,
            math.inf,
            -math.inf,
        )
    ):
        raise InvalidValue(f"{op}: Order {ord} not supported.")
    if abs(ord) == 2:
        return _sv_reduce(_floating(A, op), d1, d2, keepdim, "max" if ord > 0 else "min")
    summed, picked = (d1, d2) if abs(ord) == 1 else (d2, d1)
    sums = R.sum(E.abs(A), summed, keepdim=True)
    if A.shape[picked] == 0:  # no columns / rows: 0 for the max, as torch; no min
        if ord < 0:
            raise _empty_min_norm(A, ord)
        out = R.sum(sums, picked, keepdim=True)
    else:
        out = (R.amax if ord > 0 else R.amin)(sums, picked, keepdim=True)
    if keepdim:
        return out
    return out.reshape(tuple(s for i, s in enumerate(A.shape) if i not in (d1, d2)))


def linalg_norm(
    A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """torch.linalg.norm: a vector norm (``dim`` an int, or ``A`` 1-D, or neither ``ord``
    nor ``dim`` given: of all elements) or a matrix norm (``dim`` a 2-tuple, or ``A`` 2-D
    with ``ord`` given, or ``ord`` a string)."""
    op = "linalg.norm"
    A = _tensor(A, op)
    if dim is not None:
        dims = (dim,) if not isinstance(dim, Sequence) else tuple(dim)
        if len(dims) not in (1, 2):
            raise InvalidValue(
                f"{op}: If dim is specified, it must be of length 1 or 2. Got {list(dims)}"
            )
    elif ord is not None:
        if A.ndim not in (1, 2):
            raise InvalidValue(
                f"{op}: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                f"{A.ndim}D."
            )
        dims = tuple(range(A.ndim))
    else:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if isinstance(ord, str):  # 'fro', 'nuc': matrix norms (of a 1-D input: an error)
        return matrix_norm(A, ord, dims if dim is not None else (-2, -1), keepdim, dtype=dtype)
    if len(dims) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


def matrix_power(A: Tensor, n: int) -> Tensor:
    """``A`` to the integer power ``n`` by repeated squaring: the identity for 0 (with a
    zero gradient), ``inv(A)^-n`` for negative n. Integer matrices take n >= 0."""
    op = "linalg.matrix_power"
    A = _square(_tensor(A, op), op)
    n = _int_arg(n, op, "n")
    if n == 0:
        xp = get_xp(A.array)
        eye = xp.broadcast_to(xp.eye(A.shape[-1], dtype=A.array.dtype), A.shape)
        keep = Tensor._wrap(xp.ones(A.shape, bool))
        return E.where(keep, Tensor._wrap(eye), A)  # the identity, in A's graph (0 grad)
    if n == 1:
        return A.clone()
    base = inv(A) if n < 0 else A
    n = abs(n)
    out = None
    while True:
        if n & 1:
            out = base if out is None else matmul(out, base)
        n >>= 1
        if not n:
            return out
        base = matmul(base, base)


def _chain_order(dims: list[int]) -> list[list[int]]:
    """The split table of the cheapest parenthesisation of a matrix chain whose i-th
    matrix is dims[i] x dims[i + 1] (dynamic programming over chain lengths)."""
    k = len(dims) - 1
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            best = None
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if best is None or c < best:
                    best, split[i][j] = c, s
            cost[i][j] = best
    return split


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """The product of a chain of matrices, multiplied in the cheapest order. The first
    may be a 1-D row vector and the last a 1-D column vector (their dims are dropped
    from the result); the others are 2-D."""
    op = "multi_dot()"
    ts = list(tensors)
    if len(ts) < 2:
        raise InvalidValue(f"{op}: expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        _tensor(t, op, f"tensor {i}")
    for i, t in enumerate(ts[1:], 1):
        if t.array.dtype != ts[0].array.dtype:
            raise InvalidType(
                f"{op}: all tensors must have the same dtype but tensor 0 is {_tname(ts[0])} "
                f"and tensor {i} is {_tname(t)}"
            )
    first, last = ts[0].ndim, ts[-1].ndim
    if first not in (1, 2):
        raise InvalidValue(f"{op}: the first tensor must be 1D or 2D but got {first}D")
    if last not in (1, 2):
        raise InvalidValue(f"{op}: the last tensor must be 1D or 2D but got {last}D")
    for i, t in enumerate(ts[1:-1], 1):
        if t.ndim != 2:
            raise InvalidValue(f"{op}: tensor {i} must be 2D but got {t.ndim}D")
    if len(ts) == 2:
        a, b = ts
        k = b.shape[0]
        if a.shape[-1] != k:
            raise InvalidValue(
                f"{op}: tensors 0 and 1 with shapes {list(a.shape)} and {list(b.shape)} "
                "cannot be multiplied"
            )
        return matmul(a, b)
    mats = list(ts)
    if first == 1:
        mats[0] = mats[0].unsqueeze(0)
    if last == 1:
        mats[-1] = mats[-1].unsqueeze(-1)
    for i in range(len(mats) - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise InvalidValue(
                f"{op}: tensors {i} and {i + 1} with shapes {list(ts[i].shape)} and "
                f"{list(ts[i + 1].shape)} cannot be multiplied"
            )
    split = _chain_order([mats[0].shape[0]] + [m.shape[1] for m in mats])

    def product(i: int, j: int) -> Tensor:
        if i == j:
            return mats[i]
        s = split[i][j]
        return matmul(product(i, s), product(s + 1, j))

    out = product(0, len(mats) - 1)
    if first == 1:
        out = out.squeeze(0)
    if last == 1:
        out = out.squeeze(-1)
    return out


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (size 3 in both); the other dims
    broadcast (both inputs need the same number of dims, as torch)."""
    op = "linalg.cross"
    a, b = _tensor(input, op, "input"), _tensor(other, op, "other")
    if a.ndim != b.ndim:
        raise InvalidValue(
            f"{op}: inputs must have the same number of dimensions, got shapes "
            f"{list(a.shape)} and {list(b.shape)}"
        )
    if a.array.dtype != b.array.dtype:
        raise InvalidType(
            f"{op}: expected both inputs of one dtype, got {_tname(a)} and {_tname(b)}"
        )
    d = S.norm_dim(dim, a.ndim, op)
    if a.ndim == 0 or a.shape[d] != 3 or b.shape[d] != 3:
        sa = a.shape[d] if a.ndim else 0
        sb = b.shape[d] if b.ndim else 0
        raise InvalidValue(
            f"{op}: inputs dimension {dim} must have length 3. Got {sa} and {sb} (shapes "
            f"{list(a.shape)} and {list(b.shape)})"
        )
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise InvalidValue(
            f"{op}: the shapes {list(a.shape)} and {list(b.shape)} do not broadcast"
        ) from None
    a0, a1, a2 = (S.select(a, d, i) for i in range(3))
    b0, b1, b2 = (S.select(b, d, i) for i in range(3))
    return S.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


@autocasts("linalg_vecdot")
def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """The dot product of ``x`` and ``y`` along ``dim`` (other dims broadcast)."""
    op = "linalg.vecdot"
    x, y = _floating(x, op, "x", half=True), _floating(y, op, "y", half=True)
    _same_dtype(op, x, y, "x", "y")
    try:
        shape = np.broadcast_shapes(tuple(x.shape), tuple(y.shape))
    except ValueError:
        raise InvalidValue(
            f"{op}: the shapes {list(x.shape)} and {list(y.shape)} do not broadcast"
        ) from None
    d = S.norm_dim(dim, len(shape), op)
    return R.sum(x * y, d - len(shape))


def linalg_diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonals of the matrices of ``A`` (torch.linalg.diagonal: the last two dims
    by default), a view."""
    return S.diagonal(_tensor(A, "linalg.diagonal"), offset, dim1, dim2)


def linalg_matmul(input: Tensor, other: Tensor) -> Tensor:
    """``matmul`` (torch.linalg.matmul is an alias)."""
    return matmul(input, other)


@autocasts("linalg_cond")
def cond(A: Tensor, p: Any = None) -> Tensor:
    """The condition number of each matrix in the norm ``p``: the ratio of the largest
    to the smallest singular value for None / 2 (-2: the inverse ratio), else
    ``matrix_norm(A, p) * matrix_norm(inv(A), p)`` (square invertible matrices)."""
    op = "linalg.cond"
    A = _matrices(_floating(A, op), op)
    if isinstance(p, str):
        _square(A, op)
    if A.shape[-1] == 0 or A.shape[-2] == 0:  # empty matrices: 0, for every p, as torch
        return _const(A, get_xp(A.array).zeros(A.shape[:-2], A.array.dtype))
    if p is None or p == 2 or p == -2:
        sv = svdvals(A)
        hi, lo = R.amax(sv, -1), R.amin(sv, -1)
        return hi / lo if p != -2 else lo / hi
    A = _square(A, op)
    try:
        return matrix_norm(A, p) * matrix_norm(inv(A), p)
    except LinAlgError:
        pass
    # some matrix is singular: inf for it, as torch (and NumPy), the others' numbers
    n = A.shape[-1]
    flat = A.reshape(-1, n, n)
    parts = []
    for k in range(flat.shape[0]):
        try:
            parts.append(matrix_norm(flat[k], p) * matrix_norm(inv(flat[k]), p))
        except LinAlgError:
            parts.append(_const(A, get_xp(A.array).asarray(np.inf)))
    return S.stack(parts).reshape(A.shape[:-2])


def vander(x: Tensor, N: int | None = None) -> Tensor:
    """torch.linalg.vander: the powers ``x^0, x^1, ..., x^(N-1)`` of each element of
    ``x`` (*, n) in the last dim, (*, n, N) (N defaults to n). Increasing powers, unlike
    ``dl.vander`` (numpy's order)."""
    op = "linalg.vander"
    x = _tensor(x, op, "x")
    if x.ndim == 0:
        raise InvalidValue(f"{op}: x must have at least 1 dimension, got a 0-d tensor")
    n = x.shape[-1] if N is None else _int_arg(N, op, "N")
    if n <= 1:
        raise InvalidValue(f"{op}: N must be greater than 1, got {n}")
    xp = get_xp(x.array)
    ones = _const(x, xp.ones((*x.shape, 1)))
    powers = R.cumprod(x.unsqueeze(-1).expand(*x.shape, n - 1), -1)
    return S.cat([ones, powers], -1)


@autocasts("linalg_tensorinv")
def tensorinv(A: Tensor, ind: int = 2) -> Tensor:
    """The inverse of ``A`` for :func:`tensordot` over ``ind`` dims: ``A`` read as a
    square matrix (prod(shape[:ind]), prod(shape[ind:])), inverted, and shaped
    ``shape[ind:] + shape[:ind]``."""
    op = "linalg.tensorinv"
    A = _floating(A, op)
    ind = _int_arg(ind, op, "ind")
    if ind <= 0:
        raise InvalidValue(f"{op}: Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = math.prod(A.shape[:ind]), math.prod(A.shape[ind:])
    if rows != cols:
        raise InvalidValue(
            f"{op}: Expected self to satisfy the requirement prod(self.shape[ind:]) == "
            f"prod(self.shape[:ind]), but got {cols} != {rows} (shape {list(A.shape)}, "
            f"ind={ind})"
        )
    out = LinalgInvEx.apply(A.reshape(rows, cols), op)
    return out.reshape(*A.shape[ind:], *A.shape[:ind])


@autocasts("linalg_tensorsolve")
def tensorsolve(A: Tensor, B: Tensor, dims: Any = None) -> Tensor:
    """X with ``tensordot(A, X, X.ndim) = B``: ``A``'s first ``B.ndim`` dims (after moving
    ``dims`` of A to the end) against the rest, solved as one square system."""
    op = "linalg.tensorsolve"
    A, B = _floating(A, op), _floating(B, op, "B")
    _same_dtype(op, A, B)
    if dims is not None:
        moved = S.norm_dims(dims, A.ndim, op)
        A = S.movedim(A, moved, tuple(range(A.ndim - len(moved), A.ndim)))
    rows, cols = math.prod(A.shape[: B.ndim]), math.prod(A.shape[B.ndim :])
    if rows != cols or tuple(A.shape[: B.ndim]) != tuple(B.shape):
        raise InvalidValue(
            f"{op}: Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
            f"prod(self.shape[:other.ndim]) with self.shape[:other.ndim] == other.shape, but "
            f"got A of shape {list(A.shape)} and B of shape {list(B.shape)}"
        )
    x = LinalgSolveEx.apply(A.reshape(rows, cols), B.reshape(rows, 1), op)
    return x.reshape(A.shape[B.ndim :])


# ------------------------------------------------------------------ torch's top-level names


def logdet(input: Tensor) -> Tensor:
    """log(det(A)): NaN where the determinant is negative, -inf where it is 0."""
    sign, logabs = LinalgSlogdet.apply(_square_float(input, "logdet"))
    return E.where(sign < 0, math.nan, logabs)


def slogdet(input: Tensor) -> Any:
    """``(sign, logabsdet)`` (torch.slogdet's named tuple)."""
    sign, logabs = LinalgSlogdet.apply(_square_float(input, "slogdet"))
    return slogdet_result(sign, logabs)


def inverse(input: Tensor) -> Tensor:
    """torch.inverse: :func:`inv`."""
    return inv(input)


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """A UserWarning the first time only (torch's TORCH_WARN_ONCE)."""
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=3)


@autocasts("cholesky")
def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """torch.cholesky (deprecated in torch, which warns once): L with A = L L^T, or U = L^T
    with A = U^T U for ``upper=True``."""
    _warn_once(
        "cholesky",
        "torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be removed "
        "in a future PyTorch release. L = torch.cholesky(A) should be replaced with "
        "L = torch.linalg.cholesky(A) and U = torch.cholesky(A, upper=True) should be "
        "replaced with U = torch.linalg.cholesky(A).mH",
    )
    return linalg_cholesky(input, upper=bool(upper), _op="cholesky")


@autocasts("qr")
def qr(input: Tensor, some: bool = True) -> Any:
    """torch.qr (deprecated in torch, which warns once): ``(Q, R)``, reduced
    (``some=True``) or complete."""
    _warn_once(
        "qr",
        "torch.qr is deprecated in favor of torch.linalg.qr and will be removed in a future "
        "PyTorch release. The boolean parameter 'some' has been replaced with a string "
        "parameter 'mode'. Q, R = torch.qr(A, some) should be replaced with Q, R = "
        "torch.linalg.qr(A, 'reduced' if some else 'complete')",
    )
    Q, Rm = linalg_qr(input, "reduced" if some else "complete")
    return qr_result(Q, Rm)


@_torch_node_name
class Geqrf(Function):
    """LAPACK's geqrf: R on and above the diagonal, the Householder vectors below it, and
    their scales tau. No derivative, as torch (backward raises its error). Tensor
    interface (see the module)."""

    _arrays = False

    @staticmethod
    def forward(ctx, A):
        a = A.array
        xp = get_xp(a)
        m, n = a.shape[-2:]
        if a.size == 0:  # (LAPACK wants m, n >= 1: nothing to factor)
            h, tau = a.copy(), xp.zeros((*a.shape[:-2], min(m, n)), a.dtype)
        elif a.ndim == 2 or xp is np:
            h, tau = xp.linalg.qr(a, mode="raw")  # h is the factored matrix transposed
            h = xp.swapaxes(h, -1, -2)
        else:  # (CuPy's raw mode takes one matrix at a time)
            flat = a.reshape(-1, m, n)
            hs, taus = zip(*(xp.linalg.qr(x, mode="raw") for x in flat), strict=True)
            h = xp.swapaxes(xp.stack(hs), -1, -2).reshape(a.shape)
            tau = xp.stack(taus).reshape(*a.shape[:-2], -1)
        h = xp.ascontiguousarray(h).astype(a.dtype, copy=False)
        return Tensor._wrap(h), Tensor._wrap(tau.astype(a.dtype, copy=False))

    @staticmethod
    def backward(ctx, ga, gtau):
        raise NotImplementedError("the derivative for 'geqrf' is not implemented.")


@autocasts("geqrf")
def geqrf(input: Tensor) -> Any:
    """torch.geqrf: ``(a, tau)``, the QR factorisation in LAPACK's compact form (for
    :func:`householder_product` and ormqr): R in ``a``'s upper triangle, the reflectors'
    vectors below its diagonal (their 1 implied), their scales in ``tau`` (*, min(m, n))."""
    op = "torch.geqrf"
    A = _matrices(_floating(input, op), op)
    a, tau = Geqrf.apply(A)
    return geqrf_result(a, tau)


@autocasts("svd")
def svd(input: Tensor, some: bool = True, compute_uv: bool = True) -> Any:
    """torch.svd: ``(U, S, V)`` with ``A = U diag(S) V^T`` (V, not Vh); ``some=False``
    gives full U and V. With ``compute_uv=False`` U and V are zero matrices (m, m) and
    (n, n), as torch's."""
    op = "svd"
    A = _matrices(_floating(input, op), op)
    if not compute_uv:
        xp = get_xp(A.array)
        m, n = A.shape[-2:]
        batch = tuple(A.shape[:-2])
        zeros_u = Tensor._wrap(xp.zeros((*batch, m, m), A.array.dtype))
        zeros_v = Tensor._wrap(xp.zeros((*batch, n, n), A.array.dtype))
        return svd_result(zeros_u, svdvals(A), zeros_v)
    U, Sv, Vh = LinalgSvd.apply(A, not some)
    return svd_result(U, Sv, Vh.mT)


@autocasts("pinverse")
def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse: :func:`pinv` with singular values below ``rcond * s_max`` cut."""
    return pinv(input, atol=0.0, rtol=rcond)


@autocasts("cholesky_solve")
def cholesky_solve(input: Tensor, input2: Tensor, upper: bool = False) -> Tensor:
    """X with ``A X = B`` given B (``input``, (*, n, k)) and the Cholesky factor of A
    (``input2``: L with A = L L^T, or U with A = U^T U for ``upper=True``; only its
    triangle is read); batch dims broadcast. Differentiable in both, with torch's
    gradient for the factor (see :class:`CholeskySolve`)."""
    op = "cholesky_solve"
    B = _floating(input, op, "B")
    L = _square_float(input2, op, "A")
    _same_dtype(op, B, L, "B", "A")
    if B.ndim < 2:
        raise InvalidValue(
            f"b should have at least 2 dimensions, but has {B.ndim} dimensions instead "
            f"(shape {list(B.shape)})"
        )
    n = L.shape[-1]
    if B.shape[-2] != n:
        raise InvalidValue(
            f"Incompatible matrix sizes for cholesky_solve: each A matrix is {n} by {n} but "
            f"each b matrix is {B.shape[-2]} by {B.shape[-1]}"
        )
    _batch(op, L, B, "A", "B")
    return CholeskySolve.apply(B, L, bool(upper))


@autocasts("cholesky_inverse")
def cholesky_inverse(input: Tensor, upper: bool = False) -> Tensor:
    """The inverse of A = L L^T (or U^T U for ``upper=True``) from its Cholesky factor:
    :func:`cholesky_solve` of the identity."""
    op = "cholesky_inverse"
    L = _square_float(input, op)
    return CholeskySolve.apply(_eye(L, L.shape[-1]), L, bool(upper))


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """torch.cross: :func:`linalg_cross` along ``dim``; without ``dim``, along the first
    dim of ``input`` of size 3, with torch 2.13's deprecation warning (once)."""
    if dim is None:
        x = _tensor(input, "cross", "input")
        _warn_once(
            "cross",
            "Using torch.cross without specifying the dim arg is deprecated.\nPlease either "
            "pass the dim explicitly or simply use torch.linalg.cross.\nThe default value of "
            "dim will change to agree with that of linalg.cross in a future release.",
        )
        found = [i for i, s in enumerate(x.shape) if s == 3]
        if not found:
            raise InvalidValue(f"no dimension of size 3 in input (shape {list(x.shape)})")
        dim = found[0]
    return linalg_cross(input, other, dim=dim)


# ------------------------------------------------------------------ LU, matrix_exp, *_ex

linalg_lu_factor_result = namedtuple("linalg_lu_factor", ["LU", "pivots"])
linalg_lu_factor_ex_result = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
linalg_lu_result = namedtuple("linalg_lu", ["P", "L", "U"])
lu_unpack_result = namedtuple("lu_unpack", ["P", "L", "U"])
linalg_solve_ex_result = namedtuple("linalg_solve_ex", ["result", "info"])
linalg_inv_ex_result = namedtuple("linalg_inv_ex", ["inverse", "info"])
linalg_cholesky_ex_result = namedtuple("linalg_cholesky_ex", ["L", "info"])
triangular_solve_result = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])

_LU_BLOCK = 32  # columns factored one by one (a panel); the trailing matrix updated by a GEMM


def _lu_panel(a: Any, piv: Any, s: int, e: int, pivot: bool) -> None:
    """Unblocked LU with partial pivoting of columns s:e of ``a`` (B, m, n) in place, rows
    s: of the panel; rows are swapped across all n columns. ``piv`` (B, k): 0-based."""
    xp = get_xp(a)
    if xp is np and a.shape[0] == 1:
        _lu_panel_one(a[0], piv[0], s, e, pivot)
        return
    bidx = xp.arange(a.shape[0])
    m = a.shape[-2]
    for j in range(s, e):
        if pivot:
            p = j + xp.argmax(xp.abs(a[:, j:, j]), axis=-1)
            piv[:, j] = p
            row_j = a[:, j, :].copy()
            a[:, j, :] = a[bidx, p, :]
            a[bidx, p, :] = row_j
        else:
            piv[:, j] = j
        if j + 1 >= m:
            continue
        d = a[:, j, j]
        # a zero pivot (its column below is zero too, with pivoting) is left unscaled, as
        # LAPACK's getf2, which reports it in info
        scale = xp.where(d == 0, 1, d)
        a[:, j + 1 :, j] /= scale[:, None]
        if j + 1 < e:
            a[:, j + 1 :, j + 1 : e] -= a[:, j + 1 :, j : j + 1] * a[:, j : j + 1, j + 1 : e]


def _lu_panel_one(a: np.ndarray, piv: np.ndarray, s: int, e: int, pivot: bool) -> None:
    """:func:`_lu_panel` of one matrix (m, n) on NumPy: plain slices, the pivot read as a
    Python number, a swap of two rows, no batch indices, where the batched loop indexes
    across the batch axis (fancy indexing, ~10 NumPy calls per column). lu_factor of a
    (256, 256) float32 matrix: 6.7 ms that way, 5.2 ms this one, torch 0.5 ms (thread
    CPU time, one thread; bench/slow_ops.py's (f) rows): the column loop's Python calls
    remain what it costs."""
    m = a.shape[0]
    for j in range(s, e):
        p = j + int(np.argmax(np.abs(a[j:, j]))) if pivot else j
        piv[j] = p
        if p != j:
            a[[j, p]] = a[[p, j]]
        if j + 1 >= m:
            continue
        d = a[j, j]
        if d != 0:  # a zero pivot is left unscaled, as LAPACK's getf2 (reported in info)
            a[j + 1 :, j] /= d
        if j + 1 < e:
            a[j + 1 :, j + 1 : e] -= np.multiply.outer(a[j + 1 :, j], a[j, j + 1 : e])


def _lu_factor(a: Any, pivot: bool = True) -> tuple[Any, Any, Any]:
    """Blocked right-looking LU with partial pivoting (as LAPACK's getrf) of ``a``
    (*, m, n), over the whole batch at once: (LU (*, m, n), 1-based int32 pivots (*, k),
    int32 info (*,): the 1-based index of the first zero on U's diagonal, or 0)."""
    xp = get_xp(a)
    batch, (m, n) = tuple(a.shape[:-2]), a.shape[-2:]
    k = builtins.min(m, n)
    lu = xp.array(a.reshape((math.prod(batch), m, n)), copy=True)
    piv = xp.zeros((lu.shape[0], k), np.int64)
    with np.errstate(all="ignore"):
        for s in range(0, k, _LU_BLOCK):
            e = builtins.min(s + _LU_BLOCK, k)
            _lu_panel(lu, piv, s, e, pivot)
            if e < n:
                # U12 = L11^-1 A12, then A22 -= L21 U12
                l11 = xp.tril(lu[:, s:e, s:e], -1) + _eye_like(lu, e - s)
                u12 = _tri_solve(l11, lu[:, s:e, e:], False)
                lu[:, s:e, e:] = u12
                if e < m:
                    lu[:, e:, e:] -= xp.matmul(lu[:, e:, s:e], u12)
    diag = xp.diagonal(lu, axis1=-2, axis2=-1)[..., :k]
    zero = diag == 0
    first = xp.argmax(zero, axis=-1) + 1 if k else xp.zeros(lu.shape[0], np.int64)
    info = xp.where(zero.any(axis=-1), first, 0) if k else first
    return (
        lu.reshape(a.shape),
        (piv + 1).astype(np.int32).reshape((*batch, k)),
        info.astype(np.int32).reshape(batch),
    )


def _permutation(piv: Any, m: int, dtype: Any) -> Any:
    """P (*, m, m) with A = P L U from 1-based LAPACK pivots (*, k): the row swaps
    j <-> piv[j] - 1 applied in turn to 0..m-1 give perm, and P[perm[i], i] = 1."""
    xp = get_xp(piv)
    batch, k = tuple(piv.shape[:-1]), piv.shape[-1]
    p = piv.reshape((math.prod(batch), k)).astype(np.int64) - 1
    nb = p.shape[0]
    perm = xp.broadcast_to(xp.arange(m), (nb, m)).copy()
    bidx = xp.arange(nb)
    for j in range(k):
        pj = p[:, j]
        tmp = perm[:, j].copy()
        perm[:, j] = perm[bidx, pj]
        perm[bidx, pj] = tmp
    out = xp.zeros((nb, m, m), dtype)
    out[bidx[:, None], perm, xp.arange(m)[None, :]] = 1
    return out.reshape((*batch, m, m))


def _unpack_lu(LU: Tensor) -> tuple[Tensor, Tensor]:
    """L (unit lower, (*, m, k)) and U (upper, (*, k, n)) from packed LU, differentiable."""
    m, n = LU.shape[-2:]
    k = builtins.min(m, n)
    xp = get_xp(LU.array)
    eye = _const(LU, xp.eye(m, k))
    L = S.tril(S.narrow(LU, -1, 0, k), -1) + eye
    U = S.triu(S.narrow(LU, -2, 0, k))
    return L, U


def _lu_grad(
    P: Tensor, L: Tensor, U: Tensor, gl: Tensor | None, gu: Tensor | None
) -> Tensor | None:
    """Gradient of A = P L U (full rank) from those of L and U, in differentiable ops.
    Square: P L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T. Wide (m < n, A = P L [U1 U2]):
    gL - L^-T gU2 U2^T into the square formula for U1, and P L^-T gU2 for A2. Tall (m > n,
    L = [L1; L2]): gU - L2^T gL2 U^-T into the square formula for L1, gL2 U^-T for A2."""
    if gl is None and gu is None:
        return None
    m, n = L.shape[-2], U.shape[-1]
    k = builtins.min(m, n)
    xp = get_xp(L.array)

    def zeros(shape: tuple) -> Tensor:
        return _const(L, xp.zeros(shape))

    if gl is None:
        gl = zeros(tuple(L.shape))
    if gu is None:
        gu = zeros(tuple(U.shape))

    def square(l1: Tensor, u1: Tensor, g1: Tensor, g2: Tensor) -> Tensor:
        # L^-T M U^-T, M = tril(L^T gL, -1) + triu(gU U^T)
        mm = S.tril(l1.mT @ g1, -1) + S.triu(g2 @ u1.mT)
        x = LinalgSolveTriangular.apply(l1.mT, mm, True, True)  # L^-T M
        return LinalgSolveTriangular.apply(u1, x.mT, True, False).mT  # (.) U^-T

    if m == n:
        return P @ square(L, U, gl, gu)
    if m < n:
        u1, u2 = S.narrow(U, -1, 0, k), S.narrow(U, -1, k, n - k)
        gu1, gu2 = S.narrow(gu, -1, 0, k), S.narrow(gu, -1, k, n - k)
        y = LinalgSolveTriangular.apply(L.mT, gu2, True, True)  # L^-T gU2
        g1 = square(L, u1, gl - y @ u2.mT, gu1)
        return P @ S.cat([g1, y], -1)
    l1, l2 = S.narrow(L, -2, 0, k), S.narrow(L, -2, k, m - k)
    gl1, gl2 = S.narrow(gl, -2, 0, k), S.narrow(gl, -2, k, m - k)
    z = LinalgSolveTriangular.apply(U, gl2.mT, True, False).mT  # gL2 U^-T
    g1 = square(l1, U, gl1, gu - l2.mT @ z)
    return P @ S.cat([g1, z], -2)


@_torch_node_name
class LinalgLuFactorEx(Function):
    """(LU, pivots, info) of A (*, m, n) by :func:`_lu_factor`. Gradient (full-rank A), of
    LU as L - I + U: see :func:`_lu_grad`. Tensor interface (see the module)."""

    _arrays = False

    @staticmethod
    def forward(ctx, A, pivot):
        lu, piv, info = _lu_factor(A.array, pivot)
        LU, Piv, Info = Tensor._wrap(lu), Tensor._wrap(piv), Tensor._wrap(info)
        ctx.save_for_backward(LU, Piv)
        ctx.mark_non_differentiable(Piv, Info)
        ctx.set_materialize_grads(False)
        return LU, Piv, Info

    @staticmethod
    def backward(ctx, g_lu, g_piv, g_info):
        if g_lu is None:
            return None, None
        LU, Piv = ctx.saved_tensors
        L, U = _unpack_lu(LU)
        m, n = LU.shape[-2:]
        k = builtins.min(m, n)
        P = _const(LU, _permutation(Piv.array, m, LU.array.dtype))
        gl = S.tril(S.narrow(g_lu, -1, 0, k), -1)
        gu = S.triu(S.narrow(g_lu, -2, 0, k))
        return _lu_grad(P, L, U, gl, gu), None


@_torch_node_name
class LinalgLu(Function):
    """(P, L, U) with A = P L U, L (*, m, k) unit lower, U (*, k, n) upper, k = min(m, n)
    (P empty for ``pivot=False``). Gradient (full-rank A): :func:`_lu_grad`."""

    _arrays = False

    @staticmethod
    def forward(ctx, A, pivot):
        lu, piv, _ = _lu_factor(A.array, pivot)
        xp = get_xp(lu)
        m, n = lu.shape[-2:]
        k = builtins.min(m, n)
        lower = xp.tril(lu[..., :, :k], -1) + xp.eye(m, k, dtype=lu.dtype)
        upper = xp.triu(lu[..., :k, :])
        perm = _permutation(piv, m, lu.dtype)
        P = Tensor._wrap(perm if pivot else xp.zeros((0,), lu.dtype))
        L, U = Tensor._wrap(lower), Tensor._wrap(upper)
        ctx.perm = perm
        ctx.save_for_backward(L, U)
        ctx.mark_non_differentiable(P)
        ctx.set_materialize_grads(False)
        return P, L, U

    @staticmethod
    def backward(ctx, g_p, g_l, g_u):
        L, U = ctx.saved_tensors
        return _lu_grad(_const(L, ctx.perm), L, U, g_l, g_u), None


def _lu_input(A: Any, op: str) -> Tensor:
    A = _tensor(A, op)
    if A.ndim < 2:
        raise InvalidValue(
            f"{op}: Expected tensor with 2 or more dimensions. Got size: {list(A.shape)} instead"
        )
    return _floating(A, op)


def _lu_zero_pivot(info: Any, op: str) -> None:
    """torch's error for a zero on U's diagonal (lu_factor, lu_factor_ex's check_errors)."""
    host = to_numpy(info).reshape(-1)
    bad = np.flatnonzero(host)
    if bad.size == 0:
        return
    i = int(bad[0])
    k = int(host[i])
    where = _prefix(i, tuple(info.shape))
    raise LinAlgError(
        f"{op}: {where}U[{k},{k}] is zero and using it on lu_solve would result in a division "
        "by zero. If you still want to perform the factorization, consider calling "
        "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)"
    )


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False) -> Any:
    """``(LU, pivots, info)``: the LU factorization with partial pivoting of ``A`` (*, m, n)
    packed as LAPACK's getrf (L's unit diagonal implicit), pivots (*, min(m, n)) 1-based
    int32 (row i was swapped with row pivots[i] - 1 in turn), info (*,) int32: the 1-based
    index of the first zero on U's diagonal, or 0. A singular matrix is no error unless
    ``check_errors``. ``pivot=False`` factors without pivoting (torch does so on CUDA
    only). Differentiable in A for full-rank matrices."""
    op = "torch.linalg.lu_factor_ex"
    A = _lu_input(A, op)
    LU, piv, info = LinalgLuFactorEx.apply(A, bool(pivot))
    if check_errors:
        _lu_zero_pivot(info.array, op)
    return linalg_lu_factor_ex_result(LU, piv, info)


def lu_factor(A: Tensor, *, pivot: bool = True) -> Any:
    """``(LU, pivots)`` as :func:`lu_factor_ex`; a zero on U's diagonal raises
    :class:`LinAlgError` naming it (as torch: use lu_factor_ex or lu for singular ones)."""
    op = "torch.linalg.lu_factor"
    A = _lu_input(A, op)
    LU, piv, info = LinalgLuFactorEx.apply(A, bool(pivot))
    _lu_zero_pivot(info.array, op)
    return linalg_lu_factor_result(LU, piv)


def linalg_lu(A: Tensor, *, pivot: bool = True) -> Any:
    """torch.linalg.lu: ``(P, L, U)`` with ``A = P L U``: P (*, m, m) a permutation, L
    (*, m, k) unit lower triangular, U (*, k, n) upper, k = min(m, n); singular matrices
    are factored too. ``pivot=False``: no pivoting, P empty. Differentiable in A where it
    has full rank."""
    op = "linalg.lu"
    A = _lu_input(A, op)
    return linalg_lu_result(*LinalgLu.apply(A, bool(pivot)))


def _pivots_arg(LU: Tensor, pivots: Any, op: str) -> Tensor:
    pivots = _tensor(pivots, op, "pivots")
    if pivots.array.dtype != np.int32:
        raise InvalidType(
            f"{op}: pivots should be a Tensor of scalar type torch.int32, got {_tname(pivots)}"
        )
    return pivots


def lu_unpack(
    LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots: bool = True
) -> Any:
    """``(P, L, U)`` from :func:`lu_factor`'s output (``P @ L @ U`` is A); with
    ``unpack_data=False`` L and U, with ``unpack_pivots=False`` P, are empty tensors.
    Differentiable in LU_data."""
    op = "torch.lu_unpack"
    LU = _matrices(_floating(LU_data, op, "LU_data"), op, "LU_data")
    piv = _tensor(LU_pivots, op, "LU_pivots")
    if piv.array.dtype != np.int32:
        raise InvalidType(
            f"{op}: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype, got "
            f"{_tname(piv)}"
        )
    m, n = LU.shape[-2:]
    k = builtins.min(m, n)
    if tuple(piv.shape) != (*LU.shape[:-2], k):
        raise InvalidValue(
            f"{op}: Expected LU_pivots of shape {[*LU.shape[:-2], k]} for LU_data of shape "
            f"{list(LU.shape)}, got {list(piv.shape)}"
        )
    xp = get_xp(LU.array)
    if unpack_pivots and piv.array.size and bool(((piv.array < 1) | (piv.array > m)).any()):
        raise OutOfRange(
            f"{op}: pivots passed to lu_unpack must be between 1 and LU.size(-2) = {m} "
            f"inclusive (LAPACK's 1-based rows), got {to_numpy(piv.array).reshape(-1).tolist()}"
        )
    empty = Tensor._wrap(xp.zeros((0,), LU.array.dtype))
    L, U = _unpack_lu(LU) if unpack_data else (empty, empty)
    P = Tensor._wrap(_permutation(piv.array, m, LU.array.dtype)) if unpack_pivots else empty
    return lu_unpack_result(P, L, U)


def linalg_lu_solve(
    LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False
) -> Tensor:
    """X with ``A X = B`` from A's :func:`lu_factor` (``adjoint``: ``A^T X = B``;
    ``left=False``: ``X A = B`` / ``X A^T = B``). LU (*, n, n) with pivots (*, n) of its
    batch shape; B (*, n, k) ((*, k, n) for left=False), batch dims broadcast with LU's.
    Two triangular solves and a permutation, so differentiable in LU and B (second
    derivatives too)."""
    op = "linalg.lu_solve"
    LU = _floating(LU, op, "LU")
    _square(LU, "torch." + op, "A")
    piv = _pivots_arg(LU, pivots, op)
    B = _floating(B, op, "B")
    _same_dtype(op, LU, B, "LU", "B")
    n = LU.shape[-1]
    if tuple(piv.shape) != tuple(LU.shape[:-1]):
        if piv.ndim >= 1 and piv.shape[-1] != n:
            raise InvalidValue(
                f"{op}: Number of pivots per batch should be same as the dimension of the matrix"
            )
        raise InvalidValue(
            f"{op}: Expected LU.shape[:-1] and pivots.shape to be the same, but got pivots "
            f"with shape {list(piv.shape)} instead"
        )
    if B.ndim < 2:
        raise InvalidValue(f"{op}: The input tensor B must have at least 2 dimensions.")
    rows = B.shape[-2] if left else B.shape[-1]
    if rows != n:
        eq = "AX = B" if left else "XA = B"
        raise InvalidValue(
            f"{op}: Incompatible shapes of A and B for the equation {eq} ({n}x{n} and "
            f"{B.shape[-2]}x{B.shape[-1]})"
        )
    _batch(op, LU, B, "LU", "B")
    P = _const(LU, _permutation(piv.array, n, LU.array.dtype))
    # X A = B <=> A^T X^T = B^T: the other of (adjoint or not) on B^T
    rhs, trans = (B, bool(adjoint)) if left else (B.mT, not adjoint)
    if not trans:  # A = P L U: X = U^-1 L^-1 P^T B
        y = LinalgSolveTriangular.apply(LU, P.mT @ rhs, False, True)
        x = LinalgSolveTriangular.apply(LU, y, True, False)
    else:  # A^T = U^T L^T P^T: X = P L^-T U^-T B
        y = LinalgSolveTriangular.apply(LU.mT, rhs, False, False)
        x = P @ LinalgSolveTriangular.apply(LU.mT, y, True, True)
    return x if left else x.mT


# matrix exponential: Higham (2005), "The scaling and squaring method for the matrix
# exponential revisited": the [13/13] Pade approximant on A / 2^s, squared s times, with s
# the least for which ||A / 2^s||_1 <= theta_13
_THETA13 = 5.371920351148152


def _pade13() -> list[float]:
    """The coefficients c_j = (26 - j)! 13! / (26! j! (13 - j)!) of the [13/13] Pade
    approximant's numerator p(x) = sum c_j x^j (its denominator is p(-x))."""
    f = math.factorial
    return [f(26 - j) * f(13) / (f(26) * f(j) * f(13 - j)) for j in range(14)]


_PADE13 = _pade13()


def _expm(a: Any) -> Any:
    """exp of each square matrix of ``a`` (*, n, n), batched; each matrix gets its own
    number of squarings (the others wait, masked)."""
    xp = get_xp(a)
    n = a.shape[-1]
    if a.size == 0:
        return a.copy()
    batch = a.shape[:-2]
    x = a.reshape((math.prod(batch), n, n))
    with np.errstate(all="ignore"):
        norm = xp.abs(x).sum(axis=-2).max(axis=-1)  # the 1-norm
        ratio = norm / _THETA13
        s = xp.where(
            xp.isfinite(ratio) & (ratio > 1), xp.ceil(xp.log2(xp.where(ratio > 1, ratio, 1))), 0
        ).astype(np.int64)
        x = x * xp.exp2(-s.astype(x.dtype))[:, None, None]
        c = [x.dtype.type(v) for v in _PADE13]
        eye = _eye_like(x, n)
        x2 = xp.matmul(x, x)
        x4 = xp.matmul(x2, x2)
        x6 = xp.matmul(x4, x2)
        u = xp.matmul(x6, c[13] * x6 + c[11] * x4 + c[9] * x2)
        u = xp.matmul(x, u + c[7] * x6 + c[5] * x4 + c[3] * x2 + c[1] * eye)
        v = xp.matmul(x6, c[12] * x6 + c[10] * x4 + c[8] * x2)
        v = v + c[6] * x6 + c[4] * x4 + c[2] * x2 + c[0] * eye
        if not bool(xp.isfinite(x).all()):
            r = xp.full_like(x, np.nan)
            ok = xp.isfinite(x).all(axis=(-2, -1))
            if bool(ok.any()):
                r[ok] = xp.linalg.solve(v[ok] - u[ok], v[ok] + u[ok])
        else:
            r = xp.linalg.solve(v - u, v + u)
        top = int(s.max()) if s.size else 0
        for t in range(top):
            sq = xp.matmul(r, r)
            r = xp.where((s > t)[:, None, None], sq, r)
    return r.reshape((*batch, n, n)).astype(a.dtype, copy=False)


def _expm_block(at: Any, g: Any) -> Any:
    """The gradient of exp at A along g: the top-right block of exp([[A^T, g], [0, A^T]])
    (Mathias 1996) for arrays."""
    xp = get_xp(at)
    n = at.shape[-1]
    zero = xp.zeros_like(at)
    big = xp.concatenate(
        [xp.concatenate([at, g], axis=-1), xp.concatenate([zero, at], axis=-1)], axis=-2
    )
    return _expm(big)[..., :n, n:]


class LinalgMatrixExp(Function):
    """exp(A) by scaling and squaring with the [13/13] Pade approximant (Higham 2005).
    Gradient: the top-right block of exp([[A^T, g], [0, A^T]]); under create_graph the
    same block from this op on a matrix built of differentiable ops, so that derivatives
    of any order follow."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _expm(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return _expm_block(_swap(a), g)

    @staticmethod
    def backward_graph(ctx, g):
        (a,) = ctx.saved_tensors
        at = ctx.lift(a, 0).mT
        n = a.shape[-1]
        zero = _const(g, get_xp(a).zeros(a.shape))
        big = S.cat([S.cat([at, g], -1), S.cat([zero, at], -1)], -2)
        return S.narrow(S.narrow(LinalgMatrixExp.apply(big), -2, 0, n), -1, n, n)


def matrix_exp(A: Tensor) -> Tensor:
    """The matrix exponential of each square matrix of ``A`` (*, n, n), float32 or
    float64: scaling and squaring with the [13/13] Pade approximant (Higham 2005).
    Differentiable (to any order)."""
    op = "linalg.matrix_exp"
    A = _tensor(A, op)
    if A.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: Expected a floating point or complex tensor as input. Got {_tname(A)}"
        )
    A = _square_float(A, op)
    return LinalgMatrixExp.apply(A)


@autocasts("linalg_householder_product")
def householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first n columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T, v_i the i-th column
    of ``A`` (*, m, n) below the diagonal with a 1 on it (LAPACK's orgqr; ``A`` as geqrf
    leaves it). tau (*, k), k <= n <= m. Applied one reflector at a time (right to left)
    in differentiable ops, so gradients of any order follow."""
    op = "torch.linalg.householder_product"
    A = _matrices(_floating(A, op, "input"), op, "input")
    tau = _tensor(tau, op, "tau")
    if tau.array.dtype != A.array.dtype:
        raise InvalidType(f"{op}: tau dtype {_tname(tau)} does not match input dtype {_tname(A)}")
    m, n = A.shape[-2:]
    if m < n:
        raise InvalidValue(
            f"{op}: input.shape[-2] must be greater than or equal to input.shape[-1]"
        )
    if tau.ndim < 1 or tau.shape[-1] > n:
        raise InvalidValue(f"{op}: input.shape[-1] must be greater than or equal to tau.shape[-1]")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise InvalidValue(
            f"{op}: Expected batch dimensions of tau to be equal to input.shape[:-2], but got "
            f"{list(tau.shape[:-1])}"
        )
    k = tau.shape[-1]
    xp = get_xp(A.array)
    V = S.tril(A, -1) + _const(A, xp.eye(m, n))
    X = _const(A, xp.broadcast_to(xp.eye(m, n), A.shape).copy())
    if k == 0:  # no reflector: the identity, in the inputs' graph with zero gradients
        return E.ZeroGradient.apply(A, X, tau)
    for i in range(k - 1, -1, -1):
        v = S.narrow(V, -1, i, 1)  # (*, m, 1)
        t = S.narrow(tau, -1, i, 1).unsqueeze(-1)  # (*, 1, 1)
        X = X - (t * v) @ (v.mT @ X)
    return X


# ------------------------------------------------------------------ *_ex and deprecated names


def _info_of(a: Any) -> Any:
    return _lu_factor(a)[2]


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False) -> Any:
    """``(result, info)``: :func:`solve` with LAPACK's info (int32, A's broadcast batch
    shape; > 0 for a singular matrix, whose result is then inf/NaN) instead of an error,
    unless ``check_errors``."""
    op = "torch.linalg.solve_ex"
    A, Bm, vector = _solve_operands(A, B, op, left)
    batch = _batch(op, A, Bm)
    info = _info_of(_expand(A.array, batch))
    if bool((info == 0).all()):
        X = solve(A, B, left=left)
    elif check_errors:
        raise _singular(A.array, op, True)
    else:  # (singular ones: the LU solve's inf / NaN, as torch's)
        LU, piv, _ = LinalgLuFactorEx.apply(A.expand(*batch, *A.shape[-2:]), True)
        if vector:  # (x^T A = b^T for left=False: A^T x = b)
            X = linalg_lu_solve(LU, piv, Bm, adjoint=not left).squeeze(-1)
        else:
            X = linalg_lu_solve(LU, piv, Bm, left=left)
    return linalg_solve_ex_result(X, Tensor._wrap(info))


def inv_ex(A: Tensor, *, check_errors: bool = False) -> Any:
    """``(inverse, info)``: :func:`inv` with LAPACK's info (int32 of the batch shape; > 0
    for a singular matrix, whose inverse is then inf/NaN) instead of an error, unless
    ``check_errors``."""
    op = "linalg.inv_ex"
    A = _square_float(A, op)
    info = _info_of(A.array)
    if bool((info == 0).all()):
        X = inv(A)
    elif check_errors:
        raise _singular(A.array, op, False)
    else:
        LU, piv, _ = LinalgLuFactorEx.apply(A, True)
        X = linalg_lu_solve(LU, piv, _eye(A, A.shape[-1]))
    return linalg_inv_ex_result(X, Tensor._wrap(info))


def _cholesky_info(a: Any) -> tuple[Any, Any]:
    """Cholesky of the lower triangle of each matrix of ``a``, column by column over the
    batch, stopping at each matrix's first non-positive pivot as LAPACK's potf2: (the
    lower triangle as potf2 leaves it, int32 info: that pivot's 1-based order, or 0)."""
    xp = get_xp(a)
    n = a.shape[-1]
    batch = a.shape[:-2]
    low = xp.tril(a.reshape((math.prod(batch), n, n)))
    info = xp.zeros(low.shape[0], np.int64)
    with np.errstate(all="ignore"):
        for j in range(n):
            live = info == 0
            d = low[:, j, j] - (low[:, j, :j] * low[:, j, :j]).sum(axis=-1)
            bad = live & ~(d > 0)
            info = xp.where(bad, j + 1, info)
            live = info == 0
            r = xp.sqrt(xp.where(live, d, 1))
            col = low[:, j + 1 :, j] - xp.matmul(low[:, j + 1 :, :j], low[:, j, :j, None])[..., 0]
            col = col / r[:, None]
            low[:, j, j] = xp.where(live, r, xp.where(bad, d, low[:, j, j]))
            low[:, j + 1 :, j] = xp.where(live[:, None], col, low[:, j + 1 :, j])
    return low.reshape(a.shape), info.astype(np.int32).reshape(batch)


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False) -> Any:
    """``(L, info)``: :func:`linalg_cholesky` with LAPACK's info (int32 of the batch
    shape: the order of the first leading minor that is not positive-definite, or 0)
    instead of an error, unless ``check_errors``. Where some matrix fails, L is the
    partial factor potf2 leaves (values only: no gradient then)."""
    op = "linalg.cholesky_ex"
    A = _square_float(A, op)
    low, info = _cholesky_info(_swap(A.array) if upper else A.array)
    if bool((info == 0).all()):
        L = linalg_cholesky(A, upper=bool(upper), _op=op)
    elif check_errors:
        _cholesky(A.array, op)  # raises, naming the matrix and the minor
        L = None
    else:
        L = Tensor._wrap(_swap(low).copy() if upper else low)
    return linalg_cholesky_ex_result(L, Tensor._wrap(info))


@autocasts("triangular_solve")
def triangular_solve(
    input: Tensor,
    A: Tensor,
    upper: bool = True,
    transpose: bool = False,
    unitriangular: bool = False,
) -> Any:
    """torch.triangular_solve (deprecated in torch, which warns once): ``(solution,
    cloned_coefficient)`` with ``T X = b`` (``T^T X = b`` for ``transpose``), T the upper
    or lower triangle of ``A``; cloned_coefficient is A (broadcast to the batch shape)."""
    _warn_once(
        "triangular_solve",
        "torch.triangular_solve is deprecated in favor of torch.linalg.solve_triangular"
        "and will be removed in a future PyTorch release.\ntorch.linalg.solve_triangular "
        "has its arguments reversed and does not return a copy of one of the inputs.\nX = "
        "torch.triangular_solve(B, A).solution\nshould be replaced with\nX = "
        "torch.linalg.solve_triangular(A, B).",
    )
    op = "triangular_solve"
    b = _floating(input, op, "b")
    A = _square_float(A, op)
    _same_dtype(op, b, A, "b", "A")
    if b.ndim < 2:
        raise InvalidValue(
            f"{op}: b should have at least 2 dimensions, but has {b.ndim} dimensions instead"
        )
    n = A.shape[-1]
    if b.shape[-2] != n:
        raise InvalidValue(
            f"{op}: Incompatible matrix sizes for triangular_solve: each A matrix is {n} by "
            f"{n} but each b matrix is {b.shape[-2]} by {b.shape[-1]}"
        )
    batch = _batch(op, A, b, "A", "b")
    if transpose:  # T^T is the other triangle of A^T
        X = LinalgSolveTriangular.apply(A.mT, b, not upper, bool(unitriangular))
    else:
        X = LinalgSolveTriangular.apply(A, b, bool(upper), bool(unitriangular))
    X = X.expand(*batch, *X.shape[-2:]) if tuple(X.shape[:-2]) != batch else X
    return triangular_solve_result(X, A.expand(*batch, n, n).clone())


def lu(A: Tensor, pivot: bool = True, get_infos: bool = False) -> Any:
    """torch.lu (deprecated in torch, which warns once): ``(LU, pivots)``, with ``info``
    for ``get_infos``, as a plain tuple; a singular matrix does not raise (torch 2.13)."""
    _warn_once(
        "lu",
        "torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex "
        "and will be removed in a future PyTorch release.\nLU, pivots = torch.lu(A, "
        "compute_pivots)\nshould be replaced with\nLU, pivots = torch.linalg.lu_factor(A, "
        "compute_pivots)\nand\nLU, pivots, info = torch.lu(A, compute_pivots, "
        "get_infos=True)\nshould be replaced with\nLU, pivots, info = "
        "torch.linalg.lu_factor_ex(A, compute_pivots)",
    )
    op = "torch.lu"
    A = _lu_input(A, op)
    LU, piv, info = LinalgLuFactorEx.apply(A, bool(pivot))
    return (LU, piv, info) if get_infos else (LU, piv)


def lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    """torch.lu_solve (deprecated in torch, which warns once): :func:`lu_solve` with its
    arguments reversed."""
    _warn_once(
        "lu_solve",
        "torch.lu_solve is deprecated in favor of torch.linalg.lu_solveand will be removed in "
        "a future PyTorch release.\nNote that torch.linalg.lu_solve has its arguments "
        "reversed.\nX = torch.lu_solve(B, LU, pivots)\nshould be replaced with\nX = "
        "torch.linalg.lu_solve(LU, pivots, B)",
    )
    return linalg_lu_solve(LU_data, LU_pivots, b)
