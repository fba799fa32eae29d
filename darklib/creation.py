"""Tensor creation: tensor, from_numpy, zeros, ones, full, arange, rand, randn, ... ."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib import random as _random
from darklib.backend import CPU, as_device, device_of, get_xp, to_device, xp_for
from darklib.errors import InvalidType, InvalidValue
from darklib.tensor import Tensor


def _to_array(data: Any, dtype: Any, device: Any, float_default: bool = False) -> Any:
    """Turn data (nested lists, scalars, arrays, tensors) into an owned array."""
    if isinstance(data, Tensor):
        arr = data.array
    else:
        arr = data
    npd = None if dtype is None else _dt.to_numpy_dtype(dtype)
    dev = None if device is None else as_device(device)
    if not hasattr(arr, "__array_interface__") and not hasattr(arr, "__cuda_array_interface__"):
        if isinstance(arr, Sequence) and _contains_tensors(arr):
            arr = [_to_array(a, dtype, "cpu") for a in arr]
        arr = np.array(arr)
        if npd is None:
            npd = _default_dtype_for(arr, float_default)
        elif npd.kind in "iu" and arr.dtype.kind in "iuf" and arr.size:
            _check_fits(arr, npd)
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


def _check_fits(arr: np.ndarray, npd: np.dtype) -> None:
    """Python numbers going into an integer dtype must fit it (torch refuses to wrap)."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise RuntimeError(f"tensor: cannot convert NaN or infinity to integer type {npd.name}")
    info = np.iinfo(npd)
    lo, hi = arr.min(), arr.max()
    low = -info.max if npd.kind == "u" else info.min  # negative ints wrap into unsigned types
    if lo < low or hi > info.max:
        bad = lo if lo < low else hi
        raise RuntimeError(
            f"tensor: value cannot be converted to type {npd.name} without overflow: {bad}"
        )


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
    if kind in "iu":  # (darklib has no unsigned types above uint8: int64 holds them)
        if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise InvalidType(
                f"uint64 values up to {arr.max()} do not fit int64 (darklib has no uint64)"
            )
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
        return t.to(device=device, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype must be one darklib supports)."""
    if not isinstance(arr, np.ndarray):
        raise InvalidType(f"from_numpy: expected a numpy.ndarray, got {type(arr).__name__}")
    _dt.from_numpy_dtype(arr.dtype)
    return Tensor._wrap(arr)


def _shape(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], Sequence):
        size = tuple(size[0])
    out = []
    for s in size:
        n = int(s)
        if n < 0:
            raise RuntimeError(f"negative dimension {n} in size {tuple(size)}")
        out.append(n)
    return tuple(out)


def _make(
    fill: Any, size: tuple, dtype: Any, device: Any, requires_grad: bool, default: Any = None
) -> Tensor:
    dev = CPU if device is None else as_device(device)
    xp = xp_for(dev)
    if dtype is not None:
        npd = _dt.to_numpy_dtype(dtype)
    else:
        npd = _dt.default_float() if default is None else np.dtype(default)
    shape = _shape(size)
    if dev.type == "cuda":
        with xp.cuda.Device(dev.index):
            arr = fill(xp, shape, npd)
    else:  # (values beyond the dtype's range become inf without NumPy's warning, as torch)
        arr = _dt.silent(fill, xp, shape, npd)
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


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
    default = {bool: np.bool_, int: np.int64}.get(type(fill_value))
    return _make(
        lambda xp, s, d: xp.full(s, _dt.fill_value(fill_value, d, "full"), d),
        (tuple(size),),
        dtype,
        device,
        requires_grad,
        default,
    )


def _like(fn: Any, t: Tensor, dtype: Any, device: Any, requires_grad: bool, *args: Any) -> Tensor:
    return fn(
        *args,
        t.shape,
        dtype=t.dtype if dtype is None else dtype,
        device=t.device if device is None else device,
        requires_grad=requires_grad,
    )


def zeros_like(
    t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(
    t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(
    t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return _like(empty, t, dtype, device, requires_grad)


def full_like(
    t: Tensor,
    fill_value: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    return full(
        t.shape,
        fill_value,
        dtype=t.dtype if dtype is None else dtype,
        device=t.device if device is None else device,
        requires_grad=requires_grad,
    )


def rand_like(
    t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return _like(rand, t, dtype, device, requires_grad)


def randn_like(
    t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return _like(randn, t, dtype, device, requires_grad)


def _check_direction(start: Any, end: Any, step: Any) -> None:
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError(
            f"arange: upper bound and lower bound inconsistent with step sign (start={start}, "
            f"end={end}, step={step})"
        )


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from start (inclusive) to end (exclusive); int64 unless any bound is a float."""
    if end is None:
        start, end = 0, start
    start, end, step = (
        v.item() if isinstance(v, Tensor | np.generic) else v for v in (start, end, step)
    )
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
            return (lo + st * xp.arange(max(n, 0), dtype=np.int64)).astype(d)
        n = max(0, math.ceil((end - start) / step))
        # start + i * step rounded once, as torch's fused multiply-add (in x86's 80-bit long
        # double where NumPy has it, else float64)
        wide = np.longdouble if xp is np else np.float64
        return (wide(start) + wide(step) * xp.arange(n, dtype=wide)).astype(d)

    return _make(
        fill,
        (0,),
        dtype,
        device,
        requires_grad,
        default,
    )


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
    steps = int(steps)
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")

    def fill(xp: Any, s: Any, d: np.dtype) -> Any:
        if d.kind == "f":  # ends beyond the dtype are refused, as torch
            _dt.fill_value(float(start), d, "linspace")
            _dt.fill_value(float(end), d, "linspace")
        i = xp.arange(steps, dtype=np.float64)
        step = (end - start) / (steps - 1) if steps > 1 else 0.0
        up, down = start + step * i, end - step * (steps - 1 - i)
        if steps == 1:  # torch's single value is start
            return up.astype(d)
        return xp.where(i < steps // 2, up, down).astype(d)

    return _make(fill, (0,), dtype, device, requires_grad)


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    return _make(
        lambda xp, s, d: xp.eye(n, n if m is None else m, dtype=d),
        (0,),
        dtype,
        device,
        requires_grad,
    )


def manual_seed(seed: int) -> _random.Generator:
    """Seed darklib's default random generators (CPU and every CUDA device)."""
    return _random.manual_seed(seed)


def _random_tensor(
    kind: str, size: tuple, dtype: Any, device: Any, requires_grad: bool, generator: Any, **kw: Any
) -> Tensor:
    gen = _random.default_generator if generator is None else generator

    def fill(xp, s, d):
        if kind in ("rand", "randn") and d.kind != "f":  # torch has no such fill either
            raise RuntimeError(f"{kind}: not implemented for dtype {d.name}; use a float dtype")
        return gen.sample(kind, xp, s, d, **kw)

    default = np.int64 if kind in ("randint", "randperm") else None
    return _make(fill, size, dtype, device, requires_grad, default)


def rand(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _random_tensor("rand", size, dtype, device, requires_grad, generator)


def randn(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples."""
    return _random_tensor("randn", size, dtype, device, requires_grad, generator)


def randint(
    low: int,
    high: int | None = None,
    size: Sequence[int] = (),
    *,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Integers in [low, high) (``randint(high, size)`` starts at 0)."""
    if isinstance(high, tuple | list):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    return _random_tensor(
        "randint", (tuple(size),), dtype, device, False, generator, low=low, high=high
    )


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    return _random_tensor("randperm", ((int(n),),), dtype, device, False, generator)


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
    u = rand(*input.shape, generator=generator, dtype=input.dtype, device=input.device).array
    prob = input.array if p is None else p
    return Tensor._wrap((u < prob).astype(input.array.dtype))


def multinomial(
    input: Tensor, num_samples: int, replacement: bool = False, *, generator: Any = None
) -> Tensor:
    """Indices drawn from the categorical distribution(s) of the rows of ``input``
    (non-negative weights, 1-D or 2-D), with or without replacement (int64)."""
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
    gen = _random.default_generator if generator is None else generator
    p = rows / total
    if replacement:  # inverse CDF, on the tensor's device
        u = gen.sample("rand", xp, (p.shape[0], num_samples), np.dtype(np.float64))
        out = (u[:, :, None] > xp.cumsum(p, axis=1)[:, None, :]).sum(axis=2)
        out = xp.minimum(out, n - 1)
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
    return _make(
        lambda xp, s, d: xp.logspace(start, end, int(steps), base=base).astype(d),
        (0,),
        dtype,
        device,
        requires_grad,
    )


def _tri_indices(row: int, col: int, offset: int, dtype: Any, device: Any, upper: bool) -> Tensor:
    fn = np.triu_indices if upper else np.tril_indices
    idx = np.stack(fn(int(row), int(offset), int(col))).astype(np.int64).reshape(2, -1)
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
