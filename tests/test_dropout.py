"""Dropout: statistics, gradients equal to mask * scale, determinism, eval identity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import darklib as dl
import darklib.nn.functional as F
from darklib.ops import dropout as D
from tests.oracle import DEVICES


def _np(t):
    return np.asarray(t.detach().cpu().numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_values(device, p):
    x = dl.ones(200, 500, device=device)
    out = _np(D.dropout(x, p))
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 0.01, f"dropped fraction {dropped} for p={p}"
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.03  # the expectation is preserved


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [dl.float32, dl.float64])
def test_dropout_gradient_is_mask_times_scale(device, dtype):
    p = 0.3
    x = dl.randn(50, 40, dtype=dtype, device=device, requires_grad=True)
    out = D.dropout(x, p)
    assert out.dtype == dtype
    g = np.random.default_rng(0).standard_normal((50, 40))
    out.backward(dl.tensor(g, dtype=dtype, device=device))
    mask = (_np(out) != 0) / (1 - p)
    np.testing.assert_allclose(_np(x.grad), g * mask, rtol=1e-6)
    np.testing.assert_allclose(_np(out), _np(x) * mask, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_deterministic_under_manual_seed(device):
    x = dl.ones(64, 64, device=device)
    dl.manual_seed(123)
    a = _np(D.dropout(x, 0.5))
    dl.manual_seed(123)
    b = _np(D.dropout(x, 0.5))
    c = _np(D.dropout(x, 0.5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_identity_cases(device):
    x = dl.randn(4, 5, device=device, requires_grad=True)
    assert D.dropout(x, 0.5, training=False) is x
    assert D.dropout(x, 0.0) is x
    x4 = dl.randn(2, 3, 4, 4, device=device)
    assert D.dropout2d(x4, 0.5, training=False) is x4
    out = D.dropout(x, 1.0)
    assert not np.any(_np(out))
    out.backward(dl.ones(4, 5, device=device))
    assert not np.any(_np(x.grad))


def test_dropout_bad_arguments():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            D.dropout(dl.randn(3), p)
        with pytest.raises(ValueError, match="between 0 and 1"):
            D.dropout2d(dl.randn(2, 3, 4, 4), p)
    with pytest.raises(TypeError, match="floating-point"):
        D.dropout(dl.ones(3, dtype=dl.int64), 0.5)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_inplace(device):
    x = dl.randn(30, 30, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        D.dropout(x, 0.5, inplace=True)
    y = x * 2.0
    out = D.dropout(y, 0.5, inplace=True)
    assert out is y
    out.backward(dl.ones(30, 30, device=device))
    kept = _np(y) != 0
    np.testing.assert_allclose(_np(x.grad), kept * 4.0)  # d(2x)/dx * 1/(1-p)
    z = dl.randn(10, device=device)
    before = _np(z).copy()
    D.dropout(z, 0.5, inplace=True)
    np.testing.assert_allclose(_np(z), before * (_np(z) != 0) * 2.0)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout2d_drops_whole_channels(device):
    p = 0.4
    x = dl.tensor(
        np.random.default_rng(1).random((40, 50, 3, 3)) + 0.5, device=device, requires_grad=True
    )
    out = D.dropout2d(x, p)
    o = _np(out)
    zero = (o == 0).reshape(40, 50, 9)
    assert np.all(zero.all(-1) | ~zero.any(-1)), "a channel was partially dropped"
    assert abs(zero.all(-1).mean() - p) < 0.05
    out.backward(dl.ones(40, 50, 3, 3, device=device))
    np.testing.assert_allclose(_np(x.grad), (o != 0) / (1 - p))


@pytest.mark.parametrize("device", DEVICES)
def test_feature_dropout_1d_3d_and_unbatched(device):
    o = _np(D.dropout1d(dl.ones(8, 30, 5, device=device), 0.5))
    assert np.all((o == 0).all(-1) | (o != 0).all(-1))
    o = _np(D.dropout1d(dl.ones(60, 7, device=device), 0.5))  # (C, L): per channel
    assert np.all((o == 0).all(-1) | (o != 0).all(-1))
    o = _np(D.dropout3d(dl.ones(4, 20, 2, 2, 2, device=device), 0.5))
    assert np.all((o == 0).reshape(4, 20, -1).all(-1) | (o != 0).reshape(4, 20, -1).all(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        o = _np(D.dropout2d(dl.ones(4, 20, 6, device=device), 0.5))  # read as (N, C, L)
    assert np.all((o == 0).all(-1) | (o != 0).all(-1))
    with pytest.raises(RuntimeError, match="dropout1d"):
        D.dropout1d(dl.ones(2, 3, 4, 5), 0.5)


@pytest.mark.parametrize("device", DEVICES)
def test_alpha_dropout_keeps_mean_and_variance(device):
    x = dl.randn(400, 500, device=device, requires_grad=True)
    assert D.alpha_dropout(x, 0.2) is x  # PyTorch's default training=False
    out = D.alpha_dropout(x, 0.2, training=True)
    o = _np(out)
    assert abs(o.mean()) < 0.02 and abs(o.std() - 1) < 0.02
    out.backward(dl.ones(400, 500, device=device))
    g = _np(x.grad)
    kept = g != 0
    assert abs(1 - kept.mean() - 0.2) < 0.01
    # the gradient is the affine factor a on kept units
    a = ((1 - 0.2) * (1 + 0.2 * 1.7580993408473766**2)) ** -0.5
    np.testing.assert_allclose(g[kept], a, rtol=1e-5)
    fo = _np(D.feature_alpha_dropout(dl.randn(8, 30, 4, device=device), 0.5, training=True))
    assert fo.shape == (8, 30, 4)


@pytest.mark.parametrize("device", DEVICES)
def test_generator_replay_draws_the_forked_numbers_again_then_goes_on(device):
    """(activation checkpointing's recomputation relies on it, on both backends)"""
    dl.manual_seed(3)
    x = dl.ones(64, device=device)
    point = dl.random.default_generator.fork()
    first = F.dropout(x, 0.5).numpy()
    after = F.dropout(x, 0.5).numpy()
    with dl.random.default_generator.replay(point):
        again = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(first, after)
    # after the block the streams go on where they were, not from the forked point
    following = F.dropout(x, 0.5).numpy()
    assert not np.array_equal(following, first) and not np.array_equal(following, after)
