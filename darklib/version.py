"""``dl.version``, as ``torch.version``: darklib's version, and the CUDA runtime CuPy was
built for (None where CuPy is not installed)."""

from __future__ import annotations

import importlib.util

__version__ = "0.1.0"


def _cuda() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        import cupy

        v = int(cupy.cuda.runtime.runtimeGetVersion())
    except Exception:  # CuPy without a usable CUDA runtime
        return None
    return f"{v // 1000}.{v % 1000 // 10}"


cuda = _cuda()
