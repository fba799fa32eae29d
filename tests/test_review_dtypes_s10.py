"""Review findings (session 10, dtypes and API probe): NumPy scalars as wrapped numbers,
0-d special functions, quantile with a 0-d q, integer linspace/logspace, overflow checks,
element dtypes in dl.tensor lists, searchsorted with NaN boundaries, argument checks torch
makes, and missing API (legacy typed constructors, windows, size=, ...). Each test compares
with torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import darklib as dl

NAN = float("nan")


def _mod(name: str) -> object:
    return dl if name == "dl" else torch


def _result(fn, lib):
    """('ok', dtype name, values) or ('err',) for ``fn(lib)``."""
    try:
        out = fn(lib)
    except Exception:
        return ("err",)
    return ("ok", str(out.dtype).split(".")[-1], out.tolist())


def _same(fn, approx: bool = False) -> None:
    got, want = _result(fn, dl), _result(fn, torch)
    assert got[0] == want[0], (got, want)
    if want[0] == "err":
        return
    assert got[1] == want[1], (got, want)
    if approx:
        np.testing.assert_allclose(np.array(got[2], float), np.array(want[2], float), rtol=1e-3)
    else:
        assert got[2] == want[2], (got, want)


# ------------------------------------------------------------------ 1. NumPy scalars

NP_SCALARS = [np.float32(1.5), np.float64(1.5), np.float16(1.5), np.int64(2), np.int32(2)]


@pytest.mark.parametrize("s", NP_SCALARS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("dt", ["int64", "float32", "float16", "uint8"])
@pytest.mark.parametrize(
    "op",
    [
        lambda T, x, s: T.clamp(x, s),
        lambda T, x, s: T.clamp(x, None, s),
        lambda T, x, s: T.clamp_min(x, s),
        lambda T, x, s: T.clamp_max(x, s),
        lambda T, x, s: x.clamp(s, s),
        lambda T, x, s: x.clip(s),
        lambda T, x, s: x.pow(s),
        lambda T, x, s: x**s,
        lambda T, x, s: T.pow(s, x),
        lambda T, x, s: x + s,
        lambda T, x, s: T.where(x > 1, x, s),
        lambda T, x, s: T.lerp(x.float(), x.float() * 2, s),
    ],
    ids=[
        "clamp_min_only",
        "clamp_max_only",
        "clamp_min",
        "clamp_max",
        "method_clamp",
        "clip",
        "pow",
        "pow_operator",
        "rpow",
        "add",
        "where",
        "lerp",
    ],
)
def test_numpy_scalars_promote_as_python_numbers(op, dt, s) -> None:
    """torch takes a NumPy scalar as the Python number of its kind (a wrapped number)."""
    _same(lambda T: op(T, T.tensor([1, 2, 3], dtype=getattr(T, dt)), s), approx=True)


def test_numpy_scalar_clamp_examples() -> None:
    assert dl.clamp(dl.tensor([1, 2]), np.float32(1.5)).tolist() == [1.5, 2.0]
    assert dl.clamp(dl.tensor([1, 2]), np.float32(1.5)).dtype == dl.float32
    x = dl.tensor([1.0, 2.0], dtype=dl.float16)
    assert dl.clamp(x, np.float64(1.5)).dtype == dl.float16
    assert dl.clamp_max(x, np.float64(1.5)).dtype == dl.float16
    assert (dl.tensor([1.0, 2]) ** np.float64(2)).dtype == dl.float32
    x = dl.tensor([1.0, 2.0], dtype=dl.float16)
    x.clamp_(np.float64(1.5))
    assert x.dtype == dl.float16 and x.tolist() == [1.5, 2.0]


@pytest.mark.parametrize("alpha", [np.float32(1.5), np.float64(2.0), 1.0, np.int64(2), 2])
@pytest.mark.parametrize("op", ["add", "sub"])
def test_alpha_numpy_scalar(op, alpha) -> None:
    """A float alpha (NumPy's too) with integer tensors raises, as torch."""
    for dt in ("int64", "float32"):
        _same(
            lambda T, dt=dt: getattr(T, op)(
                T.tensor([1, 2], dtype=getattr(T, dt)), T.tensor([3, 4]), alpha=alpha
            )
        )


def test_alpha_float_raises_for_ints() -> None:
    with pytest.raises(RuntimeError):
        dl.add(dl.tensor([1, 2]), dl.tensor([1, 2]), alpha=np.float32(1.5))


def test_numpy_scalar_self_consistency() -> None:
    """Across many ops and methods, a NumPy scalar gives what the Python number gives."""
    xs = {
        "i64": lambda: dl.tensor([1, 2, 3]),
        "f32": lambda: dl.tensor([0.5, 1.5, 2.5]),
        "f16": lambda: dl.tensor([0.5, 1.5, 2.5], dtype=dl.float16),
    }
    pairs = [(np.float32(1.5), 1.5), (np.float64(0.5), 0.5), (np.int64(2), 2), (np.int32(1), 1)]
    calls = [
        lambda x, v: dl.clamp(x, v),
        lambda x, v: dl.clamp(x, v, v),
        lambda x, v: x.clamp_min(v),
        lambda x, v: x.clamp_max(v),
        lambda x, v: dl.pow(x, v),
        lambda x, v: v**x,
        lambda x, v: x.float_power(v),
        lambda x, v: dl.add(x, x, alpha=v),
        lambda x, v: dl.sub(x, x, alpha=v),
        lambda x, v: dl.where(x > 1, x, v),
        lambda x, v: x.masked_fill(x > 1, v),
        lambda x, v: dl.remainder(x, v),
        lambda x, v: dl.mul(x, v),
        lambda x, v: dl.full_like(x, v),
        lambda x, v: dl.var(x.float(), correction=v),
    ]
    for xf in xs.values():
        for npv, pyv in pairs:
            for call in calls:
                a, b = (
                    _result(lambda T, c=call, x=xf, v=npv: c(x(), v), dl),
                    _result(lambda T, c=call, x=xf, v=pyv: c(x(), v), dl),
                )
                assert a == b, (npv, a, b)


# ------------------------------------------------------------------ 2. special functions on 0-d


@pytest.mark.parametrize(
    "name",
    [
        "lgamma",
        "digamma",
        "i0",
        "sinc",
        "special.i0e",
        "special.i1",
        "special.i1e",
        "special.entr",
        "special.gammaln",
        "special.bessel_j0",
        "special.bessel_j1",
        "special.modified_bessel_i0",
        "special.modified_bessel_i1",
        "special.spherical_bessel_j0",
    ],
)
def test_special_keeps_0d(name) -> None:
    def fn(T):
        f = T
        for part in name.split("."):
            f = getattr(f, part)
        return f(T.tensor(0.7))

    got = fn(dl)
    assert tuple(got.shape) == tuple(fn(torch).shape) == ()
    assert math.isclose(got.item(), fn(torch).item(), rel_tol=1e-5)


def test_special_binary_and_inplace_0d() -> None:
    for name in ("igamma", "igammac"):
        out = getattr(dl, name)(dl.tensor(0.7), dl.tensor(1.3))
        want = getattr(torch, name)(torch.tensor(0.7), torch.tensor(1.3))
        assert tuple(out.shape) == () and math.isclose(out.item(), want.item(), rel_tol=1e-5)
    x = dl.tensor(2.5)
    x.lgamma_()
    assert x.shape == () and math.isclose(x.item(), torch.tensor(2.5).lgamma().item(), rel_tol=1e-6)


# ------------------------------------------------------------------ 3. quantile with a 0-d q


@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": 1, "keepdim": True}, {"keepdim": True}])
def test_quantile_0d_q(kw) -> None:
    data = [[1.0, 2, 3], [4, 5, 7]]
    for q in (lambda T: T.tensor(0.3), lambda T: 0.3, lambda T: T.tensor([0.3])):
        got = dl.quantile(dl.tensor(data), q(dl), **kw)
        want = torch.quantile(torch.tensor(data), q(torch), **kw)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


# ------------------------------------------------------------------ 4. integer linspace/logspace


@pytest.mark.parametrize(
    "args", [(0.5, 3.7, 4), (0.5, 3.7, 5), (-0.5, 3.7, 3), (2.9, 0.1, 3), (-7, 10, 6), (0, 100, 7)]
)
@pytest.mark.parametrize("dt", ["int64", "int32"])
def test_linspace_integer_dtype(args, dt) -> None:
    _same(lambda T: T.linspace(*args, dtype=getattr(T, dt)))


@pytest.mark.parametrize(
    "args",
    [
        (0.5, 3, 4, 10),
        (0.5, 2.5, 3, 10),
        (1, 2, 3, 10),
        (0, 2, 5, 2),
        (0, 2, 5, 2.5),
        (-1, 1, 3, 10),
    ],
)
def test_logspace_integer_dtype(args) -> None:
    _same(lambda T: T.logspace(*args[:3], base=args[3], dtype=T.int64))
    assert dl.logspace(0.5, 3, 4, dtype=dl.int64).tolist() == [1, 10, 100, 1000]


# ------------------------------------------------------------------ 5. overflow of numbers


@pytest.mark.parametrize(
    "other", [300, -1, -300, 200, 2.5, True, 1e10, 1e40, 70000], ids=lambda v: repr(v)
)
@pytest.mark.parametrize("dt", ["uint8", "int8", "float16", "float32", "int64"])
def test_where_number_must_fit(dt, other) -> None:
    _same(lambda T: T.where(T.tensor([True, False]), T.tensor([1, 2], dtype=getattr(T, dt)), other))
    _same(lambda T: T.where(T.tensor([True, False]), other, T.tensor([1, 2], dtype=getattr(T, dt))))


def test_where_uint8_300_raises() -> None:
    with pytest.raises(RuntimeError, match="overflow"):
        dl.where(dl.tensor([True, False]), dl.tensor([1, 2], dtype=dl.uint8), 300)


@pytest.mark.parametrize("value", [1e40, -3.5e38, 70000.0, float("inf")])
@pytest.mark.parametrize("dt", ["float32", "float16", "float64"])
def test_setitem_float_overflow(dt, value) -> None:
    def fn(T):
        x = T.zeros(2, dtype=getattr(T, dt))
        x[0] = value
        return x

    _same(fn)


# ------------------------------------------------------------------ 6. randperm dtypes


@pytest.mark.parametrize(
    "n, dt",
    [
        (300, "uint8"),
        (256, "uint8"),
        (257, "uint8"),
        (129, "int8"),
        (128, "int8"),
        (3000, "float16"),
        (2049, "float16"),
        (3, "bool"),
    ],
)
def test_randperm_dtype_range(n, dt) -> None:
    got = _result(lambda T: T.randperm(n, dtype=getattr(T, dt)), dl)
    want = _result(lambda T: T.randperm(n, dtype=getattr(T, dt)), torch)
    assert got[0] == want[0]
    if got[0] == "ok":
        assert sorted(got[2]) == list(range(n))


# ------------------------------------------------------------------ 7. element dtypes in lists


@pytest.mark.parametrize(
    "data",
    [
        lambda T: [np.float64(0.1), 2],
        lambda T: [np.float16(0.5), 2],
        lambda T: [np.float32(0.5), 2],
        lambda T: [np.int32(1), 2],
        lambda T: [np.int8(1), np.uint8(2)],
        lambda T: [np.int64(1), np.float16(2.5)],
        lambda T: [np.float16(1), 2.5],
        lambda T: [[np.float64(1)], [2]],
        lambda T: [T.tensor(1.0, dtype=T.float64)],
        lambda T: [T.tensor(1.0, dtype=T.float16), 2.0],
        lambda T: [T.tensor(1, dtype=T.int32), 2],
        lambda T: [T.tensor(1, dtype=T.int32), T.tensor(1, dtype=T.int8)],
        lambda T: [1.5, 2],
        lambda T: [[1, 2], [3, 4]],
    ],
)
@pytest.mark.parametrize("default", ["float32", "float64"])
def test_tensor_list_element_dtypes(data, default) -> None:
    def fn(T):
        T.set_default_dtype(getattr(T, default))
        try:
            return T.tensor(data(T))
        finally:
            T.set_default_dtype(T.float32)

    _same(fn, approx=True)


def test_Tensor_of_tensor_is_an_alias() -> None:
    a = dl.tensor([1, 2])
    b = dl.Tensor(a)
    assert b.dtype == dl.int64 and torch.Tensor(torch.tensor([1, 2])).dtype == torch.int64
    b[0] = 5
    assert a.tolist() == [5, 2]
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    (dl.Tensor(x) * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    assert dl.Tensor([1, 2]).dtype == dl.float32 and dl.Tensor(2, 3).shape == (2, 3)


# ------------------------------------------------------------------ 8. searchsorted, bincount


def test_searchsorted_nan_boundaries() -> None:
    rng = np.random.default_rng(0)
    cases = [
        ([1.0, 5, NAN], [6.0, NAN, 0, 5]),
        ([1.0, NAN, NAN], [6.0, NAN, 0, 1]),
        ([0.5, NAN, -math.inf], [0.5, NAN, -math.inf]),
    ]
    for _ in range(60):
        k = int(rng.integers(1, 8))
        s = np.sort(rng.integers(0, 5, k).astype(float))
        s[rng.random(k) < 0.3] = NAN
        v = rng.integers(-1, 6, 5).astype(float)
        v[rng.random(5) < 0.2] = NAN
        cases.append((s.tolist(), v.tolist()))
    for s, v in cases:
        for right in (False, True):
            _same(lambda T, s=s, v=v, r=right: T.searchsorted(T.tensor(s), T.tensor(v), right=r))
            _same(lambda T, s=s, v=v, r=right: T.bucketize(T.tensor(v), T.tensor(s), right=r))
    s2 = np.sort(rng.integers(0, 5, (3, 6)).astype(float), axis=1)
    s2[rng.random((3, 6)) < 0.3] = NAN
    v2 = rng.integers(-1, 6, (3, 4)).astype(float)
    for right in (False, True):
        _same(lambda T, r=right: T.searchsorted(T.tensor(s2), T.tensor(v2), right=r))


@pytest.mark.parametrize("wdt", ["float16", "float32", "float64", "int64", "uint8"])
def test_bincount_weight_dtype(wdt) -> None:
    _same(
        lambda T: T.bincount(
            T.tensor([1, 1, 3]), weights=T.tensor([1, 2, 3], dtype=getattr(T, wdt))
        )
    )


# ------------------------------------------------------------------ 9. argument checks


@pytest.mark.parametrize(
    "fn",
    [
        lambda T: T.diff(T.tensor([1, 2, 3]), n=-1),
        lambda T: T.diff(T.tensor([1, 2, 3]), n=0),
        lambda T: T.normal(0.0, -1.0, (2,)),
        lambda T: T.normal(T.zeros(2), -1.0),
        lambda T: T.normal(T.zeros(2), T.tensor([1.0, -1])),
        lambda T: T.normal(0.0, T.tensor([1.0, -1])),
        lambda T: T.normal(T.zeros(2), NAN),
        lambda T: T.zeros(2).normal_(0, -1),
        lambda T: T.zeros(2).normal_(0, 0),
        lambda T: T.bernoulli(T.tensor([0.5, 1.5])),
        lambda T: T.bernoulli(T.tensor([0.5, NAN])),
        lambda T: T.bernoulli(T.zeros(2), 1.5),
        lambda T: T.bernoulli(T.zeros(2), -0.1),
        lambda T: T.zeros(2).bernoulli_(1.5),
        lambda T: T.zeros(2).bernoulli_(T.tensor([0.5, 2.0])),
        lambda T: T.zeros(2).bernoulli(1.5),
        lambda T: T.zeros(2).uniform_(2, 1),
        lambda T: T.zeros(2).uniform_(1, 1),
        lambda T: T.zeros(2).geometric_(1),
        lambda T: T.zeros(2).geometric_(0),
        lambda T: T.zeros(2).geometric_(1.5),
        lambda T: T.isclose(T.tensor([1, 2]), T.tensor([1.0, 2])),
        lambda T: T.isclose(T.tensor([1.0, 2]), T.tensor([1.0, 2], dtype=T.float64)),
        lambda T: T.tensor(T.allclose(T.tensor([1, 2]), T.tensor([1.0, 2]))),
        lambda T: T.isclose(T.tensor([1.0, 2]), T.tensor([1.0, 2.5])),
        lambda T: T.unique(T.zeros(2, 0), dim=0),
        lambda T: T.unique(T.zeros(2, 0, 3), dim=2),
        lambda T: T.unique(T.zeros(0, 2), dim=0),
        lambda T: T.unique(T.zeros(2, 0), dim=1),
        lambda T: T.unique_consecutive(T.zeros(2, 0), dim=0),
    ],
)
def test_argument_checks_as_torch(fn) -> None:
    got, want = _result(fn, dl), _result(fn, torch)
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert got[1] == want[1] and np.shape(got[2]) == np.shape(want[2])


# ------------------------------------------------------------------ 10. missing API


@pytest.mark.parametrize(
    "fn",
    [
        lambda T: T.FloatTensor(2, 3).zero_(),
        lambda T: T.FloatTensor([1, 2]),
        lambda T: T.LongTensor([1.5, 2.7]),
        lambda T: T.DoubleTensor(2).zero_(),
        lambda T: T.IntTensor([1.7]),
        lambda T: T.ByteTensor([1, 2]),
        lambda T: T.BoolTensor([1, 0]),
        lambda T: T.HalfTensor([1.5]),
        lambda T: T.FloatTensor(),
        lambda T: T.FloatTensor(T.Size([2])).zero_(),
        lambda T: T.FloatTensor(np.array([1, 2])),
        lambda T: T.FloatTensor(T.tensor([1.0, 2.0])),
        lambda T: T.FloatTensor(T.tensor([1, 2])),
        lambda T: T.FloatTensor(1.5),
        lambda T: T.zeros(2).type(T.LongTensor),
        lambda T: T.zeros(size=(2, 3)),
        lambda T: T.ones(size=[2]),
        lambda T: T.empty(size=(2,)).zero_(),
        lambda T: T.rand(size=(2,)).zero_(),
        lambda T: T.randn(size=(2,)).zero_(),
        lambda T: T.full(size=(2,), fill_value=1.5),
        lambda T: T.arange(end=3),
        lambda T: T.arange(start=1, end=4),
        lambda T: T.scalar_tensor(3),
        lambda T: T.scalar_tensor(True),
        lambda T: T.scalar_tensor(2, dtype=T.int64),
        lambda T: T.max(T.tensor([1, 5]), other=T.tensor([3, 2])),
        lambda T: T.tensor([1, 5]).min(other=T.tensor([3, 2])),
    ],
)
def test_missing_api(fn) -> None:
    _same(fn)


def test_legacy_isinstance() -> None:
    assert isinstance(dl.zeros(2), dl.FloatTensor)
    assert not isinstance(dl.zeros(2, dtype=dl.int64), dl.FloatTensor)
    assert isinstance(dl.zeros(2, dtype=dl.int64), dl.LongTensor)
    assert isinstance(dl.FloatTensor([1]), dl.Tensor)


@pytest.mark.parametrize(
    "name", ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
)
@pytest.mark.parametrize("n", [0, 1, 2, 5, 16])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_windows(name, n, periodic, dt) -> None:
    got = getattr(dl, name)(n, periodic, dtype=getattr(dl, dt))
    want = getattr(torch, name)(n, periodic, dtype=getattr(torch, dt))
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_window_args_and_errors() -> None:
    np.testing.assert_allclose(
        dl.hamming_window(7, True, 0.5, 0.3).numpy(),
        torch.hamming_window(7, True, 0.5, 0.3).numpy(),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        dl.kaiser_window(7, False, 5.0).numpy(),
        torch.kaiser_window(7, False, 5.0).numpy(),
        atol=1e-6,
    )
    for lib in (dl, torch):
        with pytest.raises(RuntimeError):
            lib.hann_window(4, dtype=lib.int64)
        with pytest.raises(RuntimeError):
            lib.hann_window(-1)


@pytest.mark.parametrize(
    "method, other",
    [("absolute_", None), ("erfc_", None), ("fix_", None), ("arctan2_", [2.0, -1.0, 0.5])],
)
def test_inplace_aliases(method, other) -> None:
    def fn(T):
        x = T.tensor([-1.5, 0.25, 2.7])
        args = () if other is None else (T.tensor(other),)
        getattr(x, method)(*args)
        return x

    _same(fn, approx=True)
