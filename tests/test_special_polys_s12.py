"""torch.special's orthogonal polynomials (Chebyshev T/U/V/W and their shifted forms,
Hermite H and He, Laguerre L, Legendre P) and the Airy function Ai, against torch 2.13 on
dense grids of x and n, with their special cases, dtypes, broadcasting and the places
where darklib gives the mathematical value instead of torch's numerical accident."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import darklib as dl

CHEBYSHEV = [
    "chebyshev_polynomial_t",
    "chebyshev_polynomial_u",
    "chebyshev_polynomial_v",
    "chebyshev_polynomial_w",
    "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w",
]
NAMES = [*CHEBYSHEV, "hermite_polynomial_h", "hermite_polynomial_he"]
NAMES += ["laguerre_polynomial_l", "legendre_polynomial_p"]

# |darklib - torch| / max(1, |torch|) in float64 on the grid: the same recurrences, but
# torch's kernels may fuse multiply-adds; Hermite's cancel most near its zeros
F64_TOL = {name: 1e-12 for name in NAMES}
F64_TOL.update(hermite_polynomial_h=1e-10, hermite_polynomial_he=1e-10)
F64_TOL.update(laguerre_polynomial_l=1e-12, legendre_polynomial_p=1e-13)

X_GRID = np.concatenate(
    [
        np.linspace(-5, 5, 1001),
        np.linspace(-60, 60, 121),
        [-1.0, 1.0, 0.0, 0.5, 1 - 2**-53, -1 + 2**-53, 2**-60, 1e-300, 5e-324],
    ]
)
N_GRID = np.concatenate([np.arange(-2, 61), [2.5, 7.9, 60.99, -0.5, -1.5]])


def _pair(name, x, n, dtype=np.float64):
    xa, na = np.asarray(x, dtype), np.asarray(n, dtype)
    got = getattr(dl.special, name)(dl.tensor(xa), dl.tensor(na)).numpy()
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    want = getattr(torch.special, name)(torch.tensor(xa, dtype=tdt), torch.tensor(na, dtype=tdt))
    return got, want.numpy()


def _far_sign(name, x, n):
    """The sign of p_n(x) beyond its zeros (|x| -> inf): that of the leading term."""
    y = 2 * x - 1 if name.startswith("shifted") else x
    odd = np.fmod(np.trunc(n), 2) != 0
    if name == "laguerre_polynomial_l":  # leading coefficient (-1)^n / n!
        return np.where((y > 0) & odd, -1.0, 1.0)
    return np.where((y < 0) & odd, -1.0, 1.0)


# ------------------------------------------------------------------ values on dense grids


@pytest.mark.parametrize("name", NAMES)
def test_float64_grid_matches_torch(name):
    x, n = X_GRID[:, None], N_GRID[None, :]
    got, want = _pair(name, x, n)
    assert got.dtype == np.float64 and got.shape == want.shape
    fin = np.isfinite(want) & (np.abs(want) < 1e300)
    assert np.isfinite(got[fin]).all()
    err = np.abs(got[fin] - want[fin]) / np.maximum(1.0, np.abs(want[fin]))
    assert err.max() <= F64_TOL[name], err.max()
    # where torch overflows (inf, or NaN from inf - inf), darklib's value is the signed inf
    over = ~fin
    if over.any():
        xs, ns = np.broadcast_arrays(x, n)
        assert np.isinf(got[over]).all()
        assert (np.sign(got[over]) == _far_sign(name, xs[over], ns[over])).all()
        assert (got[np.isinf(want)] == want[np.isinf(want)]).all()


@pytest.mark.parametrize("name", NAMES)
def test_float32_is_the_float64_value_rounded(name):
    """darklib evaluates float32 in float64 and rounds once; torch's float32 recurrence
    carries float32 rounding (up to ~1e-4 of the scale for Chebyshev, more where Hermite
    and Laguerre cancel)."""
    x, n = X_GRID[:, None].astype(np.float32), N_GRID[None, :].astype(np.float32)
    got, t32 = _pair(name, x, n, np.float32)
    assert got.dtype == np.float32
    ref = getattr(torch.special, name)(
        torch.tensor(x, dtype=torch.float64), torch.tensor(n, dtype=torch.float64)
    ).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r32 = ref.astype(np.float32)
    fin = np.isfinite(r32)
    scale = np.maximum(np.abs(r32[fin]), 1e-30)
    close = np.abs(got[fin] - r32[fin]) <= 2.5e-7 * scale + 1e-12
    assert close.all()
    # past float32's range (torch: inf or NaN) the signed inf of the float64 value
    over = ~fin & np.isfinite(ref)
    assert (got[over] == np.sign(ref[over]) * np.inf).all()
    # and within torch's own float32 error where torch is finite
    ok = fin & np.isfinite(t32)
    tol = 2e-4 if name in CHEBYSHEV or name == "legendre_polynomial_p" else 5e-2
    diff = np.abs(got[ok].astype(np.float64) - t32[ok])
    assert (diff <= tol * np.maximum(1.0, np.abs(ref[ok]))).all()


def test_large_degrees_trigonometric_and_hyperbolic_forms():
    x = np.array([-0.999, -0.7, 0.0, 0.3, 0.9999, 1.0001, 1.5, -1.0001, -3.0])
    for name in CHEBYSHEV:
        for n in (100, 1000, 5000):
            got, want = _pair(name, x, np.full_like(x, n))
            fin = np.isfinite(want)
            err = np.abs(got[fin] - want[fin]) / np.maximum(1.0, np.abs(want[fin]))
            assert err.max() < 1e-10, (name, n, err.max())
            assert np.isinf(got[~fin]).all()
    # huge degrees: closed forms, no loop of n steps (torch: its loop, or the same forms)
    got, want = _pair(
        "chebyshev_polynomial_t", [0.3, -0.5, 1.0, -1.0], [1e12, 1e12, 1e12, 1e12 + 1]
    )
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert got[2:].tolist() == [1.0, -1.0]
    got = dl.special.chebyshev_polynomial_u(dl.tensor([1 + 1e-12], dtype=dl.float64), 1e9).numpy()
    assert np.isinf(got).all() and (got > 0).all()
    for name in ("legendre_polynomial_p", "laguerre_polynomial_l"):
        got, want = _pair(name, x, np.full_like(x, 3000))
        fin = np.isfinite(want)
        err = np.abs(got[fin] - want[fin]) / np.maximum(1.0, np.abs(want[fin]))
        assert err.max() < 1e-10
    with pytest.raises(NotImplementedError, match="degrees n above"):
        dl.special.legendre_polynomial_p(dl.tensor([0.5]), float(2**17 + 5))


# ------------------------------------------------------------------ special cases


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_end_points_and_degrees_exactly_as_torch(name, dtype):
    """|x| = 1 (x = 0, 1 when shifted), Laguerre at 0, negative and fractional n (cast to
    an integer toward 0, as torch), NaN, inf and huge n (torch's cast makes them negative:
    0), every one exactly torch's value."""
    x = np.array([-1.0, 1.0, 0.0, 0.5, 0.25, -0.3, 2.0])[:, None]
    n = np.array([-3, -1, -0.5, 0, 0.7, 1, 1.9, 2, 5, 6, 7, 8, 9, 12, 13, 20, 21])
    n = np.concatenate([n, [math.nan, math.inf, -math.inf, 1e30]])[None, :]
    got, want = _pair(name, x, n, dtype)
    if name.startswith("shifted"):
        at = [0.0, 1.0]
    elif name.startswith("hermite"):
        at = []
    else:
        at = [0.0] if name.startswith("laguerre") else [-1.0, 1.0]
    ends = np.isin(x, at).ravel()
    np.testing.assert_array_equal(got[ends], want[ends])
    np.testing.assert_array_equal(got[:, -4:], np.zeros((x.size, 4), dtype))
    np.testing.assert_array_equal(got[:, -4:], want[:, -4:])
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_infinite_x(name):
    n = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 7.0, 30.0])
    got, want = _pair(name, np.full(n.size, math.nan), n)
    assert got[:3].tolist() == want[:3].tolist() == [0.0, 0.0, 1.0]
    assert np.isnan(got[3:]).all()  # torch: NaN, or an uninitialised value at n = 2
    assert np.isnan(want[3]).all()
    for inf in (math.inf, -math.inf):
        got, want = _pair(name, np.full(n.size, inf), n)
        assert got[:3].tolist() == want[:3].tolist() == [0.0, 0.0, 1.0]
        assert got[3] == want[3]  # the degree-1 polynomial
        # the limit (torch: NaN from inf - inf from n = 2 or 3)
        assert (got[3:] == _far_sign(name, np.full(5, inf), n[3:]) * math.inf).all()


@pytest.mark.parametrize("name", ["hermite_polynomial_h", "hermite_polynomial_he"])
def test_hermite_degree_cap_as_torch(name):
    for dtype, cap in ((np.float32, 128), (np.float64, 512)):
        got, want = _pair(name, [0.5, -2.0, 30.0], [cap + 1] * 3, dtype)
        assert np.isnan(got).all() and np.isnan(want).all()
        got, want = _pair(name, [-60.0, 60.0], [cap - 1, cap - 1], dtype)
        assert (got == [-np.inf, np.inf]).all()  # overflow past the zeros (torch: NaN)
    got, want = _pair(name, [0.5, 2.0], [100, 100])
    np.testing.assert_allclose(got, want, rtol=1e-10)


# ------------------------------------------------------------------ dtypes and arguments


def test_promotion_broadcasting_and_numbers_as_torch():
    f, g = dl.special.chebyshev_polynomial_t, torch.special.chebyshev_polynomial_t
    cases = [
        ([2, 3], 3, None, None),
        ([2, 3], [2, 3], None, None),
        (0.3, [3.0, 9.0], np.float64, np.float32),
        (2, [3.0], None, np.float64),
        ([0.5], 2.5, np.float32, None),
        ([0.5], [3], np.float32, np.int8),
        ([True, False], 2, None, None),
    ]
    for x, n, xdt, ndt in cases:
        a = [x if np.ndim(x) == 0 and xdt is None else np.asarray(x, xdt)]
        a.append(n if np.ndim(n) == 0 and ndt is None else np.asarray(n, ndt))
        dl_args = [dl.tensor(v) if isinstance(v, np.ndarray) else v for v in a]
        t_args = [torch.tensor(v) if isinstance(v, np.ndarray) else v for v in a]
        got, want = f(*dl_args), g(*t_args)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    for name in NAMES:
        got = getattr(dl.special, name)(dl.zeros((3, 1)), dl.tensor([0.0, 1.0, 2.0, 3.0]))
        want = getattr(torch.special, name)(torch.zeros((3, 1)), torch.tensor([0.0, 1, 2, 3]))
        assert got.shape == tuple(want.shape) == (3, 4)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_argument_errors_as_torch():
    f = dl.special.legendre_polynomial_p
    with pytest.raises(TypeError, match="Tensor"):
        f(0.5, 3)
    with pytest.raises(RuntimeError, match="must match the size"):
        f(dl.zeros((3, 2)), dl.zeros(4))
    with pytest.raises(NotImplementedError, match=r"legendre_polynomial_p_cpu.*Half"):
        f(dl.zeros(2, dtype=dl.float16), 2)
    with pytest.raises(NotImplementedError, match=r"airy_ai_cpu.*Half"):
        dl.special.airy_ai(dl.zeros(2, dtype=dl.float16))


@pytest.mark.parametrize("name", [*NAMES, "airy_ai", "spherical_bessel_j0"])
def test_no_gradient_as_torch(name):
    x = dl.tensor([0.3, 0.7], requires_grad=True)
    tx = torch.tensor([0.3, 0.7], requires_grad=True)
    args, targs = ((x,), (tx,)) if name in ("airy_ai", "spherical_bessel_j0") else ((x, 3), (tx, 3))
    y, ty = getattr(dl.special, name)(*args), getattr(torch.special, name)(*targs)
    assert y.requires_grad is ty.requires_grad is False
    assert y.grad_fn is None and ty.grad_fn is None
    with pytest.raises(RuntimeError):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


# ------------------------------------------------------------------ Airy Ai


def _airy_reference(xs):
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        return np.array([float(mpmath.airyai(mpmath.mpf(float(v)))) for v in xs])


def test_airy_ai_against_torch_and_a_reference():
    xs = np.concatenate(
        [
            np.linspace(-30, 30, 241),
            np.linspace(-200, -30, 35),
            np.linspace(30, 103.5, 30),
            [-10.0, 10.0, -10.0 - 1e-9, 10.0 + 1e-9, 2.09, -2.09, 8.3203353],
        ]
    )
    got = dl.special.airy_ai(dl.tensor(xs)).numpy()
    want = torch.special.airy_ai(torch.tensor(xs)).numpy()
    ref = _airy_reference(xs)
    amp = np.where(xs < 0, np.abs(np.minimum(xs, -1e-3)) ** -0.25 / math.sqrt(math.pi), np.abs(ref))
    amp = np.maximum(amp, 1e-300)
    # darklib: a few ulp of the amplitude (the phase of the oscillation for large -x, zeta
    # = 2/3 |x|^1.5, is as exact as x itself); torch's fits are off by up to 3e-6 near -2.1
    err = np.abs(got - ref) / amp
    assert err[np.abs(xs) <= 10].max() < 5e-15
    assert (err <= 2e-15 * (1 + np.abs(xs) ** 1.5)).all()
    assert np.max(np.abs(got - want) / amp) < 1e-5
    close = (xs > 2.09) & (xs < 103)
    np.testing.assert_allclose(got[close], want[close], rtol=1e-12)  # e^-zeta: zeta eps


def test_airy_ai_special_values_and_dtypes():
    x = np.array([0.0, math.inf, -math.inf, math.nan, 103.9, 150.0, -1e6])
    got = dl.special.airy_ai(dl.tensor(x)).numpy()
    want = torch.special.airy_ai(torch.tensor(x)).numpy()
    assert got[0] == pytest.approx(0.355028053887817239, rel=1e-16)
    assert got[4] == got[5] == 0.0 == want[4] == want[5]  # torch's cut-off at 103.892
    # the limits at +-inf (torch: NaN)
    assert got[1] == got[2] == 0.0 and np.isnan(want[1]) and np.isnan(want[2])
    assert np.isnan(got[3]) and np.isnan(want[3])
    assert abs(got[6]) < 0.02 and abs(got[6] - want[6]) < 1e-6
    x32 = np.linspace(-12, 12, 97).astype(np.float32)
    got32 = dl.special.airy_ai(dl.tensor(x32))
    assert got32.dtype == dl.float32
    ref = dl.special.airy_ai(dl.tensor(x32.astype(np.float64))).numpy().astype(np.float32)
    np.testing.assert_array_equal(got32.numpy(), ref)
    ints = dl.special.airy_ai(dl.tensor([2, 3]))
    assert ints.dtype == dl.float32
    want = torch.special.airy_ai(torch.tensor([2, 3])).numpy()
    np.testing.assert_allclose(ints.numpy(), want, rtol=1e-6)
