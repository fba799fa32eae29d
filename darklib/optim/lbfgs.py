"""LBFGS: limited-memory BFGS over the flattened parameters, with an optional strong Wolfe
line search."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from darklib import autograd
from darklib.backend import get_xp, is_cuda_array
from darklib.optim.optimizer import Optimizer, _check_lr
from darklib.tensor import Tensor


class LBFGS(Optimizer):
    r"""L-BFGS (Nocedal), as PyTorch's: quasi-Newton steps from the last ``history_size``
    curvature pairs, over all parameters as one flat vector.

    Each :meth:`step` runs up to ``max_iter`` iterations and calls ``closure`` (which must
    re-evaluate the loss and call ``backward``) up to ``max_eval`` times. The direction comes
    from the two-loop recursion on the stored pairs :math:`s = x_{k+1} - x_k`,
    :math:`y = g_{k+1} - g_k` (a pair is kept only when :math:`y^\top s > 10^{-10}`), with
    the initial inverse Hessian :math:`(y^\top s / y^\top y) I`. Without a line search the
    step length is ``lr`` (the first iteration ever uses
    :math:`\min(1, 1/\lVert g\rVert_1)\,\text{lr}`); with ``line_search_fn="strong_wolfe"``
    it is searched from there by cubic interpolation until the strong Wolfe conditions hold
    (:math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9`). A step ends early when the largest gradient
    entry is at most ``tolerance_grad``, or when the step, the directional derivative or the
    change of the loss falls below ``tolerance_change``.

    Only one parameter group is supported, and every parameter must be on the same device.

    Args:
        params: tensors to optimize (a single group).
        lr: learning rate (the step length before any line search). Default: ``1``.
        max_iter: iterations per :meth:`step`. Default: ``20``.
        max_eval: closure evaluations per :meth:`step`. Default: ``max_iter * 5 // 4``.
        tolerance_grad: stop when ``max|g| <= tolerance_grad``. Default: ``1e-7``.
        tolerance_change: stop when the step or the loss changes less. Default: ``1e-9``.
        history_size: number of curvature pairs kept. Default: ``100``.
        line_search_fn: ``"strong_wolfe"`` or None. Default: None.

    State (kept under the first parameter, as torch's): ``func_evals`` and ``n_iter``
    (totals over all steps), ``d`` (the last direction), ``t`` (its step length),
    ``old_dirs`` / ``old_stps`` (the ``y`` and ``s`` vectors), ``ro`` (their
    :math:`1 / y^\top s`), ``H_diag``, ``prev_flat_grad``, ``prev_loss`` and ``al`` (the
    two-loop coefficients, ``history_size`` slots).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if isinstance(lr, Tensor):
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
            lr = lr.item()
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # ------------------------------------------------------------------ flat views
    def _flat_grad(self) -> Any:
        """All gradients as one new flat array (zeros for a parameter without one)."""
        parts = []
        for p in self._params:
            xp = get_xp(p.array)
            if p.grad is None:
                parts.append(xp.zeros(p.array.size, dtype=p.array.dtype))
            else:
                parts.append(p.grad.array.reshape(-1))
        return get_xp(parts[0]).concatenate(parts)

    def _move(self, t: Any, d: Any) -> None:
        """``params += t * d``, ``d`` split back into the parameters' shapes."""
        offset = 0
        for p in self._params:
            n = p.array.size
            p.array += t * d[offset : offset + n].reshape(p.array.shape)
            p._version += 1
            offset += n

    def _evaluate(self, closure: Callable[[], Any]) -> tuple[Any, float]:
        loss = self._eval_closure(closure)
        return loss, float(loss)

    # ------------------------------------------------------------------ stepping
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Perform one optimization step (up to ``max_iter`` L-BFGS iterations).

        Args:
            closure: re-evaluates the model with gradients enabled, calls ``backward`` and
                returns the loss. Required.

        Returns:
            the loss of the first evaluation.
        """
        if len(self.param_groups) != 1:
            raise AssertionError(
                f"Expected exactly one param_group, but got {len(self.param_groups)}"
            )
        with autograd.no_grad(), np.errstate(all="ignore"):  # inf/NaN silent, as torch
            return self._run(closure)

    def _run(self, closure: Callable[[], Any]) -> Any:
        group = self.param_groups[0]
        lr = group["lr"]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        line_search_fn = group["line_search_fn"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss, loss = self._evaluate(closure)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        xp = get_xp(g)
        if xp.abs(g).max() <= tol_grad:
            return orig_loss

        # fresh lists: a state dict taken earlier keeps its own history
        d, t = _raw(state.get("d")), _raw(state.get("t"))
        dirs = [_raw(v) for v in state.get("old_dirs", [])]
        stps = [_raw(v) for v in state.get("old_stps", [])]
        ro = [_raw(v) for v in state.get("ro", [])]
        h_diag = _raw(state.get("H_diag"))
        prev_g, prev_loss = _raw(state.get("prev_flat_grad")), state.get("prev_loss")
        al = [_raw(v) for v in state["al"]] if "al" in state else None

        it = 0
        while it < max_iter:
            it += 1
            state["n_iter"] += 1
            first = state["n_iter"] == 1
            if first:
                d = -g
                dirs, stps, ro, h_diag = [], [], [], 1
            else:
                y = g - prev_g
                s = d * t
                ys = xp.dot(y, s)
                if ys > 1e-10:  # keep only pairs of positive curvature
                    if len(dirs) == history_size:
                        del dirs[0], stps[0], ro[0]
                    dirs.append(y)
                    stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / xp.dot(y, y)
                if al is None:
                    al = [None] * history_size
                    state["al"] = al  # torch's key order: created inside the first loop
                d = _two_loop(-g, dirs, stps, ro, al, h_diag)
            prev_g, prev_loss = g, loss
            t = min(1.0, 1.0 / xp.abs(g).sum()) * lr if first else lr
            gtd = xp.dot(g, d)
            if gtd > -tol_change:  # not a descent direction
                break

            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                start = [p.array.copy() for p in self._params]

                def probe(step: Any, d: Any = d, start: list = start) -> tuple[float, Any]:
                    self._move(step, d)
                    f = self._evaluate(closure)[1]
                    grad = self._flat_grad()
                    for p, a in zip(self._params, start):
                        p.array[...] = a
                        p._version += 1
                    return f, grad

                # torch's LBFGS leaves the search's own tolerance_change (1e-9), not the
                # group's, to stop the zoom
                loss, g, t, used = _strong_wolfe(
                    probe, t, d, loss, g, gtd, _WOLFE_TOL_CHANGE, max_eval - evals
                )
                self._move(t, d)
                optimal = xp.abs(g).max() <= tol_grad
            else:
                self._move(t, d)
                used = 0
                optimal = False
                if it != max_iter:
                    loss = self._evaluate(closure)[1]
                    g = self._flat_grad()
                    optimal = xp.abs(g).max() <= tol_grad
                    used = 1
            evals += used
            state["func_evals"] += used

            if it == max_iter or evals >= max_eval or optimal:
                break
            if xp.abs(d * t).max() <= tol_change or abs(loss - prev_loss) < tol_change:
                break

        if al is not None:
            state["al"] = [_box(v) for v in al]
        state["d"] = _box(d)
        state["t"] = _box(t)
        state["old_dirs"] = [_box(v) for v in dirs]
        state["old_stps"] = [_box(v) for v in stps]
        state["ro"] = [_box(v) for v in ro]
        state["H_diag"] = _box(h_diag)
        state["prev_flat_grad"] = _box(prev_g)
        state["prev_loss"] = prev_loss
        return orig_loss


def _two_loop(q: Any, dirs: list, stps: list, ro: list, al: list, h_diag: Any) -> Any:
    """The L-BFGS direction ``H g`` for ``q = -g`` (overwritten), from the stored pairs.

    The coefficients of the first loop land in ``al``; they stay 0-d arrays (on the GPU too)
    so the vector updates never wait for the host."""
    for i in range(len(dirs) - 1, -1, -1):
        al[i] = stps[i].dot(q) * ro[i]
        q -= al[i] * dirs[i]
    r = q * h_diag
    for i in range(len(dirs)):
        beta = dirs[i].dot(r) * ro[i]
        r += (al[i] - beta) * stps[i]
    return r


def _cubic_min(a: tuple, b: tuple, lo: Any = None, hi: Any = None) -> Any:
    """The minimiser of the cubic through points ``(t, f, f')`` ``a`` and ``b``, clamped
    to ``[lo, hi]`` (by default the interval between them); the interval's midpoint when
    the cubic has no minimum."""
    if b[0] < a[0]:
        a, b = b, a  # a left of b
    (ta, fa, ga), (tb, fb, gb) = a, b
    if lo is None:
        lo, hi = ta, tb
    # Nocedal and Wright (3.59)
    d1 = ga + gb - 3 * (fa - fb) / (ta - tb)
    disc = d1**2 - ga * gb
    if not disc >= 0:
        return (lo + hi) / 2.0
    d2 = get_xp(disc).sqrt(disc)
    t = tb - (tb - ta) * ((gb + d2 - d1) / (gb - ga + 2 * d2))
    return min(max(t, lo), hi)


_WOLFE_TOL_CHANGE = 1e-9


def _strong_wolfe(
    probe: Callable[[Any], tuple[float, Any]],
    t: Any,
    d: Any,
    f0: float,
    g0: Any,
    gtd0: Any,
    tol_change: float,
    max_ls: int,
    c1: float = 1e-4,
    c2: float = 0.9,
) -> tuple[float, Any, Any, int]:
    """A step length along ``d`` meeting the strong Wolfe conditions (as torch's, after
    Nocedal and Wright's algorithms 3.5 and 3.6, with minFunc's safeguards).

    ``probe(t)`` returns the loss and flat gradient at ``x + t d`` (parameters restored).
    The search first grows the step until an interval brackets an acceptable one, then
    shrinks it by cubic interpolation (kept 10% away from the ends unless progress
    stalled); it stops after ``max_ls`` probes beyond the first or when the interval is
    shorter than ``tol_change`` in the max norm. Returns ``(loss, grad, t, probes)`` at
    the best point found.
    """
    scale = get_xp(d).abs(d).max()

    def at(step: Any) -> list:
        f, g = probe(step)
        return [step, f, g, g.dot(d)]

    def sufficient(pt: list) -> bool:  # Armijo
        return not pt[1] > f0 + c1 * pt[0] * gtd0

    def curvature(pt: list) -> bool:
        return abs(pt[3]) <= -c2 * gtd0

    origin = [0, f0, g0, gtd0]
    prev, cur = origin, at(t)
    probes, n = 1, 0
    # 1. bracketing: extrapolate until the step overshoots (too high, or slope turned up)
    bracket = None
    while n < max_ls:
        if not sufficient(cur) or (n > 1 and cur[1] >= prev[1]):
            bracket = [prev, cur]  # overshot: too high
            break
        if curvature(cur):
            return cur[1], cur[2], cur[0], probes
        if cur[3] >= 0:
            bracket = [prev, cur]  # overshot: the slope turned up
            break
        step = _cubic_min(
            (prev[0], prev[1], prev[3]),
            (cur[0], cur[1], cur[3]),
            cur[0] + 0.01 * (cur[0] - prev[0]),
            cur[0] * 10,
        )
        prev, cur = cur, at(step)
        probes += 1
        n += 1
    if bracket is None:  # out of probes while extrapolating
        bracket = [origin, cur]

    # 2. zoom: bracket[lo] is the best point so far, bracket[1 - lo] the other end
    lo = 0 if bracket[0][1] <= bracket[-1][1] else 1
    stalled = False
    while n < max_ls:
        a, b = bracket
        if abs(b[0] - a[0]) * scale < tol_change:
            break
        step = _cubic_min((a[0], a[1], a[3]), (b[0], b[1], b[3]))
        right, left = max(a[0], b[0]), min(a[0], b[0])
        margin = 0.1 * (right - left)
        if min(right - step, step - left) < margin:  # too close to an end
            if stalled or step >= right or step <= left:
                step = right - margin if abs(step - right) < abs(step - left) else left + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        new = at(step)
        probes += 1
        n += 1
        if not sufficient(new) or new[1] >= bracket[lo][1]:
            bracket[1 - lo] = new
            lo = 0 if bracket[0][1] <= bracket[1][1] else 1
            continue
        done = curvature(new)
        if not done and new[3] * (bracket[1 - lo][0] - bracket[lo][0]) >= 0:
            bracket[1 - lo] = bracket[lo]
        bracket[lo] = new
        if done:
            break
    best = bracket[lo]
    return best[1], best[2], best[0], probes


def _raw(v: Any) -> Any:
    return v.array if isinstance(v, Tensor) else v


def _box(v: Any) -> Any:
    """A state value as torch keeps it: arrays (0-d included) as Tensors, numbers as is."""
    if isinstance(v, np.ndarray | np.generic) or is_cuda_array(v):
        return Tensor._wrap(get_xp(v).asarray(v))
    return v
