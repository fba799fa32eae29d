"""Indexing: ``x[key]`` and ``x[key] = v``, index_select, gather, scatter/scatter_add,
masked_fill, nonzero, take_along_dim, masked_select, unique.

Keys follow NumPy's rules, which are PyTorch's for ints, slices, None, Ellipsis, integer
arrays and boolean masks. Basic keys give views and a zeros-plus-assign backward; integer
keys go backward through a scatter-add that sums repeated indices in index order (on the
CPU rounds of fancy-index additions in which no index repeats, or NumPy's fast 1-D
``add.at``; ``add.at`` atomics on the GPU).
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from darklib import autograd
from darklib import dtypes as _dt
from darklib.autograd import Function, Node, higher_order
from darklib.backend import device_of, get_xp, to_device
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.ops.elementwise import Where
from darklib.ops.shape import Slice, _check_tensor, expand, movedim, norm_dim, reshape
from darklib.tensor import Tensor, _self_overlapping

_I64 = np.dtype(np.int64)
_FULL = slice(None)


# ------------------------------------------------------------------ scatter-add kernels

# the dtypes CuPy's add.at (its scatter_add) accepts
_GPU_ADD_AT = frozenset(
    np.dtype(t) for t in ("float16", "float32", "float64", "int32", "uint32", "uint64")
)


def _add_at(out: Any, key: Any, vals: Any) -> None:
    """``out[key] += vals`` with repeated positions summed, as ``np.add.at``. CuPy's add.at
    refuses the other dtypes (int64 among them): those sum in int64 with darklib's
    atomicAdd kernel and wrap back to ``out``'s dtype, as NumPy's integer sums wrap."""
    xp = get_xp(out)
    if xp is np or out.dtype in _GPU_ADD_AT:
        xp.add.at(out, key, vals)
        return
    from darklib.kernels import cuda

    lin = xp.arange(out.size, dtype=_I64).reshape(out.shape)[key]
    v = xp.broadcast_to(xp.asarray(vals, dtype=out.dtype), lin.shape).astype(_I64)
    sums = cuda.index_add(out.size, lin.reshape(-1), v.reshape(-1)).reshape(out.shape)
    out[...] = (out.astype(_I64) + sums).astype(out.dtype)


def _index_add(shape: tuple, axis: int, idx: Any, src: Any, out: Any = None) -> Any:
    """``out`` (zeros(shape) when None) with ``src`` summed into positions ``idx`` (1-D,
    >= 0) along ``axis``; returns it. ``out`` must be C-contiguous.

    ``src`` has ``shape`` except ``idx.size`` along ``axis``. Repeated indices add up, in
    index order (as torch's CPU loop and ``np.add.at``) where none repeats very often.
    """
    xp = get_xp(src)
    if out is None:
        out = xp.zeros(shape, src.dtype)
    k = idx.size
    if k == 0 or out.size == 0:
        return out
    pre, n = int(np.prod(shape[:axis])), shape[axis]
    post = int(np.prod(shape[axis + 1 :]))
    if xp is not np:
        # (k, rest) rows of flat positions and one add.at: atomics on the GPU
        lin = (idx.reshape(-1, 1) * post + xp.arange(post)).reshape(1, k, post)
        lin = lin + (xp.arange(pre) * (n * post)).reshape(pre, 1, 1)
        _add_at(out.reshape(-1), lin.reshape(-1), src.reshape(-1))
        return out
    _scatter_add3(out.reshape(pre, n, post), idx, np.ascontiguousarray(src).reshape(pre, k, post))
    return out


# rows at least this long (elements) scatter a row at a time, shorter ones element-wise
_ROW_MIN = 16
# the rounds of :func:`_dup_rounds` stop when fewer indices than this still repeat
_TAIL_RUNS = 32
# flat positions built at once by the element-wise scatter (bounds its scratch memory)
_CHUNK = 1 << 20


def _scatter_add3(out3: np.ndarray, idx: np.ndarray, src3: np.ndarray) -> None:
    """NumPy: ``out3[:, idx[j]] += src3[:, j]`` for each j, in order. out3 (pre, n, post)
    and src3 (pre, k, post) are C-contiguous, idx (k,) is in [0, n).

    Short rows (post < _ROW_MIN) go through one 1-D ``np.add.at`` over flat positions,
    which NumPy runs in a fast sequential loop (its N-d form is 20x slower). Long rows go in
    rounds without repeats (:func:`_dup_rounds`), each one fancy-index ``+=`` of whole
    rows; ``np.add.reduceat`` along a leading axis walks it column by column and is slower
    still."""
    pre, n, post = out3.shape
    k = idx.size
    if post < _ROW_MIN:
        flat, vals = out3.reshape(-1), src3.reshape(-1)
        if pre == 1 and post == 1:
            np.add.at(flat, idx, vals)
            return
        step = builtins.max(1, _CHUNK // (k * post))  # rows of ``pre`` per chunk
        lin = (np.arange(builtins.min(step, pre), dtype=_I64) * n)[:, None] + idx
        if post > 1:
            lin = lin[:, :, None] * post + np.arange(post, dtype=_I64)
        lin = lin.reshape(-1)
        for i in range(0, pre, step):
            m = builtins.min(step, pre - i)
            np.add.at(
                flat[i * n * post : (i + m) * n * post],
                lin[: m * k * post],
                vals[i * k * post : (i + m) * k * post],
            )
        return
    rounds, tails = _dup_rounds(idx, n)
    rows_out, rows_src = out3.reshape(pre * n, post), src3.reshape(pre * k, post)
    if pre > 1:
        on = (np.arange(pre, dtype=_I64) * n)[:, None]
        ok = (np.arange(pre, dtype=_I64) * k)[:, None]
    for p in rounds:  # no index repeats within a round: a plain fancy-index add is exact
        at = idx[p] if pre == 1 else (on + idx[p]).reshape(-1)
        part = np.take(rows_src, p if pre == 1 else (ok + p).reshape(-1), axis=0)
        part += np.take(rows_out, at, axis=0)  # (np.take gathers faster than x[at])
        rows_out[at] = part
    for p in tails:  # the rest of one often repeated index, in one sum (in order, as
        # NumPy adds along an axis that is not the innermost: row after row)
        at = out3[:, idx[p[0]]]
        terms = np.concatenate((at[:, None], src3[:, p]), axis=1)
        np.add.reduce(terms, axis=1, dtype=src3.dtype, out=at)


def _dup_rounds(idx: np.ndarray, n: int) -> tuple[list, list]:
    """Positions of ``idx`` (1-D, in [0, n)) in rounds in which no index repeats: round r
    holds every index's r-th occurrence, so that adding the rounds one after the other sums
    each index's entries in index order. Once fewer than ``_TAIL_RUNS`` indices are left
    that repeat more often, their remaining occurrences come back as ``tails``, one array
    per index, to be summed at once (a few calls instead of one round per repeat).
    Returns (rounds, tails); within a round the indices ascend."""
    k = idx.size
    # a stable sort groups the repeats in index order; 16-bit keys sort by radix, in O(k)
    order = np.argsort(idx.astype(np.uint16) if n <= 1 << 16 else idx, kind="stable")
    s = idx[order]
    new = np.empty(k, np.bool_)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    if starts.size == k:  # no repeats: one round
        return [order], []
    lengths = np.diff(np.append(starts, k))
    # longer[r]: how many indices occur more than r times (the size of round r)
    longer = starts.size - np.cumsum(np.bincount(lengths))
    few = np.flatnonzero(longer[1:] < _TAIL_RUNS)
    c = int(few[0]) + 1  # rounds kept (longer[-1] is 0: there is one)
    rank = np.arange(k) - np.repeat(starts, lengths)  # occurrence number, in sorted order
    key = np.minimum(rank, c)
    by_rank = np.argsort(key.astype(np.uint16) if c < 1 << 16 else key, kind="stable")
    ends = np.cumsum(longer[:c])
    pos = order[by_rank]
    rounds = [pos[a:b] for a, b in zip(np.append(0, ends[:-1]), ends, strict=True)]
    tails = [order[starts[j] + c : starts[j] + lengths[j]] for j in np.flatnonzero(lengths > c)]
    return rounds, tails


def _flat_index(shape: tuple, axis: int, idx: Any) -> Any:
    """Flat (C-order) positions in an array of ``shape`` of gather/scatter index ``idx``."""
    xp = get_xp(idx)
    nd = len(shape)
    strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    lin = idx.astype(_I64) * strides[axis] if nd else idx.astype(_I64)
    for d in range(nd):
        if d != axis and idx.shape[d] > 1:
            pos = xp.arange(idx.shape[d], dtype=_I64) * strides[d]
            lin = lin + pos.reshape((-1,) + (1,) * (nd - d - 1))
    return lin


def _scatter_add_flat(size: int, lin: Any, vals: Any) -> Any:
    xp = get_xp(vals)
    out = xp.zeros(size, vals.dtype)
    xp.add.at(out, lin.reshape(-1), vals.reshape(-1))
    return out


def _sum_repeats(g: Any, shape: tuple, axis: int, r: int) -> Any:
    """Adjoint of repeating each entry along ``axis`` ``r`` times (``shape``: the input's):
    the r copies of each entry summed, one after the other (torch's index_add order)."""
    n = shape[axis]
    if r == 0 or n == 0:
        return get_xp(g).zeros(shape, g.dtype)
    v = g.reshape((*shape[:axis], n, r, *shape[axis + 1 :]))
    if r > 16:
        return v.sum(axis=axis + 1, dtype=g.dtype)
    pick = (_FULL,) * (axis + 1)
    out = v[(*pick, 0)].copy()
    for j in range(1, r):
        out += v[(*pick, j)]
    return out


def _one_axis(key: tuple, ndim: int) -> tuple[int, Any] | None:
    """``(axis, index array)`` when ``key`` (from :func:`_prepare_key`) is one integer array
    among full slices and Ellipses, so that ``x[key]`` indexes one axis; else None."""
    arrays = [k for k in key if hasattr(k, "dtype")]
    if len(arrays) != 1 or arrays[0].dtype.kind not in "iu":
        return None
    if not builtins.all(
        k is Ellipsis or (isinstance(k, slice) and k == _FULL) or hasattr(k, "dtype") for k in key
    ):
        return None
    rest = ndim - (len(key) - builtins.sum(k is Ellipsis for k in key))  # Ellipsis' dims
    d = 0
    for k in key:
        if hasattr(k, "dtype"):
            return d, k
        d += rest if k is Ellipsis else 1
    return None


# ------------------------------------------------------------------ key handling


def _to_backend(a: Any, like: Any) -> Any:
    if type(a) is type(like):
        return a
    return to_device(a, device_of(like))


def _index_array(k: Any, arr: Any) -> Any:
    if isinstance(k, Tensor):
        a = k.array
        if a.dtype == np.uint8:  # a uint8 tensor is a mask, as in torch
            a = a.astype(np.bool_)
        elif a.dtype.kind in "iu" and a.dtype.itemsize < 4:  # int8/int16: torch refuses
            raise OutOfRange(
                f"index: tensors used as indices must be long, int, byte or bool tensors, "
                f"got {k.dtype}; convert it with .long()"
            )
    elif isinstance(k, np.ndarray) or hasattr(k, "__cuda_array_interface__"):
        a = k
    elif isinstance(k, list | tuple | range):
        if any(isinstance(v, Tensor) for v in k):
            k = [v.item() if isinstance(v, Tensor) else v for v in k]
        a = np.asarray(k)
        if a.size == 0:
            a = a.astype(_I64)
    else:
        raise OutOfRange(
            f"index: only integers, slices (`:`), ellipsis (`...`), None and integer or "
            f"boolean tensors/arrays are valid indices, got {type(k).__name__}"
        )
    if a.dtype.kind not in "biu":
        raise OutOfRange(
            f"index: tensors used as indices must be long, int or bool tensors, got {a.dtype}"
        )
    return _to_backend(a, arr)


def _prepare_key(key: Any, arr: Any) -> tuple[tuple, str, Any]:
    """Normalise ``key`` for the array library and check it against ``arr.shape``.

    Returns (key, kind, take) where kind is 'basic', 'bool' or 'int', and ``take`` is
    (axis, index array) when the key is one integer array among full slices.
    """
    if isinstance(key, range):  # a range indexes as the list of its values (torch's)
        key = list(key)
    if isinstance(key, list) and len(key) < 32 and builtins.any(_tuple_like(k) for k in key):
        key = tuple(key)  # torch reads x[[[0, 1], [1, 2]]] as x[[0, 1], [1, 2]]
    elif not isinstance(key, tuple):
        key = (key,)
    items: list = []
    kind = "basic"
    for k in key:
        if k is None or k is Ellipsis:
            items.append(k)
        elif isinstance(k, slice):
            items.append(
                slice(*(None if v is None else _as_int(v) for v in (k.start, k.stop, k.step)))
            )
        elif isinstance(k, builtins.bool | np.bool_):
            items.append(builtins.bool(k))
            kind = "bool" if kind == "basic" else kind
        elif isinstance(k, int | np.integer) or (
            isinstance(k, Tensor) and k.ndim == 0 and k.array.dtype.kind in "iu" and not k.is_cuda
        ):  # (a 0-d tensor of any integer dtype is an int, as in torch)
            items.append(_as_int(k))
        else:
            a = _index_array(k, arr)
            items.append(a)
            if a.dtype.kind == "b":
                kind = "bool" if kind == "basic" else kind
            else:
                kind = "int"
    shape, ndim = arr.shape, arr.ndim
    consumed = 0
    for k in items:
        if k is None or k is Ellipsis or isinstance(k, builtins.bool):
            continue
        consumed += k.ndim if _is_bool_array(k) else 1
    if consumed > ndim:
        raise OutOfRange(
            f"index: too many indices for tensor of dimension {ndim} (shape {list(shape)})"
        )
    if builtins.sum(k is Ellipsis for k in items) > 1:
        raise OutOfRange("index: an index can only have a single ellipsis ('...')")
    dim = 0
    arrays = []
    for k in items:
        if k is Ellipsis:
            dim += ndim - consumed
        elif k is None or isinstance(k, builtins.bool):
            continue
        elif isinstance(k, int):
            n = shape[dim]
            if k < -n or k >= n:
                raise OutOfRange(f"index {k} is out of bounds for dimension {dim} with size {n}")
            dim += 1
        elif isinstance(k, slice):
            _check_step(k)
            dim += 1
        elif _is_bool_array(k):
            if tuple(k.shape) != tuple(shape[dim : dim + k.ndim]):
                raise OutOfRange(
                    f"The shape of the mask {list(k.shape)} at index {dim} does not match the "
                    f"shape of the indexed tensor {list(shape)} at index {dim}"
                )
            dim += k.ndim
        else:
            _check_bounds(k, shape[dim], dim, "index", allow_negative=True)
            arrays.append((dim, k))
            dim += 1
    take = None
    if (
        kind == "int"
        and len(arrays) == 1
        and builtins.all(
            k is Ellipsis or (isinstance(k, slice) and k == _FULL) or k is arrays[0][1]
            for k in items
        )
    ):
        take = arrays[0]
    if not builtins.any(k is Ellipsis for k in items):
        items.append(Ellipsis)  # makes NumPy return 0-d arrays (views), never scalars
    return tuple(items), kind, take


def _tuple_like(k: Any) -> bool:
    """Whether a list index holding ``k`` is read as a tuple of indices (torch's rule)."""
    return (
        k is None
        or k is Ellipsis
        or isinstance(k, slice | Tensor | np.ndarray)
        or (isinstance(k, Sequence) and not isinstance(k, str))
    )


def _is_bool_array(k: Any) -> bool:
    return hasattr(k, "dtype") and k.dtype.kind == "b"


def _as_int(v: Any) -> int:
    if isinstance(v, Tensor):
        if v.array.size != 1 or v.array.dtype.kind not in "iu":
            raise OutOfRange(
                "index: only integer tensors of a single element can be converted to an index"
            )
        return int(v.item())
    try:
        return operator.index(v)
    except TypeError:
        raise OutOfRange(f"index: slice bounds must be integers, got {type(v).__name__}") from None


def index_range(idx: Any) -> tuple[int, int]:
    """The smallest and largest entry of a non-empty index array (one device-to-host
    transfer on the GPU, not two)."""
    xp = get_xp(idx)
    if xp is np:
        return int(idx.min()), int(idx.max())
    lo, hi = xp.stack((idx.min(), idx.max())).get().tolist()
    return int(lo), int(hi)


def _check_bounds(idx: Any, n: int, dim: int, op: str, allow_negative: bool) -> None:
    if idx.size == 0:
        return
    lo, hi = index_range(idx)
    low = -n if allow_negative else 0
    if lo < low or hi >= n:
        bad = lo if lo < low else hi
        raise OutOfRange(f"{op}: index {bad} is out of bounds for dimension {dim} with size {n}")


# ------------------------------------------------------------------ Functions


class Take(Function):
    """``x[..., idx, ...]`` along one axis (also index_select). ``repeats=r`` says that
    ``idx`` is ``arange(n)`` with each entry r times (repeat_interleave): the gradient is
    then a reshape and a sum."""

    @staticmethod
    def forward(ctx, x, idx, axis, repeats=None):
        ctx.shape, ctx.axis, ctx.repeats = x.shape, axis, repeats
        ctx.save_for_backward(idx)
        xp = get_xp(x)
        if repeats is not None and xp is np:
            return np.repeat(x, repeats, axis=axis)  # (the same values, several times faster)
        return xp.take(x, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        xp = get_xp(g)
        n, axis = ctx.shape[ctx.axis], ctx.axis
        if ctx.repeats is not None:
            return _sum_repeats(g, ctx.shape, axis, ctx.repeats), None, None
        flat = idx.reshape(-1).astype(_I64, copy=False)
        if xp is not np or (flat.size and flat.min() < 0):
            flat = xp.where(flat < 0, flat + n, flat)
        src = g.reshape((*ctx.shape[:axis], flat.size, *ctx.shape[axis + 1 :]))
        return _index_add(ctx.shape, axis, flat, src), None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        axis = ctx.axis
        return higher_order.linear_adjoints(
            ctx, g, {0: lambda v: get_xp(v).take(v, idx, axis=axis)}
        )


class AdvancedIndex(Function):
    """Boolean masks and integer arrays in any combination (NumPy's advanced indexing)."""

    @staticmethod
    def forward(ctx, x, key, has_int):
        ctx.shape, ctx.key, ctx.has_int = x.shape, key, has_int
        return x[key]

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        shape = ctx.shape
        if not ctx.has_int:  # masks select each position at most once
            gx = xp.zeros(shape, g.dtype)
            gx[ctx.key] = g
            return gx, None, None
        size = int(np.prod(shape))
        lin = xp.arange(size, dtype=_I64).reshape(shape)[ctx.key]
        return _scatter_add_flat(size, lin, g).reshape(shape), None, None

    @staticmethod
    def backward_graph(ctx, g):
        key = ctx.key
        return higher_order.linear_adjoints(ctx, g, {0: lambda v: v[key]})


class IndexPut(Function):
    @staticmethod
    def forward(ctx, x, v, key, accumulate):
        out = x.copy()
        if accumulate:
            xp = get_xp(x)
            along = _one_axis(key, x.ndim) if xp is np else None
            if along is None:
                vals = xp.broadcast_to(xp.asarray(v, dtype=x.dtype), out[key].shape)
                _add_at(out, key, vals)
            else:  # x[..., idx, ...] += v along one axis: index_add's row scatter
                d, idx = along
                n = x.shape[d]
                sel = (*x.shape[:d], *idx.shape, *x.shape[d + 1 :])
                vals = np.broadcast_to(np.asarray(v, dtype=x.dtype), sel)
                flat = idx.reshape(-1).astype(_I64, copy=False)
                if flat.size and flat.min() < 0:
                    flat = np.where(flat < 0, flat + n, flat)
                vals = vals.reshape((*x.shape[:d], flat.size, *x.shape[d + 1 :]))
                _index_add(x.shape, d, flat, vals, out=out)
        else:
            out[key] = v
        ctx.key, ctx.accumulate = key, accumulate
        ctx.v_ndim = getattr(v, "ndim", 0)
        return out

    @staticmethod
    def backward(ctx, g):
        nx, nv = ctx.needs_input_grad[:2]
        gx = gv = None
        if nx:
            if ctx.accumulate:
                gx = g
            else:
                gx = g.copy()
                gx[ctx.key] = 0
        if nv:
            gv = g[ctx.key]
            if ctx.v_ndim > gv.ndim:  # the value had extra leading 1-dims
                gv = gv.reshape((1,) * (ctx.v_ndim - gv.ndim) + gv.shape)
        return gx, gv, None, None

    @staticmethod
    def backward_graph(ctx, g):
        key, acc, shape = ctx.key, ctx.accumulate, tuple(g.shape)

        def put(x, v):
            return IndexPut.forward(Node(IndexPut, ()), x, v, key, acc)

        return higher_order.linear_adjoints(
            ctx,
            g,
            {0: lambda u: put(u, 0), 1: lambda w: put(get_xp(w).zeros(shape, w.dtype), w)},
        )


class Gather(Function):
    @staticmethod
    def forward(ctx, x, idx, axis):
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(idx)
        sub = x[tuple(_FULL if d == axis else slice(0, n) for d, n in enumerate(idx.shape))]
        return get_xp(x).take_along_axis(sub, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        size = int(np.prod(ctx.shape))
        lin = _flat_index(ctx.shape, ctx.axis, idx)
        return _scatter_add_flat(size, lin, g).reshape(ctx.shape), None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        axis = ctx.axis
        return higher_order.linear_adjoints(
            ctx, g, {0: lambda v: Gather.forward(Node(Gather, ()), v, idx, axis)}
        )


class Scatter(Function):
    """scatter (``add=False``: writes, last one wins) and scatter_add (sums)."""

    @staticmethod
    def forward(ctx, x, src, idx, axis, add):
        out = x.copy()
        lin = _flat_index(x.shape, axis, idx).reshape(-1)
        flat = out.reshape(-1)
        sub = tuple(slice(0, n) for n in idx.shape)
        is_arr = not isinstance(src, builtins.bool | int | float)
        vals = src[sub].reshape(-1) if is_arr else src
        if add:
            _add_at(flat, lin, vals)
        else:
            flat[lin] = vals
        ctx.save_for_backward(idx)
        ctx.axis, ctx.add, ctx.sub = axis, add, sub
        ctx.src_shape = src.shape if is_arr else None
        return out

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        xp = get_xp(g)
        nx, ns = ctx.needs_input_grad[:2]
        lin = _flat_index(g.shape, ctx.axis, idx).reshape(-1)
        gx = gs = None
        if nx:
            if ctx.add:
                gx = g
            else:
                gx = g.copy()
                gx.reshape(-1)[lin] = 0
        if ns:
            picked = g.reshape(-1)[lin].reshape(idx.shape)
            if ctx.src_shape == idx.shape:
                gs = picked
            else:
                gs = xp.zeros(ctx.src_shape, g.dtype)
                gs[ctx.sub] = picked
        return gx, gs, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        axis, add, shape = ctx.axis, ctx.add, tuple(g.shape)

        def scatter(x, src):
            return Scatter.forward(Node(Scatter, ()), x, src, idx, axis, add)

        return higher_order.linear_adjoints(
            ctx,
            g,
            {
                0: lambda u: scatter(u, 0),
                1: lambda w: scatter(get_xp(w).zeros(shape, w.dtype), w),
            },
        )


class ScatterReduce(Function):
    """``scatter_reduce``: each position of ``x`` (flattened) reduced with the ``src``
    values aimed at it by ``idx`` along ``axis`` ('sum', 'prod', 'mean', 'amax', 'amin'),
    with or without its own value (``include_self``). Gradients as torch's: ties of amax
    and amin share evenly; prod handles zeros exactly."""

    @staticmethod
    def forward(ctx, x, src, idx, axis, reduce, include_self):
        xp = get_xp(x)
        ctx.legacy = reduce if reduce in _LEGACY_REDUCE else None
        reduce = _LEGACY_REDUCE.get(reduce, reduce)  # torch's forward takes 'max'/'min'
        lin = _flat_index(x.shape, axis, idx).reshape(-1)
        sub = tuple(slice(0, n) for n in idx.shape)
        vals = src[sub].reshape(-1)
        flat = x.reshape(-1)
        hit = xp.zeros(flat.size, np.bool_)
        hit[lin] = True
        keep = xp.ones((), np.bool_) if include_self else ~hit  # where x itself counts
        if reduce in ("sum", "mean"):
            out = xp.where(keep, flat, 0).astype(x.dtype)
            _add_at(out, lin, vals)
            if reduce == "mean":
                count = xp.zeros(flat.size, np.int64)
                _add_at(count, lin, xp.ones(lin.size, np.int64))
                count = xp.maximum(count + (1 if include_self else 0), 1)
                ctx.count = count
                out = (out // count if x.dtype.kind in "iu" else out / count).astype(x.dtype)
                out = xp.where(hit, out, flat)
        elif reduce in ("amax", "amin"):
            big = np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).max
            start = -big if reduce == "amax" else big
            out = xp.where(keep, flat, xp.asarray(start, x.dtype)).astype(x.dtype)
            _extreme_at(out, lin, vals, reduce)
        elif reduce == "prod":
            out = xp.where(keep, flat, 1).astype(x.dtype)
            _multiply_at(out, lin, vals)
        else:
            raise RuntimeError(
                f"scatter_reduce(): reduce must be 'sum', 'prod', 'mean', 'amax' or 'amin', "
                f"got {reduce!r}"
            )
        ctx.save_for_backward(x, src, idx, out)
        ctx.axis, ctx.reduce, ctx.include_self, ctx.sub = axis, reduce, include_self, sub
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        if ctx.legacy is not None:  # (as torch: forward only)
            raise RuntimeError(
                f"scatter_reduce backward: Expected 'reduce' to be one of 'sum', 'prod', "
                f"'mean', 'amax', 'amin' but got {ctx.legacy}."
            )
        x, src, idx, out = ctx.saved_tensors
        xp = get_xp(g)
        lin = _flat_index(x.shape, ctx.axis, idx).reshape(-1)
        vals = src[ctx.sub].reshape(-1)
        flat, gf = x.reshape(-1), g.reshape(-1)
        hit = xp.zeros(flat.size, np.bool_)
        hit[lin] = True
        self_in = hit & ctx.include_self  # x's value took part in the reduction
        reduce = ctx.reduce
        if reduce == "sum":
            gx, gv = xp.where(hit & ~self_in, 0, gf), gf[lin]
        elif reduce == "mean":
            share = gf / ctx.count
            gx, gv = xp.where(hit, xp.where(self_in, share, 0), gf), share[lin]
        elif reduce in ("amax", "amin"):  # the tied winners share the gradient
            won_v = vals == out[lin]
            # (torch counts x among the ties where it equals the result, included or not)
            ties = (flat == out).astype(g.dtype)
            _add_at(ties, lin, won_v.astype(g.dtype))
            share = gf / xp.maximum(ties, 1)
            gx = xp.where(hit, xp.where(self_in & (flat == out), share, 0), gf)
            gv = xp.where(won_v, share[lin], 0)
        else:  # prod: the product of the others, exactly also when some are 0
            zeros = (self_in & (flat == 0)).astype(np.int64)
            _add_at(zeros, lin, (vals == 0).astype(np.int64))
            nonzero = xp.where(self_in & (flat != 0), flat, 1).astype(g.dtype)
            _multiply_at(nonzero, lin, xp.where(vals == 0, 1, vals).astype(g.dtype))

            def others(v: Any, at: Any) -> Any:
                with np.errstate(divide="ignore", invalid="ignore"):
                    alone = xp.where((v == 0) & (zeros[at] == 1), nonzero[at], 0)
                    return xp.where(zeros[at] == 0, out[at] / xp.where(v == 0, 1, v), alone)

            positions = xp.arange(flat.size)
            gx = xp.where(self_in, gf * others(flat, positions), xp.where(hit, 0, gf))
            gv = gf[lin] * others(vals, lin)
        gs = None
        if ctx.needs_input_grad[1]:
            gs = xp.zeros(src.shape, g.dtype)
            gs[ctx.sub] = gv.reshape(idx.shape)
        return gx.reshape(x.shape).astype(g.dtype, copy=False), gs, None, None, None, None


_LEGACY_REDUCE = {"max": "amax", "min": "amin"}
_REDUCE_NAMES = ("sum", "prod", "mean", "amax", "amin")


def _multiply_at(out: Any, lin: Any, vals: Any) -> None:
    """``out[lin] *= vals`` (1-D) with repeated positions multiplied, as
    ``np.multiply.at``; on the GPU by :func:`_segment_reduce` (CuPy has no multiply.at)."""
    xp = get_xp(out)
    if xp is np:
        np.multiply.at(out, lin, vals)
    else:
        _segment_reduce(xp, out, lin, vals, xp.multiply)


def _segment_reduce(xp: Any, out: Any, lin: Any, vals: Any, op: Any) -> None:
    """``out[lin] = op(out[lin], vals)`` with repeated positions combined, as ``op.at``, in
    whole-array steps: the values sorted by position, each one combined with the one ``d``
    places on within its run of equal positions for d = 1, 2, 4, ..., so that after
    log2(n) rounds a run's first value holds the whole run's result; those combine into
    ``out`` at distinct positions. No atomics (CuPy has no multiply.at, and its atomic
    max/min drop NaN and round float64 through float32), a fixed number of rounds (no host
    sync), every dtype; for products as exact as any other order."""
    if lin.size == 0:
        return
    order = xp.argsort(lin)
    key, v = lin[order], vals[order].astype(out.dtype)
    d = 1
    for _ in range(int(key.size - 1).bit_length()):
        same = key[:-d] == key[d:]
        v[:-d] = xp.where(same, op(v[:-d], v[d:]), v[:-d])
        d *= 2
    first = xp.ones(key.size, np.bool_)
    first[1:] = key[1:] != key[:-1]
    at = key[first]
    out[at] = op(out[at], v[first])


def _extreme_at(out: Any, lin: Any, vals: Any, reduce: str) -> None:
    """out[lin] = max/min(out[lin], vals) with repeats, NaN winning (as torch)."""
    xp = get_xp(out)
    op = xp.maximum if reduce == "amax" else xp.minimum
    if xp is np:
        op.at(out, lin, vals)
    else:
        _segment_reduce(xp, out, lin, vals, op)


# ------------------------------------------------------------------ x[key], x[key] = v


def getitem(input: Tensor, key: Any) -> Tensor:
    """``input[key]`` with NumPy/PyTorch semantics; basic keys return views."""
    arr = input.array
    if type(key) is int and arr.ndim:
        n = arr.shape[0]
        if key < -n or key >= n:
            raise OutOfRange(f"index {key} is out of bounds for dimension 0 with size {n}")
        return Slice.apply(input, (key, Ellipsis))
    if type(key) is slice and arr.ndim:
        _check_step(key)
        if _plain_bounds(key):
            return Slice.apply(input, (key,))
    if isinstance(key, Tensor) and type(arr) is np.ndarray and arr.ndim:
        ka = key.array
        if type(ka) is np.ndarray and ka.dtype.kind in "iu" and ka.dtype.itemsize >= 4:
            try:  # NumPy's take checks the bounds (negative indices count from the end)
                return autograd.watch(Take.apply(input, ka, 0), key)
            except IndexError as e:
                raise OutOfRange(f"index: {e} (tensor of shape {list(arr.shape)})") from None
    k, kind, take = _prepare_key(key, arr)
    if kind == "basic":
        return Slice.apply(input, k)
    keys = key if isinstance(key, tuple | list) else (key,)
    if take is not None:
        return autograd.watch(Take.apply(input, take[1], take[0]), *keys)
    out = autograd.watch(AdvancedIndex.apply(input, k, kind == "int"), *keys)
    block = _advanced_block(k, arr.ndim)
    if block is not None:  # NumPy's placement of the indexed dims -> torch's
        npos, tpos, basic = block
        b = out.ndim - basic
        out = movedim(out, tuple(range(npos, npos + b)), tuple(range(tpos, tpos + b)))
    return out


def _advanced_block(items: tuple, ndim: int) -> tuple | None:
    """Where the dims of a key's index arrays land: ``(numpy_pos, torch_pos, basic)`` when
    NumPy and torch disagree (``basic``: the result dims the other items make; the index
    arrays make the rest), else None.

    NumPy counts integers among the advanced indices, torch applies them first as plain
    selections; so in ``x[0, :, idx]`` the integer and ``idx`` are apart for NumPy, whose
    result then starts with idx's dims, while for torch ``idx`` stands alone and its dims
    stay in place (after the ``:``). Likewise an Ellipsis that stands for no dims parts
    index arrays for NumPy only."""
    consumed = builtins.sum(
        (k.ndim if _is_bool_array(k) else 1)
        for k in items
        if not (k is None or k is Ellipsis or isinstance(k, builtins.bool))
    )

    def width(k: Any) -> int:  # result dims of a basic item
        return ndim - consumed if k is Ellipsis else 1

    def place(advanced: Callable[[Any], bool], skipped: Callable[[Any], bool]) -> int:
        at = [i for i, k in enumerate(items) if advanced(k)]
        between = [items[i] for i in range(at[0], at[-1] + 1) if not advanced(items[i])]
        if not builtins.all(skipped(k) for k in between):
            return 0  # split up: the indexed dims go first
        return builtins.sum(width(k) for k in items[: at[0]] if not skipped(k) and not advanced(k))

    def is_int(k: Any) -> bool:
        return isinstance(k, int)

    def is_array(k: Any) -> bool:  # (a scalar bool is an index array on a new dim in both)
        return hasattr(k, "dtype") or isinstance(k, builtins.bool)

    npos = place(lambda k: is_int(k) or is_array(k), lambda k: False)
    # (an Ellipsis standing for no dims does not part index arrays for torch either)
    tpos = place(is_array, lambda k: is_int(k) or (k is Ellipsis and width(k) == 0))
    if npos == tpos:
        return None
    basic = builtins.sum(width(k) for k in items if not (is_int(k) or is_array(k)))
    return npos, tpos, basic


def _check_step(k: slice) -> None:
    """Slice steps are positive, as in torch (NumPy's reversing steps are refused)."""
    step = 1 if k.step is None else _as_int(k.step)
    if step <= 0:
        hint = " (to reverse, use flip())" if step < 0 else ""
        raise InvalidValue(f"index: slice step must be greater than zero, got {step}{hint}")


def _plain_bounds(s: slice) -> bool:
    """Whether a slice's bounds are None or Python ints (NumPy takes it as it is)."""
    return (
        (s.start is None or type(s.start) is int)
        and (s.stop is None or type(s.stop) is int)
        and (s.step is None or type(s.step) is int)
    )


def _value_for(t: Tensor, value: Any) -> Any:
    """The assigned value as a tensor of t's dtype and device, or a Python scalar."""
    if isinstance(value, Tensor):
        if type(value.array) is not type(t.array):
            if value.ndim != 0:
                raise RuntimeError(
                    f"index_put: value is on {value.device} but the tensor is on "
                    f"{t.device}; move it with .to()"
                )
            value = value.to(t.device)
        return value if value.array.dtype == t.array.dtype else value.to(t.dtype)
    if isinstance(value, builtins.bool | int | float | np.generic):
        return _dt.fill_value(value, t.array.dtype, "index_put", to_inf=True)
    return Tensor._wrap(_to_backend(np.asarray(value), t.array).astype(t.array.dtype, copy=False))


def _index_put_key(t: Tensor, key: tuple, value: Any, accumulate: bool = False) -> Tensor:
    v = _value_for(t, value)
    out_shape = t.array[key].shape
    vs = tuple(v.shape) if isinstance(v, Tensor) else ()
    try:
        np.broadcast_shapes(
            tuple(n for n in vs[builtins.max(0, len(vs) - len(out_shape)) :]), out_shape
        )
        if builtins.any(n != 1 for n in vs[: builtins.max(0, len(vs) - len(out_shape))]):
            raise ValueError
    except ValueError:
        raise RuntimeError(
            f"index_put: shape mismatch: value tensor of shape {list(vs)} cannot "
            f"be broadcast to indexing result of shape {list(out_shape)}"
        ) from None
    return IndexPut.apply(t, v, key, accumulate)


def _in_numpy_order(t: Tensor, k: tuple, kind: str, value: Any) -> Any:
    """An assigned value laid out for ``t[k]`` as torch reads it, moved to NumPy's layout of
    ``t.array[k]`` (see :func:`_advanced_block`)."""
    if kind == "basic" or (not isinstance(value, Tensor) and np.ndim(value) == 0):
        return value
    block = _advanced_block(k, t.array.ndim)
    if block is None:
        return value
    shape = t.array[k].shape  # (only for such mixed keys: it gathers)
    npos, tpos, basic = block
    b = len(shape) - basic
    rest = [*shape[:npos], *shape[npos + b :]]
    theirs = [*rest[:tpos], *shape[npos : npos + b], *rest[tpos:]]
    if not isinstance(value, Tensor):
        value = Tensor._wrap(_to_backend(np.asarray(value), t.array))
    try:
        value = expand(value, tuple(np.broadcast_shapes(tuple(value.shape), tuple(theirs))))
    except ValueError:
        raise RuntimeError(
            f"index_put: shape mismatch: value tensor of shape {list(value.shape)} cannot "
            f"be broadcast to indexing result of shape {theirs}"
        ) from None
    return movedim(value, tuple(range(tpos, tpos + b)), tuple(range(npos, npos + b)))


def _check_put_value(t: Tensor, key: tuple, value: Tensor, accumulate: bool = False) -> None:
    """torch's index_put_ rule for a tensor value: its dtype must be the tensor's, except
    for a one-element value on the CPU with one boolean mask as the only index tensor,
    which torch runs as ``masked_fill_(mask, value.item())``: any dtype, but the number
    must fit the tensor's dtype ("value cannot be converted ... without overflow")."""
    if value.array.dtype == t.array.dtype:
        return
    arrays = [k for k in key if hasattr(k, "dtype")]
    masked = (
        not accumulate
        and value.array.size == 1
        and not value.is_cuda
        and len(arrays) == 1
        and arrays[0].dtype.kind == "b"
        and not builtins.any(isinstance(k, builtins.bool) for k in key)
    )
    if masked:
        _dt.fill_value(value.item(), t.array.dtype, "index_put")
        return
    names = _dt.TORCH_NAMES
    raise RuntimeError(
        "index_put: Index put requires the source and destination dtypes match, got "
        f"{names[t.array.dtype.name]} for the destination and {names[value.array.dtype.name]} "
        f"for the source (tensor {t.array.dtype.name}, value {value.array.dtype.name} of shape "
        f"{list(value.shape)}); convert the value with .to({t.array.dtype.name})"
    )


def setitem(self: Tensor, key: Any, value: Any) -> None:
    """``self[key] = value``: in place; differentiable for non-leaf tensors and for value.
    With index tensors in ``key``, a tensor value must have the tensor's dtype (see
    :func:`_check_put_value`); basic keys copy any dtype in, as torch's ``copy_``."""
    k, kind, _ = _prepare_key(key, self.array)
    if kind != "basic" and isinstance(value, Tensor):
        _check_put_value(self, k, value)
    value = _in_numpy_order(self, k, kind, value)
    track = autograd.is_grad_enabled() and (
        self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)
    )
    if not track:
        v = _value_for(self, value)
        if kind == "basic" and _self_overlapping(self.array):  # an expanded tensor
            Tensor._wrap(self.array[k])._write("setitem", v.array if isinstance(v, Tensor) else v)
            self._version += 1
            return
        try:
            self.array[k] = v.array if isinstance(v, Tensor) else v
        except ValueError as e:
            raise RuntimeError(
                f"index_put: cannot assign a value of shape "
                f"{list(np.shape(v))} to tensor[key] ({e})"
            ) from None
        self._version += 1
        return
    if kind != "basic":  # backward reads the index arrays: the caller's may change before
        k = tuple(i.copy() if hasattr(i, "ndim") and i.ndim else i for i in k)
    self._inplace("index_put_", _index_put_key, k, value)


def index_put(
    input: Tensor, indices: Sequence[Any], values: Any, accumulate: bool = False
) -> Tensor:
    """Out-of-place ``input[indices] = values`` (``accumulate=True`` sums repeats)."""
    x = _check_tensor(input, "index_put")
    k = _prepare_key(tuple(indices), x.array)[0]
    if isinstance(values, Tensor):
        _check_put_value(x, k, values, bool(accumulate))
    return _index_put_key(x, k, values, bool(accumulate))


# ------------------------------------------------------------------ functional API


def _index_tensor(index: Any, op: str, like: Any) -> Any:
    if isinstance(index, Tensor):
        a = index.array
    elif isinstance(index, np.ndarray | list | tuple):
        a = np.asarray(index)
    else:
        raise InvalidType(f"{op}(): index must be an integer tensor, got {type(index).__name__}")
    if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind == "f"):
        raise RuntimeError(f"{op}(): expected an integer (int64) index tensor, got {a.dtype}")
    return _to_backend(a.astype(_I64, copy=False), like)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Entries of ``input`` at positions ``index`` (1-D) along ``dim``.

    Shape: output is ``input``'s shape with ``len(index)`` along ``dim``.
    """
    x = _check_tensor(input, "index_select")
    idx = _index_tensor(index, "index_select", x.array)
    if idx.ndim > 1:
        raise OutOfRange(
            f"index_select(): index is supposed to be a vector, got shape {list(idx.shape)}"
        )
    if x.ndim == 0:  # as torch: one index (0), and a 0-d result
        norm_dim(dim, 1, "index_select")
        if idx.size != 1:
            raise RuntimeError(
                f"index_select(): index into a 0-d tensor must hold exactly one value, got "
                f"{idx.size}"
            )
        _check_bounds(idx, 1, 0, "index_select()", allow_negative=False)
        return reshape(autograd.watch(Take.apply(reshape(x, 1), idx.reshape(-1), 0), index), ())
    d = norm_dim(dim, x.ndim, "index_select")
    _check_bounds(idx, x.shape[d], d, "index_select()", allow_negative=False)
    return autograd.watch(Take.apply(x, idx.reshape(-1), d), index)


def _check_gather_shapes(x: Tensor, idx: Any, d: int, op: str, other: Any = None) -> None:
    if idx.ndim != builtins.max(x.ndim, 1) and not (x.ndim == 0 and idx.ndim == 0):
        raise RuntimeError(
            f"{op}(): index tensor must have the same number of dimensions as "
            f"input tensor, got index {list(idx.shape)} and input {list(x.shape)}"
        )
    for i, n in enumerate(idx.shape):
        if i != d and x.ndim and n > x.shape[i]:
            raise RuntimeError(
                f"{op}(): size does not match at dimension {i}: expected index "
                f"{list(idx.shape)} to be no larger than self {list(x.shape)} apart from "
                f"dimension {d}"
            )
        if other is not None and n > other.shape[i]:
            raise RuntimeError(
                f"{op}(): expected index {list(idx.shape)} to be no larger than src "
                f"{list(other.shape)} in every dimension"
            )


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` for ``dim == 1`` (and so on).

    Shape: ``index`` has ``input``'s number of dims; the output has ``index``'s shape.
    """
    x = _check_tensor(input, "gather")
    idx = _index_tensor(index, "gather", x.array)
    if x.ndim == 0:
        norm_dim(dim, 0, "gather")
        _check_bounds(idx, 1, 0, "gather()", allow_negative=False)
        return reshape(gather(reshape(x, 1), 0, Tensor._wrap(idx.reshape(-1))), idx.shape)
    if x.ndim == 1 and idx.ndim == 0:  # torch takes a 0-d index as one of shape (1,)
        out = gather(x, dim, Tensor._wrap(idx.reshape(1)))
        return autograd.watch(reshape(out, ()), index)
    d = norm_dim(dim, x.ndim, "gather")
    _check_gather_shapes(x, idx, d, "gather")
    _check_bounds(idx, x.shape[d], d, "gather()", allow_negative=False)
    return autograd.watch(Gather.apply(x, idx, d), index)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Like gather, with ``input`` and ``indices`` broadcast against each other off ``dim``;
    ``dim=None`` works on the flattened tensor."""
    x = _check_tensor(input, "take_along_dim")
    if not isinstance(indices, Tensor):
        indices = Tensor._wrap(_index_tensor(indices, "take_along_dim", x.array))
    if dim is None:
        return gather(reshape(x, -1), 0, reshape(indices, -1))
    d = norm_dim(dim, x.ndim, "take_along_dim")
    if indices.ndim != x.ndim:
        raise RuntimeError(
            f"take_along_dim(): input {list(x.shape)} and indices "
            f"{list(indices.shape)} should have the same number of dimensions"
        )
    xs, is_ = list(x.shape), list(indices.shape)
    xs[d] = is_[d] = 1
    try:
        b = list(np.broadcast_shapes(tuple(xs), tuple(is_)))
    except ValueError:
        raise RuntimeError(
            f"take_along_dim(): input {list(x.shape)} and indices "
            f"{list(indices.shape)} do not broadcast off dim {d}"
        ) from None
    bx, bi = list(b), list(b)
    bx[d], bi[d] = x.shape[d], indices.shape[d]
    return gather(expand(x, bx), d, expand(indices, bi))


def _same_dtype_as(op: str, x: Tensor, other: Tensor, name: str) -> None:
    """torch's rule for scatter/index_add/index_put: the written values have the tensor's
    dtype (no silent cast of float64 values into a float32 tensor)."""
    if other.array.dtype != x.array.dtype:
        raise RuntimeError(
            f"{op}(): {name} is {other.array.dtype.name} but the tensor is "
            f"{x.array.dtype.name}; they must have the same dtype (convert with .to())"
        )


def _scatter_common(input: Tensor, dim: int, index: Any, src: Any, op: str, add: Any) -> Tensor:
    """``add``: False (write), True or "add" (sum), "multiply" (product)."""
    x = _check_tensor(input, op)
    idx = _index_tensor(index, op, x.array)
    if x.ndim == 0:
        d = norm_dim(dim, 0, op)
        s1 = reshape(src, -1) if isinstance(src, Tensor) else src
        res = _scatter_common(reshape(x, 1), 0, Tensor._wrap(idx.reshape(-1)), s1, op, add)
        return reshape(res, ())
    if x.ndim == 1 and idx.ndim == 0:  # torch takes a 0-d index (and src) as 1-D
        idx = idx.reshape(1)
        src = reshape(src, -1) if isinstance(src, Tensor) else src
    d = norm_dim(dim, x.ndim, op)
    if isinstance(src, Tensor):
        _same_dtype_as(op, x, src, "src")
        _check_gather_shapes(x, idx, d, op, src)
    elif add:
        raise InvalidType(f"{op}(): src must be a tensor")
    else:
        _check_gather_shapes(x, idx, d, op)
        src = src.item() if isinstance(src, np.generic) else src
        if not isinstance(src, builtins.bool | int | float):
            raise InvalidType(f"{op}(): value must be a number, got {type(src).__name__}")
    _check_bounds(idx, x.shape[d], d, f"{op}()", allow_negative=False)
    if add == "multiply":  # torch's legacy scatter(reduce='multiply'): a product onto self
        return autograd.watch(ScatterReduce.apply(x, src, idx, d, "prod", True), index)
    return autograd.watch(Scatter.apply(x, src, idx, d, builtins.bool(add)), index)


def scatter(
    input: Tensor,
    dim: int,
    index: Tensor,
    src: Any = None,
    *,
    value: Any = None,
    reduce: str | None = None,
) -> Tensor:
    """Out-of-place ``self[i][index[i][j]] = src[i][j]`` (for ``dim == 1``), or ``= value``.

    ``reduce='add'`` sums instead (as :func:`scatter_add`). With repeated indices, which
    write wins is unspecified (as in PyTorch).
    """
    if src is None:
        if value is None:
            raise InvalidType("scatter(): pass src (a tensor) or value (a number)")
        src = value
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError(
                f"scatter(): reduce argument must be either add or multiply, got {reduce!r}"
            )
        if not isinstance(src, Tensor):
            x = _check_tensor(input, "scatter")
            shp = _index_tensor(index, "scatter", x.array).shape
            if isinstance(src, np.generic):
                src = src.item()
            if isinstance(src, builtins.bool | int | float):
                src = _dt.fill_value(src, x.array.dtype, "scatter")
            src = Tensor._wrap(get_xp(x.array).full(shp, src, dtype=x.array.dtype))
        mode = "add" if reduce == "add" else "multiply"
        return _scatter_common(input, dim, index, src, "scatter", mode)
    return _scatter_common(input, dim, index, src, "scatter", False)


def scatter_reduce(
    input: Tensor,
    dim: int,
    index: Tensor,
    src: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    """Out-of-place ``self[i][index[i][j]] = reduce(self[i][index[i][j]], src[i][j], ...)``
    (for ``dim == 1``) with ``reduce`` in 'sum', 'prod', 'mean', 'amax', 'amin';
    ``include_self=False`` leaves the input's own values out where ``index`` points."""
    op = "scatter_reduce"
    x = _check_tensor(input, op)
    if reduce not in _REDUCE_NAMES and reduce not in _LEGACY_REDUCE:
        raise RuntimeError(
            f"scatter_reduce(): reduce argument must be either sum, prod, mean, amax or amin, "
            f"got {reduce}"
        )
    if not isinstance(src, Tensor):
        raise InvalidType(f"{op}(): src must be a tensor, got {type(src).__name__}")
    if x.ndim == 0:
        res = scatter_reduce(
            reshape(x, 1),
            0,
            reshape(index, -1),
            reshape(src, -1),
            reduce,
            include_self=include_self,
        )
        return reshape(res, ())
    idx = _index_tensor(index, op, x.array)
    if x.ndim == 1 and idx.ndim == 0:  # torch takes a 0-d index (and src) as 1-D
        idx, src = idx.reshape(1), reshape(src, -1)
    d = norm_dim(dim, x.ndim, op)
    if src.array.dtype != x.array.dtype:
        src = src.to(x.dtype)
    _check_gather_shapes(x, idx, d, op, src)
    _check_bounds(idx, x.shape[d], d, f"{op}()", allow_negative=False)
    return autograd.watch(ScatterReduce.apply(x, src, idx, d, reduce, bool(include_self)), index)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """Out-of-place ``self[i][index[i][j]] += src[i][j]`` (for ``dim == 1``); repeats add."""
    return _scatter_common(input, dim, index, src, "scatter_add", True)


_INDEX_REDUCE = ("prod", "mean", "amax", "amin")


def index_reduce(
    input: Tensor,
    dim: int,
    index: Tensor,
    source: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    """Out-of-place ``index_reduce_``: the slices ``index[i]`` of ``input`` along ``dim``
    reduced with ``source``'s slice ``i`` ('prod', 'mean', 'amax' or 'amin'; with or
    without the input's own values, ``include_self``). ``index``: a 0-d or 1-D int32/int64
    tensor with one entry per slice of ``source``, whose other dims are the input's. The
    scatter_reduce of the index spread over ``source``'s shape: its gradients, as torch's
    (ties of amax/amin share evenly)."""
    op = "index_reduce_()"
    x = _check_tensor(input, "index_reduce")
    src = _check_tensor(source, "index_reduce")
    if reduce not in _INDEX_REDUCE:
        raise RuntimeError(
            f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
            f"{reduce}."
        )
    if not isinstance(index, Tensor):
        raise InvalidType(f"{op}: index must be a Tensor, not {type(index).__name__}")
    if index.array.dtype not in (np.dtype(np.int32), _I64):
        raise RuntimeError(f"{op}: Expected dtype int32/int64 for index but got: {index.dtype}")
    if index.ndim > 1:
        raise OutOfRange(
            f"{op}: Index is supposed to be a vector, but got dim: {index.ndim} with size: "
            f"{list(index.shape)}"
        )
    if x.array.dtype.kind == "b":
        raise NotImplementedError(f"{op}: not implemented for bool tensors")
    if src.array.dtype != x.array.dtype:
        raise RuntimeError(
            f"{op}: self ({x.dtype}) and source ({src.dtype}) must have the same scalar type"
        )
    if x.ndim == 0 or src.ndim == 0:
        if x.numel() != 1 or src.numel() != 1 or index.numel() != 1:
            raise RuntimeError(
                "index_reduce(): source tensor shape must match self tensor shape, excluding "
                f"the specified dimension. Got self.shape = {list(x.shape)} source.shape = "
                f"{list(src.shape)}"
            )
        norm_dim(dim, x.ndim, "index_reduce")
        res = index_reduce(
            reshape(x, 1), 0, reshape(index, 1), reshape(src, 1), reduce, include_self=include_self
        )
        return reshape(res, tuple(x.shape))
    d = norm_dim(dim, x.ndim, "index_reduce")
    n = index.numel()
    if src.ndim == x.ndim and n != src.shape[d]:
        raise RuntimeError(
            f"{op}: Number of indices ({n}) should be equal to source.size(dim): "
            f"({src.shape[d]}), for dim: {d}"
        )
    if src.ndim != x.ndim or builtins.any(
        a != b for i, (a, b) in enumerate(zip(x.shape, src.shape)) if i != d
    ):
        raise RuntimeError(
            "index_reduce(): source tensor shape must match self tensor shape, excluding the "
            f"specified dimension. Got self.shape = {list(x.shape)} source.shape = "
            f"{list(src.shape)}"
        )
    xp = get_xp(x.array)
    idx = _to_backend(index.array, x.array).astype(_I64, copy=False).reshape(-1)
    if idx.size:
        lo, hi = index_range(idx)
        if lo < 0 or hi >= x.shape[d]:
            raise OutOfRange(
                f"index_reduce(): index {lo if lo < 0 else hi} is out of range for dimension "
                f"{d} with size {x.shape[d]} (index out of range in self)"
            )
    along = [1] * x.ndim
    along[d] = -1
    full = xp.ascontiguousarray(xp.broadcast_to(idx.reshape(along), src.shape))
    out = ScatterReduce.apply(x, src, full, d, reduce, builtins.bool(include_self))
    return autograd.watch(out, index)


def take(input: Tensor, index: Tensor) -> Tensor:
    """``input`` read as 1-D at ``index`` (any shape, which the result takes)."""
    x = _check_tensor(input, "take")
    idx = _index_tensor(index, "take", x.array)
    _check_bounds(idx, x.numel(), 0, "take()", allow_negative=True)
    out = autograd.watch(Take.apply(reshape(x, -1), idx.reshape(-1), 0), index)
    return reshape(out, tuple(idx.shape))


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """``value`` where ``mask`` (bool, broadcast to ``input``) is True, else ``input``.

    ``value`` may be a number or a 0-d tensor (which then gets a gradient).
    """
    x = _check_tensor(input, "masked_fill")
    if not isinstance(mask, Tensor):
        raise InvalidType(f"masked_fill(): mask must be a bool tensor, got {type(mask).__name__}")
    if mask.array.dtype.kind != "b":
        raise RuntimeError(
            f"masked_fill(): only supports boolean masks, but got mask with dtype {mask.dtype}"
        )
    try:
        np.broadcast_shapes(tuple(mask.shape), tuple(x.shape))
    except ValueError:
        raise RuntimeError(
            f"masked_fill(): mask of shape {list(mask.shape)} does not broadcast "
            f"to the input's shape {list(x.shape)}"
        ) from None
    m = (
        mask
        if type(mask.array) is type(x.array)
        else Tensor._wrap(_to_backend(mask.array, x.array))
    )
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"masked_fill(): only supports a 0-dimensional value tensor, but "
                f"got tensor with {value.ndim} dimension(s)"
            )
        if value.array.dtype != x.array.dtype:  # torch fills value.item(): it must fit
            _dt.fill_value(value.item(), x.array.dtype, "masked_fill")
        v = _value_for(x, value)
    else:
        value = _dt.fill_value(value, x.array.dtype, "masked_fill")
        v = Tensor._wrap(get_xp(x.array).asarray(value, dtype=x.array.dtype))
    return Where.apply(m, v, x)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The 1-D tensor of ``input``'s entries where ``mask`` (broadcast) is True."""
    x = _check_tensor(input, "masked_select")
    if not isinstance(mask, Tensor) or mask.array.dtype.kind != "b":
        raise RuntimeError("masked_select(): expected a bool mask tensor")
    shape = np.broadcast_shapes(tuple(mask.shape), tuple(x.shape))
    xb = x if tuple(x.shape) == shape else expand(x, shape)
    mb = get_xp(x.array).broadcast_to(_to_backend(mask.array, x.array), shape)
    return autograd.watch(AdvancedIndex.apply(xb, (mb,), False), mask)


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """Indices of the non-zero entries: an (n, ndim) int64 tensor, or a tuple of 1-D ones."""
    x = _check_tensor(input, "nonzero")
    arr = x.array
    xp = get_xp(arr)
    if arr.ndim == 0:
        hit = xp.nonzero(arr.reshape(1))[0].astype(_I64)
        if as_tuple:
            return (Tensor._wrap(hit),)
        return Tensor._wrap(xp.zeros((hit.size, 0), _I64))
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(_I64, copy=False)) for i in xp.nonzero(arr))
    return Tensor._wrap(xp.argwhere(arr).astype(_I64, copy=False))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


def _no_empty_other_dim(shape: tuple, d: int, op: str) -> None:
    """torch refuses unique over ``dim`` when another dimension has size 0: the slices
    along ``dim`` are then all empty, equal or not is moot (NumPy would keep one)."""
    if any(n == 0 for i, n in enumerate(shape) if i != d):
        raise RuntimeError(
            f"{op}: there are 0 sized dimensions in shape {list(shape)}, and they aren't "
            f"selected (dim={d}), so unique cannot be applied"
        )


def unique(
    input: Tensor,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Any:
    """The sorted distinct values (no gradient); optionally inverse indices and counts."""
    x = _check_tensor(input, "unique")
    arr = x.array
    xp = get_xp(arr)
    # every NaN is distinct, as in torch
    kw = {"return_inverse": return_inverse, "return_counts": return_counts, "equal_nan": False}
    if dim is None:
        res = xp.unique(arr.reshape(-1), **kw)
    else:
        d = norm_dim(dim, x.ndim, "unique")
        _no_empty_other_dim(arr.shape, d, "unique")
        res = xp.unique(arr, axis=d, **kw)
    if not (return_inverse or return_counts):
        return Tensor._wrap(res)
    res = list(res)
    if return_inverse:
        inv = res[1].reshape(arr.shape if dim is None else (arr.shape[d],))
        res[1] = inv.astype(_I64, copy=False)
    if return_counts:
        res[-1] = res[-1].astype(_I64, copy=False)
    return tuple(Tensor._wrap(r) for r in res)


def unique_consecutive(
    input: Tensor,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Any:
    """``input`` with runs of equal values (of equal slices along ``dim``) collapsed to
    one; optionally each element's run number and the runs' lengths (no gradient)."""
    x = _check_tensor(input, "unique_consecutive")
    arr = x.array
    xp = get_xp(arr)
    if dim is None:
        rows, d = arr.reshape(-1, 1), None
    else:
        d = norm_dim(dim, x.ndim, "unique_consecutive")
        _no_empty_other_dim(arr.shape, d, "unique_consecutive")
        rows = xp.moveaxis(arr, d, 0).reshape(arr.shape[d], arr.size // max(arr.shape[d], 1))
    n = rows.shape[0]
    starts = xp.ones(n, np.bool_)
    if n > 1:
        starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    first = xp.flatnonzero(starts)
    values = arr.reshape(-1)[first] if d is None else xp.take(arr, first, axis=d)
    out = [Tensor._wrap(values)]
    if return_inverse:
        inv = xp.cumsum(starts) - 1
        out.append(Tensor._wrap(inv.reshape(arr.shape) if d is None else inv))
    if return_counts:
        out.append(Tensor._wrap(xp.diff(xp.concatenate((first, xp.asarray([n]))))))
    return out[0] if len(out) == 1 else tuple(out)


class IndexAdd(Function):
    @staticmethod
    def forward(ctx, x, src, idx, axis, alpha):
        ctx.save_for_backward(idx)
        ctx.axis, ctx.alpha = axis, alpha
        src = src * alpha if alpha != 1 else src
        if get_xp(x) is np:  # into a copy of x: x[i] + s1 + s2 ..., torch's order
            return _index_add(x.shape, axis, idx, src, out=x.copy())
        return x + _index_add(x.shape, axis, idx, src)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        gs = None
        if ctx.needs_input_grad[1]:
            gs = get_xp(g).take(g, idx, axis=ctx.axis)
            if ctx.alpha != 1:
                gs = gs * ctx.alpha
        return g, gs, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        axis, alpha, shape = ctx.axis, ctx.alpha, tuple(g.shape)

        def added(w):
            return IndexAdd.forward(
                Node(IndexAdd, ()), get_xp(w).zeros(shape, w.dtype), w, idx, axis, alpha
            )

        return higher_order.linear_adjoints(ctx, g, {0: lambda u: u, 1: added})


def index_add(
    input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: float = 1
) -> Tensor:
    """Out-of-place ``input[..., index[i], ...] += alpha * source[..., i, ...]`` along ``dim``
    (repeated indices add up)."""
    x = _check_tensor(input, "index_add")
    src = _check_tensor(source, "index_add")
    idx = _index_tensor(index, "index_add", x.array).reshape(-1)
    if x.ndim == 0:
        return reshape(index_add(reshape(x, 1), 0, Tensor._wrap(idx), reshape(src, -1)), ())
    d = norm_dim(dim, x.ndim, "index_add")
    _check_bounds(idx, x.shape[d], d, "index_add()", allow_negative=False)
    want = (*x.shape[:d], idx.size, *x.shape[d + 1 :])
    if tuple(src.shape) != want and not (src.ndim == 0 and idx.size == 1):
        raise RuntimeError(
            f"index_add(): source of shape {list(src.shape)} should have shape {list(want)} "
            f"(the input's {list(x.shape)} with {idx.size} along dim {d})"
        )
    _same_dtype_as("index_add", x, src, "source")
    return autograd.watch(IndexAdd.apply(x, reshape(src, want), idx, d, alpha), index)


def index_fill(input: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:
    """Out-of-place: positions ``index`` along ``dim`` set to ``value``."""
    x = _check_tensor(input, "index_fill")
    idx = _index_tensor(index, "index_fill", x.array).reshape(-1)
    d = norm_dim(dim, x.ndim, "index_fill")
    _check_bounds(idx, x.shape[d] if x.ndim else 1, d, "index_fill()", allow_negative=True)
    xp = get_xp(x.array)
    hit = xp.zeros(x.shape[d] if x.ndim else 1, bool)
    hit[idx] = True
    mask = hit.reshape((-1,) + (1,) * (x.ndim - d - 1)) if x.ndim else hit.reshape(())
    return masked_fill(x, Tensor._wrap(mask), value)


def fill_diagonal(input: Tensor, fill_value: Any, wrap: bool = False) -> Tensor:
    """Out-of-place ``fill_diagonal_``: the main diagonal (all dims equal, or a tall
    matrix, wrapping every ``cols + 1`` rows when ``wrap``) set to ``fill_value``."""
    x = _check_tensor(input, "fill_diagonal_")
    if x.ndim < 2 or (x.ndim > 2 and len(set(x.shape)) != 1):
        raise RuntimeError(
            f"fill_diagonal_(): dimensions must be >= 2 and all equal beyond 2-D, got "
            f"{list(x.shape)}"
        )
    mask = np.zeros(x.shape, bool)
    if x.ndim == 2:
        rows, cols = x.shape
        r = np.arange(rows)
        keep = (r % (cols + 1) < cols) if wrap else (r < cols)
        mask[r[keep], (r % (cols + 1))[keep] if wrap else r[keep]] = True
    else:
        i = np.arange(x.shape[0])
        mask[(i,) * x.ndim] = True
    return masked_fill(x, Tensor._wrap(_to_backend(mask, x.array)), fill_value)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """Counts of each value in a 1-D non-negative integer tensor (weighted sums with
    ``weights``); not differentiable."""
    x = _check_tensor(input, "bincount")
    if x.ndim != 1 or x.array.dtype.kind not in "iu" or (x.array.size and int(x.array.min()) < 0):
        raise NotImplementedError("bincount(): expected a 1-D tensor of non-negative integers")
    xp = get_xp(x.array)
    w = None if weights is None else weights.array
    out = xp.bincount(x.array, weights=w, minlength=minlength)
    if w is None:
        return Tensor._wrap(out.astype(_I64, copy=False))
    # torch: float32 weights keep float32; any other dtype (float16 included) gives float64
    return Tensor._wrap(out.astype(w.dtype if w.dtype == np.float32 else np.float64, copy=False))


# ------------------------------------------------------------------ index_copy, masked_scatter, put


def _long_index(index: Any, op: str) -> Tensor:
    """An index argument that torch takes only as an int64 tensor."""
    if not isinstance(index, Tensor):
        raise InvalidType(f"{op}: index must be a Tensor, not {type(index).__name__}")
    if index.array.dtype != _I64:
        raise RuntimeError(f"{op}: Expected a long tensor for index, but got {index.dtype}")
    return index


class IndexCopy(Function):
    """``x`` with the slices ``idx`` along ``axis`` replaced by ``src``'s (a repeated index:
    the last one written wins, as torch's CPU loop)."""

    @staticmethod
    def forward(ctx, x, src, idx, axis):
        out = x.copy()
        out[(_FULL,) * axis + (idx,)] = src
        ctx.save_for_backward(idx)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        key = (_FULL,) * ctx.axis + (idx,)
        gx = gs = None
        if ctx.needs_input_grad[0]:
            gx = g.copy()
            gx[key] = 0
        if ctx.needs_input_grad[1]:  # (every copy of a repeated index, as torch's)
            gs = get_xp(g).take(g, idx, axis=ctx.axis)
        return gx, gs, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        axis, shape = ctx.axis, tuple(g.shape)

        def copied(x, w):
            return IndexCopy.forward(Node(IndexCopy, ()), x, w, idx, axis)

        return higher_order.linear_adjoints(
            ctx,
            g,
            {
                0: lambda u: copied(u, 0),
                1: lambda w: copied(get_xp(w).zeros(shape, w.dtype), w),
            },
        )


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """Out-of-place ``input[..., index[i], ...] = source[..., i, ...]`` along ``dim``
    (``index``: a 0-d or 1-D int64 tensor; ``source``: ``input``'s shape with
    ``len(index)`` along ``dim``); gradients to both, as torch's."""
    op = "index_copy_()"
    x = _check_tensor(input, "index_copy")
    src = _check_tensor(source, "index_copy")
    idx_t = _long_index(index, op)
    if idx_t.ndim > 1:
        raise OutOfRange(f"{op}: Index should have dimension 1 or 0 (got {idx_t.ndim})")
    idx = _to_backend(idx_t.array, x.array).reshape(-1)
    d = norm_dim(dim, x.ndim, "index_copy")
    if src.array.dtype != x.array.dtype:
        raise RuntimeError(
            f"{op}: self and source expected to have the same dtype, but got (self) "
            f"{x.dtype} and (source) {src.dtype}"
        )
    if x.ndim and src.ndim and src.ndim != x.ndim:
        raise OutOfRange(
            f"{op}: When source and destination are not scalars, their dimensionality must "
            f"match. Source dimensionality ({src.ndim}), destination dimensionality ({x.ndim})"
        )
    n_src = src.shape[d] if src.ndim else 1
    if idx.size != n_src:
        raise OutOfRange(
            f"{op}: Number of indices ({idx.size}) should be equal to source.size(dim) "
            f"({n_src}) (source of shape {list(src.shape)}, dim {d})"
        )
    if x.ndim == 0 or src.ndim == 0:
        if x.numel() != 1 or src.numel() != 1:
            raise OutOfRange(
                f"{op}: a 0-d tensor takes a one-element source and index, got input "
                f"{list(x.shape)} and source {list(src.shape)}"
            )
        _check_bounds(idx, 1, 0, op, allow_negative=False)
        out = autograd.watch(IndexCopy.apply(reshape(x, 1), reshape(src, 1), idx, 0), index)
        return reshape(out, tuple(x.shape))
    for i in range(x.ndim):
        if i != d and src.shape[i] != x.shape[i]:
            raise RuntimeError(
                f"{op}: Source/destination tensor must have same slice shapes: destination "
                f"{list(x.shape)} and source {list(src.shape)} differ at dimension {i} "
                f"(dim {d} aside)"
            )
    _check_bounds(idx, x.shape[d], d, op, allow_negative=False)
    return autograd.watch(IndexCopy.apply(x, src, idx, d), index)


class MaskedScatter(Function):
    """``x`` with its positions where ``mask`` (same shape) is True filled, in row-major
    order, by the first elements of ``src``."""

    @staticmethod
    def forward(ctx, x, src, mask, k):
        out = x.copy()
        out[mask] = src.reshape(-1)[:k]
        ctx.mask, ctx.k, ctx.src_shape = mask, k, src.shape
        return out

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        gx = gs = None
        if ctx.needs_input_grad[0]:
            gx = xp.where(ctx.mask, xp.zeros((), g.dtype), g)
        if ctx.needs_input_grad[1]:  # the first k elements of source were used
            flat = xp.zeros(int(np.prod(ctx.src_shape)), g.dtype)
            flat[: ctx.k] = g[ctx.mask]
            gs = flat.reshape(ctx.src_shape)
        return gx, gs, None, None

    @staticmethod
    def backward_graph(ctx, g):
        mask, k, shape = ctx.mask, ctx.k, tuple(g.shape)

        def scattered(x, w):
            return MaskedScatter.forward(Node(MaskedScatter, ()), x, w, mask, k)

        return higher_order.linear_adjoints(
            ctx,
            g,
            {
                0: lambda u: scattered(u, get_xp(u).zeros(ctx.src_shape, u.dtype)),
                1: lambda w: scattered(get_xp(w).zeros(shape, w.dtype), w),
            },
        )


def _masked_scatter_args(op: str, x: Tensor, mask: Any, source: Any) -> tuple:
    src = _check_tensor(source, op)
    if not isinstance(mask, Tensor):
        raise InvalidType(f"{op}(): mask must be a bool tensor, got {type(mask).__name__}")
    if mask.array.dtype.kind != "b":
        raise RuntimeError(
            f"{op}_ only supports boolean masks, but got mask with dtype {mask.dtype}"
        )
    if src.array.dtype != x.array.dtype:
        raise RuntimeError(
            f"{op}: expected self and source to have same dtypes but got {x.dtype} and {src.dtype}"
        )
    return src, _to_backend(mask.array, x.array)


def _masked_scatter_apply(op: str, x: Tensor, m: Any, src: Tensor) -> Tensor:
    xp = get_xp(x.array)
    # a copy: backward reads the mask, which the caller may change in place before it
    m = xp.array(xp.broadcast_to(m, tuple(x.shape)))
    k = int(m.sum())
    if src.numel() < k:
        raise RuntimeError(
            f"{op}: Number of elements of source ({src.numel()}, shape {list(src.shape)}) < "
            f"number of ones in mask ({k})"
        )
    return MaskedScatter.apply(x, src, m, k)


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """Out-of-place: ``input`` and ``mask`` broadcast together, and the positions where
    ``mask`` is True filled in row-major order by the first elements of ``source``
    (which needs at least that many); gradients to ``input`` and ``source``."""
    x = _check_tensor(input, "masked_scatter")
    src, m = _masked_scatter_args("masked_scatter", x, mask, source)
    try:
        shape = tuple(np.broadcast_shapes(tuple(x.shape), tuple(m.shape)))
    except ValueError:
        raise RuntimeError(
            f"masked_scatter(): mask of shape {list(m.shape)} and input of shape "
            f"{list(x.shape)} do not broadcast"
        ) from None
    if tuple(x.shape) != shape:
        x = expand(x, shape)
    return _masked_scatter_apply("masked_scatter", x, m, src)


def masked_scatter_inplace(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """The out-of-place step of ``masked_scatter_``: the mask must broadcast to the
    tensor's own shape."""
    x = input
    src, m = _masked_scatter_args("masked_scatter", x, mask, source)
    try:
        ok = tuple(np.broadcast_shapes(tuple(x.shape), tuple(m.shape))) == tuple(x.shape)
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(
            f"masked_scatter_(): mask of shape {list(m.shape)} cannot be broadcast to the "
            f"tensor's shape {list(x.shape)}"
        )
    return _masked_scatter_apply("masked_scatter_", x, m, src)


class Put(Function):
    """``x`` read as 1-D with ``src`` written (or, with ``accumulate``, added) at the flat
    positions ``lin`` (non-negative)."""

    @staticmethod
    def forward(ctx, x, src, lin, accumulate):
        out = x.copy()
        flat = out.reshape(-1)
        vals = src.reshape(-1)
        if accumulate:
            _add_at(flat, lin, vals)
        else:
            flat[lin] = vals
        ctx.save_for_backward(lin)
        ctx.accumulate, ctx.src_shape = accumulate, src.shape
        return out

    @staticmethod
    def backward(ctx, g):
        (lin,) = ctx.saved_tensors
        gx = gs = None
        if ctx.needs_input_grad[0]:
            if ctx.accumulate:
                gx = g
            else:
                gx = g.copy()
                gx.reshape(-1)[lin] = 0
        if ctx.needs_input_grad[1]:
            gs = g.reshape(-1)[lin].reshape(ctx.src_shape)
        return gx, gs, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (lin,) = ctx.saved_tensors
        acc, shape, src_shape = ctx.accumulate, tuple(g.shape), ctx.src_shape

        def put(x, w):
            return Put.forward(Node(Put, ()), x, w, lin, acc)

        return higher_order.linear_adjoints(
            ctx,
            g,
            {
                0: lambda u: put(u, get_xp(u).zeros(src_shape, u.dtype)),
                1: lambda w: put(get_xp(w).zeros(shape, w.dtype), w),
            },
        )


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """Out-of-place ``put_``: ``input`` read as 1-D, ``source``'s elements written at the
    flat positions ``index`` (int64, any shape, negative ones from the end), or added with
    ``accumulate=True`` (repeats sum)."""
    op = "put_()"
    x = _check_tensor(input, "put")
    src = _check_tensor(source, "put")
    idx_t = _long_index(index, op)
    if src.array.dtype != x.array.dtype:
        raise RuntimeError(
            f"{op}: self and source expected to have the same dtype, but got self.dtype = "
            f"{x.dtype} and source.dtype = {src.dtype}"
        )
    if src.numel() != idx_t.numel():
        raise OutOfRange(
            f"{op}: Expected source and index to have the same number of elements, but got "
            f"source.numel() = {src.numel()}, index.numel() = {idx_t.numel()}"
        )
    n = x.numel()
    lin = _to_backend(idx_t.array, x.array).reshape(-1)
    if lin.size and n == 0:
        raise OutOfRange(f"{op}: Tried to put elements into an empty tensor")
    if lin.size:
        lo, hi = index_range(lin)
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise OutOfRange(
                f"{op}: out of range: tried to access index {bad} on a tensor of {n} elements "
                f"(shape {list(x.shape)})"
            )
        if lo < 0:
            lin = get_xp(lin).where(lin < 0, lin + n, lin)
    return autograd.watch(Put.apply(x, src, lin, builtins.bool(accumulate)), index)


def searchsorted(
    sorted_sequence: Tensor,
    input: Any,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Tensor | None = None,
) -> Tensor:
    """Insertion positions of ``input`` in ``sorted_sequence`` (see
    :func:`darklib.ops.reduction.searchsorted`); with ``sorter`` (int64 indices that sort
    ``sorted_sequence`` along its last dim, as ``argsort`` gives), an unsorted sequence."""
    from darklib.ops import reduction as R

    if isinstance(sorted_sequence, Tensor) and sorted_sequence.ndim == 0:
        raise RuntimeError(
            "searchsorted(): boundaries tensor should have positive dimension, but got 0 dimension"
        )
    if sorter is not None:
        seq = _check_tensor(sorted_sequence, "searchsorted")
        if not isinstance(sorter, Tensor):
            raise InvalidType(
                f"searchsorted(): argument 'sorter' must be Tensor, not {type(sorter).__name__}"
            )
        if sorter.array.dtype != _I64:
            raise RuntimeError(
                f"searchsorted(): sorter must be a tensor of long dtype but got dtype "
                f"{sorter.dtype}"
            )
        if tuple(sorter.shape) != tuple(seq.shape):
            raise RuntimeError(
                f"searchsorted(): boundary and sorter must have the same size, but got "
                f"boundary tensor {list(seq.shape)} and sorter tensor {list(sorter.shape)}"
            )
        s = _to_backend(sorter.array, seq.array)
        n = seq.shape[-1] if seq.ndim else 1
        if s.size:
            lo, hi = index_range(s)
            if lo < 0 or hi >= n:
                raise RuntimeError(
                    f"searchsorted(): sorter index out of range (an index {lo if lo < 0 else hi}"
                    f" for a last dim of size {n})"
                )
        arr = seq.array
        ordered = get_xp(arr).take_along_axis(arr, s, axis=-1) if arr.ndim else arr
        sorted_sequence = Tensor._wrap(ordered)
    return R.searchsorted(sorted_sequence, input, out_int32=out_int32, right=right, side=side)
