"""``darklib.amp``: automatic mixed precision, as ``torch.amp``: ``autocast`` runs the
ops that gain from it in float16 and keeps the sensitive ones in float32
(:mod:`darklib.amp.autocast_mode`), ``GradScaler`` scales the loss so that float16
gradients do not underflow."""

from darklib.amp.autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from darklib.amp.grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled"]
