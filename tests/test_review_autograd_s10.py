"""Autograd fixes from the session-10 probe against torch: leaves switched off after the
forward, hooks of leaves outside autograd.grad's inputs, torch's argument checks, the
positional order of autograd.backward, vjp, hook-list snapshots, the timing of leaf hooks,
once_differentiable under create_graph, and the missing API (checkpoint, inference_mode,
Variable, clone of grad modes)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import darklib as dl

torch = pytest.importorskip("torch")

LIBS = [dl, torch]


def _np(t):
    if t is None:
        return None
    return t.detach().numpy()


# ------------------------------------------------------------ 1. requires_grad switched off


@pytest.mark.parametrize("how", ["requires_grad_", "detach_"])
@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_leaf_switched_off_after_forward_gets_no_grad_but_hooks_run(L, how):
    calls = []
    x = L.ones(2, requires_grad=True)
    w = L.ones(2, requires_grad=True)
    x.register_hook(lambda g: calls.append("hook"))
    x.register_post_accumulate_grad_hook(lambda t: calls.append("post"))
    y = (x * w * 3).sum()
    x.requires_grad_(False) if how == "requires_grad_" else x.detach_()
    y.backward()
    assert x.grad is None
    np.testing.assert_allclose(_np(w.grad), [3.0, 3.0])
    assert calls == ["hook", "post"]  # (torch runs them all the same)


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_parameter_switched_off_after_forward(L):
    w = L.nn.Parameter(L.ones(2))
    v = L.nn.Parameter(L.ones(2))
    loss = (w * v).sum()
    w.requires_grad = False
    loss.backward()
    assert w.grad is None
    np.testing.assert_allclose(_np(v.grad), [1.0, 1.0])


# ------------------------------------------------------------ 2. hooks of unrequested leaves


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_grad_does_not_run_hooks_of_leaves_not_asked_for(L):
    calls = []
    x = L.ones(2, requires_grad=True)
    w = L.ones(2, requires_grad=True)
    w.register_hook(lambda g: calls.append("w hook"))
    w.register_post_accumulate_grad_hook(lambda t: calls.append("w post"))
    x.register_hook(lambda g: calls.append("x hook"))
    (gx,) = L.autograd.grad((x * w).sum(), x)
    np.testing.assert_allclose(_np(gx), [1.0, 1.0])
    assert calls == ["x hook"]
    assert w.grad is None


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_backward_inputs_does_not_run_hooks_of_other_leaves(L):
    calls = []
    x = L.ones(2, requires_grad=True)
    w = L.ones(2, requires_grad=True)
    w.register_hook(lambda g: calls.append("w hook"))
    (x * w).sum().backward(inputs=[x])
    assert calls == []
    assert w.grad is None
    np.testing.assert_allclose(_np(x.grad), [1.0, 1.0])


# ------------------------------------------------------------ 3. argument checks


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_grad_with_empty_inputs_raises(L):
    x = L.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="`inputs` argument to `grad\\(\\)` cannot be empty"):
        L.autograd.grad((x * 2).sum(), [])


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
@pytest.mark.parametrize(
    "given, name",
    [([2.0], "float"), ([np.float32(2.0)], "float32"), ([np.ones(())], "ndarray")],
)
def test_grad_outputs_must_be_tensors(L, given, name):
    x = L.ones(2, requires_grad=True)
    with pytest.raises(
        TypeError, match=f"gradients can be either Tensors or None, but got {name}$"
    ):
        L.autograd.grad([(x**2).sum()], [x], given)


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_backward_gradient_numpy_raises_type_error(L):
    x = L.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match="gradients can be either Tensors or None, but got float32"):
        (x * 2).backward(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="gradients can be either Tensors or None, but got float"):
        L.autograd.backward([(x * 2).sum()], [1.0])


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
@pytest.mark.parametrize("value, name", [(0, "int"), ("no", "str"), (np.bool_(True), "numpy.bool")])
def test_set_grad_enabled_refuses_non_bools(L, value, name):
    try:
        with pytest.raises(
            TypeError, match=f"argument 'enabled' \\(position 1\\) must be bool, not {name}"
        ):
            L.set_grad_enabled(value)
        assert L.is_grad_enabled()
    finally:
        L.set_grad_enabled(True)


# ------------------------------------------------------------ 4. autograd.backward's order


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_autograd_backward_positional_order_is_torchs(L):
    x = L.tensor([1.0, 2.0], requires_grad=True)
    y = (x**3).sum()
    # (tensors, grad_tensors, retain_graph, create_graph)
    L.autograd.backward(y, None, None, True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(_np(x.grad), [3.0, 12.0])


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_autograd_backward_grad_variables_is_deprecated_but_works(L):
    x = L.ones(2, requires_grad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        L.autograd.backward([x * 3], grad_variables=[L.tensor([1.0, 2.0])])
    assert any("grad_variables" in str(m.message) for m in w)
    np.testing.assert_allclose(_np(x.grad), [3.0, 6.0])


def test_tensor_backward_keeps_working_through_the_new_order():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    w = dl.tensor([1.0, 1.0], requires_grad=True)
    (x**3 * w).sum().backward(None, None, True, [x])
    assert x.grad.requires_grad and w.grad is None
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0, 12.0])


# ------------------------------------------------------------ 5. vjp / no backward


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_custom_function_vjp_is_backward(L):
    class F(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def vjp(ctx, g):
            return g * 5

    x = L.ones(2, requires_grad=True)
    F.apply(x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [5.0, 5.0])


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_custom_function_without_backward_says_so(L):
    class F(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="You must implement either the backward or vjp"):
        F.apply(L.ones(2, requires_grad=True)).sum().backward()


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_custom_function_with_backward_and_vjp_raises(L):
    class F(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

        @staticmethod
        def vjp(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="Implementing both 'backward' and 'vjp'"):
        F.apply(L.ones(2, requires_grad=True)).sum().backward()


# ------------------------------------------------------------ 6. hook list snapshot


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
@pytest.mark.parametrize("leaf", [False, True])
def test_hook_removed_by_an_earlier_hook_still_runs_this_time(L, leaf):
    calls = []
    x = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x if leaf else x * 2
    handles = []

    def h1(g):
        calls.append("h1")
        handles[1].remove()

    handles.append(y.register_hook(h1))
    handles.append(y.register_hook(lambda g: calls.append("h2")))
    (y * 1).sum().backward(retain_graph=True)
    assert calls == ["h1", "h2"]
    (y * 1).sum().backward()
    assert calls == ["h1", "h2", "h1"]


# ------------------------------------------------------------ 7. leaf hook timing


def _mlp(L):
    L.manual_seed(0)
    return L.nn.Sequential(L.nn.Linear(3, 4), L.nn.Tanh(), L.nn.Linear(4, 1))


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_post_accumulate_hook_runs_before_earlier_layers_have_grads(L):
    net = _mlp(L)
    ps = list(net.parameters())
    seen = []
    ps[-1].register_post_accumulate_grad_hook(
        lambda t: seen.append([p.grad is not None for p in ps])
    )
    net(L.ones(2, 3)).sum().backward()
    assert seen and seen[0][:2] == [False, False] and seen[0][3]


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_optimizer_step_in_post_accumulate_hook(L):
    """The per-parameter optimizer pattern: each step runs as soon as that parameter's
    gradient is complete (the same final weights as one step after backward)."""
    net = _mlp(L)
    order = []
    opts = {}
    for n, p in net.named_parameters():
        opts[p] = L.optim.SGD([p], lr=0.1)

        def step(t, n=n):
            order.append(n)
            opts[t].step()
            opts[t].zero_grad()

        p.register_post_accumulate_grad_hook(step)
    x = L.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    net(x).sum().backward()
    assert {o[0] for o in order[:2]} == {"2"} and {o[0] for o in order[2:]} == {"0"}
    ref = _mlp(L)
    (ref(x).sum()).backward()
    with L.no_grad():
        for p, q in zip(net.parameters(), ref.parameters()):
            np.testing.assert_allclose(_np(p), _np(q - 0.1 * q.grad), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_leaf_hook_gets_summed_gradient_once_even_with_none_edges(L):
    class Half(L.autograd.Function):  # a backward that gives the second input None
        @staticmethod
        def forward(ctx, a, b):
            return a * 2 + b

        @staticmethod
        def backward(ctx, g):
            return g * 2, None

    calls = []
    x = L.ones(2, requires_grad=True)
    x.register_hook(lambda g: calls.append(_np(g).copy()))
    y = Half.apply(x * 3, x) + x.sin()
    y.sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], 6 + np.cos(1.0) * np.ones(2), rtol=1e-6)
    np.testing.assert_allclose(_np(x.grad), calls[0], rtol=1e-6)


# ------------------------------------------------------------ 8. once_differentiable


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_once_differentiable_with_create_graph(L):
    class F(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @L.autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    x = L.ones(2, requires_grad=True)
    (g,) = L.autograd.grad(F.apply(x).sum(), x, create_graph=True)
    assert not g.requires_grad  # the incoming gradient did not require grad
    (g2,) = L.autograd.grad((F.apply(x) ** 2).sum(), x, create_graph=True)
    assert g2.requires_grad  # it did: differentiating again is the error
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g2.sum().backward()


# ------------------------------------------------------------ 9. checkpoint and API


def _ckpt(L):
    import importlib

    return importlib.import_module(L.__name__ + ".utils.checkpoint")


def _block_net(L):
    L.manual_seed(0)
    return L.nn.Sequential(
        L.nn.Linear(4, 8),
        L.nn.Tanh(),
        L.nn.Dropout(0.5),
        L.nn.Linear(8, 8),
        L.nn.Tanh(),
        L.nn.Linear(8, 2),
    )


def _grads(net, x):
    return [_np(p.grad) for p in net.parameters()] + [_np(x.grad)]


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpoint_gradients_equal_plain_ones_with_dropout(reentrant):
    data = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    results = {}
    for ck in (False, True):
        net = _block_net(dl)
        x = dl.tensor(data, requires_grad=True)
        dl.manual_seed(5)

        def first(t, net=net):  # (dropout inside)
            return net[2](net[1](net[0](t)))

        h = _ckpt(dl).checkpoint(first, x, use_reentrant=reentrant) if ck else first(x)
        out = net[5](net[4](net[3](h)))
        (out**2).sum().backward()
        results[ck] = (_np(out), _grads(net, x), dl.rand(3).numpy())
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-6)
    for a, b in zip(results[True][1], results[False][1]):
        assert a is not None
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the random stream goes on as without checkpointing
    np.testing.assert_array_equal(results[True][2], results[False][2])


def test_checkpoint_against_torch():
    got = []
    for L in LIBS:
        L.manual_seed(0)
        lin = L.nn.Linear(3, 3)
        with L.no_grad():
            lin.weight.copy_(L.tensor(np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3)))
            lin.bias.copy_(L.tensor([0.1, -0.2, 0.3]))
        x = L.tensor(np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
        s = L.tensor(2.0)

        def f(a, scale, k=1.0, lin=lin):
            h = lin(a).tanh() * scale
            return h * k, h.sum()

        h, tot = _ckpt(L).checkpoint(f, x, s, use_reentrant=False, k=3.0)
        ((h**2).sum() + tot).backward()
        got.append([_np(h), _np(x.grad), _np(lin.weight.grad), _np(lin.bias.grad)])
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_checkpoint_works_with_autograd_grad_and_create_graph():
    lin = dl.nn.Linear(3, 2)
    x = dl.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)

    def f(a):
        return (lin(a) ** 3).sum()

    y = _ckpt(dl).checkpoint(f, x, use_reentrant=False)
    gx, gw = dl.autograd.grad(y, [x, lin.weight], create_graph=True)
    assert lin.weight.grad is None  # grad() leaves .grad alone
    (hx,) = dl.autograd.grad(gx.sum(), x)
    y2 = f(x)
    rx, rw = dl.autograd.grad(y2, [x, lin.weight], create_graph=True)
    (rhx,) = dl.autograd.grad(rx.sum(), x)
    np.testing.assert_allclose(gx.detach().numpy(), rx.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(gw.detach().numpy(), rw.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(hx.numpy(), rhx.numpy(), rtol=1e-5)


def test_checkpoint_runs_parameter_hooks_once():
    lin = dl.nn.Linear(3, 2)
    calls = []
    lin.weight.register_hook(lambda g: calls.append("w"))
    x = dl.ones(2, 3, requires_grad=True)
    _ckpt(dl).checkpoint(lambda a: lin(a).sum(), x, use_reentrant=False).backward()
    assert calls == ["w"]


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_checkpoint_reentrant_rules(L):
    cp = _ckpt(L)
    lin = L.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="Unexpected keyword arguments"):
        cp.checkpoint(lambda a, k: a * k, L.ones(2), use_reentrant=True, k=2)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        y = cp.checkpoint(lin, L.ones(1, 2), use_reentrant=True)
    assert not y.requires_grad  # no input requires grad: torch's reentrant variant
    with pytest.warns(UserWarning, match="use_reentrant"):
        cp.checkpoint(lin, L.ones(1, 2, requires_grad=True))


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_checkpoint_sequential_matches_plain(L):
    data = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    got = []
    for ck in (False, True):
        L.manual_seed(0)
        net = L.nn.Sequential(*[L.nn.Linear(4, 4) if i % 2 == 0 else L.nn.Tanh() for i in range(6)])
        x = L.tensor(data, requires_grad=True)
        cp = _ckpt(L)
        out = cp.checkpoint_sequential(net, 2, x, use_reentrant=False) if ck else net(x)
        out.sum().backward()
        got.append([_np(x.grad)] + [_np(p.grad) for p in net.parameters()])
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("L", LIBS, ids=["dl", "torch"])
def test_grad_mode_api(L):
    assert L.autograd.inference_mode is L.inference_mode
    v = L.autograd.Variable(L.ones(2), requires_grad=True)
    assert v.requires_grad and isinstance(v, L.Tensor)
    ng = L.no_grad().clone()
    with ng:
        assert not L.is_grad_enabled()
    assert L.is_grad_enabled()
    with L.inference_mode().clone():
        assert L.is_inference_mode_enabled()
    with L.enable_grad().clone():
        assert L.is_grad_enabled()
