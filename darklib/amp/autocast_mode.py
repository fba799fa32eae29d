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

from darklib import autograd as _autograd  # noqa: F401  (loads darklib.tensor in the order it needs)
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
        "scaled_dot_product_attention", "einsum", "linalg_vecdot",
    },
}  # fmt: skip
# (ops named here that are in neither list run as given, and the ops inside them too: a
# CPU autocast leaves dot and mv in float32, as torch's. The recurrent layers ("rnn",
# "rnn_cell") run in float32 under autocast, float16 inputs and states raised to match
# their float32 weights: torch lowers some of them (weights included), which darklib does
# not, but runs them all on such inputs, where darklib refused the mixed dtypes)
_RECURRENT = {"rnn", "rnn_cell"}
_FP32 = {
    "cuda": _LOSSES | _RECURRENT | {"softmax", "log_softmax", "layer_norm", "group_norm", "cdist"},
    # torch's CPU float32 list: the losses, and ops that lack (or are unsafe in) float16 on
    # the CPU: these names are ready for the ops that opt in with @autocasts(name)
    "cpu": _LOSSES | _RECURRENT | {
        "binary_cross_entropy", "cdist", "ctc_loss", "nll_loss2d",
        "prod", "trace", "quantile", "nanquantile", "polar", "view_as_complex", "stft",
        "avg_pool3d", "max_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
        "max_unpool2d", "max_unpool3d", "fractional_max_pool2d", "fractional_max_pool3d",
        "reflection_pad1d", "reflection_pad2d", "replication_pad1d", "replication_pad2d",
        "replication_pad3d", "grid_sampler", "cholesky", "cholesky_inverse", "cholesky_solve",
        "inverse", "lu_solve", "orgqr", "ormqr", "pinverse", "geqrf", "qr", "svd",
        "triangular_solve", "linalg_cond", "linalg_matrix_rank", "linalg_solve",
        "linalg_cholesky", "linalg_svdvals", "linalg_eigvals", "linalg_eigvalsh", "linalg_inv",
        "linalg_householder_product", "linalg_tensorinv", "linalg_tensorsolve", "linalg_qr",
        "linalg_svd", "linalg_eig", "linalg_eigh", "linalg_lstsq", "fft",
    },
}  # fmt: skip
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
# the dtype get_autocast_dtype gives outside any block (torch's CPU default, bfloat16, does
# not exist in darklib: float16 stands in)
_DEFAULT_DTYPE = {"cpu": np.dtype(np.float16), "cuda": np.dtype(np.float16)}


def _modes() -> dict:
    modes = getattr(_local, "modes", None)
    if modes is None:
        modes = _local.modes = {"cpu": None, "cuda": None}
    return modes


def _dtypes() -> dict:
    """Per thread: the dtype each device's autocast is set to (on or off, as torch)."""
    dtypes = getattr(_local, "dtypes", None)
    if dtypes is None:
        dtypes = _local.dtypes = dict(_DEFAULT_DTYPE)
    return dtypes


def _device_type(device_type: Any) -> str:
    if device_type not in ("cpu", "cuda"):
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
    return device_type


def _adjust_active(delta: int) -> None:
    global _active
    with _lock:
        _active += delta


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether an autocast block is on for ``device_type`` (CUDA's when not given, as
    torch) in this thread."""
    return _modes()[_device_type(device_type or "cuda")] is not None


def is_autocast_available(device_type: str) -> bool:
    """Whether ``autocast(device_type)`` is supported: 'cpu' and 'cuda' in darklib."""
    return device_type in ("cpu", "cuda")


def get_autocast_dtype(device_type: str) -> Any:
    """The dtype ``autocast(device_type)`` is set to in this thread: the innermost block's
    ``dtype`` (enabled or not, as torch), else the default (float16: darklib has no
    bfloat16, torch's CPU default)."""
    return _dt.from_numpy_dtype(_dtypes()[_device_type(device_type)])


def set_autocast_enabled(device_type: str, enabled: bool) -> None:
    """Turn ``device_type``'s autocast on or off in this thread, outside any block (as
    ``torch.set_autocast_enabled(device_type, enabled)``; a block's exit restores its
    entry state)."""
    kind = _device_type(device_type)
    modes, manual = _modes(), getattr(_local, "manual", None)
    if manual is None:
        manual = _local.manual = {"cpu": False, "cuda": False}
    if enabled:
        modes[kind] = _dtypes()[kind]
        if not manual[kind]:
            manual[kind] = True
            _adjust_active(1)
    else:
        modes[kind] = None
        if manual[kind]:
            manual[kind] = False
            _adjust_active(-1)


def set_autocast_dtype(device_type: str, dtype: Any) -> None:
    """Set the dtype ``device_type``'s autocast lowers to in this thread (float16 only:
    darklib has no bfloat16)."""
    kind = _device_type(device_type)
    want = _dt.to_numpy_dtype(dtype)
    if want != np.float16:
        raise RuntimeError(
            f"Currently, AutocastCPU/CUDA only support darklib.float16 as the autocast dtype "
            f"in darklib (no bfloat16), got {dtype}"
        )
    _dtypes()[kind] = want
    if _modes()[kind] is not None:
        _modes()[kind] = want


def is_autocast_cache_enabled() -> bool:
    """torch's cast cache switch (darklib casts once per op call and keeps no cache: the
    switch is kept, per thread, for scripts that read it)."""
    return getattr(_local, "cache", True)


def set_autocast_cache_enabled(enabled: bool) -> None:
    _local.cache = bool(enabled)


def clear_autocast_cache() -> None:
    """Nothing to clear: darklib keeps no cache of casts."""


class autocast:
    """Run a block (or a decorated function) in mixed precision: see the module.

    Args:
        device_type: 'cuda' or 'cpu': the tensors whose ops are cast.
        dtype: the lower precision: float16 (the default on CUDA; the CPU's default,
            bfloat16, does not exist in darklib: the block then runs in full precision,
            with torch's warning for an unsupported dtype).
        enabled: False turns autocast off inside the block (e.g. for a float32 region
            within an autocast one).
        cache_enabled: torch's cast cache switch, seen by ``is_autocast_cache_enabled``
            inside the block (darklib keeps no cache of casts).
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
        self._cache_enabled = None if cache_enabled is None else bool(cache_enabled)
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
        modes, dtypes = _modes(), _dtypes()
        self._prev = (
            modes[self.device_type],
            dtypes[self.device_type],
            is_autocast_cache_enabled(),
        )
        if self.fast_dtype is not None:
            dtypes[self.device_type] = self.fast_dtype
        modes[self.device_type] = dtypes[self.device_type] if self._enabled else None
        if self._cache_enabled is not None:
            set_autocast_cache_enabled(self._cache_enabled)
        _adjust_active(1)
        return self

    def __exit__(self, *exc: Any) -> None:
        kind = self.device_type
        _modes()[kind], _dtypes()[kind], cache = self._prev
        set_autocast_cache_enabled(cache)
        _adjust_active(-1)

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
        again._enabled, again._cache_enabled = self._enabled, self._cache_enabled
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


# ------------------------------------------------------------------ custom autograd Functions


def _cast_floats(value: Any, kind: str, dtype: Any) -> Any:
    """``value`` with its floating tensors on ``kind`` (float64 ones excepted) cast to
    ``dtype``, through tuples, lists and dicts; anything else as it is."""
    if isinstance(value, Tensor):
        eligible = (
            value.array.dtype.kind == "f"
            and value.array.dtype != np.float64
            and value.is_cuda == (kind == "cuda")
        )
        return value.to(dtype) if eligible else value
    if isinstance(value, dict):
        return {k: _cast_floats(v, kind, dtype) for k, v in value.items()}
    if isinstance(value, tuple | list) and not hasattr(value, "_fields"):
        return type(value)(_cast_floats(v, kind, dtype) for v in value)
    return value


def _check_device_type(device_type: Any) -> None:
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")


def custom_fwd(
    fwd: Callable | None = None, *, device_type: str, cast_inputs: Any = None
) -> Callable:
    """Decorate a custom autograd ``Function``'s ``forward`` for autocast, as
    ``torch.amp.custom_fwd``: with ``cast_inputs`` (a dtype), inside an enabled autocast of
    ``device_type`` the floating tensor arguments are cast to it and ``forward`` runs with
    autocast off; without, ``forward`` runs in the surrounding state. Either way the ctx
    records that state for :func:`custom_bwd`. Usable bare or with arguments."""
    _check_device_type(device_type)
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        on = is_autocast_enabled(device_type)
        ctx._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            ctx._fwd_used_autocast = on
            return fwd(ctx, *args, **kwargs)
        ctx._fwd_used_autocast = False  # (the casts replace autocast for this forward)
        if not on:
            return fwd(ctx, *args, **kwargs)
        args = _cast_floats(args, device_type, cast_inputs)
        kwargs = _cast_floats(kwargs, device_type, cast_inputs)
        with autocast(device_type, enabled=False):
            return fwd(ctx, *args, **kwargs)

    return forward


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Callable:
    """Decorate the matching ``backward``: it runs in the autocast state its ``forward``
    (decorated with :func:`custom_fwd`) ran in, as ``torch.amp.custom_bwd``."""
    _check_device_type(device_type)
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def backward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        with autocast(device_type, dtype=ctx._dtype, enabled=ctx._fwd_used_autocast):
            return bwd(ctx, *args, **kwargs)

    return backward
