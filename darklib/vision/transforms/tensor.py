"""Conversion to tensors and the transforms that work on tensor images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.tensor import Tensor
from darklib.vision.transforms import _functional as F
from darklib.vision.transforms._core import Transform, _pil_to_numpy, min_max


def to_tensor(img: Any) -> Tensor:
    """An ``HWC`` (or ``HW``) image as a ``CHW`` Tensor, as torchvision's ``to_tensor``:
    uint8 becomes float32 divided by 255; every other dtype is kept, values unscaled (a PIL
    image's ``I`` int32, ``I;16`` uint16, ``F`` float32; a float64 array stays float64). A
    PIL image is read as stored (see the ``P``, ``1``... modes in :class:`Transform`); a
    Tensor is returned as it is. The result never shares memory with the input.
    """
    if isinstance(img, Tensor):
        return img
    img = _pil_to_numpy(img)
    if not isinstance(img, np.ndarray):
        raise TypeError(
            f"ToTensor: expected a numpy array or a PIL image, got {type(img).__name__}"
        )
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"ToTensor: expected an HWC or HW image, got shape {img.shape}")
    chw = img.transpose(2, 0, 1)
    if img.dtype == np.uint8:
        out = np.empty(chw.shape, np.float32)
        np.multiply(chw, np.float32(1.0 / 255.0), out=out)
    elif img.dtype.kind in "fiub":
        out = np.array(chw, dtype=img.dtype.newbyteorder("="), order="C")  # a copy
    else:
        raise TypeError(f"ToTensor: unsupported image dtype {img.dtype}")
    return Tensor._wrap(out)


class ToTensor(Transform):
    """Image to a ``CHW`` Tensor (see :func:`to_tensor`: uint8 becomes float32 in [0, 1],
    other dtypes are kept unscaled, as torchvision's); mask to an int64 Tensor. Keypoints and
    boxes stay float32 numpy arrays (the DataLoader's collation makes them Tensors)."""

    def __init__(self) -> None:
        pass

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        s["image"] = to_tensor(s["image"])
        if s.get("mask") is not None and not isinstance(s["mask"], Tensor):
            m = np.asarray(s["mask"])
            if m.ndim == 3 and m.shape[2] == 1:
                m = m[..., 0]
            s["mask"] = Tensor._wrap(np.ascontiguousarray(m, dtype=np.int64))
        for key, width in (("keypoints", 2), ("boxes", 4)):
            if s.get(key) is not None:
                s[key] = F.points(s, key, width, "ToTensor")


class Normalize(Transform):
    """``(image - mean) / std`` per channel, on a CHW Tensor (or an HWC numpy float image).

    Args:
        mean: one value per channel.
        std: one value per channel.
        inplace: write into the image's array.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean = np.asarray(mean, np.float32).reshape(-1)
        self.std = np.asarray(std, np.float32).reshape(-1)
        if (self.std == 0).any():
            raise ValueError(
                f"Normalize: std evaluated to zero after conversion to float32, "
                f"leading to division by zero (std={list(std)})"
            )
        self.inplace = inplace
        self._consts: dict = {}

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        img = s["image"]
        if isinstance(img, Tensor):
            arr, chw = img.array, True
        elif isinstance(img, np.ndarray):
            arr, chw = img, False
        else:
            raise TypeError(
                f"Normalize: expected a Tensor or numpy image, got {type(img).__name__}"
            )
        if arr.dtype.kind != "f":
            raise TypeError(
                f"Normalize: expected a float image (apply ToTensor first; it scales uint8 "
                f"images only and keeps other dtypes), got dtype {arr.dtype}"
            )
        c = (
            (arr.shape[-3] if arr.ndim >= 3 else 1)
            if chw
            else (arr.shape[-1] if arr.ndim == 3 else 1)
        )
        if len(self.mean) not in (1, c) or len(self.std) not in (1, c):
            raise ValueError(
                f"Normalize: mean/std have {len(self.mean)}/{len(self.std)} values "
                f"for an image with {c} channels (shape {tuple(arr.shape)})"
            )
        xp = get_xp(arr)
        ck = (xp.__name__, arr.dtype, chw and arr.ndim >= 3)
        consts = self._consts.get(ck)
        if consts is None:
            shape = (-1, 1, 1) if ck[2] else (-1,)
            consts = self._consts[ck] = (
                xp.asarray(self.mean, dtype=arr.dtype).reshape(shape),
                xp.asarray(1.0 / self.std, dtype=arr.dtype).reshape(shape),
            )
        mean, inv = consts
        out = arr if self.inplace else xp.empty_like(arr)
        xp.subtract(arr, mean, out=out)
        xp.multiply(out, inv, out=out)
        s["image"] = Tensor._wrap(out) if chw else out


class RandomErasing(Transform):
    """Erase a random rectangle with probability ``p`` (Zhong et al., 2017).

    Works on a CHW Tensor (after ToTensor) or an HWC numpy image. Labels are not changed.

    Args:
        p: probability of erasing.
        scale: range of the erased area as a fraction of the image's.
        ratio: range of the aspect ratio of the erased area.
        value: fill value: a number, one per channel, or ``"random"`` (normal noise).
        inplace: write into the image's array.
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: Any = 0,
        inplace: bool = False,
    ):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomErasing: p should be in [0, 1], got {p}")
        scale = min_max(scale, "RandomErasing", "scale", 0.0, 1.0)
        ratio = min_max(ratio, "RandomErasing", "ratio", 0.0, float("inf"))
        if isinstance(value, str) and value != "random":
            raise ValueError(
                f"RandomErasing: value should be a number, a sequence or 'random', got {value!r}"
            )
        self.p, self.scale, self.ratio = float(p), tuple(scale), tuple(ratio)
        self.value, self.inplace = value, inplace

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        if rng.random() >= self.p:
            return
        img = s["image"]
        chw = isinstance(img, Tensor)
        arr = img.array if chw else np.asarray(img)
        H, W = (arr.shape[-2], arr.shape[-1]) if chw else arr.shape[:2]
        C = (
            (arr.shape[0] if arr.ndim == 3 else 1)
            if chw
            else (arr.shape[2] if arr.ndim == 3 else 1)
        )
        area = H * W
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            ea = area * rng.uniform(*self.scale)
            ar = math.exp(rng.uniform(*log_r))
            h, w = round(math.sqrt(ea * ar)), round(math.sqrt(ea / ar))
            if h < H and w < W:
                break
        else:
            return
        i, j = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        out = arr if self.inplace else arr.copy()
        xp = get_xp(out)
        if isinstance(self.value, str):
            fill = rng.standard_normal((C, h, w) if chw else (h, w, C)).astype(out.dtype)
            fill = xp.asarray(fill)
        else:
            v = np.asarray(self.value, dtype=out.dtype).reshape(-1)
            if len(v) not in (1, C):
                raise ValueError(f"RandomErasing: value has {len(v)} entries for {C} channels")
            fill = xp.asarray(v).reshape((-1, 1, 1) if chw else (-1,))
        if chw:
            out[..., i : i + h, j : j + w] = (
                fill
                if out.ndim == 3
                else fill.reshape(h, w)
                if fill.size == h * w
                else fill.reshape(())
            )
        elif out.ndim == 3:
            out[i : i + h, j : j + w] = fill
        else:
            out[i : i + h, j : j + w] = fill.reshape(h, w) if fill.size == h * w else fill[0]
        s["image"] = Tensor._wrap(out) if chw else out


class SanitizeBoxes(Transform):
    """Drop boxes narrower or shorter than ``min_size`` pixels (e.g. after a crop), and the
    matching entries of ``labels_key`` (an array with one entry per box)."""

    def __init__(self, min_size: float = 1.0, labels_key: str = "label"):
        self.min_size = float(min_size)
        self.labels_key = labels_key

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        bx = F.points(s, "boxes", 4, "SanitizeBoxes")
        if bx is None:
            return
        bx = bx.reshape(-1, 4)
        keep = ((bx[:, 2] - bx[:, 0]) >= self.min_size) & ((bx[:, 3] - bx[:, 1]) >= self.min_size)
        s["boxes"] = bx[keep]
        lab = s.get(self.labels_key)
        if lab is not None:
            lab_np = F.as_np(lab)
            if lab_np.ndim >= 1 and lab_np.shape[0] == len(keep):
                s[self.labels_key] = lab_np[keep]
