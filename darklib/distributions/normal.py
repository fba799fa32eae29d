"""The normal (Gaussian) distribution N(loc, scale**2)."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions.distribution import LocScale
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.utils import as_float, standard_normal
from darklib.tensor import Tensor

__all__ = ["Normal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Normal(LocScale, ExponentialFamily):
    """Normal distribution with mean ``loc`` and standard deviation ``scale`` (> 0).

    Example::

        >>> m = dl.distributions.Normal(dl.tensor([0.0]), dl.tensor([1.0]))
        >>> m.sample()  # a draw from N(0, 1)
    """

    _mean_carrier_measure = 0

    def expand(self, batch_shape: Any, _instance: Any = None) -> Normal:
        return self._expanded(batch_shape, _instance, Normal, loc=self.loc, scale=self.scale)

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        return self.loc + standard_normal(shape, self.loc) * self.scale

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        return -((value - self.loc) ** 2) / (2 * self.scale**2) - dl.log(self.scale) - _LOG_SQRT_2PI

    def cdf(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        return 0.5 * (1 + dl.erf((value - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value: Any) -> Tensor:
        value = as_float(value, self.loc)
        return self.loc + self.scale * dl.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + _LOG_SQRT_2PI + dl.log(self.scale)

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        precision = self.scale.pow(2).reciprocal()
        return self.loc * precision, -0.5 * precision

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return -0.25 * x.pow(2) / y + 0.5 * dl.log(-math.pi / y)
