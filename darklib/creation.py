"""Tensor creation: tensor, from_numpy, zeros, ones, full, arange, rand, randn, ... ."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib import random as _random
from darklib.backend import (
    CPU,
    as_device,
    device_of,
    get_default_device,
    get_xp,
    is_cuda_array,
    on_device_of,
    to_device,
    xp_for,
)
from darklib.errors import InvalidType, InvalidValue, OutOfMemory
from darklib.tensor import Tensor


def _to_array(data: Any, dtype: Any, device: Any, float_default: bool = False) -> Any:
    """Turn data (nested lists, scalars, arrays, tensors) into an owned array."""
    if isinstance(data, Tensor):
        arr = data.array
    else:
        arr = data
    npd = None if dtype is None else _dt.to_numpy_dtype(dtype)
    dev = None if device is None else as_device(device)
    if dev is None and not isinstance(data, Tensor) and get_default_device() != CPU:
        dev = get_default_device()  # (data, not a tensor: made on the default device)
    if not hasattr(arr, "__array_interface__") and not hasattr(arr, "__cuda_array_interface__"):
        elements = None if npd is not None else _element_dtype(arr)
        if isinstance(arr, Sequence) and _contains_tensors(arr):
            arr = [_to_array(a, dtype, "cpu") for a in arr]
        arr = _nested_array(arr, npd)
        if arr.dtype == np.uint64 and npd is None and arr.size:
            big = arr.max()  # (NumPy makes uint64 of Python ints beyond int64)
            if big > np.iinfo(np.int64).max and not _all_numpy_uint64(data):
                raise InvalidValue(
                    f"tensor(): Overflow: the integer {big} does not fit int64 (whose range "
                    "is [-2**63, 2**63 - 1]); pass dtype=dl.uint64 or floats for larger values"
                )
        if elements is not None and not (float_default and elements.kind != "f"):
            npd = elements
        elif npd is None:
            npd = _default_dtype_for(arr, float_default)
        elif npd.kind in "iu" and arr.dtype.kind in "iuf" and arr.size:
            arr = _check_fits(arr, npd, data)
    else:
        xp = get_xp(arr)
        arr = xp.array(arr, copy=True)
        if npd is None and (float_default or arr.dtype not in _dt._BY_NP):
            npd = _default_dtype_for(arr, float_default)
    if npd is not None and arr.dtype != npd:
        arr = _dt.silent(arr.astype, npd)
    _dt.from_numpy_dtype(arr.dtype)  # rejects unsupported dtypes (object, complex, str)
    if dev is not None and dev != device_of(arr):
        arr = to_device(arr, dev)
    return arr


_NUMBER = (bool, int, float, np.bool_, np.integer, np.floating)


def _is_seq(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return x.ndim > 0
    return isinstance(x, Sequence) and not isinstance(x, str | bytes)


def _nested_array(data: Any, npd: np.dtype | None) -> np.ndarray:
    """``data`` (nested sequences of numbers) as an array, with torch's errors for ragged
    data, for values that are not numbers and for integers beyond int64."""
    try:
        arr = np.array(data)
    except (ValueError, TypeError, OverflowError) as e:
        arr, err = None, e
    if arr is not None and arr.dtype != object:
        return arr
    leaves = _scan_nested(data)  # raises on ragged data and on values that are not numbers
    floats = any(isinstance(v, float | np.floating) for v in leaves)
    if floats or (npd is not None and npd.kind == "f"):
        return np.array(data, dtype=np.float64)
    wide = npd is not None and npd == np.uint64  # (else int64 is the widest type)
    for v in leaves:
        if not -(2**63) <= int(v) < (2**64 if wide else 2**63):
            raise InvalidValue(
                f"tensor(): Overflow: the integer {v} does not fit "
                + (
                    "uint64 (whose range is [0, 2**64 - 1])"
                    if wide
                    else "int64 (whose range is "
                    "[-2**63, 2**63 - 1]); pass floats or dtype=dl.float64 for larger values"
                )
            )
    try:
        if wide and any(int(v) < 0 for v in leaves):  # negative ints wrap, as torch's fill
            data = [int(v) % 2**64 for v in leaves]
            return np.array(data, dtype=np.uint64).reshape(
                np.shape(arr) if arr is not None else (len(leaves),)
            )
        return np.array(data, dtype=np.uint64 if wide else np.int64)
    except (ValueError, TypeError, OverflowError):
        raise InvalidValue(
            f"tensor(): cannot make a tensor from data of type {type(data).__name__}: "
            f"{err if arr is None else 'values that are not numbers'}"
        ) from None


def _scan_nested(data: Any) -> list:
    """The numbers of nested sequences whose lengths agree (the first element of each level
    gives the shape, as torch's); a ragged level or a value that is no number is refused."""
    shape = []
    d = data
    while _is_seq(d):
        shape.append(len(d))
        if not len(d):
            break
        d = d[0]
    leaves: list = []
    stack = [(data, 0, ())]
    while stack:
        x, k, index = stack.pop()
        where = f" at index {list(index)}" if index else ""
        if k == len(shape):
            if _is_seq(x):
                raise InvalidType(
                    f"tensor(): expected a number{where}, got a {type(x).__name__} (the data's "
                    f"first elements give it the shape {shape})"
                )
            if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
                x = x.item()
            if not isinstance(x, _NUMBER):
                raise InvalidType(f"tensor(): Could not infer dtype of {type(x).__name__}{where}")
            leaves.append(x)
            continue
        if not _is_seq(x):
            raise InvalidType(
                f"tensor(): expected a sequence of length {shape[k]} at dim {k}{where}, got "
                f"{type(x).__name__} (the data's first elements give it the shape {shape})"
            )
        if len(x) != shape[k]:
            raise InvalidValue(
                f"tensor(): expected sequence of length {shape[k]} at dim {k} (got {len(x)})"
                f"{where}: the data is ragged"
            )
        stack.extend((e, k + 1, (*index, i)) for i, e in reversed(list(enumerate(x))))
    return leaves


def _all_numpy_uint64(data: Any) -> bool:
    """Whether nested data holds NumPy uint64 scalars (which keep their dtype, as torch)."""
    try:
        return all(isinstance(v, np.uint64) for v in _scan_nested(data))
    except (TypeError, ValueError):
        return False


def _check_fits(arr: np.ndarray, npd: np.dtype, data: Any = None) -> np.ndarray:
    """Python numbers going into an integer dtype must fit it (torch refuses to wrap):
    negative ints wrap into unsigned types (-1 -> 255), negative floats do not (torch's
    c10 overflow rule). Returns the array to convert (ints wrapped where needed)."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise RuntimeError(f"tensor: cannot convert NaN or infinity to integer type {npd.name}")
    info = np.iinfo(npd)
    lo, hi = arr.min(), arr.max()
    low = -int(info.max) if npd.kind == "u" else int(info.min)
    if arr.dtype.kind == "f" and npd.kind == "u" and lo < 0 and data is not None:
        # mixed data ([-1, 2.5]): only the Python ints among the negatives may wrap
        for v in _scan_nested(data):
            if isinstance(v, float | np.floating) and v < 0:
                raise RuntimeError(
                    f"tensor: value cannot be converted to type {npd.name} without overflow: {v}"
                )
        arr = np.where(arr < 0, arr + (float(info.max) + 1), arr)
        lo = arr.min()
    if lo < low or hi > info.max:
        bad = lo if lo < low else hi
        raise RuntimeError(
            f"tensor: value cannot be converted to type {npd.name} without overflow: {bad}"
        )
    if arr.dtype.kind in "iu" and npd.kind == "u" and lo < 0:  # wrap explicitly (NumPy 2
        # refuses out-of-range Python ints, and casts of negative ints are well defined)
        arr = arr.astype(np.int64).astype(npd)
    return arr


_PY_NUMBERS = {bool: np.dtype(np.bool_), int: np.dtype(np.int64), float: None}


def _element_dtype(data: Any) -> np.dtype | None:
    """torch's dtype for a sequence whose numbers include NumPy scalars or arrays or tensors
    (``tensor([np.float64(0.1), 2])`` is float64): the promotion (torch's, for two tensors) of
    the elements' dtypes, a Python float counting as the default float dtype, an int as
    int64. None when every element is a Python number (the usual case, decided from each
    innermost list's set of types, so that long lists of floats stay fast)."""
    if not isinstance(data, list | tuple):
        return None
    py: set = set()
    special: list = []
    stack = [data]
    while stack:
        seq = stack.pop()
        types = set(map(type, seq))
        py |= types & _PY_NUMBERS.keys()
        if types <= _PY_NUMBERS.keys():
            continue
        for v in seq:
            if isinstance(v, Tensor):
                special.append(v.array.dtype)
            elif isinstance(v, np.generic | np.ndarray):
                special.append(v.dtype)
            elif isinstance(v, list | tuple):
                stack.append(v)
            elif type(v) not in _PY_NUMBERS:
                return None  # something else: left to the general conversion and its errors
    if not special or any(d.kind not in "biuf" for d in special):
        return None
    dts = special + [_PY_NUMBERS[t] or _dt.default_float() for t in py]
    out = dts[0]
    for d in dts[1:]:
        out = _dt.promote_types(out, d).np
    return out


def _contains_tensors(seq: Sequence) -> bool:
    return any(
        isinstance(a, Tensor)
        or (isinstance(a, Sequence) and not isinstance(a, str) and _contains_tensors(a))
        for a in seq
    )


def _default_dtype_for(arr: np.ndarray, float_default: bool) -> np.dtype:
    kind = arr.dtype.kind
    if kind == "f" or (float_default and kind in "iub"):
        return _dt.default_float()
    if kind in "iu":  # (arrays of a supported integer dtype keep it, above)
        if arr.dtype in _dt._BY_NP:
            return arr.dtype
        return np.dtype(np.int64)
    if kind == "b":
        return np.dtype(np.bool_)
    raise InvalidType(
        f"cannot make a tensor from data of NumPy dtype {arr.dtype}: expected numbers or bools"
    )


def tensor(
    data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A new tensor copying ``data``: floats become float32, ints int64, bools bool.

    NumPy arrays keep their dtype (as in PyTorch). Example::

        >>> dl.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    """
    t = Tensor._wrap(_to_array(data, dtype, device))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like :func:`tensor`, but shares memory with a tensor or ndarray where it can."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray) and data.dtype in _dt._BY_NP:
        t = Tensor._wrap(data)
        return t.to(device=get_default_device() if device is None else device, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def asarray(
    obj: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    copy: bool | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``obj`` as a tensor, as ``torch.asarray``: a tensor is returned itself, and a NumPy or
    CuPy array (anything with the array interface) is shared, when the dtype and device
    fit and ``copy`` is not True; otherwise a converted copy (a tensor's keeps its graph).
    ``copy=True`` always copies, ``copy=False`` refuses (ValueError) where sharing is
    impossible; sequences and numbers are always new tensors (dtypes as :func:`tensor`).
    ``requires_grad=True`` sets the flag on the result (a tensor returned itself included,
    as torch)."""
    npd = None if dtype is None else _dt.to_numpy_dtype(dtype)
    dev = None if device is None else as_device(device)
    if isinstance(obj, Tensor):
        out = obj
        arr = obj.array
    elif (
        hasattr(obj, "__array_interface__")
        or hasattr(obj, "__cuda_array_interface__")
        or hasattr(obj, "__array__")
    ) and not isinstance(obj, str | bytes):
        if is_cuda_array(obj):
            arr = obj
        elif hasattr(obj, "__cuda_array_interface__"):  # another library's GPU array
            arr = xp_for(as_device("cuda")).asarray(obj)  # (CuPy shares its memory)
        else:
            arr = np.asarray(obj)
        if arr.dtype not in _dt._BY_NP:
            raise InvalidType(
                f"asarray(): can't convert an array of dtype {arr.dtype}; the supported "
                f"dtypes are {', '.join(str(d) for d in _dt._BY_NP)}"
            )
        out = Tensor._wrap(arr)
    else:
        if copy is False:
            raise InvalidValue(
                "asarray(): can't alias arbitrary sequence into a tensor (copy=False)"
            )
        out = tensor(obj, dtype=dtype, device=device)
        if requires_grad:
            out.requires_grad_(True)
        return out
    convert = (npd is not None and npd != arr.dtype) or (dev is not None and dev != out.device)
    if convert:
        if copy is False:
            raise InvalidValue(
                f"asarray(): can't alias a {out.dtype} array on {out.device} into "
                f"{_dt.from_numpy_dtype(npd) if npd is not None else out.dtype} on "
                f"{dev or out.device} (copy=False)"
            )
        out = out.to(device=dev, dtype=dtype)
    elif copy:
        out = out.clone() if isinstance(obj, Tensor) else Tensor._wrap(arr.copy())
    if requires_grad:
        out.requires_grad_(True)
    return out


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype must be one darklib supports)."""
    if not isinstance(arr, np.ndarray):
        raise InvalidType(f"from_numpy: expected a numpy.ndarray, got {type(arr).__name__}")
    _dt.from_numpy_dtype(arr.dtype)
    return Tensor._wrap(arr)


def _describe(v: Any) -> str:
    text = repr(v)
    return type(v).__name__ if len(text) > 40 else f"{type(v).__name__} ({text})"


def _size_int(v: Any) -> int | None:
    """``v`` as an int when it is one (a Python or NumPy integer, a 0-d integer tensor or
    array), else None; bools are not sizes."""
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        return int(v)
    arr = v.array if isinstance(v, Tensor) else v
    if isinstance(arr, np.ndarray) or hasattr(arr, "__cuda_array_interface__"):
        if arr.ndim == 0 and arr.dtype.kind in "iu":
            return int(arr.item())
    return None


def _int_arg(v: Any, op: str, name: str, minimum: int | None = 0) -> int:
    """An int argument (a count such as eye's ``n``): integers only, at least ``minimum``."""
    n = _size_int(v)
    if n is None:
        raise InvalidType(f"{op}(): argument '{name}' must be int, not {_describe(v)}")
    if minimum is not None and n < minimum:
        raise InvalidValue(f"{op}(): {name} must be greater or equal to {minimum}, got {n}")
    return n


def _shape(size: tuple, op: str = "tensor") -> tuple[int, ...]:
    """The sizes of a creation call: ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or
    ``f(dl.Size(...))``; each an integer (a Python or NumPy int, a 0-d integer tensor),
    none negative, as torch's."""
    if len(size) == 1 and isinstance(size[0], Sequence) and not isinstance(size[0], str):
        size = tuple(size[0])
    elif len(size) == 1 and _size_int(size[0]) is None:
        raise InvalidType(
            f"{op}(): argument 'size' must be a tuple of ints, not {_describe(size[0])}"
        )
    out = []
    for i, s in enumerate(size):
        n = _size_int(s)
        if n is None:
            raise InvalidType(
                f"{op}(): argument 'size' must be a tuple of ints, but got {_describe(s)} at "
                f"position {i}"
            )
        out.append(n)
    shape = tuple(out)
    bad = [n for n in shape if n < 0]
    if bad:
        raise InvalidValue(
            f"{op}(): Dimension size must be non-negative, got negative dimension {bad[0]} in "
            f"size {shape}"
        )
    return shape


def _memory_limit(xp: Any) -> int | None:
    """The bytes of memory of the device of ``xp`` (None where unknown)."""
    try:
        if xp is np:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(xp.cuda.Device().mem_info[1])
    except Exception:  # (no sysconf on Windows; a CUDA query that fails): no limit known
        return None


def check_alloc(shape: tuple, dtype: np.dtype, op: str, xp: Any = np) -> None:
    """Refuse, before allocating, a tensor larger than the device's memory (NumPy would
    fail with a message about its own intermediate arrays, or overflow)."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes < 2**30:
        return
    limit = _memory_limit(xp)
    if nbytes >= 2**63 or (limit is not None and nbytes > limit):
        where = "" if limit is None else f", more than the {limit} bytes of memory of the device"
        raise OutOfMemory(
            f"{op}(): a tensor of size {list(shape)} and dtype {np.dtype(dtype).name} would "
            f"take {nbytes} bytes{where}; the size is too large"
        )


def _make(
    fill: Any,
    size: tuple | None,
    dtype: Any,
    device: Any,
    requires_grad: bool,
    default: Any = None,
    op: str = "tensor",
) -> Tensor:
    """A tensor of ``size`` (a creation call's sizes, parsed by :func:`_shape`; ``None`` for
    the ops whose ``fill`` makes its own shape and checks it with :func:`check_alloc`)."""
    dev = get_default_device() if device is None else as_device(device)
    xp = xp_for(dev)
    if dtype is not None:
        npd = _dt.to_numpy_dtype(dtype)
    else:
        npd = _dt.default_float() if default is None else np.dtype(default)
    shape = (0,) if size is None else _shape(size, op)
    try:
        if dev.type == "cuda":
            with xp.cuda.Device(dev.index):  # (the memory checked is this GPU's)
                check_alloc(shape, npd, op, xp)
                arr = fill(xp, shape, npd)
        else:  # (values beyond the dtype's range become inf without NumPy's warning, as torch)
            check_alloc(shape, npd, op, xp)
            arr = _dt.silent(fill, xp, shape, npd)
    except MemoryError as e:
        if isinstance(e, OutOfMemory):
            raise
        raise OutOfMemory(
            f"{op}(): not enough memory on {dev} for a tensor of dtype {npd.name}"
            + ("" if size is None else f" and size {list(shape)}")
        ) from None
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _sizes(args: tuple, size: Any, op: str) -> tuple:
    """A creation call's sizes, given as positional arguments (``zeros(2, 3)``,
    ``zeros((2, 3))``) or, as torch also takes them, by keyword (``zeros(size=(2, 3))``)."""
    if size is None:
        return args
    if args:
        raise InvalidType(f"{op}() got multiple values for argument 'size'")
    return (size,)


def zeros(
    *sizes: Any,
    size: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    size = _sizes(sizes, size, "zeros")
    return _make(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad, op="zeros")


def ones(
    *sizes: Any,
    size: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    size = _sizes(sizes, size, "ones")
    return _make(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad, op="ones")


def empty(
    *sizes: Any,
    size: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    size = _sizes(sizes, size, "empty")
    out = _make(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad, op="empty")
    if memory_format is None:
        return out
    from darklib.tensor import check_memory_format, preserve_format

    if check_memory_format(memory_format, "empty", out.ndim) is preserve_format:
        raise RuntimeError("empty(): preserve_format is not a layout a new tensor can take")
    return _lay_out(out, out, memory_format, "empty")


def full(
    size: Sequence[int],
    fill_value: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (a number or a one-element tensor);
    its dtype, unless given, follows the value: bool, int64 or float32."""
    if isinstance(fill_value, Tensor):
        if fill_value.numel() != 1:
            raise RuntimeError(
                f"full: fill_value must have one element, got shape {fill_value.shape}"
            )
        fill_value = fill_value.item()
    if isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    if not isinstance(size, Sequence) or isinstance(size, str):
        raise InvalidType(f"full(): argument 'size' must be a tuple of ints, not {_describe(size)}")
    default = {bool: np.bool_, int: np.int64}.get(type(fill_value))
    return _make(
        lambda xp, s, d: xp.full(s, _dt.fill_value(fill_value, d, "full"), d),
        (tuple(size),),
        dtype,
        device,
        requires_grad,
        default,
        op="full",
    )


def _check_input(t: Any, op: str) -> None:
    if not isinstance(t, Tensor):
        raise InvalidType(
            f"{op}(): argument 'input' (position 1) must be Tensor, not {type(t).__name__}"
        )


def _dense_order(arr: Any) -> tuple[int, ...] | None:
    """The dims of ``arr`` from outermost to innermost stride when its elements fill a
    block of memory without gaps or overlaps (torch's non-overlapping and dense), else
    None."""
    steps = [s // arr.itemsize for s in arr.strides]
    order = sorted(range(arr.ndim), key=lambda d: (-abs(steps[d]), -d))
    expected = 1
    for d in reversed(order):
        if arr.shape[d] != 1 and steps[d] != expected:
            return None
        expected *= arr.shape[d]
    return tuple(order)


def _lay_out(t: Tensor, out: Tensor, memory_format: Any, op: str) -> Tensor:
    """``out`` (C-contiguous, ``t``'s shape) laid out by ``memory_format`` as torch's
    ``*_like`` functions: preserve_format (the default) keeps ``t``'s strides when ``t``
    is dense and non-overlapping (a transposed tensor gives a transposed result), else
    row-major; contiguous_format row-major; channels_last NHWC."""
    from darklib.tensor import (
        channels_last,
        channels_last_3d,
        check_memory_format,
        contiguous_format,
        laid_out,
    )

    fmt = check_memory_format(memory_format, op, t.ndim)
    arr = out.array
    if fmt is contiguous_format or arr.ndim < 2 or arr.size == 0:
        return out
    if fmt is channels_last or fmt is channels_last_3d:
        new = laid_out(arr, fmt)
    else:
        order = _dense_order(t.array)
        if order is None or order == tuple(range(arr.ndim)):
            return out
        inv = tuple(int(i) for i in np.argsort(order))
        new = get_xp(arr).ascontiguousarray(arr.transpose(order)).transpose(inv)
    res = Tensor._wrap(new)
    if out.requires_grad:
        res.requires_grad_(True)
    return res


def _like(
    fn: Any,
    t: Tensor,
    dtype: Any,
    device: Any,
    requires_grad: bool,
    *args: Any,
    memory_format: Any = None,
    **kw: Any,
) -> Tensor:
    op = f"{fn.__name__}_like"
    _check_input(t, op)
    out = fn(
        *args,
        t.shape,
        dtype=t.dtype if dtype is None else dtype,
        device=t.device if device is None else device,
        requires_grad=requires_grad,
        **kw,
    )
    return _lay_out(t, out, memory_format, op)


def zeros_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    return _like(zeros, t, dtype, device, requires_grad, memory_format=memory_format)


def ones_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    return _like(ones, t, dtype, device, requires_grad, memory_format=memory_format)


def empty_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    """An uninitialised tensor like ``t`` (zeros here), laid out by ``memory_format``
    (default preserve_format: ``t``'s strides when ``t`` is dense; see :func:`_lay_out`)."""
    return _like(empty, t, dtype, device, requires_grad, memory_format=memory_format)


def full_like(
    t: Tensor,
    fill_value: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    _check_input(t, "full_like")
    out = full(
        t.shape,
        fill_value,
        dtype=t.dtype if dtype is None else dtype,
        device=t.device if device is None else device,
        requires_grad=requires_grad,
    )
    return _lay_out(t, out, memory_format, "full_like")


def rand_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    return _like(rand, t, dtype, device, requires_grad, memory_format=memory_format)


def randn_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    return _like(randn, t, dtype, device, requires_grad, memory_format=memory_format)


def randint_like(
    input: Tensor,
    low: Any = None,
    high: Any = None,
    *,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    memory_format: Any = None,
) -> Tensor:
    """Integers in [low, high) (``randint_like(t, high)`` draws from [0, high)) in a tensor
    of ``t``'s shape, dtype (float ones too) and device, as torch's: the bounds must fit
    the dtype (torch's random_ checks)."""
    _check_input(input, "randint_like")
    if high is None:
        if low is None:
            raise InvalidType("randint_like(): missing the upper bound 'high'")
        low, high = 0, low
    elif low is None:
        low = 0
    low = _int_arg(low, "randint_like", "low", minimum=None)
    high = _int_arg(high, "randint_like", "high", minimum=None)
    d = input.dtype if dtype is None else dtype
    _check_random_bounds(low, high, _dt.to_numpy_dtype(d))
    gen = _random.resolve(generator, "randint_like")
    dev = input.device if device is None else device
    out = _make(
        lambda xp, s, npd: gen.sample("randint", xp, s, npd, low=low, high=high),
        (tuple(input.shape),),
        d,
        dev,
        requires_grad,
        op="randint_like",
    )
    return _lay_out(input, out, memory_format, "randint_like")


_TORCH_C_NAMES = {
    "uint8": "unsigned char",
    "int8": "signed char",
    "int16": "short",
    "int32": "int",
    "int64": "long",
    "uint16": "unsigned short",
    "uint32": "unsigned int",
    "uint64": "unsigned long",
    "bool": "bool",
    "float16": "c10::Half",
    "float32": "float",
    "float64": "double",
}


def _check_random_bounds(low: int, high: int, npd: np.dtype) -> None:
    """torch's checks of an integer draw from [low, high) into ``npd`` (random_'s):
    low < high, and low and high - 1 within the dtype (for floats, within its finite
    range; float32 and float64 beyond 2**digits only warn in torch and pass here)."""
    if not low < high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    if npd.kind == "b":
        lo, hi = 0, 1
    elif npd.kind in "iu":
        info = np.iinfo(npd)
        lo, hi = int(info.min), int(info.max)
    else:
        top = float(np.finfo(npd).max)
        lo, hi = -top, top
    name = _TORCH_C_NAMES.get(npd.name, npd.name)
    if not lo <= low <= hi:
        raise RuntimeError(f"from is out of bounds for {name} (from={low}, dtype {npd.name})")
    if not lo <= high - 1 <= hi:
        raise RuntimeError(
            f"to - 1 is out of bounds for {name} (to={high}, dtype {npd.name} holds "
            f"[{lo:g}, {hi:g}])"
        )


def _check_direction(start: Any, end: Any, step: Any) -> None:
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError(
            f"arange: upper bound and lower bound inconsistent with step sign (start={start}, "
            f"end={end}, step={step})"
        )


def arange(
    start: Any = None,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from start (inclusive) to end (exclusive); int64 unless any bound is a float.
    ``arange(end)``, ``arange(start, end, step)``, or by keyword (``arange(end=3)``)."""
    if end is None:
        if start is None:
            raise InvalidType("arange() missing the required argument 'end'")
        start, end = 0, start
    elif start is None:
        start = 0
    start, end, step = (
        v.item() if isinstance(v, Tensor | np.generic) else v for v in (start, end, step)
    )
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidType(f"arange(): argument '{name}' must be a number, not {_describe(v)}")
        if not math.isfinite(v):
            raise InvalidValue(f"arange(): unsupported range: {start} -> {end} (step {step})")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    is_float = any(isinstance(v, float) for v in (start, end, step))
    default = None if is_float else np.int64

    _check_direction(start, end, step)

    def fill(xp: Any, s: Any, d: np.dtype) -> Any:
        if d.kind in "iu":
            # as torch: bounds and step truncated to integers first; int64 counts on them,
            # narrower integer dtypes count on the bounds as given (ceil((end - start) / step))
            lo, hi, st = (int(v) for v in (start, end, step))
            if d == np.int64:
                if st == 0:
                    raise InvalidValue(f"arange: step {step!r} is zero once cast to int64")
                n = (hi - lo + st - (1 if st > 0 else -1)) // st
            else:
                n = math.ceil((end - start) / step)
            check_alloc((max(n, 0),), d, "arange", xp)
            return (lo + st * xp.arange(max(n, 0), dtype=np.int64)).astype(d)
        n = max(0, math.ceil((end - start) / step))
        check_alloc((n,), d, "arange", xp)
        # start + i * step rounded once, as torch's fused multiply-add (in x86's 80-bit long
        # double where NumPy has it, else float64)
        wide = np.longdouble if xp is np else np.float64
        return (wide(start) + wide(step) * xp.arange(n, dtype=wide)).astype(d)

    return _make(fill, None, dtype, device, requires_grad, default, op="arange")


def linspace(
    start: float,
    end: float,
    steps: int,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, as torch computes them:
    the first half counted up from ``start``, the second half down from ``end`` (so both
    ends are exact, and an infinite end gives NaN, as torch's)."""
    steps = _int_arg(steps, "linspace", "steps")

    def fill(xp: Any, s: Any, d: np.dtype) -> Any:
        check_alloc((steps,), d, "linspace", xp)
        lo, hi = _range_ends((start, end), d, "linspace")
        i = xp.arange(steps, dtype=np.float64)
        step = (hi - lo) / (steps - 1) if steps > 1 else 0.0
        up, down = lo + step * i, hi - step * (steps - 1 - i)
        if steps == 1:  # torch's single value is start
            return up.astype(d)
        return xp.where(i < steps // 2, up, down).astype(d)

    return _make(fill, None, dtype, device, requires_grad, op="linspace")


def _range_ends(ends: tuple, d: np.dtype, op: str) -> tuple:
    """linspace/logspace's ``start`` and ``end`` for a result of dtype ``d``, as torch
    takes them: converted to an integer dtype first (truncated: linspace(0.5, 3.7, 5,
    dtype=int64) spans 0..3), ends beyond a float dtype refused."""
    out = []
    for v in ends:
        v = _dt.number(v.item() if isinstance(v, Tensor) else v)
        if d.kind in "iu":
            v = int(_dt.fill_value(v, d, op))
        elif d.kind == "f":
            _dt.fill_value(float(v), d, op)
        out.append(v)
    return tuple(out)


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    n = _int_arg(n, "eye", "n")
    m = n if m is None else _int_arg(m, "eye", "m")
    return _make(
        lambda xp, s, d: xp.eye(n, m, dtype=d), (n, m), dtype, device, requires_grad, op="eye"
    )


def manual_seed(seed: int) -> _random.Generator:
    """Seed darklib's default random generators (CPU and every CUDA device)."""
    return _random.manual_seed(seed)


def _random_tensor(
    kind: str, size: tuple, dtype: Any, device: Any, requires_grad: bool, generator: Any, **kw: Any
) -> Tensor:
    gen = _random.resolve(generator, kind)

    def fill(xp, s, d):
        if kind in ("rand", "randn") and d.kind != "f":  # torch has no such fill either
            raise RuntimeError(f"{kind}: not implemented for dtype {d.name}; use a float dtype")
        return gen.sample(kind, xp, s, d, **kw)

    default = np.int64 if kind in ("randint", "randperm") else None
    return _make(fill, size, dtype, device, requires_grad, default, op=kind)


def rand(
    *sizes: Any,
    size: Any = None,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples in [0, 1)."""
    size = _sizes(sizes, size, "rand")
    return _random_tensor("rand", size, dtype, device, requires_grad, generator)


def randn(
    *sizes: Any,
    size: Any = None,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples."""
    size = _sizes(sizes, size, "randn")
    return _random_tensor("randn", size, dtype, device, requires_grad, generator)


def randint(
    low: int | None = None,
    high: int | None = None,
    size: Sequence[int] | None = None,
    *,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Integers in [low, high): ``randint(low, high, size)`` or ``randint(high, size)``
    (from 0); ``size`` is required, as in torch."""
    if isinstance(high, Sequence) and size is None:  # randint(high, size)
        high, size = None, high
    if high is None:
        low, high = 0, low
    elif low is None:  # randint(high=..., size=...)
        low = 0
    if high is None:
        raise InvalidType("randint(): missing the upper bound 'high'")
    if size is None:
        raise InvalidType(
            "randint(): missing the 'size' argument (call randint(high, size) or "
            "randint(low, high, size))"
        )
    if not isinstance(size, Sequence) or isinstance(size, str):
        raise InvalidType(
            f"randint(): argument 'size' must be a tuple of ints, not {_describe(size)}"
        )
    low = _int_arg(low, "randint", "low", minimum=None)
    high = _int_arg(high, "randint", "high", minimum=None)
    if high <= low:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    if dtype is not None:  # torch's random_ checks: the bounds must fit the dtype
        _check_random_bounds(low, high, _dt.to_numpy_dtype(dtype))
    return _random_tensor(
        "randint", (tuple(size),), dtype, device, False, generator, low=low, high=high
    )


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    n = _int_arg(n, "randperm", "n")
    if dtype is not None:  # every value 0..n-1 must be exact in the dtype, as torch checks
        npd = _dt.to_numpy_dtype(dtype)
        if npd.kind == "b":
            raise NotImplementedError('"randperm" not implemented for bool')
        if npd.kind in "iu" and n - 1 > int(np.iinfo(npd).max):
            raise RuntimeError(
                f"randperm: value cannot be converted to type {npd.name} without overflow (n={n})"
            )
        if npd.kind == "f" and n > 2 ** (np.finfo(npd).nmant + 1) + 1:
            raise RuntimeError(
                f"randperm: n cannot be greater than {2 ** (np.finfo(npd).nmant + 1) + 1} "
                f"for {npd.name} type (got n={n})"
            )
    return _random_tensor("randperm", ((n,),), dtype, device, False, generator)


def normal(
    mean: Any,
    std: Any = 1.0,
    size: Sequence[int] | None = None,
    *,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Samples of N(mean, std**2): ``normal(0., 1., size=(2, 3))``, or elementwise with
    tensor ``mean`` and/or ``std`` (no gradient)."""
    mean, std = _dt.number(mean), _dt.number(std)
    if isinstance(std, Tensor):
        if not bool((std.array >= 0).all()):  # (one sync, as torch's check)
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif not std >= 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        m = mean.array if isinstance(mean, Tensor) else mean
        s = std.array if isinstance(std, Tensor) else std
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        z = randn(*shape, generator=generator, dtype=ref.dtype, device=ref.device).array
        return Tensor._wrap(_dt.silent(lambda: (z * s + m).astype(ref.array.dtype, copy=False)))
    if size is None:
        raise InvalidType("normal(): pass size=... when mean and std are numbers")
    z = randn(*tuple(size), generator=generator, dtype=dtype, device=device).array
    return Tensor._wrap(_dt.silent(lambda: (z * std + mean).astype(z.dtype, copy=False)))


def bernoulli(input: Tensor, p: float | None = None, *, generator: Any = None) -> Tensor:
    """0/1 samples, 1 with probability ``input`` (elementwise), or ``p`` where given."""
    check_probability("bernoulli", input if p is None else p)
    u = rand(*input.shape, generator=generator, dtype=input.dtype, device=input.device).array
    prob = input.array if p is None else p
    return Tensor._wrap((u < prob).astype(input.array.dtype))


def check_probability(op: str, p: Any) -> None:
    """Refuse a probability (a number or a tensor of them) outside [0, 1], or NaN, as torch."""
    p = _dt.number(p)
    if isinstance(p, Tensor):
        a = p.array
        if a.dtype.kind == "f" and not bool(((a >= 0) & (a <= 1)).all()):  # NaN fails too
            raise RuntimeError(f"{op}: expected all probabilities in [0, 1] (no NaN)")
    elif not 0 <= p <= 1:
        raise RuntimeError(f"{op} expects p to be in [0, 1], but got p={p}")


def multinomial(
    input: Tensor, num_samples: int, replacement: bool = False, *, generator: Any = None
) -> Tensor:
    """Indices drawn from the categorical distribution(s) of the rows of ``input``
    (non-negative weights, 1-D or 2-D), with or without replacement (int64)."""
    _check_input(input, "multinomial")
    num_samples = _int_arg(num_samples, "multinomial", "num_samples", minimum=None)
    if num_samples <= 0:
        raise InvalidValue(
            f"multinomial(): cannot sample n_sample <= 0 samples (got {num_samples})"
        )
    xp = get_xp(input.array)
    w = input.array.astype(np.float64)
    rows = w.reshape(1, -1) if w.ndim == 1 else w
    if w.ndim not in (1, 2):
        raise RuntimeError(
            f"multinomial(): expected a 1-D or 2-D tensor, got shape {list(input.shape)}"
        )
    n = rows.shape[1]
    if not replacement and num_samples > n:
        raise RuntimeError(
            f"multinomial(): cannot draw {num_samples} samples without replacement from "
            f"{n} categories"
        )
    total = _dt.silent(rows.sum, axis=1, keepdims=True)  # inf - inf: refused just below
    bad = ((rows < 0).any() | ~xp.isfinite(rows).all(), (total <= 0).any())
    flags = xp.stack(bad)
    invalid, empty = (flags.get() if xp is not np else flags).tolist()  # one GPU sync
    if invalid:
        raise RuntimeError(
            f"multinomial(): expected finite, non-negative weights, got shape {list(input.shape)}"
        )
    if empty:
        raise RuntimeError("multinomial(): every row needs a positive total weight")
    gen = _random.resolve(generator, "multinomial")
    p = rows / total
    if replacement:  # inverse CDF, on the tensor's device
        u = gen.sample("rand", xp, (p.shape[0], num_samples), np.dtype(np.float64))
        # the first category whose CDF reaches u, for all rows in one search: row r's CDF
        # (ending at exactly 1) and draws shifted by r keep the rows apart in one sorted array
        cdf = xp.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        shift = xp.arange(p.shape[0], dtype=np.float64)[:, None]
        at = xp.searchsorted((cdf + shift).reshape(-1), (u + shift).reshape(-1), side="left")
        out = at.reshape(u.shape) - xp.arange(p.shape[0])[:, None] * n
        out = xp.clip(out, 0, n - 1)
    else:  # Gumbel top-k: the k largest of log(p) + Gumbel noise, a draw without replacement
        u = gen.sample("rand", xp, p.shape, np.dtype(np.float64))
        with np.errstate(divide="ignore"):
            keys = xp.log(p) - xp.log(-xp.log(u))
        out = xp.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64).reshape(num_samples) if w.ndim == 1 else out.astype(np.int64)
    return Tensor._wrap(out)


def logspace(
    start: float,
    end: float,
    steps: int,
    base: float = 10.0,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    steps = _int_arg(steps, "logspace", "steps")
    base = _dt.number(base)

    def fill(xp: Any, s: Any, d: np.dtype) -> Any:
        lo, hi = _range_ends((start, end), d, "logspace")
        return _dt.silent(lambda: xp.logspace(lo, hi, steps, base=base).astype(d))

    return _make(
        fill,
        (steps,),
        dtype,
        device,
        requires_grad,
        op="logspace",
    )


def _tri_indices(row: int, col: int, offset: int, dtype: Any, device: Any, upper: bool) -> Tensor:
    op = "triu_indices" if upper else "tril_indices"
    row, col = _int_arg(row, op, "row"), _int_arg(col, op, "col")
    offset = _int_arg(offset, op, "offset", minimum=None)
    check_alloc((2, row * col), np.int64, op)
    fn = np.triu_indices if upper else np.tril_indices
    idx = np.stack(fn(row, offset, col)).astype(np.int64).reshape(2, -1)
    return tensor(idx, dtype=dtype or _dt.int64, device=device)


def tril_indices(
    row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None
) -> Tensor:
    """The (2, k) coordinates of the lower triangle of a ``row`` x ``col`` matrix."""
    return _tri_indices(row, col, offset, dtype, device, upper=False)


def triu_indices(
    row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None
) -> Tensor:
    """The (2, k) coordinates of the upper triangle of a ``row`` x ``col`` matrix."""
    return _tri_indices(row, col, offset, dtype, device, upper=True)


def clone(input: Tensor) -> Tensor:
    """A copy of ``input`` that stays in the graph (``input.clone()``)."""
    return input.clone()


def scalar_tensor(
    s: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A 0-d tensor holding the number ``s``, in the default float dtype unless ``dtype``
    is given (``scalar_tensor(3)`` is ``tensor(3.)``, as torch's)."""
    s = _dt.number(s.item() if isinstance(s, Tensor) else s)
    if not isinstance(s, bool | int | float):
        raise InvalidType(f"scalar_tensor(): argument 's' must be a number, not {_describe(s)}")
    npd = _dt.default_float() if dtype is None else _dt.to_numpy_dtype(dtype)
    value = _dt.fill_value(s, npd, "scalar_tensor")
    return _make(lambda xp, _s, d: xp.asarray(value, d), (), npd, device, requires_grad)


# ------------------------------------------------------------------ window functions


def _window(
    op: str, n: int, periodic: bool, dtype: Any, device: Any, requires_grad: bool, f: Any
) -> Tensor:
    """A window of ``n`` values ``f(x)`` over x = 0..N-1 in float64 (N = n + 1 when
    ``periodic``: the symmetric window one longer, its last value dropped, as torch), in
    ``dtype`` (a float dtype; the default float dtype unless given)."""
    n = _int_arg(n, op, "window_length", minimum=None)
    if n < 0:
        raise RuntimeError(f"{op} requires non-negative window_length, got window_length={n}")
    npd = _dt.default_float() if dtype is None else _dt.to_numpy_dtype(dtype)
    if npd.kind != "f":
        raise RuntimeError(f"{op} expects floating point dtypes, got {npd.name}")

    def fill(xp: Any, s: Any, d: np.dtype) -> Any:
        if n <= 1:
            return xp.ones(n, d)
        size = n + 1 if periodic else n
        x = np.arange(size, dtype=np.float64)
        return xp.asarray(f(x, size)[:n].astype(d))

    return _make(fill, (n,), npd, device, requires_grad, op=op)


def _cosine_sum(*coefs: float) -> Any:
    """``sum_k (-1)**k a_k cos(2 pi k x / (N - 1))``: the Hann, Hamming, Blackman family."""

    def f(x: Any, size: int) -> Any:
        phase = 2 * math.pi * x / (size - 1)
        return sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coefs))

    return f


def hann_window(
    window_length: int,
    periodic: bool = True,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Hann window ``0.5 - 0.5 cos(2 pi n / (N - 1))`` (periodic by default, for
    spectral analysis; ``periodic=False`` for the symmetric one, as torch)."""
    f = _cosine_sum(0.5, 0.5)
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad, f)


def hamming_window(
    window_length: int,
    periodic: bool = True,
    alpha: float = 0.54,
    beta: float = 0.46,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Hamming window ``alpha - beta cos(2 pi n / (N - 1))``."""
    f = _cosine_sum(float(alpha), float(beta))
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad, f)


def blackman_window(
    window_length: int,
    periodic: bool = True,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Blackman window ``0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))``."""
    f = _cosine_sum(0.42, 0.5, 0.08)
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad, f)


def bartlett_window(
    window_length: int,
    periodic: bool = True,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Bartlett (triangular) window ``1 - |2 n / (N - 1) - 1|``."""

    def f(x: Any, size: int) -> Any:
        return 1 - np.abs(2 * x / (size - 1) - 1)

    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad, f)


def kaiser_window(
    window_length: int,
    periodic: bool = True,
    beta: float = 12.0,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Kaiser window ``I0(beta sqrt(1 - ((n - a) / a)**2)) / I0(beta)``, a = (N - 1) / 2
    (I0 the modified Bessel function of order 0)."""
    beta = float(beta)

    def f(x: Any, size: int) -> Any:
        a = (size - 1) / 2
        return np.i0(beta * np.sqrt(np.maximum(0.0, 1 - ((x - a) / a) ** 2))) / np.i0(beta)

    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad, f)


# ------------------------------------------------------------------ legacy typed constructors


class _LegacyTensorType(type):
    """The type of torch's legacy constructors (``dl.FloatTensor``, ``dl.LongTensor``, ...):
    calling one makes a tensor of its dtype (``FloatTensor(2, 3)`` of that shape,
    ``FloatTensor([1, 2])`` from data, ``FloatTensor(t)`` an alias of a tensor ``t`` of that
    dtype), and ``isinstance(t, dl.FloatTensor)`` tells whether ``t`` is a CPU float32
    tensor. The tensors made are plain :class:`Tensor` objects, as torch's."""

    dtype: Any

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.array.dtype == cls.dtype.np and not obj.is_cuda

    def __call__(cls, *args: Any, device: Any = None) -> Tensor:  # type: ignore[override]
        name, npd = cls.__name__, cls.dtype.np
        if len(args) == 1 and isinstance(args[0], Tensor):
            t = args[0]
            if t.array.dtype != npd:
                raise InvalidType(
                    f"{name}(): expected a tensor of dtype {cls.dtype}, got {t.dtype} (convert "
                    f"it with .to({cls.dtype}))"
                )
            return t.view_as(t)
        if len(args) == 1 and not isinstance(args[0], Sequence | np.ndarray):
            if isinstance(args[0], bool | float | np.bool_ | np.floating):
                raise InvalidType(
                    f"{name}(): data must be a sequence (got {type(args[0]).__name__}); use "
                    f"dl.tensor(value, dtype={cls.dtype}) for a 0-d tensor"
                )
        if not args:  # FloatTensor(): empty, as torch's
            return zeros(0, dtype=cls.dtype, device=device)
        data = args[0] if len(args) == 1 else None
        if data is not None and (
            isinstance(data, np.ndarray) or (isinstance(data, Sequence) and not _is_size(data))
        ):
            return tensor(data, dtype=cls.dtype, device=device)
        return zeros(*args, dtype=cls.dtype, device=device)


def _is_size(x: Any) -> bool:
    from darklib.tensor import Size

    return isinstance(x, Size)


def _legacy(name: str, d: Any) -> Any:
    return _LegacyTensorType(name, (), {"dtype": d, "__module__": "darklib"})


FloatTensor = _legacy("FloatTensor", _dt.float32)
DoubleTensor = _legacy("DoubleTensor", _dt.float64)
HalfTensor = _legacy("HalfTensor", _dt.float16)
LongTensor = _legacy("LongTensor", _dt.int64)
IntTensor = _legacy("IntTensor", _dt.int32)
ShortTensor = _legacy("ShortTensor", _dt.int16)
CharTensor = _legacy("CharTensor", _dt.int8)
ByteTensor = _legacy("ByteTensor", _dt.uint8)
BoolTensor = _legacy("BoolTensor", _dt.bool)


def poisson(input: Tensor, generator: Any = None) -> Tensor:
    """Poisson draws with the rates of ``input`` (floating point, non-negative), in its
    dtype, as ``torch.poisson``."""
    _check_input(input, "poisson")
    arr = input.array
    if arr.dtype.kind != "f":
        raise InvalidType(f"poisson(): expected floating-point rates, got {input.dtype}")
    xp = get_xp(arr)
    gen = _random.resolve(generator, "poisson")
    with on_device_of(arr):  # (the generator and kernels of the input's GPU, not the current)
        rates = arr.astype(np.float64)
        if not bool((rates >= 0).all()):  # (NaN too)
            raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
        return Tensor._wrap(gen.sample("poisson", xp, arr.shape, arr.dtype, params=[rates]))


_BINOMIAL_EXACT = 2.0**53  # counts above this use the normal approximation


def binomial(count: Tensor, prob: Tensor, generator: Any = None) -> Tensor:
    """Binomial draws: successes in ``count`` trials of probability ``prob`` (floating-point
    tensors, broadcast together), as ``torch.binomial``. As torch, counts below 0 draw 0,
    fractional counts round down and probabilities are clipped to [0, 1]; NaN (or an
    infinite count) gives NaN."""
    for name, t in (("count", count), ("prob", prob)):
        _check_input(t, "binomial")
        if t.array.dtype.kind != "f":
            raise InvalidValue(
                f"binomial only supports floating-point dtypes for {name}, got: "
                f"{_dt.from_numpy_dtype(t.array.dtype)}"
            )
    if count.device != prob.device:
        raise RuntimeError(
            "binomial(): expected all tensors to be on the same device, but found count on "
            f"{count.device} and prob on {prob.device}"
        )
    xp = get_xp(count.array)
    shape = np.broadcast_shapes(count.array.shape, prob.array.shape)
    gen = _random.resolve(generator, "binomial")
    dtype = np.result_type(count.array.dtype, prob.array.dtype)
    with on_device_of(count.array):
        n = xp.broadcast_to(count.array.astype(np.float64), shape)
        p = xp.broadcast_to(prob.array.astype(np.float64), shape)
        bad = xp.isnan(n) | xp.isnan(p) | (n == np.inf)  # (NaN there, as torch)
        n = xp.floor(xp.where(bad, 0.0, xp.maximum(n, 0.0)))
        chance = xp.clip(xp.where(bad, 0.0, p), 0.0, 1.0)
        # counts past exact integers draw from the normal approximation (whose relative
        # error there is below float64's resolution); the rest from the exact sampler
        huge = n > _BINOMIAL_EXACT
        trials = xp.where(huge, 0.0, n).astype(np.int64)
        out = gen.sample("binomial", xp, shape, np.float64, params=[trials, chance])
        if bool(huge.any()):
            z = gen.sample("randn", xp, shape, np.float64)
            mean = n * chance
            approx = xp.clip(xp.floor(mean + xp.sqrt(mean * (1 - chance)) * z + 0.5), 0, n)
            out = xp.where(huge, approx, out)
        return Tensor._wrap(xp.where(bad, np.nan, out).astype(dtype, copy=False))
