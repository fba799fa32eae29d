"""Joint image/mask/keypoint/box transforms (torchvision's names, OpenCV underneath).

The sample convention
---------------------
A transform takes one sample and returns one of the same structure:

* an **image** alone: a numpy array ``HWC`` (or ``HW``) of any numeric dtype; a darklib
  Tensor ``CHW``; or a PIL image (read as a numpy array holding what it stores: palette
  indices for ``P``, int32 for ``I``, uint16 for ``I;16``, float32 for ``F``, 2 channels
  for ``LA``, 4 for ``CMYK``..., as torchvision's ``to_tensor`` reads it);
* a tuple **(image, target)**: a plain target (a class index, a vector) passes through; a
  dict target has its ``mask``/``keypoints``/``boxes`` moved with the image;
* a **dict** ``{"image", "mask", "keypoints", "boxes", "label", ...}``: ``mask`` is ``HW``
  integer, ``keypoints`` ``(K, 2)`` float32 pixel (x, y), ``boxes`` ``(M, 4)`` float32 pixel
  (x1, y1, x2, y2); other keys pass through.

Samples stay numpy until :class:`ToTensor`, which makes the image a ``CHW`` Tensor (uint8
becomes float32 in [0, 1], other dtypes are kept unscaled, as torchvision's) and the mask an
int64 Tensor (then :class:`Normalize`, :class:`RandomErasing`). :class:`Resize` follows
torchvision's tensor path, ``torch.nn.functional.interpolate``'s arithmetic. :class:`Lambda`
and :class:`Compose` take any object: what is not an image sample (a label, a path) goes to
their callables as it is.
Pixel (row i, column j) covers ``[j, j+1) x [i, i+1)`` of the plane keypoints and boxes live
in, so a horizontal flip maps x to ``width - x``.

Random transforms take numbers from ``generator`` when one is passed
(``t(sample, generator=rng)``), else from the DataLoader's per-sample stream
(:func:`darklib.utils.data.sample_rng`), so that worker threads reproduce the batches of
``num_workers=0``. ``repr(t)`` shows the arguments, ``t.config()`` gives JSON and
:func:`from_config` builds the transform back (for the studio's augmentation panel).

Example::

    >>> t = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(),
    ...              Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    >>> image = t(image_hwc_uint8)
"""

from darklib.vision.transforms._core import (
    SPATIAL_KEYS,
    Compose,
    Lambda,
    RandomApply,
    RandomChoice,
    ToTuple,
    Transform,
    from_config,
)
from darklib.vision.transforms._functional import InterpolationMode
from darklib.vision.transforms.color import ColorJitter, GaussianBlur, Grayscale
from darklib.vision.transforms.geometric import (
    CenterCrop,
    Pad,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
)
from darklib.vision.transforms.tensor import (
    Normalize,
    RandomErasing,
    SanitizeBoxes,
    ToTensor,
    to_tensor,
)

__all__ = [
    "SPATIAL_KEYS",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "GaussianBlur",
    "Grayscale",
    "InterpolationMode",
    "Lambda",
    "Normalize",
    "Pad",
    "RandomAffine",
    "RandomApply",
    "RandomChoice",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "SanitizeBoxes",
    "ToTensor",
    "ToTuple",
    "Transform",
    "from_config",
    "to_tensor",
]
