"""The ResNet family of ``torchvision.models``: ResNet-18 to 152 (He et al., 2015), ResNeXt
(grouped 3x3 convolutions) and Wide ResNet (wider bottlenecks).

The architecture, the state_dict keys (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``, ...) and the initialisation are torchvision's, so a
torchvision checkpoint converted to safetensors loads as it is::

    >>> model = resnet50()
    >>> model.load_state_dict(dl.load("resnet50.safetensors"))

The stride of each stage's first block sits on its 3x3 convolution (ResNet v1.5), as in
torchvision. darklib downloads nothing: the builders' ``weights`` must stay None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from darklib import nn
from darklib.errors import InvalidValue
from darklib.nn.module import Module
from darklib.tensor import Tensor
from darklib.vision.models._utils import fix_kwarg, no_pretrained_weights

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]

NormLayer = Callable[[int], Module]


def conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """A 3x3 convolution without bias whose padding keeps the size (at stride 1)."""
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """A 1x1 convolution without bias (channel mixing, or a strided shortcut)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(Module):
    """The two-convolution residual block of ResNet-18 and 34:
    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    Args:
        inplanes: input channels.
        planes: channels of both convolutions (and of the output: ``expansion`` is 1).
        stride: stride of the first convolution.
        downsample: the shortcut when the shape changes (a 1x1 convolution and a norm), or
            None for the identity.
        groups, base_width: must be 1 and 64 (kept for a signature shared with Bottleneck).
        dilation: must be 1.
        norm_layer: the normalisation, called with a channel count. Default: BatchNorm2d.
    """

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise InvalidValue(
                f"BasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                f"base_width={base_width}"
            )
        if dilation > 1:
            raise NotImplementedError("BasicBlock does not support dilation > 1")
        norm = norm_layer or nn.BatchNorm2d
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(Module):
    """The 1x1-3x3-1x1 residual block of ResNet-50 and deeper, of ResNeXt and Wide ResNet:
    the 1x1 convolutions narrow the channels to ``width`` and widen them back to
    ``planes * 4``; the 3x3 one carries the stride, the groups and the dilation.

    ``width = int(planes * base_width / 64) * groups``: 64-wide groups of one for ResNet,
    ``groups=32, base_width=4`` for ResNeXt-50 32x4d, ``base_width=128`` for Wide ResNet-50-2.

    Args:
        inplanes: input channels.
        planes: the stage's channel count; the output has ``planes * expansion`` (4x).
        stride: stride of the 3x3 convolution.
        downsample: the shortcut when the shape changes, or None for the identity.
        groups: groups of the 3x3 convolution.
        base_width: channels per group at ``planes=64``.
        dilation: dilation (and padding) of the 3x3 convolution.
        norm_layer: the normalisation, called with a channel count. Default: BatchNorm2d.
    """

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        norm = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(Module):
    """A residual network for image classification, as ``torchvision.models.ResNet``.

    A 7x7 stride-2 stem (``conv1``, ``bn1``, ``relu``, a 3x3 stride-2 ``maxpool``), four
    stages ``layer1`` .. ``layer4`` of residual blocks with 64, 128, 256 and 512 planes
    (stages 2-4 halve the size), global average pooling and a linear classifier ``fc``.
    The output stride is 32.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: the number of blocks in each of the four stages, e.g. ``[3, 4, 6, 3]``.
        num_classes: outputs of ``fc``. Default: 1000.
        zero_init_residual: zero the last norm's weight in each block, so that each
            residual branch starts as zero and each block as the identity. Default: False.
        groups: groups of the bottlenecks' 3x3 convolutions (ResNeXt's cardinality).
        width_per_group: channels per group at 64 planes (64: ResNet; 128: Wide ResNet).
        replace_stride_with_dilation: three booleans for stages 2-4: True keeps that
            stage's resolution and dilates its convolutions instead (segmentation backbones,
            output stride 16 or 8). Bottleneck only.
        norm_layer: the normalisation, called with a channel count. Default: BatchNorm2d.

    Initialisation: convolutions He normal (``fan_out``, ReLU gain), norms weight 1 and
    bias 0, ``fc`` as :class:`~darklib.nn.Linear`.

    Shape:
        - Input: (N, 3, H, W)
        - Output: (N, num_classes)

    Example::

        >>> model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=10)  # resnet18's layout
        >>> model(dl.randn(2, 3, 64, 64)).shape
        darklib.Size([2, 10])
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        replace_stride_with_dilation: Sequence[bool] | None = None,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise InvalidValue(f"ResNet: layers must give 4 stage depths, got {list(layers)}")
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise InvalidValue(
                "ResNet: replace_stride_with_dilation should be None or a 3-element tuple, "
                f"got {replace_stride_with_dilation!r}"
            )
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = 64
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group

        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        dilate = list(replace_stride_with_dilation)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=dilate[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # each residual branch then starts at zero and each block as the identity
            # (Goyal et al., 2017)
            for m in self.modules():
                last = m.bn3 if isinstance(m, Bottleneck) else None
                last = m.bn2 if isinstance(m, BasicBlock) else last
                if last is not None and getattr(last, "weight", None) is not None:
                    nn.init.zeros_(last.weight)

    def _make_layer(
        self, block: Block, planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        """One stage: a first block that may change the size and channels (with a 1x1
        projection shortcut), then ``blocks - 1`` blocks that keep them."""
        norm = self._norm_layer
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        out_planes = planes * block.expansion
        if stride != 1 or self.inplanes != out_planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, out_planes, stride), norm(out_planes))
        blocks_: list[Module] = [
            block(
                self.inplanes,
                planes,
                stride,
                downsample,
                self.groups,
                self.base_width,
                previous_dilation,
                norm,
            )
        ]
        self.inplanes = out_planes
        for _ in range(1, blocks):
            blocks_.append(
                block(
                    self.inplanes,
                    planes,
                    groups=self.groups,
                    base_width=self.base_width,
                    dilation=self.dilation,
                    norm_layer=norm,
                )
            )
        return nn.Sequential(*blocks_)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _resnet(
    name: str,
    block: Block,
    layers: list[int],
    weights: Any,
    kwargs: dict[str, Any],
    **fixed: Any,
) -> ResNet:
    no_pretrained_weights(name, weights, kwargs)
    for key, value in fixed.items():
        fix_kwarg(name, kwargs, key, value)
    return ResNet(block, layers, **kwargs)


_BUILDER_DOC = """{title}, as torchvision's ``{name}``: {what}.

    Args:
        weights: must be None: darklib downloads no pretrained weights. Load a state dict
            instead: ``model.load_state_dict(dl.load("{name}.safetensors"))``.
        progress: accepted for torchvision compatibility (nothing is downloaded).
        **kwargs: passed to :class:`ResNet` (``num_classes``, ``zero_init_residual``,
            ``replace_stride_with_dilation``, ``norm_layer``, ...).

    Raises:
        InvalidValue: ``weights`` is not None.
    """


def resnet18(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], weights, kwargs)


def resnet34(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], weights, kwargs)


def resnet50(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], weights, kwargs)


def resnet101(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet("resnet101", Bottleneck, [3, 4, 23, 3], weights, kwargs)


def resnet152(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet("resnet152", Bottleneck, [3, 8, 36, 3], weights, kwargs)


def resnext50_32x4d(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet(
        "resnext50_32x4d", Bottleneck, [3, 4, 6, 3], weights, kwargs, groups=32, width_per_group=4
    )


def resnext101_32x8d(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet(
        "resnext101_32x8d", Bottleneck, [3, 4, 23, 3], weights, kwargs, groups=32, width_per_group=8
    )


def resnext101_64x4d(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet(
        "resnext101_64x4d", Bottleneck, [3, 4, 23, 3], weights, kwargs, groups=64, width_per_group=4
    )


def wide_resnet50_2(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet(
        "wide_resnet50_2", Bottleneck, [3, 4, 6, 3], weights, kwargs, width_per_group=128
    )


def wide_resnet101_2(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    del progress
    return _resnet(
        "wide_resnet101_2", Bottleneck, [3, 4, 23, 3], weights, kwargs, width_per_group=128
    )


for _fn, _title, _what in [
    (resnet18, "ResNet-18", "BasicBlocks [2, 2, 2, 2], 11.7 M parameters"),
    (resnet34, "ResNet-34", "BasicBlocks [3, 4, 6, 3], 21.8 M parameters"),
    (resnet50, "ResNet-50", "Bottlenecks [3, 4, 6, 3], 25.6 M parameters"),
    (resnet101, "ResNet-101", "Bottlenecks [3, 4, 23, 3], 44.5 M parameters"),
    (resnet152, "ResNet-152", "Bottlenecks [3, 8, 36, 3], 60.2 M parameters"),
    (resnext50_32x4d, "ResNeXt-50 32x4d", "Bottlenecks [3, 4, 6, 3], 32 groups of 4 channels"),
    (resnext101_32x8d, "ResNeXt-101 32x8d", "Bottlenecks [3, 4, 23, 3], 32 groups of 8"),
    (resnext101_64x4d, "ResNeXt-101 64x4d", "Bottlenecks [3, 4, 23, 3], 64 groups of 4"),
    (wide_resnet50_2, "Wide ResNet-50-2", "Bottlenecks [3, 4, 6, 3] twice as wide inside"),
    (wide_resnet101_2, "Wide ResNet-101-2", "Bottlenecks [3, 4, 23, 3] twice as wide inside"),
]:
    _fn.__doc__ = _BUILDER_DOC.format(title=_title, name=_fn.__name__, what=_what)
del _fn, _title, _what
