"""Outputs panel: validation predictions (framed green ✓ / red ✗ with predicted and true
class), sortable by confidence, and a confusion matrix whose cells filter the grid."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.ui.theme import color
from studio.ui.widgets import ImageGrid, MetricTile, Pager, guarded, section, title

SORTS = ["confidence: high first", "confidence: low first", "wrong first", "validation order"]


def _mix(a: str, b: str, t: float) -> QColor:
    ca, cb = QColor(a), QColor(b)
    return QColor(
        int(ca.red() + (cb.red() - ca.red()) * t),
        int(ca.green() + (cb.green() - ca.green()) * t),
        int(ca.blue() + (cb.blue() - ca.blue()) * t),
    )


EVAL_TIP = (
    "Run the trained weights over the validation split (no training) and show their predictions"
)


class OutputsPanel(QWidget):
    def __init__(self, controller):
        super().__init__()
        self.c = controller
        self.prev: dict[str, Any] = {}
        self._stale = False  # previews arrived while hidden: drawn when shown
        self._auto_evaluated = False  # the opened project's predictions were asked for
        self._failed = ""  # the last evaluation's failure, in one line
        self._cm_names: list[str] = []
        self._d: Any = None  # the data the previews index
        self.order = np.zeros(0, np.int64)  # positions into the preview arrays
        self.cell_filter: tuple[int, int] | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 16)
        lay.setSpacing(12)
        self.head = title(
            "Outputs", "Predictions on the validation split, refreshed after every epoch."
        )
        lay.addWidget(self.head)
        tiles = QHBoxLayout()
        tiles.setSpacing(12)
        self.t_acc = MetricTile("validation accuracy")
        self.t_right = MetricTile("✓ right")
        self.t_wrong = MetricTile("✗ wrong")
        self.t_epoch = MetricTile("after epoch")
        for t in (self.t_acc, self.t_right, self.t_wrong, self.t_epoch):
            tiles.addWidget(t)
        lay.addLayout(tiles)
        # why the last evaluation (or an epoch's validation) failed, until the next run
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.hide()
        lay.addWidget(self.error)

        split = QSplitter(Qt.Horizontal)
        lay.addWidget(split, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(section("Predictions"))
        bar.addStretch(1)
        self.sort = QComboBox()
        self.sort.addItems(SORTS)
        self.sort.setToolTip("Order of the prediction grid")
        self.sort.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.sort.setMinimumContentsLength(14)
        self.sort.currentIndexChanged.connect(self._reorder)
        bar.addWidget(self.sort)
        self.eval_btn = QPushButton("Evaluate")
        self.eval_btn.setToolTip(EVAL_TIP)
        self.eval_btn.clicked.connect(self.evaluate)
        bar.addWidget(self.eval_btn)
        self.pager = Pager(240)
        self.pager.changed.connect(lambda _: self._show_page())
        bar.addWidget(self.pager)
        ll.addLayout(bar)
        # the confusion-matrix filter, on its own row so that it never widens the window
        self.filter_row = QWidget()
        fl = QHBoxLayout(self.filter_row)
        fl.setContentsMargins(0, 0, 0, 0)
        self.filter_label = QLabel("")
        self.filter_label.setObjectName("subtitle")
        fl.addWidget(self.filter_label, 1)
        self.clear_btn = QPushButton("Show all")
        self.clear_btn.setToolTip("Clear the confusion-matrix filter")
        self.clear_btn.clicked.connect(self.clear_filter)
        fl.addWidget(self.clear_btn)
        self.filter_row.hide()
        ll.addWidget(self.filter_row)
        self.grid = ImageGrid(self._item, cell=60, caption_lines=2, width=112)
        self.grid.setObjectName("captions")  # a smaller font: "✗ hexagon / true crescent"
        ll.addWidget(self.grid, 1)
        split.addWidget(left)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(8, 0, 0, 0)
        cm_head = QHBoxLayout()
        cm_head.addWidget(section("Confusion matrix"))
        axes = QLabel("rows: true class · columns: predicted")
        axes.setObjectName("subtitle")
        axes.setMinimumWidth(10)  # elided by the layout rather than widening the window
        cm_head.addWidget(axes, 1)
        rl.addLayout(cm_head)
        self.cm = QTableWidget(0, 0)
        self.cm.setObjectName("confusion")  # tight cells: three-digit counts fit
        self.cm.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.cm.setSelectionMode(QAbstractItemView.SingleSelection)
        self.cm.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.cm.verticalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.cm.setToolTip("Click a cell to show its images")
        self.cm.cellClicked.connect(self.filter_cell)
        rl.addWidget(self.cm, 1)
        self.empty = QLabel("Train the model to see its predictions here.")
        self.empty.setObjectName("subtitle")
        self.empty.setWordWrap(True)
        rl.addWidget(self.empty)
        split.addWidget(right)
        split.setSizes([640, 520])

        controller.events.connect(self._on_events)
        controller.projectChanged.connect(self._reset)
        controller.trainingReset.connect(self._weights_replaced)
        controller.previewsDropped.connect(self._reset)
        controller.stateChanged.connect(lambda _: self._enable())
        controller.stateChanged.connect(self._state_changed)
        controller.projectChanged.connect(self._clear_error)
        # whether the model fits the data is known once the data is loaded
        controller.dataReady.connect(self._enable)
        controller.specChanged.connect(lambda _: self._enable())
        self._enable()

    def _misfit(self) -> str | None:
        """Why the trained model cannot be evaluated on the data: an invalid model or an
        output size that does not match the data's classes (None while idle-able)."""
        if self.c.project is None or self.c.state != "idle" or not self.c.has_trained_weights:
            return None
        return self.c.evaluate_problem()

    def _enable(self) -> None:
        misfit = self._misfit()
        self.eval_btn.setEnabled(
            self.c.state == "idle" and self.c.has_trained_weights and not misfit
        )
        self.eval_btn.setToolTip(f"Cannot evaluate: {misfit}" if misfit else EVAL_TIP)
        if not self.prev:
            self.empty.setText(
                f"Cannot evaluate: {misfit}"
                if misfit
                else self._failed
                if self._failed and self.c.state == "idle"
                else "Computing the trained model's predictions…"
                if self.c.state == "evaluating"
                else "Press Evaluate to see the trained model's predictions."
                if self.c.has_trained_weights
                else "Train the model to see its predictions here."
            )

    def evaluate(self) -> bool:
        """Predict the validation split with the trained weights, in the background. When
        it cannot run, the reason is shown (status bar, log, this panel) and the predictions
        on screen, which would not be this model's on this data, are cleared."""
        ok = self.c.evaluate()
        if not ok and self.c.project is not None and not self.c.is_training:
            problem = self.c.evaluate_problem()
            if problem and self.prev:
                self._reset()  # keeps the reason on screen (via _enable)
        self._enable()
        return ok

    def _weights_replaced(self) -> None:
        """A model edit dropped the weights (or Undo brought them back): the predictions
        shown belong to other weights."""
        self._reset()
        if self.c.previews.get("pred") is not None:
            self.show_previews(self.c.previews)

    def _reset(self) -> None:
        self._auto_evaluated = False
        self.prev = {}
        self._stale = False
        self.cell_filter = None
        self.grid.set_items([])
        self.cm.setRowCount(0)
        self.cm.setColumnCount(0)
        self._cm_names = []
        self.empty.show()
        for t in (self.t_acc, self.t_right, self.t_wrong, self.t_epoch):
            t.set("--")
        self._enable()

    def _state_changed(self, state: str) -> None:
        if state in ("running", "evaluating"):
            self._clear_error()  # a new run: the last one's failure is history

    def _clear_error(self) -> None:
        self._failed = ""
        self.error.clear()
        self.error.hide()

    def show_error(self, phase: str, message: str) -> None:
        """Say why the predictions could not be computed (an evaluation, or the validation
        at an epoch's end, failed): the message, first line first, and the way on."""
        what = "Evaluation" if phase == "evaluation" else "Validation at the end of the epoch"
        first, _, rest = (message or "error").partition("\n")
        self.error.setText(
            f"{what} failed: {first}"
            + (f"\n{rest}" if rest else "")
            + "\n(the Training panel's log has the details)"
        )
        self.error.show()
        self._failed = f"{what} failed: {first}"
        if not self.prev:
            self.empty.setText(self._failed)

    def _on_events(self, events: list) -> None:
        for e in events:
            if e.kind == "error" and e.data.get("phase") in ("evaluation", "validation"):
                self.show_error(e.data["phase"], e.data.get("message", ""))
        for e in reversed(events):
            if e.kind == "previews":
                self.show_previews(e.data)
                return

    def show_previews(self, prev: dict[str, Any]) -> None:
        """Keep the newest previews; draw them now if the panel is on screen, else when it
        is shown (a hidden panel costs the GUI thread nothing per epoch)."""
        if "pred" not in prev:
            return
        self.prev = prev
        self._stale = True
        if self.isVisible():
            self._render()

    def showEvent(self, e: Any) -> None:
        super().showEvent(e)
        self._shown()

    @guarded
    def _shown(self) -> None:
        if self._stale:
            self._render()
        elif (
            not self.prev
            and not self._auto_evaluated
            and self.c.state == "idle"
            and self.c.has_trained_weights
        ):
            # an opened trained project: its predictions, computed once in the background
            # (once: a failure is reported in the log, not retried at every visit)
            self._auto_evaluated = True
            self.evaluate()

    @guarded
    def _render(self) -> None:
        self._stale = False
        prev = self.prev
        self._d = self.c.data_now()
        n = len(prev["pred"])
        right = int((prev["pred"] == prev["true"]).sum())
        self.t_acc.set(f"{right / max(n, 1):.3f}")
        self.t_right.set(f"{right:,}")
        self.t_wrong.set(f"{n - right:,}")
        self.t_epoch.set(str(prev.get("epoch", "")))
        self.empty.hide()
        self._draw_cm()
        self._reorder()

    def _draw_cm(self) -> None:
        """Counts per (true, predicted) cell: the diagonal in the accent and bold, mistakes in
        red, both shaded by their share of the true class. Items are reused between epochs."""
        cm = self.prev["confusion"]
        names = self._names(len(cm))
        k = len(cm)
        if self.cm.rowCount() != k or self._cm_names != names:
            self._cm_names = list(names)
            self.cm.setRowCount(k)
            self.cm.setColumnCount(k)
            self.cm.setHorizontalHeaderLabels([str(i) for i in range(k)])
            self.cm.setVerticalHeaderLabels([f"{i}  {n}" for i, n in enumerate(names)])
            bold = QFont()
            bold.setBold(True)
            for i, n in enumerate(names):
                self.cm.horizontalHeaderItem(i).setToolTip(f"predicted {n}")
                for j in range(k):
                    it = QTableWidgetItem()
                    it.setTextAlignment(Qt.AlignCenter)
                    if i == j:
                        it.setFont(bold)
                    self.cm.setItem(i, j, it)
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        panel, right, wrong = color("PANEL"), color("ACCENT"), color("WRONG")
        for i in range(k):
            for j in range(k):
                it = self.cm.item(i, j)
                c, t = int(cm[i, j]), float(frac[i, j])
                it.setText(str(c) if c else "")
                shade = min(1.0, 0.15 + 0.85 * t) if c else 0.0
                it.setBackground(QBrush(_mix(panel, right if i == j else wrong, shade)))
                it.setToolTip(
                    f"true {names[i]}, predicted {names[j]}: {c} ({100 * t:.1f}% of {names[i]})"
                )

    def _names(self, k: int) -> list[str]:
        """The class names of the previews' ``k`` classes: their own, else the data's when
        they are as many, else numbers."""
        own = self.prev.get("classes")
        if own is not None and len(own) == k:
            return [str(n) for n in own]
        d = self._d
        if d is not None and len(d.classes) == k:
            return [str(n) for n in d.classes]
        return [str(i) for i in range(k)]

    def filter_cell(self, i: int, j: int) -> None:
        """Show only validation images of true class i predicted as j."""
        if not self.prev:
            return
        self.cell_filter = (i, j)
        names = self._names(len(self.prev["confusion"]))
        a = names[i] if i < len(names) else i
        b = names[j] if j < len(names) else j
        self.filter_label.setText(f"Showing true {a} predicted as {b}")
        self.filter_row.show()
        self._reorder()

    def clear_filter(self) -> None:
        self.cell_filter = None
        self.filter_label.setText("")
        self.filter_row.hide()
        self._reorder()

    def _reorder(self) -> None:
        if not self.prev:
            return
        p = self.prev
        pos = np.arange(len(p["pred"]))
        if self.cell_filter is not None:
            i, j = self.cell_filter
            pos = pos[(p["true"] == i) & (p["pred"] == j)]
        conf = p["confidence"][pos]
        mode = self.sort.currentIndex()
        if mode == 0:
            pos = pos[np.argsort(-conf, kind="stable")]
        elif mode == 1:
            pos = pos[np.argsort(conf, kind="stable")]
        elif mode == 2:
            right = (p["pred"][pos] == p["true"][pos]).astype(np.int64)
            pos = pos[np.lexsort((-conf, right))]
        self.order = pos
        self.pager.set_total(len(pos))
        self._show_page()

    def _show_page(self) -> None:
        self.grid.set_items(self.order[self.pager.slice()])

    def _item(self, k: int) -> tuple:
        p = self.prev
        d = self._d
        idx = int(p["index"][k])
        pr, tr = int(p["pred"][k]), int(p["true"][k])
        names = self._names(len(p["confusion"]))
        if max(pr, tr) >= len(names):
            names = names + [str(i) for i in range(len(names), max(pr, tr) + 1)]
        ok = pr == tr
        fits = d is not None and 0 <= idx < len(d)
        img = d.image(idx) if fits else np.zeros((8, 8, 3), np.uint8)
        conf = float(p["confidence"][k])
        caption = f"✓ {names[pr]}\n{conf:.2f}" if ok else f"✗ {names[pr]}\ntrue {names[tr]}"
        tip = (
            f"image {idx}: predicted {names[pr]} ({conf:.1%}), true {names[tr]} — "
            f"{'right' if ok else 'wrong'}"
        )
        return img, caption, color("RIGHT") if ok else color("WRONG"), tip
