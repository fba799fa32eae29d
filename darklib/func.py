"""``darklib.func``: torch.func's function transforms, on darklib's reverse-mode autograd.

``grad(f)`` is a function that returns the gradient of ``f`` (a scalar function) with
respect to its ``argnums``; ``vjp``, ``jvp``, ``jacrev``, ``jacfwd`` and ``hessian`` give
the other products and matrices; ``vmap(f)`` maps ``f`` over a batch dimension;
``functional_call`` runs a module with other parameters. They compose (``vmap(grad(f))``
for per-sample gradients, ``jacrev(jacrev(f))``) and mix with ordinary autograd: a result
stays differentiable with respect to tensors from outside the transform that require
grad (an outer transform's inputs, a module's parameters).

How: each transform differentiates with respect to stand-ins of its inputs (new leaves,
or aliases on the inputs' graphs when these require grad), and builds the graph of its
own backward (``create_graph``) only when the function's graph reaches a tensor from
outside that requires grad. ``jacfwd`` and ``jvp`` compute by reverse mode (the same
values as torch's forward mode). ``vmap`` runs ``f`` once per batch entry and stacks the
results (the same values as torch's batching rules, one call per entry; an empty batch
runs ``f`` once on zeros, for the outputs' shapes): with
``randomness='error'`` (the default) a random op inside raises, as torch; ``'same'``
draws the same numbers for every entry, ``'different'`` fresh ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import random as _random
from darklib.autograd import grad as _autograd_grad
from darklib.autograd.engine import graph_leaves, graphs_kept
from darklib.autograd.higher_order import _Alias
from darklib.backend import get_xp
from darklib.creation import ones_like, zeros_like
from darklib.errors import InvalidType, InvalidValue, OutOfRange
from darklib.grad_mode import enable_grad, is_grad_enabled
from darklib.ops.shape import stack
from darklib.tensor import Tensor
from darklib.utils._pytree import tree_flatten

__all__ = [
    "functional_call",
    "stack_module_state",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "vjp",
    "vmap",
]


# ------------------------------------------------------------------ the differentiation core


def _stand_in(x: Any, op: str) -> Tensor:
    """What a transform differentiates with respect to in place of input ``x``."""
    if not isinstance(x, Tensor):
        raise InvalidValue(f"Thing passed to transform API must be Tensor, got {type(x)}")
    if x.array.dtype.kind != "f":
        raise InvalidType(
            f"{op}: only Tensors of floating point dtype can require gradients, got an "
            f"input of dtype {x.dtype} (not floating-point)"
        )
    if x.requires_grad and is_grad_enabled():
        with enable_grad():
            return _Alias.apply(x)  # on the outer graph: results stay differentiable
    return x.detach().requires_grad_(True)


# where torch's messages say a transform's check failed
_AUX_WHERE = {"grad": "grad_and_value(f)(*args)", "vjp": "vjp(f, *primals)"}
_AUX_WHERE.update(jacrev="vjp(f, *primals)", jacfwd="jvp(f, primals, tangents)")
_AUX_WHERE.update(jvp="jvp(f, primals, tangents)", linearize="linearize(f, *primals)")


class _Linearised:
    """``func`` evaluated at stand-ins of the primals (a pytree of tensors), ready for
    vector-Jacobian products. ``outer``: whether its graph reaches tensors from outside
    that require grad, so that the products must be differentiable (create_graph)."""

    def __init__(self, func: Callable, primals: Any, has_aux: bool, op: str):
        flat, self.rebuild_in = tree_flatten(primals)
        self.inputs = [_stand_in(p, op) for p in flat]
        with enable_grad():
            out = func(*self.rebuild_in(self.inputs))
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                where = _AUX_WHERE.get(op, f"{op}(f, *primals)")
                raise RuntimeError(
                    f"{where}: output of function f should be a tuple: (output, aux) if "
                    f"has_aux is True (got {type(out).__name__}"
                    + (f" of {len(out)} items)" if isinstance(out, tuple) else ")")
                )
            out, self.aux = out
            for a in tree_flatten(self.aux)[0]:
                if not isinstance(a, Tensor):  # (torch's transforms take tensors only)
                    raise RuntimeError(f"Expected tensors, got unsupported type {type(a)}")
        else:
            self.aux = None
        if op == "grad" and not isinstance(out, Tensor):
            raise RuntimeError(
                f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got {type(out)}"
            )
        self.spec = _spec(out)
        if op in ("vjp", "jacrev"):  # (reverse mode needs float outputs, as torch's)
            for o in tree_flatten(out)[0]:
                if isinstance(o, Tensor) and o.array.dtype.kind not in "fc":
                    raise RuntimeError(
                        f"vjp(f, ...): All outputs of f must be floating-point or complex "
                        f"Tensors, got Tensor with dtype {o.dtype}"
                    )
        self.out_flat, self.rebuild_out = tree_flatten(out)
        for o in self.out_flat:
            if not isinstance(o, Tensor):
                raise InvalidType(
                    f"{_AUX_WHERE.get(op, f'{op}(f, *primals)')}: expected f(*primals) to "
                    f"return only tensors, got unsupported type {type(o)}"
                )
        own = {id(t) for t in self.inputs if t.grad_fn is None}
        self.outer = is_grad_enabled() and (
            any(t.grad_fn is not None for t in self.inputs)
            or bool(graph_leaves(self.out_flat, own))
        )

    def pullback(self, cotangents: list) -> list[Tensor]:
        """The gradients with respect to every input (zeros where unused)."""
        pairs = [
            (o, c) for o, c in zip(self.out_flat, cotangents) if o.requires_grad and c is not None
        ]
        if not pairs:
            return [zeros_like(x) for x in self.inputs]
        with enable_grad() if self.outer else contextlib.nullcontext():
            found = _autograd_grad(
                [o for o, _ in pairs],
                self.inputs,
                [c for _, c in pairs],
                retain_graph=True,
                create_graph=self.outer,
                allow_unused=True,
            )
        return [zeros_like(x) if g is None else g for g, x in zip(found, self.inputs)]

    def result(self, value: Any) -> Any:
        """A value computed here, as the caller gets it: detached unless differentiable
        from outside."""
        if self.outer:
            return value
        return _map(value, lambda t: t.detach())


def _spec(value: Any) -> str:
    """The nesting of ``value`` (tuples, lists, dicts with their keys in order; ``*`` for a
    leaf) as torch's pytree prints it: two values fit each other when these are equal."""
    if isinstance(value, tuple | list):
        inner = ", ".join(_spec(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        if hasattr(value, "_fields"):  # a namedtuple
            fields = ", ".join(f"{k}={_spec(v)}" for k, v in zip(value._fields, value))
            return f"{type(value).__name__}({fields})"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_spec(v)}" for k, v in value.items()) + "}"
    return "*"


def _map(value: Any, fn: Callable[[Tensor], Any]) -> Any:
    flat, rebuild = tree_flatten(value)
    return rebuild([fn(v) if isinstance(v, Tensor) else v for v in flat])


def _argnums(argnums: Any, n: int, op: str) -> tuple[int, ...]:
    """``argnums`` (an int or a tuple of ints, as torch: not a list) as non-negative ints."""
    one = isinstance(argnums, int) and not isinstance(argnums, bool)
    if not one and not isinstance(argnums, tuple):
        raise InvalidType(f"{op}: argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    nums = (argnums,) if one else argnums
    if not nums:
        raise InvalidValue(f"{op}: argnums must be non-empty")
    out = []
    for a in nums:
        if not isinstance(a, int) or isinstance(a, bool):
            raise InvalidType(
                f"{op}: argnums must be int or Tuple[int, ...], got: {argnums!r} (an element "
                f"of type {type(a)})"
            )
        if not -n <= a < n:
            raise InvalidValue(
                f"{op}: Got argnum={a}, but only {n} positional inputs (argnums={argnums!r})"
            )
        out.append(a % n)
    if len(set(out)) != len(out):
        raise InvalidValue(f"{op}: argnums elements must be unique, got {argnums!r}")
    return tuple(out)


def _with_args(func: Callable, args: tuple, kwargs: dict, nums: tuple) -> Callable:
    """``func`` as a function of the differentiated arguments (each a pytree)."""

    def call(*chosen: Any) -> Any:
        full = list(args)
        for i, v in zip(nums, chosen):
            full[i] = v
        return func(*full, **kwargs)

    return call


# ------------------------------------------------------------------ grad, vjp, jvp


def grad_and_value(func: Callable, argnums: Any = 0, has_aux: bool = False) -> Callable:
    """A function returning ``(gradient, value)`` of ``func`` (which must return a 0-d
    tensor, or ``(tensor, aux)`` with ``has_aux``: then ``(gradient, (value, aux))``).
    The gradient has the structure of ``args[argnums]`` (a tuple for a tuple of argnums)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), "grad_and_value")
        chosen = tuple(args[i] for i in nums)
        lin = _Linearised(_with_args(func, args, kwargs, nums), chosen, has_aux, "grad")
        if lin.out_flat[0].ndim != 0:
            raise RuntimeError(
                f"grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                f"tensor with {lin.out_flat[0].ndim} dims. Maybe you wanted to use the vjp or "
                "jacrev APIs instead?"
            )
        (out,) = lin.out_flat
        grads = lin.rebuild_in(lin.pullback([ones_like(out)]))
        grads = grads[0] if isinstance(argnums, int) else grads
        value = lin.result(out)
        if has_aux:
            return lin.result(grads), (value, lin.result(lin.aux))
        return lin.result(grads), value

    return wrapper


def grad(func: Callable, argnums: Any = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of ``func`` (a scalar function) with respect to
    its ``argnums`` (``(gradient, aux)`` with ``has_aux``), as ``torch.func.grad``."""
    both = grad_and_value(func, argnums, has_aux)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g, value = both(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(func(*primals), vjp_fn)`` (and ``aux`` with ``has_aux``): ``vjp_fn(cotangents)``,
    cotangents of the output's structure, returns one gradient per primal (a tuple)."""
    lin = _Linearised(func, primals, has_aux, "vjp")

    def vjp_fn(cotangents: Any, retain_graph: bool = True, create_graph: Any = None) -> tuple:
        # (torch's keywords: the graph is kept whatever retain_graph says, and the result is
        # differentiable exactly where the function reaches tensors from outside, as torch's)
        spec = _spec(cotangents)
        if spec != lin.spec:
            raise RuntimeError(
                "Expected pytree structure of cotangents to be the same as pytree structure "
                f"of outputs to the function. cotangents: {spec}, primal output: {lin.spec}"
            )
        flat, _ = tree_flatten(cotangents)
        for i, (c, o) in enumerate(zip(flat, lin.out_flat)):
            if not isinstance(c, Tensor):
                raise InvalidType(
                    f"vjp_fn: gradients can be either Tensors or None, but got {type(c).__name__}"
                )
            if tuple(c.shape) != tuple(o.shape):
                raise InvalidValue(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(c.shape)} and "
                    f"output[{i}] has a shape of {tuple(o.shape)}."
                )
        return tuple(lin.result(lin.rebuild_in(lin.pullback(flat))))

    out = lin.result(lin.rebuild_out(lin.out_flat))
    if has_aux:
        return out, vjp_fn, lin.result(lin.aux)
    return out, vjp_fn


class _Pushforward:
    """``func`` at ``primals`` with its vjp built once as a differentiable function of
    dummy cotangents ``u``: differentiating that vjp again along ``u`` pushes tangents
    forward (the double-vjp trick), as often as asked."""

    def __init__(self, func: Callable, primals: Any, has_aux: bool, op: str):
        self.lin = lin = _Linearised(func, primals, has_aux, op)
        # the vjp's dummy cotangents: float outputs only (an integer output's tangent is 0)
        self.u = [zeros_like(o).requires_grad_(o.array.dtype.kind == "f") for o in lin.out_flat]
        live = [(o, v) for o, v in zip(lin.out_flat, self.u) if o.requires_grad and v.requires_grad]
        self.vjp: list = []
        if live:
            with enable_grad():
                self.vjp = _autograd_grad(
                    [o for o, _ in live],
                    lin.inputs,
                    [v for _, v in live],
                    retain_graph=True,
                    create_graph=True,
                    allow_unused=True,
                )

    def push(self, t_flat: list, keep: bool) -> Any:
        """J @ tangents, shaped as func's output; ``keep``: the graph serves again."""
        lin, u = self.lin, self.u
        tangents_out: Any = [None] * len(u)
        used = [(g, t) for g, t in zip(self.vjp, t_flat) if g is not None and g.requires_grad]
        if used:
            along = [v for v in u if v.requires_grad]
            with enable_grad():
                got = iter(
                    _autograd_grad(
                        [g for g, _ in used],
                        along,
                        [t for _, t in used],
                        retain_graph=keep or None,
                        create_graph=lin.outer,
                        allow_unused=True,
                    )
                )
            tangents_out = [next(got) if v.requires_grad else None for v in u]
        outs = lin.out_flat
        tangents_out = [zeros_like(o) if t is None else t for t, o in zip(tangents_out, outs)]
        return lin.result(lin.rebuild_out(tangents_out))

    def output(self) -> Any:
        return self.lin.result(self.lin.rebuild_out(self.lin.out_flat))


def _tangents(op: str, primals: Any, tangents: Any) -> list:
    """The tangents flattened, checked against the primals' structure and shapes."""
    p_flat, _ = tree_flatten(primals)
    t_flat, _ = tree_flatten(tangents)
    if _spec(primals) != _spec(tangents):
        raise InvalidValue(
            f"{op}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
            f"with structure {_spec(primals)} and tangents with structure {_spec(tangents)}"
        )
    for i, (p, t) in enumerate(zip(p_flat, t_flat)):
        if not isinstance(t, Tensor):
            raise InvalidType(f"{op}: Expected tangents to be Tensors, got {type(t)}")
        if tuple(t.shape) != tuple(p.shape):
            raise InvalidValue(
                f"{op}: tangent:{i} with shape {tuple(t.shape)} in flattened pytree doesn't "
                f"match the shape {tuple(p.shape)} of the corresponding primal (tangents must "
                f"have the same shape as the primals, got {tuple(t.shape)} for {tuple(p.shape)})"
            )
    return t_flat


def jvp(
    func: Callable, primals: Any, tangents: Any, *, strict: bool = False, has_aux: bool = False
) -> tuple:
    """``(func(*primals), J @ tangents)`` (and ``aux``), ``primals`` and ``tangents`` tuples
    of the same structure; computed by the double-vjp trick."""
    for name, given in (("primals", primals), ("tangents", tangents)):
        if not isinstance(given, tuple):
            raise InvalidType(
                f"jvp(f, primals, tangents): Expected {name} to be a tuple. E.g. it should be "
                "valid to call f(*primals)."
            )
    t_flat = _tangents("jvp(f, primals, tangents)", primals, tangents)
    forward = _Pushforward(func, primals, has_aux, "jvp")
    jv = forward.push(t_flat, keep=False)
    out = forward.output()
    return (out, jv, forward.lin.result(forward.lin.aux)) if has_aux else (out, jv)


def linearize(func: Callable, *primals: Any) -> tuple[Any, Callable]:
    """``(func(*primals), jvp_fn)``: ``jvp_fn(*tangents)`` is the Jacobian-vector product
    at ``primals``, from a graph built once here and reused by every call (each costs one
    backward pass), as ``torch.func.linearize``."""
    forward = _Pushforward(func, primals, False, "linearize")

    def jvp_fn(*tangents: Any) -> Any:
        return forward.push(_tangents("linearize: jvp_fn", primals, tangents), keep=True)

    return forward.output(), jvp_fn


# ------------------------------------------------------------------ Jacobians


def jacrev(
    func: Callable, argnums: Any = 0, *, has_aux: bool = False, chunk_size: Any = None
) -> Callable:
    """A function returning the Jacobian of ``func`` with respect to ``args[argnums]``:
    for each output tensor of shape ``o``, a tensor of shape ``o + input.shape`` (a tuple
    of them for a tuple of argnums), in the output's structure (``(jacobian, aux)`` with
    ``has_aux``). One backward pass per output element, all at once
    (``is_grads_batched``); ``chunk_size`` (None, or a positive int) is checked as torch
    checks it and changes nothing else."""
    _check_chunk_size(chunk_size, "jacrev: `chunk_size` should be greater than 0.")
    return _jacobian(func, argnums, has_aux, "jacrev", None)


def _check_chunk_size(chunk_size: Any, message: str) -> None:
    if chunk_size is None:
        return
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
        raise InvalidType(f"{message} Got a {type(chunk_size).__name__}: {chunk_size!r}")
    if chunk_size <= 0:
        raise InvalidValue(message)


def _check_randomness(randomness: Any) -> None:
    if randomness not in ("error", "same", "different"):
        raise InvalidValue(
            f"Only allowed values for randomness are 'error', 'different', or 'same'. Got "
            f"{randomness}"
        )


def _jacobian(func: Callable, argnums: Any, has_aux: bool, op: str, refuse: Any) -> Callable:
    """jacrev's and jacfwd's work; ``refuse``: the message random draws raise, or None."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), op)
        chosen = tuple(args[i] for i in nums)
        with _random.draws_refused(refuse) if refuse else contextlib.nullcontext():
            lin = _Linearised(_with_args(func, args, kwargs, nums), chosen, has_aux, op)
        per_output = []
        for k, o in enumerate(lin.out_flat):
            rows = _jacobian_rows(lin, k, o)
            per_in = lin.rebuild_in(rows)
            per_output.append(per_in[0] if isinstance(argnums, int) else per_in)
        jac = lin.result(lin.rebuild_out(per_output))
        return (jac, lin.result(lin.aux)) if has_aux else jac

    return wrapper


def _jacobian_rows(lin: _Linearised, k: int, o: Tensor) -> list[Tensor]:
    """d out_k / d input for every input, each of shape ``o.shape + input.shape``: one
    batched backward whose cotangents are the rows of the identity."""
    n = o.numel()
    if n == 0 or not o.requires_grad:
        return [o.new_zeros((*o.shape, *x.shape)) for x in lin.inputs]
    basis = Tensor._wrap(get_xp(o.array).eye(n, dtype=o.array.dtype)).reshape(n, *o.shape)
    with enable_grad() if lin.outer else contextlib.nullcontext():
        found = _autograd_grad(
            [o],
            lin.inputs,
            [basis],
            retain_graph=True,
            create_graph=lin.outer,
            allow_unused=True,
            is_grads_batched=True,
        )
    return [
        x.new_zeros((*o.shape, *x.shape)) if g is None else g.reshape(*o.shape, *x.shape)
        for g, x in zip(found, lin.inputs)
    ]


def jacfwd(
    func: Callable, argnums: Any = 0, has_aux: bool = False, *, randomness: str = "error"
) -> Callable:
    """As :func:`jacrev` (torch computes it in forward mode; the values are the same).
    ``randomness``: as :func:`vmap`'s (torch maps over the tangents): 'error' makes a random
    op inside raise; with 'same' or 'different' one draw serves every column."""
    _check_randomness(randomness)
    return _jacobian(
        func, argnums, has_aux, "jacfwd", _RANDOM_IN_VMAP if randomness == "error" else None
    )


def hessian(func: Callable, argnums: Any = 0) -> Callable:
    """A function returning the Hessian of the scalar ``func`` with respect to
    ``args[argnums]`` (shape ``input.shape + input.shape``), as ``jacfwd(jacrev(func))``."""
    return jacfwd(jacrev(func, argnums), argnums)


# ------------------------------------------------------------------ vmap

_RANDOM_IN_VMAP = (
    "vmap: called random operation while in randomness error mode. Please either use the "
    "'same' or 'different' randomness flags on vmap or perform the randomness operation "
    "out of vmap"
)


def vmap(
    func: Callable,
    in_dims: Any = 0,
    out_dims: Any = 0,
    randomness: str = "error",
    *,
    chunk_size: Any = None,
) -> Callable:
    """``func`` mapped over a batch dimension: ``in_dims`` says which dimension of each
    positional argument is the batch (an int for all, or one entry per argument, None for
    an argument that is not mapped, nested as the argument is); ``out_dims`` where the
    batch goes in each output. Keyword arguments are not mapped. ``randomness``: 'error'
    (random ops raise), 'same' (one draw shared by the batch) or 'different'."""
    _check_randomness(randomness)
    _check_chunk_size(
        chunk_size, f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})"
    )

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = _fname(func)
        where = f"vmap({name}, in_dims={in_dims!r}, ...)(<inputs>)"
        if not args:
            raise InvalidValue(
                f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or "
                "you are trying to vmap over a function with no inputs. The latter is "
                "unsupported."
            )
        leaves, dims, rebuild = _mapped_leaves(args, in_dims, where)
        size = _batch_size(leaves, dims, where)
        # 'same': every entry draws what the first drew (from every generator), and the
        # streams then go on from there, as after one call
        points = _random.fork_all() if randomness == "same" else None
        unmapped = [
            (v, v._version) for v, d in zip(leaves, dims) if d is None and isinstance(v, Tensor)
        ]
        outs = []
        with _random.draws_refused(_RANDOM_IN_VMAP if randomness == "error" else None):
            # an empty batch: one call on zeros of an entry's shape gives the outputs' shapes
            for i in range(max(size, 1)):
                entry = [_entry(v, d, i, size) for v, d in zip(leaves, dims)]
                with (
                    (
                        _random.replay_all(points)
                        if points is not None and i > 0
                        else contextlib.nullcontext()
                    ),
                    (
                        # a backward inside func frees its graph after the last entry only
                        graphs_kept() if i < size - 1 else contextlib.nullcontext()
                    ),
                ):
                    outs.append(func(*rebuild(entry), **kwargs))
                for v, version in unmapped:
                    if v._version != version:  # (it would be changed once per entry)
                        raise RuntimeError(
                            "vmap: an argument that is not mapped (in_dims None) was modified "
                            "in place inside the function: it would be changed once per batch "
                            "entry. Map it, or modify a copy (as torch, which refuses this too)"
                        )
        return _stack_outputs(outs, out_dims, name, size)

    return wrapper


def _fname(func: Any) -> str:
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else repr(func)


def _entry(v: Any, d: Any, i: int, size: int) -> Any:
    """Entry ``i`` of leaf ``v`` mapped over dim ``d`` (zeros of its shape for an empty
    batch)."""
    if d is None:
        return v
    if size == 0:
        return v.new_zeros(tuple(n for k, n in enumerate(v.shape) if k != d))
    return v.select(d, i)


def _mapped_leaves(args: tuple, in_dims: Any, where: str) -> tuple[list, list, Callable]:
    """The arguments' leaves, the batch dim of each (None: not mapped), and the function
    that rebuilds the arguments from leaves."""
    flat, rebuild = tree_flatten(args)
    if in_dims is None or (isinstance(in_dims, int) and not isinstance(in_dims, bool)):
        dims = [in_dims if isinstance(v, Tensor) else None for v in flat]
    elif not isinstance(in_dims, tuple | list):
        raise InvalidValue(
            f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching "
            f"the structure of inputs, got: {type(in_dims)}."
        )
    else:
        if len(in_dims) != len(args):
            raise InvalidValue(
                f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims "
                f"has structure {_spec(tuple(in_dims))} but inputs has structure {_spec(args)}."
            )
        dims = []
        for arg, d in zip(args, in_dims):
            arg_flat, _ = tree_flatten(arg)
            if isinstance(d, int) or d is None:
                dims += [d if isinstance(v, Tensor) else None for v in arg_flat]
            else:
                d_flat, _ = tree_flatten(d)
                if len(d_flat) != len(arg_flat) or _fits(d, arg) is False:
                    raise InvalidValue(
                        f"{where}: in_dims is not compatible with the structure of `inputs`. "
                        f"in_dims has structure {_spec(tuple(in_dims))} but inputs has "
                        f"structure {_spec(args)}."
                    )
                dims += list(d_flat)
    for v, d in zip(flat, dims):
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise InvalidValue(
                f"{where}: in_dims must be int or None, got {d!r} (of type {type(d)})"
            )
        if not isinstance(v, Tensor):
            raise InvalidValue(
                f"{where}: Got in_dim={d} for an input but the input is of type {type(v)}. "
                "We cannot vmap over non-Tensor arguments, please use None as the respective "
                "in_dim"
            )
        if not -v.ndim <= d < v.ndim or v.ndim == 0:
            raise InvalidValue(
                f"{where}: Got in_dim={d} for some input, but that input is a Tensor of "
                f"dimensionality {v.ndim} so expected in_dim to satisfy "
                f"-{v.ndim} <= in_dim < {v.ndim}."
            )
    dims = [None if d is None else d % v.ndim for v, d in zip(flat, dims)]
    return flat, dims, rebuild


def _fits(dims: Any, arg: Any) -> bool:
    """Whether a nested in_dims has the structure of its argument (an int or None entry
    stands for a whole sub-structure; a dict's entries are matched in order, as torch's)."""
    if dims is None or isinstance(dims, int):
        return True
    if isinstance(dims, dict):
        return (
            isinstance(arg, dict)
            and set(dims) == set(arg)
            and all(_fits(a, b) for a, b in zip(dims.values(), arg.values()))
        )
    if isinstance(dims, tuple | list):
        return (
            isinstance(arg, tuple | list)
            and len(dims) == len(arg)
            and all(_fits(a, b) for a, b in zip(dims, arg))
        )
    return False


def _batch_size(leaves: list, dims: list, where: str) -> int:
    sizes = [v.shape[d] for v, d in zip(leaves, dims) if d is not None]
    if not sizes:
        raise InvalidValue(
            f"{where}: at least one input must be a Tensor with a mapped dimension (in_dims "
            "is None for every input)"
        )
    if len(set(sizes)) > 1:
        raise InvalidValue(
            f"vmap: Expected all tensors to have the same size in the mapped dimension, "
            f"got sizes {sizes} for the mapped dimension"
        )
    return sizes[0]


def _stack_outputs(outs: list, out_dims: Any, name: str, size: int) -> Any:
    flats = [tree_flatten(o) for o in outs]
    first, rebuild = flats[0]
    if isinstance(out_dims, int) or out_dims is None:
        dims = [out_dims] * len(first)
    else:
        d_flat, _ = tree_flatten(out_dims)
        if len(d_flat) != len(first):
            raise InvalidValue(
                f"vmap({name}, ..., out_dims={out_dims!r})(<inputs>): out_dims is not "
                f"compatible with the structure of `outputs`. out_dims has structure "
                f"{_spec(out_dims)} but outputs has structure {_spec(outs[0])}."
            )
        dims = d_flat
    stacked = []
    for k, d in enumerate(dims):
        items = [f[k] for f, _ in flats]
        if d is None:  # an output that must not vary over the batch, as torch checks
            if isinstance(items[0], Tensor) and any(not _same(items[0], o) for o in items[1:]):
                raise InvalidValue(
                    f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim "
                    "is None (out_dims is None for an output that differs between batch "
                    "entries: give it an out_dim)"
                )
            stacked.append(items[0])
            continue
        if not isinstance(items[0], Tensor):
            raise _NotATensor(
                f"vmap({name}, ...): func must only return Tensors, got type "
                f"{type(items[0])}. Did you mean to set out_dims= to None for output?"
            )
        nd = items[0].ndim + 1
        if not -nd <= d < nd:
            raise OutOfRange(
                f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but "
                f"got {d})"
            )
        if size == 0:
            shape = list(items[0].shape)
            shape.insert(d % nd, 0)
            stacked.append(items[0].new_zeros(tuple(shape)))
            continue
        stacked.append(stack(items, d % nd))
    return rebuild(stacked)


class _NotATensor(InvalidType, ValueError):
    """vmap's output that is not a tensor: torch's ValueError (and a TypeError)."""


def _same(a: Tensor, b: Any) -> bool:
    if not isinstance(b, Tensor) or tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        return False
    x, y = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    return bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))


# ------------------------------------------------------------------ modules


def stack_module_state(models: Any) -> tuple[dict, dict]:
    """The parameters and buffers of models of one architecture, each stacked along a new
    first dim (for :func:`vmap` over an ensemble with :func:`functional_call`): new leaves,
    the parameters requiring grad as the originals do."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if any(m.training != models[0].training for m in models):
        raise RuntimeError(
            "stack_module_state: Expected all models to have the same training/eval mode."
        )
    if any(type(m) is not type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named: Callable[[Any], Any], grads: bool) -> dict:
        out = {}
        for name, first in named(models[0]):
            parts = [dict(named(m))[name] for m in models]
            if grads and any(p.requires_grad != first.requires_grad for p in parts):
                raise RuntimeError(
                    f"Expected {name} from each model to have the same .requires_grad"
                )
            parts = [p.detach() for p in parts]
            t = stack(parts).detach()
            out[name] = t.requires_grad_(first.requires_grad) if grads else t
        return out

    return (
        stacked(lambda m: m.named_parameters(), True),
        stacked(lambda m: m.named_buffers(), False),
    )


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Any,
    args: Any = None,
    kwargs: dict | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """``module(*args, **kwargs)`` with the given tensors in place of its parameters and
    buffers (by state-dict name; several dicts are merged), the module left as it was."""
    from darklib.nn.utils.stateless import functional_call as call

    given = parameter_and_buffer_dicts
    if isinstance(given, tuple | list):  # several dicts (params, buffers): one, no clashes
        for d in given:
            if not isinstance(d, dict):
                raise InvalidValue(
                    "Expected all elements of parameter_and_buffer_dicts to be dictionaries, "
                    f"but got {type(d)}"
                )
        seen: dict = {}  # every name, in order of first appearance: how many dicts hold it
        for d in given:
            for k in d:
                seen[k] = seen.get(k, 0) + 1
        clash = [k for k, n in seen.items() if n > 1]
        if clash:
            raise InvalidValue(
                f"{clash} appeared in multiple dictionaries; behavior of functional call is "
                "ambiguous"
            )
        merged: dict = {}
        for d in given:
            merged.update(d)
        given = merged
    elif not isinstance(given, dict):
        raise InvalidValue(
            "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but "
            f"got {type(given)}"
        )
    return call(module, given, args, kwargs, tie_weights=tie_weights, strict=strict)
