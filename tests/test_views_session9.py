"""Views, in-place updates and mode against torch: findings of session 9's probe, pinned
(each test failed before its fix)."""

import math
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, rng

NAN = float("nan")


def _np(t):
    return None if t is None else t.detach().cpu().numpy()


def _dev(L, device):
    return "cpu" if L is torch else device


def _same(got, want, what):
    if want is None or got is None:
        assert got is None and want is None, (what, got, want)
    else:
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6, err_msg=what)


# ------------------------------------------------------------------ A2: retain_grad on a
# view whose value changed in place: .grad is the gradient of the current value


RETAINED_VIEW_PROGRAMS = {
    # the view changed in place, then used: [12, 12] (it had [36, 36], the old value's)
    "view changed": lambda L, y, v: (v.mul_(3), (v * v).sum()),
    # its base changed in place, then the view used: [12, 12] (it had None and a warning)
    "base changed": lambda L, y, v: (y.mul_(3), (v * v).sum()),
    # the view changed, the loss reads the base: the new view is not in the graph (None)
    "view changed, loss of base": lambda L, y, v: (v.mul_(3), y.sum()),
    # the base reshaped in place, then the view changed and used
    "base reshaped": lambda L, y, v: (y.unsqueeze_(0), v.add_(1), (v * v).sum()),
}


@pytest.mark.parametrize("device", DEVICES)
def test_retain_grad_on_a_view_changed_in_place_gives_the_current_values_gradient(device):
    for name, program in RETAINED_VIEW_PROGRAMS.items():
        got = {}
        for L in (torch, dl):
            x = L.ones(3, requires_grad=True, device=_dev(L, device))
            y = x * 2
            v = y[1:]
            v.retain_grad()
            loss = program(L, y, v)[-1]
            loss.backward()
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # (no "not retained" warning either)
                got[L] = (v.grad, x.grad)
        for ours, theirs in zip(got[dl], got[torch]):
            _same(ours, theirs, name)


# ------------------------------------------------------------------ A6: a non-leaf
# overwritten in place: the leaves it came from get zeros, as torch (they had None)

OVERWRITES = {
    "copy_ from a tensor that requires grad": lambda L, b, w: b.copy_(w * 3),
    "copy_ from a constant": lambda L, b, w: b.copy_(L.ones(3, device=w.device)),
    "fill_ with a 0-d tensor that requires grad": lambda L, b, w: b.fill_(w[0] * 2),
    "fill_": lambda L, b, w: b.fill_(5.0),
    "zero_": lambda L, b, w: b.zero_(),
    "setitem": lambda L, b, w: b.__setitem__(..., w * 3),
    "setitem constant": lambda L, b, w: b.__setitem__(..., 4.0),
    "copy_ into a slice": lambda L, b, w: b[1:].copy_(w[:2]),
}


@pytest.mark.parametrize("device", DEVICES)
def test_an_overwritten_non_leaf_gives_its_leaves_zero_gradients_like_torch(device):
    for name, write in OVERWRITES.items():
        got = {}
        for L in (torch, dl):
            dev = _dev(L, device)
            x = L.tensor([1.0, 2.0, 3.0], requires_grad=True, device=dev)
            w = L.tensor([1.0, 1.0, 1.0], requires_grad=True, device=dev)
            b = x * 2
            write(L, b, w)
            (b * L.tensor([1.0, 2.0, 3.0], device=dev)).sum().backward()
            got[L] = (b, x.grad, w.grad)
        for ours, theirs in zip(got[dl], got[torch]):
            _same(ours, theirs, name)
    # autograd.grad reaches the overwritten leaf too (it said "not used")
    x = dl.ones(3, requires_grad=True, device=device)
    b = x * 2
    b.copy_(dl.ones(3, device=device))
    (g,) = dl.autograd.grad(b.sum(), x)
    assert _np(g).tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------------ A7: an in-place
# result written into a tensor of the graph keeps the tensor's layout

LAYOUT_WRITES = {
    "setitem": lambda L, b: b.__setitem__(..., L.ones(4, 3)),
    "copy_": lambda L, b: b.copy_(L.ones(4, 3)),
    "add_": lambda L, b: b.add_(L.ones(4, 3)),
    "fill_": lambda L, b: b.fill_(2.0),
    "mul_": lambda L, b: b.mul_(2.0),
}


def test_an_inplace_result_keeps_the_layout_of_the_tensor_it_updates():
    for name, write in LAYOUT_WRITES.items():
        got = {}
        for L in (torch, dl):
            x = L.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
            b = x * 1
            b.t_()
            write(L, b)
            with pytest.raises(RuntimeError, match="view"):
                b.view(-1)  # not contiguous: no view of it is flat (it was, in darklib)
            b.sum().backward()
            got[L] = (b.is_contiguous(), b.stride(), _np(b).tolist(), _np(x.grad).tolist())
        assert got[dl] == got[torch], name


# ------------------------------------------------------------------ B1: in-place view
# ops (t_, unsqueeze_, squeeze_, transpose_) on a tensor that others view


def test_an_inplace_view_op_beside_a_detached_alias_runs_like_torch():
    got = {}
    for L in (torch, dl):
        x = L.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        b = x * 2
        d = b.detach()
        b.t_()  # (refused: "other tensors are views of this one")
        d.mul_(3)  # the alias keeps its own shape over the same memory
        assert tuple(b.shape) == (3, 2) and tuple(d.shape) == (2, 3)
        got[L] = (_np(b).tolist(), _np(d).tolist())
    assert got[dl] == got[torch]


def _weights(L, t, device):
    return L.tensor(
        np.arange(t.numel(), dtype=np.float64).reshape(tuple(t.shape)) + 1, device=device
    )


# each program: x (2, 3, float64, requires grad) -> b = x * 2 -> ... ; returns the tensors
# whose values and loss (sum of t * t * weights) are compared, with x.grad
REBUILT_VIEW_PROGRAMS = {
    "unsqueeze_, then the view changed": lambda L, b: (
        (v := b[0]),
        b.unsqueeze_(0),
        v.mul_(2),
        [b],
    )[-1],
    "unsqueeze_, then both used": lambda L, b: ((v := b[0]), b.unsqueeze_(0), [b, v])[-1],
    "t_, then the view changed": lambda L, b: ((v := b[:, 1]), b.t_(), v.mul_(3), [b])[-1],
    "t_, then the base changed": lambda L, b: ((v := b[:, 1]), b.t_(), b.mul_(3), [v])[-1],
    "views before and between reshapes": lambda L, b: (
        (v := b[1]),
        b.t_(),
        b.unsqueeze_(1),
        (w := b[2]),
        b.squeeze_(),
        v.add_(1),
        w.mul_(2),
        [b, v, w],
    )[-1],
    "a flat view, then t_": lambda L, b: (
        (v := b.view(6)),
        b.t_(),
        v.mul_(L.arange(6.0, device=b.device)),
        [b.contiguous()],
    )[-1],
    "transpose_ twice": lambda L, b: (
        (v := b[1]),
        b.transpose_(0, 1),
        (w := b[0]),
        b.transpose_(1, 0),
        w.mul_(10),
        v.add_(1),
        [b],
    )[-1],
    "a view of an expanded view": lambda L, b: (
        (v := b.unsqueeze(0).expand(2, 2, 3)[1]),
        b.t_(),
        v.mul_(4),
        [b, v],
    )[-1],
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", list(REBUILT_VIEW_PROGRAMS))
def test_inplace_view_ops_on_a_viewed_tensor_give_torchs_values_and_gradients(device, program):
    got = {}
    for L in (torch, dl):
        dev = _dev(L, device)
        x = L.tensor(np.arange(6.0).reshape(2, 3) + 1, requires_grad=True, device=dev)
        b = x * 2
        outs = REBUILT_VIEW_PROGRAMS[program](L, b)
        sum(((t * t * _weights(L, t, dev)).sum() for t in outs), L.zeros((), device=dev)).backward()
        got[L] = [_np(t) for t in outs] + [_np(x.grad)]
    for ours, theirs in zip(got[dl], got[torch]):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs)


def test_inplace_view_ops_on_a_viewed_tensor_without_grad_like_torch():
    got = {}
    for L in (torch, dl):
        a = L.tensor(np.arange(6.0).reshape(2, 3))
        v = a[:, 1]
        a.t_()
        w = L.ones(3, 2, requires_grad=True)
        a.mul_(w)  # the base joins a graph after it was reshaped: the view follows it back
        (v * L.tensor([1.0, 5.0])).sum().backward()
        got[L] = (_np(a).tolist(), _np(v).tolist(), _np(w.grad).tolist())
    assert got[dl] == got[torch]


# ------------------------------------------------------------------ B2: writes through an
# expanded tensor: where no element is written twice (a slice that does not repeat, a
# fill), they reach the expanded tensor's memory as torch's; the others are refused with
# torch's message

EXPANDED_WRITES = {
    "mul_ of a row": (lambda L, a: a.expand(2, 3)[0].mul_(2), True),
    "setitem of an element": (lambda L, a: a.expand(2, 3)[0, 0].__setitem__((), 5.0), True),
    "setitem through a row": (lambda L, a: a.expand(2, 3).__setitem__((0, 0), 5.0), True),
    "setitem of a row": (lambda L, a: a.expand(2, 3).__setitem__(0, 5.0), True),
    "fill_": (lambda L, a: a.expand(2, 3).fill_(0), True),
    "zero_": (lambda L, a: a.expand(2, 3).zero_(), True),
    "copy_ into a row": (lambda L, a: a.expand(2, 3)[0].copy_(L.tensor([1.0, 2, 3])), True),
    "fill_ of a repeating column": (lambda L, a: a.expand(2, 3)[:, 0].fill_(7), True),
    "mul_ of an element": (lambda L, a: a.expand(2, 3)[0, 0].mul_(5), True),
    "index_put_ with index tensors": (
        lambda L, a: a.expand(2, 3).__setitem__(
            (L.tensor([0, 1]), L.tensor([0, 0])), L.tensor([3.0, 4.0])
        ),
        True,
    ),
    "mul_": (lambda L, a: a.expand(2, 3).mul_(2), False),
    "add_": (lambda L, a: a.expand(2, 3).add_(1), False),
    "clamp_": (lambda L, a: a.expand(2, 3).clamp_(0, 0.5), False),
    "copy_": (lambda L, a: a.expand(2, 3).copy_(L.zeros(2, 3)), False),
    "copy_ broadcast": (lambda L, a: a.expand(2, 3).copy_(L.zeros(3)), False),
    "mul_ of a repeating column": (lambda L, a: a.expand(2, 3)[:, 0].mul_(7), False),
    "copy_ into a repeating column": (
        lambda L, a: a.expand(2, 3)[:, 0].copy_(L.tensor([4.0, 5.0])),
        False,
    ),
}


@pytest.mark.parametrize("device", DEVICES)
def test_writes_through_an_expanded_tensor_like_torch(device):
    for name, (write, allowed) in EXPANDED_WRITES.items():
        if name == "index_put_ with index tensors" and device != "cpu":
            continue  # (repeated indices: which write lands is the GPU's choice)
        got = {}
        for L in (torch, dl):
            a = L.ones(3, device=_dev(L, device))
            if allowed:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # (torch: index_put_ is "deprecated")
                    write(L, a)
                got[L] = _np(a).tolist()
            else:
                with pytest.raises(RuntimeError, match="refers to a single memory location"):
                    write(L, a)
        if allowed:
            assert got[dl] == got[torch], name


@pytest.mark.parametrize("device", DEVICES)
def test_writes_through_an_expanded_view_in_a_graph_like_torch(device):
    got = {}
    for L in (torch, dl):
        x = L.tensor([1.0, 2.0, 3.0], requires_grad=True, device=_dev(L, device))
        a = x * 1
        a.expand(2, 3)[1].mul_(L.tensor([2.0, 3.0, 4.0], device=a.device))  # (was refused)
        c = x * 1
        c.expand(2, 3).fill_(5.0)  # a fill: one value everywhere (torch's backward fails)
        (a * a).sum().backward()
        got[L] = (_np(a).tolist(), _np(x.grad).tolist(), _np(c).tolist())
        # a fill whose value requires grad would count the shared elements twice: refused
        w = L.tensor(2.0, requires_grad=True, device=_dev(L, device))
        with pytest.raises(RuntimeError, match="refers to a single memory location"):
            L.ones(3, device=_dev(L, device)).expand(2, 3).fill_(w)
    assert got[dl] == got[torch]


# ------------------------------------------------------------------ A5: mode counts each
# NaN as a value of its own (they were one value: [3, nan, 3, nan, nan] gave nan)


@pytest.mark.parametrize("device", DEVICES)
def test_mode_counts_each_nan_on_its_own_like_torch(device):
    for row, want in (
        ([3.0, NAN, 3.0, NAN, NAN], 3.0),  # (was nan; torch 3)
        ([1.0, NAN, NAN, 2.0], 1.0),  # (was nan; torch 1)
    ):
        v, i = dl.mode(dl.tensor(row, device=device))
        assert v.item() == want == torch.mode(torch.tensor(row))[0].item(), row
        assert row[i.item()] == want and i.item() == max(k for k, x in enumerate(row) if x == want)
    # (torch's sort, which NaNs disturb, splits runs: it gives 5 and NaN here)
    assert dl.mode(dl.tensor([5.0, 5.0, NAN, 1.0, 1.0, 1.0], device=device))[0].item() == 1.0
    assert dl.mode(dl.tensor([NAN, 2.0, NAN, 2.0, 1.0], device=device))[0].item() == 2.0
    v, i = dl.mode(dl.tensor([NAN, NAN], device=device))
    assert math.isnan(v.item()) and i.item() in (0, 1)
    r = rng(9)
    for n in (3, 9, 17, 300):  # the smallest most frequent number, each NaN counted once
        x = r.integers(0, 3, size=(6, n)).astype(np.float64)
        x[r.random(x.shape) < 0.2] = np.nan
        x[:, -3:] = 0.0  # (a number in every row beats each NaN's count of 1)
        v = _np(dl.mode(dl.tensor(x, device=device), 1)[0])
        for row, got in zip(x, v):
            nums = row[~np.isnan(row)]
            values, counts = np.unique(nums, return_counts=True)
            assert got == values[np.argmax(counts)]
