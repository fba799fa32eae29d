"""Box operations, as ``torchvision.ops``: areas, pairwise IoUs (plain, generalized,
distance, complete), format conversion, clipping, non-maximum suppression.

Boxes are (N, 4) tensors in ``(x1, y1, x2, y2)`` form with ``0 <= x1 < x2`` and
``0 <= y1 < y2`` unless said otherwise. Everything but NMS is made of darklib's tensor ops,
so it runs on either device and is differentiable (GIoU and friends serve as losses).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import darklib as dl
from darklib.backend import to_numpy
from darklib.errors import InvalidType, InvalidValue
from darklib.tensor import Tensor

_WIDE = (dl.float32, dl.float64, dl.int32, dl.int64)


def _upcast(t: Tensor) -> Tensor:
    """float16 to float32 and narrow integers to int32, so products of coordinates do not
    overflow (torchvision's rule)."""
    if t.dtype in _WIDE:
        return t
    return t.float() if t.is_floating_point() else t.int()


def _upcast_non_float(t: Tensor) -> Tensor:
    return t if t.dtype in (dl.float32, dl.float64) else t.float()


def _check_boxes(op: str, **boxes: Any) -> None:
    for name, b in boxes.items():
        if not isinstance(b, Tensor):
            raise InvalidType(f"{op}: {name} must be a Tensor, got {type(b).__name__}")
        if b.ndim != 2 or b.shape[1] != 4:
            raise InvalidValue(
                f"{op}: {name} must have shape (N, 4) in (x1, y1, x2, y2) form, got "
                f"{tuple(b.shape)}"
            )


def box_area(boxes: Tensor) -> Tensor:
    """Area of each (x1, y1, x2, y2) box: (N, 4) -> (N,)."""
    boxes = _upcast(boxes)
    if boxes.shape[-1] != 4:
        raise InvalidValue(f"box_area: boxes must end in 4 coordinates, got {tuple(boxes.shape)}")
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas, both (N, M)."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = dl.maximum(boxes1[:, None, :2], boxes2[:, :2])
    rb = dl.minimum(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = _upcast(rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area1[:, None] + area2 - inter


def _enclosing(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Width and height (N, M, 2) of the smallest box enclosing each pair."""
    lt = dl.minimum(boxes1[:, None, :2], boxes2[:, :2])
    rb = dl.maximum(boxes1[:, None, 2:], boxes2[:, 2:])
    return _upcast(rb - lt).clamp(min=0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union of every pair: (N, 4), (M, 4) -> (N, M)."""
    _check_boxes("box_iou", boxes1=boxes1, boxes2=boxes2)
    inter, union = _inter_union(boxes1, boxes2)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """GIoU of every pair (IoU minus the share of the enclosing box that neither box
    covers; in [-1, 1]): (N, 4), (M, 4) -> (N, M)."""
    _check_boxes("generalized_box_iou", boxes1=boxes1, boxes2=boxes2)
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    wh = _enclosing(boxes1, boxes2)
    hull = wh[..., 0] * wh[..., 1]
    return iou - (hull - union) / hull


def _centres(boxes: Tensor) -> tuple[Tensor, Tensor]:
    return (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2


def _diou_iou(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Pairwise distance-IoU (IoU minus the squared centre distance over the squared
    diagonal of the enclosing box) and plain IoU."""
    iou = box_iou(boxes1, boxes2)
    wh = _enclosing(boxes1, boxes2)
    diagonal = wh[..., 0] ** 2 + wh[..., 1] ** 2 + eps
    xp, yp = _centres(boxes1)
    xg, yg = _centres(boxes2)
    centres = _upcast(xp[:, None] - xg[None, :]) ** 2 + _upcast(yp[:, None] - yg[None, :]) ** 2
    return iou - centres / diagonal, iou


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """DIoU of every pair: (N, 4), (M, 4) -> (N, M)."""
    _check_boxes("distance_box_iou", boxes1=boxes1, boxes2=boxes2)
    return _diou_iou(_upcast(boxes1), _upcast(boxes2), eps)[0]


def _aspect_term(w1: Tensor, h1: Tensor, w2: Tensor, h2: Tensor) -> Tensor:
    """CIoU's aspect-ratio consistency v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2."""
    return (4 / math.pi**2) * (dl.atan(w2 / h2) - dl.atan(w1 / h1)) ** 2


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """CIoU of every pair (DIoU minus an aspect-ratio term): (N, 4), (M, 4) -> (N, M)."""
    _check_boxes("complete_box_iou", boxes1=boxes1, boxes2=boxes2)
    boxes1, boxes2 = _upcast(boxes1), _upcast(boxes2)
    diou, iou = _diou_iou(boxes1, boxes2, eps)
    v = _aspect_term(
        boxes1[:, None, 2] - boxes1[:, None, 0],
        boxes1[:, None, 3] - boxes1[:, None, 1],
        boxes2[:, 2] - boxes2[:, 0],
        boxes2[:, 3] - boxes2[:, 1],
    )
    with dl.no_grad():  # (a weight, not differentiated: the CIoU paper's rule)
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def _to_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xywh":
        return dl.stack((a, b, a + c, b + d), dim=-1)
    return dl.stack((a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d), dim=-1)  # cxcywh


def _from_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    if fmt == "xywh":
        return dl.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)
    return dl.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)  # cxcywh


_FORMATS = ("xyxy", "xywh", "cxcywh")


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert (..., 4) boxes between ``'xyxy'`` (corners), ``'xywh'`` (top-left corner,
    width, height) and ``'cxcywh'`` (centre, width, height)."""
    for name, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if fmt not in _FORMATS:
            raise InvalidValue(
                f"box_convert: unsupported {name} {fmt!r}; expected one of {', '.join(_FORMATS)}"
            )
    if boxes.shape[-1] != 4:
        raise InvalidValue(f"box_convert: boxes must end in 4 values, got {tuple(boxes.shape)}")
    if in_fmt == out_fmt:
        return boxes.clone()
    if in_fmt != "xyxy":
        boxes = _to_xyxy(boxes, in_fmt)
    return boxes if out_fmt == "xyxy" else _from_xyxy(boxes, out_fmt)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip (..., 4) xyxy boxes to an image of ``size`` = (height, width)."""
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return dl.stack((x, y), dim=boxes.ndim).reshape(boxes.shape)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices (int64) of the boxes whose width and height are both at least ``min_size``."""
    _check_boxes("remove_small_boxes", boxes=boxes)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return dl.where((w >= min_size) & (h >= min_size))[0]


def masks_to_boxes(masks: Tensor) -> Tensor:
    """The xyxy box around the nonzero pixels of each (H, W) mask in (N, H, W), as float
    (the max coordinates are the last nonzero row and column themselves); an empty mask
    gives (0, 0, 0, 0)."""
    if masks.ndim != 3:
        raise InvalidValue(f"masks_to_boxes: masks must be (N, H, W), got {tuple(masks.shape)}")
    on = masks != 0
    rows, cols = on.any(dim=2), on.any(dim=1)  # (N, H), (N, W)
    h, w = masks.shape[1:]

    def first_last(hit: Tensor, n: int) -> tuple[Tensor, Tensor]:
        ramp = dl.arange(n, device=masks.device).expand_as(hit)
        none = dl.zeros(len(hit), dtype=dl.int64, device=masks.device)  # (an empty axis)
        first = dl.where(hit, ramp, n).amin(dim=1) if n else none
        last = dl.where(hit, ramp, -1).amax(dim=1) if n else none
        found = hit.any(dim=1) if n else none.bool()
        return dl.where(found, first, 0), dl.where(found, last, 0)

    y1, y2 = first_last(rows, h)
    x1, x2 = first_last(cols, w)
    return dl.stack((x1, y1, x2, y2), dim=1).float()


def _greedy_keep(boxes: np.ndarray, order: np.ndarray, threshold: float, labels: Any) -> list:
    """Greedy suppression over ``order`` (boxes by falling score): a box is kept unless a
    kept box (of the same label, when labels are given) overlaps it with IoU > threshold."""
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    alive = np.ones(len(boxes), bool)
    keep = []
    for pos, i in enumerate(order):
        if not alive[i]:
            continue
        keep.append(i)
        rest = order[pos + 1 :]
        rest = rest[alive[rest]]
        if labels is not None:
            rest = rest[labels[rest] == labels[i]]
        if not len(rest):
            continue
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / (area[i] + area[rest] - inter)
        alive[rest[iou > threshold]] = False
    return keep


def _nms(boxes: Tensor, scores: Tensor, iou_threshold: float, idxs: Tensor | None, op: str):
    _check_boxes(op, boxes=boxes)
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise InvalidValue(
            f"{op}: scores must have shape ({boxes.shape[0]},), one per box, got "
            f"{tuple(scores.shape)}"
        )
    if idxs is not None and (idxs.ndim != 1 or idxs.shape[0] != boxes.shape[0]):
        raise InvalidValue(
            f"{op}: idxs must have shape ({boxes.shape[0]},), one per box, got {tuple(idxs.shape)}"
        )
    # The greedy pass is sequential: it runs on the host (one copy of the boxes and scores,
    # as torchvision's GPU kernel also finishes on the host).
    b = to_numpy(boxes.detach().array)
    s = to_numpy(scores.detach().array)
    order = np.argsort(-s.astype(np.float64), kind="stable")
    labels = None if idxs is None else to_numpy(idxs.array)
    keep = np.asarray(_greedy_keep(b, order, float(iou_threshold), labels), np.int64)
    return dl.tensor(keep, dtype=dl.int64, device=boxes.device)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Non-maximum suppression: the indices (int64) of the boxes kept, by decreasing score.
    Going down the boxes by score, each box that overlaps an already kept one with IoU
    above ``iou_threshold`` is dropped."""
    return _nms(boxes, scores, iou_threshold, None, "nms")


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category of ``idxs`` (boxes of different categories never suppress
    each other): the indices kept, by decreasing score."""
    return _nms(boxes, scores, iou_threshold, idxs, "batched_nms")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    raise InvalidValue(
        f"{op}: invalid value for reduction: {reduction!r}; supported: 'none', 'mean', 'sum'"
    )


def _loss_inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise intersection and union of matched boxes (..., 4)."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    w = (dl.minimum(x2, x2g) - dl.maximum(x1, x1g)).clamp(min=0)
    h = (dl.minimum(y2, y2g) - dl.maximum(y1, y1g)).clamp(min=0)
    inter = w * h
    return inter, (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter


def _check_pairs(op: str, boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    if boxes1.shape != boxes2.shape or boxes1.shape[-1:] != (4,):
        raise InvalidValue(
            f"{op}: boxes1 and boxes2 must be matched (..., 4) boxes of one shape, got "
            f"{tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    return _upcast_non_float(boxes1), _upcast_non_float(boxes2)


def _hull(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Width and height of the box enclosing each matched pair."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    return dl.maximum(x2, x2g) - dl.minimum(x1, x1g), dl.maximum(y2, y2g) - dl.minimum(y1, y1g)


def generalized_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """1 - GIoU of matched (..., 4) xyxy boxes; 0 for equal boxes, up to 2 far apart."""
    boxes1, boxes2 = _check_pairs("generalized_box_iou_loss", boxes1, boxes2)
    inter, union = _loss_inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    hw, hh = _hull(boxes1, boxes2)
    hull = hw * hh
    loss = 1 - (iou - (hull - union) / (hull + eps))
    return _reduce(loss, reduction, "generalized_box_iou_loss")


def _diou_loss(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    inter, union = _loss_inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    hw, hh = _hull(boxes1, boxes2)
    diagonal = hw**2 + hh**2 + eps
    xp, yp = _centres(boxes1)
    xg, yg = _centres(boxes2)
    return 1 - iou + ((xp - xg) ** 2 + (yp - yg) ** 2) / diagonal, iou


def distance_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """1 - DIoU of matched (..., 4) xyxy boxes."""
    boxes1, boxes2 = _check_pairs("distance_box_iou_loss", boxes1, boxes2)
    return _reduce(_diou_loss(boxes1, boxes2, eps)[0], reduction, "distance_box_iou_loss")


def complete_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """1 - CIoU of matched (..., 4) xyxy boxes."""
    boxes1, boxes2 = _check_pairs("complete_box_iou_loss", boxes1, boxes2)
    loss, iou = _diou_loss(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    v = _aspect_term(x2 - x1, y2 - y1, x2g - x1g, y2g - y1g)
    with dl.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(loss + alpha * v, reduction, "complete_box_iou_loss")


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """The focal loss of RetinaNet on logits ``inputs`` and binary ``targets`` of the same
    shape: binary cross-entropy scaled by (1 - p_t)^gamma, which fades out the easy
    examples, and weighted by ``alpha`` for positives and 1 - alpha for negatives (no
    weighting with a negative alpha)."""
    import darklib.nn.functional as F

    p = dl.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction, "sigmoid_focal_loss")
