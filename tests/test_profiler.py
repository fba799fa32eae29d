"""dl.profiler: ops, backward nodes and user ranges timed while a profile records."""

import json
import threading

import pytest

import darklib as dl
from darklib import autograd
from darklib.profiler import ProfilerActivity, profile, record_function


def _step():
    x = dl.ones(4, 3, requires_grad=True)
    with record_function("forward"):
        y = (x * 2 * 3).sum()
    y.backward()


def test_ops_nodes_and_ranges_are_counted_with_nested_self_times():
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        _step()
    stats = {e.key: e for e in prof.key_averages()}
    assert stats["Mul"].count == 2 and stats["Sum"].count == 1
    assert stats["MulBackward0"].count == 2 and stats["SumBackward0"].count == 1
    rng = stats["forward"]
    assert rng.count == 1
    inside = sum(stats[k].cpu_time_total for k in ("Mul", "Sum"))
    assert rng.self_cpu_time_total == pytest.approx(rng.cpu_time_total - inside, abs=1e-3)
    for e in prof.events():
        assert 0 <= e.self_cpu_time_total <= e.cpu_time_total
    mul = next(e for e in prof.events() if e.name == "Mul")
    assert mul.input_shapes[0] == [4, 3] and mul.depth == 1  # inside the "forward" range
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=3)
    assert table.count("\n") == 3 + 5 and "Self CPU time total" in table  # rows + frame
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="cuda_time_total")


def test_profiling_stops_cleanly_and_costs_nothing_outside():
    apply = autograd.Function.__dict__["apply"]
    with profile() as outer:
        with profile() as inner:
            dl.ones(2) * 2
        dl.ones(2) + 1
    assert autograd.Function.__dict__["apply"] is apply and autograd.engine._profiler is None
    assert [e.name for e in inner.events()] == ["Mul"]
    assert [e.name for e in outer.events()] == ["Mul", "Add"]
    dl.ones(2) * 3
    assert len(outer.events()) == 2


def test_threads_decorators_traces_and_callbacks(tmp_path):
    ready = []

    @record_function("work")
    def work():
        return dl.ones(3).exp()

    with profile(on_trace_ready=ready.append) as prof:
        t = threading.Thread(target=work)
        t.start()
        t.join()
        work()
    assert ready == [prof]
    works = [e for e in prof.events() if e.name == "work"]
    assert len(works) == 2 and len({e.thread for e in works}) == 2
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())["traceEvents"]
    assert len(trace) == len(prof.events()) and {e["ph"] for e in trace} == {"X"}
    with pytest.raises(ValueError, match="schedule"):
        profile(schedule=object())
    assert dl.autograd.profiler.profile is profile  # torch.autograd.profiler's home too
