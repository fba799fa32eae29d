"""dl.optim.swa_utils against torch.optim.swa_utils: averaged weights, EMA, buffers,
batch-norm statistics recomputed by update_bn, and SWALR's learning rates."""

import numpy as np
import pytest
import torch
from torch.optim import swa_utils as T

import darklib as dl
from darklib.optim import swa_utils as D


def _pair(seed=0):
    """The same small conv + batch-norm network in both libraries, float64."""
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.Flatten()
    ).double()
    dm = dl.nn.Sequential(
        dl.nn.Conv2d(2, 3, 3), dl.nn.BatchNorm2d(3), dl.nn.ReLU(), dl.nn.Flatten()
    )
    dm.load_state_dict({k: dl.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    return dm.double(), tm


def _steps(dm, tm, n, seed=1):
    """n training steps of plain SGD, the same in both: yields after each."""
    rng = np.random.default_rng(seed)
    dopt, topt = dl.optim.SGD(dm.parameters(), lr=0.1), torch.optim.SGD(tm.parameters(), lr=0.1)
    for _ in range(n):
        x = rng.standard_normal((4, 2, 5, 5))
        for m, opt, L in ((dm, dopt, dl), (tm, topt, torch)):
            opt.zero_grad()
            (m(L.tensor(x)) ** 2).mean().backward()
            opt.step()
        yield


def _same_state(da, ta):
    ts = ta.state_dict()
    ds = da.state_dict()
    assert list(ds) == list(ts)
    for k, v in ts.items():
        np.testing.assert_allclose(ds[k].numpy(), v.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize(
    "how",
    [
        {},
        {"use_buffers": True},
        {"multi_avg_fn": "ema"},
        {"avg_fn": "ema"},
        {"avg_fn": "swa"},
        {"multi_avg_fn": "ema", "use_buffers": True},
    ],
)
def test_averaged_model_follows_torch(how):
    dm, tm = _pair()
    makers = {
        ("multi_avg_fn", "ema"): lambda S: S.get_ema_multi_avg_fn(0.9),
        ("avg_fn", "ema"): lambda S: S.get_ema_avg_fn(0.8),
        ("avg_fn", "swa"): lambda S: S.get_swa_avg_fn(),
    }
    dkw = {k: makers[k, v](D) if (k, v) in makers else v for k, v in how.items()}
    tkw = {k: makers[k, v](T) if (k, v) in makers else v for k, v in how.items()}
    da, ta = D.AveragedModel(dm, **dkw), T.AveragedModel(tm, **tkw)
    for _ in _steps(dm, tm, 4):
        da.update_parameters(dm)
        ta.update_parameters(tm)
    _same_state(da, ta)
    assert int(da.n_averaged.item()) == 4
    x = np.random.default_rng(5).standard_normal((2, 2, 5, 5))
    da.eval(), ta.eval()
    np.testing.assert_allclose(
        da(dl.tensor(x)).detach().numpy(), ta(torch.tensor(x)).detach().numpy(), rtol=1e-10
    )
    # the average is a copy: the model keeps its own weights
    assert not np.allclose(dm[0].weight.detach().numpy(), da.module[0].weight.detach().numpy())


def test_update_bn_recomputes_the_statistics_like_torch():
    dm, tm = _pair()
    for _ in _steps(dm, tm, 2):
        pass
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((3, 2, 5, 5)) * (i + 1) for i in range(4)]
    dm.eval(), tm.eval()
    D.update_bn([(dl.tensor(b), 0) for b in batches], dm)
    T.update_bn([(torch.tensor(b), 0) for b in batches], tm)
    _same_state(dm, tm)
    assert not dm.training  # the mode is restored
    assert dm[1].momentum == 0.1


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 4])
def test_swalr_learning_rates_follow_torch(strategy, anneal_epochs):
    lrs = {}
    for L, S in ((dl, D), (torch, T)):
        p = L.zeros(2, requires_grad=True)
        q = L.zeros(2, requires_grad=True)
        opt = L.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.3}], lr=1.0)
        sched = S.SWALR(
            opt, swa_lr=[0.05, 0.2], anneal_epochs=anneal_epochs, anneal_strategy=strategy
        )
        seen = []
        for i in range(7):
            opt.step()
            sched.step()
            if i == 2:  # a change by hand is annealed from, too
                opt.param_groups[0]["lr"] = 0.5
            seen.append(sched.get_last_lr())
        lrs[L] = seen
    np.testing.assert_allclose(lrs[dl], lrs[torch], rtol=1e-12)


def test_bad_arguments_are_refused_like_torch():
    opt = dl.optim.SGD([dl.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        D.SWALR(opt, 0.01, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs"):
        D.SWALR(opt, 0.01, anneal_epochs=-1)
    with pytest.raises(ValueError, match="decay"):
        D.get_ema_multi_avg_fn(1.5)
    model = dl.nn.Linear(2, 2)
    avg = D.AveragedModel(model)
    with pytest.raises(ValueError, match="parameters"):
        avg.update_parameters(dl.nn.Sequential(model, dl.nn.Linear(2, 2)))


def test_swalr_state_round_trips_through_a_state_dict():
    opt = dl.optim.SGD([dl.zeros(1, requires_grad=True)], lr=1.0)
    a = D.SWALR(opt, 0.1, anneal_epochs=5, anneal_strategy="linear")
    opt.step()
    a.step()
    state = a.state_dict()
    assert state["_anneal_strategy"] == "linear" and "anneal_func" not in state  # as torch's
    b = D.SWALR(dl.optim.SGD([dl.zeros(1, requires_grad=True)], lr=1.0), 0.1)
    b.load_state_dict(state)
    assert b.anneal_func is a.anneal_func and b._step_count == a._step_count
