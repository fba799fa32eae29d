"""The main window: a navigation rail, the panels, menus, shortcuts, drag-and-drop, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from studio.data import DataError, detect_source, open_reader
from studio.project import SUFFIX, DatasetSpec, ProjectError, load_project
from studio.ui import widgets
from studio.ui.controller import Controller
from studio.ui.panels.dataset import DatasetPanel
from studio.ui.panels.model import ModelPanel
from studio.ui.panels.outputs import OutputsPanel
from studio.ui.panels.start import StartPanel
from studio.ui.panels.training import TrainingPanel, skipped_text
from studio.ui.widgets import guarded, report_error

PANELS = ["Start", "Dataset", "Model", "Training", "Outputs"]
ICONS = ["⌂", "▦", "◈", "◔", "◎"]
FILTER = f"Dark Studio projects (*{SUFFIX} *.json);;All files (*)"


class MainWindow(QMainWindow):
    """The studio window. ``ask`` answers confirmation dialogs in tests (None: ask a person)
    and ``save_answer`` the unsaved-changes question; ``errors`` collects error-dialog texts
    (also shown as dialogs unless ``quiet``)."""

    def __init__(self, quiet: bool = False):
        super().__init__()
        self.quiet = quiet
        self.ask: bool | None = None
        # tests: the answer to "Save / Discard / Cancel" ("save", "discard", "cancel")
        self.save_answer: str | None = None
        self.questions: list[str] = []  # the unsaved-changes questions asked (tests)
        self.errors: list[str] = []
        self.c = Controller(self)
        self.setWindowTitle("Dark Studio")
        self.resize(1360, 860)  # (fitted to the screen once the panels are in: _fit_screen)
        self.setAcceptDrops(True)

        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFixedWidth(156)
        self.nav.setIconSize(QSize(18, 18))
        for k, (name, icon) in enumerate(zip(PANELS, ICONS)):
            it = QListWidgetItem(f"{icon}   {name}")
            it.setToolTip(f"{name} (Ctrl+{k + 1})")
            self.nav.addItem(it)
        lay.addWidget(self.nav)
        self.stack = QStackedWidget()
        self.start_panel = StartPanel(self.c)
        self.dataset_panel = DatasetPanel(self.c)
        self.model_panel = ModelPanel(self.c)
        self.training_panel = TrainingPanel(self.c)
        self.outputs_panel = OutputsPanel(self.c)
        self.panels = [
            self.start_panel,
            self.dataset_panel,
            self.model_panel,
            self.training_panel,
            self.outputs_panel,
        ]
        for p in self.panels:
            self.stack.addWidget(p)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.nav.currentRowChanged.connect(self._nav)
        self.nav.setCurrentRow(0)

        self.start_panel.openPath.connect(self.open_path)
        self.start_panel.openDialog.connect(self.open_dialog)
        self._build_menus()
        self.status_project = QLabel("no project")
        self.status_state = QLabel("idle")
        self.status_device = QLabel("")
        sb = self.statusBar()
        sb.addWidget(self.status_project, 1)
        sb.addPermanentWidget(self.status_state)
        sb.addPermanentWidget(self.status_device)
        self.c.projectChanged.connect(self._project_changed)
        self.c.dirtyChanged.connect(lambda _: self._update_title())
        self.c.stateChanged.connect(self._state_changed)
        self.c.message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        widgets.error_reporter = lambda m: self.statusBar().showMessage(m, 10000)
        self.c.events.connect(self._events)
        self._update_title()
        self._state_changed("idle")
        self._fit_screen()

    def _fit_screen(self) -> None:
        """Open no larger than the screen's free area (a 1024x600 netbook, a 1280x720
        laptop): 1360x860 where there is room."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        room = screen.availableGeometry()
        frame = 40  # title bar and borders, which the geometry excludes
        self.resize(
            max(self.minimumSizeHint().width(), min(1360, room.width())),
            max(self.minimumSizeHint().height(), min(860, room.height() - frame)),
        )

    # ------------------------------------------------------------------ menus

    def _action(
        self, menu: Any, text: str, fn: Any, shortcut: Any = None, tip: str = ""
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(fn)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "&Open…", self.open_dialog, QKeySequence.Open, "Open a project file")
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addSeparator()
        self.save_act = self._action(
            f,
            "&Save",
            self.save,
            QKeySequence.Save,
            "Save the project (weights, optimizer, history)",
        )
        self.save_as_act = self._action(f, "Save &As…", self.save_as, QKeySequence.SaveAs)
        f.addSeparator()
        self._action(
            f,
            "Use image &folder as dataset…",
            self.choose_folder,
            None,
            "An ImageFolder tree: one sub-folder of images per class",
        )
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.Quit)
        e = mb.addMenu("&Edit")
        self.undo_act = self._action(
            e,
            "&Undo",
            self.undo,
            QKeySequence.Undo,
            "Undo the last model edit or rollback, with the weights and history it dropped",
        )
        self.undo_act.setEnabled(False)
        self.c.undoChanged.connect(lambda _: self._state_changed(self.c.state))
        t = mb.addMenu("&Train")
        self.start_act = self._action(t, "&Start", self.training_panel.start, "F5")
        self.pause_act = self._action(t, "&Pause / Resume", self.training_panel.toggle_pause, "F6")
        self.stop_act = self._action(t, "S&top", lambda: self.c.stop(), "Shift+F5")
        t.addSeparator()
        self.rollback_act = self._action(
            t,
            "&Roll back to last checkpoint",
            self.rollback,
            None,
            "Bring back the weights and history saved after the last finished epoch "
            "(after a run diverged); Ctrl+Z undoes it",
        )
        v = mb.addMenu("&View")
        for k, name in enumerate(PANELS):
            self._action(v, name, lambda _=False, k=k: self.nav.setCurrentRow(k), f"Ctrl+{k + 1}")
        h = mb.addMenu("&Help")
        self._action(h, "&About Dark Studio", self._about)

    def rollback(self) -> None:
        if self.c.state == "idle":
            self.c.rollback()
        else:
            self.c.message.emit("cannot roll back: stop the run first")

    def undo(self) -> None:
        if self.c.state == "idle" and self.c.undo_model():
            self.model_panel.refresh()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = self.c.recent()
        for p in items:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        if not items:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.c.clear_recent)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "Dark Studio",
            "<b>Dark Studio</b><br>A training studio on darklib, a PyTorch-like "
            "engine written from scratch on NumPy and CuPy.",
        )

    # ------------------------------------------------------------------ navigation

    def _nav(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        if row == 0:
            self.start_panel.refresh_recent()

    def show_panel(self, name: str) -> None:
        self.nav.setCurrentRow(PANELS.index(name))

    # ------------------------------------------------------------------ dialogs

    def error(self, title: str, text: str) -> None:
        self.errors.append(text)
        self.statusBar().showMessage(text.split("\n", 1)[0], 8000)
        if not self.quiet:
            QMessageBox.critical(self, title, text)

    def confirm(self, title: str, text: str) -> bool:
        if self.ask is not None:
            return self.ask
        return QMessageBox.question(self, title, text) == QMessageBox.Yes

    # ------------------------------------------------------------------ files

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open a project (errors go to a dialog; the open project stays as it was). A
        dataset folder (image classes, MNIST or CIFAR-10 files) is used as a drop uses it:
        as the project's data (True when it was); another folder is refused, saying what
        Open takes."""
        if Path(path).is_dir():
            return self._open_folder(path)
        if self.c.is_training:
            self.error("Training is running", "Stop training before opening another project.")
            return False
        if self.c.dirty and not self.confirm(
            "Unsaved changes", "Discard the changes to the open project?"
        ):
            return False
        try:
            self.c.open(path)
        except (ProjectError, OSError) as e:
            self.error("Cannot open project", str(e))
            return False
        except Exception as e:
            self.error("Cannot open project", f"{path}: {type(e).__name__}: {e}")
            return False
        self.show_panel("Dataset" if not self.c.project.trained else "Training")
        return True

    def save(self) -> bool:
        if self.c.project is None:
            return False
        p = self.c.project.path
        if p is None or Path(p).suffix != SUFFIX:
            return self.save_as()
        return self._save_to(p)

    def save_as(self) -> bool:
        if self.c.project is None:
            return False
        start = str(self.c.project.path.with_suffix(SUFFIX)) if self.c.project.path else ""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save project", start, f"Dark Studio project (*{SUFFIX})"
        )
        if not path:
            return False
        return self._save_to(path)

    def _save_to(self, path: str | Path) -> bool:
        try:
            out = self.c.save(path)
        except Exception as e:
            self.error("Cannot save", f"{path}: {type(e).__name__}: {e}")
            return False
        self.statusBar().showMessage(
            f"saved {out}" + (" (snapshot while training)" if self.c.is_training else ""), 6000
        )
        self._update_title()
        return True

    def choose_folder(self) -> None:
        if self.c.project is None:
            self.error("No project", "Open a project first, then choose its data.")
            return
        path = QFileDialog.getExistingDirectory(self, "Image folder")
        if path:
            self.use_folder(path)

    def _open_folder(self, path: str) -> bool:
        """File > Open (or a recent entry, or the command line) given a folder: a dataset
        folder becomes the data, as when dropped; anything else is refused with what Open
        takes."""
        try:
            dataset_folder(path)
        except DataError as e:
            try:
                load_project(path)  # (raises: its message says what Open takes)
            except ProjectError as pe:
                self.error("Cannot open project", f"{pe}\n\nIt is no dataset folder either: {e}")
            return False
        self.use_folder(path)
        return self.c.project is not None and self.c.spec.dataset.path == str(path)

    def use_folder(self, path: str) -> None:
        """Make a folder the dataset: an image folder (checked here: listing is quick), or
        MNIST / FashionMNIST / CIFAR-10 files (read in the background by the dataset panel)."""
        if self.c.project is None:
            self.open_path(
                str(Path(__file__).resolve().parents[2] / "projects" / "objects_cnn.json")
            )
        if self.c.project is None:
            return
        locked = self.c.data_locked
        if locked:
            self.error("Data in use", f"{path} was not used: {locked}.")
            return
        try:
            kind, n = dataset_folder(path)
        except DataError as e:
            self.error("Not a dataset folder", str(e))
            return
        what = kind if n is None else f"{n} classes"
        problem = self.c.class_problem(n) if n is not None else None
        if problem:
            self.error("Not enough classes", f"{path} was not used: {problem}.")
            return
        self.dataset_panel.set_folder(path, kind, n)
        self.statusBar().showMessage(f"dataset: {path} ({what})", 6000)
        self.show_panel("Dataset")

    # ------------------------------------------------------------------ drag and drop

    @guarded
    def dragEnterEvent(self, e: Any) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    @guarded
    def dropEvent(self, e: Any) -> None:
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.handle_drop(urls[0])
            e.acceptProposedAction()

    def handle_drop(self, path: str) -> None:
        """A dropped project file opens; a dropped folder becomes the dataset."""
        p = Path(path)
        if p.is_dir():
            self.use_folder(str(p))
        else:
            self.open_path(str(p))

    # ------------------------------------------------------------------ state

    def _project_changed(self) -> None:
        s = self.c.spec
        self.status_project.setText(
            f"{s.name} · {s.task}" + (f" · {self.c.project.path}" if self.c.project.path else "")
        )
        self.model_panel.refresh()
        self._update_title()

    def _update_title(self) -> None:
        if self.c.project is None:
            self.setWindowTitle("Dark Studio")
            return
        p = self.c.project.path
        name = Path(p).name if p else self.c.spec.name
        self.setWindowTitle(f"{'● ' if self.c.dirty else ''}{name} — Dark Studio")

    def _state_changed(self, state: str) -> None:
        self.status_state.setText(
            {
                "idle": "idle",
                "running": "● training",
                "paused": "❚❚ paused",
                "stopping": "stopping…",
                "evaluating": "● evaluating",
            }[state]
        )
        self.start_act.setEnabled(state == "idle")
        self.pause_act.setEnabled(state in ("running", "paused"))
        self.stop_act.setEnabled(state in ("running", "paused", "evaluating"))
        if hasattr(self, "undo_act"):
            self.undo_act.setEnabled(state == "idle" and self.c.can_undo)
            self.rollback_act.setEnabled(state == "idle")  # says why when it cannot
        if self.c.session is not None:
            self.status_device.setText(f"device {self.c.session.device}")

    def _events(self, events: list) -> None:
        for e in events:
            if e.kind == "skipped":
                self.statusBar().showMessage(skipped_text(e.data), 10000)
            elif e.kind == "error":
                phase = e.data.get("phase", "training")
                what = {
                    "evaluation": "evaluation failed",
                    "validation": "training stopped by an error in validation",
                }.get(phase, "training stopped")
                self.statusBar().showMessage(f"{what}: {e.data['message']}", 10000)

    def closeEvent(self, e: Any) -> None:
        try:
            self._close(e)
        except Exception as exc:  # (never into Qt) keep a window with unsaved work open
            report_error("closeEvent", exc)
            if self.c.dirty:
                e.ignore()
            else:
                e.accept()

    def _close(self, e: Any) -> None:
        """Close the window without losing work: unsaved changes (a run going on always
        makes some) are offered for saving first. A run is stopped, and its thread waited
        for, only once the user chose Save or Discard: Cancel leaves it running."""
        if self.c.state == "evaluating":
            self.c.stop(wait=30.0)  # an evaluation changes nothing worth keeping
        training = self.c.is_training
        if not training and not (self.c.dirty and self.c.project is not None):
            self.c.timer.stop()
            e.accept()
            return
        if training:
            text = (
                "Training is running. Stop it and save the project (weights, optimizer "
                "state and history) before closing?"
            )
        else:
            text = "Save the project before closing?"
        choice = self.unsaved_choice(text, training)
        if choice == "cancel":
            e.ignore()
            return
        if training and not self.c.stop(wait=30.0):
            # the batch is still running: closing now would kill the thread mid-step
            self.statusBar().showMessage(
                "training did not stop within 30 s: the window stays open (close it again "
                "once the run has stopped)",
                10000,
            )
            e.ignore()
            return
        if choice == "save" and not self.save():
            e.ignore()  # the save failed or was cancelled: the run stays stopped, not lost
            return
        self.c.timer.stop()
        e.accept()

    def unsaved_choice(self, text: str, training: bool = False) -> str:
        """Ask "Save / Discard / Cancel" about unsaved changes: ``"save"``, ``"discard"`` or
        ``"cancel"``. Tests answer with ``save_answer`` (each question is kept in
        ``questions``); a quiet window, or one whose yes/no questions are answered by
        ``ask``, is not asked: it discards (during a run ``ask`` False cancels instead)."""
        if self.save_answer is not None:
            self.questions.append(text)
            return self.save_answer
        if self.quiet or self.ask is not None:
            return "cancel" if training and self.ask is False else "discard"
        r = QMessageBox.question(
            self,
            "Unsaved changes",
            text,
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel,
        )
        if r == QMessageBox.Save:
            return "save"
        return "discard" if r == QMessageBox.Discard else "cancel"


def dataset_folder(path: str) -> tuple[str, int | None]:
    """The source kind of a dataset folder and, for an image folder, its class count
    (listing is quick); raises DataError when the folder holds no dataset."""
    kind = detect_source(path)
    if kind != "folder":
        return kind, None
    return kind, len(open_reader(DatasetSpec(source=kind, path=path), [3, 1, 1]).classes)


def open_later(window: MainWindow, path: str | None) -> None:
    if path:
        QTimer.singleShot(0, lambda: window.open_path(path))
