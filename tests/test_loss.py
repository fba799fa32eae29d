"""Loss functions against PyTorch: every option combination, gradients, stability, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import darklib as dl
from darklib.ops import loss as L
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

REDUCTIONS = ["none", "mean", "sum"]


def _logits(shape, seed=0, scale=3.0, dtype=np.float32):
    return (rng(seed).standard_normal(shape) * scale).astype(dtype)


def _targets(shape, c, ignore=None, seed=1):
    t = rng(seed).integers(0, c, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


# ------------------------------------------------------------------ cross_entropy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 2])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3, 2)])
def test_cross_entropy_class_indices(device, reduction, weighted, ignore, smoothing, shape):
    c = shape[1]
    x = _logits(shape)
    t = _targets((shape[0], *shape[2:]), c, ignore)
    w = (rng(2).random(c) + 0.5).astype(np.float32)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if ignore is not None:
        kw["ignore_index"] = ignore
    if weighted:
        compare(
            lambda a, b, c_: L.cross_entropy(a, b, c_, **kw),
            lambda a, b, c_: F.cross_entropy(a, b, c_, **kw),
            x,
            t,
            w,
            grad=[True, False, False],
            device=device,
        )
    else:
        compare(
            lambda a, b: L.cross_entropy(a, b, **kw),
            lambda a, b: F.cross_entropy(a, b, **kw),
            x,
            t,
            device=device,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 2), (5,)])
def test_cross_entropy_probabilities(device, reduction, weighted, smoothing, shape):
    c = shape[0] if len(shape) == 1 else shape[1]
    x = _logits(shape, dtype=np.float64)
    q = rng(3).random(shape)
    q /= q.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    w = rng(4).random(c) + 0.5
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weighted:
        compare(
            lambda a, b, c_: L.cross_entropy(a, b, c_, **kw),
            lambda a, b, c_: F.cross_entropy(a, b, c_, **kw),
            x,
            q,
            w,
            grad=[True, True, False],
            device=device,
            atol=1e-9,
            rtol=1e-7,
        )
    else:
        compare(
            lambda a, b: L.cross_entropy(a, b, **kw),
            lambda a, b: F.cross_entropy(a, b, **kw),
            x,
            q,
            device=device,
            atol=1e-9,
            rtol=1e-7,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched_and_float64(device, reduction):
    x = _logits((7,), dtype=np.float64)
    t = np.array(4)
    compare(
        lambda a, b: L.cross_entropy(a, b, reduction=reduction, label_smoothing=0.1),
        lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=0.1),
        x,
        t,
        device=device,
        atol=1e-10,
        rtol=1e-8,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_cross_entropy_large_logits_are_stable(device):
    x = _logits((4, 6), scale=1e4)
    t = _targets((4,), 6)
    out = L.cross_entropy(dl.tensor(x, device=device), dl.tensor(t, device=device))
    assert np.isfinite(out.item())
    compare(
        lambda a, b: L.cross_entropy(a, b, reduction="none"),
        lambda a, b: F.cross_entropy(a, b, reduction="none"),
        x,
        t,
        device=device,
        rtol=1e-5,
        atol=1e-2,
    )


def test_cross_entropy_all_ignored_mean_is_nan_like_torch():
    x, t = _logits((3, 4)), np.full(3, -100)
    out = L.cross_entropy(dl.tensor(x), dl.tensor(t))
    assert np.isnan(out.item()) and np.isnan(
        F.cross_entropy(torch.tensor(x), torch.tensor(t)).item()
    )
    total = L.cross_entropy(dl.tensor(x), dl.tensor(t), reduction="sum")
    assert total.item() == 0.0


def test_cross_entropy_uint8_targets_and_ignore_255():
    x, t = _logits((2, 4, 3, 3)), _targets((2, 3, 3), 4, ignore=255).astype(np.uint8)
    compare(
        lambda a, b: L.cross_entropy(a, b, ignore_index=255),
        lambda a, b: F.cross_entropy(a, b.long(), ignore_index=255),
        x,
        t,
    )


def test_cross_entropy_gradcheck():
    x = _logits((3, 4, 2), dtype=np.float64)
    t = np.array([[0, 3], [-100, 1], [2, 2]])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    gradcheck(
        lambda a: L.cross_entropy(
            a, dl.tensor(t), dl.tensor(w), label_smoothing=0.3, reduction="mean"
        ),
        x,
    )
    q = rng(5).random((3, 4))
    gradcheck(lambda a, b: L.cross_entropy(a, b, label_smoothing=0.2), x[..., 0], q)


def test_cross_entropy_errors():
    x = dl.randn(8, 10)
    with pytest.raises(IndexError, match="target has class 12 but input has 10 classes"):
        L.cross_entropy(x, dl.tensor([1, 2, 12, 0, 0, 0, 0, 0]))
    with pytest.raises(IndexError, match="target has class -1"):
        L.cross_entropy(x, dl.tensor([1, 2, -1, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"expected target of shape \(8,\) for input \(8, 10\)"):
        L.cross_entropy(x, dl.tensor([1, 2]))
    with pytest.raises(TypeError, match="neither class indices"):
        L.cross_entropy(x, dl.randn(8))
    with pytest.raises(ValueError, match="reduction"):
        L.cross_entropy(x, dl.zeros(8, dtype=dl.int64), reduction="avg")
    with pytest.raises(ValueError, match=r"weight of shape \(10,\)"):
        L.cross_entropy(x, dl.zeros(8, dtype=dl.int64), weight=dl.ones(3))
    with pytest.raises(ValueError, match="ignore_index"):
        L.cross_entropy(x, dl.rand(8, 10), ignore_index=1)
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy(x, dl.zeros(8, dtype=dl.int64), label_smoothing=1.5)


def test_legacy_size_average_and_reduce():
    x, t = _logits((4, 3)), _targets((4,), 3)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        out = L.cross_entropy(dl.tensor(x), dl.tensor(t), size_average=False)
    assert_close(out, F.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="sum"))
    with pytest.warns(UserWarning, match="reduction='none'"):
        out = L.mse_loss(dl.tensor(x), dl.tensor(x * 2), reduce=False)
    assert tuple(out.shape) == (4, 3)


# ------------------------------------------------------------------ nll_loss


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3), (4,)])
def test_nll_loss(device, reduction, weighted, shape):
    c = shape[0] if len(shape) == 1 else shape[1]
    x = _logits(shape)
    t = _targets(() if len(shape) == 1 else (shape[0], *shape[2:]), c, None)
    if len(shape) > 1:
        t.reshape(-1)[0] = 1
        t.reshape(-1)[-1] = -100
    w = (rng(2).random(c) + 0.5).astype(np.float32)
    if weighted:
        compare(
            lambda a, b, c_: L.nll_loss(a, b, c_, reduction=reduction),
            lambda a, b, c_: F.nll_loss(a, b, c_, reduction=reduction),
            x,
            t,
            w,
            grad=[True, False, False],
            device=device,
        )
    else:
        compare(
            lambda a, b: L.nll_loss(a, b, reduction=reduction),
            lambda a, b: F.nll_loss(a, b, reduction=reduction),
            x,
            t,
            device=device,
        )


def test_nll_loss_errors():
    with pytest.raises(IndexError, match="target has class 5 but input has 4 classes"):
        L.nll_loss(dl.randn(2, 4), dl.tensor([5, 0]))
    with pytest.raises(TypeError, match="integer dtype"):
        L.nll_loss(dl.randn(2, 4), dl.tensor([1.0, 0.0]))


# ------------------------------------------------------------------ regression losses


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regression_losses(device, reduction, name, weighted, dtype):
    r = rng(6)
    a, b = r.standard_normal((5, 3)).astype(dtype), r.standard_normal((5, 3)).astype(dtype)
    a[0, 0] = b[0, 0]  # a zero difference: the L1 subgradient there is 0 in both
    w = r.random((5, 3)).astype(dtype)
    kw = {"reduction": reduction}
    if name == "huber_loss":
        kw["delta"] = 0.7
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == np.float32 else {"atol": 1e-10, "rtol": 1e-8}
    if weighted:
        compare(
            lambda x, y, w_: getattr(L, name)(x, y, weight=w_, **kw),
            lambda x, y, w_: getattr(F, name)(x, y, weight=w_, **kw),
            a,
            b,
            w,
            device=device,
            **tol,
        )
    else:
        compare(
            lambda x, y: getattr(L, name)(x, y, **kw),
            lambda x, y: getattr(F, name)(x, y, **kw),
            a,
            b,
            device=device,
            **tol,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smooth_l1_loss(device, reduction, beta):
    r = rng(7)
    a, b = r.standard_normal((4, 5)), r.standard_normal((4, 5))
    compare(
        lambda x, y: L.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
        lambda x, y: F.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
        a,
        b,
        device=device,
        atol=1e-10,
    )


def test_regression_dtype_promotion():
    a = rng(8).standard_normal((3, 2)).astype(np.float32)
    b = rng(9).standard_normal((3, 2))
    compare(L.mse_loss, F.mse_loss, a, b)
    out = L.l1_loss(dl.tensor(a), dl.tensor([[1, 2], [3, 4], [5, 6]]))
    assert out.dtype == dl.float32


def test_regression_gradcheck():
    r = rng(10)
    a, b, w = r.standard_normal((3, 2)), r.standard_normal((3, 2)), r.random((3, 2)) + 0.1
    for name in ("mse_loss", "l1_loss", "huber_loss"):
        gradcheck(lambda x, y, w_, n=name: getattr(L, n)(x, y, weight=w_), a, b, w)
    gradcheck(lambda x, y: L.smooth_l1_loss(x, y, beta=0.5, reduction="sum"), a, b)


def test_regression_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"mse_loss: input \(8, 1\) and target \(8,\) have "):
        L.mse_loss(dl.randn(8, 1), dl.randn(8))
    for name in ("l1_loss", "smooth_l1_loss", "huber_loss"):
        with pytest.raises(ValueError, match=f"{name}: input"):
            getattr(L, name)(dl.randn(8, 1), dl.randn(8))
    with pytest.raises(ValueError, match="weight"):
        L.mse_loss(dl.randn(4), dl.randn(4), weight=dl.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        L.l1_loss(dl.randn(4), dl.randn(4), reduction="mena")


# ------------------------------------------------------------------ binary cross-entropy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3,), (4, 3)])
def test_binary_cross_entropy(device, reduction, weight_shape):
    r = rng(11)
    p, y = r.random((4, 3)) * 0.98 + 0.01, r.random((4, 3))
    w = None if weight_shape is None else r.random(weight_shape)

    def dfn(a, b):
        return L.binary_cross_entropy(
            a, b, None if w is None else dl.tensor(w, device=device), reduction=reduction
        )

    def tfn(a, b):
        return F.binary_cross_entropy(
            a, b, None if w is None else torch.tensor(w), reduction=reduction
        )

    compare(dfn, tfn, p, y, device=device, atol=1e-8)
    # probabilities of exactly 0 and 1: logs clamped at -100 as in torch
    p[0, 0], p[0, 1], y[0, 0], y[0, 1] = 0.0, 1.0, 1.0, 0.0
    compare(dfn, tfn, p, y, grad=[True, False], device=device, atol=1e-8)
    # torch's target gradient is +-inf there; ours is that of the clamped loss, finite
    yt = dl.tensor(y, device=device, requires_grad=True)
    L.binary_cross_entropy(dl.tensor(p, device=device), yt, reduction="sum").backward()
    assert np.all(np.isfinite(yt.grad.cpu().numpy()))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits(device, reduction, weighted, pos_weighted, dtype):
    r = rng(12)
    x = (r.standard_normal((5, 3)) * 8).astype(dtype)
    x[0] = [200.0, -200.0, 0.0]  # no overflow at extreme logits
    y = r.random((5, 3)).astype(dtype)
    w = r.random(3).astype(dtype) if weighted else None
    pw = (r.random(3) * 3).astype(dtype) if pos_weighted else None

    def dfn(a, b):
        return L.binary_cross_entropy_with_logits(
            a,
            b,
            None if w is None else dl.tensor(w, device=device),
            reduction=reduction,
            pos_weight=None if pw is None else dl.tensor(pw, device=device),
        )

    def tfn(a, b):
        return F.binary_cross_entropy_with_logits(
            a,
            b,
            None if w is None else torch.tensor(w),
            reduction=reduction,
            pos_weight=None if pw is None else torch.tensor(pw),
        )

    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == np.float32 else {"atol": 1e-10, "rtol": 1e-8}
    compare(dfn, tfn, x, y, device=device, **tol)


def test_bce_gradcheck_including_weights():
    r = rng(13)
    x, y = r.standard_normal((3, 2)) * 2, r.random((3, 2))
    w, pw = r.random(2) + 0.2, r.random(2) * 2 + 0.2
    gradcheck(
        lambda a, b, w_, p_: L.binary_cross_entropy_with_logits(a, b, w_, pos_weight=p_),
        x,
        y,
        w,
        pw,
    )
    p = r.random((3, 2)) * 0.8 + 0.1
    gradcheck(lambda a, b, w_: L.binary_cross_entropy(a, b, w_, reduction="sum"), p, y, w)


def test_bce_errors():
    with pytest.raises(TypeError, match=r"target must be a floating-point.*target\.float\(\)"):
        L.binary_cross_entropy(dl.rand(4), dl.tensor([0, 1, 1, 0]))
    with pytest.raises(TypeError, match="target must be a floating-point"):
        L.binary_cross_entropy_with_logits(dl.randn(4), dl.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match=r"input \(4, 1\) and target \(4,\)"):
        L.binary_cross_entropy_with_logits(dl.randn(4, 1), dl.rand(4))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        L.binary_cross_entropy(dl.tensor([0.5, 1.5]), dl.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="pos_weight"):
        L.binary_cross_entropy_with_logits(dl.randn(4, 3), dl.rand(4, 3), pos_weight=dl.ones(2))


# ------------------------------------------------------------------ kl_div and one_hot


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(device, reduction, log_target):
    r = rng(14)
    p = r.random((4, 5))
    p /= p.sum(1, keepdims=True)
    q = r.random((4, 5))
    q /= q.sum(1, keepdims=True)
    t = np.log(q) if log_target else q
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(
            lambda a, b: L.kl_div(a, b, reduction=reduction, log_target=log_target),
            lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
            np.log(p),
            t,
            device=device,
            atol=1e-10,
        )


def test_kl_div_zero_target():
    x = np.log(np.array([[0.2, 0.3, 0.5]]))
    t = np.array([[0.0, 0.4, 0.6]])
    compare(
        lambda a, b: L.kl_div(a, b, reduction="batchmean"),
        lambda a, b: F.kl_div(a, b, reduction="batchmean"),
        x,
        t,
        grad=[True, False],
    )


@pytest.mark.parametrize("device", DEVICES)
def test_one_hot(device):
    t = np.array([[0, 2], [1, 3]])
    out = L.one_hot(dl.tensor(t, device=device))
    assert out.dtype == dl.int64 and not out.requires_grad
    assert_close(out, F.one_hot(torch.tensor(t)))
    assert_close(L.one_hot(dl.tensor(t, device=device), 6), F.one_hot(torch.tensor(t), 6))
    with pytest.raises(ValueError, match="smaller than num_classes=3"):
        L.one_hot(dl.tensor(t), 3)
    with pytest.raises(ValueError, match="non-negative"):
        L.one_hot(dl.tensor([-1, 0]))
    with pytest.raises(TypeError, match="integer"):
        L.one_hot(dl.tensor([0.0, 1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_backward_keeps_float32(reduction, ignore):
    """The op's own gradient is float32 for float32 logits (a float64 one made the whole
    backward pass of a network run in float64)."""
    x = dl.tensor(_logits((4, 5)), requires_grad=True)
    t = dl.tensor(np.array([0, 1, -100 if ignore else 2, 3]))
    loss = L.cross_entropy(x, t, reduction=reduction)
    node = loss.grad_fn
    g = np.ones(loss.shape, np.float32)
    gx = node.fn.backward(node, g)[0]
    assert gx.dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2, 2), (5,)])
def test_cross_entropy_probabilities_weight_gradient(reduction, smoothing, shape):
    """With probability targets torch differentiates the class weights too."""
    cax = 0 if len(shape) == 1 else 1
    x = rng(1).standard_normal(shape)
    q = rng(2).random(shape)
    q /= q.sum(axis=cax, keepdims=True)
    w = rng(3).random(shape[cax]) + 0.5
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    compare(
        lambda x, q, w: L.cross_entropy(x, q, weight=w, **kw),
        lambda x, q, w: F.cross_entropy(x, q, weight=w, **kw),
        x,
        q,
        w,
        atol=1e-10,
        rtol=1e-9,
    )


def test_losses_without_a_weight_gradient_refuse_a_weight_that_requires_grad():
    """Class-index cross-entropy and NLL have no gradient for their class weights: like
    torch they refuse a weight that requires grad instead of leaving its .grad empty.
    (The binary cross-entropies do differentiate their weights: see the gradchecks.)"""
    x = dl.randn(4, 3, requires_grad=True)
    w = dl.ones(3, requires_grad=True)
    t = dl.tensor([0, 1, 2, 1])
    calls = [lambda: L.cross_entropy(x, t, weight=w), lambda: L.nll_loss(x, t, weight=w)]
    for call in calls:
        with pytest.raises(RuntimeError, match="not differentiable"):
            call()
    with dl.no_grad():
        for call in calls:
            assert call().shape == ()
    detached = L.cross_entropy(x, t, weight=w.detach())
    detached.backward()
    assert w.grad is None and x.grad is not None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "p, y, bad",
    [
        ([0.5, 0.5], [1.5, 0.0], "target"),
        ([0.5, 0.5], [0.0, -0.25], "target"),
        ([1.5, 0.5], [1.5, 0.0], "input"),  # both bad: the input is named, as torch
        ([0.0, 1.0], [-0.0, 1.0], None),  # the bounds themselves are fine
    ],
)
def test_bce_target_outside_unit_interval_raises_like_torch(device, p, y, bad):
    """torch refuses targets outside [0, 1] (darklib returned negative losses)."""
    pt, yt = torch.tensor(p), torch.tensor(y)
    if bad is None:
        want = F.binary_cross_entropy(pt, yt).item()
        for got in (
            L.binary_cross_entropy(dl.tensor(p, device=device), dl.tensor(y, device=device)),
            dl.nn.BCELoss()(dl.tensor(p, device=device), dl.tensor(y, device=device)),
        ):
            assert got.item() == pytest.approx(want, abs=1e-6)
        return
    msg = f"all elements of {bad} should be between 0 and 1"
    with pytest.raises(RuntimeError, match=msg):
        F.binary_cross_entropy(pt, yt)
    with pytest.raises(RuntimeError, match=msg):
        L.binary_cross_entropy(dl.tensor(p, device=device), dl.tensor(y, device=device))
    with pytest.raises(RuntimeError, match=msg):
        dl.nn.BCELoss(reduction="none")(dl.tensor(p, device=device), dl.tensor(y, device=device))
