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


def _pool():
    return backend.xp_for(backend.device("cuda")).get_default_memory_pool()


def memory_allocated() -> int:
    """Bytes of GPU memory held by live arrays (0 without CUDA)."""
    return int(_pool().used_bytes()) if backend.cuda_available() else 0


def memory_reserved() -> int:
    """Bytes of GPU memory held by CuPy's caching allocator: live arrays plus freed blocks
    kept for reuse, as torch.cuda.memory_reserved (0 without CUDA)."""
    return int(_pool().total_bytes()) if backend.cuda_available() else 0


def empty_cache() -> None:
    """Give the allocator's unused cached blocks back to the driver."""
    if backend.cuda_available():
        _pool().free_all_blocks()


def manual_seed(seed: int) -> None:
    from darklib.random import manual_seed as _seed

    _seed(seed)
