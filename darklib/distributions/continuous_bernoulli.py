"""The continuous Bernoulli distribution on [0, 1] (Loaiza-Ganem and Cunningham, 2019),
parametrised by ``probs`` or ``logits``: density C(p) p^x (1 - p)^(1 - x).

Its normaliser C(p) = 2 artanh(1 - 2p) / (1 - 2p) and the moments built from it lose all
their digits as p nears 1/2 (0 / 0); inside ``lims`` they are taken from their Taylor
series about 1/2 instead, and the closed forms are evaluated at ``lims[0]`` only (so that
no NaN reaches a gradient through ``where``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.utils import (
    ProbsOrLogitsParam,
    as_float,
    broadcast_all,
    clamp_probs,
    lazy_property,
    logits_to_probs,
    one_parameter,
    standard_uniform,
)
from darklib.nn import functional as F
from darklib.tensor import Size, Tensor

__all__ = ["ContinuousBernoulli"]

_LOG_2 = math.log(2.0)


class ContinuousBernoulli(ProbsOrLogitsParam, ExponentialFamily):
    """Continuous Bernoulli distribution with ``probs`` in (0, 1) or real ``logits`` (not
    both); unlike the Bernoulli's, ``probs`` is no probability (the mean differs from it)
    and ``logits`` are no log-odds. ``lims``: the interval about 1/2 where the Taylor
    series replace the closed forms."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True

    def __init__(
        self,
        probs: Any = None,
        logits: Any = None,
        lims: tuple[float, float] = (0.499, 0.501),
        validate_args: bool | None = None,
    ):
        one_parameter(probs, logits)
        if probs is not None:
            (param,) = broadcast_all(probs)
            # (checked before the clamp below, after which any value would pass; as torch,
            # only when validate_args is given, True or False)
            if validate_args is not None and not bool(
                self.arg_constraints["probs"].check(param).all()
            ):
                raise ValueError("The parameter probs has invalid values")
            param = clamp_probs(param)
            self.probs = param
        else:
            (param,) = broadcast_all(logits)
            self.logits = param
        self._param = param
        given = probs if probs is not None else logits
        batch_shape = Size() if isinstance(given, numbers.Number) else param.shape
        self._lims = lims
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> ContinuousBernoulli:
        new = self._expand_probs_or_logits(batch_shape, _instance, ContinuousBernoulli)
        new._lims = self._lims
        return new

    @lazy_property
    def probs(self) -> Tensor:
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    # ------------------------------------------------------------------ the normaliser

    def _outside_unstable_region(self) -> Tensor:
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self) -> Tensor:
        """``probs`` where the closed forms are used, ``lims[0]`` elsewhere."""
        return dl.where(self._outside_unstable_region(), self.probs, float(self._lims[0]))

    def _cont_bern_log_norm(self) -> Tensor:
        """log C(probs): log|log(1-p) - log p| - log|1 - 2p|, or its series about 1/2."""
        p = self._cut_probs()
        below = p <= 0.5
        # each branch evaluated where it is finite only (the other side gets a harmless
        # stand-in), so that no NaN appears in either branch's gradient
        p_below = dl.where(below, p, 0.0)
        p_above = dl.where(p >= 0.5, p, 1.0)
        log_abs_1m2p = dl.where(below, dl.log1p(-2.0 * p_below), dl.log(2.0 * p_above - 1.0))
        closed = dl.log(dl.abs(dl.log1p(-p) - dl.log(p))) - log_abs_1m2p
        x = (self.probs - 0.5).pow(2)
        taylor = _LOG_2 + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return dl.where(self._outside_unstable_region(), closed, taylor)

    # ------------------------------------------------------------------ moments

    @property
    def mean(self) -> Tensor:
        p = self._cut_probs()
        closed = p / (2.0 * p - 1.0) + 1.0 / (dl.log1p(-p) - dl.log(p))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return dl.where(self._outside_unstable_region(), closed, taylor)

    @property
    def variance(self) -> Tensor:
        p = self._cut_probs()
        closed = p * (p - 1.0) / (1.0 - 2.0 * p).pow(2) + 1.0 / (dl.log1p(-p) - dl.log(p)).pow(2)
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return dl.where(self._outside_unstable_region(), closed, taylor)

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    # ------------------------------------------------------------------ draws and densities

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        u = standard_uniform(self._extended_shape(sample_shape), self.probs)
        return self.icdf(u)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        u = standard_uniform(self._extended_shape(sample_shape), self.probs)
        with dl.no_grad():
            return self.icdf(u)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_float(value, self.logits))
        value = value.to(logits.dtype)
        # x log p + (1 - x) log(1 - p) = x * logits - softplus(logits)
        return value * logits - F.softplus(logits) + self._cont_bern_log_norm()

    def cdf(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.probs)
        p = self._cut_probs()
        closed = (p.pow(value) * (1.0 - p).pow(1.0 - value) + p - 1.0) / (2.0 * p - 1.0)
        inside = dl.where(self._outside_unstable_region(), closed, value)
        return dl.where(value <= 0.0, 0.0, dl.where(value >= 1.0, 1.0, inside))

    def icdf(self, value: Any) -> Tensor:
        value = as_float(value, self.probs)
        p = self._cut_probs()
        closed = (dl.log1p(-p + value * (2.0 * p - 1.0)) - dl.log1p(-p)) / (
            dl.log(p) - dl.log1p(-p)
        )
        return dl.where(self._outside_unstable_region(), closed, value)

    def entropy(self) -> Tensor:
        log_q = dl.log1p(-self.probs)
        log_p = dl.log(self.probs)
        return self.mean * (log_q - log_p) - self._cont_bern_log_norm() - log_q

    # ------------------------------------------------------------------ exponential family

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        """log of the integral of exp(x t) over [0, 1]: log(expm1(x) / x), or its series
        about 0 where |x| is small. (The region is torch's: the ``lims`` less 1/2, taken
        as bounds on the natural parameter.)"""
        lo, hi = self._lims[0] - 0.5, self._lims[1] - 0.5
        outside = (x <= lo) | (x > hi)
        cut = dl.where(outside, x, float(lo))
        closed = dl.log(dl.abs(dl.expm1(cut))) - dl.log(dl.abs(cut))
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return dl.where(outside, closed, taylor)
