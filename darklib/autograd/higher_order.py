"""Higher-order gradients: the backward pass of ``create_graph=True``.

A normal backward (:func:`darklib.autograd.engine._run_backward`) runs each Function's
``backward`` on raw arrays, outside any graph. With ``create_graph=True`` the gradients
must themselves be differentiable, as in torch (a WGAN-GP gradient penalty, a
Hessian-vector product): this pass carries them as tensors and computes each node's input
gradients with darklib's own differentiable ops, recorded as usual.

Each Function defines ``backward_graph(ctx, grad) -> tensor | tuple``, the formula of its
``backward`` written with tensor ops. It reaches the op's inputs and output as tensors
connected to the graph through ``ctx.lift(array, i)`` and ``ctx.lift_output(array)``
(see :class:`darklib.autograd.Node`), so that, say, the gradient ``g * b`` of ``a * b``
depends on ``b`` as a tensor and can be differentiated again. Three helpers here cover
families of ops: :func:`recompute` (a fused op rebuilt from differentiable ops and
differentiated: the normalisations, losses), :func:`linear_adjoint` / :func:`linear_op`
(ops linear in an input: pooling, padding, indexing, resampling; their gradient is a
:class:`_LinearMap` whose own gradient is the op again, to any order) and
:func:`piecewise_linear` (clamp, maximum, rounding). A Function without
``backward_graph`` (scatter_reduce, modules' full backward hooks)
stops this pass with an error naming it: never a silently constant gradient. Custom
Functions written with torch's interface already compute their backward with tensor
ops, which this pass records.

Nothing is freed here: as in torch, ``retain_graph`` defaults to ``create_graph``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from darklib.autograd.function import Function, Node, check_user_grads
from darklib.backend import get_xp, is_cuda_array

_HOW = (
    "create_graph=True: darklib cannot differentiate the backward of {name} yet (every "
    "other op's gradient can be differentiated again); compute this part without "
    "create_graph, or write it as a custom autograd.Function whose backward uses tensor ops"
)


def fit(node: Any, parent: Any, g: Any, shape: tuple, dtype: Any) -> Any:
    """Gradient tensor ``g`` for ``parent`` of ``node``, summed down to ``shape`` (undoing
    broadcasting) with differentiable ops and cast to ``dtype``."""
    if tuple(g.shape) != tuple(shape):
        extra = g.ndim - len(shape)
        if extra < 0 or any(n not in (1, m) for n, m in zip(shape, g.shape[extra:])):
            index = node.parents.index(parent)
            raise RuntimeError(
                f"function {node.name()} returned an invalid gradient at index {index} - got "
                f"{list(g.shape)} but expected shape compatible with {list(shape)}"
            )
        dims = tuple(range(extra)) + tuple(
            i + extra for i, n in enumerate(shape) if n == 1 and g.shape[i + extra] != 1
        )
        g = g.sum(dim=dims, keepdim=True).reshape(shape) if dims else g.reshape(shape)
    return g if g.array.dtype == dtype else g.to(dtype)


def node_grads(node: Any, g: Any) -> tuple:
    """A node's input gradients as tensors with a graph of their own (computed on the GPU
    of the node's output, as the array path does)."""
    fn = node.fn
    first = next((t for t in g if t is not None), None) if type(g) is list else g
    gpu = first is not None and is_cuda_array(first.array)
    with first.array.device if gpu else contextlib.nullcontext():
        if not fn._arrays:  # a user Function: its backward already takes and gives tensors
            return _user_grads(node, g)
        bg = getattr(fn, "backward_graph", None)
        if bg is None:
            name = getattr(fn, "about", None) or fn.__name__
            raise NotImplementedError(_HOW.format(name=name))
        res = bg(node, g)
    return res if isinstance(res, tuple) else (res,)


def _user_grads(node: Any, g: Any) -> tuple:
    from darklib.tensor import Tensor

    slots = g if type(g) is list else [g]
    if getattr(node, "_materialize_grads", True):
        slots = [
            Tensor._wrap(node._xp.zeros(*m)) if gi is None and m is not None else gi
            for gi, m in zip(slots, node._outputs_meta)
        ]
    backward = node.fn._user_backward
    with contextlib.nullcontext() if node._device is None else node._device:
        res = backward(node, *slots)
    res = check_user_grads(node, res)
    if getattr(backward, "once_differentiable", False) and any(
        gi is not None and gi.requires_grad for gi in slots
    ):  # computed under no_grad
        # linked to the Function's inputs, so that differentiating them reaches the error
        # (as torch, only where the incoming gradients require grad: otherwise the result
        # is a plain tensor, which requires no grad)
        i = next(i for i, p in enumerate(node.parents) if p is not None)
        anchor = node.lift(node._xp.empty(()), i)  # (its value is never read)
        res = tuple(
            None if r is None else _OnceDifferentiable.apply(r, anchor, node.name()) for r in res
        )
    return res


class _OnceDifferentiable(Function):
    """Stands for a gradient computed by a ``once_differentiable`` backward: differentiating
    it again is an error, as in torch (it would otherwise be a silent zero)."""

    @staticmethod
    def forward(ctx, g, anchor, name):
        ctx.who = name
        return g.copy()

    @staticmethod
    def backward(ctx, gg):
        raise RuntimeError(
            f"trying to differentiate twice a function that was marked with "
            f"@once_differentiable ({ctx.who})"
        )


def recompute(ctx: Any, g: Any, fn: Callable, values: tuple) -> tuple:
    """Input gradients of a fused op as recorded ops (one per argument of its forward),
    from its forward rebuilt out of differentiable ops: ``fn(*inputs)`` on ``values[i]``
    (arrays holding the value of input ``i`` as forward saw it, or None) lifted onto input
    ``i``'s graph, then differentiated with ``g`` and create_graph. A value may also be a
    stand-in of the input's shape where ``fn`` only uses that tensor as a link (the
    pointwise losses keep x - y, not x and y). For ops whose fused backward would be long
    to write again (the normalisations); costs one more forward, only under create_graph."""
    from darklib.autograd import grad

    needs = ctx.needs_input_grad
    inputs, targets = [], []
    for i, v in enumerate(values):
        t = None if v is None else ctx.lift(v, i)
        if t is not None and needs[i]:
            t = _Alias.apply(t)  # a node of its own: where the inner grad() collects
            targets.append((i, t))
        inputs.append(t)
    out: list = [None] * len(needs)
    if targets:
        found = grad(fn(*inputs), [t for _, t in targets], g, create_graph=True, allow_unused=True)
        for (i, _), gi in zip(targets, found):
            out[i] = gi
    return tuple(out)


def linear_adjoint(ctx: Any, g: Any, op: Callable[[Any], Any], i: int = 0) -> Any:
    """(create_graph) input ``i``'s gradient for an op that is linear in that input
    (average pooling, padding, indexing), or whose gradient's routing forward fixed (max
    pooling's winners): its own backward applied to ``g``, recorded as a linear map whose
    adjoint is ``op``, the op's linear map from that input on arrays (the forward with the
    other inputs zero). ``op`` must hold what it needs itself: ``ctx`` may be freed by the
    time it runs."""
    kept = _kept(ctx)
    return _LinearMap.apply(g, lambda v: _pick(kept.fn.backward(kept, v), i), op)


def linear_adjoints(ctx: Any, g: Any, ops: dict[int, Callable[[Any], Any]]) -> tuple:
    """:func:`linear_adjoint` for each input in ``ops`` that needs a gradient; a tuple
    with one entry per argument of forward."""
    return tuple(
        linear_adjoint(ctx, g, ops[i], i) if need and i in ops else None
        for i, need in enumerate(ctx.needs_input_grad)
    )


def linear_op(ctx: Any, g: Any, *params: Any) -> tuple:
    """``backward_graph`` of an op linear in its first input and constant in the others
    (resampling, repeat, triangles, diagonals), whose forward on arrays is
    ``forward(ctx, x, *params)``: the op itself is the adjoint of its gradient. ``params``
    are forward's other arguments, taken from ``ctx`` by the caller now."""
    from darklib.autograd import Node

    fn = ctx.fn
    return linear_adjoints(ctx, g, {0: lambda v: fn.forward(Node(fn, ()), v, *params)})


def piecewise_linear(ctx: Any, g: Any) -> tuple:
    """``backward_graph`` of an elementwise op whose derivatives are piecewise constant
    (clamp, maximum, minimum): each input gradient is ``g`` times a pattern that forward
    fixed, a diagonal map and so its own adjoint. Only for such ops: any curvature would
    be lost."""
    kept = _kept(ctx)

    def diagonal(i: int) -> Callable[[Any], Any]:
        return lambda v: _pick(kept.fn.backward(kept, v), i)

    return tuple(
        _LinearMap.apply(g, diagonal(i), diagonal(i)) if need else None
        for i, need in enumerate(ctx.needs_input_grad)
    )


def _kept(node: Any) -> Any:
    """A copy of ``node``'s context (saved arrays and attributes) for a backward that runs
    later: a later backward pass frees ``node`` itself, maybe before that."""
    from darklib.autograd import Node

    kept = Node(node.fn, (), node.needs_input_grad)
    kept._saved = node.saved_tensors  # (checks that they are unchanged since forward)
    kept.__dict__.update(node.__dict__)
    return kept


def _pick(grads: Any, i: int) -> Any:
    return grads[i] if isinstance(grads, tuple) else grads


class ZeroGradFor(Function):
    """``value`` unchanged, tied to ``like``'s graph with a zero gradient (the nearest-mode
    grid gradient of grid_sample; the input link of :func:`linked`)."""

    @staticmethod
    def forward(ctx, value, like):
        ctx.like_shape, ctx.like_dtype = like.shape, like.dtype
        return value

    @staticmethod
    def backward(ctx, g):
        xp = get_xp(g)
        like = xp.zeros(ctx.like_shape, ctx.like_dtype) if ctx.needs_input_grad[1] else None
        return g, like

    @staticmethod
    def backward_graph(ctx, g):
        from darklib.tensor import Tensor

        xp = get_xp(g.array)
        return g, Tensor._wrap(xp.zeros(ctx.like_shape, ctx.like_dtype))


def linked(ctx: Any, grads: Any, *inputs: int) -> Any:
    """(create_graph) ``grads`` (a tensor, or one entry per argument of forward) with the
    gradient of each input in ``inputs`` tied to that input with a zero derivative.

    torch's backward formulas of relu, abs, pooling and the edge-reading pads read the op's
    input or output, so the gradient they return is on the input's graph: differentiating
    it again with respect to that input gives zeros (the derivative of a piecewise-linear
    map's pattern) instead of "input not used". A backward_graph that computes the same
    gradient from a constant pattern returns it through here."""
    single = not isinstance(grads, tuple)
    out = [grads] if single else list(grads)
    for i in inputs:
        if out[i] is None or not ctx.needs_input_grad[i]:
            continue
        p = ctx.parents[i]
        if isinstance(p, Node):  # a stand-in of the input's shape: only its graph is used
            xp = get_xp(out[i].array)
            like = ctx.lift(xp.broadcast_to(xp.zeros((), p._out_dtype), p._out_shape), i)
        else:  # a leaf
            like = ctx.lift(p.array, i)
        out[i] = ZeroGradFor.apply(out[i], like)
    return out[0] if single else tuple(out)


class _LinearMap(Function):
    """``forward(g)`` for a linear map on arrays whose adjoint is ``adjoint``: its
    gradient is the adjoint, and the gradient's graph the map again, to any order."""

    @staticmethod
    def forward(ctx, g, forward, adjoint):
        ctx.maps = (forward, adjoint)
        return forward(g)

    @staticmethod
    def backward(ctx, gg):
        return ctx.maps[1](gg), None, None

    @staticmethod
    def backward_graph(ctx, gg):
        forward, adjoint = ctx.maps
        return _LinearMap.apply(gg, adjoint, forward), None, None


class _Alias(Function):
    """The same value under a new node (see :func:`recompute`)."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g

    @staticmethod
    def backward_graph(ctx, g):
        return g


def call_hook(hook: Callable, g: Any) -> Any:
    res = hook(g)
    if res is None:
        return g
    if tuple(getattr(res, "shape", ())) != tuple(g.shape) or getattr(res, "dtype", None) != g.dtype:
        raise RuntimeError(
            f"hook {getattr(hook, '__name__', hook)!r} has changed the size or type of value: "
            f"it got a gradient of shape {list(g.shape)} ({g.dtype}); return a tensor like "
            "its argument, or None"
        )
    return res
