"""Optimizer: the base of every optimizer (param groups, per-parameter state, state_dict).

Subclasses implement ``step`` on raw arrays, in place and under ``no_grad``, so a parameter's
array object never changes (views and saved references stay valid).
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

import numpy as np

from darklib import autograd
from darklib._namespace import typename
from darklib.backend import device_of, get_xp, to_device, to_numpy
from darklib.dtypes import float64, get_default_dtype
from darklib.errors import InvalidType, InvalidValue
from darklib.nn.module import RemovableHandle
from darklib.tensor import Tensor

# hooks run around every optimizer's step (torch.optim.optimizer's global registries)
_global_optimizer_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_optimizer_post_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()


def register_optimizer_step_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs)`` to run before every optimizer's step.

    It may return ``(new_args, new_kwargs)`` to replace the step's arguments (``args``
    starts with the optimizer itself, as in torch). Returns a handle whose ``remove()``
    unregisters it.
    """
    handle = RemovableHandle(_global_optimizer_pre_hooks)
    _global_optimizer_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs)`` to run after every optimizer's step."""
    handle = RemovableHandle(_global_optimizer_post_hooks)
    _global_optimizer_post_hooks[handle.id] = hook
    return handle


class _MissingEntry(KeyError, ValueError):
    """A state dict without ``"state"`` or ``"param_groups"``: torch's KeyError, and the
    ValueError darklib raised before."""

    def __str__(self) -> str:  # the message, unquoted (KeyError quotes it)
        return str(self.args[0])


class _RequiredParameter:
    """The default of a hyper-parameter that every param group must give (torch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class for all optimizers.

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter
            groups, each with a ``"params"`` entry and optional per-group hyper-parameters).
        defaults: the default value of every hyper-parameter, used where a group gives none.

    Attributes:
        param_groups (list[dict]): each holds ``"params"`` and every hyper-parameter.
        state (dict): per-parameter state, keyed by the parameter tensor.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {typename(params)}"
            )
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._opt_called = False
        try:
            it = iter(params)
        except TypeError:
            hint = "; pass model.parameters()" if hasattr(params, "parameters") else ""
            raise InvalidType(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {typename(params)}{hint}"
            ) from None
        groups = list(it)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Run the step hooks around each step (and mark the call, so a scheduler can warn
        # when it is stepped before its optimizer).
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_marks_called", False):
            cls.step = _hooked_step(step)  # type: ignore[method-assign]

    def _hooks(self, name: str) -> OrderedDict[int, Callable[..., Any]]:
        # created on first use: a subclass that skips __init__ still has hooks
        hooks = self.__dict__.get(name)
        if hooks is None:
            hooks = self.__dict__[name] = OrderedDict()
        return hooks

    def _register(self, name: str, hook: Callable[..., Any], prepend: bool) -> RemovableHandle:
        hooks = self._hooks(name)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_step_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)``, called before each :meth:`step`.

        ``args`` starts with the optimizer itself (as torch's). The hook may return
        ``(new_args, new_kwargs)`` to replace the step's arguments. Returns a handle whose
        ``remove()`` unregisters it.
        """
        return self._register("_optimizer_step_pre_hooks", hook, False)

    def register_step_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)``, called after each :meth:`step`."""
        return self._register("_optimizer_step_post_hooks", hook, False)

    def register_state_dict_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Register ``hook(optimizer)``, called before :meth:`state_dict` packs the state.

        Args:
            prepend: run it before the hooks already registered (default: after).
        """
        return self._register("_optimizer_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Register ``hook(optimizer, state_dict)``, called on :meth:`state_dict`'s result;
        a non-None return value replaces the state dict."""
        return self._register("_optimizer_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Register ``hook(optimizer, state_dict)``, called before :meth:`load_state_dict`
        reads a (shallow) copy of the state dict; a non-None return value replaces it."""
        return self._register("_optimizer_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Register ``hook(optimizer)``, called once :meth:`load_state_dict` has loaded."""
        return self._register("_optimizer_load_state_dict_post_hooks", hook, prepend)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (a dict with ``"params"``) with its own hyper-parameters.

        Missing hyper-parameters take the optimizer's defaults. A parameter may belong to one
        group only. As in torch, the dict itself becomes the group (filled in place), so that
        changing it later changes the optimizer's group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        if "params" not in param_group:  # (torch's KeyError, with a message)
            raise KeyError("param_group must have a 'params' entry (the tensors to optimize)")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {typename(p)}"
                )
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization parameter "
                    f"{name}"
                )
            param_group.setdefault(name, default)
        if len({id(p) for p in tensors}) != len(tensors):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; they will be "
                "updated more than once per step",
                stacklevel=3,
            )
        seen: set[int] = set()
        for g in self.param_groups:
            seen.update(id(p) for p in g["params"])
            if ("param_names" in g) != ("param_names" in param_group):
                raise ValueError(
                    "all optimizer param groups should be with/without names. cannot add param "
                    f"group {'with' if 'param_names' in param_group else 'without'} names to the "
                    "optimizer"
                )
        if any(id(p) in seen for p in tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors.

        Args:
            set_to_none: set ``.grad`` to None (the default, cheaper) instead of zeroing it.
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g.requires_grad = False
                if getattr(g.array.flags, "writeable", True):
                    g.array.fill(0)
                else:  # a read-only view someone assigned: replace it
                    g.array = get_xp(g.array).zeros_like(g.array)
                g._version += 1

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step.

        Args:
            closure: optional function that re-evaluates the model and returns the loss.

        Returns:
            ``closure()``'s loss when a closure is given, else None.
        """
        loss = self._eval_closure(closure)
        with autograd.no_grad(), np.errstate(all="ignore"):  # inf/NaN silent, as torch
            for group in self.param_groups:
                if group.get("capturable", False):
                    _check_capturable(group)
                self._step_group(_hyper_as_numbers(group))
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        """Update one parameter group in place (called by :meth:`step` under ``no_grad``, with
        Tensor hyper-parameters already read as numbers)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    def _grads(self, group: dict[str, Any]) -> Iterator[tuple[Tensor, Any]]:
        """Yield ``(p, g)`` for each parameter of ``group`` that has a gradient.

        ``g`` is the gradient array the update uses: negated with ``maximize``, plus the L2
        term of ``weight_decay``; with ``decoupled_weight_decay`` the weights shrink by
        ``lr * weight_decay`` instead. ``g`` is ``p.grad``'s own array (which must not change)
        when no term applied. The parameter's version is bumped once the caller has updated it.
        """
        who = type(self).__name__
        wd = group.get("weight_decay", 0)
        decoupled = wd != 0 and group.get("decoupled_weight_decay", False)
        for p in group["params"]:
            if p.grad is None:
                continue
            _check_grad(p, who)
            scalar = p.array.ndim == 0
            if scalar:  # (state.get: a stateless optimizer keeps no entry, as torch)
                swapped = _as_vectors(p, self.state.get(p, {}))
            if decoupled:
                p.array *= 1 - group["lr"] * wd
            yield p, _effective_grad(p, group["maximize"], 0 if decoupled else wd)
            if scalar:
                _as_scalars(swapped, self.state.get(p, {}))
            p._version += 1

    def _eval_closure(self, closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with autograd.enable_grad():
            return closure()

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's layout.

        ``{"state": {index: {name: Tensor, ...}}, "param_groups": [{..., "params": [index]}]}``
        where parameters are numbered in the order of the groups. The state tensors are the
        live ones (not copies), as in PyTorch: save or copy them before stepping again.
        """
        for pre_hook in list(self._hooks("_optimizer_state_dict_pre_hooks").values()):
            pre_hook(self)
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            i = index.get(id(p)) if isinstance(p, Tensor) else p
            if i is not None:
                state[i] = dict(s)
        state_dict = {"state": state, "param_groups": groups}
        for post_hook in list(self._hooks("_optimizer_state_dict_post_hooks").values()):
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (this optimizer's or one built alike).

        State tensors are copied, cast to each parameter's dtype and moved to its device
        (``"step"`` counters stay float32 on the CPU).
        """
        if isinstance(state_dict, dict):
            state_dict = dict(state_dict)  # the hooks may edit this shallow copy
        for pre_hook in list(self._hooks("_optimizer_load_state_dict_pre_hooks").values()):
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        for key in ("param_groups", "state"):
            if not isinstance(state_dict, dict) or key not in state_dict:
                raise _MissingEntry(
                    f"{type(self).__name__}.load_state_dict: expected a dict with 'state' and "
                    f"'param_groups' (as returned by state_dict()), but {key!r} is missing"
                )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups "
                f"({len(saved_groups)}) than the optimizer ({len(self.param_groups)})"
            )
        for i, (g, sg) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group: group {i} has {len(sg['params'])} parameters in the "
                    f"state dict and {len(g['params'])} in the optimizer"
                )
        id_map: dict[int, Tensor] = {}
        for g, sg in zip(self.param_groups, saved_groups):
            for p, k in zip(g["params"], sg["params"]):
                id_map[int(k)] = p
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for k, s in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            if key not in id_map:  # (torch keeps it, unused: here it is refused as a mismatch)
                raise ValueError(
                    f"loaded state dict has state for parameter {k!r}, which is in none of the "
                    "parameter groups"
                )
            p = id_map[key]
            new_state[p] = {name: _cast_state(p, name, v) for name, v in s.items()}
        new_groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ng = {k: _copy_value(v) for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in ng:
                ng["param_names"] = g["param_names"]
            for name, default in self.defaults.items():
                ng.setdefault(name, default)
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups
        for post_hook in list(self._hooks("_optimizer_load_state_dict_post_hooks").values()):
            post_hook(self)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _as_number(v: Any) -> Any:
    """A 1-element Tensor hyper-parameter as a NumPy scalar of its dtype (arithmetic with
    Python floats stays in that dtype, as torch's on a 0-d tensor); tuples and lists of them
    (betas, eps, etas) element-wise."""
    if isinstance(v, Tensor):
        return to_numpy(v.array).reshape(())[()]
    if isinstance(v, tuple | list) and any(isinstance(x, Tensor) for x in v):
        return type(v)(_as_number(x) for x in v)
    return v


def _hyper_as_numbers(group: dict[str, Any]) -> dict[str, Any]:
    """``group`` as the updates read it: hyper-parameters given as Tensors (a tensor ``lr``,
    tensor ``betas``) become NumPy scalars, so that every update stays on raw arrays (an
    array op with a Tensor operand returns a Tensor, and ``p.array += ...`` then rebound the
    parameter's array to it).

    Returns ``group`` itself when nothing is a Tensor, else a shallow copy (the group keeps
    its Tensors, which schedulers update in place)."""
    out = {k: v if k in _NOT_HYPER else _as_number(v) for k, v in group.items()}
    if all(out[k] is v for k, v in group.items()):
        return group
    return out


_NOT_HYPER = frozenset(("params", "param_names"))


def _check_lr(lr: Any, tensor_foreach: bool = False) -> None:
    """torch's checks of a Tensor ``lr``: one element, and (Adam, AdamW) not with
    ``foreach=True`` unless ``capturable`` (``tensor_foreach`` says the caller's case)."""
    if not isinstance(lr, Tensor):
        if not isinstance(lr, numbers.Real):
            raise InvalidType(
                f"Invalid learning rate: lr must be a number (or a one-element Tensor), got "
                f"{type(lr).__name__} {lr!r}"
            )
        if lr != lr:
            raise InvalidValue(f"Invalid learning rate: {lr}")
    else:
        if tensor_foreach:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")


def _check_capturable(group: dict[str, Any]) -> None:
    """torch's check at each step of a ``capturable=True`` group: an update meant for CUDA
    graph capture refuses parameters on the CPU."""
    if any(p.grad is not None and p.device.type != "cuda" for p in group["params"]):
        raise AssertionError(
            "If capturable=True, params and state_steps must be on supported devices: ['cuda']."
        )


def _check_fused_foreach(fused: Any, foreach: Any) -> None:
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _hooked_step(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` wrapped to run the global and the optimizer's step hooks around it.

    A step that calls its parent's (``super().step()``) runs the hooks once, in the outer call.
    """

    @functools.wraps(step)
    def hooked(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        self._opt_called = True
        if self.__dict__.get("_in_step", False):
            return step(self, *args, **kwargs)
        args = (self, *args)
        for pre_hook in list(
            chain(
                _global_optimizer_pre_hooks.values(),
                self._hooks("_optimizer_step_pre_hooks").values(),
            )
        ):
            result = pre_hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{step} must return None or a tuple of (new_args, new_kwargs), but "
                        f"got {result}."
                    )
                args, kwargs = result
        self._in_step = True
        try:
            out = step(*args, **kwargs)
        finally:
            self._in_step = False
        for post_hook in list(
            chain(
                self._hooks("_optimizer_step_post_hooks").values(),
                _global_optimizer_post_hooks.values(),
            )
        ):
            post_hook(self, args, kwargs)
        return out

    hooked._marks_called = True  # type: ignore[attr-defined]
    return hooked


Optimizer.step = _hooked_step(Optimizer.step)  # type: ignore[method-assign]


def _copy_value(v: Any) -> Any:
    if isinstance(v, list):
        return [_copy_value(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_copy_value(x) for x in v)
    if isinstance(v, dict):
        return {k: _copy_value(x) for k, x in v.items()}
    return v


def _cast_state(p: Tensor, name: str, v: Any) -> Any:
    """A copy of a saved state value, on the parameter's device and (floats) in its dtype."""
    if name == "step":
        arr = to_numpy(v.array) if isinstance(v, Tensor) else np.asarray(v)
        dt = arr.dtype if arr.dtype.kind == "f" else scalar_dtype()  # a saved float keeps its own
        return Tensor._wrap(np.array(arr, dtype=dt).reshape(()))
    if isinstance(v, list | tuple):  # LBFGS's history: lists of tensors
        return type(v)(_cast_state(p, name, x) for x in v)
    if isinstance(v, np.ndarray):
        v = Tensor._wrap(v)
    if not isinstance(v, Tensor):
        return _copy_value(v)
    arr = v.array
    if arr.dtype.kind == "f" and p.array.dtype.kind == "f":
        arr = arr.astype(p.array.dtype, copy=False)
    dev = device_of(p.array)
    moved = to_device(arr, dev)
    if moved is v.array:
        moved = get_xp(moved).array(moved, copy=True)
    return Tensor._wrap(moved)


def _new_state(state: dict[str, Any], p: Tensor, *zeros: str) -> None:
    """Fill an empty ``state``: a ``"step"`` counter, then a zero tensor for each name."""
    state["step"] = _step_counter()
    for name in zeros:
        state[name] = _zeros_state(p)


def _advance(state: dict[str, Any]) -> float:
    """Count one more step in ``state["step"]``; returns the new count."""
    step = state["step"].array
    step += 1
    return float(step)


def _plain(*values: Any) -> bool:
    """True where every value is a Python number (not a tensor lr or beta): the fused GPU
    updates (:mod:`darklib.kernels.fused`) take them as kernel scalars."""
    return all(type(v) is float or type(v) is int for v in values)


def _moments(g: Any, m: Any, v: Any, beta1: float, beta2: float) -> Any:
    """``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``; returns a scratch.

    ``(1 - beta2) * g * g`` in torch's order: g * g alone overflows float16 from |g| > 256
    (float32 from 1.8e19) and would freeze the parameter."""
    xp = get_xp(g)
    tmp = xp.multiply(g, 1 - beta2)
    tmp *= g
    v *= beta2
    v += tmp
    xp.subtract(g, m, out=tmp)
    tmp *= 1 - beta1
    m += tmp
    return tmp


def _zeros_state(p: Tensor) -> Tensor:
    """A zero state tensor shaped, typed and placed like the parameter."""
    return Tensor._wrap(get_xp(p.array).zeros_like(p.array))


def _step_counter() -> Tensor:
    """A 0-d float32 step counter kept on the CPU (reading it never syncs a GPU), as PyTorch."""
    return Tensor._wrap(np.zeros((), dtype=scalar_dtype()))


def scalar_dtype() -> np.dtype:
    """The dtype of optimizers' scalar state (step, NAdam's mu_product), as torch's:
    float64 under ``set_default_dtype(float64)``, else float32."""
    return np.dtype(np.float64 if get_default_dtype() == float64 else np.float32)


def _effective_grad(p: Tensor, maximize: bool, weight_decay: float) -> Any:
    """The gradient an update uses (negated to maximize, plus L2 weight decay).

    A fresh array the caller may overwrite, or ``p.grad``'s own array (which must not change)
    when neither applies.
    """
    g = p.grad.array
    if weight_decay != 0:
        xp = get_xp(g)
        t = xp.multiply(p.array, weight_decay)
        if maximize:
            return xp.subtract(t, g, out=t)
        return xp.add(g, t, out=t)
    if maximize:
        return get_xp(g).negative(g)
    return g


# per-parameter bookkeeping the updates read as numbers (0-d, on the CPU), not arrays
_COUNTERS = frozenset(("step", "mu_product", "eta", "mu"))


def _as_vectors(p: Tensor, state: dict[str, Any]) -> list:
    """Give a 0-d parameter, its gradient and its state 1-element views for one update:
    NumPy turns 0-d results into scalars, which the updates' ``out=`` arguments refuse.
    Returns what :func:`_as_scalars` puts back."""
    held = [
        p,
        p.grad,
        *(t for k, t in state.items() if isinstance(t, Tensor) and k not in _COUNTERS),
    ]
    swapped = [(t, t.array) for t in held if t.array.ndim == 0]
    for t, a in swapped:
        t.array = a.reshape(1)
    return swapped


def _as_scalars(swapped: list, state: dict[str, Any]) -> None:
    """Undo :func:`_as_vectors`; state made during the update becomes 0-d too."""
    for t, a in swapped:
        t.array = a
    for k, t in state.items():
        if isinstance(t, Tensor) and k not in _COUNTERS and t.array.shape == (1,):
            t.array = t.array.reshape(())


def _check_grad(p: Tensor, who: str) -> None:
    g = p.grad
    if g.array.shape != p.array.shape:
        raise RuntimeError(
            f"{who}.step: a parameter of shape {tuple(p.array.shape)} has a gradient of shape "
            f"{tuple(g.array.shape)}"
        )
    if type(g.array) is not type(p.array):
        raise RuntimeError(f"{who}.step: a parameter on {p.device} has its gradient on {g.device}")
