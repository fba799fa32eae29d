"""ResNet9: the small, fast residual network of the CIFAR-10 speed runs (David Page's
"How to train your ResNet", popularised by the "Zero to GANs" course) that the Dark
tutorial trains for CIFAR classification and face-landmark regression.

Nine weighted layers: eight 3x3 convolutions, in conv-BN-ReLU blocks, and a linear
classifier; two residual blocks of two convolutions each. Written as a PyTorch user would
write it, so its state_dict keys are those of the usual PyTorch version::

    conv1  conv_block(in_channels, 64)                       32x32
    conv2  conv_block(64, 128) + MaxPool2d(2)                16x16
    res1   conv_block(128, 128), conv_block(128, 128)  + x
    conv3  conv_block(128, 256) + MaxPool2d(2)                8x8
    conv4  conv_block(256, 512) + MaxPool2d(2)                4x4
    res2   conv_block(512, 512), conv_block(512, 512)  + x
    classifier  AdaptiveMaxPool2d(1), Flatten, Linear(512, num_classes)
"""

from __future__ import annotations

from darklib import nn
from darklib.nn.module import Module
from darklib.tensor import Tensor

__all__ = ["ResNet9", "conv_block", "resnet9"]


def conv_block(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    """A 3x3 convolution (padding 1), batch norm and ReLU, then a 2x2 max pool if ``pool``."""
    layers: list[Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ResNet9(Module):
    """ResNet9 for small images (CIFAR's 32x32; any size of at least 8x8 works, thanks to
    the adaptive pool before the classifier). Layers keep PyTorch's default initialisation.

    Args:
        num_classes: outputs of the classifier. Default: 10.
        in_channels: input channels (3 for RGB, 1 for grey). Default: 3.

    Shape:
        - Input: (N, in_channels, H, W), H and W at least 8
        - Output: (N, num_classes)

    Example::

        >>> model = ResNet9(num_classes=10)
        >>> model(dl.randn(4, 3, 32, 32)).shape
        darklib.Size([4, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = conv_block(in_channels, 64)
        self.conv2 = conv_block(64, 128, pool=True)
        self.res1 = nn.Sequential(conv_block(128, 128), conv_block(128, 128))
        self.conv3 = conv_block(128, 256, pool=True)
        self.conv4 = conv_block(256, 512, pool=True)
        self.res2 = nn.Sequential(conv_block(512, 512), conv_block(512, 512))
        self.classifier = nn.Sequential(
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        out = self.res1(out) + out
        out = self.conv4(self.conv3(out))
        out = self.res2(out) + out
        return self.classifier(out)


def resnet9(num_classes: int = 10, in_channels: int = 3) -> ResNet9:
    """Build a :class:`ResNet9` (6.57 M parameters for 10 classes and RGB input)."""
    return ResNet9(num_classes=num_classes, in_channels=in_channels)
