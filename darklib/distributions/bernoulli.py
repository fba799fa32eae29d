"""The Bernoulli distribution over {0, 1}, parametrised by ``probs`` or ``logits``."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.utils import ProbsOrLogitsParam, as_float, broadcast_all, one_parameter
from darklib.nn import functional as F
from darklib.tensor import Tensor

__all__ = ["Bernoulli", "one_parameter"]


class Bernoulli(ProbsOrLogitsParam, ExponentialFamily):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0; exactly one of the two."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _mean_carrier_measure = 0

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None):
        batch_shape = self._set_probs_or_logits(probs, logits)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Bernoulli:
        return self._expand_probs_or_logits(batch_shape, _instance, Bernoulli)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        mode = (self.probs >= 0.5).to(self.probs.dtype)
        return dl.where(self.probs == 0.5, float("nan"), mode)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with dl.no_grad():
            return dl.bernoulli(self.probs.expand(shape))

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_float(value, self.logits))
        value = value.to(logits.dtype)
        # for values 0 and 1 the log-sigmoid forms, exact at infinite logits (where
        # value * logits - softplus(logits) is inf - inf); between them the general one
        general = value * logits - F.softplus(logits)
        return dl.where(
            value == 1, -F.softplus(-logits), dl.where(value == 0, -F.softplus(logits), general)
        )

    def entropy(self) -> Tensor:
        return F.softplus(self.logits) - self.probs * self.logits

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = dl.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1, *tuple(self._batch_shape))) if expand else values

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return F.softplus(x)
