"""The interface every task kind implements (classification, segmentation, ...)."""

from __future__ import annotations

from typing import Any

import numpy as np

from darklib import nn
from darklib.backend import to_numpy as _to_numpy


def to_numpy(t: Any) -> np.ndarray:
    """A Tensor (CPU or GPU) or an array as a numpy array, detached."""
    if isinstance(t, np.ndarray):
        return t
    arr = t.detach().array if hasattr(t, "detach") else t
    return _to_numpy(arr)


class Task:
    """How one kind of task trains and reports.

    A batch is whatever the DataLoader yields for the task's dataset. Statistics are plain
    floats that add up over batches (``{"loss_sum": ..., "count": ...}``); :meth:`metrics`
    turns a sum of them into the reported metrics. Previews are numpy arrays, so the CLI and
    the tests can use them without Qt.
    """

    kind: str = ""
    #: metric names as reported per step and per epoch (the first is the loss)
    metric_names: tuple[str, ...] = ("loss",)

    def make_loss(self, loss_type: str, args: dict) -> Any:
        """The loss module named in the project (a darklib.nn loss)."""
        cls = getattr(nn, loss_type, None)
        if cls is None:
            raise ValueError(f"darklib.nn has no loss {loss_type!r}")
        return cls(**args)

    #: the darklib.nn losses that fit the task's model outputs and targets (None: any)
    losses: tuple[str, ...] | None = None

    def loss_problem(self, loss_type: str, args: dict) -> str | None:
        """Why the loss named in the project cannot train this task, or None: an unknown
        loss, one that does not fit the task's outputs and targets, or arguments it does not
        take. Checked before a run starts, so that a misfit is a message, not an error in
        the middle of the first epoch."""
        if not loss_type.endswith("Loss") or not isinstance(getattr(nn, loss_type, None), type):
            return f"loss {loss_type!r} is not a darklib.nn loss"
        if self.losses is not None and loss_type not in self.losses:
            return (
                f"loss {loss_type} does not fit the {self.kind} task: use "
                f'{" or ".join(self.losses)} (set "loss" in the project file)'
            )
        try:
            self.make_loss(loss_type, args)
        except Exception as e:
            return f"loss {loss_type}: bad arguments {args}: {e}"
        return None

    def data_problem(self, num_classes: int) -> str | None:
        """Why data with ``num_classes`` classes cannot be used for this task, or None."""
        return None

    def check_fit(self, output_shape: Any, num_classes: int, output_name: str = "") -> str | None:
        """Why a model with this output shape (batch excluded) cannot train on a dataset of
        ``num_classes`` classes, or None when it can. Checked before a run starts."""
        return None

    def train_step(self, model: Any, batch: Any, loss_fn: Any, device: Any) -> tuple[Any, dict]:
        """Forward one batch: the loss Tensor (not yet backpropagated) and batch stats."""
        raise NotImplementedError

    def eval_step(self, model: Any, batch: Any, loss_fn: Any, device: Any) -> tuple[dict, dict]:
        """Forward one validation batch without gradients: stats and per-sample outputs
        (numpy arrays keyed by name, concatenated over batches by the trainer)."""
        raise NotImplementedError

    def metrics(self, stats: dict) -> dict[str, float]:
        """Reported metrics from summed stats."""
        raise NotImplementedError

    def previews(self, outputs: dict[str, np.ndarray], num_classes: int) -> dict[str, Any]:
        """Preview arrays from concatenated validation outputs."""
        return {}
