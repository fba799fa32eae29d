"""Samplers: which dataset indices a DataLoader reads, and in which order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import numpy as np

from darklib.errors import InvalidValue

T_co = TypeVar("T_co", covariant=True)


def _numpy_rng(generator: Any) -> np.random.Generator:
    """A numpy Generator from ``None`` (a fresh stream seeded by darklib's default generator),
    a ``darklib.Generator``, a ``numpy.random.Generator`` or an int seed."""
    from darklib import random as _random

    if generator is None:
        seed = _random.default_generator.sample("randint", np, (), np.int64, low=0, high=2**62)
        return np.random.default_rng(int(seed))
    if isinstance(generator, _random.Generator):
        return generator.numpy_rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(
        f"generator must be None, a darklib.Generator, a numpy.random.Generator or an int "
        f"seed, got {type(generator).__name__}"
    )


def _as_numbers(weights: Any) -> Any:
    """A Tensor's values (on the host), anything else as it is."""
    from darklib.tensor import Tensor

    if isinstance(weights, Tensor):
        from darklib.backend import to_numpy

        return to_numpy(weights.array)
    return weights


def _stateful(generator: Any) -> Any:
    """An int seed becomes a Generator once, so that successive epochs differ."""
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    return generator


class Sampler(Generic[T_co]):
    """Base class: ``__iter__`` yields indices (or lists of indices for batch samplers)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """Indices ``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source: Sized):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Random indices: a fresh permutation each epoch, or draws with replacement.

    Args:
        data_source: the dataset.
        replacement: draw ``num_samples`` indices with replacement.
        num_samples: how many indices per epoch (default ``len(data_source)``).
        generator: ``darklib.Generator``, ``numpy.random.Generator`` or int seed (default: a
            stream seeded from darklib's default generator at each epoch).
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = _stateful(generator)
        # torch's checks, types and messages
        if not isinstance(replacement, bool):
            raise TypeError(
                f"RandomSampler: replacement should be a boolean value, but got "
                f"replacement={replacement}"
            )
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            empty = " (is the dataset empty?)" if num_samples is None else ""
            raise ValueError(
                f"RandomSampler: num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}{empty}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = _numpy_rng(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order (a new one each epoch)."""

    def __init__(self, indices: Sequence[int], generator: Any = None):
        self.indices = indices
        self.generator = _stateful(generator)

    def __iter__(self) -> Iterator[int]:
        for i in _numpy_rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Indices ``0..len(weights)-1`` drawn with probabilities proportional to ``weights``."""

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Any = None,
    ):
        # torch's checks first, in its order, types and messages
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(
                f"WeightedRandomSampler: num_samples should be a positive integer value, but "
                f"got num_samples={num_samples}"
            )
        if not isinstance(replacement, bool):
            raise ValueError(
                f"WeightedRandomSampler: replacement should be a boolean value, but got "
                f"replacement={replacement}"
            )
        w = np.asarray(_as_numbers(weights), dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(
                f"WeightedRandomSampler: weights should be a 1d sequence but given weights "
                f"have shape {tuple(w.shape)}"
            )
        _check_weights(w, num_samples, replacement)
        from darklib.tensor import Tensor

        self.weights = Tensor._wrap(w)  # a float64 tensor, as torch's
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = _stateful(generator)

    def __iter__(self) -> Iterator[int]:
        w = np.asarray(_as_numbers(self.weights), dtype=np.float64)
        _check_weights(w, self.num_samples, self.replacement)
        rng = _numpy_rng(self.generator)
        p = w / w.sum()
        yield from rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).tolist()

    def __len__(self) -> int:
        return self.num_samples


def _check_weights(w: np.ndarray, num_samples: int, replacement: bool) -> None:
    """What torch.multinomial refuses when a WeightedRandomSampler iterates (a RuntimeError),
    said as soon as the sampler is made (InvalidValue: a ValueError and a RuntimeError)."""
    if len(w) == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise InvalidValue(
            "WeightedRandomSampler: invalid multinomial distribution: weights must be a 1D "
            "sequence of non-negative finite numbers with a positive sum"
        )
    # (torch.multinomial draws the indices of weight 0 then, after all the others; darklib
    # refuses)
    if not replacement and num_samples > int((w > 0).sum()):
        raise InvalidValue(
            f"WeightedRandomSampler: cannot draw num_samples={num_samples} without "
            f"replacement from {int((w > 0).sum())} non-zero weights"
        )


class _InfiniteConstantSampler(Sampler):
    """``None`` forever: the sampler of a DataLoader over an IterableDataset, as torch's."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


class BatchSampler(Sampler[list[int]]):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler: any iterable of indices.
        batch_size: indices per batch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(
                f"BatchSampler: batch_size should be a positive integer value, but got "
                f"batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(
                f"BatchSampler: drop_last should be a boolean value, but got drop_last={drop_last}"
            )
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
