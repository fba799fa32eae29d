"""dl.autograd.graph: hooks on the tensors saved for backward, checked against torch."""

import threading

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.autograd import saved_hooks
from tests.oracle import DEVICES


def _mlp_step(lib, hooks):
    """An MLP's loss and gradients, its forward run inside ``hooks``."""
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((8, 5)).astype(np.float32))
    w1 = lib.tensor(rng.standard_normal((5, 7)).astype(np.float32), requires_grad=True)
    w2 = lib.tensor(rng.standard_normal((7, 3)).astype(np.float32), requires_grad=True)
    y = lib.tensor(rng.integers(0, 3, 8))
    with hooks:
        h = lib.tanh(x @ w1)
        loss = lib.nn.functional.cross_entropy(lib.sigmoid(h) @ w2, y)
    loss.backward()
    return loss.item(), w1.grad.numpy(), w2.grad.numpy()


def test_packed_values_reach_backward_through_unpack_and_give_torchs_gradients():
    packed, unpacked = [], []

    def pack(t):
        packed.append(t.shape)
        return {"kept": t.clone()}  # anything may stand for the tensor

    def unpack(p):
        unpacked.append(p["kept"].shape)
        return p["kept"]

    ours = _mlp_step(dl, dl.autograd.graph.saved_tensors_hooks(pack, unpack))
    ref = _mlp_step(torch, torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t))
    assert packed and len(unpacked) == len(packed)
    assert sorted(map(tuple, unpacked)) == sorted(map(tuple, packed))
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-4, atol=1e-6)


def test_unpack_sees_what_pack_returned_so_a_changed_value_changes_the_gradient():
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with dl.autograd.graph.saved_tensors_hooks(lambda t: t * 10, lambda t: t):
        (x * x).sum().backward()
    # d(x*x)/dx = 2x, computed from the saved x, which the hooks scaled by 10
    assert x.grad.tolist() == [20.0, 40.0, 60.0]


@pytest.mark.parametrize("lib", [torch, dl], ids=["torch", "dl"])
def test_pack_gets_the_saved_input_tensor_itself_as_torch(lib):
    x = lib.ones(3, requires_grad=True)
    seen = []
    with lib.autograd.graph.saved_tensors_hooks(lambda t: seen.append(t) or t, lambda t: t):
        y = lib.exp(x)  # saves its output
        z = x.sin()  # saves its input
    assert any(t is x for t in seen)
    (y.sum() + z.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.e + np.cos(1.0), rtol=1e-6)


def test_user_functions_save_through_the_hooks():
    class Square(dl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = dl.tensor([3.0], requires_grad=True)
    calls = []
    hooks = dl.autograd.graph.saved_tensors_hooks(
        lambda t: calls.append("pack") or ("box", t), lambda p: calls.append("unpack") or p[1]
    )
    with hooks:
        y = Square.apply(x)
    y.backward()
    assert calls == ["pack", "unpack"] and x.grad.item() == 6.0


def test_innermost_hooks_apply_and_ops_inside_a_pack_hook_are_not_packed_again():
    outer, inner = [], []
    x = dl.ones(4, requires_grad=True)
    with dl.autograd.graph.saved_tensors_hooks(lambda t: outer.append(1) or t, lambda t: t):
        with dl.autograd.graph.saved_tensors_hooks(lambda t: inner.append(1) or t * x, lambda t: t):
            y = x.sin()
        z = x.cos()
    assert len(inner) == 1 and len(outer) == 1  # (the pack hook's own x * x packed nothing)
    (y.sum() + z.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(1.0) - np.sin(1.0), rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_save_on_cpu_gives_the_same_gradients(device):
    rng = np.random.default_rng(1)
    xn = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    wn = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)

    def grads(ctx):
        x = dl.tensor(xn, device=device, requires_grad=True)
        w = dl.tensor(wn, device=device, requires_grad=True)
        with ctx:
            out = dl.nn.functional.conv2d(x, w, padding=1).relu().mean()
        out.backward()
        return x.grad.cpu().numpy(), w.grad.cpu().numpy()

    plain = grads(torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t))
    for pin in (False, True) if device == "cuda" else (False,):
        offloaded = grads(dl.autograd.graph.save_on_cpu(pin_memory=pin))
        for a, b in zip(plain, offloaded, strict=True):
            np.testing.assert_array_equal(a, b)
        # what waits for backward: a host copy (page-locked if asked), back on the device
        hooks = dl.autograd.graph.save_on_cpu(pin_memory=pin)
        t = dl.tensor(xn, device=device)[:, ::2]  # (a strided view)
        packed = hooks.pack_hook(t)
        host = packed[1]
        assert host.device == dl.device("cpu") and host.is_pinned() == pin
        np.testing.assert_array_equal(host.numpy(), xn[:, ::2])
        back = hooks.unpack_hook(packed)
        assert back.device == t.device and back.dtype == t.dtype
        np.testing.assert_array_equal(back.cpu().numpy(), xn[:, ::2])


def test_unpack_must_give_back_a_tensor_like_the_saved_one():
    x = dl.ones(4, 5, requires_grad=True)
    with dl.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: 3):
        y = (x * x).sum()
    with pytest.raises(TypeError, match=r"unpack_hook expected to be a Tensor.*MulBackward0"):
        y.backward()
    with dl.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p[:1]):
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match=r"shape \(1, 5\).*shape \(4, 5\).*MulBackward0"):
        y.backward()


def test_in_place_changes_and_freed_graphs_are_still_caught():
    x = dl.ones(3, requires_grad=True)
    with dl.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        a = x * 2
        y = a.exp()  # saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
    with dl.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        z = (x * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_hooks_and_double_backward():
    for lib in (torch, dl):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
            y = (x**3).sum()
            (g,) = lib.autograd.grad(y, x, create_graph=True)
        g.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([0.5, -1.0, 2.0]), rtol=1e-6)


def test_hooks_belong_to_their_thread():
    calls = []
    x = dl.ones(3, requires_grad=True)
    with dl.autograd.graph.saved_tensors_hooks(lambda t: calls.append(1) or t, lambda t: t):
        other = threading.Thread(target=lambda: (x * x).sum().backward())
        other.start()
        other.join()
        assert calls == []  # the other thread's ops saved plainly
        x.sin()
        assert calls == [1]
    assert saved_hooks.active == 0


def test_disable_saved_tensors_hooks_refuses_new_hooks_with_its_message():
    for lib in (torch, dl):
        graph = lib.autograd.graph
        with graph.disable_saved_tensors_hooks("this library needs plain saved tensors"):
            with pytest.raises(RuntimeError, match="needs plain saved tensors"):
                with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                    pass
        with graph.saved_tensors_hooks(lambda t: t, lambda t: t):  # allowed again after
            pass


def test_graph_node_type_and_function_ctx_names():
    x = dl.ones(2, requires_grad=True)
    assert isinstance((x * 2).grad_fn, dl.autograd.graph.Node)
    from darklib.autograd.function import FunctionCtx

    class Twice(dl.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            assert isinstance(ctx, FunctionCtx)
            return t * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    Twice.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
