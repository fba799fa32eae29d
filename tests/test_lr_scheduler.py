"""darklib.optim.lr_scheduler against torch.optim.lr_scheduler: the same lr sequences."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import optim
from darklib.optim import lr_scheduler as dsched
from darklib.serialization import load, save

STEPS = 50


def _pair(opt_name: str = "SGD", **opt_kw):
    """The same two-group optimizer in darklib and torch (lrs 0.1 and 0.05)."""
    dps = [dl.zeros(2, requires_grad=True), dl.zeros(3, requires_grad=True)]
    tps = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    kw = {"momentum": 0.9} if opt_name == "SGD" else {}
    kw.update(opt_kw)
    dopt = getattr(optim, opt_name)(
        [{"params": dps[:1], "lr": 0.1}, {"params": dps[1:], "lr": 0.05}], **kw
    )
    topt = getattr(torch.optim, opt_name)(
        [{"params": tps[:1], "lr": 0.1}, {"params": tps[1:], "lr": 0.05}], **kw
    )
    return dopt, topt


def _hyper(opt) -> list[tuple]:
    out = []
    for g in opt.param_groups:
        out.append((g["lr"], g.get("momentum"), g.get("betas", (None,))[0]))
    return out


def _assert_same(dvals, tvals, what):
    np.testing.assert_allclose(
        np.asarray(dvals, dtype=np.float64),
        np.asarray(tvals, dtype=np.float64),
        rtol=1e-12,
        atol=1e-12,
        err_msg=what,
    )


SCHEDULERS = [
    ("StepLR", dict(step_size=7, gamma=0.5), "SGD"),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3), "SGD"),
    ("ExponentialLR", dict(gamma=0.93), "SGD"),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001), "SGD"),
    ("CosineAnnealingLR", dict(T_max=STEPS), "Adam"),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.9**e), "SGD"),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1 / (e + 1), lambda e: 0.5 + 0.01 * e]), "SGD"),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=STEPS), "SGD"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS, anneal_strategy="linear"), "SGD"),
    ("OneCycleLR", dict(max_lr=0.3, epochs=5, steps_per_epoch=10, three_phase=True), "SGD"),
    ("OneCycleLR", dict(max_lr=0.01, total_steps=STEPS, pct_start=0.25, div_factor=10.0), "Adam"),
    ("OneCycleLR", dict(max_lr=0.01, total_steps=STEPS, cycle_momentum=False), "RMSprop"),
    (
        "OneCycleLR",
        dict(max_lr=0.2, total_steps=STEPS, base_momentum=[0.8, 0.7], max_momentum=0.99),
        "SGD",
    ),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95), "SGD"),
    ("MultiplicativeLR", dict(lr_lambda=[lambda e: 0.9, lambda e: 1 - 0.01 * e]), "Adam"),
    ("ConstantLR", dict(factor=0.25, total_iters=7), "SGD"),
    ("LinearLR", dict(start_factor=0.1, total_iters=10), "SGD"),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.05, total_iters=30), "Adam"),
    ("PolynomialLR", dict(total_iters=20, power=2.0), "SGD"),
    ("CosineAnnealingWarmRestarts", dict(T_0=7, T_mult=2, eta_min=0.001), "SGD"),
    ("CosineAnnealingWarmRestarts", dict(T_0=5), "Adam"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=[0.1, 0.2], step_size_up=5, step_size_down=3), "SGD"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2"), "Adam"),
    (
        "CyclicLR",
        dict(base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.95),
        "SGD",
    ),
    (
        "CyclicLR",
        dict(
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=4,
            scale_fn=lambda x: 0.5**x,
            scale_mode="iterations",
            cycle_momentum=False,
        ),
        "RMSprop",
    ),
]


def _sid(case) -> str:
    name, kw, opt = case
    return f"{name}-{opt}-" + "-".join(f"{k}" for k in kw)


@pytest.mark.parametrize("case", SCHEDULERS, ids=[_sid(c) for c in SCHEDULERS])
def test_lr_sequence_matches_torch(case):
    name, kw, opt_name = case
    dopt, topt = _pair(opt_name)
    ds = getattr(dsched, name)(dopt, **kw)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"{name} initial")
    _assert_same(ds.base_lrs, ts.base_lrs, f"{name} base_lrs")
    for k in range(STEPS - 1):
        dopt.step()
        topt.step()
        ds.step()
        ts.step()
        assert ds.last_epoch == ts.last_epoch
        _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"{name} step {k}")
        assert [g["lr"] for g in dopt.param_groups] == ds.get_last_lr()
        hd, ht = _hyper(dopt), _hyper(topt)
        assert [h[1:] == (None, None) for h in hd] == [h[1:] == (None, None) for h in ht]
        _assert_same(
            [[x for x in h if x is not None] for h in hd],
            [[x for x in h if x is not None] for h in ht],
            f"{name} hyper-parameters step {k}",
        )
    assert [g["initial_lr"] for g in dopt.param_groups] == [
        g["initial_lr"] for g in topt.param_groups
    ]
    assert set(ds.state_dict()) == set(ts.state_dict())


_CLOSED_FORMS = [(*case, (3, 9, 14, 31)) for case in SCHEDULERS[:5]] + [
    ("ConstantLR", dict(factor=0.25, total_iters=7), "SGD", (3, 9, 1, 30)),
    ("LinearLR", dict(start_factor=0.1, total_iters=10), "SGD", (3, 9, 1, 30)),
    ("PolynomialLR", dict(total_iters=20, power=2.0), "SGD", (3, 9, 1, 30)),
]


@pytest.mark.parametrize("case", _CLOSED_FORMS, ids=[_sid(c[:3]) for c in _CLOSED_FORMS])
def test_closed_form_epoch_argument_matches_torch(case):
    name, kw, opt_name, epochs = case
    dopt, topt = _pair(opt_name)
    ds = getattr(dsched, name)(dopt, **kw)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in epochs:
            ds.step(epoch)
            ts.step(epoch)
            _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"{name} epoch {epoch}")


def test_one_cycle_errors_like_torch():
    dopt, topt = _pair()
    ds = dsched.OneCycleLR(dopt, max_lr=0.1, total_steps=3)
    ts = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        dopt.step()
        topt.step()
        ds.step()
        ts.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        ds.step()
    with pytest.raises(ValueError, match="total_steps OR"):
        dsched.OneCycleLR(dopt, max_lr=0.1)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        dsched.OneCycleLR(dopt, max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="pct_start"):
        dsched.OneCycleLR(dopt, max_lr=0.1, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        dsched.OneCycleLR(dopt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        dsched.OneCycleLR(dopt, max_lr=[0.1, 0.2, 0.3], total_steps=10)
    rms = optim.RMSprop([dl.zeros(1, requires_grad=True)])
    rms.defaults.pop("momentum")
    with pytest.raises(ValueError, match="momentum or beta1"):
        dsched.OneCycleLR(rms, max_lr=0.1, total_steps=10)


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2),
    dict(patience=1, threshold=0.05, threshold_mode="abs", cooldown=2),
    dict(patience=0, factor=0.3, min_lr=[0.01, 0.004], cooldown=1),
    dict(mode="max", patience=1, threshold=0.1, threshold_mode="rel", min_lr=0.02, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(i) for i in range(len(PLATEAU))])
def test_reduce_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(3)
    # a noisy plateau: falls, stalls, rises, falls slowly
    metrics = np.concatenate(
        [
            np.linspace(1.0, 0.5, 10),
            np.full(15, 0.5),
            np.linspace(0.5, 0.8, 10),
            0.8 - np.arange(15) * 1e-3,
        ]
    ) + rng.normal(0, 0.01, 50)
    dopt, topt = _pair()
    ds = dsched.ReduceLROnPlateau(dopt, **kw)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    changes = 0
    for k, m in enumerate(metrics):
        before = ds.get_last_lr()
        ds.step(float(m))
        ts.step(float(m))
        changes += ds.get_last_lr() != before
        _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"plateau step {k}")
        assert (ds.num_bad_epochs, ds.cooldown_counter, ds.best, ds.last_epoch) == (
            ts.num_bad_epochs,
            ts.cooldown_counter,
            ts.best,
            ts.last_epoch,
        )
    assert changes > 0  # the sequence really exercised a reduction
    assert set(ds.state_dict()) == set(ts.state_dict())


def test_reduce_on_plateau_accepts_a_tensor_metric_and_validates():
    dopt, _ = _pair()
    s = dsched.ReduceLROnPlateau(dopt, patience=0)
    s.step(dl.tensor(1.0))
    s.step(dl.tensor(2.0))
    assert s.get_last_lr() == pytest.approx([0.01, 0.005])
    with pytest.raises(ValueError, match=r"Factor should be < 1\.0"):
        dsched.ReduceLROnPlateau(dopt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        dsched.ReduceLROnPlateau(dopt, mode="up")
    with pytest.raises(ValueError, match="threshold mode"):
        dsched.ReduceLROnPlateau(dopt, threshold_mode="pct")
    with pytest.raises(ValueError, match="expected 2 min_lrs"):
        dsched.ReduceLROnPlateau(dopt, min_lr=[0.1])


@pytest.mark.parametrize(
    "name,kw",
    [
        ("StepLR", dict(step_size=4, gamma=0.5)),
        ("MultiStepLR", dict(milestones=[3, 8, 8, 15])),
        ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
        ("OneCycleLR", dict(max_lr=0.4, total_steps=30)),
    ],
)
def test_checkpoint_round_trip_continues_identically(name, kw):
    """Optimizer + scheduler state through dl.save / dl.load, resumed mid-schedule."""
    ref_opt, _ = _pair()
    ref = getattr(dsched, name)(ref_opt, **kw)
    ref_lrs = []
    for _ in range(25):
        ref_opt.step()
        ref.step()
        ref_lrs.append(ref.get_last_lr())

    opt1, _ = _pair()
    s1 = getattr(dsched, name)(opt1, **kw)
    for _ in range(10):
        opt1.step()
        s1.step()
    buf = io.BytesIO()
    save({"optimizer": opt1.state_dict(), "scheduler": s1.state_dict()}, buf)
    buf.seek(0)
    ckpt = load(buf)

    opt2, _ = _pair()
    s2 = getattr(dsched, name)(opt2, **kw)
    opt2.load_state_dict(ckpt["optimizer"])
    s2.load_state_dict(ckpt["scheduler"])
    resumed = []
    for _ in range(15):
        opt2.step()
        s2.step()
        resumed.append(s2.get_last_lr())
    assert resumed == ref_lrs[10:]


def test_lambda_lr_state_dict_keeps_callable_objects_state():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.n)

    dopt, _ = _pair()
    s = dsched.LambdaLR(dopt, [Warmup(5), lambda e: 1.0])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [{"n": 5}, None]
    w = Warmup(99)
    s2 = dsched.LambdaLR(_pair()[0], [w, lambda e: 1.0])
    s2.load_state_dict(sd)
    assert w.n == 5


def test_scheduler_warnings_and_errors():
    dopt, _ = _pair()
    s = dsched.StepLR(dopt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        s.get_lr()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        dsched.StepLR(object(), step_size=2)
    fresh, _ = _pair()
    with pytest.raises(KeyError, match="initial_lr"):
        dsched.ExponentialLR(fresh, gamma=0.9, last_epoch=3)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        dsched.LambdaLR(fresh, [lambda e: 1.0])


def test_resume_with_last_epoch_matches_torch():
    dopt, topt = _pair()
    for g in dopt.param_groups + topt.param_groups:
        g["initial_lr"] = g["lr"]
    ds = dsched.CosineAnnealingLR(dopt, T_max=10, last_epoch=4)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, last_epoch=4)
    for _ in range(8):
        _assert_same(ds.get_last_lr(), ts.get_last_lr(), "resumed cosine")
        dopt.step()
        topt.step()
        ds.step()
        ts.step()


def test_warm_restarts_with_fractional_epochs_matches_torch():
    dopt, topt = _pair()
    ds = dsched.CosineAnnealingWarmRestarts(dopt, T_0=3, T_mult=2)
    ts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2)
    for epoch in (0.5, 1.7, 3.2, 10.4, 25.0, 2):
        ds.step(epoch)
        ts.step(epoch)
        _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"epoch {epoch}")
        assert (ds.T_cur, ds.T_i, ds.last_epoch) == (ts.T_cur, ts.T_i, ts.last_epoch)
    with pytest.raises(ValueError, match="T_0"):
        dsched.CosineAnnealingWarmRestarts(dopt, T_0=0)


def _composite(lib, opt, kind):
    S = lib.optim.lr_scheduler
    if kind == "warmup-cosine":
        return S.SequentialLR(
            opt, [S.LinearLR(opt, 0.1, total_iters=5), S.CosineAnnealingLR(opt, 20, 0.001)], [5]
        )
    if kind == "three-phases":
        return S.SequentialLR(
            opt,
            [S.ConstantLR(opt, 0.5, 3), S.ExponentialLR(opt, 0.9), S.StepLR(opt, 4, 0.5)],
            [4, 15],
        )
    if kind == "chained":
        return S.ChainedScheduler([S.LinearLR(opt, 0.2, total_iters=6), S.ExponentialLR(opt, 0.95)])
    inner = S.SequentialLR(opt, [S.ConstantLR(opt, 0.5, 3), S.ExponentialLR(opt, 0.9)], [6])
    return S.ChainedScheduler([inner, S.MultiStepLR(opt, [10, 20])])


COMPOSITES = ["warmup-cosine", "three-phases", "chained", "chained-sequential"]


@pytest.mark.parametrize("kind", COMPOSITES)
def test_sequential_and_chained_match_torch(kind):
    dopt, topt = _pair()
    ds, ts = _composite(dl, dopt, kind), _composite(torch, topt, kind)
    _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"{kind} initial")
    for k in range(35):
        dopt.step()
        topt.step()
        ds.step()
        ts.step()
        _assert_same(ds.get_last_lr(), ts.get_last_lr(), f"{kind} step {k}")
        _assert_same(
            [g["lr"] for g in dopt.param_groups], [g["lr"] for g in topt.param_groups], kind
        )
    assert set(ds.state_dict()) == set(ts.state_dict())


@pytest.mark.parametrize("kind", COMPOSITES[1:])
def test_composite_checkpoint_round_trip(kind):
    ref_opt, _ = _pair()
    ref = _composite(dl, ref_opt, kind)
    lrs = []
    for _ in range(30):
        ref_opt.step()
        ref.step()
        lrs.append(ref.get_last_lr())
    opt1, _ = _pair()
    s1 = _composite(dl, opt1, kind)
    for _ in range(12):
        opt1.step()
        s1.step()
    buf = io.BytesIO()
    save({"optimizer": opt1.state_dict(), "scheduler": s1.state_dict()}, buf)
    buf.seek(0)
    ckpt = load(buf)
    opt2, _ = _pair()
    s2 = _composite(dl, opt2, kind)
    opt2.load_state_dict(ckpt["optimizer"])
    s2.load_state_dict(ckpt["scheduler"])
    resumed = []
    for _ in range(18):
        opt2.step()
        s2.step()
        resumed.append(s2.get_last_lr())
    assert resumed == lrs[12:]


def test_composite_errors_match_torch():
    dopt, _ = _pair()
    other, _ = _pair()
    a = dsched.ExponentialLR(dopt, 0.9)
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        dsched.SequentialLR(dopt, [a], [3])
    with pytest.raises(ValueError, match="same optimizer"):
        dsched.SequentialLR(dopt, [a, dsched.ExponentialLR(other, 0.9)], [3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        dsched.ChainedScheduler([a, dsched.ReduceLROnPlateau(dopt)])
    with pytest.raises(ValueError, match="at least one scheduler"):
        dsched.ChainedScheduler([])
