"""``darklib.amp``: automatic mixed precision, as ``torch.amp``: ``autocast`` runs the
ops that gain from it in float16 and keeps the sensitive ones in float32
(:mod:`darklib.amp.autocast_mode`), ``GradScaler`` scales the loss so that float16
gradients do not underflow; ``custom_fwd``/``custom_bwd`` carry autocast into custom
autograd Functions."""

from darklib.amp import autocast_mode
from darklib.amp.autocast_mode import (
    autocast,
    custom_bwd,
    custom_fwd,
    get_autocast_dtype,
    is_autocast_available,
    is_autocast_enabled,
)
from darklib.amp.grad_scaler import GradScaler

__all__ = [
    "GradScaler",
    "autocast",
    "autocast_mode",
    "custom_bwd",
    "custom_fwd",
    "get_autocast_dtype",
    "is_autocast_available",
    "is_autocast_enabled",
]
