"""Loss functions, each one fused Function with PyTorch's semantics and defaults.

cross_entropy is log-softmax + NLL + label smoothing + class weights + ignore_index in one
forward pass (max-subtracted, so large logits do not overflow) and one backward pass
(``softmax - target``, scaled). Where PyTorch only warns about input and target shapes that
differ and then broadcasts (mse_loss, l1_loss, smooth_l1_loss, huber_loss, bce), we raise:
that silent broadcast is the classic bug of a regression model trained on (N, 1) outputs
against (N,) targets.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function, higher_order
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.grad_mode import is_grad_enabled
from darklib.kernels import fused
from darklib.ops import elementwise as _E
from darklib.ops._promote import promote
from darklib.ops.reduction import softmax_grad
from darklib.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")

# ------------------------------------------------------------------ shared helpers


def _tensor(x: Any, op: str, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{op}: expected {name} to be a Tensor, got {type(x).__name__}")
    return x


def _reduction(
    op: str, size_average: Any, reduce: Any, reduction: str, allowed: tuple = _REDUCTIONS
) -> str:
    """The reduction to use, honouring PyTorch's deprecated size_average/reduce flags."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(
            f"{op}: size_average and reduce are deprecated, use reduction='{reduction}' instead",
            stacklevel=3,
        )
    if reduction not in allowed:
        raise InvalidValue(
            f"{op}: reduction must be one of {', '.join(repr(r) for r in allowed)}, "
            f"got {reduction!r}"
        )
    return reduction


def _reduce(xp: Any, loss: Any, reduction: str, denom: Any = None) -> Any:
    """Reduce an elementwise loss; ``denom`` replaces the element count for 'mean'."""
    if reduction == "none":
        return loss
    # float16 sums and counts in float32, as torch's accumulation (70,000 elements is an
    # inf count in float16: the mean was NaN or 0)
    wide = loss.dtype == np.float16
    total = loss.sum(dtype=np.float32) if wide else loss.sum()
    if reduction == "sum":
        return xp.asarray(total).astype(loss.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / (loss.size if denom is None else denom)
        if denom is not None:  # no weight at all: NaN, as torch (label smoothing gave inf)
            mean = xp.where(xp.asarray(denom) == 0, np.nan, mean)  # (CuPy: no bare bool)
    return xp.asarray(mean).astype(loss.dtype, copy=False)


def _grad_scale(g: Any, reduction: str, size: int, denom: Any = None) -> Any:
    """Upstream gradient per element of the unreduced loss (broadcastable to it)."""
    if reduction != "mean":
        return g
    if g.dtype == np.float16:  # in float32: a float16 count above 65,504 is inf
        return _grad_scale(g.astype(np.float32), reduction, size, denom).astype(g.dtype)
    if denom is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / size
    # every target ignored (total weight 0): the loss is NaN but, as in PyTorch, the
    # gradient is zero (no device sync: the check stays on the array)
    empty = denom == 0
    return g / (denom + empty) * (denom != 0)  # a bool factor keeps the dtype of g


def _same_device(op: str, x: Tensor, other: Tensor | None, name: str) -> None:
    if other is not None and type(other.array) is not type(x.array):
        raise RuntimeError(
            f"{op}: {name} is on {other.device} but input is on {x.device}; move it with .to()"
        )


def _check_same_shape(op: str, x: Tensor, t: Tensor) -> None:
    if tuple(x.shape) != tuple(t.shape):
        raise InvalidValue(
            f"{op}: input {tuple(x.shape)} and target {tuple(t.shape)} have different shapes; "
            "make them equal (e.g. target.reshape(input.shape) or input.squeeze(-1)): "
            "broadcasting them would compute the wrong loss"
        )


def _float_pair(op: str, input: Any, target: Any) -> tuple[Tensor, Tensor]:
    x = _tensor(input, op)
    t = _tensor(target, op, "target")
    _same_device(op, x, t, "target")
    x, t = promote(x, t)
    if x.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: expected floating-point input and target, got {input.dtype} and "
            f"{target.dtype}; convert them with .float()"
        )
    return x, t


# ------------------------------------------------------------------ class-index targets


def _class_target(op: str, x: Tensor, target: Tensor, ignore_index: int) -> Any:
    """Validate integer class targets for input (N, C, *) or (C,); returns them as int64."""
    if target.array.dtype.kind not in "iu":
        raise InvalidType(
            f"{op}: expected target of class indices with an integer dtype, got {target.dtype}"
            f" of shape {tuple(target.shape)}; convert it with .long()"
        )
    xs, ts = tuple(x.shape), tuple(target.shape)
    expected = () if len(xs) == 1 else (xs[0], *xs[2:])
    if ts != expected and not (len(xs) == 1 and ts == (1,)):  # (torch takes (1,) there too)
        raise InvalidValue(
            f"{op}: expected target of shape {expected} for input {xs}, got target {ts}"
        )
    t = target.array.astype(np.int64, copy=False).reshape(expected)
    c = xs[0] if len(xs) == 1 else xs[1]
    if t.size:
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= c))
        if bool(bad.any()):
            first = int(t[bad].reshape(-1)[0])
            raise OutOfRange(
                f"{op}: target has class {first} but input has {c} classes (valid targets are "
                f"0..{c - 1}, or ignore_index={ignore_index})"
            )
    return t


def _class_weight(op: str, x: Tensor, weight: Any, c: int) -> Any:
    if weight is None:
        return None
    w = _tensor(weight, op, "weight")
    if tuple(w.shape) != (c,):
        raise InvalidValue(
            f"{op}: expected weight of shape ({c},) for input {tuple(x.shape)} with {c} "
            f"classes, got weight of shape {tuple(w.shape)}"
        )
    if w.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: expected a floating-point weight (of the input's dtype {x.dtype}), got "
            f"{w.dtype}; use weight.to({x.dtype})"
        )
    _same_device(op, x, w, "weight")
    return w.array.astype(x.array.dtype, copy=False)


def _constant(op: str, name: str, w: Any) -> None:
    """Refuse a weight that requires grad where the op has no gradient for it (torch
    refuses it too), instead of leaving its gradient silently empty."""
    if isinstance(w, Tensor) and w.requires_grad and is_grad_enabled():
        raise RuntimeError(
            f"{op}: not differentiable with respect to {name}, which requires grad; pass "
            f"{name}.detach() (torch refuses it too)"
        )


def _gather(xp: Any, a: Any, t: Any) -> Any:
    """a[n, t[n, ...], ...] for a of shape (N, C, *) and t of shape (N, *)."""
    return xp.take_along_axis(a, t[:, None], axis=1)[:, 0]


def _scatter_sub(xp: Any, grad: Any, t: Any, vals: Any) -> None:
    """grad[n, t[n, ...], ...] -= vals[n, ...] for grad of shape (N, C, *), in place."""
    n, c = grad.shape[:2]
    if n == 0 or c == 0:
        return
    if not grad.flags.c_contiguous:  # (from permuted logits) a flat view would be a copy
        dense = xp.ascontiguousarray(grad)
        _scatter_sub(xp, dense, t, vals)
        grad[...] = dense
        return
    l = grad.size // (n * c)
    flat = (xp.arange(n).reshape(n, 1) * c + t.reshape(n, l)) * l + xp.arange(l)
    g1 = grad.reshape(-1)
    g1[flat] -= vals.reshape(n, l)


def _class_inputs(
    op: str, input: Any, target: Any, weight: Any, what: str, hint: str = ""
) -> tuple[Tensor, Tensor, Any, bool]:
    """Checks shared by the class-index losses: a floating-point input (N, C, ...) or (C,)
    (``what`` and ``hint`` word the dtype error) and a target on its device. Returns input,
    target, the (C,) weight array or None, and unbatched."""
    x = _tensor(input, op)
    t = _tensor(target, op, "target")
    if x.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected floating-point {what}, got {x.dtype}{hint}")
    if x.ndim == 0:
        raise InvalidValue(f"{op}: expected input of shape (N, C, ...) or (C,), got a scalar")
    _same_device(op, x, t, "target")
    unbatched = x.ndim == 1
    w = _class_weight(op, x, weight, x.shape[0] if unbatched else x.shape[1])
    return x, t, w, unbatched


def _cross_entropy(ctx, xp, x, t, weight, ignore_index, smoothing) -> tuple:
    """Class-index cross-entropy's arrays (see :func:`fused.cross_entropy_forward`),
    label smoothing included (its total class weight goes to ``ctx.wsum``)."""
    c = x.shape[1]
    valid = t != ignore_index
    ts = xp.where(valid, t, 0)
    z = x - x.max(axis=1, keepdims=True)
    zt = _gather(xp, z, ts)
    zsum = None
    if smoothing:
        zsum = xp.einsum("nc...,c->n...", z, weight) if weight is not None else z.sum(axis=1)
    p = xp.exp(z, out=z)
    s = p.sum(axis=1)
    lse = xp.log(s)
    wt = weight[ts] * valid if weight is not None else valid.astype(x.dtype)
    loss = xp.where(valid, (lse - zt) * wt, 0)  # 0 for ignored targets, NaN logits or not
    if smoothing:
        wsum = weight.sum() if weight is not None else float(c)
        loss *= 1.0 - smoothing
        # -sum_c w_c log p_c = wsum * lse - sum_c w_c z_c
        smooth = xp.where(valid, lse * wsum - zsum, 0)
        loss += smooth * (smoothing / c)
        ctx.wsum = wsum
    p /= s[:, None]
    return loss, p, wt, ts, valid


class CrossEntropy(Function):
    """log_softmax + weighted NLL + label smoothing over axis 1, for class-index targets."""

    @staticmethod
    def forward(ctx, x, t, weight, ignore_index, reduction, smoothing, unbatched):
        xp = get_xp(x)
        if unbatched:
            x, t = x[None], t[None]
        c = x.shape[1]
        weights = () if weight is None else (weight,)
        ctx.fused = not smoothing and c > 0 and fused.applies(x, *weights)
        if ctx.fused:  # one kernel for the softmax, the loss and the weights
            loss, p, wt, ts, valid = fused.cross_entropy_forward(x, t, weight, ignore_index)
        else:
            loss, p, wt, ts, valid = _cross_entropy(ctx, xp, x, t, weight, ignore_index, smoothing)
        denom = wt.sum() if reduction == "mean" else None
        ctx.save_for_backward(p, ts, valid, wt, weight)
        ctx.denom, ctx.reduction, ctx.smoothing, ctx.unbatched = (
            denom,
            reduction,
            smoothing,
            unbatched,
        )
        out = _reduce(xp, loss, reduction, denom)
        return out[0] if unbatched and reduction == "none" else out

    @staticmethod
    def backward(ctx, g):
        if not ctx.needs_input_grad[0]:
            return (None,) * 7
        p, ts, valid, wt, weight = ctx.saved_tensors
        xp = get_xp(p)
        if ctx.unbatched and ctx.reduction == "none":
            g = g[None]
        if ctx.fused:
            grad = fused.cross_entropy_backward(p, ts, wt, g, ctx.reduction, ctx.denom)
            return (grad[0] if ctx.unbatched else grad), None, None, None, None, None, None
        gn = _grad_scale(g, ctx.reduction, 0, ctx.denom)
        eps = ctx.smoothing
        c = p.shape[1]
        coef_t = wt * gn
        if eps:
            coef_t *= 1.0 - eps
            coef_s = valid * gn * (eps / c)
            a = coef_t + coef_s * ctx.wsum
        else:
            a = coef_t
        grad = p * a[:, None]
        _scatter_sub(xp, grad, ts, coef_t)
        if eps:
            if weight is not None:
                wshape = (1, c) + (1,) * (p.ndim - 2)
                grad -= coef_s[:, None] * weight.reshape(wshape)
            else:
                grad -= coef_s[:, None]
        if ctx.unbatched:
            grad = grad[0]
        return grad, None, None, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        """(create_graph) the formula of ``backward`` on tensors: the probabilities as a
        function of the input (``_SavedSoftmax``), the rest constants times ``g``."""
        if not ctx.needs_input_grad[0]:
            return (None,) * 7
        p, ts, valid, wt, weight = ctx.saved_tensors
        xp = get_xp(p)
        if ctx.unbatched and ctx.reduction == "none":
            g = g.unsqueeze(0)
        gn = _grad_scale(g, ctx.reduction, 0, ctx.denom)
        eps, c = ctx.smoothing, p.shape[1]
        kept = (1, c) + (1,) * (p.ndim - 2)
        coef_t = gn * Tensor._wrap(wt * (1.0 - eps))
        a = coef_t
        if eps:
            coef_s = gn * Tensor._wrap(valid * (eps / c)).to(g.dtype)
            a = a + coef_s * ctx.wsum
        pt = _SavedSoftmax.apply(ctx.lift(p[0] if ctx.unbatched else p, 0), p, ctx.unbatched)
        onehot = xp.arange(c).reshape(kept) == ts[:, None]
        grad = pt * a.unsqueeze(1) - Tensor._wrap(onehot.astype(p.dtype)) * coef_t.unsqueeze(1)
        if eps:
            w = weight.reshape(kept) if weight is not None else xp.ones(kept, p.dtype)
            grad = grad - coef_s.unsqueeze(1) * Tensor._wrap(w)
        return (grad[0] if ctx.unbatched else grad), None, None, None, None, None, None


class _SavedSoftmax(Function):
    """softmax(x) over axis 1 where it was computed already (``p``): ``x`` links the graph,
    and the gradient is softmax's."""

    @staticmethod
    def forward(ctx, x, p, unbatched):
        ctx.save_for_backward(p)
        ctx.unbatched = unbatched
        return p

    @staticmethod
    def backward(ctx, g):
        (p,) = ctx.saved_tensors
        gp = softmax_grad(g, p, 1)
        return (gp[0] if ctx.unbatched else gp), None, None

    @staticmethod
    def backward_graph(ctx, g):  # (third-order gradients of cross_entropy)
        (p,) = ctx.saved_tensors
        pt = ctx.lift_output(p)
        gp = g * pt
        gp = gp - pt * gp.sum(1, keepdim=True)
        return (gp[0] if ctx.unbatched else gp), None, None


class CrossEntropyProb(Function):
    """Cross-entropy against class probabilities (target of the input's shape)."""

    @staticmethod
    def forward(ctx, x, q, weight, reduction, smoothing, unbatched):
        xp = get_xp(x)
        cax = 0 if unbatched else 1
        c = x.shape[cax]
        logp = x - x.max(axis=cax, keepdims=True)
        lse = xp.log(xp.exp(logp).sum(axis=cax, keepdims=True))
        logp -= lse
        qu = q * (1.0 - smoothing) + smoothing / c if smoothing else q  # unweighted
        qs = qu if weight is None else qu * _class_axis(weight, x.ndim, cax)
        loss = -(logp * qs).sum(axis=cax)
        ctx.save_for_backward(logp, qu, weight)
        ctx.reduction, ctx.smoothing, ctx.cax = reduction, smoothing, cax
        ctx.size = loss.size
        return _reduce(xp, loss, reduction)

    @staticmethod
    def backward(ctx, g):
        logp, qu, weight = ctx.saved_tensors
        xp = get_xp(logp)
        cax = ctx.cax
        gn = _grad_scale(g, ctx.reduction, ctx.size)
        if ctx.reduction == "none":
            gn = xp.expand_dims(gn, cax)
        nx, nq, nw = ctx.needs_input_grad[:3]
        wb = None if weight is None else _class_axis(weight, logp.ndim, cax)
        gx = gq = gw = None
        if nx:
            qs = qu if wb is None else qu * wb
            gx = xp.exp(logp)
            gx *= qs.sum(axis=cax, keepdims=True)
            gx -= qs
            gx *= gn
        if nq:
            gq = logp * (-(1.0 - ctx.smoothing) * gn)
            if wb is not None:
                gq *= wb
        if nw:  # d loss / d w_c = -sum over samples (and space) of g * qu_c * logp_c
            axes = tuple(i for i in range(logp.ndim) if i != cax)
            gw = -(logp * qu * gn).sum(axis=axes)
        return gx, gq, gw, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        logp, qu, weight = ctx.saved_tensors
        cax, eps, reduction = ctx.cax, ctx.smoothing, ctx.reduction
        c = logp.shape[cax]

        def forward(x, q, w):
            lp = x.log_softmax(cax)
            qs = q * (1.0 - eps) + eps / c if eps else q
            if w is not None:
                qs = qs * w.reshape((c,) + (1,) * (x.ndim - cax - 1))
            loss = -(lp * qs).sum(cax)
            return (
                loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()
            )

        # logp stands for x (log_softmax ignores a shift), and the target is recovered
        # from its smoothed form
        q = (qu - eps / c) / (1.0 - eps) if 0 < eps < 1 else qu
        return higher_order.recompute(ctx, g, forward, (logp, q, weight))


def _class_axis(weight: Any, ndim: int, cax: int) -> Any:
    """Per-class ``weight`` (C,) shaped to broadcast along the class axis ``cax``."""
    return weight.reshape((weight.shape[0],) + (1,) * (ndim - cax - 1))


@autocasts("cross_entropy")
def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities.

    Fused log-softmax + negative log-likelihood over the class axis (axis 1), stable for
    large logits. With class indices, ``reduction='mean'`` divides by the summed weights of
    the non-ignored targets (the count where there are no weights), as PyTorch does, for
    the label-smoothing term as well.

    Args:
        input: logits, (N, C), (C,) or (N, C, d1, ...).
        target: class indices, (N,), () or (N, d1, ...), integer; or class probabilities
            of the input's shape, floating point.
        weight: optional (C,) rescaling weight per class.
        ignore_index: target value that contributes neither loss nor gradient (class
            indices only).
        reduction: 'none' | 'mean' | 'sum'.
        label_smoothing: in [0, 1]; mixes the target with the uniform distribution.

    Shape:
        output: scalar, or the target's shape (without C) with ``reduction='none'``.
    """
    op = "cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise InvalidValue(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    x, t, w, unbatched = _class_inputs(op, input, target, weight, "logits", "; use .float()")
    if t.array.dtype.kind == "f" and tuple(t.shape) == tuple(x.shape):
        if ignore_index >= 0:
            raise InvalidValue(f"{op}: ignore_index is not supported for probability targets")
        x, t = _common_float(x, t)  # (float32 logits with float64 targets: float64)
        if w is not None:  # differentiable here, as in torch: the tensor, cast by an op
            w = _tensor(weight, op, "weight")
            w = w if w.array.dtype == x.array.dtype else w.to(x.dtype)
        return CrossEntropyProb.apply(x, t, w, reduction, float(label_smoothing), unbatched)
    _constant(op, "weight", weight)
    if t.array.dtype.kind == "f":
        raise InvalidType(
            f"{op}: target {tuple(t.shape)} of dtype {t.dtype} is neither class indices "
            f"(an integer tensor of shape {(x.shape[0], *x.shape[2:])}) nor class "
            f"probabilities (a float tensor of the input's shape {tuple(x.shape)})"
        )
    ti = _class_target(op, x, t, ignore_index)
    return CrossEntropy.apply(
        x, ti, w, int(ignore_index), reduction, float(label_smoothing), unbatched
    )


class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities (N, C, *) at class-index targets."""

    @staticmethod
    def forward(ctx, x, t, weight, ignore_index, reduction, unbatched):
        xp = get_xp(x)
        if unbatched:
            x, t = x[None], t[None]
        valid = t != ignore_index
        ts = xp.where(valid, t, 0)
        wt = weight[ts] * valid if weight is not None else valid.astype(x.dtype)
        # an ignored row (a masked position) may hold -inf or NaN: it gives 0, not 0 * inf
        loss = xp.where(valid, _gather(xp, x, ts) * -wt, 0).astype(x.dtype, copy=False)
        denom = wt.sum() if reduction == "mean" else None
        ctx.save_for_backward(ts, wt, valid)
        ctx.denom, ctx.reduction, ctx.unbatched, ctx.shape = denom, reduction, unbatched, x.shape
        ctx.dtype = x.dtype
        out = _reduce(xp, loss, reduction, denom)
        return out[0] if unbatched and reduction == "none" else out

    @staticmethod
    def backward(ctx, g):
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        ts, wt, _ = ctx.saved_tensors
        xp = get_xp(wt)
        if ctx.unbatched and ctx.reduction == "none":
            g = g[None]
        gn = _grad_scale(g, ctx.reduction, 0, ctx.denom)
        grad = xp.zeros(ctx.shape, dtype=ctx.dtype)
        _scatter_sub(xp, grad, ts, wt * gn)
        return (grad[0] if ctx.unbatched else grad), None, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        ts, wt, valid = ctx.saved_tensors
        reduction, denom, unbatched = ctx.reduction, ctx.denom, ctx.unbatched

        def nll(v):  # the loss is linear in the log-probabilities
            xp = get_xp(v)
            vb = v[None] if unbatched else v
            picked = xp.where(valid, _gather(xp, vb, ts) * -wt, 0).astype(v.dtype, copy=False)
            out = _reduce(xp, picked, reduction, denom)
            return out[0] if unbatched and reduction == "none" else out

        # (torch's nll_loss backward reads the input: a zero derivative, not "unused")
        return higher_order.linked(ctx, higher_order.linear_adjoints(ctx, g, {0: nll}), 0)


@autocasts("nll_loss")
def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood loss of log-probabilities (e.g. ``log_softmax`` outputs).

    Args:
        input: log-probabilities, (N, C), (C,) or (N, C, d1, ...).
        target: class indices, (N,), () or (N, d1, ...).
        weight: optional (C,) rescaling weight per class.
        ignore_index: target value that contributes neither loss nor gradient.
        reduction: 'none' | 'mean' (divided by the summed weights of the non-ignored
            targets) | 'sum'.

    Shape:
        output: scalar, or the target's shape with ``reduction='none'``.
    """
    op = "nll_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, t, w, unbatched = _class_inputs(op, input, target, weight, "log-probabilities")
    _constant(op, "weight", weight)
    ti = _class_target(op, x, t, ignore_index)
    return NLLLoss.apply(x, ti, w, int(ignore_index), reduction, unbatched)


# ------------------------------------------------------------------ regression losses


class PointwiseLoss(Function):
    """mse / l1 / smooth_l1 / huber of ``input - target``, optionally weighted, reduced."""

    @staticmethod
    def forward(ctx, x, y, weight, kind, reduction, param, weighted_mean):
        xp = get_xp(x)
        d = x - y
        if kind == "mse":
            loss = d * d
        elif kind == "l1":
            loss = xp.abs(d)
        else:
            ad = xp.abs(d)
            if param == 0:
                loss = ad
            else:
                small = ad < param
                if kind == "smooth_l1":
                    loss = xp.where(small, (0.5 / param) * d * d, ad - 0.5 * param)
                else:
                    loss = xp.where(small, 0.5 * d * d, param * (ad - 0.5 * param))
        denom = None
        raw = loss
        if weight is not None:
            loss = loss * weight
            if weighted_mean and reduction == "mean":
                denom = weight.sum()
        ctx.save_for_backward(d, weight, raw if ctx.needs_input_grad[2] else None)
        ctx.kind, ctx.reduction, ctx.param, ctx.denom = kind, reduction, param, denom
        out = _reduce(xp, loss, reduction, denom)
        ctx.out = out if denom is not None else None
        return out

    @staticmethod
    def backward(ctx, g):
        d, weight, raw = ctx.saved_tensors
        xp = get_xp(d)
        nx, ny, nw = ctx.needs_input_grad[:3]
        gn = _grad_scale(g, ctx.reduction, d.size, ctx.denom)
        gx = gy = gw = None
        if nx or ny:
            kind, param = ctx.kind, ctx.param
            if kind == "mse":
                dd = d * 2
            elif kind == "l1" or param == 0:
                dd = xp.sign(d)
            elif kind == "smooth_l1":
                dd = xp.where(xp.abs(d) < param, d * (1.0 / param), xp.sign(d))
            else:
                dd = xp.clip(d, -param, param)
            dd *= gn
            if weight is not None:
                dd *= weight
            gx = dd if nx else None
            gy = -dd if ny else None
        if nw:
            # a weighted mean also depends on the weights through its denominator
            gw = raw * gn if ctx.out is None else (raw - ctx.out) * gn
        return gx, gy, gw, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        """(create_graph) the loss rebuilt from differentiable ops on x - y (kept by
        forward, linked to both inputs by ``_Difference``) and the weight."""
        d, weight, _ = ctx.saved_tensors
        kind, param, reduction, denom = ctx.kind, ctx.param, ctx.reduction, ctx.denom

        def forward(x, y, w):  # (x and y only link the graph: d holds their difference)
            dt = _Difference.apply(x, y, d)
            if kind == "mse":
                raw = dt * dt
            elif kind == "l1" or param == 0:
                raw = dt.abs()
            else:
                small = Tensor._wrap(get_xp(d).abs(d) < param)
                if kind == "smooth_l1":
                    raw = _E.where(small, dt * dt * (0.5 / param), dt.abs() - 0.5 * param)
                else:
                    raw = _E.where(small, dt * dt * 0.5, (dt.abs() - 0.5 * param) * param)
            loss = raw if w is None else raw * w
            if reduction == "none":
                return loss
            if reduction == "sum":
                return loss.sum()
            return loss.sum() / (w.sum() if denom is not None else d.size)

        return higher_order.recompute(ctx, g, forward, (d, d, weight))


class _Difference(Function):
    """``a - b`` whose value was computed already (``d``): the inputs only link the graph."""

    @staticmethod
    def forward(ctx, a, b, d):
        return d

    @staticmethod
    def backward(ctx, g):
        return g, -g, None

    @staticmethod
    def backward_graph(ctx, g):
        return g, -g, None


def _elementwise_weight(
    op: str, x: Tensor, weight: Any, name: str = "weight", exact: bool = False
) -> Tensor | None:
    """Check a weight of the input's shape (``exact``) or broadcastable to it, on the
    input's device; cast it to the input's dtype."""
    if weight is None:
        return None
    w = _tensor(weight, op, name)
    ws, xs = tuple(w.shape), tuple(x.shape)
    if exact:
        if ws != xs:
            raise InvalidValue(f"{op}: {name} {ws} and input {xs} must have the same shape")
    else:
        try:
            shape = np.broadcast_shapes(ws, xs)
        except ValueError:
            shape = None
        if shape != xs:
            raise InvalidValue(f"{op}: {name} {ws} does not broadcast to input {xs}")
    _same_device(op, x, w, name)
    return w if w.array.dtype == x.array.dtype else w.to(x.dtype)


def _pointwise(
    op: str,
    kind: str,
    input: Any,
    target: Any,
    reduction: str,
    param: float,
    weight: Any,
    weighted_mean: bool,
) -> Tensor:
    x, t = _float_pair(op, input, target)
    _check_same_shape(op, x, t)
    weight = _elementwise_weight(op, x, weight, exact=True)
    return PointwiseLoss.apply(x, t, weight, kind, reduction, float(param), weighted_mean)


@autocasts("mse_loss")
def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error ``(input - target) ** 2``.

    Unlike PyTorch (which warns and broadcasts), input and target of different shapes raise.

    Args:
        input, target: tensors of the same shape.
        reduction: 'none' | 'mean' | 'sum'.
        weight: optional per-element weights of the input's shape; 'mean' then divides by
            their sum.
    """
    op = "mse_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    return _pointwise(op, "mse", input, target, reduction, 0.0, weight, True)


@autocasts("l1_loss")
def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error ``|input - target|``; shapes must match.

    Args:
        input, target: tensors of the same shape.
        reduction: 'none' | 'mean' | 'sum'.
        weight: optional per-element weights of the input's shape; 'mean' then divides by
            their sum.
    """
    op = "l1_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    return _pointwise(op, "l1", input, target, reduction, 0.0, weight, True)


@autocasts("smooth_l1_loss")
def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Smooth L1: ``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``.

    Args:
        input, target: tensors of the same shape.
        reduction: 'none' | 'mean' | 'sum'.
        beta: where the loss turns from quadratic to linear (0 gives the L1 loss).
    """
    op = "smooth_l1_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    if beta < 0:
        raise InvalidValue(f"{op}: beta must be non-negative, got {beta}")
    return _pointwise(op, "smooth_l1", input, target, reduction, beta, None, False)


@autocasts("huber_loss")
def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Huber loss: ``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``.

    Args:
        input, target: tensors of the same shape.
        reduction: 'none' | 'mean' | 'sum'.
        delta: where the loss turns from quadratic to linear; must be positive.
        weight: optional per-element weights of the input's shape ('mean' stays the mean
            over elements, as in PyTorch).
    """
    op = "huber_loss"
    reduction = _reduction(op, None, None, reduction)
    if delta <= 0:
        raise InvalidValue(f"{op}: delta must be positive, got {delta}")
    if (
        isinstance(input, Tensor)
        and isinstance(target, Tensor)
        and input.array.dtype.kind == target.array.dtype.kind == "f"
        and target.array.dtype != input.array.dtype
    ):
        target = target.to(input.array.dtype)  # torch's huber_loss keeps the input's dtype
    return _pointwise(op, "huber", input, target, reduction, delta, weight, False)


# ------------------------------------------------------------------ binary cross-entropy


def _common_float(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Input and target in the wider of their float dtypes (torch promotes the two)."""
    dt = np.result_type(x.array.dtype, t.array.dtype)
    return (x if x.array.dtype == dt else x.to(dt)), (t if t.array.dtype == dt else t.to(dt))


def _bce_target(op: str, input: Any, target: Any, promote: bool = False) -> tuple[Tensor, Tensor]:
    """Checked input and target: the target cast to the input's dtype, or with ``promote``
    both in the wider dtype (as torch's binary_cross_entropy_with_logits)."""
    x = _tensor(input, op)
    t = _tensor(target, op, "target")
    if x.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {x.dtype}")
    if t.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: target must be a floating-point tensor of 0/1 labels (or probabilities), "
            f"got {t.dtype}; convert it with target.float()"
        )
    _check_same_shape(op, x, t)
    _same_device(op, x, t, "target")
    if promote:
        return _common_float(x, t)
    if t.array.dtype != x.array.dtype:
        t = t.to(x.dtype)
    return x, t


class BinaryCrossEntropy(Function):
    """``-w (y log x + (1 - y) log(1 - x))`` with both logs clamped at -100, as PyTorch."""

    @staticmethod
    def forward(ctx, x, y, weight, reduction):
        xp = get_xp(x)
        logx = xp.maximum(xp.log(x), -100.0)
        log1mx = xp.maximum(xp.log1p(-x), -100.0)
        raw = -(log1mx + y * (logx - log1mx))
        loss = raw if weight is None else raw * weight
        ctx.save_for_backward(x, y, weight, raw if ctx.needs_input_grad[2] else None)
        ctx.reduction = reduction
        return _reduce(xp, loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x, y, weight, raw = ctx.saved_tensors
        xp = get_xp(x)
        nx, ny, nw = ctx.needs_input_grad[:3]
        gn = _grad_scale(g, ctx.reduction, x.size)
        if weight is not None:
            gn = gn * weight
        gx = gy = gw = None
        if nx:
            gx = (x - y) / xp.maximum(x * (1 - x), 1e-12)
            gx *= gn
        if ny:  # the logs unclamped here, as torch's (inf at 0 and 1; 115 at 1e-50)
            with np.errstate(divide="ignore", invalid="ignore"):
                gy = (xp.log1p(-x) - xp.log(x)) * gn
        if nw:
            gw = raw * _grad_scale(g, ctx.reduction, x.size)
        return gx, gy, gw, None

    @staticmethod
    def backward_graph(ctx, g):
        x, y, weight, _ = ctx.saved_tensors
        nx, ny, nw = ctx.needs_input_grad[:3]
        xt, yt = ctx.lift(x, 0), ctx.lift(y, 1)
        wt = ctx.lift(weight, 2) if weight is not None else None
        g0 = _grad_scale(g, ctx.reduction, x.size)
        gn = g0 if wt is None else g0 * wt
        logx = xt.log().clamp(min=-100.0)
        log1mx = (1 - xt).log().clamp(min=-100.0)
        gx = (xt - yt) / (xt * (1 - xt)).clamp(min=1e-12) * gn if nx else None
        gy = ((1 - xt).log() - xt.log()) * gn if ny else None  # (unclamped, as backward)
        gw = -(log1mx + yt * (logx - log1mx)) * g0 if nw else None
        return gx, gy, gw, None


@autocasts("binary_cross_entropy")
def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy between probabilities ``input`` (in [0, 1]) and ``target``.

    Prefer :func:`binary_cross_entropy_with_logits` on raw scores: it is stable.

    Args:
        input: probabilities, any shape.
        target: float labels or probabilities, the input's shape.
        weight: optional weight broadcastable to the input.
        reduction: 'none' | 'mean' | 'sum'.
    """
    op = "binary_cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, t = _bce_target(op, input, target)
    w = _elementwise_weight(op, x, weight)
    arr, tarr = x.array, t.array
    if arr.size:
        # both checks read back in one transfer on the GPU (NaN passes them: unlike torch,
        # which refuses it, darklib lets it propagate silently as through every other op)
        xp = get_xp(arr)
        bad = xp.stack([((arr < 0) | (arr > 1)).any(), ((tarr < 0) | (tarr > 1)).any()]).tolist()
        if bad[0]:
            raise RuntimeError(
                f"{op}: all elements of input should be between 0 and 1 (got min "
                f"{float(arr.min()):.4g}, max {float(arr.max()):.4g}); apply sigmoid first, or "
                "use binary_cross_entropy_with_logits on the raw scores"
            )
        if bad[1]:
            raise RuntimeError(
                f"{op}: all elements of target should be between 0 and 1 (got min "
                f"{float(tarr.min()):.4g}, max {float(tarr.max()):.4g}); targets are labels "
                "or probabilities"
            )
    return BinaryCrossEntropy.apply(x, t, w, reduction)


class BCEWithLogits(Function):
    """Sigmoid + binary cross-entropy in the stable softplus form, with pos_weight."""

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, reduction):
        xp = get_xp(x)
        # softplus(-x) = -log(sigmoid(x)), never overflowing
        sp = xp.log1p(xp.exp(-xp.abs(x)))
        sp += xp.maximum(-x, 0)
        if pos_weight is None:
            raw = (1 - y) * x
            raw += sp
        else:
            lw = (pos_weight - 1) * y
            lw += 1
            raw = (1 - y) * x + lw * sp
        loss = raw if weight is None else raw * weight
        ctx.save_for_backward(
            x, y, weight, pos_weight, sp, raw if ctx.needs_input_grad[2] else None
        )
        ctx.reduction = reduction
        return _reduce(xp, loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x, y, weight, pw, sp, raw = ctx.saved_tensors
        xp = get_xp(x)
        nx, ny, nw, npw = ctx.needs_input_grad[:4]
        g0 = _grad_scale(g, ctx.reduction, x.size)
        gn = g0 if weight is None else g0 * weight
        gx = gy = gw = gpw = None
        if nx:
            sig = xp.exp(-sp)  # sigmoid(x)
            if pw is None:
                gx = sig - y
            else:
                gx = sig * ((pw - 1) * y + 1) - pw * y
            gx *= gn
        if ny:
            gy = -x if pw is None else (pw - 1) * sp - x
            gy = gy * gn
        if nw:
            gw = raw * g0
        if npw:
            gpw = y * sp * gn
        return gx, gy, gw, gpw, None

    @staticmethod
    def backward_graph(ctx, g):
        x, y, weight, pw, _, _ = ctx.saved_tensors
        nx, ny, nw, npw = ctx.needs_input_grad[:4]
        xt, yt = ctx.lift(x, 0), ctx.lift(y, 1)
        wt = ctx.lift(weight, 2) if weight is not None else None
        pwt = ctx.lift(pw, 3) if pw is not None else None
        g0 = _grad_scale(g, ctx.reduction, x.size)
        gn = g0 if wt is None else g0 * wt
        sp = (-xt.abs()).exp().log1p() + (-xt).relu()  # softplus(-x), as forward
        gx = gy = gw = gpw = None
        if nx:
            sig = xt.sigmoid()
            gx = (sig - yt if pwt is None else sig * ((pwt - 1) * yt + 1) - pwt * yt) * gn
        if ny:
            gy = (-xt if pwt is None else (pwt - 1) * sp - xt) * gn
        if nw:
            lw = 1 if pwt is None else (pwt - 1) * yt + 1
            gw = ((1 - yt) * xt + lw * sp) * g0
        if npw:
            gpw = yt * sp * gn
        return gx, gy, gw, gpw, None


@autocasts("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable op (log-sum-exp form).

    Args:
        input: raw scores (logits), any shape.
        target: float labels or probabilities, the input's shape.
        weight: optional weight broadcastable to the input.
        reduction: 'none' | 'mean' | 'sum'.
        pos_weight: optional weight of the positive term, broadcastable to the input
            (e.g. (C,) for the last axis): ``loss = -w (pw y log s + (1 - y) log(1 - s))``.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, t = _bce_target(op, input, target, promote=True)
    w = _elementwise_weight(op, x, weight)
    pw = _elementwise_weight(op, x, pos_weight, "pos_weight")
    return BCEWithLogits.apply(x, t, w, pw, reduction)


# ------------------------------------------------------------------ KL divergence


class KLDiv(Function):
    @staticmethod
    def forward(ctx, x, t, reduction, log_target):
        xp = get_xp(x)
        if log_target:
            et = xp.exp(t)
            loss = et * (t - x)
            ctx.save_for_backward(x, t, et)
        else:
            tlogt = t * xp.log(t + (t == 0))  # 0 log 0 = 0; a negative target gives nan
            loss = tlogt - t * x
            ctx.save_for_backward(x, t, None)
        ctx.reduction, ctx.log_target, ctx.shape = reduction, log_target, loss.shape
        ctx.denom = (x.shape[0] if x.ndim else 1) if reduction == "batchmean" else None
        red = "mean" if reduction == "batchmean" else reduction
        return _reduce(xp, loss, red, ctx.denom)

    @staticmethod
    def backward(ctx, g):
        x, t, et = ctx.saved_tensors
        xp = get_xp(x)
        red = "mean" if ctx.reduction == "batchmean" else ctx.reduction
        gn = _grad_scale(g, red, math.prod(ctx.shape), ctx.denom)
        nx, nt = ctx.needs_input_grad[:2]
        gx = gt = None
        if nx:  # (of the loss's shape: a broadcast target's gradients are summed back)
            gx = xp.broadcast_to(-(et if ctx.log_target else t) * gn, ctx.shape)
        if nt:
            if ctx.log_target:
                gt = et * (t - x + 1) * gn
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    gt = (xp.log(t) + 1 - x) * gn
                gt = xp.where(t == 0, np.nan, gt)  # (torch's xlogy derivative at 0: NaN)
        return gx, gt, None, None

    @staticmethod
    def backward_graph(ctx, g):
        x, t, _ = ctx.saved_tensors
        red = "mean" if ctx.reduction == "batchmean" else ctx.reduction
        gn = _grad_scale(g, red, math.prod(ctx.shape), ctx.denom)
        nx, nt = ctx.needs_input_grad[:2]
        xt, tt = ctx.lift(x, 0), ctx.lift(t, 1)
        et = tt.exp() if ctx.log_target else None
        gx = -(et if ctx.log_target else tt) * gn if nx else None
        gt = None
        if nt:
            gt = (et * (tt - xt + 1) if ctx.log_target else (tt.log() + 1 - xt)) * gn
        return gx, gt, None, None


@autocasts("kl_div")
def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)``, input being log-probs.

    Args:
        input: log-probabilities.
        target: probabilities (or log-probabilities with ``log_target=True``), same shape.
        reduction: 'none' | 'batchmean' (the KL divergence: sum / N) | 'sum' | 'mean'
            (over all elements, as PyTorch's default).
        log_target: target is given in log space.
    """
    op = "kl_div"
    legacy = size_average is not None or reduce is not None
    reduction = _reduction(
        op, size_average, reduce, reduction, ("none", "batchmean", "sum", "mean")
    )
    if reduction == "mean" and not legacy:  # (torch warns too)
        warnings.warn(
            f"{op}: reduction='mean' divides the summed loss by the number of elements (the "
            "batch size times the support size); reduction='batchmean' divides by the batch "
            "size only, which is the KL divergence",
            stacklevel=2,
        )
    x, t = _float_pair(op, input, target)
    try:  # (torch broadcasts the target here without a warning: a fixed prior, say)
        np.broadcast_shapes(tuple(x.shape), tuple(t.shape))
    except ValueError:
        raise InvalidValue(
            f"{op}: target {tuple(t.shape)} does not broadcast against input {tuple(x.shape)}"
        ) from None
    return KLDiv.apply(x, t, reduction, bool(log_target))


# ------------------------------------------------------------------ one_hot


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding of integer class values: shape (*, num_classes), dtype int64.

    Args:
        tensor: integer class values, any shape.
        num_classes: number of classes; -1 infers ``max + 1``.
    """
    op = "one_hot"
    t = _tensor(tensor, op, "tensor")
    if t.array.dtype.kind not in "iu":
        raise InvalidType(f"{op}: expected an integer tensor of class values, got {t.dtype}")
    arr = t.array
    xp = get_xp(arr)
    if num_classes in (-1, 0) and arr.size == 0:  # (torch reads 0 as "infer" there too)
        raise InvalidValue(f"{op}: cannot infer num_classes from an empty tensor; pass it")
    if num_classes == -1:
        num_classes = int(arr.max()) + 1
    elif num_classes < 1:
        raise InvalidValue(f"{op}: num_classes must be positive or -1, got {num_classes}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise InvalidValue(f"{op}: class values must be non-negative, got {lo}")
        if hi >= num_classes:
            raise InvalidValue(
                f"{op}: class values must be smaller than num_classes={num_classes}, got {hi}"
            )
    # zeros and one write per value (comparing against every class reads C times more)
    out = xp.zeros((*arr.shape, num_classes), np.int64)
    if arr.size:
        out.reshape(arr.size, num_classes)[xp.arange(arr.size), arr.reshape(-1)] = 1
    return Tensor._wrap(out)


# ------------------------------------------------------------------ margin and embedding losses
# Compositions of differentiable ops (gradients, double-backward and the GPU come with them).


def _finish(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _const(x: Tensor, arr: Any) -> Tensor:
    """A non-differentiable array (a mask, a weight) as a tensor on ``x``'s device."""
    return Tensor._wrap(get_xp(x.array).asarray(arr))


@autocasts("margin_ranking_loss")
def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``; the three tensors broadcast but
    must have the same number of dimensions."""
    op = "margin_ranking_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    a, b = _tensor(input1, op, "input1"), _tensor(input2, op, "input2")
    y = _tensor(target, op, "target")
    if not a.ndim == b.ndim == y.ndim:
        raise InvalidValue(
            f"{op}: input1 {tuple(a.shape)}, input2 {tuple(b.shape)} and target "
            f"{tuple(y.shape)} must have the same number of dimensions"
        )
    _E.check_broadcast(op, a, b)
    _E.check_broadcast(op, a, y)
    return _finish(_E.clamp(-y * (a - b) + margin, min=0), reduction)


@autocasts("hinge_embedding_loss")
def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``input`` where target is 1, ``max(0, margin - input)`` where it is -1 (both terms
    where it is neither, as torch)."""
    op = "hinge_embedding_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, y = _tensor(input, op), _tensor(target, op, "target")
    _E.check_broadcast(op, x, y)
    hinge = _E.where(_E.ne(y, 1), _E.clamp(margin - x, min=0), 0.0)
    return _finish(hinge + _E.where(_E.ne(y, -1), x, 0.0), reduction)


@autocasts("soft_margin_loss")
def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``log(1 + exp(-target * input))`` (a stable softplus), elementwise."""
    op = "soft_margin_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, y = _tensor(input, op), _tensor(target, op, "target")
    _constant(op, "target", y)  # (torch has no derivative for the target)
    _E.check_broadcast(op, x, y)
    return _finish(_E.softplus(-y * x), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Per-class logistic loss averaged over the last (class) dimension, optionally weighted
    per class: ``-(y log sigmoid(x) + (1 - y) log sigmoid(-x))``."""
    op = "multilabel_soft_margin_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, y = _tensor(input, op), _tensor(target, op, "target")
    if x.ndim == 0:
        raise InvalidValue(f"{op}: expected input of shape (C) or (N, C), got a scalar")
    _E.check_broadcast(op, x, y)
    # -log sigmoid(x) = softplus(-x); 1 - y times softplus(x)
    loss = y * _E.softplus(-x) + (1 - y) * _E.softplus(x)
    if weight is not None:
        w = _tensor(weight, op, "weight")
        _E.check_broadcast(op, loss, w)
        loss = loss * w
    c = x.shape[-1]
    return _finish(loss.sum(-1) / c, reduction)


def _margin_classes(op: str, x: Tensor, target: Any, multilabel: bool) -> tuple[Tensor, Any]:
    """Validate (C,)/(N, C) input and its integer targets; returns them as (N, C), int64."""
    t = _tensor(target, op, "target")
    _same_device(op, x, t, "target")
    if x.ndim > 2 or (x.ndim and x.shape[-1] == 0):
        raise InvalidValue(
            f"{op}: expected a non-empty input of shape (C) or (N, C), got {tuple(x.shape)}"
        )
    if x.array.dtype.kind != "f":
        raise InvalidType(f"{op}: expected a floating-point input, got {x.dtype}")
    if t.array.dtype.kind not in "iu":
        raise InvalidType(f"{op}: expected integer class targets, got {t.dtype}; use .long()")
    c = x.shape[-1] if x.ndim else 1
    ts = tuple(t.shape)
    if multilabel:  # (C) or a scalar: a vector of C labels; (N, C): the input's shape
        expected = tuple(x.shape) if x.ndim == 2 else (c,)
        fits = ts == expected if x.ndim == 2 else t.ndim <= 1 and t.numel() == c
    else:  # one label per sample, as a vector (or a scalar for one sample), as torch
        expected = (x.shape[0],) if x.ndim == 2 else ()
        fits = t.ndim <= 1 and t.numel() == (x.shape[0] if x.ndim == 2 else 1)
    if not fits:
        raise InvalidValue(
            f"{op}: target {ts} does not fit input {tuple(x.shape)}; expected target of "
            f"shape {expected}"
        )
    arr = t.array.astype(np.int64)
    arr = arr.reshape(-1, c) if multilabel else arr.reshape(-1)
    lo = -1 if multilabel else 0
    if arr.size and (int(arr.min()) < lo or int(arr.max()) >= c):
        raise OutOfRange(
            f"{op}: target values must be in [{lo}, {c}) for input {tuple(x.shape)}, got "
            f"values in [{int(arr.min())}, {int(arr.max())}]"
        )
    return x.reshape(-1, c), arr


@autocasts("multilabel_margin_loss")
def multilabel_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``sum_{j in targets} sum_{i not in targets} max(0, 1 - (x[j] - x[i])) / C``.

    ``target`` holds class indices of the input's shape, read up to the first -1.
    """
    op = "multilabel_margin_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x = _tensor(input, op)
    x2, t = _margin_classes(op, x, target, True)
    xp = get_xp(t)
    n, c = t.shape
    valid = xp.cumprod(t >= 0, axis=1).astype(bool)  # the slots before the first -1
    idx = xp.where(valid, t, 0)
    is_target = xp.zeros((n, c), dtype=bool)
    rows = xp.broadcast_to(xp.arange(n)[:, None], (n, c))
    is_target[rows[valid], idx[valid]] = True
    xt = x2.gather(1, _const(x2, idx))  # (N, slots)
    mask = valid[:, :, None] & ~is_target[:, None, :]  # (N, slots, C)
    hinge = _E.relu(1 - xt.unsqueeze(2) + x2.unsqueeze(1))  # (no gradient at a 0 hinge)
    loss = _E.where(_const(x2, mask), hinge, 0.0).sum((1, 2)) / c  # (not 0 * inf)
    return _finish(loss.reshape(tuple(x.shape[:-1]) if x.ndim == 2 else ()), reduction)


@autocasts("multi_margin_loss")
def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``sum_{i != y} w[y] * max(0, margin - x[y] + x[i]) ** p / C`` (p is 1 or 2)."""
    op = "multi_margin_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    if p not in (1, 2):
        raise InvalidValue(f"{op}: only p == 1 and p == 2 are supported, got p={p}")
    x = _tensor(input, op)
    x2, t = _margin_classes(op, x, target, False)
    c = x2.shape[1]
    ti = _const(x2, t[:, None])
    z = _E.relu(margin - x2.gather(1, ti) + x2)  # (no gradient at a 0 hinge, as torch)
    # the target's own term selected away, not multiplied by 0 (inf - inf there is NaN)
    not_y = _const(x2, get_xp(t).arange(c)[None, :] != t[:, None])
    z = _E.where(not_y, z, 0.0)
    if p == 2:
        z = z * z
    if weight is not None:
        w = _tensor(weight, op, "weight")
        _same_device(op, x, w, "weight")
        if tuple(w.shape) != (c,):
            raise InvalidValue(
                f"{op}: weight {tuple(w.shape)} must have shape ({c},) for input {tuple(x.shape)}"
            )
        z = z * w.gather(0, _const(x2, t)).unsqueeze(1)
    loss = z.sum(1) / c
    return _finish(loss.reshape(tuple(_tensor(target, op, "target").shape)), reduction)


@autocasts("cosine_embedding_loss")
def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where -1;
    inputs (N, D) with target (N), or (D) with a scalar target."""
    op = "cosine_embedding_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    a, b = _tensor(input1, op, "input1"), _tensor(input2, op, "input2")
    y = _tensor(target, op, "target")
    if y.ndim not in (0, 1):
        raise InvalidValue(f"{op}: expected a 0-D or 1-D target, got {tuple(y.shape)}")
    want = y.ndim + 1
    if a.ndim != want or b.ndim != want:
        raise InvalidValue(
            f"{op}: a {y.ndim}-D target expects {want}-D inputs, got input1 "
            f"{tuple(a.shape)} and input2 {tuple(b.shape)}"
        )
    _E.check_broadcast(op, a, b)
    try:
        np.broadcast_shapes(tuple(a.shape[:-1]), tuple(b.shape[:-1]), tuple(y.shape))
    except ValueError:
        raise InvalidValue(
            f"{op}: target {tuple(y.shape)} does not match the batch of input1 "
            f"{tuple(a.shape)} and input2 {tuple(b.shape)}: expected one target per row"
        ) from None
    eps = 1e-12
    dot = (a * b).sum(-1)
    cos = dot / ((((a * a).sum(-1) + eps) * ((b * b).sum(-1) + eps)) ** 0.5)
    pos = _E.where(_E.eq(y, 1), 1 - cos, 0.0)
    neg = _E.where(_E.eq(y, -1), _E.clamp(cos - margin, min=0), 0.0)
    return _finish(pos + neg, reduction)


def _triplet(
    op: str, anchor: Any, positive: Any, negative: Any, dist: Any, margin: float, swap: bool
) -> Tensor:
    a, p = _tensor(anchor, op, "anchor"), _tensor(positive, op, "positive")
    n = _tensor(negative, op, "negative")
    if not a.ndim == p.ndim == n.ndim:
        raise InvalidValue(
            f"{op}: anchor, positive and negative must have the same number of dimensions, "
            f"got anchor {tuple(a.shape)}, positive {tuple(p.shape)} and negative "
            f"{tuple(n.shape)}"
        )
    d_pos, d_neg = dist(a, p), dist(a, n)
    if swap:
        d_neg = _E.minimum(d_neg, dist(p, n))
    return _E.clamp(margin + d_pos - d_neg, min=0)


@autocasts("triplet_margin_loss")
def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d`` the p-norm pairwise distance;
    ``swap`` uses ``min(d(a, n), d(p, n))`` as the negative distance."""
    from darklib.nn.functional import pairwise_distance

    op = "triplet_margin_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    if margin <= 0:
        raise InvalidValue(f"{op}: margin must be greater than 0, got {margin}")

    def dist(u: Tensor, v: Tensor) -> Tensor:
        return pairwise_distance(u, v, p, eps)

    return _finish(_triplet(op, anchor, positive, negative, dist, margin, swap), reduction)


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """triplet_margin_loss with any ``distance_function(x1, x2)`` (default: pairwise
    Euclidean distance)."""
    from darklib.nn.functional import pairwise_distance

    op = "triplet_margin_with_distance_loss"
    reduction = _reduction(op, None, None, reduction)
    if margin <= 0:
        raise InvalidValue(f"{op}: margin must be greater than 0, got {margin}")
    dist = pairwise_distance if distance_function is None else distance_function
    return _finish(_triplet(op, anchor, positive, negative, dist, margin, swap), reduction)


@autocasts("poisson_nll_loss")
def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood: ``exp(input) - target * input`` (``log_input``) or
    ``input - target * log(input + eps)``; ``full`` adds Stirling's term where target > 1."""
    op = "poisson_nll_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, t = _tensor(input, op), _tensor(target, op, "target")
    _E.check_broadcast(op, x, t)
    loss = x.exp() - t * x if log_input else x - t * (x + eps).log()
    if full:
        stirling = t * t.log() - t + 0.5 * (2 * np.pi * t).log()
        loss = loss + _E.where(_E.le(t, 1), 0.0, stirling)
    return _finish(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """``0.5 * (log(max(var, eps)) + (input - target)**2 / max(var, eps))`` (+ 0.5 log 2 pi
    with ``full``).

    ``var`` is a float, a tensor of the input's shape, the input's shape without its last
    dimension, or the input's shape with one dimension of size 1. The clamp at ``eps`` does
    not stop var's gradient (as torch).
    """
    op = "gaussian_nll_loss"
    x, t = _tensor(input, op), _tensor(target, op, "target")
    if isinstance(var, float | int) and not isinstance(var, bool):
        if var < 0:
            raise InvalidValue(f"{op}: var has negative entry/entries ({var})")
        v = _const(x, get_xp(x.array).full(x.shape, float(var), dtype=x.array.dtype))
    else:
        v = _tensor(var, op, "var")
        if v.numel() and bool((v.array < 0).any()):
            raise InvalidValue(f"{op}: var has negative entry/entries")
    xs, vs = tuple(x.shape), tuple(v.shape)
    if vs != xs:
        if xs[:-1] == vs:
            v = v.unsqueeze(-1)
        elif not (len(xs) == len(vs) and sum(b for a, b in zip(xs, vs) if a != b) == 1):
            raise InvalidValue(
                f"{op}: var {vs} is of incorrect size for input {xs}: expected {xs}, {xs[:-1]}"
                " or the input's shape with one dimension of size 1"
            )
    if reduction not in _REDUCTIONS:
        raise InvalidValue(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    _E.check_broadcast(op, x, t)
    v = v + (_E.clamp(v.detach(), min=eps) - v.detach())  # clamp, gradient passing through
    loss = 0.5 * (v.log() + (x - t) ** 2 / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _finish(loss, reduction)


# ------------------------------------------------------------------ CTC


def _ctc_lengths(op: str, name: str, v: Any, n: int, shape: tuple) -> np.ndarray:
    """``input_lengths`` / ``target_lengths`` (an integer tensor, or a tuple or list of
    ints) as a host int64 array of ``n`` entries (torch flattens a tensor of any shape)."""
    from darklib.backend import to_numpy

    if isinstance(v, Tensor):
        if v.array.dtype.kind not in "iu":
            raise InvalidType(
                f"{op}: {name} must be integral, got a tensor of dtype {v.dtype}; convert it "
                "with .long()"
            )
        arr = to_numpy(v.array).astype(np.int64).reshape(-1)
    elif isinstance(v, tuple | list):
        for e in v:
            if isinstance(e, bool) or not isinstance(e, int | np.integer):
                raise InvalidType(
                    f"{op}: {name} must be an integer tensor or a tuple/list of ints, got an "
                    f"element {e!r} of type {type(e).__name__}"
                )
        arr = np.asarray(v, dtype=np.int64).reshape(-1)
    else:
        raise InvalidType(
            f"{op}: {name} must be an integer tensor or a tuple/list of ints (one per batch "
            f"element), got {type(v).__name__}"
        )
    if arr.size != n:
        raise InvalidValue(
            f"{op}: {name} must have one entry per batch element: got {arr.size} for batch "
            f"size {n} (log_probs {shape})"
        )
    if arr.size and arr.min() < 0:
        raise InvalidValue(
            f"{op}: expected {name} to have values at least 0, but got value {int(arr.min())}"
        )
    return arr


def _ctc_extended(
    op: str, targets: Tensor, tl: np.ndarray, n: int, c: int, blank: int, shape: tuple
) -> np.ndarray:
    """The extended label sequences (N, 2 max(target_lengths) + 1) on the host: blanks at
    the even positions, each target's labels at the odd ones (blank past its length)."""
    from darklib.backend import to_numpy

    if targets.array.dtype.kind not in "iu":
        raise InvalidType(
            f"{op}: expected targets of class indices with an integer dtype, got "
            f"{targets.dtype} of shape {tuple(targets.shape)}; convert them with .long()"
        )
    ts = tuple(targets.shape)
    smax = int(tl.max()) if n else 0
    tg = to_numpy(targets.array).astype(np.int64, copy=False)
    if targets.ndim == 1:  # concatenated: sum(target_lengths) labels
        total = int(tl.sum())
        if ts[0] != total:
            raise InvalidValue(
                f"{op}: concatenated targets {ts} must hold sum(target_lengths) = {total} "
                f"labels (target_lengths {tl.tolist()})"
            )
        start = np.cumsum(tl) - tl
        pos = start[:, None] + np.arange(smax)
        labels = tg[np.minimum(pos, max(total - 1, 0))] if total else np.zeros(pos.shape, np.int64)
    elif targets.ndim == 2:  # padded: (N, S) with S >= max(target_lengths)
        if ts[0] != n:
            raise InvalidValue(
                f"{op}: padded targets {ts} must have the batch size {n} of log_probs "
                f"{shape} as their first dimension"
            )
        if ts[1] < smax:
            raise InvalidValue(
                f"{op}: target_lengths holds {smax} but the padded targets {ts} have only "
                f"{ts[1]} columns: expected targets with at least {smax}"
            )
        labels = tg[:, :smax]
    else:
        raise InvalidValue(
            f"{op}: expected targets of shape (N, S) or (sum(target_lengths),), got {ts}"
        )
    used = np.arange(smax) < tl[:, None]
    labels = np.where(used, labels, blank)
    bad = (labels < 0) | (labels >= c)
    if bad.any():
        raise OutOfRange(
            f"{op}: targets hold class {int(labels[bad][0])} but log_probs {shape} has {c} "
            f"classes (valid labels are 0..{c - 1})"
        )
    # torch documents a blank label as invalid: its loss is defined but its gradient is
    # not the loss's (at the last frame), a silently wrong answer
    hit = np.argwhere(used & (labels == blank))
    if hit.size:
        i, j = (int(v) for v in hit[0])
        raise InvalidValue(
            f"{op}: targets hold the blank (class {blank}) at sample {i}, label {j}; the "
            "blank cannot be a target label (pass blank= the index your labels never use)"
        )
    ext = np.full((n, 2 * smax + 1), blank, dtype=np.int64)
    ext[:, 1::2] = labels
    return ext


def _ctc_skips(xp: Any, ext: Any) -> Any:
    """Where the alpha recursion may come from two positions back (s - 2): at a label
    that differs from the label before it, so that a repeated label needs a blank."""
    skip = xp.zeros(ext.shape, dtype=bool)
    skip[:, 2:] = ext[:, 2:] != ext[:, :-2]
    return skip


class _CtcStep:
    """One step of the alpha or beta recursion, ``out = lse(a, b, c + mask) + emit`` with
    ``mask`` 0 where the two-position move is allowed and -inf elsewhere, over (N, L).

    On the CPU torch's own formula (the max-shifted sum of three exponentials, the max
    raised to the lowest float so that an all -inf triple gives -inf, never NaN) in
    preallocated buffers: 3x faster than two ``numpy.logaddexp`` calls, which are not
    vectorised. On the GPU two ``logaddexp`` launches instead of a dozen."""

    def __init__(self, xp: Any, skip: Any, dtype: Any) -> None:
        self.xp, self.mask = xp, xp.where(skip, 0.0, -np.inf).astype(dtype)
        self.low = np.finfo(dtype).min
        if xp is np:
            self.m, self.e, self.c = (np.empty(skip.shape, dtype) for _ in range(3))

    def __call__(self, a: Any, b: Any, c: Any, emit: Any, out: Any) -> None:
        xp = self.xp
        if xp is not np:
            xp.logaddexp(a, b, out=out)
            xp.logaddexp(out, c + self.mask, out=out)
            out += emit
            return
        m, e, c = self.m, self.e, np.add(c, self.mask, out=self.c)
        np.maximum(a, b, out=m)
        np.maximum(m, c, out=m)
        np.maximum(m, self.low, out=m)
        np.exp(np.subtract(c, m, out=c), out=c)
        np.exp(np.subtract(a, m, out=e), out=e)
        e += c
        np.exp(np.subtract(b, m, out=c), out=c)
        e += c
        np.log(e, out=out)
        out += m
        out += emit


class CtcLoss(Function):
    """Connectionist temporal classification: the negative log-likelihood of each target
    under all its alignments with the input, by the alpha (forward) recursion in log space
    over the extended labels (a Python loop over time, vectorised over the batch and the
    label positions), its gradient by the beta recursion, in PyTorch's formula."""

    @staticmethod
    def forward(ctx, lp0, ext, il, tl, blank, reduction, zero_infinity, unbatched):
        xp = get_xp(lp0)
        lp = lp0[:, None] if unbatched else lp0
        _, n, _ = lp.shape
        dt, ninf = lp.dtype, -np.inf
        ext = xp.asarray(ext)
        ll_ = ext.shape[1]
        tm = int(il.max())  # the recursions stop at the longest input
        ilx, tlx = xp.asarray(il), xp.asarray(tl)
        rows = xp.arange(n)
        lpe = lp[:tm, rows[:, None], ext]  # (tm, N, L): emission of each extended label
        skip = _ctc_skips(xp, ext)
        # alpha with two -inf columns in front: the s - 1 and s - 2 shifts are views
        alpha = xp.full((tm, n, ll_ + 2), ninf, dtype=dt)
        if tm:
            alpha[0, :, 2] = lpe[0, :, 0]
            if ll_ > 1:
                alpha[0, :, 3] = xp.where(tlx > 0, lpe[0, :, 1], ninf)
        step = _CtcStep(xp, skip, dt)
        for t in range(1, tm):
            prev = alpha[t - 1]
            step(prev[:, 2:], prev[:, 1:-1], prev[:, :-2], lpe[t], alpha[t, :, 2:])
        if tm:  # log p: the last blank or the last label at each input's last frame
            last = xp.maximum(ilx - 1, 0)
            end = xp.logaddexp(alpha[last, rows, 2 * tlx + 2], alpha[last, rows, 2 * tlx + 1])
        else:
            end = xp.zeros(n, dtype=dt)
        empty = xp.where(tlx > 0, ninf, 0.0).astype(dt)  # no frame: only the empty target
        nll = -xp.where(ilx > 0, end, empty)
        loss = xp.where(nll == np.inf, 0.0, nll).astype(dt) if zero_infinity else nll
        tlc = None
        if reduction == "mean":  # each loss over its target length, then the batch mean
            tlc = xp.asarray(np.maximum(tl, 1)).astype(dt)
            loss = loss / tlc
        ctx.save_for_backward(lp0, ext, alpha, lpe, nll, skip)
        ctx.il, ctx.tl, ctx.tlc, ctx.tm = il, tl, tlc, tm
        ctx.reduction, ctx.zero_infinity, ctx.unbatched = reduction, zero_infinity, unbatched
        out = _reduce(xp, loss, reduction)
        return out[0] if unbatched and reduction == "none" else out

    @staticmethod
    def _per_sample(ctx, g: Any, n: int) -> Any:
        """The upstream gradient of each sample's loss (N,)."""
        xp = get_xp(g)
        if ctx.reduction == "none":
            return g.reshape(n)
        gr = xp.broadcast_to(g, (n,))
        return gr / (ctx.tlc * n) if ctx.reduction == "mean" else gr

    @staticmethod
    def backward(ctx, g):
        if not ctx.needs_input_grad[0]:
            return (None,) * 8
        lp0, ext, alpha, lpe, nll, skip = ctx.saved_tensors
        xp = get_xp(lp0)
        lp = lp0[:, None] if ctx.unbatched else lp0
        _, n, c = lp.shape
        il, tl, tm = ctx.il, ctx.tl, ctx.tm
        ll_, ninf, dt = ext.shape[1], -np.inf, lp.dtype
        grad = xp.zeros(lp.shape, dtype=dt)
        if tm:
            # beta with two -inf columns behind: the s + 1 and s + 2 shifts are views
            beta = xp.full((tm, n, ll_ + 2), ninf, dtype=dt)
            skip2 = xp.zeros_like(skip)
            skip2[:, :-2] = skip[:, 2:]  # from s + 2 where s + 2 may skip back to s
            tlx = xp.asarray(tl)
            pos = xp.arange(ll_)
            ends = (pos == 2 * tlx[:, None]) | ((pos == 2 * tlx[:, None] - 1) & (tlx[:, None] > 0))
            starts = {}  # frame -> the samples whose last frame it is
            for i, last in enumerate(il.tolist()):
                if last:
                    starts.setdefault(last - 1, []).append(i)
            step = _CtcStep(xp, skip2, dt)
            for t in range(tm - 1, -1, -1):
                if t < tm - 1:
                    nxt = beta[t + 1]
                    step(nxt[:, :-2], nxt[:, 1:-1], nxt[:, 2:], lpe[t], beta[t, :, :ll_])
                if t in starts:
                    idx = xp.asarray(starts[t])
                    beta[t, idx, :ll_] = xp.where(ends[idx], lpe[t, idx], ninf)
            # torch's formula: exp(lp) - exp(log(sum alpha beta over the label's positions)
            # + nll - lp); beta includes the emission at t as alpha does, hence the - lp
            ab = alpha[:, :, 2:] + beta[:, :, :ll_]
            ab -= lpe
            ab += nll[:, None]
            q = xp.exp(ab, out=ab)
            flat = (xp.arange(tm)[:, None, None] * n + xp.arange(n)[:, None]) * c + ext
            post = xp.bincount(flat.reshape(-1), weights=q.reshape(-1), minlength=tm * n * c)
            lpt = lp[:tm]
            res = xp.exp(lpt)
            res -= post.reshape(tm, n, c).astype(dt, copy=False)
            # torch's exp(-inf + nll - lp) of the labels outside the target: 0, or NaN where
            # nll is inf (an impossible alignment) or lp is -inf
            res -= xp.exp((nll[:, None] - lpt) - np.inf)
            gr = CtcLoss._per_sample(ctx, g, n).astype(dt, copy=False)
            res *= gr[:, None]
            keep = xp.arange(tm)[:, None] < xp.asarray(il)  # (tm, N)
            if ctx.zero_infinity:
                keep &= nll != np.inf
            grad[:tm] = xp.where(keep[:, :, None], res, 0.0)
        return (grad[:, 0] if ctx.unbatched else grad), None, None, None, None, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        """(create_graph) the alpha recursion rebuilt from differentiable ops (its gradient
        is the true one), plus torch's ``exp(lp)`` term on tensors, so that the gradient
        equals ``backward``'s and differentiates again."""
        if not ctx.needs_input_grad[0]:
            return (None,) * 8
        lp0, ext, _, _, nll, skip = ctx.saved_tensors
        xp = get_xp(lp0)
        il, tl, unbatched, reduction = ctx.il, ctx.tl, ctx.unbatched, ctx.reduction
        inf_nll = nll == np.inf
        zero_inf = inf_nll if ctx.zero_infinity else None

        def forward(x, *_):
            loss = _ctc_composite(x, ext, skip, il, tl, unbatched, zero_inf)
            if reduction == "mean":
                loss = loss / Tensor._wrap(ctx.tlc)
            if reduction == "none":
                return loss[0] if unbatched else loss
            return loss.sum() if reduction == "sum" else loss.mean()

        values = (lp0,) + (None,) * 7
        grads = list(higher_order.recompute(ctx, g, forward, values))
        lp = lp0[:, None] if unbatched else lp0
        t_, n, _ = lp.shape
        gt = g.reshape((1,)) if unbatched and reduction == "none" else g
        if reduction == "mean":
            gr = gt / Tensor._wrap(ctx.tlc * n)
        elif reduction == "sum":
            gr = gt * Tensor._wrap(xp.ones(n, dtype=lp.dtype))
        else:
            gr = gt
        frames = xp.arange(t_)[:, None] < xp.asarray(il)  # (T, N): each sample's frames
        keep = frames & ~inf_nll if ctx.zero_infinity else frames
        x = ctx.lift(lp0, 0)
        xb = x.unsqueeze(1) if unbatched else x
        extra = xb.exp() * (gr.reshape((1, n, 1)) * Tensor._wrap(keep[:, :, None].astype(lp.dtype)))
        if not ctx.zero_infinity:  # torch's NaN gradient of an impossible alignment
            nan = frames & inf_nll
            extra = extra + Tensor._wrap(xp.where(nan[:, :, None], np.nan, 0.0).astype(lp.dtype))
        extra = extra[:, 0] if unbatched else extra
        grads[0] = extra if grads[0] is None else grads[0] + extra
        return tuple(grads)


def _ctc_lse(parts: list, ninf: float) -> Tensor:
    """log(sum(exp(parts))) on tensors, -inf (with zero gradients, not NaN) where every
    part is -inf: the differentiable twin of :class:`_CtcStep`."""
    from darklib.ops.shape import stack

    s = stack(parts, 0)
    xp = get_xp(s.array)
    m = s.array.max(axis=0)
    m = xp.where(m == ninf, 0.0, m).astype(s.array.dtype)
    total = (s - Tensor._wrap(m)).exp().sum(0)
    some = Tensor._wrap(total.array > 0)
    safe = _E.where(some, total, 1.0)
    return _E.where(some, safe.log() + Tensor._wrap(m), ninf)


def _ctc_composite(
    x: Tensor, ext: Any, skip: Any, il: np.ndarray, tl: np.ndarray, unbatched: bool, zero_inf: Any
) -> Tensor:
    """Each sample's CTC loss (N,) from differentiable ops: the alpha recursion of
    :class:`CtcLoss` on tensors (for double backward)."""
    from darklib.ops.shape import cat

    xp = get_xp(x.array)
    ninf = -np.inf
    xb = x.unsqueeze(1) if unbatched else x
    n, ll_ = ext.shape
    tm = int(il.max())
    dt = xb.array.dtype
    tlx, ilx = xp.asarray(tl), xp.asarray(il)
    pad = Tensor._wrap(xp.full((n, 2), ninf, dtype=dt))
    skipt = Tensor._wrap(skip)
    pos = xp.arange(ll_)
    first = (pos == 0) | ((pos == 1) & (tlx[:, None] > 0))
    end_a = Tensor._wrap(xp.minimum(2 * tlx, ll_ - 1)[:, None])
    end_b = Tensor._wrap(xp.maximum(2 * tlx - 1, 0)[:, None])
    has_b = Tensor._wrap((tlx > 0)[:, None])
    final = Tensor._wrap(xp.where(tlx > 0, ninf, 0.0).astype(dt)).reshape((n, 1))
    lasts = set((il - 1).tolist())
    if tm:
        index = Tensor._wrap(xp.broadcast_to(ext[None], (tm, n, ll_)).copy())
        lpe = xb[:tm].gather(2, index)
    for t in range(tm):
        if t == 0:
            alpha = _E.where(Tensor._wrap(first), lpe[0], ninf)
        else:
            shifted = cat([pad, alpha], 1)
            a3 = _E.where(skipt, shifted[:, :ll_], ninf)
            alpha = _ctc_lse([alpha, shifted[:, 1 : ll_ + 1], a3], ninf) + lpe[t]
        if t in lasts:
            la = alpha.gather(1, end_a)
            lb = _E.where(has_b, alpha.gather(1, end_b), ninf)
            final = _E.where(Tensor._wrap((ilx - 1 == t)[:, None]), _ctc_lse([la, lb], ninf), final)
    nll = -final.reshape((n,))
    if zero_inf is not None:
        nll = _E.where(Tensor._wrap(zero_inf), 0.0, nll)
    return nll


@autocasts("ctc_loss")
def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | tuple | list,
    target_lengths: Tensor | tuple | list,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist Temporal Classification loss, as ``torch.nn.functional.ctc_loss``.

    The negative log-likelihood of each target sequence summed over all its alignments
    with the input frames (blanks between and around the labels, a blank needed between
    repeated labels). A target longer than its input can be aligned gives an infinite loss
    (``zero_infinity`` turns such losses and their gradients into zeros).

    The gradient is PyTorch's: ``exp(log_probs) - posterior`` per frame, which is the
    gradient with respect to the logits of a ``log_softmax``, and equals the gradient with
    respect to ``log_probs`` only up to a term that ``log_softmax``'s backward removes
    (so it differs from the true derivative for inputs that are not normalised).

    Args:
        log_probs: (T, N, C) or unbatched (T, C) log-probabilities (e.g. ``log_softmax``
            outputs), float32 or float64.
        targets: padded (N, S) or concatenated (sum(target_lengths),) class indices, an
            integer tensor (never the blank in a well-formed target).
        input_lengths: (N,) frames per sample, each at most T: a tensor or ints.
        target_lengths: (N,) labels per sample: a tensor or ints.
        blank: the blank's class index, in [0, C).
        reduction: 'none' (N,) | 'mean' (each loss divided by its target length, at least
            1, then averaged over the batch) | 'sum'.
        zero_infinity: replace infinite losses (impossible alignments) and their
            gradients by zero.

    Example:
        >>> lp = dl.randn(50, 4, 20).log_softmax(2).requires_grad_()
        >>> tg = dl.randint(1, 20, (4, 10))
        >>> F.ctc_loss(lp, tg, (50,) * 4, (10, 8, 9, 10)).backward()
    """
    op = "ctc_loss"
    reduction = _reduction(op, None, None, reduction)
    x = _tensor(log_probs, op, "log_probs")
    t = _tensor(targets, op, "targets")
    if x.array.dtype not in (np.float32, np.float64):
        raise InvalidType(
            f"{op}: expected log_probs of dtype float32 or float64, got {x.dtype}; "
            "convert it with .float()"
        )
    if x.ndim not in (2, 3):
        raise InvalidValue(
            f"{op}: expected log_probs of shape (T, N, C) or unbatched (T, C), got {tuple(x.shape)}"
        )
    shape = tuple(x.shape)
    if x.numel() == 0:
        raise InvalidValue(f"{op}: log_probs tensor must not be empty, got shape {shape}")
    _same_device(op, x, t, "targets")
    unbatched = x.ndim == 2
    n, c = (1, shape[1]) if unbatched else shape[1:]
    if isinstance(blank, bool) or not isinstance(blank, int | np.integer):
        raise InvalidType(f"{op}: blank must be an int, got {type(blank).__name__}")
    if not 0 <= blank < c:
        raise OutOfRange(
            f"{op}: blank must be in label range [0, {c}) for log_probs {shape}, got blank={blank}"
        )
    il = _ctc_lengths(op, "input_lengths", input_lengths, n, shape)
    tl = _ctc_lengths(op, "target_lengths", target_lengths, n, shape)
    if il.max() > shape[0]:
        raise InvalidValue(
            f"{op}: expected input_lengths to have values at most T = {shape[0]} (log_probs "
            f"{shape}), but got value {int(il.max())}"
        )
    if unbatched and t.ndim == 2 and t.shape[0] != 1:
        raise InvalidValue(
            f"{op}: unbatched log_probs {shape} takes targets (S,) or (1, S), got {tuple(t.shape)}"
        )
    ext = _ctc_extended(op, t, tl, n, c, int(blank), shape)
    ext = get_xp(x.array).asarray(ext)
    return CtcLoss.apply(x, ext, il, tl, int(blank), reduction, bool(zero_infinity), unbatched)
