"""The exponential distribution with rate ``rate``."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.utils import as_float, standard_uniform
from darklib.tensor import Tensor

__all__ = ["Exponential"]


class Exponential(ExponentialFamily):
    """Exponential distribution with density ``rate * exp(-rate * x)`` on x >= 0."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, rate: Any, validate_args: bool | None = None):
        super().__init__(self._set_params(rate=rate), validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Exponential:
        return self._expanded(batch_shape, _instance, Exponential, rate=self.rate)

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def mode(self) -> Tensor:
        return dl.zeros_like(self.rate)

    @property
    def stddev(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def variance(self) -> Tensor:
        return self.rate.pow(-2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        u = standard_uniform(self._extended_shape(sample_shape), self.rate)
        return -dl.log1p(-u) / self.rate  # (1 - u lies in (0, 1]: no infinite draw)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.rate)
        return dl.log(self.rate) - self.rate * value

    def cdf(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.rate)
        return 1 - dl.exp(-self.rate * value)

    def icdf(self, value: Any) -> Tensor:
        value = as_float(value, self.rate)
        return -dl.log1p(-value) / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - dl.log(self.rate)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-self.rate,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return -dl.log(-x)
