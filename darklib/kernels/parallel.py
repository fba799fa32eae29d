"""The CPU runtime of darklib's heavy ops: a small persistent pool of threads, and the
host allocator kept from handing memory back between training steps.

NumPy releases the GIL inside its loops and BLAS calls, so plain Python threads can split
whole-array work (copies, elementwise passes, GEMMs) over the cores, as PyTorch's OpenMP
loops do. Each parallel region hands contiguous ranges of one axis (usually the batch)
to the threads; the calling thread takes the first range itself.

BLAS's own threads must keep out of the way meanwhile: OpenBLAS's workers spin for about
0.1 s after every multi-threaded call, so a pool thread that runs next to them fights for
the core (measured here: a ReLU split over 2 threads right after a GEMM ran slower than on
one). While darklib runs a GEMM or a parallel region it therefore sets OpenBLAS to one
thread, and large GEMMs are split by the pool instead; the count is restored when the last
such region ends. Products that come while no region has run for a while (a network of
small tensors, like an MLP, never starts one) keep BLAS's own threads instead, whose
spinning workers start a small product faster than the pool's wake-up (about 60 us; an MLP
step ran 2x faster). Next to another busy thread (another program, a busy GUI) those
spin-waits collapse, though: a (32, 256) @ (256, 1024) product took 24 ms instead of
0.25 ms on a loaded 2-core machine. A product on BLAS's threads that runs that slowly
sends darklib's products to the pool, whose blocking hand-offs degrade gracefully, for a
while (see ``matmul``). OpenBLAS's count is process-wide
(``openblas_set_num_threads_local`` of the pthreads builds NumPy ships sets the global
count), so NumPy products that other threads run at that moment use one thread too.
Where that control is missing (another BLAS) the pool stays off and every op runs as
NumPy calls on BLAS's own threads.

While a region runs, its threads keep to distinct CPUs (``_caller_pinned``): left alone,
the scheduler woke a worker on its caller's CPU after an idle spell, and the two shared it.

Every training step allocates and frees the same large arrays again. glibc's malloc hands
freed memory above its trim threshold back to the kernel, and serves arrays above its
mmap threshold from fresh mappings, so each step paid page faults on tens of MB of new
pages (5,000 faults per step of the benchmark CNN, about 10% of its time). At import
darklib raises both thresholds (``mallopt``) so that freed memory is reused instead:
resident memory then stays at its high-water mark, as with PyTorch's caching allocators.
``DARKLIB_HOST_ALLOCATOR=system`` leaves malloc as it is.

On Zen 4 CPUs darklib also moves OpenBLAS from the AVX-512 kernels it picks there to its
AVX2 ones, which run convolution GEMMs faster on those cores (``_prefer_avx2_kernels``).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import itertools
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from darklib.backend import FP_SILENT, fp_errors

# Work below this many values (per op) is not worth a hand-off to a thread (tens of us).
MIN_ELEMENTS = 1 << 17

_lock = threading.Lock()
_num_threads: int | None = None  # None: not decided yet
_workers: list[_Worker] = []
_local = threading.local()


def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library NumPy loaded (with its thread-count setter), or None."""
    paths = []
    with contextlib.suppress(OSError):
        with open("/proc/self/maps") as f:
            paths = [ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln]
    root = os.path.dirname(os.path.dirname(np.__file__))
    for folder in ("numpy.libs", os.path.join("numpy", ".dylibs")):
        paths += glob.glob(os.path.join(root, folder, "*openblas*"))
    for path in dict.fromkeys(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads_local  # noqa: B018 (present from OpenBLAS 0.3.27)
        except (OSError, AttributeError):
            continue
        return lib
    return None


def _blas_function(lib: ctypes.CDLL | None, names: tuple[str, ...], restype: Any) -> Any:
    """The first of ``names`` that ``lib`` exports (builds prefix and suffix the public
    names: scipy-openblas has ``scipy_openblas_get_corename64_``), or None."""
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            fn.restype = restype
            return fn
    return None


_lib = _openblas()
_set_blas_threads = _blas_function(_lib, ("openblas_set_num_threads_local",), ctypes.c_int)
if _set_blas_threads is not None:
    _set_blas_threads.argtypes = [ctypes.c_int]
_corename = _blas_function(
    _lib,
    ("openblas_get_corename", "scipy_openblas_get_corename64_", "scipy_openblas_get_corename"),
    ctypes.c_char_p,
)


def blas_kernels() -> str:
    """The kernel family OpenBLAS runs (``'Haswell'``, ``'SkylakeX'``, ...), or
    ``'unknown'`` where NumPy's BLAS is not an OpenBLAS darklib can ask."""
    return _corename().decode() if _corename is not None else "unknown"


def _is_zen4() -> bool:
    """Whether this is an AMD family-25 (Zen 3/4) CPU with AVX-512, i.e. a Zen 4."""
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():  # end of the first processor's block
                    break
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    return (
        info.get("vendor_id") == "AuthenticAMD"
        and info.get("cpu family") == "25"
        and "avx512f" in info.get("flags", "").split()
    )


def _prefer_avx2_kernels() -> bool:
    """On Zen 4, switch OpenBLAS from its AVX-512 (SkylakeX) kernels to its AVX2 (Haswell)
    ones; True if switched.

    OpenBLAS 0.3.31 picks SkylakeX kernels for Zen 4, whose AVX-512 units are 256 bits
    wide inside. Its Haswell kernels ran the single-precision GEMMs of convolution 5-20%
    faster there (bench/ops.py conv rows, bench/train.py CNN step: measured side by side,
    alternating OPENBLAS_CORETYPE), at the price of some narrow float64 products.
    The switch uses OpenBLAS's own mechanism: its OPENBLAS_CORETYPE variable, read when it
    selects its kernel table, selected again here (dynamic builds export that
    selection). It runs once, at import, before darklib runs any product; a user's own
    OPENBLAS_CORETYPE is left alone (``OPENBLAS_CORETYPE=SkylakeX`` keeps the default).
    """
    if os.environ.get("OPENBLAS_CORETYPE") or blas_kernels() != "SkylakeX" or not _is_zen4():
        return False
    quit_, init = (
        getattr(_lib, n, None) for n in ("gotoblas_dynamic_quit", "gotoblas_dynamic_init")
    )
    if quit_ is None or init is None:  # not a DYNAMIC_ARCH build
        return False
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"  # also what child processes will pick
    quit_()
    init()
    return blas_kernels() == "Haswell"


_prefer_avx2_kernels()
owns_blas = _set_blas_threads is not None  # whether darklib decides BLAS's thread count

# glibc's mallopt parameters and the values darklib sets (see the module docstring)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_BYTES = 1 << 29  # free memory kept at the top of the heap before any is returned
_MMAP_BYTES = 1 << 25  # the largest mmap threshold glibc accepts (32 MB on 64-bit)


def _keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds; False where that is not glibc or opted out."""
    if os.environ.get("DARKLIB_HOST_ALLOCATOR", "") == "system" or not sys.platform.startswith(
        "linux"
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES)
    )


host_allocator_tuned = _keep_freed_memory()


def _default_threads() -> int:
    if not owns_blas:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def get_num_threads() -> int:
    """Threads darklib's CPU ops use (as ``torch.get_num_threads``)."""
    global _num_threads
    if _num_threads is None:
        with _lock:
            if _num_threads is None:
                _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for darklib's CPU ops (as ``torch.set_num_threads``); 1 runs every
    op, BLAS included, on the calling thread. Only possible where darklib controls
    OpenBLAS's thread count (otherwise BLAS keeps its own threads)."""
    global _num_threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    if n > 1 and not owns_blas:
        raise RuntimeError(
            "set_num_threads: darklib splits work over threads only on OpenBLAS with "
            "openblas_set_num_threads_local (0.3.27 or newer); this NumPy's BLAS does not "
            "offer it, so its own threads are used instead"
        )
    with _lock:
        _num_threads = n


def _allowed_cpus() -> list[int]:
    """The CPUs this process may run on, in order ([] where that cannot be asked)."""
    if os.environ.get("DARKLIB_PIN_THREADS", "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return []
    try:
        return sorted(os.sched_getaffinity(0))
    except OSError:
        return []


_cpus = _allowed_cpus()
_pinned_callers = 0  # regions now holding their caller on the first CPU (0 or 1)


def _pin(cpu: int) -> None:
    """Keep the calling thread on ``cpu`` (best effort: a cpuset changed meanwhile may
    refuse it, and the thread then runs where the scheduler puts it)."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, (cpu,))


@contextlib.contextmanager
def _caller_pinned(k: int) -> Iterator[None]:
    """The calling thread on the first allowed CPU while a region runs on ``k`` threads,
    the pool's workers being on the next ``k - 1`` (see :class:`_Worker`).

    Left to the scheduler, a thread that wakes after an idle spell is put on the CPU of
    the thread that woke it; on a 2-vCPU VM the caller and a worker then shared one CPU for
    several 4 ms ticks before one was moved, and a conv that took 16 ms back to back took
    25-30 ms after a 50 ms pause (measured with bench/ops.py's 64->64 and 128->128 rows;
    PyTorch's OpenMP workers spin between regions and do not meet this).
    A region that starts while another one runs (two threads calling darklib) stays
    where it is, so that the two callers do not share the first CPU.
    ``DARKLIB_PIN_THREADS=0`` leaves all threads to the scheduler.
    """
    global _pinned_callers
    with _lock:
        pin = k <= len(_cpus) and _pinned_callers == 0
        _pinned_callers += pin
    saved = None
    if pin:
        with contextlib.suppress(OSError):
            saved = os.sched_getaffinity(0)
            _pin(_cpus[0])
    try:
        yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, saved)
        with _lock:
            _pinned_callers -= pin


class _Worker(threading.Thread):
    def __init__(self, index: int) -> None:
        super().__init__(name="darklib-cpu", daemon=True)
        self.index = index  # 1 for the first worker: the caller is thread 0 of a region
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        if self.index < len(_cpus):
            _pin(_cpus[self.index])
        _local.busy = True  # nested regions inside a task run inline
        fp_errors.set(FP_SILENT)  # pieces of darklib's ops: silent on inf/NaN as the ops
        while True:
            fn, s, e, done = self.tasks.get()
            try:
                fn(s, e)
            except BaseException as exc:  # handed to the caller, raised there
                done.put(exc)
            else:
                done.put(None)


def _reset_after_fork() -> None:
    """A forked child has none of the parent's threads: start from an empty pool."""
    global _lock, _workers, _blas_users, _pinned_callers
    _lock = threading.Lock()
    _workers = []
    _blas_users = _pinned_callers = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _pool(n: int) -> list[_Worker]:
    with _lock:
        while len(_workers) < n:
            _workers.append(_Worker(len(_workers) + 1))
        return _workers[:n]


def ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into at most ``parts`` contiguous, nearly equal, non-empty pieces
    (one empty piece for ``n = 0``)."""
    parts = max(1, min(parts, n))
    q, r = divmod(n, parts)
    out, s = [], 0
    for i in range(parts):
        e = s + q + (i < r)
        out.append((s, e))
        s = e
    return out


def threads_for(n: int, elements: int) -> int:
    """How many threads to split ``n`` items holding ``elements`` values in all over."""
    if elements < MIN_ELEMENTS or getattr(_local, "busy", False):
        return 1
    return max(1, min(get_num_threads(), n))


_blas_users = 0  # darklib regions now running with BLAS on one thread
_blas_saved = 0  # BLAS's thread count before the first of them


@contextlib.contextmanager
def _single_blas() -> Iterator[None]:
    """OpenBLAS on one thread until the last concurrent darklib region leaves."""
    global _blas_users, _blas_saved
    if not owns_blas:
        yield
        return
    with _lock:
        if _blas_users == 0:
            _blas_saved = _set_blas_threads(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _lock:
            _blas_users -= 1
            if _blas_users == 0:
                _set_blas_threads(_blas_saved)


def parallel_for(fn: Callable[[int, int], Any], n: int, elements: int) -> None:
    """Call ``fn(start, end)`` over contiguous pieces of ``range(n)``, one per thread.

    ``elements`` (the number of values the whole loop touches) decides whether threads pay
    off. The pieces must write disjoint memory. BLAS runs on one thread meanwhile.
    An exception in any piece is raised here once all pieces have finished.
    """
    k = threads_for(n, elements)
    if k <= 1:
        fn(0, n)  # not marked busy: a GEMM inside may still split itself
        return
    global _last_region
    _last_region = time.monotonic()
    pieces = ranges(n, k)
    done: queue.SimpleQueue = queue.SimpleQueue()
    error = None
    with _single_blas(), _caller_pinned(k):
        for w, (s, e) in zip(_pool(k - 1), pieces[1:]):
            w.tasks.put((fn, s, e, done))
        _local.busy = True
        try:
            fn(*pieces[0])
        except BaseException as exc:
            error = exc
        finally:
            _local.busy = False
            for _ in pieces[1:]:
                exc = done.get()
                if error is None and exc is not None:
                    error = exc
    if error is not None:
        raise error


def map_reduce(
    fn: Callable[[int, int], Any], n: int, elements: int, block: int | None = None
) -> list:
    """Like :func:`parallel_for`, returning the results of ``fn`` in order (to be summed).

    With ``block``, ``fn`` gets chunks of at most ``block`` items, which the threads claim
    one at a time: a thread that starts late (woken slowly, or sharing its core with the
    GUI) takes fewer chunks instead of holding everyone up. Results keep the chunks' order
    whichever thread computed them, so sums over them are reproducible.
    """
    k = threads_for(n, elements)
    if k <= 1 and (not block or block >= n):  # one call (empty inputs keep their shapes)
        return [fn(0, n)]
    if block:
        starts = range(0, n, block)
        results: list = [None] * len(starts)
        claim = itertools.count()  # its __next__ is atomic under the GIL

        def run(_: int, __: int) -> None:
            for i in iter(claim.__next__, -1):
                if i >= len(starts):
                    return
                results[i] = fn(starts[i], min(n, starts[i] + block))

        parallel_for(run, k, elements if k > 1 else 0)
        return results
    pieces = ranges(n, k)
    parts: list = [None] * k

    def piece(i: int, _: int) -> None:
        parts[i] = fn(*pieces[i])

    parallel_for(piece, k, elements)
    return parts


def over_batch(xp: Any, fn: Callable[[int, int], Any], n: int, elements: int) -> list:
    """:func:`map_reduce` for an op on either backend: the GPU takes ``fn(0, n)`` whole."""
    if xp is not np:
        return [fn(0, n)]
    return map_reduce(fn, n, elements)


def elementwise(fn: Callable[..., Any], out: np.ndarray, *arrays: np.ndarray) -> list:
    """``fn(*pieces, out=out_piece)`` over aligned flat pieces of ``out`` (C-contiguous) and
    ``arrays`` (of its shape), one piece per thread; returns the pieces' results."""
    if threads_for(out.size, out.size) <= 1:
        return [fn(*arrays, out=out)]
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    dst = out.reshape(-1)
    return map_reduce(lambda s, e: fn(*(f[s:e] for f in flat), out=dst[s:e]), dst.size, dst.size)


# A product of at least this many multiply-adds (M*N*K) is split over the threads; smaller
# ones run on one BLAS thread (a hand-off costs about as much as a 4M one takes).
SPLIT_MACS = 1 << 24
# While no parallel region has run for QUIET_SECONDS (a network of small tensors, like an
# MLP, never starts one), products of at least BLAS_OWN_MACS run on OpenBLAS's own threads
# instead: its spinning workers take up small products without a thread wake-up, which
# made the benchmark MLP's step twice as fast. Next to darklib's regions those spinning
# workers would take the second core, hence the quiet period (they spin for ~0.1 s).
BLAS_OWN_MACS = 1 << 20
QUIET_SECONDS = 1.0
# A product on BLAS's threads slower than this (a single core does ~50e9) means their
# spin-waits are fighting other busy threads: the pool takes the products for a while.
SLOW_MACS_PER_S = 2e9
BLAS_COOLDOWN_SECONDS = 30.0
_last_region = -math.inf  # time.monotonic() of the last region that used several threads
_blas_slow_until = -math.inf  # BLAS's own threads are off until then


def _quiet() -> bool:
    now = time.monotonic()
    return now - _last_region > QUIET_SECONDS and now > _blas_slow_until


def _on_blas_threads(a: np.ndarray, b: np.ndarray, out: Any, macs: int) -> np.ndarray:
    """``np.matmul`` on OpenBLAS's own threads, watched: if it ran below SLOW_MACS_PER_S
    (another busy thread beside BLAS's spinning ones), they stay off for a while."""
    global _blas_slow_until
    t = time.perf_counter()
    res = np.matmul(a, b, out=out)
    if time.perf_counter() - t > macs / SLOW_MACS_PER_S:
        _blas_slow_until = time.monotonic() + BLAS_COOLDOWN_SECONDS
    return res


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` on darklib's threads.

    Products of at least :data:`SPLIT_MACS` multiply-adds are cut into one piece per
    thread: along the longest of M and N, or along K (partial products then summed) when K
    dominates, as in weight gradients, where cutting M or N leaves each thread streaming the
    whole of the other operand; batched products along their first batch axis. Smaller ones
    run on one BLAS thread, and while darklib is quiet (:func:`_quiet`) BLAS's own threads
    take every single product of at least :data:`BLAS_OWN_MACS` (never a batch: NumPy would
    hand each of its matrices to those threads in turn, 10x slower than the pool for
    attention's (128, 256, 32) @ (128, 32, 256)).
    """
    if not owns_blas:
        return np.matmul(a, b, out=out)
    macs, batch = 0, ()
    if a.ndim >= 2 and b.ndim >= 2:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        m, kk, n = a.shape[-2], a.shape[-1], b.shape[-1]
        macs = math.prod(batch) * m * n * kk
    if macs < BLAS_OWN_MACS or getattr(_local, "busy", False) or get_num_threads() == 1:
        split = False
    elif _quiet() and math.prod(batch) <= 1:
        return _on_blas_threads(a, b, out, macs)
    else:
        split = macs >= SPLIT_MACS and (not batch or batch[0] > 1)
    if not split:
        with _single_blas():
            return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((*batch, m, n), np.result_type(a, b))
    if batch:
        a = np.broadcast_to(a, (*batch, m, kk))
        b = np.broadcast_to(b, (*batch, kk, n))
        parallel_for(lambda s, e: np.matmul(a[s:e], b[s:e], out=out[s:e]), batch[0], 1 << 62)
    elif kk >= 2 * max(m, n):
        parts = map_reduce(lambda s, e: a[:, s:e] @ b[s:e], kk, 1 << 62)
        np.copyto(out, parts[0])
        for p in parts[1:]:
            out += p
    elif m >= n:
        parallel_for(lambda s, e: np.matmul(a[s:e], b, out=out[s:e]), m, 1 << 62)
    else:
        parallel_for(lambda s, e: np.matmul(a, b[:, s:e], out=out[:, s:e]), n, 1 << 62)
    return out
