"""Training-step benchmark: darklib beside PyTorch, from one run, as ratios.

    python bench/train.py [--steps 30] [--growth-steps 1000] [--device cpu|cuda]

Models (issue targets in brackets):
- MLP 784-256-128-10, batch 128                         [time <= 1.2x torch]
- CNN 4 x (conv3x3-BN-ReLU) 3->32->64->128->128, max-pool after blocks 2-4,
  Linear(2048, 10), 32x32 inputs, batch 32              [time <= 1.5x torch]
- WGAN-GP critic 1->32->64 (conv4x4 s2, LayerNorm, LeakyReLU), Linear(3136, 1),
  28x28 inputs, batch 64: a critic step with the gradient penalty, whose gradient of a
  gradient runs through create_graph                    [no target; for information]
A step is forward, cross-entropy, backward and SGD(momentum=0.9) (the critic: its WGAN
loss plus 10 x the penalty, and Adam). Each framework runs in
its own subprocess, so peak memory (resident-set high-water mark above the level after
set-up; on cuda the GPU memory its caching allocator reserved above that level) is measured
per framework [<= 1.5x torch]. The MLP also runs --growth-steps steps
to show that memory does not grow.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(lib, nn, model: str):
    if model == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        ), (128, 1, 28, 28)
    if model == "gp":
        return nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1),
            nn.LayerNorm([64, 7, 7]),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(64 * 49, 1),
        ), (64, 1, 28, 28)
    layers = []
    chans = [3, 32, 64, 128, 128]
    for i in range(4):
        layers += [
            nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
            nn.BatchNorm2d(chans[i + 1]),
            nn.ReLU(),
        ]
        if i >= 1:
            layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), nn.Linear(2048, 10)]
    return nn.Sequential(*layers), (32, 3, 32, 32)


def worker(framework: str, model: str, steps: int, device: str, growth: int) -> dict:
    import numpy as np

    if framework == "torch":
        import torch as lib
        from torch import nn

        lib.backends.cudnn.allow_tf32 = False  # float32 convolutions, as darklib's
    else:
        sys.path.insert(0, ROOT)
        import darklib as lib
        from darklib import nn
    lib.manual_seed(0)
    net, shape = build(lib, nn, model)
    net = net.to(device)
    opt = lib.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal(shape).astype(np.float32), device=device)
    y = lib.tensor(rng.integers(0, 10, shape[0]), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    if model == "gp":
        opt = lib.optim.Adam(net.parameters(), lr=1e-4, betas=(0.0, 0.9))
        fake = lib.tensor(rng.standard_normal(shape).astype(np.float32), device=device)
        alpha = lib.tensor(rng.random((shape[0], 1, 1, 1)).astype(np.float32), device=device)

        def step():  # (the critic's step replaces the classifier's)
            mix = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
            d = net(mix)
            (g,) = lib.autograd.grad(d, mix, lib.ones_like(d), create_graph=True)
            penalty = ((g.reshape(shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
            loss = net(fake).mean() - net(x).mean() + 10 * penalty
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

    sync = (lambda: lib.cuda.synchronize()) if device == "cuda" else (lambda: None)
    current, peak = _rss_mb, _peak_mb
    if device == "cuda":  # GPU memory held by each caching allocator (CuPy's never shrinks)
        current = lambda: lib.cuda.memory_reserved() / 2**20
        peak = current
        if framework == "torch":
            peak = lambda: lib.cuda.max_memory_reserved() / 2**20
    base = current()  # model and data are built; what the steps add is the training memory
    for _ in range(3):
        step()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    out = {"ms": 1000 * float(np.median(times)), "peak_mb": max(peak() - base, 0.0)}
    if growth:
        for i in range(growth):
            step()
            if i == growth // 10:
                early = current()
        out["growth_mb"] = current() - early
    return out


def run(framework: str, model: str, args) -> dict:
    growth = args.growth_steps if model == "mlp" else 0
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        framework,
        "--model",
        model,
        "--steps",
        str(args.steps),
        "--device",
        args.device,
        "--growth-steps",
        str(growth),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{framework} {model} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--growth-steps", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default=None)
    p.add_argument("--worker", default=None)
    args = p.parse_args()
    if args.worker:
        print(
            json.dumps(worker(args.worker, args.model, args.steps, args.device, args.growth_steps))
        )
        return
    targets = {"mlp": 1.2, "cnn": 1.5, "gp": None}
    print(
        f"training step on {args.device}, median of {args.steps} steps "
        "(ratio = darklib / torch; lower is better"
        + ("; torch's cuDNN in float32, TF32 off)" if args.device == "cuda" else ")")
    )
    print(
        f"{'model':6} {'darklib ms':>11} {'torch ms':>9} {'ratio':>6} {'target':>7}   "
        f"{'dl MB':>6} {'torch MB':>8} {'ratio':>6}   {'dl growth MB':>12}"
    )
    for model in ("mlp", "cnn", "gp"):
        d = run("darklib", model, args)
        t = run("torch", model, args)
        mem_ratio = d["peak_mb"] / max(t["peak_mb"], 1e-9)
        growth = f"{d['growth_mb']:12.1f}" if "growth_mb" in d else f"{'-':>12}"
        target = "-" if targets[model] is None else f"{targets[model]:.1f}x"
        print(
            f"{model:6} {d['ms']:11.2f} {t['ms']:9.2f} {d['ms'] / t['ms']:6.2f} "
            f"{target:>7}   {d['peak_mb']:6.1f} {t['peak_mb']:8.1f} "
            f"{mem_ratio:6.2f}   {growth}"
        )
    print(
        "memory targets: peak <= 1.5x torch; no growth over "
        f"{args.growth_steps} MLP steps (a few MB of allocator noise aside)"
    )


if __name__ == "__main__":
    main()
