"""Distance modules: CosineSimilarity and PairwiseDistance."""

from __future__ import annotations

from darklib.nn import functional as F
from darklib.nn._utils import check_tensor
from darklib.nn.module import Module
from darklib.tensor import Tensor

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim`` (they broadcast).

    Args:
        dim: the dimension of the vectors. Default: 1.
        eps: lower bound of each norm. Default: 1e-8.

    Shape:
        - Input1: (*, D, *); Input2: broadcastable to it; Output: without ``dim``.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(
            check_tensor(self, x1), check_tensor(self, x2), self.dim, self.eps
        )


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` along the last dimension.

    Args:
        p: the norm degree. Default: 2.
        eps: added to the difference, to avoid division by zero. Default: 1e-6.
        keepdim: keep the last dimension (of size 1). Default: False.

    Shape:
        - Input1: (N, D) or (D,); Input2: same or broadcastable; Output: (N,) or ().
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(
            check_tensor(self, x1), check_tensor(self, x2), self.norm, self.eps, self.keepdim
        )
