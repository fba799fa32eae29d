"""Edge cases where darklib once disagreed with torch: values, dtypes, gradients, errors,
in-place and view semantics, and the ops and Tensor methods PyTorch users reach for."""

import math
import threading
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, compare, gradcheck, rng


def lib_of(t):
    return dl if isinstance(t, dl.Tensor) else torch


def both(fn):
    """Run ``fn(lib)`` with torch and darklib; return the two results as numpy trees."""

    def conv(v):
        if isinstance(v, dl.Tensor | torch.Tensor):
            return np.asarray(
                v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v.numpy(force=True)
            )
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        return v

    return conv(fn(torch)), conv(fn(dl))


def assert_same(fn):
    t, d = both(fn)
    if isinstance(t, list):
        assert len(t) == len(d)
        for a, b in zip(t, d):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(d, t, rtol=1e-5, atol=1e-6)


F32 = rng(0).standard_normal((3, 4)).astype(np.float32)
I64 = rng(1).integers(-7, 8, (3, 4))


# ------------------------------------------------------------------ elementwise


def test_zero_dim_results_are_tensors_of_arrays():
    z = dl.tensor(2.5)
    for out in (z.floor(), z > 1, z.isnan(), z.sign()):
        assert isinstance(out.array, np.ndarray) and out.shape == ()
    assert ((z.floor() * z) + (z > 1)).item() == 6.0


def test_bool_subtraction_and_negation_are_refused_like_torch():
    m = dl.tensor([True, False])
    with pytest.raises(RuntimeError, match="bool tensor"):
        m - m
    with pytest.raises(RuntimeError, match="bool tensor"):
        dl.ones(2) - m
    with pytest.raises(RuntimeError, match="bool tensor"):
        -m
    assert (~m).tolist() == [False, True]


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x + -3,
        lambda x: -3 - x,
        lambda x: x * -2,
        lambda x: x < -3,
        lambda x: x // -3,
    ],
)
def test_uint8_wraps_negative_python_ints_like_torch(f):
    a = np.array([1, 2, 200], np.uint8)
    t, d = f(torch.tensor(a)), f(dl.tensor(a))
    assert d.dtype.name == str(t.dtype).replace("torch.", "")
    assert d.tolist() == t.tolist()


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_integer_rounding_division(mode):
    a, b = I64, np.array([3, -3, 2, -2])
    t = torch.tensor(a).div(torch.tensor(b), rounding_mode=mode)
    d = dl.tensor(a).div(dl.tensor(b), rounding_mode=mode)
    assert d.dtype == dl.int64 and d.tolist() == t.tolist()
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        dl.tensor(a).div(0, rounding_mode=mode)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        dl.tensor(a) % 0


def test_float_floor_division_and_zero_gradient():
    a = np.array([1.0, -1.0, 0.0, 7.5, -7.5], np.float32)
    b = np.array([0.0, 0.0, 0.0, 2.0, 2.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(
            (dl.tensor(a) // dl.tensor(b)).numpy(), (torch.tensor(a) // torch.tensor(b)).numpy()
        )
    x = dl.tensor([3.5, -1.5], requires_grad=True)
    y = x // 2
    assert y.requires_grad
    (y * x).sum().backward()
    assert x.grad.tolist() == [1.0, -1.0]  # only the product's own term


@pytest.mark.parametrize("op", ["remainder", "fmod"])
def test_remainder_and_fmod(op):
    a = rng(2).uniform(-5, 5, (3, 4)).astype(np.float32)
    b = rng(3).choice([-2.5, -1.5, 1.5, 2.5], (4,)).astype(np.float32)
    compare(getattr(dl, op), getattr(torch, op), a, b)
    compare(lambda x: x % 3, lambda x: x % 3, I64)
    compare(lambda x: x % -3, lambda x: x % -3, I64)


def test_integer_and_bool_powers():
    assert_same(lambda L: L.tensor([2, 3]) ** 2)
    assert_same(lambda L: L.tensor([5, 1, -1]) ** L.tensor([-1, -2, -3]))
    assert_same(lambda L: L.tensor([True, False]) ** 2)
    assert (dl.tensor([True, False]) ** 2).dtype == dl.int64
    assert (dl.tensor([True, False]) ** True).dtype == dl.bool
    with pytest.raises(RuntimeError, match="negative integer powers"):
        dl.tensor([2, 3]) ** -1
    with pytest.raises(RuntimeError, match="not implemented for bool"):
        dl.tensor([True]) ** dl.tensor([True])


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign"])
def test_piecewise_constant_ops_have_zero_gradient_in_the_graph(name):
    a = np.array([[0.5, 1.5, 2.5, -0.5], [-1.7, 2.2, 0.0, np.nan]], np.float32)
    compare(lambda x: getattr(x, name)() * x, lambda x: getattr(x, name)() * x, a)


def test_round_decimals_sign_bool_and_integer_inputs():
    assert_same(lambda L: L.tensor([1.2345, -2.5551]).round(decimals=2))
    assert_same(lambda L: L.tensor([1, -2]).floor())
    assert dl.tensor([True, False]).sign().dtype == dl.bool
    with pytest.raises(RuntimeError, match="bool"):
        dl.tensor([True]).floor()


@pytest.mark.parametrize(
    "f",
    [
        lambda x, y: x.abs(),
        lambda x, y: x.relu(),
        lambda x, y: lib_of(x).maximum(x, y),
        lambda x, y: lib_of(x).minimum(x, y),
        lambda x, y: x.clamp(-0.5, 0.5),
        lambda x, y: x.max(),
        lambda x, y: x.amax(1),
        lambda x, y: x.prod(1),
    ],
)
def test_nan_gradients_follow_torch(f):
    x = F32.copy()
    x[1, 2] = np.nan
    y = F32[::-1].copy()
    y[0, 0] = np.nan
    compare(f, f, x, y)


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_gradients_with_zeros_and_infinities(dim):
    x = np.array([[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 2.0, 1.0], [2.0, np.inf, 0.5, 4.0]], np.float32)
    f = (lambda t: t.prod()) if dim is None else (lambda t: t.prod(dim))
    compare(f, f, x)
    compare(f, f, F32)


def test_where_forms_and_dtypes():
    c = dl.tensor(F32) > 0
    assert dl.where(c, 1.0, 0.0).dtype == dl.float32
    assert dl.where(c, 1, 0).dtype == dl.int64
    assert dl.where(c, dl.tensor(I64), 1.5).dtype == dl.float32
    idx = dl.where(c)
    assert isinstance(idx, tuple) and len(idx) == 2
    assert idx[0].tolist() == torch.where(torch.tensor(F32) > 0)[0].tolist()


def test_clamp_semantics():
    compare(lambda x: x.clamp(1, 0), lambda x: x.clamp(1, 0), F32)  # min > max gives max
    assert_same(lambda L: L.tensor([1, 5, -3]).clamp(-1.5, 2.5))
    assert dl.tensor([1, 5]).clamp(0.5, 2.5).dtype == dl.float32
    compare(lambda x: x.clamp_min(0.1), lambda x: x.clamp_min(0.1), F32)


UNARY_NEW = [
    "log1p",
    "expm1",
    "log2",
    "log10",
    "exp2",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "erf",
    "frac",
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", UNARY_NEW)
def test_more_unary_math(name, device):
    a = rng(4).uniform(-0.9, 0.9, (3, 5)).astype(np.float32)
    if name in ("log2", "log10"):
        a = np.abs(a) + 0.1
    compare(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), a, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "dtype, rtol", [(np.float32, 4e-7), (np.float64, 2e-15), (np.float16, 1e-3)]
)
def test_erf_is_accurate_relative_to_its_value_at_every_magnitude(device, dtype, rtol):
    """erf(x) ~ 1.128 x near 0: an absolute-error fit is wrong there in relative terms."""
    mags = np.concatenate([[0.0, 1e-30, 1e-12, 1e-6, 1e-4], np.linspace(1e-3, 7, 997), [30.0]])
    x = np.concatenate([mags, -mags]).astype(dtype)
    x = x[(np.abs(x) >= np.finfo(dtype).tiny) | (x == 0)]  # no subnormal halves
    got = dl.erf(dl.tensor(x, device=device)).cpu().numpy().astype(np.float64)
    want = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    special = np.array([np.inf, -np.inf, np.nan, -0.0], dtype)
    out = dl.erf(dl.tensor(special, device=device)).cpu().numpy()
    assert out[0] == 1 and out[1] == -1 and np.isnan(out[2]) and np.signbit(out[3])


@pytest.mark.parametrize("name", ["log1p", "tan", "atan", "asin", "erf"])
def test_more_unary_math_gradcheck(name):
    gradcheck(lambda x: getattr(x, name)(), rng(5).uniform(-0.8, 0.8, (2, 3)))


def test_binary_helpers_against_torch():
    b = rng(6).standard_normal(4).astype(np.float32)
    w = rng(7).uniform(0.5, 2, (3, 1)).astype(np.float32)
    compare(lambda x, y: x.atan2(y), lambda x, y: x.atan2(y), F32, b)
    compare(lambda x, y, z: x.lerp(y, z), lambda x, y, z: x.lerp(y, z), F32, b, w)
    compare(
        lambda x, y, z: x.addcmul(y, z, value=0.5),
        lambda x, y, z: x.addcmul(y, z, value=0.5),
        F32,
        b,
        w,
    )
    compare(
        lambda x, y, z: x.addcdiv(y, z, value=2),
        lambda x, y, z: x.addcdiv(y, z, value=2),
        F32,
        b,
        w,
    )
    a = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    compare(lambda x: x.nan_to_num(), lambda x: x.nan_to_num(), a)
    compare(lambda x: x.nan_to_num(0.5, 9.0, -9.0), lambda x: x.nan_to_num(0.5, 9.0, -9.0), a)
    x, y = dl.tensor(F32), dl.tensor(F32 + 1e-7)
    assert dl.allclose(x, y) and x.isclose(y).all() and not dl.equal(x, y) and dl.equal(x, x)


def test_bitwise_operators_on_integers_and_bools():
    assert_same(lambda L: L.tensor(I64) & 3)
    assert_same(lambda L: L.tensor(I64) | L.tensor(I64[::-1].copy()))
    assert_same(lambda L: ~L.tensor(I64))
    assert_same(lambda L: (L.tensor(F32) > 0) ^ (L.tensor(F32) > 0.5))
    with pytest.raises(RuntimeError, match="not implemented"):
        dl.ones(2) & 1


def test_broadcast_errors_are_runtime_errors_naming_the_sizes():
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match.*\(2\)"):
        dl.ones(2, 3) + dl.ones(2, 2)


# ------------------------------------------------------------------ reductions


def test_var_std_edge_gradients_follow_torch():
    compare(
        lambda x: x.std(1, keepdim=True),
        lambda x: x.std(1, keepdim=True),
        np.ones((2, 4), np.float32),
    )
    for corr in (0, 2):
        f = lambda x, c=corr: x.var(0, correction=c)
        compare(f, f, np.ones((1, 4), np.float32))
    with pytest.warns(UserWarning, match="degrees of freedom"):
        assert np.isnan(dl.ones(1).std().item())


def test_empty_softmax_logsumexp_and_elementwise_all():
    e = np.zeros((0, 3), np.float32)
    compare(lambda x: x.softmax(0), lambda x: x.softmax(0), e)
    compare(lambda x: x.log_softmax(0), lambda x: x.log_softmax(0), e)
    compare(lambda x: x.logsumexp(0), lambda x: x.logsumexp(0), e)
    assert_same(lambda L: L.tensor(F32).all(dim=()))
    assert_same(lambda L: L.tensor(I64).any(dim=()))
    with pytest.raises(RuntimeError, match="bool"):
        dl.tensor([True, False]).argmax()


def test_softmax_of_minus_inf_rows_and_extremes():
    x = F32.copy() * 100
    x[1] = -np.inf
    compare(lambda t: t.softmax(1), lambda t: t.softmax(1), x)
    compare(lambda t: t.log_softmax(0), lambda t: t.log_softmax(0), F32 * 1e4)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, -1])
def test_sort_argsort_topk(descending, dim):
    x = np.array([[1, 3, 3, 2], [2, 2, 1, 1], [0, np.nan, 0, 5]], np.float32)
    for a in (x, F32, I64):
        tv, ti = torch.tensor(a).sort(dim=dim, descending=descending, stable=True)
        dv, di = dl.tensor(a).sort(dim, descending=descending)
        np.testing.assert_array_equal(dv.numpy(), tv.numpy())
        assert di.tolist() == ti.tolist()
        assert dl.tensor(a).argsort(dim, descending).tolist() == ti.tolist()
    compare(lambda t: t.sort(dim, descending)[0], lambda t: t.sort(dim, descending)[0], F32)
    f = lambda t: t.topk(2, dim, largest=not descending)
    compare(f, f, F32)
    with pytest.raises(RuntimeError, match="out of range"):
        dl.tensor(F32).topk(9)


def test_median_cumprod_and_friends():
    tie = np.array([[1, 3, 3, 2], [2, 2, 1, 1], [3, 3, 3, 3]], np.float32)
    for a in (F32, tie):
        compare(lambda t: t.median(), lambda t: t.median(), a)
        compare(lambda t: t.median(1), lambda t: t.median(1), a)
    z = np.array([[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 2.0, 1.0], [2.0, 3.0, 0.5, 4.0]], np.float32)
    for a in (F32, z):
        compare(lambda t: t.cumprod(1), lambda t: t.cumprod(1), a)
        compare(lambda t: t.cumprod(0), lambda t: t.cumprod(0), a)
    assert_same(lambda L: L.tensor(I64).cumprod(0))
    compare(lambda t: lib_of(t).var_mean(t, 1), lambda t: torch.var_mean(t, 1), F32)
    compare(
        lambda t: lib_of(t).std_mean(t, 0, correction=0),
        lambda t: torch.std_mean(t, 0, correction=0),
        F32,
    )
    compare(lambda t: t.nansum(1), lambda t: t.nansum(1), np.where(F32 > 1, np.nan, F32))
    compare(lambda t: t.nanmean(), lambda t: t.nanmean(), np.where(F32 > 1, np.nan, F32))
    assert_same(lambda L: L.tensor(I64).count_nonzero(1))
    mn, mx = dl.aminmax(dl.tensor(F32), dim=0)
    assert mn.tolist() == torch.tensor(F32).amin(0).tolist() and mx.shape == (4,)


# ------------------------------------------------------------------ shape, indexing, linalg


def test_view_of_non_contiguous_raises_and_reshape_copies():
    x = dl.tensor(F32)
    with pytest.raises(RuntimeError, match="view"):
        x.t().view(-1)
    assert x.t().reshape(-1).tolist() == torch.tensor(F32).t().reshape(-1).tolist()


def test_triangles_diagonals_and_repeats():
    compare(lambda t: t.triu(1), lambda t: t.triu(1), F32)
    compare(
        lambda t: t.tril(-1),
        lambda t: t.tril(-1),
        rng(8).standard_normal((2, 3, 4)).astype(np.float32),
    )
    compare(lambda t: t.diagonal(1), lambda t: t.diagonal(1), F32)
    compare(lambda t: lib_of(t).diag(t, -1), lambda t: torch.diag(t, -1), F32[0])
    compare(lambda t: lib_of(t).diag(t, 1), lambda t: torch.diag(t, 1), F32)
    compare(lambda t: t.trace(), lambda t: t.trace(), F32)
    compare(lambda t: t.repeat_interleave(2, 0), lambda t: t.repeat_interleave(2, 0), F32)
    compare(
        lambda t: t.repeat_interleave(dl.tensor([1, 0, 2, 1]), dim=1),
        lambda t: t.repeat_interleave(torch.tensor([1, 0, 2, 1]), dim=1),
        F32,
    )
    a, b = F32[0, :3].copy(), F32[1].copy()
    for ix in ("ij", "xy"):
        compare(
            lambda x, y, i=ix: dl.meshgrid(x, y, indexing=i),
            lambda x, y, i=ix: torch.meshgrid(x, y, indexing=i),
            a,
            b,
        )
    compare(
        lambda x, y: lib_of(x).broadcast_tensors(x, y),
        lambda x, y: torch.broadcast_tensors(x, y),
        F32[:, :1],
        b,
    )
    assert dl.broadcast_shapes((3, 1), (4,)) == (3, 4)


def test_index_add_fill_and_fill_diagonal():
    src = rng(9).standard_normal((3, 3)).astype(np.float32)
    compare(
        lambda t, s: t.index_add(1, dl.tensor([0, 0, 2]), s, alpha=2),
        lambda t, s: t.index_add(1, torch.tensor([0, 0, 2]), s, alpha=2),
        F32,
        src,
    )
    compare(
        lambda t: t.index_fill(1, lib_of(t).tensor([0, 2]), -1.0),
        lambda t: t.index_fill(1, torch.tensor([0, 2]), -1.0),
        F32,
    )
    tall = rng(10).standard_normal((7, 3)).astype(np.float32)
    compare(
        lambda t: (t * 1).fill_diagonal_(5.0, wrap=True),
        lambda t: (t * 1).fill_diagonal_(5.0, wrap=True),
        tall,
    )


def test_tensor_index_fast_path_and_bounds():
    compare(
        lambda t: t[lib_of(t).tensor([0, -1, 2, 2])], lambda t: t[torch.tensor([0, -1, 2, 2])], F32
    )
    with pytest.raises(IndexError, match="out of bounds"):
        dl.tensor(F32)[dl.tensor([3])]


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ij->j", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk", [(2, 2, 3), (3, 4)]),
    ("ji", [(3, 4)]),
    ("bi,bi->b", [(1, 4), (5, 4)]),
    ("ii->i", [(3, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
]


@pytest.mark.parametrize("eq, shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_against_torch(eq, shapes):
    r = rng(11)
    arrays = [r.standard_normal(s).astype(np.float32) for s in shapes]
    compare(lambda *a: dl.einsum(eq, *a), lambda *a: torch.einsum(eq, *a), *arrays)


def test_einsum_gradcheck_and_small_products():
    r = rng(12)
    gradcheck(
        lambda a, b: dl.einsum("bij,jk->bik", a, b),
        r.standard_normal((2, 2, 3)),
        r.standard_normal((3, 2)),
    )
    v, m = F32[0].copy(), F32.copy()
    compare(lambda a, b: lib_of(a).outer(a, b), torch.outer, v, v[:3].copy())
    compare(lambda a, b: a.dot(b), lambda a, b: a.dot(b), v, v[::-1].copy())
    compare(lambda a, b: a.mv(b), lambda a, b: a.mv(b), m, v)
    compare(
        lambda i, a, b: lib_of(a).addmm(i, a, b, beta=0.5, alpha=2),
        lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2),
        v,
        m.T.copy(),
        m,
    )


# ------------------------------------------------------------------ in place and views


def run_both(f):
    """``f(lib, x)`` with x a float leaf of F32; returns outputs and x.grad per library."""
    out = []
    for lib in (torch, dl):
        x = lib.tensor(F32, requires_grad=True)
        res = f(lib, x)
        out.append(
            (
                [np.asarray(r.detach().numpy()) for r in res],
                None if x.grad is None else np.asarray(x.grad.numpy()),
            )
        )
    (tr, tg), (dr, dg) = out
    for a, b in zip(tr, dr):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    if tg is None:
        assert dg is None
    else:
        np.testing.assert_allclose(dg, tg, rtol=1e-5, atol=1e-6)


def _backward(y):
    (y * y).sum().backward()
    return [y]


VIEW_CASES = {
    "inplace on a slice reaches the base": lambda L, x: _backward(
        (lambda y: (y[0].mul_(3), y)[1])(x * 2)
    ),
    "inplace on view(-1)": lambda L, x: _backward((lambda y: (y.view(-1).add_(1), y)[1])(x * 2)),
    "zero_ through a transpose": lambda L, x: _backward(
        (lambda y: (y.t()[0].zero_(), y)[1])(x * 2)
    ),
    "view of a view": lambda L, x: _backward((lambda y: (y[1][1:].sigmoid_(), y)[1])(x * 2)),
    "setitem through a view": lambda L, x: _backward(
        (lambda y: (y.t().__setitem__((0, 1), 10.0), y)[1])(x * 1)
    ),
    "base changed, view used after": lambda L, x: (lambda y, v: (y.mul_(2), _backward(v))[1])(
        *(lambda y: (y, y[1:]))(x * 1)
    ),
    "sibling views": lambda L, x: (lambda y: (y[:2].mul_(10), _backward(y[1:]))[1])(x * 1),
    "diagonal zero_": lambda L, x: _backward((lambda y: (y.diagonal().zero_(), y)[1])(x * 1)),
    "relu_ on a reshaped view": lambda L, x: _backward(
        (lambda y: (y.reshape(2, 6)[1].relu_(), y)[1])(x * 1)
    ),
}


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_inplace_on_views_matches_torch(name):
    run_both(VIEW_CASES[name])


def test_inplace_with_grad_argument_into_no_grad_base():
    res = []
    for lib in (torch, dl):
        b = lib.zeros(3)
        w = lib.tensor([5.0, 6.0], requires_grad=True)
        b[:2] = w * 2
        b[1:].mul_(w)
        b.sum().backward()
        assert b.requires_grad and not b.is_leaf
        res.append((b.tolist(), w.grad.tolist()))
    assert res[0] == res[1] == ([10.0, 60.0, 0.0], [14.0, 10.0])


def test_inplace_does_not_reroute_earlier_consumers():
    # z was computed from y before y changed in place: its gradient must not see the change
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y + 1
    y.mul_(2)
    z.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_version_counter_is_shared_by_views_and_detach():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    y = x.sigmoid()
    y.detach().zero_()  # shares y's memory and version: sigmoid's saved output is stale
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
    x2 = dl.tensor([1.0, 2.0], requires_grad=True)
    y2 = x2 * 1
    z2 = y2.sin()
    y2[0].add_(1)  # through a view
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z2.sum().backward()


def test_inplace_errors_for_leaf_views_and_expanded_tensors():
    w = dl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        w[0].add_(1)
    with pytest.raises(RuntimeError, match="more than one element"):
        (w * 1).expand(3, 2).add_(1)
    with dl.no_grad():
        w[0].add_(1)  # optimizers may
    assert w.tolist() == [2.0, 2.0] and w.is_leaf


def test_no_grad_inplace_on_views_shares_memory():
    assert_same(lambda L: (lambda x: (x.t().add_(1), x[:, 0].fill_(5), x)[2])(L.zeros(2, 3)))


# ------------------------------------------------------------------ losses


def test_cross_entropy_with_every_target_ignored():
    x = F32.copy()
    t = np.full(3, -100)
    compare(
        lambda a, b: dl.nn.functional.cross_entropy(a, b),
        lambda a, b: torch.nn.functional.cross_entropy(a, b),
        x,
        t,
    )
    compare(
        lambda a, b: dl.nn.functional.cross_entropy(a, b, label_smoothing=0.1),
        lambda a, b: torch.nn.functional.cross_entropy(a, b, label_smoothing=0.1),
        x,
        t,
    )
    compare(
        lambda a, b: dl.nn.functional.nll_loss(a, b),
        lambda a, b: torch.nn.functional.nll_loss(a, b),
        x,
        t,
    )


# ------------------------------------------------------------------ Tensor API, repr, modes


def test_repr_matches_torch_on_random_tensors():
    r = rng(13)
    for trial in range(60):
        shape = tuple(r.integers(1, 6, r.integers(0, 4)))
        kind = trial % 5
        if kind == 0:
            a = r.standard_normal(shape).astype(np.float32)
        elif kind == 1:
            a = r.integers(-1000, 1000, shape)
        elif kind == 2:
            a = (r.standard_normal(shape) * 10.0 ** r.integers(-6, 9)).astype(np.float32)
        elif kind == 3:
            a = r.integers(-5, 5, shape).astype(np.float64)
        else:
            a = r.random(shape) > 0.5
        assert repr(dl.tensor(a)) == repr(torch.tensor(a)).replace("torch.", "darklib.")
    for a in (
        np.zeros((0, 3), np.float32),
        np.zeros(0, np.int64),
        np.arange(2000.0, dtype=np.float32),
    ):
        assert repr(dl.tensor(a)) == repr(torch.tensor(a)).replace("torch.", "darklib.")
    y = dl.tensor([1.5, 2.0], requires_grad=True) * 2
    assert repr(y) == "tensor([3., 4.], grad_fn=<MulBackward0>)"


def test_tensor_api_names():
    x = dl.zeros(2, 3)
    assert x.type() == "darklib.FloatTensor" and x.long().type() == "darklib.LongTensor"
    assert x.type(dl.float64).dtype == dl.float64
    assert x.stride() == (3, 1) and x.t().stride() == (1, 3)
    assert x.nelement() == 6 and x.ndimension() == 2 and x.is_signed()
    assert dl.Size([2, 3]) == x.shape and dl.Size([2, 3]).numel() == 6
    assert repr(dl.Size([2, 3])) == "darklib.Size([2, 3])"
    y = dl.ones(2, requires_grad=True) * 2
    assert y.numpy(force=True).tolist() == [2.0, 2.0]
    assert 2.0 in y.detach() and dl.is_tensor(y) and dl.numel(y) == 2
    assert dl.finfo(dl.float32).eps == torch.finfo(torch.float32).eps
    assert dl.iinfo(dl.uint8).max == 255
    assert dl.promote_types(dl.int64, dl.float16) == dl.float16
    assert dl.result_type(dl.tensor([1]), 2.5) == dl.float32


def test_grad_modes_bare_decorators_inference_mode_and_threads():
    @dl.no_grad
    def a():
        return dl.is_grad_enabled()

    @dl.inference_mode
    def b():
        return dl.is_grad_enabled()

    @dl.inference_mode(False)
    def c():
        return dl.is_grad_enabled()

    assert (a(), b(), c()) == (False, False, True)
    with dl.inference_mode():
        assert not dl.is_grad_enabled()
    seen = []
    with dl.no_grad():
        t = threading.Thread(target=lambda: seen.append(dl.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True] and dl.is_grad_enabled()


def test_create_graph_through_an_op_not_covered_is_refused_clearly():
    x = dl.tensor([2.0, 1.0], requires_grad=True)
    y = dl.zeros(1).scatter_reduce(0, dl.tensor([0, 0]), x, "sum")
    with pytest.raises(NotImplementedError, match=r"ScatterReduce yet.*without create_graph"):
        dl.autograd.grad(y[0], x, create_graph=True)


def test_random_fills_and_sampling():
    dl.manual_seed(0)
    x = dl.empty(2000)
    x.uniform_(-2, 2)
    assert -2 <= x.min().item() and x.max().item() < 2
    x.normal_(3, 0.5)
    assert abs(x.mean().item() - 3) < 0.1 and abs(x.std().item() - 0.5) < 0.1
    x.bernoulli_(0.25)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0} and abs(x.mean().item() - 0.25) < 0.05
    w = dl.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor"):
        w.normal_()
    s = dl.multinomial(dl.tensor([0.0, 1.0, 3.0]), 2)
    assert sorted(s.tolist()) == [1, 2]
    r = dl.multinomial(dl.tensor([[1.0, 0.0], [0.0, 1.0]]), 4, replacement=True)
    assert r.tolist() == [[0] * 4, [1] * 4]
    assert dl.normal(dl.zeros(3), 1.0).shape == (3,)


def test_kthvalue_cummax_quantile_and_other_helpers():
    x = rng(14).standard_normal((3, 5)).astype(np.float32)
    tie = np.array([[1, 3, 3, 2, 3], [2, 2, 1, 1, 5], [0, 0, 0, 0, 0]], np.float32)
    compare(lambda t: t.kthvalue(2, 1), lambda t: t.kthvalue(2, 1), x)
    for a in (x, tie):
        for name in ("cummax", "cummin"):
            compare(lambda t, n=name: getattr(t, n)(1), lambda t, n=name: getattr(t, n)(1), a)
            compare(lambda t, n=name: getattr(t, n)(0), lambda t, n=name: getattr(t, n)(0), a)
        compare(lambda t: t.quantile(0.3, dim=1), lambda t: t.quantile(0.3, dim=1), a)
        compare(
            lambda t: t.quantile(lib_of(t).tensor([0.25, 0.75]), keepdim=True),
            lambda t: t.quantile(torch.tensor([0.25, 0.75]), keepdim=True),
            a,
        )
        compare(lambda t: t.diff(n=2, dim=0), lambda t: t.diff(n=2, dim=0), a)
    compare(
        lambda t: t.rot90(1, (0, 2)),
        lambda t: t.rot90(1, (0, 2)),
        rng(15).standard_normal((2, 3, 4)).astype(np.float32),
    )
    compare(lambda t: t.rot90(3), lambda t: t.rot90(3), x)
    compare(lambda t: t.tensor_split([1, 4], 1), lambda t: t.tensor_split([1, 4], 1), x)
    compare(lambda t: t.tensor_split(3, 1), lambda t: t.tensor_split(3, 1), x)
    y = rng(16).standard_normal((4, 3)).astype(np.float32)
    compare(lambda a, b: lib_of(a).cdist(a, b), torch.cdist, y, y[::-1].copy() + 0.5, atol=1e-4)
    compare(lambda a, b: a.dist(b, 1), lambda a, b: a.dist(b, 1), x, x[0].copy())
    compare(lambda a, b: a.hypot(b), lambda a, b: a.hypot(b), x, x[0].copy())
    p = np.array([0.1, 0.5, 0.9, 1.0, 0.0], np.float32)
    compare(lambda t: t.logit(), lambda t: t.logit(), p)
    compare(lambda t: t.logit(1e-3), lambda t: t.logit(1e-3), p)
    compare(
        lambda a, b: a.xlogy(b),
        lambda a, b: a.xlogy(b),
        np.array([0.0, 1.0, 2.0, 0.0], np.float32),
        np.array([0.0, 2.0, 3.0, np.nan], np.float32),
    )
    assert_same(lambda L: L.tensor([1, 3, 3, 0]).bincount(minlength=6))
    assert dl.randint(10, (3,)).shape == (3,)


def test_deepcopy_gives_independent_leaves():
    import copy

    t = dl.randn(3, 4)
    c = copy.deepcopy(t[0])  # a view: the copy owns its memory
    c.add_(100)
    assert c._view is None and abs(t[0].sum().item() - c.sum().item()) > 100
    x = dl.randn(2, requires_grad=True)
    (x * 2).sum().backward()
    xc = copy.deepcopy(x)
    assert xc.requires_grad and xc.grad.tolist() == x.grad.tolist() and xc.grad is not x.grad
    with pytest.raises(RuntimeError, match="leaves"):
        copy.deepcopy(x * 2)


def test_argument_errors_are_also_the_exceptions_torch_raises():
    # torch raises RuntimeError for most bad arguments: darklib's ValueError, TypeError and
    # IndexError are RuntimeErrors too (darklib/errors.py), and elsewhere torch's types
    cases = [
        lambda L, F: F.conv2d(L.randn(1, 3, 4, 4), L.randn(2, 3, 1, 1), stride=0),
        lambda L, F: F.one_hot(L.tensor([3]), 3),
        lambda L, F: F.mse_loss(L.rand(3, 4), L.rand(2, 4)),
        lambda L, F: F.nll_loss(L.randn(2, 3), L.tensor([0.0, 1.0])),
        lambda L, F: L.randn(2, 3).gather(1, L.tensor([[3], [0]])),
        lambda L, F: L.randn(0).argmax(),  # IndexError
        lambda L, F: L.randn(0).kthvalue(1),  # IndexError
        lambda L, F: int(L.randn(2)),  # ValueError
        lambda L, F: L.cat([]),  # ValueError
        lambda L, F: L.softmax(L.tensor([1, 2]), 0),  # NotImplementedError
        lambda L, F: L.ones(3) == L.ones(4),
        lambda L, F: L.logical_and(L.ones(3), L.ones(4)),
        lambda L, F: L.lerp(L.ones(3), L.ones(2), 0.5),
    ]
    for case in cases:
        with pytest.raises(Exception) as want:
            case(torch, torch.nn.functional)
        with pytest.raises(Exception) as got:
            case(dl, dl.nn.functional)
        assert isinstance(got.value, type(want.value)), (type(got.value), type(want.value))


def test_broadcast_errors_name_the_op_called_and_both_shapes():
    F = dl.nn.functional
    cases = {
        "eq": lambda: dl.ones(3) == dl.ones(4),
        "bitwise_and": lambda: dl.ones(3, dtype=dl.int64) & dl.ones(4, dtype=dl.int64),
        "isclose": lambda: dl.isclose(dl.ones(3), dl.ones(4)),
        "cosine_similarity": lambda: F.cosine_similarity(dl.randn(3, 4), dl.randn(2, 4)),
        "dist": lambda: dl.dist(dl.randn(3), dl.randn(2)),
        "addcmul": lambda: dl.addcmul(dl.randn(3), dl.randn(2), dl.randn(3)),
        "clamp": lambda: dl.randn(3).clamp(min=dl.randn(2)),
    }
    for name, case in cases.items():
        with pytest.raises(RuntimeError, match=rf"^{name}: shapes \(.* do not broadcast: the"):
            case()


# ------------------------------------------------------------------ argument errors (review)
def _raises_like_torch(call, exc=None, match=None):
    """``call(lib, F)`` raises for torch and darklib alike (darklib's error an instance of
    torch's type, and of ``exc``; its message matching ``match``)."""
    with pytest.raises(Exception) as want:
        call(torch, torch.nn.functional)
    with pytest.raises(exc or want.type, match=match) as got:
        call(dl, dl.nn.functional)
    assert isinstance(got.value, want.type), (got.value, want.value)
    return got.value


_OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "@": lambda a, b: a @ b,
}


@pytest.mark.parametrize("op", list(_OPERATORS))
@pytest.mark.parametrize("seq", [[1, 2], (1, 2)], ids=["list", "tuple"])
def test_operators_with_a_list_or_tuple_operand_raise_type_error_as_torch(op, seq):
    f = _OPERATORS[op]
    for lib in (torch, dl):
        x = lib.ones(2, dtype=lib.int64 if op in "&|^<<>>" else lib.float32)
        for a, b in ((x, seq), (seq, x)):
            with pytest.raises(TypeError) as e:
                f(a, b)
            if lib is dl and op not in "+*":  # (Python's sequence concat and repeat speak)
                kind = type(seq).__name__
                assert f"'{kind}'" in str(e.value) and "Tensor" in str(e.value), str(e.value)


def test_equality_with_a_list_is_identity_as_torch():
    for lib in (torch, dl):
        x = lib.ones(2)
        assert (x == [1.0, 1.0]) is False and (x != [1.0, 1.0]) is True
        assert ([1.0, 1.0] == x) is False and ((1.0, 1.0) != x) is True


def test_functional_ops_refuse_a_list_operand_as_torch():
    calls = [
        lambda L, F: L.add(L.ones(2), [1.0, 2.0]),
        lambda L, F: L.ones(2).mul([1.0, 2.0]),
        lambda L, F: L.maximum(L.ones(2), [1.0, 2.0]),
        lambda L, F: L.eq(L.ones(2), [1.0, 2.0]),
        lambda L, F: L.pow(L.ones(2), (1.0, 2.0)),
        lambda L, F: L.where(L.ones(2) > 0, L.ones(2), [1.0, 2.0]),
    ]
    for call in calls:
        _raises_like_torch(call, TypeError, r"unsupported operand of type (list|tuple)")
    # in-place forms too (torch: the out-of-place fallback's TypeError)
    x = dl.ones(2)
    with pytest.raises(TypeError):
        x += [1.0, 2.0]
    assert x.tolist() == [1.0, 1.0]
    # NumPy arrays and scalars still work as torch's operators take them
    assert (dl.ones(2) + np.array([1.0, 2.0])).tolist() == [2.0, 3.0]
    assert (dl.ones(2) + np.float32(1)).dtype == dl.float32


def test_nan_to_num_values_must_be_numbers():
    for kw in ({"nan": "x"}, {"posinf": "x"}, {"neginf": [1.0]}):
        name = next(iter(kw))
        for data in ([1.0, float("nan")], [1.0, 2.0], [1, 2]):
            _raises_like_torch(
                lambda L, F, d=data, kw=kw: L.nan_to_num(L.tensor(d), **kw),
                TypeError,
                rf"nan_to_num\(\): argument '{name}' must be float",
            )
    x = [float("nan"), float("inf"), -float("inf"), 1.0]
    for kw in ({"nan": None}, {"nan": dl.tensor(3.0)}, {"nan": True, "posinf": np.float32(2)}):
        tkw = {k: (torch.tensor(3.0) if isinstance(v, dl.Tensor) else v) for k, v in kw.items()}
        assert dl.nan_to_num(dl.tensor(x), **kw).tolist() == (
            torch.nan_to_num(torch.tensor(x), **tkw).tolist()
        )


def test_meshgrid_refuses_tensors_of_two_or_more_dims_as_torch():
    _raises_like_torch(
        lambda L, F: L.meshgrid(L.ones(2, 2), L.ones(3), indexing="ij"),
        RuntimeError,
        r"meshgrid\(\): expected 0-D or 1-D tensors, but tensor 0 has shape \[2, 2\]",
    )
    _raises_like_torch(
        lambda L, F: L.meshgrid(L.ones(2), L.ones(3, dtype=L.int64), indexing="ij"),
        RuntimeError,
        r"same dtype",
    )
    _raises_like_torch(lambda L, F: L.meshgrid(indexing="ij"), RuntimeError, r"non-empty")
    got = dl.meshgrid(dl.tensor(1.0), dl.arange(3.0), indexing="xy")
    want = torch.meshgrid(torch.tensor(1.0), torch.arange(3.0), indexing="xy")
    assert [g.tolist() for g in got] == [w.tolist() for w in want]


def test_backward_and_grad_refuse_inputs_that_are_not_tensors():
    for call in (
        lambda L, F: (L.ones(2, requires_grad=True) * 2).sum().backward(inputs=[5]),
        lambda L, F: L.autograd.grad((L.ones(2, requires_grad=True) * 2).sum(), [5]),
    ):
        _raises_like_torch(call, RuntimeError, r"all inputs have to be Tensors, but got int")
    with pytest.raises(TypeError, match=r"inputs must be a Tensor or a sequence of Tensors"):
        (dl.ones(2, requires_grad=True) * 2).sum().backward(inputs=5)
    with pytest.raises(TypeError, match=r"all outputs have to be Tensors, but got str"):
        dl.autograd.grad(["x"], [dl.ones(2, requires_grad=True)])
    x = dl.ones(2, requires_grad=True)
    (x * 3).sum().backward(inputs=(t for t in [x]))  # any iterable of tensors
    assert x.grad.tolist() == [3.0, 3.0]


def test_glu_out_of_range_dim_as_torch():
    for d in (2, -3):
        _raises_like_torch(
            lambda L, F, d=d: F.glu(L.randn(2, 4), dim=d),
            IndexError,
            rf"Dimension out of range \(expected to be in range of \[-2, 1\], but got {d}\)",
        )
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    for d in (0, -1):
        np.testing.assert_allclose(
            dl.nn.functional.glu(dl.tensor(x), d).numpy(),
            torch.nn.functional.glu(torch.tensor(x), d).numpy(),
            rtol=1e-6,
        )


def test_clamp_topk_kthvalue_argument_types_as_torch():
    _raises_like_torch(lambda L, F: L.randn(3).clamp(min="a"), TypeError, r"'min' must be a")
    _raises_like_torch(lambda L, F: L.randn(3).clamp(max=[1]), TypeError, r"'max' must be a")
    _raises_like_torch(lambda L, F: L.randn(3).topk(1.5), TypeError, r"k must be an integer")
    _raises_like_torch(lambda L, F: L.randn(3).topk(True), TypeError, r"k must be an integer")
    _raises_like_torch(lambda L, F: L.randn(3).kthvalue(1.5), TypeError, r"k must be an integer")
    x = [3.0, 1.0, 2.0]
    assert dl.tensor(x).topk(dl.tensor(2)).values.tolist() == [3.0, 2.0]
    assert dl.tensor(x).clamp(min=np.float32(1.5), max=True).tolist() == (
        torch.tensor(x).clamp(min=np.float32(1.5), max=True).tolist()
    )


def test_lenient_arguments_torch_refuses_are_refused():
    _raises_like_torch(
        lambda L, F: L.where(L.tensor([0.0, 2.0]), L.ones(2), L.zeros(2)),
        RuntimeError,
        r"where\(\): expected condition to be a boolean tensor.*float32",
    )
    _raises_like_torch(
        lambda L, F: L.ones(2).where(L.tensor([0, 1]), L.zeros(2)),
        RuntimeError,
        r"boolean tensor.*int64",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch: uint8 conditions are deprecated)
        m = [0, 2]
        assert dl.where(dl.tensor(m, dtype=dl.uint8), 1.0, 0.0).tolist() == (
            torch.where(torch.tensor(m, dtype=torch.uint8), 1.0, 0.0).tolist()
        )
    _raises_like_torch(
        lambda L, F: F.cross_entropy(
            L.randn(3, 5), L.tensor([0, 1, 2]), weight=L.ones(5, dtype=L.int64)
        ),
        RuntimeError,
        r"cross_entropy: expected a floating-point weight",
    )
    _raises_like_torch(
        lambda L, F: F.nll_loss(L.randn(3, 5), L.tensor([0, 1, 2]), weight=L.ones(5, dtype=L.bool)),
        RuntimeError,
        r"floating-point weight",
    )
    _raises_like_torch(
        lambda L, F: F.conv2d(L.randn(1, 1, 3, 3), L.randn(0, 1, 1, 1)),
        RuntimeError,
        r"expected weight to be at least 1 at dimension 0",
    )
    _raises_like_torch(
        lambda L, F: F.conv1d(L.randn(1, 1, 3), L.randn(0, 1, 1)),
        RuntimeError,
        r"at least 1 at dimension 0",
    )
    _raises_like_torch(
        lambda L, F: F.conv2d(L.randn(1, 1, 3, 3), L.randn(1, 1, 0, 1)),
        RuntimeError,
        r"kernel size should be greater than zero",
    )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_non_constant_modes_take_torchs_input_ranks(mode):
    """torch: pad length 2 for 2-D/3-D input, 4 for 3-D/4-D, 6 for 4-D/5-D; else
    NotImplementedError (RuntimeError where the pad is longer than the input's dims)."""
    checked = 0
    for plen in (0, 2, 4, 6, 8):
        for nd in range(1, 7):
            shape = (3,) * nd
            try:
                want = torch.nn.functional.pad(torch.randn(*shape), (1,) * plen, mode=mode)
            except NotImplementedError:
                with pytest.raises(NotImplementedError, match=f"padding size {plen} is not"):
                    dl.nn.functional.pad(dl.randn(*shape), (1,) * plen, mode=mode)
                checked += 1
                continue
            except RuntimeError:
                with pytest.raises(RuntimeError):
                    dl.nn.functional.pad(dl.randn(*shape), (1,) * plen, mode=mode)
                continue
            got = dl.nn.functional.pad(dl.randn(*shape), (1,) * plen, mode=mode)
            assert tuple(got.shape) == tuple(want.shape)
    assert checked >= 10


@pytest.mark.parametrize("device", DEVICES)
def test_einsum_sublist_form_matches_torch(device):
    a, b, c = (
        rng(0).standard_normal((3, 4)),
        rng(1).standard_normal((4, 5)),
        rng(2).standard_normal((2, 3, 4)),
    )
    for fn in (
        lambda m, x, y, z: m.einsum(x, [0, 1], y, [1, 2], [0, 2]),
        lambda m, x, y, z: m.einsum(x, [0, 1], y, [1, 2]),  # implicit output: sorted free
        lambda m, x, y, z: m.einsum(z, [..., 0, 1], x, [0, 1], [...]),
        lambda m, x, y, z: m.einsum(x, [25, 51], [51, 25]),
    ):
        compare(lambda *t, f=fn: f(dl, *t), lambda *t, f=fn: f(torch, *t), a, b, c, device=device)
    x = dl.tensor(a, device=device)
    with pytest.raises(ValueError, match=r"subscript 52 .* not an int in \[0, 52\)"):
        dl.einsum(x, [0, 52])
    with pytest.raises(TypeError, match="must be a list of ints or Ellipsis"):
        dl.einsum(x, 5)
