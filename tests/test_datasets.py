"""Dataset readers (round trips and broken files) and the procedural datasets."""

import gzip
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import darklib as dl
from darklib.utils.data import DataLoader
from darklib.vision import transforms as T
from darklib.vision.datasets import (
    CIFAR10,
    MNIST,
    MTFL_FLIP_PAIRS,
    DatasetFormatError,
    FashionMNIST,
    ImageFolder,
    LandmarkList,
    PointClouds,
    SegmentationFolder,
    SineSurface,
    SyntheticFaces,
    SyntheticGlyphs,
    SyntheticObjects,
    SyntheticShapes,
    YOLODataset,
    boxes_to_yolo,
    cache_dir,
    detection_collate,
    make_points,
    make_sine_surface,
    read_idx,
)

RNG = np.random.default_rng(0)


def _rgb(h=6, w=5):
    return RNG.integers(0, 256, (h, w, 3), np.uint8)


def _write_png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


# ----------------------------------------------------------------------------- ImageFolder
def test_image_folder_round_trip(tmp_path):
    imgs = {("cat", "a.png"): _rgb(), ("cat", "b.png"): _rgb(), ("dog", "c.png"): _rgb()}
    for (c, n), im in imgs.items():
        _write_png(tmp_path / c / n, im)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert len(ds) == 3 and ds.targets == [0, 0, 1]
    img, label = ds[2]
    assert label == 1 and img.dtype == np.uint8
    np.testing.assert_array_equal(img, imgs[("dog", "c.png")])  # RGB order kept
    gray, _ = ImageFolder(tmp_path, mode="L")[0]
    assert gray.shape == (6, 5, 1)
    x, _y = ImageFolder(tmp_path, transform=T.ToTensor())[0]
    assert x.shape == (3, 6, 5) and x.dtype == dl.float32
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert xb.shape == (3, 6, 5, 3) and yb.tolist() == [0, 0, 1]


def test_image_folder_includes_nested_folders_in_torchvision_order(tmp_path):
    # torchvision walks each class folder recursively (sorted), so nested images count
    for rel in ["cat/z.png", "cat/sub/a.png", "cat/sub/deeper/b.png", "cat/a.png", "dog/x.png"]:
        _write_png(tmp_path / rel, _rgb())
    ds = ImageFolder(tmp_path)
    got = [(os.path.relpath(p, tmp_path).replace(os.sep, "/"), t) for p, t in ds.samples]
    expected = []
    for c, idx in (("cat", 0), ("dog", 1)):  # the walk of torchvision's make_dataset
        for folder, _, names in sorted(os.walk(tmp_path / c)):
            for n in sorted(names):
                expected.append((os.path.relpath(os.path.join(folder, n), tmp_path), idx))
    assert got == [(p.replace(os.sep, "/"), t) for p, t in expected]
    assert len(ds) == 5 and ds.targets == [0, 0, 0, 0, 1]


def test_image_folder_errors_and_skip(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        ImageFolder(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="couldn't find any class folder"):
        ImageFolder(tmp_path / "empty")
    root = tmp_path / "data"
    _write_png(root / "a" / "good.png", _rgb())
    bad = root / "a" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = ImageFolder(root)
    assert len(ds) == 2
    with pytest.raises(DatasetFormatError, match=r"broken\.png.*corrupt"):
        ds[0]
    skipping = ImageFolder(root, on_error="skip")
    assert len(skipping) == 1 and skipping.num_skipped == 1
    assert skipping.skipped[0][0].endswith("broken.png")
    (root / "b").mkdir()
    (root / "b" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetFormatError, match=r"empty\.jpg.*empty"):
        ImageFolder(root)[2]
    with pytest.raises(ValueError, match="on_error"):
        ImageFolder(root, on_error="ignore")


# ----------------------------------------------------------------------------- IDX / MNIST
def _idx(arr, code=0x08):
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(">u1" if code == 0x08 else ">i4").tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_round_trip(tmp_path, gz):
    images = RNG.integers(0, 256, (7, 28, 28), np.uint8)
    labels = RNG.integers(0, 10, 7).astype(np.uint8)
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    for name, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = _idx(arr)
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(data)
        else:
            (folder / name).write_bytes(data)
    ds = FashionMNIST(tmp_path, train=False)
    assert len(ds) == 7 and ds.classes[9] == "Ankle boot"
    img, lab = ds[3]
    assert img.shape == (28, 28, 1) and lab == int(labels[3])
    np.testing.assert_array_equal(img[..., 0], images[3])
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        FashionMNIST(tmp_path, train=True)
    with pytest.raises(FileNotFoundError, match="MNIST"):
        MNIST(tmp_path / "missing")


def test_idx_rejects_broken_files(tmp_path):
    good = _idx(np.arange(12, dtype=np.uint8).reshape(3, 4))
    p = tmp_path / "x-idx2-ubyte"
    p.write_bytes(good[:-1])
    with pytest.raises(DatasetFormatError, match=r"x-idx2-ubyte.*size mismatch"):
        read_idx(p)
    p.write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(DatasetFormatError, match="magic number"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x07\x01" + good[4:])
    with pytest.raises(DatasetFormatError, match="type code 0x07"):
        read_idx(p)
    p.write_bytes(_idx(np.arange(6, dtype=np.int32), 0x0C))
    assert read_idx(p).tolist() == list(range(6))
    gz = tmp_path / "y.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetFormatError, match=r"y\.gz"):
        read_idx(gz)
    # labels that disagree with the images
    d = tmp_path / "m"
    d.mkdir()
    (d / "train-images-idx3-ubyte").write_bytes(_idx(np.zeros((3, 2, 2), np.uint8)))
    (d / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(2, np.uint8)))
    with pytest.raises(DatasetFormatError, match="2 labels for 3 images"):
        MNIST(d)
    (d / "train-labels-idx1-ubyte").write_bytes(_idx(np.array([1, 12, 3], np.uint8)))
    with pytest.raises(DatasetFormatError, match="label 12 of record 1"):
        MNIST(d)


# ----------------------------------------------------------------------------- CIFAR-10
def _cifar_batch(path, n, labels=None):
    labels = RNG.integers(0, 10, n).astype(np.uint8) if labels is None else labels
    chw = RNG.integers(0, 256, (n, 3, 32, 32), np.uint8)
    rec = np.concatenate([labels[:, None], chw.reshape(n, -1)], axis=1)
    path.write_bytes(rec.tobytes())
    return chw.transpose(0, 2, 3, 1), labels


def test_cifar10_round_trip_and_errors(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    train = [_cifar_batch(folder / f"data_batch_{i}.bin", 2) for i in range(1, 6)]
    test_imgs, _test_labels = _cifar_batch(folder / "test_batch.bin", 3)
    ds = CIFAR10(tmp_path, train=True)
    assert len(ds) == 10
    img, lab = ds[9]
    np.testing.assert_array_equal(img, train[4][0][1])
    assert lab == int(train[4][1][1])
    te = CIFAR10(tmp_path, train=False)
    assert len(te) == 3 and te.classes[0] == "airplane"
    np.testing.assert_array_equal(te[2][0], test_imgs[2])
    (folder / "test_batch.bin").write_bytes(b"\x00" * 3074)
    with pytest.raises(DatasetFormatError, match=r"test_batch\.bin.*3073-byte"):
        CIFAR10(tmp_path, train=False)
    _cifar_batch(folder / "test_batch.bin", 3, labels=np.array([1, 2, 11], np.uint8))
    with pytest.raises(DatasetFormatError, match="record 2 has label 11"):
        CIFAR10(tmp_path, train=False)
    (folder / "data_batch_3.bin").unlink()
    (folder / "data_batch_3").write_bytes(b"pickled")
    with pytest.raises(FileNotFoundError, match="pickled Python version"):
        CIFAR10(tmp_path)


# ----------------------------------------------------------------------------- segmentation
def test_segmentation_folder_round_trip_and_errors(tmp_path):
    imgs, masks = tmp_path / "images", tmp_path / "masks"
    pics = {n: _rgb(8, 10) for n in ("a", "b")}
    labels = {n: RNG.integers(0, 3, (8, 10)).astype(np.uint8) for n in ("a", "b")}
    for n in pics:
        _write_png(imgs / f"{n}.jpg" if n == "b" else imgs / f"{n}.png", pics[n])
        masks.mkdir(exist_ok=True)
        pm = Image.fromarray(labels[n], mode="P")
        pm.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        pm.save(masks / f"{n}_mask.png")
    ds = SegmentationFolder(imgs, masks, mask_suffix="_mask")
    assert len(ds) == 2
    s = ds[0]
    np.testing.assert_array_equal(s["image"], pics["a"])
    np.testing.assert_array_equal(s["mask"], labels["a"])  # palette indices kept
    assert s["mask"].dtype == np.int64
    mapped = SegmentationFolder(imgs, masks, mask_suffix="_mask", mask_map={2: 7})[0]["mask"]
    assert set(np.unique(mapped)) <= {0, 1, 7}
    joint = SegmentationFolder(
        imgs,
        masks,
        mask_suffix="_mask",
        transform=T.Compose([T.RandomHorizontalFlip(1.0), T.ToTensor()]),
    )[0]
    np.testing.assert_array_equal(joint["mask"].numpy(), labels["a"][:, ::-1])
    # size mismatch names both files
    Image.fromarray(np.zeros((7, 10), np.uint8)).save(masks / "b_mask.png")
    with pytest.raises(DatasetFormatError, match=r"b_mask\.png.*does not match.*b\.jpg"):
        ds[1]
    skipping = SegmentationFolder(imgs, masks, mask_suffix="_mask", on_error="skip")
    assert len(skipping) == 1 and skipping.num_skipped == 1
    # an image without a mask
    _write_png(imgs / "c.png", _rgb(8, 10))
    with pytest.raises(FileNotFoundError, match=r"no mask for image .*c\.png"):
        SegmentationFolder(imgs, masks, mask_suffix="_mask")
    with pytest.raises(FileNotFoundError, match="mask folder"):
        SegmentationFolder(imgs, tmp_path / "nomasks")


# ----------------------------------------------------------------------------- landmarks
def test_landmark_list_round_trip_and_errors(tmp_path):
    a, b = _rgb(20, 20), _rgb(20, 20)
    _write_png(tmp_path / "faces" / "a.png", a)
    _write_png(tmp_path / "faces" / "b.png", b)
    lines = [
        "faces\\a.png 1 2 3 4 5 10 11 12 13 14.5",  # Windows separators, as in MTFL
        "faces/b.png 5 6 7 8 21 -0.5 1 2 3 4",
    ]  # a point slightly outside: accepted
    lst = tmp_path / "train.txt"
    lst.write_text("\n".join(lines) + "\n")
    ds = LandmarkList(lst)
    assert len(ds) == 2 and ds.num_points == 5
    s = ds[0]
    np.testing.assert_array_equal(s["image"], a)
    np.testing.assert_allclose(s["keypoints"], [[1, 10], [2, 11], [3, 12], [4, 13], [5, 14.5]])
    assert ds[1]["keypoints"][0].tolist() == [5, -0.5]
    flip = LandmarkList(lst, transform=T.RandomHorizontalFlip(1.0, flip_pairs=MTFL_FLIP_PAIRS))
    np.testing.assert_allclose(flip[0]["keypoints"][0], [20 - 2, 11])
    xy = tmp_path / "xy.txt"
    xy.write_text("faces/a.png 1 10 2 11\n")
    assert LandmarkList(xy, layout="xyxy")[0]["keypoints"].tolist() == [[1, 10], [2, 11]]
    bad = tmp_path / "bad.txt"
    bad.write_text(lines[0] + "\nfaces/b.png 1 2 3 x 5 6 7 8 9 10\n" + lines[1] + "\n")
    with pytest.raises(DatasetFormatError, match=r"bad\.txt, line 2: non-numeric"):
        LandmarkList(bad)
    skipping = LandmarkList(bad, on_error="skip")
    assert len(skipping) == 2 and skipping.num_skipped == 1
    short = tmp_path / "short.txt"
    short.write_text(lines[0] + "\nfaces/b.png 1 2 3\n")
    with pytest.raises(DatasetFormatError, match=r"short\.txt, line 2: expected a path and 10"):
        LandmarkList(short)
    gone = tmp_path / "gone.txt"
    gone.write_text("faces/zzz.png 1 2 3 4 5 1 2 3 4 5\n")
    with pytest.raises(DatasetFormatError, match=r"gone\.txt, line 1: image .*zzz\.png"):
        LandmarkList(gone)
    with pytest.raises(FileNotFoundError, match="landmark list"):
        LandmarkList(tmp_path / "none.txt")


# ----------------------------------------------------------------------------- YOLO
def test_yolo_round_trip_and_errors(tmp_path):
    img_dir, lab_dir = tmp_path / "images" / "train", tmp_path / "labels" / "train"
    _write_png(img_dir / "a.png", _rgb(40, 80))
    _write_png(img_dir / "b.png", _rgb(40, 80))
    lab_dir.mkdir(parents=True)
    boxes = np.array([[8, 4, 24, 20], [40, 10, 80, 40]], np.float32)
    yolo = boxes_to_yolo(boxes, 40, 80)
    (lab_dir / "a.txt").write_text(
        "".join(f"{c} {' '.join(f'{v:.6f}' for v in row)}\n" for c, row in zip([1, 0], yolo))
    )
    ds = YOLODataset(img_dir, num_classes=2)  # labels/ found from images/
    assert len(ds) == 2
    s = ds[0]
    np.testing.assert_allclose(s["boxes"], boxes, atol=1e-3)
    assert s["label"].tolist() == [1, 0]
    assert ds[1]["boxes"].shape == (0, 4)  # no label file: background image
    batch = detection_collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 40, 80, 3) and len(batch["boxes"]) == 2
    assert batch["boxes"][0].shape == (2, 4) and batch["label"][1].shape == (0,)
    flipped = YOLODataset(img_dir, transform=T.RandomHorizontalFlip(1.0))[0]["boxes"]
    np.testing.assert_allclose(flipped[0], [56, 4, 72, 20], atol=1e-3)
    (lab_dir / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n")
    with pytest.raises(DatasetFormatError, match=r"b\.txt, line 2: expected 'class cx cy w h'"):
        YOLODataset(img_dir)
    assert YOLODataset(img_dir, on_error="skip").num_skipped == 1
    (lab_dir / "b.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetFormatError, match=r"line 1: class 3 out of range"):
        YOLODataset(img_dir, num_classes=2)
    (lab_dir / "b.txt").write_text("0 0.5 1.7 0.2 0.2\n")
    with pytest.raises(DatasetFormatError, match="normalised"):
        YOLODataset(img_dir)
    (lab_dir / "b.txt").write_text("zero 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetFormatError, match="integer class"):
        YOLODataset(img_dir)
    with pytest.raises(FileNotFoundError, match="label folder"):
        YOLODataset(img_dir, labels=tmp_path / "nolabels")


# ----------------------------------------------------------------------------- procedural
@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DARKSTUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_procedural_glyphs_deterministic_and_cached(cache):
    a = SyntheticGlyphs(size=300, seed=3)
    assert cache_dir() == cache
    files = list((cache / "procedural").glob("glyphs-*.npz"))
    assert len(files) == 1 and "s3-n300-train" in files[0].name
    mtime = files[0].stat().st_mtime_ns
    b = SyntheticGlyphs(size=300, seed=3)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not rewritten
    np.testing.assert_array_equal(a.data, b.data)
    fresh = SyntheticGlyphs(size=300, seed=3, cache=False)
    np.testing.assert_array_equal(a.data, fresh.data)
    other = SyntheticGlyphs(size=300, seed=4, cache=False)
    assert not np.array_equal(a.data, other.data)
    test = SyntheticGlyphs(train=False, size=300, seed=3, cache=False)
    assert not np.array_equal(a.data, test.data)
    img, lab = a[0]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and 0 <= lab < 10
    assert set(np.unique(a.targets)) == set(range(10))
    files[0].write_bytes(b"damaged")  # a damaged cache file is regenerated
    np.testing.assert_array_equal(SyntheticGlyphs(size=300, seed=3).data, a.data)


def test_glyphs_are_learnable_but_not_trivial():
    tr = SyntheticGlyphs(size=3000, seed=0, cache=False)
    te = SyntheticGlyphs(train=False, size=1000, seed=0, cache=False)

    def feats(d):
        x = d.data.reshape(len(d), -1).astype(np.float64) / 255
        return np.hstack([x, np.ones((len(x), 1))])

    X, Y = feats(tr), np.eye(10)[tr.targets]
    W = np.linalg.solve(X.T @ X + 10.0 * np.eye(X.shape[1]), X.T @ Y)
    acc = (feats(te) @ W).argmax(1) == te.targets
    assert 0.2 < acc.mean() < 0.97  # a linear model learns it (0.33 here), far from perfectly


def test_procedural_objects_faces_shapes(cache):
    obj = SyntheticObjects(size=50, seed=1, cache=False)
    img, lab = obj[0]
    assert img.shape == (32, 32, 3) and len(obj.classes) >= 10 and 0 <= lab < 10
    faces = SyntheticFaces(size=20, seed=1, cache=False)
    s = faces[0]
    assert s["image"].shape == (64, 64, 3) and s["keypoints"].shape == (5, 2)
    kp, box = s["keypoints"], s["boxes"][0]
    assert (kp >= box[:2] - 1).all() and (kp <= box[2:] + 1).all()
    assert kp[0, 0] < kp[1, 0] and kp[3, 0] < kp[4, 0]  # left eye/mouth left of right ones
    assert kp[2, 1] > kp[0, 1] and kp[3, 1] > kp[2, 1]  # nose below eyes, mouth below nose
    det = SyntheticFaces(size=10, seed=1, mode="detection", cache=False)
    counts = [len(det[i]["boxes"]) for i in range(10)]
    assert min(counts) >= 1 and max(counts) <= 4
    d0 = det[int(np.argmax(counts))]
    assert d0["keypoints"].shape == (5 * len(d0["boxes"]), 2)
    assert (d0["label"] == 0).all()
    loader = DataLoader(det, batch_size=4, collate_fn=detection_collate)
    assert len(next(iter(loader))["boxes"]) == 4
    shapes = SyntheticShapes(size=30, seed=1, cache=False)
    m = shapes[0]["mask"]
    assert m.shape == (64, 64) and m.dtype == np.int64
    all_masks = np.stack([shapes[i]["mask"] for i in range(30)])
    assert set(np.unique(all_masks)) == set(range(5))
    # the mask marks where the shapes are: their pixels differ from the background's
    with pytest.raises(ValueError, match="mode"):
        SyntheticFaces(mode="portrait")
    SyntheticShapes(size=5, seed=2)
    assert len(list((cache / "procedural").glob("shapes-*.npz"))) == 1


def test_points_and_surface():
    x, y = make_points(100, dim=3, seed=1)
    assert x.shape == (100, 3) and y.shape == (100, 1) and set(np.unique(y)) == {0.0, 1.0}
    # separable enough for logistic regression: the class means are far apart
    assert np.linalg.norm(x[y[:, 0] == 1].mean(0) - x[y[:, 0] == 0].mean(0)) > 2
    np.testing.assert_array_equal(make_points(100, 3, seed=1)[0], x)
    xy, z = make_sine_surface(50, seed=2)
    np.testing.assert_allclose(
        z[:, 0], np.sin(np.sqrt((xy.astype(np.float64) ** 2).sum(1))), atol=1e-6
    )
    xb, yb = next(iter(DataLoader(PointClouds(size=8), batch_size=8)))
    assert xb.shape == (8, 2) and yb.shape == (8, 1) and yb.dtype == dl.float32
    assert len(SineSurface(train=False)) == 500


# ----------------------------------------------------------------------------- real data
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
# tarfile's "data" filter (3.11.4+, backported) refuses links and paths leaving the folder
_SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _extracted(name: str, keep=lambda parts: True) -> tuple[Path, dict]:
    """Extract ../shared/datasets/<name>.tar.gz once per machine outside the repository,
    only the members ``keep`` accepts; returns the folder and member counts per top folder
    (so that a split can be counted without being extracted)."""
    archive = SHARED / f"{name}.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent")
    base = Path(tempfile.gettempdir()) / "darkstudio-datasets"
    done = base / f"{name}.done.json"
    if not done.exists():
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
        counts: dict = {}
        with tarfile.open(archive) as tf:
            for m in tf:
                parts = Path(m.name).parts
                if m.isfile() and len(parts) > 2:
                    counts[parts[1]] = counts.get(parts[1], 0) + 1
                if m.isfile() and keep(parts):
                    tf.extract(m, tmp, **_SAFE)
        target = base / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / name, target)
        shutil.rmtree(tmp, ignore_errors=True)
        done.write_text(json.dumps(counts))
    return base / name, json.loads(done.read_text())


def test_cifar10_jpeg_image_folder():
    root, counts = _extracted("cifar10-jpg", keep=lambda parts: parts[1] == "test")
    test = ImageFolder(root / "test")
    assert test.classes == CIFAR10.classes  # (the binary release's names, in its order)
    assert len(test) == 10000 and np.bincount(test.targets).tolist() == [1000] * 10
    loader = DataLoader(test, batch_size=500, num_workers=2)
    n = 0
    for x, y in loader:
        assert x.shape[1:] == (32, 32, 3) and x.dtype == dl.uint8
        n += len(y)
    assert n == 10000
    assert counts["train"] == 50000 and counts["test"] == 10000


def test_mtfl_landmarks_all_faces():
    root, _ = _extracted("mtfl-faces-80")
    train = LandmarkList(root / "train.txt")
    test = LandmarkList(root / "test.txt")
    assert len(train) == 10000 and len(test) == 2995 and train.num_points == 5
    kps = np.concatenate([train.keypoints, test.keypoints])
    assert kps.shape == (12995, 5, 2)
    assert (kps[:, 0, 0] < kps[:, 1, 0]).mean() > 0.99  # left eye left of the right eye
    loader = DataLoader(train + test, batch_size=1000, num_workers=2)
    n = 0
    for batch in loader:
        assert batch["image"].shape[1:] == (80, 80, 3)
        n += batch["image"].shape[0]
    assert n == 12995


def test_image_folder_refuses_an_empty_class_folder_as_torchvision(tmp_path):
    """An empty class folder would still be a class the model must predict: refused,
    naming it, unless allow_empty (torchvision's argument)."""
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        cv2.imwrite(str(tmp_path / c / "0.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "c").mkdir()
    with pytest.raises(FileNotFoundError, match="for the classes c in"):
        ImageFolder(tmp_path)
    ds = ImageFolder(tmp_path, allow_empty=True)
    assert ds.classes == ["a", "b", "c"] and len(ds) == 2
