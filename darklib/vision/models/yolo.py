"""A YOLOv3-style single-stage detector, as the Dark tutorial's face-detection sample
builds one: a light Darknet-style backbone (conv-BN-LeakyReLU, strided downsampling,
residual blocks), a top-down feature pyramid over two or three scales, and per-scale heads
that predict, for each anchor of each grid cell, a box offset (tx, ty, tw, th), an
objectness logit and class logits. With YOLOv3's target assignment and loss (Redmon and
Farhadi, "YOLOv3: An Incremental Improvement", 2018) and the decoding of raw outputs into
boxes with NMS.

Boxes are (x1, y1, x2, y2) in pixels of the network's input throughout. Targets and
detections use torchvision's detection format: one dict per image with ``boxes`` (M, 4)
and ``labels`` (M,) int64, plus ``scores`` (M,) in detections.

Raw outputs: one tensor per scale, finest first (strides 8, 16, 32, or 16, 32 with two
scales), of shape (N, A, H, W, 5 + num_classes); along the last axis tx, ty (the box
centre's offset in its cell, through a sigmoid), tw, th (log of the box size over the
anchor's), the objectness logit, then one logit per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

import darklib as dl
from darklib import nn
from darklib.backend import to_numpy
from darklib.errors import InvalidType, InvalidValue
from darklib.nn import functional as F
from darklib.nn.module import Module
from darklib.tensor import Tensor
from darklib.vision.ops.boxes import batched_nms, box_iou

__all__ = ["YOLOLoss", "YOLOv3", "build_targets", "decode", "default_anchors"]

# YOLOv3's anchors (width, height in pixels at a 416x416 input), finest scale first
_ANCHORS = {
    3: (
        ((10, 13), (16, 30), (33, 23)),
        ((30, 61), (62, 45), (59, 119)),
        ((116, 90), (156, 198), (373, 326)),
    ),
    2: (((10, 14), (23, 27), (37, 58)), ((81, 82), (135, 169), (344, 319))),  # YOLOv3-tiny's
}
_STRIDES = (8, 16, 32)
_PRIOR = 0.01  # the objectness the heads start at (their bias), as in focal-loss detectors


def default_anchors(num_scales: int = 3, image_size: int = 416) -> tuple:
    """YOLOv3's anchors (three per scale, finest scale first) for ``num_scales`` of 2 or 3,
    scaled from its 416x416 input to ``image_size``."""
    if num_scales not in _ANCHORS:
        raise InvalidValue(f"default_anchors: num_scales must be 2 or 3, got {num_scales}")
    k = image_size / 416
    return tuple(tuple((w * k, h * k) for w, h in scale) for scale in _ANCHORS[num_scales])


def _anchor_table(anchors: Any, who: str) -> tuple:
    try:
        table = tuple(tuple((float(w), float(h)) for w, h in scale) for scale in anchors)
    except (TypeError, ValueError):
        raise InvalidValue(
            f"{who}: anchors must be one sequence of (width, height) pairs per scale, got "
            f"{anchors!r:.80}"
        ) from None
    if len(table) not in (2, 3) or len({len(s) for s in table}) != 1 or not table[0]:
        raise InvalidValue(
            f"{who}: anchors must give 2 or 3 scales with the same number of anchors each, "
            f"got {[len(s) for s in table]} anchors per scale"
        )
    if not all(w > 0 and h > 0 for s in table for w, h in s):
        raise InvalidValue(f"{who}: anchor sizes must be positive, got {table}")
    return table


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """Darknet's unit: a convolution without bias, batch norm, LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.1, inplace=True),
    )


class _Residual(Module):
    """``x + conv3x3(conv1x1(x))``, the 1x1 halving the channels."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.block = nn.Sequential(_conv_bn(c, c // 2, 1), _conv_bn(c // 2, c, 3))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def _stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn(cin, cout, 3, 2), *(_Residual(cout) for _ in range(blocks)))


def _neck(cin: int, c: int) -> nn.Sequential:
    """1x1 / 3x3 / 1x1 convolutions mixing a scale's features (to ``c`` channels)."""
    return nn.Sequential(_conv_bn(cin, c, 1), _conv_bn(c, 2 * c, 3), _conv_bn(2 * c, c, 1))


class YOLOv3(Module):
    """A YOLOv3-style detector of ``num_classes`` classes over two or three scales.

    Args:
        num_classes: object classes (1 for faces). Default: 1.
        anchors: (width, height) pairs in input pixels, one sequence per scale, finest
            first; two or three scales. Default: :func:`default_anchors` for 416x416.
        width: channels of the first layer; the backbone doubles them at each of its five
            downsamplings (the tutorial-sized detector: 16). Default: 16.
        in_channels: input channels. Default: 3.

    Shape:
        - Input: (N, in_channels, H, W), H and W multiples of 32
        - Output: a list, per scale (finest first), of (N, A, H / s, W / s, 5 + num_classes)

    Example::

        >>> model = YOLOv3(num_classes=1, anchors=default_anchors(2, 160), width=8)
        >>> [tuple(p.shape) for p in model(dl.randn(2, 3, 160, 160))]
        [(2, 3, 10, 10, 6), (2, 3, 5, 5, 6)]
        >>> detections = model.detect(dl.randn(2, 3, 160, 160))  # eval mode: boxes, scores, labels
    """

    def __init__(
        self,
        num_classes: int = 1,
        anchors: Sequence | None = None,
        width: int = 16,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidValue(f"YOLOv3: num_classes must be a positive int, got {num_classes!r}")
        self.anchors = _anchor_table(default_anchors() if anchors is None else anchors, "YOLOv3")
        self.num_classes = num_classes
        scales = len(self.anchors)
        self.strides = _STRIDES[-scales:]
        out = len(self.anchors[0]) * (5 + num_classes)
        w = width
        self.stem = _conv_bn(in_channels, w)
        self.stage1 = _stage(w, 2 * w, 1)  # stride 2
        self.stage2 = _stage(2 * w, 4 * w, 1)  # 4
        self.stage3 = _stage(4 * w, 8 * w, 2)  # 8
        self.stage4 = _stage(8 * w, 16 * w, 2)  # 16
        self.stage5 = _stage(16 * w, 32 * w, 1)  # 32
        self.neck5 = _neck(32 * w, 16 * w)
        self.head5 = self._head(16 * w, out)
        self.reduce5 = _conv_bn(16 * w, 8 * w, 1)
        self.neck4 = _neck(8 * w + 16 * w, 8 * w)
        self.head4 = self._head(8 * w, out)
        if scales == 3:
            self.reduce4 = _conv_bn(8 * w, 4 * w, 1)
            self.neck3 = _neck(4 * w + 8 * w, 4 * w)
            self.head3 = self._head(4 * w, out)

    def _head(self, c: int, out: int) -> nn.Sequential:
        last = nn.Conv2d(2 * c, out, 1)
        with dl.no_grad():  # start every anchor at objectness _PRIOR, not 0.5
            bias = last.bias.view(len(self.anchors[0]), 5 + self.num_classes)
            bias[:, 4] = math.log(_PRIOR / (1 - _PRIOR))
        return nn.Sequential(_conv_bn(c, 2 * c, 3), last)

    def forward(self, x: Tensor) -> list[Tensor]:
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise InvalidValue(
                f"YOLOv3: expected an (N, C, H, W) tensor, got "
                f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
            )
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise InvalidValue(
                f"YOLOv3: the input's height and width must be multiples of 32 (its coarsest "
                f"stride), got {tuple(x.shape[2:])}; resize or pad the images"
            )
        c3 = self.stage3(self.stage2(self.stage1(self.stem(x))))
        c4 = self.stage4(c3)
        p5 = self.neck5(self.stage5(c4))
        p4 = self.neck4(dl.cat((F.interpolate(self.reduce5(p5), scale_factor=2), c4), 1))
        outs = [self.head4(p4), self.head5(p5)]
        if len(self.anchors) == 3:
            p3 = self.neck3(dl.cat((F.interpolate(self.reduce4(p4), scale_factor=2), c3), 1))
            outs.insert(0, self.head3(p3))
        a, k = len(self.anchors[0]), 5 + self.num_classes
        return [
            o.view(o.shape[0], a, k, o.shape[2], o.shape[3]).permute(0, 1, 3, 4, 2) for o in outs
        ]

    def loss_fn(self, **kwargs: Any) -> YOLOLoss:
        """A :class:`YOLOLoss` for this model's anchors, strides and classes."""
        return YOLOLoss(self.anchors, self.num_classes, **kwargs)

    def detect(self, x: Tensor, **kwargs: Any) -> list[dict[str, Tensor]]:
        """Detections for images ``x`` (run in the model's current mode, without
        gradients): :func:`decode` of the outputs; ``kwargs`` go to it."""
        with dl.no_grad():
            return decode(self(x), self.anchors, **kwargs)


# ------------------------------------------------------------------ targets


def _check_targets(targets: Any, n: int, num_classes: int, size: tuple, who: str) -> list:
    """Checked (boxes float64 (M, 4), labels int64 (M,)) NumPy pairs, one per image, the
    boxes clipped to the (height, width) image ``size``: as Darknet's loader does, a box
    spilling over the edge (random crops and shifts make them) stands for the part in
    view, so its centre lies in the image and its cell offset in [0, 1] (outside, the BCE
    on tx, ty would have no lower bound); a box wholly outside is dropped."""
    if not isinstance(targets, list | tuple) or len(targets) != n:
        raise InvalidValue(
            f"{who}: targets must be a list of {n} dicts (one per image) with 'boxes' (M, 4) "
            f"and 'labels' (M,), got {type(targets).__name__}"
            + (f" of length {len(targets)}" if isinstance(targets, list | tuple) else "")
        )
    out = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise InvalidType(f"{who}: targets[{i}] must be a dict with 'boxes' and 'labels'")
        boxes = to_numpy(
            t["boxes"].detach().array if isinstance(t["boxes"], Tensor) else np.asarray(t["boxes"])
        )
        labels = to_numpy(
            t["labels"].array if isinstance(t["labels"], Tensor) else np.asarray(t["labels"])
        )
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) == 0 else boxes
        if boxes.ndim != 2 or boxes.shape[1] != 4 or labels.shape != (boxes.shape[0],):
            raise InvalidValue(
                f"{who}: targets[{i}] needs boxes of shape (M, 4) and labels of shape (M,), got "
                f"{tuple(boxes.shape)} and {tuple(labels.shape)}"
            )
        bad = np.flatnonzero(~np.isfinite(boxes).all(1))
        if bad.size:  # (NaN would pass the x2 > x1 test below)
            raise InvalidValue(
                f"{who}: targets[{i}]['boxes'][{bad[0]}] = {boxes[bad[0]].tolist()} is not finite"
            )
        bad = np.flatnonzero((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))
        if bad.size:
            raise InvalidValue(
                f"{who}: targets[{i}]['boxes'][{bad[0]}] = {boxes[bad[0]].tolist()} is not an "
                "(x1, y1, x2, y2) box with x2 > x1 and y2 > y1"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise InvalidValue(
                f"{who}: targets[{i}]['labels'] must lie in [0, {num_classes}), got "
                f"{labels.min()}..{labels.max()}"
            )
        boxes = boxes.astype(np.float64)  # (a copy: the caller's boxes are left alone)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, size[1])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, size[0])
        seen = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out.append((boxes[seen], labels.astype(np.int64)[seen]))
    return out


def _image_size(grids: Sequence, strides: Sequence) -> tuple[int, int]:
    """The input's (height, width), from the coarsest scale's grid."""
    return grids[-1][0] * strides[-1], grids[-1][1] * strides[-1]


def build_targets(
    targets: list, anchors: Sequence, grids: Sequence[tuple[int, int]], num_classes: int
) -> list[dict[str, np.ndarray]]:
    """YOLOv3's assignment: each ground-truth box goes to the one anchor (over all scales)
    whose shape fits it best (IoU of the two boxes centred together) and to the grid cell
    of that scale holding its centre. A later box assigned the same anchor and cell
    replaces an earlier one. Boxes are first clipped to the image (whose size the grids
    give), those wholly outside dropped.

    Args:
        targets: one dict per image, ``boxes`` (M, 4) x1, y1, x2, y2 in input pixels and
            ``labels`` (M,).
        anchors: per scale, (width, height) pairs, finest scale first.
        grids: per scale, its (H, W) grid.
        num_classes: classes of the model.

    Returns:
        per scale, float64 NumPy arrays: ``obj`` (N, A, H, W) 1 at assigned anchors; ``xy``
        (N, A, H, W, 2) the centre's offset in its cell; ``wh`` (N, A, H, W, 2) the log of
        the box size over the anchor's; ``cls`` (N, A, H, W, num_classes) one-hot;
        ``scale`` (N, A, H, W) YOLOv3's box-loss weight ``2 - w * h / image area``.
    """
    table = _anchor_table(anchors, "build_targets")
    if len(grids) != len(table):
        raise InvalidValue(f"build_targets: {len(table)} anchor scales but {len(grids)} grids")
    size = _image_size(grids, _STRIDES[-len(table) :])
    checked = _check_targets(targets, len(targets), num_classes, size, "build_targets")
    return _assign(checked, table, grids, num_classes)


def _assign(checked: list, table: tuple, grids: Sequence, num_classes: int) -> list[dict]:
    """:func:`build_targets` of checked (boxes, labels) NumPy pairs."""
    strides = _STRIDES[-len(table) :]
    n = len(checked)
    a = len(table[0])
    out = []
    for hh, ww in grids:
        # float64, so that float64 outputs are trained towards the exact targets (the loss
        # casts them to the outputs' dtype)
        out.append(
            {
                "obj": np.zeros((n, a, hh, ww)),
                "xy": np.zeros((n, a, hh, ww, 2)),
                "wh": np.zeros((n, a, hh, ww, 2)),
                "cls": np.zeros((n, a, hh, ww, num_classes)),
                "scale": np.zeros((n, a, hh, ww)),
            }
        )
    shapes = np.asarray([wh for scale in table for wh in scale])  # (scales * A, 2)
    image_area = math.prod(_image_size(grids, strides))
    for i, (boxes, labels) in enumerate(checked):
        if not len(boxes):
            continue
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        inter = np.minimum(bw[:, None], shapes[:, 0]) * np.minimum(bh[:, None], shapes[:, 1])
        fit = inter / (bw[:, None] * bh[:, None] + shapes[:, 0] * shapes[:, 1] - inter)
        best = fit.argmax(1)
        for m, k in enumerate(best):
            s, j = divmod(int(k), a)
            hh, ww = grids[s]
            gx = (boxes[m, 0] + boxes[m, 2]) / 2 / strides[s]
            gy = (boxes[m, 1] + boxes[m, 3]) / 2 / strides[s]
            cx, cy = min(max(int(gx), 0), ww - 1), min(max(int(gy), 0), hh - 1)
            t = out[s]
            t["obj"][i, j, cy, cx] = 1
            t["xy"][i, j, cy, cx] = (gx - cx, gy - cy)
            t["wh"][i, j, cy, cx] = (math.log(bw[m] / shapes[k, 0]), math.log(bh[m] / shapes[k, 1]))
            t["cls"][i, j, cy, cx] = 0
            t["cls"][i, j, cy, cx, labels[m]] = 1
            t["scale"][i, j, cy, cx] = 2 - bw[m] * bh[m] / image_area
    return out


def _grid_boxes(p: Tensor, anchors: tuple, stride: int) -> Tensor:
    """Raw outputs ``p`` (N, A, H, W, 5 + C) of one scale as (N, A, H, W, 4) xyxy boxes."""
    a, hh, ww = p.shape[1:4]
    dev = p.device
    gx = dl.arange(ww, device=dev, dtype=p.dtype).view(1, 1, 1, ww)
    gy = dl.arange(hh, device=dev, dtype=p.dtype).view(1, 1, hh, 1)
    aw = dl.tensor([w for w, _ in anchors], device=dev, dtype=p.dtype).view(1, a, 1, 1)
    ah = dl.tensor([h for _, h in anchors], device=dev, dtype=p.dtype).view(1, a, 1, 1)
    cx = (dl.sigmoid(p[..., 0]) + gx) * stride
    cy = (dl.sigmoid(p[..., 1]) + gy) * stride
    # (sizes capped at e^10 anchors: untrained heads may output anything)
    w = dl.exp(p[..., 2].clamp(max=10)) * aw
    h = dl.exp(p[..., 3].clamp(max=10)) * ah
    return dl.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def _check_preds(preds: Any, table: tuple, who: str, num_classes: int | None = None) -> None:
    """The model's outputs, finest first, for ``num_classes`` classes where given."""
    if not isinstance(preds, list | tuple) or len(preds) != len(table):
        raise InvalidValue(
            f"{who}: expected the model's {len(table)} outputs (one per scale), got "
            f"{len(preds) if isinstance(preds, list | tuple) else type(preds).__name__}"
        )
    k = "5 + classes" if num_classes is None else f"5 + {num_classes}"
    for s, p in enumerate(preds):
        if (
            not isinstance(p, Tensor)
            or p.ndim != 5
            or p.shape[1] != len(table[s])
            or p.shape[4] < 6
            or (num_classes is not None and p.shape[4] != 5 + num_classes)
        ):
            raise InvalidValue(
                f"{who}: output {s} must be (N, {len(table[s])}, H, W, {k}), got "
                f"{tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__}"
            )
    # Every scale must see the same images at its own stride: outputs in another order
    # (coarsest first) would otherwise be decoded with the wrong anchors and strides.
    strides = _STRIDES[-len(table) :]
    size = _image_size([p.shape[2:4] for p in preds], strides)
    for p, stride in zip(preds, strides):
        if p.shape[0] != preds[0].shape[0] or tuple(p.shape[2:4]) != (
            size[0] // stride,
            size[1] // stride,
        ):
            raise InvalidValue(
                f"{who}: the outputs must be the model's, finest first (strides {strides}) for "
                f"one batch; got shapes {[tuple(q.shape) for q in preds]}"
            )


class YOLOLoss(Module):
    """YOLOv3's loss of raw outputs against targets, summed over the batch and divided by
    the number of images.

    - box: for each assigned anchor, binary cross-entropy of ``sigmoid(tx, ty)`` against
      the centre's offset in its cell plus half the squared error of ``(tw, th)``, both
      weighted by ``2 - w * h / image area`` (small boxes count more);
    - objectness: binary cross-entropy (logits) against 1 at assigned anchors and 0
      elsewhere, except where a predicted box already overlaps a ground-truth box by more
      than ``ignore_threshold`` (it is then left alone);
    - class: binary cross-entropy (logits) of each class at assigned anchors.

    Target boxes are clipped to the image first (see :func:`build_targets`).

    Args:
        anchors: per scale, (width, height) pairs in input pixels, finest scale first.
        num_classes: classes of the model.
        ignore_threshold: IoU above which an unassigned prediction has no objectness loss.
            Default: 0.5.
        box_weight, obj_weight, cls_weight: weights of the three terms. Default: 1.

    ``forward(preds, targets)`` gives the total; :meth:`parts` gives every term.
    """

    def __init__(
        self,
        anchors: Sequence,
        num_classes: int = 1,
        ignore_threshold: float = 0.5,
        box_weight: float = 1.0,
        obj_weight: float = 1.0,
        cls_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidValue(f"YOLOLoss: num_classes must be a positive int, got {num_classes!r}")
        self.anchors = _anchor_table(anchors, "YOLOLoss")
        self.strides = _STRIDES[-len(self.anchors) :]
        self.num_classes = num_classes
        self.ignore_threshold = float(ignore_threshold)
        self.box_weight, self.obj_weight, self.cls_weight = box_weight, obj_weight, cls_weight

    def forward(self, preds: list[Tensor], targets: list) -> Tensor:
        return self.parts(preds, targets)["loss"]

    def parts(self, preds: list[Tensor], targets: list) -> dict[str, Tensor]:
        """``{'loss', 'box', 'obj', 'cls'}``: the weighted total and its three terms."""
        _check_preds(preds, self.anchors, "YOLOLoss", self.num_classes)
        n = preds[0].shape[0]
        grids = [p.shape[2:4] for p in preds]
        size = _image_size(grids, self.strides)
        checked = _check_targets(targets, n, self.num_classes, size, "YOLOLoss")
        built = _assign(checked, self.anchors, grids, self.num_classes)
        gts = [dl.tensor(b, dtype=preds[0].dtype, device=preds[0].device) for b, _ in checked]
        box = obj = cls = None
        for p, t, anchors, stride in zip(preds, built, self.anchors, self.strides):
            dev, dt = p.device, p.dtype

            def arr(v: np.ndarray, dev: Any = dev, dt: Any = dt) -> Tensor:
                return dl.tensor(v, dtype=dt, device=dev)

            pos = arr(t["obj"])
            weight = arr(t["scale"])
            xy = F.binary_cross_entropy_with_logits(p[..., :2], arr(t["xy"]), reduction="none")
            wh = 0.5 * (p[..., 2:4] - arr(t["wh"])) ** 2
            b = ((xy + wh).sum(-1) * weight * pos).sum()
            with dl.no_grad():  # predictions already on an object are not pushed to 0
                keep = 1 - pos
                boxes = _grid_boxes(p, anchors, stride)
                for i, g in enumerate(gts):
                    if len(g):
                        best = box_iou(boxes[i].reshape(-1, 4), g).amax(1)
                        keep[i] *= (best <= self.ignore_threshold).to(dt).view(keep[i].shape)
            o = (
                F.binary_cross_entropy_with_logits(p[..., 4], pos, reduction="none") * (pos + keep)
            ).sum()
            c = (
                F.binary_cross_entropy_with_logits(p[..., 5:], arr(t["cls"]), reduction="none").sum(
                    -1
                )
                * pos
            ).sum()
            box, obj, cls = (b, o, c) if box is None else (box + b, obj + o, cls + c)
        box, obj, cls = box / n, obj / n, cls / n
        loss = self.box_weight * box + self.obj_weight * obj + self.cls_weight * cls
        return {"loss": loss, "box": box, "obj": obj, "cls": cls}


def decode(
    preds: list[Tensor],
    anchors: Sequence,
    *,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> list[dict[str, Tensor]]:
    """Detections from raw outputs: per image, the boxes whose score (objectness times the
    best class's probability) exceeds ``conf_threshold``, after non-maximum suppression
    within each class (``iou_threshold``), at most ``max_detections`` by falling score.

    Returns one dict per image: ``boxes`` (K, 4) x1, y1, x2, y2 in input pixels,
    ``scores`` (K,), ``labels`` (K,) int64.
    """
    table = _anchor_table(anchors, "decode")
    _check_preds(preds, table, "decode")
    if (
        isinstance(max_detections, bool)
        or not isinstance(max_detections, int)
        or max_detections < 0
    ):
        raise InvalidValue(
            f"decode: max_detections must be a non-negative int, got {max_detections!r}"
        )
    strides = _STRIDES[-len(table) :]
    with dl.no_grad():
        boxes, scores, labels = [], [], []
        for p, a, stride in zip(preds, table, strides):
            n = p.shape[0]
            boxes.append(_grid_boxes(p, a, stride).reshape(n, -1, 4))
            prob = dl.sigmoid(p[..., 4:5]) * dl.sigmoid(p[..., 5:])
            best, label = prob.reshape(n, -1, prob.shape[-1]).max(-1)
            scores.append(best)
            labels.append(label)
        boxes, scores, labels = dl.cat(boxes, 1), dl.cat(scores, 1), dl.cat(labels, 1)
        out = []
        for i in range(boxes.shape[0]):
            sel = scores[i] > conf_threshold
            b, s, lab = boxes[i][sel], scores[i][sel], labels[i][sel]
            keep = batched_nms(b, s, lab, iou_threshold)[:max_detections]
            out.append({"boxes": b[keep], "scores": s[keep], "labels": lab[keep]})
        return out
