"""``dl.version``, as ``torch.version``: darklib's version, and (``cuda``) the CUDA runtime
CuPy uses, None where CuPy is not installed. ``cuda`` is looked up when read, so that
importing darklib does not import CuPy."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "cuda":
        from darklib import backend

        return backend.cuda_runtime_version()
    raise AttributeError(f"module 'darklib.version' has no attribute {name!r}")
