"""``Distribution``: the base class of every family (torch.distributions.Distribution).

A distribution has a ``batch_shape`` (independent, differently parametrised copies) and an
``event_shape`` (the shape of one draw); a sample of ``sample_shape`` has the shape
``sample_shape + batch_shape + event_shape`` and ``log_prob`` reduces the event dimensions.
"""

from __future__ import annotations

import warnings
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.utils import (
    alias,
    broadcast_all,
    extended,
    lazy_property,
    scalar_shape,
)
from darklib.tensor import Size, Tensor

__all__ = ["Distribution"]


def _size(shape: Any, what: str) -> Size:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints, got {shape!r}") from None
    return Size(shape)


class Distribution:
    """The base class: subclasses set ``arg_constraints`` and ``support`` and implement what
    their family has (``rsample`` or ``sample``, ``log_prob``, ``entropy``, ``mean``...)."""

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument validation on or off for distributions created from now on."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args expects a bool, got {value!r}")
        Distribution._validate_args = value

    def __init__(
        self,
        batch_shape: Any = (),
        event_shape: Any = (),
        validate_args: bool | None = None,
    ):
        self._batch_shape = _size(batch_shape, "batch_shape")
        self._event_shape = _size(event_shape, "event_shape")
        if validate_args is not None:
            self._validate_args = validate_args
        if not self._validate_args:
            return
        try:
            arg_constraints = self.arg_constraints
        except NotImplementedError:
            arg_constraints = {}
            warnings.warn(
                f"{type(self).__name__} does not define `arg_constraints`. Please set "
                "`arg_constraints = {}` or initialize the distribution with "
                "`validate_args=False` to turn off validation.",
                stacklevel=2,
            )
        for param, constraint in arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if param not in self.__dict__ and isinstance(getattr(type(self), param), lazy_property):
                continue  # (the other parametrisation of this family was given)
            value = getattr(self, param)
            valid = constraint.check(value)
            if not bool(valid.all()):
                raise ValueError(
                    f"Expected parameter {param} ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                    f"constraint {constraint!r}, but found invalid values:\n{value}"
                )

    # ------------------------------------------------------------------ shapes

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape: Any = ()) -> Size:
        return extended(_size(sample_shape, "sample_shape"), self._batch_shape, self._event_shape)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        """A view of this distribution with ``batch_shape`` (its parameters broadcast)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement expand()")

    def _get_checked_instance(self, cls: type, _instance: Any = None) -> Any:
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {type(self).__name__} of {cls.__name__} that defines a custom "
                "__init__ method must also define a custom .expand() method."
            )
        return type(self).__new__(type(self)) if _instance is None else _instance

    def _expanded(self, batch_shape: Any, _instance: Any, cls: type, **params: Tensor) -> Any:
        """The common body of ``expand``: a new instance of ``cls`` whose named parameters
        are broadcast to ``batch_shape`` plus each parameter's event dimensions."""
        new = self._get_checked_instance(cls, _instance)
        batch_shape = _size(batch_shape, "batch_shape")
        for name, value in params.items():
            event = tuple(value.shape[len(self._batch_shape) :])
            new.__dict__[name] = value.expand(tuple(batch_shape) + event)
        return self._init_expanded(new, batch_shape)

    def _init_expanded(self, new: Any, batch_shape: Any) -> Any:
        """The end of ``expand``: ``new`` initialised with ``batch_shape`` and this event
        shape, unvalidated, keeping this distribution's validation setting."""
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _set_params(self, **params: Any) -> Size:
        """Keep the named parameters (tensors or numbers) as attributes, broadcast together;
        returns their batch shape (empty when every one is a Python number)."""
        tensors = broadcast_all(*params.values())
        for name, value in zip(params, tensors):
            setattr(self, name, value)
        return Size() if scalar_shape(*params.values()) else tensors[0].shape

    # ------------------------------------------------------------------ interface

    @property
    def arg_constraints(self) -> dict[str, constraints.Constraint]:
        raise NotImplementedError

    @property
    def support(self) -> Any:
        raise NotImplementedError

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self)} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self)} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self)} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """A sample of shape ``sample_shape + batch_shape + event_shape``, without gradient."""
        with dl.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        """A reparameterised sample: differentiable with respect to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no rsample (has_rsample is False)")

    def sample_n(self, n: int) -> Tensor:
        warnings.warn(
            "sample_n will be deprecated. Use .sample((n,)) instead", UserWarning, stacklevel=2
        )
        return self.sample(Size((n,)))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement log_prob")

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement icdf")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement enumerate_support")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def perplexity(self) -> Tensor:
        return dl.exp(self.entropy())

    # ------------------------------------------------------------------ validation

    def _validate_sample(self, value: Any) -> None:
        """Refuse a ``value`` that is not a tensor, whose shape does not fit, or that lies
        outside the support."""
        if not isinstance(value, Tensor):
            raise ValueError(
                f"The value argument to log_prob must be a Tensor, got {type(value).__name__}"
            )
        event_dim = len(self._event_shape)
        if tuple(value.shape[value.dim() - event_dim :]) != tuple(self._event_shape) or (
            value.dim() < event_dim
        ):
            raise ValueError(
                "The right-most size of value must match event_shape: "
                f"{value.shape} vs {self._event_shape}."
            )
        actual, expected = value.shape, tuple(self._batch_shape) + tuple(self._event_shape)
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(
                    "Value is not broadcastable with batch_shape+event_shape: "
                    f"{actual} vs {Size(expected)}."
                )
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(
                f"{type(self).__name__} does not define `support` to enable sample "
                "validation. Please initialize the distribution with `validate_args=False` "
                "to turn off validation.",
                stacklevel=3,
            )
            return
        if support is None or constraints.is_dependent(support):
            return
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                f"distribution {self!r}, but found invalid values:\n{value}"
            )

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(
            f"{p}: {self.__dict__[p] if self.__dict__[p].numel() == 1 else self.__dict__[p].size()}"
            for p in names
        )
        return f"{type(self).__name__}({args})"


class LocScale(Distribution):
    """The base of the families with a real location ``loc`` and a positive ``scale``,
    broadcast together, symmetric about ``loc`` (its mode, and its mean where there is one);
    each family adds its own ``expand``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    loc: Tensor
    scale: Tensor

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None):
        super().__init__(self._set_params(loc=loc, scale=scale), validate_args=validate_args)

    mean = mode = alias("loc")
