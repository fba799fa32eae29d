"""dl.vision.ops against torchvision.ops' definitions.

torchvision is not a dependency: its formulas are written here once more in torch (the box
IoUs and losses, whose gradients torch's autograd then gives) or as plain loops over
samples (NMS, RoIAlign, RoIPool: transcriptions of the algorithms of torchvision's CPU
kernels), and darklib's vectorised versions must agree with them."""

import math

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.vision import ops
from tests.oracle import DEVICES


def _boxes(rng, n, scale=20.0, degenerate=False):
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(0 if degenerate else 0.5, scale / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


# ----------------------------------------------------------------------------- references
def _t_area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _t_inter_union(b1, b2):
    lt = torch.max(b1[:, None, :2], b2[:, :2])
    rb = torch.min(b1[:, None, 2:], b2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, _t_area(b1)[:, None] + _t_area(b2) - inter


def _t_iou(b1, b2):
    inter, union = _t_inter_union(b1, b2)
    return inter / union


def _t_giou(b1, b2):
    inter, union = _t_inter_union(b1, b2)
    wh = (torch.max(b1[:, None, 2:], b2[:, 2:]) - torch.min(b1[:, None, :2], b2[:, :2])).clamp(
        min=0
    )
    hull = wh[..., 0] * wh[..., 1]
    return inter / union - (hull - union) / hull


def _t_diou_iou(b1, b2, eps=1e-7):
    iou = _t_iou(b1, b2)
    wh = (torch.max(b1[:, None, 2:], b2[:, 2:]) - torch.min(b1[:, None, :2], b2[:, :2])).clamp(
        min=0
    )
    diag = wh[..., 0] ** 2 + wh[..., 1] ** 2 + eps
    cx1, cy1 = (b1[:, 0] + b1[:, 2]) / 2, (b1[:, 1] + b1[:, 3]) / 2
    cx2, cy2 = (b2[:, 0] + b2[:, 2]) / 2, (b2[:, 1] + b2[:, 3]) / 2
    dist = (cx1[:, None] - cx2[None]) ** 2 + (cy1[:, None] - cy2[None]) ** 2
    return iou - dist / diag, iou


def _t_ciou(b1, b2, eps=1e-7):
    diou, iou = _t_diou_iou(b1, b2, eps)
    w1, h1 = b1[:, None, 2] - b1[:, None, 0], b1[:, None, 3] - b1[:, None, 1]
    w2, h2 = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def _t_pair_terms(b1, b2, eps=1e-7):
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    w = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp(min=0)
    h = (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp(min=0)
    inter = w * h
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    hw = torch.max(x2, x2g) - torch.min(x1, x1g)
    hh = torch.max(y2, y2g) - torch.min(y1, y1g)
    return iou, union, hw, hh


def _t_giou_loss(b1, b2, eps=1e-7):
    iou, union, hw, hh = _t_pair_terms(b1, b2, eps)
    return 1 - (iou - (hw * hh - union) / (hw * hh + eps))


def _t_diou_loss(b1, b2, eps=1e-7):
    iou, _, hw, hh = _t_pair_terms(b1, b2, eps)
    cx = ((b1[:, 0] + b1[:, 2]) - (b2[:, 0] + b2[:, 2])) / 2
    cy = ((b1[:, 1] + b1[:, 3]) - (b2[:, 1] + b2[:, 3])) / 2
    return 1 - iou + (cx**2 + cy**2) / (hw**2 + hh**2 + eps)


def _t_ciou_loss(b1, b2, eps=1e-7):
    iou, *_ = _t_pair_terms(b1, b2, eps)
    w1, h1 = b1[:, 2] - b1[:, 0], b1[:, 3] - b1[:, 1]
    w2, h2 = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _t_diou_loss(b1, b2, eps) + alpha * v


def _t_focal(x, t, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def _greedy_nms(boxes, scores, thr, labels=None):
    """Textbook NMS: repeatedly keep the best remaining box and drop its overlaps."""
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep, dropped = [], set()
    for i in order:
        if i in dropped:
            continue
        keep.append(i)
        for j in order:
            if j in dropped or j == i or (labels is not None and labels[j] != labels[i]):
                continue
            a, b = boxes[i], boxes[j]
            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = w * h
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            if inter / union > thr and j not in keep:
                dropped.add(j)
    return keep


def _bilinear(img, y, x):
    """torchvision's roi_align sample: img (C, H, W) at (y, x), zero outside."""
    h, w = img.shape[1:]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(img.shape[0]), []
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yh = yl = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xh = xl = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1 - ly, 1 - lx
    taps = [(yl, xl, hy * hx), (yl, xh, hy * lx), (yh, xl, ly * hx), (yh, xh, ly * lx)]
    return sum(wt * img[:, r, c] for r, c, wt in taps), taps


def _roi_align_loop(x, rois, out, scale, ratio, aligned):
    """A transcription of torchvision's CPU roi_align, sample by sample; also returns the
    adjoint as a function of the output gradient."""
    k = len(rois)
    ph, pw = out
    y = np.zeros((k, x.shape[1], ph, pw))
    adj = []  # (roi, bin, tap) contributions for the adjoint
    off = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        b = int(b)
        sw, sh = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sw, y2 * scale - off - sh
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = ratio if ratio > 0 else math.ceil(rh / ph)
        gw = ratio if ratio > 0 else math.ceil(rw / pw)
        count = max(gh * gw, 1)
        for i in range(ph):
            for j in range(pw):
                acc = np.zeros(x.shape[1])
                for iy in range(gh):
                    yy = sh + i * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = sw + j * bw + (ix + 0.5) * bw / gw
                        v, taps = _bilinear(x[b], yy, xx)
                        acc += v
                        adj += [(r, i, j, b, rr, cc, wt / count) for rr, cc, wt in taps]
                y[r, :, i, j] = acc / count

    def adjoint(g):
        gx = np.zeros_like(x)
        for r, i, j, b, rr, cc, wt in adj:
            gx[b, :, rr, cc] += wt * g[r, :, i, j]
        return gx

    return y, adjoint


def _c_round(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def _roi_pool_loop(x, rois, out, scale):
    """A transcription of torchvision's CPU roi_pool; the output and each bin's argmax."""
    k, c, (h, w) = len(rois), x.shape[1], x.shape[2:]
    ph, pw = out
    y = np.zeros((k, c, ph, pw))
    arg = np.full((k, c, ph, pw), -1)
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        b = int(b)
        sw, sh = _c_round(x1 * scale), _c_round(y1 * scale)
        ew, eh = _c_round(x2 * scale), _c_round(y2 * scale)
        rw, rh = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bh, bw = rh / ph, rw / pw
        for i in range(ph):
            for j in range(pw):
                hs = min(max(math.floor(i * bh) + sh, 0), h)
                he = min(max(math.ceil((i + 1) * bh) + sh, 0), h)
                ws = min(max(math.floor(j * bw) + sw, 0), w)
                we = min(max(math.ceil((j + 1) * bw) + sw, 0), w)
                if he <= hs or we <= ws:
                    continue
                for ch in range(c):
                    best, where = -np.inf, -1
                    for yy in range(hs, he):
                        for xx in range(ws, we):
                            if x[b, ch, yy, xx] > best:
                                best, where = x[b, ch, yy, xx], yy * w + xx
                    y[r, ch, i, j], arg[r, ch, i, j] = best, where
    return y, arg


# ----------------------------------------------------------------------------- boxes
PAIRWISE = [
    (ops.box_iou, _t_iou),
    (ops.generalized_box_iou, _t_giou),
    (ops.distance_box_iou, lambda a, b: _t_diou_iou(a, b)[0]),
    (ops.complete_box_iou, _t_ciou),
]


@pytest.mark.parametrize(("ours", "ref"), PAIRWISE, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("device", DEVICES)
def test_pairwise_ious_and_their_gradients_match_torchvisions_formulas(ours, ref, device):
    rng = np.random.default_rng(0)
    a, b = _boxes(rng, 7), _boxes(rng, 5)
    a[3] = b[1]  # an identical pair
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    da, db = (dl.tensor(v, device=device, requires_grad=True) for v in (a, b))
    expect, got = ref(ta, tb), ours(da, db)
    assert got.shape == (7, 5) and got.dtype == dl.float64
    np.testing.assert_allclose(
        got.detach().cpu().numpy(), expect.detach().numpy(), rtol=1e-10, atol=1e-12
    )
    w = rng.standard_normal((7, 5))
    (expect * torch.tensor(w)).sum().backward()
    (got * dl.tensor(w, device=device)).sum().backward()
    np.testing.assert_allclose(da.grad.cpu().numpy(), ta.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(db.grad.cpu().numpy(), tb.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_iou_of_known_boxes_and_upcasting():
    a = dl.tensor([[0, 0, 2, 2]], dtype=dl.int64)
    b = dl.tensor([[1, 1, 3, 3], [2, 2, 4, 4], [0, 0, 2, 2]], dtype=dl.int64)
    np.testing.assert_allclose(ops.box_iou(a, b).numpy(), [[1 / 7, 0.0, 1.0]])
    assert ops.box_area(b).dtype == dl.int64 and ops.box_area(b).tolist() == [4, 4, 4]
    half = dl.tensor([[0.0, 0.0, 300.0, 300.0]], dtype=dl.float16)
    assert ops.box_area(half).dtype == dl.float32  # 90,000 overflows float16
    np.testing.assert_allclose(ops.generalized_box_iou(a.float(), b[1:2].float()).item(), -0.5)


LOSSES = [
    (ops.generalized_box_iou_loss, _t_giou_loss),
    (ops.distance_box_iou_loss, _t_diou_loss),
    (ops.complete_box_iou_loss, _t_ciou_loss),
]


@pytest.mark.parametrize(("ours", "ref"), LOSSES, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_box_losses_match_torchvisions_formulas(ours, ref, reduction):
    rng = np.random.default_rng(1)
    a, b = _boxes(rng, 6), _boxes(rng, 6)
    b[0] = a[0]
    ta, da = torch.tensor(a, requires_grad=True), dl.tensor(a, requires_grad=True)
    expect = ref(ta, torch.tensor(b))
    expect = {"none": expect, "mean": expect.mean(), "sum": expect.sum()}[reduction]
    got = ours(da, dl.tensor(b), reduction=reduction)
    np.testing.assert_allclose(got.detach().numpy(), expect.detach().numpy(), rtol=1e-10)
    expect.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(da.grad.numpy(), ta.grad.numpy(), rtol=1e-8, atol=1e-12)
    if reduction == "none":
        assert abs(got[0].item()) < 1e-6  # equal boxes: no loss


def test_box_losses_refuse_unmatched_boxes_and_bad_reductions():
    a = dl.zeros(3, 4)
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(2, 4\)"):
        ops.generalized_box_iou_loss(a, dl.zeros(2, 4))
    with pytest.raises(ValueError, match="reduction"):
        ops.complete_box_iou_loss(a, a, reduction="avg")
    empty = ops.distance_box_iou_loss(dl.zeros(0, 4), dl.zeros(0, 4), reduction="mean")
    assert empty.item() == 0.0


@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_focal_loss_matches_the_retinanet_formula(alpha, reduction):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5)) * 3
    t = (rng.random((4, 5)) > 0.7).astype(np.float64)
    tx, dx = torch.tensor(x, requires_grad=True), dl.tensor(x, requires_grad=True)
    expect = _t_focal(tx, torch.tensor(t), alpha=alpha, gamma=1.5)
    expect = {"none": expect, "mean": expect.mean(), "sum": expect.sum()}[reduction]
    got = ops.sigmoid_focal_loss(dx, dl.tensor(t), alpha=alpha, gamma=1.5, reduction=reduction)
    np.testing.assert_allclose(got.detach().numpy(), expect.detach().numpy(), rtol=1e-10)
    expect.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_box_convert_round_trips_and_matches_the_definitions():
    xyxy = dl.tensor([[1.0, 2.0, 5.0, 8.0], [0.0, 0.0, 1.0, 1.0]])
    xywh = ops.box_convert(xyxy, "xyxy", "xywh")
    cxcywh = ops.box_convert(xyxy, "xyxy", "cxcywh")
    assert xywh.tolist() == [[1, 2, 4, 6], [0, 0, 1, 1]]
    assert cxcywh.tolist() == [[3, 5, 4, 6], [0.5, 0.5, 1, 1]]
    assert ops.box_convert(xywh, "xywh", "cxcywh").tolist() == cxcywh.tolist()
    assert ops.box_convert(cxcywh, "cxcywh", "xyxy").tolist() == xyxy.tolist()
    same = ops.box_convert(xyxy, "xyxy", "xyxy")
    assert same.tolist() == xyxy.tolist() and same is not xyxy
    with pytest.raises(ValueError, match="'yxyx'"):
        ops.box_convert(xyxy, "yxyx", "xyxy")


def test_clip_remove_small_and_masks_to_boxes():
    b = dl.tensor([[-5.0, 2.0, 30.0, 12.0], [1.0, 1.0, 1.5, 9.0]])
    assert ops.clip_boxes_to_image(b, (10, 20)).tolist() == [[0, 2, 20, 10], [1, 1, 1.5, 9]]
    assert ops.remove_small_boxes(b, 1.0).tolist() == [0]
    masks = dl.zeros(3, 6, 8, dtype=dl.uint8)
    masks[0, 1:4, 2:7] = 1
    masks[1, 5, 0] = 1
    boxes = ops.masks_to_boxes(masks)
    assert boxes.dtype == dl.float32
    assert boxes.tolist() == [[2, 1, 6, 3], [0, 5, 0, 5], [0, 0, 0, 0]]


# ----------------------------------------------------------------------------- NMS
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("thr", [0.2, 0.5, 0.8])
def test_nms_keeps_what_greedy_suppression_keeps(seed, thr):
    rng = np.random.default_rng(seed)
    boxes = _boxes(rng, 60, scale=30.0)
    scores = rng.random(60).round(1)  # ties among the scores
    keep = ops.nms(dl.tensor(boxes), dl.tensor(scores), thr)
    assert keep.dtype == dl.int64
    assert keep.tolist() == _greedy_nms(boxes, scores, thr)
    labels = rng.integers(0, 3, 60)
    kept = ops.batched_nms(dl.tensor(boxes), dl.tensor(scores), dl.tensor(labels), thr)
    assert kept.tolist() == _greedy_nms(boxes, scores, thr, labels)


def test_nms_edge_cases():
    empty = ops.nms(dl.zeros(0, 4), dl.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == dl.int64
    same = dl.tensor([[0.0, 0, 1, 1]] * 3)
    assert ops.nms(same, dl.tensor([0.1, 0.9, 0.5]), 0.5).tolist() == [1]
    assert ops.nms(same, dl.tensor([0.1, 0.9, 0.5]), 1.0).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match=r"scores must have shape \(3,\)"):
        ops.nms(same, dl.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"\(N, 4\).*\(3, 5\)"):
        ops.nms(dl.zeros(3, 5), dl.zeros(3), 0.5)


# ----------------------------------------------------------------------------- RoI ops
def _feature(rng, n=2, c=3, h=9, w=11):
    return rng.standard_normal((n, c, h, w))


ROIS = np.array(
    [
        [0, 1.2, 0.7, 6.3, 5.1],
        [1, 0.0, 0.0, 10.9, 8.9],  # the whole map
        [1, -3.0, 2.0, 4.0, 12.5],  # partly outside
        [0, 7.5, 3.2, 7.9, 3.4],  # smaller than a pixel
        [1, 20.0, 20.0, 30.0, 25.0],  # entirely outside
        [0, 4.0, 4.0, 2.0, 1.0],  # reversed corners
    ]
)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize(("ratio", "scale"), [(-1, 1.0), (2, 1.0), (0, 0.5), (3, 0.75)])
@pytest.mark.parametrize("device", DEVICES)
def test_roi_align_matches_the_sample_by_sample_algorithm(aligned, ratio, scale, device):
    rng = np.random.default_rng(3)
    x = _feature(rng)
    expect, adjoint = _roi_align_loop(x, ROIS, (3, 4), scale, ratio, aligned)
    dx = dl.tensor(x, device=device, requires_grad=True)
    got = ops.roi_align(dx, dl.tensor(ROIS, device=device), (3, 4), scale, ratio, aligned)
    assert got.shape == (6, 3, 3, 4) and got.dtype == dl.float64
    np.testing.assert_allclose(got.detach().cpu().numpy(), expect, rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(got.shape)
    got.backward(dl.tensor(g, device=device))
    np.testing.assert_allclose(dx.grad.cpu().numpy(), adjoint(g), rtol=1e-10, atol=1e-12)


def test_roi_align_gradcheck_float32_and_list_boxes():
    rng = np.random.default_rng(4)
    x = dl.tensor(_feature(rng, c=2, h=6, w=7), requires_grad=True)
    rois = dl.tensor(ROIS[:3] * [1, 0.6, 0.6, 0.6, 0.6])
    assert dl.autograd.gradcheck(
        lambda t: ops.roi_align(t, rois, 2, 1.0, 2, True), (x,), eps=1e-6, atol=1e-6
    )
    x32 = dl.tensor(_feature(rng).astype(np.float32))
    per_image = [dl.tensor(ROIS[ROIS[:, 0] == i, 1:]) for i in range(2)]
    flat = dl.tensor(np.concatenate([ROIS[ROIS[:, 0] == i] for i in range(2)]))
    a = ops.roi_align(x32, per_image, 2, sampling_ratio=2)
    b = ops.roi_align(x32, flat, 2, sampling_ratio=2)
    assert a.dtype == dl.float32 and np.array_equal(a.numpy(), b.numpy())
    layer = ops.RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)
    assert np.array_equal(layer(x32, flat).numpy(), b.numpy())
    assert (
        repr(layer)
        == "RoIAlign(output_size=(2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=False)"
    )


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.3])
@pytest.mark.parametrize("device", DEVICES)
def test_roi_pool_matches_the_bin_by_bin_algorithm(scale, device):
    rng = np.random.default_rng(5)
    x = _feature(rng)
    x[0, 0, 2:4, 2:4] = 1.5  # a tie inside a bin: the first maximum takes the gradient
    expect, arg = _roi_pool_loop(x, ROIS, (3, 2), scale)
    dx = dl.tensor(x, device=device, requires_grad=True)
    got = ops.roi_pool(dx, dl.tensor(ROIS, device=device), (3, 2), scale)
    np.testing.assert_array_equal(got.detach().cpu().numpy(), expect)
    g = rng.standard_normal(got.shape)
    got.backward(dl.tensor(g, device=device))
    gx = np.zeros_like(x)
    for (r, ch, i, j), a in np.ndenumerate(arg):
        if a >= 0:
            gx[int(ROIS[r, 0]), ch].reshape(-1)[a] += g[r, ch, i, j]
    np.testing.assert_allclose(dx.grad.cpu().numpy(), gx, rtol=1e-12)
    assert repr(ops.RoIPool(7, 0.25)) == "RoIPool(output_size=7, spatial_scale=0.25)"


@pytest.mark.parametrize("device", DEVICES)
def test_nms_and_masks_to_boxes_keep_the_device(device):
    boxes = dl.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], device=device)
    keep = ops.nms(boxes, dl.tensor([0.9, 0.8, 0.7], device=device), 0.5)
    assert keep.device == boxes.device and keep.dtype == dl.int64 and keep.tolist() == [0, 2]
    masks = dl.zeros(2, 4, 5, device=device)
    masks[1, 1:3, 2:4] = 1
    got = ops.masks_to_boxes(masks)
    assert got.device == boxes.device and got.tolist() == [[0, 0, 0, 0], [2, 1, 3, 2]]
    empty = ops.masks_to_boxes(dl.zeros(2, 0, 5, device=device))  # (an axis of size 0)
    assert empty.device == boxes.device and empty.tolist() == [[0.0] * 4] * 2


@pytest.mark.parametrize("device", DEVICES)
def test_roi_pool_half_and_many_boxes_in_chunks(device, monkeypatch):
    """Boxes scanned in several chunks (a tiny chunk size), float32 and float16."""
    from darklib.vision.ops import roi as roi_module

    monkeypatch.setattr(roi_module, "_POOL_CHUNK", 16)
    rng = np.random.default_rng(6)
    x = _feature(rng)
    expect, _ = _roi_pool_loop(x, ROIS, (3, 2), 0.5)
    for dtype, np_dtype in ((dl.float32, np.float32), (dl.float16, np.float16)):
        dx = dl.tensor(x, dtype=dtype, device=device, requires_grad=True)
        got = ops.roi_pool(dx, dl.tensor(ROIS, device=device), (3, 2), 0.5)
        assert got.dtype == dtype and got.device == dx.device
        np.testing.assert_array_equal(got.detach().cpu().numpy(), expect.astype(np_dtype))
        got.sum().backward()
        assert dx.grad.dtype == dtype and float(dx.grad.sum()) == float((expect != 0).sum())


def test_roi_ops_name_bad_arguments():
    x = dl.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\(K, 5\).*\(4, 4\)"):
        ops.roi_align(x, dl.zeros(4, 4), 2)
    with pytest.raises(ValueError, match="box 1 has batch index 2"):
        ops.roi_pool(x, dl.tensor([[0.0, 0, 0, 1, 1], [2.0, 0, 0, 1, 1]]), 2)
    with pytest.raises(ValueError, match=r"boxes\[1\] must be an \(L, 4\)"):
        ops.roi_align(x, [dl.zeros(1, 4), dl.zeros(1, 5)], 2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ops.roi_align(dl.zeros(3, 8, 8), dl.zeros(1, 5), 2)
    with pytest.raises(ValueError, match="output_size"):
        ops.roi_pool(x, dl.zeros(1, 5), (0, 2))
