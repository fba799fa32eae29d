"""Data for a project: the images, their labels, the train/validation split and transforms.

Two sources:

* ``procedural``: darklib.vision's generated datasets (nothing is downloaded); the images are
  made once, deterministically from the seed, and kept as one uint8 array.
* ``folder``: an ImageFolder tree (``root/<class>/<image>``), read lazily with OpenCV, so a
  folder of 50,000 images opens at once and thumbnails are decoded page by page.

Images are ``HWC`` uint8 (``HW`` for grey). They are brought to the model's input shape
(channels and size), then the training split goes through the project's augmentations
(darklib.vision.transforms, built by name from the spec), and both splits are scaled to
[0, 1] and, with ``normalize``, to [-1, 1].
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.project import DatasetSpec, TransformSpec

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
MAX_FOLDER_IMAGES = 2_000_000


class DataError(ValueError):
    """A dataset that cannot be read; the message says where."""


def build_transform(specs: Sequence[TransformSpec]) -> Any:
    """A darklib.vision.transforms Compose from the spec's list (None when empty).

    Raises:
        DataError: an unknown transform name or bad arguments, naming the entry.
    """
    if not specs:
        return None
    from darklib.vision import transforms as T

    out = []
    for i, t in enumerate(specs):
        try:
            out.append(T.from_config({"type": t.type, **t.args}))
        except Exception as e:
            raise DataError(f"transform {i} ({t.type}): {e}") from None
    return T.Compose(out)


def transform_names() -> list[str]:
    """Transform types the dataset panel offers (those that work on uint8 HWC images)."""
    candidates = [
        "RandomHorizontalFlip",
        "RandomVerticalFlip",
        "RandomCrop",
        "RandomResizedCrop",
        "RandomRotation",
        "RandomAffine",
        "ColorJitter",
        "GaussianBlur",
        "Grayscale",
        "Pad",
        "CenterCrop",
        "Resize",
    ]
    try:
        from darklib.vision import transforms as T
    except ImportError:
        return candidates
    return [n for n in candidates if hasattr(T, n)]


class _Split:
    """A map-style dataset over part of an :class:`ImageData` (darklib Dataset protocol)."""

    def __init__(self, data: ImageData, indices: np.ndarray, transform: Any):
        self.data = data
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        j = int(self.indices[i])
        img = self.data.image(j)
        if self.transform is not None:
            img = self.transform(img)
        return self.data.to_input(img), int(self.data.labels[j])


class ImageData:
    """Images with class labels and a fixed train/validation split.

    Args:
        labels: class index per image.
        classes: class names.
        input_shape: the model's ``[C, H, W]``; images are converted to it.
        spec: the dataset spec (split, seed, transforms, normalize).
        images: a ``(N, H, W, C)`` uint8 array (in-memory source), or
        paths: image files (lazy source).
    """

    def __init__(
        self,
        labels: np.ndarray,
        classes: Sequence[str],
        input_shape: Sequence[int],
        spec: DatasetSpec,
        images: np.ndarray | None = None,
        paths: Sequence[str] | None = None,
    ):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)
        self.input_shape = tuple(int(n) for n in input_shape)
        self.spec = spec
        self._images = images
        self._paths = list(paths) if paths is not None else None
        self._cache: dict[int, np.ndarray] = {}
        self._cache_lock = threading.Lock()
        n = len(self.labels)
        order = np.random.default_rng([spec.seed, 17]).permutation(n)
        n_val = max(1, round(n * spec.val_fraction))
        self.val_indices = np.sort(order[:n_val])
        self.train_indices = np.sort(order[n_val:])
        self.transform = build_transform(spec.transforms)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)

    def raw_image(self, i: int) -> np.ndarray:
        """Image ``i`` as stored (HWC or HW uint8)."""
        if self._images is not None:
            return self._images[i]
        with self._cache_lock:
            img = self._cache.get(i)
        if img is None:
            img = _read_image(self._paths[i])  # type: ignore[index]
            with self._cache_lock:
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[i] = img
        return img

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` at the model's input channels and size (HWC uint8)."""
        return fit_image(self.raw_image(i), self.input_shape)

    def augment(self, i: int, seed: int) -> np.ndarray:
        """Image ``i`` after the training transforms, drawn with ``seed`` (HWC uint8)."""
        img = self.image(i)
        if self.transform is None:
            return img
        out = self.transform(img, generator=int(seed))
        return np.asarray(out)

    def to_input(self, img: Any) -> np.ndarray:
        """HWC uint8 (or HW) -> CHW float32 in [0, 1] or [-1, 1]."""
        a = np.asarray(img)
        if a.ndim == 2:
            a = a[:, :, None]
        x = a.transpose(2, 0, 1).astype(np.float32)
        if a.dtype == np.uint8:
            x *= 1.0 / 255.0
        if self.spec.normalize:
            x = x * 2.0 - 1.0
        return np.ascontiguousarray(x)

    def batch(self, indices: Sequence[int]) -> np.ndarray:
        """Model inputs ``(N, C, H, W)`` for dataset indices (no augmentation)."""
        return np.stack([self.to_input(self.image(int(i))) for i in indices])

    def train_dataset(self) -> Any:
        return _dataset(_Split(self, self.train_indices, self.transform))

    def val_dataset(self) -> Any:
        return _dataset(_Split(self, self.val_indices, None))

    def subset(self, n_train: int, n_val: int) -> ImageData:
        """The same data with the splits cut short (tests, quick previews)."""
        out = ImageData.__new__(ImageData)
        out.__dict__.update(self.__dict__)
        out.train_indices = self.train_indices[:n_train]
        out.val_indices = self.val_indices[:n_val]
        return out


def _dataset(split: _Split) -> Any:
    from darklib.utils.data import Dataset

    class SplitDataset(Dataset):
        def __len__(self) -> int:
            return len(split)

        def __getitem__(self, i: int) -> Any:
            return split[i]

    return SplitDataset()


def fit_image(img: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Convert channels (grey <-> RGB, drop alpha) and resize to ``input_shape`` [C, H, W]."""
    c, h, w = input_shape if len(input_shape) == 3 else (1, *input_shape[-2:])
    a = img if img.ndim == 3 else img[:, :, None]
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[2] != c:
        if c == 1:
            a = a[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            a = np.clip(a + 0.5, 0, 255).astype(np.uint8)[:, :, None]
        elif a.shape[2] == 1:
            a = np.repeat(a, c, axis=2)
        else:
            raise DataError(f"cannot convert a {a.shape[2]}-channel image to {c} channels")
    if a.shape[:2] != (h, w):
        import cv2

        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
        if a.ndim == 2:
            a = a[:, :, None]
    return a


def _read_image(path: str) -> np.ndarray:
    import cv2

    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"{path}: not an image OpenCV can decode")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return img


def scan_folder(root: str | os.PathLike) -> tuple[list[str], np.ndarray, list[str]]:
    """An ImageFolder tree: (paths, labels, class names sorted by name).

    Raises:
        DataError: not a folder, no class sub-folders or no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class sub-folders (expected root/<class>/<images>)")
    paths: list[str] = []
    labels: list[int] = []
    for k, c in enumerate(classes):
        for dirpath, _, files in os.walk(root / c):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(k)
                    if len(paths) > MAX_FOLDER_IMAGES:
                        raise DataError(f"{root}: more than {MAX_FOLDER_IMAGES} images")
    if not paths:
        raise DataError(f"{root}: no images with extensions {', '.join(IMAGE_EXTENSIONS)}")
    return paths, np.asarray(labels, dtype=np.int64), classes


def looks_like_image_folder(path: str | os.PathLike) -> bool:
    """Quick check for drag-and-drop: a folder whose sub-folders hold images."""
    p = Path(path)
    if not p.is_dir():
        return False
    for d in list(p.iterdir())[:50]:
        if d.is_dir():
            for f in list(d.iterdir())[:20]:
                if f.suffix.lower() in IMAGE_EXTENSIONS:
                    return True
    return False


# --------------------------------------------------------------------------- procedural

PROCEDURAL = {
    "glyphs28": "ten glyph classes, 28x28 grey (like FashionMNIST)",
    "objects32": "ten object classes, 32x32 colour (like CIFAR-10)",
}


def procedural_arrays(name: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """(images NHWC uint8, labels, class names) from darklib.vision's generators."""
    from darklib.vision import datasets as D

    kinds = {"glyphs28": "SyntheticGlyphs", "objects32": "SyntheticObjects"}
    if name not in kinds:
        raise DataError(f"unknown procedural dataset {name!r}; known: {', '.join(PROCEDURAL)}")
    ds = getattr(D, kinds[name])(train=True, size=size, seed=seed)
    images, labels = ds.arrays["images"], ds.arrays["labels"]
    return np.asarray(images), np.asarray(labels, dtype=np.int64), list(ds.classes)


def load_data(spec: DatasetSpec, input_shape: Sequence[int]) -> ImageData:
    """The :class:`ImageData` a dataset spec describes."""
    if spec.source == "procedural":
        images, labels, classes = procedural_arrays(spec.name, spec.size, spec.seed)
        if images.ndim == 3:
            images = images[:, :, :, None]
        return ImageData(labels, classes, input_shape, spec, images=images)
    paths, labels, classes = scan_folder(spec.path or "")
    return ImageData(labels, classes, input_shape, spec, paths=paths)
