"""Relaxed (concrete, Gumbel-softmax) Bernoulli and one-hot categorical distributions:
continuous, reparameterisable stand-ins for the discrete ones at a ``temperature``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.categorical import Categorical
from darklib.distributions.distribution import Distribution
from darklib.distributions.transformed_distribution import TransformedDistribution
from darklib.distributions.transforms import ExpTransform, SigmoidTransform, Transform
from darklib.distributions.utils import (
    ProbsOrLogitsParam,
    alias,
    as_float,
    broadcast_all,
    clamp_probs,
    standard_uniform,
)
from darklib.tensor import Tensor

__all__ = [
    "ExpRelaxedCategorical",
    "LogitRelaxedBernoulli",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
]


class LogitRelaxedBernoulli(ProbsOrLogitsParam, Distribution):
    """The logit of a :class:`RelaxedBernoulli` draw: (logit(U) + logits) / temperature."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(
        self,
        temperature: Any,
        probs: Any = None,
        logits: Any = None,
        validate_args: bool | None = None,
    ):
        self.temperature = temperature
        batch_shape = self._set_probs_or_logits(probs, logits)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> LogitRelaxedBernoulli:
        new = self._expand_probs_or_logits(batch_shape, _instance, LogitRelaxedBernoulli)
        new.temperature = self.temperature
        return new

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        probs = clamp_probs(self.probs.expand(shape))
        u = clamp_probs(standard_uniform(shape, probs))
        logistic = dl.log(u) - dl.log1p(-u)
        return (logistic + dl.log(probs) - dl.log1p(-probs)) / self.temperature

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_float(value, self.logits))
        diff = logits - value * self.temperature
        return dl.log(as_float(self.temperature, logits)) + diff - 2 * dl.log1p(dl.exp(diff))


class _Relaxed(TransformedDistribution):
    """A relaxed family: ``_transform_cls()`` of a ``_base_cls(temperature, probs, logits)``
    draw, showing the base's parameters. ``_base_validation``: the base validates as this
    distribution is told (else by default, as torch's RelaxedBernoulli)."""

    has_rsample = True
    _base_cls: Callable[..., Distribution]
    _transform_cls: Callable[[], Transform]
    _base_validation: bool

    def __init__(
        self,
        temperature: Any,
        probs: Any = None,
        logits: Any = None,
        validate_args: bool | None = None,
    ):
        base_validate_args = validate_args if self._base_validation else None
        base = self._base_cls(temperature, probs, logits, validate_args=base_validate_args)
        super().__init__(base, self._transform_cls(), validate_args=validate_args)

    temperature = alias("base_dist.temperature")
    logits = alias("base_dist.logits")
    probs = alias("base_dist.probs")


class RelaxedBernoulli(_Relaxed):
    """A sample in (0, 1) that tends to a Bernoulli draw as ``temperature`` goes to 0:
    sigmoid of a :class:`LogitRelaxedBernoulli` draw."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _base_cls, _transform_cls, _base_validation = LogitRelaxedBernoulli, SigmoidTransform, False

    def expand(self, batch_shape: Any, _instance: Any = None) -> RelaxedBernoulli:
        new = self._get_checked_instance(RelaxedBernoulli, _instance)
        return super().expand(batch_shape, _instance=new)


class ExpRelaxedCategorical(Distribution):
    """The log of a :class:`RelaxedOneHotCategorical` draw (a log-softmax of Gumbel-perturbed
    logits over the temperature)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        temperature: Any,
        probs: Any = None,
        logits: Any = None,
        validate_args: bool | None = None,
    ):
        self._categorical = Categorical(probs, logits)
        self.temperature = temperature
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> ExpRelaxedCategorical:
        new = self._get_checked_instance(ExpRelaxedCategorical, _instance)
        new.temperature = self.temperature
        new._categorical = self._categorical.expand(batch_shape)
        return self._init_expanded(new, batch_shape)

    param_shape = alias("_categorical.param_shape")
    logits = alias("_categorical.logits")
    probs = alias("_categorical.probs")

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = clamp_probs(standard_uniform(shape, self.logits))
        gumbels = -dl.log(-dl.log(u))
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value: Any) -> Tensor:
        k = self._categorical._num_events
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_float(value, self.logits))
        temperature = as_float(self.temperature, logits)
        log_scale = dl.lgamma(dl.full_like(temperature, float(k))) + (k - 1) * dl.log(temperature)
        score = logits - value * temperature
        score = (score - score.logsumexp(dim=-1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(_Relaxed):
    """The Gumbel-softmax (concrete) distribution: points of the simplex that tend to
    one-hot draws as ``temperature`` goes to 0, differentiable in the logits."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    _base_cls, _transform_cls, _base_validation = ExpRelaxedCategorical, ExpTransform, True

    def expand(self, batch_shape: Any, _instance: Any = None) -> RelaxedOneHotCategorical:
        new = self._get_checked_instance(RelaxedOneHotCategorical, _instance)
        return super().expand(batch_shape, _instance=new)
