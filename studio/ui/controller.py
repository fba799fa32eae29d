"""The controller between the panels and the Qt-free core.

It owns the open :class:`~studio.project.Project`, the training
:class:`~studio.trainer.Session` and :class:`~studio.trainer.Trainer`, and the event queue.
A QTimer on the GUI thread drains the queue at 20 Hz and re-emits the events as Qt signals
in batches, so widgets are only ever touched on the GUI thread and a flood of step events
costs one redraw per tick.

The data (generating a procedural set, reading MNIST or listing a folder can take seconds)
is loaded by a background thread: :meth:`Controller.request_data` returns it when ready and
otherwise starts loading it, and ``dataReady`` / ``dataFailed`` follow on the GUI thread.
"""

from __future__ import annotations

import hashlib
import queue
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Qt, QTimer, Signal

from studio.data import DataError, ImageData, build_transform, load_data, transform_problem
from studio.imaging import project_thumbnail
from studio.modelspec import infer, with_outputs
from studio.project import (
    SUFFIX,
    ModelSpec,
    Project,
    ProjectError,
    ProjectSpec,
    load_project,
    save_project,
)
from studio.tasks import get_task
from studio.trainer import Event, History, Session, Trainer, fit_problem, loss_problem

DRAIN_MS = 50  # 20 Hz
MAX_RECENT = 8
MAX_UNDO = 20
NO_PROJECT = "no project is open: open one, or pick a sample on the Start page"


class Controller(QObject):
    """State of the open project and its training run."""

    projectChanged = Signal()  # a project was opened or created
    specChanged = Signal(str)  # part: "model", "dataset", "training"
    dataReady = Signal()  # the current spec's data is loaded (controller.data_now())
    dataFailed = Signal(str)  # loading it failed: the message names the place
    _loaded = Signal(object)  # a finished Future, from the loader thread
    events = Signal(list)  # a batch of trainer Events, in order
    stateChanged = Signal(str)  # idle, running, paused, stopping
    dirtyChanged = Signal(bool)
    message = Signal(str)
    # the weights, optimizer state, position and history were replaced (dropped by a model
    # edit, or brought back by Undo): views of the history redraw from scratch
    trainingReset = Signal()
    undoChanged = Signal(bool)  # whether a model edit can be undone
    # the predictions kept were computed on other data (the dataset changed): views drop them
    previewsDropped = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.session: Session | None = None
        self.trainer: Trainer | None = None
        self.queue: queue.Queue = queue.Queue()
        self._data: ImageData | None = None
        self._data_key: str | None = None
        self._future: Future | None = None
        self._future_key: str | None = None
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-data")
        self._loaded.connect(self._on_loaded, Qt.QueuedConnection)
        self.history = History()
        self.previews: dict[str, Any] = {}
        self._previews_key: str | None = None  # the data (``_key``) the previews were made on
        self._run_key: str | None = None  # the data of the run going on
        # this window's runs of the open project tag their checkpoints with ``_run_id`` and
        # ``_checkpoint`` is the file the last of them wrote: a roll back restores only that
        # (another window, or an earlier session, of the same sample writes the same file)
        self._run_id = uuid.uuid4().hex
        self._checkpoint: Path | None = None
        self.state = "idle"
        self.dirty = False
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)
        self.settings = QSettings("DarkStudio", "DarkStudio")
        self._undo: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ project

    def open(self, path: str | Path) -> Project:
        """Open a project file (raises ProjectError; nothing changes then)."""
        if self.is_training:
            raise RuntimeError("stop training before opening another project")
        proj = load_project(path)
        self._set_project(proj)
        self.add_recent(str(path))
        if proj.notes:  # what opening changed (a history without weights was cleared)
            self._set_dirty(True)  # the project differs from its file now
            for note in proj.notes:
                self.message.emit(note)
        return proj

    def new_from(self, proj: Project) -> None:
        if self.is_training:
            raise RuntimeError("stop training before opening another project")
        self._set_project(proj)

    def _set_project(self, proj: Project) -> None:
        self.project = proj
        self.session = None
        self.trainer = None
        self._run_id = uuid.uuid4().hex  # checkpoints found on disk are not this window's
        self._checkpoint = None
        self._forget_data()
        self.history = History.from_json(proj.history or {})
        self.previews = {}
        self._previews_key = None
        self._clear_undo()
        self._set_dirty(False)
        self.projectChanged.emit()

    @property
    def spec(self) -> ProjectSpec:
        if self.project is None:  # callers check ``has_project`` first; say what is wrong
            raise RuntimeError(NO_PROJECT)
        return self.project.spec

    @property
    def has_project(self) -> bool:
        return self.project is not None

    @property
    def has_trained_weights(self) -> bool:
        """Weights that training produced (stored in the project or in the live session)."""
        if self.project is None:
            return False
        return self.project.trained or (
            self.session is not None and self.session.position.get("step", 0) > 0
        )

    def fit_problem(self) -> str | None:
        """Why the model cannot train on the loaded data (output size and class count), or
        None; None too while the data is not loaded."""
        d = self.data_now() if self.project is not None else None
        return None if d is None else fit_problem(self.spec, d.num_classes)

    def class_problem(self, num_classes: int) -> str | None:
        """Why data of ``num_classes`` classes cannot serve the project's task (fewer than 2
        for classification), or None."""
        if self.project is None:
            return None
        return get_task(self.spec.task).data_problem(num_classes)

    @property
    def data_locked(self) -> str | None:
        """Why the data cannot change now (a run or an evaluation is going on: it reads the
        images it was started with), or None."""
        if self.state == "idle":
            return None
        what = "evaluation" if self.state == "evaluating" else "training"
        return f"the data cannot change during {what}: stop it first"

    def fit_output_to(self, num_classes: int) -> str | None:
        """After choosing a data folder: make the model's output layer give ``num_classes``
        scores, so that dropping a folder is enough to train on it. Done only while the
        model is untrained (a resized layer means fresh weights for the whole model, and
        trained weights are the user's work): otherwise the mismatch is reported and left to
        the user. Returns the message shown, or None when the model already fits."""
        if self.project is None or self.is_training:
            return None
        bad_data = self.class_problem(num_classes)
        if bad_data:  # no output layer of 1 score: say it, leave the model alone
            self.message.emit(bad_data)
            return bad_data
        problem = fit_problem(self.spec, num_classes)
        if not problem:
            return None
        resized = None if self.has_trained_weights else with_outputs(self.spec.model, num_classes)
        if resized is None:
            self.message.emit(problem)
            return problem
        model, name, old = resized
        self.spec.model = model
        self.mark_changed("model")
        msg = (
            f"output layer '{name}' now gives {num_classes} class scores (was {old}), one per "
            "class of the new data"
        )
        self.message.emit(msg)
        return msg

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirtyChanged.emit(dirty)

    @property
    def has_training_work(self) -> bool:
        """Weights, or a history of metrics, that training produced: the user's work."""
        return self.has_trained_weights or len(self.history) > 0

    def weights_survive(self, model: ModelSpec) -> bool:
        """Whether the trained weights stay valid for ``model``: the same layers with
        parameters or buffers (type and every tensor's name and shape), matched by name (a
        layer renamed in place pairs with its old self). Moving layers (they take their
        weights along), renaming, adding parameter-free layers, or changing arguments that
        hold no tensor (an activation, dropout's p, a stride that keeps the shapes) keeps
        them."""
        return state_mapping(self.spec.model, model) is not None

    def set_model(self, model: ModelSpec, confirm: Any = None) -> bool:
        """Make ``model`` the project's model. Trained weights are kept when they stay valid
        (:meth:`weights_survive`, renamed to the new layer names); otherwise ``confirm(text)``
        is asked first (False: nothing changes) and they are dropped with the optimizer
        state, position and history. Either way :meth:`undo_model` brings back the model and
        everything training had produced. Returns whether the model changed."""
        if self.project is None or self.is_training:
            return False
        old = self.spec.model
        if model.model_dump() == old.model_dump():
            return True
        work = self.has_training_work
        mapping = state_mapping(old, model) if work else None
        keep = mapping is not None
        if work and not keep and confirm is not None:
            trained = self.project.position.get("step", 0)
            if self.session is not None:
                trained = self.session.position.get("step", 0)
            text = (
                "This change alters the shapes of the network's parameters, so the trained "
                f"weights ({trained:,} steps), the optimizer state and the training history "
                "no longer fit it and would be dropped.\n\nApply it? (Edit > Undo, Ctrl+Z, "
                "brings them back.)"
            )
            if not confirm(text):
                self.message.emit("model edit cancelled: the trained weights are kept")
                return False
        self._save_session_to_project()  # the live weights become the stored ones
        self._push_undo()
        p = self.project
        if keep:
            p.model_state = _rename_state(p.model_state, mapping)
            note = "model changed; the trained weights still fit it and are kept"
            moved = [mapping[n] for n in _holders(old)] != _holders(model)
            if moved and p.optim_meta is not None:
                # layers moved: the optimizer's state is stored by parameter position and
                # would land on other layers (Adam's moments of a (16,) bias on a (16, 16)
                # weight crashed the next step): it starts afresh
                p.optim_tensors, p.optim_meta = {}, None
                note += " (layers moved: the optimizer's state starts afresh)"
            self.message.emit(note)
        self.spec.model = model
        if work and not keep:
            self._drop_training()
        self.session = None
        self._set_dirty(True)
        self.specChanged.emit("model")
        return True

    def _drop_training(self) -> None:
        p = self.project
        p.model_state, p.optim_tensors, p.optim_meta = {}, {}, None
        p.position = {"epoch": 0, "batch": 0, "step": 0}
        p.history = {}
        self.history = History()
        self.previews = {}
        self.message.emit(
            "model changed: the trained weights, optimizer state and history were dropped "
            "(Ctrl+Z brings them back)"
        )
        self.trainingReset.emit()

    def _push_undo(self, what: str = "model edit") -> None:
        p = self.project
        self._undo.append(
            {
                "what": what,
                "model": p.spec.model.model_copy(deep=True),
                "model_state": p.model_state,  # replaced, never changed in place: no copy
                "optim_tensors": p.optim_tensors,
                "optim_meta": p.optim_meta,
                "position": dict(p.position),
                "history": self.history.to_json()
                | {k: v for k, v in (p.history or {}).items() if k.startswith("_")},
                "previews": self.previews,
                "previews_key": self._previews_key,
            }
        )
        del self._undo[:-MAX_UNDO]
        self.undoChanged.emit(True)

    def _clear_undo(self) -> None:
        if self._undo:
            self._undo.clear()
            self.undoChanged.emit(False)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self.project is not None and not self.is_training

    def undo_model(self) -> bool:
        """Undo the last model edit (or rollback): the model as it was, with its weights,
        optimizer state, position and history."""
        if not self.can_undo:
            return False
        e = self._undo.pop()
        p = self.project
        had = self.has_training_work
        self.session = None
        self.spec.model = e["model"]
        p.model_state, p.optim_tensors, p.optim_meta = (
            e["model_state"],
            e["optim_tensors"],
            e["optim_meta"],
        )
        p.position = e["position"]
        p.history = e["history"]
        self.history = History.from_json(e["history"])
        self.previews = e["previews"]
        self._previews_key = e.get("previews_key")
        self._drop_stale_previews()
        self._set_dirty(True)
        self.message.emit(
            f"undid the {e['what']}" + (": the trained weights are back" if p.trained else "")
        )
        self.specChanged.emit("model")
        if had or self.has_training_work:
            self.trainingReset.emit()
        self.undoChanged.emit(bool(self._undo))
        return True

    def rollback_problem(self) -> str | None:
        """Why :meth:`rollback` cannot run now, or None."""
        if self.project is None:
            return NO_PROJECT
        if self.is_training:
            return "stop the run first"
        if self._checkpoint is None:
            return (
                "there is no checkpoint yet: one is written at the end of every epoch of a "
                "run started in this window (checkpoints left by other windows or earlier "
                "sessions are never used)"
            )
        if not self._checkpoint.is_file():
            return f"the checkpoint of this window's run is gone ({self._checkpoint})"
        return None

    def rollback(self) -> bool:
        """Bring back the weights, optimizer state, position and history of the checkpoint
        written after the last finished epoch: the way out of a run that diverged (its
        weights blew up, so every later batch hits the NaN guard). Undo (Ctrl+Z) returns to
        the state before. False, with a message saying why, when it cannot."""
        problem = self.rollback_problem()
        ckpt = None
        if problem is None:
            try:
                ckpt = load_project(self._checkpoint)
            except (ProjectError, OSError) as e:
                problem = f"the checkpoint cannot be read: {e}"
            else:
                if (ckpt.history or {}).get("_run_id") != self._run_id:
                    problem = (
                        f"the checkpoint {self._checkpoint} was overwritten by another "
                        "window's run of this project; it is not this run's and is not used"
                    )
                elif ckpt.spec.model != self.spec.model or not ckpt.trained:
                    problem = "the checkpoint holds another model (the model was edited since)"
        if problem:
            self.message.emit(f"cannot roll back: {problem}")
            return False
        self._save_session_to_project()
        self._push_undo("rollback")
        p = self.project
        p.model_state, p.optim_tensors, p.optim_meta = (
            ckpt.model_state,
            ckpt.optim_tensors,
            ckpt.optim_meta,
        )
        p.position = dict(ckpt.position)
        p.history = {k: v for k, v in (ckpt.history or {}).items() if k != "_run_id"}
        self.history = History.from_json(p.history)
        self.session = None
        self.previews = {}
        self._set_dirty(True)
        self.message.emit(
            f"rolled back to the checkpoint after epoch {p.position.get('epoch', 0)} "
            f"(step {p.position.get('step', 0)}); Ctrl+Z undoes it"
        )
        self.trainingReset.emit()
        return True

    def mark_changed(self, part: str) -> None:
        """A panel changed the spec. ``"model"``: the model was replaced in place (prefer
        :meth:`set_model`, which keeps weights that still fit and can be undone); it drops
        the trained weights. Dataset changes drop the loaded data; training settings apply
        at the next Start."""
        if part == "model":
            self.session = None
            if self.project is not None and self.has_training_work:
                self._drop_training()
        elif part == "dataset":
            self._forget_data()
            if self.session is not None:
                self.session._data = None
            self._drop_stale_previews()
        elif part == "optimizer" and self.session is not None:
            self.message.emit("optimizer changed: its state starts afresh")
            self._save_session_to_project(drop_optimizer=True)
        self._set_dirty(True)
        self.specChanged.emit(part)

    def _drop_stale_previews(self) -> None:
        """Forget predictions made on other data than the current spec's (their indices and
        class numbers mean nothing for the new images)."""
        if self.project is None or self._previews_key == self._key():
            return
        self._previews_key = None
        if self.session is not None:
            self.session.previews = {}
        had = bool(self.previews)
        self.previews = {}
        if had:
            self.message.emit("the data changed: the predictions shown were dropped")
        self.previewsDropped.emit()

    def _save_session_to_project(self, drop_optimizer: bool = False) -> None:
        if self.session is None or self.project is None:
            return
        snap = self.session.snapshot()
        snap.spec = self.project.spec
        if drop_optimizer:
            snap.optim_meta, snap.optim_tensors = None, {}
        snap.path = self.project.path
        self.project = snap
        self.session = None

    # ------------------------------------------------------------------ data

    def _key(self) -> str:
        # transforms are not part of the key: they are swapped on the loaded data
        ds = self.spec.dataset.model_dump_json(exclude={"transforms"})
        return ds + str(self.spec.model.input_shape)

    def _forget_data(self) -> None:
        self._data = None
        self._data_key = None
        if self._future is not None:
            self._future.cancel()  # a load not started is dropped, one running ends unseen
        self._future = None
        self._future_key = None

    def _data_future(self) -> Future:
        """The load of the current spec's data, started in the loader thread if needed."""
        key = self._key()
        if self._future is None or self._future_key != key:
            if self._future is not None:
                self._future.cancel()  # superseded: dropped if it has not started yet
            spec = self.spec.dataset.model_copy(deep=True)
            shape = list(self.spec.model.input_shape)
            self._future, self._future_key = self._loader.submit(load_data, spec, shape), key
            self._future.add_done_callback(self._loaded.emit)
        return self._future

    def data_now(self) -> ImageData | None:
        """The data if it is loaded for the current spec, else None (never waits)."""
        if self._data is not None and self._data_key == self._key():
            return self._data
        return None

    def request_data(self) -> ImageData | None:
        """The data when it is ready; otherwise start loading it in the background and return
        None (``dataReady`` or ``dataFailed`` follows). Raises the loader's DataError when
        it already failed."""
        d = self.data_now()
        if d is not None:
            return d
        fut = self._data_future()
        return self._take(fut) if fut.done() else None

    def data(self) -> ImageData:
        """The project's data, waiting for the loader when needed (raises DataError)."""
        d = self.data_now()
        return d if d is not None else self._take(self._data_future())

    def _take(self, fut: Future) -> ImageData:
        d = fut.result()
        if fut is self._future and self._data is not d:
            d.transform = build_transform(self.spec.dataset.transforms)  # edited meanwhile?
            self._data, self._data_key = d, self._future_key
            self.dataReady.emit()
        return d

    def _on_loaded(self, fut: Future) -> None:
        if fut is not self._future:
            return  # the spec changed while it loaded
        try:
            self._take(fut)
        except Exception as e:
            self.dataFailed.emit(str(e))

    # ------------------------------------------------------------------ training

    @property
    def is_training(self) -> bool:
        return self.trainer is not None and self.trainer.is_alive

    def ensure_session(self) -> Session:
        """The training session; its data may still be loading (the trainer thread waits
        for it, the GUI does not)."""
        if self.session is None:
            if self.project is None:
                raise RuntimeError(NO_PROJECT)
            self.session = Session(self.project, data=self.data_now() or self._data_future())
            self.session.history = self.history
        if self.session._data is None:
            self.session._data = self.data_now() or self._data_future()
        return self.session

    def checkpoint_path(self) -> Path:
        p = self.project.path if self.project else None
        if p is not None and p.suffix == SUFFIX:
            return p.with_name(p.stem + ".checkpoint" + SUFFIX)
        base = Path(QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation))
        base = base / "DarkStudio"
        name = "".join(c if c.isalnum() else "_" for c in self.spec.name) or "project"
        if p is not None:  # a .json project: its file tells two copies of one sample apart
            name += "-" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:8]
        return base / "checkpoints" / (name + ".checkpoint" + SUFFIX)

    def start(
        self,
        max_steps_per_epoch: int | None = None,
        max_val_batches: int | None = None,
        checkpoint: bool = True,
    ) -> None:
        if self.is_training:
            return
        if self.project is None:
            raise RuntimeError(NO_PROJECT)
        problem = self.start_problem()
        if problem:
            raise DataError(problem)
        session = self.ensure_session()
        self._run_key = self._key()
        self._clear_undo()  # new training work: undoing an old edit would lose it
        self.queue = queue.Queue()
        self.trainer = Trainer(
            session,
            self.queue,
            epochs=self.spec.training.epochs,
            checkpoint=self.checkpoint_path() if checkpoint else None,
            max_steps_per_epoch=max_steps_per_epoch,
            max_val_batches=max_val_batches,
            run_id=self._run_id,
        )
        self.trainer.start()
        self._set_state("running")
        self._set_dirty(True)
        self.timer.start()

    def start_problem(self) -> str | None:
        """Why training cannot start, known before any thread runs: a model that does not
        check out, a loss that does not fit the task, a transform that cannot work on the
        images or gives another size than the model takes, an output size that does not
        match the classes (these last ones once the data is loaded; the trainer checks them
        again)."""
        err = infer(self.spec.model).first_error()
        if err:
            return f"the model is invalid: {err}"
        problem = loss_problem(self.spec)
        if problem:
            return problem
        problem = transform_problem(self.spec.dataset.transforms, self.spec.model.input_shape)
        if problem:
            return problem
        return self.fit_problem()

    def evaluate(self, max_val_batches: int | None = None) -> bool:
        """Run the stored weights over the validation split in the background (no training):
        previews and validation metrics follow as events. False when there is nothing to
        evaluate (no trained weights) or a run is going on."""
        problem = self.evaluate_problem()
        if problem:
            if self.project is not None and not self.is_training:
                self.message.emit(f"cannot evaluate: {problem}")
            return False
        try:
            session = self.ensure_session()
        except Exception as e:  # bad optimizer or loss settings in the file: say what
            self.message.emit(f"cannot evaluate: {e}")
            return False
        self._run_key = self._key()
        self.queue = queue.Queue()
        self.trainer = Trainer(
            session, self.queue, max_val_batches=max_val_batches, evaluate_only=True
        )
        self.trainer.start()
        self._set_state("evaluating")
        self.timer.start()
        return True

    def evaluate_problem(self) -> str | None:
        """Why :meth:`evaluate` cannot run now, or None: no project or trained weights, a run
        going on, a model that does not check out or does not fit the loaded data's classes
        (known once the data is loaded)."""
        if self.project is None:
            return NO_PROJECT
        if self.is_training:
            return "a run is going on"
        if not self.has_trained_weights:
            return "there are no trained weights yet: train the model first"
        err = infer(self.spec.model).first_error()
        if err:
            return f"the model is invalid: {err}"
        return loss_problem(self.spec) or self.fit_problem()

    def pause(self) -> None:
        if self.is_training and not self.trainer.is_paused:
            self.trainer.pause()

    def resume(self) -> None:
        if self.is_training and self.trainer.is_paused:
            self.trainer.resume()
            self._set_state("running")

    def stop(self, wait: float = 0.0) -> bool:
        """Ask the worker to stop after its batch; with ``wait`` block up to that many
        seconds (draining events) and say whether it ended."""
        if not self.is_training:
            return True
        self.trainer.stop()
        self._set_state("stopping")
        if wait:
            deadline = time.monotonic() + wait
            while self.trainer.is_alive and time.monotonic() < deadline:
                self.trainer.join(0.05)
            self.drain()
            return not self.trainer.is_alive
        return False

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def drain(self) -> None:
        """Move queued trainer events to the GUI (runs on the GUI thread, from the timer)."""
        batch: list[Event] = []
        try:
            while len(batch) < 5000:
                batch.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        if not batch:
            if self.trainer is not None and not self.trainer.is_alive and self.state != "idle":
                self._set_state("idle")
                self.timer.stop()
            return
        for ev in batch:
            if ev.kind == "paused":
                self._set_state("paused")
            elif ev.kind == "resumed":
                self._set_state("running")
            elif ev.kind == "previews":
                self.previews = dict(ev.data)
                self._previews_key = self._run_key
            elif ev.kind == "checkpoint":  # where this run wrote it (Save As moves the project)
                self._checkpoint = Path(ev.data["path"])
        self.events.emit(batch)
        if any(ev.kind == "finished" for ev in batch):
            self._set_state("idle")

    # ------------------------------------------------------------------ saving

    def snapshot(self) -> Project:
        """A consistent copy of the project, weights included (safe while training)."""
        if self.project is None:
            raise RuntimeError(NO_PROJECT)
        if self.session is not None:
            snap = self.session.snapshot()
            snap.spec = self.project.spec.model_copy(deep=True)
        else:
            p = self.project
            snap = Project(
                spec=p.spec.model_copy(deep=True),
                model_state=p.model_state,
                optim_tensors=p.optim_tensors,
                optim_meta=p.optim_meta,
                position=dict(p.position),
                history=self.history.to_json(),
                thumbnail=p.thumbnail,
                path=p.path,
            )
        if snap.thumbnail is None:
            snap.thumbnail = self.thumbnail()
        return snap

    def thumbnail(self) -> bytes | None:
        d = self.data_now()
        if d is None:
            return None
        idx = d.val_indices[:16]
        return project_thumbnail([d.image(int(i)) for i in idx])

    def save(self, path: str | Path | None = None) -> Path:
        """Save (atomically) to ``path`` or the project's own ``.darkproj``."""
        if self.project is None:
            raise RuntimeError(NO_PROJECT)
        if path is None:
            path = self.project.path
            if path is None or Path(path).suffix != SUFFIX:
                raise ValueError("choose a file name (Save As)")
        path = Path(path)
        if path.suffix != SUFFIX:
            path = path.with_suffix(SUFFIX)
        snap = self.snapshot()
        save_project(snap, path)
        self.project.path = path
        if self.session is not None:
            self.session.project.path = path
        self.add_recent(str(path))
        self._set_dirty(False)
        return path

    # ------------------------------------------------------------------ recent files

    def recent(self) -> list[str]:
        val = self.settings.value("recent", [])
        if isinstance(val, str):
            val = [val]
        return [p for p in (val or []) if isinstance(p, str)]

    def add_recent(self, path: str) -> None:
        p = str(Path(path).resolve())
        items = [p] + [r for r in self.recent() if r != p]
        self.settings.setValue("recent", items[:MAX_RECENT])

    def clear_recent(self) -> None:
        self.settings.setValue("recent", [])


def state_mapping(old: ModelSpec, new: ModelSpec) -> dict[str, str] | None:
    """Which old layer's tensors each of ``new``'s layers holding tensors takes, as
    ``{old name: new name}``, or None when the weights do not carry over. Layers pair up by
    name first (so a moved layer keeps its own weights); the layers left on both sides (a
    layer renamed in place) pair up in order. Every pair must hold the same tensors (type,
    names and shapes)."""

    def layers(model: ModelSpec) -> list[tuple[str, tuple]] | None:
        rep = infer(model)
        if rep.first_error():
            return None
        return [
            (li.name, (li.type, tuple((k, tuple(sh), p) for k, (sh, p) in li.state.items())))
            for li in rep.layers
            if li.state
        ]

    a, b = layers(old), layers(new)
    if a is None or b is None or len(a) != len(b):
        return None
    a_names, b_names = {n for n, _ in a}, {n for n, _ in b}
    left_a = [(n, lay) for n, lay in a if n not in b_names]
    left_b = [(n, lay) for n, lay in b if n not in a_names]
    pairs = [(n, n) for n, _ in a if n in b_names]
    pairs += [(x, y) for (x, _), (y, _) in zip(left_a, left_b)]
    la, lb = dict(a), dict(b)
    if any(la[x] != lb[y] for x, y in pairs):
        return None
    return dict(pairs)


def _holders(model: ModelSpec) -> list[str]:
    """The names of a (valid) model's layers that hold tensors, in order."""
    return [li.name for li in infer(model).layers if li.state]


def _rename_state(state: dict, names: dict[str, str]) -> dict:
    """``state`` with its layer names mapped by ``names`` (:func:`state_mapping`)."""
    out = {}
    for k, v in state.items():
        layer, dot, rest = k.partition(".")
        out[names.get(layer, layer) + dot + rest if dot else k] = v
    return out
