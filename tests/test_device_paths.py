"""Ops whose GPU code differs from the CPU's in more than the array module: each runs on
every device against torch on the CPU (the cuda cases where CuPy finds a GPU)."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import darklib as dl
import darklib.nn.functional as F
from darklib.ops.reduction import _log_scan
from tests.oracle import DEVICES, rng


def test_log_scan_matches_accumulate_with_nans():
    # the GPU's cummax/cummin scan, checked here on NumPy arrays
    r = rng(0)
    for _ in range(50):
        a = r.standard_normal((3, int(r.integers(1, 40)), 4))
        a[r.random(a.shape) < 0.05] = np.nan
        for axis in range(3):
            for fn in (np.maximum, np.minimum):
                want = fn.accumulate(a, axis=axis)
                assert np.array_equal(_log_scan(fn, a, axis), want, equal_nan=True)


@pytest.mark.parametrize("device", DEVICES)
def test_randperm_is_a_seeded_permutation(device):
    dl.manual_seed(3)
    p = dl.randperm(1000, device=device)
    dl.manual_seed(3)
    q = dl.randperm(1000, device=device)
    assert p.dtype == dl.int64 and p.device == dl.device(device)
    assert sorted(p.tolist()) == list(range(1000))
    assert p.tolist() == q.tolist() and p.tolist() != list(range(1000))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_with_ties_and_nans(device, name):
    a = np.array([[1.0, 3.0, 3.0, 0.0, np.nan, 5.0, -1.0], [2.0, 2.0, 1.0, 4.0, 4.0, 0.0, 9.0]])
    x = dl.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    v, i = getattr(x, name)(1)
    tv, ti = getattr(t, name)(1)
    np.testing.assert_array_equal(v.detach().cpu().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(i.cpu().numpy(), ti.numpy())
    v.sum().backward()
    tv.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), t.grad.numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8"])
def test_integer_scatter_add_index_add_index_put(device, dtype):
    tdt = getattr(torch, dtype)
    base = np.arange(12).reshape(3, 4) % 5
    src = np.arange(12).reshape(3, 4) * 7 % 11
    idx = np.array([[0, 0, 2, 1], [2, 2, 2, 0], [1, 0, 0, 0]])
    x = dl.tensor(base, dtype=getattr(dl, dtype), device=device)
    s = dl.tensor(src, dtype=getattr(dl, dtype), device=device)
    i = dl.tensor(idx, device=device)
    tx, ts, ti = torch.tensor(base, dtype=tdt), torch.tensor(src, dtype=tdt), torch.tensor(idx)
    got = x.scatter_add(0, i, s)
    np.testing.assert_array_equal(got.cpu().numpy(), tx.scatter_add(0, ti, ts).numpy())
    rows = dl.tensor([2, 0, 2], device=device)
    got = x.index_add(0, rows, s)
    np.testing.assert_array_equal(
        got.cpu().numpy(), tx.index_add(0, torch.tensor([2, 0, 2]), ts).numpy()
    )
    got = x.index_put((rows,), s[0], accumulate=True)
    want = tx.index_put((torch.tensor([2, 0, 2]),), ts[0], accumulate=True)
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_half_precision_resampling_forward_and_backward(device, mode):
    a = rng(1).standard_normal((2, 3, 5, 6)).astype(np.float16)
    g = rng(2).standard_normal((2, 3, 10, 12)).astype(np.float16)
    x = dl.tensor(a, device=device, requires_grad=True)
    kw = {} if mode == "nearest" else {"align_corners": False}
    y = F.interpolate(x, scale_factor=2, mode=mode, **kw)
    y.backward(dl.tensor(g, device=device))
    t = torch.tensor(a.astype(np.float32), requires_grad=True)
    ty = torch.nn.functional.interpolate(t, scale_factor=2, mode=mode, **kw)
    ty.backward(torch.tensor(g.astype(np.float32)))
    assert y.dtype == dl.float16 and x.grad.dtype == dl.float16
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_half_precision_pooling_accumulates_in_float(device):
    # a 7x7 average of values near 100 in float16: summing in half loses ~1% per window
    a = (100 + rng(3).standard_normal((1, 2, 14, 14))).astype(np.float16)
    x = dl.tensor(a, device=device, requires_grad=True)
    y = F.avg_pool2d(x, 7)
    want = a.astype(np.float64).reshape(1, 2, 2, 7, 2, 7).mean(axis=(3, 5))
    np.testing.assert_allclose(y.detach().cpu().numpy().astype(np.float64), want, rtol=1e-3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy().astype(np.float64), 1 / 49, rtol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_and_exact_gelu(device, dtype):
    a = np.concatenate([np.linspace(-6, 6, 101), [0.0, -0.0, 1e-8, np.inf, -np.inf]]).astype(dtype)
    got = dl.erf(dl.tensor(a, device=device)).cpu().numpy()
    want = np.array([math.erf(v) for v in a.astype(np.float64)])
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-30)
    y = F.gelu(dl.tensor(a[:101], device=device)).cpu().numpy()
    want = torch.nn.functional.gelu(torch.tensor(a[:101].astype(np.float64))).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7)  # torch's float32 gelu is 1e-4 off


@pytest.mark.parametrize("device", DEVICES)
def test_repr_of_a_large_tensor_shows_its_edges(device):
    a = np.arange(3 * 5000, dtype=np.float32).reshape(3, 5000)
    text = repr(dl.tensor(a, device=device))
    want = repr(torch.tensor(a))
    suffix = "" if device == "cpu" else ", device='cuda:0'"
    assert text == want[:-1] + suffix + ")"


@pytest.mark.parametrize("device", DEVICES)
def test_numpy_conversion_of_a_device_tensor(device):
    x = dl.ones(3, device=device)
    if device == "cpu":
        assert np.asarray(x).tolist() == [1.0, 1.0, 1.0]
    else:  # as torch: no silent copy to the host
        with pytest.raises(TypeError, match=r"cpu\(\)"):
            np.asarray(x)


def test_cpu_work_does_not_import_cupy():
    code = (
        "import sys, darklib as dl\n"
        "x = dl.randn(3, 4, requires_grad=True)\n"
        "y = (x @ x.T).relu().sum(); y.backward(); repr(x); x.device; x.is_cuda; x.to('cpu')\n"
        "print('cupy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(dl.cuda.device_count() < 2, reason="needs two GPUs")
def test_ops_run_on_their_tensors_gpu_and_refuse_mixed_gpus():
    x = dl.randn(4, 4, device="cuda:1", requires_grad=True)
    y = (x * 2).relu() @ x
    assert y.device == dl.device("cuda:1")
    y.sum().backward()
    assert x.grad.device == dl.device("cuda:1")
    with pytest.raises(RuntimeError, match="same device"):
        x + dl.ones(4, 4, device="cuda:0")


@pytest.mark.parametrize("device", DEVICES)
def test_multinomial_draws_on_the_device_as_torch(device):
    dl.manual_seed(0)
    w = dl.tensor([[0.1, 0.6, 0.3], [0.0, 2.0, 2.0]], device=device)
    draws = dl.multinomial(w, 4000, replacement=True)
    assert draws.device == dl.device(device) and draws.dtype == dl.int64
    freq = np.bincount(draws.cpu().numpy()[0], minlength=3) / 4000
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.03)
    assert set(draws.cpu().numpy()[1].tolist()) == {1, 2}
    pair = dl.multinomial(w, 2).cpu().numpy()
    assert sorted(pair[1].tolist()) == [1, 2] and len(set(pair[0].tolist())) == 2
    # as torch: categories of zero weight come last when the positive ones run out
    third = dl.multinomial(w, 3).cpu().numpy()[1]
    assert sorted(third[:2].tolist()) == [1, 2] and third[2] == 0
    with pytest.raises(RuntimeError, match="non-negative"):
        dl.multinomial(dl.tensor([1.0, -1.0], device=device), 1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name, kw",
    [
        ("relu", {}),
        ("leaky_relu", {"negative_slope": 0.2}),
        ("leaky_relu", {"negative_slope": 0.0}),
        ("leaky_relu", {"negative_slope": -1.5}),
        ("sigmoid", {}),
        ("tanh", {}),
    ],
)
def test_activation_values_and_gradients_at_the_edges(device, dtype, name, kw):
    # the GPU's fused kernels (one launch per forward and backward) against torch: signed
    # zeros, tiny and huge inputs, infinities and NaN, whose gradients pass or stop as torch's
    a = np.array([-np.inf, -100, -3, -1e-30, -0.0, 0.0, 1e-30, 2, 100, np.inf, np.nan], dtype)
    g = np.linspace(-2, 2, a.size).astype(dtype)
    x = dl.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y = getattr(F, name)(x, **kw)
    ty = getattr(torch.nn.functional, name)(t, **kw)
    y.backward(dl.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    tol = 1e-5 if dtype == np.float32 else 1e-12  # 1 - tanh^2 near 1: a few ulps of float32
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=tol)
    np.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=tol)


def test_cuda_memory_counters():
    if not dl.cuda.is_available():  # as torch without CUDA: nothing held, nothing to free
        assert dl.cuda.memory_allocated() == dl.cuda.memory_reserved() == 0
        dl.cuda.empty_cache()
        return
    dl.cuda.empty_cache()
    before = dl.cuda.memory_allocated()
    x = dl.zeros(1 << 20, device="cuda")  # 4 MiB
    held = dl.cuda.memory_allocated()
    assert held >= before + (4 << 20) and dl.cuda.memory_reserved() >= held
    del x
    assert dl.cuda.memory_allocated() <= held - (4 << 20)
    reserved = dl.cuda.memory_reserved()
    dl.cuda.empty_cache()
    assert dl.cuda.memory_reserved() <= reserved - (4 << 20)


def test_gpu_index_division_by_multiplier_is_exact():
    # the GPU kernels divide 32-bit flat indices by (umulhi(a, m) + a) >> s: exact for every
    # a < 2**31 (checked here in Python integers at the edges and at random)
    from darklib.kernels.cuda import divider

    r = np.random.default_rng(0)
    for d in [*range(1, 600), 1024, 4095, 4096, 4097, 2**30, 2**31 - 1, *r.integers(1, 2**31, 300)]:
        m, s = int(divider(int(d))[0]), int(divider(int(d))[1])
        a = np.concatenate([[0, 1, d - 1, d, d + 1, 2**31 - 1], r.integers(0, 2**31, 200)])
        for v in a[(a >= 0) & (a < 2**31)].tolist():
            assert (((v * m) >> 32) + v) >> s == v // d, (v, d)
