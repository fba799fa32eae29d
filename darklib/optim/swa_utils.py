"""Stochastic weight averaging and exponential moving averages of a model's weights, as
``torch.optim.swa_utils``.

>>> swa_model = dl.optim.swa_utils.AveragedModel(model)
>>> swa_sched = dl.optim.swa_utils.SWALR(opt, swa_lr=0.05)
>>> for epoch in range(epochs):
...     train_one_epoch(model, opt)
...     if epoch >= swa_start:
...         swa_model.update_parameters(model)
...         swa_sched.step()
>>> dl.optim.swa_utils.update_bn(loader, swa_model)   # batch-norm statistics of the average

``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))`` keeps an exponential
moving average instead of the plain mean.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

from darklib import grad_mode
from darklib.creation import tensor
from darklib.dtypes import int64
from darklib.nn.module import Module
from darklib.nn.normalization import _BatchNorm
from darklib.optim.lr_scheduler import LRScheduler, _per_group
from darklib.optim.optimizer import Optimizer
from darklib.tensor import Tensor

__all__ = [
    "SWALR",
    "AveragedModel",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[list, list, Any], None]:
    """An in-place update of lists of averages: ``avg = decay * avg + (1 - decay) * p``."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )

    def ema_update(averaged: list[Tensor], current: list[Tensor], num_averaged: Any) -> None:
        for a, p in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(p, 1.0 - decay)
            else:  # (an integer buffer: the mix truncated back, as torch)
                a.copy_(a * decay + p * (1.0 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[list, list, Any], None]:
    """An in-place update of lists of averages to the running mean of every model seen."""

    def swa_update(averaged: list[Tensor], current: list[Tensor], num_averaged: Any) -> None:
        n = float(num_averaged) + 1.0
        for a, p in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(p, 1.0 / n)
            else:  # (an integer buffer: the mean truncated back, as torch)
                a.copy_(a + (p - a) / n)

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, Any], Tensor]:
    """``avg_fn(averaged, current, num_averaged)`` giving the new exponential average."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )

    def ema_update(averaged: Tensor, current: Tensor, num_averaged: Any) -> Tensor:
        return decay * averaged + (1.0 - decay) * current

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Any], Tensor]:
    """``avg_fn(averaged, current, num_averaged)`` giving the new running mean."""

    def swa_update(averaged: Tensor, current: Tensor, num_averaged: Any) -> Tensor:
        return averaged + (current - averaged) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose weights are the average of the weights it is given.

    Args:
        model: the model to average; it is deep-copied (it keeps training on its own).
        device: where the copy lives (``None``: where ``model`` is).
        avg_fn: ``avg_fn(averaged, current, num_averaged) -> new average``, one tensor at a
            time. Default (with ``multi_avg_fn`` also None): the running mean (SWA).
        multi_avg_fn: an in-place update of lists of tensors, ``fn(averaged_list,
            current_list, num_averaged)``: :func:`get_ema_multi_avg_fn` for an EMA.
        use_buffers: average the buffers too (e.g. batch-norm statistics) rather than
            copying the model's latest ones.

    ``forward`` runs the averaged copy; ``update_parameters(model)`` folds ``model``'s
    current weights into the average (the first call copies them). ``n_averaged`` counts
    the models averaged so far and is saved in the state dict.
    """

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable[[Tensor, Tensor, Any], Tensor] | None = None,
        multi_avg_fn: Callable[[list, list, Any], None] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _tensors(self, model: Module) -> list[Tensor]:
        if self.use_buffers:
            return list(itertools.chain(model.parameters(), model.buffers()))
        return list(model.parameters())

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters (and buffers, with ``use_buffers``) into the
        average; without ``use_buffers`` the buffers are copied from ``model``."""
        mine, theirs = self._tensors(self.module), self._tensors(model)
        if len(mine) != len(theirs):
            raise ValueError(
                f"AveragedModel.update_parameters: the model has {len(theirs)} "
                f"{'parameters and buffers' if self.use_buffers else 'parameters'}, the "
                f"averaged copy {len(mine)}: pass the model this average was made from"
            )
        n = int(self.n_averaged.item())
        with grad_mode.no_grad():
            current = []
            for a, p in zip(mine, theirs):
                if tuple(a.shape) != tuple(p.shape):
                    raise ValueError(
                        f"AveragedModel.update_parameters: shape {tuple(p.shape)} does not "
                        f"fit the averaged tensor of shape {tuple(a.shape)}"
                    )
                current.append(p.detach().to(a.device))
            if n == 0:
                for a, p in zip(mine, current):
                    a.copy_(p)
            elif self.avg_fn is not None:
                counts = self.n_averaged
                for a, p in zip(mine, current):
                    a.copy_(self.avg_fn(a.detach(), p, counts.to(a.device)))
            else:  # one call per device and dtype, as torch groups them
                update = self.multi_avg_fn or get_swa_multi_avg_fn()
                groups: dict[tuple, tuple[list, list]] = {}
                for a, p in zip(mine, current):
                    averaged, latest = groups.setdefault((str(a.device), a.dtype), ([], []))
                    averaged.append(a)
                    latest.append(p)
                for averaged, latest in groups.values():
                    update(averaged, latest, self.n_averaged)
            if not self.use_buffers:
                for a, b in zip(self.module.buffers(), model.buffers()):
                    a.copy_(b.detach().to(a.device))
            self.n_averaged.add_(1)


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute the running statistics of ``model``'s batch norms with one pass over
    ``loader`` (each item an input batch, or a tuple/list whose first entry is one): the
    statistics become the plain average over the batches, as for an averaged model."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    momenta = {}
    for m in norms:
        m.reset_running_stats()
        momenta[m] = m.momentum
        m.momentum = None  # a cumulative average
    was_training = model.training
    model.train()
    try:
        with grad_mode.no_grad():
            for batch in loader:
                if isinstance(batch, list | tuple):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        model.train(was_training)


def _cosine(t: float) -> float:
    return (1.0 - math.cos(math.pi * t)) / 2.0


def _linear(t: float) -> float:
    return t


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` steps, then hold it.

    Args:
        optimizer: the wrapped optimizer.
        swa_lr: the final lr, one for all groups or a list with one per group.
        anneal_epochs: steps of the annealing (0: jump at the first step). Default: 10.
        anneal_strategy: ``'cos'`` (default) or ``'linear'``.
        last_epoch: index of the last epoch. Default: ``-1``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        for lr, group in zip(_per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = _cosine if anneal_strategy == "cos" else _linear

    def state_dict(self) -> dict[str, Any]:
        """The state, as torch's: the annealing function is saved by its name
        (``_anneal_strategy``), not as a function."""
        state = super().state_dict()
        del state["anneal_func"]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load torch's form, where the annealing function is saved by its name
        (``_anneal_strategy``), or darklib's earlier one (the name as ``anneal_func``)."""
        state = dict(state_dict)
        legacy = state.pop("anneal_func", None)  # darklib's earlier format: the name itself
        super().load_state_dict(state)
        if "_anneal_strategy" not in state and isinstance(legacy, str):
            self._anneal_strategy = legacy
        self._set_anneal_func(self._anneal_strategy)

    def _fraction(self, step: int) -> float:
        return self.anneal_func(max(0.0, min(1.0, step / max(1, self.anneal_epochs))))

    def get_lr(self) -> list[float]:
        self._warn_direct_get_lr()
        # the lr this step started from is recovered from the group's current lr (which a
        # user may have changed), as the mix that the previous step's fraction made of it
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        before, now = self._fraction(step - 1), self._fraction(step)
        lrs = []
        for group in self.optimizer.param_groups:
            swa, lr = group["swa_lr"], group["lr"]
            start = swa if before == 1 else (lr - before * swa) / (1 - before)
            lrs.append(swa * now + start * (1 - now))
        return lrs
