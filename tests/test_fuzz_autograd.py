"""Differential tests of darklib's autograd *mechanics* against torch (the oracle).

Two halves: user-defined ``autograd.Function`` subclasses written as PyTorch users write
them (``@staticmethod forward(ctx, ...)`` / ``backward(ctx, *grads)``, saved tensors,
``needs_input_grad``, ctx attributes, non-tensor arguments, gradient counts and shapes, ctx
flags), and the engine around them (retain_graph, ``backward(inputs=)``, ``autograd.grad``
forms, accumulation, hooks, retain_grad, detach, in-place rules, grad modes).

Each check runs the same code against ``torch`` and ``darklib`` (``m`` is the module). Where
torch raises, darklib must raise too (any exception type); where torch returns, darklib
must return the same value. Custom Functions use only operations that NumPy arrays and torch
tensors share (arithmetic, ``reshape``, ``.T``, ``.sum()``), since darklib's Functions see raw
arrays (documented; G-7 pins what that breaks).

Tests marked ``@pytest.mark.xfail(strict=True, reason="G-<n>: ...")`` pin a darklib
discrepancy; the id refers to /tmp/review/autograd_findings.md. When the fix lands the
test passes, strict xfail turns that into a failure, and the marker must go.
Higher-order gradients (create_graph) are tested in test_higher_order.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import darklib as dl

pytestmark = [pytest.mark.usefixtures("one_torch_thread")]

MODS = (torch, dl)


def xfail(gid: str, why: str):
    return pytest.mark.xfail(strict=True, reason=f"{gid}: {why}")


def _outcome(m, fn):
    try:
        return False, fn(m)
    except Exception as e:  # any exception type counts as "raised"
        return True, e


def check(fn):
    """Run ``fn(m)`` for torch and darklib: both raise, or both return equal values."""
    t_raised, t_val = _outcome(torch, fn)
    d_raised, d_val = _outcome(dl, fn)
    if t_raised:
        assert d_raised, f"torch raised {t_val!r}; darklib returned {d_val!r}"
        return d_val
    assert not d_raised, f"darklib raised {d_val!r}; torch returned {t_val!r}"
    assert d_val == t_val, (d_val, t_val)
    return d_val


def R(t, nd=4):
    """A tensor (or None) as a rounded nested list, comparable across the two libraries."""
    if t is None:
        return None
    a = np.asarray((t.detach() if hasattr(t, "detach") else t).tolist(), dtype=np.float64)
    return np.round(a, nd).tolist()


def fn_cls(m, fwd, bwd, name="My", **extra):
    """A custom ``m.autograd.Function`` named ``name`` with the given static methods."""
    ns = {"forward": staticmethod(fwd), "backward": staticmethod(bwd)}
    ns.update({k: staticmethod(v) for k, v in extra.items()})
    return type(name, (m.autograd.Function,), ns)


def scale_fn(m, k=2.0):
    """y = k * x, backward g * k."""
    return fn_cls(m, lambda ctx, x: x * k, lambda ctx, g: g * k)


# ======================================================================== custom Functions


def test_function_save_for_backward_ctx_attrs_and_non_tensor_args():
    def f(m):
        def fwd(ctx, x, k, opt, shape):
            ctx.save_for_backward(x)
            ctx.k, ctx.opt, ctx.shape = k, opt, shape
            return (x * x * k).reshape(shape)

        def bwd(ctx, g):
            (x,) = ctx.saved_tensors
            assert ctx.opt is None and ctx.shape == (2, 2)
            return (g.reshape(4) * 2 * x * ctx.k), None, None, None

        F = fn_cls(m, fwd, bwd, "Quad")
        x = m.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = F.apply(x, 3, None, (2, 2))
        (y * m.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        return R(y), R(x.grad), y.grad_fn.name(), y.is_leaf, y.requires_grad

    got = check(f)
    assert got[2] == "QuadBackward"


def test_function_needs_input_grad_in_forward_and_backward():
    def f(m):
        seen = []

        def fwd(ctx, a, b, n):
            seen.append(tuple(ctx.needs_input_grad))
            return a * b * n

        def bwd(ctx, g):
            seen.append(tuple(ctx.needs_input_grad))
            na, nb, _ = ctx.needs_input_grad
            return (g * 2 if na else None), (g * 3 if nb else None), None

        F = fn_cls(m, fwd, bwd)
        a = m.tensor([1.0], requires_grad=True)
        b = m.tensor([2.0])
        F.apply(a, b, 4).sum().backward()
        F.apply(b, a, 4).sum().backward()
        F.apply(b, b, 4)
        return seen, R(a.grad)

    check(f)


def test_function_needs_input_grad_under_no_grad():
    def f(m):
        seen = []

        def fwd(ctx, a, b):
            seen.append(tuple(ctx.needs_input_grad))
            return a * b

        F = fn_cls(m, fwd, lambda ctx, g: (g, g))
        a = m.tensor([1.0], requires_grad=True)
        with m.no_grad():
            F.apply(a, m.tensor([2.0]))
        return seen

    check(f)


def test_function_none_gradient_for_an_input_that_requires_grad():
    def f(m):
        F = fn_cls(m, lambda ctx, a, b: a * b, lambda ctx, g: (g, None))
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([1.0, 2.0], requires_grad=True)
        F.apply(x, w).sum().backward()
        return R(x.grad), w.grad

    assert check(f) == ([1.0, 1.0], None)


def test_function_backward_returning_only_none():
    def f(m):
        F = fn_cls(m, lambda ctx, a: a * 2, lambda ctx, g: None)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        F.apply(x).sum().backward()
        return x.grad

    assert check(f) is None


def test_function_gradient_for_an_input_that_does_not_require_grad_is_dropped():
    def f(m):
        F = fn_cls(m, lambda ctx, a, b: a * b, lambda ctx, g: (g, g))
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = m.tensor([2.0, 3.0])
        F.apply(x, y).sum().backward()
        return R(x.grad), y.grad

    check(f)


def test_function_extra_trailing_none_gradients_are_accepted():
    def f(m):
        F = fn_cls(m, lambda ctx, a: a * 1, lambda ctx, g: (g, None))
        x = m.tensor([1.0], requires_grad=True)
        F.apply(x).sum().backward()
        return R(x.grad)

    check(f)


def test_function_too_few_gradients_raise():
    def f(m):
        F = fn_cls(m, lambda ctx, a, b: a + b, lambda ctx, g: g)
        a = m.tensor([1.0], requires_grad=True)
        b = m.tensor([1.0], requires_grad=True)
        F.apply(a, b).sum().backward()

    err = check(f)
    assert "MyBackward" in str(err)


def test_function_too_many_gradients_raise():
    def f(m):
        F = fn_cls(m, lambda ctx, a: a * 1, lambda ctx, g: (g, g))
        a = m.tensor([1.0], requires_grad=True)
        F.apply(a).sum().backward()
        return R(a.grad)

    check(f)


def test_function_gradient_for_a_non_tensor_argument_raises():
    def f(m):
        F = fn_cls(m, lambda ctx, a, n: a * n, lambda ctx, g: (g, g))
        x = m.tensor([1.0, -1.0], requires_grad=True)
        F.apply(x, 3).sum().backward()
        return R(x.grad)

    check(f)


def test_function_gradient_that_broadcasts_to_the_input_is_summed():
    def f(m):
        def bwd(ctx, g):
            return (g + g.reshape(1, 2) * 0 + 1) * 1  # (1, 2) for a (2,) input

        F = fn_cls(m, lambda ctx, a: a * 1, bwd)
        a = m.tensor([1.0, 2.0], requires_grad=True)
        F.apply(a).backward(m.tensor([1.0, 2.0]))
        return R(a.grad)

    check(f)


@pytest.mark.parametrize(
    "case",
    [
        "scalar_for_vector",
        "more_elements",
        pytest.param(
            "fewer_dims_same_size",
        ),
    ],
)
def test_function_gradient_of_an_incompatible_shape_raises(case):
    def f(m):
        def bwd(ctx, g):
            if case == "scalar_for_vector":
                return g.sum()
            if case == "more_elements":
                return (g.reshape(2, 1) * g.reshape(1, 2)).reshape(4)[:3]
            return g.reshape(4)

        F = fn_cls(m, lambda ctx, a: a * 1, bwd)
        shape = (2, 2) if case == "fewer_dims_same_size" else (2,)
        a = m.ones(*shape, requires_grad=True)
        F.apply(a).sum().backward()
        return R(a.grad)

    check(f)


def test_function_gradient_of_transposed_shape_raises():
    def f(m):
        F = fn_cls(m, lambda ctx, a: a * 1, lambda ctx, g: g.T * 1)
        a = m.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        F.apply(a).backward(m.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        return R(a.grad)

    check(f)


def test_function_wrong_gradient_shape_error_names_the_function():
    for m in MODS:
        bwd = lambda ctx, g: (g.reshape(2, 1) * g).reshape(4)[:3]
        F = fn_cls(m, lambda ctx, a: a * 1, bwd, "Bad")
        a = m.tensor([1.0, 2.0], requires_grad=True)
        y = F.apply(a * 1)
        with pytest.raises(RuntimeError, match=r"BadBackward.*(shape|size)"):
            y.backward(m.ones(2) if m is torch else dl.ones(2))


def test_function_gradient_of_wider_or_integer_dtype_is_cast_to_the_input():
    def f(m):
        def bwd(ctx, g):
            return (g * 3).long()

        F = fn_cls(m, lambda ctx, a: a * 1, bwd)
        a = m.tensor([1.0, 2.0], requires_grad=True)
        F.apply(a).sum().backward()
        return str(a.grad.dtype).split(".")[-1], R(a.grad)

    check(f)


def test_function_backward_returning_a_python_number_or_list_raises():
    for ret in (2.0, "list"):

        def f(m, ret=ret):
            F = fn_cls(m, lambda ctx, a: a * 1, lambda ctx, g: [g] if ret == "list" else ret)
            a = m.tensor([1.0, 2.0], requires_grad=True)
            F.apply(a).sum().backward()
            return R(a.grad)

        check(f)


def test_function_apply_with_keyword_argument():
    def f(m):
        F = fn_cls(m, lambda ctx, x, scale=2.0: x * scale, lambda ctx, g: (g * 5, None))
        x = m.tensor([1.0], requires_grad=True)
        y = F.apply(x, scale=3.0)
        y.sum().backward()
        return R(y), R(x.grad)

    assert check(f) == ([3.0], [5.0])


def test_function_returning_its_input_unchanged():
    def f(m):
        F = fn_cls(m, lambda ctx, x: x, lambda ctx, g: g * 2)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = F.apply(x)
        flags = (y is x, y.is_leaf, y.grad_fn is not None, y.requires_grad)
        y.sum().backward()
        return flags, R(x.grad)

    assert check(f) == ((False, False, True, True), [2.0, 2.0])


def test_function_under_no_grad_records_nothing():
    def f(m):
        calls = []
        F = fn_cls(m, lambda ctx, x: x * 2, lambda ctx, g: calls.append(1) or g)
        x = m.tensor([1.0], requires_grad=True)
        with m.no_grad():
            y = F.apply(x)
        z = F.apply(m.tensor([1.0]))
        return y.requires_grad, y.grad_fn is None, z.requires_grad, R(y), calls

    assert check(f) == (False, True, False, [2.0], [])


def test_function_nested_inside_a_graph_and_chained():
    def f(m):
        def fwd2(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        def bwd2(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * a * g

        F1 = scale_fn(m, 3.0)
        F2 = fn_cls(m, fwd2, bwd2, "Sq")
        x = m.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = (F2.apply(F1.apply(x.sin()) + 1) * x).sum()
        y.backward()
        return R(y), R(x.grad)

    check(f)


def test_function_same_tensor_passed_twice_accumulates_both_gradients():
    def f(m):
        F = fn_cls(m, lambda ctx, a, b: a * b, lambda ctx, g: (g, g * 2))
        x = m.tensor([1.0, 2.0], requires_grad=True)
        F.apply(x, x).sum().backward()
        return R(x.grad)

    assert check(f) == [3.0, 3.0]


def test_function_output_gets_hooks_and_retain_grad():
    def f(m):
        F = scale_fn(m, 2.0)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = F.apply(x)
        y.retain_grad()
        y.register_hook(lambda g: g + 1)
        (y * 3).sum().backward()
        return R(y.grad), R(x.grad)

    check(f)


def test_function_backward_sees_the_output_dtype_and_input_gets_its_own():
    def f(m):
        seen = []

        def fwd(ctx, x):
            return x.float()

        def bwd(ctx, g):
            seen.append(str(g.dtype).split(".")[-1])
            return g * 2

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([1.0, 2.0], dtype=m.float64, requires_grad=True)
        F.apply(x).sum().backward()
        return seen, str(x.grad.dtype).split(".")[-1], R(x.grad)

    assert check(f) == (["float32"], "float64", [2.0, 2.0])


def test_function_float16_round_trip():
    def f(m):
        F = scale_fn(m, 2.0)
        x = m.tensor([1.0, 2.0], dtype=m.float16, requires_grad=True)
        F.apply(x).sum().backward()
        return str(x.grad.dtype).split(".")[-1], R(x.grad)

    check(f)


def test_function_integer_output_does_not_require_grad():
    def f(m):
        def fwd(ctx, x):
            return (x > 0).long()

        F = fn_cls(m, fwd, lambda ctx, g: g)
        x = m.tensor([1.0, -2.0], requires_grad=True)
        y = F.apply(x)
        return y.tolist(), y.requires_grad

    check(f)


def test_function_saved_tensors_freed_after_backward_unless_retained():
    def f(m, retain):
        def fwd(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        def bwd(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([1.0, -1.0], requires_grad=True)
        y = F.apply(x).sum()
        y.backward(retain_graph=retain)
        y.backward()
        return R(x.grad)

    check(lambda m: f(m, False))
    assert check(lambda m: f(m, True)) == [2.0, -2.0]


def test_function_without_saved_values_runs_backward_twice():
    def f(m):
        def fwd(ctx, x, n):
            ctx.n = n
            return x * n

        F = fn_cls(m, fwd, lambda ctx, g: (g * ctx.n, None))
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = F.apply(x, 4).sum()
        y.backward()
        y.backward()
        return R(x.grad)

    assert check(f) == [8.0, 8.0]


def test_function_ctx_tensor_attribute_survives_backward():
    def f(m):
        def fwd(ctx, x):
            ctx.x = x
            return x * 2

        F = fn_cls(m, fwd, lambda ctx, g: g * ctx.x)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = F.apply(x).sum()
        y.backward()
        y.backward()
        return R(x.grad)

    check(f)


def test_function_saved_input_or_output_changed_in_place_raises():
    def f(m, which):
        def fwd(ctx, x):
            out = x * 2
            ctx.save_for_backward(x if which != "output" else out)
            return out

        def bwd(ctx, g):
            (s,) = ctx.saved_tensors
            return g * s

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([1.0, -1.0], requires_grad=True)
        if which == "leaf_no_grad":
            y = F.apply(x)
            with m.no_grad():
                x.mul_(2)
        else:
            h = x * 1
            y = F.apply(h)
            (h if which == "input" else y).add_(1)
        y.sum().backward()
        return R(x.grad)

    for which in ("input", "output", "leaf_no_grad"):
        err = check(lambda m, w=which: f(m, w))
        assert "MyBackward" in str(err)


def test_function_save_for_backward_with_none():
    def f(m):
        def fwd(ctx, x):
            ctx.save_for_backward(x, None)
            return x * 2

        def bwd(ctx, g):
            _a, b = ctx.saved_tensors
            return g * 2 if b is None else g

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([1.0], requires_grad=True)
        F.apply(x).sum().backward()
        return R(x.grad)

    check(f)


def test_function_save_for_backward_of_an_int_raises():
    def f(m):
        def fwd(ctx, x):
            ctx.save_for_backward(x, 3)
            return x * 2

        F = fn_cls(m, fwd, lambda ctx, g: g)
        x = m.tensor([1.0], requires_grad=True)
        F.apply(x).sum().backward()

    check(f)


def test_function_backward_runs_with_grad_disabled():
    def f(m):
        seen = []
        F = fn_cls(m, lambda ctx, x: x * 2, lambda ctx, g: seen.append(m.is_grad_enabled()) or g)
        x = m.tensor([1.0], requires_grad=True)
        F.apply(x).sum().backward()
        return seen

    assert check(f) == [False]


def test_function_forward_runs_with_grad_disabled():
    def f(m):
        w = m.tensor([2.0], requires_grad=True)
        seen = []

        def fwd(ctx, x):
            seen.append(m.is_grad_enabled())
            seen.append((w * 3).requires_grad)  # an op on a captured parameter
            return x * 2

        F = fn_cls(m, fwd, lambda ctx, g: g)
        F.apply(m.tensor([1.0], requires_grad=True))
        return seen

    check(f)


def test_function_backward_returning_an_array_is_refused_clearly():
    """User Functions work on tensors, as torch's: an ndarray handed back is an error that
    says what to return, not a silent conversion."""

    def fwd(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    def bwd(ctx, g):
        (x,) = ctx.saved_tensors
        return (x.exp() * g).numpy()

    F = fn_cls(dl, fwd, bwd)
    x = dl.tensor([0.0, 1.0], requires_grad=True)
    with pytest.raises(TypeError, match="return a tensor or None"):
        F.apply(x).sum().backward()


def test_function_backward_returning_a_darklib_tensor():
    def f(m):
        def fwd(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        def bwd(ctx, g):
            (x,) = ctx.saved_tensors
            return m.tensor(2.0) * x * g  # a tensor of the library, as torch code returns

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([1.0, 3.0], requires_grad=True)
        F.apply(x).sum().backward()
        return R(x.grad)

    check(f)


def test_function_forward_returning_a_darklib_tensor():
    def f(m):
        F = fn_cls(m, lambda ctx, x: m.tensor([1.0, 2.0]) * 2, lambda ctx, g: g)
        y = F.apply(m.tensor([1.0, -1.0], requires_grad=True))
        return R(y), y.requires_grad

    check(f)


def test_function_forward_and_backward_use_tensor_methods():
    def f(m):
        def fwd(ctx, x):
            ctx.save_for_backward(x)
            return x.exp().clamp(max=2.0)

        def bwd(ctx, g):
            (x,) = ctx.saved_tensors
            return g.clone() * x.exp() * (x.exp() < 2.0)

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([0.0, 1.0], requires_grad=True)
        F.apply(x).sum().backward()
        return R(x.grad)

    check(f)


def test_function_with_two_outputs_gets_zeros_for_the_unused_one():
    def f(m):
        seen = []

        def bwd(ctx, g1, g2):
            seen.append((R(g1), R(g2)) if m is torch else (g1.tolist(), g2.tolist()))
            return g1 * 2 + g2 * 3

        F = fn_cls(m, lambda ctx, x: (x * 2, x * 3), bwd)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        a, b = F.apply(x)
        a.sum().backward()
        return seen, R(x.grad), R(b)

    assert check(f) == ([([1.0, 1.0], [0.0, 0.0])], [2.0, 2.0], [3.0, 6.0])


def test_function_with_two_outputs_both_used():
    def f(m):
        F = fn_cls(m, lambda ctx, x: (x * 2, x * x), lambda ctx, g1, g2: g1 * 2 + g2 * 5)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        a, b = F.apply(x)
        (a * 3 + b).sum().backward()
        return R(x.grad)

    assert check(f) == [11.0, 11.0]


def test_function_set_materialize_grads_false_passes_none():
    def f(m):
        seen = []

        def fwd(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        def bwd(ctx, g):
            seen.append(g is None)
            return g * 2

        F = fn_cls(m, fwd, bwd)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        F.apply(x).sum().backward()
        return seen, R(x.grad)

    check(f)


def test_function_mark_non_differentiable():
    def f(m):
        def fwd(ctx, x):
            out = x * 2
            ctx.mark_non_differentiable(out)
            return out

        F = fn_cls(m, fwd, lambda ctx, g: g)
        y = F.apply(m.tensor([1.0, -1.0], requires_grad=True))
        return y.requires_grad, y.grad_fn is None, R(y)

    assert check(f) == (False, True, [2.0, -2.0])


def test_function_mark_dirty_in_place():
    def f(m):
        def fwd(ctx, x):
            x *= 2
            ctx.mark_dirty(x)
            return x

        F = fn_cls(m, fwd, lambda ctx, g: g * 2)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        h = x.clone()
        y = F.apply(h)
        y.sum().backward()
        return R(h), R(y), R(x.grad)

    assert check(f) == ([2.0, 4.0], [2.0, 4.0], [2.0, 2.0])


def test_function_mark_dirty_on_a_leaf_that_requires_grad_raises():
    def f(m):
        def fwd(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        F = fn_cls(m, fwd, lambda ctx, g: g * 2)
        F.apply(m.tensor([1.0, 2.0], requires_grad=True))

    check(f)  # both raise


def test_once_differentiable_backward_from_torchs_import_path():
    """torch code imports once_differentiable (and Function) from autograd.function."""

    def f(m):
        from importlib import import_module

        mod = import_module(f"{m.__name__}.autograd.function")

        class Square(mod.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @mod.once_differentiable
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        x = m.tensor([1.0, -3.0], requires_grad=True)
        Square.apply(x).sum().backward()
        return R(x.grad)

    assert check(f) == [2.0, -6.0]


def test_function_setup_context_style():
    def f(m):
        def setup(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def bwd(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

        F = fn_cls(m, lambda x: x * x, bwd, setup_context=setup)
        x = m.tensor([1.0, 3.0], requires_grad=True)
        F.apply(x).sum().backward()
        return R(x.grad)

    check(f)


@xfail("G-17", "a custom output aliasing its input can be changed in place (torch refuses)")
@pytest.mark.parametrize("kind", ["input_as_is", "slice_view"])
def test_function_output_aliasing_input_changed_in_place_raises(kind):
    def f(m):
        def fwd(ctx, x):
            return x if kind == "input_as_is" else x[:1]

        F = fn_cls(m, fwd, lambda ctx, g: g)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        h = x * 1
        y = F.apply(h)
        y.mul_(5)
        return R(h), R(y)

    check(f)


def test_function_output_aliasing_input_in_place_under_no_grad_writes_through():
    def f(m):
        F = fn_cls(m, lambda ctx, x: x[:1], lambda ctx, g: g)
        h = m.tensor([1.0, 2.0])
        y = F.apply(h)
        y.mul_(5)
        return R(h), R(y)

    assert check(f) == ([5.0, 2.0], [5.0])


def test_function_grad_fn_exposes_saved_tensors_and_ctx_attributes():
    def f(m):
        def fwd(ctx, x):
            ctx.save_for_backward(x)
            ctx.k = 5
            return x * 2

        F = fn_cls(m, fwd, lambda ctx, g: g)
        y = F.apply(m.tensor([1.0, 3.0], requires_grad=True))
        return [R(t) for t in y.grad_fn.saved_tensors], y.grad_fn.k

    check(f)


def test_grad_fn_next_functions_and_type_name():
    def f(m):
        x = m.tensor([1.0], requires_grad=True)
        y = scale_fn(m).apply(x * 2 + 1)
        return type(y.grad_fn).__name__, len(y.grad_fn.next_functions)

    check(f)


# ======================================================================== engine mechanics


def test_retain_graph_then_second_and_third_backward():
    def f(m, n):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * 2).sum()
        y.backward(retain_graph=True)
        for _ in range(n):
            y.backward()
        return R(x.grad)

    check(lambda m: f(m, 1))
    err = check(lambda m: f(m, 2))
    assert "second time" in str(err)


def test_second_backward_through_a_shared_freed_node_raises():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        h = x.exp()
        (h * h).sum().backward()
        (h * 3).sum().backward()
        return R(x.grad)

    check(f)


def test_accumulation_over_backward_calls_and_user_set_grad():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        x.grad = m.tensor([10.0, 10.0])
        g = x.grad
        (x * 2).sum().backward()
        (x * x).sum().backward()
        dl_or_t = (R(g), x.grad is g)
        x.grad = None
        (x * 3).sum().backward()
        return dl_or_t, R(x.grad)

    assert check(f) == (([14.0, 16.0], True), [3.0, 3.0])


def test_backward_on_a_leaf_itself_and_on_one_element_tensors():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        x.backward(m.tensor([3.0, 4.0]))
        x.sum().reshape(1).backward()
        x.sum().reshape(1, 1).backward()
        m.tensor(2.0, requires_grad=True).backward()
        return R(x.grad)

    assert check(f) == [5.0, 6.0]


@pytest.mark.parametrize(
    "grad", ["shape3", "shape1_broadcastable", "scalar_for_1", "int_dtype", "float64"]
)
def test_backward_gradient_argument_checks(grad):
    def f(m):
        n = 1 if grad == "scalar_for_1" else 2
        x = m.ones(n, requires_grad=True)
        g = {
            "shape3": m.ones(3),
            "shape1_broadcastable": m.ones(1),
            "scalar_for_1": m.tensor(3.0),
            "int_dtype": m.tensor([1, 2]),
            "float64": m.tensor([1.0, 3.0], dtype=m.float64),
        }[grad]
        (x * 2).backward(g)
        return R(x.grad), str(x.grad.dtype).split(".")[-1]

    check(f)


def test_backward_gradient_given_as_python_values_raises():
    for g in ([1.0, 1.0], 3.0):

        def f(m, g=g):
            x = m.tensor([1.0, 2.0], requires_grad=True)
            (x * 2).backward(g)
            return R(x.grad)

        check(f)


def test_backward_inputs_restricts_and_accumulates():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        (x * w).sum().backward(inputs=[w])
        (x * w).sum().backward(inputs=x)
        (x * w).sum().backward(inputs=[x])
        (x * 2).sum().backward(inputs=[w])  # w unused: stays as it is
        return R(x.grad), R(w.grad)

    assert check(f) == ([6.0, 8.0], [1.0, 2.0])


def test_backward_inputs_runs_leaf_hook_and_fills_non_leaf():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g: g * 10)
        p = x * 2
        (p * 3).sum().backward(inputs=[p, x])
        return R(x.grad), R(p.grad)

    check(f)


def test_backward_inputs_frees_the_graph():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x.exp().sum()
        y.backward(inputs=[x])
        y.backward(inputs=[x])
        return R(x.grad)

    check(f)


def test_backward_inputs_that_does_not_require_grad_raises():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).sum().backward(inputs=[m.tensor([1.0])])
        return R(x.grad)

    check(f)


def test_backward_inputs_accumulates_into_the_same_grad_tensor():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).sum().backward(inputs=[x])
        g = x.grad
        (x * 3).sum().backward(inputs=[x])
        return R(g), g is x.grad

    check(f)


def test_backward_with_empty_inputs_raises():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).sum().backward(inputs=[])
        return x.grad

    check(f)


def test_autograd_grad_list_outputs_and_grad_outputs_with_none():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        a = m.autograd.grad(
            [x * 2, x * x], [x], grad_outputs=[m.ones(2), m.tensor([1.0, 0.5])], retain_graph=True
        )
        b = m.autograd.grad(((x * 2).sum(), x * x), (x,), grad_outputs=(None, m.ones(2)))
        return type(a).__name__, [R(g) for g in a], [R(g) for g in b]

    assert check(f) == ("tuple", [[4.0, 4.0]], [[4.0, 6.0]])


def test_autograd_grad_with_too_few_grad_outputs_raises():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (g,) = m.autograd.grad([(x * 2).sum(), (x * x).sum()], [x], grad_outputs=[m.tensor(1.0)])
        return R(g)

    check(f)


def test_autograd_backward_with_too_few_grad_tensors_raises():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        m.autograd.backward([(x * 2).sum(), (x * 3).sum()], grad_tensors=[m.tensor(1.0)])
        return R(x.grad)

    check(f)


def test_autograd_grad_allow_unused_materialize_and_errors():
    def f(m, mode):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = m.tensor([1.0, 2.0], requires_grad=True)
        h = y * 2
        out = (x * 3).sum()
        if mode == "unused":
            return [R(g) for g in m.autograd.grad(out, [x, y, h], allow_unused=True)]
        if mode == "materialize":
            return [R(g) for g in m.autograd.grad(out, [x, y], materialize_grads=True)]
        if mode == "error":
            return m.autograd.grad(out, [x, y])
        if mode == "not_requiring_output":
            return m.autograd.grad(m.tensor(1.0), x)
        return m.autograd.grad(x * 2, x, grad_outputs=m.tensor(2.0))  # wrong shape

    assert check(lambda m: f(m, "unused")) == [[3.0, 3.0], None, None]
    assert check(lambda m: f(m, "materialize")) == [[3.0, 3.0], [0.0, 0.0]]
    for mode in ("error", "not_requiring_output", "bad_grad_output_shape"):
        check(lambda m, mode=mode: f(m, mode))


def test_autograd_grad_leaves_dot_grad_alone_and_sees_hooks():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).sum().backward()
        x.register_hook(lambda g: g * 10)
        h = x * 2
        h.register_hook(lambda g: g + 1)
        y = (h * h).sum()
        (gx,) = m.autograd.grad(y, [x], retain_graph=True)
        (gh,) = m.autograd.grad(y, [h])  # (torch skips h's hook when x is asked for too)
        return R(x.grad), R(gx), R(gh)

    check(f)


def test_autograd_grad_of_a_leaf_with_respect_to_itself():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (g,) = m.autograd.grad(x, x, grad_outputs=m.tensor([3.0, 4.0]))
        return R(g)

    check(f)


def test_autograd_grad_skips_a_freed_branch_it_does_not_need():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        h = w.exp()
        h.sum().backward()  # frees ExpBackward's saved values
        (g,) = m.autograd.grad((x * h).sum(), x)
        return R(g, 3)

    check(f)


def test_backward_inputs_skips_a_freed_branch_it_does_not_need():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        h = w.exp()
        h.sum().backward()
        (x * h).sum().backward(inputs=[x])
        return R(x.grad, 3)

    check(f)


def test_autograd_grad_does_not_free_nodes_it_did_not_need():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        h = w.exp()
        m.autograd.grad((x * h).sum(), x)
        h.sum().backward()
        return R(w.grad, 3)

    check(f)


def test_autograd_grad_does_not_run_unneeded_hooks_or_backwards():
    def f(m):
        calls = []
        F = fn_cls(m, lambda ctx, a: a * 2, lambda ctx, g: calls.append("fn") or g * 2)
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        w.register_hook(lambda g: calls.append("leaf"))
        h = F.apply(w)
        h.register_hook(lambda g: calls.append("h"))
        m.autograd.grad((x * h).sum(), x)
        return calls

    assert check(f) == []


def test_non_leaf_grad_is_none_and_retain_grad_keeps_it():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        h = x * 2
        k = x * 3
        k.retain_grad()
        x.retain_grad()  # a no-op on a leaf
        y = (h * k).sum()
        y.backward(retain_graph=True)
        first = R(k.grad)
        y.backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hg = h.grad
        return hg, first, R(k.grad), k.retains_grad, h.retains_grad, x.retains_grad, R(x.grad)

    check(f)


def test_non_leaf_grad_access_warns():
    for m in MODS:
        x = m.tensor([1.0, 2.0], requires_grad=True)
        h = x * 2
        h.sum().backward()
        with pytest.warns(UserWarning, match="leaf"):
            assert h.grad is None


def test_retain_grad_on_a_tensor_without_grad_raises():
    def f(m):
        m.tensor([1.0, 2.0]).retain_grad()

    check(f)


def test_retain_grad_follows_the_tensor_through_an_in_place_op():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.mul_(3)
        y.sum().backward()
        return R(y.grad), R(x.grad)

    check(f)


def test_hook_registered_before_an_in_place_op_sees_the_old_value_gradient():
    def f(m):
        seen = []
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: seen.append(R(g)))
        y.mul_(3)
        y.sum().backward()
        return seen, R(x.grad)

    check(f)


def test_requires_grad_false_on_a_non_leaf_raises_and_detach_rules():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        try:
            y.requires_grad_(False)
            refused = False
        except RuntimeError:
            refused = True
        d = y.detach()
        d.add_(1)  # shares memory and the version counter
        z = y.detach_()
        return refused, R(y), d.requires_grad, d.is_leaf, z is y, y.is_leaf, y.requires_grad

    assert check(f)[0] is True


def test_detach_in_place_change_is_caught_by_saved_values():
    def f(m, leaf):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x if leaf else x * 2
        z = (y * y).sum()
        y.detach().mul_(3)
        z.backward()
        return R(x.grad)

    check(lambda m: f(m, True))
    check(lambda m: f(m, False))


def test_detach_then_requires_grad_is_a_separate_leaf():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        d = x.detach().requires_grad_()
        (d * 2).sum().backward()
        return R(d.grad), x.grad

    check(f)


@pytest.mark.parametrize("how", ["add_", "setitem", "view_mul_", "t_view_zero_"])
def test_in_place_on_a_leaf_or_its_view_raises(how):
    def f(m):
        x = m.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        if how == "add_":
            x.add_(1)
        elif how == "setitem":
            x[0, 0] = 5.0
        elif how == "view_mul_":
            x[:1].mul_(2)
        else:
            x.t().zero_()
        return R(x)

    check(f)


def test_in_place_on_a_view_of_a_leaf_under_no_grad_then_backward():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        with m.no_grad():
            x[:1].mul_(2)
        (x * x).sum().backward()
        return R(x), R(x.grad), x.is_leaf, x._version > 0

    check(f)


def test_in_place_on_a_plain_leaf_with_a_grad_operand():
    def f(m):
        x = m.tensor([1.0, 2.0])
        w = m.tensor([3.0, 4.0], requires_grad=True)
        x.mul_(w)
        x.sum().backward()
        return x.is_leaf, x.requires_grad, R(w.grad)

    check(f)


def test_view_of_a_leaf_taken_under_no_grad_requires_grad():
    def f(m):
        w = m.tensor([1.0, 2.0], requires_grad=True)
        with m.no_grad():
            v = w[:1]
            r = w.reshape(2, 1)
        return v.requires_grad, v.is_leaf, r.requires_grad

    check(f)


def test_hooks_on_intermediates_modify_or_observe():
    def f(m):
        calls = []
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: g * 3)
        z = y * y + y
        z.register_hook(lambda g: calls.append(R(g)))  # returns None: unchanged
        y.register_hook(lambda g: calls.append(("y", R(g))))
        z.sum().backward()
        return calls, R(x.grad)

    check(f)


def test_hook_mutating_the_gradient_in_place():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: g.mul_(10) and None)
        (y * 1).sum().backward()
        return R(x.grad)

    check(f)


def test_leaf_hooks_chain_and_removed_hook_does_not_run():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g: g * 2)
        h = x.register_hook(lambda g: g * 0)
        x.register_hook(lambda g: g + 1)
        h.remove()
        (x * 3).sum().backward()
        return R(x.grad)

    assert check(f) == [7.0, 7.0]


def test_hook_returning_wrong_dtype_or_non_tensor_raises():
    for ret in ("double", "int"):

        def f(m, ret=ret):
            x = m.tensor([1.0, 2.0], requires_grad=True)
            x.register_hook(lambda g: g.double() if ret == "double" else 5)
            (x * 2).sum().backward()
            return R(x.grad)

        check(f)


def test_register_hook_on_tensor_without_grad_raises():
    check(lambda m: m.tensor([1.0]).register_hook(lambda g: g))


def test_post_accumulate_grad_hook():
    def f(m):
        seen = []
        x = m.tensor([1.0, 2.0], requires_grad=True)
        x.register_post_accumulate_grad_hook(lambda t: seen.append(R(t.grad)))
        (x * 2).sum().backward()
        return seen

    check(f)


def test_is_leaf_and_grad_fn_presence_rules():
    def f(m):
        x = m.tensor([1.0], requires_grad=True)
        with m.no_grad():
            a = x * 2
        b = m.tensor([1.0]) * 2
        c = x.detach() * 2
        d = x * 2
        e = (x > 0).float() * 2
        return [(t.is_leaf, t.requires_grad, t.grad_fn is None) for t in (a, b, c, d, e, x)]

    check(f)


def test_grad_modes_as_functions_contexts_and_decorators():
    def f(m):
        x = m.tensor([1.0], requires_grad=True)
        out = []
        m.set_grad_enabled(False)
        out.append((x * 2).requires_grad)
        with m.enable_grad():
            out.append((x * 2).requires_grad)
        m.set_grad_enabled(True)
        with m.set_grad_enabled(False):
            out.append((x * 2).requires_grad)
        try:
            with m.no_grad():
                raise KeyError
        except KeyError:
            out.append(m.is_grad_enabled())

        @m.no_grad
        def bare():
            return (x * 2).requires_grad

        class A:
            @m.no_grad()
            def meth(self):
                return (x * 2).requires_grad

        with m.no_grad():

            @m.set_grad_enabled(True)
            def on():
                return (x * 2).requires_grad

            out.append(m.is_grad_enabled())
        out += [bare(), A().meth(), A.meth.__name__, on(), m.is_grad_enabled()]
        return out

    check(f)


def test_no_grad_and_enable_grad_on_generator_functions():
    def f(m):
        x = m.tensor([1.0], requires_grad=True)

        @m.no_grad()
        def gen():
            v = yield m.is_grad_enabled()
            try:
                yield (v, (x * 2).requires_grad)
            except KeyError:
                yield ("thrown", m.is_grad_enabled())

        @m.enable_grad()
        def gen2():
            yield (x * 2).requires_grad

        g = gen()
        out = [next(g), m.is_grad_enabled(), g.send(7), m.is_grad_enabled(), g.throw(KeyError)]
        with m.no_grad():
            out.append(list(gen2()))
            out.append(m.is_grad_enabled())
        return out

    assert check(f)[2] == (7, False)


def test_inference_mode_basics():
    def f(m):
        x = m.tensor([1.0], requires_grad=True)
        with m.inference_mode():
            a = x * 2
            inner = (m.is_inference_mode_enabled(), m.is_grad_enabled())
            with m.inference_mode(False):
                off = (m.is_inference_mode_enabled(), m.is_grad_enabled())

        @m.inference_mode()
        def g():
            return (x * 2).requires_grad, m.is_grad_enabled()

        y = (x * 2).sum()
        with m.inference_mode():
            y.backward()
        return a.requires_grad, inner, off, g(), m.is_inference_mode_enabled(), R(x.grad)

    check(f)


def test_enable_grad_inside_inference_mode_records_nothing():
    def f(m):
        x = m.tensor([1.0], requires_grad=True)
        with m.inference_mode():
            with m.enable_grad():
                a = (x * 2).requires_grad
            with m.set_grad_enabled(True):
                b = (x * 2).requires_grad
        return a, b

    check(f)


def test_zero_sized_backward():
    def f(m):
        x = m.zeros(0, 3, requires_grad=True)
        (x * 2).sum().backward()
        return tuple(x.grad.shape), R(x.grad)

    check(f)


def test_post_accumulate_grad_hook_runs_once_per_backward_after_all_uses():
    def f(m):
        seen = []
        x = m.tensor([1.0, 2.0], requires_grad=True)
        h = x.register_post_accumulate_grad_hook(lambda t: seen.append(R(t.grad)))
        (x * 2 + x * x).sum().backward()  # two uses of x: one call, after both
        (x * 3).sum().backward(inputs=[x])
        h.remove()
        x.sum().backward()
        errors = []
        for bad in (x * 2, m.tensor([1.0])):
            try:
                bad.register_post_accumulate_grad_hook(lambda t: None)
            except RuntimeError:
                errors.append(True)
        return seen, R(x.grad), errors

    check(f)


def test_next_functions_reach_the_leaves_through_accumulate_grad():
    def f(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        c = m.tensor([3.0, 4.0])
        z = (x * c + 1).sum()
        add = z.grad_fn.next_functions[0][0]
        (mul, _), (none, _) = add.next_functions
        (acc, _), (const, _) = mul.next_functions
        return (
            type(z.grad_fn).__name__,
            type(add).__name__,
            type(mul).__name__,
            none is None and const is None,
            acc.variable is x,
            acc.next_functions,
        )

    check(f)
