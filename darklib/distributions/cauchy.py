"""The Cauchy (Lorentz) distribution and Student's t distribution."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution, LocScale
from darklib.distributions.gamma import Chi2
from darklib.distributions.utils import (
    as_float,
    broadcast_all,
    standard_normal,
    standard_uniform,
)
from darklib.tensor import Tensor

__all__ = ["Cauchy", "StudentT"]


class Cauchy(LocScale):
    """Cauchy distribution with median ``loc`` and half width ``scale`` (> 0): no mean or
    variance (NaN and inf, as torch's)."""

    def expand(self, batch_shape: Any, _instance: Any = None) -> Cauchy:
        return self._expanded(batch_shape, _instance, Cauchy, loc=self.loc, scale=self.scale)

    @property
    def mean(self) -> Tensor:
        return dl.full(
            self._extended_shape(), float("nan"), dtype=self.loc.dtype, device=self.loc.device
        )

    @property
    def variance(self) -> Tensor:
        return dl.full(
            self._extended_shape(), float("inf"), dtype=self.loc.dtype, device=self.loc.device
        )

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        u = standard_uniform(self._extended_shape(sample_shape), self.loc)
        return self.loc + dl.tan(math.pi * (u - 0.5)) * self.scale

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - dl.log(self.scale) - dl.log1p(z**2)

    def cdf(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        return dl.atan((value - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value: Any) -> Tensor:
        value = as_float(value, self.loc)
        return dl.tan(math.pi * (value - 0.5)) * self.scale + self.loc

    def entropy(self) -> Tensor:
        return math.log(4 * math.pi) + dl.log(self.scale)


class StudentT(Distribution):
    """Student's t distribution with ``df`` degrees of freedom (> 0), location ``loc`` and
    scale ``scale`` (> 0)."""

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real,
        "scale": constraints.positive,
    }
    support = constraints.real
    has_rsample = True

    def __init__(
        self, df: Any, loc: Any = 0.0, scale: Any = 1.0, validate_args: bool | None = None
    ):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df, validate_args=False)  # (df is checked below, as ours)
        super().__init__(self.df.shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> StudentT:
        new = self._expanded(
            batch_shape, _instance, StudentT, df=self.df, loc=self.loc, scale=self.scale
        )
        new._chi2 = self._chi2.expand(batch_shape)
        return new

    @property
    def mean(self) -> Tensor:
        return dl.where(self.df <= 1, float("nan"), self.loc)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        df = self.df
        finite = self.scale.pow(2) * df / (df - 2)
        # df in (1, 2]: infinite; df <= 1: undefined
        return dl.where(df > 2, finite, dl.where(df > 1, float("inf"), float("nan")))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        # t = X / sqrt(Z / df), X standard normal and Z chi-square with df degrees
        x = standard_normal(self._extended_shape(sample_shape), self.df)
        z = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * x * dl.rsqrt(z / self.df)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.df)
        df = self.df
        y = (value - self.loc) / self.scale
        norm = (
            dl.log(self.scale)
            + 0.5 * dl.log(df)
            + 0.5 * math.log(math.pi)
            + dl.lgamma(0.5 * df)
            - dl.lgamma(0.5 * (df + 1.0))
        )
        return -0.5 * (df + 1.0) * dl.log1p(y**2 / df) - norm

    def entropy(self) -> Tensor:
        df = self.df
        lbeta = dl.lgamma(0.5 * df) + math.lgamma(0.5) - dl.lgamma(0.5 * (df + 1))
        return (
            dl.log(self.scale)
            + 0.5 * (df + 1) * (dl.digamma(0.5 * (df + 1)) - dl.digamma(0.5 * df))
            + 0.5 * dl.log(df)
            + lbeta
        )
