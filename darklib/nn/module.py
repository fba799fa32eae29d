"""Module: the base class of every layer and model.

A Module owns parameters, buffers and child modules, registered by attribute assignment,
and gives them dotted names (``"features.0.weight"``) for ``state_dict``, optimizers and
printing. Semantics follow ``torch.nn.Module``.
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from darklib import dtypes as _dt
from darklib.autograd.function import Function, _OutputOf, _sync
from darklib.backend import (
    as_device,
    device,
    device_of,
    get_xp,
    is_cuda_array,
    to_device,
    xp_for,
)
from darklib.errors import InvalidType, InvalidValue
from darklib.grad_mode import is_grad_enabled
from darklib.nn.parameter import Buffer, Parameter
from darklib.tensor import RemovableHandle, Tensor, check_bool

__all__ = [
    "Module",
    "RemovableHandle",
    "register_module_backward_hook",
    "register_module_buffer_registration_hook",
    "register_module_forward_hook",
    "register_module_forward_pre_hook",
    "register_module_full_backward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
]


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )


_EXTRA_STATE = "_extra_state"  # the state_dict key suffix of get_extra_state's value
_HOOK_DICTS = (
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


# Hooks on every module (torch.nn.modules.module.register_module_*_hook): they run before
# each module's own hooks of the same kind.
_global_forward_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_forward_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_forward_hooks_with_kwargs: set[int] = set()
_global_forward_hooks_always_called: set[int] = set()
_global_backward_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_backward_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_registration_hooks: dict[str, OrderedDict[int, Callable[..., Any]]] = {
    "parameter": OrderedDict(),
    "buffer": OrderedDict(),
    "module": OrderedDict(),
}


def _add_global(hooks: OrderedDict, hook: Callable[..., Any]) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def register_module_forward_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, args)`` before the forward of every module (see
    :meth:`Module.register_forward_pre_hook`); it runs before the module's own pre-hooks."""
    return _add_global(_global_forward_pre_hooks, hook)


def register_module_forward_hook(
    hook: Callable[..., Any], *, with_kwargs: bool = False, always_call: bool = False
) -> RemovableHandle:
    """``hook(module, args, output)`` after the forward of every module (see
    :meth:`Module.register_forward_hook`); it runs before the module's own forward hooks."""
    handle = _add_global(_global_forward_hooks, hook)
    if with_kwargs:
        _global_forward_hooks_with_kwargs.add(handle.id)
    if always_call:
        _global_forward_hooks_always_called.add(handle.id)
    return handle


def register_module_full_backward_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, grad_output)`` for every module (see
    :meth:`Module.register_full_backward_pre_hook`)."""
    return _add_global(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, grad_input, grad_output)`` for every module (see
    :meth:`Module.register_full_backward_hook`)."""
    return _add_global(_global_backward_hooks, hook)


def register_module_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Deprecated in PyTorch; darklib runs ``hook`` as
    :func:`register_module_full_backward_hook`."""
    warnings.warn(
        "register_module_backward_hook is deprecated (as in PyTorch); darklib runs the hook "
        "as register_module_full_backward_hook",
        FutureWarning,
        stacklevel=2,
    )
    return register_module_full_backward_hook(hook)


def register_module_parameter_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, name, param)`` whenever a module registers a parameter; a value it
    returns is registered instead."""
    return _add_global(_global_registration_hooks["parameter"], hook)


def register_module_buffer_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, name, buffer)`` whenever a module registers a buffer; a value it
    returns is registered instead."""
    return _add_global(_global_registration_hooks["buffer"], hook)


def register_module_module_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, name, submodule)`` whenever a module registers a child module; a value
    it returns is registered instead."""
    return _add_global(_global_registration_hooks["module"], hook)


def _registered(kind: str, module: Module, name: str, value: Any) -> Any:
    """``value`` after the global registration hooks of ``kind`` have seen it."""
    for hook in list(_global_registration_hooks[kind].values()):
        out = hook(module, name, value)
        if out is not None:
            value = out
    return value


class _WrappedHook:
    """A load_state_dict pre-hook, given its module first when registered with one (held
    weakly, as torch does, so the hook keeps no module alive)."""

    def __init__(self, hook: Callable[..., Any], module: Module | None = None) -> None:
        self.hook = hook
        self.module = None if module is None else weakref.ref(module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.module is None:
            return self.hook(*args, **kwargs)
        module = self.module()
        if module is None:
            raise RuntimeError("You are trying to call the hook of a dead Module!")
        return self.hook(module, *args, **kwargs)


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (nested module reprs)."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    pad = " " * spaces
    return first + "\n" + "\n".join(pad + line for line in rest)


def _shape(x: Any) -> tuple:
    return tuple(int(n) for n in x.shape)


def _parse_to(args: tuple, kwargs: dict) -> tuple[device | None, Any]:
    """Module.to's arguments: a device, a dtype, a tensor, or keywords ``device``/``dtype``."""
    dev = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise InvalidType(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dev, dtype = a.device, a.dtype
        elif isinstance(a, str | device) or (isinstance(a, int) and not isinstance(a, bool)):
            dev = a
        elif isinstance(a, bool):
            continue  # torch's positional non_blocking
        else:
            dtype = a
    if dtype is not None:
        npd = _dt.to_numpy_dtype(dtype)
        if npd.kind != "f":
            raise InvalidType(
                f"Module.to only accepts floating point dtypes, but got desired dtype={dtype}"
            )
        dtype = npd
    return (as_device(dev) if dev is not None else None), dtype


class Module:
    """Base class for all neural network modules; subclass it and define ``forward``.

    Assigning a :class:`Parameter`, a Module, or (after :meth:`register_buffer`) a tensor
    to an attribute registers it, so that :meth:`parameters`, :meth:`state_dict`,
    :meth:`to` and printing see it.

    Example::

        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc(x).relu()
    """

    training: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise InvalidType(
                f"{type(self).__name__}.__init__() got unexpected arguments: Module.__init__ "
                "takes none"
            )
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        d["_forward_hooks"] = OrderedDict()
        d["_forward_hooks_with_kwargs"] = set()
        d["_forward_hooks_always_called"] = set()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_pre_hooks_with_kwargs"] = set()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        d["_is_full_backward_hook"] = None  # which kind of backward hook: never both
        d["_state_dict_hooks"] = OrderedDict()
        d["_state_dict_pre_hooks"] = OrderedDict()
        d["_load_state_dict_pre_hooks"] = OrderedDict()
        d["_load_state_dict_post_hooks"] = OrderedDict()

    # subclasses implement this; declared here so that the error names the module
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # ----------------------------------------------------------------- registration
    def _check_init(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {what} before Module.__init__() call (call super().__init__() "
                f"first in {type(self).__name__}.__init__)"
            )

    @staticmethod
    def _check_name(name: Any, what: str) -> None:
        if not isinstance(name, str):
            raise InvalidType(f"{what} name should be a string, got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{what} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{what} name can\'t contain ".", got: {name}')

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is saved and moved with the module but is not learnt.

        Args:
            name: attribute name.
            tensor: the buffer (or ``None``: a declared but absent buffer).
            persistent: whether the buffer is part of :meth:`state_dict`.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise InvalidType(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(Tensor or None required)"
            )
        if isinstance(tensor, Buffer):
            persistent = tensor.persistent
            tensor = Tensor._wrap(tensor.array)
        if _global_registration_hooks["buffer"]:
            tensor = _registered("buffer", self, name, tensor)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or ``None``, a declared but absent one such as a missing bias)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise InvalidType(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise InvalidValue(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must "
                "be created explicitly; to express '{name}' as a function of another tensor, "
                "compute the value in the forward() method."
            )
        if _global_registration_hooks["parameter"]:
            param = _registered("parameter", self, name, param)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as an attribute ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise InvalidType(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if _global_registration_hooks["module"]:
            module = _registered("module", self, name, module)
        self._modules[name] = module

    def register_module(self, name: str, module: Module | None) -> None:
        """Alias of :meth:`add_module`."""
        self.add_module(name, module)

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            d.pop(name, None)
            d["_buffers"].pop(name, None)
            d["_modules"].pop(name, None)
            d["_non_persistent_buffers_set"].discard(name)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise InvalidType(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(nn.Parameter or None expected)"
                )
            params[name] = None
            return
        if isinstance(value, Module):
            self._check_init("module")
            d.pop(name, None)
            params.pop(name, None)
            d["_buffers"].pop(name, None)
            d["_non_persistent_buffers_set"].discard(name)
            if _global_registration_hooks["module"]:
                value = _registered("module", self, name, value)
            d["_modules"][name] = value
            return
        modules = d.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise InvalidType(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(nn.Module or None expected)"
                )
            modules[name] = None
            return
        if isinstance(value, Buffer):
            self._check_init("buffers")
            d.pop(name, None)
            self.register_buffer(name, value)
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise InvalidType(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(Tensor or None expected)"
                )
            if _global_registration_hooks["buffer"]:
                value = _registered("buffer", self, name, value)
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        if "_parameters" not in d and not name.startswith("__"):
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}': "
                f"{type(self).__name__}.__init__ did not call super().__init__()"
            )
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                del s[name]
                d["_non_persistent_buffers_set"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = set(super().__dir__())
        keys.update(self._parameters, self._buffers, self._modules)
        return sorted(k for k in keys if not k[0].isdigit())

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` (``""`` is this module)."""
        if target == "":
            return self
        mod: Module = self
        for item in target.split("."):
            if item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Replace (or, unless ``strict``, add) the submodule at dotted path ``target``."""
        if target == "":
            raise InvalidValue("set_submodule: cannot set the module itself (target is empty)")
        if not isinstance(module, Module):
            raise InvalidType(f"set_submodule: {type(module).__name__} is not a Module subclass")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and name not in parent._modules:
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        if name not in parent._modules and hasattr(parent, name):
            raise AttributeError(f"`{name}` is not an nn.Module of {parent._get_name()}")
        setattr(parent, name, module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` (e.g. ``"0.weight"``)."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters or mod._parameters[name] is None:
            raise AttributeError(f"{mod._get_name()} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target`` (e.g. ``"bn.running_mean"``)."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers or mod._buffers[name] is None:
            raise AttributeError(f"{mod._get_name()} has no buffer `{name}`")
        return mod._buffers[name]

    # ----------------------------------------------------------------- traversal
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Every module in the tree (this one first, as ``""``) with its dotted name."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, mod in self._modules.items():
            if mod is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from mod.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, mod in self._modules.items():
            if mod is not None and id(mod) not in seen:
                seen.add(id(mod))
                yield name, mod

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(
        self, store: str, prefix: str, recurse: bool, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, store).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted_name, parameter)`` pairs, each shared parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ----------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm uses batch statistics) recursively."""
        if not isinstance(mode, bool):
            raise InvalidValue("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        check_bool(requires_grad, "requires_grad_", "requires_grad")
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to ``None`` by default, as PyTorch)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.grad_fn = None
                p.grad.requires_grad = False
                p.grad.array[...] = 0

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ----------------------------------------------------------------- devices and dtypes
    def _apply_arrays(
        self, fn: Callable[[Any], Any], floating_only: bool = False, recurse: bool = True
    ) -> Module:
        """Replace every parameter's and buffer's array by ``fn(array)``, in place (this
        module's own only, without ``recurse``).

        The Parameter objects stay the same, so optimizers built before the move keep
        pointing at them (PyTorch swaps ``.data`` likewise).
        """
        for mod in self.modules() if recurse else (self,):
            for p in mod._parameters.values():
                if p is None or (floating_only and p.array.dtype.kind != "f"):
                    continue
                p.array = fn(p.array)
                if p.grad is not None:
                    p.grad.array = fn(p.grad.array)
            for b in mod._buffers.values():
                if b is None or (floating_only and b.array.dtype.kind != "f"):
                    continue
                b.array = fn(b.array)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move and/or cast parameters and buffers in place.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` or keywords.
        Only floating-point tensors are cast; integer buffers such as
        ``num_batches_tracked`` keep their dtype.
        """
        dev, dtype = _parse_to(args, dict(kwargs))

        def convert(arr: Any) -> Any:
            if dev is not None:
                arr = to_device(arr, dev)
            if dtype is not None and arr.dtype.kind == "f" and arr.dtype != dtype:
                arr = arr.astype(dtype)
            return arr

        return self._apply_arrays(convert)

    def to_empty(self, *, device: Any, recurse: bool = True) -> Module:
        """Give every parameter and buffer (and gradient) a new, uninitialised array of
        the same shape and dtype on ``device`` (``None``: where each is), as torch's; the
        values are garbage until set (e.g. by ``reset_parameters`` or
        :meth:`load_state_dict`).

        Args:
            device: where the new arrays live (keyword only, as torch's).
            recurse: also the submodules' parameters and buffers. Default: ``True``.
        """
        dev = None if device is None else as_device(device)

        def empty(arr: Any) -> Any:
            where = device_of(arr) if dev is None else dev
            xp = xp_for(where)
            if xp is np:
                return np.empty(arr.shape, arr.dtype)
            with xp.cuda.Device(where.index):
                return xp.empty(arr.shape, arr.dtype)

        return self._apply_arrays(empty, recurse=recurse)

    def cuda(self, device: Any = None) -> Module:
        return self.to("cuda" if device is None else as_device(device))

    def cpu(self) -> Module:
        return self.to("cpu")

    def type(self, dst_type: Any) -> Module:
        npd = _dt.to_numpy_dtype(dst_type)
        return self._apply_arrays(lambda a: a.astype(npd), floating_only=False)

    def float(self) -> Module:
        return self._apply_arrays(lambda a: a.astype(np.float32), floating_only=True)

    def double(self) -> Module:
        return self._apply_arrays(lambda a: a.astype(np.float64), floating_only=True)

    def half(self) -> Module:
        return self._apply_arrays(lambda a: a.astype(np.float16), floating_only=True)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """``torch.nn.Module.compile``'s place: darklib has no graph compiler, so the module
        keeps running eagerly (see :func:`darklib.compile`)."""

    # ----------------------------------------------------------------- calling
    def _call_impl(self, *args: Any, **kwargs: Any) -> Any:
        if not (
            self._forward_hooks
            or self._forward_pre_hooks
            or self._backward_hooks
            or self._backward_pre_hooks
            or _global_forward_pre_hooks
            or _global_forward_hooks
            or _global_backward_hooks
            or _global_backward_pre_hooks
        ):
            return self.forward(*args, **kwargs)
        # as torch: the hooks run inside the same try as forward, so that an exception in a
        # forward pre-hook, forward or a forward hook still runs the always_call hooks that
        # have not run yet, and then propagates
        result = None
        called: set[int] = set()
        forward_hooks = [*_global_forward_hooks.items(), *self._forward_hooks.items()]
        always = self._forward_hooks_always_called | _global_forward_hooks_always_called
        try:
            for hid, hook in [*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()]:
                if hid in self._forward_pre_hooks_with_kwargs:
                    res = hook(self, args, kwargs)
                    if res is not None:
                        if not (isinstance(res, tuple) and len(res) == 2):
                            raise RuntimeError(
                                "forward pre-hook must return None or a tuple of (new_args, "
                                f"new_kwargs), but got {res}."
                            )
                        args, kwargs = res
                else:
                    res = hook(self, args)
                    if res is not None:
                        args = res if isinstance(res, tuple) else (res,)
            bw_hook = None
            backward_hooks = [*_global_backward_hooks.values(), *self._backward_hooks.values()]
            backward_pre_hooks = [
                *_global_backward_pre_hooks.values(),
                *self._backward_pre_hooks.values(),
            ]
            if backward_hooks or backward_pre_hooks:
                bw_hook = _BackwardHook(self, backward_hooks, backward_pre_hooks)
                args = bw_hook.setup_input_hook(args)
            result = self.forward(*args, **kwargs)
            for hid, hook in forward_hooks:
                if hid in always:
                    called.add(hid)
                result = self._run_forward_hook(hid, hook, args, kwargs, result)
            if bw_hook is not None:
                if not isinstance(result, Tensor | tuple):
                    warnings.warn(
                        "For backward hooks to be called, module output should be a Tensor or "
                        f"a tuple of Tensors but received {type(result)}",
                        stacklevel=2,
                    )
                result = bw_hook.setup_output_hook(result)
            return result
        except Exception:
            for hid, hook in forward_hooks:
                if hid not in always or hid in called:
                    continue
                try:
                    result = self._run_forward_hook(hid, hook, args, kwargs, result)
                except Exception as e:
                    warnings.warn(
                        "module forward hook with ``always_call=True`` raised an exception "
                        f"that was silenced as another error was raised in forward: {e}",
                        stacklevel=2,
                    )
            raise

    __call__ = _call_impl

    def _run_forward_hook(
        self, hid: int, hook: Callable[..., Any], args: tuple, kwargs: dict, result: Any
    ) -> Any:
        """Call one forward hook; its return value, if not None, replaces ``result``."""
        if hid in self._forward_hooks_with_kwargs or hid in _global_forward_hooks_with_kwargs:
            res = hook(self, args, kwargs, result)
        else:
            res = hook(self, args, result)
        return result if res is None else res

    def register_full_backward_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients of the module's
        inputs have been computed; it may return a new ``grad_input`` tuple.

        As in PyTorch, ``grad_input`` has one entry per positional argument of forward: the
        gradient of a tensor argument (zeros where it got none in this backward pass), None
        for other arguments; ``grad_output`` has one entry per output (a tuple's items), None
        where an output got no gradient, is not a tensor or does not require grad. The hook
        runs once per backward pass through the module's outputs; with no input requiring
        grad it runs when the outputs' gradients are known, with ``grad_input`` all None
        (and a warning, as torch). The hooks registered when forward runs are the ones
        called. The module must not change its inputs in place while such a hook is
        registered, and must return a tensor or a tuple for the hooks to run.

        A module that was given a hook with :meth:`register_backward_hook` refuses this one
        (and the reverse), as torch's, even once that hook is removed.
        """
        self._backward_hook_kind(True)
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradients of the module's outputs have
        been computed (None for an output without one); it may return a new ``grad_output``
        tuple."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Deprecated in PyTorch; darklib runs ``hook`` as :meth:`register_full_backward_hook`
        (a module takes hooks of one of the two kinds only, as torch's)."""
        self._backward_hook_kind(False)
        warnings.warn(
            "register_backward_hook is deprecated (as in PyTorch); darklib runs the hook as "
            "register_full_backward_hook, which gives the gradients of the module's inputs",
            FutureWarning,
            stacklevel=2,
        )
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def _backward_hook_kind(self, full: bool) -> None:
        """Record which kind of backward hook the module has (torch's
        ``_is_full_backward_hook``), refusing the other kind."""
        if self.__dict__.get("_is_full_backward_hook") is (not full):
            raise RuntimeError(
                "Cannot use both regular backward hooks and full backward hooks on a single "
                f"Module ({type(self).__name__}). Please use only one of them."
            )
        self.__dict__["_is_full_backward_hook"] = full

    def register_forward_pre_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; it may return new args.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and may return
        ``(args, kwargs)``.
        """
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every forward; it may return a new output.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``. With
        ``always_call=True`` it also runs (with ``output`` None if forward did not return)
        when a forward pre-hook, forward or an earlier forward hook raises an ``Exception``;
        an exception of its own is then turned into a warning and the first one propagates.
        """
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    # ----------------------------------------------------------------- state dict
    _version: int = 1  # saved in state_dict()'s metadata; layers bump it when keys change

    def get_extra_state(self) -> Any:
        """Override (with :meth:`set_extra_state`) to store extra state under the key
        ``prefix + "_extra_state"`` of :meth:`state_dict`. ``darklib.save`` writes it if it
        is made of numbers, strings, bools, None, tensors, lists, tuples and dicts."""
        raise RuntimeError(
            "Module.get_extra_state() is only called for modules that override it (with "
            "set_extra_state)"
        )

    def set_extra_state(self, state: Any) -> None:
        """Override to restore what :meth:`get_extra_state` returned, from
        :meth:`load_state_dict`."""
        raise RuntimeError(
            "Module.set_extra_state() is only called for modules that override it (with "
            "get_extra_state)"
        )

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Put this module's own entries (not its children's) into ``destination``."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if getattr(type(self), "get_extra_state", Module.get_extra_state) is not (
            Module.get_extra_state
        ):
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()

    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> Any:
        """Every parameter and persistent buffer by dotted name, as detached tensors (and
        ``"<prefix>_extra_state"`` for modules overriding :meth:`get_extra_state`).

        The tensors share memory with the module (copy them to snapshot). Keys match
        PyTorch's for the same architecture (``"0.weight"``, ``"bn.running_mean"``...).
        As torch, a new state dict is an ``OrderedDict`` whose ``_metadata`` attribute
        holds each module's ``{"version": ...}``; ``destination`` (deprecated as
        positional arguments ``destination, prefix, keep_vars``, as in torch) is filled
        and returned instead.
        """
        if args:
            warnings.warn(
                "Positional args are being deprecated, use kwargs instead. Refer to "
                "https://pytorch.org/docs/main/generated/torch.nn.Module.html"
                "#torch.nn.Module.state_dict for details.",
                FutureWarning,
                stacklevel=2,
            )
            if len(args) > 3:
                raise InvalidType(
                    f"state_dict() takes at most 3 positional arguments ({len(args)} given)"
                )
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, mod in self._modules.items():
            if mod is not None:
                mod.state_dict(
                    destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars
                )
        for hook in list(self._state_dict_hooks.values()):
            res = hook(self, destination, prefix, local_metadata)
            if not getattr(hook, "_public_post_hook", False):
                if res is not None:  # the private hooks' old contract: a new state dict
                    destination = res
            elif res is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    def register_state_dict_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, prefix, keep_vars)`` before :meth:`state_dict` saves this
        module's entries."""
        handle = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, state_dict, prefix, local_metadata)`` after :meth:`state_dict`
        has saved this module and its children; it may change ``state_dict`` in place and
        must return None."""
        hook._public_post_hook = True  # type: ignore[attr-defined]
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def _register_state_dict_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """torch's older private post-hook: like :meth:`register_state_dict_post_hook`, but
        a state dict it returns replaces the result (of the module it is registered on)."""
        if getattr(hook, "_public_post_hook", False):
            raise RuntimeError(
                "Cannot register the same function as the state dict post hook that was "
                "previously registered via register_state_dict_post_hook"
            )
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_load_state_dict_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` before this module loads its entries in
        :meth:`load_state_dict` (``state_dict`` is load_state_dict's own copy)."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def _register_load_state_dict_pre_hook(
        self, hook: Callable[..., Any], with_module: bool = False
    ) -> RemovableHandle:
        """As :meth:`register_load_state_dict_pre_hook`; without ``with_module`` the hook
        does not get the module as its first argument."""
        handle = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[handle.id] = _WrappedHook(
            hook, self if with_module else None
        )
        return handle

    def register_load_state_dict_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, incompatible_keys)`` after :meth:`load_state_dict` has loaded
        this module and its children. ``incompatible_keys`` holds the running
        ``missing_keys`` and ``unexpected_keys`` lists; changing them in place changes what
        strict loading reports. The hook must return None."""
        handle = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Copy this module's own entries (not its children's) from ``state_dict``, torch's
        signature and contract: ``state_dict`` is :meth:`load_state_dict`'s copy (an
        override may rename or add keys), ``local_metadata`` this module's metadata
        (``"version"``, ``"assign_to_params_buffers"``); keys missing or unexpected here
        go to the lists when ``strict``, other problems to ``error_msgs``."""
        for hook in list(self._load_state_dict_pre_hooks.values()):
            hook(
                state_dict,
                prefix,
                local_metadata,
                strict,
                missing_keys,
                unexpected_keys,
                error_msgs,
            )
        persistent = {
            k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set
        }
        local = {k: v for k, v in {**self._parameters, **persistent}.items() if v is not None}
        assign = bool(local_metadata.get("assign_to_params_buffers", False))
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):  # (torch's check: arrays and lists too)
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected darklib.Tensor or '
                    f"Tensor-like object from checkpoint but received {type(value)} (wrap "
                    "arrays with darklib.tensor or darklib.from_numpy)"
                )
                continue
            arr = value.array
            reshaped = False
            if target.array.ndim == 0 and arr.shape == (1,):
                # torch's backward compatibility: 1-element 1-D values (checkpoints of
                # torch < 0.4, e.g. num_batches_tracked) load into 0-d entries
                arr, reshaped = arr.reshape(()), True
            if _shape(arr) != _shape(target.array):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {_shape(arr)} from "
                    f"checkpoint, the shape in current model is {_shape(target.array)}."
                )
                continue
            try:
                if assign and name in self._parameters:
                    if isinstance(value, Parameter) and not reshaped:
                        value.requires_grad_(target.requires_grad)
                        new = value
                    else:
                        new = Parameter(Tensor._wrap(arr), requires_grad=target.requires_grad)
                    self._parameters[name] = new
                elif assign:
                    keep = isinstance(value, Tensor) and not reshaped
                    self._buffers[name] = value if keep else Tensor._wrap(arr)
                else:
                    _copy_into(target, arr)
            except Exception as e:  # e.g. a value that cannot be cast
                error_msgs.append(
                    f'While copying the parameter named "{key}", whose dimensions in the model '
                    f"are {_shape(target.array)} and whose dimensions in the checkpoint are "
                    f"{_shape(arr)}, an exception occurred : {e}."
                )
        extra_key = prefix + _EXTRA_STATE
        if getattr(type(self), "set_extra_state", Module.set_extra_state) is not (
            Module.set_extra_state
        ):
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    head, dot, _ = key[len(prefix) :].partition(".")
                    # a dotted key names a child's entry; any other must be one of ours
                    if (head not in self._modules) if dot else (head not in local):
                        unexpected_keys.append(key)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Copy parameters and buffers from ``state_dict`` into this module and its children.

        Args:
            state_dict: name -> Tensor mapping, e.g. from :meth:`state_dict` (other values,
                NumPy arrays and lists included, are refused, as torch's).
                It is not changed: as torch, the modules load from a shallow copy.
            strict: if True, missing or unexpected keys are an error.
            assign: if True, take the given tensors instead of copying into the existing
                ones (the parameters then share memory with ``state_dict``).

        Returns:
            ``NamedTuple`` with ``missing_keys`` and ``unexpected_keys``.

        Raises:
            RuntimeError: on a shape mismatch (always), naming the key and both shapes, and
                on missing or unexpected keys when ``strict``.
        """
        if not isinstance(state_dict, Mapping):
            raise InvalidType(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}."
            )
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)  # overrides may change it: never the caller's
        if metadata is not None:
            state_dict._metadata = metadata

        def load(module: Module, local_state: dict, prefix: str = "") -> None:
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(
                local_state, prefix, local_metadata, True, missing, unexpected, errors
            )
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state = {
                        k: v for k, v in local_state.items() if k.startswith(child_prefix)
                    }
                    load(child, child_state, child_prefix)
            keys = _IncompatibleKeys(missing, unexpected)  # hooks may change them in place
            for hook in list(module._load_state_dict_post_hooks.values()):
                if hook(module, keys) is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not "
                        "expected to return new values, if incompatible_keys need to be "
                        "modified, it should be done inplace."
                    )

        load(self, state_dict)
        if strict:
            if unexpected:
                errors.insert(
                    0,
                    "Unexpected key(s) in state_dict: "
                    + ", ".join(f'"{k}"' for k in unexpected)
                    + ". ",
                )
            if missing:
                errors.insert(
                    0,
                    "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ",
                )
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(errors)
            )
        return _IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- printing
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """One line (or several) of settings printed inside this module's repr."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _addindent(repr(mod), 2) for name, mod in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in _HOOK_DICTS:  # modules saved before these existed
            self.__dict__.setdefault(name, OrderedDict())


_NO_INPUT_GRAD_WARNING = (
    "Full backward hook is firing when gradients are computed with respect to module outputs "
    "since no inputs require gradients. See "
    "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
    "#torch.nn.Module.register_full_backward_hook for more details."
)


class _BackwardHook:
    """One forward call's bookkeeping for the module's full backward hooks and pre-hooks,
    with torch's semantics.

    The tensor inputs pass through one identity node, and so do the tensor outputs (each
    node has one slot per tensor; see :class:`BackwardHookFunction`). The engine runs a
    node once every gradient flowing into it in this backward pass has arrived, with None
    in the slots that received none. The outputs' node builds ``grad_output`` (None for an
    output that got no gradient, a non-tensor or one that does not require grad) and runs
    the pre-hooks; the inputs' node then runs the hooks with ``grad_input``: zeros for a
    tensor input that got no gradient, None for a non-tensor argument. Each backward pass
    through the outputs fires the hooks once (``retain_graph`` passes included); gradients
    that reach the inputs without passing through the outputs fire nothing.
    """

    def __init__(self, module: Module, hooks: list, pre_hooks: list) -> None:
        self.module = module
        self.hooks = hooks  # as registered when forward ran (torch takes them then)
        self.pre_hooks = pre_hooks
        self.grad_outputs: tuple | None = None  # set by the outputs' node, until fired
        self.n_inputs = -1
        self.input_index: list[int] | None = None  # positions of the tensor arguments
        self.n_outputs = -1
        self.output_index: list[int] | None = None
        self.wrapped: list[tuple[Tensor, int]] = []  # inputs as passed to forward, versions

    def setup_input_hook(self, args: tuple) -> tuple:
        res, index = self._apply(args, True)
        self.n_inputs, self.input_index = len(args), index
        return res

    def setup_output_hook(self, result: Any) -> Any:
        for w, v in self.wrapped:
            if w._version != v:
                raise RuntimeError(
                    f"{self.module._get_name()}: an input was modified in place during forward "
                    "while a backward hook is registered; PyTorch forbids this too (use "
                    "inplace=False, or remove the hook)"
                )
        self.wrapped = []
        is_tuple = isinstance(result, tuple)
        outs = result if is_tuple else (result,)
        res, index = self._apply(outs, False)
        self.n_outputs, self.output_index = len(outs), index
        return res if is_tuple else res[0]

    def _apply(self, args: tuple, is_input: bool) -> tuple[tuple, list[int] | None]:
        """``args`` with each tensor replaced by its slot of a new identity node (when one
        of them requires grad and grad mode is on), and the positions of the tensors."""
        index = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        tensors = [args[i] for i in index]
        if not (any(t.requires_grad for t in tensors) and is_grad_enabled()):
            return args, None
        _sync(tensors)  # views whose base changed in place since they were taken
        fn = BackwardHookFunction
        node = fn._node(fn, (), tuple(t.requires_grad for t in tensors))
        node.parents = tuple((t.grad_fn or t) if t.requires_grad else None for t in tensors)
        node._outputs_meta = [_zeros_meta(t.array) for t in tensors]
        node._hook = (self, is_input)
        new = list(args)
        for k, (i, t) in enumerate(zip(index, tensors)):
            if not t.requires_grad:
                continue
            w = Tensor._wrap(t.array, requires_grad=True)
            proxy = _OutputOf._node(_OutputOf, (), (True,))
            proxy.parents, proxy.slot = (node,), k
            proxy._out_shape, proxy._out_dtype = t.array.shape, t.array.dtype
            w.grad_fn = proxy
            new[i] = w
            if is_input:
                self.wrapped.append((w, w._version))
        if type(args) is tuple:
            return tuple(new), index
        return type(args)(*new), index  # a named tuple

    def _pack(self, index: list[int], values: Any, size: int) -> tuple:
        res: list = [None] * size
        for i, v in zip(index, values):
            res[i] = v
        return tuple(res)

    def output_node(self, slots: list) -> tuple:
        """The outputs' node: run the pre-hooks, and (no input requiring grad) the hooks."""
        self.grad_outputs = self._pack(
            self.output_index, [_as_tensor(g) for g in slots], self.n_outputs
        )
        for hook in self.pre_hooks:
            res = hook(self.module, self.grad_outputs)
            if res is None:
                continue
            res = res if isinstance(res, tuple | list) else (res,)
            if len(res) != len(self.grad_outputs):
                raise RuntimeError(
                    "Backward pre hook returned an invalid number of grad_output, got "
                    f"{len(res)}, but expected {len(self.grad_outputs)}"
                )
            self.grad_outputs = res
        local = self.grad_outputs
        if self.input_index is None:  # no input requires grad: the hooks fire now
            warnings.warn(_NO_INPUT_GRAD_WARNING, UserWarning, stacklevel=2)
            grad_inputs = (None,) * self.n_inputs
            for hook in self.hooks:
                res = hook(self.module, grad_inputs, self.grad_outputs)
                if res is not None and not (isinstance(res, tuple) and all(r is None for r in res)):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires gradient should "
                        "always return None or None for all gradients."
                    )
            self.grad_outputs = None
        return tuple(_as_array(local[i]) for i in self.output_index)

    def input_node(self, slots: list, meta: list) -> tuple:
        """The inputs' node: run the hooks, if the gradients came through the outputs."""
        grads = [_zeros(m) if g is None else g for g, m in zip(slots, meta)]
        if self.grad_outputs is None:  # not through the outputs (or already fired)
            return tuple(grads)
        res = self._pack(self.input_index, [Tensor._wrap(g) for g in grads], self.n_inputs)
        for hook in self.hooks:
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            out = out if isinstance(out, tuple | list) else (out,)
            if len(out) != len(res):
                raise RuntimeError(
                    "Backward hook returned an invalid number of grad_input, got "
                    f"{len(out)}, but expected {len(res)}"
                )
            res = out
        self.grad_outputs = None
        return tuple(_as_array(res[i]) for i in self.input_index)


def _zeros_meta(arr: Any) -> tuple:
    """What it takes to make zeros like ``arr`` (a gradient that did not arrive)."""
    return get_xp(arr), arr.shape, arr.dtype, (arr.device if is_cuda_array(arr) else None)


def _zeros(meta: tuple) -> Any:
    xp, shape, dtype, dev = meta
    if dev is None:
        return xp.zeros(shape, dtype)
    with dev:
        return xp.zeros(shape, dtype)


def _as_tensor(a: Any) -> Tensor | None:
    return None if a is None else Tensor._wrap(a)


def _as_array(t: Any) -> Any:
    return t.array if isinstance(t, Tensor) else t


class BackwardHookFunction(Function):
    """The identity node that a module's inputs (or outputs) pass through while it has full
    backward hooks: one slot per tensor, run once per backward pass (torch's
    ``BackwardHookFunction``). Built by :class:`_BackwardHook`, never applied directly."""

    about = "a module's full backward hook"

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        state, is_input = ctx._hook
        slots = g if type(g) is list else [g]
        if is_input:
            return state.input_node(slots, ctx._outputs_meta)
        return state.output_node(slots)


# torch's name for the node (``out.grad_fn.name()`` of the hooked tensors' owner)
BackwardHookFunction._node.__name__ = "BackwardHookFunctionBackward"
BackwardHookFunction._node.__qualname__ = "BackwardHookFunctionBackward"


def _copy_into(target: Tensor, arr: Any) -> None:
    """Write ``arr`` into ``target``'s array, casting to its dtype and moving to its device."""
    if not isinstance(arr, np.ndarray) and not is_cuda_array(arr):
        arr = np.asarray(arr)
    target.array[...] = to_device(arr, target.device)
    target._version += 1
