"""Automatic mixed precision: ``dl.autocast``, as ``torch.autocast``.

Inside ``with dl.autocast("cuda"):`` the ops that gain from lower precision (matrix
products, convolutions, linear layers, attention) run in float16, and the ops that need
range or accuracy (losses, softmax, norms, exp/log, sums) run in float32, whatever dtype
their inputs come in; other ops follow the usual type promotion. Only float32 tensors on
the autocast's device are lowered (float64 ones are left alone, as torch), and the casts
are ordinary differentiable ops: parameters stay float32 and get float32 gradients, so
the optimizer (and :class:`~darklib.amp.GradScaler`, which keeps float16 gradients from
underflowing) work as usual.

The op lists are torch's for each device type (CUDA's and the CPU's differ). darklib has
no bfloat16: the CPU autocast's default dtype (bfloat16 in torch) is refused with torch's
warning and the block runs in full precision; ``dl.autocast("cpu", dtype=dl.float16)``
works (slowly: NumPy has no float16 GEMM). Ops call :func:`autocast_args` on entry.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.tensor import Tensor

# torch's policies: ops whose float32 inputs are lowered to the autocast dtype ("lower"),
# ops whose float16 inputs are raised to float32 ("fp32"), and ops refused under autocast
_LOSSES = {
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy_with_logits", "kl_div", "soft_margin_loss", "hinge_embedding_loss",
    "poisson_nll_loss", "cosine_embedding_loss", "triplet_margin_loss", "multi_margin_loss",
    "margin_ranking_loss", "multilabel_margin_loss",
}  # fmt: skip
_LOWER = {
    "cuda": {
        "matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "addmv", "addr", "mv",
        "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
        "conv_transpose3d", "prelu", "scaled_dot_product_attention", "einsum",
    },
    "cpu": {
        "matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "linear", "conv1d", "conv2d",
        "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "prelu",
        "scaled_dot_product_attention", "einsum",
    },
}  # fmt: skip
# (ops named here that are in neither list run as given, and the ops inside them too: a
# CPU autocast leaves dot, mv and the recurrent layers in float32, as torch's; on CUDA torch
# lowers the recurrent layers, weights included, which darklib does not: they stay float32)
_FP32 = {
    "cuda": _LOSSES | {"softmax", "log_softmax", "layer_norm", "group_norm", "cdist"},
    "cpu": _LOSSES | {"binary_cross_entropy", "cdist"},
}
# (torch's float32 list on CUDA also holds elementwise ops and reductions: exp, log, pow,
# sum, cumsum...; darklib leaves those to type promotion, so that its per-op overhead on
# small tensors stays as it is: an autocast'ed float16 activation summed stays float16)
_REFUSED = {
    "cuda": {
        "binary_cross_entropy": (
            "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to "
            "autocast.\nMany models use a sigmoid layer right before the binary cross "
            "entropy layer.\nIn this case, combine the two layers using "
            "torch.nn.functional.binary_cross_entropy_with_logits\nor torch.nn.BCEWithLogitsLoss."
            "  binary_cross_entropy_with_logits and BCEWithLogits are\nsafe to autocast."
        ).replace("torch.", "darklib.")
    },
    "cpu": {},
}

_local = threading.local()  # .modes: {device type: autocast dtype (np) or None}
_active = 0  # blocks enabled anywhere (a cheap test for the ops' entry)
_lock = threading.Lock()


def _modes() -> dict:
    modes = getattr(_local, "modes", None)
    if modes is None:
        modes = _local.modes = {"cpu": None, "cuda": None}
    return modes


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether an autocast block is on for ``device_type`` (CUDA's when not given, as
    torch) in this thread."""
    return _modes()[_device_type(device_type or "cuda")] is not None


def get_autocast_dtype(device_type: str) -> Any:
    """The dtype ``autocast(device_type)`` lowers to (float16: darklib has no bfloat16)."""
    _device_type(device_type)
    return _dt.float16


def _device_type(device_type: Any) -> str:
    if device_type not in ("cpu", "cuda"):
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
    return device_type


class autocast:
    """Run a block (or a decorated function) in mixed precision: see the module.

    Args:
        device_type: 'cuda' or 'cpu': the tensors whose ops are cast.
        dtype: the lower precision: float16 (the default on CUDA; the CPU's default,
            bfloat16, does not exist in darklib: the block then runs in full precision,
            with torch's warning for an unsupported dtype).
        enabled: False turns autocast off inside the block (e.g. for a float32 region
            within an autocast one).
        cache_enabled: accepted for torch's signature (casts are not cached).
    """

    def __init__(
        self,
        device_type: str,
        dtype: Any = None,
        enabled: bool = True,
        cache_enabled: bool | None = None,
    ) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device_type = _device_type(device_type)
        self.fast_dtype = None
        if dtype is not None:
            self.fast_dtype = _dt.to_numpy_dtype(dtype)
        elif device_type == "cuda":
            self.fast_dtype = np.dtype(np.float16)
        self._enabled = bool(enabled)
        if self._enabled and (self.fast_dtype is None or self.fast_dtype != np.float16):
            name = "CPU" if device_type == "cpu" else "CUDA"
            warnings.warn(
                f"In {name} autocast, but the target dtype is not supported. Disabling "
                f"autocast.\ndarklib's {name} autocast only supports darklib.float16 "
                "(darklib has no bfloat16).",
                UserWarning,
                stacklevel=2,
            )
            self._enabled = False
        if self._enabled and device_type == "cuda":
            from darklib import cuda

            if not cuda.is_available():
                warnings.warn(
                    "User provided device_type of 'cuda', but CUDA is not available. Disabling",
                    UserWarning,
                    stacklevel=2,
                )
                self._enabled = False

    def __enter__(self) -> autocast:
        global _active
        modes = _modes()
        self._prev = modes[self.device_type]
        modes[self.device_type] = self.fast_dtype if self._enabled else None
        with _lock:
            _active += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        global _active
        _modes()[self.device_type] = self._prev
        with _lock:
            _active -= 1

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._again():
                return fn(*args, **kwargs)

        return run

    def _again(self) -> autocast:
        """The same block again (a decorated function's call enters one of its own)."""
        again = object.__new__(autocast)
        again.device_type, again.fast_dtype = self.device_type, self.fast_dtype
        again._enabled = self._enabled
        return again


def autocasts(op: str) -> Callable[[Callable], Callable]:
    """Decorate op ``op``'s function: under autocast its tensor arguments (positional and
    keyword) are cast as the policy says (:func:`autocast_args`)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if not _active or getattr(_local, "inside", False):
                return fn(*args, **kwargs)
            # the op the user called decides; the ops it calls in turn (mv's matmul, a GRU's
            # linear layers) are not cast again, as torch casts at its dispatcher's top op
            args = autocast_args(op, *args)
            if kwargs:
                kwargs = dict(zip(kwargs, autocast_args(op, *kwargs.values(), like=args)))
            _local.inside = True
            try:
                return fn(*args, **kwargs)
            finally:
                _local.inside = False

        return run

    return decorate


def autocast_args(op: str, *args: Any, like: tuple = ()) -> tuple:
    """``args`` as ``op`` takes them under the autocast of their device, if one is on:
    float32 tensors lowered for the low-precision ops, float16 ones raised to float32 for
    the float32 ops; anything else unchanged. A no-op (one global read) outside autocast."""
    if not _active:
        return args
    modes = _modes()
    first = next((a for a in (*like, *args) if isinstance(a, Tensor)), None)
    if first is None:
        return args
    kind = "cuda" if first.is_cuda else "cpu"
    low = modes[kind]
    if low is None:
        return args
    refused = _REFUSED[kind].get(op)
    if refused is not None:
        raise RuntimeError(refused)
    if op in _LOWER[kind]:
        want, src = low, np.dtype(np.float32)
    elif op in _FP32[kind]:
        want, src = np.dtype(np.float32), low
    else:
        return args
    target = _dt.from_numpy_dtype(want)
    return tuple(
        a.to(target)
        if isinstance(a, Tensor) and a.array.dtype == src and a.is_cuda == (kind == "cuda")
        else a
        for a in args
    )
