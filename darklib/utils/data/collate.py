"""Collation: a list of samples becomes one batch of darklib Tensors.

Numbers become 1-D tensors (ints int64, floats float64, bools bool, as in PyTorch), numpy
arrays and Tensors are stacked along a new first dimension, and tuples, lists and dicts are
collated field by field, keeping their structure (tuples come back as lists, as in PyTorch).
Strings are kept as lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.tensor import Tensor

_NUMERIC_KINDS = "biuf"


def _where(path: str) -> str:
    return f" at {path}" if path else ""


def _stack(arrays: list, path: str) -> Tensor:
    first = arrays[0]
    for i, a in enumerate(arrays):
        if a.shape != first.shape:
            raise RuntimeError(
                f"default_collate: stack expects each sample to have the same shape, but got "
                f"{list(first.shape)} at entry 0 and {list(a.shape)} at entry {i}"
                f"{_where(path)}; pass a collate_fn for ragged data (e.g. "
                f"darklib.vision.datasets.detection_collate for boxes)"
            )
        if a.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(
                f"default_collate: arrays of dtype {a.dtype} cannot become tensors{_where(path)}"
            )
    xp = get_xp(first)
    return Tensor._wrap(xp.stack(arrays))


def _collate(batch: list, path: str) -> Any:
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack([b.array for b in batch], path)
    if isinstance(elem, np.ndarray):
        return _stack(batch, path)
    if isinstance(elem, np.generic) and elem.dtype.kind in _NUMERIC_KINDS:
        # numpy scalars keep their dtype (np.int32 -> int32), as torch.as_tensor does
        return Tensor._wrap(np.asarray(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return Tensor._wrap(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor._wrap(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor._wrap(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, str | bytes):
        return list(batch)
    if isinstance(elem, Mapping):
        try:
            return type(elem)({k: _collate([d[k] for d in batch], f"{path}[{k!r}]") for k in elem})
        except KeyError as e:
            raise KeyError(
                f"default_collate: key {e} is missing from some samples{_where(path)}"
            ) from None
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(
            *(_collate(list(s), f"{path}.{f}") for f, s in zip(elem._fields, zip(*batch)))
        )
    if isinstance(elem, Sequence):
        n = len(elem)
        for i, s in enumerate(batch):
            if len(s) != n:
                raise RuntimeError(
                    f"default_collate: each element in list of batch should be of equal size, "
                    f"got lengths {n} at entry 0 and {len(s)} at entry {i}{_where(path)}"
                )
        return [_collate(list(s), f"{path}[{j}]") for j, s in enumerate(zip(*batch))]
    raise TypeError(
        f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}{_where(path)}"
    )


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch (see the module docstring for the rules).

    Example::

        >>> default_collate([(np.zeros((3, 2, 2), np.float32), 1), (np.ones((3, 2, 2),
        ...                  np.float32), 0)])
        [tensor of shape (2, 3, 2, 2), tensor([1, 0])]
    """
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    return _collate(list(batch), "")


def default_convert(data: Any) -> Any:
    """Convert numpy arrays inside a sample to Tensors without batching (batch_size=None)."""
    if isinstance(data, np.ndarray) and data.dtype.kind in _NUMERIC_KINDS:
        return Tensor._wrap(data)
    if isinstance(data, Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
