"""Convolutions: Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d (weights laid out as
PyTorch's)."""

from __future__ import annotations

import math
from typing import Any

from darklib.errors import InvalidValue
from darklib.nn import init
from darklib.nn._utils import _ntuple, check_tensor, new_param, positive_int, shape_str
from darklib.nn.module import Module
from darklib.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from darklib.ops.shape import pad, squeeze, unsqueeze
from darklib.tensor import Tensor

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared construction, initialisation and printing of the convolution layers; ``_nd``
    is the number of spatial dims (sizes are ``_nd``-tuples, as in torch)."""

    _nd = 2

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
        # zero channels are allowed, as torch's (an empty weight; a call with out_channels=0
        # is refused by the op)
        positive_int(in_channels, "in_channels", name, allow_zero=True)
        positive_int(out_channels, "out_channels", name, allow_zero=True)
        positive_int(groups, "groups", name)
        if in_channels % groups:
            raise InvalidValue(
                f"{name}: in_channels={in_channels} must be divisible by groups={groups}"
            )
        if out_channels % groups:
            raise InvalidValue(
                f"{name}: out_channels={out_channels} must be divisible by groups={groups}"
            )
        if padding_mode not in _PADDING_MODES:
            raise InvalidValue(
                f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}"
            )
        nd = self._nd
        kernel_size = _ntuple(kernel_size, nd, "kernel_size", name)
        stride = _ntuple(stride, nd, "stride", name)
        dilation = _ntuple(dilation, nd, "dilation", name)
        for what, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if min(v) < 1:
                raise InvalidValue(f"{name}: {what} must be positive, got {v}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise InvalidValue(
                    f"{name}: invalid padding string {padding!r}, should be one of 'valid', 'same'"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise InvalidValue(
                    f"{name}: padding='same' is not supported for strided "
                    f"convolutions (stride={stride})"
                )
        else:
            padding = _ntuple(padding, nd, "padding", name)
            if min(padding) < 0:
                raise InvalidValue(f"{name}: padding must be non-negative, got {padding}")
        output_padding = _ntuple(output_padding, nd, "output_padding", name)
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
        # (left, right, top, bottom, ...) padding for F.pad, as F.pad orders it (last dim
        # first): what padding_mode pads with before a convolution without padding
        pads: list[int] = []
        for i in reversed(range(nd)):
            if padding == "valid":
                pads += [0, 0]
            elif padding == "same":
                total = dilation[i] * (kernel_size[i] - 1)
                pads += [total // 2, total - total // 2]
            else:
                pads += [padding[i], padding[i]]
        self._pad4 = tuple(pads)
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
        """A batched input of the right rank and channels (unbatched ones: see forward)."""
        x = check_tensor(self, x)
        if x.ndim != self._nd + 2:
            dims = "(N, C, L)" if self._nd == 1 else "(N, C, H, W)"
            raise RuntimeError(
                f"{self!r}: expected {self._nd + 2}-D input {dims} (or an unbatched one), "
                f"got {shape_str(x)}"
            )
        if x.shape[1] != self.in_channels:
            raise RuntimeError(
                f"{self!r}: expected input with {self.in_channels} channels, got {shape_str(x)}"
            )

    def _unbatched(self, x: Tensor) -> bool:
        return x.ndim == self._nd + 1

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


class _Conv(_ConvNd):
    """The constructor of the (non-transposed) convolution layers."""

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


class Conv1d(_Conv):
    """1-D convolution (cross-correlation) over an (N, C, L) input: Conv2d's machinery on a
    plane of height 1.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or 1-tuple.
        stride: int or 1-tuple. Default: 1.
        padding: int, 1-tuple, ``'valid'`` (none) or ``'same'`` (output length = input
            length, stride 1 only). Default: 0.
        dilation: spacing between kernel elements. Default: 1.
        groups: blocked connections from input to output channels. Default: 1.
        bias: learn a per-channel bias. Default: ``True``.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        - Input: (N, C_in, L) or (C_in, L)
        - Output: (N, C_out, L_out) with
          ``L_out = (L + 2*pad - dilation*(K - 1) - 1) // stride + 1``

    Attributes:
        weight: (out_channels, in_channels/groups, K).
        bias: (out_channels,).

    Example::

        >>> nn.Conv1d(16, 33, 3, stride=2)(dl.randn(20, 16, 50)).shape
        (20, 33, 24)
    """

    _nd = 1

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _conv_forward(self, conv1d, input, weight, bias)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(_checked(self, input), self.weight, self.bias)


class Conv2d(_Conv):
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

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _conv_forward(self, conv2d, input, weight, bias)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(_checked(self, input), self.weight, self.bias)


class _ConvTranspose(_ConvNd):
    """The constructor and output_size handling of the transposed convolution layers."""

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
            raise InvalidValue(
                f'Only "zeros" padding mode is supported for {type(self).__name__}, got '
                f"{padding_mode!r}"
            )
        if isinstance(padding, str):
            raise InvalidValue(
                f"{type(self).__name__}: padding must be an int or a tuple, not a string"
            )
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
                raise InvalidValue(
                    f"{type(self).__name__}: output_padding {self.output_padding} must be "
                    f"smaller than either stride {self.stride} or dilation {self.dilation}"
                )

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple[int, ...]:
        """The output_padding that gives ``output_size`` (spatial sizes, or the full shape)
        for the batched input ``x``; the layer's own when ``output_size`` is None."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        size = tuple(int(s) for s in output_size)
        if len(size) == x.ndim:
            size = size[2:]
        if len(size) != nd:
            raise InvalidValue(
                f"{self!r}: output_size must have {nd} or {nd + 2} elements, got "
                f"{tuple(output_size)}"
            )
        out = []
        for i in range(nd):
            lo = (
                (x.shape[i + 2] - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            hi = lo + self.stride[i] - 1
            if not lo <= size[i] <= hi:
                raise InvalidValue(
                    f"{self!r}: requested an output size of {size}, but valid sizes range from "
                    f"({lo}) to ({hi}) in dimension {i} (for an input of {shape_str(x)})"
                )
            out.append(size[i] - lo)
        return tuple(out)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (the gradient of Conv1d with respect to its input):
    ConvTranspose2d's machinery on a plane of height 1.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or 1-tuple.
        stride: int or 1-tuple. Default: 1.
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added to both ends
            of the input. Default: 0.
        output_padding: extra length added to one end of the output. Default: 0.
        groups: blocked connections. Default: 1.
        bias: learn a per-channel bias. Default: ``True``.
        dilation: spacing between kernel elements. Default: 1.

    ``forward(input, output_size=None)``: ``output_size`` (L_out, or the full output shape)
    picks the output_padding that gives that length.

    Shape:
        - Input: (N, C_in, L) or (C_in, L)
        - Output: (N, C_out, L_out) with ``L_out = (L - 1)*stride - 2*padding +
          dilation*(K - 1) + output_padding + 1``

    Attributes:
        weight: (in_channels, out_channels/groups, K).
        bias: (out_channels,).
    """

    _nd = 1

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        return _transposed_forward(self, conv_transpose1d, input, output_size)


class ConvTranspose2d(_ConvTranspose):
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

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        return _transposed_forward(self, conv_transpose2d, input, output_size)


def _checked(layer: _ConvNd, input: Any) -> Tensor:
    """``input`` checked against the layer: batched or unbatched, right channels."""
    x = check_tensor(layer, input)
    if layer._unbatched(x):
        if x.shape[0] != layer.in_channels:
            raise RuntimeError(
                f"{layer!r}: expected input with {layer.in_channels} channels, got "
                f"{shape_str(x)}, read as an unbatched {x.ndim}-D input with {x.shape[0]} "
                f"channels (dim 0); a batch has {x.ndim + 1} dims"
            )
    else:
        layer._check_input(x)
    return x


def _conv_forward(
    layer: _ConvNd, conv: Any, input: Tensor, weight: Tensor, bias: Tensor | None
) -> Tensor:
    """``conv`` (conv1d or conv2d) with the layer's settings; a padding_mode other than
    zeros pads first and convolves without padding."""
    if layer.padding_mode != "zeros":
        input = pad(input, layer._pad4, mode=layer.padding_mode)
        return conv(input, weight, bias, layer.stride, 0, layer.dilation, layer.groups)
    return conv(input, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def _transposed_forward(layer: Any, conv_t: Any, input: Tensor, output_size: Any) -> Tensor:
    """``conv_t`` (conv_transpose1d or 2d) with the layer's settings and the
    output_padding that ``output_size`` asks for; unbatched input gets a batch of one."""
    x = check_tensor(layer, input)
    if layer._unbatched(x):
        if output_size is not None:  # torch: (C_out, *spatial) or the spatial sizes
            size, nd = tuple(output_size), layer._nd
            if len(size) not in (nd, nd + 1):
                raise InvalidValue(
                    f"{layer!r}: for an unbatched {x.ndim}-D input, output_size must have "
                    f"{nd} or {nd + 1} elements, got {size}"
                )
            output_size = size[-nd:]
        out = _transposed_forward(layer, conv_t, unsqueeze(x, 0), output_size)
        return squeeze(out, 0)
    layer._check_input(x)
    op = layer._output_padding(x, output_size)
    return conv_t(
        x, layer.weight, layer.bias, layer.stride, layer.padding, op, layer.groups, layer.dilation
    )
