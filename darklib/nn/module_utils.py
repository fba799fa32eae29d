"""``torch.nn.modules.utils`` (importable as ``darklib.nn.modules.utils`` too): the
argument helpers that layers written against torch use (``_pair(kernel_size)``), and
``consume_prefix_in_state_dict_if_present`` for checkpoints saved from a wrapped model
(``DataParallel`` adds ``module.`` to every key)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def _ntuple(n: int, name: str = "parse") -> Callable[[Any], tuple]:
    """A parser that makes ``n`` copies of a single value and passes an iterable through
    as a tuple (unchecked, as torch's: layers check the lengths)."""

    def parse(x: Any) -> tuple:
        return tuple(x) if isinstance(x, Iterable) else (x,) * n

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t: Iterable, n: int) -> tuple:
    """Each element of ``t``, last first, ``n`` times: ``((1, 2), 2) -> (2, 2, 1, 1)`` (F.pad's
    order from a conv's per-dimension padding)."""
    return tuple(x for x in reversed(tuple(t)) for _ in range(n))


def _list_with_default(out_size: Any, defaults: list) -> list:
    """An adaptive pool's output size with None entries taken from the input's sizes
    (``defaults``, its trailing dimensions)."""
    if isinstance(out_size, int):
        return out_size
    out = list(out_size)
    if len(defaults) <= len(out):  # (the input has a batch or channel dimension too)
        raise ValueError(f"Input dimension should be at least {len(out) + 1}")
    return [d if v is None else v for v, d in zip(out, defaults[-len(out) :])]


def consume_prefix_in_state_dict_if_present(state_dict: dict, prefix: str) -> None:
    """Strip ``prefix`` from the keys of ``state_dict`` that start with it, in place (so that
    a checkpoint of ``DataParallel(model)`` loads into ``model``); as in torch, the renamed
    entries move to the end."""
    for key in list(state_dict):
        if key.startswith(prefix):
            state_dict[key[len(prefix) :]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata):
            if key == prefix.rstrip(".") or key.startswith(prefix):
                new = "" if key == prefix.rstrip(".") else key[len(prefix) :]
                metadata[new] = metadata.pop(key)
