"""Recurrent-layer benchmark: darklib beside PyTorch, from one run, as ratios.

    python bench/rnn.py [--repeats 9] [--device cpu|cuda] [--quick]

Rows (time ratios darklib / torch, no targets yet):
LSTM, 2 layers, batch 32, sequence 64, input 128, hidden 256, float32: forward under
    no_grad, then forward + backward (gradients of the input and of every parameter, zero
    initial states); the same for a GRU of those sizes.

Timing as in bench/ops.py (its ``measure``): darklib and torch alternate inside each
repeat, medians and "(best)" of the fastest repeats, and the torch runs repeated with ONE
thread in the last columns (on the CPU).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ops import _untimed_none, measure, torch  # bench/ops.py: the shared timing loop

import darklib as dl

BATCH, SEQ, INPUT, HIDDEN, LAYERS = 32, 64, 128, 256, 2


def _pair(kind: str, device: str, torch_ok: bool) -> tuple:
    """The layer in both libraries with the same weights, and one input for each."""
    d_mod = getattr(dl.nn, kind)(INPUT, HIDDEN, LAYERS).to(device)
    x = np.random.default_rng(0).standard_normal((SEQ, BATCH, INPUT)).astype(np.float32)
    dx = dl.tensor(x, device=device, requires_grad=True)
    if not torch_ok:
        return d_mod, dx, None, None
    t_mod = getattr(torch.nn, kind)(INPUT, HIDDEN, LAYERS).to(device)
    d_mod.load_state_dict(
        {k: dl.tensor(v.detach().cpu().numpy()) for k, v in t_mod.state_dict().items()}
    )
    return d_mod, dx, t_mod, torch.tensor(x, device=device, requires_grad=True)


def _rows(kind: str, device: str, repeats: int, torch_ok: bool) -> list:
    d_mod, dx, t_mod, tx = _pair(kind, device, torch_ok)

    def d_fwd(_):
        with dl.no_grad():
            d_mod(dx)

    def d_train(_):
        d_mod.zero_grad()
        dx.grad = None
        out, _h = d_mod(dx)
        out.sum().backward()

    fwd_t = train_t = None
    if torch_ok:

        def t_fwd(_):
            with torch.no_grad():
                t_mod(tx)

        def t_train(_):
            t_mod.zero_grad()
            tx.grad = None
            out, _h = t_mod(tx)
            out.sum().backward()

        fwd_t, train_t = (_untimed_none, t_fwd), (_untimed_none, t_train)
    shape = f"{LAYERS} layers, ({SEQ}, {BATCH}, {INPUT}) -> {HIDDEN}"
    return [
        (f"{kind} {shape}, forward", *measure((_untimed_none, d_fwd), fwd_t, repeats, device)),
        (f"{kind} {shape}, fwd+bwd", *measure((_untimed_none, d_train), train_t, repeats, device)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed repeats per row (median)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="3 repeats, LSTM only")
    args = ap.parse_args()
    device = args.device
    if device == "cuda" and not dl.cuda.is_available():
        sys.exit("bench/rnn.py: --device cuda needs CuPy and a GPU")
    torch_ok = torch is not None and (device == "cpu" or torch.cuda.is_available())
    repeats = 3 if args.quick else args.repeats
    print(
        f"darklib vs torch on {device}; median of {repeats} alternating repeats"
        + (f"; torch threads {torch.get_num_threads()}" if torch is not None else "")
        + (f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    )
    rows = _rows("LSTM", device, repeats, torch_ok)
    if not args.quick:
        rows += _rows("GRU", device, repeats, torch_ok)
    head = (
        f"{'benchmark':52} {'darklib ms':>10} {'torch ms':>9} {'ratio':>7} {'(best)':>7}"
        f"      {'torch1 ms':>9} {'ratio1':>7} {'(best)':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, (med, best), ref, ref1 in rows:
        line = f"{name:52} {med * 1e3:10.2f} "
        if ref is None:
            line += f"{'-':>9} {'-':>7} {'-':>7}"
        else:
            line += f"{ref[0] * 1e3:9.2f} {med / ref[0]:6.2f}x {best / ref[1]:6.2f}x      "
            if ref1 is not None:
                line += f"{ref1[0] * 1e3:9.2f} {med / ref1[0]:6.2f}x {best / ref1[1]:6.2f}x"
        print(line)
    print(
        "ratio: darklib / torch of the medians; (best): of the fastest repeats. torch1, "
        "ratio1: against torch with one thread."
    )


if __name__ == "__main__":
    main()
