"""Qt-free picture helpers: RGB conversion, image grids and PNG bytes (numpy in, numpy or
bytes out); the tiling is darklib.vision's :func:`make_grid`."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from darklib.vision import make_grid

GRID_GREY = 22  # the grids' gaps: the grey of the dark theme's window


def to_rgb(img: np.ndarray) -> np.ndarray:
    """HW or HWC (1, 3 or 4 channels) image -> HW3 uint8 (floats in [0, 1] are scaled)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def grid(images: Sequence[np.ndarray], cols: int, cell: int, gap: int = 2) -> np.ndarray:
    """Images scaled to ``cell`` pixels (nearest, so pixels stay crisp) and tiled ``cols``
    across into one RGB picture."""
    cells = [cv2.resize(to_rgb(im), (cell, cell), interpolation=cv2.INTER_NEAREST) for im in images]
    return make_grid(cells, nrow=cols, padding=gap, pad_value=GRID_GREY)


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def project_thumbnail(images: Sequence[np.ndarray], size: int = 192) -> bytes:
    """A 4x4 grid of sample images as PNG bytes (the gallery picture)."""
    cols = 4
    cell = (size - 5 * 2) // cols
    return png_bytes(grid(list(images)[:16], cols, cell))
