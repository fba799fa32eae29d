"""Reverse-mode automatic differentiation, define-by-run.

Every differentiable op is a :class:`Function` whose ``forward`` and ``backward`` work on
raw arrays (numpy or cupy). ``Function.apply`` unwraps tensors, runs ``forward`` and, when
a gradient is needed, records a :class:`Node` (the op's context, PyTorch's ``ctx``) as the
output's ``grad_fn``. ``backward`` walks the nodes in reverse topological order, undoes
broadcasting in one place (:func:`unbroadcast`) and accumulates into leaves' ``.grad``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from darklib import anomaly_mode as _anomaly
from darklib import backend as _backend
from darklib import grad_mode as grad_mode  # (re-exported, as torch.autograd.grad_mode)
from darklib import saved_hooks as _saved_hooks
from darklib.backend import FP_SILENT, fp_errors, get_xp, is_cuda_array
from darklib.errors import InvalidType, InvalidValue
from darklib.grad_mode import _state as _grad_state

# re-exported, so that dl.autograd.no_grad works as torch.autograd.no_grad does
from darklib.grad_mode import enable_grad as enable_grad
from darklib.grad_mode import inference_mode as inference_mode
from darklib.grad_mode import is_grad_enabled as is_grad_enabled
from darklib.grad_mode import is_inference_mode_enabled as is_inference_mode_enabled
from darklib.grad_mode import no_grad as no_grad
from darklib.grad_mode import set_grad_enabled as set_grad_enabled

_FREED = (
    "Trying to backward through the graph a second time (or to read saved values after they "
    "were freed). Saved intermediate values of the graph are freed when you call .backward() "
    "or autograd.grad(); pass retain_graph=True to backward through it a second time."
)


_NO_BACKWARD = (
    "You must implement either the backward or vjp method for your custom autograd.Function "
    "to use it with backward mode AD."
)


def _both_backward_and_vjp(ctx: Any, *grads: Any) -> Any:
    raise RuntimeError(
        "Implementing both 'backward' and 'vjp' for a custom Function is not allowed. You "
        "should only implement one of them."
    )


def _root(a: Any) -> Any:
    """The array that owns ``a``'s memory (NumPy and CuPy views point straight to it)."""
    base = getattr(a, "base", None)
    return a if base is None else base


class Node:
    """A recorded op: the ``ctx`` its Function sees, and the ``grad_fn`` of its output."""

    __slots__ = (
        "__dict__",
        "_inputs",
        "_out_dtype",
        "_out_hooks",
        "_out_shape",
        "_retained",
        "_saved",
        "_versions",
        "fn",
        "needs_input_grad",
        "parents",
    )

    def __init__(self, fn: type[Function], inputs: tuple, needs: tuple = ()):
        self.fn = fn
        self._inputs = inputs  # the op's arguments, while forward runs and only if recorded
        self.needs_input_grad = needs
        self._saved: tuple | None = ()  # None once freed
        self._versions: Sequence = ()  # (tensor, version) of saved inputs and outputs
        self._retained = None
        self._out_hooks: list | None = None
        self.parents: tuple = ()  # per input: its grad_fn Node, the leaf Tensor, or None
        self._out_shape: tuple = ()  # of the output, to undo broadcasting into it
        self._out_dtype: Any = None  # of the output: its gradient is cast to it, as in torch

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward; in-place changes to them before backward are detected."""
        if not self.fn._arrays:  # a user Function: tensors (or None), as torch
            for a in arrays:
                if a is not None and not isinstance(a, Tensor):
                    raise InvalidType(
                        f"save_for_backward can only save tensors (or None), got "
                        f"{type(a).__name__}; keep other values as attributes of ctx"
                    )
        self._saved = arrays
        if self._inputs:  # only while recording a node (plain loops: this is a hot path)
            found = []
            for t in self._inputs:
                if isinstance(t, Tensor):
                    ta = t.array
                    root = _root(ta)
                    for a in arrays:
                        # the input's array, or a view of its memory (a[None, :], a.T)
                        if a is ta or a is t or getattr(a, "base", None) is root:
                            v = t._view
                            found.append((t, t._ver if v is None else v[0]._ver))
                            break
            self._versions = found

    def mark_non_differentiable(self, *outputs: Tensor) -> None:
        """(User Functions) these outputs get no gradient and do not require grad."""
        self._non_differentiable = outputs

    def mark_dirty(self, *tensors: Tensor) -> None:
        """(User Functions) these inputs were changed in place by forward and are returned:
        they stay the same tensor objects and take this Function as their grad_fn."""
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """(User Functions) whether backward gets zeros (default) or None for outputs that
        received no gradient."""
        self._materialize_grads = bool(value)

    def lift(self, arr: Any, i: int) -> Tensor:
        """(create_graph, see :mod:`darklib.higher_order`) ``arr``, which holds the value of
        this op's input ``i``, as a tensor on that input's graph: gradients that flow into
        it reach the input. ``arr`` must have the input's shape."""
        p = self.parents[i]
        if isinstance(p, Tensor) and arr is p.array:  # a leaf, as saved: the tensor itself
            return p
        if not hasattr(arr, "shape"):  # a Python number operand
            return arr
        t = Tensor._wrap(arr)
        if isinstance(p, Tensor):
            # a value derived from a leaf, or a leaf changed in place since: the saved value,
            # passing its gradient on to the leaf
            from darklib.higher_order import _Alias

            p = _Alias._node(_Alias, (), (True,))
            p.parents, p._out_shape, p._out_dtype = (self.parents[i],), arr.shape, arr.dtype
        if p is not None:
            t._requires_grad, t.grad_fn = True, p
        return t

    def lift_output(self, arr: Any) -> Tensor:
        """(create_graph) ``arr``, this op's output saved by forward, as a tensor whose
        gradient flows back through this op."""
        t = Tensor._wrap(arr)
        t._requires_grad, t.grad_fn = True, self
        return t

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is None:
            raise RuntimeError(_FREED)
        self._check_versions()
        if type(saved) is _saved_hooks.Packed:  # kept by a pack hook: its unpack hook's
            return saved.unpack(self.name())
        return saved

    def _check_versions(self) -> None:
        """Raise if a tensor whose array this node kept was changed in place since."""
        for t, v in self._versions:
            if t._version != v:
                raise RuntimeError(
                    "one of the arrays needed for gradient computation has been modified by an "
                    f"in-place operation: a tensor of shape {tuple(t.shape)} is at version "
                    f"{t._version}; expected version {v} (needed by {self.name()}). Clone it "
                    "before changing it in place, or change it after backward."
                )

    def name(self) -> str:
        """torch's name for the node: ``MulBackward0`` for darklib's ops (each Function has
        its own node type, so ``type(grad_fn).__name__`` says it too), ``<Cls>Backward``
        for user Functions."""
        return type(self).__name__

    @property
    def next_functions(self) -> tuple:
        """``(node, output index)`` per input, as torch: the input's ``grad_fn``, an
        :class:`AccumulateGrad` for a leaf that requires grad, or None."""
        if self.fn is _OutputOf:  # one output of a multi-output Function: its owner's
            return self.parents[0].next_functions
        out = []
        for p in self.parents:
            if p is None or not isinstance(p, Node):
                out.append((None if p is None else AccumulateGrad(p), 0))
            elif p.fn is _OutputOf:
                out.append((p.parents[0], p.slot))
            else:
                out.append((p, 0))
        return tuple(out)

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes a forward stored on ctx and free() has dropped.
        if name.startswith("__") or "_freed" not in object.__getattribute__(self, "__dict__"):
            raise AttributeError(name)
        raise RuntimeError(_FREED)

    def free(self) -> None:
        """Drop the arrays kept for backward (saved ones, and array attributes of darklib's
        ops' ctx), as torch frees saved tensors: a node that kept none (shapes and numbers
        only) can run backward again, as in torch. User Functions keep their ctx
        attributes, as torch's do."""
        if self._saved:
            self._saved = None
        self._versions = ()
        d = self.__dict__
        if d and self.fn._arrays:  # (a user Function's ctx attributes stay, as torch's)
            arrays = [k for k, v in d.items() if _holds_array(v)]
            for k in arrays:
                del d[k]
            if arrays:
                d["_freed"] = True


class AccumulateGrad:
    """What ``next_functions`` shows for a leaf: the step that accumulates its ``.grad``
    (``variable`` is the leaf), as torch's AccumulateGrad."""

    __slots__ = ("variable",)
    next_functions = ()

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


def _holds_array(v: Any) -> bool:
    """Whether a ctx attribute is, or holds (in a tuple, list or dict), an array or tensor."""
    if type(v) in (tuple, list):
        return any(_holds_array(e) for e in v)
    if type(v) is dict:
        return any(_holds_array(e) for e in v.values())
    return isinstance(v, np.ndarray | Tensor) or is_cuda_array(v)


class Function:
    """Base of every differentiable op, and of the custom Functions users write.

    darklib's own ops (classes defined inside the ``darklib`` package) define
    ``forward(ctx, *args, **kwargs) -> array`` and ``backward(ctx, grad) -> array | tuple``
    (one gradient or None per positional argument of forward) as static methods over raw
    arrays, and are called through ``apply``.

    A Function defined anywhere else gets torch's interface (see :func:`_apply_tensors`):
    forward runs under no_grad on tensors and returns a tensor or a tuple of them,
    ``ctx.save_for_backward`` takes tensors, backward receives one gradient tensor per
    output and returns one tensor or None per input; ``ctx.mark_non_differentiable``,
    ``ctx.set_materialize_grads`` and the ``setup_context`` form work as in torch.

    Ops whose output is a view of their first input (slicing, reshape, permute) also define
    ``view(array, *params)``, the view itself, which lets in-place changes of the output reach
    the input (see ``Tensor._inplace``); ``may_copy`` marks those that sometimes copy.
    """

    view: Callable | None = None
    may_copy = False
    setup_context: Callable | None = None  # user Functions: torch's optional second form
    _arrays = True  # forward/backward over raw arrays (darklib's own ops)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_arrays" not in cls.__dict__:  # darklib's ops, and subclasses of them, use arrays
            inherited = any(
                b is not Function and b._arrays for b in cls.__bases__ if issubclass(b, Function)
            )
            cls._arrays = cls.__module__.split(".")[0] == "darklib" or inherited
        # the type of this Function's nodes, named as torch names them
        cls._node = type(
            f"{cls.__name__}Backward{'0' if cls._arrays else ''}", (Node,), {"__slots__": ()}
        )
        if not cls._arrays and "vjp" in cls.__dict__:  # torch's other name for backward
            cls.backward = (
                staticmethod(_both_backward_and_vjp)
                if "backward" in cls.__dict__
                else cls.__dict__["vjp"]
            )
        if not cls._arrays and "backward" in cls.__dict__:
            own = cls.__dict__["backward"]
            cls._user_backward = staticmethod(
                own.__func__ if isinstance(own, staticmethod) else own
            )
            cls.backward = staticmethod(_tensor_backward(own))

    @staticmethod
    def forward(ctx: Node, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Node, grad: Any) -> Any:
        raise NotImplementedError(_NO_BACKWARD)

    _user_backward = backward  # (create_graph's path, see higher_order._user_grads)

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        if not cls._arrays:
            return _apply_tensors(cls, args, kwargs)
        grad_on = _grad_state.enabled
        arrays = []
        needs = []
        parents = []  # per argument: its grad_fn, or the leaf itself, where it needs a grad
        any_needs = False
        kind = None
        for a in args:  # plain loops and few calls: this runs for every op
            if isinstance(a, Tensor):
                v = a._view
                if v is not None and v[2] != v[0]._ver:
                    a._sync_view()  # its base changed in place since the view was made
                arr = a.array
                if kind is None:
                    kind = type(arr)
                elif type(arr) is not kind:
                    _raise_device_mismatch(cls, args)
                arrays.append(arr)
                if grad_on and a._requires_grad:
                    needs.append(True)
                    parents.append(a.grad_fn or a)
                    any_needs = True
                    continue
            else:
                arrays.append(a)
            needs.append(False)
            parents.append(None)
        ctx = cls._node(cls, args if any_needs else (), tuple(needs))
        quiet = fp_errors.set(FP_SILENT)  # inf and NaN are values, not warnings, as in torch
        try:
            if kind is None or kind is np.ndarray or _backend.one_gpu:
                out = cls.forward(ctx, *arrays, **kwargs)
            else:  # on the GPU that holds the inputs, whichever one is current
                with _gpu_of(cls, args, arrays):
                    out = cls.forward(ctx, *arrays, **kwargs)
        except ValueError as e:
            if "broadcast" not in str(e):
                raise
            raise RuntimeError(broadcast_message(cls.__name__.lower(), arrays)) from None
        finally:
            fp_errors.reset(quiet)
        result = Tensor._wrap(out)
        if cls.view is not None and (not cls.may_copy or _shares_memory(out, arrays[0])):
            result._as_view_of(args[0], (cls, args[1:]))
            if not grad_on and args[0]._requires_grad:
                # a view of a tensor that requires grad, taken under no_grad: as torch, a
                # leaf that requires grad (its gradients do not reach the base)
                result._requires_grad = True
        if any_needs and result.array.dtype.kind in "fc":  # integer results: no gradient
            result._requires_grad = True
            result.grad_fn = ctx
            if _anomaly.state.enabled:  # where this op ran, for backward's anomaly report
                ctx._anomaly_trace = _anomaly.forward_trace()
            ctx._out_shape = result.array.shape
            ctx._out_dtype = result.array.dtype
            # linked to the inputs' nodes as they are now: an in-place op that later gives
            # an input a new grad_fn must not reroute this op's gradient through it
            ctx.parents = tuple(parents)
            ctx._inputs = ()
            saved = ctx._saved
            if saved:
                root = _root(out)
                for a in saved:
                    if a is out or a is root:  # (or the array the output is a view of)
                        ctx._versions = [*ctx._versions, (result, 0)]
                        break
                if _saved_hooks.active:
                    _pack_saved(ctx, (*args, result))
        return result


def _pack_saved(ctx: Node, tensors: tuple) -> None:
    """Hand what ``ctx`` saved to this thread's saved-tensor pack hook, if it has one
    (:mod:`darklib.saved_hooks`); ``tensors``: the op's arguments and output, which stand
    for their arrays."""
    hooks = _saved_hooks.current()
    if hooks is not None:
        found = tuple(t for t in tensors if isinstance(t, Tensor))
        ctx._saved = _saved_hooks.pack(ctx._saved, hooks, found)


def watch(out: Any, *tensors: Any) -> Any:
    """``out``, whose op read ``tensors`` (index tensors, masks) without differentiating
    them and kept their arrays for backward: changing one of them in place before backward
    then raises there, as a saved input's change does (the gradient would otherwise follow
    the new indices). Non-tensors among ``tensors`` are skipped; so is an ``out`` without
    a graph."""
    node = getattr(out, "grad_fn", None)
    if node is not None:
        if node.fn is _OutputOf:  # one output of several: the node that saved the arrays
            node = node.parents[0]
        extra = [(t, t._version) for t in tensors if isinstance(t, Tensor)]
        if extra:
            node._versions = [*node._versions, *extra]
    return out


# ------------------------------------------------------------------ user Functions


def _bind(cls: type[Function], args: tuple, kwargs: dict) -> tuple:
    """The arguments of ``apply`` as forward's positional inputs, in its signature's order
    with defaults filled in (as torch binds them): keyword arguments get gradients too."""
    fwd = cls.forward
    sig = inspect.signature(fwd)
    ctx_style = cls.setup_context is None
    try:
        bound = sig.bind(*((None,) if ctx_style else ()), *args, **kwargs)
    except TypeError as e:
        raise InvalidType(f"{cls.__name__}.apply: {e}") from None
    bound.apply_defaults()
    out: list = []
    for name, param in sig.parameters.items():
        value = bound.arguments.get(name)
        if param.kind is param.VAR_POSITIONAL:
            out.extend(value or ())
        elif param.kind is param.VAR_KEYWORD:
            if value:
                raise InvalidType(
                    f"{cls.__name__}.apply: forward's **{name} cannot take tensors to "
                    "differentiate; give them names in forward's signature"
                )
        else:
            out.append(value)
    return tuple(out[1:] if ctx_style else out)


def _apply_tensors(cls: type[Function], args: tuple, kwargs: dict) -> Any:
    """``apply`` of a Function written outside darklib, with torch's interface."""
    if kwargs or cls.setup_context is not None:
        args = _bind(cls, args, kwargs)
    _sync([a for a in args if isinstance(a, Tensor)])
    # ctx.needs_input_grad says which inputs require grad, even under no_grad (as torch);
    # a graph is recorded only where grad mode is on
    needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
    ctx = cls._node(cls, args, needs)
    ctx._tensor_inputs = tuple(isinstance(a, Tensor) for a in args)
    record = _grad_state.enabled and any(needs)
    quiet = fp_errors.set(FP_SILENT)
    try:
        with no_grad():
            if cls.setup_context is not None:  # torch's forward(*args) + setup_context form
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args)
    finally:
        fp_errors.reset(quiet)
    ctx._inputs = ()
    first = next((a.array for a in args if isinstance(a, Tensor)), np.empty(0))
    ctx._xp = get_xp(first)
    ctx._device = first.device if is_cuda_array(first) else None  # backward runs there
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    # each output is a new tensor, the graph attaches to it and never to an input; when a
    # graph is recorded, one that shares an input's memory (an input returned as is, a view
    # of it) is copied, so that in-place changes on either side cannot corrupt what the
    # other's gradient reads (torch refuses those changes instead)
    dirty = getattr(ctx, "_dirty", ())
    for t in dirty:  # an in-place Function on a leaf that requires grad: as torch, refused
        if record and t.grad_fn is None and t._requires_grad:
            raise RuntimeError(
                f"{cls.__name__}: a leaf tensor that requires grad was changed in place "
                "(ctx.mark_dirty); clone it first"
            )
    inputs = [a.array for a in args if isinstance(a, Tensor)] if record else []
    results = [
        o  # marked dirty: the input itself, which takes this node
        if any(o is t for t in dirty) or not isinstance(o, Tensor)
        else Tensor._wrap(o.array.copy() if _aliases(o.array, inputs) else o.array)
        for o in outs
    ]
    if record:
        if _anomaly.state.enabled:
            ctx._anomaly_trace = _anomaly.forward_trace()
        non_diff = getattr(ctx, "_non_differentiable", ())
        diff = [
            i
            for i, (o, r) in enumerate(zip(outs, results))
            if isinstance(r, Tensor)
            and r.array.dtype.kind in "fc"
            and not any(o is t for t in non_diff)
        ]
        ctx.parents = tuple(a.grad_fn or a if n else None for a, n in zip(args, needs))
        ctx._outputs_meta = [
            (r.array.shape, r.array.dtype) if isinstance(r, Tensor) else None for r in results
        ]
        for i in diff:
            r = results[i]
            r._requires_grad = True
            if single:
                r.grad_fn = ctx
            else:  # one proxy node per output hands its gradient to the shared node
                r.grad_fn = cls._node(_OutputOf, (), (True,))
                r.grad_fn.parents, r.grad_fn.slot = (ctx,), i
            r.grad_fn._out_shape, r.grad_fn._out_dtype = r.array.shape, r.array.dtype
        if ctx._saved:  # outputs saved by forward: the results stand for them
            ctx._saved = tuple(_result_for(a, outs, results) for a in ctx._saved)
            ctx._versions = [
                *ctx._versions,
                *((r, r._version) for r in results if any(r is a for a in ctx._saved)),
            ]
            if _saved_hooks.active:
                _pack_saved(ctx, ())
    return results[0] if single else tuple(results)


def _aliases(arr: Any, inputs: list) -> bool:
    return any(arr is a or get_xp(arr).may_share_memory(arr, a) for a in inputs)


def _result_for(a: Any, outs: tuple, results: list) -> Any:
    for o, r in zip(outs, results):
        if a is o:
            return r
    return a


class _OutputOf(Function):
    """The node of one output of a multi-output user Function: the engine adds its gradient
    into that Function's slot for this output (see ``_run_backward``)."""


def _tensor_backward(fn: Any) -> Any:
    """A user Function's backward adapted to the engine: gradients in as tensors (zeros
    for outputs without one, unless ``ctx.set_materialize_grads(False)``), gradients out
    as arrays."""
    fn = fn.__func__ if isinstance(fn, staticmethod) else fn

    def backward(ctx: Node, g: Any) -> Any:
        meta = ctx._outputs_meta
        slots = g if type(g) is list else [g]
        materialize = getattr(ctx, "_materialize_grads", True)
        with contextlib.nullcontext() if ctx._device is None else ctx._device:
            grads = []
            for gi, m in zip(slots, meta):
                if gi is None and materialize and m is not None:
                    gi = ctx._xp.zeros(m[0], m[1])
                grads.append(None if gi is None else Tensor._wrap(gi))
            res = fn(ctx, *grads)
        res = check_user_grads(ctx, res)
        return tuple(None if r is None else r.array for r in res)

    return backward


def check_user_grads(ctx: Node, res: Any) -> tuple:
    """A user Function's backward result as a tuple, checked as torch checks it: a tensor
    or None per input of forward, None for inputs that were not tensors."""
    res = res if isinstance(res, tuple) else (res,)
    tensors = ctx._tensor_inputs
    for i, r in enumerate(res):
        if r is None:
            continue
        if not isinstance(r, Tensor):
            raise InvalidType(
                f"function {ctx.name()} returned a {type(r).__name__} as gradient {i}; "
                "return a tensor or None for each input of forward"
            )
        if i < len(tensors) and not tensors[i]:
            raise RuntimeError(
                f"function {ctx.name()} returned a gradient different from None at position "
                f"{i + 1}, but the corresponding input of forward is not a tensor"
            )
    return res


def _shares_memory(out: Any, x: Any) -> bool:
    """Whether ``out`` is a view of ``x``'s memory (a reshape that did not copy)."""
    if type(out) is np.ndarray:  # NumPy points every view at the array owning the memory
        base = out.base
        return base is not None and (base is x or base is x.base)
    return bool(get_xp(out).may_share_memory(out, x))


def broadcast_message(name: str, arrays: Sequence) -> str:
    """PyTorch's message for operands of op ``name`` whose shapes do not broadcast."""
    shapes = [a.shape for a in arrays if hasattr(a, "shape") and hasattr(a, "dtype")]
    msg = f"{name}: shapes {', '.join(str(tuple(x)) for x in shapes)} do not broadcast"
    for i, a in enumerate(shapes):
        for b in shapes[i + 1 :]:
            for d in range(1, min(len(a), len(b)) + 1):
                if a[-d] != b[-d] and 1 not in (a[-d], b[-d]):
                    return (
                        f"{msg}: the size of tensor a ({a[-d]}) must match the size of tensor b "
                        f"({b[-d]}) at non-singleton dimension {max(len(a), len(b)) - d}"
                    )
    return msg


def broadcast_error(name: str, e: ValueError, *arrays: Any) -> Exception:
    """What ops outside ``Function`` (comparisons, logical and bitwise ops) raise for NumPy's
    ``ValueError`` ``e``: :func:`broadcast_message`'s error for operands that do not
    broadcast, else ``e`` itself. (A plain try/except at the call: a context manager
    there cost a comparison 1 us more.)"""
    if "broadcast" not in str(e):
        return e
    return RuntimeError(broadcast_message(name, arrays))


def _gpu_of(fn: type[Function], args: Sequence, arrays: list) -> Any:
    """The CuPy device (a context manager) of an op's GPU inputs, which must all be on one
    GPU: CuPy runs kernels and allocates on the *current* device."""
    gpu = [a for a in arrays if is_cuda_array(a)]
    if len({a.device.id for a in gpu}) > 1:
        _raise_device_mismatch(fn, args)
    return gpu[0].device


def _raise_device_mismatch(fn: type[Function], args: Sequence) -> None:
    devs = sorted({str(a.device) for a in args if isinstance(a, Tensor)})
    raise RuntimeError(
        f"{fn.__name__.lower()}: expected all tensors on the same device, got "
        + " and ".join(devs)
        + "; move them with .to(device) first"
    )


def unbroadcast(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` down to ``shape``: the one place that undoes NumPy broadcasting.

    Raises ValueError unless ``shape`` broadcasts to ``grad``'s shape (torch's rule for a
    backward's gradients): any other gradient is a bug in a backward, never reshaped into
    place."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra >= 0:
        axes = tuple(range(extra)) + tuple(
            i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1
        )
        summed = grad.sum(axis=axes, keepdims=True) if axes else grad
        if summed.shape[extra:] == shape:
            return summed.reshape(shape)
    raise InvalidValue(f"got {list(grad.shape)} but expected shape compatible with {list(shape)}")


def _array_fit(node: Node, parent: Any, g: Any, shape: tuple, dtype: Any) -> Any:
    """Gradient array ``g`` for ``parent`` of ``node``, summed to its shape and cast."""
    if g.shape != shape:
        g = _fit(node, parent, g, shape)
    return g if g.dtype == dtype else g.astype(dtype)


# darklib.profiler while a profile records (it times each backward node), else None
_profiler: Any = None


def _run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Any],
    retain_graph: bool,
    capture: dict[int, int] | None = None,
    create_graph: bool = False,
) -> list | None:
    """Propagate ``root_grads`` from ``roots`` back through the graph.

    Without ``capture`` gradients accumulate into leaves' ``.grad``; with it (a map from
    ``id(tensor)`` to a slot) they are returned for exactly those tensors instead. With
    ``create_graph`` the gradients are tensors computed by recorded, differentiable ops
    (:mod:`darklib.higher_order`; the caller enables grad mode), else raw arrays.
    """
    if create_graph:
        from darklib import higher_order as mode

        node_grads, fit, call_hook = mode.node_grads, mode.fit, mode.call_hook
        deliver = functools.partial(_deliver, graph=True)
    else:  # raw arrays: each node's backward is called inline below (the hot path)
        node_grads, fit, deliver, call_hook = None, _array_fit, _deliver, _call_hook
    captured: list | None = [None] * len(capture) if capture is not None else None
    grads: dict[Node, Any] = {}
    anomaly = _anomaly.state.enabled
    order = _topological_order([t.grad_fn for t in roots if t.grad_fn is not None])
    # leaves with hooks (gradient or post-accumulate): see _HookedLeaves; built on the first
    # one's gradient, so that a backward without leaf hooks never pays for it
    waiting: _HookedLeaves | None = None
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            if t._hooks is None:
                deliver(t, g, capture, captured)
            else:
                if waiting is None:
                    waiting = _HookedLeaves(order, 0, roots, capture, captured, deliver)
                waiting.arrive(t, g)
        else:
            prev = grads.get(t.grad_fn)
            grads[t.grad_fn] = g if prev is None else prev + g

    # with capture, only the nodes on a path to a captured tensor run (as in torch: no
    # other backward, hook or freeing happens)
    run, targets = (None, None) if capture is None else _leading_to(order, capture)
    for node in order:
        g = grads.pop(node, None)
        if g is None or (run is not None and node not in run and node not in targets):
            if waiting is not None:  # (its edges into hooked leaves are done)
                waiting.node_done(node)
            continue
        if node._out_hooks:
            for hook in tuple(node._out_hooks):  # (a hook may remove another: all run)
                g = call_hook(hook, g)
        if node._retained is not None:
            out = node._retained() if capture is None else _captured_at(node)
            if out is not None:
                deliver(out, g, capture, captured, from_node=True)
            if run is not None and node not in run:
                if waiting is not None:
                    waiting.node_done(node)
                continue
        if node.fn is _OutputOf:  # one output of a multi-output Function: fill its slot
            (owner,) = node.parents
            slots = grads.get(owner)
            if slots is None:
                slots = grads[owner] = [None] * len(owner._outputs_meta)
            prev = slots[node.slot]
            slots[node.slot] = g if prev is None else prev + g
            continue
        timed = None if _profiler is None else _profiler._begin(node.name(), [])
        try:
            if node._versions:  # (also for arrays kept as attributes, e.g. index arrays)
                node._check_versions()
            if node_grads is not None:
                in_grads = node_grads(node, g)
            elif type(g) is np.ndarray or _backend.one_gpu or not is_cuda_array(g):
                in_grads = node.fn.backward(node, g)
            else:
                with g.device:  # the GPU of this node's output (see _gpu_of)
                    in_grads = node.fn.backward(node, g)
        except Exception:
            if anomaly:  # torch's report: where the failing op ran in forward
                _anomaly.warn_trace(node)
            raise
        finally:
            if timed is not None:
                _profiler._end(timed)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if anomaly and _anomaly.state.check_nan:
            _anomaly.check_grads(node, in_grads)
        n = len(node.parents)
        if len(in_grads) != n and (len(in_grads) < n or any(x is not None for x in in_grads[n:])):
            raise RuntimeError(
                f"function {node.name()} returned an incorrect number of gradients (expected "
                f"{n}, one per input of forward, got {len(in_grads)})"
            )
        for p, ig in zip(node.parents, in_grads):
            if p is None:
                continue
            if ig is None:
                if waiting is not None or (not isinstance(p, Node) and p._hooks is not None):
                    if waiting is None:
                        waiting = _HookedLeaves(
                            order, order.index(node), (), capture, captured, deliver
                        )
                    waiting.edge_done(p)
                continue
            if isinstance(p, Node):
                if ig.shape != p._out_shape or ig.dtype != p._out_dtype:
                    ig = fit(node, p, ig, p._out_shape, p._out_dtype)
                prev = grads.get(p)
                grads[p] = ig if prev is None else prev + ig
            else:
                arr = p.array
                if ig.shape != arr.shape or ig.dtype != arr.dtype:
                    ig = fit(node, p, ig, arr.shape, arr.dtype)
                if p._hooks is None:
                    deliver(p, ig, capture, captured)
                else:
                    if waiting is None:
                        waiting = _HookedLeaves(
                            order, order.index(node), (), capture, captured, deliver
                        )
                    waiting.arrive(p, ig)
        if not retain_graph:
            node.free()
    if waiting is not None:
        waiting.finish()
    return captured


class _HookedLeaves:
    """The leaves with hooks (gradient or post-accumulate) in one backward: each gets its
    gradient once, summed over all its uses, as soon as the last node that feeds it has
    run, as in torch (an optimizer step in a post-accumulate hook on the last layer's bias
    runs while the earlier layers' ``.grad`` are still None).

    Built when the first hooked leaf's gradient (or a None gradient for it) arrives while
    node ``order[start]`` runs: it counts the edges into hooked leaves from that node on
    (and from the root leaves, when built before the loop), and hands each leaf's sum on
    when its count reaches zero. Under :func:`grad` the leaves that were not asked for are
    left alone, hooks included (torch does not call them)."""

    __slots__ = ("capture", "captured", "deliver", "pending")

    def __init__(
        self,
        order: list,
        start: int,
        roots: Sequence,
        capture: dict | None,
        captured: list | None,
        deliver: Callable,
    ) -> None:
        self.capture, self.captured, self.deliver = capture, captured, deliver
        pending: dict[int, list] = {}  # id(leaf) -> [leaf, edges still to come, summed grad]

        def count(p: Any) -> None:
            if (
                p is not None
                and not isinstance(p, Node)
                and p._hooks is not None
                and (capture is None or id(p) in capture)
            ):
                entry = pending.get(id(p))
                if entry is None:
                    pending[id(p)] = [p, 1, None]
                else:
                    entry[1] += 1

        for t in roots:
            if t.grad_fn is None:
                count(t)
        for i in range(start, len(order)):
            node = order[i]
            if node.fn is not _OutputOf:
                for p in node.parents:
                    count(p)
        self.pending = pending

    def arrive(self, leaf: Tensor, g: Any) -> None:
        entry = self.pending.get(id(leaf))
        if entry is None:  # not asked for (grad), or hooked during this backward
            if self.capture is None or id(leaf) in self.capture:
                self.deliver(leaf, g, self.capture, self.captured)
            return
        entry[2] = g if entry[2] is None else entry[2] + g
        self._done(entry)

    def edge_done(self, leaf: Any) -> None:
        """An edge into ``leaf`` that brought no gradient."""
        if not isinstance(leaf, Node):
            entry = self.pending.get(id(leaf))
            if entry is not None:
                self._done(entry)

    def node_done(self, node: Node) -> None:
        """``node`` was skipped: none of its edges will bring a gradient."""
        if node.fn is not _OutputOf:
            for p in node.parents:
                if p is not None:
                    self.edge_done(p)

    def _done(self, entry: list) -> None:
        entry[1] -= 1
        if entry[1] == 0:
            del self.pending[id(entry[0])]
            if entry[2] is not None:
                self.deliver(entry[0], entry[2], self.capture, self.captured)

    def finish(self) -> None:
        """(Safety) hand on what is left once every node has run."""
        for leaf, _, g in list(self.pending.values()):
            if g is not None:
                self.deliver(leaf, g, self.capture, self.captured)
        self.pending.clear()


def _fit(node: Node, parent: Any, g: Any, shape: tuple) -> Any:
    """A gradient of another shape than its input's, summed down to it (broadcasting), or
    an error naming the Function that returned it."""
    try:
        return unbroadcast(g, shape)
    except ValueError as e:
        i = node.parents.index(parent)
        raise RuntimeError(
            f"function {node.name()} returned an invalid gradient at index {i} - {e}"
        ) from None


def _captured_at(node: Node) -> Tensor | None:
    """The tensor whose gradient :func:`grad` reads at ``node``: the one it retains, if
    ``node`` is still that tensor's own (an in-place op may have given it a newer one)."""
    t = node._retained() if node._retained is not None else None
    return t if t is not None and t.grad_fn is node else None


def _leading_to(order: list[Node], capture: dict[int, int]) -> tuple[set[Node], set[Node]]:
    """For :func:`grad`: the nodes of ``order`` (a topological order) whose backward must
    run to reach a captured leaf or a captured non-leaf's node, and those captured nodes."""
    targets = {n for n in order if id(_captured_at(n)) in capture}
    run: set[Node] = set()
    for node in reversed(order):  # inputs first: every parent is decided before its child
        for p in node.parents:
            if p is None:
                continue
            if isinstance(p, Node):
                if p in run or p in targets:
                    run.add(node)
                    break
            elif id(p) in capture:
                run.add(node)
                break
    return run, targets


def _topological_order(starts: list[Node]) -> list[Node]:
    """Nodes from the outputs back to the inputs, each after every node that feeds it."""
    post: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(n, False) for n in starts]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            post.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node.parents:
            if isinstance(p, Node) and id(p) not in seen:
                stack.append((p, False))
    post.reverse()
    return post


def _call_hook(hook: Callable, g: Any) -> Any:
    res = hook(Tensor._wrap(g))
    if res is None:
        return g
    out = res.array if isinstance(res, Tensor) else res
    if getattr(out, "shape", None) != g.shape or getattr(out, "dtype", None) != g.dtype:
        what = "size" if getattr(out, "shape", None) != g.shape else "type"
        raise RuntimeError(
            f"hook {getattr(hook, '__name__', hook)!r} has changed the {what} of value: it "
            f"got a gradient of shape {list(g.shape)} ({g.dtype}) and returned "
            f"{type(res).__name__} {list(getattr(out, 'shape', ()))} "
            f"({getattr(out, 'dtype', '?')}); return a tensor like its argument, or None"
        )
    return out


def _deliver(
    t: Tensor,
    g: Any,
    capture: dict | None,
    captured: list | None,
    from_node: bool = False,
    graph: bool = False,
) -> None:
    """Hand a finished gradient to tensor ``t``: into ``.grad``, or into ``captured``.
    ``graph``: ``g`` is a tensor with a graph (create_graph), kept in ``.grad``, which then
    accumulates out of place as in torch."""
    slot = None
    if capture is not None:
        slot = capture.get(id(t))
        if slot is None and not from_node:  # a leaf not asked for: untouched, hooks unrun
            return
    if not from_node and t._hooks:
        call = _call_hook
        if graph:
            from darklib.higher_order import call_hook as call
        for hook in tuple(t._hooks):  # (a hook may remove another: all run this time)
            g = call(hook, g)
    if slot is not None:
        captured[slot] = g if captured[slot] is None else captured[slot] + g
        return
    # (a retain_grad() tensor on the path autograd.grad ran: torch fills its .grad too)
    if not from_node and not t._requires_grad:
        # a leaf whose requires_grad was switched off (requires_grad_(False), detach_())
        # after the forward: as torch, its hooks run but its .grad is left alone
        _post_accumulate(t)
        return
    if graph:
        t._grad = g if t._grad is None else t._grad + g
    elif t._grad is None:
        # a fresh array of the leaf's dtype: never aliases a gradient flowing elsewhere, and
        # is a 0-d array (not a numpy scalar) for 0-d leaves; (not the checking setter: a
        # retained tensor reshaped in place by t_()/squeeze_() gets its old shape's grad,
        # as in torch)
        t._grad = Tensor._wrap(get_xp(t.array).array(g, dtype=t.array.dtype, copy=True))
    elif from_node:  # a retained non-leaf's .grad: a new tensor, as torch (not in place)
        t._grad = Tensor._wrap((t._grad.array + g).astype(t.array.dtype, copy=False))
    else:
        t._grad.array += g
    _post_accumulate(t)


def _post_accumulate(t: Tensor) -> None:
    """Run a leaf's post-accumulate-grad hooks, now that its ``.grad`` is updated."""
    post = getattr(t._hooks, "post", None)
    if post:
        for hook in list(post):
            hook(t)


def _tensor_list(x: Any, op: str, name: str) -> list:
    """A tensor or a sequence of tensors as a list, refusing anything else."""
    if isinstance(x, Tensor):
        return [x]
    if not isinstance(x, Iterable) or isinstance(x, str):
        raise InvalidType(
            f"{op}: {name} must be a Tensor or a sequence of Tensors, got {type(x).__name__}"
        )
    out = list(x)
    for i, t in enumerate(out):
        if not isinstance(t, Tensor):
            raise InvalidType(
                f"{op}: all {name} have to be Tensors, but got {type(t).__name__} at position {i}"
            )
    return out


def graph_leaves(outs: Sequence[Tensor], own: set) -> list[Tensor]:
    """The leaves that require grad in the graphs of ``outs``, other than the stand-ins
    ``own``, in the order first met."""
    found: dict[int, Tensor] = {}
    seen: set[int] = set()
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for p in node.parents:
            if isinstance(p, Node):
                stack.append(p)
            elif p is not None and id(p) not in own and p.requires_grad:
                found.setdefault(id(p), p)
        if node.fn is _OutputOf:
            stack.append(node.parents[0])
    return list(found.values())


def _grad_list(given: Any, n: int) -> list:
    """The gradients given for ``n`` outputs (None, one tensor, or a sequence) as a list,
    each a Tensor or None, as torch checks them: a Python number or a NumPy array raises
    TypeError (torch reads a sequence's entries, so an array's elements are named)."""
    if given is None:
        return [None] * n
    if isinstance(given, Tensor):
        return [given]
    out = list(given)  # (a number: TypeError, "'float' object is not iterable", as torch)
    for g in out:
        if g is not None and not isinstance(g, Tensor):
            raise InvalidType(
                f"gradients can be either Tensors or None, but got {type(g).__name__}"
            )
    return out


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    grad_variables: Any = None,
    inputs: Any = None,
) -> None:
    """Accumulate into the leaves' ``.grad`` the gradients of ``tensors`` (one tensor or
    several, whose gradients add up), as ``torch.autograd.backward`` (same positional
    order; ``grad_variables`` is the deprecated name of ``grad_tensors``);
    ``Tensor.backward`` runs it with one tensor."""
    if grad_variables is not None:
        import warnings

        warnings.warn(
            "`grad_variables` is deprecated. Use `grad_tensors` instead.",
            FutureWarning,
            stacklevel=2,
        )
        if grad_tensors is not None:
            raise RuntimeError(
                "`grad_tensors` and `grad_variables` (deprecated) arguments both passed to "
                "`backward()`. Please only use `grad_tensors`."
            )
        grad_tensors = grad_variables
    retain_graph = create_graph if retain_graph is None else bool(retain_graph)
    outs = _tensor_list(tensors, "backward", "tensors")
    grad_tensors = _grad_list(grad_tensors, len(outs))
    if len(grad_tensors) != len(outs):
        raise RuntimeError(f"backward: got {len(grad_tensors)} gradients for {len(outs)} tensors")
    _sync(outs)
    roots = [_root_grad(t, g, "backward") for t, g in zip(outs, grad_tensors)]
    if inputs is not None:
        inputs = _tensor_list(inputs, "backward", "inputs")
        if not inputs:
            raise RuntimeError("backward: inputs=[] holds no tensor; pass None for all leaves")
        grads = grad(
            outs,
            inputs,
            grad_tensors,
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
        )
        for t, gi in zip(inputs, grads):
            if gi is None:
                continue
            if create_graph:  # out of place, keeping the gradient's graph
                _deliver(t, gi, None, None, from_node=True, graph=True)
            elif t.grad_fn is None and t._grad is not None:  # a leaf: accumulate in place
                t._grad.array += gi.array
                _post_accumulate(t)
            else:  # (hooks ran in grad())
                _deliver(t, gi.array, None, None, from_node=True)
        return
    if create_graph:
        roots = [_as_root_tensor(g, r) for g, r in zip(grad_tensors, roots)]
    _walk(outs, roots, retain_graph, None, create_graph)


def _as_root_tensor(given: Any, arr: Any) -> Tensor:
    """(create_graph) a root gradient as a tensor: the one given, keeping its graph (cast
    to the output's dtype where needed); else the checked array ``arr``."""
    if isinstance(given, Tensor):  # (a cast keeps its graph)
        return given if given.array.dtype == arr.dtype else given.to(arr.dtype)
    return Tensor._wrap(arr)


def _walk(
    outs: list, roots: list, retain_graph: bool, capture: dict | None, create_graph: bool
) -> list | None:
    """:func:`_run_backward` in its mode: silent on inf/NaN as every op (Function.apply),
    and recording the ops that compute gradients only for create_graph (whose recorded ops
    silence themselves)."""
    if create_graph:
        with enable_grad():
            return _run_backward(outs, roots, retain_graph, capture, True)
    with no_grad(), np.errstate(all="ignore"):
        return _run_backward(outs, roots, retain_graph, capture)


def _root_grad(out: Tensor, g: Any, where: str) -> Any:
    """The array that starts backward from ``out``: ``g`` checked against it, or ones for a
    one-element output."""
    if not out.requires_grad:
        raise RuntimeError(
            f"{where}: an output of shape {tuple(out.shape)} does not require grad and has no "
            "grad_fn; set requires_grad=True on the leaves you want gradients for (and do not "
            "compute the loss under no_grad)"
        )
    if g is None:
        if out.array.size != 1:
            raise RuntimeError(
                f"{where}: grad can be implicitly created only for scalar outputs, but this "
                f"tensor has shape {tuple(out.shape)}; pass a gradient of that shape, or "
                "reduce it first (e.g. loss.sum() or loss.mean())"
            )
        return get_xp(out.array).ones_like(out.array)
    arr = g.array if isinstance(g, Tensor) else get_xp(out.array).asarray(g)
    if arr.shape != out.array.shape:
        raise RuntimeError(
            f"{where}: gradient has shape {tuple(arr.shape)} but the output has shape "
            f"{tuple(out.array.shape)}"
        )
    if type(arr) is not type(out.array):
        raise RuntimeError(
            f"{where}: gradient is on {g.device if isinstance(g, Tensor) else 'cpu'}"
            f" but the output is on {out.device}"
        )
    return arr.astype(out.array.dtype, copy=False)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching any ``.grad``.
    An input listed twice gets its gradient twice; ``materialize_grads`` gives unused
    inputs zeros instead of None.

    With ``create_graph=True`` the gradients are computed by recorded ops and can be
    differentiated again (:mod:`darklib.higher_order`); ``retain_graph`` then defaults to
    True, as in torch. ``is_grads_batched=True``: each grad_output has an extra leading
    batch dim, and each input's gradient gets it too (one backward per batch entry here,
    where torch vectorises them).
    """
    if not only_inputs:
        import warnings

        warnings.warn(
            "only_inputs argument is deprecated and is ignored now (defaults to True). To "
            "accumulate gradient for other parts of the graph, please use "
            "darklib.autograd.backward.",
            FutureWarning,
            stacklevel=2,
        )
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise InvalidValue("autograd.grad: materialize_grads=True needs allow_unused=True or None")
    if is_grads_batched:
        return _batched_grad(
            outputs,
            inputs,
            grad_outputs,
            retain_graph,
            create_graph,
            allow_unused,
            materialize_grads,
        )
    outs = _tensor_list(outputs, "autograd.grad", "outputs")
    ins = _tensor_list(inputs, "autograd.grad", "inputs")
    if not ins:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    _sync(outs + ins)
    grad_outputs = _grad_list(grad_outputs, len(outs))
    if len(grad_outputs) != len(outs):
        raise RuntimeError(
            f"autograd.grad: grad_outputs must hold one gradient (or None) per output: got "
            f"{len(outs)} outputs and {len(grad_outputs)} gradients"
        )
    for t in ins:
        if not t.requires_grad:
            raise RuntimeError(
                f"autograd.grad: an input of shape {tuple(t.shape)} does not require grad"
            )
    root_grads = [_root_grad(o, go, "autograd.grad") for o, go in zip(outs, grad_outputs)]
    if create_graph:
        root_grads = [_as_root_tensor(go, r) for go, r in zip(grad_outputs, root_grads)]
    retain_graph = create_graph if retain_graph is None else bool(retain_graph)
    unique = list({id(t): t for t in ins}.values())
    capture = {id(t): i for i, t in enumerate(unique)}
    # Non-leaf inputs are read off their node when it is reached.
    retained = []
    for t in unique:
        node = t.grad_fn
        if node is not None and (node._retained is None or node._retained() is None):
            retained.append((node, node._retained))
            node._retained = _strong(t)
    try:
        captured = _walk(outs, root_grads, retain_graph, capture, create_graph)
    finally:
        for node, before in retained:
            node._retained = before
    result = []
    for t in ins:
        g = captured[capture[id(t)]]
        if g is None and not allow_unused:
            raise RuntimeError(
                f"autograd.grad: an input of shape {tuple(t.shape)} was not used to compute "
                "the outputs; pass allow_unused=True if that is expected"
            )
        if g is None and materialize_grads:
            g = get_xp(t.array).zeros_like(t.array)
        result.append(g if g is None or isinstance(g, Tensor) else Tensor._wrap(g))
    return tuple(result)


def _batched_grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any,
    retain_graph: bool | None,
    create_graph: bool,
    allow_unused: bool | None,
    materialize_grads: bool,
) -> tuple[Tensor | None, ...]:
    """:func:`grad` with ``is_grads_batched=True``: a backward per entry of the grad_outputs'
    leading dim, the gradients stacked along a new leading dim."""
    from darklib.ops.shape import stack

    outs = _tensor_list(outputs, "autograd.grad", "outputs")
    gos = (
        _tensor_list(grad_outputs, "autograd.grad", "grad_outputs")
        if grad_outputs is not None
        else []
    )
    if len(gos) != len(outs):
        raise RuntimeError(
            "autograd.grad: is_grads_batched=True needs one batched gradient tensor per output: "
            f"got {len(outs)} outputs and {len(gos)} gradients"
        )
    sizes = {g.shape[0] if g.ndim else None for g in gos}
    if len(sizes) != 1 or None in sizes:
        raise RuntimeError(
            "autograd.grad: with is_grads_batched=True every grad_output must have the same "
            f"leading (batch) dim, got shapes {[tuple(g.shape) for g in gos]}"
        )
    (n,) = sizes
    if n == 0:
        raise RuntimeError("autograd.grad: is_grads_batched=True with an empty batch dim")
    keep = create_graph if retain_graph is None else bool(retain_graph)
    rows = [
        grad(
            outs,
            inputs,
            [g[b] for g in gos],
            retain_graph=True if b < n - 1 else keep,
            create_graph=create_graph,
            allow_unused=True if materialize_grads else allow_unused,
        )
        for b in range(n)
    ]
    ins = _tensor_list(inputs, "autograd.grad", "inputs")
    # (as torch: an unused input's materialized gradient is zeros of its own shape)
    return tuple(
        stack(list(col), 0)
        if col[0] is not None
        else (Tensor._wrap(get_xp(t.array).zeros_like(t.array)) if materialize_grads else None)
        for col, t in zip(zip(*rows), ins)
    )


def _sync(tensors: Sequence[Tensor]) -> None:
    for t in tensors:
        v = t._view
        if v is not None and v[2] != v[0]._ver:
            t._sync_view()


def _strong(t: Tensor) -> Callable[[], Tensor]:
    return lambda: t


def once_differentiable(fn: Callable) -> Callable:
    """torch's decorator for a custom Function's backward that cannot be differentiated
    again: the backward runs under no_grad, and differentiating its gradients (after
    create_graph=True) raises."""

    @functools.wraps(fn)
    def backward(ctx: Any, *grads: Any) -> Any:
        with no_grad():
            return fn(ctx, *grads)

    backward.once_differentiable = True  # type: ignore[attr-defined]
    return backward


# ``darklib.autograd.function``, as ``torch.autograd.function``: where torch code imports
# Function and once_differentiable from
function = types.ModuleType(__name__ + ".function", "torch.autograd.function's names.")
function.Function = Function  # type: ignore[attr-defined]
function.once_differentiable = once_differentiable  # type: ignore[attr-defined]
function.FunctionCtx = Node  # type: ignore[attr-defined]  (the ``ctx`` forward and backward get)
sys.modules[function.__name__] = function

# ``darklib.autograd.graph``, as ``torch.autograd.graph``: the graph's node type and the
# hooks on saved tensors
graph = types.ModuleType(__name__ + ".graph", "torch.autograd.graph's names.")
graph.Node = Node  # type: ignore[attr-defined]
graph.saved_tensors_hooks = _saved_hooks.saved_tensors_hooks  # type: ignore[attr-defined]
graph.save_on_cpu = _saved_hooks.save_on_cpu  # type: ignore[attr-defined]
graph.disable_saved_tensors_hooks = _saved_hooks.disable_saved_tensors_hooks  # type: ignore[attr-defined]
sys.modules[graph.__name__] = graph


from darklib.tensor import Tensor  # noqa: E402  (the tensor module imports this one)

Variable = Tensor  # torch.autograd.Variable: today simply the tensor type
