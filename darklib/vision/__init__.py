"""darklib.vision: joint transforms, dataset readers, procedural datasets and previews."""

from darklib.vision import datasets, transforms
from darklib.vision.preview import make_grid, render_batch

__all__ = ["datasets", "make_grid", "render_batch", "transforms"]
