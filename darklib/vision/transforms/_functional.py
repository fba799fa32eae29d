"""Array helpers shared by the transforms: conversions, padding, cropping, warping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from darklib.backend import to_numpy
from darklib.tensor import Tensor


class InterpolationMode:
    """Interpolation names (torchvision's enum spelled as strings)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    AREA = "area"
    LANCZOS = "lanczos"


_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
_BORDER = {
    "constant": cv2.BORDER_CONSTANT,
    "edge": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
}
_CV_MASK_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)


def interp_flag(name: str, where: str) -> int:
    flag = _INTERP.get(str(name).lower())
    if flag is None:
        raise ValueError(f"{where}: unknown interpolation {name!r}; use one of {sorted(_INTERP)}")
    return flag


def border_flag(mode: str, where: str) -> int:
    flag = _BORDER.get(mode)
    if flag is None:
        raise ValueError(f"{where}: unknown padding_mode {mode!r}; use one of {sorted(_BORDER)}")
    return flag


def image_np(img: Any, where: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """The image as numpy HWC (or HW), and a function giving back the caller's type."""
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"{where}: expected an HWC or HW image, got shape {img.shape}")
        return img, _same
    if isinstance(img, Tensor):
        arr = to_numpy(img.array)
        if arr.ndim == 3:
            return arr.transpose(1, 2, 0), _to_chw_tensor
        if arr.ndim == 2:
            return arr, lambda a: Tensor._wrap(np.ascontiguousarray(a))
        raise ValueError(f"{where}: expected a CHW or HW tensor image, got shape {arr.shape}")
    raise TypeError(
        f"{where}: expected the image as a numpy array or a Tensor, got {type(img).__name__}"
    )


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _to_chw_tensor(a: np.ndarray) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(a.transpose(2, 0, 1)))


def image_size(s: dict, where: str) -> tuple[int, int]:
    """(height, width) of the sample's image."""
    img = s.get("image")
    if isinstance(img, np.ndarray):
        return img.shape[0], img.shape[1]
    if isinstance(img, Tensor):
        return img.shape[-2], img.shape[-1]
    if img is None:
        raise KeyError(f"{where}: the sample has no 'image'")
    raise TypeError(
        f"{where}: expected the image as a numpy array or a Tensor, got {type(img).__name__}"
    )


def as_np(x: Any) -> np.ndarray:
    return to_numpy(x.array) if isinstance(x, Tensor) else np.asarray(x)


def points(s: dict, key: str, width: int, where: str) -> np.ndarray | None:
    """The sample's keypoints (``width`` 2) or boxes (4) as float32, or None."""
    v = s.get(key)
    if v is None:
        return None
    a = as_np(v).astype(np.float32, copy=True)
    if a.size == 0:
        return (
            a.reshape(*a.shape[:-1], width)
            if a.ndim >= 1 and a.shape[-1] == width
            else a.reshape(0, width)
        )
    if a.shape[-1] != width:
        raise ValueError(f"{where}: expected {key} of shape (N, {width}), got {a.shape}")
    return a


def cv_fill(fill: Any, channels: int) -> tuple:
    if isinstance(fill, Sequence) and not isinstance(fill, str):
        vals = [float(v) for v in fill]
        if len(vals) not in (1, channels):
            raise ValueError(f"fill has {len(vals)} values for an image of {channels} channels")
        if len(vals) == 1:
            vals = vals * channels
    else:
        vals = [float(fill)] * channels
    return tuple((vals + [0.0] * 4)[:4]) if channels <= 4 else tuple(vals)


def keep_channels(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing channel axis of size 1: put it back."""
    if ref.ndim == 3 and out.ndim == 2:
        return out[..., None]
    return out


def cv_mask(fn: Callable[[np.ndarray], np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Run an OpenCV function on an integer mask of any dtype."""
    dt = mask.dtype
    if dt == np.bool_:
        work = mask.view(np.uint8)
    elif dt in _CV_MASK_DTYPES:
        work = mask
    else:
        if mask.size and (mask.max() > np.iinfo(np.int32).max or mask.min() < -(2**31)):
            raise ValueError(f"mask values do not fit in int32 (dtype {dt})")
        work = mask.astype(np.int32)
    out = fn(np.ascontiguousarray(work))
    out = keep_channels(out, mask)
    return out.astype(dt, copy=False) if out.dtype != dt else out


def pad_array(
    a: np.ndarray, top: int, bottom: int, left: int, right: int, fill: Any, mode: str, where: str
) -> np.ndarray:
    if not (top or bottom or left or right):
        return a
    border = border_flag(mode, where)
    channels = 1 if a.ndim == 2 else a.shape[2]
    if channels > 4 or a.dtype not in _CV_MASK_DTYPES:
        np_mode = {
            "constant": "constant",
            "edge": "edge",
            "reflect": "reflect",
            "symmetric": "symmetric",
        }[mode]
        widths = ((top, bottom), (left, right)) + (((0, 0),) if a.ndim == 3 else ())
        if np_mode == "constant":
            return np.pad(a, widths, mode="constant", constant_values=np.asarray(fill).flat[0])
        return np.pad(a, widths, mode=np_mode)
    out = cv2.copyMakeBorder(
        np.ascontiguousarray(a), top, bottom, left, right, border, value=cv_fill(fill, channels)
    )
    return keep_channels(out, a)


def crop(
    s: dict,
    top: int,
    left: int,
    height: int,
    width: int,
    fill: Any = 0,
    padding_mode: str = "constant",
    mask_fill: int = 0,
    where: str = "crop",
) -> None:
    """Crop box (top, left, height, width) of the sample; parts outside the image are padded."""
    img, back = image_np(s["image"], where)
    H, W = img.shape[:2]
    pt, pl = max(0, -top), max(0, -left)
    pb, pr = max(0, top + height - H), max(0, left + width - W)
    t0, l0 = top + pt, left + pl
    img = pad_array(img, pt, pb, pl, pr, fill, padding_mode, where)
    s["image"] = back(img[t0 : t0 + height, l0 : l0 + width])
    if s.get("mask") is not None:
        m = as_np(s["mask"])
        _check_mask(m, H, W, where)
        m = pad_array(m, pt, pb, pl, pr, mask_fill, "constant", where)
        s["mask"] = m[t0 : t0 + height, l0 : l0 + width]
    kp = points(s, "keypoints", 2, where)
    if kp is not None:
        kp[..., 0] -= left
        kp[..., 1] -= top
        s["keypoints"] = kp
    bx = points(s, "boxes", 4, where)
    if bx is not None:
        bx[..., 0::2] -= left
        bx[..., 1::2] -= top
        s["boxes"] = clip_boxes(bx, height, width)


def clip_boxes(bx: np.ndarray, height: int, width: int) -> np.ndarray:
    np.clip(bx[..., 0::2], 0, width, out=bx[..., 0::2])
    np.clip(bx[..., 1::2], 0, height, out=bx[..., 1::2])
    return bx


def _check_mask(m: np.ndarray, H: int, W: int, where: str) -> None:
    if m.shape[:2] != (H, W):
        raise ValueError(f"{where}: mask shape {m.shape} does not match the image size {(H, W)}")


def resize(
    s: dict, out_h: int, out_w: int, interpolation: str, antialias: bool, where: str
) -> None:
    img, back = image_np(s["image"], where)
    H, W = img.shape[:2]
    if (out_h, out_w) != (H, W):
        flag = interp_flag(interpolation, where)
        if antialias and flag == cv2.INTER_LINEAR and out_h <= H and out_w <= W:
            flag = cv2.INTER_AREA
        elif flag == cv2.INTER_NEAREST:  # pixel-centre aligned, like the labels' scaling
            flag = cv2.INTER_NEAREST_EXACT
        out = cv2.resize(np.ascontiguousarray(img), (out_w, out_h), interpolation=flag)
        s["image"] = back(keep_channels(out, img))
    if s.get("mask") is not None:
        m = as_np(s["mask"])
        _check_mask(m, H, W, where)
        if (out_h, out_w) != (H, W):
            s["mask"] = cv_mask(
                lambda a: cv2.resize(a, (out_w, out_h), interpolation=cv2.INTER_NEAREST_EXACT), m
            )
    sx, sy = out_w / W, out_h / H
    kp = points(s, "keypoints", 2, where)
    if kp is not None:
        kp[..., 0] *= sx
        kp[..., 1] *= sy
        s["keypoints"] = kp
    bx = points(s, "boxes", 4, where)
    if bx is not None:
        bx[..., 0::2] *= sx
        bx[..., 1::2] *= sy
        s["boxes"] = bx


def warp_affine(
    s: dict,
    A: np.ndarray,
    b: np.ndarray,
    out_h: int,
    out_w: int,
    interpolation: str,
    fill: Any,
    mask_fill: int,
    where: str,
) -> None:
    """Apply ``p' = A p + b`` (continuous coordinates) to every field of the sample."""
    img, back = image_np(s["image"], where)
    H, W = img.shape[:2]
    # OpenCV puts pixel centres at integer coordinates: p_cv = p - 0.5
    b_cv = A @ np.array([0.5, 0.5]) + b - 0.5
    M = np.hstack([A, b_cv[:, None]]).astype(np.float64)
    flag = interp_flag(interpolation, where)
    channels = 1 if img.ndim == 2 else img.shape[2]
    out = cv2.warpAffine(
        np.ascontiguousarray(img),
        M,
        (out_w, out_h),
        flags=flag,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=cv_fill(fill, channels),
    )
    s["image"] = back(keep_channels(out, img))
    if s.get("mask") is not None:
        m = as_np(s["mask"])
        _check_mask(m, H, W, where)
        s["mask"] = cv_mask(
            lambda a: cv2.warpAffine(
                a,
                M,
                (out_w, out_h),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(mask_fill,) * 4,
            ),
            m,
        )
    kp = points(s, "keypoints", 2, where)
    if kp is not None:
        flat = kp.reshape(-1, 2)
        s["keypoints"] = (flat @ A.T.astype(np.float32) + b.astype(np.float32)).reshape(kp.shape)
    bx = points(s, "boxes", 4, where)
    if bx is not None and bx.size:
        flat = bx.reshape(-1, 4)
        corners = flat[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)
        moved = corners @ A.T.astype(np.float32) + b.astype(np.float32)
        lo, hi = moved.min(axis=1), moved.max(axis=1)
        out_b = np.concatenate([lo, hi], axis=1).reshape(bx.shape)
        s["boxes"] = clip_boxes(out_b, out_h, out_w)
    elif bx is not None:
        s["boxes"] = bx
