"""darklib's exception classes for bad arguments.

PyTorch raises ``RuntimeError`` for most bad arguments (a stride of 0, channels that do
not match, a float class index), where Python's own convention, and darklib's messages,
say ``ValueError``, ``TypeError`` or ``IndexError``. darklib's argument errors are both:
each class below derives from the Python exception and from ``RuntimeError``, so that
code written for PyTorch (``except RuntimeError``) and code written for Python
(``except ValueError``) both catch them.
"""

from __future__ import annotations


class InvalidValue(ValueError, RuntimeError):
    """An argument has a value the op cannot take (a ValueError and a RuntimeError)."""


class InvalidType(TypeError, RuntimeError):
    """An argument has a type or dtype the op cannot take (a TypeError and a RuntimeError)."""


class OutOfRange(IndexError, RuntimeError):
    """An index or dim is out of range (an IndexError and a RuntimeError)."""


class OutOfMemory(MemoryError, RuntimeError):
    """A tensor too large for the device's memory (a MemoryError and a RuntimeError)."""
