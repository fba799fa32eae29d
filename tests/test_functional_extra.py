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


# ------------------------------------------------------------------ max_unpool

# input shape, kernel, stride, padding, output_size (None: the default)
_UNPOOL2D = [
    ((2, 3, 6, 6), 2, None, 0, None),
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 0), None),
    ((2, 2, 6, 7), 2, 2, 0, (6, 7)),
    ((3, 5, 5), 3, 1, 1, None),  # overlapping windows, unbatched
    ((1, 1, 5, 6), 2, 2, 0, (1, 1, 5, 6)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", _UNPOOL2D)
def test_max_unpool2d(device, case):
    shape, k, s, p, size = case
    y, idx = TF.max_pool2d(torch.tensor(_x(shape, 20)), k, s, p, return_indices=True)
    compare(
        lambda a: F.max_unpool2d(a, dl.tensor(idx.numpy(), device=device), k, s, p, size),
        lambda a: TF.max_unpool2d(a, idx, k, s, p, size),
        y.numpy(),
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "case", [((2, 3, 8), 2, None, 0, None), ((3, 9), 3, 2, 1, None), ((1, 2, 7), 2, 2, 0, [7])]
)
def test_max_unpool1d(device, case):
    shape, k, s, p, size = case
    y, idx = TF.max_pool1d(torch.tensor(_x(shape, 21)), k, s, p, return_indices=True)
    compare(
        lambda a: F.max_unpool1d(a, dl.tensor(idx.numpy(), device=device), k, s, p, size),
        lambda a: TF.max_unpool1d(a, idx, k, s, p, size),
        y.numpy(),
        device=device,
        **_F64,
    )


def test_max_unpool_roundtrip_with_darklib_pool_and_modules():
    x = dl.tensor(_x((2, 3, 6, 6), 22))
    pool, unpool = dl.nn.MaxPool2d(2, return_indices=True), dl.nn.MaxUnpool2d(2)
    out = unpool(*pool(x))
    ref = TF.max_unpool2d(*TF.max_pool2d(torch.tensor(x.numpy()), 2, return_indices=True), 2)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    x1 = _x((2, 9), 23)
    y, i = dl.nn.MaxPool1d(3, 2, return_indices=True)(dl.tensor(x1))
    out1 = dl.nn.MaxUnpool1d(3, 2)(y, i, output_size=[9])
    ty, ti = TF.max_pool1d(torch.tensor(x1), 3, 2, return_indices=True)
    np.testing.assert_array_equal(out1.numpy(), TF.max_unpool1d(ty, ti, 3, 2, output_size=[9]))
    for args in ((2,), ((2, 3), 1), (3, 2, 1)):
        assert repr(dl.nn.MaxUnpool2d(*args)) == repr(torch.nn.MaxUnpool2d(*args))
    for args in ((2,), (3, 2, 1), ((4,), None, (1,))):
        assert repr(dl.nn.MaxUnpool1d(*args)) == repr(torch.nn.MaxUnpool1d(*args))


def test_max_unpool_errors():
    y, i = F.max_pool2d(dl.tensor(_x((2, 3, 6, 7), 24)), 2, return_indices=True)
    with pytest.raises(IndexError, match=r"max_unpool2d: found an invalid max index .* \(6, 6\)"):
        F.max_unpool2d(y, i, 2)  # the default 6 x 6 output is too small for a width of 7
    with pytest.raises(ValueError, match=r"invalid output_size \(6, 9\) .* between 4 and 8"):
        F.max_unpool2d(y, i, 2, output_size=(6, 9))
    with pytest.raises(ValueError, match="should be a sequence containing 2 or 4 elements"):
        F.max_unpool2d(y, i, 2, output_size=(1, 6, 7))
    with pytest.raises(TypeError, match="indices of dtype int64, got int32"):
        F.max_unpool2d(y, i.int(), 2, output_size=(6, 7))
    with pytest.raises(ValueError, match=r"input \(2, 3, 3, 3\) and indices \(2, 3, 3, 2\)"):
        F.max_unpool2d(y, i[..., :2], 2, output_size=(6, 7))
    with pytest.raises(RuntimeError):  # as torch's RuntimeError
        F.max_unpool2d(y, i, 2)
    with pytest.raises(RuntimeError, match=r"max_unpool1d: expected a 2-D .* got shape \(5,\)"):
        F.max_unpool1d(dl.randn(5), dl.zeros(5, dtype=dl.int64), 2)


# ------------------------------------------------------------------ lp_pool


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [1.0, 2.0, 3, 1.5])
@pytest.mark.parametrize(
    "geom",
    [
        ((2, 3, 6, 7), 2, None, False),
        ((3, 5, 7), (3, 2), (2, 3), True),
        ((1, 2, 5, 5), 3, 1, False),
    ],
)
def test_lp_pool2d(device, p, geom):
    shape, k, s, ceil = geom
    x = _x(shape, 25)
    if p != int(p):
        x = np.abs(x) + 0.1  # a fractional power of a negative number is NaN in both
    compare(
        lambda a: F.lp_pool2d(a, p, k, s, ceil),
        lambda a: TF.lp_pool2d(a, p, k, s, ceil),
        x,
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [2.0, 1.5])
@pytest.mark.parametrize("geom", [((2, 3, 9), 3, None, False), ((3, 8), 3, 2, True)])
def test_lp_pool1d(device, p, geom):
    shape, k, s, ceil = geom
    x = np.abs(_x(shape, 26)) + 0.1
    compare(
        lambda a: F.lp_pool1d(a, p, k, s, ceil),
        lambda a: TF.lp_pool1d(a, p, k, s, ceil),
        x,
        device=device,
        **_F64,
    )


def test_lp_pool_modules_and_errors():
    for args in ((2, 3), (1.5, (2, 3), (1, 2), True)):
        dm, tm = dl.nn.LPPool2d(*args), torch.nn.LPPool2d(*args)
        assert repr(dm) == repr(tm)
        compare(dm, tm, np.abs(_x((2, 2, 6, 7), 27)) + 0.1, **_F64)
    for args in ((2, 3), (1.5, 3, 2, True)):
        dm, tm = dl.nn.LPPool1d(*args), torch.nn.LPPool1d(*args)
        assert repr(dm) == repr(tm)
        compare(dm, tm, np.abs(_x((2, 2, 7), 28)) + 0.1, **_F64)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.lp_pool2d(dl.randn(1, 2, 4, 4), 2, 2, 0)
    with pytest.raises(RuntimeError, match=r"lp_pool2d: expected a 3-D .* got shape \(4, 4\)"):
        F.lp_pool2d(dl.randn(4, 4), 2, 2)
    with pytest.raises(TypeError, match="norm_type must be a number"):
        F.lp_pool1d(dl.randn(1, 2, 4), "2", 2)


# ------------------------------------------------------------------ local_response_norm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 5, 4), (2, 6, 3, 4), (1, 4, 2, 3, 2)])
@pytest.mark.parametrize(
    "size,alpha,beta,k", [(3, 1e-4, 0.75, 1.0), (2, 0.5, 0.6, 1.5), (7, 2.0, 1.2, 2.0)]
)
def test_local_response_norm(device, shape, size, alpha, beta, k):
    compare(
        lambda a: F.local_response_norm(a, size, alpha, beta, k),
        lambda a: TF.local_response_norm(a, size, alpha, beta, k),
        _x(shape, 29),
        device=device,
        **_F64,
    )


def test_local_response_norm_module_and_errors():
    for args in ((3,), (2, 0.1, 0.5, 2)):
        dm, tm = dl.nn.LocalResponseNorm(*args), torch.nn.LocalResponseNorm(*args)
        assert repr(dm) == repr(tm)
        compare(dm, tm, _x((2, 5, 3, 3), 30).astype(np.float32))
    gradcheck(lambda a: F.local_response_norm(a, 3, 0.5, 0.8, 1.0), _x((1, 4, 3), 31))
    with pytest.raises(ValueError, match=r"3-D or higher .* got 2 dimensions \(3, 4\)"):
        F.local_response_norm(dl.randn(3, 4), 2)
    with pytest.raises(TypeError, match="floating-point"):
        F.local_response_norm(dl.ones(1, 2, 3, dtype=dl.int64), 2)
    assert F.local_response_norm(dl.randn(0, 3, 4), 2).shape == (0, 3, 4)


# ------------------------------------------------------------------ gumbel_softmax


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_gumbel_softmax_shapes_and_hard_straight_through(dim):
    logits = _x((4, 5, 3), 32)
    up = dl.tensor(_x((4, 5, 3), 33))
    grads, values = {}, {}
    for hard in (False, True):
        x = dl.tensor(logits, requires_grad=True)
        dl.manual_seed(7)
        y = F.gumbel_softmax(x, tau=0.7, hard=hard, dim=dim)
        assert y.shape == x.shape and y.dtype == dl.float64
        (y * up).sum().backward()
        grads[hard] = x.grad.numpy()
        v = values[hard] = y.detach().numpy()
        np.testing.assert_allclose(v.sum(dim), 1.0, rtol=1e-12)
    assert np.all((values[False] > 0) & (values[False] < 1))
    assert set(np.unique(values[True])) == {0.0, 1.0}  # one-hot of the soft sample's argmax
    np.testing.assert_array_equal(values[True].argmax(dim), values[False].argmax(dim))
    np.testing.assert_allclose(grads[True], grads[False], rtol=1e-12, atol=1e-14)
    y32 = F.gumbel_softmax(dl.tensor(logits.astype(np.float32)), hard=True)
    assert y32.dtype == dl.float32
    with pytest.raises(TypeError, match="floating-point logits"):
        F.gumbel_softmax(dl.ones(3, dtype=dl.int64))


def test_gumbel_softmax_argmax_follows_softmax():
    logits = np.array([1.0, 0.0, -0.5, 2.0])
    dl.manual_seed(0)
    y = F.gumbel_softmax(dl.tensor(np.tile(logits, (20000, 1))), tau=0.5, hard=True)
    freq = y.numpy().mean(0)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(freq, expected, atol=0.015)
    dl.manual_seed(0)
    again = F.gumbel_softmax(dl.tensor(np.tile(logits, (20000, 1))), tau=0.5, hard=True)
    np.testing.assert_array_equal(again.numpy(), y.numpy())


# ------------------------------------------------------------------ affine_grid / grid_sample


@pytest.mark.filterwarnings("ignore:Since version 1.3.0")  # torch's, on unit-size grids
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 1, 3), (2, 2, 3, 4, 2)])
@pytest.mark.parametrize("align", [False, True])
def test_affine_grid(device, size, align):
    k = len(size) - 2
    theta = _x((size[0], k, k + 1), 34)
    compare(
        lambda t: F.affine_grid(t, size, align_corners=align),
        lambda t: TF.affine_grid(t, size, align_corners=align),
        theta,
        device=device,
        **_F64,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("shapes", [((2, 3, 4, 5), (3, 6)), ((1, 2, 1, 3), (2, 2))])
def test_grid_sample(device, mode, padding, align, shapes):
    (n, c, h, w), (ho, wo) = shapes
    x = _x((n, c, h, w), 35)
    grid = rng(36).uniform(-1.6, 1.6, (n, ho, wo, 2))
    compare(
        lambda a, g: F.grid_sample(a, g, mode, padding, align),
        lambda a, g: TF.grid_sample(a, g, mode, padding, align),
        x,
        grid,
        device=device,
        **_F64,
    )


def test_grid_sample_float32_gradcheck_and_affine_chain():
    x, grid = _x((1, 2, 3, 4), 37), rng(38).uniform(-1.3, 1.3, (1, 2, 3, 2))
    compare(
        lambda a, g: F.grid_sample(a, g, padding_mode="reflection"),
        lambda a, g: TF.grid_sample(a, g, padding_mode="reflection", align_corners=False),
        x.astype(np.float32),
        grid.astype(np.float32),
    )
    gradcheck(lambda a, g: F.grid_sample(a, g, padding_mode="border", align_corners=True), x, grid)
    theta = _x((1, 2, 3), 39) * 0.5
    compare(
        lambda a, t: F.grid_sample(a, F.affine_grid(t, (1, 2, 4, 3)), align_corners=False),
        lambda a, t: TF.grid_sample(
            a, TF.affine_grid(t, (1, 2, 4, 3), align_corners=False), align_corners=False
        ),
        x,
        theta,
        **_F64,
    )


def test_affine_grid_grid_sample_errors():
    th = dl.randn(2, 2, 3)
    with pytest.raises(
        ValueError, match=r"shape \(N, 2, 3\) for size \(2, 3, 4, 5\), got theta \(2, 2, 2\)"
    ):
        F.affine_grid(th[:, :, :2], (2, 3, 4, 5))
    with pytest.raises(NotImplementedError, match="only 4-D and 5-D sizes"):
        F.affine_grid(th, (2, 3, 4))
    with pytest.raises(ValueError, match=r"positive output size, got \(2, 3, 0, 5\)"):
        F.affine_grid(th, (2, 3, 0, 5))
    with pytest.raises(ValueError, match="floating-point dtype"):
        F.affine_grid(th.int(), (2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="has 2 matrices for a batch of 3"):
        F.affine_grid(th, (3, 3, 4, 5))
    x, g = dl.randn(2, 3, 4, 5), dl.rand(2, 3, 3, 2)
    with pytest.raises(ValueError, match="expected mode to be 'bilinear', 'nearest' or 'bicubic'"):
        F.grid_sample(x, g, mode="linear")
    with pytest.raises(ValueError, match="padding_mode to be 'zeros', 'border' or 'reflection'"):
        F.grid_sample(x, g, padding_mode="circular")
    with pytest.raises(TypeError, match=r"input \(float32\) and grid \(float64\)"):
        F.grid_sample(x, g.double())
    with pytest.raises(RuntimeError, match=r"same batch size in input \(2, 3, 4, 5\) and grid"):
        F.grid_sample(x, g[:1])
    with pytest.raises(ValueError, match="last dimension to be 2"):
        F.grid_sample(x, g[..., :1])
    with pytest.raises(ValueError, match="4-D input and a 4-D grid"):
        F.grid_sample(x[0], g)
    with pytest.raises(ValueError, match="non-empty spatial dimensions"):
        F.grid_sample(x[:, :, :0], g)


def test_review_fixes_grid_sample_nonfinite_grid_lp_pool_inf_ldexp_dtype():
    # a NaN or inf grid position: no crash, torch's values (NaN rows, edges, zeros)
    for pm in ("zeros", "border", "reflection"):
        for mode in ("bilinear", "nearest"):
            for v in (math.nan, math.inf, -math.inf):
                g = [[[[v, 0.2], [0.3, v]]]]
                t = torch.nn.functional.grid_sample(
                    torch.arange(4.0).reshape(1, 1, 2, 2), torch.tensor(g), mode, pm, False
                )
                d = dl.nn.functional.grid_sample(
                    dl.arange(4.0).reshape(1, 1, 2, 2), dl.tensor(g), mode, pm, False
                )
                np.testing.assert_array_equal(d.numpy(), t.numpy(), err_msg=f"{pm} {mode} {v}")
    # lp_pool with p = inf is the largest magnitude of each window, with its gradient
    x = np.array([[[1.0, -5.0, 3.0, 2.0, -0.5, 0.25]]])
    for lib, F_ in ((torch, torch.nn.functional), (dl, dl.nn.functional)):
        xt = lib.tensor(x, requires_grad=True)
        y = F_.lp_pool1d(xt, float("inf"), 2)
        y.sum().backward()
        if lib is torch:
            want = (y.detach().numpy(), xt.grad.numpy())
        else:
            np.testing.assert_array_equal(y.detach().numpy(), want[0])
            np.testing.assert_array_equal(xt.grad.numpy(), want[1])
    # ldexp computes 2 ** other in the input's dtype
    got = dl.ldexp(dl.ones(1, dtype=dl.float64), dl.tensor([200]))
    assert got.item() == torch.ldexp(torch.ones(1, dtype=torch.float64), torch.tensor([200])).item()
    assert dl.ldexp(dl.ones(2, dtype=dl.float16), dl.tensor([1, 2])).dtype == dl.float16


@pytest.mark.parametrize(
    "w_shape, b_shape",
    [((4,), None), ((2, 4), (1,)), ((2, 4), (3, 2)), ((2, 4), ()), ((2, 4), (1, 2))],
)
@pytest.mark.parametrize("device", DEVICES)
def test_linear_with_a_vector_weight_or_a_broadcast_bias(w_shape, b_shape, device):
    """As torch: a 1-D weight without bias is a matrix-vector product, and the bias may be
    anything that broadcasts to the output."""
    r = rng(6)
    arrays = [r.standard_normal((3, 4)), r.standard_normal(w_shape)]
    if b_shape is not None:
        arrays.append(r.standard_normal(b_shape))
    compare(F.linear, TF.linear, *arrays, device=device, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_linear_refuses_a_bias_that_does_not_broadcast_to_its_output(device):
    x, w = dl.ones(3, 4, device=device), dl.ones(2, 4, device=device)
    with pytest.raises(RuntimeError, match=r"bias of shape \(3,\)"):
        F.linear(x, w, dl.ones(3, device=device))
    with pytest.raises(RuntimeError, match="without bias"):
        F.linear(x, dl.ones(4, device=device), dl.ones((), device=device))
