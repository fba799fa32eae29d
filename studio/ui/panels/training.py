"""Training panel: hyper-parameters, Start / Pause / Resume / Stop, progress, live curves of
loss and accuracy (per step and per epoch) and the log."""

from __future__ import annotations

import math
import time

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.cli import _fmt_time
from studio.ui.theme import color
from studio.ui.widgets import MetricTile, Series, pen, title

OPTIMIZERS = ["Adam", "AdamW", "SGD", "RMSprop"]
SCHEDULES = ["none", "StepLR", "CosineAnnealingLR", "ExponentialLR", "OneCycleLR"]


def _plot(ylabel: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setMenuEnabled(False)
    w.hideButtons()
    w.showGrid(x=True, y=True, alpha=0.12)
    w.setLabel("bottom", "epoch")
    w.setLabel("left", ylabel)
    w.getPlotItem().setClipToView(True)
    w.getPlotItem().setDownsampling(auto=True, mode="peak")
    leg = w.addLegend(offset=(-10, 10), labelTextColor=color("TEXT_DIM"))
    leg.setBrush(pg.mkBrush(color("PANEL") + "d0"))
    return w


class TrainingPanel(QWidget):
    def __init__(self, controller):
        super().__init__()
        self.c = controller
        self._filling = False
        self._last_step: dict = {}
        self._started_at = 0.0
        outer = QHBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 16)
        outer.setSpacing(16)

        # ---- left: settings and controls
        left = QVBoxLayout()
        left.setSpacing(12)
        left.addWidget(title("Training", ""))
        box = QGroupBox("Hyper-parameters")
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignRight)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100000)
        self.batch = QSpinBox()
        self.batch.setRange(1, 65536)
        self.optim = QComboBox()
        self.optim.addItems(OPTIMIZERS)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 10.0)
        self.lr.setSingleStep(1e-4)
        self.wd = QDoubleSpinBox()
        self.wd.setDecimals(5)
        self.wd.setRange(0.0, 1.0)
        self.wd.setSingleStep(1e-4)
        self.momentum = QDoubleSpinBox()
        self.momentum.setDecimals(3)
        self.momentum.setRange(0.0, 0.999)
        self.momentum.setSingleStep(0.05)
        self.sched = QComboBox()
        self.sched.addItems(SCHEDULES)
        self.device = QComboBox()
        self.device.addItem("cpu")
        try:
            import darklib as dl

            if dl.cuda.is_available():
                self.device.addItem("cuda")
        except Exception:
            pass
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
        for w in (self.epochs, self.batch, self.workers):
            w.valueChanged.connect(self._settings_changed)
        for w in (self.lr, self.wd, self.momentum):
            w.valueChanged.connect(self._settings_changed)
        for w in (self.optim, self.sched, self.device):
            w.currentIndexChanged.connect(self._settings_changed)
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
        left.addStretch(1)
        lw = QWidget()
        lw.setLayout(left)
        lw.setFixedWidth(330)
        outer.addWidget(lw)

        # ---- right: tiles, curves, log
        right = QVBoxLayout()
        right.setSpacing(12)
        tiles = QHBoxLayout()
        tiles.setSpacing(12)
        self.tiles = {
            k: MetricTile(k) for k in ("epoch", "step", "loss", "val acc", "images/s", "ETA")
        }
        for t in self.tiles.values():
            tiles.addWidget(t)
        right.addLayout(tiles)
        split = QSplitter(Qt.Vertical)
        plots = QWidget()
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.setSpacing(12)
        self.loss_plot = _plot("loss")
        self.acc_plot = _plot("accuracy")
        self.acc_plot.setYRange(0, 1)
        pl.addWidget(self.loss_plot)
        pl.addWidget(self.acc_plot)
        split.addWidget(plots)
        sym = dict(symbol="o", symbolSize=7)
        self.s_loss = Series(self.loss_plot.plot(name="train (step)", pen=pen("TRAIN", 1.2)))
        self.s_loss_e = Series(
            self.loss_plot.plot(
                name="train (epoch)",
                pen=pg.mkPen(None),
                symbolBrush=color("TRAIN"),
                symbolPen=color("BG"),
                **sym,
            )
        )
        self.s_vloss = Series(
            self.loss_plot.plot(
                name="validation",
                pen=pen("VALID", 2.0),
                symbolBrush=color("VALID"),
                symbolPen=color("BG"),
                **sym,
            )
        )
        self.s_acc = Series(self.acc_plot.plot(name="train (step)", pen=pen("TRAIN", 1.2)))
        self.s_acc_e = Series(
            self.acc_plot.plot(
                name="train (epoch)",
                pen=pg.mkPen(None),
                symbolBrush=color("TRAIN"),
                symbolPen=color("BG"),
                **sym,
            )
        )
        self.s_vacc = Series(
            self.acc_plot.plot(
                name="validation",
                pen=pen("VALID", 2.0),
                symbolBrush=color("VALID"),
                symbolPen=color("BG"),
                **sym,
            )
        )
        self.series = [
            self.s_loss,
            self.s_loss_e,
            self.s_vloss,
            self.s_acc,
            self.s_acc_e,
            self.s_vacc,
        ]
        self.log = QPlainTextEdit()
        self.log.setObjectName("log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Training messages appear here.")
        split.addWidget(self.log)
        split.setSizes([520, 160])
        right.addWidget(split, 1)
        outer.addLayout(right, 1)

        controller.projectChanged.connect(self.load_project)
        controller.events.connect(self.on_events)
        controller.stateChanged.connect(self.on_state)
        controller.message.connect(self.append_log)
        self.on_state("idle")

    # ------------------------------------------------------------------ settings

    def load_project(self) -> None:
        if self.c.project is None:
            return
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
        self.redraw_history()
        self._update_tiles_from_history()

    def _settings_changed(self) -> None:
        if self._filling or self.c.project is None:
            return
        s = self.c.spec
        opt_before = (s.optimizer.type, s.schedule.type)
        s.training.epochs = self.epochs.value()
        s.training.batch_size = self.batch.value()
        s.training.num_workers = self.workers.value()
        s.training.device = self.device.currentText()
        s.optimizer.type = self.optim.currentText()
        s.optimizer.lr = self.lr.value()
        args = dict(s.optimizer.args)
        for key, w in (("weight_decay", self.wd), ("momentum", self.momentum)):
            if w.value() or key in args:
                args[key] = w.value()
        if s.optimizer.type in ("Adam", "AdamW"):
            args.pop("momentum", None)
        s.optimizer.args = args
        s.schedule.type = self.sched.currentText()
        if (s.optimizer.type, s.schedule.type) != opt_before:
            self.c.mark_changed("optimizer")
        else:
            self.c.mark_changed("training")
            if self.c.session is not None:  # new lr etc. apply to the live optimizer
                for g in self.c.session.optimizer.param_groups:
                    g["lr"] = s.optimizer.lr
                    for k, v in args.items():
                        if k in g:
                            g[k] = v

    # ------------------------------------------------------------------ controls

    def start(self) -> None:
        if self.c.state != "idle":
            return
        try:
            self.c.start()
        except Exception as e:
            self.append_log(f"cannot start: {type(e).__name__}: {e}")
            self.status.setText(f"cannot start: {e}")
            return
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
        self.start_btn.setEnabled(state == "idle")
        self.pause_btn.setEnabled(state in ("running", "paused"))
        self.stop_btn.setEnabled(state in ("running", "paused"))
        self.pause_btn.setText("▶  Resume" if state == "paused" else "❚❚  Pause")
        for w in (self.epochs, self.batch, self.optim, self.sched, self.device, self.workers):
            w.setEnabled(state == "idle")
        self.status.setText(
            {
                "idle": "idle",
                "running": "training…",
                "paused": "paused",
                "stopping": "stopping after this batch…",
            }[state]
        )

    # ------------------------------------------------------------------ events

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(time.strftime("%H:%M:%S  ") + text)

    def on_events(self, events: list) -> None:
        steps = [e.data for e in events if e.kind == "step"]
        if steps:
            ep_frac = [d["epoch"] + d["batch"] / max(d["batches"], 1) for d in steps]
            self.s_loss.extend(ep_frac, [d["loss"] for d in steps])
            self.s_acc.extend(ep_frac, [d["acc"] for d in steps])
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
                    f"epoch {int(d['epoch'])}: train loss {d['train_loss']:.4f} "
                    f"acc {d['train_acc']:.3f} · val loss {d['val_loss']:.4f} acc "
                    f"{d['val_acc']:.3f} · {d['seconds']:.1f} s"
                )
                self.tiles["val acc"].set(f"{d['val_acc']:.3f}")
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
            elif e.kind == "checkpoint":
                self.append_log(f"checkpoint written: {d['path']}")
            elif e.kind == "error":
                self.append_log(f"ERROR {d['message']}\n{d['traceback']}")
                self.status.setText(f"stopped by an error: {d['message']}")
            elif e.kind == "finished":
                self.append_log(f"finished ({d['reason']})")
        if self._last_step:
            d = self._last_step
            self.progress.setValue(int(d["done_steps"]))
            self.tiles["epoch"].set(f"{d['epoch'] + 1} / {self.c.spec.training.epochs}")
            self.tiles["step"].set(f"{d['step']:,}")
            self.tiles["loss"].set(f"{d['loss']:.4f}")
            self.tiles["images/s"].set(f"{d['images_per_s']:,.0f}" if d["images_per_s"] else "…")
            self.tiles["ETA"].set(_fmt_time(d["eta_s"]))
        for s in self.series:
            s.draw()

    def redraw_history(self) -> None:
        """Draw the whole stored history (after opening a project)."""
        h = self.c.history
        for s in self.series:
            s.clear()
        st, ep = h.steps, h.epochs
        self.s_loss.extend(st["epoch"], st["loss"])
        self.s_acc.extend(st["epoch"], st["acc"])
        self.s_loss_e.extend(ep["epoch"], ep["train_loss"])
        self.s_acc_e.extend(ep["epoch"], ep["train_acc"])
        self.s_vloss.extend(ep["epoch"], ep["val_loss"])
        self.s_vacc.extend(ep["epoch"], ep["val_acc"])
        for s in self.series:
            s.draw()

    def _update_tiles_from_history(self) -> None:
        h = self.c.history
        pos = self.c.project.position if self.c.project else {}
        self._last_step = {}
        self.tiles["epoch"].set(f"{pos.get('epoch', 0)} / {self.c.spec.training.epochs}")
        self.tiles["step"].set(f"{pos.get('step', 0):,}")
        loss = h.steps["loss"][-1] if h.steps["loss"] else math.nan
        self.tiles["loss"].set("--" if math.isnan(loss) else f"{loss:.4f}")
        va = h.epochs["val_acc"][-1] if h.epochs["val_acc"] else math.nan
        self.tiles["val acc"].set("--" if math.isnan(va) else f"{va:.3f}")
        self.tiles["images/s"].set("--")
        self.tiles["ETA"].set("--")
        self.progress.setValue(0)
