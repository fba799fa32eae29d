"""Parameter: a Tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from darklib.dtypes import get_default_dtype
from darklib.errors import InvalidType
from darklib.tensor import Tensor


class NotATensor(InvalidType, AttributeError):
    """Data that is not a Tensor for a Parameter or a Buffer: torch's AttributeError (its
    constructor calls ``data.detach()``), and a TypeError (and RuntimeError), as darklib's
    type errors."""


def _tensor_data(data: Any, what: str) -> Any:
    if not isinstance(data, Tensor):
        raise NotATensor(
            f"{what}: expected a Tensor as data, got {type(data).__name__} (as torch, lists "
            "and arrays are refused: wrap them with darklib.tensor)"
        )
    return data.array


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning one to a Module attribute registers it.

    Args:
        data: the initial value, a Tensor whose array is shared, not copied (as in
            PyTorch; other values, lists and arrays included, are refused).
        requires_grad: whether the parameter requires gradient. Default: ``True``.

    Example::

        >>> w = nn.Parameter(dl.zeros(3))
        >>> w.requires_grad
        True
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True):
        if data is None:
            arr = np.empty((0,), dtype=get_default_dtype().np)
        else:
            arr = _tensor_data(data, "Parameter")
        self.array = arr
        self._requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._version = 0
        self._hooks = None
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        # the values and the flag only, as torch's Parameter: a copied model starts gradient-free
        out = Parameter(Tensor._wrap(self.array.copy()), self.requires_grad)
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """Marks a tensor assigned to a Module attribute as a buffer (PyTorch's ``nn.Buffer``).

    Args:
        data: the value (its array is shared).
        persistent: whether the buffer is part of the module's ``state_dict``.
    """

    __slots__ = ("persistent",)

    def __init__(self, data: Any, *, persistent: bool = True):
        self.array = _tensor_data(data, "Buffer")
        self._requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._version = 0
        self._hooks = None
        self.persistent = persistent
