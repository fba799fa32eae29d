"""Shape and resampling layers: Flatten, Unflatten, Upsample, ChannelShuffle and the 1-D
and 2-D padding layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darklib.errors import InvalidValue
from darklib.nn import functional as F
from darklib.nn._utils import check_tensor, shape_str
from darklib.nn.module import Module
from darklib.tensor import Tensor

__all__ = [
    "ChannelShuffle",
    "CircularPad1d",
    "CircularPad2d",
    "ConstantPad1d",
    "ReflectionPad1d",
    "ReplicationPad1d",
    "ZeroPad1d",
    "ConstantPad2d",
    "Flatten",
    "Fold",
    "PixelShuffle",
    "PixelUnshuffle",
    "ReflectionPad2d",
    "ReplicationPad2d",
    "Unflatten",
    "Unfold",
    "Upsample",
    "UpsamplingBilinear2d",
    "UpsamplingNearest2d",
    "ZeroPad2d",
]


class Flatten(Module):
    """Flatten dimensions ``start_dim`` to ``end_dim`` into one.

    Args:
        start_dim: first dimension to flatten. Default: 1 (keeps the batch).
        end_dim: last dimension to flatten. Default: -1.

    Shape:
        - Input: (N, *dims); Output: (N, prod(dims)) by default.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(check_tensor(self, input), self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``.

    Args:
        dim: the dimension to split.
        unflattened_size: the new shape of that dimension (one entry may be -1).

    Shape:
        - Input: (*, S, *); Output: (*, *unflattened_size, *) with prod = S.
    """

    def __init__(self, dim: int | str, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if isinstance(dim, str):
            raise InvalidValue("Unflatten: named dimensions are not supported; pass an int dim")
        if isinstance(unflattened_size, int) or not all(
            isinstance(s, int) for s in unflattened_size
        ):
            raise InvalidValue(
                f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}"
            )
        self.dim = dim
        # kept as given, as torch does (its repr shows a list, tuple or Size as passed)
        self.unflattened_size = (
            unflattened_size
            if isinstance(unflattened_size, (list, tuple))
            else tuple(unflattened_size)
        )

    def forward(self, input: Tensor) -> Tensor:
        return F.unflatten(check_tensor(self, input), self.dim, tuple(self.unflattened_size))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Upsample(Module):
    """Resize a (N, C, H, W) input to ``size`` or by ``scale_factor``.

    Args:
        size: output spatial size (int or pair).
        scale_factor: multiplier of the spatial size (float or pair).
        mode: ``'nearest'``, ``'bilinear'``, ``'bicubic'``... Default: ``'nearest'``.
        align_corners: for the linear modes, align the corner pixels' centres.
        recompute_scale_factor: compute the scale from the output size.

    Shape:
        - Input: (N, C, H, W); Output: (N, C, H_out, W_out).
    """

    def __init__(
        self,
        size: Any = None,
        scale_factor: Any = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise InvalidValue("Upsample: exactly one of size and scale_factor must be given")
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple | list):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        if x.ndim < 3:
            raise RuntimeError(f"{self!r}: expected input (N, C, *spatial), got {shape_str(x)}")
        return F.interpolate(
            x,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling: ``Upsample(size, scale_factor, mode='nearest')``."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling with ``align_corners=True``."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


def _pad4(padding: Any, owner: str) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return (padding,) * 4
    padding = tuple(padding)
    if len(padding) != 4 or not all(isinstance(p, int) for p in padding):
        raise InvalidValue(
            f"{owner}: padding must be an int or 4 ints (left, right, top, bottom), got {padding!r}"
        )
    return padding  # type: ignore[return-value]


class _Pad2d(Module):
    """The 2-D padding layers (only the constant ones take a ``value``, as torch's)."""

    _mode = "constant"

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pad4(padding, type(self).__name__)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        if self._mode == "constant":  # any rank, as torch's ConstantPadNd
            return F.pad(x, self.padding, mode="constant", value=self.value)
        if x.ndim not in (3, 4):
            raise RuntimeError(f"{self!r}: expected 3-D or 4-D input, got {shape_str(x)}")
        return F.pad(x, self.padding, mode=self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ConstantPad2d(_Pad2d):
    """Pad the last two dimensions with ``value``."""

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dimensions with zeros: ``padding`` = int or (left, right, top, bottom)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad2d(_Pad2d):
    """Pad the last two dimensions by reflecting the input at its border."""

    _mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """Pad the last two dimensions by repeating the border values."""

    _mode = "replicate"


class CircularPad2d(_Pad2d):
    """Pad the last two dimensions by wrapping the input around (each padding at most the
    size of its dimension).

    Shape:
        - Input: (N, C, H, W) or (C, H, W); Output: (N, C, H + top + bottom, W + left + right).
    """

    _mode = "circular"


def _pad2(padding: Any, owner: str) -> tuple[int, int]:
    if isinstance(padding, int) and not isinstance(padding, bool):
        return (padding, padding)
    padding = tuple(padding)
    if len(padding) != 2 or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in padding
    ):
        raise InvalidValue(
            f"{owner}: padding must be an int or 2 ints (left, right), got {padding!r}"
        )
    return padding  # type: ignore[return-value]


class _Pad1d(Module):
    """The 1-D padding layers: ``padding`` an int or (left, right); negative crops."""

    _mode = "constant"

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pad2(padding, type(self).__name__)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        if self._mode == "constant":  # any rank, as torch's ConstantPadNd
            return F.pad(x, self.padding, mode="constant", value=self.value)
        if x.ndim not in (2, 3):
            raise InvalidValue(
                f"{self!r}: expected 2D or 3D input (got {x.ndim}D input of shape {shape_str(x)})"
            )
        return F.pad(x, self.padding, mode=self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ConstantPad1d(_Pad1d):
    """Pad the last dimension with ``value``: ``padding`` is an int or (left, right).

    Shape:
        - Input: (*, L); Output: (*, L + left + right).
    """

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad1d(ConstantPad1d):
    """Pad the last dimension with zeros: ``padding`` is an int or (left, right)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_Pad1d):
    """Pad the last dimension by reflecting the input at its border (each padding less than
    the length).

    Shape:
        - Input: (N, C, L) or (C, L); Output: (N, C, L + left + right).
    """

    _mode = "reflect"


class ReplicationPad1d(_Pad1d):
    """Pad the last dimension by repeating the border values.

    Shape:
        - Input: (N, C, L) or (C, L); Output: (N, C, L + left + right).
    """

    _mode = "replicate"


class CircularPad1d(_Pad1d):
    """Pad the last dimension by wrapping the input around (each padding at most the length).

    Shape:
        - Input: (N, C, L) or (C, L); Output: (N, C, L + left + right).
    """

    _mode = "circular"


class ChannelShuffle(Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet): ``(N, g * k, *)`` viewed
    as ``(N, g, k, *)`` and transposed to ``(N, k, g, *)``.

    Args:
        groups: the number of groups the channels are divided into.

    Shape:
        - Input: (N, C, *), C divisible by ``groups``; Output: the same shape.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return F.channel_shuffle(check_tensor(self, input), self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class PixelShuffle(Module):
    """Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)`` (sub-pixel upsampling).

    Args:
        upscale_factor: the factor ``r``.

    Shape:
        - Input: (*, C * r^2, H, W); Output: (*, C, H * r, W * r).
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(check_tensor(self, input), self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)`` (inverse of PixelShuffle).

    Args:
        downscale_factor: the factor ``r``.

    Shape:
        - Input: (*, C, H * r, W * r); Output: (*, C * r^2, H, W).
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_unshuffle(check_tensor(self, input), self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """Extract sliding local blocks (im2col): (N, C, H, W) -> (N, C * kh * kw, L).

    Args:
        kernel_size, dilation, padding, stride: an int or a pair each.
    """

    def __init__(
        self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Tensor) -> Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
            f"padding={self.padding}, stride={self.stride}"
        )


class Fold(Module):
    """Sum sliding local blocks into an image (col2im): (N, C * kh * kw, L) -> (N, C, H, W).

    Args:
        output_size: (H, W) of the output.
        kernel_size, dilation, padding, stride: an int or a pair each.
    """

    def __init__(
        self,
        output_size: Any,
        kernel_size: Any,
        dilation: Any = 1,
        padding: Any = 0,
        stride: Any = 1,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Tensor) -> Tensor:
        return F.fold(
            input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )
