"""DCGAN (Radford et al., 2015): the generator and discriminator of PyTorch's DCGAN
tutorial, which the Dark tutorial trains to generate anime faces.

At ``image_size=64`` both networks are the tutorial's, layer for layer, with its state_dict
keys (``main.0.weight``, ...). Other powers of two (32, 16, 128, ...) drop or add one
stride-2 stage per factor of two: the generator starts at ``ngf * image_size // 8``
channels on a 4x4 map and halves them at each doubling; the discriminator mirrors it.

Both networks are initialised by :func:`dcgan_weights_init`, the tutorial's
``weights_init``: convolution weights from N(0, 0.02), batch-norm weights from N(1, 0.02)
and batch-norm biases zero. The convolutions have no bias (batch norm follows them, or,
at the ends, Tanh and Sigmoid).
"""

from __future__ import annotations

from darklib import nn
from darklib.errors import InvalidValue
from darklib.nn.conv import _ConvNd
from darklib.nn.module import Module
from darklib.nn.normalization import _BatchNorm
from darklib.tensor import Tensor

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_weights_init"]


def dcgan_weights_init(m: Module) -> None:
    """The DCGAN tutorial's ``weights_init``, for ``model.apply``: every convolution
    (transposed too) gets weights from N(0, 0.02); every batch norm weights from
    N(1, 0.02) and zero biases. Other modules are left alone."""
    if isinstance(m, _ConvNd):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, _BatchNorm) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _stages(image_size: int, who: str) -> int:
    """The number of stride-2 stages between the 4x4 map and the image (4 for 64)."""
    if not isinstance(image_size, int) or image_size < 16 or image_size & (image_size - 1):
        raise InvalidValue(
            f"{who}: image_size must be a power of two of at least 16 (e.g. 32 or 64), "
            f"got {image_size!r}"
        )
    return image_size.bit_length() - 3


class DCGANGenerator(Module):
    """The DCGAN generator: a latent vector to an image in [-1, 1].

    A 4x4 transposed convolution turns the (nz, 1, 1) latent into a 4x4 map of
    ``ngf * image_size // 8`` channels; each following stride-2 transposed convolution
    (kernel 4, padding 1) doubles the size and halves the channels, with batch norm and
    ReLU, down to ``ngf``; the last one gives ``nc`` channels, squashed by Tanh. For 64x64:
    nz -> 512 (4x4) -> 256 (8x8) -> 128 (16x16) -> 64 (32x32) -> 3 (64x64), all in
    ``self.main``.

    Args:
        nz: size of the latent vector. Default: 100.
        ngf: generator feature width (channels of the last hidden map). Default: 64.
        nc: image channels. Default: 3.
        image_size: output side, a power of two of at least 16. Default: 64.

    Shape:
        - Input: (N, nz, 1, 1) (or (N, nz), reshaped)
        - Output: (N, nc, image_size, image_size), in [-1, 1]

    Example::

        >>> netG = DCGANGenerator(nz=100)
        >>> netG(dl.randn(8, 100, 1, 1)).shape
        darklib.Size([8, 3, 64, 64])
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64) -> None:
        super().__init__()
        stages = _stages(image_size, "DCGANGenerator")
        self.nz = nz
        self.image_size = image_size
        width = ngf * 2 ** (stages - 1)
        layers: list[Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_weights_init)

    def forward(self, z: Tensor) -> Tensor:
        if isinstance(z, Tensor) and z.ndim == 2:
            z = z.reshape(z.shape[0], z.shape[1], 1, 1)
        if not isinstance(z, Tensor) or z.ndim != 4 or tuple(z.shape[1:]) != (self.nz, 1, 1):
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise InvalidValue(
                f"DCGANGenerator: expected a latent of shape (N, {self.nz}, 1, 1) or "
                f"(N, {self.nz}), got {got}"
            )
        return self.main(z)


class DCGANDiscriminator(Module):
    """The DCGAN discriminator: an image to the probability that it is real.

    Stride-2 convolutions (kernel 4, padding 1) halve the size from ``image_size`` down
    to 4x4 while the channels double from ``ndf`` (LeakyReLU 0.2 throughout, batch norm
    after all but the first); a last 4x4 convolution and a Sigmoid give one probability.
    For 64x64: 3 -> 64 (32x32) -> 128 (16x16) -> 256 (8x8) -> 512 (4x4) -> 1 (1x1), all in
    ``self.main``.

    The output keeps the tutorial's shape, (N, 1, 1, 1): flatten it as the tutorial does,
    ``netD(x).view(-1)``, before ``BCELoss`` against (N,) labels.

    Args:
        nc: image channels. Default: 3.
        ndf: discriminator feature width (channels of the first map). Default: 64.
        image_size: input side, a power of two of at least 16. Default: 64.

    Shape:
        - Input: (N, nc, image_size, image_size)
        - Output: (N, 1, 1, 1), probabilities in (0, 1)

    Example::

        >>> netD = DCGANDiscriminator()
        >>> netD(dl.randn(8, 3, 64, 64)).view(-1).shape
        darklib.Size([8])
    """

    def __init__(self, nc: int = 3, ndf: int = 64, image_size: int = 64) -> None:
        super().__init__()
        stages = _stages(image_size, "DCGANDiscriminator")
        self.image_size = image_size
        width = ndf
        layers: list[Module] = [
            nn.Conv2d(nc, width, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_weights_init)

    def forward(self, x: Tensor) -> Tensor:
        size = (self.image_size, self.image_size)
        if isinstance(x, Tensor) and x.ndim == 4 and tuple(x.shape[-2:]) != size:
            raise InvalidValue(
                f"DCGANDiscriminator(image_size={self.image_size}): expected "
                f"{self.image_size}x{self.image_size} images, got an input of shape "
                f"{tuple(x.shape)}"
            )
        return self.main(x)
