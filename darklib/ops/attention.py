"""Scaled dot-product attention and multi-head attention's functional form, composed of
darklib's differentiable ops (linear, matmul, softmax, where, cat, pad), so that their
gradients, double-backward and GPU path come with them."""

from __future__ import annotations

import contextlib
import enum
import math
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.ops import elementwise as _E
from darklib.ops.dropout import dropout
from darklib.ops.linalg import linear, matmul
from darklib.ops.reduction import softmax
from darklib.ops.shape import cat, pad, repeat_interleave, transpose
from darklib.tensor import Tensor

__all__ = ["multi_head_attention_forward", "scaled_dot_product_attention"]


def _const(like: Tensor, arr: Any) -> Tensor:
    return Tensor._wrap(get_xp(like.array).asarray(arr))


# ------------------------------------------------------------------ kernel choice
# torch's sdpa_kernel picks among attention kernels; darklib has one, the math of torch's
# MATH kernel, standing in for the kernels torch has on the same device (MATH and
# FLASH_ATTENTION on the CPU; also EFFICIENT_ATTENTION and CUDNN_ATTENTION on CUDA). Inside
# ``with sdpa_kernel(backends):`` attention runs if one of those is allowed, and otherwise
# raises torch's "No viable backend" error, so code that pins a backend behaves as on torch.


class SDPBackend(enum.IntEnum):
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


_AVAILABLE = {
    "cpu": {SDPBackend.MATH, SDPBackend.FLASH_ATTENTION},
    "cuda": {
        SDPBackend.MATH,
        SDPBackend.FLASH_ATTENTION,
        SDPBackend.EFFICIENT_ATTENTION,
        SDPBackend.CUDNN_ATTENTION,
    },
}
_kernels = threading.local()  # .allowed: the innermost block's backends, or None (all)


@contextlib.contextmanager
def sdpa_kernel(
    backends: SDPBackend | Iterable[SDPBackend], set_priority: bool = False
) -> Iterator[None]:
    """Allow only ``backends`` for scaled_dot_product_attention inside the block."""
    chosen = [backends] if isinstance(backends, SDPBackend) else list(backends)
    if not all(isinstance(b, SDPBackend) for b in chosen):
        raise InvalidType(
            "sdpa_kernel: backends must be an instance of SDPBackend or a list of them, got "
            f"{backends!r}"
        )
    outer = getattr(_kernels, "allowed", None)
    _kernels.allowed = set(chosen)
    try:
        yield
    finally:
        _kernels.allowed = outer


def check_backend(device_type: str) -> None:
    """Raise torch's error where the innermost ``sdpa_kernel`` block allows no kernel that
    runs on ``device_type``."""
    allowed: Any = getattr(_kernels, "allowed", None)
    if allowed is not None and not allowed & _AVAILABLE[device_type]:
        raise RuntimeError(
            "No viable backend for scaled_dot_product_attention was found. This is likely due "
            "to turning off both the math kernel and the fused kernels (sdpa_kernel allows "
            f"{sorted(b.name for b in allowed)} only)."
        )


@autocasts("scaled_dot_product_attention")
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
    if getattr(_kernels, "allowed", None) is not None and isinstance(query, Tensor):
        check_backend(query.device.type)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise InvalidType(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise InvalidValue(
                f"{op}: {name} must have at least 2 dimensions, got {name} {tuple(t.shape)}"
            )
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
    e = q.shape[-1]  # (an empty embedding: zero scores, whatever the scale)
    factor = (1.0 / math.sqrt(e) if e else 1.0) if scale is None else float(scale)
    if q.array.dtype == np.float16 and factor > 0:
        # scaled before the product (by sqrt(scale) each, as torch): q @ k^T of float16
        # values in the hundreds overflows to inf, and the softmax then gives NaN
        root = math.sqrt(factor)
        scores = matmul(q * root, transpose(k * root, -2, -1))
    else:
        scores = matmul(q, transpose(k, -2, -1)) * factor
    xp = get_xp(q.array)
    dt = q.array.dtype
    # masks are added as 0 / -inf (one pass; a masked score's gradient is 0 either way,
    # its weight being 0)
    masked = attn_mask is not None
    if is_causal:
        causal = xp.where(xp.tril(xp.ones((lq, s), dtype=bool)), 0.0, -math.inf).astype(dt)
        scores = scores + _const(q, causal)  # (every query sees key 0: no row is empty)
    elif masked:
        m = attn_mask
        if not isinstance(m, Tensor):
            raise InvalidType(f"{op}: attn_mask must be a Tensor, got {type(m).__name__}")
        if type(m.array) is not type(q.array):
            raise RuntimeError(f"{op}: attn_mask is on {m.device} but query is on {q.device}")
        _E.check_broadcast(op, scores, m)
        try:
            fits = np.broadcast_shapes(tuple(scores.shape), tuple(m.shape)) == tuple(scores.shape)
        except ValueError:
            fits = False
        if not fits:
            raise InvalidValue(
                f"{op}: attn_mask {tuple(m.shape)} does not broadcast to the attention "
                f"scores {tuple(scores.shape)} of query {tuple(q.shape)} and key {tuple(k.shape)}"
            )
        if m.array.dtype == bool:
            scores = scores + _const(q, xp.where(m.array, 0.0, -math.inf).astype(dt))
        elif m.array.dtype == dt or m.array.dtype == np.float32:
            scores = scores + (m if m.array.dtype == dt else m.to(q.dtype))
        else:
            raise InvalidType(
                f"{op}: attn_mask must be bool, float32 or the query's dtype {q.dtype}, "
                f"got {m.dtype}"
            )
    if not masked:
        attn = softmax(scores, -1)
    else:
        # rows with every key masked out get zero weights (softmax alone gives NaN): their
        # scores are raised to 0 before it (a maximum with -inf elsewhere changes nothing)
        # and their weights multiplied by 0 after
        empty = xp.amax(scores.array, -1, keepdims=True) == -math.inf
        floor = _const(q, xp.where(empty, 0.0, -math.inf).astype(scores.array.dtype))
        keep = _const(q, (~empty).astype(scores.array.dtype))
        attn = softmax(_E.maximum(scores, floor), -1) * keep
    if dropout_p > 0:
        attn = dropout(attn, dropout_p, training=True)
    return matmul(attn, v)


def _mha_mask(mask: Any, name: str, query: Tensor, op: str) -> Tensor | None:
    """A bool mask (True: masked out) as a float mask of the query's dtype holding -inf
    where True and 0 elsewhere; a float mask as given (cast to the query's dtype)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise InvalidType(f"{op}: {name} must be a Tensor, got {type(mask).__name__}")
    if type(mask.array) is not type(query.array):
        raise RuntimeError(f"{op}: {name} is on {mask.device} but query is on {query.device}")
    kind = mask.array.dtype.kind
    if kind == "b":
        xp = get_xp(query.array)
        return _const(query, xp.where(mask.array, -math.inf, 0.0).astype(query.array.dtype))
    if kind != "f":
        raise InvalidType(
            f"{op}: only bool and floating-point {name} are supported, got {mask.dtype}"
        )
    return mask if mask.array.dtype == query.array.dtype else mask.to(query.dtype)


def _shape_of(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else f"a {type(x).__name__}"


def _mha_input_dims(
    op: str,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None,
    attn_mask: Tensor | None,
    num_heads: int,
) -> bool:
    """Check the ranks of the inputs and masks; True for batched (3-D) inputs."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise InvalidType(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.array.dtype.kind != "f":
            raise InvalidType(f"{op}: expected floating-point {name}, got {t.dtype}")
    shapes = f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
    if query.ndim not in (2, 3):
        raise InvalidValue(
            f"{op}: query must be unbatched 2-D (L, E) or batched 3-D (L, N, E), got {shapes}"
        )
    batched = query.ndim == 3
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise InvalidValue(
            f"{op}: for {query.ndim}-D query, key and value must be {query.ndim}-D too, got "
            f"{shapes}"
        )
    if key_padding_mask is not None:
        want = 2 if batched else 1
        if not isinstance(key_padding_mask, Tensor) or key_padding_mask.ndim != want:
            raise InvalidValue(
                f"{op}: for {query.ndim}-D query {tuple(query.shape)}, key_padding_mask must "
                f"be {want}-D ({'(N, S)' if batched else '(S,)'}), got "
                f"{_shape_of(key_padding_mask)}"
            )
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor) or attn_mask.ndim not in (2, 3):
            raise InvalidValue(
                f"{op}: attn_mask must be 2-D (L, S) or 3-D (N * num_heads, L, S), got "
                f"{_shape_of(attn_mask)}"
            )
        if not batched and attn_mask.ndim == 3:
            want3 = (num_heads, query.shape[0], key.shape[0])
            if tuple(attn_mask.shape) != want3:
                raise InvalidValue(
                    f"{op}: for unbatched query, a 3-D attn_mask must have shape (num_heads, "
                    f"L, S) = {want3}, got {tuple(attn_mask.shape)}"
                )
    return batched


def _mha_in_projection(
    op: str,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    separate: bool,
    q_proj_weight: Tensor | None,
    k_proj_weight: Tensor | None,
    v_proj_weight: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The query, key and value projections, each (*, embed_dim)."""
    e = embed_dim
    if in_proj_bias is not None and tuple(in_proj_bias.shape) != (3 * e,):
        raise InvalidValue(
            f"{op}: in_proj_bias must have shape (3 * embed_dim,) = ({3 * e},), got "
            f"{tuple(in_proj_bias.shape)}"
        )
    bq = bk = bv = None
    if in_proj_bias is not None:
        bq, bk, bv = in_proj_bias[:e], in_proj_bias[e : 2 * e], in_proj_bias[2 * e :]
    if separate:
        ws = (("q", q_proj_weight, query), ("k", k_proj_weight, key), ("v", v_proj_weight, value))
        for name, w, x in ws:
            if w is None or w.ndim != 2 or w.shape[0] != e or w.shape[1] != x.shape[-1]:
                got = None if w is None else tuple(w.shape)
                which = {"q": "query", "k": "key", "v": "value"}[name]
                raise InvalidValue(
                    f"{op}: {name}_proj_weight must have shape (embed_dim, {which} features) = "
                    f"({e}, {x.shape[-1]}) for {which} {tuple(x.shape)}, got {got}"
                )
        return (
            linear(query, q_proj_weight, bq),
            linear(key, k_proj_weight, bk),
            linear(value, v_proj_weight, bv),
        )
    if in_proj_weight is None or tuple(in_proj_weight.shape) != (3 * e, e):
        got = None if in_proj_weight is None else tuple(in_proj_weight.shape)
        raise InvalidValue(
            f"{op}: in_proj_weight must have shape (3 * embed_dim, embed_dim) = ({3 * e}, {e}), "
            f"got {got}"
        )
    for name, x in (("key", key), ("value", value)):
        if x.shape[-1] != e:
            raise InvalidValue(
                f"{op}: {name} {tuple(x.shape)} must have embed_dim={e} features (last "
                "dimension) with a packed in_proj_weight (use kdim/vdim for other sizes)"
            )
    if query is key and key is value:  # self-attention: one GEMM for the three
        qkv = linear(query, in_proj_weight, in_proj_bias)
        return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
    w = in_proj_weight
    return (
        linear(query, w[:e], bq),
        linear(key, w[e : 2 * e], bk),
        linear(value, w[2 * e :], bv),
    )


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention of sequence-first inputs, as torch's: the functional form of
    :class:`darklib.nn.MultiheadAttention`.

    Args:
        query: (L, N, E) or unbatched (L, E); key: (S, N, kdim) or (S, kdim); value:
            (S, N, vdim) or (S, vdim).
        embed_dim_to_check: E, which ``num_heads`` must divide.
        in_proj_weight: (3E, E) packed q/k/v projection (unless
            ``use_separate_proj_weight``, then ``q/k/v_proj_weight`` of (E, E), (E, kdim),
            (E, vdim)); in_proj_bias: (3E,) or None.
        bias_k, bias_v: (1, 1, E) appended to the keys and values, or None.
        add_zero_attn: append a zero key and value (after the projections).
        dropout_p: dropout on the attention weights, applied only when ``training``.
        out_proj_weight, out_proj_bias: the output projection (E, E) and (E,).
        key_padding_mask: (N, S) or (S,): bool (True: ignore that key) or float (added).
        need_weights: also return the attention weights (else None, and the attention
            runs through :func:`scaled_dot_product_attention`).
        attn_mask: (L, S) or (N * num_heads, L, S): bool (True: not allowed) or float
            (added to the scores).
        static_k, static_v: (N * num_heads, S, E / num_heads) keys and values used
            instead of the projected ones.
        average_attn_weights: average the returned weights over the heads.
        is_causal: a hint that ``attn_mask`` is the causal mask (which must be given).

    Returns:
        ``(attn_output, attn_weights)``: (L, N, E) (or (L, E)), and (N, L, S) averaged,
        (N, num_heads, L, S) per head (without the N for unbatched input), or None.

    A query whose keys are all masked out gets NaN weights (and output) where weights are
    needed, and a zero attention output where not, as torch 2.13.
    """
    op = "multi_head_attention_forward"
    batched = _mha_input_dims(op, query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        same_qk, same_kv = query is key, key is value
        query = query.unsqueeze(1)
        key = query if same_qk else key.unsqueeze(1)
        value = key if same_kv else value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise InvalidValue(
            f"{op}: query {tuple(query.shape)} has {embed_dim} features (last dimension), "
            f"expected embed_dim={embed_dim_to_check}"
        )
    if num_heads < 1 or embed_dim % num_heads:
        raise InvalidValue(
            f"{op}: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
        )
    if key.shape[1] != bsz or value.shape[1] != bsz or value.shape[0] != src_len:
        raise InvalidValue(
            f"{op}: query {tuple(query.shape)}, key {tuple(key.shape)} and value "
            f"{tuple(value.shape)} must share the batch size (dim 1 of (L, N, E)) and key "
            "and value the sequence length (dim 0)"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise InvalidValue(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    key_padding_mask = _mha_mask(key_padding_mask, "key_padding_mask", query, op)
    if is_causal and attn_mask is None:
        raise InvalidValue(
            f"{op}: is_causal=True is a hint that needs the causal attn_mask too; build it "
            "with nn.Transformer.generate_square_subsequent_mask(L)"
        )
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint stands for the mask: SDPA's causal path
    else:
        attn_mask = _mha_mask(attn_mask, "attn_mask", query, op)
        is_causal = False  # the mask is used as given (merged with the padding mask)
    heads, head_dim = num_heads, embed_dim // num_heads
    q, k, v = _mha_in_projection(
        op,
        query,
        key,
        value,
        embed_dim,
        in_proj_weight,
        in_proj_bias,
        use_separate_proj_weight,
        q_proj_weight,
        k_proj_weight,
        v_proj_weight,
    )
    if attn_mask is not None:
        want = (tgt_len, src_len) if attn_mask.ndim == 2 else (bsz * heads, tgt_len, src_len)
        if tuple(attn_mask.shape) != want:
            what = "(L, S)" if attn_mask.ndim == 2 else "(N * num_heads, L, S)"
            raise InvalidValue(
                f"{op}: the {attn_mask.ndim}-D attn_mask has shape {tuple(attn_mask.shape)}, "
                f"expected {what} = {want} for query {tuple(query.shape)} and key "
                f"{tuple(key.shape)} with {heads} heads"
            )
        # (L, S) -> (1, 1, L, S); (N * H, L, S) -> (N, H, L, S)
        lead = (1, 1) if attn_mask.ndim == 2 else (bsz, heads)
        attn_mask = attn_mask.reshape(*lead, *want[-2:])
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise InvalidValue(f"{op}: bias_k/bias_v cannot be added to static_k/static_v")
        for name, b in (("bias_k", bias_k), ("bias_v", bias_v)):
            if tuple(b.shape) != (1, 1, embed_dim):
                raise InvalidValue(
                    f"{op}: {name} must have shape (1, 1, embed_dim) = (1, 1, {embed_dim}), "
                    f"got {tuple(b.shape)}"
                )
        k = cat([k, bias_k.expand(1, bsz, embed_dim)], 0)
        v = cat([v, bias_v.expand(1, bsz, embed_dim)], 0)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    elif bias_k is not None or bias_v is not None:
        raise InvalidValue(f"{op}: bias_k and bias_v must be given together")
    # (L, N, E) -> (N, H, L, D): the heads become a batch dimension of the matmuls
    q = q.reshape(tgt_len, bsz, heads, head_dim).permute(1, 2, 0, 3)
    k = _mha_heads(op, "static_k", k, static_k, bsz, heads, head_dim)
    v = _mha_heads(op, "static_v", v, static_v, bsz, heads, head_dim)
    if k.shape[2] != v.shape[2]:
        raise InvalidValue(
            f"{op}: {k.shape[2]} keys but {v.shape[2]} values (static_k/static_v, key "
            f"{tuple(key.shape)}, value {tuple(value.shape)}): each key needs a value"
        )
    if attn_mask is not None and attn_mask.ndim and attn_mask.shape[-1] not in (1, k.shape[2]):
        raise InvalidValue(
            f"{op}: attn_mask {tuple(attn_mask.shape)} does not match the {k.shape[2]} keys"
        )
    if add_zero_attn:
        xp = get_xp(q.array)
        zero = _const(q, xp.zeros((bsz, heads, 1, head_dim), dtype=q.array.dtype))
        k, v = cat([k, zero], 2), cat([v, zero], 2)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    keys = k.shape[2]
    mask = attn_mask
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, keys):
            raise InvalidValue(
                f"{op}: key_padding_mask has shape {tuple(key_padding_mask.shape)}, expected "
                f"(N, S) = {(bsz, keys)} for key {tuple(key.shape)}"
            )
        kpm = key_padding_mask.reshape(bsz, 1, 1, keys)
        mask = kpm if mask is None else mask + kpm
    if not training:
        dropout_p = 0.0
    if need_weights:
        scores = matmul(q * (1.0 / math.sqrt(head_dim)), transpose(k, -2, -1))
        if mask is not None:
            scores = scores + mask
        weights = softmax(scores, -1)
        if dropout_p > 0:
            weights = dropout(weights, dropout_p, training=True)
        out = matmul(weights, v)
    else:
        weights = None
        out = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal)
    # (N, H, L, D) -> (L, N, E)
    out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias)
    if weights is not None and average_attn_weights:
        weights = weights.mean(1)
    if not batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


def _mha_heads(
    op: str,
    name: str,
    x: Tensor,
    static: Tensor | None,
    bsz: int,
    heads: int,
    head_dim: int,
) -> Tensor:
    """Projected keys or values (S, N, E) as (N, H, S, D), or ``static`` (N * H, S, D) so."""
    if static is None:
        return x.reshape(x.shape[0], bsz, heads, head_dim).permute(1, 2, 0, 3)
    if static.ndim != 3 or static.shape[0] != bsz * heads or static.shape[2] != head_dim:
        raise InvalidValue(
            f"{op}: {name} must have shape (N * num_heads, S, head_dim) = ({bsz * heads}, S, "
            f"{head_dim}), got {tuple(static.shape)}"
        )
    return static.reshape(bsz, heads, static.shape[1], head_dim)
