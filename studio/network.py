"""The darklib model a spec describes: a :class:`GraphModel` of darklib.nn layers plus the
merge nodes ``add`` and ``concat`` (see :mod:`studio.modelspec` for the spec and its checks).
"""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib import nn
from studio.modelspec import ModelReport, SpecError, infer
from studio.project import ModelSpec


class Add(nn.Module):
    """Sum of its inputs (a residual connection)."""

    def forward(self, *xs: Any) -> Any:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Concatenation of its inputs along ``dim``."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: Any) -> Any:
        return dl.cat(list(xs), dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GraphModel(nn.Module):
    """A darklib Module that runs a spec's layers in order, routing named inputs.

    Args:
        layers: ``(name, module, input names)`` in order.
        report: the spec's shape report (kept for the model panel).
    """

    def __init__(self, layers: list[tuple[str, Any, list[str]]], report: ModelReport):
        super().__init__()
        self._routes = [(name, inputs) for name, _, inputs in layers]
        self.report = report
        for name, mod, _ in layers:
            self.add_module(name, mod)
        # outputs still needed later: free the others as soon as possible
        last_use: dict[str, int] = {}
        for i, (_, inputs) in enumerate(self._routes):
            for n in inputs:
                last_use[n] = i
        self._last_use = last_use

    def forward(self, x: Any) -> Any:
        values = {"input": x}
        out = x
        for i, (name, inputs) in enumerate(self._routes):
            out = getattr(self, name)(*[values[n] for n in inputs])
            values[name] = out
            for n in inputs:
                if self._last_use.get(n) == i:
                    values.pop(n, None)
        return out


def build_model(spec: ModelSpec) -> GraphModel:
    """Build the darklib model described by ``spec``.

    Raises:
        SpecError: the spec does not check out (the message names the first bad layer), or
            darklib.nn has no module of a listed type.
    """
    rep = infer(spec)
    err = rep.first_error()
    if err:
        raise SpecError(err)
    modules = []
    for li in rep.layers:
        if li.type == "add":
            mod = Add()
        elif li.type == "concat":
            mod = Concat(**li.resolved)
        else:
            cls = getattr(nn, li.type, None)
            if cls is None or not isinstance(cls, type):
                raise SpecError(f"darklib.nn has no layer {li.type!r} yet", li.name)
            try:
                mod = cls(**li.resolved)
            except Exception as e:
                raise SpecError(f"layer '{li.name}' ({li.type}): {e}", li.name) from e
        modules.append((li.name, mod, li.inputs))
    return GraphModel(modules, rep)


def count_parameters(model: Any) -> int:
    """Number of scalar parameters of a built model."""
    return sum(int(math.prod(p.shape)) for p in model.parameters())
