"""Joint transforms: labels (mask, keypoints, boxes) stay aligned with the pixels."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import darklib as dl
import darklib.vision.transforms as T
from darklib.tensor import Tensor

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _geometric(draw, H, W):
    kind = draw(
        st.sampled_from(
            [
                "crop",
                "center",
                "resize",
                "resize_short",
                "rrc",
                "hflip",
                "vflip",
                "rotate",
                "affine",
                "pad",
            ]
        )
    )
    if kind == "crop":
        pad = draw(st.integers(0, 6))
        h, w = draw(st.integers(4, H + 2 * pad)), draw(st.integers(4, W + 2 * pad))
        return T.RandomCrop((h, w), padding=pad), True
    if kind == "center":
        return T.CenterCrop((draw(st.integers(4, H + 8)), draw(st.integers(4, W + 8)))), True
    if kind == "resize":
        size = (draw(st.integers(6, 64)), draw(st.integers(6, 64)))
        return T.Resize(size, interpolation="nearest"), True
    if kind == "resize_short":
        return T.Resize(draw(st.integers(8, 48))), False
    if kind == "rrc":
        return T.RandomResizedCrop(
            draw(st.integers(8, 40)), scale=(0.3, 1.0), interpolation="nearest"
        ), True
    if kind == "hflip":
        return T.RandomHorizontalFlip(p=1.0), True
    if kind == "vflip":
        return T.RandomVerticalFlip(p=1.0), True
    if kind == "rotate":
        return T.RandomRotation(draw(st.floats(0, 180)), expand=draw(st.booleans())), True
    if kind == "pad":
        return T.Pad(draw(st.lists(st.integers(0, 5), min_size=4, max_size=4))), True
    return T.RandomAffine(
        draw(st.floats(0, 45)), translate=(0.2, 0.2), scale=(0.7, 1.4), shear=(-15, 15)
    ), True


def _centroid(channel):
    ys, xs = np.nonzero(channel)
    w = channel[ys, xs].astype(np.float64)
    return np.array([(xs + 0.5) @ w / w.sum(), (ys + 0.5) @ w / w.sum()])


@st.composite
def scene(draw):
    H, W = draw(st.integers(16, 40)), draw(st.integers(16, 40))
    img = np.zeros((H, W, 3), np.uint8)
    # channel 0: a 3x3 blob whose centre is the keypoint
    r, c = draw(st.integers(1, H - 2)), draw(st.integers(1, W - 2))
    img[r - 1 : r + 2, c - 1 : c + 2, 0] = 255
    kp = np.array([[c + 0.5, r + 0.5]], np.float32)
    # channel 1: a filled rectangle whose extent is the box
    x1, y1 = draw(st.integers(0, W - 4)), draw(st.integers(0, H - 4))
    x2, y2 = draw(st.integers(x1 + 3, W)), draw(st.integers(y1 + 3, H))
    img[y1:y2, x1:x2, 1] = 255
    box = np.array([[x1, y1, x2, y2]], np.float32)
    # channel 2: the mask's labels, drawn into the pixels too
    labels = draw(st.integers(0, 2**31 - 1))
    mask = np.random.default_rng(labels).integers(0, 6, (H, W)).astype(np.uint8)
    img[..., 2] = mask * 40
    return {"image": img, "keypoints": kp, "boxes": box, "mask": mask, "label": 3}


@SETTINGS
@given(st.data(), scene(), st.integers(0, 2**32 - 1))
def test_geometric_transforms_keep_labels_aligned(data, s, seed):
    H, W = s["image"].shape[:2]
    t, exact_mask = _geometric(data.draw, H, W)
    out = t(dict(s), generator=seed)
    img = out["image"]
    oh, ow = img.shape[:2]
    assert out["label"] == 3 and out["mask"].shape == (oh, ow)
    assert out["keypoints"].dtype == np.float32 and out["boxes"].shape == (1, 4)
    scale = max(oh / H, ow / W, H / oh, W / ow, 1.0)
    if exact_mask:  # nearest sampling: the mask is exactly what the pixels carry
        np.testing.assert_array_equal(out["mask"], img[..., 2] // 40)
    blob = img[..., 0]
    ys, xs = np.nonzero(blob)
    inside = len(xs) and xs.min() > 0 and ys.min() > 0 and xs.max() < ow - 1 and ys.max() < oh - 1
    if inside and isinstance(
        t,
        T.RandomCrop
        | T.CenterCrop
        | T.Pad
        | T.RandomHorizontalFlip
        | T.RandomVerticalFlip
        | T.Resize
        | T.RandomResizedCrop,
    ):
        np.testing.assert_allclose(_centroid(blob), out["keypoints"][0], atol=0.75 * scale)
    elif inside:
        np.testing.assert_allclose(_centroid(blob), out["keypoints"][0], atol=1.5 * scale)
    rect = img[..., 1] > 0
    if rect.any():
        ys, xs = np.nonzero(rect)
        seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        box, tol = out["boxes"][0], 1.5 * scale + 0.5
        clipped = box[0] <= 0 or box[1] <= 0 or box[2] >= ow or box[3] >= oh
        if isinstance(t, T.RandomAffine) and clipped:
            # a rotated rectangle cut by the border: its clipped box contains what is left
            assert (seen[:2] >= box[:2] - tol).all() and (seen[2:] <= box[2:] + tol).all()
        else:
            np.testing.assert_allclose(seen, box, atol=tol)
    elif not isinstance(t, T.RandomAffine | T.RandomRotation):
        # the rectangle left the image: its box is empty after clipping (a rotated or
        # sheared rectangle's box has empty corners, which may still overlap the image)
        b = out["boxes"][0]
        assert min(b[2] - b[0], b[3] - b[1]) <= 1.5 * scale


@SETTINGS
@given(scene(), st.integers(0, 2**32 - 1))
def test_photometric_transforms_leave_labels(s, seed):
    t = T.Compose(
        [
            T.ColorJitter(0.4, 0.4, 0.4, 0.2),
            T.GaussianBlur(3),
            T.RandomErasing(p=1.0, value="random"),
        ]
    )
    out = t(dict(s), generator=seed)
    for k in ("keypoints", "boxes", "mask"):
        np.testing.assert_array_equal(out[k], s[k])
    assert out["image"].shape == s["image"].shape and out["image"].dtype == np.uint8


def test_same_seed_same_sample_and_tensor_conversion():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 24, 3), np.uint8)
    t = T.Compose(
        [
            T.RandomResizedCrop(16),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.3, 0.3),
            T.ToTensor(),
            T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
            T.RandomErasing(),
        ]
    )
    a, b, c = t(img, generator=3), t(img, generator=3), t(img, generator=4)
    assert isinstance(a, Tensor) and a.shape == (3, 16, 16) and a.dtype == dl.float32
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    dl.manual_seed(1)
    d = t(img)
    dl.manual_seed(1)
    np.testing.assert_array_equal(d.numpy(), t(img).numpy())


def test_to_tensor_and_normalize_match_torch():
    img = np.random.default_rng(1).integers(0, 256, (5, 7, 3), np.uint8)
    x = T.ToTensor()(img)
    ref = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    np.testing.assert_allclose(x.numpy(), ref.numpy(), rtol=1e-6, atol=1e-7)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.6, 0.7)
    y = T.Normalize(mean, std)(x)
    ref = (ref - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    assert T.ToTensor()(img[..., 0]).shape == (1, 5, 7)
    out = T.ToTensor()({"image": img, "mask": np.ones((5, 7), np.uint8)})
    assert out["mask"].dtype == dl.int64 and out["mask"].shape == (5, 7)
    with pytest.raises(ValueError, match="3 channels"):
        T.Normalize((0.5, 0.5), (1, 1))(x)
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize((0.5,), (0.0,))
    with pytest.raises(TypeError, match="apply ToTensor first"):
        T.Normalize((0.5,), (0.5,))(img)


def test_flip_pairs_swap_left_and_right():
    img = np.zeros((80, 80, 3), np.uint8)
    kp = np.array([[30, 30], [50, 30], [40, 45], [32, 60], [48, 60]], np.float32)
    out = T.RandomHorizontalFlip(1.0, flip_pairs=[(0, 1), (3, 4)])({"image": img, "keypoints": kp})
    # the left eye (index 0) is again the one with the smaller x
    np.testing.assert_allclose(out["keypoints"], [[30, 30], [50, 30], [40, 45], [32, 60], [48, 60]])
    plain = T.RandomHorizontalFlip(1.0)({"image": img, "keypoints": kp})["keypoints"]
    np.testing.assert_allclose(plain[0], [50, 30])
    with pytest.raises(IndexError, match="out of range for 5 keypoints"):
        T.RandomHorizontalFlip(1.0, flip_pairs=[(0, 7)])({"image": img, "keypoints": kp})


def test_sample_forms_tuple_dict_tensor():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    flip = T.RandomHorizontalFlip(1.0)
    out_img, label = flip((img, 7))
    assert label == 7 and np.array_equal(out_img, img[:, ::-1])
    out_img, target = flip((img, {"keypoints": np.array([[0.5, 0.5]], np.float32)}))
    np.testing.assert_allclose(target["keypoints"], [[2.5, 0.5]])
    t = flip(Tensor._wrap(img.transpose(2, 0, 1).astype(np.float32)))
    assert isinstance(t, Tensor) and np.array_equal(t.numpy(), img[:, ::-1].transpose(2, 0, 1))
    gray = T.RandomCrop((2, 2), padding=1)(img[..., :1], generator=0)
    assert gray.shape == (2, 2, 1)
    with pytest.raises(TypeError, match="expected an image"):
        flip("not an image")


def test_errors_say_what_and_where():
    img = np.zeros((10, 12, 3), np.uint8)
    with pytest.raises(ValueError, match=r"mask shape \(9, 12\) does not match"):
        T.RandomHorizontalFlip(1.0)({"image": img, "mask": np.zeros((9, 12), np.uint8)})
    with pytest.raises(ValueError, match=r"keypoints of shape \(N, 2\)"):
        T.Resize(5)({"image": img, "keypoints": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="larger than the"):
        T.RandomCrop(20)(img)
    with pytest.raises(ValueError, match="kernel_size"):
        T.GaussianBlur(4)
    with pytest.raises(ValueError, match="interpolation"):
        T.Resize(4, interpolation="cubicle")
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.7)


def test_resize_rules_and_mask_dtypes():
    img = np.zeros((20, 40, 3), np.uint8)
    assert T.Resize(10)(img).shape == (10, 20, 3)
    assert T.Resize(10, max_size=15)(img).shape == (7, 15, 3)
    assert T.Resize((7, 9))(img).shape == (7, 9, 3)
    for dt in (np.int64, np.uint8, np.int32, np.bool_):
        m = (np.arange(800).reshape(20, 40) % 3).astype(dt)
        out = T.RandomRotation(30, expand=True)({"image": img, "mask": m}, generator=0)
        assert out["mask"].dtype == dt and out["mask"].shape == out["image"].shape[:2]
    assert T.CenterCrop(4)(img).shape == (4, 4, 3)


def test_color_jitter_and_blur_values():
    img = np.full((4, 4, 3), 100, np.uint8)
    out = T.ColorJitter(brightness=(2.0, 2.0))(img, generator=0)
    assert (out == 200).all()
    out = T.ColorJitter(brightness=(3.0, 3.0))(img, generator=0)
    assert (out == 255).all()
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200
    out = T.ColorJitter(hue=(0.5, 0.5))(rgb, generator=0)  # red becomes cyan
    assert out[0, 0, 0] < 5 and out[0, 0, 1] > 195 and out[0, 0, 2] > 195
    gray = T.ColorJitter(saturation=(0.0, 0.0))(rgb, generator=0)
    assert np.ptp(gray[0, 0].astype(int)) <= 1
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
    blurred = T.GaussianBlur(5, sigma=2.0)(noise, generator=0)
    assert blurred.std() < noise.std() * 0.6


def test_random_erasing_area():
    x = dl.ones(3, 20, 20)
    out = T.RandomErasing(p=1.0, scale=(0.1, 0.2), value=0)(x, generator=1)
    erased = (out.numpy() == 0).all(axis=0).sum()
    assert 0.05 * 400 <= erased <= 0.25 * 400
    assert (x.numpy() == 1).all()  # not in place by default
    assert T.RandomErasing(p=0.0)(x, generator=1) is x


def test_sanitize_boxes_drops_labels_too():
    s = {
        "image": np.zeros((10, 10, 3), np.uint8),
        "boxes": np.array([[0, 0, 5, 5], [9, 9, 9.5, 10], [2, 2, 4, 8]], np.float32),
        "label": np.array([1, 2, 3]),
    }
    out = T.SanitizeBoxes(min_size=1)(s)
    assert out["boxes"].shape == (2, 4) and out["label"].tolist() == [1, 3]


def test_repr_and_config_round_trip():
    t = T.Compose(
        [
            T.RandomResizedCrop(32, scale=(0.5, 1.0)),
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(flip_pairs=[(0, 1)]),
            T.RandomVerticalFlip(0.1),
            T.RandomAffine(10, translate=(0.1, 0.1)),
            T.RandomRotation(15, expand=True),
            T.ColorJitter(0.2, 0.2, 0.2, 0.05),
            T.GaussianBlur(3),
            T.Resize(32),
            T.CenterCrop(30),
            T.RandomApply([T.Grayscale(3)], p=0.2),
            T.ToTensor(),
            T.Normalize((0.5,), (0.5,)),
            T.RandomErasing(value="random"),
        ]
    )
    r = repr(t)
    assert "RandomCrop(size=32, padding=4)" in r and "RandomRotation(degrees=15, expand=True)" in r
    cfg = t.config()
    import json

    back = T.from_config(json.loads(json.dumps(cfg)))
    assert back.config() == cfg
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)
    np.testing.assert_array_equal(t(img, generator=9).numpy(), back(img, generator=9).numpy())
    with pytest.raises(ValueError, match="unknown transform 'Nope'"):
        T.from_config({"type": "Nope"})
    with pytest.raises(TypeError, match="Lambda"):
        T.Lambda(lambda x: x).config()


def test_to_tuple_for_loops():
    t = T.Compose([T.ToTensor(), T.ToTuple(("image", "mask"))])
    x, m = t({"image": np.zeros((4, 4, 3), np.uint8), "mask": np.zeros((4, 4), np.uint8)})
    assert x.shape == (3, 4, 4) and m.shape == (4, 4)


# --------------------------------------------------------------- torchvision's affine geometry
def _tv_inverse(center_f, angle, translate, scale, shear):
    """torchvision's inverse affine matrix (F.affine; F.rotate passes -angle), rewritten here
    from its documented formula RSS = R(angle) S(scale) SHy(shear_y) SHx(shear_x)."""
    rot, sx, sy = np.radians(angle), np.radians(shear[0]), np.radians(shear[1])
    a = np.cos(rot - sy) / np.cos(sy)
    b = -(a * np.tan(sx) + np.sin(rot))
    c = np.sin(rot - sy) / np.cos(sy)
    d = np.cos(rot) - c * np.tan(sx)
    m = np.array([[d, -b], [-c, a]]) / scale
    (cx, cy), (tx, ty) = center_f, translate
    t = np.array([cx, cy]) - m @ np.array([cx + tx, cy + ty])
    return np.hstack([m, t[:, None]])


def _tv_warp(img, theta, out_h, out_w):
    """torchvision's tensor path: a centred output grid, bilinear grid_sample, zero fill."""
    h, w = img.shape[:2]
    xs = torch.linspace(-out_w * 0.5 + 0.5, out_w * 0.5 - 0.5, out_w, dtype=torch.float64)
    ys = torch.linspace(-out_h * 0.5 + 0.5, out_h * 0.5 - 0.5, out_h, dtype=torch.float64)
    base = torch.stack([xs.expand(out_h, out_w), ys[:, None].expand(out_h, out_w)], -1)
    base = torch.cat([base, torch.ones(out_h, out_w, 1, dtype=torch.float64)], -1)
    th = torch.tensor(theta, dtype=torch.float64)
    grid = base.view(-1, 3) @ th.T / torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float64)
    src = torch.tensor(img.transpose(2, 0, 1)[None], dtype=torch.float64)
    out = torch.nn.functional.grid_sample(
        src, grid.view(1, out_h, out_w, 2), mode="bilinear", align_corners=False
    )
    return out[0].numpy().transpose(1, 2, 0)


def _smooth_image(H=20, W=28):
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([np.sin(xx / 4.0) + 2, np.cos(yy / 3.0) + 2, (xx + yy) / 20.0], -1).astype(
        np.float32
    )


@pytest.mark.parametrize(
    "angle,translate,scale,shear,center",
    [
        (30, (0, 0), 1.0, (0, 0), None),
        (0, (0, 0), 1.0, (20, 0), None),
        (0, (0, 0), 1.0, (0, 15), None),
        (-50, (3, -2), 0.8, (10, -5), None),
        (25, (0, 0), 1.2, (0, 0), (5.0, 7.0)),
    ],
)
def test_random_affine_matches_torchvision_geometry(angle, translate, scale, shear, center):
    img = _smooth_image()
    H, W = img.shape[:2]
    t = T.RandomAffine(
        degrees=(angle, angle),
        scale=(scale, scale),
        shear=(shear[0], shear[0], shear[1], shear[1]),
        interpolation="bilinear",
        center=center,
    )
    s = {"image": img.copy()}
    t._warp(s, angle, translate, scale, shear)
    cf = (0.0, 0.0) if center is None else (center[0] - W / 2, center[1] - H / 2)
    ref = _tv_warp(img, _tv_inverse(cf, angle, translate, scale, shear), H, W)
    np.testing.assert_allclose(s["image"][2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-4)
    if translate == (0, 0):  # the public call with a fixed range gives the same image
        np.testing.assert_allclose(t(img.copy(), generator=0), s["image"], atol=1e-6)


@pytest.mark.parametrize("angle", [30, 45, 90, -120, 17])
@pytest.mark.parametrize("expand", [False, True])
def test_random_rotation_matches_torchvision(angle, expand):
    img = _smooth_image()
    H, W = img.shape[:2]
    out = T.RandomRotation((angle, angle), expand=expand, interpolation="bilinear")(img)
    theta = _tv_inverse((0.0, 0.0), -angle, (0, 0), 1.0, (0, 0))
    oh, ow = H, W
    if expand:  # torchvision's _compute_affine_output_size
        half = np.array([W / 2, H / 2])
        corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * half
        pts = corners @ theta[:, :2].T + theta[:, 2] + half
        lo = np.floor(np.trunc(pts.min(0) * 1e4) / 1e4)
        hi = np.ceil(np.trunc(pts.max(0) * 1e4) / 1e4)
        ow, oh = (int(v) for v in hi - lo)
    assert out.shape == (oh, ow, 3)
    np.testing.assert_allclose(out, _tv_warp(img, theta, oh, ow), atol=1e-4)


def test_affine_is_clockwise_and_rotation_counter_clockwise_like_torchvision():
    img = np.zeros((5, 5), np.uint8)
    img[0, 2] = 255  # top centre
    aff = T.RandomAffine(degrees=(90, 90))(img)
    rot = T.RandomRotation((90, 90))(img)
    assert aff[2, 4] == 255  # clockwise: top goes right
    assert rot[2, 0] == 255  # counter-clockwise: top goes left
    kp = {"image": img, "keypoints": np.array([[2.5, 0.5]], np.float32)}
    np.testing.assert_allclose(T.RandomAffine(degrees=(90, 90))(kp)["keypoints"], [[4.5, 2.5]])


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: T.RandomResizedCrop(8, ratio=(0, 0)), "ratio > 0"),
        (lambda: T.RandomResizedCrop(8, scale=(-1, 0.5)), "scale must be >= 0"),
        (lambda: T.RandomRotation((30, 10)), r"degrees should be \(min, max\)"),
    ],
)
def test_impossible_transform_ranges_are_named(make, words):
    """(They failed later with 'math domain error' or 'high - low < 0'.)"""
    with pytest.raises(ValueError, match=words):
        make()


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param("cuda", marks=pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")),
    ],
)
@pytest.mark.parametrize(
    "transform",
    [T.Resize((5, 7)), T.RandomHorizontalFlip(1.0), T.CenterCrop(4), T.RandomRotation(10)],
)
def test_tensor_images_stay_on_their_device(device, transform):
    img = dl.rand(3, 8, 8, device=device)
    out = transform(img)
    assert isinstance(out, Tensor) and out.device.type == device


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: T.RandomRotation(float("nan")), "degrees must be finite"),
        (lambda: T.RandomAffine(float("inf")), "degrees must be finite"),
        (lambda: T.RandomAffine(10, shear=(0, float("nan"))), "shear must be finite"),
        (lambda: T.RandomAffine(10, shear=(1, 2, 3, float("inf"))), "shear must be finite"),
        (lambda: T.RandomAffine(10, scale=(0.5, float("nan"))), "scale should be two positive"),
        (lambda: T.RandomAffine(10, shear=(5, -5)), r"shear should be \(min, max\)"),
        (lambda: T.GaussianBlur(3, sigma=float("nan")), "sigma must be positive"),
        (lambda: T.RandomResizedCrop(16, scale=(float("nan"), 1.0)), "scale should be"),
        (lambda: T.RandomResizedCrop(16, ratio=(0.5, float("inf"))), "ratio should be"),
        (lambda: T.RandomErasing(scale=(float("nan"), 0.3)), "scale should be"),
        (lambda: T.RandomHorizontalFlip(p=float("nan")), "p should be a probability"),
        (lambda: T.RandomApply([T.RandomVerticalFlip()], p=2), "p should be a probability"),
    ],
)
def test_non_finite_or_reversed_angles_are_refused_by_name(make, match):
    """(NumPy's 'high - low range exceeds valid bounds' came out of the first draw before)"""
    with pytest.raises(ValueError, match=match):
        make()
