"""``dl.cuda.is_available()`` and friends, as in PyTorch."""

from __future__ import annotations

from darklib import backend


def is_available() -> bool:
    return backend.cuda_available()


def device_count() -> int:
    return backend.cuda_device_count()


def synchronize() -> None:
    """Wait for all kernels on the current device (a no-op without CUDA)."""
    if backend.cuda_available():
        backend.xp_for(backend.device("cuda")).cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    from darklib.random import manual_seed as _seed

    _seed(seed)
