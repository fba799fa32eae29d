"""Start page: the sample gallery and the recent projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.data import procedural_arrays
from studio.imaging import grid
from studio.project import ProjectSpec, sample_projects
from studio.ui.widgets import Card, pixmap, section, title

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "projects"
THUMB = 168
SHORTCUTS = [
    ("Ctrl+O", "Open a project file (.darkproj or project .json)"),
    ("F5", "Start training, or continue from the step it stopped at"),
    ("F6  ·  Shift+F5", "Pause or resume after the batch  ·  stop and keep the model"),
    ("Ctrl+1 … 5", "Start, Dataset, Model, Training and Outputs"),
    ("Ctrl+S", "Save weights, optimizer state and history in one .darkproj"),
    ("Drop a folder", "Image class folders, MNIST / FashionMNIST or CIFAR-10 files"),
]


def _key_card(key: str, text: str) -> QWidget:
    card = Card(name="panel")
    lay = QVBoxLayout(card)
    lay.setContentsMargins(12, 10, 12, 10)
    head = title(key, text)
    head.setStyleSheet("background: transparent;")
    head.title_label.setObjectName("key")  # type: ignore[attr-defined]
    lay.addWidget(head)
    return card


def sample_thumbnail(spec: ProjectSpec) -> object | None:
    """A grid of the sample's first images (numpy RGB) or None when data is unavailable."""
    if spec.dataset.source != "procedural":
        return None
    try:
        images, _, _ = procedural_arrays(spec.dataset.name, 16, spec.dataset.seed)
    except Exception:
        return None
    return grid(list(images[:16]), 4, (THUMB - 10) // 4)


class StartPanel(QWidget):
    openPath = Signal(str)
    openDialog = Signal()

    def __init__(self, controller, samples_dir: Path = SAMPLES_DIR):
        super().__init__()
        self.controller = controller
        self.samples_dir = Path(samples_dir)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(32, 28, 32, 28)
        lay.setSpacing(16)
        head = QHBoxLayout()
        head.addWidget(
            title(
                "Dark Studio",
                "Open a sample or a project, look at the data, "
                "shape the network, train it live and inspect "
                "what it predicts. Drop a project file or an "
                "image folder anywhere in the window.",
            ),
            1,
        )
        self.open_btn = QPushButton("Open project…")
        self.open_btn.setObjectName("primary")
        self.open_btn.setToolTip("Open a .darkproj or project.json (Ctrl+O)")
        self.open_btn.clicked.connect(self.openDialog)
        head.addWidget(self.open_btn, 0, Qt.AlignTop)
        lay.addLayout(head)
        lay.addWidget(section("Samples"))
        self.grid = QGridLayout()
        self.grid.setSpacing(16)
        self.grid.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        lay.addLayout(self.grid)
        lay.addWidget(section("Recent projects"))
        self.recent = QListWidget()
        self.recent.itemActivated.connect(lambda it: self.openPath.emit(it.data(Qt.UserRole)))
        self.recent.setToolTip("Double-click to open")
        lay.addWidget(self.recent)
        lay.addSpacing(4)
        lay.addWidget(section("Getting around"))
        keys = QGridLayout()
        keys.setHorizontalSpacing(16)
        keys.setVerticalSpacing(12)
        for k, (key, text) in enumerate(SHORTCUTS):
            keys.addWidget(_key_card(key, text), k // 3, k % 3)
        lay.addLayout(keys)
        lay.addStretch(1)
        self.cards: list[Card] = []
        self.populate()

    def populate(self) -> None:
        for c in self.cards:
            c.setParent(None)
        self.cards = []
        for k, (path, spec, err) in enumerate(sample_projects(self.samples_dir)):
            card = self._card(path, spec, err)
            self.grid.addWidget(card, k // 3, k % 3)
            self.cards.append(card)
        self.refresh_recent()

    def _card(self, path: Path, spec: ProjectSpec | None, err: str) -> Card:
        card = Card()
        card.setFixedWidth(360)
        lay = QHBoxLayout(card)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.setSpacing(12)
        pic = QLabel()
        pic.setFixedSize(THUMB, THUMB)
        pic.setAlignment(Qt.AlignCenter)
        if spec is not None:
            rgb = sample_thumbnail(spec)
            if rgb is not None:
                pic.setPixmap(pixmap(rgb))
        lay.addWidget(pic)
        text = QVBoxLayout()
        text.setSpacing(4)
        name = QLabel(spec.name if spec else path.name)
        name.setStyleSheet("font-size: 12pt; font-weight: 600;")
        name.setWordWrap(True)
        text.addWidget(name)
        chip = QLabel(spec.task if spec else "invalid")
        chip.setObjectName("metricName")
        text.addWidget(chip)
        desc = QLabel(spec.description if spec else err)
        desc.setWordWrap(True)
        desc.setObjectName("subtitle" if spec else "error")
        text.addWidget(desc)
        text.addStretch(1)
        lay.addLayout(text, 1)
        card.setToolTip(str(path))
        card.clicked.connect(lambda p=str(path): self.openPath.emit(p))
        card.sample_path = str(path)  # type: ignore[attr-defined]
        return card

    def refresh_recent(self) -> None:
        self.recent.clear()
        for p in self.controller.recent():
            it = QListWidgetItem(f"{Path(p).name}    —    {Path(p).parent}")
            it.setData(Qt.UserRole, p)
            it.setToolTip(p)
            if not Path(p).exists():
                it.setForeground(Qt.gray)
            self.recent.addItem(it)
        if not self.recent.count():
            it = QListWidgetItem("No recent projects yet")
            it.setFlags(Qt.NoItemFlags)
            self.recent.addItem(it)
        # as tall as its rows (up to six), not a fixed empty box
        rows = min(self.recent.count(), 6)
        self.recent.setFixedHeight(rows * max(self.recent.sizeHintForRow(0), 24) + 8)
