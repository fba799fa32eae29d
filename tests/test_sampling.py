"""interpolate against torch for every mode, size/scale rule and align_corners setting,
plus finite differences and argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import darklib as dl
from darklib.ops.sampling import interpolate
from tests.oracle import DEVICES, compare, gradcheck, rng

RESIZES = [
    dict(scale_factor=2),  # the integer fast path
    dict(scale_factor=3),
    dict(scale_factor=0.5),
    dict(scale_factor=1.7),  # PyTorch samples with the given scale, not in/out
    dict(scale_factor=1.7, recompute_scale_factor=True),
    dict(scale_factor=(0.3, 2.5)),
    dict(size=(11, 4)),
    dict(size=(3, 9)),  # downsampling H, identity W
    dict(size=1),
]


def _tol(dtype):
    return dict(atol=1e-5, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("resize", range(len(RESIZES)))
def test_nearest_matches_torch(device, dtype, mode, resize):
    kw = RESIZES[resize]
    x = rng(resize).standard_normal((2, 3, 7, 9)).astype(dtype)
    compare(
        lambda t: interpolate(t, mode=mode, **kw),
        lambda t: F.interpolate(t, mode=mode, **kw),
        x,
        device=device,
        **_tol(dtype),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("align_corners", [None, False, True])
@pytest.mark.parametrize("resize", range(len(RESIZES)))
def test_bilinear_matches_torch(device, dtype, align_corners, resize):
    kw = RESIZES[resize]
    x = rng(resize).standard_normal((2, 3, 7, 9)).astype(dtype)
    compare(
        lambda t: interpolate(t, mode="bilinear", align_corners=align_corners, **kw),
        lambda t: F.interpolate(t, mode="bilinear", align_corners=align_corners, **kw),
        x,
        device=device,
        **_tol(dtype),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear"])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=0.6), dict(size=17)])
def test_1d_modes_match_torch(device, mode, kw):
    x = rng(1).standard_normal((2, 3, 10))
    ac = {} if mode != "linear" else dict(align_corners=False)
    compare(
        lambda t: interpolate(t, mode=mode, **ac, **kw),
        lambda t: F.interpolate(t, mode=mode, **ac, **kw),
        x,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(3, 4), (2, 3), (7, 9)])
def test_area_matches_torch(device, size):
    x = rng(2).standard_normal((2, 3, 7, 9))
    compare(
        lambda t: interpolate(t, size=size, mode="area"),
        lambda t: F.interpolate(t, size=size, mode="area"),
        x,
        device=device,
    )


@pytest.mark.parametrize("n_in", [3, 5, 7, 10, 13, 31])
@pytest.mark.parametrize("n_out", [1, 2, 4, 6, 11, 17, 64])
def test_index_tables_match_torch_on_many_sizes(n_in, n_out):
    # a ramp reveals exactly which source pixel (and weight) every output uses
    x = np.arange(n_in, dtype=np.float32).reshape(1, 1, 1, n_in) * np.ones((1, 1, 2, 1), np.float32)
    for mode, ac in [
        ("nearest", None),
        ("nearest-exact", None),
        ("bilinear", False),
        ("bilinear", True),
    ]:
        kw = dict(size=(2, n_out), mode=mode, align_corners=ac)
        compare(
            lambda t, kw=kw: interpolate(t, **kw),
            lambda t, kw=kw: F.interpolate(t, **kw),
            x,
            atol=1e-5,
            rtol=1e-5,
        )


def test_interpolate_gradcheck():
    x = rng(3).standard_normal((1, 2, 3, 4))
    gradcheck(lambda t: interpolate(t, scale_factor=(1.5, 0.7), mode="bilinear"), x)
    gradcheck(lambda t: interpolate(t, size=(5, 3), mode="bilinear", align_corners=True), x)
    gradcheck(lambda t: interpolate(t, size=(5, 7), mode="nearest"), x)
    gradcheck(lambda t: interpolate(t, scale_factor=2, mode="nearest"), x)


def test_integer_upsample_is_a_copy_not_a_view():
    x = dl.randn(1, 2, 3, 3)
    y = interpolate(x, scale_factor=2)
    assert y.numpy().flags.c_contiguous and not np.shares_memory(y.numpy(), x.numpy())
    np.testing.assert_array_equal(y.numpy()[0, 1, 4:6, 2:4], np.full((2, 2), x.numpy()[0, 1, 2, 1]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: interpolate(dl.randn(1, 2, 4, 4)), r"exactly one of size and scale_factor"),
        (
            lambda: interpolate(dl.randn(1, 2, 4, 4), size=3, scale_factor=2),
            r"exactly one of size and scale_factor",
        ),
        (
            lambda: interpolate(dl.randn(1, 2, 4, 4), size=3, mode="nearest", align_corners=True),
            r"align_corners option can only be set with the interpolating modes",
        ),
        (
            lambda: interpolate(dl.randn(1, 2, 4, 4), size=3, mode="trilinear"),
            r"mode 'trilinear' needs a 5-D input",
        ),
        (
            lambda: interpolate(dl.randn(1, 2, 4, 4), size=(3, 4, 5)),
            r"size \(3, 4, 5\) must have 2 element",
        ),
        (
            lambda: interpolate(dl.randn(1, 2, 4), size=3, mode="bilinear"),
            r"mode 'bilinear' needs a 4-D input",
        ),
        (
            lambda: interpolate(dl.randn(1, 2, 4, 4), scale_factor=-1.0),
            r"scale_factor must be positive",
        ),
        (lambda: interpolate(dl.randn(1, 2, 4, 4), scale_factor=0.1), r"must be non-empty"),
    ],
)
def test_interpolate_errors(call, match):
    with pytest.raises((RuntimeError, ValueError, NotImplementedError), match=match):
        call()


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_1d_picks_torchs_source_at_exact_boundaries_in_float64(mode):
    # torch's 1-D kernel takes float64 scales and products for float64 input (size 82 from
    # 2: output 41 reads input 1, where a float32 scale gives 0)
    for n_in in range(1, 24):
        x = np.arange(n_in, dtype=np.float64).reshape(1, 1, n_in)
        for n_out in range(1, 90):
            want = F.interpolate(torch.tensor(x), size=n_out, mode=mode)
            got = dl.nn.functional.interpolate(dl.tensor(x), size=n_out, mode=mode)
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"{n_in}->{n_out}")


@pytest.mark.parametrize(
    "mode, antialias, kw",
    [
        ("nearest", False, {"size": (9, 4)}),
        ("nearest-exact", False, {"scale_factor": 2.3}),
        ("bilinear", False, {"size": (21, 5)}),
        ("bilinear", False, {"size": (21, 5), "align_corners": True}),
        ("bilinear", True, {"size": (5, 6)}),
        ("bilinear", False, {"scale_factor": (1.05, 0.6)}),
        ("bicubic", False, {"size": (17, 29)}),
        ("bicubic", True, {"size": (4, 7)}),
        ("bicubic", False, {"scale_factor": 1.05}),
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_interpolate_uint8_images_as_torch(mode, antialias, kw, device):
    """uint8 images resize as torch's byte kernels: nearest exactly; (bi)linear and bicubic
    along W then H, rounded to bytes after each pass (its fixed-point weights round a few
    pixels the other way: at most 1 apart, on under 3% of them)."""
    x = rng(8).integers(0, 256, (2, 3, 11, 13)).astype(np.uint8)
    want = F.interpolate(torch.tensor(x), mode=mode, antialias=antialias, **kw).numpy()
    got = interpolate(dl.tensor(x, device=device), mode=mode, antialias=antialias, **kw)
    assert got.dtype == dl.uint8 and tuple(got.shape) == want.shape
    diff = np.abs(got.cpu().numpy().astype(int) - want.astype(int))
    assert diff.max() <= (0 if mode.startswith("nearest") else 1)
    assert (diff > 0).mean() < 0.03


def test_interpolate_refuses_integer_inputs_torch_refuses():
    x = dl.zeros(1, 1, 4, 4, dtype=dl.uint8)
    with pytest.raises(RuntimeError, match="floating-point input"):
        interpolate(x, size=2, mode="area")
    with pytest.raises(RuntimeError, match="floating-point input"):
        interpolate(dl.zeros(1, 1, 4, 4, dtype=dl.int64), size=2)
