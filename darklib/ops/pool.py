"""2-D pooling: max, average and their adaptive forms, with PyTorch's sizes and semantics
(and their 1-D forms, the 2-D ops on a plane of height 1).

On the CPU the input is first copied, once, into its polyphase planes (see
:mod:`darklib.kernels.phases`); every kernel offset of every window is then one contiguous
run of those planes, so a pooling op is ``kh * kw`` flat NumPy passes (never a loop over
pixels, nor slow strided passes). Max pooling records, per output, which kernel offset won
(a small integer array); backward writes the gradient offset by offset into planes and
copies them out once. On the GPU the same arithmetic runs in the kernels of
:mod:`darklib.kernels.cuda`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, Node, higher_order
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.kernels import parallel as par
from darklib.kernels import phases as ph
from darklib.kernels.im2col import Geometry, workspace
from darklib.kernels.tables import cached
from darklib.tensor import Tensor


def _cuda():
    from darklib.kernels import cuda

    return cuda


def _as_batched(x: Any) -> Any:
    return x[None] if x.ndim == 3 else x


def _first_valid_offset(g: Geometry) -> np.ndarray:
    """(oh, ow) -> index of the first kernel offset inside the input (PyTorch's initial
    argmax, which wins when a whole window is -inf)."""
    ih = np.arange(g.oh) * g.sh - g.pt
    iw = np.arange(g.ow) * g.sw - g.pl
    i0 = np.maximum(0, -(ih // g.dh)) if g.pt else np.zeros(g.oh, np.int64)
    j0 = np.maximum(0, -(iw // g.dw)) if g.pl else np.zeros(g.ow, np.int64)
    return i0[:, None] * g.kw + j0[None, :]


def _offset_dtype(g: Geometry) -> np.dtype:
    k = g.kh * g.kw
    return np.dtype(np.uint8 if k < 256 else (np.uint16 if k < 65536 else np.int32))


def _gy_padded(gy: np.ndarray, g: Geometry, p: ph.Phases, div: Any = None) -> np.ndarray:
    """``gy`` (divided by ``div`` if given) as (NC * size,) in the padded output layout,
    zeros in the scratch positions."""
    if div is not None and not np.isscalar(div):
        div = div.astype(gy.dtype)
    if p.hp == g.oh and p.wp == g.ow:  # no scratch positions
        return (np.ascontiguousarray(gy) if div is None else gy / div).reshape(-1)
    nc = gy.size // (g.oh * g.ow)
    out = workspace("pool_gy", (1, nc * p.size), gy.dtype)
    return ph.padded(gy.reshape(nc, 1, g.oh, g.ow), g, p, out, div)[0]


def _is_global(g: Geometry) -> bool:
    """One window covering each whole plane (global pooling, adaptive pooling to 1x1)."""
    return (g.kh, g.kw, g.oh, g.ow, g.pt, g.pl, g.dh, g.dw) == (g.h, g.w, 1, 1, 0, 0, 1, 1)


def _first_valid_table(g: Geometry, p: ph.Phases, kdt: np.dtype) -> np.ndarray:
    def make() -> np.ndarray:
        t = np.zeros((p.hp, p.wp), kdt)
        t[: g.oh, : g.ow] = _first_valid_offset(g)
        return t.reshape(-1)

    return cached(("max_pool_first", g, kdt.str), np, make)


def _planes(x: np.ndarray, g: Geometry, p: ph.Phases, fill: float) -> np.ndarray:
    nc = x.shape[0] * x.shape[1]
    shape = ph.plane_shape(1, nc, g, p)
    return ph.to_phases(x, g, p, fill, workspace("pool_q", shape, x.dtype))


def _term(q: np.ndarray, p: ph.Phases, t: int, m: int) -> np.ndarray:
    return ph.term(q, p, t, m)[0]


def _max_pool_cpu(x: np.ndarray, g: Geometry, track: bool) -> tuple:
    """Max over windows (NaN wins, as in PyTorch); with ``track``, also the winning kernel
    offset per output (first maximum wins): (NC * size,) in the padded output layout, or
    (NC,) for global pooling."""
    n, c = x.shape[:2]
    if _is_global(g):  # one window per plane: a row-wise argmax (the first maximum)
        flat = x.reshape(n * c, g.h * g.w)
        k = flat.argmax(axis=1)
        y = np.take_along_axis(flat, k[:, None], axis=1).reshape(n, c, 1, 1)
        if not np.isnan(y).any():
            return y, (k.astype(_offset_dtype(g)) if track else None)
    p = ph.phases(g)
    q = _planes(x, g, p, -np.inf)
    m = n * c * p.size
    best = workspace("pool_best", (m,), x.dtype)
    np.copyto(best, _term(q, p, 0, m))
    kidx = None
    if track:
        kdt = _offset_dtype(g)
        kidx = np.empty((n * c, p.size), kdt)
        kidx[...] = _first_valid_table(g, p, kdt)
        kidx = kidx.reshape(-1)
        won = workspace("pool_won", (m,), np.bool_)
        wk = workspace("pool_wk", (m,), kdt)
        for t in range(1, len(p.terms)):
            v = _term(q, p, t, m)
            np.greater(v, best, out=won)
            # offsets come in increasing order (and those before a window's first in-range
            # offset read padding, which never wins): "set to t where won" is a maximum
            np.multiply(won.view(np.uint8), kdt.type(t), out=wk)
            np.maximum(kidx, wk, out=kidx)
            np.maximum(best, v, out=best)
    else:
        for t in range(1, len(p.terms)):
            np.maximum(best, _term(q, p, t, m), out=best)
    y = np.empty((n, c, g.oh, g.ow), x.dtype)
    np.copyto(y.reshape(-1, 1, g.oh, g.ow), ph.compact(best[None], g, p))
    if track and np.isnan(y).any():
        _nan_winners(q, p, m, kidx, g)
    if track and _is_global(g):  # the global-pooling layout: one offset per plane
        kidx = np.ascontiguousarray(ph.compact(kidx[None], g, p)).reshape(-1)
    return y, kidx


def _nan_winners(q: np.ndarray, p: ph.Phases, m: int, kidx: np.ndarray, g: Geometry) -> None:
    """Redo the argmax with PyTorch's rule ``v > best or isnan(v)``: the last NaN wins."""
    kidx.reshape(-1, p.size)[...] = _first_valid_table(g, p, kidx.dtype)
    best = np.array(_term(q, p, 0, m))
    for t in range(1, len(p.terms)):
        v = _term(q, p, t, m)
        won = np.greater(v, best) | np.isnan(v)
        np.copyto(best, v, where=won)
        np.copyto(kidx, t, where=won)


def _flat_indices(kidx: np.ndarray, g: Geometry, shape: tuple) -> np.ndarray:
    """Winning kernel offsets -> PyTorch's indices (ih * W + iw in the input plane)."""
    if _is_global(g):
        k = kidx.reshape(-1, 1, 1).astype(np.int64)
    else:
        k = ph.compact(kidx[None], g, ph.phases(g))[:, 0].astype(np.int64)
    ki, kj = np.divmod(k, g.kw)
    ih = (np.arange(g.oh, dtype=np.int64) * g.sh - g.pt)[:, None] + ki * g.dh
    iw = (np.arange(g.ow, dtype=np.int64) * g.sw - g.pl) + kj * g.dw
    return (ih * g.w + iw).reshape(shape)


def _max_pool_backward_cpu(
    gy: np.ndarray, kidx: np.ndarray, g: Geometry, gx: np.ndarray
) -> np.ndarray:
    """The gradient of :func:`_max_pool_cpu`, written into ``gx`` (N, C, H, W)."""
    n, c = gy.shape[:2]
    if _is_global(g):
        g2 = gx.reshape(n * c, g.h * g.w)
        g2[...] = 0
        g2[np.arange(n * c), kidx] = gy.reshape(-1)
        return gx
    p = ph.phases(g)
    m = n * c * p.size
    # gradient * (offset won): one pass, but an inf or NaN gradient would leave NaN (0 * inf)
    # where its offset lost; then a select, so that losers get exact zeros as in PyTorch
    finite = bool(np.isfinite(gy.sum()))  # (a sum is inf/NaN whenever an entry is: no mask)

    def pick(src: np.ndarray, won: np.ndarray, out: np.ndarray) -> np.ndarray:
        if finite:
            return np.multiply(src, won, out=out)
        out[...] = 0
        np.copyto(out, src, where=won)
        return out

    if ph.tiles(g):  # each pixel in one window: write the gradient straight into place
        g3 = gy.reshape(-1, g.oh, g.ow)
        k3 = kidx.reshape(-1, g.oh, g.ow)
        kdt = kidx.dtype.type
        for t in range(len(p.terms)):
            pick(g3, k3 == kdt(t), ph.phase_view(gx, g, t))
        return gx
    g2 = _gy_padded(gy, g, p)
    gq = workspace("pool_gq", ph.plane_shape(1, n * c, g, p), gy.dtype)
    won = workspace("pool_won", (m,), np.bool_)
    tmp = workspace("pool_tmp", (m,), gy.dtype)
    kdt = kidx.dtype.type
    ph.zero_unread(gq, p)
    for t, first in enumerate(ph.first_writers(p)):
        np.equal(kidx, kdt(t), out=won)
        if first:
            pick(g2, won, ph.write_first(gq, p, t, m)[0])
        else:
            dst = _term(gq, p, t, m)
            np.add(dst, pick(g2, won, tmp), out=dst)
    return ph.from_phases(gq, g, p, gx)


def _max_pool_threads(x: np.ndarray, g: Geometry, track: bool) -> tuple:
    """:func:`_max_pool_cpu` with the batch split over darklib's threads."""
    parts = par.map_reduce(lambda s, e: _max_pool_cpu(x[s:e], g, track), x.shape[0], x.size)
    if len(parts) == 1:
        return parts[0]
    y = np.concatenate([p[0] for p in parts])
    return y, (np.concatenate([p[1] for p in parts]) if track else None)


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, geom, want_indices, holder):
        xb = _as_batched(x)
        track = want_indices or ctx.needs_input_grad[0]
        if get_xp(x) is np:
            y, kidx = _max_pool_threads(xb, geom, track)
            if want_indices:
                holder.append(_flat_indices(kidx, geom, (*x.shape[:-2], geom.oh, geom.ow)))
        else:
            y, kidx = _cuda().max_pool2d(xb, geom)
            if want_indices:
                holder.append(kidx[0] if x.ndim == 3 else kidx)
        ctx.save_for_backward(kidx)
        ctx.geom, ctx.unbatched = geom, x.ndim == 3
        return y[0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, gy):
        (kidx,) = ctx.saved_tensors
        gy = _as_batched(gy)
        if get_xp(gy) is np:
            gx = np.empty((*gy.shape[:2], ctx.geom.h, ctx.geom.w), gy.dtype)
            per_image = kidx.size // max(1, gy.shape[0])

            def piece(s: int, e: int) -> None:
                k = kidx[s * per_image : e * per_image]
                _max_pool_backward_cpu(gy[s:e], k, ctx.geom, gx[s:e])

            par.parallel_for(piece, gy.shape[0], gx.size)
        else:
            gx = _cuda().max_pool2d_backward(gy, kidx, ctx.geom)
        return (gx[0] if ctx.unbatched else gx), None, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        (kidx,) = ctx.saved_tensors
        g = ctx.geom

        def winners(v):  # each window's winner, now of v
            vb = _as_batched(v)
            n, c = vb.shape[:2]
            cpu = get_xp(v) is np
            flat = _flat_indices(kidx, g, (n, c, g.oh, g.ow)) if cpu else kidx
            return _taken(vb, flat, ctx.unbatched)

        return higher_order.linked(
            ctx, (higher_order.linear_adjoint(ctx, gy, winners), None, None, None), 0
        )


def _avg_divisor(g: Geometry, count_include_pad: bool, divisor_override: Any) -> Any:
    """PyTorch's divisor per output: scalar when uniform, else an (oh, ow) array."""
    if divisor_override:
        return int(divisor_override)
    hs = np.arange(g.oh) * g.sh - g.pt
    ws = np.arange(g.ow) * g.sw - g.pl
    he = np.minimum(hs + g.kh, g.h + g.pt)
    we = np.minimum(ws + g.kw, g.w + g.pl)
    if count_include_pad:
        dh, dw = he - hs, we - ws
    else:
        dh = np.minimum(he, g.h) - np.maximum(hs, 0)
        dw = np.minimum(we, g.w) - np.maximum(ws, 0)
    div = np.maximum(dh[:, None] * dw[None, :], 1)
    if div.min() == div.max():
        return int(div.flat[0])
    return div


def _avg_pool_cpu(x: np.ndarray, g: Geometry, div: Any) -> np.ndarray:
    n, c = x.shape[:2]
    if _is_global(g):
        y = x.reshape(n, c, g.h * g.w).sum(axis=2, keepdims=True)
        y /= div
        return y.reshape(n, c, 1, 1)
    if ph.tiles(g) and g.kh * g.kw > 1:  # every pixel read once: add strided views
        x = np.ascontiguousarray(x)
        y = np.empty((n, c, g.oh, g.ow), x.dtype)
        y3 = y.reshape(-1, g.oh, g.ow)
        np.add(ph.phase_view(x, g, 0), ph.phase_view(x, g, 1), out=y3)
        for t in range(2, g.kh * g.kw):
            np.add(y3, ph.phase_view(x, g, t), out=y3)
        y /= div
        return y
    p = ph.phases(g)
    q = _planes(x, g, p, 0.0)
    m = n * c * p.size
    acc = workspace("pool_best", (m,), x.dtype)
    np.copyto(acc, _term(q, p, 0, m))
    with np.errstate(invalid="ignore", over="ignore"):  # scratch positions may hold inf - inf
        for t in range(1, len(p.terms)):
            np.add(acc, _term(q, p, t, m), out=acc)
    y = np.empty((n, c, g.oh, g.ow), x.dtype)
    div = div if np.isscalar(div) else div.astype(x.dtype)
    np.divide(ph.compact(acc[None], g, p), div, out=y.reshape(-1, 1, g.oh, g.ow))
    return y


def _avg_pool_backward_cpu(gy: np.ndarray, g: Geometry, div: Any) -> np.ndarray:
    n, c = gy.shape[:2]
    if _is_global(g):
        gx = np.empty((n, c, g.h * g.w), gy.dtype)
        np.divide(gy.reshape(n, c, 1), div, out=gx)
        return gx.reshape(n, c, g.h, g.w)
    p = ph.phases(g)
    m = n * c * p.size
    if ph.tiles(g):
        gx = np.empty((n, c, g.h, g.w), gy.dtype)
        gd = (gy / div).reshape(-1, g.oh, g.ow)
        for t in range(len(p.terms)):
            np.copyto(ph.phase_view(gx, g, t), gd)
        return gx
    gd = _gy_padded(gy, g, p, div)
    gq = workspace("pool_gq", ph.plane_shape(1, n * c, g, p), gy.dtype)
    ph.zero_unread(gq, p)
    for t, first in enumerate(ph.first_writers(p)):
        if first:
            np.copyto(ph.write_first(gq, p, t, m)[0], gd)
        else:
            dst = _term(gq, p, t, m)
            np.add(dst, gd, out=dst)
    return ph.from_phases(gq, g, p, np.empty((n, c, g.h, g.w), gy.dtype))


def _wide(a: np.ndarray) -> np.ndarray:
    """Half precision sums in float32, as torch's (a 7x7 window summed in float16 is ~1e-3
    off)."""
    return a.astype(np.float32) if a.dtype == np.float16 else a


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, geom, count_include_pad, divisor_override):
        xb = _as_batched(x)
        ctx.geom, ctx.unbatched = geom, x.ndim == 3
        ctx.opts = (count_include_pad, int(divisor_override or 0))
        if get_xp(x) is np:
            ctx.div = _avg_divisor(geom, count_include_pad, divisor_override)
            y = _avg_pool_cpu(_wide(xb), geom, ctx.div).astype(x.dtype, copy=False)
        else:
            y = _cuda().avg_pool2d(xb, geom, *ctx.opts)
        return y[0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, gy):
        gy = _as_batched(gy)
        if get_xp(gy) is np:
            gx = _avg_pool_backward_cpu(_wide(gy), ctx.geom, ctx.div).astype(gy.dtype, copy=False)
        else:
            gx = _cuda().avg_pool2d_backward(gy, ctx.geom, *ctx.opts)
        return (gx[0] if ctx.unbatched else gx), None, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        def pool(v):  # the pool itself: it is linear
            return AvgPool2d.forward(Node(AvgPool2d, ()), v, ctx.geom, *ctx.opts)

        return higher_order.linked(
            ctx, (higher_order.linear_adjoint(ctx, gy, pool), None, None, None), 0
        )


# ------------------------------------------------------------------ adaptive pooling


def _adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive windows: [floor(o*size/out), ceil((o+1)*size/out))."""
    o = np.arange(out)
    return (o * size) // out, -((-(o + 1) * size) // out)


class AdaptiveAvgPool2d(Function):
    """Average over variable windows as two small matrix products: P_h @ x @ P_w^T."""

    @staticmethod
    def forward(ctx, x, oh, ow):
        xp = get_xp(x)
        xb = _as_batched(x)
        h, w = xb.shape[2:]
        dt = np.dtype(x.dtype)
        ph = cached(("adaptive_avg", h, oh, dt.str), xp, lambda: _pool_matrix(h, oh, dt))
        pw = cached(("adaptive_avg", w, ow, dt.str), xp, lambda: _pool_matrix(w, ow, dt))
        ctx.mats, ctx.shape, ctx.unbatched = (ph, pw), xb.shape, x.ndim == 3
        finite = xp.isfinite(xb)
        # (the CPU skips the masks when all is finite; the GPU takes them: no host sync)
        clean = xb if xp is np and finite.all() else xp.where(finite, xb, 0)
        y = _windows(clean, ph, pw)
        if clean is not xb:  # 0 * nan in the products would spread NaN to every window
            y = _nonfinite_windows(xb, ph, pw, y)
        return y[0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, gy):
        xp = get_xp(gy)
        ph, pw = ctx.mats
        n, c, h, w = ctx.shape
        gy = _as_batched(gy)
        oh, ow = gy.shape[2:]
        t = xp.matmul(ph.T, gy.reshape(n * c, oh, ow))  # (nc, h, ow)
        gx = (t.reshape(-1, ow) @ pw).reshape(n, c, h, w)
        return (gx[0] if ctx.unbatched else gx), None, None

    @staticmethod
    def backward_graph(ctx, gy):
        mats, unbatched = ctx.mats, ctx.unbatched

        def pool(v):  # the pool itself: it is linear
            y = _windows(_as_batched(v), *mats)
            return y[0] if unbatched else y

        return higher_order.linked(ctx, (higher_order.linear_adjoint(ctx, gy, pool), None, None), 0)


def _windows(x: Any, ph: Any, pw: Any) -> Any:
    """ph @ x @ pw^T for every plane of x (N, C, H, W): sums over the windows that the
    rows of ph and pw weigh."""
    n, c, h, w = x.shape
    t = (x.reshape(-1, w) @ pw.T).reshape(n * c, h, pw.shape[0])
    return get_xp(x).matmul(ph, t).reshape(n, c, ph.shape[0], pw.shape[0])


def _nonfinite_windows(x: Any, ph: Any, pw: Any, y: Any) -> Any:
    """y with torch's values in the windows holding NaN or infinities: NaN where a window
    holds a NaN or both infinities, else the infinity it holds."""
    xp = get_xp(x)
    inh, inw = (ph > 0).astype(x.dtype), (pw > 0).astype(x.dtype)

    def holds(mask: Any) -> Any:
        return _windows(mask.astype(x.dtype), inh, inw) > 0

    pos, neg = holds(x == xp.inf), holds(x == -xp.inf)
    y = xp.where(pos, xp.inf, xp.where(neg, -xp.inf, y))
    return xp.where(holds(xp.isnan(x)) | (pos & neg), xp.nan, y).astype(x.dtype, copy=False)


def _pool_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    s, e = _adaptive_bounds(size, out)
    cols = np.arange(size)
    m = ((cols >= s[:, None]) & (cols < e[:, None])).astype(dtype)
    m /= (e - s)[:, None].astype(dtype)
    return m


def _adaptive_offsets(h: int, w: int, oh: int, ow: int) -> tuple:
    """Flat input indices (oh, ow) for every offset of the largest adaptive window, in
    row-major window order; windows shorter than the largest repeat their last row/column
    (a repeated pixel never changes a max, nor which pixel won)."""
    hs, he = _adaptive_bounds(h, oh)
    ws, we = _adaptive_bounds(w, ow)
    out = []
    for i in range(int((he - hs).max())):
        rows = np.minimum(hs + i, he - 1)
        for j in range(int((we - ws).max())):
            cols = np.minimum(ws + j, we - 1)
            out.append((rows[:, None] * w + cols[None, :]).astype(np.int64))
    return tuple(out)


class AdaptiveMaxPool2d(Function):
    """Max over variable windows: a loop over the (few) offsets of the largest window,
    gathering clipped rows/columns (a repeated pixel never changes a max)."""

    @staticmethod
    def forward(ctx, x, oh, ow, holder):
        xp = get_xp(x)
        xb = _as_batched(x)
        n, c, h, w = xb.shape
        offsets = cached(
            ("adaptive_max", h, w, oh, ow), xp, lambda: _adaptive_offsets(h, w, oh, ow)
        )
        planes = xb.reshape(n, c, h * w)
        best = idx = None
        for flat in offsets:
            v = planes[:, :, flat]
            if best is None:
                best, idx = v, xp.broadcast_to(flat, v.shape).copy()
                continue
            won = (v > best) | xp.isnan(v)  # a NaN wins, as in max_pool2d and torch
            best = xp.where(won, v, best)
            idx = xp.where(won, flat, idx)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.unbatched = xb.shape, x.ndim == 3
        if holder is not None:
            holder.append(idx[0] if x.ndim == 3 else idx)
        return best[0] if x.ndim == 3 else best

    @staticmethod
    def backward(ctx, gy):
        xp = get_xp(gy)
        (idx,) = ctx.saved_tensors
        n, c, h, w = ctx.shape
        gy = _as_batched(gy)
        plane = (xp.arange(n * c, dtype=xp.int64) * (h * w)).reshape(n, c, 1, 1)
        flat, size = (idx + plane).ravel(), n * c * h * w
        if xp is np:
            gx = np.bincount(flat, weights=gy.ravel(), minlength=size).astype(gy.dtype)
        else:
            gx = _cuda().index_add(size, flat, gy.ravel())
        gx = gx.reshape(n, c, h, w)
        return (gx[0] if ctx.unbatched else gx), None, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        (idx,) = ctx.saved_tensors

        def winners(v):  # each window's winner, now of v
            return _taken(_as_batched(v), idx, ctx.unbatched)

        return higher_order.linked(
            ctx, (higher_order.linear_adjoint(ctx, gy, winners), None, None, None), 0
        )


def _taken(vb: Any, flat: Any, unbatched: bool) -> Any:
    """vb (N, C, H, W) at the in-plane indices ``flat`` (N, C, oh, ow)."""
    n, c = vb.shape[:2]
    xp = get_xp(vb)
    y = xp.take_along_axis(vb.reshape(n, c, -1), flat.reshape(n, c, -1), axis=2)
    y = y.reshape(n, c, *flat.shape[-2:])
    return y[0] if unbatched else y


# ------------------------------------------------------------------ argument checking


def _pair(v: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        v = (int(v), int(v))
    elif isinstance(v, tuple | list) and len(v) == 1:
        v = (v[0], v[0])
    if (
        not isinstance(v, tuple | list)
        or len(v) != 2
        or not all(isinstance(e, int | np.integer) and not isinstance(e, bool) for e in v)
    ):
        raise InvalidType(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    v = (int(v[0]), int(v[1]))
    if min(v) < minimum:
        raise InvalidValue(f"{op}: {name} must be >= {minimum}, got {v}")
    return v


def _check_dtype(op: str, input: Tensor, int64: bool = False, ints: bool = False) -> None:
    """Floating-point inputs only (and int64 ones where ``int64``: torch's average pools
    take them on the CPU; any integers where ``ints``: its max pools), refused as torch
    does, with NotImplementedError."""
    kind = input.array.dtype
    if kind.kind == "f" or (int64 and kind == np.int64) or (ints and kind.kind in "iu"):
        return
    also = " and integer" if ints else " and int64" if int64 else ""
    raise NotImplementedError(
        f"{op}: not implemented for {input.dtype.name} input (floating-point{also} inputs "
        "only); convert it with .float() first"
    )


def _check_input(op: str, input: Any, int64: bool = False, dtype: bool = True) -> None:
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
            f"shape {tuple(input.shape)}"
        )
    if dtype:
        _check_dtype(op, input, int64)


def avg_pool_int(
    x: Any, k: tuple, s: tuple, p: tuple, ceil_mode: bool, count_include_pad: bool, divisor: Any
) -> Any:
    """Average pooling of an int64 array over its last ``len(k)`` axes, as torch's: each
    window's exact integer sum divided by its divisor, the quotient truncated toward zero
    (C's integer division). Arguments are checked; the array may be a NumPy or CuPy one."""
    xp = get_xp(x)
    nd = len(k)
    lead, sizes = x.shape[: x.ndim - nd], x.shape[x.ndim - nd :]
    outs = [_pool_out(n, k_, s_, p_, 1, ceil_mode) for n, k_, s_, p_ in zip(sizes, k, s, p)]
    # zeros around: the left padding, and on the right whatever the last window reaches
    right = [max(0, (o - 1) * s_ + k_ - n - p_) for o, n, k_, s_, p_ in zip(outs, sizes, k, s, p)]
    xpad = xp.pad(x, [(0, 0)] * len(lead) + [(p_, r) for p_, r in zip(p, right)])
    acc = xp.zeros((*lead, *outs), np.int64)
    for offsets in np.ndindex(*k):
        window = tuple(slice(i, i + (o - 1) * s_ + 1, s_) for i, o, s_ in zip(offsets, outs, s))
        acc += xpad[(Ellipsis, *window)]
    if divisor:
        div: Any = int(divisor)
    else:  # the window's size, clipped to the padded input (or to the input without pads)
        div = np.ones((), np.int64)
        for n, k_, s_, p_, o in zip(sizes, k, s, p, outs):
            start = np.arange(o, dtype=np.int64) * s_ - p_
            end = np.minimum(start + k_, n + p_)
            if not count_include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, n)
            div = np.multiply.outer(div, np.maximum(end - start, 1))
        div = xp.asarray(div)
    q = acc // div  # floor; truncation differs where the remainder is non-zero and the
    # signs differ
    q += ((acc - q * div) != 0) & ((acc < 0) != (xp.asarray(div) < 0))
    return q


def max_pool_int(
    x: Any, k: tuple, s: tuple, p: tuple, d: tuple, outs: tuple, want_indices: bool
) -> tuple[Any, Any]:
    """Max pooling of an integer array over its last ``len(k)`` axes to the output sizes
    ``outs`` (checked), as torch's: the first largest value of each window in scan order,
    and (with ``want_indices``) its flat index into the input's trailing axes. A window
    whose values all equal the dtype's lowest one reports its first position inside the
    input, as torch's. Returns ``(values, indices or None)``; NumPy or CuPy arrays."""
    xp = get_xp(x)
    nd = len(k)
    lead, sizes = x.shape[: x.ndim - nd], x.shape[x.ndim - nd :]
    lowest = np.iinfo(x.dtype).min
    right = [
        max(0, (o - 1) * s_ + d_ * (k_ - 1) + 1 - n - p_)
        for o, n, k_, s_, p_, d_ in zip(outs, sizes, k, s, p, d)
    ]
    # the padding holds the lowest value: never strictly larger than the running best
    pads = [(0, 0)] * len(lead) + [(p_, r) for p_, r in zip(p, right)]
    xpad = xp.pad(x, pads, constant_values=lowest)
    best = xp.full((*lead, *outs), lowest, x.dtype)
    starts = [np.arange(o, dtype=np.int64) * s_ - p_ for o, s_, p_ in zip(outs, s, p)]
    strides = [math.prod(sizes[a + 1 :]) for a in range(nd)]

    def flat(coords: list) -> Any:  # the flat index of per-axis coordinates, (outs)
        total = np.zeros((), np.int64)
        for c, st in zip(coords, strides):
            total = np.add.outer(total, c * st)
        return xp.asarray(total)

    idx = None
    if want_indices:  # each window's first tap inside the input, until a larger value
        # (the start moved up by whole dilations to 0 or past it)
        first = [st + np.maximum(-(st // d_), 0) * d_ for st, d_ in zip(starts, d)]
        idx = xp.broadcast_to(flat(first), best.shape).copy()
    for offsets in np.ndindex(*k):
        window = tuple(
            slice(i * d_, i * d_ + (o - 1) * s_ + 1, s_)
            for i, o, s_, d_ in zip(offsets, outs, s, d)
        )
        v = xpad[(Ellipsis, *window)]
        larger = v > best
        best = xp.where(larger, v, best)
        if want_indices:
            taps = [st + i * d_ for st, i, d_ in zip(starts, offsets, d)]
            idx = xp.where(larger, flat(taps), idx)
    return best, idx


class _Window(NamedTuple):
    """A pool's window arguments as the user gave them (each pool checks and expands them):
    one argument of the private pools that take the name of the op the user called
    (``_max_pool2d(op, input, window, return_indices)`` and the like)."""

    kernel_size: Any
    stride: Any
    padding: Any
    dilation: Any
    ceil_mode: bool


def _max_pool_ints(
    input: Tensor, k: tuple, s: tuple, p: tuple, d: tuple, out: tuple, return_indices: bool
) -> Any:
    """Max pooling (2-D or 3-D) of an integer tensor, as torch's (no gradient to keep): the
    output of size ``out``, and with ``return_indices`` the flat indices of the winners."""
    values, idx = max_pool_int(input.array, k, s, p, d, out, bool(return_indices))
    return (Tensor._wrap(values), Tensor._wrap(idx)) if return_indices else Tensor._wrap(values)


def _check_divisor(op: str, divisor_override: Any) -> None:
    """An average pool's ``divisor_override``: None or a non-zero int (not a bool)."""
    if divisor_override is not None and (
        not isinstance(divisor_override, int | np.integer)
        or isinstance(divisor_override, bool)
        or divisor_override == 0
    ):
        raise InvalidValue(
            f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}"
        )


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _pool_geometry(
    op: str,
    input: Tensor,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    max_pad: tuple[int, int],
) -> Geometry:
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    if stride is None or (isinstance(stride, tuple | list) and len(stride) == 0):
        sh, sw = kh, kw
    else:
        sh, sw = _pair(stride, "stride", op, 1)
    ph, pw = _pair(padding, "padding", op, 0)
    dh, dw = _pair(dilation, "dilation", op, 1)
    if ph > max_pad[0] or pw > max_pad[1]:
        raise RuntimeError(
            f"{op}: pad should be at most half of kernel size, but "
            f"got padding={(ph, pw)}, kernel_size={(kh, kw)} and "
            f"dilation={(dh, dw)}"
        )
    h, w = input.shape[-2:]
    oh = _pool_out(h, kh, sh, ph, dh, ceil_mode)
    ow = _pool_out(w, kw, sw, pw, dw, ceil_mode)
    if oh < 1 or ow < 1:
        raise RuntimeError(
            f"{op}: input of shape {tuple(input.shape)} is too small for "
            f"kernel_size={(kh, kw)}, stride={(sh, sw)}, padding={(ph, pw)}, "
            f"dilation={(dh, dw)}: calculated output size ({oh}, {ow})"
        )
    return Geometry(kh, kw, sh, sw, dh, dw, ph, pw, h, w, oh, ow)


def max_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W); floating-point or integer (not bool).
        kernel_size: window size, int or (kH, kW).
        stride: window step; defaults to ``kernel_size``.
        padding: implicit -inf padding on both sides, at most half the window.
        dilation: spacing between window elements.
        ceil_mode: round the output size up instead of down.
        return_indices: also return the argmax of each window as a flat index into its
            input plane (``ih * W + iw``), usable by ``max_unpool2d``.

    Shape:
        Output (N, C, H_out, W_out) with
        ``H_out = (H + 2 * pH - dH * (kH - 1) - 1) // sH + 1`` (``ceil`` with ceil_mode).
    """
    w = _Window(kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool2d("max_pool2d", input, w, return_indices)


def _max_pool2d(op: str, input: Tensor, w: _Window, return_indices: bool) -> Any:
    """max_pool2d, its errors naming ``op`` (the op the user called)."""
    kernel_size, stride, padding, dilation, ceil_mode = w
    _check_input(op, input, dtype=False)
    _check_dtype(op, input, ints=True)
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    max_pad = (kh // 2, kw // 2)  # half the window, dilation or not (torch's rule)
    geom = _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode, max_pad)
    if input.array.dtype.kind in "iu":  # integers, as torch's (no gradient to keep)
        g = geom
        k, s, p, d = (g.kh, g.kw), (g.sh, g.sw), (g.pt, g.pl), (g.dh, g.dw)
        return _max_pool_ints(input, k, s, p, d, (g.oh, g.ow), return_indices)
    holder: list = []
    out = MaxPool2d.apply(input, geom, bool(return_indices), holder)
    if return_indices:
        return out, Tensor._wrap(holder[0])
    return out


def avg_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W); floating-point or int64 (each average of
            an int64 input truncated toward zero, as torch's).
        kernel_size: window size, int or (kH, kW).
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the window.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padding zeros in the divisor.
        divisor_override: divide by this instead of the window size.

    Shape:
        Output (N, C, H_out, W_out) with ``H_out = (H + 2 * pH - kH) // sH + 1``.
    """
    w = _Window(kernel_size, stride, padding, 1, ceil_mode)
    return _avg_pool2d("avg_pool2d", input, w, count_include_pad, divisor_override)


def _avg_pool2d(
    op: str, input: Tensor, w: _Window, count_include_pad: bool, divisor_override: int | None
) -> Tensor:
    """avg_pool2d, its errors naming ``op`` (the op the user called); ``w.dilation`` is 1."""
    kernel_size, stride, padding, _, ceil_mode = w
    _check_input(op, input, int64=True)
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    geom = _pool_geometry(op, input, kernel_size, stride, padding, 1, ceil_mode, (kh // 2, kw // 2))
    _check_divisor(op, divisor_override)
    if input.array.dtype == np.int64:  # (no gradient: integer tensors need none)
        g = geom
        out = avg_pool_int(
            input.array,
            (g.kh, g.kw),
            (g.sh, g.sw),
            (g.pt, g.pl),
            ceil_mode,
            bool(count_include_pad),
            divisor_override,
        )
        return Tensor._wrap(out)
    return AvgPool2d.apply(input, geom, bool(count_include_pad), divisor_override)


def _adaptive_size(op: str, input: Tensor, output_size: Any) -> tuple[int, int]:
    if isinstance(output_size, int | np.integer) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, tuple | list) or len(output_size) != 2:
        raise InvalidType(
            f"{op}: output_size must be an int or a pair (None keeps the input "
            f"size), got {output_size!r}"
        )
    h, w = input.shape[-2:]
    oh, ow = (
        h if output_size[0] is None else int(output_size[0]),
        w if output_size[1] is None else int(output_size[1]),
    )
    if oh < 0 or ow < 0:
        raise InvalidValue(f"{op}: output_size must be >= 0, got {tuple(output_size)}")
    if h < 1 or w < 1:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} has an empty plane")
    return oh, ow


def _empty_pool(input: Tensor, oh: int, ow: int) -> Tensor:
    """An adaptive pool to an empty size, as torch: an empty result, still on the graph."""
    return input.sum((-2, -1), keepdim=True).expand(*input.shape[:-2], oh, ow)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output row ``o`` averages input rows ``floor(o*H/H_out)`` to ``ceil((o+1)*H/H_out)``.

    Args:
        input: (N, C, H, W) or (C, H, W).
        output_size: int or (H_out, W_out); ``None`` keeps that input size.
    """
    return _adaptive_avg_pool2d("adaptive_avg_pool2d", input, output_size)


def _adaptive_avg_pool2d(op: str, input: Tensor, output_size: Any) -> Tensor:
    """adaptive_avg_pool2d, its errors naming ``op`` (the op the user called)."""
    _check_input(op, input)
    oh, ow = _adaptive_size(op, input, output_size)
    h, w = input.shape[-2:]
    if oh == 0 or ow == 0:
        return _empty_pool(input, oh, ow)
    if h % oh == 0 and w % ow == 0:  # regular windows: plain average pooling
        kh, kw = h // oh, w // ow
        geom = Geometry(kh, kw, kh, kw, 1, 1, 0, 0, h, w, oh, ow)
        return AvgPool2d.apply(input, geom, True, None)
    return AdaptiveAvgPool2d.apply(input, oh, ow)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed output size, as ``torch.nn.functional.adaptive_max_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W).
        output_size: int or (H_out, W_out); ``None`` keeps that input size.
        return_indices: also return flat argmax indices into each input plane.
    """
    return _adaptive_max_pool2d("adaptive_max_pool2d", input, output_size, return_indices)


def _adaptive_max_pool2d(op: str, input: Tensor, output_size: Any, return_indices: bool) -> Any:
    """adaptive_max_pool2d, its errors naming ``op`` (the op the user called)."""
    _check_input(op, input)
    oh, ow = _adaptive_size(op, input, output_size)
    h, w = input.shape[-2:]
    holder: list = []
    if oh == 0 or ow == 0:
        out = _empty_pool(input, oh, ow)
        holder.append(get_xp(input.array).zeros(tuple(out.shape), np.int64))
    elif h % oh == 0 and w % ow == 0:
        kh, kw = h // oh, w // ow
        geom = Geometry(kh, kw, kh, kw, 1, 1, 0, 0, h, w, oh, ow)
        out = MaxPool2d.apply(input, geom, bool(return_indices), holder)
    else:
        out = AdaptiveMaxPool2d.apply(input, oh, ow, holder if return_indices else None)
    if return_indices:
        return out, Tensor._wrap(holder[0])
    return out


# ------------------------------------------------------------------ 1-D forms
# 1-D pooling is the 2-D pooling of a plane of height 1: (N, C, L) is viewed as (N, C, 1, L)
# (the reshapes carry the gradient), windows are (1, k), and flat indices into a 1 x L
# plane are positions along L.


def _single(v: Any, name: str, op: str, minimum: int) -> int:
    if isinstance(v, tuple | list) and len(v) == 1:
        v = v[0]
    if not isinstance(v, int | np.integer) or isinstance(v, bool):
        raise RuntimeError(
            f"{op}: {name} must be an int, list of ints or tuple of ints of size 1, got {v!r}"
        )
    if v < minimum:
        raise InvalidValue(f"{op}: {name} must be >= {minimum}, got {int(v)}")
    return int(v)


def _check_input_1d(op: str, input: Any) -> None:
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"{op}: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape {tuple(input.shape)}"
        )


def _window_1d(op: str, kernel_size: Any, stride: Any, padding: Any, max_pad: Any) -> tuple:
    """(kernel, stride, padding) as ints; ``max_pad(k)`` is the largest padding allowed."""
    k = _single(kernel_size, "kernel_size", op, 1)
    empty = stride is None or (isinstance(stride, tuple | list) and len(stride) == 0)
    s = k if empty else _single(stride, "stride", op, 1)
    p = _single(padding, "padding", op, 0)
    if p > max_pad(k):
        raise RuntimeError(
            f"{op}: padding should be at most half of the kernel size, but got "
            f"padding={p} and kernel_size={k}"
        )
    return k, s, p


def _check_length_1d(
    op: str, input: Tensor, k: int, s: int, p: int, d: int, ceil_mode: bool
) -> None:
    """The 1-D output length must be positive (checked here, so that the error shows the
    1-D shapes rather than those of the 2-D op underneath)."""
    n = int(input.shape[-1])
    out = _pool_out(n, k, s, p, d, ceil_mode)
    if n < 1 or out < 1:
        raise RuntimeError(
            f"{op}: input of shape {tuple(input.shape)} is too small for kernel_size={k}, "
            f"stride={s}, padding={p}, dilation={d}: calculated output length {out}"
        )


def _unplane(out: Any) -> Any:
    """Drop the unit height of a 2-D pooling result (and of its indices)."""
    if isinstance(out, tuple):
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def max_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-D max pooling, as ``torch.nn.functional.max_pool1d``.

    Args:
        input: (N, C, L) or (C, L); floating-point (integer too with return_indices,
            as torch's).
        kernel_size: window length, int or 1-tuple.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit -inf padding at both ends, at most half the window.
        dilation: spacing between window elements.
        ceil_mode: round the output length up instead of down.
        return_indices: also return the argmax of each window as a position along L
            (int64), usable by ``max_unpool1d``.

    Shape:
        Output (N, C, L_out) with ``L_out = (L + 2 * p - d * (k - 1) - 1) // s + 1``
        (``ceil`` with ceil_mode).
    """
    w = _Window(kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool1d("max_pool1d", input, w, return_indices)


def _max_pool1d(op: str, input: Tensor, w: _Window, return_indices: bool) -> Any:
    """max_pool1d, its errors naming ``op`` (the op the user called)."""
    kernel_size, stride, padding, dilation, ceil_mode = w
    _check_input_1d(op, input)
    # integers only with the indices: torch's max_pool1d refuses them, while its
    # max_pool1d_with_indices (max_pool2d underneath) takes them
    _check_dtype(op, input, ints=bool(return_indices))
    d = _single(dilation, "dilation", op, 1)
    k, s, p = _window_1d(op, kernel_size, stride, padding, lambda k: k // 2)
    _check_length_1d(op, input, k, s, p, d, ceil_mode)
    plane = _Window((1, k), (1, s), (0, p), (1, d), ceil_mode)
    return _unplane(_max_pool2d(op, input.unsqueeze(-2), plane, return_indices))


def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d``.

    Args:
        input: (N, C, L) or (C, L); floating-point or int64 (truncated averages).
        kernel_size: window length, int or 1-tuple.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding at both ends, at most half the window.
        ceil_mode: round the output length up instead of down.
        count_include_pad: count padding zeros in the divisor.

    Shape:
        Output (N, C, L_out) with ``L_out = (L + 2 * p - k) // s + 1``.
    """
    w = _Window(kernel_size, stride, padding, 1, ceil_mode)
    return _avg_pool1d("avg_pool1d", input, w, count_include_pad)


def _avg_pool1d(op: str, input: Tensor, w: _Window, count_include_pad: bool) -> Tensor:
    """avg_pool1d, its errors naming ``op`` (the op the user called); ``w.dilation`` is 1."""
    kernel_size, stride, padding, _, ceil_mode = w
    _check_input_1d(op, input)
    _check_dtype(op, input, int64=True)
    k, s, p = _window_1d(op, kernel_size, stride, padding, lambda k: k // 2)
    _check_length_1d(op, input, k, s, p, 1, ceil_mode)
    plane = _Window((1, k), (1, s), (0, p), 1, ceil_mode)
    return _avg_pool2d(op, input.unsqueeze(-2), plane, count_include_pad, None).squeeze(-2)


def _adaptive_length(op: str, output_size: Any) -> int:
    if isinstance(output_size, tuple | list):
        if len(output_size) != 1:
            raise RuntimeError(f"{op}: output_size should contain one int (got {len(output_size)})")
        output_size = output_size[0]
    if not isinstance(output_size, int | np.integer) or isinstance(output_size, bool):
        raise InvalidType(f"{op}: output_size must be an int, got {output_size!r}")
    if output_size < 0:
        raise InvalidValue(f"{op}: output_size must be >= 0, got {int(output_size)}")
    return int(output_size)


def _check_nonempty_1d(op: str, input: Tensor) -> None:
    if input.shape[-1] == 0:
        raise RuntimeError(
            f"{op}: expected input to have a non-empty length (last dimension), got shape "
            f"{tuple(input.shape)}"
        )


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed length, as ``torch.nn.functional.adaptive_avg_pool1d``.

    Output position ``o`` averages inputs ``floor(o*L/L_out)`` to ``ceil((o+1)*L/L_out)``.

    Args:
        input: (N, C, L) or (C, L).
        output_size: the output length L_out (an int or a 1-tuple).
    """
    op = "adaptive_avg_pool1d"
    _check_input_1d(op, input)
    _check_dtype(op, input)
    size = _adaptive_length(op, output_size)
    _check_nonempty_1d(op, input)
    return _adaptive_avg_pool2d(op, input.unsqueeze(-2), (1, size)).squeeze(-2)


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed length, as ``torch.nn.functional.adaptive_max_pool1d``.

    Args:
        input: (N, C, L) or (C, L).
        output_size: the output length L_out (an int or a 1-tuple).
        return_indices: also return the argmax positions along L (int64).
    """
    op = "adaptive_max_pool1d"
    _check_input_1d(op, input)
    _check_dtype(op, input)
    size = _adaptive_length(op, output_size)
    _check_nonempty_1d(op, input)
    out = _adaptive_max_pool2d(op, input.unsqueeze(-2), (1, size), bool(return_indices))
    return _unplane(out)


# ------------------------------------------------------------------ unfold / fold (im2col)


def _im2col(x: Any, g: Geometry) -> Any:
    """(N, C, H, W) -> fresh columns (N, C*kh*kw, oh*ow)."""
    if get_xp(x) is np:
        from darklib.kernels import im2col as cpu

        return cpu.im2col(np.ascontiguousarray(x), g, "nkp").copy()  # (a scratch buffer)
    return _cuda().im2col(x, g, "nkp")


def _col2im(cols: Any, c: int, g: Geometry) -> Any:
    """Adjoint of :func:`_im2col`: (N, C*kh*kw, oh*ow) -> fresh (N, C, H, W)."""
    n = cols.shape[0]
    if get_xp(cols) is np:
        from darklib.kernels import im2col as cpu

        return cpu.col2im(np.ascontiguousarray(cols), n, c, g)
    return _cuda().col2im(cols, n, c, g)


class Unfold(Function):
    """im2col; its backward (and adjoint) is :class:`Fold`."""

    @staticmethod
    def forward(ctx, x, g):
        ctx.g, ctx.c = g, x.shape[1]
        return _im2col(x, g)

    @staticmethod
    def backward(ctx, g):
        return _col2im(g, ctx.c, ctx.g), None

    @staticmethod
    def backward_graph(ctx, g):
        return Fold.apply(g, ctx.c, ctx.g), None


class Fold(Function):
    """col2im (a sum over overlapping blocks); its backward is :class:`Unfold`."""

    @staticmethod
    def forward(ctx, cols, c, g):
        ctx.g = g
        return _col2im(cols, c, g)

    @staticmethod
    def backward(ctx, g):
        return _im2col(g, ctx.g), None, None

    @staticmethod
    def backward_graph(ctx, g):
        return Unfold.apply(g, ctx.g), None, None


def _fold_geometry(
    op: str, h: int, w: int, kernel_size: Any, dilation: Any, padding: Any, stride: Any
) -> Geometry:
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    dh, dw = _pair(dilation, "dilation", op, 1)
    ph_, pw = _pair(padding, "padding", op, 0)
    sh, sw = _pair(stride, "stride", op, 1)
    oh = (h + 2 * ph_ - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise InvalidValue(
            f"{op}: spatial size ({h}, {w}) with kernel_size=({kh}, {kw}), dilation=({dh}, "
            f"{dw}), padding=({ph_}, {pw}) gives ({oh}, {ow}) sliding blocks; each must be "
            "at least one"
        )
    return Geometry(kh, kw, sh, sw, dh, dw, ph_, pw, h, w, oh, ow)


def unfold(
    input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> Tensor:
    """Sliding local blocks (im2col): (N, C, H, W) -> (N, C*kh*kw, L), or unbatched
    (C, H, W) -> (C*kh*kw, L), L being the number of blocks. Each column lists a block's
    values channel by channel, row by row; padding is zeros."""
    op = "unfold"
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise InvalidValue(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {tuple(input.shape)}"
        )
    if input.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {input.dtype}")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    g = _fold_geometry(op, x.shape[2], x.shape[3], kernel_size, dilation, padding, stride)
    out = Unfold.apply(x, g)
    return out if input.ndim == 4 else out.squeeze(0)


def fold(
    input: Tensor,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> Tensor:
    """Sum sliding local blocks back into an image (col2im), the adjoint of :func:`unfold`:
    (N, C*kh*kw, L) -> (N, C, H, W) with (H, W) = ``output_size``, or unbatched
    (C*kh*kw, L) -> (C, H, W)."""
    op = "fold"
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise InvalidValue(
            f"{op}: expected a 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L) input, got "
            f"{tuple(input.shape)}"
        )
    if input.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {input.dtype}")
    h, w = _pair(output_size, "output_size", op, 1)
    x = input if input.ndim == 3 else input.unsqueeze(0)
    g = _fold_geometry(op, h, w, kernel_size, dilation, padding, stride)
    k = g.kh * g.kw
    if x.shape[1] % k:
        raise InvalidValue(
            f"{op}: input {tuple(input.shape)}: its channel dimension must be divisible by "
            f"the product of kernel_size ({g.kh}, {g.kw}) = {k}"
        )
    if x.shape[2] != g.oh * g.ow:
        raise InvalidValue(
            f"{op}: input {tuple(input.shape)} has {x.shape[2]} blocks but output_size=({h}, "
            f"{w}), kernel_size=({g.kh}, {g.kw}), dilation=({g.dh}, {g.dw}), padding=("
            f"{g.pt}, {g.pl}), stride=({g.sh}, {g.sw}) give {g.oh} * {g.ow} = {g.oh * g.ow}"
        )
    out = Fold.apply(x, x.shape[1] // k, g)
    return out if input.ndim == 3 else out.squeeze(0)


# ------------------------------------------------------------------ max_unpool


def _unpool_size(
    op: str, input: Tensor, kernel: tuple, stride: tuple, padding: tuple, output_size: Any
) -> tuple:
    """The spatial output size: the inverse of max pooling's, or ``output_size`` checked
    against it (within one stride either way, as torch)."""
    n = len(kernel)
    spatial = tuple(int(s) for s in input.shape[-n:])
    default = tuple((spatial[i] - 1) * stride[i] + kernel[i] - 2 * padding[i] for i in range(n))
    if output_size is None:
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == n + 2:
        size = size[2:]
    if len(size) != n:
        raise InvalidValue(
            f"{op}: output_size should be a sequence containing {n} or {n + 2} elements, "
            f"but it has a length of {len(size)}"
        )
    for d in range(n):
        lo, hi = default[d] - stride[d], default[d] + stride[d]
        if not lo < size[d] < hi:
            raise InvalidValue(
                f"{op}: invalid output_size {size} for input {tuple(input.shape)} "
                f"(dim {d} must be strictly between {lo} and {hi})"
            )
    return size


def _max_unpool(op: str, input: Any, indices: Any, size: tuple) -> Tensor:
    """Scatter each plane of ``input`` to the flat positions ``indices`` of a zero plane of
    ``size``; the gradient (scatter's) gathers at the same positions."""
    from darklib.ops.indexing import scatter

    if not isinstance(indices, Tensor):
        raise InvalidType(f"{op}: indices must be a tensor, got {type(indices).__name__}")
    if indices.dtype.name != "int64":
        raise InvalidType(f"{op}: expected indices of dtype int64, got {indices.dtype.name}")
    if tuple(indices.shape) != tuple(input.shape):
        raise InvalidValue(
            f"{op}: input {tuple(input.shape)} and indices {tuple(indices.shape)} must have "
            "the same shape"
        )
    if min(size) <= 0:
        raise InvalidValue(f"{op}: the output size {size} must be positive")
    lead = tuple(int(s) for s in input.shape[: input.ndim - len(size)])
    plane = int(np.prod(size))
    flat_idx = indices.reshape(*lead, -1)
    if flat_idx.numel() and (int(flat_idx.array.min()) < 0 or int(flat_idx.array.max()) >= plane):
        raise OutOfRange(
            f"{op}: found an invalid max index (indices must lie in [0, {plane}) for an "
            f"output of size {size}), got indices in [{int(flat_idx.array.min())}, "
            f"{int(flat_idx.array.max())}]"
        )
    xp = get_xp(input.array)
    zeros = Tensor._wrap(xp.zeros((*lead, plane), dtype=input.array.dtype))
    out = scatter(zeros, -1, flat_idx, input.reshape(*lead, -1))
    return out.reshape(*lead, *size)


@autocasts("max_unpool2d")
def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The partial inverse of ``max_pool2d``, as ``torch.nn.functional.max_unpool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W), max_pool2d's values.
        indices: max_pool2d's ``return_indices`` output (int64, flat within each plane).
        kernel_size, stride, padding: the pooling's (stride defaults to ``kernel_size``).
        output_size: the (H_out, W_out) (or (N, C, H_out, W_out)) to produce; default
            ``(H - 1) * stride - 2 * padding + kernel_size``.

    Every non-maximal position is zero; the gradient is ``grad[indices]``.
    """
    op = "max_unpool2d"
    _check_input(op, input)
    k = _pair(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _pair(stride, "stride", op, 1)
    p = _pair(padding, "padding", op, 0)
    size = _unpool_size(op, input, k, s, p, output_size)
    return _max_unpool(op, input, indices, size)


def max_unpool1d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The partial inverse of ``max_pool1d``, as ``torch.nn.functional.max_unpool1d``.

    Args:
        input: (N, C, L) or (C, L), max_pool1d's values.
        indices: max_pool1d's ``return_indices`` output (int64 positions along L).
        kernel_size, stride, padding: the pooling's (stride defaults to ``kernel_size``).
        output_size: L_out (as a 1- or 3-sequence); default ``(L - 1) * stride - 2 *
            padding + kernel_size``.
    """
    op = "max_unpool1d"
    _check_input_1d(op, input)
    if input.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {input.dtype}")
    k = _single(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _single(stride, "stride", op, 1)
    p = _single(padding, "padding", op, 0)
    size = _unpool_size(op, input, (k,), (s,), (p,), output_size)
    return _max_unpool(op, input, indices, size)


# ------------------------------------------------------------------ lp_pool


def _lp_from_avg(avg: Tensor, norm_type: float, window: int) -> Tensor:
    """torch's ``(sign(a) * relu(|a|) * window) ** (1 / p)`` of the window averages ``a``
    of ``x ** p``: the p-norm of each window (NaN where an odd power sums negative)."""
    from darklib.ops.elementwise import relu

    return (avg.sign() * relu(avg.abs()) * window) ** (1.0 / norm_type)


def _norm_type(op: str, norm_type: Any) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, int | float | np.number):
        raise InvalidType(f"{op}: norm_type must be a number, got {norm_type!r}")
    return float(norm_type)


def _power(norm_type: Any, p: float) -> Any:
    """The exponent of ``x ** p`` as torch's: an int stays one, so that an integer input's
    powers, and their average, stay integers (truncated, as torch's)."""
    return int(norm_type) if isinstance(norm_type, int | np.integer) else p


def lp_pool2d(
    input: Tensor,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> Tensor:
    """2-D power-average pooling, as ``torch.nn.functional.lp_pool2d``: each window's
    ``(sum x ** p) ** (1 / p)``, computed as ``avg_pool2d(x ** p) * kH * kW``.

    Args:
        input: (N, C, H, W) or (C, H, W).
        norm_type: the power p.
        kernel_size: window size, int or (kH, kW).
        stride: window step; defaults to ``kernel_size``.
        ceil_mode: round the output size up instead of down (a partial last window sums
            only the elements it covers).
    """
    op = "lp_pool2d"
    _check_input(op, input, dtype=False)  # (the power's dtype is checked)
    p = _norm_type(op, norm_type)
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    w = _Window((kh, kw), stride, 0, 1, ceil_mode)
    if p == math.inf:  # the limit, as torch: the largest magnitude of each window
        return _max_pool2d(op, input.abs(), w, False)
    avg = _avg_pool2d(op, input ** _power(norm_type, p), w, True, None)
    return _lp_from_avg(avg, p, kh * kw)


def lp_pool1d(
    input: Tensor,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> Tensor:
    """1-D power-average pooling, as ``torch.nn.functional.lp_pool1d``: each window's
    ``(sum x ** p) ** (1 / p)``, computed as ``avg_pool1d(x ** p) * k``.

    Args:
        input: (N, C, L) or (C, L).
        norm_type: the power p.
        kernel_size: window length, int or 1-tuple.
        stride: window step; defaults to ``kernel_size``.
        ceil_mode: round the output length up instead of down.
    """
    op = "lp_pool1d"
    _check_input_1d(op, input)
    p = _norm_type(op, norm_type)
    k = _single(kernel_size, "kernel_size", op, 1)
    w = _Window(k, stride, 0, 1, ceil_mode)
    if p == math.inf:  # the limit, as torch: the largest magnitude of each window
        return _max_pool1d(op, input.abs(), w, False)
    avg = _avg_pool1d(op, input ** _power(norm_type, p), w, True)
    return _lp_from_avg(avg, p, k)


# ------------------------------------------------------------------ 3-D unpool, lp_pool3d


def _triple(v: Any, name: str, op: str, minimum: int) -> tuple[int, int, int]:
    from darklib.ops.volumetric import _triple as triple

    return triple(v, name, op, minimum)


@autocasts("max_unpool3d")
def max_unpool3d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The partial inverse of ``max_pool3d``, as ``torch.nn.functional.max_unpool3d``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W), max_pool3d's values.
        indices: max_pool3d's ``return_indices`` output (int64, flat within each volume).
        kernel_size, stride, padding: the pooling's (stride defaults to ``kernel_size``).
        output_size: the (D_out, H_out, W_out) (or with N, C) to produce; default
            ``(D - 1) * stride - 2 * padding + kernel_size`` per dimension.
    """
    from darklib.ops.volumetric import _check_pool_input

    op = "max_unpool3d"
    _check_pool_input(op, input)
    k = _triple(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _triple(stride, "stride", op, 1)
    p = _triple(padding, "padding", op, 0)
    size = _unpool_size(op, input, k, s, p, output_size)
    return _max_unpool(op, input, indices, size)


def lp_pool3d(
    input: Tensor,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> Tensor:
    """3-D power-average pooling, as ``torch.nn.functional.lp_pool3d``: each window's
    ``(sum x ** p) ** (1 / p)``, computed as ``avg_pool3d(x ** p) * kD * kH * kW``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W).
        norm_type: the power p (``inf``: the largest magnitude of each window).
        kernel_size: window size, int or (kD, kH, kW).
        stride: window step; defaults to ``kernel_size``.
        ceil_mode: round the output size up instead of down.
    """
    from darklib.ops.volumetric import _avg_pool3d, _check_pool_input, _max_pool3d

    op = "lp_pool3d"
    _check_pool_input(op, input, dtype=False)  # (the power's dtype is checked)
    p = _norm_type(op, norm_type)
    k = _triple(kernel_size, "kernel_size", op, 1)
    w = _Window(k, stride, 0, 1, ceil_mode)
    if p == math.inf:
        return _max_pool3d(op, input.abs(), w, False)
    avg = _avg_pool3d(op, input ** _power(norm_type, p), w, True, None)
    return _lp_from_avg(avg, p, k[0] * k[1] * k[2])


def _with_indices(name: str, pool: Callable[[], Callable]) -> Callable:
    """torch's ``max_poolNd_with_indices``: the pool (from ``pool()``) returning ``(output,
    indices)`` whatever ``return_indices`` says."""

    def with_indices(
        input: Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> tuple[Tensor, Tensor]:
        return pool()(input, kernel_size, stride, padding, dilation, ceil_mode, True)

    with_indices.__name__ = with_indices.__qualname__ = f"{name}_with_indices"
    with_indices.__doc__ = f"``{name}`` returning ``(output, indices)``."
    return with_indices


def _max_pool3d() -> Callable:
    from darklib.ops.volumetric import max_pool3d

    return max_pool3d


max_pool1d_with_indices = _with_indices("max_pool1d", lambda: max_pool1d)
max_pool2d_with_indices = _with_indices("max_pool2d", lambda: max_pool2d)
max_pool3d_with_indices = _with_indices("max_pool3d", _max_pool3d)
