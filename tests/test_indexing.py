"""Indexing against torch: x[key], x[key] = v, gather/scatter, index_select, masked_fill, ..."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, compare, gradcheck, rng

DTYPES = [np.float32, np.float64]


def _x(shape, dtype=np.float64, seed=0):
    return rng(seed).standard_normal(shape).astype(dtype)


def _keys(lib):
    """Index keys built with ``lib`` (dl or torch) so both sides get their own tensors."""
    long = lib.int64
    return [
        1,
        -1,
        (0, 2),
        slice(1, None),
        (slice(None, None, 2), 1),
        (Ellipsis, 0),
        (None, 1, Ellipsis, None),
        (1, slice(None), -2),
        lib.tensor([0, 2, 2, 0], dtype=long),
        (slice(None), lib.tensor([3, 0, 3], dtype=long)),
        (lib.tensor([[0, 1], [1, 2]], dtype=long), slice(1, 3)),
        (lib.tensor([0, 1, 1], dtype=long), slice(None), lib.tensor([1, 0, 1], dtype=long)),
        (lib.tensor([2, 0], dtype=long), lib.tensor([1, 1], dtype=long)),
        (Ellipsis, lib.tensor([1, 1, 0], dtype=long)),
        (0, lib.tensor([3, 3], dtype=long)),
        [0, 2],
        lib.tensor(1),
        (lib.tensor([True, False, True]),),
        (slice(None), lib.tensor([True, False, True, True])),
        (lib.tensor([True, False, True]), lib.tensor([0, 1], dtype=long)),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", range(20))
def test_getitem(device, dtype, k):
    x = _x((3, 4, 5), dtype)
    dkey, tkey = _keys(dl)[k], _keys(torch)[k]
    compare(lambda a: a[dkey], lambda a: a[tkey], x, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_getitem_mask_and_numpy_keys(device):
    x = _x((3, 4))
    m = x > 0
    compare(lambda a: a[a > 0], lambda a: a[a > 0], x, device=device)
    compare(lambda a: a[m], lambda a: a[torch.tensor(m)], x, device=device)
    compare(lambda a: a[np.array([2, 0])], lambda a: a[torch.tensor([2, 0])], x, device=device)
    # a list holding sequences is read as a tuple of indices, as torch does
    compare(lambda a: a[[[0, 1], [2, 2]]], lambda a: a[[[0, 1], [2, 2]]], x, device=device)
    compare(
        lambda a: a[[[0, 1], slice(1, 3)]], lambda a: a[[[0, 1], slice(1, 3)]], x, device=device
    )
    compare(lambda a: a[True], lambda a: a[True], x, device=device)
    compare(lambda a: a[[]], lambda a: a[[]], x, device=device)


def test_getitem_step_and_views():
    x = dl.tensor(_x((4, 3)), requires_grad=True)
    y = x[1::2, 1]
    assert y.tolist() == x.detach().numpy()[1::2, 1].tolist()
    y.sum().backward()
    expected = np.zeros((4, 3))
    expected[1::2, 1] = 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    base = dl.arange(6.0).reshape(2, 3)
    row = base[1]
    assert np.shares_memory(row.numpy(), base.numpy())
    assert isinstance(base[1, 2].numpy(), np.ndarray) and base[1, 2].shape == ()


def test_getitem_repeated_index_accumulates():
    w = dl.tensor(_x((5, 16), np.float32), requires_grad=True)
    idx = dl.tensor([1, 3, 1, 1, 0, 3])
    w[idx].sum().backward()
    counts = np.bincount([1, 3, 1, 1, 0, 3], minlength=5)[:, None]
    np.testing.assert_allclose(w.grad.numpy(), np.broadcast_to(counts, (5, 16)))
    v = dl.tensor(_x((4,)), requires_grad=True)
    (v[dl.tensor([2, 2, -2])] * dl.tensor([1.0, 2.0, 4.0], dtype=dl.float64)).sum().backward()
    assert v.grad.tolist() == [0.0, 0.0, 7.0, 0.0]


@pytest.mark.parametrize("device", DEVICES)
def test_iteration(device):
    x = _x((3, 2))
    compare(lambda a: tuple(a), lambda a: tuple(a), x, device=device)


# ------------------------------------------------------------------ __setitem__


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [0, 2, 3, 5, 8, 9, 11, 15, 17, 18])
def test_setitem_grad_through_value_and_base(device, k):
    x, v = _x((3, 4, 5)), _x((3, 4, 5), seed=1)
    dkey, tkey = _keys(dl)[k], _keys(torch)[k]

    def run(a, b, key):
        y = a * 1  # a non-leaf, so it may be changed in place with autograd on
        y[key] = b[key] * 2
        return y

    compare(lambda a, b: run(a, b, dkey), lambda a, b: run(a, b, tkey), x, v, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_setitem_broadcast_scalar_and_no_grad(device):
    x = _x((3, 4))

    def run(a, b):
        y = a.clone()
        y[1] = 5.0
        y[:, 0] = b  # (3,) broadcast into a column
        y[y > 4] = -1.0
        return y

    compare(run, run, x, _x((3,), seed=1), device=device)
    leaf = dl.zeros(2, 3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        leaf[0] = 1.0
    with dl.no_grad():
        leaf[0, 1] = 2.0
        leaf[1] = dl.tensor([1.0, 2.0, 3.0], device=device)
    assert leaf.tolist() == [[0.0, 2.0, 0.0], [1.0, 2.0, 3.0]]
    assert leaf.requires_grad and leaf.grad_fn is None
    ints = dl.zeros(3, dtype=dl.int64, device=device)
    ints[1] = 2.7
    assert ints.tolist() == [0, 2, 0]


def test_setitem_value_gets_grad_on_plain_tensor():
    w = dl.tensor([1.0, 2.0], requires_grad=True)
    buf = dl.zeros(4)
    buf[1:3] = w * 3
    assert buf.requires_grad and buf.grad_fn is not None
    (buf * dl.tensor([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    assert w.grad.tolist() == [30.0, 300.0]


# ------------------------------------------------------------------ index_select, gather


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(device, dtype, dim):
    x = _x((3, 4, 10), dtype)
    idx = np.array([2, 0, 2, 1, 2])
    compare(
        lambda a, i: dl.index_select(a, dim, i),
        lambda a, i: torch.index_select(a, dim, i),
        x,
        idx,
        device=device,
    )
    compare(
        lambda a, i: a.index_select(dim, i),
        lambda a, i: a.index_select(dim, i),
        x,
        idx[:1],
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(device, dtype, dim):
    x = _x((3, 4, 5), dtype)
    shape = [2, 3, 4]
    shape[dim] = 6
    idx = rng(1).integers(0, x.shape[dim], size=shape)
    compare(lambda a, i: a.gather(dim, i), lambda a, i: a.gather(dim, i), x, idx, device=device)
    compare(
        lambda a, i: dl.gather(a, dim, i),
        lambda a, i: torch.gather(a, dim, i),
        x,
        idx,
        device=device,
    )
    full = rng(2).integers(0, x.shape[dim], size=x.shape)
    compare(
        lambda a, i: dl.take_along_dim(a, i, dim),
        lambda a, i: torch.take_along_dim(a, i, dim),
        x,
        full,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_take_along_dim_broadcast_and_flat(device):
    x = _x((3, 4))
    idx = np.array([[0], [3], [1]])
    compare(
        lambda a, i: dl.take_along_dim(a, i, 1),
        lambda a, i: torch.take_along_dim(a, i, 1),
        x,
        idx,
        device=device,
    )
    compare(
        lambda a, i: dl.take_along_dim(a, i),
        lambda a, i: torch.take_along_dim(a, i),
        x,
        np.array([11, 0, 5]),
        device=device,
    )
    i = np.argsort(x, axis=1)
    compare(
        lambda a, i: dl.take_along_dim(a, i, 1),
        lambda a, i: torch.take_along_dim(a, i, 1),
        x,
        i,
        device=device,
    )


# ------------------------------------------------------------------ scatter


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_and_scatter_add(device, dtype, dim):
    x = _x((3, 4, 5), dtype)
    src = _x((3, 4, 5), dtype, seed=1)
    shape = [2, 3, 4]
    # unique target positions along dim so that scatter's "who wins" is well defined
    n = x.shape[dim]
    perm = np.argsort(rng(3).random([*shape[: dim % 3], n, *shape[dim % 3 + 1 :]]), axis=dim)
    idx = np.take(perm, np.arange(shape[dim % 3]), axis=dim)
    compare(
        lambda a, s, i: a.scatter(dim, i, s),
        lambda a, s, i: a.scatter(dim, i, s),
        x,
        src[:2, :3, :4],
        idx,
        device=device,
    )
    # torch's backward cannot take a src larger than the index; compare values only
    compare(
        lambda a, s, i: a.scatter(dim, i, s),
        lambda a, s, i: a.scatter(dim, i, s),
        x,
        src,
        idx,
        device=device,
        grad=False,
    )
    compare(
        lambda a, i: dl.scatter(a, dim, i, 2.5),
        lambda a, i: torch.scatter(a, dim, i, 2.5),
        x,
        idx,
        device=device,
    )
    rep = rng(4).integers(0, n, size=shape)  # repeats add up
    sub = src[:2, :3, :4]
    compare(
        lambda a, s, i: a.scatter_add(dim, i, s),
        lambda a, s, i: a.scatter_add(dim, i, s),
        x,
        sub,
        rep,
        device=device,
    )
    compare(
        lambda a, s, i: dl.scatter(a, dim, i, s, reduce="add"),
        lambda a, s, i: torch.scatter_add(a, dim, i, s),
        x,
        sub,
        rep,
        device=device,
    )
    compare(
        lambda a, s, i: a.scatter_add(dim, i, s),
        lambda a, s, i: a.scatter_add(dim, i, s),
        x,
        src,
        rep,
        device=device,
        grad=False,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_inplace_scatter_and_masked_fill(device):
    x = _x((3, 4))
    idx = np.array([[0, 2], [1, 3], [3, 0]])
    src = _x((3, 2), seed=1)

    def run(a, s, i):
        y = a * 1
        y.scatter_(1, i, s)
        y.scatter_add_(0, i[:1], s[:1] * 2)
        y.masked_fill_(y > 0.5, 0.25)
        return y

    compare(run, run, x, src, idx, device=device)
    z = dl.zeros(2, 3, device=device)
    z.scatter_(1, dl.tensor([[2], [0]], device=device), 1.0)
    assert z.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


# ------------------------------------------------------------------ masked_fill, nonzero, ...


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill(device, dtype):
    x = _x((3, 4), dtype)
    m = _x((4,), seed=1) > 0
    compare(
        lambda a: a.masked_fill(dl.tensor(m, device=device), -1e9),
        lambda a: a.masked_fill(torch.tensor(m), -1e9),
        x,
        device=device,
    )
    compare(
        lambda a, v: dl.masked_fill(a, dl.tensor(m, device=device), v),
        lambda a, v: torch.masked_fill(a, torch.tensor(m), v),
        x,
        np.array(3.0, dtype),
        device=device,
    )
    compare(
        lambda a: a.masked_fill(a < 0, 0),
        lambda a: a.masked_fill(a < 0, 0),
        np.arange(6).reshape(2, 3) - 2,
        device=device,
    )
    compare(lambda a: a.masked_select(a > 0), lambda a: a.masked_select(a > 0), x, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_nonzero_argwhere_unique(device):
    x = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    compare(lambda a: a.nonzero(), lambda a: a.nonzero(), x, device=device)
    compare(
        lambda a: dl.nonzero(a, as_tuple=True),
        lambda a: torch.nonzero(a, as_tuple=True),
        x,
        device=device,
    )
    compare(lambda a: dl.argwhere(a), lambda a: torch.argwhere(a), x, device=device)
    compare(lambda a: a.nonzero(), lambda a: a.nonzero(), np.array(5.0), device=device)
    compare(lambda a: a.nonzero(), lambda a: a.nonzero(), np.zeros((0, 2)), device=device)
    u = np.array([[3, 1, 3], [2, 1, 1]])
    compare(lambda a: dl.unique(a), lambda a: torch.unique(a), u, device=device)
    compare(
        lambda a: dl.unique(a, return_inverse=True, return_counts=True),
        lambda a: torch.unique(a, return_inverse=True, return_counts=True),
        u,
        device=device,
    )


# ------------------------------------------------------------------ finite differences


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a[1, ::2],
        lambda a: a[:, dl.tensor([2, 0, 2])],
        lambda a: a[dl.tensor([1, 1, 0]), :, dl.tensor([0, 1, 1])],
        lambda a: a[a > 0],
        lambda a: a.index_select(1, dl.tensor([1, 1, 0])),
        lambda a: a.gather(2, dl.tensor([[[1, 1], [0, 0], [1, 0]], [[0, 1], [1, 1], [0, 0]]])),
        lambda a: a.scatter_add(1, dl.tensor([[[2, 0]], [[0, 0]]]), a[:, :1] * 2),
        lambda a: a.scatter(1, dl.tensor([[[2, 0]], [[0, 1]]]), a[:, 1:2] * 3),
        lambda a: a.scatter(1, dl.tensor([[[2]], [[0]]]), a * 3),  # src larger than index
        lambda a: a.scatter_add(2, dl.tensor([[[1]], [[0]]]), a.flip(0)),
        lambda a: a.masked_fill(a < 0, 0.0),
        lambda a: a.masked_fill(a < 0, a[0, 0, 0]),
        lambda a: dl.take_along_dim(a, dl.tensor([[[1], [0], [1]]]), 2),
    ],
)
def test_gradcheck(fn):
    gradcheck(fn, _x((2, 3, 2), seed=3))


def test_setitem_gradcheck():
    def run(a):
        y = a * 1
        y[0, dl.tensor([1, 2])] = a[1, :2] * a[1, 2]
        return y

    gradcheck(run, _x((2, 3), seed=4))


# ------------------------------------------------------------------ errors


def test_index_errors():
    x = dl.randn(2, 3)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 2"):
        x[5]
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 1 with size 3"):
        x[0, -4]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        x[:, dl.tensor([0, 3])]
    with pytest.raises(IndexError, match=r"shape of the mask \[3\] at index 0 does not match"):
        x[dl.tensor([True, False, True])]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="must be long, int or bool"):
        x[dl.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match=r"gather\(\): index 3 is out of bounds for dimension 1"):
        x.gather(1, dl.tensor([[0, 3]]))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        x.gather(1, dl.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"no larger than self \[2, 3\]"):
        x.gather(1, dl.tensor([[0, 1]] * 3))
    with pytest.raises(IndexError, match=r"index_select\(\): index -1 is out of bounds"):
        x.index_select(1, dl.tensor([-1]))
    with pytest.raises(IndexError, match=r"index_select\(\).*vector"):
        x.index_select(1, dl.tensor([[0, 1]]))
    with pytest.raises(RuntimeError, match=r"index_select\(\).*integer"):
        x.index_select(1, dl.tensor([0.0]))
    with pytest.raises(IndexError, match=r"scatter_add\(\): index 2 is out of bounds"):
        x.scatter_add(0, dl.tensor([[2, 0, 0]]), dl.ones(1, 3))
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        x.masked_fill(dl.tensor([1, 0, 1]), 0.0)
    with pytest.raises(RuntimeError, match=r"mask of shape \[2\] does not broadcast"):
        x.masked_fill(dl.tensor([True, False]), 0.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        x.masked_fill(x > 0, dl.ones(3))
    with pytest.raises(RuntimeError, match=r"shape mismatch.*\[4\].*\[3\]"):
        y = x.requires_grad_() * 1
        y[0] = dl.ones(4)
    with pytest.raises(RuntimeError, match=r"index_put.*\[4\]"):
        x.detach()[0] = dl.ones(4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(device, accumulate):
    x, v = _x((3, 4)), _x((4,), seed=1)
    idx = np.array([0, 2, 0]) if accumulate else np.array([0, 2])

    def run(lib):
        def fn(a, b, i):
            y = a * 1
            y.index_put_((i,), b, accumulate=accumulate)
            return lib.index_put(y, (i,), b * 2, accumulate=accumulate)

        return fn

    compare(run(dl), run(torch), x, v, idx, device=device)


def test_public_names():
    for name in [
        "sum",
        "mean",
        "var",
        "std",
        "max",
        "min",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "logsumexp",
        "softmax",
        "log_softmax",
        "prod",
        "all",
        "any",
        "norm",
        "cumsum",
        "reshape",
        "flatten",
        "squeeze",
        "unsqueeze",
        "permute",
        "transpose",
        "t",
        "cat",
        "concat",
        "stack",
        "split",
        "chunk",
        "flip",
        "roll",
        "narrow",
        "movedim",
        "index_select",
        "gather",
        "scatter",
        "masked_fill",
        "nonzero",
    ]:
        assert callable(getattr(dl, name)), name
    assert dl.abs(dl.tensor([-1.0])).tolist() == [1.0]


def _mixed_key(lib, spec):
    parts = {
        "i": lambda: 1,
        "-": lambda: slice(None),
        "a": lambda: lib.tensor([2, 0]),
        "b": lambda: lib.tensor([[0], [1]]),
        "m": lambda: lib.tensor([True, False]),
        "N": lambda: None,
        "E": lambda: Ellipsis,
    }
    return tuple(parts[c]() for c in spec)


def test_every_mix_of_ints_slices_arrays_masks_none_and_ellipsis_follows_torch():
    # torch applies integers as plain selections before the index arrays (NumPy counts
    # them among the advanced indices), so x[0, :, idx] keeps idx's dims after the ':'
    import itertools

    a = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    dx, tx = dl.tensor(a), torch.tensor(a)
    checked = 0
    for n in range(1, 5):
        for spec in itertools.product("i-abmNE", repeat=n):
            if spec.count("E") > 1 or not set(spec) & set("abm"):
                continue
            try:
                want = tx[_mixed_key(torch, spec)]
            except (IndexError, RuntimeError):
                continue
            got = dx[_mixed_key(dl, spec)]
            assert got.shape == tuple(want.shape), spec
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=str(spec))
            v = np.arange(want.numel(), dtype=np.float64).reshape(want.shape) + 1000
            t2, d2 = tx.clone(), dl.tensor(a)
            t2[_mixed_key(torch, spec)] = torch.tensor(v)
            d2[_mixed_key(dl, spec)] = dl.tensor(v)
            np.testing.assert_array_equal(d2.numpy(), t2.numpy(), err_msg=str(spec))
            checked += 1
    assert checked > 1000


def test_int_and_array_index_gradients_follow_torch():
    compare(
        lambda x: x[0, :, dl.tensor([3, 1, 3])] * dl.arange(3.0),
        lambda x: x[0, :, torch.tensor([3, 1, 3])] * torch.arange(3.0),
        _x((2, 3, 4)),
    )

    def put(lib):
        def fn(x, v):
            y = x * 1
            y[1, :, lib.tensor([0, 2])] = v
            return y

        return fn

    compare(put(dl), put(torch), _x((2, 3, 4)), _x((3, 2), seed=1))
    # index_put reads every index as a tensor (advanced) in torch: NumPy's placement
    compare(
        lambda x, v: x.index_put((dl.tensor(1), dl.tensor([0, 2])), v),
        lambda x, v: x.index_put((torch.tensor(1), torch.tensor([0, 2])), v),
        _x((2, 3, 4)),
        _x((2, 4), seed=1),
    )


def test_scalar_bools_stay_in_place_beside_integers_as_torch():
    # torch applies integers as selections first, and a scalar bool is an index on a new
    # dim: x[:, True, :, 1] keeps the new dim where it stands (NumPy moves it to the front)
    x = np.arange(24.0).reshape(2, 3, 4)
    keys = [
        (slice(None), True, slice(None), 1),
        (0, slice(None), True),
        (1, None, False),
        (True, slice(None), 0, [0, 1]),
        (-1, Ellipsis, True, slice(1, None)),
    ]
    for k in keys:
        want = torch.tensor(x)[k]
        got = dl.tensor(x)[k]
        assert tuple(got.shape) == tuple(want.shape), k
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        t, d = torch.tensor(x), dl.tensor(x)
        t[k] = -1.0
        d[k] = -1.0
        np.testing.assert_array_equal(d.numpy(), t.numpy())


def test_slice_steps_must_be_positive_as_in_torch():
    x = dl.arange(6.0)
    for key in (slice(None, None, -1), (slice(None), slice(None, None, -2)), slice(0, 4, 0)):
        with pytest.raises(ValueError, match="step must be greater than zero"):
            x.reshape(2, 3)[key] if isinstance(key, tuple) else x[key]
    with pytest.raises(ValueError, match="use flip"):
        x[::-1] = 0.0
    assert x[1::2].tolist() == [1.0, 3.0, 5.0]
