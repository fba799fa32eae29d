"""Categorical distributions over {0, ..., K-1}: as indices and as one-hot vectors."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import ProbsOrLogitsParam, alias, one_parameter
from darklib.nn import functional as F
from darklib.tensor import Size, Tensor

__all__ = ["Categorical", "OneHotCategorical", "OneHotCategoricalStraightThrough"]


def _event_param(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        value = dl.tensor(value, dtype=dl.get_default_dtype())
    if value.dim() < 1:
        raise ValueError(f"`{name}` parameter must be at least one-dimensional.")
    return value


class Categorical(ProbsOrLogitsParam, Distribution):
    """K categories with probabilities ``probs`` (normalised over the last dimension) or
    unnormalised log-probabilities ``logits``; exactly one of the two. The last dimension
    of the parameter indexes the categories, the others make up the batch."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True
    _binary = False

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None):
        one_parameter(probs, logits)
        if probs is not None:
            probs = _event_param(probs, "probs")
            self.probs = probs / probs.sum(-1, keepdim=True)
            self._param = self.probs
        else:
            logits = _event_param(logits, "logits")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
            self._param = self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = self._param.shape[:-1] if self._param.dim() > 1 else Size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Categorical:
        new = self._expand_probs_or_logits(batch_shape, _instance, Categorical)
        new._num_events = self._num_events
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self._num_events - 1)

    @property
    def mean(self) -> Tensor:
        return dl.full(
            self._extended_shape(), float("nan"), dtype=self._param.dtype, device=self._param.device
        )

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    @property
    def variance(self) -> Tensor:
        return self.mean

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        n = 1
        for s in shape[: len(shape) - len(self._batch_shape)]:
            n *= s
        with dl.no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)
            if n == 0 or probs_2d.shape[0] == 0:
                return dl.zeros(shape, dtype=dl.int64, device=self._param.device)
            return dl.multinomial(probs_2d, n, True).T.reshape(shape)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        if not isinstance(value, Tensor):
            value = dl.tensor(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = dl.broadcast_tensors(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self) -> Tensor:
        # (clamped: a -inf logit with probability 0 contributes 0, not NaN)
        logits = self.logits.clamp(min=dl.finfo(self.logits.dtype).min)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = dl.arange(self._num_events, dtype=dl.int64, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1, *tuple(self._batch_shape))) if expand else values


class OneHotCategorical(Distribution):
    """:class:`Categorical` whose draws are one-hot vectors of length K (the event shape)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> OneHotCategorical:
        new = self._get_checked_instance(OneHotCategorical, _instance)
        new._categorical = self._categorical.expand(batch_shape)
        return self._init_expanded(new, batch_shape)

    _param = alias("_categorical._param")
    probs = alias("_categorical.probs")
    logits = alias("_categorical.logits")
    param_shape = alias("_categorical.param_shape")

    @property
    def mean(self) -> Tensor:
        return self._categorical.probs

    @property
    def mode(self) -> Tensor:
        probs = self._categorical.probs
        return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self) -> Tensor:
        probs = self._categorical.probs
        return probs * (1 - probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        indices = self._categorical.sample(sample_shape)
        return F.one_hot(indices, self._categorical._num_events).to(self.probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self._event_shape[0]
        p = self._param
        values = dl.eye(n, dtype=p.dtype, device=p.device)
        values = values.reshape((n,) + (1,) * len(self._batch_shape) + (n,))
        return values.expand((n, *tuple(self._batch_shape), n)) if expand else values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """:class:`OneHotCategorical` whose ``rsample`` passes gradients straight through: the
    one-hot draw plus ``probs - probs.detach()`` (Bengio et al., 2013)."""

    has_rsample = True

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        samples = self.sample(sample_shape)
        probs = self._categorical.probs  # (cached: the gradient reaches the parameter)
        return samples + (probs - probs.detach())
