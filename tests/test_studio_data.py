"""Studio data sources on darklib.vision's readers: image folders, IDX, CIFAR-10 binary."""

import gzip
import struct

import numpy as np
import pytest

pytest.importorskip("cv2")

from studio.data import DataError, ImageData, detect_source, fit_image, load_data
from studio.project import DatasetSpec


def _write_folder(root, n=4, size=(20, 24)):
    import cv2

    for k, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = np.full((*size, 3), 40 * k + i, np.uint8)
            img[:, :, 2] = 200 * k  # red for dogs (OpenCV writes BGR)
            cv2.imwrite(str(root / name / f"{i}.png"), img)


def _write_idx(path, arr):
    codes = {np.uint8: 0x08}
    head = bytes([0, 0, codes[arr.dtype.type], arr.ndim]) + struct.pack(
        ">" + "I" * arr.ndim, *arr.shape
    )
    data = head + arr.tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def test_image_folder_is_read_lazily_and_fitted(tmp_path):
    _write_folder(tmp_path / "imgs")
    assert detect_source(tmp_path / "imgs") == "folder"
    spec = DatasetSpec(source="folder", path=str(tmp_path / "imgs"), val_fraction=0.25)
    d = load_data(spec, [3, 16, 16])
    assert d.classes == ["cats", "dogs"] and len(d) == 8
    assert sorted(d.labels.tolist()) == [0] * 4 + [1] * 4
    assert len(d.val_indices) == 2 and len(d.train_indices) == 6
    img = d.image(int(np.nonzero(d.labels == 1)[0][0]))
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    assert img[..., 0].mean() > 150  # RGB order: the dogs are red
    grey = load_data(spec, [1, 28, 28])
    assert grey.image(0).shape == (28, 28, 1)
    x, _ = grey.train_dataset()[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and -1.0 <= x.min() <= x.max() <= 1.0


def test_corrupt_image_names_the_file_or_is_skipped(tmp_path):
    _write_folder(tmp_path / "imgs")
    bad = tmp_path / "imgs" / "dogs" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    d = load_data(DatasetSpec(source="folder", path=str(tmp_path / "imgs")), [3, 16, 16])
    k = [p for p, _ in d.source.samples].index(str(bad))
    with pytest.raises(DataError, match=r"broken\.png: cannot decode"):
        d.image(k)
    # in a split, without skipping, the message names the file and the way to skip it
    pos = int(np.flatnonzero(np.r_[d.train_indices, d.val_indices] == k)[0])
    split = d.train_dataset() if pos < len(d.train_indices) else d.val_dataset()
    pos = pos if pos < len(d.train_indices) else pos - len(d.train_indices)
    with pytest.raises(DataError, match=r"(?s)broken\.png: cannot decode.*Skip unreadable"):
        split[pos]
    # skipping: the folder opens without decoding every image; an unreadable one is left
    # out where it is met (its item is the next readable image) and listed
    spec = DatasetSpec(source="folder", path=str(tmp_path / "imgs"), on_error="skip")
    d = load_data(spec, [3, 16, 16])
    assert len(d) == 9 and d.skipped == []
    split = d.train_dataset() if split.name == "training" else d.val_dataset()
    x, _ = split[pos]
    assert x.shape == (3, 16, 16) and [p for p, _ in d.skipped] == [str(bad)]
    assert "cannot decode" in d.skipped[0][1] and d.bad == {k}


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_unreadable_folder_raises_data_error_naming_it(tmp_path, where):
    path = tmp_path / "nothing"
    if where == "empty":
        (path / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="nothing"):
        load_data(DatasetSpec(source="folder", path=str(path)), [3, 8, 8])


def test_mnist_idx_files(tmp_path):
    root = tmp_path / "FashionMNIST" / "raw"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (30, 28, 28)).astype(np.uint8)
    labels = (np.arange(30) % 10).astype(np.uint8)
    _write_idx(root / "train-images-idx3-ubyte.gz", images)
    _write_idx(root / "train-labels-idx1-ubyte.gz", labels)
    assert detect_source(tmp_path) == "fashion_mnist"
    d = load_data(DatasetSpec(source="fashion_mnist", path=str(tmp_path)), [1, 28, 28])
    assert d.classes[0] == "T-shirt/top" and len(d) == 30
    np.testing.assert_array_equal(d.image(3)[..., 0], images[3])
    # a model with another input shape gets converted images (once, at load)
    d3 = load_data(DatasetSpec(source="fashion_mnist", path=str(tmp_path)), [3, 32, 32])
    assert d3.image(3).shape == (32, 32, 3)
    # a truncated file is named
    raw = (root / "train-labels-idx1-ubyte.gz").read_bytes()
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(gzip.decompress(raw)[:-5]))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_data(DatasetSpec(source="fashion_mnist", path=str(tmp_path)), [1, 28, 28])


def test_cifar10_binary(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    rng = np.random.default_rng(1)
    for b in range(1, 6):
        rec = rng.integers(0, 255, (4, 3073)).astype(np.uint8)
        rec[:, 0] = np.arange(4) + b
        rec.tofile(root / f"data_batch_{b}.bin")
    assert detect_source(tmp_path) == "cifar10"
    d = load_data(DatasetSpec(source="cifar10", path=str(tmp_path)), [3, 32, 32])
    assert len(d) == 20 and d.classes[1] == "automobile"
    first = np.fromfile(root / "data_batch_1.bin", np.uint8)[1:3073]
    np.testing.assert_array_equal(d.image(0), first.reshape(3, 32, 32).transpose(1, 2, 0))
    (root / "data_batch_2.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(DataError, match=r"data_batch_2\.bin"):
        load_data(DatasetSpec(source="cifar10", path=str(tmp_path)), [3, 32, 32])


def test_schema_needs_a_path_for_files():
    with pytest.raises(ValueError, match="'mnist' dataset needs a 'path'"):
        DatasetSpec(source="mnist")


def test_fit_image_channels_and_size():
    rgb = np.zeros((10, 12, 4), np.uint8)
    rgb[..., 1] = 255
    g = fit_image(rgb, (1, 5, 6))
    assert g.shape == (5, 6, 1) and abs(int(g[2, 2, 0]) - round(0.587 * 255)) <= 1
    assert fit_image(np.zeros((5, 5), np.uint8), (3, 5, 5)).shape == (5, 5, 3)
    with pytest.raises(DataError, match="3-channel image to 2 channels"):
        fit_image(np.zeros((5, 5, 3), np.uint8), (2, 5, 5))


def test_in_memory_images_are_split_deterministically():
    spec = DatasetSpec(size=40, val_fraction=0.25, seed=3)
    labels = np.arange(40) % 4
    a = ImageData(labels, list("abcd"), [1, 4, 4], spec, images=np.zeros((40, 4, 4, 1), np.uint8))
    b = ImageData(labels, list("abcd"), [1, 4, 4], spec, images=np.zeros((40, 4, 4, 1), np.uint8))
    np.testing.assert_array_equal(a.val_indices, b.val_indices)
    assert len(a.val_indices) == 10
    assert not set(a.val_indices) & set(a.train_indices)


def test_transforms_that_cannot_work_are_named_before_training():
    from studio.data import transform_problem
    from studio.project import TransformSpec

    def tp(kind, shape=(3, 32, 32), **args):
        return transform_problem([TransformSpec(type=kind, args=args)], list(shape))

    assert "larger than the (padded) input image" in tp("RandomCrop", size=64)
    assert tp("RandomCrop", size=32, padding=4) is None
    assert "give 64x64 images but the model takes 32x32" in tp("Resize", size=64)
    assert tp("Resize", size=32) is None
    assert "p is a probability and must lie in [0, 1], got 5" in tp("RandomHorizontalFlip", p=5)
    assert tp("RandomHorizontalFlip", p=0.5) is None
    assert "1-channel images but the model takes 3" in tp("Grayscale")
    assert tp("RandomResizedCrop", shape=(1, 28, 28), size=28) is None
