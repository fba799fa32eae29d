"""Fixes from a probe review of darklib.vision and darklib.utils.data, against torch and
torchvision's documented behaviour (torchvision is not installed: its expectations are
written out by hand; for resizing, torch.nn.functional.interpolate is the oracle, as it is
what torchvision's tensor path calls)."""

import gc
import math
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

import darklib as dl
import darklib.vision.transforms as T
from darklib.tensor import Tensor
from darklib.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
    default_collate,
    default_convert,
)
from darklib.vision.datasets import (
    CIFAR10,
    MNIST,
    PointClouds,
    SineSurface,
    SyntheticFaces,
    SyntheticGlyphs,
    SyntheticObjects,
    SyntheticShapes,
)

RNG = np.random.default_rng(7)


# ----------------------------------------------------------------------------- 1. PIL modes
def _pil(arr, mode):
    return Image.fromarray(arr, mode) if mode else Image.fromarray(arr)


def test_to_tensor_reads_pil_modes_as_torchvision():
    """torchvision's to_tensor: I -> int32, F -> float32, 1 -> 255 * bool / 255, any other
    mode -> its bands as bytes / 255 (P: the palette indices, LA: 2 channels, CMYK: 4,
    YCbCr: 3, as stored). darklib's I;16 is uint16 (torchvision's to_tensor still says int16,
    which wraps values >= 32768: pytorch/vision#8359)."""
    f = RNG.normal(size=(4, 5)).astype(np.float32) * 1000
    t = T.ToTensor()(_pil(f, None))
    assert t.dtype == dl.float32 and t.shape == (1, 4, 5)
    np.testing.assert_array_equal(t.numpy()[0], f)  # values as they are, not / 255

    i = RNG.integers(-(2**31), 2**31 - 1, (4, 5)).astype(np.int32)
    t = T.ToTensor()(_pil(i, None))
    assert Image.fromarray(i).mode == "I" and t.dtype == dl.int32
    np.testing.assert_array_equal(t.numpy()[0], i)

    u16 = np.array([[0, 1, 32767, 32768, 65535]], np.uint16)
    im = _pil(u16, None)
    assert im.mode == "I;16"
    t = T.ToTensor()(im)
    assert t.dtype == dl.uint16
    np.testing.assert_array_equal(t.numpy()[0], u16)
    big = Image.frombytes("I;16B", (5, 1), u16.astype(">u2").tobytes())
    np.testing.assert_array_equal(T.ToTensor()(big).numpy()[0], u16)

    bits = RNG.random((4, 5)) < 0.5
    t = T.ToTensor()(Image.fromarray(bits))
    assert t.dtype == dl.float32
    np.testing.assert_array_equal(t.numpy()[0], bits.astype(np.float32))

    idx = RNG.integers(0, 21, (4, 5)).astype(np.uint8)
    idx[0, 0] = 255  # VOC's "void" index
    pal = _pil(idx, "P")
    pal.putpalette(RNG.integers(0, 256, 768).astype(np.uint8).tobytes())
    t = T.ToTensor()(pal)
    assert t.shape == (1, 4, 5)
    np.testing.assert_allclose(t.numpy()[0], idx / np.float32(255), rtol=1e-6)

    for mode, channels in (("LA", 2), ("RGB", 3), ("RGBA", 4), ("CMYK", 4), ("YCbCr", 3)):
        im = Image.new(mode, (5, 4))
        im.frombytes(RNG.integers(0, 256, 4 * 5 * channels).astype(np.uint8).tobytes())
        t = T.ToTensor()(im)
        assert t.shape == (channels, 4, 5) and t.dtype == dl.float32, mode
        stored = np.asarray(im).transpose(2, 0, 1) / np.float32(255)
        np.testing.assert_allclose(t.numpy(), stored, rtol=1e-6, err_msg=mode)
    gray = RNG.integers(0, 256, (4, 5)).astype(np.uint8)
    np.testing.assert_allclose(T.ToTensor()(_pil(gray, "L")).numpy()[0], gray / np.float32(255))


def test_palette_masks_keep_their_class_indices():
    """A VOC-style palette PNG mask goes through the joint transforms as its indices (it was
    converted to RGB colours before)."""
    idx = np.zeros((40, 60), np.uint8)
    idx[5:30, 10:40] = 15
    idx[20:35, 30:55] = 7
    idx[0, :] = 255
    mask = _pil(idx, "P")
    mask.putpalette(RNG.integers(0, 256, 768).astype(np.uint8).tobytes())
    image = Image.fromarray(RNG.integers(0, 256, (40, 60, 3)).astype(np.uint8))
    t = T.Compose(
        [
            T.RandomResizedCrop((32, 48), scale=(0.5, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomRotation(10),
            T.ToTensor(),
        ]
    )
    out = t({"image": image, "mask": mask}, generator=3)
    assert out["image"].shape == (3, 32, 48) and out["mask"].dtype == dl.int64
    assert set(np.unique(out["mask"].numpy())) <= {0, 7, 15, 255}
    # a palette image as the image itself: its indices, one uint8 channel
    flipped = T.RandomHorizontalFlip(1.0)(mask)
    assert flipped.dtype == np.uint8
    np.testing.assert_array_equal(flipped, idx[:, ::-1])


def test_to_tensor_keeps_non_byte_dtypes_and_never_aliases():
    u8 = RNG.integers(0, 256, (3, 4, 2)).astype(np.uint8)
    np.testing.assert_allclose(
        T.ToTensor()(u8).numpy(),
        torch.from_numpy(u8).permute(2, 0, 1).float().div(255).numpy(),
        rtol=1e-6,
    )
    for dt in (np.float64, np.float32, np.float16, np.int32, np.int16, np.uint16, np.bool_):
        a = (RNG.random((3, 4)) * 100).astype(dt)
        t = T.ToTensor()(a)
        assert t.numpy().dtype == dt and t.shape == (1, 3, 4)  # unscaled, as torchvision
        np.testing.assert_array_equal(t.numpy()[0], a)
        t.numpy()[...] = 0  # (a HW array transposes to a view: the tensor must not alias it)
        assert np.array_equal(T.ToTensor()(a).numpy()[0], a)
    with pytest.raises(TypeError, match="ToTensor: unsupported image dtype complex"):
        T.ToTensor()(np.zeros((2, 2), np.complex64))
    with pytest.raises(TypeError, match=r"Normalize: expected a float image.*int32"):
        T.Normalize((0.5,), (0.5,))(T.ToTensor()(np.zeros((2, 2), np.int32)))


_DTYPES = [
    np.uint8,
    np.int8,
    np.uint16,
    np.int16,
    np.int32,
    np.int64,
    np.uint32,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
]
_ANY_DTYPE = [
    lambda: T.Resize((9, 13)),
    lambda: T.Resize((30, 20), interpolation="bicubic"),
    lambda: T.Resize(7, interpolation="nearest"),
    lambda: T.Resize((9, 13), interpolation="nearest-exact"),
    lambda: T.Resize((9, 13), interpolation="area"),
    lambda: T.Resize((30, 20), interpolation="lanczos"),
    lambda: T.RandomResizedCrop(8),
    lambda: T.CenterCrop((20, 11)),
    lambda: T.RandomCrop(12, padding=3, padding_mode="reflect"),
    lambda: T.Pad((1, 2, 3, 4), fill=1),
    lambda: T.RandomHorizontalFlip(1.0),
    lambda: T.RandomVerticalFlip(1.0),
    lambda: T.RandomRotation(30, expand=True),
    lambda: T.RandomRotation(30, interpolation="bilinear", fill=1),
    lambda: T.RandomAffine(20, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=10),
    lambda: T.GaussianBlur(3),
    lambda: T.RandomErasing(1.0, value=1),
]


def _image(dt, channels):
    shape = (16, 18, channels) if channels else (16, 18)
    if dt == np.bool_:
        return RNG.random(shape) < 0.5
    if np.dtype(dt).kind == "f":
        return RNG.random(shape).astype(dt)
    top = min(np.iinfo(dt).max, 2**20)
    return RNG.integers(0, top, shape).astype(dt)


@pytest.mark.parametrize("dt", _DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("channels", [0, 1, 2, 4, 6])
def test_transforms_keep_any_dtype_and_channel_count(dt, channels):
    """What a PIL mode now gives (int32, uint16, float32, 2 or 4 channels...) goes through
    every geometric transform with its dtype and channels kept."""
    img = _image(dt, channels)
    for make in _ANY_DTYPE:
        t = make()
        out = t(img, generator=1)
        assert out.dtype == img.dtype, t
        assert out.ndim == img.ndim and out.shape[2:] == img.shape[2:], t
        if np.dtype(dt).kind in "iu":  # (bicubic overshoots, but nothing wraps around)
            top = 2 * int(img.max()) + 1
            assert -top <= int(out.min()) and int(out.max()) <= top, t
    tensor_img = T.ToTensor()(img)
    for make in _ANY_DTYPE[:4]:
        assert make()(tensor_img).dtype == tensor_img.dtype


@pytest.mark.parametrize("dt", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_color_transforms_on_dtypes_or_a_clear_error(dt):
    img = _image(dt, 3)
    if dt == np.bool_:
        with pytest.raises(TypeError, match="ColorJitter: images of dtype bool"):
            T.ColorJitter(0.5, 0.5, 0.5, 0.1)(img, generator=0)
    else:
        out = T.ColorJitter(0.5, 0.5, 0.5, 0.1)(img, generator=0)
        assert out.dtype == img.dtype and out.shape == img.shape
        if np.dtype(dt).kind in "iu":  # brightness x2 saturates at the dtype's maximum
            top = np.iinfo(dt).max
            out = T.ColorJitter(brightness=(2.0, 2.0))(np.full((2, 2, 3), top // 2 + 1, dt))
            np.testing.assert_allclose(out.astype(np.float64), float(top), rtol=1e-12)
    g = T.Grayscale(3)(img)
    assert g.dtype == img.dtype and g.shape == img.shape
    with pytest.raises(TypeError, match="Grayscale: expected an image with 1, 3"):
        T.Grayscale()(_image(dt, 2))
    with pytest.raises(TypeError, match=r"GaussianBlur: images of dtype complex64"):
        T.GaussianBlur(3)(np.zeros((4, 4), np.complex64))


def test_resize_of_integer_images_follows_torchvision():
    """torchvision resizes the dtypes interpolate does not take through float32, rounded
    back (values over 255: uint16, int32 images of a PIL I;16 or I file); darklib takes
    int32 through float64, which keeps every value up to 2**53, and clips bicubic's
    overshoot to the dtype's range where torchvision's cast would wrap around."""
    rng = np.random.default_rng(11)
    for dt, top in ((np.uint16, 65535), (np.int16, 32767), (np.int32, 2**20)):
        img = rng.integers(0, top, (23, 31)).astype(dt)
        for mode, aa in (("bilinear", True), ("bicubic", True), ("bilinear", False)):
            out = T.Resize((11, 40), interpolation=mode, antialias=aa)(img)
            x = torch.from_numpy(img.astype(np.float32))[None, None]
            ref = torch.nn.functional.interpolate(
                x, size=(11, 40), mode=mode, antialias=aa, align_corners=False
            )
            info = np.iinfo(dt)
            ref = ref.round().clamp(info.min, info.max).numpy()[0, 0]
            assert out.dtype == dt
            # (int32 runs in float64 here: torch's float32 sums, at 2**20, are off by ~0.1)
            atol = 1 if np.dtype(dt).itemsize <= 2 else 2
            np.testing.assert_allclose(out.astype(np.float64), ref, atol=atol, rtol=1e-5)


# ----------------------------------------------------------------------------- 2. datasets
def _idx(arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _mnist(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        _idx(RNG.integers(1, 256, (4, 28, 28)).astype(np.uint8))
    )
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.arange(4).astype(np.uint8)))
    return MNIST(tmp_path)


def _cifar(tmp_path):
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)]:
        rec = RNG.integers(1, 256, (2, 1 + 3 * 32 * 32)).astype(np.uint8)
        rec[:, 0] = 3
        (tmp_path / name).write_bytes(rec.tobytes())
    return CIFAR10(tmp_path)


def _field(sample):
    return sample["image"] if isinstance(sample, dict) else sample[0]


@pytest.mark.parametrize(
    "make",
    [
        _mnist,
        _cifar,
        lambda p: SyntheticGlyphs(size=3, cache=False),
        lambda p: SyntheticObjects(size=3, cache=False),
        lambda p: SyntheticFaces(size=3, cache=False),
        lambda p: SyntheticFaces(size=3, mode="detection", cache=False),
        lambda p: SyntheticShapes(size=3, cache=False),
        lambda p: PointClouds(size=4),
        lambda p: SineSurface(size=4),
    ],
    ids=[
        "mnist",
        "cifar",
        "glyphs",
        "objects",
        "faces",
        "faces-detection",
        "shapes",
        "points",
        "surface",
    ],
)
def test_datasets_return_samples_that_do_not_alias_the_store(make, tmp_path):
    ds = make(tmp_path)
    before = [np.array(_field(ds[i])) for i in range(len(ds))]
    # an in-place transform on every sample: the dataset must not change
    erase = T.RandomErasing(1.0, scale=(0.5, 0.9), value=0, inplace=True)
    for i in range(len(ds)):
        s = ds[i]
        x = _field(s)
        x[...] = 0  # what any in-place transform could do
        if x.ndim == 3:
            erase(x, generator=i)
        if isinstance(s, dict):
            for v in s.values():
                if isinstance(v, np.ndarray):
                    v[...] = 0
        elif isinstance(s[1], np.ndarray):
            s[1][...] = 0
    for i in range(len(ds)):
        np.testing.assert_array_equal(np.array(_field(ds[i])), before[i])
    if isinstance(ds[0], dict) and "keypoints" in ds[0]:
        assert np.abs(ds[0]["keypoints"]).sum() > 0
    if isinstance(ds, PointClouds | SineSurface):
        assert np.abs(ds[0][1]).sum() + np.abs(ds[1][1]).sum() > 0


def test_in_place_erasing_through_a_dataset_transform_leaves_mnist_alone(tmp_path):
    ds = _mnist(tmp_path)
    ref = ds.data.copy()
    ds.transform = T.Compose([T.RandomErasing(1.0, value=0, inplace=True)])
    for i in range(len(ds)):
        ds[i]
    np.testing.assert_array_equal(ds.data, ref)


# ----------------------------------------------------------------------------- 3. expand
def _tv_expanded_size(angle, H, W, center=None):
    """torchvision's rotate(expand=True) canvas, by hand: _get_inverse_affine_matrix of
    -angle (double), then _compute_affine_output_size in float32 with torch."""
    cx, cy = (0.0, 0.0) if center is None else (center[0] - W * 0.5, center[1] - H * 0.5)
    rot = math.radians(-angle)
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += cx - m[0] * cx - m[1] * cy
    m[5] += cy - m[3] * cx - m[4] * cy
    hw, hh = 0.5 * W, 0.5 * H
    pts = torch.tensor([[-hw, -hh, 1.0], [-hw, hh, 1.0], [hw, hh, 1.0], [hw, -hh, 1.0]])
    new = pts @ torch.tensor(m, dtype=torch.float).view(2, 3).T
    lo, hi = new.aminmax(dim=0)
    lo, hi = lo + torch.tensor((hw, hh)), hi + torch.tensor((hw, hh))
    cmax = (hi * (1 / 1e-4)).trunc() * 1e-4
    cmin = (lo * (1 / 1e-4)).trunc() * 1e-4
    size = cmax.ceil() - cmin.floor()
    return int(size[1]), int(size[0])  # (height, width)


@pytest.mark.parametrize("hw", [(480, 640), (640, 480), (33, 50), (7, 3), (100, 100), (1, 9)])
@pytest.mark.parametrize("angle", [90, -90, 270, 180, 45, 30, 17.5, -135, 360, 0, 89.99])
def test_rotation_expand_sizes_as_torchvision(hw, angle):
    H, W = hw
    img = np.zeros((H, W), np.uint8)
    out = T.RandomRotation((angle, angle), expand=True)(img)
    assert out.shape == _tv_expanded_size(angle, H, W)
    if angle % 90 == 0 and (H - W) % 2 == 0:  # a quarter turn swaps the sides exactly
        assert out.shape == ((W, H) if angle % 180 else (H, W))
    elif angle % 180 == 90:  # (torchvision's box is shifted by half a pixel: one more)
        assert out.shape == (W + 1, H + 1)


def test_rotation_expand_by_quarter_turns_is_exact():
    img = RNG.integers(0, 256, (480, 640, 3)).astype(np.uint8)
    out = T.RandomRotation((90, 90), expand=True)(img)
    assert out.shape == (640, 480, 3)
    np.testing.assert_array_equal(out, np.rot90(img, 1))  # counter-clockwise, as torchvision
    out = T.RandomRotation((270, 270), expand=True)({"image": img, "mask": img[..., 0]})
    np.testing.assert_array_equal(out["image"], np.rot90(img, 3))
    np.testing.assert_array_equal(out["mask"], np.rot90(img[..., 0], 3))
    assert T.RandomRotation((90, 90), expand=True, center=(100, 50))(img).shape == (
        *_tv_expanded_size(90, 480, 640, (100, 50)),
        3,
    )


# ----------------------------------------------------------------------------- 4. resize
def _interp(x, size, mode, aa):
    kw = {} if mode.startswith("nearest") else {"antialias": aa, "align_corners": False}
    return torch.nn.functional.interpolate(x, size=size, mode=mode, **kw)


_GEOMETRIES = [(256, 256, 224, 224), (480, 640, 100, 133), (20, 17, 63, 45), (31, 47, 13, 90)]


@pytest.mark.parametrize("geometry", _GEOMETRIES)
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("aa", [True, False])
def test_resize_matches_torch_interpolate(geometry, mode, aa):
    H, W, oh, ow = geometry
    img = RNG.integers(0, 256, (H, W, 3)).astype(np.uint8)
    img[: H // 3, : W // 3] = 255 * (img[: H // 3, : W // 3] > 127)  # hard edges
    resize = T.Resize((oh, ow), interpolation=mode, antialias=aa)
    t8 = torch.from_numpy(img).permute(2, 0, 1)[None]
    # uint8 numpy HWC and uint8 CHW tensors: torch's byte kernels (within one level)
    ref8 = _interp(t8, (oh, ow), mode, aa)[0].numpy()
    out8 = resize(img)
    assert out8.dtype == np.uint8 and out8.shape == (oh, ow, 3)
    assert np.abs(out8.transpose(2, 0, 1).astype(int) - ref8.astype(int)).max() <= 1
    out8t = resize(Tensor._wrap(np.ascontiguousarray(img.transpose(2, 0, 1))))
    assert out8t.dtype == dl.uint8
    assert np.abs(out8t.numpy().astype(int) - ref8.astype(int)).max() <= 1
    # floats: float32 within 1e-5 (HWC numpy and CHW tensor), float64 within 1e-12
    f = img.astype(np.float32) / 255
    ref = _interp(torch.from_numpy(f).permute(2, 0, 1)[None], (oh, ow), mode, aa)[0].numpy()
    np.testing.assert_allclose(resize(f).transpose(2, 0, 1), ref, atol=1e-5)
    np.testing.assert_allclose(resize(T.ToTensor()(img)).numpy(), ref, atol=1e-5)
    d = f.astype(np.float64)
    ref = _interp(torch.from_numpy(d).permute(2, 0, 1)[None], (oh, ow), mode, aa)[0].numpy()
    np.testing.assert_allclose(resize(d).transpose(2, 0, 1), ref, atol=1e-12)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_resize_nearest_is_torch_nearest_for_images_and_masks(mode):
    for H, W, oh, ow in [*_GEOMETRIES, (7, 9, 14, 18), (30, 30, 7, 11)]:
        img = RNG.integers(0, 256, (H, W, 3)).astype(np.uint8)
        mask = RNG.integers(0, 21, (H, W)).astype(np.int64)
        out = T.Resize((oh, ow), interpolation=mode)({"image": img, "mask": mask})
        ref = _interp(torch.from_numpy(img).permute(2, 0, 1)[None], (oh, ow), mode, False)
        np.testing.assert_array_equal(out["image"].transpose(2, 0, 1), ref[0].numpy())
        fl = img.astype(np.float32)
        reff = _interp(torch.from_numpy(fl).permute(2, 0, 1)[None], (oh, ow), mode, False)
        np.testing.assert_array_equal(
            T.Resize((oh, ow), interpolation=mode)(fl), reff[0].numpy().transpose(1, 2, 0)
        )
        # masks: torch's (floor) nearest, whatever the image's interpolation
        mref = _interp(torch.from_numpy(mask)[None, None].float(), (oh, ow), "nearest", False)
        np.testing.assert_array_equal(out["mask"], mref[0, 0].long().numpy())
        for interp in ("bilinear", "bicubic", "area"):
            m = T.Resize((oh, ow), interpolation=interp)({"image": img, "mask": mask})["mask"]
            assert m.dtype == np.int64
            np.testing.assert_array_equal(m, mref[0, 0].long().numpy())


def test_resize_joint_labels_and_crop_paths():
    img = RNG.integers(0, 256, (40, 60, 3)).astype(np.uint8)
    s = {
        "image": img,
        "mask": np.zeros((40, 60), np.uint8),
        "keypoints": np.array([[30.0, 20.0]], np.float32),
        "boxes": np.array([[6.0, 4.0, 12.0, 8.0]], np.float32),
    }
    out = T.Resize((20, 90))(s)
    np.testing.assert_allclose(out["keypoints"], [[45.0, 10.0]])
    np.testing.assert_allclose(out["boxes"], [[9.0, 2.0, 18.0, 4.0]])
    # RandomResizedCrop of the whole image is a Resize
    rrc = T.RandomResizedCrop((20, 90), scale=(1.0, 1.0), ratio=(1.5, 1.5), interpolation="bicubic")
    np.testing.assert_array_equal(rrc(img, generator=0), T.Resize((20, 90), "bicubic")(img))
    # the smaller edge, torchvision's max_size rule and its error
    assert T.Resize(30)(img).shape == (30, 45, 3)
    with pytest.raises(ValueError, match="max_size = 30 must be strictly greater"):
        T.Resize(30, max_size=30)
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        T.Resize(3, interpolation="cubic")


# ----------------------------------------------------------------------------- 5. collate
def test_default_collate_keeps_the_graph_of_tensors_that_require_grad():
    a = dl.tensor([1.0, 2.0], requires_grad=True)
    b = dl.tensor([3.0, 4.0], requires_grad=True)
    batch = default_collate([(a * 2, 0), (b, 1)])
    x, _labels = batch
    assert x.requires_grad and x.grad_fn is not None and x.shape == (2, 2)
    (x * dl.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    ta = torch.tensor([1.0, 2.0], requires_grad=True)
    tb = torch.tensor([3.0, 4.0], requires_grad=True)
    tx = torch.utils.data.default_collate([(ta * 2, 0), (tb, 1)])[0]
    assert tx.grad_fn is not None
    (tx * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())
    # promotion as torch.stack's, still differentiable
    c = dl.tensor([1.0, 2.0], dtype=dl.float64, requires_grad=True)
    mixed = default_collate([a, c])
    assert mixed.dtype == dl.float64 and mixed.grad_fn is not None
    mixed.sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), [1.0, 1.0])
    with dl.no_grad():
        assert default_collate([a, b]).grad_fn is None
    assert default_collate([a.detach(), b.detach()]).requires_grad is False
    with pytest.raises(RuntimeError, match="same shape"):
        default_collate([a, dl.tensor([1.0], requires_grad=True)])


@pytest.mark.parametrize("dt", [np.uint16, np.uint32, np.uint64])
def test_collate_keeps_unsigned_dtypes_as_torch(dt):
    arrays = [np.array([1, 65535], dt), np.array([2, 3], dt)]
    scalars = [dt(5), dt(6)]
    for batch in (arrays, scalars) if dt != np.uint64 else (arrays,):  # (torch: TypeError)
        d, t = default_collate(batch), torch.utils.data.default_collate(batch)
        assert d.numpy().dtype == dt and str(t.dtype) == f"torch.{np.dtype(dt).name}"
        np.testing.assert_array_equal(d.numpy(), t.numpy())
    assert default_collate(scalars).numpy().dtype == dt
    assert default_convert(np.array([7], dt)).numpy().dtype == dt


# ----------------------------------------------------------------------------- 6. Lambda
def test_lambda_and_compose_take_any_object():
    assert T.Compose([lambda y: y + 1])(3) == 4
    assert T.Lambda(str.upper)("abc") == "ABC"
    assert T.Compose([T.Lambda(lambda y: [y, y]), len])(5) == 2
    assert T.RandomApply([lambda y: y * 10], p=1.0)(3) == 30
    assert T.RandomApply([lambda y: y * 10], p=0.0)(3) == 3
    assert T.RandomChoice([lambda y: -y])(3) == -3
    assert T.Lambda(lambda d: sorted(d))({"b": 1, "a": 2}) == ["a", "b"]  # (no 'image' key)
    # a path becomes an image, and the image transforms that follow take it as usual
    load = T.Lambda(lambda path: np.full((6, 8, 3), len(path), np.uint8))
    out = T.Compose([load, T.Resize(3), T.ToTensor()])("abcd")
    assert out.shape == (3, 3, 4) and np.allclose(out.numpy(), 4 / 255)
    # image transforms inside a Compose still check what they are given
    with pytest.raises(TypeError, match="expected an image"):
        T.Compose([lambda y: y, T.RandomHorizontalFlip()])(3)
    with pytest.raises(TypeError, match="expected an image"):
        T.RandomHorizontalFlip()("abc")
    # images keep their joint semantics: a Lambda sees the image of an (image, label) pair
    img = np.zeros((2, 2, 3), np.uint8)
    out_img, label = T.Lambda(lambda im: im + 1)((img, 7))
    assert label == 7 and (out_img == 1).all()


def test_tutorial_one_hot_target_transform():
    """torch's tutorial: ``target_transform=Lambda(lambda y: torch.zeros(10).scatter_(0,
    torch.tensor(y), value=1))``."""
    one_hot = T.Lambda(lambda y: dl.zeros(10).scatter_(0, dl.tensor([y]), value=1))
    ds = SyntheticGlyphs(size=4, cache=False, transform=T.ToTensor(), target_transform=one_hot)
    x, y = ds[2]
    assert x.shape == (1, 28, 28) and y.shape == (10,)
    assert y.numpy().argmax() == ds.targets[2] and y.numpy().sum() == 1
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch[1].shape == (4, 10)
    tutorial = T.Lambda(lambda y: dl.zeros(10).scatter_(0, dl.tensor(y), value=1))
    y = tutorial(3)  # a 0-d index, taken as one of shape (1,) as torch does
    np.testing.assert_array_equal(y.numpy(), np.eye(10, dtype=np.float32)[3])


# ----------------------------------------------------------------------------- 7. threads
class _Stream(IterableDataset):
    def __init__(self):
        self.produced = [0]

    def __iter__(self):
        for i in range(100_000):
            self.produced[0] += 1
            yield np.full(256, i, np.float32)


class _Map(Dataset):
    def __len__(self):
        return 100_000

    def __getitem__(self, i):
        return np.full(256, i, np.float32)


def _data_threads():
    return sum(t.name.startswith("darklib-data") for t in threading.enumerate())


def _settle(baseline, timeout=10.0):
    """The number of DataLoader threads once it is down to ``baseline`` (or the timeout):
    only darklib's data threads count, and earlier tests' loaders may still be ending, so
    callers take their baseline from ``_settle(0, 2)`` and check ``<=``."""
    gc.collect()
    end = time.monotonic() + timeout
    while _data_threads() > baseline and time.monotonic() < end:
        time.sleep(0.02)
        gc.collect()
    return _data_threads()


@pytest.mark.parametrize("persistent", [False, True])
def test_breaking_out_of_an_iterable_loader_stops_its_threads(persistent):
    baseline = _settle(0, 2.0)
    ds = _Stream()
    loader = DataLoader(ds, batch_size=4, num_workers=3, persistent_workers=persistent)
    for _epoch in range(4):
        for j, batch in enumerate(loader):
            assert batch.shape == (4, 256)
            if j == 2:
                break
    assert _settle(baseline) <= baseline
    produced = ds.produced[0]  # (each worker iterates its own shallow copy: a shared list)
    time.sleep(0.3)
    assert ds.produced[0] == produced  # the workers stopped reading
    # a loop that runs to its end, and one that raises, also leave no thread behind
    small = DataLoader(_Stream(), batch_size=50_000, num_workers=2)
    assert sum(1 for _ in small) == 4
    assert _settle(baseline) <= baseline
    del loader


def test_breaking_out_of_a_map_loader_leaves_no_thread():
    baseline = _settle(0, 2.0)
    loader = DataLoader(_Map(), batch_size=4, num_workers=3)
    for _epoch in range(4):
        for j, _batch in enumerate(loader):
            if j == 2:
                break
    assert _settle(baseline) <= baseline
    loader = DataLoader(_Map(), batch_size=4, num_workers=2, persistent_workers=True)
    for _epoch in range(3):
        for j, _batch in enumerate(loader):
            if j == 1:
                break
    del loader  # persistent workers live as long as their loader, as torch's
    assert _settle(baseline) <= baseline


# ----------------------------------------------------------------------------- 8. samplers
_TS = torch.utils.data
_SAMPLER_CASES = [
    ("WeightedRandomSampler", ([1.0, 2.0], 2), {"replacement": 1}),
    ("WeightedRandomSampler", ([1.0, 2.0], 2), {"replacement": None}),
    ("WeightedRandomSampler", ([1.0, 2.0], 0), {}),
    ("WeightedRandomSampler", ([1.0, 2.0], True), {}),
    ("WeightedRandomSampler", ([1.0, 2.0], 2.0), {}),
    ("WeightedRandomSampler", ([1.0, 2.0], np.int64(2)), {}),
    ("WeightedRandomSampler", ([[1.0, 2.0]], 2), {}),
    ("WeightedRandomSampler", (5.0, 2), {}),
    ("RandomSampler", (range(3),), {"replacement": 1}),
    ("RandomSampler", (range(3),), {"num_samples": 0}),
    ("RandomSampler", (range(3),), {"num_samples": 2.0}),
    ("RandomSampler", (range(3),), {"num_samples": np.int64(2)}),
    ("RandomSampler", (range(0),), {}),
    ("BatchSampler", (range(3), 0, False), {}),
    ("BatchSampler", (range(3), True, False), {}),
    ("BatchSampler", (range(3), 2.0, False), {}),
    ("BatchSampler", (range(3), 2, 1), {}),
]


@pytest.mark.parametrize("name, args, kwargs", _SAMPLER_CASES)
def test_sampler_arguments_are_checked_as_torch(name, args, kwargs):
    import darklib.utils.data as D

    with pytest.raises(Exception) as theirs:
        getattr(_TS, name)(*args, **kwargs)
    with pytest.raises(Exception) as ours:
        getattr(D, name)(*args, **kwargs)
    assert isinstance(ours.value, type(theirs.value)), (ours.value, theirs.value)
    assert str(theirs.value) in str(ours.value)


def test_samplers_accept_what_torch_accepts():
    assert len(RandomSampler(range(3), num_samples=True)) == 1  # (a bool is an int)
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    assert sorted(SubsetRandomSampler([4, 5, 6], generator=0)) == [4, 5, 6]
    assert len(list(WeightedRandomSampler(dl.tensor([1.0, 0.0, 2.0]), 5, generator=0))) == 5
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    # bad weights: torch.multinomial refuses them when iterating (RuntimeError); darklib says
    # so when the sampler is made, with an error that is both a ValueError and a RuntimeError
    for w in ([-1.0, 2.0], [1.0, float("inf")], [0.0, 0.0], []):
        with pytest.raises(RuntimeError, match="non-negative finite"):
            WeightedRandomSampler(w, 2)
    with pytest.raises(ValueError, match="without replacement from 1 non-zero"):
        WeightedRandomSampler([0.0, 2.0], 2, replacement=False)
