"""DLPack: tensors shared with other array libraries without a copy (torch, NumPy, CuPy,
JAX), as ``torch.utils.dlpack``. ``dl.from_dlpack(t)`` views another library's tensor;
darklib's tensors implement ``__dlpack__``, so ``torch.from_dlpack(x)`` and
``numpy.from_dlpack(x)`` view them. Both sides then share memory: a write on one shows on
the other."""

from __future__ import annotations

from typing import Any

import numpy as np

from darklib.errors import InvalidType
from darklib.tensor import Tensor

_CPU, _CUDA, _CUDA_MANAGED = 1, 2, 13  # DLPack device types (managed: CuPy's unified memory)


def from_dlpack(ext_tensor: Any) -> Tensor:
    """A darklib tensor on the memory of ``ext_tensor``, any object with ``__dlpack__``
    (a torch tensor, a NumPy or CuPy array...), on the CPU or a CUDA device."""
    if not hasattr(ext_tensor, "__dlpack__"):
        raise InvalidType(
            "from_dlpack: expected an object with __dlpack__ (a tensor or array of another "
            f"library; pass it rather than a capsule), got {type(ext_tensor).__name__}"
        )
    kind = ext_tensor.__dlpack_device__()[0]
    if kind == _CPU:
        return Tensor._wrap(np.from_dlpack(ext_tensor))
    if kind in (_CUDA, _CUDA_MANAGED):
        from darklib import backend

        cp = backend.xp_for(backend.device("cuda"))
        return Tensor._wrap(cp.from_dlpack(ext_tensor))
    raise InvalidType(f"from_dlpack: DLPack device type {kind} is neither the CPU nor CUDA")


def to_dlpack(tensor: Tensor) -> Any:
    """A DLPack capsule of ``tensor``'s memory (for libraries that take capsules)."""
    return tensor.__dlpack__()


def _dlpack(self: Tensor, **kwargs: Any) -> Any:
    if self.requires_grad:
        raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
    return self.array.__dlpack__(**kwargs)


Tensor.__dlpack__ = _dlpack
Tensor.__dlpack_device__ = lambda self: self.array.__dlpack_device__()

__all__ = ["from_dlpack", "to_dlpack"]
