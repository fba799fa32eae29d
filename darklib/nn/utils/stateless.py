"""``nn.utils.stateless``: call a module with other tensors in place of its parameters and
buffers (``functional_call``), as torch's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from darklib.errors import InvalidType
from darklib.nn.module import Module
from darklib.tensor import Tensor

__all__ = ["functional_call"]

_MISSING = object()


def _tied_names(module: Module, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` extended to every other name of a tied tensor (one parameter or buffer
    reachable under several names), refusing different values for one tied tensor."""
    names: dict[int, list[str]] = {}
    for store in ("_parameters", "_buffers"):
        for name, t in module._named_members(store, "", True, remove_duplicate=False):
            names.setdefault(id(t), []).append(name)
    out = dict(given)
    for group in names.values():
        if len(group) < 2:
            continue
        keys = [n for n in group if n in given]
        if not keys:
            continue
        if len(keys) > 1 and any(given[k] is not given[keys[0]] for k in keys[1:]):
            raise ValueError(
                f"functional_call got multiple values for keys {keys}, which are tied. "
                "Consider using tie_weights=False"
            )
        for n in group:
            out.setdefault(n, given[keys[0]])
    return out


def _swap(module: Module, name: str, value: Any) -> Any:
    """Put ``value`` at ``name`` of ``module`` (as a parameter, a buffer or an attribute,
    whichever ``name`` is); returns what was there (``_MISSING`` for nothing)."""
    d = module.__dict__
    if name in d["_parameters"]:
        old = d["_parameters"][name]
        d["_parameters"][name] = value
    elif name in d["_buffers"]:
        old = d["_buffers"][name]
        d["_buffers"][name] = value
    else:
        old = d.get(name, _MISSING)
        if value is _MISSING:
            d.pop(name, None)
        else:
            d[name] = value
    return old


@contextlib.contextmanager
def _reparametrized(
    module: Module, tensors: Mapping[str, Any], tie_weights: bool, strict: bool
) -> Iterator[None]:
    if tie_weights:
        tensors = _tied_names(module, tensors)
    if strict:
        own = {n for n, _ in module.named_parameters(remove_duplicate=False)}
        own |= {n for n, _ in module.named_buffers(remove_duplicate=False)}
        missing = sorted(own - set(tensors))
        unexpected = sorted(set(tensors) - own)
        if missing or unexpected:
            lines = []
            if unexpected:
                lines.append("Unexpected key(s): " + ", ".join(repr(k) for k in unexpected) + ".")
            if missing:
                lines.append("Missing key(s): " + ", ".join(repr(k) for k in missing) + ".")
            raise RuntimeError(
                f"Error(s) in reparametrizing for {module._get_name()}:\n\t" + "\n\t".join(lines)
            )
    swapped: list[tuple[Module, str, Any]] = []
    try:
        for name, value in tensors.items():
            path, _, attr = name.rpartition(".")
            owner = module.get_submodule(path) if path else module
            swapped.append((owner, attr, _swap(owner, attr, value)))
        yield
    finally:
        for owner, attr, old in reversed(swapped):
            _swap(owner, attr, old)


def functional_call(
    module: Module,
    parameters_and_buffers: Mapping[str, Tensor],
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """Call ``module`` with the tensors of ``parameters_and_buffers`` (dotted names, as in
    its ``state_dict``) in place of its own parameters and buffers, which are restored
    afterwards, as ``torch.nn.utils.stateless.functional_call``.

    Gradients flow to the given tensors; a buffer that the module updates in place (batch
    norm's running statistics) is the given tensor, so that one is updated. Names the
    module lacks are set as attributes for the call (unless ``strict``).

    Args:
        module: the module to call.
        parameters_and_buffers: name -> tensor.
        args: the positional arguments (a tuple; any other value is the only one).
        kwargs: the keyword arguments.
        tie_weights: a tensor reachable under several names (a tied weight) takes the
            value given for any of them. Default: ``True``.
        strict: the names must be exactly the module's parameters and buffers.

    Returns:
        What ``module(*args, **kwargs)`` returns.
    """
    if not isinstance(module, Module):
        raise InvalidType(f"functional_call: expected a Module, got {type(module).__name__}")
    if not isinstance(parameters_and_buffers, Mapping):
        raise InvalidType(
            "functional_call: expected parameters_and_buffers to be a dict of name -> "
            f"tensor, got {type(parameters_and_buffers).__name__}"
        )
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    kwargs = {} if kwargs is None else kwargs
    with _reparametrized(module, parameters_and_buffers, tie_weights, strict):
        return module(*args, **kwargs)
