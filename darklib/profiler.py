"""``dl.profiler``: where a step's time goes, op by op, as ``torch.profiler``.

    >>> with dl.profiler.profile(record_shapes=True) as prof:
    ...     with dl.profiler.record_function("train_step"):
    ...         loss = loss_fn(model(x), y); loss.backward(); opt.step()
    >>> print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    >>> prof.export_chrome_trace("trace.json")   # chrome://tracing, Perfetto

While a profile is active, every darklib op (``Function.apply``: ``Mul``, ``Conv2d``...),
every backward node (``MulBackward0``...) and every ``record_function`` range is timed on
the host clock, nested ranges giving each event a "self" time without its children. On
the GPU the times are those of the host side (launching kernels runs ahead of them); call
``dl.cuda.synchronize()`` inside a range to include the wait. Events from all threads are
kept, each with its thread id. Profiling costs a few microseconds per op; outside a
profile, nothing.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from darklib.errors import InvalidValue

__all__ = ["ProfilerActivity", "profile", "record_function"]


class ProfilerActivity(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"  # (host-side times of GPU work: see the module docstring)


class FunctionEvent:
    """One timed range: ``name``, ``start_us``/``end_us`` on the host clock,
    ``cpu_time_total`` and ``self_cpu_time_total`` (microseconds), ``thread``,
    ``input_shapes`` (with record_shapes) and the ``depth`` of its nesting."""

    __slots__ = ("children_us", "depth", "end_us", "input_shapes", "name", "start_us", "thread")

    def __init__(self, name: str, start_us: float, thread: int, depth: int, shapes: list):
        self.name, self.start_us, self.thread, self.depth = name, start_us, thread, depth
        self.end_us = start_us
        self.children_us = 0.0
        self.input_shapes = shapes

    key = property(lambda self: self.name)
    count = property(lambda self: 1)
    cpu_time_total = property(lambda self: self.end_us - self.start_us)
    self_cpu_time_total = property(lambda self: self.cpu_time_total - self.children_us)

    def __repr__(self) -> str:
        return (
            f"<FunctionEvent {self.name} cpu_time_total={self.cpu_time_total:.1f}us "
            f"self_cpu_time_total={self.self_cpu_time_total:.1f}us thread={self.thread}>"
        )


class FunctionEventAvg:
    """The events of one key (a name, and its input shapes with ``group_by_input_shape``)
    added up: ``count``, ``cpu_time_total``, ``self_cpu_time_total``, ``cpu_time`` (the
    mean per call), in microseconds."""

    def __init__(self, key: str, input_shapes: Any = None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0

    def add(self, e: FunctionEvent) -> None:
        self.count += 1
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    self_cpu_time = property(lambda self: self.self_cpu_time_total / max(self.count, 1))

    def __repr__(self) -> str:
        return (
            f"<FunctionEventAvg key={self.key} count={self.count} "
            f"cpu_time_total={self.cpu_time_total:.1f}us "
            f"self_cpu_time_total={self.self_cpu_time_total:.1f}us>"
        )


_SORT_KEYS = {
    "cpu_time_total": "cpu_time_total",
    "self_cpu_time_total": "self_cpu_time_total",
    "cpu_time": "cpu_time",
    "self_cpu_time": "self_cpu_time",
    "count": "count",
}


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """A list of events with torch's :meth:`table`."""

    def table(
        self,
        sort_by: str | None = None,
        row_limit: int = 100,
        max_name_column_width: int = 55,
        header: str | None = None,
        top_level_events_only: bool = False,
        **_: Any,
    ) -> str:
        """A text table: name, self CPU time and share, total CPU time and share, mean per
        call and calls, sorted by ``sort_by`` (descending; one of cpu_time_total,
        self_cpu_time_total, cpu_time, self_cpu_time, count), at most ``row_limit`` rows
        (a negative limit: all)."""
        rows = list(self)
        if top_level_events_only:
            rows = [e for e in rows if getattr(e, "depth", 0) == 0]
        if sort_by is not None:
            if sort_by not in _SORT_KEYS:
                raise InvalidValue(
                    f"table: sort_by must be one of {', '.join(_SORT_KEYS)}, got {sort_by!r} "
                    "(darklib times the host side only: no CUDA columns)"
                )
            rows.sort(key=lambda e: getattr(e, _SORT_KEYS[sort_by]), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        self_total = sum(e.self_cpu_time_total for e in self) or 1.0
        width = min(max_name_column_width, max([len(e.key) for e in rows] + [4]))
        cols = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"]
        line = "-" * width + "  " + "  ".join("-" * 12 for _ in cols)
        out = [header] if header else []
        out += [line, f"{'Name':>{width}}  " + "  ".join(f"{c:>12}" for c in cols), line]
        for e in rows:
            name = e.key if len(e.key) <= width else e.key[: width - 3] + "..."
            cells = [
                f"{100 * e.self_cpu_time_total / self_total:.2f}%",
                _fmt_us(e.self_cpu_time_total),
                f"{100 * e.cpu_time_total / self_total:.2f}%",
                _fmt_us(e.cpu_time_total),
                _fmt_us(e.cpu_time_total / max(e.count, 1)),
                str(e.count),
            ]
            out.append(f"{name:>{width}}  " + "  ".join(f"{c:>12}" for c in cells))
        out += [line, f"Self CPU time total: {_fmt_us(sum(e.self_cpu_time_total for e in self))}"]
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.table()


# ------------------------------------------------------------------ recording

_lock = threading.Lock()
_active: list[profile] = []  # the profiles recording now
_local = threading.local()  # .stack: the open events of this thread


def _begin(name: str, shapes: list) -> FunctionEvent | None:
    if not _active:
        return None
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    e = FunctionEvent(name, time.perf_counter_ns() / 1e3, threading.get_ident(), len(stack), shapes)
    stack.append(e)
    return e


def _end(e: FunctionEvent | None) -> None:
    if e is None:
        return
    e.end_us = time.perf_counter_ns() / 1e3
    stack = _local.stack
    if stack and stack[-1] is e:
        stack.pop()
    if stack:
        stack[-1].children_us += e.cpu_time_total
    with _lock:
        for p in _active:
            p._events.append(e)


def _shapes(args: tuple) -> list:
    return [list(a.shape) if hasattr(a, "shape") else [] for a in args]


def _timed_apply(original: Callable) -> Callable:
    """``Function.apply`` timing each op (see :func:`_install`)."""

    def apply(cls: type, *args: Any, **kwargs: Any) -> Any:
        record = any(p.record_shapes for p in _active)
        e = _begin(cls.__name__, _shapes(args) if record else [])
        try:
            return original(cls, *args, **kwargs)
        finally:
            _end(e)

    return classmethod(apply)


_saved_apply: list = []  # Function.apply as it was before the first active profile


def _install() -> None:
    from darklib.autograd import Function, engine

    if not _saved_apply:
        original = Function.__dict__["apply"]
        _saved_apply.append(original)
        Function.apply = _timed_apply(original.__func__)
        engine._profiler = sys.modules[__name__]


def _uninstall() -> None:
    from darklib.autograd import Function, engine

    if _saved_apply and not _active:
        Function.apply = _saved_apply.pop()
        engine._profiler = None


# ------------------------------------------------------------------ the public API


class record_function:
    """A named range in the profile: ``with record_function("data"): ...`` or as a
    decorator. Outside a profile it costs nothing."""

    def __init__(self, name: str, args: str | None = None):
        self.name = name
        self._event: FunctionEvent | None = None

    def __enter__(self) -> record_function:
        self._event = _begin(self.name, [])
        return self

    def __exit__(self, *exc: Any) -> None:
        _end(self._event)
        self._event = None

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with record_function(self.name):
                return fn(*args, **kwargs)

        return wrapped


class profile:
    """Record the ops run between :meth:`start` and :meth:`stop` (or inside ``with``).

    Args:
        activities: ProfilerActivity values; CPU and CUDA are both host-side times here.
        record_shapes: keep each op's input shapes (``key_averages(group_by_input_shape=
            True)`` groups by them).
        on_trace_ready: called with the profile when it stops (e.g. to export a trace).
        schedule: not supported (darklib records every step of the profiled block).
        profile_memory, with_stack, with_flops, with_modules: accepted; darklib records
            times only.
    """

    def __init__(
        self,
        activities: Any = None,
        *,
        schedule: Any = None,
        on_trace_ready: Callable | None = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        with_modules: bool = False,
        enabled: bool = True,
        use_cuda: bool = False,
        **_: Any,
    ):
        if schedule is not None:
            raise InvalidValue(
                "profile: schedule= is not supported; darklib records every step inside the "
                "profiled block (profile the steps you want)"
            )
        self.activities = set(activities) if activities else {ProfilerActivity.CPU}
        self.record_shapes = bool(record_shapes)
        self.on_trace_ready = on_trace_ready
        self.enabled = enabled
        self.step_num = 0
        self._events: list[FunctionEvent] = []
        self._running = False

    def start(self) -> None:
        if not self.enabled or self._running:
            return
        with _lock:
            _active.append(self)
        _install()
        self._running = True

    def stop(self) -> None:
        if not self._running:
            return
        with _lock:
            _active.remove(self)
        _uninstall()
        self._running = False
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def step(self) -> None:
        """Count a training step (torch's schedules hang on it; here it only counts)."""
        self.step_num += 1

    def events(self) -> EventList:
        """Every recorded event, in the order they ended."""
        return EventList(self._events)

    function_events = property(events)

    def key_averages(self, group_by_input_shape: bool = False, **_: Any) -> EventList:
        """The events added up per name (and per input shapes with
        ``group_by_input_shape``), in order of first appearance."""
        groups: dict[Any, FunctionEventAvg] = {}
        for e in self._events:
            shapes = str(e.input_shapes) if group_by_input_shape else None
            key = (e.name, shapes)
            if key not in groups:
                groups[key] = FunctionEventAvg(e.name, e.input_shapes if shapes else None)
            groups[key].add(e)
        return EventList(groups.values())

    def table(self, *args: Any, **kwargs: Any) -> str:
        return self.key_averages().table(*args, **kwargs)

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the events as a Chrome trace (JSON; open in chrome://tracing or Perfetto)."""
        pid = os.getpid()
        trace = {
            "traceEvents": [
                {
                    "name": e.name,
                    "ph": "X",
                    "ts": e.start_us,
                    "dur": e.cpu_time_total,
                    "pid": pid,
                    "tid": e.thread,
                    "cat": "cpu_op",
                    **({"args": {"Input Dims": e.input_shapes}} if e.input_shapes else {}),
                }
                for e in self._events
            ]
        }
        with open(path, "w") as f:
            json.dump(trace, f)

    def __iter__(self) -> Iterator[FunctionEvent]:
        return iter(self._events)
