"""dl.distributions' ExponentialFamily, ContinuousBernoulli, GeneralizedPareto, Wishart and
LKJCholesky against torch.distributions 2.13: values and parameter gradients in float64
(log_prob, cdf/icdf, entropy, moments, KL), shapes, expand, validation and messages, and
draw statistics (seeded; tolerances of several standard errors of the estimate)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import assert_close

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = dl.distributions
TD = torch.distributions


def _leaves(arrays: list) -> tuple[list, list]:
    d = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return d, t


def _check(fn_d, fn_t, arrays: list, what: str, atol=1e-8, rtol=1e-7, grad=True) -> None:
    """``fn(*leaves)`` in darklib and torch: the values, then the gradients of a random
    weighting of them with respect to every leaf (compared where torch's is finite)."""
    d, t = _leaves(arrays)
    out_d, out_t = fn_d(*d), fn_t(*t)
    assert_close(out_d, out_t.detach(), atol=atol, rtol=rtol, what=what)
    if not grad:
        return
    w = np.random.default_rng(0).standard_normal(tuple(out_t.shape))
    gt = torch.autograd.grad((out_t * torch.tensor(w)).sum(), t, allow_unused=True)
    gd = dl.autograd.grad((out_d * dl.tensor(w)).sum(), d, allow_unused=True)
    for i, (a, b) in enumerate(zip(gd, gt)):
        if b is None:
            continue
        assert a is not None, f"{what}: no gradient for leaf {i}"
        finite = torch.isfinite(b).numpy()
        assert finite.any()
        assert_close(
            a.numpy()[finite],
            b.numpy()[finite],
            atol=atol * 10,
            rtol=rtol * 10,
            what=f"{what} d{i}",
        )


# ------------------------------------------------------------------ ContinuousBernoulli

# probs about 0.5 (inside the default lims, on their edges) and far from it
_CB_PROBS = np.array([[0.02, 0.3, 0.499, 0.4995, 0.5], [0.5004, 0.501, 0.5011, 0.8, 0.97]])
_CB_X = np.array([0.0, 0.13, 0.5, 0.77, 1.0])[:, None, None] * np.ones((1, 2, 5))


@pytest.mark.parametrize("param", ["probs", "logits"])
@pytest.mark.parametrize(
    "method", ["log_prob", "cdf", "icdf", "entropy", "mean", "variance", "stddev"]
)
def test_continuous_bernoulli_matches_torch(param, method):
    p = _CB_PROBS if param == "probs" else np.log(_CB_PROBS) - np.log1p(-_CB_PROBS)

    def run(M, p, x=None):
        d = M.ContinuousBernoulli(**{param: p})
        out = getattr(d, method)
        return out(x) if x is not None else out() if callable(out) else out

    if method in ("log_prob", "cdf", "icdf"):
        x = _CB_X if method != "icdf" else np.clip(_CB_X, 0.01, 0.99)
        # (the value's gradient: torch's cdf is piecewise in it, compared all the same)
        _check(lambda p, x: run(D, p, x), lambda p, x: run(TD, p, x), [p, x], method)
    else:
        _check(lambda p: run(D, p), lambda p: run(TD, p), [p], method)


def test_continuous_bernoulli_lims_shapes_expand_and_repr():
    p = np.array([0.3, 0.45, 0.55])
    d = D.ContinuousBernoulli(dl.tensor(p), lims=(0.4, 0.6))
    t = TD.ContinuousBernoulli(torch.tensor(p), lims=(0.4, 0.6))
    for name in ("mean", "variance"):
        assert_close(getattr(d, name), getattr(t, name), atol=1e-12, rtol=1e-10, what=name)
    x = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    assert_close(d.log_prob(dl.tensor(x.numpy())), t.log_prob(x), atol=1e-12, rtol=1e-10)
    assert_close(d._log_normalizer(d.logits), t._log_normalizer(t.logits), atol=1e-12, rtol=1e-10)
    e = d.expand((4, 3))
    assert e.batch_shape == (4, 3) and e._lims == (0.4, 0.6)
    assert_close(e.mean, t.expand((4, 3)).mean, atol=1e-12, rtol=1e-10, what="expanded mean")
    assert D.ContinuousBernoulli(logits=0.0).batch_shape == ()
    assert D.ContinuousBernoulli(0.3).param_shape == ()
    assert D.ContinuousBernoulli(dl.tensor([0.3, 0.4])).param_shape == (2,)
    assert repr(D.ContinuousBernoulli(0.3)) == repr(TD.ContinuousBernoulli(0.3))
    assert isinstance(d, D.ExponentialFamily) and d.has_rsample
    assert repr(d.support) == "Interval(lower_bound=0.0, upper_bound=1.0)"
    with pytest.raises(NotImplementedError):
        d.mode
    with pytest.raises(NotImplementedError):
        t.mode


def _tensor(M):
    return dl.tensor if M is D else torch.tensor


def test_continuous_bernoulli_validation_as_torch():
    for M in (D, TD):
        with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
            M.ContinuousBernoulli()
        with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
            M.ContinuousBernoulli(0.3, 0.1)
        # probs are checked before their clamp only when validate_args is given
        for flag in (True, False):
            with pytest.raises(ValueError, match="The parameter probs has invalid values"):
                M.ContinuousBernoulli(1.5, validate_args=flag)
        clamped = M.ContinuousBernoulli(1.5)
        assert float(clamped.probs) == pytest.approx(1 - np.finfo(np.float32).eps)
        with pytest.raises(ValueError, match="logits"):
            M.ContinuousBernoulli(logits=float("nan"), validate_args=True)
        with pytest.raises(ValueError, match="support"):
            M.ContinuousBernoulli(0.3, validate_args=True).log_prob(_tensor(M)(1.5))


def test_continuous_bernoulli_draws():
    dl.manual_seed(0)
    probs = dl.tensor([0.1, 0.4996, 0.7], dtype=dl.float64, requires_grad=True)
    d = D.ContinuousBernoulli(probs)
    n = 40000
    x = d.rsample((n,))
    assert x.shape == (n, 3) and x.dtype == dl.float64 and x.requires_grad
    assert bool(((x >= 0) & (x <= 1)).all())
    assert d.sample((2, 5)).shape == (2, 5, 3) and not d.sample().requires_grad
    se = (d.variance / n).sqrt().detach().numpy()
    x_np = x.detach().numpy()
    assert np.all(np.abs(x_np.mean(0) - d.mean.detach().numpy()) < 5 * se)
    # the draws' CDF values are uniform: mean 1/2, variance 1/12
    u = d.cdf(x.detach()).detach().numpy()
    assert np.all(np.abs(u.mean(0) - 0.5) < 5 * math.sqrt(1 / 12 / n))
    # the pathwise gradient of E[x] is the gradient of the mean, to its standard error
    (g_path,) = dl.autograd.grad(x.mean(0).sum(), [probs], retain_graph=True)
    (g_mean,) = dl.autograd.grad(d.mean.sum(), [probs])
    # (the per-draw derivative dx/dp is bounded on [0, 1] by 1 / (p (1 - p)) or so)
    tol = 5 * 4.0 / (probs.detach().numpy() * (1 - probs.detach().numpy())) / math.sqrt(n)
    assert np.all(np.abs(g_path.numpy() - g_mean.numpy()) < tol)


_CB_PAIRS = {
    ("ContinuousBernoulli", "ContinuousBernoulli"): (
        lambda M, a, b: (M.ContinuousBernoulli(a), M.ContinuousBernoulli(b)),
        [np.array([0.2, 0.4995, 0.7]), np.array([[0.6], [0.5002]])],
    ),
    ("Beta", "ContinuousBernoulli"): (
        lambda M, a, b, c: (M.Beta(a, b), M.ContinuousBernoulli(c)),
        [np.array([0.5, 2.0]), np.array([1.5, 3.0]), np.array([0.3, 0.5])],
    ),
    ("Uniform", "ContinuousBernoulli"): (
        lambda M, a, b, c: (M.Uniform(a, b), M.ContinuousBernoulli(c)),
        [np.array([0.1, 0.2]), np.array([0.5, 0.9]), np.array([0.3, 0.8])],
    ),
    ("ContinuousBernoulli", "Exponential"): (
        lambda M, a, b: (M.ContinuousBernoulli(a), M.Exponential(b)),
        [np.array([0.2, 0.5, 0.9]), np.array([0.5, 1.0, 3.0])],
    ),
    ("ContinuousBernoulli", "Normal"): (
        lambda M, a, b, c: (M.ContinuousBernoulli(a), M.Normal(b, c)),
        [np.array([0.2, 0.5, 0.9]), np.array([-1.0, 0.3, 2.0]), np.array([0.5, 1.0, 3.0])],
    ),
    ("ContinuousBernoulli", "Uniform"): (
        lambda M, a, b, c: (M.ContinuousBernoulli(a), M.Uniform(b, c)),
        [np.array([0.2, 0.5, 0.9]), np.array([-1.0, -0.3, -2.0]), np.array([1.5, 1.1, 3.0])],
    ),
}


@pytest.mark.parametrize("pair", list(_CB_PAIRS), ids=lambda p: "-".join(p))
def test_continuous_bernoulli_kl_matches_torch(pair):
    make, arrays = _CB_PAIRS[pair]
    _check(
        lambda *a: D.kl_divergence(*make(D, *a)),
        lambda *a: TD.kl_divergence(*make(TD, *a)),
        arrays,
        "-".join(pair),
    )


def test_continuous_bernoulli_infinite_kl_pairs():
    cb = (
        D.ContinuousBernoulli(dl.tensor([0.3, 0.6])),
        TD.ContinuousBernoulli(torch.tensor([0.3, 0.6])),
    )
    others = {
        "Exponential": lambda M: M.Exponential(_tensor(M)([1.0, 2.0])),
        "Gamma": lambda M: M.Gamma(_tensor(M)([1.0, 2.0]), 1.0),
        "Gumbel": lambda M: M.Gumbel(_tensor(M)([1.0, 2.0]), 1.0),
        "Laplace": lambda M: M.Laplace(_tensor(M)([1.0, 2.0]), 1.0),
        "Normal": lambda M: M.Normal(_tensor(M)([1.0, 2.0]), 1.0),
        "Pareto": lambda M: M.Pareto(_tensor(M)([1.0, 2.0]), 1.0),
    }
    for name, make in others.items():
        d = D.kl_divergence(make(D), cb[0])
        t = TD.kl_divergence(make(TD), cb[1])
        assert np.isinf(d.numpy()).all() and np.isinf(t.numpy()).all(), name
    assert np.isinf(D.kl_divergence(cb[0], D.Pareto(1.0, 1.0)).numpy()).all()
    # q's support inside p's: infinite; exactly [0, 1]: finite (torch's is infinite there)
    p = cb[0]
    assert np.isinf(D.kl_divergence(p, D.Uniform(0.1, 1.0)).numpy()).all()
    edge = D.kl_divergence(p, D.Uniform(0.0, 1.0))
    assert_close(edge, -p.entropy(), atol=1e-7, rtol=1e-6, what="KL(CB || U(0, 1))")
    u = D.Uniform(dl.tensor([0.0, -0.1]), dl.tensor([1.0, 0.5]))
    kl = D.kl_divergence(u, D.ContinuousBernoulli(dl.tensor([0.3, 0.6]))).numpy()
    assert np.isfinite(kl[0]) and np.isinf(kl[1])


# ------------------------------------------------------------------ ExponentialFamily


_EF = {
    "Normal": (lambda M, a, b: M.Normal(a, b), [np.array([-1.0, 0.5]), np.array([[0.7], [2.0]])]),
    "Bernoulli": (lambda M, a: M.Bernoulli(a), [np.array([0.1, 0.5, 0.8])]),
    "Exponential": (lambda M, a: M.Exponential(a), [np.array([0.3, 2.0])]),
    "Gamma": (lambda M, a, b: M.Gamma(a, b), [np.array([0.7, 3.0]), np.array([[1.5], [0.4]])]),
    "Beta": (lambda M, a, b: M.Beta(a, b), [np.array([0.7, 3.0]), np.array([1.5, 0.4])]),
    "Dirichlet": (lambda M, a: M.Dirichlet(a), [np.array([[0.7, 3.0, 1.2], [2.0, 0.5, 1.0]])]),
    "ContinuousBernoulli": (lambda M, a: M.ContinuousBernoulli(a), [np.array([0.2, 0.5, 0.8])]),
}


@pytest.mark.parametrize("name", list(_EF))
def test_exponential_family_entropy_and_bregman_kl(name):
    """The generic entropy and KL (from the log normaliser by autograd) against each
    family's closed forms, and the generic KL against torch's generic one."""
    make, arrays = _EF[name]
    d = make(D, *[dl.tensor(a) for a in arrays])
    assert isinstance(d, D.ExponentialFamily)
    if name not in ("Beta", "Dirichlet"):  # (no carrier measure given, as torch's)
        assert_close(D.ExponentialFamily.entropy(d), d.entropy(), atol=1e-9, rtol=1e-8)
    shifted = [a * 1.3 if name != "Bernoulli" else a * 0.9 for a in arrays]
    q = make(D, *[dl.tensor(a) for a in shifted])
    generic = D.kl._kl_expfamily_expfamily(d, q)
    assert_close(generic, D.kl_divergence(d, q), atol=1e-9, rtol=1e-8, what="vs closed form")
    tp = make(TD, *[torch.tensor(a) for a in arrays])
    tq = make(TD, *[torch.tensor(a) for a in shifted])
    expected = TD.kl._kl_expfamily_expfamily(tp, tq)
    assert_close(generic, expected.detach(), atol=1e-9, rtol=1e-8, what="vs torch's")


def test_exponential_family_dispatch_subclass_and_errors():
    class MyExponential(D.ExponentialFamily):
        arg_constraints = {}
        support = D.constraints.positive
        _mean_carrier_measure = 0

        def __init__(self, rate):
            self.rate = rate
            super().__init__(rate.shape)

        @property
        def _natural_params(self):
            return (-self.rate,)

        def _log_normalizer(self, x):
            return -dl.log(-x)

    rate_p = dl.tensor([0.5, 2.0], dtype=dl.float64)
    rate_q = dl.tensor([1.5, 1.0], dtype=dl.float64, requires_grad=True)
    p, q = MyExponential(rate_p), MyExponential(rate_q)
    kl = D.kl_divergence(p, q)  # (only the generic pair applies)
    expected = D.kl_divergence(D.Exponential(rate_p), D.Exponential(rate_q))
    assert_close(kl, expected.detach(), atol=1e-12, rtol=1e-10)
    # the gradient reaches q's parameters (torch's: p's natural parameters are detached)
    (g,) = dl.autograd.grad(kl.sum(), [rate_q])
    (ge,) = dl.autograd.grad(expected.sum(), [rate_q])
    assert_close(g, ge, atol=1e-12, rtol=1e-10)
    assert_close(p.entropy(), D.Exponential(rate_p).entropy(), atol=1e-12, rtol=1e-10)
    with pytest.raises(NotImplementedError, match="different exponential families"):
        D.kl_divergence(p, D.Exponential(rate_p))
    with pytest.raises(NotImplementedError, match="different exponential families"):
        D.kl_divergence(D.Poisson(1.0), D.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError):
        TD.kl_divergence(TD.Poisson(1.0), TD.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError):  # (no carrier measure: as torch's Poisson)
        D.Poisson(2.0).entropy()
    with pytest.raises(NotImplementedError):
        D.ExponentialFamily((), validate_args=False)._log_normalizer()


# ------------------------------------------------------------------ GeneralizedPareto

_GP_PARAMS = [
    np.array([[0.0], [-1.0], [0.5]]),
    np.array([0.5, 1.0, 2.0, 1.5, 0.8]),
    np.array([0.0, 0.3, -0.4, -1.0, 1.2]),
]


def _gp_values(loc, scale, conc, q):
    """Values inside each support: the quantile q of each distribution."""
    return torch.tensor(
        np.where(
            conc == 0,
            loc - scale * np.log1p(-q),
            loc + scale / np.where(conc == 0, 1, conc) * np.expm1(-conc * np.log1p(-q)),
        )
    )


@pytest.mark.parametrize(
    "method",
    [
        "log_prob",
        "cdf",
        "log_cdf",
        "log_survival_function",
        "icdf",
        "entropy",
        "mean",
        "variance",
        "mode",
    ],
)
def test_generalized_pareto_matches_torch(method):
    loc, scale, conc = _GP_PARAMS
    q = np.array([0.05, 0.3, 0.6, 0.9])[:, None, None]
    x = _gp_values(loc, scale, conc, q).numpy()
    if method == "icdf":
        x = np.broadcast_to(q, x.shape).copy()

    takes_value = method in ("log_prob", "cdf", "icdf", "log_cdf", "log_survival_function")

    def run(M, *a):
        d = M.GeneralizedPareto(*a[:3])
        out = getattr(d, method)
        if M is TD:  # (torch's compares with a tensor of the default dtype: float64 here)
            default = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            try:
                return out(a[3]) if takes_value else out() if callable(out) else out
            finally:
                torch.set_default_dtype(default)
        return out(a[3]) if takes_value else out() if callable(out) else out

    arrays = [loc, scale, conc] + ([x] if takes_value else [])
    _check(lambda *a: run(D, *a), lambda *a: run(TD, *a), arrays, method, atol=1e-9, rtol=1e-8)


def test_generalized_pareto_support_shapes_validation_and_draws():
    d = D.GeneralizedPareto(dl.tensor([0.0, 1.0]), 2.0, dl.tensor([-0.5, 0.2]))
    t = TD.GeneralizedPareto(torch.tensor([0.0, 1.0]), 2.0, torch.tensor([-0.5, 0.2]))
    assert_close(d.support.lower_bound, t.support.lower_bound)
    assert_close(d.support.upper_bound, t.support.upper_bound)
    assert d.batch_shape == (2,) and d.event_shape == ()
    assert D.GeneralizedPareto(0.0, 1.0, 0.1).batch_shape == ()
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.concentration.shape == (3, 2)
    assert_close(e.mean, t.expand((3, 2)).mean)
    with pytest.raises(ValueError, match="scale"):
        D.GeneralizedPareto(0.0, -1.0, 0.1, validate_args=True)
    with pytest.raises(ValueError, match="support"):
        d.log_prob(dl.tensor([-1.0, 0.5]))  # (below loc)
    with pytest.raises(ValueError, match="support"):
        D.GeneralizedPareto(0.0, 1.0, -0.5, validate_args=True).log_prob(dl.tensor(2.5))
    # draws: their CDF values are uniform; the pathwise gradient of E[x] matches the mean's
    dl.manual_seed(1)
    scale = dl.tensor([1.0, 2.0, 0.5], dtype=dl.float64, requires_grad=True)
    conc = dl.tensor([0.0, 0.2, -0.3], dtype=dl.float64, requires_grad=True)
    g = D.GeneralizedPareto(0.5, scale, conc)
    n = 40000
    x = g.rsample((n,))
    assert x.shape == (n, 3) and x.requires_grad
    u = g.cdf(x.detach()).detach().numpy()
    assert np.all(np.abs(u.mean(0) - 0.5) < 5 * math.sqrt(1 / 12 / n))
    assert np.all(
        np.abs(x.mean(0).detach().numpy() - g.mean.detach().numpy())
        < 5 * np.sqrt(g.variance.detach().numpy() / n)
    )
    gp = dl.autograd.grad(x.mean(0).sum(), [scale])[0].numpy()
    gm = dl.autograd.grad(g.mean.sum(), [scale])[0].numpy()
    # (dx/dscale = (x - loc) / scale: its standard error is sd(x) / scale / sqrt(n))
    assert np.all(
        np.abs(gp - gm) < 5 * np.sqrt(g.variance.detach().numpy() / n) / scale.detach().numpy()
    )


# ------------------------------------------------------------------ Wishart


def _spd(r, batch, n):
    a = r.standard_normal((*batch, n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


_W_KINDS = ["covariance_matrix", "precision_matrix", "scale_tril"]


def _w_param(kind, cov):
    if kind == "covariance_matrix":
        return cov
    if kind == "precision_matrix":
        return np.linalg.inv(cov)
    return np.linalg.cholesky(cov)


@pytest.mark.parametrize("kind", _W_KINDS)
@pytest.mark.parametrize("method", ["log_prob", "entropy", "mean", "mode", "variance"])
def test_wishart_matches_torch(kind, method):
    r = np.random.default_rng(5)
    cov = _spd(r, (2,), 3)
    df = np.array([[4.5], [6.0]])  # (a batch (2, 2) with the matrices' (2,))
    torch.manual_seed(0)
    tw = TD.Wishart(torch.tensor(df), covariance_matrix=torch.tensor(cov))
    with warnings.catch_warnings():  # (torch's warns of singular draws on every draw)
        warnings.simplefilter("ignore")
        value = tw.sample((2,)).numpy()
    param = _w_param(kind, cov)

    def run(M, df, m, *v):
        w = M.Wishart(df, **{kind: m})
        out = getattr(w, method)
        return out(*v) if callable(out) else out

    arrays = [df, param] + ([value] if method == "log_prob" else [])
    # (a precision matrix's gradient: only through its Cholesky factor, as torch's; the
    # scale_tril's is compared on its lower triangle)
    _check(lambda *a: run(D, *a), lambda *a: run(TD, *a), arrays, method, atol=1e-8, rtol=1e-7)


def test_wishart_properties_shapes_expand_and_validation():
    r = np.random.default_rng(6)
    cov = _spd(r, (), 3)
    w = D.Wishart(4.0, covariance_matrix=dl.tensor(cov))
    t = TD.Wishart(4.0, covariance_matrix=torch.tensor(cov))
    assert w.batch_shape == () and w.event_shape == (3, 3)
    for name in ("scale_tril", "precision_matrix", "covariance_matrix"):
        assert_close(getattr(w, name), getattr(t, name), atol=1e-10, rtol=1e-9, what=name)
    e = w.expand((2, 4))
    te = t.expand((2, 4))
    assert e.batch_shape == (2, 4) and e.df.shape == (2, 4)
    assert_close(e.entropy(), te.entropy(), atol=1e-10, rtol=1e-9)
    assert_close(e.mean, te.mean, atol=1e-10, rtol=1e-9)
    assert e.rsample((5,)).shape == (5, 2, 4, 3, 3)
    assert repr(w.support) == repr(t.support)
    assert w.arg_constraints["df"].lower_bound == 2
    low = D.Wishart(dl.tensor([3.5, 6.0]), covariance_matrix=dl.tensor(cov))
    mode = low.mode.numpy()
    assert np.isnan(mode[0]).all() and np.allclose(mode[1], 2 * cov)
    with pytest.raises(AssertionError, match="Exactly one of covariance_matrix"):
        D.Wishart(4.0, covariance_matrix=dl.tensor(cov), scale_tril=dl.tensor(cov))
    with pytest.raises(AssertionError, match="Exactly one of covariance_matrix"):
        D.Wishart(4.0)
    with pytest.raises(ValueError, match="at least two-dimensional"):
        D.Wishart(4.0, covariance_matrix=dl.ones(3))
    for M, arr in ((D, dl.tensor(cov)), (TD, torch.tensor(cov))):
        with pytest.raises(ValueError, match=r"expected to be greater than ndim - 1 = 2"):
            M.Wishart(2.0, covariance_matrix=arr)
        with pytest.warns(UserWarning, match="Low df values detected"):
            M.Wishart(2.5, covariance_matrix=arr)
        with pytest.raises(ValueError, match="covariance_matrix"):
            M.Wishart(4.0, covariance_matrix=-arr, validate_args=True)
        with pytest.raises(ValueError, match="support"):
            M.Wishart(4.0, covariance_matrix=arr, validate_args=True).log_prob(-arr)


def test_wishart_bregman_kl_matches_torch():
    r = np.random.default_rng(7)
    cp, cq = _spd(r, (2,), 3), _spd(r, (2,), 3)
    dfp, dfq = np.array([4.0, 5.5]), np.array([3.2, 7.0])

    def kl(M, a, b, c, d):
        return M.kl_divergence(M.Wishart(a, covariance_matrix=b), M.Wishart(c, covariance_matrix=d))

    # (torch's generic KL sums the df term over the batch when there is one: compared one
    # batch entry at a time, where torch's is right)
    for k in range(2):
        arrays = [dfp[k], cp[k], dfq[k], cq[k]]
        _check(lambda *a: kl(D, *a), lambda *a: kl(TD, *a), arrays, "KL", atol=1e-8, rtol=1e-7)
    d, _ = _leaves([dfp, cp, dfq, cq])
    batched = kl(D, *d).detach().numpy()
    for k in range(2):
        single = kl(D, *[dl.tensor(a[k]) for a in (dfp, cp, dfq, cq)]).detach().numpy()
        assert np.allclose(batched[k], single, rtol=1e-12)
    # KL(p || p) = 0, and the generic entropy agrees with the closed form
    w = D.Wishart(dl.tensor(dfp), covariance_matrix=dl.tensor(cp))
    assert np.allclose(D.kl_divergence(w, w).detach().numpy(), 0.0, atol=1e-10)


def test_wishart_draw_moments_and_pathwise_gradient():
    dl.manual_seed(2)
    r = np.random.default_rng(8)
    cov = _spd(r, (), 3) / 3
    L = dl.tensor(np.linalg.cholesky(cov), requires_grad=True)
    df = 5.5
    w = D.Wishart(df, scale_tril=L)
    n = 20000
    x = w.rsample((n,))
    assert x.shape == (n, 3, 3) and x.requires_grad
    assert bool(D.constraints.positive_definite.check(x.detach()).all())
    xs = x.detach().numpy()
    se = np.sqrt(w.variance.detach().numpy() / n)
    assert np.all(np.abs(xs.mean(0) - w.mean.detach().numpy()) < 5 * se)
    # the variance of the entries: var((X_ij - m)^2) ~ 2 var^2 for these near-Gaussian sums
    v = w.variance.detach().numpy()
    assert np.all(np.abs(xs.var(0) - v) < 5 * np.sqrt(8 * v**2 / n) + 0.05 * v)
    # pathwise gradient of E[tr X] = df tr(L L^T): d/dL = 2 df L (lower part)
    (g,) = dl.autograd.grad(x.diagonal(dim1=-2, dim2=-1).sum(-1).mean(), [L])
    expected = np.tril(2 * df * L.detach().numpy())
    sd = np.sqrt(np.sum(np.diag(v))) / math.sqrt(n)  # (the scale of the estimate's noise)
    assert np.all(
        np.abs(np.tril(g.numpy()) - expected)
        < 5 * sd * 2 / np.diag(L.detach().numpy()).min() + 1e-9
    )
    assert w.sample((3,)).shape == (3, 3, 3) and not w.sample().requires_grad


def test_wishart_redraws_singular_samples():
    # (a singular draw is forced on the first Bartlett call: only its entry is redrawn)
    dl.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = D.Wishart(2.01, covariance_matrix=dl.eye(3, dtype=dl.float64))
    calls = []
    real = w._bartlett_sampling

    def first_singular(shape):
        out = real(shape)
        if not calls:  # the first batch of draws: make draw 1 singular
            out = dl.where(dl.arange(4).reshape((4, 1, 1)) == 1, dl.zeros_like(out), out)
        calls.append(shape)
        return out

    w._bartlett_sampling = first_singular
    with pytest.warns(UserWarning, match="Singular sample detected"):
        x = w.rsample((4,))
    assert len(calls) >= 2
    assert bool(D.constraints.positive_definite.check(x).all())


# ------------------------------------------------------------------ LKJCholesky


@pytest.mark.parametrize("dim", [2, 4])
def test_lkj_cholesky_log_prob_matches_torch(dim):
    conc = np.array([[0.5], [1.0], [3.0]])
    torch.manual_seed(1)
    value = TD.LKJCholesky(dim, torch.tensor(conc)).sample((2,))
    _check(
        lambda c: D.LKJCholesky(dim, c).log_prob(dl.tensor(value.numpy())),
        lambda c: TD.LKJCholesky(dim, c).log_prob(value),
        [conc],
        "log_prob",
        atol=1e-9,
        rtol=1e-8,
    )
    d = D.LKJCholesky(dim, dl.tensor(conc))
    assert d.batch_shape == (3, 1) and d.event_shape == (dim, dim)
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.sample((5,)).shape == (5, 3, 2, dim, dim)
    te = TD.LKJCholesky(dim, torch.tensor(conc)).expand((3, 2))
    assert_close(
        e.log_prob(dl.tensor(value.numpy()[..., :1, :, :])),
        te.log_prob(value[..., :1, :, :]),
        atol=1e-10,
        rtol=1e-9,
    )
    assert repr(d.support) == repr(te.support)


def test_lkj_cholesky_draws_and_validation():
    dl.manual_seed(4)
    dim, n = 4, 20000
    conc = dl.tensor([0.7, 2.0], dtype=dl.float64)
    d = D.LKJCholesky(dim, conc)
    L = d.sample((n,))
    assert L.shape == (n, 2, dim, dim)
    assert bool(D.constraints.corr_cholesky.check(L).all())
    C = dl.matmul(L, L.mT).numpy()
    off = C[..., np.tril_indices(dim, -1)[0], np.tril_indices(dim, -1)[1]]  # (n, 2, 6)
    # each correlation r: (r + 1) / 2 ~ Beta(b, b), b = eta - 1 + dim / 2; E r = 0,
    # E r^2 = 1 / (2 b + 1), var(r^2) = E r^4 - (E r^2)^2, E r^4 = 3 / ((2b + 1)(2b + 3))
    b = conc.numpy()[:, None] - 1 + dim / 2
    m2 = 1 / (2 * b + 1)
    m4 = 3 / ((2 * b + 1) * (2 * b + 3))
    assert np.all(np.abs(off.mean(0)) < 5 * np.sqrt(m2 / n))
    assert np.all(np.abs((off**2).mean(0) - m2) < 5 * np.sqrt((m4 - m2**2) / n))
    for M in (D, TD):
        with pytest.raises(
            ValueError, match="Expected dim to be an integer greater than or equal to 2"
        ):
            M.LKJCholesky(1, 1.0)
        with pytest.raises(ValueError, match="concentration"):
            M.LKJCholesky(3, -1.0, validate_args=True)
        with pytest.raises(ValueError, match="support"):
            M.LKJCholesky(2, 1.0, validate_args=True).log_prob((dl if M is D else torch).eye(2) * 2)
    assert not D.LKJCholesky(3).has_rsample
