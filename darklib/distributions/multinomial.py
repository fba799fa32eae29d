"""The multinomial distribution: counts of ``total_count`` categorical draws."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.categorical import Categorical
from darklib.distributions.distribution import Distribution, _size
from darklib.distributions.poisson import Binomial
from darklib.distributions.utils import alias, as_float, broadcast_all
from darklib.tensor import Tensor

__all__ = ["Multinomial"]


class Multinomial(Distribution):
    """Counts over K categories of ``total_count`` (an int) independent draws with
    probabilities ``probs`` or unnormalised ``logits`` (..., K); exactly one of the two.
    ``log_prob`` does not need ``total_count`` (the counts give it)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(
        self,
        total_count: int = 1,
        probs: Any = None,
        logits: Any = None,
        validate_args: bool | None = None,
    ):
        if isinstance(total_count, bool) or not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        # (the parameters are checked below, as this distribution's)
        self._categorical = Categorical(probs=probs, logits=logits, validate_args=False)
        self._binomial = Binomial(total_count, probs=self.probs, validate_args=False)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Multinomial:
        new = self._get_checked_instance(Multinomial, _instance)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = Binomial(
            self.total_count, probs=new._categorical.probs, validate_args=False
        )
        return self._init_expanded(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self) -> constraints.Constraint:
        return constraints.multinomial(self.total_count)

    probs = alias("_categorical.probs")
    logits = alias("_categorical.logits")
    param_shape = alias("_categorical.param_shape")

    @property
    def mean(self) -> Tensor:
        return self.probs * self.total_count

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        sample_shape = tuple(_size(sample_shape, "sample_shape"))
        with dl.no_grad():
            # total_count category draws per sample, counted per category
            draws = self._categorical.sample((self.total_count, *sample_shape))
            draws = draws.permute(*range(1, draws.dim()), 0)
            counts = dl.zeros(
                self._extended_shape(sample_shape), dtype=self.probs.dtype, device=draws.device
            )
            return counts.scatter_add(-1, draws, dl.ones_like(draws, dtype=counts.dtype))

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_float(value, self.logits))
        log_factorial_n = dl.lgamma(value.sum(-1) + 1)
        log_factorial_xs = dl.lgamma(value + 1).sum(-1)
        # a category of probability 0 drawn 0 times contributes 0 (not 0 * -inf)
        logits = dl.where((value == 0) & (logits == float("-inf")), 0.0, logits)
        return log_factorial_n - log_factorial_xs + (logits * value).sum(-1)

    def entropy(self) -> Tensor:
        n = float(self.total_count)
        term1 = n * self._categorical.entropy() - dl.lgamma(
            dl.tensor(n + 1, dtype=self.probs.dtype, device=self.probs.device)
        )
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = dl.exp(self._binomial.log_prob(support))
        weights = dl.lgamma(support + 1)
        return term1 + (binomial_probs * weights).sum((0, -1))
