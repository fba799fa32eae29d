"""2-D pooling: max, average and their adaptive forms, with PyTorch's sizes and semantics.

On the CPU every pooling op is a loop over the kh*kw kernel offsets, each step one
vectorised NumPy call on a strided slice of the input (never a loop over pixels). Window
edges that fall into padding are clipped away (see :func:`offset_slices`), so no padded
copy of the input is made. Max pooling records, per output, which kernel offset won (a
small integer array); backward scatters the gradient offset by offset. On the GPU the same
arithmetic runs in the kernels of :mod:`darklib.kernels.cuda`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.kernels.im2col import Geometry, offset_slices
from darklib.kernels.tables import cached
from darklib.tensor import Tensor


def _cuda():
    from darklib.kernels import cuda

    return cuda


def _as_batched(x: Any) -> Any:
    return x[None] if x.ndim == 3 else x


def _covers(g: Geometry) -> bool:
    """True when kernel offset (0, 0) reads an in-range pixel for every output window."""
    return g.pt == 0 and g.pl == 0


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


def _max_pool_cpu(x: np.ndarray, g: Geometry, track: bool) -> tuple:
    """Max over windows; with ``track``, also the winning kernel offset (first max wins)."""
    n, c = x.shape[:2]
    slices = offset_slices(g)
    kdt = _offset_dtype(g)
    if _covers(g):
        i, j, o_idx, i_idx = slices[0]
        out = np.array(x[:, :, i_idx[0], i_idx[1]])
        rest = slices[1:]
        kidx = np.zeros(out.shape, kdt) if track else None
    else:
        out = np.full((n, c, g.oh, g.ow), -np.inf, x.dtype)
        rest = slices
        kidx = (
            np.broadcast_to(_first_valid_offset(g).astype(kdt), out.shape).copy() if track else None
        )
    for i, j, o_idx, i_idx in rest:
        v = x[:, :, i_idx[0], i_idx[1]]
        ov = out[:, :, o_idx[0], o_idx[1]]
        if track:
            # offsets come in increasing order, so "set to t where v wins" is a maximum
            t = kdt.type(i * g.kw + j)
            won = np.greater(v, ov)
            np.maximum(
                kidx[:, :, o_idx[0], o_idx[1]],
                np.multiply(won, t, dtype=kdt),
                out=kidx[:, :, o_idx[0], o_idx[1]],
            )
        np.maximum(ov, v, out=ov)
    return out, kidx


def _flat_indices(kidx: np.ndarray, g: Geometry) -> np.ndarray:
    """Winning kernel offsets -> PyTorch's indices (ih * W + iw in the input plane)."""
    k = kidx.astype(np.int64)
    ki, kj = np.divmod(k, g.kw)
    ih = (np.arange(g.oh, dtype=np.int64) * g.sh - g.pt)[:, None] + ki * g.dh
    iw = (np.arange(g.ow, dtype=np.int64) * g.sw - g.pl) + kj * g.dw
    return ih * g.w + iw


def _non_overlapping(g: Geometry) -> bool:
    return g.sh >= g.dh * (g.kh - 1) + 1 and g.sw >= g.dw * (g.kw - 1) + 1


def _tiles(g: Geometry) -> bool:
    """Windows that tile the input exactly: every pixel is in exactly one window."""
    return (
        (g.kh, g.kw) == (g.sh, g.sw)
        and g.dh == g.dw == 1
        and g.pt == g.pl == 0
        and (g.h == g.oh * g.sh and g.w == g.ow * g.sw)
    )


def _grad_buffer(gy: np.ndarray, g: Geometry) -> np.ndarray:
    n, c = gy.shape[:2]
    alloc = np.empty if _tiles(g) else np.zeros  # tiled: every element gets written
    return alloc((n, c, g.h, g.w), gy.dtype)


def _max_pool_backward_cpu(gy: np.ndarray, kidx: np.ndarray, g: Geometry) -> np.ndarray:
    gx = _grad_buffer(gy, g)
    disjoint = _non_overlapping(g)
    kdt = kidx.dtype.type
    for i, j, o_idx, i_idx in offset_slices(g):
        won = kidx[:, :, o_idx[0], o_idx[1]] == kdt(i * g.kw + j)
        src = gy[:, :, o_idx[0], o_idx[1]]
        dst = gx[:, :, i_idx[0], i_idx[1]]
        if disjoint:  # each input pixel is in at most one window: write, zeros included
            np.multiply(src, won, out=dst)
        else:
            dst += src * won
    return gx


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, geom, want_indices, holder):
        xb = _as_batched(x)
        track = want_indices or ctx.needs_input_grad[0]
        if get_xp(x) is np:
            y, kidx = _max_pool_cpu(xb, geom, track)
            if want_indices:
                idx = _flat_indices(kidx, geom)
                holder.append(idx[0] if x.ndim == 3 else idx)
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
            gx = _max_pool_backward_cpu(gy, kidx, ctx.geom)
        else:
            gx = _cuda().max_pool2d_backward(gy, kidx, ctx.geom)
        return (gx[0] if ctx.unbatched else gx), None, None, None


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
    slices = offset_slices(g)
    if _covers(g):
        i_idx = slices[0][3]
        out = np.array(x[:, :, i_idx[0], i_idx[1]])
        slices = slices[1:]
    else:
        out = np.zeros((n, c, g.oh, g.ow), x.dtype)
    for _, _, o_idx, i_idx in slices:
        out[:, :, o_idx[0], o_idx[1]] += x[:, :, i_idx[0], i_idx[1]]
    out /= div if np.isscalar(div) else div.astype(x.dtype)
    return out


def _avg_pool_backward_cpu(gy: np.ndarray, g: Geometry, div: Any) -> np.ndarray:
    gd = gy / (div if np.isscalar(div) else div.astype(gy.dtype))
    gx = _grad_buffer(gy, g)
    disjoint = _non_overlapping(g)
    for _, _, o_idx, i_idx in offset_slices(g):
        src = gd[:, :, o_idx[0], o_idx[1]]
        if disjoint:
            gx[:, :, i_idx[0], i_idx[1]] = src
        else:
            gx[:, :, i_idx[0], i_idx[1]] += src
    return gx


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, geom, count_include_pad, divisor_override):
        xb = _as_batched(x)
        ctx.geom, ctx.unbatched = geom, x.ndim == 3
        ctx.opts = (count_include_pad, int(divisor_override or 0))
        if get_xp(x) is np:
            ctx.div = _avg_divisor(geom, count_include_pad, divisor_override)
            y = _avg_pool_cpu(xb, geom, ctx.div)
        else:
            y = _cuda().avg_pool2d(xb, geom, *ctx.opts)
        return y[0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, gy):
        gy = _as_batched(gy)
        if get_xp(gy) is np:
            gx = _avg_pool_backward_cpu(gy, ctx.geom, ctx.div)
        else:
            gx = _cuda().avg_pool2d_backward(gy, ctx.geom, *ctx.opts)
        return (gx[0] if ctx.unbatched else gx), None, None, None


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
        n, c, h, w = xb.shape
        dt = np.dtype(x.dtype)
        ph = cached(("adaptive_avg", h, oh, dt.str), xp, lambda: _pool_matrix(h, oh, dt))
        pw = cached(("adaptive_avg", w, ow, dt.str), xp, lambda: _pool_matrix(w, ow, dt))
        ctx.mats, ctx.shape, ctx.unbatched = (ph, pw), xb.shape, x.ndim == 3
        t = (xb.reshape(-1, w) @ pw.T).reshape(n * c, h, ow)
        y = xp.matmul(ph, t).reshape(n, c, oh, ow)
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
            won = v > best
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
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    v = (int(v[0]), int(v[1]))
    if min(v) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return v


def _check_input(op: str, input: Any) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
            f"shape {tuple(input.shape)}"
        )
    if input.array.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {input.dtype}")


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
            f"{op}: pad should be at most half of effective kernel size, but "
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
        input: (N, C, H, W) or (C, H, W).
        kernel_size: window size, int or (kH, kW).
        stride: window step; defaults to ``kernel_size``.
        padding: implicit -inf padding on both sides, at most half the (dilated) window.
        dilation: spacing between window elements.
        ceil_mode: round the output size up instead of down.
        return_indices: also return the argmax of each window as a flat index into its
            input plane (``ih * W + iw``), usable by ``max_unpool2d``.

    Shape:
        Output (N, C, H_out, W_out) with
        ``H_out = (H + 2 * pH - dH * (kH - 1) - 1) // sH + 1`` (``ceil`` with ceil_mode).
    """
    op = "max_pool2d"
    _check_input(op, input)
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    dh, dw = _pair(dilation, "dilation", op, 1)
    max_pad = (((kh - 1) * dh + 1) // 2, ((kw - 1) * dw + 1) // 2)
    geom = _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode, max_pad)
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
        input: (N, C, H, W) or (C, H, W).
        kernel_size: window size, int or (kH, kW).
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the window.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padding zeros in the divisor.
        divisor_override: divide by this instead of the window size.

    Shape:
        Output (N, C, H_out, W_out) with ``H_out = (H + 2 * pH - kH) // sH + 1``.
    """
    op = "avg_pool2d"
    _check_input(op, input)
    kh, kw = _pair(kernel_size, "kernel_size", op, 1)
    geom = _pool_geometry(op, input, kernel_size, stride, padding, 1, ceil_mode, (kh // 2, kw // 2))
    if divisor_override is not None and (
        not isinstance(divisor_override, int | np.integer) or divisor_override == 0
    ):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}")
    return AvgPool2d.apply(input, geom, bool(count_include_pad), divisor_override)


def _adaptive_size(op: str, input: Tensor, output_size: Any) -> tuple[int, int]:
    if isinstance(output_size, int | np.integer) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, tuple | list) or len(output_size) != 2:
        raise TypeError(
            f"{op}: output_size must be an int or a pair (None keeps the input "
            f"size), got {output_size!r}"
        )
    h, w = input.shape[-2:]
    oh, ow = (
        h if output_size[0] is None else int(output_size[0]),
        w if output_size[1] is None else int(output_size[1]),
    )
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: output_size must be positive, got {tuple(output_size)}")
    if h < 1 or w < 1:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} has an empty plane")
    return oh, ow


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output row ``o`` averages input rows ``floor(o*H/H_out)`` to ``ceil((o+1)*H/H_out)``.

    Args:
        input: (N, C, H, W) or (C, H, W).
        output_size: int or (H_out, W_out); ``None`` keeps that input size.
    """
    op = "adaptive_avg_pool2d"
    _check_input(op, input)
    oh, ow = _adaptive_size(op, input, output_size)
    h, w = input.shape[-2:]
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
    op = "adaptive_max_pool2d"
    _check_input(op, input)
    oh, ow = _adaptive_size(op, input, output_size)
    h, w = input.shape[-2:]
    holder: list = []
    if h % oh == 0 and w % ow == 0:
        kh, kw = h // oh, w // ow
        geom = Geometry(kh, kw, kh, kw, 1, 1, 0, 0, h, w, oh, ow)
        out = MaxPool2d.apply(input, geom, bool(return_indices), holder)
    else:
        out = AdaptiveMaxPool2d.apply(input, oh, ow, holder if return_indices else None)
    if return_indices:
        return out, Tensor._wrap(holder[0])
    return out
