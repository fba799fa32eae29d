"""Landmark lists: one image path and its points per line (MTFL's ``train.txt``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from darklib.vision.datasets._common import (
    DatasetFormatError,
    VisionDataset,
    check_file,
    read_image,
)

#: MTFL's five points: left eye, right eye, nose tip, left and right mouth corner
MTFL_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: keypoint pairs that swap under a horizontal flip, for RandomHorizontalFlip(flip_pairs=...)
MTFL_FLIP_PAIRS = ((0, 1), (3, 4))


class LandmarkList(VisionDataset):
    """Images with keypoints listed in a text file, one image per line:
    ``relative/path.jpg x1 ... xK y1 ... yK`` (``layout="xxyy"``, MTFL) or
    ``path x1 y1 ... xK yK`` (``layout="xyxy"``).

    A sample is ``{"image": HWC uint8, "keypoints": (K, 2) float32}`` (plus
    ``"attributes"`` when lines carry extra numbers after the points) passed through the
    joint ``transform``. Points slightly outside the image are accepted (annotation noise).

    Args:
        list_file: the text file.
        root: the folder paths are relative to (default: the list file's folder).
        num_points: K (default: inferred from the first line, which must then hold exactly
            the points).
        layout: ``"xxyy"`` or ``"xyxy"``.
        transform: a joint transform on the sample dict.
        mode: ``"RGB"``, ``"L"`` or ``"unchanged"``.
        on_error: ``"raise"`` (default) or ``"skip"``: malformed lines and missing images are
            left out and listed in ``skipped``.
    """

    def __init__(
        self,
        list_file: str | os.PathLike,
        root: str | os.PathLike | None = None,
        num_points: int | None = None,
        layout: str = "xxyy",
        transform: Callable | None = None,
        mode: str = "RGB",
        on_error: str = "raise",
    ):
        super().__init__(transform, None, on_error)
        if layout not in ("xxyy", "xyxy"):
            raise ValueError(f"LandmarkList: layout must be 'xxyy' or 'xyxy', got {layout!r}")
        self.list_file = check_file(list_file, "landmark list", "LandmarkList")
        self.root = Path(root) if root is not None else self.list_file.parent
        self.layout, self.mode = layout, mode
        paths: list[str] = []
        rows: list[list[float]] = []
        K = num_points
        with open(self.list_file, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    if K is None:
                        if (len(parts) - 1) % 2 or len(parts) < 3:
                            raise DatasetFormatError(
                                f"expected a path and an even number of coordinates, got "
                                f"{len(parts) - 1} numbers",
                                self.list_file,
                                lineno,
                            )
                        K = (len(parts) - 1) // 2
                    if len(parts) < 1 + 2 * K:
                        raise DatasetFormatError(
                            f"expected a path and {2 * K} coordinates, got {len(parts) - 1} values",
                            self.list_file,
                            lineno,
                        )
                    try:
                        values = [float(v) for v in parts[1:]]
                    except ValueError:
                        raise DatasetFormatError(
                            f"non-numeric value in {' '.join(parts[1:])!r}", self.list_file, lineno
                        ) from None
                    if not np.isfinite(values).all():
                        raise DatasetFormatError("non-finite coordinate", self.list_file, lineno)
                    rel = parts[0].replace("\\", "/")
                    if not (self.root / rel).is_file():
                        raise DatasetFormatError(
                            f"image {self.root / rel} does not exist", self.list_file, lineno
                        )
                except DatasetFormatError as e:
                    self._fail(e, f"{self.list_file}:{lineno}")
                    continue
                paths.append(rel)
                rows.append(values)
        if not paths:
            raise DatasetFormatError("no valid lines", self.list_file)
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise DatasetFormatError(
                f"lines have different numbers of values: {sorted(widths)}", self.list_file
            )
        table = np.asarray(rows, np.float32)
        assert K is not None
        pts = table[:, : 2 * K]
        if layout == "xxyy":
            self.keypoints = np.stack([pts[:, :K], pts[:, K:]], axis=2)
        else:
            self.keypoints = pts.reshape(-1, K, 2)
        self.attributes = table[:, 2 * K :] if table.shape[1] > 2 * K else None
        self.paths = paths
        self.num_points = K

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        sample = {
            "image": read_image(self.root / self.paths[index], self.mode),
            "keypoints": self.keypoints[index].copy(),
        }
        if self.attributes is not None:
            sample["attributes"] = self.attributes[index].copy()
        return self._apply_dict(sample)
