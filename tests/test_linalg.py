"""Linear algebra (dl.linalg and torch's top-level names) against torch: values, gradients,
float64 finite differences, second derivatives, errors.

Decompositions are unique only up to signs (singular and eigen vectors) or, on other
libraries than LAPACK, the signs of R's diagonal: their gradients are compared through
quantities that do not depend on that choice (U diag(S) Vh, U Vh, |U|, Q and R with R's
diagonal made positive).
"""

import math
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.ops import decomp
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:.*is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using torch.cross without:UserWarning"),
]

R = rng(7)


def randn(*shape):
    return R.standard_normal(shape)


def square(*batch, n=4):
    """Well-conditioned square matrices."""
    return randn(*batch, n, n) + 3 * np.eye(n)


def spd(*batch, n=4):
    """Symmetric positive-definite matrices."""
    m = randn(*batch, n, n)
    return m @ m.swapaxes(-1, -2) + n * np.eye(n)


def chol(*batch, n=4):
    return np.linalg.cholesky(spd(*batch, n=n))


def triangular(*batch, n=4, upper=True):
    t = randn(*batch, n, n) * 0.5 + 3 * np.eye(n)
    return np.triu(t) if upper else np.tril(t)


# gauge-invariant views of the decompositions (the same code runs on dl and torch tensors)


def svd_usv(m, a):
    u, s, vh = m.linalg.svd(a, full_matrices=False)
    return (u * s.unsqueeze(-2)) @ vh


def svd_parts(m, a, full=False):
    u, s, vh = m.linalg.svd(a, full_matrices=full)
    k = s.shape[-1]  # (with full_matrices, the extra columns of U / rows of Vh are arbitrary)
    u, vh = u[..., :k], vh[..., :k, :]
    return u @ vh, s, u.abs(), vh.abs()


def eigh_parts(m, a, uplo="L"):
    w, v = m.linalg.eigh(a, UPLO=uplo)
    return w, v.abs(), v @ (w.unsqueeze(-1) * v.mT)


def qr_positive(m, a, mode="reduced"):
    q, r = m.linalg.qr(a, mode=mode)
    k = min(r.shape[-2], r.shape[-1])
    d = m.sign(m.diagonal(r[..., :k, :], 0, -2, -1))
    return q[..., :k] * d.unsqueeze(-2), r[..., :k, :] * d.unsqueeze(-1)


# (id, fn(m, *inputs) with m = dl or torch, inputs, compare options)
CASES = [
    ("det", lambda m, a: m.linalg.det(a), lambda: [square(2, 3)], {}),
    ("det_one", lambda m, a: m.det(a), lambda: [square(n=1)], {}),
    ("slogdet", lambda m, a: tuple(m.linalg.slogdet(a)), lambda: [randn(3, 4, 4)], {}),
    ("slogdet_top", lambda m, a: tuple(m.slogdet(a)), lambda: [randn(2, 3, 3)], {}),
    ("logdet", lambda m, a: m.logdet(a), lambda: [randn(5, 3, 3)], {}),
    ("inv", lambda m, a: m.linalg.inv(a), lambda: [square(2, 2)], {}),
    ("inverse", lambda m, a: m.inverse(a), lambda: [square(n=5)], {}),
    ("solve", lambda m, a, b: m.linalg.solve(a, b), lambda: [square(2, 3), randn(3, 4, 2)], {}),
    (
        "solve_bcast",
        lambda m, a, b: m.linalg.solve(a, b),
        lambda: [square(3), randn(2, 1, 3, 4, 5)],
        {},
    ),
    ("solve_vec", lambda m, a, b: m.linalg.solve(a, b), lambda: [square(2, 3), randn(2, 3, 4)], {}),
    ("solve_vec1", lambda m, a, b: m.linalg.solve(a, b), lambda: [square(3), randn(4)], {}),
    (
        "solve_right",
        lambda m, a, b: m.linalg.solve(a, b, left=False),
        lambda: [square(2), randn(2, 3, 4)],
        {},
    ),
    ("cholesky", lambda m, a: m.linalg.cholesky(a), lambda: [spd(2, 3)], {}),
    ("cholesky_upper", lambda m, a: m.linalg.cholesky(a, upper=True), lambda: [spd(3)], {}),
    (
        "cholesky_lower_read",  # only the lower triangle is read; the gradient is symmetric
        lambda m, a: m.linalg.cholesky(a),
        lambda: [spd(2) + np.triu(randn(2, 4, 4), 1)],
        {},
    ),
    ("cholesky_top", lambda m, a: m.cholesky(a), lambda: [spd(2)], {}),
    ("cholesky_top_upper", lambda m, a: m.cholesky(a, True), lambda: [spd(n=3)], {}),
    ("qr_tall", lambda m, a: tuple(m.linalg.qr(a)), lambda: [randn(3, 5, 3)], {"cpu_only": 1}),
    ("qr_wide", lambda m, a: tuple(m.linalg.qr(a)), lambda: [randn(2, 3, 5)], {"cpu_only": 1}),
    ("qr_pos_tall", qr_positive, lambda: [randn(3, 5, 3)], {}),
    ("qr_pos_square", qr_positive, lambda: [randn(2, 4, 4)], {}),
    ("qr_pos_wide", qr_positive, lambda: [randn(2, 3, 5)], {}),
    (
        "qr_complete",
        lambda m, a: qr_positive(m, a, "complete"),
        lambda: [randn(5, 3)],
        {"grad": False},
    ),
    ("qr_complete_wide", lambda m, a: qr_positive(m, a, "complete"), lambda: [randn(3, 4)], {}),
    (
        "qr_r",
        lambda m, a: m.linalg.qr(a, mode="r")[1].abs(),
        lambda: [randn(2, 5, 3)],
        {"grad": False},
    ),
    ("qr_top", lambda m, a: tuple(m.qr(a)), lambda: [randn(4, 3)], {"cpu_only": 1}),
    ("svd_usv", svd_usv, lambda: [randn(3, 5, 3)], {}),
    ("svd_parts_tall", svd_parts, lambda: [randn(2, 5, 3)], {}),
    ("svd_parts_wide", svd_parts, lambda: [randn(2, 3, 6)], {}),
    ("svd_parts_full", lambda m, a: svd_parts(m, a, True), lambda: [randn(2, 5, 3)], {}),
    (
        "svd_top",
        lambda m, a: (lambda u, s, v: (u.abs(), s, v.abs(), u @ v.mT))(*m.svd(a)),
        lambda: [randn(4, 3)],
        {},
    ),
    (
        "svd_top_full",
        lambda m, a: (lambda u, s, v: (u.abs(), s, v.abs()))(*m.svd(a, some=False)),
        lambda: [randn(2, 3, 4)],
        {"grad": False},
    ),
    ("svd_top_no_uv", lambda m, a: tuple(m.svd(a, compute_uv=False)), lambda: [randn(4, 3)], {}),
    ("svdvals", lambda m, a: m.linalg.svdvals(a), lambda: [randn(2, 3, 4, 3)], {}),
    ("svdvals_repeated", lambda m, a: m.linalg.svdvals(a), lambda: [np.eye(3)], {}),
    ("eigh", eigh_parts, lambda: [spd(2, n=5)], {}),
    ("eigh_upper", lambda m, a: eigh_parts(m, a.triu(), "U"), lambda: [spd(2)], {}),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a), lambda: [spd(3, n=3)], {}),
    ("eigvalsh_upper", lambda m, a: m.linalg.eigvalsh(a, UPLO="U"), lambda: [spd(n=3)], {}),
    ("pinv_tall", lambda m, a: m.linalg.pinv(a), lambda: [randn(2, 5, 3)], {}),
    ("pinv_wide", lambda m, a: m.linalg.pinv(a), lambda: [randn(3, 4)], {}),
    ("pinv_hermitian", lambda m, a: m.linalg.pinv(a, hermitian=True), lambda: [spd(2)], {}),
    (
        "pinv_rank_deficient",  # a rank-2 matrix: the cut singular value gets no gradient
        lambda m, a: m.linalg.pinv(a, atol=1e-8),
        lambda: [randn(5, 2) @ randn(2, 4)],
        {},
    ),
    ("pinverse", lambda m, a: m.pinverse(a), lambda: [randn(4, 3)], {}),
    (
        "pinv_tensor_rtol",
        lambda m, a: m.linalg.pinv(a, rtol=m.tensor([0.5, 1e-9], dtype=m.float64)),
        lambda: [randn(2, 3, 3)],
        {},
    ),
    (
        "lstsq",
        lambda m, a, b: m.linalg.lstsq(a, b).solution,
        lambda: [randn(3, 5, 3), randn(3, 5, 2)],
        {},
    ),
    (
        "lstsq_vec",
        lambda m, a, b: m.linalg.lstsq(a, b).solution,
        lambda: [randn(2, 5, 3), randn(2, 5)],
        {},
    ),
    (
        "lstsq_wide",
        lambda m, a, b: m.linalg.lstsq(a, b).solution,
        lambda: [randn(3, 5), randn(3, 2)],
        {},
    ),
    (
        "solve_triangular",
        lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True),
        lambda: [triangular(2, 1), randn(3, 4, 2)],
        {},
    ),
    (
        "solve_triangular_full_a",  # the other triangle is not read and gets no gradient
        lambda m, a, b: m.linalg.solve_triangular(a, b, upper=False),
        lambda: [square(2), randn(2, 4, 3)],
        {},
    ),
    (
        "solve_triangular_unit",
        lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True, unitriangular=True),
        lambda: [randn(2, 4, 4), randn(2, 4, 3)],
        {},
    ),
    (
        "solve_triangular_right",
        lambda m, a, b: m.linalg.solve_triangular(a, b, upper=False, left=False),
        lambda: [triangular(2, upper=False), randn(2, 3, 4)],
        {},
    ),
    (
        "cholesky_solve",
        lambda m, b, l: m.cholesky_solve(b, l),
        lambda: [randn(2, 1, 4, 3), chol(3)],
        {},
    ),
    (
        "cholesky_solve_upper",
        lambda m, b, l: m.cholesky_solve(b, l, upper=True),
        lambda: [randn(3, 4, 2), chol(3).swapaxes(-1, -2)],
        {},
    ),
    ("cholesky_inverse", lambda m, l: m.cholesky_inverse(l), lambda: [chol(2)], {}),
    (
        "cholesky_inverse_upper",
        lambda m, l: m.cholesky_inverse(l, True),
        lambda: [chol(2).swapaxes(-1, -2)],
        {},
    ),
    (
        "matrix_rank",
        lambda m, a: m.linalg.matrix_rank(a),
        lambda: [randn(3, 5, 2) @ randn(3, 2, 4)],
        {},
    ),
    (
        "matrix_rank_tols",
        lambda m, a: (
            m.linalg.matrix_rank(a, atol=1.0),
            m.linalg.matrix_rank(a, rtol=0.3),
            m.linalg.matrix_rank(a, atol=0.5, rtol=0.2),
            m.linalg.matrix_rank(a, hermitian=True),
            m.linalg.matrix_rank(a, tol=1.0),
        ),
        lambda: [spd(4, n=5) - 4 * np.eye(5)],
        {},
    ),
    ("diagonal", lambda m, a: m.linalg.diagonal(a, offset=1), lambda: [randn(2, 3, 4)], {}),
    (
        "diagonal_dims",
        lambda m, a: m.linalg.diagonal(a, offset=-1, dim1=0, dim2=2),
        lambda: [randn(4, 2, 3)],
        {},
    ),
    ("cross", lambda m, a, b: m.linalg.cross(a, b), lambda: [randn(4, 1, 3), randn(1, 5, 3)], {}),
    (
        "cross_dim",
        lambda m, a, b: m.linalg.cross(a, b, dim=0),
        lambda: [randn(3, 4), randn(3, 4)],
        {},
    ),
    ("cross_top", lambda m, a, b: m.cross(a, b, dim=1), lambda: [randn(2, 3), randn(2, 3)], {}),
    (
        "cross_top_default",
        lambda m, a, b: m.cross(a, b),
        lambda: [randn(4, 3, 3), randn(4, 3, 3)],
        {},
    ),
    ("vecdot", lambda m, a, b: m.linalg.vecdot(a, b), lambda: [randn(4, 1, 3), randn(5, 3)], {}),
    (
        "vecdot_dim",
        lambda m, a, b: m.linalg.vecdot(a, b, dim=0),
        lambda: [randn(3, 4), randn(3, 1)],
        {},
    ),
    (
        "multi_dot_vectors",
        lambda m, *x: m.linalg.multi_dot(x),
        lambda: [randn(3), randn(3, 5), randn(5, 2), randn(2)],
        {},
    ),
    (
        "multi_dot_chain",
        lambda m, *x: m.linalg.multi_dot(x),
        lambda: [randn(6, 2), randn(2, 7), randn(7, 3), randn(3, 4)],
        {},
    ),
    ("multi_dot_two", lambda m, *x: m.linalg.multi_dot(x), lambda: [randn(3), randn(3)], {}),
    ("matmul", lambda m, a, b: m.linalg.matmul(a, b), lambda: [randn(2, 3, 4), randn(4, 5)], {}),
    ("cond", lambda m, a: m.linalg.cond(a), lambda: [square(3)], {}),
    (
        "vander",
        lambda m, x: m.linalg.vander(x),
        lambda: [np.array([[1.5, -2.0, 0.0], [0.5, 1.0, 3.0]])],
        {},
    ),
    ("vander_n", lambda m, x: m.linalg.vander(x, N=5), lambda: [randn(4)], {}),
    (
        "tensorinv",
        lambda m, a: m.linalg.tensorinv(a, ind=1),
        lambda: [square(n=6).reshape(6, 2, 3)],
        {},
    ),
    (
        "tensorsolve",
        lambda m, a, b: m.linalg.tensorsolve(a, b, dims=(0,)),
        lambda: [square(n=6).reshape(6, 2, 3), randn(2, 3)],
        {},
    ),
    ("cond_minus2", lambda m, a: m.linalg.cond(a, -2), lambda: [square(3)], {}),
    # torch 2.13's own backward of cond(p='fro') fails (an in-place op on a saved output)
    ("cond_fro", lambda m, a: m.linalg.cond(a, "fro"), lambda: [square(3)], {"grad": False}),
]

for _p in (0, 1, 2, 3, 5, -1, -2, -3):
    CASES.append(
        (
            f"matrix_power_{_p}",
            lambda m, a, p=_p: m.linalg.matrix_power(a, p),
            lambda: [square(2)],
            {},
        )
    )
CASES.append(("matrix_power_top", lambda m, a: m.matrix_power(a, 3), lambda: [square()], {}))

for _o in ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2):
    CASES.append(
        (
            f"matrix_norm_{_o}",
            lambda m, a, o=_o: m.linalg.matrix_norm(a, o),
            lambda: [randn(3, 4, 3)],
            {},
        )
    )
    CASES.append(
        (
            f"matrix_norm_{_o}_dims_keepdim",
            lambda m, a, o=_o: m.linalg.matrix_norm(a, o, dim=(2, 0), keepdim=True),
            lambda: [randn(3, 2, 4)],
            {},
        )
    )

for _o in (2, 1, 0, 3.5, 0.5, -1, math.inf, -math.inf):
    CASES.append(
        (
            f"vector_norm_{_o}",
            lambda m, a, o=_o: m.linalg.vector_norm(a, o, dim=(0, 2)),
            lambda: [randn(3, 2, 4)],
            {},
        )
    )

CASES += [
    (
        "vector_norm_all_keepdim",
        lambda m, a: m.linalg.vector_norm(a, keepdim=True),
        lambda: [randn(3, 4)],
        {},
    ),
    (
        "vector_norm_dim_int",
        lambda m, a: m.linalg.vector_norm(a, 3, -1, True),
        lambda: [randn(3, 4)],
        {},
    ),
    ("norm_flat", lambda m, a: m.linalg.norm(a), lambda: [randn(2, 3, 4)], {}),
    ("norm_matrix_ord", lambda m, a: m.linalg.norm(a, -2), lambda: [randn(4, 3)], {}),
    ("norm_vector_ord", lambda m, a: m.linalg.norm(a, 4), lambda: [randn(5)], {}),
    ("norm_dim", lambda m, a: m.linalg.norm(a, math.inf, dim=1), lambda: [randn(2, 3, 4)], {}),
    ("norm_dims", lambda m, a: m.linalg.norm(a, "nuc", dim=(0, 2)), lambda: [randn(2, 3, 4)], {}),
    ("norm_fro", lambda m, a: m.linalg.norm(a, "fro"), lambda: [randn(3, 4)], {}),
]


def _run(case, device, arrays=None, **extra):
    _, fn, make, opts = case
    opts = dict(opts)
    if opts.pop("cpu_only", 0) and device != "cpu":
        pytest.skip("LAPACK's sign conventions: compared on the CPU only")
    arrays = make() if arrays is None else arrays
    compare(
        lambda *x: fn(dl, *x),
        lambda *x: fn(torch, *x),
        *arrays,
        device=device,
        **{"atol": 1e-8, "rtol": 1e-6, **opts, **extra},
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_against_torch(case, device):
    _run(case, device)


F32 = [
    c
    for c in CASES
    if c[0]
    in {
        "det",
        "slogdet",
        "inv",
        "solve",
        "cholesky",
        "qr_pos_tall",
        "svd_usv",
        "svdvals",
        "eigh",
        "pinv_tall",
        "solve_triangular",
        "cholesky_solve",
        "lstsq",
        "matrix_norm_nuc",
        "matrix_power_-2",
    }
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", F32, ids=[c[0] for c in F32])
def test_float32(case, device):
    arrays = [a.astype(np.float32) for a in case[2]()]
    _run(case, device, arrays, atol=2e-4, rtol=2e-3)


# ------------------------------------------------------------------ finite differences


def _eye(n):
    return dl.eye(n, dtype=dl.float64)


GRADCHECKS = [
    ("det", dl.linalg.det, [square(2, n=3)]),
    ("det_rank_n_minus_1", dl.linalg.det, [randn(4, 3) @ randn(3, 4)]),
    ("det_rank_n_minus_2", dl.linalg.det, [randn(4, 2) @ randn(2, 4)]),
    ("slogdet", lambda a: dl.linalg.slogdet(a).logabsdet, [randn(2, 3, 3)]),
    ("inv", dl.linalg.inv, [square(2, n=3)]),
    ("solve", dl.linalg.solve, [square(2, n=3), randn(3, 2)]),
    ("solve_vec", dl.linalg.solve, [square(n=3), randn(3)]),
    ("cholesky", lambda m: dl.linalg.cholesky(m @ m.mT + 3 * _eye(3)), [randn(2, 3, 3)]),
    (
        "solve_tri_lower",
        lambda a, b: dl.linalg.solve_triangular(a, b, upper=False),
        [square(2, n=3), randn(3, 2)],
    ),
    (
        "solve_tri_upper_unit_right",
        lambda a, b: dl.linalg.solve_triangular(a, b, upper=True, unitriangular=True, left=False),
        [randn(3, 3), randn(2, 2, 3)],
    ),
    ("pinv", dl.linalg.pinv, [randn(2, 4, 3)]),
    ("pinv_wide", dl.linalg.pinv, [randn(3, 5)]),
    ("pinv_hermitian", lambda m: dl.linalg.pinv(m + m.mT, hermitian=True), [randn(3, 3)]),
    ("qr_tall", lambda a: tuple(dl.linalg.qr(a)), [randn(2, 4, 3)]),
    ("qr_wide", lambda a: tuple(dl.linalg.qr(a)), [randn(2, 3, 5)]),
    ("svd_tall", lambda a: svd_parts(dl, a), [randn(2, 4, 3)]),
    ("svd_wide_full", lambda a: svd_parts(dl, a, True), [randn(3, 5)]),
    ("svdvals", dl.linalg.svdvals, [randn(2, 3, 4)]),
    ("eigh", lambda m: eigh_parts(dl, m + m.mT), [randn(2, 4, 4)]),
    ("eigvalsh", lambda m: dl.linalg.eigvalsh(m + m.mT), [randn(4, 4)]),
    # (the factor's triangle only: torch's gradient, which these follow, also has entries
    # in the other triangle, which the forward does not read)
    ("cholesky_solve", lambda b, l: dl.cholesky_solve(b, l.tril()), [randn(4, 2), chol()]),
    (
        "cholesky_inverse",
        lambda l: dl.cholesky_inverse(l.triu(), upper=True),
        [np.ascontiguousarray(chol().T)],  # (gradcheck perturbs C-ordered arrays only)
    ),
    ("lstsq", lambda a, b: dl.linalg.lstsq(a, b).solution, [randn(5, 3), randn(5, 2)]),
    ("matrix_norm_2", lambda a: dl.linalg.matrix_norm(a, 2), [randn(3, 4)]),
]


@pytest.mark.parametrize("case", GRADCHECKS, ids=[c[0] for c in GRADCHECKS])
def test_gradcheck(case):
    _, fn, arrays = case
    gradcheck(fn, *arrays)


def test_det_gradient_of_a_singular_matrix_is_the_cofactor_matrix():
    # torch 2.13 gives 0 here (LU finds an exact zero pivot), which its own gradcheck
    # refuses; the gradient of det is the cofactor matrix, non-zero at rank n - 1
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    x = dl.tensor(a, requires_grad=True)
    dl.linalg.det(x).backward()
    cof = np.array([[4.0, 4.0, -4.0], [-2.0, -2.0, 2.0], [0.0, 0.0, 0.0]])
    assert_close(x.grad, cof, atol=1e-12, rtol=1e-12)
    gradcheck(dl.linalg.det, a)


# ------------------------------------------------------------------ second derivatives


def _second(m, fn, arrays, seed=3):
    """First gradients (with create_graph) of sum(w * fn(x)), then the gradients of the
    sum of their squares: values of both, from darklib (m = dl) or torch."""
    xs = [m.tensor(a, requires_grad=True) for a in arrays]
    y = fn(m, *xs)
    w = m.tensor(np.random.default_rng(seed).standard_normal(tuple(y.shape)))
    g1 = m.autograd.grad((y * w).sum(), xs, create_graph=True)
    g2 = m.autograd.grad(sum((g * g * g).sum() for g in g1), xs)
    return [np.asarray(g.detach().numpy()) for g in (*g1, *g2)]


SECOND = [
    ("det", lambda m, a: m.linalg.det(a), [square(2, n=3)]),
    ("slogdet", lambda m, a: m.linalg.slogdet(a).logabsdet, [randn(2, 3, 3)]),
    ("logdet", lambda m, a: m.logdet(a), [spd(2, n=3)]),
    ("inv", lambda m, a: m.linalg.inv(a), [square(2, n=3)]),
    ("solve", lambda m, a, b: m.linalg.solve(a, b), [square(2, n=3), randn(3, 2)]),
    ("cholesky", lambda m, a: m.linalg.cholesky(a), [spd(2, n=3)]),
    (
        "solve_triangular",
        lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True, unitriangular=True),
        [randn(2, 3, 3), randn(2, 3, 2)],
    ),
    ("pinv", lambda m, a: m.linalg.pinv(a), [randn(2, 4, 3)]),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a), [spd(2, n=3)]),
    ("eigh", lambda m, a: eigh_parts(m, a)[1], [spd(2, n=3)]),
    ("svdvals", lambda m, a: m.linalg.svdvals(a), [randn(2, 4, 3)]),
    ("svd", lambda m, a: svd_parts(m, a)[0], [randn(2, 3, 3)]),
    ("qr", lambda m, a: qr_positive(m, a)[0] @ qr_positive(m, a)[1].mT, [randn(2, 4, 3)]),
    ("qr_wide", lambda m, a: m.linalg.qr(a).R.sum(-2), [randn(3, 5)]),
    ("cholesky_solve", lambda m, b, l: m.cholesky_solve(b, l), [randn(3, 2), chol(n=3)]),
    ("matrix_norm_nuc", lambda m, a: m.linalg.matrix_norm(a, "nuc"), [randn(2, 4, 3)]),
    ("matrix_power_neg", lambda m, a: m.linalg.matrix_power(a, -2), [square(n=3)]),
]


@pytest.mark.parametrize("case", SECOND, ids=[c[0] for c in SECOND])
def test_second_derivatives(case):
    _, fn, arrays = case
    ours, theirs = _second(dl, fn, arrays), _second(torch, fn, arrays)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=f"gradient {i}")


# ------------------------------------------------------------------ results and API


def test_named_tuples_and_node_names():
    a = dl.tensor(square(n=3), requires_grad=True)
    assert type(dl.linalg.slogdet(a)).__name__ == "linalg_slogdet"
    assert dl.linalg.slogdet(a)._fields == ("sign", "logabsdet")
    assert dl.slogdet(a)._fields == ("sign", "logabsdet")
    assert type(dl.slogdet(a)).__name__ == "slogdet"
    assert dl.linalg.qr(a)._fields == ("Q", "R")
    assert type(dl.qr(a)).__name__ == "qr"
    assert dl.linalg.svd(a)._fields == ("U", "S", "Vh")
    assert dl.svd(a)._fields == ("U", "S", "V")
    assert dl.linalg.eigh(a)._fields == ("eigenvalues", "eigenvectors")
    lst = dl.linalg.lstsq(a, a)
    assert lst._fields == ("solution", "residuals", "rank", "singular_values")
    names = {
        "LinalgDetBackward0": dl.linalg.det(a),
        "LinalgInvExBackward0": dl.linalg.inv(a),
        "LinalgSolveExBackward0": dl.linalg.solve(a, a),
        "LinalgSlogdetBackward0": dl.linalg.slogdet(a).logabsdet,
        "LinalgSvdBackward0": dl.linalg.svdvals(a),
        "LinalgEighBackward0": dl.linalg.eigvalsh(a),
        "LinalgQrBackward0": dl.linalg.qr(a).R,
        "LinalgPinvBackward0": dl.linalg.pinv(a),
        "LinalgSolveTriangularBackward0": dl.linalg.solve_triangular(a, a, upper=True),
    }
    for name, t in names.items():
        assert type(t.grad_fn).__name__ == name
    # the sign of slogdet is in the graph with a zero gradient, as torch's
    s = dl.linalg.slogdet(a)
    assert s.sign.requires_grad
    (s.sign.sum() + s.logabsdet).backward()
    assert_close(a.grad, torch.linalg.inv(torch.tensor(a.numpy(force=True))).T, 1e-10, 1e-8)


def test_tensor_methods():
    x = square(2, n=3)
    a, t = dl.tensor(x), torch.tensor(x)
    pairs = [
        (a.det(), t.det()),
        (a.logdet(), t.logdet()),
        (tuple(a.slogdet()), tuple(t.slogdet())),
        (a.inverse(), t.inverse()),
        (a.pinverse(), t.pinverse()),
        (a.matrix_power(3), t.matrix_power(3)),
        (a.svd().S, t.svd().S),
        (a.qr().R.abs(), t.qr().R.abs()),
    ]
    s = dl.tensor(spd(n=3))
    ts = torch.tensor(s.numpy())
    pairs += [
        (s.cholesky(), ts.cholesky()),
        (s.cholesky(upper=True), ts.cholesky(upper=True)),
        (s.cholesky().cholesky_inverse(), ts.cholesky().cholesky_inverse()),
        (a[0].cholesky_solve(s.cholesky()), t[0].cholesky_solve(ts.cholesky())),
    ]
    v, w = randn(4, 3), randn(4, 3)
    pairs.append(
        (dl.tensor(v).cross(dl.tensor(w), dim=1), torch.tensor(v).cross(torch.tensor(w), dim=1))
    )
    for ours, theirs in pairs:
        assert_close(ours, theirs, 1e-10, 1e-8)


def test_top_level_and_namespace_names():
    for name in (
        "det logdet slogdet inverse cholesky qr svd pinverse matrix_power cholesky_solve "
        "cholesky_inverse cross"
    ).split():
        assert callable(getattr(dl, name)), name
    for name in dir(torch.linalg):
        if name.startswith("_") or name in {
            # not in darklib: complex-valued eigendecompositions and LDL
            "eig", "eigvals", "ldl_factor", "ldl_solve", "ldl_factor_ex", "common_notes",
        }:  # fmt: skip
            continue
        if callable(getattr(torch.linalg, name)):
            assert hasattr(dl.linalg, name), name
    assert issubclass(dl.linalg.LinAlgError, RuntimeError)


def test_svd_without_uv_and_qr_r():
    a = randn(2, 5, 3)
    u, s, v = dl.svd(dl.tensor(a), compute_uv=False)
    tu, ts, tv = torch.svd(torch.tensor(a), compute_uv=False)
    for ours, theirs in ((u, tu), (s, ts), (v, tv)):
        assert_close(ours, theirs, 1e-10, 1e-8)
    q, r = dl.linalg.qr(dl.tensor(a), mode="r")
    assert tuple(q.shape) == (0,)
    assert_close(r.abs(), torch.linalg.qr(torch.tensor(a), mode="r").R.abs(), 1e-10, 1e-8)


@pytest.mark.parametrize("driver", ["gelsy", "gels", "gelsd", "gelss"])
def test_lstsq_fields(driver):
    a, b = randn(2, 6, 3), randn(2, 6, 2)
    ours = dl.linalg.lstsq(dl.tensor(a), dl.tensor(b), driver=driver)
    theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    for f in ("solution", "residuals", "rank", "singular_values"):
        assert_close(getattr(ours, f), getattr(theirs, f), 1e-9, 1e-7, f)
        assert getattr(ours, f).dtype.name == str(getattr(theirs, f).dtype)[6:], f
    # a rank-deficient system: the minimum-norm solution, its rank
    a = randn(6, 2) @ randn(2, 4)
    b = randn(6, 1)
    ours = dl.linalg.lstsq(dl.tensor(a), dl.tensor(b), driver="gelsd")
    theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver="gelsd")
    assert_close(ours.solution, theirs.solution, 1e-9, 1e-7)
    assert int(ours.rank) == int(theirs.rank) == 2
    assert tuple(ours.residuals.shape) == tuple(theirs.residuals.shape) == (0,)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_and_special_values(device):
    def both(fn, x):
        return fn(dl, dl.tensor(x, device=device)), fn(torch, torch.tensor(x))

    for fn, x in [
        (lambda m, a: m.linalg.det(a), np.ones((0, 0))),
        (lambda m, a: m.linalg.inv(a), np.ones((0, 3, 3))),
        (lambda m, a: m.linalg.svd(a).S, np.ones((0, 3))),
        (lambda m, a: m.linalg.eigh(a).eigenvalues, np.ones((2, 0, 0))),
        (lambda m, a: m.linalg.pinv(a), np.ones((0, 3))),
        (lambda m, a: tuple(m.linalg.slogdet(a)), np.zeros((3, 3))),
        (lambda m, a: m.logdet(a), -np.eye(3)),
        (lambda m, a: m.linalg.inv(a), np.array([[1.0, np.nan], [0.0, 1.0]])),
        (lambda m, a: m.linalg.det(a), np.array([[1.0, np.inf], [0.0, 1.0]])),
        # a zero on the diagonal of a triangular solve: inf/NaN, no error (as torch)
        (
            lambda m, a: m.linalg.solve_triangular(a, a + 1, upper=True),
            np.triu(np.ones((3, 3))) - np.eye(3),
        ),
    ]:
        ours, theirs = both(fn, x)
        for o, t in zip(
            ours if isinstance(ours, tuple) else [ours],
            theirs if isinstance(theirs, tuple) else [theirs],
        ):
            assert_close(o, t, 1e-10, 1e-8)


def test_repeated_singular_values_and_eigenvalues():
    # S alone has a gradient for repeated values; the vectors do not (inf/NaN, as torch)
    x = dl.tensor(np.eye(3), requires_grad=True)
    dl.linalg.svdvals(x).sum().backward()
    assert_close(x.grad, np.eye(3), 1e-12, 1e-12)
    x.grad = None
    u, _, vh = dl.linalg.svd(x)
    (u.sum() + vh.sum()).backward()
    assert not np.isfinite(x.grad.numpy()).all()
    y = dl.tensor(np.eye(3), requires_grad=True)
    dl.linalg.eigvalsh(y).sum().backward()
    assert_close(y.grad, np.eye(3), 1e-12, 1e-12)


def test_warnings_once_as_torch():
    decomp._warned.clear()
    a = dl.tensor(randn(3, 3))
    with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
        dl.cross(a, a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dl.cross(a, a)  # once per process, as torch's TORCH_WARN_ONCE
        dl.linalg.cross(a, a)
    with pytest.warns(UserWarning, match="torch.cholesky is deprecated"):
        dl.cholesky(dl.tensor(spd(n=3)))
    with pytest.warns(UserWarning, match="torch.qr is deprecated"):
        dl.qr(a)


def test_matrix_power_zero_is_identity_with_zero_gradient():
    a = dl.tensor(square(2, n=3), requires_grad=True)
    p = dl.linalg.matrix_power(a, 0)
    assert_close(p, np.broadcast_to(np.eye(3), (2, 3, 3)), 0, 0)
    assert p.requires_grad
    p.sum().backward()
    assert_close(a.grad, np.zeros((2, 3, 3)), 0, 0)
    ints = dl.tensor(np.arange(9).reshape(3, 3))
    assert_close(
        dl.linalg.matrix_power(ints, 3),
        torch.linalg.matrix_power(torch.arange(9).reshape(3, 3), 3),
        0,
        0,
    )


# ------------------------------------------------------------------ errors


def _singular_batch():
    a = np.repeat(np.eye(3)[None], 2, 0)
    a[1, 2, 2] = 0.0
    return a


def _not_pd_batch():
    a = np.repeat(np.eye(3)[None], 3, 0)
    a[2, 1, 1] = -1.0
    return a


LinAlgError = dl.linalg.LinAlgError

ERRORS = [
    (
        lambda t: dl.linalg.inv(t(_singular_batch())),
        LinAlgError,
        r"linalg.inv: \(Batch element 1\): The diagonal element 3 is zero",
    ),
    (
        lambda t: dl.linalg.inv(t(np.zeros((3, 3)))),
        LinAlgError,
        r"^linalg.inv: The diagonal element 1 is zero.*singular",
    ),
    (lambda t: dl.inverse(t(np.ones((2, 2)))), RuntimeError, "singular"),
    (
        lambda t: dl.linalg.solve(t(_singular_batch()), t(np.ones((2, 3)))),
        LinAlgError,
        r"\(Batch element 1\): The solver failed because the input matrix is singular",
    ),
    (lambda t: dl.linalg.matrix_power(t(np.zeros((3, 3))), -1), LinAlgError, "singular"),
    (
        lambda t: dl.linalg.cholesky(t(_not_pd_batch())),
        LinAlgError,
        r"linalg.cholesky: \(Batch element 2\): .*not positive-definite "
        r"\(the leading minor of order 2 is not positive-definite\)",
    ),
    (
        lambda t: dl.linalg.cholesky(t(np.array([[1.0, 0.0], [0.0, np.nan]]))),
        LinAlgError,
        "leading minor of order 2",
    ),
    (
        lambda t: dl.linalg.cholesky(t(np.array([[1.0, 2.0], [2.0, 1.0]]))),
        LinAlgError,
        "leading minor of order 2",
    ),
    (
        lambda t: dl.linalg.svd(t(np.array([[1.0, np.nan], [0.0, 1.0]]))),
        LinAlgError,
        "non-finite values",
    ),
    (
        lambda t: dl.linalg.det(t(np.ones((2, 3)))),
        ValueError,
        r"linalg.det: A must be batches of square matrices, but they are 2 by 3 matrices",
    ),
    (lambda t: dl.linalg.inv(t(np.ones(3))), ValueError, "at least 2 dimensions"),
    (lambda t: dl.linalg.eigh(t(np.ones((2, 3)))), RuntimeError, "square matrices"),
    (
        lambda t: dl.linalg.inv(t(np.ones((3, 3), np.int64))),
        TypeError,
        r"linalg.inv: Expected a floating point tensor as input. Got Long",
    ),
    (
        lambda t: dl.linalg.det(t(np.ones((3, 3), np.int32))),
        TypeError,
        "floating point tensor.*Got Int",
    ),
    (
        lambda t: dl.linalg.svd(t(np.ones((3, 3), np.float16))),
        TypeError,
        "Low precision dtypes not supported. Got Half",
    ),
    (lambda t: dl.linalg.cholesky(t(np.ones((3, 3), bool))), TypeError, "Got Bool"),
    (
        lambda t: dl.linalg.solve(t(np.eye(3)), t(np.ones(4))),
        ValueError,
        r"Incompatible shapes of A and B for the equation AX = B \(3x3 and 4x1\); "
        r"A has shape \[3, 3\], B has shape \[4\]",
    ),
    (
        lambda t: dl.linalg.solve(t(np.eye(3)), t(np.ones((2, 4, 2)))),
        ValueError,
        r"\(3x3 and 4x2\).*\[2, 4, 2\]",
    ),
    (
        lambda t: dl.linalg.solve(t(np.ones((2, 3, 3))), t(np.ones((5, 3, 2)))),
        ValueError,
        r"batch dimensions of A \[2, 3, 3\] and B \[5, 3, 2\] do not broadcast",
    ),
    (
        lambda t: dl.linalg.solve(t(np.eye(3)), t(np.ones(3, np.float32))),
        TypeError,
        "same dtype, but found A of type Double and B of type Float",
    ),
    (
        lambda t: dl.linalg.solve_triangular(t(np.eye(3)), t(np.ones(3)), upper=True),
        ValueError,
        "B must have at least 2 dimensions",
    ),
    (
        lambda t: dl.linalg.solve_triangular(
            t(np.eye(3)), t(np.ones((3, 4))), upper=True, left=False
        ),
        ValueError,
        r"equation XA = B \(3x3 and 3x4\)",
    ),
    (
        lambda t: dl.cholesky_solve(t(np.ones((4, 2))), t(np.eye(3))),
        ValueError,
        "each A matrix is 3 by 3 but each b matrix is 4 by 2",
    ),
    (
        lambda t: dl.linalg.lstsq(t(np.ones((3, 5))), t(np.ones((4, 2)))),
        ValueError,
        r"input.size\(-2\) should match other.size\(-2\)",
    ),
    (
        lambda t: dl.linalg.lstsq(t(np.ones((3, 5))), t(np.ones((3, 2))), driver="x"),
        ValueError,
        "driver",
    ),
    (lambda t: dl.linalg.qr(t(np.ones((3, 3))), mode="x"), ValueError, "unrecognized mode 'x'"),
    (
        lambda t: dl.linalg.eigh(t(np.eye(3)), UPLO="X"),
        ValueError,
        "Expected UPLO argument to be 'L' or 'U', but got X",
    ),
    (
        lambda t: dl.linalg.matrix_norm(t(np.ones((3, 3))), ord=3),
        ValueError,
        "Order 3 not supported",
    ),
    (
        lambda t: dl.linalg.matrix_norm(t(np.ones((3, 3))), dim=(0, 0)),
        ValueError,
        "dims must be different",
    ),
    (lambda t: dl.linalg.matrix_norm(t(np.ones(3))), ValueError, "at least 2 dimensions"),
    (lambda t: dl.linalg.vector_norm(t(np.ones(3)), ord="fro"), TypeError, "'ord' must be Number"),
    (lambda t: dl.linalg.vector_norm(t(np.ones(3, np.int64))), TypeError, "Got Long"),
    (
        lambda t: dl.linalg.vector_norm(t(np.ones((0, 3))), ord=math.inf),
        ValueError,
        "inf norm on an empty tensor",
    ),
    (
        lambda t: dl.linalg.vector_norm(t(np.ones(3)), dtype=dl.float32),
        TypeError,
        "without narrowing",
    ),
    (lambda t: dl.linalg.norm(t(np.ones((2, 3, 3))), 2), ValueError, "must be 1D or 2D. Got 3D"),
    (
        lambda t: dl.linalg.norm(t(np.ones((2, 3, 3))), dim=(0, 1, 2)),
        ValueError,
        "of length 1 or 2",
    ),
    (lambda t: dl.linalg.matrix_power(t(np.ones((2, 3))), 2), ValueError, "square matrices"),
    (lambda t: dl.linalg.matrix_power(t(np.ones((3, 3))), 1.5), TypeError, "n must be an integer"),
    (
        lambda t: dl.linalg.cross(t(np.ones(4)), t(np.ones(4))),
        ValueError,
        "dimension -1 must have length 3. Got 4 and 4",
    ),
    (
        lambda t: dl.linalg.cross(t(np.ones((2, 4, 3))), t(np.ones((4, 3)))),
        ValueError,
        "same number of dimensions",
    ),
    (
        lambda t: dl.cross(t(np.ones((2, 4))), t(np.ones((2, 4)))),
        ValueError,
        "no dimension of size 3",
    ),
    (
        lambda t: dl.linalg.vecdot(t(np.ones(3)), t(np.ones(4))),
        ValueError,
        r"shapes \[3\] and \[4\] do not broadcast",
    ),
    (lambda t: dl.linalg.multi_dot([t(np.ones(3))]), ValueError, "at least 2 tensors but got 1"),
    (
        lambda t: dl.linalg.multi_dot([t(np.ones((3, 3, 3))), t(np.ones(3))]),
        ValueError,
        "first tensor must be 1D or 2D",
    ),
    (
        lambda t: dl.linalg.multi_dot([t(np.ones((2, 3))), t(np.ones((3, 3))), t(np.ones((4, 3)))]),
        ValueError,
        r"tensors 1 and 2 with shapes \[3, 3\] and \[4, 3\] cannot be multiplied",
    ),
    (lambda t: dl.linalg.pinv(t(np.ones((3, 3))), 0.1, atol=0.1), ValueError, "not both"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i, device):
    fn, exc, match = ERRORS[i]
    with pytest.raises(exc, match=match):
        fn(lambda a: dl.tensor(a, device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_errors(device):
    a = dl.tensor(randn(4, 3), device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="not computed when mode='r'"):
        dl.linalg.qr(a, mode="r").R.sum().backward()
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete'"):
        dl.linalg.qr(a, mode="complete").R.sum().backward()
    # the second derivative of det goes through inv: a singular matrix says so
    z = dl.tensor(np.zeros((3, 3)), device=device, requires_grad=True)
    (g,) = dl.autograd.grad(dl.linalg.det(z), z, create_graph=True)
    assert_close(g, np.zeros((3, 3)), 0, 0)
    with pytest.raises(LinAlgError, match="singular"):
        dl.autograd.grad(dl.linalg.det(z), z, create_graph=True)[0].sum().backward()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("upper", [False, True])
def test_solve_triangular_is_accurate_on_ill_conditioned_triangles(device, upper):
    # substitution, not an LU solve: a random triangle with small diagonal entries is
    # ill-conditioned (LU lost every digit at n = 100), but substitution solves it to the
    # precision torch reaches
    r = rng(0)
    n = 100
    t = np.tril(r.standard_normal((n, n)))
    np.fill_diagonal(t, 10 ** r.uniform(-1, 0, n))
    if upper:
        t = t.T.copy()
    b = r.standard_normal((n, 2))
    got = dl.linalg.solve_triangular(
        dl.tensor(t, device=device), dl.tensor(b, device=device), upper=upper
    )
    want = torch.linalg.solve_triangular(torch.tensor(t), torch.tensor(b), upper=upper)
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_cond_of_a_singular_matrix_is_inf_and_solve_needs_a_vector_b(device):
    a = np.array([[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 2.0]]])
    for p in ("fro", "nuc", 1, -1, float("inf"), float("-inf")):
        got = dl.linalg.cond(dl.tensor(a, device=device), p).cpu().numpy()
        want = torch.linalg.cond(torch.tensor(a), p).numpy()
        # the singular one: inf (torch's LU rounds to 2.5e16 for some p, inf for others)
        assert got[0] == np.inf and want[0] > 1e15
        np.testing.assert_allclose(got[1], want[1])
    with pytest.raises(ValueError, match="B must have at least 1 dimension"):
        dl.linalg.solve(
            dl.eye(2, dtype=dl.float64, device=device),
            dl.tensor(1.0, dtype=dl.float64, device=device),
        )


@pytest.mark.parametrize("device", DEVICES)
def test_half_precision_norms_as_torch(device):
    # the norms that need no decomposition take float16, as torch; the SVD ones refuse it
    a = rng(5).standard_normal((3, 4)).astype(np.float16)
    x, t = dl.tensor(a, device=device), torch.tensor(a)
    for fn in (
        lambda m, v: m.linalg.vector_norm(v),
        lambda m, v: m.linalg.vector_norm(v, 3, dim=1),
        lambda m, v: m.linalg.norm(v),
        lambda m, v: m.linalg.matrix_norm(v, 1),
        lambda m, v: m.linalg.matrix_norm(v, float("inf")),
    ):
        got, want = fn(dl, x), fn(torch, t)
        assert got.dtype == dl.float16
        np.testing.assert_allclose(
            got.cpu().numpy().astype(float), want.numpy().astype(float), rtol=2e-3
        )
    with pytest.raises(TypeError, match="Low precision dtypes not supported"):
        dl.linalg.matrix_norm(x, "nuc")


def test_lstsq_residuals_of_a_vector_b_keep_torchs_trailing_dim():
    a, b = rng(0).standard_normal((2, 5, 3)), rng(1).standard_normal((2, 5))
    for args in ((a, b), (a[0], b[0])):
        got = dl.linalg.lstsq(*(dl.tensor(v) for v in args), driver="gelsd")
        want = torch.linalg.lstsq(*(torch.tensor(v) for v in args), driver="gelsd")
        assert tuple(got.residuals.shape) == tuple(want.residuals.shape)
        assert_close(got.residuals, want.residuals, atol=1e-10, rtol=1e-10)
