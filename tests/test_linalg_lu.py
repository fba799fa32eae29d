"""LU (lu_factor, lu_factor_ex, lu, lu_solve, lu_unpack), matrix_exp, householder_product,
the *_ex functions and the deprecated torch.lu / lu_solve / triangular_solve, against
torch: values, gradients, float64 finite differences, second derivatives, errors."""

import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:.*is deprecated:UserWarning"),
]

R = rng(11)
LinAlgError = dl.linalg.LinAlgError


def randn(*shape):
    return R.standard_normal(shape)


def square(*batch, n=4):
    return randn(*batch, n, n) + 3 * np.eye(n)


def _factor(a):
    """torch's (LU, pivots) of ``a``, as arrays."""
    LU, piv = torch.linalg.lu_factor(torch.tensor(a))
    return LU.numpy(), piv.numpy()


_A, _B = randn(2, 4, 4), randn(3, 1, 4, 2)
_LU, _PIV = _factor(_A)


def _lu_solve(m, lu, b, left=True, adjoint=False):
    return m.linalg.lu_solve(lu, m.tensor(_PIV), b, left=left, adjoint=adjoint)


CASES = [
    ("lu_factor_square", lambda m, a: tuple(m.linalg.lu_factor(a)), lambda: [randn(2, 3, 5, 5)]),
    ("lu_factor_tall", lambda m, a: tuple(m.linalg.lu_factor(a)), lambda: [randn(2, 6, 3)]),
    ("lu_factor_wide", lambda m, a: tuple(m.linalg.lu_factor(a)), lambda: [randn(3, 5)]),
    (
        "lu_factor_blocked",  # more columns than one panel (32): the blocked update
        lambda m, a: tuple(m.linalg.lu_factor(a)),
        lambda: [randn(2, 45, 40)],
    ),
    ("lu_factor_ex", lambda m, a: tuple(m.linalg.lu_factor_ex(a)), lambda: [randn(2, 4, 4)]),
    ("lu_square", lambda m, a: tuple(m.linalg.lu(a)), lambda: [randn(3, 4, 4)]),
    ("lu_tall", lambda m, a: tuple(m.linalg.lu(a)), lambda: [randn(2, 5, 3)]),
    ("lu_wide", lambda m, a: tuple(m.linalg.lu(a)), lambda: [randn(2, 3, 6)]),
    ("lu_one", lambda m, a: tuple(m.linalg.lu(a)), lambda: [randn(1, 1)]),
    (
        "lu_unpack",
        lambda m, a: tuple(m.lu_unpack(*m.linalg.lu_factor(a))),
        lambda: [randn(2, 5, 3)],
    ),
    ("lu_solve", lambda m, lu, b: _lu_solve(m, lu, b), lambda: [_LU, _B]),
    ("lu_solve_adjoint", lambda m, lu, b: _lu_solve(m, lu, b, adjoint=True), lambda: [_LU, _B]),
    ("lu_solve_right", lambda m, lu, b: _lu_solve(m, lu, b.mT, left=False), lambda: [_LU, _B]),
    (
        "lu_solve_right_adjoint",
        lambda m, lu, b: _lu_solve(m, lu, b.mT, left=False, adjoint=True),
        lambda: [_LU, _B],
    ),
    (
        "lu_factor_then_solve",  # gradients through both, to A and B
        lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b),
        lambda: [square(2), randn(2, 4, 3)],
    ),
    ("matrix_exp", lambda m, a: m.linalg.matrix_exp(a), lambda: [randn(2, 3, 4, 4)]),
    ("matrix_exp_big", lambda m, a: m.linalg.matrix_exp(a), lambda: [8 * randn(2, 5, 5)]),
    ("matrix_exp_small", lambda m, a: m.matrix_exp(a), lambda: [1e-3 * randn(3, 3)]),
    ("matrix_exp_one", lambda m, a: m.linalg.matrix_exp(a), lambda: [randn(2, 1, 1)]),
    (
        "householder_product",
        lambda m, a, t: m.linalg.householder_product(a, t),
        lambda: [randn(2, 5, 3), randn(2, 2)],
    ),
    (
        "householder_product_square",
        lambda m, a, t: m.linalg.householder_product(a, t),
        lambda: [randn(4, 4), randn(4)],
    ),
    ("solve_ex", lambda m, a, b: tuple(m.linalg.solve_ex(a, b)), lambda: [square(2), randn(4)]),
    (
        "solve_ex_right",
        lambda m, a, b: tuple(m.linalg.solve_ex(a, b, left=False)),
        lambda: [square(2), randn(3, 4)],
    ),
    ("inv_ex", lambda m, a: tuple(m.linalg.inv_ex(a)), lambda: [square(3)]),
    (
        "cholesky_ex",
        lambda m, a: tuple(m.linalg.cholesky_ex(a @ a.mT + 4 * m.eye(4, dtype=m.float64))),
        lambda: [randn(2, 4, 4)],
    ),
    (
        "cholesky_ex_upper",
        lambda m, a: tuple(
            m.linalg.cholesky_ex(a @ a.mT + 3 * m.eye(3, dtype=m.float64), upper=True)
        ),
        lambda: [randn(3, 3)],
    ),
    (
        "triangular_solve",
        lambda m, b, a: tuple(m.triangular_solve(b, a)),
        lambda: [randn(2, 4, 2), square(n=4)],
    ),
    (
        "triangular_solve_lower_transpose_unit",
        lambda m, b, a: tuple(m.triangular_solve(b, a, False, True, True)),
        lambda: [randn(4, 3), randn(3, 4, 4)],
    ),
    ("lu_top", lambda m, a: tuple(m.lu(a)), lambda: [square(2)]),
    ("lu_top_infos", lambda m, a: tuple(m.lu(a, get_infos=True)), lambda: [square(2)]),
    (
        "lu_solve_top",
        lambda m, b, lu: m.lu_solve(b, lu, m.tensor(_PIV)),
        lambda: [randn(2, 4, 3), _LU],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_against_torch(case, device):
    _, fn, make = case
    compare(
        lambda *x: fn(dl, *x),
        lambda *x: fn(torch, *x),
        *make(),
        device=device,
        atol=1e-8,
        rtol=1e-6,
    )


F32 = ["lu_factor_square", "lu_tall", "lu_wide", "lu_solve", "matrix_exp", "matrix_exp_big"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", F32)
def test_float32(name, device):
    _, fn, make = next(c for c in CASES if c[0] == name)
    compare(
        lambda *x: fn(dl, *x),
        lambda *x: fn(torch, *x),
        *[a.astype(np.float32) for a in make()],
        device=device,
        atol=3e-4,
        rtol=3e-4,
    )


GRADCHECKS = [
    ("lu_square", lambda a: tuple(dl.linalg.lu(a))[1:], [randn(2, 3, 3)]),
    ("lu_tall", lambda a: tuple(dl.linalg.lu(a))[1:], [randn(4, 2)]),
    ("lu_wide", lambda a: tuple(dl.linalg.lu(a))[1:], [randn(2, 2, 4)]),
    ("lu_factor", lambda a: dl.linalg.lu_factor(a).LU, [randn(2, 3, 3)]),
    ("lu_factor_tall", lambda a: dl.linalg.lu_factor(a).LU, [randn(4, 3)]),
    ("lu_factor_wide", lambda a: dl.linalg.lu_factor(a).LU, [randn(2, 4)]),
    (
        "lu_solve",
        lambda lu, b: dl.linalg.lu_solve(lu, dl.tensor(_PIV), b, adjoint=True),
        [_LU, randn(2, 4, 2)],
    ),
    ("matrix_exp", dl.linalg.matrix_exp, [randn(2, 3, 3)]),
    ("matrix_exp_squared", dl.linalg.matrix_exp, [6 * randn(3, 3)]),
    ("householder_product", dl.linalg.householder_product, [randn(4, 3), randn(2)]),
]


@pytest.mark.parametrize("case", GRADCHECKS, ids=[c[0] for c in GRADCHECKS])
def test_gradcheck(case):
    _, fn, arrays = case
    gradcheck(fn, *arrays, rtol=1e-4, atol=1e-6)


def _second(m, fn, arrays, seed=3):
    xs = [m.tensor(a, requires_grad=True) for a in arrays]
    y = fn(m, *xs)
    w = m.tensor(np.random.default_rng(seed).standard_normal(tuple(y.shape)))
    g1 = m.autograd.grad((y * w).sum(), xs, create_graph=True)
    g2 = m.autograd.grad(sum((g * g * g).sum() for g in g1), xs)
    return [np.asarray(g.detach().numpy()) for g in (*g1, *g2)]


SECOND = [
    ("lu_L_U", lambda m, a: (lambda p, l, u: l @ u.mT)(*m.linalg.lu(a)), [randn(2, 3, 3)]),
    ("lu_wide", lambda m, a: m.linalg.lu(a).U.sum(-2), [randn(3, 5)]),
    ("lu_tall", lambda m, a: m.linalg.lu(a).L.sum(-1), [randn(5, 3)]),
    ("lu_factor", lambda m, a: m.linalg.lu_factor(a).LU, [randn(2, 3, 3)]),
    (
        "lu_solve",
        lambda m, lu, b: m.linalg.lu_solve(lu, m.tensor(_PIV), b),
        [_LU, randn(4, 2)],
    ),
    ("matrix_exp", lambda m, a: m.linalg.matrix_exp(a), [randn(2, 3, 3)]),
    (
        "householder_product",
        lambda m, a, t: m.linalg.householder_product(a, t),
        [randn(4, 3), randn(3)],
    ),
]


@pytest.mark.parametrize("case", SECOND, ids=[c[0] for c in SECOND])
def test_second_derivatives(case):
    _, fn, arrays = case
    ours, theirs = _second(dl, fn, arrays), _second(torch, fn, arrays)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=f"gradient {i}")


# ------------------------------------------------------------------ singular matrices, info


def _singular_batch():
    a = np.repeat(np.eye(3)[None], 3, 0)
    a[1] = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]]
    a[2] = 0.0
    return a


@pytest.mark.parametrize("device", DEVICES)
def test_singular_matrices_give_info_as_torch(device):
    a = _singular_batch()
    t = torch.tensor(a)
    x = dl.tensor(a, device=device)
    ours, theirs = dl.linalg.lu_factor_ex(x), torch.linalg.lu_factor_ex(t)
    for o, w in zip(ours, theirs):
        assert_close(o, w, 1e-12, 1e-12)
    assert ours.info.dtype == dl.int32 and ours.pivots.dtype == dl.int32
    for o, w in zip(dl.linalg.lu(x), torch.linalg.lu(t)):
        assert_close(o, w, 1e-12, 1e-12)
    b = np.ones((3, 3))
    res, info = dl.linalg.solve_ex(x, dl.tensor(b, device=device))
    assert_close(info, torch.linalg.solve_ex(t, torch.tensor(b)).info, 0, 0)
    assert_close(res[0], np.ones(3), 1e-12, 1e-12)
    assert not np.isfinite(res[1].cpu().numpy()).all()
    inv, info = dl.linalg.inv_ex(x)
    assert_close(info, torch.linalg.inv_ex(t).info, 0, 0)
    assert_close(inv[0], np.eye(3), 1e-12, 1e-12)
    s = np.array([[[1.0, 2.0], [2.0, 4.0]], [[4.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]]])
    ours, theirs = (
        dl.linalg.cholesky_ex(dl.tensor(s, device=device)),
        torch.linalg.cholesky_ex(torch.tensor(s)),
    )
    for o, w in zip(ours, theirs):
        assert_close(o, w, 1e-12, 1e-12)


def test_named_tuples_node_names_and_methods():
    a = dl.tensor(square(n=3), requires_grad=True)
    t = torch.tensor(a.numpy(force=True))
    expected = {
        "linalg_lu_factor": (dl.linalg.lu_factor(a), ("LU", "pivots")),
        "linalg_lu_factor_ex": (dl.linalg.lu_factor_ex(a), ("LU", "pivots", "info")),
        "linalg_lu": (dl.linalg.lu(a), ("P", "L", "U")),
        "lu_unpack": (dl.lu_unpack(*dl.linalg.lu_factor(a)), ("P", "L", "U")),
        "linalg_solve_ex": (dl.linalg.solve_ex(a, a), ("result", "info")),
        "linalg_inv_ex": (dl.linalg.inv_ex(a), ("inverse", "info")),
        "linalg_cholesky_ex": (dl.linalg.cholesky_ex(a @ a.mT), ("L", "info")),
        "triangular_solve": (dl.triangular_solve(a, a), ("solution", "cloned_coefficient")),
    }
    for name, (res, fields) in expected.items():
        assert type(res).__name__ == name and res._fields == fields
    assert type(dl.linalg.lu_factor(a).LU.grad_fn).__name__ == "LinalgLuFactorExBackward0"
    assert type(dl.linalg.lu(a).L.grad_fn).__name__ == "LinalgLuBackward0"
    assert type(dl.linalg.matrix_exp(a).grad_fn).__name__ == "LinalgMatrixExpBackward0"
    assert not dl.linalg.lu_factor(a).pivots.requires_grad
    x = dl.tensor(a.numpy(force=True))
    lu, piv = x.lu()
    tlu, tpiv = t.lu()
    b = randn(3, 2)
    pairs = [
        (x.matrix_exp(), t.matrix_exp()),
        (lu, tlu),
        (piv, tpiv),
        (dl.tensor(b).lu_solve(lu, piv), torch.tensor(b).lu_solve(tlu, tpiv)),
        (dl.tensor(b).triangular_solve(x).solution, torch.tensor(b).triangular_solve(t).solution),
        (dl.lu_unpack(lu, piv, unpack_data=False).P, torch.lu_unpack(tlu, tpiv, False).P),
        (dl.lu_unpack(lu, piv, unpack_pivots=False).L, torch.lu_unpack(tlu, tpiv, True, False).L),
    ]
    for ours, theirs in pairs:
        assert_close(ours, theirs, 1e-10, 1e-8)
    assert tuple(dl.lu_unpack(lu, piv, unpack_data=False).L.shape) == (0,)


@pytest.mark.parametrize("device", DEVICES)
def test_without_pivoting_and_empty(device):
    # torch factors without pivoting on CUDA only; A = L U then, pivots 1..k, P empty
    a = square(2, n=4)
    x = dl.tensor(a, device=device)
    LU, piv = dl.linalg.lu_factor(x, pivot=False)
    assert_close(piv, np.tile(np.arange(1, 5, dtype=np.int32), (2, 1)), 0, 0)
    P, L, U = dl.linalg.lu(x, pivot=False)
    assert tuple(P.shape) == (0,)
    assert_close(L @ U, a, 1e-12, 1e-12)
    assert_close(L, np.tril(L.cpu().numpy()), 0, 0)
    assert_close(LU, np.tril(L.cpu().numpy(), -1) + U.cpu().numpy(), 1e-12, 1e-12)
    e = dl.tensor(np.zeros((2, 0, 3)), device=device)
    for o, w in zip(dl.linalg.lu(e), torch.linalg.lu(torch.zeros(2, 0, 3, dtype=torch.float64))):
        assert tuple(o.shape) == tuple(w.shape)
    assert tuple(dl.linalg.matrix_exp(dl.tensor(np.zeros((0, 0)))).shape) == (0, 0)
    nan = dl.linalg.matrix_exp(dl.tensor(np.array([[[np.nan, 1.0], [0, 1]], [[0.0, 0], [0, 0]]])))
    assert np.isnan(nan[0].numpy()).all()
    assert_close(nan[1], np.eye(2), 0, 0)


ERRORS = [
    (
        lambda t: dl.linalg.lu_factor(t(_singular_batch())),
        LinAlgError,
        r"^torch.linalg.lu_factor: \(Batch element 1\): U\[3,3\] is zero and using it on "
        r"lu_solve would result in a division by zero",
    ),
    (
        lambda t: dl.linalg.lu_factor(t(np.zeros((3, 3)))),
        RuntimeError,
        r"^torch.linalg.lu_factor: U\[1,1\] is zero",
    ),
    (
        lambda t: dl.linalg.lu_factor_ex(t(np.zeros((2, 3))), check_errors=True),
        LinAlgError,
        r"lu_factor_ex: U\[1,1\] is zero",
    ),
    (
        lambda t: dl.linalg.lu_factor(t(np.ones(3))),
        ValueError,
        r"Expected tensor with 2 or more dimensions. Got size: \[3\]",
    ),
    (lambda t: dl.linalg.lu(t(np.ones((3, 3), np.int64))), TypeError, "floating point.*Got Long"),
    (
        lambda t: dl.linalg.lu_solve(t(_LU), t(_PIV.astype(np.int64)), t(_B)),
        TypeError,
        "pivots should be a Tensor of scalar type torch.int32",
    ),
    (
        lambda t: dl.linalg.lu_solve(t(_LU), t(_PIV), t(np.ones((5, 2)))),
        ValueError,
        r"Incompatible shapes of A and B for the equation AX = B \(4x4 and 5x2\)",
    ),
    (
        lambda t: dl.linalg.lu_solve(t(_LU), t(_PIV), t(np.ones((4, 2))), left=False),
        ValueError,
        r"equation XA = B \(4x4 and 4x2\)",
    ),
    (
        lambda t: dl.linalg.lu_solve(t(_LU), t(_PIV[0]), t(np.ones((4, 2)))),
        ValueError,
        r"Expected LU.shape\[:-1\] and pivots.shape to be the same, but got pivots with "
        r"shape \[4\]",
    ),
    (
        lambda t: dl.linalg.lu_solve(t(_LU), t(_PIV[:, :3]), t(np.ones((4, 2)))),
        ValueError,
        "Number of pivots per batch should be same as the dimension of the matrix",
    ),
    (
        lambda t: dl.linalg.lu_solve(t(_LU), t(_PIV), t(np.ones(4))),
        ValueError,
        "B must have at least 2 dimensions",
    ),
    (
        lambda t: dl.lu_unpack(t(_LU), t(_PIV.astype(np.int64))),
        TypeError,
        "LU_pivots is expected to be a contiguous tensor of torch.int32 dtype",
    ),
    (
        lambda t: dl.linalg.matrix_exp(t(np.ones((3, 4)))),
        ValueError,
        "linalg.matrix_exp: A must be batches of square matrices, but they are 3 by 4",
    ),
    (
        lambda t: dl.linalg.matrix_exp(t(np.ones((3, 3), np.int64))),
        TypeError,
        "Expected a floating point or complex tensor as input. Got Long",
    ),
    (
        lambda t: dl.linalg.householder_product(t(np.ones((3, 4))), t(np.ones(2))),
        ValueError,
        r"input.shape\[-2\] must be greater than or equal to input.shape\[-1\]",
    ),
    (
        lambda t: dl.linalg.householder_product(t(np.ones((4, 3))), t(np.ones(4))),
        ValueError,
        r"input.shape\[-1\] must be greater than or equal to tau.shape\[-1\]",
    ),
    (
        lambda t: dl.linalg.householder_product(t(np.ones((2, 4, 3))), t(np.ones((3, 2)))),
        ValueError,
        r"batch dimensions of tau to be equal to input.shape\[:-2\], but got \[3\]",
    ),
    (
        lambda t: dl.linalg.householder_product(t(np.ones((4, 3))), t(np.ones(2, np.float32))),
        TypeError,
        "tau dtype Float does not match input dtype Double",
    ),
    (
        lambda t: dl.linalg.solve_ex(t(np.zeros((3, 3))), t(np.ones(3)), check_errors=True),
        LinAlgError,
        "solve_ex: The solver failed because the input matrix is singular",
    ),
    (
        lambda t: dl.linalg.inv_ex(t(np.zeros((2, 3, 3))), check_errors=True),
        LinAlgError,
        r"inv_ex: \(Batch element 0\): The diagonal element 1 is zero",
    ),
    (
        lambda t: dl.linalg.cholesky_ex(t(-np.eye(3)), check_errors=True),
        LinAlgError,
        r"cholesky_ex: .*not positive-definite \(the leading minor of order 1",
    ),
    (
        lambda t: dl.triangular_solve(t(np.ones((4, 2))), t(np.eye(3))),
        ValueError,
        "each A matrix is 3 by 3 but each b matrix is 4 by 2",
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i, device):
    fn, exc, match = ERRORS[i]
    with pytest.raises(exc, match=match):
        fn(lambda a: dl.tensor(a, device=device))


def test_review_fixes_cholesky_upper_reads_the_upper_triangle_lu_unpack_pivots_and_lu():
    # a non-symmetric A: upper=True factors its upper triangle, as torch
    a = np.array([[4.0, 1.0, 1.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    for fn in (
        lambda m, x: m.linalg.cholesky(x, upper=True),
        lambda m, x: m.linalg.cholesky_ex(x, upper=True).L,
    ):
        assert_close(fn(dl, dl.tensor(a)), fn(torch, torch.tensor(a)), atol=1e-12)
    lu_ = dl.linalg.lu_factor(dl.tensor(a)).LU
    with pytest.raises(IndexError, match=r"between 1 and LU\.size"):
        dl.lu_unpack(lu_, dl.tensor(np.array([0, 2, 3], np.int32)))
    with pytest.raises(IndexError, match=r"between 1 and LU\.size"):
        dl.lu_unpack(lu_, dl.tensor(np.array([1, 2, 4], np.int32)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, pivots = dl.lu(dl.zeros(3, 3, dtype=dl.float64))  # singular: no error (torch)
    assert pivots.tolist() == [1, 2, 3]


def test_householder_product_without_reflectors_is_the_identity_in_the_graph():
    # (torch's output requires grad too; how it treats the unused A varies with the shape)
    A = dl.tensor(rng(0).standard_normal((4, 3)), requires_grad=True)
    tau = dl.tensor(np.zeros(0), requires_grad=True)
    y = dl.linalg.householder_product(A, tau)
    ga, gt = dl.autograd.grad(y.sum(), [A, tau])
    assert np.array_equal(y.detach().numpy(), np.eye(4, 3))
    assert (ga.numpy() == 0).all() and tuple(gt.shape) == (0,)
