"""The partition paths of topk / kthvalue / median, cummax / cummin's running scan, and
cdist's GEMM form and pdist (darklib.ops.linalg): against torch and against a full stable
sort, with ties, NaN, infinities, zero distances and every compute_mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.ops.linalg import pdist
from darklib.ops.reduction import _kth_index, _sort_indices, _topk_indices
from tests.oracle import DEVICES, compare, gradcheck, rng

_F64 = {"atol": 1e-10, "rtol": 1e-8}


def _rows_with_ties_and_nans(seed: int, shape: tuple, kind: str) -> np.ndarray:
    r = rng(seed)
    if kind == "int":
        return r.integers(-2, 3, shape).astype(np.int64)
    a = r.standard_normal(shape).astype(np.float32)
    if kind == "ties":
        a = np.round(a * 2) / 2
    if kind == "special":
        u = r.random(shape)
        a[u < 0.1] = np.nan
        a[(u > 0.5) & (u < 0.55)] = np.inf
        a[(u > 0.7) & (u < 0.75)] = -np.inf
        a[(u > 0.8) & (u < 0.85)] = 0.0
    return a


# ------------------------------------------------------------ selection = stable sort


@pytest.mark.parametrize("kind", ["plain", "ties", "special", "int"])
@pytest.mark.parametrize("shape,axis", [((5, 300), 1), ((300, 4), 0), ((2, 3, 41), 2), ((9,), 0)])
def test_topk_and_kth_pick_what_the_stable_sort_picks(kind, shape, axis):
    # the partition paths (with their per-block prefilter for small k) must give exactly
    # the full stable sort's first k / k-th index: ties to the lowest index, NaN largest
    a = _rows_with_ties_and_nans(3, shape, kind)
    n = shape[axis]
    for largest in (True, False):
        full = _sort_indices(a, axis, largest, True)
        for k in sorted({1, 2, 5, n // 2, n} - {0}):
            want = np.take(full, np.arange(k), axis=axis)
            np.testing.assert_array_equal(_topk_indices(a, axis, k, largest), want)
    full = _sort_indices(a, axis, False, True)
    for q in sorted({0, 1, (n - 1) // 2, n - 1}):
        np.testing.assert_array_equal(_kth_index(a, axis, q), np.take(full, [q], axis=axis))


def test_topk_block_prefilter_with_tied_block_extremes():
    # every block's max is the same value: the prefilter must hand the rows to the full path
    a = np.zeros((3, 1024), np.float32)
    a[:, ::37] = 1.0
    a[1, 500] = np.nan
    for largest in (True, False):
        full = _sort_indices(a, 1, largest, True)
        for k in (1, 3, 8):
            np.testing.assert_array_equal(_topk_indices(a, 1, k, largest), full[:, :k])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("largest", [True, False])
def test_topk_like_torch_with_nan_and_inf(device, largest):
    a = rng(4).standard_normal((6, 700)).astype(np.float32)
    a[0, 90] = np.nan  # NaN counts as the largest value (torch orders tied NaNs its own way)
    a[1, 7] = np.inf
    a[2, 8] = -np.inf
    a[3, 9] = np.nan
    for k in (1, 5, 6):
        compare(
            lambda t, k=k: t.topk(k, largest=largest),
            lambda t, k=k: t.topk(k, largest=largest),
            a,
            device=device,
        )
        compare(
            lambda t, k=k: t.topk(k, 0, largest=largest),
            lambda t, k=k: t.topk(k, 0, largest=largest),
            a,
            device=device,
        )


@pytest.mark.parametrize("device", DEVICES)
def test_kthvalue_and_median_like_torch_with_ties_and_nan(device):
    a = np.round(rng(5).standard_normal((7, 64)) * 2).astype(np.float64)  # many ties
    a[3, 10] = np.nan  # median: NaN propagates (the first NaN); kthvalue: NaN is largest
    for keepdim in (False, True):
        compare(
            lambda t, kd=keepdim: t.median(1, kd),
            lambda t, kd=keepdim: t.median(1, kd),
            a,
            device=device,
        )
        compare(
            lambda t, kd=keepdim: t.median(0, kd),
            lambda t, kd=keepdim: t.median(0, kd),
            a,
            device=device,
        )
    # torch's kthvalue picks any of tied elements; without ties darklib's index is its index
    b = rng(6).standard_normal((7, 64))
    b[2, 5] = np.nan
    for k in (1, 20, 64):
        compare(lambda t, k=k: t.kthvalue(k, 1), lambda t, k=k: t.kthvalue(k, 1), b, device=device)
    compare(lambda t: t.kthvalue(3, 0, True), lambda t: t.kthvalue(3, 0, True), b, device=device)
    even = np.array([[4.0, 1.0, 3.0, 2.0], [2.0, 2.0, 0.0, 0.0]])  # the lower of the middle two
    compare(lambda t: t.median(1), lambda t: t.median(1), even, device=device)


def test_median_and_kthvalue_of_int_rows_with_ties_like_torch():
    a = rng(7).integers(0, 3, (5, 33))
    compare(lambda t: t.median(1), lambda t: t.median(1), a)
    compare(lambda t: t.median(0), lambda t: t.median(0), a)


# ------------------------------------------------------------------ cummax / cummin


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_ties_zeros_nan_like_torch(device, name):
    a = np.round(rng(8).standard_normal((4, 50)) * 2).astype(np.float32)
    a[0, :4] = [-0.0, 0.0, -0.0, 0.0]  # equal values: the later index, and its signed zero
    a[1, 20] = np.nan  # NaN takes over from there, with the latest NaN's index
    a[1, 30] = np.nan
    for dim in (0, 1, -1):
        compare(
            lambda t, d=dim: getattr(t, name)(d),
            lambda t, d=dim: getattr(t, name)(d),
            a,
            device=device,
        )
    got = getattr(dl.tensor(a[0, :4], device=device), name)(0).values.cpu().numpy()
    want = getattr(torch.tensor(a[0, :4]), name)(0).values.numpy()
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("device", DEVICES)
def test_cummax_double_backward_matches_torch(device):
    x0 = rng(9).standard_normal((3, 6))

    def hvp(lib, x):
        y = (x.cummax(1).values ** 3).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (h,) = lib.autograd.grad((g * g).sum(), x)
        return h

    d = hvp(dl, dl.tensor(x0, device=device, requires_grad=True))
    t = hvp(torch, torch.tensor(x0, requires_grad=True))
    np.testing.assert_allclose(d.cpu().numpy(), t.numpy(), rtol=1e-10)


# ------------------------------------------------------------------------ cdist

_MODES = [
    "use_mm_for_euclid_dist_if_necessary",
    "use_mm_for_euclid_dist",
    "donot_use_mm_for_euclid_dist",
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize(
    "s1,s2",
    [((5, 3), (4, 3)), ((30, 5), (40, 5)), ((2, 30, 5), (40, 5)), ((3, 1, 27, 4), (2, 26, 4))],
)
def test_cdist_compute_modes_like_torch(device, mode, s1, s2):
    a, b = rng(10).standard_normal(s1), rng(11).standard_normal(s2)
    compare(
        lambda x, y: dl.cdist(x, y, compute_mode=mode),
        lambda x, y: torch.cdist(x, y, compute_mode=mode),
        a,
        b,
        device=device,
        **_F64,
    )
    compare(
        lambda x, y: dl.cdist(x, y, 2.0, mode),
        lambda x, y: torch.cdist(x, y, 2.0, mode),
        a.astype(np.float32),
        b.astype(np.float32),
        device=device,
        atol=1e-4,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", _MODES)
def test_cdist_zero_distances_have_zero_gradient_like_torch(mode, device):
    # small integers: the GEMM form is exact too, so equal rows give exactly 0, where
    # torch's gradient (either form) is 0, not NaN
    a = rng(12).integers(-3, 4, (30, 4)).astype(np.float64)
    b = np.concatenate([a[:10], rng(13).integers(-3, 4, (25, 4))]).astype(np.float64)
    dx = dl.tensor(a, device=device, requires_grad=True)
    dy = dl.tensor(b, device=device, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    d, t = dl.cdist(dx, dy, compute_mode=mode), torch.cdist(tx, ty, compute_mode=mode)
    assert (d.detach().cpu().numpy() == 0).sum() >= 10
    np.testing.assert_allclose(d.detach().cpu().numpy(), t.detach().numpy(), rtol=1e-12)
    d.sum().backward()
    t.sum().backward()
    assert np.isfinite(dx.grad.cpu().numpy()).all()
    np.testing.assert_allclose(dx.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dy.grad.cpu().numpy(), ty.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_cdist_gemm_form_gradcheck_double_backward_and_errors(device):
    a, b = rng(14).standard_normal((27, 3)), rng(15).standard_normal((4, 3))
    if device == "cpu":  # finite differences; on cuda the first gradients are compared to
        # torch's in test_cdist_compute_modes_like_torch, the second ones below
        gradcheck(lambda x, y: dl.cdist(x, y), a, b)
        gradcheck(lambda x, y: dl.cdist(x, y, compute_mode="use_mm_for_euclid_dist"), a[:3], b)

    def hvp(lib, x, y):
        out = lib.cdist(x, y, compute_mode="use_mm_for_euclid_dist")
        gx, gy = lib.autograd.grad((out**3).sum(), (x, y), create_graph=True)
        return lib.autograd.grad((gx * gx).sum() + (gy**3).sum(), (x, y))

    d = hvp(
        dl,
        dl.tensor(a, device=device, requires_grad=True),
        dl.tensor(b, device=device, requires_grad=True),
    )
    t = hvp(torch, torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True))
    for u, v in zip(d, t):
        np.testing.assert_allclose(u.cpu().numpy(), v.numpy(), rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="bad is not a valid value for compute_mode"):
        dl.cdist(dl.randn(3, 2, device=device), dl.randn(3, 2, device=device), compute_mode="bad")
    empty = dl.cdist(dl.randn(0, 3, device=device), dl.randn(30, 3, device=device))
    assert tuple(empty.shape) == (0, 30)


# ------------------------------------------------------------------------ pdist


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 3), (2, 3), (50, 7), (40, 0)])
def test_pdist_like_torch(shape, device):
    x = rng(16).standard_normal(shape)
    compare(pdist, torch.nn.functional.pdist, x, device=device, **_F64)
    compare(pdist, torch.nn.functional.pdist, x.astype(np.float32), device=device, atol=1e-4)
    compare(
        lambda t: pdist(t, 1.0),
        lambda t: torch.nn.functional.pdist(t, 1.0),
        x,
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_pdist_near_and_equal_rows_keep_torch_precision_and_zero_gradient(device):
    # far from the origin, a GEMM would lose the small distances: they come from differences
    x = rng(17).standard_normal((40, 6)).astype(np.float32) + 1000.0
    x[5] = x[2]
    x[6] = x[2] + np.float32(1e-3)
    compare(pdist, torch.nn.functional.pdist, x, device=device, atol=1e-5, rtol=1e-5)
    d = pdist(dl.tensor(x, device=device))
    t = torch.nn.functional.pdist(torch.tensor(x))
    assert d.cpu().numpy()[np.flatnonzero(t.numpy() == 0)].tolist() == [0.0]


@pytest.mark.parametrize("device", DEVICES)
def test_pdist_gradcheck_and_double_backward(device):
    x0 = rng(18).standard_normal((6, 3))
    x0[4] = x0[1]  # a zero distance
    if device == "cpu":  # finite differences; on cuda the compares above check gradients
        gradcheck(lambda t: pdist(t) * (pdist(t) > 0), x0)

    def hvp(lib, f, x):
        (g,) = lib.autograd.grad((f(x) ** 3).sum(), x, create_graph=True)
        return lib.autograd.grad((g * g).sum(), x)[0]

    # (torch's pdist has no double backward: its composite form is the oracle, away from
    # zero distances, where torch's norm gives NaN and darklib's 0)
    x1 = rng(19).standard_normal((6, 3))
    i, j = np.triu_indices(6, 1)
    d = hvp(dl, pdist, dl.tensor(x1, device=device, requires_grad=True))
    t = hvp(torch, lambda x: (x[i] - x[j]).norm(dim=-1), torch.tensor(x1, requires_grad=True))
    np.testing.assert_allclose(d.cpu().numpy(), t.numpy(), rtol=1e-8, atol=1e-10)
