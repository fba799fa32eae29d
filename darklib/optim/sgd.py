"""SGD: stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.kernels import fused
from darklib.optim.optimizer import Optimizer, _check_fused_foreach, _check_lr, _plain
from darklib.tensor import Tensor


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (PyTorch's formulation).

    With momentum :math:`\mu`, dampening :math:`\tau` and weight decay :math:`\lambda`:
    :math:`g = \nabla + \lambda\theta`, :math:`b = \mu b + (1-\tau) g` (:math:`b = g` on the
    first step), :math:`\theta \leftarrow \theta - \text{lr}\,(g + \mu b)` with Nesterov,
    else :math:`\theta \leftarrow \theta - \text{lr}\, b`.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-3``.
        momentum: momentum factor. Default: ``0``.
        dampening: dampening for momentum. Default: ``0``.
        weight_decay: L2 penalty. Default: ``0``.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0). Default: False.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, differentiable, fused: accepted for PyTorch compatibility; darklib always
            runs one vectorised in-place update per parameter.

    Example::

        >>> opt = dl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise ValueError("SGD: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        _check_fused_foreach(fused, foreach)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, momentum = group["lr"], group["momentum"]
        dampening, nesterov = group["dampening"], group["nesterov"]
        for p, upd in self._grads(group):
            owned = upd is not p.grad.array  # a fresh array this step may overwrite
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    b = upd if owned else upd.copy()
                    owned = False  # upd is now the buffer: keep it intact
                    state["momentum_buffer"] = Tensor._wrap(b)
                else:
                    b = buf.array
                    if fused.applies(upd, b, p.array) and _plain(lr, momentum, dampening):
                        fused.kernel("sgd_momentum")(
                            upd, momentum, 1 - dampening, -lr, np.int32(nesterov), p.array, b
                        )
                        continue
                    b *= momentum
                    if dampening != 0:
                        b += upd * (1 - dampening)
                    else:
                        b += upd
                if nesterov:
                    t = get_xp(b).multiply(b, momentum)
                    upd = get_xp(b).add(upd, t, out=t)
                    owned = True
                else:
                    upd, owned = b, False
            if owned:
                upd *= -lr
                p.array += upd
            else:
                p.array += upd * -lr
