"""darklib.optim.LBFGS against torch.optim.LBFGS: trajectories, losses, state and errors."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES

TOL = {"float64": 1e-10, "float32": 1e-5}
# the history (differences of nearby gradients) keeps fewer exact digits than the iterates
STATE_TOL = {"float64": 1e-8, "float32": 1e-3}


def _rosenbrock(data, x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _least_squares(data, w, c):
    a, b = data
    return ((a @ w + c - b) ** 2).mean()


def _mlp(data, w1, b1, w2, b2):
    x, y = data
    return ((((x @ w1 + b1).tanh() @ w2) + b2 - y) ** 2).mean()


def _problem(name: str):
    """``(loss function, initial parameter arrays, data arrays)``, float64 NumPy."""
    rng = np.random.default_rng(3)
    if name == "rosenbrock":
        return _rosenbrock, [np.array([-1.5, 2.0])], []
    if name == "least_squares":
        a, b = rng.standard_normal((20, 5)), rng.standard_normal(20)
        return _least_squares, [rng.standard_normal(5), np.array(0.5)], [a, b]
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    init = [
        rng.standard_normal((3, 4)) * 0.5,
        rng.standard_normal(4) * 0.1,
        rng.standard_normal((4, 1)) * 0.5,
        rng.standard_normal(1) * 0.1,
    ]
    return _mlp, init, [x, y]


class _Run:
    """One optimizer on one problem, torch's or darklib's, stepped with a closure."""

    def __init__(self, lib, name, dtype, kwargs, device="cpu"):
        fn, init, data = _problem(name)
        if lib is torch:
            dt = getattr(torch, dtype)
            self.params = [torch.nn.Parameter(torch.tensor(a, dtype=dt)) for a in init]
            self.data = [torch.tensor(a, dtype=dt) for a in data]
            self.opt = torch.optim.LBFGS(self.params, **kwargs)
        else:
            dt = getattr(dl, dtype)
            self.params = [dl.tensor(a, dtype=dt, device=device, requires_grad=True) for a in init]
            self.data = [dl.tensor(a, dtype=dt, device=device) for a in data]
            self.opt = dl.optim.LBFGS(self.params, **kwargs)
        self.fn = fn
        self.evals = 0

    def closure(self):
        self.evals += 1
        self.opt.zero_grad()
        loss = self.fn(self.data, *self.params)
        loss.backward()
        return loss

    def step(self) -> float:
        return float(self.opt.step(self.closure).detach().cpu().numpy())

    def flat(self) -> np.ndarray:
        return np.concatenate([_np(p).ravel() for p in self.params])

    def state(self) -> dict:
        return self.opt.state[self.opt.param_groups[0]["params"][0]]


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy())


def _compare(name, dtype, kwargs, steps, device="cpu"):
    ref = _Run(torch, name, dtype, kwargs)
    got = _Run(dl, name, dtype, kwargs, device)
    tol = TOL[dtype]
    start = ref.flat()
    for k in range(steps):
        lr, lg = ref.step(), got.step()
        np.testing.assert_allclose(lg, lr, rtol=tol, atol=tol, err_msg=f"loss, step {k}")
        np.testing.assert_allclose(got.flat(), ref.flat(), rtol=tol, atol=tol, err_msg=f"step {k}")
        assert got.evals == ref.evals
    assert not np.allclose(ref.flat(), start)  # it moved
    return ref, got


def _check_state(ref: _Run, got: _Run, tol: float) -> None:
    rs, gs = ref.state(), got.state()
    assert list(gs) == list(rs)
    for key, rv in rs.items():
        gv = gs[key]
        if isinstance(rv, list):
            assert len(gv) == len(rv), key
            pairs = list(zip(rv, gv))
        else:
            pairs = [(rv, gv)]
        for r, g in pairs:
            if r is None:
                assert g is None, key
            elif isinstance(r, torch.Tensor):
                np.testing.assert_allclose(_np(g), r.numpy(), rtol=tol, atol=tol, err_msg=key)
            else:
                assert not isinstance(g, dl.Tensor), key
                np.testing.assert_allclose(g, r, rtol=tol, atol=tol, err_msg=key)


CASES = [
    # (problem, kwargs, steps): history_size below the iterations of a step in each
    ("rosenbrock", dict(lr=1, max_iter=5, history_size=2, line_search_fn="strong_wolfe"), 3),
    ("rosenbrock", dict(lr=0.001, max_iter=6, history_size=3), 3),
    ("least_squares", dict(lr=0.5, max_iter=6, history_size=3), 4),
    ("least_squares", dict(max_iter=8, history_size=4, line_search_fn="strong_wolfe"), 3),
    ("mlp", dict(lr=0.3, max_iter=8, history_size=5), 4),
    ("mlp", dict(max_iter=10, history_size=4, line_search_fn="strong_wolfe"), 3),
]


# float32: darklib's and torch's gradients differ in the last bits (other GEMM and
# reduction orders), which L-BFGS amplifies near convergence; fewer iterations per step keep
# the comparison meaningful at 1e-5
F32_CASES = [
    ("rosenbrock", dict(lr=1, max_iter=4, history_size=2, line_search_fn="strong_wolfe"), 3),
    ("rosenbrock", dict(lr=0.001, max_iter=6, history_size=3), 3),
    ("least_squares", dict(lr=0.5, max_iter=4, history_size=2), 3),
    ("least_squares", dict(max_iter=4, history_size=2, line_search_fn="strong_wolfe"), 2),
    ("mlp", dict(lr=0.3, max_iter=4, history_size=2), 3),
    ("mlp", dict(max_iter=4, history_size=2, line_search_fn="strong_wolfe"), 3),
]


@pytest.mark.parametrize(("name", "kwargs", "steps"), CASES)
def test_lbfgs_matches_torch_float64(name, kwargs, steps):
    ref, got = _compare(name, "float64", kwargs, steps)
    _check_state(ref, got, STATE_TOL["float64"])


@pytest.mark.parametrize(("name", "kwargs", "steps"), F32_CASES)
def test_lbfgs_matches_torch_float32(name, kwargs, steps):
    ref, got = _compare(name, "float32", kwargs, steps)
    _check_state(ref, got, STATE_TOL["float32"])
    assert got.state()["d"].dtype == dl.float32


@pytest.mark.parametrize("device", DEVICES)
def test_lbfgs_devices(device):
    kwargs = dict(max_iter=6, history_size=3, line_search_fn="strong_wolfe")
    _, got = _compare("mlp", "float64", kwargs, 2, device)
    state = got.state()
    assert state["d"].device == state["prev_flat_grad"].device == got.params[0].device
    assert state["old_dirs"][0].device == got.params[0].device


def test_lbfgs_state_dict_round_trip():
    kwargs = dict(max_iter=4, history_size=3, line_search_fn="strong_wolfe")
    ref = _Run(torch, "mlp", "float64", kwargs)
    got = _Run(dl, "mlp", "float64", kwargs)
    for _ in range(2):
        ref.step(), got.step()
    sd_ref = copy.deepcopy(ref.opt.state_dict())
    sd_got = got.opt.state_dict()
    assert sd_got["param_groups"] == sd_ref["param_groups"]
    assert list(sd_got["state"]) == list(sd_ref["state"]) == [0]
    # a fresh optimizer, loaded mid-run, goes on as torch's
    ref2 = _Run(torch, "mlp", "float64", kwargs)
    got2 = _Run(dl, "mlp", "float64", kwargs)
    for r, g, rp, gp in zip(ref2.params, got2.params, ref.params, got.params):
        with torch.no_grad():
            r.copy_(rp)
        g.array[...] = gp.array
    ref2.opt.load_state_dict(sd_ref)
    got2.opt.load_state_dict(sd_got)
    for _ in range(2):
        np.testing.assert_allclose(got2.step(), ref2.step(), rtol=1e-10)
        np.testing.assert_allclose(got2.flat(), ref2.flat(), rtol=1e-10, atol=1e-10)
    _check_state(ref2, got2, 1e-10)
    # the loaded history is a copy: the first optimizer's state did not move
    np.testing.assert_array_equal(
        _np(got.state()["prev_flat_grad"]), _np(sd_got["state"][0]["prev_flat_grad"])
    )
    assert got2.state()["old_dirs"][0] is not got.state()["old_dirs"][0]


def test_lbfgs_stops_like_torch():
    # converged: the first evaluation already meets tolerance_grad, nothing moves
    for lib in (torch, dl):
        run = _Run(lib, "least_squares", "float64", dict(tolerance_grad=1e9))
        before = run.flat()
        run.step()
        np.testing.assert_array_equal(run.flat(), before)
        assert run.evals == 1
        assert run.state() == {"func_evals": 1, "n_iter": 0}
    # max_eval caps the closure calls of one step; tolerance_change ends a step early
    for kwargs in (dict(max_eval=3), dict(tolerance_change=1e-2), dict(max_iter=1)):
        ref, got = _compare("least_squares", "float64", dict(kwargs, lr=0.5), 2)
        assert got.state()["func_evals"] == ref.state()["func_evals"]
        assert got.state()["n_iter"] == ref.state()["n_iter"]


def test_lbfgs_defaults_and_exports():
    p = dl.tensor([1.0, 2.0], requires_grad=True)
    opt = dl.optim.LBFGS([p], max_iter=8)
    tp = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    ref = torch.optim.LBFGS([tp], max_iter=8)
    got_group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    ref_group = {k: v for k, v in ref.param_groups[0].items() if k != "params"}
    assert got_group == ref_group
    assert got_group["max_eval"] == 10
    assert "LBFGS" in dl.optim.__all__


def test_lbfgs_errors():
    p = dl.tensor([1.0, 2.0], requires_grad=True)
    q = dl.tensor([3.0], requires_grad=True)
    tp, tq = torch.nn.Parameter(torch.tensor([1.0, 2.0])), torch.nn.Parameter(torch.ones(1))
    for ours, theirs in (
        (
            lambda: dl.optim.LBFGS([{"params": [p]}, {"params": [q]}]),
            lambda: torch.optim.LBFGS([{"params": [tp]}, {"params": [tq]}]),
        ),
        (lambda: dl.optim.LBFGS([p], lr=-1), lambda: torch.optim.LBFGS([tp], lr=-1)),
        (
            lambda: dl.optim.LBFGS([p], lr=dl.ones(2)),
            lambda: torch.optim.LBFGS([tp], lr=torch.ones(2)),
        ),
        (lambda: dl.optim.LBFGS([]), lambda: torch.optim.LBFGS([])),
    ):
        with pytest.raises(Exception) as theirs_err:
            theirs()
        with pytest.raises(type(theirs_err.value), match=re.escape(str(theirs_err.value))):
            ours()
    opt, ref = dl.optim.LBFGS([p]), torch.optim.LBFGS([tp])
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'closure'"):
        opt.step()
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'closure'"):
        ref.step()
    # a group added later is refused at the step, as torch's assertion
    opt.add_param_group({"params": [q]})
    with pytest.raises(AssertionError, match="Expected exactly one param_group, but got 2"):
        opt.step(lambda: (p * p).sum())
    # an unknown line search fails once the search is reached, as torch's
    for lib, x in ((dl, p), (torch, tp)):
        o = lib.optim.LBFGS([x], line_search_fn="armijo")

        def closure(o=o, x=x):
            o.zero_grad()
            loss = (x * x).sum()
            loss.backward()
            return loss

        with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
            o.step(closure)


def test_strong_wolfe_zoom_ignores_the_group_tolerance_change_like_torch():
    # torch's LBFGS calls its line search with the search's default tolerance_change (1e-9),
    # not the group's: a huge group tolerance must not stop the zoom early
    out = []
    for lib in (dl, torch):
        p = lib.tensor([5.0], requires_grad=True)
        opt = lib.optim.LBFGS(
            [p],
            lr=12,
            line_search_fn="strong_wolfe",
            tolerance_change=20.0,
            max_iter=1,
            max_eval=20,
        )

        def closure(p=p, opt=opt):
            opt.zero_grad()
            loss = (p**4).sum()
            loss.backward()
            return loss

        opt.step(closure)
        out.append((p.detach().numpy().copy(), opt.state[p]["func_evals"]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6)
    assert out[0][1] == out[1][1] == 3
    assert abs(out[0][0][0] + 0.9743081) < 1e-5
