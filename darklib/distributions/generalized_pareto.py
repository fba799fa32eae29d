"""The generalized Pareto distribution (location ``loc``, scale ``scale``, shape
``concentration`` xi): survival function (1 + xi z)^(-1/xi), z = (x - loc) / scale, and
exp(-z) at xi = 0. Its special cases are the exponential (loc = 0, xi = 0), the Pareto
(xi > 0, loc = scale / xi) and the uniform (xi = -1)."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import as_float, standard_uniform
from darklib.tensor import Tensor

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(Distribution):
    """Generalized Pareto distribution with real ``loc``, positive ``scale`` and real
    ``concentration``, broadcast together; its support is [loc, inf) for
    concentration >= 0 and [loc, loc - scale / concentration] below."""

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "concentration": constraints.real,
    }
    has_rsample = True
    loc: Tensor
    scale: Tensor
    concentration: Tensor

    def __init__(self, loc: Any, scale: Any, concentration: Any, validate_args: bool | None = None):
        batch_shape = self._set_params(loc=loc, scale=scale, concentration=concentration)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> GeneralizedPareto:
        return self._expanded(
            batch_shape,
            _instance,
            GeneralizedPareto,
            loc=self.loc,
            scale=self.scale,
            concentration=self.concentration,
        )

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        upper = dl.where(
            self.concentration < 0, self.loc - self.scale / self.concentration, math.inf
        )
        return constraints.interval(self.loc, upper)

    def _split_shape(self) -> tuple[Tensor, Tensor]:
        """Where the shape is 0 (to torch's isclose tolerance), and a shape safe to divide
        by (1 there): the xi = 0 forms are taken where the first is true."""
        c = self.concentration
        zero = dl.isclose(c, dl.zeros_like(c))
        return zero, dl.where(zero, 1.0, c)

    def _z(self, value: Any) -> Tensor:
        return (as_float(value, self.loc) - self.loc) / self.scale

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        u = standard_uniform(self._extended_shape(sample_shape), self.loc)
        return self.icdf(u)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        zero, c = self._split_shape()
        # -(1 + 1/xi) log1p(xi z); the factor is 0 for the uniform case xi = -1
        factor = 1.0 / c + dl.ones_like(z)
        general = dl.where(factor == 0, factor, factor * dl.log1p(c * z))
        return -dl.log(self.scale) - dl.where(zero, z, general)

    def log_survival_function(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        zero, c = self._split_shape()
        return dl.where(zero, -z, -dl.log1p(c * z) / c)

    def log_cdf(self, value: Any) -> Tensor:
        return dl.log1p(-dl.exp(self.log_survival_function(value)))

    def cdf(self, value: Any) -> Tensor:
        return dl.exp(self.log_cdf(value))

    def icdf(self, value: Any) -> Tensor:
        value = as_float(value, self.loc)
        zero, c = self._split_shape()
        log_q = dl.log1p(-value)
        general = self.loc + self.scale / c * dl.expm1(-c * log_q)
        return dl.where(zero, self.loc - self.scale * log_q, general)

    @property
    def mean(self) -> Tensor:
        c = self.concentration
        finite = c < 1
        safe = dl.where(finite, c, 0.5)
        return dl.where(finite, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        finite = c < 0.5
        safe = dl.where(finite, c, 0.25)
        return dl.where(finite, self.scale.pow(2) / ((1 - safe).pow(2) * (1 - 2 * safe)), math.nan)

    def entropy(self) -> Tensor:
        return (dl.log(self.scale) + self.concentration + 1).expand(self._batch_shape)
