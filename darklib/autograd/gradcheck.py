"""``darklib.autograd.gradcheck`` and ``gradgradcheck``: analytical gradients against
finite differences, as ``torch.autograd.gradcheck`` (its slow mode).

The numerical Jacobian perturbs each element of each input that requires grad by
``+-eps`` in place and takes central differences of every floating-point output; the
analytical one is read off backward, one unit ``grad_output`` per output element, twice
(the two must agree within ``nondet_tol``: backward is reentrant). They must agree within
``atol + rtol * |numerical|``, element by element (``allclose``). Run it in float64: the
inputs that require grad get a warning otherwise, as in torch. ``gradgradcheck`` runs the
same check on the gradients themselves (computed with ``create_graph=True``).

darklib has no forward-mode AD, so ``check_forward_ad``, ``check_batched_forward_grad``
and ``check_fwd_over_rev`` are refused; ``fast_mode=True`` runs the full (slow) check,
which is stricter.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import autograd
from darklib.backend import get_xp, to_numpy
from darklib.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """Error raised by :func:`gradcheck` and :func:`gradgradcheck`."""


def _as_tuple(x: Any) -> tuple:
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _is_float(t: Any) -> bool:
    return isinstance(t, Tensor) and t.array.dtype.kind in "fc"


def _differentiable_outputs(x: Any) -> tuple:
    return tuple(o for o in _as_tuple(x) if isinstance(o, Tensor) and o.requires_grad)


def _check_inputs(tupled_inputs: tuple) -> None:
    any_grad = False
    for idx, inp in enumerate(tupled_inputs):
        if isinstance(inp, Tensor) and inp.requires_grad:
            if inp.array.dtype != np.float64:
                warnings.warn(
                    f"Input #{idx} requires gradient and is not a double precision floating "
                    "point or complex. This check will likely fail if all the inputs are not "
                    "of double precision floating point or complex. ",
                    stacklevel=4,
                )
            if not all(st > 0 or sz <= 1 for st, sz in zip(inp.stride(), inp.shape)):
                raise RuntimeError(
                    f"The {idx}th input has a dimension with stride 0. gradcheck only supports "
                    "inputs that are non-overlapping to be able to compute the numerical "
                    "gradients correctly. You should call .contiguous on the input before "
                    "passing it to gradcheck."
                )
            any_grad = True
    if not any_grad:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of "
            "them have requires_grad=True."
        )


def _outputs_now(func: Callable, inputs: tuple) -> list:
    """The floating-point outputs of ``func(*inputs)`` as host arrays (copies: an output
    that views an input must not follow the next perturbation)."""
    return [to_numpy(o.array).copy() for o in _as_tuple(func(*inputs)) if _is_float(o)]


def _numerical_jacobian(func: Callable, inputs: tuple, eps: float) -> list:
    """Per input that requires grad, per floating-point output: the (input numel,
    output numel) Jacobian by central differences, on the host."""
    out = []
    for inp in inputs:
        if not (isinstance(inp, Tensor) and inp.requires_grad):
            continue
        arr = inp.array
        cols: list[list] = []
        for flat in range(arr.size):
            idx = np.unravel_index(flat, arr.shape)
            orig = arr[idx].copy()
            arr[idx] = orig - eps
            below = _outputs_now(func, inputs)
            arr[idx] = orig + eps
            above = _outputs_now(func, inputs)
            arr[idx] = orig
            for a, b in zip(below, above):
                if a.shape != b.shape or a.dtype != b.dtype:
                    raise AssertionError(
                        "Expected `func` to return outputs with the same shape and dtype when "
                        f"inputs are perturbed on index {idx} by {eps}, but got: {a.shape} "
                        f"{a.dtype} and {b.shape} {b.dtype}."
                    )
            cols.append([((b - a) / (2 * eps)).reshape(-1) for a, b in zip(below, above)])
        n_out = len(cols[0]) if cols else len(_outputs_now(func, inputs))
        per_output = []
        for k in range(n_out):
            if cols:
                per_output.append(np.stack([c[k] for c in cols]))
            else:  # an empty input: no rows
                size = _outputs_now(func, inputs)[k].size
                per_output.append(np.zeros((0, size)))
        out.append(per_output)
    return out


def _analytical_jacobian(
    inputs: tuple, output: Tensor, nondet_tol: float, check_grad_dtypes: bool
) -> list:
    """Per input that requires grad: the (input numel, output numel) Jacobian from
    backward (one unit grad_output per output element), checked for reentrancy."""
    diff_inputs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    xp = get_xp(output.array)

    def rows() -> tuple[list, bool, bool]:
        jac = [np.zeros((t.numel(), output.numel()), t.array.dtype) for t in diff_inputs]
        sizes_ok = types_ok = True
        for j in range(output.numel()):
            unit = xp.zeros(output.numel(), output.array.dtype)
            unit[j] = 1
            grads = autograd.grad(
                output,
                diff_inputs,
                Tensor._wrap(unit.reshape(output.shape)),
                retain_graph=True,
                allow_unused=True,
            )
            for k, (g, t) in enumerate(zip(grads, diff_inputs)):
                if g is None:
                    continue
                if g.shape != t.shape:
                    sizes_ok = False
                    continue
                if g.dtype != t.dtype:
                    types_ok = False
                jac[k][:, j] = to_numpy(g.array).reshape(-1)
        return jac, sizes_ok, types_ok

    first, sizes_ok, types_ok = rows()
    second, _, _ = rows()
    if not types_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    for a, b in zip(first, second):
        if a.size and np.abs(a - b).max() > nondet_tol:
            raise GradcheckError(
                "Backward is not reentrant, i.e., running backward with same input and "
                "grad_output multiple times gives different values, although analytical "
                "gradient matches numerical gradient. The tolerance for nondeterminism was "
                f"{nondet_tol}."
            )
    return first


def _allclose(a: np.ndarray, n: np.ndarray, rtol: float, atol: float) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - n) <= atol + rtol * np.abs(n)))


def _mismatch(analytical: np.ndarray, numerical: np.ndarray, i: int, j: int) -> str:
    return (
        f"Jacobian mismatch for output {i:d} with respect to input {j:d},\n"
        f"numerical:{Tensor._wrap(numerical)!r}\nanalytical:{Tensor._wrap(analytical)!r}\n"
    )


def _slow_gradcheck(
    func: Callable,
    func_out: Any,
    inputs: tuple,
    outputs: tuple,
    eps: float,
    rtol: float,
    atol: float,
    check_grad_dtypes: bool,
    nondet_tol: float,
) -> None:
    numerical = _numerical_jacobian(func, inputs, eps)  # [input][float output]
    if not outputs:
        for per_output in numerical:
            for jac in per_output:
                if np.any(jac != 0):
                    raise GradcheckError("Numerical gradient for function expected to be zero")
        return
    float_outs = [o for o in _as_tuple(func_out) if _is_float(o)]
    by_output = list(zip(*numerical)) if numerical else []
    numerical_diff = [nj for o, nj in zip(float_outs, by_output) if o.requires_grad]
    for i, o in enumerate(outputs):
        analytical = _analytical_jacobian(inputs, o, nondet_tol, check_grad_dtypes)
        for j, (a, n) in enumerate(zip(analytical, numerical_diff[i])):
            if not _allclose(a, n, rtol, atol):
                raise GradcheckError(_mismatch(a, n, i, j))


def _test_batched_grad(inputs: tuple, output: Tensor, output_idx: int, atol: float) -> None:
    """Gradients of every unit grad_output at once (``is_grads_batched``) against one
    backward per grad_output."""
    diff_inputs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    n = output.numel()
    if n == 0:
        return
    xp = get_xp(output.array)
    basis = Tensor._wrap(xp.eye(n, dtype=output.array.dtype).reshape((n, *output.shape)))
    batched = autograd.grad(
        output, diff_inputs, basis, retain_graph=True, allow_unused=True, is_grads_batched=True
    )
    for b in range(n):
        single = autograd.grad(output, diff_inputs, basis[b], retain_graph=True, allow_unused=True)
        for k, (g, s) in enumerate(zip(batched, single)):
            if (g is None) != (s is None):
                raise GradcheckError(
                    f"While computing batched gradients for output {output_idx}, input {k}: "
                    "one of the batched and the single gradients is None"
                )
            if g is not None and not _allclose(
                to_numpy(g[b].array), to_numpy(s.array), 0.0, max(atol, 1e-12)
            ):
                raise GradcheckError(
                    f"While computing batched gradients, got: {g[b]!r}\nExpected: {s!r}\n"
                    f"(output {output_idx}, input {k}, batch entry {b})"
                )


def _test_backward_mul_by_grad_output(outputs: tuple, inputs: tuple) -> None:
    diff_inputs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not diff_inputs:
        raise GradcheckError("no Tensors requiring grad found in input")
    zeros = [Tensor._wrap(get_xp(o.array).zeros_like(o.array)) for o in outputs]
    grads = autograd.grad(list(outputs), diff_inputs, zeros, allow_unused=True)
    for gi, di in zip(grads, diff_inputs):
        if gi is None:
            continue
        if bool(get_xp(gi.array).any(gi.array != 0)):
            raise GradcheckError("backward not multiplied by grad_output")
        if gi.dtype != di.dtype:
            raise GradcheckError("grad is incorrect type")
        if gi.device != di.device:
            raise GradcheckError("grad is incorrect device")
        if gi.shape != di.shape:
            raise GradcheckError("grad is incorrect size")


def _no_forward_ad(what: str) -> None:
    raise NotImplementedError(
        f"gradcheck: {what}=True needs forward-mode AD, which darklib does not have; check "
        "the backward (reverse-mode) gradients instead"
    )


def gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Check the gradients of ``func`` at ``inputs`` (a tensor or a tuple; those that
    require grad are checked) against central finite differences of step ``eps``, as
    ``torch.autograd.gradcheck``: True when every Jacobian agrees within ``atol + rtol *
    |numerical|``; otherwise raises :class:`GradcheckError` naming the output and input
    with both Jacobians (or returns False with ``raise_exception=False``). Also checks
    that backward is reentrant (``nondet_tol``), multiplies by grad_output, and with
    ``check_batched_grad`` that batched gradients match single ones."""
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError(
            "Expected at least one of check_forward_ad or check_backward_ad to be True"
        )
    if check_batched_grad and not check_backward_ad:
        raise AssertionError(
            "Setting check_batched_grad=True requires check_backward_ad to be True"
        )
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError(
            "Setting check_batched_forward_grad=True requires check_forward_ad to be True"
        )
    if check_forward_ad:
        _no_forward_ad("check_forward_ad")
    if check_batched_forward_grad:
        _no_forward_ad("check_batched_forward_grad")
    try:
        tupled_inputs = _as_tuple(inputs)
        _check_inputs(tupled_inputs)
        with autograd.enable_grad():
            func_out = func(*tupled_inputs)
            outputs = _differentiable_outputs(func_out)
            _slow_gradcheck(
                func,
                func_out,
                tupled_inputs,
                outputs,
                eps,
                rtol,
                atol,
                check_grad_dtypes,
                nondet_tol,
            )
            if check_batched_grad:
                for i, o in enumerate(outputs):
                    _test_batched_grad(tupled_inputs, o, i, atol)
            if outputs:
                _test_backward_mul_by_grad_output(outputs, tupled_inputs)
            if check_undefined_grad and outputs:
                # darklib has no undefined gradients: zero ones must give zero (or no) grads
                _test_backward_mul_by_grad_output(
                    _differentiable_outputs(func(*tupled_inputs)), tupled_inputs
                )
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _make_grad_output(x: Tensor, noncontiguous: bool) -> Tensor:
    """Uniform values in [-1, 1) of ``x``'s shape and dtype (float64 for a non-float
    output), as torch.testing.make_tensor(low=-1, high=1); ``noncontiguous``: every other
    element of a twice-as-wide array, as make_tensor's."""
    from darklib import dtypes as _dt
    from darklib.creation import rand

    dtype = x.dtype if x.array.dtype.kind in "fc" else _dt.float64
    arr = rand(*x.shape, dtype=dtype, device=x.device).array * 2 - 1
    if noncontiguous and arr.ndim and arr.size:
        arr = get_xp(arr).repeat(arr, 2, axis=-1)[..., ::2]
    return Tensor._wrap(arr).requires_grad_(True)


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """:func:`gradcheck` of the gradients of ``func`` (computed with
    ``create_graph=True``) with respect to the inputs and to ``grad_outputs`` (random
    in [-1, 1) when not given, as torch), i.e. of the second derivatives."""
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError(
            "Expected at least one of check_fwd_over_rev or check_rev_over_rev to be True"
        )
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError(
            "Setting check_undefined_grad=True requires check_rev_over_rev to be True"
        )
    if check_batched_grad and not check_rev_over_rev:
        raise AssertionError(
            "Setting check_batched_grad=True requires check_rev_over_rev to be True"
        )
    if check_fwd_over_rev:
        _no_forward_ad("check_fwd_over_rev")
    tupled_inputs = _as_tuple(inputs)
    if grad_outputs is None:
        with autograd.enable_grad():
            outputs = _differentiable_outputs(func(*tupled_inputs))
        tupled_grad_outputs = tuple(
            _make_grad_output(x, gen_non_contig_grad_outputs) for x in outputs
        )
    else:
        tupled_grad_outputs = _as_tuple(grad_outputs)
    num_outputs = len(tupled_grad_outputs)
    diff_input_args_indices = {
        i for i, x in enumerate(tupled_inputs) if isinstance(x, Tensor) and x.requires_grad
    }
    diff_grad_output_indices = {i for i, x in enumerate(tupled_grad_outputs) if x.requires_grad}

    def new_func(*args: Any) -> tuple:
        input_args = tuple(
            x.requires_grad_() if i in diff_input_args_indices else x
            for i, x in enumerate(args[:-num_outputs] if num_outputs else args)
        )
        outputs = _differentiable_outputs(func(*input_args))
        grad_outs = tuple(
            x.requires_grad_() if i in diff_grad_output_indices else x
            for i, x in enumerate(args[-num_outputs:] if num_outputs else ())
        )
        diff_input_args = [x for i, x in enumerate(input_args) if i in diff_input_args_indices]
        grad_inputs = autograd.grad(
            list(outputs), diff_input_args, list(grad_outs), create_graph=True, allow_unused=True
        )
        return tuple(g for g in grad_inputs if g is not None)

    return gradcheck(
        new_func,
        tupled_inputs + tupled_grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        check_undefined_grad=check_undefined_grad,
        check_grad_dtypes=check_grad_dtypes,
        check_batched_grad=check_batched_grad,
        fast_mode=fast_mode,
        check_forward_ad=check_fwd_over_rev,
        check_backward_ad=check_rev_over_rev,
        masked=masked,
    )
