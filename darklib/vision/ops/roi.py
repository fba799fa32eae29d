"""Region-of-interest pooling, as ``torchvision.ops.roi_align`` and ``roi_pool``: a fixed
(PH, PW) grid of features for each box of a feature map (two-stage detectors, Mask R-CNN).

roi_align averages bilinear samples, which separate by axis: for one box, the samples of
output row ``ph`` read input rows with weights ``Ay[ph, r]`` and those of column ``pw``
input columns with weights ``Ax[pw, s]``, so the output is ``Ay @ X @ Ax.T`` over the
box's window of the input: two GEMMs per box, and for the gradient the two transposed
products. roi_pool scans the cells of all bins at once, channels last (see
:class:`_RoIPool`). The box coordinates are read on the host (one small copy) to size
the windows; the features stay on their device.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from darklib.autograd import Function
from darklib.backend import get_xp, to_numpy
from darklib.errors import InvalidType, InvalidValue
from darklib.nn.module import Module
from darklib.ops.conv import _pair
from darklib.tensor import Tensor


def _rois(op: str, x: Tensor, boxes: Any) -> np.ndarray:
    """The boxes as a host (K, 5) float64 array of (batch index, x1, y1, x2, y2): from a
    (K, 5) tensor, or from a list of per-image (L, 4) tensors."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise InvalidValue(f"{op}: input must be a (N, C, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise InvalidType(f"{op}: expected a floating-point input, got {x.dtype}")
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor) or b.ndim != 2 or b.shape[1] != 4:
                got = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise InvalidValue(f"{op}: boxes[{i}] must be an (L, 4) tensor, got {got}")
            a = to_numpy(b.detach().array).astype(np.float64)
            parts.append(np.concatenate([np.full((len(a), 1), float(i)), a], axis=1))
        rois = np.concatenate(parts) if parts else np.zeros((0, 5))
    elif isinstance(boxes, Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise InvalidValue(
                f"{op}: boxes must be a (K, 5) tensor of (batch index, x1, y1, x2, y2) or a "
                f"list of (L, 4) tensors, got {tuple(boxes.shape)}"
            )
        rois = to_numpy(boxes.detach().array).astype(np.float64)
    else:
        raise InvalidType(f"{op}: boxes must be a tensor or a list of tensors, got {boxes!r}")
    n = x.shape[0]
    idx = rois[:, 0]
    bad = (idx != np.floor(idx)) | (idx < 0) | (idx >= n)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InvalidValue(
            f"{op}: box {k} has batch index {idx[k]:g}, outside the input's {n} images"
        )
    return rois


class _Axis(NamedTuple):
    """roi_align along one axis, per box k: its samples read input positions
    ``lo[k] .. lo[k] + extent[k] - 1`` (extent 0: none), with ``weights[k]`` (pooled, span)
    summing each output bin's bilinear sample weights over them (divided by the bin's
    sample count along this axis)."""

    lo: np.ndarray
    extent: np.ndarray
    weights: Any


def _axis_weights(
    start: np.ndarray, size: np.ndarray, pooled: int, grid: np.ndarray, n: int
) -> _Axis:
    """:class:`_Axis` for K boxes starting at ``start`` with ``size`` along an axis of
    ``n`` positions, ``grid`` samples per bin."""
    k = len(start)
    g = max(int(grid.max(initial=0)), 1)
    p = np.arange(pooled, dtype=np.float64)[None, :, None]
    i = np.arange(g, dtype=np.float64)[None, None, :]
    bin_size = (size / pooled)[:, None, None]
    gk = grid[:, None, None].astype(np.float64)
    pos = start[:, None, None] + p * bin_size + (i + 0.5) * bin_size / np.maximum(gk, 1)
    used = (i < gk) & (pos >= -1.0) & (pos <= n)
    pos = np.maximum(pos, 0.0)
    low = np.floor(pos).astype(np.int64)
    top = low >= n - 1
    low = np.where(top, n - 1, low)
    high = np.where(top, n - 1, low + 1)
    frac = np.where(top, 0.0, pos - low)
    share = np.where(used, 1.0 / np.maximum(gk, 1), 0.0)
    lo = np.where(used, low, n).min(axis=(1, 2))  # first position any sample reads
    hi = np.where(used, high, -1).max(axis=(1, 2))
    lo = np.where(hi < 0, 0, lo)
    extent = np.where(hi < 0, 0, hi - lo + 1)
    span = max(int(extent.max(initial=0)), 1)
    w = np.zeros((k, pooled, span))
    rows = np.broadcast_to(np.arange(k)[:, None, None], low.shape)
    bins = np.broadcast_to(np.arange(pooled)[None, :, None], low.shape)
    np.add.at(w, (rows, bins, np.clip(low - lo[:, None, None], 0, span - 1)), share * (1 - frac))
    np.add.at(w, (rows, bins, np.clip(high - lo[:, None, None], 0, span - 1)), share * frac)
    return _Axis(lo, extent, w)


def _align_plan(rois: np.ndarray, shape: tuple, out: tuple, scale: float, ratio: int, aligned):
    """Per box: its image, and the row and column windows with their weights."""
    h, w = shape[2:]
    ph, pw = out
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * scale - offset for i in range(1, 5))
    rw, rh = x2 - x1, y2 - y1
    if not aligned:  # (malformed boxes forced to 1x1, as torchvision's)
        rw, rh = np.maximum(rw, 1.0), np.maximum(rh, 1.0)
    if ratio > 0:
        gh = gw = np.full(len(rois), ratio)
    else:  # as many samples per bin as the bin is wide, rounded up
        gh, gw = np.ceil(rh / ph), np.ceil(rw / pw)
    return (
        rois[:, 0].astype(np.int64),
        _axis_weights(y1, rh, ph, gh, h),
        _axis_weights(x1, rw, pw, gw, w),
    )


def _windows(ya: _Axis, xa: _Axis):
    """``(box, first row, first column, rows, columns)`` of each box whose samples read
    the input."""
    for i in np.flatnonzero((ya.extent > 0) & (xa.extent > 0)):
        yield i, int(ya.lo[i]), int(xa.lo[i]), int(ya.extent[i]), int(xa.extent[i])


class _RoIAlign(Function):
    @staticmethod
    def forward(ctx, x, plan):
        xp = get_xp(x)
        batch, ya, xa = plan
        ya, xa = (a._replace(weights=xp.asarray(a.weights, x.dtype)) for a in (ya, xa))
        c = x.shape[1]
        ph, pw = ya.weights.shape[1], xa.weights.shape[1]
        out = xp.zeros((len(batch), c, ph, pw), x.dtype)
        for i, r0, c0, rows, cols in _windows(ya, xa):
            win = x[batch[i], :, r0 : r0 + rows, c0 : c0 + cols].reshape(c * rows, cols)
            t = (win @ xa.weights[i, :, :cols].T).reshape(c, rows, pw)  # along the columns
            t = t.transpose(1, 0, 2).reshape(rows, c * pw)
            out[i] = (ya.weights[i, :, :rows] @ t).reshape(ph, c, pw).transpose(1, 0, 2)
        ctx.plan, ctx.shape = (batch, ya, xa), x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        batch, ya, xa = ctx.plan
        gx = xp.zeros(ctx.shape, g.dtype)
        c, ph, pw = g.shape[1:]
        for i, r0, c0, rows, cols in _windows(ya, xa):
            t = (g[i].reshape(c * ph, pw) @ xa.weights[i, :, :cols]).reshape(c, ph, cols)
            t = t.transpose(1, 0, 2).reshape(ph, c * cols)
            t = (ya.weights[i, :, :rows].T @ t).reshape(rows, c, cols)  # along the rows
            gx[batch[i], :, r0 : r0 + rows, c0 : c0 + cols] += t.transpose(1, 0, 2)
        return gx, None


def roi_align(
    input: Tensor,
    boxes: Any,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (Mask R-CNN): for each box, an (output_size) grid of bins, each the mean of
    bilinear samples of ``input`` (N, C, H, W) -> (K, C, PH, PW).

    Args:
        boxes: a (K, 5) tensor of (batch index, x1, y1, x2, y2), or a list of (L, 4)
            tensors, one per image, in input-image coordinates.
        spatial_scale: the feature map's scale against those coordinates (1/16 for a
            stride-16 map).
        sampling_ratio: samples per bin along each axis; <= 0: ceil(bin size), per box.
        aligned: shift the box by half a pixel, so that pixel centres line up (what
            detection models trained since Detectron2 expect); False keeps the original
            rule, which also stretches boxes smaller than a pixel to one.
    """
    op = "roi_align"
    rois = _rois(op, input, boxes)
    out = _pair(output_size, "output_size", op, 1)
    plan = _align_plan(
        rois, tuple(input.shape), out, float(spatial_scale), int(sampling_ratio), bool(aligned)
    )
    return _RoIAlign.apply(input, plan)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's round(): halves away from zero (NumPy rounds them to even)."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _pool_bins(start: np.ndarray, size: np.ndarray, pooled: int, n: int) -> tuple:
    """roi_pool's bins along one axis: (K, pooled) first and past-last positions, clipped."""
    bin_size = (size / pooled)[:, None]
    p = np.arange(pooled)[None, :]
    first = np.floor(p * bin_size).astype(np.int64) + start[:, None]
    last = np.ceil((p + 1) * bin_size).astype(np.int64) + start[:, None]
    return np.clip(first, 0, n), np.clip(last, 0, n)


# roi_pool takes the maxima of this many bins x channels at a time
_POOL_CHUNK = 1 << 20


class _RoIPool(Function):
    """Each bin's maximum by a scan over its cells, channels last, as torch's kernel
    scans: the features are copied once to (N*H*W, C) rows plus one row of -FLT_MAX (what
    a cell past its bin's end reads); for a group of boxes, cell ``l`` of every bin is read
    as (boxes, PH, PW, C) rows and replaces the running maximum where it is strictly
    greater, so the first maximum in row-major order wins and NaN never does. Where a
    gradient is wanted the row of each maximum is kept (-1: none)."""

    @staticmethod
    def forward(ctx, x, plan):
        xp = get_xp(x)
        batch, (hs, he), (ws, we) = plan
        n, c, h, w = x.shape
        k, ph, pw = len(batch), hs.shape[1], ws.shape[1]
        # torch's scan starts from -FLT_MAX: a bin of lower values (-inf) gives it, no argmax
        low = max(float(np.finfo(np.float32).min), float(np.finfo(x.dtype).min))
        rows = xp.empty((n * h * w + 1, c), x.dtype)
        rows[:-1] = x.transpose(0, 2, 3, 1).reshape(n * h * w, c)
        rows[-1] = low
        out = xp.full((k, ph, pw, c), low, x.dtype)
        track = ctx.needs_input_grad[0]
        index = np.int32 if n * h * w < 2**31 else np.int64  # (half the memory to fill)
        where = xp.full((k, ph, pw, c), -1, index) if track else None
        # boxes go in groups of equal largest bin, each scanning only as many cells
        bin_h = np.maximum(he - hs, 0).max(axis=1, initial=0)
        bin_w = np.maximum(we - ws, 0).max(axis=1, initial=0)
        step = max(1, _POOL_CHUNK // (ph * pw * c))
        for bh, bw in {(int(a), int(b)) for a, b in zip(bin_h, bin_w, strict=True)}:
            if bh == 0 or bw == 0:
                continue
            group = np.flatnonzero((bin_h == bh) & (bin_w == bw))
            dy, dx = np.divmod(np.arange(bh * bw), bw)
            for s in range(0, len(group), step):
                sel = group[s : s + step]
                ys = hs[sel][:, :, None, None] + dy  # (m, PH, 1, L)
                xs = ws[sel][:, None, :, None] + dx  # (m, 1, PW, L)
                inside = (ys < he[sel][:, :, None, None]) & (xs < we[sel][:, None, :, None])
                cells = (batch[sel][:, None, None, None] * h + ys) * w + xs
                cells = np.where(inside, cells, n * h * w).astype(index)  # (m, PH, PW, L)
                at = xp.asarray(sel)
                best = out[at]
                arg = where[at] if track else None
                cells = np.moveaxis(cells, 3, 0)  # (L, m, PH, PW): one cell of each bin
                if xp is not np:  # (one copy to the GPU, not one per cell)
                    cells = xp.asarray(np.ascontiguousarray(cells))
                for cell in cells:
                    cur = rows[cell]  # (m, PH, PW, C)
                    if not track:
                        xp.fmax(best, cur, out=best)  # (NaN loses to a number, as in torch)
                        continue
                    better = cur > best
                    xp.copyto(best, cur, where=better)
                    xp.copyto(arg, cell[..., None], where=better)
                out[at] = best
                if track:
                    where[at] = arg
        empty = xp.asarray(((he <= hs)[:, :, None] | (we <= ws)[:, None, :])[..., None])
        ctx.where, ctx.shape = where, x.shape
        return xp.ascontiguousarray(xp.where(empty, 0, out).transpose(0, 3, 1, 2))

    @staticmethod
    def backward(ctx, g):
        from darklib.ops.indexing import _add_at

        xp = get_xp(g)
        n, c, h, w = ctx.shape
        gt = g.transpose(0, 2, 3, 1)  # (K, PH, PW, C), as ctx.where
        hit = ctx.where >= 0
        lin = ctx.where.astype(np.int64) * c + xp.arange(c)  # (row, channel), flat
        size = n * h * w * c
        if xp is np:
            flat = np.bincount(lin[hit], gt[hit], minlength=size).astype(g.dtype)
        else:  # (a boolean mask would sync to count its hits: misses add into a spare slot)
            flat = xp.zeros(size + 1, g.dtype)
            _add_at(flat, xp.where(hit, lin, size).reshape(-1), gt.reshape(-1))
            flat = flat[:size]
        return xp.ascontiguousarray(flat.reshape(n, h, w, c).transpose(0, 3, 1, 2)), None


def roi_pool(
    input: Tensor,
    boxes: Any,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoIPool (Fast R-CNN): for each box, rounded to whole feature cells, an
    (output_size) grid of bins, each the maximum of the input within it (0 for an empty
    bin) -> (K, C, PH, PW). ``boxes`` as in :func:`roi_align`."""
    op = "roi_pool"
    rois = _rois(op, input, boxes)
    ph, pw = _pair(output_size, "output_size", op, 1)
    h, w = input.shape[2:]
    x1, y1, x2, y2 = (_round_half_away(rois[:, i] * float(spatial_scale)) for i in range(1, 5))
    rw, rh = np.maximum(x2 - x1 + 1, 1), np.maximum(y2 - y1 + 1, 1)
    batch = rois[:, 0].astype(np.int64)
    plan = (
        batch,
        _pool_bins(y1.astype(np.int64), rh, ph, h),
        _pool_bins(x1.astype(np.int64), rw, pw, w),
    )
    return _RoIPool.apply(input, plan)


class RoIAlign(Module):
    """:func:`roi_align` as a layer: ``RoIAlign(output_size, spatial_scale,
    sampling_ratio, aligned=False)(input, boxes)``."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = False,
    ):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Any) -> Tensor:
        return roi_align(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio}, "
            f"aligned={self.aligned})"
        )


class RoIPool(Module):
    """:func:`roi_pool` as a layer: ``RoIPool(output_size, spatial_scale)(input, boxes)``."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Any) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale})"
        )


__all__ = ["RoIAlign", "RoIPool", "roi_align", "roi_pool"]
