"""``dl.linalg``: torch.linalg's functions (``import darklib as dl; dl.linalg.svd(A)``).

The ops live in :mod:`darklib.ops.decomp`; this module gives them torch.linalg's names.
"""

from darklib.ops.decomp import (
    LinAlgError,
    cond,
    det,
    eigh,
    eigvalsh,
    inv,
    lstsq,
    matrix_norm,
    matrix_power,
    matrix_rank,
    multi_dot,
    pinv,
    solve,
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
from darklib.ops.decomp import linalg_matmul as matmul
from darklib.ops.decomp import linalg_norm as norm
from darklib.ops.decomp import linalg_qr as qr
from darklib.ops.decomp import linalg_slogdet as slogdet
from darklib.ops.decomp import linalg_svd as svd

__all__ = [
    "LinAlgError",
    "cholesky",
    "cond",
    "cross",
    "det",
    "diagonal",
    "eigh",
    "eigvalsh",
    "inv",
    "lstsq",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_triangular",
    "svd",
    "svdvals",
    "tensorinv",
    "tensorsolve",
    "vander",
    "vecdot",
    "vector_norm",
]
