"""MNIST and FashionMNIST from their IDX files (``.gz`` or raw)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from darklib.vision.datasets._common import DatasetFormatError, VisionDataset, check_dir

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, validating its header and size.

    Raises:
        DatasetFormatError: bad magic number, unknown type code, or a size that does not
            match the header (the message names the file).
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError) as e:
        raise DatasetFormatError(f"cannot read IDX file: {e}", path) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetFormatError(
            "not an IDX file (the magic number must start with two zero bytes)", path
        )
    dtype = _IDX_DTYPES.get(data[2])
    if dtype is None:
        raise DatasetFormatError(f"unknown IDX type code 0x{data[2]:02x}", path)
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DatasetFormatError(
            f"truncated IDX header ({len(data)} bytes for {ndim} dimensions)", path
        )
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(data) - header != expected:
        raise DatasetFormatError(
            f"IDX size mismatch: the header says shape {shape} ({expected} bytes of data), "
            f"the file has {len(data) - header}",
            path,
        )
    return (
        np.frombuffer(data, dtype, offset=header)
        .reshape(shape)
        .astype(np.dtype(dtype).newbyteorder("="), copy=True)
    )


class MNIST(VisionDataset):
    """The MNIST digits (28x28 grey, 10 classes) from IDX files.

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (``t10k-*`` for the
    test split), with or without ``.gz``, in ``root``, ``root/<Name>/raw`` or
    ``root/<Name>``. A sample is ``(image HxWx1 uint8, label)``.

    Args:
        root: the folder holding the files.
        train: the training split (else the test split).
        transform: applied to the image.
        target_transform: applied to the label.
    """

    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ):
        super().__init__(transform, target_transform)
        name = type(self).__name__
        if download:
            raise RuntimeError(
                f"{name}: darklib does not download data; point root at a folder with the IDX files"
            )
        self.root = check_dir(root, "folder", name)
        self.train = train
        prefix = "train" if train else "t10k"
        images = self._find(f"{prefix}-images-idx3-ubyte")
        labels = self._find(f"{prefix}-labels-idx1-ubyte")
        self.data = read_idx(images)
        self.targets = read_idx(labels).astype(np.int64)
        if self.data.ndim != 3:
            raise DatasetFormatError(
                f"expected images of shape (N, H, W), got {self.data.shape}", images
            )
        if self.targets.ndim != 1 or len(self.targets) != len(self.data):
            raise DatasetFormatError(
                f"{self.targets.shape[0]} labels for {len(self.data)} images in {images}", labels
            )
        if len(self.targets) and (
            self.targets.min() < 0 or self.targets.max() >= len(self.classes)
        ):
            bad = int(np.nonzero((self.targets < 0) | (self.targets >= len(self.classes)))[0][0])
            raise DatasetFormatError(
                f"label {int(self.targets[bad])} of record {bad} is not "
                f"in 0..{len(self.classes) - 1}",
                labels,
            )
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def _find(self, stem: str) -> Path:
        name = type(self).__name__
        for folder in (self.root, self.root / name / "raw", self.root / name, self.root / "raw"):
            for candidate in (folder / stem, folder / (stem + ".gz")):
                if candidate.is_file():
                    return candidate
        raise FileNotFoundError(
            f"{name}: {stem} (or {stem}.gz) not found in {self.root}, "
            f"{self.root / name / 'raw'} or {self.root / name}"
        )

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        # a copy: an in-place transform must not write into the dataset
        return self._apply(self.data[index][:, :, None].copy(), int(self.targets[index]))


class FashionMNIST(MNIST):
    """Zalando's FashionMNIST (28x28 grey clothes, 10 classes), same files as MNIST."""

    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
