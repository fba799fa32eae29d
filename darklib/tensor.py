"""The Tensor: one ndarray (numpy or cupy) plus the fields autograd needs.

Arithmetic and the other op methods are bound in ``darklib/_methods.py``; this file holds
what a tensor *is*: its array, dtype, device, conversions, in-place updates and backward.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from darklib import autograd
from darklib import dtypes as _dt
from darklib.autograd.function import Function  # (its package is still loading here)
from darklib.backend import device, device_of, get_xp, is_cuda_array, to_device, to_numpy
from darklib.backend import is_pinned_array as _backend_is_pinned
from darklib.errors import InvalidType, InvalidValue, OutOfRange

device_cls = device


class _LeafHooks(list):
    """A leaf's gradient hooks (the list: called with the gradient, before it is added to
    ``.grad``) and its post-accumulate-grad hooks (``post``: called with the tensor
    after)."""

    __slots__ = ("post",)

    def __init__(self) -> None:
        super().__init__()
        self.post: list = []


def _retained_on_older_node() -> None:
    """The ``_retained`` of the node a shape-changing in-place op gave a tensor whose
    retain_grad() stays on its older node: it delivers nothing, but counts as retained."""
    return None


class RemovableHandle:
    """What the ``register_*hook`` methods of tensors, modules and optimizers return
    (torch's ``utils.hooks.RemovableHandle``): ``handle.remove()`` takes the hook off again,
    and ``with handle:`` at the end of the block. ``hooks`` is where the hook was put: a
    list holding ``hook``, or a dict holding it under ``handle.id``."""

    __slots__ = ("_hook", "_hooks", "id")
    _next_id = itertools.count()

    def __init__(self, hooks: list | dict, hook: Callable | None = None) -> None:
        self._hooks, self._hook = hooks, hook
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        if isinstance(self._hooks, dict):
            self._hooks.pop(self.id, None)
        elif self._hook in self._hooks:
            self._hooks.remove(self._hook)

    __call__ = remove  # (the earlier API returned a function that removed the hook)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class Size(tuple):
    """A tensor's shape: a tuple of ints (``torch.Size``), with ``numel()``."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, key: Any) -> Any:
        out = tuple.__getitem__(self, key)
        return Size(out) if isinstance(key, slice) else out

    def __repr__(self) -> str:
        return f"darklib.Size({list(self)})"

    # a Size joined with or repeated from a tuple is a Size, as torch's
    def __add__(self, other: Any) -> Any:
        out = tuple.__add__(self, other)
        return Size(out) if isinstance(other, tuple) else out

    def __radd__(self, other: Any) -> Any:
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n: Any) -> Any:
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__


_TYPE_NAMES = {
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "float16": "HalfTensor",
    "int64": "LongTensor",
    "int32": "IntTensor",
    "int16": "ShortTensor",
    "int8": "CharTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
    "uint16": "UInt16Tensor",
    "uint32": "UInt32Tensor",
    "uint64": "UInt64Tensor",
}


class NamedConstant:
    """A named singleton that prints as ``darklib.<name>`` (torch's memory formats and
    layouts)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"darklib.{self._name}"


class memory_format(NamedConstant):
    """A memory layout, as ``torch.memory_format``: ``contiguous_format`` (row-major),
    ``preserve_format`` (the source's layout: the default of clone and the ``*_like``
    functions), ``channels_last`` (NCHW tensors stored as NHWC, rank 4) and
    ``channels_last_3d`` (NCDHW stored as NDHWC, rank 5). ``stride()`` shows the layout."""

    __slots__ = ()


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
# the dims of a channels-last layout, innermost first (torch's order), and its permutation
_CL_ORDER = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}
_CL_PERM = {4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}


def check_memory_format(fmt: Any, op: str, ndim: int | None = None) -> Any:
    """``fmt`` (None for the default) checked: a memory_format, of a rank ``ndim`` fits."""
    if fmt is None:
        return fmt
    if not isinstance(fmt, memory_format):
        raise InvalidType(
            f"{op}(): argument 'memory_format' must be darklib.memory_format, not "
            f"{type(fmt).__name__}"
        )
    need = {channels_last: 4, channels_last_3d: 5}.get(fmt)
    if need is not None and ndim is not None and ndim != need:
        raise RuntimeError(
            f"{op}(): required rank {need} tensor to use {fmt._name} format, got a tensor of "
            f"rank {ndim}"
        )
    return fmt


def is_channels_last(shape: tuple, strides: tuple) -> bool:
    """torch's channels-last contiguity (strides in elements; size-1 dims ignored)."""
    order = _CL_ORDER.get(len(shape))
    if order is None:
        return False
    expected = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def laid_out(arr: Any, fmt: Any) -> Any:
    """A copy of ``arr`` in the layout ``fmt`` (a memory_format; None: preserve)."""
    if fmt is channels_last or fmt is channels_last_3d:
        perm = _CL_PERM[arr.ndim]
        inv = tuple(int(i) for i in np.argsort(perm))
        return get_xp(arr).ascontiguousarray(arr.transpose(perm)).transpose(inv)
    return arr.copy(order="C" if fmt is contiguous_format else "K")


def check_bool(value: Any, op: str, name: str) -> None:
    """Refuse a flag that is not a bool (torch takes no 0/1, string or None there)."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidType(f"{op}(): argument '{name}' must be bool, not {type(value).__name__}")


class Tensor:
    """A multi-dimensional array that records the ops applied to it for autograd.

    Build one with :func:`darklib.tensor` (``dl.tensor([[1., 2.]], requires_grad=True)``).
    ``array`` is the underlying numpy or cupy ndarray.
    """

    __slots__ = (
        "__weakref__",
        "_grad",
        "_hooks",
        "_requires_grad",
        "_reshaped",
        "_ver",
        "_view",
        "_viewed",
        "array",
        "grad_fn",
    )
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected ops

    def __new__(cls, *args: Any, **kwargs: Any) -> Tensor:
        if cls is Tensor and len(args) == 1 and not kwargs and isinstance(args[0], Tensor):
            return args[0].view_as(args[0])  # Tensor(t): an alias of t, as torch's (its dtype)
        # view bookkeeping defaults, also for subclasses (Parameter) that set the other fields
        t = object.__new__(cls)
        t._view = None
        t._viewed = False
        t._reshaped = None
        return t

    def __init__(
        self,
        *args: Any,
        dtype: Any = None,
        device: Any = None,
        requires_grad: bool = False,
    ):
        """As ``torch.Tensor``: ``Tensor(data)`` holds ``data`` in the default float dtype,
        ``Tensor(*sizes)`` (ints, or one Size) is a tensor of that shape (zeros here),
        ``Tensor()`` an empty one, ``Tensor(t)`` of a tensor an alias of ``t`` (its dtype, its
        memory, in its graph). ``dl.tensor`` is the usual way to make one from data."""
        if hasattr(self, "array"):  # Tensor(t): __new__ returned the alias, already made
            return
        from darklib.creation import _to_array, zeros

        if len(args) == 1 and not isinstance(args[0], Size):
            data = args[0]
            if data is None:
                data = []
            elif isinstance(data, int | np.integer) and not isinstance(data, bool | np.bool_):
                args, data = (int(data),), None  # a size
            elif isinstance(data, bool | float | complex | np.generic):
                raise TypeError(
                    f"Tensor(): data must be a sequence, got {type(data).__name__} (as torch; "
                    "use dl.tensor(value) for a 0-d tensor)"
                )
        else:
            data = [] if not args else None
        if data is None:  # Tensor(*sizes)
            sizes = args[0] if len(args) == 1 and isinstance(args[0], Size) else args
            if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in sizes):
                raise TypeError(
                    f"Tensor(*sizes): sizes must be ints, got {tuple(args)}; for data, pass "
                    "one sequence: Tensor([1.0, 2.0])"
                )
            arr = zeros(*(int(n) for n in sizes), dtype=dtype, device=device).array
        else:
            arr = _to_array(data, dtype, device, float_default=True)
        self.array = arr
        self._requires_grad = False
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Node | None = None
        self._ver = 0
        self._hooks: list | None = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr: Any, requires_grad: bool = False) -> Tensor:
        """Fast path for the engine: wrap an ndarray without checks or copies."""
        t = object.__new__(cls)
        if isinstance(arr, np.generic):  # NumPy ufuncs hand back scalars for 0-d inputs
            arr = np.asarray(arr)
        t.array = arr
        t._requires_grad = requires_grad
        t._grad = None
        t.grad_fn = None
        t._ver = 0
        t._view = None
        t._viewed = False
        t._reshaped = None
        t._hooks = None
        return t

    # ------------------------------------------------------------------ views
    # A view shares its base's memory: ``_view`` is (base, steps, base version when last
    # synced), ``steps`` the (Function, params) that rebuild it from the base, or None for an
    # alias outside autograd (detach). Base and views share one version counter, kept on
    # the base, and in-place changes to either are seen by both, values and gradients.
    # A viewed base reshaped in place (t_, unsqueeze_, ...) keeps ``_reshaped``: its first
    # shape and the steps from there to its current shape and back. Its views' steps start
    # from that first shape (later views get the forward steps in front), so that the way
    # back (:meth:`_steps_from_base`) rebuilds every view from the current base.
    @property
    def _version(self) -> int:
        v = self._view
        return self._ver if v is None else v[0]._ver

    @_version.setter
    def _version(self, value: int) -> None:
        v = self._view
        if v is None:
            self._ver = value
        else:
            v[0]._ver = value

    def _as_view_of(self, src: Tensor, step: tuple | None) -> Tensor:
        """Record that this tensor's array is a view of ``src``'s (made by ``step``)."""
        v = src._view
        if v is None:
            base = src
            if step is None:
                steps = None
            else:
                r = base._reshaped
                steps = (step,) if r is None else (*r[1], step)
        else:
            base = v[0]
            steps = None if step is None or v[1] is None else v[1] + (step,)
        base._viewed = True
        self._view = (base, steps, base._ver)
        return self

    @staticmethod
    def _steps_from_base(base: Tensor, steps: tuple) -> tuple:
        """A view's ``steps`` as they apply to its base's current shape."""
        r = base._reshaped
        return steps if r is None else r[2] + steps

    def _sync_view(self) -> None:
        """Rebuild a view's grad_fn after its base changed in place (PyTorch does it lazily);
        a retain_grad() moves to the new node, so .grad is the current value's gradient."""
        base, steps, _ = self._view
        if steps is not None and base.grad_fn is not None and autograd.is_grad_enabled():
            t = base
            for fn, params in self._steps_from_base(base, steps):
                t = fn.apply(t, *params)
            self._retain_on(t.grad_fn)
            self.grad_fn, self._requires_grad = t.grad_fn, t._requires_grad
        self._view = (base, steps, base._ver)

    # ----------------------------------------------------------------- attributes
    @property
    def shape(self) -> Size:
        return Size(self.array.shape)

    def size(self, dim: int | None = None) -> Any:
        shape = self.array.shape
        if dim is None:
            return Size(shape)
        return shape[self._dim(dim, "size")]

    def _dim(self, dim: Any, op: str) -> int:
        """``dim`` wrapped into [0, ndim), with torch's errors (a 0-d tensor has no dim)."""
        n = self.array.ndim
        if type(dim) is int and -n <= dim < n:  # the common case first
            return dim % n
        from darklib.ops.shape import norm_dim

        if n == 0:
            norm_dim(dim, 0, op)  # (refuses a dim that is no integer)
            raise OutOfRange(f"{op}(): Dimension specified as {dim} but tensor has no dimensions")
        return norm_dim(dim, n, op)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self.array.size)

    nelement = numel

    def stride(self, dim: int | None = None) -> Any:
        """Steps in elements (not bytes) between neighbours along each dim."""
        st = tuple(s // self.array.itemsize for s in self.array.strides)
        return st if dim is None else st[self._dim(dim, "stride")]

    def data_ptr(self) -> int:
        """The address of the first element (0 for an empty tensor), as torch's: tensors
        that view one memory from the same element have the same data_ptr."""
        from darklib.ops.shape import _address

        return 0 if self.array.size == 0 else _address(self.array)

    def pin_memory(self, device: Any = None) -> Tensor:
        """A copy of this CPU tensor in page-locked host memory, for faster (and
        non-blocking) copies to the GPU, as torch's; refused where no GPU is available, as
        torch refuses it without an accelerator. Gradients pass through."""
        from darklib import cuda

        if not cuda.is_available():
            raise RuntimeError("Cannot access accelerator device when none is available.")
        if self.is_cuda:
            raise RuntimeError(f"cannot pin '{self.type()}' only dense CPU tensors can be pinned")
        return _ToPinned.apply(self)

    def is_pinned(self, device: Any = None) -> bool:
        """Whether this tensor lies in page-locked host memory (:meth:`pin_memory`)."""
        return not self.is_cuda and _backend_is_pinned(self.array)

    def storage_offset(self) -> int:
        """Elements from the start of the memory this tensor views to its first element."""
        from darklib.ops.shape import storage_offset

        return storage_offset(self.array)

    def is_signed(self) -> bool:
        return self.array.dtype.kind in "if"

    def is_nonzero(self) -> bool:
        """The one element as a bool, as torch: a tensor of any other size is refused."""
        n = self.array.size
        if n != 1:
            raise RuntimeError(
                "is_nonzero(): Boolean value of Tensor with "
                + ("no values" if n == 0 else "more than one value")
                + f" is ambiguous (shape {list(self.shape)})"
            )
        return bool(self.item())

    def get_device(self) -> int:
        """The CUDA device index, -1 for a CPU tensor (as torch)."""
        dev = self.device
        return -1 if dev.type == "cpu" else (dev.index or 0)

    @property
    def real(self) -> Tensor:
        """The real part: a real tensor itself (as torch, for non-complex dtypes)."""
        return self

    @real.setter
    def real(self, value: Any) -> None:
        self.copy_(value)

    @property
    def imag(self) -> Tensor:
        raise RuntimeError(
            f"imag is not implemented for tensors with non-complex dtypes (this one is "
            f"{self.dtype}; darklib has no complex tensors)"
        )

    @imag.setter
    def imag(self, value: Any) -> None:
        self.imag  # noqa: B018 (refuses, as torch)

    def is_complex(self) -> bool:
        return False

    def element_size(self) -> int:
        return self.array.itemsize

    @property
    def dtype(self) -> _dt.dtype:
        return _dt.from_numpy_dtype(self.array.dtype)

    @property
    def device(self) -> device:
        return device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return is_cuda_array(self.array)

    @property
    def is_cpu(self) -> bool:
        return not is_cuda_array(self.array)

    def is_inference(self) -> bool:
        """False: darklib has no inference tensors (``inference_mode`` only disables
        recording), so no tensor is one."""
        return False

    def is_same_size(self, other: Tensor) -> bool:
        if not isinstance(other, Tensor):
            raise InvalidType(
                f"is_same_size(): argument 'other' (position 1) must be Tensor, not "
                f"{type(other).__name__}"
            )
        return self.array.shape == other.array.shape

    @property
    def _base(self) -> Tensor | None:
        """The tensor whose memory this view shares (the first base of a view of a view),
        as torch's ``_base``; None for a tensor that is no view (and for a detached alias,
        which is outside autograd)."""
        v = self._view
        return None if v is None or v[1] is None else v[0]

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's array, outside the graph (PyTorch's ``.data``)."""
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value: Any) -> None:
        self.array = value.array if isinstance(value, Tensor) else value
        self._version += 1

    # ----------------------------------------------------------------- conversions
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The NumPy array (shared memory); ``force=True`` detaches and copies off the GPU."""
        if force:
            return to_numpy(self.array)
        if self.requires_grad:
            raise RuntimeError(
                "numpy(): cannot convert a tensor that requires grad; use .detach().numpy()"
            )
        if is_cuda_array(self.array):
            raise InvalidType("numpy(): the tensor is on cuda; use .cpu().numpy()")
        return self.array

    def item(self) -> Any:
        if self.array.size != 1:  # (torch: RuntimeError from item(), ValueError from int())
            raise InvalidValue(
                f"item(): only a one-element tensor converts to a Python number, "
                f"this one has shape {tuple(self.shape)}"
            )
        return to_numpy(self.array).reshape(()).item()

    def tolist(self) -> Any:
        return to_numpy(self.array).tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if is_cuda_array(self.array):  # as torch: no silent copy to the host
            raise InvalidType("can't convert a cuda tensor to a NumPy array; use .cpu() first")
        arr = self.array
        return arr if dtype is None else arr.astype(dtype)

    def to(
        self,
        *args: Any,
        dtype: Any = None,
        device: Any = None,
        copy: bool = False,
        non_blocking: bool = False,
        memory_format: Any = None,
    ) -> Tensor:
        """``to('cuda')``, ``to(dl.float64)``, ``to('cpu', dl.float32)`` or ``to(other)``,
        each optionally followed by torch's positional ``non_blocking`` and ``copy`` flags
        (``to('cpu', dl.float64, True)``); ``memory_format`` lays the result out as
        :meth:`contiguous` does."""
        from darklib.backend import as_device

        flags = [a for a in args if isinstance(a, bool | np.bool_)]
        if flags:
            if (
                len(flags) > 2
                or len(flags) == len(args)
                or not all(isinstance(a, bool | np.bool_) for a in args[len(args) - len(flags) :])
            ):
                raise InvalidType(
                    f"to() received an invalid combination of arguments: {args!r}; expected "
                    "(device, dtype, non_blocking, copy), (dtype, non_blocking, copy) or "
                    "(tensor, non_blocking, copy)"
                )
            # (flags[0] is non_blocking: transfers are synchronous here)
            args = args[: len(args) - len(flags)]
            if len(flags) == 2:
                copy = copy or bool(flags[1])
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str | device_cls) or (
                isinstance(a, int) and not isinstance(a, bool)
            ):
                device = a
            else:
                dtype = a
        out = self
        if device is not None:
            dev = as_device(device)
            if dev != self.device:
                out = _ToDevice.apply(out, dev)
        if dtype is not None:
            npd = _dt.to_numpy_dtype(dtype)
            if npd != out.array.dtype:
                out = _Cast.apply(out, npd)
        fmt = check_memory_format(memory_format, "to", self.array.ndim)
        if fmt is not None and fmt is not preserve_format and not out.is_contiguous(fmt):
            out = out.clone(memory_format=fmt)
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Tensor:
        return self.to("cuda" if device is None else device)

    def float(self) -> Tensor:
        return self.to(_dt.float32)

    def double(self) -> Tensor:
        return self.to(_dt.float64)

    def half(self) -> Tensor:
        return self.to(_dt.float16)

    def long(self) -> Tensor:
        return self.to(_dt.int64)

    def int(self) -> Tensor:
        return self.to(_dt.int32)

    def bool(self) -> Tensor:
        return self.to(_dt.bool)

    def byte(self) -> Tensor:
        return self.to(_dt.uint8)

    def char(self) -> Tensor:
        return self.to(_dt.int8)

    def short(self) -> Tensor:
        return self.to(_dt.int16)

    @property
    def itemsize(self) -> int:
        return self.array.itemsize

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    def type(self, dtype: Any = None) -> Any:
        """``x.type()`` names the type ('darklib.FloatTensor'); ``x.type(dtype)`` casts."""
        if dtype is None:
            prefix = "darklib.cuda." if self.is_cuda else "darklib."
            return prefix + _TYPE_NAMES[self.dtype.name]
        if isinstance(dtype, type) and isinstance(getattr(dtype, "dtype", None), _dt.dtype):
            dtype = dtype.dtype  # a legacy constructor: x.type(dl.FloatTensor)
        if isinstance(dtype, str) and dtype.rsplit(".", 1)[-1] in _TYPE_NAMES.values():
            name = dtype.rsplit(".", 1)[-1]
            dtype = _dt._BY_NAME[next(k for k, v in _TYPE_NAMES.items() if v == name)]
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        if not isinstance(other, Tensor):
            raise InvalidType(
                f"type_as(): argument 'other' (position 1) must be Tensor, not "
                f"{type(other).__name__}"
            )
        return self.to(other.dtype)

    def detach(self) -> Tensor:
        """A tensor sharing this one's memory (and version counter), outside the graph."""
        return Tensor._wrap(self.array)._as_view_of(self, None)

    def detach_(self) -> Tensor:
        if self._view is not None and self._view[1] is not None:
            raise RuntimeError(
                "detach_(): can't detach a view in place (it is rebuilt from its base when "
                "that changes); use .detach() instead"
            )
        self.grad_fn = None
        self._requires_grad = False
        return self

    def clone(self, *, memory_format: Any = None) -> Tensor:
        """A copy in the graph, laid out as this tensor (a transposed tensor's clone is
        transposed too: torch's default preserve_format), or in ``memory_format``."""
        fmt = check_memory_format(memory_format, "clone", self.array.ndim)
        return _Clone.apply(self, None if fmt is preserve_format else fmt)

    def contiguous(self, memory_format: Any = None) -> Tensor:
        """This tensor if it is laid out in ``memory_format`` (row-major by default), else
        a copy that is."""
        fmt = check_memory_format(memory_format, "contiguous", self.array.ndim)
        if self.is_contiguous(memory_format=fmt):
            return self
        if fmt is preserve_format:
            raise RuntimeError(
                "contiguous(): preserve memory format is unsupported by the contiguous operator"
            )
        return _Clone.apply(self, contiguous_format if fmt is None else fmt)

    def is_contiguous(self, memory_format: Any = None) -> bool:
        fmt = check_memory_format(memory_format, "is_contiguous")
        if fmt is channels_last or fmt is channels_last_3d:
            return is_channels_last(self.array.shape, self.stride())
        return bool(self.array.flags.c_contiguous)

    def resize_(self, *sizes: Any, memory_format: Any = None) -> Tensor:
        """Give this tensor the shape ``sizes`` in place, as torch: the first elements of
        its storage (from its offset), row-major (or ``channels_last``); a larger size
        reallocates, keeping the old elements first (the new ones are zeros here,
        uninitialised in torch). Only for tensors that do not require grad. Views of the
        old storage do not see a reallocated one (in torch they share it)."""
        from darklib.creation import _shape
        from darklib.ops.shape import storage_of, storage_offset

        if self._requires_grad:
            raise RuntimeError(
                "resize_(): cannot resize variables that require grad; resize a .detach()ed "
                "copy, or build a new tensor"
            )
        if not sizes:
            raise InvalidType('resize_() missing 1 required positional arguments: "size"')
        fmt = check_memory_format(memory_format, "resize_")
        if fmt is preserve_format:
            raise RuntimeError("resize_(): Unsupported memory format preserve_format")
        shape = _shape(sizes, "resize_")
        arr = self.array
        if shape == tuple(arr.shape) and fmt is None:
            return self
        check_memory_format(fmt, "resize_", len(shape))
        n = math.prod(shape)
        xp = get_xp(arr)
        root = storage_of(arr)
        plain = (
            type(root) is type(arr)
            and root.dtype == arr.dtype
            and root.flags.c_contiguous
            and root.size > 0
        )
        off = storage_offset(arr) if plain else 0
        if plain and off + n <= root.size:
            flat, moved = root.reshape(-1)[off : off + n], False
        else:  # a new storage, the old elements first
            old = root.reshape(-1)[off:] if plain else arr.reshape(-1)
            flat, moved = xp.zeros(n, arr.dtype), True
            k = min(n, old.size)
            flat[:k] = old[:k]
        if fmt is channels_last or fmt is channels_last_3d:
            perm = _CL_PERM[len(shape)]
            inv = tuple(int(i) for i in np.argsort(perm))
            new = flat.reshape(tuple(shape[p] for p in perm)).transpose(inv)
        else:
            new = flat.reshape(shape)
        version = self._version
        if moved:
            self._view = None
        elif self._view is not None:  # still in the base's memory, now outside autograd
            base = self._view[0]
            self._view = (base, None, base._ver)
        self.array = new
        if self._view is None:
            self._ver = version
        if shape != tuple(arr.shape) or fmt is not None:
            self._version += 1
        return self

    def resize_as_(self, other: Tensor, *, memory_format: Any = None) -> Tensor:
        return self.resize_(tuple(other.shape), memory_format=memory_format)

    # ----------------------------------------------------------------- autograd
    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by backward (None until then)."""
        g = self._grad
        if g is None and self.grad_fn is not None and self.grad_fn._retained is None:
            warnings.warn(
                "The .grad attribute of a tensor that is not a leaf is being read: it is not "
                "filled by backward (it stays None). Call .retain_grad() on it before "
                "backward if you want its gradient, or read the leaf's .grad instead.",
                UserWarning,
                stacklevel=2,
            )
        return g

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:  # as torch: a gradient must fit its tensor
            if not isinstance(value, Tensor):
                raise InvalidType(
                    f"assigned grad expected to be a Tensor or None, got {type(value).__name__}"
                )
            if value.array.shape != self.array.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: gradient of shape "
                    f"{list(value.shape)} for a tensor of shape {list(self.shape)}"
                )
            if value.array.dtype != self.array.dtype:
                raise RuntimeError(
                    f"assigned grad has data of a different type: {value.dtype} for a tensor "
                    f"of {self.dtype}"
                )
            if type(value.array) is not type(self.array):
                raise RuntimeError(
                    f"assigned grad has data located on a different device: {value.device} "
                    f"for a tensor on {self.device}"
                )
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded for backward. Only a leaf's flag
        can be set, and only a floating-point tensor's to True (as in torch)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if not isinstance(value, bool | np.bool_):
            raise InvalidType(f"requires_grad must be a bool, not {type(value).__name__}")
        if self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad: only leaf tensors can change it, and this one is the output "
                "of an op; use .detach() to get a tensor outside the graph"
            )
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        check_bool(requires_grad, "requires_grad_", "requires_grad")
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "requires_grad = False: only leaf tensors can stop requiring grad, and this "
                "one is the output of an op; use .detach() to get a tensor outside the graph"
            )
        if requires_grad and self.array.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, this one is {self.dtype}"
            )
        self._requires_grad = bool(requires_grad) or self.grad_fn is not None
        return self

    @property
    def retains_grad(self) -> bool:
        """Whether this non-leaf keeps its ``.grad`` after backward (see :meth:`retain_grad`)."""
        return self.grad_fn is not None and self.grad_fn._retained is not None

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError(
                "retain_grad: this tensor does not require grad (it has requires_grad=False), "
                "so backward gives it no gradient to retain"
            )
        if self.grad_fn is None or self.grad_fn._retained is not None:
            return
        import weakref

        self.grad_fn._retained = weakref.ref(self)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: the tensor does not require grad")
        if self.grad_fn is not None:
            hooks = self.grad_fn._out_hooks
            if hooks is None:
                hooks = self.grad_fn._out_hooks = []
        else:
            if self._hooks is None:
                self._hooks = _LeafHooks()
            hooks = self._hooks
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        """Call ``hook(tensor)`` after backward has added to this leaf's ``.grad`` (as
        torch: for optimizers that step inside backward). Leaves only."""
        if not self.requires_grad:
            raise RuntimeError(
                "register_post_accumulate_grad_hook: the tensor does not require grad"
            )
        if self.grad_fn is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors"
            )
        if self._hooks is None:
            self._hooks = _LeafHooks()
        self._hooks.post.append(hook)
        return RemovableHandle(self._hooks.post, hook)

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's signature)."""
        autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ----------------------------------------------------------------- in place
    def _inplace(self, name: str, fn: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
        """Run the out-of-place ``fn(self, *args)`` and make its result this tensor's value.

        Without autograd (no_grad, as optimizers update parameters) the result is written
        into the existing array. With autograd, a tensor that shares no memory is simply
        rebased onto the op's graph node; a view or a viewed tensor gets the result written
        into the shared memory, and a view's base is rebased onto a node that routes the
        gradient of the written region to the op (PyTorch's CopySlices). Nodes that saved
        the old value refuse to run backward on the changed one (version counter).
        """
        view = self._view
        if view is not None and view[2] != view[0]._ver:
            self._sync_view()
        track = autograd.is_grad_enabled() and (
            self.requires_grad
            or any(isinstance(a, Tensor) and a.requires_grad for a in args)
            or (view is not None and view[1] is not None and view[0].requires_grad)
        )
        if not track:
            with autograd.no_grad():
                res = fn(Tensor._wrap(self.array), *args, **kwargs)
            self._check_inplace_result(name, res)
            self._write(name, res.array, name == "fill_")
            return self
        if self.grad_fn is None and self.requires_grad:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad is being changed in place; wrap "
                "the update in `with darklib.no_grad():` (as optimizers do) or clone it first"
            )
        if view is not None and view[1] is not None and view[0].grad_fn is None:
            if view[0].requires_grad:
                raise RuntimeError(
                    f"{name}: a view of a leaf tensor that requires grad is being changed in "
                    "place; clone the leaf first, or update it under `with darklib.no_grad():`"
                )
        shared = view is not None or self._viewed
        # a shared array may be overwritten below: the op must see (and save) a private copy
        before = Tensor._wrap(self.array.copy() if shared else self.array, self.requires_grad)
        before.grad_fn = self.grad_fn
        res = fn(before, *args, **kwargs)
        self._check_inplace_result(name, res)
        if res.array.dtype != self.array.dtype:
            res = res.to(self.dtype)
        if not res._requires_grad:  # (lt_, logical_and_, ...): zero gradients, as torch
            from darklib.ops.elementwise import ZeroGradient

            others = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
            res = ZeroGradient.apply(before, res, *others)
        if not shared:
            arr, a = res.array, self.array
            if arr.strides != a.strides and not (a.flags.c_contiguous and arr.flags.c_contiguous):
                # as torch, which writes into the tensor's memory: the value keeps its
                # layout (into a new array, as the op may have saved the old one)
                arr = _laid_out_as(arr, a)
            self.array = arr
            self._retain_on(res.grad_fn)
            self.grad_fn, self._requires_grad = res.grad_fn, res._requires_grad
            self._version += 1
            if self.grad_fn is not None:  # the op saved its output: it is this tensor now
                self.grad_fn._versions = [
                    (self if t is res else t, self._version if t is res else v)
                    for t, v in self.grad_fn._versions
                ]
            return self
        # (not a fill with a value that requires grad: its gradient would count shared
        # elements twice, and torch refuses it)
        fill = name == "fill_" and not (isinstance(args[0], Tensor) and args[0].requires_grad)
        self._write(name, res.array, fill)
        if view is None or view[1] is None:
            self._retain_on(res.grad_fn)
            self.grad_fn, self._requires_grad = res.grad_fn, res._requires_grad
            return self
        base, steps = view[0], view[1]
        old = Tensor._wrap(base.array, base.requires_grad)
        old.grad_fn = base.grad_fn
        new = _CopySlices.apply(old, res, self._steps_from_base(base, steps))
        base._retain_on(new.grad_fn)
        base.grad_fn, base._requires_grad = new.grad_fn, True
        self._sync_view()
        return self

    def _inplace_view(self, name: str, fn: Callable[..., Tensor], *args: Any) -> Tensor:
        """Give this tensor the shape of the view ``fn(self, *args)`` (squeeze_, t_, ...).

        The values and memory stay; the array becomes the view, the tensor takes the view
        op's graph node (so gradients reach the old shape), a view keeps its base with one
        more step, and the version counter moves on, as in PyTorch (nodes that saved this
        tensor refuse to run backward). A base keeps the way back to its old shape for the
        views taken of it (``_reshaped``), which are rebuilt from it. Refused where the
        graph could not follow: a leaf that requires grad (with grad mode on), and a tensor
        in a graph under no_grad (its grad_fn expects the old shape).
        """
        view = self._view
        if view is not None and view[2] != view[0]._ver:
            self._sync_view()
        grad_on = autograd.is_grad_enabled()
        if grad_on and self.grad_fn is None and self.requires_grad:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad is being changed in place; use the "
                f"out-of-place {name[:-1]}(), or change it under `with darklib.no_grad():`"
            )
        if grad_on and view is not None and view[0].grad_fn is None and view[0].requires_grad:
            raise RuntimeError(  # (as torch; a value changed in place in such a view too)
                f"{name}: a view of a leaf tensor that requires grad is being reshaped in "
                f"place; use the out-of-place {name[:-1]}(), or clone the leaf first"
            )
        if not grad_on and self.grad_fn is not None:
            raise RuntimeError(
                f"{name}: this tensor is the output of an op that expects its current shape; "
                f"under no_grad use the out-of-place {name[:-1]}() or .detach() it first"
            )
        viewed = self._viewed
        old_shape = self.array.shape
        res = fn(self, *args)
        self._viewed = viewed  # res viewed this tensor, which now takes res's place
        if view is None and viewed:  # views of this base follow it back to the old shape
            self._reshaped = _reshape_record(self, res, old_shape, name)
        self.array = res.array
        if res.grad_fn is not None:  # else a leaf, which stays one (requires_grad kept)
            # (a retain_grad() stays on the old node: .grad keeps the old shape, as torch's;
            # the new node only says so, and a second retain_grad() changes nothing)
            old = self.grad_fn
            if old is not None and old._retained is not None and old._retained() is self:
                res.grad_fn._retained = _retained_on_older_node
            self.grad_fn, self._requires_grad = res.grad_fn, True
        if view is not None:  # the same base, reached by one more step
            self._view = res._view
        self._version += 1
        if self._view is not None:
            base, steps, _ = self._view
            self._view = (base, steps, base._ver)
        return self

    def _retain_on(self, node: Any) -> None:
        """An in-place op gives this tensor the node ``node``: a retain_grad() made on its
        old node moves along, so .grad is the gradient of the new value (as in torch)."""
        old = self.grad_fn
        if old is not None and node is not None and old._retained is not None:
            if old._retained() is self:
                node._retained, old._retained = old._retained, None

    def _check_inplace_result(self, name: str, res: Tensor) -> None:
        if res.array.shape != self.array.shape:
            raise RuntimeError(
                f"{name}: the result of shape {tuple(res.array.shape)} does not fit the "
                f"tensor of shape {tuple(self.array.shape)} being updated in place"
            )
        kinds = "bif"  # bool < integer < float: an in-place result may not climb
        if kinds.index(self.array.dtype.kind.replace("u", "i")) < kinds.index(
            res.array.dtype.kind.replace("u", "i")
        ):
            raise RuntimeError(
                f"{name}: result type {res.dtype} can't be cast to the tensor's "
                f"{self.dtype} in place"
            )

    def _write(self, name: str, arr: Any, fill: bool = False) -> None:
        """Copy ``arr`` into this tensor's memory (seen by every view of it). As torch, a
        tensor whose elements share memory (an expanded view, overlapping windows) takes
        only a ``fill`` (one value everywhere), and its slices that do not overlap take
        any write (NumPy's broadcast views are made writable for them: ``_expanded``)."""
        a = self.array
        if not fill and a.size and _self_overlapping(a):
            raise RuntimeError(
                f"{name}: unsupported operation: more than one element of the written-to "
                "tensor refers to a single memory location. Please clone() the tensor before "
                f"performing the operation (shape {tuple(a.shape)}, strides {self.stride()}: "
                "an expanded view, or overlapping windows of unfold or as_strided)"
            )
        try:
            _dt.silent(a.__setitem__, Ellipsis, arr)  # a wider result overflowing: inf
        except ValueError:
            if getattr(a.flags, "writeable", True):
                raise
            raise RuntimeError(
                f"{name}: the tensor's memory is read-only (a NumPy array marked "
                "non-writeable, shared with the tensor); clone it before changing it in place"
            ) from None
        self._version += 1

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        return self._inplace("fill_", lambda t, v: _fill_like(t, v), value)

    def copy_(self, src: Any) -> Tensor:
        return self._inplace("copy_", lambda t, s: _copy_from(t, s), src)

    # ----------------------------------------------------------------- python protocol
    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise InvalidType("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.array.ndim == 0:
            raise InvalidType("iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.array.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iub" or self.array.size != 1:
            raise InvalidType("only integer tensors of a single element can be used as an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict) -> Tensor:
        """A new leaf with a copy of the data (and of ``.grad``), no longer a view of anything."""
        if id(self) in memo:
            return memo[id(self)]
        if self.grad_fn is not None:
            raise RuntimeError(
                "deepcopy: only tensors created explicitly by the user (graph leaves) can be "
                "deep-copied; .detach() it first"
            )
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name in ("__weakref__", "_view", "_viewed", "_reshaped") or not hasattr(
                    self, name
                ):
                    continue
                value = getattr(self, name)
                if name == "array":
                    value = value.copy()
                elif name == "_ver":
                    value = 0
                else:
                    value = copy.deepcopy(value, memo)
                setattr(new, name, value)
        return new

    def __repr__(self) -> str:
        arr = self.array
        if arr.size > _PRINT.threshold:  # the edges only: a CUDA tensor copies just those
            arr = _summarized(arr)
        arr = to_numpy(arr)
        suffixes = []
        if self.device.type != "cpu":
            suffixes.append(f"device='{self.device}'")
        default = {"f": _dt.default_float(), "i": np.int64, "b": np.bool_}.get(arr.dtype.kind)
        if arr.size == 0:
            if arr.ndim != 1:
                suffixes.append(f"size={tuple(self.shape)}")
            if arr.dtype != _dt.default_float():
                suffixes.append(f"dtype={self.dtype!r}")
        elif default is None or arr.dtype != default:
            suffixes.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        return _repr_like_torch(arr, suffixes, tuple(self.shape))

    def __format__(self, spec: str) -> str:
        if self.array.ndim == 0:
            return format(self.item(), spec)
        return repr(self)


# ------------------------------------------------------------------ ops used above
class _ToPinned(Function):
    """A copy in page-locked host memory; the gradient passes through."""

    @staticmethod
    def forward(ctx, x):
        from darklib.backend import pinned_empty

        out = pinned_empty(x.shape, x.dtype)
        out[...] = x
        return out

    @staticmethod
    def backward(ctx, g):
        return g

    @staticmethod
    def backward_graph(ctx, g):
        return g


class _ToDevice(Function):
    @staticmethod
    def forward(ctx, x, dev):
        ctx.src = device_of(x)
        return to_device(x, dev)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.src), None

    @staticmethod
    def backward_graph(ctx, g):
        return g.to(ctx.src), None


class _Cast(Function):
    @staticmethod
    def forward(ctx, x, npd):
        ctx.src = x.dtype
        return x.astype(npd)

    @staticmethod
    def backward(ctx, g):
        if ctx.src.kind != "f":
            return None, None
        return g.astype(ctx.src), None

    @staticmethod
    def backward_graph(ctx, g):
        return (g.to(ctx.src) if ctx.src.kind == "f" else None), None


def _dense_like(xp: Any, shape: tuple, dtype: Any, strides: tuple) -> Any:
    """An uninitialised array of ``shape`` whose dims lie in memory in the order of
    ``strides`` (an array's: the largest outermost)."""
    order = sorted(range(len(shape)), key=lambda d: -abs(strides[d]))
    if order == list(range(len(shape))):
        return xp.empty(shape, dtype)
    out = xp.empty(tuple(shape[d] for d in order), dtype)
    return out.transpose(tuple(int(i) for i in np.argsort(order)))


def _laid_out_as(arr: Any, like: Any) -> Any:
    """A copy of ``arr`` in the layout (dim order) of ``like``, an array of its shape."""
    out = get_xp(like).empty_like(like, dtype=arr.dtype)
    out[...] = arr
    return out


def _reshape_record(base: Tensor, res: Tensor, old_shape: tuple, name: str) -> tuple | None:
    """``base._reshaped`` after ``base`` (a viewed base) takes the shape of its view
    ``res``: (its first shape, the steps from there to the new shape, the steps back), or
    None once it is back in its first shape. Steps in a row of one kind fold into one, so
    that a base reshaped back and forth keeps a short record."""
    from darklib.ops.shape import Permute, Reshape

    first, fwd = (old_shape, ()) if base._reshaped is None else base._reshaped[:2]
    v = res._view
    if v is None or v[0] is not base or v[1] is None:
        raise RuntimeError(
            f"{name}: other tensors are views of this one and could not follow its new shape; "
            f"use the out-of-place {name[:-1]}() instead"
        )
    steps: list = []  # (Function, params, the shape it starts from)
    shape = tuple(first)
    for fn, params in (*fwd, *v[1][len(fwd) :]):
        if fn is Reshape:
            target = tuple(params[0])
            if steps and steps[-1][0] is Reshape:
                shape = steps.pop()[2]
            if target != shape:
                steps.append((Reshape, (target,), shape))
            shape = target
        elif fn is Permute:
            perm = tuple(int(p) for p in params[0])
            if steps and steps[-1][0] is Permute:
                _, (outer,), shape = steps.pop()
                perm = tuple(outer[p] for p in perm)
            if perm != tuple(range(len(perm))):
                steps.append((Permute, (perm,), shape))
            shape = tuple(shape[p] for p in perm)
        else:  # (the in-place view ops are reshapes and permutations)
            raise RuntimeError(f"{name}: no way back from the view step {fn.__name__}")
    if not steps:
        return None
    back = tuple(
        (Reshape, (start,))
        if fn is Reshape
        else (Permute, (tuple(int(i) for i in np.argsort(params[0])),))
        for fn, params, start in reversed(steps)
    )
    return first, tuple((fn, params) for fn, params, _ in steps), back


def _self_overlapping(a: Any) -> bool:
    """Whether two elements of ``a`` may share memory: going through the dims by stride,
    each step must pass everything the smaller ones span (a zero stride never does)."""
    span = a.itemsize - 1  # the last byte reached so far
    for st, n in sorted((abs(st), n) for n, st in zip(a.shape, a.strides) if n > 1):
        if st <= span:
            return True
        span += st * (n - 1)
    return False


class _Clone(Function):
    @staticmethod
    def forward(ctx, x, fmt):
        return laid_out(x, fmt)  # (ascontiguousarray would make a 0-d array 1-d)

    @staticmethod
    def backward(ctx, g):
        return g, None

    @staticmethod
    def backward_graph(ctx, g):
        return g, None


class _CopySlices(Function):
    """A base after one of its views was changed in place: the gradient of the written
    region goes to the op's result, the rest to the base's previous value."""

    @staticmethod
    def forward(ctx, base, src, steps):
        ctx.steps, ctx.strides = steps, base.strides
        return base  # already updated in place; this node only redirects gradients

    @staticmethod
    def backward(ctx, g):
        # a writable copy laid out as the base, so that the view steps (reshapes among
        # them) are views of it as they were of the base
        out = _dense_like(get_xp(g), g.shape, g.dtype, ctx.strides)
        out[...] = g
        region = out
        for fn, params in ctx.steps:
            region = fn.view(region, *params)
        g_src = region.copy() if ctx.needs_input_grad[1] else None
        region[...] = 0
        return out, g_src, None

    @staticmethod
    def backward_graph(ctx, g):
        # the written region of g (the same view ops, recorded) to src, the rest to the base
        keep = _dense_like(get_xp(g.array), g.shape, g.array.dtype, ctx.strides)
        keep[...] = 1
        kept = keep
        for fn, params in ctx.steps:
            kept = fn.view(kept, *params)
        kept[...] = 0
        g_src = None
        if ctx.needs_input_grad[1]:
            g_src = g
            for fn, params in ctx.steps:
                g_src = fn.apply(g_src, *params)
        return g * Tensor._wrap(keep), g_src, None


class _CopyFrom(Function):
    """``dst.copy_(src)``: the value (and gradient) come from src, broadcast to dst's shape."""

    @staticmethod
    def forward(ctx, dst, src):
        xp = get_xp(dst)
        return xp.broadcast_to(xp.asarray(src, dtype=dst.dtype), dst.shape).copy()

    @staticmethod
    def backward(ctx, g):
        # the overwritten value gets a zero gradient (torch's), not none: its leaves are
        # still reached, and their .grad is zeros
        return (get_xp(g).zeros_like(g) if ctx.needs_input_grad[0] else None), g

    @staticmethod
    def backward_graph(ctx, g):
        zero = Tensor._wrap(get_xp(g.array).zeros_like(g.array))
        return (zero if ctx.needs_input_grad[0] else None), g


def _fill_like(t: Tensor, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        if value.array.size != 1:
            raise RuntimeError(f"fill_: expected a one-element value, got shape {value.shape}")
        return _CopyFrom.apply(t, value.reshape(()))
    xp = get_xp(t.array)
    value = _dt.fill_value(value, t.array.dtype, "fill_")
    return Tensor._wrap(xp.full(t.array.shape, value, dtype=t.array.dtype))


def _copy_from(t: Tensor, src: Any) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor._wrap(get_xp(t.array).asarray(src))
    elif src.device != t.device:
        src = src.to(t.device)
    try:
        np.broadcast_shapes(src.array.shape, t.array.shape)
    except ValueError:
        raise RuntimeError(
            f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to the "
            f"destination's shape {tuple(t.shape)}"
        ) from None
    return _CopyFrom.apply(t, src)


# ------------------------------------------------------------------ repr, as PyTorch prints
class _PrintOptions:
    """How tensors print (``dl.set_printoptions``), torch's options and defaults."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_PRINT = _PrintOptions()
_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set how tensors print, as ``torch.set_printoptions``: ``precision`` digits after
    the point (4), summarise beyond ``threshold`` elements (1000) showing ``edgeitems``
    per end of each dim (3), ``linewidth`` characters per line (80); ``profile``
    ('default', 'short', 'full') sets those first; ``sci_mode`` True or False forces or
    forbids scientific notation (None, the default each call restores: chosen from the
    values)."""
    if profile is not None and profile not in _PROFILES:
        raise InvalidValue(
            f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got {profile!r}"
        )
    given = (
        ("precision", precision),
        ("threshold", threshold),
        ("edgeitems", edgeitems),
        ("linewidth", linewidth),
    )
    for name, value in given:  # checked first: a bad call changes nothing
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or value < 0 or (name != "threshold" and not isinstance(value, int)):
            kind = "a non-negative number" if name == "threshold" else "a non-negative int"
            raise InvalidValue(f"set_printoptions: {name} must be {kind}, got {value!r}")
    if sci_mode is not None and not isinstance(sci_mode, bool):
        raise InvalidValue(
            f"set_printoptions: sci_mode must be None, True or False, got {sci_mode!r}"
        )
    if profile is not None:
        for name, value in _PROFILES[profile].items():
            setattr(_PRINT, name, value)
    for name, value in given:
        if value is not None:
            setattr(_PRINT, name, value)
    _PRINT.sci_mode = sci_mode


def get_printoptions() -> dict:
    """The print options, as keyword arguments for :func:`set_printoptions`."""
    names = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")
    return {name: getattr(_PRINT, name) for name in names}


@contextlib.contextmanager
def printoptions(**options: Any) -> Any:
    """Print options changed inside a ``with`` block only."""
    old = get_printoptions()
    set_printoptions(**options)
    try:
        yield
    finally:
        set_printoptions(**old)


def _summarized(arr: Any) -> Any:
    """The elements a summarized print shows (first and last edge items per dim), on the
    array's own device."""
    xp = get_xp(arr)
    if arr.ndim == 0:
        return arr
    edge = _PRINT.edgeitems
    if arr.shape[0] > 2 * edge:
        arr = xp.concatenate((arr[:edge], arr[-edge:]))
    if arr.ndim == 1:
        return arr
    return xp.stack([_summarized(a) for a in arr])


class _Formatter:
    """Chooses one number format (integer-valued, fixed or scientific) and one width for all
    the elements shown, by PyTorch's rules."""

    def __init__(self, arr: np.ndarray):
        self.floating = arr.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        flat = arr.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.width = max(self.width, len(str(v)))
            return
        vals = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if vals.size == 0:
            return
        absv = np.abs(vals)
        lo, hi = float(absv.min()), float(absv.max())  # Python floats: 1e308 / 1e-310 is inf
        self.int_mode = bool((np.ceil(vals) == vals).all())
        self.sci_mode = (
            hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            if _PRINT.sci_mode is None
            else bool(_PRINT.sci_mode)
        )
        for v in vals.tolist():
            if self.sci_mode:
                n = len(f"{v:.{_PRINT.precision}e}")
            elif self.int_mode:
                n = len(f"{v:.0f}") + 1
            else:
                n = len(f"{v:.{_PRINT.precision}f}")
            self.width = max(self.width, n)

    def format(self, v: Any) -> str:
        if self.floating:
            if self.sci_mode:
                out = f"{v:{self.width}.{_PRINT.precision}e}"
            elif self.int_mode:
                out = f"{v:.0f}"
                if not (np.isinf(v) or np.isnan(v)):
                    out += "."
            else:
                out = f"{v:.{_PRINT.precision}f}"
        else:
            out = str(v)
        return " " * (self.width - len(out)) + out


def _format_nested(
    arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter, shape: tuple
) -> str:
    """``arr`` as torch prints it; ``shape`` is the tensor's, of which ``arr`` may hold only
    the summarized edges."""
    edge = _PRINT.edgeitems
    cut = summarize and shape[0] > 2 * edge
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        per_line = max(1, (_PRINT.linewidth - indent) // (fmt.width + 2))
        if cut:
            data = [fmt.format(v) for v in arr[:edge].tolist()] + [" ..."]
            data += [fmt.format(v) for v in arr[-edge:].tolist()]
        else:
            data = [fmt.format(v) for v in arr.tolist()]
        lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"
    inner = shape[1:]
    if cut:
        rows = [_format_nested(a, indent + 1, True, fmt, inner) for a in arr[:edge]] + ["..."]
        rows += [_format_nested(a, indent + 1, True, fmt, inner) for a in arr[-edge:]]
    else:
        rows = [_format_nested(a, indent + 1, summarize, fmt, inner) for a in arr]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _repr_like_torch(arr: np.ndarray, suffixes: list[str], shape: tuple) -> str:
    prefix = "tensor("
    indent = len(prefix)
    if arr.size == 0:
        body = "[]"
    else:
        summarize = len(shape) > 0 and math.prod(shape) > _PRINT.threshold
        fmt = _Formatter(_summarized(arr) if summarize else arr)
        body = _format_nested(arr, indent, summarize, fmt, shape)
    out = [prefix + body]
    last = len(out[0]) - out[0].rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > _PRINT.linewidth:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"
