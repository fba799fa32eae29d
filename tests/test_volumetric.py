"""3-D (volumetric) ops and layers against torch: conv3d, conv_transpose3d, 3-D pooling,
5-D interpolation, BatchNorm3d, InstanceNorm3d, Dropout3d and the 3-D padding layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn.functional as F
from darklib import nn
from darklib.ops.volumetric import DepthFold, DepthUnfold
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng


def _r(*shape: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ conv3d

CONV_CASES = [
    # input shape, weight shape, kwargs
    ((2, 3, 5, 6, 7), (4, 3, 3, 3, 3), {}),
    ((2, 4, 7, 6, 5), (6, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=(1, 0, 2), groups=2)),
    ((1, 2, 9, 8, 7), (3, 2, 2, 3, 2), dict(stride=(2, 3, 2), dilation=(2, 1, 3), padding=1)),
    ((2, 3, 5, 7, 6), (4, 3, 3, 2, 3), dict(padding="same", dilation=(2, 1, 1))),
    ((2, 3, 4, 5, 6), (2, 3, 2, 2, 2), dict(padding="valid")),
    ((3, 5, 6, 7), (4, 3, 1, 3, 2), dict(stride=2)),  # unbatched
    ((2, 6, 4, 4, 4), (6, 1, 3, 3, 3), dict(padding=1, groups=6)),  # depthwise
    ((2, 4, 3, 4, 5), (5, 4, 1, 1, 1), {}),  # pointwise
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # (torch's own note)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("xs,ws,kw", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv3d(device, xs, ws, kw, bias):
    arrays = [_r(*xs), _r(*ws, seed=1)] + ([_r(ws[0], seed=2)] if bias else [])
    compare(
        lambda *a: F.conv3d(*a, **kw),
        lambda *a: TF.conv3d(*a, **kw),
        *arrays,
        device=device,
        atol=1e-4,
    )


TCONV_CASES = [
    ((2, 3, 4, 5, 3), (3, 2, 3, 3, 3), {}),
    (
        (2, 4, 4, 5, 3),
        (4, 3, 3, 2, 2),
        dict(stride=(2, 1, 3), padding=(1, 0, 1), output_padding=(1, 0, 2), groups=2),
    ),
    ((1, 2, 3, 4, 5), (2, 3, 2, 3, 2), dict(stride=2, dilation=(2, 1, 3), output_padding=1)),
    ((2, 3, 4, 5), (2, 2, 2, 2, 3), dict(stride=(1, 2, 2), padding=1)),  # unbatched
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("xs,ws,kw", TCONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose3d(device, xs, ws, kw, bias):
    groups = kw.get("groups", 1)
    arrays = [_r(*xs), _r(*ws, seed=1)] + ([_r(ws[1] * groups, seed=2)] if bias else [])
    compare(
        lambda x, w, *b: F.conv_transpose3d(x, w, *(b or (None,)), **kw),
        lambda x, w, *b: TF.conv_transpose3d(x, w, *(b or (None,)), **kw),
        *arrays,
        device=device,
        atol=1e-4,
    )


def test_conv3d_float64_and_dtype():
    x, w = _r(2, 2, 3, 4, 3, dtype=np.float64), _r(3, 2, 2, 2, 2, seed=1, dtype=np.float64)
    compare(
        lambda x, w: F.conv3d(x, w, padding=1, stride=(2, 1, 1)),
        lambda x, w: TF.conv3d(x, w, padding=1, stride=(2, 1, 1)),
        x,
        w,
        atol=1e-10,
        rtol=1e-10,
    )


def test_conv3d_gradcheck():
    x, w, b = _r(1, 2, 4, 3, 3), _r(2, 1, 2, 2, 2, seed=1), _r(2, seed=2)
    gradcheck(
        lambda x, w, b: F.conv3d(x, w, b, stride=(2, 1, 1), padding=(1, 1, 0), groups=2), x, w, b
    )


def test_conv_transpose3d_gradcheck():
    x, w, b = _r(1, 2, 3, 2, 3), _r(2, 1, 3, 2, 2, seed=1), _r(2, seed=2)
    gradcheck(
        lambda x, w, b: F.conv_transpose3d(
            x, w, b, stride=(2, 1, 2), padding=(1, 0, 0), output_padding=(1, 0, 1), groups=2
        ),
        x,
        w,
        b,
    )


def test_depth_unfold_fold_gradcheck_and_adjoint():
    x = _r(1, 2, 5, 2, 2, dtype=np.float64)
    gradcheck(lambda t: DepthUnfold.apply(t, 3, 2, 1, 1, 3), x)
    cols = _r(1, 3, 2, 3, 2, 2, seed=1, dtype=np.float64)
    gradcheck(lambda t: DepthFold.apply(t, 3, 2, 1, 1, 5), cols)
    # <unfold(x), cols> == <x, fold(cols)>: each is the other's adjoint
    u = DepthUnfold.apply(dl.tensor(x), 3, 2, 1, 1, 3).numpy()
    f = DepthFold.apply(dl.tensor(cols), 3, 2, 1, 1, 5).numpy()
    assert math.isclose(float((u * cols).sum()), float((x * f).sum()), rel_tol=1e-12)


def _second_order(fn_dl, fn_t, *arrays, atol=1e-6):
    """d/d(inputs) of sum(grad(sum(f^2))^2), with create_graph, against torch."""
    dx = [dl.tensor(a, requires_grad=True) for a in arrays]
    tx = [torch.tensor(a, requires_grad=True) for a in arrays]
    for fn, xs, lib in ((fn_dl, dx, dl), (fn_t, tx, torch)):
        y = fn(*xs)
        gs = lib.autograd.grad((y * y).sum(), xs, create_graph=True)
        sum((g * g).sum() for g in gs).backward()
    for i, (d, t) in enumerate(zip(dx, tx)):
        assert_close(d.grad, t.grad, atol=atol, rtol=1e-6, what=f"second-order grad {i}")


def test_conv3d_double_backward():
    x, w = _r(2, 2, 4, 3, 4, dtype=np.float64), _r(4, 1, 2, 3, 2, seed=1, dtype=np.float64)
    kw = dict(stride=(2, 1, 1), padding=(1, 1, 0), dilation=(1, 1, 2), groups=2)
    _second_order(lambda x, w: F.conv3d(x, w, **kw), lambda x, w: TF.conv3d(x, w, **kw), x, w)


def test_conv_transpose3d_double_backward():
    x, w = _r(1, 2, 3, 3, 2, dtype=np.float64), _r(2, 3, 2, 2, 3, seed=1, dtype=np.float64)
    kw = dict(stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 0))
    _second_order(
        lambda x, w: F.conv_transpose3d(x, w, **kw),
        lambda x, w: TF.conv_transpose3d(x, w, **kw),
        x,
        w,
    )


def test_conv3d_errors():
    x, w = dl.randn(1, 4, 5, 5, 5), dl.randn(6, 2, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"4-D .* or 5-D"):
        F.conv3d(dl.randn(4, 5, 5), w)
    with pytest.raises(RuntimeError, match="expected input with 2 channels"):
        F.conv3d(x, w)
    with pytest.raises(RuntimeError, match="not divisible by groups=4"):
        F.conv3d(x, w, groups=4)
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        F.conv3d(x, dl.randn(6, 4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="larger than the padded input depth"):
        F.conv3d(dl.randn(1, 4, 2, 5, 5), dl.randn(6, 4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="stride must be >= 1"):
        F.conv3d(x, dl.randn(6, 4, 3, 3, 3), stride=0)
    with pytest.raises(RuntimeError, match="bias of shape"):
        F.conv3d(x, dl.randn(6, 4, 3, 3, 3), dl.randn(5))
    with pytest.raises(RuntimeError, match=r"output_padding .* must be smaller"):
        F.conv_transpose3d(x, dl.randn(4, 2, 3, 3, 3), stride=2, output_padding=2)
    with pytest.raises(TypeError, match="not a string"):
        F.conv_transpose3d(x, dl.randn(4, 2, 3, 3, 3), padding="same")
    # torch raises RuntimeError for the same inputs
    with pytest.raises(RuntimeError):
        TF.conv3d(torch.randn(1, 4, 5, 5, 5), torch.randn(6, 2, 3, 3, 3))


# ------------------------------------------------------------------ pooling

MAX_CASES = [
    (2, {}),
    ((3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 1, 1), dilation=(1, 2, 1), ceil_mode=True)),
    ((2, 3, 2), dict(stride=2, padding=(1, 1, 0), ceil_mode=True)),
    (3, dict(stride=(1, 2, 3), dilation=2)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k,kw", MAX_CASES)
@pytest.mark.parametrize("unbatched", [False, True])
def test_max_pool3d(device, k, kw, unbatched):
    x = _r(*((3, 7, 6, 9) if unbatched else (2, 3, 7, 6, 9)))
    compare(
        lambda x: F.max_pool3d(x, k, return_indices=True, **kw),
        lambda x: TF.max_pool3d(x, k, return_indices=True, **kw),
        x,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool3d_ties_pick_torchs_index(device):
    x = np.round(_r(2, 2, 5, 6, 4)).astype(np.float32)  # many equal values per window
    compare(
        lambda x: F.max_pool3d(x, (3, 2, 3), (1, 2, 1), 1, return_indices=True),
        lambda x: TF.max_pool3d(x, (3, 2, 3), (1, 2, 1), 1, return_indices=True),
        x,
        device=device,
    )


AVG_CASES = [
    (2, {}),
    ((3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 1, 1), ceil_mode=True)),
    ((3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 1, 1), ceil_mode=True, count_include_pad=False)),
    (3, dict(stride=2, padding=1, divisor_override=5)),
    ((1, 3, 2), dict(stride=(1, 2, 1), padding=(0, 1, 1), count_include_pad=False)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k,kw", AVG_CASES)
def test_avg_pool3d(device, k, kw):
    compare(
        lambda x: F.avg_pool3d(x, k, **kw),
        lambda x: TF.avg_pool3d(x, k, **kw),
        _r(2, 3, 7, 6, 9),
        device=device,
    )
    compare(  # unbatched
        lambda x: F.avg_pool3d(x, k, **kw),
        lambda x: TF.avg_pool3d(x, k, **kw),
        _r(3, 7, 6, 9),
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(4, 3, 5), 2, (None, 4, None), (7, 1, 9)])
def test_adaptive_pool3d(device, size):
    x = _r(2, 3, 7, 6, 9)
    compare(
        lambda x: F.adaptive_avg_pool3d(x, size),
        lambda x: TF.adaptive_avg_pool3d(x, size),
        x,
        device=device,
    )
    compare(
        lambda x: F.adaptive_max_pool3d(x, size, return_indices=True),
        lambda x: TF.adaptive_max_pool3d(x, size, return_indices=True),
        x,
        device=device,
    )
    compare(  # unbatched, without indices
        lambda x: F.adaptive_max_pool3d(x, size),
        lambda x: TF.adaptive_max_pool3d(x, size),
        x[0],
        device=device,
    )


def test_pool3d_gradcheck():
    x = _r(1, 2, 4, 3, 5, dtype=np.float64)
    gradcheck(lambda t: F.max_pool3d(t, (2, 2, 3), (1, 1, 2), (1, 0, 1), ceil_mode=True), x)
    gradcheck(lambda t: F.avg_pool3d(t, (3, 2, 2), 2, 1, ceil_mode=True), x)
    gradcheck(lambda t: F.adaptive_avg_pool3d(t, (3, 2, 4)), x)


def test_pool3d_double_backward():
    x = _r(1, 2, 5, 4, 5, dtype=np.float64)
    _second_order(
        lambda t: F.avg_pool3d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False) ** 3,
        lambda t: TF.avg_pool3d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False) ** 3,
        x,
    )
    _second_order(lambda t: F.max_pool3d(t, 2, 1) ** 3, lambda t: TF.max_pool3d(t, 2, 1) ** 3, x)


def test_pool3d_errors():
    x = dl.randn(1, 2, 4, 4, 4)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool3d(x, 2, padding=(1, 2, 1))
    with pytest.raises(RuntimeError, match="too small"):
        F.max_pool3d(x, (5, 1, 1))
    with pytest.raises(RuntimeError, match=r"4-D .* or 5-D"):
        F.avg_pool3d(dl.randn(2, 4, 4), 2)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool3d(x, 2, divisor_override=0)
    with pytest.raises(TypeError, match="tuple of 3"):
        F.adaptive_avg_pool3d(x, (2, 2))
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 3"):
        F.max_pool3d(x, (2, 2))
    with pytest.raises(ValueError, match="kernel_size"):
        nn.MaxPool3d((2, 2))
    with pytest.raises(RuntimeError):  # torch agrees
        TF.max_pool3d(torch.randn(1, 2, 4, 4, 4), 2, padding=(1, 2, 1))


# ------------------------------------------------------------------ interpolate

INTERP_CASES = [
    dict(size=(5, 9, 4)),
    dict(scale_factor=(1.7, 0.6, 2.0)),
    dict(scale_factor=2),
    dict(scale_factor=(1.3, 0.7, 2.5), recompute_scale_factor=True),
    dict(size=3),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "trilinear", "area"])
@pytest.mark.parametrize("kw", INTERP_CASES)
def test_interpolate_5d(device, mode, kw):
    aligns = [False, True] if mode == "trilinear" else [None]
    for align in aligns:
        for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
            compare(
                lambda x, align=align: F.interpolate(x, mode=mode, align_corners=align, **kw),
                lambda x, align=align: TF.interpolate(x, mode=mode, align_corners=align, **kw),
                _r(2, 3, 4, 6, 5, dtype=dtype),
                device=device,
                atol=tol,
                rtol=tol,
            )


def test_interpolate_nearest_same_size_with_scale():
    # A scale of 1.1 keeps every size here, yet torch's 3-D nearest kernel still maps
    # pixels by 1/1.1 in its forward; its backward, though, treats an unchanged size as
    # the identity (torch.autograd.gradcheck fails on it). darklib's gradient is the
    # adjoint of the forward that both compute: checked by finite differences.
    x = _r(1, 2, 3, 4, 5, dtype=np.float64)
    got = F.interpolate(dl.tensor(x), scale_factor=1.1)
    assert_close(got, TF.interpolate(torch.tensor(x), scale_factor=1.1), atol=0, rtol=0)
    gradcheck(lambda t: F.interpolate(t, scale_factor=1.1), x)


def test_interpolate_gradcheck():
    x = _r(1, 2, 3, 4, 2, dtype=np.float64)
    gradcheck(lambda t: F.interpolate(t, size=(5, 3, 4), mode="trilinear"), x)
    gradcheck(lambda t: F.interpolate(t, scale_factor=1.5, mode="nearest-exact"), x)


def test_trilinear_double_backward():
    x = _r(1, 2, 3, 4, 3, dtype=np.float64)
    for align in (False, True):
        _second_order(
            lambda t, a=align: F.interpolate(t, size=(5, 3, 6), mode="trilinear", align_corners=a),
            lambda t, a=align: TF.interpolate(t, size=(5, 3, 6), mode="trilinear", align_corners=a),
            x,
            atol=1e-10,
        )


def test_interpolate_5d_errors():
    x = dl.randn(1, 2, 3, 4, 5)
    with pytest.raises(NotImplementedError, match="'bilinear' is not available"):
        F.interpolate(x, scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, scale_factor=2, mode="nearest", align_corners=True)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="3 element"):
        F.interpolate(x, size=(2, 2), mode="trilinear")
    with pytest.raises(ValueError, match="anti-alias"):
        F.interpolate(x, scale_factor=0.5, mode="trilinear", antialias=True)
    with pytest.raises(NotImplementedError):  # torch: the same class
        TF.interpolate(torch.randn(1, 2, 3, 4, 5), scale_factor=2, mode="bilinear")


# ------------------------------------------------------------------ modules


def _copy_params(dmod, tmod):
    for name, p in tmod.named_parameters():
        getattr(dmod, name).array[...] = p.detach().numpy()


def _compare_module(dmod, tmod, x, atol=1e-5, device="cpu"):
    """Outputs and the gradients of the input and of every parameter."""
    dmod = dmod.to(device)
    xd = dl.tensor(x, requires_grad=True, device=device)
    xt = torch.tensor(x, requires_grad=True)
    yd, yt = dmod(xd), tmod(xt)
    assert_close(yd, yt, atol=atol, what="output")
    g = rng(5).standard_normal(tuple(yt.shape)).astype(x.dtype)
    (yd * dl.tensor(g, device=device)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    assert_close(xd.grad, xt.grad, atol=atol, what="input grad")
    for name, p in tmod.named_parameters():
        assert_close(getattr(dmod, name).grad, p.grad, atol=atol, what=f"grad of {name}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=(2, 3, 1), stride=(1, 2, 1), padding=(1, 1, 0), groups=2, bias=False),
        dict(kernel_size=3, padding="same", padding_mode="reflect"),
        dict(
            kernel_size=(3, 2, 3), padding=(1, 1, 2), padding_mode="replicate", dilation=(1, 2, 1)
        ),
        dict(kernel_size=3, stride=2, padding=1, padding_mode="circular"),
    ],
)
def test_conv3d_module(device, kw):
    torch.manual_seed(0)
    tmod = torch.nn.Conv3d(4, 6, **kw)
    dmod = nn.Conv3d(4, 6, **kw)
    assert list(dmod.state_dict()) == list(tmod.state_dict())
    assert tuple(dmod.weight.shape) == tuple(tmod.weight.shape)
    _copy_params(dmod, tmod)
    _compare_module(dmod, tmod, _r(2, 4, 5, 6, 7), atol=1e-4, device=device)
    _compare_module(dmod, tmod, _r(4, 5, 6, 7), atol=1e-4, device=device)  # unbatched
    assert repr(dmod) == repr(tmod)


def test_conv3d_module_init():
    dl.manual_seed(0)
    m = nn.Conv3d(4, 8, (3, 2, 5), groups=2)
    bound = 1 / math.sqrt(2 * 3 * 2 * 5)  # torch's kaiming_uniform(a=sqrt(5)): 1/sqrt(fan_in)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert w.shape == (8, 2, 3, 2, 5) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(b).max() <= bound
    t = nn.ConvTranspose3d(4, 6, 3, groups=2)
    assert tuple(t.weight.shape) == (4, 3, 3, 3, 3)
    assert np.abs(t.weight.detach().numpy()).max() <= 1 / math.sqrt(3 * 27)


@pytest.mark.parametrize("device", DEVICES)
def test_conv_transpose3d_module(device):
    kw = dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), groups=2, dilation=1)
    torch.manual_seed(0)
    tmod = torch.nn.ConvTranspose3d(4, 6, **kw)
    dmod = nn.ConvTranspose3d(4, 6, **kw)
    assert list(dmod.state_dict()) == list(tmod.state_dict())
    _copy_params(dmod, tmod)
    x = _r(2, 4, 3, 4, 3)
    _compare_module(dmod, tmod, x, atol=1e-4, device=device)
    xd = dl.tensor(x, device=device)
    out = dmod(xd, output_size=(6, 5, 6))
    assert_close(out, tmod(torch.tensor(x), output_size=(6, 5, 6)), atol=1e-4)
    with pytest.raises(ValueError, match="valid sizes range"):
        dmod(xd, output_size=(9, 5, 6))
    assert repr(dmod) == repr(tmod)


@pytest.mark.parametrize("device", DEVICES)
def test_pool_modules(device):
    x = _r(2, 3, 7, 6, 9)
    pairs = [
        (
            nn.MaxPool3d((3, 2, 3), (2, 1, 2), 1, ceil_mode=True),
            torch.nn.MaxPool3d((3, 2, 3), (2, 1, 2), 1, ceil_mode=True),
        ),
        (
            nn.AvgPool3d(3, 2, 1, count_include_pad=False),
            torch.nn.AvgPool3d(3, 2, 1, count_include_pad=False),
        ),
        (nn.AdaptiveAvgPool3d((3, None, 4)), torch.nn.AdaptiveAvgPool3d((3, None, 4))),
        (nn.AdaptiveMaxPool3d(2), torch.nn.AdaptiveMaxPool3d(2)),
    ]
    for dmod, tmod in pairs:
        _compare_module(dmod, tmod, x, device=device)
        _compare_module(dmod, tmod, x[0], device=device)
        assert repr(dmod) == repr(tmod)
    d, t = nn.MaxPool3d(2, return_indices=True), torch.nn.MaxPool3d(2, return_indices=True)
    assert_close(d(dl.tensor(x, device=device))[1], t(torch.tensor(x))[1], what="indices")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm3d(device, affine):
    tmod = torch.nn.BatchNorm3d(3, affine=affine, momentum=0.2)
    dmod = nn.BatchNorm3d(3, affine=affine, momentum=0.2).to(device)
    assert list(dmod.state_dict()) == list(tmod.state_dict())
    x = _r(2, 3, 4, 5, 3) * 2 + 1
    for _ in range(2):
        _compare_module(dmod, tmod, x, atol=1e-4, device=device)
    assert_close(dmod.running_mean, tmod.running_mean, what="running_mean")
    assert_close(dmod.running_var, tmod.running_var, what="running_var")
    dmod.eval(), tmod.eval()
    _compare_module(dmod, tmod, x, atol=1e-4, device=device)
    with pytest.raises(ValueError, match="5-D"):
        dmod(dl.randn(2, 3, 4, 5, device=device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", [{}, dict(affine=True, track_running_stats=True)])
def test_instancenorm3d(device, kw):
    tmod = torch.nn.InstanceNorm3d(3, **kw)
    dmod = nn.InstanceNorm3d(3, **kw)
    assert list(dmod.state_dict()) == list(tmod.state_dict())
    x = _r(2, 3, 4, 5, 3) * 3 - 1
    _compare_module(dmod, tmod, x, atol=1e-4, device=device)
    _compare_module(dmod, tmod, x[1], atol=1e-4, device=device)  # unbatched
    if kw:
        assert_close(dmod.running_var, tmod.running_var, what="running_var")
        dmod.eval(), tmod.eval()
        _compare_module(dmod, tmod, x, atol=1e-4, device=device)
    if kw:  # affine: a channel mismatch is an error; otherwise a warning, as torch
        with pytest.raises(ValueError, match="match num_features"):
            dmod(dl.randn(2, 4, 4, 5, 3, device=device))
    else:
        with pytest.warns(UserWarning, match="does not match num_features"):
            dmod(dl.randn(2, 4, 4, 5, 3, device=device))
    with pytest.raises(ValueError, match="4D or 5D input"):
        dmod(dl.randn(4, 5, 3, device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_dropout3d(device):
    dl.manual_seed(0)
    m = nn.Dropout3d(0.5)
    x = dl.ones(4, 8, 3, 2, 2, device=device, requires_grad=True)
    y = m(x)
    per_channel = y.detach().numpy(force=True).reshape(4, 8, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()  # whole channels dropped
    assert 0 < (per_channel[..., 0] == 0).sum() < 32
    y.sum().backward()
    assert_close(x.grad, per_channel.reshape(x.shape), what="grad")
    m.eval()
    assert np.array_equal(m(x).detach().numpy(force=True), x.detach().numpy(force=True))
    assert repr(m) == repr(torch.nn.Dropout3d(0.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout3d(1.5)


@pytest.mark.parametrize("device", DEVICES)
def test_pad3d_modules(device):
    x = _r(2, 3, 4, 5, 6)
    pad = (1, 2, 0, 3, 2, 1)
    pairs = [
        (nn.ZeroPad3d(pad), torch.nn.ZeroPad3d(pad)),
        (nn.ConstantPad3d(2, 1.5), torch.nn.ConstantPad3d(2, 1.5)),
        (nn.ReflectionPad3d(pad), torch.nn.ReflectionPad3d(pad)),
        (nn.ReplicationPad3d(pad), torch.nn.ReplicationPad3d(pad)),
        (nn.CircularPad3d(pad), torch.nn.CircularPad3d(pad)),
    ]
    for dmod, tmod in pairs:
        _compare_module(dmod, tmod, x, device=device)
        _compare_module(dmod, tmod, x[0], device=device)
    with pytest.raises(ValueError, match="6 ints"):
        nn.ZeroPad3d((1, 2, 3))
    with pytest.raises(RuntimeError, match="padding length should be less"):  # as torch
        nn.ZeroPad3d(1)(dl.randn(3, 4))
    with pytest.raises(RuntimeError, match="padding size should be less"):
        nn.ReflectionPad3d(4)(dl.randn(1, 1, 4, 5, 6))


@pytest.mark.parametrize("device", DEVICES)
def test_upsample_5d(device):
    x = _r(2, 3, 3, 4, 5)
    for kw in (
        dict(scale_factor=2, mode="trilinear"),
        dict(size=(4, 7, 3), mode="trilinear", align_corners=True),
        dict(scale_factor=(1.5, 2, 0.5), mode="nearest"),
    ):
        _compare_module(nn.Upsample(**kw), torch.nn.Upsample(**kw), x, device=device)


def test_max_pool3d_indices_of_a_window_in_the_padding_only():
    # no IndexError: -inf and torch's (out-of-range) index
    x = np.ones((1, 1, 1, 1, 1), np.float32)
    kw = dict(stride=5, padding=1, dilation=3, ceil_mode=True, return_indices=True)
    y, i = dl.nn.functional.max_pool3d(dl.tensor(x), 2, **kw)
    ty, ti = torch.nn.functional.max_pool3d(torch.tensor(x), 2, **kw)
    assert y.numpy().tolist() == ty.numpy().tolist() and i.numpy().tolist() == ti.numpy().tolist()


def test_adaptive_pools_and_area_interpolation_to_a_zero_size_give_empty_outputs():
    x = rng(0).standard_normal((1, 2, 4, 4, 4))
    for fn in (
        lambda m, t: m.nn.functional.adaptive_avg_pool3d(t, 0),
        lambda m, t: m.nn.functional.interpolate(t, scale_factor=0.2, mode="area"),
        lambda m, t: m.nn.functional.adaptive_max_pool3d(t, (2, 0, 2)),
        lambda m, t: m.nn.functional.adaptive_max_pool3d(t, (2, 0, 2), return_indices=True)[1],
        lambda m, t: m.nn.functional.adaptive_avg_pool3d(t[0], (1, 0, 3)),
    ):
        got = fn(dl, dl.tensor(x, requires_grad=True))
        want = fn(torch, torch.tensor(x, requires_grad=True))
        assert tuple(got.shape) == tuple(want.shape) and got.numel() == 0
        assert got.dtype.name == str(want.dtype).replace("torch.", "")
    t = dl.tensor(x, requires_grad=True)
    dl.nn.functional.adaptive_avg_pool3d(t, 0).sum().backward()  # (torch's backward refuses)
    assert (t.grad.numpy() == 0).all()
