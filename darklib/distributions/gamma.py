"""The gamma distribution, and the standard gamma draw with its implicit gradient."""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.utils import as_float, broadcast_all, draw
from darklib.tensor import Tensor

__all__ = ["Chi2", "FisherSnedecor", "Gamma", "standard_gamma"]

_SERIES_TERMS = 30  # x^n / (a (a+1) ... (a+n)) below 1e-32 for x < 1 by then


def _dx_dalpha(alpha: Tensor, x: Tensor) -> Tensor:
    """d x / d alpha of a Gamma(alpha, 1) draw x with its uniform noise held fixed: the
    implicit derivative -(dP/dalpha) / (dP/dx) of the CDF P(alpha, x) = igamma(alpha, x)."""
    # x < 1: the series P = x^a e^-x sum_n x^n / Gamma(a+n+1), differentiated in a and
    # divided by the density, gives -x sum_n t_n (log x - digamma(a+n+1)), with
    # t_n = x^n / (a (a+1) ... (a+n)); no underflow even for the tiniest draws.
    xs = x.clamp(max=1.0)
    log_x = dl.log(xs)
    t = 1.0 / alpha
    psi = dl.digamma(alpha + 1)
    total = t * (log_x - psi)
    for n in range(1, _SERIES_TERMS):
        t = t * xs / (alpha + n)
        psi = psi + 1.0 / (alpha + n)
        total = total + t * (log_x - psi)
    small = -xs * total
    # x >= 1: dP/dalpha by a fourth-order central difference of the smaller of P and
    # Q = 1 - P (both accurate to their last digits), over the density
    h = 1e-3 * dl.minimum(alpha, dl.sqrt(alpha))
    use_q = dl.igamma(alpha, x) > 0.5

    def tail(a: Tensor) -> Tensor:
        return dl.where(use_q, -dl.igammac(a, x), dl.igamma(a, x))

    d1 = tail(alpha + h) - tail(alpha - h)
    d2 = tail(alpha + 2 * h) - tail(alpha - 2 * h)
    dP = (8 * d1 - d2) / (12 * h)
    density = dl.exp((alpha - 1) * dl.log(x) - x - dl.lgamma(alpha))
    return dl.where(x < 1.0, small, -dP / density)


class _StandardGamma(Function):
    """A Gamma(alpha, 1) draw (at least the dtype's tiny, as torch's), differentiable in
    alpha through the implicit reparameterisation gradient."""

    @staticmethod
    def forward(ctx, alpha):
        xp = get_xp(alpha)
        a = Tensor._wrap(alpha)
        x = draw("standard_gamma", alpha.shape, a, a).array
        x = xp.maximum(x, xp.finfo(alpha.dtype).tiny)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, g):
        alpha, x = ctx.saved_tensors
        with dl.no_grad():  # (in float64: the finite difference needs its digits)
            a64, x64 = Tensor._wrap(alpha).double(), Tensor._wrap(x).double()
            d = _dx_dalpha(a64, x64).array.astype(g.dtype, copy=False)
        return g * d


def standard_gamma(alpha: Tensor) -> Tensor:
    """Draws from Gamma(alpha, 1), one per element of ``alpha`` (torch._standard_gamma),
    with the implicit reparameterisation gradient with respect to ``alpha``."""
    return _StandardGamma.apply(alpha)


class Gamma(ExponentialFamily):
    """Gamma distribution with shape ``concentration`` and inverse scale ``rate`` (both > 0):
    density rate^c x^(c-1) e^(-rate x) / Gamma(c) on x > 0."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, concentration: Any, rate: Any, validate_args: bool | None = None):
        batch_shape = self._set_params(concentration=concentration, rate=rate)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Gamma:
        return self._expanded(
            batch_shape, _instance, Gamma, concentration=self.concentration, rate=self.rate
        )

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        value = standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        return value.clamp(min=dl.finfo(value.dtype).tiny).detach() + (value - value.detach())

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.rate)
        c, r = self.concentration, self.rate
        return dl.xlogy(c, r) + dl.xlogy(c - 1, value) - r * value - dl.lgamma(c)

    def cdf(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.rate)
        return dl.igamma(self.concentration, self.rate * value)

    def entropy(self) -> Tensor:
        c = self.concentration
        return c - dl.log(self.rate) + dl.lgamma(c) + (1.0 - c) * dl.digamma(c)

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return self.concentration - 1, -self.rate

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return dl.lgamma(x + 1) + (x + 1) * dl.log(-y.reciprocal())


class Chi2(Gamma):
    """Chi-square distribution with ``df`` degrees of freedom: Gamma(df / 2, 1 / 2)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df: Any, validate_args: bool | None = None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Chi2:
        new = self._get_checked_instance(Chi2, _instance)
        return super().expand(batch_shape, new)

    @property
    def df(self) -> Tensor:
        return self.concentration * 2


class FisherSnedecor(Distribution):
    """The F distribution with ``df1`` and ``df2`` degrees of freedom: the ratio of two
    independent chi-square variables, each divided by its degrees of freedom."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True
    df1: Tensor
    df2: Tensor

    def __init__(self, df1: Any, df2: Any, validate_args: bool | None = None):
        batch_shape = self._set_params(df1=df1, df2=df2)
        self._gamma1 = Gamma(0.5 * self.df1, 0.5 * self.df1, validate_args=False)
        self._gamma2 = Gamma(0.5 * self.df2, 0.5 * self.df2, validate_args=False)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> FisherSnedecor:
        new = self._expanded(batch_shape, _instance, FisherSnedecor, df1=self.df1, df2=self.df2)
        new._gamma1 = self._gamma1.expand(batch_shape)
        new._gamma2 = self._gamma2.expand(batch_shape)
        return new

    @property
    def mean(self) -> Tensor:
        df2 = self.df2
        return dl.where(df2 > 2, df2 / (df2 - 2), float("nan"))

    @property
    def mode(self) -> Tensor:
        df1, df2 = self.df1, self.df2
        return dl.where(df1 > 2, (df1 - 2) / df1 * df2 / (df2 + 2), float("nan"))

    @property
    def variance(self) -> Tensor:
        df1, df2 = self.df1, self.df2
        finite = 2 * df2.pow(2) * (df1 + df2 - 2) / (df1 * (df2 - 2).pow(2) * (df2 - 4))
        return dl.where(df2 > 4, finite, float("nan"))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        # (chi2(df1) / df1) / (chi2(df2) / df2), each a Gamma(df / 2, df / 2) draw
        x1 = self._gamma1.rsample(sample_shape)
        x2 = self._gamma2.rsample(sample_shape)
        tiny = dl.finfo(x2.dtype).tiny
        return (x1 / x2.clamp(min=tiny)).clamp(min=tiny)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.df1)
        h1, h2 = 0.5 * self.df1, 0.5 * self.df2
        ratio = self.df1 / self.df2
        norm = dl.lgamma(h1 + h2) - dl.lgamma(h1) - dl.lgamma(h2)
        return (
            norm
            + h1 * dl.log(ratio)
            + (h1 - 1) * dl.log(value)
            - (h1 + h2) * dl.log1p(ratio * value)
        )
