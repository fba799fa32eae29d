"""F.ctc_loss and nn.CTCLoss against PyTorch: values and gradients (PyTorch's formula,
``exp(log_probs) - posterior``), every reduction, padded and concatenated targets, blanks
other than 0, repeated labels, impossible alignments, unbatched input, double backward and
errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn as nn
import darklib.nn.functional as F
from tests.oracle import DEVICES, compare, gradcheck, rng

REDUCTIONS = ["none", "mean", "sum"]
TOL = {np.float64: (1e-10, 1e-9), np.float32: (2e-5, 2e-4)}


def _case(seed, t, n, c, s, dtype=np.float64, blank=0, normalised=True):
    """Random log-probabilities (T, N, C), padded targets (N, S) that never hold the
    blank, input lengths in [1, T] (one of them T) and target lengths in [0, S]."""
    r = rng(seed)
    x = r.standard_normal((t, n, c)) * 2
    if normalised:
        x = x - np.log(np.exp(x).sum(2, keepdims=True))
    labels = r.integers(0, c - 1, (n, s))
    targets = labels + (labels >= blank)  # every class but the blank
    il = r.integers(1, t + 1, n)
    il[0] = t
    tl = r.integers(0, s + 1, n)
    return x.astype(dtype), targets, il, tl


def _concat(targets, tl):
    return np.concatenate([targets[i, : tl[i]] for i in range(len(tl))]).astype(np.int64)


def _close(actual, expected, dtype, what):
    """Equal values, with inf and NaN in the same places."""
    atol, rtol = TOL[dtype]
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch's {e.shape}"
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(np.isinf(a), np.isinf(e), err_msg=f"{what}: inf positions")
    ok = np.isfinite(e)
    np.testing.assert_allclose(a[ok], e[ok], atol=atol, rtol=rtol, err_msg=what)
    np.testing.assert_array_equal(a[~ok], e[~ok], err_msg=what)


def _check(device, x, targets, il, tl, as_tensors=True, **kw):
    """Loss and gradient of darklib and torch on the same inputs (the gradient for a random
    upstream gradient with reduction='none')."""
    dtype = x.dtype.type
    xd = dl.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    if as_tensors:
        lens_d = dl.tensor(il, device=device), dl.tensor(tl, device=device)
        lens_t = torch.tensor(il), torch.tensor(tl)
    else:
        lens_d = lens_t = tuple(int(v) for v in il), tuple(int(v) for v in tl)
    ld = F.ctc_loss(xd, dl.tensor(targets, device=device), *lens_d, **kw)
    lt = TF.ctc_loss(xt, torch.tensor(targets), *lens_t, **kw)
    assert ld.dtype.name == str(lt.dtype).replace("torch.", "")
    assert ld.device.type == device
    _close(ld.detach().cpu().numpy(), lt.detach().numpy(), dtype, "loss")
    g = rng(7).standard_normal(tuple(lt.shape)).astype(dtype)
    (ld * dl.tensor(g, device=device)).sum().backward()
    (lt * torch.tensor(g)).sum().backward()
    assert xd.grad.dtype == xd.dtype
    _close(xd.grad.cpu().numpy(), xt.grad.numpy(), dtype, "gradient")
    return ld, xd.grad


# ------------------------------------------------------------------ against torch


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("concatenated", [False, True])
def test_ctc_loss_matches_torch(device, dtype, reduction, concatenated):
    x, targets, il, tl = _case(0, 12, 6, 7, 5, dtype)
    tl[1] = 0  # an empty target: all blanks
    if concatenated:
        targets = _concat(targets, tl)
    _check(device, x, targets, il, tl, reduction=reduction)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_lengths_as_tuples_and_int32(device, reduction):
    x, targets, il, tl = _case(1, 9, 4, 5, 4)
    _check(device, x, targets, il, tl, as_tensors=False, reduction=reduction)
    _check(device, x, targets.astype(np.int32), il.astype(np.int32), tl.astype(np.int32))
    _check(device, x, targets.astype(np.uint8), list(il), list(tl))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("blank", [2, 5])
def test_ctc_loss_blank_not_zero(device, blank):
    x, targets, il, tl = _case(2, 10, 5, 6, 4, blank=blank)
    assert 0 in targets  # class 0 is an ordinary label here
    _check(device, x, targets, il, tl, blank=blank, reduction="none")
    _check(device, x, _concat(targets, tl), il, tl, blank=blank)


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_repeated_labels_need_a_blank(device):
    x = _case(3, 7, 4, 4, 1)[0]
    targets = np.array([[1, 1, 1], [1, 1, 1], [2, 2, 3], [1, 2, 1]])
    # 1 1 1 needs 5 frames (1 _ 1 _ 1); 2 2 3 needs 4; 1 2 1 only 3
    il = np.array([5, 4, 4, 3])
    tl = np.array([3, 3, 3, 3])
    loss, _ = _check(device, x, targets, il, tl, reduction="none")
    assert np.isinf(loss.detach().cpu().numpy()[1])  # 4 frames cannot hold 1 _ 1 _ 1
    assert np.isfinite(loss.detach().cpu().numpy()[[0, 2, 3]]).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_impossible_alignments(device, zero_infinity, reduction):
    x, targets, il, tl = _case(4, 8, 4, 5, 4)
    il[1], tl[1] = 2, 4  # a target longer than its input
    il[2], tl[2] = 0, 1  # no frame at all for a label
    il[3], tl[3] = 0, 0  # no frame, no label: loss 0
    loss, grad = _check(
        device, x, targets, il, tl, reduction=reduction, zero_infinity=zero_infinity
    )
    g = grad.cpu().numpy()
    assert not g[il[1] :, 1].any() and not g[:, 2:].any()
    if zero_infinity:
        assert np.isfinite(loss.detach().cpu().numpy()).all() and not g[:, 1].any()
    else:
        assert np.isnan(g[: il[1], 1]).all()  # torch's NaN gradient of an infinite loss


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_unbatched(device, reduction):
    x, targets, _, _ = _case(5, 9, 1, 6, 4)
    xu = x[:, 0]
    ld, gd = _check(device, xu, targets[0], np.array(8), np.array(4), reduction=reduction)
    assert tuple(ld.shape) == ()
    assert tuple(gd.shape) == xu.shape
    _check(device, xu, targets[:1], (9,), (3,), as_tensors=False, reduction=reduction)
    _check(device, xu, targets[:1], np.array([9]), np.array([3]), reduction=reduction)


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_unnormalised_inputs_get_torchs_gradient(device):
    """torch's gradient assumes log-probabilities: exp(x) - posterior, which for inputs
    that are not normalised is the true derivative plus exp(x) on each sample's frames;
    darklib returns torch's values."""
    x, targets, _, _ = _case(6, 6, 3, 4, 3, normalised=False)
    il, tl = np.array([6, 5, 3]), np.array([3, 2, 1])
    _check(device, x, targets, il, tl, reduction="sum")
    xd = dl.tensor(x, device=device, requires_grad=True)
    F.ctc_loss(
        xd, dl.tensor(targets, device=device), tuple(il), tuple(tl), reduction="sum"
    ).backward()
    # (darklib's loss: it equals torch's, test_ctc_loss_matches_torch, and is faster here)
    tg, lens = dl.tensor(targets), (tuple(il), tuple(tl))
    eps, true = 1e-6, np.zeros_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up.reshape(-1)[i] += eps
        down.reshape(-1)[i] -= eps
        f = [
            F.ctc_loss(dl.tensor(v), tg, lens[0], lens[1], reduction="sum").item()
            for v in (up, down)
        ]
        true.reshape(-1)[i] = (f[0] - f[1]) / (2 * eps)
    frames = (np.arange(x.shape[0])[:, None] < il)[:, :, None]
    np.testing.assert_allclose(xd.grad.cpu().numpy(), true + np.exp(x) * frames, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ctc_loss_stable_for_very_unlikely_labels(device, dtype):
    """Log-probabilities far below exp's range: the log-space recursions stay finite
    where a probability-space one would underflow to an infinite loss."""
    x, targets, il, tl = _case(7, 30, 4, 6, 8, dtype)
    x = (x * 60).astype(dtype)  # log-probabilities down to about -1000
    loss, grad = _check(device, x, targets, il, tl, reduction="none")
    assert np.isfinite(loss.detach().cpu().numpy()).all()
    assert not np.isnan(grad.cpu().numpy()).any()


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_larger_float32_batch(device):
    x, targets, il, tl = _case(8, 60, 8, 20, 15, np.float32)
    _check(device, x, _concat(targets, tl), il, tl, reduction="mean")


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_gradcheck_through_log_softmax(device):
    """Finite differences of the loss of log_softmax(z): there torch's formula is the true
    gradient (log_softmax's backward removes the exp(log_probs) term)."""
    _, targets, _, _ = _case(9, 5, 2, 4, 2)
    z = rng(9).standard_normal((5, 2, 4))
    targets = np.array([[1, 1], [3, 2]])
    for red in REDUCTIONS:
        if device == "cpu":  # finite differences on the CPU; on cuda torch's gradient
            gradcheck(
                lambda a, red=red: F.ctc_loss(
                    a.log_softmax(2), dl.tensor(targets), (5, 4), (2, 1), reduction=red
                ),
                z,
            )
            continue
        compare(
            lambda a, red=red: F.ctc_loss(
                a.log_softmax(2), dl.tensor(targets, device=device), (5, 4), (2, 1), reduction=red
            ),
            lambda a, red=red: TF.ctc_loss(
                a.log_softmax(2), torch.tensor(targets), (5, 4), (2, 1), reduction=red
            ),
            z,
            device=device,
            atol=1e-10,
            rtol=1e-9,
        )


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_double_backward(device):
    """create_graph: the first derivative equals the plain backward's (torch's formula) and
    differentiates again (torch raises there): Hessian-vector products against finite
    differences of the first derivative."""
    r = rng(10)
    x0 = r.standard_normal((5, 3, 4))
    targets = np.array([[1, 2, 2], [3, 1, 0], [2, 1, 0]])
    il, tl = (5, 4, 1), (3, 2, 2)  # the last one impossible
    for red, zi in [("none", False), ("mean", True), ("sum", False)]:
        w = r.standard_normal(3) if red == "none" else None
        v = r.standard_normal(x0.shape)
        v[:, 2] = 0  # (the NaN gradient of the impossible sample)

        def first(a, cg=False, red=red, zi=zi, w=w):
            x = dl.tensor(a, device=device, requires_grad=True)
            t = dl.tensor(targets, device=device)
            loss = F.ctc_loss(x, t, il, tl, reduction=red, zero_infinity=zi)
            if w is not None:
                loss = (loss * dl.tensor(w, device=device)).sum()
            return x, dl.autograd.grad(loss, x, create_graph=cg)[0]

        x, g = first(x0, True)
        plain = first(x0)[1].cpu().numpy()
        _close(g.detach().cpu().numpy(), plain, np.float64, "create_graph gradient")
        (h,) = dl.autograd.grad((g * dl.tensor(v, device=device)).sum(), x)
        eps, num = 1e-6, np.zeros_like(x0)
        for i in range(x0.size):
            up, down = x0.copy(), x0.copy()
            up.reshape(-1)[i] += eps
            down.reshape(-1)[i] -= eps
            fu, fd = (np.nansum(first(a)[1].cpu().numpy() * v) for a in (up, down))
            num.reshape(-1)[i] = (fu - fd) / (2 * eps)
        np.testing.assert_allclose(h.cpu().numpy(), num, atol=1e-7, err_msg=f"{red} {zi}")


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_no_gradient_needed(device):
    x, targets, il, tl = _case(11, 6, 2, 4, 2)
    with dl.no_grad():
        loss = F.ctc_loss(
            dl.tensor(x, device=device, requires_grad=True),
            dl.tensor(targets, device=device),
            list(il),
            list(tl),
        )
    assert loss.grad_fn is None
    lt = TF.ctc_loss(torch.tensor(x), torch.tensor(targets), torch.tensor(il), torch.tensor(tl))
    _close(loss.cpu().numpy(), lt.numpy(), np.float64, "loss")


# ------------------------------------------------------------------ module


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_module(device, reduction):
    x, targets, il, tl = _case(12, 8, 3, 5, 3, blank=4)
    il[2], tl[2] = 1, 3
    for zi in (False, True):
        mod = nn.CTCLoss(blank=4, reduction=reduction, zero_infinity=zi)
        ref = torch.nn.CTCLoss(blank=4, reduction=reduction, zero_infinity=zi)
        assert (mod.blank, mod.reduction, mod.zero_infinity) == (4, reduction, zi)
        xd = dl.tensor(x, device=device, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        args_d = [dl.tensor(a, device=device) for a in (targets, il, tl)]
        ld, lt = mod(xd, *args_d), ref(xt, *(torch.tensor(a) for a in (targets, il, tl)))
        _close(ld.detach().cpu().numpy(), lt.detach().numpy(), np.float64, "module loss")
        ld.sum().backward()
        lt.sum().backward()
        _close(xd.grad.cpu().numpy(), xt.grad.numpy(), np.float64, "module gradient")
    assert repr(nn.CTCLoss()) == "CTCLoss()"
    with pytest.raises(ValueError, match="reduction"):
        nn.CTCLoss(reduction="avg")


# ------------------------------------------------------------------ errors


def test_ctc_loss_errors():
    x, targets, il, tl = _case(13, 6, 3, 5, 3, np.float32)
    il, tl = il.copy(), np.array([3, 2, 0])
    xd, td = dl.tensor(x), dl.tensor(targets)
    ild, tld = dl.tensor(il), dl.tensor(tl)
    cases = [
        ((xd.long(), td, ild, tld), {}, TypeError, r"float32 or float64, got .*int64"),
        ((xd.half(), td, ild, tld), {}, TypeError, "float32 or float64"),
        ((xd[None], td, ild, tld), {}, ValueError, r"\(T, N, C\).*\(1, 6, 3, 5\)"),
        ((xd[:0], td, ild, tld), {}, ValueError, "must not be empty"),
        ((xd, td.float(), ild, tld), {}, TypeError, "targets of class indices"),
        ((xd, td, ild.float(), tld), {}, TypeError, "input_lengths must be integral"),
        ((xd, td, ild, tld.double()), {}, TypeError, "target_lengths must be integral"),
        ((xd, td, 6, tld), {}, TypeError, "input_lengths must be an integer tensor"),
        ((xd, td, (6.0, 5.0, 6.0), tld), {}, TypeError, "element 6.0"),
        ((xd, td, ild, tld), {"blank": 5}, IndexError, r"blank .*\[0, 5\).*blank=5"),
        ((xd, td, ild, tld), {"blank": -1}, IndexError, "blank=-1"),
        ((xd, td, dl.tensor([6, -1, 6]), tld), {}, ValueError, "input_lengths .* least 0"),
        ((xd, td, dl.tensor([6, 7, 6]), tld), {}, ValueError, "input_lengths .* at most T = 6"),
        ((xd, td, ild, dl.tensor([3, -1, 0])), {}, ValueError, "target_lengths .* least 0"),
        ((xd, td, dl.tensor([6, 5]), tld), {}, ValueError, "input_lengths .* got 2 for batch"),
        ((xd, td, ild, dl.tensor([1, 2, 3, 0])), {}, ValueError, "target_lengths .* got 4"),
        ((xd, td, ild, dl.tensor([4, 1, 0])), {}, ValueError, r"holds 4 .* \(3, 3\)"),
        ((xd, td[:2], ild, tld), {}, ValueError, r"padded targets \(2, 3\) .* batch size 3"),
        ((xd, dl.tensor([1, 2, 3, 4]), ild, tld), {}, ValueError, "sum\\(target_lengths\\) = 5"),
        ((xd, td[None], ild, tld), {}, ValueError, r"targets of shape .*\(1, 3, 3\)"),
        ((xd[:, 0], td, (6,), (3,)), {}, ValueError, r"unbatched .*\(3, 3\)"),
        ((xd, dl.tensor([[1, 2, 5], [1, 2, 3], [1, 1, 1]]), ild, tld), {}, IndexError, "class 5"),
        ((xd, dl.tensor([[1, 0, 3], [1, 2, 3], [1, 1, 1]]), ild, tld), {}, ValueError, "blank"),
        ((xd, td, ild, tld), {"reduction": "avg"}, ValueError, "reduction"),
        (("x", td, ild, tld), {}, TypeError, "log_probs to be a Tensor"),
    ]
    for args, kw, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            F.ctc_loss(*args, **kw)
        with pytest.raises(RuntimeError):  # torch's exception type too
            F.ctc_loss(*args, **kw)


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_target_longer_than_input_is_inf_not_error(device):
    x, targets, _, _ = _case(14, 4, 2, 5, 3)
    x, targets = dl.tensor(x, device=device), dl.tensor(targets, device=device)
    loss = F.ctc_loss(x, targets, (2, 4), (3, 3), reduction="none")
    assert np.isinf(loss.cpu().numpy()[0])


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_padding_beyond_lengths_is_ignored(device):
    """Values past each target's length (-1 padding, even out of range) are never read."""
    x, targets, il, tl = _case(15, 7, 3, 5, 4)
    tl = np.array([2, 4, 0])
    padded = targets.copy()
    padded[0, 2:] = -1
    padded[2, :] = 99
    il, tl = dl.tensor(il, device=device), dl.tensor(tl, device=device)
    x = dl.tensor(x, device=device)
    a = F.ctc_loss(x, dl.tensor(padded, device=device), il, tl, reduction="none")
    b = F.ctc_loss(x, dl.tensor(targets, device=device), il, tl, reduction="none")
    np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_loss_all_targets_empty(device):
    x = _case(16, 5, 3, 4, 1)[0]
    il, tl = np.array([5, 3, 0]), np.zeros(3, np.int64)
    _check(device, x, np.zeros((3, 0), np.int64), il, tl, reduction="sum")
    _check(device, x, np.zeros((0,), np.int64), il, tl, reduction="none")
