"""Identity, Linear and Bilinear."""

from __future__ import annotations

import math
from typing import Any

from darklib.errors import InvalidValue
from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int, shape_str
from darklib.nn.module import Module
from darklib.ops.linalg import bilinear, linear
from darklib.tensor import Tensor

__all__ = ["Bilinear", "Identity", "Linear"]


class Identity(Module):
    """Returns its input unchanged; arguments are accepted and ignored (a placeholder)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """Affine map ``y = x W^T + b``.

    Args:
        in_features: size of each input sample's last dimension.
        out_features: size of each output sample's last dimension.
        bias: learn an additive bias. Default: ``True``.

    Shape:
        - Input: (*, in_features)
        - Output: (*, out_features)

    Attributes:
        weight: (out_features, in_features), initialised U(-1/sqrt(in), 1/sqrt(in)).
        bias: (out_features,), initialised likewise.

    Example::

        >>> fc = nn.Linear(20, 30)
        >>> fc(dl.randn(128, 20)).shape
        (128, 30)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        positive_int(in_features, "in_features", "Linear", allow_zero=True)
        positive_int(out_features, "out_features", "Linear", allow_zero=True)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = new_param((out_features, in_features), device, dtype)
        if bias:
            self.bias = new_param((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor(self, input)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise RuntimeError(
                f"{self!r}: expected input with last dimension {self.in_features}, got "
                f"{shape_str(x)}"
            )
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class NonDynamicallyQuantizableLinear(Linear):
    """A :class:`Linear` under the name torch gives MultiheadAttention's ``out_proj`` (a
    marker for its quantisation tools), so that the two print alike."""


class Bilinear(Module):
    """Bilinear map ``y[..., o] = x1 W[o] x2^T + b[o]`` of two inputs.

    Args:
        in1_features: size of each first input's last dimension.
        in2_features: size of each second input's last dimension.
        out_features: size of each output's last dimension.
        bias: learn an additive bias. Default: ``True``.

    Shape:
        - Input1: (*, in1_features); Input2: (*, in2_features), same leading dimensions.
        - Output: (*, out_features)

    Attributes:
        weight: (out_features, in1_features, in2_features), initialised
            U(-1/sqrt(in1), 1/sqrt(in1)).
        bias: (out_features,), initialised likewise.

    Example::

        >>> m = nn.Bilinear(20, 30, 40)
        >>> m(dl.randn(128, 20), dl.randn(128, 30)).shape
        (128, 40)
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        positive_int(in1_features, "in1_features", "Bilinear", allow_zero=True)
        if in1_features == 0:  # (torch's check: the init divides by it)
            raise InvalidValue(
                f"Bilinear: in1_features must be > 0, but got (in1_features={in1_features})"
            )
        positive_int(in2_features, "in2_features", "Bilinear", allow_zero=True)
        positive_int(out_features, "out_features", "Bilinear", allow_zero=True)
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.weight = new_param((out_features, in1_features, in2_features), device, dtype)
        if bias:
            self.bias = new_param((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in1_features) if self.in1_features > 0 else 0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return bilinear(
            check_tensor(self, input1), check_tensor(self, input2), self.weight, self.bias
        )

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
