"""Previews: batches drawn to uint8 grids with masks, keypoints, boxes and captions."""

import numpy as np
import pytest

import darklib as dl
from darklib.tensor import Tensor
from darklib.utils.data import DataLoader
from darklib.vision import make_grid, render_batch
from darklib.vision import transforms as T
from darklib.vision.datasets import SyntheticFaces, SyntheticShapes, detection_collate
from darklib.vision.preview import PALETTE


def test_make_grid_layout_and_values():
    imgs = np.zeros((5, 4, 6, 3), np.uint8)
    imgs[1] = 200
    grid = make_grid(imgs, nrow=3, padding=1, pad_value=7)
    assert grid.shape == (2 * 5 + 1, 3 * 7 + 1, 3) and grid.dtype == np.uint8
    assert (grid[0] == 7).all() and (grid[1:5, 8:14] == 200).all() and (grid[1:5, 1:7] == 0).all()
    t = Tensor._wrap(np.full((2, 1, 4, 4), 0.5, np.float32))  # NCHW float in [0, 1]
    g = make_grid(t, padding=0)
    assert g.shape == (4, 8, 3) and (g == 128).all()
    norm = Tensor._wrap(np.zeros((1, 3, 2, 2), np.float32))
    g = make_grid(norm, padding=0, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert (g == 128).all()  # the Normalize is undone
    with pytest.raises(ValueError, match="no images"):
        make_grid([])


def test_render_classification_captions_with_a_second_cue():
    x = dl.zeros(4, 3, 8, 8)
    y = dl.tensor([0, 1, 2, 3])
    plain = render_batch((x, y), class_names=["a", "b", "c", "d"], scale=12, padding=0)
    assert plain.shape == (96, 4 * 96, 3)
    assert plain[:, :96].max() > 0  # a caption was drawn on the black image
    judged = render_batch((x, y), preds=[0, 1, 0, 0], scale=12, padding=0)
    right, wrong = judged[:, :96], judged[:, 2 * 96 : 3 * 96]
    g = (right[..., 1].astype(int) - right[..., 0]).max()
    r = (wrong[..., 0].astype(int) - wrong[..., 1]).max()
    assert g > 100 and r > 100  # green for right, red for wrong (plus a "+"/"x" prefix)


def test_render_masks_keypoints_boxes():
    img = np.zeros((1, 16, 16, 3), np.uint8)
    mask = np.zeros((1, 16, 16), np.int64)
    mask[0, :8] = 1
    out = render_batch({"image": img, "mask": mask}, scale=1, padding=0)
    assert out.shape == (16, 16, 3)
    assert (out[8:] == 0).all() and (out[:8] > 0).any()
    np.testing.assert_allclose(out[2, 2], PALETTE[0] * 0.45, atol=1)
    kp = np.array([[[4.0, 4.0], [12.0, 12.0]]], np.float32)
    out = render_batch({"image": img, "keypoints": kp}, scale=4, padding=0)
    assert out.shape == (64, 64, 3)
    assert tuple(out[16, 16]) == tuple(PALETTE[0]) and tuple(out[48, 48]) == tuple(PALETTE[1])
    boxes = [np.array([[2, 2, 10, 12]], np.float32)]
    sample = {"image": img, "boxes": boxes, "label": [np.array([2])]}
    out = render_batch(sample, scale=1, padding=0)
    assert out[11, 2:10].any(axis=-1).all() and out[6, 6].max() == 0  # outline only
    assert tuple(out[11, 5]) == tuple(PALETTE[2])  # coloured by the box's class
    named = render_batch(sample, scale=1, padding=0, class_names=["x", "y", "z"])
    assert not np.array_equal(named, out)  # the class name is written


def test_render_real_batches_from_loaders():
    faces = SyntheticFaces(size=4, cache=False, transform=T.Compose([T.ToTensor()]))
    batch = next(iter(DataLoader(faces, batch_size=4)))
    out = render_batch(batch, nrow=2)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    shapes = SyntheticShapes(size=3, cache=False)
    b = next(iter(DataLoader(shapes, batch_size=3)))
    with_mask = render_batch(b, scale=1)
    without = render_batch({"image": b["image"]}, scale=1)
    assert with_mask.shape == without.shape and not np.array_equal(with_mask, without)
    det = SyntheticFaces(size=2, mode="detection", cache=False)
    out = render_batch(detection_collate([det[0], det[1]]), class_names=["face"])
    assert out.shape[1] > out.shape[0]
    samples = [faces[0], faces[1]]  # a plain list of samples works too
    assert render_batch(samples).shape[2] == 3
