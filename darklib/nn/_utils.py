"""Small helpers shared by the layer files: argument normalisation and shape errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from darklib.creation import empty
from darklib.errors import InvalidType, InvalidValue
from darklib.nn.parameter import Parameter
from darklib.tensor import Tensor


def _ntuple(value: Any, n: int, name: str, owner: str) -> tuple[int, ...]:
    """``3 -> (3, 3)``; a sequence must have length ``n``; all must be ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    try:
        out = tuple(value)
    except TypeError:
        raise InvalidValue(
            f"{owner}: {name} must be an int or a tuple of {n} ints, got {value!r}"
        ) from None
    if len(out) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
        raise InvalidValue(f"{owner}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


def _pair(value: Any, name: str, owner: str) -> tuple[int, int]:
    return _ntuple(value, 2, name, owner)  # type: ignore[return-value]


def new_param(shape: tuple[int, ...], device: Any, dtype: Any) -> Parameter:
    """An uninitialised float parameter (float32 unless ``dtype``) on ``device``."""
    return Parameter(empty(*shape, device=device, dtype=dtype))


def check_tensor(layer: Any, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{layer!r}: expected a Tensor input, got {type(x).__name__}")
    return x


def shape_str(x: Tensor) -> str:
    return str(tuple(int(n) for n in x.shape))


def positive_int(value: Any, name: str, owner: str, allow_zero: bool = False) -> int:
    """``value`` as a Python int (NumPy integers too), refused unless positive (or 0)."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a positive"
        raise InvalidValue(f"{owner}: {name} must be {kind} int, got {value!r}")
    return int(value)


def check_reduction(reduction: str, owner: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise InvalidValue(
            f"{owner}: {reduction!r} is not a valid value for reduction; use 'mean', 'sum' or "
            "'none'"
        )
    return reduction
