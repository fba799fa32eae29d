"""grid_sample's bicubic mode (4-D) and volumetric inputs (5-D: trilinear and nearest),
against torch: values and gradients for input and grid, every padding mode, both
align_corners, grids reaching outside [-1, 1], non-finite grid values, exact borders,
affine_grid's 5-D grids, and gradients of gradients."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn.functional as F
from tests.oracle import DEVICES, compare, gradcheck, rng
from tests.test_higher_order import check_gradgrad

_F64 = {"atol": 1e-10, "rtol": 1e-8}
_FN = {"torch": TF, "darklib": F}
_PADDINGS = ["zeros", "border", "reflection"]


def _x(shape, seed=0, dtype=np.float64):
    return rng(seed).standard_normal(shape).astype(dtype)


def _grid(shape, seed, reach=2.2, dtype=np.float64):
    return rng(seed).uniform(-reach, reach, shape).astype(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("padding", _PADDINGS)
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 3, 4, 5), (3, 6)),
        ((1, 2, 1, 3), (2, 2)),
        ((1, 1, 2, 1), (3, 2)),
        ((1, 1, 1, 1), (2, 1)),
    ],
)
def test_grid_sample_bicubic(device, padding, align, shapes):
    (n, c, h, w), (ho, wo) = shapes
    x, grid = _x((n, c, h, w), 1), _grid((n, ho, wo, 2), 2, reach=3.5)
    compare(
        lambda a, g: F.grid_sample(a, g, "bicubic", padding, align),
        lambda a, g: TF.grid_sample(a, g, "bicubic", padding, align),
        x,
        grid,
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", _PADDINGS)
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize(
    "shapes",
    [((2, 3, 3, 4, 5), (2, 3, 4)), ((1, 2, 1, 3, 2), (2, 1, 3)), ((1, 1, 1, 1, 1), (1, 2, 2))],
)
def test_grid_sample_5d(device, mode, padding, align, shapes):
    (n, c, d, h, w), (do, ho, wo) = shapes
    x, grid = _x((n, c, d, h, w), 3), _grid((n, do, ho, wo, 3), 4, reach=3.5)
    compare(
        lambda a, g: F.grid_sample(a, g, mode, padding, align),
        lambda a, g: TF.grid_sample(a, g, mode, padding, align),
        x,
        grid,
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "mode, x_shape, g_shape",
    [
        ("bicubic", (2, 3, 5, 4), (2, 4, 3, 2)),
        ("bilinear", (2, 2, 3, 4, 5), (2, 2, 3, 2, 3)),
        ("nearest", (1, 2, 3, 4, 5), (1, 2, 3, 2, 3)),
    ],
)
def test_grid_sample_float32(device, mode, x_shape, g_shape):
    x, grid = _x(x_shape, 5, np.float32), _grid(g_shape, 6, dtype=np.float32)
    for padding in _PADDINGS:
        compare(
            lambda a, g, p=padding: F.grid_sample(a, g, mode, p, False),
            lambda a, g, p=padding: TF.grid_sample(a, g, mode, p, False),
            x,
            grid,
            device=device,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_sample_nonfinite_and_far_grids(device, dtype):
    """NaN, inf and huge coordinates give torch's values: NaN (bicubic), zeros (the 3-D
    kernel's zero padding), the first or last pixel (its 2-D and 3-D kernels' clamps),
    and far finite ones fold (reflection) as torch's 3-D kernel does."""
    specials = [math.nan, math.inf, -math.inf, 1e30, -1e30, 3e9, -7.25, 9.5]
    for k, modes in ((2, ["bicubic", "bilinear", "nearest"]), (3, ["bilinear", "nearest"])):
        x = _x((1, 2, *(3, 4, 5)[3 - k :]), 7, dtype)
        grid = _grid((1, 2 * len(specials), k + 1, k), 8, reach=1.0, dtype=dtype)
        if k == 3:
            grid = grid.reshape(1, 2, len(specials), k + 1, k)
        flat = grid.reshape(-1, k)
        for i, v in enumerate(specials):
            flat[2 * i, i % k] = v  # one component
            flat[2 * i + 1, :] = v  # all of them
        for mode in modes:
            for padding in _PADDINGS:
                for align in (False, True):
                    want = TF.grid_sample(
                        torch.tensor(x), torch.tensor(grid), mode, padding, align
                    ).numpy()
                    got = F.grid_sample(
                        dl.tensor(x, device=device),
                        dl.tensor(grid, device=device),
                        mode,
                        padding,
                        align,
                    )
                    np.testing.assert_allclose(
                        got.cpu().numpy(),
                        want,
                        rtol=1e-5,
                        atol=1e-5,
                        err_msg=f"{k}-D {mode} {padding} {align}",
                    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("padding", ["border", "reflection"])
@pytest.mark.parametrize("k", [2, 3])
def test_grid_sample_grid_gradient_on_exact_borders(device, mode, padding, k):
    """An identity affine grid with align_corners=True puts points exactly on the borders,
    where torch's clamp has a zero gradient; reflection folds 7.25 onto a border too."""
    if mode == "bicubic" and k == 3:
        pytest.skip("bicubic is 4-D only")
    size = (1, 2, 3, 4, 5)[: k + 2]
    theta = np.zeros((1, k, k + 1))
    theta[0, :, :k] = np.eye(k)
    grid = TF.affine_grid(torch.tensor(theta), size, align_corners=True).numpy()
    grid.reshape(-1, k)[1] = 7.25
    compare(
        lambda a, g: F.grid_sample(a, g, mode, padding, True),
        lambda a, g: TF.grid_sample(a, g, mode, padding, True),
        _x(size, 9),
        grid,
        device=device,
        **_F64,
    )


def test_grid_sample_gradcheck():
    x2, g2 = _x((1, 2, 3, 4), 10), _grid((1, 2, 3, 2), 11, reach=1.6)
    for padding in _PADDINGS:
        gradcheck(lambda a, g, p=padding: F.grid_sample(a, g, "bicubic", p, False), x2, g2)
    gradcheck(lambda a, g: F.grid_sample(a, g, "bicubic", "reflection", True), x2, g2)
    x3, g3 = _x((1, 2, 2, 3, 4), 12), _grid((1, 2, 1, 2, 3), 13, reach=1.6)
    for padding, align in (("zeros", False), ("border", True), ("reflection", False)):
        fn = functools.partial(F.grid_sample, mode="bilinear", padding_mode=padding)
        gradcheck(functools.partial(fn, align_corners=align), x3, g3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("align", [False, True])
def test_affine_grid_5d_into_grid_sample(device, align):
    theta = _x((2, 3, 4), 14) * 0.6
    size = (2, 2, 3, 4, 2)
    compare(
        lambda a, t: F.grid_sample(a, F.affine_grid(t, size, align), "bilinear", "border", align),
        lambda a, t: TF.grid_sample(
            a, TF.affine_grid(t, size, align_corners=align), "bilinear", "border", align
        ),
        _x((2, 2, 3, 3, 4), 15),
        theta,
        device=device,
        **_F64,
    )


def test_grid_sample_gradients_of_gradients():
    # torch's grid_sample backward is differentiable in the input only (its grid is not
    # differentiated twice), so the grid enters as a constant here; central differences
    # check both
    g2 = _grid((1, 2, 2, 2), 16, reach=1.4)
    check_gradgrad(
        lambda m, a: _FN[m.__name__].grid_sample(
            a.reshape(1, 1, 3, 4) ** 2, m.tensor(g2), "bicubic", "reflection", False
        ),
        _x((3, 4), 17),
    )
    g3 = _grid((1, 1, 2, 2, 3), 18, reach=1.4)
    check_gradgrad(
        lambda m, a: _FN[m.__name__].grid_sample(
            a.reshape(1, 1, 2, 2, 3) ** 2, m.tensor(g3), "bilinear", "zeros", True
        ),
        _x((2, 6), 19),
    )
    check_gradgrad(  # the grid's second gradient, against central differences
        lambda m, a, g: _FN[m.__name__].grid_sample(
            a.reshape(1, 1, 3, 4), g.reshape(1, 2, 1, 2), "bicubic", "border", True
        ),
        _x((3, 4), 20),
        _grid((4,), 21, reach=0.9),
        with_torch=False,
    )


def test_grid_sample_extra_errors():
    x5, g5 = dl.randn(1, 2, 3, 4, 5), dl.rand(1, 2, 2, 2, 3)
    with pytest.raises(ValueError, match="bicubic' only supports 4-D inputs"):
        F.grid_sample(x5, g5, mode="bicubic")
    with pytest.raises(ValueError, match="last dimension to be 3"):
        F.grid_sample(x5, g5[..., :2])
    with pytest.raises(ValueError, match="4-D input and a 4-D grid, or a 5-D input"):
        F.grid_sample(x5, g5[0])
    with pytest.raises(ValueError, match="non-empty spatial dimensions"):
        F.grid_sample(x5[:, :, :0], g5)


@pytest.mark.parametrize("mode, dims", [("bilinear", 2), ("nearest", 3), ("bicubic", 2)])
def test_grid_sample_of_an_empty_batch(mode, dims):
    spatial = (3,) * dims
    x = dl.zeros(0, 2, *spatial, requires_grad=True)
    g = dl.zeros(0, *(2,) * dims, dims, requires_grad=True)
    y = dl.nn.functional.grid_sample(x, g, mode=mode, align_corners=False)
    assert tuple(y.shape) == (0, 2, *(2,) * dims)
    y.sum().backward()
    assert tuple(x.grad.shape) == tuple(x.shape) and tuple(g.grad.shape) == tuple(g.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_sample_taps_batched_forms_match_the_cpu_loops(dtype):
    """The GPU runs the fused taps of grid_sample as one call over the batch (a
    take_along_axis and an add.at); the CPU loops over images (take, bincount). Both forms
    on NumPy, with positions read by several taps and several points."""
    from darklib.ops import sampling as S

    r = rng(5)
    m, c, size, t, p = 3, 4, 7, 4, 11
    x = r.standard_normal((m, c, size)).astype(dtype)
    idx = r.integers(0, size, (t, m, p))
    idx[:, 0, :3] = 2  # repeated positions within a tap and across taps
    w = r.standard_normal((t, m, p)).astype(dtype)
    g = r.standard_normal((m, c, p)).astype(dtype)
    want_v = np.stack([x[i][:, idx[:, i]] for i in range(m)])  # (m, c, t, p)
    want_gx = np.zeros((m, c, size))
    for i in range(m):
        for k in range(t):
            np.add.at(want_gx[i].T, idx[k, i], (g[i] * w[k, i]).T)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for values in (S._tap_values, S._tap_values_batched):
        np.testing.assert_array_equal(values(x, idx), want_v)
    for scatter in (S._scatter_taps, S._scatter_taps_batched):
        gx = scatter(g, idx, w, size)
        assert gx.dtype == dtype
        np.testing.assert_allclose(gx, want_gx, rtol=tol, atol=tol)
