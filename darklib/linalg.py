"""``dl.linalg``: torch.linalg's functions (``import darklib as dl; dl.linalg.svd(A)``).

The ops live in :mod:`darklib.ops.decomp`; this module gives them torch.linalg's names.
"""

from darklib.ops.decomp import (
    LinAlgError,
    cholesky_ex,
    cond,
    det,
    eigh,
    eigvalsh,
    householder_product,
    inv,
    inv_ex,
    lstsq,
    lu_factor,
    lu_factor_ex,
    matrix_exp,
    matrix_norm,
    matrix_power,
    matrix_rank,
    multi_dot,
    pinv,
    solve,
    solve_ex,
    solve_triangular,
    svdvals,
    tensorinv,
    tensorsolve,
    vander,
    vecdot,
    vector_norm,
)
from darklib.ops.decomp import linalg_cholesky as cholesky
from darklib.ops.decomp import linalg_cross as cross
from darklib.ops.decomp import linalg_diagonal as diagonal
from darklib.ops.decomp import linalg_lu as lu
from darklib.ops.decomp import linalg_lu_solve as lu_solve
from darklib.ops.decomp import linalg_matmul as matmul
from darklib.ops.decomp import linalg_norm as norm
from darklib.ops.decomp import linalg_qr as qr
from darklib.ops.decomp import linalg_slogdet as slogdet
from darklib.ops.decomp import linalg_svd as svd

__all__ = [
    "LinAlgError",
    "cholesky",
    "cholesky_ex",
    "cond",
    "cross",
    "det",
    "diagonal",
    "eigh",
    "eigvalsh",
    "householder_product",
    "inv",
    "inv_ex",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_factor_ex",
    "lu_solve",
    "matmul",
    "matrix_exp",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_ex",
    "solve_triangular",
    "svd",
    "svdvals",
    "tensorinv",
    "tensorsolve",
    "vander",
    "vecdot",
    "vector_norm",
]
