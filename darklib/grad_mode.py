"""Gradient-recording modes: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (per thread).

Each works as a context manager and as a decorator, as in PyTorch. The mode is
thread-local, so the studio's GUI thread can run inference under ``no_grad`` while a
training thread records its graph.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any


class _State(threading.local):
    enabled = True  # the class default each new thread starts from (no exception on lookup)
    inference = False  # inside inference_mode (which also disables grad)


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set(mode: bool) -> None:
    # inside inference_mode nothing records, whatever enable_grad asks (as torch's
    # inference tensors never require grad)
    _state.enabled = bool(mode) and not _state.inference


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
        return _in_mode(fn, lambda: set_grad_enabled(mode))

    def clone(self) -> _GradMode:
        """A fresh context manager of the same kind and mode (as torch's, for code that
        re-enters a copy of one)."""
        return type(self)()


def _in_mode(fn: Callable, context: Callable[[], Any]) -> Callable:
    """``fn`` running inside a fresh ``context()`` at each call (for a generator function:
    while the generator runs, at every resumption, not in the caller between them, as
    torch)."""
    if not inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            with context():
                return fn(*args, **kwargs)

        return call

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = fn(*args, **kwargs)
        resume, value = gen.send, None
        while True:
            try:
                with context():
                    out = resume(value)
            except StopIteration as stop:
                return stop.value
            try:
                resume, value = gen.send, (yield out)
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:  # thrown in by the caller: into the generator
                resume, value = gen.throw, exc

    return wrapper


class _BareDecorator(_GradMode):
    """Also usable without parentheses: ``@no_grad`` as well as ``@no_grad()``."""

    def __new__(cls, fn: Callable | None = None):
        if fn is not None:
            return object.__new__(cls)(fn)
        return object.__new__(cls)

    def __init__(self, fn: Callable | None = None):
        pass


class no_grad(_BareDecorator):
    """Disable gradient recording inside a ``with`` block or a decorated function."""

    mode = False


class enable_grad(_BareDecorator):
    """Re-enable gradient recording inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set recording on or off: at once when called (``set_grad_enabled(False)``), or for a
    ``with`` block or a decorated function."""

    def __init__(self, mode: bool):
        if not isinstance(mode, bool):  # (as torch: not even 0/1 or numpy.bool)
            kind = type(mode)
            name = (
                kind.__name__
                if kind.__module__ == "builtins"
                else (f"{kind.__module__}.{kind.__qualname__}")
            )
            raise TypeError(
                f"set_grad_enabled(): argument 'enabled' (position 1) must be bool, not {name}"
            )
        self.mode = mode
        self.prev = is_grad_enabled()
        _set(self.mode)

    def __enter__(self) -> None:
        pass  # the switch already happened in __init__

    def __call__(self, fn: Callable) -> Callable:
        _set(self.prev)  # used as a decorator: undo the switch made by __init__
        return super().__call__(fn)

    def clone(self) -> set_grad_enabled:
        return set_grad_enabled(self.mode)  # (which switches at once, as torch's clone)


class inference_mode(_GradMode):
    """Like :class:`no_grad`, and :func:`is_inference_mode_enabled` says so (darklib has no
    separate inference tensors)."""

    def __new__(cls, mode: Any = True):
        if callable(mode):  # bare @inference_mode
            inst = object.__new__(cls)
            inst.__init__()
            return inst(mode)
        return object.__new__(cls)

    def __init__(self, mode: Any = True):
        self.inference = bool(mode)
        self.mode = not mode

    def __enter__(self) -> None:
        self.prev_inference = _state.inference
        _state.inference = self.inference
        super().__enter__()

    def __exit__(self, *exc: object) -> None:
        _state.inference = self.prev_inference
        super().__exit__(*exc)

    def __call__(self, fn: Callable) -> Callable:
        inference = self.inference
        return _in_mode(fn, lambda: inference_mode(inference))

    def clone(self) -> inference_mode:
        return inference_mode(self.inference)


def is_inference_mode_enabled() -> bool:
    return _state.inference
