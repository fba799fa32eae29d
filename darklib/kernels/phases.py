"""Polyphase layout for pooling and strided col2im on the CPU: every window term becomes
one contiguous run.

NumPy's ufuncs are fast on long contiguous runs and slow on anything else: a stride-2 view
of a 16-wide output runs about 15x slower than a contiguous pass (one inner-loop call per
row of 16 elements, no SIMD), and even a 2-D slice with contiguous rows of a few hundred
elements costs about 4x a flat pass. The input is therefore first copied, once, into its
``sh * sw`` polyphase planes (padding filled in)::

    Q[a * sw + b, r, m * S + u * WP + v] = padded_input[m, r, u * sh + a, v * sw + b]

where every image plane is ``HP x WP`` (``S = HP * WP`` elements) and the images follow each
other: pooling keeps all N*C channel planes in one row (``r = 0``, ``m`` over N*C),
convolution one row per channel (``m`` over N). Output pixel ``(oh, ow)`` and kernel offset
``(i, j)`` then read ``Q[a_i * sw + b_j, r, m * S + (oh + r_i) * WP + ow + c_j]``.
Computing the output in a padded layout (``S`` positions per image, of which rows ``>= OH``
and columns ``>= OW`` are scratch, never read back) turns every kernel offset into ONE
contiguous run per row, ``Q[a * sw + b, r, start : start + M * S]``. A window max or sum
is then ``kh * kw`` flat passes, and a gradient (or col2im) is the same runs written back,
followed by one copy out of the planes.

Input row ``h`` sits at padded row ``h + pt + e``. With ``e`` rounding the top padding up
to a multiple of the stride, row phases coincide with ``h % sh`` and the whole input maps
to one box of a 6-D view of ``Q`` (a single copy when the size divides by the stride); that
is chosen unless it makes the planes taller (a 4x4 stride-2 window with padding 1 would
get two extra rows instead of one), and then ``e = 0`` and each phase is copied apart.
Columns alike.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from darklib.kernels.im2col import Geometry


class Phases(NamedTuple):
    """Where everything lies in the polyphase planes of a :class:`Geometry`."""

    hp: int  # plane rows per image
    wp: int  # plane row length (the padded output width)
    rows: tuple  # per row phase a: (first input row, its plane row, number of rows)
    cols: tuple  # per column phase b: (first input column, its plane column, number)
    box: bool  # phases coincide with h % sh and w % sw, and the sizes divide by the stride
    slack: int  # elements after the last image: the largest term start
    terms: tuple  # per kernel offset, row-major: (plane a * sw + b, start of its run)

    @property
    def size(self) -> int:
        """Elements per image in a plane and in the padded output."""
        return self.hp * self.wp


def _axis(k: int, s: int, d: int, pad: int, size: int, out: int) -> tuple:
    """One axis: (plane extent, [(phase, shift) per kernel offset], per-phase input spans,
    aligned). Tries the padding rounded up to the stride, and as it is."""
    best = None
    for e in sorted({(-pad) % s, 0}, reverse=True):
        taps = [((i * d + e) % s, (i * d + e) // s) for i in range(k)]
        spans = []
        for a in range(s):
            first = (a - pad - e) % s
            spans.append((first, (first + pad + e) // s, len(range(first, size, s))))
        extent = max(out + taps[-1][1], *(u + n for _, u, n in spans))
        aligned = (pad + e) % s == 0 and size % s == 0
        if best is None or extent < best[0]:
            best = (extent, taps, tuple(spans), aligned)
    return best


def phases(g: Geometry) -> Phases:
    hp, rtaps, rows, rbox = _axis(g.kh, g.sh, g.dh, g.pt, g.h, g.oh)
    wp, ctaps, cols, cbox = _axis(g.kw, g.sw, g.dw, g.pl, g.w, g.ow)
    terms = tuple((a * g.sw + b, r * wp + c) for a, r in rtaps for b, c in ctaps)
    return Phases(hp, wp, rows, cols, rbox and cbox, max(s for _, s in terms), terms)


def plane_shape(rows: int, images: int, g: Geometry, p: Phases) -> tuple[int, int, int]:
    """Shape of the planes of ``images`` images per row, ``rows`` rows: pooling keeps all
    N*C channels in one row, convolution one row per channel (its im2col rows)."""
    return (g.sh * g.sw, rows, images * p.size + p.slack)


def _planes6(q: np.ndarray, g: Geometry, p: Phases) -> np.ndarray:
    """``q`` as (sh, sw, R, M, HP, WP), the slack dropped."""
    r, m = q.shape[1], (q.shape[2] - p.slack) // p.size
    return q[:, :, : m * p.size].reshape(g.sh, g.sw, r, m, p.hp, p.wp)


def _as_mr(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``x`` (N, C, H, W) as (M, R, H, W) to match planes ``q``: (N*C, 1) or (N, C)."""
    if q.shape[1] == 1:
        return x.reshape(-1, 1, *x.shape[-2:])
    return x


def _fill_outside(q: np.ndarray, q6: np.ndarray, p: Phases, fill: float) -> None:
    """Fill everything but the input's boxes: the padding and the slack."""
    if any(v or v + n != p.wp for _, v, n in p.cols):  # padding columns: a strided fill
        q.fill(fill)  # costs more than this flat one
        return
    q[:, :, q6.shape[3] * p.size :] = fill
    for a, (_, u, n) in enumerate(p.rows):
        q6[a, :, :, :, :u] = fill
        q6[a, :, :, :, u + n :] = fill


def _phase_pairs(xs: np.ndarray, q6: np.ndarray, g: Geometry, p: Phases) -> list[tuple]:
    """(input view (M, R, ...), planes view (M, R, ...)) per phase holding input pixels."""
    pairs = []
    for a, (h0, u, nh) in enumerate(p.rows):
        for b, (w0, v, nw) in enumerate(p.cols):
            if nh and nw:
                src = xs[:, :, h0 :: g.sh, w0 :: g.sw]
                pairs.append((src, q6[a, b, :, :, u : u + nh, v : v + nw].swapaxes(0, 1)))
    return pairs


def to_phases(x: np.ndarray, g: Geometry, p: Phases, fill: float, out: np.ndarray) -> np.ndarray:
    """Copy ``x`` (N, C, H, W) into its padded polyphase planes ``out``
    (:func:`plane_shape`), ``fill`` everywhere else."""
    xs = _as_mr(x, out)
    q6 = _planes6(out, g, p)
    _fill_outside(out, q6, p, fill)
    if p.box:
        # one copy: NumPy orders its loops by the destination's strides, so the inner loop
        # runs along a plane row (contiguous) and reads the input with stride sw
        hh, ww = g.h // g.sh, g.w // g.sw
        r0, c0 = p.rows[0][1], p.cols[0][1]
        box = q6.transpose(3, 2, 4, 0, 5, 1)[:, :, r0 : r0 + hh, :, c0 : c0 + ww, :]
        np.copyto(box, xs.reshape(*xs.shape[:2], hh, g.sh, ww, g.sw))
        return out
    for src, dst in _phase_pairs(xs, q6, g, p):
        np.copyto(dst, src)
    return out


def from_phases(q: np.ndarray, g: Geometry, p: Phases, out: np.ndarray) -> np.ndarray:
    """The adjoint's last step: the input-sized part of planes ``q`` into ``out`` (N, C, H, W).

    One copy per phase: a single 6-D copy would run its inner loop over the stride."""
    xs = _as_mr(out, q)
    for dst, src in _phase_pairs(xs, _planes6(q, g, p), g, p):
        np.copyto(dst, src)
    return out


def tiles(g: Geometry) -> bool:
    """Windows that tile the input exactly (2x2 stride 2 on an even size): every input
    pixel is in exactly one window, at offset (h % kh, w % kw)."""
    return (
        (g.kh, g.kw) == (g.sh, g.sw)
        and g.dh == g.dw == 1
        and g.pt == g.pl == 0
        and (g.h, g.w) == (g.oh * g.sh, g.ow * g.sw)
    )


def phase_view(out: np.ndarray, g: Geometry, t: int) -> np.ndarray:
    """For tiling windows: the (NC, OH, OW) strided view of ``out`` (N, C, H, W) that
    kernel offset ``t`` reads."""
    i, j = divmod(t, g.kw)
    return out.reshape(-1, g.h, g.w)[:, i :: g.sh, j :: g.sw]


def term(q: np.ndarray, p: Phases, t: int, length: int) -> np.ndarray:
    """Kernel offset ``t``'s window values for all images: (R, length) contiguous runs
    (``length = M * size``), in the padded output layout."""
    plane, start = p.terms[t]
    return q[plane, :, start : start + length]


def first_writers(p: Phases) -> list[bool]:
    """Per term, whether it is the first to touch its plane."""
    seen: set = set()
    res = []
    for plane, _ in p.terms:
        res.append(plane not in seen)
        seen.add(plane)
    return res


def zero_unread(q: np.ndarray, p: Phases) -> None:
    """Zero the planes that no term reads (when the dilation is a multiple of the stride)."""
    used = {plane for plane, _ in p.terms}
    for plane in range(q.shape[0]):
        if plane not in used:
            q[plane] = 0


def write_first(q: np.ndarray, p: Phases, t: int, length: int) -> np.ndarray:
    """Zero term ``t``'s plane outside its run and return the run (to be written)."""
    plane, start = p.terms[t]
    q[plane, :, :start] = 0
    q[plane, :, start + length :] = 0
    return q[plane, :, start : start + length]


def padded(
    a: np.ndarray, g: Geometry, p: Phases, out: np.ndarray, div: object = None
) -> np.ndarray:
    """``a`` (M, R, OH, OW) (divided by ``div`` if given) into ``out`` (R, M * size), the
    padded output layout, with zeros in the scratch rows and columns."""
    m, r = a.shape[:2]
    o = out.reshape(r, m, p.hp, p.wp)
    o[:, :, g.oh :] = 0
    o[:, :, : g.oh, g.ow :] = 0
    dst = o[:, :, : g.oh, : g.ow].swapaxes(0, 1)
    if div is None:
        np.copyto(dst, a)
    else:
        np.divide(a, div, out=dst)
    return out


def compact(a: np.ndarray, g: Geometry, p: Phases) -> np.ndarray:
    """View (M, R, OH, OW) of the valid part of ``a`` (R, M * size), the padded output
    layout."""
    r = a.shape[0]
    return a.reshape(r, -1, p.hp, p.wp)[:, :, : g.oh, : g.ow].swapaxes(0, 1)
