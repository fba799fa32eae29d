"""The Laplace (double exponential) distribution."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions.distribution import LocScale
from darklib.distributions.utils import as_float, standard_uniform
from darklib.tensor import Tensor

__all__ = ["Laplace"]


class Laplace(LocScale):
    """Laplace distribution with location ``loc`` and scale ``scale`` (> 0)."""

    def expand(self, batch_shape: Any, _instance: Any = None) -> Laplace:
        return self._expanded(batch_shape, _instance, Laplace, loc=self.loc, scale=self.scale)

    @property
    def variance(self) -> Tensor:
        return 2 * self.scale.pow(2)

    @property
    def stddev(self) -> Tensor:
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        eps = dl.finfo(self.loc.dtype).eps
        # u uniform in (-1, 1): its sign picks the side, |u| the distance
        u = standard_uniform(self._extended_shape(sample_shape), self.loc) * (2 - eps) + (eps - 1)
        return self.loc - self.scale * dl.sign(u) * dl.log1p(-u.abs())

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        return -dl.log(2 * self.scale) - (value - self.loc).abs() / self.scale

    def cdf(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        z = (value - self.loc) / self.scale
        return 0.5 - 0.5 * dl.sign(z) * dl.expm1(-z.abs())

    def icdf(self, value: Any) -> Tensor:
        value = as_float(value, self.loc)
        term = value - 0.5
        return self.loc - self.scale * dl.sign(term) * dl.log1p(-2 * term.abs())

    def entropy(self) -> Tensor:
        return 1 + dl.log(2 * self.scale)
