"""darklib.optim against torch.optim: same trajectories, same state dicts, same errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import optim
from darklib.tensor import Tensor
from tests.oracle import DEVICES

SHAPES = [(3, 4), (5,), (2, 2, 3)]
STEPS = 20


def _init_arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _grads(steps: int = STEPS, seed: int = 1) -> list[list[np.ndarray | None]]:
    """Per step, one gradient per parameter; parameter 1 has none on steps 3 and 7."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(steps):
        gs: list[np.ndarray | None] = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        if k in (3, 7):
            gs[1] = None
        out.append(gs)
    return out


def _groups(params: list, group_lrs: tuple | None) -> list:
    if group_lrs is None:
        return list(params)
    return [{"params": params[:2], "lr": group_lrs[0]}, {"params": params[2:], "lr": group_lrs[1]}]


def _dl_params(arrays: list[np.ndarray], device: str = "cpu") -> list[Tensor]:
    return [dl.tensor(a.copy(), device=device, requires_grad=True) for a in arrays]


def _torch_params(arrays: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.nn.Parameter(torch.tensor(a.copy())) for a in arrays]


def _dl_step(opt, params, gs, device="cpu"):
    for p, g in zip(params, gs):
        p.grad = None if g is None else dl.tensor(g, device=device)
    opt.step()


def _torch_step(opt, params, gs):
    for p, g in zip(params, gs):
        p.grad = None if g is None else torch.tensor(g)
    opt.step()


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.detach().cpu().numpy())


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True)),
    ("SGD", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.005, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.005, momentum=0.7, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, maximize=True, eps=1e-4)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9))),  # the rectified branch from step 6 on
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]


def _case_id(case) -> str:
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("group_lrs", [None, (0.02, 0.005)], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_trajectory_matches_torch(case, group_lrs, device):
    name, kw = case
    arrays, grads = _init_arrays(), _grads()
    dps, tps = _dl_params(arrays, device), _torch_params(arrays)
    dopt = getattr(optim, name)(_groups(dps, group_lrs), **kw)
    topt = getattr(torch.optim, name)(_groups(tps, group_lrs), **kw)
    for k, gs in enumerate(grads):
        _dl_step(dopt, dps, gs, device)
        _torch_step(topt, tps, gs)
        for i, (dp, tp) in enumerate(zip(dps, tps)):
            np.testing.assert_allclose(
                _np(dp), _np(tp), rtol=1e-5, atol=1e-6, err_msg=f"{name} step {k} param {i}"
            )
    # the state matches torch's too, key by key
    for dp, tp in zip(dps, tps):
        tstate, dstate = topt.state[tp], dopt.state[dp]
        assert set(dstate) == set(tstate)
        for key, tv in tstate.items():
            dv = dstate[key]
            assert dv.dtype.name == str(tv.dtype).replace("torch.", "")
            assert tuple(dv.shape) == tuple(tv.shape)
            np.testing.assert_allclose(_np(dv), _np(tv), rtol=1e-5, atol=1e-6, err_msg=key)


def test_step_updates_in_place_and_bumps_version():
    p = dl.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    arr = p.array
    opt = optim.Adam([p], lr=0.1)
    p.grad = dl.ones(2, 3)
    v0 = p._version
    opt.step()
    assert p.array is arr
    assert p._version == v0 + 1
    assert not np.allclose(arr, 1.0)
    # the gradient itself is never modified, even when maximizing with weight decay
    g = p.grad.array.copy()
    optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True).step()
    np.testing.assert_array_equal(p.grad.array, g)


def test_update_does_not_record_a_graph():
    p = dl.tensor(np.ones(3, np.float32), requires_grad=True)
    p.grad = dl.ones(3)
    optim.RMSprop([p], momentum=0.9, centered=True).step()
    assert p.grad_fn is None and p.is_leaf and p.requires_grad


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_closure_is_evaluated_with_grad_and_its_loss_returned(name):
    def make_closure(opt, p, lib):
        def closure():
            opt.zero_grad()
            y = p * p  # needs grad mode on to record a graph for backward
            y.backward(lib.ones_like(y) * 0.5)
            return float(np.sum(_np(y)))

        return closure

    a = np.array([1.0, -2.0, 3.0], np.float32)
    tp = torch.nn.Parameter(torch.tensor(a))
    dp = dl.tensor(a, requires_grad=True)
    kw = {"lr": 0.1} if name != "SGD" else {"lr": 0.1, "momentum": 0.5}
    topt = getattr(torch.optim, name)([tp], **kw)
    tclosure = make_closure(topt, tp, torch)
    tloss = [topt.step(tclosure) for _ in range(5)]
    dopt = getattr(optim, name)([dp], **kw)
    dclosure = make_closure(dopt, dp, dl)
    with dl.no_grad():  # step under no_grad still evaluates the closure with grad enabled
        dloss = [dopt.step(dclosure) for _ in range(5)]
    np.testing.assert_allclose(dloss, tloss, rtol=1e-5)
    np.testing.assert_allclose(_np(dp), _np(tp), rtol=1e-5, atol=1e-7)
    assert dopt.step() is None


@pytest.mark.parametrize("case", CASES[::2], ids=[_case_id(c) for c in CASES[::2]])
def test_state_dict_round_trip_mid_run(case):
    name, kw = case
    arrays, grads = _init_arrays(), _grads()
    ref = _dl_params(arrays)
    ropt = getattr(optim, name)(_groups(ref, (0.03, 0.01)), **kw)
    for gs in grads:
        _dl_step(ropt, ref, gs)

    first = _dl_params(arrays)
    opt1 = getattr(optim, name)(_groups(first, (0.03, 0.01)), **kw)
    for gs in grads[:10]:
        _dl_step(opt1, first, gs)
    sd = opt1.state_dict()
    # a fresh optimizer (default hyper-parameters) over fresh tensors holding the same values
    second = [dl.tensor(_np(p), requires_grad=True) for p in first]
    opt2 = getattr(optim, name)(_groups(second, (1.0, 1.0)))
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.03 and opt2.param_groups[1]["lr"] == 0.01
    for gs in grads[10:]:
        _dl_step(opt2, second, gs)
        _dl_step(opt1, first, gs)
    for r, a, b in zip(ref, first, second):
        np.testing.assert_array_equal(_np(a), _np(r))
        np.testing.assert_array_equal(_np(b), _np(r))
    # loading copied the state: the two optimizers never share a buffer
    for pa, pb in zip(first, second):
        for key in opt1.state[pa]:
            assert opt1.state[pa][key].array is not opt2.state[pb][key].array


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", dict(lr=0.1, momentum=0.9)),
        ("SGD", dict(lr=0.1)),
        ("Adam", dict(lr=0.01, amsgrad=True)),
        ("AdamW", dict(lr=0.01)),
        ("RMSprop", dict(momentum=0.5, centered=True)),
        ("Adagrad", dict(lr_decay=0.1)),
        ("Adadelta", dict()),
        ("Adamax", dict()),
        ("NAdam", dict(decoupled_weight_decay=True)),
        ("RAdam", dict()),
    ],
)
def test_state_dict_layout_matches_torch(name, kw):
    arrays, grads = _init_arrays(), _grads(3)
    dps, tps = _dl_params(arrays), _torch_params(arrays)
    dopt = getattr(optim, name)(_groups(dps, (0.1, 0.2)), **kw)
    topt = getattr(torch.optim, name)(_groups(tps, (0.1, 0.2)), **kw)
    for gs in grads:
        _dl_step(dopt, dps, gs)
        _torch_step(topt, tps, gs)
    dsd, tsd = dopt.state_dict(), topt.state_dict()
    assert set(dsd) == set(tsd) == {"state", "param_groups"}
    assert [list(g) for g in dsd["param_groups"]] == [list(g) for g in tsd["param_groups"]]
    for dg, tg in zip(dsd["param_groups"], tsd["param_groups"]):
        assert dg == tg
    assert sorted(dsd["state"]) == sorted(tsd["state"])
    for i in tsd["state"]:
        assert list(dsd["state"][i]) == list(tsd["state"][i])


def test_load_a_torch_state_dict_and_continue_like_torch():
    arrays, grads = _init_arrays(), _grads()
    tps = _torch_params(arrays)
    topt = torch.optim.Adam(_groups(tps, (0.02, 0.01)), amsgrad=True)
    for gs in grads[:10]:
        _torch_step(topt, tps, gs)
    tsd = topt.state_dict()
    sd = {
        "state": {
            i: {k: dl.tensor(v.numpy()) for k, v in s.items()} for i, s in tsd["state"].items()
        },
        "param_groups": tsd["param_groups"],
    }
    dps = [dl.tensor(_np(p), requires_grad=True) for p in tps]
    dopt = optim.Adam(_groups(dps, (1.0, 1.0)), amsgrad=True)
    dopt.load_state_dict(sd)
    for gs in grads[10:]:
        _torch_step(topt, tps, gs)
        _dl_step(dopt, dps, gs)
    for dp, tp in zip(dps, tps):
        np.testing.assert_allclose(_np(dp), _np(tp), rtol=1e-5, atol=1e-6)
    step = dopt.state[dps[0]]["step"]
    assert step.shape == () and step.dtype == dl.float32 and step.item() == 20


def test_load_state_dict_casts_to_the_parameter_dtype():
    p = dl.tensor(np.ones(3), dtype=dl.float64, requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    sd = {
        "state": {0: {"momentum_buffer": dl.tensor([1.0, 2.0, 3.0])}},
        "param_groups": [{"lr": 0.5, "params": [0]}],
    }
    opt.load_state_dict(sd)
    buf = opt.state[p]["momentum_buffer"]
    assert buf.dtype == dl.float64
    assert opt.param_groups[0]["momentum"] == 0.9  # missing keys fall back to the defaults
    assert opt.param_groups[0]["lr"] == 0.5


def test_load_state_dict_validates_groups():
    a, b = dl.zeros(2, requires_grad=True), dl.zeros(3, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]})
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0, 1]}, {"params": [2]}]})
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"param_groups": []})
    with pytest.raises(ValueError, match="none of the parameter groups"):
        opt.load_state_dict({"state": {7: {}}, "param_groups": [{"params": [0]}, {"params": [1]}]})


def test_zero_grad():
    p = dl.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = dl.ones(3)
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g
    np.testing.assert_array_equal(p.grad.array, 0)
    opt.zero_grad()
    assert p.grad is None


def test_param_groups_and_defaults():
    a, b = dl.zeros(2, requires_grad=True), dl.zeros(3, requires_grad=True)
    opt = optim.SGD([{"params": a}, {"params": [b], "momentum": 0.9}], lr=0.2)
    assert opt.param_groups[0]["params"] == [a] or opt.param_groups[0]["params"][0] is a
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.9
    assert all(g["lr"] == 0.2 for g in opt.param_groups)
    c = dl.zeros(1, requires_grad=True)
    opt.add_param_group({"params": [c], "lr": 0.01})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["nesterov"] is False
    assert "Parameter Group 2" in repr(opt)
    assert optim.SGD([a]).defaults["lr"] == 1e-3
    assert optim.RMSprop([a]).defaults["lr"] == 1e-2
    assert optim.AdamW([a]).defaults["weight_decay"] == 1e-2


def test_named_parameters_are_accepted():
    a, b = dl.zeros(2, requires_grad=True), dl.zeros(3, requires_grad=True)
    opt = optim.Adam([("w", a), ("b", b)])
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


def test_parameter_errors():
    a = dl.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(TypeError, match="sets"):
        optim.SGD([{"params": {a}}], lr=0.1)


@pytest.mark.parametrize(
    "name,kw,msg",
    [
        ("SGD", dict(lr=-0.1), "Invalid learning rate: -0.1"),
        ("SGD", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
        ("SGD", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
        ("SGD", dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov momentum requires"),
        ("Adam", dict(lr=-1e-3), "Invalid learning rate: -0.001"),
        ("Adam", dict(eps=-1.0), "Invalid epsilon value: -1.0"),
        ("Adam", dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        ("Adam", dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        ("Adam", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
        ("AdamW", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
        ("RMSprop", dict(alpha=-0.1), "Invalid alpha value: -0.1"),
        ("RMSprop", dict(eps=-0.1), "Invalid epsilon value: -0.1"),
        ("RMSprop", dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    ],
)
def test_invalid_hyper_parameters_match_torch(name, kw, msg):
    with pytest.raises(ValueError, match=msg) as ours:
        getattr(optim, name)([dl.zeros(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw)
    assert str(ours.value) == str(theirs.value)


def test_gradient_shape_mismatch_is_reported():
    p = dl.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient of shape \[3, 2\] for a tensor of shape"):
        p.grad = dl.zeros(3, 2)  # refused on assignment, as torch
    p._grad = dl.zeros(3, 2)  # (a grad changed behind the setter's back)
    with pytest.raises(RuntimeError, match=r"Adam.step: a parameter of shape \(2, 3\)"):
        optim.Adam([p]).step()


def test_float64_parameters_stay_float64():
    p = dl.tensor(np.ones(4), dtype=dl.float64, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = dl.tensor(np.full(4, 0.5), dtype=dl.float64)
    opt.step()
    assert p.dtype == dl.float64 and opt.state[p]["exp_avg"].dtype == dl.float64
    assert opt.state[p]["step"].dtype == dl.float32
    np.testing.assert_allclose(_np(p), 0.9, rtol=1e-7)


def test_adagrad_state_exists_before_the_first_step_as_in_torch():
    # torch builds Adagrad's state in the constructor (so a fresh state_dict already has it)
    dps, tps = _dl_params(_init_arrays()), _torch_params(_init_arrays())
    dsd = optim.Adagrad(dps, initial_accumulator_value=0.5).state_dict()
    tsd = torch.optim.Adagrad(tps, initial_accumulator_value=0.5).state_dict()
    assert sorted(dsd["state"]) == sorted(tsd["state"]) == [0, 1, 2]
    for i in tsd["state"]:
        np.testing.assert_array_equal(_np(dsd["state"][i]["sum"]), _np(tsd["state"][i]["sum"]))
        assert float(dsd["state"][i]["step"]) == 0.0


@pytest.mark.parametrize(
    "name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"]
)
def test_inf_and_nan_gradients_spread_silently_like_torch(name):
    # NaN/inf in the state are values, as in torch; a NumPy RuntimeWarning from darklib is
    # an error in this suite (pyproject.toml), so a leak fails here
    params = []
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0, 3.0]))
        opt = getattr(lib.optim, name)([p], lr=0.1)
        for g in ([np.inf, np.nan, 1.0], [1.0, -np.inf, 1.0], [1.0, 1.0, 1.0]):
            p.grad = lib.tensor(g)
            opt.step()
        params.append(p.detach().numpy())
    np.testing.assert_allclose(params[0], params[1], rtol=1e-6)


def test_clip_grad_norm_of_an_infinite_gradient_like_torch():
    grads = []
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0]))
        p.grad = lib.tensor([np.inf, 1.0])
        total = lib.nn.utils.clip_grad_norm_([p], 1.0)
        grads.append((float(total), p.grad.numpy()))
    assert grads[0][0] == grads[1][0] == np.inf
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


_TENSOR_LR = [
    ("SGD", {"momentum": 0.9}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
    ("Adamax", {}),
    ("NAdam", {}),
    ("RAdam", {}),
    ("Adagrad", {}),
    ("Adadelta", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("ASGD", {}),
    ("Rprop", {}),
    ("Adafactor", {}),
]


def _tensor_hyper_run(lib, name, kw, dtype, betas=False):
    rs = np.random.default_rng(0)
    ps = [lib.tensor(rs.standard_normal(s).astype(dtype), requires_grad=True) for s in [(3, 4), ()]]
    extra = {"betas": (lib.tensor(0.8), lib.tensor(0.95))} if betas else {}
    opt = getattr(lib.optim, name)(ps, lr=lib.tensor(0.01), **extra, **kw)
    for t in range(4):
        for i, p in enumerate(ps):
            g = np.random.default_rng(100 * t + i).standard_normal(p.shape).astype(dtype)
            p.grad = lib.tensor(g)
        opt.step()
    return ps, opt


@pytest.mark.parametrize("name,kw", _TENSOR_LR)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tensor_lr_updates_in_place_like_torch(name, kw, dtype):
    # a 0-d Tensor lr (torch's default single-tensor path) works as its float32 value: the
    # parameters stay arrays (the update used to rebind them to Tensors) and follow torch
    dps, dopt = _tensor_hyper_run(dl, name, kw, dtype)
    tps, _ = _tensor_hyper_run(torch, name, kw, dtype)
    for d, t in zip(dps, tps):
        assert isinstance(d.array, np.ndarray) and d.array.dtype == dtype
        np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=2e-6, atol=1e-7)
    assert isinstance(dopt.param_groups[0]["lr"], Tensor)  # the group keeps its Tensor
    dps[0].grad = dl.ones(3, 4, dtype=dps[0].dtype)  # and the parameter still takes grads
    assert dps[0].grad.shape == (3, 4)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam", "RAdam", "Adamax"])
def test_tensor_betas_like_torch(name):
    dps, _ = _tensor_hyper_run(dl, name, {"weight_decay": 0.1}, np.float64, betas=True)
    tps, _ = _tensor_hyper_run(torch, name, {"weight_decay": 0.1}, np.float64, betas=True)
    for d, t in zip(dps, tps):
        assert isinstance(d.array, np.ndarray)
        # torch computes the bias corrections of float32 betas with float32 kernels
        np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", [n for n, _ in _TENSOR_LR] + ["LBFGS"])
def test_tensor_lr_must_have_one_element(name):
    for lib in (dl, torch):
        p = lib.zeros(2, requires_grad=True)
        with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
            getattr(lib.optim, name)([p], lr=lib.tensor([0.01, 0.02]))
        getattr(lib.optim, name)([p], lr=lib.tensor([0.01]))  # one element is fine


def test_tensor_lr_and_fused_foreach_checks_like_torch():
    for lib in (dl, torch):
        p = lib.zeros(2, requires_grad=True)
        for name in ("Adam", "AdamW"):
            cls = getattr(lib.optim, name)
            with pytest.raises(ValueError, match="lr as a Tensor is not supported for capturable"):
                cls([p], lr=lib.tensor(0.01), foreach=True)
            with pytest.raises(ValueError, match=r"betas\[0\] as a Tensor is not supported"):
                cls([p], betas=(lib.tensor(0.9), lib.tensor(0.99)), foreach=True)
            with pytest.raises(ValueError, match="both floats or both Tensors"):
                cls([p], betas=(0.9, lib.tensor(0.99)))
        for name in ("SGD", "Adam", "AdamW", "Adagrad"):
            with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True`"):
                getattr(lib.optim, name)([p], lr=0.1, fused=True, foreach=True)
        for name in ("SGD", "Adagrad", "RMSprop", "NAdam"):  # these take it with foreach
            getattr(lib.optim, name)([p], lr=lib.tensor(0.01), foreach=True)


def test_adagrad_sums_start_at_the_constructor_value_like_torch():
    # torch's quirk: a group's own initial_accumulator_value (in the constructor's groups or
    # in add_param_group) is ignored; the sums start at the constructor's value
    out = []
    for lib in (dl, torch):
        p, q, r = (lib.ones(2, requires_grad=True) for _ in range(3))
        opt = lib.optim.Adagrad(
            [{"params": [p], "initial_accumulator_value": 1.0}, {"params": [q]}],
            lr=0.1,
            initial_accumulator_value=0.5,
        )
        opt.add_param_group({"params": [r], "initial_accumulator_value": 2.0})
        for _ in range(3):
            for x in (p, q, r):
                x.grad = lib.ones(2)
            opt.step()
        out.append([np.asarray(opt.state[x]["sum"].numpy()) for x in (p, q, r)])
        out.append([x.detach().numpy() for x in (p, q, r)])
    for a, b in zip(out[0] + out[1], out[2] + out[3]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_array_equal(out[0][0], [3.5, 3.5])


@pytest.mark.parametrize(
    "make",
    [
        lambda s, o: s.StepLR(o, 1, 0.5),
        lambda s, o: s.CosineAnnealingLR(o, T_max=5),
        lambda s, o: s.OneCycleLR(o, max_lr=1.0, total_steps=10),
    ],
)
def test_scheduler_fills_a_tensor_lr_in_place_like_torch(make):
    out = []
    for lib in (dl, torch):
        p = lib.zeros(2, requires_grad=True)
        opt = lib.optim.SGD([p], lr=lib.tensor(0.1), momentum=0.9)
        lr0 = opt.param_groups[0]["lr"]
        sched = make(lib.optim.lr_scheduler, opt)
        for _ in range(3):
            p.grad = lib.ones(2)
            opt.step()
            sched.step()
        assert opt.param_groups[0]["lr"] is lr0  # the same tensor, filled
        assert opt.param_groups[0]["initial_lr"] is not lr0  # a copy, not an alias
        last = sched.get_last_lr()[0]
        assert last is not lr0
        out.append((float(lr0), float(last), p.detach().numpy()))
    assert out[0][:2] == out[1][:2]
    np.testing.assert_allclose(out[0][2], out[1][2], rtol=1e-6)


def test_plateau_scheduler_fills_a_tensor_lr_in_place_like_torch():
    lrs = []
    for lib in (dl, torch):
        opt = lib.optim.Adam([lib.zeros(2, requires_grad=True)], lr=lib.tensor(0.1))
        lr0 = opt.param_groups[0]["lr"]
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
        sched.step(1.0)
        sched.step(2.0)
        assert opt.param_groups[0]["lr"] is lr0
        lrs.append(float(lr0))
    assert lrs[0] == lrs[1]


def test_stateless_step_of_a_0d_parameter_keeps_no_state_entry():
    """As torch: plain SGD keeps no state, so a saved checkpoint holds none (a 0-d
    parameter's update left an empty entry)."""
    p = dl.zeros((), requires_grad=True)
    opt = dl.optim.SGD([p], lr=0.1)
    p.grad = dl.ones(())
    opt.step()
    assert opt.state_dict()["state"] == {}
    assert float(p) == pytest.approx(-0.1)
