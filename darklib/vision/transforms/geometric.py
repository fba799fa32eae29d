"""Geometric transforms: the pixels move, and masks, keypoints and boxes move with them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.vision.transforms import _functional as F
from darklib.vision.transforms._core import Transform, min_max, probability


def _pair(size: int | Sequence[int], where: str) -> tuple[int, int]:
    """(height, width) from an int or a sequence of one or two ints."""
    if isinstance(size, int | np.integer):
        h = w = int(size)
    elif isinstance(size, Sequence) and len(size) in (1, 2):
        h, w = int(size[0]), int(size[-1])
    else:
        raise ValueError(f"{where}: size should be an int or a sequence (h, w), got {size!r}")
    if h <= 0 or w <= 0:
        raise ValueError(f"{where}: size must be positive, got {size!r}")
    return h, w


def _padding4(padding: int | Sequence[int], where: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from torchvision's padding forms."""
    if isinstance(padding, int | np.integer):
        p = int(padding)
        out = (p, p, p, p)
    elif isinstance(padding, Sequence) and len(padding) == 1:
        out = (int(padding[0]),) * 4
    elif isinstance(padding, Sequence) and len(padding) == 2:
        out = (int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1]))
    elif isinstance(padding, Sequence) and len(padding) == 4:
        out = tuple(int(p) for p in padding)  # type: ignore[assignment]
    else:
        raise ValueError(f"{where}: padding must be an int or 1, 2 or 4 ints, got {padding!r}")
    if min(out) < 0:
        raise ValueError(f"{where}: padding must be non-negative, got {padding!r}")
    return out  # type: ignore[return-value]


def _range(
    v: float | Sequence[float], where: str, name: str, center: float = 0.0
) -> tuple[float, float]:
    if isinstance(v, int | float | np.number):
        if not math.isfinite(v):
            raise ValueError(f"{where}: {name} must be finite, got {v}")
        if v < 0:
            raise ValueError(f"{where}: if {name} is a single number, it must be positive, got {v}")
        return center - float(v), center + float(v)
    if isinstance(v, Sequence) and len(v) == 2:
        lo, hi = float(v[0]), float(v[1])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{where}: {name} must be finite, got {tuple(v)}")
        if lo > hi:
            raise ValueError(f"{where}: {name} should be (min, max), got {tuple(v)}")
        return lo, hi
    raise ValueError(f"{where}: {name} should be a number or a pair, got {v!r}")


class Resize(Transform):
    """Resize to ``size``: (h, w), or an int matching the smaller edge (keeping the aspect).

    Images are resized as torchvision resizes tensor images, with
    ``torch.nn.functional.interpolate``'s arithmetic (numpy ``HWC`` images too): uint8
    rounded as torch's byte kernels round (within one level of torch), floats kept in their
    precision, other integer dtypes rounded back.

    Args:
        size: output size.
        interpolation: ``"bilinear"`` (default), ``"bicubic"``, ``"nearest"`` (torch's
            ``floor(o * in / out)``), ``"nearest-exact"`` (pixel centres), or OpenCV's
            ``"area"`` and ``"lanczos"``. Masks always use ``"nearest"``.
        max_size: cap on the longer edge when ``size`` is an int.
        antialias: when shrinking with bilinear or bicubic, widen the filter to the whole
            footprint of each output pixel (torch's ``antialias=True``).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: str = "bilinear",
        max_size: int | None = None,
        antialias: bool = True,
    ):
        self.single = isinstance(size, int | np.integer) or (
            isinstance(size, Sequence) and len(size) == 1
        )
        self.size = _pair(size, "Resize")
        F.resize_mode(interpolation, "Resize")
        if max_size is not None and not self.single:
            raise ValueError("Resize: max_size is only supported for an int size")
        if max_size is not None and max_size <= self.size[0]:
            raise ValueError(
                f"Resize: max_size = {max_size} must be strictly greater than the requested "
                f"size for the smaller edge size = {size}"
            )
        self.interpolation = interpolation
        self.max_size = max_size
        self.antialias = antialias

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        if not self.single:
            return self.size
        short, long_ = (h, w) if h <= w else (w, h)
        new_short = self.size[0]
        new_long = int(new_short * long_ / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_short, new_long) if h <= w else (new_long, new_short)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        h, w = F.image_size(s, "Resize")
        oh, ow = self.output_size(h, w)
        F.resize(s, oh, ow, self.interpolation, self.antialias, "Resize")


class Pad(Transform):
    """Pad the borders by ``padding`` (int, (left/right, top/bottom) or (l, t, r, b)).

    Args:
        padding: the padding.
        fill: value of constant padding (a number or one per channel).
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"``.
        mask_fill: mask value in the padding.
    """

    def __init__(
        self,
        padding: int | Sequence[int],
        fill: Any = 0,
        padding_mode: str = "constant",
        mask_fill: int = 0,
    ):
        self.padding = _padding4(padding, "Pad")
        F.border_flag(padding_mode, "Pad")
        self.fill, self.padding_mode, self.mask_fill = fill, padding_mode, mask_fill

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        h, w = F.image_size(s, "Pad")
        l, t, r, b = self.padding
        F.crop(s, -t, -l, h + t + b, w + l + r, self.fill, self.padding_mode, self.mask_fill, "Pad")


class CenterCrop(Transform):
    """Crop the centre ``size`` (h, w) or (size, size); a smaller image is padded with 0."""

    def __init__(self, size: int | Sequence[int]):
        self.size = _pair(size, "CenterCrop")

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        H, W = F.image_size(s, "CenterCrop")
        h, w = self.size
        top = -((h - H) // 2) if H < h else round((H - h) / 2.0)
        left = -((w - W) // 2) if W < w else round((W - w) / 2.0)
        F.crop(s, top, left, h, w, 0, "constant", 0, "CenterCrop")


class RandomCrop(Transform):
    """Crop a random ``size`` window, after optional padding.

    Args:
        size: output (h, w) or an int for a square.
        padding: pad the borders first (int, 2 or 4 ints: left, top, right, bottom).
        pad_if_needed: pad an image smaller than ``size`` instead of failing.
        fill: constant padding value (number or one per channel).
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"``.
        mask_fill: mask value in the padding.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: Any = 0,
        padding_mode: str = "constant",
        mask_fill: int = 0,
    ):
        self.size = _pair(size, "RandomCrop")
        self.padding = (0, 0, 0, 0) if padding is None else _padding4(padding, "RandomCrop")
        F.border_flag(padding_mode, "RandomCrop")
        self.pad_if_needed = pad_if_needed
        self.fill, self.padding_mode, self.mask_fill = fill, padding_mode, mask_fill

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        H, W = F.image_size(s, "RandomCrop")
        l, t, r, b = self.padding
        h, w = self.size
        ph, pw = H + t + b, W + l + r
        if self.pad_if_needed:
            extra_h, extra_w = max(0, h - ph), max(0, w - pw)
            t, b, ph = t + extra_h, b + extra_h, ph + 2 * extra_h
            l, r, pw = l + extra_w, r + extra_w, pw + 2 * extra_w
        if ph < h or pw < w:
            raise ValueError(
                f"RandomCrop: required crop size {(h, w)} is larger than the "
                f"(padded) input image size {(ph, pw)}"
            )
        top = int(rng.integers(0, ph - h + 1)) - t
        left = int(rng.integers(0, pw - w + 1)) - l
        F.crop(s, top, left, h, w, self.fill, self.padding_mode, self.mask_fill, "RandomCrop")


class RandomResizedCrop(Transform):
    """Crop a random area and aspect ratio, then resize it to ``size`` (Inception style).

    Args:
        size: output (h, w) or an int for a square.
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the crop's aspect ratio (width / height).
        interpolation: as :class:`Resize`'s.
        antialias: as :class:`Resize`'s.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: str = "bilinear",
        antialias: bool = True,
    ):
        self.size = _pair(size, "RandomResizedCrop")
        scale = min_max(scale, "RandomResizedCrop", "scale", -float("inf"), float("inf"))
        ratio = min_max(ratio, "RandomResizedCrop", "ratio", -float("inf"), float("inf"))
        if scale[0] < 0 or ratio[0] <= 0:
            raise ValueError(
                f"RandomResizedCrop: scale must be >= 0 and ratio > 0 (an area fraction and a "
                f"width / height), got scale={scale}, ratio={ratio}"
            )
        F.resize_mode(interpolation, "RandomResizedCrop")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.interpolation, self.antialias = interpolation, antialias

    def get_params(self, H: int, W: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        area = H * W
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= W and 0 < h <= H:
                return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w
        in_ratio = W / H
        if in_ratio < self.ratio[0]:
            w, h = W, round(W / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = H, round(H * self.ratio[1])
        else:
            w, h = W, H
        return (H - h) // 2, (W - w) // 2, h, w

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        H, W = F.image_size(s, "RandomResizedCrop")
        top, left, h, w = self.get_params(H, W, rng)
        F.crop(s, top, left, h, w, where="RandomResizedCrop")
        F.resize(s, *self.size, self.interpolation, self.antialias, "RandomResizedCrop")


def _swap_pairs(kp: np.ndarray, pairs: Sequence[Sequence[int]] | None) -> np.ndarray:
    if not pairs:
        return kp
    order = np.arange(kp.shape[-2])
    for a, b in pairs:
        order[a], order[b] = b, a
    return kp[..., order, :]


def _check_pairs(pairs: Any, where: str) -> list[tuple[int, int]] | None:
    if pairs is None:
        return None
    out = []
    for p in pairs:
        if len(p) != 2:
            raise ValueError(f"{where}: flip_pairs must be pairs of keypoint indices, got {p!r}")
        out.append((int(p[0]), int(p[1])))
    return out


class _Flip(Transform):
    axis = 1

    def __init__(self, p: float = 0.5, flip_pairs: Sequence[Sequence[int]] | None = None):
        self.p = probability(p, type(self).__name__)
        self.flip_pairs = _check_pairs(flip_pairs, type(self).__name__)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        if rng.random() < self.p:
            flip(s, self.axis, self.flip_pairs, type(self).__name__)


def flip(s: dict, axis: int, flip_pairs: Any, where: str) -> None:
    """Mirror the sample along ``axis`` (1: left-right, 0: up-down)."""
    img, back = F.image_np(s["image"], where)
    H, W = img.shape[:2]
    s["image"] = back(img[:, ::-1] if axis == 1 else img[::-1])
    if s.get("mask") is not None:
        m = F.as_np(s["mask"])
        F._check_mask(m, H, W, where)
        s["mask"] = m[:, ::-1] if axis == 1 else m[::-1]
    size = W if axis == 1 else H
    c = 0 if axis == 1 else 1
    kp = F.points(s, "keypoints", 2, where)
    if kp is not None:
        kp[..., c] = size - kp[..., c]
        if flip_pairs and kp.ndim >= 2:
            n = kp.shape[-2]
            bad = [p for p in flip_pairs if max(p) >= n or min(p) < -n]
            if bad:
                raise IndexError(f"{where}: flip_pairs {bad} out of range for {n} keypoints")
            kp = _swap_pairs(kp, flip_pairs)
        s["keypoints"] = kp
    bx = F.points(s, "boxes", 4, where)
    if bx is not None:
        lo, hi = size - bx[..., c + 2], size - bx[..., c]
        bx[..., c], bx[..., c + 2] = lo, hi
        s["boxes"] = bx


class RandomHorizontalFlip(_Flip):
    """Mirror left-right with probability ``p``.

    Args:
        p: probability of flipping.
        flip_pairs: keypoint index pairs that swap names when mirrored (e.g. left and right
            eye: ``[(0, 1), (3, 4)]`` for the 5 MTFL landmarks).
    """

    axis = 1

    def __init__(self, p: float = 0.5, flip_pairs: Sequence[Sequence[int]] | None = None):
        super().__init__(p, flip_pairs)


class RandomVerticalFlip(_Flip):
    """Mirror up-down with probability ``p`` (``flip_pairs`` as in RandomHorizontalFlip)."""

    axis = 0

    def __init__(self, p: float = 0.5, flip_pairs: Sequence[Sequence[int]] | None = None):
        super().__init__(p, flip_pairs)


def _rotate_scale_shear(angle: float, shear: Sequence[float]) -> tuple[float, ...]:
    """(a, b, c, d): torchvision's rotation-shear matrix ``R(angle) @ SHy @ SHx`` (before
    the scale), as ``_get_inverse_affine_matrix`` computes it, in double precision."""
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    return a, b, c, d


def affine_matrix(
    angle: float, translate: Sequence[float], scale: float, shear: Sequence[float]
) -> np.ndarray:
    """The 2x2 linear part of torchvision's affine map (x right, y down): rotation by
    ``angle`` degrees clockwise as displayed, then scale, with shear angles (degrees) along x
    and y: ``scale * R(angle) @ SHy(shear[1]) @ SHx(shear[0])`` as ``torchvision.transforms.
    functional.affine`` builds it (``rotate`` passes ``-angle``: counter-clockwise)."""
    a, b, c, d = _rotate_scale_shear(angle, shear)
    return scale * np.array([[a, b], [c, d]])


def _expanded_size(
    angle: float,
    translate: Sequence[float],
    scale: float,
    shear: Sequence[float],
    center: Sequence[float],
    H: int,
    W: int,
) -> tuple[int, int]:
    """(height, width) of the canvas for ``expand=True``, as torchvision's
    ``_compute_affine_output_size``: the inverse affine matrix about the centre (offset
    from the image's middle) built in double precision, then everything in float32: the
    corners mapped, shifted by half the size, truncated to 1e-4 and rounded outwards. (In
    float64 the noise of a 90-degree turn, ``cos(pi / 2) = 6e-17``, survived the
    truncation and added a row or a column.)"""
    a, b, c, d = _rotate_scale_shear(angle, shear)
    cx, cy = center[0] - W * 0.5, center[1] - H * 0.5
    tx, ty = translate
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty)
    m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty)
    theta = np.array(m, np.float32).reshape(2, 3)
    hw, hh = np.float32(0.5 * W), np.float32(0.5 * H)
    xs = np.array([-hw, -hw, hw, hw], np.float32)
    ys = np.array([-hh, hh, hh, -hh], np.float32)
    px = theta[0, 0] * xs + theta[0, 1] * ys + theta[0, 2]
    py = theta[1, 0] * xs + theta[1, 1] * ys + theta[1, 2]
    lo = np.array([px.min(), py.min()], np.float32) + np.array([hw, hh], np.float32)
    hi = np.array([px.max(), py.max()], np.float32) + np.array([hw, hh], np.float32)
    tol, inv_tol = np.float32(1e-4), np.float32(1e4)
    cmax = np.ceil(np.trunc(hi * inv_tol) * tol)
    cmin = np.floor(np.trunc(lo * inv_tol) * tol)
    w, h = (int(v) for v in cmax - cmin)
    return h, w


class RandomAffine(Transform):
    """Random rotation, translation, scale and shear about the image centre.

    Angles follow ``torchvision.transforms.RandomAffine``: a positive rotation turns the
    image clockwise as displayed, and a positive x-shear moves the rows below the centre to
    the left (unlike :class:`RandomRotation`, which is counter-clockwise, as torchvision's).

    Args:
        degrees: rotation range (d: (-d, d)), clockwise as displayed.
        translate: (a, b): horizontal shift up to ``a * width``, vertical up to ``b * height``.
        scale: (lo, hi) scale range.
        shear: x-shear range (d or (lo, hi)) or (xlo, xhi, ylo, yhi), in degrees.
        interpolation: ``"nearest"`` (default, as torchvision) or ``"bilinear"``...
        fill: value outside the image (number or one per channel).
        center: (x, y) centre of rotation (default: the image centre).
        mask_fill: mask value outside the image.
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        translate: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        shear: Any = None,
        interpolation: str = "nearest",
        fill: Any = 0,
        center: Sequence[float] | None = None,
        mask_fill: int = 0,
    ):
        where = type(self).__name__
        self.degrees = _range(degrees, where, "degrees")
        if translate is not None and (
            len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate)
        ):
            raise ValueError(
                f"{where}: translate should be two fractions in [0, 1], got {translate!r}"
            )
        if scale is not None and (
            len(scale) != 2 or not all(math.isfinite(v) and v > 0 for v in scale)
        ):
            raise ValueError(f"{where}: scale should be two positive numbers, got {scale!r}")
        self.translate, self.scale_range = translate, scale
        self.shear: tuple[float, ...] | None
        if shear is None:
            self.shear = None
        elif isinstance(shear, int | float):
            self.shear = (*_range(shear, where, "shear"), 0.0, 0.0)
        elif len(shear) == 2:
            self.shear = (*_range(shear, where, "shear"), 0.0, 0.0)
        elif len(shear) == 4:
            self.shear = (*_range(shear[:2], where, "shear"), *_range(shear[2:], where, "shear"))
        else:
            raise ValueError(f"{where}: shear should be a number or 2 or 4 numbers, got {shear!r}")
        F.interp_flag(interpolation, where)
        self.interpolation, self.fill, self.center = interpolation, fill, center
        self.mask_fill = mask_fill

    def get_params(self, H: int, W: int, rng: np.random.Generator) -> tuple:
        angle = float(rng.uniform(*self.degrees))
        if self.translate is not None:
            tx = float(round(rng.uniform(-1, 1) * self.translate[0] * W))
            ty = float(round(rng.uniform(-1, 1) * self.translate[1] * H))
        else:
            tx = ty = 0.0
        scale = 1.0 if self.scale_range is None else float(rng.uniform(*self.scale_range))
        if self.shear is None:
            shear = (0.0, 0.0)
        else:
            shear = (
                float(rng.uniform(self.shear[0], self.shear[1])),
                float(rng.uniform(self.shear[2], self.shear[3])),
            )
        return angle, (tx, ty), scale, shear

    def _warp(
        self,
        s: dict,
        angle: float,
        translate: tuple,
        scale: float,
        shear: tuple,
        expand: bool = False,
    ) -> None:
        where = type(self).__name__
        H, W = F.image_size(s, where)
        A = affine_matrix(angle, translate, scale, shear)
        c = np.array([W / 2.0, H / 2.0] if self.center is None else self.center, np.float64)
        b = c + np.asarray(translate, np.float64) - A @ c
        out_h, out_w = H, W
        if expand:  # as torchvision: the image centre goes to the centre of the larger canvas
            out_h, out_w = _expanded_size(angle, translate, scale, shear, c, H, W)
            b = b + np.array([(out_w - W) / 2.0, (out_h - H) / 2.0])
        F.warp_affine(s, A, b, out_h, out_w, self.interpolation, self.fill, self.mask_fill, where)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        H, W = F.image_size(s, type(self).__name__)
        self._warp(s, *self.get_params(H, W, rng))


class RandomRotation(RandomAffine):
    """Rotate by a random angle in ``degrees`` (d: (-d, d)), counter-clockwise as displayed.

    Args:
        degrees: rotation range.
        interpolation: ``"nearest"`` (default, as torchvision) or ``"bilinear"``...
        expand: grow the output to hold the whole rotated image.
        center: (x, y) centre of rotation (default: the image centre).
        fill: value outside the image.
        mask_fill: mask value outside the image.
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        interpolation: str = "nearest",
        expand: bool = False,
        center: Sequence[float] | None = None,
        fill: Any = 0,
        mask_fill: int = 0,
    ):
        super().__init__(
            degrees, interpolation=interpolation, fill=fill, center=center, mask_fill=mask_fill
        )
        self.expand = expand

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        angle = float(rng.uniform(*self.degrees))
        # torchvision's rotate is counter-clockwise: its affine with the angle negated
        self._warp(s, -angle, (0.0, 0.0), 1.0, (0.0, 0.0), expand=self.expand)
