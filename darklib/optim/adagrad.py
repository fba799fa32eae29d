"""Adagrad and Adadelta: per-coordinate learning rates from accumulated squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from darklib.backend import get_xp
from darklib.optim.optimizer import (
    Optimizer,
    _advance,
    _check_fused_foreach,
    _check_lr,
    _new_state,
    _step_counter,
)
from darklib.tensor import Tensor


def _check_non_negative(**values: float) -> None:
    for name, v in values.items():
        if not 0.0 <= v:
            raise ValueError(f"Invalid {name} value: {v}")


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al.): divide each coordinate's step by the root of the sum of its
    squared gradients, :math:`\theta \leftarrow \theta - \frac{\text{lr}_t\, g}{\sqrt{\sum g^2}
    + \epsilon}` with :math:`\text{lr}_t = \text{lr} / (1 + (t-1)\,\text{lr\_decay})`.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-2``.
        lr_decay: learning-rate decay per step. Default: ``0``.
        weight_decay: L2 penalty. Default: ``0``.
        initial_accumulator_value: starting value of the sums of squares. Default: ``0``.
        eps: term added to the denominator. Default: ``1e-10``.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, differentiable, fused: accepted for PyTorch compatibility.

    State per parameter (created with the optimizer, as PyTorch): ``step`` and ``sum``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        _check_non_negative(
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
        )
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if differentiable:
            raise ValueError("Adagrad: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        _check_fused_foreach(fused, foreach)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p: Tensor) -> None:
        # torch's quirk, kept: the sums always start at the constructor's (the defaults')
        # initial_accumulator_value, even where a group (given to the constructor or to
        # add_param_group) sets its own; a group's value is read by nothing.
        init = self.defaults["initial_accumulator_value"]
        state = self.state[p]
        state["step"] = _step_counter()
        state["sum"] = Tensor._wrap(get_xp(p.array).full_like(p.array, init))

    def _step_group(self, group: dict[str, Any]) -> None:
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:  # a group added later
                self._init_state(p)
            clr = group["lr"] / (1 + (_advance(state) - 1) * group["lr_decay"])
            xp = get_xp(g)
            acc = state["sum"].array
            tmp = xp.multiply(g, g)
            acc += tmp
            xp.sqrt(acc, out=tmp)
            tmp += group["eps"]
            xp.divide(g, tmp, out=tmp)
            tmp *= -clr
            p.array += tmp


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler): steps scaled by the ratio of running RMS of past updates and of
    gradients, so that no learning rate needs tuning (``lr`` scales the result).

    Args:
        params: tensors or parameter groups to optimize.
        lr: coefficient scaling the update. Default: ``1.0``.
        rho: coefficient of the running averages. Default: ``0.9``.
        eps: term added inside the square roots. Default: ``1e-6``.
        weight_decay: L2 penalty. Default: ``0``.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, capturable, differentiable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``square_avg`` and ``acc_delta``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_non_negative(weight_decay=weight_decay)
        if differentiable:
            raise ValueError("Adadelta: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        rho, eps = group["rho"], group["eps"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p, "square_avg", "acc_delta")
            _advance(state)
            xp = get_xp(g)
            sq, acc = state["square_avg"].array, state["acc_delta"].array
            sq *= rho
            sq += (1 - rho) * g * g  # torch's order: g * g alone may overflow
            std = xp.sqrt(sq + eps)
            delta = xp.sqrt(acc + eps)
            delta /= std
            delta *= g
            acc *= rho
            acc += (1 - rho) * (delta * delta)
            delta *= -group["lr"]
            p.array += delta
