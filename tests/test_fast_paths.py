"""The NumPy fast paths behind erf/erfc/erfcx/ndtr/log_ndtr/erfinv/ndtri (kernels/normal.py),
the float32 erf and GELU blocks, the blocked special functions, cummax/cummin's whole-slice
scans and topk's group filter: values against mpmath and torch (every range boundary,
tails, subnormals, NaN, infinities, signed zeros, ties), gradients against torch, and
results that do not depend on the blocks, the threads or the input's layout."""

import math

import numpy as np
import pytest
import torch

import darklib as dl
import darklib.nn.functional as F
from darklib.kernels import normal
from darklib.kernels import parallel as par
from darklib.ops import reduction as R
from darklib.ops import special as S
from tests.oracle import compare, gradcheck, rng

mp = pytest.importorskip("mpmath")
mp.mp.dps = 40
NAN, INF = float("nan"), float("inf")


@pytest.fixture
def threaded(monkeypatch):
    """Every size split over 3 threads (uneven pieces), as tests/test_parallel.py's."""
    monkeypatch.setattr(par, "MIN_ELEMENTS", 0)
    before = par.get_num_threads()
    par.set_num_threads(3)
    yield
    par.set_num_threads(before)


def _ulps(got: np.ndarray, exact: np.ndarray, dtype) -> np.ndarray:
    """|got - exact| in units of the last place of exact in ``dtype`` (0 where equal)."""
    with np.errstate(all="ignore"):
        spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
        spacing = np.maximum(spacing, np.finfo(dtype).smallest_subnormal)
        err = np.abs(got.astype(np.float64) - exact) / spacing
    return np.where(got.astype(np.float64) == exact, 0.0, err)


def _exact(fn, x: np.ndarray) -> np.ndarray:
    return np.array([float(fn(mp.mpf(float(v)))) for v in x])


# ------------------------------------------------------------------ erf family, float64

# every range boundary of kernels/normal.py (1/2, 2, 27), each side of it, and the tails
_EDGES = [0.5, 2.0, 27.0, 6.0, 26.5, 1e-300, 5e-324, 2.2e-308, 1e-8, 0.1, 1.0, 10.0, 38.0]
_X64 = np.concatenate(
    [
        np.array([np.nextafter(v, d) for v in _EDGES for d in (0.0, 100.0)] + _EDGES),
        rng(0).standard_normal(400) * 4,
        np.geomspace(1e-5, 30, 300),
    ]
)
_X64 = np.concatenate([_X64, -_X64])

CASES64 = {
    "erf": (dl.erf, mp.erf, 2),
    "erfc": (dl.erfc, mp.erfc, 4),
    "erfcx": (dl.special.erfcx, lambda v: mp.erfc(v) * mp.exp(v * v), 3),
    "ndtr": (dl.special.ndtr, mp.ncdf, 5),
    "log_ndtr": (
        dl.special.log_ndtr,
        lambda v: mp.log(mp.ncdf(v)) if v < 0 else mp.log1p(-mp.ncdf(-v)),
        4,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES64))
def test_float64_erf_family_within_a_few_ulps(name):
    fn, exact_fn, ulps = CASES64[name]
    x = _X64[np.abs(_X64) < (26 if name == "erfcx" else 40)]  # (erfcx(-27) overflows)
    exact = _exact(exact_fn, x)
    got = fn(dl.tensor(x)).numpy()
    keep = np.abs(exact) > 1e-300  # below, subnormal results: compared absolutely
    assert _ulps(got[keep], exact[keep], np.float64).max() <= ulps
    np.testing.assert_allclose(got[~keep], exact[~keep], rtol=0, atol=1e-310)


TORCH_ERF_FAMILY = {
    "erf": torch.erf,
    "erfc": torch.erfc,
    "erfcx": torch.special.erfcx,
    "ndtr": torch.special.ndtr,
    "log_ndtr": torch.special.log_ndtr,
}


@pytest.mark.parametrize("name", sorted(CASES64))
def test_erf_family_special_values_and_float32_follow_torch(name):
    fn, _, _ = CASES64[name]
    t_fn = TORCH_ERF_FAMILY[name]
    special = np.array([NAN, INF, -INF, 0.0, -0.0, 1e300, -1e300, 30.0, -30.0])
    for dt in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            v = special.astype(dt)  # (1e300: inf in float32)
        got, want = fn(dl.tensor(v)).numpy(), t_fn(torch.tensor(v)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-150)  # (torch's ndtr(-30): 0)
        assert np.array_equal(np.signbit(got[3:5]), np.signbit(want[3:5]))
    x = (rng(1).standard_normal(2000) * 4).astype(np.float32)
    got = fn(dl.tensor(x)).numpy()
    exact = fn(dl.tensor(x.astype(np.float64))).numpy()  # float64 of the same inputs
    assert got.dtype == np.float32
    ok = (np.abs(exact) > 1e-37) & (np.abs(exact) < 1e38)  # (erfcx(-9.5) overflows float32)
    assert _ulps(got[ok], exact[ok], np.float32).max() <= {"erf": 1.6, "erfc": 8}.get(name, 1)


@pytest.mark.parametrize("name", ["erf", "erfc", "erfcx", "ndtr", "log_ndtr"])
def test_erf_family_gradients_follow_torch(name):
    fn, _, _ = CASES64[name]
    t_fn = TORCH_ERF_FAMILY[name]
    x = np.concatenate([rng(2).standard_normal(50) * 3, [0.5, -0.5, 2.0, -2.0, 27.5, -8.0]])
    compare(fn, t_fn, x, atol=1e-12, rtol=1e-10)
    gradcheck(fn, rng(3).uniform(-1.5, 3, 6))


# ------------------------------------------------------------------ erfinv and ndtri


def _ndtri_exact(p: float) -> float:
    """The normal quantile at 40 digits: Newton's method on log Phi(t) = log p from the
    tail's asymptotic guess (on the lower half; the upper by symmetry)."""
    q = mp.mpf(p)
    if q == mp.mpf(0.5):
        return 0.0
    lower = q < 0.5
    q = q if lower else 1 - q
    y = -2 * mp.log(q)
    t = (
        -mp.sqrt(y - mp.log(y) - mp.log(2 * mp.pi))
        if q < 0.2
        else -mp.sqrt(2) * mp.erfinv(1 - 2 * q)
    )
    for _ in range(60):
        step = (mp.log(mp.ncdf(t)) - mp.log(q)) * mp.ncdf(t) / mp.npdf(t)
        t -= step
        if abs(step) < mp.mpf(10) ** -35 * abs(t):
            break
    return float(t if lower else -t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erfinv_within_an_ulp_or_so_in_every_range(dtype):
    # ranges of w = -log(1 - y^2): 6.25, 16 (16.5), 40; and y near 1
    w_edges = np.array([6.25, 16.0, 16.5, 40.0])
    y_edges = np.sqrt(-np.expm1(-w_edges))
    y = np.concatenate(
        [
            rng(4).uniform(-1, 1, 500),
            1 - np.geomspace(np.finfo(dtype).eps / 2, 0.5, 200),
            np.geomspace(1e-30, 0.5, 100),
            y_edges,
            np.nextafter(y_edges, 0),
        ]
    ).astype(dtype)
    y = np.concatenate([y, -y])
    got = dl.erfinv(dl.tensor(y)).numpy()
    exact = _exact(mp.erfinv, y)
    assert got.dtype == dtype
    assert _ulps(got, exact, dtype).max() <= (0.6 if dtype == np.float32 else 4)
    edge = np.array([1.0, -1.0, 0.0, -0.0, 1.5, -1.5, NAN], dtype)
    want = torch.erfinv(torch.tensor(edge)).numpy()
    np.testing.assert_array_equal(dl.erfinv(dl.tensor(edge)).numpy(), want)
    assert np.array_equal(np.signbit(dl.erfinv(dl.tensor(edge)).numpy()[2:4]), [False, True])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ndtri_within_a_few_ulps_down_to_the_smallest_subnormal(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    p = np.concatenate(
        [
            rng(5).uniform(0, 1, 300),
            np.geomspace(tiny, 0.5, 300),
            1 - np.geomspace(np.finfo(dtype).eps / 2, 0.5, 100),
            [0.5, np.nextafter(0.5, 0), np.nextafter(0.5, 1), tiny, 1e-18, 1e-17],
        ]
    ).astype(dtype)
    got = dl.special.ndtri(dl.tensor(p)).numpy()
    exact = np.array([_ndtri_exact(float(v)) for v in p])
    assert _ulps(got, exact, dtype).max() <= (0.6 if dtype == np.float32 else 5)
    edge = np.array([0.0, 1.0, -0.1, 1.1, NAN], dtype)
    want = torch.special.ndtri(torch.tensor(edge)).numpy()
    np.testing.assert_array_equal(dl.special.ndtri(dl.tensor(edge)).numpy(), want)


def test_erfinv_and_ndtri_gradients_follow_torch():
    y = rng(6).uniform(-0.999, 0.999, 40)
    compare(dl.erfinv, torch.erfinv, y, atol=1e-10, rtol=1e-10)
    p = rng(7).uniform(1e-6, 1 - 1e-6, 40)
    compare(dl.special.ndtri, torch.special.ndtri, p, atol=1e-8, rtol=1e-10)
    compare(dl.erfinv, torch.erfinv, y.astype(np.float32), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ blocks, threads, layouts

_BIG_FNS = {
    "erf": dl.erf,
    "erfc": dl.erfc,
    "erfinv": lambda t: dl.erfinv(dl.tanh(t)),
    "ndtri": lambda t: dl.special.ndtri(dl.sigmoid(t)),
    "ndtr": dl.special.ndtr,
    "log_ndtr": dl.special.log_ndtr,
    "erfcx": dl.special.erfcx,
    "lgamma": dl.lgamma,
    "digamma": dl.digamma,
    "polygamma1": lambda t: dl.special.polygamma(1, t),
    "i0": dl.special.i0,
    "zeta": lambda t: dl.special.zeta(dl.abs(t) + 1.5, dl.abs(t) + 0.1),
    "gelu": F.gelu,
}


@pytest.mark.parametrize("name", sorted(_BIG_FNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_evaluation_equals_small_pieces_and_ignores_layout(threaded, name, dtype):
    """Inputs of several blocks (both modules' block sizes), split over 3 threads, N-d and
    strided: each value is what evaluating it alone gives."""
    fn = _BIG_FNS[name]
    x = (rng(8).standard_normal((3, 70_001)) * 3).astype(dtype)
    big = fn(dl.tensor(x)).numpy()
    pieces = np.concatenate([fn(dl.tensor(x.reshape(-1)[i : i + 997])).numpy() for i in
                             range(0, x.size, 997)])  # fmt: skip
    if name in ("zeta", "polygamma1"):  # (their direct terms: as many as the block's worst)
        np.testing.assert_allclose(big.reshape(-1), pieces, rtol=1e-15, atol=0)
    else:
        np.testing.assert_array_equal(big.reshape(-1), pieces)
    strided = fn(dl.tensor(np.ascontiguousarray(x.T)).transpose(0, 1)).numpy()
    np.testing.assert_array_equal(strided, big)
    every_other = fn(dl.tensor(x)[:, ::2]).numpy()
    np.testing.assert_array_equal(every_other, big[:, ::2])


# ------------------------------------------------------------------ float32 erf and GELU


def test_float32_erf_within_1_6_ulps_around_its_split():
    r = rng(9)
    split = np.float32(1.0)
    x = np.concatenate(
        [
            r.uniform(-1.5, 1.5, 400_000).astype(np.float32),
            r.standard_normal(400_000).astype(np.float32) * 2,
            np.array([split, np.nextafter(split, 0), -split, 3.92, 1e-45, -1e-38], np.float32),
        ]
    )
    exact = np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(np.float64)
    got = dl.erf(dl.tensor(x)).numpy()
    assert _ulps(got, exact, np.float32).max() <= 1.6  # 1.54 measured on 2e6 points
    assert np.array_equal(np.signbit(got), np.signbit(x))


def test_float32_gelu_signs_infinities_and_gradient_at_the_edges():
    edge = np.array([0.0, -0.0, INF, -INF, NAN, -20.0, 20.0, -1e-45, 1e-45, -3.0], np.float32)
    got = F.gelu(dl.tensor(edge)).numpy()
    exact = torch.nn.functional.gelu(torch.tensor(edge.astype(np.float64))).numpy()
    keep = np.arange(edge.size) != 2  # torch's gelu(inf) is NaN but in its scalar loop
    np.testing.assert_allclose(got[keep], exact[keep], rtol=1e-6, atol=1.5e-45)
    zeros = keep & (exact == 0) & (got == 0)
    assert np.array_equal(np.signbit(got[zeros]), np.signbit(exact[zeros]))
    assert got[2] == INF and np.isnan(got[3])  # inf * 1, -inf * 0
    assert np.signbit(got[[1, 5]]).all()  # -0.0: x times a tiny Phi keeps x's sign
    finite = edge[np.isfinite(edge)]
    x, xt = dl.tensor(finite, requires_grad=True), torch.tensor(finite, requires_grad=True)
    F.gelu(x).sum().backward()
    torch.nn.functional.gelu(xt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ cummax, cummin

# (shape, dim): NumPy's own scan (small), one step per slice (wide rows), chunks of 16
# with and without padding, a leading axis, a middle one, 1-D
CUM_CASES = [
    ((5, 7), 1),
    ((64, 4096), 0),
    ((64, 4096), 1),
    ((3, 10_001), 1),
    ((20_000,), 0),
    ((7, 3001, 3), 1),
    ((4096, 8), 0),
    ((2, 40, 300), 2),
]


@pytest.mark.parametrize("shape,dim", CUM_CASES)
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_scans_follow_torch(shape, dim, name):
    r = rng(10)
    for kind in ("ties", "nan", "int", "float64"):
        if kind == "int":
            x = r.integers(-5, 5, shape)
        else:
            x = r.integers(-20, 20, shape).astype(np.float32 if kind != "float64" else np.float64)
            x += r.random(shape) < 0.5  # ties, repeats of the running extreme
            if kind == "nan":
                x[r.random(shape) < 0.001] = NAN
        got = getattr(dl, name)(dl.tensor(x), dim)
        want = getattr(torch, name)(torch.tensor(x), dim)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    v = np.swapaxes(x, 0, -1)  # a strided input
    got = getattr(dl, name)(dl.tensor(x).transpose(0, -1), dim)
    want = getattr(torch, name)(torch.tensor(v), dim)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_gradients_and_empty(name):
    x = rng(11).integers(0, 6, (6, 3000)).astype(np.float64)
    compare(lambda t: getattr(dl, name)(t, 1).values, lambda t: getattr(torch, name)(t, 1)[0], x)
    compare(lambda t: getattr(dl, name)(t, 0).values, lambda t: getattr(torch, name)(t, 0)[0], x)
    empty = getattr(dl, name)(dl.zeros(0, 5), 1)
    assert empty.values.shape == (0, 5) and empty.indices.shape == (0, 5)


def test_scan_extreme_matches_numpy_accumulate_on_every_path():
    r = rng(12)
    for shape in [(4,), (20_000,), (3, 7001), (64, 4096), (4096, 64), (5, 3000, 3), (2, 20, 1000)]:
        for axis in range(len(shape)):
            a = r.standard_normal(shape).astype(np.float32)
            a.flat[r.integers(0, a.size, 3)] = NAN
            for fn in (np.maximum, np.minimum):
                want = fn.accumulate(a, axis=axis)
                np.testing.assert_array_equal(R._scan_extreme(fn, a, axis), want)


# ------------------------------------------------------------------ topk


def _stable_topk(x: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """The first k of a stable sort along the last axis, NaN largest (darklib's order)."""
    nan = np.isnan(x).astype(int) if x.dtype.kind == "f" else np.zeros(x.shape, int)
    key = np.where(nan == 1, 0.0, x).astype(np.float64)
    pos = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    keys = (pos, -key, -nan) if largest else (pos, key, nan)  # the last is the first key
    return np.lexsort(keys, axis=-1)[..., :k]


@pytest.mark.parametrize("kind", ["normal", "ties", "nan", "int", "zeros"])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_group_filter_follows_the_stable_sort(kind, largest):
    r = rng(13)
    for rows, n, k in [(5, 10_000, 1), (3, 10_000, 10), (4, 10_000, 100), (2, 3001, 7),
                       (1, 200_000, 30), (6, 640, 10)]:  # fmt: skip
        x = r.standard_normal((rows, n)).astype(np.float32)
        if kind == "ties":
            x = np.round(x * 3).astype(np.float32)
        elif kind == "nan":
            x[r.random(x.shape) < 0.002] = NAN
        elif kind == "int":
            x = r.integers(-1000, 1000, (rows, n))
        elif kind == "zeros":
            x = np.where(r.random(x.shape) < 0.5, -0.0, 0.0).astype(np.float32)
            x[:, 3] = INF if largest else -INF
        got = dl.topk(dl.tensor(x), k, dim=1, largest=largest)
        np.testing.assert_array_equal(got.indices.numpy(), _stable_topk(x, k, largest))
        want = torch.topk(torch.tensor(x), k, dim=1, largest=largest)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_topk_group_filter_on_other_dims_strided_and_gradients():
    x = rng(14).standard_normal((3000, 4)).astype(np.float32)
    got = dl.topk(dl.tensor(x), 5, dim=0)
    want = torch.topk(torch.tensor(x), 5, dim=0)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    t = dl.tensor(x).transpose(0, 1)  # strided rows
    np.testing.assert_array_equal(dl.topk(t, 5).indices.numpy(), want.indices.numpy().T)
    v = rng(15).standard_normal((3, 2000))
    compare(lambda a: dl.topk(a, 4)[0], lambda a: torch.topk(a, 4)[0], v)


# ------------------------------------------------------------------ special's positions


def test_fill_runs_each_branch_on_its_own_elements():
    """``_fill`` through positions: N-d, strided and 0-d masks, all or none selected."""
    x = rng(16).standard_normal((4, 5, 6))
    for mask in (x > 0, np.ones(x.shape, bool), np.zeros(x.shape, bool), (x > 0)[:, ::2]):
        src = x if mask.shape == x.shape else x[:, ::2]
        out = np.full(mask.shape, -7.0)
        S._fill(out, mask, lambda v: v * 2, src)
        np.testing.assert_array_equal(out, np.where(mask, src * 2, -7.0))
    out = np.zeros(())
    S._fill(out, np.array(True), lambda v: v + 1, np.array(2.0))
    assert out == 3.0


def test_normal_kernels_keep_the_dtype_and_shape():
    for fn in (normal.erf, normal.erfc, normal.erfcx, normal.ndtr, normal.log_ndtr):
        for dt in (np.float32, np.float64):
            x = np.zeros((2, 0, 3), dt)
            assert fn(x).shape == (2, 0, 3) and fn(x).dtype == dt
            y = fn(np.full((2, 3), 0.25, dt))
            assert y.shape == (2, 3) and y.dtype == dt


# ------------------------------------------------------------------ lu_factor of one matrix


@pytest.mark.parametrize("shape", [(5, 5), (70, 70), (40, 90), (90, 40)])
def test_lu_factor_of_one_matrix_equals_the_batched_path_and_torch(shape):
    """The single-matrix panel (plain slices) against the batched one (a batch of two)
    and torch: regular, singular (a zero column, equal rows) and without pivoting."""
    r = rng(17)
    a = r.standard_normal(shape)
    sing = a.copy()
    sing[:, 1] = 0
    sing[3] = sing[2]
    for x in (a, sing):
        one = dl.linalg.lu_factor_ex(dl.tensor(x))
        two = dl.linalg.lu_factor_ex(dl.tensor(np.stack([x, x])))
        np.testing.assert_array_equal(one.LU.numpy(), two.LU.numpy()[0])
        np.testing.assert_array_equal(one.pivots.numpy(), two.pivots.numpy()[0])
        want = torch.linalg.lu_factor_ex(torch.tensor(x))
        np.testing.assert_allclose(one.LU.numpy(), want.LU.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(one.pivots.numpy(), want.pivots.numpy())
        assert int(one.info) == int(want.info)
    nopiv = dl.linalg.lu_factor(dl.tensor(a + 10 * np.eye(*shape)), pivot=False)
    batch = dl.linalg.lu_factor(dl.tensor(np.stack([a + 10 * np.eye(*shape)] * 2)), pivot=False)
    np.testing.assert_array_equal(nopiv.LU.numpy(), batch.LU.numpy()[0])
    compare(lambda t: dl.linalg.lu_factor(t)[0], lambda t: torch.linalg.lu_factor(t)[0], a)
