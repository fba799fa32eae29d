"""Dark Studio: the application on top of darklib.

The core (this package, except :mod:`studio.ui`) never imports Qt: projects, model specs,
tasks, the trainer and the command line. The Qt user interface lives in :mod:`studio.ui`.
"""

__version__ = "0.1.0"
