"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable, plus their combinators."""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

from darklib.errors import OutOfRange
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

    With ``num_workers > 0`` each worker thread iterates its own copy of the dataset, as each
    of torch's worker processes does: a dataset that does not split the stream by
    :func:`get_worker_info` (``info.id`` of ``info.num_workers``) is read once per worker.
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


class _Refused(ValueError, AssertionError):
    """An argument refused where torch asserts: a ValueError that torch code catching
    AssertionError sees too."""


class _RefusedType(TypeError, AssertionError):
    """A dataset of the wrong kind, refused where torch asserts: a TypeError and an
    AssertionError."""


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
            raise _Refused(
                f"TensorDataset: size mismatch between tensors: first dimensions differ, "
                f"shapes {shapes}"
            )
        self.tensors = tensors
        self._arrays = [t.array if isinstance(t, Tensor) else t for t in tensors]
        self._wrap = [isinstance(t, Tensor) for t in tensors]

    def __getitem__(self, index: int) -> tuple:
        try:
            return tuple(
                Tensor._wrap(a[index]) if w else a[index] for a, w in zip(self._arrays, self._wrap)
            )
        except IndexError as e:  # NumPy's message names no dataset
            raise OutOfRange(
                f"TensorDataset: index {index!r} is out of range for a dataset of {len(self)} "
                f"samples (valid indices are -{len(self)}..{len(self) - 1})"
            ) from e

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
            raise _Refused("datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise _RefusedType(
                    f"ConcatDataset does not support IterableDataset (dataset {i}); use "
                    "ChainDataset for streams"
                )
        self.cumulative_sizes = self.cumsum(self.datasets)

    @staticmethod
    def cumsum(sequence: Sequence[Any]) -> list[int]:
        """The running totals of the lengths of ``sequence``'s items."""
        return list(itertools.accumulate(len(d) for d in sequence))

    @property
    def cummulative_sizes(self) -> list[int]:
        """The old (misspelled) name of :attr:`cumulative_sizes`, deprecated as in torch."""
        warnings.warn(
            "`cummulative_sizes` attribute is renamed to `cumulative_sizes`",
            FutureWarning,
            stacklevel=2,
        )
        return self.cumulative_sizes

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        n = len(self)
        if idx < 0:
            if -idx > n:
                # PyTorch raises ValueError here; this error is also an IndexError
                raise _IndexOutOfRange(
                    f"absolute value of index should not exceed dataset length (index {idx}, "
                    f"length {n})"
                )
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} out of range for length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if d == 0 else self.cumulative_sizes[d - 1]
        return self.datasets[d][idx - start]


class ChainDataset(IterableDataset):
    """Several iterable datasets read one after the other.

    Each must be an :class:`IterableDataset` (checked as it is reached, as torch does): a
    map-style dataset is not a stream (iterating one through ``__getitem__`` may not end).
    """

    def __init__(self, datasets: Sequence[IterableDataset]):
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator:
        for d in self.datasets:
            _check_iterable(d)
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            _check_iterable(d)
            total += len(d)
        return total


def _check_iterable(d: Any) -> None:
    if not isinstance(d, IterableDataset):
        raise _RefusedType(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    lengths = list(lengths)
    # PyTorch's rule: lengths summing to 1 (within rounding, and not above) are fractions
    if lengths and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1.0:
        for i, f in enumerate(lengths):
            if not 0.0 <= f <= 1.0:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        out = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(out)):  # hand out the remainder round-robin, as PyTorch does
            out[i % len(out)] += 1
        for i, size in enumerate(out):
            if size == 0:
                warnings.warn(
                    f"Length of split at index {i} is 0. This might result in an empty dataset.",
                    stacklevel=3,
                )
        return out
    if sum(lengths) != n:
        raise ValueError(
            f"Sum of input lengths does not equal the length of the input dataset! "
            f"(lengths {lengths} for {n} samples)"
        )
    out = []
    for x in lengths:
        if int(x) != x or x < 0:
            raise ValueError(
                f"random_split: lengths must be non-negative integers or fractions summing "
                f"to 1, got {lengths}"
            )
        out.append(int(x))
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
