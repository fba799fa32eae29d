"""1-D convolution and pooling (functional and modules) against torch: values, every gradient,
dtypes, unbatched inputs, finite differences and argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn.functional as F
from darklib import nn
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings(
        "ignore:Using padding=.same.:UserWarning"
    ),  # torch's, on even kernels
]


def _tol(dtype):
    return dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-10, rtol=1e-10)


# (input shape, weight shape (out, in/groups, k), kwargs)
CONV1D_CASES = [
    ((2, 3, 11), (4, 3, 3), dict(padding=1)),
    ((2, 3, 12), (4, 3, 4), dict(stride=3, padding=(2,))),
    ((2, 4, 13), (6, 2, 3), dict(padding=2, dilation=2, groups=2)),
    ((2, 4, 9), (4, 1, 5), dict(padding="same", groups=4)),  # depthwise, 'same'
    ((2, 3, 10), (5, 3, 4), dict(padding="same", dilation=3)),  # asymmetric 'same'
    ((2, 3, 10), (5, 3, 3), dict(padding="valid", stride=(2,))),
    ((3, 8), (5, 3, 1), {}),  # unbatched, pointwise
    ((1, 2, 30), (3, 2, 7), dict(stride=2, padding=5, dilation=2)),  # padding > d*(k-1)/2
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONV1D_CASES)))
def test_conv1d_matches_torch(device, dtype, case):
    xs, ws, kw = CONV1D_CASES[case]
    r = rng(case)
    arrays = [r.standard_normal(s).astype(dtype) for s in (xs, ws, (ws[0],))]
    if case % 2:  # half the cases without bias
        arrays = arrays[:2]
    compare(
        lambda *a: F.conv1d(*a, **kw),
        lambda *a: TF.conv1d(*a, **kw),
        *arrays,
        device=device,
        **_tol(dtype),
    )


# (input shape, weight shape (in, out/groups, k), kwargs)
TCONV1D_CASES = [
    ((2, 3, 7), (3, 4, 3), dict(padding=1)),
    ((2, 4, 6), (4, 3, 4), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((2, 4, 5), (4, 3, 3), dict(stride=3, dilation=2, output_padding=(1,))),
    ((3, 6), (3, 2, 5), dict(stride=2, padding=(2,))),  # unbatched
    ((2, 2, 6), (2, 3, 1), {}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(TCONV1D_CASES)))
def test_conv_transpose1d_matches_torch(device, dtype, case):
    xs, ws, kw = TCONV1D_CASES[case]
    r = rng(20 + case)
    cout = ws[1] * kw.get("groups", 1)
    arrays = [r.standard_normal(s).astype(dtype) for s in (xs, ws, (cout,))]
    compare(
        lambda *a: F.conv_transpose1d(*a, **kw),
        lambda *a: TF.conv_transpose1d(*a, **kw),
        *arrays,
        device=device,
        **_tol(dtype),
    )


def test_conv1d_and_transpose_gradcheck():
    r = rng(3)
    x, w, b = r.standard_normal((2, 4, 7)), r.standard_normal((6, 2, 3)), r.standard_normal(6)
    gradcheck(lambda *a: F.conv1d(*a, stride=2, padding=1, dilation=2, groups=2), x, w, b)
    wt = r.standard_normal((4, 3, 3))
    gradcheck(
        lambda *a: F.conv_transpose1d(*a, stride=2, padding=1, output_padding=1, groups=2),
        x,
        wt,
        r.standard_normal(6),
    )


# ------------------------------------------------------------------ pooling

POOL_CASES = [  # (input shape, kwargs)
    ((2, 3, 11), dict(kernel_size=3)),
    ((2, 3, 11), dict(kernel_size=(3,), stride=(2,), padding=(1,))),
    ((2, 3, 12), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    ((3, 10), dict(kernel_size=2, stride=1)),  # unbatched
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_max_pool1d_matches_torch(device, dtype, case):
    shape, kw = POOL_CASES[case]
    # distinct values: the argmax, and so the gradient, is unambiguous
    x = rng(case).permutation(np.prod(shape)).reshape(shape).astype(dtype)
    dil = dict(dilation=2) if case == 1 else {}
    compare(
        lambda a: F.max_pool1d(a, return_indices=True, **kw, **dil),
        lambda a: TF.max_pool1d(a, return_indices=True, **kw, **dil),
        x,
        device=device,
        **_tol(dtype),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_avg_pool1d_matches_torch(device, count_include_pad, case):
    shape, kw = POOL_CASES[case]
    x = rng(case).standard_normal(shape).astype(np.float32)
    compare(
        lambda a: F.avg_pool1d(a, count_include_pad=count_include_pad, **kw),
        lambda a: TF.avg_pool1d(a, count_include_pad=count_include_pad, **kw),
        x,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "shape,size", [((2, 3, 10), 4), ((2, 3, 12), (4,)), ((3, 7), 7), ((2, 1, 5), 8)]
)
def test_adaptive_pool1d_matches_torch(device, shape, size):
    x = rng(1).permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    compare(
        lambda a: F.adaptive_avg_pool1d(a, size),
        lambda a: TF.adaptive_avg_pool1d(a, size),
        x,
        device=device,
    )
    compare(
        lambda a: F.adaptive_max_pool1d(a, size, return_indices=True),
        lambda a: TF.adaptive_max_pool1d(a, size, return_indices=True),
        x,
        device=device,
    )


def test_pool1d_gradcheck_and_index_dtype():
    x = rng(4).permutation(2 * 3 * 9).reshape(2, 3, 9).astype(np.float64) / 7
    gradcheck(lambda a: F.max_pool1d(a, 3, 2, 1, dilation=1), x)
    gradcheck(lambda a: F.avg_pool1d(a, 4, 2, 2, ceil_mode=True, count_include_pad=False), x)
    gradcheck(lambda a: F.adaptive_avg_pool1d(a, 4), x)
    gradcheck(lambda a: F.adaptive_max_pool1d(a, 5), x)
    _, idx = F.max_pool1d(dl.tensor(x), 3, return_indices=True)
    assert idx.dtype == dl.int64 and idx.shape == (2, 3, 3)
    assert F.avg_pool1d(dl.tensor(x), 3).dtype == dl.float64


# ------------------------------------------------------------------ modules


def _copy_params(ours, theirs):
    for name, p in theirs.named_parameters():
        getattr(ours, name).data = dl.tensor(p.detach().numpy())


def _compare_module(ours, theirs, x, device, **call):
    """Outputs and the gradients of input and every parameter, with copied weights."""
    _copy_params(ours, theirs)
    ours.to(device)
    xd = dl.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yd, yt = ours(xd, **call), theirs(xt, **call)
    assert_close(yd, yt, atol=1e-5, what="output")
    g = rng(9).standard_normal(yt.shape).astype(np.float32)
    (yd * dl.tensor(g, device=device)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    assert_close(xd.grad, xt.grad, atol=1e-5, what="input grad")
    for name, p in theirs.named_parameters():
        assert_close(getattr(ours, name).grad, p.grad, atol=1e-4, what=f"{name} grad")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=4, stride=2, padding=2, padding_mode="reflect"),
        dict(kernel_size=3, padding="same", dilation=2, padding_mode="replicate"),
        dict(kernel_size=5, padding=(2,), padding_mode="circular", groups=2, bias=False),
        dict(kernel_size=3, padding="valid"),
    ],
)
def test_conv1d_module_matches_torch(device, kw):
    ours, theirs = nn.Conv1d(4, 6, **kw), torch.nn.Conv1d(4, 6, **kw)
    assert repr(ours) == repr(theirs)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = rng(5).standard_normal((2, 4, 10)).astype(np.float32)
    _compare_module(ours, theirs, x, device)
    _compare_module(ours, theirs, x[0], device)  # unbatched


def test_conv1d_module_init_bounds():
    layer = nn.Conv1d(4, 8, 5, groups=2)
    bound = 1 / np.sqrt(2 * 5)  # fan_in = in_channels / groups * kernel
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert w.shape == (8, 2, 5) and np.abs(w).max() <= bound and np.abs(w).max() > bound / 2
    assert np.abs(b).max() <= bound
    assert layer.weight.dtype == dl.float32
    assert nn.Conv1d(2, 2, 3, dtype=dl.float64).weight.dtype == dl.float64


@pytest.mark.parametrize("device", DEVICES)
def test_conv_transpose1d_module_matches_torch(device):
    kw = dict(kernel_size=3, stride=2, padding=1, groups=2)
    ours, theirs = nn.ConvTranspose1d(4, 6, **kw), torch.nn.ConvTranspose1d(4, 6, **kw)
    assert repr(ours) == repr(theirs)
    assert ours.weight.shape == (4, 3, 3)
    x = rng(6).standard_normal((2, 4, 7)).astype(np.float32)
    _compare_module(ours, theirs, x, device)
    for size in ([14], [2, 6, 14], [13]):  # output_size: length or full shape
        _compare_module(ours, theirs, x, device, output_size=size)
    _compare_module(ours, theirs, x[1], device, output_size=[14])  # unbatched
    with pytest.raises(ValueError, match="output size"):
        ours(dl.tensor(x), output_size=[15])


@pytest.mark.parametrize("device", DEVICES)
def test_pool1d_modules_match_torch(device):
    x = rng(7).permutation(2 * 3 * 13).reshape(2, 3, 13).astype(np.float32)
    pairs = [
        (
            nn.MaxPool1d(3, 2, 1, return_indices=True),
            torch.nn.MaxPool1d(3, 2, 1, return_indices=True),
        ),
        (nn.MaxPool1d(2, ceil_mode=True), torch.nn.MaxPool1d(2, ceil_mode=True)),
        (
            nn.AvgPool1d(4, 3, 2, count_include_pad=False),
            torch.nn.AvgPool1d(4, 3, 2, count_include_pad=False),
        ),
        (nn.AdaptiveAvgPool1d(5), torch.nn.AdaptiveAvgPool1d(5)),
        (
            nn.AdaptiveMaxPool1d(4, return_indices=True),
            torch.nn.AdaptiveMaxPool1d(4, return_indices=True),
        ),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        for arr in (x, x[0]):  # batched and unbatched
            compare(ours, theirs, arr, device=device)
    assert nn.AvgPool1d(3).kernel_size == torch.nn.AvgPool1d(3).kernel_size == (3,)


# ------------------------------------------------------------------ errors


def _both_raise(exc, ours, theirs, match=None):
    with pytest.raises(exc, match=match):
        ours()
    with pytest.raises(exc):
        theirs()


def test_conv1d_errors_like_torch():
    x, w = dl.randn(2, 3, 10), dl.randn(4, 3, 3)
    tx, tw = torch.randn(2, 3, 10), torch.randn(4, 3, 3)
    cases = [
        (dict(stride=2, padding="same"), "strided"),
        (dict(padding="full"), "padding"),
        (dict(padding=(1, 1)), "padding"),
    ]
    for kw, match in cases:
        _both_raise(
            RuntimeError,
            lambda kw=kw: F.conv1d(x, w, **kw),
            lambda kw=kw: TF.conv1d(tx, tw, **kw),
            match,
        )
    _both_raise(
        RuntimeError,
        lambda: F.conv1d(x.unsqueeze(0), w),
        lambda: TF.conv1d(tx.unsqueeze(0), tw),
        "2-D .* or 3-D",
    )
    _both_raise(
        RuntimeError,
        lambda: F.conv1d(x, dl.randn(4, 2, 3)),
        lambda: TF.conv1d(tx, torch.randn(4, 2, 3)),
        "2 channels",
    )
    _both_raise(
        RuntimeError,
        lambda: F.conv1d(x, dl.randn(4, 3, 20)),
        lambda: TF.conv1d(tx, torch.randn(4, 3, 20)),
        "larger than",
    )
    _both_raise(
        RuntimeError,
        lambda: F.conv1d(x, w, dl.randn(5)),
        lambda: TF.conv1d(tx, tw, torch.randn(5)),
        "bias",
    )
    with pytest.raises(RuntimeError, match="floating-point"):
        F.conv1d(dl.ones(2, 3, 10, dtype=dl.int64), w)
    _both_raise(
        TypeError,
        lambda: F.conv_transpose1d(x, dl.randn(3, 2, 3), padding="same"),
        lambda: TF.conv_transpose1d(tx, torch.randn(3, 2, 3), padding="same"),
    )
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose1d(x, dl.randn(3, 2, 3), stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="channels"):
        nn.Conv1d(2, 4, 3)(dl.randn(2, 3, 5))
    with pytest.raises(RuntimeError, match="3-D"):
        nn.Conv1d(2, 4, 3)(dl.randn(2, 2, 3, 5))
    _both_raise(
        ValueError,
        lambda: nn.ConvTranspose1d(2, 4, 3, padding_mode="reflect"),
        lambda: torch.nn.ConvTranspose1d(2, 4, 3, padding_mode="reflect"),
        "zeros",
    )
    _both_raise(
        ValueError,
        lambda: nn.Conv1d(2, 4, 3, stride=2, padding="same"),
        lambda: torch.nn.Conv1d(2, 4, 3, stride=2, padding="same"),
        "strided",
    )


def test_pool1d_errors_like_torch():
    x, tx = dl.randn(2, 3, 10), torch.randn(2, 3, 10)
    _both_raise(
        RuntimeError,
        lambda: F.max_pool1d(x, 3, padding=2),
        lambda: TF.max_pool1d(tx, 3, padding=2),
        "half",
    )
    _both_raise(
        RuntimeError,
        lambda: F.avg_pool1d(x, 3, padding=2),
        lambda: TF.avg_pool1d(tx, 3, padding=2),
        "half",
    )
    _both_raise(
        RuntimeError, lambda: F.max_pool1d(x, (3, 3)), lambda: TF.max_pool1d(tx, (3, 3)), "size 1"
    )
    _both_raise(
        RuntimeError,
        lambda: F.max_pool1d(x.unsqueeze(0), 2),
        lambda: TF.max_pool1d(tx.unsqueeze(0), 2),
        "2-D .* or 3-D",
    )
    _both_raise(
        RuntimeError,
        lambda: F.adaptive_avg_pool1d(x, (4, 2)),
        lambda: TF.adaptive_avg_pool1d(tx, (4, 2)),
        "one int",
    )
    _both_raise(
        TypeError, lambda: F.adaptive_avg_pool1d(x, None), lambda: TF.adaptive_avg_pool1d(tx, None)
    )
    _both_raise(
        RuntimeError, lambda: F.max_pool1d(x, 20), lambda: TF.max_pool1d(tx, 20), "too small"
    )
    with pytest.raises(TypeError):
        F.avg_pool1d(x, 3, divisor_override=2)  # torch's avg_pool1d has no divisor_override
    with pytest.raises(ValueError, match="kernel_size"):
        nn.AvgPool1d((2, 2))
    with pytest.raises(RuntimeError, match="3-D"):
        nn.MaxPool1d(2)(dl.randn(1, 2, 3, 4))
