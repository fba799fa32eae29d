"""Folder readers: class subfolders of images, and image/mask folder pairs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklib.vision.datasets._common import (
    IMG_EXTENSIONS,
    DatasetFormatError,
    VisionDataset,
    check_dir,
    list_images,
    read_image,
    read_mask,
)


class ImageFolder(VisionDataset):
    """Images in class subfolders: ``root/<class>/<name>.png`` (CIFAR-10 or FashionMNIST as
    downloaded as images); images in folders nested inside a class folder belong to it.

    A sample is ``(image, class_index)``: the image is a uint8 HWC numpy array (RGB, or
    HxWx1 with ``mode="L"``) passed through ``transform``.

    Args:
        root: the folder holding one subfolder per class.
        transform: applied to the image.
        target_transform: applied to the class index.
        loader: reads a path into an image (default: OpenCV decoding, see ``mode``).
        is_valid_file: keeps a path when it returns True (default: by extension).
        extensions: file extensions to keep.
        mode: ``"RGB"``, ``"L"`` (grey) or ``"unchanged"``.
        on_error: ``"raise"`` (default) or ``"skip"``: with ``"skip"``, every image is
            decoded once here and unreadable ones are left out and listed in ``skipped``.
        allow_empty: keep class folders that hold no image (torchvision's argument;
            default: such a folder is an error naming it).

    Attributes:
        classes, class_to_idx, samples (path, index), targets, imgs.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        loader: Callable[[str], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        extensions: Sequence[str] = IMG_EXTENSIONS,
        mode: str = "RGB",
        on_error: str = "raise",
        allow_empty: bool = False,
    ):
        super().__init__(transform, target_transform, on_error)
        self.root = check_dir(root, "image folder", "ImageFolder")
        self.mode = mode
        self.loader = loader if loader is not None else (lambda p: read_image(p, mode))
        self.classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not self.classes:
            raise FileNotFoundError(
                f"ImageFolder: couldn't find any class folder in {self.root} (expected "
                f"root/<class>/<image files>)"
            )
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        exts = tuple(e.lower() for e in extensions)
        samples: list[tuple[str, int]] = []
        for c in self.classes:
            # images in nested folders of a class count too, in torchvision's order
            for folder, _, names in sorted(os.walk(self.root / c, followlinks=True)):
                for name in sorted(names):
                    path = os.path.join(folder, name)
                    ok = (
                        is_valid_file(path)
                        if is_valid_file is not None
                        else name.lower().endswith(exts)
                    )
                    if ok and os.path.isfile(path):
                        samples.append((path, self.class_to_idx[c]))
        # a class folder without images is refused, as torchvision's (unless allow_empty):
        # it would still count as a class the model must predict
        empty = sorted(set(self.classes) - {self.classes[t] for _, t in samples})
        if empty and (not allow_empty or not samples):
            raise FileNotFoundError(
                f"ImageFolder: found no valid file for the classes {', '.join(empty)} "
                f"in {self.root}; supported extensions are {', '.join(exts)}"
            )
        if on_error == "skip":
            kept = []
            for path, target in samples:
                try:
                    self.loader(path)
                except (DatasetFormatError, OSError) as e:
                    self._fail(e, path)
                    continue
                kept.append((path, target))
            samples = kept
        self.samples = samples
        self.imgs = samples
        self.targets = [t for _, t in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        return self._apply(self.loader(path), target)


class SegmentationFolder(VisionDataset):
    """Image/mask pairs matched by file name: ``images/<name>.jpg`` with
    ``masks/<name><mask_suffix>.png``.

    A sample is ``{"image": HWC uint8, "mask": HW int64}`` passed through ``transform``
    (joint transforms move the mask with the image).

    Args:
        images: the image folder.
        masks: the mask folder (class index per pixel; palette PNGs keep their indices).
        transform: a joint transform on the sample dict.
        mask_suffix: what the mask's name adds to the image's stem (e.g. ``"_mask"``).
        mask_map: maps mask values to class indices (e.g. ``{255: 1}``); unmapped values
            are kept.
        mode: ``"RGB"``, ``"L"`` or ``"unchanged"``.
        on_error: ``"raise"`` or ``"skip"``: images without a mask are skipped, and with
            ``"skip"`` every pair is decoded once here to leave out corrupt files and size
            mismatches (listed in ``skipped``).
    """

    def __init__(
        self,
        images: str | os.PathLike,
        masks: str | os.PathLike,
        transform: Callable | None = None,
        mask_suffix: str = "",
        mask_map: dict[int, int] | None = None,
        mode: str = "RGB",
        extensions: Sequence[str] = IMG_EXTENSIONS,
        on_error: str = "raise",
    ):
        super().__init__(transform, None, on_error)
        self.root = self.images_dir = check_dir(images, "image folder", "SegmentationFolder")
        self.masks_dir = check_dir(masks, "mask folder", "SegmentationFolder")
        self.mode, self.mask_map = mode, mask_map
        masks_by_stem: dict[str, Path] = {}
        for m in list_images(self.masks_dir, (*extensions, ".gif")):
            masks_by_stem.setdefault(m.stem, m)
        pairs: list[tuple[str, str]] = []
        for img in list_images(self.images_dir, extensions):
            m = masks_by_stem.get(img.stem + mask_suffix)
            if m is None:
                self._fail(
                    FileNotFoundError(
                        f"SegmentationFolder: no mask for image {img} (looked for "
                        f"{self.masks_dir / (img.stem + mask_suffix)}.*)"
                    ),
                    os.fspath(img),
                )
                continue
            pairs.append((os.fspath(img), os.fspath(m)))
        if not pairs:
            raise FileNotFoundError(
                f"SegmentationFolder: found no image/mask pairs in "
                f"{self.images_dir} and {self.masks_dir}"
            )
        if on_error == "skip":
            kept = []
            for p in pairs:
                try:
                    self._load(*p)
                except (DatasetFormatError, OSError) as e:
                    self._fail(e, p[0])
                    continue
                kept.append(p)
            pairs = kept
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, image_path: str, mask_path: str) -> dict:
        image = read_image(image_path, self.mode)
        mask = read_mask(mask_path)
        if mask.shape[:2] != image.shape[:2]:
            raise DatasetFormatError(
                f"mask size {mask.shape[1]}x{mask.shape[0]} does not match the size "
                f"{image.shape[1]}x{image.shape[0]} of image {image_path}",
                mask_path,
            )
        mask = mask.astype(np.int64)
        if self.mask_map:
            out = mask.copy()
            for k, v in self.mask_map.items():
                out[mask == k] = v
            mask = out
        return {"image": image, "mask": mask}

    def __getitem__(self, index: int) -> Any:
        return self._apply_dict(self._load(*self.pairs[index]))
