"""Render every studio panel to docs/screenshots/*.png, offscreen, during a real training run.

python docs/make_screenshots.py [--project projects/objects_cnn.json] [--out DIR]

By default the sample trains with its own settings (about two minutes on a quiet CPU), so
that the outputs panel shows a trained model; ``--epochs``, ``--size`` and ``--steps``
shorten the run for a quick look at the layout.
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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--project", default="projects/objects_cnn.json")
    p.add_argument("--epochs", type=int, help="default: the project's")
    p.add_argument("--size", type=int, help="dataset size (default: the project's)")
    p.add_argument("--steps", type=int, help="batches per epoch (default: all)")
    p.add_argument("--out", default=str(OUT), help="folder for the PNGs")
    args = p.parse_args()
    out = Path(args.out)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio.ui import theme
    from studio.ui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    theme.apply(app)
    out.mkdir(parents=True, exist_ok=True)
    settings = out / ".settings.ini"
    win = MainWindow(quiet=True)
    win.c.settings = QSettings(str(settings), QSettings.IniFormat)
    win.c.clear_recent()
    win.c.add_recent(str(ROOT / "projects" / "glyphs_mlp.json"))
    win.c.add_recent(str(ROOT / "projects" / "objects_cnn.json"))
    win.resize(1440, 900)
    win.show()

    def pump(seconds: float = 0.2) -> None:
        t = time.monotonic()
        while time.monotonic() - t < seconds:
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str) -> None:
        pump(0.3)
        win.grab().save(str(out / f"{name}.png"))
        print("wrote", out / f"{name}.png", flush=True)

    win.show_panel("Start")
    win.start_panel.refresh_recent()
    shot("start")
    assert win.open_path(str(ROOT / args.project)), win.errors
    s = win.c.spec
    if args.size:
        s.dataset.size = args.size
    if args.epochs:
        s.training.epochs = args.epochs
    if args.steps:
        s.training.max_steps_per_epoch = args.steps
    win.c.mark_changed("dataset")
    win.training_panel.load_project()
    win.c.dirty = False
    win._update_title()
    win.show_panel("Dataset")
    data = win.c.data()  # waits for the loader thread
    pump(0.5)
    dp = win.dataset_panel
    dp.aug_index = int(data.train_indices[3])
    dp._draw_aug()
    shot("dataset")
    win.show_panel("Model")
    win.model_panel.table.selectRow(4)
    shot("model")
    win.show_panel("Training")
    win.training_panel.start()
    t0 = time.monotonic()
    epochs = s.training.epochs
    # the live shot: the last epoch half done
    while win.c.state != "idle" and time.monotonic() - t0 < 1800:
        pump(0.1)
        pos = win.c.session.position
        per_epoch = win.c.trainer.batches_per_epoch()
        if pos["epoch"] == epochs - 1 and pos["batch"] >= per_epoch // 2:
            break
    shot("training")
    while win.c.state != "idle" and time.monotonic() - t0 < 1800:
        pump(0.1)
    pump(0.3)
    h = win.c.history.epochs
    print(
        f"trained {epochs} epochs in {time.monotonic() - t0:.0f} s; validation accuracy "
        f"{h['val_acc'][-1]:.3f}",
        flush=True,
    )
    win.show_panel("Outputs")
    win.outputs_panel.sort.setCurrentIndex(3)  # validation order: right and wrong mixed
    shot("outputs")
    cm = win.outputs_panel.prev.get("confusion")
    if cm is not None:
        import numpy as np

        off = cm.copy()
        np.fill_diagonal(off, 0)
        i, j = np.unravel_index(np.argmax(off), off.shape)
        win.outputs_panel.sort.setCurrentIndex(0)
        win.outputs_panel.filter_cell(int(i), int(j))
        win.outputs_panel.cm.setCurrentCell(int(i), int(j))
        shot("outputs_filtered")
    win.show_panel("Training")
    shot("training_done")
    win.ask = True
    win.close()
    settings.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
