"""``darklib.cuda.amp`` and ``darklib.cpu.amp``: torch's older homes of ``autocast`` and
``GradScaler`` (deprecated in torch, still in many training scripts: ``from
torch.cuda.amp import autocast, GradScaler``), with torch's deprecation warnings."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

from darklib import dtypes as _dt
from darklib.amp.autocast_mode import autocast as _autocast
from darklib.amp.autocast_mode import custom_bwd as _custom_bwd
from darklib.amp.autocast_mode import custom_fwd as _custom_fwd
from darklib.amp.grad_scaler import GradScaler as _GradScaler


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"`{old}(args...)` is deprecated. Please use `{new}` instead.", FutureWarning, 3)


class _CudaAutocast(_autocast):
    def __init__(self, enabled: bool = True, dtype: Any = _dt.float16, cache_enabled: bool = True):
        _deprecated("darklib.cuda.amp.autocast", "darklib.amp.autocast('cuda', args...)")
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class _CpuAutocast(_autocast):
    def __init__(self, enabled: bool = True, dtype: Any = None, cache_enabled: bool = True):
        _deprecated("darklib.cpu.amp.autocast", "darklib.amp.autocast('cpu', args...)")
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


def _legacy_scaler(device: str) -> type:
    """``darklib.<device>.amp.GradScaler``: the GradScaler of ``device``, with torch's
    deprecation warning."""

    class GradScaler(_GradScaler):
        def __init__(
            self,
            init_scale: float = 2.0**16,
            growth_factor: float = 2.0,
            backoff_factor: float = 0.5,
            growth_interval: int = 2000,
            enabled: bool = True,
        ) -> None:
            _deprecated(
                f"darklib.{device}.amp.GradScaler", f"darklib.amp.GradScaler('{device}', args...)"
            )
            super().__init__(
                device, init_scale, growth_factor, backoff_factor, growth_interval, enabled
            )

    return GradScaler


_CudaGradScaler = _legacy_scaler("cuda")
_CpuGradScaler = _legacy_scaler("cpu")


def custom_fwd(fwd: Any = None, *, cast_inputs: Any = None) -> Any:
    """``darklib.cuda.amp.custom_fwd``: :func:`darklib.amp.custom_fwd` for 'cuda'."""
    _deprecated(
        "darklib.cuda.amp.custom_fwd", "darklib.amp.custom_fwd(args..., device_type='cuda')"
    )
    return _custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd: Any = None) -> Any:
    """``darklib.cuda.amp.custom_bwd``: :func:`darklib.amp.custom_bwd` for 'cuda'."""
    _deprecated(
        "darklib.cuda.amp.custom_bwd", "darklib.amp.custom_bwd(args..., device_type='cuda')"
    )
    return _custom_bwd(bwd, device_type="cuda")


def _module(name: str, **members: Any) -> types.ModuleType:
    """A module importable by its dotted name (``from darklib.cuda.amp import autocast``)."""
    mod = types.ModuleType(name, __doc__)
    for key, value in members.items():
        setattr(mod, key, value)
    sys.modules[name] = mod
    return mod


_CudaAutocast.__qualname__ = _CudaAutocast.__name__ = "autocast"
_CpuAutocast.__qualname__ = _CpuAutocast.__name__ = "autocast"
cuda_amp = _module(
    "darklib.cuda.amp",
    autocast=_CudaAutocast,
    GradScaler=_CudaGradScaler,
    custom_fwd=custom_fwd,
    custom_bwd=custom_bwd,
)
cpu_amp = _module("darklib.cpu.amp", autocast=_CpuAutocast, GradScaler=_CpuGradScaler)
cpu = _module("darklib.cpu", amp=cpu_amp)
