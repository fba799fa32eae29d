"""PyTorch's type promotion for ops that mix dtypes, tensors and Python scalars.

NumPy would turn float32 + int64 into float64 and int / int into float64; PyTorch keeps
the float operand's dtype and uses the default float dtype (float32 unless
``set_default_dtype`` changed it) for integer true division. Rule (as PyTorch's):
dimensioned tensors decide, unless a 0-d tensor or Python scalar is of a higher category
(bool < integer < float), in which case that category's dtype is used (the default float
dtype for a Python float).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.backend import get_xp
from darklib.errors import InvalidType
from darklib.tensor import Tensor

_I64 = np.dtype(np.int64)


def _category(dt: np.dtype) -> int:
    return 2 if dt.kind == "f" else (0 if dt.kind == "b" else 1)


def _scalar_category(x: Any) -> int:
    if isinstance(x, bool | np.bool_):
        return 0
    if isinstance(x, int | np.integer):
        return 1
    return 2


def _combine(dtypes: list[np.dtype]) -> np.dtype | None:
    if not dtypes:
        return None
    top = max(_category(d) for d in dtypes)
    return np.result_type(*[d for d in dtypes if _category(d) == top])


def result_dtype(*operands: Any) -> np.dtype:
    """The dtype PyTorch gives an elementwise op over these operands."""
    dims, zeros, scalar_cat = [], [], -1
    for x in operands:
        if isinstance(x, Tensor):
            (dims if x.array.ndim else zeros).append(x.array.dtype)
        elif x is not None:
            scalar_cat = max(scalar_cat, _scalar_category(x))
    res = _combine(dims)
    z = _combine(zeros)
    if res is None:
        res = z
    elif z is not None and _category(z) > _category(res):
        res = z
    if res is None:
        if scalar_cat == 2:
            return _dt.default_float()
        return _I64 if scalar_cat == 1 else np.dtype(np.bool_)
    if scalar_cat > _category(res):
        res = _dt.default_float() if scalar_cat == 2 else _I64
    return res


def promote(a: Any, b: Any, *, floating: bool = False) -> tuple[Any, Any]:
    """Cast tensor operands (differentiably) to their common dtype; wrap ndarray operands.

    ``floating`` forces a float result (true division, pow with a float exponent).
    """
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.array.dtype == b.array.dtype and (not floating or a.array.dtype.kind == "f"):
            return a, b
    elif isinstance(a, Tensor) and type(b) in (float, int) and a.array.dtype.kind == "f":
        return a, b
    if not isinstance(a, Tensor):
        a = _lift(a, b)
    if not isinstance(b, Tensor):
        b = _lift(b, a)
    dt = result_dtype(a, b)
    if floating and dt.kind != "f":
        dt = _dt.default_float()
    return _cast(a, dt), _cast(b, dt)


def _lift(x: Any, other: Any) -> Any:
    """Numbers stay Python scalars (NumPy scalars too: they promote like Python's, as in
    torch); arrays become tensors on the other operand's device; anything else (lists and
    tuples, as torch refuses them; None, strings, complex numbers) is refused."""
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        return x.item()
    if isinstance(x, bool | int | float) and not isinstance(x, np.generic):
        return x
    if isinstance(x, list | tuple):
        raise InvalidType(
            f"unsupported operand of type {type(x).__name__} ({x!r:.40}): expected a tensor or "
            f"a real number (make a tensor of the {type(x).__name__} with dl.tensor(...))"
        )
    arr = None
    if not isinstance(x, str | bytes | complex | np.generic) and x is not None:
        xp = get_xp(other.array) if isinstance(other, Tensor) else np
        try:
            arr = xp.asarray(x)
        except (TypeError, ValueError):
            arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        raise InvalidType(
            f"unsupported operand of type {type(x).__name__} ({x!r:.40}): expected a tensor, "
            "a real number, or an array of real numbers"
        )
    return Tensor._wrap(arr)


def _cast(x: Any, dt: np.dtype) -> Any:
    if isinstance(x, Tensor):
        return x if x.array.dtype == dt else x.to(dt)
    if type(x) is int and dt.kind in "iu" and dt != _I64:
        # PyTorch wraps a Python int into a narrower integer dtype (uint8 - 3 == 253 + ...)
        return np.asarray(x).astype(dt)[()]
    return x


def same_dtype(op: str, names: str, *tensors: Any) -> None:
    """Products (matmul, linear, conv, einsum) take operands of one dtype, as in torch: no
    promotion, so that float64 data fed to a float32 model is an error, not a silent
    float64 run. ``names`` names the operands (space-separated) for the message; None
    operands (an absent bias) are skipped. A few comparisons: this runs on every product."""
    first = None
    for t in tensors:
        if t is not None:
            if first is None:
                first = t.array.dtype
            elif t.array.dtype != first:
                _mixed_dtypes(op, names.split(), tensors)


def _mixed_dtypes(op: str, names: list, tensors: tuple) -> None:
    named = [(n, t) for n, t in zip(names, tensors) if t is not None]
    a, ta = named[0]
    b, tb = next(p for p in named if p[1].array.dtype != ta.array.dtype)
    raise RuntimeError(
        f"{op}: {a} is {ta.array.dtype.name} but {b} is {tb.array.dtype.name}; they must "
        "have the same dtype (convert one with .to(dtype), .float() or .double(), or a "
        "model with model.double())"
    )
