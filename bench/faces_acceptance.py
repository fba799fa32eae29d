"""Acceptance run: YOLO face detection with darklib on real faces (the Dark tutorial's last
sample), on the CPU.

    python bench/faces_acceptance.py [--minutes 4] [--size 128] [--width 8] [--batch-size 16]
                                     [--target 0.9] [--test-scenes 300]

The real face crops of ``../shared/datasets/mtfl-faces-80.tar.gz`` (MTFL, 80x80, relative to
the project root) are pasted at random positions and sizes (24 to 64 pixels, one to three
per scene, overlapping at most a little) onto procedural backgrounds (colour gradients,
blurred noise and clutter of rectangles and discs), which gives exact face boxes, as the
datasets README suggests. Training scenes are drawn afresh for every batch from the 10,000
training crops; the test scenes (fixed seed) from the 2,995 test crops, faces never seen in
training. The model is ``darklib.vision.models.YOLOv3`` (two scales, strides 16 and 32)
trained with its ``YOLOLoss`` and Adam under a OneCycle schedule for ``--minutes``.

It prints the loss as it trains, then the test scenes' average precision at IoU 0.5 (all-point
interpolated, as VOC and COCO compute it) and the recall at a 0.5 score, and exits 1 unless
the AP reaches ``--target``. Where the shared datasets folder is absent it says so and exits 0.

The archive is extracted once into ``<tempdir>/darkstudio-datasets/mtfl-faces-80`` (never
into the repository).
"""

from __future__ import annotations

import argparse
import math
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
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

import darklib as dl  # noqa: E402
from darklib.optim.lr_scheduler import OneCycleLR  # noqa: E402
from darklib.vision.models import YOLOv3  # noqa: E402
from darklib.vision.ops import box_iou  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
ARCHIVE = "mtfl-faces-80"
# tarfile's "data" filter (3.11.4+, backported) refuses links and paths leaving the folder
_SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
# anchors (pixels) for faces of 24-64 pixels: three per scale, strides 16 and 32
ANCHORS = (((24, 24), (32, 32), (40, 40)), ((48, 48), (56, 56), (64, 64)))


def extract(archive: Path) -> Path:
    """The extracted ``mtfl-faces-80`` folder, extracted once per machine outside the
    repository (into a temporary folder first, moved into place whole)."""
    base = Path(tempfile.gettempdir()) / "darkstudio-datasets"
    root = base / ARCHIVE
    if (root / "train.txt").is_file() and (root / "test.txt").is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{ARCHIVE}-", dir=base))
    try:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, **_SAFE)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp / ARCHIVE, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def mtfl_root() -> Path | None:
    """The extracted MTFL folder, or None (and a line saying so) where the shared datasets
    are absent."""
    archive = SHARED / f"{ARCHIVE}.tar.gz"
    if not archive.is_file():
        print(f"{archive} not found: nothing to check (the shared datasets are not here)")
        return None
    return extract(archive)


def load_crops(root: Path, split: str) -> list[Image.Image]:
    """The face crops listed in ``split``.txt, as RGB images."""
    crops = []
    with open(root / f"{split}.txt", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                with Image.open(root / parts[0].replace("\\", "/")) as im:
                    crops.append(im.convert("RGB").copy())
    return crops


def background(rng: np.random.Generator, size: int) -> Image.Image:
    """A procedural scene: a colour gradient, blurred noise and a clutter of shapes."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
    img = c0 + (c1 - c0) * (t - t.min()) / (np.ptp(t) + 1e-6)
    noise = Image.fromarray(rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.uint8))
    img = 0.7 * img + 0.3 * np.asarray(noise.resize((size, size), Image.BICUBIC), np.float64)
    scene = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(scene)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(6, size // 3, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=colour)
    return scene.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))


def scene(rng: np.random.Generator, crops: list, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene (3, size, size) float32 in [0, 1] and its face boxes (M, 4)."""
    img = background(rng, size)
    boxes: list[list[float]] = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(10):  # a place that overlaps the other faces at most a little
            s = int(rng.integers(24, 65))
            x, y = (int(v) for v in rng.integers(0, size - s + 1, 2))
            box = [x, y, x + s, y + s]
            if not boxes or box_iou_np(np.asarray([box]), np.asarray(boxes)).max() < 0.2:
                break
        else:
            continue
        face = crops[int(rng.integers(len(crops)))].resize((s, s), Image.BILINEAR)
        img.paste(face, (x, y))
        boxes.append([float(v) for v in box])
    arr = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
    return arr, np.asarray(boxes, np.float32).reshape(-1, 4)


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def batch(rng: np.random.Generator, crops: list, size: int, n: int) -> tuple:
    scenes = [scene(rng, crops, size) for _ in range(n)]
    x = dl.tensor(np.stack([s[0] for s in scenes]))
    targets = [
        {"boxes": dl.tensor(b), "labels": dl.zeros(len(b), dtype=dl.int64)} for _, b in scenes
    ]
    return x, targets


def average_precision(detections: list, truths: list, iou: float = 0.5) -> tuple[float, float]:
    """All-point interpolated AP at ``iou`` over all images, and the recall at score 0.5."""
    scored, total = [], sum(len(t) for t in truths)
    recalled = 0
    for det, gt in zip(detections, truths):
        boxes, scores = det["boxes"].numpy(), det["scores"].numpy()
        used = np.zeros(len(gt), bool)
        for k in np.argsort(-scores):
            hit = False
            if len(gt):
                overlaps = box_iou_np(boxes[k : k + 1], gt)[0]
                j = int(overlaps.argmax())
                if overlaps[j] >= iou and not used[j]:
                    used[j] = hit = True
                    recalled += scores[k] >= 0.5
            scored.append((float(scores[k]), hit))
    scored.sort(key=lambda s: -s[0])
    hits = np.cumsum([h for _, h in scored]) if scored else np.zeros(0)
    precision = hits / np.arange(1, len(scored) + 1) if scored else np.zeros(0)
    recall = hits / max(total, 1)
    # precision made monotone from the right, integrated over recall
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1])), recalled / max(
        total, 1
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training time")
    ap.add_argument("--size", type=int, default=128, help="scene size (a multiple of 32)")
    ap.add_argument("--width", type=int, default=8, help="YOLOv3's first-layer channels")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--target", type=float, default=0.9, help="AP@0.5 to reach")
    ap.add_argument("--test-scenes", type=int, default=300)
    args = ap.parse_args()
    start = time.perf_counter()
    root = mtfl_root()
    if root is None:
        return
    train_crops, test_crops = load_crops(root, "train"), load_crops(root, "test")
    print(
        f"{len(train_crops)} training and {len(test_crops)} test faces "
        f"({time.perf_counter() - start:.0f} s to read)"
    )
    dl.manual_seed(0)
    rng = np.random.default_rng(0)
    model = YOLOv3(num_classes=1, anchors=ANCHORS, width=args.width)
    loss_fn = model.loss_fn()
    opt = dl.optim.Adam(model.parameters(), lr=args.lr, weight_decay=5e-4)
    # the schedule's length from the speed of the first steps
    t0, probe, step = time.perf_counter(), 5, 0
    sched = None
    budget = args.minutes * 60
    while True:
        x, targets = batch(rng, train_crops, args.size, args.batch_size)
        parts = loss_fn.parts(model(x), targets)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        step += 1
        if sched is None and step == probe:
            per_step = (time.perf_counter() - t0) / probe
            total = max(probe + 1, int(budget / per_step))
            sched = OneCycleLR(opt, max_lr=args.lr, total_steps=total - probe)
            print(f"{per_step * 1000:.0f} ms a step: {total} steps in {args.minutes:g} min")
        elif sched is not None:
            if step >= total:
                break
            sched.step()
        if step % 100 == 0 or step == 1:
            print(
                f"step {step:5d}  loss {float(parts['loss']):7.3f}  box "
                f"{float(parts['box']):6.3f}  obj {float(parts['obj']):6.3f}  "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    model.eval()
    test_rng = np.random.default_rng(12345)
    detections, truths = [], []
    for i in range(0, args.test_scenes, 32):
        scenes = [
            scene(test_rng, test_crops, args.size) for _ in range(min(32, args.test_scenes - i))
        ]
        x = dl.tensor(np.stack([s[0] for s in scenes]))
        detections += model.detect(x, conf_threshold=0.01, iou_threshold=0.45)
        truths += [s[1] for s in scenes]
    ap50, recall = average_precision(detections, truths)
    ap75, _ = average_precision(detections, truths, iou=0.75)
    mean_iou = np.mean(
        [
            float(box_iou(d["boxes"][:1], dl.tensor(t)).max())
            if len(d["boxes"]) and len(t)
            else 0.0
            for d, t in zip(detections, truths)
        ]
    )
    took = time.perf_counter() - start
    print(
        f"test: {sum(len(t) for t in truths)} faces in {len(truths)} scenes; AP@0.5 "
        f"{ap50:.3f} (AP@0.75 {ap75:.3f}), recall at score 0.5 {recall:.3f}, best box IoU "
        f"{mean_iou:.3f} "
        f"({took / 60:.1f} min in all)"
    )
    if ap50 < args.target or not math.isfinite(ap50):
        print(f"FAILED: AP@0.5 {ap50:.3f} < target {args.target}")
        sys.exit(1)
    print(f"ok: AP@0.5 {ap50:.3f} >= {args.target}")


if __name__ == "__main__":
    main()
