"""Pruning, as ``torch.nn.utils.prune``: zero out parts of a parameter through a mask.

Pruning parameter ``name`` of a module moves it to ``name + "_orig"``, adds the buffer
``name + "_mask"`` and makes ``module.name`` the product of the two, recomputed by a forward
pre-hook before every call, so that the optimizer trains ``name_orig`` and the pruned
entries get no gradient. Pruning the same parameter again prunes among what is left (a
:class:`PruningContainer` keeps the history); :func:`remove` makes it permanent.

    >>> prune.l1_unstructured(model.fc, "weight", amount=0.3)   # the 30% smallest |w|
    >>> prune.ln_structured(model.conv, "weight", amount=2, n=2, dim=0)  # 2 output channels
    >>> prune.global_unstructured(
    ...     [(model.conv, "weight"), (model.fc, "weight")], prune.L1Unstructured, amount=0.5)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

from darklib import creation
from darklib.errors import InvalidType, InvalidValue
from darklib.grad_mode import no_grad
from darklib.nn.module import Module
from darklib.nn.parameter import Parameter
from darklib.ops.reduction import norm as _norm
from darklib.ops.shape import cat
from darklib.tensor import Tensor

__all__ = [
    "BasePruningMethod",
    "CustomFromMask",
    "Identity",
    "L1Unstructured",
    "LnStructured",
    "PruningContainer",
    "RandomStructured",
    "RandomUnstructured",
    "custom_from_mask",
    "global_unstructured",
    "identity",
    "is_pruned",
    "l1_unstructured",
    "ln_structured",
    "random_structured",
    "random_unstructured",
    "remove",
]


def _check_amount(amount: Any) -> None:
    """An amount is a number of entries (int >= 0) or a fraction (float in [0, 1])."""
    if not isinstance(amount, numbers.Real) or isinstance(amount, bool):
        raise InvalidType(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
        not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0
    ):
        raise InvalidValue(
            f"amount={amount} should either be a float in the range [0, 1] or a non-negative "
            "integer"
        )


def _how_many(amount: Any, size: int) -> int:
    """Entries (or channels) to prune out of ``size``."""
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise InvalidValue(
                f"amount={amount} should be smaller than the number of parameters to prune={size}"
            )
        return int(amount)
    return round(float(amount) * size)


def _check_dim(t: Tensor, dim: int) -> None:
    if not -t.ndim <= dim < t.ndim:
        raise InvalidValue(
            f"Invalid index {dim} for tensor of size {tuple(t.shape)}: dim must be in "
            f"[{-t.ndim}, {t.ndim - 1}]"
        )


class BasePruningMethod:
    """A way to compute a mask. Subclasses set ``PRUNING_TYPE`` ('unstructured',
    'structured' with a ``dim``, or 'global') and define :meth:`compute_mask`."""

    PRUNING_TYPE: str = "unstructured"
    _tensor_name: str

    def __call__(self, module: Module, inputs: Any) -> None:
        """The forward pre-hook: ``module.name`` = original * mask, before each call."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def apply_mask(self, module: Module) -> Tensor:
        name = self._tensor_name
        return getattr(module, name + "_mask") * getattr(module, name + "_orig")

    @classmethod
    def apply(
        cls, module: Module, name: str, *args: Any, importance_scores: Any = None, **kwargs: Any
    ) -> BasePruningMethod:
        """Prune ``module.name`` with a new ``cls(*args, **kwargs)``, combined with the
        pruning already applied to it, if any."""
        old = None
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                if old is not None:
                    raise RuntimeError(
                        f"Cannot apply pruning: {name} of {type(module).__name__} already has "
                        "two pruning hooks"
                    )
                old = hook
                del module._forward_pre_hooks[key]
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old is not None:  # (a new container: the old one stays as it was if this fails)
            earlier = tuple(old) if isinstance(old, PruningContainer) else (old,)
            method = PruningContainer(*earlier, method)
        orig = getattr(module, name)
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(orig.shape):
            raise InvalidValue(
                f"importance_scores should have the same shape as parameter {name} of "
                f"{type(module).__name__}: {tuple(importance_scores.shape)} against "
                f"{tuple(orig.shape)}"
            )
        scores = orig if importance_scores is None else importance_scores
        if old is None:  # first pruning: the parameter becomes name_orig, plus a mask
            if not isinstance(orig, Parameter):
                raise InvalidType(
                    f"Parameter '{name}' of {type(module).__name__} is not a Parameter (got "
                    f"{type(orig).__name__}); only parameters can be pruned"
                )
            default_mask = creation.ones_like(orig)
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            with no_grad():
                mask = method.compute_mask(scores.detach(), default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
        except Exception:
            if old is None:  # the module as it was: the parameter back under its name
                module._parameters.pop(name + "_orig")
                module.register_parameter(name, orig)
            else:
                module.register_forward_pre_hook(old)
            raise
        module.register_forward_pre_hook(method)
        return method

    def prune(
        self, t: Tensor, default_mask: Tensor | None = None, importance_scores: Any = None
    ) -> Tensor:
        """``t`` pruned by this method's mask (computed from ``importance_scores`` if given),
        without touching any module."""
        scores = t if importance_scores is None else importance_scores
        if default_mask is None:
            default_mask = creation.ones_like(t)
        return t * self.compute_mask(scores, default_mask)

    def remove(self, module: Module) -> None:
        """Make the pruning permanent: ``module.name`` becomes a plain parameter holding the
        pruned values; ``name_orig``, ``name_mask`` and the hook go."""
        name = self._tensor_name
        if name + "_orig" not in module._parameters:
            raise InvalidValue(
                f"Parameter '{name}' of module {type(module).__name__} has to be pruned before "
                "pruning can be removed"
            )
        weight = self.apply_mask(module)
        if hasattr(module, name):
            delattr(module, name)
        orig = module._parameters[name + "_orig"]
        with no_grad():
            orig.copy_(weight)
        del module._parameters[name + "_orig"]
        del module._buffers[name + "_mask"]
        module.register_parameter(name, orig)


class PruningContainer(BasePruningMethod):
    """The pruning methods applied one after the other to one parameter: each prunes
    among the entries (or channels) that the earlier ones left."""

    def __init__(self, *args: BasePruningMethod):
        self._pruning_methods: tuple[BasePruningMethod, ...] = ()
        if len(args) == 1 and not isinstance(args[0], BasePruningMethod):
            args = tuple(args[0])
        for method in args:
            self.add_pruning_method(method)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise InvalidType(f"{type(method)} is not a BasePruningMethod subclass")
        if method is None:
            return
        if self._pruning_methods and method._tensor_name != self._tensor_name:
            raise InvalidValue(
                f"Can only add pruning methods acting on the parameter named "
                f"'{self._tensor_name}' to PruningContainer. Found '{method._tensor_name}'"
            )
        self._tensor_name = method._tensor_name
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self) -> Any:
        return iter(self._pruning_methods)

    def __getitem__(self, idx: int) -> BasePruningMethod:
        return self._pruning_methods[idx]

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The last method's mask, computed on what the earlier masks left of ``t``."""
        method = self._pruning_methods[-1]
        kind = method.PRUNING_TYPE
        if kind == "unstructured":
            alive = default_mask == 1
            mask = default_mask.clone()
            if bool(alive.any()):
                part = method.compute_mask(t[alive], default_mask=default_mask[alive])
                mask[alive] = part.to(mask.dtype)
            return mask
        if kind == "structured":
            dim = method.dim % t.ndim
            others = tuple(d for d in range(t.ndim) if d != dim)
            # channels that still hold an unpruned entry
            keep = (default_mask != 0).any(dim=others) if others else default_mask != 0
            mask = default_mask.clone()
            if bool(keep.any()):
                index = [slice(None)] * t.ndim
                index[dim] = keep
                part = method.compute_mask(t[tuple(index)], default_mask[tuple(index)])
                mask[tuple(index)] = part.to(mask.dtype)
            return mask
        if kind == "global":
            return method.compute_mask(t, default_mask) * default_mask
        raise InvalidValue(f"Unrecognized PRUNING_TYPE {kind}")


class Identity(BasePruningMethod):
    """Prunes nothing: a mask of ones (a parameterisation to prune by hand later)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask

    @classmethod
    def apply(cls, module: Module, name: str) -> BasePruningMethod:  # type: ignore[override]
        return super().apply(module, name)


def _zero_lowest(scores: Tensor, k: int, default_mask: Tensor) -> Tensor:
    """``default_mask`` with its entries at the ``k`` lowest ``scores`` set to 0."""
    mask = default_mask.clone()
    if k:
        lowest = scores.reshape(-1).topk(k, largest=False).indices
        mask.view(-1)[lowest] = 0
    return mask


class RandomUnstructured(BasePruningMethod):
    """Prunes ``amount`` entries (a count, or a fraction) chosen at random."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: Any):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        k = _how_many(self.amount, t.numel())
        return _zero_lowest(creation.rand_like(t.float()), k, default_mask)

    @classmethod
    def apply(cls, module: Module, name: str, amount: Any) -> BasePruningMethod:  # type: ignore[override]
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prunes the ``amount`` entries of smallest absolute value."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: Any):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return _zero_lowest(t.abs(), _how_many(self.amount, t.numel()), default_mask)

    @classmethod
    def apply(  # type: ignore[override]
        cls, module: Module, name: str, amount: Any, importance_scores: Any = None
    ) -> BasePruningMethod:
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


def _channel_mask(t: Tensor, dim: int, keep: Tensor, default_mask: Tensor) -> Tensor:
    """``default_mask`` with the channels along ``dim`` not in ``keep`` (bool) zeroed."""
    shape = [1] * t.ndim
    shape[dim] = t.shape[dim]
    return default_mask * keep.reshape(shape).to(default_mask.dtype)


class RandomStructured(BasePruningMethod):
    """Prunes ``amount`` whole channels along ``dim``, chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, dim: int = -1):
        _check_amount(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        _check_dim(t, self.dim)
        n = t.shape[self.dim]
        k = _how_many(self.amount, n)
        if k == 0:
            return default_mask
        score = creation.rand(n, device=t.device)  # (on the parameter's device, as its mask)
        keep = creation.ones(n, dtype=bool, device=t.device)
        keep[score.topk(k, largest=False).indices] = False
        return _channel_mask(t, self.dim, keep, default_mask)

    @classmethod
    def apply(  # type: ignore[override]
        cls, module: Module, name: str, amount: Any, dim: int = -1
    ) -> BasePruningMethod:
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prunes the ``amount`` channels along ``dim`` of smallest L``n`` norm (``n`` as
    ``dl.norm``'s ``p``: an int, a float, inf, -inf, 'fro' or 'nuc')."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, n: Any, dim: int = -1):
        _check_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        _check_dim(t, self.dim)
        dim = self.dim % t.ndim
        size = t.shape[dim]
        k = _how_many(self.amount, size)
        if k == 0:
            return default_mask
        others = [d for d in range(t.ndim) if d != dim]
        norms = _norm(t, p=self.n, dim=others) if others else t.abs()
        keep = creation.zeros(size, dtype=bool, device=t.device)
        keep[norms.topk(size - k, largest=True).indices] = True
        return _channel_mask(t, dim, keep, default_mask)

    @classmethod
    def apply(  # type: ignore[override]
        cls,
        module: Module,
        name: str,
        amount: Any,
        n: Any,
        dim: int,
        importance_scores: Any = None,
    ) -> BasePruningMethod:
        return super().apply(
            module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores
        )


class CustomFromMask(BasePruningMethod):
    """Prunes by a given mask (1 keeps an entry, 0 prunes it)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor):
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if tuple(self.mask.shape) != tuple(default_mask.shape):
            raise InvalidValue(
                f"custom_from_mask: the mask's shape {tuple(self.mask.shape)} differs from the "
                f"parameter's {tuple(default_mask.shape)}"
            )
        return default_mask * self.mask.to(dtype=default_mask.dtype, device=default_mask.device)

    @classmethod
    def apply(cls, module: Module, name: str, mask: Tensor) -> BasePruningMethod:  # type: ignore[override]
        return super().apply(module, name, mask=mask)


def identity(module: Module, name: str) -> Module:
    """Reparameterise ``module.name`` as ``name_orig * name_mask`` with a mask of ones."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount: Any) -> Module:
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(
    module: Module, name: str, amount: Any, importance_scores: Any = None
) -> Module:
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount: Any, dim: int) -> Module:
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(
    module: Module, name: str, amount: Any, n: Any, dim: int, importance_scores: Any = None
) -> Module:
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module: Module, name: str, mask: Tensor) -> Module:
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(
    parameters: Iterable[tuple[Module, str]],
    pruning_method: type[BasePruningMethod],
    importance_scores: dict | None = None,
    **kwargs: Any,
) -> None:
    """Prune several parameters together: ``pruning_method(**kwargs)`` (an unstructured
    method, e.g. L1Unstructured with ``amount``) picks among all their entries at once, so
    layers lose different shares. ``importance_scores`` maps (module, name) to scores used
    in place of the parameter."""
    params = list(parameters)
    if not params:
        raise InvalidValue("global_unstructured: parameters must name at least one parameter")
    importance_scores = importance_scores or {}
    if not isinstance(importance_scores, dict):
        raise InvalidType("global_unstructured: importance_scores must be a dict or None")
    scores = cat(
        [
            importance_scores.get((module, name), getattr(module, name)).detach().reshape(-1)
            for module, name in params
        ]
    )
    masks = cat(
        [
            getattr(module, name + "_mask", creation.ones_like(getattr(module, name))).reshape(-1)
            for module, name in params
        ]
    )
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(
            'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
            f"{pruning_method} of type {method.PRUNING_TYPE}"
        )
    container = PruningContainer(method)
    with no_grad():
        final = container.compute_mask(scores, default_mask=masks)
    start = 0
    for module, name in params:
        param = getattr(module, name)
        n = param.numel()
        custom_from_mask(module, name, final[start : start + n].reshape(param.shape))
        start += n


def remove(module: Module, name: str) -> Module:
    """Make the pruning of ``module.name`` permanent (see :meth:`BasePruningMethod.remove`)."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise InvalidValue(
        f"Parameter '{name}' of module {type(module).__name__} has to be pruned before "
        "pruning can be removed"
    )


def is_pruned(module: Module) -> bool:
    """Whether ``module`` or one of its submodules holds a pruned parameter."""
    return any(
        isinstance(hook, BasePruningMethod)
        for m in module.modules()
        for hook in m._forward_pre_hooks.values()
    )
