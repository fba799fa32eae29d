"""darklib.vision: joint transforms, dataset readers, procedural datasets, previews and the
detection ops (``vision.ops``)."""

from darklib.vision import datasets, ops, transforms
from darklib.vision.preview import make_grid, render_batch

__all__ = ["datasets", "make_grid", "ops", "render_batch", "transforms"]
