"""``darklib.amp``: loss scaling (``GradScaler``), as ``torch.amp``, so that training
scripts written for torch's mixed precision run unchanged. darklib has no ``autocast``
yet: ops run in the dtypes of their inputs, and the scaler, as torch's, wants float32
parameters (it refuses to unscale float16 gradients)."""

from darklib.amp.grad_scaler import GradScaler

__all__ = ["GradScaler"]
