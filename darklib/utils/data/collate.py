"""Collation: a list of samples becomes one batch of darklib Tensors.

Numbers become 1-D tensors (ints int64, floats float64, bools bool, a mix as torch.tensor
types it, as in PyTorch), numpy arrays and Tensors are stacked along a new first dimension
(mixed dtypes promoted as torch.stack promotes them; every dtype kept, uint16, uint32 and
uint64 included; Tensors that require grad stacked with the differentiable
:func:`darklib.stack`, so that the batch keeps their graph, as torch's), and tuples, lists
and dicts are collated field by field, keeping their structure (tuples come back as lists,
as in PyTorch).
A batch of strings (or bytes) is returned as it is given: the list of samples at the top, a
tuple of one field of the samples inside a tuple or list, as PyTorch's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.errors import InvalidType
from darklib.tensor import Tensor

_NUMERIC_KINDS = "biuf"
_UNSUPPORTED = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
)


class _EmptyBatch(ValueError, IndexError):
    """An empty batch: a ValueError, and the IndexError torch's collate raises."""


def _where(path: str) -> str:
    return f" at {path}" if path else ""


def _stack(arrays: list, path: str) -> Tensor:
    _check_stackable(arrays, path)
    xp = get_xp(arrays[0])
    dtype = _common_dtype([a.dtype for a in arrays])  # torch's promotion, not NumPy's
    return Tensor._wrap(xp.stack([a.astype(dtype, copy=False) for a in arrays]))


def _check_stackable(arrays: list, path: str) -> None:
    first = arrays[0]
    for i, a in enumerate(arrays):
        if a.shape != first.shape:
            raise RuntimeError(
                f"default_collate: stack expects each tensor to be equal size, but got "
                f"{list(first.shape)} at entry 0 and {list(a.shape)} at entry {i}"
                f"{_where(path)}; samples must have the same shape: pass a collate_fn for "
                f"ragged data (e.g. darklib.vision.datasets.detection_collate for boxes)"
            )
        if a.dtype.kind not in _NUMERIC_KINDS:  # (torch's message: strings, objects, ...)
            raise TypeError(f"{_UNSUPPORTED}{a.dtype}{_where(path)}")


def _stack_tensors(batch: list, path: str) -> Tensor:
    """Tensors stacked as torch's default_collate stacks them (``torch.stack``): with the
    differentiable stack when one of them requires grad (and grad mode is on), so that the
    batch stays in their graph; as a plain copy of the arrays otherwise."""
    from darklib import stack
    from darklib.grad_mode import is_grad_enabled

    arrays = [b.array for b in batch]
    if not (is_grad_enabled() and any(b.requires_grad for b in batch)):
        return _stack(arrays, path)
    _check_stackable(arrays, path)
    dtype = _common_dtype([a.dtype for a in arrays])
    return stack([b if b.array.dtype == dtype else b.to(dtype) for b in batch], 0)


def _as_array(x: Any) -> Any:
    """One entry of a batch led by an ndarray as an array, as torch.as_tensor makes it: a
    Tensor's own array, a list or a number as torch.tensor types it (Python floats float32)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, Tensor):
        from darklib.backend import to_numpy

        return to_numpy(x.array)  # (stacked with the numpy arrays, on the host)
    a = np.asarray(x)
    if a.dtype == np.float64 and not isinstance(x, np.generic):
        a = a.astype(np.float32)
    return a


def _common_dtype(dtypes: list) -> np.dtype:
    """The dtype torch.stack gives: the highest kind (bool < integer < float) decides,
    so int64 with float32 is float32 (NumPy would say float64)."""

    def rank(d: np.dtype) -> int:
        return "biuf".index(d.kind) if d.kind != "u" else 1

    top = max(rank(d) for d in dtypes)
    return np.result_type(*[d for d in dtypes if rank(d) == top])


def _python_numbers(batch: list) -> np.ndarray:
    """A batch of numbers led by a Python int or bool, typed as torch.tensor(batch) types
    it: Python floats count as float32, ints as int64, NumPy scalars as their own dtype,
    and the highest kind wins (so [1, np.float32(2.5)] is float32, not int64)."""

    def own(b: Any) -> np.dtype:
        if isinstance(b, np.generic):
            return b.dtype
        if isinstance(b, bool):
            return np.dtype(np.bool_)
        return np.dtype(np.int64 if isinstance(b, int) else np.float32)

    return np.asarray(batch, dtype=_common_dtype([own(b) for b in batch]))


def _check_numbers(batch: list, path: str) -> None:
    """A batch led by a number must hold numbers only (torch: "invalid data type")."""
    for i, b in enumerate(batch):
        if not (
            isinstance(b, int | float)
            or (isinstance(b, np.generic) and b.dtype.kind in _NUMERIC_KINDS)
        ):
            raise InvalidType(
                f"default_collate: invalid data type {type(b).__name__!r} at entry {i} of a "
                f"batch of numbers (entry 0 is {type(batch[0]).__name__}){_where(path)}"
            )


def _collate(batch: list, path: str) -> Any:
    elem = batch[0]
    if isinstance(elem, Tensor):
        for i, b in enumerate(batch):
            if not isinstance(b, Tensor):
                raise TypeError(
                    f"default_collate: expected Tensor as element {i}, but got "
                    f"{type(b).__module__}.{type(b).__name__}{_where(path)}"
                )
        return _stack_tensors(batch, path)
    if isinstance(elem, np.ndarray):
        return _stack([_as_array(b) for b in batch], path)
    if isinstance(elem, int | float) or (
        isinstance(elem, np.generic) and elem.dtype.kind in _NUMERIC_KINDS
    ):
        _check_numbers(batch, path)
    if isinstance(elem, np.generic) and elem.dtype.kind in _NUMERIC_KINDS:
        # numpy scalars keep their dtype (np.int32 -> int32), promoted together as
        # torch.as_tensor does: np.int32 with np.float64 is float64, and a Python float
        # among them counts as float32, an int as int64
        dtypes = [
            b.dtype if isinstance(b, np.generic) else _python_numbers([b]).dtype for b in batch
        ]
        return Tensor._wrap(np.asarray(batch, dtype=_common_dtype(dtypes)))
    if isinstance(elem, int):  # (bools too)
        return Tensor._wrap(_python_numbers(batch))
    if isinstance(elem, float):
        return Tensor._wrap(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, str | bytes):
        return batch  # the container given (a list, or a tuple of one field), as torch
    if isinstance(elem, Mapping):
        try:
            fields = {k: _collate([d[k] for d in batch], f"{path}[{k!r}]") for k in elem}
        except KeyError as e:
            raise KeyError(
                f"default_collate: key {e} is missing from some samples{_where(path)}"
            ) from None
        return _same_mapping(elem, fields)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(_collate(s, f"{path}.{f}") for f, s in zip(elem._fields, zip(*batch))))
    if isinstance(elem, Sequence):
        n = len(elem)
        for i, s in enumerate(batch):
            if len(s) != n:
                raise RuntimeError(
                    f"default_collate: each element in list of batch should be of equal size, "
                    f"got lengths {n} at entry 0 and {len(s)} at entry {i}{_where(path)}"
                )
        fields = [_collate(s, f"{path}[{j}]") for j, s in enumerate(zip(*batch))]
        if isinstance(elem, tuple):
            return fields  # tuples come back as lists, as torch's
        try:  # a list (or list-like) comes back in its own type
            if isinstance(elem, MutableSequence):
                out = copy.copy(elem)
                for j, f in enumerate(fields):
                    out[j] = f
                return out
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(f"{_UNSUPPORTED}{type(elem).__name__}{_where(path)}")


def _same_mapping(like: Mapping, fields: dict) -> Mapping:
    """``fields`` in a mapping of ``like``'s type (a copy of it, for types such as
    defaultdict whose constructor takes more than the items), else a dict."""
    try:
        return type(like)(fields)
    except TypeError:
        if isinstance(like, MutableMapping):
            out = copy.copy(like)
            out.clear()
            out.update(fields)
            return out
        return fields


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch (see the module docstring for the rules).

    Example::

        >>> default_collate([(np.zeros((3, 2, 2), np.float32), 1), (np.ones((3, 2, 2),
        ...                  np.float32), 0)])
        [tensor of shape (2, 3, 2, 2), tensor([1, 0])]
    """
    if len(batch) == 0:
        raise _EmptyBatch("default_collate: the batch is empty")
    return _collate(batch if isinstance(batch, list | tuple) else list(batch), "")


def default_convert(data: Any) -> Any:
    """Convert numpy arrays inside a sample to Tensors without batching (batch_size=None).

    Containers keep their structure as in :func:`default_collate`: tuples become lists, other
    sequences (but strings and bytes) keep their type where they can, else become lists.
    """
    if isinstance(data, np.ndarray | np.generic) and data.dtype.kind in _NUMERIC_KINDS:
        return Tensor._wrap(np.asarray(data))
    if isinstance(data, Mapping):
        return _same_mapping(data, {k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        items = [default_convert(d) for d in data]
        if isinstance(data, MutableSequence):
            out = copy.copy(data)
            for j, item in enumerate(items):
                out[j] = item
            return out
        try:  # a sequence of another type (a range, ...) as torch: its own type, else a list
            return type(data)(items)
        except TypeError:
            return items
    return data
