"""``dl.return_types``, as ``torch.return_types``: the named tuples that ops with several
outputs return (``dl.max(x, 0)`` is a ``return_types.max`` with ``values`` and
``indices``), for ``isinstance`` checks and annotations."""

from darklib.ops import decomp as _decomp
from darklib.ops import extras as _extras
from darklib.ops import products as _products
from darklib.ops import reduction as _reduction

_HOMES = {
    _reduction: "max min sort topk median nanmedian mode aminmax kthvalue cummax cummin",
    _decomp: "slogdet linalg_slogdet qr linalg_qr svd linalg_svd linalg_eigh linalg_lstsq "
    "linalg_lu_factor linalg_lu_factor_ex linalg_lu lu_unpack linalg_solve_ex linalg_inv_ex "
    "linalg_cholesky_ex triangular_solve",
    _extras: "frexp",
    _products: "histogram",
}
__all__ = []
for _module, _names in _HOMES.items():
    for _name in _names.split():
        globals()[_name] = getattr(_module, _name + "_result")
        __all__.append(_name)
