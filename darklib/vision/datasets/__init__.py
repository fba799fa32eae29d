"""Dataset readers for real formats and the procedural defaults.

Readers validate what they read: a missing folder, an unreadable image, a malformed label
line or an image/mask size mismatch raises an error naming the file (and line); with
``on_error="skip"`` the entry is left out and recorded in ``dataset.skipped``.
"""

from darklib.vision.datasets._cache import cache_dir
from darklib.vision.datasets._common import (
    IMG_EXTENSIONS,
    DatasetFormatError,
    VisionDataset,
    read_image,
    read_mask,
)
from darklib.vision.datasets.cifar import CIFAR10, read_cifar_batch
from darklib.vision.datasets.folder import ImageFolder, SegmentationFolder
from darklib.vision.datasets.landmarks import MTFL_FLIP_PAIRS, MTFL_POINTS, LandmarkList
from darklib.vision.datasets.mnist import MNIST, FashionMNIST, read_idx
from darklib.vision.datasets.procedural import (
    PointClouds,
    SineSurface,
    SyntheticFaces,
    SyntheticGlyphs,
    SyntheticObjects,
    SyntheticShapes,
    make_points,
    make_sine_surface,
)
from darklib.vision.datasets.yolo import (
    YOLODataset,
    boxes_to_yolo,
    detection_collate,
    read_yolo_labels,
)

__all__ = [
    "CIFAR10",
    "IMG_EXTENSIONS",
    "MNIST",
    "MTFL_FLIP_PAIRS",
    "MTFL_POINTS",
    "DatasetFormatError",
    "FashionMNIST",
    "ImageFolder",
    "LandmarkList",
    "PointClouds",
    "SegmentationFolder",
    "SineSurface",
    "SyntheticFaces",
    "SyntheticGlyphs",
    "SyntheticObjects",
    "SyntheticShapes",
    "VisionDataset",
    "YOLODataset",
    "boxes_to_yolo",
    "cache_dir",
    "detection_collate",
    "make_points",
    "make_sine_surface",
    "read_cifar_batch",
    "read_idx",
    "read_image",
    "read_mask",
    "read_yolo_labels",
]
