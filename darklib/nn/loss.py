"""Loss modules: thin wrappers over the functional losses, with PyTorch's arguments."""

from __future__ import annotations

import warnings
from typing import Any

from darklib.errors import InvalidType, InvalidValue
from darklib.nn import functional as F
from darklib.nn._utils import check_reduction
from darklib.nn.module import Module
from darklib.tensor import Tensor

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
]


def _legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` pair mapped to ``reduction``."""
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction='"
        + ("none" if reduce is False else "mean" if size_average is not False else "sum")
        + "' instead.",
        stacklevel=3,
    )
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


class _Loss(Module):
    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        self.reduction = check_reduction(reduction, type(self).__name__)


class _WeightedLoss(_Loss):
    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if weight is not None and not isinstance(weight, Tensor):
            raise InvalidType(
                f"{type(self).__name__}: weight must be a Tensor or None, got "
                f"{type(weight).__name__}"
            )
        self.register_buffer("weight", weight)


class MSELoss(_Loss):
    """Mean squared error ``(input - target)**2``, reduced by ``reduction``.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Shape:
        - Input: (*); Target: same shape; Output: scalar, or (*) with ``'none'``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|``.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (d = input - target).

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.
        beta: where the loss turns from quadratic to linear. Default: 1.0.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise InvalidValue(f"SmoothL1Loss: beta must be non-negative, got {beta}")
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 delta)``.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.
        delta: where the loss turns from quadratic to linear. Default: 1.0.
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        if not delta > 0:
            raise InvalidValue(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy between logits and class indices (or class probabilities).

    Args:
        weight: (C,) per-class rescaling weight (a buffer).
        ignore_index: target value that contributes nothing. Default: -100.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.
        label_smoothing: in [0, 1]; mixes the target with the uniform distribution.

    Shape:
        - Input: (N, C) or (N, C, d1, ...) logits.
        - Target: (N) or (N, d1, ...) integer classes in [0, C), or probabilities shaped
          as the input.
        - Output: scalar, or (N, ...) with ``'none'``.
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise InvalidValue(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities at the target classes.

    Args:
        weight: (C,) per-class rescaling weight (a buffer).
        ignore_index: target value that contributes nothing. Default: -100.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Shape:
        - Input: (N, C) or (N, C, d1, ...) log-probabilities; Target: (N) or (N, d1, ...).
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class BCELoss(_WeightedLoss):
    """Binary cross entropy between probabilities in [0, 1] and targets.

    Args:
        weight: rescaling weight broadcast to the input (a buffer).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Shape:
        - Input: (*); Target: same shape.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid plus binary cross entropy in one numerically stable op.

    Args:
        weight: rescaling weight broadcast to the input (a buffer).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.
        pos_weight: weight of positive examples, broadcast along the last (class)
            dimension (a buffer).

    Shape:
        - Input: (*) logits; Target: same shape.
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        for name, t in (("weight", weight), ("pos_weight", pos_weight)):
            if t is not None and not isinstance(t, Tensor):
                raise InvalidType(
                    f"BCEWithLogitsLoss: {name} must be a Tensor or None, got {type(t).__name__}"
                )
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, weight=self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence; ``input`` holds log-probabilities.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'`` | ``'batchmean'``. Default: ``'mean'``
            (``'batchmean'`` is the mathematically correct one).
        log_target: the target is given as log-probabilities too.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        batchmean = reduction == "batchmean"
        super().__init__(size_average, reduce, "mean" if batchmean else reduction)
        if batchmean:
            self.reduction = "batchmean"
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Any:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
