"""The Dirichlet distribution over the simplex, and the Beta distribution (its two-class
case), both reparameterised through gamma draws."""

from __future__ import annotations

import numbers
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.gamma import standard_gamma
from darklib.distributions.utils import as_float, broadcast_all
from darklib.nn import functional as F
from darklib.tensor import Tensor

__all__ = ["Beta", "Dirichlet"]


class Dirichlet(ExponentialFamily):
    """Dirichlet distribution over probability vectors of length K, with positive
    ``concentration`` (..., K): density prod_i x_i^(c_i - 1) / B(c)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration: Any, validate_args: bool | None = None):
        if not isinstance(concentration, Tensor):
            concentration = dl.tensor(concentration, dtype=dl.get_default_dtype())
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = concentration.shape
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Dirichlet:
        return self._expanded(batch_shape, _instance, Dirichlet, concentration=self.concentration)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        # independent Gamma(c_i, 1) draws, normalised: differentiable through each draw
        g = standard_gamma(self.concentration.expand(self._extended_shape(sample_shape)))
        x = g / g.sum(-1, keepdim=True)
        return x.clamp(min=dl.finfo(x.dtype).tiny, max=1 - dl.finfo(x.dtype).eps).detach() + (
            x - x.detach()
        )

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        value = as_float(value, c)
        return dl.xlogy(c - 1.0, value).sum(-1) + dl.lgamma(c.sum(-1)) - dl.lgamma(c).sum(-1)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self) -> Tensor:
        c = self.concentration
        cm1 = (c - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        # every c_i < 1: the density peaks at the vertex of the largest concentration
        vertex = F.one_hot(c.argmax(-1), c.shape[-1]).to(c.dtype)
        return dl.where((c < 1).all(-1, keepdim=True), vertex, mode)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        c0 = c.sum(-1, keepdim=True)
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def entropy(self) -> Tensor:
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (
            dl.lgamma(c).sum(-1)
            - dl.lgamma(a0)
            - (k - a0) * dl.digamma(a0)
            - ((c - 1.0) * dl.digamma(c)).sum(-1)
        )

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.concentration,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return dl.lgamma(x).sum(-1) - dl.lgamma(x.sum(-1))


class Beta(ExponentialFamily):
    """Beta distribution on [0, 1] with positive ``concentration1`` (alpha) and
    ``concentration0`` (beta): density x^(alpha-1) (1-x)^(beta-1) / B(alpha, beta)."""

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1: Any, concentration0: Any, validate_args: bool | None = None):
        if isinstance(concentration1, numbers.Real) and isinstance(concentration0, numbers.Real):
            both = dl.tensor(
                [float(concentration1), float(concentration0)], dtype=dl.get_default_dtype()
            )
        else:
            c1, c0 = broadcast_all(concentration1, concentration0)
            both = dl.stack([c1, c0], -1)
        self._dirichlet = Dirichlet(both, validate_args=validate_args)
        super().__init__(self._dirichlet._batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Beta:
        new = self._get_checked_instance(Beta, _instance)
        new._dirichlet = self._dirichlet.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def concentration1(self) -> Tensor:
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self) -> Tensor:
        return self._dirichlet.concentration[..., 1]

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self._dirichlet.rsample(sample_shape).select(-1, 0)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self._dirichlet.concentration)
        return self._dirichlet.log_prob(dl.stack([value, 1.0 - value], -1))

    def entropy(self) -> Tensor:
        return self._dirichlet.entropy()

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return self.concentration1, self.concentration0

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return dl.lgamma(x) + dl.lgamma(y) - dl.lgamma(x + y)
