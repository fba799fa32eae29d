"""Dropout layers: active in training mode, the identity in eval mode."""

from __future__ import annotations

from darklib.errors import InvalidValue
from darklib.nn import functional as F
from darklib.nn.module import Module
from darklib.tensor import Tensor

__all__ = ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d"]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise InvalidValue(
                f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}"
            )
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` during training, scaling the rest by 1/(1-p).

    Args:
        p: probability of an element to be zeroed. Default: 0.5.
        inplace: overwrite the input. Default: ``False``.

    Shape:
        - Input: (*) any shape; Output: same shape.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zero whole channels of an (N, C, L) input with probability ``p`` during training."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of an (N, C, H, W) input with probability ``p`` during training.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: overwrite the input. Default: ``False``.

    Shape:
        - Input: (N, C, H, W) or (C, H, W); Output: same shape.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps the self-normalising statistics of SELU networks."""

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels (dim 1): a dropped channel takes SELU's negative
    saturation value, and the kept ones are rescaled to keep the mean and variance."""

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace)
