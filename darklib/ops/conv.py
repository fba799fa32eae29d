"""2-D convolution and transposed convolution: im2col + GEMM, col2im for the adjoint
(and their 1-D forms, the 2-D ops on a plane of height 1).

Three array-level building blocks carry both ops (transposed convolution is the adjoint
of convolution, so its forward is convolution's input gradient and vice versa):

- :func:`_conv` (forward): im2col on a strided view of the padded input, then one GEMM
  per group; 1x1 stride-1 convolutions skip im2col.
- :func:`_conv_input_grad`: for stride 1 a "full" convolution of the output gradient with
  the flipped, transposed weight (im2col + GEMM again, no scatter); otherwise a GEMM and
  col2im (a scatter-add per kernel offset).
- :func:`_conv_weight_grad`: im2col of the input and a GEMM contracting over N*H*W.

Columns are laid out (C*kh*kw, N*oh*ow) (on the CPU: channels-last for narrow images,
and per image, (N, C*kh*kw, oh*ow), from 400 output pixels in the forward and weight
gradient). On the CPU the batch goes in chunks of about _CHUNK_BYTES of columns, claimed
one at a time by darklib's threads (:mod:`darklib.kernels.parallel`), each with its own
reusable scratch memory (:func:`darklib.kernels.im2col.workspace`); the GPU takes the whole
batch at once. Only the input and weight are saved for backward, as PyTorch does; the
columns are recomputed there. bench/ops.py times these choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.kernels import im2col as cpu
from darklib.kernels import parallel as par
from darklib.kernels import phases as ph
from darklib.kernels.im2col import Geometry
from darklib.ops._promote import same_dtype
from darklib.tensor import Tensor

# Columns are built for chunks of the batch holding about this many bytes (at least one
# image), each multiplied in one GEMM per group. Where darklib's threads run the GEMMs on
# one BLAS thread each (darklib.kernels.parallel), small chunks win: the columns are still
# in cache when the GEMM reads them (10-15% faster convs than 64 MB chunks, and a fraction
# of the scratch memory). Where BLAS runs its own threads, few large calls matter more:
# its threads synchronise at every call, and with other threads or processes on the cores
# many small calls ran up to 10x slower than one big call (measured). The GPU takes the
# whole batch at once.
_CHUNK_BYTES = 1 << 21 if par.owns_blas else 1 << 26
# Channels-last columns when output rows are this short (groups == 1, CPU only) and the
# input has at least _NHWC_MIN_CHANNELS channels: copies and scatter-adds then run over rows
# of C channels instead of rows of ow pixels. (With fewer channels those rows are shorter
# still: a 1->32 4x4 stride-2 conv at 28x28 b64 took 0.96 ms forward and 2.6 ms with its
# backward channels-last, 0.51 and 2.3 channels-first; at 4 channels 4.2 against 2.4 ms;
# even at 16.)
_NHWC_MAX_WIDTH = 16
_NHWC_MIN_CHANNELS = 16
# Per-image columns (N, C*kh*kw, oh*ow) and a batched GEMM when images have at least this
# many output pixels (groups == 1, CPU only): the output lands in NCHW without a transposed
# copy, and this im2col copy is faster than the (C*kh*kw, N*oh*ow) one.
_NKP_MIN_PIXELS = 400


# The input gradient of a strided convolution on the CPU (and so the forward of a strided
# transposed convolution) scatters its columns into polyphase planes (see
# darklib.kernels.phases): one contiguous add per channel and kernel offset, instead of
# strided adds with rows of ow elements (col2im of a 4x4 stride-2 convolution at 16x16
# outputs took half as long as its GEMM). The price is GEMM work on the padded output
# layout, taken while that is at most this much larger. (Columns for the forward and weight
# gradient gain too little from planes to pay for it: they stay compact.)
_PHASE_MAX_WASTE = 1.35


def _phased(xp: Any, g: Geometry, groups: int, c: int) -> ph.Phases | None:
    """The polyphase layout for a strided convolution on the CPU, or None."""
    if xp is not np or (g.sh == 1 and g.sw == 1) or _nhwc(xp, g, groups, c):
        return None
    p = ph.phases(g)
    return p if p.size <= _PHASE_MAX_WASTE * g.oh * g.ow else None


def _phase_col2im(cols: np.ndarray, g: Geometry, p: ph.Phases, out: np.ndarray) -> None:
    """col2im from columns (C*kh*kw, m*size) in the padded output layout (scratch
    positions must hold zeros) into ``out`` (m, C, H, W): per kernel offset, one
    contiguous add of its rows into a polyphase plane, then one copy out of the planes."""
    m, c = out.shape[:2]
    length = m * p.size
    c3 = cols.reshape(c, g.kh * g.kw, length)
    q = cpu.workspace("conv_gq", ph.plane_shape(c, m, g, p), cols.dtype)
    ph.zero_unread(q, p)
    for t, first in enumerate(ph.first_writers(p)):
        if first:
            np.copyto(ph.write_first(q, p, t, length), c3[:, t])
        else:
            dst = ph.term(q, p, t, length)
            np.add(dst, c3[:, t], out=dst)
    ph.from_phases(q, g, p, out)


def _phase_gy(gy: np.ndarray, g: Geometry, p: ph.Phases) -> np.ndarray:
    """gy (m, O, oh, ow) as (O, m*size) in the padded output layout, zeros in scratch."""
    m, o = gy.shape[:2]
    return ph.padded(gy, g, p, cpu.workspace("conv_gy", (o, m * p.size), gy.dtype))


def _nhwc(xp: Any, g: Geometry, groups: int, c: int) -> bool:
    """Whether a conv over ``c`` input channels takes channels-last columns."""
    return xp is np and groups == 1 and g.ow <= _NHWC_MAX_WIDTH and c >= _NHWC_MIN_CHANNELS


def _nkp(xp: Any, g: Geometry, groups: int) -> bool:
    return xp is np and groups == 1 and g.oh * g.ow >= _NKP_MIN_PIXELS


def _pieces(xp: Any, n: int, image_bytes: int, itemsize: int) -> Callable:
    """How a conv op walks its batch: ``walk(body)`` calls ``body(s, e)`` on chunks of
    the batch and returns their results in order. On the CPU darklib's threads
    (:mod:`darklib.kernels.parallel`) claim the chunks one at a time, each with its own
    scratch buffers; the GPU takes the whole batch at once."""
    if xp is not np:
        return lambda body: [body(0, n)]
    step = max(1, _CHUNK_BYTES // max(1, image_bytes))
    # as many chunks, of equal sizes: 64 images in chunks of 20 gave 20, 20, 20 and 4, and
    # one of two threads ran two chunks of 20 while the other waited. (Chunks never depend
    # on the thread count: the weight gradient's sum over them rounds alike everywhere.)
    step = -(-n // -(-n // step)) if n else 1
    return lambda body: par.map_reduce(body, n, n * image_bytes // itemsize, step)


def _col2im(cols: Any, n: int, c: int, g: Geometry, out: Any) -> Any:
    if get_xp(cols) is np:
        return cpu.col2im(cols, n, c, g, out)
    from darklib.kernels import cuda

    return cuda.col2im(cols, n, c, g, out)


def _gmm(a: Any, b: Any, out: Any = None) -> Any:
    """Grouped GEMM (G, m, k) @ (G, k, n). One group runs as a 2-D product, so that CuPy
    passes transposed operands to cuBLAS as flags instead of copying them."""
    xp = get_xp(a)
    mm = par.matmul if xp is np else xp.matmul
    if a.shape[0] == 1:
        return mm(a[0], b[0], out=None if out is None else out[0])[None]
    return mm(a, b, out=out)


def _is_pointwise(g: Geometry) -> bool:
    return (
        g.kh == g.kw == 1
        and g.sh == g.sw == 1
        and g.pt == g.pl == 0
        and (g.oh == g.h and g.ow == g.w)
    )


def _columns(x: Any, g: Geometry, groups: int) -> Any:
    """Columns of x (m, C, H, W) as (groups, C/groups*kh*kw, m*oh*ow): row (c, i, j) holds
    input channel c shifted by kernel offset (i, j), for every output pixel of every image."""
    xp = get_xp(x)
    m, c = x.shape[:2]
    kg, p = c // groups * g.kh * g.kw, g.oh * g.ow
    if _is_pointwise(g):  # the input itself, channels first
        cols = xp.ascontiguousarray(x.reshape(m, c, p).transpose(1, 0, 2))
    elif xp is np:
        cols = cpu.im2col(x, g, "knp")
    else:
        from darklib.kernels import cuda

        cols = cuda.im2col(x, g, "knp")
    return cols.reshape(groups, kg, m * p)


def _channels_first(gy: Any, groups: int) -> Any:
    """gy (m, O, oh, ow) as (groups, O/groups, m*oh*ow): the layout of the GEMM output."""
    m, o = gy.shape[:2]
    p = math.prod(gy.shape[2:])
    g2 = get_xp(gy).ascontiguousarray(gy.reshape(m, o, p).transpose(1, 0, 2))
    return g2.reshape(groups, o // groups, m * p)


def _conv(x: Any, w: Any, g: Geometry, groups: int, b: Any = None) -> Any:
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw), plus bias b (O,)
    if given -> (N, O, oh, ow)."""
    xp = get_xp(x)
    n = x.shape[0]
    o = w.shape[0]
    og, kg = o // groups, w.shape[1] * g.kh * g.kw
    p = g.oh * g.ow
    y = xp.empty((n, o, p), xp.result_type(x, w))
    nhwc = _nhwc(xp, g, groups, x.shape[1])
    nkp = not nhwc and _nkp(xp, g, groups)
    if nhwc:  # weight rows in (kh, kw, C) order, to match the channels-last columns
        wk = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(o, kg).T
    else:
        wk = w.reshape(groups, og, kg)

    def body(s: int, e: int) -> None:
        m = e - s
        if nkp:  # (O, K) @ (m, K, P) straight into NCHW
            if _is_pointwise(g):
                cols = x[s:e].reshape(m, kg, p)
            else:
                cols = cpu.im2col(x[s:e], g, "nkp")
            par.matmul(wk[0], cols, out=y[s:e])
        elif nhwc:  # (m*P, K) @ (K, O)
            yk = par.matmul(cpu.im2col_nhwc(x[s:e], g), wk)
            y[s:e] = yk.reshape(m, p, o).transpose(0, 2, 1)
        else:  # (O, K) @ (K, m*P)
            yk = _gmm(wk, _columns(x[s:e], g, groups)).reshape(o, m, p)
            if xp is not np:  # the transpose to (m, O, P) and the bias in one kernel
                from darklib.kernels import cuda

                cuda.batch_first(yk, b, y[s:e])
                return
            y[s:e] = yk.transpose(1, 0, 2)
        if b is not None:  # while the chunk is still in cache
            y[s:e] += b.reshape(o, 1)

    _pieces(xp, n, groups * kg * p * x.itemsize, x.itemsize)(body)
    return y.reshape(n, o, g.oh, g.ow)


def _full_geometry(g: Geometry) -> Geometry | None:
    """Geometry of the stride-1 'full' convolution that computes the input gradient."""
    if g.sh != 1 or g.sw != 1:
        return None
    pt, pl = g.dh * (g.kh - 1) - g.pt, g.dw * (g.kw - 1) - g.pl
    if pt < 0 or pl < 0:
        return None
    return Geometry(g.kh, g.kw, 1, 1, g.dh, g.dw, pt, pl, g.oh, g.ow, g.h, g.w)


def _conv_input_grad(gy: Any, w: Any, g: Geometry, groups: int, c: int) -> Any:
    """Gradient of :func:`_conv` with respect to x (N, c, h, w), given gy (N, O, oh, ow)."""
    xp = get_xp(gy)
    n, o = gy.shape[:2]
    if n == 0:  # an empty batch (the column layouts below cannot be shaped for it)
        return xp.zeros((0, c, g.h, g.w), xp.result_type(gy, w))
    og, cg = o // groups, c // groups
    # The full convolution unfolds gy (O*kh*kw values per pixel); col2im writes and then
    # scatters C*kh*kw values per pixel, about twice the cost per value. For O up to 2C
    # both took the same time (measured), so col2im is taken once O > C: its columns, and
    # so the scratch memory, are the smaller ones.
    full = _full_geometry(g) if o <= c else None
    if full is not None:
        # x-grad = gy correlated with the spatially flipped weight, in/out channels swapped
        wt = w.reshape(groups, og, cg, g.kh, g.kw).swapaxes(1, 2)[..., ::-1, ::-1]
        wt = xp.ascontiguousarray(wt).reshape(c, og, g.kh, g.kw)
        return _conv(gy, wt, full, groups)
    kg = cg * g.kh * g.kw
    p = g.oh * g.ow
    # The GEMM writes into the scratch "cols" that im2col uses (never both at once here).
    gx = xp.empty((n, c, g.h, g.w), xp.result_type(gy, w))
    nhwc = _nhwc(xp, g, groups, c)
    phased = _phased(xp, g, groups, c)
    if nhwc:
        wk = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(o, kg)
    else:
        wk = w.reshape(groups, og, kg).swapaxes(1, 2)

    def body(s: int, e: int) -> None:
        m = e - s
        if phased is not None:  # (K, O) @ (O, m*size), then a polyphase col2im
            length = m * phased.size
            g2 = _phase_gy(gy[s:e], g, phased).reshape(groups, og, length)
            cols = _gmm(wk, g2, out=cpu.workspace("cols", (groups, kg, length), gx.dtype))
            _phase_col2im(cols.reshape(-1, length), g, phased, gx[s:e])
        elif nhwc:  # (m*P, O) @ (O, K): channels-last columns
            g2 = gy[s:e].reshape(m, o, p).transpose(0, 2, 1).reshape(m * p, o)
            cols = cpu.workspace("cols", (m * p, kg), gx.dtype)
            par.matmul(g2, wk, out=cols)
            cpu.col2im_nhwc(cols, m, c, g, gx[s:e])
        else:
            g2 = _channels_first(gy[s:e], groups)  # (G, og, m*P)
            if xp is np:  # (K, O) @ (O, m*P) into scratch memory
                cols = _gmm(wk, g2, out=cpu.workspace("cols", (groups, kg, m * p), gx.dtype))
            else:
                cols = _gmm(wk, g2)
            _col2im(cols.reshape(groups * kg, m * p), m, c, g, gx[s:e])

    _pieces(xp, n, groups * kg * p * gy.itemsize, gy.itemsize)(body)
    return gx


def _conv_weight_grad(x: Any, gy: Any, g: Geometry, groups: int, w_shape: tuple) -> Any:
    """Gradient of :func:`_conv` with respect to w: one GEMM per group and chunk,
    contracting over images and output pixels."""
    xp = get_xp(x)
    n = x.shape[0]
    if n == 0:  # an empty batch contributes nothing
        return xp.zeros(w_shape, xp.result_type(x, gy))
    og, kg = gy.shape[1] // groups, w_shape[1] * g.kh * g.kw
    p = g.oh * g.ow
    nhwc = not _is_pointwise(g) and _nhwc(xp, g, groups, x.shape[1])
    nkp = not nhwc and _nkp(xp, g, groups)

    def body(s: int, e: int) -> Any:  # this chunk's part of the transposed gradient
        m = e - s
        if nkp:  # per image (K, P) @ (P, O), summed: no channels-first copy of gy
            if _is_pointwise(g):
                cols = x[s:e].reshape(m, kg, p)
            else:
                cols = cpu.im2col(x[s:e], g, "nkp")
            return par.matmul(cols, gy[s:e].reshape(m, og, p).transpose(0, 2, 1)).sum(0)[None]
        if nhwc:  # (K, m*P) @ (m*P, O) with channels-last K = (kh, kw, C)
            g2 = gy[s:e].reshape(m, og, p).transpose(0, 2, 1).reshape(m * p, og)
            return par.matmul(cpu.im2col_nhwc(x[s:e], g).T, g2)[None]
        cols, g2 = _columns(x[s:e], g, groups), _channels_first(gy[s:e], groups)
        if xp is not np:  # (O, m*P) @ (m*P, K): the weight's own layout, no transposed copy
            return _gmm(g2, cols.swapaxes(1, 2))
        return _gmm(cols, g2.swapaxes(1, 2))  # (K, m*P) @ (m*P, O)

    parts = _pieces(xp, n, groups * kg * p * x.itemsize, x.itemsize)(body)
    gwt = parts[0]  # (groups, kg, og) (GPU: og, kg): fresh arrays, safe to accumulate into
    for part in parts[1:]:
        gwt += part
    if xp is not np:  # (groups, og, kg)
        return gwt.reshape(w_shape)
    if nhwc:  # (kh, kw, C, O) -> (O, C, kh, kw)
        return np.ascontiguousarray(
            gwt[0].reshape(g.kh, g.kw, w_shape[1], og).transpose(3, 2, 0, 1)
        )
    return xp.ascontiguousarray(gwt.swapaxes(1, 2)).reshape(w_shape)


def _bias_grad(gy: Any) -> Any:
    return gy.sum(axis=(0, 2, 3))


def _add_bias(y: Any, b: Any) -> Any:
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


class ConvWeightGrad(Function):
    """The weight gradient of a convolution as an op of its own, for create_graph: it is
    bilinear in (input, output gradient), so its own gradients are a transposed and a plain
    convolution with the incoming weight-shaped gradient."""

    @staticmethod
    def forward(ctx, x, gy, geom, groups, w_shape):
        ctx.save_for_backward(x, gy)
        ctx.geom, ctx.groups = geom, groups
        return _conv_weight_grad(x, gy, geom, groups, w_shape)

    @staticmethod
    def backward(ctx, ggw):
        x, gy = ctx.saved_tensors
        nx, ngy = ctx.needs_input_grad[:2]
        g, groups = ctx.geom, ctx.groups
        gx = _conv_input_grad(gy, ggw, g, groups, x.shape[1]) if nx else None
        ggy = _conv(x, ggw, g, groups) if ngy else None
        return gx, ggy, None, None, None

    @staticmethod
    def backward_graph(ctx, ggw):  # (third-order gradients of convolutions)
        x, gy = ctx.saved_tensors
        nx, ngy = ctx.needs_input_grad[:2]
        g, groups = ctx.geom, ctx.groups
        gx = ConvTranspose2d.apply(ctx.lift(gy, 1), ggw, None, g, groups) if nx else None
        ggy = Conv2d.apply(ctx.lift(x, 0), ggw, None, g, groups) if ngy else None
        return gx, ggy, None, None, None


class Conv2d(Function):
    """Convolution over a batch (N, C, H, W); unbatched input is handled by the wrapper."""

    @staticmethod
    def forward(ctx, x, w, b, geom, groups):
        ctx.save_for_backward(x, w)
        ctx.geom, ctx.groups = geom, groups
        return _conv(x, w, geom, groups, b)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        g, groups = ctx.geom, ctx.groups
        gw = _conv_weight_grad(x, gy, g, groups, w.shape) if nw else None
        gb = _bias_grad(gy) if nb else None
        gx = _conv_input_grad(gy, w, g, groups, x.shape[1]) if nx else None
        return gx, gw, gb, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        return _graph_grads(ctx, gy, transposed=False)


class ConvTranspose2d(Function):
    """Transposed convolution: the adjoint of :class:`Conv2d` (``geom`` describes that conv,
    whose input is this op's output)."""

    @staticmethod
    def forward(ctx, x, w, b, geom, groups):
        ctx.save_for_backward(x, w)
        ctx.geom, ctx.groups = geom, groups
        return _add_bias(_conv_input_grad(x, w, geom, groups, w.shape[1] * groups), b)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        g, groups = ctx.geom, ctx.groups
        gw = _conv_weight_grad(gy, x, g, groups, w.shape) if nw else None
        gb = _bias_grad(gy) if nb else None
        gx = _conv(gy, w, g, groups) if nx else None
        return gx, gw, gb, None, None

    @staticmethod
    def backward_graph(ctx, gy):
        return _graph_grads(ctx, gy, transposed=True)


def _graph_grads(ctx: Any, gy: Tensor, transposed: bool) -> tuple:
    """(create_graph) the gradients of Conv2d or ConvTranspose2d as recorded ops: each
    op's input gradient is the other op, and the weight gradient a ConvWeightGrad."""
    x, w = ctx.saved_tensors
    nx, nw, nb = ctx.needs_input_grad[:3]
    g, groups = ctx.geom, ctx.groups
    xt, wt = ctx.lift(x, 0), ctx.lift(w, 1)
    other = Conv2d if transposed else ConvTranspose2d
    gx = other.apply(gy, wt, None, g, groups) if nx else None
    pair = (gy, xt) if transposed else (xt, gy)  # (the convolution's input, its output)
    gw = ConvWeightGrad.apply(*pair, g, groups, w.shape) if nw else None
    gb = gy.sum((0, 2, 3)) if nb else None
    return gx, gw, gb, None, None


def _apply_batched(fn: type[Function], x: Tensor, *args: Any) -> Tensor:
    """Run a batch-only conv Function; unbatched (C, H, W) input gets a batch of one."""
    if x.ndim == 3:
        return fn.apply(x.unsqueeze(0), *args).squeeze(0)
    return fn.apply(x, *args)


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


def _shape(t: Any) -> tuple:
    return tuple(t.shape)


_LAYOUTS = {1: ("(C, L)", "(N, C, L)"), 2: ("(C, H, W)", "(N, C, H, W)")}


def _check_operands(
    op: str, input: Any, weight: Any, bias: Any, groups: Any, dims: int = 2
) -> None:
    """Types, ranks (``dims`` spatial dims), dtypes and groups of a convolution's operands."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise InvalidType(
            f"{op}: input and weight must be tensors, got {type(input).__name__} "
            f"and {type(weight).__name__}"
        )
    if input.ndim not in (dims + 1, dims + 2):
        one, batch = _LAYOUTS[dims]
        raise RuntimeError(
            f"{op}: expected a {dims + 1}-D {one} or {dims + 2}-D {batch} input, got shape "
            f"{_shape(input)}"
        )
    if weight.ndim != dims + 2:
        raise RuntimeError(f"{op}: expected a {dims + 2}-D weight, got shape {_shape(weight)}")
    ws = _shape(weight)
    if ws[0] == 0:
        raise InvalidValue(
            f"{op}: expected weight to be at least 1 at dimension 0, but got weight of size "
            f"{list(ws)}"
        )
    if 0 in ws[2:]:
        raise InvalidValue(
            f"{op}: kernel size should be greater than zero, but got weight of size {list(ws)}"
        )
    for name, t in (("input", input), ("weight", weight)):
        if t.array.dtype.kind != "f":
            raise RuntimeError(f"{op}: expected a floating-point {name}, got {t.dtype}")
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise InvalidValue(f"{op}: groups must be a positive int, got {groups!r}")
    if bias is not None and not isinstance(bias, Tensor):
        raise InvalidType(f"{op}: bias must be a tensor or None, got {type(bias).__name__}")
    same_dtype(op, "input weight bias", input, weight, bias)


def check_channels(op: str, weight: Tensor, bias: Any, ishape: tuple, c: int, groups: int) -> None:
    """A convolution's channel counts: weight (O, C/groups, *k) against an input of ``c``
    channels (shape ``ishape``) and ``groups``, and the bias (O,)."""
    o, cg = _shape(weight)[:2]
    if o % groups:
        raise RuntimeError(
            f"{op}: weight {_shape(weight)} has {o} output channels, which is "
            f"not divisible by groups={groups}"
        )
    if c != cg * groups:
        raise RuntimeError(
            f"{op}: expected input with {cg * groups} channels (weight "
            f"{_shape(weight)}, groups={groups}), got {ishape}"
        )
    if bias is not None and _shape(bias) != (o,):
        raise RuntimeError(
            f"{op}: bias of shape {_shape(bias)} does not match {o} output "
            f"channels (weight {_shape(weight)})"
        )


@autocasts("conv2d")
def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation over an input of several planes, as ``torch.nn.functional.conv2d``.

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W).
        weight: (C_out, C_in / groups, kH, kW).
        bias: optional (C_out,).
        stride: int or (sH, sW). Default: 1.
        padding: int, (pH, pW), ``'valid'`` (no padding) or ``'same'`` (output as large as
            the input; stride 1 only). Default: 0.
        dilation: spacing between kernel elements, int or pair. Default: 1.
        groups: split input and output channels into this many blocked groups. Default: 1.

    Shape:
        Output (N, C_out, H_out, W_out) with
        ``H_out = (H + 2 * pH - dH * (kH - 1) - 1) // sH + 1`` (W alike).
    """
    op = "conv2d"
    _check_operands(op, input, weight, bias, groups)
    groups = int(groups)
    sh, sw = _pair(stride, "stride", op, 1)
    dh, dw = _pair(dilation, "dilation", op, 1)
    kh, kw = _shape(weight)[2:]
    ishape = _shape(input)
    c, h, w = ishape[-3:]
    check_channels(op, weight, bias, ishape, c, groups)
    if isinstance(padding, str):
        if padding == "valid":
            pt = pb = pl = pr = 0
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise InvalidValue(
                    f"{op}: padding='same' is not supported for strided "
                    f"convolutions (stride={(sh, sw)})"
                )
            th, tw = dh * (kh - 1), dw * (kw - 1)
            pt, pl = th // 2, tw // 2
            pb, pr = th - pt, tw - pl
        else:
            raise InvalidValue(
                f"{op}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
            )
    else:
        pt, pl = _pair(padding, "padding", op, 0)
        pb, pr = pt, pl
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if eh > h + pt + pb or ew > w + pl + pr:
        raise RuntimeError(
            f"{op}: kernel ({kh}, {kw}) (dilated size ({eh}, {ew})) is larger than the padded "
            f"input ({h + pt + pb}, {w + pl + pr}) (input {ishape}, padding "
            f"({pt}, {pl}))"
        )
    oh = (h + pt + pb - eh) // sh + 1
    ow = (w + pl + pr - ew) // sw + 1
    geom = Geometry(kh, kw, sh, sw, dh, dw, pt, pl, h, w, oh, ow)
    return _apply_batched(Conv2d, input, weight, bias, geom, groups)


@autocasts("conv_transpose2d")
def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """2-D transposed convolution ("deconvolution"), as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`conv2d` with the same weight: it maps conv2d's output shape back
    to its input shape.

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W).
        weight: (C_in, C_out / groups, kH, kW).
        bias: optional (C_out,).
        stride: int or pair. Default: 1.
        padding: ``dilation * (k - 1) - padding`` zeros pad both sides of the input, int or
            pair. Default: 0.
        output_padding: extra rows/columns added at the bottom/right of the output; smaller
            than stride or dilation. Default: 0.
        groups: blocked connections from input to output channels. Default: 1.
        dilation: spacing between kernel elements. Default: 1.

    Shape:
        Output (N, C_out, H_out, W_out) with
        ``H_out = (H - 1) * sH - 2 * pH + dH * (kH - 1) + output_padding + 1``.
    """
    op = "conv_transpose2d"
    _check_operands(op, input, weight, bias, groups)
    groups = int(groups)
    sh, sw = _pair(stride, "stride", op, 1)
    dh, dw = _pair(dilation, "dilation", op, 1)
    ph, pw = _pair(padding, "padding", op, 0)
    oph, opw = _pair(output_padding, "output_padding", op, 0)
    cin, cog, kh, kw = _shape(weight)
    ishape = _shape(input)
    c, h, w = ishape[-3:]
    if cin % groups:
        raise RuntimeError(
            f"{op}: weight {_shape(weight)} has {cin} input channels, which is "
            f"not divisible by groups={groups}"
        )
    if c != cin:
        raise RuntimeError(
            f"{op}: expected input with {cin} channels (weight "
            f"{_shape(weight)}, groups={groups}), got {ishape}"
        )
    cout = cog * groups
    if bias is not None and _shape(bias) != (cout,):
        raise RuntimeError(
            f"{op}: bias of shape {_shape(bias)} does not match {cout} output "
            f"channels (weight {_shape(weight)}, groups={groups})"
        )
    if (oph >= sh and oph >= dh) or (opw >= sw and opw >= dw):
        raise InvalidValue(
            f"{op}: output_padding {(oph, opw)} must be smaller than either "
            f"stride {(sh, sw)} or dilation {(dh, dw)}"
        )
    hout = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wout = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if hout < 1 or wout < 1:
        raise RuntimeError(
            f"{op}: output size ({hout}, {wout}) is too small (input {ishape}, "
            f"kernel ({kh}, {kw}), stride {(sh, sw)}, padding {(ph, pw)})"
        )
    # the convolution this op is the adjoint of: input (hout, wout) -> output (h, w)
    geom = Geometry(kh, kw, sh, sw, dh, dw, ph, pw, hout, wout, h, w)
    return _apply_batched(ConvTranspose2d, input, weight, bias, geom, groups)


# ------------------------------------------------------------------ 1-D forms
# A 1-D convolution is the 2-D one over a plane of height 1: the input (N, C, L) becomes
# (N, C, 1, L) and the weight (O, C/g, K) becomes (O, C/g, 1, K) (views, no copies), so the
# same kernels, threads and GPU paths serve both, and the reshapes carry the gradients back.


def _single(v: Any, name: str, op: str, minimum: int) -> int:
    if isinstance(v, tuple | list) and len(v) == 1:
        v = v[0]
    if not isinstance(v, int | np.integer) or isinstance(v, bool):
        raise RuntimeError(
            f"{op}: expected {name} to be a single integer value or a list of 1 values to "
            f"match the convolution dimensions, but got {name}={v!r}"
        )
    if v < minimum:
        raise InvalidValue(f"{op}: {name} must be >= {minimum}, got {int(v)}")
    return int(v)


def _check_1d(
    op: str, input: Any, weight: Any, bias: Any, groups: Any, transposed: bool = False
) -> None:
    """Checks in 1-D terms (shapes as the caller passed them), before the 2-D op runs."""
    _check_operands(op, input, weight, bias, groups, dims=1)
    ws, ishape = _shape(weight), _shape(input)
    if transposed:  # weight (C_in, C_out / groups, K)
        cin, cout, split = ws[0], ws[1] * groups, ws[0]
    else:  # weight (C_out, C_in / groups, K)
        cin, cout, split = ws[1] * groups, ws[0], ws[0]
    if split % groups:
        raise RuntimeError(
            f"{op}: weight {ws} has {split} {'input' if transposed else 'output'} channels, "
            f"which is not divisible by groups={groups}"
        )
    if ishape[-2] != cin:
        raise RuntimeError(
            f"{op}: expected input with {cin} channels (weight {ws}, groups={groups}), got {ishape}"
        )
    if bias is not None and _shape(bias) != (cout,):
        raise RuntimeError(
            f"{op}: bias of shape {_shape(bias)} does not match {cout} output channels "
            f"(weight {ws}, groups={groups})"
        )


@autocasts("conv1d")
def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation over an input of several channels, as
    ``torch.nn.functional.conv1d`` (the 2-D op on a plane of height 1).

    Args:
        input: (N, C_in, L) or unbatched (C_in, L).
        weight: (C_out, C_in / groups, K).
        bias: optional (C_out,).
        stride: int or 1-tuple. Default: 1.
        padding: int, 1-tuple, ``'valid'`` (no padding) or ``'same'`` (output as long as
            the input; stride 1 only). Default: 0.
        dilation: spacing between kernel elements, int or 1-tuple. Default: 1.
        groups: split input and output channels into this many blocked groups. Default: 1.

    Shape:
        Output (N, C_out, L_out) with ``L_out = (L + 2 * p - d * (K - 1) - 1) // s + 1``.

    Example::

        >>> F.conv1d(dl.randn(8, 3, 100), dl.randn(16, 3, 5), padding=2).shape
        (8, 16, 100)
    """
    op = "conv1d"
    _check_1d(op, input, weight, bias, groups)
    s = _single(stride, "stride", op, 1)
    d = _single(dilation, "dilation", op, 1)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise RuntimeError(f"{op}: invalid padding string {padding!r}; use 'same' or 'valid'")
        if padding == "same" and s != 1:
            raise RuntimeError(
                f"{op}: padding='same' is not supported for strided convolutions (stride={s})"
            )
        pad2: Any = padding
    else:
        pad2 = (0, _single(padding, "padding", op, 0))
    k, n = _shape(weight)[-1], _shape(input)[-1]
    total = n + (0 if isinstance(pad2, str) else 2 * pad2[1])
    if pad2 != "same" and d * (k - 1) + 1 > total:
        raise RuntimeError(
            f"{op}: kernel size {k} (dilated size {d * (k - 1) + 1}) is larger than the "
            f"padded input length {total} (input {_shape(input)})"
        )
    y = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s), pad2, (1, d), groups)
    return y.squeeze(-2)


@autocasts("conv_transpose1d")
def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d`` (the 2-D op
    on a plane of height 1): the adjoint of :func:`conv1d` with the same weight.

    Args:
        input: (N, C_in, L) or unbatched (C_in, L).
        weight: (C_in, C_out / groups, K).
        bias: optional (C_out,).
        stride: int or 1-tuple. Default: 1.
        padding: ``dilation * (K - 1) - padding`` zeros pad both ends of the input.
            Default: 0.
        output_padding: extra length added at the end of the output; smaller than stride
            or dilation. Default: 0.
        groups: blocked connections from input to output channels. Default: 1.
        dilation: spacing between kernel elements. Default: 1.

    Shape:
        Output (N, C_out, L_out) with
        ``L_out = (L - 1) * s - 2 * p + d * (K - 1) + output_padding + 1``.
    """
    op = "conv_transpose1d"
    if isinstance(padding, str):
        raise InvalidType(f"{op}: padding must be an int or a 1-tuple, not a string ({padding!r})")
    _check_1d(op, input, weight, bias, groups, transposed=True)
    s = _single(stride, "stride", op, 1)
    d = _single(dilation, "dilation", op, 1)
    p = _single(padding, "padding", op, 0)
    op_ = _single(output_padding, "output_padding", op, 0)
    if op_ >= s and op_ >= d:
        raise InvalidValue(
            f"{op}: output_padding {op_} must be smaller than either stride {s} or dilation {d}"
        )
    k, n = _shape(weight)[-1], _shape(input)[-1]
    out = (n - 1) * s - 2 * p + d * (k - 1) + op_ + 1
    if out < 1:
        raise RuntimeError(
            f"{op}: output length {out} is too small (input {_shape(input)}, kernel {k}, "
            f"stride {s}, padding {p}, dilation {d})"
        )
    y = conv_transpose2d(
        input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s), (0, p), (0, op_), groups, (1, d)
    )
    return y.squeeze(-2)
