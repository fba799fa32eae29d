"""Review findings, session 11 (second part): roll back restores only this window's own
checkpoint, huge metric values keep the window's size, the transform editor's defaults,
removal, order and messages, opening a folder, the window's minimum size and single-key
shortcuts, and cosmetics. The window tests drive the real widgets offscreen."""

import math
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("PySide6")

import test_studio_ui as ui
from PySide6.QtCore import Qt
from test_studio_ui import SAMPLES, _open_small, _trained, _wait_state

from studio.project import TransformSpec, load_project, save_project
from studio.trainer import Event

# the studio window tests' fixtures: a window on a small procedural project
procedural, win = ui.procedural, ui.win


# --------------------------------------------------------------------------- 1. roll back


def _log(win):
    return win.training_panel.log.toPlainText()


def test_roll_back_never_restores_the_checkpoint_of_another_session(win, qtbot):
    """A checkpoint left in the shared folder by an earlier session (or another window) of
    the same sample is not this window's: a fresh project does not roll back to it."""
    _trained(win, qtbot)  # one epoch: its checkpoint is in the per-user folder
    ckpt = win.c.checkpoint_path()
    assert ckpt.is_file()
    win.c.dirty = False
    _open_small(win, SAMPLES[0])  # the same sample, opened afresh: untrained
    assert win.c.checkpoint_path() == ckpt and not win.c.project.trained
    win.rollback_act.trigger()
    assert not win.c.project.trained and len(win.c.history) == 0
    assert "cannot roll back: there is no checkpoint yet" in _log(win)
    assert "never used" in _log(win)


def test_roll_back_refuses_a_checkpoint_another_window_overwrote(win, qtbot):
    _trained(win, qtbot)
    ckpt = win.c.checkpoint_path()
    other = load_project(ckpt)  # another window's run of the same sample writes the file
    other.history = {k: v for k, v in other.history.items() if k != "_run_id"}
    save_project(other, ckpt)
    step = win.c.session.position["step"]
    win.rollback_act.trigger()
    assert "was overwritten by another window's run" in _log(win)
    assert win.c.session is not None and win.c.session.position["step"] == step


def test_roll_back_after_save_as_finds_the_checkpoint_the_run_wrote(win, qtbot, tmp_path):
    good = _trained(win, qtbot)
    written = win.c.checkpoint_path()
    assert win._save_to(tmp_path / "renamed.darkproj")  # the checkpoint stays where it is
    assert win.c.checkpoint_path() != written
    win.c.session.model.fc1.weight.array[...] = 7.0  # (as if diverged)
    win.c._save_session_to_project()
    win.rollback_act.trigger()
    assert "rolled back to the checkpoint after epoch 1" in _log(win), _log(win)
    np.testing.assert_array_equal(win.c.project.model_state["fc1.weight"], good["fc1.weight"])
    assert "_run_id" not in win.c.project.history  # the tag stays in the checkpoint


# --------------------------------------------------------------------------- 2. huge values


def _step(loss, step=5):
    return Event(
        "step",
        {
            "step": step,
            "epoch": 0,
            "batch": step,
            "batches": 10,
            "loss": loss,
            "acc": 0.5,
            "lr": 1e-3,
            "images_per_s": 100.0,
            "eta_s": 3.0,
            "done_steps": step,
        },
    )


def test_a_huge_loss_is_shown_short_and_keeps_the_window_size(win, qtbot):
    _open_small(win, SAMPLES[0])
    win.show_panel("Training")
    win.resize(1280, 720)
    qtbot.wait(50)
    size, hint = win.size(), win.minimumSizeHint()
    tp = win.training_panel
    for loss in (1e30, 123456789.123456789, -3.0e-9):
        win.c.events.emit([_step(loss)])
        ev = {"epoch": 1, "train_loss": loss, "train_acc": 0.1, "val_loss": loss}
        win.c.events.emit([Event("epoch", {**ev, "val_acc": 0.2, "seconds": 1.0})])
        qtbot.wait(20)
        label = tp.tiles["loss"].value
        text = label.text()
        assert len(text) <= 9 and label.fontMetrics().horizontalAdvance(text) <= label.width()
        assert win.size() == size and win.minimumSizeHint().width() <= hint.width()
    assert tp.tiles["loss"].value.text() == "-3.00e-09"
    assert "train loss 1.00e+30" in _log(win) and "val loss 1.23e+08" in _log(win)
    for loss, shown in ((1e30, "1.00e+30"), (0.6931, "0.6931"), (math.nan, "nan")):
        win.c.events.emit([_step(loss)])
        qtbot.waitUntil(lambda shown=shown: tp.tiles["loss"].value.text() == shown)


# --------------------------------------------------------------------------- 3. transforms


def _dataset_panel(win, qtbot, path=SAMPLES[0]):
    _open_small(win, path)
    win.show_panel("Dataset")
    dp = win.dataset_panel
    qtbot.waitUntil(lambda: dp._shown is not None, timeout=10000)
    dp.c.spec.dataset.transforms = []
    dp._fill_transforms()
    return dp


def _add(dp, qtbot, name):
    dp.t_type.setCurrentText(name)
    qtbot.mouseClick(dp.t_buttons[1], Qt.LeftButton)  # Add


def _types(dp):
    return [t.type for t in dp.c.spec.dataset.transforms]


@pytest.mark.parametrize("path", SAMPLES)  # grey 28x28 and colour 32x32
def test_every_listed_transform_can_be_added_with_its_defaults(win, qtbot, path):
    dp = _dataset_panel(win, qtbot, path)
    names = [dp.t_type.itemText(k) for k in range(dp.t_type.count())]
    assert "Pad" in names and "Grayscale" in names
    for name in names:
        dp.c.spec.dataset.transforms = []
        dp._fill_transforms()
        _add(dp, qtbot, name)
        assert _types(dp)[:1] == [name], (name, dp.t_error.text())
        assert not dp.t_error.text().startswith("Not applied"), dp.t_error.text()
        assert dp.aug_labels[1].pixmap() is not None and not dp.aug_labels[1].pixmap().isNull()
    dp.c.spec.dataset.transforms = []
    dp._fill_transforms()
    _add(dp, qtbot, "Pad")  # larger images: a crop back to the model's size follows
    assert _types(dp) == ["Pad", "RandomCrop"] and "RandomCrop" in dp.t_error.text()
    dp.tfm.selectRow(0)  # after Pad, before the crop: nothing more is needed
    _add(dp, qtbot, "Pad")
    assert _types(dp) == ["Pad", "Pad", "RandomCrop"], dp.t_error.text()


def test_transforms_can_be_inserted_removed_and_reordered(win, qtbot):
    dp = _dataset_panel(win, qtbot)
    remove, up, down = dp.t_buttons[2:5]
    for name in ("RandomRotation", "GaussianBlur", "RandomHorizontalFlip"):
        _add(dp, qtbot, name)
    assert _types(dp) == ["RandomRotation", "GaussianBlur", "RandomHorizontalFlip"]
    dp.tfm.selectRow(0)  # Add inserts after the selected transform
    _add(dp, qtbot, "ColorJitter")
    assert _types(dp) == ["RandomRotation", "ColorJitter", "GaussianBlur", "RandomHorizontalFlip"]
    assert dp.tfm.currentRow() == 1
    qtbot.mouseClick(up, Qt.LeftButton)
    assert _types(dp)[:2] == ["ColorJitter", "RandomRotation"] and dp.tfm.currentRow() == 0
    qtbot.mouseClick(down, Qt.LeftButton)
    qtbot.mouseClick(down, Qt.LeftButton)
    assert _types(dp) == ["RandomRotation", "GaussianBlur", "ColorJitter", "RandomHorizontalFlip"]
    qtbot.mouseClick(remove, Qt.LeftButton)
    assert _types(dp) == ["RandomRotation", "GaussianBlur", "RandomHorizontalFlip"]
    dp.tfm.setFocus()
    dp.tfm.selectRow(0)
    qtbot.keyClick(dp.tfm, Qt.Key_Delete)
    assert _types(dp) == ["GaussianBlur", "RandomHorizontalFlip"]
    dp.tfm.setCurrentCell(-1, -1)
    qtbot.mouseClick(remove, Qt.LeftButton)  # nothing selected: said, nothing removed
    assert len(_types(dp)) == 2 and "Select the transform" in dp.t_error.text()


# --------------------------------------------------------------------------- 4. arguments


def _edit_args(dp, row, text):
    dp.tfm.item(row, 1).setText(text)


@pytest.mark.parametrize(
    "name, args, needles",
    [
        ("RandomResizedCrop", "size=28, ratio=[1.33, 0.75]", ["ratio", "0.75, 1.33"]),
        ("RandomRotation", "degrees=NaN", ["RandomRotation", "degrees", "finite"]),
        ("RandomRotation", "degrees=nan", ["RandomRotation", "degrees", "number"]),
        ("RandomAffine", "degrees=[30, -30]", ["RandomAffine", "degrees", "smaller value first"]),
        ("Resize", "size=5000", ["Resize", "size=5000", "too large"]),
        ("Pad", "padding=100000", ["Pad", "padding", "too large"]),
    ],
)
def test_bad_transform_arguments_are_named_clearly(win, qtbot, name, args, needles):
    dp = _dataset_panel(win, qtbot)
    _add(dp, qtbot, name)
    before = [t.model_copy() for t in dp.c.spec.dataset.transforms]
    t0 = time.perf_counter()
    _edit_args(dp, 0, args)
    took = time.perf_counter() - t0
    msg = dp.t_error.text()
    assert msg.startswith("Not applied: transform 1"), msg
    assert all(n in msg for n in needles), msg
    assert "exceeds valid bounds" not in msg and "should be (min, max)" not in msg
    assert dp.c.spec.dataset.transforms == before
    assert took < 0.5, took  # refused before any 5000x5000 image is made


def test_a_large_but_accepted_size_previews_quickly(win, qtbot):
    dp = _dataset_panel(win, qtbot)
    dp.c.spec.dataset.transforms = [
        TransformSpec(type="Resize", args={"size": 200}),
        TransformSpec(type="GaussianBlur", args={"kernel_size": 3}),
        TransformSpec(type="Resize", args={"size": 28}),
    ]
    dp._fill_transforms()
    t0 = time.perf_counter()
    _edit_args(dp, 0, "size=256")  # 4x the side, at least 256: accepted
    _edit_args(dp, 1, "kernel_size=31")
    assert time.perf_counter() - t0 < 1.0
    assert [t.args for t in dp.c.spec.dataset.transforms[:2]] == [
        {"size": 256},
        {"kernel_size": 31},
    ]
    _edit_args(dp, 1, "kernel_size=1023")  # 4 s an image at 1024 pixels: refused
    assert "kernel_size=1023 is too large" in dp.t_error.text()


# --------------------------------------------------------------------------- 5. folders


def test_opening_a_folder_that_is_no_dataset_says_what_open_takes(win, tmp_path):
    (tmp_path / "empty").mkdir()
    assert win.open_path(str(tmp_path / "empty")) is False
    msg = win.errors[-1]
    assert "is a folder, not a project file" in msg and ".darkproj" in msg, msg
    assert "no such file" not in msg and "dropped on the window" in msg
    assert win.c.project is None


def test_opening_an_image_folder_uses_it_as_a_drop_does(win, qtbot, tmp_path):
    pytest.importorskip("cv2")
    from test_studio_review_s11 import _image_tree

    _image_tree(tmp_path / "imgs", ["cats", "dogs", "owls"], 3)
    _open_small(win, SAMPLES[1])
    assert win.open_path(str(tmp_path / "imgs")), win.errors
    ds = win.c.spec.dataset
    assert ds.source == "folder" and ds.path == str(tmp_path / "imgs")
    assert win.stack.currentWidget() is win.dataset_panel


def test_cli_info_on_a_folder_says_it_is_a_folder(tmp_path, capsys):
    from studio.cli import main

    assert main(["info", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "is a folder, not a project file" in err and "no such file" not in err


# --------------------------------------------------------------------------- 6. window


def test_single_key_shortcut_does_not_fire_while_typing(win, qtbot):
    """R draws the augmentations again, but not while a field takes typed text (a
    button's shortcut clicks 100 ms later: each key is given time to land)."""
    dp = _dataset_panel(win, qtbot)
    _add(dp, qtbot, "RandomRotation")

    def press(w):
        seed = dp.aug_seed
        w.setFocus()
        qtbot.keyClick(w, Qt.Key_R)
        qtbot.wait(200)
        return dp.aug_seed != seed

    dp.tfm.setCurrentCell(0, 1)
    dp.tfm.editItem(dp.tfm.item(0, 1))
    editor = dp.tfm.focusWidget()
    assert editor is not dp.tfm
    assert not press(editor)
    dp.tfm.closePersistentEditor(dp.tfm.item(0, 1))
    assert not press(dp.size.lineEdit())
    assert not press(dp.t_type)  # typing in a list picks its entries (R: RandomCrop)
    assert dp.t_type.currentText().startswith("R")
    assert press(dp.grid)  # elsewhere R draws the augmentations again
    assert press(dp.reroll)


@pytest.mark.parametrize("path", SAMPLES)
def test_window_fits_a_1024x600_screen(win, qtbot, path):
    assert win.open_path(path), win.errors
    m = win.minimumSizeHint()
    assert m.width() <= 1010 and m.height() <= 560, m
    win.resize(1024, 600)
    for name in ("Start", "Dataset", "Model", "Training", "Outputs"):
        win.show_panel(name)
        qtbot.wait(50)
        panel = win.stack.currentWidget()
        assert win.width() <= 1024 and win.height() <= 600, (name, win.size())
        assert panel.width() <= 1024 - win.nav.width() and panel.height() < 600, name
    tp = win.training_panel  # the tiles take two rows rather than cutting their values
    win.show_panel("Training")
    qtbot.wait(50)
    for tile, sample in zip(tp.tiles.values(), ("10 / 100", "12,345", "1.23e+30")):
        tile.set(sample)
        assert tile.value.fontMetrics().horizontalAdvance(sample) <= tile.value.width()
    dp = win.dataset_panel  # the side column scrolls rather than squeezing its parts
    assert dp.side_scroll.widget().height() >= dp.side_scroll.widget().minimumSizeHint().height()


# --------------------------------------------------------------------------- 7. cosmetics


def test_long_class_names_show_whole_in_the_list_and_keep_the_window_size(win, qtbot, tmp_path):
    pytest.importorskip("cv2")
    from test_studio_review_s11 import _image_tree

    names = ["a_very_long_class_name_from_a_folder_number_one", "short"]
    _image_tree(tmp_path / "imgs", names, 3)
    _open_small(win, SAMPLES[1])
    win.resize(1024, 600)
    win.handle_drop(str(tmp_path / "imgs"))
    dp = win.dataset_panel
    qtbot.waitUntil(lambda: dp.klass.count() == 3, timeout=10000)
    qtbot.wait(50)
    assert win.width() <= 1024 and win.minimumSizeHint().width() <= 1010
    dp.klass.setCurrentIndex(1)
    widest = dp.klass.view().fontMetrics().horizontalAdvance(names[0])
    assert dp.klass.view().minimumWidth() >= widest and dp.klass.toolTip() == names[0]


def test_no_legend_covers_the_curves_and_end_markers_are_whole(win, qtbot):
    _open_small(win, SAMPLES[0], epochs=2)
    win.resize(1024, 600)
    win.show_panel("Training")
    tp = win.training_panel
    for plot in (tp.loss_plot, tp.acc_plot):
        assert plot.getPlotItem().legend is None
    assert all(k in tp.legend.text() for k in ("train (step)", "smoothed", "validation"))
    for ep in (1, 2):
        d = {"epoch": ep, "train_loss": 0.5, "train_acc": 0.9, "val_loss": 0.4}
        win.c.events.emit([Event("epoch", {**d, "val_acc": 1.0, "seconds": 1.0})])
    qtbot.wait(50)
    for plot, top in ((tp.loss_plot, None), (tp.acc_plot, 1.0)):
        vb = plot.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        assert (x1 - 2) * vb.width() / (x1 - x0) >= 6  # a symbol of 8 pixels: 4 + pen
        if top is not None:
            assert (y1 - top) * vb.height() / (y1 - y0) >= 6


def test_speed_tile_shows_dashes_until_measured(win, qtbot):
    _open_small(win, SAMPLES[0])
    tp = win.training_panel
    ev = _step(0.5)
    ev.data["images_per_s"] = 0.0  # the first half second: not measured yet
    win.c.events.emit([ev])
    qtbot.waitUntil(lambda: tp.tiles["step"].value.text() == "5")
    assert tp.tiles["images/s"].value.text() == "--"


def test_a_nan_pause_names_the_step_the_tile_shows(win, qtbot):
    _open_small(win, SAMPLES[0], steps=6)
    s = win.c.ensure_session()
    real = s.task.train_step
    calls = []

    def nan_at_third(*a):
        calls.append(1)
        loss, st = real(*a)
        return (loss * float("nan"), st) if len(calls) == 3 else (loss, st)

    s.task.train_step = nan_at_third
    tp = win.training_panel
    tp.start()
    _wait_state(qtbot, win, "paused")
    qtbot.waitUntil(lambda: "loss is nan" in tp.status.text(), timeout=5000)
    qtbot.waitUntil(lambda: tp.tiles["step"].value.text() == "2", timeout=5000)
    assert s.position["step"] == 2
    assert "after step 2" in tp.status.text() and "at step 3" not in tp.status.text()
    win.c.stop(wait=10)
    _wait_state(qtbot, win, "idle")


def test_the_window_opens_within_the_screen(win):
    room = win.screen().availableGeometry()  # offscreen: an 800x600 screen
    assert win.height() <= max(room.height(), win.minimumSizeHint().height())
    assert win.width() <= max(room.width(), win.minimumSizeHint().width())
