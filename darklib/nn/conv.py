"""Convolutions: Conv2d and ConvTranspose2d (weights laid out as PyTorch's)."""

from __future__ import annotations

import math
from typing import Any

from darklib.nn import init
from darklib.nn._utils import _pair, check_tensor, new_param, positive_int, shape_str
from darklib.nn.module import Module
from darklib.ops.conv import conv2d, conv_transpose2d
from darklib.ops.shape import pad, squeeze, unsqueeze
from darklib.tensor import Tensor

__all__ = ["Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared construction, initialisation and printing of the convolution layers."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        transposed: bool,
        output_padding: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        positive_int(in_channels, "in_channels", name)
        positive_int(out_channels, "out_channels", name)
        positive_int(groups, "groups", name)
        if in_channels % groups:
            raise ValueError(
                f"{name}: in_channels={in_channels} must be divisible by groups={groups}"
            )
        if out_channels % groups:
            raise ValueError(
                f"{name}: out_channels={out_channels} must be divisible by groups={groups}"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}"
            )
        kernel_size = _pair(kernel_size, "kernel_size", name)
        stride = _pair(stride, "stride", name)
        dilation = _pair(dilation, "dilation", name)
        for what, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if min(v) < 1:
                raise ValueError(f"{name}: {what} must be positive, got {v}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"{name}: invalid padding string {padding!r}, should be one of 'valid', 'same'"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(
                    f"{name}: padding='same' is not supported for strided "
                    f"convolutions (stride={stride})"
                )
        else:
            padding = _pair(padding, "padding", name)
            if min(padding) < 0:
                raise ValueError(f"{name}: padding must be non-negative, got {padding}")
        output_padding = _pair(output_padding, "output_padding", name)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # (left, right, top, bottom) padding for F.pad, as F.pad orders it (last dim first)
        if padding == "valid":
            self._pad4 = (0, 0, 0, 0)
        elif padding == "same":
            pads: list[int] = []
            for d, k in zip(reversed(dilation), reversed(kernel_size)):
                total = d * (k - 1)
                left = total // 2
                pads += [left, total - left]
            self._pad4 = tuple(pads)
        else:
            self._pad4 = (padding[1], padding[1], padding[0], padding[0])
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = new_param(shape, device, dtype)
        if bias:
            self.bias = new_param((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Tensor) -> None:
        x = check_tensor(self, x)
        if x.ndim != 4:
            raise RuntimeError(f"{self!r}: expected 4-D input (N, C, H, W), got {shape_str(x)}")
        if x.shape[1] != self.in_channels:
            raise RuntimeError(
                f"{self!r}: expected input with {self.in_channels} channels, got {shape_str(x)}"
            )

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


def _unbatched(x: Tensor) -> bool:
    return x.ndim == 3


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over an (N, C, H, W) input.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or (kH, kW).
        stride: int or pair. Default: 1.
        padding: int, pair, ``'valid'`` (none) or ``'same'`` (output size = input size,
            stride 1 only). Default: 0.
        dilation: spacing between kernel elements. Default: 1.
        groups: blocked connections from input to output channels. Default: 1.
        bias: learn a per-channel bias. Default: ``True``.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        - Input: (N, C_in, H, W) or (C_in, H, W)
        - Output: (N, C_out, H_out, W_out) with
          ``H_out = (H + 2*pad - dilation*(kH - 1) - 1) // stride + 1``

    Attributes:
        weight: (out_channels, in_channels/groups, kH, kW).
        bias: (out_channels,).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            False,
            0,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "zeros":
            input = pad(input, self._pad4, mode=self.padding_mode)
            return conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        if _unbatched(x):
            if x.shape[0] != self.in_channels:
                raise RuntimeError(
                    f"{self!r}: expected input with {self.in_channels} channels, got {shape_str(x)}"
                )
        else:
            self._check_input(x)
        return self._conv_forward(x, self.weight, self.bias)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution (the gradient of Conv2d with respect to its input).

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or (kH, kW).
        stride: int or pair. Default: 1.
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both sides
            of the input. Default: 0.
        output_padding: extra size added to one side of the output. Default: 0.
        groups: blocked connections. Default: 1.
        bias: learn a per-channel bias. Default: ``True``.
        dilation: spacing between kernel elements. Default: 1.

    Shape:
        - Input: (N, C_in, H, W)
        - Output: (N, C_out, H_out, W_out) with ``H_out = (H - 1)*stride - 2*padding +
          dilation*(kH - 1) + output_padding + 1``

    Attributes:
        weight: (in_channels, out_channels/groups, kH, kW).
        bias: (out_channels,).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for ConvTranspose2d, got {padding_mode!r}'
            )
        if isinstance(padding, str):
            raise ValueError("ConvTranspose2d: padding must be an int or a pair, not a string")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            True,
            output_padding,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= s and op >= d:
                raise ValueError(
                    f"ConvTranspose2d: output_padding {self.output_padding} must be smaller "
                    f"than either stride {self.stride} or dilation {self.dilation}"
                )

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)
        if len(size) == x.ndim:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(
                f"{self!r}: output_size must have 2 or 4 elements, got {tuple(output_size)}"
            )
        out = []
        for i in range(2):
            lo = (
                (x.shape[i + 2] - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            hi = lo + self.stride[i] - 1
            if not lo <= size[i] <= hi:
                raise ValueError(
                    f"{self!r}: requested an output size of {size}, but valid sizes range from "
                    f"({lo}) to ({hi}) in dimension {i} (for an input of {shape_str(x)})"
                )
            out.append(size[i] - lo)
        return out[0], out[1]

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        x = check_tensor(self, input)
        if _unbatched(x):
            x = unsqueeze(x, 0)
            out = self.forward(x, output_size)
            return squeeze(out, 0)
        self._check_input(x)
        op = self._output_padding(x, output_size)
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, op, self.groups, self.dilation
        )
