"""Dropout: elementwise, channel-wise (dropout1d/2d/3d) and alpha dropout.

Masks come from darklib's default generator (``dl.manual_seed`` makes them reproducible)
and are drawn on the input's device. The kept elements are scaled by ``1 / (1 - p)`` in the
mask itself, so forward and backward are each one multiplication.
"""

from __future__ import annotations

import warnings
from typing import Any

from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.random import default_generator
from darklib.tensor import Tensor

# SELU's negative saturation value, -scale * alpha: where alpha dropout sends dropped units
_ALPHA_PRIME = 1.7580993408473766


class MaskMul(Function):
    """``x * mask (+ shift)``; the gradient is ``g * mask``. mask and shift are raw arrays."""

    @staticmethod
    def forward(ctx, x, mask, shift):
        ctx.save_for_backward(mask)
        out = x * mask
        if shift is not None:
            out += shift
        return out

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return (g * mask if ctx.needs_input_grad[0] else None), None, None

    @staticmethod
    def backward_graph(ctx, g):
        (mask,) = ctx.saved_tensors
        return (g * Tensor._wrap(mask) if ctx.needs_input_grad[0] else None), None, None


def _check(input: Any, p: float, op: str) -> Tensor:
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    if not 0.0 <= p <= 1.0:
        raise InvalidValue(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    if input.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: expected a floating-point input, got {input.dtype}; convert it with .float()"
        )
    return input


def _keep_mask(x: Tensor, p: float, shape: tuple) -> Any:
    """A mask of ``shape`` holding 1/(1-p) where kept (probability 1-p) and 0 where dropped."""
    arr = x.array
    xp = get_xp(arr)
    if p >= 1.0:
        return xp.zeros(shape, dtype=arr.dtype)
    keep = 1.0 - p
    mask = default_generator.sample("bernoulli", xp, shape, arr.dtype, p=keep)
    mask *= arr.dtype.type(1.0 / keep)
    return mask


def _apply(x: Tensor, mask: Any, shift: Any, inplace: bool, op: str) -> Tensor:
    if not inplace:
        return MaskMul.apply(x, mask, shift)
    return x._inplace(op + "_", lambda t: MaskMul.apply(t, mask, shift))


def _feature_shape(x: Tensor, batched: bool) -> tuple:
    """Mask shape for channel-wise dropout: one draw per (sample, channel)."""
    s = tuple(x.shape)
    if batched:
        return s[:2] + (1,) * (len(s) - 2)
    return s[:1] + (1,) * (len(s) - 1)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    With ``training=False`` or ``p=0`` the input itself is returned.

    Args:
        input: any shape, floating point.
        p: probability of an element to be zeroed.
        training: apply dropout only when True.
        inplace: overwrite ``input`` with the result.
    """
    x = _check(input, p, "dropout")
    if not training or p == 0:
        return x
    return _apply(x, _keep_mask(x, p, tuple(x.shape)), None, inplace, "dropout")


def _feature_dropout(
    input: Tensor, p: float, training: bool, inplace: bool, op: str, batched: bool
) -> Tensor:
    x = _check(input, p, op)
    if not training or p == 0:
        return x
    if x.ndim < 2:
        raise RuntimeError(f"{op}: expected an input with a channel dimension, got {x.shape}")
    return _apply(x, _keep_mask(x, p, _feature_shape(x, batched)), None, inplace, op)


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability ``p``."""
    nd = _check(input, p, "dropout1d").ndim
    if nd not in (2, 3):
        raise RuntimeError(
            f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape "
            f"{tuple(input.shape)}"
        )
    return _feature_dropout(input, p, training, inplace, "dropout1d", batched=nd == 3)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, H, W) inputs with probability ``p``.

    As in PyTorch, a 3-D input is read as (N, C, L) (channel-wise 1-D dropout), with a
    warning; use dropout1d for that.
    """
    nd = _check(input, p, "dropout2d").ndim
    if nd == 3:
        warnings.warn(
            "dropout2d: received a 3-D input; it is read as (N, C, L) and whole channels of "
            "each sample are dropped (as PyTorch does). Use dropout1d for that, or add a "
            "batch dimension to a (C, H, W) input.",
            stacklevel=2,
        )
    elif nd != 4:
        warnings.warn(
            f"dropout2d: received a {nd}-D input; dropout2d expects (N, C, H, W). Channels "
            "(axis 1) are dropped.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, inplace, "dropout2d", batched=True)


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability ``p``."""
    nd = _check(input, p, "dropout3d").ndim
    if nd not in (4, 5):
        warnings.warn(
            f"dropout3d: received a {nd}-D input; dropout3d expects (N, C, D, H, W) or "
            "(C, D, H, W). Channels (axis 1) are dropped.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, inplace, "dropout3d", batched=nd != 4)


def _alpha(
    input: Tensor, p: float, training: bool, inplace: bool, op: str, feature: bool
) -> Tensor:
    x = _check(input, p, op)
    if not training or p == 0:
        return x
    if feature and x.ndim < 2:
        raise RuntimeError(f"{op}: expected an input with a channel dimension, got {x.shape}")
    arr = x.array
    xp = get_xp(arr)
    shape = _feature_shape(x, True) if feature else tuple(x.shape)
    if p >= 1.0:
        return _apply(x, xp.zeros(shape, arr.dtype), None, inplace, op)
    # Dropped units go to SELU's saturation value, then an affine map a*y + b restores
    # zero mean and unit variance (Klambauer et al., 2017).
    keep = default_generator.sample("bernoulli", xp, shape, arr.dtype, p=1.0 - p)
    a = (1.0 - p) * (1.0 + p * _ALPHA_PRIME**2)
    a = a**-0.5
    shift = (keep - 1) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    keep *= arr.dtype.type(a)
    return _apply(x, keep, shift.astype(arr.dtype, copy=False), inplace, op)


def alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Dropout for SELU networks: keeps zero mean and unit variance of the activations.

    Note PyTorch's default ``training=False`` here.
    """
    return _alpha(input, p, training, inplace, "alpha_dropout", feature=False)


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Alpha dropout of whole channels (axis 1)."""
    return _alpha(input, p, training, inplace, "feature_alpha_dropout", feature=True)
