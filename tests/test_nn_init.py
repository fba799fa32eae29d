"""nn.init: gains, fans and distributions against PyTorch's definitions; layer defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import nn
from darklib.nn import init


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize(
    "name,param",
    [
        ("linear", None),
        ("conv2d", None),
        ("conv_transpose2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param)
    )


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swishy")


@pytest.mark.parametrize("shape", [(5, 3), (8, 4, 3, 3), (4, 8, 2, 5), (6, 2, 7)])
def test_fan_in_fan_out_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init._calculate_fan_in_and_fan_out(dl.empty(*shape)) == expected


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(dl.empty(5))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(dl.empty(5))


def test_inplace_on_parameters_no_graph():
    p = nn.Parameter(dl.zeros(200, 100))
    arr = p.array
    v = p._version
    out = init.uniform_(p, -2, 3)
    assert out is p and p.array is arr  # same storage, filled in place
    assert p.grad_fn is None and p.requires_grad and p._version > v
    a = _np(p)
    assert a.min() >= -2 and a.max() <= 3
    assert a.mean() == pytest.approx(0.5, abs=0.03)
    assert a.var() == pytest.approx(25 / 12, rel=0.03)
    assert p.dtype == dl.float32
    d = dl.zeros(100, 100, dtype=dl.float64)
    init.normal_(d, 1.0, 2.0)
    assert d.dtype == dl.float64
    assert _np(d).mean() == pytest.approx(1.0, abs=0.06)
    assert _np(d).std() == pytest.approx(2.0, rel=0.03)


def test_constant_zeros_ones_eye_dirac_match_torch():
    t = torch.empty(3, 4)
    d = dl.empty(3, 4)
    for fd, ft in (
        (lambda x: init.constant_(x, 0.3), lambda x: torch.nn.init.constant_(x, 0.3)),
        (init.zeros_, torch.nn.init.zeros_),
        (init.ones_, torch.nn.init.ones_),
        (init.eye_, torch.nn.init.eye_),
    ):
        np.testing.assert_array_equal(_np(fd(d)), ft(t).numpy())
    td, dd = torch.empty(6, 4, 3, 3), dl.empty(6, 4, 3, 3)
    np.testing.assert_array_equal(_np(init.dirac_(dd)), torch.nn.init.dirac_(td).numpy())
    np.testing.assert_array_equal(
        _np(init.dirac_(dd, groups=2)), torch.nn.init.dirac_(td, groups=2).numpy()
    )


def test_xavier_uniform_and_normal():
    w = dl.empty(300, 200)
    init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 500)
    a = _np(w)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.98 * bound
    assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    init.xavier_normal_(w)
    assert _np(w).std() == pytest.approx(math.sqrt(2 / 500), rel=0.02)
    assert abs(_np(w).mean()) < 0.003


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0.1), ("tanh", 0)])
def test_kaiming(mode, nonlinearity, a):
    shape = (64, 32, 3, 3)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    fan = fan_in if mode == "fan_in" else fan_out
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = dl.empty(*shape)
    init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    bound = math.sqrt(3) * std
    assert np.abs(_np(w)).max() <= bound
    assert _np(w).std() == pytest.approx(std, rel=0.02)
    init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    assert _np(w).std() == pytest.approx(std, rel=0.02)
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(w, mode="fan_middle")


def test_trunc_normal_bounds_and_moments():
    w = dl.empty(200, 200)
    init.trunc_normal_(w, mean=0.5, std=1.0, a=-0.5, b=2.0)
    x = _np(w)
    assert x.min() >= -0.5 and x.max() <= 2.0
    # moments of N(0.5, 1) truncated to [-1, 1.5] standard units (closed form)
    al, be = -1.0, 1.5
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
    zmass = cdf(be) - cdf(al)
    mean = 0.5 + (pdf(al) - pdf(be)) / zmass
    var = 1 + (al * pdf(al) - be * pdf(be)) / zmass - ((pdf(al) - pdf(be)) / zmass) ** 2
    assert x.mean() == pytest.approx(mean, abs=0.01)
    assert x.var() == pytest.approx(var, rel=0.02)


def test_orthogonal():
    for shape in [(6, 10), (10, 6), (4, 2, 3, 3)]:
        w = dl.empty(*shape)
        init.orthogonal_(w, gain=1.5)
        m = _np(w).reshape(shape[0], -1).astype(np.float64)
        gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(gram, 2.25 * np.eye(gram.shape[0]), atol=1e-5)


def test_generator_and_seed_reproducible():
    g1 = dl.Generator().manual_seed(7)
    g2 = dl.Generator().manual_seed(7)
    a, b = dl.empty(5, 5), dl.empty(5, 5)
    init.kaiming_normal_(a, generator=g1)
    init.kaiming_normal_(b, generator=g2)
    np.testing.assert_array_equal(_np(a), _np(b))
    dl.manual_seed(3)
    l1 = nn.Linear(4, 4)
    dl.manual_seed(3)
    l2 = nn.Linear(4, 4)
    np.testing.assert_array_equal(_np(l1.weight), _np(l2.weight))
    np.testing.assert_array_equal(_np(l1.bias), _np(l2.bias))


# ------------------------------------------------------------------ layer defaults


@pytest.mark.parametrize(
    "build",
    [
        lambda m: m.nn.Linear(400, 300),
        lambda m: m.nn.Conv2d(16, 64, 3),
        lambda m: m.nn.Conv2d(16, 64, (3, 5), groups=4),
        lambda m: m.nn.ConvTranspose2d(64, 32, 4),
        lambda m: m.nn.ConvTranspose2d(32, 64, 3, groups=2),
    ],
)
def test_default_init_matches_torch_distribution(build):
    """Weight and bias are U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from torch's rule."""
    d, t = build(dl), build(torch)
    fan_in = torch.nn.init._calculate_fan_in_and_fan_out(t.weight)[0]
    bound = 1 / math.sqrt(fan_in)
    for (name, p), (tname, tp) in zip(d.named_parameters(), t.named_parameters()):
        assert name == tname and tuple(p.shape) == tuple(tp.shape) and p.dtype == dl.float32
        a, ta = _np(p), tp.detach().numpy()
        assert np.abs(a).max() <= bound + 1e-7 and np.abs(ta).max() <= bound + 1e-7
        if a.size >= 5000:  # enough samples for tight moments
            assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
            assert a.std() == pytest.approx(ta.std(), rel=0.04)
            assert np.abs(a).max() > 0.99 * bound
            assert abs(a.mean()) < 0.05 * bound


def test_default_init_of_other_layers():
    for bn in (nn.BatchNorm2d(5), nn.BatchNorm1d(5), nn.GroupNorm(1, 5), nn.LayerNorm(5)):
        np.testing.assert_array_equal(_np(bn.weight), np.ones(5, np.float32))
        np.testing.assert_array_equal(_np(bn.bias), np.zeros(5, np.float32))
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(5))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(5))
    assert bn.num_batches_tracked.item() == 0 and bn.num_batches_tracked.dtype == dl.int64
    np.testing.assert_array_equal(_np(nn.PReLU(3).weight), np.full(3, 0.25, np.float32))
    e = nn.Embedding(300, 200, padding_idx=2)
    w = _np(e.weight)
    assert not w[2].any()
    assert w.std() == pytest.approx(1.0, rel=0.02)


def test_dtype_factory_kwargs():
    lin = nn.Linear(3, 2, dtype=dl.float64)
    assert lin.weight.dtype == dl.float64 and lin.bias.dtype == dl.float64
    bn = nn.BatchNorm2d(3, dtype=dl.float64)
    assert bn.running_var.dtype == dl.float64 and bn.num_batches_tracked.dtype == dl.int64
