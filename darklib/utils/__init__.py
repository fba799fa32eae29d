"""darklib.utils: data loading (``darklib.utils.data``) and other helpers."""

from darklib.utils import checkpoint, data, dlpack, hooks

__all__ = ["checkpoint", "data", "dlpack", "hooks"]
