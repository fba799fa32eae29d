"""3-D (volumetric) ops: conv3d, conv_transpose3d, max/avg/adaptive pooling over
(D, H, W), and 5-D interpolation (nearest, nearest-exact, trilinear, area).

Every op here is built from the tuned 2-D ops, exactly, rather than from a third copy of
im2col, pooling planes and resampling kernels (on the CPU and the GPU alike):

- **Convolution** unfolds the depth axis only (:class:`DepthUnfold`: for each output
  depth ``od`` the ``kd`` input slices its window reads, a strided copy per kernel offset)
  into a batch of ``N * D_out`` planes with ``C * kd`` channels; the 3-D kernel, reshaped
  to ``(O, C/groups * kd, kh, kw)``, is then a 2-D kernel over those planes, and
  ``conv2d`` (im2col + GEMM, threads, GPU kernels) does the rest. The depth taps keep
  their groups because each group's ``C/groups * kd`` channels stay contiguous. The
  transposed convolution is the adjoint of that chain: ``conv_transpose2d`` over the
  ``N * D`` input planes, then :class:`DepthFold` (the adjoint of the unfold: a
  scatter-add per kernel offset) sums the depth taps into the output volume.
- **Pooling** is separable: a max (or a sum) over a (kd, kh, kw) box is the max (sum)
  over depth of the max (sum) over each (kh, kw) window. The 2-D pool runs over the
  (H, W) planes of the ``C * D`` slices, then again over depth with a (kd, 1) window on
  ``(N, C, D, H_out * W_out)``. Every divisor of ``avg_pool3d`` (window size, count of
  non-padding elements, each clipped at the padded border) is a product of per-axis
  factors, and max pooling's first-maximum tie rule in (d, h, w) order is what the two
  stages pick, so values, indices and gradients are torch's.
- **Interpolation** is separable as well: the 2-D resampling Functions resample (H, W) of
  every depth slice, then depth with an identity table on the other axis, in torch's order
  of accumulation (W innermost, then H, then D).

Gradients of every order come from the 2-D ops' ``backward_graph`` and from the two new
linear Functions here, each the other's adjoint.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.kernels.im2col import offset_range
from darklib.ops._promote import same_dtype
from darklib.ops.conv import check_channels, conv2d, conv_transpose2d
from darklib.ops.pool import (
    _adaptive_avg_pool2d,
    _adaptive_max_pool2d,
    _avg_pool2d,
    _check_divisor,
    _check_dtype,
    _max_pool2d,
    _max_pool_ints,
    _pool_out,
    _Window,
    avg_pool_int,
)
from darklib.tensor import Tensor

__all__ = [
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "avg_pool3d",
    "conv3d",
    "conv_transpose3d",
    "interpolate3d",
    "max_pool3d",
]

# ------------------------------------------------------------------ depth unfold / fold


def _depth_taps(kd: int, sd: int, dd: int, pf: int, d: int, od: int) -> list:
    """``(i, out_slice, in_slice)`` for each depth kernel offset ``i`` that reads the
    input: outputs ``out_slice`` pair element-wise with input depths ``in_slice``."""
    taps = []
    for i in range(kd):
        r = offset_range(i, d, od, sd, pf, dd)
        if r is None:
            continue
        o0, o1, i0 = r
        taps.append((i, slice(o0, o1), slice(i0, i0 + (o1 - o0 - 1) * sd + 1, sd)))
    return taps


def _unfold_depth(x: Any, kd: int, sd: int, dd: int, pf: int, od: int) -> Any:
    """x (N, C, D, H, W) -> (N, D_out, C, kd, H, W): output depth ``o``, tap ``i`` holds
    input slice ``o * sd - pf + i * dd`` (zeros where that is padding)."""
    xp = get_xp(x)
    n, c, d, h, w = x.shape
    taps = _depth_taps(kd, sd, dd, pf, d, od)
    full = len(taps) == kd and all(t[1] == slice(0, od) for t in taps)
    out = (xp.empty if full else xp.zeros)((n, od, c, kd, h, w), x.dtype)
    for i, so, si in taps:
        out[:, so, :, i] = x[:, :, si].transpose(0, 2, 1, 3, 4)
    return out


def _fold_depth(cols: Any, kd: int, sd: int, dd: int, pf: int, d: int) -> Any:
    """The adjoint of :func:`_unfold_depth`: cols (N, D_out, C, kd, H, W) summed back into
    (N, C, D, H, W), one strided add per kernel offset."""
    xp = get_xp(cols)
    n, od, c, _, h, w = cols.shape
    out = xp.zeros((n, c, d, h, w), cols.dtype)
    for i, so, si in _depth_taps(kd, sd, dd, pf, d, od):
        out[:, :, si] += cols[:, so, :, i].transpose(0, 2, 1, 3, 4)
    return out


class DepthUnfold(Function):
    """(N, C, D, H, W) -> (N, D_out, C, kd, H, W), the depth windows of a convolution."""

    @staticmethod
    def forward(ctx, x, kd, sd, dd, pf, od):
        ctx.params, ctx.depth = (kd, sd, dd, pf), x.shape[2]
        return _unfold_depth(x, kd, sd, dd, pf, od)

    @staticmethod
    def backward(ctx, g):
        return _fold_depth(g, *ctx.params, ctx.depth), None, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        return DepthFold.apply(g, *ctx.params, ctx.depth), None, None, None, None, None


class DepthFold(Function):
    """(N, D_out, C, kd, H, W) -> (N, C, D, H, W): the adjoint of :class:`DepthUnfold`."""

    @staticmethod
    def forward(ctx, cols, kd, sd, dd, pf, d):
        ctx.params, ctx.out_depth = (kd, sd, dd, pf), cols.shape[1]
        return _fold_depth(cols, kd, sd, dd, pf, d)

    @staticmethod
    def backward(ctx, g):
        return _unfold_depth(g, *ctx.params, ctx.out_depth), None, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        return DepthUnfold.apply(g, *ctx.params, ctx.out_depth), None, None, None, None, None


# ------------------------------------------------------------------ argument checking


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _triple(v: Any, name: str, op: str, minimum: int) -> tuple[int, int, int]:
    if _is_int(v):
        v = (v, v, v)
    elif isinstance(v, tuple | list) and len(v) == 1:
        v = (v[0],) * 3
    if not isinstance(v, tuple | list) or len(v) != 3 or not all(_is_int(e) for e in v):
        raise InvalidType(f"{op}: {name} must be an int or a tuple of 3 ints, got {v!r}")
    out = (int(v[0]), int(v[1]), int(v[2]))
    if min(out) < minimum:
        raise InvalidValue(f"{op}: {name} must be >= {minimum}, got {out}")
    return out


def _shape(t: Any) -> tuple:
    return tuple(int(n) for n in t.shape)


def _check_conv(op: str, input: Any, weight: Any, bias: Any, groups: Any) -> None:
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise InvalidType(
            f"{op}: input and weight must be tensors, got {type(input).__name__} "
            f"and {type(weight).__name__}"
        )
    if input.ndim not in (4, 5):
        raise RuntimeError(
            f"{op}: expected a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got shape "
            f"{_shape(input)}"
        )
    if weight.ndim != 5:
        raise RuntimeError(f"{op}: expected a 5-D weight, got shape {_shape(weight)}")
    ws = _shape(weight)
    if ws[0] == 0:
        raise InvalidValue(f"{op}: expected weight to be at least 1 at dimension 0, got {ws}")
    if 0 in ws[2:]:
        raise InvalidValue(f"{op}: kernel size should be greater than zero, got weight {ws}")
    for name, t in (("input", input), ("weight", weight)):
        if t.array.dtype.kind != "f":
            raise RuntimeError(f"{op}: expected a floating-point {name}, got {t.dtype}")
    if not _is_int(groups) or groups < 1:
        raise InvalidValue(f"{op}: groups must be a positive int, got {groups!r}")
    if bias is not None and not isinstance(bias, Tensor):
        raise InvalidType(f"{op}: bias must be a tensor or None, got {type(bias).__name__}")
    same_dtype(op, "input weight bias", input, weight, bias)


def _batched(x: Tensor) -> tuple[Tensor, bool]:
    """A 4-D (unbatched) input as a batch of one, and whether it was unbatched."""
    return (x.unsqueeze(0), True) if x.ndim == 4 else (x, False)


# ------------------------------------------------------------------ convolutions


@autocasts("conv3d")
def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """3-D cross-correlation over a volume of several channels, as
    ``torch.nn.functional.conv3d``.

    Args:
        input: (N, C_in, D, H, W) or unbatched (C_in, D, H, W).
        weight: (C_out, C_in / groups, kD, kH, kW).
        bias: optional (C_out,).
        stride: int or (sD, sH, sW). Default: 1.
        padding: int, triple, ``'valid'`` (no padding) or ``'same'`` (output as large as
            the input; stride 1 only). Default: 0.
        dilation: spacing between kernel elements, int or triple. Default: 1.
        groups: split input and output channels into this many blocked groups. Default: 1.

    Shape:
        Output (N, C_out, D_out, H_out, W_out) with
        ``D_out = (D + 2 * pD - dD * (kD - 1) - 1) // sD + 1`` (H, W alike).

    Example::

        >>> F.conv3d(dl.randn(2, 4, 8, 8, 8), dl.randn(6, 4, 3, 3, 3), padding=1).shape
        (2, 6, 8, 8, 8)
    """
    op = "conv3d"
    _check_conv(op, input, weight, bias, groups)
    groups = int(groups)
    sd, sh, sw = _triple(stride, "stride", op, 1)
    dd, dh, dw = _triple(dilation, "dilation", op, 1)
    o, cg, kd, kh, kw = _shape(weight)
    ishape = _shape(input)
    c, d = ishape[-4], ishape[-3]
    check_channels(op, weight, bias, ishape, c, groups)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise InvalidValue(
                f"{op}: padding must be an int, a triple, 'same' or 'valid', got {padding!r}"
            )
        if padding == "same" and (sd, sh, sw) != (1, 1, 1):
            raise InvalidValue(
                f"{op}: padding='same' is not supported for strided convolutions "
                f"(stride={(sd, sh, sw)})"
            )
        total = dd * (kd - 1) if padding == "same" else 0
        pf, pb = total // 2, total - total // 2
        hw_pad: Any = padding
        pads = (pf, pb)
    else:
        pd, ph, pw = _triple(padding, "padding", op, 0)
        pf = pb = pd
        hw_pad = (ph, pw)
        pads = (pd, ph, pw)
    # the kernel must fit the padded input (the 2-D op checks H and W the same way)
    ed = dd * (kd - 1) + 1
    if ed > d + pf + pb:
        raise RuntimeError(
            f"{op}: kernel size {(kd, kh, kw)} (dilated depth {ed}) is larger than the padded "
            f"input depth {d + pf + pb} (input {ishape}, padding {pads})"
        )
    od = (d + pf + pb - ed) // sd + 1
    x, unbatched = _batched(input)
    n = x.shape[0]
    h, w = ishape[-2:]
    cols = DepthUnfold.apply(x, kd, sd, dd, pf, od)  # (N, D_out, C, kd, H, W)
    planes = cols.reshape(n * od, c * kd, h, w)
    y = conv2d(planes, weight.reshape(o, cg * kd, kh, kw), bias, (sh, sw), hw_pad, (dh, dw), groups)
    oh, ow = y.shape[-2:]
    y = y.reshape(n, od, o, oh, ow).permute(0, 2, 1, 3, 4).contiguous()
    return y.squeeze(0) if unbatched else y


@autocasts("conv_transpose3d")
def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``: the adjoint
    of :func:`conv3d` with the same weight.

    Args:
        input: (N, C_in, D, H, W) or unbatched (C_in, D, H, W).
        weight: (C_in, C_out / groups, kD, kH, kW).
        bias: optional (C_out,).
        stride: int or triple. Default: 1.
        padding: ``dilation * (k - 1) - padding`` zeros pad both sides of each spatial
            dim of the input, int or triple. Default: 0.
        output_padding: extra size added at the far end of each output dim; smaller than
            stride or dilation. Default: 0.
        groups: blocked connections from input to output channels. Default: 1.
        dilation: spacing between kernel elements. Default: 1.

    Shape:
        Output (N, C_out, D_out, H_out, W_out) with
        ``D_out = (D - 1) * sD - 2 * pD + dD * (kD - 1) + output_padding + 1``.
    """
    op = "conv_transpose3d"
    if isinstance(padding, str):
        raise InvalidType(f"{op}: padding must be an int or a triple, not a string ({padding!r})")
    _check_conv(op, input, weight, bias, groups)
    groups = int(groups)
    sd, sh, sw = _triple(stride, "stride", op, 1)
    dd, dh, dw = _triple(dilation, "dilation", op, 1)
    pd, ph, pw = _triple(padding, "padding", op, 0)
    opd, oph, opw = _triple(output_padding, "output_padding", op, 0)
    cin, cog, kd, kh, kw = _shape(weight)
    ishape = _shape(input)
    c, d, h, w = ishape[-4:]
    if cin % groups:
        raise RuntimeError(
            f"{op}: weight {_shape(weight)} has {cin} input channels, which is not divisible "
            f"by groups={groups}"
        )
    if c != cin:
        raise RuntimeError(
            f"{op}: expected input with {cin} channels (weight {_shape(weight)}, "
            f"groups={groups}), got {ishape}"
        )
    cout = cog * groups
    if bias is not None and _shape(bias) != (cout,):
        raise RuntimeError(
            f"{op}: bias of shape {_shape(bias)} does not match {cout} output channels "
            f"(weight {_shape(weight)}, groups={groups})"
        )
    for p_, s_, d_ in ((opd, sd, dd), (oph, sh, dh), (opw, sw, dw)):
        if p_ >= s_ and p_ >= d_:
            raise InvalidValue(
                f"{op}: output_padding {(opd, oph, opw)} must be smaller than either stride "
                f"{(sd, sh, sw)} or dilation {(dd, dh, dw)}"
            )
    sizes = [
        (n_ - 1) * s_ - 2 * p_ + d_ * (k_ - 1) + q_ + 1
        for n_, s_, p_, d_, k_, q_ in zip(
            (d, h, w), (sd, sh, sw), (pd, ph, pw), (dd, dh, dw), (kd, kh, kw), (opd, oph, opw)
        )
    ]
    if min(sizes) < 1:
        raise RuntimeError(
            f"{op}: output size {tuple(sizes)} is too small (input {ishape}, kernel "
            f"{(kd, kh, kw)}, stride {(sd, sh, sw)}, padding {(pd, ph, pw)})"
        )
    x, unbatched = _batched(input)
    n = x.shape[0]
    planes = x.permute(0, 2, 1, 3, 4).reshape(n * d, cin, h, w)
    cols = conv_transpose2d(
        planes,
        weight.reshape(cin, cog * kd, kh, kw),
        None,
        (sh, sw),
        (ph, pw),
        (oph, opw),
        groups,
        (dh, dw),
    )  # (N * D, C_out * kd, H_out, W_out)
    hout, wout = cols.shape[-2:]
    y = DepthFold.apply(cols.reshape(n, d, cout, kd, hout, wout), kd, sd, dd, pd, sizes[0])
    if bias is not None:
        y = y + bias.reshape(1, cout, 1, 1, 1)
    return y.squeeze(0) if unbatched else y


# ------------------------------------------------------------------ pooling


def _check_pool_input(op: str, input: Any, int64: bool = False, dtype: bool = True) -> None:
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: input must be a tensor, got {type(input).__name__}")
    if input.ndim not in (4, 5):
        raise RuntimeError(
            f"{op}: expected a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got shape "
            f"{_shape(input)}"
        )
    if dtype:
        _check_dtype(op, input, int64)
    if 0 in _shape(input)[-3:]:
        raise RuntimeError(f"{op}: expected non-empty D, H and W, got input {_shape(input)}")


def _pool_window(
    op: str,
    input: Tensor,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
) -> tuple:
    """(kernel, stride, padding, dilation) triples, after torch's checks."""
    k = _triple(kernel_size, "kernel_size", op, 1)
    empty = stride is None or (isinstance(stride, tuple | list) and len(stride) == 0)
    s = k if empty else _triple(stride, "stride", op, 1)
    p = _triple(padding, "padding", op, 0)
    dl_ = _triple(dilation, "dilation", op, 1)
    if any(p_ > k_ // 2 for p_, k_ in zip(p, k)):
        raise RuntimeError(
            f"{op}: pad should be at most half of the kernel size, but got padding={p} and "
            f"kernel_size={k}"
        )
    out = tuple(
        _pool_out(n_, k_, s_, p_, d_, ceil_mode)
        for n_, k_, s_, p_, d_ in zip(_shape(input)[-3:], k, s, p, dl_)
    )
    if min(out) < 1:
        raise RuntimeError(
            f"{op}: input of shape {_shape(input)} is too small for kernel_size={k}, "
            f"stride={s}, padding={p}, dilation={dl_}: calculated output size {out}"
        )
    return k, s, p, dl_


def _depth_indices(idx_hw: Any, idx_d: Any, hw: int) -> Any:
    """Flat (d * H * W + h * W + w) indices from the two stages of a separable max pool:
    ``idx_hw`` (N, C, D, P) indexes each slice's plane, ``idx_d`` (N, C, D_out, P) picks
    the slice (as ``d * P + j``, P = H_out * W_out)."""
    xp = get_xp(idx_hw)
    p = idx_hw.shape[-1]
    depth = idx_d // p
    # (a window wholly in the padding picks a slice past the input, as torch's index does:
    # its value is -inf; the plane index is read from the last slice, not past the array)
    inside = xp.minimum(depth, idx_hw.shape[2] - 1)
    return depth * hw + xp.take_along_axis(idx_hw, inside, axis=2)


def _separable_max(
    x: Tensor,
    plane: Any,
    depth: Any,
    return_indices: bool,
) -> Any:
    """Max pool of x (N, C, D, H, W): ``plane(t4, want_indices)`` pools (H, W) of
    (N, C*D, H, W) and ``depth(t4, want_indices)`` pools axis 2 of (N, C, D, P)."""
    n, c, d, h, w = _shape(x)
    a = plane(x.reshape(n, c * d, h, w), return_indices)
    a, ia = a if return_indices else (a, None)
    oh, ow = a.shape[-2:]
    b = depth(a.reshape(n, c, d, oh * ow), return_indices)
    b, ib = b if return_indices else (b, None)
    od = b.shape[2]
    y = b.reshape(n, c, od, oh, ow)
    if not return_indices:
        return y
    flat = _depth_indices(ia.array.reshape(n, c, d, oh * ow), ib.array, h * w)
    return y, Tensor._wrap(flat.reshape(n, c, od, oh, ow))


def _unbatch(out: Any, unbatched: bool) -> Any:
    if not unbatched:
        return out
    if isinstance(out, tuple):
        return tuple(t.squeeze(0) for t in out)
    return out.squeeze(0)


@autocasts("max_pool3d")
def max_pool3d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """3-D max pooling, as ``torch.nn.functional.max_pool3d``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W); floating-point or integer (not bool).
        kernel_size: window size, int or (kD, kH, kW).
        stride: window step; defaults to ``kernel_size``.
        padding: implicit -inf padding on both sides, at most half the window.
        dilation: spacing between window elements.
        ceil_mode: round the output size up instead of down.
        return_indices: also return the argmax of each window as a flat index into its
            input volume (``(id * H + ih) * W + iw``, int64), as torch's.

    Shape:
        Output (N, C, D_out, H_out, W_out) with
        ``D_out = (D + 2 * pD - dD * (kD - 1) - 1) // sD + 1`` (``ceil`` with ceil_mode).
    """
    w = _Window(kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool3d("max_pool3d", input, w, return_indices)


def _max_pool3d(op: str, input: Tensor, w: _Window, return_indices: bool) -> Any:
    """max_pool3d, its errors naming ``op`` (the op the user called)."""
    kernel_size, stride, padding, dilation, ceil_mode = w
    _check_pool_input(op, input, dtype=False)
    _check_dtype(op, input, ints=True)
    k, s, p, dl_ = _pool_window(op, input, kernel_size, stride, padding, dilation, ceil_mode)
    if input.array.dtype.kind in "iu":  # integers, as torch's (no gradient to keep)
        outs = tuple(
            _pool_out(n, k_, s_, p_, d_, ceil_mode)
            for n, k_, s_, p_, d_ in zip(_shape(input)[-3:], k, s, p, dl_)
        )
        return _max_pool_ints(input, k, s, p, dl_, outs, return_indices)
    x, unbatched = _batched(input)
    out = _separable_max(
        x,
        lambda t, ri: _max_pool2d(op, t, _Window(k[1:], s[1:], p[1:], dl_[1:], ceil_mode), ri),
        lambda t, ri: _max_pool2d(
            op, t, _Window((k[0], 1), (s[0], 1), (p[0], 0), (dl_[0], 1), ceil_mode), ri
        ),
        bool(return_indices),
    )
    return _unbatch(out, unbatched)


@autocasts("avg_pool3d")
def avg_pool3d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """3-D average pooling, as ``torch.nn.functional.avg_pool3d``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W); floating-point or int64 (truncated
            averages); each window must fit in the unpadded input, as torch's.
        kernel_size: window size, int or (kD, kH, kW).
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the window.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padding zeros in the divisor. Default: ``True``.
        divisor_override: divide by this instead of the window size.

    Shape:
        Output (N, C, D_out, H_out, W_out) with ``D_out = (D + 2 * pD - kD) // sD + 1``.
    """
    w = _Window(kernel_size, stride, padding, 1, ceil_mode)
    return _avg_pool3d("avg_pool3d", input, w, count_include_pad, divisor_override)


def _avg_pool3d(
    op: str, input: Tensor, w: _Window, count_include_pad: bool, divisor_override: int | None
) -> Tensor:
    """avg_pool3d, its errors naming ``op`` (the op the user called); ``w.dilation`` is 1."""
    kernel_size, stride, padding, _, ceil_mode = w
    _check_pool_input(op, input, int64=True)
    k, s, p, _ = _pool_window(op, input, kernel_size, stride, padding, 1, ceil_mode)
    if any(n < k_ for n, k_ in zip(_shape(input)[-3:], k)):  # (torch's check, padding aside)
        raise RuntimeError(
            f"{op}: input of shape {_shape(input)} is smaller than kernel_size={k} in "
            "(D, H, W): the window must fit in the unpadded input"
        )
    _check_divisor(op, divisor_override)
    cip = bool(count_include_pad)
    if input.array.dtype == np.int64:  # exact sums, one truncating division (no gradient)
        out = avg_pool_int(input.array, k, s, p, bool(ceil_mode), cip, divisor_override)
        return Tensor._wrap(out)
    x, unbatched = _batched(input)
    n, c, d, h, w = _shape(x)
    # with an override the planes are summed (divisor 1) and the depth stage divides
    plane = _Window(k[1:], s[1:], p[1:], 1, ceil_mode)
    a = _avg_pool2d(
        op, x.reshape(n, c * d, h, w), plane, cip, None if divisor_override is None else 1
    )
    oh, ow = a.shape[-2:]
    depth = _Window((k[0], 1), (s[0], 1), (p[0], 0), 1, ceil_mode)
    b = _avg_pool2d(op, a.reshape(n, c, d, oh * ow), depth, cip, divisor_override)
    y = b.reshape(n, c, b.shape[2], oh, ow)
    return _unbatch(y, unbatched)


def _adaptive_sizes(op: str, input: Tensor, output_size: Any) -> tuple[int, int, int]:
    if _is_int(output_size) or output_size is None:
        output_size = (output_size,) * 3
    if not isinstance(output_size, tuple | list) or len(output_size) != 3:
        raise InvalidType(
            f"{op}: output_size must be an int or a tuple of 3 (None keeps that input size), "
            f"got {output_size!r}"
        )
    sizes = []
    for v, n in zip(output_size, _shape(input)[-3:]):
        if v is not None and not _is_int(v):
            raise InvalidType(f"{op}: output_size must hold ints or None, got {output_size!r}")
        sizes.append(n if v is None else int(v))
    if min(sizes) < 0:
        raise InvalidValue(f"{op}: output_size must be >= 0, got {tuple(output_size)}")
    return sizes[0], sizes[1], sizes[2]


def _check_adaptive_input(op: str, input: Any) -> None:
    _check_pool_input(op, input)


def _empty_pool(x: Tensor, sizes: tuple) -> Tensor:
    """The empty (N, C, *sizes) output of an adaptive pool to a size with a 0, in x's graph."""
    n, c = _shape(x)[:2]
    return x[:, :, :0].reshape(n, c, *sizes)


@autocasts("adaptive_avg_pool3d")
def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool3d``.

    Output index ``o`` along an axis of size ``L`` averages inputs ``floor(o * L / L_out)``
    to ``ceil((o + 1) * L / L_out)``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W).
        output_size: int or (D_out, H_out, W_out); ``None`` keeps that input size.
    """
    op = "adaptive_avg_pool3d"
    _check_adaptive_input(op, input)
    od, oh, ow = _adaptive_sizes(op, input, output_size)
    x, unbatched = _batched(input)
    if 0 in (od, oh, ow):  # an empty output, as torch's
        return _unbatch(_empty_pool(x, (od, oh, ow)), unbatched)
    n, c, d, h, w = _shape(x)
    a = _adaptive_avg_pool2d(op, x.reshape(n, c * d, h, w), (oh, ow))
    b = _adaptive_avg_pool2d(op, a.reshape(n, c, d, oh * ow), (od, oh * ow))
    return _unbatch(b.reshape(n, c, od, oh, ow), unbatched)


@autocasts("adaptive_max_pool3d")
def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed output size, as ``torch.nn.functional.adaptive_max_pool3d``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W).
        output_size: int or (D_out, H_out, W_out); ``None`` keeps that input size.
        return_indices: also return flat argmax indices into each input volume (int64).
    """
    op = "adaptive_max_pool3d"
    _check_adaptive_input(op, input)
    od, oh, ow = _adaptive_sizes(op, input, output_size)
    x, unbatched = _batched(input)
    if 0 in (od, oh, ow):  # an empty output, as torch's
        y = _empty_pool(x, (od, oh, ow))
        if not return_indices:
            return _unbatch(y, unbatched)
        idx = Tensor._wrap(get_xp(x.array).zeros(tuple(y.shape), np.int64))
        return _unbatch((y, idx), unbatched)
    out = _separable_max(
        x,
        lambda t, ri: _adaptive_max_pool2d(op, t, (oh, ow), ri),
        lambda t, ri: _adaptive_max_pool2d(op, t, (od, t.shape[-1]), ri),
        bool(return_indices),
    )
    return _unbatch(out, unbatched)


# ------------------------------------------------------------------ interpolation

_MODES_3D = ("nearest", "nearest-exact", "trilinear", "area")


def _identity(table: tuple, n_in: int) -> bool:
    """Whether a resampling table (nearest or linear) maps each of ``n_in`` indices onto
    itself."""
    idx = table[0]
    same = idx.size == n_in and np.array_equal(idx, np.arange(n_in))
    return same and (len(table) == 3 or not table[3].any())


def interpolate3d(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """``interpolate`` of a 5-D (N, C, D, H, W) input (``F.interpolate`` routes 5-D inputs
    here): modes ``'nearest'``, ``'nearest-exact'``, ``'trilinear'`` and ``'area'``, with
    torch's sizes, source coordinates and rounding."""
    from darklib.ops import sampling as smp

    op = "interpolate"
    if mode not in _MODES_3D:
        raise NotImplementedError(
            f"{op}: got a 5-D input, but mode {mode!r} is not available for volumes; use one "
            "of " + ", ".join(repr(m) for m in _MODES_3D)
        )
    if input.array.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if antialias:
        raise InvalidValue(
            f"{op}: anti-alias option is restricted to bilinear and bicubic modes and "
            f"requires a 4-D tensor as input (got mode={mode!r}, a 5-D input)"
        )
    linear = mode == "trilinear"
    if align_corners is not None and not linear:
        raise InvalidValue(
            f"{op}: align_corners option can only be set with the interpolating modes: "
            f"linear | bilinear | bicubic | trilinear (got mode={mode!r})"
        )
    if (size is None) == (scale_factor is None):
        raise InvalidValue(
            f"{op}: exactly one of size and scale_factor must be given "
            f"(got size={size!r}, scale_factor={scale_factor!r})"
        )
    in_sizes = _shape(input)[2:]
    if size is not None:
        if recompute_scale_factor:
            raise InvalidValue(
                f"{op}: recompute_scale_factor is not meaningful with an explicit size"
            )
        out_sizes = smp._spatial(op, size, 3, "size", int)
        scales: tuple = (None,) * 3
    else:
        sf = smp._spatial(op, scale_factor, 3, "scale_factor", float)
        if any(not math.isfinite(s) or s <= 0 for s in sf):
            raise InvalidValue(
                f"{op}: scale_factor must be positive and finite, got {scale_factor!r}"
            )
        out_sizes = tuple(math.floor(n * s) for n, s in zip(in_sizes, sf))
        scales = (None,) * 3 if recompute_scale_factor else sf
    if mode == "area" and min(in_sizes) >= 1:  # (an output size of 0: empty, as torch)
        return adaptive_avg_pool3d(input, out_sizes)
    if min(out_sizes) < 1 or min(in_sizes) < 1:
        raise InvalidValue(
            f"{op}: input {_shape(input)} and output size {out_sizes} must be non-empty"
        )
    n, c, d, h, w = _shape(input)
    od, oh, ow = out_sizes
    if linear:
        dt = np.dtype(input.array.dtype).str
        align = bool(align_corners)
        keys = [("linear", i, o, s, align, dt) for i, o, s in zip(in_sizes, out_sizes, scales)]
        keys.append(("linear", oh * ow, oh * ow, None, align, dt))  # identity over planes
        tables = [smp._linear_table(*k[1:]) for k in keys]
        fn: Any = smp.UpsampleBilinear
    else:
        exact = mode == "nearest-exact"
        # torch's 3-D kernel always scales: no copy for an equal size, nor halving for a
        # doubled one, as its 2-D kernel has (a scale of 1.1 maps 5 pixels onto 5 others)
        keys = [
            ("nearest", i, o, s, exact, False, False)
            for i, o, s in zip(in_sizes, out_sizes, scales)
        ]
        keys.append(("nearest", oh * ow, oh * ow, None, False, False, False))
        tables = [smp._nearest_table(*k[1:]) for k in keys]
        fn = smp.UpsampleNearest
    # (H, W) of every depth slice, then depth with the planes' pixels left as they are:
    # torch's order of accumulation (W innermost, then H, then D)
    moves = [not _identity(t, i) for t, i in zip(tables, in_sizes)]
    y = input
    if moves[1] or moves[2]:
        y = fn.apply(input.reshape(n, c * d, h, w), tables[1], tables[2], tuple(keys[1:3]))
    if moves[0]:
        y = fn.apply(y.reshape(n, c, d, oh * ow), tables[0], tables[3], (keys[0], keys[3]))
    if y is input:  # nothing to resample: a copy, as torch
        return input.clone()
    return y.reshape(n, c, od, oh, ow)
