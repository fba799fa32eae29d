"""Per-thread state of the data pipeline: worker info and the per-sample random stream.

The DataLoader reads sample ``i`` of an epoch with a numpy Generator seeded from
``(base_seed, i)``, where ``base_seed`` is drawn once per epoch from the loader's generator.
Random transforms take their numbers from :func:`sample_rng`, so a sample is augmented the
same way whichever thread reads it: ``num_workers=2`` gives exactly the batches of
``num_workers=0``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

_local = threading.local()


@dataclass(frozen=True)
class WorkerInfo:
    """What :func:`get_worker_info` returns inside a DataLoader worker thread."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """Information about the current DataLoader worker thread, or ``None`` outside one."""
    return getattr(_local, "info", None)


def sample_rng() -> np.random.Generator:
    """The random stream for the sample being loaded now.

    Inside a DataLoader this is seeded from the epoch's base seed and the sample's index (so
    augmentations do not depend on which thread reads the sample); elsewhere it is darklib's
    default generator (``darklib.manual_seed`` makes it reproducible).
    """
    key = getattr(_local, "key", None)
    if key is None:
        from darklib.random import default_generator

        return default_generator.numpy_rng()
    rng = _local.rng
    if rng is None:
        rng = _local.rng = _keyed(key)
    return rng


def _keyed(key: tuple[int, int]) -> np.random.Generator:
    """This thread's Philox generator, rekeyed to ``key`` with its counter at zero.

    Philox streams with different keys are independent by construction, and rekeying costs a
    few microseconds where building a seeded Generator costs over ten.
    """
    gen = getattr(_local, "gen", None)
    if gen is None:
        gen = _local.gen = np.random.Generator(np.random.Philox(0))
    gen.bit_generator.state = {
        "bit_generator": "Philox",
        "state": {"counter": np.zeros(4, np.uint64), "key": np.array(key, np.uint64)},
        "buffer": np.zeros(4, np.uint64),
        "buffer_pos": 4,
        "has_uint32": 0,
        "uinteger": 0,
    }
    return gen


class sample_seed:  # named like a function: ``with sample_seed(base, i):``
    """Context manager making :func:`sample_rng` the stream of sample ``index``."""

    __slots__ = ("key", "saved", "saved_state")

    def __init__(self, base_seed: int, index: int):
        self.key = (int(base_seed) & _MASK, int(index) & _MASK)

    def __enter__(self) -> None:
        rng = getattr(_local, "rng", None)
        self.saved = (getattr(_local, "key", None), rng)
        # nested use: the outer sample's stream shares this thread's generator
        self.saved_state = None if rng is None else rng.bit_generator.state
        _local.key, _local.rng = self.key, None

    def __exit__(self, *exc: Any) -> None:
        _local.key, _local.rng = self.saved
        if self.saved_state is not None:
            self.saved[1].bit_generator.state = self.saved_state


_MASK = (1 << 64) - 1


def _set_worker_info(info: WorkerInfo | None) -> None:
    _local.info = info
