"""darklib.vision.models: model families for the studio's samples.

- ``resnet``: torchvision's ResNet, ResNeXt and Wide ResNet, with its architecture and
  state_dict keys (a converted torchvision checkpoint loads with ``load_state_dict``).
- ``resnet9``: the small, fast CIFAR ResNet9.
- ``unet``: UNet for segmentation, of any depth, transposed-convolution or bilinear up.
- ``dcgan``: the generator and discriminator of PyTorch's DCGAN tutorial.
- ``yolo``: a YOLOv3-style detector (two or three scales) with its target assignment,
  loss and decoding, the tutorial's face detector.

darklib downloads no pretrained weights: the builders' ``weights`` must be None.
"""

from darklib.vision.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_weights_init
from darklib.vision.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from darklib.vision.models.resnet9 import ResNet9, resnet9
from darklib.vision.models.unet import UNet
from darklib.vision.models.yolo import YOLOLoss, YOLOv3, decode, default_anchors

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ResNet",
    "ResNet9",
    "UNet",
    "YOLOLoss",
    "YOLOv3",
    "dcgan_weights_init",
    "decode",
    "default_anchors",
    "resnet9",
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
