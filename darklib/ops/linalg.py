"""Matrix products: matmul (with NumPy/PyTorch batching and 1-D rules), linear, bilinear."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.autograd import Function
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.kernels import parallel as par
from darklib.ops._promote import same_dtype
from darklib.tensor import Tensor


def _swap(x):
    return x.swapaxes(-1, -2)


def _matmul(a, b):
    """a @ b; on the CPU over darklib's threads (:func:`darklib.kernels.parallel.matmul`)."""
    xp = get_xp(a)
    return par.matmul(a, b) if xp is np else xp.matmul(a, b)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        ctx.save_for_backward(a2, b2)
        ctx.shapes = (a.shape, b.shape)
        out = _matmul(a2, b2)
        if a.ndim == 1:
            out = out[..., 0, :]
        if b.ndim == 1:
            out = out[..., 0]
        return out

    @staticmethod
    def backward(ctx, g):
        a2, b2 = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        if len(b_shape) == 1:
            g = g[..., None]
        if len(a_shape) == 1:
            g = g[..., None, :]
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = _matmul(g, _swap(b2))
            if len(a_shape) == 1:
                ga = ga[..., 0, :]
        if ctx.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # (batch..., n, k) @ (k, m): one GEMM over the folded batch, not a sum of many
                gb = _matmul(_rows(a2).T, _rows(g))
            else:
                gb = _matmul(_swap(a2), g)
            if len(b_shape) == 1:
                gb = gb[..., 0]
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a2, b2 = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        # the saved operands as tensors of the inputs' own shapes, then as matrices
        a = ctx.lift(a2.reshape(a_shape), 0)
        b = ctx.lift(b2.reshape(b_shape), 1)
        a = a.unsqueeze(0) if len(a_shape) == 1 else a
        b = b.unsqueeze(1) if len(b_shape) == 1 else b
        if len(b_shape) == 1:
            g = g.unsqueeze(-1)
        if len(a_shape) == 1:
            g = g.unsqueeze(-2)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = g @ b.transpose(-1, -2)
            ga = ga.squeeze(-2) if len(a_shape) == 1 else ga
        if ctx.needs_input_grad[1]:
            gb = a.transpose(-1, -2) @ g
            gb = gb.squeeze(-1) if len(b_shape) == 1 else gb
        return ga, gb


def _rows(a: Any) -> Any:
    """``a`` as a matrix of its last axis' rows: (prod(leading), last). Explicit sizes, as
    reshape(-1, 0) of an empty array is ambiguous."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


@autocasts("matmul")
def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules: 1-D operands are vectors, leading dims broadcast.

    Example::

        >>> dl.randn(8, 3, 4) @ dl.randn(4, 5)   # shape (8, 3, 5)
    """
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise InvalidType("matmul: both operands must be tensors")
    same_dtype("matmul", "input other", input, other)
    if input.array.dtype == bool and input.array.size and other.array.size:
        raise RuntimeError("matmul: not implemented for bool tensors; convert them with .int()")
    a, b = input, other
    sa, sb = tuple(a.shape), tuple(b.shape)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got {sa} @ {sb}")
    ka = sa[-1]
    kb = sb[0] if b.ndim == 1 else sb[-2]
    if ka != kb:
        raise RuntimeError(f"matmul: {sa} @ {sb}: inner dimensions {ka} and {kb} differ")
    if a.ndim > 2 or b.ndim > 2:
        import numpy as np

        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise RuntimeError(
                f"matmul: {sa} @ {sb}: batch dimensions {sa[:-2]} and {sb[:-2]} do not broadcast"
            ) from None
    return MatMul.apply(a, b)


@autocasts("mm")
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(
            f"mm: expected 2-D tensors, got {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


@autocasts("bmm")
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(
            f"bmm: expected 3-D tensors with equal batch size, got "
            f"{tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


class Linear(Function):
    """y = x W^T + b as one GEMM forward and one per gradient (x folded to 2-D)."""

    @staticmethod
    def forward(ctx, x, w, b):
        x2 = _rows(x)
        ctx.save_for_backward(x2, w)
        ctx.x_shape = x.shape
        out = _matmul(x2, w.T)
        if b is not None:
            out += b
        return out.reshape(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved_tensors
        g2 = _rows(g)
        nx, nw, nb = ctx.needs_input_grad
        gx = _matmul(g2, w).reshape(ctx.x_shape) if nx else None
        gw = _matmul(g2.T, x2) if nw else None
        gb = g2.sum(axis=0) if nb else None
        return gx, gw, gb

    @staticmethod
    def backward_graph(ctx, g):
        x2, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])
        x = ctx.lift(x2.reshape(ctx.x_shape), 0)
        gx = (g2 @ ctx.lift(w, 1)).reshape(ctx.x_shape) if nx else None
        gw = g2.t() @ x.reshape(-1, x.shape[-1]) if nw else None
        gb = g2.sum(0) if nb else None
        return gx, gw, gb


def _tensor_args(op: str, **args: Any) -> None:
    """Refuse, by name, an argument that is not a Tensor (None passes: optional ones)."""
    for name, v in args.items():
        if v is not None and not isinstance(v, Tensor):
            raise InvalidType(f"{op}(): argument '{name}' must be a Tensor, got {type(v).__name__}")


@autocasts("linear")
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``. Shape: input (*, in), weight (out, in), bias (out,) or
    any shape that broadcasts to the output's, as torch; a 1-D weight (in,) without bias
    gives (*,)."""
    _tensor_args("linear", input=input, weight=weight, bias=bias)
    if input.ndim == 0 or weight.ndim not in (1, 2) or (weight.ndim == 1 and bias is not None):
        raise RuntimeError(
            f"linear: expected input (*, in_features) and weight (out, in) (or (in,) without "
            f"bias), got {tuple(input.shape)} and {tuple(weight.shape)}"
        )
    if input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(
            f"linear: input {tuple(input.shape)} has {input.shape[-1]} features but weight "
            f"{tuple(weight.shape)} expects {weight.shape[-1]}"
        )
    same_dtype("linear", "input weight bias", input, weight, bias)
    if weight.ndim == 1:
        return matmul(input, weight)
    if bias is None or tuple(bias.shape) == (weight.shape[0],):
        return Linear.apply(input, weight, bias)
    out_shape = (*input.shape[:-1], weight.shape[0])
    try:
        fits = np.broadcast_shapes(out_shape, tuple(bias.shape)) == out_shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(
            f"linear: bias of shape {tuple(bias.shape)} does not broadcast to the output "
            f"{out_shape} ({weight.shape[0]} output features)"
        )
    return Linear.apply(input, weight, None) + bias


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[..., o] = input1 @ weight[o] @ input2 + bias[o]``.

    Shape: input1 (*, in1), input2 (*, in2) with the same leading dimensions, weight
    (out, in1, in2), bias (out,); output (*, out). Computed as one GEMM of ``input1``
    with the weight laid out (out * in2, in1), then a product with ``input2`` summed over
    in2, so gradients come from those ops.
    """
    _tensor_args("bilinear", input1=input1, input2=input2, weight=weight, bias=bias)
    if input1.ndim != input2.ndim:
        raise RuntimeError(
            f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}"
        )
    for d in range(input1.ndim - 1):
        if input1.shape[d] != input2.shape[d]:
            raise RuntimeError(
                f"bilinear(): input batch dimensions do not match at dim {d}: got "
                f"{input1.shape[d]} and {input2.shape[d]}"
            )
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be (out, in1, in2), got {tuple(weight.shape)}")
    out, in1, in2 = weight.shape
    if input1.ndim == 0 or input1.shape[-1] != in1:
        got = input1.shape[-1] if input1.ndim else 0
        raise RuntimeError(
            f"bilinear(): input1 size does not match weight size: got {got} but expected {in1}"
        )
    if input2.shape[-1] != in2:
        raise RuntimeError(
            f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
            f"expected {in2}"
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != out):
        got = bias.shape[-1] if bias.ndim else 0
        raise RuntimeError(
            f"bilinear(): bias size does not match weight size: got {got} but expected {out}"
        )
    same_dtype("bilinear", "input1 input2 weight bias", input1, input2, weight, bias)
    w = weight.permute(0, 2, 1).reshape(out * in2, in1)
    t = linear(input1, w).reshape(*input1.shape[:-1], out, in2)
    y = (t * input2.unsqueeze(-2)).sum(-1)
    return y if bias is None else y + bias


@autocasts("dot")
def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors."""
    if input.ndim != 1 or other.ndim != 1 or input.shape != other.shape:
        raise RuntimeError(
            f"dot: expected two 1-D tensors of equal size, got {tuple(input.shape)} and "
            f"{tuple(other.shape)}"
        )
    return matmul(input, other)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-D tensors of one dtype, conjugating the first (darklib's
    tensors are real, so this is :func:`dot`), as ``torch.vdot``."""
    return dot(input, other)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum of products over the last dimension of both: shape ``input.shape[:-1] +
    other.shape[:-1]`` (a product if either is 0-d), as ``torch.inner``."""
    from darklib.ops.elementwise import mul
    from darklib.ops.shape import reshape

    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise InvalidType("inner: both operands must be tensors")
    if input.ndim == 0 or other.ndim == 0:
        return mul(input, other)
    k = input.shape[-1]
    if other.shape[-1] != k:
        raise RuntimeError(
            f"inner: {tuple(input.shape)} and {tuple(other.shape)}: last dimensions "
            f"{k} and {other.shape[-1]} differ"
        )
    rows = matmul(
        reshape(input, math.prod(input.shape[:-1]), k),
        reshape(other, math.prod(other.shape[:-1]), k).mT,
    )
    return reshape(rows, (*input.shape[:-1], *other.shape[:-1]))


@autocasts("mv")
def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix (n, m) times vector (m,)."""
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(
            f"mv: expected a 2-D matrix and a 1-D vector, got {tuple(input.shape)} and "
            f"{tuple(vec.shape)}"
        )
    return matmul(input, vec)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors: shape (n, m)."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(
            f"outer: expected two 1-D tensors, got {tuple(input.shape)} and {tuple(vec2.shape)}"
        )
    from darklib.ops.elementwise import mul

    return mul(input.reshape(-1, 1), vec2.reshape(1, -1))


ger = outer


def scaled_sum(op: str, input: Tensor, prod: Tensor, beta: Any, alpha: Any) -> Tensor:
    """``beta * input + alpha * prod`` as torch's add* ops (addmm, addmv, addr, addbmm,
    baddbmm): ``input`` must expand to ``prod``'s shape; ``beta=0`` ignores its values (NaN
    and inf included) but keeps it in the graph with a zero gradient; integer tensors take
    integer factors (truncated, as torch casts them); bool tensors combine with or/and."""
    from darklib.ops import elementwise as E

    shape = tuple(prod.shape)
    try:
        fits = np.broadcast_shapes(tuple(input.shape), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise InvalidValue(
            f"{op}(): input of shape {list(input.shape)} cannot be expanded to the shape "
            f"{list(shape)} of the product"
        )
    xp = get_xp(prod.array)
    kind = prod.array.dtype.kind
    if kind == "b":
        res = prod if alpha else Tensor._wrap(xp.zeros(shape, bool))
        return E.logical_or(res, input) if beta else res
    if kind in "iub" and op == "addr":  # (torch's addmm/addmv/addbmm truncate instead)
        for name, v in (("beta", beta), ("alpha", alpha)):
            if isinstance(v, float):
                raise InvalidType(
                    f"{op}(): For integral input tensors, argument {name} must not be a "
                    f"floating point number (got {v})"
                )
    if kind in "iu":
        beta, alpha = int(beta), int(alpha)
    if alpha != 1:
        prod = E.mul(prod, alpha)
    if beta == 0:
        term = E.where(Tensor._wrap(xp.zeros(tuple(input.shape), bool)), input, 0)
    else:
        term = input if beta == 1 else E.mul(input, beta)
    return E.add(prod, term)


@autocasts("addmm")
def addmm(
    input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: float = 1, alpha: float = 1
) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)``; ``input`` expands to the product's shape,
    and ``beta=0`` ignores its values (NaN and inf included), as torch."""
    same_dtype("addmm", "input mat1 mat2", input, mat1, mat2)
    return scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


@autocasts("baddbmm")
def baddbmm(
    input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: float = 1, alpha: float = 1
) -> Tensor:
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices (``input`` and
    ``beta`` as in :func:`addmm`)."""
    same_dtype("baddbmm", "input batch1 batch2", input, batch1, batch2)
    return scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


# ------------------------------------------------------------------ einsum

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse_einsum(equation: str, ndims: list[int]) -> tuple[list[str], str]:
    """Explicit subscripts (ellipses spelled out, output given) for each operand."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(ndims):
        raise RuntimeError(
            f"einsum(): the equation {equation!r} has {len(subs)} operands, got {len(ndims)}"
        )
    used = set(eq) - set(".,->")
    free = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for s, nd in zip(subs, ndims):
        if "..." in s:
            n_ell = max(n_ell, nd - (len(s) - 3))
    ell = "".join(free[:n_ell])
    out_subs = []
    for s, nd in zip(subs, ndims):
        if "..." in s:
            k = nd - (len(s) - 3)
            s = s.replace("...", ell[n_ell - k :] if k else "")
        if len(s) != nd:
            raise RuntimeError(
                f"einsum(): subscripts {s!r} do not match an operand with {nd} dimensions"
            )
        out_subs.append(s)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = {c: "".join(out_subs).count(c) for c in set("".join(out_subs))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_subs, out


def _einsum(xp: Any, eq: str, *ops: Any) -> Any:
    """``xp.einsum``, with zeros where an operand is empty: NumPy's einsum sometimes leaves
    a sum over an index of length 0 uninitialised (NaN or garbage seen in tests)."""
    out = xp.einsum(eq, *ops)
    if any(o.size == 0 for o in ops) and out.size:
        out = xp.zeros_like(out)
    return out


class Einsum(Function):
    @staticmethod
    def forward(ctx, spec, *ops):
        subs, out = spec
        ctx.spec = spec
        ctx.save_for_backward(*ops)
        xp = get_xp(ops[0])
        res = _einsum(xp, ",".join(subs) + "->" + out, *ops)
        # one operand permuted or on a diagonal comes back as a view of it: a copy here
        # (torch's is a view; an unregistered one would let writes bypass autograd)
        return res.copy() if xp.may_share_memory(res, ops[0]) else res

    @staticmethod
    def backward(ctx, g):
        ops = ctx.saved_tensors
        subs, out = ctx.spec
        xp = get_xp(g)
        grads: list = [None]
        sizes = {c: n for t, o in zip(subs, ops) for c, n in zip(t, o.shape) if n != 1}
        for i, (s, x) in enumerate(zip(subs, ops)):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            u = "".join(dict.fromkeys(s))  # letters once each (a repeat is a diagonal)
            others = [(t, o) for j, (t, o) in enumerate(zip(subs, ops)) if j != i]
            avail = set(out).union(*[set(t) for t, _ in others])
            target = "".join(c for c in u if c in avail)
            eq = ",".join([out] + [t for t, _ in others]) + "->" + target
            r = _einsum(xp, eq, g, *[o for _, o in others])
            # letters summed away by this operand alone: broadcast the gradient back
            r = r.reshape([r.shape[target.index(c)] if c in target else 1 for c in u])
            r = xp.broadcast_to(r, tuple(sizes.get(c, 1) for c in u))
            if len(u) != len(s):  # write onto the diagonal the repeated letters select
                grid = [
                    xp.arange(x.shape[k]).reshape(
                        [-1 if j == u.index(c) else 1 for j in range(len(u))]
                    )
                    for k, c in enumerate(s)
                ]
                gx = xp.zeros(x.shape, r.dtype)
                gx[tuple(grid)] = r
                r = gx
            summed = tuple(k for k in range(x.ndim) if x.shape[k] == 1 and r.shape[k] != 1)
            if summed:
                r = r.sum(axis=summed, keepdims=True)
            grads.append(r)
        return tuple(grads)

    @staticmethod
    def backward_graph(ctx, g):
        """(create_graph) ``backward``'s einsums, on tensors: each operand's gradient is
        the einsum of g with the other operands (lifted onto their graphs)."""
        ops = ctx.saved_tensors
        subs, out = ctx.spec
        lifted = [ctx.lift(o, i + 1) for i, o in enumerate(ops)]
        sizes = {c: n for t, o in zip(subs, ops) for c, n in zip(t, o.shape) if n != 1}
        grads: list = [None]
        for i, (s, x) in enumerate(zip(subs, ops)):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            if len(set(s)) != len(s):
                raise NotImplementedError(
                    "create_graph=True: darklib cannot differentiate the backward of einsum "
                    f"with a repeated index in one operand ({s!r}) yet"
                )
            others = [(t, o) for j, (t, o) in enumerate(zip(subs, lifted)) if j != i]
            avail = set(out).union(*[set(t) for t, _ in others])
            target = "".join(c for c in s if c in avail)
            r = einsum(
                ",".join([out] + [t for t, _ in others]) + "->" + target, g, *[o for _, o in others]
            )
            r = r.reshape([r.shape[target.index(c)] if c in target else 1 for c in s])
            r = r.expand(tuple(sizes.get(c, 1) for c in s))
            summed = tuple(k for k in range(x.ndim) if x.shape[k] == 1 and r.shape[k] != 1)
            grads.append(r.sum(summed, keepdim=True) if summed else r)
        return tuple(grads)


def _sublist_equation(args: tuple) -> tuple[str, tuple]:
    """torch's sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as an equation and its
    operands: subscripts are ints in [0, 52) (letters a-z, A-Z) or Ellipsis."""

    def letters(sub: Any, what: str) -> str:
        if not isinstance(sub, list | tuple):
            raise InvalidType(
                f"einsum(): {what} must be a list of ints or Ellipsis, got {type(sub).__name__}"
            )
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, int) and not isinstance(s, bool) and 0 <= s < len(_LETTERS):
                out.append(_LETTERS[s])
            else:
                raise InvalidValue(
                    f"einsum(): subscript {s!r} in {what} is not an int in [0, 52) or Ellipsis"
                )
        return "".join(out)

    pairs = len(args) // 2
    ops = args[0 : 2 * pairs : 2]
    subs = [letters(args[2 * i + 1], f"the sublist of operand {i}") for i in range(pairs)]
    equation = ",".join(subs)
    if len(args) % 2:
        equation += "->" + letters(args[-1], "the output sublist")
    return equation, tuple(ops)


@autocasts("einsum")
def einsum(equation: Any, *operands: Any) -> Tensor:
    """Einstein summation, as ``torch.einsum('ij,jk->ik', a, b)`` (ellipses allowed), or in
    torch's sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.

    Differentiable in every operand (a repeated letter, as in ``'ii->i'``, is a diagonal).
    """
    if isinstance(equation, Tensor):
        equation, operands = _sublist_equation((equation, *operands))
    elif not isinstance(equation, str):
        raise InvalidType(
            f"einsum(): expected an equation string or a tensor (sublist form), got "
            f"{type(equation).__name__}"
        )
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    ops = list(operands)
    for i, o in enumerate(ops):
        if not isinstance(o, Tensor):
            raise InvalidType(f"einsum(): operand {i} is a {type(o).__name__}, not a Tensor")
    same_dtype("einsum", " ".join(f"operand{i}" for i in range(len(ops))), *ops)
    spec = _parse_einsum(equation, [o.ndim for o in ops])
    seen: dict[str, tuple[int, int]] = {}  # letter -> (size other than 1, operand)
    for i, (sub, o) in enumerate(zip(spec[0], ops)):
        for c, n in zip(sub, o.shape):
            if n == 1:
                continue
            if c in seen and seen[c][0] != n:
                what = f"subscript {c!r}" if c in equation else "an ellipsis ('...') dimension"
                raise InvalidValue(
                    f"einsum(): {equation!r}: {what} has size {n} for operand {i} "
                    f"(shape {tuple(o.shape)}) which does not broadcast with size "
                    f"{seen[c][0]} seen for operand {seen[c][1]} "
                    f"(shapes {[tuple(t.shape) for t in ops]})"
                )
            seen[c] = (n, i)
    try:
        return Einsum.apply(spec, *ops)
    except ValueError as e:
        shapes = [tuple(o.shape) for o in ops]
        raise RuntimeError(f"einsum(): {equation!r} with shapes {shapes}: {e}") from None


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:
    """The ``p``-norm of ``input - other``."""
    from darklib.ops.elementwise import check_broadcast, sub

    check_broadcast("dist", input, other)
    return sub(input, other).norm(p)


_CDIST_MODES = {
    "use_mm_for_euclid_dist_if_necessary": 0,
    "use_mm_for_euclid_dist": 1,
    "donot_use_mm_for_euclid_dist": 2,
}


def _sq_norms(x):
    xp = get_xp(x)
    return xp.einsum("...i,...i->...", x, x)[..., None]


class EuclidDistMM(Function):
    """p=2 distances as torch's ``_euclidean_dist``: one GEMM of ``[-2 x1, |x1|^2, 1]`` by
    ``[x2, 1, |x2|^2]``, clamped at 0, square-rooted (so with the GEMM's rounding, as
    torch). Its gradient is torch's too: two GEMMs, and 0 where a distance is 0."""

    @staticmethod
    def forward(ctx, x1, x2):
        xp = get_xp(x1)
        one1 = xp.ones((*x1.shape[:-1], 1), x1.dtype)
        one2 = xp.ones((*x2.shape[:-1], 1), x2.dtype)
        a = xp.concatenate([-2 * x1, _sq_norms(x1), one1], axis=-1)
        b = xp.concatenate([x2, one2, _sq_norms(x2)], axis=-1)
        out = _matmul(a, _swap(b))
        xp.maximum(out, 0, out=out)
        xp.sqrt(out, out=out)
        ctx.save_for_backward(x1, x2, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x1, x2, out = ctx.saved_tensors
        xp = get_xp(g)
        zero = out == 0
        ratio = g / xp.where(zero, 1, out).astype(out.dtype, copy=False)
        ratio[zero] = 0
        g1 = g2 = None
        if ctx.needs_input_grad[0]:
            g1 = x1 * ratio.sum(-1, keepdims=True) - _matmul(ratio, x2)
        if ctx.needs_input_grad[1]:
            g2 = x2 * ratio.sum(-2)[..., None] - _matmul(_swap(ratio), x1)
        return g1, g2

    @staticmethod
    def backward_graph(ctx, g):
        from darklib.ops.elementwise import where

        x1, x2, out = ctx.saved_tensors
        zero = Tensor._wrap(out == 0)
        ratio = where(zero, 0.0, g / where(zero, 1.0, ctx.lift_output(out)))
        a, b = ctx.lift(x1, 0), ctx.lift(x2, 1)
        g1 = g2 = None
        if ctx.needs_input_grad[0]:
            g1 = a * ratio.sum(-1, keepdim=True) - ratio @ b
        if ctx.needs_input_grad[1]:
            g2 = b * ratio.sum(-2).unsqueeze(-1) - ratio.transpose(-1, -2) @ a
        return g1, g2


@autocasts("cdist")
def cdist(
    x1: Tensor,
    x2: Tensor,
    p: float = 2.0,
    compute_mode: str = "use_mm_for_euclid_dist_if_necessary",
) -> Tensor:
    """Pairwise ``p``-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M),
    batch dims broadcast.

    For ``p=2`` torch's ``compute_mode`` picks the form: 'use_mm_for_euclid_dist' (and
    the default 'use_mm_for_euclid_dist_if_necessary' when P > 25 or R > 25) computes
    ``sqrt(|x1|^2 + |x2|^2 - 2 x1 x2^T)`` with one matrix product, fast but less exact for
    nearly equal rows; 'donot_use_mm_for_euclid_dist' takes the differences.

    Shape: (..., P, R).
    """
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            f"cdist: expected (..., P, M) and (..., R, M) with equal M, got "
            f"{tuple(x1.shape)} and {tuple(x2.shape)}"
        )
    mode = _CDIST_MODES.get(compute_mode) if isinstance(compute_mode, str) else None
    if mode is None:
        raise InvalidValue(f"{compute_mode} is not a valid value for compute_mode")
    from darklib.ops.elementwise import sub

    r1, r2 = x1.shape[-2], x2.shape[-2]
    mm = p == 2 and (mode == 1 or (mode == 0 and (r1 > 25 or r2 > 25)))
    a1, a2 = x1.array, x2.array
    if mm and a1.dtype == a2.dtype and a1.dtype.kind == "f" and a1.size and a2.size:
        return EuclidDistMM.apply(x1, x2)
    return sub(x1.unsqueeze(-2), x2.unsqueeze(-3)).norm(p, dim=-1)


# pdist: pairs whose squared distance is below 1/32 of |x_i|^2 + |x_j|^2 lose digits in
# the GEMM form; they are taken again from their differences, as torch computes them all
_PDIST_NEAR = 1 / 32
_PDIST_CHUNK = 1 << 20  # elements of (pairs, M) differences at once


def _chunks(idx: Any, m: int) -> Any:
    """``idx`` in pieces of at most ``_PDIST_CHUNK // m`` entries."""
    step = max(1, _PDIST_CHUNK // max(m, 1))
    return (idx[s : s + step] for s in range(0, idx.size, step))


class Pdist2(Function):
    """Euclidean distances of the pairs ``i < j`` of rows of an (N, M) array (NumPy),
    torch's values and gradient (0 at a zero distance): a GEMM for the pairs far apart
    relative to their norms, differences for the others, which a GEMM would round badly.
    """

    @staticmethod
    def forward(ctx, x):
        n = x.shape[0]
        i, j = np.triu_indices(n, 1)
        sq = _sq_norms(x)
        upper = np.triu(np.ones((n, n), bool), 1)  # (a mask gathers faster than i, j)
        both = (sq + sq.T)[upper]
        d2 = both - 2 * _matmul(x, x.T)[upper]
        near = np.flatnonzero(d2 < both * _PDIST_NEAR)
        for k in _chunks(near, x.shape[1]):
            diff = x[i[k]] - x[j[k]]
            d2[k] = np.einsum("ij,ij->i", diff, diff)
        out = np.sqrt(np.maximum(d2, 0, out=d2), out=d2).astype(x.dtype, copy=False)
        ctx.save_for_backward(x, out)
        ctx.near = near
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        n, m = x.shape
        i, j = np.triu_indices(n, 1)
        ratio = np.zeros_like(out)
        np.divide(g, out, out=ratio, where=out != 0)
        near = ctx.near
        far = ratio.copy()
        far[near] = 0
        r = np.zeros((n, n), x.dtype)
        r[i, j] = far
        r += r.T
        gx = x * r.sum(1, keepdims=True) - _matmul(r, x)
        for k in _chunks(near, m):
            part = ratio[k, None] * (x[i[k]] - x[j[k]])
            np.add.at(gx, i[k], part)
            np.subtract.at(gx, j[k], part)
        return gx

    @staticmethod
    def backward_graph(ctx, g):
        from darklib.autograd.higher_order import recompute
        from darklib.ops.reduction import norm

        x, _ = ctx.saved_tensors
        i, j = np.triu_indices(x.shape[0], 1)
        return recompute(ctx, g, lambda t: norm(t[i] - t[j], 2, -1), (x,))


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """p-norm distances between the rows of an (N, M) input, for every pair ``i < j`` in
    row-major order: shape (N * (N - 1) / 2,)."""
    from darklib.ops.reduction import norm

    if not isinstance(input, Tensor):
        raise InvalidType(f"pdist: expected a Tensor input, got {type(input).__name__}")
    x = input
    if x.ndim != 2:
        raise InvalidValue(f"pdist: expected a 2-D (N, M) input, got {tuple(x.shape)}")
    if x.array.dtype.kind != "f":
        raise InvalidType(f"pdist: expected a floating-point input, got {x.dtype}")
    if p < 0:
        raise InvalidValue(f"pdist: p must be non-negative, got {p}")
    if p == 2 and x.shape[0] > 1 and get_xp(x.array) is np and x.array.dtype.itemsize >= 4:
        return Pdist2.apply(x)
    i, j = np.triu_indices(x.shape[0], 1)
    return norm(x[i] - x[j], p, -1)
