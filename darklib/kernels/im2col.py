"""NumPy building blocks for convolution and pooling: im2col on strided views, col2im by
per-offset scatter-add, and scratch buffers that are reused between calls.

Index convention (shared with the CUDA kernels in :mod:`darklib.kernels.cuda`): output
position ``oh`` and kernel offset ``i`` read input row ``ih = oh * sh - pt + i * dh``; rows
outside ``[0, H)`` are padding. Loops in this file run over kernel offsets (``kh * kw``
of them), never over pixels: every step is one vectorised NumPy call over N, C, H and W.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

_local = threading.local()


def workspace(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A scratch array of ``shape`` kept for reuse by later calls in this thread.

    Large fresh allocations cost page faults on every call (a 75 MB im2col buffer: about
    as long as filling it); reusing one buffer avoids that. The contents are undefined
    and the array must never escape the op that asked for it.
    """
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = pool.get(name)
    if buf is None or buf.nbytes < nbytes:
        pool.pop(name, None)  # drop the old buffer before allocating the bigger one
        buf = pool[name] = np.empty(max(nbytes, 64), np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def release_workspace() -> None:
    """Free this thread's scratch buffers (they are re-created on demand)."""
    _local.pool = {}
    _local.frames = {}


def _frame(shape: tuple[int, ...], dtype: np.dtype, value: float, inner: tuple) -> np.ndarray:
    """A scratch array of ``shape`` for padded copies, kept between calls in this thread:
    one per shape, fill value and placement of the interior (``inner``: its top, left,
    height and width), so that only the interior is ever written and the border still
    holds ``value`` (filling the border of each padded image cost as much as copying it)."""
    frames = getattr(_local, "frames", None)
    if frames is None:
        frames = _local.frames = {}
    key = (shape, np.dtype(dtype).str, value, inner)
    buf = frames.get(key)
    if buf is None:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if sum(b.nbytes for b in frames.values()) + nbytes > _FRAME_BYTES:
            frames.clear()  # a network has few distinct padded inputs: rarely taken
        buf = frames[key] = np.full(shape, value, dtype)
    return buf


_FRAME_BYTES = 1 << 27  # per thread


class Geometry(NamedTuple):
    """A 2-D sliding window: kernel, stride, dilation, top/left padding, input and output
    sizes. Bottom/right padding is implied by the output size."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int
    h: int
    w: int
    oh: int
    ow: int


def offset_range(i: int, size: int, out: int, s: int, p: int, d: int) -> tuple | None:
    """For kernel offset ``i`` along one axis: ``(o0, o1, i0)`` such that outputs
    ``o0 <= o < o1`` read the in-range input positions ``i0, i0 + s, ...``; None if none do.
    """
    shift = i * d - p  # input position read by output 0
    o0 = max(0, -(shift // s)) if shift < 0 else 0  # smallest o with o*s + shift >= 0
    o1 = min(out, -((shift - size) // s))  # o*s + shift < size  <=>  o < ceil((size-shift)/s)
    if o1 <= o0:
        return None
    return o0, o1, o0 * s + shift


def offset_slices(g: Geometry) -> list[tuple[int, int, tuple, tuple]]:
    """``(i, j, out_index, in_index)`` for every kernel offset that reads the input: the
    output window ``out[..., out_index]`` pairs element-wise with ``x[..., in_index]``."""
    res = []
    for i in range(g.kh):
        rh = offset_range(i, g.h, g.oh, g.sh, g.pt, g.dh)
        if rh is None:
            continue
        ho0, ho1, hi0 = rh
        hs_in = slice(hi0, hi0 + (ho1 - ho0 - 1) * g.sh + 1, g.sh)
        for j in range(g.kw):
            rw = offset_range(j, g.w, g.ow, g.sw, g.pl, g.dw)
            if rw is None:
                continue
            wo0, wo1, wi0 = rw
            ws_in = slice(wi0, wi0 + (wo1 - wo0 - 1) * g.sw + 1, g.sw)
            res.append((i, j, (slice(ho0, ho1), slice(wo0, wo1)), (hs_in, ws_in)))
    return res


def pad(
    x: np.ndarray,
    pt: int,
    pb: int,
    pl: int,
    pr: int,
    value: float = 0.0,
    scratch: str | None = None,
) -> np.ndarray:
    """``x`` (N, C, H, W) padded by constant ``value``; into a scratch buffer (whose border is
    written once, see :func:`_frame`) if ``scratch``."""
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    shape = (n, c, h + pt + pb, w + pl + pr)
    if scratch:
        out = _frame(shape, x.dtype, value, (pt, pl, h, w))
        out[:, :, pt : pt + h, pl : pl + w] = x
        return out
    out = np.empty(shape, x.dtype)
    if pt:
        out[:, :, :pt] = value
    if pb:
        out[:, :, pt + h :] = value
    if pl:
        out[:, :, pt : pt + h, :pl] = value
    if pr:
        out[:, :, pt : pt + h, pl + w :] = value
    out[:, :, pt : pt + h, pl : pl + w] = x
    return out


def windows(x: np.ndarray, g: Geometry) -> np.ndarray:
    """Read-only view (N, C, kh, kw, oh, ow) of every window of ``x`` (padding included).

    ``x`` must already be padded so that every window lies inside it.
    """
    n, c = x.shape[:2]
    s_n, s_c, s_h, s_w = x.strides
    return as_strided(
        x,
        (n, c, g.kh, g.kw, g.oh, g.ow),
        (s_n, s_c, s_h * g.dh, s_w * g.dw, s_h * g.sh, s_w * g.sw),
        writeable=False,
    )


def padded_for(
    x: np.ndarray, g: Geometry, value: float = 0.0, scratch: str | None = "pad"
) -> np.ndarray:
    """``x`` padded just enough (top/left from ``g``, bottom/right as the windows need)."""
    rows = (g.oh - 1) * g.sh + g.dh * (g.kh - 1) + 1
    cols = (g.ow - 1) * g.sw + g.dw * (g.kw - 1) + 1
    pb = max(0, rows - g.pt - g.h)
    pr = max(0, cols - g.pl - g.w)
    return pad(x, g.pt, pb, g.pl, pr, value, scratch)


def im2col(x: np.ndarray, g: Geometry, layout: str) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into a scratch buffer of columns, one copy from a view.

    ``layout='nkp'`` gives (N, C*kh*kw, oh*ow): a batched GEMM with the weight yields
    NCHW output directly. ``layout='knp'`` gives (C*kh*kw, N*oh*ow): one big GEMM, better
    when oh*ow is small and for the weight gradient (contracting over N*oh*ow).
    """
    n, c = x.shape[:2]
    view = windows(padded_for(x, g), g)
    k, p = c * g.kh * g.kw, g.oh * g.ow
    if layout == "nkp":
        cols = workspace("cols", (n, c, g.kh, g.kw, g.oh, g.ow), x.dtype)
        np.copyto(cols, view)
        return cols.reshape(n, k, p)
    cols = workspace("cols", (c, g.kh, g.kw, n, g.oh, g.ow), x.dtype)
    np.copyto(cols, view.transpose(1, 2, 3, 0, 4, 5))
    return cols.reshape(k, n * p)


def im2col_nhwc(x: np.ndarray, g: Geometry) -> np.ndarray:
    """Columns in channels-last order: (N*oh*ow, kh*kw*C) in a scratch buffer.

    For small images: the copies run over C-long contiguous rows instead of ow-long ones
    (a 4x4 image has rows of 4 pixels but often hundreds of channels)."""
    n, c = x.shape[:2]
    rows = (g.oh - 1) * g.sh + g.dh * (g.kh - 1) + 1
    cols = (g.ow - 1) * g.sw + g.dw * (g.kw - 1) + 1
    hp, wp = g.pt + max(g.h, rows - g.pt), g.pl + max(g.w, cols - g.pl)
    xp = workspace("pad", (n, hp, wp, c), x.dtype)
    xp[:, : g.pt] = 0
    xp[:, g.pt + g.h :] = 0
    xp[:, g.pt : g.pt + g.h, : g.pl] = 0
    xp[:, g.pt : g.pt + g.h, g.pl + g.w :] = 0
    xp[:, g.pt : g.pt + g.h, g.pl : g.pl + g.w] = x.transpose(0, 2, 3, 1)
    s_n, s_h, s_w, s_c = xp.strides
    view = as_strided(
        xp,
        (n, g.oh, g.ow, g.kh, g.kw, c),
        (s_n, s_h * g.sh, s_w * g.sw, s_h * g.dh, s_w * g.dw, s_c),
        writeable=False,
    )
    out = workspace("cols", view.shape, x.dtype)
    np.copyto(out, view)
    return out.reshape(n * g.oh * g.ow, g.kh * g.kw * c)


def col2im_nhwc(cols: np.ndarray, n: int, c: int, g: Geometry, out: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`im2col_nhwc`, written into ``out`` (N, C, H, W)."""
    c6 = cols.reshape(n, g.oh, g.ow, g.kh, g.kw, c)
    acc = workspace("col2im", (n, g.h, g.w, c), cols.dtype)
    acc[...] = 0
    for i, j, o_idx, i_idx in offset_slices(g):
        acc[:, i_idx[0], i_idx[1]] += c6[:, o_idx[0], o_idx[1], i, j]
    out[...] = acc.transpose(0, 3, 1, 2)
    return out


def col2im(
    cols: np.ndarray, n: int, c: int, g: Geometry, out: np.ndarray | None = None
) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add columns back into (N, C, H, W).

    ``cols`` is (N, C*kh*kw, oh*ow) or, for ``knp``, (C*kh*kw, N*oh*ow). One strided add
    per kernel offset; padding positions are simply never written. Writes into ``out``
    (overwritten) when given, else into a fresh array.
    """
    if cols.ndim == 3:
        c6 = cols.reshape(n, c, g.kh, g.kw, g.oh, g.ow)
    else:
        c6 = cols.reshape(c, g.kh, g.kw, n, g.oh, g.ow).transpose(3, 0, 1, 2, 4, 5)
    if out is None:
        out = np.zeros((n, c, g.h, g.w), cols.dtype)
    else:
        out[...] = 0
    for i, j, o_idx, i_idx in offset_slices(g):
        out[:, :, i_idx[0], i_idx[1]] += c6[:, :, i, j, o_idx[0], o_idx[1]]
    return out
