"""Helpers shared by the model builders: refusing pretrained weights, and the keyword
arguments a builder fixes."""

from __future__ import annotations

from typing import Any

from darklib.errors import InvalidValue


def no_pretrained_weights(builder: str, weights: Any, kwargs: dict[str, Any]) -> None:
    """Refuse ``weights`` (and torchvision's older ``pretrained=True``): darklib downloads
    nothing, so a builder only makes randomly initialised models.

    Raises:
        InvalidValue: ``weights`` is not None, or ``pretrained`` is true; the message says
            how to load a converted checkpoint instead.
    """
    pretrained = kwargs.pop("pretrained", False)
    if weights is None and not pretrained:
        return
    asked = f"weights={weights!r}" if weights is not None else "pretrained=True"
    raise InvalidValue(
        f"{builder}({asked}): darklib downloads no pretrained weights; build the model with "
        f"weights=None and load a state dict you have, e.g. one converted from a torchvision "
        f"checkpoint to safetensors: model = {builder}(); "
        f"model.load_state_dict(dl.load('{builder}.safetensors'))"
    )


def fix_kwarg(builder: str, kwargs: dict[str, Any], name: str, value: Any) -> None:
    """Set ``kwargs[name] = value``, a hyperparameter the builder's name fixes (the 32 in
    ``resnext50_32x4d``); passing a different value is an error, as in torchvision."""
    if name in kwargs and kwargs[name] != value:
        raise InvalidValue(f"{builder}: {name} is fixed to {value!r}, got {name}={kwargs[name]!r}")
    kwargs[name] = value
