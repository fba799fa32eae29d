"""Reductions against torch: values, dtypes, gradients, finite differences and errors."""

import math

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, compare, gradcheck, rng

DTYPES = [np.float32, np.float64]
DIMS = [None, 0, -1, (0, 2), (-1, 1)]


def _x(shape, dtype=np.float64, seed=0):
    return rng(seed).standard_normal(shape).astype(dtype)


def _tol(dtype):
    return {"atol": 1e-5, "rtol": 1e-4} if dtype == np.float32 else {"atol": 1e-10, "rtol": 1e-8}


# ------------------------------------------------------------------ sum / mean / var / std


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(device, dtype, dim, keepdim):
    x = _x((2, 3, 4), dtype)
    kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    for op in ("sum", "mean"):
        compare(
            lambda a, op=op: getattr(dl, op)(a, **kw),
            lambda a, op=op: getattr(torch, op)(a, **kw),
            x,
            device=device,
            **_tol(dtype),
        )
    compare(lambda a: a.sum(**kw), lambda a: a.sum(**kw), x, device=device, **_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_sum_int_bool_and_dtype(device):
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    compare(lambda a: a.sum(), lambda a: a.sum(), i, device=device)
    compare(lambda a: a.sum(1), lambda a: a.sum(1), i.astype(np.uint8), device=device)
    compare(lambda a: (a > 2).sum(0), lambda a: (a > 2).sum(0), i, device=device)
    compare(
        lambda a: a.sum(dtype=dl.float64),
        lambda a: a.sum(dtype=torch.float64),
        _x((3, 2), np.float32),
        device=device,
    )
    compare(
        lambda a: dl.mean(a, 1, dtype=dl.float32),
        lambda a: torch.mean(a, 1, dtype=torch.float32),
        i,
        device=device,
    )
    compare(lambda a: a.sum(dim=()), lambda a: a.sum(dim=()), _x((2, 3)), device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_dim_reductions(device):
    x = np.array(1.5)
    for fn in (
        lambda t: t.sum(0),
        lambda t: t.sum(-1, keepdim=True),
        lambda t: t.mean(0),
        lambda t: t.prod(0),
        lambda t: t.cumsum(0),
        lambda t: t.max(0),
        lambda t: t.amax(0),
        lambda t: t.logsumexp(0),
        lambda t: t.softmax(0),
    ):
        compare(fn, fn, x, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [None, 1, (0, -1)])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std(device, dtype, dim, op):
    x = _x((3, 4, 2), dtype)
    for kw in ({}, {"correction": 0}, {"correction": 2}, {"unbiased": False}, {"keepdim": True}):
        compare(
            lambda a, kw=kw: getattr(dl, op)(a, dim, **kw),
            lambda a, kw=kw: getattr(torch, op)(a, dim, **kw),
            x,
            device=device,
            **_tol(dtype),
        )
    compare(
        lambda a: getattr(a, op)(False),
        lambda a: getattr(a, op)(False),
        x,
        device=device,
        **_tol(dtype),
    )
    if dim is not None and not isinstance(dim, tuple):
        compare(
            lambda a: getattr(a, op)(dim, True, True),
            lambda a: getattr(a, op)(dim, True, True),
            x,
            device=device,
            **_tol(dtype),
        )


def test_var_single_element_is_nan():
    with pytest.warns(UserWarning, match="degrees of freedom"):
        v = dl.tensor([2.0]).var()
    assert math.isnan(v.item())


# ------------------------------------------------------------------ max / min / amax / argmax


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min(device, dtype, op):
    x = _x((3, 4, 5), dtype)
    compare(lambda a: getattr(dl, op)(a), lambda a: getattr(torch, op)(a), x, device=device)
    for d in (0, 1, -1):
        for keep in (False, True):
            compare(
                lambda a, d=d, k=keep: getattr(a, op)(d, keepdim=k),
                lambda a, d=d, k=keep: getattr(a, op)(d, keepdim=k),
                x,
                device=device,
            )
    y = _x((3, 4, 5), dtype, seed=1)
    compare(
        lambda a, b: getattr(dl, op)(a, b),
        lambda a, b: getattr(torch, op)(a, b),
        x,
        y,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_max_returns_named_tuple(device):
    x = dl.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], device=device)
    res = x.max(dim=1)
    assert res.values.tolist() == [5.0, 7.0]
    assert res.indices.tolist() == [1, 0]
    values, indices = dl.min(x, 0)
    assert values.tolist() == [1.0, 0.0, 2.0] and indices.tolist() == [0, 1, 0]
    assert indices.dtype == dl.int64


@pytest.mark.parametrize("device", DEVICES)
def test_max_ties_gradient(device):
    ties = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    compare(lambda a: a.max(), lambda a: a.max(), ties, device=device)  # split evenly
    compare(lambda a: a.amax(1), lambda a: a.amax(1), ties, device=device)
    compare(lambda a: a.amin((0, 1)), lambda a: a.amin((0, 1)), ties, device=device)
    compare(lambda a: a.max(1), lambda a: a.max(1), ties, device=device)  # to the index


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [(), 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_amin(device, dim, keepdim):
    x = _x((2, 3, 4))
    for op in ("amax", "amin"):
        compare(
            lambda a, op=op: getattr(dl, op)(a, dim, keepdim),
            lambda a, op=op: getattr(torch, op)(a, dim, keepdim),
            x,
            device=device,
        )


@pytest.mark.parametrize("device", DEVICES)
def test_argmax_argmin(device):
    x = _x((3, 4, 2))
    for op in ("argmax", "argmin"):
        for kw in ({}, {"dim": 1}, {"dim": -1, "keepdim": True}, {"dim": None, "keepdim": True}):
            compare(
                lambda a, op=op, kw=kw: getattr(dl, op)(a, **kw),
                lambda a, op=op, kw=kw: getattr(torch, op)(a, **kw),
                x,
                device=device,
            )


def test_max_nan_propagates():
    x = dl.tensor([[1.0, float("nan"), 3.0]])
    assert math.isnan(x.max().item())
    v, i = x.max(1)
    assert math.isnan(v.item()) and i.item() == 1


# ------------------------------------------------------------------ logsumexp, softmax


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, -1, (0, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp(device, dtype, dim, keepdim):
    x = _x((3, 4), dtype) * 5
    compare(
        lambda a: dl.logsumexp(a, dim, keepdim),
        lambda a: torch.logsumexp(a, dim, keepdim),
        x,
        device=device,
        **_tol(dtype),
    )


def test_logsumexp_stable_and_int():
    x = dl.tensor([1000.0, 1000.0, -1000.0])
    assert abs(x.logsumexp(0).item() - (1000.0 + math.log(2.0))) < 1e-3
    out = dl.tensor([1, 2]).logsumexp(0)
    assert out.dtype == dl.float32
    assert abs(out.item() - torch.tensor([1.0, 2.0]).logsumexp(0).item()) < 1e-6
    neg = dl.tensor([-math.inf, -math.inf, 0.0]).logsumexp(0)
    assert neg.item() == 0.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(device, dtype, dim, op):
    x = _x((3, 4, 5), dtype) * 10
    compare(
        lambda a: getattr(dl, op)(a, dim),
        lambda a: getattr(torch, op)(a, dim),
        x,
        device=device,
        **_tol(dtype),
    )
    compare(
        lambda a: getattr(a, op)(dim),
        lambda a: getattr(a, op)(dim),
        x,
        device=device,
        **_tol(dtype),
    )


def test_softmax_extremes_and_implicit_dim():
    x = dl.tensor([[1e4, 0.0, -1e4]])
    assert np.allclose(x.softmax(-1).numpy(), [[1.0, 0.0, 0.0]])
    assert np.isfinite(x.log_softmax(-1).numpy()).all() or x.log_softmax(-1)[0, 2].item() < -1e3
    y = _x((2, 3, 4), np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = dl.softmax(dl.tensor(y))
    ref = torch.nn.functional.softmax(torch.tensor(y), dim=0)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match=r"softmax.*floating"):
        dl.softmax(dl.tensor([1, 2]), 0)
    out = dl.softmax(dl.tensor([1, 2]), 0, dtype=dl.float64)
    assert out.dtype == dl.float64


# ------------------------------------------------------------------ prod, all/any, norm, cumsum


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_prod(device, dtype):
    x = _x((3, 4), dtype)
    compare(lambda a: a.prod(), lambda a: a.prod(), x, device=device, **_tol(dtype))
    for d in (0, -1):
        for keep in (False, True):
            compare(
                lambda a, d=d, k=keep: dl.prod(a, d, k),
                lambda a, d=d, k=keep: torch.prod(a, d, k),
                x,
                device=device,
                **_tol(dtype),
            )


@pytest.mark.parametrize("device", DEVICES)
def test_prod_with_zeros(device):
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    compare(lambda a: a.prod(1), lambda a: a.prod(1), x, device=device)
    compare(lambda a: a.prod(), lambda a: a.prod(), x[0], device=device)
    compare(lambda a: a.prod(), lambda a: a.prod(), np.array([2, 3, 4]), device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_all_any(device):
    x = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    for op in ("all", "any"):
        for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": (0, 1)}):
            compare(
                lambda a, op=op, kw=kw: getattr(dl, op)(a, **kw),
                lambda a, op=op, kw=kw: getattr(torch, op)(a, **kw),
                x,
                device=device,
            )
    compare(lambda a: a.all(), lambda a: a.all(), np.array([1, 2], np.uint8), device=device)
    compare(lambda a: (a > 0).any(0), lambda a: (a > 0).any(0), x, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", ["fro", 2, 1, 3, math.inf, -math.inf, 0.5])
def test_norm(device, dtype, p):
    x = _x((3, 4), dtype)
    compare(lambda a: a.norm(p), lambda a: a.norm(p), x, device=device, **_tol(dtype))
    compare(
        lambda a: dl.norm(a, p, dim=1, keepdim=True),
        lambda a: torch.norm(a, p, dim=1, keepdim=True),
        x,
        device=device,
        **_tol(dtype),
    )
    compare(
        lambda a: a.norm(p, dim=(0, 1)),
        lambda a: a.norm(p, dim=(0, 1)),
        x,
        device=device,
        **_tol(dtype),
    )


def test_norm_zero_vector_grad_and_p0():
    x = dl.zeros(3, requires_grad=True)
    x.norm().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    assert dl.tensor([0.0, 2.0, -1.0]).norm(0).item() == 2.0
    with pytest.raises(RuntimeError, match=r"norm.*floating"):
        dl.tensor([1, 2]).norm()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(device, dtype, dim):
    x = _x((3, 4, 2), dtype)
    compare(lambda a: a.cumsum(dim), lambda a: a.cumsum(dim), x, device=device, **_tol(dtype))
    compare(
        lambda a: dl.cumsum(a, dim),
        lambda a: torch.cumsum(a, dim),
        np.arange(6, dtype=np.int32).reshape(3, 2)[:, :1].repeat(2, 1),
        device=device,
    )


# ------------------------------------------------------------------ finite differences


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a.sum((0, 2)),
        lambda a: a.mean(-1, keepdim=True),
        lambda a: a.var(1),
        lambda a: a.std((0, 1), correction=0),
        lambda a: a.max(),
        lambda a: a.max(1)[0],
        lambda a: a.amin((1, 2)),
        lambda a: a.logsumexp(-1),
        lambda a: a.softmax(1),
        lambda a: a.log_softmax(0),
        lambda a: a.prod(1),
        lambda a: a.prod(),
        lambda a: a.norm(),
        lambda a: a.norm(3, dim=0),
        lambda a: a.norm(math.inf, dim=-1),
        lambda a: a.cumsum(1),
    ],
)
def test_gradcheck(fn):
    gradcheck(fn, _x((2, 3, 2), seed=3))


def test_prod_gradcheck_with_zero():
    x = _x((2, 4))
    x[0, 1] = 0.0
    x[1, 2] = x[1, 3] = 0.0
    gradcheck(lambda a: a.prod(1), x)
    gradcheck(lambda a: a.prod(), x[:1])


# ------------------------------------------------------------------ errors


def test_reduction_errors():
    x = dl.randn(2, 3)
    with pytest.raises(IndexError, match=r"sum\(\).*range of \[-2, 1\].*got 2.*2-D"):
        x.sum(2)
    with pytest.raises(IndexError, match=r"softmax\(\).*got -3"):
        x.softmax(-3)
    with pytest.raises(IndexError, match=r"max\(\).*got 5"):
        x.max(5)
    with pytest.raises(IndexError, match=r"cumsum\(\)"):
        x.cumsum(3)
    with pytest.raises(RuntimeError, match=r"dim 1 appears multiple times"):
        x.sum((1, -1))
    with pytest.raises(RuntimeError, match=r"mean\(\).*int64"):
        dl.arange(3).mean()
    with pytest.raises(RuntimeError, match=r"var\(\).*floating"):
        dl.arange(3).var()
    with pytest.raises(RuntimeError, match=r"max\(\).*numel\(\) == 0"):
        dl.zeros(0).max()
    with pytest.raises(IndexError, match=r"amax\(\).*non-zero size"):
        dl.zeros(2, 0).amax(1)
    with pytest.raises(TypeError, match=r"sum\(\).*Tensor"):
        dl.sum([1, 2])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "shape,kw",
    [((3, 4), {}), ((2, 4, 3), dict(dim=(1, 2))), ((3, 2, 4), dict(dim=(2, 0), keepdim=True))],
)
def test_nuclear_norm_matches_torch_and_finite_differences(shape, kw, device):
    a = rng(31).standard_normal(shape)  # distinct singular values: a smooth norm
    compare(lambda x: x.norm(p="nuc", **kw), lambda x: x.norm(p="nuc", **kw), a, device=device)
    gradcheck(lambda x: dl.norm(x, p="nuc", **kw), a)


def test_nuclear_norm_needs_two_dims():
    with pytest.raises(RuntimeError, match="two"):
        dl.ones(2, 3, 4).norm(p="nuc")
    with pytest.raises(RuntimeError, match="appears multiple times"):
        dl.ones(3, 4).norm(p="nuc", dim=(1, 1))
