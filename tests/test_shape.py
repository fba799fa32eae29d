"""Shape ops against torch: values, dtypes, gradients, finite differences and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import darklib as dl
from darklib.ops.shape import pad
from tests.oracle import DEVICES, compare, gradcheck, rng

DTYPES = [np.float32, np.float64]


def _x(shape, dtype=np.float64, seed=0):
    return rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ reshape family


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape_view(device, dtype):
    x = _x((2, 3, 4), dtype)
    for shape in [(6, 4), (-1,), (4, -1, 2), (24,), (2, 12)]:
        compare(
            lambda a, s=shape: a.reshape(*s), lambda a, s=shape: a.reshape(*s), x, device=device
        )
        compare(lambda a, s=shape: a.view(s), lambda a, s=shape: a.view(s), x, device=device)
        compare(
            lambda a, s=shape: dl.reshape(a, s),
            lambda a, s=shape: torch.reshape(a, s),
            x,
            device=device,
        )
    y = _x((4, 6), dtype)
    compare(lambda a, b: a.view_as(b), lambda a, b: a.view_as(b), x, y, device=device)
    compare(lambda a, b: a.reshape_as(b), lambda a, b: a.reshape_as(b), x, y, device=device)


def test_view_shares_memory_and_dtype_view():
    x = dl.arange(6.0)
    v = x.view(2, 3)
    with dl.no_grad():
        v[0, 0] = 100.0
    assert x[0].item() == 100.0
    assert x.view(dl.int16).shape == (12,)


@pytest.mark.parametrize("device", DEVICES)
def test_flatten_unflatten_squeeze_unsqueeze(device):
    x = _x((2, 1, 3, 1))
    for args in [(), (1,), (0, 2), (-3, -1), (2, 2)]:
        compare(lambda a, g=args: a.flatten(*g), lambda a, g=args: a.flatten(*g), x, device=device)
    compare(lambda a: dl.flatten(a, 1), lambda a: torch.flatten(a, 1), x, device=device)
    compare(lambda a: a.unflatten(2, (3, 1)), lambda a: a.unflatten(2, (3, 1)), x, device=device)
    compare(
        lambda a: a.unflatten(-2, (-1, 1)), lambda a: a.unflatten(-2, (-1, 1)), x, device=device
    )
    for dim in [None, 1, -1, 0, (1, 3), (0, 1)]:
        kw = {} if dim is None else {"dim": dim}
        compare(
            lambda a, kw=kw: a.squeeze(**kw), lambda a, kw=kw: a.squeeze(**kw), x, device=device
        )
    for dim in [0, 2, 4, -1, -5]:
        compare(
            lambda a, d=dim: dl.unsqueeze(a, d),
            lambda a, d=dim: torch.unsqueeze(a, d),
            x,
            device=device,
        )
    s = np.array(2.0)
    for fn in (
        lambda a: a.flatten(),
        lambda a: a.unsqueeze(0),
        lambda a: a.squeeze(0),
        lambda a: a.reshape(1, 1),
    ):
        compare(fn, fn, s, device=device)


# ------------------------------------------------------------------ dim order


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_permute_transpose(device, dtype):
    x = _x((2, 3, 4), dtype)
    for perm in [(2, 0, 1), (0, 2, 1), (-1, -3, -2)]:
        compare(lambda a, p=perm: a.permute(*p), lambda a, p=perm: a.permute(*p), x, device=device)
        compare(
            lambda a, p=perm: dl.permute(a, p),
            lambda a, p=perm: torch.permute(a, p),
            x,
            device=device,
        )
    for d0, d1 in [(0, 1), (-1, 0), (2, 2)]:
        compare(
            lambda a, d0=d0, d1=d1: a.transpose(d0, d1),
            lambda a, d0=d0, d1=d1: a.transpose(d0, d1),
            x,
            device=device,
        )
        compare(
            lambda a, d0=d0, d1=d1: a.swapaxes(d0, d1),
            lambda a, d0=d0, d1=d1: a.swapaxes(d0, d1),
            x,
            device=device,
        )
    compare(lambda a: a.mT, lambda a: a.mT, x, device=device)
    m = _x((3, 5), dtype)
    for fn in (
        lambda a: a.t(),
        lambda a: a.T,
        lambda a: dl.t(a) if isinstance(a, dl.Tensor) else torch.t(a),
    ):
        compare(fn, fn, m, device=device)
    compare(lambda a: a.t(), lambda a: a.t(), m[0], device=device)
    for src, dst in [(0, 2), (-1, 0), ((0, 1), (2, 0))]:
        compare(
            lambda a, s=src, d=dst: a.movedim(s, d),
            lambda a, s=src, d=dst: a.movedim(s, d),
            x,
            device=device,
        )


def test_T_on_3d_warns():
    with pytest.warns(UserWarning, match="reverses"):
        assert dl.zeros(2, 3, 4).T.shape == (4, 3, 2)


# ------------------------------------------------------------------ expand, repeat


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_repeat(device, dtype):
    x = _x((3, 1), dtype)
    for sizes in [(3, 4), (2, 3, 4), (-1, 5), (2, -1, -1)]:
        compare(lambda a, s=sizes: a.expand(*s), lambda a, s=sizes: a.expand(*s), x, device=device)
    y = _x((2, 3, 4), dtype)
    compare(lambda a, b: a.expand_as(b[0]), lambda a, b: a.expand_as(b[0]), x, y, device=device)
    for reps in [(2, 3), (1, 1), (2, 1, 3), (3, 2, 1, 2)]:
        compare(lambda a, r=reps: a.repeat(*r), lambda a, r=reps: a.repeat(*r), x, device=device)
    compare(lambda a: a.repeat((2, 2)), lambda a: a.repeat((2, 2)), y[0], device=device)
    compare(lambda a: a.tile((2,)), lambda a: a.tile((2,)), y, device=device)


def test_expand_is_a_view():
    x = dl.tensor([[1.0], [2.0]])
    e = x.expand(2, 1000)
    assert np.shares_memory(e.numpy(), x.numpy())


# ------------------------------------------------------------------ cat, stack, split, chunk


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_stack(device, dim):
    a, b, c = _x((2, 3, 4)), _x((2, 3, 4), seed=1), _x((2, 3, 4), seed=2)
    bb = np.concatenate([b, b], axis=dim)
    compare(
        lambda p, q: dl.cat([p, q], dim), lambda p, q: torch.cat([p, q], dim), a, bb, device=device
    )
    compare(
        lambda p, q, r: dl.concat((p, q, r), dim=dim),
        lambda p, q, r: torch.concat((p, q, r), dim=dim),
        a,
        b,
        c,
        device=device,
    )
    compare(
        lambda p, q, r: dl.stack([p, q, r], dim),
        lambda p, q, r: torch.stack([p, q, r], dim),
        a,
        b,
        c,
        device=device,
    )
    compare(
        lambda p, q: dl.stack([p, q], 3), lambda p, q: torch.stack([p, q], 3), a, b, device=device
    )


@pytest.mark.parametrize("device", DEVICES)
def test_cat_stack_promote_and_partial_grad(device):
    f = _x((2, 3), np.float32)
    d = _x((2, 3), np.float64)
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    compare(lambda p, q: dl.cat([p, q]), lambda p, q: torch.cat([p, q]), f, d, device=device)
    compare(lambda p, q: dl.cat([p, q], 1), lambda p, q: torch.cat([p, q], 1), i, f, device=device)
    compare(lambda p, q: dl.stack([p, q]), lambda p, q: torch.stack([p, q]), i, d, device=device)
    compare(
        lambda p, q: dl.cat([p, q]),
        lambda p, q: torch.cat([p, q]),
        f,
        d,
        grad=[True, False],
        device=device,
    )
    compare(
        lambda p, q: dl.cat([q, p]), lambda p, q: torch.cat([q, p]), f, np.zeros(0), device=device
    )


@pytest.mark.parametrize("device", DEVICES)
def test_split_chunk_unbind(device):
    x = _x((5, 6))
    for arg, dim in [(2, 0), (4, 1), ([1, 4], 0), ((2, 0, 4), -1), (10, 0)]:
        compare(
            lambda a, s=arg, d=dim: a.split(s, d),
            lambda a, s=arg, d=dim: a.split(s, d),
            x,
            device=device,
        )
        compare(
            lambda a, s=arg, d=dim: dl.split(a, s, dim=d),
            lambda a, s=arg, d=dim: torch.split(a, s, dim=d),
            x,
            device=device,
        )
    for chunks, dim in [(2, 0), (3, 1), (4, -1), (6, 1), (7, 0)]:
        compare(
            lambda a, c=chunks, d=dim: a.chunk(c, d),
            lambda a, c=chunks, d=dim: a.chunk(c, d),
            x,
            device=device,
        )
    compare(lambda a: a.unbind(1), lambda a: a.unbind(1), x, device=device)
    compare(lambda a: dl.narrow(a, 1, 2, 3), lambda a: torch.narrow(a, 1, 2, 3), x, device=device)
    compare(lambda a: a.narrow(-2, -3, 2), lambda a: a.narrow(-2, -3, 2), x, device=device)
    compare(lambda a: a.select(1, -2), lambda a: a.select(1, -2), x, device=device)


# ------------------------------------------------------------------ flip, roll, pad


@pytest.mark.parametrize("device", DEVICES)
def test_flip_roll(device):
    x = _x((2, 3, 4))
    for dims in [(0,), (1, 2), (-1,), (0, 1, 2)]:
        compare(lambda a, d=dims: a.flip(*d), lambda a, d=dims: a.flip(*d), x, device=device)
        compare(
            lambda a, d=dims: dl.flip(a, d), lambda a, d=dims: torch.flip(a, d), x, device=device
        )
    for shifts, dims in [(1, 0), (-2, -1), ((1, 2), (0, 2)), (5, None), (-3, 1)]:
        compare(
            lambda a, s=shifts, d=dims: a.roll(s, d),
            lambda a, s=shifts, d=dims: a.roll(s, d),
            x,
            device=device,
        )


PAD_CASES = [
    ("constant", (1, 2)),
    ("constant", (0, 1, 2, 0)),
    ("constant", (1, 1, 1, 1, 1, 1)),
    ("constant", (-1, 2, 1, -2)),
    ("reflect", (1, 2)),
    ("reflect", (2, 1, 1, 2)),
    ("reflect", (-1, 2)),
    ("replicate", (2, 3)),
    ("replicate", (1, 0, 0, 2)),
    ("replicate", (2, -1)),
    ("circular", (1, 2)),
    ("circular", (3, 1, 2, 2)),
    ("circular", (-1, 2)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "p"), PAD_CASES)
def test_pad(device, dtype, mode, p):
    x = _x({2: (2, 4, 5), 4: (2, 3, 4, 5), 6: (1, 2, 3, 4, 5)}[len(p)], dtype)
    compare(lambda a: pad(a, p, mode=mode), lambda a: tF.pad(a, p, mode=mode), x, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_pad_value_and_int(device):
    x = _x((2, 3))
    compare(
        lambda a: pad(a, (1, 1), value=2.5),
        lambda a: tF.pad(a, (1, 1), value=2.5),
        x,
        device=device,
    )
    i = np.arange(6).reshape(2, 3)
    compare(
        lambda a: pad(a, (1, 1, 2, 0), value=7),
        lambda a: tF.pad(a, (1, 1, 2, 0), value=7),
        i,
        device=device,
    )


# ------------------------------------------------------------------ finite differences


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a.reshape(3, -1),
        lambda a: a.permute(2, 0, 1),
        lambda a: a.transpose(0, -1),
        lambda a: a[:, :1].expand(2, 3, 2),
        lambda a: a.repeat(2, 1, 3),
        lambda a: dl.cat([a, a * 2], 1),
        lambda a: dl.stack([a, a.flip(0)], -1),
        lambda a: a.split(2, 1)[1] * 3,
        lambda a: a.chunk(2, -1)[0],
        lambda a: a.roll((1, -1), (0, 1)),
        lambda a: a.narrow(1, 1, 2),
        lambda a: pad(a, (1, 1, 2, 0)),
        lambda a: pad(a, (1, 1, 2, 1), mode="reflect"),
        lambda a: pad(a, (2, 1), mode="replicate"),
        lambda a: pad(a, (2, 2, 1, 3), mode="circular"),
        lambda a: pad(a, (-1, 1), mode="circular"),
    ],
)
def test_gradcheck(fn):
    gradcheck(fn, _x((2, 3, 2), seed=3))


# ------------------------------------------------------------------ errors


def test_shape_errors():
    x = dl.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"view\(\).*\[4, 2\].*\[2, 3\]"):
        x.view(4, 2)
    with pytest.raises(RuntimeError, match=r"reshape\(\).*\[5, -1\].*\[2, 3\]"):
        x.reshape(5, -1)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.reshape(-1, -1)
    with pytest.raises(RuntimeError, match=r"expanded size.*\(4\).*\(3\).*dimension 1"):
        x.expand(2, 4)
    with pytest.raises(RuntimeError, match=r"cat\(\).*\[2, 3\] and \[3, 4\]"):
        dl.cat([x, dl.randn(3, 4)])
    with pytest.raises(RuntimeError, match=r"stack\(\).*\[2, 3\] at entry 0 and \[2, 4\] at"):
        dl.stack([x, dl.randn(2, 4)])
    with pytest.raises(RuntimeError, match=r"zero-dimensional"):
        dl.cat([dl.tensor(1.0), dl.tensor(2.0)])
    with pytest.raises(IndexError, match=r"cat\(\).*got 2"):
        dl.cat([x, x], 2)
    with pytest.raises(RuntimeError, match=r"permute\(\).*has 2 dims"):
        x.permute(0)
    with pytest.raises(RuntimeError, match="duplicate dims"):
        x.permute(1, -1)
    with pytest.raises(IndexError, match=r"transpose\(\).*got 2"):
        x.transpose(0, 2)
    with pytest.raises(IndexError, match=r"unsqueeze\(\).*\[-3, 2\].*got 3"):
        x.unsqueeze(3)
    with pytest.raises(RuntimeError, match=r"t\(\) expects.*3D"):
        dl.zeros(1, 2, 3).t()
    with pytest.raises(RuntimeError, match=r"repeat dims \[2\] can not be smaller"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match=r"split_sizes \[1, 1\].*sum exactly to 3"):
        x.split([1, 1], 1)
    with pytest.raises(RuntimeError, match=r"chunks.*greater than 0"):
        x.chunk(0)
    with pytest.raises(RuntimeError, match=r"start \(2\) \+ length \(2\) exceeds"):
        x.narrow(1, 2, 2)
    with pytest.raises(RuntimeError, match=r"unflatten\(\).*\[2, 2\].*\(3\)"):
        x.unflatten(1, (2, 2))
    with pytest.raises(RuntimeError, match=r"start_dim.*cannot come after"):
        x.flatten(1, 0)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        x.roll((1, 2), (0,))
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        x.flip(0, 0)
    with pytest.raises(RuntimeError, match=r"movedim\(\): dim 1 appears multiple times"):
        x.movedim((0, 1), (1, 1))


def test_pad_errors():
    x = dl.randn(1, 2, 3)
    with pytest.raises(RuntimeError, match="divisible by 2"):
        pad(x, (1,))
    with pytest.raises(RuntimeError, match="padding length 8 and input of dimension 3"):
        pad(x, (1,) * 8)
    with pytest.raises(RuntimeError, match=r"padding \(3, 3\) at dimension 2"):
        pad(x, (3, 3), mode="reflect")
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        pad(x, (4, 0), mode="circular")
    with pytest.raises(RuntimeError, match="negative output size"):
        pad(x, (-2, -2))
    with pytest.raises(NotImplementedError, match="unknown padding mode"):
        pad(x, (1, 1), mode="mirror")
    with pytest.raises(RuntimeError, match="doesn't take in value"):
        pad(x, (1, 1), mode="reflect", value=3.0)


@pytest.mark.parametrize("device", DEVICES)
def test_flip_ravel_and_einsum_results_do_not_write_through_to_their_input(device):
    # flip is a copy in torch; ravel copies a non-contiguous input; a one-operand einsum
    # that NumPy answers with a view is copied too (an unregistered view bypassed autograd)
    for L, dev in ((torch, "cpu"), (dl, device)):
        b = L.arange(6.0, device=dev).reshape(2, 3)
        f = b.flip(0)
        f.add_(10)
        r = b[:, 1].ravel()
        r.add_(100)
        assert b.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        assert f.is_contiguous() and r.is_contiguous() and r.stride() == (1,)
    x = dl.zeros(2, 2, device=device)
    dl.einsum("ii->i", x).add_(1)
    assert x.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    c = dl.arange(4.0, device=device)
    c.ravel().add_(1)  # contiguous: ravel is a view, as torch's
    assert c.tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("device", DEVICES)
def test_writes_through_expand_that_repeats_nothing_and_into_empty_tensors(device):
    for L, dev in ((torch, "cpu"), (dl, device)):
        a = L.zeros(2, 3, device=dev)
        a.expand(2, 3).add_(1)
        a.expand(1, 2, 3)[...] = a.expand(1, 2, 3) + 1
        assert a.tolist() == [[2.0] * 3] * 2
        e = L.zeros(2, 0, device=dev)
        e.mul_(2)
        L.zeros(1, 0, 2, device=dev).mT.add_(1)
        y = L.zeros(2, 2, device=dev)
        y[False] += 1
        assert y.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(RuntimeError, match="single memory location"):
        dl.zeros(3, 1, device=device).expand(3, 4).add_(1)  # a real broadcast: refused


@pytest.mark.parametrize("device", DEVICES)
def test_unfold_is_a_view_with_torch_strides_writes_and_gradients(device):
    for L, dev in ((torch, "cpu"), (dl, device)):
        b = L.arange(8.0, device=dev).reshape(2, 4)
        u = b.unfold(1, 2, 1)
        assert tuple(u.shape) == (2, 3, 2) and u.stride() == (4, 1, 1)
        b.unfold(1, 2, 2).mul_(0)  # windows that do not overlap: writes reach the base
        assert b.tolist() == [[0.0] * 4] * 2
    x = np.random.default_rng(0).standard_normal((3, 7))
    results = []
    for L, dev in ((torch, "cpu"), (dl, device)):
        t = L.tensor(x, device=dev, requires_grad=True)
        w = L.tensor(np.arange(1.0, 4.0), device=dev)
        ((t.unfold(1, 3, 2) * w) ** 2).sum().backward()  # overlapping windows
        z = t * 1
        z.unfold(0, 2, 1)[0].mul_(3)  # in place through a view, under autograd
        (z * z).sum().backward()
        results.append((t.grad.cpu().numpy() if L is dl else t.grad.numpy(), z.tolist()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)
    gradcheck(lambda a: a.unfold(1, 3, 2) * a.unfold(1, 3, 2), x)


def test_storage_offset_data_ptr_and_as_strided_follow_torch():
    def run(L):
        out = []
        b = L.arange(12.0, dtype=L.float64).reshape(3, 4)
        out += [b[1:].storage_offset(), b[:, 1].storage_offset(), b.t().storage_offset()]
        out.append((b[1:].data_ptr() - b.data_ptr()) // 8)
        out.append(b.reshape(12).data_ptr() == b.data_ptr())
        s = b.as_strided((2, 3), (1, 2), 1)
        out += [s.tolist(), s.stride(), s.storage_offset()]
        out.append(b[1].as_strided((2,), (4,)).tolist())  # from the tensor's own offset
        x = L.arange(6.0, dtype=L.float64).requires_grad_()
        y = x * 1
        # overlapping windows: the gradient sums onto the storage positions read
        (
            y.as_strided((3, 3), (1, 1)) * L.arange(9.0, dtype=L.float64).reshape(3, 3)
        ).sum().backward()
        out.append(x.grad.tolist())
        z = L.arange(6.0, dtype=L.float64).requires_grad_()
        w = z * 1
        w.as_strided((2,), (2,)).mul_(3)  # writes through the view, under autograd
        (w * w).sum().backward()
        out += [w.tolist(), z.grad.tolist()]
        return out

    assert run(dl) == run(torch)
    with pytest.raises(RuntimeError, match="as_strided"):
        dl.arange(12.0).as_strided((3, 5), (4, 1))
    gradcheck(lambda a: a.as_strided((2, 4), (3, 1), 1) ** 2, _x((12,), seed=1))


def test_as_strided_twice_differentiable_and_overlapping_views_refuse_in_place():
    for L in (torch, dl):
        x = L.arange(10.0, dtype=L.float64).requires_grad_()
        y = (x.as_strided((3, 3), (2, 1), 1) ** 2).sum()
        (g,) = L.autograd.grad(y, x, create_graph=True)
        (h,) = L.autograd.grad((g * g).sum(), x)
        if L is torch:
            want = (g.tolist(), h.tolist())
    assert (g.tolist(), h.tolist()) == want
    # windows that overlap share memory: a write through them is refused (their gradient
    # could not be consistent); windows that do not overlap stay writable
    b = dl.tensor([1.0, 2.0, 3.0], requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="overlapping"):
        b.unfold(0, 2, 1).mul_(2)
    b.unfold(0, 1, 2).mul_(2)
    assert b.tolist() == [2.0, 2.0, 6.0]
