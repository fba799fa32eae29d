"""Detection labels in YOLO text files: one ``class cx cy w h`` line per box, normalised."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklib.tensor import Tensor
from darklib.utils.data import default_collate
from darklib.vision.datasets._common import (
    IMG_EXTENSIONS,
    DatasetFormatError,
    VisionDataset,
    check_dir,
    list_images,
    read_image,
)

_TOL = 1e-3  # coordinates a hair outside [0, 1] (rounding in exporters) are accepted


def read_yolo_labels(
    path: str | os.PathLike, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse one YOLO label file into classes (M,) int64 and boxes (M, 4) normalised
    (cx, cy, w, h) float32.

    Raises:
        DatasetFormatError: a malformed line (names the file and the line).
    """
    classes, boxes = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 5:
                raise DatasetFormatError(
                    f"expected 'class cx cy w h' (5 values), got {len(parts)}: {line.strip()!r}",
                    path,
                    lineno,
                )
            try:
                c = int(parts[0])
                vals = [float(v) for v in parts[1:]]
            except ValueError:
                raise DatasetFormatError(
                    f"expected an integer class and 4 numbers, got {line.strip()!r}", path, lineno
                ) from None
            if c < 0 or (num_classes is not None and c >= num_classes):
                limit = "" if num_classes is None else f" (num_classes={num_classes})"
                raise DatasetFormatError(f"class {c} out of range{limit}", path, lineno)
            _cx, _cy, w, h = vals
            if (
                not np.isfinite(vals).all()
                or w <= 0
                or h <= 0
                or not all(-_TOL <= v <= 1 + _TOL for v in vals)
            ):
                raise DatasetFormatError(
                    f"box values must be normalised to [0, 1] with w, h > 0, got {line.strip()!r}",
                    path,
                    lineno,
                )
            classes.append(c)
            boxes.append(vals)
    return (np.asarray(classes, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4))


class YOLODataset(VisionDataset):
    """Images with YOLO label files: ``images/<name>.jpg`` and ``labels/<name>.txt``.

    A sample is ``{"image": HWC uint8, "boxes": (M, 4) float32 pixel xyxy, "label": (M,)
    int64}`` passed through the joint ``transform``. An image without a label file has no
    boxes (a background image). Every label file is parsed here, so errors surface at once.
    Batch with :func:`detection_collate` (boxes differ in number per image).

    Args:
        images: the image folder.
        labels: the label folder (default: ``images`` with its last ``images`` component
            replaced by ``labels``, else ``images`` itself).
        transform: a joint transform on the sample dict.
        num_classes: reject class indices outside ``0..num_classes-1``.
        classes: class names (optional).
        on_error: ``"raise"`` (default) or ``"skip"``: images whose label file is malformed
            are left out and listed in ``skipped``.
    """

    def __init__(
        self,
        images: str | os.PathLike,
        labels: str | os.PathLike | None = None,
        transform: Callable | None = None,
        num_classes: int | None = None,
        classes: Sequence[str] | None = None,
        mode: str = "RGB",
        extensions: Sequence[str] = IMG_EXTENSIONS,
        on_error: str = "raise",
    ):
        super().__init__(transform, None, on_error)
        self.root = self.images_dir = check_dir(images, "image folder", "YOLODataset")
        if labels is None:
            parts = list(self.images_dir.parts)
            if "images" in parts:
                i = len(parts) - 1 - parts[::-1].index("images")
                parts[i] = "labels"
                labels = Path(*parts)
            else:
                labels = self.images_dir
        self.labels_dir = check_dir(labels, "label folder", "YOLODataset")
        if classes is not None and num_classes is None:
            num_classes = len(classes)
        self.num_classes, self.classes, self.mode = num_classes, classes, mode
        self.items: list[tuple[str, np.ndarray, np.ndarray]] = []
        for img in list_images(self.images_dir, extensions):
            lab = self.labels_dir / (img.stem + ".txt")
            if lab.is_file():
                try:
                    cls, bx = read_yolo_labels(lab, num_classes)
                except DatasetFormatError as e:
                    self._fail(e, os.fspath(lab))
                    continue
            else:
                cls, bx = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
            self.items.append((os.fspath(img), cls, bx))
        if not self.items:
            raise FileNotFoundError(f"YOLODataset: found no images in {self.images_dir}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        path, cls, bx = self.items[index]
        image = read_image(path, self.mode)
        H, W = image.shape[:2]
        xyxy = np.empty_like(bx)
        xyxy[:, 0] = (bx[:, 0] - bx[:, 2] / 2) * W
        xyxy[:, 1] = (bx[:, 1] - bx[:, 3] / 2) * H
        xyxy[:, 2] = (bx[:, 0] + bx[:, 2] / 2) * W
        xyxy[:, 3] = (bx[:, 1] + bx[:, 3] / 2) * H
        np.clip(xyxy[:, 0::2], 0, W, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, H, out=xyxy[:, 1::2])
        return self._apply_dict({"image": image, "boxes": xyxy, "label": cls.copy()})


RAGGED_KEYS = ("boxes", "label", "labels", "keypoints")


def detection_collate(batch: Sequence[dict]) -> dict:
    """Collate detection samples: images stacked, and ``boxes``/``label`` (which differ in
    length per image) as lists of Tensors; other keys as :func:`default_collate` does."""
    if not batch or not isinstance(batch[0], dict):
        raise TypeError("detection_collate: expected a non-empty list of dict samples")
    out: dict = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        if k in RAGGED_KEYS:
            out[k] = [v if isinstance(v, Tensor) else Tensor._wrap(np.asarray(v)) for v in vals]
        else:
            out[k] = default_collate(vals)
    return out


def boxes_to_yolo(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel xyxy boxes (M, 4) to normalised (cx, cy, w, h), as written in YOLO files."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] + b[:, 2]) / 2 / width
    out[:, 1] = (b[:, 1] + b[:, 3]) / 2 / height
    out[:, 2] = (b[:, 2] - b[:, 0]) / width
    out[:, 3] = (b[:, 3] - b[:, 1]) / height
    return out
