"""Session 9's API additions against torch: index_reduce, nanquantile, rsub, gcd/lcm,
vdot, unravel_index, pdist, nextafter, isposinf/isneginf, deg2rad/rad2deg, frexp,
asarray, row_stack, gradient; the Tensor methods and attributes (is_cpu, cumsum_,
cumprod_, positive, negative_, split_with_sizes, is_same_size, vdot, _base,
is_inference); autograd.functional, gradcheck/gradgradcheck and anomaly mode; and the
argument forms torch accepts (range indices, repeat(repeats=), atleast_*d varargs,
positional non_blocking in to(), grad(is_grads_batched=...)). Values, dtypes, shapes,
gradients (against torch and finite differences) and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, compare, gradcheck, rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAN = float("nan")
INF = float("inf")


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.detach().cpu().numpy())


def _same(d, t, atol=1e-6, rtol=1e-5):
    """darklib tensor ``d`` equals torch tensor ``t``: shape, dtype and values (NaN too)."""
    assert isinstance(d, dl.Tensor), type(d)
    assert tuple(d.shape) == tuple(t.shape), (tuple(d.shape), tuple(t.shape))
    assert d.dtype.name == str(t.dtype).replace("torch.", ""), (d.dtype, t.dtype)
    np.testing.assert_allclose(_np(d), _np(t), atol=atol, rtol=rtol, equal_nan=True)


# ------------------------------------------------------------------ index_reduce


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_reduce_values_and_gradients(device, reduce, include_self, dim):
    r = rng(3)
    x = r.integers(-2, 3, (4, 5, 3)).astype(np.float64)  # small integers: ties and zeros
    d = dim % 3
    n_src = 6
    shape = list(x.shape)
    shape[d] = n_src
    src = r.integers(-2, 3, shape).astype(np.float64)
    idx = r.integers(0, x.shape[d], n_src)

    def run(lib):
        def fn(a, s, i):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (torch: "index_reduce() is in beta")
                return a.index_reduce(dim, i, s, reduce, include_self=include_self)

        return fn

    compare(run(dl), run(torch), x, src, idx, grad=[True, True, False], device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_index_reduce_functional_inplace_int_and_0d(device):
    r = rng(4)
    xi = r.integers(-9, 9, (3, 4))
    si = r.integers(-9, 9, (5, 4))
    ii = np.array([0, 2, 0, 0, 1], np.int32)  # int32 index, as torch takes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reduce in ["prod", "mean", "amax", "amin"]:
            t = torch.index_reduce(torch.tensor(xi), 0, torch.tensor(ii), torch.tensor(si), reduce)
            d = dl.index_reduce(
                dl.tensor(xi, device=device),
                0,
                dl.tensor(ii, device=device),
                dl.tensor(si, device=device),
                reduce,
            )
            _same(d, t)  # (an int mean rounds down, as torch)
        tx = torch.tensor(xi).float()
        tx.index_reduce_(1, torch.tensor([3, 3]), torch.ones(3, 2) * 7, "amax", include_self=False)
        dx = dl.tensor(xi, device=device).float()
        dx.index_reduce_(
            1,
            dl.tensor([3, 3], device=device),
            dl.ones(3, 2, device=device) * 7,
            "amax",
            include_self=False,
        )
        _same(dx, tx)
        t0 = torch.tensor(3.0).index_reduce(0, torch.tensor(0), torch.tensor(2.0), "prod")
    d0 = dl.tensor(3.0, device=device).index_reduce(
        0, dl.tensor(0, device=device), dl.tensor(2.0, device=device), "prod"
    )
    _same(d0, t0)


def test_index_reduce_gradcheck():
    r = rng(5)
    x = r.standard_normal((4, 3))
    src = r.standard_normal((5, 3))
    idx = np.array([1, 3, 1, 0, 1])
    for reduce in ["prod", "mean", "amax", "amin"]:
        for inc in (True, False):
            gradcheck(
                lambda a, s, i, red=reduce, inc=inc: a.index_reduce(0, i, s, red, include_self=inc),
                x,
                src,
                idx,
                grad=[True, True, False],
            )


def test_index_reduce_errors():
    x = dl.zeros(3, 2)
    src = dl.ones(2, 2)
    with pytest.raises(RuntimeError, match="prod, mean, amax or amin"):
        x.index_reduce(0, dl.tensor([0, 1]), src, "sum")
    with pytest.raises(RuntimeError, match="int32/int64"):
        x.index_reduce(0, dl.tensor([0.0, 1.0]), src, "prod")
    with pytest.raises(IndexError, match="vector"):
        x.index_reduce(0, dl.tensor([[0, 1]]), src, "prod")
    with pytest.raises(RuntimeError, match="same scalar type"):
        x.index_reduce(0, dl.tensor([0, 1]), src.double(), "prod")
    with pytest.raises(RuntimeError, match="Number of indices"):
        x.index_reduce(0, dl.tensor([0]), src, "prod")
    with pytest.raises(RuntimeError, match="shape must match"):
        x.index_reduce(0, dl.tensor([0, 1]), dl.ones(2, 3), "prod")
    with pytest.raises(IndexError, match="out of range"):
        x.index_reduce(0, dl.tensor([0, 3]), src, "prod")
    with pytest.raises(IndexError, match="out of range"):
        x.index_reduce(0, dl.tensor([-1, 0]), src, "prod")
    with pytest.raises(TypeError):
        x.index_reduce(0, dl.tensor([0, 1]), src, "prod", True)  # include_self is keyword-only


# ------------------------------------------------------------------ nanquantile


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize(
    "q, dim, keepdim",
    [
        (0.3, None, False),
        (0.5, 1, False),
        ("tensor", 0, True),
        ("tensor", -1, False),
        (1.0, None, True),
        ("tensor", None, False),
    ],
)
def test_nanquantile_values_and_gradients(device, interpolation, q, dim, keepdim):
    r = rng(6)
    x = r.standard_normal((4, 6))
    x[r.random(x.shape) < 0.3] = np.nan
    x[1] = np.nan  # a slice of NaN only
    x[2, 3] = x[2, 1]  # a tie
    qs = np.array([0.0, 0.25, 0.7, 1.0])

    def torch_fn(a):
        qq = torch.tensor(qs, dtype=a.dtype) if q == "tensor" else q
        return torch.nanquantile(a, qq, dim, keepdim, interpolation=interpolation)

    def dl_fn(a):
        qq = dl.tensor(qs, dtype=a.dtype, device=a.device) if q == "tensor" else q
        return a.nanquantile(qq, dim, keepdim, interpolation=interpolation)

    for dt in (np.float64, np.float32):
        xa = x.astype(dt)
        d = dl_fn(dl.tensor(xa, device=device))
        t = torch_fn(torch.tensor(xa))
        _same(d, t)
    # gradients: torch's (the NaN slice's goes to its first element)
    compare(dl_fn, torch_fn, x, device=device, atol=1e-6)
    xs = np.where(np.isnan(x), 0.0, x) + np.arange(x.size).reshape(x.shape) * 0.1  # distinct
    gradcheck(dl_fn, xs)


def test_nanquantile_special_cases_and_errors():
    r = rng(26)
    x = r.standard_normal((2, 3, 4))
    for q, dim, keepdim in [
        (np.array(0.5), 1, False),
        (np.array([0.5, 0.2]), 1, True),
        (0.5, None, True),
        (np.array([0.1]), 2, False),
    ]:
        dq = dl.tensor(q) if isinstance(q, np.ndarray) else q
        tq = torch.tensor(q) if isinstance(q, np.ndarray) else q
        _same(
            dl.nanquantile(dl.tensor(x), dq, dim, keepdim),
            torch.nanquantile(torch.tensor(x), tq, dim, keepdim),
        )
    _same(
        dl.nanquantile(dl.tensor(3.0), 0.5, 0, True),
        torch.nanquantile(torch.tensor(3.0), 0.5, 0, True),
    )
    _same(
        dl.nanquantile(dl.tensor(3.0), dl.tensor([0.5, 0.2]), -1, True),
        torch.nanquantile(torch.tensor(3.0), torch.tensor([0.5, 0.2]), -1, True),
    )
    with pytest.raises(IndexError):
        dl.nanquantile(dl.tensor(3.0), 0.5, 1)
    _same(dl.nanquantile(dl.tensor(3.0), 0.5), torch.nanquantile(torch.tensor(3.0), 0.5))
    a = [NAN, 1.0]
    _same(
        dl.nanquantile(dl.tensor(a), 0.5, 0, interpolation="midpoint"),
        torch.nanquantile(torch.tensor(a), 0.5, 0, interpolation="midpoint"),
    )
    x = dl.tensor([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="float or double"):
        dl.nanquantile(dl.tensor([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match=r"range \[0, 1\]"):
        dl.nanquantile(x, 1.5)
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.nanquantile(x, dl.tensor([0.5], dtype=dl.float64))
    with pytest.raises(RuntimeError, match="1D tensor"):
        dl.nanquantile(x, dl.tensor([[0.5]]))
    with pytest.raises(ValueError, match="interpolation"):
        dl.nanquantile(x, 0.5, interpolation="bad")
    with pytest.raises(RuntimeError, match="non-empty"):
        dl.nanquantile(dl.tensor([]), 0.5)


# ------------------------------------------------------------------ elementwise extras


@pytest.mark.parametrize("device", DEVICES)
def test_rsub(device):
    r = rng(7)
    a, b = r.standard_normal((3, 4)), r.standard_normal((4,))
    compare(
        lambda x, y: dl.rsub(x, y, alpha=2.5),
        lambda x, y: torch.rsub(x, y, alpha=2.5),
        a,
        b,
        device=device,
    )
    compare(lambda x: dl.rsub(x, 3.0), lambda x: torch.rsub(x, 3.0), a, device=device)
    ia = np.array([1, 2])
    _same(
        dl.rsub(dl.tensor(ia, device=device), dl.tensor([3.0, 4.0], device=device), alpha=2),
        torch.rsub(torch.tensor(ia), torch.tensor([3.0, 4.0]), alpha=2),
    )
    _same(dl.rsub(dl.tensor(ia, device=device), 2.5), torch.rsub(torch.tensor(ia), 2.5))
    _same(dl.rsub(dl.tensor(ia, device=device), 7), torch.rsub(torch.tensor(ia), 7))
    with pytest.raises(RuntimeError):
        dl.rsub(dl.tensor([True]), dl.tensor([True]))
    with pytest.raises(RuntimeError, match="alpha"):
        dl.rsub(dl.tensor([1, 2]), 3, alpha=1.5)
    with pytest.raises(TypeError):
        dl.rsub(2, dl.tensor([1.0]))


@pytest.mark.parametrize("device", DEVICES)
def test_gcd_lcm(device):
    r = rng(8)
    cases = [
        (r.integers(-50, 50, (3, 4)), r.integers(-50, 50, (4,))),
        (np.array([12, -18, 0, 7], np.int32), np.array([8, 12, 0, -21], np.int64)),
        (np.array([100, 4], np.int8), np.array([3, 6], np.int8)),  # lcm wraps, as torch
        (np.array([200, 5], np.uint8), np.array([3, 10], np.uint8)),
        (np.array(6), np.array([4, 9], np.int16)),  # a 0-d operand does not promote
        (np.array([-(2**63)]), np.array([0])),
    ]
    for a, b in cases:
        for name in ("gcd", "lcm"):
            d = getattr(dl, name)(dl.tensor(a, device=device), dl.tensor(b, device=device))
            t = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
            _same(d, t)
    x = dl.tensor([5], dtype=dl.int16, device=device)
    x.gcd_(dl.tensor([10], device=device))
    _same(x, torch.tensor([5], dtype=torch.int16).gcd_(torch.tensor([10])))
    y = dl.tensor([4, 6], device=device)
    _same(y.lcm(dl.tensor([6, 4], device=device)), torch.tensor([4, 6]).lcm(torch.tensor([6, 4])))
    with pytest.raises(NotImplementedError):
        dl.gcd(dl.tensor([1.0]), dl.tensor([2.0]))
    with pytest.raises(NotImplementedError):
        dl.lcm(dl.tensor([True]), dl.tensor([False]))
    with pytest.raises(TypeError, match="must be Tensor"):
        dl.gcd(dl.tensor([4]), 2)
    with pytest.raises(RuntimeError, match=r"broadcast|size"):
        dl.gcd(dl.tensor([4, 2]), dl.tensor([1, 2, 3]))


@pytest.mark.parametrize("device", DEVICES)
def test_nextafter(device):
    a = np.array([1.0, 0.0, -1.0, INF, NAN, 3.0], np.float32)
    b = np.array([2.0, -1.0, -2.0, 0.0, 1.0, 3.0], np.float32)
    for da, db in [(np.float32, np.float32), (np.float64, np.float64), (np.float32, np.float64)]:
        d = dl.nextafter(
            dl.tensor(a.astype(da), device=device), dl.tensor(b.astype(db), device=device)
        )
        t = torch.nextafter(torch.tensor(a.astype(da)), torch.tensor(b.astype(db)))
        _same(d, t, atol=0, rtol=0)
    # torch's gradient: identity for input, zeros for other
    r = rng(9)
    compare(
        dl.nextafter,
        torch.nextafter,
        r.standard_normal((2, 3)),
        r.standard_normal((3,)),
        device=device,
    )
    gradcheck(
        lambda x, y: dl.nextafter(x, y), r.standard_normal(4), r.standard_normal(4), atol=1e-4
    )
    x = dl.tensor([1.0, 2.0], device=device)
    x.nextafter_(dl.tensor([0.0, 3.0], device=device))
    _same(x, torch.tensor([1.0, 2.0]).nextafter_(torch.tensor([0.0, 3.0])), atol=0, rtol=0)
    with pytest.raises(NotImplementedError):
        dl.nextafter(dl.tensor([1, 2]), dl.tensor([2, 3]))
    with pytest.raises(TypeError, match="must be Tensor"):
        dl.nextafter(dl.tensor([1.0]), 1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_isposinf_isneginf(device):
    for arr in [
        np.array([1.0, INF, -INF, NAN, 0.0], np.float32),
        np.array([INF, -INF]),
        np.array([1, 2]),
        np.array([True, False]),
    ]:
        for name in ("isposinf", "isneginf"):
            _same(
                getattr(dl, name)(dl.tensor(arr, device=device)),
                getattr(torch, name)(torch.tensor(arr)),
            )
            _same(
                getattr(dl.tensor(arr, device=device), name)(), getattr(torch.tensor(arr), name)()
            )


@pytest.mark.parametrize("device", DEVICES)
def test_deg2rad_rad2deg(device):
    r = rng(10)
    for name in ("deg2rad", "rad2deg"):
        compare(
            getattr(dl, name), getattr(torch, name), r.standard_normal((3, 2)) * 100, device=device
        )
        gradcheck(getattr(dl, name), r.standard_normal(5))
        for arr in (np.array([180, 90]), np.array([1, 2], np.int8), np.array([True, False])):
            _same(
                getattr(dl, name)(dl.tensor(arr, device=device)),
                getattr(torch, name)(torch.tensor(arr)),
            )
        x = dl.tensor([5.0, 90.0], device=device)
        getattr(x, name + "_")()
        _same(x, getattr(torch.tensor([5.0, 90.0]), name + "_")())
        with pytest.raises(RuntimeError, match="can't be cast"):
            getattr(dl.tensor([5], device=device), name + "_")()


@pytest.mark.parametrize("device", DEVICES)
def test_frexp(device):
    vals = np.array([8.0, 0.3, 0.0, -5.0, INF, -INF, NAN, 1e-40, 1.0], np.float32)
    for dt in (np.float32, np.float64, np.float16):
        d = dl.frexp(dl.tensor(vals.astype(dt), device=device))
        t = torch.frexp(torch.tensor(vals.astype(dt)))
        _same(d.mantissa, t.mantissa, atol=0, rtol=0)
        _same(d.exponent, t.exponent, atol=0, rtol=0)
        _, e = dl.tensor(vals.astype(dt), device=device).frexp()
        _same(e, t.exponent)
    r = rng(11)
    compare(
        lambda x: dl.frexp(x).mantissa,
        lambda x: torch.frexp(x).mantissa,
        r.standard_normal((3, 4)) * 10,
        device=device,
    )
    gradcheck(lambda x: dl.frexp(x)[0], r.uniform(0.3, 0.45, 6) * np.array([1, 2, 4, -8, 16, 3]))
    with pytest.raises(RuntimeError, match="floating-point"):
        dl.frexp(dl.tensor([1, 2]))


@pytest.mark.parametrize("device", DEVICES)
def test_vdot(device):
    r = rng(12)
    compare(dl.vdot, torch.vdot, r.standard_normal(5), r.standard_normal(5), device=device)
    compare(
        lambda a, b: a.vdot(b),
        lambda a, b: a.vdot(b),
        r.standard_normal(3),
        r.standard_normal(3),
        device=device,
    )
    _same(
        dl.vdot(dl.tensor([1, 2]), dl.tensor([3, 4])),
        torch.vdot(torch.tensor([1, 2]), torch.tensor([3, 4])),
    )
    gradcheck(dl.vdot, r.standard_normal(4), r.standard_normal(4))
    with pytest.raises(RuntimeError):
        dl.vdot(dl.ones(3), dl.ones(2))
    with pytest.raises(RuntimeError):
        dl.vdot(dl.ones(3, 1), dl.ones(3, 1))
    with pytest.raises(RuntimeError):
        dl.vdot(dl.ones(3), dl.ones(3, dtype=dl.float64))


@pytest.mark.parametrize("device", DEVICES)
def test_unravel_index(device):
    cases = [
        (np.array(4), (3, 2)),
        (np.array([4, 1, 5, 0]), (3, 2)),
        (np.array([[4, 1], [7, -1]]), (3, 2)),  # wrapping, as torch's floor/modulo
        (np.array([3], np.int32), [2, 2]),
        (np.array([5, 2]), 4),
        (np.array([11, 3]), (2, 3, 2)),
    ]
    for idx, shape in cases:
        d = dl.unravel_index(dl.tensor(idx, device=device), shape)
        t = torch.unravel_index(torch.tensor(idx), shape)
        assert isinstance(d, tuple) and len(d) == len(t)
        for a, b in zip(d, t):
            _same(a, b)
    assert dl.unravel_index(dl.tensor(0), ()) == ()
    with pytest.raises(TypeError, match="integer dtype"):
        dl.unravel_index(dl.tensor([1.0]), (3, 2))
    with pytest.raises(TypeError, match="integer dtype"):
        dl.unravel_index(dl.tensor([True]), (3, 2))
    with pytest.raises(ValueError, match="negative"):
        dl.unravel_index(dl.tensor([0]), (2, -1))
    with pytest.raises(TypeError):
        dl.unravel_index(dl.tensor([0]), (2, 1.5))


def test_pdist_top_level():
    r = rng(13)
    x = r.standard_normal((5, 3))
    compare(dl.pdist, torch.pdist, x)
    compare(lambda a: dl.pdist(a, p=1.0), lambda a: torch.pdist(a, p=1.0), x)
    assert dl.pdist is dl.nn.functional.pdist
    gradcheck(dl.pdist, x)


def test_row_stack():
    a, b = np.array([1, 2]), np.array([3.0, 4.0])
    _same(
        dl.row_stack([dl.tensor(a), dl.tensor(b)]),
        torch.row_stack([torch.tensor(a), torch.tensor(b)]),
    )
    _same(dl.row_stack((dl.tensor(1.0),)), torch.row_stack((torch.tensor(1.0),)))
    r = rng(14)
    compare(
        lambda x, y: dl.row_stack([x, y]),
        lambda x, y: torch.row_stack([x, y]),
        r.standard_normal((2, 3)),
        r.standard_normal(3),
    )


# ------------------------------------------------------------------ gradient


_GRADIENT_CASES = [
    {},
    {"spacing": 2.0},
    {"spacing": 2},
    {"edge_order": 2},
    {"dim": 1},
    {"dim": -1, "spacing": 2},
    {"dim": (0, 1), "spacing": [2.0, 3.0]},
    {"spacing": (2.0, 3)},
    {"spacing": "coords"},
    {"spacing": "coords", "edge_order": 2},
    {"spacing": "coord1", "dim": 1, "edge_order": 2},
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", range(len(_GRADIENT_CASES)))
def test_gradient_values_and_gradients(device, case):
    kw = dict(_GRADIENT_CASES[case])
    r = rng(15)
    x = r.standard_normal((4, 5))
    coords = [np.array([0.0, 1.0, 3.0, 3.5]), np.array([0.0, 2.0, 3.0, 7.0, 7.5])]

    def fn(lib):
        def run(a):
            k = dict(kw)
            if k.get("spacing") == "coords":
                k["spacing"] = [lib.tensor(c, device=a.device) for c in coords]
            elif k.get("spacing") == "coord1":
                k["spacing"] = [lib.tensor(coords[1], device=a.device)]
            return lib.gradient(a, **k)

        return run

    compare(fn(dl), fn(torch), x, device=device)
    compare(fn(dl), fn(torch), x.astype(np.float32), device=device)
    gradcheck(fn(dl), x)


def test_gradient_dtypes_and_errors():
    for arr, kw in [
        (np.array([1, 4, 9]), {}),
        (np.array([1, 4, 9], np.int32), {"spacing": 2.0}),
        (np.array([1.0, 4.0, 9.0], np.float32), {"spacing": [np.array([0.0, 1.0, 3.0])]}),
        (np.array([1.0, 4.0, 9.0], np.float32), {"spacing": [np.array([0, 1, 3])]}),
        (
            np.array([1.0, 4.0, 9.0], np.float32),
            {"spacing": [np.array([0.0, 1.0, 3.0])], "edge_order": 2},
        ),
        (np.array([1, 4, 9]), {"spacing": [np.array([0, 1, 3])]}),
        (np.empty((0, 3)), {"dim": 1}),
    ]:
        dk = {
            k: [dl.tensor(c) for c in v] if k == "spacing" and isinstance(v, list) else v
            for k, v in kw.items()
        }
        tk = {
            k: [torch.tensor(c) for c in v] if k == "spacing" and isinstance(v, list) else v
            for k, v in kw.items()
        }
        d, t = dl.gradient(dl.tensor(arr), **dk), torch.gradient(torch.tensor(arr), **tk)
        assert len(d) == len(t)
        for a, b in zip(d, t):
            _same(a, b)
    assert dl.gradient(dl.tensor(3.0)) == ()
    x = dl.arange(12.0).reshape(3, 4)
    with pytest.raises(RuntimeError, match="edge_order"):
        dl.gradient(dl.tensor([1.0]))
    with pytest.raises(RuntimeError, match="edge_order"):
        dl.gradient(dl.tensor([1.0, 2.0]), edge_order=2)
    with pytest.raises(RuntimeError, match="edge_order=1 and edge_order=2"):
        dl.gradient(x, edge_order=3)
    with pytest.raises(RuntimeError, match="uint8"):
        dl.gradient(dl.tensor([1, 2, 3], dtype=dl.uint8))
    with pytest.raises(RuntimeError, match="list of length"):
        dl.gradient(x, spacing=[1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="same length"):
        dl.gradient(x, spacing=[2.0], dim=(0, 1))
    with pytest.raises(RuntimeError, match="multiple times"):
        dl.gradient(x, dim=(0, 0))
    with pytest.raises(IndexError):
        dl.gradient(x, dim=2)
    with pytest.raises(RuntimeError, match="one dimension"):
        dl.gradient(x, spacing=[dl.tensor(2.0)], dim=1)
    with pytest.raises(TypeError, match="element 1"):
        dl.gradient(x, spacing=[dl.tensor([0.0, 1.0, 3.0]), 2.0])
    with pytest.raises(TypeError):
        dl.gradient(x, 2.0)  # spacing is keyword-only, as torch


# ------------------------------------------------------------------ asarray


def test_asarray_sharing_copies_and_errors():
    t = dl.tensor([1.0, 2.0])
    assert dl.asarray(t) is t
    assert dl.asarray(t, dtype=dl.float32, device="cpu") is t
    c = dl.asarray(t, copy=True)
    assert c is not t and c.data_ptr() != t.data_ptr()
    f64 = dl.asarray(t, dtype=dl.float64)
    assert f64.dtype == dl.float64 and f64.data_ptr() != t.data_ptr()
    with pytest.raises(ValueError, match="alias"):
        dl.asarray(t, dtype=dl.float64, copy=False)
    n = np.array([1, 2, 3])
    g = dl.asarray(n)
    g[0] = 9  # shared with the array
    assert n[0] == 9 and g.dtype == dl.int64
    nt = np.arange(6.0).reshape(2, 3).T  # a transposed array is shared as is
    s = dl.asarray(nt)
    assert s.stride() == torch.asarray(nt).stride() and np.shares_memory(s.numpy(), nt)
    h = dl.asarray(n, dtype=dl.float32)
    h[0] = 100
    assert n[0] == 9 and h.dtype == dl.float32
    k = dl.asarray(n, copy=True)
    k[0] = -1
    assert n[0] == 9
    with pytest.raises(ValueError, match="alias"):
        dl.asarray(n, dtype=dl.float32, copy=False)
    with pytest.raises(ValueError, match="alias"):
        dl.asarray([1, 2], copy=False)
    for obj in (
        [1, 2],
        [1.0, 2.0],
        3.0,
        3,
        True,
        (1, 2),
        range(3),
        np.float64(2.5),
        np.float32(2.5),
        np.array([1, 2], np.uint16),
        [[1, 2], [3, 4]],
    ):
        _same(dl.asarray(obj), torch.asarray(obj))
    _same(
        dl.asarray([[1, 2], [3, 4]], dtype=dl.float64),
        torch.asarray([[1, 2], [3, 4]], dtype=torch.float64),
    )
    _same(
        dl.asarray([dl.tensor(1.0), dl.tensor(2.0)]),
        torch.asarray([torch.tensor(1.0), torch.tensor(2.0)]),
    )
    with pytest.raises(TypeError):
        dl.asarray(np.array(["a"]))


def test_asarray_requires_grad_and_graph():
    m = dl.asarray(np.array([1.0, 2.0]), requires_grad=True)
    assert m.requires_grad and m.is_leaf and m.dtype == dl.float64
    t = dl.tensor([1.0, 2.0])
    f = dl.asarray(t, requires_grad=True)
    assert f is t and t.requires_grad  # (as torch: the tensor itself gets the flag)
    with pytest.raises(RuntimeError, match="floating"):
        dl.asarray([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating"):
        dl.asarray(np.array([1, 2]), requires_grad=True)
    w = dl.tensor([1.0, 2.0], requires_grad=True)
    y = dl.asarray(w * 3, dtype=dl.float64)  # the conversion keeps the graph
    assert y.grad_fn is not None and y.dtype == dl.float64
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 3.0])
    z = dl.asarray(w, copy=True)
    assert z.grad_fn is not None and z.data_ptr() != w.data_ptr()


# ------------------------------------------------------------------ Tensor methods and attributes


@pytest.mark.parametrize("device", DEVICES)
def test_tensor_methods(device):
    x = dl.tensor([1.0, 2.0, 3.0], device=device)
    assert x.is_cpu == (device == "cpu") and x.is_cpu != x.is_cuda
    assert x.is_inference() is False and dl.is_inference(x) is False
    with dl.inference_mode():
        assert dl.ones(2).is_inference() is False  # (darklib has no inference tensors)
    assert x.is_same_size(dl.ones(3)) and not x.is_same_size(dl.ones(3, 1))
    assert dl.is_same_size(x, dl.zeros(3, device=device))
    with pytest.raises(TypeError, match="must be Tensor"):
        x.is_same_size([1, 2, 3])
    assert x.positive() is x and dl.positive(x) is x
    with pytest.raises(RuntimeError, match="bool"):
        dl.tensor([True]).positive()
    y = x.clone()
    assert y.negative_() is y
    _same(y, torch.tensor([-1.0, -2.0, -3.0]))
    with pytest.raises(RuntimeError, match="bool"):
        dl.tensor([True]).negative_()
    parts = x.split_with_sizes([1, 2])
    tparts = torch.tensor([1.0, 2.0, 3.0]).split_with_sizes([1, 2])
    for a, b in zip(parts, tparts):
        _same(a, b)
    assert all(p._base is x for p in parts)
    _same(
        dl.split_with_sizes(x, [2, 1])[1],
        torch.split_with_sizes(torch.tensor([1.0, 2.0, 3.0]), [2, 1])[1],
    )
    _same(x.split_with_sizes(split_sizes=[3], dim=0)[0], torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="tuple of ints"):
        x.split_with_sizes(1)
    with pytest.raises(RuntimeError):
        x.split_with_sizes([1, 1])


@pytest.mark.parametrize("device", DEVICES)
def test_cumsum_cumprod_inplace(device):
    r = rng(16)
    a = r.standard_normal((3, 4))
    for name in ("cumsum_", "cumprod_"):
        for dim in (0, 1, -1):
            d = dl.tensor(a, device=device)
            assert getattr(d, name)(dim) is d
            _same(d, getattr(torch.tensor(a), name)(dim))
        for arr in (np.array([1, 2, 3], np.int32), np.array([100, 100], np.int8)):
            _same(
                getattr(dl.tensor(arr, device=device), name)(0), getattr(torch.tensor(arr), name)(0)
            )
        with pytest.raises(RuntimeError, match="Bad in-place call"):
            getattr(dl.tensor([1.0, 2.0], device=device), name)(0, dtype=dl.float64)
        with pytest.raises(NotImplementedError):
            getattr(dl.tensor([True, False], device=device), name)(0)

        # through autograd (a non-leaf changed in place), against torch
        def run(lib, name=name):
            def fn(t):
                u = t * 1
                getattr(u, name)(1)
                return u

            return fn

        compare(run(dl), run(torch), a, device=device)
    with pytest.raises(RuntimeError, match="leaf"):
        dl.tensor([1.0, 2.0], requires_grad=True).cumsum_(0)


def test_base_of_views():
    a = dl.tensor([[1.0, 2.0], [3.0, 4.0]])
    ta = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    views = [
        lambda x: x.t(),
        lambda x: x[0],
        lambda x: x[0][1:],
        lambda x: x.view(4),
        lambda x: x.reshape(4),
        lambda x: x.expand(3, 2, 2),
        lambda x: x.unbind()[1],
        lambda x: x.split(1)[0],
        lambda x: x.unsqueeze(0).squeeze(0),
    ]
    for v in views:
        assert (v(a)._base is a) == (v(ta)._base is ta) is True
    not_views = [
        lambda x: x.detach(),
        lambda x: x.t().reshape(4),  # a copy
        lambda x: x + 1,
        lambda x: x.t().contiguous(),
        lambda x: x.clone(),
        lambda x: x,
        lambda x: x.data,
    ]
    for v in not_views:
        assert v(a)._base is None and v(ta)._base is None
    p = a.clone().requires_grad_()
    assert p[0]._base is p and (p * 2)[0]._base is not None
    with dl.no_grad():
        assert a.t()._base is a


# ------------------------------------------------------------------ argument forms torch accepts


@pytest.mark.parametrize("device", DEVICES)
def test_range_index(device):
    r = rng(17)
    x = r.standard_normal((4, 3))
    for key in [range(2), range(1, 4, 2), range(0)]:
        compare(lambda a, k=key: a[k], lambda a, k=key: a[k], x, device=device)
    compare(lambda a: a[range(1, 3), 0], lambda a: a[range(1, 3), 0], x, device=device)
    compare(lambda a: a[:, range(2)], lambda a: a[:, range(2)], x, device=device)
    d, t = dl.tensor(x, device=device), torch.tensor(x)
    d[range(2)] = 7.0
    t[range(2)] = 7.0
    _same(d, t)
    with pytest.raises(IndexError):
        dl.tensor(x)[range(5)]


def test_repeat_keyword_and_atleast_varargs():
    r = rng(18)
    x = r.standard_normal((2, 3))
    compare(lambda a: a.repeat(repeats=(1, 2)), lambda a: a.repeat(repeats=(1, 2)), x)
    compare(lambda a: a.repeat(repeats=[2, 1, 1]), lambda a: a.repeat(repeats=[2, 1, 1]), x)
    compare(lambda a: a.repeat(2, 2), lambda a: a.repeat(2, 2), x)
    t = dl.tensor(x)
    with pytest.raises(TypeError, match="tuple of ints"):
        t.repeat(repeats=2)
    with pytest.raises(TypeError, match="multiple values"):
        t.repeat(2, repeats=(2,))
    with pytest.raises(TypeError, match="missing"):
        t.repeat()
    a0, a1, a2 = np.array(1.0), np.array([2.0, 3.0]), np.ones((2, 2))
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        d_fn, t_fn = getattr(dl, name), getattr(torch, name)
        single = d_fn(dl.tensor(a1))
        assert isinstance(single, dl.Tensor)
        _same(single, t_fn(torch.tensor(a1)))
        for args in [(a0, a1), (a0, a1, a2)]:
            d = d_fn(*[dl.tensor(v) for v in args])
            t = t_fn(*[torch.tensor(v) for v in args])
            assert isinstance(d, tuple) and len(d) == len(t)
            for u, v in zip(d, t):
                _same(u, v)
        d = d_fn([dl.tensor(a0), dl.tensor(a2)])
        assert isinstance(d, tuple) and len(d) == 2
        assert tuple(d[0].shape) == tuple(t_fn([torch.tensor(a0)])[0].shape)
        assert d_fn() == t_fn() == ()
        compare(lambda u, v, f=d_fn: f(u, v), lambda u, v, f=t_fn: f(u, v), a0, a1)


def test_to_positional_non_blocking_and_copy():
    x = dl.tensor([1.0, 2.0])
    tx = torch.tensor([1.0, 2.0])
    _same(x.to("cpu", dl.float64, True), tx.to("cpu", torch.float64, True))
    _same(x.to(dl.float64, True), tx.to(torch.float64, True))
    assert x.to(dl.float32, False) is x
    assert x.to("cpu", dl.float32, False, True) is not x  # copy=True
    assert x.to(dl.float32, True, True) is not x
    assert x.to(x, True) is x and x.to(x, True, True) is not x
    assert x.to("cpu", dl.float32, non_blocking=True) is x
    with pytest.raises(TypeError):
        x.to("cpu", dl.float64, True, True, True)
    with pytest.raises(TypeError):
        x.to(True)
    y = dl.tensor([1.0, 2.0], requires_grad=True)
    z = y.to("cpu", dl.float64, True)
    z.sum().backward()
    assert y.grad.dtype == dl.float32


def test_grad_is_grads_batched():
    r = rng(19)
    a = r.standard_normal((3, 2))
    v = r.standard_normal((4, 3))
    res = {}
    for lib in (dl, torch):
        x = lib.tensor(a, requires_grad=True)
        y = (x * x).sum(1)  # (3,)
        unused = lib.tensor([1.0], requires_grad=True)
        g, gu = lib.autograd.grad(
            y,
            [x, unused],
            lib.tensor(v),
            is_grads_batched=True,
            allow_unused=True,
            retain_graph=True,
        )
        assert gu is None
        (gm,) = lib.autograd.grad(y, [x], lib.tensor(v), is_grads_batched=True)
        (gf,) = lib.autograd.grad((x * x).sum(1), [x], lib.tensor(v[0]), is_grads_batched=False)
        res[lib.__name__] = (g, gm, gf)
    for d, t in zip(res["darklib"], res["torch"]):
        _same(d, t)
    # create_graph through the batched gradients
    x = dl.tensor(a, requires_grad=True)
    (g,) = dl.autograd.grad(
        (x**3).sum(1), x, dl.tensor(v), create_graph=True, is_grads_batched=True
    )
    (h,) = dl.autograd.grad(g.sum(), x)
    tx = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(
        (tx**3).sum(1), tx, torch.tensor(v), create_graph=True, is_grads_batched=True
    )
    (th,) = torch.autograd.grad(tg.sum(), tx)
    _same(h, th)
    with pytest.raises(RuntimeError, match="leading"):
        dl.autograd.grad((x * 2).sum(1), x, dl.tensor(2.0), is_grads_batched=True)


# ------------------------------------------------------------------ autograd.functional


def _f2(lib):
    def f(x, y):
        return (x.exp() * y).sum(1), (x * x).sum() * y

    return f


def _scalar(x, y):
    return (x.exp() * y).sum() * x.sum()


def _flat_out(out):
    if isinstance(out, tuple | list):
        return [o for e in out for o in _flat_out(e)]
    return [out]


def _structure(out):
    """The nesting of a result: "T" for a tensor, tuples of those."""
    if isinstance(out, tuple):
        return tuple(_structure(o) for o in out)
    assert isinstance(out, dl.Tensor | torch.Tensor), type(out)
    return "T"


def _check_functional(run, *, atol=1e-8):
    """``run(lib)`` in both libraries: the same nesting, shapes, dtypes and values."""
    d, t = run(dl), run(torch)
    assert _structure(d) == _structure(t)
    for a, b in zip(_flat_out(d), _flat_out(t)):
        _same(a, b, atol=atol)
    return d, t


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_against_torch(vectorize):
    r = rng(20)
    a, b = r.standard_normal(3), r.standard_normal((2, 3))

    def check(make_fn, inputs):
        _check_functional(
            lambda L: L.autograd.functional.jacobian(make_fn(L), inputs(L), vectorize=vectorize)
        )

    check(_f2, lambda L: (L.tensor(a), L.tensor(b)))
    check(lambda L: lambda x: x.sin() * 2, lambda L: L.tensor(a))
    check(lambda L: lambda x: (x.sin() * 2,), lambda L: L.tensor(a))
    check(lambda L: lambda x: x.sum(), lambda L: (L.tensor(a),))
    check(lambda L: lambda x, y: x * 2, lambda L: (L.tensor(a), L.tensor(b)))
    d = dl.autograd.functional.jacobian(lambda x: x * 2, dl.tensor(a), vectorize=vectorize)
    assert not d.requires_grad
    # create_graph: the Jacobian is differentiable
    for L in (dl, torch):
        x = L.tensor(a, requires_grad=True)
        jac = L.autograd.functional.jacobian(
            lambda u: u**3, x, create_graph=True, vectorize=vectorize
        )
        assert jac.requires_grad
        (g,) = L.autograd.grad(jac.sum(), x)
        if L is dl:
            gd = g
    _same(gd, g)
    # the forward-mode strategy (torch: vectorize=True only) gives the same values
    if vectorize:
        _check_functional(
            lambda L: L.autograd.functional.jacobian(
                lambda x: x.sin(), L.tensor(a), vectorize=True, strategy="forward-mode"
            )
        )


def test_jacobian_strict_and_errors():
    F = dl.autograd.functional
    a = dl.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jacobian(lambda x, y: x * 2, (a, a), strict=True)
    with pytest.raises(RuntimeError, match="does not require gradients"):
        F.jacobian(lambda x: dl.ones(2), a, strict=True)
    with pytest.raises(RuntimeError, match="vectorize"):
        F.jacobian(lambda x: x * 2, a, strict=True, vectorize=True)
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        F.jacobian(lambda x: x * 2, a, strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="create_graph"):
        F.jacobian(lambda x: x * 2, a, create_graph=True, strategy="forward-mode", vectorize=True)
    with pytest.raises(ValueError, match="strategy"):
        F.jacobian(lambda x: x * 2, a, strategy="sideways")
    with pytest.raises(TypeError, match="tuple of Tensors"):
        F.jacobian(lambda x: x * 2, [a])
    with pytest.raises(TypeError, match="index 1"):
        F.jacobian(lambda x, y: x * 2, (a, 3.0))
    # non-strict: zeros for the independent input
    j = F.jacobian(lambda x, y: x * 2, (a, a))
    np.testing.assert_array_equal(j[1].numpy(), np.zeros((2, 2)))
    assert a.grad is None and not a.requires_grad  # the caller's tensors are untouched


def test_hessian_against_torch():
    r = rng(21)
    a, b = r.standard_normal(3), r.standard_normal((2, 3))
    _check_functional(lambda L: L.autograd.functional.hessian(_scalar, (L.tensor(a), L.tensor(b))))
    _check_functional(lambda L: L.autograd.functional.hessian(lambda x: (x**3).sum(), L.tensor(a)))
    _check_functional(
        lambda L: L.autograd.functional.hessian(lambda x: (x**3).sum(), L.tensor(a), vectorize=True)
    )
    _check_functional(
        lambda L: L.autograd.functional.hessian(
            lambda x: (x**3).sum(),
            L.tensor(a),
            vectorize=True,
            outer_jacobian_strategy="forward-mode",
        )
    )
    F = dl.autograd.functional
    with pytest.raises(RuntimeError, match="single Tensor"):
        F.hessian(lambda x: (x.sum(), x.sum()), dl.tensor(a))
    with pytest.raises(RuntimeError, match="single element"):
        F.hessian(lambda x: x * 2, dl.tensor(a))
    with pytest.raises(RuntimeError, match="independent"):
        F.hessian(lambda x: (x * 2).sum(), dl.tensor(a), strict=True)


@pytest.mark.parametrize("create_graph", [False, True])
def test_vjp_jvp_hvp_vhp_against_torch(create_graph):
    r = rng(22)
    a, b = r.standard_normal(3), r.standard_normal((2, 3))
    va, vb = r.standard_normal(3), r.standard_normal((2, 3))
    w1, w2 = r.standard_normal(2), r.standard_normal((2, 3))
    cg = create_graph

    def ins(L):
        return L.tensor(a), L.tensor(b)

    def fn(L):
        return L.autograd.functional

    _check_functional(lambda L: fn(L).vjp(_f2(L), ins(L), (L.tensor(w1), L.tensor(w2)), cg))
    _check_functional(lambda L: fn(L).jvp(_f2(L), ins(L), (L.tensor(va), L.tensor(vb)), cg))
    _check_functional(lambda L: fn(L).hvp(_scalar, ins(L), (L.tensor(va), L.tensor(vb)), cg))
    _check_functional(lambda L: fn(L).vhp(_scalar, ins(L), (L.tensor(va), L.tensor(vb)), cg))
    _check_functional(lambda L: fn(L).vjp(lambda x: x.sin().sum(), L.tensor(a), None, cg))
    _check_functional(lambda L: fn(L).jvp(lambda x: x.sin() * 3, L.tensor([0.5]), None, cg))
    _check_functional(lambda L: fn(L).hvp(lambda x: (x**4).sum(), L.tensor([0.5]), None, cg))
    out, v = dl.autograd.functional.vjp(_f2(dl), ins(dl), (dl.tensor(w1), dl.tensor(w2)), cg)
    assert v[0].requires_grad == cg and out[0].requires_grad == cg


def test_functional_errors_and_strict():
    r = rng(22)
    a, b = r.standard_normal(3), r.standard_normal((2, 3))
    va, vb = r.standard_normal(3), r.standard_normal((2, 3))

    def ins(L):
        return L.tensor(a), L.tensor(b)

    F = dl.autograd.functional
    with pytest.raises(RuntimeError, match="can only be None"):
        F.vjp(lambda x: x * 2, dl.tensor(a))
    with pytest.raises(RuntimeError, match="can only be None"):
        F.jvp(lambda x: x * 2, dl.tensor(a))
    with pytest.raises(RuntimeError, match="invalid size"):
        F.vjp(lambda x: x * 2, dl.tensor(a), dl.ones(2, dtype=dl.float64))
    with pytest.raises(RuntimeError, match="invalid length"):
        F.jvp(_f2(dl), ins(dl), (dl.tensor(va),))
    with pytest.raises(RuntimeError, match="single Tensor"):
        F.hvp(lambda x: (x.sum(),), dl.tensor(a), dl.tensor(va))
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.vjp(lambda x, y: x.sum(), ins(dl), strict=True)
    z = F.vjp(lambda x, y: x.sum(), ins(dl))[1][1]
    np.testing.assert_array_equal(z.numpy(), np.zeros((2, 3)))
    assert (
        F.jvp(lambda x, y: x * 2, ins(dl), (dl.tensor(va), dl.tensor(vb)))[1].requires_grad is False
    )


def test_functional_second_derivative_with_create_graph():
    r = rng(23)
    a, v = r.standard_normal(3), r.standard_normal(3)
    res = {}
    for L in (dl, torch):
        x = L.tensor(a, requires_grad=True)
        _, hv = L.autograd.functional.hvp(
            lambda u: (u.sin() * u).sum(), x, L.tensor(v), create_graph=True
        )
        (g,) = L.autograd.grad(hv.sum(), x)
        res[L.__name__] = g
    _same(res["darklib"], res["torch"])


# ------------------------------------------------------------------ gradcheck, gradgradcheck


class _WrongBackward(dl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x  # should be 2 * x


class _OnceRight(dl.autograd.Function):
    """Right first derivative, wrong second: its backward leaves x out of the graph."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x.detach() ** 2


def test_gradcheck():
    r = rng(24)
    x = dl.tensor(r.standard_normal((2, 3)), requires_grad=True)
    y = dl.tensor(r.standard_normal(3), requires_grad=True)
    assert dl.autograd.gradcheck(lambda a, b: (a.sin() * b, (a * b).sum()), (x, y)) is True
    assert dl.autograd.gradcheck(lambda a: a.exp(), x, eps=1e-6, atol=1e-5, rtol=1e-3)
    assert dl.autograd.gradcheck(lambda a, k: a * k, (x, 3)) is True  # a non-tensor input
    assert dl.autograd.gradcheck(lambda a: a.sin(), (x,), check_batched_grad=True)
    assert dl.autograd.gradcheck(lambda a: a.sin(), (x,), fast_mode=True)
    assert dl.autograd.gradcheck(lambda a: (dl.ones(2),), (x,))  # no differentiable output
    with pytest.raises(dl.autograd.GradcheckError, match="expected to be zero"):
        dl.autograd.gradcheck(lambda a: (a.detach() * 2,), (x,))  # (torch's verdict too)
    with pytest.raises(
        dl.autograd.GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"
    ):
        dl.autograd.gradcheck(_WrongBackward.apply, (x,))
    assert dl.autograd.gradcheck(_WrongBackward.apply, (x,), raise_exception=False) is False
    assert issubclass(dl.autograd.GradcheckError, RuntimeError)
    # tolerances are used: a loose atol lets the wrong one pass
    assert dl.autograd.gradcheck(
        _WrongBackward.apply, (dl.tensor([1e-3], dtype=dl.float64, requires_grad=True),), atol=1e-2
    )
    with pytest.raises(ValueError, match="at least one input"):
        dl.autograd.gradcheck(lambda a: a * 2, (dl.tensor([1.0], dtype=dl.float64),))
    with pytest.warns(UserWarning, match="double precision"):
        dl.autograd.gradcheck(
            lambda a: a * 2, (dl.tensor([1.0], requires_grad=True),), eps=1e-2, atol=1e-2, rtol=1e-2
        )
    with pytest.raises(RuntimeError, match="stride 0"):
        e = dl.tensor([1.0], dtype=dl.float64).expand(3).requires_grad_()
        dl.autograd.gradcheck(lambda a: a * 2, (e,))
    with pytest.raises(NotImplementedError, match="forward-mode"):
        dl.autograd.gradcheck(lambda a: a * 2, (x,), check_forward_ad=True)
    # torch agrees on the verdicts
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: a.exp(), tx)


def test_gradgradcheck():
    r = rng(25)
    x = dl.tensor(r.standard_normal(4), requires_grad=True)
    assert dl.autograd.gradgradcheck(lambda a: a.sin() * a, (x,)) is True
    assert dl.autograd.gradgradcheck(lambda a: (a**3).sum(), x, gen_non_contig_grad_outputs=True)
    go = dl.tensor(r.standard_normal(4), requires_grad=True)
    assert dl.autograd.gradgradcheck(lambda a: a.exp(), (x,), (go,))
    assert dl.autograd.gradcheck(_OnceRight.apply, (x,)) is True
    with pytest.raises(dl.autograd.GradcheckError, match="Jacobian mismatch"):
        dl.autograd.gradgradcheck(_OnceRight.apply, (x,))
    assert dl.autograd.gradgradcheck(_OnceRight.apply, (x,), raise_exception=False) is False


# ------------------------------------------------------------------ anomaly mode


def _nan_backward():
    z = dl.tensor([0.0, 1.0], requires_grad=True)
    w = (z / z).sum()  # DivBackward0: d/dz of the divisor is -0/0 = NaN
    return w


def test_detect_anomaly_names_the_node_and_the_forward_call():
    assert not dl.is_anomaly_enabled()
    _nan_backward().backward()  # off: NaN gradients pass silently
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        mode = dl.autograd.detect_anomaly()
    with mode:
        assert dl.is_anomaly_enabled() and dl.is_anomaly_check_nan_enabled()
        w = _nan_backward()
        with pytest.warns(UserWarning, match=r"Error detected in DivBackward0(.|\n)*_nan_backward"):
            with pytest.raises(
                RuntimeError, match="Function 'DivBackward0' returned nan values in its 1th output"
            ):
                w.backward()
    assert not dl.is_anomaly_enabled()
    # torch says the same
    tz = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            with pytest.raises(
                RuntimeError, match="Function 'DivBackward0' returned nan values in its 1th output"
            ):
                (tz / tz).sum().backward()


def test_set_detect_anomaly_and_check_nan():
    dl.autograd.set_detect_anomaly(True)
    try:
        assert dl.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="DivBackward0"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _nan_backward().backward()
    finally:
        dl.autograd.set_detect_anomaly(False)
    assert not dl.is_anomaly_enabled()
    with dl.autograd.set_detect_anomaly(True, check_nan=False):
        assert dl.is_anomaly_enabled() and not dl.is_anomaly_check_nan_enabled()
        _nan_backward().backward()  # no NaN check
    assert not dl.is_anomaly_enabled() and dl.is_anomaly_check_nan_enabled()
    with dl.autograd.set_detect_anomaly(False):
        _nan_backward().backward()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        @dl.autograd.detect_anomaly()
        def step():
            assert dl.is_anomaly_enabled()
            _nan_backward().backward()

        with pytest.raises(RuntimeError, match="nan values"):
            step()
    assert not dl.is_anomaly_enabled()


def test_anomaly_mode_reports_other_backward_errors_and_create_graph():
    class Broken(dl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("broken backward")

    x = dl.tensor([1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dl.autograd.detect_anomaly():
            y = Broken.apply(x)
            with pytest.warns(UserWarning, match="Error detected in BrokenBackward"):
                with pytest.raises(ValueError, match="broken backward"):
                    y.sum().backward()
            # NaN produced by a differentiable backward (create_graph) is caught too
            z = dl.tensor([0.0, 1.0], requires_grad=True)
            with pytest.raises(RuntimeError, match="nan values"):
                dl.autograd.grad((z.sqrt() * 0).sum(), z, create_graph=True)
    # no NaN: nothing raised, gradients as usual
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dl.autograd.detect_anomaly():
            v = dl.tensor([1.0, 2.0], requires_grad=True)
            (v * v).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [2.0, 4.0])


def test_autograd_module_layout():
    import darklib.autograd.functional as F

    assert F is dl.autograd.functional
    assert set(F.__all__) == {"vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"}
    assert callable(dl.autograd.gradcheck) and callable(dl.autograd.gradgradcheck)
    from darklib.autograd.anomaly_mode import detect_anomaly
    from darklib.autograd.gradcheck import GradcheckError, gradcheck

    assert gradcheck is dl.autograd.gradcheck and GradcheckError is dl.autograd.GradcheckError
    assert detect_anomaly is dl.autograd.detect_anomaly
