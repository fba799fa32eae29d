"""requires_grad flags and gradient dtypes against PyTorch.

Covers the checked ``Tensor.requires_grad`` property (parameters, modules, copies,
serialization, views, in-place ops, grad modes) and the engine's rule that the gradient
reaching each input has that input's dtype (mixed float16/32/64 graphs, integer tensors in
graphs, every loss in ``darklib.nn.functional``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn as nn
import darklib.nn.functional as F
from darklib.autograd import Function
from tests.oracle import assert_close, compare, rng


def _name(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def _np(t) -> np.ndarray:
    """A darklib or torch tensor's values (both spell it the same way)."""
    return t.detach().numpy()


# ------------------------------------------------------------------ nn.Parameter


def test_parameter_requires_grad_default_and_false_like_torch():
    p = nn.Parameter(dl.ones(2))
    q = nn.Parameter(dl.ones(2), requires_grad=False)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert not q.requires_grad
    e = nn.Parameter()
    te = torch.nn.Parameter()
    assert e.requires_grad == te.requires_grad
    assert _name(e.dtype) == _name(te.dtype) and tuple(e.shape) == tuple(te.shape)


def test_parameter_of_integer_data():
    with pytest.raises(RuntimeError, match="floating-point"):
        nn.Parameter(dl.arange(3))
    p = nn.Parameter(dl.arange(3), requires_grad=False)
    assert not p.requires_grad and p.dtype == dl.int64
    with pytest.raises(RuntimeError, match="floating-point"):
        p.requires_grad = True
    assert not p.requires_grad


def test_parameter_of_a_non_leaf_is_a_leaf():
    p = nn.Parameter(dl.ones(2, requires_grad=True) * 2)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    (p * 3).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [3, 3])


def test_parameter_requires_grad_setter_round_trip():
    p = nn.Parameter(dl.ones(2, dtype=dl.float16))
    p.requires_grad = False
    assert not p.requires_grad
    assert not (p * 2).requires_grad
    p.requires_grad = True
    y = p * 2
    assert y.requires_grad and y.grad_fn is not None


# ------------------------------------------------------------------ modules


def test_module_requires_grad_():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    m.requires_grad_(False)
    assert all(not p.requires_grad for p in m.parameters())
    out = m(dl.ones(4, 2))
    assert not out.requires_grad and out.grad_fn is None
    m[2].requires_grad_()
    out = m(dl.ones(4, 2))
    out.sum().backward()
    assert m[0].weight.grad is None and m[2].weight.grad is not None
    assert m[2].weight.grad.dtype == dl.float32


def test_module_to_dtype_keeps_parameters_and_flags():
    m = nn.Linear(2, 3)
    m.bias.requires_grad_(False)
    m(dl.ones(1, 2)).sum().backward()
    w = m.weight
    m.to(dl.float64)
    assert m.weight is w and type(m.weight) is nn.Parameter and m.weight.is_leaf
    assert m.weight.dtype == dl.float64 and m.weight.grad.dtype == dl.float64
    assert m.weight.requires_grad and not m.bias.requires_grad
    m.weight.grad = None
    m(dl.ones(1, 2, dtype=dl.float64)).sum().backward()
    assert m.weight.grad.dtype == dl.float64 and m.bias.grad is None
    m.half()
    assert m.weight.dtype == dl.float16 and m.weight.grad.dtype == dl.float16
    assert m.weight.requires_grad and not m.bias.requires_grad


def test_module_to_cpu_keeps_flags():
    m = nn.Linear(2, 3)
    m.bias.requires_grad_(False)
    w = m.weight
    m.to(device="cpu")
    m.to("cpu")
    m.cpu()
    assert m.weight is w and m.weight.requires_grad and m.weight.is_leaf
    assert not m.bias.requires_grad


def test_module_double_after_requires_grad_false():
    m = nn.Linear(2, 3).requires_grad_(False)
    m.double()
    assert m.weight.dtype == dl.float64 and not m.weight.requires_grad


# ------------------------------------------------------------------ deepcopy


def test_deepcopy_tensors_like_torch():
    x = dl.ones(2, requires_grad=True)
    y = copy.deepcopy(x)
    assert y.requires_grad and y.is_leaf and y is not x
    i = copy.deepcopy(dl.arange(3))
    assert not i.requires_grad and i.dtype == dl.int64
    with pytest.raises(RuntimeError, match="leaves"):
        copy.deepcopy(x * 2)
    with pytest.raises(RuntimeError, match="leaves"):
        copy.deepcopy(dl.ones(2, 2, requires_grad=True)[0])
    v = dl.ones(2, 2)[0]
    v.requires_grad = True
    w = copy.deepcopy(v)
    assert w.requires_grad and w.is_leaf


def test_deepcopy_parameters_and_modules_keep_flags():
    p = nn.Parameter(dl.ones(2), requires_grad=False)
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and not q.requires_grad
    pi = copy.deepcopy(nn.Parameter(dl.arange(2), requires_grad=False))
    assert pi.dtype == dl.int64 and not pi.requires_grad
    m = nn.Linear(2, 3)
    m.bias.requires_grad_(False)
    m2 = copy.deepcopy(m)
    assert type(m2.weight) is nn.Parameter and m2.weight is not m.weight
    assert m2.weight.requires_grad and not m2.bias.requires_grad
    m2(dl.ones(1, 2)).sum().backward()
    assert m.weight.grad is None and m2.weight.grad.dtype == dl.float32


# ------------------------------------------------------------------ state_dict


def test_state_dict_is_detached_and_keep_vars_is_not():
    m = nn.Linear(2, 3)
    m.bias.requires_grad_(False)
    sd = m.state_dict()
    assert all(not v.requires_grad and v.is_leaf for v in sd.values())
    assert all(type(v) is dl.Tensor for v in sd.values())
    kv = m.state_dict(keep_vars=True)
    assert kv["weight"] is m.weight and kv["weight"].requires_grad


def test_load_state_dict_keeps_target_flags():
    m = nn.Linear(2, 3)
    m.bias.requires_grad_(False)
    src = nn.Linear(2, 3)
    m.load_state_dict(src.state_dict())
    assert m.weight.requires_grad and m.weight.is_leaf and not m.bias.requires_grad
    np.testing.assert_array_equal(m.weight.detach().numpy(), src.weight.detach().numpy())
    m.load_state_dict(src.state_dict(), assign=True)
    assert type(m.weight) is nn.Parameter
    assert m.weight.requires_grad and not m.bias.requires_grad
    x = dl.ones(3, 2, requires_grad=True)
    m.load_state_dict({"weight": x * 2, "bias": dl.zeros(3)})
    assert m.weight.is_leaf and m.weight.grad_fn is None and m.weight.requires_grad
    sd64 = {k: v.double() for k, v in src.state_dict().items()}
    m.load_state_dict(sd64)
    assert m.weight.dtype == dl.float32 and m.weight.requires_grad


# ------------------------------------------------------------------ save / load


def test_save_load_round_trip_flags_like_torch(tmp_path):
    def objs(lib, N):
        return {
            "a": lib.ones(2, requires_grad=True),
            "b": lib.ones(2),
            "p": N.Parameter(lib.ones(2)),
            "q": N.Parameter(lib.ones(2), requires_grad=False),
            "h": lib.ones(2, dtype=lib.float16, requires_grad=True),
            "n": lib.ones(2, requires_grad=True) * 2,
            "i": lib.arange(2),
            "pi": N.Parameter(lib.arange(2), requires_grad=False),
        }

    dl.save(objs(dl, nn), tmp_path / "d.pt")
    torch.save(objs(torch, torch.nn), tmp_path / "t.pt")
    d = dl.load(tmp_path / "d.pt")
    t = torch.load(tmp_path / "t.pt", weights_only=False)
    assert d.keys() == t.keys()
    for k in t:
        what = (type(d[k]).__name__, d[k].requires_grad, d[k].is_leaf, _name(d[k].dtype))
        want = (type(t[k]).__name__, t[k].requires_grad, t[k].is_leaf, _name(t[k].dtype))
        assert what == want, k
    (d["a"] * d["p"]).sum().backward()
    assert d["a"].grad.dtype == dl.float32 and d["p"].grad.dtype == dl.float32


def test_save_load_state_dict_is_not_requiring_grad(tmp_path):
    m = nn.Linear(2, 2)
    dl.save(m.state_dict(), tmp_path / "m.pt")
    sd = dl.load(tmp_path / "m.pt")
    assert all(not v.requires_grad for v in sd.values())
    m2 = nn.Linear(2, 2)
    m2.load_state_dict(sd)
    assert m2.weight.requires_grad


# ------------------------------------------------------------------ detach / clone


def test_detach_shares_memory_and_version():
    x = dl.ones(3, requires_grad=True)
    y = x.detach()
    assert not y.requires_grad and y.is_leaf
    y.add_(1)
    np.testing.assert_array_equal(x.detach().numpy(), [2, 2, 2])
    assert x._version == 1
    y.requires_grad = True
    (y * 2).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [2, 2, 2])
    assert x.grad is None


def test_detach_in_place_of_a_non_leaf():
    x = dl.ones(3, requires_grad=True)
    y = x * 2
    assert y.detach_() is y
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    y.requires_grad = False  # a leaf now: allowed


def test_clone_flags_and_no_grad():
    x = dl.ones(3, requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not c.is_leaf
    with dl.no_grad():
        c2 = x.clone()
    assert not c2.requires_grad and c2.is_leaf
    (c * 3).sum().backward()
    assert x.grad.dtype == dl.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3, 3])


# ------------------------------------------------------------------ in place


def test_in_place_on_leaf_under_no_grad():
    x = dl.ones(3, requires_grad=True)
    with dl.no_grad():
        x.add_(1)
        x.mul_(2)
        y = x * 2
    assert x.requires_grad and x.is_leaf and not y.requires_grad
    assert x._version == 2
    np.testing.assert_array_equal(x.detach().numpy(), [4, 4, 4])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8, 8, 8])


def test_in_place_on_leaf_and_view_of_leaf_raise():
    x = dl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1)
    v = x[:2]
    assert v.requires_grad and not v.is_leaf
    with pytest.raises(RuntimeError, match="view of a leaf"):
        v.add_(1)
    with pytest.raises(RuntimeError, match="only leaf"):
        v.requires_grad = False
    np.testing.assert_array_equal(x.detach().numpy(), [1, 1, 1])


def test_in_place_on_view_of_leaf_under_no_grad():
    x = dl.ones(3, requires_grad=True)
    v = x[:2]
    with dl.no_grad():
        v.mul_(3)
    assert v.requires_grad and not v.is_leaf
    np.testing.assert_array_equal(x.detach().numpy(), [3, 3, 1])
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 1])


def test_in_place_mixed_dtypes_like_torch():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        f = lib.zeros(3, dtype=lib.float64)
        f[1:] = x[:2] * 2
        h = lib.zeros(3, dtype=lib.float16)
        h.add_(x)
        y = x * 1
        y[:2].mul_(lib.tensor([2.0, 3.0], dtype=lib.float64))
        loss = (f * f).sum() + (h * h).sum() + (y**2).sum()
        (g,) = lib.autograd.grad(loss, [x])
        return [_name(t.dtype) for t in (f, h, y, g)], _np(g)

    (dd, dg), (td, tg) = run(dl), run(torch)
    assert dd == td
    np.testing.assert_allclose(dg, tg, rtol=1e-3)


def test_plain_tensor_in_place_with_grad_operand():
    f = dl.ones(3)
    x = dl.ones(3, requires_grad=True)
    f.mul_(x)
    assert f.requires_grad and not f.is_leaf
    f.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 1])


# ------------------------------------------------------------------ flags of op results


def test_requires_grad_of_results_with_mixed_inputs():
    a = dl.ones(2, requires_grad=True)
    b = dl.ones(2)
    assert (a + b).requires_grad and (b + a).requires_grad
    assert not (b + b).requires_grad
    assert not (a > b).requires_grad and not (a == b).requires_grad
    assert not a.argmax().requires_grad and not a.argsort().requires_grad
    vals, idx = dl.ones(2, 3, requires_grad=True).max(dim=1)
    assert vals.requires_grad and not idx.requires_grad and idx.grad_fn is None
    vals, idx = dl.ones(2, 3, requires_grad=True).sort(dim=1)
    assert vals.requires_grad and not idx.requires_grad


def test_no_grad_and_enable_grad_nesting():
    a = dl.ones(2, requires_grad=True)
    with dl.no_grad():
        c = a * 2
        with dl.enable_grad():
            e = a * 2
        z = a * 2
    assert not c.requires_grad and e.requires_grad and not z.requires_grad
    assert dl.is_grad_enabled()


def test_setting_requires_grad_checks():
    for x in (dl.arange(3), dl.tensor([True, False])):
        with pytest.raises(RuntimeError, match="floating-point"):
            x.requires_grad = True
        with pytest.raises(RuntimeError, match="floating-point"):
            x.requires_grad_()
        x.requires_grad = False
        assert not x.requires_grad
    with pytest.raises(RuntimeError, match="floating-point"):
        dl.zeros(2, dtype=dl.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        dl.tensor([1, 2], requires_grad=True)
    y = dl.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only leaf"):
        y.requires_grad_(False)
    assert y.requires_grad_(True) is y and y.requires_grad


# ------------------------------------------------------------------ retain_grad, hooks, grad


def test_retain_grad_and_hooks_across_casts_like_torch():
    def run(lib):
        seen = []
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: seen.append(_name(g.dtype)))
        z = y.half()
        z.retain_grad()
        w = y.double()
        ((z.float() * 3).sum() + (w * w).sum()).backward()
        return (
            [_name(t.dtype) for t in (y.grad, z.grad, x.grad)] + seen,
            [_np(t) for t in (y.grad, z.grad, x.grad)],
        )

    (dn, dv), (tn, tv) = run(dl), run(torch)
    assert dn == tn
    for a, b in zip(dv, tv):
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-3)


def test_hooks_modify_gradients_like_torch():
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 2)
    (y * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [12, 12, 12])
    x2 = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x2.register_hook(lambda g: g * 2)
    (g,) = dl.autograd.grad((x2 * 3).sum(), [x2])
    np.testing.assert_array_equal(g.numpy(), [6, 6, 6])
    assert x2.grad is None


def test_autograd_grad_of_non_leaf_and_leaf_dtypes():
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    gy, gx = dl.autograd.grad((y.double() ** 2).sum(), [y, x])
    assert gy.dtype == dl.float32 and gx.dtype == dl.float32
    np.testing.assert_allclose(gy.numpy(), [4, 8, 12])
    np.testing.assert_allclose(gx.numpy(), [8, 16, 24])
    assert x.grad is None
    with pytest.warns(UserWarning, match="not a leaf"):  # as torch's warning
        assert y.grad is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        dl.autograd.grad((x * 2).sum(), [dl.ones(3)])


class _Widen(Function):
    """An op whose backward hands back a float64 gradient for a float32 input."""

    @staticmethod
    def forward(ctx, a):
        return a.clone()

    @staticmethod
    def backward(ctx, g):
        return g.double()


def test_widened_gradient_into_a_leaf_grad_keeps_its_dtype():
    x = dl.ones(3, requires_grad=True)
    _Widen.apply(x).sum().backward()
    assert x.grad.dtype == dl.float32
    _Widen.apply(x).sum().backward()  # accumulating keeps it too
    assert x.grad.dtype == dl.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_widened_gradient_into_a_leaf_via_autograd_grad_and_hooks():
    x = dl.ones(3, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.dtype))
    (g,) = dl.autograd.grad(_Widen.apply(x).sum(), [x])
    assert seen == [dl.float32]
    assert g.dtype == dl.float32


# ------------------------------------------------------------------ type promotion in backward

_BINARY = {
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: a - b,
    "rsub": lambda m, a, b: b - a,
    "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b,
    "pow": lambda m, a, b: a**b,
    "maximum": lambda m, a, b: m.maximum(a, b),
    "where": lambda m, a, b: m.where(a > 1, a, b),
    "atan2": lambda m, a, b: m.atan2(a, b),
}
_DTYPES = [
    ("float32", "float64", (3, 4), (3, 4)),
    ("float64", "float32", (3, 4), (4,)),
    ("float16", "float32", (3, 4), (3, 4)),
    ("float32", "float64", (3, 4), ()),
    ("float16", "float64", (3, 4), ()),
    ("float32", "float16", (3, 4), (1, 4)),
    ("float32", "int64", (3, 4), (4,)),
]


@pytest.mark.parametrize("op", list(_BINARY))
@pytest.mark.parametrize("da,db,sa,sb", _DTYPES)
def test_mixed_dtype_gradients_have_each_inputs_dtype(op, da, db, sa, sb):
    r = rng(3)
    a = (r.random(sa) + 0.5).astype(da)
    b = (r.random(sb) + 0.5).astype(db) if db != "int64" else r.integers(1, 3, sb)
    fn = _BINARY[op]
    res = {}
    for lib in (dl, torch):
        x = lib.tensor(a, requires_grad=True)
        y = lib.tensor(b, requires_grad=db != "int64")
        # through a node (x * 1) and straight from a leaf (autograd.grad)
        out = fn(lib, x * 1, y * 1 if y.requires_grad else y)
        ins = [x, y] if y.requires_grad else [x]
        grads = lib.autograd.grad(out.sum(), ins)
        fn(lib, x * 1, y * 1 if y.requires_grad else y).sum().backward()
        res[lib] = (
            _name(out.dtype),
            [_name(g.dtype) for g in grads],
            [_name(t.grad.dtype) for t in ins],
            [_np(g).astype(np.float64) for g in grads],
        )
    assert res[dl][:3] == res[torch][:3]
    tol = 1e-2 if "float16" in (da, db) else 1e-4
    for g, t in zip(res[dl][3], res[torch][3]):
        np.testing.assert_allclose(g, t, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: m.sigmoid(x),
        lambda m, x: m.tanh(x),
        lambda m, x: m.gelu(x),
        lambda m, x: m.softmax(x, dim=1),
        lambda m, x: m.log_softmax(x, dim=1),
        lambda m, x: m.layer_norm(x, (4,)),
        lambda m, x: m.max_pool2d(x, 2),
        lambda m, x: m.avg_pool2d(x, 2),
        lambda m, x: m.normalize(x),
    ],
)
def test_functional_gradient_dtype_for_low_and_high_precision(dtype, fn):
    a = (rng(4).random((2, 3, 4, 4)) + 0.2).astype(dtype)
    out = []
    for lib, m in ((dl, F), (torch, TF)):
        x = lib.tensor(a, requires_grad=True)
        y = fn(m, x)
        (g,) = lib.autograd.grad(y, [x], lib.ones_like(y) * 0.3)
        out.append((_name(y.dtype), _name(g.dtype), _np(g).astype(np.float64)))
    assert out[0][:2] == out[1][:2] == (dtype, dtype)
    tol = 2e-2 if dtype == "float16" else 1e-4
    np.testing.assert_allclose(out[0][2], out[1][2], rtol=tol, atol=tol)


# ------------------------------------------------------------------ integer tensors in graphs


def test_integer_indexing_gather_and_embedding_gradients():
    def run(lib):
        x = lib.tensor([[0.5, 2.0, 1.0], [3.0, -1.0, 0.0]], requires_grad=True)
        i = lib.tensor([1, 0, 1])
        y1 = x[i]
        y1.retain_grad()
        y2 = x[x > 0.7] * 2
        y3 = lib.gather(x, 1, lib.tensor([[0, 2], [1, 1]]))
        w = lib.ones(4, 2, requires_grad=True)
        e = lib.nn.functional.embedding(lib.tensor([[0, 1], [1, 3]]), w)
        (y1.sum() + y2.sum() + (y3 * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum()).backward()
        (e * 2).sum().backward()
        assert not i.requires_grad
        return [_np(t) for t in (x.grad, y1.grad, w.grad)], [
            _name(t.dtype) for t in (x.grad, w.grad)
        ]

    (dv, dn), (tv, tn) = run(dl), run(torch)
    assert dn == tn == ["float32", "float32"]
    for a, b in zip(dv, tv):
        np.testing.assert_allclose(a, b)


def test_float_times_integer_tensor_gradient():
    compare(lambda x, i: x * i, lambda x, i: x * i, rng(5).random((3, 4)), np.arange(4))
    compare(
        lambda x, i: x * i,
        lambda x, i: x * i,
        rng(5).random((3, 4)).astype(np.float32),
        np.arange(4, dtype=np.int32),
    )


def test_casting_to_integer_does_not_require_grad_like_torch():
    x = dl.tensor([0.5, 2.0], requires_grad=True)
    for y in (x.long(), x.int(), x.bool(), x.to(dl.int32), x.type(dl.int64)):
        assert not y.requires_grad and y.is_leaf
    x.long().numpy()  # torch: fine, the tensor does not require grad


def test_backward_through_integer_cast_raises_like_torch():
    x = dl.tensor([0.5, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        x.long().sum().backward()
    assert x.grad is None


def test_in_place_float_into_integer_with_grad_raises_like_torch():
    i = dl.arange(3)
    x = dl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.add_(x)


def test_in_place_float_into_integer_under_no_grad_raises():
    i = dl.arange(3)
    with dl.no_grad(), pytest.raises(RuntimeError, match="can't be cast"):
        i.add_(dl.ones(3, requires_grad=True))
    np.testing.assert_array_equal(i.numpy(), [0, 1, 2])


def test_setting_requires_grad_true_on_non_leaf_raises_like_torch():
    y = dl.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = True


def test_detach_in_place_of_a_view_raises_like_torch():
    x = dl.ones(3, requires_grad=True)
    v = x[1:]
    with pytest.raises(RuntimeError, match="view"):
        v.detach_()


# ------------------------------------------------------------------ losses

_r = rng(7)
_X = _r.standard_normal((4, 5)).astype(np.float32)
_Y = _r.standard_normal((4, 5)).astype(np.float32)
_P = (1 / (1 + np.exp(-_X))).astype(np.float32)
_Q = _r.random((4, 5)).astype(np.float32)
_Q /= _Q.sum(1, keepdims=True)
_CLS = np.array([0, 3, 1, 4])
_CW = (_r.random(5) + 0.5).astype(np.float32)
_EW = (_r.random((4, 5)) + 0.5).astype(np.float32)

# name -> (fn(module, lib, *tensors, reduction), arrays, which arrays require grad)
_LOSSES = {
    "mse": (lambda m, L, a, b, **k: m.mse_loss(a, b, **k), [_X, _Y], [1, 1]),
    "l1": (lambda m, L, a, b, **k: m.l1_loss(a, b, **k), [_X, _Y], [1, 1]),
    "smooth_l1": (lambda m, L, a, b, **k: m.smooth_l1_loss(a, b, beta=0.5, **k), [_X, _Y], [1, 1]),
    "huber": (lambda m, L, a, b, **k: m.huber_loss(a, b, delta=0.7, **k), [_X, _Y], [1, 1]),
    "mse_f64_target": (
        lambda m, L, a, b, **k: m.mse_loss(a, b, **k),
        [_X, _Y.astype(np.float64)],
        [1, 1],
    ),
    "bce": (lambda m, L, a, b, **k: m.binary_cross_entropy(a, b, **k), [_P, _Q], [1, 1]),
    "bce_weight_f64": (
        lambda m, L, a, b, w, **k: m.binary_cross_entropy(a, b, weight=w, **k),
        [_P, _Q, _EW.astype(np.float64)],
        [1, 1, 0],
    ),
    "bce_logits": (
        lambda m, L, a, b, **k: m.binary_cross_entropy_with_logits(a, b, **k),
        [_X, _Q],
        [1, 1],
    ),
    "bce_logits_pos_weight": (
        lambda m, L, a, b, w, **k: m.binary_cross_entropy_with_logits(a, b, pos_weight=w, **k),
        [_X, _Q, _CW],
        [1, 1, 0],
    ),
    "bce_logits_weight_f64": (
        lambda m, L, a, b, w, **k: m.binary_cross_entropy_with_logits(a, b, weight=w, **k),
        [_X, _Q, _EW.astype(np.float64)],
        [1, 1, 0],
    ),
    "kl_div": (lambda m, L, a, b, **k: m.kl_div(a, b, **k), [np.log(_Q), _P], [1, 1]),
    "kl_div_log_target": (
        lambda m, L, a, b, **k: m.kl_div(a, b, log_target=True, **k),
        [np.log(_Q), _Y],
        [1, 1],
    ),
    "cross_entropy": (lambda m, L, a, b, **k: m.cross_entropy(a, b, **k), [_X, _CLS], [1, 0]),
    "cross_entropy_weight": (
        lambda m, L, a, b, w, **k: m.cross_entropy(a, b, weight=w, **k),
        [_X, _CLS, _CW],
        [1, 0, 0],
    ),
    "cross_entropy_smoothing": (
        lambda m, L, a, b, **k: m.cross_entropy(a, b, label_smoothing=0.2, **k),
        [_X, _CLS],
        [1, 0],
    ),
    "cross_entropy_ignore": (
        lambda m, L, a, b, **k: m.cross_entropy(a, b, ignore_index=3, **k),
        [_X, _CLS],
        [1, 0],
    ),
    "cross_entropy_probs": (
        lambda m, L, a, b, **k: m.cross_entropy(a, b, **k),
        [_X, _Q],
        [1, 1],
    ),
    "cross_entropy_probs_weight_smoothing": (
        lambda m, L, a, b, w, **k: m.cross_entropy(a, b, weight=w, label_smoothing=0.1, **k),
        [_X, _Q, _CW],
        [1, 1, 0],
    ),
    "cross_entropy_unbatched": (
        lambda m, L, a, b, **k: m.cross_entropy(a, b, **k),
        [_X[0], np.array(2)],
        [1, 0],
    ),
    "nll": (lambda m, L, a, b, **k: m.nll_loss(a, b, **k), [np.log(_Q), _CLS], [1, 0]),
    "nll_weight": (
        lambda m, L, a, b, w, **k: m.nll_loss(a, b, weight=w, **k),
        [np.log(_Q), _CLS, _CW],
        [1, 0, 0],
    ),
}


def _loss_cases():
    for name in _LOSSES:
        reds = ["mean", "sum", "none"] + (["batchmean"] if name.startswith("kl") else [])
        for red in reds:
            yield pytest.param(name, red, id=f"{name}-{red}")


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("name,reduction", list(_loss_cases()))
def test_loss_gradients_are_float32_and_match_torch(name, reduction):
    fn, arrays, flags = _LOSSES[name]
    go = rng(8).standard_normal(4 * 5).astype(np.float32)
    res = {}
    for lib, m in ((dl, F), (torch, TF)):
        ts = [lib.tensor(a, requires_grad=bool(f)) for a, f in zip(arrays, flags)]
        ins = [t for t in ts if t.requires_grad]
        out = fn(m, lib, *ts, reduction=reduction)
        g = lib.tensor(go[: int(np.prod(tuple(out.shape)))].reshape(tuple(out.shape)))
        g = g.to(out.dtype)
        grads = lib.autograd.grad(out, ins, g)  # the op's own gradients, uncast by the engine
        # and through .backward from a node, accumulated into .grad
        fn(m, lib, *[t * 1 if t.requires_grad else t for t in ts], reduction=reduction).backward(g)
        res[lib] = (out, grads, [t.grad for t in ins])
    (d_out, d_grads, d_acc), (t_out, t_grads, t_acc) = res[dl], res[torch]
    assert _name(d_out.dtype) == _name(t_out.dtype)
    assert _name(d_grads[0].dtype) == "float32"  # the input is float32 in every case
    assert_close(d_out, t_out, atol=1e-5, rtol=1e-4, what="loss")
    for i, (dg, tg, da, ta) in enumerate(zip(d_grads, t_grads, d_acc, t_acc)):
        assert _name(dg.dtype) == _name(tg.dtype), f"input {i}: autograd.grad dtype"
        assert _name(da.dtype) == _name(ta.dtype), f"input {i}: .grad dtype"
        assert_close(dg, tg, atol=1e-5, rtol=1e-4, what=f"grad {i}")
        assert_close(da, ta, atol=1e-5, rtol=1e-4, what=f".grad {i}")


@pytest.mark.parametrize("dtype", ["float16", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_other_precisions_keep_dtype(dtype, reduction, smoothing):
    x = rng(9).standard_normal((4, 5, 3))
    t = np.array([[0, 1, 4], [2, -100, 3], [1, 1, 1], [4, 0, 2]])
    res = []
    for lib, m in ((dl, F), (torch, TF)):
        xx = lib.tensor(x.astype(dtype), requires_grad=True)
        w = lib.tensor((np.arange(5) * 0.2 + 0.5).astype(dtype))
        y = m.cross_entropy(
            xx, lib.tensor(t), weight=w, reduction=reduction, label_smoothing=smoothing
        )
        g = lib.tensor(np.full(tuple(y.shape), 0.7, dtype=dtype))
        (gx,) = lib.autograd.grad(y, [xx], g)
        res.append((_name(y.dtype), _name(gx.dtype), _np(gx).astype(np.float64)))
    assert res[0][:2] == res[1][:2] == (dtype, dtype)
    tol = 1e-2 if dtype == "float16" else 1e-8
    np.testing.assert_allclose(res[0][2], res[1][2], rtol=tol, atol=tol)


def test_cross_entropy_all_ignored_gives_zero_float32_gradient():
    x = dl.tensor(_X, requires_grad=True)
    loss = F.cross_entropy(x, dl.tensor(np.full(4, -100)))
    assert np.isnan(loss.item())
    (g,) = dl.autograd.grad(loss, [x])
    assert g.dtype == dl.float32 and not np.any(g.numpy())


def test_float32_training_step_stays_float32_end_to_end():
    """A small CNN with cross-entropy: every parameter gradient is float32 (the bug fixed in
    d940c36 made the whole backward pass float64)."""
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    seen = []
    for p in m.parameters():
        p.register_hook(lambda g: seen.append(g.dtype))
    x = dl.tensor(rng(10).standard_normal((2, 1, 6, 6)).astype(np.float32))
    F.cross_entropy(m(x), dl.tensor([0, 2])).backward()
    assert len(seen) == 4 and set(seen) == {dl.float32}
    assert all(p.grad.dtype == dl.float32 for p in m.parameters())


def test_deepcopy_of_a_parameter_leaves_its_gradient_behind_like_torch():
    p, tp = nn.Parameter(dl.ones(2)), torch.nn.Parameter(torch.ones(2))
    p.grad, tp.grad = dl.ones(2), torch.ones(2)
    assert copy.deepcopy(p).grad is None and copy.deepcopy(tp).grad is None
    t = dl.ones(2, requires_grad=True)
    t.grad = dl.ones(2)
    np.testing.assert_array_equal(copy.deepcopy(t).grad.numpy(), [1, 1])  # plain: kept
