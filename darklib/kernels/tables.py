"""Small per-geometry lookup tables (resampling indices, pooling matrices), built once on
the host with NumPy and kept per device, so that repeated calls on the GPU upload nothing."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

_MAX_ENTRIES = 256
_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()


def cached(key: tuple, xp: Any, make: Callable[[], Any]) -> Any:
    """``make()`` (NumPy arrays, or a tuple of them), on ``xp``'s current device, memoised.

    The arrays are shared between callers and must be treated as read-only.
    """
    dev = None if xp is np else int(xp.cuda.Device().id)
    k = (key, dev)
    with _lock:
        hit = _cache.get(k)
        if hit is not None:
            _cache.move_to_end(k)
            return hit
    val = make()
    if dev is not None:
        val = tuple(xp.asarray(a) for a in val) if isinstance(val, tuple) else xp.asarray(val)
    else:
        for a in val if isinstance(val, tuple) else (val,):
            a.flags.writeable = False
    with _lock:
        _cache[k] = val
        if len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return val
