"""Qt-free picture helpers: image grids and PNG thumbnails as numpy/bytes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_rgb(img: np.ndarray) -> np.ndarray:
    """HW or HWC (1, 3 or 4 channels) uint8 -> HW3 uint8."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def grid(
    images: Sequence[np.ndarray],
    cols: int,
    cell: int,
    gap: int = 2,
    background: tuple[int, int, int] = (21, 23, 28),
) -> np.ndarray:
    """Tile images (resized to ``cell`` pixels, nearest) into one RGB picture."""
    import cv2

    n = len(images)
    rows = max(1, -(-n // cols))
    h = rows * cell + (rows + 1) * gap
    w = cols * cell + (cols + 1) * gap
    out = np.empty((h, w, 3), np.uint8)
    out[:] = background
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        y, x = gap + r * (cell + gap), gap + c * (cell + gap)
        out[y : y + cell, x : x + cell] = cv2.resize(
            to_rgb(img), (cell, cell), interpolation=cv2.INTER_NEAREST
        )
    return out


def png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray | None:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if img is None else img[:, :, ::-1].copy()


def project_thumbnail(images: Sequence[np.ndarray], size: int = 192) -> bytes:
    """A 4x4 grid of sample images as PNG bytes (the gallery picture)."""
    cols = 4
    cell = (size - 5 * 2) // cols
    return png_bytes(grid(list(images)[:16], cols, cell))
