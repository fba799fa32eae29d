"""Pooling layers: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d,
MaxUnpool1d/2d/3d, LPPool1d/2d/3d."""

from __future__ import annotations

from typing import Any

from darklib.errors import InvalidValue
from darklib.nn._utils import _ntuple, check_tensor, shape_str
from darklib.nn.module import Module
from darklib.ops.fractional import fractional_max_pool2d, fractional_max_pool3d
from darklib.ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool1d,
    max_pool2d,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
)
from darklib.ops.volumetric import max_pool3d
from darklib.tensor import Tensor

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]


_LAYOUTS = {
    1: ("(C, L)", "(N, C, L)"),
    2: ("(C, H, W)", "(N, C, H, W)"),
    3: ("(C, D, H, W)", "(N, C, D, H, W)"),
}


def _check_input(layer: Module, x: Any, dims: int) -> Tensor:
    """``x`` as a tensor of ``dims`` spatial dims, unbatched or batched."""
    x = check_tensor(layer, x)
    if x.ndim not in (dims + 1, dims + 2):
        one, batch = _LAYOUTS[dims]
        raise RuntimeError(
            f"{layer!r}: expected {dims + 1}-D {one} or {dims + 2}-D {batch} input, "
            f"got {shape_str(x)}"
        )
    return x


def _check_size(value: Any, name: str, owner: str, minimum: int) -> None:
    vals = (value,) if isinstance(value, int) else tuple(value)
    if (
        not vals
        or len(vals) > 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in vals)
    ):
        raise InvalidValue(
            f"{owner}: {name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )


class _MaxPoolNd(Module):
    """The max-pooling layers: torch's constructor and repr, the functional of their rank."""

    _dims = 2

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = self._arg(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else self._arg(stride, "stride", 1)
        self.padding = self._arg(padding, "padding", 0)
        self.dilation = self._arg(dilation, "dilation", 1)
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def _arg(self, value: Any, name: str, minimum: int) -> Any:
        """A size argument, validated and kept as given (int or tuple), as torch keeps it."""
        _check_size(value, name, type(self).__name__, minimum)
        return value

    def forward(self, input: Tensor) -> Any:
        pool = {1: max_pool1d, 2: max_pool2d, 3: max_pool3d}[self._dims]
        return pool(
            _check_input(self, input, self._dims),
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPoolNd):
    """Max over sliding ``kernel_size`` windows of an (N, C, H, W) input.

    Args:
        kernel_size: window size (int or pair).
        stride: window step. Default: ``kernel_size``.
        padding: implicit -inf padding on both sides. Default: 0.
        dilation: spacing between window elements. Default: 1.
        return_indices: also return the argmax indices (flat over H*W).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: (N, C, H, W) or (C, H, W)
        - Output: (N, C, H_out, W_out), ``H_out = floor((H + 2p - d(k-1) - 1)/s + 1)``
    """


class AvgPool2d(Module):
    """Average over sliding ``kernel_size`` windows of an (N, C, H, W) input.

    Args:
        kernel_size: window size (int or pair).
        stride: window step. Default: ``kernel_size``.
        padding: implicit zero padding on both sides. Default: 0.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padded zeros in the average. Default: ``True``.
        divisor_override: divide by this instead of the window size.

    Shape:
        - Input: (N, C, H, W) or (C, H, W)
        - Output: (N, C, H_out, W_out), ``H_out = floor((H + 2p - k)/s + 1)``
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
        _check_size(kernel_size, "kernel_size", "AvgPool2d", 1)
        if stride is not None:
            _check_size(stride, "stride", "AvgPool2d", 1)
        _check_size(padding, "padding", "AvgPool2d", 0)
        if divisor_override is not None and (
            not isinstance(divisor_override, int) or divisor_override <= 0
        ):
            raise InvalidValue(
                f"AvgPool2d: divisor_override must be a positive int, got {divisor_override!r}"
            )
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        x = _check_input(self, input, 2)
        return avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _check_output_size(value: Any, owner: str) -> None:
    vals = (value,) if isinstance(value, int) or value is None else tuple(value)
    if len(vals) not in (1, 2) or any(
        v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0) for v in vals
    ):  # 0 is allowed, as torch: an empty output
        raise InvalidValue(
            f"{owner}: output_size must be a non-negative int or a pair of them (or None), "
            f"got {value!r}"
        )


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size.

    Args:
        output_size: ``(H_out, W_out)`` or one int for a square; ``None`` keeps that size.

    Shape:
        - Input: (N, C, H, W) or (C, H, W)
        - Output: (N, C, H_out, W_out)
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        _check_output_size(output_size, "AdaptiveAvgPool2d")
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(_check_input(self, input, 2), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size, whatever the input size.

    Args:
        output_size: ``(H_out, W_out)`` or one int for a square; ``None`` keeps that size.
        return_indices: also return the argmax indices.

    Shape:
        - Input: (N, C, H, W) or (C, H, W)
        - Output: (N, C, H_out, W_out)
    """

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        _check_output_size(output_size, "AdaptiveMaxPool2d")
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool2d(
            _check_input(self, input, 2), self.output_size, self.return_indices
        )

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ------------------------------------------------------------------ 1-D


def _single(value: Any, name: str, owner: str, minimum: int) -> Any:
    """An int, or a 1-tuple of one (kept as given, as torch keeps it)."""
    vals = (value,) if isinstance(value, int) else tuple(value)
    if (
        len(vals) != 1
        or isinstance(vals[0], bool)
        or not isinstance(vals[0], int)
        or vals[0] < minimum
    ):
        raise InvalidValue(
            f"{owner}: {name} must be an int >= {minimum} or a 1-tuple of one, got {value!r}"
        )
    return value


class MaxPool1d(_MaxPoolNd):
    """Max over sliding ``kernel_size`` windows of an (N, C, L) input.

    Args:
        kernel_size: window length.
        stride: window step. Default: ``kernel_size``.
        padding: implicit -inf padding at both ends. Default: 0.
        dilation: spacing between window elements. Default: 1.
        return_indices: also return the argmax positions along L.
        ceil_mode: round the output length up instead of down.

    Shape:
        - Input: (N, C, L) or (C, L)
        - Output: (N, C, L_out), ``L_out = floor((L + 2p - d(k-1) - 1)/s + 1)``
    """

    _dims = 1

    def _arg(self, value: Any, name: str, minimum: int) -> Any:
        return _single(value, name, "MaxPool1d", minimum)


def _one_tuple(value: Any) -> tuple[int]:
    return (value,) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


class AvgPool1d(Module):
    """Average over sliding ``kernel_size`` windows of an (N, C, L) input.

    Args:
        kernel_size: window length.
        stride: window step. Default: ``kernel_size``.
        padding: implicit zero padding at both ends. Default: 0.
        ceil_mode: round the output length up instead of down.
        count_include_pad: count padded zeros in the average. Default: ``True``.

    Shape:
        - Input: (N, C, L) or (C, L)
        - Output: (N, C, L_out), ``L_out = floor((L + 2p - k)/s + 1)``
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        # stored as 1-tuples, as torch stores them
        self.kernel_size = _one_tuple(_single(kernel_size, "kernel_size", "AvgPool1d", 1))
        self.stride = (
            self.kernel_size
            if stride is None
            else _one_tuple(_single(stride, "stride", "AvgPool1d", 1))
        )
        self.padding = _one_tuple(_single(padding, "padding", "AvgPool1d", 0))
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool1d(
            _check_input(self, input, 1),
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(Module):
    """Average pooling to a fixed output length, whatever the input length.

    Args:
        output_size: the output length L_out.

    Shape:
        - Input: (N, C, L) or (C, L)
        - Output: (N, C, L_out)
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = _single(output_size, "output_size", "AdaptiveAvgPool1d", 0)

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool1d(_check_input(self, input, 1), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(Module):
    """Max pooling to a fixed output length, whatever the input length.

    Args:
        output_size: the output length L_out.
        return_indices: also return the argmax positions along L.

    Shape:
        - Input: (N, C, L) or (C, L)
        - Output: (N, C, L_out)
    """

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = _single(output_size, "output_size", "AdaptiveMaxPool1d", 0)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool1d(
            _check_input(self, input, 1), self.output_size, self.return_indices
        )

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ------------------------------------------------------------------ unpooling, power pooling


class _MaxUnpoolNd(Module):
    """The max-unpooling layers: sizes kept as tuples of the layer's rank (torch's repr)."""

    _dims = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        name, n = type(self).__name__, self._dims
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", name)
        self.stride = _ntuple(kernel_size if stride is None else stride, n, "stride", name)
        self.padding = _ntuple(padding, n, "padding", name)
        for what, v, low in (("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1)):
            if min(v) < low:
                raise InvalidValue(f"{name}: {what} must be >= {low}, got {v}")
        if min(self.padding) < 0:
            raise InvalidValue(f"{name}: padding must be >= 0, got {self.padding}")

    def forward(self, input: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        unpool = {1: max_unpool1d, 2: max_unpool2d, 3: max_unpool3d}[self._dims]
        return unpool(
            _check_input(self, input, self._dims),
            indices,
            self.kernel_size,
            self.stride,
            self.padding,
            output_size,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of MaxPool2d: each value goes back to its argmax position, all
    others are zero.

    Args:
        kernel_size: the pooling's window size (int or pair).
        stride: the pooling's step. Default: ``kernel_size``.
        padding: the pooling's padding. Default: 0.

    Shape:
        - Input: (N, C, H, W) or (C, H, W), with the int64 indices of the same shape
        - Output: (N, C, H_out, W_out), ``H_out = (H - 1) * stride - 2 * padding + kernel``
          or ``output_size`` given to ``forward``
    """


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of MaxPool1d (see :class:`MaxUnpool2d`).

    Shape:
        - Input: (N, C, L) or (C, L), with the int64 indices of the same shape
        - Output: (N, C, L_out), ``L_out = (L - 1) * stride - 2 * padding + kernel``
    """

    _dims = 1


class _LPPoolNd(Module):
    _dims = 2

    def __init__(
        self, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if self._dims == 3:
            _ntuple(kernel_size, 3, "kernel_size", name)
            if stride is not None:
                _ntuple(stride, 3, "stride", name)
        else:
            check = _check_size if self._dims == 2 else _single
            check(kernel_size, "kernel_size", name, 1)
            if stride is not None:
                check(stride, "stride", name, 1)
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        pool = {1: lp_pool1d, 2: lp_pool2d, 3: lp_pool3d}[self._dims]
        return pool(
            _check_input(self, input, self._dims),
            float(self.norm_type),
            self.kernel_size,
            self.stride,
            self.ceil_mode,
        )

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, ceil_mode={self.ceil_mode}"
        )


class LPPool2d(_LPPoolNd):
    """Power-average pooling: each window's ``(sum x ** p) ** (1 / p)``.

    Args:
        norm_type: the power p (1 is sum pooling, large p approaches max pooling).
        kernel_size: window size (int or pair).
        stride: window step. Default: ``kernel_size``.
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: (N, C, H, W) or (C, H, W)
        - Output: (N, C, H_out, W_out), ``H_out = (H - kH) // sH + 1``
    """


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling (see :class:`LPPool2d`).

    Shape:
        - Input: (N, C, L) or (C, L)
        - Output: (N, C, L_out), ``L_out = (L - k) // s + 1``
    """

    _dims = 1


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of MaxPool3d (see :class:`MaxUnpool2d`).

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W), with the int64 indices of the same shape
        - Output: (N, C, D_out, H_out, W_out), ``D_out = (D - 1) * stride - 2 * padding +
          kernel`` (likewise H, W) or ``output_size`` given to ``forward``
    """

    _dims = 3


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling (see :class:`LPPool2d`): each window's
    ``(sum x ** p) ** (1 / p)``.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: (N, C, D_out, H_out, W_out), ``D_out = (D - kD) // sD + 1`` (likewise H, W)
    """

    _dims = 3


class _FractionalMaxPoolNd(Module):
    """Fractional max pooling (see :func:`darklib.nn.functional.fractional_max_pool2d`):
    ``kernel_size`` windows at pseudo-random starts, ``output_size`` of them per axis or
    ``output_ratio`` of the input. ``_random_samples`` (a buffer, None by default: fresh
    samples each call) fixes their placement."""

    _dims = 2

    def __init__(
        self,
        kernel_size: Any,
        output_size: Any = None,
        output_ratio: Any = None,
        return_indices: bool = False,
        _random_samples: Tensor | None = None,
    ) -> None:
        super().__init__()
        name, dims = type(self).__name__, self._dims
        if output_size is None and output_ratio is None:
            raise InvalidValue(
                f"{name} requires specifying either an output size, or a pooling ratio"
            )
        if output_size is not None and output_ratio is not None:
            raise InvalidValue("only one of output_size and output_ratio may be specified")
        self.kernel_size = _ntuple(kernel_size, dims, "kernel_size", name)
        self.output_size = None
        if output_size is not None:
            self.output_size = _ntuple(output_size, dims, "output_size", name)
        self.output_ratio = None
        if output_ratio is not None:
            ratio = output_ratio if isinstance(output_ratio, tuple | list) else [output_ratio]
            self.output_ratio = tuple(float(r) for r in ratio) * (dims if len(ratio) == 1 else 1)
            if len(self.output_ratio) != dims or not all(0 < r < 1 for r in self.output_ratio):
                raise InvalidValue(f"output_ratio must be between 0 and 1 (got {output_ratio})")
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)

    def forward(self, input: Tensor) -> Any:
        pool = fractional_max_pool2d if self._dims == 2 else fractional_max_pool3d
        return pool(
            check_tensor(self, input),
            self.kernel_size,
            self.output_size,
            self.output_ratio,
            self.return_indices,
            _random_samples=self._random_samples,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # (torch's repr shows no arguments)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Fractional max pooling over (N, C, H, W) or (C, H, W) inputs."""

    _dims = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Fractional max pooling over (N, C, D, H, W) or (C, D, H, W) inputs."""

    _dims = 3
