"""Embedding: a lookup table of learnt vectors, indexed by integer ids."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib import higher_order
from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int
from darklib.nn.module import Module
from darklib.nn.parameter import Parameter
from darklib.ops.indexing import index_range
from darklib.tensor import Tensor

__all__ = ["Embedding", "embedding"]


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
    if not isinstance(input, Tensor) or input.array.dtype.kind not in "iu":
        what = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise InvalidType(f"embedding: expected an integer index tensor, got {what}")
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
    return _Embedding.apply(weight, idx, padding_idx, bool(scale_grad_by_freq))


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
