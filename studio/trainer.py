"""The training loop, free of Qt: a :class:`Session` (model, optimizer, data, history) and a
:class:`Trainer` that runs it in a background thread and reports through a ``queue.Queue``.

Events are :class:`Event` objects (``kind`` and a ``data`` dict):

==============  =====================================================================
``started``     epoch, step, total_steps
``step``        step, epoch, batch, batches, loss, acc, lr, images_per_s, eta_s
``epoch``       epoch, train_loss, train_acc, val_loss, val_acc, seconds
``previews``    epoch and the task's preview arrays (numpy)
``checkpoint``  path of the checkpoint written after an epoch
``paused``      reason ("user", or the NaN guard's message)
``resumed``     (nothing)
``log``         text
``skipped``     file, reason, total: an unreadable image left out (``on_error="skip"``)
``error``       message, traceback ("" for bad input), user (True for bad input: data
                that cannot be read or does not fit the model), phase ("training",
                "validation" or "evaluation": what was running); the run stops, model and
                history are kept
``evaluated``   epoch, loss, acc: an evaluation run's validation metrics
``finished``    reason: "completed", "stopped", "error" or "evaluated"
==============  =====================================================================

Pause and stop are thread-safe flags checked before every batch. A non-finite loss pauses
the run before the optimizer step (the weights stay finite). Stopping keeps the position
(epoch, batch, step) and the optimizer state, so starting again continues from the same step
with the same batch order.
"""

from __future__ import annotations

import inspect
import math
import queue
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import darklib as dl
from darklib import optim
from darklib.optim import lr_scheduler
from darklib.utils.data import DataLoader, Subset
from studio.data import DataError, load_data, transform_problem
from studio.modelspec import infer, output_layer
from studio.network import build_model
from studio.project import Project, ProjectError, ProjectSpec, save_project
from studio.tasks import Task, get_task
from studio.tasks.base import to_numpy


@dataclass
class Event:
    kind: str
    data: dict = field(default_factory=dict)


class History:
    """Every logged metric: per step (``step``, ``epoch`` as a float, ``loss``, ``acc``,
    ``lr``) and per epoch (``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc``, ``seconds``). Plain lists, so it serialises to JSON as it is."""

    STEP_KEYS = ("step", "epoch", "loss", "acc", "lr")
    EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")

    def __init__(self, data: dict | None = None):
        data = data or {}
        s, e = data.get("steps") or {}, data.get("epochs") or {}
        self.steps: dict[str, list[float]] = {
            k: [float(v) for v in s.get(k, [])] for k in self.STEP_KEYS
        }
        self.epochs: dict[str, list[float]] = {
            k: [float(v) for v in e.get(k, [])] for k in self.EPOCH_KEYS
        }
        n = min(len(v) for v in self.steps.values())
        m = min(len(v) for v in self.epochs.values())
        for v in self.steps.values():
            del v[n:]
        for v in self.epochs.values():
            del v[m:]

    def add_step(self, **kw: float) -> None:
        for k in self.STEP_KEYS:
            self.steps[k].append(float(kw.get(k, math.nan)))

    def add_epoch(self, **kw: float) -> None:
        for k in self.EPOCH_KEYS:
            self.epochs[k].append(float(kw.get(k, math.nan)))

    def __len__(self) -> int:
        return len(self.steps["step"])

    def to_json(self) -> dict:
        def clean(v: list[float]) -> list:
            return [None if not math.isfinite(x) else x for x in v]

        return {
            "steps": {k: clean(v) for k, v in self.steps.items()},
            "epochs": {k: clean(v) for k, v in self.epochs.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> History:
        def unclean(d: dict) -> dict:
            return {
                k: [math.nan if x is None else x for x in v]
                for k, v in d.items()
                if isinstance(v, list)
            }

        return cls(
            {"steps": unclean(data.get("steps") or {}), "epochs": unclean(data.get("epochs") or {})}
        )


# --------------------------------------------------------------------------- optimizer state


def _flatten_state(obj: Any, prefix: str, tensors: dict[str, np.ndarray]) -> Any:
    """Replace every tensor in a nested state dict by ``{"__tensor__": key}`` (JSON-able)."""
    if hasattr(obj, "array") and hasattr(obj, "detach"):  # a darklib Tensor
        tensors[prefix] = np.array(to_numpy(obj), copy=True)
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        tensors[prefix] = obj.copy()
        return {"__tensor__": prefix}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {
            "__items__": [[k, _flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]
        }
    if isinstance(obj, (list, tuple)):
        return [_flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _unflatten_state(obj: Any, tensors: dict[str, np.ndarray], wrap: Callable) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            key = obj["__tensor__"]
            if key not in tensors:
                raise ValueError(f"optimizer state names a missing tensor {key!r}")
            return wrap(tensors[key])
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__items__" in obj:
            return {k: _unflatten_state(v, tensors, wrap) for k, v in obj["__items__"]}
        return {k: _unflatten_state(v, tensors, wrap) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten_state(v, tensors, wrap) for v in obj]
    return obj


# --------------------------------------------------------------------------- session


def optimizer_arguments(name: str) -> set[str] | None:
    """The keyword arguments darklib's optimizer ``name`` takes (besides params), or None
    when it is unknown or takes ``**kwargs``."""
    cls = getattr(optim, name, None)
    if cls is None:
        return None
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n in sig.parameters if n not in ("self", "params")}


def make_optimizer(spec: ProjectSpec, params: Any) -> Any:
    o = spec.optimizer
    cls = getattr(optim, o.type, None)
    if cls is None:
        raise ValueError(f"darklib.optim has no optimizer {o.type!r}")
    takes = optimizer_arguments(o.type)
    if takes is not None:
        extra = sorted(k for k in o.args if k not in takes)
        if extra:
            raise DataError(
                f"optimizer {o.type} does not take {', '.join(extra)}: remove "
                f"{'it' if len(extra) == 1 else 'them'} from the optimizer's arguments"
            )
    return cls(params, lr=o.lr, **o.args)


def make_scheduler(
    spec: ProjectSpec,
    optimizer: Any,
    steps_per_epoch: int,
    epochs: int | None = None,
    total_steps: int | None = None,
) -> Any:
    """The project's scheduler, fresh, for ``epochs`` (default: the project's) epochs of
    ``steps_per_epoch`` steps; ``total_steps`` overrides OneCycleLR's cycle length."""
    s = spec.schedule
    if s.type == "none":
        return None
    cls = getattr(lr_scheduler, s.type, None)
    if cls is None:
        raise ValueError(f"darklib.optim.lr_scheduler has no scheduler {s.type!r}")
    epochs = int(epochs or spec.training.epochs)
    args = dict(s.args)
    if s.type == "CosineAnnealingLR":
        args.setdefault("T_max", epochs)
    if s.type == "StepLR":
        args.setdefault("step_size", max(1, epochs // 3))
    if s.type == "ExponentialLR":
        args.setdefault("gamma", 0.9)
    if s.type == "OneCycleLR":
        args.setdefault("max_lr", spec.optimizer.lr)
        # the cycle is always the run's plan: the trainer steps it once per batch, and a
        # cycle shorter than that raises once stepped past its end
        args.pop("epochs", None)
        args.pop("steps_per_epoch", None)
        args["total_steps"] = max(1, int(total_steps or epochs * steps_per_epoch))
    return cls(optimizer, **args)


# the arguments of per-epoch schedules that, when they differ, make a stored state stale
_SCHEDULE_ARGS = ("T_max", "eta_min", "step_size", "gamma")


def _jump(scheduler: Any, to: int, closed_form: bool = False) -> None:
    """Move a fresh scheduler to step (or epoch) ``to`` and set the lrs for it."""
    with warnings.catch_warnings():  # the deprecated epoch argument; step before optimizer
        warnings.simplefilter("ignore")
        if closed_form:
            scheduler.step(to)
        else:  # OneCycleLR: get_lr is a function of last_epoch alone
            scheduler.last_epoch = to - 1
            scheduler.step()


def fit_problem(spec: ProjectSpec, num_classes: int) -> str | None:
    """Why the spec's model cannot train on data with ``num_classes`` classes (its output
    size does not match, for classification), or None. Checked before a run starts, so that
    a mismatch is a message instead of an IndexError in the middle of the first epoch. Data
    the task cannot use at all (one class for classification) is a problem too."""
    task = get_task(spec.task)
    problem = task.data_problem(num_classes)
    if problem:
        return problem
    rep = infer(spec.model)
    if not rep.ok:
        return None  # shape errors are reported as such
    head = output_layer(spec.model)
    name = head.name if head is not None else rep.layers[-1].name
    return task.check_fit(rep.output_shape, num_classes, name)


def loss_problem(spec: ProjectSpec) -> str | None:
    """Why the project's loss cannot train its task (a regression loss such as MSELoss for
    classification, an unknown loss, bad arguments), or None."""
    return get_task(spec.task).loss_problem(spec.loss.type, spec.loss.args)


def available_devices() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` where CuPy and a GPU are present."""
    return ["cpu", "cuda"] if dl.cuda.is_available() else ["cpu"]


def pick_device(name: str) -> Any:
    """``"cpu"`` or ``"cuda"`` (raises, with a reason, when no GPU exists)."""
    if name == "cuda":
        if not dl.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but no GPU (CuPy) is available")
        return dl.device("cuda")
    return dl.device("cpu")


class Session:
    """One project opened for training or prediction.

    Builds the model from the spec (loading stored weights), the optimizer (loading stored
    state), the scheduler, the task and the data. ``lock`` guards the weights: the trainer
    holds it for each optimizer step, :meth:`snapshot` for each copy, so a save made while
    training is a consistent state between two steps.
    """

    def __init__(self, project: Project, data: Any = None, device: str | None = None):
        self.project = project
        self.spec = project.spec
        self.task: Task = get_task(self.spec.task)
        self.lock = threading.RLock()
        self.device = pick_device(device or self.spec.training.device)
        self.history = History.from_json(project.history or {})
        self.position = dict(project.position)
        self._data = data
        if not project.model_state:  # a fresh model: its initial weights follow the seed
            dl.manual_seed(self.spec.training.seed)
        self.model = build_model(self.spec.model)
        if project.model_state:
            self._load_model_state(project.model_state)
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.spec, self.model.parameters())
        # what the stored state could not keep ("optimizer changed: ..."): the trainer logs
        # these lines when the run starts
        self.notes: list[str] = []
        self._stale_schedule = False  # the stored schedule state no longer fits the settings
        if project.optim_meta is not None:
            self._restore_optimizer(project.optim_meta, project.optim_tensors)
        self.scheduler = None
        self._scheduler_plan: tuple | None = None  # what the live scheduler was built for
        self.loss_fn = self.task.make_loss(self.spec.loss.type, self.spec.loss.args)
        self.previews: dict[str, Any] = {}
        # (epoch, metric sums, loss sum) of the batches of the epoch being trained; saved
        # with the project, so that an epoch resumed from a file reports all its batches
        self.epoch_sums: tuple[int, dict[str, float], float] = _stored_epoch_sums(
            project.history, self.position
        )

    @property
    def data(self) -> Any:
        """The ImageData: as given, the result of a Future that loads it elsewhere (the GUI's
        loader thread), or loaded here on first use (so in the trainer's thread)."""
        d = self._data
        if d is None:
            d = self._data = load_data(self.spec.dataset, self.spec.model.input_shape)
        elif isinstance(d, Future):
            d = self._data = d.result()
        return d

    def _load_model_state(self, state: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(
            {k: dl.from_numpy(np.array(v)) for k, v in state.items()}, strict=True
        )

    def _load_optim_state(self, meta: dict, tensors: dict[str, np.ndarray]) -> None:
        sd = _unflatten_state(meta, tensors, lambda a: dl.from_numpy(np.array(a)))
        self.optimizer.load_state_dict(sd)

    def _restore_optimizer(self, meta: dict, tensors: dict[str, np.ndarray]) -> None:
        """Load the stored optimizer state, with the settings the user changed since it was
        saved winning over it: another optimizer type starts afresh; a new learning rate,
        weight decay, momentum... is put into the loaded parameter groups (and makes a
        stored learning-rate schedule start again from the new rate)."""
        fresh = [dict(g) for g in self.optimizer.param_groups]
        kind = type(self.optimizer).__name__
        stored_kind = meta.get("optimizer_type") if isinstance(meta, dict) else None
        sd = _unflatten_state(meta, tensors, lambda a: dl.from_numpy(np.array(a)))
        groups = sd.get("param_groups") if isinstance(sd, dict) else None
        # files without the type: the groups' setting names tell the optimizers apart
        names = {k for g in fresh for k in g if k in self.optimizer.defaults}
        stored_names = {k for g in groups or [] for k in g if k != "params"}
        if (stored_kind and stored_kind != kind) or (not stored_kind and not names <= stored_names):
            was = f"from {stored_kind} " if stored_kind else ""
            self.notes.append(
                f"optimizer changed {was}to {kind}: its state starts afresh (the weights are kept)"
            )
            self._stale_schedule = True
            return
        try:
            self.optimizer.load_state_dict(sd)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            self.notes.append(f"the stored optimizer state does not fit ({e}): it starts afresh")
            self.optimizer = make_optimizer(self.spec, self.model.parameters())
            self._stale_schedule = True
            return
        sched = self.spec.schedule
        one_cycle = sched.type == "OneCycleLR"
        cycles_momentum = one_cycle and sched.args.get("cycle_momentum", True)
        changed: set[str] = set()
        for g, f in zip(self.optimizer.param_groups, fresh):
            for k, v in f.items():
                if k in ("params", "lr") or k not in g:
                    continue
                if cycles_momentum and k in ("momentum", "betas"):
                    continue  # the cycle sets these at every step
                if _differs(g[k], v):
                    g[k] = v
                    changed.add(k)
            want = float(sched.args.get("max_lr", self.spec.optimizer.lr)) if one_cycle else None
            if sched.type == "none":
                base = g["lr"]
            elif one_cycle:
                base = g.get("max_lr", g["lr"])
            else:
                base = g.get("initial_lr", g["lr"])
            target = self.spec.optimizer.lr if want is None else want
            if sched.type == "none":
                for k in ("initial_lr", "max_lr", "min_lr"):
                    g.pop(k, None)  # a past schedule's bookkeeping
                if _differs(g["lr"], target):
                    g["lr"] = target
                    changed.add("lr")
            elif _differs(base, target):
                # the schedule starts again from the new rate (rebuilt at the current step)
                for k in ("initial_lr", "max_lr", "min_lr"):
                    g.pop(k, None)
                g["lr"] = self.spec.optimizer.lr
                changed.add("lr")
                self._stale_schedule = True
        if changed:
            self.notes.append(
                "training settings changed since the optimizer state was saved: "
                + ", ".join(sorted(changed))
                + " now as set"
            )

    def ensure_scheduler(self, steps_per_epoch: int, epochs: int, done: int, epoch: int) -> None:
        """Build (or keep) the scheduler for a run of ``epochs`` epochs of ``steps_per_epoch``
        steps, ``done`` steps (``epoch`` epochs) of which are behind us.

        The stored (or live) schedule is restored exactly when it still fits the plan. It no
        longer fits after "train more epochs" or a new batch size, and OneCycleLR would then
        raise once stepped past its old ``total_steps``. What is rebuilt instead:

        - OneCycleLR whose cycle had ended (or a run that had none): a fresh cycle over the
          remaining steps, as fastai's ``fit_one_cycle`` for more epochs: warm up again from
          ``max_lr / div_factor``, peak, anneal to the end of the new run. Stretching the old
          cycle instead would jump from the annealed minimum back to a high rate at once.
        - OneCycleLR stopped mid-cycle (a new batch size or epoch count in mid-run): a cycle
          over the whole new plan, placed at the current step, so that the run goes on as if
          it had been planned this way.
        - per-epoch schedules whose arguments changed (``T_max``, ``step_size`` follow the
          epochs): rebuilt and moved to the current epoch through the closed form.
        """
        plan = (self.spec.schedule.model_dump_json(), steps_per_epoch, epochs)
        if self._scheduler_plan == plan:
            return  # the live scheduler is this plan's: keep it as it is
        if self.scheduler is not None:
            saved = _json_safe(self.scheduler.state_dict())
        elif self._scheduler_plan is None and not self._stale_schedule:
            saved = (self.project.history or {}).get("_scheduler")
            kind = (self.project.history or {}).get("_schedule_type")
            if saved and kind and kind != self.spec.schedule.type:
                self.notes.append(
                    f"schedule changed from {kind} to {self.spec.schedule.type}: it starts "
                    "afresh at the current step"
                )
                saved = None
        else:
            saved = None
        self._scheduler_plan = plan
        groups = [
            {k: g[k] for k in ("betas", "momentum") if k in g} for g in self.optimizer.param_groups
        ]
        total = steps_per_epoch * epochs
        one_cycle = self.spec.schedule.type == "OneCycleLR"
        self.scheduler = make_scheduler(self.spec, self.optimizer, steps_per_epoch, epochs)
        if self.scheduler is None:
            return
        fresh = _json_safe(self.scheduler.state_dict())
        if isinstance(saved, dict) and set(saved) == set(fresh):
            if one_cycle:
                left = int(saved.get("total_steps", 0)) - int(saved.get("last_epoch", 0))
                fits = left == total - done
            else:
                fits = all(saved.get(k) == fresh[k] for k in _SCHEDULE_ARGS if k in fresh)
            if fits:
                self.scheduler.load_state_dict(dict(saved))
                # building the scheduler reset the groups' lr (and OneCycle's momentum)
                for g, kept, lr in zip(
                    self.optimizer.param_groups, groups, self.scheduler.get_last_lr()
                ):
                    g.update(kept)
                    g["lr"] = lr
                return
        else:
            saved = None
        if one_cycle:
            ended = saved is None or int(saved.get("last_epoch", 0)) >= int(
                saved.get("total_steps", 0)
            )
            if ended and done > 0:
                self.scheduler = make_scheduler(
                    self.spec, self.optimizer, steps_per_epoch, epochs, total_steps=total - done
                )
            elif done > 0:
                _jump(self.scheduler, done)
        elif epoch > 0:
            _jump(self.scheduler, epoch, closed_form=True)

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def snapshot(self) -> Project:
        """A consistent copy of everything (weights, optimizer, history, position) as a
        :class:`Project`, safe to save from any thread."""
        with self.lock:
            model_state = {
                k: np.array(to_numpy(v), copy=True) for k, v in self.model.state_dict().items()
            }
            tensors: dict[str, np.ndarray] = {}
            meta = _flatten_state(self.optimizer.state_dict(), "opt", tensors)
            meta["optimizer_type"] = type(self.optimizer).__name__
            history = self.history.to_json()
            epoch, stats, loss_sum = self.epoch_sums
            if epoch == self.position.get("epoch") and self.position.get("batch", 0) > 0:
                history["_epoch_sums"] = {"epoch": epoch, "stats": stats, "loss_sum": loss_sum}
            if self.scheduler is not None:
                history["_scheduler"] = _json_safe(self.scheduler.state_dict())
                history["_schedule_type"] = type(self.scheduler).__name__
            elif (self.project.history or {}).get("_scheduler") and self._scheduler_plan is None:
                # not run since it was opened: the stored schedule is still the newest
                for k in ("_scheduler", "_schedule_type"):
                    if k in self.project.history:
                        history[k] = self.project.history[k]
            return Project(
                spec=self.spec.model_copy(deep=True),
                model_state=model_state,
                optim_tensors=tensors,
                optim_meta=meta,
                position=dict(self.position),
                history=history,
                thumbnail=self.project.thumbnail,
                path=self.project.path,
            )

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Logits for a float32 ``(N, C, H, W)`` batch (eval mode, no gradients)."""
        with self.lock, dl.no_grad():
            was = self.model.training
            self.model.eval()
            try:
                out = self.model(dl.from_numpy(np.ascontiguousarray(images)).to(self.device))
            finally:
                self.model.train(was)
            return to_numpy(out)


def _differs(a: Any, b: Any) -> bool:
    """Whether two optimizer settings differ (tuples and lists alike; floats closely)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) != len(b) or any(_differs(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a != b


def _stored_epoch_sums(history: dict | None, position: dict) -> tuple:
    """The epoch sums a project file kept for its unfinished epoch (see Session.snapshot),
    or none: only for the epoch the position is in, and only plain numbers are taken."""
    none = (-1, {}, 0.0)
    kept = (history or {}).get("_epoch_sums")
    if not isinstance(kept, dict) or not position.get("batch"):
        return none
    epoch, stats, loss_sum = kept.get("epoch"), kept.get("stats"), kept.get("loss_sum")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if (
        epoch != position.get("epoch")
        or not number(loss_sum)
        or not isinstance(stats, dict)
        or not all(isinstance(k, str) and number(v) for k, v in stats.items())
    ):
        return none
    return (epoch, {k: float(v) for k, v in stats.items()}, float(loss_sum))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return None  # callables (LambdaLR) and the like are not saved


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Runs a :class:`Session` for ``epochs`` epochs in a background thread.

    Args:
        session: what to train.
        events: where events go (``queue.Queue``); a new one when omitted.
        epochs: total epochs to reach (default: the project's ``training.epochs``).
        checkpoint: path of the ``.darkproj`` written after every epoch (None: none).
        run_id: a tag stored in each checkpoint's history (``_run_id``), so that the one who
            started the run can tell its own checkpoint from one another run wrote there.
        max_steps_per_epoch / max_val_batches: cap an epoch (tests, previews).
        evaluate_only: no training: one pass over the validation split with the current
            weights (``previews`` and an ``evaluated`` event with its metrics), finishing
            with the reason ``"evaluated"``.
    """

    def __init__(
        self,
        session: Session,
        events: queue.Queue | None = None,
        epochs: int | None = None,
        checkpoint: str | Path | None = None,
        max_steps_per_epoch: int | None = None,
        max_val_batches: int | None = None,
        evaluate_only: bool = False,
        run_id: str | None = None,
    ):
        self.session = session
        self.run_id = run_id
        self.evaluate_only = evaluate_only
        self.events: queue.Queue = events if events is not None else queue.Queue()
        t = session.spec.training
        self.epochs = int(epochs if epochs is not None else t.epochs)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.max_steps = max_steps_per_epoch or t.max_steps_per_epoch
        self.max_val = max_val_batches or t.max_val_batches
        self._stop = threading.Event()
        self._running = threading.Event()  # set while not paused
        self._running.set()
        self._thread: threading.Thread | None = None
        self.finished_reason: str | None = None
        # what the worker is doing: "training", "validation" (an epoch's end) or "evaluation"
        self.phase = "evaluation" if evaluate_only else "training"
        self._skips_told = 0  # unreadable images already reported

    # -- control (any thread) --------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread and return it."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the trainer is already running")
        self._thread = threading.Thread(target=self.run, name="studio-trainer", daemon=True)
        self._thread.start()
        return self._thread

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        if not self._running.is_set():
            self._running.set()
            self._emit("resumed")

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_paused(self) -> bool:
        return not self._running.is_set()

    # -- the loop (worker thread) ----------------------------------------------------------

    def _emit(self, kind: str, **data: Any) -> None:
        self.events.put(Event(kind, data))

    def _report_skips(self) -> None:
        """Report the images left out as unreadable since the last call (a few by name, the
        rest counted): a corrupt file does not stop the run, but the user learns of it."""
        skipped = getattr(self.session.data, "skipped", None) or []
        new = skipped[self._skips_told :]
        if not new:
            return
        self._skips_told = len(skipped)
        for k, (file, reason) in enumerate(new[:5]):
            self._emit(
                "skipped",
                file=file,
                reason=reason,
                total=len(skipped) - len(new) + k + 1,
            )
        if len(new) > 5:
            self._emit(
                "log",
                text=f"... and {len(new) - 5} more unreadable images left out "
                f"({len(skipped)} in all)",
            )

    def _wait_if_paused(self, reason: str = "user") -> None:
        if self._running.is_set():
            return
        self._emit("paused", reason=reason)
        while not self._running.wait(0.05):
            if self._stop.is_set():
                return

    def _batches(self, n_train: int, epoch: int, seen: int, bs: int, limit: int) -> list:
        """The rest of an epoch's batches: its fixed permutation after the ``seen`` samples
        already trained on, cut into batches of ``bs``, at most ``limit`` of them. Counting
        samples rather than batches lets a new batch size continue the same epoch."""
        seed = self.session.spec.training.seed
        order = np.random.default_rng([seed, epoch]).permutation(n_train)[seen:]
        return [order[i : i + bs] for i in range(0, len(order), bs)][: max(0, limit)]

    def batches_per_epoch(self) -> int:
        n = len(self.session.data.train_indices)
        bs = self.session.spec.training.batch_size
        b = math.ceil(n / bs)
        return min(b, self.max_steps) if self.max_steps else b

    def run(self) -> None:
        """The loop; emits events, never raises (errors become ``error`` events)."""
        reason = "completed"
        try:
            reason = self._evaluate() if self.evaluate_only else self._run()
        except BaseException as e:  # keep the model and history, report, stop cleanly
            reason = "error"
            user = isinstance(e, (DataError, ProjectError))  # bad input, not a bug
            self._emit(
                "error",
                message=str(e) if user else f"{type(e).__name__}: {e}",
                traceback="" if user else traceback.format_exc(),
                user=user,
                phase=self.phase,
            )
        self.finished_reason = reason
        self._emit("finished", reason=reason)

    def _evaluate(self) -> str:
        s = self.session
        problem = loss_problem(s.spec) or fit_problem(s.spec, s.data.num_classes)
        if problem:
            raise DataError(problem)
        val = self._validate(s.data.val_dataset(), epoch=int(s.position["epoch"]))
        if self._stop.is_set():
            return "stopped"
        self._emit("evaluated", epoch=int(s.position["epoch"]), **val)
        return "evaluated"

    def _run(self) -> str:
        s = self.session
        t = s.spec.training
        data = s.data
        problem = (
            loss_problem(s.spec)
            or fit_problem(s.spec, data.num_classes)
            or transform_problem(s.spec.dataset.transforms, s.spec.model.input_shape)
        )
        if problem:
            raise DataError(problem)
        train_ds, val_ds = data.train_dataset(), data.val_dataset()
        if len(train_ds) == 0:  # (an epoch of no batches would "complete" with NaN metrics)
            raise DataError(
                f"no training images: the dataset's {len(train_ds) + len(val_ds)} images all "
                "went to the validation split; add images or lower the validation fraction"
            )
        per_epoch = self.batches_per_epoch()
        total = per_epoch * self.epochs
        pos = s.position
        n_train = len(train_ds)
        # samples of the current epoch already trained on (files from before this field
        # existed: batches times the batch size)
        seen = int(pos.get("samples", pos["batch"] * t.batch_size))
        if pos["batch"] and seen != pos["batch"] * t.batch_size:
            # the batch size changed since the stop: the same samples are behind us, in
            # fewer or more batches of the new size
            pos["batch"] = min(seen // t.batch_size, per_epoch)
        pos["samples"] = seen
        # an epoch whose batches are all behind us but which was not recorded (stopped during
        # its validation) trains no more batches: the loop below validates and records it
        pos["batch"] = min(pos["batch"], per_epoch)
        done = min(pos["epoch"] * per_epoch + pos["batch"], total)
        s.ensure_scheduler(per_epoch, self.epochs, done, pos["epoch"])
        self._emit(
            "started", epoch=pos["epoch"], step=pos["step"], total_steps=total, done_steps=done
        )
        for note in s.notes:
            self._emit("log", text=note)
        s.notes.clear()
        if pos["epoch"] >= self.epochs:
            self._emit(
                "log",
                text=f"already trained for {pos['epoch']} epochs: raise Epochs to train more "
                "(the Outputs panel shows the model's predictions)",
            )
            return "completed"
        rate_t0, rate_n = time.perf_counter(), 0
        ips = 0.0
        per_step_s = None
        while pos["epoch"] < self.epochs:
            epoch = pos["epoch"]
            t_epoch = time.perf_counter()
            batches = self._batches(
                n_train, epoch, pos["samples"], t.batch_size, per_epoch - pos["batch"]
            )
            sizes = iter([len(b) for b in batches])
            loader = DataLoader(
                train_ds,
                batch_sampler=batches,
                num_workers=t.num_workers,
                # one seed per epoch: a sample's augmentation follows (seed, index), so a
                # resumed epoch gives its remaining samples the crops of an unbroken run
                seed=t.seed * 100_003 + epoch * 7919,
            )
            # the epoch's sums so far: kept on the session, so that an epoch stopped and
            # started again (same session) reports all its batches, not only the last ones
            kept = s.epoch_sums if s.epoch_sums[0] == epoch and pos["batch"] else None
            stats: dict[str, float] = dict(kept[1]) if kept else {}
            loss_sum = kept[2] if kept else 0.0
            s.model.train()
            it = iter(loader)
            try:
                while True:
                    if self._stop.is_set():
                        return "stopped"
                    self._wait_if_paused()
                    if self._stop.is_set():
                        return "stopped"
                    try:
                        batch = next(it)
                    except StopIteration:
                        break
                    bad = None
                    with s.lock:
                        loss, bstats = s.task.train_step(s.model, batch, s.loss_fn, s.device)
                        lv = float(loss.item())
                        if math.isfinite(lv):
                            s.optimizer.zero_grad()
                            loss.backward()
                            lr = s.current_lr()  # the rate this step uses (before scheduling)
                            s.optimizer.step()
                            if s.scheduler is not None and s.spec.schedule.type == "OneCycleLR":
                                s.scheduler.step()
                            pos["batch"] += 1
                            pos["step"] += 1
                            pos["samples"] += next(sizes)
                            n = bstats.get("count", 0.0)
                            for k, v in bstats.items():
                                stats[k] = stats.get(k, 0.0) + v
                            loss_sum += lv * n
                            s.epoch_sums = (epoch, stats, loss_sum)
                            acc = bstats["correct"] / n if "correct" in bstats and n else math.nan
                            frac = epoch + pos["batch"] / per_epoch
                            s.history.add_step(
                                step=pos["step"], epoch=frac, loss=lv, acc=acc, lr=lr
                            )
                        else:
                            pos["batch"] += 1  # resuming skips the bad batch
                            pos["samples"] += next(sizes)
                            bad = (
                                f"loss is {lv} in the batch after step {pos['step']} (epoch "
                                f"{epoch + 1}); paused before its update, so the weights are "
                                f"those of step {pos['step']}. Lower the learning rate, or "
                                "resume to skip this batch; if every batch diverges now, "
                                "stop and roll back to the last epoch's checkpoint."
                            )
                        del loss
                    if bad is not None:
                        self._running.clear()
                        self._emit("log", text=bad)
                        self._wait_if_paused(reason=bad)
                        continue
                    rate_n += int(n)
                    now = time.perf_counter()
                    if now - rate_t0 >= 0.5:
                        ips = rate_n / (now - rate_t0)
                        per_step_s = (now - rate_t0) / max(1, rate_n / max(n, 1))
                        rate_t0, rate_n = now, 0
                    self._report_skips()
                    done = epoch * per_epoch + pos["batch"]
                    eta = (total - done) * per_step_s if per_step_s else math.nan
                    self._emit(
                        "step",
                        step=pos["step"],
                        epoch=epoch,
                        batch=pos["batch"],
                        batches=per_epoch,
                        loss=lv,
                        acc=acc,
                        lr=lr,
                        images_per_s=ips,
                        eta_s=eta,
                        total_steps=total,
                        done_steps=done,
                        count=int(n),
                        time=now,
                    )
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()
            # ---- end of epoch: validation, schedule, checkpoint
            self.phase = "validation"
            val = self._validate(val_ds)
            self.phase = "training"
            if self._stop.is_set():
                # stopped during validation: the epoch is not finished; the position stays at
                # its end, so the next Start validates and records it
                return "stopped"
            with s.lock:
                if s.scheduler is not None and s.spec.schedule.type != "OneCycleLR":
                    s.scheduler.step()
                n = stats.get("count", 0.0)
                rec = {
                    "epoch": epoch + 1,
                    "train_loss": loss_sum / n if n else math.nan,
                    "train_acc": stats.get("correct", math.nan) / n if n else math.nan,
                    "val_loss": val.get("loss", math.nan),
                    "val_acc": val.get("acc", math.nan),
                    "seconds": time.perf_counter() - t_epoch,
                }
                s.history.add_epoch(**rec)
                pos["epoch"], pos["batch"], pos["samples"] = epoch + 1, 0, 0
            self._emit("epoch", **rec)
            if self.checkpoint is not None:
                snap = s.snapshot()
                if self.run_id:
                    snap.history["_run_id"] = self.run_id
                save_project(snap, self.checkpoint)
                self._emit("checkpoint", path=str(self.checkpoint))
        return "completed"

    def _validate(self, val_ds: Any, epoch: int | None = None) -> dict[str, float]:
        """Metrics over the validation split; emits the previews (of ``epoch``, by default
        the epoch being trained)."""
        s = self.session
        t = s.spec.training
        positions = np.arange(len(val_ds))
        if self.max_val and len(val_ds) > self.max_val * t.batch_size:
            # a partial validation: a fixed sample that mixes the classes (the first batches
            # of a split sorted by class would hold one class only)
            positions = s.data.val_positions(self.max_val * t.batch_size)
            val_ds = Subset(val_ds, positions.tolist())
        loader = DataLoader(
            val_ds, batch_size=t.batch_size, shuffle=False, num_workers=t.num_workers
        )
        stats: dict[str, float] = {}
        outs: dict[str, list[np.ndarray]] = {}
        with s.lock, dl.no_grad():
            s.model.eval()
            try:
                for batch in loader:
                    if self._stop.is_set():
                        break
                    bstats, bout = s.task.eval_step(s.model, batch, s.loss_fn, s.device)
                    for k, v in bstats.items():
                        stats[k] = stats.get(k, 0.0) + v
                    for k, v in bout.items():
                        outs.setdefault(k, []).append(v)
            finally:
                s.model.train()
        self._report_skips()
        if not stats:
            return {}
        cat = {k: np.concatenate(v) for k, v in outs.items()}
        cat["index"] = np.asarray(s.data.val_indices[positions[: len(next(iter(cat.values())))]])
        s.previews = s.task.previews(cat, s.data.num_classes)
        s.previews["index"] = cat["index"]
        s.previews["classes"] = [str(c) for c in s.data.classes]
        shown = s.position["epoch"] + 1 if epoch is None else epoch
        self._emit("previews", epoch=shown, **s.previews)
        return s.task.metrics(stats)
