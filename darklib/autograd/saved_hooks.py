"""Hooks on the tensors that ops save for backward (``dl.autograd.graph``, as torch's).

Inside ``with saved_tensors_hooks(pack, unpack):`` every tensor an op keeps for its
backward goes through ``pack`` when the op has run, and what ``pack`` returned is kept
instead; backward gets the tensor back from ``unpack``. That is how activations are moved
off the GPU while they wait for backward (:class:`save_on_cpu`), compressed, or logged.
The tensors are those saved with ``ctx.save_for_backward``: every tensor of a user
``Function``, and the inputs, outputs and intermediates that darklib's ops save (a few ops
keep small index arrays or constants on ``ctx`` directly; those are not offered to the
hooks). Hooks belong to the thread that set them, as in torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import backend

_state = threading.local()  # .stack: [(pack, unpack)], .disabled: an error message or None
active = 0  # how many threads have hooks set (ops skip the thread-local lookup while 0)
_count_lock = threading.Lock()


def _stack() -> list:
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def current() -> tuple | None:
    """The innermost ``(pack, unpack)`` of this thread, or None."""
    stack = getattr(_state, "stack", None) if active else None
    return stack[-1] if stack else None


class saved_tensors_hooks:
    """``with saved_tensors_hooks(pack_hook, unpack_hook):``: ``pack_hook(tensor)`` runs on
    each tensor saved for backward inside the block and may return anything;
    ``unpack_hook(that)`` runs when backward needs it and must return a tensor of the saved
    one's shape, dtype and device. Blocks nest: the innermost pair applies. The hooks must
    not change their argument in place."""

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]):
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self) -> saved_tensors_hooks:
        global active
        message = getattr(_state, "disabled", None)
        if message is not None:
            raise RuntimeError(message)
        stack = _stack()
        stack.append((self.pack_hook, self.unpack_hook))
        if len(stack) == 1:
            with _count_lock:
                active += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        global active
        stack = _stack()
        stack.pop()
        if not stack:
            with _count_lock:
                active -= 1


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors wait for backward in CPU memory (GPU memory is what runs out), and go
    back to their device when backward needs them; ``pin_memory=True`` puts them in
    page-locked memory, whose copies to the GPU are faster. Tensors already on the CPU are
    kept as they are."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        def pack(t: Any) -> tuple:
            if t.device.type == "cpu":
                return t.device, t
            if not pin_memory:
                return t.device, t.detach().cpu()
            # straight from the GPU into page-locked memory: one copy at full bandwidth
            # (.cpu().pin_memory() would copy through pageable memory, then once more)
            from darklib.tensor import Tensor

            arr = t.array
            host = backend.pinned_empty(arr.shape, arr.dtype)
            arr.get(out=host)
            return t.device, Tensor._wrap(host)

        def unpack(packed: tuple) -> Any:
            dev, t = packed
            return t if dev.type == "cpu" else t.to(dev, non_blocking=pin_memory)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:
    """Inside ``with disable_saved_tensors_hooks(message):``, setting hooks raises
    RuntimeError(message) (a library that needs the plain saved tensors says why)."""

    def __init__(self, error_message: str):
        self.error_message = error_message
        self._outer: str | None = None

    def __enter__(self) -> disable_saved_tensors_hooks:
        self._outer = getattr(_state, "disabled", None)
        _state.disabled = self.error_message
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.disabled = self._outer


class Packed:
    """What a node keeps instead of its saved arrays while hooks are set: per saved item,
    the pack hook's result and how to check and return the unpacked tensor."""

    __slots__ = ("items", "unpack_hook")

    def __init__(self, items: tuple, unpack_hook: Callable):
        self.items, self.unpack_hook = items, unpack_hook

    def unpack(self, node_name: str) -> tuple:
        out = []
        for packed, meta in self.items:
            if meta is None:  # None, or a non-array the op kept: as it was
                out.append(packed)
                continue
            t = self.unpack_hook(packed)
            from darklib.tensor import Tensor

            if not isinstance(t, Tensor):
                raise TypeError(
                    "Output of saved tensor unpack_hook expected to be a Tensor but got "
                    f"result of type {type(t).__name__} (needed by {node_name})"
                )
            shape, dtype, dev, as_tensor = meta
            if (tuple(t.shape), t.dtype, t.device) != (shape, dtype, dev):
                raise RuntimeError(
                    f"unpack_hook returned a tensor of shape {tuple(t.shape)}, dtype "
                    f"{t.dtype} on {t.device} for a saved tensor of shape {shape}, "
                    f"dtype {dtype} on {dev} (needed by {node_name}): it must give back "
                    "what was saved"
                )
            out.append(t if as_tensor else t.array)
        return tuple(out)


def pack(saved: tuple, hooks: tuple, tensors: tuple = ()) -> Packed:
    """Run ``hooks``' pack hook on each saved item: Tensors (a user Function's) are given
    as they are; arrays (darklib's ops) as the tensor in ``tensors`` holding that array
    (an input, the output), else as a new tensor on the array."""
    from darklib.tensor import Tensor

    pack_hook, unpack_hook = hooks
    items = []
    stack = _stack()
    outer, stack[:] = stack[:], []  # ops inside the pack hook save their tensors plainly
    try:
        for a in saved:
            if isinstance(a, Tensor):
                t, as_tensor = a, True
            elif isinstance(a, np.ndarray) or backend.is_cuda_array(a):
                t = next((x for x in tensors if x.array is a), None)
                t, as_tensor = Tensor._wrap(a) if t is None else t, False
            else:
                items.append((a, None))
                continue
            items.append((pack_hook(t), (tuple(t.shape), t.dtype, t.device, as_tensor)))
    finally:
        stack[:] = outer
    return Packed(tuple(items), unpack_hook)
