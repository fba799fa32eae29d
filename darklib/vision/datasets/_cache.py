"""The cache of generated datasets: npz files (no pickle) written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """``$DARKSTUDIO_CACHE`` or ``~/.cache/darkstudio``."""
    env = os.environ.get("DARKSTUDIO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "darkstudio"


def cached_arrays(
    key: str, make: Callable[[], dict[str, np.ndarray]], use_cache: bool = True
) -> dict[str, np.ndarray]:
    """Load the arrays stored under ``key``, or make, store (atomically) and return them."""
    if not use_cache:
        return make()
    path = cache_dir() / "procedural" / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache file is regenerated below
    arrays = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only cache is not an error: the data was generated anyway
    return arrays
