"""Studio core without Qt: project files, the trainer's loop, its controls and its faults."""

import json
import math
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
    assert back.position == {"epoch": 2, "batch": 0, "step": len(steps)}


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
    assert (tmp_path / "out.checkpoint.darkproj").exists()
