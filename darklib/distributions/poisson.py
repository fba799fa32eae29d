"""Count distributions: Poisson, Binomial, Geometric and NegativeBinomial."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.utils import (
    ProbsOrLogits,
    ProbsOrLogitsParam,
    as_float,
    broadcast_all,
    draw,
    standard_uniform,
)
from darklib.nn import functional as F
from darklib.tensor import Tensor

__all__ = ["Binomial", "Geometric", "NegativeBinomial", "Poisson"]


class Poisson(ExponentialFamily):
    """Poisson distribution with ``rate`` (>= 0): P(k) = rate^k e^-rate / k!."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate: Any, validate_args: bool | None = None):
        super().__init__(self._set_params(rate=rate), validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Poisson:
        return self._expanded(batch_shape, _instance, Poisson, rate=self.rate)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (dl.log(self.rate),)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return dl.exp(x)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with dl.no_grad():
            return draw("poisson", shape, self.rate, self.rate)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, as_float(value, self.rate))
        return dl.xlogy(value, rate) - rate - dl.lgamma(value + 1)


def _clamp_by_zero(x: Tensor) -> Tensor:
    # max(x, 0) whose gradient at 0 is 1/2, as torch's
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Binomial(ProbsOrLogitsParam, Distribution):
    """Number of successes in ``total_count`` independent trials of probability ``probs``
    (or ``sigmoid(logits)``); exactly one of the two. ``total_count`` broadcasts."""

    arg_constraints = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }
    has_enumerate_support = True

    def __init__(
        self,
        total_count: Any = 1,
        probs: Any = None,
        logits: Any = None,
        validate_args: bool | None = None,
    ):
        batch_shape = self._set_probs_or_logits(probs, logits, total_count)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Binomial:
        return self._expand_probs_or_logits(
            batch_shape, _instance, Binomial, total_count=self.total_count
        )

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        n = self.total_count
        return ((n + 1) * self.probs).floor().clamp(max=n)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with dl.no_grad():
            return draw("binomial", shape, self._param, self.total_count, self.probs)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self._param)
        n, logits = self.total_count, self.logits
        log_binom = dl.lgamma(n + 1) - dl.lgamma(value + 1) - dl.lgamma(n - value + 1)
        # n log(1 + e^logits), stably
        normalizer = n * _clamp_by_zero(logits) + n * dl.log1p(dl.exp(-logits.abs()))
        return value * logits + log_binom - normalizer

    def _whole_count(self, op: str) -> int:
        total = int(self.total_count.max())
        if not bool((self.total_count == total).all()):
            raise NotImplementedError(f"Inhomogeneous total count not supported by `{op}`.")
        return total

    def entropy(self) -> Tensor:
        self._whole_count("entropy")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(dl.exp(log_prob) * log_prob).sum(0)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        total = self._whole_count("enumerate_support")
        values = dl.arange(1 + total, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1, *tuple(self._batch_shape))) if expand else values


class Geometric(ProbsOrLogits, Distribution):
    """Number of failures before the first success in trials of probability ``probs`` (in
    (0, 1]) or ``sigmoid(logits)``: P(k) = (1 - p)^k p."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None):
        batch_shape = self._set_probs_or_logits(probs, logits)
        super().__init__(batch_shape, validate_args=validate_args)
        if self._validate_args and probs is not None:
            value = self.probs  # (0 is in the unit interval but not a valid probs here)
            if not bool((value > 0).all()):
                raise ValueError(
                    f"Expected parameter probs ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {self!r} to be positive but "
                    f"found invalid values:\n{value[~(value > 0)]}"
                )

    def expand(self, batch_shape: Any, _instance: Any = None) -> Geometric:
        return self._expand_probs_or_logits(batch_shape, _instance, Geometric)

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        return dl.zeros_like(self.probs)

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with dl.no_grad():
            probs = self.probs
            u = standard_uniform(shape, probs).clamp(min=dl.finfo(probs.dtype).tiny)
            return (dl.log(u) / dl.log1p(-probs)).floor()

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(as_float(value, self.probs), self.probs)
        # p = 1 and k = 0: 0 * log(0) is 0 here
        safe = dl.where((probs == 1) & (value == 0), 0.0, probs)
        return value * dl.log1p(-safe) + dl.log(self.probs)

    def entropy(self) -> Tensor:
        return (F.softplus(self.logits) - self.probs * self.logits) / self.probs


class NegativeBinomial(ProbsOrLogitsParam, Distribution):
    """Number of successes before ``total_count`` failures in trials of success probability
    ``probs`` (or ``sigmoid(logits)``); exactly one of the two. ``total_count`` may be any
    nonnegative real (a gamma-Poisson mixture)."""

    arg_constraints = {
        "total_count": constraints.greater_than_eq(0),
        "probs": constraints.half_open_interval(0.0, 1.0),
        "logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(
        self,
        total_count: Any,
        probs: Any = None,
        logits: Any = None,
        validate_args: bool | None = None,
    ):
        batch_shape = self._set_probs_or_logits(probs, logits, total_count)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> NegativeBinomial:
        return self._expand_probs_or_logits(
            batch_shape, _instance, NegativeBinomial, total_count=self.total_count
        )

    @property
    def mean(self) -> Tensor:
        return self.total_count * dl.exp(self.logits)

    @property
    def mode(self) -> Tensor:
        return ((self.total_count - 1) * dl.exp(self.logits)).floor().clamp(min=0.0)

    @property
    def variance(self) -> Tensor:
        return self.mean / dl.sigmoid(-self.logits)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        # a Poisson draw whose rate is a Gamma(total_count, exp(-logits)) draw
        from darklib.distributions.gamma import Gamma

        with dl.no_grad():
            gamma = Gamma(self.total_count, dl.exp(-self.logits), validate_args=False)
            rate = gamma.sample(sample_shape)
            return draw("poisson", rate.shape, rate, rate)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self._param)
        n, logits = self.total_count, self.logits
        log_unnormalized = n * F.logsigmoid(-logits) + value * F.logsigmoid(logits)
        log_normalization = -dl.lgamma(n + value) + dl.lgamma(1.0 + value) + dl.lgamma(n)
        # total_count = 0 with value 0: probability 1
        log_normalization = dl.where(n + value == 0, 0.0, log_normalization)
        return log_unnormalized - log_normalization
