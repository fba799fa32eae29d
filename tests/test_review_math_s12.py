"""Session 12 review of linear algebra, special functions and sorting/selection reductions:
regression tests for the differences from torch 2.13 found there."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import darklib as dl

R = np.random.default_rng(12)


def _both(arr: np.ndarray) -> tuple[dl.Tensor, torch.Tensor]:
    return dl.tensor(arr), torch.tensor(arr)


# ------------------------------------------------------------------ linalg: empty matrices


@pytest.mark.parametrize("shape", [(2, 0, 3), (2, 3, 0), (2, 0, 0)])
@pytest.mark.parametrize("p", [None, 2, -2, 1, -1, math.inf, -math.inf])
def test_cond_of_empty_matrices_is_zero(shape, p):
    got = dl.linalg.cond(dl.zeros(shape, dtype=dl.float64), p)
    want = torch.linalg.cond(torch.zeros(shape, dtype=torch.float64), p)
    assert got.shape == tuple(want.shape) == (2,)
    assert got.tolist() == want.tolist()


def test_cond_fro_nuc_of_empty_matrices():
    for p in ("fro", "nuc"):
        got = dl.linalg.cond(dl.zeros((2, 0, 0)), p)
        assert got.tolist() == torch.linalg.cond(torch.zeros((2, 0, 0)), p).tolist()
        with pytest.raises(RuntimeError, match=r"square matrices.*0 by 3"):
            dl.linalg.cond(dl.zeros((2, 0, 3)), p)


@pytest.mark.parametrize(
    ("shape", "p"),
    [((2, 3, 0), 1), ((2, 0, 0), 1), ((2, 0, 3), math.inf), ((2, 0, 0), math.inf)],
)
def test_matrix_norm_max_sums_of_empty_matrices_are_zero(shape, p):
    got = dl.linalg.matrix_norm(dl.zeros(shape), p, keepdim=True)
    want = torch.linalg.matrix_norm(torch.zeros(shape), p, keepdim=True)
    assert got.shape == tuple(want.shape)
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize(("shape", "p"), [((2, 0, 3), -2), ((2, 3, 0), -1), ((2, 0, 0), -math.inf)])
def test_matrix_norm_min_of_empty_matrices_raises_as_torch(shape, p):
    with pytest.raises(IndexError):
        torch.linalg.matrix_norm(torch.zeros(shape), p)
    with pytest.raises(IndexError, match=r"\[2, [03], [03]\]"):
        dl.linalg.matrix_norm(dl.zeros(shape), p)


# ------------------------------------------------------------------ linalg: singular slogdet


@pytest.mark.parametrize("fn", ["slogdet", "logdet"])
def test_logabsdet_gradient_of_singular_matrix_is_inf_not_an_error(fn):
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    x, t = (v.requires_grad_() for v in _both(a))
    if fn == "slogdet":
        dl.linalg.slogdet(x)[1].backward()
        torch.linalg.slogdet(t)[1].backward()
    else:
        dl.logdet(x).backward()
        torch.logdet(t).backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    assert np.isinf(x.grad.numpy()).all()


def test_slogdet_gradient_of_a_batch_with_one_singular_matrix():
    a = np.stack([np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[1.0, 2.0], [2.0, 4.0]])])
    x, t = (v.requires_grad_() for v in _both(a))
    dl.linalg.slogdet(x)[1].sum().backward()
    torch.linalg.slogdet(t)[1].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ quantile's q


def test_quantile_q_dtype_must_match_input():
    x = dl.tensor([1.0, 2.0, 3.0], dtype=dl.float64)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.quantile(torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([0.5]))
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.quantile(x, dl.tensor([0.5], dtype=dl.float32))
    assert dl.quantile(x, dl.tensor([0.5], dtype=dl.float64)).tolist() == [2.0]


@pytest.mark.parametrize("q", [math.nan, 1.5, -0.25])
def test_quantile_q_out_of_range_or_nan_raises(q):
    with pytest.raises(RuntimeError, match=r"range \[0, 1\]"):
        torch.quantile(torch.tensor([1.0, 2.0]), q)
    with pytest.raises(RuntimeError, match=r"range \[0, 1\]"):
        dl.quantile(dl.tensor([1.0, 2.0]), q)


def test_quantile_q_of_two_dims_raises():
    with pytest.raises(RuntimeError, match=r"1D tensor.*\[1, 2\]"):
        dl.quantile(dl.tensor([1.0, 2.0]), dl.tensor([[0.5, 0.25]]))


# ------------------------------------------------------------------ Bessel Y0, Y1, K0, K1

_XS = np.concatenate(
    [
        [1e-300, 1e-20, 1e-8, 1e-3, 0.1, 0.5, 1.0, 1.5, 1.9999, 2.0, 2.0001, 3.0, 7.5, 10.0],
        [24.999, 25.0, 25.001, 30.0, 100.0, 700.0, 750.0, 1e3, 1e5],
        R.uniform(0, 30, 60),
    ]
)
_SECOND_KIND = [
    "bessel_y0",
    "bessel_y1",
    "modified_bessel_k0",
    "modified_bessel_k1",
    "scaled_modified_bessel_k0",
    "scaled_modified_bessel_k1",
]


@pytest.mark.parametrize("name", _SECOND_KIND)
def test_second_kind_bessel_values_as_torch(name):
    got = getattr(dl.special, name)(dl.tensor(_XS)).numpy()
    want = getattr(torch.special, name)(torch.tensor(_XS)).numpy()
    if name.startswith("bessel_y"):
        # torch's Y0, Y1 (as its J0, J1) are good to a few 1e-6 of the amplitude between
        # 2 and 25, and lose x's phase above 1e5: darklib's accuracy is checked below
        assert _oscillating_error(got, want, _XS < 1e5) < 1e-5
    else:
        np.testing.assert_allclose(got, want, rtol=2e-14, atol=0)


def _oscillating_error(got, want, keep):
    """The largest |got - want| over max(|want|, the amplitude sqrt(2 / (pi x)))."""
    x = _XS[keep].astype(np.float64)
    amp = np.minimum(np.sqrt(2 / (np.pi * x)), 1.0)
    g, w = got[keep].astype(np.float64), want[keep].astype(np.float64)
    same = (g == w) | (np.isnan(g) & np.isnan(w))
    with np.errstate(invalid="ignore"):  # (-inf - -inf where both are -inf)
        err = np.abs(g - w) / np.maximum(np.abs(w), amp)
    return np.where(same, 0.0, err).max()


def test_second_kind_bessel_wronskians():
    """J1 Y0 - J0 Y1 = 2 / (pi x) and I0 K1 + I1 K0 = 1 / x, to float64 accuracy."""
    x = dl.tensor(_XS[_XS < 700])
    s = dl.special
    w = s.bessel_j1(x) * s.bessel_y0(x) - s.bessel_j0(x) * s.bessel_y1(x)
    np.testing.assert_allclose((w * x).numpy(), np.full(x.shape, 2 / np.pi), rtol=1e-13)
    k = s.i0e(x) * s.scaled_modified_bessel_k1(x) + s.i1e(x) * s.scaled_modified_bessel_k0(x)
    np.testing.assert_allclose((k * x).numpy(), np.ones(x.shape), rtol=1e-14)


@pytest.mark.parametrize("name", _SECOND_KIND)
def test_second_kind_bessel_float32_and_edges(name):
    x = _XS.astype(np.float32)
    got = getattr(dl.special, name)(dl.tensor(x))
    want = getattr(torch.special, name)(torch.tensor(x))
    assert got.dtype == dl.float32
    if name.startswith("bessel_y"):  # (torch's float32 Y: about 1e-4 of the amplitude)
        assert _oscillating_error(got.numpy(), want.numpy(), _XS < 1e5) < 3e-4
    else:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=3e-6, atol=1e-30)
    edges = [0.0, -0.0, -1.0, math.nan]
    got = getattr(dl.special, name)(dl.tensor(edges, dtype=dl.float64)).tolist()
    want = getattr(torch.special, name)(torch.tensor(edges, dtype=torch.float64)).tolist()
    np.testing.assert_array_equal(got, want)
    # ints compute in the default dtype; no gradient, as torch
    assert getattr(dl.special, name)(dl.tensor([1, 2])).dtype == dl.float32
    y = getattr(dl.special, name)(dl.tensor([1.0], requires_grad=True))
    assert not y.requires_grad


def test_second_kind_bessel_at_infinity():
    """K -> 0 as torch; Y -> 0 (torch: NaN), as darklib's J0/J1 at inf."""
    inf = dl.tensor([math.inf], dtype=dl.float64)
    for name in _SECOND_KIND:
        assert getattr(dl.special, name)(inf).tolist() == [0.0]
    assert torch.special.modified_bessel_k0(torch.tensor([math.inf])).tolist() == [0.0]
