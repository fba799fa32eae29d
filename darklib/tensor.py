"""The Tensor: one ndarray (numpy or cupy) plus the fields autograd needs.

Arithmetic and the other op methods are bound in ``darklib/_methods.py``; this file holds
what a tensor *is*: its array, dtype, device, conversions, in-place updates and backward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from darklib import autograd
from darklib import dtypes as _dt
from darklib.backend import device, device_of, get_xp, is_cuda_array, to_device, to_numpy

device_cls = device


class Tensor:
    """A multi-dimensional array that records the ops applied to it for autograd.

    Build one with :func:`darklib.tensor` (``dl.tensor([[1., 2.]], requires_grad=True)``).
    ``array`` is the underlying numpy or cupy ndarray.
    """

    __slots__ = ("__weakref__", "_hooks", "_version", "array", "grad", "grad_fn", "requires_grad")
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected ops

    def __init__(
        self,
        data: Any = None,
        *,
        dtype: Any = None,
        device: Any = None,
        requires_grad: bool = False,
    ):
        from darklib.creation import _to_array

        arr = _to_array([] if data is None else data, dtype, device, float_default=True)
        self.array = arr
        self.requires_grad = False
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Node | None = None
        self._version = 0
        self._hooks: list | None = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr: Any, requires_grad: bool = False) -> Tensor:
        """Fast path for the engine: wrap an ndarray without checks or copies."""
        t = object.__new__(cls)
        t.array = arr
        t.requires_grad = requires_grad
        t.grad = None
        t.grad_fn = None
        t._version = 0
        t._hooks = None
        return t

    # ----------------------------------------------------------------- attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def size(self, dim: int | None = None) -> Any:
        return self.array.shape if dim is None else self.array.shape[dim]

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

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
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "numpy(): cannot convert a tensor that requires grad; use .detach().numpy()"
            )
        if is_cuda_array(self.array):
            raise TypeError("numpy(): the tensor is on cuda; use .cpu().numpy()")
        return self.array

    def item(self) -> Any:
        if self.array.size != 1:
            raise RuntimeError(
                f"item(): only a one-element tensor converts to a Python number, "
                f"this one has shape {tuple(self.shape)}"
            )
        return to_numpy(self.array).reshape(()).item()

    def tolist(self) -> Any:
        return to_numpy(self.array).tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = to_numpy(self.array)
        return arr if dtype is None else arr.astype(dtype)

    def to(
        self,
        *args: Any,
        dtype: Any = None,
        device: Any = None,
        copy: bool = False,
        non_blocking: bool = False,
    ) -> Tensor:
        """``to('cuda')``, ``to(dl.float64)``, ``to('cpu', dl.float32)`` or ``to(other)``."""
        from darklib.backend import as_device

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

    def type(self, dtype: Any = None) -> Any:
        if dtype is None:
            return f"darklib.{self.dtype.name}"
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def detach(self) -> Tensor:
        return Tensor._wrap(self.array)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return _Clone.apply(self)

    def contiguous(self) -> Tensor:
        if self.array.flags.c_contiguous:
            return self
        return _Clone.apply(self)

    def is_contiguous(self) -> bool:
        return bool(self.array.flags.c_contiguous)

    # ----------------------------------------------------------------- autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "requires_grad_(False): only leaf tensors can stop requiring grad; "
                "use .detach() to get a tensor outside the graph"
            )
        if requires_grad and self.array.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, this one is {self.dtype}"
            )
        self.requires_grad = bool(requires_grad) or self.grad_fn is not None
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            return
        import weakref

        self.grad_fn._retained = weakref.ref(self)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: the tensor does not require grad")
        if self.grad_fn is not None:
            hooks = self.grad_fn._out_hooks
            if hooks is None:
                hooks = self.grad_fn._out_hooks = []
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return lambda: hooks.remove(hook) if hook in hooks else None

    def backward(
        self, gradient: Any = None, retain_graph: bool = False, inputs: Any = None
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        autograd.backward(self, gradient, retain_graph, inputs)

    # ----------------------------------------------------------------- in place
    def _inplace(self, name: str, fn: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
        """Run the out-of-place ``fn(self, *args)`` and make its result this tensor's value.

        Under no_grad (how optimizers update parameters) the result is written into the
        existing array, so views of it see the change. With autograd on, the tensor is
        rebased onto the op's graph node, and any earlier node that saved it will refuse to
        run backward on the changed value.
        """
        track = autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
        )
        if not track:
            with autograd.no_grad():
                res = fn(Tensor._wrap(self.array), *args, **kwargs)
            if res.array.shape != self.array.shape:
                raise RuntimeError(
                    f"{name}: the result of shape {tuple(res.array.shape)} does not fit the "
                    f"tensor of shape {tuple(self.array.shape)} being updated in place"
                )
            if self.array.dtype.kind != "f" and res.array.dtype.kind == "f":
                raise RuntimeError(
                    f"{name}: result type {res.dtype} can't be cast to the tensor's "
                    f"{self.dtype} in place"
                )
            self.array[...] = res.array
            self._version += 1
            return self
        if self.grad_fn is None and self.requires_grad:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad is being changed in place; wrap "
                "the update in `with darklib.no_grad():` (as optimizers do) or clone it first"
            )
        before = Tensor._wrap(self.array, self.requires_grad)
        before.grad_fn = self.grad_fn
        res = fn(before, *args, **kwargs)
        if res.array.shape != self.array.shape:
            raise RuntimeError(
                f"{name}: the result of shape {tuple(res.array.shape)} does not fit the "
                f"tensor of shape {tuple(self.array.shape)} being updated in place"
            )
        if res.array.dtype != self.array.dtype:
            res = res.to(self.dtype)
        self.array = res.array
        self.grad_fn = res.grad_fn
        self.requires_grad = res.requires_grad
        self._version += 1
        if self.grad_fn is not None:
            self.grad_fn._versions = [
                (self if t is res else t, self._version if t is res else v)
                for t, v in self.grad_fn._versions
            ]
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        return self._inplace("fill_", lambda t, v: _fill_like(t, v), value)

    def copy_(self, src: Any) -> Tensor:
        return self._inplace("copy_", lambda t, s: _copy_from(t, s), src)

    # ----------------------------------------------------------------- python protocol
    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
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
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        arr = to_numpy(self.array)
        extras = []
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        default = {"f": np.float32, "i": np.int64, "b": np.bool_}.get(arr.dtype.kind)
        if default is None or arr.dtype != default or arr.size == 0:
            extras.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        body = np.array2string(
            arr, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3, precision=4
        )
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __format__(self, spec: str) -> str:
        if self.array.ndim == 0:
            return format(self.item(), spec)
        return repr(self)


# ------------------------------------------------------------------ ops used above
class _ToDevice(autograd.Function):
    @staticmethod
    def forward(ctx, x, dev):
        ctx.src = device_of(x)
        return to_device(x, dev)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.src), None


class _Cast(autograd.Function):
    @staticmethod
    def forward(ctx, x, npd):
        ctx.src = x.dtype
        return x.astype(npd)

    @staticmethod
    def backward(ctx, g):
        if ctx.src.kind != "f":
            return None, None
        return g.astype(ctx.src), None


class _Clone(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return get_xp(x).ascontiguousarray(x).copy()

    @staticmethod
    def backward(ctx, g):
        return g


class _CopyFrom(autograd.Function):
    """``dst.copy_(src)``: the value (and gradient) come from src, broadcast to dst's shape."""

    @staticmethod
    def forward(ctx, dst, src):
        xp = get_xp(dst)
        return xp.broadcast_to(xp.asarray(src, dtype=dst.dtype), dst.shape).copy()

    @staticmethod
    def backward(ctx, g):
        return None, g


def _fill_like(t: Tensor, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        if value.array.size != 1:
            raise RuntimeError(f"fill_: expected a one-element value, got shape {value.shape}")
        return _CopyFrom.apply(t, value.reshape(()))
    xp = get_xp(t.array)
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
