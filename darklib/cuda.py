"""``dl.cuda``: the GPU's devices, memory, streams and events, as ``torch.cuda``.

Everything here is a thin layer over CuPy (the only GPU library darklib uses, reached
through :mod:`darklib.backend`). Where no GPU is available, the queries that have a
natural answer give it (``is_available()`` False, ``device_count()`` 0, memory 0, seeding a
no-op) and the ones that need a device raise a RuntimeError that says so.
"""

from __future__ import annotations

from typing import Any

from darklib import backend
from darklib.errors import OutOfMemory as OutOfMemoryError  # noqa: F401 (torch.cuda's name)


def is_available() -> bool:
    return backend.cuda_available()


def device_count() -> int:
    return backend.cuda_device_count()


def is_initialized() -> bool:
    """Whether CuPy has been loaded with a GPU (darklib starts CUDA lazily, at first use)."""
    return backend._loaded_cupy() is not None and backend.cuda_available()


def init() -> None:
    """Start CUDA now rather than at the first GPU op (raises where there is no GPU)."""
    _cupy()


def _cupy() -> Any:
    return backend.xp_for(backend.device("cuda"))


def _index(dev: Any) -> int:
    """A device argument (None: the current one, an int, 'cuda:1', a device) as an index."""
    if dev is None:
        return backend.current_cuda[0]
    d = backend.as_device(dev)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return d.index


def _gpu(dev: Any) -> Any:
    """CuPy's Device for a device argument, checked against the GPUs that exist."""
    i = _index(dev)
    cp = backend.xp_for(backend.device("cuda", i))  # (raises if CUDA or that GPU is missing)
    return cp.cuda.Device(i)


def current_device() -> int:
    """Index of the GPU that ``'cuda'`` without an index means."""
    _cupy()
    return backend.current_cuda[0]


def set_device(dev: Any) -> None:
    """Make ``dev`` the current GPU: ``'cuda'`` tensors are made there and kernels run
    there. A negative index does nothing, as in torch."""
    if isinstance(dev, int) and dev < 0:
        return
    gpu = _gpu(dev)
    gpu.use()
    backend.current_cuda[0] = int(gpu.id)


class device:
    """``with dl.cuda.device(1):`` makes GPU 1 current inside the block (None or a
    negative index: no change)."""

    def __init__(self, dev: Any):
        self.index = -1 if dev is None else _index(dev)
        self._outer: int | None = None

    def __enter__(self) -> device:
        if self.index >= 0:
            self._outer = backend.current_cuda[0]
            set_device(self.index)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._outer is not None:
            set_device(self._outer)
            self._outer = None


class _Properties:
    """What ``get_device_properties`` reports: name, total_memory (bytes), major, minor,
    multi_processor_count."""

    def __init__(self, props: dict):
        name = props["name"]
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        self.total_memory = int(props["totalGlobalMem"])
        self.major, self.minor = int(props["major"]), int(props["minor"])
        self.multi_processor_count = int(props["multiProcessorCount"])

    def __repr__(self) -> str:
        return (
            f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
            f"minor={self.minor}, total_memory={self.total_memory // 2**20}MB, "
            f"multi_processor_count={self.multi_processor_count})"
        )


def get_device_properties(dev: Any = None) -> _Properties:
    gpu = _gpu(dev)
    return _Properties(_cupy().cuda.runtime.getDeviceProperties(gpu.id))


def get_device_name(dev: Any = None) -> str:
    return get_device_properties(dev).name


def get_device_capability(dev: Any = None) -> tuple[int, int]:
    p = get_device_properties(dev)
    return p.major, p.minor


def mem_get_info(dev: Any = None) -> tuple[int, int]:
    """(free, total) bytes of the GPU, as the driver reports them."""
    gpu = _gpu(dev)
    with gpu:  # (cudaMemGetInfo reports the current device's memory)
        free, total = gpu.mem_info
    return int(free), int(total)


def synchronize(dev: Any = None) -> None:
    """Wait for all kernels on the GPU (the current one by default; a no-op without CUDA)."""
    if backend.cuda_available():
        gpu = _gpu(dev)
        with gpu:
            gpu.synchronize()


def _pool():
    return _cupy().get_default_memory_pool()


def memory_allocated(dev: Any = None) -> int:
    """Bytes of GPU memory held by live arrays (0 without CUDA)."""
    if not backend.cuda_available():
        return 0
    with _gpu(dev):
        return int(_pool().used_bytes())


def memory_reserved(dev: Any = None) -> int:
    """Bytes of GPU memory held by CuPy's caching allocator: live arrays plus freed blocks
    kept for reuse, as torch.cuda.memory_reserved (0 without CUDA)."""
    if not backend.cuda_available():
        return 0
    with _gpu(dev):
        return int(_pool().total_bytes())


def empty_cache() -> None:
    """Give the allocator's unused cached blocks back to the driver."""
    if backend.cuda_available():
        _pool().free_all_blocks()


def manual_seed(seed: int) -> None:
    """Seed darklib's generators (one seed drives the CPU and every GPU stream)."""
    from darklib.random import manual_seed as _seed

    _seed(seed)


manual_seed_all = manual_seed


def seed() -> None:
    """Seed darklib's generators from a random number (see :func:`darklib.seed`)."""
    from darklib.random import seed as _seed

    _seed()


seed_all = seed


def initial_seed() -> int:
    from darklib.random import initial_seed as _initial

    return _initial()


class Stream:
    """A CUDA stream: darklib's ops inside ``with dl.cuda.stream(s):`` queue their kernels
    on ``s``, and the block runs on ``s``'s GPU (the current device there, as in torch).
    ``priority``: lower numbers run first (0, the default, or -1)."""

    def __init__(self, device: Any = None, priority: int = 0):
        if not backend.cuda_available():
            raise RuntimeError("dl.cuda.Stream needs a GPU, and CUDA is not available")
        options = {"priority": priority} if priority else {}
        with _gpu(device):
            self._s = _cupy().cuda.Stream(non_blocking=True, **options)
        self.device = backend.device("cuda", _index(device))
        self._entered: list = []  # the device contexts of nested ``with`` blocks

    @classmethod
    def _of(cls, s: Any, index: int) -> Stream:
        out = cls.__new__(cls)
        out._s, out.device, out._entered = s, backend.device("cuda", index), []
        return out

    def synchronize(self) -> None:
        self._s.synchronize()

    def query(self) -> bool:
        """Whether all work queued on the stream has finished."""
        return bool(self._s.done)

    def wait_event(self, event: Event) -> None:
        if event._e is not None:  # (an event never recorded: nothing to wait for, as torch)
            self._s.wait_event(event._e)

    def wait_stream(self, stream: Stream) -> None:
        self.wait_event(stream.record_event())

    def record_event(self, event: Event | None = None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def __enter__(self) -> Stream:
        # CuPy refuses to make a stream current on another GPU than the current one: the
        # block runs on the stream's GPU (torch's stream context switches device too)
        gpu = device(self.device)
        gpu.__enter__()
        try:
            self._s.__enter__()
        except BaseException:
            gpu.__exit__(None, None, None)
            raise
        self._entered.append(gpu)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._s.__exit__(*exc)
        finally:
            self._entered.pop().__exit__(*exc)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and self._s.ptr == other._s.ptr

    def __hash__(self) -> int:
        return hash(self._s.ptr)

    def __repr__(self) -> str:
        return f"<dl.cuda.Stream device={self.device} cuda_stream={self._s.ptr:#x}>"


def current_stream(device: Any = None) -> Stream:
    """The stream darklib's ops queue on now."""
    with _gpu(device):
        return Stream._of(_cupy().cuda.get_current_stream(), _index(device))


def default_stream(device: Any = None) -> Stream:
    index = int(_gpu(device).id)  # (checked against the GPUs that exist)
    return Stream._of(_cupy().cuda.Stream.null, index)


def stream(s: Stream | None) -> Any:
    """``with dl.cuda.stream(s):`` runs the block's ops on ``s`` (None: no change)."""
    if s is None:
        import contextlib

        return contextlib.nullcontext()
    return s


class Event:
    """A CUDA event: a marker in a stream, to wait for or time work on the GPU::

    start, end = dl.cuda.Event(enable_timing=True), dl.cuda.Event(enable_timing=True)
    start.record(); y = model(x); end.record(); end.synchronize()
    ms = start.elapsed_time(end)

    As torch's, the event is created on the GPU of the first stream it is recorded on
    (CUDA refuses to record an event on another GPU's stream); until then it counts as
    done and waiting for it does nothing.
    """

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess=False):
        if not backend.cuda_available():
            raise RuntimeError("dl.cuda.Event needs a GPU, and CUDA is not available")
        if interprocess and enable_timing:
            raise ValueError("Timing must be disabled for interprocess events")
        self._timing = bool(enable_timing)
        self._flags = {
            "block": bool(blocking),
            "disable_timing": not enable_timing,
            "interprocess": bool(interprocess),
        }
        self._e: Any = None
        self.device: backend.device | None = None

    def record(self, stream: Stream | None = None) -> None:
        """Mark the point reached by ``stream`` (the current one by default)."""
        stream = current_stream() if stream is None else stream
        if self._e is not None and self.device != stream.device:
            raise RuntimeError(
                f"Event device {self.device} does not match recording stream's device "
                f"{stream.device}"
            )
        with _gpu(stream.device):  # (as torch, on the stream's GPU)
            if self._e is None:
                self._e = _cupy().cuda.Event(**self._flags)
                self.device = stream.device
            self._e.record(stream._s)

    def wait(self, stream: Stream | None = None) -> None:
        """Make ``stream`` (the current one by default) wait until this event has happened."""
        (current_stream() if stream is None else stream).wait_event(self)

    def query(self) -> bool:
        return True if self._e is None else bool(self._e.done)

    def synchronize(self) -> None:
        if self._e is not None:
            self._e.synchronize()

    def elapsed_time(self, end: Event) -> float:
        """Milliseconds between this event and ``end`` (both recorded, with timing on)."""
        if not (self._timing and end._timing):
            raise RuntimeError("elapsed_time: both events must be created with enable_timing=True")
        if self._e is None or end._e is None:
            raise RuntimeError("elapsed_time: both events must be recorded before timing them")
        return float(_cupy().cuda.get_elapsed_time(self._e, end._e))
