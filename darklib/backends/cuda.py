"""``dl.backends.cuda``: whether darklib can use CUDA, and torch's float32 product switch
``matmul.allow_tf32``."""

from __future__ import annotations

import importlib.util

from darklib import _namespace


def is_built() -> bool:
    """Whether CuPy, darklib's GPU backend, is installed (a GPU may still be missing:
    see ``dl.cuda.is_available()``)."""
    return importlib.util.find_spec("cupy") is not None


class _Matmul:
    """``matmul.allow_tf32`` is torch's other spelling of the float32 matmul precision:
    True means ``'high'``, False ``'highest'`` (see ``dl.set_float32_matmul_precision``).
    The reduced-precision reduction flags of half products are kept and change nothing."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        return _namespace.get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        _namespace.set_float32_matmul_precision("high" if value else "highest")


matmul = _Matmul()
