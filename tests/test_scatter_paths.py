"""The scatter-add paths behind index_add, index_select/x[idx] backward, index_put with
accumulate=True, repeat_interleave and one_hot, against torch: repeated indices (few, many,
all the same), every axis position, short and long rows, integer dtypes, negative and empty
indices, non-contiguous inputs, double backward. On the CPU, repeats add up in index order,
so results equal a sequential loop (``np.add.at``) bit for bit."""

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.ops import indexing
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng
from tests.test_higher_order import check_gradgrad

# (shape, dim, number of indices, index range): axis first / middle / last, rows shorter and
# longer than indexing._ROW_MIN, few repeats, many, all the same index, and a 1-D tensor
CASES = [
    ((40, 24), 0, 150, 40),
    ((24, 40), 1, 150, 40),
    ((5, 30, 20), 1, 200, 30),
    ((5, 30, 3), 1, 200, 30),
    ((5, 7, 30), -1, 90, 30),
    ((64, 64), 0, 700, 64),
    ((64, 20), 0, 300, 1),
    ((20, 64), 1, 300, 1),
    ((300,), 0, 2000, 300),
    ((600, 17), 0, 3000, 600),
]


def _sequential(x, dim, idx, src):
    """x with src added at idx along dim, one index after the other."""
    out = x.copy()
    np.add.at(np.moveaxis(out, dim, 0), idx, np.moveaxis(src, dim, 0))
    return out


def _src_shape(shape, dim, k):
    s = list(shape)
    s[dim] = k
    return s


@pytest.mark.parametrize("shape,dim,k,hi", CASES)
def test_index_add_sums_repeats_in_index_order(shape, dim, k, hi):
    r = rng(3)
    for dtype in (np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8):
        x = (r.standard_normal(shape) * 50).astype(dtype)
        src = (r.standard_normal(_src_shape(shape, dim, k)) * 50).astype(dtype)
        if dtype == np.uint8:  # sums past 255 wrap, as in torch
            x = r.integers(0, 256, shape).astype(dtype)
            src = r.integers(0, 256, src.shape).astype(dtype)
        idx = r.integers(0, hi, k)
        got = dl.index_add(dl.tensor(x), dim, dl.tensor(idx), dl.tensor(src)).numpy()
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, _sequential(x, dim, idx, src), err_msg=str(dtype))
        if dtype != np.float16:
            want = torch.tensor(x).index_add(dim, torch.tensor(idx), torch.tensor(src))
            tol = 0 if dtype in (np.float64, np.int32, np.int64, np.uint8) else 1e-3
            np.testing.assert_allclose(got, want.numpy(), atol=tol, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,dim,k,hi", CASES[:8])
def test_index_add_gradients(device, shape, dim, k, hi):
    x, src = rng(0).standard_normal(shape), rng(1).standard_normal(_src_shape(shape, dim, k))
    idx = rng(2).integers(0, hi, k)
    compare(
        lambda a, s, i: dl.index_add(a, dim, i, s, alpha=0.5),
        lambda a, s, i: torch.index_add(a, dim, i, s, alpha=0.5),
        x,
        src,
        idx,
        device=device,
        atol=1e-9,
        rtol=1e-9,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,dim,k,hi", CASES)
def test_index_select_and_take_backward(device, shape, dim, k, hi):
    x = rng(0).standard_normal(shape).astype(np.float32)
    idx = rng(1).integers(0, hi, k)
    compare(
        lambda a, i: dl.index_select(a, dim, i),
        lambda a, i: torch.index_select(a, dim, i),
        x,
        idx,
        device=device,
    )
    neg = rng(2).integers(-shape[0], shape[0], k)  # x[idx] takes negative indices too
    compare(lambda a, i: a[i], lambda a, i: a[i], x, neg, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_index_select_backward_on_transposed_and_empty_inputs(device):
    x = rng(0).standard_normal((30, 40))
    idx = rng(1).integers(0, 30, 100)
    compare(
        lambda a, i: dl.index_select(a.t(), 1, i) * 2,
        lambda a, i: torch.index_select(a.t(), 1, i) * 2,
        x,
        idx,
        device=device,
    )
    compare(
        lambda a, i: dl.index_select(a, 1, i).sum() + a.sum(),
        lambda a, i: torch.index_select(a, 1, i).sum() + a.sum(),
        x,
        np.zeros(0, np.int64),
        device=device,
    )
    empty = dl.tensor(np.zeros(0, np.int64), device=device)
    zeros = dl.zeros(0, 40, dtype=dl.float64, device=device)
    got = dl.index_add(dl.tensor(x, device=device), 0, empty, zeros)
    np.testing.assert_array_equal(got.cpu().numpy(), x)


@pytest.mark.parametrize("device", DEVICES)
def test_index_put_accumulate_along_one_axis(device):
    x = rng(0).standard_normal((30, 6, 20))
    r = rng(1)
    i0 = r.integers(-30, 30, 200)  # negative indices count from the end
    compare(
        lambda a, b, i: dl.index_put(a * 1, (i,), b, accumulate=True),
        lambda a, b, i: torch.index_put(a * 1, (i,), b, accumulate=True),
        x,
        rng(2).standard_normal((200, 6, 20)),
        i0,
        device=device,
        atol=1e-9,
        rtol=1e-9,
    )
    for v in (rng(3).standard_normal((20,)), rng(3).standard_normal((1, 1, 6, 1))):
        compare(  # a broadcast value, and one index only
            lambda a, b, i: dl.index_put(a * 1, (i,), b, accumulate=True),
            lambda a, b, i: torch.index_put(a * 1, (i,), b, accumulate=True),
            x,
            v[..., 0, :] if v.ndim == 4 else v,
            np.full(300, 7),
            device=device,
            atol=1e-9,
            rtol=1e-9,
        )
    # keys with slices (darklib takes them; torch's index_put does not): index_add's sums
    i1, i2 = r.integers(0, 6, 50), r.integers(0, 20, (8, 9))
    v1, v2 = rng(4).standard_normal((30, 50, 20)), rng(5).standard_normal((30, 6, 8, 9))
    compare(
        lambda a, b, i: dl.index_put(a * 1, (slice(None), i), b, accumulate=True),
        lambda a, b, i: torch.index_add(a, 1, i, b),
        x,
        v1,
        i1,
        device=device,
        atol=1e-9,
        rtol=1e-9,
    )
    compare(
        lambda a, b, i: dl.index_put(a * 1, (Ellipsis, i), b, accumulate=True),
        lambda a, b, i: torch.index_add(a, 2, i.reshape(-1), b.reshape(30, 6, 72)),
        x,
        v2,
        i2,
        device=device,
        atol=1e-9,
        rtol=1e-9,
    )


def test_index_put_accumulate_is_sequential_and_wraps_integers():
    r = rng(0)
    idx = r.integers(0, 50, 400)
    x = r.standard_normal((50, 32)).astype(np.float32)
    v = r.standard_normal((400, 32)).astype(np.float32)
    got = dl.index_put(dl.tensor(x), (dl.tensor(idx),), dl.tensor(v), accumulate=True)
    np.testing.assert_array_equal(got.numpy(), _sequential(x, 0, idx, v))
    xi = r.integers(0, 256, (50, 32)).astype(np.uint8)
    vi = r.integers(0, 256, (400, 32)).astype(np.uint8)
    got = dl.index_put(dl.tensor(xi), (dl.tensor(idx),), dl.tensor(vi), accumulate=True)
    want = torch.tensor(xi).index_put((torch.tensor(idx),), torch.tensor(vi), accumulate=True)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    t = dl.tensor(xi.astype(np.int64))  # in place, through a non-leading axis
    t.index_put_((slice(None), dl.tensor(idx[:40] % 32)), dl.tensor(np.int64(3)), True)
    w = torch.tensor(xi.astype(np.int64))
    w.index_add_(1, torch.tensor(idx[:40] % 32), torch.full((50, 40), 3))
    np.testing.assert_array_equal(t.numpy(), w.numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_gather_and_scatter_add_with_repeats(device):
    x = rng(0).standard_normal((40, 50))
    for dim, shape in ((1, (40, 30)), (0, (60, 50))):
        idx = rng(1).integers(0, x.shape[dim], shape)
        compare(
            lambda a, i, dim=dim: a.gather(dim, i),
            lambda a, i, dim=dim: a.gather(dim, i),
            x,
            idx,
            device=device,
            atol=1e-12,
            rtol=1e-12,
        )
        src = rng(2).standard_normal(shape)
        compare(
            lambda a, s, i, dim=dim: a.scatter_add(dim, i, s),
            lambda a, s, i, dim=dim: a.scatter_add(dim, i, s),
            x,
            src,
            idx,
            device=device,
            atol=1e-12,
            rtol=1e-12,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "shape,repeats,dim",
    [
        ((30, 20), 4, 0),
        ((30, 20), 4, 1),
        ((4, 5, 6), 3, -2),
        ((4, 5, 6), 1, 2),
        ((4, 5, 6), 20, 2),  # more than the sum's unrolled copies
        ((4, 5), 0, 1),
        ((4, 5), 3, None),
        ((4, 5), [2, 2, 2, 2], 0),  # one count for all, given as a list
        ((4, 5), [0, 3, 1, 40], 0),  # counts that differ: the scatter path
        ((4, 5), [1, 0, 2, 0, 5], 1),
    ],
)
def test_repeat_interleave(device, shape, repeats, dim):
    x = rng(0).standard_normal(shape)

    def run(lib):
        def fn(a):
            r = lib.tensor(repeats) if isinstance(repeats, list) else repeats
            return lib.repeat_interleave(a, r, dim=dim)

        return fn

    compare(run(dl), run(torch), x, device=device, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_repeat_interleave_gradcheck_and_double_backward(device):
    x = rng(0).standard_normal((3, 4))
    if device == "cpu":  # finite differences on the CPU; on cuda check_gradgrad follows torch
        gradcheck(lambda a: dl.repeat_interleave(a, 3, dim=1), x)
        gradcheck(lambda a: dl.repeat_interleave(a, dl.tensor([1, 0, 4]), dim=0), x)
    check_gradgrad(lambda m, a: m.repeat_interleave(a * a, 3, dim=1), x, device=device)
    check_gradgrad(lambda m, a: m.repeat_interleave(a * a, 2), x, device=device)
    idx = np.array([2, 0, 2, 2, 1])
    on = lambda m, a, v: m.tensor(v, device=a.device)  # an index on a's device
    check_gradgrad(lambda m, a: m.index_select(a * a, 0, on(m, a, idx)), x, device=device)
    src = rng(1).standard_normal((3, 5))
    check_gradgrad(
        lambda m, a, s: m.index_add(a * a, 1, on(m, a, idx % 4), s * s), x, src, device=device
    )
    check_gradgrad(
        lambda m, a, v: m.index_put(a * a, (on(m, a, idx),), v * v, accumulate=True),
        rng(2).standard_normal((3, 4)),
        rng(3).standard_normal((5, 4)),
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_one_hot(device):
    F, T = dl.nn.functional, torch.nn.functional
    r = rng(0)
    for shape, c in (((50,), 10), ((4, 6), 7), ((0,), 3), ((3, 0, 2), 5), ((), 4)):
        v = r.integers(0, c, shape)
        got = F.one_hot(dl.tensor(v, device=device), c)
        want = T.one_hot(torch.tensor(v), c)
        assert got.dtype == dl.int64 and tuple(got.shape) == tuple(want.shape)
        assert_close(got, want, 0, 0)
    v = np.array([[3, 1], [0, 3]], np.int32)[:, ::-1]  # non-contiguous, inferred classes
    assert_close(F.one_hot(dl.tensor(v)), T.one_hot(torch.tensor(v.copy()).long()), 0, 0)


def test_rounds_hold_each_index_once_in_order(monkeypatch):
    r = rng(0)
    for n, k in ((10, 1), (10, 7), (50, 400), (3, 500), (70000, 300)):
        idx = r.integers(0, n, k)
        idx[: k // 3] = idx[0]  # one index repeated often: a tail
        rounds, tails = indexing._dup_rounds(idx, n)
        seen = np.concatenate([*rounds, *tails]) if tails else np.concatenate(rounds)
        assert sorted(seen.tolist()) == list(range(k))  # every position once
        for p in rounds:
            assert np.unique(idx[p]).size == p.size
            assert np.all(np.diff(idx[p]) > 0)
        nth = {}  # round r holds each index's r-th occurrence
        for rnd, p in enumerate(rounds):
            for j in p.tolist():
                nth.setdefault(int(idx[j]), []).append((rnd, j))
        for occ in nth.values():
            assert [j for _, j in occ] == sorted(j for _, j in occ)
        for p in tails:
            assert np.all(idx[p] == idx[p[0]]) and np.all(np.diff(p) > 0)
            done = [j for _, j in nth.get(int(idx[p[0]]), [])]
            assert not done or max(done) < p[0]
    # the element-wise path in several chunks of rows
    monkeypatch.setattr(indexing, "_CHUNK", 64)
    x = r.standard_normal((9, 11, 3))
    idx = r.integers(0, 11, 40)
    src = r.standard_normal((9, 40, 3))
    got = dl.index_add(dl.tensor(x), 1, dl.tensor(idx), dl.tensor(src)).numpy()
    np.testing.assert_array_equal(got, _sequential(x, 1, idx, src))
