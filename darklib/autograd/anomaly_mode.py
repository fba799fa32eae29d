"""Anomaly detection for autograd, as ``torch.autograd.detect_anomaly``.

While it is on, every recorded op keeps the traceback of the forward call that made it,
and backward checks each node's input gradients for NaN: the first node whose backward
produced one stops backward with ``RuntimeError("Function 'DivBackward0' returned nan
values in its 1th output.")``, after a warning that shows where that op was called in
forward. An error raised by any backward is preceded by the same warning. The mode is
global (as torch's), and costs a traceback per op and a NaN scan per gradient: a
debugging tool.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from typing import Any

from darklib.backend import get_xp


class _State:
    enabled = False
    check_nan = True


state = _State()


def is_anomaly_enabled() -> bool:
    """Whether anomaly detection is on."""
    return state.enabled


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly detection, when on, checks backward's gradients for NaN."""
    return state.check_nan


def _set(enabled: bool, check_nan: bool) -> None:
    state.enabled, state.check_nan = bool(enabled), bool(check_nan)


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly detection on inside it, as
    ``torch.autograd.detect_anomaly(check_nan=True)``: backward names the op whose
    gradient first holds NaN and shows the forward call that recorded it."""

    def __init__(self, check_nan: bool = True) -> None:
        self.prev = state.enabled
        self.check_nan = bool(check_nan)
        self.prev_check_nan = state.check_nan
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and "
            "should only be enabled for debugging.",
            stacklevel=2,
        )

    def __enter__(self) -> None:
        self.prev, self.prev_check_nan = state.enabled, state.check_nan
        _set(True, self.check_nan)

    def __exit__(self, *exc: object) -> None:
        _set(self.prev, self.prev_check_nan)

    def __call__(self, fn: Callable) -> Callable:
        import functools

        check_nan = self.check_nan

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _quiet(check_nan):
                return fn(*args, **kwargs)

        return run


class _quiet(detect_anomaly):
    """detect_anomaly without its warning (for the decorator's calls)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = bool(check_nan)


class set_detect_anomaly:
    """Turn anomaly detection on or off: at once when called (``set_detect_anomaly(True)``,
    as a function), and back to the previous setting at the end of a ``with`` block."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev, self.prev_check_nan = state.enabled, state.check_nan
        _set(mode, check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _set(self.prev, self.prev_check_nan)


# ------------------------------------------------------------------ used by the engine


# the files of darklib's engine (Function.apply, and the backward that records ops under
# create_graph): their frames are left out of the forward tracebacks
_ENGINE_FILES = ("autograd/function.py", "autograd/engine.py", "anomaly_mode.py")


def forward_trace() -> str:
    """The current Python stack (for a node recorded in anomaly mode), without the frames
    inside darklib's engine."""
    frames = [
        f
        for f in traceback.extract_stack()[:-1]
        if not f.filename.replace("\\", "/").endswith(_ENGINE_FILES)
    ]
    return "".join(traceback.format_list(frames))


def warn_trace(node: Any) -> None:
    """torch's warning before an anomaly: where the failing node's op ran in forward."""
    trace = node.__dict__.get("_anomaly_trace")
    if trace is None:
        trace = "  (the op was recorded while anomaly mode was off: no traceback kept)\n"
    warnings.warn(
        f"Error detected in {node.name()}. Traceback of forward call that caused the error:\n"
        f"{trace}",
        stacklevel=4,
    )


def _has_nan(g: Any) -> bool:
    arr = getattr(g, "array", g)  # (create_graph passes tensors)
    dt = getattr(arr, "dtype", None)
    if dt is None or dt.kind not in "fc":
        return False
    return bool(get_xp(arr).isnan(arr).any())


def check_grads(node: Any, grads: tuple) -> None:
    """Raise if one of ``node``'s input gradients holds NaN (torch's message)."""
    for i, g in enumerate(grads):
        if g is not None and _has_nan(g):
            warn_trace(node)
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")
