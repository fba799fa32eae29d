"""The time loops of the recurrent layers: one fused Function per cell type.

A layer's input projection ``x @ W_ih^T + b`` does not depend on the recurrence, so the
layers compute it for every time step in one GEMM (an ordinary ``linear``) and hand the
result, ``xproj``, to a scan Function here. The scan runs the time loop on raw arrays:
per step one GEMM ``h @ W_hh^T`` and the cell's gate math as a few whole-array passes
written in place (no per-step autograd nodes, no chain of tiny tensor ops). Its backward
runs the loop in reverse, collecting the gates' gradients of all steps so that the
weight gradient ``dW_hh`` is one GEMM over the whole sequence, as is ``dW_hr`` (LSTM
projections). Both are written with ``get_xp`` and run on NumPy and CuPy alike.

Sequences are laid out packed (as :class:`~darklib.nn.utils.rnn.PackedSequence`): the
rows of time step ``t`` are ``batch_sizes[t]`` consecutive rows, the sequences sorted by
decreasing length, so a padded batch is the case of equal batch sizes. The scan's one
output holds, per row, the new hidden state (and, for an LSTM, the cell state after it),
followed by ``B`` rows with the final states (``h_n``/``c_n``) of the ``B`` sequences:
a single array, so that each of them can take a gradient.

Under ``create_graph=True`` the scan's gradient comes from :func:`scan_graph`, the same
loop written with differentiable tensor ops (``higher_order.recompute``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.autograd import Function, higher_order
from darklib.backend import get_xp
from darklib.kernels import parallel as par
from darklib.tensor import Tensor

# gates per cell type, in torch's row order of weight_ih/weight_hh
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _mm(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` (into ``out``); on the CPU through darklib's GEMM runtime."""
    xp = get_xp(a)
    return par.matmul(a, b, out=out) if xp is np else xp.matmul(a, b, out=out)


def _one_blas_thread(xp: Any) -> Any:
    """BLAS on one thread for a time loop (CPU): its products are small and run one after
    another, where OpenBLAS's own threads gain little and, beside another busy process,
    lose several times over (a 2-layer LSTM forward took 4-7x longer on a loaded 2-core
    machine)."""
    return par._single_blas() if xp is np else contextlib.nullcontext()


def _sigmoid_(xp: Any, a: Any) -> None:
    """``a = sigmoid(a)`` in place, as ``0.5 * tanh(a / 2) + 0.5``: one transcendental
    per value and no overflow for large negative inputs."""
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _sigmoid_grad(xp: Any, s: Any, g: Any, out: Any) -> None:
    """``out = g * s * (1 - s)`` for ``s = sigmoid(.)``."""
    xp.multiply(s, s, out=out)
    xp.subtract(s, out, out=out)
    out *= g


def _tanh_grad(xp: Any, y: Any, g: Any, out: Any) -> None:
    """``out = g * (1 - y^2)`` for ``y = tanh(.)``."""
    xp.multiply(y, y, out=out)
    xp.subtract(1, out, out=out)
    out *= g


def _steps(batch_sizes: Sequence[int], reverse: bool) -> list[tuple[int, int]]:
    """(first row, rows) of each time step in the order the loop visits them."""
    starts, s = [], 0
    for n in batch_sizes:
        starts.append((s, n))
        s += n
    return starts[::-1] if reverse else starts


class _Scan(Function):
    """``scan(xproj, h0, c0, w_hh, b_hh, w_hr, mode, batch_sizes, reverse)``.

    ``xproj`` (N, G*H): the input projection of the N packed rows, with ``b_ih`` (and,
    for RNN and LSTM, ``b_hh``) added; ``h0`` (B, P), ``c0`` (B, H) or None; ``w_hh``
    (G*H, P); ``b_hh`` (G*H,) for a GRU with biases, else None (its ``b_hh`` of the
    candidate gate sits inside ``r * (.)``); ``w_hr`` (P, H) for an LSTM with
    projections, else None. Returns (N + B, P [+ H]).
    """

    @staticmethod
    def forward(ctx, xproj, h0, c0, w_hh, b_hh, w_hr, mode, batch_sizes, reverse):
        xp = get_xp(xproj)
        dt = xproj.dtype
        n = xproj.shape[0]
        b, p = h0.shape
        hid = w_hh.shape[0] // GATES[mode]
        lstm = mode == "lstm"
        width = p + hid if lstm else p
        out = xp.empty((n + b, width), dt)
        out[n:, :p] = h0
        if lstm:
            out[n:, p:] = c0
        carry = out[n:]  # the latest state of each sequence: h_n (and c_n) at the end
        hprev = xp.empty((n, p), dt)  # the state each row's step started from
        act = cprev = tanh_c = hpre = None
        if lstm:
            act = xp.empty((n, 4 * hid), dt)  # i, f, g, o after their nonlinearities
            cprev = xp.empty((n, hid), dt)
            tanh_c = xp.empty((n, hid), dt)
            hpre = xp.empty((n, hid), dt) if w_hr is not None else None
        elif mode == "gru":
            act = xp.empty((n, 4 * hid), dt)  # r, z, n and the candidate's (h W_hn^T + b_hn)
        w_t = xp.ascontiguousarray(w_hh.T)  # (P, G*H) row-major: the faster GEMM operand
        h2 = 2 * hid
        with _one_blas_thread(xp):
            for r0, bs in _steps(batch_sizes, reverse):
                rows = slice(r0, r0 + bs)
                hp = hprev[rows]
                hp[...] = carry[:bs, :p]
                if lstm:
                    a = act[rows]
                    _mm(hp, w_t, out=a)
                    a += xproj[rows]
                    _sigmoid_(xp, a[:, :h2])
                    xp.tanh(a[:, h2 : 3 * hid], out=a[:, h2 : 3 * hid])
                    _sigmoid_(xp, a[:, 3 * hid :])
                    cp = cprev[rows]
                    cp[...] = carry[:bs, p:]
                    c = out[rows, p:]
                    xp.multiply(a[:, hid:h2], cp, out=c)
                    c += a[:, :hid] * a[:, h2 : 3 * hid]
                    tc = tanh_c[rows]
                    xp.tanh(c, out=tc)
                    if w_hr is None:
                        xp.multiply(a[:, 3 * hid :], tc, out=out[rows, :p])
                    else:
                        hq = hpre[rows]
                        xp.multiply(a[:, 3 * hid :], tc, out=hq)
                        out[rows, :p] = _mm(hq, w_hr.T)
                elif mode == "gru":
                    hh = _mm(hp, w_t)
                    if b_hh is not None:
                        hh += b_hh
                    a = act[rows]
                    xg = xproj[rows]
                    rz = a[:, :h2]
                    xp.add(xg[:, :h2], hh[:, :h2], out=rz)
                    _sigmoid_(xp, rz)
                    cand = a[:, h2 : 3 * hid]
                    a[:, 3 * hid :] = hh[:, h2:]
                    xp.multiply(rz[:, :hid], hh[:, h2:], out=cand)
                    cand += xg[:, h2:]
                    xp.tanh(cand, out=cand)
                    h = out[rows]  # h' = n + z * (h - n)
                    xp.subtract(hp, cand, out=h)
                    h *= rz[:, hid:]
                    h += cand
                else:
                    h = out[rows]
                    _mm(hp, w_t, out=h)
                    h += xproj[rows]
                    if mode == "rnn_tanh":
                        xp.tanh(h, out=h)
                    else:
                        xp.maximum(h, 0, out=h)
                carry[:bs] = out[rows]
        # the output itself only where backward reads it (the plain RNNs' activation
        # gradient), so that an LSTM's or GRU's output may change in place, as in torch
        kept = out if mode in ("rnn_tanh", "rnn_relu") else None
        ctx.save_for_backward(
            xproj, h0, c0, w_hh, b_hh, w_hr, kept, hprev, act, cprev, tanh_c, hpre
        )
        ctx.mode, ctx.batch_sizes, ctx.reverse = mode, tuple(batch_sizes), reverse
        return out

    @staticmethod
    def backward(ctx, g):
        xproj, h0, _, w_hh, _, w_hr, out, hprev, act, cprev, tanh_c, hpre = ctx.saved_tensors
        needs = ctx.needs_input_grad
        mode = ctx.mode
        xp = get_xp(g)
        dt = g.dtype
        n = xproj.shape[0]
        p = h0.shape[1]
        hid = w_hh.shape[0] // GATES[mode]
        h2, h3 = 2 * hid, 3 * hid
        lstm = mode == "lstm"
        dh_carry = g[n:, :p].copy()  # gradient of each sequence's latest state
        dc_carry = g[n:, p:].copy() if lstm else None
        dx = xp.empty(xproj.shape, dt)  # d xproj: the gates' pre-activation gradients
        dhh = xp.empty(xproj.shape, dt) if mode == "gru" else dx  # d (h W_hh^T + b_hh)
        dh_all = xp.empty((n, p), dt) if w_hr is not None else None
        tmp = xp.empty((ctx.batch_sizes[0] if ctx.batch_sizes else 0, hid), dt)
        with _one_blas_thread(xp):
            for r0, bs in reversed(_steps(ctx.batch_sizes, ctx.reverse)):
                rows = slice(r0, r0 + bs)
                dh = dh_carry[:bs]
                dh += g[rows, :p]
                t = tmp[:bs]
                d = dx[rows]
                if lstm:
                    a = act[rows]
                    i, f, gg, o = a[:, :hid], a[:, hid:h2], a[:, h2:h3], a[:, h3:]
                    if w_hr is not None:
                        dh_all[rows] = dh
                        dhp = _mm(dh, w_hr)
                    else:
                        dhp = dh
                    tc = tanh_c[rows]
                    dc = dc_carry[:bs]
                    dc += g[rows, p:]
                    xp.multiply(tc, tc, out=t)  # d(o * tanh(c))/dc = o * (1 - tanh(c)^2)
                    xp.subtract(1, t, out=t)
                    t *= o
                    t *= dhp
                    dc += t  # dc now the full gradient of this step's cell state
                    xp.multiply(dhp, tc, out=t)
                    _sigmoid_grad(xp, o, t, d[:, h3:])
                    xp.multiply(dc, gg, out=t)
                    _sigmoid_grad(xp, i, t, d[:, :hid])
                    xp.multiply(dc, cprev[rows], out=t)
                    _sigmoid_grad(xp, f, t, d[:, hid:h2])
                    xp.multiply(dc, i, out=t)
                    _tanh_grad(xp, gg, t, d[:, h2:h3])
                    dc *= f
                    dh_carry[:bs] = _mm(d, w_hh)
                elif mode == "gru":
                    a = act[rows]
                    r, z, cand, hn = a[:, :hid], a[:, hid:h2], a[:, h2:h3], a[:, h3:]
                    e = dhh[rows]
                    xp.subtract(hprev[rows], cand, out=t)
                    t *= dh
                    _sigmoid_grad(xp, z, t, d[:, hid:h2])  # dz
                    xp.subtract(1, z, out=t)
                    t *= dh
                    _tanh_grad(xp, cand, t, d[:, h2:])  # d of n's pre-activation
                    xp.multiply(d[:, h2:], hn, out=t)
                    _sigmoid_grad(xp, r, t, d[:, :hid])  # dr
                    e[:, :h2] = d[:, :h2]
                    xp.multiply(d[:, h2:], r, out=e[:, h2:])
                    dh *= z
                    dh += _mm(e, w_hh)
                else:
                    h = out[rows]
                    if mode == "rnn_tanh":
                        _tanh_grad(xp, h, dh, d)
                    else:
                        xp.multiply(dh, h > 0, out=d)
                    dh_carry[:bs] = _mm(d, w_hh)
        gx = dx if needs[0] else None
        gh0 = dh_carry if needs[1] else None
        gc0 = dc_carry if lstm and needs[2] else None
        gw = _mm(dhh.T, hprev) if needs[3] else None
        gb = dhh.sum(axis=0) if needs[4] else None
        gwr = _mm(dh_all.T, hpre) if w_hr is not None and needs[5] else None
        return gx, gh0, gc0, gw, gb, gwr, None, None, None

    @staticmethod
    def backward_graph(ctx, g):
        xproj, h0, c0, w_hh, b_hh, w_hr = ctx.saved_tensors[:6]
        mode, batch_sizes, reverse = ctx.mode, ctx.batch_sizes, ctx.reverse

        def forward(x, h, c, w, b, wr, *_):
            return scan_graph(mode, x, h, c, w, b, wr, batch_sizes, reverse)

        values = (xproj, h0, c0, w_hh, b_hh, w_hr, None, None, None)
        return higher_order.recompute(ctx, g, forward, values)


class RNNTanhScan(_Scan):
    """The time loop of an Elman RNN with tanh: ``h' = tanh(xproj + h W_hh^T)``."""


class RNNReluScan(_Scan):
    """The time loop of an Elman RNN with ReLU: ``h' = relu(xproj + h W_hh^T)``."""


class LSTMScan(_Scan):
    """The time loop of an LSTM (gates i, f, g, o; optional projection ``W_hr``)."""


class GRUScan(_Scan):
    """The time loop of a GRU (gates r, z, n)."""


SCANS: dict[str, type[_Scan]] = {
    "rnn_tanh": RNNTanhScan,
    "rnn_relu": RNNReluScan,
    "lstm": LSTMScan,
    "gru": GRUScan,
}


def scan(
    mode: str,
    xproj: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_hr: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool = False,
) -> Tensor:
    """One layer and direction of a recurrent network over packed rows (see the module
    docstring); the caller has checked shapes, dtypes and devices."""
    return SCANS[mode].apply(
        xproj, h0, c0, w_hh, b_hh, w_hr, mode, tuple(int(v) for v in batch_sizes), bool(reverse)
    )


def scan_graph(
    mode: str,
    xproj: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_hr: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool = False,
) -> Tensor:
    """:func:`scan` composed of differentiable tensor ops (a slow reference, and the
    graph that ``create_graph=True`` differentiates)."""
    from darklib.ops.shape import cat

    hid = w_hh.shape[0] // GATES[mode]
    h2, h3 = 2 * hid, 3 * hid
    h, c = h0, c0
    outs: list[Any] = [None] * len(batch_sizes)
    starts = _steps(batch_sizes, False)
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    w_t = w_hh.t()
    for step in order:
        r0, bs = starts[step]
        hp = h[:bs]
        x = xproj[r0 : r0 + bs]
        hh = hp @ w_t
        if mode == "lstm":
            gates = x + hh
            i, f = gates[:, :hid].sigmoid(), gates[:, hid:h2].sigmoid()
            gg, o = gates[:, h2:h3].tanh(), gates[:, h3:].sigmoid()
            cn = f * c[:bs] + i * gg
            hn = o * cn.tanh()
            if w_hr is not None:
                hn = hn @ w_hr.t()
            outs[step] = cat([hn, cn], 1)
        elif mode == "gru":
            if b_hh is not None:
                hh = hh + b_hh
            r = (x[:, :hid] + hh[:, :hid]).sigmoid()
            z = (x[:, hid:h2] + hh[:, hid:h2]).sigmoid()
            cand = (x[:, h2:] + r * hh[:, h2:]).tanh()
            hn = cand + z * (hp - cand)
            outs[step] = hn
        else:
            pre = x + hh
            hn = pre.tanh() if mode == "rnn_tanh" else pre.relu()
            outs[step] = hn
        rest = h.shape[0] - bs
        h = cat([hn, h[bs:]]) if rest else hn
        if mode == "lstm":
            c = cat([cn, c[bs:]]) if rest else cn
    final = cat([h, c], 1) if mode == "lstm" else h
    return cat([*outs, final]) if outs else final
