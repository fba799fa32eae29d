"""Identity and Linear."""

from __future__ import annotations

import math
from typing import Any

from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int, shape_str
from darklib.nn.module import Module
from darklib.ops.linalg import linear
from darklib.tensor import Tensor

__all__ = ["Identity", "Linear"]


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
