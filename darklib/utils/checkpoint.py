"""Activation checkpointing: ``darklib.utils.checkpoint``, as ``torch.utils.checkpoint``.

``checkpoint(function, *args)`` returns what ``function(*args)`` returns, but keeps none
of the activations inside ``function`` for backward: backward runs ``function`` again
(with the random state it had the first time, so dropout draws the same masks) and
differentiates that recomputation. Memory for compute.

How it fits darklib's engine: the forward runs ``function`` on stand-ins of the tensor
arguments (detached, requiring grad as the originals do) and walks the graph it recorded
once, to find the leaves it read from elsewhere (a module's parameters); that graph is
then dropped. One node (:class:`_Checkpoint`) stands for the whole call: its inputs are
the tensor arguments and those leaves, so the engine hands its gradients on as for any
op (``autograd.grad``, ``backward(inputs=...)``, leaf hooks and ``create_graph`` work as
usual). Its backward recomputes ``function`` and takes ``autograd.grad`` of the new
outputs with respect to the stand-ins and the leaves.

``use_reentrant`` picks between torch's two variants only where they differ for a user:
with ``use_reentrant=True`` (torch's default when it is not given, with a warning)
keyword arguments are refused, and when no tensor argument requires grad the result does
not require grad either (torch's reentrant variant gives parameters no gradient then).

Limits: tensors that ``function`` reads from elsewhere and that are outputs of other ops
(not leaves) get no gradient through this call. The random state restored is darklib's
default generator (the CPU stream exactly; for CuPy arrays, whose generators expose no
state, the GPU streams of the first run and the recomputation are forked from the same
seed).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

from darklib.autograd import Function, grad
from darklib.autograd.engine import graph_leaves
from darklib.autograd.higher_order import _Alias
from darklib.grad_mode import enable_grad, is_grad_enabled
from darklib.random import default_generator
from darklib.tensor import Tensor
from darklib.utils._pytree import tree_flatten

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(
    function: Callable,
    *args: Any,
    use_reentrant: bool | None = None,
    preserve_rng_state: bool = True,
    **kwargs: Any,
) -> Any:
    """Run ``function(*args, **kwargs)`` without keeping its activations; backward
    recomputes them.

    Args:
        function: what to run; a module or any callable of tensors.
        *args: its positional arguments (the tensors among them get gradients).
        use_reentrant: torch's variant switch (see the module docstring); pass it
            explicitly: None warns, as torch does, and means True.
        preserve_rng_state: restore darklib's random state for the recomputation, so that
            dropout draws the same masks (default True).
        **kwargs: keyword arguments of ``function`` (``use_reentrant=False`` only).

    Returns:
        what ``function`` returns: a tensor, or a tuple, list or dict of them (and other
        values).

    Example:
        >>> y = checkpoint(block, x, use_reentrant=False)   # block(x), recomputed in backward
    """
    if use_reentrant is None:
        warnings.warn(
            "darklib.utils.checkpoint: the use_reentrant parameter should be passed "
            "explicitly (as torch asks); use_reentrant=False is recommended. It defaults "
            "to True, as torch's does.",
            UserWarning,
            stacklevel=2,
        )
        use_reentrant = True
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if not is_grad_enabled():  # nothing to recompute for
        return function(*args, **kwargs)
    if use_reentrant and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        warnings.warn(
            "None of the inputs have requires_grad=True. Gradients will be None",
            UserWarning,
            stacklevel=2,
        )
        from darklib.grad_mode import no_grad

        with no_grad():
            return function(*args, **kwargs)
    return _Run(function, args, kwargs, preserve_rng_state).forward()


def checkpoint_sequential(
    functions: Any,
    segments: int,
    input: Tensor,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Tensor:
    """Run ``functions`` (a Sequential, or a list of modules or callables) one after the
    other on ``input``, in ``segments`` chunks of which all but the last are
    checkpointed, as ``torch.utils.checkpoint.checkpoint_sequential``.

    Args:
        functions: the layers.
        segments: how many chunks.
        input: the one tensor the first layer takes.
        use_reentrant: as in :func:`checkpoint`.
        preserve_rng_state: (keyword) as in :func:`checkpoint`.
    """
    if use_reentrant is None:
        warnings.warn(
            "darklib.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter "
            "should be passed explicitly (as torch asks); use_reentrant=False is "
            "recommended. It defaults to True, as torch's does.",
            UserWarning,
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    from darklib.nn import Sequential

    if isinstance(functions, Sequential):
        functions = list(functions.children())
    functions = list(functions)

    def run(start: int, end: int) -> Callable:
        def forward(x: Any) -> Any:
            for j in range(start, end + 1):
                x = functions[j](x)
            return x

        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(
            run(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve
        )
    return run(end + 1, len(functions) - 1)(input)


# ------------------------------------------------------------------ the mechanism


class _Run:
    """One checkpointed call: the function, its arguments, the random state it started
    from, and (after :meth:`forward`) the leaves it read."""

    def __init__(self, function: Callable, args: tuple, kwargs: dict, preserve: bool) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs
        # the tensor arguments, positional then keyword: the node's first inputs
        self.slots = [("a", i) for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.slots += [("k", k) for k, v in kwargs.items() if isinstance(v, Tensor)]
        # where the random streams stood, to draw the same numbers when recomputing
        self.rng = default_generator.fork() if preserve else None
        self.leaves: list[Tensor] = []

    def tensors(self) -> list[Tensor]:
        return [self.args[i] if kind == "a" else self.kwargs[i] for kind, i in self.slots]

    def call(self, tensors: list, connect: bool = False) -> tuple[Any, list]:
        """``function`` on stand-ins of the tensor arguments (their values as ``tensors``,
        new leaves requiring grad as the originals do), with grad mode on: its result and
        the stand-ins. ``connect`` (create_graph): the stand-ins are aliases on the
        arguments' graphs, so that the gradients computed from them can be differentiated
        with respect to the arguments."""
        args, kwargs = list(self.args), dict(self.kwargs)
        stand_ins = []
        for (kind, i), t, orig in zip(self.slots, tensors, self.tensors()):
            if connect and orig.requires_grad:
                with enable_grad():
                    s = _Alias.apply(t)
            else:
                s = t.detach()
                if orig.requires_grad and s.array.dtype.kind in "fc":
                    s.requires_grad_(True)
            stand_ins.append(s)
            if kind == "a":
                args[i] = s
            else:
                kwargs[i] = s
        with enable_grad():
            out = self.function(*args, **kwargs)
        return out, stand_ins

    def forward(self) -> Any:
        out, stand_ins = self.call(self.tensors())
        flat, rebuild = tree_flatten(out)
        outs = [o for o in flat if isinstance(o, Tensor)]
        own = {id(s) for s in stand_ins}
        self.leaves = graph_leaves(outs, own)
        self.differentiable = [o.requires_grad for o in outs]
        inputs = self.tensors() + self.leaves
        if not any(self.differentiable) or not any(t.requires_grad for t in inputs):
            return out  # nothing to differentiate: the result as it is
        # the graph recorded above is dropped with ``out``; the node stands for it
        self.outs = [o.detach() for o in outs]  # (handed back by _Checkpoint.forward)
        results = _Checkpoint.apply(self, *inputs)
        results = results if isinstance(results, tuple) else (results,)
        it = iter(results)
        return rebuild([next(it) if isinstance(o, Tensor) else o for o in flat])

    def backward(self, grads: tuple, saved: tuple) -> tuple:
        """Gradients for the node's inputs (tensor arguments, then leaves) from the
        outputs' gradients ``grads``, by recomputing ``function`` from ``saved``."""
        create_graph = is_grad_enabled()  # (the engine's create_graph mode)
        with default_generator.replay(self.rng) if self.rng else contextlib.nullcontext():
            out, stand_ins = self.call(list(saved), connect=create_graph)
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, Tensor)]
        roots, root_grads = [], []
        for o, g, diff in zip(outs, grads, self.differentiable):
            if diff and g is not None and o.requires_grad:
                roots.append(o)
                root_grads.append(g)
        wanted = [s for s in stand_ins if s.requires_grad] + self.leaves
        found: tuple = (None,) * len(wanted)
        if roots and wanted:
            # the leaves' own hooks run once, when the outer backward hands their
            # gradient on: not here too
            hooks = [(t, t._hooks) for t in self.leaves]
            for t in self.leaves:
                t._hooks = None
            try:
                found = grad(
                    roots, wanted, root_grads, allow_unused=True, create_graph=create_graph
                )
            finally:
                for t, h in hooks:
                    t._hooks = h
        it = iter(found)
        per_arg = [next(it) if s.requires_grad else None for s in stand_ins]
        return (*per_arg, *it)


class _Checkpoint(Function):
    """The node of one checkpointed call: forward hands back the outputs computed by
    :meth:`_Run.forward`; backward recomputes (see :meth:`_Run.backward`)."""

    _arrays = False  # torch's interface: tensors in and out, several outputs

    @staticmethod
    def forward(ctx, run, *inputs):
        outs, run.outs = tuple(run.outs), None
        ctx.run = run
        ctx.save_for_backward(*inputs[: len(run.slots)])  # (later in-place changes raise)
        ctx.mark_non_differentiable(*(o for o, d in zip(outs, run.differentiable) if not d))
        return outs if len(outs) > 1 else outs[0]

    @staticmethod
    def backward(ctx, *grads):
        return (None, *ctx.run.backward(grads, ctx.saved_tensors))
