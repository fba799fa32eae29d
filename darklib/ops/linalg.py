"""Matrix products: matmul (with NumPy/PyTorch batching and 1-D rules) and linear."""

from __future__ import annotations

from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.ops._promote import promote
from darklib.tensor import Tensor


def _swap(x):
    return x.swapaxes(-1, -2)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        ctx.save_for_backward(a2, b2)
        ctx.shapes = (a.shape, b.shape)
        out = get_xp(a).matmul(a2, b2)
        if a.ndim == 1:
            out = out[..., 0, :]
        if b.ndim == 1:
            out = out[..., 0]
        return out

    @staticmethod
    def backward(ctx, g):
        a2, b2 = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        if len(b_shape) == 1:
            g = g[..., None]
        if len(a_shape) == 1:
            g = g[..., None, :]
        xp = get_xp(g)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = xp.matmul(g, _swap(b2))
            if len(a_shape) == 1:
                ga = ga[..., 0, :]
        if ctx.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # (batch..., n, k) @ (k, m): one GEMM over the folded batch, not a sum of many
                k = a2.shape[-1]
                gb = a2.reshape(-1, k).T @ g.reshape(-1, g.shape[-1])
            else:
                gb = xp.matmul(_swap(a2), g)
            if len(b_shape) == 1:
                gb = gb[..., 0]
        return ga, gb


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules: 1-D operands are vectors, leading dims broadcast.

    Example::

        >>> dl.randn(8, 3, 4) @ dl.randn(4, 5)   # shape (8, 3, 5)
    """
    a, b = promote(input, other)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be tensors")
    sa, sb = tuple(a.shape), tuple(b.shape)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got {sa} @ {sb}")
    ka = sa[-1]
    kb = sb[0] if b.ndim == 1 else sb[-2]
    if ka != kb:
        raise RuntimeError(f"matmul: {sa} @ {sb}: inner dimensions {ka} and {kb} differ")
    if a.ndim > 2 or b.ndim > 2:
        import numpy as np

        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise RuntimeError(
                f"matmul: {sa} @ {sb}: batch dimensions {sa[:-2]} and {sb[:-2]} do not broadcast"
            ) from None
    return MatMul.apply(a, b)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(
            f"mm: expected 2-D tensors, got {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(
            f"bmm: expected 3-D tensors with equal batch size, got "
            f"{tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


class Linear(Function):
    """y = x W^T + b as one GEMM forward and one per gradient (x folded to 2-D)."""

    @staticmethod
    def forward(ctx, x, w, b):
        x2 = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x2, w)
        ctx.x_shape = x.shape
        out = x2 @ w.T
        if b is not None:
            out += b
        return out.reshape(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        nx, nw, nb = ctx.needs_input_grad
        gx = (g2 @ w).reshape(ctx.x_shape) if nx else None
        gw = g2.T @ x2 if nw else None
        gb = g2.sum(axis=0) if nb else None
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``. Shape: input (*, in), weight (out, in), bias (out,)."""
    if input.ndim == 0 or weight.ndim != 2:
        raise RuntimeError(
            f"linear: expected input (*, in_features) and weight (out, in), got "
            f"{tuple(input.shape)} and {tuple(weight.shape)}"
        )
    if input.shape[-1] != weight.shape[1]:
        raise RuntimeError(
            f"linear: input {tuple(input.shape)} has {input.shape[-1]} features but weight "
            f"{tuple(weight.shape)} expects {weight.shape[1]}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(
            f"linear: bias of shape {tuple(bias.shape)} does not match "
            f"{weight.shape[0]} output features"
        )
    x, w = promote(input, weight)
    if bias is not None and bias.array.dtype != w.array.dtype:
        bias = bias.to(w.dtype)
    return Linear.apply(x, w, bias)
