"""Gradient-recording modes: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (per thread).

Each works as a context manager and as a decorator, as in PyTorch. The mode is
thread-local, so the studio's GUI thread can run inference under ``no_grad`` while a
training thread records its graph.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def _set(mode: bool) -> None:
    _state.enabled = mode


class _GradMode:
    """Switches the mode on ``__enter__`` and restores the previous one on ``__exit__``."""

    mode = True

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _set(self.mode)

    def __exit__(self, *exc: object) -> None:
        _set(self.prev)

    def __call__(self, fn: Callable) -> Callable:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Disable gradient recording inside a ``with`` block or a decorated function."""

    mode = False


class enable_grad(_GradMode):
    """Re-enable gradient recording inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set recording on or off: at once when called (``set_grad_enabled(False)``), or for a
    ``with`` block or a decorated function."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _set(self.mode)

    def __enter__(self) -> None:
        pass  # the switch already happened in __init__

    def __call__(self, fn: Callable) -> Callable:
        _set(self.prev)  # used as a decorator: undo the switch made by __init__
        return super().__call__(fn)
