"""batch_norm, layer_norm and group_norm against PyTorch, plus finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import darklib as dl
from darklib.ops.norm import batch_norm, group_norm, layer_norm
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

SHAPES = [(8, 3), (4, 3, 5), (2, 3, 4, 4)]
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return {"atol": 1e-4, "rtol": 1e-4} if dtype == np.float32 else {"atol": 1e-9, "rtol": 1e-7}


def _bn_data(shape, dtype, seed=0):
    r = rng(seed)
    c = shape[1]
    x = (r.standard_normal(shape) * 2 + 0.5).astype(dtype)
    w = (r.random(c) + 0.5).astype(dtype)
    b = r.standard_normal(c).astype(dtype)
    rm = r.standard_normal(c).astype(dtype)
    rv = (r.random(c) + 0.5).astype(dtype)
    return x, w, b, rm, rv


# ------------------------------------------------------------------ batch norm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(device, dtype, shape, training):
    x, w, b, rm, rv = _bn_data(shape, dtype)
    drm, drv = dl.tensor(rm, device=device), dl.tensor(rv, device=device)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    compare(
        lambda a, w_, b_: batch_norm(a, drm, drv, w_, b_, training=training, momentum=0.3),
        lambda a, w_, b_: F.batch_norm(a, trm, trv, w_, b_, training=training, momentum=0.3),
        x,
        w,
        b,
        device=device,
        **_tol(dtype),
    )
    # running statistics: updated (unbiased variance) in training, untouched in eval
    assert_close(drm, trm, what="running_mean", **_tol(dtype))
    assert_close(drv, trv, what="running_var", **_tol(dtype))
    if training:
        assert not np.allclose(drm.cpu().numpy(), rm)
        assert drm._version == 1 and drv._version == 1
    else:
        assert drm._version == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_without_running_stats_or_affine(device, shape):
    x = _bn_data(shape, np.float32)[0]
    compare(
        lambda a: batch_norm(a, None, None, training=True),
        lambda a: F.batch_norm(a, None, None, training=True),
        x,
        device=device,
        atol=1e-4,
    )
    w = _bn_data(shape, np.float32)[1]
    compare(
        lambda a, w_: batch_norm(a, None, None, w_, None, training=True),
        lambda a, w_: F.batch_norm(a, None, None, w_, None, training=True),
        x,
        w,
        device=device,
        atol=1e-4,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_running_stats_over_steps(device):
    """Several training steps then eval: the same as nn.BatchNorm2d, momentum None too."""
    r = rng(3)
    for momentum in (0.1, None):
        tbn = torch.nn.BatchNorm2d(4, momentum=momentum)
        drm, drv = dl.zeros(4, device=device), dl.ones(4, device=device)
        count = dl.tensor(0, dtype=dl.int64)
        for _ in range(3):
            x = (r.standard_normal((5, 4, 3, 3)) * 3 + 1).astype(np.float32)
            tbn.train()
            tbn(torch.tensor(x))
            count = count + 1
            batch_norm(
                dl.tensor(x, device=device),
                drm,
                drv,
                training=True,
                momentum=momentum,
                num_batches_tracked=count,
            )
        assert_close(drm, tbn.running_mean, atol=1e-5, what=f"running_mean momentum={momentum}")
        assert_close(drv, tbn.running_var, atol=1e-5, what=f"running_var momentum={momentum}")
        tbn.eval()
        x = r.standard_normal((2, 4, 3, 3)).astype(np.float32)
        out = batch_norm(dl.tensor(x, device=device), drm, drv, training=False)
        assert_close(out, tbn(torch.tensor(x)), atol=1e-5, what="eval output")


def test_batch_norm_momentum_none_needs_count():
    x = dl.randn(4, 3)
    with pytest.raises(ValueError, match="num_batches_tracked"):
        batch_norm(x, dl.zeros(3), dl.ones(3), training=True, momentum=None)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training):
    x, w, b, rm, rv = _bn_data((3, 2, 2), np.float64, seed=5)
    gradcheck(
        lambda a, w_, b_: batch_norm(a, dl.tensor(rm), dl.tensor(rv), w_, b_, training=training),
        x,
        w,
        b,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(64, 3), (16, 3, 2, 2)])
def test_batch_norm_large_mean_is_stable(device, shape):
    """Centring before squaring: a large common offset does not destroy the variance."""
    # against torch in float64: torch's own float32 result is 1e-3 off here (and varies
    # with its thread count), darklib's float32 one within 1e-5
    x = (rng(1).standard_normal(shape) + 1e4).astype(np.float32)
    g = rng(2).standard_normal(shape)
    a = dl.tensor(x, device=device, requires_grad=True)
    y = batch_norm(a, None, None, training=True)
    y.backward(dl.tensor(g.astype(np.float32), device=device))
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    ty = F.batch_norm(t, None, None, training=True)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(a.grad.cpu().numpy(), t.grad.numpy(), atol=1e-3)


def test_batch_norm_errors():
    x = dl.randn(8, 32, 4, 4)
    with pytest.raises(RuntimeError, match=r"running_mean of shape \(32,\).*\(8, 32, 4, 4\)"):
        batch_norm(x, dl.zeros(64), dl.ones(32), training=True)
    with pytest.raises(RuntimeError, match=r"weight of shape \(32,\)"):
        batch_norm(x, None, None, dl.ones(3), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm(dl.randn(1, 3), dl.zeros(3), dl.ones(3), training=True)
    with pytest.raises(ValueError, match="evaluation mode"):
        batch_norm(x, None, None, training=False)
    with pytest.raises(TypeError, match="float64"):
        batch_norm(x, dl.zeros(32, dtype=dl.float64), dl.ones(32), training=True)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        batch_norm(dl.randn(5), None, None, training=True)
    with pytest.raises(TypeError, match="floating-point"):
        batch_norm(dl.ones(4, 3, dtype=dl.int64), None, None, training=True)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_does_not_hold_output(device):
    """In-place ops on the output (ReLU(inplace=True) after BN) keep backward valid."""
    x = dl.tensor(_bn_data((4, 3, 2, 2), np.float32)[0], device=device, requires_grad=True)
    out = batch_norm(x, None, None, training=True)
    out.relu_()
    out.backward(dl.ones(4, 3, 2, 2, device=device))
    tx = torch.tensor(x.detach().cpu().numpy(), requires_grad=True)
    tout = F.batch_norm(tx, None, None, training=True)
    tout.relu_()
    tout.backward(torch.ones(4, 3, 2, 2))
    assert_close(x.grad, tx.grad, atol=1e-5)


# ------------------------------------------------------------------ layer norm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("shape", "ns"), [((4, 6), (6,)), ((2, 3, 5), (5,)), ((2, 3, 4), (3, 4)), ((5,), 5)]
)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(device, dtype, shape, ns, affine):
    r = rng(7)
    x = (r.standard_normal(shape) * 3 + 1).astype(dtype)
    nst = (ns,) if isinstance(ns, int) else ns
    if affine:
        w = (r.random(nst) + 0.5).astype(dtype)
        b = r.standard_normal(nst).astype(dtype)
        compare(
            lambda a, w_, b_: layer_norm(a, ns, w_, b_),
            lambda a, w_, b_: F.layer_norm(a, nst, w_, b_),
            x,
            w,
            b,
            device=device,
            **_tol(dtype),
        )
    else:
        compare(
            lambda a: layer_norm(a, ns),
            lambda a: F.layer_norm(a, nst),
            x,
            device=device,
            **_tol(dtype),
        )


def test_layer_norm_gradcheck():
    r = rng(8)
    x, w, b = r.standard_normal((2, 2, 3)), r.random((2, 3)) + 0.5, r.standard_normal((2, 3))
    gradcheck(lambda a, w_, b_: layer_norm(a, (2, 3), w_, b_), x, w, b)


def test_layer_norm_errors():
    with pytest.raises(RuntimeError, match=r"\(8, 5, 7\) does not end with normalized_shape"):
        layer_norm(dl.randn(8, 5, 7), 6)
    with pytest.raises(RuntimeError, match=r"weight of shape \(7,\)"):
        layer_norm(dl.randn(8, 5, 7), 7, dl.ones(5))


# ------------------------------------------------------------------ group norm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "groups"), [((3, 6), 2), ((2, 6, 5), 3), ((2, 4, 3, 3), 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(device, dtype, shape, groups, affine):
    r = rng(9)
    x = (r.standard_normal(shape) * 2 - 1).astype(dtype)
    c = shape[1]
    if affine:
        w, b = (r.random(c) + 0.5).astype(dtype), r.standard_normal(c).astype(dtype)
        compare(
            lambda a, w_, b_: group_norm(a, groups, w_, b_),
            lambda a, w_, b_: F.group_norm(a, groups, w_, b_),
            x,
            w,
            b,
            device=device,
            **_tol(dtype),
        )
    else:
        compare(
            lambda a: group_norm(a, groups),
            lambda a: F.group_norm(a, groups),
            x,
            device=device,
            **_tol(dtype),
        )


def test_group_norm_gradcheck():
    r = rng(10)
    x, w, b = r.standard_normal((2, 4, 3)), r.random(4) + 0.5, r.standard_normal(4)
    gradcheck(lambda a, w_, b_: group_norm(a, 2, w_, b_), x, w, b)


def test_group_norm_errors():
    with pytest.raises(ValueError, match="divide the 6 channels"):
        group_norm(dl.randn(2, 6, 3), 4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["batch_norm", "group_norm", "layer_norm", "instance_norm"])
def test_float16_normalisation_over_more_elements_than_float16_counts(name, device):
    """float16 normalisations compute in float32, as torch's accumulation: a channel of
    73,728 values had an inf count in float16 (NaN outputs and running statistics)."""
    r = np.random.default_rng(0)
    x = (r.standard_normal((16, 2, 64, 72)) + 0.5).astype(np.float16)
    g = r.standard_normal(x.shape).astype(np.float16)
    res = []
    for m in (torch, dl):
        F_ = m.nn.functional
        dev = {"device": device} if m is dl else {}
        xt = m.tensor(x, requires_grad=True, **dev)
        stats = [m.zeros(2, dtype=m.float16, **dev), m.ones(2, dtype=m.float16, **dev)]
        if name == "batch_norm":
            y = F_.batch_norm(xt, *stats, training=True)
        elif name == "layer_norm":
            y = F_.layer_norm(xt, (2, 64, 72))
        else:
            y = getattr(F_, name)(xt, *((1,) if name == "group_norm" else ()))
        y.backward(m.tensor(g, **dev))
        res.append([a.detach().cpu().numpy().astype(np.float64) for a in (y, xt.grad, *stats)])
    for t, d in zip(*res):
        assert np.isfinite(d).all()
        np.testing.assert_allclose(d, t, rtol=1e-2, atol=8e-3)


def test_group_norm_of_one_value_per_group_is_refused_as_torch():
    for shape in [(1, 2), (1, 2, 1)]:
        with pytest.raises(ValueError):
            F.group_norm(torch.zeros(*shape), 2)
        with pytest.raises(ValueError, match="more than 1 value per group"):
            group_norm(dl.zeros(*shape), 2)
    assert tuple(group_norm(dl.zeros(2, 2), 2).shape) == (2, 2)
