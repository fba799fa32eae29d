"""Render every studio panel to docs/screenshots/*.png, offscreen, during a real training run.

python docs/make_screenshots.py [--project projects/objects_cnn.json] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--project", default="projects/objects_cnn.json")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--steps", type=int, default=40, help="batches per epoch")
    args = p.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio.ui import theme
    from studio.ui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    theme.apply(app)
    win = MainWindow(quiet=True)
    win.c.settings = QSettings(str(OUT / ".settings.ini"), QSettings.IniFormat)
    win.c.add_recent(str(ROOT / "projects" / "objects_cnn.json"))
    win.c.add_recent(str(ROOT / "projects" / "glyphs_mlp.json"))
    win.resize(1440, 900)
    win.show()
    OUT.mkdir(parents=True, exist_ok=True)

    def pump(seconds: float = 0.2) -> None:
        t = time.monotonic()
        while time.monotonic() - t < seconds:
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str) -> None:
        pump(0.3)
        win.grab().save(str(OUT / f"{name}.png"))
        print("wrote", OUT / f"{name}.png")

    win.show_panel("Start")
    win.start_panel.refresh_recent()
    shot("start")
    assert win.open_path(str(ROOT / args.project)), win.errors
    s = win.c.spec
    s.dataset.size = args.size
    s.training.epochs = args.epochs
    s.training.max_steps_per_epoch = args.steps
    s.training.max_val_batches = 8
    win.c.mark_changed("dataset")
    win.training_panel.load_project()
    win.c.dirty = False
    win._update_title()
    win.show_panel("Dataset")
    pump(0.5)
    dp = win.dataset_panel
    dp.aug_index = int(win.c.data().train_indices[3])
    dp._draw_aug()
    shot("dataset")
    win.show_panel("Model")
    win.model_panel.table.selectRow(4)
    shot("model")
    win.show_panel("Training")
    win.training_panel.start()
    t0 = time.monotonic()
    # wait for the last epoch to be under way, then take the live shot
    while win.c.state != "idle" and time.monotonic() - t0 < 900:
        pump(0.1)
        pos = win.c.session.position
        if pos["epoch"] == args.epochs - 1 and pos["batch"] >= args.steps // 2:
            break
    shot("training")
    while win.c.state != "idle" and time.monotonic() - t0 < 900:
        pump(0.1)
    pump(0.3)
    win.show_panel("Outputs")
    win.outputs_panel.sort.setCurrentIndex(2)
    shot("outputs")
    cm = win.outputs_panel.prev.get("confusion")
    if cm is not None:
        import numpy as np

        off = cm.copy()
        np.fill_diagonal(off, 0)
        i, j = np.unravel_index(np.argmax(off), off.shape)
        win.outputs_panel.filter_cell(int(i), int(j))
        win.outputs_panel.cm.setCurrentCell(int(i), int(j))
        shot("outputs_filtered")
    win.ask = True
    win.close()


if __name__ == "__main__":
    main()
