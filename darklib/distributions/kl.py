"""``kl_divergence(p, q)``: KL(p || q) by a registry of pairwise formulas (``register_kl``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import darklib as dl
from darklib.distributions.bernoulli import Bernoulli
from darklib.distributions.categorical import Categorical, OneHotCategorical
from darklib.distributions.cauchy import Cauchy
from darklib.distributions.continuous_bernoulli import ContinuousBernoulli
from darklib.distributions.dirichlet import Beta, Dirichlet
from darklib.distributions.distribution import Distribution
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.exponential import Exponential
from darklib.distributions.extreme import Gumbel, Pareto
from darklib.distributions.gamma import Gamma
from darklib.distributions.independent import Independent
from darklib.distributions.laplace import Laplace
from darklib.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal
from darklib.distributions.multivariate_normal import (
    MultivariateNormal,
    batch_mahalanobis,
    half_log_det,
    solve_lower,
)
from darklib.distributions.normal import Normal
from darklib.distributions.poisson import Binomial, Geometric, Poisson
from darklib.distributions.transformed_distribution import HalfNormal, TransformedDistribution
from darklib.distributions.uniform import Uniform
from darklib.distributions.utils import sum_rightmost
from darklib.nn import functional as F
from darklib.tensor import Tensor

__all__ = ["kl_divergence", "register_kl"]

_EULER_GAMMA = 0.57721566490153286061

_KL_REGISTRY: dict[tuple[type, type], Callable] = {}
_KL_MEMO: dict[tuple[type, type], Any] = {}


def register_kl(type_p: type, type_q: type) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn(p, q)`` as KL(p || q) for instances of these types (or
    their subclasses: the most specific registered pair wins)::

        @register_kl(Normal, Normal)
        def kl_normal_normal(p, q): ...
    """
    for t, name in ((type_p, "type_p"), (type_q, "type_q")):
        if not (isinstance(t, type) and issubclass(t, Distribution)):
            raise TypeError(
                f"register_kl: expected {name} to be a subclass of Distribution, got {t!r}"
            )

    def decorator(fn: Callable) -> Callable:
        _KL_REGISTRY[type_p, type_q] = fn
        _KL_MEMO.clear()
        return fn

    return decorator


def _dispatch(type_p: type, type_q: type) -> Any:
    """The registered function for the closest pair of base classes, or None."""
    matches = [(p, q) for p, q in _KL_REGISTRY if issubclass(type_p, p) and issubclass(type_q, q)]
    if not matches:
        return None
    mro_p, mro_q = type_p.__mro__, type_q.__mro__

    def rank(pair: tuple[type, type], p_first: bool) -> tuple[int, int]:
        rp, rq = mro_p.index(pair[0]), mro_q.index(pair[1])
        return (rp, rq) if p_first else (rq, rp)

    left = min(matches, key=lambda m: rank(m, True))
    right = min(matches, key=lambda m: rank(m, False))
    if _KL_REGISTRY[left] is not _KL_REGISTRY[right]:
        warnings.warn(
            f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}). Please register_kl"
            f"({left[0].__name__}, {right[1].__name__})",
            RuntimeWarning,
            stacklevel=3,
        )
    return _KL_REGISTRY[left]


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q) = E_p[log p(x) - log q(x)], over the batch shape of p and q broadcast.

    Raises NotImplementedError for a pair of types with no registered formula."""
    key = (type(p), type(q))
    if key not in _KL_MEMO:
        _KL_MEMO[key] = _dispatch(*key)
    fn = _KL_MEMO[key]
    if fn is None:
        raise NotImplementedError(
            f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
            f"{type(q).__name__}"
        )
    return fn(p, q)


def _infinite_where(mask: Tensor, value: Tensor) -> Tensor:
    return dl.where(mask, float("inf"), value)


@register_kl(ExponentialFamily, ExponentialFamily)
def _kl_expfamily_expfamily(p: ExponentialFamily, q: ExponentialFamily) -> Tensor:
    """The Bregman divergence of the log normaliser F between the natural parameters:
    F(theta_q) - F(theta_p) - <theta_q - theta_p, grad F(theta_p)> (one family only)."""
    if type(p) is not type(q):
        raise NotImplementedError(
            "The cross KL-divergence between different exponential families cannot be "
            "computed using Bregman divergences (no KL(p || q) is implemented for p type "
            f"{type(p).__name__} and q type {type(q).__name__})"
        )
    p_params, p_log_norm, grads = p._log_normalizer_and_grads()
    result = q._log_normalizer(*q._natural_params) - p_log_norm
    for theta_p, theta_q, g in zip(p_params, q._natural_params, grads):
        term = (theta_q - theta_p) * g
        # (each parameter's own dimensions beyond the batch: a vector's or a matrix's)
        result = result - sum_rightmost(term, max(term.dim() - result.dim(), 0))
    return result


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Tensor:
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - dl.log(var_ratio))


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = dl.where(p.probs == 0, 0.0, _infinite_where(q.probs == 0, t1))
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = dl.where(p.probs == 1, 0.0, _infinite_where(q.probs == 1, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical) -> Tensor:
    t = p.probs * (p.logits - q.logits)
    t = _infinite_where((q.probs == 0).expand_as(t), t)
    t = dl.where((p.probs == 0).expand_as(t), 0.0, t)
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform) -> Tensor:
    result = dl.log((q.high - q.low) / (p.high - p.low))
    return _infinite_where((q.low > p.low) | (q.high < p.high), result)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p: Exponential, q: Exponential) -> Tensor:
    rate_ratio = q.rate / p.rate
    return rate_ratio - 1 - dl.log(rate_ratio)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p: Laplace, q: Laplace) -> Tensor:
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    t1 = -dl.log(scale_ratio)
    t2 = loc_abs_diff / q.scale
    t3 = scale_ratio * dl.exp(-loc_abs_diff / p.scale)
    return t1 + t2 + t3 - 1


def _gaussian_scale_tril(d: MultivariateNormal | LowRankMultivariateNormal) -> Tensor:
    """The (unbroadcast) lower Cholesky factor of a Gaussian's covariance."""
    if isinstance(d, MultivariateNormal):
        return d._unbroadcasted_scale_tril
    W, D = d._unbroadcasted_cov_factor, d._unbroadcasted_cov_diag
    return dl.linalg.cholesky(dl.matmul(W, W.mT) + dl.diag_embed(D))


@register_kl(MultivariateNormal, MultivariateNormal)
@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
@register_kl(LowRankMultivariateNormal, MultivariateNormal)
@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Tensor:
    if p.event_shape != q.event_shape:
        raise ValueError(
            "KL-divergence between two Multivariate Normals with different event shapes "
            f"cannot be computed ({p.event_shape} vs {q.event_shape})"
        )
    Lp, Lq = _gaussian_scale_tril(p), _gaussian_scale_tril(q)
    n = p.event_shape[0]
    batch = tuple(dl.broadcast_shapes(Lq.shape[:-2], Lp.shape[:-2]))
    # tr(Sq^-1 Sp) = ||Lq^-1 Lp||_F^2
    term2 = solve_lower(Lq.expand((*batch, n, n)), Lp.expand((*batch, n, n)))
    term2 = term2.pow(2).sum((-2, -1))
    term3 = batch_mahalanobis(Lq, q.loc - p.loc)
    return half_log_det(Lq) - half_log_det(Lp) + 0.5 * (term2 + term3 - n)


@register_kl(Independent, Independent)
def _kl_independent_independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError(
            "kl_divergence(Independent, Independent): reinterpreted_batch_ndims differ "
            f"({p.reinterpreted_batch_ndims} vs {q.reinterpreted_batch_ndims})"
        )
    result = kl_divergence(p.base_dist, q.base_dist)
    return sum_rightmost(result, p.reinterpreted_batch_ndims)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Tensor:
    t1 = q.concentration * dl.log(p.rate / q.rate)
    t2 = dl.lgamma(q.concentration) - dl.lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * dl.digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p: Dirichlet, q: Dirichlet) -> Tensor:
    sum_p = p.concentration.sum(-1)
    sum_q = q.concentration.sum(-1)
    t1 = dl.lgamma(sum_p) - dl.lgamma(sum_q)
    t2 = (dl.lgamma(p.concentration) - dl.lgamma(q.concentration)).sum(-1)
    t3 = p.concentration - q.concentration
    t4 = dl.digamma(p.concentration) - dl.digamma(sum_p).unsqueeze(-1)
    return t1 - t2 + (t3 * t4).sum(-1)


@register_kl(Beta, Beta)
def _kl_beta_beta(p: Beta, q: Beta) -> Tensor:
    return _kl_dirichlet_dirichlet(p._dirichlet, q._dirichlet)


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p: Poisson, q: Poisson) -> Tensor:
    return p.rate * (dl.log(p.rate) - dl.log(q.rate)) - (p.rate - q.rate)


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p: Binomial, q: Binomial) -> Tensor:
    # (q's support must hold p's: a larger q.total_count has no closed form here)
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError(
            "KL between Binomials where q.total_count > p.total_count is not implemented"
        )
    kl = p.total_count * (p.probs * (p.logits - q.logits) + dl.log1p(-p.probs) - dl.log1p(-q.probs))
    return _infinite_where(p.total_count > q.total_count, kl)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p: Geometric, q: Geometric) -> Tensor:
    return -p.entropy() - dl.log1p(-q.probs) / p.probs - q.logits


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p: TransformedDistribution, q: TransformedDistribution) -> Tensor:
    # the same bijection on both sides leaves the divergence unchanged
    if p.transforms != q.transforms:
        raise NotImplementedError(
            "kl_divergence(TransformedDistribution, TransformedDistribution): the transforms differ"
        )
    if p.event_shape != q.event_shape:
        raise NotImplementedError(
            "kl_divergence(TransformedDistribution, TransformedDistribution): the event shapes "
            f"differ ({p.event_shape} vs {q.event_shape})"
        )
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p: Cauchy, q: Cauchy) -> Tensor:
    # (Chyzak & Nielsen, 2019)
    t1 = dl.log((p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2))
    return t1 - dl.log(4 * p.scale * q.scale)


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p: HalfNormal, q: HalfNormal) -> Tensor:
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p: Gumbel, q: Gumbel) -> Tensor:
    ct1 = p.scale / q.scale
    ct2 = q.loc / q.scale
    ct3 = p.loc / q.scale
    t1 = -dl.log(ct1) - ct2 + ct3
    t2 = ct1 * _EULER_GAMMA
    t3 = dl.exp(ct2 + dl.lgamma(1 + ct1) - ct3)
    return t1 + t2 + t3 - (1 + _EULER_GAMMA)


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p: Pareto, q: Pareto) -> Tensor:
    # from p's support being inside q's; otherwise infinite
    scale_ratio = p.scale / q.scale
    alpha_ratio = q.alpha / p.alpha
    t1 = q.alpha * dl.log(scale_ratio)
    t2 = -dl.log(alpha_ratio)
    result = t1 + t2 + alpha_ratio - 1
    return _infinite_where(p.support.lower_bound < q.support.lower_bound, result)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_cb_cb(p: ContinuousBernoulli, q: ContinuousBernoulli) -> Tensor:
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + dl.log1p(-p.probs)
    t3 = -q._cont_bern_log_norm() - dl.log1p(-q.probs)
    return t1 + t2 + t3


# ------------------------------------------------------------------ between families
# (closed forms as E_p[log p] - E_p[log q]; infinite where p's support is not inside q's)


def _infinite_like(t: Tensor) -> Tensor:
    return dl.full_like(t, float("inf"))


def _x_log_x(t: Tensor) -> Tensor:
    return t * dl.log(t)


def _register_infinite(type_p: type, param: str, *types_q: type) -> None:
    for type_q in types_q:
        register_kl(type_p, type_q)(lambda p, q: _infinite_like(getattr(p, param)))


_register_infinite(Exponential, "rate", Uniform, Pareto, Beta)
_register_infinite(Gamma, "rate", Uniform, Pareto, Beta)
_register_infinite(Gumbel, "loc", Uniform, Pareto, Gamma, Exponential, Beta)
_register_infinite(Laplace, "loc", Uniform, Pareto, Gamma, Exponential, Beta)
_register_infinite(Normal, "loc", Uniform, Pareto, Gamma, Exponential, Beta)
_register_infinite(Pareto, "scale", Uniform, Beta)
_register_infinite(Poisson, "rate", Binomial, Bernoulli)
register_kl(Beta, Pareto)(lambda p, q: _infinite_like(p.concentration1))
_register_infinite(ContinuousBernoulli, "probs", Pareto)
for _type_p, _param in (
    (Exponential, "rate"),
    (Gamma, "concentration"),
    (Gumbel, "loc"),
    (Laplace, "loc"),
    (Normal, "loc"),
    (Pareto, "scale"),
):
    _register_infinite(_type_p, _param, ContinuousBernoulli)


def _cross_entropy_cb(mean: Tensor, q: ContinuousBernoulli) -> Tensor:
    """-E_p[log q(x)] for a p on [0, 1] of mean ``mean``: log q is linear in x."""
    return -mean * q.logits - dl.log1p(-q.probs) - q._cont_bern_log_norm()


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_cb(p: Beta, q: ContinuousBernoulli) -> Tensor:
    return -p.entropy() + _cross_entropy_cb(p.mean, q)


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_cb(p: Uniform, q: ContinuousBernoulli) -> Tensor:
    # (infinite where p's support leaves [0, 1]; torch's is also infinite where it only
    # touches 0 or 1, where the divergence is finite)
    result = -p.entropy() + _cross_entropy_cb(p.mean, q)
    return _infinite_where((p.high > 1) | (p.low < 0), result)


@register_kl(ContinuousBernoulli, Exponential)
def _kl_cb_exponential(p: ContinuousBernoulli, q: Exponential) -> Tensor:
    return -p.entropy() - dl.log(q.rate) + q.rate * p.mean


@register_kl(ContinuousBernoulli, Normal)
def _kl_cb_normal(p: ContinuousBernoulli, q: Normal) -> Tensor:
    # E_p[(x - mu)^2] = var_p + mean_p^2 - 2 mu mean_p + mu^2
    t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale).pow(2)) + dl.log(q.scale)
    t3 = (p.variance + p.mean.pow(2) - 2.0 * q.loc * p.mean) / (2.0 * q.scale.pow(2))
    return -p.entropy() + t2 + t3


@register_kl(ContinuousBernoulli, Uniform)
def _kl_cb_uniform(p: ContinuousBernoulli, q: Uniform) -> Tensor:
    # (infinite where q's support does not hold [0, 1]; torch's is also infinite where
    # q.low = 0 or q.high = 1, where the divergence is finite)
    result = -p.entropy() + dl.log(q.high - q.low)
    return _infinite_where((q.low > 0) | (q.high < 1), result)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p: Bernoulli, q: Poisson) -> Tensor:
    return -p.entropy() - (p.probs * dl.log(q.rate) - q.rate)


def _beta_mean(p: Beta) -> Tensor:
    return p.concentration1 / (p.concentration1 + p.concentration0)


@register_kl(Beta, Exponential)
def _kl_beta_exponential(p: Beta, q: Exponential) -> Tensor:
    return -p.entropy() - dl.log(q.rate) + q.rate * _beta_mean(p)


@register_kl(Beta, Gamma)
def _kl_beta_gamma(p: Beta, q: Gamma) -> Tensor:
    # E_p[log x] = digamma(a) - digamma(a + b)
    e_log = dl.digamma(p.concentration1) - dl.digamma(p.concentration1 + p.concentration0)
    log_norm_q = dl.lgamma(q.concentration) - q.concentration * dl.log(q.rate)
    return -p.entropy() + log_norm_q - (q.concentration - 1) * e_log + q.rate * _beta_mean(p)


@register_kl(Beta, Normal)
def _kl_beta_normal(p: Beta, q: Normal) -> Tensor:
    mean = _beta_mean(p)
    total = p.concentration1 + p.concentration0
    second_moment = mean * (1 - mean) / (total + 1) + mean.pow(2)
    var_q = q.scale.pow(2)
    quad = 0.5 * second_moment - q.loc * mean + 0.5 * q.loc.pow(2)
    return -p.entropy() + 0.5 * dl.log(var_q * 2 * math.pi) + quad / var_q


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p: Beta, q: Uniform) -> Tensor:
    result = -p.entropy() + dl.log(q.high - q.low)
    return _infinite_where((q.low > 0) | (q.high < 1), result)


@register_kl(Exponential, Gamma)
def _kl_exponential_gamma(p: Exponential, q: Gamma) -> Tensor:
    ratio = q.rate / p.rate
    return (
        -q.concentration * dl.log(ratio)
        + ratio
        + dl.lgamma(q.concentration)
        + q.concentration * _EULER_GAMMA
        - (1 + _EULER_GAMMA)
    )


@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p: Exponential, q: Gumbel) -> Tensor:
    rs = p.rate * q.scale
    loc_ratio = q.loc / q.scale
    return (dl.log(rs) - 1) - loc_ratio + dl.exp(loc_ratio) * rs / (rs + 1) + rs.reciprocal()


@register_kl(Exponential, Normal)
def _kl_exponential_normal(p: Exponential, q: Normal) -> Tensor:
    var_q = q.scale.pow(2)
    rate2 = p.rate.pow(2)
    quad = rate2.reciprocal() - q.loc / p.rate + 0.5 * q.loc.pow(2)
    return 0.5 * dl.log(rate2 * var_q * 2 * math.pi) - 1 + quad / var_q


@register_kl(Gamma, Exponential)
def _kl_gamma_exponential(p: Gamma, q: Exponential) -> Tensor:
    return -p.entropy() - dl.log(q.rate) + q.rate * p.concentration / p.rate


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p: Gamma, q: Gumbel) -> Tensor:
    c = p.concentration
    bs = p.rate * q.scale
    loc_ratio = q.loc / q.scale
    t1 = (c - 1) * dl.digamma(c) - dl.lgamma(c) - c
    t2 = dl.log(bs) + c / bs
    t3 = dl.exp(loc_ratio) * (1 + bs.reciprocal()).pow(-c) - loc_ratio
    return t1 + t2 + t3


@register_kl(Gamma, Normal)
def _kl_gamma_normal(p: Gamma, q: Normal) -> Tensor:
    c = p.concentration
    var_q = q.scale.pow(2)
    rate2 = p.rate.pow(2)
    t1 = 0.5 * dl.log(rate2 * var_q * 2 * math.pi) - c - dl.lgamma(c)
    quad = 0.5 * (c.pow(2) + c) / rate2 - q.loc * c / p.rate + 0.5 * q.loc.pow(2)
    return t1 + (c - 1) * dl.digamma(c) + quad / var_q


@register_kl(Gumbel, Normal)
def _kl_gumbel_normal(p: Gumbel, q: Normal) -> Tensor:
    ratio = p.scale / q.scale
    t1 = dl.log(ratio / math.sqrt(2 * math.pi))
    t2 = (math.pi * ratio * 0.5).pow(2) / 3
    t3 = ((p.loc + p.scale * _EULER_GAMMA - q.loc) / q.scale).pow(2) * 0.5
    return -t1 + t2 + t3 - (_EULER_GAMMA + 1)


@register_kl(Laplace, Normal)
def _kl_laplace_normal(p: Laplace, q: Normal) -> Tensor:
    var_q = q.scale.pow(2)
    ratio = p.scale.pow(2) / var_q
    t1 = 0.5 * dl.log(2 * ratio / math.pi)
    quad = 0.5 * p.loc.pow(2) - p.loc * q.loc + 0.5 * q.loc.pow(2)
    return -t1 + ratio + quad / var_q - 1


@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p: Normal, q: Gumbel) -> Tensor:
    mean_ratio = p.loc / q.scale
    var_ratio = (p.scale / q.scale).pow(2)
    loc_ratio = q.loc / q.scale
    t1 = 0.5 * dl.log(var_ratio)
    t3 = dl.exp(-mean_ratio + 0.5 * var_ratio + loc_ratio)
    return -t1 + (mean_ratio - loc_ratio) + t3 - 0.5 * (1 + math.log(2 * math.pi))


@register_kl(Normal, Laplace)
def _kl_normal_laplace(p: Normal, q: Laplace) -> Tensor:
    diff = p.loc - q.loc
    z = diff / p.scale
    # E_p|x - q.loc| for x ~ N(p.loc, p.scale): the folded normal's mean
    folded = math.sqrt(2 / math.pi) * p.scale * dl.exp(-0.5 * z.pow(2)) + diff * dl.erf(
        math.sqrt(0.5) * z
    )
    return -dl.log(p.scale / q.scale) + folded / q.scale - 0.5 * (1 + math.log(0.5 * math.pi))


@register_kl(Pareto, Exponential)
def _kl_pareto_exponential(p: Pareto, q: Exponential) -> Tensor:
    sr = p.scale * q.rate
    result = dl.log(p.alpha / sr) - p.alpha.reciprocal() + p.alpha * sr / (p.alpha - 1) - 1
    return _infinite_where(p.alpha <= 1, result)


@register_kl(Pareto, Gamma)
def _kl_pareto_gamma(p: Pareto, q: Gamma) -> Tensor:
    common = dl.log(p.scale) + p.alpha.reciprocal()  # E_p[log x]
    t1 = dl.log(p.alpha) - common
    t2 = dl.lgamma(q.concentration) - q.concentration * dl.log(q.rate)
    t3 = (1 - q.concentration) * common
    t4 = q.rate * p.alpha * p.scale / (p.alpha - 1)
    return _infinite_where(p.alpha <= 1, t1 + t2 + t3 + t4 - 1)


@register_kl(Pareto, Normal)
def _kl_pareto_normal(p: Pareto, q: Normal) -> Tensor:
    two_var = 2 * q.scale.pow(2)
    common = p.scale / (p.alpha - 1)
    t1 = dl.log(math.sqrt(2 * math.pi) * q.scale * p.alpha / p.scale)
    t3 = p.alpha * common.pow(2) / (p.alpha - 2)
    t4 = (p.alpha * common - q.loc).pow(2)
    result = t1 - p.alpha.reciprocal() + (t3 + t4) / two_var - 1
    return _infinite_where(p.alpha <= 2, result)


@register_kl(Uniform, Beta)
def _kl_uniform_beta(p: Uniform, q: Beta) -> Tensor:
    width = p.high - p.low
    e_log_x = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    e_log_1mx = (_x_log_x(1 - p.high) - _x_log_x(1 - p.low) + width) / width
    log_beta = (
        dl.lgamma(q.concentration1)
        + dl.lgamma(q.concentration0)
        - dl.lgamma(q.concentration1 + q.concentration0)
    )
    result = (
        (q.concentration0 - 1) * e_log_1mx
        + log_beta
        - dl.log(width)
        - (q.concentration1 - 1) * e_log_x
    )
    return _infinite_where((p.high > 1) | (p.low < 0), result)


@register_kl(Uniform, Exponential)
def _kl_uniform_exponential(p: Uniform, q: Exponential) -> Tensor:
    result = q.rate * (p.high + p.low) / 2 - dl.log((p.high - p.low) * q.rate)
    return _infinite_where(p.low < 0, result)


@register_kl(Uniform, Gamma)
def _kl_uniform_gamma(p: Uniform, q: Gamma) -> Tensor:
    width = p.high - p.low
    e_log_x = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    t2 = dl.lgamma(q.concentration) - q.concentration * dl.log(q.rate)
    result = -dl.log(width) + t2 + (1 - q.concentration) * e_log_x + q.rate * (p.high + p.low) / 2
    return _infinite_where(p.low < 0, result)


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p: Uniform, q: Gumbel) -> Tensor:
    common = q.scale / (p.high - p.low)
    high_z = (p.high - q.loc) / q.scale
    low_z = (p.low - q.loc) / q.scale
    t1 = dl.log(common) + 0.5 * (high_z + low_z)
    return t1 - common * (dl.exp(-high_z) - dl.exp(-low_z))


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p: Uniform, q: Normal) -> Tensor:
    width = p.high - p.low
    t1 = dl.log(math.sqrt(math.pi * 2) * q.scale / width)
    t2 = width.pow(2) / 12
    t3 = ((p.high + p.low - 2 * q.loc) / 2).pow(2)
    return t1 + 0.5 * (t2 + t3) / q.scale.pow(2)


@register_kl(Uniform, Pareto)
def _kl_uniform_pareto(p: Uniform, q: Pareto) -> Tensor:
    width = p.high - p.low
    t1 = dl.log(q.alpha * q.scale.pow(q.alpha) * width)
    e_log_x = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    result = e_log_x * (q.alpha + 1) - t1
    return _infinite_where(p.low < q.scale, result)
