"""3-D (volumetric) layers: Conv3d, ConvTranspose3d, MaxPool3d, AvgPool3d, the adaptive
pools, BatchNorm3d, InstanceNorm3d, Dropout3d and the 3-D padding layers, with PyTorch's
constructors, defaults, parameter names and initialisation (the ops are in
:mod:`darklib.ops.volumetric`)."""

from __future__ import annotations

from typing import Any

from darklib.errors import InvalidValue
from darklib.nn import functional as F
from darklib.nn._utils import check_tensor, shape_str
from darklib.nn.conv import _checked, _Conv, _conv_forward, _ConvTranspose, _transposed_forward
from darklib.nn.dropout import _DropoutNd
from darklib.nn.module import Module
from darklib.nn.normalization import _BatchNorm, _InstanceNorm
from darklib.nn.pooling import _MaxPoolNd
from darklib.ops.volumetric import (
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    avg_pool3d,
    conv3d,
    conv_transpose3d,
)
from darklib.tensor import Tensor

__all__ = [
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool3d",
    "AvgPool3d",
    "BatchNorm3d",
    "CircularPad3d",
    "ConstantPad3d",
    "Conv3d",
    "ConvTranspose3d",
    "Dropout3d",
    "InstanceNorm3d",
    "MaxPool3d",
    "ReflectionPad3d",
    "ReplicationPad3d",
    "ZeroPad3d",
]


def _check_5d(layer: Module, x: Any) -> Tensor:
    """``x`` as a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) tensor."""
    x = check_tensor(layer, x)
    if x.ndim not in (4, 5):
        raise RuntimeError(
            f"{layer!r}: expected 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got {shape_str(x)}"
        )
    return x


def _sizes(value: Any, name: str, owner: str, minimum: int, none_ok: bool = False) -> Any:
    """An int or a 3-tuple of ints >= ``minimum`` (or None where ``none_ok``), kept as given."""
    vals = (value,) if isinstance(value, int) or value is None else tuple(value)

    def ok(v: Any) -> bool:
        if v is None:
            return none_ok
        return isinstance(v, int) and not isinstance(v, bool) and v >= minimum

    if len(vals) not in (1, 3) or not all(ok(v) for v in vals):
        raise InvalidValue(
            f"{owner}: {name} must be an int >= {minimum} or a tuple of 3 of them, got {value!r}"
        )
    return value


# ------------------------------------------------------------------ convolutions


class Conv3d(_Conv):
    """3-D convolution (cross-correlation) over an (N, C, D, H, W) input.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or (kD, kH, kW).
        stride: int or triple. Default: 1.
        padding: int, triple, ``'valid'`` (none) or ``'same'`` (output size = input size,
            stride 1 only). Default: 0.
        dilation: spacing between kernel elements. Default: 1.
        groups: blocked connections from input to output channels. Default: 1.
        bias: learn a per-channel bias. Default: ``True``.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        - Input: (N, C_in, D, H, W) or (C_in, D, H, W)
        - Output: (N, C_out, D_out, H_out, W_out) with
          ``D_out = (D + 2*pad - dilation*(kD - 1) - 1) // stride + 1`` (H, W alike)

    Attributes:
        weight: (out_channels, in_channels/groups, kD, kH, kW), Kaiming-uniform as torch.
        bias: (out_channels,).

    Example::

        >>> nn.Conv3d(4, 8, 3, padding=1)(dl.randn(2, 4, 8, 16, 16)).shape
        (2, 8, 8, 16, 16)
    """

    _nd = 3

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 5:
            raise RuntimeError(
                f"{self!r}: expected 5-D input (N, C, D, H, W) (or an unbatched 4-D one), "
                f"got {shape_str(x)}"
            )
        if x.shape[1] != self.in_channels:
            raise RuntimeError(
                f"{self!r}: expected input with {self.in_channels} channels, got {shape_str(x)}"
            )

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _conv_forward(self, conv3d, input, weight, bias)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(_checked(self, input), self.weight, self.bias)


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution (the gradient of Conv3d with respect to its input).

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or (kD, kH, kW).
        stride: int or triple. Default: 1.
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides
            of each spatial dim of the input. Default: 0.
        output_padding: extra size added to one side of each output dim. Default: 0.
        groups: blocked connections. Default: 1.
        bias: learn a per-channel bias. Default: ``True``.
        dilation: spacing between kernel elements. Default: 1.

    ``forward(input, output_size=None)``: ``output_size`` (the spatial sizes, or the full
    output shape) picks the output_padding that gives that size.

    Shape:
        - Input: (N, C_in, D, H, W) or (C_in, D, H, W)
        - Output: (N, C_out, D_out, H_out, W_out) with ``D_out = (D - 1)*stride -
          2*padding + dilation*(kD - 1) + output_padding + 1``

    Attributes:
        weight: (in_channels, out_channels/groups, kD, kH, kW).
        bias: (out_channels,).
    """

    _nd = 3

    _check_input = Conv3d._check_input

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        return _transposed_forward(self, conv_transpose3d, input, output_size)


# ------------------------------------------------------------------ pooling


class MaxPool3d(_MaxPoolNd):
    """Max over sliding ``kernel_size`` windows of an (N, C, D, H, W) input.

    Args:
        kernel_size: window size (int or triple).
        stride: window step. Default: ``kernel_size``.
        padding: implicit -inf padding on both sides, at most half the window. Default: 0.
        dilation: spacing between window elements. Default: 1.
        return_indices: also return the argmax indices (flat over D*H*W).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: (N, C, D_out, H_out, W_out), ``D_out = floor((D + 2p - d(k-1) - 1)/s + 1)``
    """

    _dims = 3

    def _arg(self, value: Any, name: str, minimum: int) -> Any:
        return _sizes(value, name, type(self).__name__, minimum)


class AvgPool3d(Module):
    """Average over sliding ``kernel_size`` windows of an (N, C, D, H, W) input.

    Args:
        kernel_size: window size (int or triple).
        stride: window step. Default: ``kernel_size``.
        padding: implicit zero padding on both sides. Default: 0.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padded zeros in the average. Default: ``True``.
        divisor_override: divide by this instead of the window size.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: (N, C, D_out, H_out, W_out), ``D_out = floor((D + 2p - k)/s + 1)``
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _sizes(kernel_size, "kernel_size", name, 1)
        if stride is not None:
            _sizes(stride, "stride", name, 1)
        _sizes(padding, "padding", name, 0)
        if divisor_override is not None and (
            isinstance(divisor_override, bool)
            or not isinstance(divisor_override, int)
            or divisor_override <= 0
        ):
            raise InvalidValue(
                f"{name}: divisor_override must be a positive int, got {divisor_override!r}"
            )
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool3d(
            _check_5d(self, input),
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool3d(Module):
    """Average pooling of an (N, C, D, H, W) input to ``output_size`` (int or triple;
    ``None`` keeps that input size), whatever the input size."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = _sizes(output_size, "output_size", type(self).__name__, 0, True)

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool3d(_check_5d(self, input), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool3d(Module):
    """Max pooling of an (N, C, D, H, W) input to ``output_size`` (int or triple; ``None``
    keeps that input size); ``return_indices`` also returns flat indices over D*H*W."""

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = _sizes(output_size, "output_size", type(self).__name__, 0, True)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool3d(_check_5d(self, input), self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ------------------------------------------------------------------ normalisation, dropout


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over an (N, C, D, H, W) input, per channel.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: running-statistics factor, or ``None`` (cumulative average). Default: 0.1.
        affine: learn a per-channel scale (ones) and shift (zeros). Default: ``True``.
        track_running_stats: keep running statistics. Default: ``True``.

    Shape:
        - Input: (N, C, D, H, W)
        - Output: same as input
    """

    _ranks = (5,)
    _layout = "5-D (N, C, D, H, W)"


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of an (N, C, D, H, W) input: each (sample, channel) volume
    normalised on its own.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: how far each training batch moves the running statistics. Default: 0.1.
        affine: learn a per-channel scale and shift. Default: ``False``.
        track_running_stats: keep running averages and use them in eval mode.
            Default: ``False``.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: same as input
    """

    _no_batch_dim = 4
    _layout = "(N, C, D, H, W)"


class Dropout3d(_DropoutNd):
    """Zero whole channels of an (N, C, D, H, W) input with probability ``p`` during
    training, scaling the rest by 1/(1-p).

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: overwrite the input. Default: ``False``.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W); Output: same shape.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace)


# ------------------------------------------------------------------ padding


def _pad6(padding: Any, owner: str) -> tuple[int, ...]:
    if isinstance(padding, int) and not isinstance(padding, bool):
        return (padding,) * 6
    padding = tuple(padding)
    if len(padding) != 6 or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in padding
    ):
        raise InvalidValue(
            f"{owner}: padding must be an int or 6 ints (left, right, top, bottom, front, "
            f"back), got {padding!r}"
        )
    return padding


class _Pad3d(Module):
    """The 3-D padding layers (only the constant ones take a ``value``, as torch's)."""

    _mode = "constant"

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pad6(padding, type(self).__name__)

    def forward(self, input: Tensor) -> Tensor:
        if self._mode == "constant":  # any rank, as torch's ConstantPadNd
            x = check_tensor(self, input)
            return F.pad(x, self.padding, mode="constant", value=self.value)
        return F.pad(_check_5d(self, input), self.padding, mode=self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ConstantPad3d(_Pad3d):
    """Pad the last three dimensions with ``value``."""

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dimensions with zeros: ``padding`` is an int or (left, right,
    top, bottom, front, back)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad3d(_Pad3d):
    """Pad the last three dimensions by reflecting the input at its border."""

    _mode = "reflect"


class ReplicationPad3d(_Pad3d):
    """Pad the last three dimensions by repeating the border values."""

    _mode = "replicate"


class CircularPad3d(_Pad3d):
    """Pad the last three dimensions by wrapping the input around."""

    _mode = "circular"
