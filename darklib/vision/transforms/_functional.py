"""Array helpers shared by the transforms: conversions, padding, cropping, warping."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from darklib.backend import to_device, to_numpy
from darklib.tensor import Tensor


class InterpolationMode:
    """Interpolation names (torchvision's enum spelled as strings)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    AREA = "area"
    LANCZOS = "lanczos"


# the warps (RandomAffine, RandomRotation) run on OpenCV
_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
# Resize: torch's interpolate modes (as torchvision resizes tensors), plus OpenCV's area
# averaging and Lanczos filter
_TORCH_RESIZE = ("nearest", "nearest-exact", "bilinear", "bicubic")
_CV_RESIZE = {"area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}
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


def resize_mode(name: str, where: str) -> str:
    """The resize interpolation ``name`` checked: one of torch's nearest, nearest-exact,
    bilinear, bicubic, or OpenCV's area and lanczos."""
    mode = str(name).lower()
    if mode not in _TORCH_RESIZE and mode not in _CV_RESIZE:
        known = sorted((*_TORCH_RESIZE, *_CV_RESIZE))
        raise ValueError(f"{where}: unknown interpolation {name!r}; use one of {known}")
    return mode


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
        dev = img.device  # (the result goes back there: a CUDA image stays on the GPU)
        if arr.ndim == 3:
            return arr.transpose(1, 2, 0), lambda a: _on(a.transpose(2, 0, 1), dev)
        if arr.ndim == 2:
            return arr, lambda a: _on(a, dev)
        raise ValueError(f"{where}: expected a CHW or HW tensor image, got shape {arr.shape}")
    raise TypeError(
        f"{where}: expected the image as a numpy array or a Tensor, got {type(img).__name__}"
    )


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _on(a: np.ndarray, dev: Any) -> Tensor:
    """A host array as a tensor on device ``dev``."""
    return Tensor._wrap(to_device(np.ascontiguousarray(a), dev))


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


def _fill_list(fill: Any, channels: int, where: str) -> list[float]:
    """``fill`` as one value or one per channel (checked against the image's channels)."""
    if isinstance(fill, Sequence) and not isinstance(fill, str):
        vals = [float(v) for v in fill]
        if len(vals) not in (1, channels):
            raise ValueError(
                f"{where}: fill has {len(vals)} values for an image of {channels} channels"
            )
        return vals
    return [float(fill)]


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


# ------------------------------------------------------------------ dtypes


def work_dtype(dtype: np.dtype) -> np.dtype:
    """The float dtype arithmetic on an image of ``dtype`` runs in: its own for float32
    and float64, float64 for integers wider than 16 bits (exact up to 2**53), else float32."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return dtype
    if dtype.kind in "iu" and dtype.itemsize > 2:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def from_float(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float results back to an image's ``dtype``: integers (and bools) rounded half to
    even and clipped to the dtype's range, floats cast."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    if dtype == np.bool_:
        return np.rint(x) != 0
    info = np.iinfo(dtype)
    hi = float(info.max)
    if int(hi) > info.max:  # (64-bit: the float nearest the maximum is above it)
        hi = float(np.nextafter(hi, 0))
    return np.clip(np.rint(x), info.min, hi).astype(dtype)


def check_numeric(img: np.ndarray, where: str) -> None:
    if img.dtype.kind not in "biuf":
        raise TypeError(
            f"{where}: images of dtype {img.dtype} are not supported (use an integer, bool or "
            f"float image)"
        )


_CV_IMAGE_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def cv_image(fn: Callable[[np.ndarray], np.ndarray], img: np.ndarray, where: str) -> np.ndarray:
    """Run an OpenCV image function (warp, blur, resize) on an image of any numeric dtype and
    channel count: the dtypes OpenCV takes go as they are, bools as uint8 0/1, others through
    :func:`work_dtype` (rounded back for integers); more than 4 channels go 4 at a time."""
    check_numeric(img, where)
    if img.ndim == 3 and img.shape[2] > 4:
        parts = [cv_image(fn, img[..., i : i + 4], where) for i in range(0, img.shape[2], 4)]
        return np.concatenate([keep_channels(p, img) for p in parts], axis=2)
    dt = img.dtype
    if dt in _CV_IMAGE_DTYPES:
        return keep_channels(fn(np.ascontiguousarray(img)), img)
    if dt == np.bool_:
        return keep_channels(fn(np.ascontiguousarray(img).view(np.uint8)), img) != 0
    out = fn(np.ascontiguousarray(img, dtype=work_dtype(dt)))
    return from_float(keep_channels(out, img), dt)


# ------------------------------------------------------------------ resize


def _band(pos: np.ndarray, w: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Taps given as source positions ``pos`` (n_out, T), clamped ones repeated, with their
    weights, as contiguous windows: (idx, w) of shape (n_out, K), repeats summed."""
    lo = pos.min(axis=1)
    k = int((pos.max(axis=1) - lo).max()) + 1
    band = np.zeros((len(lo), k), w.dtype)
    rows = np.repeat(np.arange(len(lo)), pos.shape[1])
    np.add.at(band, (rows, (pos - lo[:, None]).reshape(-1)), w.reshape(-1))
    return np.minimum(lo[:, None] + np.arange(k), n_in - 1), band


def _cubic(x: np.ndarray, a: Any) -> np.ndarray:
    """Keys' cubic convolution kernel at distances ``x`` >= 0 (parameter ``a``)."""
    one = x.dtype.type(1)
    near = ((a + 2 * one) * x - (a + 3 * one)) * x * x + one
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0 * one)).astype(x.dtype)


@functools.lru_cache(maxsize=1024)
def _axis_taps(
    n_in: int, n_out: int, mode: str, antialias: bool, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """torch's resampling of one axis from ``n_in`` to ``n_out`` samples as taps: output
    ``o`` is ``sum_k w[o, k] * input[idx[o, k]]`` (``idx``, ``w`` of shape (n_out, K)).

    The arithmetic is ``torch.nn.functional.interpolate``'s (``align_corners=False``), in
    its precision: ``dtype`` "<f4" computes as torch does for float32 (and uint8 nearest),
    "<f8" as for float64 and for its uint8 bilinear/bicubic kernels (double weights):

    * nearest: ``floor(o * scale)`` with a float32 scale ``in / out``, the product rounded to
      float32; nearest-exact: ``floor((o + 0.5) * scale)``;
    * bilinear, bicubic: source ``scale * (o + 0.5) - 0.5`` rounded once (torch's fused
      multiply-add), clamped at 0 for bilinear; 2 taps, or 4 with Keys' A = -0.75, the
      taps outside the image moved to its border;
    * antialias: a triangle (bilinear) or Keys' A = -0.5 (bicubic) filter stretched by the
      downscaling factor, cut at the border and normalised per output.

    The taps are a few per output, so applying them costs K multiply-adds per output (torch's
    own kernels work the same way). Unlike darklib.nn.functional.interpolate, whose weights
    are those of a float64 computation, the float32 weights here are torch's float32 ones:
    results within about 1e-6 of torch's.
    """
    ct = np.float32 if np.dtype(dtype) == np.float32 else np.float64
    f64 = np.float64
    o = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        scale = np.float32(n_in) / np.float32(n_out)
        start = o if mode == "nearest" else o + 0.5
        src = (start * f64(scale)).astype(np.float32)
        idx = np.minimum(np.floor(src).astype(np.int64), n_in - 1)[:, None]
        return _frozen(idx, np.ones((n_out, 1), ct))
    if n_out == n_in:  # torch copies an axis that keeps its size
        return _frozen(o[:, None], np.ones((n_out, 1), ct))
    scale = ct(n_in) / ct(n_out)
    cubic = mode == "bicubic"
    if antialias:
        support = ct(2.0 if cubic else 1.0) * (scale if scale >= 1 else ct(1))
        invscale = ct(1.0 / f64(scale)) if scale >= 1 else ct(1)
        center = (f64(scale) * (o + 0.5)).astype(ct)
        xmin = np.maximum((f64(1) * (center - support) + 0.5).astype(np.int64), 0)
        xmax = np.minimum((f64(1) * (center + support) + 0.5).astype(np.int64), n_in)
        j = xmin[:, None] + np.arange(int((xmax - xmin).max()))
        x = (((j.astype(ct) - center[:, None]).astype(f64) + 0.5) * f64(invscale)).astype(ct)
        x = np.abs(x)
        w = _cubic(x, ct(-0.5)) if cubic else np.maximum(ct(1) - x, ct(0))
        w = np.where(j < xmax[:, None], w, ct(0)).astype(ct)
        total = np.zeros(n_out, ct)
        for k in range(w.shape[1]):  # in order, as torch sums
            total += w[:, k]
        w = (w / np.where(total == 0, ct(1), total)[:, None]).astype(ct)
        return _frozen(np.minimum(j, n_in - 1), w)
    src = (f64(scale) * (o + 0.5) - 0.5).astype(ct)
    if not cubic:
        src = np.maximum(src, ct(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    t = np.clip(src - i0.astype(ct), 0, 1).astype(ct)
    if cubic:
        a, u = ct(-0.75), (ct(1) - t).astype(ct)
        w = np.stack([_cubic(t + ct(1), a), _cubic(t, a), _cubic(u, a), _cubic(u + ct(1), a)], 1)
        pos = np.clip(i0[:, None] + np.arange(-1, 3), 0, n_in - 1)
    else:
        w = np.stack([ct(1) - t, t], 1).astype(ct)
        pos = np.stack([i0, i0 + (i0 < n_in - 1)], 1)
    return _frozen(*_band(pos, w.astype(ct), n_in))


def _frozen(*arrays: np.ndarray) -> tuple:
    for a in arrays:
        a.flags.writeable = False
    return arrays


@functools.lru_cache(maxsize=1024)
def _byte_taps(n_in: int, n_out: int, mode: str, antialias: bool) -> tuple:
    """``(idx, w, precision)``: the taps of one axis as torch's uint8 kernels use them, the
    double-precision weights scaled by ``2**precision`` and rounded (half away from zero)
    to int16 values, ``precision`` the largest (up to 22) that keeps twice the largest
    weight below ``2**15``."""
    idx, w = _axis_taps(n_in, n_out, mode, antialias, "<f8")
    top = float(w.max())
    precision = 0
    while precision < 22 and int(0.5 + top * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    v = w * float(1 << precision)
    wi = np.where(v < 0, np.trunc(v - 0.5), np.trunc(v + 0.5)).astype(np.int32)
    wi.flags.writeable = False
    return idx, wi, precision


@functools.lru_cache(maxsize=1024)
def _taps(n_in: int, n_out: int, mode: str, antialias: bool, kind: str, fold: int) -> tuple:
    """``(idx, w, precision)`` of one axis (``kind``: "u8" for torch's byte arithmetic, else
    the float dtype), with ``fold`` interleaved channels folded into the axis: output
    ``o * fold + c`` reads inputs ``idx * fold + c``."""
    if kind == "u8":
        idx, w, precision = _byte_taps(n_in, n_out, mode, antialias)
    else:
        (idx, w), precision = _axis_taps(n_in, n_out, mode, antialias, kind), 0
    if fold > 1:
        idx = (idx[:, None, :] * fold + np.arange(fold)[None, :, None]).reshape(-1, idx.shape[1])
        w = np.repeat(w, fold, axis=0)
        idx.flags.writeable = w.flags.writeable = False
    return idx, w, precision


def _axis_view(x: np.ndarray, axis: int) -> tuple[np.ndarray, int, int, tuple]:
    """``x`` as a view whose gathers along ``axis`` copy long runs, or single elements of
    long rows: ``(view, gather axis, channels folded into the axis, weight shape)``."""
    shape = x.shape
    n = shape[axis]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    if inner == 1 or (outer > 1 and inner < 16):  # HWC's width: channels folded in
        return x.reshape(outer, n * inner), 1, inner, (1, -1)
    if outer == 1:  # the rows of an image
        return x.reshape(n, inner), 0, 1, (-1, 1)
    return x.reshape(outer, n, inner), 1, 1, (1, -1, 1)  # CHW's height


def _resample(x: np.ndarray, axis: int, n_out: int, mode: str, antialias: bool) -> np.ndarray:
    """``x`` (uint8, or float32/float64) resampled along ``axis``: a sum of a few gathered
    copies weighted per output. uint8 follows torch's byte kernels (int16 weights, a 32-bit
    sum rounded by a shift, clamped to a byte); floats keep their dtype. Nearest modes
    only gather, for any dtype."""
    out_shape = (*x.shape[:axis], n_out, *x.shape[axis + 1 :])
    v, gather, fold, wshape = _axis_view(x, axis)
    if mode in ("nearest", "nearest-exact"):
        idx, _w, _p = _taps(x.shape[axis], n_out, mode, False, "<f4", fold)
        return np.take(v, idx[:, 0], axis=gather).reshape(out_shape)
    byte = x.dtype == np.uint8
    kind = "u8" if byte else x.dtype.str
    idx, w, precision = _taps(x.shape[axis], n_out, mode, antialias, kind, fold)
    if byte:
        v = v.astype(np.int32)
    acc = np.take(v, idx[:, 0], axis=gather)
    acc *= w[:, 0].reshape(wshape)
    for k in range(1, idx.shape[1]):
        g = np.take(v, idx[:, k], axis=gather)
        g *= w[:, k].reshape(wshape)
        acc += g
    if byte:
        acc += (1 << precision) >> 1
        acc >>= precision
        acc = np.clip(acc, 0, 255, out=acc).astype(np.uint8)
    return acc.reshape(out_shape)


_CV_TRANSPOSE = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)


def _swap01(x: np.ndarray) -> np.ndarray:
    """``x`` with its first two axes swapped, as a contiguous copy (OpenCV's transpose where
    it can: several times faster than numpy's copy of an interleaved image)."""
    if x.dtype in _CV_TRANSPOSE and (x.ndim == 2 or (x.ndim == 3 and x.shape[2] <= 4)):
        out = cv2.transpose(np.ascontiguousarray(x))
        return out[..., None] if x.ndim == 3 and out.ndim == 2 else out
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def _resample_width(x: np.ndarray, axis: int, n_out: int, mode: str, antialias: bool):
    """:func:`_resample` along the width (the last axis of ``HW``/``CHW``, the middle one of
    ``HWC``), on a transposed copy whose columns are rows: gathering whole rows, and
    multiply-adding along them, costs half of gathering single elements."""
    if axis == 1 and x.ndim in (2, 3):  # HW, HWC
        return _swap01(_resample(_swap01(x), 0, n_out, mode, antialias))
    if axis == 2 and x.ndim == 3:  # CHW: plane by plane
        cols = np.stack([_swap01(p) for p in x])
        return np.stack([_swap01(p) for p in _resample(cols, 1, n_out, mode, antialias)])
    return _resample(x, axis, n_out, mode, antialias)


def resize_array(
    a: np.ndarray,
    out_h: int,
    out_w: int,
    mode: str,
    antialias: bool,
    where: str,
    axes: tuple[int, int] = (0, 1),
) -> np.ndarray:
    """An image resized as torchvision resizes a tensor image, with
    ``torch.nn.functional.interpolate``'s arithmetic; ``axes`` are its (height, width) axes:
    (0, 1) for ``HW``/``HWC``, (1, 2) for ``CHW``.

    Nearest modes pick pixels (any dtype, values kept exactly): ``"nearest"`` is torch's
    ``floor(o * in / out)``, ``"nearest-exact"`` its pixel-centre variant. Bilinear and
    bicubic (``antialias``: filters widened when shrinking, as torch's) run axis by axis,
    width first: uint8 in torch's fixed-point arithmetic (int16 weights, a byte image after
    each pass, as torch's byte kernels), float32 and float64 in their own precision, other
    dtypes through :func:`work_dtype` and back, rounded and clipped for integers.
    ``"area"`` and ``"lanczos"`` are OpenCV's.
    """
    ah, aw = axes
    H, W = a.shape[ah], a.shape[aw]
    if (out_h, out_w) == (H, W):
        return a
    check_numeric(a, where)
    if mode in _CV_RESIZE:
        flag = _CV_RESIZE[mode]
        hwc = np.moveaxis(a, (ah, aw), (0, 1))
        out = cv_image(lambda x: cv2.resize(x, (out_w, out_h), interpolation=flag), hwc, where)
        return np.ascontiguousarray(np.moveaxis(out, (0, 1), (ah, aw)))
    if mode in ("nearest", "nearest-exact"):  # rows first: the cheaper gathers
        out = a if out_h == H else _resample(a, ah, out_h, mode, False)
        return out if out_w == W else _resample_width(out, aw, out_w, mode, False)
    aa = bool(antialias)
    dt = a.dtype
    y = a if dt in (np.uint8, np.float32, np.float64) else a.astype(work_dtype(dt))
    if out_w != W:
        y = _resample_width(y, aw, out_w, mode, aa)
    if out_h != H:
        y = _resample(y, ah, out_h, mode, aa)
    return y if y.dtype == dt else from_float(y, dt)


def resize(
    s: dict, out_h: int, out_w: int, interpolation: str, antialias: bool, where: str
) -> None:
    """Resize the sample: the image with ``interpolation`` (see :func:`resize_array`), the
    mask with torch's nearest (as torchvision resizes masks), keypoints and boxes scaled."""
    mode = resize_mode(interpolation, where)
    img = s["image"]
    if isinstance(img, Tensor):  # CHW (or HW) as it is, without going through HWC
        arr = to_numpy(img.array)
        if arr.ndim not in (2, 3):
            raise ValueError(f"{where}: expected a CHW or HW tensor image, got shape {arr.shape}")
        axes = (arr.ndim - 2, arr.ndim - 1)
        H, W = arr.shape[axes[0]], arr.shape[axes[1]]
        if (out_h, out_w) != (H, W):
            out = resize_array(arr, out_h, out_w, mode, antialias, where, axes)
            s["image"] = _on(out, img.device)
    else:
        arr, back = image_np(img, where)
        H, W = arr.shape[:2]
        if (out_h, out_w) != (H, W):
            s["image"] = back(resize_array(arr, out_h, out_w, mode, antialias, where))
    if s.get("mask") is not None:
        m = as_np(s["mask"])
        _check_mask(m, H, W, where)
        if (out_h, out_w) != (H, W):
            s["mask"] = resize_array(m, out_h, out_w, "nearest", False, where)
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
    fills = _fill_list(fill, channels, where)

    def warp(part: np.ndarray, vals: list[float]) -> np.ndarray:
        c = 1 if part.ndim == 2 else part.shape[2]
        border = cv_fill(vals, c)
        return cv_image(
            lambda a: cv2.warpAffine(
                a, M, (out_w, out_h), flags=flag, borderMode=cv2.BORDER_CONSTANT, borderValue=border
            ),
            part,
            where,
        )

    if channels <= 4:
        out = warp(img, fills)
    else:  # OpenCV fills at most 4 channels: 4 at a time, each with its own fill values
        out = np.concatenate(
            [
                warp(img[..., i : i + 4], fills if len(fills) == 1 else fills[i : i + 4])
                for i in range(0, channels, 4)
            ],
            axis=2,
        )
    s["image"] = back(out)
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
