"""Muon: momentum whose update is orthogonalised by a Newton-Schulz iteration, for 2-D weights."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.kernels import parallel
from darklib.optim.optimizer import Optimizer, _check_grad, _check_lr
from darklib.tensor import Tensor

# Keller Jordan's quintic coefficients, tuned for the steepest slope at zero
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


class Muon(Optimizer):
    r"""Muon (Keller Jordan), as PyTorch's: SGD momentum whose update is replaced by an
    approximately orthogonal matrix of the same row and column spaces.

    :math:`B \leftarrow \mu B + (1-\mu) g` (a lerp), the update is :math:`B` or, with Nesterov,
    :math:`g + \mu (B - g)`; it is orthogonalised by ``ns_steps`` Newton-Schulz iterations
    :math:`X \leftarrow aX + (bA + cA^2)X`, :math:`A = XX^\top`, run in bfloat16 precision as
    torch runs them (darklib rounds float32 results to bfloat16). Then
    :math:`\theta \leftarrow (1 - \text{lr}\,\lambda)\,\theta - \text{lr}'\, O` with ``lr'`` the
    lr scaled for the matrix shape ``(A, B)``: :math:`\sqrt{\max(1, A/B)}` (``"original"``,
    the default) or :math:`0.2\sqrt{\max(A, B)}` (``"match_rms_adamw"``).

    Args:
        params: 2-D tensors (or groups of them) to optimize: give biases, norms and embeddings
            to another optimizer such as AdamW.
        lr: learning rate. Default: ``1e-3``.
        weight_decay: decoupled weight decay. Default: ``0.1``.
        momentum: momentum factor. Default: ``0.95``.
        nesterov: use Nesterov momentum. Default: True.
        ns_coefficients: the ``(a, b, c)`` of the iteration. Default: ``(3.4445, -4.775,
            2.0315)``.
        eps: lower bound of the norm the update is first divided by. Default: ``1e-7``.
        ns_steps: Newton-Schulz iterations (less than 100). Default: ``5``.
        adjust_lr_fn: ``None``/``"original"`` or ``"match_rms_adamw"``. Default: None.

    State per parameter: ``momentum_buffer``.

    Example::

        >>> hidden = [p for p in model.parameters() if p.ndim == 2]
        >>> rest = [p for p in model.parameters() if p.ndim != 2]
        >>> opts = [dl.optim.Muon(hidden, lr=0.02), dl.optim.AdamW(rest, lr=3e-4)]
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = _NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {p.size()}"
                    )

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            _check_grad(p, "Muon")
            g = p.grad.array
            if g.ndim != 2:
                raise ValueError("Param gradient must be a 2D matrix")
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = Tensor._wrap(get_xp(g).zeros_like(g))
            buf = state["momentum_buffer"].array
            _lerp(buf, g, 1 - momentum, out=buf)
            update = _lerp(g, buf, momentum) if group["nesterov"] else buf
            ortho = _orthogonalize(
                update, group["ns_coefficients"], group["ns_steps"], group["eps"]
            ).astype(p.array.dtype, copy=False)
            p.array *= 1 - lr * weight_decay
            ortho *= -_adjust_lr(lr, group["adjust_lr_fn"], p.array.shape)
            p.array += ortho
            p._version += 1


def _lerp(start: Any, end: Any, weight: float, out: Any = None) -> Any:
    """``torch.lerp`` on arrays: the weight in the arrays' precision, and the result taken
    from ``end`` when the weight is at least 0.5 (as torch, so that weight 1 gives ``end``)."""
    xp = get_xp(start)
    w = start.dtype.type(weight)
    diff = xp.subtract(end, start)
    if abs(w) < 0.5:
        diff *= w
        return xp.add(start, diff, out=out)
    diff *= 1 - w
    return xp.subtract(end, diff, out=out)


def _bfloat16(x: Any) -> Any:
    """``x`` rounded to bfloat16 (to nearest, ties to even), kept as float32: the precision
    of torch's ``.bfloat16()`` tensors and of each of their operations' results."""
    xp = get_xp(x)
    x = xp.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    rounded = bits + (((bits >> 16) & 1) + 0x7FFF).astype(np.uint32)
    rounded &= np.uint32(0xFFFF0000)
    return xp.where(xp.isnan(x), x, rounded.view(np.float32))


def _matmul(a: Any, b: Any) -> Any:
    return parallel.matmul(a, b) if get_xp(a) is np else get_xp(a).matmul(a, b)


def _orthogonalize(grad: Any, coefficients: Any, steps: int, eps: float) -> Any:
    """The Newton-Schulz iteration towards the orthogonal factor of ``grad`` (in bfloat16
    precision, as torch's ``_zeropower_via_newtonschulz``); a float32 array."""
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    xp = get_xp(grad)
    tall = grad.shape[0] > grad.shape[1]
    x = _bfloat16(grad.T if tall else grad)  # the Gram matrix of the short side
    norm = _bfloat16(xp.sqrt(xp.sum(xp.square(x), dtype=np.float32)))
    x = _bfloat16(x / xp.maximum(norm, _bfloat16(xp.float32(eps))))
    for _ in range(steps):
        gram = _bfloat16(_matmul(x, x.T))
        poly = _matmul(gram, gram)  # addmm: one rounding of b*A + c*A@A
        poly *= np.float32(c)
        poly += gram * np.float32(b)
        poly = _bfloat16(poly)
        step = _matmul(poly, x)
        step += x * np.float32(a)
        x = _bfloat16(step)
    return x.T if tall else x


def _adjust_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    """The lr scaled for a ``(rows, cols)`` matrix so that updates have a like RMS."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr
