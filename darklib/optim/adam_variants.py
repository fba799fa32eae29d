"""Adam variants: Adamax (infinity norm), NAdam (Nesterov momentum) and RAdam (rectified)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.optim.adam import _adam_defaults
from darklib.optim.optimizer import (
    Optimizer,
    _advance,
    _moments,
    _new_state,
    _step_counter,
    _zeros_state,
    scalar_dtype,
)
from darklib.tensor import Tensor


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba): Adam with the infinity norm, :math:`u \leftarrow \max(\beta_2 u,
    |g| + \epsilon)`, :math:`\theta \leftarrow \theta - \frac{\text{lr}}{1-\beta_1^t}\,m / u`.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``2e-3``.
        betas: coefficients of the running average and of the infinity norm.
            Default: ``(0.9, 0.999)``.
        eps: term added to the norm. Default: ``1e-8``.
        weight_decay: L2 penalty. Default: ``0``.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, differentiable, capturable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``exp_avg`` and ``exp_inf``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = _adam_defaults(
            "Adamax",
            lr,
            betas,
            eps,
            weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p, "exp_avg", "exp_inf")
            step = _advance(state)
            xp = get_xp(g)
            m, u = state["exp_avg"].array, state["exp_inf"].array
            tmp = xp.subtract(g, m)
            tmp *= 1 - beta1
            m += tmp
            u *= beta2
            xp.abs(g, out=tmp)
            tmp += group["eps"]
            xp.maximum(u, tmp, out=u)
            clr = group["lr"] / (1 - beta1**step)
            xp.divide(m, u, out=tmp)
            tmp *= -clr
            p.array += tmp


class NAdam(Optimizer):
    r"""NAdam (Dozat): Adam with Nesterov momentum, whose momentum coefficient warms up as
    :math:`\mu_t = \beta_1 (1 - 0.5 \cdot 0.96^{t \psi})` (:math:`\psi` = ``momentum_decay``).

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``2e-3``.
        betas: running-average coefficients. Default: ``(0.9, 0.999)``.
        eps: denominator term. Default: ``1e-8``.
        weight_decay: weight decay (L2, or decoupled as AdamW). Default: ``0``.
        momentum_decay: the :math:`\psi` above. Default: ``4e-3``.
        decoupled_weight_decay: decay the weights directly (NAdamW). Default: False.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, capturable, differentiable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``mu_product`` (0-d float32, float64 under a float64
    default, as PyTorch), ``exp_avg`` and ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = _adam_defaults(
            "NAdam",
            lr,
            betas,
            eps,
            weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
        )
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, psi = group["lr"], group["eps"], group["momentum_decay"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_counter()
                state["mu_product"] = Tensor._wrap(np.ones((), dtype=scalar_dtype()))
                state["exp_avg"] = _zeros_state(p)
                state["exp_avg_sq"] = _zeros_state(p)
            step = _advance(state)
            xp = get_xp(g)
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
            mu_prod_arr = state["mu_product"].array
            mu_prod_arr *= mu  # kept in float32, as PyTorch keeps it
            mu_prod = float(mu_prod_arr)
            m, v = state["exp_avg"].array, state["exp_avg_sq"].array
            denom = _moments(g, m, v, beta1, beta2)
            xp.divide(v, 1 - beta2**step, out=denom)
            xp.sqrt(denom, out=denom)
            denom += eps
            p.array += (g / denom) * (-lr * (1.0 - mu) / (1.0 - mu_prod))
            p.array += (m / denom) * (-lr * mu_next / (1.0 - mu_prod * mu_next))


class RAdam(Optimizer):
    r"""RAdam (Liu et al.): Adam whose adaptive step is switched on, and rectified, once the
    variance of the adaptive learning rate is tractable; before that it is SGD with momentum.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-3``.
        betas: running-average coefficients. Default: ``(0.9, 0.999)``.
        eps: denominator term. Default: ``1e-8``.
        weight_decay: weight decay (L2, or decoupled as AdamW). Default: ``0``.
        decoupled_weight_decay: decay the weights directly. Default: False.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach, capturable, differentiable: accepted for PyTorch compatibility.

    State per parameter: ``step``, ``exp_avg`` and ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = _adam_defaults(
            "RAdam",
            lr,
            betas,
            eps,
            weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        rho_inf = 2 / (1 - beta2) - 1
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p, "exp_avg", "exp_avg_sq")
            step = _advance(state)
            xp = get_xp(g)
            m, v = state["exp_avg"].array, state["exp_avg_sq"].array
            tmp = _moments(g, m, v, beta1, beta2)
            bc1 = 1 - beta1**step
            bc2 = 1 - beta2**step
            rho_t = rho_inf - 2 * step * (beta2**step) / bc2
            xp.divide(m, bc1, out=tmp)
            tmp *= lr
            if rho_t > 5.0:
                rect = math.sqrt(
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                )
                adaptive = bc2**0.5 / (xp.sqrt(v) + eps)
                tmp *= adaptive
                tmp *= rect
            p.array -= tmp
