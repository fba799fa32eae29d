"""Data for a project: the images, their labels, the train/validation split and transforms.

The images come from darklib.vision's readers; this module only chooses the reader, brings
the images to the model's input shape and splits them:

* ``procedural``: the generated datasets (nothing is downloaded; made once from the seed and
  cached by darklib), kept in memory as one uint8 array.
* ``folder``: an ImageFolder tree (``root/<class>/<image>``), decoded lazily, so a folder of
  50,000 images opens at once and thumbnails are decoded page by page. A folder split the
  way datasets are often downloaded, ``root/train/<class>/...`` beside ``root/test/<class>/...``
  (or ``val/``), is recognised: the classes are the ones inside, ``train`` is trained on and
  the held-out folder is the validation split (``val`` before ``test``).
* ``mnist`` / ``fashion_mnist``: the IDX files, ``cifar10``: the binary batches; both read
  whole into memory (the training files; the validation split is cut from them).

Images are ``HWC`` uint8. They are brought to the model's input shape (channels and size),
then the training split goes through the project's augmentations (darklib.vision.transforms,
built by name from the spec), and both splits are scaled to [0, 1] and, with ``normalize``,
to [-1, 1]. Reader errors (a missing file, a corrupt image, a malformed IDX header) keep
darklib's message, which names the file, and become :class:`DataError`. With the spec's
``on_error="skip"`` an image that cannot be decoded is left out where it is met (its place
in a batch goes to the next readable image of the split) and listed in ``skipped``: a
corrupt file among 50,000 costs no upfront decoding of them all, and never stops a run.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklib.utils.data import Dataset
from darklib.vision import datasets as D
from darklib.vision import transforms as T
from darklib.vision.datasets import DatasetFormatError
from studio.project import DatasetSpec, TransformSpec

PROCEDURAL = {
    "glyphs28": "ten glyph classes, 28x28 grey (like FashionMNIST)",
    "objects32": "ten object classes, 32x32 colour (like CIFAR-10)",
}
_PROCEDURAL_CLASSES = {"glyphs28": D.SyntheticGlyphs, "objects32": D.SyntheticObjects}

#: what each on-disk source reads (the dataset panel's tooltips)
FILE_SOURCES = {
    "folder": "an image folder: one sub-folder of images per class",
    "mnist": "MNIST IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])",
    "fashion_mnist": "FashionMNIST IDX files (named as MNIST's)",
    "cifar10": "CIFAR-10 binary batches (data_batch_1.bin ... data_batch_5.bin)",
}

#: transform types the dataset panel offers (those that work on uint8 HWC images)
TRANSFORM_CHOICES = (
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
)


class DataError(ValueError):
    """A dataset that cannot be read; the message says where (folder, file, record)."""


def build_transform(specs: Sequence[TransformSpec]) -> Any:
    """A darklib.vision.transforms Compose from the spec's list (None when empty).

    Raises:
        DataError: an unknown transform name or bad arguments, naming the entry.
    """
    if not specs:
        return None
    out = []
    for i, t in enumerate(specs):
        try:
            out.append(T.from_config({"type": t.type, **t.args}))
        except Exception as e:
            raise DataError(f"transform {i + 1} ({t.type}): {e}") from None
    return T.Compose(out)


def transform_problem(specs: Sequence[TransformSpec], input_shape: Sequence[int]) -> str | None:
    """Why the training transforms cannot work on the model's images, or None: a bad
    argument (a probability outside [0, 1]), a transform that fails on an image of the
    model's input size (a crop larger than the image), or one whose output has another
    size than the model takes (a Resize to 64 for a 32x32 model). Checked on a blank image
    of the input size, with a few random draws, so that a run cannot die on its first
    batch."""
    for i, t in enumerate(specs):
        problem = _argument_problem(t, input_shape)
        if problem:
            return f"transform {i + 1} ({t.type}): {problem}"
    try:
        tf = build_transform(specs)
    except DataError as e:
        return str(e)
    if tf is None:
        return None
    h, w, c = _hwc(input_shape)
    blank = np.zeros((h, w, c), np.uint8)
    for seed in range(4):
        out = blank
        for i, (t, spec) in enumerate(zip(tf.transforms, specs)):
            try:
                out = np.asarray(t(out, generator=seed) if _takes_generator(t) else t(out))
            except Exception as e:
                return (
                    f"transform {i + 1} ({spec.type}) cannot work on the {w}x{h} images of "
                    f"this model: {e}"
                )
        got = out.shape[:2]
        chans = out.shape[2] if out.ndim == 3 else 1
        if chans != c and got == (h, w):
            return (
                f"the transforms give {chans}-channel images but the model takes {c} "
                f"channels (input shape {', '.join(map(str, input_shape))})"
            )
        if got != (h, w):
            return (
                f"the transforms give {got[1]}x{got[0]} images but the model takes "
                f"{w}x{h} (input shape {', '.join(map(str, input_shape))}): remove or fix the "
                "transform that changes the size, or change the model's input shape"
            )
    return None


#: arguments that hold numbers (one, or a list): a string or a NaN there is refused by name
_NUMERIC_ARGS = {
    "p",
    "size",
    "max_size",
    "padding",
    "kernel_size",
    "sigma",
    "degrees",
    "translate",
    "scale",
    "ratio",
    "shear",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "num_output_channels",
}
#: arguments given as a (min, max) range (shear may hold two ranges: x then y)
_RANGE_ARGS = {"scale", "ratio", "degrees", "sigma", "shear", "brightness", "contrast"}
_RANGE_ARGS |= {"saturation", "hue"}
#: arguments that are image sizes in pixels: bounded, so that a typo (5000 for 50) cannot
#: make each preview and each training image millions of pixels (checking Resize 5000 froze
#: the window for 1.7 s)
_PIXEL_ARGS = ("size", "max_size", "padding", "kernel_size")
#: the largest blur kernel: its cost grows with its size times the image's pixels (31 on a
#: 1024-pixel image is about 0.1 s per image; 1023 took 4 s)
MAX_KERNEL = 31


def max_transform_side(input_shape: Sequence[int]) -> int:
    """The largest size in pixels a transform may produce or use for ``input_shape``: four
    times the model's input side, at least 256 and at most 1024."""
    h, w, _ = _hwc(input_shape)
    return min(1024, max(256, 4 * max(h, w)))


def _numbers(v: Any) -> list | None:
    """The numbers of an argument (one number or a flat list of them), or None."""
    items = v if isinstance(v, (list, tuple)) else [v]
    if not items or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in items):
        return None
    return list(items)


def _argument_problem(t: TransformSpec, input_shape: Sequence[int]) -> str | None:
    """What is wrong with one transform's arguments, said with the argument's name and
    value (darklib would say it in its own words, or numpy in none: "high - low range
    exceeds valid bounds" for a NaN angle), or None."""
    limit = max_transform_side(input_shape)
    for k, v in t.args.items():
        if k not in _NUMERIC_ARGS or v is None:
            continue
        nums = _numbers(v)
        if nums is None:
            return f"{k} must be a number or a list of numbers, got {v!r}"
        if not all(math.isfinite(x) for x in nums):
            return f"{k} must be finite (no NaN or infinity), got {v!r}"
        if k == "p" and (len(nums) != 1 or not 0 <= nums[0] <= 1):
            return f"p is a probability and must lie in [0, 1], got {v!r}"
        if k in _PIXEL_ARGS:
            if any(x < 0 for x in nums):
                return f"{k} must not be negative, got {v!r}"
            if k == "kernel_size" and any(x > MAX_KERNEL for x in nums):
                return f"kernel_size={v!r} is too large: kernels up to {MAX_KERNEL} are accepted"
            if any(x > limit for x in nums):
                return (
                    f"{k}={v!r} is too large: sizes up to {limit} pixels are accepted (the "
                    f"model takes {' x '.join(map(str, input_shape))})"
                )
        if k in _RANGE_ARGS and isinstance(v, (list, tuple)) and len(nums) in (2, 4):
            for lo, hi in zip(nums[::2], nums[1::2]):
                if lo > hi:
                    return (
                        f"{k} is a (min, max) range, but {lo:g} > {hi:g}: put the smaller "
                        f"value first ({k}=[{hi:g}, {lo:g}])"
                    )
    return None


def _takes_generator(t: Any) -> bool:
    import inspect

    try:
        return "generator" in inspect.signature(t.__call__).parameters
    except (TypeError, ValueError):
        return False


def transform_names() -> list[str]:
    """Transform types the dataset panel offers."""
    return [n for n in TRANSFORM_CHOICES if hasattr(T, n)]


# --------------------------------------------------------------------------- fitting


@functools.lru_cache(maxsize=16)
def _resize(h: int, w: int) -> Any:
    return T.Resize((h, w), interpolation="bilinear", antialias=True)


_TO_GREY, _TO_RGB = T.Grayscale(1), T.Grayscale(3)


def fit_image(img: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """Convert channels (grey <-> RGB, alpha dropped) and size to ``input_shape`` [C, H, W].

    Raises:
        DataError: channels that cannot be converted (e.g. RGB to a 2-channel input).
    """
    c, h, w = input_shape if len(input_shape) == 3 else (1, *input_shape[-2:])
    a = img if img.ndim == 3 else img[:, :, None]
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[2] != c:
        if c == 1:
            a = _TO_GREY(a)
        elif c == 3 and a.shape[2] == 1:
            a = _TO_RGB(a)
        else:
            raise DataError(f"cannot convert a {a.shape[2]}-channel image to {c} channels")
    if a.shape[:2] != (h, w):
        a = _resize(h, w)(a)
    return a


# --------------------------------------------------------------------------- the data


SKIP_HINT = (
    "tick 'Skip unreadable images' in the Dataset panel (the dataset's \"on_error\": "
    '"skip") to leave such files out'
)


class _Split(Dataset):
    """Part of an :class:`ImageData` as a darklib map-style dataset of ``(CHW float, label)``.

    An image that cannot be read raises :class:`DataError` naming the file, or, when the
    data skips unreadable images, is left out: the item is the next readable one."""

    def __init__(self, data: ImageData, indices: np.ndarray, transform: Any, name: str = ""):
        self.data = data
        self.indices = indices
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        d = self.data
        n = len(self.indices)
        for k in range(n):
            j = int(self.indices[(i + k) % n])
            if j in d.bad:
                continue
            try:
                img = d.image(j)
            except DataError as e:
                if d.on_error != "skip":
                    raise DataError(f"{e}\n({SKIP_HINT})") from e
                d.leave_out(j, str(e))
                continue
            if self.transform is not None:
                img = self.transform(img)
            return d.to_input(img), int(d.labels[j])
        raise DataError(
            f"none of the {n} images of the {self.name or 'data'} split can be read "
            f"({len(d.skipped)} unreadable, the first: {d.skipped[0][1] if d.skipped else '?'})"
        )


class ImageData:
    """Images with class labels and a fixed train/validation split.

    Args:
        labels: class index per image.
        classes: class names.
        input_shape: the model's ``[C, H, W]``; images are converted to it.
        spec: the dataset spec (split, seed, transforms, normalize).
        images: a ``(N, H, W, C)`` uint8 array (in-memory source), or
        reader: a map-style dataset whose item ``i`` is ``(image HWC uint8, label)``, read
            lazily (e.g. darklib's ImageFolder); decoded images are cached.
    """

    CACHE_SIZE = 4096

    def __init__(
        self,
        labels: np.ndarray,
        classes: Sequence[str],
        input_shape: Sequence[int],
        spec: DatasetSpec,
        images: np.ndarray | None = None,
        reader: Any = None,
        split: tuple[np.ndarray, np.ndarray] | None = None,
        split_note: str = "",
    ):
        if (images is None) == (reader is None):
            raise ValueError("ImageData: give exactly one of images and reader")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)
        self.input_shape = tuple(int(n) for n in input_shape)
        self.spec = spec
        self.source = reader
        self.on_error = spec.on_error
        self.skipped: list[tuple[str, str]] = []  # (file, reason) of the images left out
        self.bad: set[int] = set()  # their indices
        self._images = images
        self._fits = images is not None and images.shape[1:] == _hwc(self.input_shape)
        self._cache: dict[int, np.ndarray] = {}
        self._cache_lock = threading.Lock()
        n = len(self.labels)
        #: how the split was made, for the user ("train/ for training, test/ for validation")
        self.split_note = split_note
        if split is not None:  # the data's own split (train/ and test/ folders)
            self.train_indices = np.asarray(split[0], dtype=np.int64)
            self.val_indices = np.asarray(split[1], dtype=np.int64)
        else:
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

    def file(self, i: int) -> str:
        """Where image ``i`` comes from (its file for a folder)."""
        samples = getattr(self.source, "samples", None)
        return str(samples[i][0]) if samples is not None else f"image {i}"

    def leave_out(self, i: int, reason: str) -> None:
        """Record image ``i`` as unreadable: training and validation pass over it."""
        with self._cache_lock:
            if i not in self.bad:
                self.bad.add(i)
                self.skipped.append((self.file(i), reason))

    def val_positions(self, n: int) -> np.ndarray:
        """``n`` positions into the validation split for a partial validation: a fixed
        (seeded) sample with the classes taken in turn, so that a validation cut short
        still sees every class, not the first class of a split sorted by class."""
        m = len(self.val_indices)
        if n >= m:
            return np.arange(m)
        rng = np.random.default_rng([self.spec.seed, 29])
        labels = self.labels[self.val_indices]
        per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in np.unique(labels)]
        # round-robin over the classes (each in its own shuffled order)
        width = max(len(p) for p in per_class)
        table = np.full((len(per_class), width), -1, np.int64)
        for r, p in enumerate(per_class):
            table[r, : len(p)] = p
        order = table.T.reshape(-1)
        return np.sort(order[order >= 0][:n])

    def raw_image(self, i: int) -> np.ndarray:
        """Image ``i`` as stored (HWC uint8)."""
        if self._images is not None:
            return self._images[i]
        try:
            return self.source[i][0]
        except (OSError, DatasetFormatError) as e:  # the message names the file
            raise DataError(str(e)) from e

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` at the model's input channels and size (HWC uint8)."""
        if self._fits:
            return self._images[i]  # type: ignore[index]
        with self._cache_lock:
            img = self._cache.get(i)
        if img is None:
            img = fit_image(self.raw_image(i), self.input_shape)
            with self._cache_lock:
                if len(self._cache) >= self.CACHE_SIZE:
                    self._cache.clear()
                self._cache[i] = img
        return img

    def augment(self, i: int, seed: int) -> np.ndarray:
        """Image ``i`` after the training transforms, drawn with ``seed`` (HWC uint8)."""
        img = self.image(i)
        if self.transform is None:
            return img
        return np.asarray(self.transform(img, generator=int(seed)))

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

    def train_dataset(self) -> Dataset:
        return _Split(self, self.train_indices, self.transform, "training")

    def val_dataset(self) -> Dataset:
        return _Split(self, self.val_indices, None, "validation")

    def subset(self, n_train: int, n_val: int) -> ImageData:
        """The same data with the splits cut short (tests, quick previews)."""
        out = ImageData.__new__(ImageData)
        out.__dict__.update(self.__dict__)
        out.train_indices = self.train_indices[:n_train]
        out.val_indices = self.val_indices[:n_val]
        return out


def _hwc(input_shape: Sequence[int]) -> tuple[int, int, int]:
    c, h, w = input_shape if len(input_shape) == 3 else (1, *input_shape[-2:])
    return int(h), int(w), int(c)


# --------------------------------------------------------------------------- sources


def procedural_arrays(name: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """(images NHWC uint8, labels, class names) from darklib.vision's generators."""
    cls = _PROCEDURAL_CLASSES.get(name)
    if cls is None:
        raise DataError(f"unknown procedural dataset {name!r}; known: {', '.join(PROCEDURAL)}")
    ds = cls(train=True, size=size, seed=seed)
    return np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), list(ds.classes)


def detect_source(path: str | os.PathLike) -> str:
    """Which on-disk source a dropped folder holds: ``"cifar10"`` (binary batches),
    ``"mnist"`` / ``"fashion_mnist"`` (IDX files; "fashion" in the path picks the latter)
    or ``"folder"`` (anything else, read as an ImageFolder tree).

    Raises:
        DataError: ``path`` is not a folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    if any((root / d / "data_batch_1.bin").is_file() for d in (".", "cifar-10-batches-bin")):
        return "cifar10"
    for pattern in ("train-images-idx3-ubyte*", "*/train-images-idx3-ubyte*"):
        for p in root.glob(pattern):
            return "fashion_mnist" if "fashion" in str(p).lower() else "mnist"
    for p in root.glob("*/raw/train-images-idx3-ubyte*"):
        return "fashion_mnist" if "fashion" in str(p).lower() else "mnist"
    return "folder"


#: sub-folder names of a split folder: the training part, and the held-out parts in the
#: order they are preferred as the validation split
TRAIN_DIRS = ("train", "training")
HELD_OUT_DIRS = ("val", "valid", "validation", "test", "testing")


def split_folders(path: str | os.PathLike) -> tuple[Path, Path | None] | None:
    """The parts of a folder laid out as ``train/<class>/...`` beside ``test/<class>/...``
    (or ``val/``): ``(train folder, held-out folder or None)``, or None for a plain image
    folder. It is a split folder when each of its sub-folders is named as a split (train,
    val, valid, validation, test, testing; any case) and the training one holds folders
    (its classes) rather than images: two classes that happen to be called "train" and
    "test" hold images. A lone held-out folder (``test/<class>/...``, a download cut
    short) is the data, its validation split cut from it."""
    root = Path(path)
    try:
        subs = {
            e.name.lower(): Path(e.path)
            for e in os.scandir(root)
            if e.is_dir() and not e.name.startswith((".", "__"))  # .git, __MACOSX
        }
    except OSError:
        return None
    if not subs or any(n not in TRAIN_DIRS + HELD_OUT_DIRS for n in subs):
        return None
    train = next((subs[n] for n in TRAIN_DIRS if n in subs), None)
    held = next((subs[n] for n in HELD_OUT_DIRS if n in subs), None)
    if train is None:  # test/<class>/... alone (a download cut short): it is the data
        train, held = (held, None) if len(subs) == 1 else (None, None)
    if train is None or not _holds_classes(train):
        return None
    return train, held


def _holds_classes(folder: Path) -> bool:
    """Whether ``folder`` holds class folders rather than images."""
    try:
        inner = list(os.scandir(folder))
    except OSError:
        return False
    return any(e.is_dir() for e in inner) and not any(
        e.is_file() and e.name.lower().endswith(D.IMG_EXTENSIONS) for e in inner
    )


class _SplitFolder:
    """A split folder's training and held-out ImageFolders as one reader: items
    ``0 .. n_train - 1`` are the training images, the rest the held-out ones, whose class
    indices follow the training folder's class names."""

    def __init__(self, train: Any, held: Any):
        self.train, self.held = train, held
        self.classes = list(train.classes)
        self.n_train = len(train)
        index = {c: k for k, c in enumerate(self.classes)}
        unknown = [c for c in held.classes if c not in index]
        if unknown:
            raise DataError(
                f"{held.root}: the classes {', '.join(unknown)} are not in the training "
                f"folder {train.root} (whose classes are {', '.join(self.classes)})"
            )
        remap = [index[c] for c in held.classes]
        self.samples = list(train.samples) + [(p, remap[t]) for p, t in held.samples]
        self.targets = [t for _, t in self.samples]
        self.skipped = list(train.skipped) + list(held.skipped)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        if i < self.n_train:
            return self.train[i]
        return self.held[i - self.n_train][0], self.samples[i][1]


def class_count(path: str | os.PathLike, source: str) -> int | None:
    """How many classes an on-disk source holds, cheaply (the folder listing; 10 for the
    MNIST, FashionMNIST and CIFAR-10 files), or None when it cannot be told."""
    if source in ("mnist", "fashion_mnist", "cifar10"):
        return 10
    if source != "folder":
        return None
    try:
        return len(open_reader(DatasetSpec(source="folder", path=str(path)), [3, 1, 1]).classes)
    except DataError:
        return None


def open_reader(spec: DatasetSpec, input_shape: Sequence[int]) -> Any:
    """darklib's reader for a spec's on-disk source (``folder``, ``mnist``, ...).

    Raises:
        DataError: the reader's error (missing folder or file, corrupt image, bad header),
            with its message naming the file.
    """
    path = spec.path or ""
    try:
        if spec.source == "folder":
            mode = "L" if _hwc(input_shape)[2] == 1 else "RGB"
            # unreadable images are skipped where they are met (see ImageData), not by
            # decoding every image of the folder here
            parts = split_folders(path)
            if parts is None:
                return D.ImageFolder(path, mode=mode)
            train, held = parts
            if held is None:  # train/<class>/... alone: the validation split is cut from it
                return D.ImageFolder(train, mode=mode)
            return _SplitFolder(D.ImageFolder(train, mode=mode), D.ImageFolder(held, mode=mode))
        if spec.source == "mnist":
            return D.MNIST(path, train=True)
        if spec.source == "fashion_mnist":
            return D.FashionMNIST(path, train=True)
        if spec.source == "cifar10":
            return D.CIFAR10(path, train=True)
    except (OSError, DatasetFormatError) as e:
        raise DataError(str(e)) from e
    raise DataError(f"unknown dataset source {spec.source!r}")


def load_data(spec: DatasetSpec, input_shape: Sequence[int]) -> ImageData:
    """The :class:`ImageData` a dataset spec describes (may take seconds: call it off the
    GUI thread).

    Raises:
        DataError: the data cannot be read or generated; the message names the place.
    """
    if spec.source == "procedural":
        images, labels, classes = procedural_arrays(spec.name, spec.size, spec.seed)
        return ImageData(labels, classes, input_shape, spec, images=_nhwc(images, input_shape))
    ds = open_reader(spec, input_shape)
    data = getattr(ds, "data", None)
    if isinstance(data, np.ndarray):  # IDX / CIFAR: read whole
        out = ImageData(ds.targets, ds.classes, input_shape, spec, images=_nhwc(data, input_shape))
    elif isinstance(ds, _SplitFolder):
        n = len(ds)
        train, held = Path(ds.train.root).name, Path(ds.held.root).name
        note = f"{train}/ for training, {held}/ for validation"
        out = ImageData(
            np.asarray(ds.targets, dtype=np.int64),
            ds.classes,
            input_shape,
            spec,
            reader=ds,
            split=(np.arange(ds.n_train), np.arange(ds.n_train, n)),
            split_note=note,
        )
    else:
        out = ImageData(np.asarray(ds.targets), ds.classes, input_shape, spec, reader=ds)
        root = getattr(ds, "root", None)
        if spec.source == "folder" and Path(root).resolve() != Path(spec.path or "").resolve():
            out.split_note = f"{Path(root).name}/ only: the validation split is cut from it"
    return out


def _nhwc(images: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """An in-memory array at the input shape: converted once here, not per sample."""
    if images.ndim == 3:
        images = images[:, :, :, None]
    if images.shape[1:] == _hwc(input_shape):
        return images
    return np.stack([fit_image(a, input_shape) for a in images])


__all__ = [
    "FILE_SOURCES",
    "PROCEDURAL",
    "DataError",
    "ImageData",
    "build_transform",
    "class_count",
    "detect_source",
    "fit_image",
    "load_data",
    "open_reader",
    "procedural_arrays",
    "split_folders",
    "transform_names",
    "transform_problem",
]
