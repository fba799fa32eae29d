"""The dark theme: assets/dark.qss filled from assets/palette.py, plus pyqtgraph's colours."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _load_palette() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dark_studio_palette", ASSETS / "palette.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {ASSETS / 'palette.py'}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # our own constants file, shipped with the app
    return mod


P = _load_palette()


def stylesheet() -> str:
    """The application stylesheet with every ``@NAME`` replaced by the palette's value."""
    text = (ASSETS / "dark.qss").read_text(encoding="utf-8")
    colors = {k: str(v) for k, v in vars(P).items() if k.isupper() and not k.startswith("_")}
    return re.sub(r"@([A-Z_]+)", lambda m: colors.get(m.group(1), m.group(0)), text)


def apply(app) -> None:
    """Style the application and pyqtgraph."""
    app.setStyle("Fusion")
    pal = QPalette()
    for role, name in [
        (QPalette.Window, "BG"),
        (QPalette.Base, "PANEL"),
        (QPalette.AlternateBase, "PANEL_ALT"),
        (QPalette.Button, "RAISED"),
        (QPalette.Text, "TEXT"),
        (QPalette.WindowText, "TEXT"),
        (QPalette.ButtonText, "TEXT"),
        (QPalette.Highlight, "SELECTION"),
        (QPalette.HighlightedText, "TEXT"),
        (QPalette.ToolTipBase, "RAISED"),
        (QPalette.ToolTipText, "TEXT"),
        (QPalette.PlaceholderText, "TEXT_FAINT"),
    ]:
        pal.setColor(role, QColor(getattr(P, name)))
    app.setPalette(pal)
    font = QFont(app.font())
    font.setPointSize(P.FONT_SIZE)
    app.setFont(font)
    app.setStyleSheet(stylesheet())
    pg.setConfigOptions(background=P.PLOT_BG, foreground=P.PLOT_FG, antialias=True)


def color(name: str) -> str:
    return getattr(P, name)


def style_plot(w, x: bool = True, y: bool = True) -> None:
    """Grid lines and axes of a pyqtgraph PlotWidget in the palette's colours.

    The grid is drawn opaque (``PLOT_GRID``): pyqtgraph's default translucent grid makes
    every repaint blend full-height lines, about 3 ms per axis, which a GUI thread sharing
    the CPU (and the GIL) with training cannot afford at 20 Hz.
    """
    for name in ("left", "bottom"):
        ax = w.getAxis(name)
        ax.setTickPen(pg.mkPen(P.PLOT_GRID))
        ax.setTextPen(pg.mkPen(P.PLOT_FG))
        ax.setStyle(tickAlpha=255, maxTickLevel=0)  # major lines only: a calm grid
    w.showGrid(x=x, y=y)
