"""Benchmark of the ops a sweep found slow against torch: darklib beside PyTorch, from one
run, as ratios, on one thread and on the default threads.

    python bench/slow_ops.py [--repeats 7] [--size 1000000] [--rows abcdef] [--quick]
                             [--cpu-time]

Rows (time ratios darklib / torch, no targets; forward under no_grad, then forward +
backward of the output with a given gradient, where the op has one):
(a) erf and exact GELU (approximate='none'), float32 and float64, of ``--size`` values
    (standard normal times 2), erfc in float64
(b) torch.special-style functions of ``--size`` values: erfinv (uniform in (-0.99, 0.99)),
    ndtri (uniform in (0.001, 0.999)), ndtr, log_ndtr, erfcx (standard normal times 2 and
    5), float32 and float64; lgamma, digamma, polygamma(1) (uniform in (0.01, 20)) and i0
    (normal times 5), float32
(c) cummax and cummin of a (64, 4096) float32 tensor along dim 0 and along dim 1
(d) topk with k = 1, 10, 100 of a (256, 10000) float32 tensor along its rows, and of a
    (1000000,) one
(e) index_add of (100000, 64) float32 rows into (1000, 64) at random and at sorted indices
(f) linalg.lu_factor of (256, 256) and (512, 512) float32 matrices and of a (64, 32, 32)
    batch (fwd+bwd: the gradient of the LU factor's sum)

Each row is timed twice: with ``dl.set_num_threads(1)`` and ``torch.set_num_threads(1)``
(columns "1 thread") and with both libraries at their default thread counts. darklib and
torch runs alternate inside each repeat, so both see the same machine load; figures are
medians, "(best)" compares the fastest repeats. On a machine shared with other work
``--cpu-time`` times the one-thread runs by the calling thread's CPU time
(``time.thread_time``), which the other processes do not inflate (both libraries then
run on the calling thread alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import darklib as dl
import darklib.nn.functional as DF

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # darklib's figures alone
    torch = None

Run = Callable[[], object]


def _time(run: Run, clock: Callable[[], float]) -> float:
    t = clock()
    run()
    return clock() - t


def measure(dl_run: Run, torch_run: Run | None, repeats: int, cpu_time: bool) -> dict:
    """Seconds per call, (median, best), for darklib and torch on 1 thread and on the
    default threads, darklib and torch alternating in every repeat."""
    dl_default, torch_default = dl.get_num_threads(), torch.get_num_threads() if torch else 1
    out = {}
    for threads in (1, None):
        dl.set_num_threads(threads or dl_default)
        if torch is not None:
            torch.set_num_threads(threads or torch_default)
        clock = time.thread_time if cpu_time and threads == 1 else time.perf_counter
        runs = [dl_run] + ([torch_run] if torch_run is not None else [])
        times: list[list[float]] = [[] for _ in runs]
        for rep in range(repeats + 1):  # the first round warms up
            for k, run in enumerate(runs):
                time.sleep(0.01)  # let the other library's spinning threads go idle
                t = _time(run, clock)
                if rep:
                    times[k].append(t)
        stats = [(float(np.median(t)), float(np.min(t))) for t in times]
        out[threads or "default"] = (stats[0], stats[1] if len(stats) > 1 else None)
    dl.set_num_threads(dl_default)
    if torch is not None:
        torch.set_num_threads(torch_default)
    return out


def _pair(x: np.ndarray, dl_fn: Callable, torch_fn: Callable | None) -> list:
    """Forward (no_grad) and forward + backward runs of a unary op on ``x``, for both."""
    g = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
    dx, dg = dl.tensor(x, requires_grad=True), dl.tensor(g)

    def d_fwd():
        with dl.no_grad():
            dl_fn(dx)

    def d_train():
        dx.grad = None
        dl_fn(dx).backward(dg)

    t_fwd = t_train = None
    if torch_fn is not None and torch is not None:
        tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def t_fwd():
            with torch.no_grad():
                torch_fn(tx)

        def t_train():
            tx.grad = None
            torch_fn(tx).backward(tg)

    return [("forward", d_fwd, t_fwd), ("fwd+bwd", d_train, t_train)]


def _th(name: str) -> Callable | None:
    """A torch function by dotted name (None without torch)."""
    if torch is None:
        return None
    obj = torch
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


# ------------------------------------------------------------------ rows


def erf_rows(n: int) -> list:
    r = np.random.default_rng(0)
    x = r.standard_normal(n) * 2
    rows = []
    for dt in (np.float32, np.float64):
        v = x.astype(dt)
        tag = f"{np.dtype(dt).name} ({n:.0e})"
        for label, d, t in _pair(v, dl.erf, _th("erf")):
            rows.append((f"erf {tag}, {label}", d, t))
        gelu_t = TF.gelu if torch is not None else None
        for label, d, t in _pair(v, DF.gelu, gelu_t):
            rows.append((f"gelu exact {tag}, {label}", d, t))
    for label, d, t in _pair(x, dl.erfc, _th("erfc")):
        rows.append((f"erfc float64 ({n:.0e}), {label}", d, t))
    return rows


def special_rows(n: int) -> list:
    r = np.random.default_rng(0)
    inputs = {
        "unit": r.uniform(-0.99, 0.99, n),
        "p": r.uniform(0.001, 0.999, n),
        "normal": r.standard_normal(n) * 2,
        "wide": r.standard_normal(n) * 5,
        "positive": r.uniform(0.01, 20, n),
    }
    cases = [
        ("erfinv", "unit", dl.erfinv, "erfinv", (np.float32, np.float64)),
        ("ndtri", "p", dl.special.ndtri, "special.ndtri", (np.float32, np.float64)),
        ("ndtr", "normal", dl.special.ndtr, "special.ndtr", (np.float32, np.float64)),
        ("log_ndtr", "normal", dl.special.log_ndtr, "special.log_ndtr", (np.float32, np.float64)),
        ("erfcx", "wide", dl.special.erfcx, "special.erfcx", (np.float32, np.float64)),
        ("lgamma", "positive", dl.lgamma, "lgamma", (np.float32,)),
        ("digamma", "positive", dl.digamma, "digamma", (np.float32,)),
        ("i0", "wide", dl.special.i0, "special.i0", (np.float32,)),
    ]
    rows = []
    for name, dom, d_fn, t_name, dtypes in cases:
        for dt in dtypes:
            x = inputs[dom].astype(dt)
            for label, d, t in _pair(x, d_fn, _th(t_name)):
                rows.append((f"{name} {np.dtype(dt).name} ({n:.0e}), {label}", d, t))
    x = inputs["positive"].astype(np.float32)
    t_poly = (lambda v: torch.special.polygamma(1, v)) if torch is not None else None
    for label, d, t in _pair(x, lambda v: dl.special.polygamma(1, v), t_poly):
        rows.append((f"polygamma(1) float32 ({n:.0e}), {label}", d, t))
    return rows


def cum_rows() -> list:
    x = np.random.default_rng(0).standard_normal((64, 4096)).astype(np.float32)
    rows = []
    for name in ("cummax", "cummin"):
        d_op, t_op = getattr(dl, name), getattr(torch, name, None)
        for dim in (0, 1):
            d_fn = lambda v, f=d_op, dim=dim: f(v, dim)[0]
            t_fn = (lambda v, f=t_op, dim=dim: f(v, dim)[0]) if t_op is not None else None
            for label, d, t in _pair(x, d_fn, t_fn):
                rows.append((f"{name} (64, 4096) dim {dim}, {label}", d, t))
    return rows


def _reduced(x: np.ndarray, dl_fn: Callable, torch_fn: Callable | None) -> list:
    """Forward and forward + backward (of the output's sum) runs of an op whose output
    has another shape than its input (topk)."""
    dx = dl.tensor(x, requires_grad=True)

    def d_fwd():
        with dl.no_grad():
            dl_fn(dx)

    def d_train():
        dx.grad = None
        dl_fn(dx).sum().backward()

    t_fwd = t_train = None
    if torch_fn is not None:
        tx = torch.tensor(x, requires_grad=True)

        def t_fwd():
            with torch.no_grad():
                torch_fn(tx)

        def t_train():
            tx.grad = None
            torch_fn(tx).sum().backward()

    return [("forward", d_fwd, t_fwd), ("fwd+bwd", d_train, t_train)]


def topk_rows(quick: bool) -> list:
    r = np.random.default_rng(0)
    rows = []
    for shape in ((256, 10000), (1000000,)):
        x = r.standard_normal(shape).astype(np.float32)
        for k in (1, 10) if quick else (1, 10, 100):
            d_fn = lambda v, k=k: dl.topk(v, k)[0]
            t_fn = (lambda v, k=k: torch.topk(v, k)[0]) if torch is not None else None
            for label, d, t in _reduced(x, d_fn, t_fn):
                rows.append((f"topk k={k} of {shape}, {label}", d, t))
    return rows


def index_add_rows() -> list:
    r = np.random.default_rng(0)
    src = r.standard_normal((100000, 64)).astype(np.float32)
    base = np.zeros((1000, 64), np.float32)
    rows = []
    for order, idx in (("random", r.integers(0, 1000, 100000)), ("sorted", None)):
        if idx is None:
            idx = np.sort(r.integers(0, 1000, 100000))
        ds, db, di = dl.tensor(src), dl.tensor(base), dl.tensor(idx)

        def d_run(ds=ds, db=db, di=di):
            dl.index_add(db, 0, di, ds)

        t_run = None
        if torch is not None:
            ts, tb, ti = torch.tensor(src), torch.tensor(base), torch.tensor(idx)

            def t_run(ts=ts, tb=tb, ti=ti):
                torch.index_add(tb, 0, ti, ts)

        rows.append((f"index_add (1e5, 64) -> (1000, 64), {order} indices", d_run, t_run))
    return rows


def lu_rows() -> list:
    r = np.random.default_rng(0)
    rows = []
    for shape in ((256, 256), (512, 512), (64, 32, 32)):
        x = r.standard_normal(shape).astype(np.float32)
        t_fn = (lambda v: torch.linalg.lu_factor(v)[0]) if torch is not None else None
        for label, d, t in _reduced(x, lambda v: dl.linalg.lu_factor(v)[0], t_fn):
            rows.append((f"lu_factor {shape}, {label}", d, t))
    return rows


# ------------------------------------------------------------------ report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per row (median)")
    ap.add_argument("--size", type=int, default=1_000_000, help="values of the (a)/(b) rows")
    ap.add_argument("--rows", default="abcdef", help="row groups to run, e.g. 'cd'")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1e5 values, fewer k")
    ap.add_argument("--cpu-time", action="store_true", help="time 1-thread runs by thread CPU time")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    n = 100_000 if args.quick else args.size
    print(
        f"darklib vs torch on cpu; median of {repeats} alternating repeats; default threads "
        f"darklib {dl.get_num_threads()}"
        + (f", torch {torch.get_num_threads()}" if torch is not None else "")
        + ("; 1-thread runs by thread CPU time" if args.cpu_time else "")
        + (f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    )
    groups = {
        "a": lambda: erf_rows(n),
        "b": lambda: special_rows(n),
        "c": cum_rows,
        "d": lambda: topk_rows(args.quick),
        "e": index_add_rows,
        "f": lu_rows,
    }
    head = (
        f"{'benchmark':50} {'1 thread: dl ms':>15} {'torch ms':>9} {'ratio':>6} {'(best)':>6}"
        f"   {'default: dl ms':>14} {'torch ms':>9} {'ratio':>6} {'(best)':>6}"
    )
    print(head)
    print("-" * len(head))
    for key in args.rows:
        for name, d_run, t_run in groups[key]():
            res = measure(d_run, t_run, repeats, args.cpu_time)
            line = f"{name:50}"
            for threads in (1, "default"):
                (med, best), ref = res[threads]
                width = 15 if threads == 1 else 14
                line += f" {med * 1e3:{width}.2f}"
                if ref is None:
                    line += f" {'-':>9} {'-':>6} {'-':>6}"
                else:
                    line += f" {ref[0] * 1e3:9.2f} {med / ref[0]:5.2f}x {best / ref[1]:5.2f}x"
                line += "  " if threads == 1 else ""
            print(line, flush=True)
    print(
        "ratio: darklib / torch of the medians; (best): of the fastest repeats, which the "
        "load of other processes disturbs least."
    )


if __name__ == "__main__":
    main()
