"""Small shared widgets: numpy -> pixmap, a lazily painted paged image grid, metric tiles,
growing plot series, a spin box for rates."""

from __future__ import annotations

import functools
import math
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QValidator
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSizePolicy,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from studio.imaging import to_rgb
from studio.ui.theme import color

# where a guarded handler's error is shown (the main window sets it: its status bar)
error_reporter: Callable[[str], None] | None = None


def guarded(method: Callable) -> Callable:
    """Wrap a Qt virtual override (showEvent, paintEvent, a model's ``data``...): an
    exception raised in it would reach Qt's C++ code and can end the process, so it is
    printed, reported to the user in one line, and the handler returns None instead."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as e:
            report_error(method.__qualname__, e)
            return None

    return wrapper


def report_error(where: str, e: Exception) -> None:
    """Print the traceback of ``e`` (being handled) and show one line to the user."""
    traceback.print_exc(file=sys.stderr)
    if error_reporter is not None:
        try:
            error_reporter(f"internal error in {where}: {e}")
        except Exception:  # (the reporter itself failing must not raise into Qt either)
            pass


def qimage(rgb: np.ndarray) -> QImage:
    a = np.ascontiguousarray(to_rgb(rgb))
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format_RGB888).copy()


def pixmap(rgb: np.ndarray, size: int | None = None, smooth: bool = False) -> QPixmap:
    pm = QPixmap.fromImage(qimage(rgb))
    if size:
        mode = Qt.SmoothTransformation if smooth else Qt.FastTransformation
        pm = pm.scaled(size, size, Qt.KeepAspectRatio, mode)
    return pm


def framed(pm: QPixmap, border: str | None, width: int = 3) -> QPixmap:
    """The pixmap with a coloured frame (right/wrong predictions)."""
    if not border:
        return pm
    out = QPixmap(pm.width() + 2 * width, pm.height() + 2 * width)
    out.fill(QColor(border))
    p = QPainter(out)
    p.drawPixmap(width, width, pm)
    p.end()
    return out


def section(text: str) -> QLabel:
    lab = QLabel(text.upper())
    lab.setObjectName("section")
    return lab


def title(text: str, sub: str = "") -> QWidget:
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(2)
    t = QLabel(text)
    t.setObjectName("title")
    lay.addWidget(t)
    w.title_label = t  # type: ignore[attr-defined]
    s = QLabel(sub)
    s.setObjectName("subtitle")
    s.setWordWrap(True)
    lay.addWidget(s)
    w.sub_label = s  # type: ignore[attr-defined]
    return w


class Card(QFrame):
    """A rounded panel; emits ``clicked`` when pressed."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None, name: str = "card"):
        super().__init__(parent)
        self.setObjectName(name)
        self.setCursor(Qt.PointingHandCursor if name == "card" else Qt.ArrowCursor)

    @guarded
    def mouseReleaseEvent(self, e: Any) -> None:
        if e.button() == Qt.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(e)


def fmt_metric(v: Any, decimals: int = 4) -> str:
    """A metric in a few characters whatever its size: ``decimals`` places for ordinary
    values (``0.6931``), three significant digits in scientific notation for huge or tiny
    ones (``1.23e+30``: a diverged loss must not print 31 digits), ``nan``, ``inf``."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "--"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and not 10.0 ** -(decimals - 1) <= abs(x) < 1e4:
        return f"{x:.2e}"
    return f"{x:.{decimals}f}"


class MetricTile(QFrame):
    """A name over a value. The value never widens the tile (a long text is cut, the whole
    of it in the tooltip): the window must keep its size whatever a run reports."""

    def __init__(self, name: str, value: str = "--", sample: str = ""):
        super().__init__()
        self.setObjectName("panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        lay.setSpacing(0)
        self.name = QLabel(name)
        self.name.setObjectName("metricName")
        self.value = QLabel(value)
        self.value.setObjectName("metric")
        self.value.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        # room for a typical value (``sample``, in the value's own larger font) or the name
        self.value.ensurePolished()
        room = self.value.fontMetrics().horizontalAdvance(sample) if sample else 0
        self.value.setMinimumWidth(max(room, self.name.sizeHint().width()))
        lay.addWidget(self.name)
        lay.addWidget(self.value)

    def set(self, text: str) -> None:
        self.value.setText(text)
        self.value.setToolTip(text)


class TypedKeysFilter(QObject):
    """Keeps single-key shortcuts (R: re-roll) away from widgets that take typed letters,
    as text fields already do: a list box jumps to the entry typed (R: RandomCrop). Install
    on such widgets with :func:`keep_typed_keys`."""

    def eventFilter(self, obj: QObject, e: QEvent) -> bool:
        if e.type() == QEvent.ShortcutOverride:
            mods = e.modifiers() & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)
            if not mods and e.text() and e.text().isprintable():
                e.accept()  # the widget takes the key: no shortcut fires
                return True
        return False


def keep_typed_keys(*widgets: QWidget) -> None:
    for w in widgets:
        f = TypedKeysFilter(w)
        w.installEventFilter(f)


class TileRow(QWidget):
    """Metric tiles side by side, or in rows of ``min_columns`` when the window is too
    narrow for one row (a 1024-pixel screen): values are never cut to fit."""

    def __init__(self, tiles: Sequence[QWidget], min_columns: int = 3, spacing: int = 12):
        super().__init__()
        self.tiles = list(tiles)
        self.min_columns = min_columns
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(spacing)
        self.columns = 0
        self._arrange(len(self.tiles))

    def _width(self, columns: int) -> int:
        """The width ``columns`` columns need: each as wide as its widest tile."""
        need = [0] * columns
        for k, t in enumerate(self.tiles):
            need[k % columns] = max(need[k % columns], t.minimumSizeHint().width())
        return sum(need) + (columns - 1) * self.grid.spacing()

    def _arrange(self, columns: int) -> None:
        if columns == self.columns:
            return
        for t in self.tiles:
            self.grid.removeWidget(t)
        for k, t in enumerate(self.tiles):
            self.grid.addWidget(t, k // columns, k % columns)
        for c in range(len(self.tiles)):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)
        self.columns = columns

    def minimumSizeHint(self) -> QSize:
        return QSize(self._width(self.min_columns), self.grid.minimumSize().height())

    @guarded
    def resizeEvent(self, e: Any) -> None:
        one_row = e.size().width() >= self._width(len(self.tiles))
        self._arrange(len(self.tiles) if one_row else self.min_columns)
        super().resizeEvent(e)


# --------------------------------------------------------------------------- image grid

ItemFn = Callable[[int], tuple[np.ndarray, str, str | None, str]]  # rgb, caption, border, tip


class ImageGridModel(QAbstractListModel):
    """A page of items; pictures are made only when a row is painted, then cached."""

    def __init__(self, item_fn: ItemFn, cell: int = 64):
        super().__init__()
        self.item_fn = item_fn
        self.cell = cell
        self.items: list[int] = []
        self._cache: dict[int, tuple[QPixmap, str, str]] = {}

    def set_items(self, items: Sequence[int]) -> None:
        self.beginResetModel()
        self.items = [int(i) for i in items]
        self._cache.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def _entry(self, row: int) -> tuple[QPixmap, str, str]:
        key = self.items[row]
        hit = self._cache.get(key)
        if hit is None:
            try:
                rgb, caption, border, tip = self.item_fn(key)
            except (OSError, ValueError) as e:  # an unreadable image: a grey cell says why
                rgb, caption, border = np.full((4, 4, 3), 64, np.uint8), "unreadable", None
                tip = str(e)
            pm = framed(pixmap(rgb, self.cell - (6 if border else 0)), border)
            hit = (pm, caption, tip)
            self._cache[key] = hit
        return hit

    @guarded
    def data(self, index: QModelIndex, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.items):
            return None
        if role == Qt.DecorationRole:
            return self._entry(index.row())[0]
        if role == Qt.DisplayRole:
            return self._entry(index.row())[1]
        if role == Qt.ToolTipRole:
            return self._entry(index.row())[2]
        if role == Qt.UserRole:
            return self.items[index.row()]
        return None


class _FixedCell(QStyledItemDelegate):
    """Every item the size of a grid cell: captions get the cell's width (not the first
    item's), and no item has to be rendered to be measured."""

    def __init__(self, size: QSize, parent: QWidget):
        super().__init__(parent)
        self._size = size

    def sizeHint(self, option: Any, index: QModelIndex) -> QSize:
        return self._size


class ImageGrid(QListView):
    """Icon-mode list of an :class:`ImageGridModel`."""

    def __init__(
        self, item_fn: ItemFn, cell: int = 64, caption_lines: int = 1, width: int | None = None
    ):
        super().__init__()
        self.grid_model = ImageGridModel(item_fn, cell)
        self.setModel(self.grid_model)
        self.setViewMode(QListView.IconMode)
        self.setResizeMode(QListView.Adjust)
        self.setMovement(QListView.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.Batched)
        self.setBatchSize(64)
        self.setIconSize(QSize(cell, cell))
        # ``width`` leaves room for captions longer than the picture ("✗ crescent")
        size = QSize(max(cell + 18, width or 0), cell + 8 + 17 * caption_lines)
        self.setGridSize(size)
        self.setItemDelegate(_FixedCell(size - QSize(4, 4), self))
        self.setSpacing(4)
        # no wrapping: Qt would wrap captions at the picture's width; lines are "\n"-split
        self.setWordWrap(False)
        self.setTextElideMode(Qt.ElideRight)
        self.setSelectionMode(QListView.SingleSelection)

    def set_items(self, items: Sequence[int]) -> None:
        self.grid_model.set_items(items)


class Pager(QWidget):
    """Previous / next with "page i of n"; emits ``changed(page)``."""

    changed = Signal(int)

    def __init__(self, page_size: int = 200):
        super().__init__()
        self.page_size = page_size
        self.page = 0
        self.total = 0
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.prev = QPushButton("‹")  # noqa: RUF001
        self.next = QPushButton("›")  # noqa: RUF001
        for b in (self.prev, self.next):
            b.setFixedWidth(34)
        self.label = QLabel()
        self.label.setMinimumWidth(150)
        self.label.setAlignment(Qt.AlignCenter)
        lay.addWidget(self.prev)
        lay.addWidget(self.label)
        lay.addWidget(self.next)
        self.prev.clicked.connect(lambda: self.go(self.page - 1))
        self.next.clicked.connect(lambda: self.go(self.page + 1))
        self.prev.setToolTip("Previous page (PgUp)")
        self.next.setToolTip("Next page (PgDown)")
        self._update()

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def set_total(self, total: int) -> None:
        self.total = total
        self.page = min(self.page, self.pages - 1)
        self._update()

    def go(self, page: int) -> None:
        page = max(0, min(page, self.pages - 1))
        if page != self.page:
            self.page = page
            self._update()
            self.changed.emit(page)

    def slice(self) -> slice:
        return slice(self.page * self.page_size, (self.page + 1) * self.page_size)

    def _update(self) -> None:
        a = self.page * self.page_size
        b = min(self.total, a + self.page_size)
        self.label.setText(f"{a + 1 if self.total else 0}–{b} of {self.total:,}")  # noqa: RUF001
        self.prev.setEnabled(self.page > 0)
        self.next.setEnabled(self.page < self.pages - 1)


# --------------------------------------------------------------------------- plot series


class Series:
    """A growing (x, y) series on preallocated arrays, drawn with ``setData`` on views.

    Every point is kept; beyond ``MAX_POINTS`` the curve gets a min/max envelope per bucket
    of points (peaks stay visible), so a long run costs a repaint what a short one does.
    """

    MAX_POINTS = 1000  # about two per pixel of a plot

    def __init__(self, curve: Any, capacity: int = 4096):
        self.curve = curve
        self.x = np.empty(capacity, np.float64)
        self.y = np.empty(capacity, np.float64)
        self.n = 0
        self.dirty = False

    def clear(self) -> None:
        self.n = 0
        self.dirty = True

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        k = len(xs)
        if not k:
            return
        need = self.n + k
        if need > len(self.x):
            cap = max(need, 2 * len(self.x))
            self.x = np.resize(self.x, cap)
            self.y = np.resize(self.y, cap)
        self.x[self.n : need] = xs
        self.y[self.n : need] = ys
        self.n = need
        self.dirty = True

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """What is drawn: the points, or their min/max envelope when there are many."""
        x, y = self.x[: self.n], self.y[: self.n]
        if self.n <= self.MAX_POINTS:
            return x, y
        k = -(-self.n // (self.MAX_POINTS // 2))  # points per bucket
        m = self.n // k * k
        xb, yb = x[:m].reshape(-1, k), y[:m].reshape(-1, k)
        env_x = np.repeat(xb[:, k // 2], 2)
        env_y = np.stack([np.fmin.reduce(yb, axis=1), np.fmax.reduce(yb, axis=1)], 1).ravel()
        return np.concatenate([env_x, x[m:]]), np.concatenate([env_y, y[m:]])

    def draw(self) -> None:
        if self.dirty:
            x, y = self.view()
            self.curve.setData(x, y, connect="finite")
            self.dirty = False


def pen(name: str, width: float = 1.6) -> QPen:
    p = QPen(QColor(color(name)))
    p.setWidthF(width)
    p.setCosmetic(True)
    return p


class RateSpinBox(QDoubleSpinBox):
    """A spin box for learning rates and weight decay: shows a value as written (``2e-06``,
    ``0.0005``, up to 6 significant digits), accepts scientific notation, and keeps a value
    set from code exactly (a plain QDoubleSpinBox rounds it to its decimals and clamps it to
    its minimum, so 2e-6 would come back as 1e-05). The arrows step one unit of the leading
    digit: 0.001 -> 0.002 up, 0.001 -> 0.0009 down."""

    def __init__(self, minimum: float, maximum: float):
        super().__init__()
        self.setDecimals(20)  # no rounding that matters: 1e-20 is far below any rate used
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)  # one valueChanged per finished edit, not per key

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        if text.strip() == self.textFromValue(self.value()):
            return self.value()  # the shown text of a longer value: keep every digit
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        t = text.strip().lower()
        if t in ("", "+", "-", ".") or t.endswith(("e", "e-", "e+")):
            return QValidator.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            return QValidator.Invalid, text, pos
        if not math.isfinite(v):
            return QValidator.Invalid, text, pos
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.Acceptable if ok else QValidator.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:
        v = self.value()
        for _ in range(abs(steps)):
            if v <= 0:
                v = self.singleStep() if steps > 0 else 0.0
                continue
            unit = 10 ** math.floor(math.log10(v) + 1e-9)
            if steps < 0 and v <= unit * (1 + 1e-9):
                unit /= 10  # 0.001 down is 0.0009, not 0
            v = float(f"{v + (unit if steps > 0 else -unit):.6g}")
        self.setValue(min(max(v, self.minimum()), self.maximum()))
