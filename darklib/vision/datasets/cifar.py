"""CIFAR-10 from its binary batches (``cifar-10-binary.tar.gz``, extracted)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from darklib.vision.datasets._common import DatasetFormatError, VisionDataset, check_dir

_RECORD = 1 + 32 * 32 * 3


class CIFAR10(VisionDataset):
    """CIFAR-10 (32x32 RGB, 10 classes) from ``data_batch_1.bin`` ... ``data_batch_5.bin`` and
    ``test_batch.bin``, in ``root`` or ``root/cifar-10-batches-bin``.

    A sample is ``(image 32x32x3 uint8, label)``. Each file is validated: its size must be a
    whole number of 3,073-byte records and every label in 0..9.

    Args:
        root: the folder holding the batches.
        train: the five training batches (else the test batch).
        transform: applied to the image.
        target_transform: applied to the label.
    """

    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    train_list = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_list = ["test_batch.bin"]

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ):
        super().__init__(transform, target_transform)
        if download:
            raise RuntimeError(
                "CIFAR10: darklib does not download data; point root at the "
                "extracted binary version"
            )
        self.root = check_dir(root, "folder", "CIFAR10")
        self.train = train
        folder = self.root
        names = self.train_list if train else self.test_list
        if not (folder / names[0]).is_file() and (self.root / "cifar-10-batches-bin").is_dir():
            folder = self.root / "cifar-10-batches-bin"
        data, targets = [], []
        for n in names:
            path = folder / n
            if not path.is_file():
                pickled = folder / n[:-4]
                hint = (
                    (
                        " (found the pickled Python version, which darklib does not read: use "
                        "the binary version or an image folder)"
                    )
                    if pickled.exists()
                    else ""
                )
                raise FileNotFoundError(f"CIFAR10: batch file {path} does not exist{hint}")
            images, labels = read_cifar_batch(path)
            data.append(images)
            targets.append(labels)
        self.data = np.concatenate(data)
        self.targets = np.concatenate(targets).astype(np.int64)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        meta = folder / "batches.meta.txt"
        if meta.is_file():
            names_in_file = [x.strip() for x in meta.read_text().splitlines() if x.strip()]
            if len(names_in_file) == 10:
                self.classes = names_in_file

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        # a copy: an in-place transform must not write into the dataset
        return self._apply(self.data[index].copy(), int(self.targets[index]))


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: images (N, 32, 32, 3) uint8 and labels (N,) uint8."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise DatasetFormatError(
            f"size {raw.size} bytes is not a whole number of {_RECORD}-byte CIFAR-10 records", path
        )
    rec = raw.reshape(-1, _RECORD)
    labels = rec[:, 0]
    bad = np.nonzero(labels > 9)[0]
    if bad.size:
        raise DatasetFormatError(
            f"record {int(bad[0])} has label {int(labels[bad[0]])}, expected 0..9", path
        )
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return images, labels.copy()
