"""conv2d and conv_transpose2d against torch (values and every gradient), finite differences,
argument errors and the CPU kernels' scratch-buffer reuse."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import darklib as dl
from darklib.kernels.im2col import Geometry, col2im, im2col, offset_slices
from darklib.ops.conv import conv2d, conv_transpose2d
from tests.oracle import DEVICES, compare, gradcheck, rng

# (input shape, weight shape, kwargs)
CONV_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(padding=1)),
    ((2, 3, 7, 9), (4, 3, 3, 2), dict(stride=(2, 3), padding=(2, 1))),
    ((2, 4, 9, 8), (6, 2, 3, 3), dict(padding=2, dilation=2, groups=2)),
    ((2, 6, 5, 5), (6, 1, 3, 3), dict(padding=1, groups=6)),  # depthwise
    ((3, 4, 6, 5), (5, 4, 1, 1), {}),  # pointwise: a plain GEMM
    ((2, 4, 7, 7), (5, 4, 1, 1), dict(stride=2)),
    ((2, 3, 8, 8), (4, 3, 4, 2), dict(padding="same")),  # asymmetric 'same'
    ((2, 3, 8, 9), (4, 3, 3, 3), dict(padding="same", dilation=(2, 1))),
    ((2, 3, 8, 9), (4, 3, 3, 3), dict(padding="valid")),
    ((3, 6, 7), (5, 3, 3, 3), dict(padding=4)),  # unbatched, padding > d*(k-1)
    ((1, 2, 11, 13), (3, 2, 5, 3), dict(stride=(3, 2), padding=(2, 0), dilation=(1, 2))),
    ((2, 4, 20, 21), (3, 4, 3, 3), dict(padding=1)),  # >= 400 pixels: per-image GEMMs
    # strided with outputs wider than 8: columns from polyphase planes on the CPU
    ((2, 4, 20, 20), (6, 4, 4, 4), dict(stride=2, padding=1)),  # DCGAN-style downsampling
    ((2, 4, 21, 19), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),  # odd sizes
    ((2, 3, 23, 30), (5, 3, 3, 5), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1))),
    ((2, 3, 24, 25), (5, 3, 1, 1), dict(stride=2)),  # strided pointwise (ResNet shortcut)
    ((2, 3, 25, 27), (5, 3, 4, 4), dict(stride=2, dilation=2)),  # dilation = stride
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_matches_torch(device, dtype, bias, case):
    xs, ws, kw = CONV_CASES[case]
    r = rng(case)
    arrays = [r.standard_normal(xs).astype(dtype), r.standard_normal(ws).astype(dtype)]
    if bias:
        arrays.append(r.standard_normal(ws[0]).astype(dtype))
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-10, rtol=1e-10)
    compare(
        lambda *a: conv2d(*a, **kw), lambda *a: F.conv2d(*a, **kw), *arrays, device=device, **tol
    )


# (input shape, weight shape (in, out/groups, kh, kw), kwargs)
TCONV_CASES = [
    ((2, 3, 5, 6), (3, 4, 3, 3), dict(padding=1)),
    ((2, 4, 5, 6), (4, 3, 4, 3), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(padding=(1, 0), dilation=2, output_padding=1)),
    ((4, 5, 6), (4, 3, 3, 3), dict(stride=(3, 2), padding=(2, 1), dilation=(1, 2))),
    ((2, 3, 4, 4), (3, 2, 4, 4), dict(stride=2, padding=1)),  # DCGAN-style upsampling
    ((2, 3, 4, 5), (3, 2, 1, 1), {}),
    ((1, 2, 6, 6), (2, 2, 3, 3), dict(padding=3)),  # padding > d*(k-1): col2im path
    ((2, 6, 9, 10), (6, 4, 4, 4), dict(stride=2, padding=1)),  # DCGAN, polyphase col2im
    ((2, 6, 11, 9), (6, 2, 3, 3), dict(stride=2, padding=1, output_padding=1, groups=3)),
    ((2, 4, 10, 12), (4, 3, 5, 3), dict(stride=(3, 2), padding=(2, 1), dilation=(1, 2))),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(TCONV_CASES)))
def test_conv_transpose2d_matches_torch(device, dtype, case):
    xs, ws, kw = TCONV_CASES[case]
    r = rng(10 + case)
    cout = ws[1] * kw.get("groups", 1)
    arrays = [
        r.standard_normal(xs).astype(dtype),
        r.standard_normal(ws).astype(dtype),
        r.standard_normal(cout).astype(dtype),
    ]
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-10, rtol=1e-10)
    compare(
        lambda *a: conv_transpose2d(*a, **kw),
        lambda *a: F.conv_transpose2d(*a, **kw),
        *arrays,
        device=device,
        **tol,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_conv2d_only_some_inputs_need_grad(device):
    r = rng(3)
    x, w = r.standard_normal((2, 3, 6, 6)), r.standard_normal((4, 3, 3, 3))
    compare(
        lambda a, b: conv2d(a, b, padding=1),
        lambda a, b: F.conv2d(a, b, padding=1),
        x,
        w,
        grad=[False, True],
        device=device,
    )
    compare(
        lambda a, b: conv2d(a, b, stride=2),
        lambda a, b: F.conv2d(a, b, stride=2),
        x,
        w,
        grad=[True, False],
        device=device,
    )


def test_conv2d_gradcheck():
    r = rng(4)
    x, w, b = r.standard_normal((2, 4, 5, 4)), r.standard_normal((2, 2, 3, 2)), r.standard_normal(2)
    gradcheck(
        lambda a, c, d: conv2d(a, c, d, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
        x,
        w,
        b,
    )


def test_conv_transpose2d_gradcheck():
    r = rng(5)
    x, w, b = r.standard_normal((1, 2, 3, 3)), r.standard_normal((2, 3, 3, 2)), r.standard_normal(3)
    gradcheck(
        lambda a, c, d: conv_transpose2d(a, c, d, stride=2, padding=1, output_padding=1), x, w, b
    )


def test_conv2d_defaults_to_float32_and_refuses_mixed_dtypes_like_torch():
    x = dl.randn(1, 2, 5, 5)
    w = dl.randn(3, 2, 3, 3)
    y = conv2d(x, w)
    assert y.dtype == dl.float32 and tuple(y.shape) == (1, 3, 3, 3)
    with pytest.raises(RuntimeError, match="conv2d: input is float64 but weight is float32"):
        conv2d(x.double(), w)
    with pytest.raises(RuntimeError, match="bias is float64"):
        conv2d(x, w, dl.zeros(3, dtype=dl.float64))
    with pytest.raises(RuntimeError, match="conv_transpose2d: input is float64"):
        dl.nn.functional.conv_transpose2d(y.double(), w)


def test_conv2d_repeated_calls_do_not_share_outputs():
    # columns live in a reused scratch buffer: outputs and gradients must never alias it
    r = rng(6)
    x1 = dl.tensor(r.standard_normal((2, 3, 20, 20)).astype(np.float32), requires_grad=True)
    x2 = dl.tensor(r.standard_normal((2, 3, 20, 20)).astype(np.float32), requires_grad=True)
    w = dl.tensor(r.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    y1 = conv2d(x1, w, padding=1)
    keep = y1.detach().numpy().copy()
    y2 = conv2d(x2, w, stride=2)
    np.testing.assert_array_equal(y1.detach().numpy(), keep)
    (y1.sum() + y2.sum()).backward()
    ref = F.conv2d(torch.tensor(x1.detach().numpy()), torch.tensor(w.detach().numpy()), padding=1)
    np.testing.assert_allclose(keep, ref.numpy(), atol=1e-4)
    assert x1.grad is not None and x2.grad is not None
    assert not np.shares_memory(x1.grad.numpy(), x2.grad.numpy())


def test_im2col_col2im_are_adjoint():
    # <im2col(x), c> == <x, col2im(c)> for both column layouts
    r = rng(7)
    g = Geometry(3, 2, 2, 1, 1, 2, 1, 1, 7, 6, 4, 5)  # kh kw sh sw dh dw pt pl h w oh ow
    x = r.standard_normal((2, 3, 7, 6))
    for layout in ("nkp", "knp"):
        cols = im2col(x, g, layout).copy()
        c = r.standard_normal(cols.shape)
        np.testing.assert_allclose((cols * c).sum(), (x * col2im(c, 2, 3, g)).sum(), rtol=1e-12)
    assert len(offset_slices(g)) == 6


def test_strided_conv_input_grad_uses_polyphase_col2im(monkeypatch):
    # the CPU path for the input gradient of strided convolutions: col2im from columns in
    # the padded output layout (zeros in the scratch positions) into polyphase planes
    import darklib.ops.conv as conv_mod
    from darklib.kernels.phases import padded
    from darklib.ops.conv import _phase_col2im, _phased

    monkeypatch.setattr(conv_mod, "_NHWC_MAX_WIDTH", 8)
    g = Geometry(4, 4, 2, 2, 1, 1, 1, 1, 20, 21, 10, 10)
    p = _phased(np, g, 1, 3)
    assert p is not None and _phased(np, g._replace(sh=1, sw=1), 1, 3) is None
    c = rng(8).standard_normal((48, 2 * 100))  # (C*kh*kw, N*oh*ow), C=3, N=2
    cp = padded(c.reshape(48, 2, 10, 10).swapaxes(0, 1), g, p, np.empty((48, 2 * p.size)))
    got = np.empty((2, 3, 20, 21))
    _phase_col2im(cp, g, p, got)
    np.testing.assert_allclose(got, col2im(c, 2, 3, g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: conv2d(dl.randn(8, 1, 28, 28), dl.randn(64, 3, 3, 3)),
            r"conv2d: expected input with 3 channels \(weight \(64, 3, 3, 3\), groups=1\), "
            r"got \(8, 1, 28, 28\)",
        ),
        (
            lambda: conv2d(dl.randn(2, 3, 5, 7), dl.randn(4, 3, 9, 3)),
            r"conv2d: kernel \(9, 3\).*larger than the padded input \(5, 7\)",
        ),
        (
            lambda: conv2d(dl.randn(2, 3, 5, 5), dl.randn(4, 1, 3, 3), groups=3),
            r"conv2d: weight \(4, 1, 3, 3\) has 4 output channels, which is not divisible by "
            r"groups=3",
        ),
        (
            lambda: conv2d(dl.randn(2, 3, 5, 5), dl.randn(4, 3, 3, 3), dl.randn(5)),
            r"conv2d: bias of shape \(5,\) does not match 4 output channels",
        ),
        (
            lambda: conv2d(dl.randn(3, 5, 5, 5, 5), dl.randn(4, 3, 3, 3)),
            r"conv2d: expected a 3-D \(C, H, W\) or 4-D",
        ),
        (lambda: conv2d(dl.randn(1, 3, 5, 5), dl.randn(4, 3, 3)), r"conv2d: expected a 4-D weight"),
        (
            lambda: conv2d(dl.randn(1, 3, 5, 5), dl.randn(4, 3, 3, 3), stride=2, padding="same"),
            r"padding='same' is not supported for strided convolutions",
        ),
        (
            lambda: conv2d(dl.randn(1, 3, 5, 5), dl.randn(4, 3, 3, 3), padding="full"),
            r"conv2d: padding must be an int, a pair, 'same' or 'valid'",
        ),
        (
            lambda: conv2d(dl.randn(1, 3, 5, 5), dl.randn(4, 3, 3, 3), stride=0),
            r"conv2d: stride must be >= 1",
        ),
        (
            lambda: conv2d(dl.tensor(np.ones((1, 3, 5, 5), np.int64)), dl.randn(4, 3, 3, 3)),
            r"conv2d: expected a floating-point input, got .*int64",
        ),
        (
            lambda: conv_transpose2d(dl.randn(1, 3, 5, 5), dl.randn(3, 2, 3, 3), output_padding=1),
            r"conv_transpose2d: output_padding \(1, 1\) must be smaller than either stride",
        ),
        (
            lambda: conv_transpose2d(dl.randn(1, 4, 5, 5), dl.randn(3, 2, 3, 3)),
            r"conv_transpose2d: expected input with 3 channels",
        ),
    ],
)
def test_conv_errors(call, match):
    with pytest.raises((RuntimeError, ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("nhwc_width", "nkp_pixels"), [(0, 1 << 30), (100, 1 << 30), (0, 1)])
@pytest.mark.parametrize("case", [0, 1, 2, 4, 11, 12])
def test_conv2d_in_batch_chunks_matches_torch(device, case, nhwc_width, nkp_pixels, monkeypatch):
    # the CPU path runs the batch in cache-sized chunks: force several uneven chunks, in
    # all column layouts (channels-first, channels-last for narrow outputs, per-image for
    # large ones)
    import darklib.ops.conv as conv_mod

    monkeypatch.setattr(conv_mod, "_CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_mod, "_NHWC_MAX_WIDTH", nhwc_width)
    monkeypatch.setattr(conv_mod, "_NHWC_MIN_CHANNELS", 0)  # (the test inputs are narrow)
    monkeypatch.setattr(conv_mod, "_NKP_MIN_PIXELS", nkp_pixels)
    xs, ws, kw = CONV_CASES[case]
    r = rng(20 + case)
    xs = (3, *xs[-3:])
    arrays = [r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])]
    compare(
        lambda *a: conv2d(*a, **kw),
        lambda *a: F.conv2d(*a, **kw),
        *arrays,
        device=device,
        atol=1e-10,
        rtol=1e-10,
    )
    xs, ws, kw = TCONV_CASES[1]
    arrays = [r.standard_normal((3, *xs[1:])), r.standard_normal(ws), r.standard_normal(6)]
    compare(
        lambda *a: conv_transpose2d(*a, **kw),
        lambda *a: F.conv_transpose2d(*a, **kw),
        *arrays,
        device=device,
        atol=1e-10,
        rtol=1e-10,
    )
