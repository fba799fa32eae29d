"""The Laplace (double exponential) distribution."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import as_float, broadcast_all, scalar_shape, standard_uniform
from darklib.tensor import Size, Tensor

__all__ = ["Laplace"]


class Laplace(Distribution):
    """Laplace distribution with location ``loc`` and scale ``scale`` (> 0)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_all(loc, scale)
        batch_shape = Size() if scalar_shape(loc, scale) else self.loc.shape
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Laplace:
        return self._expanded(batch_shape, _instance, Laplace, loc=self.loc, scale=self.scale)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

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
