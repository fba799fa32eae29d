"""Helpers shared by the distributions: parameter broadcasting, probs <-> logits (and the
mixin of the families given one of the two), lazy and alias properties, and draws from the
generator's raw streams (gamma, Poisson, binomial)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import darklib as dl
from darklib import random as _random
from darklib.backend import get_xp
from darklib.tensor import Size, Tensor


def broadcast_all(*values: Any) -> tuple[Tensor, ...]:
    """The values (tensors or numbers) as tensors of one broadcast shape. Numbers take the
    dtype and device of the first tensor, or the default dtype when there is none."""
    if not all(isinstance(v, Tensor | numbers.Number) for v in values):
        kinds = ", ".join(type(v).__name__ for v in values)
        raise ValueError(
            f"Input arguments must all be instances of numbers.Number or Tensor, got {kinds}"
        )
    like = next((v for v in values if isinstance(v, Tensor)), None)
    if like is None:
        dtype, device = dl.get_default_dtype(), None
    else:
        dtype = like.dtype if like.dtype.is_floating_point else dl.get_default_dtype()
        device = like.device
    tensors = [
        v if isinstance(v, Tensor) else dl.tensor(float(v), dtype=dtype, device=device)
        for v in values
    ]
    shape = dl.broadcast_shapes(*(t.shape for t in tensors))
    # a tensor already of the broadcast shape is kept itself (``Normal(loc, s).loc is loc``)
    return tuple(t if t.shape == shape else t.expand(shape) for t in tensors)


def as_float(value: Any, like: Tensor | None = None) -> Tensor:
    """``value`` as a floating tensor (numbers take ``like``'s dtype and device)."""
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return dl.tensor(value, dtype=like.dtype, device=like.device)
    return dl.tensor(value, dtype=dl.get_default_dtype())


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """Sum out the ``dim`` rightmost dimensions."""
    if dim == 0:
        return value
    return value.reshape((*value.shape[: value.dim() - dim], -1)).sum(-1)


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities clamped to [eps, 1 - eps] of their dtype."""
    eps = dl.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    return dl.sigmoid(logits) if is_binary else dl.softmax(logits, dim=-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    p = clamp_probs(probs)
    return dl.log(p) - dl.log1p(-p) if is_binary else dl.log(p)


def one_parameter(probs: Any, logits: Any) -> None:
    """Refuse both or neither of ``probs`` and ``logits`` (every two-way family does)."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


def alias(path: str) -> property:
    """A read-only property returning the attribute at ``path``, dotted for a member's
    (``probs = alias("base_dist.probs")``)."""
    return property(attrgetter(path))


class lazy_property:
    """A property computed on first access and then kept in the instance's ``__dict__``
    (so that a distribution's repr shows the parameters it was built from, as torch's)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        with dl.enable_grad():
            value = self.fn(instance)
        instance.__dict__[self.fn.__name__] = value
        return value


_NO_COUNT: Any = object()


class ProbsOrLogits:
    """Mixin of the families given exactly one of ``probs`` and ``logits``: the one given is
    kept (and as ``_param``), the other is computed on first use. ``_binary``: one success
    probability per draw (sigmoid, log-odds); else the last dimension holds K categories
    (softmax, log-probabilities)."""

    _binary = True
    _param: Tensor
    _expanded: Callable[..., Any]

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=self._binary)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=self._binary)

    def _set_probs_or_logits(self, probs: Any, logits: Any, total_count: Any = _NO_COUNT) -> Size:
        """Keep whichever of ``probs`` and ``logits`` is given, broadcast with
        ``total_count`` when the family has one (the count takes the parameter's dtype);
        returns the batch shape (empty when only numbers were given)."""
        one_parameter(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        if total_count is _NO_COUNT:
            (param,) = broadcast_all(given)
            batch_shape = Size() if scalar_shape(given) else param.shape
        else:
            count, param = broadcast_all(total_count, given)
            self.total_count = count.to(param.dtype)
            batch_shape = param.shape
        setattr(self, name, param)
        self._param = param
        return batch_shape

    def _expand_probs_or_logits(
        self, batch_shape: Any, _instance: Any, cls: type, **params: Tensor
    ) -> Any:
        """The body of ``expand``: ``params`` and the parameter given, broadcast."""
        name = "probs" if "probs" in self.__dict__ else "logits"
        new = self._expanded(batch_shape, _instance, cls, **params, **{name: self.__dict__[name]})
        new._param = new.__dict__[name]
        return new


class ProbsOrLogitsParam(ProbsOrLogits):
    """:class:`ProbsOrLogits` with torch's ``param_shape``: the shape of the parameter given."""

    @property
    def param_shape(self) -> Size:
        return self._param.shape


def extended(sample_shape: Any, *shapes: Any) -> Size:
    return Size(tuple(sample_shape) + sum((tuple(s) for s in shapes), ()))


def draw(kind: str, shape: tuple, like: Tensor, *params: Tensor) -> Tensor:
    """Samples of ``shape`` from one of the generator's raw streams (``standard_gamma``,
    ``poisson``, ``binomial``), with broadcast parameter tensors (no gradient), in
    ``like``'s dtype and on its device."""
    arrays = [p.detach().expand(shape).array for p in params]
    xp = get_xp(like.array)
    if kind == "binomial":  # (the generators take integer counts only)
        arrays[0] = arrays[0].astype(xp.int64)
    # the default generator's streams, so that dl.manual_seed (and vmap's randomness) govern
    out = _random.default_generator.sample(kind, xp, tuple(shape), like.array.dtype, params=arrays)
    return Tensor._wrap(out)


def standard_normal(shape: Any, like: Tensor) -> Tensor:
    """Standard normal draws of ``shape`` in ``like``'s dtype, on its device."""
    return dl.randn(tuple(shape), dtype=like.dtype, device=like.device)


def standard_uniform(shape: Any, like: Tensor) -> Tensor:
    """Uniform draws in [0, 1) of ``shape`` in ``like``'s dtype, on its device."""
    return dl.rand(tuple(shape), dtype=like.dtype, device=like.device)


def scalar_shape(*params: Any) -> bool:
    """True when every parameter was given as a Python number (an empty batch shape)."""
    return all(isinstance(p, numbers.Number) for p in params)
