"""DataLoader: batches from a dataset, in the main thread or in background threads.

Workers are threads, not processes: image decoding (OpenCV, Pillow) and numpy release the
GIL, nothing has to be pickled, and starting them costs microseconds. Every sample is read
with its own random stream (see :func:`darklib.utils.data.sample_rng`), so for the same seed
``num_workers=2`` yields exactly the batches of ``num_workers=0``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as _FutureTimeout
from typing import Any

import numpy as np

from darklib.utils.data._worker import WorkerInfo, _set_worker_info, sample_seed
from darklib.utils.data.collate import default_collate, default_convert
from darklib.utils.data.dataset import Dataset, IterableDataset
from darklib.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    _numpy_rng,
    _stateful,
)


def _reraise(exc: BaseException, what: str) -> None:
    """Raise ``exc`` again, of the same type where possible, with ``what`` in its message."""
    msg = f"{what}: {type(exc).__name__}: {exc}"
    try:
        new = type(exc)(msg)
    except Exception:
        new = RuntimeError(msg)
    if str(new) != msg and not isinstance(new, KeyError):
        new = RuntimeError(msg)
    raise new from exc


def _sample_key(base_seed: int, index: Any, position: int) -> tuple[int, int]:
    if isinstance(index, int | np.integer) and not isinstance(index, bool) and index >= 0:
        return base_seed, int(index)
    return base_seed, (1 << 40) + position


class DataLoader:
    """Iterates over a dataset in batches.

    Args:
        dataset: a map-style :class:`Dataset` or an :class:`IterableDataset`.
        batch_size: samples per batch (``None``: samples one by one, not collated).
        shuffle: a new random order every epoch (map-style datasets only).
        sampler: the order of indices (excludes ``shuffle``).
        batch_sampler: yields lists of indices (excludes batch_size, shuffle, sampler,
            drop_last).
        num_workers: background threads loading batches (0: load in the caller's thread).
        collate_fn: merges a list of samples into a batch (default :func:`default_collate`).
        pin_memory: accepted for PyTorch compatibility; has no effect.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        timeout: seconds to wait for a worker's batch (0: forever).
        worker_init_fn: called with the worker id at the start of each worker thread.
        generator: ``darklib.Generator``, ``numpy.random.Generator`` or int seed for the
            shuffling and the per-sample augmentation seeds (default: darklib's default one).
        prefetch_factor: batches loaded ahead per worker (default 2).
        persistent_workers: keep the worker threads between epochs.
        seed: shorthand for ``generator=seed`` (a darklib extension).

    Example::

        >>> loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=2, seed=0)
        >>> for images, labels in loader: ...
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Any = None,
        batch_sampler: Sampler | Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        seed: int | None = None,
    ):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                f"DataLoader: num_workers option should be a non-negative integer, "
                f"got {num_workers!r}"
            )
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "DataLoader: prefetch_factor option could only be specified in "
                "multiprocessing. let num_workers > 0 to enable multiprocessing"
            )
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor should be >= 1, got {prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: give either generator or seed, not both")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.persistent_workers = persistent_workers
        self.generator = _stateful(seed if seed is not None else generator)
        self._iterable = isinstance(dataset, IterableDataset)

        if self._iterable:
            if shuffle:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle "
                    f"option, but got shuffle={shuffle}"
                )
            if sampler is not None or batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified "
                    "sampler and batch_sampler options"
                )
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "DataLoader: batch_sampler option is mutually exclusive with "
                    "batch_size, shuffle, sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "DataLoader: batch_size=None option disables auto-batching and is "
                "mutually exclusive with drop_last"
            )
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(
                f"DataLoader: batch_size should be a positive integer or None, got {batch_size!r}"
            )
        if sampler is None and not self._iterable:
            sampler = (
                RandomSampler(dataset, generator=self.generator)
                if shuffle
                else SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_convert if self._auto_collation is False else default_collate
        self.collate_fn = collate_fn
        self._pool: ThreadPoolExecutor | None = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # type: ignore[arg-type]
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self) -> Iterator[Any]:
        base_seed = int(_numpy_rng(self.generator).integers(0, 2**62))
        if self._iterable:
            return _IterableIter(self, base_seed)
        return _MapIter(self, base_seed)

    # ---------------------------------------------------------------- worker threads
    def _make_pool(self) -> ThreadPoolExecutor:
        ids = itertools.count()
        lock = threading.Lock()

        def init() -> None:
            with lock:
                wid = next(ids)
            _set_worker_info(WorkerInfo(wid, self.num_workers, 0, self.dataset))
            if self.worker_init_fn is not None:
                self.worker_init_fn(wid)

        return ThreadPoolExecutor(
            self.num_workers, thread_name_prefix="darklib-data", initializer=init
        )

    def _get_pool(self) -> ThreadPoolExecutor:
        if not self.persistent_workers:
            return self._make_pool()
        if self._pool is None:
            self._pool = self._make_pool()
        return self._pool

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _fetch_map(loader: DataLoader, base_seed: int, indices: Any, position: int) -> Any:
    """Load and collate one batch (or one sample without auto-collation)."""
    ds = loader.dataset
    if not loader._auto_collation:
        with sample_seed(*_sample_key(base_seed, indices, position)):
            try:
                sample = ds[indices]
            except Exception as e:
                _reraise(e, f"DataLoader: error loading sample {indices!r} of {type(ds).__name__}")
        return loader.collate_fn(sample)
    samples = []
    for k, i in enumerate(indices):
        with sample_seed(*_sample_key(base_seed, i, position + k)):
            try:
                samples.append(ds[i])
            except Exception as e:
                _reraise(e, f"DataLoader: error loading sample {i!r} of {type(ds).__name__}")
    try:
        return loader.collate_fn(samples)
    except Exception as e:
        _reraise(e, f"DataLoader: error collating the batch of samples {list(indices)!r}")


class _MapIter:
    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        self.base_seed = base_seed
        index_sampler = loader.batch_sampler if loader._auto_collation else loader.sampler
        self.indices = iter(index_sampler)
        self.position = 0
        self.pool = loader._get_pool() if loader.num_workers > 0 else None
        self.pending: deque = deque()
        self.exhausted = False

    def __iter__(self) -> _MapIter:
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def _next_indices(self) -> tuple[Any, int] | None:
        if self.exhausted:
            return None
        try:
            idx = next(self.indices)
        except StopIteration:
            self.exhausted = True
            return None
        pos = self.position
        self.position += len(idx) if self.loader._auto_collation else 1
        return idx, pos

    def _fill(self) -> None:
        limit = self.loader.num_workers * self.loader.prefetch_factor
        while len(self.pending) < limit:
            nxt = self._next_indices()
            if nxt is None:
                return
            self.pending.append(
                self.pool.submit(_fetch_map, self.loader, self.base_seed, nxt[0], nxt[1])
            )

    def __next__(self) -> Any:
        if self.pool is None:
            nxt = self._next_indices()
            if nxt is None:
                raise StopIteration
            return _fetch_map(self.loader, self.base_seed, nxt[0], nxt[1])
        self._fill()
        if not self.pending:
            self.close()
            raise StopIteration
        fut = self.pending.popleft()
        self._fill()
        try:
            return fut.result(timeout=self.loader.timeout or None)
        except _FutureTimeout:
            self.close()
            raise RuntimeError(
                f"DataLoader timed out after {self.loader.timeout} seconds waiting for a batch"
            ) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for f in self.pending:
            f.cancel()
        self.pending.clear()
        self.exhausted = True
        if self.pool is not None and not self.loader.persistent_workers:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = None

    def __del__(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None and not self.loader.persistent_workers:
            pool.shutdown(wait=False, cancel_futures=True)


_DONE = object()


class _IterableIter:
    """Reads an IterableDataset; with workers, one background thread runs ahead."""

    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        self.base_seed = base_seed
        self.gen = self._batches()
        self.thread: threading.Thread | None = None
        if loader.num_workers > 0:
            import queue

            self.queue: Any = queue.Queue(maxsize=loader.num_workers * loader.prefetch_factor)
            self.stop = threading.Event()
            self.thread = threading.Thread(
                target=self._produce, name="darklib-data-iter", daemon=True
            )
            self.thread.start()

    def _samples(self) -> Iterator[Any]:
        it = iter(self.loader.dataset)
        for pos in itertools.count():
            with sample_seed(self.base_seed, pos):
                try:
                    sample = next(it)
                except StopIteration:
                    return
                except Exception as e:
                    _reraise(
                        e,
                        f"DataLoader: error loading sample {pos} of "
                        f"{type(self.loader.dataset).__name__}",
                    )
            yield sample

    def _batches(self) -> Iterator[Any]:
        loader = self.loader
        samples = self._samples()
        if loader.batch_size is None:
            for s in samples:
                yield loader.collate_fn(s)
            return
        while True:
            batch = list(itertools.islice(samples, loader.batch_size))
            if not batch or (loader.drop_last and len(batch) < loader.batch_size):
                return
            yield loader.collate_fn(batch)

    def _produce(self) -> None:
        try:
            for item in self.gen:
                while not self.stop.is_set():
                    try:
                        self.queue.put((True, item), timeout=0.1)
                        break
                    except Exception:
                        continue
                if self.stop.is_set():
                    return
            self.queue.put((True, _DONE))
        except BaseException as e:  # handed to the consumer
            self.queue.put((False, e))

    def __iter__(self) -> _IterableIter:
        return self

    def __next__(self) -> Any:
        if self.thread is None:
            return next(self.gen)
        import queue

        try:
            ok, item = self.queue.get(timeout=self.loader.timeout or None)
        except queue.Empty:
            raise RuntimeError(
                f"DataLoader timed out after {self.loader.timeout} seconds waiting for a batch"
            ) from None
        if not ok:
            raise item
        if item is _DONE:
            self.queue.put((True, _DONE))
            raise StopIteration
        return item

    def __del__(self) -> None:
        stop = getattr(self, "stop", None)
        if stop is not None:
            stop.set()
