"""``nn.utils``: gradient clipping and flattening parameters to one vector; ``nn.utils.rnn``
holds the packed and padded sequences of the recurrent layers, ``parametrize`` and
``parametrizations`` the parametrizations (weight_norm, spectral_norm, orthogonal),
``fusion`` the conv/linear + batch norm folding; the legacy hook-based weight_norm and
spectral_norm are here too, as in torch."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.backend import get_xp, to_device
from darklib.errors import InvalidType, InvalidValue
from darklib.nn.utils import parametrizations as parametrizations
from darklib.nn.utils import parametrize as parametrize
from darklib.nn.utils import prune as prune
from darklib.nn.utils import rnn as rnn
from darklib.nn.utils import stateless as stateless
from darklib.nn.utils.fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from darklib.nn.utils.legacy_norms import (
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)
from darklib.ops.shape import cat, reshape
from darklib.tensor import Tensor

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "parametrizations",
    "parametrize",
    "remove_spectral_norm",
    "remove_weight_norm",
    "rnn",
    "spectral_norm",
    "stateless",
    "weight_norm",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _as_list(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _norm_of(arr: Any, norm_type: float) -> Any:
    """The ``norm_type``-norm of a whole array, in its own dtype (half precision sums in
    float32, as torch's: 1,000 gradients of 100 overflow a float16 sum of squares)."""
    xp = get_xp(arr)
    if arr.dtype.itemsize < 4:
        return _norm_of(arr.astype(np.float32), norm_type).astype(arr.dtype)
    a = arr.ravel()
    if norm_type == math.inf:
        return xp.abs(a).max() if a.size else xp.zeros((), a.dtype)
    if norm_type == -math.inf:
        return xp.abs(a).min() if a.size else xp.zeros((), a.dtype)
    if norm_type == 2.0:
        return xp.sqrt(xp.dot(a, a))
    if norm_type == 1.0:
        return xp.abs(a).sum()
    if norm_type == 0:
        return (a != 0).sum().astype(a.dtype)
    return (xp.abs(a) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of the norms of ``tensors``: the norm of all their values concatenated.

    Args:
        tensors: the tensors (or one tensor); None entries are skipped.
        norm_type: the p of the p-norm; ``float('inf')`` for the max norm. Default: 2.0.
        error_if_nonfinite: raise if the total norm is nan or inf.
        foreach: accepted for torch's signature (darklib has one implementation).
    """
    tensors = [t for t in _as_list(tensors) if t is not None]
    try:
        norm_type = float(norm_type)
    except (TypeError, ValueError):
        raise InvalidValue(
            f"clip_grad_norm_/get_total_norm: norm_type must be a number (float('inf') for "
            f"the max norm), got {norm_type!r}"
        ) from None
    if not tensors:
        return Tensor._wrap(np.zeros((), np.float32))
    dev = tensors[0].device
    with np.errstate(all="ignore"):  # huge or inf gradients give an inf norm silently, as torch
        norms = [to_device(_norm_of(t.array, norm_type), dev) for t in tensors]
        xp = get_xp(tensors[0].array)
        dtype = np.result_type(*[n.dtype for n in norms])
        stacked = xp.stack([n.astype(dtype) for n in norms])
        total = _norm_of(stacked, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor._wrap(xp.asarray(total))


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scale the gradients of ``parameters`` so that their total norm is at most ``max_norm``.

    The norm is computed over all gradients together, as if concatenated into one vector;
    gradients are multiplied in place by ``min(1, max_norm / (total_norm + 1e-6))``.

    Args:
        parameters: tensors (or one tensor) whose ``.grad`` is clipped.
        max_norm: the largest allowed total norm.
        norm_type: the p of the p-norm; ``float('inf')`` for the max norm. Default: 2.0.
        error_if_nonfinite: raise if the total norm is nan or inf.

    Returns:
        The total norm of the gradients before clipping (a 0-d tensor).
    """
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Scale the gradients of ``parameters`` by ``min(1, max_norm / (total_norm + 1e-6))``
    in place, given their total norm (from :func:`get_total_norm`), as torch's: with
    :func:`get_total_norm` it splits :func:`clip_grad_norm_` in two.

    Args:
        parameters: tensors (or one tensor) whose ``.grad`` is scaled.
        max_norm: the largest allowed total norm.
        total_norm: the total norm of the gradients (a tensor or a number).
        foreach: accepted for torch's signature (darklib has one implementation).
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm.array if isinstance(total_norm, Tensor) else float(total_norm)
    xp = get_xp(total)
    with np.errstate(all="ignore"):  # a NaN or inf norm spreads silently, as in torch
        coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
        on: dict = {}  # the factor once per (device, dtype), not copied per gradient
        for g in grads:
            key = (str(g.device), g.array.dtype)
            if key not in on:
                on[key] = to_device(xp.asarray(coef), g.device).astype(g.array.dtype)
            g.array *= on[key]
            g._version += 1


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient of ``parameters`` into ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            g = p.grad.array
            bound = _dt.fill_value(clip_value, g.dtype, "clip_grad_value_")  # torch's range check
            get_xp(g).clip(g, -bound, bound, out=g)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All ``parameters`` flattened and concatenated into one 1-D tensor (differentiable)."""
    params = _as_list(parameters)
    if not params:
        raise InvalidValue("parameters_to_vector: no parameters given")
    dev = params[0].device
    for p in params:
        if p.device != dev:
            raise InvalidType(
                f"parameters_to_vector: parameters are on different devices ({dev} and {p.device})"
            )
    return cat([reshape(p, -1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy the consecutive slices of the 1-D ``vec`` into ``parameters`` (in place); as
    torch, ``vec`` may be longer than the parameters (the rest is ignored)."""
    if not isinstance(vec, Tensor):
        raise InvalidType(
            f"vector_to_parameters: expected vec to be a Tensor, got {type(vec).__name__}"
        )
    if vec.ndim != 1:
        raise InvalidValue(f"vector_to_parameters: vec must be 1-D, got {tuple(vec.shape)}")
    params = _as_list(parameters)
    need = sum(p.numel() for p in params)
    if vec.numel() < need:  # a longer vec is fine: its tail is unused, as in torch
        raise InvalidValue(
            f"vector_to_parameters: vec has {vec.numel()} elements but the parameters hold {need}"
        )
    src = vec.array
    offset = 0
    for p in params:
        n = p.numel()
        p.array[...] = to_device(src[offset : offset + n], p.device).reshape(p.array.shape)
        p._version += 1
        offset += n
