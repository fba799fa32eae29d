"""``DistributedSampler``: each of ``num_replicas`` processes reads its own share of a
dataset, as torch's (``torch.utils.data.distributed``).

darklib has no process groups (``dl.distributed.is_available()`` is False), so the number
of replicas and this process's rank are given explicitly, as a launcher passes them: the
shares are then the ones torch's sampler gives, disjoint and together the whole dataset,
from a permutation that every rank draws alike from ``seed + epoch``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Any

from darklib.errors import InvalidValue
from darklib.utils.data.sampler import Sampler


class DistributedSampler(Sampler[int]):
    """Indices ``rank, rank + num_replicas, ...`` of the dataset's order (shuffled per
    epoch with ``shuffle``: call :meth:`set_epoch` at the start of each epoch), padded by
    repeating indices from the start so that every rank gets ``len(self)`` of them, or cut
    to a multiple of ``num_replicas`` with ``drop_last``."""

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            raise RuntimeError(
                "DistributedSampler: darklib has no distributed process group to ask; pass "
                "num_replicas (the number of processes) and rank (this process's index)"
            )
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise InvalidValue(
                f"DistributedSampler: num_replicas must be a positive int, got {num_replicas!r}"
            )
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise InvalidValue(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            from darklib import random as _random
            from darklib.creation import randperm

            g = _random.Generator().manual_seed(self.seed + self.epoch)
            order: list[Any] = randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        if self.drop_last:
            order = order[: self.total_size]
        elif order:  # pad with indices from the start, repeated as often as needed
            short = self.total_size - len(order)
            order += (order * math.ceil(short / len(order)))[:short]
        return iter(order[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose permutation ``shuffle`` draws (the same on every rank)."""
        self.epoch = epoch
