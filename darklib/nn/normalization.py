"""Normalisation layers: BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm1d/2d,
LocalResponseNorm."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.creation import ones, tensor, zeros
from darklib.errors import InvalidValue
from darklib.nn import functional as F
from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int, shape_str
from darklib.nn.module import Module
from darklib.ops.norm import batch_norm, group_norm, layer_norm, local_response_norm
from darklib.tensor import Tensor

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "LayerNorm",
    "LocalResponseNorm",
    "RMSNorm",
]


def _normalized_shape(who: str, normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of positive ints (an int is one dimension)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    shape = tuple(normalized_shape)
    if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise InvalidValue(f"{who}: normalized_shape must be positive ints, got {shape}")
    return shape


def _affine_params(
    module: Module, affine: bool, shape: tuple[int, ...], bias: bool, device: Any, dtype: Any
) -> None:
    """Register ``weight`` and ``bias`` of ``shape`` (None when not ``affine`` / ``bias``)."""
    if affine:
        module.weight = new_param(shape, device, dtype)
        if bias:
            module.bias = new_param(shape, device, dtype)
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module: Module, affine: bool) -> None:
    """Scale to ones, shift to zeros."""
    if affine:
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)


class _NormBase(Module):
    """State shared by batch and instance norm: the affine parameters and, with
    ``track_running_stats``, the buffers running_mean, running_var and num_batches_tracked
    (torch's state_dict layout)."""

    _version = 2  # as torch's: version 2 added num_batches_tracked

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        positive_int(num_features, "num_features", name)
        if not eps > 0:
            raise InvalidValue(f"{name}: eps must be positive, got {eps}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise InvalidValue(f"{name}: momentum must be in [0, 1] or None, got {momentum}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_params(self, affine, (num_features,), bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var", ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=np.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self, self.affine)

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # checkpoints written before num_batches_tracked existed (version < 2, or no
        # metadata: a plain dict) may lack the key: keep the current count, as torch
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats:
            if key not in state_dict:
                state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    """The forward of the batch-norm layers; subclasses fix the input rank."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim not in self._ranks:
            raise InvalidValue(f"{self!r}: expected {self._layout} input, got {shape_str(x)}")
        self._check_channels(x)

    def _check_channels(self, x: Tensor) -> None:
        if x.shape[1] != self.num_features:
            raise InvalidValue(
                f"{self!r}: expected input with {self.num_features} channels (dim 1), got "
                f"{shape_str(x)}"
            )

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        self._check_input_dim(x)
        nbt = self.num_batches_tracked
        if self.training and self.track_running_stats and nbt is not None:
            nbt.array += 1
            nbt._version += 1
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        update = not self.training or self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if update else None,
            self.running_var if update else None,
            self.weight,
            self.bias,
            use_batch_stats,
            self.momentum,
            self.eps,
            num_batches_tracked=nbt,
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over a (N, C) or (N, C, L) input, per channel.

    In training mode it normalises with the batch's statistics and updates the running
    ones (``running = (1 - momentum) * running + momentum * batch``, the unbiased variance;
    ``momentum=None`` gives a cumulative average); in eval mode it uses the running ones.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: running-statistics factor, or ``None``. Default: 0.1.
        affine: learn a per-channel scale (ones) and shift (zeros). Default: ``True``.
        track_running_stats: keep running statistics. Default: ``True``.

    Shape:
        - Input: (N, C) or (N, C, L)
        - Output: same as input
    """

    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over an (N, C, H, W) input, per channel.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: running-statistics factor, or ``None`` (cumulative average). Default: 0.1.
        affine: learn a per-channel scale (ones) and shift (zeros). Default: ``True``.
        track_running_stats: keep running statistics. Default: ``True``.

    Shape:
        - Input: (N, C, H, W)
        - Output: same as input
    """

    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over any (N, C, ...) input, whose statistics torch gathers
    across the processes of a distributed job. darklib trains in one process, where they
    are the batch's own: this is BatchNorm for inputs of any rank, kept for models built
    with it and for :meth:`convert_sync_batchnorm`. ``process_group`` is accepted and
    unused."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )
        self.process_group = process_group

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim < 2:
            raise InvalidValue(f"{self!r}: expected at least 2D input (got {x.ndim}D input)")
        self._check_channels(x)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """``module`` with every BatchNorm layer in it (itself included) replaced by a
        SyncBatchNorm holding the same parameters, buffers and mode."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            new = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
                bias=module.bias is not None if module.affine else True,
            )
            if module.affine:
                new.weight, new.bias = module.weight, module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                new._buffers[name] = module._buffers.get(name)
            new.training = module.training
            return new
        for name, child in module.named_children():
            converted = cls.convert_sync_batchnorm(child, process_group)
            if converted is not child:
                module.add_module(name, converted)
        return module


class _InstanceNorm(_NormBase):
    """Instance normalisation, as torch's ``_InstanceNorm``: an input with
    ``_no_batch_dim`` dimensions is one unbatched sample. A channel count other than
    ``num_features`` is an error with ``affine=True`` and a warning otherwise (the count is
    then unused, as in torch; with running statistics their size must still match)."""

    _no_batch_dim = 3
    _layout = "(N, C, H, W)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        # (num_batches_tracked, when tracking, is kept for torch's state_dict layout:
        # instance norm never counts batches, nor does torch's)
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        nd = self._no_batch_dim
        if x.ndim not in (nd, nd + 1):
            raise InvalidValue(
                f"{self!r}: expected {nd}D or {nd + 1}D input {self._layout} or without N "
                f"(got {x.ndim}D input of shape {shape_str(x)})"
            )
        feature_dim = x.ndim - nd
        if x.shape[feature_dim] != self.num_features:
            if self.affine:
                raise InvalidValue(
                    f"expected input's size at dim={feature_dim} to match num_features "
                    f"({self.num_features}), but got: {x.shape[feature_dim]} (input of shape "
                    f"{shape_str(x)})."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. You can "
                "silence this warning by not passing in num_features, which is not used "
                "because affine=False",
                stacklevel=3,
            )
            if self.running_mean is not None:
                raise InvalidValue(
                    f"{self!r}: the running statistics hold {self.num_features} channels but "
                    f"the input {shape_str(x)} has {x.shape[feature_dim]} at dim={feature_dim}"
                )
        if x.ndim == nd:  # unbatched: one sample, checked above
            return self._apply_instance_norm(x.unsqueeze(0)).squeeze(0)
        return self._apply_instance_norm(x)

    def _apply_instance_norm(self, x: Tensor) -> Tensor:
        return F.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            0.0 if self.momentum is None else self.momentum,
            self.eps,
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of an (N, C, L) input: each (sample, channel) sequence
    normalised on its own.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: how far each training batch moves the running statistics (None: 0, as
            torch). Default: 0.1.
        affine: learn a per-channel scale and shift. Default: ``False``.
        track_running_stats: keep running averages of the instances' means and variances
            in training mode and normalise with them in eval mode. Default: ``False``.

    Shape:
        - Input: (N, C, L) or (C, L)
        - Output: same as input
    """

    _no_batch_dim = 2
    _layout = "(N, C, L)"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation: each (sample, channel) plane normalised on its own.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: how far each training batch moves the running statistics (None: 0, as
            torch). Default: 0.1.
        affine: learn a per-channel scale and shift. Default: ``False``.
        track_running_stats: keep running averages of the instances' means and variances
            in training mode and normalise with them in eval mode. Default: ``False``.

    Shape:
        - Input: (N, C, H, W) or (C, H, W)
        - Output: same as input
    """


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dimensions of each sample.

    Args:
        normalized_shape: the trailing shape, e.g. ``C`` or ``(C, H, W)``.
        eps: added to the variance. Default: 1e-5.
        elementwise_affine: learn a scale (ones) and shift (zeros) of ``normalized_shape``.
        bias: learn the shift (with ``elementwise_affine``). Default: ``True``.

    Shape:
        - Input: (N, *, *normalized_shape)
        - Output: same as input
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        normalized_shape = _normalized_shape("LayerNorm", normalized_shape)
        self.normalized_shape = normalized_shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_params(self, elementwise_affine, normalized_shape, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self, self.elementwise_affine)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k :]) != self.normalized_shape:
            raise RuntimeError(
                f"{self!r}: expected input with trailing shape {self.normalized_shape}, got "
                f"{shape_str(x)}"
            )
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Group normalisation: the channels split into groups, each normalised per sample.

    Args:
        num_groups: number of groups (must divide ``num_channels``).
        num_channels: C.
        eps: added to the variance. Default: 1e-5.
        affine: learn a per-channel scale (ones) and shift (zeros). Default: ``True``.

    Shape:
        - Input: (N, C, *)
        - Output: same as input
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        positive_int(num_groups, "num_groups", "GroupNorm")
        positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise InvalidValue(
                f"GroupNorm: num_channels={num_channels} must be divisible by "
                f"num_groups={num_groups}"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_params(self, affine, (num_channels,), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self, self.affine)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise RuntimeError(
                f"{self!r}: expected input (N, {self.num_channels}, *), got {shape_str(x)}"
            )
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
            f"affine={self.affine}, bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dimensions:
    ``x / sqrt(mean(x^2) + eps) * weight`` (no centring, no bias).

    Args:
        normalized_shape: the trailing shape, e.g. ``C`` or ``(C, H, W)``.
        eps: added to the mean square (default: the machine epsilon of the input's dtype).
        elementwise_affine: learn a scale (ones) of ``normalized_shape``. Default: True.

    Shape:
        - Input: (N, *, *normalized_shape); Output: same as input.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        normalized_shape = _normalized_shape("RMSNorm", normalized_shape)
        self.normalized_shape = normalized_shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = new_param(normalized_shape, device, dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class LocalResponseNorm(Module):
    """Local response normalisation over neighbouring channels (see
    :func:`darklib.nn.functional.local_response_norm`).

    Args:
        size: the number of neighbouring channels in each window.
        alpha: the scale of the mean of squares. Default: 1e-4.
        beta: the exponent. Default: 0.75.
        k: the additive constant. Default: 1.

    Shape:
        - Input: (N, C, *), at least 3-D
        - Output: the input's shape
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
