"""Rprop: resilient backpropagation, per-coordinate step sizes driven by gradient signs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from darklib.backend import get_xp
from darklib.optim.optimizer import Optimizer, _advance, _check_lr, _new_state
from darklib.tensor import Tensor


class Rprop(Optimizer):
    r"""Rprop (Riedmiller and Braun), as PyTorch's: only the sign of the gradient is used.

    Each coordinate keeps its own step size, multiplied by ``etaplus`` while the gradient
    keeps its sign and by ``etaminus`` when it flips (clamped to ``step_sizes``); after a
    flip the coordinate does not move and its gradient is forgotten for the next step.
    :math:`\theta \leftarrow \theta - \text{step\_size} \cdot \operatorname{sign}(g)`.

    Args:
        params: tensors or parameter groups to optimize.
        lr: initial step size of every coordinate. Default: ``1e-2``.
        etas: ``(etaminus, etaplus)``, the decrease and increase factors, with
            ``0 < etaminus < 1 < etaplus``. Default: ``(0.5, 1.2)``.
        step_sizes: ``(min, max)`` bounds of the step sizes. Default: ``(1e-6, 50)``.
        maximize: maximize the objective instead of minimizing it. Default: False.
        capturable, foreach, differentiable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``prev`` (the last gradient used) and ``step_size``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        if differentiable:
            raise ValueError("Rprop: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "etas": etas,
            "step_sizes": step_sizes,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p, "prev")
                state["step_size"] = Tensor._wrap(get_xp(g).full_like(p.array, group["lr"]))
            _advance(state)
            xp = get_xp(g)
            prev, size = state["prev"].array, state["step_size"].array
            sign = xp.sign(g * prev)
            factor = sign.copy()  # NaN stays NaN, as torch
            factor[sign > 0] = etaplus
            factor[sign < 0] = etaminus
            factor[sign == 0] = 1
            size *= factor
            xp.clip(size, lo, hi, out=size)
            g = xp.where(factor == etaminus, 0, g).astype(g.dtype, copy=False)  # a sign flip
            p.array -= xp.sign(g) * size
            prev[...] = g
