"""Bad-input audit (session 13): darklib's most used entry points fed wrong input.

The project's rule: bad input gets a clear, specific error (what, and where: the op or
layer, the offending shapes or values), never a silent wrong answer, a hang, or a raw
NumPy/Python internal error. Each case below feeds one bad input and checks that darklib
raises the right exception family (darklib.errors' classes are both the Python exception
and torch's RuntimeError) with a message that names the op/layer and the shapes or values
involved. Where torch (the oracle) also refuses the input, that is checked too, so that a
case cannot drift into darklib refusing something torch accepts.

Areas: tensor creation, shape methods, indexing, arithmetic and products (matmul, bmm,
einsum), reductions, cat/stack, nn layers (constructors and forward), losses, optimizers,
lr schedulers, data loading, save/load and load_state_dict, autograd misuse.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import darklib as dl
from darklib.errors import InvalidType, InvalidValue, OutOfRange

torch = pytest.importorskip("torch")


def _case(id_, fn, exc, match, torch_raises=True):
    """A case: ``fn(m)`` runs with ``m`` = darklib (must raise ``exc`` matching ``match``)
    and, when ``torch_raises``, with ``m`` = torch (must raise too)."""
    return pytest.param(fn, exc, match, torch_raises, id=id_)


def _check(fn, exc, match, torch_raises):
    with pytest.raises(exc, match="(?s)" + match):  # (messages may span lines)
        fn(dl)
    if torch_raises:  # (torch's MultiheadAttention asserts; its load(None) hits an AttributeError)
        with pytest.raises(
            (
                RuntimeError,
                ValueError,
                TypeError,
                IndexError,
                KeyError,
                NotImplementedError,
                AssertionError,
                AttributeError,
            )
        ):
            fn(torch)


def _T(m, *shape):
    return m.arange(int(np.prod(shape)), dtype=m.float32).reshape(*shape)


# ------------------------------------------------------------------ creation

CREATION = [
    _case(
        "tensor-ragged",
        lambda m: m.tensor([[1, 2], [3]]),
        InvalidValue,
        r"tensor\(\).*length 2 at dim 1 \(got 1\).*ragged",
    ),
    _case("tensor-str", lambda m: m.tensor("abc"), InvalidType, r"tensor.*<U3"),
    _case("zeros-neg", lambda m: m.zeros(-1, 3), InvalidValue, r"zeros\(\).*-1.*\(-1, 3\)"),
    _case("zeros-float", lambda m: m.zeros(2.5), InvalidType, r"zeros\(\).*size.*float"),
    _case("full-neg", lambda m: m.full((-1,), 2.0), InvalidValue, r"full\(\).*negative.*-1"),
    _case("arange-step0", lambda m: m.arange(0, 10, 0), RuntimeError, r"arange.*step.*nonzero"),
    _case(
        "arange-sign",
        lambda m: m.arange(0, 10, -1),
        RuntimeError,
        r"arange.*step sign.*start=0, end=10, step=-1",
    ),
    _case("arange-nan", lambda m: m.arange(0, float("nan")), InvalidValue, r"arange\(\).*0 -> nan"),
    _case("linspace-neg", lambda m: m.linspace(0, 1, -1), InvalidValue, r"linspace\(\).*steps.*-1"),
    _case("eye-neg", lambda m: m.eye(-1), InvalidValue, r"eye\(\).*n.*-1"),
    _case("randn-neg", lambda m: m.randn(2, -1), InvalidValue, r"randn\(\).*-1.*\(2, -1\)"),
    _case("randn-int", lambda m: m.randn(2, dtype=m.int64), RuntimeError, r"randn.*int64.*float"),
    _case(
        "randint-low-ge-high",
        lambda m: m.randint(5, 5, (3,)),
        RuntimeError,
        r"randint.*low=5, high=5",
    ),
    _case("randperm-neg", lambda m: m.randperm(-1), InvalidValue, r"randperm\(\).*-1"),
    _case(
        "tensor-int8-overflow",
        lambda m: m.tensor([300], dtype=m.int8),
        RuntimeError,
        r"int8.*overflow.*300",
    ),
    _case(
        "multinomial-too-many",
        lambda m: m.multinomial(m.tensor([0.5, 0.5]), 3),
        RuntimeError,
        r"multinomial\(\).*3 samples.*2 categories",
    ),
    _case(
        "zeros-huge",
        lambda m: m.zeros(10**7, 10**6),
        dl.errors.OutOfMemory,
        r"zeros\(\).*\[10000000, 1000000\].*bytes",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", CREATION)
def test_creation_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


# ------------------------------------------------------------------ shape methods

SHAPE = [
    _case(
        "view-wrong",
        lambda m: _T(m, 2, 3).view(4, 2),
        RuntimeError,
        r"view\(\).*\[4, 2\].*\[2, 3\]",
    ),
    _case(
        "view-two-inferred",
        lambda m: _T(m, 2, 3).view(-1, -1),
        RuntimeError,
        r"view\(\).*only one dimension can be inferred",
    ),
    _case(
        "view-noncontig",
        lambda m: _T(m, 2, 3).t().view(6),
        RuntimeError,
        r"view\(\).*\[3, 2\].*reshape",
    ),
    # S13: NumPy's "When changing to a larger dtype..." named no op, dtype or shape
    _case(
        "view-dtype-size",
        lambda m: m.ones(3).view(m.float64),
        InvalidValue,
        r"view\(\).*float32.*\[3\].*float64.*3 \* 4.*divisible by 8",
    ),
    _case(
        "reshape-wrong",
        lambda m: _T(m, 2, 3).reshape(5),
        RuntimeError,
        r"reshape\(\).*\[5\].*\[2, 3\]",
    ),
    _case(
        "permute-dup",
        lambda m: _T(m, 2, 3).permute(0, 0),
        RuntimeError,
        r"permute\(\).*duplicate.*\[0, 0\]",
    ),
    _case(
        "permute-len",
        lambda m: _T(m, 2, 3).permute(0),
        RuntimeError,
        r"permute\(\).*2 dims.*\[2, 3\]",
    ),
    _case(
        "transpose-dim",
        lambda m: _T(m, 2, 3).transpose(0, 2),
        OutOfRange,
        r"transpose\(\).*\[-2, 1\].*got 2",
    ),
    _case("t-3d", lambda m: _T(m, 2, 3, 4).t(), RuntimeError, r"t\(\).*3D.*\[2, 3, 4\]"),
    _case(
        "expand-mismatch",
        lambda m: _T(m, 2, 3).expand(4, 3),
        RuntimeError,
        r"expand\(\).*\(4\).*\(2\).*\[4, 3\]",
    ),
    # S13: a negative size fell through to "expand: shapes (1, 3) do not broadcast"
    _case(
        "expand-negative",
        lambda m: _T(m, 1, 3).expand(-2, 3),
        InvalidValue,
        r"expand\(\).*-2 at dimension 0.*\[-2, 3\].*\[1, 3\]",
    ),
    _case(
        "repeat-fewer",
        lambda m: _T(m, 2, 3).repeat(2),
        RuntimeError,
        r"repeat\(\).*\[2\].*shape \[2, 3\]",
    ),
    # S13: repeat_interleave(-1) said "got [3]" (the input's length, not the bad value)
    _case(
        "repeat-interleave-neg",
        lambda m: m.ones(3).repeat_interleave(-1),
        RuntimeError,
        r"repeat_interleave\(\).*-1 \(negative\).*\[3\]",
    ),
    _case(
        "repeat-interleave-len",
        lambda m: m.ones(3).repeat_interleave(m.tensor([1, 2])),
        RuntimeError,
        r"repeat_interleave\(\).*shape \[2\].*\[3\]",
    ),
    _case("squeeze-dim", lambda m: _T(m, 2, 3).squeeze(3), OutOfRange, r"squeeze\(\).*got 3"),
    _case(
        "unflatten",
        lambda m: _T(m, 2, 6).unflatten(1, (4, 2)),
        RuntimeError,
        r"unflatten\(\).*\[4, 2\].*\(6\)",
    ),
    _case(
        "narrow-oob",
        lambda m: _T(m, 5).narrow(0, 3, 4),
        RuntimeError,
        r"narrow\(\).*\(3\).*\(4\).*\(5\)",
    ),
    _case("split-sum", lambda m: _T(m, 5).split([2, 2]), RuntimeError, r"split\(\).*\[2, 2\].*5"),
    _case("chunk-0", lambda m: _T(m, 5).chunk(0), RuntimeError, r"chunk\(\).*0"),
    _case(
        "flip-dup", lambda m: m.zeros(2, 2).flip(0, 0), RuntimeError, r"flip\(\).*dim 0.*multiple"
    ),
    _case(
        "unfold-too-big",
        lambda m: m.zeros(4).unfold(0, 5, 1),
        RuntimeError,
        r"unfold\(\).*size 5.*\(4,\)",
    ),
    _case("item-multi", lambda m: m.zeros(2).item(), InvalidValue, r"item\(\).*\(2,\)"),
    _case(
        "numpy-requires-grad",
        lambda m: m.zeros(2, requires_grad=True).numpy(),
        RuntimeError,
        r"numpy\(\).*requires grad.*detach",
    ),
    _case(
        "requires-grad-int",
        lambda m: m.zeros(2, dtype=m.int64).requires_grad_(),
        RuntimeError,
        r"floating.*int64",
    ),
    _case(
        "copy-shape", lambda m: m.zeros(2).copy_(m.ones(3)), RuntimeError, r"copy_.*\(3,\).*\(2,\)"
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", SHAPE)
def test_shape_methods_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


# ------------------------------------------------------------------ indexing

INDEXING = [
    _case(
        "int-oob",
        lambda m: _T(m, 3)[5],
        OutOfRange,
        r"index 5 is out of bounds for dimension 0 with size 3",
    ),
    _case("too-many", lambda m: _T(m, 3)[0, 0], OutOfRange, r"too many indices.*\[3\]"),
    _case(
        "tensor-oob",
        lambda m: _T(m, 3)[m.tensor([0, 5])],
        OutOfRange,
        r"index 5 is out of bounds.*size 3",
    ),
    _case(
        "float-index",
        lambda m: _T(m, 3)[m.tensor([0.0, 1.0])],
        OutOfRange,
        r"long, int or bool.*float32",
    ),
    _case(
        "mask-shape", lambda m: _T(m, 3)[m.tensor([True, False])], OutOfRange, r"mask \[2\].*\[3\]"
    ),
    _case(
        "setitem-shape",
        lambda m: _T(m, 3).__setitem__(slice(None), m.ones(2)),
        RuntimeError,
        r"index_put.*\[2\]",
    ),
    _case(
        "index-select-oob",
        lambda m: _T(m, 3).index_select(0, m.tensor([3])),
        OutOfRange,
        r"index_select\(\).*index 3.*size 3",
    ),
    _case(
        "index-select-float",
        lambda m: _T(m, 3).index_select(0, m.tensor([0.0])),
        RuntimeError,
        r"index_select\(\).*float32",
    ),
    _case(
        "gather-oob",
        lambda m: _T(m, 2, 3).gather(1, m.tensor([[0, 3]])),
        OutOfRange,
        r"gather\(\).*index 3.*dimension 1 with size 3",
    ),
    _case(
        "gather-rank",
        lambda m: _T(m, 2, 3).gather(1, m.tensor([0, 1])),
        RuntimeError,
        r"gather\(\).*\[2\].*\[2, 3\]",
    ),
    _case(
        "scatter-oob",
        lambda m: m.zeros(2, 3).scatter(1, m.tensor([[5]]), 1.0),
        OutOfRange,
        r"scatter\(\).*index 5.*size 3",
    ),
    _case(
        "scatter-float",
        lambda m: m.zeros(2, 3).scatter(1, m.tensor([[1.0]]), 1.0),
        RuntimeError,
        r"scatter\(\).*float32",
    ),
    _case(
        "scatter-add-dtype",
        lambda m: m.zeros(3).scatter_add(0, m.tensor([1]), m.ones(1, dtype=m.float64)),
        RuntimeError,
        r"scatter_add\(\).*float64.*float32",
    ),
    _case(
        "index-add-shape",
        lambda m: m.zeros(3, 2).index_add(0, m.tensor([1]), m.ones(1, 3)),
        RuntimeError,
        r"index_add\(\).*\[1, 3\].*\[3, 2\]",
    ),
    _case(
        "masked-fill-int-mask",
        lambda m: m.zeros(3).masked_fill(m.tensor([1, 0, 1]), 1.0),
        RuntimeError,
        r"masked_fill\(\).*boolean.*int64",
    ),
    _case(
        "masked-fill-shape",
        lambda m: m.zeros(3).masked_fill(m.tensor([True, False]), 1.0),
        RuntimeError,
        r"masked_fill\(\).*\[2\].*\[3\]",
    ),
    _case(
        "where-float-cond",
        lambda m: m.where(m.tensor([1.0, 0.0]), m.ones(2), m.zeros(2)),
        InvalidType,
        r"where\(\).*boolean.*float32",
    ),
    _case(
        "take-oob", lambda m: _T(m, 3).take(m.tensor([3])), OutOfRange, r"take\(\).*index 3.*size 3"
    ),
    _case(
        "one-hot-oob",
        lambda m: m.nn.functional.one_hot(m.tensor([0, 3]), 3),
        InvalidValue,
        r"one_hot.*num_classes=3.*3",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", INDEXING)
def test_indexing_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


# ------------------------------------------------------------------ arithmetic, products

ARITH = [
    _case(
        "add-broadcast",
        lambda m: m.ones(2, 3) + m.ones(3, 2),
        RuntimeError,
        r"add: shapes \(2, 3\), \(3, 2\) do not broadcast",
    ),
    _case(
        "add-inplace-grow",
        lambda m: m.ones(1, 3).add_(m.ones(2, 3)),
        RuntimeError,
        r"add_.*\(2, 3\).*\(1, 3\)",
    ),
    _case(
        "add-inplace-int",
        lambda m: m.ones(3, dtype=m.int64).add_(m.ones(3)),
        RuntimeError,
        r"add_.*float32.*int64",
    ),
    _case("add-str", lambda m: m.ones(3) + "a", InvalidType, r"str.*'a'"),
    # S13: a tensor alpha gave "the truth value of a tensor with 2 elements is ambiguous"
    _case(
        "add-alpha-tensor",
        lambda m: m.add(m.ones(3), m.ones(3), alpha=m.ones(2)),
        InvalidType,
        r"add\(\).*'alpha'.*number.*Tensor",
    ),
    _case(
        "sub-bool",
        lambda m: m.ones(3, dtype=m.bool) - m.ones(3, dtype=m.bool),
        RuntimeError,
        r"sub:.*bool",
    ),
    _case(
        "int-div-zero",
        lambda m: m.ones(3, dtype=m.int64) // 0,
        RuntimeError,
        r"ZeroDivisionError.*div",
    ),
    _case(
        "matmul-inner",
        lambda m: m.ones(2, 3) @ m.ones(4, 5),
        RuntimeError,
        r"matmul: \(2, 3\) @ \(4, 5\).*3 and 4",
    ),
    _case(
        "matmul-batch",
        lambda m: m.ones(2, 3, 4) @ m.ones(3, 4, 5),
        RuntimeError,
        r"matmul.*batch.*\(2,\).*\(3,\)",
    ),
    _case(
        "matmul-dtype",
        lambda m: m.ones(2, 3) @ m.ones(3, 2, dtype=m.float64),
        RuntimeError,
        r"matmul.*float32.*float64",
    ),
    _case(
        "mm-3d", lambda m: m.mm(m.ones(2, 3, 4), m.ones(4, 5)), RuntimeError, r"mm:.*\(2, 3, 4\)"
    ),
    _case(
        "bmm-2d", lambda m: m.bmm(m.ones(2, 3), m.ones(3, 2)), RuntimeError, r"bmm:.*3-D.*\(2, 3\)"
    ),
    _case(
        "bmm-batch",
        lambda m: m.bmm(m.ones(2, 3, 4), m.ones(3, 4, 5)),
        RuntimeError,
        r"bmm:.*\(2, 3, 4\).*\(3, 4, 5\)",
    ),
    _case(
        "dot-2d", lambda m: m.dot(m.ones(2, 3), m.ones(2, 3)), RuntimeError, r"dot:.*1-D.*\(2, 3\)"
    ),
    # S13: a subscript size mismatch read "einsum: shapes (2, 3), (4, 5) do not
    # broadcast: the size of tensor a (3) must match the size of tensor b (5)"
    _case(
        "einsum-subscript-size",
        lambda m: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(4, 5)),
        InvalidValue,
        r"einsum\(\).*subscript 'j' has size 4 for operand 1.*size 3.*operand 0",
    ),
    _case(
        "einsum-ellipsis-size",
        lambda m: m.einsum("...ij,...jk->...ik", m.ones(2, 2, 3), m.ones(3, 3, 4)),
        InvalidValue,
        r"einsum\(\).*ellipsis.*size 3 for operand 1.*size 2",
    ),
    _case(
        "einsum-operands",
        lambda m: m.einsum("ij,jk->ik", m.ones(2, 3)),
        RuntimeError,
        r"einsum\(\).*2 operands, got 1",
    ),
    _case(
        "einsum-rank",
        lambda m: m.einsum("ij->i", m.ones(2, 3, 4)),
        RuntimeError,
        r"einsum\(\).*'ij'.*3 dimensions",
    ),
    _case(
        "tensordot",
        lambda m: m.tensordot(m.ones(2, 3), m.ones(4, 5), dims=1),
        InvalidValue,
        r"tensordot\(\).*size 3.*size 4",
    ),
    _case(
        "linalg-inv-nonsquare",
        lambda m: m.linalg.inv(m.ones(2, 3)),
        InvalidValue,
        r"linalg.inv.*2 by 3",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", ARITH)
def test_arithmetic_and_products_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


def test_einsum_size_one_still_broadcasts():
    """The S13 subscript check lets a size-1 dimension broadcast, as torch's einsum does."""
    a, b = np.ones((2, 1), np.float32), np.ones((4, 5), np.float32)
    got = dl.einsum("ij,jk->ik", dl.tensor(a), dl.tensor(b))
    want = torch.einsum("ij,jk->ik", torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(got.numpy(), want.numpy())


# ------------------------------------------------------------------ reductions, cat/stack

REDUCE = [
    _case("sum-dim", lambda m: _T(m, 2, 3).sum(2), OutOfRange, r"sum\(\).*\[-2, 1\].*got 2"),
    _case("sum-dup", lambda m: _T(m, 2, 3).sum((0, 0)), RuntimeError, r"sum\(\).*dim 0.*multiple"),
    _case(
        "mean-int", lambda m: m.ones(2, 3, dtype=m.int64).mean(), RuntimeError, r"mean\(\).*int64"
    ),
    _case("max-empty", lambda m: m.ones(0).max(), RuntimeError, r"max\(\).*\[0\]"),
    _case("argmax-empty", lambda m: m.ones(0).argmax(), OutOfRange, r"argmax\(\).*\[0\]"),
    _case("var-int", lambda m: m.ones(2, 3, dtype=m.int64).var(), RuntimeError, r"var\(\).*int64"),
    _case("softmax-dim", lambda m: _T(m, 2, 3).softmax(2), OutOfRange, r"softmax\(\).*got 2"),
    _case(
        "softmax-int",
        lambda m: m.ones(2, 3, dtype=m.int64).softmax(1),
        NotImplementedError,
        r"softmax\(\).*int64",
    ),
    _case("topk-k", lambda m: _T(m, 3).topk(4), RuntimeError, r"topk\(\).*k=4.*size 3"),
    _case("quantile-q", lambda m: _T(m, 3).quantile(1.5), RuntimeError, r"quantile\(\).*1.5"),
    _case("cat-empty", lambda m: m.cat([]), InvalidValue, r"cat\(\).*non-empty"),
    _case(
        "cat-mismatch",
        lambda m: m.cat([m.ones(2, 3), m.ones(2, 4)]),
        RuntimeError,
        r"cat\(\).*\[2, 3\].*\[2, 4\]",
    ),
    _case(
        "cat-rank",
        lambda m: m.cat([m.ones(2, 3), m.ones(3)]),
        RuntimeError,
        r"cat\(\).*\[2, 3\].*\[3\]",
    ),
    _case(
        "cat-non-tensor",
        lambda m: m.cat([m.ones(2), [1, 2]]),
        InvalidType,
        r"cat\(\).*list at position 1",
    ),
    _case(
        "cat-0d",
        lambda m: m.cat([m.tensor(1.0), m.tensor(2.0)]),
        RuntimeError,
        r"cat\(\).*zero-dimensional",
    ),
    _case("stack-empty", lambda m: m.stack([]), InvalidValue, r"stack\(\).*non-empty"),
    _case(
        "stack-mismatch",
        lambda m: m.stack([m.ones(2, 3), m.ones(3, 2)]),
        RuntimeError,
        r"stack\(\).*\[2, 3\].*\[3, 2\]",
    ),
    _case(
        "broadcast-tensors",
        lambda m: m.broadcast_tensors(m.ones(2), m.ones(3)),
        RuntimeError,
        r"broadcast.*\(2,\).*\(3,\)",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", REDUCE)
def test_reductions_and_joins_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


# ------------------------------------------------------------------ nn layers


def _R(m, *shape, dtype=None):
    x = m.ones(*shape)
    return x if dtype is None else x.to(dtype)


def _mha(m, q, k, v, **kw):
    return m.nn.MultiheadAttention(6, 2)(q, k, v, **kw)


NN = [
    _case(
        "linear-in",
        lambda m: m.nn.Linear(4, 3)(_R(m, 2, 5)),
        RuntimeError,
        r"Linear\(in_features=4.*last dimension 4.*\(2, 5\)",
    ),
    _case(
        "linear-f64",
        lambda m: m.nn.Linear(4, 3)(_R(m, 2, 4, dtype=m.float64)),
        RuntimeError,
        r"linear: input is float64 but weight is float32",
    ),
    _case(
        "linear-int",
        lambda m: m.nn.Linear(4, 3)(m.ones(2, 4, dtype=m.int64)),
        RuntimeError,
        r"linear: input is int64",
    ),
    _case("linear-neg", lambda m: m.nn.Linear(-1, 3), InvalidValue, r"Linear: in_features.*-1"),
    _case(
        "conv2d-rank",
        lambda m: m.nn.Conv2d(3, 4, 3)(_R(m, 5, 5)),
        RuntimeError,
        r"Conv2d\(3, 4.*4-D.*\(5, 5\)",
    ),
    _case(
        "conv2d-channels",
        lambda m: m.nn.Conv2d(3, 4, 3)(_R(m, 1, 2, 5, 5)),
        RuntimeError,
        r"Conv2d\(3, 4.*3 channels.*\(1, 2, 5, 5\)",
    ),
    # S13: a 4-D input to Conv3d is unbatched (C, D, H, W); the message said "expected 3
    # channels, got (1, 3, 5, 5)", which has 3 at dim 1
    _case(
        "conv3d-unbatched-channels",
        lambda m: m.nn.Conv3d(3, 4, 3)(_R(m, 1, 3, 5, 5)),
        RuntimeError,
        r"Conv3d\(3, 4.*\(1, 3, 5, 5\).*unbatched 4-D.*1 channels",
    ),
    _case(
        "conv2d-kernel-big",
        lambda m: m.nn.Conv2d(3, 4, 7)(_R(m, 1, 3, 5, 5)),
        RuntimeError,
        r"conv2d: kernel \(7, 7\).*\(5, 5\)",
    ),
    _case(
        "conv2d-groups-0",
        lambda m: m.nn.Conv2d(4, 4, 3, groups=0),
        InvalidValue,
        r"Conv2d: groups.*0",
    ),
    _case(
        "conv2d-groups-div",
        lambda m: m.nn.Conv2d(3, 4, 3, groups=2),
        InvalidValue,
        r"Conv2d: in_channels=3.*groups=2",
    ),
    _case(
        "conv2d-f64",
        lambda m: m.nn.Conv2d(3, 4, 3)(_R(m, 1, 3, 5, 5, dtype=m.float64)),
        RuntimeError,
        r"conv2d: input is float64 but weight is float32",
    ),
    _case(
        "conv1d-channels",
        lambda m: m.nn.Conv1d(3, 4, 3)(_R(m, 1, 4, 5)),
        RuntimeError,
        r"Conv1d\(3, 4.*3 channels.*\(1, 4, 5\)",
    ),
    _case(
        "convT2d-channels",
        lambda m: m.nn.ConvTranspose2d(3, 4, 3)(_R(m, 1, 2, 5, 5)),
        RuntimeError,
        r"ConvTranspose2d\(3, 4.*3 channels.*\(1, 2, 5, 5\)",
    ),
    _case(
        "bn2d-channels",
        lambda m: m.nn.BatchNorm2d(3)(_R(m, 2, 4, 5, 5)),
        InvalidValue,
        r"BatchNorm2d\(3.*3 channels.*\(2, 4, 5, 5\)",
    ),
    _case(
        "bn1d-rank",
        lambda m: m.nn.BatchNorm1d(3)(_R(m, 2, 3, 4, 5)),
        InvalidValue,
        r"BatchNorm1d\(3.*2-D.*3-D.*\(2, 3, 4, 5\)",
    ),
    _case(
        "bn1d-batch1",
        lambda m: m.nn.BatchNorm1d(3)(_R(m, 1, 3)),
        InvalidValue,
        r"batch_norm: .*more than 1 value per channel.*\(1, 3\)",
    ),
    _case(
        "layernorm-shape",
        lambda m: m.nn.LayerNorm(5)(_R(m, 2, 4)),
        RuntimeError,
        r"LayerNorm\(\(5,\).*\(5,\).*\(2, 4\)",
    ),
    _case(
        "groupnorm-div",
        lambda m: m.nn.GroupNorm(3, 4),
        InvalidValue,
        r"GroupNorm: num_channels=4.*num_groups=3",
    ),
    _case(
        "groupnorm-channels",
        lambda m: m.nn.GroupNorm(2, 4)(_R(m, 2, 6, 3)),
        RuntimeError,
        r"GroupNorm\(2, 4.*\(N, 4, \*\).*\(2, 6, 3\)",
    ),
    _case(
        "embedding-oob",
        lambda m: m.nn.Embedding(5, 3)(m.tensor([5])),
        OutOfRange,
        r"embedding: index 5.*5 embeddings",
    ),
    _case(
        "embedding-float",
        lambda m: m.nn.Embedding(5, 3)(m.tensor([1.0])),
        InvalidType,
        r"embedding: .*float32",
    ),
    _case(
        "lstm-input-size",
        lambda m: m.nn.LSTM(4, 3)(_R(m, 5, 2, 6)),
        RuntimeError,
        r"LSTM: .*Expected 4, got 6.*\(5, 2, 6\)",
    ),
    _case(
        "lstm-rank",
        lambda m: m.nn.LSTM(4, 3)(_R(m, 4)),
        InvalidValue,
        r"LSTM: .*2D or 3D, got 1D.*\(4,\)",
    ),
    _case(
        "lstm-h0",
        lambda m: m.nn.LSTM(4, 3)(_R(m, 5, 2, 4), (_R(m, 1, 2, 4), _R(m, 1, 2, 3))),
        RuntimeError,
        r"LSTM: .*h_0.*\(1, 2, 3\).*\(1, 2, 4\)",
    ),
    _case(
        "lstm-hx-not-tuple",
        lambda m: m.nn.LSTM(4, 3)(_R(m, 5, 2, 4), _R(m, 1, 2, 3)),
        InvalidType,
        r"LSTM: hx must be a tuple",
    ),
    _case(
        "lstm-f64",
        lambda m: m.nn.LSTM(4, 3)(_R(m, 5, 2, 4, dtype=m.float64)),
        InvalidType,
        r"LSTM: input is .*float64.*float32",
    ),
    _case(
        "gru-h0",
        lambda m: m.nn.GRU(4, 3)(_R(m, 5, 2, 4), _R(m, 2, 2, 3)),
        RuntimeError,
        r"GRU: .*\(1, 2, 3\).*\(2, 2, 3\)",
    ),
    _case(
        "mha-heads",
        lambda m: m.nn.MultiheadAttention(10, 3),
        InvalidValue,
        r"MultiheadAttention: embed_dim \(10\).*num_heads \(3\)",
    ),
    _case(
        "mha-embed",
        lambda m: _mha(m, _R(m, 5, 2, 8), _R(m, 5, 2, 8), _R(m, 5, 2, 8)),
        InvalidValue,
        r"multi_head_attention_forward: query \(5, 2, 8\).*embed_dim=6",
    ),
    _case(
        "mha-mask",
        lambda m: _mha(m, _R(m, 5, 2, 6), _R(m, 4, 2, 6), _R(m, 4, 2, 6), attn_mask=m.zeros(5, 5)),
        InvalidValue,
        r"attn_mask has shape \(5, 5\).*\(5, 4\)",
    ),
    _case(
        "transformer-d-model",
        lambda m: m.nn.Transformer(8, 2, 1, 1, 16)(_R(m, 5, 2, 8), _R(m, 4, 2, 6)),
        InvalidValue,
        r"Transformer: .*\(4, 2, 6\).*d_model=8",
    ),
    _case(
        "maxpool-too-small",
        lambda m: m.nn.MaxPool2d(7)(_R(m, 1, 3, 5, 5)),
        RuntimeError,
        r"max_pool2d: input of shape \(1, 3, 5, 5\).*kernel_size=\(7, 7\)",
    ),
    _case(
        "maxpool-rank",
        lambda m: m.nn.MaxPool2d(2)(_R(m, 5, 5)),
        RuntimeError,
        r"MaxPool2d\(kernel_size=2.*\(5, 5\)",
    ),
    _case(
        "avgpool-pad",
        lambda m: m.nn.MaxPool2d(2, padding=2)(_R(m, 1, 3, 5, 5)),
        RuntimeError,
        r"max_pool2d: pad.*half.*padding=\(2, 2\)",
    ),
    _case(
        "upsample-mode",
        lambda m: m.nn.Upsample(scale_factor=2, mode="foo")(_R(m, 1, 3, 4, 4)),
        NotImplementedError,
        r"interpolate: mode 'foo'",
    ),
    _case(
        "upsample-size-len",
        lambda m: m.nn.Upsample(size=(4, 4, 4))(_R(m, 1, 3, 4, 4)),
        InvalidValue,
        r"interpolate: size \(4, 4, 4\).*2 element",
    ),
    _case("dropout-p", lambda m: m.nn.Dropout(1.5), InvalidValue, r"Dropout: .*1.5"),
    _case(
        "pad-reflect",
        lambda m: m.nn.functional.pad(_R(m, 1, 2, 3), (3, 3), mode="reflect"),
        RuntimeError,
        r"pad\(\).*\(3, 3\).*\[1, 2, 3\]",
    ),
    _case(
        "sequential-index",
        lambda m: m.nn.Sequential(m.nn.ReLU())[3],
        OutOfRange,
        r"Sequential: index 3",
    ),
    _case(
        "relu-inplace-leaf",
        lambda m: m.nn.ReLU(inplace=True)(m.ones(3, requires_grad=True)),
        RuntimeError,
        r"relu_: a leaf tensor",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", NN)
def test_nn_layers_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


# ------------------------------------------------------------------ losses

F_ = lambda m: m.nn.functional


def _rand(m, *shape):
    return m.tensor(np.random.default_rng(0).random(shape, dtype=np.float32))


LOSS = [
    _case(
        "ce-float-target",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([0.0, 1.0, 2.0])),
        InvalidType,
        r"cross_entropy: target \(3,\).*float32.*\(3, 4\)",
    ),
    _case(
        "ce-oob",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([0, 1, 4])),
        OutOfRange,
        r"cross_entropy: target has class 4.*4 classes",
    ),
    _case(
        "ce-neg",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([0, 1, -2])),
        OutOfRange,
        r"cross_entropy: target has class -2",
    ),
    _case(
        "ce-batch",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([0, 1])),
        InvalidValue,
        r"cross_entropy: .*\(3,\).*\(3, 4\).*\(2,\)",
    ),
    _case(
        "ce-2d-target",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([[0], [1], [2]])),
        InvalidValue,
        r"cross_entropy: .*target \(3, 1\)",
    ),
    _case(
        "ce-spatial",
        lambda m: F_(m).cross_entropy(_rand(m, 2, 4, 5, 5), m.zeros(2, 5, 4, dtype=m.int64)),
        InvalidValue,
        r"cross_entropy: .*\(2, 5, 5\).*\(2, 4, 5, 5\).*\(2, 5, 4\)",
    ),
    _case(
        "ce-weight",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([0, 1, 2]), weight=m.ones(3)),
        InvalidValue,
        r"cross_entropy: .*weight of shape \(4,\).*\(3,\)",
    ),
    _case(
        "ce-reduction",
        lambda m: F_(m).cross_entropy(_rand(m, 3, 4), m.tensor([0, 1, 2]), reduction="avg"),
        InvalidValue,
        r"cross_entropy: reduction.*'avg'",
    ),
    _case(
        "ce-int-logits",
        lambda m: F_(m).cross_entropy(m.ones(3, 4, dtype=m.int64), m.tensor([0, 1, 2])),
        InvalidType,
        r"cross_entropy: .*int64",
    ),
    _case(
        "nll-oob",
        lambda m: F_(m).nll_loss(_rand(m, 3, 4), m.tensor([0, 1, 4])),
        OutOfRange,
        r"nll_loss: target has class 4",
    ),
    _case(
        "nll-float",
        lambda m: F_(m).nll_loss(_rand(m, 3, 4), m.tensor([0.0, 1.0, 2.0])),
        InvalidType,
        r"nll_loss: .*float32",
    ),
    _case(
        "bce-target-range",
        lambda m: F_(m).binary_cross_entropy(_rand(m, 3), m.tensor([0.0, 1.0, 2.0])),
        RuntimeError,
        r"binary_cross_entropy: .*target.*between 0 and 1.*max 2",
    ),
    _case(
        "bce-input-range",
        lambda m: F_(m).binary_cross_entropy(m.tensor([0.5, 1.5]), m.tensor([0.0, 1.0])),
        RuntimeError,
        r"binary_cross_entropy: .*input.*between 0 and 1.*max 1.5",
    ),
    _case(
        "bce-shape",
        lambda m: F_(m).binary_cross_entropy(_rand(m, 3), _rand(m, 3, 1)),
        InvalidValue,
        r"binary_cross_entropy: input \(3,\) and target \(3, 1\)",
    ),
    _case(
        "bce-logits-shape",
        lambda m: F_(m).binary_cross_entropy_with_logits(_rand(m, 3), _rand(m, 4)),
        InvalidValue,
        r"with_logits: input \(3,\) and target \(4,\)",
    ),
    _case(
        "mse-shape",
        lambda m: F_(m).mse_loss(_rand(m, 3), _rand(m, 4)),
        InvalidValue,
        r"mse_loss: input \(3,\) and target \(4,\)",
    ),
    _case(
        "mse-int",
        lambda m: F_(m).mse_loss(m.tensor([1, 2]), m.tensor([1, 2])),
        InvalidType,
        r"mse_loss: .*int64",
    ),
    _case(
        "l1-shape",
        lambda m: F_(m).l1_loss(_rand(m, 3), _rand(m, 4)),
        InvalidValue,
        r"l1_loss: input \(3,\) and target \(4,\)",
    ),
    _case(
        "smooth-l1-beta",
        lambda m: F_(m).smooth_l1_loss(_rand(m, 3), _rand(m, 3), beta=-1.0),
        InvalidValue,
        r"smooth_l1_loss: beta.*-1",
    ),
    _case(
        "kl-div-reduction",
        lambda m: F_(m).kl_div(_rand(m, 3), _rand(m, 3), reduction="foo"),
        InvalidValue,
        r"kl_div: reduction.*'foo'",
    ),
    _case(
        "multi-margin-oob",
        lambda m: F_(m).multi_margin_loss(_rand(m, 3, 4), m.tensor([0, 1, 4])),
        OutOfRange,
        r"multi_margin_loss: .*\[0, 4\).*\(3, 4\)",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", LOSS)
def test_losses_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


# ------------------------------------------------------------------ optimizers, schedulers


def _params(m):
    return [m.nn.Parameter(m.ones(3))]


def _sgd(m, **kw):
    return m.optim.SGD(_params(m), lr=kw.pop("lr", 0.1), **kw)


OPTIM = [
    _case("sgd-neg-lr", lambda m: _sgd(m, lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    # S13: torch and darklib said "'<' not supported between instances of 'str' and 'float'"
    _case(
        "sgd-str-lr",
        lambda m: _sgd(m, lr="0.1"),
        InvalidType,
        r"Invalid learning rate: lr must be a number.*str '0.1'",
    ),
    _case(
        "adam-none-lr",
        lambda m: m.optim.Adam(_params(m), lr=None),
        InvalidType,
        r"Invalid learning rate: .*NoneType None",
    ),
    # S13: SGD accepted lr=nan (as torch's does) and turned every weight into NaN
    _case(
        "sgd-nan-lr",
        lambda m: _sgd(m, lr=float("nan")),
        InvalidValue,
        r"Invalid learning rate: nan",
        torch_raises=False,
    ),
    _case("sgd-empty", lambda m: m.optim.SGD([], lr=0.1), ValueError, r"empty parameter list"),
    # S13: SGD(model) said "'Linear' object is not iterable"
    _case(
        "sgd-module",
        lambda m: m.optim.SGD(m.nn.Linear(2, 2), lr=0.1),
        InvalidType,
        r"iterable of Tensors.*Linear; pass model.parameters\(\)",
    ),
    _case(
        "sgd-tensor",
        lambda m: m.optim.SGD(m.ones(3, requires_grad=True), lr=0.1),
        TypeError,
        r"iterable of Tensors or dicts.*FloatTensor",
    ),
    _case(
        "sgd-ints",
        lambda m: m.optim.SGD([1, 2], lr=0.1),
        TypeError,
        r"can only optimize Tensors.*int",
    ),
    _case(
        "sgd-non-leaf",
        lambda m: m.optim.SGD([m.ones(3, requires_grad=True) * 2], lr=0.1),
        ValueError,
        r"non-leaf",
    ),
    _case(
        "sgd-dup-groups",
        lambda m: (lambda p: m.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1))(
            m.nn.Parameter(m.ones(3))
        ),
        ValueError,
        r"more than one parameter group",
    ),
    _case(
        "adam-betas",
        lambda m: m.optim.Adam(_params(m), betas=(1.0, 0.999)),
        ValueError,
        r"Invalid beta parameter at index 0: 1.0",
    ),
    _case(
        "adam-eps",
        lambda m: m.optim.Adam(_params(m), eps=-1),
        ValueError,
        r"Invalid epsilon value: -1",
    ),
    _case("group-no-params", lambda m: m.optim.SGD([{"lr": 0.1}], lr=0.1), KeyError, r"params"),
    _case(
        "opt-state-mismatch",
        lambda m: m.optim.Adam(_params(m)).load_state_dict(
            m.optim.Adam(_params(m) + _params(m)).state_dict()
        ),
        ValueError,
        r"group 0 has 2 parameters in the state dict and 1",
    ),
    # S13: StepLR(step_size=0) and CosineAnnealingLR(T_max=0) were accepted, and the
    # first step() failed with a bare "integer modulo by zero"
    _case(
        "steplr-0",
        lambda m: m.optim.lr_scheduler.StepLR(_sgd(m), step_size=0),
        InvalidValue,
        r"StepLR: step_size must be positive, got 0",
        torch_raises=False,
    ),
    _case(
        "cosine-tmax-0",
        lambda m: m.optim.lr_scheduler.CosineAnnealingLR(_sgd(m), T_max=0),
        InvalidValue,
        r"CosineAnnealingLR: T_max must be positive, got 0",
        torch_raises=False,
    ),
    _case(
        "sched-not-optimizer",
        lambda m: m.optim.lr_scheduler.StepLR("opt", 1),
        TypeError,
        r"str is not an Optimizer",
    ),
    _case(
        "onecycle-overrun",
        lambda m: (lambda o, s: [(o.step(), s.step()) for _ in range(4)])(
            *(lambda o: (o, m.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=2)))(_sgd(m))
        ),
        ValueError,
        r"Tried to step 3 times.*total steps is 2",
    ),
    _case(
        "plateau-mode",
        lambda m: m.optim.lr_scheduler.ReduceLROnPlateau(_sgd(m), mode="maxx"),
        ValueError,
        r"mode maxx is unknown",
    ),
    # S13: "could not convert string to float: 'fro2'" named no function or argument
    _case(
        "clip-norm-type",
        lambda m: m.nn.utils.clip_grad_norm_(_params(m), 1.0, norm_type="fro2"),
        InvalidValue,
        r"clip_grad_norm_.*norm_type.*'fro2'",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", OPTIM)
def test_optimizers_and_schedulers_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


def test_scheduler_checks_accept_numpy_and_float_sizes():
    """The S13 checks take NumPy ints and float periods, as torch's schedulers do."""
    s = dl.optim.lr_scheduler.StepLR(_sgd(dl), step_size=np.int64(2))
    c = dl.optim.lr_scheduler.CosineAnnealingLR(_sgd(dl), T_max=10.0)
    f = dl.optim.lr_scheduler.StepLR(_sgd(dl), step_size=2.0)  # (torch takes it too)
    for sched in (s, c, f):
        sched.optimizer.step()
        sched.step()
    assert s.get_last_lr() == pytest.approx([0.1])
    t = torch.optim.lr_scheduler.CosineAnnealingLR(_sgd(torch), T_max=10.0)
    t.optimizer.step()
    t.step()
    assert c.get_last_lr() == pytest.approx(t.get_last_lr())


# ------------------------------------------------------------------ data


class _Ragged:
    def __init__(self, m):
        self.m = m

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return self.m.ones(i + 1)


class _TupleLen:
    def __init__(self, m):
        self.m = m

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return (self.m.ones(1),) * (i + 1)


def _ds(m):
    return m.utils.data.TensorDataset(m.ones(5, 2), m.arange(5))


DATA = [
    _case(
        "batch-size-0",
        lambda m: m.utils.data.DataLoader(_ds(m), batch_size=0),
        ValueError,
        r"batch_size should be a positive integer value, but got batch_size=0",
    ),
    _case(
        "shuffle-sampler",
        lambda m: m.utils.data.DataLoader(
            _ds(m), shuffle=True, sampler=m.utils.data.SequentialSampler(range(5))
        ),
        ValueError,
        r"sampler option is mutually exclusive with shuffle",
    ),
    _case(
        "batch-sampler-batch-size",
        lambda m: m.utils.data.DataLoader(
            _ds(m),
            batch_size=2,
            batch_sampler=m.utils.data.BatchSampler(
                m.utils.data.SequentialSampler(range(5)), 2, False
            ),
        ),
        ValueError,
        r"batch_sampler option is mutually exclusive",
    ),
    _case(
        "num-workers-neg",
        lambda m: m.utils.data.DataLoader(_ds(m), num_workers=-1),
        ValueError,
        r"num_workers option should be non-negative",
    ),
    _case(
        "collate-ragged",
        lambda m: next(iter(m.utils.data.DataLoader(_Ragged(m), batch_size=3))),
        RuntimeError,
        r"stack.*\[1\] at entry 0 and \[2\] at entry 1",
    ),
    _case(
        "collate-tuple-len",
        lambda m: next(iter(m.utils.data.DataLoader(_TupleLen(m), batch_size=2))),
        RuntimeError,
        r"each element in list of batch should be of equal size",
    ),
    _case(
        "tensordataset-size",
        lambda m: m.utils.data.TensorDataset(m.ones(3), m.ones(4)),
        ValueError,
        r"TensorDataset: size mismatch.*\(3,\), \(4,\)",
    ),
    # S13: "index 7 is out of bounds for axis 0 with size 5" (NumPy's, naming no dataset)
    _case(
        "tensordataset-oob",
        lambda m: _ds(m)[7],
        OutOfRange,
        r"TensorDataset: index 7 is out of range for a dataset of 5 samples",
        torch_raises=True,
    ),
    _case(
        "subset-oob",
        lambda m: m.utils.data.Subset(_ds(m), [9])[0],
        OutOfRange,
        r"TensorDataset: index 9 is out of range",
    ),
    _case(
        "random-split",
        lambda m: m.utils.data.random_split(_ds(m), [2, 2]),
        ValueError,
        r"Sum of input lengths does not equal.*\[2, 2\].*5",
    ),
    _case(
        "weighted-sampler-neg",
        lambda m: list(m.utils.data.WeightedRandomSampler([0.5, -1.0], 2)),
        InvalidValue,
        r"WeightedRandomSampler: .*non-negative",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", DATA)
def test_data_loading_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


def test_tensordataset_index_error_still_ends_iteration():
    """OutOfRange is an IndexError: the old-style iteration protocol still stops."""
    rows = [x for x in _ds(dl)]  # (no __iter__: Python indexes until an IndexError)
    assert len(rows) == 5
    assert rows[-1][1].item() == 4


# ------------------------------------------------------------------ save / load, state_dict


def _sd_minus_bias(m):
    a = m.nn.Linear(2, 3)
    sd = a.state_dict()
    del sd["bias"]
    return a.load_state_dict(sd)


def _sd_plus_foo(m):
    a = m.nn.Linear(2, 3)
    sd = a.state_dict()
    sd["foo"] = m.ones(1)
    return a.load_state_dict(sd)


def _sd_list_value(m):
    a = m.nn.Linear(2, 3)
    sd = a.state_dict()
    sd["bias"] = [1.0, 2.0, 3.0]
    return a.load_state_dict(sd)


SERIAL = [
    _case("sd-missing", _sd_minus_bias, RuntimeError, r"Linear:.*Missing key.*\"bias\""),
    _case("sd-unexpected", _sd_plus_foo, RuntimeError, r"Linear:.*Unexpected key.*\"foo\""),
    _case(
        "sd-shape",
        lambda m: m.nn.Linear(2, 3).load_state_dict(m.nn.Linear(3, 3).state_dict()),
        RuntimeError,
        r"size mismatch for weight:.*\(3, 3\).*\(3, 2\)",
    ),
    _case(
        "sd-not-dict",
        lambda m: m.nn.Linear(2, 3).load_state_dict([1, 2]),
        InvalidType,
        r"state_dict to be dict-like, got list",
    ),
    _case("sd-list-value", _sd_list_value, RuntimeError, r"parameter named \"bias\".*list"),
    # S13: dl.load(None) said "expected str, bytes or os.PathLike object, not NoneType"
    _case(
        "load-none",
        lambda m: m.load(None),
        TypeError,
        r"darklib.load: expected a path or a binary file object, got NoneType",
    ),
    _case(
        "save-none",
        lambda m: m.save({"a": m.ones(1)}, None),
        TypeError,
        r"darklib.save: expected a path or a binary file object, got NoneType",
    ),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", SERIAL)
def test_save_load_and_state_dict_bad_input(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


def test_save_load_bad_files(tmp_path):
    missing_dir = tmp_path / "no" / "x.pt"
    with pytest.raises(FileNotFoundError, match=r"darklib.save: the folder .* does not exist"):
        dl.save({"a": dl.ones(2)}, missing_dir)
    with pytest.raises(IsADirectoryError, match=r"darklib.save: .* is a folder"):
        dl.save({"a": dl.ones(2)}, tmp_path)
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(b"garbage bytes")
    with pytest.raises(Exception, match=r"darklib.load: .*g.pt is not a darklib/safetensors"):
        dl.load(garbage)
    good = tmp_path / "t.pt"
    dl.save({"a": dl.ones(100)}, good)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match=r"darklib.load: .*t.pt is truncated or corrupt"):
        dl.load(good)
    with pytest.raises(TypeError, match=r"darklib.save: cannot save an object of type function"):
        dl.save({"f": lambda x: x}, os.fspath(tmp_path / "l.pt"))


# ------------------------------------------------------------------ autograd misuse


def _nonscalar(m):
    x = m.ones(3, requires_grad=True)
    (x * 2).backward()


def _twice(m):
    x = m.ones(3, requires_grad=True)
    y = x.exp().sum()
    y.backward()
    y.backward()


def _inplace_leaf(m):
    m.ones(3, requires_grad=True).add_(1)


def _inplace_saved(m):
    x = m.ones(3, requires_grad=True)
    y = x.exp()
    z = y.sum()
    y.mul_(2)
    z.backward()


def _no_grad_loss(m):
    x = m.ones(3, requires_grad=True)
    with m.no_grad():
        y = (x * 2).sum()
    y.backward()


def _grad_shape(m):
    x = m.ones(3, requires_grad=True)
    (x * 2).backward(m.ones(4))


def _unused(m):
    x = m.ones(3, requires_grad=True)
    y = m.ones(3, requires_grad=True)
    m.autograd.grad((x * 2).sum(), [y])


def _set_grad(m):
    x = m.ones(3, requires_grad=True)
    x.grad = m.ones(4)


def _nonleaf_flag(m):
    x = m.ones(3, requires_grad=True)
    (x * 2).requires_grad_(False)


def _hook_shape(m):
    x = m.ones(3, requires_grad=True)
    x.register_hook(lambda g: m.ones(4))
    (x * 2).sum().backward()


AUTOGRAD = [
    _case(
        "backward-nonscalar",
        _nonscalar,
        RuntimeError,
        r"backward: grad can be implicitly created only for scalar outputs.*\(3,\)",
    ),
    _case("backward-twice", _twice, RuntimeError, r"backward through the graph a second time"),
    _case("inplace-leaf", _inplace_leaf, RuntimeError, r"add_: a leaf tensor that requires grad"),
    _case(
        "inplace-saved",
        _inplace_saved,
        RuntimeError,
        r"modified by an in-place operation.*\(3,\).*version 1.*ExpBackward0",
    ),
    _case(
        "no-grad-loss",
        _no_grad_loss,
        RuntimeError,
        r"backward: .*does not require grad and has no grad_fn",
    ),
    _case("grad-shape", _grad_shape, RuntimeError, r"backward: gradient has shape \(4,\).*\(3,\)"),
    _case("grad-unused", _unused, RuntimeError, r"autograd.grad: .*\(3,\).*allow_unused"),
    _case("set-grad-shape", _set_grad, RuntimeError, r"grad.*\[4\].*\[3\]"),
    _case("nonleaf-requires-grad-false", _nonleaf_flag, RuntimeError, r"only leaf tensors"),
    _case("hook-shape", _hook_shape, RuntimeError, r"hook '<lambda>'.*\[3\].*\[4\]"),
]


@pytest.mark.parametrize("fn, exc, match, torch_raises", AUTOGRAD)
def test_autograd_misuse(fn, exc, match, torch_raises):
    _check(fn, exc, match, torch_raises)


def test_non_leaf_grad_warns_and_is_none():
    """Reading .grad of a non-leaf: None and a warning, as torch (no silent zeros)."""
    x = dl.ones(3, requires_grad=True)
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match="retain_grad"):
        assert y.grad is None


@pytest.mark.parametrize("spec", ["gpu", "cuda:x"])
def test_bad_device_string_is_a_runtime_error(spec):
    # (torch raises RuntimeError; darklib's error is that and a ValueError)
    with pytest.raises(RuntimeError, match=r"device: .*" + spec.replace(":", ".")):
        dl.zeros(2, device=spec)
