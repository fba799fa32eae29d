"""UNet (Ronneberger et al., 2015) for image segmentation, in the form PyTorch users know
(double 3x3 convolutions with batch norm, as in the widely used "Pytorch-UNet"), which the
Dark tutorial trains for car segmentation.

An encoder of ``depth`` max-pool steps doubles the channels at each, a decoder upsamples
back (a stride-2 transposed convolution, or bilinear upsampling followed by the
convolutions), and each decoder step concatenates the encoder's features of its size
(the skip connections) before its double convolution. A 1x1 convolution gives the
per-pixel class scores (logits).
"""

from __future__ import annotations

from darklib import nn
from darklib.errors import InvalidValue
from darklib.nn.module import Module
from darklib.ops.shape import cat
from darklib.tensor import Tensor

__all__ = ["DoubleConv", "Down", "UNet", "Up"]


class DoubleConv(nn.Sequential):
    """Two (3x3 convolution, batch norm, ReLU) in a row; padding keeps the size.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mid_channels: channels between the two convolutions. Default: ``out_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        mid = mid_channels or out_channels
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """An encoder step: a 2x2 max pool halves the size, then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Up(Module):
    """A decoder step: upsample ``x`` 2x, concatenate the skip features (skip first, on
    the channel dim), then a :class:`DoubleConv`.

    With ``bilinear=False`` the upsampling is a 2x2 stride-2 ConvTranspose2d that also
    halves the channels, so the concatenation has ``in_channels`` channels. With
    ``bilinear=True`` it is a parameter-free bilinear Upsample (``align_corners=True``)
    that keeps the channels: ``x`` and the skip each have ``in_channels // 2`` and the
    double convolution narrows to ``in_channels // 2`` in its middle.

    Args:
        in_channels: channels of the concatenation.
        out_channels: output channels.
        bilinear: bilinear upsampling instead of a transposed convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = False) -> None:
        super().__init__()
        self.up: Module
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(cat([skip, self.up(x)], dim=1))


class UNet(Module):
    """UNet for semantic segmentation: per-pixel logits of the input's size.

    Channels ``base * 2**i`` at encoder level ``i`` (64, 128, 256, 512, 1024 for the
    defaults; with ``bilinear`` the deepest level keeps ``base * 2**(depth - 1)``, as do
    the decoder's outputs one level up, since bilinear upsampling cannot halve channels).
    Submodules: ``inc`` (the first DoubleConv), ``downs`` and ``ups`` (ModuleLists of
    ``depth`` :class:`Down` and :class:`Up` steps, deepest ``Up`` first) and ``outc``
    (the 1x1 classifier convolution, with bias).

    Use ``CrossEntropyLoss`` on the output for ``num_classes > 1``, or
    ``BCEWithLogitsLoss`` for one class (a foreground mask).

    Args:
        in_channels: input channels. Default: 3.
        num_classes: output channels (class scores per pixel). Default: 1.
        base: channels of the first level. Default: 64.
        depth: number of down (and up) steps. Default: 4.
        bilinear: bilinear upsampling instead of transposed convolutions. Default: False.

    Shape:
        - Input: (N, in_channels, H, W), H and W multiples of ``2**depth``
        - Output: (N, num_classes, H, W)

    Raises:
        InvalidValue: at the call, for an input whose height or width is not a multiple
            of ``2**depth``.

    Example::

        >>> model = UNet(in_channels=3, num_classes=2, base=16, depth=3)
        >>> model(dl.randn(1, 3, 64, 96)).shape
        darklib.Size([1, 2, 64, 96])
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        base: int = 64,
        depth: int = 4,
        bilinear: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < 1:
            raise InvalidValue(f"UNet: depth must be a positive int, got {depth!r}")
        if not isinstance(base, int) or base < 1:
            raise InvalidValue(f"UNet: base must be a positive int, got {base!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = depth
        self.bilinear = bilinear
        factor = 2 if bilinear else 1
        widths = [base * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(
            Down(widths[i - 1], widths[i] // (factor if i == depth else 1))
            for i in range(1, depth + 1)
        )
        self.ups = nn.ModuleList(
            Up(widths[i], widths[i - 1] // (factor if i > 1 else 1), bilinear)
            for i in range(depth, 0, -1)
        )
        self.outc = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_size(x)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        out = skips.pop()
        for up in self.ups:
            out = up(out, skips.pop())
        return self.outc(out)

    def _check_size(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim != 4:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InvalidValue(f"UNet: expected an (N, C, H, W) input, got {got}")
        h, w = x.shape[-2:]
        step = 2**self.depth
        if h % step or w % step:
            raise InvalidValue(
                f"UNet(depth={self.depth}): the input's height and width must be multiples of "
                f"2**depth = {step}, got an input of shape {tuple(x.shape)} (H={h}, W={w}); "
                f"pad or resize it, e.g. to {-(-h // step) * step}x{-(-w // step) * step}"
            )

    def extra_repr(self) -> str:
        return f"depth={self.depth}, bilinear={self.bilinear}"
