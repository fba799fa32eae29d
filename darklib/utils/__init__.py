"""darklib.utils: data loading (``darklib.utils.data``) and other helpers."""

from darklib.utils import data

__all__ = ["data"]
