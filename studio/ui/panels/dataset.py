"""Dataset panel: source, paged thumbnail grid with labels, class counts, augmentation preview
and the editable list of training transforms."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.data import (
    PROCEDURAL,
    DataError,
    build_transform,
    class_count,
    detect_source,
    transform_names,
    transform_problem,
)
from studio.project import MAX_PROCEDURAL_IMAGES, TransformSpec
from studio.ui.theme import color, style_plot
from studio.ui.widgets import (
    Card,
    ImageGrid,
    Pager,
    guarded,
    keep_typed_keys,
    pixmap,
    section,
    title,
)

PAGE = 240
N_AUG = 8
AUG_CELL = 50  # the augmentation previews' size: nine side by side fit a 1024-pixel screen


def parse_args(text: str) -> dict[str, Any]:
    """``"size=32, padding=2"`` -> ``{"size": 32, "padding": 2}``; values are JSON (numbers,
    true/false, lists, quoted strings) or bare words taken as strings. Never evaluated."""
    out: dict[str, Any] = {}
    text = text.strip()
    if not text:
        return out
    if text.startswith("{"):
        val = json.loads(text)
        if not isinstance(val, dict):
            raise ValueError("arguments must be an object")
        return val
    depth, cur, parts = 0, "", []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"expected name=value, got {part.strip()!r}")
        k, v = part.split("=", 1)
        k, v = k.strip(), v.strip().replace("(", "[").replace(")", "]")
        if not k.isidentifier():
            raise ValueError(f"bad argument name {k!r}")
        low = {"True": "true", "False": "false", "None": "null"}.get(v, v)
        try:
            out[k] = json.loads(low)
        except json.JSONDecodeError:
            if "=" in v:
                raise ValueError(
                    f"{k}={v}: separate the arguments with commas, like size=32, padding=2"
                ) from None
            out[k] = v.strip("'\"")
    return out


def format_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())


_FORMATS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR-10"}


def _chw(input_shape: Any) -> tuple[int, int, int]:
    """Channels, height and width of a model's input shape ([C, H, W] or [H, W])."""
    if len(input_shape) >= 3:
        return int(input_shape[-3]), int(input_shape[-2]), int(input_shape[-1])
    if len(input_shape) == 2:
        return 1, int(input_shape[0]), int(input_shape[1])
    return 1, 1, int(input_shape[-1])


def _source_text(ds: Any) -> str:
    if ds.source == "procedural":
        return f"procedural '{ds.name}'"
    if ds.source == "folder":
        return str(ds.path)
    return f"{_FORMATS.get(ds.source, ds.source)} files in {ds.path}"


class DatasetPanel(QWidget):
    def __init__(self, controller):
        super().__init__()
        self.c = controller
        self.indices = np.zeros(0, np.int64)
        self.aug_index = 0
        self.aug_seed = 0
        self._loading = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 16)
        lay.setSpacing(12)
        self.head = title("Dataset", "")
        lay.addWidget(self.head)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(QLabel("Source"))
        self.source = QComboBox()
        for k, desc in PROCEDURAL.items():
            self.source.addItem(f"Procedural: {k}", ("procedural", k))
            self.source.setItemData(self.source.count() - 1, desc, Qt.ToolTipRole)
        self.source.addItem("Folder on disk…", ("folder", None))
        self.source.setItemData(
            self.source.count() - 1,
            "An image folder (one sub-folder per class), MNIST or FashionMNIST IDX files, "
            "or CIFAR-10 binary batches: the format is recognised",
            Qt.ToolTipRole,
        )
        self.source.setToolTip(
            "Procedural data needs no download; a folder on disk may hold class sub-folders "
            "of images, MNIST/FashionMNIST IDX files or CIFAR-10 binary batches"
        )
        self.source.activated.connect(self._source_chosen)
        bar.addWidget(self.source)
        bar.addWidget(QLabel("Images"))
        self.size = QSpinBox()
        self.size.setRange(10, MAX_PROCEDURAL_IMAGES)
        self.size.setSingleStep(1000)
        self.size.setToolTip(
            f"How many procedural images to generate (up to {MAX_PROCEDURAL_IMAGES:,}; they "
            "are held in memory)"
        )
        self.size.editingFinished.connect(self._size_changed)
        # room for the largest count and the arrows (the style's padding is not counted)
        self.size.setMinimumWidth(self.size.fontMetrics().horizontalAdvance("200000") + 44)
        bar.addWidget(self.size)
        bar.addStretch(1)
        lay.addLayout(bar)
        # the grid's filters and pages on a row of their own: the window fits 1024 pixels
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(QLabel("Split"))
        self.split = QComboBox()
        self.split.addItems(["all", "train", "validation"])
        self.split.currentIndexChanged.connect(self._refilter)
        bar.addWidget(self.split)
        bar.addWidget(QLabel("Class"))
        self.klass = QComboBox()
        # 16 characters in the box (a long folder name must not widen the window); the list
        # that drops down shows whole names, and the tooltip the chosen one
        self.klass.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.klass.setMinimumContentsLength(16)
        self.klass.currentTextChanged.connect(self.klass.setToolTip)
        self.klass.currentIndexChanged.connect(self._refilter)
        bar.addWidget(self.klass)
        bar.addStretch(1)
        self.pager = Pager(PAGE)
        self.pager.changed.connect(lambda _: self._show_page())
        bar.addWidget(self.pager)
        lay.addLayout(bar)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.hide()
        lay.addWidget(self.error)

        split = QSplitter(Qt.Horizontal)
        lay.addWidget(split, 1)
        self.grid = ImageGrid(self._item, cell=56)
        self.grid.setToolTip("Click an image to preview its augmentations")
        self.grid.clicked.connect(self._pick)
        split.addWidget(self.grid)

        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(8, 0, 0, 0)
        sl.setSpacing(8)
        counts_head = QHBoxLayout()
        counts_head.addWidget(section("Class counts"))
        counts_head.addStretch(1)
        # (here, not in the source bar: the window must fit a 1280-pixel-wide screen)
        self.skip = QCheckBox("Skip unreadable images")
        self.skip.setToolTip(
            "Leave out images of the folder that cannot be decoded (each is named in the "
            "training log and the status bar) instead of stopping the run at the first one"
        )
        self.skip.toggled.connect(self._skip_changed)
        counts_head.addWidget(self.skip)
        sl.addLayout(counts_head)
        self.counts = pg.PlotWidget()
        self.counts.setMinimumHeight(150)
        self.counts.setMenuEnabled(False)
        self.counts.setMouseEnabled(False, False)
        self.counts.hideButtons()
        style_plot(self.counts, x=False, y=False)  # grid lines would cross the bars
        sl.addWidget(self.counts, 2)

        aug_head = QHBoxLayout()
        aug_head.addWidget(section("Augmentation preview"))
        aug_head.addStretch(1)
        self.reroll = QPushButton("Re-roll")
        self.reroll.setToolTip("Draw the random transforms again (R)")
        self.reroll.setShortcut("R")
        self.reroll.clicked.connect(self._reroll)
        aug_head.addWidget(self.reroll)
        sl.addLayout(aug_head)
        self.aug_card = Card(name="panel")
        al = QHBoxLayout(self.aug_card)
        al.setContentsMargins(10, 10, 10, 10)
        al.setSpacing(6)
        self.aug_labels = []
        for k in range(N_AUG + 1):
            lab = QLabel()
            lab.setFixedSize(AUG_CELL, AUG_CELL)
            lab.setAlignment(Qt.AlignCenter)
            if k == 0:
                lab.setToolTip("the original image")
                lab.setStyleSheet(f"border: 1px solid {color('ACCENT_DIM')}; border-radius: 3px;")
            al.addWidget(lab)
            self.aug_labels.append(lab)
        al.addStretch(1)
        sl.addWidget(self.aug_card)

        sl.addWidget(section("Training transforms"))
        th = QHBoxLayout()  # (below the title: one row of both is wider than 1024 allows)
        self.t_type = QComboBox()
        self.t_type.addItems(transform_names())
        th.addWidget(self.t_type)
        self.t_buttons = [self.reroll]
        for text, tip, fn in [
            ("Add", "Insert the chosen transform after the selected one", self._t_add),
            ("Remove", "Remove the selected transform (Delete)", self._t_remove),
            ("↑", "Move up", lambda: self._t_move(-1)),
            ("↓", "Move down", lambda: self._t_move(1)),
        ]:
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(fn)
            if len(text) == 1:
                b.setFixedWidth(34)
            th.addWidget(b)
            self.t_buttons.append(b)
        th.addStretch(1)
        sl.addLayout(th)
        keep_typed_keys(self.source, self.split, self.klass, self.t_type)  # R types there
        self.tfm = QTableWidget(0, 2)
        self.tfm.setHorizontalHeaderLabels(["transform", "arguments"])
        self.tfm.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.tfm.horizontalHeader().setStretchLastSection(True)
        self.tfm.verticalHeader().hide()
        self.tfm.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.tfm.setToolTip("Double-click the arguments to edit them, e.g. size=32, padding=2")
        self.tfm.itemChanged.connect(self._t_edited)
        remove = QShortcut(QKeySequence.Delete, self.tfm, self._t_remove)
        remove.setContext(Qt.WidgetShortcut)  # only while the table has the focus
        sl.addWidget(self.tfm, 1)
        self.t_error = QLabel()
        self.t_error.setObjectName("error")
        self.t_error.setWordWrap(True)
        sl.addWidget(self.t_error)
        # the side column scrolls on a short screen instead of making the window taller
        side_scroll = QScrollArea()
        side_scroll.setWidget(side)
        side_scroll.setWidgetResizable(True)
        side_scroll.setFrameShape(QFrame.NoFrame)
        side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        side_scroll.setMinimumWidth(
            side.minimumSizeHint().width() + side_scroll.verticalScrollBar().sizeHint().width()
        )
        self.side_scroll = side_scroll
        split.addWidget(side_scroll)
        split.setChildrenCollapsible(False)
        split.setSizes([640, 520])
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self._enable()

        self._shown: Any = None  # the ImageData on screen
        controller.projectChanged.connect(self._enable)
        controller.stateChanged.connect(self._enable)
        controller.projectChanged.connect(self.reload)
        controller.specChanged.connect(lambda part: part == "dataset" and self.reload())
        controller.dataReady.connect(self._data_ready)
        controller.dataFailed.connect(self._data_failed)

    def _enable(self, *_: Any) -> None:
        """Editing needs an open project, and no run or evaluation going on (it reads the
        images it started with: its predictions would be paired with other images)."""
        has = self.c.project is not None
        locked = self.c.data_locked
        editable = has and not locked
        for w in (self.source, self.size, self.t_type, *self.t_buttons[1:]):
            w.setEnabled(editable)
            w.setToolTip(w.toolTip().split("\n\n")[0] + (f"\n\n{locked}" if locked else ""))
        self.reroll.setEnabled(has)  # only draws the preview again
        self.tfm.setEditTriggers(
            QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
            if editable
            else QAbstractItemView.NoEditTriggers
        )
        if has:
            self.size.setEnabled(editable and self.c.spec.dataset.source == "procedural")
            self.skip.setEnabled(editable and self.c.spec.dataset.source == "folder")
        else:
            self.skip.setEnabled(False)
            self.head.sub_label.setText("Open a project or pick a sample on the Start page.")

    def _refuse_edit(self) -> bool:
        """Whether a data edit must be refused now (said in the panel and the status bar)."""
        locked = self.c.data_locked
        if locked:
            self.t_error.setText(f"Not applied: {locked}")
            self.c.message.emit(locked)
        return bool(locked)

    # ------------------------------------------------------------------ loading

    def showEvent(self, e: Any) -> None:
        super().showEvent(e)
        self._shown_now()

    @guarded
    def _shown_now(self) -> None:
        if self.c.project is not None and (
            self._shown is None or self._shown is not self.c.data_now()
        ):
            self.reload()

    def _data_ready(self) -> None:
        if self.isVisible() and self._shown is not self.c.data_now():
            self.reload()

    def _data_failed(self, message: str) -> None:
        self._show_error(message)

    def reload(self) -> None:
        if self.c.project is None:
            return
        ds = self.c.spec.dataset
        self.grid.set_items([])
        self._loading = True
        key = (ds.source, ds.name if ds.source == "procedural" else None)
        for i in range(self.source.count()):
            d = self.source.itemData(i)
            if d == key or (ds.source != "procedural" and d[0] == "folder"):
                self.source.setCurrentIndex(i)
        self.size.setValue(ds.size)
        self.size.setEnabled(ds.source == "procedural" and not self.c.data_locked)
        self.skip.setChecked(ds.on_error == "skip")
        self.skip.setEnabled(ds.source == "folder" and not self.c.data_locked)
        self._fill_transforms()
        self._loading = False
        self._shown = None
        self.indices = np.zeros(0, np.int64)
        self.pager.set_total(0)
        if not self.isVisible():
            return
        try:
            d = self.c.request_data()  # never waits: the loader thread does the work
        except Exception as e:
            self._show_error(str(e))
            return
        if d is None:
            self.error.hide()
            self.head.sub_label.setText(f"Preparing the images of {_source_text(ds)}…")
            return
        self._shown = d
        self.error.hide()
        skipped = (
            f" · {len(d.skipped)} unreadable left out ({d.skipped[0][0]}"
            + (", ..." if len(d.skipped) > 1 else "")
            + ")"
            if d.skipped
            else ""
        )
        split = f" ({d.split_note})" if d.split_note else ""
        self.head.sub_label.setText(
            f"{len(d):,} images from {_source_text(ds)} · {d.num_classes} classes · "
            f"{len(d.train_indices):,} train / {len(d.val_indices):,} validation{split} · "
            f"input {'×'.join(map(str, self.c.spec.model.input_shape))}" + skipped  # noqa: RUF001
        )
        self.klass.blockSignals(True)
        self.klass.clear()
        self.klass.addItem("all classes", -1)
        for k, name in enumerate(d.classes):
            self.klass.addItem(name, k)
        fm = self.klass.view().fontMetrics()
        widest = max(fm.horizontalAdvance(t) for t in ["all classes", *map(str, d.classes)])
        self.klass.view().setMinimumWidth(min(widest + 40, 600))
        self.klass.setToolTip(self.klass.currentText())
        self.klass.blockSignals(False)
        self._draw_counts(d)
        self._refilter()
        self.aug_index = int(d.train_indices[0]) if len(d.train_indices) else 0
        self._draw_aug()

    def _show_error(self, message: str) -> None:
        self.error.setText(f"Cannot load the data: {message}")
        self.error.show()
        self.head.sub_label.setText("")
        self._shown = None
        self.indices = np.zeros(0, np.int64)
        self.pager.set_total(0)
        self.grid.set_items([])

    def _draw_counts(self, d: Any) -> None:
        self.counts.clear()
        counts = d.class_counts()
        y = np.arange(len(counts))
        bars = pg.BarGraphItem(
            x0=0,
            y=y,
            height=0.7,
            width=counts,
            brush=color("ACCENT_DIM"),
            pen=pg.mkPen(color("ACCENT"), width=1),
        )
        self.counts.addItem(bars)
        ax = self.counts.getAxis("left")
        ax.setTicks([[(int(i), f"{d.classes[i]} ({counts[i]})") for i in y]])
        self.counts.setYRange(-0.6, len(counts) - 0.4, padding=0)
        self.counts.setXRange(0, max(1, counts.max()) * 1.05, padding=0)

    def _refilter(self) -> None:
        d = self._shown
        if self._loading or d is None:
            return
        split = self.split.currentText()
        idx = {"train": d.train_indices, "validation": d.val_indices}.get(split, np.arange(len(d)))
        k = self.klass.currentData()
        if k is not None and k >= 0:
            idx = idx[d.labels[idx] == k]
        self.indices = np.asarray(idx)
        self.pager.set_total(len(self.indices))
        self._show_page()

    def _show_page(self) -> None:
        self.grid.set_items(self.indices[self.pager.slice()])

    def _item(self, i: int) -> tuple:
        d = self._shown
        if d is None:
            return np.zeros((4, 4, 3), np.uint8), "", None, ""
        label = d.classes[int(d.labels[i])]
        return d.image(i), label, None, f"image {i} · class {label}"

    # ------------------------------------------------------------------ source

    def _source_chosen(self, i: int) -> None:
        if self.c.project is None:
            return
        if self._refuse_edit():
            self.reload()
            return
        kind, name = self.source.itemData(i)
        ds = self.c.spec.dataset
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Image folder (one sub-folder per class)")
            if not path:
                self.reload()
                return
            self.set_folder(path)
            return
        ds.source, ds.name, ds.path = "procedural", name, None
        self.c.mark_changed("dataset")

    def set_folder(self, path: str, source: str | None = None, classes: int | None = None) -> None:
        """Use a folder as the data (also from drag-and-drop): an image folder, MNIST /
        FashionMNIST IDX files or CIFAR-10 batches, recognised unless ``source`` says. An
        untrained model's output layer follows the folder's class count (``classes`` when the
        caller has counted them)."""
        if self.c.project is None:
            return
        if self._refuse_edit():
            self.reload()
            return
        try:
            kind = source or detect_source(path)
        except DataError as e:
            self._show_error(str(e))
            return
        n = classes if classes is not None else class_count(path, kind)
        problem = self.c.class_problem(n) if n is not None else None
        if problem:  # the current data stays
            self.reload()
            self.error.setText(f"{path} was not used: {problem}")
            self.error.show()
            self.c.message.emit(f"{path} was not used: {problem}")
            return
        ds = self.c.spec.dataset
        ds.path = str(path)
        ds.source = kind
        if kind == "folder":
            # a folder of the user's files: one corrupt image should not stop a run (it is
            # named when met; the "Skip unreadable" box turns this off)
            ds.on_error = "skip"
        self.c.mark_changed("dataset")
        if n:
            self.c.fit_output_to(n)

    def _skip_changed(self, on: bool) -> None:
        if self._loading or self.c.project is None:
            return
        ds = self.c.spec.dataset
        want = "skip" if on else "raise"
        if ds.on_error == want:
            return
        if self._refuse_edit():
            self.reload()
            return
        ds.on_error = want
        self.c.mark_changed("dataset")

    def _size_changed(self) -> None:
        if self.c.project is None:
            return
        ds = self.c.spec.dataset
        if not self._loading and ds.source == "procedural" and self.size.value() != ds.size:
            if self._refuse_edit():
                self.size.setValue(ds.size)
                return
            ds.size = self.size.value()
            self.c.mark_changed("dataset")

    # ------------------------------------------------------------------ augmentation

    def _pick(self, index: Any) -> None:
        self.aug_index = int(index.data(Qt.UserRole))
        self._draw_aug()

    def _reroll(self) -> None:
        if self.c.project is None:
            return
        self.aug_seed += N_AUG
        self._draw_aug()

    def _draw_aug(self) -> None:
        d = self._shown
        if d is None or not len(d):
            return
        self.aug_labels[0].setPixmap(pixmap(d.image(self.aug_index), AUG_CELL - 4))
        for k in range(N_AUG):
            try:
                img = d.augment(self.aug_index, self.aug_seed + k)
            except Exception as e:
                self.t_error.setText(f"Transform failed: {e}")
                for lab in self.aug_labels[1:]:  # no stale pictures beside the message
                    lab.clear()
                return
            self.aug_labels[k + 1].setPixmap(pixmap(img, AUG_CELL - 4))

    # ------------------------------------------------------------------ transforms editor

    def _fill_transforms(self) -> None:
        self.tfm.blockSignals(True)
        self.tfm.setRowCount(0)
        for t in self.c.spec.dataset.transforms:
            r = self.tfm.rowCount()
            self.tfm.insertRow(r)
            it = QTableWidgetItem(t.type)
            it.setFlags(it.flags() & ~Qt.ItemIsEditable)
            self.tfm.setItem(r, 0, it)
            self.tfm.setItem(r, 1, QTableWidgetItem(format_args(t.args)))
        self.tfm.blockSignals(False)

    def _apply_transforms(self, new: list[TransformSpec]) -> bool:
        """Store a new transform list if it can work on the model's images (arguments,
        crops that fit, the output size the model takes); else say why and keep the old.
        Returns whether it was stored."""
        if self._refuse_edit():
            self._fill_transforms()
            return False
        problem = transform_problem(new, self.c.spec.model.input_shape)
        if problem:
            self.t_error.setText(f"Not applied: {problem}")
            self._fill_transforms()
            return False
        self.t_error.setText("")
        self.c.spec.dataset.transforms = new
        d = self.c.data_now()
        if d is not None:
            d.transform = build_transform(new)
        self.c.mark_changed("transforms")
        self._fill_transforms()
        self._draw_aug()
        return True

    def _defaults(self, name: str) -> list[TransformSpec]:
        """What Add puts in for ``name``: arguments that work on the model's images, and,
        for Pad (which makes every image larger), a RandomCrop back to the model's size
        after it, unless a later transform does that (padding then cropping at random
        shifts the picture: the usual pairing)."""
        c, h, w = _chw(self.c.spec.model.input_shape)
        side = h if h == w else [h, w]
        args = {
            "RandomCrop": {"size": side, "padding": 2},
            "RandomResizedCrop": {"size": side, "scale": [0.6, 1.0]},
            "RandomRotation": {"degrees": 15},
            "RandomAffine": {"degrees": 10, "translate": [0.1, 0.1]},
            "ColorJitter": {"brightness": 0.3, "contrast": 0.3},
            "GaussianBlur": {"kernel_size": 3},
            "Grayscale": {"num_output_channels": c if c in (1, 3) else 1},
            "Pad": {"padding": 2},
            "CenterCrop": {"size": side},
            "Resize": {"size": side},
        }.get(name, {})
        out = [TransformSpec(type=name, args=args)]
        if name == "Pad":
            out.append(TransformSpec(type="RandomCrop", args={"size": side}))
        return out

    def _t_add(self) -> None:
        """Insert the chosen transform after the selected one (at the end when none is
        selected)."""
        if self.c.project is None:
            return
        name = self.t_type.currentText()
        added = self._defaults(name)
        old = list(self.c.spec.dataset.transforms)
        r = self.tfm.currentRow()
        at = r + 1 if 0 <= r < len(old) else len(old)
        shape = self.c.spec.model.input_shape
        if len(added) > 1 and not transform_problem([*old[:at], added[0], *old[at:]], shape):
            added = added[:1]  # a transform after it brings the size back already
        new = [*old[:at], *added, *old[at:]]
        if self._apply_transforms(new):
            self.tfm.selectRow(at)
            if len(added) > 1:
                self.t_error.setText(
                    f"{name} makes the images larger: a RandomCrop back to the model's size "
                    "follows it"
                )

    def _t_remove(self) -> None:
        if self.c.project is None:
            return
        r = self.tfm.currentRow()
        new = list(self.c.spec.dataset.transforms)
        if not 0 <= r < len(new):
            self.t_error.setText("Select the transform to remove first")
            return
        del new[r]
        if self._apply_transforms(new) and new:
            self.tfm.selectRow(min(r, len(new) - 1))

    def _t_move(self, step: int) -> None:
        if self.c.project is None:
            return
        r = self.tfm.currentRow()
        new = list(self.c.spec.dataset.transforms)
        if not 0 <= r < len(new):
            self.t_error.setText("Select the transform to move first")
            return
        if not 0 <= r + step < len(new):
            return
        new[r], new[r + step] = new[r + step], new[r]
        self.tfm.selectRow(r + step if self._apply_transforms(new) else r)

    def _t_edited(self, item: QTableWidgetItem) -> None:
        if item.column() != 1:
            return
        r = item.row()
        try:
            args = parse_args(item.text())
        except (ValueError, json.JSONDecodeError) as e:
            self.t_error.setText(f"transform {r + 1}: {e}")
            self._fill_transforms()
            return
        new = [t.model_copy() for t in self.c.spec.dataset.transforms]
        new[r] = TransformSpec(type=new[r].type, args=args)
        self._apply_transforms(new)
