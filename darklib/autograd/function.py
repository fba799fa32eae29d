"""Recording ops: :class:`Function`, the base of every differentiable op, and
:class:`Node`, the ``ctx`` its forward and backward see and the ``grad_fn`` of its output
(also ``darklib.autograd.function``, where torch code imports ``Function`` and
``once_differentiable`` from).

``Function.apply`` unwraps tensors, runs ``forward`` on raw arrays (numpy or cupy) and,
when a gradient is needed, records a Node linked to the nodes (or leaves) of its inputs.
Functions written outside darklib get torch's tensor interface (:func:`_apply_tensors`).
The walk back through the nodes is :mod:`darklib.autograd.engine`'s.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from darklib import backend as _backend
from darklib.autograd import anomaly_mode as _anomaly
from darklib.autograd import saved_hooks as _saved_hooks
from darklib.backend import FP_SILENT, fp_errors, get_xp, is_cuda_array
from darklib.errors import InvalidType
from darklib.grad_mode import _state as _grad_state
from darklib.grad_mode import no_grad

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
        """(create_graph, see :mod:`darklib.autograd.higher_order`) ``arr``, which holds the
        value of this op's input ``i``, as a tensor on that input's graph: gradients that
        flow into it reach the input. ``arr`` must have the input's shape."""
        p = self.parents[i]
        if isinstance(p, Tensor) and arr is p.array:  # a leaf, as saved: the tensor itself
            return p
        if not hasattr(arr, "shape"):  # a Python number operand
            return arr
        t = Tensor._wrap(arr)
        if isinstance(p, Tensor):
            # a value derived from a leaf, or a leaf changed in place since: the saved value,
            # passing its gradient on to the leaf
            from darklib.autograd.higher_order import _Alias

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
    (:mod:`darklib.autograd.saved_hooks`); ``tensors``: the op's arguments and output, which stand
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


def _sync(tensors: Sequence[Tensor]) -> None:
    for t in tensors:
        v = t._view
        if v is not None and v[2] != v[0]._ver:
            t._sync_view()


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


FunctionCtx = Node  # torch's name for the ``ctx`` that forward and backward get

from darklib.tensor import Tensor  # noqa: E402  (the tensor module imports this one)
