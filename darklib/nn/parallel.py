"""``nn.DataParallel`` (``torch.nn.parallel``): torch splits each batch over several GPUs
and gathers the outputs. darklib runs a model on one device, so the wrapper calls its
module on the whole batch: scripts written for several GPUs run unchanged, and its state
dict has torch's ``module.`` prefix, so checkpoints move between the two."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darklib.nn.module import Module


class DataParallel(Module):
    """``DataParallel(module, device_ids=None, output_device=None, dim=0)``: calls
    ``module`` on each input as it is (one device). The arguments are kept as attributes."""

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
    ) -> None:
        super().__init__()
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else []
        self.output_device = output_device
        self.dim = dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)
