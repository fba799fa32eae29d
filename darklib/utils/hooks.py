"""``dl.utils.hooks.RemovableHandle``: what every ``register_*hook`` returns (its home in
torch; the class lives beside :class:`darklib.Tensor`)."""

from darklib.tensor import RemovableHandle

__all__ = ["RemovableHandle"]
