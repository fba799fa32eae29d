"""Review findings, session 11: closing during a run, damaged project files, evaluation
errors in the Outputs panel, losses that do not fit the task, train/test folder layouts,
corrupt images and partial validation. The window tests drive the real widgets offscreen."""

import json
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("PySide6")
pytest.importorskip("cv2")

import test_studio_ui as ui
from PySide6.QtCore import Qt
from test_studio_ui import SAMPLES, _open_small, _wait_state

from darklib.vision.datasets import CIFAR10
from studio.project import ProjectError, load_project

# the studio window tests' fixtures: a window on a small procedural project
procedural, win = ui.procedural, ui.win


def _slow_steps(win, delay=0.02):
    s = win.c.ensure_session()
    real = s.task.train_step

    def slow(*a):
        time.sleep(delay)
        return real(*a)

    s.task.train_step = slow
    return s


# --------------------------------------------------------------------------- 1. closing


def test_close_during_training_asks_to_save_and_cancel_keeps_the_run(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[0], size=2000, steps=100, epochs=3)
    path = tmp_path / "p.darkproj"
    assert win._save_to(path)
    before = path.read_bytes()
    _slow_steps(win)
    win.training_panel.start()
    qtbot.waitUntil(lambda: win.c.session.position["step"] > 1, timeout=10000)
    win.save_answer = "cancel"
    assert not win.close()
    assert len(win.questions) == 1 and "Training is running" in win.questions[0]
    # Cancel: the window stays open and the run goes on, untouched
    assert win.c.is_training and win.c.state == "running"
    step = win.c.session.position["step"]
    qtbot.waitUntil(lambda: win.c.session.position["step"] > step, timeout=10000)
    assert path.read_bytes() == before
    # Save: the run stops (its thread ends), then the project is written with its state
    win.save_answer = "save"
    assert win.close()
    assert len(win.questions) == 2
    assert not win.c.is_training and win.c.trainer.finished_reason == "stopped"
    back = load_project(path)
    assert back.position["step"] == win.c.session.position["step"] > step
    assert len(back.history["steps"]["step"]) == back.position["step"]


def test_close_during_training_discard_stops_the_run_and_keeps_the_file(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[0], size=2000, steps=100, epochs=3)
    path = tmp_path / "p.darkproj"
    assert win._save_to(path)
    before = path.read_bytes()
    _slow_steps(win)
    win.training_panel.start()
    qtbot.waitUntil(lambda: win.c.session.position["step"] > 1, timeout=10000)
    win.save_answer = "discard"
    assert win.close()
    assert not win.c.is_training and win.c.trainer.finished_reason == "stopped"
    assert path.read_bytes() == before


def test_close_when_idle_with_unsaved_changes_asks(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[0])
    assert win._save_to(tmp_path / "p.darkproj")
    win.c.spec.training.epochs = 7
    win.c.mark_changed("training")
    win.save_answer = "cancel"
    assert not win.close()
    assert win.questions == ["Save the project before closing?"]
    win.save_answer = "save"
    assert win.close()
    assert load_project(tmp_path / "p.darkproj").spec.training.epochs == 7


# --------------------------------------------------------------------------- 2. project files


def _write_project(path, history, sample=SAMPLES[0], weights=None):
    """A .darkproj of a sample's spec with ``history.json`` as given (a dict is dumped as
    JSON, bytes are written as they are) and no weights unless ``weights`` (bytes)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.json", open(sample).read())
        z.writestr("history.json", history if isinstance(history, bytes) else json.dumps(history))
        if weights is not None:
            z.writestr("weights.safetensors", weights)
    return path


_OLD_RUN = {
    "steps": {
        "step": [1, 2, 3],
        "epoch": [0.3, 0.6, 1.0],
        "loss": [2.3, 2.0, 1.8],
        "acc": [0.1, 0.2, 0.3],
        "lr": [1e-3] * 3,
    },
    "epochs": {
        "epoch": [1],
        "train_loss": [2.0],
        "train_acc": [0.2],
        "val_loss": [1.9],
        "val_acc": [0.25],
        "seconds": [1.0],
    },
}


def test_project_without_its_weights_opens_untrained_with_the_history_cleared(win, qtbot, tmp_path):
    path = _write_project(tmp_path / "lost.darkproj", _OLD_RUN)
    proj = load_project(path)
    assert not proj.trained and proj.history == {} and proj.position["step"] == 0
    assert "weights.safetensors is missing" in proj.notes[0] and str(path) in proj.notes[0]
    assert win.open_path(str(path)), win.errors
    assert len(win.c.history) == 0 and not win.c.has_training_work
    assert win.training_panel.s_loss.n == 0 and win.training_panel.s_vacc.n == 0
    msg = win.statusBar().currentMessage()
    assert "weights.safetensors is missing" in msg and "history (3 steps) was cleared" in msg
    assert "weights.safetensors is missing" in win.training_panel.log.toPlainText()
    assert win.c.dirty  # the project in the window differs from its file
    # a new run starts its own history at step 1
    s = win.c.spec
    s.dataset.size, s.training.epochs, s.training.batch_size = 240, 1, 16
    s.training.max_steps_per_epoch, s.training.max_val_batches = 3, 1
    win.c.mark_changed("dataset")
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=30000)
    assert win.c.history.steps["step"] == [1.0, 2.0, 3.0]
    assert win.c.history.epochs["epoch"] == [1.0]


@pytest.mark.parametrize(
    "history, needle",
    [
        ({"steps": [1, 2]}, "steps: Input should be a valid dictionary"),
        ({"epochs": {"val_acc": "high"}}, "epochs.val_acc: Input should be a valid list"),
        ({"steps": {"loss": [1.0, "x"]}}, "steps.loss.1: Input should be a valid number"),
        ({"_schedule_type": 3}, "_schedule_type: Input should be a valid string"),
        ([1, 2], "the top level must be a JSON object, not list"),
    ],
)
def test_malformed_history_is_named_by_file_and_field(tmp_path, capsys, history, needle):
    from studio import cli

    path = _write_project(tmp_path / "bad.darkproj", history)
    with pytest.raises(ProjectError) as err:
        load_project(path)
    assert f"{path}:history.json" in str(err.value) and needle in str(err.value)
    assert cli.main(["info", str(path)]) == 2
    out = capsys.readouterr()
    assert needle in out.err and "history.json" in out.err and "Traceback" not in out.err


def test_malformed_history_is_refused_by_the_window(win, tmp_path):
    path = _write_project(tmp_path / "bad.darkproj", {"epochs": {"epoch": {"a": 1}}})
    assert not win.open_path(str(path))
    assert "history.json" in win.errors[-1] and "epochs.epoch" in win.errors[-1]


def test_cli_info_says_when_the_history_was_cleared(tmp_path, capsys):
    from studio import cli

    path = _write_project(tmp_path / "lost.darkproj", _OLD_RUN)
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "weights.safetensors is missing" in out
    assert "trained" not in out.split("total parameters")[1]


# --------------------------------------------------------------------------- 4. loss vs task


def _project_with_loss(tmp_path, loss):
    spec = json.loads(open(SAMPLES[0]).read())
    spec["loss"] = loss
    path = tmp_path / "loss.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize(
    "loss, needle",
    [
        ({"type": "MSELoss"}, "loss MSELoss does not fit the classification task"),
        ({"type": "BCEWithLogitsLoss"}, "loss BCEWithLogitsLoss does not fit the classification"),
        ({"type": "Linear"}, "loss 'Linear' is not a darklib.nn loss"),
        ({"type": "CrossEntropyLoss", "args": {"smoothing": 0.1}}, "loss CrossEntropyLoss: bad"),
    ],
)
def test_a_loss_that_does_not_fit_the_task_is_refused_before_the_run(
    win, qtbot, tmp_path, loss, needle
):
    _open_small(win, str(_project_with_loss(tmp_path, loss)))
    win.c.data()  # the data is loaded: only the loss can stop the start
    win.training_panel.start()
    assert win.c.state == "idle" and win.c.trainer is None
    assert needle in win.training_panel.status.text()
    assert needle in win.training_panel.log.toPlainText()
    assert "classification" in needle or "CrossEntropy" in needle or "Linear" in needle


def test_cli_train_refuses_a_loss_that_does_not_fit(tmp_path, capsys):
    from studio import cli

    path = _project_with_loss(tmp_path, {"type": "MSELoss"})
    assert cli.main(["train", str(path), "--epochs", "1", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "MSELoss does not fit the classification task" in err and "CrossEntropyLoss" in err
    assert not (tmp_path / "loss.trained.darkproj").exists()


# --------------------------------------------------------------------------- 3. evaluation errors


def _train_briefly(win, qtbot, path=SAMPLES[0]):
    _open_small(win, path, steps=3)
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=30000)
    assert win.c.has_trained_weights


def test_an_evaluation_failure_is_shown_in_the_outputs_panel(win, qtbot):
    _train_briefly(win, qtbot)
    win.show_panel("Outputs")
    op = win.outputs_panel
    assert op.error.isHidden()
    s = win.c.ensure_session()

    def broken(*a):
        raise RuntimeError("synthetic inference failure")

    s.task.eval_step = broken
    assert op.eval_btn.isEnabled()
    qtbot.mouseClick(op.eval_btn, Qt.LeftButton)
    _wait_state(qtbot, win, "idle", timeout=20000)
    qtbot.waitUntil(lambda: not op.error.isHidden(), timeout=5000)
    assert "Evaluation failed: RuntimeError: synthetic inference failure" in op.error.text()
    msg = win.statusBar().currentMessage()
    assert msg.startswith("evaluation failed:") and "synthetic inference failure" in msg
    assert "training stopped" not in msg
    # the next evaluation that works clears it
    del s.task.eval_step
    qtbot.mouseClick(op.eval_btn, Qt.LeftButton)
    _wait_state(qtbot, win, "idle", timeout=20000)
    assert op.error.isHidden() and op.prev


def test_an_automatic_evaluation_failure_replaces_the_waiting_text(win, qtbot, tmp_path):
    _train_briefly(win, qtbot)
    assert win._save_to(tmp_path / "t.darkproj")
    win.c.dirty = False
    assert win.open_path(str(tmp_path / "t.darkproj"))
    from studio.tasks.classification import ClassificationTask

    def broken(self, *a):
        raise ValueError("cannot predict this")

    real = ClassificationTask.eval_step
    ClassificationTask.eval_step = broken
    try:
        win.show_panel("Outputs")  # an opened trained project is evaluated on sight
        _wait_state(qtbot, win, "evaluating", timeout=5000)
        _wait_state(qtbot, win, "idle", timeout=20000)
    finally:
        ClassificationTask.eval_step = real
    op = win.outputs_panel
    assert "ValueError: cannot predict this" in op.error.text() and not op.error.isHidden()
    assert op.empty.text().startswith("Evaluation failed: ValueError: cannot predict this")


def test_a_validation_failure_during_training_is_shown_in_the_outputs_panel(win, qtbot):
    _open_small(win, SAMPLES[0], steps=3)
    s = win.c.ensure_session()

    def broken(*a):
        raise RuntimeError("validation broke")

    s.task.eval_step = broken
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=30000)
    op = win.outputs_panel
    assert "Validation at the end of the epoch failed" in op.error.text()
    assert "validation broke" in op.error.text()
    assert "error in validation" in win.statusBar().currentMessage()


# --------------------------------------------------------------------------- 5. train/test folders

CIFAR_CLASSES = CIFAR10.classes


def _image_tree(root, classes, n, size=(12, 12), grey=False):
    """``root/<class>/<i>.png`` with ``n`` images per class, one bright row per class."""
    import cv2

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((*size, 3), 20 + i, np.uint8)
            img[k % size[0], :, :] = 230
            cv2.imwrite(str(root / name / f"{i}.png"), img[..., 0] if grey else img)


def _cifar_split_folder(dest, per_class=4):
    """A small cifar10-jpg tree (train/<class>, test/<class>) cut from the shared archive:
    ``per_class`` real JPEGs per class and split (skipped where the archive is absent)."""
    import tarfile
    from pathlib import Path

    archive = Path(__file__).resolve().parents[1].parent / "shared/datasets/cifar10-jpg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent")
    counts: dict = {}
    with tarfile.open(archive) as tf:
        for m in tf:
            parts = Path(m.name).parts
            if not m.isfile() or len(parts) != 4 or parts[1] not in ("train", "test"):
                continue
            key = parts[1:3]
            if counts.get(key, 0) >= per_class:
                if len(counts) == 20 and all(v >= per_class for v in counts.values()):
                    break
                continue
            counts[key] = counts.get(key, 0) + 1
            out = dest.joinpath(*parts[1:])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tf.extractfile(m).read())
    return dest


def test_split_folder_uses_train_for_training_and_test_for_validation(tmp_path):
    from studio.data import load_data, split_folders
    from studio.project import DatasetSpec

    root = tmp_path / "data"
    _image_tree(root / "train", ["cat", "dog", "owl"], 5)
    _image_tree(root / "test", ["dog", "owl"], 2)  # a held-out split may lack a class
    (root / "__MACOSX").mkdir()  # an unzipping leftover is no class
    assert split_folders(root) == (root / "train", root / "test")
    d = load_data(DatasetSpec(source="folder", path=str(root), val_fraction=0.5), [3, 12, 12])
    assert d.classes == ["cat", "dog", "owl"] and len(d) == 19
    assert d.train_indices.tolist() == list(range(15))
    assert d.val_indices.tolist() == list(range(15, 19))
    assert all("/train/" in d.file(int(i)) for i in d.train_indices)
    assert all("/test/" in d.file(int(i)) for i in d.val_indices)
    # held-out labels follow the class names, not the held-out folder's own order
    assert [d.classes[d.labels[i]] for i in d.val_indices] == ["dog", "dog", "owl", "owl"]
    x, y = d.val_dataset()[3]
    assert x.shape == (3, 12, 12) and d.classes[y] == "owl"
    assert d.split_note == "train/ for training, test/ for validation"
    # val/ is preferred to test/ as the validation split
    _image_tree(root / "val", ["cat"], 3)
    d = load_data(DatasetSpec(source="folder", path=str(root)), [3, 12, 12])
    assert len(d.val_indices) == 3 and d.split_note.endswith("val/ for validation")


def test_split_folder_with_an_unknown_held_out_class_is_named(tmp_path):
    from studio.data import DataError, load_data
    from studio.project import DatasetSpec

    root = tmp_path / "data"
    _image_tree(root / "train", ["cat", "dog"], 2)
    _image_tree(root / "test", ["cat", "emu"], 1)
    with pytest.raises(DataError, match=r"test: the classes emu are not in the training"):
        load_data(DatasetSpec(source="folder", path=str(root)), [3, 12, 12])


def test_classes_called_train_and_test_that_hold_images_stay_classes(tmp_path):
    from studio.data import load_data, split_folders
    from studio.project import DatasetSpec

    root = tmp_path / "data"
    _image_tree(root, ["train", "test"], 3)
    assert split_folders(root) is None
    d = load_data(DatasetSpec(source="folder", path=str(root)), [3, 12, 12])
    assert d.classes == ["test", "train"] and len(d) == 6 and d.split_note == ""
    # train/<class> alone: its classes, the validation split cut from it
    only = tmp_path / "only"
    _image_tree(only / "train", ["a", "b"], 5)
    d = load_data(DatasetSpec(source="folder", path=str(only), val_fraction=0.2), [3, 12, 12])
    assert d.classes == ["a", "b"] and len(d.val_indices) == 2
    assert d.split_note.startswith("train/ only")


def test_dropped_cifar10_jpg_folder_trains_on_its_ten_classes(win, qtbot, tmp_path):
    root = _cifar_split_folder(tmp_path / "cifar10-jpg")
    _open_small(win, SAMPLES[1])
    win.handle_drop(str(root))
    assert win.c.spec.dataset.source == "folder", win.errors
    d = win.c.data()
    assert d.classes == CIFAR_CLASSES
    assert len(d.train_indices) == 40 and len(d.val_indices) == 40
    assert all("/train/" in d.file(int(i)) for i in d.train_indices)
    qtbot.waitUntil(lambda: win.dataset_panel.pager.total == 80, timeout=10000)
    head = win.dataset_panel.head.sub_label.text()
    assert "10 classes" in head and "train/ for training, test/ for validation" in head
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=60000)
    assert "finished (completed)" in win.training_panel.log.toPlainText()
    assert win.c.previews["classes"] == CIFAR_CLASSES


# --------------------------------------------------------------------------- 6. corrupt images


def _folder_with_a_corrupt_image(root):
    _image_tree(root, ["cats", "dogs"], 8, size=(32, 32))
    bad = root / "dogs" / "3_broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return bad


def test_a_corrupt_image_is_skipped_and_named_in_the_gui(win, qtbot, tmp_path):
    bad = _folder_with_a_corrupt_image(tmp_path / "imgs")
    _open_small(win, SAMPLES[1], steps=100)
    win.handle_drop(str(tmp_path / "imgs"))
    dp = win.dataset_panel
    assert win.c.spec.dataset.on_error == "skip" and dp.skip.isChecked() and dp.skip.isEnabled()
    s = win.c.spec
    s.training.batch_size, s.training.max_val_batches = 4, None
    s.dataset.val_fraction = 0.3
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=60000)
    log = win.training_panel.log.toPlainText()
    assert "finished (completed)" in log, log
    assert "left out an unreadable image (1 so far; the run goes on)" in log
    assert str(bad) in log and "cannot decode" in log
    assert [f for f, _ in win.c.data().skipped] == [str(bad)]
    assert len(win.c.history.epochs["epoch"]) == 1


def test_unticking_skip_unreadable_stops_at_the_corrupt_image_and_names_it(win, qtbot, tmp_path):
    bad = _folder_with_a_corrupt_image(tmp_path / "imgs")
    _open_small(win, SAMPLES[1], steps=100)
    win.handle_drop(str(tmp_path / "imgs"))
    win.show_panel("Dataset")
    dp = win.dataset_panel
    dp.skip.click()  # off: the first unreadable image stops the run
    assert win.c.spec.dataset.on_error == "raise" and not dp.skip.isChecked()
    win.c.spec.training.batch_size = 4
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=60000)
    status = win.training_panel.status.text()
    assert status.startswith("ended with an error") or "stopped by an error" in status
    log = win.training_panel.log.toPlainText()
    assert f"ERROR {bad}: cannot decode" in log and "Skip unreadable images" in log
    assert "finished (error)" in log


# --------------------------------------------------------------------------- 7. partial validation


def test_partial_validation_is_a_fixed_sample_of_every_class(tmp_path):
    pytest.importorskip("darklib.nn")
    from studio.project import Project, spec_from_dict
    from studio.trainer import Session, Trainer

    root = tmp_path / "sorted"
    classes = [f"c{k}" for k in range(10)]
    _image_tree(root, classes, 6, size=(10, 10), grey=True)
    spec = {
        "dataset": {"source": "folder", "path": str(root), "val_fraction": 0.5},
        "model": {
            "input_shape": [1, 10, 10],
            "layers": [
                {"name": "flat", "type": "Flatten"},
                {"name": "head", "type": "Linear", "args": {"out_features": 10}},
            ],
        },
        "training": {"epochs": 1, "batch_size": 10, "max_val_batches": 1},
    }
    s = Session(Project(spec=spec_from_dict(spec)))
    d = s.data
    assert len(d.val_indices) == 30 and (np.diff(d.labels[d.val_indices]) >= 0).all()
    seen = []
    for _ in range(2):
        tr = Trainer(s, max_steps_per_epoch=1)
        tr.run()
        evs = []
        while not tr.events.empty():
            evs.append(tr.events.get())
        assert tr.finished_reason == "completed", [e.data for e in evs if e.kind == "error"]
        prev = next(e.data for e in evs if e.kind == "previews")
        # ten images, one of each class (the first batch of the sorted split held 3-4 classes)
        assert sorted(prev["true"].tolist()) == list(range(10))
        np.testing.assert_array_equal(d.labels[prev["index"]], prev["true"])
        assert set(prev["index"].tolist()) <= set(d.val_indices.tolist())
        seen.append(prev["index"].tolist())
        s.spec.training.epochs += 1
    assert seen[0] == seen[1]  # the same sample every epoch: comparable validation curves


def test_val_positions_take_the_classes_in_turn():
    from studio.data import ImageData
    from studio.project import DatasetSpec

    labels = np.repeat(np.arange(4), 25)  # sorted by class, as a folder is
    images = np.zeros((100, 2, 2, 1), np.uint8)
    d = ImageData(labels, list("abcd"), [1, 2, 2], DatasetSpec(), images=images)
    vl = d.labels[d.val_indices]
    pos = d.val_positions(8)
    assert len(pos) == 8 and np.bincount(vl[pos], minlength=4).tolist() == [2, 2, 2, 2]
    np.testing.assert_array_equal(pos, d.val_positions(8))
    assert d.val_positions(1000).tolist() == list(range(len(d.val_indices)))


def test_cli_info_piped_into_a_reader_that_stops_early_exits_quietly():
    """`python main.py info P | head -1`: no BrokenPipeError traceback."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, str(root / "main.py"), "info", str(root / SAMPLES[0])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=root,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away after one line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.strip()
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_folder_holding_only_a_held_out_split_uses_its_classes(tmp_path):
    """(root/test/<class>/... alone, as a download cut short leaves it: the classes are
    inside test/, not one class called "test")"""
    from studio.data import load_data, split_folders
    from studio.project import DatasetSpec

    root = tmp_path / "data"
    _image_tree(root / "test", ["a", "b", "c"], 4)
    assert split_folders(root) == (root / "test", None)
    d = load_data(DatasetSpec(source="folder", path=str(root), val_fraction=0.25), [3, 12, 12])
    assert d.classes == ["a", "b", "c"] and len(d) == 12 and len(d.val_indices) == 3
    assert d.split_note.startswith("test/ only")
