"""Review of darklib.optim against torch 2.13 (session 12): param-group handling, bad-argument
errors, capturable on the CPU, scheduler warnings and checks, SWALR's state and Muon."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as t_sched
from torch.optim import optimizer as t_optimizer
from torch.optim import swa_utils as t_swa

import darklib as dl
from darklib.optim import lr_scheduler as dl_sched
from darklib.optim import optimizer as dl_optimizer
from darklib.optim import swa_utils as dl_swa


def _error(fn):
    """The exception ``fn()`` raises (it must raise)."""
    with pytest.raises(Exception) as info:
        fn()
    return info.value


def _same_error(t_fn, d_fn, exact=True):
    """torch's and darklib's calls raise the same kind of exception, with the same message
    (or, ``exact=False``, darklib's starting with torch's)."""
    t_err, d_err = _error(t_fn), _error(d_fn)
    assert isinstance(d_err, type(t_err)), (type(t_err), type(d_err))
    t_msg, d_msg = str(t_err).replace("torch", "darklib"), str(d_err)
    assert d_msg == t_msg if exact else d_msg.startswith(t_msg), (t_msg, d_msg)


# ---------------------------------------------------------------------------- param groups


def test_a_param_group_dict_becomes_the_group_like_torch():
    for lib in (torch, dl):
        first = {"params": [lib.ones(2, requires_grad=True)]}
        later = {"params": lib.ones(3, requires_grad=True), "momentum": 0.5}
        opt = lib.optim.SGD([first], lr=0.1)
        opt.add_param_group(later)
        assert opt.param_groups[0] is first and opt.param_groups[1] is later
        assert first["lr"] == later["lr"] == 0.1 and later["momentum"] == 0.5
        assert isinstance(later["params"], list) and len(later["params"]) == 1
        later["lr"] = 0.01  # the user's dict drives the optimizer
        assert opt.param_groups[1]["lr"] == 0.01


def test_a_non_leaf_that_retains_its_grad_is_optimized_like_torch():
    results = []
    for lib in (torch, dl):
        base = lib.tensor([1.0, -2.0], requires_grad=True)
        x = base * 3
        x.retain_grad()
        opt = lib.optim.SGD([x], lr=0.1)
        (x**2).sum().backward()
        opt.step()
        results.append(x.detach().numpy().copy())
        y = base * 2
        with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
            lib.optim.SGD([y], lr=0.1)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


def test_a_required_hyper_parameter_is_checked_like_torch():
    def build(lib, module, groups):
        class Plain(lib.optim.Optimizer):
            def __init__(self, params, lr=module.required):
                super().__init__(params, {"lr": lr})

        return Plain(groups)

    for lib, module in ((torch, t_optimizer), (dl, dl_optimizer)):
        p, q = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
        with pytest.raises(ValueError, match="didn't specify a value of required optimization"):
            build(lib, module, [p])
        opt = build(lib, module, [{"params": [p], "lr": 0.5}])
        assert opt.param_groups[0]["lr"] == 0.5
        with pytest.raises(ValueError, match="required optimization parameter lr"):
            opt.add_param_group({"params": [q]})


def test_bad_params_are_reported_like_torch():
    def both(make):
        _same_error(lambda: make(torch), lambda: make(dl))

    both(lambda lib: lib.optim.SGD({"params": [lib.ones(1, requires_grad=True)]}, lr=0.1))
    both(lambda lib: lib.optim.SGD([1.0], lr=0.1))
    both(lambda lib: lib.optim.SGD(lib.ones(2, requires_grad=True), lr=0.1))
    both(
        lambda lib: lib.optim.SGD(
            [{"params": [lib.ones(1, requires_grad=True)]}, lib.nn.Parameter(lib.ones(1))], lr=0.1
        )
    )
    # a group without "params": torch's KeyError (darklib's says what is missing)
    for lib in (torch, dl):
        with pytest.raises(KeyError, match="params"):
            lib.optim.SGD([{"lr": 0.1}], lr=0.1)


def test_load_state_dict_without_an_entry_raises_a_key_error_like_torch():
    for lib in (torch, dl):
        opt = lib.optim.Adam([lib.ones(2, requires_grad=True)], lr=0.1)
        saved = opt.state_dict()
        with pytest.raises(KeyError, match="param_groups"):
            opt.load_state_dict({"state": saved["state"]})
        with pytest.raises(KeyError, match="state"):
            opt.load_state_dict({"param_groups": saved["param_groups"]})


# ---------------------------------------------------------------------------- capturable

CAPTURABLE = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adadelta", "RMSprop", "Rprop", "ASGD"]


@pytest.mark.parametrize("name", CAPTURABLE)
def test_capturable_on_the_cpu_is_refused_at_step_like_torch(name):
    for lib in (torch, dl):
        p = lib.nn.Parameter(lib.ones(3))
        opt = getattr(lib.optim, name)([p], lr=0.1, capturable=True)  # building is fine
        opt.step()  # and so is a step without gradients
        (p * 2).sum().backward()
        with pytest.raises(AssertionError, match=re.escape("If capturable=True, params")):
            opt.step()
    # the group option alone: a capturable=False group steps, its twin refuses
    p, q = dl.nn.Parameter(dl.ones(2)), dl.nn.Parameter(dl.ones(2))
    opt = getattr(dl.optim, name)([{"params": [p]}, {"params": [q], "capturable": True}], lr=0.1)
    p.grad = dl.ones(2)
    opt.step()
    assert not np.array_equal(p.detach().numpy(), np.ones(2))
    q.grad = dl.ones(2)
    with pytest.raises(AssertionError, match="supported devices"):
        opt.step()


# ---------------------------------------------------------------------------- lr schedulers


def _sgd(lib, groups=1):
    return lib.optim.SGD(
        [{"params": [lib.ones(1, requires_grad=True)]} for _ in range(groups)], lr=0.1
    )


def _first_warnings(lib, prepare):
    opt = _sgd(lib)
    sched = lib.optim.lr_scheduler.StepLR(opt, 2)
    prepare(opt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sched.step()
    return [str(w.message) for w in caught]


def test_scheduler_warns_when_the_optimizer_step_was_replaced_like_torch():
    def replace(opt):
        opt.step = lambda *args, **kwargs: None
        opt.step()

    for lib in (torch, dl):
        msgs = _first_warnings(lib, replace)
        assert len(msgs) == 1
        assert msgs[0].startswith("Seems like `optimizer.step()` has been overridden")
        msgs = _first_warnings(lib, lambda opt: None)
        assert len(msgs) == 1
        assert msgs[0].startswith(
            "Detected call of `lr_scheduler.step()` before `optimizer.step()`."
        )
        assert _first_warnings(lib, lambda opt: opt.step()) == []


def test_a_scheduler_giving_the_wrong_number_of_lrs_is_refused_like_torch():
    def build(lib, sched_module):
        class OneLr(sched_module.LRScheduler):
            def get_lr(self):
                return [0.5]

        return OneLr(_sgd(lib, groups=2))

    _same_error(lambda: build(torch, t_sched), lambda: build(dl, dl_sched))


def test_resuming_without_initial_lr_message_matches_torch():
    _same_error(
        lambda: t_sched.StepLR(_sgd(torch), 2, last_epoch=3),
        lambda: dl_sched.StepLR(_sgd(dl), 2, last_epoch=3),
    )


def test_plateau_with_a_min_lr_list_and_a_new_group_message_matches_torch():
    def run(lib):
        opt = _sgd(lib, groups=2)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
        opt.add_param_group({"params": [lib.ones(1, requires_grad=True)], "lr": 1.0})
        sched.step(1.0)
        sched.step(2.0)

    _same_error(lambda: run(torch), lambda: run(dl))


# ---------------------------------------------------------------------------- SWALR


def test_swalr_state_dict_has_torch_s_keys_and_loads_torch_s():
    def build(lib, swa_module, strategy="linear"):
        opt = lib.optim.SGD([lib.ones(1, requires_grad=True)], lr=1.0)
        return opt, swa_module.SWALR(opt, 0.1, anneal_epochs=5, anneal_strategy=strategy)

    t_opt, t_swalr = build(torch, t_swa)
    d_opt, d_swalr = build(dl, dl_swa)
    for _ in range(2):
        t_opt.step(), t_swalr.step(), d_opt.step(), d_swalr.step()
    t_state, d_state = t_swalr.state_dict(), d_swalr.state_dict()
    assert set(t_state) <= set(d_state)
    assert d_state["_anneal_strategy"] == t_state["_anneal_strategy"] == "linear"
    # torch's state dict into a cosine darklib SWALR: it becomes linear, and steps on alike
    d_opt2, resumed = build(dl, dl_swa, "cos")
    d_opt2.param_groups[0]["lr"] = d_opt.param_groups[0]["lr"]
    resumed.load_state_dict(t_state)
    assert resumed.anneal_func is d_swalr.anneal_func
    for _ in range(3):
        t_opt.step(), t_swalr.step(), d_opt2.step(), resumed.step()
        assert resumed.get_last_lr() == pytest.approx(t_swalr.get_last_lr(), rel=1e-12)
    # and darklib's into torch's
    _, t_resumed = build(torch, t_swa, "cos")
    t_resumed.load_state_dict(d_swalr.state_dict())
    assert t_resumed.anneal_func is t_swa.SWALR._linear_anneal
    _same_error(lambda: build(torch, t_swa, "step"), lambda: build(dl, dl_swa, "step"), exact=True)


# ---------------------------------------------------------------------------- Muon

MUON_OPTIONS = [
    {},
    {"lr": 0.02, "nesterov": False, "weight_decay": 0.0},
    {"lr": 0.05, "momentum": 0.8, "adjust_lr_fn": "match_rms_adamw"},
    {"lr": 0.05, "ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5), "adjust_lr_fn": "original"},
]


def _muon_run(lib, kwargs, arrays, steps):
    params = [lib.tensor(a, requires_grad=True) for a in arrays]
    opt = lib.optim.Muon(params, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(
            ((p - 0.3) ** 2).sum() * (i + 1) + (p * 3).sin().sum() for i, p in enumerate(params)
        )
        loss.backward()
        opt.step()
    return params, opt


@pytest.mark.parametrize("kwargs", MUON_OPTIONS)
def test_muon_follows_torch(kwargs):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((6, 4), (3, 9), (5, 5))]
    t_params, t_opt = _muon_run(torch, kwargs, arrays, steps=8)
    d_params, d_opt = _muon_run(dl, kwargs, arrays, steps=8)
    for tp, dp in zip(t_params, d_params):
        np.testing.assert_allclose(dp.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            d_opt.state[dp]["momentum_buffer"].numpy(),
            t_opt.state[tp]["momentum_buffer"].numpy(),
            rtol=1e-5,
            atol=1e-6,
        )
    t_sd, d_sd = t_opt.state_dict(), d_opt.state_dict()
    assert d_sd["param_groups"] == t_sd["param_groups"]
    assert {k: list(v) for k, v in d_sd["state"].items()} == {
        k: list(v) for k, v in t_sd["state"].items()
    }


@pytest.mark.parametrize("shape", [(16, 8), (5, 12), (7, 7)])
def test_muon_orthogonalises_in_bfloat16_like_torch(shape):
    from torch.optim._muon import _zeropower_via_newtonschulz

    from darklib.optim.muon import _orthogonalize

    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    coefficients = (3.4445, -4.7750, 2.0315)
    expected = _zeropower_via_newtonschulz(torch.tensor(g), coefficients, 5, 1e-7)
    got = _orthogonalize(g, coefficients, 5, 1e-7)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, expected.float().numpy())
    assert np.all(got.view(np.uint32) & 0xFFFF == 0)  # bfloat16's 8 significant bits


def test_muon_errors_match_torch():
    def build(lib, shape=(2, 2), **kwargs):
        return lib.optim.Muon([lib.ones(*shape, requires_grad=True)], **kwargs)

    for kwargs in (
        {"lr": -1.0},
        {"momentum": -0.5},
        {"weight_decay": -1.0},
        {"adjust_lr_fn": "cubic"},
        {"shape": (3,)},
    ):
        _same_error(lambda kw=kwargs: build(torch, **kw), lambda kw=kwargs: build(dl, **kw))
    for lib in (torch, dl):
        with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
            build(lib, lr=lib.tensor([0.1, 0.2]))

    def step(lib, **kwargs):
        opt = build(lib, **kwargs)
        p = opt.param_groups[0]["params"][0]
        (p * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        opt.step()

    for kwargs in ({"ns_steps": 100}, {"ns_coefficients": (1.0, 2.0)}):
        _same_error(lambda kw=kwargs: step(torch, **kw), lambda kw=kwargs: step(dl, **kw))


def test_muon_with_a_tensor_lr_and_a_scheduler_follows_torch():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    results = []
    for lib in (torch, dl):
        p = lib.tensor(a, requires_grad=True)
        opt = lib.optim.Muon([p], lr=lib.tensor(0.05))
        sched = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
        for _ in range(6):
            opt.zero_grad()
            (p**3).sum().backward()
            opt.step()
            sched.step()
        results.append((p.detach().numpy().copy(), float(opt.param_groups[0]["lr"])))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-6)
