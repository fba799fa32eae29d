"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable, plus their combinators."""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from darklib.tensor import Tensor

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: ``dataset[i]`` returns sample ``i``, ``len(dataset)`` counts them.

    Subclasses implement ``__getitem__`` and (for samplers) ``__len__``. ``a + b`` concatenates.
    """

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset that is a stream: subclasses implement ``__iter__``.

    With ``num_workers > 0`` the DataLoader reads the stream in one background thread, so the
    batches are the ones ``num_workers=0`` gives (no sharding is needed, and
    :func:`get_worker_info` returns ``None`` inside ``__iter__``).
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


def _length(t: Any) -> int:
    return int(t.shape[0]) if hasattr(t, "shape") else len(t)


class TensorDataset(Dataset):
    """Samples are rows of the given tensors (or ndarrays): ``dataset[i] = (t[i] for t)``.

    Args:
        *tensors: tensors or numpy arrays with the same first dimension.
    """

    def __init__(self, *tensors: Any):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        sizes = [_length(t) for t in tensors]
        if any(s != sizes[0] for s in sizes):
            shapes = [tuple(getattr(t, "shape", (len(t),))) for t in tensors]
            raise ValueError(
                f"TensorDataset: size mismatch between tensors: first dimensions differ, "
                f"shapes {shapes}"
            )
        self.tensors = tensors
        self._arrays = [t.array if isinstance(t, Tensor) else t for t in tensors]
        self._wrap = [isinstance(t, Tensor) for t in tensors]

    def __getitem__(self, index: int) -> tuple:
        return tuple(
            Tensor._wrap(a[index]) if w else a[index] for a, w in zip(self._arrays, self._wrap)
        )

    def __len__(self) -> int:
        return _length(self.tensors[0])


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the full dataset.
        indices: the indices to keep.
    """

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: int | list[int]) -> Any:
        if isinstance(idx, list):  # the list of mapped indices goes to the dataset, as torch
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        """A batch of samples: the dataset's own ``__getitems__`` when it has one (given the
        mapped indices), else one sample at a time."""
        mapped = [self.indices[i] for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return getitems(mapped)
        return [self.dataset[i] for i in mapped]

    def __len__(self) -> int:
        return len(self.indices)


class StackDataset(Dataset):
    """Several datasets of the same length read side by side: sample ``i`` is a tuple
    ``(d[i] for d in args)`` or a dict ``{name: d[i] for name, d in kwargs}``.

    Args:
        *args: datasets whose samples are returned as a tuple.
        **kwargs: datasets whose samples are returned as a dict (not with ``args``).

    Example::

        >>> ds = StackDataset(image=images, label=labels)
        >>> ds[0] == {"image": images[0], "label": labels[0]}
    """

    def __init__(self, *args: Any, **kwargs: Any):
        if args and kwargs:
            raise ValueError(
                "Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                "input/output, but both types are given."
            )
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        parts = list(args) if args else list(kwargs.values())
        self._length = len(parts[0])
        if any(len(d) != self._length for d in parts):
            raise ValueError("Size mismatch between datasets")
        self.datasets: tuple | dict = args if args else kwargs

    def __getitem__(self, index: int) -> tuple | dict:
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices: list) -> list:
        """A batch of samples; a dataset with its own ``__getitems__`` reads them at once."""
        named = self.datasets.items() if isinstance(self.datasets, dict) else None
        parts = [d for _, d in named] if named is not None else list(self.datasets)
        columns = []
        for d in parts:
            if callable(getattr(d, "__getitems__", None)):
                items = d.__getitems__(indices)
                if len(items) != len(indices):
                    raise ValueError(
                        f"Nested dataset's output size mismatch. Expected {len(indices)}, "
                        f"got {len(items)}"
                    )
            else:
                items = [d[i] for i in indices]
            columns.append(items)
        if named is not None:
            keys = list(self.datasets)
            return [dict(zip(keys, row)) for row in zip(*columns)]
        return [tuple(row) for row in zip(*columns)]

    def __len__(self) -> int:
        return self._length


class _IndexOutOfRange(IndexError, ValueError):
    """An index out of range: an IndexError that PyTorch code catching ValueError sees too."""


class ConcatDataset(Dataset[T_co]):
    """Several map-style datasets read one after the other.

    Args:
        datasets: the datasets (not iterable datasets).
    """

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(
                    f"ConcatDataset: dataset {i} is an IterableDataset; use "
                    "ChainDataset for streams"
                )
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        n = len(self)
        if idx < 0:
            if -idx > n:
                # PyTorch raises ValueError here; this error is also an IndexError
                raise _IndexOutOfRange(
                    f"ConcatDataset: absolute value of index {idx} should not exceed the "
                    f"dataset length {n}"
                )
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} out of range for length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if d == 0 else self.cumulative_sizes[d - 1]
        return self.datasets[d][idx - start]


class ChainDataset(IterableDataset):
    """Several iterable datasets read one after the other."""

    def __init__(self, datasets: Sequence[IterableDataset]):
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    # PyTorch's rule: lengths summing to 1 (within rounding, and not above) are fractions
    is_frac = math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1.0
    if is_frac:
        if any(not 0.0 <= f <= 1.0 for f in lengths):
            raise ValueError(f"random_split: fractions must be in [0, 1], got {lengths}")
        out = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(out)):  # hand out the remainder round-robin, as PyTorch does
            out[i % len(out)] += 1
        for i, size in enumerate(out):
            if size == 0:
                warnings.warn(
                    f"random_split: length of split at index {i} is 0; this might result in "
                    "an empty dataset.",
                    stacklevel=3,
                )
        return out
    out = []
    for x in lengths:
        if int(x) != x or x < 0:
            raise ValueError(
                f"random_split: lengths must be non-negative integers or fractions summing "
                f"to 1, got {lengths}"
            )
        out.append(int(x))
    if sum(out) != n:
        raise ValueError(
            f"random_split: sum of input lengths ({sum(out)}) does not equal the length of "
            f"the input dataset ({n})"
        )
    return out


def random_split(dataset: Dataset, lengths: Sequence[float], generator: Any = None) -> list:
    """Split a dataset into non-overlapping random subsets.

    Args:
        dataset: the dataset to split.
        lengths: subset sizes (summing to ``len(dataset)``) or fractions summing to 1 (the
            remainder is handed out round-robin).
        generator: a ``darklib.Generator``, a ``numpy.random.Generator`` or an int seed
            (default: darklib's default generator).

    Returns:
        a list of :class:`Subset`.
    """
    from darklib.utils.data.sampler import _numpy_rng

    sizes = _split_lengths(len(dataset), lengths)
    perm = _numpy_rng(generator).permutation(sum(sizes)).tolist()
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start : start + s]))
        start += s
    return out
