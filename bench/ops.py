"""Op benchmark: darklib beside PyTorch, from one run, as ratios.

    python bench/ops.py [--repeats 9] [--device cpu|cuda] [--quick]

Rows (targets in brackets, as time ratios darklib / torch):
(a) per-op overhead: a chain of 1,000 small ops (x * 1.0001 + 0.001, tanh, * 0.999) on a
    (16, 16) tensor that requires grad; forward, then backward          [<= 2x torch]
(b) conv2d 3x3, padding 1, batch 32, float32 at ResNet shapes 64->64 @ 32x32 and
    128->128 @ 16x16; forward (no grad), then forward + backward (input, weight and
    bias gradients)                                                     [<= 1.5x torch]
(c) pooling at (32, 64, 32, 32): max and average 2x2 and 3x3/stride 2/padding 1,
    forward + backward                                                  [<= 1.5x torch]
(d) DCGAN-style 4x4/stride 2/padding 1 convolutions, batch 32: conv2d 64->128 @ 32x32
    and conv_transpose2d 128->64 @ 16x16, forward + backward            [<= 1.5x torch]
(e) resampling (interpolate) at (32, 64, 32, 32), forward + backward     [no target]
(f) scaled_dot_product_attention, q = k = v of (32, 8, 128, 64), plain and causal,
    forward + backward                                                  [no target]
(g) normalisation of the same 2M values: layer_norm over rows of 1024, batch_norm
    (training) and group_norm (8 groups) of (32, 64, 32, 32), forward + backward
                                                                        [no target]

darklib and torch runs alternate inside each repeat, so both see the same machine load;
the figures are medians, and "(best)" compares the fastest repeats, which other processes
disturb least. torch keeps its default thread count; on a shared machine its threads
suffer most from a busy core, so the last columns repeat the torch runs with ONE thread
(darklib's pooling is single-threaded NumPy; its convolutions use BLAS threads: run with
``OPENBLAS_NUM_THREADS=1`` to compare those at one thread each too). With
``--device cuda`` darklib runs on the GPU; torch does too where it has CUDA, otherwise its
column is empty. There a timed run calls its step 10 times back to back and waits for the
GPU once (the figure is per call): a single call after the 50 ms pause between runs
measured the GPU's wake-up more than the op. The backward chain of (a), whose graph is
built untimed before each run, is the exception.
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
from darklib.kernels.parallel import blas_kernels

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the GPU machines have no torch: darklib's figures alone
    torch = None

Step = tuple[Callable[[], object], Callable[[object], None]]  # (untimed set-up, timed run)


def _sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        return dl.cuda.synchronize
    return lambda: None


def _torch_sync(device: str) -> Callable[[], None]:
    if device == "cuda" and torch is not None:
        return torch.cuda.synchronize
    return lambda: None


def _untimed_none() -> None:
    """The set-up of a step that needs none (such steps can repeat back to back)."""


GPU_CALLS = 10  # back-to-back calls per timed run on the GPU (see the module docstring)


def measure(dl_step: Step, torch_step: Step | None, repeats: int, device: str) -> tuple:
    """Seconds per step, alternating darklib and torch in every repeat:
    ``((dl median, dl best), (torch median, torch best) or None,
    (torch 1-thread median, best) or None)``; the 1-thread torch runs on the CPU only."""
    runs = [(dl_step, _sync(device), None)]
    if torch_step is not None:
        runs.append((torch_step, _torch_sync(device), None))
        if device == "cpu":
            runs.append((torch_step, _torch_sync(device), 1))
    times: list[list[float]] = [[] for _ in runs]
    default_threads = torch.get_num_threads() if torch is not None else 1
    for rep in range(repeats + 1):  # the first round warms up (caches, kernels, buffers)
        for k, ((setup, run), sync, threads) in enumerate(runs):
            if torch is not None:
                torch.set_num_threads(threads or default_threads)
            state = setup()
            sync()
            # BLAS and OpenMP worker threads spin for a while after their last job; let the
            # previous library's go idle so that they do not steal cores from this run
            time.sleep(0.05)
            calls = GPU_CALLS if device == "cuda" and setup is _untimed_none else 1
            t = time.perf_counter()
            for _ in range(calls):
                run(state)
            sync()
            if rep:
                times[k].append((time.perf_counter() - t) / calls)
    if torch is not None:
        torch.set_num_threads(default_threads)
    stats = [(float(np.median(t)), float(np.min(t))) for t in times]
    return tuple(stats[k] if k < len(stats) else None for k in range(3))


# ------------------------------------------------------------------ (a) per-op overhead

CHAIN_STEPS = 334  # 3 ops per step: 1,002 ops


def _chain(x, tanh):
    for _ in range(CHAIN_STEPS):
        x = tanh(x * 1.0001 + 0.001)
    return x


def overhead_rows(device: str, repeats: int, torch_ok: bool) -> list:
    r = np.random.default_rng(0)
    a = r.standard_normal((16, 16)).astype(np.float32)
    rows = []
    dx = dl.tensor(a, device=device, requires_grad=True)
    fwd_dl = (_untimed_none, lambda _: _chain(dx, dl.tanh))
    bwd_dl = (lambda: _chain(dx, dl.tanh).sum(), lambda y: y.backward())
    fwd_t = bwd_t = None
    if torch_ok:
        tx = torch.tensor(a, device=device, requires_grad=True)
        fwd_t = (_untimed_none, lambda _: _chain(tx, torch.tanh))
        bwd_t = (lambda: _chain(tx, torch.tanh).sum(), lambda y: y.backward())
    rows.append(("1,000 small ops, forward", *measure(fwd_dl, fwd_t, repeats, device), 2.0))
    rows.append(("1,000 small ops, backward", *measure(bwd_dl, bwd_t, repeats, device), 2.0))
    return rows


# ------------------------------------------------------------------ (b) convolution


def conv_rows(device: str, repeats: int, torch_ok: bool, shapes: list) -> list:
    rows = []
    for n, c, hw in shapes:
        rows += _conv_case(device, repeats, torch_ok, n, c, hw)
    return rows


def _conv_case(device: str, repeats: int, torch_ok: bool, n: int, c: int, hw: int) -> list:
    r = np.random.default_rng(1)
    x = r.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (r.standard_normal((c, c, 3, 3)) * (2 / (9 * c)) ** 0.5).astype(np.float32)
    b = np.zeros(c, np.float32)
    g = r.standard_normal((n, c, hw, hw)).astype(np.float32)
    dx, dw, db = (dl.tensor(v, device=device, requires_grad=True) for v in (x, w, b))
    dg = dl.tensor(g, device=device)

    def dl_fwd(_):
        with dl.no_grad():
            DF.conv2d(dx, dw, db, padding=1)

    def dl_fb(_):
        dx.grad = dw.grad = db.grad = None
        DF.conv2d(dx, dw, db, padding=1).backward(dg)

    t_fwd = t_fb = None
    if torch_ok:
        tx, tw, tb = (torch.tensor(v, device=device, requires_grad=True) for v in (x, w, b))
        tg = torch.tensor(g, device=device)

        def t_fwd_run(_):
            with torch.no_grad():
                TF.conv2d(tx, tw, tb, padding=1)

        def t_fb_run(_):
            tx.grad = tw.grad = tb.grad = None
            TF.conv2d(tx, tw, tb, padding=1).backward(tg)

        t_fwd, t_fb = (_untimed_none, t_fwd_run), (_untimed_none, t_fb_run)
    name = f"conv2d {c}->{c} @{hw}x{hw} b{n}"
    return [
        (f"{name}, forward", *measure((_untimed_none, dl_fwd), t_fwd, repeats, device), 1.5),
        (f"{name}, fwd+bwd", *measure((_untimed_none, dl_fb), t_fb, repeats, device), 1.5),
    ]


# ------------------------------------------------------------------ (c, e) pooling, resampling

POOL_CASES = [
    ("max_pool2d 2x2", lambda F, t: F.max_pool2d(t, 2)),
    ("max_pool2d 3x3 s2 p1", lambda F, t: F.max_pool2d(t, 3, 2, 1)),
    ("avg_pool2d 2x2", lambda F, t: F.avg_pool2d(t, 2)),
    ("avg_pool2d 3x3 s2 p1", lambda F, t: F.avg_pool2d(t, 3, 2, 1)),
]
RESAMPLE_CASES = [
    ("interpolate nearest x2", lambda F, t: F.interpolate(t, scale_factor=2)),
    (
        "interpolate bilinear x2",
        lambda F, t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False),
    ),
]

# (32, 64, 32, 32) as (batch 32, 8 heads, 128 positions, 64 features)
ATTENTION_CASES = [
    (
        f"attention (32,8,128,64){' causal' if causal else ''}",
        lambda F, t, causal=causal: F.scaled_dot_product_attention(
            *(t.reshape(32, 8, 128, 64),) * 3, is_causal=causal
        ),
    )
    for causal in (False, True)
]

NORM_CASES = [
    ("layer_norm (2048, 1024)", lambda F, t: F.layer_norm(t.reshape(2048, 1024), (1024,))),
    ("batch_norm training (32,64,32,32)", lambda F, t: F.batch_norm(t, None, None, training=True)),
    ("group_norm 8 groups (32,64,32,32)", lambda F, t: F.group_norm(t, 8)),
]


def unary_rows(device: str, repeats: int, torch_ok: bool, cases: list, target) -> list:
    r = np.random.default_rng(2)
    x = r.standard_normal((32, 64, 32, 32)).astype(np.float32)
    rows = []
    for name, fn in cases:
        dx = dl.tensor(x, device=device, requires_grad=True)

        def dl_run(_, fn=fn, dx=dx):
            dx.grad = None
            y = fn(DF, dx)
            y.backward(dl.ones_like(y))

        t_fb = None
        if torch_ok:
            tx = torch.tensor(x, device=device, requires_grad=True)

            def t_run(_, fn=fn, tx=tx):
                tx.grad = None
                y = fn(TF, tx)
                y.backward(torch.ones_like(y))

            t_fb = (_untimed_none, t_run)
        rows.append(
            (f"{name}, fwd+bwd", *measure((_untimed_none, dl_run), t_fb, repeats, device), target)
        )
    return rows


# ------------------------------------------------------------------ (d) DCGAN convolutions


def dcgan_rows(device: str, repeats: int, torch_ok: bool) -> list:
    r = np.random.default_rng(3)
    rows = []
    for transposed, c_in, c_out, hw in ((False, 64, 128, 32), (True, 128, 64, 16)):
        x = r.standard_normal((32, c_in, hw, hw)).astype(np.float32)
        wshape = (c_in, c_out, 4, 4) if transposed else (c_out, c_in, 4, 4)
        w = (r.standard_normal(wshape) * 0.05).astype(np.float32)
        b = np.zeros(c_out, np.float32)
        ohw = hw * 2 if transposed else hw // 2
        g = r.standard_normal((32, c_out, ohw, ohw)).astype(np.float32)
        name = "conv_transpose2d" if transposed else "conv2d"
        dfn = DF.conv_transpose2d if transposed else DF.conv2d
        dx, dw, db = (dl.tensor(v, device=device, requires_grad=True) for v in (x, w, b))
        dg = dl.tensor(g, device=device)

        def dl_run(_, dfn=dfn, dx=dx, dw=dw, db=db, dg=dg):
            dx.grad = dw.grad = db.grad = None
            dfn(dx, dw, db, 2, 1).backward(dg)

        t_fb = None
        if torch_ok:
            tfn = TF.conv_transpose2d if transposed else TF.conv2d
            tx, tw, tb = (torch.tensor(v, device=device, requires_grad=True) for v in (x, w, b))
            tg = torch.tensor(g, device=device)

            def t_run(_, tfn=tfn, tx=tx, tw=tw, tb=tb, tg=tg):
                tx.grad = tw.grad = tb.grad = None
                tfn(tx, tw, tb, 2, 1).backward(tg)

            t_fb = (_untimed_none, t_run)
        label = f"{name} 4x4 s2 {c_in}->{c_out} @{hw}x{hw} b32, fwd+bwd"
        rows.append((label, *measure((_untimed_none, dl_run), t_fb, repeats, device), 1.5))
    return rows


# ------------------------------------------------------------------ report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed repeats per row (median)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, skip extras")
    ap.add_argument("--rows", default="abcdefg", help="row groups to run, e.g. 'cd' (default: all)")
    args = ap.parse_args()
    device = args.device
    if device == "cuda" and not dl.cuda.is_available():
        sys.exit("bench/ops.py: --device cuda needs CuPy and a GPU")
    torch_ok = torch is not None and (device == "cpu" or torch.cuda.is_available())
    if torch_ok and device == "cuda":
        # like for like: cuDNN convolves in TF32 by default, darklib's GEMMs in float32
        torch.backends.cudnn.allow_tf32 = False
    repeats = 3 if args.quick else args.repeats
    shapes = [(32, 64, 32), (32, 128, 16)]

    print(
        f"darklib vs torch on {device}; median of {repeats} alternating repeats"
        + (f"; torch threads {torch.get_num_threads()}" if torch is not None else "")
        + f"; darklib's OpenBLAS kernels {blas_kernels()}"
        + (f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
        + ("; torch's cuDNN in float32 (TF32 off)" if torch_ok and device == "cuda" else "")
    )
    groups = {
        "a": lambda: overhead_rows(device, repeats, torch_ok),
        "b": lambda: conv_rows(device, repeats, torch_ok, shapes),
        "c": lambda: unary_rows(device, repeats, torch_ok, POOL_CASES, 1.5),
        "d": lambda: dcgan_rows(device, repeats, torch_ok),
        "e": lambda: unary_rows(device, repeats, torch_ok, RESAMPLE_CASES, None),
        "f": lambda: unary_rows(device, repeats, torch_ok, ATTENTION_CASES, None),
        "g": lambda: unary_rows(device, repeats, torch_ok, NORM_CASES, None),
    }
    rows = []
    for key in args.rows:
        if key in "efg" and args.quick:
            continue
        rows += groups[key]()

    head = (
        f"{'benchmark':52} {'darklib ms':>10} {'torch ms':>9} {'ratio':>7} {'(best)':>7} "
        f"{'target':>7}      {'torch1 ms':>9} {'ratio1':>7} {'(best)':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, (med, best), ref, ref1, target in rows:
        line = f"{name:52} {med * 1e3:10.2f} "
        if ref is None:
            line += f"{'-':>9} {'-':>7} {'-':>7}"
        else:
            ratio = med / ref[0]
            line += f"{ref[0] * 1e3:9.2f} {ratio:6.2f}x {best / ref[1]:6.2f}x"
            if target is not None:
                verdict = "ok" if min(ratio, best / ref[1]) <= target else "MISSED"
                line += f" {'<=' + format(target, '.1f') + 'x':>7} {verdict:6}"
            else:
                line += " " * 15
            if ref1 is not None:
                line += f"{ref1[0] * 1e3:9.2f} {med / ref1[0]:6.2f}x {best / ref1[1]:6.2f}x"
        print(line)
    print(
        "ratio: darklib / torch of the medians; (best): of the fastest repeats, which the "
        "load of other processes disturbs least; a target counts as met ('ok') when either "
        "is within it. torch1, ratio1: against torch with one thread."
    )


if __name__ == "__main__":
    main()
