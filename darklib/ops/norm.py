"""Normalisation ops: batch_norm, layer_norm, group_norm.

Each is one fused Function: the forward computes the statistics and the affine output in a
few whole-array passes, the backward is the closed-form gradient (no chain of tiny ops).
Channel sums go through ``einsum`` so that sums of products need no temporary array.
Statistics are those of PyTorch: the biased variance normalises, the unbiased one feeds
batch norm's running variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, higher_order
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.kernels import fused
from darklib.kernels import parallel as par
from darklib.tensor import Tensor

# ------------------------------------------------------------------ helpers


def _as3(a: Any) -> Any:
    """(N, C, *spatial) -> (N, C, L): channels stay on axis 1, space is flattened."""
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def _chan_sum(a3: Any) -> Any:
    return a3.sum(axis=(0, 2))


def _chan_dot(xp: Any, a3: Any, b3: Any) -> Any:
    """Per-channel sum of a * b without materialising the product."""
    return xp.einsum("ncl,ncl->c", a3, b3)


def _row_mean(xp: Any, a: Any) -> Any:
    """Means of the last axis, keeping it: a product with a vector of 1/k (BLAS: several
    times faster than NumPy's reduction over short rows)."""
    k = a.shape[-1]
    return (a @ xp.full(k, 1.0 / k, a.dtype))[..., None]


def _row_dot(xp: Any, a: Any, b: Any) -> Any:
    """Dot products of the rows of a and b over the last axis, keeping it."""
    dot = xp.vecdot(a, b) if hasattr(xp, "vecdot") else xp.einsum("...k,...k->...", a, b)
    return dot[..., None]


def _normalize_last(xp: Any, x: Any, eps: float, out: Any = None) -> tuple[Any, Any]:
    """Normalise over the last axis: returns (xhat, invstd) with invstd keeping that axis;
    ``xhat`` is written into ``out`` where given."""
    k = x.shape[-1]
    if k == 0:  # empty groups: nothing to normalise (and no "mean of empty slice")
        return x.copy(), xp.ones((*x.shape[:-1], 1), x.dtype)
    xhat = xp.subtract(x, _row_mean(xp, x), out=out)
    invstd = 1.0 / xp.sqrt(_row_dot(xp, xhat, xhat) / k + eps)
    xhat *= invstd
    return xhat, invstd


def _normalize_last_backward(xp: Any, dxhat: Any, xhat: Any, invstd: Any) -> Any:
    """d(loss)/dx for xhat = normalize_last(x), given d(loss)/d(xhat) (consumed in place)."""
    k = xhat.shape[-1]
    if k == 0:
        return dxhat
    a = _row_mean(xp, dxhat)
    b = _row_dot(xp, dxhat, xhat) / k
    dxhat -= a
    dxhat -= xhat * b
    dxhat *= invstd
    return dxhat


def _affine(xhat: Any, weight: Any, bias: Any, pshape: tuple) -> Any:
    """weight * xhat + bias in a new array (xhat is saved for backward, so never aliased)."""
    out = xhat * weight.reshape(pshape) if weight is not None else xhat.copy()
    if bias is not None:
        out += bias.reshape(pshape)
    return out


def _normalized_t(x: Tensor, dims: tuple, eps: float) -> Tensor:
    """(create_graph) ``x`` normalised over ``dims`` with differentiable ops."""
    xc = x - x.mean(dims, keepdim=True)
    return xc / ((xc * xc).mean(dims, keepdim=True) + eps).sqrt()


def _affine_t(y: Tensor, w: Tensor | None, b: Tensor | None, pshape: tuple) -> Tensor:
    """(create_graph) ``y * w + b`` with the parameters reshaped to ``pshape``."""
    if w is not None:
        y = y * w.reshape(pshape)
    return y if b is None else y + b.reshape(pshape)


def _params_like(ctx: Any, weight: Any, shape: tuple, like: Any) -> tuple:
    """(create_graph) values for a norm's weight and bias inputs: the saved weight, and
    zeros of ``shape`` standing for a bias that needs a gradient (a bias's value never
    enters a gradient; one that needs none is left out)."""
    bias = get_xp(like).zeros(shape, like.dtype) if ctx.needs_input_grad[2] else None
    return weight, bias


def _check_tensor(x: Any, op: str, what: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{op}: expected {what} to be a Tensor, got {type(x).__name__}")
    return x


def _check_float(x: Tensor, op: str) -> None:
    if x.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: expected a floating-point input, got {x.dtype}; convert it with .float()"
        )


def _check_param(p: Any, name: str, op: str, x: Tensor, size: tuple, what: str) -> Tensor | None:
    """Validate an optional per-channel (or per-feature) tensor against the input."""
    if p is None:
        return None
    p = _check_tensor(p, op, name)
    if tuple(p.shape) != size:
        raise RuntimeError(
            f"{op}: expected {name} of shape {size} for input {tuple(x.shape)} with {what}, "
            f"got {name} of shape {tuple(p.shape)}"
        )
    if type(p.array) is not type(x.array):
        raise RuntimeError(
            f"{op}: {name} is on {p.device} but input is on {x.device}; move it with .to()"
        )
    return p


def _check_dtypes(op: str, x: Tensor, **params: Tensor | None) -> bool:
    """Check the dtypes of a normalisation's parameters (and statistics) against its input.

    They must share the input's dtype, except that a float16 input may take float32 ones
    (all of them), as torch's mixed-precision norms: the op then computes in float32 and
    returns float16. Returns whether the input is float16 with float32 parameters."""
    given = {k: p for k, p in params.items() if p is not None}
    if not given:
        return False
    half = x.array.dtype == np.float16
    if half and all(p.array.dtype == np.float32 for p in given.values()):
        return True
    for name, p in given.items():
        if p.array.dtype != x.array.dtype:
            also = " (or float32 for all of them, a float16 input's mixed precision)"
            raise InvalidType(
                f"{op}: {name} is {p.dtype} but input is {x.dtype}; parameters and "
                f"statistics must have the input's dtype{also if half else ''}: convert "
                f"them with .to({x.dtype})"
            )
    return False


# ------------------------------------------------------------------ batch norm


class BatchNorm(Function):
    """Batch norm over axis 1 of (N, C, *); updates the running statistics in place.

    Saves only the input and per-channel vectors (as PyTorch does): the backward pass
    recomputes the centred input into the array that becomes the input's gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xp = get_xp(x)
        c = x.shape[1]
        bshape = (1, c) + (1,) * (x.ndim - 2)
        x3 = _as3(x)
        m = x3.shape[0] * x3.shape[2]
        ctx.bshape, ctx.training, ctx.m, ctx.eps = bshape, training, m, eps
        ctx.has_weight = weight is not None
        params = (weight, bias, running_mean, running_var)
        if training and fused.applies(x3, *(a for a in params if a is not None)):
            out3, mean, invstd, scale, ctx.mean64 = fused.batch_norm_forward(
                x3, weight, bias, running_mean, running_var, momentum, eps
            )
            ctx.save_for_backward(x, mean, invstd, scale)
            return out3.reshape(x.shape)
        if training:
            n = x3.shape[0]
            out = xp.empty(x.shape, x.dtype)  # C order: out3 below must be a view
            out3 = _as3(out)
            mean = sum(par.over_batch(xp, lambda s, e: _chan_sum(x3[s:e]), n, x.size)) / m
            if xp is np and x.dtype.itemsize < 8 and not np.isfinite(mean).all():
                # the sum overflowed (or the batch holds inf/NaN): a wider one, as torch's
                # accumulation (1e38 activations keep a finite mean, and inf/NaN stay;
                # the GPU skips the check, which would wait for the device)
                mean = (_chan_sum(x3.astype(xp.float64)) / m).astype(x.dtype)
            mean3 = mean.reshape(1, c, 1)

            def centred(s: int, e: int) -> tuple:
                o = xp.subtract(x3[s:e], mean3, out=out3[s:e])
                return _chan_sum(o), _chan_dot(xp, o, o)

            # corrected two-pass: the centred data's own mean r repairs the rounding error of
            # a float32 mean (large offsets), at the cost of one read, folded into the shift
            sums, squares = zip(*par.over_batch(xp, centred, n, x.size))
            r = sum(sums) / m
            var = sum(squares) / m - r * r
            mean += r
            invstd = 1.0 / xp.sqrt(var + eps)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1.0 - momentum
                running_var += (momentum * m / (m - 1)) * var
            scale = invstd if weight is None else invstd * weight
            shift = -r * scale
            if bias is not None:
                shift += bias
            scale3, shift3 = scale.reshape(1, c, 1), shift.reshape(1, c, 1)

            def affine(s: int, e: int) -> None:  # out holds x - (mean - r)
                out3[s:e] *= scale3
                out3[s:e] += shift3

            par.over_batch(xp, affine, n, x.size)
            ctx.save_for_backward(x, mean, invstd, scale)
            return out
        else:
            # eval: a fixed per-channel affine map built from the running statistics
            mean = running_mean.copy()  # copies: later updates must not change the gradient
            invstd = 1.0 / xp.sqrt(running_var + eps)
            scale = invstd if weight is None else invstd * weight
            out = x * scale.reshape(bshape)
            shift = -mean * scale
        if bias is not None:
            shift += bias
        out += shift.reshape(bshape)
        ctx.save_for_backward(x, mean, invstd, scale)
        return out

    @staticmethod
    def backward(ctx, g):
        nx, nw, nb = ctx.needs_input_grad[:3]
        xp = get_xp(g)
        bshape, m = ctx.bshape, ctx.m
        x, mean, invstd, scale = ctx.saved_tensors
        g3 = _as3(g)
        gx = gw = None
        if not ctx.training:
            sum_g = _chan_sum(g3)
            if nx:
                gx = g * scale.reshape(bshape)
            if nw:
                # sum(g * xhat) with xhat = (x - mean) * invstd, without a centred copy
                gw = (_chan_dot(xp, g3, _as3(x)) - mean * sum_g) * invstd
            return gx, gw, sum_g if nb else None, None, None, None, None, None
        if not (nx or nw):
            return gx, gw, _chan_sum(g3) if nb else None, None, None, None, None, None
        x3 = _as3(x)
        mean64 = getattr(ctx, "mean64", None)  # (set by the fused forward)
        if mean64 is not None and fused.applies(g3, x3):
            gx, gw, gb = fused.batch_norm_backward(g3, x3, mean64, invstd, scale, nx)
            gx = None if gx is None else gx.reshape(g.shape)
            return gx, gw if nw else None, gb if nb else None, None, None, None, None, None
        n, c = g3.shape[:2]
        xc = xp.empty(g3.shape, g.dtype)
        mean3 = mean.reshape(1, c, 1)

        def sums(s: int, e: int) -> tuple:
            d = xp.subtract(x3[s:e], mean3, out=xc[s:e])
            return _chan_sum(g3[s:e]), _chan_dot(xp, g3[s:e], d)

        parts = par.over_batch(xp, sums, n, g.size)
        sum_g = sum(p[0] for p in parts)
        sum_gxhat = sum(p[1] for p in parts) * invstd
        if nw:
            gw = sum_gxhat
        if nx:
            # dx = scale * (g - mean(g) - xhat * mean(g * xhat)), built in place in xc
            k1 = (invstd * sum_gxhat / m).reshape(1, c, 1)
            k2 = (sum_g / m).reshape(1, c, 1)
            k3 = (-scale).reshape(1, c, 1)

            def combine(s: int, e: int) -> None:
                d = xc[s:e]
                d *= k1
                d += k2
                d -= g3[s:e]
                d *= k3

            par.over_batch(xp, combine, n, g.size)
            gx = xc.reshape(g.shape)
        return gx, gw, sum_g if nb else None, None, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, mean, invstd, scale = ctx.saved_tensors
        bshape, training, eps = ctx.bshape, ctx.training, ctx.eps
        dims = (0, *range(2, x.ndim))
        w = scale / invstd if ctx.has_weight else None  # (forward keeps only the product)

        def forward(x, w, b):  # batch statistics in training, the saved ones in eval
            if training:
                y = _normalized_t(x, dims, eps)
            else:
                y = (x - Tensor._wrap(mean.reshape(bshape))) * Tensor._wrap(invstd.reshape(bshape))
            return _affine_t(y, w, b, bshape)

        params = _params_like(ctx, w, bshape[1:2], x)
        return higher_order.recompute(ctx, g, forward, (x, *params))


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    *,
    num_batches_tracked: Tensor | None = None,
) -> Tensor:
    """Batch normalisation over the channel axis (axis 1), as ``torch.nn.functional.batch_norm``.

    In training mode the batch statistics normalise the input and ``running_mean`` /
    ``running_var`` (buffers, when given) are updated in place with the biased mean and the
    unbiased variance: ``running = (1 - momentum) * running + momentum * batch``. In eval mode
    the running statistics normalise.

    Args:
        input: (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W).
        running_mean, running_var: (C,) buffers, or None to always use batch statistics.
        weight, bias: optional (C,) affine parameters.
        training: use batch statistics and update the running ones.
        momentum: update factor of the running statistics. ``None`` means a cumulative
            average, whose factor is ``1 / num_batches_tracked``: pass the (already
            incremented) ``num_batches_tracked`` tensor then, as ``nn.BatchNorm`` does. This
            function never changes ``num_batches_tracked``; the module increments it.
        eps: added to the variance for numerical stability.

    Shape:
        output: same as input.
    """
    op = "batch_norm"
    x = _check_tensor(input, op)
    _check_float(x, op)
    if x.ndim < 2:
        raise InvalidValue(
            f"{op}: expected an input of at least 2 dimensions (N, C, ...), got {tuple(x.shape)}"
        )
    c = x.shape[1]
    what = f"{c} channels"
    weight = _check_param(weight, "weight", op, x, (c,), what)
    bias = _check_param(bias, "bias", op, x, (c,), what)
    rm = _check_param(running_mean, "running_mean", op, x, (c,), what)
    rv = _check_param(running_var, "running_var", op, x, (c,), what)
    if (rm is None) != (rv is None):
        raise InvalidValue(
            f"{op}: running_mean and running_var must either both be None or neither be None"
        )
    mixed = _check_dtypes(op, x, weight=weight, bias=bias, running_mean=rm, running_var=rv)
    for name, buf in (("running_mean", rm), ("running_var", rv)):
        if buf is not None and buf.requires_grad:
            raise RuntimeError(f"{op}: {name} is a buffer and must not require grad")
    if not training and (rm is None or rv is None):
        raise InvalidValue(
            f"{op}: running_mean and running_var must be given in evaluation mode "
            "(training=False); pass training=True to normalise with batch statistics"
        )
    factor = 0.0
    if training and x.array.size == 0:
        # an empty batch, as torch: an empty result, zero gradients, the statistics unchanged
        # zeros of shape (C,) from the (empty) input itself: on its device, in its dtype
        if mixed:
            x, weight, bias = _in_float32(x, weight, bias)
        zero = x.array.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
        out = BatchNorm.apply(x, weight, bias, zero, zero + 1, False, 0.0, float(eps))
        return out.half() if mixed else out
    if training:
        m = x.array.size // c if c else 0
        if m <= 1:
            raise InvalidValue(
                f"{op}: expected more than 1 value per channel when training, got input "
                f"{tuple(x.shape)}"
            )
        if momentum is None:
            if rm is not None or rv is not None:
                if num_batches_tracked is None:
                    raise InvalidValue(
                        f"{op}: momentum=None (cumulative moving average) needs "
                        "num_batches_tracked=<tensor>, the count of batches seen including "
                        "this one"
                    )
                count = float(num_batches_tracked.item())
                factor = 1.0 / count if count > 0 else 1.0
        else:
            factor = float(momentum)
    half = x.array.dtype == np.float16
    stats = [None if b is None else b.array for b in (rm, rv)]
    if half:  # float16 statistics overflow: in float32 (see _in_float32)
        x, weight, bias = _in_float32(x, weight, bias)
        if not mixed:  # (float32 statistics, torch's mixed precision, update in place)
            stats = [None if a is None else a.astype(np.float32) for a in stats]
    out = BatchNorm.apply(x, weight, bias, *stats, bool(training), factor, float(eps))
    if training:
        for buf, a in zip((rm, rv), stats):
            if buf is not None:
                if half and not mixed:
                    buf.array[...] = a
                buf._version += 1
    return out.half() if half else out


def _in_float32(*tensors: Tensor | None) -> list:
    """Float16 tensors as float32 ones (differentiable casts) for a normalisation: its sums
    and element counts overflow float16 (a count of 73,728 is inf), so, as torch's kernels
    accumulate in float, darklib normalises in float32 and rounds the result to float16."""
    return [None if t is None else t.float() for t in tensors]


# ------------------------------------------------------------------ layer norm


# LayerNorm walks its rows in blocks of about this many values (1 MB of float32) on the
# CPU, split over darklib's threads: each block's passes (centring, variance, scaling, the
# affine map; and backward's) then run in cache instead of over the whole array in memory.
# With the row means as BLAS products and the variances as vecdot, a (4096, 768) forward
# and backward went from 14.7 to 8.8 ms here, (4096, 256) from 4.2 to 2.7 ms (torch's
# fused kernels: 3.0 and 0.6 ms; bench/ops.py's row group g).
_LN_BLOCK_VALUES = 1 << 18


def _row_blocks(xp: Any, rows: int, d: int, body: Any) -> list:
    """``body(s, e)`` over blocks of rows (the GPU: all rows at once), results in order."""
    if xp is not np:
        return [body(0, rows)]
    return par.map_reduce(body, rows, rows * d, max(1, _LN_BLOCK_VALUES // max(1, d)))


class LayerNorm(Function):
    """Normalisation over the trailing ``k`` axes, with an elementwise affine map."""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        xp = get_xp(x)
        d = math.prod(x.shape[x.ndim - k :])
        rows = math.prod(x.shape[: x.ndim - k])
        x2 = x.reshape(rows, d)  # explicit: d may be 0
        xhat = xp.empty_like(x2)
        invstd = xp.empty((rows, 1), x2.dtype)
        out = xp.empty(x2.shape, xp.result_type(x2, *(p for p in (weight, bias) if p is not None)))

        def body(s: int, e: int) -> None:  # (into the outputs: the block stays in cache)
            xh, invstd[s:e] = _normalize_last(xp, x2[s:e], eps, out=xhat[s:e])
            o = out[s:e]
            if weight is not None:
                xp.multiply(xh, weight.reshape(-1), out=o)
            else:
                o[...] = xh
            if bias is not None:
                o += bias.reshape(-1)

        _row_blocks(xp, rows, d, body)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.shape, ctx.k, ctx.eps = x.shape, k, eps
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        nx, nw, nb = ctx.needs_input_grad[:3]
        xp = get_xp(g)
        xhat, invstd, weight = ctx.saved_tensors
        rows, d = xhat.shape
        g2 = g.reshape(xhat.shape)
        gx = xp.empty(xhat.shape, xp.result_type(g2, xhat)) if nx else None

        def body(s: int, e: int) -> tuple:
            gs, xs = g2[s:e], xhat[s:e]
            gw_part = xp.einsum("rd,rd->d", gs, xs) if nw else None
            gb_part = gs.sum(axis=0) if nb else None
            if nx:
                dxhat = gs * weight.reshape(-1) if weight is not None else gs.copy()
                gx[s:e] = _normalize_last_backward(xp, dxhat, xs, invstd[s:e])
            return gw_part, gb_part

        parts = _row_blocks(xp, rows, d, body)
        pshape = ctx.shape[len(ctx.shape) - ctx.k :]
        gw = sum(p[0] for p in parts[1:]) + parts[0][0] if nw else None
        gb = sum(p[1] for p in parts[1:]) + parts[0][1] if nb else None
        return (
            None if gx is None else gx.reshape(ctx.shape),
            None if gw is None else gw.reshape(pshape),
            None if gb is None else gb.reshape(pshape),
            None,
            None,
        )

    @staticmethod
    def backward_graph(ctx, g):
        xhat, invstd, weight = ctx.saved_tensors
        dims = tuple(range(len(ctx.shape) - ctx.k, len(ctx.shape)))
        pshape = ctx.shape[len(ctx.shape) - ctx.k :]

        def forward(x, w, b):
            return _affine_t(_normalized_t(x, dims, ctx.eps), w, b, pshape)

        # x - mean stands for x: the op, and so each of its derivatives, ignores the mean
        xc = (xhat / invstd).reshape(ctx.shape)
        params = _params_like(ctx, weight, pshape, xhat)
        return higher_order.recompute(ctx, g, forward, (xc, *params))


@autocasts("layer_norm")
def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalisation over the trailing ``normalized_shape`` dimensions.

    Args:
        input: (*, *normalized_shape).
        normalized_shape: the trailing shape to normalise over (an int for one axis).
        weight, bias: optional tensors of shape ``normalized_shape``.
        eps: added to the variance for numerical stability.

    Shape:
        output: same as input.
    """
    op = "layer_norm"
    x = _check_tensor(input, op)
    _check_float(x, op)
    ns = (
        (int(normalized_shape),)
        if isinstance(normalized_shape, int)
        else tuple(int(n) for n in normalized_shape)
    )
    k = len(ns)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k :]) != ns:
        raise RuntimeError(
            f"{op}: input {tuple(x.shape)} does not end with normalized_shape {ns}; expected "
            f"an input of shape (*, {', '.join(map(str, ns))})"
        )
    what = f"normalized_shape {ns}"
    weight = _check_param(weight, "weight", op, x, ns, what)
    bias = _check_param(bias, "bias", op, x, ns, what)
    _check_dtypes(op, x, weight=weight, bias=bias)
    if x.array.dtype == np.float16:
        return LayerNorm.apply(*_in_float32(x, weight, bias), k, float(eps)).half()
    return LayerNorm.apply(x, weight, bias, k, float(eps))


# ------------------------------------------------------------------ group norm


class GroupNorm(Function):
    """Normalisation over groups of channels (and all positions) per sample."""

    # (on the CPU both directions walk the batch in blocks of samples over darklib's
    # threads, as LayerNorm walks its rows: each block's passes stay in cache)

    @staticmethod
    def forward(ctx, x, weight, bias, groups, eps):
        xp = get_xp(x)
        n, c = x.shape[0], x.shape[1]
        bshape = (1, c) + (1,) * (x.ndim - 2)
        per = math.prod(x.shape[1:])
        xg = x.reshape(n, groups, per // groups)
        xhat = xp.empty(xg.shape, x.dtype)
        invstd = xp.empty((n, groups, 1), x.dtype)
        out = xp.empty(x.shape, xp.result_type(x, *(p for p in (weight, bias) if p is not None)))

        def body(s: int, e: int) -> None:
            xh, invstd[s:e] = _normalize_last(xp, xg[s:e], eps, out=xhat[s:e])
            out[s:e] = _affine(xh.reshape((e - s, *x.shape[1:])), weight, bias, bshape)

        _row_blocks(xp, n, per, body)
        ctx.save_for_backward(xhat.reshape(x.shape), invstd, weight)
        ctx.groups, ctx.bshape, ctx.eps = groups, bshape, eps
        return out

    @staticmethod
    def backward(ctx, g):
        nx, nw, nb = ctx.needs_input_grad[:3]
        xp = get_xp(g)
        xhat, invstd, weight = ctx.saved_tensors
        n = xhat.shape[0]
        per = math.prod(xhat.shape[1:])
        gx = xp.empty(xhat.shape, xp.result_type(g, xhat)) if nx else None

        def body(s: int, e: int) -> tuple:
            gs, xs = g[s:e], xhat[s:e]
            g3 = _as3(gs)
            gw_part = _chan_dot(xp, g3, _as3(xs)) if nw else None
            gb_part = _chan_sum(g3) if nb else None
            if nx:
                gshape = (e - s, ctx.groups, per // ctx.groups)
                dxhat = gs * weight.reshape(ctx.bshape) if weight is not None else gs.copy()
                gx[s:e] = _normalize_last_backward(
                    xp, dxhat.reshape(gshape), xs.reshape(gshape), invstd[s:e]
                ).reshape(xs.shape)
            return gw_part, gb_part

        parts = _row_blocks(xp, n, per, body)
        gw = sum(p[0] for p in parts[1:]) + parts[0][0] if nw else None
        gb = sum(p[1] for p in parts[1:]) + parts[0][1] if nb else None
        return gx, gw, gb, None, None

    @staticmethod
    def backward_graph(ctx, g):
        xhat, invstd, weight = ctx.saved_tensors
        n, groups = xhat.shape[0], ctx.groups
        gshape = (n, groups, math.prod(xhat.shape[1:]) // groups)

        def forward(x, w, b):
            y = _normalized_t(x.reshape(gshape), (2,), ctx.eps).reshape(xhat.shape)
            return _affine_t(y, w, b, ctx.bshape)

        # x - (its group's mean) stands for x: the op ignores each group's mean
        xc = (xhat.reshape(gshape) / invstd).reshape(xhat.shape)
        params = _params_like(ctx, weight, ctx.bshape[1:2], xhat)
        return higher_order.recompute(ctx, g, forward, (xc, *params))


@autocasts("group_norm")
def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalisation: channels split into ``num_groups`` groups, each normalised per sample.

    Args:
        input: (N, C, *) with C divisible by ``num_groups``.
        num_groups: number of channel groups.
        weight, bias: optional (C,) per-channel affine parameters.
        eps: added to the variance for numerical stability.

    Shape:
        output: same as input.
    """
    op = "group_norm"
    x = _check_tensor(input, op)
    _check_float(x, op)
    if x.ndim < 2:
        raise InvalidValue(
            f"{op}: expected an input of at least 2 dimensions (N, C, ...), got {tuple(x.shape)}"
        )
    c = x.shape[1]
    g = int(num_groups)
    if g <= 0 or c % g:
        raise InvalidValue(
            f"{op}: num_groups={num_groups} must be positive and divide the {c} channels of "
            f"input {tuple(x.shape)}"
        )
    if x.shape[0] * (c // g) * math.prod(x.shape[2:]) == 1:  # (torch's check)
        raise InvalidValue(
            f"{op}: expected more than 1 value per group, got input {tuple(x.shape)} with "
            f"num_groups={g}"
        )
    what = f"{c} channels"
    weight = _check_param(weight, "weight", op, x, (c,), what)
    bias = _check_param(bias, "bias", op, x, (c,), what)
    _check_dtypes(op, x, weight=weight, bias=bias)
    if x.array.dtype == np.float16:
        return GroupNorm.apply(*_in_float32(x, weight, bias), g, float(eps)).half()
    return GroupNorm.apply(x, weight, bias, g, float(eps))


# ------------------------------------------------------------------ local response norm


def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Local response normalisation over channels, as
    ``torch.nn.functional.local_response_norm``:
    ``x / (k + alpha * mean_{c' in window(c)} x[c'] ** 2) ** beta``, the window being the
    ``size`` channels from ``c - size // 2`` to ``c + (size - 1) // 2``, zero outside the
    input (the mean always divides by ``size``).

    Args:
        input: (N, C, *), at least 3-D.
        size: the number of neighbouring channels in each window.
        alpha, beta, k: the scale, exponent and additive constant.

    Built from differentiable ops (a zero-padded ``avg_pool2d`` over the channel axis of
    the squares), so its gradients, higher-order ones included, follow.
    """
    from darklib.ops.pool import avg_pool2d
    from darklib.ops.shape import pad

    op = "local_response_norm"
    x = _check_tensor(input, op)
    if x.ndim < 3:
        raise InvalidValue(
            f"{op}: expected a 3-D or higher (N, C, *) input, got {x.ndim} dimensions "
            f"{tuple(x.shape)}"
        )
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise InvalidValue(f"{op}: size must be a positive int, got {size!r}")
    _check_float(x, op)
    if x.numel() == 0:
        return x
    n, c = int(x.shape[0]), int(x.shape[1])
    sq = (x * x).reshape(n, 1, c, -1)
    sq = pad(sq, (0, 0, size // 2, (size - 1) // 2))
    mean = avg_pool2d(sq, (int(size), 1), 1).reshape(tuple(x.shape))
    return x / (mean * alpha + k) ** beta
