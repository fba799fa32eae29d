"""Embedding: a lookup table of learnt vectors, indexed by integer ids."""

from __future__ import annotations

from typing import Any

from darklib.autograd import Function
from darklib.backend import get_xp
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
    def forward(ctx, weight, idx, padding_idx):
        ctx.save_for_backward(idx)
        ctx.num, ctx.padding_idx = weight.shape[0], padding_idx
        return weight[idx]

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        xp = get_xp(g)
        flat = idx.reshape(-1)
        g2 = g.reshape(flat.shape[0], g.shape[-1])
        gw = xp.zeros((ctx.num, g2.shape[1]), dtype=g.dtype)
        xp.add.at(gw, flat, g2)
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return gw.reshape((ctx.num, *g.shape[idx.ndim :])), None, None


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by the integer ids in ``input``.

    Args:
        input: integer tensor of ids in ``[0, num_embeddings)``, any shape.
        weight: (num_embeddings, embedding_dim).
        padding_idx: the row with this id gets no gradient.

    Shape:
        - Output: (*input.shape, embedding_dim)
    """
    if not isinstance(input, Tensor) or input.array.dtype.kind not in "iu":
        what = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(f"embedding: expected an integer index tensor, got {what}")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D, got {tuple(weight.shape)}")
    n = weight.shape[0]
    idx = input.array
    if idx.size:
        lo, hi = index_range(idx)
        if lo < 0 or hi >= n:
            raise IndexError(
                f"embedding: index {lo if lo < 0 else hi} is out of range for {n} embeddings"
            )
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    return _Embedding.apply(weight, idx, padding_idx)


class Embedding(Module):
    """A table of ``num_embeddings`` learnt vectors of size ``embedding_dim``.

    Args:
        num_embeddings: size of the vocabulary.
        embedding_dim: size of each vector.
        padding_idx: this row is zero-initialised and gets no gradient.

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
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise ValueError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
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
                raise ValueError(
                    "Embedding: _weight must have shape (num_embeddings, embedding_dim)"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return embedding(check_tensor(self, input), self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None, **kwargs: Any
    ) -> Embedding:
        """An Embedding holding ``embeddings`` (2-D); frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ValueError("Embedding.from_pretrained: embeddings must be 2-D")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, _weight=embeddings, _freeze=freeze, **kwargs)
