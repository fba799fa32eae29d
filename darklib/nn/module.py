"""Module: the base class of every layer and model.

A Module owns parameters, buffers and child modules, registered by attribute assignment,
and gives them dotted names (``"features.0.weight"``) for ``state_dict``, optimizers and
printing. Semantics follow ``torch.nn.Module``.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from darklib import dtypes as _dt
from darklib.autograd import Function
from darklib.backend import as_device, device, is_cuda_array, to_device
from darklib.grad_mode import is_grad_enabled
from darklib.nn.parameter import Buffer, Parameter
from darklib.tensor import Tensor

__all__ = ["Module", "RemovableHandle"]


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


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``handle.remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


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
        raise TypeError(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}")
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
            raise TypeError(
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
            raise TypeError(
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
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
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
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(Tensor or None required)"
            )
        if isinstance(tensor, Buffer):
            persistent = tensor.persistent
            tensor = Tensor._wrap(tensor.array)
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
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must "
                "be created explicitly; to express '{name}' as a function of another tensor, "
                "compute the value in the forward() method."
            )
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as an attribute ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
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
                raise TypeError(
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
            d["_modules"][name] = value
            return
        modules = d.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
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
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(Tensor or None expected)"
                )
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
            raise ValueError("set_submodule: cannot set the module itself (target is empty)")
        if not isinstance(module, Module):
            raise TypeError(f"set_submodule: {type(module).__name__} is not a Module subclass")
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
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
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
    def _apply_arrays(self, fn: Callable[[Any], Any], floating_only: bool = False) -> Module:
        """Replace every parameter's and buffer's array by ``fn(array)``, in place.

        The Parameter objects stay the same, so optimizers built before the move keep
        pointing at them (PyTorch swaps ``.data`` likewise).
        """
        for mod in self.modules():
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

    # ----------------------------------------------------------------- calling
    def _call_impl(self, *args: Any, **kwargs: Any) -> Any:
        if not (
            self._forward_hooks
            or self._forward_pre_hooks
            or self._backward_hooks
            or self._backward_pre_hooks
        ):
            return self.forward(*args, **kwargs)
        for hid, hook in list(self._forward_pre_hooks.items()):
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
        state = None
        if (self._backward_hooks or self._backward_pre_hooks) and is_grad_enabled():
            state = _BackwardHookState(self)
            args = state.wrap_inputs(args)
        try:
            out = self.forward(*args, **kwargs)
        except BaseException:
            for hid, hook in list(self._forward_hooks.items()):
                if hid in self._forward_hooks_always_called:
                    try:
                        if hid in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, None)
                        else:
                            hook(self, args, None)
                    except Exception:
                        pass
            raise
        for hid, hook in list(self._forward_hooks.items()):
            if hid in self._forward_hooks_with_kwargs:
                res = hook(self, args, kwargs, out)
            else:
                res = hook(self, args, out)
            if res is not None:
                out = res
        if state is not None:
            out = state.wrap_outputs(out)
        return out

    __call__ = _call_impl

    def register_full_backward_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients of the module's
        inputs have been computed; it may return a new ``grad_input`` tuple.

        ``grad_input`` and ``grad_output`` are tuples with one Tensor (or None) per tensor
        input and output. As in PyTorch, the module must not change its inputs or outputs
        in place while such a hook is registered. With several tensor inputs, a returned
        ``grad_input`` replaces only the gradient computed last (darklib's one difference).
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradients of the module's outputs have
        been computed; it may return a new ``grad_output`` tuple."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Deprecated in PyTorch; darklib runs ``hook`` as :meth:`register_full_backward_hook`."""
        warnings.warn(
            "register_backward_hook is deprecated (as in PyTorch); darklib runs the hook as "
            "register_full_backward_hook, which gives the gradients of the module's inputs",
            FutureWarning,
            stacklevel=2,
        )
        return self.register_full_backward_hook(hook)

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

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``.
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
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(
        self, *, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name, as detached tensors.

        The tensors share memory with the module (copy them to snapshot). Keys match
        PyTorch's for the same architecture (``"0.weight"``, ``"bn.running_mean"``...).
        """
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, mod in self._modules.items():
            if mod is not None:
                mod.state_dict(
                    destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars
                )
        return destination

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
        assign: bool = False,
    ) -> None:
        """Copy this module's own entries (not its children's) from ``state_dict``."""
        persistent = {
            k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set
        }
        local = {**self._parameters, **persistent}
        for name, target in local.items():
            key = prefix + name
            if target is None:
                continue
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = state_dict[key]
            arr = value.array if isinstance(value, Tensor) else value
            if not hasattr(arr, "shape"):
                arr = np.asarray(arr)
            if _shape(arr) != _shape(target.array):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {_shape(arr)} from "
                    f"checkpoint, the shape in current model is {_shape(target.array)}."
                )
                continue
            try:
                if assign and name in self._parameters:
                    new = Parameter(Tensor._wrap(arr), requires_grad=target.requires_grad)
                    self._parameters[name] = new
                elif assign:
                    self._buffers[name] = Tensor._wrap(arr)
                else:
                    _copy_into(target, arr)
            except Exception as e:  # e.g. a value that cannot be cast
                error_msgs.append(
                    f'While copying the parameter named "{key}", whose dimensions in the model '
                    f"are {_shape(target.array)} and whose dimensions in the checkpoint are "
                    f"{_shape(arr)}, an exception occurred : {e}."
                )

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Copy parameters and buffers from ``state_dict`` into this module and its children.

        Args:
            state_dict: name -> Tensor (or ndarray) mapping, e.g. from :meth:`state_dict`.
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
            raise TypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}."
            )
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        for prefix, mod in self.named_modules(remove_duplicate=False):
            p = prefix + "." if prefix else ""
            mod._load_from_state_dict(state_dict, p, True, missing, unexpected, errors, assign)
        # a key is unexpected only if no module in the tree claims it
        claimed = set()
        for prefix, mod in self.named_modules(remove_duplicate=False):
            p = prefix + "." if prefix else ""
            # a key naming an absent parameter or buffer (e.g. bias=None) is unexpected
            claimed.update(p + k for k, v in mod._parameters.items() if v is not None)
            claimed.update(
                p + k
                for k, v in mod._buffers.items()
                if v is not None and k not in mod._non_persistent_buffers_set
            )
        # torch's order: module by module, each listing the keys under its prefix that name
        # neither one of its children nor a claimed entry
        for prefix, mod in self.named_modules(remove_duplicate=False):
            p = prefix + "." if prefix else ""
            for k in state_dict:
                if k.startswith(p) and k not in claimed:
                    if k[len(p) :].split(".", 1)[0] not in mod._modules:
                        unexpected.append(k)
        unexpected = list(dict.fromkeys(unexpected))
        missing = list(dict.fromkeys(missing))
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


class _BackwardHookState:
    """One forward call's bookkeeping for the module's backward hooks.

    Tensor inputs and outputs that require grad pass through identity Functions: the outputs'
    backward collects ``grad_output`` (running the pre-hooks), the inputs' backward collects
    ``grad_input`` and, once the last one has arrived, runs the hooks.
    """

    def __init__(self, module: Module):
        self.module = module
        self.inputs: list[Tensor | None] = []
        self.versions: list[int] = []
        self.grad_inputs: list[Any] = []
        self.grad_outputs: list[Any] = []
        self.pending_in = 0
        self.pending_out = 0
        self.fired = False

    def wrap_inputs(self, args: tuple) -> tuple:
        out = []
        for a in args:
            if isinstance(a, Tensor):
                self.grad_inputs.append(None)
                if a.requires_grad:
                    w = _InputHook.apply(a, self, len(self.grad_inputs) - 1)
                    self.inputs.append(w)
                    self.versions.append(w._version)
                    self.pending_in += 1
                    out.append(w)
                    continue
            out.append(a)
        return tuple(out)

    def wrap_outputs(self, out: Any) -> Any:
        for w, v in zip(self.inputs, self.versions):
            if w._version != v:
                raise RuntimeError(
                    f"{self.module._get_name()}: an input was modified in place during forward "
                    "while a backward hook is registered; PyTorch forbids this too (use "
                    "inplace=False, or remove the hook)"
                )
        if isinstance(out, Tensor):
            return self._wrap_output(out)
        if isinstance(out, tuple | list):
            return type(out)(self._wrap_output(o) if isinstance(o, Tensor) else o for o in out)
        return out

    def _wrap_output(self, t: Tensor) -> Tensor:
        self.grad_outputs.append(None)
        if not t.requires_grad:
            return t
        self.pending_out += 1
        return _OutputHook.apply(t, self, len(self.grad_outputs) - 1)

    def output_grad(self, j: int, g: Any) -> Any:
        self.grad_outputs[j] = g
        self.pending_out -= 1
        if self.pending_out > 0:
            return g
        if self.module._backward_pre_hooks:
            grads = tuple(_as_tensor(x) for x in self.grad_outputs)
            for hook in list(self.module._backward_pre_hooks.values()):
                res = hook(self.module, grads)
                if res is not None:
                    grads = _check_hook_grads(res, len(grads), "backward pre-hook")
            self.grad_outputs = [_as_array(x) for x in grads]
            g = self.grad_outputs[j]
        if self.pending_in == 0:  # no input needs a gradient: torch calls with (None, ...)
            self._fire()
        return g

    def input_grad(self, i: int, g: Any) -> Any:
        self.grad_inputs[i] = g
        self.pending_in -= 1
        if self.pending_in == 0:
            res = self._fire()
            if res is not None:
                g = res[i]
        return g

    def _fire(self) -> list | None:
        if self.fired or not self.module._backward_hooks:
            return None
        self.fired = True
        grads_in = tuple(_as_tensor(x) for x in self.grad_inputs)
        grads_out = tuple(_as_tensor(x) for x in self.grad_outputs)
        changed = None
        for hook in list(self.module._backward_hooks.values()):
            res = hook(self.module, grads_in, grads_out)
            if res is not None:
                grads_in = _check_hook_grads(res, len(grads_in), "backward hook")
                changed = [_as_array(x) for x in grads_in]
        return changed


def _as_tensor(a: Any) -> Tensor | None:
    return None if a is None else Tensor._wrap(a)


def _as_array(t: Any) -> Any:
    return t.array if isinstance(t, Tensor) else t


def _check_hook_grads(res: Any, n: int, what: str) -> tuple:
    if not isinstance(res, tuple | list):
        res = (res,)
    if len(res) != n:
        raise RuntimeError(f"{what} returned {len(res)} gradients, expected {n}")
    return tuple(res)


class _InputHook(Function):
    about = "a module's full backward hook"

    @staticmethod
    def forward(ctx: Any, x: Any, state: _BackwardHookState, i: int) -> Any:
        ctx.state, ctx.i = state, i
        return x

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return ctx.state.input_grad(ctx.i, g), None, None


class _OutputHook(Function):
    about = "a module's full backward hook"

    @staticmethod
    def forward(ctx: Any, y: Any, state: _BackwardHookState, j: int) -> Any:
        ctx.state, ctx.j = state, j
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return ctx.state.output_grad(ctx.j, g), None, None


def _copy_into(target: Tensor, arr: Any) -> None:
    """Write ``arr`` into ``target``'s array, casting to its dtype and moving to its device."""
    if not isinstance(arr, np.ndarray) and not is_cuda_array(arr):
        arr = np.asarray(arr)
    target.array[...] = to_device(arr, target.device)
    target._version += 1
