"""darklib.vision: joint transforms, dataset readers, procedural datasets, previews, model
families (``vision.models``) and the detection ops (``vision.ops``)."""

from darklib.vision import datasets, models, ops, transforms
from darklib.vision.preview import make_grid, render_batch

__all__ = ["datasets", "make_grid", "models", "ops", "render_batch", "transforms"]
