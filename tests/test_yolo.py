"""dl.vision.models.yolo: the YOLOv3-style detector's shapes, YOLOv3's target assignment
(checked against a hand computation), decoding (perfect outputs give the ground truth back),
the loss's gradients (finite differences) and its terms, a short training run that learns
to find squares, and the errors for bad targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

import darklib as dl
from darklib.vision.models import YOLOLoss, YOLOv3, decode, default_anchors
from darklib.vision.models.yolo import build_targets
from tests.oracle import DEVICES

ANCHORS = default_anchors(2, 160)  # strides 16 and 32 at 160x160


def test_outputs_per_scale_and_objectness_prior():
    m = YOLOv3(num_classes=3, anchors=ANCHORS, width=4)
    out = m(dl.randn(2, 3, 160, 96))
    assert [tuple(o.shape) for o in out] == [(2, 3, 10, 6, 8), (2, 3, 5, 3, 8)]
    assert m.strides == (16, 32)
    three = YOLOv3(num_classes=1, width=4)
    assert [tuple(o.shape) for o in three(dl.randn(1, 3, 64, 64))] == [
        (1, 3, 8, 8, 6),
        (1, 3, 4, 4, 6),
        (1, 3, 2, 2, 6),
    ]
    bias = m.head4[1].bias.view(3, 8)
    assert np.allclose(bias[:, 4].detach().numpy(), math.log(0.01 / 0.99))


def test_bad_inputs_and_anchors_are_clear_errors():
    m = YOLOv3(anchors=ANCHORS, width=4)
    with pytest.raises(ValueError, match="multiples of 32"):
        m(dl.randn(1, 3, 100, 96))
    with pytest.raises(ValueError, match="2 or 3 scales"):
        YOLOv3(anchors=[[(10, 10)]])
    with pytest.raises(ValueError, match="positive"):
        YOLOv3(anchors=[[(10, 0)], [(5, 5)]])
    with pytest.raises(ValueError, match="num_classes"):
        YOLOv3(num_classes=0)


def _targets():
    return [
        {
            "boxes": dl.tensor([[20.0, 30.0, 60.0, 80.0], [100.0, 10.0, 150.0, 150.0]]),
            "labels": dl.tensor([0, 1]),
        },
        {"boxes": dl.zeros(0, 4), "labels": dl.zeros(0, dtype=dl.int64)},
    ]


def test_assignment_matches_a_hand_computation():
    grids = [(10, 10), (5, 5)]
    built = build_targets(_targets(), ANCHORS, grids, 2)
    shapes = [wh for scale in ANCHORS for wh in scale]
    for (x1, y1, x2, y2), label in [((20, 30, 60, 80), 0), ((100, 10, 150, 150), 1)]:
        bw, bh = x2 - x1, y2 - y1
        ious = [
            min(bw, aw) * min(bh, ah) / (bw * bh + aw * ah - min(bw, aw) * min(bh, ah))
            for aw, ah in shapes
        ]
        k = int(np.argmax(ious))
        s, a = divmod(k, 3)
        stride = (16, 32)[s]
        gx, gy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
        cx, cy = int(gx), int(gy)
        t = built[s]
        assert t["obj"][0, a, cy, cx] == 1
        np.testing.assert_allclose(t["xy"][0, a, cy, cx], (gx - cx, gy - cy), rtol=1e-6)
        aw, ah = shapes[k]
        np.testing.assert_allclose(
            t["wh"][0, a, cy, cx], (math.log(bw / aw), math.log(bh / ah)), rtol=1e-6
        )
        assert t["cls"][0, a, cy, cx].tolist() == [float(label == 0), float(label == 1)]
        np.testing.assert_allclose(t["scale"][0, a, cy, cx], 2 - bw * bh / 160**2, rtol=1e-6)
    assert sum(t["obj"].sum() for t in built) == 2  # one anchor per box, none for image 1
    assert all(t["obj"][1].sum() == 0 for t in built)


def _perfect_outputs(targets, num_classes, grids, dtype=np.float64):
    """Raw outputs that decode exactly to ``targets``: the assigned anchors say 'object'
    with the target offsets, every other anchor says 'nothing' loudly."""
    built = build_targets(targets, ANCHORS, grids, num_classes)
    outs = []
    for t in built:
        p = np.zeros((*t["obj"].shape, 5 + num_classes), dtype)
        xy = np.clip(t["xy"], 1e-6, 1 - 1e-6)
        p[..., :2] = np.log(xy / (1 - xy))
        p[..., 2:4] = t["wh"]
        p[..., 4] = np.where(t["obj"] > 0, 12.0, -12.0)
        p[..., 5:] = np.where(t["cls"] > 0, 12.0, -12.0)
        outs.append(dl.tensor(p, requires_grad=True))
    return outs, built


@pytest.mark.parametrize("device", DEVICES)
def test_perfect_outputs_decode_to_the_ground_truth(device):
    targets = _targets()
    outs, _ = _perfect_outputs(targets, 2, [(10, 10), (5, 5)])
    outs = [o.detach().to(device) for o in outs]
    dets = decode(outs, ANCHORS, conf_threshold=0.5)
    assert len(dets) == 2 and len(dets[1]["boxes"]) == 0
    found = dets[0]
    order = np.argsort(found["boxes"].cpu().numpy()[:, 0])
    np.testing.assert_allclose(
        found["boxes"].cpu().numpy()[order], targets[0]["boxes"].numpy(), atol=1e-3
    )
    assert found["labels"].cpu().numpy()[order].tolist() == [0, 1]
    assert np.all(found["scores"].cpu().numpy() > 0.99)


def test_the_box_term_is_stationary_at_the_target_and_gradients_match_finite_differences():
    targets = _targets()
    outs, _ = _perfect_outputs(targets, 2, [(10, 10), (5, 5)])
    loss = YOLOLoss(ANCHORS, num_classes=2)
    loss.parts(outs, targets)["box"].backward()
    assert max(float(o.grad.abs().max()) for o in outs) < 1e-5

    # away from the target, the total's gradient is the finite-difference one
    rng = np.random.default_rng(0)
    small = [
        dl.tensor(rng.standard_normal((2, 3, 2, 2, 7)), requires_grad=True),
        dl.tensor(rng.standard_normal((2, 3, 1, 1, 7)), requires_grad=True),
    ]
    tiny = [{"boxes": dl.tensor([[5.0, 6.0, 30.0, 40.0]]), "labels": dl.tensor([1])}] * 2
    assert dl.autograd.gradcheck(lambda a, b: YOLOLoss(ANCHORS, 2)([a, b], tiny), small)


def test_loss_terms_follow_their_definitions():
    targets = _targets()
    rng = np.random.default_rng(1)
    outs = [dl.tensor(rng.standard_normal((2, 3, h, w, 7))) for h, w in [(10, 10), (5, 5)]]
    built = build_targets(targets, ANCHORS, [(10, 10), (5, 5)], 2)
    parts = YOLOLoss(ANCHORS, 2, ignore_threshold=1.0).parts(outs, targets)  # nothing ignored

    def bce(z, t):
        return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))

    box = obj = cls = 0.0
    for p, t in zip(outs, built):
        p = p.numpy().astype(np.float64)
        pos = t["obj"]
        xy = bce(p[..., :2], t["xy"]).sum(-1)
        wh = 0.5 * ((p[..., 2:4] - t["wh"]) ** 2).sum(-1)
        box += ((xy + wh) * t["scale"] * pos).sum()
        obj += bce(p[..., 4], pos).sum()
        cls += (bce(p[..., 5:], t["cls"]).sum(-1) * pos).sum()
    for name, want in [("box", box / 2), ("obj", obj / 2), ("cls", cls / 2)]:
        np.testing.assert_allclose(float(parts[name]), want, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(float(parts["loss"]), (box + obj + cls) / 2, rtol=1e-5)
    # with the usual threshold, predictions overlapping a box lose their objectness term
    assert float(YOLOLoss(ANCHORS, 2, ignore_threshold=0.0).parts(outs, targets)["obj"]) < float(
        parts["obj"]
    )


def _squares(n, rng, size=64):
    """Dark noisy images with one bright square each, and its box."""
    images = rng.uniform(0, 0.2, (n, 3, size, size)).astype(np.float32)
    targets = []
    for i in range(n):
        s = int(rng.integers(14, 30))
        x, y = (int(v) for v in rng.integers(0, size - s, 2))
        images[i, :, y : y + s, x : x + s] = 0.9
        targets.append(
            {"boxes": dl.tensor([[x, y, x + s, y + s]], dtype=dl.float32), "labels": dl.tensor([0])}
        )
    return dl.tensor(images), targets


def test_a_short_training_run_learns_to_find_the_squares_it_trains_on():
    dl.manual_seed(0)
    rng = np.random.default_rng(0)
    anchors = (((12, 12), (18, 18), (24, 24)), ((28, 28), (36, 36), (48, 48)))
    model = YOLOv3(num_classes=1, anchors=anchors, width=4)
    loss_fn = model.loss_fn()
    opt = dl.optim.Adam(model.parameters(), lr=3e-3)
    images, targets = _squares(16, rng)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn(model(images), targets)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0], losses[::10]
    model.eval()
    dets = model.detect(images, conf_threshold=0.05)
    ious = [
        float(dl.vision.ops.box_iou(d["boxes"][:1], t["boxes"]).max()) if len(d["boxes"]) else 0.0
        for d, t in zip(dets, targets)
    ]
    assert np.mean(ious) > 0.5, ious


@pytest.mark.parametrize(
    "targets, match",
    [
        ([{"boxes": dl.zeros(1, 3), "labels": dl.tensor([0])}], r"shape \(M, 4\)"),
        ([{"boxes": dl.tensor([[5.0, 5.0, 5.0, 9.0]]), "labels": dl.tensor([0])}], "x2 > x1"),
        ([{"boxes": dl.tensor([[1.0, 1.0, 5.0, 9.0]]), "labels": dl.tensor([3])}], r"\[0, 2\)"),
        ([], "list of 1 dicts"),
        ([{"labels": dl.tensor([0])}], "'boxes' and 'labels'"),
    ],
)
def test_bad_targets_say_what_is_wrong(targets, match):
    preds = YOLOv3(num_classes=2, anchors=ANCHORS, width=4)(dl.randn(1, 3, 64, 64))
    with pytest.raises((ValueError, TypeError), match=match):
        YOLOLoss(ANCHORS, 2)(preds, targets)


@pytest.mark.parametrize("device", DEVICES)
def test_forward_loss_and_detect_on_each_device(device):
    dl.manual_seed(0)
    model = YOLOv3(num_classes=2, anchors=ANCHORS, width=4).to(device)
    x = dl.randn(2, 3, 64, 64, device=device)
    targets = [{k: v.to(device) for k, v in t.items()} for t in _targets()]
    loss = model.loss_fn()(model(x), targets)
    loss.backward()
    assert np.isfinite(float(loss)) and model.stem[0].weight.grad is not None
    model.eval()
    dets = model.detect(x, conf_threshold=0.0, max_detections=5)
    assert [len(d["boxes"]) for d in dets] == [5, 5]
    assert str(dets[0]["boxes"].device) == str(x.device)


def test_boxes_spilling_over_the_image_are_clipped_to_it():
    # A box half outside the image (random crops and shifts make them) is assigned as the
    # part in view, as Darknet's loader clips it: unclipped, its centre lies outside, the
    # cell offset is above 1 and the BCE on tx has no lower bound. A box wholly outside is
    # dropped.
    grids = [(10, 10), (5, 5)]
    spilling = [{"boxes": dl.tensor([[150.0, 40.0, 200.0, 90.0]]), "labels": dl.tensor([0])}]
    inside = [{"boxes": dl.tensor([[150.0, 40.0, 160.0, 90.0]]), "labels": dl.tensor([0])}]
    for got, want in zip(
        build_targets(spilling, ANCHORS, grids, 1), build_targets(inside, ANCHORS, grids, 1)
    ):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    outside = [{"boxes": dl.tensor([[170.0, 0.0, 200.0, 20.0]]), "labels": dl.tensor([0])}]
    assert sum(t["obj"].sum() for t in build_targets(outside, ANCHORS, grids, 1)) == 0
    # so the box term stays non-negative however far tx is pushed
    preds = [dl.zeros(1, 3, 10, 10, 6), dl.zeros(1, 3, 5, 5, 6)]
    for p in preds:
        p[..., :2] = 1000.0
    assert float(YOLOLoss(ANCHORS, 1).parts(preds, spilling)["box"]) >= 0


def test_float64_outputs_are_trained_towards_float64_targets():
    # the targets are kept in float64, so float64 outputs at the exact (hand-computed)
    # target have a zero box gradient, not one of float32's rounding
    x1, y1, x2, y2 = 21.0, 30.0, 61.0, 83.0
    shapes = [wh for scale in ANCHORS for wh in scale]
    bw, bh = x2 - x1, y2 - y1
    ious = [
        min(bw, aw) * min(bh, ah) / (bw * bh + aw * ah - min(bw, aw) * min(bh, ah))
        for aw, ah in shapes
    ]
    k = int(np.argmax(ious))
    s, a = divmod(k, 3)
    stride, grid = (16, 32)[s], [(10, 10), (5, 5)][s]
    gx, gy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
    cx, cy = int(gx), int(gy)
    ox, oy = gx - cx, gy - cy
    outs = [np.zeros((1, 3, h, w, 6)) for h, w in [(10, 10), (5, 5)]]
    outs[s][0, a, cy, cx, :4] = (
        math.log(ox / (1 - ox)),
        math.log(oy / (1 - oy)),
        math.log(bw / shapes[k][0]),
        math.log(bh / shapes[k][1]),
    )
    assert outs[s].shape[2:4] == grid
    outs = [dl.tensor(o, requires_grad=True) for o in outs]
    targets = [{"boxes": dl.tensor([[x1, y1, x2, y2]], dtype=dl.float64), "labels": dl.tensor([0])}]
    YOLOLoss(ANCHORS, 1).parts(outs, targets)["box"].backward()
    assert max(float(o.grad.abs().max()) for o in outs) < 1e-12


def test_bad_outputs_and_settings_say_what_is_wrong():
    preds = YOLOv3(num_classes=2, anchors=ANCHORS, width=4)(dl.randn(1, 3, 64, 64))
    targets = [{"boxes": dl.tensor([[1.0, 1.0, 5.0, 9.0]]), "labels": dl.tensor([0])}]
    with pytest.raises(ValueError, match=r"5 \+ 3"):  # the model has 2 classes, the loss 3
        YOLOLoss(ANCHORS, 3)(preds, targets)
    with pytest.raises(ValueError, match="num_classes"):
        YOLOLoss(ANCHORS, 0)
    with pytest.raises(ValueError, match="finest first"):  # the scales in the wrong order
        decode(preds[::-1], ANCHORS)
    with pytest.raises(ValueError, match="finest first"):
        YOLOLoss(ANCHORS, 2)(preds[::-1], targets)
    with pytest.raises(ValueError, match="max_detections"):
        decode(preds, ANCHORS, max_detections=-1)
    nan = [{"boxes": dl.tensor([[float("nan"), 1.0, 5.0, 9.0]]), "labels": dl.tensor([0])}]
    with pytest.raises(ValueError, match="finite"):
        YOLOLoss(ANCHORS, 2)(preds, nan)


def test_the_acceptance_average_precision_is_voc_all_point():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "faces_acceptance.py"
    spec = importlib.util.spec_from_file_location("faces_acceptance", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    truths = [
        np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32),
        np.array([[0, 0, 10, 10]], np.float32),
    ]
    detections = [
        {  # a hit, its duplicate (a false positive), a miss
            "boxes": dl.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10.5], [50, 50, 60, 60]]),
            "scores": dl.tensor([0.9, 0.8, 0.7]),
        },
        {"boxes": dl.tensor([[0.0, 0, 10, 10]]), "scores": dl.tensor([0.4])},
    ]
    # by score: hit, dup, miss, hit: recall 1/3 at precision 1, then 2/3 at precision 1/2
    ap, recall = bench.average_precision(detections, truths)
    assert ap == pytest.approx(1 / 3 * 1 + 1 / 3 * 0.5)
    assert recall == pytest.approx(1 / 3)  # the second hit scores under 0.5
