"""Studio core without Qt: project files, the trainer's loop, its controls and its faults."""

import json
import math
import os
import queue
import zipfile

import numpy as np
import pytest

from studio.project import (
    MAX_JSON_BYTES,
    Project,
    ProjectError,
    load_project,
    save_project,
    spec_from_dict,
)

MLP = {
    "name": "tiny",
    "dataset": {"source": "procedural", "name": "glyphs28", "size": 120, "val_fraction": 0.25},
    "model": {
        "input_shape": [1, 6, 6],
        "layers": [
            {"name": "flat", "type": "Flatten"},
            {"name": "fc1", "type": "Linear", "args": {"out_features": 16}},
            {"name": "act", "type": "ReLU"},
            {"name": "head", "type": "Linear", "args": {"out_features": 3}},
        ],
    },
    "optimizer": {"type": "Adam", "lr": 0.01},
    "training": {"epochs": 2, "batch_size": 16, "seed": 0},
}


def _data(spec, n=120):
    from studio.data import ImageData

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    images = np.zeros((n, 6, 6, 1), np.uint8)
    for i, y in enumerate(labels):  # learnable: a bright row per class
        images[i, 2 * y : 2 * y + 2, :, 0] = 200
    images += rng.integers(0, 40, images.shape, dtype=np.uint8)
    return ImageData(labels, ["a", "b", "c"], [1, 6, 6], spec.dataset, images=images)


def _session(spec_dict=MLP, project=None):
    pytest.importorskip("darklib.nn")
    pytest.importorskip("darklib.optim")
    from studio.trainer import Session

    proj = project or Project(spec=spec_from_dict(json.loads(json.dumps(spec_dict))))
    return Session(proj, data=_data(proj.spec))


def _drain(q):
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def _run(trainer, timeout=30):
    trainer.start()
    assert trainer.join(timeout), "trainer did not finish"
    return _drain(trainer.events)


def _stopped_after(session, steps):
    """Train ``session`` for one epoch, stopped by the user after ``steps`` steps."""
    from studio.trainer import Trainer

    tr = Trainer(session, epochs=1)
    real, calls = session.task.train_step, {"n": 0}

    def stop_after(*a):
        calls["n"] += 1
        if calls["n"] == steps:
            tr.stop()
        return real(*a)

    session.task.train_step = stop_after
    try:
        return _run(tr)
    finally:
        session.task.train_step = real


# --------------------------------------------------------------------------- project files


def test_bare_json_and_archive_round_trip(tmp_path):
    spec = spec_from_dict(MLP)
    p = save_project(Project(spec=spec), tmp_path / "a.json")
    assert load_project(p).spec == spec
    proj = Project(
        spec=spec,
        model_state={"fc1.weight": np.ones((16, 36), np.float32)},
        history={"steps": {"loss": [1.0]}},
        position={"epoch": 1, "batch": 0, "step": 7},
    )
    q = save_project(proj, tmp_path / "a.darkproj")
    back = load_project(q, check_weights=False)
    assert back.spec == spec and back.position["step"] == 7
    np.testing.assert_array_equal(back.model_state["fc1.weight"], 1.0)
    assert back.history == {"steps": {"loss": [1.0]}}
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_a_trained_batchnorm_model_saves_and_reopens_with_its_0d_buffers(tmp_path):
    # BatchNorm's num_batches_tracked is 0-d: np.ascontiguousarray made it (1,) on save,
    # and the file then failed its own shape check on open ("has shape (1,), the model
    # needs ()"); files written that way still open
    import darklib as dl
    from studio.network import build_model

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    spec = spec_from_dict(json.loads((root / "projects" / "objects_cnn.json").read_text()))
    model = build_model(spec.model)
    model.train()
    model(dl.randn(2, *spec.model.input_shape))
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    assert state["bn1.num_batches_tracked"].shape == ()
    step = np.array(3.0, np.float32)  # an optimizer's 0-d step counter
    proj = Project(spec=spec, model_state=state, optim_tensors={"0.step": step})
    back = load_project(save_project(proj, tmp_path / "cnn.darkproj"))
    for k, v in state.items():
        assert back.model_state[k].shape == v.shape, k
        np.testing.assert_array_equal(back.model_state[k], v)
    assert back.optim_tensors["0.step"].shape == ()
    old = {**state, "bn1.num_batches_tracked": state["bn1.num_batches_tracked"].reshape(1)}
    back = load_project(save_project(Project(spec=spec, model_state=old), tmp_path / "o.darkproj"))
    assert back.model_state["bn1.num_batches_tracked"].shape == ()


@pytest.mark.parametrize("kind", ["zip", "json", "schema", "layer", "weights", "big"])
def test_bad_project_files_name_the_problem(tmp_path, kind):
    p = tmp_path / "bad.darkproj"
    if kind == "zip":
        p.write_bytes(b"PK\x03\x04garbage")
        match = "not a valid .darkproj"
    elif kind == "json":
        p = tmp_path / "bad.json"
        p.write_text('{"name": "x",\n "model": [}')
        match = "bad JSON at line 2"
    elif kind == "schema":
        p = tmp_path / "bad.json"
        p.write_text(json.dumps({**MLP, "training": {"epochs": -1}}))
        match = "training.epochs"
    elif kind == "layer":
        bad = json.loads(json.dumps(MLP))
        bad["model"]["layers"][1]["type"] = "Lineer"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("project.json", json.dumps(bad))
        match = "unknown layer type 'Lineer'"
    elif kind == "weights":
        proj = Project(
            spec=spec_from_dict(MLP), model_state={"fc1.weight": np.ones((3, 3), np.float32)}
        )
        save_project(proj, p)
        match = "missing"
    else:
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("project.json", b" " * (MAX_JSON_BYTES + 10))
        match = "over the limit"
    before = p.read_bytes()
    with pytest.raises(ProjectError, match=match):
        load_project(p)
    assert p.read_bytes() == before


def test_weight_shape_mismatch_names_the_tensor(tmp_path):
    from studio.modelspec import expected_state_shapes

    spec = spec_from_dict(MLP)
    state = {k: np.zeros(s, np.float32) for k, s in expected_state_shapes(spec.model).items()}
    state["head.weight"] = np.zeros((4, 16), np.float32)
    save_project(Project(spec=spec, model_state=state), tmp_path / "w.darkproj")
    with pytest.raises(ProjectError, match=r"'head.weight' has shape \(4, 16\)"):
        load_project(tmp_path / "w.darkproj")


# --------------------------------------------------------------------------- trainer


def test_trains_emits_events_and_learns(tmp_path):
    from studio.trainer import Trainer

    s = _session()
    ck = tmp_path / "ck.darkproj"
    tr = Trainer(s, epochs=2, checkpoint=ck)
    evs = _run(tr)
    kinds = [e.kind for e in evs]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert evs[-1].data["reason"] == "completed"
    assert kinds.count("epoch") == 2 and kinds.count("checkpoint") == 2
    steps = [e.data for e in evs if e.kind == "step"]
    assert len(steps) == 2 * math.ceil(90 / 16) == len(s.history)
    assert s.history.epochs["val_acc"][-1] > 0.6
    prev = [e.data for e in evs if e.kind == "previews"][-1]
    assert prev["confusion"].sum() == 30 and len(prev["pred"]) == 30
    back = load_project(ck)
    assert back.position == {"epoch": 2, "batch": 0, "step": len(steps), "samples": 0}


def test_stop_then_start_continues_from_the_same_step(tmp_path):
    from studio.trainer import Session, Trainer

    s = _session()
    tr = Trainer(s, epochs=2)
    real = s.task.train_step
    calls = {"n": 0}

    def stop_after_three(*a):
        calls["n"] += 1
        if calls["n"] == 3:
            tr.stop()  # seen before the next batch: exactly three steps are taken
        return real(*a)

    s.task.train_step = stop_after_three
    tr.pause()  # start paused: the flags are checked before the first batch too
    tr.start()
    ev = tr.events.get(timeout=10)
    assert ev.kind == "started"
    assert tr.events.get(timeout=10).kind == "paused"
    tr.resume()
    assert tr.join(10)
    evs = _drain(tr.events)
    assert evs[-1].data["reason"] == "stopped"
    assert [e.data["step"] for e in evs if e.kind == "step"] == [1, 2, 3]
    step = s.position["step"]
    assert step == 3 and s.position["epoch"] == 0
    s.task.train_step = real
    # save, reopen, continue: the optimizer state and the step carry over
    snap = s.snapshot()
    save_project(snap, tmp_path / "p.darkproj")
    proj = load_project(tmp_path / "p.darkproj")
    s2 = Session(proj, data=_data(proj.spec))
    st = s2.optimizer.state_dict()["state"]
    assert st and all(float(np.asarray(v["step"])) == step for v in st.values())
    for k, v in s.model.state_dict().items():
        np.testing.assert_array_equal(
            np.asarray(v.numpy()), np.asarray(s2.model.state_dict()[k].numpy())
        )
    tr2 = Trainer(s2, epochs=2)
    evs = _run(tr2)
    first = next(e.data for e in evs if e.kind == "step")
    assert first["step"] == step + 1
    assert s2.position["epoch"] == 2
    assert len(s2.history) == s2.position["step"]


def test_nan_loss_pauses_before_the_update():
    from studio.trainer import Trainer

    s = _session()
    real = s.task.train_step
    calls = {"n": 0}

    def poisoned(model, batch, loss_fn, device):
        loss, st = real(model, batch, loss_fn, device)
        calls["n"] += 1
        if calls["n"] == 2:
            loss = loss * float("nan")
        return loss, st

    s.task.train_step = poisoned
    tr = Trainer(s, epochs=1)
    tr.start()
    while True:
        e = tr.events.get(timeout=10)
        if e.kind == "paused":
            break
    assert "loss is nan" in e.data["reason"]
    assert tr.is_paused and s.position["step"] == 1
    for p in s.model.parameters():
        assert np.isfinite(p.detach().numpy()).all()
    snap = s.snapshot()  # saving while paused does not dead-lock
    assert snap.position["step"] == 1
    tr.stop()
    assert tr.join(10)


def test_exception_is_reported_and_model_kept():
    from studio.trainer import Trainer

    s = _session()
    real = s.task.train_step
    calls = {"n": 0}

    def broken(model, batch, loss_fn, device):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom in batch 3")
        return real(model, batch, loss_fn, device)

    s.task.train_step = broken
    evs = _run(Trainer(s, epochs=1))
    err = next(e.data for e in evs if e.kind == "error")
    assert "boom in batch 3" in err["message"] and "Traceback" in err["traceback"]
    assert evs[-1].data["reason"] == "error"
    assert s.position["step"] == 2 and len(s.history) == 2
    snap = s.snapshot()
    assert set(snap.model_state) == {"fc1.weight", "fc1.bias", "head.weight", "head.bias"}


def test_snapshot_while_training_is_consistent():
    from studio.trainer import Trainer

    s = _session()
    tr = Trainer(s, epochs=2)
    tr.start()
    snaps = []
    while tr.is_alive and len(snaps) < 5:
        snaps.append(s.snapshot())
    tr.join(30)
    for snap in snaps:
        assert len(snap.history["steps"]["step"]) == snap.position["step"]


def test_cli_train_writes_a_project(tmp_path, capsys, monkeypatch):
    pytest.importorskip("darklib.nn")
    from studio import cli, trainer

    spec = spec_from_dict(MLP)
    monkeypatch.setattr(trainer, "load_data", lambda ds, shape: _data(spec))
    src = save_project(Project(spec=spec), tmp_path / "p.json")
    out = tmp_path / "out.darkproj"
    assert cli.main(["train", str(src), "--epochs", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "epoch 1: train loss" in text and f"wrote {out}" in text
    proj = load_project(out)
    assert proj.position["epoch"] == 1 and proj.trained
    # the output holds the final state: its per-epoch checkpoint is not left behind
    assert not (tmp_path / "out.checkpoint.darkproj").exists()


# --------------------------------------------------------------------------- continuing runs

ONE_CYCLE = {**MLP, "schedule": {"type": "OneCycleLR", "args": {}}}


def _cli_env(monkeypatch, spec_dict=ONE_CYCLE):
    pytest.importorskip("darklib.nn")
    from studio import trainer

    spec = spec_from_dict(json.loads(json.dumps(spec_dict)))
    monkeypatch.setattr(trainer, "load_data", lambda ds, shape: _data(spec))
    return spec


def test_more_epochs_with_one_cycle_starts_a_fresh_cycle():
    from studio.trainer import Trainer

    s = _session(ONE_CYCLE)
    s.spec.training.epochs = 1
    evs = _run(Trainer(s))
    assert [e.data["reason"] for e in evs if e.kind == "finished"] == ["completed"]
    per_epoch = s.position["step"]
    s.spec.training.epochs = 2  # "train more epochs" on the same session (the GUI's case)
    evs = _run(Trainer(s))
    assert not [e for e in evs if e.kind == "error"], [e.data for e in evs if e.kind == "error"]
    assert s.position == {"epoch": 2, "batch": 0, "step": 2 * per_epoch, "samples": 0}
    first, lrs = s.history.steps["lr"][:per_epoch], s.history.steps["lr"][per_epoch:]
    assert min(first) < 1e-6  # the first cycle had annealed
    # a new cycle over the new steps: back up to the peak (max_lr = the project's lr 0.01),
    # then annealed again
    assert max(lrs) > 0.5 * 0.01 and min(lrs) < 1e-6
    assert lrs.index(max(lrs)) < lrs.index(min(lrs))
    # and from a saved file with yet more epochs (the CLI's case)
    s2 = _session(ONE_CYCLE, project=s.snapshot())
    s2.spec.training.epochs = 3
    evs = _run(Trainer(s2))
    assert [e.data["reason"] for e in evs if e.kind == "finished"] == ["completed"]
    assert s2.position["epoch"] == 3


def test_resuming_the_same_plan_restores_the_schedule_exactly(tmp_path):
    from studio.trainer import Trainer

    full = _session(ONE_CYCLE)
    _run(Trainer(full))
    s = _session(ONE_CYCLE)
    tr = Trainer(s)
    real = s.task.train_step

    def stop_at_4(*a):
        if s.position["step"] == 3:
            tr.stop()  # checked before the next batch: step 4 is the last one
        return real(*a)

    s.task.train_step = stop_at_4
    _run(tr)
    assert s.position["step"] == 4
    path = save_project(s.snapshot(), tmp_path / "mid.darkproj")
    s2 = _session(ONE_CYCLE, project=load_project(path))
    _run(Trainer(s2))
    assert s2.history.steps["lr"] == pytest.approx(full.history.steps["lr"], rel=1e-6)


def test_new_batch_size_after_a_stop_finishes_the_epoch():
    from studio.trainer import Trainer

    s = _session(ONE_CYCLE)  # 90 training images: 6 batches of 16 per epoch
    tr = Trainer(s)
    real = s.task.train_step

    def stop_at_2(*a):
        if s.position["step"] == 1:
            tr.stop()
        return real(*a)

    s.task.train_step = stop_at_2
    _run(tr)
    assert s.position == {"epoch": 0, "batch": 2, "step": 2, "samples": 32}
    s.task.train_step = real
    s.spec.training.batch_size = 32  # 3 batches per epoch now
    evs = _run(Trainer(s))
    assert not [e for e in evs if e.kind == "error"]
    started = next(e.data for e in evs if e.kind == "started")
    assert started["epoch"] == 0 and started["done_steps"] == 1  # still in epoch 1
    epochs = [e.data["epoch"] for e in evs if e.kind == "epoch"]
    assert epochs == [1, 2]  # epoch 1 ends (and is validated) before epoch 2
    # the 58 images left of epoch 1 in 2 batches of 32, then 3 batches for epoch 2
    assert [e.data["count"] for e in evs if e.kind == "step"] == [32, 26, 32, 32, 26]
    # the schedule was rebuilt for the new plan and ends where a cycle ends
    assert s.scheduler.last_epoch == s.scheduler.total_steps == 6


def test_class_count_mismatch_is_an_error_before_training():
    from studio.trainer import Trainer

    five = json.loads(json.dumps(MLP))
    five["model"]["layers"][-1]["args"]["out_features"] = 5  # the data has 3 classes
    s = _session(five)
    evs = _run(Trainer(s))
    err = [e.data for e in evs if e.kind == "error"]
    assert len(err) == 1 and err[0]["user"] and not err[0]["traceback"]
    assert "'head' gives 5 class scores" in err[0]["message"]
    assert "has 3 classes" in err[0]["message"]
    assert not [e for e in evs if e.kind == "step"] and s.position["step"] == 0


def test_cli_trains_more_epochs_of_its_own_output(tmp_path, capsys, monkeypatch):
    from studio import cli

    spec = _cli_env(monkeypatch)
    src = save_project(Project(spec=spec), tmp_path / "p.json")
    out = tmp_path / "p.darkproj"
    assert cli.main(["train", str(src), "--epochs", "1", "--out", str(out)]) == 0
    assert cli.main(["train", str(out), "--epochs", "2"]) == 0
    assert cli.main(["train", str(out), "--epochs", "3", "--batch-size", "32"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "error" not in captured.err
    proj = load_project(out)
    assert proj.position["epoch"] == 3
    assert not (tmp_path / "p.checkpoint.darkproj").exists()


def test_cli_failed_run_leaves_the_project_file_alone(tmp_path, capsys, monkeypatch):
    from studio import cli
    from studio.tasks.classification import ClassificationTask

    spec = _cli_env(monkeypatch)
    src = save_project(Project(spec=spec), tmp_path / "p.json")
    out = tmp_path / "p.darkproj"
    assert cli.main(["train", str(src), "--epochs", "1", "--out", str(out)]) == 0
    before = out.read_bytes()
    real = ClassificationTask.train_step
    calls = {"n": 0}

    def broken(self, *a):
        calls["n"] += 1
        if calls["n"] == 9:  # in the second epoch: the first one's checkpoint exists
            raise RuntimeError("synthetic failure")
        return real(self, *a)

    monkeypatch.setattr(ClassificationTask, "train_step", broken)
    capsys.readouterr()
    assert cli.main(["train", str(out), "--epochs", "3"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: synthetic failure" in err and f"{out} was not written" in err
    assert out.read_bytes() == before  # the user's trained file is untouched
    ck = tmp_path / "p.checkpoint.darkproj"
    assert str(ck) in err and load_project(ck).position["epoch"] == 2


@pytest.mark.parametrize(
    "option, message",
    [
        (["--size", "5"], "--size 5: input should be greater than or equal to 10"),
        (["--batch-size", "0"], "--batch-size 0: input should be greater than or equal to 1"),
        (["--epochs", "0"], "--epochs 0: input should be greater than or equal to 1"),
        (["--max-steps", "0"], "--max-steps 0: must be at least 1"),
    ],
)
def test_cli_bad_option_is_one_line(tmp_path, capsys, monkeypatch, option, message):
    from studio import cli

    spec = _cli_env(monkeypatch)
    src = save_project(Project(spec=spec), tmp_path / "p.json")
    out = tmp_path / "o.darkproj"
    assert cli.main(["train", str(src), *option, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {message}"
    assert not out.exists()


def test_cli_missing_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("darklib.nn")
    from studio import cli

    d = json.loads(json.dumps(MLP))
    d["dataset"] = {"source": "folder", "path": str(tmp_path / "nowhere")}
    src = save_project(Project(spec=spec_from_dict(d)), tmp_path / "p.json")
    out = tmp_path / "o.darkproj"
    assert cli.main(["train", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "nowhere" in err and "does not exist" in err
    assert not out.exists() and not (tmp_path / "o.checkpoint.darkproj").exists()


def test_sample_projects_are_the_json_files_only(tmp_path):
    from studio.project import sample_projects

    spec = spec_from_dict(MLP)
    save_project(Project(spec=spec), tmp_path / "a.json")
    trained = Project(spec=spec, model_state={"x": np.zeros(1, np.float32)})
    save_project(trained, tmp_path / "a.trained.darkproj")
    save_project(trained, tmp_path / "a.trained.checkpoint.darkproj")
    assert [p.name for p, _, _ in sample_projects(tmp_path)] == ["a.json"]


def test_with_outputs_resizes_the_linear_head_only():
    from studio.modelspec import infer, with_outputs
    from studio.project import ModelSpec

    spec = spec_from_dict(MLP).model
    new, name, old = with_outputs(spec, 2)
    assert (name, old) == ("head", 3) and infer(new).output_shape == (2,)
    assert spec.layers[-1].args["out_features"] == 3  # a copy: the original is unchanged
    assert with_outputs(spec, 3) is None  # already fits
    soft = ModelSpec.model_validate(
        {
            "input_shape": [1, 6, 6],
            "layers": [
                *spec.model_dump()["layers"],
                {"name": "sm", "type": "Softmax", "args": {"dim": 1}},
            ],
        }
    )
    assert with_outputs(soft, 4)[1] == "head"  # through a trailing activation
    conv = ModelSpec.model_validate(
        {
            "input_shape": [1, 6, 6],
            "layers": [
                {"name": "c", "type": "Conv2d", "args": {"out_channels": 2, "kernel_size": 1}}
            ],
        }
    )
    assert with_outputs(conv, 4) is None  # not a Linear head: left to the user


def test_transform_size_mismatch_is_an_error_before_training():
    from studio.trainer import Trainer

    d = json.loads(json.dumps(MLP))
    d["dataset"]["transforms"] = [{"type": "Resize", "args": {"size": 12}}]
    s = _session(d)
    events = _run(Trainer(s, epochs=1))
    err = [e for e in events if e.kind == "error"]
    assert err and err[0].data["user"] and err[0].data["traceback"] == ""
    assert "give 12x12 images but the model takes 6x6" in err[0].data["message"]
    assert s.position["step"] == 0


def test_evaluate_only_predicts_without_training():
    from studio.trainer import Trainer

    s = _session()
    _run(Trainer(s, epochs=1))
    before = {k: np.array(v.array) for k, v in s.model.state_dict().items()}
    pos, n = dict(s.position), len(s.history)
    events = _run(Trainer(s, evaluate_only=True))
    kinds = [e.kind for e in events]
    assert "step" not in kinds and "previews" in kinds
    ev = next(e for e in events if e.kind == "evaluated")
    assert ev.data["epoch"] == 1 and 0.0 <= ev.data["acc"] <= 1.0
    assert events[-1].data["reason"] == "evaluated"
    prev = next(e for e in events if e.kind == "previews").data
    assert len(prev["pred"]) == len(s.data.val_indices) and prev["epoch"] == 1
    assert s.position == pos and len(s.history) == n
    for k, v in s.model.state_dict().items():
        np.testing.assert_array_equal(np.array(v.array), before[k])


# --------------------------------------------------------------------------- review fixes


@pytest.mark.parametrize("name", ["x.json", "x", "dir"])
def test_cli_out_must_be_a_darkproj_file_checked_before_training(tmp_path, capsys, name):
    from studio import cli

    src = save_project(Project(spec=spec_from_dict(MLP)), tmp_path / "p.json")
    before = src.read_bytes()
    (tmp_path / "dir").mkdir()
    assert cli.main(["train", str(src), "--epochs", "3", "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out") and "\n" not in err and "Traceback" not in err
    assert src.read_bytes() == before  # nothing trained, nothing overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "p.json"]


def test_stored_optimizer_state_yields_to_changed_settings():
    from studio.trainer import Trainer

    s = _session(MLP)
    s.spec.training.epochs = 1
    _run(Trainer(s, max_steps_per_epoch=2))
    snap = s.snapshot()
    # a new learning rate and weight decay win over the stored param groups
    snap.spec.optimizer.lr = 0.001
    snap.spec.optimizer.args = {"weight_decay": 0.05}
    s2 = _session(project=snap)
    g = s2.optimizer.param_groups[0]
    assert g["lr"] == 0.001 and g["weight_decay"] == 0.05
    assert len(s2.optimizer.state) > 0  # the moments themselves are kept
    # another optimizer type: its state starts afresh, and the run says so
    snap.spec.optimizer.type = "SGD"
    snap.spec.optimizer.args = {"momentum": 0.9}
    s3 = _session(project=snap)
    assert len(s3.optimizer.state) == 0
    s3.spec.training.epochs = 2
    evs = _run(Trainer(s3, max_steps_per_epoch=2))
    assert evs[-1].data["reason"] == "completed"
    assert any("optimizer changed from Adam to SGD" in e.data.get("text", "") for e in evs)


def test_one_cycle_state_does_not_override_schedule_none():
    from studio.trainer import Trainer

    s = _session(ONE_CYCLE)
    s.spec.training.epochs = 1
    _run(Trainer(s, max_steps_per_epoch=3))
    snap = s.snapshot()
    snap.spec.schedule.type = "none"
    snap.spec.training.epochs = 2
    s2 = _session(project=snap)
    _run(Trainer(s2, max_steps_per_epoch=3))
    assert s2.history.steps["lr"][3:] == [0.01, 0.01, 0.01]


def test_lr_history_logs_the_rate_each_step_used():
    from studio.trainer import Trainer

    s = _session(ONE_CYCLE)
    s.spec.training.epochs = 1
    _run(Trainer(s, max_steps_per_epoch=4))
    lrs = s.history.steps["lr"]
    assert lrs[0] == pytest.approx(0.01 / 25)  # OneCycleLR's first rate: max_lr / div_factor
    assert len(lrs) == 4 and max(lrs) > 0.005  # near the peak, the curve is not shifted
    assert lrs[-1] == pytest.approx(0.01 / 25 / 1e4)  # the cycle's last rate, not past it


def test_optimizer_arguments_it_does_not_take_are_a_clear_error():
    pytest.importorskip("darklib.optim")
    from studio.data import DataError
    from studio.trainer import optimizer_arguments

    assert "nesterov" in optimizer_arguments("SGD")
    assert "nesterov" not in optimizer_arguments("Adam")
    spec = json.loads(json.dumps(MLP))
    spec["optimizer"]["args"] = {"nesterov": True}
    with pytest.raises(DataError, match="does not take nesterov"):
        _session(spec)


def test_stop_during_validation_leaves_the_epoch_unfinished(tmp_path, capsys):
    from studio import cli
    from studio.trainer import Trainer

    s = _session(MLP)
    s.spec.training.epochs = 1
    t = Trainer(s, max_steps_per_epoch=2)
    real = t._validate

    def stop_then_validate(*a, **k):
        t.stop()  # the user presses Stop while validation runs
        return real(*a, **k)

    t._validate = stop_then_validate
    evs = _run(t)
    assert evs[-1].data["reason"] == "stopped"
    assert s.history.epochs["epoch"] == [] and s.position["epoch"] == 0
    assert s.position["batch"] == 2
    # the next Start validates and records that epoch, training no more batches
    evs = _run(Trainer(s, max_steps_per_epoch=2))
    assert evs[-1].data["reason"] == "completed" and len(s.history) == 2
    assert s.history.epochs["epoch"] == [1.0] and math.isfinite(s.history.epochs["val_loss"][0])
    # info prints a history with missing values
    snap = s.snapshot()
    snap.history["epochs"]["val_acc"] = [None]
    save_project(snap, tmp_path / "p.darkproj")
    assert cli.main(["info", str(tmp_path / "p.darkproj")]) == 0
    assert "last val acc --" in capsys.readouterr().out


def test_one_class_data_is_refused_before_training(tmp_path, capsys, monkeypatch):
    pytest.importorskip("darklib.nn")
    from studio import cli, trainer
    from studio.data import ImageData

    spec = spec_from_dict(MLP)
    assert "needs at least 2" in trainer.fit_problem(spec, 1)
    assert trainer.fit_problem(spec, 0).startswith("the dataset has 0 classes")
    images = np.zeros((20, 6, 6, 1), np.uint8)
    one = ImageData(np.zeros(20, np.int64), ["only"], [1, 6, 6], spec.dataset, images=images)
    monkeypatch.setattr(trainer, "load_data", lambda ds, shape: one)
    src = save_project(Project(spec=spec), tmp_path / "p.json")
    out = tmp_path / "out.darkproj"
    assert cli.main(["train", str(src), "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the dataset has 1 class: classification needs at least 2" in err
    assert "Traceback" not in err and not out.exists()


def test_cli_keeps_an_earlier_result_and_refuses_outputs_it_cannot_write(
    tmp_path, capsys, monkeypatch
):
    """Training a .json project again would replace its earlier .trained.darkproj: refused
    with the way to continue it. '--out .' and an unwritable folder are one-line errors."""
    from studio import cli

    spec = _cli_env(monkeypatch)
    src = save_project(Project(spec=spec), tmp_path / "p.json")
    assert cli.main(["train", str(src), "--epochs", "1"]) == 0
    result = tmp_path / "p.trained.darkproj"
    before = result.read_bytes()
    capsys.readouterr()
    assert cli.main(["train", str(src), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and f"train {result}" in err
    assert result.read_bytes() == before
    for out in (".", str(tmp_path) + "/"):
        assert cli.main(["train", str(src), "--out", out]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "--out" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # (root writes anywhere)
            assert cli.main(["train", str(src), "--out", str(locked / "x.darkproj")]) == 2
            assert "cannot be written" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_saves_keep_file_permissions_and_links(tmp_path):
    spec = spec_from_dict(MLP)
    path = tmp_path / "p.darkproj"
    save_project(Project(spec=spec), path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would make it
    path.chmod(0o640)
    save_project(Project(spec=spec), path)
    assert path.stat().st_mode & 0o777 == 0o640
    link = tmp_path / "link.darkproj"
    link.symlink_to(path)
    save_project(Project(spec=spec), link)
    assert link.is_symlink() and load_project(link).spec.name == spec.name


def test_a_damaged_archive_is_a_project_error(tmp_path):
    spec = spec_from_dict(MLP)
    path = save_project(Project(spec=spec, model_state={}), tmp_path / "p.darkproj")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:  # corrupt the compressed bytes of the first member
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename)
    data[start : start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(ProjectError):
        load_project(path)


def test_fresh_sessions_start_from_the_seed(monkeypatch):
    pytest.importorskip("darklib.nn")
    from studio.trainer import Session

    spec = spec_from_dict(MLP)
    a = Session(Project(spec=spec), data=_data(spec))
    b = Session(Project(spec=spec), data=_data(spec))
    for (na, pa), (nb, pb) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_a_resumed_run_with_augmentations_trains_as_an_unbroken_one():
    """Random crops and flips follow (epoch seed, sample): stopping after three steps and
    starting again gives the weights of a run that never stopped."""
    from studio.trainer import Trainer

    d = json.loads(json.dumps(MLP))
    d["dataset"]["transforms"] = [
        {"type": "RandomHorizontalFlip", "args": {}},
        {"type": "RandomCrop", "args": {"size": 6, "padding": 1}},
    ]
    unbroken = _session(d)
    _run(Trainer(unbroken, epochs=1))
    s = _session(d)
    _stopped_after(s, 3)
    assert s.position["step"] == 3
    _run(Trainer(s, epochs=1))
    assert s.position["step"] == unbroken.position["step"]
    for k, v in unbroken.model.state_dict().items():
        np.testing.assert_allclose(
            s.model.state_dict()[k].numpy(), v.numpy(), rtol=1e-6, atol=1e-7, err_msg=k
        )


def test_no_training_images_is_an_error_before_training():
    from studio.trainer import Trainer

    s = _session()
    s._data = _data(s.spec, n=1)
    if len(s.data.train_dataset()):
        pytest.skip("this split keeps the single image for training")
    events = _run(Trainer(s, epochs=1))
    err = [e for e in events if e.kind == "error"]
    assert err and err[0].data["user"] and "no training images" in err[0].data["message"]


def test_cli_folder_projects_have_no_size(tmp_path, capsys):
    """A folder dataset uses its images: info does not print the procedural size, and
    train refuses --size instead of ignoring it."""
    from studio import cli

    d = json.loads(json.dumps(MLP))
    d["dataset"] = {"source": "folder", "path": str(tmp_path)}
    src = save_project(Project(spec=spec_from_dict(d)), tmp_path / "p.json")
    assert cli.main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    assert (
        f"data: folder {tmp_path}" in out and "images" not in out.split("data:")[1].split("\n")[0]
    )
    assert cli.main(["train", str(src), "--size", "50"]) == 2
    assert "--size sets the size of procedural datasets" in capsys.readouterr().err


def test_an_epoch_stopped_and_started_again_reports_all_its_batches(tmp_path):
    from studio.trainer import Trainer

    unbroken = _session()
    done = [e for e in _run(Trainer(unbroken, epochs=1)) if e.kind == "epoch"]
    s = _session()
    _stopped_after(s, 3)
    # the same session, and a session reopened from the saved project, report the epoch
    # over all its batches (the sums are saved with the project)
    path = save_project(s.snapshot(), tmp_path / "half.darkproj")
    reopened = _session(project=load_project(path))
    assert reopened.epoch_sums[0] == 0 and reopened.epoch_sums[1]["count"] > 0
    for again in (s, reopened):
        resumed = [e for e in _run(Trainer(again, epochs=1)) if e.kind == "epoch"]
        for key in ("train_loss", "train_acc"):
            assert resumed[0].data[key] == pytest.approx(done[0].data[key], rel=1e-6), key
    # a file's sums for another epoch, or that are not plain numbers, are not taken
    proj = load_project(path)
    for bad in ({"epoch": 1}, {"stats": {"count": "3"}}, {"loss_sum": float("nan")}):
        proj.history["_epoch_sums"] = {**load_project(path).history["_epoch_sums"], **bad}
        assert _session(project=proj).epoch_sums == (-1, {}, 0.0), bad
