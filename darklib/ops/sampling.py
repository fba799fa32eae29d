"""Resampling: ``interpolate`` with PyTorch's nearest, nearest-exact, (bi)linear, bicubic
and area modes, and antialiased (bi)linear/bicubic downsampling.

Resampling is separable, so each axis gets a small lookup table of source indices (and,
for linear modes, weights), computed once per geometry with PyTorch's exact arithmetic
(float32 scales for nearest, the input's precision for linear). Forward gathers rows and
columns with those tables. Backward is the adjoint, written as a gather: per axis, a
"band" table lists for every input index the (few) outputs that read it, and the gradient
is a handful of ``take`` + multiply-add passes. Integer nearest upsampling, the common
case, is a broadcast copy forward and a sum of strided slices back. Bicubic and antialiased
modes, whose windows are wider, use a dense (out, in) weight matrix per axis instead: two
GEMMs forward, their transposes back.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, higher_order
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.kernels import parallel as par
from darklib.kernels.tables import cached
from darklib.tensor import Tensor

# ------------------------------------------------------------------ per-axis tables


@functools.lru_cache(maxsize=512)
def _nearest_table(
    n_in: int,
    n_out: int,
    scale: float | None,
    exact: bool,
    shortcuts: bool = True,
    double: bool = False,
) -> tuple:
    """Source index per output index, as PyTorch computes it, plus fast-path facts:
    ``(idx, up, down)`` where ``up``/``down`` is an integer factor when the table is a
    plain repeat (``o // up``) or subsample (``o * down``), else 0. ``shortcuts``: torch's
    2-D kernel copies when the size stays and halves indices when it doubles, whatever
    the scale factor; its 1-D kernel always scales, and for float64 input it takes the scale
    and the product in double (``double``), rounded to float before the floor."""
    dst = np.arange(n_out, dtype=np.int64)
    if shortcuts and not exact and n_out == n_in:
        idx = dst
    elif shortcuts and not exact and n_out == 2 * n_in:
        idx = dst >> 1
    elif double:
        s = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
        src = ((dst + (0.5 if exact else 0.0)) * s).astype(np.float32)
        idx = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    else:
        s = (
            np.float32(1.0 / scale)
            if scale is not None and scale > 0
            else np.float32(n_in) / np.float32(n_out)
        )
        if exact:  # floorf((dst + 0.5) * scale): a double product rounded to float
            src = ((dst + 0.5) * np.float64(s)).astype(np.float32)
        else:
            src = dst.astype(np.float32) * s
        idx = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    up = n_out // n_in if n_out % n_in == 0 and np.array_equal(idx, dst // (n_out // n_in)) else 0
    down = 0
    if n_in % n_out == 0 and np.array_equal(idx, dst * (n_in // n_out)):
        down = n_in // n_out
    idx.flags.writeable = False
    return idx, up, down


@functools.lru_cache(maxsize=512)
def _linear_table(
    n_in: int, n_out: int, scale: float | None, align_corners: bool, dtype: str
) -> tuple:
    """``(i0, i1, lambda0, lambda1)``: output o = lambda0 * x[i0] + lambda1 * x[i1]."""
    dst = np.arange(n_out, dtype=np.int64)
    dt = np.dtype(dtype)
    ct = np.float32 if dt.itemsize < 4 else dt.type  # PyTorch's opmath type
    if n_out == n_in:
        out = (dst, dst, np.ones(n_out, dt), np.zeros(n_out, dt))
    elif align_corners:
        s = ct(n_in - 1) / ct(n_out - 1) if n_out > 1 else ct(0)
        out = _linear_weights(s * dst.astype(ct), n_in, ct, dt)
    else:
        s = ct(1.0 / scale) if scale is not None and scale > 0 else ct(n_in) / ct(n_out)
        src = np.maximum(s * (dst.astype(ct) + ct(0.5)) - ct(0.5), ct(0))
        out = _linear_weights(src, n_in, ct, dt)
    for a in out:
        a.flags.writeable = False
    return out


def _linear_weights(src: np.ndarray, n_in: int, ct: type, dt: np.dtype) -> tuple:
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    l1 = np.clip(src - i0.astype(ct), 0, 1).astype(ct)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (ct(1) - l1).astype(dt), l1.astype(dt)


def _band(targets: np.ndarray, weights: np.ndarray, n_in: int, n_out: int) -> tuple:
    """The adjoint of a resampling table, as a gather.

    Output ``o`` reads input ``targets[j]`` with ``weights[j]`` for ``j = o, o + n_out, ...``
    (``targets``/``weights`` hold one or more tables of length n_out, concatenated).
    Returns ``(src, w, ones)``: for every input index the outputs that read it and their
    weights, padded with weight 0 to the same count K (src and w are (n_in, K)); ``ones[k]``
    says that column k only holds weight 1 (no multiply needed).
    """
    keep = weights != 0
    t, w = targets[keep], weights[keep]
    src = np.nonzero(keep)[0] % n_out
    order = np.argsort(t, kind="stable")
    t, src, w = t[order], src[order], w[order]
    counts = np.bincount(t, minlength=n_in)
    k = max(1, int(counts.max(initial=0)))
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(t.size) - first[t]
    band_src = np.zeros((n_in, k), np.int64)
    band_w = np.zeros((n_in, k), weights.dtype)
    band_src[t, pos] = src
    band_w[t, pos] = w
    ones = tuple(bool(np.all(band_w[:, j] == 1)) for j in range(k))
    return band_src, band_w, ones


@functools.lru_cache(maxsize=512)
def _nearest_band(
    n_in: int, n_out: int, scale: float | None, exact: bool, shortcuts: bool, double: bool
) -> tuple:
    idx = _nearest_table(n_in, n_out, scale, exact, shortcuts, double)[0]
    return _band(idx, np.ones(n_out, np.float32), n_in, n_out)


@functools.lru_cache(maxsize=512)
def _linear_band(
    n_in: int, n_out: int, scale: float | None, align_corners: bool, dtype: str
) -> tuple:
    i0, i1, l0, l1 = _linear_table(n_in, n_out, scale, align_corners, dtype)
    return _band(np.concatenate((i0, i1)), np.concatenate((l0, l1)), n_in, n_out)


def _gather_adjoint(g: np.ndarray, band: tuple, axis: int) -> np.ndarray:
    """Adjoint of resampling along ``axis``: K gathers, each scaled and summed."""
    src, w, ones = band
    shape = [1] * g.ndim
    shape[axis] = -1
    out = None
    for k in range(src.shape[1]):
        term = np.take(g, src[:, k], axis=axis)
        if not ones[k]:
            np.multiply(term, w[:, k].reshape(shape), out=term)
        if out is None:
            out = term
        else:
            out += term
    return out


# ------------------------------------------------------------------ CPU kernels


def _nearest_cpu(x: np.ndarray, th: tuple, tw: tuple) -> np.ndarray:
    (hi, uh, dh), (wi, uw, dw) = th, tw
    n, c, h, w = x.shape
    oh, ow = hi.size, wi.size
    if uh and uw:  # repeat each pixel uh x uw times: one broadcast copy
        src = np.broadcast_to(x[:, :, :, None, :, None], (n, c, h, uh, w, uw))
        return src.reshape(n, c, oh, ow)
    if dh and dw:
        return np.ascontiguousarray(x[:, :, ::dh, ::dw])
    y = x if uh == 1 else np.take(x, hi, axis=2)
    return y if uw == 1 else np.take(y, wi, axis=3)


def _nearest_backward_cpu(
    gy: np.ndarray, th: tuple, tw: tuple, keys: tuple, h: int, w: int
) -> np.ndarray:
    (_, uh, dh), (_, uw, dw) = th, tw
    n, c = gy.shape[:2]
    if uh and uw:  # sum of the uh*uw strided copies, in PyTorch's order
        gx = np.array(gy[:, :, 0::uh, 0::uw])
        for a in range(uh):
            for b in range(uw):
                if a or b:
                    gx += gy[:, :, a::uh, b::uw]
        return gx
    if dh and dw:
        gx = np.zeros((n, c, h, w), gy.dtype)
        gx[:, :, ::dh, ::dw] = gy
        return gx
    t = gy if uw == 1 else _gather_adjoint(gy, _nearest_band(*keys[1][1:]), 3)
    if uh != 1:
        t = _gather_adjoint(t, _nearest_band(*keys[0][1:]), 2)
    return np.ascontiguousarray(t)


def _bilinear_cpu(x: np.ndarray, th: tuple, tw: tuple) -> np.ndarray:
    # PyTorch's order: interpolate along W within rows h0 and h1, then between them
    h0, h1, lh0, lh1 = th
    w0, w1, lw0, lw1 = tw
    t = x
    if w0.size != x.shape[3] or lw1.any():
        t = np.take(x, w0, axis=3) * lw0 + np.take(x, w1, axis=3) * lw1
    if h0.size == x.shape[2] and not lh1.any():
        return np.ascontiguousarray(t)
    return np.take(t, h0, axis=2) * lh0[:, None] + np.take(t, h1, axis=2) * lh1[:, None]


def _bilinear_backward_cpu(gy: np.ndarray, th: tuple, tw: tuple, keys: tuple) -> np.ndarray:
    # the adjoint of _bilinear_cpu: H first, then W; identity axes are skipped
    t = gy
    if keys[0][1] != keys[0][2] or th[3].any():
        t = _gather_adjoint(t, _linear_band(*keys[0][1:]), 2)
    if keys[1][1] != keys[1][2] or tw[3].any():
        t = _gather_adjoint(t, _linear_band(*keys[1][1:]), 3)
    return np.ascontiguousarray(t)


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weights of the 4 taps at offsets -1, 0, 1, 2 from the floor
    of the source position (``t`` its fraction), shape (len(t), 4)."""

    def near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def _axis_scale(n_in: int, n_out: int, scale: float | None, align_corners: bool, ct: type):
    """PyTorch's source-per-destination step (area_pixel_compute_scale)."""
    if align_corners:
        return ct(n_in - 1) / ct(n_out - 1) if n_out > 1 else ct(0)
    return ct(1.0 / scale) if scale is not None and scale > 0 else ct(n_in) / ct(n_out)


@functools.lru_cache(maxsize=256)
def _cubic_matrix(
    n_in: int, n_out: int, scale: float | None, align_corners: bool, dtype: str
) -> np.ndarray:
    """(n_out, n_in) weights of torch's bicubic resampling (A = -0.75, 4 taps clamped at
    the borders, source positions not clamped)."""
    dt = np.dtype(dtype)
    ct = np.float32 if dt.itemsize < 8 else np.float64  # PyTorch's opmath type
    s = _axis_scale(n_in, n_out, scale, align_corners, ct)
    dst = np.arange(n_out).astype(ct)
    src = s * dst if align_corners else s * (dst + ct(0.5)) - ct(0.5)
    i0 = np.floor(src)
    w = _cubic_weights((src - i0).astype(ct), ct(-0.75))
    taps = np.clip(i0.astype(np.int64)[:, None] + np.arange(-1, 3), 0, n_in - 1)
    m = np.zeros((n_out, n_in), ct)
    np.add.at(m, (np.repeat(np.arange(n_out), 4), taps.reshape(-1)), w.reshape(-1))
    return m.astype(dt)


@functools.lru_cache(maxsize=256)
def _antialias_matrix(
    n_in: int, n_out: int, scale: float | None, align_corners: bool, cubic: bool, dtype: str
) -> np.ndarray:
    """(n_out, n_in) weights of torch's antialiased resampling: a triangle (bilinear) or
    cubic (A = -0.5) filter stretched by the downscaling factor, each row normalised."""
    dt = np.dtype(dtype)
    if n_out == n_in:  # torch copies an axis that keeps its size, whatever the scale
        return np.eye(n_in, dtype=dt)
    ct = np.float32 if dt.itemsize < 8 else np.float64
    s = float(_axis_scale(n_in, n_out, scale, align_corners, ct))
    support = (2.0 if cubic else 1.0) * (s if s >= 1 else 1.0)
    inv = 1.0 / s if s >= 1 else 1.0
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        center = s * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        x = np.abs((np.arange(lo, hi) - center + 0.5) * inv)
        if cubic:
            a = -0.5
            w = np.where(
                x < 1,
                ((a + 2) * x - (a + 3)) * x * x + 1,
                np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0),
            )
        else:
            w = np.maximum(0.0, 1.0 - x)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m.astype(dt)


# ------------------------------------------------------------------ Functions


def _cuda():
    from darklib.kernels import cuda

    return cuda


class UpsampleNearest(Function):
    """Nearest resampling of (N, C, H, W) (or (N, C, L), seen as H = 1)."""

    @staticmethod
    def forward(ctx, x, th, tw, keys):
        is1d = x.ndim == 3
        x4 = x[:, :, None, :] if is1d else x
        ctx.tables, ctx.keys, ctx.size, ctx.is1d = (th, tw), keys, x4.shape[2:], is1d
        if get_xp(x) is np:
            y = _nearest_cpu(x4, th, tw)
        else:
            xp = get_xp(x)
            hi = cached(keys[0], xp, lambda: th[0])
            wi = cached(keys[1], xp, lambda: tw[0])
            ctx.dev_tables = (hi, wi)
            y = _cuda().upsample_nearest(x4, hi, wi)
        return y[:, :, 0, :] if is1d else y

    @staticmethod
    def backward(ctx, gy):
        th, tw = ctx.tables
        h, w = ctx.size
        g4 = gy[:, :, None, :] if ctx.is1d else gy
        if get_xp(gy) is np:
            gx = _nearest_backward_cpu(g4, th, tw, ctx.keys, h, w)
        else:
            gx = _cuda().upsample_nearest_backward(g4, *ctx.dev_tables, h, w)
        return (gx[:, :, 0, :] if ctx.is1d else gx), None, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        return higher_order.linear_op(ctx, gy, *ctx.tables, ctx.keys)


class UpsampleBilinear(Function):
    """(Bi)linear resampling of (N, C, H, W) (or (N, C, L), seen as H = 1)."""

    @staticmethod
    def forward(ctx, x, th, tw, keys):
        is1d = x.ndim == 3
        x4 = x[:, :, None, :] if is1d else x
        ctx.tables, ctx.keys, ctx.size, ctx.is1d = (th, tw), keys, x4.shape[2:], is1d
        if get_xp(x) is np:
            y = _bilinear_cpu(x4, th, tw)
        else:
            xp = get_xp(x)
            dth = cached(keys[0], xp, lambda: th)
            dtw = cached(keys[1], xp, lambda: tw)
            ctx.dev_tables = (dth, dtw)
            y = _cuda().upsample_bilinear(x4, dth, dtw)
        return y[:, :, 0, :] if is1d else y

    @staticmethod
    def backward(ctx, gy):
        th, tw = ctx.tables
        h, w = ctx.size
        g4 = gy[:, :, None, :] if ctx.is1d else gy
        if get_xp(gy) is np:
            gx = _bilinear_backward_cpu(g4, th, tw, ctx.keys)
        else:
            gx = _cuda().upsample_bilinear_backward(g4, *ctx.dev_tables, h, w)
        return (gx[:, :, 0, :] if ctx.is1d else gx), None, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        return higher_order.linear_op(ctx, gy, *ctx.tables, ctx.keys)


def _taps_along_last(x, m):
    """``x @ m.T`` summing only the nonzero weights of each row of ``m``: a NaN or inf in
    ``x`` reaches the outputs whose filter covers it, not (as 0 * inf) the whole row."""
    xp = get_xp(x)
    nonzero = m != 0
    width = max(int(nonzero.sum(1).max()), 1)
    cols = xp.argsort(~nonzero, axis=1, kind="stable")[:, :width]  # (out, taps)
    w = xp.take_along_axis(m, cols, 1)
    terms = x[..., cols] * w
    return xp.where(w != 0, terms, 0).sum(-1).astype(x.dtype, copy=False)


def _resample(a, mh, mw):
    """``mh @ a @ mw^T`` over the last two axes of ``a``: dense GEMMs for finite ``a``, the
    filter taps alone where ``a`` holds a NaN or inf."""
    xp = get_xp(a)
    if bool(xp.isfinite(a).all()):
        return xp.ascontiguousarray(xp.matmul(mh, xp.matmul(a, mw.T)))
    rows = _taps_along_last(a, mw)
    return xp.ascontiguousarray(_taps_along_last(rows.swapaxes(-1, -2), mh).swapaxes(-1, -2))


class ResampleMatrix(Function):
    """Separable resampling of (N, C, H, W) by dense per-axis weights: ``mh @ x @ mw^T``."""

    @staticmethod
    def forward(ctx, x, keys, make_h, make_w):
        xp = get_xp(x)
        mh, mw = cached(keys[0], xp, make_h), cached(keys[1], xp, make_w)
        ctx.mats = (mh, mw)
        return _resample(x, mh, mw)

    @staticmethod
    def backward(ctx, gy):
        mh, mw = ctx.mats
        return _resample(gy, mh.T, mw.T), None, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        mh, mw = ctx.mats
        return higher_order.linear_adjoints(ctx, gy, {0: lambda v: _resample(v, mh, mw)})


# ------------------------------------------------------------------ functional API

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "area")


def _spatial(op: str, value: Any, dims: int, name: str, cast: type) -> tuple:
    values = tuple(value) if isinstance(value, tuple | list) else (value,) * dims
    if len(values) != dims:
        raise InvalidValue(
            f"{op}: {name} {values} must have {dims} element(s), one "
            f"per spatial dimension of the input"
        )
    out = []
    for v in values:  # a size of 3.7 is refused rather than truncated, as torch
        if isinstance(v, Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(
            v, int | np.integer | (float | np.floating if cast is float else int)
        ):
            raise InvalidType(f"{op}: {name} must be {cast.__name__}s, got {value!r}")
        out.append(cast(v))
    return tuple(out)


def interpolate(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize a batch of signals or images, as ``torch.nn.functional.interpolate``.

    Args:
        input: (N, C, L) for 1-D modes, (N, C, H, W) for 2-D modes or (N, C, D, H, W)
            for 'nearest', 'nearest-exact', 'trilinear' and 'area' (see
            :func:`darklib.ops.volumetric.interpolate3d`).
        size: output spatial size, int or tuple (one of ``size`` / ``scale_factor``).
        scale_factor: multiplier for the spatial size, float or tuple; the output size is
            ``floor(in * scale_factor)``.
        mode: ``'nearest'`` (PyTorch's legacy ``floor(o * in / out)`` indexing),
            ``'nearest-exact'`` (pixel centres), ``'linear'`` (3-D), ``'bilinear'`` or
            ``'bicubic'`` (4-D; bicubic may overshoot the input's range, as torch's) or
            ``'area'`` (adaptive average pooling, 3-D or 4-D).
        align_corners: linear and cubic modes only: align the corner pixels' centres
            instead of their edges. Default: ``False``.
        recompute_scale_factor: compute the sampling scale from the output size instead
            of using ``scale_factor`` directly.
        antialias: for 'bilinear' and 'bicubic': when downsampling, average over the whole
            footprint of each output pixel (a filter stretched by the factor) instead of
            sampling, which avoids aliasing. Default: ``False``.

    Shape:
        Input (N, C, H, W), output (N, C, H_out, W_out).
    """
    op = "interpolate"
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim == 5:  # volumes: nearest, nearest-exact, trilinear, area
        from darklib.ops.volumetric import interpolate3d

        return interpolate3d(
            input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias
        )
    if mode == "trilinear":
        raise NotImplementedError(
            f"{op}: mode 'trilinear' needs a 5-D input (N, C, D, H, W), got shape "
            f"{tuple(input.shape)}"
        )
    if mode not in _MODES:
        raise NotImplementedError(
            f"{op}: mode {mode!r} is not supported; use one of "
            + ", ".join(repr(m) for m in _MODES)
        )
    if input.ndim not in (3, 4):
        raise NotImplementedError(
            f"{op}: expected a 3-D (N, C, L) or 4-D (N, C, H, W) input, "
            f"got shape {tuple(input.shape)}"
        )
    if mode == "linear" and input.ndim != 3:
        raise NotImplementedError(
            f"{op}: mode 'linear' needs a 3-D input (N, C, L), got "
            f"shape {tuple(input.shape)}; use 'bilinear' for images"
        )
    if mode in ("bilinear", "bicubic") and input.ndim != 4:
        raise NotImplementedError(
            f"{op}: mode {mode!r} needs a 4-D input (N, C, H, W), got shape {tuple(input.shape)}"
        )
    dtype = input.array.dtype
    if dtype.kind != "f" and not (dtype == np.uint8 and mode not in ("area", "linear")):
        raise RuntimeError(
            f"{op}: expected a floating-point input (or uint8 for the nearest, bilinear and "
            f"bicubic modes), got {input.dtype} with mode {mode!r}"
        )
    if antialias and mode not in ("bilinear", "bicubic"):
        raise InvalidValue(
            f"{op}: anti-alias option is restricted to bilinear and bicubic modes and "
            f"requires a 4-D tensor as input (got mode={mode!r})"
        )
    linear = mode in ("linear", "bilinear")
    if align_corners is not None and not (linear or mode == "bicubic"):
        raise InvalidValue(
            f"{op}: align_corners option can only be set with the "
            f"interpolating modes: linear | bilinear | bicubic (got mode={mode!r})"
        )
    if (size is None) == (scale_factor is None):
        raise InvalidValue(
            f"{op}: exactly one of size and scale_factor must be given "
            f"(got size={size!r}, scale_factor={scale_factor!r})"
        )
    dims = input.ndim - 2
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        if recompute_scale_factor:
            raise InvalidValue(
                f"{op}: recompute_scale_factor is not meaningful with an explicit size"
            )
        out_sizes = _spatial(op, size, dims, "size", int)
        scales: tuple = (None,) * dims
    else:
        sf = _spatial(op, scale_factor, dims, "scale_factor", float)
        if any(not math.isfinite(s) or s <= 0 for s in sf):
            raise InvalidValue(
                f"{op}: scale_factor must be positive and finite, got {scale_factor!r}"
            )
        out_sizes = tuple(math.floor(n * s) for n, s in zip(in_sizes, sf))
        scales = (None,) * dims if recompute_scale_factor else sf
    if any(o < 1 for o in out_sizes) or any(n < 1 for n in in_sizes):
        raise InvalidValue(
            f"{op}: input {tuple(input.shape)} and output size {out_sizes} must be non-empty"
        )
    if dtype == np.uint8 and mode in ("bilinear", "bicubic"):
        return _byte_images(input, out_sizes, scales, mode, align_corners, antialias)
    if dims == 1:  # 1-D signals run as images of height 1
        in_sizes, out_sizes, scales = (1, *in_sizes), (1, *out_sizes), (None, *scales)
    if mode == "area":  # adaptive average pooling, 1-d signals as planes of height 1
        from darklib.ops.pool import adaptive_avg_pool2d

        if dims == 1:
            return adaptive_avg_pool2d(input.unsqueeze(-2), out_sizes).squeeze(-2)
        return adaptive_avg_pool2d(input, out_sizes)
    if mode == "bicubic" or antialias:
        dt = np.dtype(input.array.dtype).str
        align = bool(align_corners)
        if antialias:
            keys = tuple(
                ("aa", n, o, s, align, mode == "bicubic", dt)
                for n, o, s in zip(in_sizes, out_sizes, scales)
            )
            makers = [functools.partial(_antialias_matrix, *k[1:]) for k in keys]
        else:
            geom = zip(in_sizes, out_sizes, scales)
            keys = tuple(("cubic", n, o, s, align, dt) for n, o, s in geom)
            makers = [functools.partial(_cubic_matrix, *k[1:]) for k in keys]
        return ResampleMatrix.apply(input, keys, *makers)
    if linear:
        dt = np.dtype(input.array.dtype).str
        align = bool(align_corners)
        keys = tuple(("linear", n, o, s, align, dt) for n, o, s in zip(in_sizes, out_sizes, scales))
        th, tw = (_linear_table(*k[1:]) for k in keys)
        return UpsampleBilinear.apply(input, th, tw, keys)
    exact = mode == "nearest-exact"
    short = dims != 1
    double = dims == 1 and input.array.dtype == np.float64
    keys = tuple(
        ("nearest", n, o, s, exact, short, double) for n, o, s in zip(in_sizes, out_sizes, scales)
    )
    th, tw = (_nearest_table(*k[1:]) for k in keys)
    return UpsampleNearest.apply(input, th, tw, keys)


def _byte_images(
    x: Tensor, out_sizes: tuple, scales: tuple, mode: str, align: Any, antialias: bool
) -> Tensor:
    """uint8 images resized as torch does: along W, then along H, each pass in float32
    rounded (half up) and clamped back to bytes. (torch's fixed-point weights still round
    about 1% of the pixels the other way, by 1.)"""
    y = x.float()
    kw = {"mode": mode, "align_corners": align, "antialias": antialias}
    for axis in (1, 0):  # W first
        n, o, s = y.shape[2 + axis], out_sizes[axis], scales[axis]
        if o == n:  # (torch's byte kernels copy an axis of unchanged size, whatever the scale)
            continue
        if s is None:
            size = [int(y.shape[2]), int(y.shape[3])]
            size[axis] = o
            y = interpolate(y, size=tuple(size), **kw)
        else:
            sf = [1.0, 1.0]
            sf[axis] = s
            y = interpolate(y, scale_factor=tuple(sf), **kw)
        y = (y + 0.5).floor().clamp(0, 255)
    return y.to(x.dtype)


# ------------------------------------------------------------------ affine_grid / grid_sample


def _fma(a: np.ndarray, b: np.ndarray, c: float, dt: np.dtype) -> np.ndarray:
    """``a * b + c`` rounded once to ``dt``, as the fused multiply-add of torch's compiled
    linspace: float32 through float64 (the product is exact there), float64 through an
    exact two-product (Dekker's split) and a two-sum."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if dt != np.float64:  # float32 and narrower: a float64 product is exact
        return (a * b + c).astype(dt)
    p = a * b
    split = 134217729.0  # 2**27 + 1

    def halves(x: np.ndarray) -> tuple:
        t = split * x
        hi = t - (t - x)
        return hi, x - hi

    ah, al = halves(a)
    bh, bl = halves(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # p + err == a * b exactly
    s = p + c
    bb = s - p
    tail = (p - (s - bb)) + (c - bb)  # s + tail == p + c exactly
    return (s + (tail + err)).astype(dt)


def _base_coords(n: int, align_corners: bool, dt: np.dtype) -> np.ndarray:
    """The normalised [-1, 1] coordinates of ``n`` pixel centres (or corners), to the last
    bit as torch makes them: ``linspace(-1, 1, n)`` in ``dt`` (first half up from -1, second
    half down from 1, each a fused multiply-add), times ``n - 1``, divided by ``n``. The
    bits matter: the tutorial's spatial transformer starts at the identity, where every
    sampling point lies on a pixel and one ulp decides which side the bilinear gradient
    w.r.t. theta is taken from (np.linspace's values gave another first gradient)."""
    dt = np.dtype(dt)
    if n <= 1:
        return np.zeros(n, dt)
    one = dt.type(1)
    step = dt.type((one + one) / dt.type(n - 1))
    i = np.arange(n)
    c = np.where(i < n // 2, _fma(step, i, -1.0, dt), _fma(-step, n - 1 - i, 1.0, dt)).astype(dt)
    return c if align_corners else (c * dt.type(n - 1)) / dt.type(n)


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine maps, as ``torch.nn.functional.affine_grid``.

    Args:
        theta: (N, 2, 3) for a 4-D ``size`` (N, C, H, W), or (N, 3, 4) for a 5-D one.
        size: the target output size.
        align_corners: whether -1 and 1 are the centres of the corner pixels (True) or
            their outer edges (False, the default).

    Returns:
        (N, H, W, 2) (or (N, D, H, W, 3)): ``theta @ [x, y, 1]`` at every output pixel,
        ``x`` running along W. Differentiable in ``theta`` (a batched matmul).
    """
    from darklib.ops.linalg import matmul

    op = "affine_grid"
    if not isinstance(theta, Tensor):
        raise InvalidType(f"{op}: theta must be a tensor, got {type(theta).__name__}")
    if theta.array.dtype.kind != "f":
        raise InvalidValue(
            f"{op}: expected theta to have a floating-point dtype, got {theta.dtype}"
        )
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise NotImplementedError(
            f"{op}: only 4-D and 5-D sizes are supported (2-D and 3-D affine maps), got {size}"
        )
    k = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (k, k + 1):
        raise InvalidValue(
            f"{op}: expected a batch of {k}-D affine matrices of shape (N, {k}, {k + 1}) for "
            f"size {size}, got theta {tuple(theta.shape)}"
        )
    if min(size) <= 0:
        raise InvalidValue(f"{op}: expected a non-zero, positive output size, got {size}")
    if int(theta.shape[0]) != size[0]:
        raise InvalidValue(
            f"{op}: theta {tuple(theta.shape)} has {int(theta.shape[0])} matrices for a batch "
            f"of {size[0]} in size {size}"
        )
    align = bool(align_corners)
    spatial = size[2:]
    dt = theta.array.dtype
    axes = [_base_coords(n, align, dt) for n in spatial[::-1]]  # x (W) first
    mesh = np.meshgrid(*axes[::-1], indexing="ij")[::-1]  # each of shape spatial
    base = np.stack([*mesh, np.ones(spatial, dt)], axis=-1).reshape(1, -1, k + 1)
    xp = get_xp(theta.array)
    base_t = Tensor._wrap(xp.asarray(base))
    grid = matmul(base_t, theta.transpose(1, 2))
    return grid.reshape(size[0], *spatial, k)


def _reflect(c: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """``c`` folded back and forth into [low, high] (mirror images at each bound)."""
    if twice_low == twice_high:
        return c * 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    a = (c - low).abs()
    xp = get_xp(a.array)
    with np.errstate(invalid="ignore"):  # (a NaN or inf coordinate stays NaN, silently)
        flips = xp.floor(a.array / span)
        odd = (flips % 2) == 1
    dt = a.array.dtype
    extra = a - Tensor._wrap((flips * span).astype(dt))
    sign = Tensor._wrap(xp.where(odd, -1.0, 1.0).astype(dt))
    offset = Tensor._wrap(xp.where(odd, span + low, low).astype(dt))
    return extra * sign + offset


def _reflect_wide(c: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """``_reflect`` as torch's 3-D kernel computes it: the remainder by ``fmod`` and the
    parity of the fold count from a C int, which makes a count too large for one even."""
    if twice_low == twice_high:
        return c * 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    a = (c - low).abs()
    xp = get_xp(a.array)
    dt = a.array.dtype
    with np.errstate(invalid="ignore"):
        folds = xp.floor(a.array / dt.type(span))
        odd = (folds < 2.0**31) & (folds % 2 == 1)
        rem = xp.fmod(a.array, dt.type(span))
    extra = Tensor._wrap(rem) + (a - Tensor._wrap(a.array))  # rem's value, a's gradient
    sign = Tensor._wrap(xp.where(odd, -1.0, 1.0).astype(dt))
    offset = Tensor._wrap(xp.where(odd, span + low, low).astype(dt))
    return extra * sign + offset


def _unnormalize(g: Tensor, n: int, align_corners: bool) -> Tensor:
    """Grid values in [-1, 1] to pixel coordinates along an axis of ``n`` pixels."""
    return (g + 1) * ((n - 1) / 2) if align_corners else ((g + 1) * n - 1) / 2


def _pad_coord(
    c: Tensor, n: int, padding_mode: str, align_corners: bool, volumetric: bool
) -> Tensor:
    """Pixel coordinates with ``padding_mode`` applied (border clamping or reflection).

    Non-finite coordinates go where torch's kernels send them: its 2-D kernel clamps a NaN
    to the first pixel; its 3-D kernel clamps it to the last and, with zero padding, moves a
    coordinate that is not finite or does not fit an int to -100 (outside, weight finite).
    """
    from darklib.ops.elementwise import where

    xp = get_xp(c.array)
    if padding_mode == "reflection":
        bounds = (0, 2 * (n - 1)) if align_corners else (-1, 2 * n - 1)
        c = _reflect_wide(c, *bounds) if volumetric else _reflect(c, *bounds)
    if padding_mode != "zeros":  # a clamp whose gradient is 0 on the borders too, as torch's
        with np.errstate(invalid="ignore"):
            strict = (c.array > 0) & (c.array < n - 1)
        c = where(Tensor._wrap(strict), c, Tensor._wrap(xp.clip(c.array, 0, n - 1)))
        c = where(Tensor._wrap(xp.isnan(c.array)), float(n - 1) if volumetric else 0.0, c)
    elif volumetric:
        with np.errstate(invalid="ignore"):
            a = c.array
            bad = ~xp.isfinite(a) | (a > 2147483646.0) | (a < -2147483648.0)
        c = where(Tensor._wrap(bad), -100.0, c)
    return c


_CUBIC_A = -0.75


def _tap_weights(t: Tensor) -> list[Tensor]:
    """The four cubic-convolution weights (A = -0.75) of taps at offsets -1, 0, 1, 2 from
    ``floor(x)``, for the fraction ``t = x - floor(x)``."""
    a = _CUBIC_A

    def near(d: Tensor) -> Tensor:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: Tensor) -> Tensor:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    s = 1 - t
    return [far(t + 1), near(t), near(s), far(s + 1)]


# Batch chunks of about this many tap values per step on the CPU (a chunk's values stay
# in cache between the gather and the weighted sum).
_TAP_CHUNK_VALUES = 1 << 18


def _tap_values(x: Any, idx: Any) -> Any:
    """x (N, C, S) read at flat positions idx (T, N, P): (N, C, T, P)."""
    if get_xp(x) is not np:
        return _tap_values_batched(x, idx)
    m, c = x.shape[:2]
    t, _, p = idx.shape
    out = np.empty((m, c, t, p), x.dtype)
    for i in range(m):  # per image: a take along rows, 3x faster than take_along_axis
        np.take(x[i], idx[:, i].reshape(-1), axis=1, out=out[i].reshape(c, t * p))
    return out


def _tap_values_batched(x: Any, idx: Any) -> Any:
    """:func:`_tap_values` in one call over the batch (the GPU's form)."""
    m, c = x.shape[:2]
    t, _, p = idx.shape
    where = idx.transpose(1, 0, 2).reshape(m, 1, t * p)
    return get_xp(x).take_along_axis(x, where, 2).reshape(m, c, t, p)


def _scatter_taps(g: Any, idx: Any, w: Any, size: int) -> Any:
    """Adjoint of the taps in x: zeros (N, C, size) plus g (N, C, P) times each tap's
    weight w (T, N, P) summed at idx (T, N, P), repeated positions adding up."""
    if get_xp(g) is not np:
        return _scatter_taps_batched(g, idx, w, size)
    m, c, _ = g.shape
    out = np.empty((m, c, size), g.dtype)
    rows = np.arange(c, dtype=np.int64).reshape(c, 1) * size
    for i in range(m):  # per image: one bincount over channels and taps (np.add.at: 5x slower)
        lin = rows + idx[:, i].reshape(1, -1)
        vals = g[i][:, None, :] * w[:, i]  # (C, T, P)
        sums = np.bincount(lin.reshape(-1), vals.reshape(-1), minlength=c * size)
        out[i] = sums.reshape(c, size)
    return out


def _scatter_taps_batched(g: Any, idx: Any, w: Any, size: int) -> Any:
    """:func:`_scatter_taps` in one call over the batch (the GPU's form)."""
    from darklib.ops.indexing import _add_at

    xp = get_xp(g)
    m, c, _ = g.shape
    out = xp.zeros((m, c, size), g.dtype)
    vals = g[:, :, None, :] * w.transpose(1, 0, 2)[:, None]  # (N, C, T, P)
    rows = xp.arange(m * c, dtype=np.int64).reshape(m, c, 1, 1) * size
    lin = rows + idx.transpose(1, 0, 2)[:, None]
    _add_at(out.reshape(-1), lin.reshape(-1), vals.reshape(-1))
    return out


class _Taps(Function):
    """grid_sample's weighted taps: ``out[n, c, p] = sum_t w_t[n, p] * x[n, c, idx[t, n, p]]``
    for x (N, C, S) flat, idx (T, N, P) in-range flat positions (points outside read any
    position with a zero weight) and weights w_t (N, P). One op instead of a gather,
    multiply and add per tap, each of which had materialised an (N, C, P) index. Gradients:
    a scatter-add of the weighted gradient into x, and for each weight the channel sum of
    the gradient times the tap's values (re-read in backward)."""

    @staticmethod
    def forward(ctx, x, idx, *weights):
        xp = get_xp(x)
        w = xp.stack(weights)
        ctx.save_for_backward(x, w)
        ctx.idx = idx
        m, c = x.shape[:2]
        out = xp.empty((m, c, idx.shape[2]), x.dtype)

        def body(s: int, e: int) -> None:
            v = _tap_values(x[s:e], idx[:, s:e])
            out[s:e] = xp.einsum("mctp,tmp->mcp", v, w[:, s:e])

        _over_batch(body, xp, idx, c)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        idx, needs = ctx.idx, ctx.needs_input_grad
        xp = get_xp(g)
        gx = _scatter_taps(g, idx, w, x.shape[2]) if needs[0] else None
        if not any(needs[2:]):
            return (gx, None, *([None] * w.shape[0]))
        gw = xp.empty(w.shape, g.dtype)

        def body(s: int, e: int) -> None:
            v = _tap_values(x[s:e], idx[:, s:e])
            gw[:, s:e] = xp.einsum("mctp,mcp->tmp", v, g[s:e])

        _over_batch(body, xp, idx, x.shape[1])
        return (gx, None, *(gw[t] if need else None for t, need in enumerate(needs[2:])))

    @staticmethod
    def backward_graph(ctx, g):
        from darklib.ops.indexing import gather

        x, w = ctx.saved_tensors
        idx = ctx.idx
        xp = get_xp(x)

        def forward(x, _, *weights):  # a gather, multiply and add per tap
            out = None
            for lin, weight in zip(idx, weights):
                where = xp.ascontiguousarray(
                    xp.broadcast_to(lin[:, None], x.shape[:2] + lin.shape[1:])
                )
                term = gather(x, 2, Tensor._wrap(where)) * weight.unsqueeze(1)
                out = term if out is None else out + term
            return out

        return higher_order.recompute(ctx, g, forward, (x, None, *w))


def _over_batch(body: Any, xp: Any, idx: Any, channels: int) -> None:
    """``body(s, e)`` over chunks of the batch, split over darklib's threads on the CPU."""
    t, m, p = idx.shape
    if xp is not np:
        body(0, m)
        return
    values = t * p * channels  # per image
    par.map_reduce(body, m, m * values, max(1, _TAP_CHUNK_VALUES // max(1, values)))


@autocasts("grid_sampler")
def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Sample ``input`` at the normalised positions of ``grid``, as
    ``torch.nn.functional.grid_sample`` (4-D and 5-D inputs).

    Args:
        input: (N, C, H, W), or (N, C, D, H, W).
        grid: (N, H_out, W_out, 2), (x, y) in [-1, 1] (x along W), or
            (N, D_out, H_out, W_out, 3), (x, y, z) (z along D); outside that range
            ``padding_mode`` decides.
        mode: ``'bilinear'`` (trilinear for 5-D), ``'nearest'`` (round half to even) or
            ``'bicubic'`` (4-D only: cubic convolution with A = -0.75 on a 4x4
            neighbourhood, the padding applied to each tap's coordinates).
        padding_mode: ``'zeros'`` (outside pixels read 0), ``'border'`` (clamped to the
            edge) or ``'reflection'`` (mirrored at the borders).
        align_corners: whether -1 and 1 are the centres of the corner pixels (True) or
            their outer edges (False, the default).

    Returns:
        (N, C, H_out, W_out) (or (N, C, D_out, H_out, W_out)). The interpolation
        weights of each tap (2, 4, 8 or 16 neighbours) are computed from the grid with
        differentiable ops on (N, P) arrays, which carry the grid's gradient; one fused op
        (:class:`_Taps`) reads the taps of every channel and sums them. The nearest mode's
        grid gradient is zero, as torch's.
    """

    op = "grid_sample"
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise InvalidValue(
            f"{op}: expected mode to be 'bilinear', 'nearest' or 'bicubic', got {mode!r}"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise InvalidValue(
            f"{op}: expected padding_mode to be 'zeros', 'border' or 'reflection', "
            f"got {padding_mode!r}"
        )
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise InvalidType(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    shapes = f"input {tuple(input.shape)} and grid {tuple(grid.shape)}"
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise InvalidValue(
            f"{op}: expected a 4-D input and a 4-D grid, or a 5-D input and a 5-D grid, "
            f"got {shapes}"
        )
    k = input.ndim - 2  # spatial dimensions
    if int(input.shape[0]) != int(grid.shape[0]):
        raise InvalidValue(f"{op}: expected the same batch size in {shapes}")
    if int(grid.shape[-1]) != k:
        raise InvalidValue(f"{op}: expected the grid's last dimension to be {k}, got {shapes}")
    if mode == "bicubic" and k != 2:
        raise InvalidValue(f"{op}: mode='bicubic' only supports 4-D inputs, got {shapes}")
    if input.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {input.dtype}")
    if input.dtype != grid.dtype:
        raise InvalidType(
            f"{op}: input ({input.dtype.name}) and grid ({grid.dtype.name}) must have the "
            "same dtype"
        )
    n, c = int(input.shape[0]), int(input.shape[1])
    sizes = tuple(int(s) for s in input.shape[2:])  # (D,) H, W
    if 0 in sizes:
        raise InvalidValue(f"{op}: expected an input with non-empty spatial dimensions, {shapes}")
    out_sp = tuple(int(s) for s in grid.shape[1:-1])
    npts = math.prod(out_sp)
    align = bool(align_corners)
    volumetric = k == 3
    xp = get_xp(input.array)
    dt = input.array.dtype
    flat = input.reshape(n, c, math.prod(sizes))
    strides = [math.prod(sizes[a + 1 :]) for a in range(k)]
    # grid component k - 1 - a runs along spatial axis a (x along the last)
    raw = [_unnormalize(grid[..., k - 1 - a], sizes[a], align) for a in range(k)]

    taps: list = []  # (flat positions (N, P), weight (N, P)) per tap

    def tap(pos: list, weight: Tensor | None) -> None:
        """Add the tap reading the input at integer positions ``pos`` (one array per
        axis), 0 outside, times ``weight``."""
        inside = None
        for p, size in zip(pos, sizes):
            ok = (p >= 0) & (p < size)  # (False for NaN)
            inside = ok if inside is None else inside & ok
        lin = 0
        for p, size, stride in zip(pos, sizes, strides):
            p = xp.where(inside, p, 0)  # NaN and inf cannot index
            lin = lin + xp.clip(p, 0, size - 1).astype(np.int64) * stride
        mask = Tensor._wrap(inside.astype(dt))
        weight = mask if weight is None else weight * mask
        taps.append((lin.reshape(n, npts), weight.reshape(n, npts)))

    def sampled() -> Tensor:
        idx = xp.stack([lin for lin, _ in taps])
        out = _Taps.apply(flat, idx, *[w for _, w in taps])
        return out.reshape(n, c, *out_sp)

    if mode == "bicubic":
        # torch pads each tap's (integer) coordinates, then truncates them to an index
        base = [xp.floor(r.array) for r in raw]
        ws = [_tap_weights(r - Tensor._wrap(b)) for r, b in zip(raw, base)]
        rows, cols = (
            [
                xp.trunc(
                    _pad_coord(Tensor._wrap(b + (o - 1)), size, padding_mode, align, False).array
                )
                for o in range(4)
            ]
            for b, size in zip(base, sizes)
        )
        for i in range(4):  # along H
            for j in range(4):  # along W
                tap([rows[i], cols[j]], ws[0][i] * ws[1][j])
        return sampled()
    coords = [_pad_coord(r, size, padding_mode, align, volumetric) for r, size in zip(raw, sizes)]
    if mode == "nearest":
        tap([xp.rint(co.array) for co in coords], None)
        out = sampled()
        return higher_order.ZeroGradFor.apply(out, grid) if grid.requires_grad else out
    lows = [xp.floor(co.array) for co in coords]
    fracs = [co - Tensor._wrap(lo) for co, lo in zip(coords, lows)]
    for corner in range(2**k):  # bit a of corner: the upper neighbour along axis a
        pos, weight = [], None
        for a in range(k):
            up = (corner >> (k - 1 - a)) & 1
            pos.append(lows[a] + 1 if up else lows[a])
            w = fracs[a] if up else 1 - fracs[a]
            weight = w if weight is None else weight * w
        tap(pos, weight)
    return sampled()
