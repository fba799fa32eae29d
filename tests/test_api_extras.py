"""mode, nanmedian and the in-place shape methods (squeeze_, unsqueeze_, t_, transpose_,
swapdims_, swapaxes_) against torch: values, indices, gradients, dtypes and errors."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAN = float("nan")


# ------------------------------------------------------------------ mode


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("dim,keepdim", [(-1, False), (0, True), (1, False)])
def test_mode_matches_torch_on_short_rows(device, dtype, dim, keepdim):
    # few distinct values: many ties between values and between positions; rows of up to
    # 16 elements, where torch's CPU index is the last occurrence
    x = rng(3).integers(-2, 3, size=(5, 9, 4)).astype(dtype)
    compare(
        lambda a: dl.mode(a, dim, keepdim),
        lambda a: torch.mode(a, dim, keepdim),
        x,
        device=device,
    )
    compare(lambda a: a.mode(dim=dim), lambda a: a.mode(dim=dim), x, device=device)


def test_mode_long_rows_values_match_and_index_is_last_occurrence():
    x = rng(4).integers(0, 4, size=(30, 40)).astype(np.float32)
    v, i = dl.mode(dl.tensor(x), 1)
    tv, _ = torch.mode(torch.tensor(x), 1)
    assert_close(v, tv)
    for row, val, idx in zip(x, v.numpy(), i.numpy()):
        assert idx == np.nonzero(row == val)[0][-1]


def test_mode_special_inputs():
    t = dl.tensor([3.0, 1.0, 3.0, 1.0, 2.0, 1.0, 3.0])
    assert dl.mode(t).values.item() == 1.0 and dl.mode(t).indices.item() == 5  # as torch
    zero = dl.mode(dl.tensor([0.0, -0.0, 1.0, -0.0]))  # -0.0 == 0.0: the last one is picked
    assert zero.indices.item() == 3 and np.signbit(zero.values.item())
    b = dl.mode(dl.tensor([True, False, True]))
    assert b.values.dtype == dl.bool and b.values.item() is True and b.indices.item() == 2
    s = dl.mode(dl.tensor(4.0))
    assert s.values.shape == () and s.indices.item() == 0
    e = dl.mode(dl.zeros(0, 3), 1)
    assert e.values.shape == (0,) and e.indices.dtype == dl.int64
    # each NaN counts once and loses ties to numbers (torch's CPU answer in ties depends on
    # its sort's order; tests/test_views_session9.py compares with torch)
    n = dl.mode(dl.tensor([NAN, 2.0, NAN, 1.0]))
    assert n.values.item() == 1.0 and n.indices.item() == 3
    n = dl.mode(dl.tensor([2.0, NAN, 2.0, NAN, 1.0]))
    assert n.values.item() == 2.0 and n.indices.item() == 2


def test_mode_errors_like_torch():
    for ours, theirs, exc in [
        (lambda: dl.mode(dl.zeros(2, 0), 1), lambda: torch.mode(torch.zeros(2, 0), 1), IndexError),
        (lambda: dl.mode(dl.zeros(2, 3), 2), lambda: torch.mode(torch.zeros(2, 3), 2), IndexError),
    ]:
        with pytest.raises(exc):
            ours()
        with pytest.raises(exc):
            theirs()


# ------------------------------------------------------------------ nanmedian


def _with_nans(shape, seed, frac=0.3):
    r = rng(seed)
    x = r.integers(0, 5, size=shape).astype(np.float32)  # ties
    x[r.random(shape) < frac] = np.nan
    return x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim,keepdim", [(1, False), (0, True), (-1, True)])
def test_nanmedian_dim_matches_torch(device, dim, keepdim):
    x = _with_nans((6, 7), 5)
    x[0] = np.nan  # an all-NaN row (along dim 1): torch's index there is arbitrary
    x[:, 0] = 1.0  # ... so no all-NaN slice along the compared dim
    if dim == 1:
        x[0, 0] = np.nan
        x[0, 1] = 2.0
    compare(
        lambda a: dl.nanmedian(a, dim, keepdim),
        lambda a: torch.nanmedian(a, dim, keepdim),
        x,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_nanmedian_all_matches_torch(device):
    for x in (
        _with_nans((4, 5), 6),  # ties with the median share its gradient
        np.array([1.0, 2.0, 2.0, NAN, 2.0, 3.0], np.float32),
        np.full(3, NAN, np.float64),  # all NaN: NaN, gradient shared by the NaNs
        rng(7).standard_normal((3, 4)),
    ):
        compare(dl.nanmedian, torch.nanmedian, x, device=device)
        compare(lambda a: a.nanmedian(), lambda a: a.nanmedian(), x, device=device)


def test_nanmedian_gradcheck_and_dtypes():
    x = rng(8).permutation(20).reshape(4, 5).astype(np.float64)
    x[1, 2] = x[3, 0] = np.nan
    gradcheck(lambda a: dl.nanmedian(a, 1).values, x)
    gradcheck(dl.nanmedian, x)
    ints = np.array([[3, 1, 2, 4], [7, 7, 1, 0]])
    compare(lambda a: dl.nanmedian(a, 1), lambda a: torch.nanmedian(a, 1), ints)
    compare(dl.nanmedian, torch.nanmedian, ints)
    assert dl.nanmedian(dl.tensor([1.0, 2.0], dtype=dl.float64)).dtype == dl.float64
    empty = dl.nanmedian(dl.tensor([]))
    assert empty.shape == () and np.isnan(empty.item())
    s = dl.nanmedian(dl.tensor(5.0), 0)
    assert s.values.item() == 5.0 and s.indices.item() == 0


def test_nanmedian_all_nan_row_picks_a_nan_and_routes_its_gradient():
    x = dl.tensor([[NAN, NAN, NAN], [3.0, NAN, 1.0]], requires_grad=True)
    v, i = dl.nanmedian(x, 1)
    assert np.isnan(v[0].item()) and i.tolist() == [0, 2]
    v[1].backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def test_nanmedian_errors_like_torch():
    with pytest.raises(IndexError):
        dl.nanmedian(dl.zeros(2, 0), 1)
    with pytest.raises(IndexError):
        torch.nanmedian(torch.zeros(2, 0), 1)
    with pytest.raises(IndexError):
        dl.nanmedian(dl.zeros(2, 3), 3)


# ------------------------------------------------------------------ in-place shape methods

SHAPE_OPS = [  # (method, args, input shape)
    ("squeeze_", (), (2, 1, 3, 1)),
    ("squeeze_", (1,), (2, 1, 3)),
    ("squeeze_", ((1, 3),), (2, 1, 3, 1)),
    ("unsqueeze_", (-1,), (2, 3)),
    ("t_", (), (2, 3)),
    ("transpose_", (0, 2), (2, 3, 4)),
    ("swapdims_", (1, -1), (2, 3, 4)),
    ("swapaxes_", (0, 1), (2, 3)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", range(len(SHAPE_OPS)))
def test_inplace_shape_methods_match_torch(device, case):
    name, args, shape = SHAPE_OPS[case]
    x = rng(case).standard_normal(shape).astype(np.float32)

    def run(a):
        y = a * 2  # a non-leaf: its new shape joins the graph
        before = y._version
        out = getattr(y, name)(*args)
        assert out is y and y._version == before + 1
        return y

    compare(run, run, x, device=device)
    # no graph: only the shape changes, in place, with the same memory
    d = dl.tensor(x, device=device)
    t = torch.tensor(x)
    getattr(d, name)(*args)
    getattr(t, name)(*args)
    assert_close(d, t)


def test_inplace_shape_on_views_and_leaves():
    x0 = rng(1).standard_normal((2, 3)).astype(np.float32)
    w0 = rng(2).standard_normal((1, 3)).astype(np.float32)

    def through_view(lib, x, w):
        b = x * 1
        v = b[0]
        v.unsqueeze_(0)  # a view of b: it changes shape and stays a view
        v.mul_(w)  # and a write through it reaches b
        return b, v

    compare(lambda x, w: through_view(dl, x, w), lambda x, w: through_view(torch, x, w), x0, w0)
    for lib in (dl, torch):  # a leaf that requires grad: refused, as in torch
        leaf = lib.ones(2, 1, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            leaf.squeeze_()
        with (dl if lib is dl else torch).no_grad():
            leaf.squeeze_()  # allowed where nothing is recorded
        assert tuple(leaf.shape) == (2,) and leaf.requires_grad and leaf.is_leaf
    d = dl.ones(2, 1)
    alias = d.detach()
    d.t_()
    d[0, 1] = 5.0  # same memory, old shape for the alias (as in torch)
    assert d.shape == (1, 2) and alias.shape == (2, 1) and alias[1, 0].item() == 5.0


def test_inplace_shape_errors():
    for lib in (dl, torch):
        with pytest.raises(RuntimeError, match="2 dimensions"):
            lib.ones(2, 3, 4).t_()
        with pytest.raises(IndexError):
            lib.ones(3).squeeze_(5)
        with pytest.raises(IndexError):
            lib.ones(3).unsqueeze_(3)
        a = lib.ones(3, 1, requires_grad=True)
        b = a * 1
        c = b * b  # saved b with its old shape and version
        b.squeeze_()
        with pytest.raises(RuntimeError, match="modified by an in"):
            c.sum().backward()
    # where darklib's graph could not follow the new shape it refuses (torch allows it)
    y = dl.ones(2, 1, requires_grad=True) * 2
    with dl.no_grad(), pytest.raises(RuntimeError, match="no_grad"):
        y.squeeze_()
    # (a tensor that others view is reshaped in place as in torch: its views follow it,
    # see tests/test_views_session9.py)


@pytest.mark.parametrize("device", DEVICES)
def test_mode_and_median_of_empty_inputs_like_torch(device):
    # no rows to reduce: empty results (CuPy's bincount would fail here: scatter-add instead)
    for shape, dim in (((0, 5), 1), ((3, 0, 4), 2)):
        v, i = dl.mode(dl.zeros(*shape, device=device), dim)
        tv, ti = torch.mode(torch.zeros(*shape), dim)
        assert tuple(v.shape) == tuple(tv.shape) and tuple(i.shape) == tuple(ti.shape)
    # an empty integer tensor's median keeps its dtype, NaN cast on the host as torch's CPU
    for dt in ("int64", "bool"):
        got = dl.zeros(0, dtype=getattr(dl, dt), device=device).median()
        want = torch.zeros(0, dtype=getattr(torch, dt)).median()
        assert got.cpu().item() == want.item() and str(got.dtype).endswith(dt)
