"""Shape ops: reshape/view, flatten, squeeze, permute, expand, repeat, cat, stack, split, pad,
flip, roll, narrow, movedim.

Views are NumPy/CuPy views wherever the array library gives one (reshape of a contiguous
array, transpose, expand, slicing), as PyTorch's are. Each op is one Function; gradients of
broadcasting ops (expand) are summed down by the autograd engine's ``unbroadcast``.
"""

from __future__ import annotations

import builtins
import itertools
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.amp.autocast_mode import autocast_args, autocasts
from darklib.autograd import Function, Node, higher_order
from darklib.backend import device_of, get_xp, to_device
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.ops._promote import result_dtype
from darklib.tensor import Size, Tensor

# ------------------------------------------------------------------ shared helpers


def _check_tensor(x: Any, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{op}(): expected a Tensor as input, got {type(x).__name__}")
    return x


def _int(v: Any, op: str, what: str = "dim") -> int:
    if isinstance(v, builtins.bool):
        raise InvalidType(f"{op}(): {what} must be an integer, got bool {v}")
    try:
        return operator.index(v)
    except TypeError:
        raise InvalidType(f"{op}(): {what} must be an integer, got {type(v).__name__}") from None


def norm_dim(dim: Any, ndim: int, op: str, extra: int = 0) -> int:
    """Wrap a possibly negative ``dim`` into ``[0, ndim + extra)`` (0-d tensors take 0/-1).

    ``extra=1`` is for ops that insert a dimension (unsqueeze, stack).
    """
    d = _int(dim, op)
    n = builtins.max(ndim + extra, 1)
    if d < -n or d >= n:
        raise OutOfRange(
            f"{op}(): Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
            f"but got {d}) for a {ndim}-D tensor"
        )
    return d % n


def norm_dims(dims: Any, ndim: int, op: str) -> tuple[int, ...]:
    """A dim or a sequence of dims, wrapped and checked for repeats."""
    if isinstance(dims, Sequence) and not isinstance(dims, str):
        out = tuple(norm_dim(d, ndim, op) for d in dims)
    else:
        out = (norm_dim(dims, ndim, op),)
    if len(set(out)) != len(out):
        dup = next(d for d in out if out.count(d) > 1)
        raise RuntimeError(f"{op}(): dim {dup} appears multiple times in the list of dims")
    return out


def _sizes(args: tuple, op: str, what: str = "size") -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])`` -> (2, 3)."""
    if len(args) == 1 and type(args[0]) is tuple:  # the common case first
        args = args[0]
    for a in args:
        if type(a) is not int:
            break
    else:
        return args
    if (
        len(args) == 1
        and isinstance(args[0], Sequence | np.ndarray | Tensor)
        and not (isinstance(args[0], Tensor | np.ndarray) and args[0].ndim == 0)
    ):
        args = tuple(args[0].tolist()) if isinstance(args[0], Tensor | np.ndarray) else args[0]
    return tuple(_int(a, op, what) for a in args)


def _axis_key(axis: int, s: Any) -> tuple:
    """An index selecting ``s`` along ``axis`` and everything along the others."""
    return (slice(None),) * axis + (s,)


# ------------------------------------------------------------------ Functions


class Reshape(Function):
    may_copy = True  # a view where the layout allows one, as PyTorch's reshape

    @staticmethod
    def view(x, shape):
        return x.reshape(shape)

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape), None

    @staticmethod
    def backward_graph(ctx, g):
        return g.reshape(ctx.in_shape), None


class Permute(Function):
    @staticmethod
    def view(x, perm):
        return x.transpose(perm)

    @staticmethod
    def forward(ctx, x, perm):
        ctx.inv = tuple(np.argsort(perm))
        return x.transpose(perm)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inv), None

    @staticmethod
    def backward_graph(ctx, g):
        return g.permute(ctx.inv), None


def _expanded(x: Any, shape: tuple) -> Any:
    """``x`` broadcast to ``shape``, a writable view where ``x`` is writable: torch writes
    through an expanded tensor where no element is written twice (a slice of it that does
    not repeat, a fill), and ``Tensor._write`` refuses the other writes as torch does.
    (NumPy's broadcast views are read-only, CuPy's writable.)"""
    lead = len(shape) - x.ndim
    if lead >= 0 and tuple(shape[lead:]) == x.shape and all(n == 1 for n in shape[:lead]):
        return x[(None,) * lead]
    out = get_xp(x).broadcast_to(x, shape)
    if type(out) is np.ndarray and x.flags.writeable:
        out.flags.writeable = True
    return out


class Expand(Function):
    @staticmethod
    def view(x, shape):
        return _expanded(x, shape)

    @staticmethod
    def forward(ctx, x, shape):
        return _expanded(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g, None  # the engine sums the broadcast dims back down

    @staticmethod
    def backward_graph(ctx, g):
        return g, None  # the engine sums the broadcast dims back down


class Repeat(Function):
    @staticmethod
    def forward(ctx, x, reps):
        ctx.in_shape, ctx.reps = x.shape, reps
        ctx.padded = (1,) * (len(reps) - x.ndim) + x.shape
        return get_xp(x).tile(x.reshape(ctx.padded), reps)

    @staticmethod
    def backward(ctx, g):
        # (r0*s0, r1*s1, ...) -> (r0, s0, r1, s1, ...), then sum the repeat axes away
        inter = [v for r, s in zip(ctx.reps, ctx.padded) for v in (r, s)]
        g = g.reshape(inter).sum(axis=tuple(range(0, len(inter), 2)))
        return g.reshape(ctx.in_shape), None

    @staticmethod
    def backward_graph(ctx, g):
        return higher_order.linear_op(ctx, g, ctx.reps)


class Slice(Function):
    """Basic indexing (ints, slices, None, Ellipsis): a view forward, zeros + assign backward."""

    @staticmethod
    def view(x, key):
        return x[key]

    @staticmethod
    def forward(ctx, x, key):
        ctx.key = key
        ctx.in_shape = x.shape
        return x[key]

    @staticmethod
    def backward(ctx, g):
        return _placed(g, ctx.key, ctx.in_shape), None

    @staticmethod
    def backward_graph(ctx, g):
        return SliceAdjoint.apply(g, ctx.key, ctx.in_shape), None


class SliceAdjoint(Function):
    """Slice's backward as an op (for create_graph): ``g`` placed at ``key`` in zeros of
    ``in_shape``; linear, so its own gradient is the slice again."""

    @staticmethod
    def forward(ctx, g, key, in_shape):
        ctx.key = key
        return _placed(g, key, in_shape)

    @staticmethod
    def backward(ctx, gg):
        return gg[ctx.key], None, None

    @staticmethod
    def backward_graph(ctx, gg):
        return gg[ctx.key], None, None


def _placed(g, key, shape):
    """Zeros of ``shape`` holding ``g`` at ``key``."""
    out = get_xp(g).zeros(shape, g.dtype)
    out[key] = g
    return out


class Cat(Function):
    """Concatenation; inputs flagged in ``skip`` (PyTorch's legacy empty 1-D tensors) are
    left out and get an empty gradient."""

    @staticmethod
    def forward(ctx, axis, skip, *xs):
        ctx.axis, ctx.skip = axis, skip
        kept = [x for x, s in zip(xs, skip) if not s]
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in kept]).tolist()
        return get_xp(xs[0]).concatenate(kept, axis=axis)

    @staticmethod
    def backward(ctx, g):
        b, axis = ctx.bounds, ctx.axis
        needs = ctx.needs_input_grad[2:]
        out, j = [None, None], 0
        for need, s in zip(needs, ctx.skip):
            if s:
                out.append(get_xp(g).zeros((0,), g.dtype) if need else None)
                continue
            out.append(g[_axis_key(axis, slice(b[j], b[j + 1]))] if need else None)
            j += 1
        return tuple(out)

    @staticmethod
    def backward_graph(ctx, g):  # slices of g: differentiable tensor indexing
        b, axis = ctx.bounds, ctx.axis
        out, j = [None, None], 0
        for need, s in zip(ctx.needs_input_grad[2:], ctx.skip):
            if s:  # (an empty gradient for a skipped legacy empty input)
                out.append(g.new_zeros((0,)) if need else None)
                continue
            out.append(g[_axis_key(axis, slice(b[j], b[j + 1]))] if need else None)
            j += 1
        return tuple(out)


class Stack(Function):
    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis = axis
        return get_xp(xs[0]).stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        needs = ctx.needs_input_grad
        return (
            None,
            *tuple(
                g[_axis_key(ctx.axis, i)] if needs[i + 1] else None for i in range(len(needs) - 1)
            ),
        )

    @staticmethod
    def backward_graph(ctx, g):  # slices of g: differentiable tensor indexing
        return Stack.backward(ctx, g)


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        xp = get_xp(x)
        return xp.ascontiguousarray(xp.flip(x, axis=axes))  # a copy, as torch's flip

    @staticmethod
    def backward(ctx, g):
        return get_xp(g).flip(g, axis=ctx.axes), None

    @staticmethod
    def backward_graph(ctx, g):
        return g.flip(ctx.axes), None


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return get_xp(x).roll(x, shifts, axis=axes)

    @staticmethod
    def backward(ctx, g):
        back = tuple(-s for s in ctx.shifts)
        return get_xp(g).roll(g, back, axis=ctx.axes), None, None

    @staticmethod
    def backward_graph(ctx, g):
        return g.roll(tuple(-s for s in ctx.shifts), ctx.axes), None, None


_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class Pad(Function):
    """Crop (negative pads) then pad (positive pads): PyTorch's order for every mode."""

    @staticmethod
    def forward(ctx, x, crop, widths, mode, value):
        xp = get_xp(x)
        ctx.in_shape, ctx.crop, ctx.widths, ctx.mode = x.shape, crop, widths, mode
        xc = x[crop] if crop is not None else x
        ctx.mid_shape = xc.shape
        if mode == "constant":
            out = xp.full(
                tuple(n + lo + hi for n, (lo, hi) in zip(xc.shape, widths)), value, dtype=x.dtype
            )
            out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(xc.shape, widths))] = xc
            return out
        return xp.pad(xc, widths, mode=_NP_PAD_MODE[mode])

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        widths, mode = ctx.widths, ctx.mode
        if mode == "constant":
            g = g[tuple(slice(lo, lo + n) for n, (lo, _) in zip(ctx.mid_shape, widths))]
        else:
            for axis, ((lo, hi), n) in enumerate(zip(widths, ctx.mid_shape)):
                if lo or hi:
                    g = _pad_adjoint(xp, g, axis, lo, hi, n, mode)
        if ctx.crop is None:
            return g, None, None, None, None
        gx = xp.zeros(ctx.in_shape, g.dtype)
        gx[ctx.crop] = g
        return gx, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        def pad(v):  # the pad itself, without its constant: the op's linear part
            return Pad.forward(Node(Pad, ()), v, ctx.crop, ctx.widths, ctx.mode, 0)

        grads = higher_order.linear_adjoint(ctx, g, pad), None, None, None, None
        # (torch's reflect and replicate backward read the input: a zero derivative)
        return grads if ctx.mode == "constant" else higher_order.linked(ctx, grads, 0)


def _pad_adjoint(xp, g, axis, lo, hi, n, mode):
    """Sum the padded positions of ``g`` along ``axis`` back onto the ``n`` source positions."""

    def s(a, b):
        return _axis_key(axis, slice(a, b))

    out = g[s(lo, lo + n)].copy()
    left, right = g[s(0, lo)], g[s(lo + n, lo + n + hi)]
    if mode == "replicate":
        out[s(0, 1)] += left.sum(axis=axis, keepdims=True)
        out[s(n - 1, n)] += right.sum(axis=axis, keepdims=True)
    elif mode == "reflect":
        out[s(1, lo + 1)] += xp.flip(left, axis=axis)
        out[s(n - 1 - hi, n - 1)] += xp.flip(right, axis=axis)
    else:  # circular
        out[s(n - lo, n)] += left
        out[s(0, hi)] += right
    return out


# ------------------------------------------------------------------ reshaping


def _infer_shape(shape: tuple[int, ...], x: Tensor, op: str) -> tuple[int, ...]:
    numel = x.array.size
    known, free = 1, -1
    for i, n in enumerate(shape):
        if n == -1:
            if free >= 0:
                raise RuntimeError(
                    f"{op}(): only one dimension can be inferred (-1), got {list(shape)}"
                )
            free = i
        elif n < 0:
            raise RuntimeError(f"{op}(): invalid shape dimension {n} in {list(shape)}")
        else:
            known *= n
    if free < 0:
        if known == numel:
            return shape
    elif known != 0 and numel % known == 0:
        return (*shape[:free], numel // known, *shape[free + 1 :])
    why = ": -1 is ambiguous when the other sizes multiply to 0" if free >= 0 and not known else ""
    raise RuntimeError(
        f"{op}(): shape {list(shape)} is invalid for input of shape {list(x.shape)} "
        f"(size {numel}){why}"
    )


def reshape(input: Tensor, *shape: Any, **kw: Any) -> Tensor:
    """A tensor with the same data and ``shape`` (one size may be -1); a view where possible.

    Example::

        >>> dl.arange(6).reshape(2, -1).shape
        darklib.Size([2, 3])
    """
    shape = _dims_keyword(shape, kw, "reshape", "shape")
    x = _check_tensor(input, "reshape")
    return Reshape.apply(x, _infer_shape(_sizes(shape, "reshape"), x, "reshape"))


def view(input: Tensor, *shape: Any, **kw: Any) -> Tensor:
    """Like :func:`reshape`; ``view(dtype)`` reinterprets the bytes (no gradient)."""
    shape = _dims_keyword(shape, kw, "view", "size")
    x = _check_tensor(input, "view")
    if len(shape) == 1 and isinstance(shape[0], _dt.dtype | np.dtype | type | str):
        target = np.dtype(_dt.to_numpy_dtype(shape[0]))
        try:
            arr = x.array.view(target)
        except ValueError as e:  # NumPy's reason names no op, dtype or shape
            old_size, new_size = x.array.dtype.itemsize, target.itemsize
            raise InvalidValue(
                f"view(): cannot view a {x.dtype} tensor of shape {list(x.shape)} as "
                f"{_dt.from_numpy_dtype(target)}: with different element sizes ({old_size} "
                f"and {new_size} bytes) the tensor needs at least one dimension, a contiguous "
                f"last dimension, and that dimension's size in bytes "
                f"({x.shape[-1] if x.ndim else 0} * {old_size}) divisible by {new_size}"
            ) from e
        return Tensor._wrap(arr)._as_view_of(x, None)
    out = Reshape.apply(x, _infer_shape(_sizes(shape, "view"), x, "view"))
    if out._view is None and x.array.size > 1:
        raise RuntimeError(
            f"view(): view size {list(out.shape)} is not compatible with the input tensor's "
            f"size and stride (shape {list(x.shape)}, not contiguous); use .reshape(...) "
            "instead"
        )
    return out


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, tuple(other.shape))


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, tuple(other.shape))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one. A 0-d tensor becomes shape (1,)."""
    x = _check_tensor(input, "flatten")
    if x.ndim == 0:  # the dims are still checked, as torch: [-1, 0] only
        norm_dim(start_dim, 0, "flatten")
        norm_dim(end_dim, 0, "flatten")
        return Reshape.apply(x, (1,))
    s, e = norm_dim(start_dim, x.ndim, "flatten"), norm_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise RuntimeError(f"flatten(): start_dim {start_dim} cannot come after end_dim {end_dim}")
    shp = x.shape
    mid = 1
    for n in shp[s : e + 1]:
        mid *= n
    return Reshape.apply(x, (*shp[:s], mid, *shp[e + 1 :]))


def ravel(input: Tensor) -> Tensor:
    """The elements in a 1-D contiguous tensor: a view of a contiguous input, else a copy."""
    x = _check_tensor(input, "ravel")
    return flatten(x if x.is_contiguous() else x.contiguous())


def _split_dim(x: Tensor, dim: Any, op: str) -> int:
    """The dim an op cuts or narrows (a 0-d tensor has none to cut, as in torch)."""
    if x.ndim == 0:
        raise RuntimeError(f"{op}(): expects at least a 1-dimensional tensor, got a 0-d tensor")
    return norm_dim(dim, x.ndim, op)


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be -1)."""
    x = _check_tensor(input, "unflatten")
    d = _split_dim(x, dim, "unflatten")
    sizes = _sizes((sizes,), "unflatten")
    if not sizes:
        raise RuntimeError("unflatten(): sizes must be non-empty")
    n = x.shape[d]
    known = 1
    for s in sizes:
        if s != -1:
            known *= s
    nfree = sizes.count(-1)
    if nfree > 1 or (nfree and (known == 0 or n % known)) or (not nfree and known != n):
        raise RuntimeError(
            f"unflatten(): sizes {list(sizes)} don't multiply up to the size of dim {dim} "
            f"({n}) in the input tensor of shape {list(x.shape)}"
        )
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return Reshape.apply(x, x.shape[:d] + sizes + x.shape[d + 1 :])


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dims (all, or those in ``dim``; dims of other sizes are kept)."""
    x = _check_tensor(input, "squeeze")
    if dim is None:
        drop = {i for i, n in enumerate(x.shape) if n == 1}
    elif x.ndim == 0:
        norm_dims(dim, 0, "squeeze")
        drop = set()
    else:
        drop = {d for d in norm_dims(dim, x.ndim, "squeeze") if x.shape[d] == 1}
    return Reshape.apply(x, tuple(n for i, n in enumerate(x.shape) if i not in drop))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim`` (in ``[-ndim-1, ndim]``)."""
    x = _check_tensor(input, "unsqueeze")
    d = norm_dim(dim, x.ndim, "unsqueeze", extra=1)
    return Reshape.apply(x, (*x.shape[:d], 1, *x.shape[d:]))


# ------------------------------------------------------------------ dim order


def _dims_keyword(dims: tuple, kw: dict, op: str, name: str = "dims") -> tuple:
    """The dims of ``op(x, *dims)`` or of torch's keyword form ``op(x, dims=...)``
    (``name`` is the keyword: dims, shape or size)."""
    if not kw:
        return dims
    if set(kw) != {name} or dims:
        raise InvalidType(f"{op}(): takes the {name} positionally or as {name}=, got {sorted(kw)}")
    return (kw[name],)


def permute(input: Tensor, *dims: Any, **kw: Any) -> Tensor:
    """Reorder the dims: ``x.permute(2, 0, 1)`` or ``x.permute(dims=(2, 0, 1))`` (a view)."""
    dims = _dims_keyword(dims, kw, "permute")
    x = _check_tensor(input, "permute")
    dims = _sizes(dims, "permute", "dim")
    if len(dims) != x.ndim:
        raise RuntimeError(
            f"permute(): the tensor has {x.ndim} dims (shape {list(x.shape)}) but the "
            f"ordering {list(dims)} has {len(dims)}"
        )
    perm = tuple(norm_dim(d, x.ndim, "permute") for d in dims)
    if len(set(perm)) != len(perm):
        raise RuntimeError(f"permute(): duplicate dims are not allowed, got {list(dims)}")
    return Permute.apply(x, perm)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (a view)."""
    x = _check_tensor(input, "transpose")
    if x.ndim == 0:
        norm_dim(dim0, 0, "transpose")
        norm_dim(dim1, 0, "transpose")
        return Reshape.apply(x, ())
    a, b = norm_dim(dim0, x.ndim, "transpose"), norm_dim(dim1, x.ndim, "transpose")
    perm = list(range(x.ndim))
    perm[a], perm[b] = b, a
    return Permute.apply(x, tuple(perm))


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """Transpose a tensor of at most 2 dims (0-d and 1-d tensors come back as they are)."""
    x = _check_tensor(input, "t")
    if x.ndim > 2:
        raise RuntimeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D "
            f"(shape {list(x.shape)}); use transpose(dim0, dim1) or .mT"
        )
    if x.ndim < 2:
        return Reshape.apply(x, x.shape)
    return Permute.apply(x, (1, 0))


def _T(self: Tensor) -> Tensor:
    if self.ndim not in (0, 2):
        warnings.warn(
            "x.T on a tensor of dimension other than 2 reverses all its dims, as PyTorch's "
            "deprecated behaviour; use x.mT or x.permute(...)",
            UserWarning,
            stacklevel=2,
        )
    return Permute.apply(self, tuple(range(self.ndim - 1, -1, -1)))


def _H(self: Tensor) -> Tensor:
    """The conjugate transpose of a matrix (for real tensors, its transpose)."""
    if self.ndim != 2:
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D), got {self.ndim}-D")
    return _T(self)


def _mT(self: Tensor) -> Tensor:
    if self.ndim < 2:
        raise RuntimeError(
            f"tensor.mT is only supported on matrices or batches of matrices, "
            f"got a {self.ndim}-D tensor"
        )
    return transpose(self, -2, -1)


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (ints or sequences of ints)."""
    x = _check_tensor(input, "movedim")
    src = norm_dims(source, x.ndim, "movedim")
    dst = norm_dims(destination, x.ndim, "movedim")
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim(): source {source} and destination {destination} must "
            "have the same number of dims"
        )
    if x.ndim == 0:
        return Reshape.apply(x, ())
    rest = [d for d in range(x.ndim) if d not in src]
    perm = [-1] * x.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    it = iter(rest)
    perm = tuple(p if p != -1 else next(it) for p in perm)
    return Permute.apply(x, perm)


moveaxis = movedim


# ------------------------------------------------------------------ broadcasting, tiling


def expand(input: Tensor, *sizes: Any, **kw: Any) -> Tensor:
    """A broadcast view with ``sizes`` (-1 keeps a dim; new dims are added in front)."""
    sizes = _dims_keyword(sizes, kw, "expand", "size")
    x = _check_tensor(input, "expand")
    sizes = _sizes(sizes, "expand")
    if len(sizes) < x.ndim:
        raise RuntimeError(
            f"expand(): the number of sizes provided ({len(sizes)}) must be greater or equal "
            f"to the number of dimensions in the tensor ({x.ndim}); sizes {list(sizes)}, "
            f"tensor shape {list(x.shape)}"
        )
    lead = len(sizes) - x.ndim
    out = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(
                    f"expand(): the expanded size {s} is not allowed in a leading, "
                    f"non-existing dimension {i}"
                )
            out.append(s)
            continue
        cur = x.shape[i - lead]
        if s == -1:
            s = cur
        elif s < 0:
            raise InvalidValue(
                f"expand(): the expanded size {s} at dimension {i} is negative; sizes must be "
                f">= 0 (or -1 to keep the dimension), got sizes {list(sizes)} for a tensor of "
                f"shape {list(x.shape)}"
            )
        if cur != s and cur != 1:
            raise RuntimeError(
                f"expand(): the expanded size of the tensor ({s}) must match the existing size "
                f"({cur}) at non-singleton dimension {i}. Target sizes: {list(sizes)}. "
                f"Tensor sizes: {list(x.shape)}"
            )
        out.append(s)
    return Expand.apply(x, tuple(out))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, tuple(other.shape))


def broadcast_to(input: Tensor, size: Any = None, *, shape: Any = None) -> Tensor:
    """``input`` expanded to ``size`` (a sequence of ints; -1 keeps a dim), as
    ``torch.broadcast_to``, which takes no varargs (``Tensor.broadcast_to`` does)."""
    size = shape if size is None else size
    if not isinstance(size, Sequence | np.ndarray | Tensor) or isinstance(size, str):
        raise InvalidType(
            f"broadcast_to(): argument 'size' (position 2) must be tuple of ints, not "
            f"{type(size).__name__}"
        )
    return expand(input, tuple(size.tolist() if hasattr(size, "tolist") else size))


def _broadcast_to_method(self: Tensor, *sizes: Any, **kw: Any) -> Tensor:
    """``x.broadcast_to(2, 3)`` or ``x.broadcast_to((2, 3))``, as torch's method."""
    if "size" in kw or "shape" in kw:
        return broadcast_to(self, kw.pop("size", None), shape=kw.pop("shape", None))
    return expand(self, *sizes)


def sum_to_size(input: Tensor, *size: Any) -> Tensor:
    """``input`` summed down to ``size`` (a shape it broadcasts from: the leading dims are
    summed away, dims of size 1 summed with keepdim), as torch's ``sum_to_size``; the
    tensor itself when it has that shape already. Integer sums are int64, as ``sum``."""
    x = _check_tensor(input, "sum_to_size")
    if not size:
        raise InvalidType('sum_to_size() missing 1 required positional arguments: "size"')
    shape = _sizes(size, "sum_to_size")
    full = tuple(x.shape)
    lead = len(full) - len(shape)
    if lead < 0 or builtins.any(n != full[lead + i] and n != 1 for i, n in enumerate(shape)):
        raise RuntimeError(
            f"sum_to_size(): size {list(shape)} is not expandable to size {list(full)} (the "
            "tensor's shape)"
        )
    if shape == full:
        return x
    from darklib.ops.reduction import sum as _sum

    dims = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and full[lead + i] != 1
    )
    return reshape(_sum(x, dims, keepdim=True), shape)


def msort(input: Tensor) -> Tensor:
    """``input`` sorted along dim 0 (the values of ``sort(input, dim=0)``)."""
    from darklib.ops.reduction import sort

    x = _check_tensor(input, "msort")
    return sort(x, 0)[0]


def repeat(input: Tensor, *sizes: Any, repeats: Any = None) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along each dim (copies, unlike expand); the
    sizes as varargs, one sequence, or torch's keyword ``repeats=`` (a sequence)."""
    x = _check_tensor(input, "repeat")
    if repeats is not None:
        if sizes:
            raise InvalidType("repeat() got multiple values for argument 'repeats'")
        if not isinstance(repeats, Sequence | Tensor | np.ndarray) or isinstance(repeats, str):
            raise InvalidType(
                f"repeat(): argument 'repeats' must be tuple of ints, not {type(repeats).__name__}"
            )
        sizes = (repeats,)
    elif not sizes:
        raise InvalidType('repeat() missing 1 required positional arguments: "repeats"')
    reps = _sizes(sizes, "repeat")
    if len(reps) < x.ndim:
        raise RuntimeError(
            f"repeat(): number of dimensions of repeat dims {list(reps)} can not be smaller "
            f"than number of dimensions of tensor ({x.ndim}, shape {list(x.shape)})"
        )
    if builtins.any(r < 0 for r in reps):
        raise RuntimeError(f"repeat(): repeats can not be negative, got {list(reps)}")
    return Repeat.apply(x, reps)


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Like repeat, but ``dims`` shorter than the tensor's rank is padded with ones in front."""
    x = _check_tensor(input, "tile")
    reps = _sizes((dims,), "tile")
    return repeat(x, (1,) * (x.ndim - len(reps)) + reps)


# ------------------------------------------------------------------ joining, splitting


def _promote_all(tensors: Sequence[Tensor], op: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence):
        raise InvalidType(f"{op}(): expected a sequence of tensors, got {type(tensors).__name__}")
    if len(tensors) == 0:
        raise InvalidValue(f"{op}(): expected a non-empty list of tensors")
    for i, t_ in enumerate(tensors):
        if not isinstance(t_, Tensor):
            raise InvalidType(f"{op}(): expected Tensors, got {type(t_).__name__} at position {i}")
    dt = result_dtype(*tensors)
    return [t_ if t_.array.dtype == dt else t_.to(dt) for t_ in tensors]


def cat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Concatenate tensors along an existing dim; dtypes promote as in PyTorch.

    Shape: all inputs match except along ``dim``. 1-D empty tensors are skipped (as PyTorch).
    ``axis`` is NumPy's name for ``dim``.
    """
    dim = dim if axis is None else axis
    ts = _promote_all(tensors, "cat")
    skip = tuple(t_.ndim == 1 and t_.shape[0] == 0 for t_ in ts)
    if builtins.all(skip):
        skip = (False,) * len(ts)
    kept = [t_ for t_, s in zip(ts, skip) if not s]
    ref = kept[0]
    for i, t_ in enumerate(ts):
        if t_.ndim == 0:
            raise RuntimeError(
                f"cat(): zero-dimensional tensor (at position {i}) cannot be concatenated"
            )
    d = norm_dim(dim, ref.ndim, "cat")
    for t_ in kept[1:]:
        if t_.ndim != ref.ndim or builtins.any(
            a != b for i, (a, b) in enumerate(zip(t_.shape, ref.shape)) if i != d
        ):
            raise RuntimeError(
                f"cat(): sizes of tensors must match except in dimension {d}: got shapes "
                f"{list(ref.shape)} and {list(t_.shape)}"
            )
    return Cat.apply(d, skip, *ts)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join equally shaped tensors along a new dim ``dim`` (NumPy's ``axis``)."""
    dim = dim if axis is None else axis
    ts = _promote_all(tensors, "stack")
    ref = ts[0]
    d = norm_dim(dim, ref.ndim, "stack", extra=1)
    for i, t_ in enumerate(ts):
        if t_.shape != ref.shape:
            raise RuntimeError(
                f"stack(): expects each tensor to be equal size, but got {list(ref.shape)} at "
                f"entry 0 and {list(t_.shape)} at entry {i}"
            )
    return Stack.apply(d, *ts)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    ts = [t_ if t_.ndim else reshape(t_, 1) for t_ in _promote_all(tensors, "hstack")]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    ts = [t_ if t_.ndim >= 2 else reshape(t_, 1, -1) for t_ in _promote_all(tensors, "vstack")]
    return cat(ts, 0)


row_stack = vstack  # (torch's alias)


def narrow(input: Tensor, dim: int, start: Any, length: int) -> Tensor:
    """The view ``input[..., start:start + length, ...]`` along ``dim``."""
    x = _check_tensor(input, "narrow")
    d = _split_dim(x, dim, "narrow")
    n = x.shape[d]
    start, length = _int(start, "narrow", "start"), _int(length, "narrow", "length")
    if start < -n or start > n:
        raise OutOfRange(
            f"narrow(): start out of range (expected to be in range of [{-n}, {n}], "
            f"but got {start}) for dimension {d} of size {n}"
        )
    if start < 0:
        start += n
    if length < 0:
        raise RuntimeError(f"narrow(): length must be non-negative, got {length}")
    if start + length > n:
        raise RuntimeError(
            f"narrow(): start ({start}) + length ({length}) exceeds dimension "
            f"size ({n}) of dimension {d}"
        )
    return Slice.apply(x, _axis_key(d, slice(start, start + length)))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, with that dim removed (a view)."""
    x = _check_tensor(input, "select")
    if x.ndim == 0:
        raise OutOfRange("select(): cannot be applied to a 0-dim tensor")
    d = norm_dim(dim, x.ndim, "select")
    n = x.shape[d]
    i = _int(index, "select", "index")
    if i < -n or i >= n:
        raise OutOfRange(
            f"select(): index {i} out of range for tensor of size {list(x.shape)} at dimension {d}"
        )
    return Slice.apply(x, (*_axis_key(d, i % n), Ellipsis))


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """All slices along ``dim``, that dim removed."""
    x = _check_tensor(input, "unbind")
    d = _split_dim(x, dim, "unbind")
    return tuple(select(x, d, i) for i in range(x.shape[d]))


def split(
    tensor: Tensor, split_size_or_sections: Any = None, dim: int = 0, *, split_size: Any = None
) -> tuple[Tensor, ...]:
    """Split into pieces of ``split_size`` (the last may be smaller), or of the listed sizes
    (``split_size=`` is Tensor.split's keyword in torch)."""
    if split_size is not None:
        split_size_or_sections = split_size
    x = _check_tensor(tensor, "split")
    d = _split_dim(x, dim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, Sequence):
        sizes = _sizes((split_size_or_sections,), "split", "split size")
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise RuntimeError(
                f"split(): split_sizes {list(sizes)} must be non-negative and sum exactly to "
                f"{n} (input tensor's size at dimension {d}, shape {list(x.shape)})"
            )
    else:
        size = _int(split_size_or_sections, "split", "split_size")
        if size <= 0 and not (size == 0 and n == 0):
            raise RuntimeError(f"split(): split_size must be a positive integer, got {size}")
        # (an empty dim still gives one, empty, piece: torch's)
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if n else [0]
    out, start = [], 0
    for s in sizes:
        out.append(Slice.apply(x, _axis_key(d, slice(start, start + s))))
        start += s
    return tuple(out)


def split_with_sizes(input: Tensor, split_sizes: Sequence[int], dim: int = 0) -> tuple:
    """Views of ``input`` of the listed sizes along ``dim`` (which must sum to its size),
    as ``torch.split_with_sizes``: ``split`` with a list only."""
    if not isinstance(split_sizes, Sequence) or isinstance(split_sizes, str):
        raise InvalidType(
            "split_with_sizes(): argument 'split_sizes' (position 1) must be tuple of ints, "
            f"not {type(split_sizes).__name__}"
        )
    return split(input, list(split_sizes), dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` pieces of ``ceil(size / chunks)`` (fewer if it divides short)."""
    x = _check_tensor(input, "chunk")
    chunks = _int(chunks, "chunk", "chunks")
    if chunks <= 0:
        raise RuntimeError(f"chunk(): expects `chunks` to be greater than 0, got: {chunks}")
    d = _split_dim(x, dim, "chunk")
    n = x.shape[d]
    size = -(-n // chunks)
    if size == 0:
        return tuple(Slice.apply(x, _axis_key(d, slice(0, 0))) for _ in range(chunks))
    return split(x, size, d)


# ------------------------------------------------------------------ flip, roll, pad


def flip(input: Tensor, *dims: Any, **kw: Any) -> Tensor:
    """Reverse the order of elements along ``dims`` (positional, or ``dims=``)."""
    dims = _dims_keyword(dims, kw, "flip")
    x = _check_tensor(input, "flip")
    axes = norm_dims(_sizes(dims, "flip", "dim"), x.ndim, "flip")
    if x.ndim == 0:
        return Reshape.apply(x, ())
    return Flip.apply(x, axes)


def fliplr(input: Tensor) -> Tensor:
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:
    return flip(input, 0)


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements circularly along ``dims`` (the flattened tensor when ``dims`` is None)."""
    x = _check_tensor(input, "roll")
    shifts_t = (
        _sizes((shifts,), "roll", "shift")
        if isinstance(shifts, Sequence)
        else (_int(shifts, "roll", "shift"),)
    )
    if dims is None:
        if len(shifts_t) != 1:
            raise RuntimeError(
                f"roll(): shifts {list(shifts_t)} need dims when more than one is given"
            )
        flat = Reshape.apply(x, (-1,))
        return Reshape.apply(Roll.apply(flat, shifts_t, (0,)), x.shape)
    if x.ndim == 0:  # (other ops read dim 0 of a 0-d tensor as the tensor; roll does not)
        raise OutOfRange("roll(): dimension specified as 0 but tensor has no dimensions")
    axes = (
        norm_dims(dims, x.ndim, "roll")
        if not isinstance(dims, Sequence)
        else tuple(norm_dim(d, x.ndim, "roll") for d in dims)
    )
    if len(axes) != len(shifts_t):
        raise RuntimeError(
            f"roll(): shifts and dimensions must align. shifts: {len(shifts_t)}, dims: {len(axes)}"
        )
    return Roll.apply(x, shifts_t, axes)


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims; ``pad`` lists (left, right) for the last dim
    first, then the one before it, and so on. Negative pads crop.

    Args:
        input: tensor to pad.
        pad: ``(last_left, last_right, prev_left, prev_right, ...)``.
        mode: ``'constant'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        value: fill value for ``'constant'`` (default 0).

    Example::

        >>> F.pad(dl.ones(1, 1, 2, 2), (1, 1, 0, 0)).shape
        (1, 1, 2, 4)
    """
    x = _check_tensor(input, "pad")
    pads = _sizes((pad,), "pad", "padding")
    if len(pads) % 2:
        raise RuntimeError(f"pad(): padding length must be divisible by 2, got {list(pads)}")
    k = len(pads) // 2
    if k > x.ndim:
        raise RuntimeError(
            f"pad(): padding length should be less than or equal to two times the input "
            f"dimension but got padding length {len(pads)} and input of dimension {x.ndim}"
        )
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(
            f"pad(): unknown padding mode {mode!r}; use 'constant', "
            "'reflect', 'replicate' or 'circular'"
        )
    if mode != "constant" and value is not None and value != 0:
        raise RuntimeError(f"pad(): padding mode {mode!r} doesn't take in value argument")
    if mode != "constant" and (not 1 <= k <= 3 or x.ndim not in (k + 1, k + 2)):
        # as torch: the non-constant modes pad 1, 2 or 3 trailing dims of a batch or one sample
        raise NotImplementedError(
            f"pad(): padding size {len(pads)} is not supported for {x.ndim}-D input in mode "
            f"{mode!r}; supported: padding size 2 with 2-D or 3-D input, 4 with 3-D or 4-D "
            "input, 6 with 4-D or 5-D input"
        )
    if mode in ("reflect", "replicate"):  # (torch's autocast runs these in float32)
        (x,) = autocast_args(f"{'reflection' if mode == 'reflect' else 'replication'}_pad{k}d", x)
    return _padded(x, pads, mode, value)


def _padded(x: Tensor, pads: Sequence[int], mode: str, value: float | None) -> Tensor:
    """:func:`pad` of checked arguments."""
    if mode in ("reflect", "replicate") and builtins.min(pads) < 0 < builtins.max(pads):
        # as torch: reflect or replicate about the whole input first, then crop (circular
        # wraps the cropped input, below)
        grown = _padded(x, [builtins.max(p, 0) for p in pads], mode, value)
        return _padded(grown, [builtins.min(p, 0) for p in pads], "constant", None)
    k = len(pads) // 2
    per_dim = [(0, 0)] * (x.ndim - k) + [
        (pads[2 * i], pads[2 * i + 1]) for i in range(k - 1, -1, -1)
    ]
    crop, widths, mid = [], [], []
    for axis, ((lo, hi), n) in enumerate(zip(per_dim, x.shape)):
        if n + lo + hi < 0:
            raise RuntimeError(
                f"pad(): the input size {n}, plus negative padding {lo} and {hi} resulted in a "
                f"negative output size, which is invalid. Check dimension {axis} of your input "
                f"(shape {list(x.shape)})"
            )
        a, b = builtins.max(-lo, 0), n - builtins.max(-hi, 0)
        if b < a:
            raise RuntimeError(
                f"pad(): negative padding ({lo}, {hi}) crops more than the size "
                f"{n} of dimension {axis}"
            )
        crop.append(slice(a, b))
        lo, hi = builtins.max(lo, 0), builtins.max(hi, 0)
        m = b - a
        mid.append(m)
        if (lo or hi) and mode == "reflect" and (lo >= m or hi >= m):
            raise RuntimeError(
                f"pad(): padding size should be less than the corresponding input dimension, "
                f"but got: padding ({lo}, {hi}) at dimension {axis} of input {list(x.shape)}"
            )
        if (lo or hi) and mode == "circular" and (lo > m or hi > m):
            raise RuntimeError(
                f"pad(): padding ({lo}, {hi}) at dimension {axis} of input "
                f"{list(x.shape)} causes wrapping around more than once"
            )
        if (lo or hi) and mode == "replicate" and m == 0:
            raise RuntimeError(
                f"pad(): cannot replicate-pad the empty dimension {axis} of input {list(x.shape)}"
            )
        widths.append((lo, hi))
    cropping = builtins.any(s.start != 0 or s.stop != n for s, n in zip(crop, x.shape))
    fill = 0 if value is None else value
    return Pad.apply(x, tuple(crop) if cropping else None, tuple(widths), mode, fill)


# ------------------------------------------------------------------ diagonals, triangles


class Triangle(Function):
    @staticmethod
    def forward(ctx, x, k, upper):
        ctx.k, ctx.upper = k, upper
        xp = get_xp(x)
        return xp.triu(x, k) if upper else xp.tril(x, k)

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        return (xp.triu(g, ctx.k) if ctx.upper else xp.tril(g, ctx.k)), None, None

    @staticmethod
    def backward_graph(ctx, g):
        return higher_order.linear_op(ctx, g, ctx.k, ctx.upper)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (from ``diagonal`` up); the rest is 0."""
    x = _check_tensor(input, "triu")
    if x.ndim < 2:
        raise RuntimeError(f"triu(): input tensor must have at least 2 dims, got {list(x.shape)}")
    return Triangle.apply(x, _int(diagonal, "triu", "diagonal"), True)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (up to ``diagonal``); the rest is 0."""
    x = _check_tensor(input, "tril")
    if x.ndim < 2:
        raise RuntimeError(f"tril(): input tensor must have at least 2 dims, got {list(x.shape)}")
    return Triangle.apply(x, _int(diagonal, "tril", "diagonal"), False)


class Diagonal(Function):
    """A diagonal across two dims, moved to the end (a view, as PyTorch's)."""

    @staticmethod
    def view(x, offset, a, b):
        d = get_xp(x).diagonal(x, offset, a, b)
        if isinstance(d, np.ndarray) and x.flags.writeable:
            d.flags.writeable = True  # NumPy hands out diagonals read-only; PyTorch's aren't
        return d

    @staticmethod
    def forward(ctx, x, offset, a, b):
        ctx.shape, ctx.params = x.shape, (offset, a, b)
        return Diagonal.view(x, offset, a, b)

    @staticmethod
    def backward(ctx, g):
        gx = get_xp(g).zeros(ctx.shape, g.dtype)
        Diagonal.view(gx, *ctx.params)[...] = g
        return gx, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        return higher_order.linear_op(ctx, g, *ctx.params)


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the 2-D slices across ``dim1`` and ``dim2`` (a view)."""
    x = _check_tensor(input, "diagonal")
    a, b = norm_dim(dim1, x.ndim, "diagonal"), norm_dim(dim2, x.ndim, "diagonal")
    if a == b:
        raise RuntimeError(f"diagonal(): dim1 and dim2 cannot be identical, got {dim1} and {dim2}")
    return Diagonal.apply(x, _int(offset, "diagonal", "offset"), a, b)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D tensor becomes a square matrix with it on a diagonal; a 2-D tensor gives its
    diagonal."""
    x = _check_tensor(input, "diag")
    k = _int(diagonal, "diag", "diagonal")
    if x.ndim == 2:
        return Diagonal.apply(x, k, 0, 1).clone()
    if x.ndim != 1:
        raise RuntimeError(f"diag(): expected a 1-D or 2-D tensor, got shape {list(x.shape)}")
    n = x.shape[0] + builtins.abs(k)
    rows = np.arange(x.shape[0]) + builtins.max(-k, 0)
    cols = np.arange(x.shape[0]) + builtins.max(k, 0)
    base = Tensor._wrap(get_xp(x.array).zeros((n, n), x.array.dtype))
    from darklib.ops.indexing import index_put

    return index_put(base, (Tensor._wrap(rows), Tensor._wrap(cols)), x)


@autocasts("trace")
def trace(input: Tensor) -> Tensor:
    """Sum of the main diagonal of a 2-D tensor."""
    x = _check_tensor(input, "trace")
    if x.ndim != 2:
        raise RuntimeError(f"trace(): expected a 2-D tensor, got shape {list(x.shape)}")
    return diagonal(x).sum()


# ------------------------------------------------------------------ broadcasting helpers


def broadcast_shapes(*shapes: Any) -> Size:
    """The shape that tensors of ``shapes`` broadcast to, a ``dl.Size`` as torch's."""
    try:
        return Size(
            np.broadcast_shapes(*[(s,) if isinstance(s, int) else tuple(s) for s in shapes])
        )
    except ValueError:
        raise RuntimeError(f"broadcast_shapes(): shapes {list(shapes)} do not broadcast") from None


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Expand all tensors to their common broadcast shape (views)."""
    shape = broadcast_shapes(
        *[tuple(_check_tensor(t_, "broadcast_tensors").shape) for t_ in tensors]
    )
    return tuple(expand(t_, shape) for t_ in tensors)


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors (``indexing='ij'`` or ``'xy'``)."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise InvalidValue(f"meshgrid(): indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors:
        raise InvalidValue("meshgrid(): expects a non-empty list of tensors")
    for i, t_ in enumerate(tensors):
        if _check_tensor(t_, "meshgrid").ndim > 1:
            raise InvalidValue(
                f"meshgrid(): expected 0-D or 1-D tensors, but tensor {i} has shape "
                f"{list(t_.shape)}"
            )
        if t_.dtype != tensors[0].dtype:
            raise InvalidType(
                f"meshgrid(): expects all tensors to have the same dtype, but tensor 0 is "
                f"{tensors[0].dtype} and tensor {i} is {t_.dtype}"
            )
    ts = [reshape(t_, -1) for t_ in tensors]
    n = len(ts)
    if indexing == "xy" and n >= 2:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t_.shape[0] for t_ in ts)
    out = [
        expand(reshape(t_, *[-1 if j == i else 1 for j in range(n)]), shape)
        for i, t_ in enumerate(ts)
    ]
    if indexing == "xy" and n >= 2:  # 'xy' is 'ij' of the first two swapped, swapped back
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def _atleast_1d(input: Tensor) -> Tensor:
    x = _check_tensor(input, "atleast_1d")
    return reshape(x, 1) if x.ndim == 0 else x


def _atleast_2d(input: Tensor) -> Tensor:
    x = _check_tensor(input, "atleast_2d")
    return reshape(x, 1, -1) if x.ndim < 2 else x


def _atleast_3d(input: Tensor) -> Tensor:
    x = _check_tensor(input, "atleast_3d")
    if x.ndim == 0:
        return reshape(x, 1, 1, 1)
    if x.ndim == 1:
        return reshape(x, 1, -1, 1)
    return unsqueeze(x, -1) if x.ndim == 2 else x


def _atleast(fn: Callable[[Tensor], Tensor], tensors: tuple) -> Any:
    """torch's forms: one tensor gives a tensor; several tensors, or one list or tuple of
    them, give a tuple."""
    if len(tensors) == 1:
        if isinstance(tensors[0], list | tuple):
            return tuple(fn(t_) for t_ in tensors[0])
        return fn(tensors[0])
    return tuple(fn(t_) for t_ in tensors)


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least 1 dim (0-d ones become 1-D)."""
    return _atleast(_atleast_1d, tensors)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least 2 dims (new dims in front)."""
    return _atleast(_atleast_2d, tensors)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least 3 dims (as torch: a 1-D ``(n,)`` becomes ``(1, n, 1)``,
    a 2-D one gets a trailing dim)."""
    return _atleast(_atleast_3d, tensors)


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    return cat([_atleast_3d(t_) for t_ in _promote_all(tensors, "dstack")], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    ts = _promote_all(tensors, "column_stack")
    return cat([reshape(t_, -1, 1) if t_.ndim < 2 else t_ for t_ in ts], 1)


def repeat_interleave(
    input: Tensor, repeats: Any = None, dim: int | None = None, *, output_size: Any = None
) -> Tensor:
    """Repeat each element ``repeats`` times (an int or a 1-D tensor of counts) along
    ``dim`` (the flattened tensor when ``dim`` is None). With a tensor of counts alone,
    ``repeat_interleave(counts)`` repeats its positions: ``[1, 0, 2] -> [0, 2, 2]``.
    ``output_size``, when given, must be the result's length along ``dim`` (torch uses it
    to skip a device sync; here it is checked)."""
    from darklib.ops.indexing import Take, index_select

    if output_size is not None:
        if isinstance(output_size, Tensor) and output_size.ndim == 0:
            output_size = output_size.item()
        if isinstance(output_size, builtins.bool) or not isinstance(output_size, int | np.integer):
            raise InvalidType(
                f"repeat_interleave(): argument 'output_size' must be int, not "
                f"{type(output_size).__name__}"
            )
        output_size = int(output_size)
    if repeats is None:
        counts = _check_tensor(input, "repeat_interleave")
        if counts.ndim != 1 or counts.array.dtype.kind not in "iu":
            raise RuntimeError(
                "repeat_interleave(): repeats alone must be a 1-D integer tensor, got "
                f"{counts.dtype} of shape {tuple(counts.shape)}"
            )
        positions = Tensor._wrap(get_xp(counts.array).arange(counts.shape[0], dtype=np.int64))
        return repeat_interleave(positions, counts, output_size=output_size)
    x = _check_tensor(input, "repeat_interleave")
    if dim is None:
        x, d = reshape(x, -1), 0
    else:
        d = norm_dim(dim, x.ndim, "repeat_interleave")
    n = x.shape[d] if x.ndim else 1
    reps = repeats.array if isinstance(repeats, Tensor) else np.asarray(repeats)
    reps = np.asarray(reps.get() if hasattr(reps, "get") else reps)
    if reps.ndim == 0:
        reps = np.full(n, int(reps))
    if reps.shape != (n,) or (reps < 0).any():
        got = f"shape {list(reps.shape)}" if reps.shape != (n,) else f"{reps.min()} (negative)"
        raise RuntimeError(
            f"repeat_interleave(): repeats must be a non-negative int or have shape ({n},), "
            f"got repeats of {got} for input of shape {list(x.shape)} along dim {d}"
        )
    if output_size is not None and output_size != int(reps.sum()):
        total = int(reps.sum())
        if isinstance(repeats, Tensor):  # (torch's two messages, by the kind of repeats)
            raise RuntimeError(
                f"repeat_interleave: allocated size does not match required size: "
                f"output_size={output_size}, but the repeats sum to {total}"
            )
        raise RuntimeError(
            f"repeat_interleave: Invalid output_size, expected {total} but got {output_size}"
        )
    idx = np.repeat(np.arange(n), reps)
    if x.ndim and reps.size and (reps == reps[0]).all():
        # one count for all: the gradient is a reshape and a sum (no scatter)
        idx = to_device(idx, device_of(x.array))
        return Take.apply(x, idx, d, repeats=int(reps[0]))
    return index_select(x, d, Tensor._wrap(idx))


def tensor_split(
    input: Tensor,
    indices_or_sections: Any = None,
    dim: int = 0,
    *,
    sections: Any = None,
    indices: Any = None,
) -> tuple[Tensor, ...]:
    """Split into ``n`` nearly equal pieces (the first ``size % n`` one longer), or at the
    listed indices (Python's slice rules: negative ones count from the end, pieces between
    decreasing ones are empty). ``indices_or_sections`` may be an int, a sequence of ints,
    a 0-d int64 tensor (sections) or a 1-D int64 tensor (indices), as torch."""
    x = _check_tensor(input, "tensor_split")
    ios = indices_or_sections
    if ios is None:
        ios = sections if sections is not None else indices
    if ios is None:
        raise InvalidType("tensor_split(): missing 'indices_or_sections' (or sections=/indices=)")
    if x.ndim == 0:
        raise RuntimeError(
            "tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims"
        )
    if isinstance(ios, Tensor):
        if ios.array.dtype != np.int64:
            raise RuntimeError(
                "tensor_split expected tensor_indices_or_sections to have dtype of long, but "
                f"got {ios.dtype}"
            )
        if ios.ndim > 1:
            raise RuntimeError(
                "tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                f"one-dimensional tensor, but got a tensor with {ios.ndim} dims"
            )
        ios = ios.item() if ios.ndim == 0 else ios.tolist()
    elif isinstance(ios, builtins.bool) or not isinstance(
        ios, int | np.integer | Sequence | np.ndarray
    ):
        raise InvalidType(
            f"tensor_split(): indices_or_sections must be an int, a sequence of ints or an "
            f"int64 tensor, not {type(ios).__name__}"
        )
    d = _split_dim(x, dim, "tensor_split")
    n = x.shape[d]
    if isinstance(ios, int | np.integer):
        k = int(ios)
        if k <= 0:
            raise RuntimeError(f"tensor_split(): number of sections must be larger than 0, got {k}")
        q, r = divmod(n, k)
        bounds: list = [0]
        for i in range(k):
            bounds.append(bounds[-1] + q + (1 if i < r else 0))
    else:
        bounds = [0, *[_int(i, "tensor_split", "index") for i in ios], None]
    return tuple(Slice.apply(x, _axis_key(d, slice(a, b))) for a, b in itertools.pairwise(bounds))


def _directional_split(op: str, need: int, x: Any, args: tuple) -> tuple[Tensor, ...]:
    """hsplit/vsplit/dsplit: tensor_split along dim 1 (0 for 1-D hsplit), 0 or 2, where an
    int must divide that dim evenly."""
    x = _check_tensor(x, op)
    if x.ndim < need:
        raise RuntimeError(
            f"{op}(): requires a tensor with at least {need} dimension(s), but got a tensor "
            f"with {x.ndim} dimensions"
        )
    d = {"hsplit": 1 if x.ndim > 1 else 0, "vsplit": 0, "dsplit": 2}[op]
    ios = args[0] if len(args) == 1 else args  # (the method takes the indices as varargs)
    if isinstance(ios, Tensor) and ios.ndim == 0 and ios.array.dtype.kind in "iu":
        ios = ios.item()
    if isinstance(ios, builtins.bool) or not isinstance(ios, int | np.integer | Sequence):
        raise InvalidType(
            f"{op}(): expected an int (sections) or a sequence of ints (indices), got "
            f"{type(ios).__name__}"
        )
    if isinstance(ios, int | np.integer):
        k, size = int(ios), x.shape[d]
        if k == 0 or size % builtins.abs(k) != 0:  # (C's %: -2 passes for 6, as torch)
            raise RuntimeError(
                f"{op}(): attempted to split along dimension {d}, but the size of the "
                f"dimension {size} is not divisible by the split_size {k}"
            )
    return tensor_split(x, ios, d)


def hsplit(input: Tensor, *indices_or_sections: Any) -> tuple[Tensor, ...]:
    """Split along dim 1 (dim 0 of a 1-D tensor) into equal sections or at indices."""
    return _directional_split("hsplit", 1, input, indices_or_sections)


def vsplit(input: Tensor, *indices_or_sections: Any) -> tuple[Tensor, ...]:
    """Split along dim 0 (of a tensor of at least 2 dims)."""
    return _directional_split("vsplit", 2, input, indices_or_sections)


def dsplit(input: Tensor, *indices_or_sections: Any) -> tuple[Tensor, ...]:
    """Split along dim 2 (of a tensor of at least 3 dims)."""
    return _directional_split("dsplit", 3, input, indices_or_sections)


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first towards the
    second)."""
    x = _check_tensor(input, "rot90")
    if len(dims) != 2:
        raise RuntimeError(f"rot90(): expected two dims, got {list(dims)}")
    a, b = norm_dim(dims[0], x.ndim, "rot90"), norm_dim(dims[1], x.ndim, "rot90")
    if a == b:
        raise RuntimeError(f"rot90(): dims must differ, got {list(dims)}")
    k %= 4
    if k == 1:
        return transpose(flip(x, b), a, b)
    if k == 2:
        return flip(x, a, b)
    if k == 3:
        return flip(transpose(x, a, b), b)
    return Reshape.apply(x, x.shape)


def diff(
    input: Tensor,
    n: int = 1,
    dim: int = -1,
    prepend: Tensor | None = None,
    append: Tensor | None = None,
) -> Tensor:
    """``n``-th forward difference along ``dim`` (after joining ``prepend``/``append``)."""
    x = _check_tensor(input, "diff")
    if n < 0:
        raise RuntimeError(f"diff: order must be non-negative but got {n}")
    d = norm_dim(dim, x.ndim, "diff")
    parts = [t_ for t_ in (prepend, x, append) if t_ is not None]
    if len(parts) > 1:
        x = cat(parts, d)
    for _ in range(n):
        m = x.shape[d]
        hi = Slice.apply(x, _axis_key(d, slice(1, m)))
        lo = Slice.apply(x, _axis_key(d, slice(0, builtins.max(m - 1, 0))))
        if x.array.dtype.kind == "b":
            x = Tensor._wrap(hi.array != lo.array)
        else:
            from darklib.ops.elementwise import sub

            x = sub(hi, lo)
    return x


def _windows(x: Any, d: int, size: int, step: int) -> Any:
    """The windows of ``x`` along axis ``d`` as a strided view (writable where ``x`` is)."""
    n = x.shape[d]
    count = (n - size) // step + 1
    shape = (*x.shape[:d], count, *x.shape[d + 1 :], size)
    strides = (*x.strides[:d], x.strides[d] * step, *x.strides[d + 1 :], x.strides[d])
    return get_xp(x).lib.stride_tricks.as_strided(x, shape, strides)


class Unfold(Function):
    """Sliding windows along one dim as a new last dim: a view, as torch's Tensor.unfold;
    the gradient sums each window back onto the elements it covers (windows may overlap)."""

    @staticmethod
    def view(x, d, size, step):
        return _windows(x, d, size, step)

    @staticmethod
    def forward(ctx, x, d, size, step):
        ctx.in_shape, ctx.args = x.shape, (d, size, step)
        return _windows(x, d, size, step)

    @staticmethod
    def backward(ctx, g):
        d, size, step = ctx.args
        gx = get_xp(g).zeros(ctx.in_shape, g.dtype)
        count = g.shape[d]
        for k in range(size):  # offset k of every window: one strided add along d
            key = (slice(None),) * d + (slice(k, k + step * (count - 1) + 1, step),)
            gx[key] += g[..., k]
        return gx, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        return higher_order.linear_op(ctx, g, *ctx.args)


def storage_of(a: Any) -> Any:
    """The array owning the memory ``a`` views (its storage), following ``.base`` (and
    through the stand-in object NumPy's as_strided puts between a view and its base)."""
    while (b := getattr(a, "base", None)) is not None:
        if not hasattr(b, "dtype"):
            b = getattr(b, "base", None) if hasattr(b, "__array_interface__") else None
            if b is None or not hasattr(b, "dtype"):
                break
        a = b
    return a


def _address(a: Any) -> int:
    return int(a.__array_interface__["data"][0]) if isinstance(a, np.ndarray) else int(a.data.ptr)


def storage_offset(a: Any) -> int:
    """Elements between the start of ``a``'s storage and ``a``'s first element."""
    return (_address(a) - _address(storage_of(a))) // a.itemsize


def _strided_positions(xp: Any, shape: tuple, strides: tuple, offset: int) -> Any:
    """Each element's position in the storage, for a layout in elements."""
    pos = xp.full(shape, offset, np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        pos += (xp.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(shape) - d - 1))
    return pos


def _as_strided(x: Any, size: tuple, stride: tuple, offset: int) -> Any:
    root = storage_of(x)
    if root.dtype.itemsize != x.itemsize or not root.flags.c_contiguous:
        raise InvalidValue(
            "as_strided: the tensor's storage is not a plain contiguous array of its dtype"
        )
    flat = root.reshape(-1)
    return get_xp(x).lib.stride_tricks.as_strided(
        flat[offset:], size, tuple(s * x.itemsize for s in stride)
    )


class AsStrided(Function):
    """A view of the input's storage with the given sizes, strides and offset (in
    elements), as torch's as_strided; the gradient sums onto the storage positions the
    view reads and gives each input element its position's sum."""

    @staticmethod
    def view(x, size, stride, offset):
        return _as_strided(x, size, stride, offset)

    @staticmethod
    def forward(ctx, x, size, stride, offset):
        ctx.layout = (size, stride, offset)
        ctx.in_layout = (x.shape, tuple(s // x.itemsize for s in x.strides), storage_offset(x))
        ctx.storage_size = storage_of(x).size
        return _as_strided(x, size, stride, offset)

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        out_pos = _strided_positions(xp, *ctx.layout).reshape(-1)
        # (positions the view reads more than once sum their gradients)
        total = xp.bincount(out_pos, g.reshape(-1), minlength=ctx.storage_size).astype(g.dtype)
        return total[_strided_positions(xp, *ctx.in_layout)], None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        layout, in_layout, size = ctx.layout, ctx.in_layout, ctx.storage_size

        def forward_map(v):  # the view as a linear map of the input's values
            xp = get_xp(v)
            storage = xp.zeros(size, v.dtype)
            storage[_strided_positions(xp, *in_layout)] = v
            return storage[_strided_positions(xp, *layout)]

        return higher_order.linear_adjoint(ctx, g, forward_map), None, None, None


def as_strided(input: Tensor, size: Any, stride: Any, storage_offset: int | None = None) -> Tensor:
    """A view of ``input``'s storage with ``size``, ``stride`` (in elements) and
    ``storage_offset`` (default: the input's own), as torch's as_strided."""
    x = _check_tensor(input, "as_strided")
    size = tuple(_int(n, "as_strided", "size") for n in size)
    stride = tuple(_int(s, "as_strided", "stride") for s in stride)
    if len(size) != len(stride):
        raise InvalidValue(
            f"as_strided: size {list(size)} and stride {list(stride)} have different lengths"
        )
    if any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise InvalidValue(
            f"as_strided: sizes and strides must be non-negative, got {list(size)}, {list(stride)}"
        )
    root = storage_of(x.array)
    off = (
        x.storage_offset()
        if storage_offset is None
        else _int(storage_offset, "as_strided", "storage_offset")
    )
    end = off + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else off - 1
    if off < 0 or end >= root.size:
        raise InvalidValue(
            f"as_strided: size {list(size)}, stride {list(stride)} and storage offset {off} "
            f"reach element {end} of a storage of {root.size} elements"
        )
    return AsStrided.apply(x, size, stride, off)


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Every window of ``size`` elements along ``dimension``, ``step`` apart, as a new last
    dim: ``arange(6).unfold(0, 2, 2)`` is ``[[0, 1], [2, 3], [4, 5]]``; a view of the
    input, as torch's Tensor.unfold."""
    x = _check_tensor(input, "unfold")
    if x.ndim == 0:  # torch: the window alone, (size,)
        return reshape(unfold(reshape(x, 1), 0, size, step), -1)
    d = norm_dim(dimension, x.ndim, "unfold")
    n = x.shape[d]
    if size < 0 or size > n or step <= 0:
        raise RuntimeError(
            f"unfold(): size {size} must be in [0, {n}] (the size of dim {d}) and step "
            f"{step} positive, for input of shape {tuple(x.shape)}"
        )
    return Unfold.apply(x, d, int(size), int(step))
