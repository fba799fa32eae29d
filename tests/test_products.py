"""darklib.ops.products against torch: tensordot, kron, block_diag, cartesian_prod,
combinations, vander, addmv/addr/addbmm, histc/histogram, renorm, the trapezoid rules,
cov/corrcoef, diag_embed/diagflat, the scatter family and narrow_copy: values, dtypes,
gradients (torch's and float64 central differences), second derivatives, Tensor methods
and the errors torch raises."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _x(*shape, seed=0, dtype=np.float64):
    return rng(seed).standard_normal(shape).astype(dtype)


def _gradgrad(fn, *arrays, device="cpu", atol=1e-9, rtol=1e-7):
    """Gradients with create_graph, then gradients of those, equal torch's (float64)."""
    res = {}
    for m in (torch, dl):
        kw = {"device": device} if m is dl else {}
        xs = [m.tensor(a, requires_grad=True, **kw) for a in arrays]
        y = fn(m, *xs)
        v = m.tensor(rng(5).standard_normal(tuple(y.shape)), **kw)
        gs = m.autograd.grad(y, xs, v, create_graph=True)
        u = [m.tensor(rng(7 + i).standard_normal(tuple(g.shape)), **kw) for i, g in enumerate(gs)]
        s = sum((g * ui).sum() for g, ui in zip(gs, u))
        ggs = m.autograd.grad(s, xs, allow_unused=True, materialize_grads=True)
        res[m.__name__] = (gs, ggs)
    for what, i in (("first", 0), ("second", 1)):
        for k, (d, t) in enumerate(zip(res["darklib"][i], res["torch"][i])):
            assert_close(d, t, atol, rtol, f"{what} gradient {k}")


# ------------------------------------------------------------------ tensordot, kron

TENSORDOT = [
    ((3, 4, 5), (4, 5, 6), 2),
    ((3, 4), (4, 5), 1),
    ((3, 4), (2,), 0),
    ((), (), 0),
    ((2, 3), (3, 2), [[1, 0], [0, 1]]),
    ((3, 4, 5), (5, 2, 3), ([0, 2], [2, 0])),
    ((3, 4, 5), (5, 2, 4), ([-1, -2], [0, 2])),
    ((3, 1), (4, 5), ([1], [0])),  # a contracted dim of size 1 sums the other side
    ((2, 4), (1, 3), ([1], [0])),
    ((2, 0, 3), (0, 3), 2),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sa, sb, dims", TENSORDOT)
def test_tensordot(device, sa, sb, dims):
    a, b = _x(*sa), _x(*sb, seed=1)
    compare(
        lambda x, y: dl.tensordot(x, y, dims),
        lambda x, y: torch.tensordot(x, y, dims),
        a,
        b,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_tensordot_dims_tensor_and_ints(device):
    a, b = _x(3, 4), _x(4, 5, seed=1)
    for dims in ([[1], [0]], 1, [1]):
        compare(
            lambda x, y, d=dims: dl.tensordot(x, y, dl.tensor(d)),
            lambda x, y, d=dims: torch.tensordot(x, y, torch.tensor(d)),
            a,
            b,
            device=device,
        )
    ia, ib = np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)
    compare(lambda x, y: dl.tensordot(x, y, 1), lambda x, y: torch.tensordot(x, y, 1), ia, ib)


def test_tensordot_errors():
    a, b = dl.randn(3, 4), dl.randn(4, 5)
    with pytest.raises(RuntimeError, match="dims >= 0"):
        dl.tensordot(a, b, -1)
    with pytest.raises(RuntimeError, match="dims <= ndim"):
        dl.tensordot(a, b, 3)
    with pytest.raises(RuntimeError, match=r"size 3 in dim 0 and second has size 4 in dim 0"):
        dl.tensordot(a, b, 2)
    with pytest.raises(RuntimeError, match="same length"):
        dl.tensordot(a, b, ([1, 0], [0]))
    with pytest.raises(RuntimeError, match="multiple times"):
        dl.tensordot(a, b, ([1, 1], [0, 0]))
    with pytest.raises(IndexError, match="out of range"):
        dl.tensordot(a, b, ([5], [0]))
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.tensordot(a, b.double(), 1)
    with pytest.raises(TypeError, match="dims to be int"):
        dl.tensordot(a, b, 1.5)
    with pytest.raises(TypeError, match="list of ints"):
        dl.tensordot(a, b, (1, 0))
    with pytest.raises(RuntimeError, match=r"shape \(2, k\)"):
        dl.tensordot(a, b, dl.tensor([1, 0]))
    with pytest.raises(IndexError, match="no dimensions"):
        dl.tensordot(dl.tensor(2.0), dl.tensor([3.0]), ([0], [0]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "sa, sb", [((2, 3), (4, 1, 2)), ((), (3,)), ((2, 3), (2, 3)), ((3,), (2, 2)), ((0, 2), (3,))]
)
def test_kron(device, sa, sb):
    compare(dl.kron, torch.kron, _x(*sa), _x(*sb, seed=1), device=device)
    compare(lambda a, b: a.kron(b), torch.kron, _x(*sa), _x(*sb, seed=1), device=device)


def test_kron_dtypes():
    compare(dl.kron, torch.kron, _x(2, 3, dtype=np.float32), np.arange(4))
    compare(dl.kron, torch.kron, _x(2), _x(2, dtype=np.float32))
    compare(dl.kron, torch.kron, np.array([True]), np.array([True, False]))
    with pytest.raises(TypeError, match="must be Tensor"):
        dl.kron(dl.ones(2), [1, 2])


# ------------------------------------------------------------------ block_diag, combinatorics


@pytest.mark.parametrize("device", DEVICES)
def test_block_diag(device):
    arrays = [_x(2, 3), _x(), _x(4, seed=2), _x(0, 2, seed=3), _x(2, 0, seed=4), _x(0, seed=5)]
    compare(lambda *t: dl.block_diag(*t), lambda *t: torch.block_diag(*t), *arrays, device=device)
    ints = (np.arange(3), _x(1, 2, dtype=np.float32))  # promoted, as torch
    compare(lambda *t: dl.block_diag(*t), lambda *t: torch.block_diag(*t), *ints, device=device)


def test_block_diag_edges_and_errors():
    e = dl.block_diag()
    assert tuple(e.shape) == (1, 0) and e.dtype == dl.float32
    with pytest.raises(RuntimeError, match="Input 1 has 3 dimensions"):
        dl.block_diag(dl.ones(2), dl.ones(2, 2, 2))
    with pytest.raises(TypeError, match="element 1"):
        dl.block_diag(dl.ones(2), [1, 2])


@pytest.mark.parametrize("device", DEVICES)
def test_cartesian_prod(device):
    compare(
        lambda *t: dl.cartesian_prod(*t),
        lambda *t: torch.cartesian_prod(*t),
        _x(2),
        _x(3, seed=1),
        _x(4, seed=2),
        device=device,
    )
    compare(dl.cartesian_prod, torch.cartesian_prod, _x(3), device=device)
    compare(
        lambda *t: dl.cartesian_prod(*t),
        lambda *t: torch.cartesian_prod(*t),
        np.arange(3),
        np.arange(2),
        device=device,
    )


def test_cartesian_prod_errors():
    with pytest.raises(RuntimeError, match=r"1D vector, but got shape \[2, 2\]"):
        dl.cartesian_prod(dl.ones(2, 2), dl.ones(2))
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.cartesian_prod(dl.ones(2), dl.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="non-empty"):
        dl.cartesian_prod()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("r", [0, 1, 2, 3, 6])
@pytest.mark.parametrize("with_replacement", [False, True])
def test_combinations(device, r, with_replacement):
    compare(
        lambda t: dl.combinations(t, r, with_replacement),
        lambda t: torch.combinations(t, r, with_replacement),
        _x(5),
        device=device,
    )


def test_combinations_edges_and_errors():
    compare(lambda t: dl.combinations(t), lambda t: torch.combinations(t), np.arange(4))
    compare(lambda t: dl.combinations(t, 2), lambda t: torch.combinations(t, 2), _x(0))
    with pytest.raises(RuntimeError, match="non-negative number, but got -1"):
        dl.combinations(dl.ones(3), -1)
    with pytest.raises(RuntimeError, match=r"1D vector, but got shape \[\]"):
        dl.combinations(dl.tensor(1.0))
    with pytest.raises(TypeError, match="'r' must be int"):
        dl.combinations(dl.ones(3), 2.5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N", [None, 0, 1, 2, 5])
@pytest.mark.parametrize("increasing", [False, True])
def test_vander(device, N, increasing):
    x = _x(4)
    x[1] = 0.0  # running products: exact gradients at 0
    # torch's own vander gradient fails for N >= 2 (an in-place cumprod in its graph):
    # values against torch, gradients against central differences
    compare(
        lambda t: dl.vander(t, N, increasing),
        lambda t: torch.vander(t, N, increasing),
        x,
        device=device,
        grad=False,
    )
    if device == "cpu" and N not in (0, 1):  # (N <= 1: constant ones, no graph, as torch)
        gradcheck(lambda t: dl.vander(t, N, increasing), x)


def test_vander_dtypes_and_errors():
    for a in (np.arange(4, dtype=np.int32), np.array([True, False]), _x(3, dtype=np.float16)):
        compare(lambda t: dl.vander(t, 3), lambda t: torch.vander(t, 3), a, grad=False)
    with pytest.raises(RuntimeError, match="N must be non-negative"):
        dl.vander(dl.ones(2), -1)
    with pytest.raises(RuntimeError, match="one-dimensional"):
        dl.vander(dl.ones(2, 2))
    with pytest.raises(TypeError, match="'N' must be int"):
        dl.vander(dl.ones(2), 2.5)


# ------------------------------------------------------------------ addmv, addr, addbmm

SCALES = [{}, {"beta": 0.5, "alpha": 2.0}, {"beta": 0}, {"alpha": 0, "beta": -1.5}]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", SCALES)
@pytest.mark.parametrize("sin", [(3,), (1,), ()])
def test_addmv(device, kw, sin):
    compare(
        lambda i, m, v: dl.addmv(i, m, v, **kw),
        lambda i, m, v: torch.addmv(i, m, v, **kw),
        _x(*sin),
        _x(3, 4, seed=1),
        _x(4, seed=2),
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", SCALES)
@pytest.mark.parametrize("sin", [(3, 4), (4,), (3, 1), ()])
def test_addr(device, kw, sin):
    compare(
        lambda i, a, b: dl.addr(i, a, b, **kw),
        lambda i, a, b: torch.addr(i, a, b, **kw),
        _x(*sin),
        _x(3, seed=1),
        _x(4, seed=2),
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", SCALES)
@pytest.mark.parametrize("shapes", [((3, 5), (2, 3, 4), (2, 4, 5)), ((5,), (0, 3, 4), (0, 4, 5))])
def test_addbmm(device, kw, shapes):
    si, s1, s2 = shapes
    compare(
        lambda i, a, b: dl.addbmm(i, a, b, **kw),
        lambda i, a, b: torch.addbmm(i, a, b, **kw),
        _x(*si),
        _x(*s1, seed=1),
        _x(*s2, seed=2),
        device=device,
    )


def test_add_products_beta0_ignores_nan_and_int_bool():
    nan = np.full(3, np.nan)
    compare(
        lambda i, m, v: dl.addmv(i, m, v, beta=0),
        lambda i, m, v: torch.addmv(i, m, v, beta=0),
        nan,
        _x(3, 4),
        _x(4, seed=1),
    )
    compare(
        lambda i, a, b: dl.addr(i, a, b, beta=0, alpha=3),
        lambda i, a, b: torch.addr(i, a, b, beta=0, alpha=3),
        np.full((3, 4), np.inf),
        _x(3),
        _x(4, seed=1),
    )
    ints = (np.arange(3), np.ones((3, 3), np.int64), np.arange(3))
    for kw in ({}, {"beta": 2, "alpha": 3}, {"beta": 0.5}):
        compare(
            lambda i, m, v, kw=kw: dl.addmv(i, m, v, **kw),
            lambda i, m, v, kw=kw: torch.addmv(i, m, v, **kw),
            *ints,
        )
    bools = (np.array([[True, False]]), np.array([True]), np.array([False, False]))
    for kw in ({}, {"beta": 0}, {"alpha": 0}, {"beta": 2}):
        compare(
            lambda i, a, b, kw=kw: dl.addr(i, a, b, **kw),
            lambda i, a, b, kw=kw: torch.addr(i, a, b, **kw),
            *bools,
        )
    # addr promotes, as torch's
    compare(dl.addr, torch.addr, _x(3, 4, dtype=np.float32), _x(3), _x(4, seed=1))


def test_add_products_errors():
    with pytest.raises(RuntimeError, match=r"size mismatch, got input \(2\), mat \(3x4\)"):
        dl.addmv(dl.randn(2), dl.randn(3, 4), dl.randn(4))
    with pytest.raises(RuntimeError, match=r"vec \(5\)"):
        dl.addmv(dl.randn(3), dl.randn(3, 4), dl.randn(5))
    with pytest.raises(RuntimeError, match="vector \\+ matrix @ vector expected, got 2, 2, 1"):
        dl.addmv(dl.randn(3, 1), dl.randn(3, 4), dl.randn(4))
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.addmv(dl.randn(3), dl.randn(3, 4), dl.randn(4).double())
    with pytest.raises(RuntimeError, match=r"cannot be expanded to the shape \[3, 5\]"):
        dl.addr(dl.randn(3, 4), dl.randn(3), dl.randn(5))
    with pytest.raises(RuntimeError, match="Expected 1-D argument vec1, but got 2-D"):
        dl.addr(dl.randn(3, 4), dl.randn(3, 1), dl.randn(4))
    with pytest.raises(RuntimeError, match="same number of batches, got 2 and 3"):
        dl.addbmm(dl.randn(3, 5), dl.randn(2, 3, 4), dl.randn(3, 4, 5))
    with pytest.raises(RuntimeError, match=r"Incompatible matrix sizes for bmm \(3x4 and 3x5\)"):
        dl.addbmm(dl.randn(3, 5), dl.randn(2, 3, 4), dl.randn(2, 3, 5))
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor"):
        dl.addbmm(dl.randn(3, 5), dl.randn(3, 4), dl.randn(2, 4, 5))
    with pytest.raises(RuntimeError, match=r"cannot be expanded to the shape \[3, 5\]"):
        dl.addbmm(dl.randn(2, 3, 5), dl.randn(2, 3, 4), dl.randn(2, 4, 5))


def test_add_products_methods_and_inplace():
    i3, m, v = _x(3), _x(3, 4, seed=1), _x(4, seed=2)
    compare(lambda i, a, b: i.addmv(a, b, beta=2), lambda i, a, b: i.addmv(a, b, beta=2), i3, m, v)
    compare(
        lambda i, a, b: i.clone().addmv_(a, b, alpha=0.5),
        lambda i, a, b: i.clone().addmv_(a, b, alpha=0.5),
        i3,
        m,
        v,
    )
    i34, a3 = _x(3, 4), _x(3, seed=3)
    compare(lambda i, a, b: i.addr(a, b), lambda i, a, b: i.addr(a, b), i34, a3, v)
    compare(
        lambda i, a, b: i.clone().addr_(a, b, beta=0.5),
        lambda i, a, b: i.clone().addr_(a, b, beta=0.5),
        i34,
        a3,
        v,
    )
    b1, b2 = _x(2, 3, 4, seed=4), _x(2, 4, 5, seed=5)
    i35 = _x(3, 5)
    compare(lambda i, a, b: i.addbmm(a, b), lambda i, a, b: i.addbmm(a, b), i35, b1, b2)
    compare(
        lambda i, a, b: i.clone().addbmm_(a, b, beta=2),
        lambda i, a, b: i.clone().addbmm_(a, b, beta=2),
        i35,
        b1,
        b2,
    )
    compare(
        lambda i, a, b: i.clone().addmm_(a, b, beta=2),
        lambda i, a, b: i.clone().addmm_(a, b, beta=2),
        _x(3, 5),
        _x(3, 4),
        _x(4, 5),
    )
    compare(
        lambda i, a, b: i.clone().baddbmm_(a, b, alpha=2),
        lambda i, a, b: i.clone().baddbmm_(a, b, alpha=2),
        _x(2, 3, 5),
        b1,
        b2,
    )


# ------------------------------------------------------------------ histograms

HIST_DATA = {
    "normal": _x(1000, dtype=np.float32),
    "grid": np.linspace(0, 1, 101).astype(np.float32),  # elements on bin edges
    "wide64": _x(500, seed=3) * 37.5 + 11,
    "ints_as_floats": rng(4).integers(-3, 4, 200).astype(np.float32),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(HIST_DATA))
@pytest.mark.parametrize("args", [(), (17,), (10, 0.1, 0.7), (7, -1.0, 1.5), (5, 2, 2)])
def test_histc(device, name, args):
    compare(
        lambda t: dl.histc(t, *args),
        lambda t: torch.histc(t, *args),
        HIST_DATA[name],
        device=device,
        atol=0,
        rtol=0,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_histc_edges(device):
    for a in (np.zeros(0, np.float32), np.ones(3, np.float32), _x(50, dtype=np.float16)):
        compare(lambda t: dl.histc(t, 4), lambda t: torch.histc(t, 4), a, device=device)
    x = dl.tensor(HIST_DATA["normal"], device=device, requires_grad=True)
    h = x.histc(bins=9, min=-1, max=1)
    assert not h.requires_grad  # no gradient, as torch
    assert_close(h, torch.histc(torch.tensor(HIST_DATA["normal"]), 9, -1, 1), 0, 0)


def test_histc_errors():
    x = dl.randn(5)
    with pytest.raises(RuntimeError, match="bins must be > 0, but got 0"):
        dl.histc(x, bins=0)
    with pytest.raises(RuntimeError, match="bins must be > 0, but got -1"):
        dl.histc(x, bins=-1)
    with pytest.raises(RuntimeError, match="max must be larger than min"):
        dl.histc(x, min=2, max=1)
    with pytest.raises(RuntimeError, match="not finite"):
        dl.histc(dl.tensor([1.0, float("inf")]), bins=4)
    with pytest.raises(RuntimeError, match="not finite"):
        dl.histc(dl.tensor([1.0, float("nan")]), bins=4)
    with pytest.raises(RuntimeError, match="not finite"):
        dl.histc(x, min=float("-inf"), max=3)
    with pytest.raises(TypeError, match="int64"):
        dl.histc(dl.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="'bins' must be int"):
        dl.histc(x, bins=2.5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(HIST_DATA))
@pytest.mark.parametrize("bins", [1, 4, 13, 100])
def test_histogram_int_bins(device, name, bins):
    a = HIST_DATA[name]
    for kw in ({}, {"range": (-1.0, 2.0)}, {"density": True}, {"range": (0.5, 0.5)}):
        compare(
            lambda t, kw=kw: dl.histogram(t, bins, **kw),
            lambda t, kw=kw: torch.histogram(t, bins, **kw),
            a,
            device=device,
            atol=0,
            rtol=1e-6,
            grad=False,
        )


@pytest.mark.parametrize("device", DEVICES)
def test_histogram_weights_edges_and_shapes(device):
    a = HIST_DATA["normal"].reshape(10, 100)
    w = np.abs(_x(10, 100, seed=9, dtype=np.float32))
    edges = np.array([-2, -1, 0, 0.25, 3], np.float32)
    for density in (False, True):
        compare(
            lambda t, u, e, d=density: dl.histogram(t, e, weight=u, density=d),
            lambda t, u, e, d=density: torch.histogram(t, e, weight=u, density=d),
            a,
            w,
            edges,
            device=device,
            grad=False,
        )
        compare(
            lambda t, u, d=density: t.histogram(6, range=(-1, 1), weight=u, density=d),
            lambda t, u, d=density: t.histogram(6, range=(-1, 1), weight=u, density=d),
            a,
            w,
            device=device,
            grad=False,
        )
    for data in (np.zeros(0, np.float32), np.ones((2, 3))):
        compare(lambda t: dl.histogram(t, 4), lambda t: torch.histogram(t, 4), data, grad=False)
    compare(  # decreasing edges: nothing falls between them, as torch
        lambda t, e: dl.histogram(t, e),
        lambda t, e: torch.histogram(t, e),
        a,
        np.array([3.0, 1.0], np.float32),
        grad=False,
    )


def test_histogram_has_no_derivative():
    x = dl.tensor([1.0, 2.0, 2.5], requires_grad=True)
    hist, edges = dl.histogram(x, 4)
    assert hist.requires_grad and edges.requires_grad  # as torch's outputs
    assert isinstance(dl.histogram(x, 2), tuple) and dl.histogram(x, 2).hist.shape == (2,)
    with pytest.raises(NotImplementedError, match="derivative for 'histogram'"):
        hist.sum().backward()


def test_histogram_errors():
    x = dl.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="bins must be > 0, but got -1"):
        dl.histogram(x, -1)
    with pytest.raises(RuntimeError, match="bins must be > 0, but got 0"):
        dl.histogram(x, dl.tensor([1.0]))
    with pytest.raises(RuntimeError, match=r"min should not exceed max, but got min 3\.0 max 1\.0"):
        dl.histogram(x, 4, range=(3.0, 1.0))
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.histogram(x, dl.tensor([1.0, 3.0], dtype=dl.float64))
    with pytest.raises(RuntimeError, match="one dimension"):
        dl.histogram(x, dl.tensor([[1.0, 3.0]]))
    with pytest.raises(RuntimeError, match=r"same shape as input, got weight \[3\]"):
        dl.histogram(x, 2, weight=dl.tensor([1.0, 2, 3]))
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.histogram(x, 2, weight=dl.tensor([1.0, 2], dtype=dl.float64))
    with pytest.raises(RuntimeError, match="not finite"):
        dl.histogram(dl.tensor([1.0, float("nan")]), 2)
    with pytest.raises(RuntimeError, match="not finite"):
        dl.histogram(x, 2, range=(float("-inf"), 1.0))
    with pytest.raises(TypeError, match="int64"):
        dl.histogram(dl.tensor([1, 2]), 4)
    with pytest.raises(TypeError, match="float16"):
        dl.histogram(x.half(), 4)
    with pytest.raises(TypeError, match="'bins' must be int"):
        dl.histogram(x, 2.5)


# ------------------------------------------------------------------ renorm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [1, 2, 3.5, float("inf")])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_renorm(device, p, dim):
    x = _x(3, 4, 2)
    compare(
        lambda t: dl.renorm(t, p, dim, 1.2),
        lambda t: torch.renorm(t, p, dim, 1.2),
        x,
        device=device,
    )
    compare(lambda t: t.renorm(p, dim, 0.0), lambda t: t.renorm(p, dim, 0.0), x, device=device)


def test_renorm_dtypes_inplace_and_fd():
    x = _x(3, 4)
    compare(
        lambda t: dl.renorm(t, 2, 0, 1.0),
        lambda t: torch.renorm(t, 2, 0, 1.0),
        x.astype(np.float16),
        atol=1e-3,
        rtol=1e-3,
    )
    compare(lambda t: dl.renorm(t, 2, 0, 1.0), lambda t: torch.renorm(t, 2, 0, 1.0), x, grad=False)
    compare(lambda t: (t * 1).renorm_(3, 1, 0.5), lambda t: (t * 1).renorm_(3, 1, 0.5), x.copy())
    gradcheck(lambda t: dl.renorm(t, 3, 1, 0.8), x)


def test_renorm_errors():
    a = dl.randn(3, 4)
    with pytest.raises(RuntimeError, match="at least 2 dimensions, got 1"):
        dl.renorm(dl.tensor([3.0, 4.0]), 2, 0, 1)
    with pytest.raises(RuntimeError, match="non-positive-norm"):
        dl.renorm(a, 0, 0, 1)
    with pytest.raises(RuntimeError, match="non-positive-norm"):
        dl.renorm(a, -1, 0, 1)
    with pytest.raises(RuntimeError, match="maxnorm to be >= 0 but got -1"):
        dl.renorm(a, 2, 0, -1)
    with pytest.raises(IndexError, match="out of range"):
        dl.renorm(a, 2, 5, 1)
    with pytest.raises(TypeError, match="floating-point"):
        dl.renorm(dl.ones(2, 2, dtype=dl.int64), 2, 0, 1)


# ------------------------------------------------------------------ trapezoid rules

TRAP = [  # (y shape, x shape or None, kwargs)
    ((3, 4), None, {}),
    ((3, 4), None, {"dx": 0.3, "dim": 0}),
    ((3, 4), (3,), {"dim": 0}),
    ((3, 4), (4,), {}),
    ((3, 4), (3, 4), {}),
    ((3, 4), (1, 4), {}),
    ((2, 5, 3), (2, 5, 3), {"dim": 1}),
    ((5,), None, {"dx": 2}),
    ((3, 1), None, {}),
    ((3, 0), None, {}),
    ((3, 0), (0,), {}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", ["trapezoid", "trapz", "cumulative_trapezoid"])
@pytest.mark.parametrize("ys, xs, kw", TRAP)
def test_trapezoid(device, fn, ys, xs, kw):
    d, t = getattr(dl, fn), getattr(torch, fn)
    y = _x(*ys)
    if xs is None:
        compare(lambda a: d(a, **kw), lambda a: t(a, **kw), y, device=device)
    else:
        x = np.cumsum(np.abs(_x(*xs, seed=1)), axis=-1)
        compare(lambda a, b: d(a, b, **kw), lambda a, b: t(a, b, **kw), y, x, device=device)


def test_trapezoid_int_inputs_and_fd():
    y, x = np.arange(4), np.array([1, 2, 4, 7])
    for fn in ("trapezoid", "cumulative_trapezoid"):
        d, t = getattr(dl, fn), getattr(torch, fn)
        compare(d, t, y)
        compare(d, t, y, x)
        compare(lambda a, f=d: f(a, dx=0.5), lambda a, f=t: f(a, dx=0.5), y)
        compare(d, t, np.zeros((2, 0), np.int64))
        compare(d, t, _x(4, dtype=np.float32), x.astype(np.float64))
        gradcheck(lambda a, b, f=d: f(a, b, dim=0), _x(4, 3), np.cumsum(_x(4, 3, seed=2), 0))
    compare(
        lambda a: dl.trapezoid(a, dx=dl.tensor(2.0)),
        lambda a: torch.trapezoid(a, dx=torch.tensor(2.0)),
        _x(2, 3),
    )


def test_trapezoid_errors():
    with pytest.raises(RuntimeError, match="bool input for `y`"):
        dl.trapezoid(dl.tensor([True, False]))
    with pytest.raises(RuntimeError, match="one `x` value for each sample point"):
        dl.trapezoid(dl.ones(3), dl.ones(2))
    with pytest.raises(RuntimeError, match="size of tensor"):
        dl.trapezoid(dl.ones(2, 3), dl.ones(3, 3))
    with pytest.raises(IndexError, match="no dimensions"):
        dl.trapezoid(dl.tensor(1.0))
    with pytest.raises(IndexError, match="out of range"):
        dl.trapezoid(dl.ones(2, 3), dim=2)
    with pytest.raises(TypeError, match="either x or dx"):
        dl.trapezoid(dl.ones(2, 3), dl.ones(3), dx=2.0)
    with pytest.raises(IndexError, match="no dimensions"):
        dl.cumulative_trapezoid(dl.tensor(1.0))


# ------------------------------------------------------------------ cov, corrcoef

FW = np.array([1, 2, 0, 3, 1])
AW = np.abs(_x(5, seed=8)) + 0.1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("weights", ["none", "f", "a", "fa"])
def test_cov(device, correction, weights):
    x = _x(3, 5)

    def run(m, t, *aw):
        kw = {"correction": correction}
        if "f" in weights:
            kw["fweights"] = m.tensor(FW, **({"device": device} if m is dl else {}))
        if aw:
            kw["aweights"] = aw[0]
        return m.cov(t, **kw)

    arrays = (x, AW) if "a" in weights else (x,)
    compare(lambda *a: run(dl, *a), lambda *a: run(torch, *a), *arrays, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_cov_shapes_dtypes_and_corrcoef(device):
    for a in (_x(5), _x(1, 4), np.arange(10).reshape(2, 5), _x(2, 5, dtype=np.float32)):
        compare(dl.cov, torch.cov, a, device=device)
        compare(dl.corrcoef, torch.corrcoef, a, device=device)
    compare(lambda a: a.cov(correction=0), lambda a: a.cov(correction=0), _x(4, 6), device=device)
    compare(lambda a: a.corrcoef(), lambda a: a.corrcoef(), _x(4, 6), device=device)
    compare(  # a float64 aweights promotes float32 data, as torch
        lambda a, w: dl.cov(a, aweights=w),
        lambda a, w: torch.cov(a, aweights=w),
        _x(2, 5, dtype=np.float32),
        AW,
        device=device,
    )
    # a constant row: NaN correlations, as torch
    compare(dl.corrcoef, torch.corrcoef, np.array([[1.0, 1, 1], [1, 2, 3]]), grad=False)
    gradcheck(dl.corrcoef, _x(3, 6))
    gradcheck(lambda a, w: dl.cov(a, aweights=w, fweights=dl.tensor(FW)), _x(2, 5), AW)


def test_cov_degrees_of_freedom_warning():
    for a, kw in ((_x(2, 3), {"correction": 5}), (_x(2, 1), {}), (_x(2, 0), {})):
        with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
            d = dl.cov(dl.tensor(a), **kw)
        with pytest.warns(UserWarning):
            t = torch.cov(torch.tensor(a), **kw)
        assert_close(d, t)


def test_cov_errors():
    x = dl.randn(2, 3)
    with pytest.raises(RuntimeError, match="two or fewer dimensions but got an input with 3"):
        dl.cov(dl.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match="two or fewer dimensions"):
        dl.corrcoef(dl.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match="fweights to have integral dtype"):
        dl.cov(x, fweights=dl.tensor([1.0, 2, 3]))
    with pytest.raises(RuntimeError, match="fweights cannot be negative"):
        dl.cov(x, fweights=dl.tensor([1, -2, 3]))
    with pytest.raises(RuntimeError, match=r"same numel as there are observations.*2 != 3"):
        dl.cov(x, fweights=dl.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="one or fewer dimensions"):
        dl.cov(x, fweights=dl.tensor([[1, 2, 3]]))
    with pytest.raises(RuntimeError, match="aweights to have floating point dtype"):
        dl.cov(x, aweights=dl.tensor([1, 2, 3]))
    with pytest.raises(RuntimeError, match="aweights cannot be negative"):
        dl.cov(x, aweights=dl.tensor([1.0, -2, 3]))
    with pytest.raises(RuntimeError, match="weights sum to zero"):
        dl.cov(x, aweights=dl.zeros(3))
    with pytest.raises(TypeError, match="'correction' must be int, not float"):
        dl.cov(x, correction=0.5)
    with pytest.raises(TypeError, match="bool dtype is not supported"):
        dl.cov(dl.tensor([[True, False]]))


# ------------------------------------------------------------------ diagonals and scatters


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("args", [(), (1,), (-2,), (0, 0, 2), (1, 0, 2), (-1, 2, 0), (3, 1, 0)])
def test_diag_embed(device, args):
    x = _x(2, 3)
    compare(
        lambda t: dl.diag_embed(t, *args), lambda t: torch.diag_embed(t, *args), x, device=device
    )
    compare(lambda t: t.diag_embed(*args), lambda t: t.diag_embed(*args), x, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_diag_embed_diagflat_shapes_dtypes(device):
    for a in (_x(4), _x(0), np.array([1, 2]), np.array([True, False]), _x(2, 1, 3)):
        compare(dl.diag_embed, torch.diag_embed, a, device=device)
        compare(lambda t: dl.diag_embed(t, -1), lambda t: torch.diag_embed(t, -1), a)
    for a in (_x(), _x(3), _x(2, 2), np.arange(3)):
        for k in (0, 2, -1):
            compare(lambda t, k=k: dl.diagflat(t, k), lambda t, k=k: torch.diagflat(t, k), a)
            compare(lambda t, k=k: t.diagflat(k), lambda t, k=k: t.diagflat(k), a, device=device)


def test_diag_embed_errors():
    with pytest.raises(RuntimeError, match="cannot be identical"):
        dl.diag_embed(dl.ones(2, 3), 1, 0, 0)
    with pytest.raises(IndexError, match="out of range"):
        dl.diag_embed(dl.ones(2, 3), 1, 0, 3)
    with pytest.raises(IndexError, match="out of range"):
        dl.diag_embed(dl.tensor(1.0))


SCATTERS = [  # (function name, input shape, src shape, args)
    ("select_scatter", (4, 3), (3,), (0, 1)),
    ("select_scatter", (3, 2, 4), (3, 4), (1, -1)),
    ("select_scatter", (3,), (), (0, 2)),
    ("slice_scatter", (8, 3), (3, 3), (0, 1, 7, 2)),
    ("slice_scatter", (3, 8), (3, 3), (1, -7, -1, 2)),
    ("slice_scatter", (8, 3), (8, 3), ()),
    ("slice_scatter", (8, 3), (0, 3), (0, 5, 2)),
    ("slice_scatter", (8, 3), (3, 3), (0, 5, 100)),
    ("slice_scatter", (8, 3), (1, 3), (0, -100, 1)),
    ("diagonal_scatter", (3, 4), (3,), (1,)),
    ("diagonal_scatter", (3, 4), (2,), (-1,)),
    ("diagonal_scatter", (3, 4), (0,), (5,)),
    ("diagonal_scatter", (2, 3, 4), (2, 3), (0, 2, 1)),
    ("diagonal_scatter", (3, 2, 4), (2, 2), (1, 2, 0)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, si, ss, args", SCATTERS)
def test_scatters(device, name, si, ss, args):
    d, t = getattr(dl, name), getattr(torch, name)
    x, s = _x(*si), _x(*ss, seed=1)
    compare(lambda a, b: d(a, b, *args), lambda a, b: t(a, b, *args), x, s, device=device)
    m = lambda a, b: getattr(a, name)(b, *args)
    compare(m, m, x, s, device=device)


def test_scatters_cast_src_and_fd():
    x = _x(4, 3)
    compare(  # src is cast to the input's dtype, as torch
        lambda a, b: dl.select_scatter(a, b, 0, 1),
        lambda a, b: torch.select_scatter(a, b, 0, 1),
        x.astype(np.float32),
        _x(3),
    )
    compare(
        lambda a, b: dl.slice_scatter(a, b, 1, 0, 2),
        lambda a, b: torch.slice_scatter(a, b, 1, 0, 2),
        x,
        np.arange(8).reshape(4, 2),
    )
    gradcheck(lambda a, b: dl.diagonal_scatter(a, b, -1, 1, 0), _x(3, 4), _x(3, seed=2))
    gradcheck(lambda a, b: dl.slice_scatter(a, b, 0, 1, 4, 2), x, _x(2, 3, seed=3))
    gradcheck(lambda a, b: dl.select_scatter(a, b, 1, 2), x, _x(4, seed=3))
    gradcheck(lambda a: dl.diag_embed(a, 1, 0, 2), _x(2, 3))


def test_scatters_errors():
    x = dl.randn(4, 3)
    with pytest.raises(IndexError, match="index 4 out of range for tensor of size"):
        dl.select_scatter(x, dl.randn(3), 0, 4)
    with pytest.raises(RuntimeError, match=r"src size = \[4\], slice size = \[3\]"):
        dl.select_scatter(x, dl.randn(4), 0, 1)
    with pytest.raises(RuntimeError, match=r"src size = \[1, 3\], slice size = \[3\]"):
        dl.select_scatter(x, dl.randn(1, 3), 0, 1)
    with pytest.raises(IndexError, match="0-dim"):
        dl.select_scatter(dl.tensor(1.0), dl.tensor(2.0), 0, 0)
    with pytest.raises(RuntimeError, match=r"src size = \[2, 3\], slice size = \[3, 3\]"):
        dl.slice_scatter(dl.randn(8, 3), dl.randn(2, 3), 0, 1, 7, 2)
    with pytest.raises(RuntimeError, match="step must be positive"):
        dl.slice_scatter(dl.randn(8, 3), dl.randn(3, 3), 0, 1, 7, 0)
    with pytest.raises(RuntimeError, match=r"src size = \[4\], slice size = \[3\]"):
        dl.diagonal_scatter(dl.randn(3, 4), dl.randn(4), 1)
    with pytest.raises(RuntimeError, match="cannot be identical"):
        dl.diagonal_scatter(dl.randn(3, 4), dl.randn(3), 0, 1, 1)
    with pytest.raises(TypeError, match="must be Tensor"):
        dl.select_scatter(x, [1.0, 2.0, 3.0], 0, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_narrow_copy(device):
    x = _x(3, 8)
    compare(
        lambda t: dl.narrow_copy(t, 1, 2, 3),
        lambda t: torch.narrow_copy(t, 1, 2, 3),
        x,
        device=device,
    )
    # (torch's own backward fails for a negative start: values only)
    compare(lambda t: t.narrow_copy(1, -2, 2), lambda t: t.narrow_copy(1, -2, 2), x, grad=False)
    d = dl.tensor(x, device=device)
    y = dl.narrow_copy(d, 0, 1, 1)
    y.add_(1.0)  # a copy, not a view
    assert_close(d, x)
    with pytest.raises(RuntimeError, match="exceeds dimension size"):
        dl.narrow_copy(dl.randn(4, 3), 0, 3, 2)


# ------------------------------------------------------------------ second derivatives

GRADGRAD = {
    "diag_embed": (lambda m, a: m.diag_embed(a * a, 1, 0, 2), _x(2, 3)),
    "diagonal_scatter": (
        lambda m, a, b: m.diagonal_scatter(a * a, b * a[:, 0], 1),
        _x(3, 4),
        _x(3),
    ),
    "select_scatter": (lambda m, a, b: m.select_scatter(a * a, b * b, 0, 1), _x(4, 3), _x(3)),
    "slice_scatter": (
        lambda m, a, b: m.slice_scatter(a, b * b, 0, 0, 4, 2) ** 2,
        _x(4, 3),
        _x(2, 3),
    ),
    "tensordot": (
        lambda m, a, b: m.tensordot(a * a, b, ([0, 2], [2, 0])),
        _x(3, 4, 5),
        _x(5, 2, 3),
    ),
    "kron": (lambda m, a, b: m.kron(a, b) ** 2, _x(2, 3), _x(2, 2)),
    "renorm": (lambda m, a: m.renorm(a, 2, 1, 0.7), _x(3, 4)),
    "cov": (lambda m, a: m.cov(a, correction=0), _x(3, 5)),
    "addbmm": (
        lambda m, i, a, b: m.addbmm(i, a * a, b, beta=0.5),
        _x(3, 5),
        _x(2, 3, 4),
        _x(2, 4, 5),
    ),
    "cumulative_trapezoid": (lambda m, y, x: m.cumulative_trapezoid(y * x, x), _x(3, 4), _x(4)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(GRADGRAD))
def test_second_derivatives(device, name):
    fn, *arrays = GRADGRAD[name]
    _gradgrad(fn, *arrays, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["addmm", "baddbmm"])
def test_addmm_and_baddbmm_with_beta_zero_ignore_the_input_and_check_its_shape(device, name):
    # as torch: beta=0 ignores NaN and inf in input (beta * inf would be NaN), and an input
    # that does not expand to the product's shape is an error, not a broadcast result
    batch = () if name == "addmm" else (2,)
    x = np.full((*batch, 2, 3), np.nan)
    x[..., 0, 0] = np.inf
    a = rng(1).standard_normal((*batch, 2, 4))
    b = rng(2).standard_normal((*batch, 4, 3))
    compare(
        lambda i, p, q: getattr(dl, name)(i, p, q, beta=0, alpha=0.5),
        lambda i, p, q: getattr(torch, name)(i, p, q, beta=0, alpha=0.5),
        x,
        a,
        b,
        device=device,
    )
    big = dl.zeros((5, *batch, 2, 3), dtype=dl.float64, device=device)
    with pytest.raises(ValueError, match=r"input of shape \[5, .*cannot be expanded"):
        getattr(dl, name)(big, dl.tensor(a, device=device), dl.tensor(b, device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_renorm_to_inf_histogram_default_bins_and_addr_float_factors(device):
    compare(
        lambda a: dl.renorm(a, 2, 0, float("inf")),
        lambda a: torch.renorm(a, 2, 0, float("inf")),
        np.array([[1.0, 2.0], [3.0, 4.0]]),
        device=device,
    )  # (the gradient was NaN: maxnorm / norm = inf in the branch where left unused)
    x = rng(4).standard_normal(50)
    hist = dl.histogram(dl.tensor(x, device=device)).hist
    assert_close(hist, torch.histogram(torch.tensor(x)).hist)
    assert tuple(hist.shape) == (100,)
    ints = dl.ones(2, 2, dtype=dl.int64, device=device)
    with pytest.raises(TypeError, match="argument beta must not be a floating point"):
        dl.addr(ints, dl.arange(2, device=device), dl.arange(2, device=device), beta=0.5)


def test_cov_with_no_degrees_of_freedom_left_is_plus_inf_as_torch():
    x = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 3.0]])
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        got = dl.cov(dl.tensor(x), correction=4, aweights=dl.tensor(np.ones(3)))
    assert (got.numpy() == np.inf).all()
