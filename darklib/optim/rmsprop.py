"""RMSprop: divide the gradient by a running root-mean-square of its recent magnitudes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from darklib.backend import get_xp
from darklib.optim.optimizer import (
    Optimizer,
    _advance,
    _check_lr,
    _new_state,
    _zeros_state,
)


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), with PyTorch's centered, momentum and weight-decay options.

    :math:`v \leftarrow \alpha v + (1-\alpha) g^2`; centered subtracts the squared running
    mean of ``g``; :math:`\theta \leftarrow \theta - \text{lr}\, g / (\sqrt{v} + \epsilon)`
    (through a momentum buffer when ``momentum > 0``).

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-2``.
        alpha: smoothing constant. Default: ``0.99``.
        eps: term added to the denominator for numerical stability. Default: ``1e-8``.
        weight_decay: L2 penalty. Default: ``0``.
        momentum: momentum factor. Default: ``0``.
        centered: normalise by the estimated variance of the gradient. Default: False.
        maximize: maximize the objective instead of minimizing it. Default: False.
        capturable, foreach, differentiable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``square_avg``, plus ``momentum_buffer`` (momentum > 0)
    and ``grad_avg`` (centered).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        if differentiable:
            raise ValueError("RMSprop: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, centered = group["momentum"], group["centered"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p, "square_avg")
                if momentum > 0:
                    state["momentum_buffer"] = _zeros_state(p)
                if centered:
                    state["grad_avg"] = _zeros_state(p)
            _advance(state)
            xp = get_xp(g)
            sq = state["square_avg"].array
            tmp = xp.multiply(g, 1 - alpha)  # then * g: torch's order (g * g may overflow)
            tmp *= g
            sq *= alpha
            sq += tmp
            if centered:
                ga = state["grad_avg"].array
                xp.subtract(g, ga, out=tmp)
                tmp *= 1 - alpha
                ga += tmp
                xp.multiply(ga, ga, out=tmp)
                xp.subtract(sq, tmp, out=tmp)
                xp.sqrt(tmp, out=tmp)
            else:
                xp.sqrt(sq, out=tmp)
            tmp += eps
            xp.divide(g, tmp, out=tmp)
            if momentum > 0:
                buf = state["momentum_buffer"].array
                buf *= momentum
                buf += tmp
                xp.multiply(buf, -lr, out=tmp)
            else:
                tmp *= -lr
            p.array += tmp
