"""Training panel: hyper-parameters, Start / Pause / Resume / Stop, progress, live curves of
loss and accuracy (per step and per epoch) and the log."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.cli import _fmt_time
from studio.data import DataError
from studio.trainer import available_devices, optimizer_arguments
from studio.ui.theme import color, style_plot
from studio.ui.widgets import (
    MetricTile,
    RateSpinBox,
    Series,
    TileRow,
    fmt_metric,
    pen,
    section,
    title,
)

OPTIMIZERS = ["Adam", "AdamW", "SGD", "RMSprop"]
# the plots' margin around their ranges, a fraction of the range: the last epoch's marker
# and an accuracy of 1 are drawn whole, not cut in half by the edge
PAD = 0.05
PLOT_MS = 200  # curves and tiles are redrawn at most this often (5 Hz): a repaint is the cost
SCHEDULES = ["none", "StepLR", "CosineAnnealingLR", "ExponentialLR", "OneCycleLR"]


def _nice_top(v: float) -> float:
    """A round upper bound just above ``v`` (1.2 -> 1.25, 2.31 -> 2.5, 0.07 -> 0.08)."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0):
        if v <= m * e:
            return m * e
    return 10 * e


def skipped_text(d: dict) -> str:
    """One line for a ``skipped`` event: which file, why, how many so far."""
    reason = d.get("reason", "")
    file = d.get("file", "")
    why = reason if file and file in reason else f"{file}: {reason}"
    total = int(d.get("total", 1))
    return f"left out an unreadable image ({total} so far; the run goes on): {why}"


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class Smoother:
    """An exponential moving average with bias correction (TensorBoard's smoothing), fed
    point by point: the readable trend through noisy per-step values."""

    def __init__(self, weight: float = 0.9):
        self.weight = weight
        self.reset()

    def reset(self) -> None:
        self.avg, self.n = 0.0, 0

    def __call__(self, values: Sequence[float]) -> list[float]:
        out = []
        for v in values:
            if math.isfinite(v):
                self.avg = self.weight * self.avg + (1 - self.weight) * v
                self.n += 1
            out.append(self.avg / (1 - self.weight**self.n) if self.n else math.nan)
        return out


def _curves(w: pg.PlotWidget) -> tuple[Series, Series, Series, Series]:
    """The four series of a metric plot: per step (faint), smoothed, the epoch's training
    mean (dots) and validation (line and dots, the second colour)."""
    dots = dict(symbol="o", symbolSize=8, symbolPen=pg.mkPen(color("BG"), width=1.0))
    faint = pg.mkPen(color("TRAIN") + "30", width=1.0, cosmetic=True)  # the noise, in the back
    return (
        Series(w.plot(name="train (step)", pen=faint)),
        Series(w.plot(name="train (smoothed)", pen=pen("TRAIN", 2.4))),
        Series(w.plot(name="train (epoch mean)", pen=None, symbolBrush=color("TRAIN"), **dots)),
        Series(
            w.plot(
                name="validation",
                pen=pen("VALID", 2.0),
                symbolBrush=color("VALID"),
                **{**dots, "symbol": "s", "symbolPen": pg.mkPen(color("VALID"))},
            )
        ),
    )


def _faded(hex_colour: str, alpha: float = 0.4) -> str:
    """``#rrggbb`` as a CSS ``rgba()`` (Qt's rich text reads ``#rrggbbaa`` as ``#aarrggbb``)."""
    r, g, b = (int(hex_colour[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _legend() -> QLabel:
    """One legend for both plots, in a line above them: inside a plot it hid the curves
    it sits on (a falling loss's start, an accuracy near 1)."""
    train, valid, dim = color("TRAIN"), color("VALID"), color("TEXT_DIM")

    def key(mark: str, colour: str, text: str) -> str:
        return f'<span style="color:{colour}">{mark}</span>&nbsp;{text}'

    lab = QLabel(
        f'<span style="color:{dim}">'
        + " &nbsp;&nbsp; ".join(
            [
                key("━", _faded(train), "train (step)"),
                key("━", train, "train (smoothed)"),
                key("●", train, "train (epoch mean)"),
                key("━■", valid, "validation"),
            ]
        )
        + "</span>"
    )
    lab.setObjectName("legend")
    lab.setWordWrap(True)
    lab.setTextFormat(Qt.RichText)
    return lab


def _plot(ylabel: str) -> pg.PlotWidget:
    """A metric plot (its legend is the panel's, above the plots)."""
    w = pg.PlotWidget()
    w.setMinimumWidth(190)  # two of them beside the settings fit a 1024-pixel screen
    w.enableAutoRange(False)  # ranges are set by the panel: a moving range re-lays the axes
    w.setMenuEnabled(False)
    w.hideButtons()
    style_plot(w)
    w.setLabel("bottom", "epoch")
    w.setLabel("left", ylabel)
    w.getPlotItem().setClipToView(True)
    w.getPlotItem().setDownsampling(auto=True, mode="peak")
    return w


class TrainingPanel(QWidget):
    def __init__(self, controller):
        super().__init__()
        self.c = controller
        self._filling = False
        self._last_step: dict = {}
        self._checkpoint = ""  # the last checkpoint path logged
        self._started_at = 0.0
        self._plotted_at = 0.0
        self._idle_text = "idle"  # the status line while idle: how the last run ended
        self._error = ""  # the last error event's message, until its run's end
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.timeout.connect(self.draw_curves)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 16)
        outer.setSpacing(16)

        # ---- left: settings and controls
        left = QVBoxLayout()
        left.setSpacing(12)
        left.addWidget(title("Training", "Loss and accuracy move live; every value is kept."))
        box = QGroupBox("Hyper-parameters")
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignRight)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(4)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100000)
        self.batch = QSpinBox()
        self.batch.setRange(1, 65536)
        self.optim = QComboBox()
        self.optim.addItems(OPTIMIZERS)
        # rates keep the project's value exactly (2e-6 stays 2e-6) and take 1e-4 notation
        self.lr = RateSpinBox(1e-12, 10.0)
        self.lr.setSingleStep(1e-4)
        self.wd = RateSpinBox(0.0, 1.0)
        self.wd.setSingleStep(1e-5)
        self.momentum = QDoubleSpinBox()
        self.momentum.setDecimals(3)
        self.momentum.setRange(0.0, 0.999)
        self.momentum.setSingleStep(0.05)
        self.sched = QComboBox()
        self.sched.addItems(SCHEDULES)
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.workers = QSpinBox()
        self.workers.setRange(0, 16)
        for label, w, tip in [
            ("Epochs", self.epochs, "Total epochs to reach"),
            ("Batch size", self.batch, "Images per step"),
            ("Optimizer", self.optim, "darklib.optim class"),
            ("Learning rate", self.lr, "Initial learning rate"),
            ("Weight decay", self.wd, "L2 penalty (decoupled for AdamW)"),
            ("Momentum", self.momentum, "SGD and RMSprop momentum"),
            ("LR schedule", self.sched, "Stepped per epoch (OneCycleLR per step)"),
            ("Device", self.device, "cuda appears when CuPy and a GPU are present"),
            ("Loader threads", self.workers, "DataLoader worker threads"),
        ]:
            w.setToolTip(tip)
            form.addRow(label, w)
        # each box writes only its own field: the others keep the project's values as they are
        for key, w in (
            ("epochs", self.epochs),
            ("batch", self.batch),
            ("workers", self.workers),
            ("lr", self.lr),
            ("weight_decay", self.wd),
            ("momentum", self.momentum),
        ):
            w.valueChanged.connect(lambda _v, key=key: self._settings_changed(key))
        for key, w in (("optim", self.optim), ("sched", self.sched), ("device", self.device)):
            w.currentIndexChanged.connect(lambda _i, key=key: self._settings_changed(key))
        left.addWidget(box)

        btns = QHBoxLayout()
        btns.setSpacing(8)
        self.start_btn = QPushButton("▶  Start")
        self.start_btn.setObjectName("primary")
        self.start_btn.setToolTip("Start or continue training (F5)")
        self.pause_btn = QPushButton("❚❚  Pause")
        self.pause_btn.setToolTip("Pause after this batch / resume (F6)")
        self.stop_btn = QPushButton("■  Stop")
        self.stop_btn.setObjectName("danger")
        self.stop_btn.setToolTip(
            "Stop after this batch; Start continues from the same step (Shift+F5)"
        )
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.stop_btn.clicked.connect(lambda: self.c.stop())
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            btns.addWidget(b)
        left.addLayout(btns)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        left.addWidget(self.progress)
        self.status = QLabel("idle")
        self.status.setObjectName("subtitle")
        self.status.setWordWrap(True)
        left.addWidget(self.status)
        left.addSpacing(4)
        left.addWidget(section("Log"))
        self.log = QPlainTextEdit()
        self.log.setObjectName("log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setLineWrapMode(QPlainTextEdit.WidgetWidth)
        self.log.setPlaceholderText("Training messages appear here.")
        left.addWidget(self.log, 1)
        self.log.setMinimumHeight(90)
        lw = QWidget()
        lw.setLayout(left)
        left.setContentsMargins(0, 0, 8, 0)  # room for the scroll bar
        # on a short screen (1280x720) the settings column scrolls instead of forcing the
        # window taller than the screen; with room to spare the log takes the rest
        scroll = QScrollArea()
        scroll.setWidget(lw)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setFixedWidth(344)
        scroll.setMinimumHeight(240)
        self.settings_scroll = scroll
        outer.addWidget(scroll)

        # ---- right: tiles and curves
        right = QVBoxLayout()
        right.setSpacing(12)
        samples = {  # what each tile must show whole
            "epoch": "10 / 100",
            "step": "12,345",
            "loss": "1.23e+30",
            "val acc": "0.123",
            "images/s": "12,345",
            "ETA": "12:34",
        }
        self.tiles = {k: MetricTile(k, sample=v) for k, v in samples.items()}
        self.tile_row = TileRow(list(self.tiles.values()))
        right.addWidget(self.tile_row)
        self.legend = _legend()
        right.addWidget(self.legend)
        plots = QHBoxLayout()
        plots.setSpacing(12)
        self.loss_plot = _plot("loss")
        self.acc_plot = _plot("accuracy")
        self.acc_plot.setYRange(0, 1, padding=PAD)
        self.loss_plot.setYRange(0, 1, padding=PAD)
        self._ranges: tuple[float, float] = (0.0, 0.0)  # (x end, loss top) on screen
        self._user_range = False  # a pan or zoom by hand: leave the ranges alone
        for w in (self.loss_plot, self.acc_plot):
            w.getViewBox().sigRangeChangedManually.connect(self._ranged_by_hand)
            plots.addWidget(w)
        right.addLayout(plots, 1)
        outer.addLayout(right, 1)
        self.s_loss, self.s_loss_s, self.s_loss_e, self.s_vloss = _curves(self.loss_plot)
        self.s_acc, self.s_acc_s, self.s_acc_e, self.s_vacc = _curves(self.acc_plot)
        self.series = [
            self.s_loss,
            self.s_loss_s,
            self.s_loss_e,
            self.s_vloss,
            self.s_acc,
            self.s_acc_s,
            self.s_acc_e,
            self.s_vacc,
        ]
        self._ema = Smoother(), Smoother()  # loss, accuracy

        controller.projectChanged.connect(self.load_project)
        controller.events.connect(self.on_events)
        controller.stateChanged.connect(self.on_state)
        controller.message.connect(self.append_log)
        controller.trainingReset.connect(self._training_reset)
        self.on_state("idle")

    # ------------------------------------------------------------------ settings

    def load_project(self) -> None:
        if self.c.project is None:
            return
        self._idle_text = "idle"
        self.on_state(self.c.state)
        s = self.c.spec
        self._filling = True
        self.epochs.setValue(s.training.epochs)
        self.batch.setValue(s.training.batch_size)
        self.optim.setCurrentText(s.optimizer.type)
        self.lr.setValue(s.optimizer.lr)
        self.wd.setValue(float(s.optimizer.args.get("weight_decay", 0.0)))
        self.momentum.setValue(float(s.optimizer.args.get("momentum", 0.0)))
        self.sched.setCurrentText(s.schedule.type)
        idx = self.device.findText(s.training.device)
        self.device.setCurrentIndex(max(idx, 0))
        self.workers.setValue(s.training.num_workers)
        self._filling = False
        self.log.clear()
        if idx < 0:  # saved on a machine with a device this one lacks: train on what is here
            wanted, s.training.device = s.training.device, self.device.currentText()
            self.append_log(
                f"device {wanted!r} is not available here: training on {s.training.device}"
            )
        self.redraw_history()
        self._update_tiles_from_history()

    def _training_reset(self) -> None:
        """The weights and history were dropped (or brought back by Undo): the curves, the
        tiles and the progress show what the project holds now."""
        self._idle_text = "idle"
        self.on_state(self.c.state)
        self.redraw_history()
        self._update_tiles_from_history()

    def _settings_changed(self, key: str) -> None:
        """The box ``key`` was edited: store its value (only its own: a value a box cannot
        show exactly is never written back) and apply what can apply to a live session."""
        if self._filling or self.c.project is None:
            return
        s = self.c.spec
        t, o = s.training, s.optimizer
        if key == "epochs":
            t.epochs = self.epochs.value()
            if self.c.state == "idle":
                self._progress_from_history()
        elif key == "batch":
            t.batch_size = self.batch.value()
        elif key == "workers":
            t.num_workers = self.workers.value()
        elif key == "device":
            t.device = self.device.currentText()
        elif key == "sched":  # the optimizer's state stays: the schedule is rebuilt at Start
            s.schedule.type = self.sched.currentText()
        elif key == "optim":
            o.type = self.optim.currentText()
            args = dict(o.args)
            if o.type in ("Adam", "AdamW"):
                args.pop("momentum", None)
            elif self.momentum.value():
                args["momentum"] = self.momentum.value()
            takes = optimizer_arguments(o.type)
            if takes is not None:
                dropped = sorted(k for k in args if k not in takes)
                for k in dropped:
                    del args[k]
                if dropped:
                    self.c.message.emit(
                        f"{o.type} does not take {', '.join(dropped)}: removed from the "
                        "optimizer's arguments"
                    )
            o.args = args
            self.c.mark_changed("optimizer")
            return
        elif key == "lr":
            o.lr = self.lr.value()
            self._apply_live("lr", o.lr)
        else:  # weight_decay, momentum: optimizer arguments
            w = self.wd if key == "weight_decay" else self.momentum
            if key == "momentum" and o.type in ("Adam", "AdamW"):
                return  # Adam has betas, not momentum: nothing to store
            o.args = {**o.args, key: w.value()}
            self._apply_live(key, w.value())
        self.c.mark_changed("training")

    def _apply_live(self, key: str, value: float) -> None:
        """A new lr or optimizer argument applies to the live optimizer at once."""
        if self.c.session is None:
            return
        for g in self.c.session.optimizer.param_groups:
            if key == "lr" and g.get("max_lr"):
                # OneCycleLR (stopped: the box is off while it runs) computes the rate from
                # the group's peak at every step: the new value is the new peak, and the
                # cycle's start, end and current rates scale with it
                ratio = value / g["max_lr"]
                for k in ("initial_lr", "max_lr", "min_lr", "lr"):
                    if k in g:
                        g[k] *= ratio
            elif key == "lr" or key in g:
                g[key] = value

    # ------------------------------------------------------------------ controls

    def start(self) -> None:
        if self.c.state != "idle":
            return
        if self.c.project is None:
            self.append_log("cannot start: no project is open (open one, or pick a sample)")
            self.status.setText("open a project first")
            return
        self._user_range = False
        try:
            self.c.start()
        except (DataError, RuntimeError, ValueError) as e:  # bad settings or data: say what
            self.append_log(f"cannot start: {e}")
            self.status.setText(f"cannot start: {e}")
            return
        except Exception as e:
            self.append_log(f"cannot start: {type(e).__name__}: {e}")
            self.status.setText(f"cannot start: {e}")
            return
        self._idle_text = "idle"
        self._started_at = time.monotonic()
        self.append_log(
            f"training on {self.c.session.device} · epochs "
            f"{self.c.spec.training.epochs} · batch {self.c.spec.training.batch_size}"
            f" · {self.c.spec.optimizer.type} lr {self.c.spec.optimizer.lr:g}"
        )

    def toggle_pause(self) -> None:
        if self.c.state == "paused":
            self.c.resume()
        elif self.c.state == "running":
            self.c.pause()

    def on_state(self, state: str) -> None:
        self.start_btn.setEnabled(state == "idle" and self.c.project is not None)
        self.pause_btn.setEnabled(state in ("running", "paused"))
        self.stop_btn.setEnabled(state in ("running", "paused", "evaluating"))
        self.pause_btn.setText("▶  Resume" if state == "paused" else "❚❚  Pause")
        for w in (self.epochs, self.batch, self.optim, self.sched, self.device, self.workers):
            w.setEnabled(state == "idle")
        self._lr_lock(state)
        self.status.setText(
            {
                "idle": self._idle_text,  # "idle", or how the last run ended
                "running": "training…",
                "paused": "paused",
                "stopping": "stopping after this batch…",
                "evaluating": "evaluating the trained model on the validation split…",
            }[state]
        )

    def _lr_lock(self, state: str) -> None:
        """OneCycleLR sets the learning rate at every step from the peak it was built
        with, so a rate typed in during its run would show as applied and be overwritten at
        the next step: the box is off while such a run is going on, and says why. (Other
        schedules scale the current rate, so a new one takes effect there.)"""
        one_cycle = self.c.project is not None and self.c.spec.schedule.type == "OneCycleLR"
        locked = one_cycle and state in ("running", "paused", "stopping")
        self.lr.setEnabled(not locked)
        self.lr.setToolTip(
            "OneCycleLR sets the learning rate at every step during a run: stop the run to "
            "change its peak rate (the next Start plans the cycle with it)"
            if locked
            else "Initial learning rate (OneCycleLR's peak)"
            if one_cycle
            else "Initial learning rate"
        )

    # ------------------------------------------------------------------ events

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(time.strftime("%H:%M:%S  ") + text)

    def on_events(self, events: list) -> None:
        steps = [e.data for e in events if e.kind == "step"]
        if steps:
            ep_frac = [d["epoch"] + d["batch"] / max(d["batches"], 1) for d in steps]
            loss, acc = [d["loss"] for d in steps], [d["acc"] for d in steps]
            self.s_loss.extend(ep_frac, loss)
            self.s_acc.extend(ep_frac, acc)
            self.s_loss_s.extend(ep_frac, self._ema[0](loss))
            self.s_acc_s.extend(ep_frac, self._ema[1](acc))
            self._last_step = steps[-1]
        for e in events:
            d = e.data
            if e.kind == "epoch":
                x = [d["epoch"]]
                self.s_loss_e.extend(x, [d["train_loss"]])
                self.s_acc_e.extend(x, [d["train_acc"]])
                self.s_vloss.extend(x, [d["val_loss"]])
                self.s_vacc.extend(x, [d["val_acc"]])
                self.append_log(
                    f"epoch {int(d['epoch'])}: train loss {fmt_metric(d['train_loss'])} "
                    f"acc {fmt_metric(d['train_acc'], 3)} · val loss "
                    f"{fmt_metric(d['val_loss'])} acc {fmt_metric(d['val_acc'], 3)} · "
                    f"{d['seconds']:.1f} s"
                )
                self.tiles["val acc"].set(fmt_metric(d["val_acc"], 3))
            elif e.kind == "started":
                self.progress.setMaximum(max(1, d["total_steps"]))
                self.append_log(f"started at epoch {d['epoch'] + 1}, step {d['step']}")
            elif e.kind == "paused":
                self.append_log("paused" if d["reason"] == "user" else f"paused: {d['reason']}")
                if d["reason"] != "user":
                    self.status.setText(d["reason"])
            elif e.kind == "resumed":
                self.append_log("resumed")
            elif e.kind == "log":
                self.append_log(d["text"])
            elif e.kind == "skipped":
                self.append_log(skipped_text(d))
            elif e.kind == "checkpoint":  # the full path once, then a short line per epoch
                first = d["path"] != self._checkpoint
                self._checkpoint = d["path"]
                self.append_log(f"checkpoint saved to {d['path']}" if first else "checkpoint saved")
            elif e.kind == "error":
                tb = d.get("traceback") or ""  # none for bad input: the message says it all
                self.append_log(f"ERROR {d['message']}" + (f"\n{tb}" if tb else ""))
                self._error = d["message"].splitlines()[0] if d["message"] else "error"
                self.status.setText(f"stopped by an error: {d['message']}")
            elif e.kind == "evaluated":
                self.append_log(
                    f"evaluated the weights of epoch {d['epoch']} on the validation split: "
                    f"loss {fmt_metric(d.get('loss', math.nan))} · acc "
                    f"{fmt_metric(d.get('acc', math.nan), 3)}"
                )
                if "acc" in d:
                    self.tiles["val acc"].set(fmt_metric(d["acc"], 3))
            elif e.kind == "finished" and d["reason"] == "evaluated":
                pass
            elif e.kind == "finished":
                self.append_log(f"finished ({d['reason']})")
                if d["reason"] != "completed" and self._last_step:
                    # a stopped run's speed and time left are stale (drawn by the next frame)
                    self._last_step = {**self._last_step, "images_per_s": None, "eta_s": None}
                    self._last_step["ended"] = True
                self._idle_text = (
                    f"ended with an error: {_short(self._error)}"
                    if d["reason"] == "error"
                    else "idle"
                )
                self._error = ""
        wait_ms = PLOT_MS - 1000 * (time.monotonic() - self._plotted_at)
        if wait_ms <= 0 or any(e.kind in ("epoch", "finished") for e in events):
            self.draw_curves()
        elif not self._plot_timer.isActive():
            self._plot_timer.start(int(wait_ms) + 1)  # the last points are drawn, if late

    def draw_curves(self) -> None:
        """Show what arrived since the last frame: the new points go to the plots
        (``setData``; the full history stays in the series' arrays), the last step to the
        tiles and the progress bar. At most every ``PLOT_MS``: each frame is a repaint."""
        self._plot_timer.stop()
        self._plotted_at = time.monotonic()
        self._fit_ranges()
        for s in self.series:
            s.draw()
        d = self._last_step
        if d:
            self.progress.setValue(int(d["done_steps"]))
            self.tiles["epoch"].set(f"{d['epoch'] + 1} / {self.c.spec.training.epochs}")
            self.tiles["step"].set(f"{d['step']:,}")
            self.tiles["loss"].set(fmt_metric(d["loss"]))
            speed = d["images_per_s"]
            # "--" until the first half second is measured, and once a run ended
            self.tiles["images/s"].set(f"{speed:,.0f}" if speed else "--")
            self.tiles["ETA"].set("--" if d.get("ended") else _fmt_time(d["eta_s"]))

    def _ranged_by_hand(self, *_: object) -> None:
        self._user_range = True

    def _fit_ranges(self) -> None:
        """Epochs 0..total across, loss 0..a round top: changed only when the data outgrows
        them, so that most repaints reuse the axes' cached pictures."""
        if self._user_range:
            return
        s = self.s_loss
        epochs = self.c.spec.training.epochs if self.c.project is not None else 1
        x_end = float(max(epochs, math.ceil(s.x[s.n - 1]) if s.n else 0, 1))
        ys = [a.y[: a.n] for a in (self.s_loss, self.s_vloss, self.s_loss_e) if a.n]
        y = np.concatenate(ys) if ys else np.zeros(0)
        y = y[np.isfinite(y)]
        top = _nice_top(float(np.percentile(y, 99.5)) * 1.05) if len(y) else 1.0
        if (x_end, top) == self._ranges:
            return
        self._ranges = (x_end, top)
        for w in (self.loss_plot, self.acc_plot):
            w.setXRange(0, x_end, padding=PAD)
        self.loss_plot.setYRange(0, top, padding=PAD)

    def redraw_history(self) -> None:
        """Draw the whole stored history (after opening a project)."""
        self._user_range = False
        self._ranges = (0.0, 0.0)
        self._last_step = {}
        h = self.c.history
        for s in self.series:
            s.clear()
        st, ep = h.steps, h.epochs
        self.s_loss.extend(st["epoch"], st["loss"])
        self.s_acc.extend(st["epoch"], st["acc"])
        for e in self._ema:
            e.reset()
        self.s_loss_s.extend(st["epoch"], self._ema[0](st["loss"]))
        self.s_acc_s.extend(st["epoch"], self._ema[1](st["acc"]))
        self.s_loss_e.extend(ep["epoch"], ep["train_loss"])
        self.s_acc_e.extend(ep["epoch"], ep["train_acc"])
        self.s_vloss.extend(ep["epoch"], ep["val_loss"])
        self.s_vacc.extend(ep["epoch"], ep["val_acc"])
        self.draw_curves()

    def _update_tiles_from_history(self) -> None:
        h = self.c.history
        pos = self.c.project.position if self.c.project else {}
        self._last_step = {}
        self.tiles["epoch"].set(f"{pos.get('epoch', 0)} / {self.c.spec.training.epochs}")
        self.tiles["step"].set(f"{pos.get('step', 0):,}")
        loss = h.steps["loss"][-1] if h.steps["loss"] else math.nan
        self.tiles["loss"].set("--" if math.isnan(loss) else fmt_metric(loss))
        va = h.epochs["val_acc"][-1] if h.epochs["val_acc"] else math.nan
        self.tiles["val acc"].set("--" if math.isnan(va) else fmt_metric(va, 3))
        self.tiles["images/s"].set("--")
        self.tiles["ETA"].set("--")
        self._progress_from_history()

    def _progress_from_history(self) -> None:
        """The progress bar at where the stored run stands, in epochs (a step count per
        epoch would need the data); runs set it in steps."""
        if self.c.project is None:
            return
        pos = self.c.session.position if self.c.session is not None else self.c.project.position
        h = self.c.history
        epochs = max(1, self.c.spec.training.epochs)
        done = float(pos.get("epoch", 0))
        if h.steps["epoch"]:
            done = max(done, h.steps["epoch"][-1])
        self.progress.setMaximum(1000)
        self.progress.setValue(round(1000 * min(1.0, done / epochs)))
