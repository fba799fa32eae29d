"""Acceptance run: a small CNN trained with darklib on real CIFAR-10, airplane vs automobile.

    python bench/cifar_acceptance.py [--epochs 8] [--width 16] [--batch-size 128]
                                     [--target 0.90] [--time-limit 600] [--workers 2]

Issue "darklib data and vision datasets": the real JPEG images from
``../shared/datasets/cifar10-jpg.tar.gz`` (relative to the project root) are read with
``darklib.vision.datasets.ImageFolder``, augmented with ``RandomCrop(32, padding=4)`` and
``RandomHorizontalFlip`` and normalised (``darklib.vision.transforms``), and batched by
``darklib.utils.data.DataLoader`` (background threads). The model is a VGG-style stack of
four conv3x3-BN-ReLU blocks (max-pool after the first three, global max-pool after the
last) and one linear layer, trained with SGD (Nesterov momentum, weight decay) under a
OneCycle schedule, on the CPU.

It prints per-epoch train loss and accuracy, test accuracy (the 2,000 test images of the
two classes) and elapsed time, and exits 1 unless the final test accuracy reaches
``--target`` within ``--time-limit`` seconds (wall time of the whole run, data preparation
included). Where the shared datasets folder is absent it says so and exits 0.

The archive is extracted once, only the two classes, into
``<tempdir>/darkstudio-datasets/cifar10-jpg`` (the folder the dataset tests use), never into
the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import darklib as dl  # noqa: E402
import darklib.nn as nn  # noqa: E402
from darklib.optim import SGD  # noqa: E402
from darklib.optim.lr_scheduler import OneCycleLR  # noqa: E402
from darklib.utils.data import DataLoader  # noqa: E402
from darklib.vision import transforms as T  # noqa: E402
from darklib.vision.datasets import ImageFolder  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
ARCHIVE = "cifar10-jpg"
CLASSES = ("airplane", "automobile")
EXPECTED = {"train": 5000, "test": 1000}  # images per class
# CIFAR-10 channel statistics (RGB, in [0, 1])
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# tarfile's "data" filter (3.11.4+, backported) refuses links and paths leaving the folder
_SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _complete(folder: Path, count: int) -> bool:
    return folder.is_dir() and sum(1 for _ in folder.iterdir()) >= count


def extract_two_classes(archive: Path) -> Path:
    """The extracted ``cifar10-jpg`` folder, holding at least train/ and test/ of the two
    classes: extracted once per machine outside the repository, class folder by class
    folder (each moved into place whole, so an interrupted run leaves no half folder)."""
    base = Path(tempfile.gettempdir()) / "darkstudio-datasets"
    root = base / ARCHIVE
    missing = [
        (split, cls)
        for split, count in EXPECTED.items()
        for cls in CLASSES
        if not _complete(root / split / cls, count)
    ]
    if not missing:
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{ARCHIVE}-", dir=base))
    try:
        wanted = {f"{ARCHIVE}/{split}/{cls}" for split, cls in missing}
        with tarfile.open(archive) as tf:
            for m in tf:
                if m.isfile() and os.path.dirname(m.name) in wanted:
                    tf.extract(m, tmp, **_SAFE)
        for split, cls in missing:
            target = root / split / cls
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / ARCHIVE / split / cls, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def two_classes(root: Path, split: str, transform: T.Transform) -> ImageFolder:
    """ImageFolder over ``root/split`` keeping only the two classes (indices 0 and 1: the
    class folders sort alphabetically and these two come first)."""
    keep = tuple(os.sep + c + os.sep for c in CLASSES)
    ds = ImageFolder(
        root / split, transform=transform, is_valid_file=lambda p: any(k in p for k in keep)
    )
    assert ds.classes[:2] == list(CLASSES), ds.classes
    return ds


def conv_bn(cin: int, cout: int) -> list:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def build_model(width: int) -> nn.Module:
    w = width
    return nn.Sequential(
        *conv_bn(3, w),
        nn.MaxPool2d(2),  # 16x16
        *conv_bn(w, 2 * w),
        nn.MaxPool2d(2),  # 8x8
        *conv_bn(2 * w, 4 * w),
        nn.MaxPool2d(2),  # 4x4
        *conv_bn(4 * w, 8 * w),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * w, len(CLASSES)),
    )


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with dl.no_grad():
        for x, y in loader:
            pred = model(x).argmax(1)
            correct += int((pred == y).sum().item())
            total += len(y)
    model.train()
    return correct / total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--width", type=int, default=16, help="channels of the first block")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1, help="OneCycle peak learning rate")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader threads")
    ap.add_argument("--target", type=float, default=0.90, help="test accuracy to reach")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds, whole run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    archive = SHARED / f"{ARCHIVE}.tar.gz"
    if not archive.is_file():
        print(f"cifar_acceptance: skipped, {archive} is absent")
        return 0
    root = extract_two_classes(archive)
    norm = T.Normalize(MEAN, STD)
    train_tf = T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), norm]
    )
    train = two_classes(root, "train", train_tf)
    test = two_classes(root, "test", T.Compose([T.ToTensor(), norm]))
    print(
        f"data: {len(train)} train / {len(test)} test images of {', '.join(CLASSES)} from "
        f"{root} ({time.perf_counter() - t0:.1f} s); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    dl.manual_seed(args.seed)
    model = build_model(args.width)
    train_loader = DataLoader(
        train,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        seed=args.seed,
    )
    test_loader = DataLoader(test, batch_size=500, num_workers=args.workers)
    opt = SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: 4 conv-BN-ReLU blocks, width {args.width}, {n_params:,} parameters; "
        f"SGD nesterov + OneCycle(max_lr={args.lr}), batch {args.batch_size}, "
        f"{args.epochs} epochs"
    )

    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        loss_sum = np.float64(0.0)
        correct = seen = 0
        for x, y in train_loader:
            out = model(x)
            loss = loss_fn(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            correct += int((out.argmax(1) == y).sum().item())
            seen += len(y)
        acc = evaluate(model, test_loader)
        print(
            f"epoch {epoch:2d}: train loss {loss_sum / seen:.4f}, train acc "
            f"{correct / seen:.4f}, test acc {acc:.4f}, elapsed "
            f"{time.perf_counter() - t0:6.1f} s",
            flush=True,
        )
    wall = time.perf_counter() - t0
    ok = acc >= args.target and wall <= args.time_limit
    print(
        f"result: test accuracy {acc:.4f} (target {args.target:.2f}) in {wall:.1f} s "
        f"(limit {args.time_limit:.0f} s; load average now {os.getloadavg()[0]:.1f}): "
        + ("PASSED" if ok else "FAILED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
