"""Review of dl.distributions against torch.distributions 2.13 (session 12): parameters kept
as given, the MixtureSameFamily support constraint, cached inverse transforms, the
transforms and constraints that were missing (softplus, reshape, cdf, positive-definite,
cat, stack, correlation-Cholesky) with their biject_to/transform_to entries, and the
families that were missing (LowRankMultivariateNormal and its KL pairs, VonMises,
Kumaraswamy, FisherSnedecor, LogisticNormal): values and parameter gradients in float64,
validation, and draw statistics (seeded, tolerances of several standard errors).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import assert_close

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = dl.distributions
TD = torch.distributions


def _both(arrays: list) -> tuple[list, list]:
    """The arrays as float64 leaves requiring grad, in darklib and in torch."""
    d = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return d, t


def _compare_with_grads(out_d, out_t, params_d, params_t, what: str) -> None:
    assert_close(out_d, out_t, atol=1e-6, rtol=1e-5, what=what)
    w = np.random.default_rng(0).standard_normal(tuple(out_t.shape))
    grads_t = torch.autograd.grad(
        (out_t * torch.tensor(w)).sum(), params_t, allow_unused=True, retain_graph=True
    )
    (out_d * dl.tensor(w)).sum().backward(retain_graph=True)
    for i, (p, g) in enumerate(zip(params_d, grads_t)):
        if g is None:
            continue
        assert p.grad is not None, f"{what}: no gradient for parameter {i}"
        # (torch's masked moments leak NaN into gradients where the moment is undefined:
        # those entries are compared where torch's gradient is finite)
        finite = torch.isfinite(g).numpy()
        assert finite.any(), f"{what}: torch's gradient {i} has no finite entry"
        assert_close(
            p.grad.numpy()[finite], g.numpy()[finite], atol=1e-6, rtol=1e-5, what=f"{what} grad {i}"
        )
        p.grad = None


# ----------------------------------------------------------------- parameters and support


def test_parameters_of_the_broadcast_shape_are_kept_as_given():
    loc = dl.zeros(3, requires_grad=True)
    assert D.Normal(loc, 1.0).loc is loc
    low, high = dl.zeros(3, requires_grad=True), dl.ones(3)
    u, ut = D.Uniform(low, high), TD.Uniform(torch.zeros(3, requires_grad=True), torch.ones(3))
    assert u.low is low and u.high is high
    assert repr(u.support).replace("darklib.", "torch.") == repr(ut.support)
    assert D.Normal(loc, dl.ones(2, 1)).loc.shape == (2, 3)


def test_mixture_same_family_support_checks_every_component():
    def make(M, L):
        mix = M.Categorical(L.ones(2, 3))
        comp = M.Uniform(L.tensor([0.0, 0.5, 1.0]), L.tensor([2.0, 3.0, 4.0]))
        return M.MixtureSameFamily(mix, comp)

    md, mt = make(D, dl), make(TD, torch)
    assert type(md.support).__name__ == "MixtureSameFamilyConstraint"
    assert repr(md.support).split("(")[0] == repr(mt.support).split("(")[0]
    x = [[1.5, 1.5], [0.7, 3.5]]
    assert md.support.check(dl.tensor(x)).tolist() == mt.support.check(torch.tensor(x)).tolist()
    with pytest.raises(ValueError):
        md.log_prob(dl.tensor([0.7, 3.5]))


# ----------------------------------------------------------------- transforms


def test_inverse_transforms_are_cached_as_torch():
    T = D.transforms
    for t in [T.ExpTransform(), T.SigmoidTransform(), T.StickBreakingTransform()]:
        inv = t.inv
        assert t.inv is inv and inv.inv is t and inv.inv.inv is inv
    c = T.ComposeTransform([T.AffineTransform(1.0, 2.0), T.ExpTransform()])
    assert c.inv is c.inv and c.inv.inv is c


def test_power_transform_exponent_is_a_tensor():
    t, tt = D.transforms.PowerTransform(2.0), TD.transforms.PowerTransform(2.0)
    assert isinstance(t.exponent, dl.Tensor) and t.exponent.dtype == dl.float32
    assert float(t.sign) == float(tt.sign) == 1.0
    x = dl.tensor([0.5, 2.0], dtype=dl.float64)
    assert t(x).dtype == dl.float64
    assert_close(t(x), tt(torch.tensor([0.5, 2.0], dtype=torch.float64)))


def _psd(r, shape):
    a = r.standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


_R = np.random.default_rng(4)
NEW_TRANSFORMS = [
    ("Softplus", lambda M, L: M.transforms.SoftplusTransform(), _R.standard_normal((2, 3)) * 5),
    (
        "Softplus.inv",
        lambda M, L: M.transforms.SoftplusTransform().inv,
        _R.uniform(0.01, 30, (2, 3)),
    ),
    (
        "Reshape",
        lambda M, L: M.transforms.ReshapeTransform((2, 3), (3, 2)),
        _R.standard_normal((4, 2, 3)),
    ),
    (
        "Cdf",
        lambda M, L: M.transforms.CumulativeDistributionTransform(
            M.Normal(L.tensor(0.5, dtype=L.float64), 2.0)
        ),
        _R.standard_normal((2, 3)),
    ),
    (
        "PositiveDefinite",
        lambda M, L: M.transforms.PositiveDefiniteTransform(),
        _R.standard_normal((2, 3, 3)),
    ),
    (
        "PositiveDefinite.inv",
        lambda M, L: M.transforms.PositiveDefiniteTransform().inv,
        _psd(_R, (2, 3, 3)),
    ),
    (
        "Cat-1",
        lambda M, L: M.transforms.CatTransform(
            [M.transforms.ExpTransform(), M.transforms.SigmoidTransform()], dim=-1, lengths=[2, 2]
        ),
        _R.standard_normal((3, 4)),
    ),
    (
        "Cat0",
        lambda M, L: M.transforms.CatTransform(
            [M.transforms.ExpTransform(), M.transforms.AffineTransform(1.0, 3.0)],
            dim=0,
            lengths=[1, 2],
        ),
        _R.standard_normal((3, 4)),
    ),
    (
        "Stack",
        lambda M, L: M.transforms.StackTransform(
            [
                M.transforms.ExpTransform(),
                M.transforms.SigmoidTransform(),
                M.transforms.AffineTransform(0.0, 2.0),
            ],
            dim=-1,
        ),
        _R.standard_normal((4, 3)),
    ),
    ("CorrCholesky", lambda M, L: M.transforms.CorrCholeskyTransform(), _R.standard_normal((2, 6))),
    ("CorrCholesky1", lambda M, L: M.transforms.CorrCholeskyTransform(), _R.standard_normal((1,))),
]


@pytest.mark.parametrize("name,make,x", NEW_TRANSFORMS, ids=[t[0] for t in NEW_TRANSFORMS])
def test_new_transforms_match_torch(name, make, x):
    td, tt = make(D, dl), make(TD, torch)
    assert (td.domain.event_dim, td.codomain.event_dim, td.bijective) == (
        tt.domain.event_dim,
        tt.codomain.event_dim,
        tt.bijective,
    )
    shape = (5, *x.shape)
    assert tuple(td.forward_shape(shape)) == tuple(tt.forward_shape(shape))
    (xd,), (xt,) = _both([x])
    yd, yt = td(xd), tt(xt)
    assert_close(yd, yt, atol=1e-6, rtol=1e-5, what=f"{name} forward")
    assert_close(td.inv(yd), tt.inv(yt), atol=1e-6, rtol=1e-5, what=f"{name} inverse")
    assert bool(td.codomain.check(yd).all())
    try:
        lt = tt.log_abs_det_jacobian(xt, yt)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            td.log_abs_det_jacobian(xd, yd)
        return
    ld = td.log_abs_det_jacobian(xd, yd)
    _compare_with_grads(ld + yd.sum(), lt + yt.sum(), [xd], [xt], f"{name} log|det J|")


def test_reshape_and_corr_cholesky_refuse_bad_shapes():
    T = D.transforms
    with pytest.raises(ValueError):
        T.ReshapeTransform((2, 3), (4,))
    with pytest.raises(ValueError):
        T.ReshapeTransform((2, 3), (3, 2)).forward_shape((4, 3, 2))
    with pytest.raises(ValueError):
        T.CorrCholeskyTransform().forward_shape((4,))


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
def test_registries_cover_cat_stack_corr_cholesky_and_positive_definite(registry):
    def cons(M):
        C = M.constraints
        out = {
            "cat": (C.cat([C.positive, C.real], dim=-1, lengths=[2, 1]), (2, 3)),
            "stack": (C.stack([C.positive, C.unit_interval, C.real], dim=-1), (2, 3)),
            "corr_cholesky": (C.corr_cholesky, (2, 3)),
        }
        if registry == "transform_to":
            out["positive_definite"] = (C.positive_definite, (2, 3, 3))
        return out

    r = np.random.default_rng(1)
    for (key, (cd, shape)), (ct, _) in zip(cons(D).items(), cons(TD).values()):
        fd, ft = getattr(D, registry)(cd), getattr(TD, registry)(ct)
        assert type(fd).__name__ == type(ft).__name__, key
        x = r.standard_normal(shape)
        yd, yt = fd(dl.tensor(x)), ft(torch.tensor(x))
        assert_close(yd, yt, what=f"{registry}({key})")
        assert bool(cd.check(yd).all()), key
    with pytest.raises(NotImplementedError):
        D.biject_to(D.constraints.positive_definite)


def test_corr_cholesky_constraint_matches_torch():
    good = TD.transforms.CorrCholeskyTransform()(
        torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    )
    bad = good.clone()
    bad[..., 2, 2] = 2.0
    for v in (good, bad, torch.eye(3), 2 * torch.eye(3)):
        expected = TD.constraints.corr_cholesky.check(v).tolist()
        assert D.constraints.corr_cholesky.check(dl.tensor(v.numpy())).tolist() == expected
    assert repr(D.constraints.corr_cholesky) == repr(TD.constraints.corr_cholesky)


# ----------------------------------------------------------------- families that were missing

_F = np.random.default_rng(9)


def _lr_params(r):
    return [r.standard_normal((2, 1, 3)), r.standard_normal((4, 3, 2)), r.uniform(0.5, 2, 3)]


NEW_FAMILIES = {
    "LowRankMultivariateNormal": (
        lambda M, m, w, d: M.LowRankMultivariateNormal(m, w, d),
        _lr_params(_F),
        _F.standard_normal((5, 2, 4, 3)),
        ("entropy", "mean", "variance", "covariance_matrix", "precision_matrix", "scale_tril"),
    ),
    "VonMises": (
        lambda M, a, k: M.VonMises(a, k),
        [_F.standard_normal((3, 1)), np.array([0.01, 0.5, 3.0, 40.0])],
        _F.standard_normal((2, 3, 4)) * 3,
        ("mean", "variance"),
    ),
    "Kumaraswamy": (
        lambda M, a, b: M.Kumaraswamy(a, b),
        [_F.uniform(0.3, 3, (3, 1)), _F.uniform(0.3, 3, 4)],
        _F.uniform(0.05, 0.95, (2, 3, 4)),
        ("entropy", "mean", "variance"),
    ),
    "FisherSnedecor": (
        lambda M, a, b: M.FisherSnedecor(a, b),
        [_F.uniform(0.5, 6, (3, 1)), np.array([4.5, 6.0, 8.0, 10.0])],
        _F.uniform(0.1, 3, (2, 3, 4)),
        ("mean", "mode", "variance"),
    ),
    "LogisticNormal": (
        lambda M, a, b: M.LogisticNormal(a, b),
        [_F.standard_normal((2, 3)), _F.uniform(0.5, 2, 3)],
        (lambda p: p / p.sum(-1, keepdims=True))(_F.uniform(0.1, 1, (5, 2, 4))),
        (),
    ),
}


@pytest.mark.parametrize("name", sorted(NEW_FAMILIES))
def test_new_families_match_torch(name):
    make, params, value, methods = NEW_FAMILIES[name]
    pd, pt = _both(params)
    dd, dt = make(D, *pd), make(TD, *pt)
    assert (dd.batch_shape, dd.event_shape) == (tuple(dt.batch_shape), tuple(dt.event_shape))
    assert dd.has_rsample == dt.has_rsample
    assert repr(dd.support).replace("darklib.", "torch.") == repr(dt.support)
    assert sorted(dd.arg_constraints) == sorted(dt.arg_constraints)
    assert repr(dd).replace("darklib.", "torch.") == repr(dt)
    lp_d = dd.log_prob(dl.tensor(value, dtype=dl.float64))
    lp_t = dt.log_prob(torch.tensor(value, dtype=torch.float64))
    _compare_with_grads(lp_d, lp_t, pd, pt, f"{name}.log_prob")
    for m in methods:
        out_d = dd.entropy() if m == "entropy" else getattr(dd, m)
        out_t = dt.entropy() if m == "entropy" else getattr(dt, m)
        ok = torch.isfinite(out_t)
        _compare_with_grads(
            dl.where(dl.tensor(ok.numpy()), out_d, 0.0),
            torch.where(ok, out_t, 0.0),
            pd,
            pt,
            f"{name}.{m}",
        )
        assert_close(out_d, out_t, atol=1e-6, rtol=1e-5, what=f"{name}.{m} (nan where torch)")
    expanded = dd.expand((6, *dd.batch_shape))
    assert type(expanded) is type(dd) and expanded.batch_shape == (6, *dd.batch_shape)
    assert tuple(dd.sample((7,)).shape) == tuple(dt.sample((7,)).shape)
    if dd.has_rsample:
        assert dd.rsample((2,)).requires_grad


def test_kumaraswamy_mode_is_the_density_maximum():
    # torch 2.13's Kumaraswamy.mode is NaN for every concentration0 > 1 (a log1p(-b)); this
    # is the closed form ((a - 1) / (a b - 1))^(1/a), checked against a grid search.
    a, b = np.array([2.0, 1.5, 5.0, 0.5]), np.array([3.0, 1.2, 2.0, 2.0])
    mode = D.Kumaraswamy(dl.tensor(a), dl.tensor(b)).mode.numpy()
    x = np.linspace(1e-6, 1 - 1e-6, 400001)[:, None]
    density = a * b * x ** (a - 1) * (1 - x**a) ** (b - 1)
    np.testing.assert_allclose(mode[:3], x[np.argmax(density[:, :3], 0), 0], atol=1e-5)
    assert np.isnan(mode[3])


@pytest.mark.parametrize(
    "pair",
    [("LowRank", "LowRank"), ("LowRank", "Full"), ("Full", "LowRank")],
    ids=lambda p: "-".join(p),
)
def test_lowrank_kl_matches_torch(pair):
    r = np.random.default_rng(3)
    made = []
    for kind in pair:
        if kind == "LowRank":
            arrays = [r.standard_normal((3, 3)), r.standard_normal((3, 2)), r.uniform(0.5, 2, 3)]
            make = lambda M, m, w, d: M.LowRankMultivariateNormal(m, w, d)
        else:
            a = r.standard_normal((3, 3))
            arrays = [r.standard_normal(3), a @ a.T + 3 * np.eye(3)]
            make = lambda M, m, c: M.MultivariateNormal(m, c)
        made.append((make, *_both(arrays)))
    (mp, pd, pt), (mq, qd, qt) = made
    kl_d = D.kl_divergence(mp(D, *pd), mq(D, *qd))
    kl_t = TD.kl_divergence(mp(TD, *pt), mq(TD, *qt))
    _compare_with_grads(kl_d, kl_t, pd + qd, pt + qt, "kl")


def test_new_families_validate_their_arguments():
    with pytest.raises(ValueError, match="cov_diag"):
        D.LowRankMultivariateNormal(dl.zeros(3), dl.ones(3, 1), -dl.ones(3))
    with pytest.raises(ValueError, match="cov_factor"):
        D.LowRankMultivariateNormal(dl.zeros(3), dl.ones(2, 1), dl.ones(3))
    with pytest.raises(ValueError, match="concentration"):
        D.VonMises(0.0, -1.0)
    with pytest.raises(ValueError, match="df2"):
        D.FisherSnedecor(1.0, 0.0)
    f, ft = (
        D.FisherSnedecor(3.0, dl.tensor([1.5, 3.0])),
        TD.FisherSnedecor(3.0, torch.tensor([1.5, 3.0])),
    )
    for m in ("mean", "variance"):
        assert_close(getattr(f, m), getattr(ft, m), what=m)  # (NaN where undefined)
    with pytest.raises(ValueError):
        D.Kumaraswamy(1.0, 2.0).log_prob(dl.tensor(1.5))
    with pytest.raises(ValueError):
        D.LogisticNormal(dl.zeros(2), 1.0).log_prob(dl.tensor([0.5, 0.6, 0.2]))


def test_new_family_draw_statistics():
    n = 40000
    dl.manual_seed(0)
    # VonMises: the mean resultant length E[cos(x - loc)] = I1(k) / I0(k) = 1 - variance
    loc, k = dl.tensor([0.5, -2.0, 3.0, 0.0]), dl.tensor([1e-6, 0.5, 4.0, 50.0])
    vm = D.VonMises(loc, k)
    x = vm.sample((n,))
    assert x.dtype == dl.float32 and float(x.abs().max()) <= math.pi
    resultant = dl.cos(x - loc).mean(0).numpy()
    np.testing.assert_allclose(resultant, 1 - vm.variance.numpy(), atol=5 / math.sqrt(n))
    # LowRankMultivariateNormal: the sample covariance (entries' standard error ~ sqrt(2/n))
    r = np.random.default_rng(1)
    lr = D.LowRankMultivariateNormal(
        dl.tensor(r.standard_normal(3)),
        dl.tensor(r.standard_normal((3, 2))),
        dl.ones(3, dtype=dl.float64),
    )
    s = lr.sample((n,)).numpy()
    cov = lr.covariance_matrix.numpy()
    np.testing.assert_allclose(np.cov(s.T), cov, atol=6 * np.sqrt(2 / n) * cov.max())
    np.testing.assert_allclose(s.mean(0), lr.mean.numpy(), atol=6 * np.sqrt(cov.max() / n))
    # FisherSnedecor and Kumaraswamy: the sample mean (df2 = 12: finite variance)
    for dist in (
        D.FisherSnedecor(dl.tensor([3.0, 8.0], dtype=dl.float64), 12.0),
        D.Kumaraswamy(
            dl.tensor([0.5, 2.0], dtype=dl.float64), dl.tensor([3.0, 0.7], dtype=dl.float64)
        ),
    ):
        s = dist.sample((n,)).numpy()
        se = np.sqrt(dist.variance.numpy() / n)
        np.testing.assert_array_less(np.abs(s.mean(0) - dist.mean.numpy()), 6 * se)
    ln = D.LogisticNormal(dl.zeros(3), dl.ones(3))
    s = ln.sample((n,))
    assert s.shape == (n, 4) and bool(D.constraints.simplex.check(s).all())
