"""darklib's dtypes: thin named wrappers over NumPy dtypes with PyTorch's names."""

from __future__ import annotations

import builtins as _builtins
from typing import Any

import numpy as np

_py_float, _py_int, _py_bool = _builtins.float, _builtins.int, _builtins.bool


class dtype:
    __slots__ = ("is_floating_point", "itemsize", "name", "np")

    def __init__(self, name: str, np_dtype: Any):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"darklib.{self.name}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dtype):
            return self.np == other.np
        return False

    def __hash__(self) -> int:
        return hash(self.np)


float16 = half = dtype("float16", np.float16)
float32 = float = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
int8 = dtype("int8", np.int8)
uint8 = dtype("uint8", np.uint8)
int16 = short = dtype("int16", np.int16)
int32 = int = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
bool = dtype("bool", np.bool_)

_ALL = (float16, float32, float64, int8, uint8, int16, int32, int64, bool)
_BY_NP = {d.np: d for d in _ALL}
_BY_NAME = {d.name: d for d in _ALL}


def from_numpy_dtype(np_dtype: Any) -> dtype:
    d = np.dtype(np_dtype)
    try:
        return _BY_NP[d]
    except KeyError:
        raise TypeError(
            f"unsupported dtype {d}: darklib supports " + ", ".join(x.name for x in _ALL)
        ) from None


def to_numpy_dtype(d: Any) -> np.dtype:
    """Accept a darklib dtype, a NumPy dtype/type, or a name such as 'float32'."""
    if isinstance(d, dtype):
        return d.np
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d].np
    if d is _py_float:
        return np.dtype(np.float32)
    if d is _py_int:
        return np.dtype(np.int64)
    if d is _py_bool:
        return np.dtype(np.bool_)
    try:
        npd = np.dtype(d)
    except TypeError:
        raise TypeError(f"unsupported dtype {d!r}") from None
    return from_numpy_dtype(npd).np
