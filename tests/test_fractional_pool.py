"""Fractional max pooling against torch: with the same random samples, the same windows,
maxima, indices and gradients; and torch's errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn.functional as DF
from tests.oracle import DEVICES

CASES_2D = [
    ((2, 3, 9, 11), 2, (4, 5), np.float32),
    ((2, 3, 9, 11), 3, (5, 4), np.float32),
    ((1, 2, 7, 7), (2, 3), (3, 2), np.float32),
    ((2, 2, 13, 17), 3, (7, 9), np.float64),
    ((2, 3, 9, 11), 1, (9, 11), np.float32),
    ((3, 8, 8), 2, (4, 4), np.float32),  # unbatched: samples are (1, C, 2), as torch's
]


@pytest.mark.parametrize(("shape", "k", "out", "dtype"), CASES_2D)
@pytest.mark.parametrize("device", DEVICES)
def test_fractional_max_pool2d_matches_torch_given_its_samples(shape, k, out, dtype, device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    u = rng.random((shape[0] if len(shape) == 4 else 1, shape[-3], 2)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    dx = dl.tensor(x, device=device, requires_grad=True)
    yt, it = TF.fractional_max_pool2d(
        tx, k, output_size=out, return_indices=True, _random_samples=torch.tensor(u)
    )
    yd, idx = DF.fractional_max_pool2d(
        dx, k, output_size=out, return_indices=True, _random_samples=dl.tensor(u, device=device)
    )
    np.testing.assert_array_equal(yd.detach().cpu().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(idx.cpu().numpy(), it.numpy())
    g = rng.standard_normal(yt.shape).astype(dtype)
    yt.backward(torch.tensor(g))
    yd.backward(dl.tensor(g, device=device))
    np.testing.assert_allclose(dx.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_fractional_max_pool3d_matches_torch_given_its_samples(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 7, 8, 9)).astype(np.float32)
    u = rng.random((2, 2, 3)).astype(np.float32)
    tx, dx = torch.tensor(x, requires_grad=True), dl.tensor(x, requires_grad=True)
    yt, it = TF.fractional_max_pool3d(
        tx, (2, 3, 2), output_size=(4, 5, 3), return_indices=True, _random_samples=torch.tensor(u)
    )
    yd, idx = DF.fractional_max_pool3d_with_indices(
        dx, (2, 3, 2), output_size=(4, 5, 3), _random_samples=dl.tensor(u)
    )
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), it.numpy())
    yt.sum().backward()
    yd.sum().backward()
    np.testing.assert_array_equal(dx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_nan_windows_pick_the_last_nan_as_torch(device):
    x = np.arange(25.0, dtype=np.float32).reshape(1, 1, 5, 5)
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = np.nan
    u = np.array([[[0.3, 0.7]]], np.float32)
    yt, it = TF.fractional_max_pool2d(
        torch.tensor(x), 2, output_size=3, return_indices=True, _random_samples=torch.tensor(u)
    )
    y, idx = DF.fractional_max_pool2d(
        dl.tensor(x, device=device),
        2,
        output_size=3,
        return_indices=True,
        _random_samples=dl.tensor(u, device=device),
    )
    assert idx.device == y.device == dl.device(device)
    assert idx.cpu().numpy().tolist() == it.numpy().tolist()
    np.testing.assert_array_equal(y.cpu().numpy(), yt.numpy())


def test_layers_ratios_fresh_samples_and_errors():
    m = dl.nn.FractionalMaxPool2d(3, output_ratio=0.5)
    assert repr(m) == repr(torch.nn.FractionalMaxPool2d(3, output_ratio=0.5))
    x = dl.randn(2, 3, 10, 10)
    a, b = m(x), m(x)
    assert a.shape == (2, 3, 5, 5) and not np.array_equal(a.numpy(), b.numpy())  # new draws
    dl.manual_seed(3)
    a = m(x)
    dl.manual_seed(3)
    assert np.array_equal(a.numpy(), m(x).numpy())
    y, i = dl.nn.FractionalMaxPool3d(2, output_size=3, return_indices=True)(dl.randn(1, 2, 6, 6, 6))
    assert y.shape == i.shape == (1, 2, 3, 3, 3) and i.dtype == dl.int64
    with pytest.raises(ValueError, match="either an output size, or a pooling ratio"):
        dl.nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="only one of output_size and output_ratio"):
        dl.nn.FractionalMaxPool2d(2, output_size=2, output_ratio=0.5)
    with pytest.raises(ValueError, match=r"output_ratio must be between 0 and 1 \(got 1.5\)"):
        dl.nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(ValueError, match="pool height 3 too large relative to input height 5"):
        DF.fractional_max_pool2d(dl.randn(1, 1, 5, 5), 3, output_size=(4, 4))
    with pytest.raises(ValueError, match=r"_random_samples must have shape \(1, 1, 2\)"):
        DF.fractional_max_pool2d(dl.randn(1, 1, 5, 5), 2, 2, _random_samples=dl.rand(1, 1, 3))
