"""The Qt user interface of Dark Studio (the only package that imports PySide6/pyqtgraph)."""
