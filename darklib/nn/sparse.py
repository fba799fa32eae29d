"""Embedding and EmbeddingBag: lookup tables of learnt vectors, indexed by integer ids
(EmbeddingBag reduces each bag of looked-up vectors to one: sum, mean or max)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib import autograd
from darklib.autograd import Function, higher_order
from darklib.backend import get_xp, to_numpy
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int
from darklib.nn.module import Module
from darklib.nn.parameter import Parameter
from darklib.ops.indexing import index_range
from darklib.tensor import Tensor

__all__ = ["Embedding", "EmbeddingBag", "embedding", "embedding_bag"]


class _Embedding(Function):
    """Row gather forward; scatter-add of the output gradient into the rows backward."""

    @staticmethod
    def forward(ctx, weight, idx, padding_idx, scale_grad_by_freq):
        ctx.save_for_backward(idx)
        ctx.num, ctx.padding_idx = weight.shape[0], padding_idx
        ctx.scale_grad_by_freq = scale_grad_by_freq
        return weight[idx]

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        xp = get_xp(g)
        flat = idx.reshape(-1)
        g2 = g.reshape(flat.shape[0], g.shape[-1])
        gw = xp.zeros((ctx.num, g2.shape[1]), dtype=g.dtype)
        xp.add.at(gw, flat, g2)
        if ctx.scale_grad_by_freq:  # each row's gradient divided by its count in the batch
            counts = xp.bincount(flat, minlength=ctx.num)
            gw /= xp.maximum(counts, 1).astype(gw.dtype)[:, None]
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return gw.reshape((ctx.num, *g.shape[idx.ndim :])), None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        (idx,) = ctx.saved_tensors
        rows = get_xp(idx).ones(ctx.num, g.array.dtype)
        if ctx.padding_idx is not None:
            rows[ctx.padding_idx] = 0

        # The lookup again (the padding row gives nothing). Not divided by the counts of
        # scale_grad_by_freq, as torch: the gradient of the gradient then comes back
        # through backward, which divides once (its scaled gradient is no adjoint of the
        # lookup; dividing here too gave twice the scaling against central differences).
        def lookup(v):
            return (v * rows.reshape((-1,) + (1,) * (v.ndim - 1)))[idx]

        return higher_order.linear_adjoints(ctx, g, {0: lookup})


def _renorm_rows(weight: Tensor, idx: Any, max_norm: float, norm_type: float) -> None:
    """Scale in place the rows of ``weight`` picked by ``idx`` whose ``norm_type``-norm
    exceeds ``max_norm`` down to norm ``max_norm`` (torch's ``embedding_renorm_``: outside
    autograd, the same ``1e-7`` guard on the divisor)."""
    w = weight.array
    xp = get_xp(w)
    rows = xp.unique(idx.reshape(-1))
    if rows.size == 0:
        return
    a = xp.abs(w[rows])
    p = float(norm_type)
    if p == math.inf:
        norms = a.max(axis=1)
    elif p == -math.inf:
        norms = a.min(axis=1)
    elif p == 0:
        norms = (a != 0).sum(axis=1)
    else:
        norms = (a**p).sum(axis=1) ** (1 / p)
    norms = norms.astype(np.float64)
    big = norms > max_norm
    scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
    w[rows[big]] *= scale[:, None]
    weight._version += 1


def _check_indices(op: str, input: Any) -> None:
    """Indices must be an int64 or int32 tensor, as torch's (which refuses uint8, int16,
    int8 and bool indices)."""
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: expected indices to be a Tensor, got {type(input).__name__}")
    if input.array.dtype not in (np.int64, np.int32):
        raise InvalidType(
            f"{op}: expected indices of dtype int64 or int32, got {input.dtype}; convert "
            "them with .long()"
        )


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer ids in ``input``.

    Args:
        input: integer tensor of ids in ``[0, num_embeddings)``, any shape.
        weight: (num_embeddings, embedding_dim).
        padding_idx: the row with this id gets no gradient.
        max_norm: rows looked up whose ``norm_type``-norm exceeds it are first scaled
            down to it, in place in ``weight`` and outside autograd (as torch).
        norm_type: the p of that norm. Default: ``2.0``.
        scale_grad_by_freq: divide each row's gradient by the number of times its id
            occurs in ``input``.
        sparse: sparse gradients are not supported (darklib has no sparse tensors).

    Shape:
        - Output: (*input.shape, embedding_dim)
    """
    _check_indices("embedding", input)
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D, got {tuple(weight.shape)}")
    n = weight.shape[0]
    idx = input.array
    if idx.size:
        lo, hi = index_range(idx)
        if lo < 0 or hi >= n:
            raise OutOfRange(
                f"embedding: index {lo if lo < 0 else hi} is out of range for {n} embeddings"
            )
    if sparse:
        raise NotImplementedError("embedding: sparse=True is not supported by darklib")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    out = _Embedding.apply(weight, idx, padding_idx, bool(scale_grad_by_freq))
    return autograd.watch(out, input)


class Embedding(Module):
    """A table of ``num_embeddings`` learnt vectors of size ``embedding_dim``.

    Args:
        num_embeddings: size of the vocabulary.
        embedding_dim: size of each vector.
        padding_idx: this row is zero-initialised and gets no gradient.
        max_norm: looked-up rows whose norm exceeds it are renormalised to it, in place.
        norm_type: the p of the norm for ``max_norm``. Default: ``2.0``.
        scale_grad_by_freq: divide gradients by the ids' frequencies in the mini-batch.
        sparse: not supported (darklib has no sparse gradients).

    Shape:
        - Input: (*) integer ids; Output: (*, embedding_dim).

    Attributes:
        weight: (num_embeddings, embedding_dim), initialised N(0, 1).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        positive_int(num_embeddings, "num_embeddings", "Embedding")
        positive_int(embedding_dim, "embedding_dim", "Embedding")
        if sparse:
            raise InvalidValue("Embedding: sparse=True is not supported by darklib")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise InvalidValue(
                    f"Embedding: padding_idx must be within num_embeddings, got {padding_idx}"
                )
            if padding_idx < 0:
                padding_idx += num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = new_param((num_embeddings, embedding_dim), device, dtype)
            self.reset_parameters()
            self.weight.requires_grad_(not _freeze)
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise InvalidValue(
                    "Embedding: _weight must have shape (num_embeddings, embedding_dim)"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return embedding(
            check_tensor(self, input),
            self.weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
        )

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return s

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None, **kwargs: Any
    ) -> Embedding:
        """An Embedding holding ``embeddings`` (2-D); frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise InvalidValue("Embedding.from_pretrained: embeddings must be 2-D")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, _weight=embeddings, _freeze=freeze, **kwargs)


_BAG_MODES = ("sum", "mean", "max")


def _bag_positions(op: str, input: Tensor, offsets: Tensor | None, include_last: bool) -> tuple:
    """``(flat ids, positions (B, L) into them, valid (B, L))``: bag b is ``ids[positions[b,
    valid[b]]]``. A 2-D input is one bag per row; a 1-D one is cut at ``offsets`` (read on
    the host, as torch's CPU kernel does)."""
    ids = input.array
    xp = get_xp(ids)
    if input.ndim == 2:
        if offsets is not None:
            raise InvalidValue(
                f"{op}: offsets must be None for a 2-D input {tuple(input.shape)} (each row is "
                "a bag)"
            )
        b, length = ids.shape
        pos = xp.arange(b * length).reshape(b, length)
        return ids.reshape(-1), pos, xp.ones((b, length), bool)
    if input.ndim != 1:
        raise InvalidValue(
            f"{op}: input must be 1-D (with offsets) or 2-D (one bag per row), got "
            f"{tuple(input.shape)}"
        )
    if offsets is None:
        raise InvalidValue(f"{op}: offsets are required for a 1-D input")
    if not isinstance(offsets, Tensor) or offsets.ndim != 1 or offsets.array.dtype.kind not in "iu":
        raise InvalidType(f"{op}: offsets must be a 1-D integer tensor")
    starts = to_numpy(offsets.array).astype(np.int64)
    n = ids.shape[0]
    if starts.size and starts[0] != 0:
        raise InvalidValue(
            f"{op}: offsets[0] has to be 0, i.e., the first sequence in the "
            f"mini-batch has to start from position 0; got {starts[0]}"
        )
    if include_last:
        if starts.size == 0:
            raise InvalidValue(f"{op}: include_last_offset=True needs at least one offset")
        if starts[-1] > n:
            raise InvalidValue(
                f"{op}: offsets[-1] can not be greater than input's length {n} but got "
                f"offsets[-1] of {starts[-1]}"
            )
        # as torch: the last offset is only checked, the last bag runs to the end
        starts = starts[:-1]
    ends = np.append(starts[1:], n)
    if np.any(ends < starts) or (ends.size and (ends.max() > n or starts.min() < 0)):
        raise InvalidValue(
            f"{op}: offsets {starts.tolist()} must be non-decreasing and within the input's {n} ids"
        )
    lengths = ends - starts
    width = int(lengths.max()) if lengths.size else 0
    j = np.arange(width)
    valid = j[None, :] < lengths[:, None]
    pos = np.where(valid, starts[:, None] + j[None, :], 0)
    return ids, xp.asarray(pos), xp.asarray(valid)


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sums, means or maxima of bags of embeddings, without the intermediate
    ``(bags, length, dim)`` lookup a user would build, as ``torch.nn.functional.embedding_bag``.

    Args:
        input: a 2-D (B, N) tensor of ids, one bag per row, or a 1-D tensor of the bags' ids
            one after another, cut at ``offsets``.
        weight: (num_embeddings, embedding_dim).
        offsets: (1-D input) the start of each bag in ``input``; the first must be 0.
        max_norm, norm_type, scale_grad_by_freq: as :func:`embedding`.
        mode: ``'sum'``, ``'mean'`` or ``'max'`` over each bag.
        per_sample_weights: (mode 'sum') a float weight per id, the input's shape.
        include_last_offset: ``offsets`` has one more entry, the end of the last bag.
        padding_idx: ids equal to it are left out of their bag (not counted by 'mean').

    An empty bag (or one of padding ids only) gives zeros.

    Shape:
        - Output: (B, embedding_dim).
    """
    op = "embedding_bag"
    if mode not in _BAG_MODES:
        raise InvalidValue(f"{op}: mode has to be one of sum, mean or max, got {mode!r}")
    _check_indices(op, input)
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise InvalidValue(f"{op}: weight must be a 2-D tensor (num_embeddings, dim)")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                f"{op}: per_sample_weights was not None. per_sample_weights is only supported "
                f"for mode='sum' (got mode={mode!r}). Please open a feature request on GitHub."
            )
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise InvalidValue(
                f"{op}: per_sample_weights {tuple(per_sample_weights.shape)} must have the "
                f"input's shape {tuple(input.shape)}"
            )
    if scale_grad_by_freq and mode == "max":
        raise InvalidValue(f"{op}: max mode does not support scaling the gradient by the frequency")
    if sparse:
        raise NotImplementedError(f"{op}: sparse=True is not supported by darklib")
    ids, pos, valid = _bag_positions(op, input, offsets, bool(include_last_offset))
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise InvalidValue(
                f"{op}: padding_idx must be within num_embeddings, got {padding_idx}"
            )
        padding_idx %= n
    rows = embedding(
        Tensor._wrap(ids), weight, padding_idx, max_norm, norm_type, scale_grad_by_freq
    )  # (L, D)
    if pos.shape[1] == 0:  # no ids at all: zero bags, still in the weight's graph
        return rows.sum(dim=0).expand(pos.shape[0], weight.shape[1])
    keep = valid & (ids[pos] != padding_idx) if padding_idx is not None else valid
    bags = rows[Tensor._wrap(pos)]  # (B, width, D)
    xp = get_xp(ids)
    if mode == "max":
        neg = Tensor._wrap(xp.asarray(-np.inf, weight.array.dtype))
        best = bags.where(Tensor._wrap(keep[..., None]), neg).max(dim=1).values
        return best.where(Tensor._wrap(keep.any(axis=1)[:, None]), 0.0)
    # left-out rows selected away, not multiplied by 0 (a NaN padding row gave NaN bags)
    bags = bags.where(Tensor._wrap(keep[..., None]), 0.0)
    w = Tensor._wrap(keep.astype(weight.array.dtype))
    if per_sample_weights is not None:
        psw = per_sample_weights.reshape(-1)[Tensor._wrap(pos)]
        w = w * psw
    total = (bags * w.unsqueeze(-1)).sum(dim=1)
    if mode == "sum":
        return total
    count = xp.maximum(keep.sum(axis=1), 1).astype(weight.array.dtype)
    return total / Tensor._wrap(count[:, None])


class EmbeddingBag(Module):
    """An :class:`Embedding` whose looked-up vectors are reduced per bag (sum, mean or
    max), as ``torch.nn.EmbeddingBag``.

    Args:
        num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq,
        padding_idx: as :class:`Embedding`.
        mode: ``'sum'``, ``'mean'`` (default) or ``'max'``.
        include_last_offset: ``offsets`` holds the end of the last bag too.

    Shape:
        - Input: (B, N) ids, or 1-D ids with ``offsets`` (B,) (or (B + 1,)); optional
          ``per_sample_weights`` of the input's shape (mode 'sum'). Output: (B, embedding_dim).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Tensor | None = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if mode not in _BAG_MODES:
            raise InvalidValue(
                f"EmbeddingBag: mode has to be one of sum, mean or max, got {mode!r}"
            )
        super().__init__()
        inner = Embedding(
            num_embeddings,
            embedding_dim,
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight,
            device=device,
            dtype=dtype,
        )
        self.mode, self.include_last_offset = mode, include_last_offset
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = inner.padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.weight = inner.weight

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    def forward(
        self,
        input: Tensor,
        offsets: Tensor | None = None,
        per_sample_weights: Tensor | None = None,
    ) -> Tensor:
        return embedding_bag(
            check_tensor(self, input),
            self.weight,
            offsets,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.mode,
            self.sparse,
            per_sample_weights,
            self.include_last_offset,
            self.padding_idx,
        )

    def extra_repr(self) -> str:
        # torch's order (not Embedding's): the norm settings, then the mode and padding
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An EmbeddingBag holding ``embeddings`` (2-D); frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise InvalidValue("EmbeddingBag.from_pretrained: embeddings must be 2-D")
        rows, cols = embeddings.shape
        bag = cls(
            rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse, embeddings,
            include_last_offset, padding_idx,
        )  # fmt: skip
        bag.weight.requires_grad = not freeze
        return bag
