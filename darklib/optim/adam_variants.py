"""Adam variants: Adamax (infinity norm), NAdam (Nesterov momentum) and RAdam (rectified)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from darklib import autograd
from darklib.backend import get_xp
from darklib.optim.optimizer import (
    Optimizer,
    _check_grad,
    _effective_grad,
    _step_counter,
    _zeros_state,
)
from darklib.tensor import Tensor


def _check_adam_args(lr: float, betas: Any, eps: float, weight_decay: float) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: expected two values, got {betas!r}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _moments(g: Any, m: Any, v: Any, beta1: float, beta2: float) -> Any:
    """``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``; returns a scratch."""
    xp = get_xp(g)
    tmp = xp.multiply(g, g)
    tmp *= 1 - beta2
    v *= beta2
    v += tmp
    xp.subtract(g, m, out=tmp)
    tmp *= 1 - beta1
    m += tmp
    return tmp


def _decayed_grad(p: Tensor, group: dict) -> Any:
    """The gradient used by the update; decoupled weight decay shrinks the weights instead."""
    wd = group["weight_decay"]
    if wd != 0 and group.get("decoupled_weight_decay", False):
        p.array *= 1 - group["lr"] * wd
        wd = 0
    g, _ = _effective_grad(p, group["maximize"], wd)
    return g


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
        _check_adam_args(lr, betas, eps, weight_decay)
        if differentiable:
            raise ValueError("Adamax: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step.

        Args:
            closure: optional function that re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        with autograd.no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    _check_grad(p, "Adamax")
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _step_counter()
                        state["exp_avg"] = _zeros_state(p)
                        state["exp_inf"] = _zeros_state(p)
                    step_arr = state["step"].array
                    step_arr += 1
                    xp = get_xp(p.array)
                    g, _ = _effective_grad(p, group["maximize"], group["weight_decay"])
                    m, u = state["exp_avg"].array, state["exp_inf"].array
                    tmp = xp.subtract(g, m)
                    tmp *= 1 - beta1
                    m += tmp
                    u *= beta2
                    xp.abs(g, out=tmp)
                    tmp += group["eps"]
                    xp.maximum(u, tmp, out=u)
                    clr = group["lr"] / (1 - beta1 ** float(step_arr))
                    xp.divide(m, u, out=tmp)
                    tmp *= -clr
                    p.array += tmp
                    p._version += 1
        return loss


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

    State per parameter: ``step``, ``mu_product`` (0-d float32, as PyTorch), ``exp_avg`` and
    ``exp_avg_sq``.
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
        _check_adam_args(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        if differentiable:
            raise ValueError("NAdam: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step.

        Args:
            closure: optional function that re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        with autograd.no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                lr, eps, psi = group["lr"], group["eps"], group["momentum_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    _check_grad(p, "NAdam")
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _step_counter()
                        state["mu_product"] = Tensor._wrap(np.ones((), dtype=np.float32))
                        state["exp_avg"] = _zeros_state(p)
                        state["exp_avg_sq"] = _zeros_state(p)
                    step_arr = state["step"].array
                    step_arr += 1
                    step = float(step_arr)
                    xp = get_xp(p.array)
                    g = _decayed_grad(p, group)
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
                    p._version += 1
        return loss


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
        _check_adam_args(lr, betas, eps, weight_decay)
        if differentiable:
            raise ValueError("RAdam: differentiable=True is not supported by darklib")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step.

        Args:
            closure: optional function that re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        with autograd.no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                lr, eps = group["lr"], group["eps"]
                rho_inf = 2 / (1 - beta2) - 1
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    _check_grad(p, "RAdam")
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _step_counter()
                        state["exp_avg"] = _zeros_state(p)
                        state["exp_avg_sq"] = _zeros_state(p)
                    step_arr = state["step"].array
                    step_arr += 1
                    step = float(step_arr)
                    xp = get_xp(p.array)
                    g = _decayed_grad(p, group)
                    m, v = state["exp_avg"].array, state["exp_avg_sq"].array
                    tmp = _moments(g, m, v, beta1, beta2)
                    bc1 = 1 - beta1**step
                    bc2 = 1 - beta2**step
                    rho_t = rho_inf - 2 * step * (beta2**step) / bc2
                    xp.divide(m, bc1, out=tmp)
                    tmp *= lr
                    if rho_t > 5.0:
                        rect = math.sqrt(
                            (rho_t - 4)
                            * (rho_t - 2)
                            * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                        )
                        adaptive = bc2**0.5 / (xp.sqrt(v) + eps)
                        tmp *= adaptive
                        tmp *= rect
                    p.array -= tmp
                    p._version += 1
        return loss
