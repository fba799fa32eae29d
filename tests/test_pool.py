"""Max, average and adaptive pooling against torch (values, indices, gradients), finite
differences and argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import darklib as dl
from darklib.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from tests.oracle import DEVICES, compare, gradcheck, rng

# kernel_size, stride, padding, dilation, ceil_mode
MAX_CASES = [
    (2, None, 0, 1, False),  # the common non-overlapping case
    (3, 2, 1, 1, False),  # ResNet stem
    (3, 2, 1, 1, True),
    (3, 1, 1, 1, False),
    ((2, 3), (1, 2), (1, 0), 1, True),
    (3, 2, 0, 2, False),
    (2, 3, 1, (2, 1), True),
    (3, 3, 0, 1, True),  # ceil_mode windows that hang over the edge
    (1, 2, 0, 1, False),  # a kernel smaller than the stride: unread phases
    ((3, 2), (1, 3), (1, 1), (1, 2), False),
]
SHAPES = [(2, 3, 7, 9), (3, 8, 8), (2, 2, 20, 18)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", range(len(MAX_CASES)))
def test_max_pool2d_matches_torch(device, dtype, shape, case):
    k, s, p, d, cm = MAX_CASES[case]
    x = rng(case).standard_normal(shape).astype(dtype)
    compare(
        lambda t: max_pool2d(t, k, s, p, d, cm, return_indices=True),
        lambda t: F.max_pool2d(t, k, s, p, d, cm, return_indices=True),
        x,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d_ties_and_infinities_follow_torch(device):
    # ties: the first maximum in the window wins; an all -inf window points at its first
    # in-range pixel
    x = np.zeros((1, 2, 4, 4), np.float32)
    x[0, 1] = -np.inf
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 5.0
    for args in [(2, 2, 0), (3, 1, 1), (2, 1, 1)]:
        compare(
            lambda t, a=args: max_pool2d(t, *a, return_indices=True),
            lambda t, a=args: F.max_pool2d(t, *a, return_indices=True),
            x,
            device=device,
        )


# kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
AVG_CASES = [
    (2, None, 0, False, True, None),
    (3, 2, 1, False, True, None),
    (3, 2, 1, True, False, None),
    (3, 1, 1, False, False, None),
    ((2, 3), (2, 1), (1, 1), True, True, None),
    (3, 2, 1, True, True, 5),
    (3, 3, 0, True, True, None),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", range(len(AVG_CASES)))
def test_avg_pool2d_matches_torch(device, dtype, shape, case):
    args = AVG_CASES[case]
    x = rng(case).standard_normal(shape).astype(dtype)
    compare(lambda t: avg_pool2d(t, *args), lambda t: F.avg_pool2d(t, *args), x, device=device)


ADAPTIVE_SIZES = [1, (2, 3), (3, 4), (5, None), (4, 7), (7, 9)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", ADAPTIVE_SIZES)
def test_adaptive_pools_match_torch(device, dtype, size):
    x = rng(1).standard_normal((2, 3, 7, 9)).astype(dtype)
    compare(
        lambda t: adaptive_avg_pool2d(t, size),
        lambda t: F.adaptive_avg_pool2d(t, size),
        x,
        device=device,
    )
    compare(
        lambda t: adaptive_max_pool2d(t, size, return_indices=True),
        lambda t: F.adaptive_max_pool2d(t, size, return_indices=True),
        x,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_adaptive_pools_unbatched(device):
    x = rng(2).standard_normal((3, 6, 5))
    compare(
        lambda t: adaptive_avg_pool2d(t, (4, 3)),
        lambda t: F.adaptive_avg_pool2d(t, (4, 3)),
        x,
        device=device,
    )
    compare(
        lambda t: adaptive_max_pool2d(t, 2), lambda t: F.adaptive_max_pool2d(t, 2), x, device=device
    )


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d_nan_follows_torch(device):
    # a NaN wins its windows (the last NaN of a window, in PyTorch's scan order)
    x = rng(4).standard_normal((2, 3, 10, 12)).astype(np.float32)
    x[0, 0, 2, 3] = x[0, 0, 3, 3] = x[1, 2, 0, 0] = x[1, 1, 9, 11] = np.nan
    for args in [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((10, 12), 1, 0)]:  # the last: global
        compare(
            lambda t, a=args: max_pool2d(t, *a, return_indices=True),
            lambda t, a=args: F.max_pool2d(t, *a, return_indices=True),
            x,
            device=device,
        )


@pytest.mark.parametrize("device", DEVICES)
def test_pools_on_non_contiguous_input(device):
    x = rng(5).standard_normal((2, 12, 10, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    for k, s, p in [(2, 2, 0), (3, 2, 1)]:
        compare(
            lambda t, a=(k, s, p): max_pool2d(t, *a),
            lambda t, a=(k, s, p): F.max_pool2d(t, *a),
            x,
            device=device,
        )
        compare(
            lambda t, a=(k, s, p): avg_pool2d(t, *a),
            lambda t, a=(k, s, p): F.avg_pool2d(t, *a),
            x,
            device=device,
        )


def test_pool_gradcheck():
    x = rng(3).standard_normal((1, 2, 5, 6))
    gradcheck(lambda t: avg_pool2d(t, 3, 2, 1, True, False), x)
    gradcheck(lambda t: max_pool2d(t, 3, 2, 1, ceil_mode=True), x)
    gradcheck(lambda t: adaptive_avg_pool2d(t, (3, 4)), x)
    gradcheck(lambda t: adaptive_max_pool2d(t, (4, 4)), x)


def test_max_pool2d_without_grad_skips_indices():
    x = dl.randn(2, 3, 8, 8)
    y = max_pool2d(x, 2)
    assert y.grad_fn is None and tuple(y.shape) == (2, 3, 4, 4)
    ref = F.max_pool2d(torch.tensor(x.numpy()), 2).numpy()
    np.testing.assert_array_equal(y.numpy(), ref)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: max_pool2d(dl.randn(1, 3, 5, 7), 3, padding=2),
            r"max_pool2d: pad should be at most half of kernel size",
        ),
        (
            lambda: max_pool2d(dl.randn(1, 3, 5, 7), 9),
            r"max_pool2d: input of shape \(1, 3, 5, 7\) is too small for kernel_size=\(9, 9\)",
        ),
        (
            lambda: avg_pool2d(dl.randn(1, 3, 5, 7), 2, padding=2),
            r"avg_pool2d: pad should be at most half",
        ),
        (
            lambda: avg_pool2d(dl.randn(1, 3, 5, 7), 2, divisor_override=0),
            r"avg_pool2d: divisor_override must be a non-zero int",
        ),
        (lambda: max_pool2d(dl.randn(5, 7), 2), r"max_pool2d: expected a 3-D \(C, H, W\) or 4-D"),
        (
            lambda: max_pool2d(dl.randn(1, 1, 4, 4), (2, 2, 2)),
            r"max_pool2d: kernel_size must be an int or a pair",
        ),
        (
            lambda: adaptive_avg_pool2d(dl.randn(1, 2, 4, 4), (-1, 2)),
            r"adaptive_avg_pool2d: output_size must be >= 0",
        ),
        (
            lambda: adaptive_max_pool2d(dl.randn(1, 2, 4, 4), "big"),
            r"adaptive_max_pool2d: output_size must be an int or a pair",
        ),
    ],
)
def test_pool_errors(call, match):
    with pytest.raises((RuntimeError, ValueError, TypeError), match=match):
        call()
