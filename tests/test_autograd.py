"""The autograd engine: graph semantics, grad modes, hooks, errors learners meet."""

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.autograd import Function
from tests.oracle import DEVICES


def test_gradients_accumulate_across_backward_calls():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(dl.ones(2))
    (x * 3).backward(dl.ones(2))
    assert x.grad.tolist() == [5.0, 7.0]


def test_diamond_graph_sums_all_paths_like_torch():
    def f(lib, x):
        a = x * 2
        b = a * a
        c = a + b
        return (c * a + b) / (a + 1)

    xs = np.array([0.5, -1.5, 2.0], np.float32)
    x = dl.tensor(xs, requires_grad=True)
    tx = torch.tensor(xs, requires_grad=True)
    f(dl, x).backward(dl.ones(3))
    f(torch, tx).backward(torch.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


def test_same_tensor_used_twice_in_one_op():
    x = dl.tensor([3.0], requires_grad=True)
    (x * x).backward(dl.ones(1))
    assert x.grad.tolist() == [6.0]


def test_broadcast_gradients_are_summed_to_input_shape():
    a = dl.ones(2, 3, requires_grad=True)
    b = dl.ones(3, requires_grad=True)
    c = dl.ones(2, 1, requires_grad=True)
    s = dl.tensor(2.0, requires_grad=True)
    (a * b + c * s).backward(dl.ones(2, 3))
    assert b.grad.shape == (3,) and b.grad.tolist() == [2.0] * 3
    assert c.grad.shape == (2, 1) and c.grad.tolist() == [[6.0], [6.0]]
    assert s.grad.shape == () and s.grad.item() == 6.0


def test_backward_on_non_scalar_needs_a_gradient():
    x = dl.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(3,\)"):
        (x * 2).backward()
    with pytest.raises(
        RuntimeError, match=r"gradient has shape \(2,\) but the output has shape \(3,\)"
    ):
        (x * 2).backward(dl.ones(2))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (dl.ones(1) * 2).backward()


def test_second_backward_through_freed_graph_raises_unless_retained():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).exp()
    y.backward(dl.ones(2), retain_graph=True)
    y.backward(dl.ones(2))
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * xs_exp(x), rtol=1e-6)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(dl.ones(2))


def xs_exp(x):
    a = x.detach().numpy()
    return a * np.exp(a * a)


def test_graph_without_saved_values_can_be_walked_twice_like_torch():
    x = dl.tensor([1.0], requires_grad=True)
    y = x + 1
    y.backward(dl.ones(1))
    y.backward(dl.ones(1))
    assert x.grad.tolist() == [2.0]


def test_no_grad_and_enable_grad_as_context_and_decorator():
    x = dl.tensor([1.0], requires_grad=True)
    with dl.no_grad():
        y = x * 2
        assert not dl.is_grad_enabled()
        with dl.enable_grad():
            z = x * 2
    assert dl.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @dl.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad and dl.is_grad_enabled()
    with dl.set_grad_enabled(False):
        assert not (x * 1).requires_grad
    assert dl.is_grad_enabled()


def test_grad_mode_is_per_thread():
    import threading

    seen = []
    with dl.no_grad():
        t = threading.Thread(target=lambda: seen.append(dl.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_autograd_grad_returns_gradients_without_touching_dot_grad():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    w = dl.tensor([3.0, 4.0], requires_grad=True)
    h = x * w
    y = h * h
    gx, gh = dl.autograd.grad(y, [x, h], grad_outputs=dl.ones(2), retain_graph=True)
    assert gx.tolist() == [2 * 9 * 1.0, 2 * 16 * 2.0]
    assert gh.tolist() == [6.0, 16.0]
    assert x.grad is None and w.grad is None
    unused = dl.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        dl.autograd.grad(y, [unused], grad_outputs=dl.ones(2), retain_graph=True)
    (g,) = dl.autograd.grad(y, [unused], grad_outputs=dl.ones(2), allow_unused=True)
    assert g is None


def test_backward_inputs_restricts_accumulation():
    x = dl.tensor([1.0], requires_grad=True)
    w = dl.tensor([2.0], requires_grad=True)
    (x * w).backward(dl.ones(1), inputs=[x])
    assert x.grad.tolist() == [2.0] and w.grad is None


def test_hooks_and_retain_grad():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    h = x * 3
    h.retain_grad()
    remove = h.register_hook(lambda g: g * 10)
    (h * h).backward(dl.ones(2))
    assert h.grad.tolist() == [60.0, 120.0]  # retained grad is the one after the hook
    assert seen == [[180.0, 360.0]]
    assert x.grad.tolist() == [180.0, 360.0]
    remove()


def test_requires_grad_propagates_and_leaf_rules():
    a = dl.ones(2)
    b = dl.ones(2, requires_grad=True)
    c = a * b
    assert c.requires_grad and not c.is_leaf and a.is_leaf
    assert not (a * 2).requires_grad
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        c.requires_grad_(False)
    a.requires_grad_()
    assert a.requires_grad
    d = c.detach()
    assert d.is_leaf and not d.requires_grad


def test_inplace_on_leaf_requiring_grad_is_refused():
    w = dl.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad.*no_grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="leaf tensor"):
        w -= 1


def test_inplace_change_of_a_saved_tensor_is_detected():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * y  # saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation.*MulBackward"):
        z.backward(dl.ones(2))


def test_inplace_on_non_leaf_is_differentiable():
    xs = np.array([1.0, -2.0, 3.0], np.float32)
    x, tx = dl.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
    for lib, t in ((dl, x), (torch, tx)):
        y = t * 2
        y.mul_(t)
        y.add_(t, alpha=3)
        y.clamp_(min=-5.0)
        y.backward(lib.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_deep_graph_has_no_recursion_limit():
    x = dl.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0
    y.backward(dl.ones(1))
    assert x.grad.tolist() == [1.0]


def test_custom_function_like_torch():
    class Cube(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a**3

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 3 * a**2 * g

    x = dl.tensor([2.0], requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn.name() == "CubeBackward"
    y.backward(dl.ones(1))
    assert x.grad.tolist() == [12.0]


def test_grad_dtype_matches_the_leaf():
    x = dl.tensor([1.0], dtype=dl.float64, requires_grad=True)
    (x * 2).backward(dl.ones(1, dtype=dl.float64))
    assert x.grad.dtype == dl.float64


def test_gradient_reaching_a_node_has_its_output_dtype_like_torch():
    """A backward that returns a wider gradient (float64 for a float32 input) must not
    turn the rest of the backward pass into float64: the engine casts it, as torch does."""
    seen = []

    class Record(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            seen.append(g.dtype)
            return g * 2

    class Widen(Function):
        @staticmethod
        def forward(ctx, a):
            return a.clone()

        @staticmethod
        def backward(ctx, g):
            return g.double()

    x = dl.ones(3, requires_grad=True)
    Widen.apply(Record.apply(x)).sum().backward()
    assert seen == [dl.float32]
    assert x.grad.dtype == dl.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_setting_requires_grad_checks_like_torch():
    x = dl.arange(3)
    with pytest.raises(RuntimeError, match="floating-point"):
        x.requires_grad = True
    assert not x.requires_grad
    y = dl.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="leaf tensors"):
        y.requires_grad = True  # any value, as in torch (the method requires_grad_() is fine)
    y.requires_grad_(True)
    z = dl.ones(2)
    z.requires_grad = True
    (z * z).sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [2, 2])
    z.requires_grad = False
    assert not (z * 2).requires_grad


@pytest.mark.parametrize("op", ["lt_", "ge_", "eq_", "logical_and_", "logical_not_"])
def test_in_place_comparison_keeps_the_tensor_in_the_graph_with_zero_gradient(op):
    # as torch's LtBackward0...: the result still requires grad and no gradient flows back
    # through it; a view changed that way keeps its base's graph. (torch's logical_*_ keep
    # the tensor's old grad_fn instead, passing the old value's gradient through the new
    # one: darklib gives them the comparisons' zero gradient, checked against the same
    # expression with the changed values as constants)
    a = np.array([-1.0, 0.0, 2.0, np.nan], np.float32)
    other = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    args = () if op == "logical_not_" else (other,)
    x = dl.tensor(a, requires_grad=True)
    y = x * 2
    getattr(y, op)(*(dl.tensor(v) for v in args))
    assert y.requires_grad and y.grad_fn is not None
    z = x * 3
    getattr(z[1:], op)(*(dl.tensor(v[1:]) for v in args))
    ((y + z) * x).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    ty = getattr(t.detach() * 2, op)(*(torch.tensor(v) for v in args))
    tz = t.detach() * 3
    getattr(tz[1:], op)(*(torch.tensor(v[1:]) for v in args))
    tz = torch.cat([t[:1] * 3, tz[1:]])
    ((ty + tz) * t).sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), ty.numpy())
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), equal_nan=True)
    if not op.startswith("logical"):  # the same graph as torch's
        t2 = torch.tensor(a, requires_grad=True)
        ty2 = t2 * 2
        getattr(ty2, op)(*(torch.tensor(v) for v in args))
        tz2 = t2 * 3
        getattr(tz2[1:], op)(*(torch.tensor(v[1:]) for v in args))
        ((ty2 + tz2) * t2).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t2.grad.numpy(), equal_nan=True)


def test_in_place_comparison_with_an_operand_that_requires_grad_and_long_names():
    # the operand joins the graph too (zero gradient), as torch; torch's long names exist
    grads = []
    for lib in (dl, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([1.5, 1.5], requires_grad=True)
        y = x * 1
        y.lt_(w)
        z = lib.tensor([1.0, 2.0])
        z.greater_equal_(w)
        assert z.requires_grad
        grads.append([g.numpy() for g in lib.autograd.grad((y + z).sum(), [x, w])])
        assert lib.tensor([1.0, 3.0]).less_(2.0).tolist() == [1.0, 0.0]
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="expected a tensor operand, got float and float"):
        dl.add(2.0, 3.0)


_SAVED_OUTPUT_OPS = [
    "pow2", "log1p", "log2", "log10", "asin", "acos", "atan", "sinh", "cosh", "asinh",
    "atanh", "erf", "erfc", "erfinv", "frac", "lgamma", "digamma", "sinc", "i0",
    "special.ndtr", "special.log_ndtr", "special.entr", "rsqrt",
    # these save their output in torch too: changing it in place must raise
    "exp", "expm1", "tan", "tanh", "sigmoid", "special.erfcx", "special.i0e", "special.ndtri",
]  # fmt: skip


def _unary_of(m, name):
    if name == "pow2":
        return lambda x: x**2
    for part in name.split(".")[:-1]:
        m = getattr(m, part)
    return getattr(m, name.split(".")[-1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", _SAVED_OUTPUT_OPS)
def test_in_place_change_of_an_output_before_backward_as_torch(name, device):
    """An op saves what its derivative reads, as torch: ``y = x ** 2; y += 1`` then
    backward is fine (the gradient reads x), ``y = x.exp(); y += 1`` raises (it reads y)."""
    v = np.array([0.2, 0.5, 0.7])
    res = {}
    for m in (torch, dl):
        kw = {"device": device} if m is dl else {}
        x = m.tensor(v, requires_grad=True, **kw)
        y = _unary_of(m, name)(x * 1.0)
        y += 1
        try:
            y.sum().backward()
            res[m.__name__] = x.grad.cpu().numpy()
        except RuntimeError as e:
            assert m is torch or "modified by an in-place operation" in str(e)
            res[m.__name__] = "raises"
    if isinstance(res["darklib"], str):
        assert isinstance(res["torch"], str), "darklib refuses what torch allows"
        return
    # darklib may allow what torch refuses (log_ndtr, rsqrt save the input): the gradient
    # must then be the true one, that of the unchanged graph
    xt = torch.tensor(v, requires_grad=True)
    _unary_of(torch, name)(xt * 1.0).sum().backward()
    np.testing.assert_allclose(res["darklib"], xt.grad.numpy(), rtol=1e-6)


_VIEW_SAVERS = {
    "prod": lambda m, x, w: x.prod(1),
    "norm": lambda m, x, w: x.norm(dim=1),
    "amax": lambda m, x, w: x.amax(1),
    "amin": lambda m, x, w: x.amin(1),
    "max": lambda m, x, w: x.max(),
    "logsumexp": lambda m, x, w: x.logsumexp(1),
    "vector_norm": lambda m, x, w: m.linalg.vector_norm(x, dim=1),
    "dist": lambda m, x, w: m.dist(x[0], x[1]),
    "cdist": lambda m, x, w: m.cdist(x, x * 0.5),
    "dot": lambda m, x, w: m.dot(x[0], w),
    "mv": lambda m, x, w: m.mv(x, w),
    "matmul_vec": lambda m, x, w: x @ w,
    "linear_3d": lambda m, x, w: m.nn.functional.linear(x[None], w[None]).reshape(-1),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(_VIEW_SAVERS))
def test_saved_views_of_inputs_and_outputs_are_guarded(name, device):
    """Ops that save a view of an input (a vector as a one-row matrix) or the array their
    output is a view of (a keepdim result): changing it in place before backward raises,
    as torch, instead of a silently wrong gradient."""
    xv, wv = np.array([[0.5, 1.5, 2.0], [3.0, 1.0, 2.0]]), np.array([1.0, 2.0, 3.0])
    for m in (torch, dl):
        kw = {"device": device} if m is dl else {}
        x = m.tensor(xv, requires_grad=True, **kw)
        w = m.tensor(wv, requires_grad=True, **kw)
        xi, wi = x * 1.0, w * 1.0  # (non-leaves: they may change in place)
        y = _VIEW_SAVERS[name](m, xi, wi)
        with pytest.raises(RuntimeError, match=r"in-place|inplace"):
            if name in ("dot", "mv", "matmul_vec", "linear_3d"):
                xi.mul_(10)
                wi.mul_(10)
            else:
                y.view(-1).mul_(2)
            y.sum().backward()
