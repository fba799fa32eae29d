"""The Bernoulli distribution over {0, 1}, parametrised by ``probs`` or ``logits``."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import (
    as_float,
    broadcast_all,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
    scalar_shape,
)
from darklib.nn import functional as F
from darklib.tensor import Size, Tensor

__all__ = ["Bernoulli", "one_parameter"]


def one_parameter(probs: Any, logits: Any) -> None:
    """Refuse both or neither of ``probs`` and ``logits`` (every two-way family does)."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class Bernoulli(Distribution):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0; exactly one of the two."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None):
        one_parameter(probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            self._param = self.probs
        else:
            (self.logits,) = broadcast_all(logits)
            self._param = self.logits
        given = probs if probs is not None else logits
        batch_shape = Size() if scalar_shape(given) else self._param.shape
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Bernoulli:
        name = "probs" if "probs" in self.__dict__ else "logits"
        new = self._expanded(batch_shape, _instance, Bernoulli, **{name: self.__dict__[name]})
        new._param = new.__dict__[name]
        return new

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        return self._param.shape

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
        return value.to(logits.dtype) * logits - F.softplus(logits)

    def entropy(self) -> Tensor:
        return F.softplus(self.logits) - self.probs * self.logits

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = dl.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1, *tuple(self._batch_shape))) if expand else values
