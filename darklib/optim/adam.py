"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from darklib.backend import get_xp
from darklib.kernels import fused
from darklib.optim.optimizer import (
    Optimizer,
    _advance,
    _check_fused_foreach,
    _check_lr,
    _moments,
    _new_state,
    _plain,
    _zeros_state,
)
from darklib.tensor import Tensor


def _check_adam_args(lr: float, betas: Any, eps: float, weight_decay: float) -> None:
    _check_lr(lr)
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


def _adam_defaults(
    who: str, lr: float, betas: Any, eps: float, weight_decay: float, **rest: Any
) -> dict[str, Any]:
    """Checked defaults of an Adam-family optimizer: lr, betas, eps, weight_decay, then
    ``rest`` in the order given (which must hold ``differentiable``)."""
    _check_adam_args(lr, betas, eps, weight_decay)
    if rest["differentiable"]:
        raise ValueError(f"{who}: differentiable=True is not supported by darklib")
    return {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, **rest}


def _tensor_betas(betas: Any, tensor_foreach: bool) -> Any:
    """torch Adam's checks of Tensor betas (both or neither, one element each, not with
    ``foreach`` unless ``capturable``); 1-element Tensors become 0-d."""
    is_tensor = [isinstance(b, Tensor) for b in betas]
    if len(betas) != 2 or not any(is_tensor):
        return betas
    if not all(is_tensor):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, b in enumerate(betas):
        if tensor_foreach:
            raise ValueError(
                f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True"
            )
        if b.numel() != 1:
            raise ValueError(f"Tensor betas[{i}] must be 1-element")
    return tuple(b.reshape(()) if b.ndim else b for b in betas)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), with PyTorch's bias correction, AMSGrad and maximize options.

    :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`, :math:`v \leftarrow \beta_2 v + (1-\beta_2)
    g^2`, :math:`\theta \leftarrow \theta - \frac{\text{lr}}{1-\beta_1^t}
    \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}`.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-3``.
        betas: coefficients of the running averages of the gradient and its square.
            Default: ``(0.9, 0.999)``.
        eps: term added to the denominator for numerical stability. Default: ``1e-8``.
        weight_decay: L2 penalty added to the gradient (decoupled in :class:`AdamW`).
            Default: ``0``.
        amsgrad: use the AMSGrad variant (the running maximum of ``v``). Default: False.
        maximize: maximize the objective instead of minimizing it. Default: False.
        decoupled_weight_decay: decay the weights directly, as AdamW. Default: False.
        foreach, capturable, differentiable, fused: accepted for PyTorch compatibility.

    State per parameter: ``step`` (a 0-d float32 tensor on the CPU, as PyTorch), ``exp_avg``,
    ``exp_avg_sq`` and, with AMSGrad, ``max_exp_avg_sq``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        tensor_foreach = bool(foreach) and not capturable
        _check_lr(lr, tensor_foreach)
        betas = _tensor_betas(betas, tensor_foreach)
        defaults = _adam_defaults(
            type(self).__name__,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)
        _check_fused_foreach(fused, foreach)

    def _step_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, amsgrad = group["lr"], group["eps"], group["amsgrad"]
        for p, g in self._grads(group):
            state = self.state[p]
            if not state:
                _new_state(state, p, "exp_avg", "exp_avg_sq")
                if amsgrad:
                    state["max_exp_avg_sq"] = _zeros_state(p)
            step = _advance(state)
            xp = get_xp(g)
            v = state["exp_avg_sq"].array
            m = state["exp_avg"].array
            if not amsgrad and fused.applies(g, p.array, m, v) and _plain(lr, beta1, beta2, eps):
                fused.kernel("adam")(
                    g, 1 - beta1, beta2, 1 - beta2, (1 - beta2**step) ** 0.5, eps,
                    -(lr / (1 - beta1**step)), p.array, m, v,
                )  # fmt: skip
                continue
            tmp = _moments(g, state["exp_avg"].array, v, beta1, beta2)
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            if amsgrad:
                vmax = state["max_exp_avg_sq"].array
                xp.maximum(vmax, v, out=vmax)
                v = vmax
            xp.sqrt(v, out=tmp)
            tmp /= bias_correction2_sqrt
            tmp += eps
            xp.divide(state["exp_avg"].array, tmp, out=tmp)
            tmp *= -(lr / bias_correction1)
            p.array += tmp


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter): the weights shrink by
    ``lr * weight_decay`` each step instead of an L2 term entering the gradient.

    Args:
        params: tensors or parameter groups to optimize.
        lr: learning rate. Default: ``1e-3``.
        betas: running-average coefficients. Default: ``(0.9, 0.999)``.
        eps: denominator term. Default: ``1e-8``.
        weight_decay: decoupled weight decay coefficient. Default: ``1e-2``.
        amsgrad: use the AMSGrad variant. Default: False.
        maximize: maximize the objective instead of minimizing it. Default: False.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW always decouples, whatever was saved
            group["decoupled_weight_decay"] = True
