"""Fuzzing darklib's training API against torch: nn.Module mechanics, containers, init,
optimizers, LR schedulers, nn.utils, serialization and the data utilities.

Tests of behaviour that matches torch are normal tests. Tests that fail because of a darklib
bug are marked ``xfail(strict=True, reason="T<n>: ...")`` with the id of the finding in the
review notes, so this file passes now and flags each fix.
"""

from __future__ import annotations

import collections
import copy
import functools
import io
import json
import math
import random
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import safetensors.numpy as stnp
import torch

import darklib as dl
from darklib.serialization import SerializationError
from darklib.tensor import Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.detach().cpu().numpy())


def _norm(x):
    """A comparable summary of a (nested) darklib or torch result."""
    if isinstance(x, Tensor | torch.Tensor):
        return ("T", str(x.dtype).split(".")[-1], tuple(x.shape), _np(x).tolist())
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return (type(x).__name__, [_norm(v) for v in x])
    return x


def _brief(fn):
    """Report a failure as one line: formatting full tracebacks of the expected failures
    would cost seconds (pytest re-parses every source file in them)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            pytest.fail(f"{type(e).__name__}: {e}"[:3000], pytrace=False)

    return wrapper


def _xfail(reason: str):
    """A known darklib bug: ``reason`` starts with the finding's id ("T<n>: ...")."""
    mark = pytest.mark.xfail(strict=True, reason=reason)
    return lambda fn: mark(_brief(fn))


# =============================================================================== nn.Module
def _tree(lib):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 3)
            self.b = self.a  # a shared submodule
            self.seq = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.ReLU())
            self.seq2 = self.seq
            self.w = nn.Parameter(lib.ones(2))
            self.register_buffer("np_buf", lib.ones(2), persistent=False)
            self.register_buffer("p_buf", lib.zeros(2))
            self.register_buffer("none_buf", None)
            self.register_parameter("none_p", None)
            self.empty = None

    return Net()


@pytest.mark.parametrize("method", ["named_modules", "named_parameters", "named_buffers"])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"prefix": "pre"},
        {"remove_duplicate": False},
        {"prefix": "x.y", "remove_duplicate": False},
    ],
)
def test_named_members_prefix_and_duplicates_like_torch(method, kw):
    d, t = _tree(dl), _tree(torch)
    assert [n for n, _ in getattr(d, method)(**kw)] == [n for n, _ in getattr(t, method)(**kw)]


def test_children_recurse_false_and_state_dict_keys_like_torch():
    d, t = _tree(dl), _tree(torch)
    assert [n for n, _ in d.named_children()] == [n for n, _ in t.named_children()]
    assert [n for n, _ in d.named_parameters(recurse=False)] == [
        n for n, _ in t.named_parameters(recurse=False)
    ]
    assert [n for n, _ in d.named_buffers(recurse=False)] == [
        n for n, _ in t.named_buffers(recurse=False)
    ]
    assert list(d.state_dict()) == list(t.state_dict())
    assert list(d.state_dict(prefix="m.")) == list(t.state_dict(prefix="m."))
    assert len(list(d.modules())) == len(list(t.modules()))
    assert repr(d) == repr(t)


def test_shared_parameters_are_one_parameter_for_the_optimizer():
    d = _tree(dl)
    ps = list(d.parameters())
    assert len(ps) == len({id(p) for p in ps}) == len(list(_tree(torch).parameters()))
    assert d.b.weight is d.a.weight


def test_load_state_dict_non_strict_reports_the_same_keys_as_torch():
    def run(lib):
        nn = lib.nn
        m = nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.Linear(2, 2, bias=False)))
        sd = {
            "zz": lib.zeros(1),
            "b.extra": lib.zeros(1),
            "a.weight": lib.full((2, 2), 3.0),
            "a.bias.x": lib.zeros(1),
            "b.bias": lib.zeros(2),
            "c.w": lib.zeros(1),
        }
        r = m.load_state_dict(sd, strict=False)
        return r.missing_keys, r.unexpected_keys, _np(m.a.weight).tolist()

    dm, du, dw = run(dl)
    tm, tu, tw = run(torch)
    assert dm == tm and dw == tw
    assert sorted(du) == sorted(tu)


def test_load_state_dict_unexpected_keys_order_like_torch():
    def run(lib):
        nn = lib.nn
        m = nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.Linear(2, 2)))
        sd = {"b.extra": lib.zeros(1), "a.extra": lib.zeros(1), "zz": lib.zeros(1)}
        return m.load_state_dict(sd, strict=False).unexpected_keys

    assert run(dl) == run(torch)


def test_load_state_dict_shape_mismatch_raises_even_when_not_strict():
    m = dl.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight"):
        m.load_state_dict({"weight": dl.zeros(3, 2)}, strict=False)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        m.load_state_dict({"weight": dl.zeros(2, 2)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "foo"'):
        m.load_state_dict({**m.state_dict(), "foo": dl.zeros(1)})


def test_load_state_dict_assign_takes_the_tensors_and_their_dtype():
    for lib in (dl, torch):
        m = lib.nn.Linear(2, 2)
        w = lib.ones(2, 2, dtype=lib.float64)
        m.load_state_dict({"weight": w, "bias": lib.ones(2)}, assign=True)
        assert type(m.weight).__name__ == "Parameter"
        assert m.weight.dtype == lib.float64 and m.weight.requires_grad


def test_non_persistent_buffer_key_is_unexpected_and_not_loaded():
    for lib in (dl, torch):
        m = lib.nn.Module()
        m.register_buffer("b", lib.ones(1), persistent=False)
        m.b = lib.zeros(2)  # reassigning keeps it non-persistent
        assert list(m.state_dict()) == []
        r = m.load_state_dict({"b": lib.full((2,), 5.0)}, strict=False)
        assert r.unexpected_keys == ["b"] and _np(m.b).tolist() == [0.0, 0.0]


def test_cloned_state_dict_snapshot_restores_a_batchnorm_model():
    m = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.BatchNorm1d(4))
    snap = {k: v.clone() for k, v in m.state_dict().items()}
    for _ in range(2):
        m(dl.randn(5, 3))
    m.load_state_dict(snap)
    assert int(m[1].num_batches_tracked) == 0


def test_clone_of_a_0d_tensor_keeps_its_shape():
    for x in (dl.tensor(3.0), dl.tensor(3), dl.nn.Parameter(dl.tensor(1.5))):
        assert tuple(x.clone().shape) == ()


def test_apply_zero_grad_requires_grad_and_train_eval_like_torch():
    def run(lib):
        nn = lib.nn
        m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.Tanh()))
        order = []
        assert m.apply(lambda x: order.append(type(x).__name__)) is m
        m(lib.ones(1, 2)).sum().backward()
        m.zero_grad(set_to_none=False)
        zeroed = _np(m[0].weight.grad).tolist()
        m.zero_grad()
        none = m[0].weight.grad is None
        m.requires_grad_(False)
        flags = [p.requires_grad for p in m.parameters()]
        assert m.eval() is m
        ev = [x.training for x in m.modules()]
        m.train()
        tr = [x.training for x in m.modules()]
        return order, zeroed, none, flags, ev, tr

    assert run(dl) == run(torch)
    with pytest.raises(ValueError, match="boolean"):
        dl.nn.Linear(1, 1).train(1)


def test_forward_hooks_order_kwargs_handles_and_always_call_like_torch():
    def run(lib):
        m = lib.nn.Linear(2, 2, bias=False)
        lib.nn.init.ones_(m.weight)
        log = []
        h1 = m.register_forward_pre_hook(lambda mod, a: log.append("pre1"))
        h2 = m.register_forward_pre_hook(lambda mod, a: log.append("pre2"), prepend=True)
        m.register_forward_pre_hook(lambda mod, a: (a[0] * 2,))
        m.register_forward_hook(lambda mod, a, o: o + 1)
        h4 = m.register_forward_hook(
            lambda mod, a, k, o: log.append(("post", sorted(k))), with_kwargs=True
        )
        m.register_forward_hook(lambda mod, a, o: log.append(o is None), always_call=True)
        out = _np(m(lib.ones(1, 2))).tolist()
        h2.remove()
        h4.remove()
        h1.remove()
        h1.remove()  # removing twice is harmless
        with m.register_forward_hook(lambda *a: log.append("ctx")):
            m(lib.ones(1, 2))
        m(lib.ones(1, 2))
        try:
            m(lib.ones(3))
        except Exception as e:  # the always_call hook still runs, with output None
            log.append(type(e).__name__)
        return out, log

    assert run(dl) == run(torch)


def test_forward_pre_hook_with_kwargs_replaces_kwargs():
    def run(lib):
        class M(lib.nn.Module):
            def forward(self, x, scale=1.0):
                return x * scale

        m = M()
        m.register_forward_pre_hook(lambda mod, a, k: (a, {"scale": 3.0}), with_kwargs=True)
        return _np(m(lib.ones(2), scale=2.0)).tolist()

    assert run(dl) == run(torch) == [3.0, 3.0]


def test_deepcopy_keeps_sharing_drops_grads_and_is_independent():
    for lib in (dl, torch):
        a = lib.nn.Linear(2, 2)
        m = lib.nn.Sequential(a, a, lib.nn.BatchNorm1d(2))
        a.weight.grad = lib.ones(2, 2)
        m2 = copy.deepcopy(m)
        assert m2[0] is m2[1] and m2[0] is not a
        assert m2[0].weight.grad is None and type(m2[0].weight).__name__ == "Parameter"
        assert len(list(m2.parameters())) == 4
        with torch.no_grad() if lib is torch else dl.no_grad():
            m2[0].weight.add_(1)
        assert not np.allclose(_np(m2[0].weight), _np(a.weight))


def test_dtype_moves_cast_float_buffers_only_like_torch():
    def run(lib):
        m = _tree(lib)
        m.register_buffer("i32", lib.ones(1, dtype=lib.int32))
        m.register_buffer("flag", lib.ones(1, dtype=lib.bool), persistent=False)
        out = []
        for step in ("double", "half", "float"):
            getattr(m, step)()
            out.append([str(b.dtype).split(".")[-1] for b in m.buffers()])
            out.append([str(p.dtype).split(".")[-1] for p in m.parameters()])
        m.to(lib.float64)
        out.append([str(b.dtype).split(".")[-1] for b in m.buffers()])
        m.to(device="cpu", dtype=lib.float16)
        out.append([str(v.dtype).split(".")[-1] for v in m.state_dict().values()])
        return out

    assert run(dl) == run(torch)
    with pytest.raises(TypeError, match="floating point"):
        dl.nn.Linear(1, 1).to(dl.int32)


def test_module_attribute_rules_like_torch():
    for lib in (dl, torch):
        m = lib.nn.Module()
        m.x = 3
        with pytest.raises(KeyError, match="already exists"):
            m.register_buffer("x", lib.ones(1))
        with pytest.raises(KeyError, match="name can"):
            m.register_buffer("a.b", lib.ones(1))
        with pytest.raises(TypeError, match="cannot assign"):
            m.register_parameter("p", lib.ones(1))
        lin = lib.nn.Linear(1, 1)
        with pytest.raises(TypeError, match="cannot assign"):
            lin.weight = lib.ones(1, 1)
        m.a = lib.nn.Linear(1, 1)
        m.a = lib.nn.Parameter(lib.ones(1))  # a module slot can become a parameter
        assert [n for n, _ in m.named_parameters()] == ["a"]
        assert [n for n, _ in m.named_children()] == []
        with pytest.raises(RuntimeError, match=r"floating.point"):
            lib.nn.Parameter(lib.zeros(2, dtype=lib.int64))


def test_sequential_slicing_indexing_and_editing_like_torch():
    def run(lib):
        nn = lib.nn
        s = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.ELU())
        out = [list(s[1:3]._modules), type(s[1:3]).__name__, list(s[::-1]._modules)]
        out.append(type(s[-1]).__name__)
        s.append(nn.GELU())
        s.insert(0, nn.Identity())
        s.insert(-1, nn.SiLU())
        out.append([type(x).__name__ for x in s])
        del s[1]
        out.append(list(s._modules))
        out.append(type(s.pop(0)).__name__)
        s[-1] = nn.Hardtanh()
        out.append(repr(s))
        s.extend([nn.Tanh()])
        out.append(len(s))
        out.append(len(s + nn.Sequential(nn.ReLU())))
        named = nn.Sequential(OrderedDict(x=nn.ReLU(), y=nn.Tanh()))
        out.append(list(named[1:]._modules))
        return out

    assert run(dl) == run(torch)
    with pytest.raises(IndexError):
        dl.nn.Sequential(dl.nn.ReLU())[3]
    with pytest.raises(TypeError, match="not a Module"):
        dl.nn.Sequential().append(3)


def test_sequential_repetition_and_inplace_add():
    s = dl.nn.Sequential(dl.nn.ReLU(), dl.nn.Tanh())
    assert len(s * 2) == 4 and len(2 * s) == 4
    s += dl.nn.Sequential(dl.nn.ELU())
    assert len(s) == 3


def test_module_list_and_dict_operations_like_torch():
    def run(lib):
        nn = lib.nn
        lst = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        lst.insert(1, nn.Sigmoid())
        lst += [nn.ELU()]
        out = [[type(x).__name__ for x in lst], type(lst[-1]).__name__, type(lst[1:]).__name__]
        lst.append(nn.GELU())
        del lst[0]
        out += [list(lst._modules), type(lst.pop(1)).__name__]
        out.append(list((lst + nn.ModuleList([nn.ReLU()]))._modules))
        d = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Tanh()})
        d.update([("c", nn.ELU())])
        d["d"] = nn.GELU()
        out += [list(d.keys()), "a" in d, len(d), type(d.pop("a")).__name__, list(d)]
        out.append([type(v).__name__ for v in d.values()])
        d.clear()
        out.append(len(d))
        return out

    assert run(dl) == run(torch)
    with pytest.raises(TypeError, match="iterable"):
        dl.nn.ModuleList().extend(dl.nn.ReLU())
    with pytest.raises(KeyError):
        dl.nn.ModuleDict()["x"]


def test_parameter_list_registers_tensors_as_parameters():
    for lib in (dl, torch):
        lst = lib.nn.ParameterList([lib.ones(2), lib.nn.Parameter(lib.zeros(3))])
        lst.append(lib.ones(1))
        assert len(lst) == 3
        assert [type(p).__name__ for p in lst] == ["Parameter"] * 3
        assert [n for n, _ in lst.named_parameters()] == ["0", "1", "2"]


def test_parameter_dict_from_plain_dict_orders_like_torch():
    def run(lib):
        d = lib.nn.ParameterDict({"w": lib.nn.Parameter(lib.ones(2)), "b": lib.zeros(3)})
        return [n for n, _ in d.named_parameters()], list(d.keys())

    assert run(dl) == run(torch)


def test_parameter_dict_dict_methods():
    d = dl.nn.ParameterDict({"a": dl.ones(2)})
    assert d.get("missing") is None
    assert tuple(d.pop("a").shape) == (2,)
    d.setdefault("b", dl.nn.Parameter(dl.ones(1)))
    assert len(d.copy()) == 1
    d.clear()
    assert len(d) == 0


# =============================================================================== optimizers
_SPACE = {
    "SGD": dict(
        lr=[0.01, 0.1],
        momentum=[0, 0.5, 0.9],
        dampening=[0, 0.3],
        weight_decay=[0, 0.1],
        nesterov=[False, True],
        maximize=[False, True],
    ),
    "Adam": dict(
        lr=[0.01, 0.1],
        betas=[(0.9, 0.999), (0.5, 0.6), (0.0, 0.9)],
        eps=[1e-8, 1e-3],
        weight_decay=[0, 0.1],
        amsgrad=[False, True],
        maximize=[False, True],
        decoupled_weight_decay=[False, True],
    ),
    "AdamW": dict(
        lr=[0.01, 0.1],
        betas=[(0.9, 0.999), (0.5, 0.6)],
        weight_decay=[0, 0.01, 0.5],
        amsgrad=[False, True],
        maximize=[False, True],
    ),
    "RMSprop": dict(
        lr=[0.01, 0.001],
        alpha=[0.99, 0.5],
        eps=[1e-8, 1e-2],
        weight_decay=[0, 0.1],
        momentum=[0, 0.5],
        centered=[False, True],
        maximize=[False, True],
    ),
    "Adagrad": dict(
        lr=[0.01, 0.1],
        lr_decay=[0, 0.5],
        weight_decay=[0, 0.1],
        initial_accumulator_value=[0, 0.5],
        eps=[1e-10, 1e-2],
        maximize=[False, True],
    ),
    "Adadelta": dict(
        lr=[1.0, 0.1],
        rho=[0.9, 0.0, 1.0],
        eps=[1e-6, 1e-2],
        weight_decay=[0, 0.1],
        maximize=[False, True],
    ),
    "Adamax": dict(
        lr=[0.002, 0.1],
        betas=[(0.9, 0.999), (0.5, 0.6)],
        eps=[1e-8, 1e-2],
        weight_decay=[0, 0.1],
        maximize=[False, True],
    ),
    "NAdam": dict(
        lr=[0.002, 0.1],
        betas=[(0.9, 0.999), (0.5, 0.6)],
        weight_decay=[0, 0.1],
        momentum_decay=[4e-3, 0.5, 0.0],
        decoupled_weight_decay=[False, True],
        maximize=[False, True],
    ),
    "RAdam": dict(
        lr=[0.001, 0.1],
        betas=[(0.9, 0.999), (0.5, 0.6), (0.9, 0.8)],
        weight_decay=[0, 0.1],
        decoupled_weight_decay=[False, True],
        maximize=[False, True],
    ),
}
_SHAPES = [(3, 2), (4,), (1,)]


def _random_config(seed: int):
    rng = random.Random(seed)
    name = list(_SPACE)[seed % len(_SPACE)]
    kw = {k: rng.choice(v) for k, v in _SPACE[name].items()}
    g2 = {k: rng.choice(v) for k, v in _SPACE[name].items() if rng.random() < 0.4}
    # torch reads initial_accumulator_value from the constructor only (see the notes)
    g2.pop("initial_accumulator_value", None)
    if name == "SGD":
        for g in (kw, {**kw, **g2}):
            if g["nesterov"] and (g["momentum"] == 0 or g["dampening"] != 0):
                kw["nesterov"] = g2["nesterov"] = False
    return name, kw, g2, rng.choice([np.float32, np.float64]), rng.choice([None, 4, 9])


@pytest.mark.parametrize("seed", range(36))
def test_random_optimizer_configs_track_torch_with_groups_none_grads_and_reload(seed):
    name, kw, g2, dtype, reload_at = _random_config(seed)
    r = np.random.default_rng(seed)
    init = [r.standard_normal(s).astype(dtype) for s in _SHAPES]
    dps = [dl.nn.Parameter(dl.tensor(a.copy())) for a in init]
    tps = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]

    def make(lib, ps):
        return getattr(lib.optim, name)([{"params": ps[:2]}, {"params": ps[2:], **g2}], **kw)

    dopt, topt = make(dl, dps), make(torch, tps)
    for step in range(14):
        for i, (dp, tp) in enumerate(zip(dps, tps)):
            if r.random() < 0.15:  # a parameter without a gradient this step is skipped
                dp.grad = tp.grad = None
            else:
                g = r.standard_normal(_SHAPES[i]).astype(dtype)
                dp.grad, tp.grad = dl.tensor(g), torch.tensor(g)
        dopt.step()
        topt.step()
        if step == reload_at:  # resume from a saved state dict, through a file
            buf = io.BytesIO()
            dl.save(dopt.state_dict(), buf)
            buf.seek(0)
            dopt = make(dl, dps)
            dopt.load_state_dict(dl.load(buf))
        for i, (dp, tp) in enumerate(zip(dps, tps)):
            np.testing.assert_allclose(
                _np(dp),
                _np(tp),
                rtol=1e-4,
                atol=1e-5,
                err_msg=f"{name} {kw} {g2} step {step} param {i}",
            )
    for dp, tp in zip(dps, tps):
        assert set(dopt.state[dp]) == set(topt.state[tp])


_ZERO_D_CASES = [
    ("SGD", {"momentum": 0.9}),
    ("Adadelta", {}),
    ("SGD", {"weight_decay": 0.1}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {}),
    ("AdamW", {}),
    ("RMSprop", {"momentum": 0.5}),
    ("Adagrad", {}),
    ("Adadelta", {"weight_decay": 0.1}),
    ("Adamax", {}),
    ("NAdam", {}),
    ("RAdam", {}),
]


@pytest.mark.parametrize("name,kw", _ZERO_D_CASES)
@_brief
def test_scalar_0d_parameter_is_optimized_like_torch(name, kw):
    """A learnable scalar (a temperature, a logit scale) is a 0-d parameter."""
    dp, tp = dl.nn.Parameter(dl.tensor(1.5)), torch.nn.Parameter(torch.tensor(1.5))
    dopt = getattr(dl.optim, name)([dp], lr=0.1, **kw)
    topt = getattr(torch.optim, name)([tp], lr=0.1, **kw)
    for g in (0.3, -0.7, 1.1):
        dp.grad, tp.grad = dl.tensor(g), torch.tensor(g)
        dopt.step()
        topt.step()
    assert tuple(dp.shape) == ()
    np.testing.assert_allclose(_np(dp), _np(tp), rtol=1e-5)


def test_add_param_group_state_dict_layout_and_named_parameters_like_torch():
    def run(lib):
        m = lib.nn.Linear(2, 2)
        extra = lib.nn.Parameter(lib.ones(3))
        opt = lib.optim.Adam(m.named_parameters(), lr=0.1)
        opt.add_param_group({"params": [("extra", extra)], "lr": 0.01, "amsgrad": True})
        m(lib.ones(1, 2)).sum().backward()
        extra.grad = lib.ones(3)
        opt.step()
        sd = opt.state_dict()
        groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
        return groups, {k: sorted(v) for k, v in sd["state"].items()}

    assert run(dl) == run(torch)
    p = dl.nn.Parameter(dl.ones(2))
    opt = dl.optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})


def test_optimizer_zero_grad_and_duplicate_warning_like_torch():
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.ones(3))
        with pytest.warns(UserWarning, match="duplicate"):
            lib.optim.SGD([p, p], lr=0.1)
        opt = lib.optim.SGD([p], lr=0.1)
        p.grad = lib.ones(3)
        opt.zero_grad(set_to_none=False)
        assert _np(p.grad).tolist() == [0.0] * 3
        opt.zero_grad()
        assert p.grad is None


@_xfail(
    "T18: torch.optim.SparseAdam is missing from darklib.optim (darklib has no sparse gradients)"
)
def test_every_torch_optimizer_exists():
    missing = [
        n for n in ("Rprop", "ASGD", "LBFGS", "SparseAdam", "Adafactor") if not hasattr(dl.optim, n)
    ]
    assert missing == []


def test_optimizer_step_hooks():
    p = dl.nn.Parameter(dl.ones(2))
    opt = dl.optim.SGD([p], lr=0.1)
    log = []
    opt.register_step_pre_hook(lambda o, a, k: log.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: log.append("post"))
    p.grad = dl.ones(2)
    opt.step()
    assert log == ["pre", "post"]


# =============================================================================== schedulers
def _sched_pair(opt_name="SGD", **kw):
    out = []
    for lib in (dl, torch):
        groups = [
            {"params": [lib.nn.Parameter(lib.zeros(2))], "lr": 0.1},
            {"params": [lib.nn.Parameter(lib.zeros(2))], "lr": 0.03},
        ]
        out.append(getattr(lib.optim, opt_name)(groups, **kw))
    return out


def _random_scheduler(rng: random.Random):
    kind = rng.choice(
        [
            "Step",
            "Multi",
            "Exp",
            "Cos",
            "WR",
            "Linear",
            "Const",
            "Poly",
            "OneCycle",
            "Cyclic",
            "Lambda",
            "Mult",
            "Seq",
            "Chained",
        ]
    )
    if kind == "Step":
        kw = dict(step_size=rng.randint(1, 6), gamma=rng.choice([0.1, 0.5, 2.0]))
        return kind, lambda S, o: S.StepLR(o, **kw)
    if kind == "Multi":
        kw = dict(milestones=sorted(rng.sample(range(40), rng.randint(0, 5))), gamma=0.5)
        return kind, lambda S, o: S.MultiStepLR(o, **kw)
    if kind == "Exp":
        gamma = rng.choice([0.5, 0.9, 1.1])
        return kind, lambda S, o: S.ExponentialLR(o, gamma)
    if kind == "Cos":
        kw = dict(T_max=rng.randint(1, 30), eta_min=rng.choice([0.0, 0.001, 0.05, 0.2]))
        return kind, lambda S, o: S.CosineAnnealingLR(o, **kw)
    if kind == "WR":
        kw = dict(T_0=rng.randint(1, 10), T_mult=rng.randint(1, 3), eta_min=rng.choice([0.0, 0.2]))
        return kind, lambda S, o: S.CosineAnnealingWarmRestarts(o, **kw)
    if kind == "Linear":
        kw = dict(
            start_factor=rng.choice([0.1, 0.5, 1.0]),
            end_factor=rng.choice([0.0, 0.3, 1.0]),
            total_iters=rng.randint(0, 20),
        )
        return kind, lambda S, o: S.LinearLR(o, **kw)
    if kind == "Const":
        kw = dict(factor=rng.choice([0.1, 0.5, 1.0]), total_iters=rng.randint(0, 20))
        return kind, lambda S, o: S.ConstantLR(o, **kw)
    if kind == "Poly":
        kw = dict(total_iters=rng.randint(1, 30), power=rng.choice([0.5, 1.0, 2.0]))
        return kind, lambda S, o: S.PolynomialLR(o, **kw)
    if kind == "OneCycle":
        kw = dict(
            max_lr=rng.choice([0.5, [0.5, 0.2]]),
            total_steps=60,
            pct_start=rng.choice([0.0, 0.1, 0.3, 1.0]),
            anneal_strategy=rng.choice(["cos", "linear"]),
            three_phase=rng.choice([False, True]),
            div_factor=rng.choice([25.0, 2.0]),
        )
        return kind, lambda S, o: S.OneCycleLR(o, **kw)
    if kind == "Cyclic":
        kw = dict(
            base_lr=0.01,
            max_lr=rng.choice([0.1, [0.1, 0.3]]),
            step_size_up=rng.randint(1, 8),
            step_size_down=rng.choice([None, 1, 3]),
            mode=rng.choice(["triangular", "triangular2", "exp_range"]),
            gamma=0.9,
        )
        return kind, lambda S, o: S.CyclicLR(o, **kw)
    if kind == "Lambda":
        return kind, lambda S, o: S.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.9**e])
    if kind == "Mult":
        return kind, lambda S, o: S.MultiplicativeLR(o, lambda e: 0.97)
    m1 = rng.randint(1, 10)
    m2 = m1 + rng.randint(1, 10)
    if kind == "Seq":
        return kind, lambda S, o: S.SequentialLR(
            o,
            [S.LinearLR(o, 0.2, total_iters=m1), S.CosineAnnealingLR(o, 10, 0.001), S.StepLR(o, 3)],
            [m1, m2],
        )
    return kind, lambda S, o: S.ChainedScheduler(
        [S.LinearLR(o, 0.2, total_iters=m1), S.ExponentialLR(o, 0.95), S.MultiStepLR(o, [m2])]
    )


@pytest.mark.parametrize("seed", range(40))
def test_random_schedulers_match_torch_over_50_steps(seed):
    rng = random.Random(seed)
    kind, make = _random_scheduler(rng)
    opt_name = "Adam" if kind in ("OneCycle", "Cyclic") and seed % 2 else "SGD"
    dopt, topt = _sched_pair(opt_name, **({"momentum": 0.9} if opt_name == "SGD" else {}))
    ds, ts = make(dl.optim.lr_scheduler, dopt), make(torch.optim.lr_scheduler, topt)
    for k in range(50):
        dopt.step()
        topt.step()
        ds.step()
        ts.step()
        np.testing.assert_allclose(
            ds.get_last_lr(), ts.get_last_lr(), rtol=1e-12, atol=1e-15, err_msg=f"{kind} step {k}"
        )
        for dg, tg in zip(dopt.param_groups, topt.param_groups):
            assert dg["lr"] == pytest.approx(tg["lr"], rel=1e-12, abs=1e-15)
            if "momentum" in tg:
                assert dg["momentum"] == pytest.approx(tg["momentum"], rel=1e-12)
            if "betas" in tg:
                assert dg["betas"][0] == pytest.approx(tg["betas"][0], rel=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_reduce_on_plateau_random_configs_match_torch(seed):
    rng = random.Random(100 + seed)
    kw = dict(
        mode=rng.choice(["min", "max"]),
        factor=rng.choice([0.1, 0.5]),
        patience=rng.randint(0, 4),
        threshold=rng.choice([0.0, 1e-4, 0.1]),
        threshold_mode=rng.choice(["rel", "abs"]),
        cooldown=rng.randint(0, 3),
        min_lr=rng.choice([0, 0.01, [0.02, 0.001]]),
        eps=rng.choice([1e-8, 0.01]),
    )
    metrics = [rng.choice([1.0, 0.9, 1.1, 0.5, -1.0, 0.95, float("nan")]) for _ in range(50)]
    dopt, topt = _sched_pair()
    ds = dl.optim.lr_scheduler.ReduceLROnPlateau(dopt, **kw)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for k, m in enumerate(metrics):
        ds.step(m)
        ts.step(m)
        assert ds.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12), f"{kw} step {k}"
        assert (ds.num_bad_epochs, ds.cooldown_counter) == (ts.num_bad_epochs, ts.cooldown_counter)


_CKPT_SCHEDULERS = {
    "StepLR": lambda S, o: S.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, [2, 5, 5], 0.5),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 3, 2),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, 0.5, total_steps=30),
    "CyclicLR": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3),
    "ReduceLROnPlateau": lambda S, o: S.ReduceLROnPlateau(o, patience=1, cooldown=1),
    "SequentialLR": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, total_iters=4), S.ExponentialLR(o, 0.8)], [4]
    ),
}


@pytest.mark.parametrize("name", list(_CKPT_SCHEDULERS))
def test_scheduler_state_dict_through_a_file_resumes_like_an_unbroken_run(name):
    make = _CKPT_SCHEDULERS[name]
    S = dl.optim.lr_scheduler

    def stepper(s):
        return (
            (lambda k: s.step(1.0 + (k % 3 == 0)))
            if name == "ReduceLROnPlateau"
            else (lambda k: s.step())
        )

    ref_opt, _ = _sched_pair()
    ref = make(S, ref_opt)
    ref_lrs = []
    for k in range(25):
        ref_opt.step()
        stepper(ref)(k)
        ref_lrs.append(ref.get_last_lr())
    opt1, _ = _sched_pair()
    s1 = make(S, opt1)
    for k in range(10):
        opt1.step()
        stepper(s1)(k)
    buf = io.BytesIO()
    dl.save({"opt": opt1.state_dict(), "sched": s1.state_dict()}, buf)
    buf.seek(0)
    ck = dl.load(buf)
    opt2, _ = _sched_pair()
    s2 = make(S, opt2)
    opt2.load_state_dict(ck["opt"])
    s2.load_state_dict(ck["sched"])
    resumed = []
    for k in range(10, 25):
        opt2.step()
        stepper(s2)(k)
        resumed.append(s2.get_last_lr())
    assert resumed == ref_lrs[10:]


# =============================================================================== nn.utils
@pytest.mark.parametrize("norm_type", [2.0, 1, 0, 0.5, 3, float("inf"), -float("inf"), "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_over_several_parameters_like_torch(norm_type, max_norm):
    out = []
    for lib in (dl, torch):
        ps = []
        for i, s in enumerate([(3,), (2, 2), ()]):
            p = lib.nn.Parameter(lib.zeros(s))
            p.grad = lib.tensor(np.random.default_rng(i).standard_normal(s).astype(np.float32))
            ps.append(p)
        ps.append(lib.nn.Parameter(lib.zeros(2)))  # no grad: skipped
        total = lib.nn.utils.clip_grad_norm_(iter(ps), max_norm, norm_type=norm_type)
        out.append((_np(total), [_np(p.grad) for p in ps[:3]]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5)
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_clip_grad_misc_like_torch():
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.zeros(2))
        p.grad = lib.tensor([float("nan"), 1.0])
        with pytest.raises(RuntimeError, match="non-finite"):
            lib.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
        p.grad = lib.tensor([-3.0, 4.0])
        assert lib.nn.utils.clip_grad_value_(p, 1) is None
        assert _np(p.grad).tolist() == [-1.0, 1.0]
        p.grad = lib.tensor([-3.0, 0.5])
        lib.nn.utils.clip_grad_value_([p], -1)  # min > max: everything becomes max
        assert _np(p.grad).tolist() == [-1.0, -1.0]
        total = lib.nn.utils.clip_grad_norm_([], 1.0)
        assert float(total) == 0.0 and str(total.dtype).endswith("float32")
        half, dbl = (
            lib.nn.Parameter(lib.zeros(3, dtype=lib.float16)),
            lib.nn.Parameter(lib.zeros(3, dtype=lib.float64)),
        )
        half.grad, dbl.grad = lib.ones(3, dtype=lib.float16), lib.full((3,), 2.0, dtype=lib.float64)
        total = lib.nn.utils.clip_grad_norm_([half, dbl], 1.0)
        assert str(total.dtype).endswith("float64") and str(half.grad.dtype).endswith("float16")
        assert float(total) == pytest.approx(math.sqrt(15), rel=1e-4)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_clip_grad_norm_of_half_gradients_does_not_overflow():
    out = []
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.zeros(1000, dtype=lib.float16))
        p.grad = lib.full((1000,), 100.0, dtype=lib.float16)
        total = lib.nn.utils.clip_grad_norm_([p], 1.0)
        out.append((float(total), float(p.grad[0])))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-3)
    assert out[0][1] == pytest.approx(out[1][1], rel=1e-2)


def test_parameters_to_vector_and_back_like_torch():
    for lib in (dl, torch):
        a, b, c = (
            lib.nn.Parameter(lib.ones(2, 2)),
            lib.nn.Parameter(lib.zeros(3)),
            lib.nn.Parameter(lib.tensor(5.0)),
        )
        v = lib.nn.utils.parameters_to_vector([a, b, c])
        assert tuple(v.shape) == (8,) and _np(v).tolist()[-1] == 5.0
        v.sum().backward()
        assert _np(a.grad).tolist() == [[1.0, 1.0], [1.0, 1.0]]
        lib.nn.utils.vector_to_parameters(lib.arange(8.0), [a, b, c])
        assert _np(b).tolist() == [4.0, 5.0, 6.0] and float(c.detach()) == 7.0


# =============================================================================== init
def test_calculate_gain_and_fans_like_torch():
    for name, param in [
        ("linear", None),
        ("conv_transpose2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", 0.3),
        ("leaky_relu", None),
        ("leaky_relu", 0),
        ("leaky_relu", 0.2),
        ("selu", None),
    ]:
        assert dl.nn.init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param)
        )
    for bad in ("0.2", True):
        with pytest.raises(ValueError, match="negative_slope"):
            dl.nn.init.calculate_gain("leaky_relu", bad)
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        dl.nn.init.kaiming_uniform_(dl.empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        dl.nn.init.xavier_normal_(dl.empty(3))


_BIG = (256, 64, 3, 3)  # fan_in 576, fan_out 2304


@pytest.mark.parametrize(
    "fn,kw,std",
    [
        ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 2304)),
        ("kaiming_normal_", dict(a=0.2), math.sqrt(2 / (1 + 0.04)) / math.sqrt(576)),
        ("kaiming_normal_", dict(mode="FAN_OUT", nonlinearity="tanh"), (5 / 3) / math.sqrt(2304)),
        ("xavier_uniform_", dict(gain=2.0), 2.0 * math.sqrt(2 / (576 + 2304))),
        ("xavier_normal_", dict(gain=0.5), 0.5 * math.sqrt(2 / (576 + 2304))),
    ],
)
def test_init_moments_on_a_large_conv_weight(fn, kw, std):
    w = getattr(dl.nn.init, fn)(dl.empty(*_BIG), **kw)
    a = _np(w).astype(np.float64)
    assert abs(a.mean()) < 0.02 * std
    assert a.std() == pytest.approx(std, rel=0.02)
    if fn.endswith("uniform_"):
        bound = std * math.sqrt(3)
        assert a.max() <= bound and a.min() >= -bound and a.max() > 0.99 * bound


def test_deterministic_inits_like_torch():
    for make in (
        lambda L: L.nn.init.eye_(L.empty(2, 3)),
        lambda L: L.nn.init.dirac_(L.empty(4, 2, 3), groups=2),
        lambda L: L.nn.init.dirac_(L.empty(2, 2, 3, 3)),
        lambda L: L.nn.init.constant_(L.zeros(3, dtype=L.int64), 2.7),
    ):
        np.testing.assert_array_equal(_np(make(dl)), _np(make(torch)))
    w = dl.nn.init.orthogonal_(dl.empty(6, 2, 3, 3), gain=2.0)
    m = _np(w).reshape(6, -1).astype(np.float64)
    np.testing.assert_allclose(m @ m.T, 4 * np.eye(6), atol=1e-4)
    with pytest.raises(ValueError, match="divisible by groups"):
        dl.nn.init.dirac_(dl.empty(3, 2, 3), groups=2)


def test_trunc_normal_moments_in_the_usual_range():
    a = _np(dl.nn.init.trunc_normal_(dl.empty(20000), mean=0.5, std=2.0, a=-1.0, b=3.0)).astype(
        np.float64
    )
    assert a.min() >= -1.0 and a.max() <= 3.0
    lo, hi = (-1.0 - 0.5) / 2.0, (3.0 - 0.5) / 2.0
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
    mean = 0.5 + 2.0 * (pdf(lo) - pdf(hi)) / (cdf(hi) - cdf(lo))
    assert a.mean() == pytest.approx(mean, abs=0.03)


def test_trunc_normal_in_a_tail_window_is_not_biased():
    a = _np(dl.nn.init.trunc_normal_(dl.empty(4000), mean=0.0, std=1.0, a=3.0, b=4.0)).astype(
        np.float64
    )
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
    mean = (pdf(3.0) - pdf(4.0)) / (cdf(4.0) - cdf(3.0))  # 3.2606
    assert (a == 3.0).mean() < 0.01
    assert a.mean() == pytest.approx(mean, abs=0.03)


def test_normal_with_negative_std_is_refused():
    with pytest.raises((ValueError, RuntimeError), match="std"):
        dl.nn.init.normal_(dl.empty(10), 0.0, -1.0)


@pytest.mark.parametrize(
    "fill",
    [
        lambda t: dl.nn.init.uniform_(t, 0, 10),
        lambda t: dl.nn.init.normal_(t),
        lambda t: dl.nn.init.kaiming_uniform_(t),
        lambda t: dl.nn.init.xavier_normal_(t),
    ],
    ids=["uniform_", "normal_", "kaiming_uniform_", "xavier_normal_"],
)
def test_random_init_of_integer_tensor_is_refused(fill):
    with pytest.raises((TypeError, NotImplementedError, RuntimeError, ValueError)):
        fill(dl.zeros(5, 5, dtype=dl.int64))


def test_init_sparse_exists():
    w = dl.nn.init.sparse_(dl.empty(10, 4), 0.5)
    assert (_np(w) == 0).sum(axis=0).tolist() == [5, 5, 5, 5]


# =============================================================================== serialization
def _rt(obj, **kw):
    buf = io.BytesIO()
    dl.save(obj, buf)
    buf.seek(0)
    return dl.load(buf, **kw)


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64"]
)
def test_round_trip_of_0d_empty_and_non_contiguous_tensors(dtype):
    dt = getattr(dl, dtype)
    base = dl.tensor(np.arange(12).reshape(3, 4) % 3).to(dt)
    obj = {
        "0d": dl.tensor(np.array(2)).to(dt),
        "t": base.t(),
        "slice": base[:, ::2],
        "empty": dl.zeros(0, 3, dtype=dt),
        "nested": [(base[0], {"k": base})],
    }
    back = _rt(obj)
    for a, b in [
        (back["0d"], obj["0d"]),
        (back["t"], obj["t"]),
        (back["slice"], obj["slice"]),
        (back["empty"], obj["empty"]),
        (back["nested"][0][0], base[0]),
        (back["nested"][0][1]["k"], base),
    ]:
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
        np.testing.assert_array_equal(_np(a), _np(b))
    assert type(back["nested"][0]) is tuple


def test_round_trip_of_scalars_keys_parameters_and_map_location():
    obj = {
        1: "int key",
        "1": "str key",
        2.5: None,
        None: [True, -0.0, float("inf"), float("nan")],
        "big": 2**80,
        "p": dl.nn.Parameter(dl.ones(2)),
        "g": dl.ones(2, requires_grad=True),
    }
    back = _rt(obj, map_location="cpu")
    assert list(back) == list(obj)
    assert back[None][:3] == [True, -0.0, float("inf")] and math.isnan(back[None][3])
    assert math.copysign(1, back[None][1]) == -1 and back["big"] == 2**80
    assert type(back["p"]).__name__ == "Parameter" and back["p"].requires_grad
    assert back["g"].requires_grad and back["g"].is_leaf
    assert _rt(dl.ones(2), map_location={"cuda:0": "cpu"}).device.type == "cpu"
    with pytest.raises(TypeError, match="cannot save an object of type set"):
        dl.save({1, 2}, io.BytesIO())


def test_model_and_optimizer_checkpoint_round_trip_resumes_exactly(tmp_path):
    def build():
        dl.manual_seed(0)
        m = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.BatchNorm1d(4), dl.nn.Linear(4, 1))
        return m, dl.optim.AdamW(
            [
                {"params": m[0].parameters()},
                {"params": list(m[1].parameters()) + list(m[2].parameters()), "lr": 0.01},
            ],
            amsgrad=True,
        )

    x = dl.tensor(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))

    def train(m, opt, n):
        for _ in range(n):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()

    m1, o1 = build()
    train(m1, o1, 6)
    ref, ro = build()
    train(ref, ro, 10)
    path = tmp_path / "ckpt.safetensors"
    dl.save({"model": m1.state_dict(), "opt": o1.state_dict(), "epoch": 6}, path)
    ck = dl.load(path)
    m2, o2 = build()
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["opt"])
    train(m2, o2, 4)
    for (k, a), b in zip(m2.state_dict().items(), ref.state_dict().values()):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-7, err_msg=k)
    assert str(ck["model"]["1.num_batches_tracked"].dtype).endswith("int64")


def test_truncated_files_and_flipped_header_bytes_raise_serialization_error():
    obj = {
        "model": dl.nn.Sequential(dl.nn.Linear(3, 2), dl.nn.BatchNorm1d(2)).state_dict(),
        "lst": [dl.tensor(1.5), (1, "a")],
    }
    buf = io.BytesIO()
    dl.save(obj, buf)
    data = buf.getvalue()
    for n in range(0, len(data), 7):
        with pytest.raises(SerializationError):
            dl.load(io.BytesIO(data[:n]))
    with pytest.raises(SerializationError):
        dl.load(io.BytesIO(data + b"\0"))
    rng = random.Random(0)
    header = int.from_bytes(data[:8], "little")
    for i in range(0, 8 + header, 3):
        bad = bytearray(data)
        bad[i] = rng.randrange(256)
        try:
            dl.load(io.BytesIO(bytes(bad)))
        except SerializationError:
            pass  # a clear error, or a file that still parses: never anything else


def test_deeply_nested_structure_metadata_is_a_serialization_error():
    data = stnp.save(
        {"x": np.zeros(1, np.float32)},
        metadata={
            "format": "darklib",
            "darklib.version": "1",
            "darklib.structure": '{"l":' * 3000 + "1" + "}" * 3000,
        },
    )
    try:
        dl.load(io.BytesIO(data))
    except SerializationError:
        return
    except RecursionError:  # reported briefly: a 3000-frame traceback is slow to format
        pytest.fail("dl.load raised RecursionError, not SerializationError", pytrace=False)
    pytest.fail("dl.load accepted a malformed structure", pytrace=False)


def test_shared_tensors_stay_shared_after_load():
    t = dl.ones(3)
    back = _rt({"a": t, "b": t})
    assert back["a"] is back["b"]


def test_ordered_dict_type_survives_a_round_trip():
    assert type(_rt(dl.nn.Linear(2, 2).state_dict())) is OrderedDict


# =============================================================================== data
def test_collate_structures_match_torch():
    from torch.utils.data import default_collate as tc

    from darklib.utils.data import default_collate as dc

    P = collections.namedtuple("P", "a b")
    batches = [
        [
            {"a": 1, "b": np.zeros(2), "s": "x", "f": 0.5},
            {"a": 2, "b": np.ones(2), "s": "y", "f": 1.5},
        ],
        [([1, 2], 3), ([3, 4], 5)],
        [P(1, 2.0), P(3, 4.0)],
        [np.array(1.5), np.array(2.5)],
        [np.int8(1), np.int8(2)],
        [np.bool_(True), np.bool_(False)],
        [True, False],
        [np.arange(4).reshape(2, 2).T, np.zeros((2, 2), np.int64)],
        [OrderedDict(a=1.0, b=[1, 2])] * 2,
        [b"a", b"b"],
    ]
    for batch in batches:
        assert _norm(dc(batch)) == _norm(tc(batch)), batch
    tensors = [(dl.tensor([1.0, 2.0]), dl.tensor(3)), (dl.tensor([3.0, 4.0]), dl.tensor(5))]
    ttensors = [
        (torch.tensor([1.0, 2.0]), torch.tensor(3)),
        (torch.tensor([3.0, 4.0]), torch.tensor(5)),
    ]
    assert _norm(dc(tensors)) == _norm(tc(ttensors))
    with pytest.raises(RuntimeError, match="equal size"):
        dc([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="same shape"):
        dc([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError):
        dc([None, None])


@pytest.mark.parametrize(
    "batch",
    [
        [1, 2.5],
        [True, 2],
        [0, 1.5, 2],
        [1, np.float32(2.5)],
        [1, np.float64(2.5)],
        [True, np.int32(3)],
        [1, np.float16(2)],
        [True, np.uint8(3), np.int8(-1)],
    ],
    ids=[
        "int-float",
        "bool-int",
        "int-float-float",
        "int-np-float32",
        "int-np-float64",
        "bool-np-int32",
        "int-np-float16",
        "bool-uint8-int8",
    ],
)
def test_collate_of_mixed_python_numbers_like_torch(batch):
    from torch.utils.data import default_collate as tc

    from darklib.utils.data import default_collate as dc

    assert _norm(dc(batch)) == _norm(tc(batch))


@pytest.mark.parametrize(
    "make",
    [
        lambda L: [np.array([1, 2], np.int64), np.array([1.5, 2], np.float32)],
        lambda L: [np.int32(1), np.float64(2.5)],
        lambda L: [np.int64(1), 2.7],
        lambda L: [L.tensor([1, 2]), L.tensor([1.5, 2.0])],
    ],
    ids=["arrays-int64-float32", "np-int32-float64", "np-int64-pyfloat", "tensors-int64-float32"],
)
def test_collate_of_mixed_dtypes_like_torch(make):
    from torch.utils.data import default_collate as tc

    from darklib.utils.data import default_collate as dc

    assert _norm(dc(make(dl))) == _norm(tc(make(torch)))


def test_collate_of_defaultdict_samples():
    from darklib.utils.data import default_collate as dc

    out = dc([collections.defaultdict(int, a=1), collections.defaultdict(int, a=2)])
    assert _np(out["a"]).tolist() == [1, 2]


def test_default_convert_turns_numpy_scalars_into_tensors():
    from darklib.utils.data import DataLoader

    out = list(DataLoader([np.float32(1.5), np.float32(2.5)], batch_size=None))
    assert all(isinstance(x, Tensor) for x in out)


class _Samples(dl.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.full(2, i, np.float32), "y": i, "z": i / 2, "t": (i, [i, i])}


class _TSamples(torch.utils.data.Dataset):
    __init__ = _Samples.__init__
    __len__ = _Samples.__len__
    __getitem__ = _Samples.__getitem__


@pytest.mark.parametrize(
    "kw",
    [
        dict(batch_size=3),
        dict(batch_size=3, drop_last=True),
        dict(batch_size=None),
        dict(batch_size=4, sampler=[4, 1, 2, 0, 3]),
        dict(batch_sampler=[[0, 1], [4], [2, 3]]),
        dict(batch_size=2, sampler=range(5), collate_fn=lambda b: len(b)),
    ],
)
def test_loader_batches_and_len_like_torch(kw):
    d = dl.utils.data.DataLoader(_Samples(5), **kw)
    t = torch.utils.data.DataLoader(_TSamples(5), **kw)
    assert len(d) == len(t)
    assert [_norm(b) for b in d] == [_norm(b) for b in t]


def test_loader_over_iterable_dataset_and_len_like_torch():
    class DI(dl.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    class TI(torch.utils.data.IterableDataset):
        __iter__ = DI.__iter__
        __len__ = DI.__len__

    for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        d, t = dl.utils.data.DataLoader(DI(), **kw), torch.utils.data.DataLoader(TI(), **kw)
        assert len(d) == len(t) and [_norm(b) for b in d] == [_norm(b) for b in t]
    with pytest.raises(ValueError, match="shuffle"):
        dl.utils.data.DataLoader(DI(), shuffle=True)


def test_loader_shuffle_is_a_permutation_reproducible_with_a_generator():
    D = dl.utils.data

    def epoch(loader):
        return [x for b in loader for x in _np(b).tolist()]

    a = epoch(
        D.DataLoader(
            list(range(23)), batch_size=4, shuffle=True, generator=dl.Generator().manual_seed(7)
        )
    )
    b = epoch(
        D.DataLoader(
            list(range(23)), batch_size=4, shuffle=True, generator=dl.Generator().manual_seed(7)
        )
    )
    assert a == b and sorted(a) == list(range(23)) and a != list(range(23))
    loader = D.DataLoader(list(range(23)), batch_size=5, shuffle=True, drop_last=True, generator=3)
    e1, e2 = epoch(loader), epoch(loader)
    assert len(e1) == 20 and e1 != e2  # a new order every epoch


def test_loader_argument_errors_like_torch():
    for D in (dl.utils.data, torch.utils.data):
        for kw, msg in [
            (dict(shuffle=True, sampler=[0]), "mutually exclusive with shuffle"),
            (dict(batch_size=0), "batch_size should be a positive integer"),
            (dict(batch_size=2, batch_sampler=[[0]]), "batch_sampler option is mutually exclusive"),
            (dict(batch_size=None, drop_last=True), "mutually exclusive with drop_last"),
            (dict(num_workers=-1), "num_workers option should be"),
        ]:
            with pytest.raises(ValueError, match=msg):
                D.DataLoader(list(range(3)), **kw)


def test_shuffling_an_empty_dataset_raises_a_clear_error():
    D = dl.utils.data
    with pytest.raises(ValueError, match="num_samples"):
        list(D.DataLoader(D.TensorDataset(dl.zeros(0, 2)), shuffle=True))


def test_weighted_sampler_refuses_zero_samples():
    with pytest.raises(ValueError, match="num_samples"):
        dl.utils.data.WeightedRandomSampler([0.1, 0.9], 0)


def test_datasets_subset_concat_and_random_split_like_torch():
    for D, L in ((dl.utils.data, dl), (torch.utils.data, torch)):
        td = D.TensorDataset(L.arange(10).reshape(5, 2), L.arange(5.0))
        assert _norm(td[-1]) == _norm((L.tensor([8, 9]), L.tensor(4.0)))
        sub = D.Subset(td, [4, 0])
        assert len(sub) == 2 and _np(sub[0][1]).tolist() == 4.0
        cat = D.ConcatDataset([[1, 2, 3], [], [4, 5]])
        assert (len(cat), cat[3], cat[-1], cat.cumulative_sizes) == (5, 4, 5, [3, 3, 5])
        assert len(td + td) == 10
        for lengths, sizes in [([0.5, 0.3, 0.2], [5, 3, 2]), ([0.33, 0.33, 0.34], [4, 3, 3])]:
            parts = D.random_split(range(10), lengths)
            assert [len(p) for p in parts] == sizes
            assert sorted(i for p in parts for i in p.indices) == list(range(10))
        with pytest.raises(ValueError):
            D.random_split(range(10), [3, 3])
        with pytest.raises(ValueError):
            D.random_split(range(10), [1.5, -0.5])
        assert list(D.BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
        assert len(D.BatchSampler(range(7), 3, True)) == 2
        assert len(D.RandomSampler(range(10), num_samples=4)) == 4
        assert sorted(D.RandomSampler(range(3), num_samples=7))[::3] == [0, 1, 2]
        assert sorted(D.WeightedRandomSampler([1.0, 1.0, 1.0], 3, replacement=False)) == [0, 1, 2]


def test_random_split_is_reproducible_with_a_generator():
    D = dl.utils.data
    a = [
        p.indices
        for p in D.random_split(range(20), [0.5, 0.5], generator=dl.Generator().manual_seed(1))
    ]
    b = [
        p.indices
        for p in D.random_split(range(20), [0.5, 0.5], generator=dl.Generator().manual_seed(1))
    ]
    assert a == b


def test_stack_dataset_exists():
    ds = dl.utils.data.StackDataset(a=[1, 2], b=[3, 4])
    assert ds[1] == {"a": 2, "b": 4}


def test_json_metadata_is_the_structure_not_pickle():
    buf = io.BytesIO()
    dl.save({"w": dl.ones(2), "n": 3}, buf)
    data = buf.getvalue()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    assert header["__metadata__"]["format"] == "darklib"
    json.loads(header["__metadata__"]["darklib.structure"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(dl.load(io.BytesIO(data))["w"].sum()) == 2.0
