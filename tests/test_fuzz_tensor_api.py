"""Differential fuzzing of the Tensor API and core ops against torch.

Covers what the per-module tests leave out: random basic/advanced index mixes (getitem,
setitem and their gradients), random reductions over dim tuples on empty and 0-d inputs,
shape ops with negative dims, type promotion over every dtype pair and scalar kind,
creation-function dtype inference, view write-through, autograd.grad / hooks / version
counters, item()/tolist() types and dim-out-of-range errors.

Tests decorated with ``@known_bug("API-NN")`` (a strict xfail) pin a known darklib
discrepancy; the id refers to the review notes (/tmp/review/api_findings.md). When a fix lands the
test starts passing, the strict xfail turns that into a failure, and the decorator must go.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import DEVICES

import darklib as dl

FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
    print_blob=False,
)

LIBS = (dl, torch)

# degrees-of-freedom and similar warnings are expected from both libraries on edge inputs
# (NumPy's RuntimeWarnings from darklib stay errors: pyproject.toml)
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:test_fuzz_tensor_api"),
]


# ------------------------------------------------------------------ helpers


def _dtype_name(d) -> str:
    return str(d).split(".")[-1]


def _norm(x):
    """A comparable, library-neutral form of a result."""
    if isinstance(x, dl.Tensor | torch.Tensor):
        return ("T", _dtype_name(x.dtype), tuple(x.shape), np.asarray(x.detach().cpu().numpy()))
    if isinstance(x, tuple | list):
        return ("S", [_norm(e) for e in x])
    if isinstance(x, dl.dtype | torch.dtype):
        return ("D", _dtype_name(x))
    return ("P", type(x).__name__, x)


def _assert_same(a, b, what="result", atol=1e-6, rtol=1e-5):
    assert a[0] == b[0], f"{what}: kind {a[0]} != torch's {b[0]}"
    if a[0] == "T":
        assert a[1] == b[1], f"{what}: dtype {a[1]} != torch's {b[1]}"
        assert a[2] == b[2], f"{what}: shape {a[2]} != torch's {b[2]}"
        if a[3].dtype.kind in "biu" or b[3].dtype.kind in "biu":
            np.testing.assert_array_equal(a[3], b[3], err_msg=what)
        else:
            np.testing.assert_allclose(
                a[3].astype(np.float64),
                b[3].astype(np.float64),
                atol=atol,
                rtol=rtol,
                err_msg=what,
                equal_nan=True,
            )
    elif a[0] == "S":
        assert len(a[1]) == len(b[1]), f"{what}: {len(a[1])} items != torch's {len(b[1])}"
        for i, (x, y) in enumerate(zip(a[1], b[1])):
            _assert_same(x, y, f"{what}[{i}]", atol, rtol)
    elif a[0] == "P":
        assert a[1] == b[1], f"{what}: type {a[1]} != torch's {b[1]}"
        if isinstance(a[2], float) and math.isnan(a[2]):
            assert math.isnan(b[2])
        else:
            assert a[2] == b[2], f"{what}: {a[2]!r} != torch's {b[2]!r}"
    else:
        assert a == b, f"{what}: {a} != {b}"


def same(fn, **kw):
    """Run ``fn(lib)`` with darklib and torch; compare values, dtypes and shapes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_same(_norm(fn(dl)), _norm(fn(torch)), **kw)


def _outcome(fn, lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ("ok", _norm(fn(lib)))
        except Exception as e:  # we compare which inputs raise
            return ("err", e)


def same_or_both_raise(fn, **kw):
    """Either both libraries raise, or both succeed with the same result."""
    d, t = _outcome(fn, dl), _outcome(fn, torch)
    if d[0] == "err" and t[0] == "err":
        return
    assert d[0] == t[0], f"darklib {d[0]} ({d[1]!r:.200}) but torch {t[0]} ({t[1]!r:.200})"
    _assert_same(d[1], t[1], **kw)


def grads_same(fn, *arrays, atol=1e-6, rtol=1e-5):
    """``fn(lib, *tensors)`` -> tensor(s); compare forward and every float input's gradient."""
    outs, grads = [], []
    for lib in LIBS:
        xs = [
            lib.tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a
            for a in arrays
        ]
        out = fn(lib, *xs)
        flat = list(out) if isinstance(out, tuple | list) else [out]
        total = 0
        for i, o in enumerate(flat):
            if o.requires_grad:
                w = np.random.default_rng(i).standard_normal(tuple(o.shape))
                total = total + (o * lib.tensor(w, dtype=o.dtype)).sum()
        if not isinstance(total, int):
            total.backward()
        outs.append(_norm(tuple(flat)))
        grads.append(
            [
                _norm(x.grad) if x.grad is not None else None
                for x in xs
                if isinstance(x, dl.Tensor | torch.Tensor) and x.requires_grad
            ]
        )
    _assert_same(outs[0], outs[1], "forward", atol, rtol)
    for i, (g, h) in enumerate(zip(*grads)):
        if h is None:
            assert g is None or not np.any(g[3]), f"input {i}: torch has no gradient"
            continue
        assert g is not None, f"input {i}: darklib computed no gradient"
        _assert_same(g, h, f"grad of input {i}", atol, rtol)


X345 = np.random.default_rng(0).standard_normal((3, 4, 5))


# ------------------------------------------------------------------ indexing: random keys

SHAPE = (2, 3, 4, 5)
XS = np.random.default_rng(1).standard_normal(SHAPE)


@st.composite
def index_keys(draw, allow_int_with_adv=False):
    """A random key mixing ints, slices, None, Ellipsis, integer and bool index tensors."""
    parts, dim, used_ellipsis = [], 0, False
    for _ in range(draw(st.integers(1, 4))):
        kinds = ["int", "slice", "none", "adv", "adv2d", "bool"]
        if not used_ellipsis:
            kinds.append("ell")
        kind = draw(st.sampled_from(kinds))
        if dim >= len(SHAPE) and kind not in ("none",):
            kind = "none"
        size = SHAPE[dim] if dim < len(SHAPE) else 1
        if kind == "int":
            parts.append(("int", draw(st.integers(-size, size - 1))))
            dim += 1
        elif kind == "slice":
            bound = st.none() | st.integers(-size - 1, size + 1)
            step = st.none() | st.integers(1, 3)
            parts.append(("slice", slice(draw(bound), draw(bound), draw(step))))
            dim += 1
        elif kind == "none":
            parts.append(("none", None))
        elif kind == "ell":
            used_ellipsis = True
            parts.append(("ell", Ellipsis))
            dim = len(SHAPE)
        elif kind == "adv":
            n = draw(st.integers(0, 3))
            parts.append(
                ("adv", draw(st.lists(st.integers(-size, size - 1), min_size=n, max_size=n)))
            )
            dim += 1
        elif kind == "adv2d":
            parts.append(("adv", [[draw(st.integers(-size, size - 1))] for _ in range(2)]))
            dim += 1
        else:
            parts.append(("bool", draw(st.lists(st.booleans(), min_size=size, max_size=size))))
            dim += 1
    kinds_used = {k for k, _ in parts}
    if not allow_int_with_adv and "int" in kinds_used and kinds_used & {"adv", "bool"}:
        # torch treats ints as basic indexing; see API-01 for the case where that matters
        parts = [p for p in parts if p[0] != "int"] or [("slice", slice(None))]
    return parts


def _build(lib, parts, int_dtype=None):
    out = []
    for kind, v in parts:
        if kind == "adv":
            out.append(lib.tensor(v, dtype=int_dtype or lib.int64))
        elif kind == "bool":
            out.append(lib.tensor(v, dtype=lib.bool))
        else:
            out.append(v)
    return tuple(out)


@FUZZ
@given(parts=index_keys(), int32=st.booleans())
def test_fuzz_getitem_forward_and_grad(parts, int32):
    def fn(lib, x):
        return x[_build(lib, parts, lib.int32 if int32 else None)]

    if _outcome(lambda L: fn(L, L.tensor(XS)), torch)[0] == "err":
        # e.g. index tensors that do not broadcast together
        assert _outcome(lambda L: fn(L, L.tensor(XS)), dl)[0] == "err"
        return
    grads_same(fn, XS)


@FUZZ
@given(parts=index_keys(), scalar=st.booleans(), value_grad=st.booleans())
def test_fuzz_setitem_broadcast_and_grads(parts, scalar, value_grad):
    try:
        target = torch.zeros(SHAPE)[_build(torch, parts)].shape
    except IndexError:
        return
    # a value of a broadcastable shape: drop leading dims and set some sizes to 1
    vshape = tuple(1 if i % 2 else s for i, s in enumerate(target[1:]))
    v = np.random.default_rng(3).standard_normal(vshape)

    def fn(lib, x, val):
        if isinstance(val, list):  # a plain value that does not require grad
            val = lib.tensor(val, dtype=lib.float64)
        y = x * 1
        y[_build(lib, parts)] = 2.5 if scalar else val * 3
        return y

    grads_same(fn, XS, v if value_grad else v.tolist())


def test_setitem_with_duplicate_indices_and_iadd_match_torch():
    def fn(lib):
        x = lib.zeros(4)
        idx = lib.tensor([0, 0, 2, 2, 2])
        x[idx] += 1  # gather, add, scatter: duplicates do not accumulate
        x.index_put_((idx,), lib.tensor(1.0), accumulate=True)
        return x

    same(fn)


def test_getitem_on_empty_and_zero_dim_tensors():
    same(lambda L: L.tensor(3.0)[None])
    same(lambda L: L.tensor(3.0)[...])
    same(lambda L: L.tensor(3.0)[()])
    same(lambda L: L.tensor(3.0)[True])
    same(lambda L: L.tensor(3.0)[False])
    same(lambda L: L.tensor(3.0)[L.tensor(True)])
    same(lambda L: L.zeros(0, 3)[:, 1])
    same(lambda L: L.zeros(0, 3)[L.zeros(0, 3) > 0])
    same(lambda L: L.zeros(0, 3)[L.tensor([], dtype=L.long)])
    same(lambda L: L.zeros(2, 3)[L.tensor([], dtype=L.long)])
    for fn in (lambda L: L.tensor(3.0)[0], lambda L: L.zeros(0, 3)[0]):
        with pytest.raises(IndexError):
            fn(dl)


def test_bool_mask_of_lower_rank_and_int32_indices():
    m = [[True, False, True, False], [False] * 4, [True] * 4]
    grads_same(lambda L, x: x[L.tensor(m)], X345)
    grads_same(lambda L, x: x[L.tensor(m), L.tensor([4, 0, 1, 1, 2, 3])], X345)
    grads_same(lambda L, x: x[:, L.tensor([True, False, True, True])], X345)
    grads_same(lambda L, x: x[L.tensor([2, -3, 2], dtype=L.int32)], X345)

    def set_mask(L, x, v):
        y = x * 1
        y[L.tensor(m)] = v
        return y

    grads_same(set_mask, X345, np.arange(5.0))


def test_views_write_through_like_torch():
    def run(lib, make_view, write):
        x = lib.arange(6.0).reshape(2, 3)
        write(make_view(x))
        return x

    views = [
        lambda x: x[0],
        lambda x: x.t(),
        lambda x: x.unsqueeze(0),
        lambda x: x.diagonal(),
        lambda x: x.split([1, 2], 1)[1],
        lambda x: x.unbind(0)[1],
        lambda x: x.narrow(1, 1, 2),
        lambda x: x[:, ::2],
        lambda x: x.permute(1, 0),
        lambda x: x.movedim(0, 1),
        lambda x: x.chunk(3, 1)[1],
        lambda x: x.select(1, 2),
        lambda x: x.view(6),
        lambda x: x.detach(),
        lambda x: x[..., None],
        lambda x: x[x.new_zeros(1).long()],  # advanced indexing copies: no write-through
    ]
    for make in views:
        same(lambda L, make=make: run(L, make, lambda v: v.mul_(-2)))
        same(lambda L, make=make: run(L, make, lambda v: v.fill_(7)))


def test_inplace_through_views_keeps_gradients():
    def fn(L, w):
        y = w * 1
        y.t()[0].mul_(10)
        v = y[1:]
        v.add_(w[1:].detach())
        return y

    grads_same(fn, np.array([[1.0, 2.0], [3.0, 4.0]]))


# ------------------------------------------------------------------ shape ops


@FUZZ
@given(
    shape=st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple),
    data=st.data(),
)
def test_fuzz_shape_ops(shape, data):
    nd = len(shape)
    a = np.random.default_rng(5).standard_normal(shape)
    d = data.draw(st.integers(-max(nd, 1), max(nd, 1) - 1), label="dim")
    ops = [
        lambda L, x: x.reshape(-1),
        lambda L, x: x.flatten(),
        lambda L, x: x.flatten(d if nd else 0),
        lambda L, x: x.unsqueeze(d),
        lambda L, x: x.unsqueeze(-1),
        lambda L, x: x.squeeze(),
        lambda L, x: x.squeeze(tuple(range(nd))),
        lambda L, x: x.flip(d) if nd else x.flip(0),
        lambda L, x: x.roll(2, d) if nd else x.roll(1),
        lambda L, x: x.roll(-1),
        lambda L, x: x.movedim(d, 0) if nd else x,
        lambda L, x: x.transpose(d, -1) if nd else x.transpose(0, -1),
        lambda L, x: x.permute(*reversed(range(-nd, 0))) if nd else x,
        lambda L, x: x.expand(2, *x.shape),
        lambda L, x: x.repeat(*([2] * (nd + 1))),
        lambda L, x: x.chunk(3, d) if nd else (x,),
        lambda L, x: x.split(2, d) if nd and x.shape[d] else (x,),  # empty: API-18
        lambda L, x: x.unbind(d) if nd else (x,),
        lambda L, x: x.tril(-1) if nd >= 2 else x,
        lambda L, x: x.triu(1) if nd >= 2 else x,
        lambda L, x: L.cat([x, x * 2], d) if nd else L.stack([x, x]),
        lambda L, x: L.stack([x, x * 2], d),
        lambda L, x: x.narrow(d, 0, x.shape[d]) if nd else x,
        lambda L, x: x.cumsum(d) if nd else x.cumsum(0),
    ]
    for i, op in enumerate(ops):
        try:
            grads_same(op, a)
        except AssertionError as e:
            raise AssertionError(f"op #{i} on shape {shape} dim {d}: {e}") from None


def test_shape_ops_explicit_forms():
    x = np.arange(24.0).reshape(2, 3, 4)
    grads_same(lambda L, t: t.view(-1, 4), x)
    grads_same(lambda L, t: t.view((4, -1)), x)
    grads_same(lambda L, t: t.flatten(-2, -1), x)
    grads_same(lambda L, t: t.reshape(1, 2, 1, 3, 4).squeeze((0, 2)), x)
    grads_same(lambda L, t: t.reshape(1, 2, 1, 3, 4).squeeze((-2, 1)), x)
    grads_same(lambda L, t: t.reshape(1, 2, 1, 3, 4).squeeze([0, 2]), x)
    grads_same(lambda L, t: t.unsqueeze(-4), x)
    grads_same(lambda L, t: t.permute(-1, 0, -2), x)
    grads_same(lambda L, t: t[:, :1].expand(-1, 5, -1), x)
    grads_same(lambda L, t: t[:, :1].expand(2, -1, 3, 4), x)
    grads_same(lambda L, t: t.split([1, 3], dim=-1), x)
    grads_same(lambda L, t: t.split([0, 2, 1], dim=1), x)
    grads_same(lambda L, t: t.chunk(3, -1), x)  # uneven: sizes 2, 2
    grads_same(lambda L, t: (*L.arange(10.0).chunk(4), t), x)
    grads_same(lambda L, t: t.movedim((0, 1), (-1, 0)), x)
    grads_same(lambda L, t: t.narrow(-1, -2, 2), x)
    grads_same(lambda L, t: t.unbind(-1), x)
    grads_same(lambda L, t: t.flip(0, -1), x)
    grads_same(lambda L, t: t.roll((1, 2), (0, 2)), x)
    grads_same(lambda L, t: t.roll(100, 1), x)
    grads_same(lambda L, t: t.tril(-1), x)
    grads_same(lambda L, t: t.triu(10), x)
    grads_same(lambda L, t: t.gather(-1, L.tensor([[[0], [1], [2]], [[3], [3], [0]]])), x)
    grads_same(lambda L, t: t.unflatten(-1, (2, -1)), x)
    grads_same(lambda L, t: t.repeat_interleave(L.tensor([1, 0, 2]), dim=1), x)
    grads_same(lambda L, t: t.diagonal(-1, 1, 2), x)
    grads_same(lambda L, t: t.tile((2,)), x)
    grads_same(lambda L, t: L.cat([t, t.float()], dim=-1), x)
    same(lambda L: L.cat([L.ones(2, dtype=L.bool), L.ones(2, dtype=L.int32)]))
    same(lambda L: L.cat([L.ones(2, dtype=L.float16), L.ones(2, dtype=L.float64)]))
    same(lambda L: L.cat([L.ones(2, dtype=L.int32), L.ones(2, dtype=L.uint8)]))
    same(lambda L: L.stack([L.ones(2, dtype=L.int64), L.ones(2, dtype=L.float32)], -1))
    same(lambda L: L.cat([L.zeros(0), L.ones(2, 3)]))  # legacy 1-d empty is skipped
    same(lambda L: L.stack([L.tensor(1.0), L.tensor(2.0)]))
    same(lambda L: L.arange(10).split([3, 7]))
    same(lambda L: L.arange(2).chunk(5))
    same(lambda L: L.arange(6).chunk(4))
    same(lambda L: L.zeros(0, 3).unbind())


def test_shape_op_errors_match_torch():
    bad = [
        lambda L: L.zeros(2, 3).view(5, -1),
        lambda L: L.zeros(2, 3).view(-1, -1),
        lambda L: L.zeros(2, 3).t().view(-1),
        lambda L: L.zeros(2, 3).flatten(1, 0),
        lambda L: L.zeros(2, 3).permute(0, 0),
        lambda L: L.zeros(2, 3).permute(0),
        lambda L: L.zeros(3, 2).expand(3, 4),
        lambda L: L.zeros(3, 1).expand(4),
        lambda L: L.zeros(2, 3).repeat(2),
        lambda L: L.cat([]),
        lambda L: L.cat([L.tensor(1.0), L.tensor(2.0)]),
        lambda L: L.cat([L.ones(2, 3), L.ones(2, 4)]),
        lambda L: L.stack([L.ones(2), L.ones(3)]),
        lambda L: L.arange(10).split([3, 6]),
        lambda L: L.arange(10).split(0),
        lambda L: L.arange(2).chunk(0),
        lambda L: L.arange(3).narrow(0, 3, 2),
        lambda L: L.arange(3).roll((1, 2), (0,)),
        lambda L: L.arange(3).movedim((0, 0), (0, 1)),
        lambda L: L.arange(3).triu(),
    ]
    for fn in bad:
        for lib in LIBS:
            with pytest.raises((RuntimeError, IndexError, ValueError, TypeError)):
                fn(lib)


DIM_OPS = {
    "sum": lambda t, d: t.sum(d),
    "mean": lambda t, d: t.mean(d),
    "var": lambda t, d: t.var(d),
    "amax": lambda t, d: t.amax(d),
    "max": lambda t, d: t.max(d),
    "argmax": lambda t, d: t.argmax(d),
    "softmax": lambda t, d: t.softmax(d),
    "cumsum": lambda t, d: t.cumsum(d),
    "logsumexp": lambda t, d: t.logsumexp(d),
    "prod": lambda t, d: t.prod(d),
    "norm": lambda t, d: t.norm(dim=d),
    "sort": lambda t, d: t.sort(d),
    "topk": lambda t, d: t.topk(1, d),
    "median": lambda t, d: t.median(d),
    "squeeze": lambda t, d: t.squeeze(d),
    "flatten": lambda t, d: t.flatten(d),
    "transpose": lambda t, d: t.transpose(0, d),
    "flip": lambda t, d: t.flip(d),
    "roll": lambda t, d: t.roll(1, d),
    "select": lambda t, d: t.select(d, 0),
    "split": lambda t, d: t.split(1, d),
    "unbind": lambda t, d: t.unbind(d),
    "gather": lambda t, d: t.gather(d, t.new_zeros(2, 3).long()),
    "index_select": lambda t, d: t.index_select(d, t.new_zeros(1).long()),
    "size": lambda t, d: t.size(d),
}


@pytest.mark.parametrize("name", sorted(DIM_OPS))
@pytest.mark.parametrize("d", [2, -3])
def test_dim_out_of_range_raises_index_error_like_torch(name, d):
    for lib in LIBS:
        with pytest.raises(IndexError):
            DIM_OPS[name](lib.zeros(2, 3), d)


# ------------------------------------------------------------------ reductions


REDUCTIONS = [
    "sum",
    "mean",
    "var",
    "std",
    "amax",
    "amin",
    "nansum",
    "norm",
    "logsumexp",
    "all",
    "any",
    "count_nonzero",
    "var_mean",
    "std_mean",
]


@FUZZ
@given(
    shape=st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple),
    op=st.sampled_from(REDUCTIONS),
    keepdim=st.booleans(),
    correction=st.sampled_from([0, 1, 2]),
    data=st.data(),
)
def test_fuzz_reductions_over_dim_tuples(shape, op, keepdim, correction, data):
    nd = len(shape)
    dims = data.draw(
        st.lists(
            st.integers(-max(nd, 1), max(nd, 1) - 1),
            unique_by=lambda v: v % max(nd, 1),
            max_size=max(nd, 1),
        ).map(tuple),
        label="dims",
    )
    if op == "logsumexp" and not dims:
        dims = tuple(range(nd)) or (0,)
    a = np.random.default_rng(7).standard_normal(shape).astype(np.float32)

    def fn(L, x):
        if op in ("all", "any"):
            return getattr(x > 0, op)(dims, keepdim=keepdim)
        if op == "count_nonzero":
            return x.count_nonzero(dims)
        if op in ("var", "std", "var_mean", "std_mean"):
            # dims=() means "all dims"; torch's var backward is wrong for it (it scales the
            # gradient as if nothing were reduced), so spell it as None
            return getattr(L, op)(x, dims or None, correction=correction, keepdim=keepdim)
        if op == "norm":
            return x.norm(dim=dims, keepdim=keepdim)
        return getattr(x, op)(dims, keepdim=keepdim)

    d, t = _outcome(lambda L: fn(L, L.tensor(a)), dl), _outcome(lambda L: fn(L, L.tensor(a)), torch)
    if t[0] == "err":
        assert d[0] == "err", f"torch raised {t[1]!r} but darklib returned"
        return
    grads_same(fn, a, atol=1e-5, rtol=1e-4)


def test_reduction_dtype_rules():
    ints = np.arange(24).reshape(2, 3, 4) % 5
    for op in ("sum", "prod", "nansum"):
        same(lambda L, op=op: getattr(L.tensor(ints), op)())
        same(lambda L, op=op: getattr(L.tensor(ints).int(), op)(1))
        same(lambda L, op=op: getattr(L.tensor(ints) > 2, op)(0))
        same(lambda L, op=op: getattr(L.tensor(ints).to(L.uint8), op)())
        same(lambda L, op=op: getattr(L.tensor(ints), op)(dtype=L.float64))
    same(lambda L: L.tensor(ints).cumsum(0, dtype=L.float32))
    same(lambda L: L.tensor(ints).mean(dtype=L.float64))
    same(lambda L: (L.tensor(ints) > 1).float().mean((0, -1), keepdim=True))
    same(lambda L: L.tensor(ints).amax((0, -1)))
    same(lambda L: (L.tensor(ints) > 2).amax(0))
    same(lambda L: L.tensor(ints).to(L.uint8).all())
    same(lambda L: L.tensor(ints).float().all(1))
    same(lambda L: L.tensor(ints).any(dim=(0, 2)))
    for fn in (
        lambda L: L.tensor(ints).mean(),
        lambda L: L.tensor(ints).var(),
        lambda L: L.tensor(ints).softmax(0),
        lambda L: L.tensor(ints).norm(),
    ):
        for lib in LIBS:
            with pytest.raises((RuntimeError, NotImplementedError)):
                fn(lib)


def test_tie_breaking_of_max_min_argmax():
    ti = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, 5, 1, 5]], dtype=np.float32)
    for dim in (0, 1, -1):
        same(lambda L, dim=dim: L.tensor(ti).max(dim))
        same(lambda L, dim=dim: L.tensor(ti).min(dim, keepdim=True))
        same(lambda L, dim=dim: L.tensor(ti).argmax(dim))
        same(lambda L, dim=dim: L.tensor(ti).argmin(dim))
        same(lambda L, dim=dim: L.tensor(ti).median(dim))
        same(lambda L, dim=dim: L.tensor(ti).cummax(dim))
        same(
            lambda L, dim=dim: (
                L.tensor(ti).sort(dim, stable=True)
                if L is dl
                else L.tensor(ti).sort(dim=dim, stable=True)
            )
        )
    same(lambda L: L.tensor(ti).argmax())
    same(lambda L: L.tensor(ti).argmin(keepdim=True))
    same(lambda L: L.tensor([1.0, 4.0, 2.0, 3.0]).median())  # lower median
    nan = float("nan")
    same(lambda L: L.tensor([1.0, nan, 3.0]).max(0))
    same(lambda L: L.tensor([1.0, nan, 3.0, nan]).argmax())
    same(lambda L: L.tensor([3.0, nan, 1.0, nan, 2.0]).sort(descending=True))
    same(lambda L: L.tensor([3.0, nan, 1.0, 2.0]).topk(2))
    grads_same(lambda L, x: x.max(), np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 0.0]]))
    grads_same(lambda L, x: x.amax((0, 1)), np.ones((2, 3, 2)))
    grads_same(lambda L, x: x.median(1)[0], np.array([[1.0, 2.0, 2.0], [2.0, 0.0, 0.0]]))


def test_zero_dim_and_empty_reductions():
    same(lambda L: L.tensor(3.0).sum(0))
    same(lambda L: L.tensor(3.0).sum(-1, keepdim=True))
    same(lambda L: L.tensor(3.0).mean((0,)))
    same(lambda L: L.tensor(3.0).max(0))
    same(lambda L: L.tensor(3.0).argmax(0))
    same(lambda L: L.tensor(3.0).cumsum(0))
    same(lambda L: L.tensor(3.0).var())
    same(lambda L: L.zeros(0).var())
    same(lambda L: L.zeros(0).mean())
    same(lambda L: L.zeros(0, 3).sum(0))
    same(lambda L: L.zeros(0, 3).prod(0))
    same(lambda L: L.zeros(0, 3).amax(1))
    same(lambda L: L.zeros(0, 3).max(1))
    same(lambda L: L.zeros(0).all())
    same(lambda L: L.zeros(0).any())
    same(lambda L: L.zeros(0).cumsum(0))
    for fn in (
        lambda L: L.zeros(0, 3).amax(0),
        lambda L: L.zeros(0, 3).max(),
        lambda L: L.zeros(0, 3).argmax(),
        lambda L: L.tensor(3.0).sum(1),
    ):
        for lib in LIBS:
            with pytest.raises((RuntimeError, IndexError)):
                fn(lib)


# ------------------------------------------------------------------ type promotion

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
VALUES = {
    "bool": [True, False, True],
    "uint8": [1, 200, 3],
    "int8": [-3, 5, 7],
    "int16": [-3, 5, 7],
    "int32": [-7, 5, 7],
    "int64": [-7, 5, 9],
    "float16": [-1.5, 2.0, 0.5],
    "float32": [-1.5, 2.0, 3.25],
    "float64": [-1.5, 2.0, 3.25],
}
BINOPS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "lt": operator.lt,
    "eq": operator.eq,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
}


def _mk(lib, name, zero_dim=False):
    t = lib.tensor(VALUES[name], dtype=getattr(lib, name))
    return t[1] if zero_dim else t


@FUZZ
@given(
    a=st.sampled_from(DTYPES),
    b=st.sampled_from([*DTYPES, "py_int", "py_float", "py_bool"]),
    op=st.sampled_from(sorted(BINOPS)),
    zero_dim=st.booleans(),
    reflected=st.booleans(),
)
def test_fuzz_binary_promotion_and_values(a, b, op, zero_dim, reflected):
    scalars = {"py_int": 3, "py_float": 2.5, "py_bool": True}

    def fn(L):
        x = _mk(L, a)
        y = scalars[b] if b in scalars else _mk(L, b, zero_dim)
        return BINOPS[op](y, x) if reflected else BINOPS[op](x, y)

    same_or_both_raise(fn, atol=1e-3, rtol=1e-3)


def test_promotion_explicit_cases():
    same(lambda L: L.tensor([1, 2]) + 1.5)
    same(lambda L: L.tensor([True]) + L.tensor([3], dtype=L.int8))
    same(lambda L: L.tensor([7]) / L.tensor([2]))
    same(lambda L: L.tensor([7], dtype=L.int32) / 2)
    same(lambda L: L.tensor([-7, 7]) // L.tensor([2, -2]))
    same(lambda L: L.tensor([-7, 7]) % L.tensor([2, -2]))
    same(lambda L: L.tensor([-7.0, 7.0]) % L.tensor([2.0, -2.0]))
    same(lambda L: L.tensor([1.0], dtype=L.float16) + L.tensor(1.0, dtype=L.float64))
    same(lambda L: L.tensor([1]) + L.tensor(1.0, dtype=L.float16))
    same(lambda L: L.tensor([1]) < 1.5)
    same(lambda L: L.tensor([2**53 + 1]) == L.tensor([2**53]))
    same(lambda L: L.tensor([127], dtype=L.int8) + 1)
    same(lambda L: L.tensor([1], dtype=L.uint8) - 2)
    same(lambda L: L.tensor([2**53 + 1]) // L.tensor([3]))
    same(lambda L: L.tensor([2**53, 1]).sum())
    same(lambda L: L.tensor([2**53, 1]).cumsum(0))
    same(lambda L: L.where(L.tensor([True, False]), L.tensor([1, 2]), 2.5))
    same(lambda L: L.where(L.tensor([True, False]), 1.0, 0))
    same(lambda L: L.tensor([1, 5]).clamp(max=2.5))
    same(lambda L: L.tensor([0.5, 1.5, 2.5, -0.5]).round())
    same(lambda L: L.tensor([1234.5]).round(decimals=-2))
    same(lambda L: L.tensor([-7, 7]).div(2, rounding_mode="trunc"))
    same(lambda L: L.tensor([-7.0, 7.0]).div(2, rounding_mode="floor"))
    same(lambda L: L.tensor([1.0, -1.0, 0.0]) // 0)
    same(lambda L: L.tensor([5.0]) % float("inf"))
    same(lambda L: L.tensor([2]) ** L.tensor([0.5]))
    same(lambda L: 2 ** L.tensor([1, 2]))
    same(lambda L: L.tensor([True, False]) & L.tensor([True, True]))
    same(lambda L: ~L.tensor([1, 0]))
    for lib in LIBS:
        with pytest.raises(RuntimeError):
            lib.tensor([True]) - lib.tensor([True])
        with pytest.raises(RuntimeError):
            lib.tensor([2]) ** -1


# ------------------------------------------------------------------ creation


def test_creation_functions_match_torch():
    cases = [
        lambda L: L.arange(0, 1, 0.1),
        lambda L: L.arange(1, 2.5, 0.5),
        lambda L: L.arange(0, 0.3, 0.1),
        lambda L: L.arange(1, 1.3, 0.1),
        lambda L: L.arange(5, 0, -1.5),
        lambda L: L.arange(5.0),
        lambda L: L.arange(5, dtype=L.float64),
        lambda L: L.arange(0, 2, 0.5, dtype=L.float16),
        lambda L: L.arange(-5, 5, 0.1),
        lambda L: L.arange(0, 100, 0.1, dtype=L.float32),
        lambda L: L.arange(0),
        lambda L: L.arange(L.tensor(3)),
        lambda L: L.linspace(0, 1, 5),
        lambda L: L.linspace(0, 1, 1),
        lambda L: L.linspace(0, 1, 0),
        lambda L: L.linspace(0, 10, 4, dtype=L.int64),
        lambda L: L.linspace(-10, 0, 4, dtype=L.int64),
        lambda L: L.linspace(-7, 13, 11, dtype=L.float32),
        lambda L: L.logspace(0, 2, 3, base=2),
        lambda L: L.full((2,), 3),
        lambda L: L.full((2,), True),
        lambda L: L.full((2,), 3.0),
        lambda L: L.full((2,), 3, dtype=L.float32),
        lambda L: L.full((2,), 3.7, dtype=L.int64),
        lambda L: L.full([2, 3], 1.0),
        lambda L: L.full((2,), L.tensor(3.0)),
        lambda L: L.full_like(L.zeros(2, dtype=L.int32), 2.7),
        lambda L: L.full_like(L.zeros(2), True),
        lambda L: L.zeros_like(L.zeros(2), dtype=L.int32),
        lambda L: L.ones_like(L.tensor([1, 2])),
        lambda L: L.zeros(()),
        lambda L: L.zeros(L.zeros(2, 3).shape),
        lambda L: L.zeros(2, dtype=L.bool),
        lambda L: L.zeros(2, dtype=int),
        lambda L: L.zeros(2, dtype=bool),
        lambda L: L.tensor([[1, 2], [3, 4]]),
        lambda L: L.tensor([[1, 2.5], [3, 4]]),
        lambda L: L.tensor([True, 2]),
        lambda L: L.tensor(3),
        lambda L: L.tensor(False),
        lambda L: L.tensor([]),
        lambda L: L.tensor([[], []]),
        lambda L: L.tensor(np.float64(1.5)),
        lambda L: L.tensor(np.float32(1.5)),
        lambda L: L.tensor(np.int32(1)),
        lambda L: L.tensor(np.bool_(True)),
        lambda L: L.tensor([np.float32(1.5), np.float32(2)]),
        lambda L: L.tensor([L.tensor(1.0), L.tensor(2.0)]),
        lambda L: L.tensor([1.7, -1.7], dtype=L.int64),
        lambda L: L.tensor([0.0, 0.1], dtype=L.bool),
        lambda L: L.tensor([2**53 + 1]),
        lambda L: L.tensor((1, 2)),
        lambda L: L.as_tensor([1, 2], dtype=L.float32),
        lambda L: L.eye(2, 4),
        lambda L: L.eye(3, m=2),
        lambda L: L.eye(2, dtype=L.int64),
        lambda L: L.eye(0),
        lambda L: L.eye(2, dtype=L.bool),
        lambda L: L.zeros(2, dtype=L.int32).new_full((3,), 2.5),
        lambda L: L.zeros(2, dtype=L.int32).new_tensor([1.5, 2]),
        lambda L: L.zeros(2, dtype=L.int32).new_zeros([2, 3]),
        lambda L: L.randint(3, 5, (200,)).dtype,
        lambda L: L.randint(5, (3,)).shape,
        lambda L: L.randint(0, 5, (3,), dtype=L.float32).dtype,
        lambda L: L.randperm(7).sort()[0],
        lambda L: L.rand(0).shape,
        lambda L: L.rand_like(L.zeros(2, 3, dtype=L.float64)).dtype,
    ]
    for i, fn in enumerate(cases):
        try:
            same(fn)
        except AssertionError as e:
            raise AssertionError(f"case #{i}: {e}") from None
    r = dl.randint(3, 5, (500,))
    assert r.min().item() == 3 and r.max().item() == 4
    for fn in (
        lambda L: L.randint(5, 3, (3,)),
        lambda L: L.arange(0, 5, 0),
        lambda L: L.linspace(0, 1, -1),
        lambda L: L.eye(-1),
        lambda L: L.zeros(-1),
        lambda L: L.tensor([[1, 2], [3]]),
        lambda L: L.tensor([1, 2], requires_grad=True),
    ):
        for lib in LIBS:
            with pytest.raises((RuntimeError, ValueError, TypeError)):
                fn(lib)


# ------------------------------------------------------------------ conversions, repr


@pytest.mark.parametrize("dt", DTYPES)
def test_item_tolist_and_python_conversions(dt):
    same(lambda L: L.tensor([1], dtype=getattr(L, dt)).item())
    same(lambda L: L.tensor([[1, 0]], dtype=getattr(L, dt)).tolist())
    same(lambda L: L.tensor(1, dtype=getattr(L, dt)).tolist())
    same(lambda L: float(L.tensor(1, dtype=getattr(L, dt))))
    same(lambda L: int(L.tensor(1, dtype=getattr(L, dt))))
    same(lambda L: bool(L.tensor(1, dtype=getattr(L, dt))))
    same(lambda L: L.zeros(1, dtype=getattr(L, dt)).element_size())
    same(lambda L: L.zeros(1, dtype=getattr(L, dt)).is_signed())
    for make in (
        lambda L: L.tensor([1, 0], dtype=getattr(L, dt)),
        lambda L: L.tensor(1, dtype=getattr(L, dt)),
        lambda L: L.zeros(0, 2, dtype=getattr(L, dt)),
    ):
        assert repr(make(dl)).replace("darklib.", "") == repr(make(torch)).replace("torch.", "")


def test_python_protocols():
    same(lambda L: int(L.tensor(-2.7)))
    same(lambda L: [1, 2, 3][L.tensor(1)])
    same(lambda L: list(L.zeros(2, 3)))
    same(lambda L: 2 in L.tensor([1, 2]))
    same(lambda L: f"{L.tensor(1.5):.3f}")
    same(lambda L: L.zeros(2, 3).t().stride())
    same(lambda L: L.zeros(2, 3).t().is_contiguous())
    same(lambda L: L.zeros(2, 3).size(-1))
    same(lambda L: L.zeros(2, 3).shape == (2, 3))
    same(lambda L: L.tensor([1.0], requires_grad=True).tolist())
    for fn in (
        lambda L: L.tensor([1, 2]).item(),
        lambda L: L.tensor([]).item(),
        lambda L: bool(L.tensor([1, 2])),
        lambda L: len(L.tensor(1.0)),
        lambda L: [1, 2][L.tensor(1.0)],
        lambda L: L.zeros(3, requires_grad=True).numpy(),
    ):
        for lib in LIBS:
            with pytest.raises((RuntimeError, ValueError, TypeError)):
                fn(lib)
    for e in (
        "[1e-5, 1.]",
        "[1e16, 1.]",
        "[-0.0, 1.0]",
        "[[True, False]]",
        "[123456789.0]",
        "[float('nan'), float('inf'), -1.5]",
        "[12345.678, 0.001]",
    ):
        d = repr(dl.tensor(eval(e))).replace("darklib.", "")
        t = repr(torch.tensor(eval(e))).replace("torch.", "")
        assert d == t


# ------------------------------------------------------------------ autograd


def test_autograd_grad_forms():
    def multi(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = L.tensor([3.0, 4.0], requires_grad=True)
        return L.autograd.grad([(x * y).sum(), (x**2).sum()], [x, y])

    def unused(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = L.tensor([3.0, 4.0], requires_grad=True)
        g = L.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
        return g[0], g[1] is None

    def go(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        return L.autograd.grad(x * 2, x, grad_outputs=L.tensor([1.0, 10.0]))

    def go_none_scalar(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        return L.autograd.grad(
            [(x * 2).sum(), (x * 3).sum()], x, grad_outputs=[None, L.tensor(2.0)]
        )

    def no_accumulate(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        g = L.autograd.grad((x * 2).sum(), x)
        return x.grad is None, g

    def retain(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        a = (x**2).sum()
        L.autograd.grad(a, x, retain_graph=True)
        return L.autograd.grad(a, x)

    def backward_retain(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        a = x.exp().sum()
        a.backward(retain_graph=True)
        a.backward()
        return x.grad

    def backward_gradient(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).backward(L.tensor([1.0, 3.0]))
        return x.grad

    def backward_inputs(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        w = L.tensor([3.0, 4.0], requires_grad=True)
        (x * w).sum().backward(inputs=[x])
        return x.grad, w.grad is None

    def hooks(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        seen = []
        x.register_hook(lambda g: seen.append(g.clone()) or g * 2)
        y = x * 3
        y.register_hook(lambda g: g + 1)
        y.retain_grad()
        (y * y).sum().backward()
        return x.grad, y.grad, seen

    for fn in (
        multi,
        unused,
        go,
        go_none_scalar,
        no_accumulate,
        retain,
        backward_retain,
        backward_gradient,
        backward_inputs,
        hooks,
    ):
        same(fn)

    def raises(fn):
        for lib in LIBS:
            with pytest.raises(RuntimeError):
                fn(lib)

    def twice(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        a = (x**2).sum()
        L.autograd.grad(a, x)
        L.autograd.grad(a, x)

    def unused_error(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = L.tensor([3.0, 4.0], requires_grad=True)
        L.autograd.grad((x * 2).sum(), [x, y])

    def nonscalar(L):
        (L.tensor([1.0, 2.0], requires_grad=True) * 2).backward()

    def bad_shape(L):
        (L.tensor([1.0, 2.0], requires_grad=True) * 2).backward(L.tensor([1.0, 3.0, 4.0]))

    def no_grad_needed(L):
        L.tensor([1.0, 2.0]).sum().backward()

    def hook_no_grad(L):
        L.tensor([1.0]).register_hook(lambda g: g)

    for fn in (twice, unused_error, nonscalar, bad_shape, no_grad_needed, hook_no_grad):
        raises(fn)


@pytest.mark.parametrize(
    "op, saves_output",
    [
        (lambda y: y.exp(), True),
        (lambda y: y**2, False),
        (lambda y: y.sigmoid(), True),
        (lambda y: y.tanh(), True),
        (lambda y: y.sqrt(), True),
        (lambda y: y * y, False),
        (lambda y: y.relu(), True),
        (lambda y: y.abs(), False),
        (lambda y: y.log(), False),
        (lambda y: y.prod(), False),
    ],
)
def test_version_counter_catches_modified_saved_tensors(op, saves_output):
    for lib in LIBS:
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        z = op(y)
        (z if saves_output else y).add_(1)
        with pytest.raises(RuntimeError, match=r"modified by an inplace operation|in-place"):
            z.sum().backward()


def test_inplace_dtype_rules():
    def run(start, op):
        def fn(L):
            x = L.tensor(start[0], dtype=getattr(L, start[1]))
            op(x, L)
            return x

        return fn

    same(run(([1, 2, 3], "int64"), lambda x, L: x.__imul__(2)))
    same(run(([1, 2], "int32"), lambda x, L: x.__iadd__(L.tensor([1, 2]))))
    same(
        run(([1.0, 2.0], "float16"), lambda x, L: x.__iadd__(L.tensor([1.0, 2.0], dtype=L.float64)))
    )
    same(run(([1.0, 2.0, 3.0], "float32"), lambda x, L: x.copy_(L.tensor([1, 2, 3]))))
    same(run(([[1.0, 2.0, 3.0]] * 2, "float32"), lambda x, L: x.copy_(L.tensor([7, 8, 9]))))
    for lib in LIBS:
        for bad in (
            lambda L: L.tensor([1, 2]).div_(2),
            lambda L: L.tensor([1, 2]).__imul__(1.5),
            lambda L: L.tensor([1.0, 2.0]).add_(L.tensor([[1.0], [2.0]])),
            lambda L: L.tensor([1.0, 2.0, 3.0]).copy_(L.tensor([7.0, 8.0])),
            lambda L: L.zeros(3, 1).expand(3, 2).add_(1),
            lambda L: L.tensor([1.0], requires_grad=True).add_(1),
        ):
            with pytest.raises(RuntimeError):
                bad(lib)


# ------------------------------------------------------------------ gradient edge cases


def test_gradients_of_indexing_and_reductions_with_repeats():
    grads_same(lambda L, a: a.gather(1, L.tensor([[[0] * 5, [0] * 5]] * 3)), X345)
    grads_same(lambda L, a: a.index_select(-1, L.tensor([0, 0, 4, 0])), X345)
    grads_same(lambda L, a: L.take_along_dim(a, L.tensor([[[0, 0]]]), dim=2), X345)
    grads_same(lambda L, a: a[L.tensor([0, 0, 2]), 1:3, L.tensor([4, 4, 0])], X345)
    grads_same(lambda L, a: a[None, L.tensor([1, 1]), None, ..., None], X345)
    grads_same(
        lambda L, a, b: a.index_add(1, L.tensor([0, 0, 3]), b, alpha=2.0), X345, np.ones((3, 3, 5))
    )
    grads_same(
        lambda L, a, b: a.scatter_add(1, L.tensor([[[0, 0, 2, 3, 0]]]), b), X345, np.ones((1, 1, 5))
    )
    grads_same(lambda L, a: a.masked_select(L.tensor([True, False, True, True, False])), X345)
    grads_same(lambda L, a: a.var((0, 2), correction=2, keepdim=True), X345)
    grads_same(lambda L, a: a.norm(p=1, dim=1), X345)
    grads_same(lambda L, a: a.norm(p=float("inf"), dim=1), X345)
    grads_same(lambda L, a: a.cumprod(1), np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
    grads_same(lambda L, a: a.prod(1), np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
    grads_same(lambda L, a: a.logsumexp(1), np.array([[-np.inf, -np.inf], [0.0, 1.0]]))
    grads_same(lambda L, a: a.norm(), np.zeros(3))
    grads_same(lambda L, a: a.norm(p=1), np.zeros(3))
    grads_same(lambda L, a: a.clamp(-0.5, 0.5), np.array([-0.5, 0.5, 0.0, 1.0]))
    grads_same(lambda L, a, b: L.maximum(a, b), np.array([1.0, 2.0]), np.array([1.0, 3.0]))


# ================================================================== known discrepancies


def known_bug(finding: str):
    """``xfail(strict=True)`` for a recorded finding, reporting the failure without a traceback.

    (pytest renders an xfail's traceback even though it never shows it; for ~90 xfails through
    large source files that alone took over ten seconds.)
    """

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                fn(*args, **kwargs)
            except (Exception, pytest.fail.Exception) as e:  # incl. pytest.raises' DID NOT RAISE
                pytest.fail(f"{finding}: {type(e).__name__}: {e}", pytrace=False)

        return pytest.mark.xfail(strict=True, reason=finding)(wrapper)

    return deco


def test_int_index_separated_from_advanced_index_places_dims_like_torch():
    # torch applies integer indices as basic indexing first, so x[0, :, idx] has shape (4, 2)
    same(lambda L: L.arange(60.0).reshape(3, 4, 5)[0, :, L.tensor([0, 1])])


def test_int_none_advanced_index_shape_like_torch():
    same(lambda L: L.arange(120.0).reshape(2, 3, 4, 5)[-1, None, None, L.tensor([-1, 2])])


def test_setitem_int_separated_from_advanced_index_like_torch():
    def fn(L):
        x = L.zeros(3, 4, 5)
        x[0, :, L.tensor([0, 1])] = L.arange(8.0).reshape(4, 2)
        return x

    same(fn)


def test_adding_none_raises_instead_of_nan():
    with pytest.raises(TypeError):
        dl.tensor([1.0, 2.0]) + None


def test_adding_a_string_raises():
    with pytest.raises(TypeError):
        dl.tensor([1.0, 2.0]) + "1"


def test_complex_scalar_is_not_silently_dropped():
    try:
        r = dl.tensor([1.0, 2.0]) + 1j
    except (TypeError, RuntimeError):
        return  # refusing complex is acceptable
    assert r.tolist() != [1.0, 2.0], "imaginary part silently discarded"


def test_full_and_masked_fill_with_none_raise():
    with pytest.raises((TypeError, RuntimeError)):
        dl.full((2,), None)


def test_arange_with_float_tensor_bound_is_float():
    same(lambda L: L.arange(L.tensor(0.5), 3))


def test_arange_with_numpy_float32_bound_is_float():
    same(lambda L: L.arange(np.float32(0.5), 3))


def test_arange_large_int64_is_exact():
    same(lambda L: L.arange(2**53 + 1, 2**53 + 4))


def test_cummin_with_nan_like_torch():
    same(lambda L: L.tensor([1.0, float("nan"), 0.0, 3.0]).cummin(0))


def test_cummax_with_nan_value_and_grad_like_torch():
    grads_same(lambda L, x: x.cummax(0)[0], np.array([1.0, np.nan, 3.0, 0.0]))


@pytest.mark.parametrize("op", ["sum", "nansum", "prod", "cumsum"])
def test_integer_dtype_argument_of_reductions_is_honoured(op):
    ints = np.arange(6).reshape(2, 3)
    if op == "cumsum":
        same(lambda L: L.tensor(ints).cumsum(0, dtype=L.int32))
    else:
        same(lambda L: getattr(L.tensor(ints), op)(dtype=L.int32))


def test_sum_of_bools_with_dtype_int32():
    same(lambda L: (L.arange(5) > 1).sum(dtype=L.int32))


def test_numpy_float_scalar_does_not_upcast_float32_tensor():
    same(lambda L: L.ones(2) * np.float64(1.5))


def test_numpy_float_scalar_does_not_upcast_float16_tensor():
    same(lambda L: L.ones(2, dtype=L.float16) + np.float64(2))


def test_python_float_type_as_dtype_is_float64():
    same(lambda L: L.zeros(2, dtype=float))


def test_to_python_float_is_float64():
    same(lambda L: L.zeros(2).to(float))


def test_clamp_with_tensor_bound_tie_gradient_goes_to_input():
    grads_same(
        lambda L, a, lo: a.clamp(min=lo), np.array([-0.5, 0.5, 0.0]), np.array([-0.5, 0.6, 0.0])
    )


@pytest.mark.parametrize("p", [3, 0.5, 1.5])
def test_norm_gradient_at_zero_is_zero_not_nan(p):
    grads_same(lambda L, a: a.norm(p=p), np.zeros(3))


def test_atan2_gradient_at_origin_is_zero_not_nan():
    grads_same(lambda L, y, x: L.atan2(y, x), np.array([0.0, 1.0]), np.array([0.0, 0.0]))


@pytest.mark.parametrize(
    "op",
    [
        lambda y: y * 2,
        lambda y: y / 2,
        lambda y: 3 * y,
        lambda y: y.view(3, 1) * 1,
        lambda y: y * dl.tensor([1.0, 2.0, 3.0]),
    ],
)
def test_inplace_after_op_that_saves_nothing_is_allowed(op):
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    z = op(y)
    y.add_(1)
    z.sum().backward()  # torch: fine, the constant factor is all the backward needs
    assert x.grad is not None


def test_second_backward_through_graph_without_saved_tensors():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    a = (x + 3).sum()
    a.backward()
    a.backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_register_hook_returns_removable_handle():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 2)
    h.remove()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_shape_is_a_size_with_numel():
    x = dl.zeros(2, 3)
    assert isinstance(x.shape, dl.Size) and x.size().numel() == 6


def test_unsigned_numpy_arrays_keep_their_dtype_and_values():
    # as torch 2.13: uint16/32/64 arrays keep their dtype (the "limited support" types)
    for npd, top in ((np.uint16, 2**16 - 1), (np.uint32, 2**32 - 1), (np.uint64, 2**64 - 1)):
        d = dl.tensor(np.array([top], dtype=npd))
        t = torch.tensor(np.array([top], dtype=npd))
        assert d.tolist() == t.tolist() == [top]
        assert d.dtype.name == str(t.dtype)[6:] == np.dtype(npd).name


def test_out_of_range_values_for_small_int_dtype_raise():
    with pytest.raises(RuntimeError):
        dl.tensor([300], dtype=dl.int8)


def test_fill_integer_tensor_with_nan_raises():
    with pytest.raises(RuntimeError):
        dl.zeros(3, dtype=dl.int32).fill_(float("nan"))


def test_uint8_index_tensor_is_a_mask_like_torch():
    same(lambda L: L.arange(6.0).reshape(3, 2)[L.tensor([1, 0, 1], dtype=L.uint8)])


def test_list_of_lists_index_is_a_tuple_like_torch():
    same(lambda L: L.arange(60.0).reshape(3, 4, 5)[[[0, 1], [1, 2]]])


def test_split_of_empty_tensor_returns_one_empty_piece():
    same(lambda L: L.arange(0).split(2))


def test_int_tensor_compared_with_none_is_false():
    assert (dl.tensor([1]) == None) is False  # noqa: E711


def test_bool_tensor_iadd_int_raises():
    x = dl.tensor([True, False])
    with pytest.raises(RuntimeError):
        x += 1


def test_float_alpha_on_integer_add_raises():
    with pytest.raises(RuntimeError):
        dl.add(dl.tensor([1]), dl.tensor([1]), alpha=0.5)


def test_rand_with_integer_dtype_raises():
    with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
        dl.rand(3, dtype=dl.int64)


def test_randn_like_integer_raises():
    with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
        dl.randn_like(dl.tensor([1, 2]))


def test_fill_uint8_with_negative_int_wraps_like_torch():
    same(lambda L: L.zeros(3, dtype=L.uint8).fill_(-1))


def test_full_uint8_with_negative_int_wraps_like_torch():
    same(lambda L: L.full((2,), -1, dtype=L.uint8))


@pytest.mark.parametrize(
    "fill",
    [lambda L: L.tensor(3), lambda L: L.tensor(True), lambda L: np.int64(3)],
    ids=["int-tensor", "bool-tensor", "np-int"],
)
def test_full_infers_dtype_from_non_python_fill_value(fill):
    same(lambda L: L.full((2,), fill(L)))


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.arange(6.0).unfold(0, 2, 1),
        lambda L: L.arange(6.0).take(L.tensor([0, 5])),
        lambda L: L.tensor([1, 2]).true_divide(2),
        lambda L: L.tensor([1.5]).byte(),
        lambda L: L.tensor([1.5]).short(),
        lambda L: L.tensor([1.5]).char(),
        lambda L: L.zeros(3).nbytes,
        lambda L: L.tril_indices(3, 3),
        lambda L: L.searchsorted(L.tensor([1.0, 3.0]), L.tensor([2.0])),
        lambda L: L.isin(L.tensor([1, 2]), L.tensor([2])),
        lambda L: L.logaddexp(L.tensor([1.0]), L.tensor([2.0])),
        lambda L: L.clone(L.tensor([1.0])),
        lambda L: L.repeat_interleave(L.tensor([1, 0, 2])),
        lambda L: L.hstack([L.tensor(1.0), L.tensor(2.0)]),
        lambda L: L.ones(1, 3, 1).mH,
        lambda L: L.tensor([1, 1, 2, 2, 1]).unique_consecutive(return_counts=True),
        lambda L: L.tensor([[1, 1], [1, 1], [2, 0]]).unique_consecutive(return_inverse=True, dim=0),
        lambda L: L.tensor([2.0, 3.0, -500.0, 400.0]).logcumsumexp(0),
        lambda L: L.arange(12.0).reshape(2, 6).quantile(0.3, 1, interpolation="nearest"),
        lambda L: L.arange(12.0).reshape(2, 6).quantile(0.5, 1, interpolation="midpoint"),
        lambda L: L.arange(12.0).reshape(2, 6).quantile(0.7, 1, interpolation="higher"),
        lambda L: L.tensor([[1.0, 3.0, 3.0]]).mode(1),
        lambda L: L.zeros(2, 1).squeeze_(1),
        lambda L: L.zeros(2).unsqueeze_(0),
        lambda L: L.zeros(2, 3).t_(),
    ],
)
def test_torch_api_once_missing(call):
    same(call)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.ones(2, 3, 3).norm(p="nuc", dim=(1, 2)),
    ],
)
def test_missing_torch_api(call):
    same(call)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.ones(2, 3).sum(axis=0),
        lambda L: L.ones(2, 3).mean(1, keepdims=True),
        lambda L: L.cat([L.ones(2), L.ones(2)], axis=0),
        lambda L: L.ones(2, 3).permute(dims=(1, 0)),
        lambda L: L.ones(2, 3).reshape(shape=(3, 2)),
        lambda L: L.ones(2, 3).view(size=(3, 2)),
        lambda L: L.ones(1, 3).expand(size=(4, 3)),
        lambda L: L.arange(3).flip(dims=(0,)),
        lambda L: L.ones(4).split(split_size=2),
        lambda L: L.add(L.ones(2), 1, out=L.empty(2)),
        lambda L: L.matmul(L.ones(2, 3), L.ones(3), out=L.empty(0)),
    ],
)
def test_torch_keyword_spellings(call):
    same(call)


def test_scatter_legacy_reduce_multiply_as_torch():
    # (torch's legacy reduce= argument; it warns that it is deprecated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(
            lambda L: L.ones(2, 2).scatter(
                1, L.tensor([[0], [1]]), L.ones(2, 1) * 3, reduce="multiply"
            )
        )


def test_unique_keeps_each_nan_like_torch():
    same(lambda L: L.tensor([float("nan"), 1.0, float("nan")]).unique())


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.zeros(3).scatter(0, L.tensor([0]), L.tensor([1], dtype=L.int64)),
        lambda L: L.zeros(3).index_add(0, L.tensor([0]), L.tensor([1.0], dtype=L.float64)),
        lambda L: L.zeros(3).index_put((L.tensor([0]),), L.tensor([1.0], dtype=L.float64)),
    ],
)
def test_dtype_mismatches_torch_rejects(call):
    for L in (torch, dl):
        with pytest.raises(RuntimeError):
            call(L)


def test_int8_index_tensor_is_refused_like_torch():
    for dt in (dl.int8, dl.int16):
        with pytest.raises(IndexError, match="long, int, byte or bool"):
            dl.arange(6.0)[dl.tensor([0, 1], dtype=dt)]
    assert dl.arange(6.0)[dl.tensor([0, 1], dtype=dl.int32)].tolist() == [0.0, 1.0]
    assert dl.arange(6.0)[dl.tensor(1, dtype=dl.int8)].item() == 1.0  # 0-d: an int, as torch


def test_int_operands_for_matmul_and_dot_of_mixed_dtypes_raise():
    with pytest.raises(RuntimeError):
        dl.dot(dl.ones(3), dl.ones(3, dtype=dl.float64))


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.zeros(0).mean(),
        lambda L: L.tensor([1.0]) / 0,
        lambda L: L.tensor([0.0]) ** -1,
        lambda L: L.tensor([float("inf")]) - float("inf"),
    ],
)
def test_no_numpy_runtime_warnings_leak(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        call(torch)  # torch is silent
        call(dl)


@pytest.mark.parametrize(
    "call",
    [
        lambda L, h: 1e6 + h,
        lambda L, h: 1e6 - h,
        lambda L, h: L.where(L.tensor([True, False]), h, 1e6),
        lambda L, h: h.lerp(L.ones(2, dtype=L.float16), 1e6),
        lambda L, h: h.index_put((L.tensor([0]),), L.tensor(-1e6, dtype=L.float16)),
    ],
)
def test_python_number_beyond_float16_range_becomes_inf_silently(call):
    def run(L):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            return call(L, L.tensor([0.5, 2.0], dtype=L.float16)).tolist()

    assert run(dl) == run(torch)


def test_item_assignment_beyond_float16_range_is_inf_and_fill_refuses_like_torch():
    for L in (dl, torch):
        h = L.zeros(3, dtype=L.float16)
        h[0], h[1] = 1e6, -1e39
        assert h.tolist() == [math.inf, -math.inf, 0.0]
        for refused in (
            lambda L: L.zeros(3, dtype=L.float16).fill_(1e6),
            lambda L: L.zeros(3).fill_(1e39),
            lambda L: L.full((3,), -7e4, dtype=L.float16),
            lambda L: L.zeros(3, dtype=L.float16).masked_fill(L.ones(3, dtype=L.bool), 1e6),
        ):
            with pytest.raises(RuntimeError, match="without overflow"):
                refused(L)
        assert L.zeros(3, dtype=L.float16).fill_(math.inf).tolist() == [math.inf] * 3


def test_added_api_gradients_and_batched_search():
    # logaddexp, unfold and take differentiate as torch's
    a, b = np.array([1.0, -2.0, 3.0, 0.5]), np.array([1.0, 5.0, -1.0, 0.5])
    grads_same(lambda L, x, y: L.logaddexp(x, y) * L.arange(1.0, 5.0), a, b)
    grads_same(lambda L, x: x.unfold(0, 3, 1) * L.arange(6.0).reshape(2, 3), np.arange(4.0))
    grads_same(lambda L, x: x.reshape(2, 2).take(L.tensor([[3, 0], [3, -1]])), np.arange(4.0))
    # row-wise searchsorted, both sides
    rows, q = (
        np.array([[1.0, 2.0, 2.0, 5.0], [0.0, 1.0, 1.0, 1.0]]),
        np.array([[2.0, 6.0], [1.0, -1.0]]),
    )
    for right in (False, True):
        same(lambda L, r=right: L.searchsorted(L.tensor(rows), L.tensor(q), right=r))
    same(lambda L: L.bucketize(L.tensor([0.5, 2.0, 9.0]), L.tensor([1.0, 2.0, 5.0])))


def test_logcumsumexp_gradient_without_overflow():
    a = np.array([[1.0, -2.0, 300.0, 0.5, -1000.0], [3.0, 2.0, 1.0, 0.0, -1.0]])
    for dim in (0, 1):
        grads_same(lambda L, x, d=dim: L.logcumsumexp(x, d) * L.tensor([[1.0], [-2.0]]), a)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.tensor([-1, -200], dtype=L.uint8),
        lambda L: L.full((2,), -200, dtype=L.uint8),
        lambda L: L.tensor(5.0).unfold(0, 1, 1),
        lambda L: L.searchsorted(L.zeros(0, 3), L.zeros(0, 2)),
        lambda L: L.searchsorted(
            L.tensor([[1.0, 2.0, 2.0], [0.0, 5.0, 9.0]]), L.tensor([[2.0], [float("nan")]])
        ),
        lambda L: L.nn.functional.interpolate(L.ones(1, 1, 2, 2), scale_factor=np.float32(2.0)),
        lambda L: L.norm(L.full((100,), 100.0, dtype=L.float16), 3),
        lambda L: L.sigmoid(L.tensor([-100.0, -89.0, -20.0, 20.0])),
    ],
)
def test_review_regressions_follow_torch(call):
    same(call)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_values_and_gradients_like_torch(reduce, include_self, device):
    # small integer values: ties for amax/amin and zeros for prod on purpose
    r = np.random.default_rng(7)
    for _ in range(12):
        dim = int(r.integers(0, 2))
        shape = (int(r.integers(1, 4)), int(r.integers(1, 5)))
        ishape = [int(r.integers(1, shape[0] + 1)), int(r.integers(1, shape[1] + 1))]
        ishape[dim] = int(r.integers(1, 6))
        idx = r.integers(0, shape[dim], ishape)
        x = r.integers(-2, 3, shape).astype(np.float64)
        s = r.integers(-2, 3, ishape).astype(np.float64)
        g = r.standard_normal(shape)
        outs = []
        for lib in (dl, torch):
            dev = {"device": device} if lib is dl else {}
            a = lib.tensor(x, requires_grad=True, **dev)
            b = lib.tensor(s, requires_grad=True, **dev)
            out = lib.scatter_reduce(
                a, dim, lib.tensor(idx, **dev), b, reduce, include_self=include_self
            )
            out.backward(lib.tensor(g, **dev))
            outs.append([np.asarray(t.tolist()) for t in (out.detach(), a.grad, b.grad)])
        for mine, theirs in zip(*outs):
            np.testing.assert_allclose(mine, theirs, atol=1e-12)


@pytest.mark.parametrize("op", ["multiply", "maximum", "minimum"])
def test_segment_reduce_matches_ufunc_at(op):
    """The GPU's scatter product, max and min (sorted runs combined in log2 rounds), run on
    NumPy: long runs, zeros, NaN (which wins max and min, as torch), integers, float16 and
    bool give np.<op>.at's results."""
    from darklib.ops.indexing import _segment_reduce

    ufunc = getattr(np, op)
    r = np.random.default_rng(3)
    cases = [("float64", 200, 7), ("float64", 1000, 1), ("int64", 300, 20), ("float16", 64, 5)]
    if op != "multiply":
        cases.append(("bool", 50, 4))
    for dtype, n, size in cases:
        lin = r.integers(0, size, n)
        vals = r.uniform(0.5, 1.5, n) * r.choice([-1, 1], n)
        if dtype in ("int64", "bool"):
            vals = r.integers(-2, 3, n)
        else:
            vals[r.integers(0, n, 3)] = 0.0
            vals[5] = np.nan
        out = r.uniform(1, 2, size + 3).astype(dtype)
        want = out.copy()
        ufunc.at(want, lin, vals.astype(dtype))
        _segment_reduce(np, out, lin, vals.astype(dtype), ufunc)
        np.testing.assert_allclose(
            out.astype(np.float64),
            want.astype(np.float64),
            rtol=1e-3 if dtype == "float16" else 1e-12,
        )
    empty = np.ones(3)
    _segment_reduce(np, empty, np.zeros(0, np.int64), np.zeros(0), ufunc)
    assert empty.tolist() == [1.0, 1.0, 1.0]


def _made_under_default(L):
    return [
        L.nn.Linear(3, 2).weight,
        L.nn.Conv2d(1, 2, 3).bias,
        L.nn.BatchNorm2d(2).running_mean,
        L.nn.Parameter(),
        L.tensor([1.0]),
        L.tensor(2.0),
        L.tensor([1], dtype=L.float32),
        L.zeros(2),
        L.empty(1),
        L.eye(2),
        L.arange(0.0, 3),
        L.linspace(0, 1, 3),
        L.randn(2),
        L.rand(2),
        L.full((2,), 1.5),
        L.tensor([1]) / 2,
        L.tensor([1]) * 2.5,
    ]


@pytest.mark.parametrize("name", ["float64", "float16"])
def test_set_default_dtype_governs_new_float_tensors_like_torch(name):
    got = {}
    for L in LIBS:
        before = L.get_default_dtype()
        L.set_default_dtype(getattr(L, name))
        try:
            got[L] = [str(t.dtype).split(".")[-1] for t in _made_under_default(L)]
            got[L].append(float(L.finfo().eps))
            assert L.get_default_dtype() == getattr(L, name)
        finally:
            L.set_default_dtype(before)
    assert got[dl] == got[torch]
    assert dl.get_default_dtype() == dl.float32 and dl.zeros(1).dtype == dl.float32
    with pytest.raises(TypeError, match="only floating-point"):
        dl.set_default_dtype(dl.int64)


_INF, _NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    "values, q, how",
    [
        ([1.0, _NAN, 3.0, 0.0], 0.3, "linear"),  # NaN anywhere: a NaN quantile
        ([-1.0, 1.0, _INF, _INF], 0.4, "nearest"),  # picks do no arithmetic with inf
        ([-1.0, 1.0, _INF, _INF], 0.4, "higher"),
        ([-1.0, 1.0, _INF, _INF], 0.5, "lower"),
        ([-_INF, 0.0, 1.0], 0.45, "linear"),  # lerp from the nearer end: not inf - inf
        ([-_INF, 0.0, 1.0], 0.45, "midpoint"),
        ([_INF, _INF], 0.5, "linear"),
        ([-_INF, -_INF, 2.0], 0.25, "linear"),
        ([1.0, 2.0, 3.0, 4.0], [0.1, 0.5, 0.9], "linear"),
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_quantile_with_infinities_and_nan_as_torch(values, q, how, device):
    res = []
    for m in (torch, dl):
        dev = {"device": device} if m is dl else {}
        x = m.tensor(values, dtype=m.float64, requires_grad=True, **dev)
        qq = m.tensor(q, dtype=m.float64, **dev) if isinstance(q, list) else q
        y = m.quantile(x, qq, interpolation=how)
        y.sum().backward()
        res.append((np.array(y.tolist()), np.array(x.grad.tolist())))
    for d, t in zip(res[1], res[0]):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_quantile_of_slices_with_nan_along_a_dim(device):
    x = np.random.default_rng(0).standard_normal((3, 5))
    x[1, 2] = _NAN
    res = []
    for m in (torch, dl):
        dev = {"device": device} if m is dl else {}
        xt = m.tensor(x, requires_grad=True, **dev)
        q = m.tensor([0.2, 0.7], dtype=xt.dtype, **dev)
        y = m.quantile(xt, q, dim=1, keepdim=True)
        y.sum().backward()
        res.append((np.array(y.tolist()), np.array(xt.grad.tolist())))
    for d, t in zip(res[1], res[0]):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)
