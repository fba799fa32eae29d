"""Nested values (tuples, lists, namedtuples, dicts) taken apart into their leaves and built
again, for the code that walks a function's arguments or results (activation
checkpointing, the ``darklib.func`` transforms)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def tree_flatten(value: Any) -> tuple[list, Callable[[list], Any]]:
    """``value`` (a tensor, or tuples, lists and dicts of values) as a flat list, and the
    function that builds the same structure from such a list."""
    if isinstance(value, tuple | list):
        parts = [tree_flatten(v) for v in value]
        flat = [x for p, _ in parts for x in p]
        kind = type(value)

        def rebuild(items: list) -> Any:
            it = iter(items)
            built = [b([next(it) for _ in range(len(p))]) for p, b in parts]
            if kind is tuple or kind is list:
                return kind(built)
            return kind(*built)  # a namedtuple

        return flat, rebuild
    if isinstance(value, dict):
        keys = list(value)
        parts = [tree_flatten(value[k]) for k in keys]
        flat = [x for p, _ in parts for x in p]

        def rebuild_dict(items: list) -> Any:
            it = iter(items)
            return type(value)(
                (k, b([next(it) for _ in range(len(p))])) for k, (p, b) in zip(keys, parts)
            )

        return flat, rebuild_dict
    return [value], lambda items: items[0]
