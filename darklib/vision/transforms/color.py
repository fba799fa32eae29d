"""Photometric transforms: pixel values change, labels stay where they are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from darklib.vision.transforms import _functional as F
from darklib.vision.transforms._core import Transform


def _factor_range(
    v: Any,
    name: str,
    center: float = 1.0,
    bound: tuple = (0, float("inf")),
    clip_first: bool = True,
) -> tuple[float, float] | None:
    if isinstance(v, int | float | np.number):
        if v < 0:
            raise ValueError(
                f"ColorJitter: if {name} is a single number, it must be non-negative, got {v}"
            )
        lo, hi = center - float(v), center + float(v)
        if clip_first:
            lo = max(lo, 0.0)
    elif isinstance(v, Sequence) and len(v) == 2:
        lo, hi = float(v[0]), float(v[1])
    else:
        raise ValueError(f"ColorJitter: {name} should be a number or a pair, got {v!r}")
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f"ColorJitter: {name} values should be between {bound}, got {(lo, hi)}")
    return None if lo == hi == center else (lo, hi)


def _gray(img: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) of an RGB float image, keeping a channel axis."""
    return img[..., 0:1] * 0.299 + img[..., 1:2] * 0.587 + img[..., 2:3] * 0.114


class ColorJitter(Transform):
    """Randomly change brightness, contrast, saturation and hue, in a random order.

    Args:
        brightness: b or (lo, hi): factor drawn from [max(0, 1 - b), 1 + b].
        contrast: as brightness, blending with the mean grey level.
        saturation: as brightness, blending with the grey image.
        hue: h or (lo, hi) in [-0.5, 0.5]: shift of the hue as a fraction of the colour wheel.
    """

    def __init__(self, brightness: Any = 0, contrast: Any = 0, saturation: Any = 0, hue: Any = 0):
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        self.hue = _factor_range(hue, "hue", center=0.0, bound=(-0.5, 0.5), clip_first=False)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        order = rng.permutation(4)
        factors = [
            None if r is None else float(rng.uniform(*r))
            for r in (self.brightness, self.contrast, self.saturation, self.hue)
        ]
        if all(f is None for f in factors):
            return
        img, back = F.image_np(s["image"], "ColorJitter")
        F.check_numeric(img, "ColorJitter")
        if img.dtype == np.bool_:
            raise TypeError("ColorJitter: images of dtype bool have no colours to change")
        # as torchvision: integer images range over [0, dtype max], float images over [0, 1]
        top = float(np.iinfo(img.dtype).max) if img.dtype.kind in "iu" else 1.0
        x = img.astype(F.work_dtype(img.dtype))
        color = x.ndim == 3 and x.shape[2] == 3
        for i in order:
            f = factors[i]
            if f is None:
                continue
            if i == 0:
                x *= f
            elif i == 1:
                m = float(_gray(x).mean()) if color else float(x.mean())
                x = x * f + (1.0 - f) * m
            elif i == 2 and color:
                x = x * f + (1.0 - f) * _gray(x)
            elif i == 3 and color:
                hsv = cv2.cvtColor(np.clip(x / top, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
                hsv[..., 0] = (hsv[..., 0] + f * 360.0) % 360.0
                x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(x.dtype) * x.dtype.type(top)
            np.clip(x, 0.0, top, out=x)
        s["image"] = back(F.from_float(x, img.dtype))


class GaussianBlur(Transform):
    """Blur with a Gaussian of random ``sigma``.

    Args:
        kernel_size: odd positive int or (kx, ky).
        sigma: s (fixed) or (lo, hi) range to draw from.
    """

    def __init__(self, kernel_size: int | Sequence[int], sigma: Any = (0.1, 2.0)):
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(ks) != 2 or any(int(k) <= 0 or int(k) % 2 == 0 for k in ks):
            raise ValueError(
                f"GaussianBlur: kernel_size must be odd positive ints, got {kernel_size!r}"
            )
        self.kernel_size = (int(ks[0]), int(ks[1]))
        if isinstance(sigma, int | float):
            if not 0 < sigma < float("inf"):
                raise ValueError(f"GaussianBlur: sigma must be positive, got {sigma}")
            self.sigma = (float(sigma), float(sigma))
        elif len(sigma) == 2 and 0 < sigma[0] <= sigma[1] < float("inf"):
            self.sigma = (float(sigma[0]), float(sigma[1]))
        else:
            raise ValueError(
                f"GaussianBlur: sigma should be positive or (lo, hi) with "
                f"0 < lo <= hi, got {sigma!r}"
            )

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        sigma = float(rng.uniform(*self.sigma))
        img, back = F.image_np(s["image"], "GaussianBlur")
        out = F.cv_image(
            lambda a: cv2.GaussianBlur(
                a, self.kernel_size, sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101
            ),
            img,
            "GaussianBlur",
        )
        s["image"] = back(out)


class Grayscale(Transform):
    """Convert an RGB image to grey (ITU-R 601 luma), with 1 or 3 output channels.

    A one-channel image stays as it is; an RGBA image loses its alpha (as PIL's
    ``convert("L")``); other channel counts are refused. Integer images are rounded back
    to their dtype.
    """

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError("Grayscale: num_output_channels should be 1 or 3")
        self.num_output_channels = num_output_channels

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        img, back = F.image_np(s["image"], "Grayscale")
        F.check_numeric(img, "Grayscale")
        if img.ndim == 2 or img.shape[2] == 1:
            g = img if img.ndim == 3 else img[..., None]
        elif img.shape[2] in (3, 4):
            g = F.from_float(_gray(img[..., :3].astype(F.work_dtype(img.dtype))), img.dtype)
        else:
            raise TypeError(
                f"Grayscale: expected an image with 1, 3 (RGB) or 4 (RGBA) channels, got "
                f"{img.shape[2]} (shape {img.shape})"
            )
        if self.num_output_channels == 3:
            g = np.repeat(g, 3, axis=2)
        s["image"] = back(g)
