"""Lazy layers, as torch's: ``LazyLinear(10)`` learns its ``in_features`` from the first
input it sees, and then becomes a plain ``Linear``.

Until then its weight and bias are :class:`UninitializedParameter` (no shape yet; asking
for one is an error that says to run a forward first). The first call infers the sizes,
creates the parameters in place (the same objects, so an optimizer built before holds
them), initialises them as the eager layer does, and switches the module's class to the
eager one (``cls_to_become``). Loading a state dict into a lazy module creates its
parameters with the saved shapes instead.
"""

from __future__ import annotations

import inspect
from itertools import chain
from typing import Any

from darklib.creation import empty
from darklib.grad_mode import no_grad
from darklib.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from darklib.nn.linear import Linear
from darklib.nn.normalization import BatchNorm1d, BatchNorm2d, InstanceNorm1d, InstanceNorm2d
from darklib.nn.parameter import Parameter
from darklib.nn.volumetric import BatchNorm3d, Conv3d, ConvTranspose3d, InstanceNorm3d
from darklib.tensor import Tensor

_NO_SHAPE = (
    "Can't access the shape of an uninitialized parameter or buffer. This error usually "
    "happens in `load_state_dict` when trying to load an uninitialized parameter into an "
    "initialized one. Call `forward` to initialize the parameters before accessing their "
    "attributes."
)


class _Uninitialized:
    """What the two placeholder kinds share: no shape, and ``materialize``."""

    __slots__ = ()  # (the tensor's own layout: materialize switches the class in place)
    cls_to_become: type = Tensor

    @property
    def shape(self) -> Any:
        raise RuntimeError(_NO_SHAPE)

    def size(self, dim: Any = None) -> Any:
        raise RuntimeError(_NO_SHAPE)

    def numel(self) -> int:
        raise RuntimeError(_NO_SHAPE)

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Give the placeholder an (uninitialised) array of ``shape`` and make it the
        tensor it stands for, in place."""
        dev = self.device if device is None else device
        dt = self.dtype if dtype is None else dtype
        self.array = empty(*tuple(shape), device=dev, dtype=dt).array
        self.__class__ = self.cls_to_become

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class UninitializedParameter(_Uninitialized, Parameter):
    """A parameter whose shape is not known yet (a lazy layer's, until its first call)."""

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None):
        super().__init__(empty(0, device=device, dtype=dtype), requires_grad)

    def __deepcopy__(self, memo: dict) -> UninitializedParameter:
        out = UninitializedParameter(self.requires_grad, self.device, self.dtype)
        memo[id(self)] = out
        return out


class UninitializedBuffer(_Uninitialized, Tensor):
    """A buffer whose shape is not known yet (a lazy norm layer's running statistics)."""

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device: Any = None, dtype: Any = None):
        super().__init__()
        self.array = empty(0, device=device, dtype=dtype).array


def _uninitialized(obj: Any) -> bool:
    return isinstance(obj, _Uninitialized)


class LazyModuleMixin:
    """Infers a layer's sizes from its first input: subclasses implement
    ``initialize_parameters(input)`` and name the eager class in ``cls_to_become``."""

    cls_to_become: type | None = None

    def _lazy_start(self) -> None:
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def has_uninitialized_params(self) -> bool:
        return any(
            _uninitialized(v) for v in chain(self._parameters.values(), self._buffers.values())
        )

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"initialize_parameters is not implemented for {type(self).__name__}"
        )

    def _sizes_from_parameters(self) -> None:
        """Set the size attributes (``in_features``...) from the created parameters."""

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        # a saved tensor gives a placeholder its shape, as torch's lazy modules; a saved
        # placeholder (a lazy module's own state dict) leaves it as it is
        for name, value in chain(self._parameters.items(), self._buffers.items()):
            saved = state_dict.get(prefix + name)
            if _uninitialized(value) and isinstance(saved, Tensor):
                if not (_uninitialized(saved) or saved.array.shape == (0,)):
                    value.materialize(saved.array.shape)
        if not self.has_uninitialized_params():
            self._sizes_from_parameters()
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _replicate_for_data_parallel(self) -> Any:  # (torch's refusal, for the same reason)
        raise RuntimeError(
            "Modules with uninitialized parameters can't be used with `DataParallel`. Run a "
            "dummy forward pass to correctly initialize the modules"
        )


def _infer_parameters(module: Any, args: tuple, kwargs: dict) -> None:
    """The forward pre-hook of a lazy module: create its parameters from the call's
    arguments (positional or keyword), then become the eager class for good."""
    module.initialize_parameters(*args, **kwargs)
    if module.has_uninitialized_params():
        raise RuntimeError(f"module {type(module).__name__} has not been fully initialized")
    module._initialize_hook.remove()
    del module._initialize_hook
    module.__class__ = module.cls_to_become


# ------------------------------------------------------------------ linear


class LazyLinear(LazyModuleMixin, Linear):
    """``Linear`` whose ``in_features`` is the last dim of the first input."""

    cls_to_become = Linear

    def __init__(
        self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(0, 0, False, device, dtype)
        self.out_features = out_features
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        self._lazy_start()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args: Any) -> None:
        if self.has_uninitialized_params():
            with no_grad():
                self.in_features = int(input.shape[-1])
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()

    def _sizes_from_parameters(self) -> None:
        self.in_features = int(self.weight.array.shape[1])


# ------------------------------------------------------------------ convolutions


class _LazyConvMixin(LazyModuleMixin):
    """``in_channels`` from the first input's channel dim (dim 0 for an unbatched one)."""

    def _lazy_conv(self, out_channels: int, bias: bool, device: Any, dtype: Any) -> None:
        self.out_channels = out_channels
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self._lazy_start()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def _weight_shape(self) -> tuple:
        g = self.groups
        if self.transposed:
            return (self.in_channels, self.out_channels // g, *self.kernel_size)
        return (self.out_channels, self.in_channels // g, *self.kernel_size)

    def initialize_parameters(self, input: Tensor, *args: Any) -> None:
        if not self.has_uninitialized_params():
            return
        batched = input.ndim == self._nd + 2
        channels = int(input.shape[1 if batched else 0])
        if channels % self.groups:
            raise ValueError(
                f"{type(self).__name__}: the input's {channels} channels must be divisible "
                f"by groups={self.groups}"
            )
        with no_grad():
            self.in_channels = channels
            self.weight.materialize(self._weight_shape())
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()

    def _sizes_from_parameters(self) -> None:
        w = self.weight.array.shape
        self.in_channels = int(w[0] if self.transposed else w[1] * self.groups)


def _lazy_conv_class(eager: type) -> type:
    """The lazy form of one convolution layer: the eager constructor's signature without
    ``in_channels`` (the arguments are bound to it, so positional ones work as there)."""
    signature = inspect.signature(eager.__init__)

    def __init__(self, out_channels: int, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, 0, out_channels, *args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        bias = given["bias"]
        given.update(out_channels=0, bias=False)  # (the eager layer with empty weights)
        eager.__init__(**given)
        self._lazy_conv(out_channels, bias, given["device"], given["dtype"])

    name = "Lazy" + eager.__name__
    doc = f"``{eager.__name__}`` whose ``in_channels`` is the first input's channel count."
    return type(
        name,
        (_LazyConvMixin, eager),
        {"__init__": __init__, "cls_to_become": eager, "__doc__": doc, "__module__": __name__},
    )


LazyConv1d = _lazy_conv_class(Conv1d)
LazyConv2d = _lazy_conv_class(Conv2d)
LazyConv3d = _lazy_conv_class(Conv3d)
LazyConvTranspose1d = _lazy_conv_class(ConvTranspose1d)
LazyConvTranspose2d = _lazy_conv_class(ConvTranspose2d)
LazyConvTranspose3d = _lazy_conv_class(ConvTranspose3d)


# ------------------------------------------------------------------ normalization


class _LazyNormMixin(LazyModuleMixin):
    """``num_features`` from the first input's channel dim."""

    def _lazy_norm(self, device: Any, dtype: Any) -> None:
        self.num_features = 0
        if self.affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        if self.track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
        self._lazy_start()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args: Any) -> None:
        # (without affine parameters and running stats there is nothing to create, but the
        # layer still learns its num_features from the first input)
        if not self.has_uninitialized_params() and self.num_features != 0:
            return
        channels_dim = 0 if input.ndim in getattr(self, "_unbatched_ranks", ()) else 1
        with no_grad():
            self.num_features = int(input.shape[channels_dim])
            for value in chain(self._parameters.values(), self._buffers.values()):
                if _uninitialized(value):
                    value.materialize((self.num_features,))
            self.reset_parameters()

    def _sizes_from_parameters(self) -> None:
        for value in chain(self._parameters.values(), self._buffers.values()):
            if value is not None and value.array.ndim == 1:
                self.num_features = int(value.array.shape[0])
                return


def _lazy_norm_class(eager: type, unbatched_ranks: tuple) -> type:
    def __init__(
        self,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        eager.__init__(self, 1, eps, momentum, affine, track_running_stats, device, dtype)
        self._lazy_norm(device, dtype)

    name = "Lazy" + eager.__name__
    doc = f"``{eager.__name__}`` whose ``num_features`` is the first input's channel count."
    return type(
        name,
        (_LazyNormMixin, eager),
        {
            "__init__": __init__,
            "cls_to_become": eager,
            "_unbatched_ranks": unbatched_ranks,
            "__doc__": doc,
            "__module__": __name__,
        },
    )


LazyBatchNorm1d = _lazy_norm_class(BatchNorm1d, ())
LazyBatchNorm2d = _lazy_norm_class(BatchNorm2d, ())
LazyBatchNorm3d = _lazy_norm_class(BatchNorm3d, ())
LazyInstanceNorm1d = _lazy_norm_class(InstanceNorm1d, (2,))
LazyInstanceNorm2d = _lazy_norm_class(InstanceNorm2d, (3,))
LazyInstanceNorm3d = _lazy_norm_class(InstanceNorm3d, (4,))

__all__ = [
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "LazyLinear",
    "LazyModuleMixin",
    "UninitializedBuffer",
    "UninitializedParameter",
]
