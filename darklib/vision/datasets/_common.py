"""Shared pieces of the dataset readers: errors, image and mask decoding, folder checks."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from darklib.utils.data import Dataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DatasetFormatError(ValueError):
    """A dataset file is malformed: the message names the file (and line or record)."""

    def __init__(
        self, message: str, path: str | os.PathLike | None = None, line: int | None = None
    ):
        where = ""
        if path is not None:
            where = f"{os.fspath(path)}" + (f", line {line}" if line is not None else "") + ": "
        super().__init__(where + message)
        self.path = None if path is None else os.fspath(path)
        self.line = line


def check_on_error(on_error: str, where: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"{where}: on_error must be 'raise' or 'skip', got {on_error!r}")


def check_dir(path: str | os.PathLike, what: str, where: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{where}: {what} {os.fspath(p)} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"{where}: {what} {os.fspath(p)} is not a folder")
    return p


def check_file(path: str | os.PathLike, what: str, where: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{where}: {what} {os.fspath(p)} does not exist")
    return p


def _read_bytes(path: str | os.PathLike) -> np.ndarray:
    try:
        return np.fromfile(os.fspath(path), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {os.fspath(path)} does not exist") from None
    except OSError as e:
        raise DatasetFormatError(f"cannot read image file: {e}", path) from None


_MODES = {"RGB": cv2.IMREAD_COLOR, "L": cv2.IMREAD_GRAYSCALE, "unchanged": cv2.IMREAD_UNCHANGED}


def read_image(path: str | os.PathLike, mode: str = "RGB") -> np.ndarray:
    """Decode an image file to a uint8 HWC array (RGB, or HxWx1 for ``mode="L"``).

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetFormatError: the file is empty, corrupt or not an image (names the file).
    """
    flag = _MODES.get(mode)
    if flag is None:
        raise ValueError(f"read_image: mode must be one of {sorted(_MODES)}, got {mode!r}")
    buf = _read_bytes(path)
    if buf.size == 0:
        raise DatasetFormatError("cannot decode image: the file is empty", path)
    img = cv2.imdecode(buf, flag)
    if img is None:
        raise DatasetFormatError("cannot decode image: the file is corrupt or not an image", path)
    if img.ndim == 2:
        return img[:, :, None]
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Decode a label mask (PNG, GIF, BMP...) to an HW integer array, keeping palette indices.

    Raises:
        DatasetFormatError: the file is corrupt, or a colour image whose channels differ.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(os.fspath(path)) as im:
            im.load()
            if im.mode in ("P", "L", "1", "I", "I;16", "I;16B", "I;16L"):
                arr = np.array(im)
            else:
                arr = np.array(im.convert("RGB"))
                if not (
                    np.array_equal(arr[..., 0], arr[..., 1])
                    and np.array_equal(arr[..., 0], arr[..., 2])
                ):
                    raise DatasetFormatError(
                        f"mask is a colour image (mode {im.mode}); save class indices as a "
                        f"single-channel or palette PNG",
                        path,
                    )
                arr = arr[..., 0]
    except FileNotFoundError:
        raise FileNotFoundError(f"mask file {os.fspath(path)} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetFormatError(f"cannot decode mask: {e}", path) from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    return arr


def list_images(folder: Path, extensions: Sequence[str]) -> list[Path]:
    exts = tuple(e.lower() for e in extensions)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


class VisionDataset(Dataset):
    """Base of the readers: transforms, and the record of skipped entries.

    ``skipped`` lists ``(file or "file:line", reason)`` for every entry left out with
    ``on_error="skip"``; ``num_skipped`` counts them.
    """

    def __init__(
        self,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        on_error: str = "raise",
    ):
        check_on_error(on_error, type(self).__name__)
        self.transform = transform
        self.target_transform = target_transform
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def _fail(self, err: Exception, key: str) -> None:
        """Raise ``err``, or record it when skipping."""
        if self.on_error == "raise":
            raise err
        self.skipped.append((key, str(err)))

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        root = getattr(self, "root", None)
        if root is not None:
            lines.append(f"    Root location: {root}")
        if self.num_skipped:
            lines.append(f"    Skipped: {self.num_skipped}")
        if self.transform is not None:
            lines.append("    Transform: " + repr(self.transform).replace("\n", "\n    "))
        return "\n".join(lines)

    def _apply(self, image: np.ndarray, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def _apply_dict(self, sample: dict) -> Any:
        return sample if self.transform is None else self.transform(sample)
