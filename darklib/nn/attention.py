"""``dl.nn.attention``, as ``torch.nn.attention``: ``sdpa_kernel`` and ``SDPBackend``, the
choice among attention kernels (see :mod:`darklib.ops.attention`: darklib has one)."""

from darklib.ops.attention import SDPBackend, sdpa_kernel

__all__ = ["SDPBackend", "sdpa_kernel"]
