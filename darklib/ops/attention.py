"""Scaled dot-product attention, composed of darklib's differentiable ops (matmul, softmax,
where), so that its gradients, double-backward and GPU path come with them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.ops import elementwise as _E
from darklib.ops.dropout import dropout
from darklib.ops.linalg import matmul
from darklib.ops.reduction import amax, softmax
from darklib.ops.shape import repeat_interleave, transpose
from darklib.tensor import Tensor

__all__ = ["scaled_dot_product_attention"]


def _const(like: Tensor, arr: Any) -> Tensor:
    return Tensor._wrap(get_xp(like.array).asarray(arr))


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``, as torch's.

    Args:
        query: (..., L, E); key: (..., S, E); value: (..., S, Ev); leading dims broadcast.
        attn_mask: broadcastable to (..., L, S): a bool mask (True: take part in attention)
            or a float mask added to the scores (-inf excludes).
        dropout_p: dropout probability on the attention weights (always applied when > 0).
        is_causal: query i attends to keys 0..i (the mask aligned top-left, as torch); may
            not be combined with ``attn_mask``.
        scale: defaults to ``1 / sqrt(E)``.
        enable_gqa: grouped-query attention: key and value have fewer heads (dim -3),
            which must divide the query's; each is repeated to the query's count.

    A query whose every key is masked out gets a zero output (and zero gradients), as
    torch 2.13 on the CPU.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise InvalidType(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise InvalidValue(f"{op}: {name} must have at least 2 dimensions, got {t.shape}")
        if t.array.dtype.kind != "f":
            raise InvalidType(f"{op}: expected floating-point {name}, got {t.dtype}")
    q, k, v = query, key, value
    if not q.dtype == k.dtype == v.dtype:
        raise InvalidType(
            f"{op}: query, key and value must have the same dtype, got {q.dtype}, {k.dtype} "
            f"and {v.dtype}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise InvalidValue(
            f"{op}: query {tuple(q.shape)} and key {tuple(k.shape)} must have the same "
            "embedding size (last dimension)"
        )
    if k.shape[-2] != v.shape[-2]:
        raise InvalidValue(
            f"{op}: key {tuple(k.shape)} and value {tuple(v.shape)} must have the same "
            "sequence length (dimension -2)"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise InvalidValue(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise InvalidValue(f"{op}: an explicit attn_mask cannot be combined with is_causal=True")
    if enable_gqa and q.ndim >= 3:
        hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
        if hk == 0 or hv == 0 or hq % hk or hq % hv:
            raise InvalidValue(
                f"{op}: the number of heads in key ({hk}) and value ({hv}) must divide the "
                f"number of heads in query ({hq}) with enable_gqa=True"
            )
        if hk != hq:
            k = repeat_interleave(k, hq // hk, dim=-3)
        if hv != hq:
            v = repeat_interleave(v, hq // hv, dim=-3)
    lq, s = q.shape[-2], k.shape[-2]
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = matmul(q, transpose(k, -2, -1)) * factor
    xp = get_xp(q.array)
    if is_causal:
        scores = _E.where(_const(q, xp.tril(xp.ones((lq, s), dtype=bool))), scores, -math.inf)
    elif attn_mask is not None:
        m = attn_mask
        if not isinstance(m, Tensor):
            raise InvalidType(f"{op}: attn_mask must be a Tensor, got {type(m).__name__}")
        if type(m.array) is not type(q.array):
            raise RuntimeError(f"{op}: attn_mask is on {m.device} but query is on {q.device}")
        _E.check_broadcast(op, scores, m)
        if m.array.dtype == bool:
            scores = _E.where(m, scores, -math.inf)
        elif m.array.dtype == q.array.dtype or m.array.dtype == np.float32:
            scores = scores + m
        else:
            raise InvalidType(
                f"{op}: attn_mask must be bool, float32 or the query's dtype {q.dtype}, "
                f"got {m.dtype}"
            )
    # rows with every key masked out: zero weights (softmax alone would give NaN)
    empty = _E.eq(amax(scores.detach(), -1, keepdim=True), -math.inf)
    attn = softmax(_E.where(empty, 0.0, scores), -1)
    attn = _E.where(empty, 0.0, attn)
    if dropout_p > 0:
        attn = dropout(attn, dropout_p, training=True)
    return matmul(attn, v)
