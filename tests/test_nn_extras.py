"""nn extras against torch: parametrizations (parametrize, weight_norm, spectral_norm,
orthogonal), the legacy hook-based weight_norm and spectral_norm, conv/linear + batch norm
fusion, InstanceNorm1d, the 1-D and circular padding layers, ChannelShuffle, MaxUnpool3d,
LPPool3d, max_pool*_with_indices, the in-place functional activations and a few argument
edges (adaptive pools to size 0, PReLU(0), vector_to_parameters)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import nn
from darklib.nn import functional as F
from darklib.nn.utils import parametrize as P
from tests.oracle import DEVICES, assert_close, compare

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TP = torch.nn.utils.parametrize


def _np(t):
    return t.detach().cpu().numpy()


def _load_from_torch(d: nn.Module, t: torch.nn.Module) -> None:
    d.load_state_dict({k: dl.tensor(_np(v)) for k, v in t.state_dict().items()})


def _pair(tcls, dcls, *args, device="cpu", **kw):
    torch.manual_seed(0)
    t = tcls(*args, **kw)
    d = dcls(*args, **kw).to(device)
    _load_from_torch(d, t)
    return t, d


def _check_grads(d: nn.Module, t: torch.nn.Module, atol=1e-5, rtol=1e-4) -> None:
    tp = dict(t.named_parameters())
    dp = dict(d.named_parameters())
    assert sorted(tp) == sorted(dp)
    for k, p in tp.items():
        assert_close(dp[k].grad, p.grad, atol, rtol, f"grad of {k}")


# ------------------------------------------------------------------ spectral norm
SPECTRAL_CASES = [
    ("linear", lambda m: m.Linear(5, 4), (3, 5)),
    ("conv2d", lambda m: m.Conv2d(3, 4, 3, padding=1), (2, 3, 5, 5)),
    ("convT2d", lambda m: m.ConvTranspose2d(3, 4, 3), (2, 3, 4, 4)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,build,shape", SPECTRAL_CASES, ids=[c[0] for c in SPECTRAL_CASES])
@pytest.mark.parametrize("n_iter", [1, 3])
def test_spectral_norm_parametrization_matches_torch(device, name, build, shape, n_iter):
    torch.manual_seed(0)
    t = build(torch.nn)
    d = build(nn).to(device)
    _load_from_torch(d, t)
    torch.nn.utils.parametrizations.spectral_norm(t, n_power_iterations=n_iter)
    nn.utils.parametrizations.spectral_norm(d, n_power_iterations=n_iter)
    keys = list(t.state_dict())
    assert list(d.state_dict()) == keys
    assert keys[-2:] == ["parametrizations.weight.0._u", "parametrizations.weight.0._v"]
    assert type(d).__name__ == "Parametrized" + type(t).__mro__[1].__name__
    _load_from_torch(d, t)  # the same u, v (and weight) as torch
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    opt_t = torch.optim.SGD(t.parameters(), lr=0.1)
    opt_d = dl.optim.SGD(d.parameters(), lr=0.1)
    for step in range(3):  # training: u and v move at every forward
        yt = t(torch.tensor(x))
        yd = d(dl.tensor(x, device=device))
        assert_close(yd, yt, 1e-5, 1e-4, f"train output {step}")
        for b in ("_u", "_v"):
            assert_close(
                getattr(d.parametrizations.weight[0], b),
                getattr(t.parametrizations.weight[0], b),
                1e-5,
                1e-4,
                f"{b} after step {step}",
            )
        opt_t.zero_grad()
        opt_d.zero_grad()
        (yt**2).sum().backward()
        (yd**2).sum().backward()
        _check_grads(d, t, 1e-4, 1e-3)
        opt_t.step()
        opt_d.step()
    t.eval()
    d.eval()
    u_before = _np(d.parametrizations.weight[0]._u).copy()
    for _ in range(2):  # eval: u and v are only read
        assert_close(d(dl.tensor(x, device=device)), t(torch.tensor(x)), 1e-4, 1e-3, "eval")
    np.testing.assert_array_equal(_np(d.parametrizations.weight[0]._u), u_before)


def test_spectral_norm_parametrization_estimates_sigma():
    d = nn.Linear(6, 5)
    nn.utils.parametrizations.spectral_norm(d)  # 15 iterations at registration
    for _ in range(30):
        d.weight
    s = np.linalg.svd(_np(d.weight), compute_uv=False)
    assert abs(s[0] - 1) < 1e-3


def test_spectral_norm_parametrization_args():
    m = nn.ConvTranspose2d(3, 4, 3)
    nn.utils.parametrizations.spectral_norm(m)
    assert m.parametrizations.weight[0].dim == 1  # transposed convs: dim 1
    assert tuple(m.parametrizations.weight[0]._u.shape) == (4,)
    with pytest.raises(ValueError, match="n_power_iterations"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError, match="no parameter or buffer"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), name="nope")
    # a 1-D weight is just normalised
    m = nn.Module()
    m.w = nn.Parameter(dl.tensor([3.0, 4.0]))
    nn.utils.parametrizations.spectral_norm(m, "w")
    np.testing.assert_allclose(_np(m.w), [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,build,shape", SPECTRAL_CASES, ids=[c[0] for c in SPECTRAL_CASES])
def test_legacy_spectral_norm_matches_torch(device, name, build, shape):
    torch.manual_seed(0)
    t = build(torch.nn)
    d = build(nn).to(device)
    _load_from_torch(d, t)
    torch.nn.utils.spectral_norm(t, n_power_iterations=2)
    nn.utils.spectral_norm(d, n_power_iterations=2)
    sd_t = t.state_dict()
    assert list(d.state_dict()) == list(sd_t) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert d.state_dict()._metadata[""]["spectral_norm"] == {"weight.version": 1}
    assert [n for n, _ in d.named_parameters()] == ["bias", "weight_orig"]
    assert repr(d) == repr(t)
    _load_from_torch(d, t)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    for step in range(3):
        yt, yd = t(torch.tensor(x)), d(dl.tensor(x, device=device))
        assert_close(yd, yt, 1e-5, 1e-4, f"output {step}")
        assert_close(d.weight_u, t.weight_u, 1e-5, 1e-4, "weight_u")
        assert_close(d.weight_v, t.weight_v, 1e-5, 1e-4, "weight_v")
        assert_close(d.weight, t.weight, 1e-5, 1e-4, "weight")
        for m in (t, d):
            m.zero_grad()
        (yt**2).sum().backward()
        (yd**2).sum().backward()
        _check_grads(d, t, 1e-4, 1e-3)
    t.eval()
    d.eval()
    u = _np(d.weight_u).copy()
    assert_close(d(dl.tensor(x, device=device)), t(torch.tensor(x)), 1e-5, 1e-4, "eval")
    np.testing.assert_array_equal(_np(d.weight_u), u)
    # a second registration is refused; removal leaves the normalised weight
    with pytest.raises(RuntimeError, match="two spectral_norm hooks"):
        nn.utils.spectral_norm(d)
    torch.nn.utils.remove_spectral_norm(t)
    nn.utils.remove_spectral_norm(d)
    assert list(d.state_dict()) == list(t.state_dict())
    assert_close(d.weight, t.weight, 1e-5, 1e-4, "removed")
    assert not d._state_dict_hooks and not d._load_state_dict_pre_hooks
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(d)


def test_legacy_spectral_norm_loads_torch_checkpoint_roundtrip():
    t = torch.nn.Linear(4, 3)
    torch.nn.utils.spectral_norm(t)
    t(torch.randn(2, 4))
    d = nn.utils.spectral_norm(nn.Linear(4, 3))
    sd = t.state_dict()
    d.load_state_dict({k: dl.tensor(_np(v)) for k, v in sd.items()})
    d.eval()
    t.eval()
    x = np.ones((1, 4), np.float32)
    assert_close(d(dl.tensor(x)), t(torch.tensor(x)))


# ------------------------------------------------------------------ weight norm
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1, None, -2])
def test_weight_norm_parametrization_matches_torch(device, dim):
    t, d = _pair(torch.nn.Conv2d, nn.Conv2d, 3, 4, 3, device=device)
    torch.nn.utils.parametrizations.weight_norm(t, dim=dim)
    nn.utils.parametrizations.weight_norm(d, dim=dim)
    sd_t = t.state_dict()
    assert list(d.state_dict()) == list(sd_t)
    for k, v in sd_t.items():
        assert_close(d.state_dict()[k], v, 1e-6, 1e-5, k)
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 5)).astype(np.float32)
    yt, yd = t(torch.tensor(x)), d(dl.tensor(x, device=device))
    assert_close(yd, yt)
    (yt**2).sum().backward()
    (yd**2).sum().backward()
    _check_grads(d, t, 1e-4, 1e-3)
    # assignment goes through right_inverse
    w = np.random.default_rng(4).standard_normal((4, 3, 3, 3)).astype(np.float32)
    with torch.no_grad():
        t.weight = torch.tensor(w)
    d.weight = dl.tensor(w, device=device)
    for k, v in t.state_dict().items():
        assert_close(d.state_dict()[k], v, 1e-6, 1e-5, k)
    P.remove_parametrizations(d, "weight")
    TP.remove_parametrizations(t, "weight")
    assert type(d) is nn.Conv2d and list(d.state_dict()) == list(t.state_dict())
    assert_close(d.weight, t.weight)


def test_weight_norm_parametrization_loads_legacy_checkpoint():
    t = torch.nn.Linear(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(t)
    d = nn.utils.parametrizations.weight_norm(nn.Linear(3, 4))
    d.load_state_dict({k: dl.tensor(_np(v)) for k, v in t.state_dict().items()})  # g, v
    x = np.ones((2, 3), np.float32)
    assert_close(d(dl.tensor(x)), t(torch.tensor(x)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1, None])
def test_legacy_weight_norm_matches_torch(dim, device):
    t, d = _pair(torch.nn.Linear, nn.Linear, 3, 4, device=device)
    with pytest.warns(FutureWarning, match="deprecated"):
        torch.nn.utils.weight_norm(t, dim=dim)
    with pytest.warns(FutureWarning, match="deprecated"):
        nn.utils.weight_norm(d, dim=dim)
    assert list(d.state_dict()) == list(t.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert tuple(d.weight_g.shape) == tuple(t.weight_g.shape)
    x = np.random.default_rng(5).standard_normal((2, 3)).astype(np.float32)
    yt, yd = t(torch.tensor(x)), d(dl.tensor(x, device=device))
    assert_close(yd, yt)
    (yt**2).sum().backward()
    (yd**2).sum().backward()
    _check_grads(d, t, 1e-4, 1e-3)
    with pytest.raises(RuntimeError, match="two weight_norm hooks"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        nn.utils.weight_norm(d)
    torch.nn.utils.remove_weight_norm(t)
    nn.utils.remove_weight_norm(d)
    assert list(d.state_dict()) == list(t.state_dict())
    assert_close(d.weight, t.weight)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(d)


# ------------------------------------------------------------------ parametrize
class _Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT


class _TSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, X):
        self.calls += 1
        return X * 2

    def right_inverse(self, X):
        return X / 2


class _Split(nn.Module):
    """Two originals: weight = a + b; right_inverse splits in halves."""

    def forward(self, a, b):
        return a + b

    def right_inverse(self, W):
        return W / 2, W / 2


@pytest.mark.parametrize("device", DEVICES)
def test_register_parametrization_layout_and_grads(device):
    t, d = _pair(torch.nn.Linear, nn.Linear, 3, 3, device=device)
    TP.register_parametrization(t, "weight", _TSymmetric())
    P.register_parametrization(d, "weight", _Symmetric())
    assert P.is_parametrized(d) and P.is_parametrized(d, "weight")
    assert not P.is_parametrized(d, "bias")
    assert list(d.state_dict()) == list(t.state_dict())
    assert list(d.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert repr(d).replace("_Symmetric", "X") == repr(t).replace("_TSymmetric", "X")
    assert P.type_before_parametrizations(d) is nn.Linear
    assert isinstance(d, nn.Linear)
    w = _np(d.weight)
    np.testing.assert_allclose(w, w.T)
    x = np.random.default_rng(6).standard_normal((2, 3)).astype(np.float32)
    yt, yd = t(torch.tensor(x)), d(dl.tensor(x, device=device))
    assert_close(yd, yt)
    yt.sum().backward()
    yd.sum().backward()
    _check_grads(d, t)
    # a state_dict round trip into a fresh parametrized module
    d2 = P.register_parametrization(nn.Linear(3, 3).to(device), "weight", _Symmetric())
    d2.load_state_dict(d.state_dict())
    assert_close(d2.weight, d.weight)
    # deepcopy keeps the parametrization, independent of the original
    d3 = copy.deepcopy(d)
    assert type(d3).__name__ == "ParametrizedLinear"
    assert_close(d3.weight, d.weight)
    assert d3.parametrizations.weight.original is not d.parametrizations.weight.original


@pytest.mark.parametrize("device", DEVICES)
def test_parametrization_right_inverse_assign_stack_and_remove(device):
    d = nn.Linear(2, 2).to(device)
    w0 = _np(d.weight).copy()
    original = d.weight
    P.register_parametrization(d, "weight", _Scale())
    # right_inverse at registration: original = w / 2, so weight keeps its value
    np.testing.assert_allclose(_np(d.parametrizations.weight.original), w0 / 2)
    np.testing.assert_allclose(_np(d.weight), w0, rtol=1e-6)
    assert d.parametrizations.weight.original is original  # the same Parameter object
    d.weight = dl.ones(2, 2, device=device)
    np.testing.assert_allclose(_np(d.parametrizations.weight.original), 0.5)
    # a second parametrization is applied after the first
    P.register_parametrization(d, "weight", _Scale())
    np.testing.assert_allclose(_np(d.weight), 4 * 0.5)
    assert len(d.parametrizations.weight) == 2
    P.remove_parametrizations(d, "weight", leave_parametrized=False)
    assert type(d) is nn.Linear and not hasattr(d, "parametrizations")
    np.testing.assert_allclose(_np(d.weight), 0.5)
    assert isinstance(d.weight, nn.Parameter) and d.weight is original
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        P.remove_parametrizations(d, "weight")


@pytest.mark.parametrize("device", DEVICES)
def test_parametrization_with_several_originals(device):
    d = nn.Linear(2, 3).to(device)
    w0 = _np(d.weight).copy()
    P.register_parametrization(d, "weight", _Split())
    assert list(d.state_dict()) == [
        "bias",
        "parametrizations.weight.original0",
        "parametrizations.weight.original1",
    ]
    np.testing.assert_allclose(_np(d.weight), w0, rtol=1e-6)
    d(dl.ones(1, 2, device=device)).sum().backward()
    assert d.parametrizations.weight.original0.grad is not None
    with pytest.raises(ValueError, match="sequence of tensors"):
        P.remove_parametrizations(d, "weight", leave_parametrized=False)
    P.remove_parametrizations(d, "weight")
    assert isinstance(d.weight, nn.Parameter)
    np.testing.assert_allclose(_np(d.weight), w0, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_parametrization_errors_and_buffers(device):
    class Bad(nn.Module):
        def forward(self, X):
            return X[0]

    with pytest.raises(ValueError, match=r"may not change the shape.*\n.*\(2, 3\)"):
        P.register_parametrization(nn.Linear(3, 2).to(device), "weight", Bad())
    P.register_parametrization(nn.Linear(3, 2).to(device), "weight", Bad(), unsafe=True)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        P.register_parametrization(nn.Linear(3, 2).to(device), "nope", _Symmetric())
    with pytest.raises(KeyError, match="already exists"):
        m = P.register_parametrization(nn.Linear(3, 3).to(device), "weight", _Symmetric())
        m.weight = nn.Parameter(dl.zeros(3, 3, device=device))
    # a buffer stays a buffer
    bn = nn.BatchNorm1d(3).to(device)
    P.register_parametrization(bn, "running_var", _Scale())
    assert "parametrizations.running_var.original" in bn.state_dict()
    assert "parametrizations.running_var.original" in dict(bn.named_buffers())
    # no right_inverse: assignment is an error
    m = P.register_parametrization(nn.Linear(3, 3).to(device), "weight", _Symmetric())
    with pytest.raises(RuntimeError, match="does not implement right_inverse"):
        m.weight = dl.zeros(3, 3, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_parametrize_cached(device):
    d = nn.Linear(2, 2).to(device)
    scale = _Scale()
    P.register_parametrization(d, "weight", scale)
    scale.calls = 0
    d.weight
    d.weight
    assert scale.calls == 2
    with P.cached():
        a = d.weight
        b = d.weight
        with P.cached():  # nested: the same cache
            assert d.weight is a
    assert a is b and scale.calls == 3
    d.weight
    assert scale.calls == 4


@pytest.mark.parametrize("device", DEVICES)
def test_parametrized_module_trains_with_optimizer(device):
    d = nn.Linear(3, 3).to(device)
    P.register_parametrization(d, "weight", _Symmetric())
    opt = dl.optim.SGD(d.parameters(), lr=0.1)
    x = dl.randn(4, 3, device=device)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (d(x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    w = _np(d.weight)
    np.testing.assert_allclose(w, w.T)


# ------------------------------------------------------------------ orthogonal
ORTH_CASES = [
    ((4, 4), None),
    ((5, 3), None),
    ((3, 5), None),
    ((4, 4), "cayley"),
    ((5, 3), "cayley"),
    ((3, 5), "matrix_exp"),
    ((4, 4), "householder"),
    ((3, 5), "householder"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,orth_map", ORTH_CASES)
def test_orthogonal_matches_torch(shape, orth_map, device):
    out_f, in_f = shape
    t, d = _pair(torch.nn.Linear, nn.Linear, in_f, out_f, device=device)
    torch.nn.utils.parametrizations.orthogonal(t, orthogonal_map=orth_map)
    nn.utils.parametrizations.orthogonal(d, orthogonal_map=orth_map)
    assert list(d.state_dict()) == list(t.state_dict())
    assert "parametrizations.weight.0.base" in d.state_dict()
    w = _np(d.weight)
    k = min(shape)
    gram = w @ w.T if out_f <= in_f else w.T @ w
    np.testing.assert_allclose(gram, np.eye(k), atol=1e-5)
    # torch's original and base, moved off the starting point: same weight and gradients
    with torch.no_grad():
        t.parametrizations.weight.original.add_(
            0.3 * torch.randn(t.parametrizations.weight.original.shape)
        )
    _load_from_torch(d, t)
    assert_close(d.weight, t.weight, 1e-5, 1e-4, "weight")
    x = np.random.default_rng(7).standard_normal((2, in_f)).astype(np.float32)
    yt, yd = t(torch.tensor(x)), d(dl.tensor(x, device=device))
    assert_close(yd, yt, 1e-5, 1e-4)
    (yt**2).sum().backward()
    (yd**2).sum().backward()
    _check_grads(d, t, 1e-4, 1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_orthogonal_without_trivialization_and_errors(device):
    t, d = _pair(torch.nn.Linear, nn.Linear, 3, 5, device=device)
    torch.nn.utils.parametrizations.orthogonal(t, use_trivialization=False)
    nn.utils.parametrizations.orthogonal(d, use_trivialization=False)
    assert (
        list(d.state_dict()) == list(t.state_dict()) == ["bias", "parametrizations.weight.original"]
    )
    assert_close(
        d.state_dict()["parametrizations.weight.original"],
        t.state_dict()["parametrizations.weight.original"],
        1e-5,
        1e-4,
    )
    assert_close(d.weight, t.weight, 1e-5, 1e-4)
    with pytest.raises(ValueError, match="no parameter or buffer with name 'x'"):
        nn.utils.parametrizations.orthogonal(nn.Module(), "x")
    m = nn.Module()
    m.w = nn.Parameter(dl.zeros(3, device=device))
    with pytest.raises(ValueError, match="Got a tensor of 1 dimensions"):
        nn.utils.parametrizations.orthogonal(m, "w")
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        nn.utils.parametrizations.orthogonal(nn.Linear(2, 2).to(device), orthogonal_map="qr")
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        nn.utils.parametrizations.orthogonal(
            nn.Linear(2, 2).to(device), orthogonal_map="cayley", use_trivialization=False
        ).weight = dl.eye(2, device=device)


# ------------------------------------------------------------------ fusion
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_eval_matches_torch(conv_bias, transpose, device):
    tcls, dcls = (
        (torch.nn.ConvTranspose2d, nn.ConvTranspose2d)
        if transpose
        else (torch.nn.Conv2d, nn.Conv2d)
    )
    tc, dc = _pair(tcls, dcls, 3, 4, 3, bias=conv_bias, device=device)
    tb, db = _pair(torch.nn.BatchNorm2d, nn.BatchNorm2d, 4, device=device)
    with torch.no_grad():
        tb.running_mean.uniform_(-1, 1)
        tb.running_var.uniform_(0.5, 2)
        tb.weight.uniform_(0.5, 2)
        tb.bias.uniform_(-1, 1)
    _load_from_torch(db, tb)
    for m in (tc, dc, tb, db):
        m.eval()
    ft = torch.nn.utils.fuse_conv_bn_eval(tc, tb, transpose=transpose)
    fd = nn.utils.fuse_conv_bn_eval(dc, db, transpose=transpose)
    assert fd is not dc and type(fd) is dcls
    assert_close(fd.weight, ft.weight)
    assert_close(fd.bias, ft.bias)
    assert fd.bias.requires_grad == ft.bias.requires_grad == conv_bias  # torch's quirk
    x = np.random.default_rng(8).standard_normal((2, 3, 5, 5)).astype(np.float32)
    xd = dl.tensor(x, device=device)
    assert_close(fd(xd), db(dc(xd)), 1e-5, 1e-4)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        nn.utils.fuse_conv_bn_eval(dc.train(), db)


@pytest.mark.parametrize("device", DEVICES)
def test_fuse_linear_bn_eval_matches_torch(device):
    tl, dlin = _pair(torch.nn.Linear, nn.Linear, 3, 4, device=device)
    tb, db = _pair(torch.nn.BatchNorm1d, nn.BatchNorm1d, 4, device=device)
    with torch.no_grad():
        tb.running_mean.uniform_(-1, 1)
        tb.running_var.uniform_(0.5, 2)
    _load_from_torch(db, tb)
    for m in (tl, dlin, tb, db):
        m.eval()
    ft = torch.nn.utils.fuse_linear_bn_eval(tl, tb)
    fd = nn.utils.fuse_linear_bn_eval(dlin, db)
    assert_close(fd.weight, ft.weight)
    assert_close(fd.bias, ft.bias)
    with pytest.raises(AssertionError, match=r"linear\.out_features == bn\.num_features"):
        nn.utils.fuse_linear_bn_eval(nn.Linear(3, 5).to(device).eval(), db)
    w, b = nn.utils.fuse_conv_bn_weights(
        dl.ones(4, 3, 1, 1, device=device), None, db.running_mean, db.running_var, 1e-5, None, None
    )
    assert isinstance(w, nn.Parameter) and not b.requires_grad


# ------------------------------------------------------------------ instance norm
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("track", [False, True])
def test_instance_norm1d_matches_torch(device, affine, track):
    t, d = _pair(
        torch.nn.InstanceNorm1d,
        nn.InstanceNorm1d,
        3,
        affine=affine,
        track_running_stats=track,
        device=device,
    )
    assert repr(d) == repr(t)
    assert list(d.state_dict()) == list(t.state_dict())
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 2)
            t.bias.uniform_(-1, 1)
        _load_from_torch(d, t)
    x = np.random.default_rng(9).standard_normal((2, 3, 6)).astype(np.float32)
    for mode in ("train", "eval"):
        getattr(t, mode)()
        getattr(d, mode)()
        compare(lambda a: d(a), lambda a: t(a), x, device=device, atol=1e-5, rtol=1e-4)
        compare(lambda a: d(a), lambda a: t(a), x[0], device=device, atol=1e-5, rtol=1e-4)
    if track:
        assert_close(d.running_mean, t.running_mean)
        assert_close(d.running_var, t.running_var)


@pytest.mark.parametrize(
    "tcls,dcls,shape",
    [
        (torch.nn.InstanceNorm1d, nn.InstanceNorm1d, (2, 3, 5)),
        (torch.nn.InstanceNorm2d, nn.InstanceNorm2d, (2, 3, 4, 4)),
        (torch.nn.InstanceNorm3d, nn.InstanceNorm3d, (2, 3, 2, 3, 3)),
    ],
)
def test_instance_norm_channel_mismatch_as_torch(tcls, dcls, shape):
    x = np.random.default_rng(10).standard_normal(shape).astype(np.float32)
    t, d = tcls(4), dcls(4)  # affine=False: torch warns and normalises anyway
    with pytest.warns(UserWarning, match="does not match num_features"):
        yt = t(torch.tensor(x))
    with pytest.warns(UserWarning, match="does not match num_features"):
        yd = d(dl.tensor(x))
    assert_close(yd, yt)
    with pytest.warns(UserWarning, match="size at dim=0 does not match"):  # unbatched
        assert_close(d(dl.tensor(x[0])), t(torch.tensor(x[0])))
    with pytest.raises(ValueError, match=r"match num_features \(4\), but got: 3"):
        dcls(4, affine=True)(dl.tensor(x))
    with pytest.raises(RuntimeError, match="running statistics hold 4 channels"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dcls(4, track_running_stats=True)(dl.tensor(x))
    with pytest.raises(ValueError, match="got 1D input"):
        dcls(3)(dl.tensor(np.zeros(3, np.float32)))
    assert not isinstance(nn.InstanceNorm3d(3), nn.InstanceNorm2d)  # as torch


def test_functional_instance_norm_checks_running_stats():
    x = dl.randn(2, 3, 5)
    with pytest.raises(ValueError, match="must have 3 elements"):
        F.instance_norm(x, dl.zeros(4), dl.ones(4))


# ------------------------------------------------------------------ padding
PAD_CASES = [
    ("ConstantPad1d", (2, 3.5), (2, 3, 5)),
    ("ConstantPad1d", ((1, -2), -1.0), (3, 5)),
    ("ConstantPad1d", (1, 2.0), (5,)),
    ("ZeroPad1d", ((1, 2),), (2, 3, 5)),
    ("ZeroPad1d", (1,), (1, 2, 3, 5)),
    ("ReflectionPad1d", ((2, 1),), (2, 3, 5)),
    ("ReflectionPad1d", (3,), (3, 5)),
    ("ReplicationPad1d", ((1, 3),), (2, 3, 5)),
    ("ReplicationPad1d", (2,), (3, 5)),
    ("CircularPad1d", ((2, 1),), (2, 3, 5)),
    ("CircularPad1d", (5,), (3, 5)),
    ("CircularPad2d", ((1, 0, 2, 1),), (2, 3, 4, 5)),
    ("CircularPad2d", (2,), (3, 4, 5)),
    ("CircularPad3d", (1,), (3, 2, 3, 4)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,args,shape", PAD_CASES)
def test_padding_layers_match_torch(device, name, args, shape):
    t, d = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    assert repr(d) == repr(t)
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    compare(lambda a: d(a), lambda a: t(a), x, device=device)


def test_padding_layers_errors():
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.ReflectionPad1d(1)(dl.zeros(5))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.CircularPad1d(1)(dl.zeros(1, 2, 3, 5))
    with pytest.raises(ValueError, match="int or 2 ints"):
        nn.ConstantPad1d((1, 2, 3), 0.0)
    with pytest.raises(RuntimeError):
        nn.CircularPad1d(6)(dl.zeros(1, 3, 5))  # wraps around more than once
    with pytest.raises(RuntimeError):
        nn.ReflectionPad1d(5)(dl.zeros(1, 3, 5))


# ------------------------------------------------------------------ channel shuffle
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 3), 3), ((1, 6, 4), 2), ((2, 8, 2, 2, 2), 4)])
def test_channel_shuffle_matches_torch(device, shape, groups):
    x = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
    compare(
        lambda a: F.channel_shuffle(a, groups),
        lambda a: torch.nn.functional.channel_shuffle(a, groups),
        x,
        device=device,
    )
    # (torch's native kernel has no derivative; darklib's is the differentiable one)
    compare(
        lambda a: F.native_channel_shuffle(a, groups),
        lambda a: torch.nn.functional.native_channel_shuffle(a, groups),
        x,
        grad=False,
        device=device,
    )
    m = nn.ChannelShuffle(groups)
    assert repr(m) == repr(torch.nn.ChannelShuffle(groups))
    compare(lambda a: m(a), lambda a: torch.nn.ChannelShuffle(groups)(a), x, device=device)


def test_channel_shuffle_errors():
    with pytest.raises(RuntimeError, match=r"divisible by groups\. Got 6 channels and 4 groups"):
        F.channel_shuffle(dl.zeros(1, 6, 2), 4)
    with pytest.raises(RuntimeError, match="> 2 dims"):
        F.channel_shuffle(dl.zeros(2, 6), 3)
    with pytest.raises(RuntimeError, match="must be positive"):
        F.channel_shuffle(dl.zeros(1, 6, 2), 0)


# ------------------------------------------------------------------ pooling
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("unbatched", [False, True])
def test_max_unpool3d_matches_torch(device, unbatched):
    x = np.random.default_rng(13).standard_normal((2, 3, 4, 4, 6)).astype(np.float32)
    if unbatched:
        x = x[0]
    tv, ti = torch.nn.functional.max_pool3d(torch.tensor(x), 2, return_indices=True)
    _, di = F.max_pool3d(dl.tensor(x, device=device), 2, return_indices=True)
    np.testing.assert_array_equal(_np(di), _np(ti))
    v = _np(tv)
    idx = _np(ti)
    compare(
        lambda a: F.max_unpool3d(a, dl.tensor(idx, device=device), 2),
        lambda a: torch.nn.functional.max_unpool3d(a, torch.tensor(idx), 2),
        v,
        device=device,
    )
    m, tm = nn.MaxUnpool3d(2), torch.nn.MaxUnpool3d(2)
    assert repr(m) == repr(tm)
    size = (5, 5, 7)
    compare(
        lambda a: m(a, dl.tensor(idx, device=device), output_size=size),
        lambda a: tm(a, torch.tensor(idx), output_size=size),
        v,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "norm_type,kernel,stride,ceil",
    [
        (2, 2, None, False),
        (3.0, (2, 1, 2), 1, True),
        (1, 3, 2, False),
        (float("inf"), 2, None, False),
    ],
)
def test_lp_pool3d_matches_torch(device, norm_type, kernel, stride, ceil):
    x = np.abs(np.random.default_rng(14).standard_normal((2, 3, 4, 5, 5))).astype(np.float32) + 0.1
    compare(
        lambda a: F.lp_pool3d(a, norm_type, kernel, stride, ceil),
        lambda a: torch.nn.functional.lp_pool3d(a, norm_type, kernel, stride, ceil),
        x,
        device=device,
    )
    m, tm = (
        nn.LPPool3d(norm_type, kernel, stride, ceil),
        torch.nn.LPPool3d(norm_type, kernel, stride, ceil),
    )
    assert repr(m) == repr(tm)
    compare(lambda a: m(a), lambda a: tm(a), x[0], device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_with_indices_match_torch(device):
    r = np.random.default_rng(15)
    for n, shape in ((1, (2, 3, 9)), (2, (2, 3, 7, 6)), (3, (1, 2, 5, 4, 6))):
        x = r.standard_normal(shape).astype(np.float32)
        dfn = getattr(F, f"max_pool{n}d_with_indices")
        tfn = getattr(torch.nn.functional, f"max_pool{n}d_with_indices")
        compare(lambda a, f=dfn: f(a, 3, 2, 1), lambda a, f=tfn: f(a, 3, 2, 1), x, device=device)
        out = dfn(dl.tensor(x, device=device), 2, return_indices=False)
        assert isinstance(out, tuple) and len(out) == 2


# ------------------------------------------------------------------ in-place activations
INPLACE = [
    ("relu_", ()),
    ("elu_", (0.7,)),
    ("leaky_relu_", (0.2,)),
    ("hardtanh_", (-0.5, 0.6)),
    ("threshold_", (0.1, 20.0)),
    ("celu_", (1.5,)),
    ("selu_", ()),
    ("rrelu_", (0.1, 0.3, False)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,args", INPLACE)
def test_inplace_activations_match_torch(device, name, args):
    x = np.random.default_rng(16).standard_normal((3, 4)).astype(np.float32)
    compare(
        lambda a: getattr(F, name)(a * 1, *args),
        lambda a: getattr(torch.nn.functional, name)(a * 1, *args),
        x,
        device=device,
    )
    d = dl.tensor(x, device=device)
    assert getattr(F, name)(d, *args) is d
    t = torch.tensor(x)
    getattr(torch.nn.functional, name)(t, *args)
    assert_close(d, t)


def test_rrelu_inplace_training_stays_in_bounds():
    x = -dl.rand(100) - 0.5
    y = F.rrelu_(x * 1, 0.1, 0.3, True)
    ratio = _np(y) / _np(x)
    assert ratio.min() >= 0.1 - 1e-6 and ratio.max() <= 0.3 + 1e-6


def test_functional_has_no_cdist():
    # torch.nn.functional has no cdist (torch.cdist only): darklib neither
    assert not hasattr(torch.nn.functional, "cdist")
    assert not hasattr(F, "cdist") and hasattr(dl, "cdist")


# ------------------------------------------------------------------ argument edges
@pytest.mark.parametrize(
    "name,size,dims",
    [
        ("AdaptiveAvgPool2d", 0, 2),
        ("AdaptiveAvgPool2d", (0, 3), 2),
        ("AdaptiveAvgPool2d", (None, 0), 2),
        ("AdaptiveAvgPool1d", 0, 1),
        ("AdaptiveMaxPool1d", 0, 1),
        ("AdaptiveMaxPool2d", (0, 2), 2),
        ("AdaptiveAvgPool3d", 0, 3),
        ("AdaptiveMaxPool3d", 0, 3),
    ],
)
def test_adaptive_pools_to_size_zero_as_torch(name, size, dims):
    t, d = getattr(torch.nn, name)(size), getattr(nn, name)(size)
    assert repr(d) == repr(t)
    x = np.random.default_rng(17).standard_normal((1, 2) + (4,) * dims).astype(np.float32)
    xd = dl.tensor(x, requires_grad=True)
    yd, yt = d(xd), t(torch.tensor(x))
    assert tuple(yd.shape) == tuple(yt.shape)
    yd.sum().backward()
    np.testing.assert_array_equal(_np(xd.grad), np.zeros_like(x))


def test_prelu_zero_parameters_as_torch():
    t, d = torch.nn.PReLU(0), nn.PReLU(0)
    assert repr(d) == repr(t) and tuple(d.weight.shape) == (0,)
    assert tuple(d(dl.zeros(2, 0)).shape) == tuple(t(torch.zeros(2, 0)).shape)
    with pytest.raises(RuntimeError):
        d(dl.zeros(2, 3))
    with pytest.raises(ValueError):
        nn.PReLU(-1)


def test_vector_to_parameters_longer_vector_as_torch():
    ps_t = [torch.zeros(3), torch.zeros(2, 2)]
    ps_d = [dl.zeros(3), dl.zeros(2, 2)]
    torch.nn.utils.vector_to_parameters(torch.arange(10.0), ps_t)
    nn.utils.vector_to_parameters(dl.arange(10.0), ps_d)
    for a, b in zip(ps_d, ps_t):
        assert_close(a, b)
    with pytest.raises(ValueError, match="vec has 5 elements but the parameters hold 7"):
        nn.utils.vector_to_parameters(dl.arange(5.0), ps_d)
