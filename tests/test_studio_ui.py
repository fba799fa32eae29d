"""The studio window, offscreen with pytest-qt: samples, panels, a short live training run,
pause/resume/stop, save and reopen, and each fault's handling."""

import json
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings, Qt, QTimer

import darklib as dl
from studio import data as sdata
from studio.project import load_project

SAMPLES = ["projects/glyphs_mlp.json", "projects/objects_cnn.json"]


def _fake_procedural(name, size, seed):
    """Stand-in while darklib.vision's procedural generators are missing."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size)
    hw, c = (28, 1) if name == "glyphs28" else (32, 3)
    images = rng.integers(0, 60, (size, hw, hw, c)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 2 * y : 2 * y + 3, :, :] = 230
    return images, labels, [f"class{k}" for k in range(10)]


@pytest.fixture
def procedural(monkeypatch):
    try:
        sdata.procedural_arrays("glyphs28", 10, 0)
    except Exception:
        monkeypatch.setattr(sdata, "procedural_arrays", _fake_procedural)


@pytest.fixture
def win(qtbot, tmp_path, procedural, monkeypatch):
    pytest.importorskip("darklib.nn")
    # checkpoints of .json projects go to the data folder: the test's own, not the user's
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    from studio.ui import theme
    from studio.ui.mainwindow import MainWindow

    theme.apply(qtbot_app())
    w = MainWindow(quiet=True)
    w.c.settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w.ask = True
    qtbot.addWidget(w)
    w.show()
    yield w
    w.c.stop(wait=10)


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


def _open_small(w, path, size=240, steps=4, epochs=1):
    assert w.open_path(path), w.errors
    s = w.c.spec
    s.dataset.size = size
    s.training.epochs = epochs
    s.training.batch_size = 16
    s.training.num_workers = 0
    s.training.max_steps_per_epoch = steps
    s.training.max_val_batches = 2
    w.c.mark_changed("dataset")
    w.training_panel.load_project()


def _wait_state(qtbot, w, state, timeout=20000):
    qtbot.waitUntil(lambda: w.c.state == state, timeout=timeout)


@pytest.mark.parametrize("path", SAMPLES)
def test_open_sample_and_visit_every_panel(win, qtbot, path):
    _open_small(win, path)
    spec = win.c.spec
    for k in range(5):
        win.nav.setCurrentRow(k)
        qtbot.wait(10)
    assert win.model_panel.table.rowCount() == len(spec.model.layers)
    assert win.model_panel.t_status.value.text().endswith("valid")
    win.show_panel("Dataset")
    qtbot.waitUntil(lambda: win.dataset_panel.grid.model().rowCount() > 0, timeout=5000)
    assert win.dataset_panel.pager.total == 240
    assert win.errors == []


def test_train_pause_resume_stop_save_reopen(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[0], size=600, steps=12, epochs=2)
    tp = win.training_panel
    win.show_panel("Training")
    # slow each step a little so that pause/stop land mid-run
    task_step = None

    def slow(*a):
        time.sleep(0.03)
        return task_step(*a)

    win.c.ensure_session()
    task_step = win.c.session.task.train_step
    win.c.session.task.train_step = slow
    qtbot.mouseClick(tp.start_btn, Qt.LeftButton)
    _wait_state(qtbot, win, "running")
    qtbot.waitUntil(lambda: tp.s_loss.n >= 2, timeout=10000)
    qtbot.mouseClick(tp.pause_btn, Qt.LeftButton)
    _wait_state(qtbot, win, "paused")
    n_paused = win.c.session.position["step"]
    qtbot.wait(200)
    assert win.c.session.position["step"] == n_paused
    qtbot.mouseClick(tp.pause_btn, Qt.LeftButton)  # resume
    _wait_state(qtbot, win, "running")
    qtbot.waitUntil(lambda: win.c.session.position["step"] > n_paused, timeout=10000)
    # saving while training writes a consistent snapshot
    assert win._save_to(tmp_path / "live.darkproj")
    live = load_project(tmp_path / "live.darkproj")
    assert len(live.history["steps"]["step"]) == live.position["step"]
    qtbot.mouseClick(tp.stop_btn, Qt.LeftButton)
    _wait_state(qtbot, win, "idle")
    stopped_at = win.c.session.position["step"]
    assert stopped_at < 24
    qtbot.waitUntil(lambda: "finished (stopped)" in tp.log.toPlainText(), timeout=5000)
    # a stopped run shows no stale speed or time left
    assert not any(ch.isdigit() for ch in tp.tiles["ETA"].value.text())
    assert tp.tiles["images/s"].value.text() == "--"
    # Start continues from the same step with the optimizer state
    qtbot.mouseClick(tp.start_btn, Qt.LeftButton)
    _wait_state(qtbot, win, "idle", timeout=30000)
    assert win.c.session.position == {"epoch": 2, "batch": 0, "step": 24, "samples": 0}
    assert tp.s_loss.n == 24 and tp.s_vacc.n == 2
    assert "finished (completed)" in tp.log.toPlainText()
    # outputs: confusion matrix and grid, a cell click filters
    win.show_panel("Outputs")
    op = win.outputs_panel
    assert op.cm.rowCount() == 10
    assert op.grid.model().rowCount() == 32
    cm = op.prev["confusion"]
    i, j = np.unravel_index(np.argmax(cm), cm.shape)
    op.filter_cell(int(i), int(j))
    assert op.grid.model().rowCount() == cm[i, j]
    # save, reopen, compare weights and history
    assert win._save_to(tmp_path / "p.darkproj")
    snap = win.c.session.snapshot()
    back = load_project(tmp_path / "p.darkproj")
    assert back.position["step"] == 24
    for k, v in snap.model_state.items():
        np.testing.assert_array_equal(back.model_state[k], v)
    assert back.history["steps"]["loss"] == snap.history["steps"]["loss"]
    assert back.thumbnail and back.thumbnail[:4] == b"\x89PNG"
    win.c.dirty = False
    assert win.open_path(str(tmp_path / "p.darkproj"))
    assert win.training_panel.s_loss.n == 24
    assert str(tmp_path / "p.darkproj") in win.c.recent()


def test_bad_project_files_show_an_error_and_keep_the_open_project(win, tmp_path):
    _open_small(win, SAMPLES[0])
    before = win.c.project
    bad_zip = tmp_path / "a.darkproj"
    bad_zip.write_bytes(b"not a zip")
    bad_json = tmp_path / "b.json"
    bad_json.write_text("{oops")
    bad_layer = tmp_path / "c.darkproj"
    spec = json.loads(open(SAMPLES[0]).read())
    spec["model"]["layers"][1]["type"] = "Dense"
    with zipfile.ZipFile(bad_layer, "w") as z:
        z.writestr("project.json", json.dumps(spec))
    win.c.dirty = False
    for p, needle in [
        (bad_zip, "not a valid .darkproj"),
        (bad_json, "bad JSON"),
        (bad_layer, "unknown layer type 'Dense'"),
    ]:
        data = p.read_bytes()
        assert not win.open_path(str(p))
        assert needle in win.errors[-1] and str(p) in win.errors[-1]
        assert p.read_bytes() == data
        assert win.c.project is before


def test_invalid_model_marks_the_row(win, qtbot):
    _open_small(win, SAMPLES[0])
    mp = win.model_panel
    win.show_panel("Model")
    row = [ls.name for ls in win.c.spec.model.layers].index("fc2")
    mp.table.item(row, 2).setText("in_features=999, out_features=128")
    assert "expects 999 input features, got 256" in mp.table.item(row, 4).text()
    assert mp.t_status.value.text().endswith("invalid")
    assert "fc2" in mp.error.text()
    mp.table.item(row, 2).setText("out_features=64")
    assert mp.table.item(row, 4).text() == "(N, 64)"
    n = mp.table.rowCount()
    mp.table.selectRow(0)
    mp.add_layer("ReLU")
    assert mp.table.rowCount() == n + 1 and win.c.spec.model.layers[1].type == "ReLU"
    mp.move_layer(1)
    assert win.c.spec.model.layers[2].type == "ReLU"
    mp.remove_layer()
    assert mp.table.rowCount() == n and mp.t_status.value.text().endswith("valid")


def test_augmentation_preview_rerolls(win, qtbot):
    _open_small(win, SAMPLES[1])
    win.show_panel("Dataset")
    dp = win.dataset_panel
    qtbot.waitUntil(lambda: dp.grid.model().rowCount() > 0, timeout=5000)
    assert dp.tfm.rowCount() == 2
    first = [lab.pixmap().toImage() for lab in dp.aug_labels[1:]]
    dp._reroll()
    second = [lab.pixmap().toImage() for lab in dp.aug_labels[1:]]
    assert any(a != b for a, b in zip(first, second))
    dp.tfm.item(1, 1).setText("size=32, padding=oops")
    assert dp.t_error.text()  # a bad argument is named, the spec is unchanged
    assert win.c.spec.dataset.transforms[1].args == {"size": 32, "padding": 2}


def test_exception_in_training_is_logged_and_run_stops(win, qtbot):
    _open_small(win, SAMPLES[0], steps=6)
    s = win.c.ensure_session()
    real = s.task.train_step
    calls = {"n": 0}

    def broken(*a):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("synthetic failure")
        return real(*a)

    s.task.train_step = broken
    win.training_panel.start()
    _wait_state(qtbot, win, "idle", timeout=20000)
    log = win.training_panel.log.toPlainText()
    assert "ValueError: synthetic failure" in log and "Traceback" in log
    assert "finished (error)" in log
    assert s.position["step"] == 2 and len(win.c.history) == 2
    assert win.training_panel.start_btn.isEnabled()
    # the line under the progress bar says how the run ended, not "idle"
    status = win.training_panel.status.text()
    assert status.startswith("ended with an error") and "synthetic failure" in status


def test_nan_loss_pauses_with_a_message(win, qtbot):
    _open_small(win, SAMPLES[0], steps=6)
    s = win.c.ensure_session()
    real = s.task.train_step

    def nan(*a):
        loss, st = real(*a)
        return loss * float("nan"), st

    s.task.train_step = nan
    win.training_panel.start()
    _wait_state(qtbot, win, "paused")
    qtbot.waitUntil(lambda: "loss is nan" in win.training_panel.status.text(), timeout=5000)
    win.c.stop(wait=10)
    _wait_state(qtbot, win, "idle")


def test_close_during_training_asks_then_stops(win, qtbot):
    _open_small(win, SAMPLES[0], size=2000, steps=100, epochs=3)
    s = win.c.ensure_session()
    real = s.task.train_step

    def slow(*a):
        time.sleep(0.02)
        return real(*a)

    s.task.train_step = slow
    win.training_panel.start()
    qtbot.waitUntil(lambda: win.c.session.position["step"] > 1, timeout=10000)
    win.ask = False
    assert not win.close()
    assert win.c.is_training
    win.ask = True
    assert win.close()
    assert not win.c.is_training and win.c.trainer.finished_reason == "stopped"


def test_drop_folder_becomes_the_dataset(win, qtbot, tmp_path):
    import cv2

    for k, name in enumerate(["cats", "dogs"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(5):
            img = np.full((20, 24, 3), 40 * k + i, np.uint8)
            cv2.imwrite(str(tmp_path / "imgs" / name / f"{i}.png"), img)
    _open_small(win, SAMPLES[1])
    win.handle_drop(str(tmp_path / "imgs"))
    assert win.c.spec.dataset.source == "folder"
    qtbot.waitUntil(lambda: win.dataset_panel.pager.total == 10, timeout=5000)
    assert win.c.data().classes == ["cats", "dogs"]
    assert win.c.data().image(0).shape == (32, 32, 3)


def test_live_plot_repaints_for_seconds(qtbot):
    """Guards against PySide6 6.12.0 + pyqtgraph ("none_dealloc" abort in AxisItem)."""
    import pyqtgraph as pg

    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.show()
    curve = w.plot(pen="y")
    x = np.arange(2000, dtype=np.float64)
    y = np.zeros(2000)
    state = {"n": 0}

    def tick():
        n = state["n"] = min(state["n"] + 7, 2000)
        y[:n] = np.sin(x[:n] / 50.0 + n)
        curve.setData(x[:n], y[:n])
        w.repaint()

    t = QTimer()
    t.timeout.connect(tick)
    t.start(10)
    qtbot.wait(3000)
    t.stop()
    assert state["n"] > 100


def test_data_loads_off_the_gui_thread(win, qtbot, monkeypatch):
    """Generating or reading the images never blocks the window: the panel says it is
    preparing them, training starts at once and its thread waits for the data."""
    import threading

    from studio.ui import controller as ctl

    real, threads = ctl.load_data, []

    def slow(spec, shape):
        threads.append(threading.current_thread())
        time.sleep(0.4)
        return real(spec, shape)

    monkeypatch.setattr(ctl, "load_data", slow)
    _open_small(win, SAMPLES[0], steps=2)
    t0 = time.perf_counter()
    win.show_panel("Dataset")
    win.training_panel.start()
    assert time.perf_counter() - t0 < 0.3
    assert "Preparing the images" in win.dataset_panel.head.sub_label.text()
    _wait_state(qtbot, win, "idle")
    assert "finished (completed)" in win.training_panel.log.toPlainText()
    qtbot.waitUntil(lambda: win.dataset_panel.pager.total == 240, timeout=5000)
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_plots_keep_their_ranges_between_redraws(win, qtbot):
    """Fixed ranges (epochs across, a round loss top) spare the axes a re-layout per frame."""
    _open_small(win, SAMPLES[0], size=600, steps=12, epochs=2)
    tp = win.training_panel
    win.show_panel("Training")
    tp.start()
    _wait_state(qtbot, win, "idle", timeout=30000)
    (x0, x1), (y0, y1) = tp.loss_plot.getViewBox().viewRange()
    assert x0 < 0 < 2 < x1 < 2.2 and y0 < 0 and y1 >= max(tp.s_loss.y[: tp.s_loss.n])
    assert tp.s_loss_s.n == tp.s_loss.n == 24


def _image_folder(root, classes, n=5):
    import cv2

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = np.full((20, 24, 3), 40 * k + i, np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), img)
    return root


def test_train_more_epochs_with_one_cycle(win, qtbot):
    _open_small(win, SAMPLES[0], steps=4, epochs=1)
    assert win.c.spec.schedule.type == "OneCycleLR"
    tp = win.training_panel
    tp.start()
    qtbot.waitUntil(lambda: "finished (completed)" in tp.log.toPlainText(), timeout=20000)
    _wait_state(qtbot, win, "idle")
    tp.epochs.setValue(2)
    tp.start()
    qtbot.waitUntil(lambda: tp.log.toPlainText().count("finished (") == 2, timeout=20000)
    _wait_state(qtbot, win, "idle")
    log = tp.log.toPlainText()
    assert "ERROR" not in log and log.count("finished (completed)") == 2
    assert win.c.session.position["epoch"] == 2 and win.c.session.position["step"] == 8
    assert tp.status.text() == "idle"


def test_dropped_folder_sets_the_class_count_of_an_untrained_model(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[1])
    assert not win.c.has_trained_weights
    win.handle_drop(str(_image_folder(tmp_path / "imgs", ["cats", "dogs"])))
    head = win.c.spec.model.layers[-1]
    assert head.name == "head" and head.args["out_features"] == 2
    assert "now gives 2 class scores (was 10)" in win.training_panel.log.toPlainText()
    qtbot.waitUntil(lambda: win.c.data_now() is not None, timeout=5000)
    win.model_panel.refresh()
    assert win.model_panel.t_status.value.text() == "✓ valid"


def test_class_mismatch_of_a_trained_model_is_shown_before_start(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[1], steps=1)
    s = win.c.spec
    win.c.project.model_state = {"trained": np.zeros(1)}  # stands for trained weights
    win.handle_drop(str(_image_folder(tmp_path / "imgs", ["a", "b", "c"])))
    assert s.model.layers[-1].args["out_features"] == 10  # trained weights are not dropped
    qtbot.waitUntil(lambda: win.c.data_now() is not None, timeout=5000)
    mp = win.model_panel
    qtbot.waitUntil(lambda: mp.t_status.value.text() == "✗ classes", timeout=5000)
    assert "'head' gives 10 class scores" in mp.error.text()
    assert "has 3 classes" in mp.error.text()
    tp = win.training_panel
    tp.start()
    assert win.c.state == "idle" and not win.c.is_training
    assert "cannot start: the model's output layer 'head' gives 10" in tp.log.toPlainText()


def test_rate_boxes_keep_the_project_values(win, tmp_path):
    d = json.loads(open(SAMPLES[1]).read())
    d["optimizer"] = {"type": "SGD", "lr": 2e-6, "args": {"momentum": 0.9, "weight_decay": 5e-6}}
    path = tmp_path / "lowlr.json"
    path.write_text(json.dumps(d))
    assert win.open_path(str(path)), win.errors
    tp = win.training_panel
    assert tp.lr.text() == "2e-06" and tp.wd.text() == "5e-06"
    tp.epochs.setValue(7)  # another box: the rates stay as they are
    tp.momentum.setValue(0.8)
    o = win.c.spec.optimizer
    assert o.lr == 2e-6 and o.args == {"momentum": 0.8, "weight_decay": 5e-6}
    tp.lr.lineEdit().setText("2.5e-5")  # typed in scientific notation: kept exactly
    tp.lr.interpretText()
    tp.wd.setValue(0.0)
    assert o.lr == 2.5e-5 and o.args["weight_decay"] == 0.0
    win._save_to(tmp_path / "saved.darkproj")
    back = load_project(tmp_path / "saved.darkproj").spec.optimizer
    assert back.lr == 2.5e-5 and back.args == {"momentum": 0.8, "weight_decay": 0.0}


def test_without_a_project_edit_controls_are_off(win, qtbot):
    assert win.c.project is None
    mp, dp, tp = win.model_panel, win.dataset_panel, win.training_panel
    assert not any(b.isEnabled() for b in mp.buttons)
    assert not any(b.isEnabled() for b in dp.t_buttons)
    assert not tp.start_btn.isEnabled()
    mp.add_layer("ReLU")  # shortcuts reach the slots: they do nothing and raise nothing
    mp.move_layer(1)
    dp._t_add()
    dp._t_move(1)
    win.start_act.trigger()
    assert win.c.project is None and not win.c.is_training
    assert "cannot start: no project is open" in tp.log.toPlainText()
    assert "AssertionError" not in tp.log.toPlainText()
    assert win.open_path(SAMPLES[0]), win.errors
    assert all(b.isEnabled() for b in mp.buttons) and tp.start_btn.isEnabled()
    assert all(b.isEnabled() for b in dp.t_buttons)


def _trained(win, qtbot, steps=3):
    _open_small(win, SAMPLES[0], steps=steps)
    win.training_panel.start()
    _wait_state(qtbot, win, "idle")
    assert win.c.session.position["step"] == steps
    return {k: np.array(v.array) for k, v in win.c.session.model.state_dict().items()}


def test_model_edits_that_keep_the_shapes_keep_the_weights(win, qtbot):
    weights = _trained(win, qtbot)
    mp, tp = win.model_panel, win.training_panel
    win.show_panel("Model")
    mp.table.selectRow(2)  # relu1: down then up again, and the network is as it was
    mp.move_layer(1)
    mp.move_layer(-1)
    row = [ls.name for ls in win.c.spec.model.layers].index("fc1")
    mp.table.item(row, 0).setText("dense")  # a rename
    mp.table.item(row + 2, 2).setText("p=0.3")  # dropout's p holds no tensor
    win.ask = False  # any question would be answered No: none may be asked
    assert [ls.name for ls in win.c.spec.model.layers][row] == "dense"
    assert win.c.spec.model.layers[row + 2].args == {"p": 0.3}
    p = win.c.project
    assert p.position["step"] == 3 and len(win.c.history) == 3 and p.optim_meta is not None
    np.testing.assert_array_equal(p.model_state["dense.weight"], weights["fc1.weight"])
    assert "fc1.weight" not in p.model_state
    assert tp.s_loss.n == 3 and "3" in tp.tiles["step"].value.text()
    s = win.c.ensure_session()  # the renamed weights load into the edited model
    np.testing.assert_array_equal(np.array(s.model.dense.weight.array), weights["fc1.weight"])


def test_model_edit_that_drops_weights_asks_and_can_be_undone(win, qtbot):
    weights = _trained(win, qtbot)
    mp, tp, op = win.model_panel, win.training_panel, win.outputs_panel
    win.show_panel("Outputs")
    assert op.prev  # the run's predictions are shown
    win.show_panel("Model")
    head = len(win.c.spec.model.layers) - 1
    win.ask = False  # "Drop the trained weights?" -> No: nothing changes
    mp.table.item(head, 2).setText("out_features=12")
    assert win.c.spec.model.layers[head].args == {"out_features": 10}
    assert mp.table.item(head, 2).text() == "out_features=10"
    assert win.c.has_trained_weights and len(win.c.history) == 3
    win.ask = True  # Yes: the weights, optimizer state and history go, the views reset
    mp.table.item(head, 2).setText("out_features=12")
    p = win.c.project
    assert win.c.spec.model.layers[head].args == {"out_features": 12}
    assert not p.model_state and p.position["step"] == 0 and len(win.c.history) == 0
    assert tp.s_loss.n == 0 and tp.s_vacc.n == 0 and tp.progress.value() == 0
    assert tp.tiles["val acc"].value.text() == "--" and tp.tiles["step"].value.text() == "0"
    assert not op.prev and op.grid.model().rowCount() == 0
    assert "Ctrl+Z" in tp.log.toPlainText()
    assert mp.undo_btn.isEnabled() and win.undo_act.isEnabled()
    win.undo_act.trigger()  # Edit > Undo (Ctrl+Z): the model, its weights and history
    p = win.c.project
    assert win.c.spec.model.layers[head].args == {"out_features": 10}
    assert p.position["step"] == 3 and len(win.c.history) == 3 and p.optim_meta is not None
    for k, v in weights.items():
        np.testing.assert_array_equal(p.model_state[k], v)
    assert tp.s_loss.n == 3 and op.prev
    assert not mp.undo_btn.isEnabled()
    # a fresh run after a confirmed drop starts its curves from scratch
    fc2 = [ls.name for ls in win.c.spec.model.layers].index("fc2")
    mp.table.item(fc2, 2).setText("out_features=64")
    assert not win.c.has_trained_weights
    tp.start()
    _wait_state(qtbot, win, "idle")
    xs = tp.s_loss.x[: tp.s_loss.n]
    assert tp.s_loss.n == 3 and np.all(np.diff(xs) > 0)


def test_diverged_run_rolls_back_to_the_last_checkpoint_and_undo_returns(win, qtbot, tmp_path):
    tp = win.training_panel
    win.show_panel("Training")
    _open_small(win, SAMPLES[0], steps=3, epochs=2)
    assert win.c.checkpoint_path().is_relative_to(tmp_path)  # not the user's data folder
    win.rollback_act.trigger()  # nothing to roll back to yet: said, nothing changes
    assert "cannot roll back: there is no checkpoint yet" in tp.log.toPlainText()
    win.c.spec.training.epochs = 1
    tp.start()  # epoch 1 ends with a checkpoint
    _wait_state(qtbot, win, "idle")
    good = {k: np.array(v.array) for k, v in win.c.session.model.state_dict().items()}
    assert win.c.checkpoint_path().is_file()
    # epoch 2 diverges: its weights blow up (finite), then every loss is NaN
    win.c.spec.training.epochs = 2
    s = win.c.session
    real = s.task.train_step
    calls = []

    def diverge(model, *a):
        calls.append(1)
        if len(calls) == 2:
            with dl.no_grad():
                for p in model.parameters():
                    p.mul_(1e30)
        loss, st = real(model, *a)
        return (loss * float("nan"), st) if len(calls) >= 2 else (loss, st)

    s.task.train_step = diverge
    tp.start()
    _wait_state(qtbot, win, "paused")
    assert "roll back" in tp.log.toPlainText()
    win.c.stop(wait=10)
    _wait_state(qtbot, win, "idle")
    bad_step = win.c.session.position["step"]
    assert bad_step == 4 and len(win.c.history) == 4
    win.rollback_act.trigger()
    p = win.c.project
    assert p.position["epoch"] == 1 and p.position["step"] == 3 and len(win.c.history) == 3
    for k, v in good.items():
        np.testing.assert_array_equal(p.model_state[k], v)
    assert tp.s_loss.n == 3 and "rolled back to the checkpoint after epoch 1" in (
        tp.log.toPlainText()
    )
    assert win.c.dirty and win.undo_act.isEnabled()
    fresh = win.c.ensure_session()  # the restored weights train on
    np.testing.assert_array_equal(np.array(fresh.model.fc1.weight.array), good["fc1.weight"])
    win.undo_act.trigger()  # Ctrl+Z: back to the diverged state
    assert win.c.project.position["step"] == bad_step and len(win.c.history) == 4
    assert not np.array_equal(win.c.project.model_state["fc1.weight"], good["fc1.weight"])
    assert "undid the rollback" in tp.log.toPlainText()
    # after a model edit the checkpoint holds another model: refused
    head = len(win.c.spec.model.layers) - 1
    win.ask = True
    win.show_panel("Model")
    win.model_panel.table.item(head, 2).setText("out_features=12")
    win.rollback_act.trigger()
    assert "the checkpoint holds another model" in tp.log.toPlainText()
    assert win.c.spec.model.layers[head].args == {"out_features": 12}


def test_trained_project_reopens_with_its_progress_and_predictions(win, qtbot, tmp_path):
    _trained(win, qtbot)
    assert win._save_to(tmp_path / "t.darkproj")
    win.c.dirty = False
    assert win.open_path(str(tmp_path / "t.darkproj"))
    tp, op = win.training_panel, win.outputs_panel
    assert tp.progress.value() == tp.progress.maximum()  # 1 of 1 epochs: 100%
    assert not op.prev
    win.show_panel("Outputs")  # computed in the background when first looked at
    qtbot.waitUntil(lambda: bool(op.prev) and win.c.state == "idle", timeout=20000)
    assert op.grid.model().rowCount() == 32 and op.cm.rowCount() == 10
    assert op.t_epoch.value.text() == "1"
    assert win.c.session.position["step"] == 3  # nothing was trained
    assert "evaluated the weights of epoch 1" in tp.log.toPlainText()
    assert op.eval_btn.isEnabled()


def test_model_panel_messages_are_short_and_numbered_as_the_table(win):
    _open_small(win, SAMPLES[1])
    mp = win.model_panel
    names = [ls.name for ls in win.c.spec.model.layers]
    last = len(names) - 1
    mp.table.item(last, 0).setText(names[1])
    msg = mp.error.text()
    assert msg == (
        f"row {last + 1}: the name '{names[1]}' is already used by row 2; layer names must "
        "be unique"
    )
    mp.table.item(last, 0).setText("my head")
    assert mp.error.text().startswith(f"row {last + 1} ({names[last]}): layer name 'my head'")
    for text in (mp.error.text(), msg):
        assert "pydantic" not in text and "type=" not in text and "Value error" not in text
    mp.input_shape.setText("0, 28, 28")
    mp._input_edited()
    assert "give one to three positive sizes" in mp.error.text()
    assert win.c.spec.model.input_shape == [3, 32, 32]
    mp.table.item(0, 2).setText("out_channels=16, kernel_size=3, stride=0")
    assert mp.error.text() == (
        "row 1 'conv1' (Conv2d): stride must be a positive integer (or a pair of them), got 0"
    )
    win.training_panel.start()
    assert not win.c.is_training
    assert "cannot start: the model is invalid: row 1 'conv1'" in win.training_panel.status.text()


def test_impossible_transforms_are_refused(win, qtbot):
    _open_small(win, SAMPLES[1])
    win.show_panel("Dataset")
    dp = win.dataset_panel
    qtbot.waitUntil(lambda: dp.grid.model().rowCount() > 0, timeout=5000)
    before = [t.model_dump() for t in win.c.spec.dataset.transforms]
    dp.tfm.item(1, 1).setText("size=64")  # RandomCrop larger than the 32x32 images
    assert "cannot work on the 32x32 images" in dp.t_error.text()
    dp.t_type.setCurrentText("RandomHorizontalFlip")
    dp._t_add()
    dp.tfm.item(2, 1).setText("p=5")
    assert "must lie in [0, 1], got 5" in dp.t_error.text()
    dp.t_type.setCurrentText("Resize")
    dp._t_add()
    dp.tfm.item(3, 1).setText("size=64")
    assert "give 64x64 images but the model takes 32x32" in dp.t_error.text()
    now = [t.model_dump() for t in win.c.spec.dataset.transforms]
    assert now[:2] == before and [t["args"] for t in now[2:]] == [{}, {"size": 32}]
    # one that slipped in (a project file) stops Start with the same message
    win.c.spec.dataset.transforms[-1].args = {"size": 64}
    win.training_panel.start()
    assert not win.c.is_training
    assert "give 64x64 images" in win.training_panel.status.text()


def test_window_fits_a_1280x720_screen(win):
    assert win.open_path(SAMPLES[1]), win.errors
    m = win.minimumSizeHint()
    assert m.width() <= 1200 and m.height() <= 650, m
    win.resize(1280, 720)
    for name in ("Dataset", "Model", "Training", "Outputs"):
        win.show_panel(name)
        panel = win.stack.currentWidget()
        assert panel.width() <= 1280 - win.nav.width() and panel.height() < 720


def test_lr_box_is_off_while_one_cycle_sets_the_rate(win, qtbot):
    _open_small(win, SAMPLES[0], size=600, steps=12)
    tp = win.training_panel
    assert win.c.spec.schedule.type == "OneCycleLR" and tp.lr.isEnabled()
    s = win.c.ensure_session()
    real = s.task.train_step

    def slow(*a):
        time.sleep(0.03)
        return real(*a)

    s.task.train_step = slow
    tp.start()
    _wait_state(qtbot, win, "running")
    assert not tp.lr.isEnabled() and "OneCycleLR sets the learning rate" in tp.lr.toolTip()
    win.c.stop(wait=10)
    _wait_state(qtbot, win, "idle")
    assert tp.lr.isEnabled()
    g = win.c.session.optimizer.param_groups[0]
    peak, lr = g["max_lr"], g["lr"]
    tp.lr.setValue(peak / 2)  # stopped: the new value is the cycle's new peak
    assert g["max_lr"] == pytest.approx(peak / 2) and g["lr"] == pytest.approx(lr / 2)
    tp.sched.setCurrentText("StepLR")
    tp.start()
    _wait_state(qtbot, win, "running")
    assert tp.lr.isEnabled()  # a per-epoch schedule scales the rate the box sets
    win.c.stop(wait=10)


# --------------------------------------------------------------------------- review fixes


def test_outputs_after_the_data_changed_drops_old_predictions(win, qtbot):
    _open_small(win, SAMPLES[0], size=200, steps=2)
    win.show_panel("Training")
    win.c.start()
    _wait_state(qtbot, win, "idle")
    qtbot.waitUntil(lambda: not win.c.is_training, timeout=20000)
    win.c.drain()
    assert win.c.previews.get("pred") is not None and not win.outputs_panel.isVisible()
    win.c.spec.dataset.size = 120  # other data: the predictions index other images
    win.c.mark_changed("dataset")
    assert win.c.previews == {}
    assert win.outputs_panel.prev == {}  # dropped while hidden
    win.show_panel("Outputs")  # shown: the stored weights are evaluated on the new data
    qtbot.waitUntil(lambda: win.c.state == "idle" and not win.c.is_training, timeout=20000)
    win.c.drain()
    prev = win.outputs_panel.prev
    assert not prev or int(prev["index"].max()) < len(win.c.data_now())


def test_guarded_event_handler_reports_instead_of_raising(win):
    from studio.ui.widgets import guarded

    @guarded
    def boom():
        raise IndexError("list index out of range")

    assert boom() is None
    assert "internal error" in win.statusBar().currentMessage()


def test_a_failing_close_handler_keeps_a_window_with_unsaved_work_open(win, monkeypatch):
    from PySide6.QtGui import QCloseEvent

    _open_small(win, SAMPLES[0])
    win.c.dirty = True

    def fail(e):
        raise RuntimeError("close handler bug")

    monkeypatch.setattr(win, "_close", fail)
    e = QCloseEvent()
    win.closeEvent(e)
    assert not e.isAccepted() and "close handler bug" in win.statusBar().currentMessage()
    win.c.dirty = False
    e = QCloseEvent()
    win.closeEvent(e)
    assert e.isAccepted()


def test_switching_to_adam_drops_sgd_only_arguments(win, qtbot):
    _open_small(win, SAMPLES[0])
    tp = win.training_panel
    tp.optim.setCurrentText("SGD")
    win.c.spec.optimizer.args = {**win.c.spec.optimizer.args, "nesterov": True, "momentum": 0.9}
    tp.optim.setCurrentText("Adam")
    assert win.c.spec.optimizer.type == "Adam"
    assert "nesterov" not in win.c.spec.optimizer.args
    assert "nesterov" in tp.log.toPlainText()


def test_swapped_layers_take_their_weights_along(win, qtbot):
    from studio.project import ModelSpec

    _open_small(win, SAMPLES[0], steps=2)
    lin = {"type": "Linear", "args": {"out_features": 16}}
    names = ["flat", "fc1", "r1", "fcA", "r2", "fcB", "r3", "head"]
    types = [{"type": "Flatten"}, lin, {"type": "ReLU"}, lin, {"type": "ReLU"}, lin]
    types += [{"type": "ReLU"}, {"type": "Linear", "args": {"out_features": 10}}]
    layers = [{"name": n, **t} for n, t in zip(names, types)]
    shape = win.c.spec.model.input_shape
    assert win.c.set_model(ModelSpec.model_validate({"input_shape": shape, "layers": layers}))
    win.c.start()
    _wait_state(qtbot, win, "idle")
    a = win.c.session.model.state_dict()["fcA.weight"].numpy().copy()
    layers[3], layers[5] = layers[5], layers[3]
    asked = []
    m2 = ModelSpec.model_validate({"input_shape": shape, "layers": layers})
    assert win.c.set_model(m2, confirm=lambda t: asked.append(t) or True)
    assert not asked  # the weights still fit: nothing to confirm
    assert np.array_equal(win.c.project.model_state["fcA.weight"], a)
    assert not np.array_equal(win.c.project.model_state["fcB.weight"], a)
    # the optimizer's state is stored by parameter position: after a move it starts afresh
    assert win.c.project.optim_meta is None and not win.c.project.optim_tensors
    # a layer renamed in place keeps its weights under the new name
    layers[5] = {**layers[5], "name": "fcA2"}
    assert win.c.set_model(ModelSpec.model_validate({"input_shape": shape, "layers": layers}))
    assert np.array_equal(win.c.project.model_state["fcA2.weight"], a)
    # moving layers of different shapes (a Linear past a BatchNorm1d) keeps their weights
    # and the next run trains (Adam's moments of one landed on the other and crashed)
    layers.insert(4, {"name": "bn", "type": "BatchNorm1d"})
    assert win.c.set_model(ModelSpec.model_validate({"input_shape": shape, "layers": layers}))
    win.c.start()
    _wait_state(qtbot, win, "idle")
    layers[3], layers[4] = layers[4], layers[3]
    assert win.c.set_model(ModelSpec.model_validate({"input_shape": shape, "layers": layers}))
    win.c.spec.training.epochs += 1
    win.c.start()
    _wait_state(qtbot, win, "idle")
    assert win.c.trainer.finished_reason == "completed"


def test_data_edits_are_off_while_a_run_is_active(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[0], steps=200)
    dp, ds = win.dataset_panel, win.c.spec.dataset
    win.c.start()
    win.c.pause()
    _wait_state(qtbot, win, "paused")
    assert not dp.size.isEnabled() and not dp.source.isEnabled()
    assert not any(b.isEnabled() for b in dp.t_buttons[1:])
    assert "stop it first" in dp.size.toolTip()
    dp.size.setValue(1000)  # a slot reached anyway changes nothing
    dp._size_changed()
    dp._t_add()
    assert ds.size == 240 and ds.transforms == win.c.project.spec.dataset.transforms
    assert dp.size.value() == 240 and "during training: stop it first" in dp.t_error.text()
    win.handle_drop(str(_image_folder(tmp_path / "imgs", ["a", "b"])))
    assert ds.source == "procedural" and "during training: stop it first" in win.errors[-1]
    win.c.stop(wait=10)
    _wait_state(qtbot, win, "idle")
    assert dp.size.isEnabled() and dp.source.isEnabled() and dp.t_buttons[1].isEnabled()


def test_evaluate_says_why_the_model_does_not_fit_the_data(win, qtbot, tmp_path):
    _trained(win, qtbot)
    op = win.outputs_panel
    win.handle_drop(str(_image_folder(tmp_path / "imgs", ["a", "b", "c"])))
    qtbot.waitUntil(lambda: win.c.data_now() is not None, timeout=5000)
    qtbot.waitUntil(lambda: not op.eval_btn.isEnabled(), timeout=5000)
    assert "'head' gives 10 class scores but the dataset has 3" in op.eval_btn.toolTip()
    op.prev = {"pred": np.zeros(1)}  # predictions left on screen from before
    assert op.evaluate() is False and op.prev == {} and win.c.state == "idle"
    assert "cannot evaluate: the model's output layer" in win.statusBar().currentMessage()
    assert "cannot evaluate:" in win.training_panel.log.toPlainText()
    assert op.empty.text().startswith("Cannot evaluate: ")


def test_evaluate_with_settings_that_cannot_build_says_so(win, qtbot):
    _trained(win, qtbot)
    win.c.session = None
    win.c.spec.optimizer.args = {"betas": "not a pair"}  # as a hand-edited file might hold
    assert win.outputs_panel.evaluate() is False and win.c.state == "idle"
    assert "cannot evaluate:" in win.statusBar().currentMessage()


def test_one_class_folder_is_refused(win, qtbot, tmp_path):
    _open_small(win, SAMPLES[1])
    folder = str(_image_folder(tmp_path / "one", ["only"]))
    win.handle_drop(folder)
    assert "classification needs at least 2" in win.errors[-1]
    assert win.c.spec.dataset.source == "procedural"
    assert win.c.spec.model.layers[-1].args["out_features"] == 10
    win.dataset_panel.set_folder(folder)  # chosen in the Dataset panel: the same refusal
    assert win.c.spec.dataset.source == "procedural"
    assert "the dataset has 1 class" in win.dataset_panel.error.text()


def test_changing_the_schedule_keeps_the_optimizer_state(win, qtbot):
    """Only the schedule changed: the optimizer's moments carry on (they were dropped with
    'optimizer changed: its state starts afresh')."""
    _trained(win, qtbot)
    tp = win.training_panel
    other = next(
        tp.sched.itemText(i)
        for i in range(tp.sched.count())
        if tp.sched.itemText(i) != tp.sched.currentText()
    )
    tp.sched.setCurrentText(other)
    assert win.c.spec.schedule.type == other
    assert "starts afresh" not in tp.log.toPlainText()
    state = win.c.session.optimizer.state_dict()["state"]
    assert state, "the optimizer state was dropped"


def test_a_project_set_to_a_missing_device_trains_on_this_one(win, qtbot):
    """A project saved on a GPU machine opens on a CPU-only one: the Device box's fallback
    is what the project trains on (Start failed with the saved 'cuda')."""
    import darklib as dl

    if dl.cuda.is_available():
        pytest.skip("this machine has the device")
    _open_small(win, SAMPLES[0], steps=2)
    win.c.spec.training.device = "cuda"
    win.training_panel.load_project()
    assert win.c.spec.training.device == win.training_panel.device.currentText() == "cpu"
    assert "'cuda' is not available here" in win.training_panel.log.toPlainText()
    win.training_panel.start()
    _wait_state(qtbot, win, "idle")
    assert win.c.session.position["step"] == 2


def test_an_unreadable_image_is_a_grey_cell_not_a_stream_of_errors(qtbot):
    from PySide6.QtCore import Qt

    from darklib.vision.datasets._common import DatasetFormatError
    from studio.ui.widgets import ImageGridModel

    calls = []

    def item(i):
        calls.append(i)
        if i == 1:
            raise DatasetFormatError("cannot decode image", "b/fake.jpg")
        return np.zeros((8, 8, 3), np.uint8), f"img {i}", None, ""

    model = ImageGridModel(item)
    model.set_items([0, 1])
    bad = model.index(1, 0)
    for role in (Qt.DisplayRole, Qt.DecorationRole, Qt.ToolTipRole, Qt.DisplayRole):
        model.data(bad, role)
    assert model.data(bad, Qt.DisplayRole) == "unreadable"
    assert "fake.jpg" in model.data(bad, Qt.ToolTipRole)
    assert calls == [1]  # read once, then cached


def test_two_json_copies_of_a_sample_get_their_own_checkpoints(win, tmp_path):
    """GUI checkpoints of .json projects are keyed by the file, not only the name: two
    copies of one sample overwrote each other's."""
    import shutil

    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        paths.append(shutil.copy(SAMPLES[0], tmp_path / folder / "p.json"))
    found = []
    for p in paths:
        assert win.open_path(p), win.errors
        found.append(win.c.checkpoint_path())
    assert found[0] != found[1]
    assert all(f.name.endswith(".checkpoint.darkproj") for f in found)
