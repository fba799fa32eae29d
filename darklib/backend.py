"""The one place that chooses the array library: NumPy always, CuPy when installed with a GPU.

Every other module asks this one for the array module of an array (``xp``) instead of
importing cupy. Importing darklib probes nothing: CuPy is imported the first time a CUDA
device is asked for.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from types import ModuleType
from typing import Any

import numpy as np

from darklib.errors import InvalidValue

# True once CuPy has been found with exactly one GPU: every CuPy array is then on the current
# device, and ops skip entering their arrays' device around each kernel (``with a.device``,
# a microsecond an op).
one_gpu = False


@functools.cache
def _cupy() -> ModuleType | None:
    """CuPy if it is installed and sees a device, else None (probed once, lazily)."""
    global one_gpu
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        if count > 0:
            one_gpu = count == 1
            return cupy
    except Exception:
        pass
    return None


def cuda_available() -> bool:
    """True where CuPy is installed and finds at least one GPU."""
    return _cupy() is not None


def cuda_runtime_version() -> str | None:
    """The CUDA runtime CuPy uses, as ``'major.minor'`` (None without a usable CuPy);
    imports CuPy, so asked for only when wanted (``dl.version.cuda``)."""
    try:
        import cupy

        v = int(cupy.cuda.runtime.runtimeGetVersion())
    except Exception:  # no CuPy, or one without a usable CUDA runtime
        return None
    return f"{v // 1000}.{v % 1000 // 10}"


def cuda_device_count() -> int:
    cp = _cupy()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


class device:
    """Where a tensor's data lives: ``device('cpu')``, ``device('cuda')``, ``device('cuda', 1)``."""

    __slots__ = ("index", "type")

    def __init__(self, spec: str | device, index: int | None = None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, num = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise InvalidValue(
                f"device: unknown device type {kind!r} in {spec!r}; use 'cpu' or 'cuda'"
            )
        if num:
            if not num.isdigit():
                raise InvalidValue(f"device: bad device index in {spec!r}")
            index = int(num)
        if kind == "cpu":
            index = None
        elif index is None:
            index = current_cuda[0]
        self.type, self.index = kind, index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, TypeError):
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __enter__(self) -> device:
        """``with dl.device("cuda"):``: the default device inside the block, as torch's."""
        _outer_devices.append(_default_device[0])
        _default_device[0] = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _default_device[0] = _outer_devices.pop()


# The CUDA device that 'cuda' without an index means: dl.cuda.set_device changes it.
current_cuda = [0]
CPU = device("cpu")
_default_device = [CPU]  # (a list: set_default_device rebinds its one item)
_outer_devices: list[device] = []  # the defaults that ``with device(...)`` blocks replaced


def set_default_device(spec: Any) -> None:
    """The device that creation functions use when not given one (``dl.zeros(2)``,
    ``dl.tensor([1.0])``, a module's parameters), as ``torch.set_default_device``; None
    (or 'cpu') sets it back to the CPU. Tensors made from tensors or arrays keep their
    own device, and ``*_like`` functions their input's."""
    _default_device[0] = CPU if spec is None else as_device(spec)


def get_default_device() -> device:
    return _default_device[0]


def as_device(spec: Any) -> device:
    """Normalise 'cpu', 'cuda', 'cuda:1', an int (a CUDA index) or a device to a device."""
    if isinstance(spec, device):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return device("cuda", spec)
    return device(spec)


def _loaded_cupy() -> ModuleType | None:
    """CuPy if something imported it already: no array can be a CuPy array before that, so
    asking about CPU data never imports CuPy (nor initialises the CUDA driver)."""
    return sys.modules.get("cupy")


def get_xp(arr: Any) -> ModuleType:
    """The array module (numpy or cupy) that owns ``arr``."""
    if isinstance(arr, np.ndarray | np.generic):
        return np
    cp = _loaded_cupy()
    if cp is not None and isinstance(arr, cp.ndarray):
        return cp
    return np


def is_cuda_array(arr: Any) -> bool:
    if isinstance(arr, np.ndarray | np.generic):
        return False
    cp = _loaded_cupy()
    return cp is not None and isinstance(arr, cp.ndarray)


def device_of(arr: Any) -> device:
    if is_cuda_array(arr):
        return device("cuda", int(arr.device.id))
    return CPU


def xp_for(dev: device) -> ModuleType:
    """The array module for a device; raises a clear error where CUDA is missing."""
    if dev.type == "cpu":
        return np
    cp = _cupy()
    if cp is None:
        raise RuntimeError(
            "CUDA was asked for but is not available: install the 'gpu' extra "
            "(pip install -e '.[gpu]') on a machine with an NVIDIA GPU, or use device='cpu'"
        )
    if dev.index is not None and dev.index >= cp.cuda.runtime.getDeviceCount():
        raise RuntimeError(
            f"CUDA device {dev.index} was asked for but only "
            f"{cp.cuda.runtime.getDeviceCount()} device(s) exist"
        )
    return cp


def on_device_of(arr: Any) -> Any:
    """``arr``'s GPU as a context manager (nothing on the CPU, or with one GPU): CuPy
    allocates, launches kernels and picks darklib's generator stream on the *current* GPU,
    which need not be the one holding ``arr``."""
    if one_gpu or not is_cuda_array(arr):
        return contextlib.nullcontext()
    return arr.device


def to_device(arr: Any, dev: device) -> Any:
    """Move an array to ``dev`` (no copy when it is already there)."""
    if dev.type == "cpu":
        if is_cuda_array(arr):
            return arr.get()
        return arr
    cp = xp_for(dev)
    if isinstance(arr, cp.ndarray) and arr.device.id == dev.index:
        return arr
    with cp.cuda.Device(dev.index):
        # always a copy, as torch's .to(): asarray may alias host memory on systems with
        # unified memory (CUPY_ENABLE_UMP), so that writes would show on both sides
        return cp.array(arr, copy=True)


def to_numpy(arr: Any) -> np.ndarray:
    return arr.get() if is_cuda_array(arr) else np.asarray(arr)


def pinned_empty(shape: tuple, dtype: Any) -> np.ndarray:
    """A NumPy array in page-locked host memory (copies to the GPU from it are faster and
    can overlap computation), from CuPy's pinned allocator."""
    import cupyx

    return cupyx.empty_pinned(shape, dtype)


def is_pinned_array(arr: Any) -> bool:
    """Whether a NumPy array lies in page-locked memory from CuPy's pinned allocator."""
    base = arr
    while getattr(base, "base", None) is not None:
        base = base.base
    return type(base).__name__ == "PinnedMemoryPointer"


def gpu_special(name: str) -> Any:
    """A one-kernel special-function ufunc of CuPy's (``cupyx.scipy.special.erf``, ``erfc``:
    float32 and float64 loops; SciPy not needed)."""
    import cupyx.scipy.special

    return getattr(cupyx.scipy.special, name)


def gpu_scatter(name: str) -> Any:
    """CuPy's ``cupyx.scatter_add`` / ``scatter_max`` / ``scatter_min`` (``a[idx] += v``,
    ``a[idx] = max(a[idx], v)``... with repeated indices), where CuPy's ufuncs have no
    ``.at`` (or its bincount would sync)."""
    import cupyx

    return getattr(cupyx, name)


# NumPy warns (RuntimeWarning) on overflow, 0/0, log(0) and the like, where torch is silent:
# inf and NaN are values of a tensor, not events. darklib's ops run with NumPy's
# floating-point errors ignored: ``token = fp_errors.set(FP_SILENT)`` before,
# ``fp_errors.reset(token)`` after. NumPy >= 2 keeps that state in a context variable,
# which costs 0.2 us to set and reset per op (np.errstate: 0.9 us, a quarter of an op).
try:
    from numpy._core._ufunc_config import _extobj_contextvar as fp_errors

    with np.errstate(all="ignore"):
        FP_SILENT = fp_errors.get()
except ImportError:  # NumPy 1.x: the same two calls through np.errstate

    class _Errstate:
        def set(self, _: Any) -> Any:
            state = np.errstate(all="ignore")
            state.__enter__()
            return state

        def reset(self, state: Any) -> None:
            state.__exit__(None, None, None)

    fp_errors, FP_SILENT = _Errstate(), None
