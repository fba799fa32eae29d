"""DataLoader: batches from a dataset, in the main thread or in background threads.

Workers are threads, not processes: image decoding (OpenCV, Pillow) and numpy release the
GIL, nothing has to be pickled, and starting them costs microseconds. As PyTorch's, worker
``w`` of ``n`` loads batches ``w, w + n, ...`` of a map-style dataset, and iterates its own
(shallow) copy of an IterableDataset, whose batches are taken from the workers in turn; in
a worker, :func:`get_worker_info` gives its id, the count, the seed (the epoch's base seed
plus the id) and the dataset it reads. Every sample of a map-style dataset is read with its
own random stream (see :func:`darklib.utils.data.sample_rng`), so for the same seed
``num_workers=2`` yields exactly the batches of ``num_workers=0``.

An exception a dataset (or the collate function) raises reaches the caller as the same
object, type and attributes kept, with a note naming the sample (and the worker).
"""

from __future__ import annotations

import copy
import itertools
import multiprocessing
import queue
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as _FutureTimeout
from typing import Any

import numpy as np

from darklib.tensor import Tensor
from darklib.utils.data._worker import WorkerInfo, _set_worker_info, get_worker_info, sample_seed
from darklib.utils.data.collate import default_collate, default_convert
from darklib.utils.data.dataset import Dataset, IterableDataset, StackDataset, Subset
from darklib.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    _InfiniteConstantSampler,
    _numpy_rng,
    _stateful,
)


def _note(exc: BaseException, what: str) -> None:
    """Say where ``exc`` happened in a note (PEP 678), which keeps its type, attributes and
    message: the caller re-raises the object itself, as torch does without workers."""
    info = get_worker_info()
    where = "" if info is None else f" (in DataLoader worker thread {info.id})"
    if hasattr(exc, "add_note"):
        exc.add_note(what + where)


def _batch_reader(ds: Any) -> Any:
    """The dataset's ``__getitems__`` where the DataLoader calls it (as torch's fetcher does
    when a dataset has one), or None to read sample by sample.

    A Subset or StackDataset, as defined here, over datasets without one reads sample by
    sample in its ``__getitems__`` anyway: the loader does it itself so that each sample
    keeps its own random stream."""
    getitems = getattr(ds, "__getitems__", None)
    if not getitems:
        return None
    kind = type(ds)
    if kind.__getitem__ is Subset.__getitem__ and kind.__getitems__ is Subset.__getitems__:
        return getitems if _batch_reader(ds.dataset) is not None else None
    if (
        kind.__getitem__ is StackDataset.__getitem__
        and kind.__getitems__ is StackDataset.__getitems__
    ):
        parts = ds.datasets.values() if isinstance(ds.datasets, dict) else ds.datasets
        return getitems if any(_batch_reader(d) is not None for d in parts) else None
    return getitems


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
        pin_memory: put the batches' CPU tensors in page-locked memory (faster copies to
            the GPU); without a GPU a warning, as torch's, and no effect.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        timeout: seconds to wait for a worker's batch (0: forever).
        worker_init_fn: called with the worker id at the start of each worker thread.
        generator: ``darklib.Generator``, ``numpy.random.Generator`` or int seed for the
            shuffling and the per-sample augmentation seeds (default: darklib's default one).
        prefetch_factor: batches loaded ahead per worker (default 2).
        persistent_workers: keep the worker threads between epochs.
        pin_memory_device: kept for torch's API (deprecated there, with the same warning).
        in_order: kept for torch's API; batches always come in order (which ``False`` allows).
        multiprocessing_context: checked as torch checks it and kept; unused (threads).
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
        in_order: bool = True,
        seed: int | None = None,
    ):
        if not isinstance(num_workers, int):
            raise TypeError(f"num_workers should be an integer, got {num_workers!r}")
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing.let "
                "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to "
                "None."
            )
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if prefetch_factor == 0:  # (torch fails when iterating: a worker would get no batch)
            raise ValueError("prefetch_factor must be greater than 0 with num_workers > 0")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: give either generator or seed, not both")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if num_workers > 0 and prefetch_factor is None else prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self._pin = bool(pin_memory) and _accelerator_available()
        if pin_memory and pin_memory_device:
            warnings.warn(
                "pin_memory_device is deprecated, the current accelerator will be used as the "
                f"device,ignore pin_memory_device='{pin_memory_device}'.",
                stacklevel=2,
            )
        if pin_memory and not self._pin:
            warnings.warn(
                "'pin_memory' argument is set as true but no accelerator is found, then "
                "device pinned memory won't be used.",
                UserWarning,
                stacklevel=2,
            )
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        self.persistent_workers = persistent_workers
        self.generator = _stateful(seed if seed is not None else generator)
        self._iterable = isinstance(dataset, IterableDataset)

        # torch's checks, in its order, with its messages
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle "
                    f"option, but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, "
                    f"but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler "
                    f"option, but got batch_sampler={batch_sampler}"
                )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive "
                "with drop_last"
            )
        if sampler is None:
            if self._iterable:  # (the stream gives the samples: None for each, as torch's)
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=self.generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)  # (checks batch_size)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._IterableDataset_len_called: int | None = None
        self._pool: list[_Worker] | None = None
        self._iter_workers: list[list] | None = None  # persistent IterableDataset workers
        self._initialized = True

    # what torch refuses to change once the loader is made (the samplers are built from them)
    _FIXED = frozenset(
        ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")
    )

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._FIXED and getattr(self, "_initialized", False):
            raise ValueError(
                f"{name} attribute should not be set after {type(self).__name__} is initialized"
            )
        super().__setattr__(name, value)

    @property
    def multiprocessing_context(self) -> Any:
        """Checked as torch checks it and kept, but unused: the workers are threads."""
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, context: Any) -> None:
        if context is not None:
            if self.num_workers == 0:
                raise ValueError(
                    "multiprocessing_context can only be used with multi-process loading "
                    f"(num_workers > 0), but got num_workers={self.num_workers}"
                )
            if isinstance(context, str):
                methods = multiprocessing.get_all_start_methods()
                if context not in methods:
                    raise ValueError(
                        "multiprocessing_context option should specify a valid start method "
                        f"in {methods!r}, but got multiprocessing_context={context!r}"
                    )
                context = multiprocessing.get_context(context)
            if not isinstance(context, multiprocessing.context.BaseContext):
                raise TypeError(
                    "multiprocessing_context option should be a valid context object or a "
                    "string specifying the start method, but got "
                    f"multiprocessing_context={context}"
                )
        self._multiprocessing_context = context

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            # kept, as torch does, to warn when the stream yields more than it said
            n = self._IterableDataset_len_called = len(self.dataset)  # type: ignore[arg-type]
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    def __iter__(self) -> Iterator[Any]:
        return self._get_iterator()

    def _get_iterator(self) -> Iterator[Any]:
        """A new iterator over one epoch (torch's name, which subclasses override)."""
        base_seed = int(_numpy_rng(self.generator).integers(0, 2**62))
        if self._iterable:
            return _IterableIter(self, base_seed)
        return _MapIter(self, base_seed)

    # ---------------------------------------------------------------- worker threads
    def _worker_infos(self, base_seed: int) -> list[WorkerInfo]:
        """One WorkerInfo per worker: seed ``base_seed + id``, as torch's; an IterableDataset
        is copied (shallowly) for each worker, which iterates its own copy."""
        n = self.num_workers
        ds = self.dataset
        return [
            WorkerInfo(w, n, base_seed + w, copy.copy(ds) if self._iterable else ds)
            for w in range(n)
        ]

    def _make_pool(self, base_seed: int) -> list[_Worker]:
        """The worker threads of a map-style dataset: one single-thread executor each, so
        that batch ``k`` goes to worker ``k % num_workers`` (torch's round robin)."""
        return [_Worker(info, self.worker_init_fn) for info in self._worker_infos(base_seed)]

    def _get_pool(self, base_seed: int) -> list[_Worker]:
        # persistent workers keep the info (and seed) of the epoch that started them, as torch
        if not self.persistent_workers:
            return self._make_pool(base_seed)
        if self._pool is None:
            self._pool = self._make_pool(base_seed)
        return self._pool

    def __del__(self) -> None:
        for pool in getattr(self, "_pool", None) or ():
            pool.shutdown(wait=False, cancel_futures=True)


class _Worker:
    """One worker thread of a map-style dataset (a single-thread executor). Its first task
    sets the thread's worker info and runs ``worker_init_fn``; an exception there is raised,
    the object itself with a note naming the worker, by that task and by every later one
    (an executor's ``initializer`` would print it and raise ``BrokenThreadPool`` instead)."""

    def __init__(self, info: WorkerInfo, init_fn: Callable[[int], None] | None):
        self.info = info
        self.init_fn = init_fn
        self.started = False
        self.init_error: BaseException | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"darklib-data-{info.id}")

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.executor.submit(self._run, fn, *args)

    def _run(self, fn: Callable, *args: Any) -> Any:
        # (tasks run one at a time on the worker's only thread: no lock needed)
        if not self.started:
            self.started = True
            _set_worker_info(self.info)
            if self.init_fn is not None:
                try:
                    self.init_fn(self.info.id)
                except BaseException as e:
                    _note(e, "DataLoader: worker_init_fn failed")
                    self.init_error = e
        if self.init_error is not None:
            raise self.init_error
        return fn(*args)

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:
        self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)


def _prefetch(loader: DataLoader) -> int:
    """Batches loaded ahead per worker: 2 when ``prefetch_factor`` is None (a loader made
    without workers and given some later)."""
    return loader.prefetch_factor or 2


def _accelerator_available() -> bool:
    from darklib import cuda

    return cuda.is_available()


def _fetch_map(loader: DataLoader, base_seed: int, indices: Any, position: int) -> Any:
    """Load and collate one batch (or one sample without auto-collation)."""
    ds = loader.dataset
    name = type(ds).__name__
    if not loader._auto_collation:
        with sample_seed(*_sample_key(base_seed, indices, position)):
            try:
                sample = ds[indices]
            except Exception as e:
                _note(e, f"DataLoader: error loading sample {indices!r} of {name}")
                raise
        return _pinned(loader, loader.collate_fn(sample))
    getitems = _batch_reader(ds)
    if getitems is not None:  # the whole batch at once: one stream for the batch
        with sample_seed(*_sample_key(base_seed, None, position)):
            try:
                samples = getitems(indices)
            except Exception as e:
                _note(e, f"DataLoader: error loading the samples {list(indices)!r} of {name}")
                raise
    else:
        samples = []
        for k, i in enumerate(indices):
            with sample_seed(*_sample_key(base_seed, i, position + k)):
                try:
                    samples.append(ds[i])
                except Exception as e:
                    _note(e, f"DataLoader: error loading sample {i!r} of {name}")
                    raise
    try:
        batch = loader.collate_fn(samples)
    except Exception as e:
        _note(e, f"DataLoader: error collating the batch of samples {list(indices)!r}")
        raise
    return _pinned(loader, batch)


def _pinned(loader: DataLoader, batch: Any) -> Any:
    """The batch with its CPU tensors in page-locked memory, when the loader pins."""
    if not loader._pin:
        return batch
    from darklib.utils._pytree import tree_flatten

    flat, rebuild = tree_flatten(batch)
    return rebuild([t.pin_memory() if isinstance(t, Tensor) and not t.is_cuda else t for t in flat])


class _MapIter:
    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        self.base_seed = base_seed
        self.indices = iter(loader._index_sampler)
        self.position = 0
        self.pool = loader._get_pool(base_seed) if loader.num_workers > 0 else None
        self.sent = 0  # batches handed to the workers, in turn
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
        limit = self.loader.num_workers * _prefetch(self.loader)
        while len(self.pending) < limit:
            nxt = self._next_indices()
            if nxt is None:
                return
            worker = self.pool[self.sent % len(self.pool)]
            self.sent += 1
            self.pending.append(
                worker.submit(_fetch_map, self.loader, self.base_seed, nxt[0], nxt[1])
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
            for worker in self.pool:
                worker.shutdown(wait=False, cancel_futures=True)
        self.pool = None

    def __del__(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None and not self.loader.persistent_workers:
            for worker in pool:
                worker.shutdown(wait=False, cancel_futures=True)


_DONE = object()


def _iterable_batches(loader: DataLoader, ds: Any, base_seed: int, wid: int) -> Iterator[Any]:
    """The batches (samples without auto-collation) of one pass over ``ds``; sample ``pos``
    of worker ``wid`` reads the stream ``(base_seed, wid * 2**48 + pos)``."""

    def samples() -> Iterator[Any]:
        it = iter(ds)
        for pos in itertools.count():
            with sample_seed(base_seed, (wid << 48) + pos):
                try:
                    sample = next(it)
                except StopIteration:
                    return
                except Exception as e:
                    _note(e, f"DataLoader: error loading sample {pos} of {type(ds).__name__}")
                    raise
            yield sample

    def collate(batch: Any) -> Any:
        try:
            out = loader.collate_fn(batch)
        except Exception as e:
            _note(e, "DataLoader: error collating a batch")
            raise
        return _pinned(loader, out)

    stream = samples()
    if loader.batch_size is None:
        for s in stream:
            yield collate(s)
        return
    while True:
        batch = list(itertools.islice(stream, loader.batch_size))
        if not batch or (loader.drop_last and len(batch) < loader.batch_size):
            return
        yield collate(batch)


def _put(stop: threading.Event, q: queue.Queue, item: Any) -> bool:
    """Hand ``item`` to the consumer, waiting while the queue is full; False once the
    consumer has gone (``stop`` set)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(
    loader: DataLoader, worker: list, q: queue.Queue, base_seed: int, stop: threading.Event
) -> None:
    """The body of one IterableDataset worker thread: its batches into ``q``, then _DONE or
    the exception raised. It holds no reference to the iterator that started it, so that a
    dropped iterator is collected, and its ``__del__`` sets ``stop``, which ends the thread
    (within 0.1 s, or after the batch it is loading)."""
    info = worker[0]
    _set_worker_info(info)
    try:
        if not worker[1]:
            worker[1] = True
            if loader.worker_init_fn is not None:
                try:
                    loader.worker_init_fn(info.id)
                except BaseException as e:
                    _note(e, "DataLoader: worker_init_fn failed")
                    worker[2] = e  # (persistent workers: every later epoch fails too)
        if worker[2] is not None:
            raise worker[2]
        for item in _iterable_batches(loader, info.dataset, base_seed, info.id):
            if not _put(stop, q, (True, item)) or stop.is_set():
                return
        _put(stop, q, (True, _DONE))
    except BaseException as e:  # handed to the consumer, the object itself
        _put(stop, q, (False, e))
    finally:
        _set_worker_info(None)


class _IterableIter:
    """Reads an IterableDataset: in the caller's thread, or with one thread per worker, each
    iterating its own copy of the dataset (a dataset that does not split itself by
    :func:`get_worker_info` is read once per worker, as in torch); batches are taken from
    the workers in turn, skipping those that are done.

    The threads share only a stop event and their queues with this iterator: when a loop
    breaks early and the iterator is dropped, ``__del__`` stops them and drops the batches
    they had loaded ahead, so no thread outlives its epoch."""

    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        self.threads: list[threading.Thread] = []
        self.len_called = loader._IterableDataset_len_called
        self.yielded = 0
        if loader.num_workers == 0:
            self.gen = _iterable_batches(loader, loader.dataset, base_seed, 0)
            return
        workers = loader._iter_workers if loader.persistent_workers else None
        if workers is None:  # [info, worker_init_fn called yet, its exception]
            workers = [[info, False, None] for info in loader._worker_infos(base_seed)]
            if loader.persistent_workers:
                loader._iter_workers = workers
        self.stop = threading.Event()
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=_prefetch(loader)) for _ in workers]
        self.active = [True] * len(workers)
        self.turn = 0
        for w, q in zip(workers, self.queues):
            t = threading.Thread(
                target=_produce,
                args=(loader, w, q, base_seed, self.stop),
                name=f"darklib-data-iter-{w[0].id}",
                daemon=True,
            )
            self.threads.append(t)
            t.start()

    def __iter__(self) -> _IterableIter:
        return self

    def __next__(self) -> Any:
        item = self._next()
        self.yielded += 1
        if self.len_called is not None and self.yielded > self.len_called:
            # torch's warning (which compares the items yielded with len(dataset))
            workers = self.loader.num_workers
            warnings.warn(
                f"Length of IterableDataset {self.loader.dataset} was reported to be "
                f"{self.len_called}(when accessing len(dataloader)), but {self.yielded} "
                "samples have been fetched. "
                + (
                    "For multiprocessing data-loading, this could be caused by not properly "
                    "configuring the IterableDataset replica at each worker (see "
                    "darklib.utils.data.get_worker_info)."
                    if workers > 0
                    else ""
                ),
                stacklevel=2,
            )
        return item

    def _next(self) -> Any:
        if not self.threads:
            return next(self.gen)
        n = len(self.queues)
        while any(self.active):
            w = self.turn
            self.turn = (self.turn + 1) % n
            if not self.active[w]:
                continue
            try:
                ok, item = self.queues[w].get(timeout=self.loader.timeout or None)
            except queue.Empty:
                self.close(join=False)  # (a stuck worker ends when its sample comes)
                raise RuntimeError(
                    f"DataLoader timed out after {self.loader.timeout} seconds waiting for a batch"
                ) from None
            if not ok:
                self.close()
                raise item
            if item is _DONE:
                self.active[w] = False
                continue
            return item
        self.close()
        raise StopIteration

    def close(self, join: bool = True) -> None:
        """Stop the worker threads, drop the batches they loaded ahead and (``join``) wait
        for them (a thread busy loading a sample ends when that sample is loaded)."""
        stop = getattr(self, "stop", None)
        if stop is None:
            return
        self.active = [False] * len(self.active)
        stop.set()
        for q in self.queues:
            _drain(q)
        if join:
            me = threading.current_thread()
            for t in self.threads:
                if t is not me:
                    t.join(timeout=1.0)

    def __del__(self) -> None:
        # (no join: __del__ may run in any thread, at any time)
        self.close(join=False)


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
