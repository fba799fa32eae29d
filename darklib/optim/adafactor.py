"""Adafactor: Adam-like steps with factored second moments and relative step sizes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.optim.optimizer import Optimizer, _advance, _check_grad, _check_lr, _step_counter
from darklib.tensor import Tensor


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer and Stern, 2018), as ``torch.optim.Adafactor``.

    No first moment; the second moment of a matrix (or of each matrix of a stack: the last
    two dims) is kept as a row factor and a column factor, O(m + n) memory instead of
    O(mn), and vectors keep a full one. At step :math:`t`, with
    :math:`\hat\beta_t = t^{\text{beta2\_decay}}` the weight of the new squared gradient,
    :math:`\rho_t = \min(\text{lr}, 1/\sqrt t)` and the parameter's RMS setting the scale
    (:math:`\alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta))\,\rho_t`), the update is
    :math:`u = g / \sqrt{\max(\hat v, \epsilon_1^2)}`, divided by
    :math:`\max(1, \mathrm{RMS}(u) / d)` and scaled by :math:`\alpha_t`.

    Args:
        params: tensors or parameter groups to optimize.
        lr: the cap of the relative step size :math:`\rho_t`. Default: ``1e-2``.
        beta2_decay: exponent of the second-moment decay (<= 0). Default: ``-0.8``.
        eps: ``(eps1, eps2)``: the floor of the second moment (None: the dtype's machine
            epsilon) and of the parameter's RMS. Default: ``(None, 1e-3)``.
        d: the clipping threshold on the update's RMS (>= 1). Default: ``1.0``.
        weight_decay: decoupled decay, ``theta *= 1 - lr * weight_decay``. Default: 0.
        maximize: maximize the objective instead of minimizing it. Default: False.
        foreach: accepted for PyTorch compatibility.

    State per parameter: ``step``, then ``row_var`` and ``col_var`` for tensors of two or
    more dims, or ``variance``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": eps,
            "d": d,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, decay, d, wd = group["lr"], group["beta2_decay"], group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            _check_grad(p, "Adafactor")
            x, g = p.array, p.grad.array
            xp = get_xp(x)
            if group["maximize"]:
                g = -g
            state = self.state[p]
            if not state:
                state["step"] = _step_counter()
                if g.ndim > 1:
                    state["row_var"] = Tensor._wrap(xp.zeros((*g.shape[:-1], 1), g.dtype))
                    state["col_var"] = Tensor._wrap(
                        xp.zeros((*g.shape[:-2], 1, g.shape[-1]), g.dtype)
                    )
                else:
                    state["variance"] = Tensor._wrap(xp.zeros_like(g))
            t = _advance(state)
            floor = np.finfo(x.dtype).eps if eps1 is None else eps1
            new = t**decay  # the weight of this step's squared gradient
            scale = max(eps2, _rms(x)) * min(lr, 1 / math.sqrt(t))
            if wd != 0:
                x *= 1 - lr * wd
            sq = g * g
            if g.ndim > 1:
                row, col = state["row_var"].array, state["col_var"].array
                _lerp(row, sq.mean(axis=-1, keepdims=True), new)
                _lerp(col, sq.mean(axis=-2, keepdims=True), new)
                v = xp.matmul(row, col)
                v /= xp.maximum(row.mean(axis=-2, keepdims=True), floor)
            else:
                var = state["variance"].array
                _lerp(var, sq, new)
                v = var.copy()
            # sqrt(max(v, floor^2)) as max(sqrt(v), floor): floor^2 (1e-40 for eps1=1e-20)
            # is a float32 subnormal, which GPU kernels flush to zero (0 / 0 = NaN where g = 0)
            u = g / xp.maximum(xp.sqrt(v), floor)
            x -= (scale / max(1.0, _rms(u) / d)) * u
            p._version += 1


def _rms(a: Any) -> float:
    """The root mean square of an array, as a Python float (0 for an empty one)."""
    n = a.size
    return float(get_xp(a).linalg.norm(a.reshape(-1))) / math.sqrt(n) if n else math.nan


def _lerp(a: Any, b: Any, w: float) -> None:
    """``a += w * (b - a)`` in place (torch's ``lerp_``)."""
    d = b - a
    d *= w
    a += d
