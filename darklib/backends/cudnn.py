"""``dl.backends.cudnn``: torch's cuDNN switches. darklib does not use cuDNN (its GPU
convolutions are im2col kernels and cuBLAS products), so ``is_available()`` is False and
the flags, kept for scripts that set them, change nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None


@contextlib.contextmanager
def flags(
    enabled: bool = False,
    benchmark: bool = False,
    deterministic: bool = False,
    allow_tf32: bool = True,
) -> Iterator[None]:
    """Set the four flags inside a ``with`` block, as torch's ``cudnn.flags``."""
    names = ("enabled", "benchmark", "deterministic", "allow_tf32")
    module = globals()
    outer = {n: module[n] for n in names}
    module.update(zip(names, (enabled, benchmark, deterministic, allow_tf32), strict=True))
    try:
        yield
    finally:
        module.update(outer)
