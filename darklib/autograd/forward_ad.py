"""``dl.autograd.forward_ad``: dual tensors, as ``torch.autograd.forward_ad``.

    >>> with forward_ad.dual_level():
    ...     x = forward_ad.make_dual(primal, tangent)
    ...     y = f(x)
    ...     jvp = forward_ad.unpack_dual(y).tangent   # J_f(primal) @ tangent

darklib's engine is reverse-mode only, so the tangents are not carried along with each op:
``make_dual`` starts recording a graph from the primal, and ``unpack_dual`` computes the
tangent of its argument from that graph by the double-vjp trick (the vjp as a function of
its cotangent, differentiated again along the tangents), two backward passes per call. The
values are forward-mode AD's; the cost grows with each ``unpack_dual``, so unpack the
results, not every intermediate.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from darklib.autograd import grad as _grad
from darklib.creation import zeros_like
from darklib.errors import InvalidValue
from darklib.grad_mode import enable_grad
from darklib.tensor import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level",
           "make_dual", "unpack_dual"]  # fmt: skip

_levels: list[list[tuple[Tensor, Tensor]]] = []  # per open level: its (dual, tangent) pairs


class UnpackedDualTensor(NamedTuple):
    primal: Tensor
    tangent: Tensor | None


def enter_dual_level() -> int:
    """Open a level for dual tensors (levels do not nest, as in torch)."""
    if _levels:
        raise RuntimeError(
            "Nested forward mode AD is not supported at the moment (a dual level is open)"
        )
    _levels.append([])
    return len(_levels) - 1


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the level: its tangents are dropped."""
    if not _levels:
        raise RuntimeError("exit_dual_level: no dual level is open")
    _levels.pop()


class dual_level:
    """``with dual_level():`` a scope for dual tensors, as torch's."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc: Any) -> None:
        exit_dual_level()


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A tensor with ``tensor``'s values whose forward gradient is ``tangent`` (same shape)."""
    if not _levels:
        raise RuntimeError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to "
            "enter_dual_level() first."
        )
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise InvalidValue(
            "Trying to set a forward gradient that has a different size than that of the "
            f"original Tensor, this is not supported. Tensor is of size {list(tensor.shape)} "
            f"while the given forward gradient is of size {list(tangent.shape)}."
        )
    if not tensor.is_floating_point():
        raise InvalidValue(f"make_dual: expected a floating-point tensor, got {tensor.dtype}")
    with enable_grad():
        dual = tensor.detach().requires_grad_(True) if not tensor.requires_grad else tensor * 1
    _levels[-1].append((dual, tangent.detach()))
    return dual


def unpack_dual(tensor: Any, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor``: its tangent is the Jacobian of the ops from the
    open level's dual tensors to it, applied to their tangents (None if it depends on
    none of them, or outside a level)."""
    if not isinstance(tensor, Tensor) or not _levels:
        return UnpackedDualTensor(tensor, None)
    pairs = _levels[-1]
    for dual, tangent in pairs:
        if tensor is dual:
            return UnpackedDualTensor(tensor, tangent)
    if not (tensor.requires_grad and tensor.is_floating_point()) or not pairs:
        return UnpackedDualTensor(tensor, None)
    duals = [d for d, _ in pairs]
    with enable_grad():
        u = zeros_like(tensor).requires_grad_(True)  # the vjp's cotangent, a dummy
        vjps = _grad(tensor, duals, u, create_graph=True, allow_unused=True)
        used = [(g, t) for g, (_, t) in zip(vjps, pairs) if g is not None and g.requires_grad]
        if not used:
            return UnpackedDualTensor(tensor, None)
        (tangent,) = _grad([g for g, _ in used], [u], [t for _, t in used], allow_unused=True)
    return UnpackedDualTensor(tensor, None if tangent is None else tangent.detach())
