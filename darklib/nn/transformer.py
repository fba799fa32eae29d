"""Attention and transformer layers: MultiheadAttention, TransformerEncoderLayer,
TransformerEncoder, TransformerDecoderLayer, TransformerDecoder and Transformer.

Parameter names, shapes, initialisation and submodule names are torch's, so a torch
state_dict loads as is. Everything is composed of darklib's differentiable ops (the
attention itself is :func:`darklib.ops.attention.multi_head_attention_forward`), so the
gradients and the GPU path come with them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from darklib.amp.autocast_mode import is_autocast_enabled
from darklib.creation import full
from darklib.errors import InvalidType, InvalidValue
from darklib.grad_mode import is_grad_enabled
from darklib.nn import functional as F
from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int
from darklib.nn.activation import GELU, ReLU
from darklib.nn.containers import ModuleList
from darklib.nn.dropout import Dropout
from darklib.nn.linear import Linear, NonDynamicallyQuantizableLinear
from darklib.nn.module import Module
from darklib.nn.normalization import LayerNorm
from darklib.ops.attention import multi_head_attention_forward
from darklib.ops.shape import triu
from darklib.tensor import Tensor

__all__ = [
    "MultiheadAttention",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]


def _probability(p: Any, owner: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
        raise InvalidValue(f"{owner}: dropout probability has to be between 0 and 1, got {p!r}")
    return float(p)


class MultiheadAttention(Module):
    """Attention of a query sequence over key/value sequences with ``num_heads`` heads:
    ``out_proj(concat_h(softmax(Q_h K_h^T / sqrt(d) + mask) V_h))``.

    Args:
        embed_dim: E, the model dimension (split over the heads).
        num_heads: number of heads; must divide ``embed_dim``.
        dropout: dropout on the attention weights in training mode. Default: 0.0.
        bias: learn the input and output projection biases. Default: ``True``.
        add_bias_kv: learn a bias key and value (``bias_k``, ``bias_v``) appended to the
            keys and values. Default: ``False``.
        add_zero_attn: append a zero key and value. Default: ``False``.
        kdim, vdim: feature sizes of key and value (default ``embed_dim``); when either
            differs, the projections are separate (``q/k/v_proj_weight``) instead of the
            packed ``in_proj_weight``.
        batch_first: inputs and output are (N, L, E) instead of (L, N, E).

    Shape:
        - query: (L, N, E), (N, L, E) with ``batch_first``, or unbatched (L, E)
        - key: (S, N, kdim) / (N, S, kdim) / (S, kdim); value likewise with vdim
        - key_padding_mask: (N, S) or (S,): bool (True: ignore that key) or float (added)
        - attn_mask: (L, S) or (N * num_heads, L, S): bool (True: not allowed) or float
        - attn_output: like query; attn_weights: (N, L, S) averaged over the heads, or
          (N, num_heads, L, S) with ``average_attn_weights=False`` (no N if unbatched)

    Attributes:
        in_proj_weight: (3E, E), Xavier-uniform (or q_proj_weight (E, E), k_proj_weight
            (E, kdim), v_proj_weight (E, vdim)); in_proj_bias: (3E,), zeros;
        out_proj: Linear(E, E) with a zero bias; bias_k, bias_v: (1, 1, E), Xavier-normal.

    Example::

        >>> mha = nn.MultiheadAttention(64, 8, batch_first=True)
        >>> x = dl.randn(2, 10, 64)
        >>> out, w = mha(x, x, x)
        >>> out.shape, w.shape
        ((2, 10, 64), (2, 10, 10))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        who = "MultiheadAttention"
        positive_int(embed_dim, "embed_dim", who)
        positive_int(num_heads, "num_heads", who)
        if embed_dim % num_heads:
            raise InvalidValue(
                f"{who}: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else positive_int(kdim, "kdim", who)
        self.vdim = embed_dim if vdim is None else positive_int(vdim, "vdim", who)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = _probability(dropout, who)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        e = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = new_param((3 * e, e), device, dtype)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = new_param((e, e), device, dtype)
            self.k_proj_weight = new_param((e, self.kdim), device, dtype)
            self.v_proj_weight = new_param((e, self.vdim), device, dtype)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = new_param((3 * e,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(e, e, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = new_param((1, 1, e), device, dtype)
            self.bias_v = new_param((1, 1, e), device, dtype)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend ``query`` over ``key``/``value``; returns ``(attn_output, attn_weights)``
        (weights None unless ``need_weights``). ``is_causal`` is a hint that ``attn_mask``
        is the causal mask, which must be given too (as torch)."""
        for t in (query, key, value):
            check_tensor(self, t)
        if not need_weights and self._torch_fast_path(
            query, key, value, attn_mask, key_padding_mask
        ):
            # torch's inference fast path (native attention) gives a query whose keys are
            # all masked out NaN outputs where its SDPA path gives zeros: computing the
            # weights, which are NaN there, gives the same
            return self._forward(
                query,
                key,
                value,
                key_padding_mask,
                True,
                attn_mask,
                average_attn_weights,
                is_causal,
            )[0], None
        return self._forward(
            query,
            key,
            value,
            key_padding_mask,
            need_weights,
            attn_mask,
            average_attn_weights,
            is_causal,
        )

    def _torch_fast_path(
        self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Any, key_padding_mask: Any
    ) -> bool:
        """Whether torch would run this call through its native inference fast path:
        batched self-attention in eval mode with batch_first, an even head count, packed
        projections with biases, no bias_k/bias_v or zero attention, bool masks only, no
        autocast, and no gradient to record."""
        masks = [m for m in (attn_mask, key_padding_mask) if isinstance(m, Tensor)]
        if (
            self.training
            or query.ndim != 3
            or not (query is key and key is value)
            or not self.batch_first
            or self.num_heads % 2
            or self.in_proj_weight is None
            or self.in_proj_bias is None
            or self.bias_k is not None
            or self.add_zero_attn
            or query.dtype != self.in_proj_weight.dtype
            or any(m.array.dtype.kind == "f" for m in masks)
            or is_autocast_enabled()
        ):
            return False
        params = (self.in_proj_weight, self.in_proj_bias, self.out_proj.weight, self.out_proj.bias)
        tensors = (query, *params)
        return not (is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors))

    def _forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None,
        need_weights: bool,
        attn_mask: Tensor | None,
        average_attn_weights: bool,
        is_causal: bool,
    ) -> tuple[Tensor, Tensor | None]:
        batched = query.ndim == 3
        if batched and self.batch_first and key.ndim == 3 and value.ndim == 3:
            if not query.shape[0] == key.shape[0] == value.shape[0] or (
                key.shape[1] != value.shape[1]
            ):
                raise InvalidValue(
                    f"{self._get_name()}: query {tuple(query.shape)}, key {tuple(key.shape)} "
                    f"and value {tuple(value.shape)} must have the same batch size (dim 0 "
                    "with batch_first=True), and key and value the same length (dim 1)"
                )
            # keep the identities (self-attention projects q, k, v in one GEMM)
            same_qk, same_kv = query is key, key is value
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        out, weights = multi_head_attention_forward(
            query,
            key,
            value,
            self.embed_dim,
            self.num_heads,
            self.in_proj_weight,
            self.in_proj_bias,
            self.bias_k,
            self.bias_v,
            self.add_zero_attn,
            self.dropout,
            self.out_proj.weight,
            self.out_proj.bias,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


def _activation(activation: Any, owner: str) -> Callable[[Tensor], Tensor]:
    """'relu' / 'gelu' as the functional; a callable (function or module) as given."""
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise InvalidValue(f"{owner}: activation should be 'relu' or 'gelu', not {activation!r}")
    if not callable(activation):
        raise InvalidType(
            f"{owner}: activation must be 'relu', 'gelu' or a callable, got "
            f"{type(activation).__name__}"
        )
    return activation


def _clones(layer: Module, n: int, owner: str) -> ModuleList:
    positive_int(n, "num_layers", owner, allow_zero=True)
    return ModuleList([copy.deepcopy(layer) for _ in range(n)])


def _attend(
    attn: Module,
    drop: Module,
    x: Tensor,
    kv: Tensor,
    mask: Tensor | None,
    padding: Tensor | None,
    is_causal: bool,
    nan_rows: bool = False,
) -> Tensor:
    """A transformer layer's attention block: ``x`` attending over ``kv``, then dropout.
    ``nan_rows``: a query whose keys are all masked out gives NaN (the weights' path), as
    in torch's native inference path, instead of zeros."""
    out = attn(
        x,
        kv,
        kv,
        attn_mask=mask,
        key_padding_mask=padding,
        need_weights=nan_rows,
        is_causal=is_causal,
    )[0]
    return drop(out)


def _feed_forward(layer: Module, drop: Module, x: Tensor) -> Tensor:
    """A transformer layer's feed-forward block (its linear1, activation, dropout and
    linear2), then ``drop``."""
    return drop(layer.linear2(layer.dropout(layer.activation(layer.linear1(x)))))


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and a
    layer norm (after the residual sum, or before the block with ``norm_first``).

    Args:
        d_model: feature size E of the input.
        nhead: number of attention heads.
        dim_feedforward: hidden size of the feed-forward block. Default: 2048.
        dropout: dropout on the attention weights and after each block. Default: 0.1.
        activation: 'relu', 'gelu' or a callable. Default: relu.
        layer_norm_eps: the layer norms' eps. Default: 1e-5.
        batch_first: (N, L, E) instead of (L, N, E). Default: ``False``.
        norm_first: pre-norm (norm, block, residual) instead of post-norm. Default: ``False``.
        bias: biases in the linear layers and layer norms. Default: ``True``.

    Shape:
        - src: (L, N, E), (N, L, E) with ``batch_first``, or unbatched (L, E); output alike.
        - src_mask: (L, L) or (N * nhead, L, L); src_key_padding_mask: (N, L) or (L,).

    Example::

        >>> layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, batch_first=True)
        >>> layer(dl.randn(2, 10, 32)).shape
        (2, 10, 32)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = F.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        dropout = _probability(dropout, who)
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation, who)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src``; ``is_causal`` is a hint that ``src_mask`` is the causal mask."""
        x = check_tensor(self, src)
        native = self._torch_fast_path(x)
        if self.norm_first:
            x = x + self._sa_block(
                self.norm1(x), src_mask, src_key_padding_mask, is_causal, nan_rows=native
            )
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(
                x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal, nan_rows=native)
            )
            x = self.norm2(x + self._ff_block(x))
        return x

    def _torch_fast_path(self, src: Tensor) -> bool:
        """Whether torch would run this layer as its one native inference kernel, where a
        query whose keys are all masked out gives NaN (its attention path gives zeros):
        eval mode, batched batch-first input, projection biases, a ReLU or GELU
        activation, equal layer-norm eps, an even head count, no hooks, no autocast and
        no gradient to record."""
        attn = self.self_attn
        if (
            self.training
            or src.ndim != 3
            or not _native_layer(self)
            or is_autocast_enabled()
            or any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())
        ):
            return False
        params = [attn.in_proj_weight, attn.in_proj_bias, *attn.out_proj.parameters()]
        for m in (self.norm1, self.norm2, self.linear1, self.linear2):
            params += m.parameters()
        return not (is_grad_enabled() and any(t.requires_grad for t in (src, *params)))

    def _sa_block(
        self,
        x: Tensor,
        mask: Tensor | None,
        padding: Tensor | None,
        is_causal: bool,
        *,
        nan_rows: bool = False,
    ) -> Tensor:
        return _attend(self.self_attn, self.dropout1, x, x, mask, padding, is_causal, nan_rows)

    def _ff_block(self, x: Tensor) -> Tensor:
        return _feed_forward(self, self.dropout2, x)


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's output (``memory``) and a feed-forward
    block, each with a residual connection and a layer norm (post- or pre-norm).

    Args: as :class:`TransformerEncoderLayer`.

    Shape:
        - tgt: (T, N, E), (N, T, E) with ``batch_first``, or (T, E); output alike.
        - memory: (S, N, E), (N, S, E) or (S, E).
        - tgt_mask: (T, T) or (N * nhead, T, T); memory_mask: (T, S) or (N * nhead, T, S);
          tgt_key_padding_mask: (N, T); memory_key_padding_mask: (N, S).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = F.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        dropout = _probability(dropout, who)
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation, who)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Decode ``tgt`` attending over ``memory``; the ``*_is_causal`` flags are hints
        that the matching mask is the causal mask."""
        x = check_tensor(self, tgt)
        check_tensor(self, memory)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(
                self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(
                x
                + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            )
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: Tensor, mask: Tensor | None, padding: Tensor | None, is_causal: bool
    ) -> Tensor:
        return _attend(self.self_attn, self.dropout1, x, x, mask, padding, is_causal)

    def _mha_block(
        self,
        x: Tensor,
        mem: Tensor,
        mask: Tensor | None,
        padding: Tensor | None,
        is_causal: bool,
    ) -> Tensor:
        return _attend(self.multihead_attn, self.dropout2, x, mem, mask, padding, is_causal)

    def _ff_block(self, x: Tensor) -> Tensor:
        return _feed_forward(self, self.dropout3, x)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (``layers.0`` ...), then
    ``norm`` if given.

    Args:
        encoder_layer: a :class:`TransformerEncoderLayer` (deep-copied per layer).
        num_layers: number of layers.
        norm: an optional final layer (e.g. LayerNorm).
        enable_nested_tensor, mask_check: torch's sparsity fast path. darklib has no
            nested tensors: padded positions are computed (masked out of the attention)
            rather than skipped, but where torch would take that path (inference, a
            right-padded ``src_key_padding_mask``, a qualifying layer) their outputs are
            zeroed as torch's are (``use_nested_tensor`` says whether the layer qualifies).
    """

    def __init__(
        self,
        encoder_layer: Module,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise InvalidType(
                f"TransformerEncoder: encoder_layer must be a Module, got "
                f"{type(encoder_layer).__name__}"
            )
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor and _sparsity_layer(encoder_layer)
        self.mask_check = mask_check

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        """Run ``src`` through every layer with the same masks. ``is_causal=True`` is a
        hint that ``mask`` is the causal mask; None or False use ``mask`` as given (the
        same result when it is causal, without torch's check of its values)."""
        out = check_tensor(self, src)
        padded = self._nested_padding(out, mask, src_key_padding_mask)
        for layer in self.layers:
            out = layer(
                out,
                src_mask=mask,
                is_causal=bool(is_causal),
                src_key_padding_mask=src_key_padding_mask,
            )
        if self.norm is not None:
            out = self.norm(out)
        if padded is not None:  # torch's nested tensor padded back with zeros
            out = out.masked_fill(Tensor._wrap(padded[..., None]), 0.0)
        return out

    def _nested_padding(self, src: Tensor, mask: Any, padding: Any) -> Any:
        """The (N, S) array of padded positions whose outputs torch's sparsity fast path
        (nested tensors) gives as zeros, or None where torch would not take it: inference
        of batched input without grad, a key padding mask that pads on the right and no
        attention mask, and no autocast."""
        if (
            not self.use_nested_tensor
            or not self.layers
            or self.layers[0].training
            or src.ndim != 3
            or not isinstance(padding, Tensor)
            or mask is not None
            or is_autocast_enabled()
        ):
            return None
        first = self.layers[0]
        params = [
            p
            for m in (first.self_attn, first.norm1, first.norm2, first.linear1, first.linear2)
            for p in m.parameters(recurse=False)
        ]
        params += first.self_attn.out_proj.parameters()
        if is_grad_enabled() and any(t.requires_grad for t in (src, *params)):
            return None
        padded = padding.array != 0  # (a float mask: its nonzero entries, as torch reads it)
        if self.mask_check and bool((padded[:, :-1] & ~padded[:, 1:]).any()):
            return None  # (not left-aligned: torch keeps the padded path)
        return padded


def _sparsity_layer(layer: Any) -> bool:
    """Whether torch's TransformerEncoder would use nested tensors with copies of
    ``layer``: a post-norm TransformerEncoderLayer with a native inference kernel."""
    return (
        isinstance(layer, TransformerEncoderLayer) and not layer.norm_first and _native_layer(layer)
    )


def _native_layer(layer: TransformerEncoderLayer) -> bool:
    """Whether torch has a native inference kernel for ``layer``: batch-first, with packed
    projections and biases, a ReLU or GELU activation, equal layer-norm eps and an even
    number of heads."""
    attn, act = layer.self_attn, layer.activation
    return (
        attn.batch_first
        and attn._qkv_same_embed_dim
        and attn.in_proj_bias is not None
        and (act is F.relu or act is F.gelu or isinstance(act, ReLU | GELU))
        and layer.norm1.eps == layer.norm2.eps
        and attn.num_heads % 2 == 0
    )


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer`` (``layers.0`` ...), then
    ``norm`` if given.

    Args:
        decoder_layer: a :class:`TransformerDecoderLayer` (deep-copied per layer).
        num_layers: number of layers.
        norm: an optional final layer (e.g. LayerNorm).
    """

    def __init__(self, decoder_layer: Module, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        if not isinstance(decoder_layer, Module):
            raise InvalidType(
                f"TransformerDecoder: decoder_layer must be a Module, got "
                f"{type(decoder_layer).__name__}"
            )
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Run ``tgt`` through every layer, each attending over ``memory``."""
        out = check_tensor(self, tgt)
        for layer in self.layers:
            out = layer(
                out,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            out = self.norm(out)
        return out


class Transformer(Module):
    """The encoder-decoder transformer of "Attention Is All You Need": an encoder of
    ``num_encoder_layers`` layers and a decoder of ``num_decoder_layers``, each followed
    by a LayerNorm; every weight matrix Xavier-uniform initialised.

    Args:
        d_model: feature size E. Default: 512.
        nhead: attention heads. Default: 8.
        num_encoder_layers, num_decoder_layers: Default: 6 each.
        dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
        bias: as :class:`TransformerEncoderLayer`.
        custom_encoder, custom_decoder: modules used instead of the default stacks.

    Shape:
        - src: (S, N, E) (or (N, S, E) with ``batch_first``, or (S, E)); tgt: (T, N, E).
        - output: (T, N, E) (or (N, T, E), or (T, E)).
        - masks as :class:`TransformerEncoder` (src) and :class:`TransformerDecoder`.

    Example::

        >>> model = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2,
        ...                        num_decoder_layers=2, dim_feedforward=64)
        >>> src, tgt = dl.randn(10, 2, 32), dl.randn(7, 2, 32)
        >>> mask = nn.Transformer.generate_square_subsequent_mask(7)
        >>> model(src, tgt, tgt_mask=mask).shape
        (7, 2, 32)
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = F.relu,
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps)
        layer_kw = {"batch_first": batch_first, "norm_first": norm_first, "bias": bias, **kw}
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(*layer_args, **layer_kw),
                num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw),
            )
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(*layer_args, **layer_kw),
                num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw),
            )
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src`` into a memory, then decode ``tgt`` over it."""
        check_tensor(self, src)
        check_tensor(self, tgt)
        if src.ndim == 3 and tgt.ndim == 3:
            b = 0 if self.batch_first else 1
            if src.shape[b] != tgt.shape[b]:
                raise InvalidValue(
                    f"Transformer: the batch number of src {tuple(src.shape)} and tgt "
                    f"{tuple(tgt.shape)} must be equal (dim {b} with batch_first="
                    f"{self.batch_first})"
                )
        elif src.ndim != tgt.ndim:
            raise InvalidValue(
                f"Transformer: src {tuple(src.shape)} and tgt {tuple(tgt.shape)} must both be "
                "batched (3-D) or both unbatched (2-D)"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise InvalidValue(
                f"Transformer: the feature number (last dimension) of src {tuple(src.shape)} "
                f"and tgt {tuple(tgt.shape)} must be equal to d_model={self.d_model}"
            )
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Tensor:
        """The (sz, sz) causal float mask: -inf above the diagonal (a query may not attend
        to later positions), 0 on and below it."""
        positive_int(sz, "sz", "generate_square_subsequent_mask", allow_zero=True)
        return triu(full((sz, sz), -math.inf, dtype=dtype, device=device), diagonal=1)
