"""Fused CuPy kernels: one GPU launch where the NumPy formula takes several.

On the GPU every CuPy call is a kernel launch costing 10-20 us of host time, more than the
kernel itself at the sizes of a training step. These kernels fold the hot multi-op
formulas into one launch each: activation gradients, the optimizers' per-parameter updates,
cross-entropy (softmax, loss and weights in one pass; its gradient in another), and batch
norm's statistics, normalisation and gradient (two reductions and two elementwise passes
each way, instead of about twenty calls).

Each is used for float32 and float64 CuPy arrays only (``applies``); half precision and the
CPU keep the NumPy formulas beside the callers. Batch-norm sums accumulate in float64.
Nothing here imports CuPy at module import time: the kernels are built on first use.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from darklib.backend import device, is_cuda_array, xp_for


def _cp() -> Any:
    return xp_for(device("cuda"))


def applies(*arrays: Any) -> bool:
    """True where ``arrays`` are GPU arrays of one dtype, float32 or float64 (the kernels'
    types). Cheap on NumPy arrays, which are refused first."""
    first = arrays[0]
    if type(first) is np.ndarray or not is_cuda_array(first):  # (NumPy scalars too)
        return False
    dt = first.dtype
    return (dt == np.float32 or dt == np.float64) and all(a.dtype == dt for a in arrays)


# name: (input params, output params, body) of an ElementwiseKernel
_ELEMENTWISE: dict[str, tuple[str, str, str]] = {
    "sigmoid": ("T a", "T z", "z = T(1) / (T(1) + exp(-a))"),  # exp(-a) = inf gives 0
    "tanh_grad": ("T g, T y", "T z", "z = g * (T(1) - y * y)"),
    "sigmoid_grad": ("T g, T y", "T z", "z = g * y * (T(1) - y)"),
    # NaN outputs pass their gradient (y <= 0 is false), as torch's threshold_backward
    "relu_grad": ("T g, T y", "T z", "z = y <= T(0) ? T(0) : g"),
    "leaky_relu": ("T a, T s", "T z", "z = a > T(0) ? a : a * s"),
    "leaky_relu_grad": ("T g, T a, T s", "T z", "z = a > T(0) ? g : g * s"),
    # SGD with momentum (after its first step): b = momentum b + (1 - dampening) u, then
    # p -= lr b, or p -= lr (u + momentum b) with Nesterov
    "sgd_momentum": (
        "T u, T mom, T damp1, T nlr, int32 nesterov",
        "T p, T b",
        "b = b * mom + u * damp1; p += (nesterov ? u + b * mom : b) * nlr",
    ),
    # Adam: m = lerp(m, g, 1 - beta1), v = beta2 v + (1 - beta2) g g, then
    # p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
    "adam": (
        "T g, T b1c, T b2, T b2c, T bc2_sqrt, T eps, T nstep",
        "T p, T m, T v",
        """
        v = v * b2 + b2c * g * g;
        m += (g - m) * b1c;
        p += m / (sqrt(v) / bc2_sqrt + eps) * nstep;
        """,
    ),
    # batch norm, per channel c (from the float64 sums of the reductions below): mean and
    # 1/std, the affine map y = (x - mean) scale + shift, and the running statistics
    "bn_stats": (
        "float64 s1, float64 s2, raw T w, raw T b, raw T rm, raw T rv, float64 m, "
        "float64 eps, float64 mom, float64 unbiased, int32 flags",
        "T mean, T invstd, T scale, T shift, float64 mu",
        """
        mu = s1 / m;  // (kept in float64: a float32 mean of values near 1e4 is 5e-4 off)
        mean = (T)mu;
        // from float64 sums of x and x^2: exact to float32 for |mean| / std up to ~1e5
        const double var = fmax(s2 / m - mu * mu, 0.0);
        invstd = (T)(1.0 / sqrt(var + eps));
        scale = (flags & 1) ? invstd * w[i] : invstd;
        shift = (flags & 2) ? b[i] : T(0);
        // the running statistics are updated in place (raw inputs are const in CuPy)
        if (flags & 4) {
            T& r = const_cast<T&>(rm[i]);
            r = r * (T)(1.0 - mom) + (T)mom * mean;
        }
        if (flags & 8) {
            T& r = const_cast<T&>(rv[i]);
            r = r * (T)(1.0 - mom) + (T)unbiased * (T)var;
        }
        """,
    ),
    "bn_apply": (
        "T x, float64 mu, T scale, T shift",
        "T y",
        "y = (T)(((double)x - mu) * (double)scale) + shift",
    ),
    # backward: from sg = sum g and sgx = sum g (x - mean), dx = -scale (g_hat...) below
    "bn_grad_coeffs": (
        "float64 sg, float64 sgx, float64 mu, T invstd, T scale, float64 m",
        "T gw, T gb, T k1, T k2, T k3",
        """
        gw = (T)(sgx - mu * sg) * invstd;  // sum g (x - mean) / std
        gb = (T)sg;
        k1 = invstd * gw / (T)m;
        k2 = (T)(sg / m);
        k3 = -scale;
        """,
    ),
    "bn_grad_input": (
        "T x, T g, float64 mu, T k1, T k2, T k3",
        "T dx",
        "dx = (T)((((double)x - mu) * (double)k1 + (double)k2 - (double)g) * (double)k3)",
    ),
    # cross-entropy over axis 1 of x (N, C, L), one thread per (n, l) with class targets t:
    # the weighted loss -w[t] log softmax(x)[t], the softmax into p (for the backward),
    # the weight (0 where t is ignore_index) and the target with ignored ones set to 0
    "cross_entropy": (
        "raw T x, int64 t, raw T w, raw T p, int32 C, int64 L, int64 ignore, int32 has_w",
        "T loss, T wt, int64 ts, bool valid",
        """
        const long long n = i / L, l = i - n * L;
        const long long base = n * C * L + l;
        T mx = x[base];
        for (int c = 1; c < C; ++c) {
            const T v = x[base + c * L];
            if (v > mx || v != v) mx = v;  // NaN wins, as NumPy's max
        }
        double s = 0;
        for (int c = 0; c < C; ++c) {
            const T e = exp(x[base + c * L] - mx);
            const_cast<T&>(p[base + c * L]) = e;  // (raw inputs are const in CuPy)
            s += (double)e;
        }
        for (int c = 0; c < C; ++c) {
            T& q = const_cast<T&>(p[base + c * L]);
            q = q / (T)s;
        }
        valid = t != ignore;
        ts = valid ? t : 0;
        wt = valid ? (has_w ? w[ts] : T(1)) : T(0);
        loss = valid ? ((T)log(s) - (x[base + ts * L] - mx)) * wt : T(0);
        """,
    ),
    # its input gradient: (p - onehot(t)) w[t] g_n, where g_n is the incoming gradient of
    # sample n (mode 0, reduction 'none'), of the sum (1) or of the mean over weight den (2)
    "cross_entropy_grad": (
        "T p, raw int64 ts, raw T wt, raw T g, raw T den, int32 C, int64 L, int32 mode",
        "T gx",
        """
        const long long l = i % L, r = i / L;
        const long long c = r % C, j = (r / C) * L + l;
        const T gn = mode == 0 ? g[j] : mode == 1 ? g[0] : den[0] != T(0) ? g[0] / den[0] : T(0);
        const T a = wt[j] * gn;
        gx = p * a - (ts[j] == c ? a : T(0));
        """,
    ),
}

# name: (input params, output params, map, reduce, post-map) of a float64-accumulating
# ReductionKernel (identity 0)
_REDUCTION: dict[str, tuple[str, str, str, str, str]] = {
    # (a broadcast operand, as a (1, C, 1) mean, made these 40x slower: plain sums only)
    "sum64": ("T x", "float64 s", "(double)x", "a + b", "s = a"),
    "sumsq64": ("T x", "float64 s", "(double)x * (double)x", "a + b", "s = a"),
    "dot64": ("T g, T x", "float64 s", "(double)g * (double)x", "a + b", "s = a"),
}


@functools.cache
def kernel(name: str) -> Any:
    """The compiled CuPy kernel ``name`` (one of the tables above)."""
    cp = _cp()
    if name in _ELEMENTWISE:
        return cp.ElementwiseKernel(*_ELEMENTWISE[name], f"darklib_{name}")
    in_p, out_p, map_expr, reduce_expr, post = _REDUCTION[name]
    return cp.ReductionKernel(
        in_p, out_p, map_expr, reduce_expr, post, "0", f"darklib_{name}", reduce_type="double"
    )


# ------------------------------------------------------------------ batch norm (training)


def batch_norm_forward(
    x3: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, momentum: float,
    eps: float,
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """Batch norm of ``x3`` (N, C, L) with batch statistics: ``(y, mean, invstd, scale,
    mean in float64)``; the running statistics (when given) are updated in place."""
    n, c, length = x3.shape
    m = n * length
    s1 = kernel("sum64")(x3, axis=(0, 2))
    s2 = kernel("sumsq64")(x3, axis=(0, 2))
    flags = 0
    dummy = x3  # raw arguments a flag turns off are never read
    for bit, arr in ((1, weight), (2, bias), (4, running_mean), (8, running_var)):
        if arr is not None:
            flags |= bit
    unbiased = momentum * m / (m - 1) if m > 1 else 0.0
    mean, invstd, scale, shift, mu = kernel("bn_stats")(
        s1,
        s2,
        dummy if weight is None else weight,
        dummy if bias is None else bias,
        dummy if running_mean is None else running_mean,
        dummy if running_var is None else running_var,
        float(m),
        float(eps),
        float(momentum),
        float(unbiased),
        np.int32(flags),
    )
    y = kernel("bn_apply")(x3, mu.reshape(1, c, 1), scale.reshape(1, c, 1), shift.reshape(1, c, 1))
    return y, mean, invstd, scale, mu


def batch_norm_backward(
    g3: Any, x3: Any, mu: Any, invstd: Any, scale: Any, need_x: bool
) -> tuple[Any, Any, Any]:
    """``(dx or None, dweight, dbias)`` of training-mode batch norm from its saved float64
    mean, 1/std and scale (1/std times the weight)."""
    n, c, length = g3.shape
    mu3 = mu.reshape(1, c, 1)
    sg = kernel("sum64")(g3, axis=(0, 2))
    sgx = kernel("dot64")(g3, x3, axis=(0, 2))
    gw, gb, k1, k2, k3 = kernel("bn_grad_coeffs")(sg, sgx, mu, invstd, scale, float(n * length))
    dx = None
    if need_x:
        dx = kernel("bn_grad_input")(
            x3, g3, mu3, k1.reshape(1, c, 1), k2.reshape(1, c, 1), k3.reshape(1, c, 1)
        )
    return dx, gw, gb


# ------------------------------------------------------------------ cross-entropy


def cross_entropy_forward(x: Any, t: Any, weight: Any, ignore_index: int) -> tuple:
    """Class-index cross-entropy of ``x`` (N, C, *) against ``t`` (N, *) (validated, C > 0):
    ``(loss per sample, softmax, weight per sample, targets with ignored ones 0, valid)``."""
    cp = _cp()
    x = cp.ascontiguousarray(x)
    c = x.shape[1]
    p = cp.empty_like(x)
    loss, wt, ts, valid = kernel("cross_entropy")(
        x,
        t,
        x if weight is None else weight,
        p,
        np.int32(c),
        np.int64(x.size // (x.shape[0] * c) if x.size else 1),
        np.int64(ignore_index),
        np.int32(weight is not None),
    )
    return loss, p, wt, ts, valid


def cross_entropy_backward(p: Any, ts: Any, wt: Any, g: Any, reduction: str, denom: Any) -> Any:
    """The input gradient of :func:`cross_entropy_forward`'s reduced loss, from its saved
    softmax, targets and weights and the incoming gradient ``g``."""
    cp = _cp()
    mode = {"none": 0, "sum": 1, "mean": 2}[reduction]
    g = cp.ascontiguousarray(g).reshape(-1)
    c = p.shape[1]
    return kernel("cross_entropy_grad")(
        p,
        ts,
        wt,
        g,
        g if denom is None else denom.reshape(1),
        np.int32(c),
        np.int64(p.size // (p.shape[0] * c) if p.size else 1),
        np.int32(mode),
    )
