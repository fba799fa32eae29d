"""Start the GUI: ``run_gui(path)`` makes the QApplication, applies the theme, opens the
window (on ``path`` when given) and runs the event loop."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from studio.ui import theme
from studio.ui.mainwindow import MainWindow, open_later


def run_gui(path: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Dark Studio")
    app.setOrganizationName("DarkStudio")
    theme.apply(app)
    win = MainWindow()
    win.show()
    open_later(win, path)
    return app.exec()
