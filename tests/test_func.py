"""darklib.func against torch.func: grad, vjp, jvp, jacrev, jacfwd, hessian, vmap and
functional_call, alone, composed (per-sample gradients, second derivatives) and mixed
with ordinary autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.func as tf

import darklib as dl
import darklib.func as df
from tests.oracle import DEVICES, rng


def _both(*shape, seed=0, device="cpu"):
    a = rng(seed).standard_normal(shape)
    return dl.tensor(a, dtype=dl.float64, device=device), torch.tensor(a, dtype=torch.float64)


def _close(d, t, tol=1e-9):
    if isinstance(t, tuple | list):
        assert isinstance(d, tuple | list) and len(d) == len(t)
        for a, b in zip(d, t):
            _close(a, b, tol)
    elif isinstance(t, dict):
        assert set(d) == set(t)
        for k in t:
            _close(d[k], t[k], tol)
    else:
        np.testing.assert_allclose(d.detach().cpu().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def f_scalar(L):
    return lambda x, y: (L.sin(x) * y).sum() + (x**2).sum() * y.mean()


def f_vector(L):
    return lambda x, y: (L.tanh(x @ y), (x**3).sum(1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0), -1])
def test_grad_and_grad_and_value_match_torch(device, argnums):
    xd, xt = _both(3, 4, device=device)
    yd, yt = _both(3, 4, seed=1, device=device)
    _close(df.grad(f_scalar(dl), argnums)(xd, yd), tf.grad(f_scalar(torch), argnums)(xt, yt))
    gd, vd = df.grad_and_value(f_scalar(dl), argnums)(xd, yd)
    gt, vt = tf.grad_and_value(f_scalar(torch), argnums)(xt, yt)
    _close(gd, gt)
    _close(vd, vt)
    assert not vd.requires_grad and not gd.requires_grad if isinstance(gd, dl.Tensor) else True


def test_grad_has_aux_and_pytree_inputs():
    def f(L):
        return lambda p, x: ((p["w"] * x).sum() + p["b"].sum() ** 2, {"n": x.norm()})

    xd, xt = _both(5)
    pd = {"w": _both(5, seed=2)[0], "b": _both(2, seed=3)[0]}
    pt = {"w": _both(5, seed=2)[1], "b": _both(2, seed=3)[1]}
    gd, auxd = df.grad(f(dl), has_aux=True)(pd, xd)
    gt, auxt = tf.grad(f(torch), has_aux=True)(pt, xt)
    _close(gd, gt)
    _close(auxd, auxt)


def test_nested_grad_gives_higher_derivatives():
    xd, xt = _both(6)
    for order in (2, 3):
        fd, ft = (lambda x: dl.sin(x).sum()), (lambda x: torch.sin(x).sum())
        for _ in range(order - 1):
            fd = (lambda g: lambda x: df.grad(g)(x).sum())(fd)
            ft = (lambda g: lambda x: tf.grad(g)(x).sum())(ft)
        _close(df.grad(fd)(xd), tf.grad(ft)(xt))


def test_grad_result_stays_differentiable_for_outer_autograd():
    """A closed-over tensor that requires grad: backward through the gradient reaches it."""
    res = {}
    for L, F in ((dl, df), (torch, tf)):
        w = L.tensor([0.5, -1.0, 2.0], dtype=L.float64, requires_grad=True)
        x = L.tensor([1.0, 2.0, 3.0], dtype=L.float64)
        g = F.grad(lambda x, w=w: (w * x**2).sum())(x)
        (g**2).sum().backward()
        res[L.__name__] = (g.detach().numpy(), w.grad.numpy())
    for a, b in zip(res["darklib"], res["torch"]):
        np.testing.assert_allclose(a, b)


def test_grad_refuses_a_non_scalar_output():
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor"):
        df.grad(lambda x: x * 2)(dl.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        df.grad(lambda x: x.sum())(dl.ones(3, dtype=dl.int64))
    with pytest.raises(ValueError, match="argnums=2"):
        df.grad(lambda x: x.sum(), argnums=2)(dl.ones(3))


@pytest.mark.parametrize("device", DEVICES)
def test_vjp_and_jvp_match_torch(device):
    xd, xt = _both(3, 4, device=device)
    yd, yt = _both(4, 2, seed=1, device=device)
    outd, fnd = df.vjp(f_vector(dl), xd, yd)
    outt, fnt = tf.vjp(f_vector(torch), xt, yt)
    _close(outd, outt)
    ctd, ctt = _both(3, 2, seed=4, device=device), None
    ct2d, ct2t = _both(3, seed=5, device=device)
    ctd, ctt = ctd
    _close(fnd((ctd, ct2d)), fnt((ctt, ct2t)))
    tx, txt = _both(3, 4, seed=6, device=device)
    ty, tyt = _both(4, 2, seed=7, device=device)
    _close(df.jvp(f_vector(dl), (xd, yd), (tx, ty)), tf.jvp(f_vector(torch), (xt, yt), (txt, tyt)))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacrev_jacfwd_and_hessian_match_torch(argnums):
    xd, xt = _both(3, 4)
    yd, yt = _both(4, 2, seed=1)
    _close(df.jacrev(f_vector(dl), argnums)(xd, yd), tf.jacrev(f_vector(torch), argnums)(xt, yt))
    _close(df.jacfwd(f_vector(dl), argnums)(xd, yd), tf.jacfwd(f_vector(torch), argnums)(xt, yt))
    zd, zt = _both(3, 4, seed=2)
    _close(df.hessian(f_scalar(dl), argnums)(xd, zd), tf.hessian(f_scalar(torch), argnums)(xt, zt))


def test_vmap_in_dims_out_dims_and_nesting_match_torch():
    xd, xt = _both(5, 3)
    yd, yt = _both(3, 5, seed=1)
    cases = [
        (lambda L: lambda a, b: a * b.sum(), (0, 1), 0),
        (lambda L: lambda a, b: (a + b, a.sum()), (0, 1), (1, 0)),
        (lambda L: lambda a, b: a @ b, (0, None), 0),
        (lambda L: lambda a, b: {"s": a.sin(), "c": b}, (0, None), 0),
    ]
    for make, in_dims, out_dims in cases:
        d = df.vmap(make(dl), in_dims, out_dims)(xd, yd)
        t = tf.vmap(make(torch), in_dims, out_dims)(xt, yt)
        _close(d, t)
    # nested: an outer product by two vmaps, and kwargs stay unmapped
    d = df.vmap(df.vmap(lambda a, b, scale: a * b * scale, (None, 0)), (0, None))(
        xd[:, 0], yd[0], scale=2.0
    )
    t = tf.vmap(tf.vmap(lambda a, b, scale: a * b * scale, (None, 0)), (0, None))(
        xt[:, 0], yt[0], scale=2.0
    )
    _close(d, t)


def test_per_sample_gradients_with_vmap_grad_and_functional_call():
    """torch's recipe: vmap(grad(loss of functional_call)) over the batch."""
    res = {}
    for L, F in ((dl, df), (torch, tf)):
        L.manual_seed(0)
        model = L.nn.Sequential(L.nn.Linear(4, 3), L.nn.Tanh(), L.nn.Linear(3, 2)).double()
        with L.no_grad():
            for k, p in enumerate(model.parameters()):
                p.copy_(L.tensor(rng(10 + k).standard_normal(tuple(p.shape))))
        params = {k: v.detach() for k, v in model.named_parameters()}
        x = L.tensor(rng(1).standard_normal((6, 4)))
        y = L.tensor([0, 1, 1, 0, 1, 0])

        def loss(p, xi, yi, model=model, L=L, F=F):
            out = F.functional_call(model, p, (xi[None],))
            return L.nn.functional.cross_entropy(out, yi[None])

        res[L.__name__] = F.vmap(F.grad(loss), (None, 0, 0))(params, x, y)
    _close(res["darklib"], res["torch"])
    assert res["darklib"]["0.weight"].shape == (6, 3, 4)


def test_vmap_randomness_modes():
    x = dl.ones(4, 50)
    for L, F in ((dl, df), (torch, tf)):
        with pytest.raises(RuntimeError, match="randomness"):
            F.vmap(lambda a, L=L: L.nn.functional.dropout(a, 0.5))(L.ones(4, 50))
    same = df.vmap(lambda a: dl.nn.functional.dropout(a, 0.5), randomness="same")(x)
    assert all(np.array_equal(same[0].numpy(), same[i].numpy()) for i in range(4))
    diff = df.vmap(lambda a: dl.nn.functional.dropout(a, 0.5), randomness="different")(x)
    assert not all(np.array_equal(diff[0].numpy(), diff[i].numpy()) for i in range(4))
    dl.nn.functional.dropout(x, 0.5)  # outside vmap: allowed again


def test_vmap_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"same size in the mapped dimension, got sizes \[3, 4\]"):
        df.vmap(lambda a, b: a + b)(dl.ones(3), dl.ones(4))
    with pytest.raises(ValueError, match="in_dim=2"):
        df.vmap(lambda a: a, 2)(dl.ones(3, 2))
    with pytest.raises(TypeError, match="func must only return Tensors"):
        df.vmap(lambda a: 1.0)(dl.ones(3))
    with pytest.raises(ValueError, match="at least one input"):
        df.vmap(lambda a: a, None)(dl.ones(3))
    with pytest.raises(ValueError, match="randomness"):
        df.vmap(lambda a: a, randomness="sometimes")


def test_jvp_and_jacrev_of_an_output_that_does_not_depend_on_the_input():
    res = {}
    for L, F in ((dl, df), (torch, tf)):
        x, t = L.tensor([1.0, 2.0]), L.tensor([0.5, 1.0])
        res[L.__name__] = (
            F.jvp(lambda a, L=L: (a * 2, L.ones(2)), (x,), (t,)),
            F.jacrev(lambda a, L=L: (a**2, L.ones(3)))(x),
        )
    _close(res["darklib"], res["torch"])


def test_vmap_same_randomness_moves_the_streams_on_and_covers_every_generator():
    a = df.vmap(lambda x: dl.nn.functional.dropout(x, 0.5), randomness="same")(dl.ones(3, 64))
    b = df.vmap(lambda x: dl.nn.functional.dropout(x, 0.5), randomness="same")(dl.ones(3, 64))
    assert all(np.array_equal(a[0].numpy(), a[i].numpy()) for i in range(3))
    assert not np.array_equal(a.numpy(), b.numpy())  # a second call draws anew
    g = dl.Generator().manual_seed(1)
    r = df.vmap(lambda x: x + dl.rand(3, generator=g), randomness="same")(dl.zeros(2, 3))
    np.testing.assert_array_equal(r[0].numpy(), r[1].numpy())


def test_vmap_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match="modified in place"):
        df.vmap(lambda x, y: y.add_(x), in_dims=(0, None))(dl.ones(4, 3), dl.zeros(3))
    with pytest.raises(RuntimeError, match="out_dims is None"):
        df.vmap(lambda x: x * 2, out_dims=None)(dl.arange(6.0).reshape(2, 3))
    same = df.vmap(lambda x: dl.ones(2), out_dims=None)(dl.ones(3, 1))
    assert tuple(same.shape) == (2,)


def test_jvp_with_an_integer_output_and_functional_call_with_params_and_buffers():
    res = {}
    for L, F in ((dl, df), (torch, tf)):
        jv = F.jvp(lambda a, L=L: (a * 2, a.argmax()), (L.ones(3),), (L.ones(3),))[1]
        L.manual_seed(0)
        m = L.nn.Sequential(L.nn.Linear(4, 3), L.nn.BatchNorm1d(3)).double()
        with L.no_grad():
            for k, p in enumerate(m.parameters()):
                p.copy_(L.tensor(rng(k).standard_normal(tuple(p.shape))))
        p = dict(m.named_parameters())
        b = {k: v.clone() for k, v in m.named_buffers()}
        x = L.tensor(rng(9).standard_normal((5, 4)))
        res[L.__name__] = (jv, F.functional_call(m, (p, b), (x,)))
        with pytest.raises(ValueError, match="multiple dictionaries"):
            F.functional_call(m, (p, p), (x,))
    _close(res["darklib"], res["torch"])


def test_an_ensemble_through_stack_module_state_vmap_and_functional_call():
    res = {}
    for L, F in ((dl, df), (torch, tf)):
        models = []
        for k in range(3):
            m = L.nn.Linear(2, 3).double()
            with L.no_grad():
                m.weight.copy_(L.tensor(rng(k).standard_normal((3, 2))))
                m.bias.copy_(L.tensor(rng(10 + k).standard_normal(3)))
            models.append(m)
        params, buffers = F.stack_module_state(models)
        assert all(p.is_leaf and p.requires_grad for p in params.values())
        x = L.tensor(rng(5).standard_normal((4, 2)))

        def run(p, b, x, m=models[0], F=F):
            return F.functional_call(m, (p, b), (x,))

        out = F.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
        out.sum().backward()
        res[L.__name__] = (out, params["weight"].grad)
    _close(res["darklib"], res["torch"])
    with pytest.raises(RuntimeError, match="at least one model"):
        df.stack_module_state([])
    with dl.device("cpu"):
        assert dl.zeros(1).device.type == "cpu"


def test_vmap_over_grad_outputs_of_a_graph_built_outside_frees_it_once_like_torch():
    # the Jacobian by rows: torch's vmap makes one batched backward through y's graph;
    # darklib's per-entry calls must keep it until the last entry, then free it
    x_np = np.array([0.5, -1.0, 2.0])
    rows = []
    for m in (torch, dl):
        x = m.tensor(x_np, requires_grad=True)
        y = x.sin() * x
        (jac,) = m.vmap(lambda v, y=y, x=x, m=m: m.autograd.grad(y, x, v))(m.eye(3).double())
        rows.append(jac.detach().numpy())
        with pytest.raises(RuntimeError, match="second time"):  # freed after the call
            y.sum().backward()
    np.testing.assert_allclose(rows[1], rows[0], rtol=1e-12)
    np.testing.assert_allclose(np.diag(rows[1]), np.cos(x_np) * x_np + np.sin(x_np))
