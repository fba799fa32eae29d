"""Adafactor against torch.optim.Adafactor: trajectories (factored matrices, a stack of
matrices, vectors, 0-d), state layout, state dicts and argument errors."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, rng
from tests.test_api_extras2 import _grads, _np, _pair, _same_state, _step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CASES = [
    {},
    dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=2.0),
    dict(lr=0.02, weight_decay=0.1, maximize=True),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", CASES)
def test_trajectory_and_state_match_torch(kw, dtype, device):
    tol = 3e-5 if dtype == np.float32 else 1e-11
    dps, tps, dopt, topt = _pair("Adafactor", kw, dtype, device)
    start = [_np(p).copy() for p in dps]
    for k, gs in enumerate(_grads(25, dtype)):
        _step(dopt, dps, gs, dl, device)
        _step(topt, tps, gs, torch)
        for i, (dp, tp) in enumerate(zip(dps, tps)):
            np.testing.assert_allclose(
                _np(dp), _np(tp), rtol=tol, atol=tol, err_msg=f"step {k} param {i}"
            )
    assert all(not np.allclose(_np(p), s) for p, s in zip(dps, start))
    _same_state(dopt, topt, dps, tps, tol)
    assert "row_var" in dopt.state[dps[0]] and "variance" in dopt.state[dps[1]]


def test_a_stack_of_matrices_is_factored_per_matrix_like_torch():
    a = rng(3).standard_normal((2, 3, 4))
    g = rng(4).standard_normal((2, 3, 4))
    out = []
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.tensor(a))
        opt = lib.optim.Adafactor([p], lr=0.1)
        for k in range(4):
            p.grad = lib.tensor(g * (k + 1))
            opt.step()
        out.append((_np(p), _np(opt.state[p]["row_var"]), _np(opt.state[p]["col_var"])))
    for d, t in zip(*out):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)
    assert out[0][1].shape == (2, 3, 1) and out[0][2].shape == (2, 1, 4)


def test_state_dict_round_trip_continues_like_torch():
    grads = _grads(16, np.float64, seed=3)
    dps, tps, dopt, topt = _pair("Adafactor", dict(lr=0.03), np.float64)
    for gs in grads[:8]:
        _step(dopt, dps, gs, dl)
        _step(topt, tps, gs, torch)
    dsd, tsd = dopt.state_dict(), topt.state_dict()
    assert dsd["param_groups"] == tsd["param_groups"]
    dps2 = [dl.tensor(_np(p), requires_grad=True) for p in dps]
    dopt2 = dl.optim.Adafactor([{"params": dps2[:2]}, {"params": dps2[2:]}])
    dopt2.load_state_dict(dsd)
    for gs in grads[8:]:
        _step(dopt2, dps2, gs, dl)
        _step(topt, tps, gs, torch)
    for dp, tp in zip(dps2, tps):
        np.testing.assert_allclose(_np(dp), _np(tp), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=-1.0),
        dict(beta2_decay=0.5),
        dict(eps=(-1.0, 1e-3)),
        dict(eps=(None, -1.0)),
        dict(d=0.5),
        dict(weight_decay=-0.1),
    ],
)
def test_bad_arguments_raise_like_torch(kw):
    for lib in (dl, torch):
        with pytest.raises(ValueError):
            lib.optim.Adafactor([lib.nn.Parameter(lib.zeros(2))], **kw)


@pytest.mark.parametrize("wd", [0.0, 0.2])
def test_tensor_lr_moves_the_parameters_like_torch(wd):
    # a Tensor lr used to rebind a local copy of the parameter: nothing moved
    out = []
    for lib in (dl, torch):
        ps = [lib.ones(2, 3, requires_grad=True), lib.ones(4, requires_grad=True)]
        opt = lib.optim.Adafactor(ps, lr=lib.tensor(0.01), weight_decay=wd)
        for t in range(3):
            for i, p in enumerate(ps):
                g = np.random.default_rng(10 * t + i).standard_normal(tuple(p.shape))
                p.grad = lib.tensor(g.astype(np.float32))
            opt.step()
        out.append([p.detach().numpy().copy() for p in ps])
    for d, t in zip(*out):
        assert not np.allclose(d, 1.0)
        np.testing.assert_allclose(d, t, rtol=1e-6)
