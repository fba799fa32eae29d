"""Procedural datasets: the studio's embedded defaults, generated from a seed and cached.

Each class draws its samples with one numpy Generator seeded from ``(seed, split, kind)``,
so the same arguments give the same data on every machine; the arrays are cached as npz
under :func:`cache_dir` keyed by (kind, version, seed, size, split, options).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from darklib.vision.datasets._cache import cached_arrays
from darklib.vision.datasets._common import VisionDataset

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
_KIND_IDS = {"glyphs": 1, "objects": 2, "faces": 3, "shapes": 4}


class _Procedural(VisionDataset):
    kind = ""
    version = 1
    default_size = (1000, 200)

    def __init__(
        self,
        train: bool = True,
        size: int | None = None,
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        cache: bool = True,
        _options: dict | None = None,
    ):
        super().__init__(transform, target_transform)
        options = _options or {}
        n = self.default_size[0 if train else 1] if size is None else int(size)
        if n <= 0:
            raise ValueError(f"{type(self).__name__}: size must be positive, got {size}")
        self.train, self.seed, self.size = train, int(seed), n
        opts = "".join(f"-{k}{v}" for k, v in sorted(options.items()))
        split = "train" if train else "test"
        key = f"{self.kind}-v{self.version}-s{self.seed}-n{n}-{split}{opts}"
        rng = np.random.default_rng([self.seed, 0 if train else 1, _KIND_IDS[self.kind]])
        self.arrays = cached_arrays(key, lambda: self._generate(n, rng), use_cache=cache)

    def _generate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.size


# ----------------------------------------------------------------------------- glyphs
def _jitter_matrix(
    rng: np.random.Generator,
    size: int,
    rot: float,
    shear: float,
    scale: tuple[float, float],
    shift: float,
) -> np.ndarray:
    a = math.radians(rng.uniform(-rot, rot))
    s = rng.uniform(*scale)
    sh = rng.uniform(-shear, shear)
    A = (
        s
        * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        @ np.array([[1.0, sh], [0.0, 1.0]])
    )
    c = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    t = rng.uniform(-shift, shift, 2)
    return np.hstack([A, (c + t - A @ c)[:, None]])


class SyntheticGlyphs(_Procedural):
    """28x28 grey glyphs of the digits 0-9 in 10 classes, standing in for FashionMNIST.

    Random Hershey fonts, stroke widths, affine jitter, blur, occluding strokes and noise
    make it hard enough that an MLP does not reach 100%. A sample is
    ``(image 28x28x1 uint8, label)``.

    Args:
        train: the training split (20,000 by default) or the test split (5,000).
        size: number of samples (overrides the default).
        seed: the data's seed.
        transform: applied to the image.
        target_transform: applied to the label.
        cache: keep the generated arrays in the cache folder.
    """

    kind = "glyphs"
    classes = [str(i) for i in range(10)]
    default_size = (20000, 5000)

    def _generate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        labels = rng.integers(0, 10, n)
        images = np.zeros((n, 28, 28), np.uint8)
        canvas = np.zeros((28, 28), np.uint8)
        fonts = rng.integers(0, len(_FONTS), n)
        italic = rng.random(n) < 0.3
        thick = rng.integers(1, 4, n)
        occlude = rng.random(n) < 0.35
        for i in range(n):
            canvas[:] = 0
            font = _FONTS[fonts[i]] | (cv2.FONT_ITALIC if italic[i] else 0)
            text = str(labels[i])
            (tw, th), _ = cv2.getTextSize(text, font, 1.0, int(thick[i]))
            scale = rng.uniform(16.0, 22.0) / max(th, tw, 1)
            (tw, th), _base = cv2.getTextSize(text, font, scale, int(thick[i]))
            org = (round((28 - tw) / 2), round((28 + th) / 2))
            cv2.putText(canvas, text, org, font, scale, 255, int(thick[i]), cv2.LINE_AA)
            if occlude[i]:
                p = rng.integers(0, 28, 4)
                cv2.line(
                    canvas,
                    (int(p[0]), int(p[1])),
                    (int(p[2]), int(p[3])),
                    int(rng.integers(120, 256)),
                    int(rng.integers(1, 3)),
                    cv2.LINE_AA,
                )
            M = _jitter_matrix(rng, 28, rot=18, shear=0.3, scale=(0.75, 1.15), shift=3.0)
            cv2.warpAffine(canvas, M, (28, 28), dst=images[i], flags=cv2.INTER_LINEAR)
        x = images.astype(np.float32)
        x *= rng.uniform(0.55, 1.0, (n, 1, 1)).astype(np.float32)  # contrast
        x += rng.uniform(0, 60, (n, 1, 1)).astype(np.float32)  # background level
        x += rng.normal(0, 1, (n, 28, 28)).astype(np.float32) * rng.uniform(
            5, 30, (n, 1, 1)
        ).astype(np.float32)
        images = np.clip(x, 0, 255).astype(np.uint8)
        return {"images": images[..., None], "labels": labels.astype(np.int64)}

    @property
    def data(self) -> np.ndarray:
        return self.arrays["images"]

    @property
    def targets(self) -> np.ndarray:
        return self.arrays["labels"]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        # copies, here and below: an in-place transform must not write into the dataset
        return self._apply(self.arrays["images"][index].copy(), int(self.arrays["labels"][index]))


# ----------------------------------------------------------------------------- objects
def _regular(k: int, r: float, phase: float = 0.0) -> np.ndarray:
    a = phase + np.arange(k) * 2 * np.pi / k
    return np.stack([np.sin(a), -np.cos(a)], 1) * r


def _shape_polys(name: str, r: float) -> list[np.ndarray]:
    """Polygons (unit-centred, radius r) of an object class; empty list for round ones."""
    if name == "square":
        return [_regular(4, r * 1.2, np.pi / 4)]
    if name == "triangle":
        return [_regular(3, r * 1.15)]
    if name == "diamond":
        return [_regular(4, r * 1.1) * np.array([0.7, 1.0])]
    if name == "hexagon":
        return [_regular(6, r)]
    if name == "star":
        outer, inner = _regular(5, r * 1.15), _regular(5, r * 0.48, np.pi / 5)
        return [np.stack([outer, inner], 1).reshape(-1, 2)]
    if name == "cross":
        w = r * 0.38
        return [
            np.array([[-w, -r], [w, -r], [w, r], [-w, r]]),
            np.array([[-r, -w], [r, -w], [r, w], [-r, w]]),
        ]
    if name == "arrow":
        w = r * 0.3
        return [
            np.array(
                [
                    [-r, -w],
                    [0.1 * r, -w],
                    [0.1 * r, -r * 0.8],
                    [r, 0],
                    [0.1 * r, r * 0.8],
                    [0.1 * r, w],
                    [-r, w],
                ]
            )
        ]
    return []


def _fill(
    canvas: np.ndarray, name: str, cx: float, cy: float, r: float, angle: float, color: Any
) -> None:
    """Draw one object class on ``canvas`` (any number of channels; colour per channel)."""
    sh = 4
    f = 1 << sh
    if name in ("circle", "ring", "crescent"):
        center = (round(cx * f), round(cy * f))
        cv2.circle(canvas, center, round(r * f), color, -1, cv2.LINE_AA, sh)
        if name != "circle":
            bg = tuple(
                float(v)
                for v in canvas[
                    min(max(int(cy + r + 2), 0), canvas.shape[0] - 1),
                    min(max(int(cx), 0), canvas.shape[1] - 1),
                ]
            )
            if name == "ring":
                cv2.circle(canvas, center, round(r * 0.55 * f), bg, -1, cv2.LINE_AA, sh)
            else:
                a = math.radians(angle)
                off = (
                    round((cx + 0.5 * r * math.cos(a)) * f),
                    round((cy + 0.5 * r * math.sin(a)) * f),
                )
                cv2.circle(canvas, off, round(r * 0.85 * f), bg, -1, cv2.LINE_AA, sh)
        return
    if name == "ellipse":
        cv2.ellipse(canvas, ((cx, cy), (2 * r, 1.1 * r), angle), color, -1, cv2.LINE_AA)
        return
    a = math.radians(angle)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    for p in _shape_polys(name, r):  # one call each: overlapping parts must stay filled
        poly = np.round(((p @ R.T) + [cx, cy]) * f).astype(np.int32)
        cv2.fillPoly(canvas, [poly], color, cv2.LINE_AA, sh)


def _backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth colour gradients with noise, (n, size, size, 3) float32."""
    c0 = rng.uniform(0, 255, (n, 1, 1, 3)).astype(np.float32)
    c1 = rng.uniform(0, 255, (n, 1, 1, 3)).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    t = (np.cos(ang) * xx + np.sin(ang) * yy).astype(np.float32)
    t = (t - t.min(axis=(1, 2), keepdims=True)) / (np.ptp(t, axis=(1, 2), keepdims=True) + 1e-6)
    return c0 + (c1 - c0) * t[..., None]


def _contrasting(rng: np.random.Generator, bg: np.ndarray) -> tuple[float, float, float]:
    for _ in range(20):
        c = rng.uniform(0, 255, 3)
        if np.abs(c - bg).sum() > 160:
            break
    return tuple(float(v) for v in c)


class SyntheticObjects(_Procedural):
    """32x32 colour objects in 10 classes, standing in for CIFAR-10.

    Each image shows one object (circle, square, triangle, diamond, star, cross, ring,
    hexagon, arrow, crescent) of random colour, size, position and rotation over a random
    gradient, with distractor blobs and noise. A sample is ``(image 32x32x3 uint8, label)``.

    Args:
        train: the training split (10,000 by default) or the test split (2,000).
        size, seed, transform, target_transform, cache: as for :class:`SyntheticGlyphs`.
    """

    kind = "objects"
    classes = [
        "circle",
        "square",
        "triangle",
        "diamond",
        "star",
        "cross",
        "ring",
        "hexagon",
        "arrow",
        "crescent",
    ]
    default_size = (10000, 2000)

    def _generate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        S = 32
        labels = rng.integers(0, 10, n)
        images = np.empty((n, S, S, 3), np.uint8)
        for i in range(n):
            canvas = _backgrounds(rng, 1, S)[0]
            for _ in range(int(rng.integers(0, 3))):  # distractors: small blurry blobs
                p = rng.uniform(0, S, 2)
                cv2.circle(
                    canvas,
                    (int(p[0]), int(p[1])),
                    int(rng.integers(1, 4)),
                    tuple(float(v) for v in rng.uniform(0, 255, 3)),
                    -1,
                    cv2.LINE_AA,
                )
            r = rng.uniform(6.5, 11.0)
            cx, cy = rng.uniform(r * 0.8, S - r * 0.8, 2)
            color = _contrasting(rng, canvas[int(cy), int(cx)])
            _fill(canvas, self.classes[labels[i]], cx, cy, r, rng.uniform(0, 360), color)
            images[i] = np.clip(canvas, 0, 255)
        noise = rng.normal(0, 1, images.shape).astype(np.float32) * rng.uniform(
            3, 14, (n, 1, 1, 1)
        ).astype(np.float32)
        images = np.clip(images + noise, 0, 255).astype(np.uint8)
        return {"images": images, "labels": labels.astype(np.int64)}

    data = SyntheticGlyphs.data
    targets = SyntheticGlyphs.targets
    __getitem__ = SyntheticGlyphs.__getitem__


# ----------------------------------------------------------------------------- faces
_FACE_POINTS = np.array(
    [[-0.36, -0.18], [0.36, -0.18], [0.0, 0.16], [-0.30, 0.50], [0.30, 0.50]]
)  # in units of the face's half-height


def _draw_face(
    canvas: np.ndarray, cx: float, cy: float, s: float, angle: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a face of half-height ``s``; return its 5 MTFL landmarks and its box."""
    a = math.radians(angle)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    yaw = rng.uniform(-0.25, 0.25)
    half_w = s * rng.uniform(0.72, 0.85)

    def to_img(p: np.ndarray) -> np.ndarray:
        return (p * s) @ R.T + [cx, cy]

    skin = np.array([rng.uniform(60, 235), 0, 0])
    skin[1] = skin[0] * rng.uniform(0.7, 0.9)
    skin[2] = skin[1] * rng.uniform(0.65, 0.9)
    skin_c = tuple(float(v) for v in skin)
    if rng.random() < 0.8:  # hair: a darker ellipse behind the top of the head
        hair = tuple(float(v) for v in rng.uniform(0, 90, 3))
        hc = to_img(np.array([[0.0, -0.25]]))[0]
        cv2.ellipse(
            canvas,
            ((float(hc[0]), float(hc[1])), (2.15 * half_w, 1.75 * s), angle),
            hair,
            -1,
            cv2.LINE_AA,
        )
    cv2.ellipse(canvas, ((cx, cy), (2 * half_w, 2 * s), angle), skin_c, -1, cv2.LINE_AA)
    pts = _FACE_POINTS.copy()
    pts[:, 0] *= half_w / s * (1 - 0.3 * abs(yaw)) / 0.8
    pts[:, 0] += yaw * 0.6 * np.array([1, 1, 1.6, 1, 1])
    pts[:, 1] += rng.normal(0, 0.03, 5)
    kp = to_img(pts)
    f = 16
    eye_r = max(1.0, s * rng.uniform(0.09, 0.14))
    iris = tuple(float(v) for v in rng.uniform(0, 120, 3))
    for e in kp[:2]:
        cv2.ellipse(
            canvas,
            ((float(e[0]), float(e[1])), (2.4 * eye_r, 1.5 * eye_r), angle),
            (245, 245, 245),
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(
            canvas,
            (round(e[0] * f), round(e[1] * f)),
            round(eye_r * 0.6 * f),
            iris,
            -1,
            cv2.LINE_AA,
            4,
        )
    nose_c = tuple(float(v) for v in skin * 0.7)
    bridge = to_img(np.array([[pts[2, 0] * 0.6, -0.12]]))[0]
    cv2.line(
        canvas,
        (round(bridge[0] * f), round(bridge[1] * f)),
        (round(kp[2, 0] * f), round(kp[2, 1] * f)),
        nose_c,
        max(1, int(s * 0.06)),
        cv2.LINE_AA,
        4,
    )
    cv2.circle(
        canvas,
        (round(kp[2, 0] * f), round(kp[2, 1] * f)),
        round(max(1.0, s * 0.07) * f),
        nose_c,
        -1,
        cv2.LINE_AA,
        4,
    )
    lip = tuple(float(v) for v in (rng.uniform(120, 200), rng.uniform(30, 80), rng.uniform(40, 90)))
    mid = (kp[3] + kp[4]) / 2 + (R @ np.array([0, rng.uniform(-0.05, 0.12) * s]))
    curve = np.array([kp[3], mid, kp[4]]) * f
    cv2.polylines(
        canvas,
        [np.round(curve).astype(np.int32)],
        False,
        lip,
        max(1, int(s * 0.08)),
        cv2.LINE_AA,
        4,
    )
    # tight box of the rotated skin ellipse
    ex = math.hypot(half_w * math.cos(a), s * math.sin(a))
    ey = math.hypot(half_w * math.sin(a), s * math.cos(a))
    box = np.array([cx - ex, cy - ey, cx + ex, cy + ey])
    return kp.astype(np.float32), box.astype(np.float32)


def _clutter(canvas: np.ndarray, rng: np.random.Generator, count: int) -> None:
    H, W = canvas.shape[:2]
    for _ in range(count):
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        p = rng.uniform(0, [W, H, W, H])
        if rng.random() < 0.5:
            cv2.rectangle(
                canvas,
                (int(p[0]), int(p[1])),
                (int(p[2]), int(p[3])),
                color,
                int(rng.choice([-1, 1, 2])),
            )
        else:
            cv2.line(
                canvas,
                (int(p[0]), int(p[1])),
                (int(p[2]), int(p[3])),
                color,
                int(rng.integers(1, 4)),
                cv2.LINE_AA,
            )


class SyntheticFaces(_Procedural):
    """Synthetic face scenes with the 5 MTFL landmarks (eyes, nose tip, mouth corners).

    ``mode="landmarks"``: one face filling most of a ``image_size`` square (like MTFL's
    crops), for landmark regression and face generation; a sample is
    ``{"image", "keypoints" (5, 2), "boxes" (1, 4), "label" (1,)}``.
    ``mode="detection"``: 1-4 faces of varied sizes on a cluttered background; a sample is
    ``{"image", "boxes" (M, 4), "label" (M,) zeros, "keypoints" (5M, 2)}`` (batch it with
    :func:`darklib.vision.datasets.detection_collate`).

    Args:
        train: training split (2,000 landmark / 600 detection images by default) or test
            (500 / 150).
        size, seed, transform, cache: as for :class:`SyntheticGlyphs`.
        mode: ``"landmarks"`` or ``"detection"``.
        image_size: side of the square images (default 64 for landmarks, 128 for detection).
    """

    kind = "faces"
    classes = ["face"]
    flip_pairs = ((0, 1), (3, 4))

    def __init__(
        self,
        train: bool = True,
        size: int | None = None,
        seed: int = 0,
        transform: Callable | None = None,
        mode: str = "landmarks",
        image_size: int | None = None,
        cache: bool = True,
    ):
        if mode not in ("landmarks", "detection"):
            raise ValueError(
                f"SyntheticFaces: mode must be 'landmarks' or 'detection', got {mode!r}"
            )
        self.mode = mode
        self.image_size = int(image_size or (64 if mode == "landmarks" else 128))
        if self.image_size < 24:
            raise ValueError(
                f"SyntheticFaces: image_size must be at least 24, got {self.image_size}"
            )
        self.default_size = (2000, 500) if mode == "landmarks" else (600, 150)
        super().__init__(
            train, size, seed, transform, None, cache, {"mode": mode, "px": self.image_size}
        )
        self._offsets = np.concatenate([[0], np.cumsum(self.arrays["counts"])])

    def _generate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        S = self.image_size
        out = np.empty((n, S, S, 3), np.uint8)
        counts = np.empty(n, np.int64)
        kps, boxes = [], []
        for i in range(n):
            canvas = _backgrounds(rng, 1, S)[0]
            if self.mode == "landmarks":
                _clutter(canvas, rng, int(rng.integers(0, 3)))
                s = S * rng.uniform(0.36, 0.44)
                c = S / 2 + rng.uniform(-0.06, 0.06, 2) * S
                kp, box = _draw_face(canvas, c[0], c[1], s, rng.uniform(-20, 20), rng)
                counts[i] = 1
                kps.append(kp)
                boxes.append(box)
            else:
                _clutter(canvas, rng, int(rng.integers(2, 7)))
                placed: list[np.ndarray] = []
                for _ in range(int(rng.integers(1, 5))):
                    for _try in range(10):
                        s = S * rng.uniform(0.07, 0.22)
                        c = rng.uniform(s, S - s, 2)
                        cand = np.array([c[0] - s, c[1] - s, c[0] + s, c[1] + s])
                        if all(
                            cand[2] < b[0] or cand[0] > b[2] or cand[3] < b[1] or cand[1] > b[3]
                            for b in placed
                        ):
                            break
                    else:
                        continue
                    placed.append(cand)
                    kp, box = _draw_face(canvas, c[0], c[1], s, rng.uniform(-25, 25), rng)
                    kps.append(kp)
                    boxes.append(box)
                counts[i] = len(placed)
            out[i] = np.clip(canvas, 0, 255)
        noise = rng.normal(0, 1, out.shape).astype(np.float32) * rng.uniform(
            2, 10, (n, 1, 1, 1)
        ).astype(np.float32)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
        return {
            "images": out,
            "counts": counts,
            "keypoints": np.asarray(kps, np.float32).reshape(-1, 5, 2),
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        }

    def __getitem__(self, index: int) -> Any:
        a, b = int(self._offsets[index]), int(self._offsets[index + 1])
        kp = self.arrays["keypoints"][a:b]
        sample = {
            "image": self.arrays["images"][index].copy(),
            "keypoints": kp[0].copy() if self.mode == "landmarks" else kp.reshape(-1, 2).copy(),
            "boxes": self.arrays["boxes"][a:b].copy(),
            "label": np.zeros(b - a, np.int64),
        }
        return self._apply_dict(sample)


# ----------------------------------------------------------------------------- shapes
class SyntheticShapes(_Procedural):
    """Scenes of overlapping shapes with pixel masks, for segmentation.

    Classes: 0 background, 1 circle, 2 rectangle, 3 triangle, 4 star. A sample is
    ``{"image": SxSx3 uint8, "mask": SxS int64}``.

    Args:
        train: training split (1,000 by default) or test (200).
        size, seed, transform, cache: as for :class:`SyntheticGlyphs`.
        image_size: side of the square images (default 64).
    """

    kind = "shapes"
    classes = ["background", "circle", "rectangle", "triangle", "star"]
    default_size = (1000, 200)

    def __init__(
        self,
        train: bool = True,
        size: int | None = None,
        seed: int = 0,
        transform: Callable | None = None,
        image_size: int = 64,
        cache: bool = True,
    ):
        self.image_size = int(image_size)
        if self.image_size < 16:
            raise ValueError(f"SyntheticShapes: image_size must be at least 16, got {image_size}")
        super().__init__(train, size, seed, transform, None, cache, {"px": self.image_size})

    def _generate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        S = self.image_size
        images = np.empty((n, S, S, 3), np.uint8)
        masks = np.zeros((n, S, S), np.uint8)
        names = {1: "circle", 2: "square", 3: "triangle", 4: "star"}
        for i in range(n):
            canvas = _backgrounds(rng, 1, S)[0]
            mask = masks[i]
            for _ in range(int(rng.integers(1, 5))):
                cls = int(rng.integers(1, 5))
                r = S * rng.uniform(0.1, 0.24)
                cx, cy = rng.uniform(0.1 * S, 0.9 * S, 2)
                angle = rng.uniform(0, 360)
                color = _contrasting(rng, canvas[int(cy), int(cx)])
                _fill(canvas, names[cls], cx, cy, r, angle, color)
                layer = np.zeros((S, S), np.uint8)
                _fill(layer, names[cls], cx, cy, r, angle, 255)
                mask[layer >= 128] = cls
            images[i] = np.clip(canvas, 0, 255)
        noise = rng.normal(0, 1, images.shape).astype(np.float32) * rng.uniform(
            2, 10, (n, 1, 1, 1)
        ).astype(np.float32)
        images = np.clip(images + noise, 0, 255).astype(np.uint8)
        return {"images": images, "masks": masks}

    def __getitem__(self, index: int) -> Any:
        return self._apply_dict(
            {
                "image": self.arrays["images"][index].copy(),
                "mask": self.arrays["masks"][index].astype(np.int64),
            }
        )


# ----------------------------------------------------------------------------- points
def make_points(
    n: int = 200, dim: int = 2, seed: int = 0, noise: float = 1.0, separation: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds in ``dim`` (2 or 3) dimensions for logistic regression.

    Returns:
        x (n, dim) float32 and y (n, 1) float32 of 0/1 labels.
    """
    if dim < 1 or n < 2:
        raise ValueError(f"make_points: need dim >= 1 and n >= 2, got dim={dim}, n={n}")
    rng = np.random.default_rng([seed, dim, 5])
    y = (np.arange(n) % 2).astype(np.float32)
    rng.shuffle(y)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    centers = np.where(y[:, None] > 0, 1.0, -1.0) * direction * separation / 2
    x = centers + rng.normal(0, noise, (n, dim))
    return x.astype(np.float32), y[:, None]


def make_sine_surface(
    n: int = 1000, seed: int = 0, extent: float = 6.0, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Points of the surface ``z = sin(sqrt(x^2 + y^2))`` over ``[-extent, extent]^2``.

    Returns:
        xy (n, 2) float32 and z (n, 1) float32.
    """
    rng = np.random.default_rng([seed, 6])
    xy = rng.uniform(-extent, extent, (n, 2))
    z = np.sin(np.sqrt((xy**2).sum(1, keepdims=True)))
    if noise:
        z = z + rng.normal(0, noise, z.shape)
    return xy.astype(np.float32), z.astype(np.float32)


class _ArrayPairs(VisionDataset):
    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self._apply(self.x[index].copy(), self.y[index].copy())


class PointClouds(_ArrayPairs):
    """Two labelled Gaussian clouds in 2-D or 3-D (logistic regression); samples are
    ``(x (dim,) float32, y (1,) float32)``. See :func:`make_points`."""

    def __init__(
        self,
        train: bool = True,
        size: int | None = None,
        dim: int = 2,
        seed: int = 0,
        noise: float = 1.0,
        transform: Callable | None = None,
    ):
        super().__init__(transform)
        n = size or (400 if train else 100)
        self.x, self.y = make_points(n, dim, seed * 2 + (0 if train else 1), noise)


class SineSurface(_ArrayPairs):
    """Samples of ``z = sin(sqrt(x^2 + y^2))`` (regression of a 3-D surface); samples are
    ``(xy (2,) float32, z (1,) float32)``. See :func:`make_sine_surface`."""

    def __init__(
        self,
        train: bool = True,
        size: int | None = None,
        seed: int = 0,
        noise: float = 0.0,
        transform: Callable | None = None,
    ):
        super().__init__(transform)
        n = size or (2000 if train else 500)
        self.x, self.y = make_sine_surface(n, seed * 2 + (0 if train else 1), noise=noise)
