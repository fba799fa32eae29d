"""Model panel: the layer table (name, type, arguments, inputs, output shape, parameters) with
totals; add, remove, reorder and edit layers; a bad row shows its shape error in place."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.modelspec import MERGE_TYPES, default_args, format_shape, infer, known_layer_types
from studio.project import LayerSpec, ModelSpec
from studio.ui.panels.dataset import format_args, parse_args
from studio.ui.theme import color
from studio.ui.widgets import MetricTile, guarded, section, title


def human_error(e: ValidationError) -> str:
    """pydantic's messages without its decoration (``Value error,``, ``[type=...]``, the
    input value and the documentation link): what is wrong, in a sentence each."""
    out = []
    for err in e.errors():
        msg = str(err.get("msg", "invalid value"))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        out.append(msg)
    return "; ".join(out) or "invalid value"


def spec_problem(layers: list[LayerSpec], input_shape: list[int]) -> str | None:
    """What the schema would refuse in a layer list, said with the table's row numbers
    (from 1): a duplicate name, an unknown type, a bad input shape."""
    if not input_shape or any(not isinstance(n, int) or n <= 0 for n in input_shape):
        shape = ", ".join(map(str, input_shape))
        return f"input shape ({shape}): every size must be a positive integer, like 3, 32, 32"
    seen: dict[str, int] = {}
    known = known_layer_types()
    for i, ls in enumerate(layers):
        if ls.name in seen:
            return (
                f"row {i + 1}: the name '{ls.name}' is already used by row {seen[ls.name]}; "
                "layer names must be unique"
            )
        if ls.type not in known:
            return f"row {i + 1} ('{ls.name}'): unknown layer type {ls.type!r}"
        seen[ls.name] = i + 1
    return None


COLS = ["name", "type", "arguments", "inputs", "output shape", "parameters"]
C_NAME, C_TYPE, C_ARGS, C_INPUTS, C_OUT, C_PARAMS = range(6)


class ModelPanel(QWidget):
    def __init__(self, controller):
        super().__init__()
        self.c = controller
        self._filling = False
        self.report = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 16)
        lay.setSpacing(12)
        lay.addWidget(
            title(
                "Model",
                "The network as a graph of darklib.nn layers. Each layer "
                "takes the previous output unless it names its inputs. "
                "Sizes such as in_features are inferred when left out.",
            )
        )
        tiles = QHBoxLayout()
        tiles.setSpacing(12)
        self.t_params = MetricTile("parameters")
        self.t_layers = MetricTile("layers")
        self.t_in = MetricTile("input")
        self.t_out = MetricTile("output")
        self.t_status = MetricTile("status")
        for t in (self.t_params, self.t_layers, self.t_in, self.t_out, self.t_status):
            tiles.addWidget(t)
        lay.addLayout(tiles)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(section("Layers"))
        bar.addStretch(1)
        bar.addWidget(QLabel("Input shape"))
        self.input_shape = QLineEdit()
        self.input_shape.setFixedWidth(110)
        self.input_shape.setToolTip("C, H, W of one image (batch excluded)")
        self.input_shape.editingFinished.connect(self._input_edited)
        bar.addWidget(self.input_shape)
        bar.addSpacing(12)
        self.new_type = QComboBox()
        self.new_type.addItems(sorted(known_layer_types(), key=lambda s: (s in MERGE_TYPES, s)))
        self.new_type.setCurrentText("Linear")
        self.new_type.setToolTip("Type of the layer to add")
        bar.addWidget(self.new_type)
        self.buttons = []
        for text, tip, fn in [
            ("Add", "Insert a layer after the selected one (Ctrl+Shift+A)", self.add_layer),
            ("Remove", "Remove the selected layer (Del)", self.remove_layer),
            ("↑", "Move the selected layer up (Ctrl+Up)", lambda: self.move_layer(-1)),
            ("↓", "Move the selected layer down (Ctrl+Down)", lambda: self.move_layer(1)),
        ]:
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(fn)
            if len(text) == 1:
                b.setFixedWidth(34)
            bar.addWidget(b)
            self.buttons.append(b)
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.setToolTip(
            "Undo the last model edit, bringing back the weights and history it dropped (Ctrl+Z)"
        )
        self.undo_btn.clicked.connect(self.undo)
        bar.addWidget(self.undo_btn)
        controller.undoChanged.connect(lambda _: self._state(self.c.state))
        self.buttons[0].setShortcut("Ctrl+Shift+A")
        self.buttons[2].setShortcut("Ctrl+Up")
        self.buttons[3].setShortcut("Ctrl+Down")
        lay.addLayout(bar)

        self.table = QTableWidget(0, len(COLS))
        self.table.setHorizontalHeaderLabels(COLS)
        h = self.table.horizontalHeader()
        for col in (C_NAME, C_TYPE, C_INPUTS, C_PARAMS):
            h.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        h.setSectionResizeMode(C_ARGS, QHeaderView.Stretch)
        h.setSectionResizeMode(C_OUT, QHeaderView.Interactive)
        self.table.setColumnWidth(C_OUT, 260)
        self.table.verticalHeader().setDefaultSectionSize(30)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
        )
        self.table.setToolTip("Double-click a name, type, arguments or inputs cell to edit it")
        self.table.itemChanged.connect(self._edited)
        lay.addWidget(self.table, 1)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        controller.projectChanged.connect(self.refresh)
        controller.projectChanged.connect(lambda: self._state(self.c.state))
        controller.stateChanged.connect(self._state)
        # the output size is checked against the data's class count once it is loaded
        controller.dataReady.connect(self.refresh)
        controller.specChanged.connect(lambda part: part in ("model", "dataset") and self.refresh())
        controller.specChanged.connect(lambda part: self._state(self.c.state))
        self._state(controller.state)

    # ------------------------------------------------------------------ display

    @property
    def spec(self) -> ModelSpec:
        return self.c.spec.model

    def refresh(self) -> None:
        if self.c.project is None:
            return
        self.report = rep = infer(self.spec)
        self._filling = True
        self.input_shape.setText(", ".join(map(str, self.spec.input_shape)))
        self.table.setRowCount(len(rep.layers))
        bad_bg = QBrush(QColor("#3a2325"))
        for r, (li, ls) in enumerate(zip(rep.layers, self.spec.layers)):
            cells = [
                li.name,
                li.type,
                format_args(ls.args),
                ", ".join(ls.inputs),
                format_shape(li.out_shape)
                if li.ok
                else ("✗ " + li.error if li.error else "— (after an invalid layer)"),
                f"{li.params:,}" if li.ok else "",
            ]
            for col, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if col in (C_OUT, C_PARAMS):
                    it.setFlags(it.flags() & ~Qt.ItemIsEditable)
                if col == C_PARAMS:
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if col == C_ARGS and li.ok:
                    filled = {
                        k: v for k, v in li.resolved.items() if k not in ls.args and v is not None
                    }
                    it.setToolTip(
                        "all arguments: "
                        + format_args(li.resolved)
                        + ("\ninferred: " + format_args(filled) if filled else "")
                    )
                if li.error:
                    it.setBackground(bad_bg)
                    if col == C_OUT:
                        it.setForeground(QBrush(QColor(color("WRONG"))))
                    it.setToolTip(li.error)
                elif li.blocked:
                    it.setForeground(QBrush(QColor(color("TEXT_FAINT"))))
                self.table.setItem(r, col, it)
        self._filling = False
        self.t_params.set(f"{rep.total_params:,}")
        self.t_layers.set(str(len(rep.layers)))
        self.t_in.set("×".join(map(str, rep.input_shape)))  # noqa: RUF001
        self.t_out.set("×".join(map(str, rep.output_shape)) if rep.ok and rep.output_shape else "?")  # noqa: RUF001
        err = rep.first_error()
        misfit = self.c.fit_problem() if rep.ok else None  # output size vs the data's classes
        ok = rep.ok and not misfit
        self.t_status.set("✓ valid" if ok else "✗ invalid" if not rep.ok else "✗ classes")
        self.t_status.setToolTip(misfit or "")
        self.t_status.value.setStyleSheet(f"color: {color('RIGHT') if ok else color('WRONG')};")
        self.error.setText(err or misfit or "")

    def _state(self, state: str) -> None:
        editable = state == "idle" and self.c.project is not None
        self.table.setEditTriggers(
            QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
            if editable
            else QAbstractItemView.NoEditTriggers
        )
        for b in self.buttons:
            b.setEnabled(editable)
        self.input_shape.setEnabled(editable)
        self.new_type.setEnabled(editable)
        self.undo_btn.setEnabled(editable and self.c.can_undo)

    # ------------------------------------------------------------------ editing

    def _confirm(self, text: str) -> bool:
        """Ask before an edit drops trained weights: the main window's ``confirm`` (which
        tests answer through ``MainWindow.ask``), or a plain question box."""
        w = self.window()
        if w is not self and hasattr(w, "confirm"):
            return bool(w.confirm("Drop the trained weights?", text))
        return QMessageBox.question(self, "Drop the trained weights?", text) == QMessageBox.Yes

    def _commit(
        self, layers: list[LayerSpec] | None = None, input_shape: list[int] | None = None
    ) -> bool:
        """Validate and store a new layer list; a schema error (duplicate name, unknown
        type) is shown and the table reverts. Shape errors are stored and shown per row.
        An edit that no longer fits the trained weights asks first (the controller's
        ``set_model``); a refused one reverts the table."""
        layers = layers if layers is not None else self.spec.layers
        shape = input_shape if input_shape is not None else self.spec.input_shape
        problem = spec_problem(layers, shape)
        if problem is None:
            try:
                new = ModelSpec.model_validate(
                    {"input_shape": shape, "layers": [ls.model_dump() for ls in layers]}
                )
            except ValidationError as e:
                problem = human_error(e)
        if problem is not None:
            self.error.setText(problem)
            self.refresh_keep_error()
            return False
        if not self.c.set_model(new, confirm=self._confirm):
            self.refresh()
            return False
        self.refresh()
        return True

    def undo(self) -> None:
        if self.c.state == "idle" and self.c.undo_model():
            self.refresh()

    def refresh_keep_error(self) -> None:
        msg = self.error.text()
        self.refresh()
        if msg:
            self.error.setText(msg)

    def _edited(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        r, col = item.row(), item.column()
        layers = [ls.model_copy(deep=True) for ls in self.spec.layers]
        ls = layers[r]
        text = item.text().strip()
        try:
            if col == C_NAME:
                old = ls.name
                layers[r] = LayerSpec(name=text, type=ls.type, args=ls.args, inputs=ls.inputs)
                for other in layers:  # keep references to the renamed layer
                    other.inputs = [text if n == old else n for n in other.inputs]
            elif col == C_TYPE:
                if text not in known_layer_types():
                    raise ValueError(f"unknown layer type {text!r}")
                keep = {k: v for k, v in ls.args.items()}
                layers[r] = LayerSpec(
                    name=ls.name,
                    type=text,
                    args=keep if text == ls.type else default_args(text),
                    inputs=ls.inputs,
                )
            elif col == C_ARGS:
                layers[r] = LayerSpec(
                    name=ls.name, type=ls.type, args=parse_args(text), inputs=ls.inputs
                )
            elif col == C_INPUTS:
                names = [n.strip() for n in text.split(",") if n.strip()]
                layers[r] = LayerSpec(name=ls.name, type=ls.type, args=ls.args, inputs=names)
        except ValidationError as e:
            self.error.setText(f"row {r + 1} ({ls.name}): {human_error(e)}")
            self.refresh_keep_error()
            return
        except (ValueError, json.JSONDecodeError) as e:
            self.error.setText(f"row {r + 1} ({ls.name}): {e}")
            self.refresh_keep_error()
            return
        self._commit(layers)

    def _input_edited(self) -> None:
        if self.c.project is None or self.c.state != "idle":
            return
        try:
            text = self.input_shape.text().replace("\u00d7", ",").replace("x", ",")
            shape = [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            shape = []
        if not shape or any(n <= 0 for n in shape) or len(shape) > 3:
            self.error.setText(
                f"input shape {self.input_shape.text().strip()!r}: give one to three positive "
                "sizes, channels first, like 3, 32, 32"
            )
            self.input_shape.setText(", ".join(map(str, self.spec.input_shape)))
            return
        if shape != list(self.spec.input_shape) and self._commit(input_shape=shape):
            self.c.mark_changed("dataset")

    def _unique(self, base: str) -> str:
        names = {ls.name for ls in self.spec.layers}
        base = base.lower()
        k = 1
        while f"{base}{k}" in names:
            k += 1
        return f"{base}{k}"

    def add_layer(self, type_name: str | None = None) -> None:
        if self.c.project is None or self.c.state != "idle":
            return
        t = type_name or self.new_type.currentText()
        r = self.table.currentRow()
        pos = r + 1 if r >= 0 else len(self.spec.layers)
        inputs: list[str] = []
        if t in MERGE_TYPES:
            prev = [ls.name for ls in self.spec.layers[:pos]][-2:]
            inputs = prev if len(prev) == 2 else []
        layers = list(self.spec.layers)
        layers.insert(
            pos, LayerSpec(name=self._unique(t), type=t, args=default_args(t), inputs=inputs)
        )
        if self._commit(layers):
            self.table.selectRow(pos)

    def remove_layer(self) -> None:
        if self.c.project is None or self.c.state != "idle":
            return
        r = self.table.currentRow()
        if r < 0:
            return
        layers = list(self.spec.layers)
        del layers[r]
        if self._commit(layers):
            self.table.selectRow(min(r, len(layers) - 1))

    def move_layer(self, step: int) -> None:
        if self.c.project is None or self.c.state != "idle":
            return
        r = self.table.currentRow()
        layers = list(self.spec.layers)
        if r < 0 or not 0 <= r + step < len(layers):
            return
        layers[r], layers[r + step] = layers[r + step], layers[r]
        if self._commit(layers):
            self.table.selectRow(r + step)

    @guarded
    def keyPressEvent(self, e: Any) -> None:
        if e.key() == Qt.Key_Delete and self.table.hasFocus() and self.c.state == "idle":
            self.remove_layer()
            return
        super().keyPressEvent(e)
