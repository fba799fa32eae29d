"""F.unfold / F.fold (and nn.Unfold / nn.Fold) and F.scaled_dot_product_attention against
PyTorch: values, float64 gradients of every differentiable input, errors, reprs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn.functional as F
from tests.oracle import DEVICES, compare, gradcheck, rng

_F64 = {"atol": 1e-10, "rtol": 1e-8}

# (input H, W), kernel_size, dilation, padding, stride
_GEOMETRIES = [
    ((5, 6), 2, 1, 0, 1),
    ((7, 6), (3, 2), (2, 1), (1, 2), (2, 3)),
    ((4, 4), 3, 1, 1, 2),
    ((6, 5), (1, 3), 1, (0, 1), (1, 2)),
]


def _x(shape, seed=0, dtype=np.float64):
    return rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ unfold / fold


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("geom", _GEOMETRIES)
@pytest.mark.parametrize("batched", [True, False])
def test_unfold(device, geom, batched):
    (h, w), k, d, p, s = geom
    x = _x((2, 3, h, w) if batched else (3, h, w))
    compare(
        lambda a: F.unfold(a, k, d, p, s),
        lambda a: TF.unfold(a, k, d, p, s),
        x,
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("geom", _GEOMETRIES)
@pytest.mark.parametrize("batched", [True, False])
def test_fold(device, geom, batched):
    (h, w), k, d, p, s = geom
    cols = TF.unfold(torch.zeros(1, 3, h, w), k, d, p, s).shape[1:]
    x = _x((2, *cols) if batched else tuple(cols), seed=1)
    compare(
        lambda a: F.fold(a, (h, w), k, d, p, s),
        lambda a: TF.fold(a, (h, w), k, d, p, s),
        x,
        device=device,
        **_F64,
    )


def test_unfold_fold_float32_and_gradcheck():
    x = _x((2, 2, 5, 4), dtype=np.float32)
    out = F.unfold(dl.tensor(x), 2, padding=1)
    assert out.dtype == dl.float32
    np.testing.assert_allclose(out.numpy(), TF.unfold(torch.tensor(x), 2, padding=1).numpy())
    gradcheck(lambda a: F.unfold(a, (2, 3), 1, 1, (2, 1)), _x((1, 2, 4, 5)))
    gradcheck(lambda a: F.fold(a, (4, 5), (2, 3), 1, 1, (2, 1)), _x((1, 12, 15)))


def test_unfold_fold_double_backward():
    x = dl.tensor(_x((1, 2, 4, 4)), requires_grad=True)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    for lib, a, fns in ((dl, x, F), (torch, tx, TF)):
        y = fns.fold(fns.unfold(a, 2) ** 2, (4, 4), 2)
        (g,) = lib.autograd.grad(y.sum(), a, create_graph=True)
        (g * g).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_unfold_fold_errors():
    with pytest.raises(ValueError, match=r"unfold: expected a 3-D .* got \(5, 5\)"):
        F.unfold(dl.randn(5, 5), 2)
    with pytest.raises(ValueError, match=r"spatial size \(3, 3\) with kernel_size=\(4, 4\)"):
        F.unfold(dl.randn(1, 2, 3, 3), 4)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.unfold(dl.randn(1, 2, 3, 3), 2, stride=0)
    with pytest.raises(TypeError, match="floating-point"):
        F.unfold(dl.ones(1, 2, 3, 3, dtype=dl.int64), 2)
    with pytest.raises(ValueError, match=r"fold: input \(1, 7, 4\): its channel dimension"):
        F.fold(dl.randn(1, 7, 4), (3, 3), 2)
    with pytest.raises(ValueError, match=r"fold: input \(1, 8, 5\) has 5 blocks .* 2 \* 2 = 4"):
        F.fold(dl.randn(1, 8, 5), (3, 3), 2)
    with pytest.raises(ValueError, match=r"fold: expected a 2-D"):
        F.fold(dl.randn(8), (3, 3), 2)
    with pytest.raises(RuntimeError):  # (catchable as torch's error)
        F.fold(dl.randn(1, 8, 5), (3, 3), 2)


@pytest.mark.parametrize(
    "args,kw",
    [((3,), {}), ((2,), {"dilation": 2, "padding": (1, 0), "stride": (2, 1)})],
)
def test_unfold_fold_modules(args, kw):
    for cls in ("Unfold", "Fold"):
        a = ((5, 6), *args) if cls == "Fold" else args
        dm, tm = getattr(dl.nn, cls)(*a, **kw), getattr(torch.nn, cls)(*a, **kw)
        assert repr(dm) == repr(tm)
        x = _x((2, 3, 5, 6))
        if cls == "Fold":
            x = TF.unfold(torch.tensor(x), *args, **kw).numpy()
        compare(dm, tm, x, **_F64)


# ------------------------------------------------------------------ scaled_dot_product_attention


def _qkv(lead, lq, s, e, ev, seed=0, hk=None):
    klead = lead if hk is None else (*lead[:-1], hk)
    return _x((*lead, lq, e), seed), _x((*klead, s, e), seed + 1), _x((*klead, s, ev), seed + 2)


def _sdpa(lib_f, **kw):
    return lambda q, k, v, *m: lib_f.scaled_dot_product_attention(
        q, k, v, attn_mask=m[0] if m else None, **kw
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [((2, 3), 4, 6, 5, 7), ((), 5, 5, 3, 2), ((2,), 6, 4, 4, 4)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_sdpa_plain_and_causal(device, shape, causal, scale):
    q, k, v = _qkv(*shape)
    kw = {"is_causal": causal, "scale": scale}
    compare(_sdpa(F, **kw), _sdpa(TF, **kw), q, k, v, device=device, **_F64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mask_shape", [(4, 6), (2, 1, 4, 6), (1, 6)])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_masks(device, mask_shape, kind):
    q, k, v = _qkv((2, 3), 4, 6, 5, 7, seed=3)
    if kind == "bool":
        m = rng(4).random(mask_shape) > 0.4
        m[..., 0] = True
        if mask_shape[-2] > 1:
            m[..., 1, :] = False  # a query that sees no key: zero output, zero gradient
    else:
        m = rng(4).standard_normal(mask_shape)
        m[..., 2] = -math.inf
        if mask_shape[-2] > 1:
            m[..., 1, :] = -math.inf
    compare(_sdpa(F), _sdpa(TF), q, k, v, m, device=device, **_F64)


@pytest.mark.parametrize("hk", [1, 2])
def test_sdpa_grouped_query_attention(hk):
    q, k, v = _qkv((2, 4), 3, 5, 4, 6, seed=5, hk=hk)
    kw = {"enable_gqa": True}
    compare(_sdpa(F, **kw), _sdpa(TF, **kw), q, k, v, **_F64)


def test_sdpa_float32_gradcheck_and_double_backward():
    q, k, v = (a.astype(np.float32) for a in _qkv((2,), 3, 4, 5, 2, seed=6))
    compare(_sdpa(F, is_causal=True), _sdpa(TF, is_causal=True), q, k, v)
    q, k, v = _qkv((1,), 3, 4, 2, 2, seed=7)
    m = rng(8).standard_normal((3, 4))
    gradcheck(_sdpa(F, scale=0.7), q, k, v, m)
    xs = [dl.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    for lib, fns, args in ((dl, F, xs), (torch, TF, ts)):
        out = fns.scaled_dot_product_attention(*args, is_causal=True)
        (g,) = lib.autograd.grad((out**2).sum(), args[0], create_graph=True)
        (g**2).sum().backward()
    for a, b in zip(xs[1:], ts[1:]):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_sdpa_dropout_is_seeded_and_unbiased():
    q, k, v = (dl.tensor(a) for a in _qkv((1,), 3, 4, 2, 2, seed=9))
    dl.manual_seed(0)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    dl.manual_seed(0)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    plain = F.scaled_dot_product_attention(q, k, v).numpy()
    assert not np.allclose(a.numpy(), plain)
    qq, kk, vv = (t.expand(4000, *t.shape) for t in (q[0], k[0], v[0]))
    mean = F.scaled_dot_product_attention(qq, kk, vv, dropout_p=0.3).numpy().mean(0)
    np.testing.assert_allclose(mean, plain[0], atol=0.08)
    zero = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert not np.any(zero.numpy())


def test_sdpa_errors():
    q, k, v = dl.randn(2, 3, 4, 5), dl.randn(2, 3, 6, 5), dl.randn(2, 3, 6, 7)
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(ValueError, match="cannot be combined with is_causal"):
        sdpa(q, k, v, attn_mask=dl.ones(4, 6, dtype=dl.bool), is_causal=True)
    with pytest.raises(
        ValueError, match=r"heads in key \(2\) and value \(2\) must divide .* query \(3\)"
    ):
        sdpa(q, k[:, :2], v[:, :2], enable_gqa=True)
    with pytest.raises(ValueError, match=r"query \(2, 3, 4, 5\) and key \(2, 3, 6, 4\)"):
        sdpa(q, k[..., :4], v)
    with pytest.raises(ValueError, match=r"key \(2, 3, 6, 5\) and value \(2, 3, 5, 7\)"):
        sdpa(q, k, v[:, :, :5])
    with pytest.raises(TypeError, match="same dtype"):
        sdpa(q, k, v.double())
    with pytest.raises(RuntimeError, match="broadcast"):
        sdpa(q, k, v, attn_mask=dl.zeros(5, 6))
    with pytest.raises(TypeError, match="attn_mask must be bool, float32"):
        sdpa(q, k, v, attn_mask=dl.zeros(4, 6, dtype=dl.float64))
    with pytest.raises(TypeError, match="attn_mask must be bool, float32"):
        sdpa(q, k, v, attn_mask=dl.zeros(4, 6, dtype=dl.int64))
    # a float32 mask on float64 inputs is allowed, as in torch
    out = sdpa(q.double(), k.double(), v.double(), attn_mask=dl.zeros(4, 6))
    assert out.dtype == dl.float64


# ------------------------------------------------------------------ pdist


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, math.inf, 0.0])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4), (1, 3)])
def test_pdist(device, p, shape):
    compare(lambda a: F.pdist(a, p), lambda a: TF.pdist(a, p), _x(shape, 10), device=device, **_F64)


def test_pdist_gradcheck_and_errors():
    gradcheck(lambda a: F.pdist(a, 3.0), _x((4, 3), 11))
    with pytest.raises(ValueError, match=r"pdist: expected a 2-D \(N, M\) input, got \(2, 3, 4\)"):
        F.pdist(dl.randn(2, 3, 4))
    with pytest.raises(ValueError, match="p must be non-negative"):
        F.pdist(dl.randn(3, 4), -1.0)
    with pytest.raises(TypeError, match="floating-point"):
        F.pdist(dl.ones(3, 4, dtype=dl.int64))
