"""Data pipeline throughput: darklib's DataLoader beside torch's, images per second.

CIFAR-10 32x32 images (the JPEG test split from ../shared/datasets when present, else the
procedural SyntheticObjects) through RandomCrop(32, padding=4) + RandomHorizontalFlip +
ToTensor + Normalize, batch 128, shuffled, with 0 and 2 workers. torch's column uses
torch.utils.data.DataLoader with the same augmentation written in plain numpy (torchvision
is not a dependency). Two sources: images already in memory, and JPEG files decoded per
sample (ImageFolder). Target: at least 5,000 images/s with 2 workers.

    python bench/data.py [--epochs 2] [--limit 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from darklib.utils.data import DataLoader, Dataset
from darklib.vision import transforms as T
from darklib.vision.datasets import ImageFolder, SyntheticObjects, read_image

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# tarfile's "data" filter (3.11.4+, backported) refuses links and paths leaving the folder
_SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def cifar_test_folder() -> Path | None:
    """The CIFAR-10 JPEG test split, extracted once outside the repository."""
    archive = SHARED / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        return None
    base = Path(tempfile.gettempdir()) / "darkstudio-datasets"
    target = base / "cifar10-jpg" / "test"
    if not (base / "cifar10-jpg.bench.done").exists() and not target.is_dir():
        base.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tf:
            for m in tf:
                parts = Path(m.name).parts
                if m.isfile() and len(parts) > 2 and parts[1] == "test":
                    tf.extract(m, base, **_SAFE)
        (base / "cifar10-jpg.bench.done").write_text("ok")
    return target


class InMemory(Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = self.images[i]
        return (img if self.transform is None else self.transform(img)), int(self.labels[i])


def darklib_transform() -> T.Compose:
    return T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


def numpy_transform(rng: np.random.Generator):
    """The same augmentation in plain numpy, for torch's DataLoader."""
    mean = np.asarray(MEAN, np.float32)[:, None, None]
    inv = 1.0 / np.asarray(STD, np.float32)[:, None, None]

    def f(img: np.ndarray) -> np.ndarray:
        padded = np.pad(img, ((4, 4), (4, 4), (0, 0)))
        y, x = rng.integers(0, 9, 2)
        out = padded[y : y + 32, x : x + 32]
        if rng.random() < 0.5:
            out = out[:, ::-1]
        chw = out.transpose(2, 0, 1).astype(np.float32) / 255.0
        return (chw - mean) * inv

    return f


def rate(loader, epochs: int) -> float:
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for x, _y in loader:
            n += x.shape[0]
    return n / (time.perf_counter() - t0)


def bench_darklib(ds: Dataset, workers: int, epochs: int) -> float:
    loader = DataLoader(ds, batch_size=128, shuffle=True, num_workers=workers, seed=0)
    rate(DataLoader(ds, batch_size=128, sampler=range(256)), 1)  # warm up
    return rate(loader, epochs)


def bench_torch(make_ds, workers: int, epochs: int) -> float | None:
    try:
        import torch
        import torch.utils.data as tud
    except ImportError:
        return None

    class TorchDS(tud.Dataset):
        def __init__(self):
            self.inner = make_ds()
            self.tf = None

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            if self.tf is None:  # one stream per worker process
                self.tf = numpy_transform(np.random.default_rng(i))
            img, y = self.inner[i]
            return torch.from_numpy(np.ascontiguousarray(self.tf(img))), y

    torch.set_num_threads(1)
    loader = tud.DataLoader(
        TorchDS(), batch_size=128, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    if workers:
        for _ in loader:  # start the worker processes outside the timing
            break
    return rate(loader, epochs)


class JpegFiles:
    """ImageFolder-like source for torch: decode per sample with OpenCV."""

    def __init__(self, folder: ImageFolder):
        self.samples = folder.samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        p, y = self.samples[i]
        return read_image(p), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=10000, help="images per epoch")
    args = ap.parse_args()

    folder = cifar_test_folder()
    if folder is not None:
        jpeg = ImageFolder(folder)
        idx = np.random.default_rng(0).permutation(len(jpeg))[: args.limit]
        jpeg.samples = [jpeg.samples[i] for i in idx]
        images = np.stack([read_image(p) for p, _ in jpeg.samples])
        labels = np.asarray([y for _, y in jpeg.samples])
        source = f"CIFAR-10 JPEG test split ({len(images)} images)"
    else:
        jpeg = None
        objs = SyntheticObjects(size=args.limit)
        images, labels = objs.data, objs.targets
        source = f"SyntheticObjects ({len(images)} images; ../shared/datasets absent)"
    print(
        f"data: {source}, batch 128, RandomCrop(32, padding=4) + RandomHorizontalFlip + "
        f"ToTensor + Normalize, {args.epochs} epochs, {os.cpu_count()} CPUs"
    )
    print(f"{'source':<12}{'workers':>8}{'darklib img/s':>16}{'torch img/s':>14}{'ratio':>8}")
    cases = [("in memory", lambda: InMemory(images, labels))]
    if jpeg is not None:
        cases.append(("JPEG files", lambda: JpegFiles(jpeg)))
    results: dict = {}
    for name, _make in cases:  # darklib first, so torch's threads cannot slow it down
        for workers in (0, 2):
            if name == "in memory":
                ds = InMemory(images, labels, darklib_transform())
            else:
                ds = ImageFolder(folder, transform=darklib_transform())
                ds.samples = jpeg.samples
            results[(name, workers)] = bench_darklib(ds, workers, args.epochs)
    for name, make in cases:
        for workers in (0, 2):
            d = results[(name, workers)]
            t = bench_torch(make, workers, args.epochs)
            ts = "skipped" if t is None else f"{t:,.0f}"
            ratio = "" if t is None else f"{d / t:.2f}x"
            print(f"{name:<12}{workers:>8}{d:>16,.0f}{ts:>14}{ratio:>8}", flush=True)
    best = results[("in memory", 2)]
    verdict = "meets" if best >= 5000 else "MISSES"
    print(f"target: >= 5,000 images/s with 2 workers (in memory): {best:,.0f} ({verdict})")


if __name__ == "__main__":
    main()
