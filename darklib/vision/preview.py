"""Previews: a batch drawn as one uint8 image grid, with masks, keypoints, boxes and labels.

Used by the studio's dataset and output panels and for README screenshots; plain numpy
out, so the CLI and tests can use it without Qt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from darklib.backend import to_numpy
from darklib.tensor import Tensor

#: Okabe-Ito colours (colour-blind safe), RGB; class/keypoint i uses PALETTE[i % 8]
PALETTE = np.array(
    [
        [230, 159, 0],
        [86, 180, 233],
        [0, 158, 115],
        [240, 228, 66],
        [0, 114, 178],
        [213, 94, 0],
        [204, 121, 167],
        [255, 255, 255],
    ],
    np.uint8,
)
_OK, _BAD = (0, 200, 90), (235, 60, 60)


def _np(x: Any) -> Any:
    if isinstance(x, Tensor):
        return to_numpy(x.array)
    if isinstance(x, list | tuple) and x and isinstance(x[0], Tensor):
        return [to_numpy(t.array) for t in x]
    return x


def _is_chw(shape: tuple, prefer_chw: bool) -> bool:
    """Channel-first or channel-last? (collated uint8 images without ToTensor are HWC)."""
    first, last = shape[0] in (1, 3, 4), shape[-1] in (1, 3, 4)
    if first != last:
        return first
    return prefer_chw


def _images_hwc(images: Any, mean: Any, std: Any) -> list[np.ndarray]:
    """Images as a list of uint8 HxWx3 arrays; Tensors are NCHW, numpy arrays NHWC."""
    chw = isinstance(images, Tensor) or (
        isinstance(images, list) and images and isinstance(images[0], Tensor)
    )
    arr = _np(images)
    items = list(arr) if isinstance(arr, list) else [a for a in np.asarray(arr)]
    out = []
    for a in items:
        a = np.asarray(a)
        if a.ndim == 2:
            a = a[:, :, None]
        elif _is_chw(a.shape, bool(chw)):
            a = a.transpose(1, 2, 0)
        a = a.astype(np.float32) if a.dtype != np.uint8 else a
        if a.dtype != np.uint8:
            if mean is not None and std is not None:
                a = a * np.asarray(std, np.float32).reshape(-1) + np.asarray(
                    mean, np.float32
                ).reshape(-1)
            lo, hi = float(a.min()), float(a.max())
            if lo < -1e-3 or hi > 1 + 1e-3:  # not in [0, 1]: stretch for display
                a = (a - lo) / max(hi - lo, 1e-12)
            a = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        elif a.shape[2] > 3:
            a = a[:, :, :3]
        out.append(np.ascontiguousarray(a))
    return out


def make_grid(
    images: Any,
    nrow: int = 8,
    padding: int = 2,
    pad_value: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """Tile images into one uint8 HxWx3 grid with ``nrow`` images per row.

    Args:
        images: a Tensor (N, C, H, W), a numpy array (N, H, W, C) or (N, H, W), or a list.
        nrow: images per row.
        padding: pixels between cells.
        pad_value: grey level of the padding.
        mean, std: undo a Normalize before display.
    """
    imgs = _images_hwc(images, mean, std)
    return _tile(imgs, nrow, padding, pad_value)


def _tile(imgs: list[np.ndarray], nrow: int, padding: int, pad_value: int) -> np.ndarray:
    if not imgs:
        raise ValueError("make_grid: no images to draw")
    h = max(i.shape[0] for i in imgs)
    w = max(i.shape[1] for i in imgs)
    cols = min(nrow, len(imgs))
    rows = math.ceil(len(imgs) / cols)
    grid = np.full(
        (rows * (h + padding) + padding, cols * (w + padding) + padding, 3), pad_value, np.uint8
    )
    for k, im in enumerate(imgs):
        r, c = divmod(k, cols)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        grid[y : y + im.shape[0], x : x + im.shape[1]] = im
    return grid


def _field(batch: Any, *names: str) -> Any:
    for n in names:
        if n in batch:
            return batch[n]
    return None


def _split_batch(batch: Any) -> dict:
    """Normalise the accepted batch forms to a dict of fields."""
    if isinstance(batch, dict):
        return {
            "image": _field(batch, "image", "images"),
            "mask": _field(batch, "mask", "masks"),
            "keypoints": batch.get("keypoints"),
            "boxes": batch.get("boxes"),
            "label": _field(batch, "label", "labels"),
        }
    if isinstance(batch, tuple | list) and batch and isinstance(batch[0], dict):
        keys = batch[0].keys()
        return _split_batch({k: [b[k] for b in batch] for k in keys})
    if (
        isinstance(batch, tuple | list)
        and len(batch) == 2
        and not (
            isinstance(batch[0], np.ndarray)
            and np.asarray(batch[0]).ndim == 3
            and isinstance(batch[1], np.ndarray)
            and batch[1].ndim == 3
        )
    ):
        return {"image": batch[0], "label": batch[1]}
    return {"image": batch}


def _names(v: Any, class_names: Sequence[str] | None) -> str:
    i = int(v)
    return class_names[i] if class_names is not None and 0 <= i < len(class_names) else str(i)


def _text(img: np.ndarray, text: str, org: tuple[int, int], color: tuple, scale: float) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def render_batch(
    batch: Any,
    *,
    preds: Any = None,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    nrow: int = 8,
    scale: int | None = None,
    max_images: int = 64,
    mask_alpha: float = 0.45,
    padding: int = 2,
) -> np.ndarray:
    """Draw a batch as a uint8 HxWx3 grid: masks blended in colour, keypoints as numbered
    dots, boxes as rectangles with their class, and class labels as captions.

    Args:
        batch: a collated dict (``image``, optional ``mask``, ``keypoints``, ``boxes``,
            ``label``), a tuple ``(images, labels)``, a list of sample dicts, or images
            alone. Tensors are NCHW, numpy images NHWC.
        preds: predicted classes (captions turn green with "+" when right, red with "x"
            when wrong), or predicted masks/keypoints/boxes given as a dict like ``batch``.
        class_names: names for class indices.
        mean, std: undo a Normalize before display.
        nrow: images per row.
        scale: integer upscaling (default: enough to make cells about 96 pixels).
        max_images: draw at most this many.
        mask_alpha: opacity of the mask colours.
        padding: pixels between cells.
    """
    f = {"image": None, "mask": None, "keypoints": None, "boxes": None, "label": None}
    f.update(_split_batch(batch))
    if f["image"] is None:
        raise ValueError("render_batch: the batch has no images")
    imgs = _images_hwc(f["image"], mean, std)[:max_images]
    n = len(imgs)
    if isinstance(preds, dict):
        p = _split_batch(preds)
        for k in ("mask", "keypoints", "boxes"):
            if p.get(k) is not None:
                f[k] = p[k]
        preds = None
    masks = _np(f["mask"])
    kps = _np(f["keypoints"])
    boxes = _np(f["boxes"])
    labels = _np(f["label"])
    preds = _np(preds)
    side = max(max(i.shape[0], i.shape[1]) for i in imgs)
    k = scale if scale is not None else max(1, math.ceil(96 / side))
    font = 0.3 + 0.1 * min(k, 4) if side * k < 160 else 0.5
    cells = []
    for i in range(n):
        im = imgs[i]
        H, W = im.shape[:2]
        if masks is not None:
            m = np.asarray(masks[i]).reshape(H, W).astype(np.int64)
            color = PALETTE[(m - 1) % len(PALETTE)]
            on = (m > 0)[..., None]
            blend = (im * (1 - mask_alpha) + color * mask_alpha).astype(np.uint8)
            im = np.where(on, blend, im)
        if k > 1:
            im = cv2.resize(im, (W * k, H * k), interpolation=cv2.INTER_NEAREST)
        im = np.ascontiguousarray(im)
        box_labels = None
        if boxes is not None:
            b = np.asarray(boxes[i], np.float32).reshape(-1, 4) * k
            if labels is not None and np.asarray(labels[i]).size == len(b) and len(b):
                box_labels = np.asarray(labels[i]).reshape(-1)
            for j, bb in enumerate(b):
                cls = int(box_labels[j]) if box_labels is not None else 0
                c = tuple(int(v) for v in PALETTE[cls % len(PALETTE)])
                p1 = (round(bb[0]), round(bb[1]))
                p2 = (round(bb[2]) - 1, round(bb[3]) - 1)
                cv2.rectangle(im, p1, p2, c, 1 if k < 3 else 2, cv2.LINE_8)
                if box_labels is not None and class_names is not None:
                    _text(im, _names(cls, class_names), (p1[0] + 2, max(p1[1] - 3, 9)), c, font)
        if kps is not None:
            pts = np.asarray(kps[i], np.float32).reshape(-1, 2) * k
            r = max(1, min(k, 3))
            for j, (x, y) in enumerate(pts):
                if not (np.isfinite(x) and np.isfinite(y)):
                    continue
                c = tuple(int(v) for v in PALETTE[j % len(PALETTE)])
                cv2.circle(
                    im, (round(x * 4), round(y * 4)), (r + 1) * 4, (0, 0, 0), -1, cv2.LINE_AA, 2
                )
                cv2.circle(im, (round(x * 4), round(y * 4)), r * 4, c, -1, cv2.LINE_AA, 2)
        if labels is not None and box_labels is None:
            lab = np.asarray(labels[i]).reshape(-1)
            if lab.size == 1:
                text = _names(lab[0], class_names)
                color = (255, 255, 255)
                if preds is not None:
                    pr = int(np.asarray(preds[i]).reshape(-1)[0])
                    ok = pr == int(lab[0])
                    text = ("+ " if ok else "x ") + _names(pr, class_names)
                    color = _OK if ok else _BAD
                _text(im, text, (3, im.shape[0] - 4), color, font)
        cells.append(im)
    return _tile(cells, nrow, padding, 24)
