"""The backward pass: :func:`backward` and :func:`grad` walk the recorded nodes in
reverse topological order, call each op's backward, undo broadcasting in one place
(:func:`unbroadcast`), run the gradient hooks and accumulate into leaves' ``.grad`` (or
hand the gradients back), freeing the graph unless ``retain_graph``. With
``create_graph`` the backward ops are recorded too (:mod:`darklib.autograd.higher_order`).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from darklib import backend as _backend
from darklib.autograd import anomaly_mode as _anomaly
from darklib.autograd.function import Node, _OutputOf, _sync
from darklib.backend import get_xp, is_cuda_array
from darklib.errors import InvalidType, InvalidValue
from darklib.grad_mode import enable_grad, no_grad
from darklib.tensor import Tensor


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

_kept = threading.local()  # .depth > 0: backward keeps the graph whatever retain_graph says


@contextlib.contextmanager
def graphs_kept() -> Any:
    """Inside the block no backward frees the graph. For vmap, which calls its function
    once per batch entry where torch makes one batched call: a backward in the function
    (``autograd.grad`` of a graph built outside) frees that graph after the last entry
    only, as torch's single call does."""
    _kept.depth = getattr(_kept, "depth", 0) + 1
    try:
        yield
    finally:
        _kept.depth -= 1


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
    (:mod:`darklib.autograd.higher_order`; the caller enables grad mode), else raw arrays.
    """
    if create_graph:
        from darklib.autograd import higher_order as mode

        node_grads, fit, call_hook = mode.node_grads, mode.fit, mode.call_hook
        deliver = functools.partial(_deliver, graph=True)
    else:  # raw arrays: each node's backward is called inline below (the hot path)
        node_grads, fit, deliver, call_hook = None, _array_fit, _deliver, _call_hook
    captured: list | None = [None] * len(capture) if capture is not None else None
    grads: dict[Node, Any] = {}
    anomaly = _anomaly.state.enabled
    free = not retain_graph and not getattr(_kept, "depth", 0)  # (see graphs_kept)
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
        if free:
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
            from darklib.autograd.higher_order import call_hook as call
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
    differentiated again (:mod:`darklib.autograd.higher_order`); ``retain_graph`` then defaults to
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


def _strong(t: Tensor) -> Callable[[], Tensor]:
    return lambda: t
