"""dl.testing.assert_close against torch.testing.assert_close: the same pairs pass or fail
alike, with the same message (torch's names swapped for darklib's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES

NAN, INF = float("nan"), float("inf")


def _cases(L):
    t = L.tensor
    return {
        "close": lambda: ((t([1.0, 2.0, 3.0]), t([1.0, 2.5, 3.0])), {}),
        "within_tolerance": lambda: ((t([1.0, 2.0]), t([1.0, 2.0 + 1e-6])), {}),
        "shape": lambda: ((L.ones(2), L.ones(3)), {}),
        "dtype": lambda: ((L.ones(2), L.ones(2, dtype=L.float64)), {}),
        "dtype_unchecked": lambda: (
            (L.ones(2), L.ones(2, dtype=L.float64)),
            {"check_dtype": False},
        ),
        "ints": lambda: ((t([1, 2]), t([1, 3])), {}),
        "bools": lambda: ((t([True]), t([False])), {}),
        "two_dims": lambda: ((L.zeros(2, 3), t([[0.0, 0, 0], [0, 1e-3, 2e-3]])), {}),
        "nan": lambda: ((t([NAN, 1.0]), t([NAN, 1.0])), {}),
        "nan_equal": lambda: ((t([NAN, 1.0]), t([NAN, 1.0])), {"equal_nan": True}),
        "inf": lambda: ((t([INF, -INF]), t([INF, -INF])), {}),
        "inf_sign": lambda: ((t([INF]), t([-INF])), {}),
        "zero_d": lambda: ((t(1.0), t(2.0)), {}),
        "float16": lambda: ((t([1.0], dtype=L.float16), t([1.001], dtype=L.float16)), {}),
        "tolerances": lambda: ((t([1.0]), t([1.5])), {"rtol": 0.0, "atol": 0.6}),
        "empty": lambda: ((L.ones(0), L.ones(0)), {}),
        "requires_grad": lambda: ((L.ones(2, requires_grad=True), L.ones(2)), {}),
        "stride": lambda: ((L.ones(2, 3).t(), L.ones(3, 2)), {"check_stride": True}),
        "sequence": lambda: (([L.ones(2), L.zeros(1)], [L.ones(2), L.ones(1)]), {}),
        "sequence_length": lambda: (([L.ones(2)], [L.ones(2), L.ones(1)]), {}),
        "mapping": lambda: (({"a": L.ones(2)}, {"a": L.zeros(2)}), {}),
        "mapping_keys": lambda: (({"a": L.ones(2)}, {"b": L.zeros(2)}), {}),
        "nested": lambda: (
            ({"a": [L.ones(1), (L.ones(1),)]}, {"a": [L.ones(1), (L.zeros(1),)]}),
            {},
        ),
        "message": lambda: ((L.ones(1), L.zeros(1)), {"msg": "custom"}),
        "message_callable": lambda: ((L.ones(1), L.zeros(1)), {"msg": lambda m: "<" + m + ">"}),
        "py_floats": lambda: ((1.0, 1.1), {}),
        "py_ints": lambda: ((1, 2), {}),
        "py_int_float": lambda: ((1, 1.0), {}),
        "py_int_float_unchecked": lambda: ((1, 1.0), {"check_dtype": False}),
        "numpy": lambda: ((np.ones(2), np.ones(2) * 1.1), {}),
        "none": lambda: ((None, None), {}),
        "tensor_and_float": lambda: ((t(1.0), 1.0), {}),
        "tensor_and_numpy": lambda: ((L.ones(2), np.ones(2, np.float32)), {}),
        "strings": lambda: (("a", "b"), {}),
        "rtol_alone": lambda: ((L.ones(1), L.ones(1)), {"rtol": 1.0}),
        "ints_within_atol": lambda: ((t([1, 2]), t([1, 3])), {"atol": 1, "rtol": 0}),
        "ints_beyond_atol": lambda: ((t([1, 2]), t([1, 4])), {"atol": 1, "rtol": 0}),
        "floats_exact": lambda: ((t([1.0]), t([1.5])), {"atol": 0, "rtol": 0}),
        "numpy_scalars": lambda: ((np.float32(1.0), np.float32(1.1)), {}),
        "numpy_and_float": lambda: ((np.float64(1.0), 1.0), {}),
        "numpy_ints": lambda: ((np.int64(3), np.int64(4)), {}),
        "huge_ints": lambda: ((2**70, 2**70 + 1), {}),
        "none_and_tensor": lambda: ((None, L.ones(1)), {}),
    }


def _outcome(lib, name):
    (actual, expected), kw = _cases(lib)[name]()
    check = dl.testing.assert_close if lib is dl else torch.testing.assert_close
    try:
        check(actual, expected, **kw)
    except (AssertionError, TypeError, ValueError) as e:
        text = str(e).replace("darklib.tensor.Tensor", "torch.Tensor")
        return type(e).__name__, text.replace("torch.", "darklib.")
    return "passes", ""


@pytest.mark.parametrize("name", list(_cases(torch)))
def test_assert_close_passes_and_fails_as_torch_does_with_its_message(name):
    assert _outcome(dl, name) == _outcome(torch, name)


def test_assert_close_names_the_device():
    if not dl.cuda.is_available():
        pytest.skip("no GPU")
    with pytest.raises(AssertionError, match="attribute 'device'"):
        dl.testing.assert_close(dl.ones(2), dl.ones(2, device="cuda"))
    dl.testing.assert_close(dl.ones(2), dl.ones(2, device="cuda"), check_device=False)


@pytest.mark.parametrize("seed", range(30))
def test_assert_close_agrees_with_torch_on_random_perturbations(seed):
    g = np.random.default_rng(seed)
    dtype = [np.float32, np.float64, np.float16, np.int64, np.int32][seed % 5]
    shape = tuple(g.integers(1, 5, size=g.integers(1, 4)))
    a = (g.standard_normal(shape) * 10).astype(dtype)
    b = a.copy()
    flat = b.reshape(-1)
    for i in g.choice(flat.size, size=g.integers(0, flat.size + 1), replace=False):
        if dtype in (np.int64, np.int32):
            flat[i] += g.integers(-2, 3)
        else:
            step = g.choice([1e-8, 1e-6, 1e-4, 1e-2, 1.0, np.inf, np.nan])
            flat[i] = flat[i] + step if np.isfinite(step) else step
    outcomes = []
    for lib, check in ((dl, dl.testing.assert_close), (torch, torch.testing.assert_close)):
        try:
            check(lib.from_numpy(a.copy()), lib.from_numpy(b.copy()), equal_nan=bool(seed % 2))
            outcomes.append("passes")
        except AssertionError as e:
            outcomes.append(str(e).replace("torch.", "darklib."))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    ("dtype", "lo", "hi"),
    [
        ("float32", -9, 9),
        ("float64", -9, 9),
        ("int64", -9, 9),
        ("int8", -9, 9),
        ("uint8", 0, 9),
        ("bool", 0, 1),
    ],
)
def test_make_tensor_default_ranges_as_torch(dtype, lo, hi):
    from darklib.testing import make_tensor

    dl.manual_seed(0)
    t = make_tensor(64, 64, dtype=getattr(dl, dtype), device="cpu")
    ref = torch.testing.make_tensor(64, 64, dtype=getattr(torch, dtype), device="cpu")
    assert t.shape == (64, 64) and str(t.dtype).split(".")[1] == str(ref.dtype).split(".")[1]
    v = t.numpy().astype(np.float64)
    assert lo <= v.min() and v.max() <= hi and len(np.unique(v)) > 1


def test_make_tensor_options():
    from darklib.testing import make_tensor

    t = make_tensor((3, 4), dtype=dl.float32, device="cpu", low=2.0, high=3.0, requires_grad=True)
    assert t.requires_grad and t.is_leaf and 2.0 <= t.min().item() and t.max().item() < 3.0
    nc = make_tensor(3, 4, dtype=dl.int64, device="cpu", noncontiguous=True)
    assert nc.shape == (3, 4) and not nc.is_contiguous()
    assert (
        make_tensor(50, dtype=dl.int64, device="cpu", low=0, high=2, exclude_zero=True) != 0
    ).all()
    clamped = make_tensor(100, dtype=dl.int8, device="cpu", low=-1000, high=1000)
    assert clamped.min().item() >= -128 and clamped.max().item() <= 127
    with pytest.raises(ValueError, match="`low` must be less than `high`, but got 3 >= 1"):
        make_tensor(2, dtype=dl.float32, device="cpu", low=3, high=1)
    with pytest.raises(ValueError, match="requires_grad=True"):
        make_tensor(2, dtype=dl.int64, device="cpu", requires_grad=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "int64", "uint8", "bool"])
def test_make_tensor_on_each_device(device, dtype):
    from darklib.testing import make_tensor

    t = make_tensor(4, 6, dtype=getattr(dl, dtype), device=device, noncontiguous=True)
    assert t.device == dl.device(device) and t.dtype == getattr(dl, dtype)
    assert t.shape == (4, 6) and not t.is_contiguous()
    z = make_tensor(200, dtype=getattr(dl, dtype), device=device, exclude_zero=True)
    assert z.device == dl.device(device) and bool((z != 0).all())
