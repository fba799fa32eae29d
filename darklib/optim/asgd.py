"""ASGD: stochastic gradient descent with Polyak-Ruppert averaging of the iterates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.dtypes import get_default_dtype
from darklib.optim.optimizer import Optimizer, _advance, _check_lr, _new_state, scalar_dtype
from darklib.tensor import Tensor


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak and Juditsky; Bottou's schedule), as PyTorch's.

    :math:`\theta \leftarrow (1 - \lambda \eta_t)\,\theta - \eta_t g`, with
    :math:`\eta_t = \text{lr} / (1 + \lambda\, \text{lr}\, t)^\alpha`; the running average
    ``ax`` of the iterates starts at step ``t0`` (before it, ``ax`` is the last iterate).
    The parameters themselves are not replaced by the average: read it from
    ``optimizer.state[p]["ax"]``.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-2``.
        lambd: decay term. Default: ``1e-4``.
        alpha: power of the learning-rate decay. Default: ``0.75``.
        t0: step at which averaging starts. Default: ``1e6``.
        weight_decay: L2 penalty. Default: ``0``.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, differentiable, capturable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``eta`` and ``mu`` (0-d, the current step size and
    averaging weight) and ``ax`` (the average).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise ValueError("ASGD: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p)
                state["eta"] = Tensor._wrap(np.array(lr, dtype=scalar_dtype()))
                state["mu"] = Tensor._wrap(np.ones((), dtype=scalar_dtype()))
                state["ax"] = Tensor._wrap(get_xp(p.array).zeros_like(p.array))
            step = _advance(state)
            eta_t, mu_t = state["eta"], state["mu"]
            # read as numbers, in their stored precision (float32 until a load casts them)
            eta, mu = float(eta_t.array), float(mu_t.array)
            p.array *= 1 - lambd * eta
            p.array -= g * eta
            ax = state["ax"].array
            if mu != 1:
                ax += (p.array - ax) * mu
            else:
                ax[...] = p.array
            # the new values pass through the default dtype (torch builds them with
            # as_tensor), even where a load made the state float64
            rounded = get_default_dtype().np.type
            eta_t.array[...] = rounded(lr / ((1 + lambd * lr * step) ** alpha))
            mu_t.array[...] = rounded(1 / max(1, step - t0))
