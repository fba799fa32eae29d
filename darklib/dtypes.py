"""darklib's dtypes: thin named wrappers over NumPy dtypes with PyTorch's names."""

from __future__ import annotations

import builtins as _builtins
import math
from typing import Any

import numpy as np

from darklib.backend import FP_SILENT, fp_errors
from darklib.errors import InvalidType

_py_float, _py_int, _py_bool = _builtins.float, _builtins.int, _builtins.bool
builtins_min = _builtins.min


class dtype:
    """A tensor element type (``dl.float32``...): ``is_floating_point``, ``is_signed``
    (False for bool and the unsigned types, as torch's), ``is_complex`` (always False:
    darklib has no complex types) and ``itemsize`` (bytes)."""

    __slots__ = ("is_complex", "is_floating_point", "is_signed", "itemsize", "name", "np")

    def __init__(self, name: str, np_dtype: Any):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_signed = self.np.kind in "fi"
        self.is_complex = False
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
# torch's "limited support" unsigned types: creation, conversion, copies, indexing, ==/!=;
# they promote with no other integer type (see promote_types)
uint16 = dtype("uint16", np.uint16)
uint32 = dtype("uint32", np.uint32)
uint64 = dtype("uint64", np.uint64)

_ALL = (float16, float32, float64, int8, uint8, int16, int32, int64, bool, uint16, uint32, uint64)
_LIMITED = frozenset(np.dtype(t) for t in ("uint16", "uint32", "uint64"))
# torch's scalar type names, which its promotion and index_put messages use
TORCH_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "int8": "Char",
    "uint8": "Byte",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "bool": "Bool",
    "uint16": "UInt16",
    "uint32": "UInt32",
    "uint64": "UInt64",
}
_BY_NP = {d.np: d for d in _ALL}
_BY_NAME = {d.name: d for d in _ALL}


def from_numpy_dtype(np_dtype: Any) -> dtype:
    d = np.dtype(np_dtype)
    try:
        return _BY_NP[d]
    except KeyError:
        raise InvalidType(
            f"unsupported dtype {d}: darklib supports " + ", ".join(x.name for x in _ALL)
        ) from None


def to_numpy_dtype(d: Any) -> np.dtype:
    """Accept a darklib dtype, a NumPy dtype/type, or a name such as 'float32'."""
    if isinstance(d, dtype):
        return d.np
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d].np
    if d is _py_float:  # as torch: Python's float is a double
        return np.dtype(np.float64)
    if d is _py_int:
        return np.dtype(np.int64)
    if d is _py_bool:
        return np.dtype(np.bool_)
    try:
        npd = np.dtype(d)
    except TypeError:
        raise InvalidType(f"unsupported dtype {d!r}") from None
    return from_numpy_dtype(npd).np


_default_float = float32  # see set_default_dtype


def get_default_dtype() -> dtype:
    """The dtype of new floating-point tensors: float32 unless :func:`set_default_dtype`
    changed it."""
    return _default_float


def set_default_dtype(d: Any) -> None:
    """Make ``d`` (float16, float32 or float64) the dtype of new floating-point tensors,
    as ``torch.set_default_dtype``: tensors from Python floats, the float creation
    functions (zeros, randn, arange over floats...), and so the parameters of layers built
    afterwards; also the result of int-by-float ops and integer true division."""
    global _default_float
    npd = to_numpy_dtype(d)
    if npd.kind != "f":
        raise InvalidType(
            f"set_default_dtype: only floating-point types can be the default, got {d!r}"
        )
    _default_float = from_numpy_dtype(npd)


def default_float() -> np.dtype:
    """The NumPy dtype of :func:`get_default_dtype`."""
    return _default_float.np


class finfo:
    """Machine limits of a floating-point dtype (the default one when omitted), as
    ``torch.finfo``: ``bits``, and as Python floats ``eps``, ``max``, ``min``, ``tiny`` (=
    ``smallest_normal``) and ``resolution`` (10 ** -decimal digits); ``dtype`` is its name."""

    def __init__(self, type: Any = None) -> None:
        npd = to_numpy_dtype(_default_float if type is None else type)
        if npd.kind != "f":
            raise InvalidType(f"finfo: expected a floating-point dtype, got {npd.name}")
        info = np.finfo(npd)
        self.bits = _py_int(info.bits)
        self.eps, self.max, self.min = (_py_float(v) for v in (info.eps, info.max, info.min))
        self.tiny = self.smallest_normal = _py_float(info.tiny)
        self.resolution = 10.0 ** -_py_int(info.precision)
        self.dtype = npd.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, finfo) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
            f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
            f"tiny={self.tiny:g}, dtype={self.dtype})"
        )


def iinfo(type: Any) -> np.iinfo:
    """Machine limits of an integer dtype (``max``, ``min``, ``bits``)."""
    return np.iinfo(to_numpy_dtype(type))


def check_limited_promotion(a: np.dtype, b: np.dtype) -> None:
    """torch promotes uint16/uint32/uint64 only with themselves and with float types."""
    if a != b and (a in _LIMITED or b in _LIMITED) and a.kind != "f" and b.kind != "f":
        raise InvalidType(
            "Promotion for uint16, uint32, uint64 types is not supported, attempted to "
            f"promote {TORCH_NAMES[a.name]} and {TORCH_NAMES[b.name]}"
        )


def promote_types(type1: Any, type2: Any) -> dtype:
    """The smallest dtype both promote to (PyTorch's rules for two tensors' dtypes)."""
    a, b = to_numpy_dtype(type1), to_numpy_dtype(type2)
    check_limited_promotion(a, b)
    cat = {"b": 0, "u": 1, "i": 1, "f": 2}
    if cat[a.kind] != cat[b.kind]:
        return from_numpy_dtype(a if cat[a.kind] > cat[b.kind] else b)
    return from_numpy_dtype(np.promote_types(a, b))


def can_cast(from_: Any, to: Any) -> _py_bool:
    """Whether torch's casting rules allow a ``from_`` value into ``to`` in an op (as
    ``torch.can_cast``): no float into an integer or bool type, no integer into bool."""
    for name, d in (("from_", from_), ("to", to)):
        if not isinstance(d, dtype) and d not in (_py_float, _py_int, _py_bool):
            pos = 1 if name == "from_" else 2
            raise InvalidType(
                f"can_cast(): argument '{name}' (position {pos}) must be darklib.dtype, not "
                f"{type(d).__name__}"
            )
    a, b = to_numpy_dtype(from_), to_numpy_dtype(to)
    if a.kind == "f":
        return b.kind == "f"
    if a.kind in "iu":
        return b.kind != "b"
    return True


def silent(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with NumPy's floating-point warnings off, for conversions
    outside an op (ops are silent already, see Function.apply): a number or array beyond
    the target type's range becomes +-inf, which torch does without a warning."""
    token = fp_errors.set(FP_SILENT)
    try:
        return fn(*args, **kwargs)
    finally:
        fp_errors.reset(token)


def check_uniform_bounds(op: str, low: float, high: float, np_dtype: Any) -> None:
    """torch's checks of a uniform fill's range: both ends within the dtype, and their
    distance too (else every sample would be inf)."""
    npd = np.dtype(np_dtype)
    top = _py_float(np.finfo(npd).max)
    for name, v in (("from", low), ("to", high)):
        if math.isnan(v) or (math.isfinite(v) and abs(v) > top):
            raise RuntimeError(f"{op}: {name}={v} is out of bounds for {npd.name}")
    if high - low > top:
        raise RuntimeError(
            f"{op}: expects to - from <= the largest {npd.name} ({top:g}), but found "
            f"to={high} and from={low}"
        )


def number(value: Any) -> Any:
    """A NumPy scalar (np.float32(1.5), np.int64(2), np.bool_(True)) as the Python number of
    its kind; anything else unchanged. torch takes NumPy scalars as "wrapped numbers": they
    promote as Python scalars do (a float32 tensor times np.float64(2) stays float32) and
    pass the same float/int/bool checks, which ``isinstance(v, float)`` alone would miss
    for np.float32 and NumPy's arithmetic (its scalars keep their dtype) would get wrong."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    return value


def scalar_array(xp: Any, value: Any, np_dtype: Any) -> Any:
    """A number as a 0-d array of ``np_dtype`` on ``xp``'s device (an op's operand)."""
    return silent(xp.asarray, value, dtype=np_dtype)


def fill_value(value: Any, np_dtype: Any, op: str, to_inf: bool = False) -> Any:
    """A number (Python or NumPy scalar) as a scalar of ``np_dtype`` for filling, by
    torch's rules: floats into integers truncate; negative ints into unsigned types wrap;
    NaN, infinity or out-of-range values into integers, finite values beyond a float type's
    range (unless ``to_inf`` and a half-precision type: they are rounded, to +-inf beyond
    it, as torch's item assignment and ``where`` do; a float32 target still refuses 1e40),
    and non-numbers, are refused."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if not isinstance(value, _py_bool | _py_int | _py_float):
        raise InvalidType(f"{op}: expected a real number, got {type(value).__name__} {value!r:.40}")
    npd = np.dtype(np_dtype)
    if npd.kind in "iu" and not isinstance(value, _py_bool):
        info = np.iinfo(npd)
        if isinstance(value, _py_float):
            if not math.isfinite(value):
                raise RuntimeError(f"{op}: cannot convert {value} to integer type {npd.name}")
            # torch (c10's overflows()): the float itself must lie within the type's range,
            # before truncation: -0.5 or 255.5 do not fit uint8, -1.0 does not wrap
            if not _py_float(info.min) <= value <= _py_float(info.max):
                raise RuntimeError(
                    f"{op}: value cannot be converted to type {npd.name} without overflow: {value}"
                )
            value = builtins_min(_py_int(value), _py_int(info.max))
        elif npd.kind == "u" and -info.max <= value < 0:  # torch wraps -255..-1 into uint8
            value += _py_int(info.max) + 1
        if not info.min <= value <= info.max:
            raise RuntimeError(
                f"{op}: value cannot be converted to type {npd.name} without overflow: {value}"
            )
    elif npd.kind == "f" and math.isfinite(value) and abs(value) > _py_float(np.finfo(npd).max):
        if not to_inf or npd.itemsize >= 4:  # (torch: a float32 target refuses 1e40 even so)
            raise RuntimeError(
                f"{op}: value cannot be converted to type {npd.name} without overflow: {value}"
            )
        return silent(np.asarray, value, dtype=npd)[()]  # rounded: to max, or beyond to inf
    return np.asarray(value, dtype=npd)[()]
