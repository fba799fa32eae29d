"""Fractional max pooling (Graham, 2014), as ``torch.nn.functional.fractional_max_pool2d``
and ``fractional_max_pool3d``: windows of a fixed size at pseudo-random starts, so the
output can shrink the input by any factor.

For each (image, channel) plane and each spatial axis, one sample ``u`` in [0, 1) places
the windows (torch's order: width then height in 2-D; depth, height, width in 3-D): with
``alpha = (in - k) / (out - 1)``, window ``i`` starts at ``int((i + u) * alpha) -
int(u * alpha)`` and the last at ``in - k`` (computed in the input's float type, as torch
does, so the same samples give torch's windows). The windows of all planes are gathered at
once; each output is its window's maximum (NaN if the window holds one, the last NaN's
position then), its index the flat position in the plane.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function
from darklib.backend import get_xp, to_numpy
from darklib.errors import InvalidType, InvalidValue
from darklib.tensor import Tensor


def _starts(samples: np.ndarray, size: int, out: int, k: int, ct: type) -> np.ndarray:
    """Window starts (N, C, out) along one axis from samples (N, C)."""
    u = samples.astype(ct)
    starts = np.empty((*u.shape, out), np.int64)
    if out > 1:
        alpha = ct(size - k) / ct(out - 1)
        i = np.arange(out - 1, dtype=ct)
        first = (u * alpha).astype(np.int64)[..., None]
        starts[..., :-1] = ((i + u[..., None]) * alpha).astype(np.int64) - first
    starts[..., -1] = size - k
    return starts


class _FractionalMaxPool(Function):
    @staticmethod
    def forward(ctx, x, samples, kernel, out, holder):
        xp = get_xp(x)
        n, c = x.shape[:2]
        sizes = x.shape[2:]
        dims = len(sizes)
        ct = np.float64 if x.dtype == np.float64 else np.float32
        host = to_numpy(samples)
        # per axis, the positions each output reads: (N, C, out, k)
        pos = []
        for a in range(dims):  # torch's samples: (W, H) in 2-D but (D, H, W) in 3-D
            u = host[..., dims - 1 - a] if dims == 2 else host[..., a]
            s = _starts(u, sizes[a], out[a], kernel[a], ct)
            pos.append(s[..., None] + np.arange(kernel[a]))
        # gather the windows as (N, C, out..., k...) of flat positions within a plane
        flat = np.zeros((n, c, *out, *kernel), np.int64)
        stride = 1
        for a in reversed(range(dims)):
            shape = [n, c] + [1] * (2 * dims)
            shape[2 + a], shape[2 + dims + a] = out[a], kernel[a]
            flat = flat + pos[a].reshape(shape) * stride  # (N, C, out_a, k_a) spread out
            stride *= sizes[a]
        plane = x.reshape(n, c, -1)
        idx = xp.asarray(flat.reshape(n, c, -1))
        vals = xp.take_along_axis(plane, idx, 2).reshape(n, c, *out, -1)
        win = math.prod(kernel)
        pick = vals.argmax(axis=-1)  # the first maximum (and the first NaN)
        nan = xp.isnan(vals)
        # torch's scan keeps the last NaN it meets (on the GPU always taken, rather than a
        # host sync to learn whether any window holds a NaN)
        if xp is not np or bool(nan.any()):
            last = win - 1 - nan[..., ::-1].argmax(axis=-1)
            pick = xp.where(nan.any(axis=-1), last, pick)
        y = xp.take_along_axis(vals, pick[..., None], -1)[..., 0]
        where = xp.take_along_axis(idx.reshape(n, c, *out, win), pick[..., None], -1)[..., 0]
        ctx.where, ctx.shape = where, x.shape
        holder.append(where)
        return y

    @staticmethod
    def backward(ctx, g):
        from darklib.ops.indexing import _add_at

        xp = get_xp(g)
        n, c = ctx.shape[:2]
        gx = xp.zeros((n * c, math.prod(ctx.shape[2:])), g.dtype)
        plane = xp.arange(n * c).reshape(n, c, *([1] * (g.ndim - 2)))
        rows = xp.broadcast_to(plane, ctx.where.shape)
        _add_at(gx, (rows.reshape(-1), ctx.where.reshape(-1)), g.reshape(-1))
        return gx.reshape(ctx.shape), None, None, None, None


def _tuple(v: Any, dims: int, name: str, op: str) -> tuple:
    t = (v,) * dims if isinstance(v, int | float) and not isinstance(v, bool) else tuple(v)
    if len(t) != dims:
        raise InvalidValue(f"{op}: {name} must be a number or {dims} numbers, got {v!r}")
    return t


def _fractional(
    op: str,
    input: Tensor,
    kernel_size: Any,
    output_size: Any,
    output_ratio: Any,
    return_indices: bool,
    random_samples: Any,
    dims: int,
) -> Any:
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (dims + 1, dims + 2):
        raise InvalidValue(
            f"{op}: expected a {dims + 1}-D or {dims + 2}-D input, got {tuple(input.shape)}"
        )
    if input.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {input.dtype}")
    batched = input.ndim == dims + 2
    x = input if batched else input.unsqueeze(0)
    sizes = tuple(x.shape[2:])
    kernel = _tuple(kernel_size, dims, "kernel_size", op)
    if output_size is None and output_ratio is None:
        raise InvalidValue(f"{op} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        ratio = _tuple(output_ratio, dims, "output_ratio", op)
        if not all(0 < r < 1 for r in ratio):
            raise InvalidValue(f"{op}: output_ratio must be between 0 and 1 (got {output_ratio})")
        out = tuple(int(s * r) for s, r in zip(sizes, ratio))
    else:
        out = _tuple(output_size, dims, "output_size", op)
    names = ("depth", "height", "width")[3 - dims :]
    for name, o, k, s in zip(names, out, kernel, sizes):
        if o < 1 or k < 1:
            raise InvalidValue(f"{op}: output_size and kernel_size must be positive, got {o}, {k}")
        if o + k - 1 > s:
            raise InvalidValue(f"{op}(): pool {name} {k} too large relative to input {name} {s}")
    n, c = x.shape[:2]
    if random_samples is None:
        from darklib.creation import rand

        samples = rand(n, c, dims, dtype=x.dtype, device=x.device)
    else:
        samples = (
            random_samples if batched else random_samples.reshape(1, *random_samples.shape[-2:])
        )
        if tuple(samples.shape) != (n, c, dims):
            raise InvalidValue(
                f"{op}: _random_samples must have shape ({n}, {c}, {dims}), got "
                f"{tuple(random_samples.shape)}"
            )
    holder: list = []
    y = _FractionalMaxPool.apply(x, samples.detach().array, kernel, out, holder)
    where = Tensor._wrap(holder[0])
    if not batched:
        y, where = y.squeeze(0), where.squeeze(0)
    return (y, where) if return_indices else y


@autocasts("fractional_max_pool2d")
def fractional_max_pool2d(
    input: Tensor,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Any:
    """Fractional max pooling over (N, C, H, W) or (C, H, W): ``kernel_size`` windows at
    pseudo-random starts, ``output_size`` of them (or ``output_ratio`` of the input), as
    torch's; ``_random_samples`` (N, C, 2) in [0, 1) fixes their placement."""
    return _fractional(
        "fractional_max_pool2d",
        input,
        kernel_size,
        output_size,
        output_ratio,
        return_indices,
        _random_samples,
        2,
    )


@autocasts("fractional_max_pool3d")
def fractional_max_pool3d(
    input: Tensor,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Any:
    """:func:`fractional_max_pool2d` over (N, C, D, H, W) or (C, D, H, W);
    ``_random_samples`` is (N, C, 3)."""
    return _fractional(
        "fractional_max_pool3d",
        input,
        kernel_size,
        output_size,
        output_ratio,
        return_indices,
        _random_samples,
        3,
    )
