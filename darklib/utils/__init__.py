"""darklib.utils: data loading (``darklib.utils.data``) and other helpers."""

from darklib.utils import checkpoint, data, hooks

__all__ = ["checkpoint", "data", "hooks"]
