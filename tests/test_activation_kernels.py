"""The one-op activations (float32 erf/erfc/gelu blocks, hardtanh, relu6, hardsigmoid,
hardswish, elu/selu/celu, logsigmoid, prelu, glu, threshold, shrinks) against torch:
accuracy, NaN, the kinks, in-place forms and second derivatives."""

import math

import numpy as np
import pytest
import torch

import darklib as dl
import darklib.nn.functional as F
from darklib.ops import elementwise as E
from tests.oracle import DEVICES

TF = torch.nn.functional
NAN, INF = float("nan"), float("inf")


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def _points(n: int) -> np.ndarray:
    r = np.random.default_rng(0)
    return np.concatenate(
        [
            r.standard_normal(n).astype(np.float32) * 2,
            np.linspace(-10.5, 10.5, n, dtype=np.float32),
            (np.exp(r.uniform(-103, 2.5, n)) * r.choice([-1, 1], n)).astype(np.float32),
            np.array([0.9, -0.9, np.nextafter(np.float32(0.9), 0), 3.92, 1e-45, -1e-45, 1e-38],
                     np.float32),
        ]
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
def test_float32_erf_and_erfc_within_a_few_ulps_tails_and_subnormals_included(device):
    x = _points(100_000)
    xd = x.astype(np.float64)
    erf = np.frompyfunc(math.erf, 1, 1)(xd).astype(np.float64)
    erfc = np.frompyfunc(math.erfc, 1, 1)(xd).astype(np.float64)
    got = dl.erf(dl.tensor(x, device=device)).cpu().numpy()
    assert _ulps(got, erf).max() <= 2.0  # 1.8 measured on 1e7 points
    assert np.array_equal(np.signbit(got), np.signbit(x))
    assert _ulps(dl.erfc(dl.tensor(x, device=device)).cpu().numpy(), erfc).max() <= 8.0
    special = np.array([INF, -INF, NAN, -0.0, 0.0], np.float32)
    for fd, ft in ((dl.erf, torch.erf), (dl.erfc, torch.erfc)):
        np.testing.assert_array_equal(
            fd(dl.tensor(special, device=device)).cpu().numpy(),
            ft(torch.tensor(special)).numpy(),
        )


@pytest.mark.parametrize("device", DEVICES)
def test_float32_gelu_is_accurate_in_the_negative_tail_and_at_the_edges(device):
    x = _points(50_000)
    xd = x.astype(np.float64)
    exact = 0.5 * xd * np.frompyfunc(math.erfc, 1, 1)(-xd / math.sqrt(2)).astype(np.float64)
    got = F.gelu(dl.tensor(x, device=device)).cpu().numpy()
    small = np.abs(x) <= 4
    assert _ulps(got[small], exact[small]).max() <= 40  # torch's cancels: 6e4 ulps
    tail = (x < -4) & (exact != 0)
    np.testing.assert_allclose(got[tail], exact[tail], rtol=2e-5)  # z^2 rounding, no cancelling
    edge = np.array([-0.0, 0.0, NAN, -INF, INF, -20.0], np.float32)
    np.testing.assert_array_equal(
        F.gelu(dl.tensor(edge, device=device)).cpu().numpy(),
        np.array([-0.0, 0.0, NAN, NAN, INF, -0.0], np.float32),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_float32_gelu_and_gradient_follow_torch(approximate, device):
    v = np.random.default_rng(1).standard_normal(40_000).astype(np.float32) * 3
    g = np.random.default_rng(2).standard_normal(40_000).astype(np.float32)
    x = dl.tensor(v, device=device, requires_grad=True)
    xt = torch.tensor(v, requires_grad=True)
    y, yt = F.gelu(x, approximate=approximate), TF.gelu(xt, approximate=approximate)
    np.testing.assert_allclose(y.detach().cpu().numpy(), yt.detach().numpy(), rtol=2e-6, atol=2e-6)
    y.backward(dl.tensor(g, device=device))
    yt.backward(torch.tensor(g))
    # (1 + tanh(..)) cancels where x << 0 in both: float32 rounding of ~1e-6 there
    np.testing.assert_allclose(x.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


KINKS = [NAN, INF, -INF, -0.0, 0.0, -3.0, 3.0, 6.0, -1.0, 1.0, -0.5, 0.5, 0.1, 2.9999998,
         -2.9999998, 5.9999995, 1e-45, -1e-45, 2.5, -7.0, 7.0]  # fmt: skip

CASES = {
    "hardtanh": lambda m, f, x: f.hardtanh(x),
    "hardtanh_-2_0.5": lambda m, f, x: f.hardtanh(x, -2.0, 0.5),
    "relu6": lambda m, f, x: f.relu6(x),
    "hardsigmoid": lambda m, f, x: f.hardsigmoid(x),
    "hardswish": lambda m, f, x: f.hardswish(x),
    "elu": lambda m, f, x: f.elu(x, 0.7),
    "selu": lambda m, f, x: f.selu(x),
    "celu": lambda m, f, x: f.celu(x, 1.5),
    "celu_neg": lambda m, f, x: f.celu(x, -0.5),
    "logsigmoid": lambda m, f, x: f.logsigmoid(x),
    "threshold": lambda m, f, x: f.threshold(x, 0.5, -2.0),
    "hardshrink": lambda m, f, x: f.hardshrink(x, 0.5),
    "softshrink": lambda m, f, x: f.softshrink(x, 0.5),
    "prelu": lambda m, f, x: f.prelu(
        x.reshape(7, 3), m.tensor([0.25, -1.5, 0.0], dtype=x.dtype, device=x.device)
    ),
    "glu": lambda m, f, x: f.glu(m.cat([x, x.flip(0)]).reshape(2, 21), 0),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_activation_at_nan_inf_and_kinks_follows_torch(name, dtype, device):
    """Values (and signs of zero) at NaN, inf and the kinks; gradients at the finite points
    (torch's gradients at NaN differ between its vectorised and scalar loops: the special
    values are pinned in test_fuzz_math.py)."""
    v = np.array(KINKS, dtype)
    x, xt = dl.tensor(v, device=device, requires_grad=True), torch.tensor(v, requires_grad=True)
    y, yt = CASES[name](dl, F, x), CASES[name](torch, TF, xt)
    a, b = y.detach().cpu().numpy(), yt.detach().numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
    if "shrink" not in name:  # (torch's shrinks: -0 or +0 by loop; pinned in test_fuzz_math)
        assert np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))
    finite = np.isfinite(v) & (np.isfinite(v[::-1]) if name == "glu" else True)
    g = np.linspace(-1, 2, y.numel()).reshape(tuple(y.shape)).astype(dtype)
    y.backward(dl.tensor(g, device=device))
    yt.backward(torch.tensor(g))
    tol = 2e-6 if dtype == "float32" else 1e-7 if name == "hardsigmoid" else 1e-12  # (1/6)
    np.testing.assert_allclose(x.grad.cpu().numpy()[finite], xt.grad.numpy()[finite], rtol=tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_activation_on_a_large_array_follows_torch(name, device):
    """Large enough for the threaded and blocked paths."""
    v = np.random.default_rng(3).standard_normal(2 * 3 * 7 * 4096).astype(np.float32) * 4
    v[::97] = 0.5  # on the shrink/threshold kinks
    v[::101] = 3.0
    x, xt = dl.tensor(v, device=device, requires_grad=True), torch.tensor(v, requires_grad=True)
    if name in ("prelu", "glu"):
        f = {
            "prelu": lambda m, f, x: f.prelu(
                x.reshape(7, 3, -1), m.tensor([0.25, -1.5, 0.0], device=x.device)
            ),
            "glu": lambda m, f, x: f.glu(x.reshape(6, 14, -1), 1),
        }[name]
    else:
        f = CASES[name]
    y, yt = f(dl, F, x), f(torch, TF, xt)
    np.testing.assert_allclose(y.detach().cpu().numpy(), yt.detach().numpy(), rtol=2e-6, atol=1e-7)
    g = np.random.default_rng(4).standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(dl.tensor(g, device=device))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.cpu().numpy(), xt.grad.numpy(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_prelu_weight_gradient_follows_torch(device):
    r = np.random.default_rng(5)
    v = r.standard_normal((4, 3, 5, 5)).astype(np.float32)
    v[0, 0, 0, 0] = NAN
    for wv in (np.array([0.25], np.float32), np.array([0.1, -0.2, 0.3], np.float32)):
        x = dl.tensor(v, device=device, requires_grad=True)
        xt = torch.tensor(v, requires_grad=True)
        w = dl.tensor(wv, device=device, requires_grad=True)
        wt = torch.tensor(wv, requires_grad=True)
        F.prelu(x, w).sum().backward()
        TF.prelu(xt, wt).sum().backward()
        np.testing.assert_allclose(w.grad.cpu().numpy(), wt.grad.numpy(), rtol=1e-5)
        np.testing.assert_allclose(x.grad.cpu().numpy(), xt.grad.numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "name", ["relu6", "hardtanh", "hardsigmoid", "hardswish", "elu", "selu", "celu", "threshold"]
)
def test_inplace_forms_follow_torch(name, device):
    fns = {
        "threshold": lambda f, x: f.threshold(x, 0.1, 5.0, inplace=True),
    }
    fn = fns.get(name, lambda f, x: getattr(f, name)(x, inplace=True))
    v = np.array(KINKS, np.float32)
    a, b = dl.tensor(v, device=device), torch.tensor(v)
    ra = fn(F, a)
    fn(TF, b)
    assert ra is a
    np.testing.assert_allclose(a.cpu().numpy(), b.numpy(), rtol=1e-6)
    # under autograd, on a non-leaf
    x, xt = dl.tensor(v, device=device, requires_grad=True), torch.tensor(v, requires_grad=True)
    y, yt = x * 1.0, xt * 1.0
    fn(F, y)
    fn(TF, yt)
    y.sum().backward()
    yt.sum().backward()
    # at finite points: torch's in-place backward reads the output (NaN: no gradient;
    # elu: alpha + y, which cancels where x << 0: 4e-5 off in float32)
    finite = np.isfinite(v)
    np.testing.assert_allclose(x.grad.cpu().numpy()[finite], xt.grad.numpy()[finite], rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_integer_hardtanh_and_threshold_stay_integers(device):
    v = np.array([-5, -1, 0, 1, 3, 9], np.int64)
    for fd, ft in (
        (lambda f, x: f.hardtanh(x, -2, 2), lambda f, x: f.hardtanh(x, -2, 2)),
        (lambda f, x: f.relu6(x), lambda f, x: f.relu6(x)),
        (lambda f, x: f.threshold(x, 0, 7), lambda f, x: f.threshold(x, 0, 7)),
    ):
        got, want = fd(F, dl.tensor(v, device=device)), ft(TF, torch.tensor(v))
        assert str(got.dtype).endswith("int64")
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["elu", "celu_neg", "logsigmoid", "glu", "prelu", "hardswish"])
def test_second_derivatives_of_smooth_ones_follow_torch(name, device):
    v = np.random.default_rng(6).standard_normal(21) * 2
    x, xt = dl.tensor(v, device=device, requires_grad=True), torch.tensor(v, requires_grad=True)
    f = CASES[name]
    fd = lambda m, f_, x: (
        f(m, f_, x)
        if name != "prelu"
        else f_.prelu(
            x.reshape(7, 3), m.tensor([0.25, -1.5, 0.0], dtype=m.float64, device=x.device)
        )
    )
    (g,) = dl.autograd.grad((fd(dl, F, x) ** 2).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad((fd(torch, TF, xt) ** 2).sum(), xt, create_graph=True)
    np.testing.assert_allclose(g.detach().cpu().numpy(), gt.detach().numpy(), rtol=1e-10)
    (gg,) = dl.autograd.grad((g * g).sum(), x)
    (ggt,) = torch.autograd.grad((gt * gt).sum(), xt)
    np.testing.assert_allclose(gg.cpu().numpy(), ggt.numpy(), rtol=1e-9, atol=1e-12)


# CPU only: _put is the NumPy helper (a bit blend on NumPy arrays) of the CPU kernels
def test_blend_helper_is_exact_for_every_value():
    r = np.random.default_rng(7)
    for dt in (np.float32, np.float64, np.int8, np.int64):
        out = r.standard_normal(1000).astype(dt)
        val = r.standard_normal(1000).astype(dt)
        if dt in (np.float32, np.float64):
            val[:5] = [NAN, -0.0, INF, -INF, 0.0]
        mask = r.random(1000) < 0.5
        want = np.where(mask, val, out)
        np.testing.assert_array_equal(E._put(out.copy(), mask, val).view(np.uint8),
                                      want.view(np.uint8))  # fmt: skip
        want0 = np.where(mask, dt(0), out)
        np.testing.assert_array_equal(E._put(out.copy(), mask, 0), want0)
