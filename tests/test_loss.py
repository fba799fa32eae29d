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
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_unbatched_and_float64(device, reduction, smoothing):
    x = _logits((7,), dtype=np.float64)
    t = np.array(4)
    compare(
        lambda a, b: L.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing),
        lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing),
        x,
        t,
        device=device,
        atol=1e-10,
        rtol=1e-8,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_all_ignored_and_nan_logits(device, reduction):
    # every target ignored: a NaN mean (0 / 0) and zero gradients, as torch; a NaN logit
    # poisons its own sample only
    x = _logits((3, 4, 2))
    x[1, 2, 0] = np.nan
    for t in (np.full((3, 2), -100), _targets((3, 2), 4)):
        compare(
            lambda a, b: L.cross_entropy(a, b, reduction=reduction),
            lambda a, b: F.cross_entropy(a, b, reduction=reduction),
            x,
            t,
            device=device,
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
    # the target gradient there is +-inf, as torch's (its logs unclamped)
    yt = dl.tensor(y, device=device, requires_grad=True)
    L.binary_cross_entropy(dl.tensor(p, device=device), yt, reduction="sum").backward()
    assert yt.grad.cpu().numpy()[0, :2].tolist() == [np.inf, -np.inf]


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


@pytest.mark.parametrize("device", DEVICES)
def test_kl_div_zero_target(device):
    x = np.log(np.array([[0.2, 0.3, 0.5]]))
    t = np.array([[0.0, 0.4, 0.6]])
    compare(
        lambda a, b: L.kl_div(a, b, reduction="batchmean"),
        lambda a, b: F.kl_div(a, b, reduction="batchmean"),
        x,
        t,
        grad=[True, False],
        device=device,
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


# ------------------------------------------------------------------ margin / embedding / NLL losses
# (compositions: values and float64 gradients of every differentiable input against torch)

_F64 = {"atol": 1e-10, "rtol": 1e-8}


def _pm1(shape, seed):
    return rng(seed).choice([-1.0, 1.0], shape)


def _legacy(reduction):
    return {
        "none": {"reduce": False},
        "sum": {"size_average": False},
        "mean": {"size_average": True},
    }[reduction]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.7])
@pytest.mark.parametrize("shapes", [((5,), (5,), (5,)), ((3, 4), (1, 4), (3, 1)), ((), (), ())])
def test_margin_ranking_loss(device, reduction, margin, shapes):
    a, b = _logits(shapes[0], 1, 1.0, np.float64), _logits(shapes[1], 2, 1.0, np.float64)
    y = _pm1(shapes[2], 3)
    kw = {"margin": margin, "reduction": reduction}
    compare(
        lambda *t: dl.nn.functional.margin_ranking_loss(*t, **kw),
        lambda *t: F.margin_ranking_loss(*t, **kw),
        a, b, y, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
def test_hinge_embedding_loss(device, reduction, margin, shape):
    x = _logits(shape, 4, 1.0, np.float64)
    y = _pm1(shape, 5)
    y.reshape(-1)[:1] = 0.5  # neither 1 nor -1: torch adds both terms
    kw = {"margin": margin, "reduction": reduction}
    compare(
        lambda *t: dl.nn.functional.hinge_embedding_loss(*t, **kw),
        lambda *t: F.hinge_embedding_loss(*t, **kw),
        x, y, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
def test_soft_margin_loss(device, reduction, shape):
    x = _logits(shape, 6, 30.0, np.float64)  # large values: the softplus must stay finite
    y = _pm1(shape, 7)
    compare(
        lambda *t: dl.nn.functional.soft_margin_loss(*t, reduction=reduction),
        lambda *t: F.soft_margin_loss(*t, reduction=reduction),
        x, y, grad=[True, False], device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 4)])
def test_multilabel_soft_margin_loss(device, reduction, weighted, shape):
    x = _logits(shape, 8, 3.0, np.float64)
    y = rng(9).integers(0, 2, shape).astype(np.float64)
    y.reshape(-1)[0] = 0.3  # soft targets get a gradient too
    w = rng(10).random(shape[-1]) + 0.5
    kw = {"reduction": reduction}
    arrays = (x, y, w) if weighted else (x, y)
    compare(
        lambda *t: dl.nn.functional.multilabel_soft_margin_loss(*t, **kw),
        lambda *t: F.multilabel_soft_margin_loss(*t, **kw),
        *arrays, device=device, **_F64,
    )  # fmt: skip


def _multilabel_targets(n, c, seed):
    r = rng(seed)
    t = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = r.integers(0, c + 1)
        t[i, :k] = r.choice(c, k, replace=False)
        if k < c:  # values after the first -1 are ignored
            t[i, k + 1 :] = r.integers(-1, c, c - k - 1)
    return t


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6,), (5, 4), (4, 1)])
def test_multilabel_margin_loss(device, reduction, shape):
    n, c = (1, shape[0]) if len(shape) == 1 else shape
    x = _logits(shape, 11, 1.0, np.float64)
    t = _multilabel_targets(n, c, 12).reshape(shape)
    if len(shape) == 2 and c > 2:
        t[2, :2] = [1, 1]  # a repeated class counts twice, as in torch
    compare(
        lambda *a: dl.nn.functional.multilabel_margin_loss(*a, reduction=reduction),
        lambda *a: F.multilabel_margin_loss(*a, reduction=reduction),
        x, t, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.4])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5,), (6, 4)])
def test_multi_margin_loss(device, reduction, p, margin, weighted, shape):
    x = _logits(shape, 13, 1.0, np.float64)
    t = rng(14).integers(0, shape[-1], shape[:-1])
    w = rng(15).random(shape[-1]) + 0.5
    kw = {"p": p, "margin": margin, "reduction": reduction}
    arrays = (x, t, w) if weighted else (x, t)
    compare(
        lambda a, b, *c: dl.nn.functional.multi_margin_loss(a, b, weight=c[0] if c else None, **kw),
        lambda a, b, *c: F.multi_margin_loss(a, b, weight=c[0] if c else None, **kw),
        *arrays, grad=[True, False, False], device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.5])
@pytest.mark.parametrize("shape", [(6, 5), (4,)])
def test_cosine_embedding_loss(device, reduction, margin, shape):
    a, b = _logits(shape, 16, 1.0, np.float64), _logits(shape, 17, 1.0, np.float64)
    y = _pm1(shape[:-1], 18)
    kw = {"margin": margin, "reduction": reduction}
    compare(
        lambda *t: dl.nn.functional.cosine_embedding_loss(*t, **kw),
        lambda *t: F.cosine_embedding_loss(*t, **kw),
        a, b, y, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (4,)])
def test_triplet_margin_loss(device, reduction, p, swap, shape):
    arrays = [_logits(shape, s, 1.0, np.float64) for s in (19, 20, 21)]
    kw = {"margin": 1.5, "p": p, "eps": 1e-4, "swap": swap, "reduction": reduction}
    compare(
        lambda *t: dl.nn.functional.triplet_margin_loss(*t, **kw),
        lambda *t: F.triplet_margin_loss(*t, **kw),
        *arrays, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("custom", [False, True])
def test_triplet_margin_with_distance_loss(device, reduction, swap, custom):
    arrays = [_logits((6, 5), s, 1.0, np.float64) for s in (22, 23, 24)]

    def cos_dist(lib):
        return lambda u, v: 1.0 - lib.nn.functional.cosine_similarity(u, v)

    kw = {"margin": 0.8, "swap": swap, "reduction": reduction}
    compare(
        lambda *t: dl.nn.functional.triplet_margin_with_distance_loss(
            *t, distance_function=cos_dist(dl) if custom else None, **kw
        ),
        lambda *t: F.triplet_margin_with_distance_loss(
            *t, distance_function=cos_dist(torch) if custom else None, **kw
        ),
        *arrays, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_poisson_nll_loss(device, reduction, log_input, full, shape):
    x = _logits(shape, 25, 1.0, np.float64)
    if not log_input:
        x = np.abs(x) + 0.1
    t = rng(26).random(shape) * 4 + 0.05  # both sides of the Stirling threshold 1
    kw = {"log_input": log_input, "full": full, "eps": 1e-3, "reduction": reduction}
    compare(
        lambda *a: dl.nn.functional.poisson_nll_loss(*a, **kw),
        lambda *a: F.poisson_nll_loss(*a, **kw),
        x, t, device=device, **_F64,
    )  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize(
    "shapes",
    [((4, 3), (4, 3)), ((4, 3), (4,)), ((4, 3), (4, 1)), ((2, 3, 4), (2, 1, 4)), ((5,), (5,))],
)
def test_gaussian_nll_loss(device, reduction, full, shapes):
    x, t = _logits(shapes[0], 27, 1.0, np.float64), _logits(shapes[0], 28, 1.0, np.float64)
    v = rng(29).random(shapes[1]) + 0.05
    v.reshape(-1)[0] = 1e-3  # below eps: clamped, but its gradient still passes (torch)
    kw = {"full": full, "eps": 1e-2, "reduction": reduction}
    compare(
        lambda *a: dl.nn.functional.gaussian_nll_loss(*a, **kw),
        lambda *a: F.gaussian_nll_loss(*a, **kw),
        x, t, v, device=device, **_F64,
    )  # fmt: skip


def test_gaussian_nll_loss_float_var_and_errors():
    x, t = _logits((4, 3), 30, 1.0, np.float64), _logits((4, 3), 31, 1.0, np.float64)
    compare(
        lambda a, b: dl.nn.functional.gaussian_nll_loss(a, b, 0.5),
        lambda a, b: F.gaussian_nll_loss(a, b, 0.5),
        x, t, **_F64,
    )  # fmt: skip
    fn = dl.nn.functional.gaussian_nll_loss
    with pytest.raises(ValueError, match=r"var \(2, 3\) is of incorrect size for input \(4, 3\)"):
        fn(dl.tensor(x), dl.tensor(t), dl.ones(2, 3))
    with pytest.raises(ValueError, match="negative"):
        fn(dl.tensor(x), dl.tensor(t), -dl.ones(4, 3))
    with pytest.raises(ValueError, match="negative"):
        fn(dl.tensor(x), dl.tensor(t), -1.0)
    with pytest.raises(ValueError, match="reduction"):
        fn(dl.tensor(x), dl.tensor(t), dl.ones(4, 3), reduction="avg")


def test_margin_losses_gradcheck_finite_differences():
    Fd = dl.nn.functional
    x, t = (
        _logits((3, 4), 32, 1.0, np.float64),
        np.array([[2, 0, -1, 1], [3, -1, 0, 0], [1, 2, 3, 0]]),
    )
    gradcheck(lambda a: Fd.multilabel_margin_loss(a, dl.tensor(t)), x)
    gradcheck(lambda a, w: Fd.multi_margin_loss(a, dl.tensor(np.abs(t[:, 0])), p=2, weight=w), x,
              rng(33).random(4) + 0.5)  # fmt: skip
    y = _pm1((3,), 34)
    gradcheck(lambda a, b: Fd.cosine_embedding_loss(a, b, dl.tensor(y), 0.1), x, x[::-1].copy())
    pos, neg = _logits((3, 4), 35, 1.0, np.float64), _logits((3, 4), 36, 1.0, np.float64)
    gradcheck(lambda a, b, c: Fd.triplet_margin_loss(a, b, c, swap=True, p=3.0), x, pos, neg)
    v = rng(37).random((3,)) + 0.1
    gradcheck(lambda a, b, c: Fd.gaussian_nll_loss(a, b, c, full=True), x, x * 0.5, v)
    gradcheck(lambda a, b: Fd.poisson_nll_loss(a, b, full=True), x, np.abs(x) + 1.5)


def test_margin_losses_float32_keep_dtype():
    x, t = _logits((4, 5), 38, 1.0), rng(39).integers(0, 5, 4)
    out = dl.nn.functional.multi_margin_loss(dl.tensor(x), dl.tensor(t))
    assert out.dtype == dl.float32
    assert_close(out, F.multi_margin_loss(torch.tensor(x), torch.tensor(t)))


def test_margin_loss_errors():
    Fd = dl.nn.functional
    x = dl.randn(3, 4)
    with pytest.raises(ValueError, match=r"margin_ranking_loss: input1 \(3,\), input2 \(3, 1\)"):
        Fd.margin_ranking_loss(dl.randn(3), dl.randn(3, 1), dl.randn(3))
    with pytest.raises(ValueError, match=r"multilabel_margin_loss: target \(3, 3\)"):
        Fd.multilabel_margin_loss(x, dl.zeros(3, 3, dtype=dl.int64))
    with pytest.raises(IndexError, match=r"target values must be in \[-1, 4\)"):
        Fd.multilabel_margin_loss(x, dl.full((3, 4), 4, dtype=dl.int64))
    with pytest.raises(ValueError, match=r"shape \(C\) or \(N, C\), got \(2, 3, 4\)"):
        Fd.multilabel_margin_loss(dl.randn(2, 3, 4), dl.zeros(2, 3, 4, dtype=dl.int64))
    with pytest.raises(TypeError, match="integer class targets"):
        Fd.multi_margin_loss(x, dl.zeros(3))
    with pytest.raises(ValueError, match=r"multi_margin_loss: target \(2,\)"):
        Fd.multi_margin_loss(x, dl.zeros(2, dtype=dl.int64))
    with pytest.raises(IndexError, match=r"target values must be in \[0, 4\)"):
        Fd.multi_margin_loss(x, dl.full((3,), 4, dtype=dl.int64))
    with pytest.raises(ValueError, match=r"weight \(3,\) must have shape \(4,\)"):
        Fd.multi_margin_loss(x, dl.zeros(3, dtype=dl.int64), weight=dl.ones(3))
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        Fd.multi_margin_loss(x, dl.zeros(3, dtype=dl.int64), p=3)
    with pytest.raises(ValueError, match="0-D or 1-D target"):
        Fd.cosine_embedding_loss(x, x, dl.ones(3, 1))
    with pytest.raises(ValueError, match=r"1-D target expects 2-D inputs, got input1 \(4,\)"):
        Fd.cosine_embedding_loss(dl.randn(4), dl.randn(4), dl.ones(3))
    with pytest.raises(ValueError, match="same number of dimensions"):
        Fd.triplet_margin_loss(x, x, dl.randn(4))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        Fd.triplet_margin_with_distance_loss(x, x, x, margin=0.0)
    with pytest.raises(RuntimeError, match=r"soft_margin_loss: shapes \(3, 4\), \(3,\)"):
        Fd.soft_margin_loss(x, dl.randn(3))
    with pytest.raises(ValueError, match="reduction"):
        Fd.hinge_embedding_loss(x, x, reduction="avg")
    # every one of them is also catchable as torch's RuntimeError
    with pytest.raises(RuntimeError):
        Fd.multi_margin_loss(x, dl.zeros(2, dtype=dl.int64))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_losses_legacy_size_average_reduce(reduction):
    x, y = _logits((4, 3), 40, 1.0, np.float64), _pm1((4, 3), 41)
    with pytest.warns(UserWarning, match=f"reduction='{reduction}'"):
        out = dl.nn.functional.soft_margin_loss(dl.tensor(x), dl.tensor(y), **_legacy(reduction))
    assert_close(out, F.soft_margin_loss(torch.tensor(x), torch.tensor(y), reduction=reduction))
    with pytest.warns(UserWarning, match=f"reduction='{reduction}'"):
        m = dl.nn.HingeEmbeddingLoss(0.5, **_legacy(reduction))
    assert m.reduction == reduction
    assert_close(m(dl.tensor(x), dl.tensor(y)),
                 torch.nn.HingeEmbeddingLoss(0.5, reduction=reduction)(torch.tensor(x),
                                                                      torch.tensor(y)))  # fmt: skip


def _module_pairs():
    w = np.array([0.5, 1.0, 2.0, 1.5])
    return [
        ("MarginRankingLoss", {"margin": 0.3}, 3),
        ("HingeEmbeddingLoss", {"margin": 0.5}, 2),
        ("SoftMarginLoss", {}, 2),
        ("MultiLabelSoftMarginLoss", {"weight": w}, 2),
        ("MultiLabelMarginLoss", {}, 2),
        ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": w}, 2),
        ("CosineEmbeddingLoss", {"margin": 0.2}, 3),
        ("TripletMarginLoss", {"margin": 0.5, "p": 1.0, "swap": True}, 3),
        ("TripletMarginWithDistanceLoss", {"margin": 0.5, "swap": True}, 3),
        ("PoissonNLLLoss", {"log_input": False, "full": True}, 2),
        ("GaussianNLLLoss", {"full": True, "eps": 1e-3}, 3),
    ]


@pytest.mark.parametrize("name,kw,n_in", _module_pairs(), ids=lambda v: str(v)[:20])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_new_loss_modules_match_torch(name, kw, n_in, reduction):
    dkw = {k: dl.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    dm, tm = (
        getattr(dl.nn, name)(reduction=reduction, **dkw),
        getattr(torch.nn, name)(reduction=reduction, **tkw),
    )
    assert repr(dm) == repr(tm)
    assert dm.reduction == reduction
    x = _logits((5, 4), 42, 1.0, np.float64)
    others = {
        "MultiLabelMarginLoss": [_multilabel_targets(5, 4, 43)],
        "MultiMarginLoss": [rng(44).integers(0, 4, 5)],
        "PoissonNLLLoss": [rng(45).random((5, 4)) * 3],
        "GaussianNLLLoss": [_logits((5, 4), 46, 1.0, np.float64), rng(47).random(5) + 0.1],
        "CosineEmbeddingLoss": [_logits((5, 4), 48, 1.0, np.float64), _pm1(5, 49)],
        "MarginRankingLoss": [_logits((5, 4), 50, 1.0, np.float64), _pm1((5, 4), 51)],
        "HingeEmbeddingLoss": [_pm1((5, 4), 52)],
        "SoftMarginLoss": [_pm1((5, 4), 53)],
        "MultiLabelSoftMarginLoss": [rng(54).integers(0, 2, (5, 4)).astype(np.float64)],
    }.get(name, [_logits((5, 4), s, 1.0, np.float64) for s in (55, 56)])
    if name == "PoissonNLLLoss":
        x = np.abs(x) + 0.1
    assert len(others) + 1 == n_in
    grad = [True, name != "SoftMarginLoss", True]  # (torch has no target gradient there)
    compare(dm, tm, x, *others, grad=grad[:n_in], **_F64)


def test_triplet_with_distance_module_keeps_custom_distance():
    m = dl.nn.TripletMarginWithDistanceLoss(distance_function=dl.nn.PairwiseDistance(p=1.0))
    t = torch.nn.TripletMarginWithDistanceLoss(distance_function=torch.nn.PairwiseDistance(p=1.0))
    assert repr(m) == repr(t)
    arrays = [_logits((3, 4), s, 1.0, np.float64) for s in (57, 58, 59)]
    compare(m, t, *arrays, **_F64)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        dl.nn.TripletMarginWithDistanceLoss(margin=-1.0)


def test_multi_margin_loss_of_one_sample_takes_a_1_element_target_as_torch():
    x = [0.1, 0.5, -0.3]
    for target in ([1], 1):
        for reduction in ("none", "mean"):
            want = torch.nn.functional.multi_margin_loss(
                torch.tensor(x), torch.tensor(target), reduction=reduction
            )
            got = dl.nn.functional.multi_margin_loss(
                dl.tensor(x), dl.tensor(target), reduction=reduction
            )
            assert tuple(got.shape) == tuple(want.shape)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "name",
    ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "kl_div"],
)
@pytest.mark.parametrize("device", DEVICES)
def test_float16_mean_losses_over_more_elements_than_float16_counts(name, device):
    """float16 losses reduce in float32, as torch: 70,000 elements is an inf count in
    float16 (the mean was NaN or 0, and the gradient 0)."""
    r = np.random.default_rng(0)
    x = r.uniform(0.05, 0.95, 70_000).astype(np.float16)
    y = r.uniform(0.05, 0.95, 70_000).astype(np.float16)
    kw = {"reduction": "batchmean"} if name == "kl_div" else {}
    res = []
    for m, F_ in ((torch, torch.nn.functional), (dl, dl.nn.functional)):
        dev = {"device": device} if m is dl else {}
        xt = m.tensor(x, requires_grad=True, **dev)
        loss = getattr(F_, name)(xt, m.tensor(y, **dev), **kw)
        loss.backward()
        res.append((float(loss), xt.grad.cpu().numpy().astype(np.float64)))
    (tl, tg), (dl_, dg) = res
    assert abs(dl_ - tl) <= 2e-3 * max(1.0, abs(tl)), (dl_, tl)
    np.testing.assert_allclose(dg, tg, rtol=2e-3, atol=1e-7)
    assert np.abs(dg).max() > 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [1, 2])
def test_margin_losses_pass_no_gradient_at_a_zero_hinge(p, device):
    """torch's multi-margin kernels count a hinge only where it is > 0: x[i] - x[y] equal
    to -margin contributes nothing (a clamp passed its gradient there)."""
    xv = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 2.0]])
    grads = []
    for m in (torch, dl):
        dev = {"device": device} if m is dl else {}
        x = m.tensor(xv, requires_grad=True, **dev)
        m.nn.functional.multi_margin_loss(x, m.tensor([0, 1], **dev), p=p).backward()
        x2 = m.tensor(xv[:1], requires_grad=True, **dev)
        m.nn.functional.multilabel_margin_loss(x2, m.tensor([[0, -1, 1]], **dev)).backward()
        grads.append((x.grad.cpu().numpy(), x2.grad.cpu().numpy()))
    for t, d in zip(*grads):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_cross_entropy_with_no_target_weight_is_nan_as_torch(device):
    """Zero total weight (class weights 0 for every target): NaN, label smoothing too (it
    gave inf)."""
    x = np.array([[1.0, 2, 3, 4], [4.0, 3, 2, 1]])
    for smoothing in (0.0, 0.2):
        got = dl.nn.functional.cross_entropy(
            dl.tensor(x, device=device),
            dl.tensor([0, 1], device=device),
            weight=dl.tensor([0.0, 0, 1, 1], dtype=dl.float64, device=device),
            label_smoothing=smoothing,
        )
        want = F.cross_entropy(
            torch.tensor(x),
            torch.tensor([0, 1]),
            weight=torch.tensor([0.0, 0, 1, 1], dtype=torch.float64),
            label_smoothing=smoothing,
        )
        assert np.isnan(float(want)) and np.isnan(float(got))


@pytest.mark.parametrize("device", DEVICES)
def test_kl_div_target_gradient_at_a_zero_target_is_nan_as_torch(device):
    grads = []
    for m in (torch, dl):
        dev = {"device": device} if m is dl else {}
        x = m.tensor([[1.0, 2.0, 3.0]], dtype=m.float64, requires_grad=True, **dev)
        y = m.tensor([[0.0, 0.5, 0.5]], dtype=m.float64, requires_grad=True, **dev)
        m.nn.functional.kl_div(x.log_softmax(-1), y, reduction="batchmean").backward()
        grads.append((x.grad.cpu().numpy(), y.grad.cpu().numpy()))
    for d, t in zip(grads[1], grads[0]):
        np.testing.assert_allclose(d, t, rtol=1e-12, equal_nan=True)
