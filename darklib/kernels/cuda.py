"""CuPy kernels for the vision ops: the GPU twins of the NumPy code in ``darklib.ops``.

Each kernel is a CuPy ``ElementwiseKernel`` with one thread per output element (CuPy picks
grid and block sizes and compiles once per dtype). Index arithmetic is the same as on the
CPU (see :mod:`darklib.kernels.im2col`): output ``oh`` and kernel offset ``i`` read input
row ``ih = oh * sh - pt + i * dh``. Flat offsets are computed in 64-bit. Gradients that
scatter (col2im, max- and avg-pool backward) are written as gathers over the input, so
they need no atomics and are deterministic; only the resampling backward and
:func:`index_add` (adaptive max-pool backward) use ``atomicAdd``. Inputs are made
C-contiguous first; outputs are fresh C-contiguous arrays.

Nothing here imports CuPy at module import time: the kernels are built on first use.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from darklib.backend import device, xp_for
from darklib.kernels.im2col import Geometry


def _cp() -> Any:
    return xp_for(device("cuda"))


# Shared prologue: unravel the flat index ``i`` of an (NC, OH, OW) output.
_UNRAVEL_OUT = """
    IDX r = i;
    const int ow = (int)(r % OW); r /= OW;
    const int oh = (int)(r % OH);
    const IDX nc = r / OH;
"""
# ... and of an (NC, H, W) input.
_UNRAVEL_IN = """
    IDX r = i;
    const int iw = (int)(r % W); r /= W;
    const int ih = (int)(r % H);
    const IDX nc = r / H;
"""
_GEOM = (
    "int32 KH, int32 KW, int32 SH, int32 SW, int32 DH, int32 DW, int32 PT, int32 PL, "
    "int32 H, int32 W, int32 OH, int32 OW"
)


def _geom_args(g: Geometry) -> tuple[int, ...]:
    return tuple(int(v) for v in g)


@functools.cache
def _compiled(name: str, wide: bool) -> Any:
    cp = _cp()
    src = _SOURCES[name]
    # IDX, the type of the unravelled flat index, and DIV(a, d): a / d, by the multiplier
    # of d (arguments m_d, s_d) in 32 bits; a hardware division took ~20 instructions, and
    # im2col's six per element held it to a sixth of the memory bandwidth
    body = src[2].replace("IDX", "long long" if wide else "unsigned int")
    div = "((a) / (d))" if wide else "_darklib_udiv((a), m_##d, s_##d)"
    preamble = _UDIV + f"#define DIV(a, d) {div}\n"
    return cp.ElementwiseKernel(
        src[0], src[1], body, f"darklib_{name}{'' if wide else '_32'}", preamble=preamble
    )


_UDIV = """
__device__ __forceinline__ unsigned int _darklib_udiv(unsigned int a, unsigned int m,
                                                      unsigned int s) {
    return (__umulhi(a, m) + a) >> s;  // a / d for a < 2^31, with (m, s) of divider(d)
}
"""


@functools.cache
def divider(d: int) -> tuple[np.uint32, np.uint32]:
    """``(m, s)`` with ``a // d == (umulhi(a, m) + a) >> s`` for every 0 <= a < 2**31
    (Granlund and Montgomery's division by invariant integers, as DIV uses them)."""
    if d <= 1:  # (0: a dimension of an empty array, which no thread divides by)
        return np.uint32(0), np.uint32(0)
    s = (d - 1).bit_length()  # ceil(log2 d)
    return np.uint32((2**32 * (2**s - d)) // d + 1), np.uint32(s)


def _kernel(name: str, *arrays: Any) -> Any:
    """Kernel ``name`` for ``arrays`` (every array it reads or writes): with 32-bit index
    arithmetic where all of them have fewer than 2**31 elements."""
    return _compiled(name, any(a.size >= 2**31 for a in arrays))


def _dividers(*ds: int) -> tuple:
    """The DIV arguments (m_d, s_d) of the divisors ``ds``, in order."""
    return tuple(v for d in ds for v in divider(int(d)))


_SOURCES: dict[str, tuple[str, str, str]] = {
    # cols in layout nkp (N, C, KH, KW, OH, OW) or knp (C, KH, KW, N, OH, OW)
    # (B is C for nkp, N for knp: the divisor of the innermost of the three row axes)
    "im2col": (
        f"raw T x, int32 N, int32 C, {_GEOM}, int32 nkp, int32 B, "
        "uint32 m_OW, uint32 s_OW, uint32 m_OH, uint32 s_OH, uint32 m_KW, uint32 s_KW, "
        "uint32 m_KH, uint32 s_KH, uint32 m_B, uint32 s_B",
        "T col",
        """
        IDX r = i, q;
        q = DIV(r, OW); const int ow = (int)(r - q * OW); r = q;
        q = DIV(r, OH); const int oh = (int)(r - q * OH); r = q;
        int n, c, kh, kw;
        if (nkp) {
            q = DIV(r, KW); kw = (int)(r - q * KW); r = q;
            q = DIV(r, KH); kh = (int)(r - q * KH); r = q;
            q = DIV(r, B); c = (int)(r - q * B); n = (int)q;
        } else {
            q = DIV(r, B); n = (int)(r - q * B); r = q;
            q = DIV(r, KW); kw = (int)(r - q * KW); r = q;
            q = DIV(r, KH); kh = (int)(r - q * KH); c = (int)q;
        }
        const int ih = oh * SH - PT + kh * DH;
        const int iw = ow * SW - PL + kw * DW;
        col = (ih >= 0 && ih < H && iw >= 0 && iw < W)
            ? x[(((long long)n * C + c) * H + ih) * W + iw] : (T)0;
        """,
    ),
    # a GEMM's (O, N, P) output as (N, O, P), plus the bias b (O,) where has_b
    "batch_first": (
        "raw T src, raw T b, int32 O, int32 M, int32 P, int32 has_b",
        "T y",
        """
        IDX r = i;
        const int q = (int)(r % P); r /= P;
        const int o = (int)(r % O);
        const IDX n = r / O;
        y = src[((IDX)o * M + n) * P + q] + (has_b ? b[o] : (T)0);
        """,
    ),
    # gather form of col2im: every input pixel sums the columns that read it
    "col2im": (
        f"raw T col, int32 N, int32 C, {_GEOM}, int32 nkp, "
        "uint32 m_W, uint32 s_W, uint32 m_H, uint32 s_H, uint32 m_C, uint32 s_C",
        "T x",
        """
        IDX r = i, q;
        q = DIV(r, W); const int iw = (int)(r - q * W); r = q;
        q = DIV(r, H); const int ih = (int)(r - q * H); r = q;
        q = DIV(r, C); const int c = (int)(r - q * C);
        const int n = (int)q;
        const long long P = (long long)OH * OW;
        typedef decltype(T() + 0.0f) A;  // float for half and float, double for double
        A acc = 0;
        for (int kh = 0; kh < KH; ++kh) {
            const int th = ih + PT - kh * DH;
            if (th < 0 || th % SH != 0) continue;
            const int oh = th / SH;
            if (oh >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int tw = iw + PL - kw * DW;
                if (tw < 0 || tw % SW != 0) continue;
                const int ow = tw / SW;
                if (ow >= OW) continue;
                const long long row = nkp
                    ? (((long long)n * C + c) * KH + kh) * KW + kw
                    : ((((long long)c * KH + kh) * KW + kw) * N + n);
                acc += (A)col[row * P + (long long)oh * OW + ow];
            }
        }
        x = (T)acc;
        """,
    ),
    # max pooling: value and flat index (ih * W + iw) into the input plane, as PyTorch
    "max_pool": (
        f"raw T x, {_GEOM}",
        "T y, int64 idx",
        _UNRAVEL_OUT
        + """
        const T* plane = &x[nc * H * W];
        int h0 = oh * SH - PT, w0 = ow * SW - PL;
        const int h1 = min(h0 + (KH - 1) * DH + 1, H), w1 = min(w0 + (KW - 1) * DW + 1, W);
        while (h0 < 0) h0 += DH;
        while (w0 < 0) w0 += DW;
        long long best_i = (long long)h0 * W + w0;
        T best = (T)(-__longlong_as_double(0x7ff0000000000000LL));  // -inf
        for (int ih = h0; ih < h1; ih += DH) {
            for (int iw = w0; iw < w1; iw += DW) {
                const T v = plane[(long long)ih * W + iw];
                if (v > best || isnan((double)v)) { best = v; best_i = (long long)ih * W + iw; }
            }
        }
        y = best;
        idx = best_i;
        """,
    ),
    # gather form: an input pixel sums the gradients of the windows whose argmax it is
    "max_pool_backward": (
        f"raw T gy, raw int64 idx, {_GEOM}",
        "T gx",
        _UNRAVEL_IN
        + """
        const long long me = (long long)ih * W + iw;
        const long long base = nc * OH * OW;
        typedef decltype(T() + 0.0f) A;  // float for half and float, double for double
        A acc = 0;
        for (int kh = 0; kh < KH; ++kh) {
            const int th = ih + PT - kh * DH;
            if (th < 0 || th % SH != 0) continue;
            const int oh = th / SH;
            if (oh >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int tw = iw + PL - kw * DW;
                if (tw < 0 || tw % SW != 0) continue;
                const int ow = tw / SW;
                if (ow >= OW) continue;
                const long long o = base + (long long)oh * OW + ow;
                if (idx[o] == me) acc += (A)gy[o];
            }
        }
        gx = (T)acc;
        """,
    ),
    # average pooling; the divisor follows PyTorch (window clipped to the padded input,
    # then to the input unless count_include_pad; divisor_override wins when > 0)
    "avg_pool": (
        f"raw T x, {_GEOM}, int32 include_pad, int32 divisor",
        "T y",
        _UNRAVEL_OUT
        + """
        int h0 = oh * SH - PT, w0 = ow * SW - PL;
        int h1 = min(h0 + KH, H + PT), w1 = min(w0 + KW, W + PL);
        const int pool = (h1 - h0) * (w1 - w0);
        h0 = max(h0, 0); w0 = max(w0, 0); h1 = min(h1, H); w1 = min(w1, W);
        const T* plane = &x[nc * H * W];
        typedef decltype(T() + 0.0f) A;  // float for half and float, double for double
        A acc = 0;
        for (int ih = h0; ih < h1; ++ih)
            for (int iw = w0; iw < w1; ++iw) acc += (A)plane[(long long)ih * W + iw];
        const int div = divisor != 0 ? divisor : (include_pad ? pool : (h1 - h0) * (w1 - w0));
        y = (h1 > h0 && w1 > w0) ? (T)(acc / (A)div) : (T)0;
        """,
    ),
    "avg_pool_backward": (
        f"raw T gy, {_GEOM}, int32 include_pad, int32 divisor",
        "T gx",
        _UNRAVEL_IN
        + """
        const long long base = nc * OH * OW;
        typedef decltype(T() + 0.0f) A;  // float for half and float, double for double
        A acc = 0;
        for (int kh = 0; kh < KH; ++kh) {
            const int th = ih + PT - kh;
            if (th < 0 || th % SH != 0) continue;
            const int oh = th / SH;
            if (oh >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int tw = iw + PL - kw;
                if (tw < 0 || tw % SW != 0) continue;
                const int ow = tw / SW;
                if (ow >= OW) continue;
                int h0 = oh * SH - PT, w0 = ow * SW - PL;
                int h1 = min(h0 + KH, H + PT), w1 = min(w0 + KW, W + PL);
                const int pool = (h1 - h0) * (w1 - w0);
                h0 = max(h0, 0); w0 = max(w0, 0); h1 = min(h1, H); w1 = min(w1, W);
                const int div = divisor != 0 ? divisor
                                             : (include_pad ? pool : (h1 - h0) * (w1 - w0));
                acc += (A)gy[base + (long long)oh * OW + ow] / (A)div;
            }
        }
        gx = (T)acc;
        """,
    ),
    # out[idx] += g for arbitrary (repeating) flat indices
    "index_add": ("T g, int64 idx", "raw T out", "atomicAdd(&out[idx], g);"),
    # resampling from precomputed per-axis tables (the same tables as on the CPU)
    "nearest": (
        "raw T x, raw int64 hi, raw int64 wi, int32 H, int32 W, int32 OH, int32 OW",
        "T y",
        _UNRAVEL_OUT + "y = x[(nc * H + hi[oh]) * W + wi[ow]];",
    ),
    "nearest_backward": (
        "T gy, raw int64 hi, raw int64 wi, int32 H, int32 W, int32 OH, int32 OW",
        "raw T gx",
        _UNRAVEL_OUT + "atomicAdd(&gx[(nc * H + hi[oh]) * W + wi[ow]], gy);",
    ),
    "bilinear": (
        "raw T x, raw int64 h0, raw int64 h1, raw T lh0, raw T lh1, raw int64 w0, "
        "raw int64 w1, raw T lw0, raw T lw1, int32 H, int32 W, int32 OH, int32 OW",
        "T y",
        _UNRAVEL_OUT
        + """
        const T* p0 = &x[(nc * H + h0[oh]) * W];
        const T* p1 = &x[(nc * H + h1[oh]) * W];
        const long long a = w0[ow], b = w1[ow];
        y = lh0[oh] * (lw0[ow] * p0[a] + lw1[ow] * p0[b])
          + lh1[oh] * (lw0[ow] * p1[a] + lw1[ow] * p1[b]);
        """,
    ),
    "bilinear_backward": (
        "T gy, raw int64 h0, raw int64 h1, raw T lh0, raw T lh1, raw int64 w0, "
        "raw int64 w1, raw T lw0, raw T lw1, int32 H, int32 W, int32 OH, int32 OW",
        "raw T gx",
        _UNRAVEL_OUT
        + """
        T* p0 = &gx[(nc * H + h0[oh]) * W];
        T* p1 = &gx[(nc * H + h1[oh]) * W];
        const long long a = w0[ow], b = w1[ow];
        const T g0 = lh0[oh] * gy, g1 = lh1[oh] * gy;
        atomicAdd(p0 + a, (T)(g0 * lw0[ow]));
        atomicAdd(p0 + b, (T)(g0 * lw1[ow]));
        atomicAdd(p1 + a, (T)(g1 * lw0[ow]));
        atomicAdd(p1 + b, (T)(g1 * lw1[ow]));
        """,
    ),
}


# ------------------------------------------------------------------ convolution


def im2col(x: Any, g: Geometry, layout: str) -> Any:
    """Columns of ``x`` (N, C, H, W): (N, C*kh*kw, oh*ow) for 'nkp', (C*kh*kw, N*oh*ow)
    for 'knp' (see :func:`darklib.kernels.im2col.im2col`)."""
    cp = _cp()
    x = cp.ascontiguousarray(x)
    n, c = x.shape[:2]
    k, p = c * g.kh * g.kw, g.oh * g.ow
    nkp = layout == "nkp"
    cols = cp.empty((n, k, p) if nkp else (k, n * p), x.dtype)
    b = c if nkp else n
    divs = _dividers(g.ow, g.oh, g.kw, g.kh, b)
    _kernel("im2col", x, cols)(x, n, c, *_geom_args(g), int(nkp), b, *divs, cols)
    return cols


def batch_first(yk: Any, b: Any, out: Any) -> None:
    """``out`` (N, O, P) = ``yk`` (O, N, P) transposed, plus the bias ``b`` (O,) or None."""
    cp = _cp()
    o, n, p = yk.shape
    yk = cp.ascontiguousarray(yk)
    bias = yk if b is None else cp.ascontiguousarray(b)
    _kernel("batch_first", yk, out)(yk, bias, o, n, p, int(b is not None), out)


def col2im(cols: Any, n: int, c: int, g: Geometry, out: Any = None) -> Any:
    """Adjoint of :func:`im2col` into (N, C, H, W): ``out`` (C-contiguous, overwritten)
    or a fresh array. The column layout follows ``cols.ndim`` (3: nkp, 2: knp)."""
    cp = _cp()
    cols = cp.ascontiguousarray(cols)
    if out is None:
        out = cp.empty((n, c, g.h, g.w), cols.dtype)
    divs = _dividers(g.w, g.h, c)
    _kernel("col2im", cols, out)(cols, n, c, *_geom_args(g), int(cols.ndim == 3), *divs, out)
    return out


# ------------------------------------------------------------------ pooling


def max_pool2d(x: Any, g: Geometry) -> tuple[Any, Any]:
    cp = _cp()
    x = cp.ascontiguousarray(x)
    n, c = x.shape[:2]
    y = cp.empty((n, c, g.oh, g.ow), x.dtype)
    idx = cp.empty((n, c, g.oh, g.ow), cp.int64)
    _kernel("max_pool", x, y)(x, *_geom_args(g), y, idx)
    return y, idx


def max_pool2d_backward(gy: Any, idx: Any, g: Geometry) -> Any:
    cp = _cp()
    gy = cp.ascontiguousarray(gy)
    n, c = gy.shape[:2]
    gx = cp.empty((n, c, g.h, g.w), gy.dtype)
    _kernel("max_pool_backward", gy, gx)(gy, cp.ascontiguousarray(idx), *_geom_args(g), gx)
    return gx


def avg_pool2d(x: Any, g: Geometry, count_include_pad: bool, divisor: int) -> Any:
    cp = _cp()
    x = cp.ascontiguousarray(x)
    n, c = x.shape[:2]
    y = cp.empty((n, c, g.oh, g.ow), x.dtype)
    _kernel("avg_pool", x, y)(x, *_geom_args(g), int(count_include_pad), int(divisor), y)
    return y


def avg_pool2d_backward(gy: Any, g: Geometry, count_include_pad: bool, divisor: int) -> Any:
    cp = _cp()
    gy = cp.ascontiguousarray(gy)
    n, c = gy.shape[:2]
    gx = cp.empty((n, c, g.h, g.w), gy.dtype)
    _kernel("avg_pool_backward", gy, gx)(
        gy, *_geom_args(g), int(count_include_pad), int(divisor), gx
    )
    return gx


def index_add(size: int, idx: Any, values: Any) -> Any:
    """A fresh flat array of ``size`` zeros with ``values`` added at ``idx`` (repeats sum);
    CuPy's bincount would read the largest index back to the host first."""
    cp = _cp()
    out = cp.zeros(size, values.dtype)
    _kernel("index_add", out, values)(cp.ascontiguousarray(values), cp.ascontiguousarray(idx), out)
    return out


# ------------------------------------------------------------------ resampling


def upsample_nearest(x: Any, hi: Any, wi: Any) -> Any:
    """y[n, c, oh, ow] = x[n, c, hi[oh], wi[ow]] for an (N, C, H, W) input."""
    cp = _cp()
    x = cp.ascontiguousarray(x)
    n, c, h, w = x.shape
    y = cp.empty((n, c, hi.size, wi.size), x.dtype)
    _kernel("nearest", x, y)(x, hi, wi, h, w, hi.size, wi.size, y)
    return y


def upsample_nearest_backward(gy: Any, hi: Any, wi: Any, h: int, w: int) -> Any:
    cp = _cp()
    gy = cp.ascontiguousarray(gy)
    n, c = gy.shape[:2]
    gx = cp.zeros((n, c, h, w), gy.dtype)
    _kernel("nearest_backward", gy, gx)(gy, hi, wi, h, w, hi.size, wi.size, gx)
    return gx


def upsample_bilinear(x: Any, th: tuple, tw: tuple) -> Any:
    """Bilinear resampling; ``th``/``tw`` are (i0, i1, lambda0, lambda1) per axis."""
    cp = _cp()
    x = cp.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = th[0].size, tw[0].size
    y = cp.empty((n, c, oh, ow), x.dtype)
    _kernel("bilinear", x, y)(x, *th, *tw, h, w, oh, ow, y)
    return y


def upsample_bilinear_backward(gy: Any, th: tuple, tw: tuple, h: int, w: int) -> Any:
    cp = _cp()
    gy = cp.ascontiguousarray(gy)
    n, c, oh, ow = gy.shape
    gx = cp.zeros((n, c, h, w), gy.dtype)
    _kernel("bilinear_backward", gy, gx)(gy, *th, *tw, h, w, oh, ow, gx)
    return gx
