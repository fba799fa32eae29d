"""Special functions (``torch.special`` and torch's top-level ``lgamma``, ``digamma``,
``polygamma``, ``mvlgamma``, ``i0``, ``sinc``, ``igamma``, ``igammac``).

CPU: written from scratch on NumPy, without SciPy. Every value is computed in float64
(float32 and half precision inputs too, rounded once at the end) from series, continued
fractions, recurrences, reflection formulas and asymptotic expansions whose coefficients
come from the Bernoulli numbers and zeta values computed here, and for erfcx, ndtr,
log_ndtr and ndtri from the polynomial fits of kernels/normal.py: float64 results lie
within a few units in the last place of the exact value away from zeros of the function.
The evaluation runs in blocks of 64 Ki values over darklib's threads (:func:`_blocked`).
GPU: CuPy's one-kernel ufuncs (``cupyx.scipy.special``, through ``backend.gpu_special``)
where CuPy has the function, the same NumPy-style code through ``xp`` elsewhere; the
values at infinities and poles are then set as on the CPU.

Each differentiable op is a Function with ``backward`` on arrays and ``backward_graph``
on tensors (its derivative is itself an op here: lgamma' = digamma, digamma' =
polygamma(1), polygamma(n)' = polygamma(n + 1), i0' = i1, ...), so that gradients of
any order exist. As in torch, the Bessel functions J0, J1 and the spherical j0 have no
gradient, the Hurwitz zeta none with respect to its first argument and the incomplete
gamma functions none with respect to ``a`` (both raise when asked for it); Y0, Y1, K0,
K1 and the scaled K0, K1 have none either.

Where torch's value is a numerical accident darklib gives the mathematical one: i0 and
i1 are finite up to their own overflow (torch's overflow with e^x, from 709.78; 88.7 in
float32) and +-inf at +-inf (torch: NaN), J0 and J1 are 0 at +-inf (torch: NaN),
polygamma(1, x) is inf at the negative integers (torch: about 6.6e32) and polygamma(n, inf)
and zeta(s, inf) are 0 (torch: NaN for n >= 2), Y0 and Y1 are 0 at inf (torch: NaN).

The orthogonal polynomials (Chebyshev T/U/V/W and shifted, Hermite H/He, Laguerre L,
Legendre P; no gradient, as torch) follow torch's rules: n cast to an integer toward 0
(NaN, inf and |n| >= 2^63 as negative), 0 for negative n, the end-point values, the
trigonometric forms above torch's degrees for |y| < 1 and its three-term recurrences
elsewhere, run in float64 for every element at once (an element leaves the loop at its
degree), and NaN for Hermite degrees above 128 (float32) or 512 (float64). Where they
differ: a value that overflows past the last zero (or at +-inf) is the signed inf of the
leading term (torch: NaN from inf - inf), float32 is the float64 value rounded once (torch
rounds each step), NaN x gives NaN for n >= 1 (torch: sometimes an uninitialised value at
n = 2), shifted W near x = 1 is about 2n + 1 (torch: +-1), Chebyshev degrees above 4096
with |y| > 1 use the cosh/sinh forms, and Legendre/Laguerre refuse degrees that would take
more than 2^17 recurrence steps. Airy Ai is 0 at +-inf (torch: NaN).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib.autograd import Function
from darklib.backend import get_xp, gpu_special
from darklib.errors import InvalidType
from darklib.kernels import normal
from darklib.kernels import parallel as par
from darklib.ops import elementwise as E
from darklib.ops._promote import promote, result_dtype
from darklib.tensor import Tensor

_EULER = 0.57721566490153286060651209008240243  # Euler-Mascheroni constant
_LOG_2PI_HALF = 0.5 * math.log(2 * math.pi)
_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2 / _SQRT_PI
_SQRT_2PI = math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
_LOG_PI = math.log(math.pi)

# ------------------------------------------------------------------ constants, computed once


@functools.cache
def _bernoulli(n: int) -> tuple[Fraction, ...]:
    """B_0 .. B_n exactly (B_1 = -1/2), from sum_{k<=m} C(m+1, k) B_k = 0."""
    b: list[Fraction] = []
    for m in range(n + 1):
        if m == 0:
            b.append(Fraction(1))
            continue
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
    return tuple(b)


def _b2k(k: int) -> float:
    """The Bernoulli number B_{2k} as a float."""
    return float(_bernoulli(2 * k)[2 * k])


@functools.cache
def _zeta_tails(kmax: int) -> tuple[float, ...]:
    """c_k = zeta(k) - 1 - 2^-k = sum_{n >= 3} n^-k for k = 0 .. kmax (c_0 = c_1 = 0): a
    direct sum to 19 and the Euler-Maclaurin remainder from 20, in Python floats."""
    out = [0.0, 0.0]
    m = 20
    for k in range(2, kmax + 1):
        head = math.fsum(n ** (-k) for n in range(3, m))
        tail = [m ** (1 - k) / (k - 1), 0.5 * m ** (-k)]
        rising = float(k)  # k (k+1) ... (k+2j-2)
        for j in range(1, 12):
            tail.append(_b2k(j) / math.factorial(2 * j) * rising * m ** (-k - 2 * j + 1))
            rising *= (k + 2 * j - 1) * (k + 2 * j)
        out.append(head + math.fsum(tail))
    return tuple(out)


_SERIES_TERMS = 24  # |z| <= 1/2 around 1: terms fall as (z/3)^k


@functools.cache
def _lgamma1p_coeffs() -> tuple[float, ...]:
    """Horner coefficients (highest power first, down to z^2) of
    sum_{k>=2} (-1)^k c_k z^k / k, the smooth part of lgamma(1 + z)."""
    c = _zeta_tails(_SERIES_TERMS)
    return tuple((-1) ** k * c[k] / k for k in range(_SERIES_TERMS, 1, -1))


@functools.cache
def _digamma1p_coeffs() -> tuple[float, ...]:
    """Horner coefficients (highest power first, down to z^1) of
    sum_{k>=2} (-1)^k c_k z^(k-1), the smooth part of digamma(1 + z)."""
    c = _zeta_tails(_SERIES_TERMS)
    return tuple((-1) ** k * c[k] for k in range(_SERIES_TERMS, 1, -1))


def _horner(coeffs: tuple[float, ...], z: Any) -> Any:
    acc = coeffs[0] + 0 * z  # a new array (or number): the steps below update it in place
    for c in coeffs[1:]:
        acc *= z
        acc += c
    return acc


# ------------------------------------------------------------------ evaluation helpers


def _fill(out: Any, mask: Any, fn: Callable[..., Any], *args: Any) -> None:
    """``out[mask] = fn(*(a[mask] for a in args))``, where anything is selected (each
    branch of a piecewise function runs only on its own elements).

    On NumPy through the positions (``flatnonzero``, ``take``, a put): boolean indexing
    there walks the mask element by element, about 4.7 ns per element of the whole array
    for each gather or scatter, where the positions cost 0.7 ns once and 0.4-0.6 ns per
    selected element (measured on 1e6 float64; the piecewise functions here run several
    branches, each reading one or two arrays)."""
    if get_xp(out) is not np or not out.flags.c_contiguous:
        if mask.any():
            out[mask] = fn(*(a[mask] for a in args))
        return
    idx = np.flatnonzero(mask)
    flat = out.reshape(-1)
    if idx.size == flat.size:  # every element: no gather or scatter
        flat[...] = fn(*(np.reshape(a, -1) for a in args))
    elif idx.size:
        flat[idx] = fn(*(np.take(a, idx) for a in args))


def _sinpi(xp: Any, x: Any) -> Any:
    """sin(pi x) with the argument reduced exactly (0 at every integer)."""
    r = x - 2 * xp.round(x / 2)  # in [-1, 1], exact
    a = xp.abs(r)
    a = xp.where(a > 0.5, 1 - a, a)  # sin(pi (1 - a)) = sin(pi a); 1 - a exact here
    return xp.copysign(xp.sin(math.pi * a), r)


def _cospi(xp: Any, x: Any) -> Any:
    """cos(pi x) with the argument reduced exactly (0 at every half-integer)."""
    a = xp.abs(x - 2 * xp.round(x / 2))  # cos is even: |r| in [0, 1]
    flip = a > 0.5
    b = xp.where(flip, 1 - a, a)  # in [0, 1/2]
    c = xp.sin(math.pi * (0.5 - b))
    return xp.where(flip, -c, c)


def _is_int(xp: Any, x: Any) -> Any:
    return x == xp.floor(x)


def _exact_square(xp: Any, x: Any) -> tuple[Any, Any]:
    """x^2 as hi + lo exactly (Dekker's product: x split in two 26-bit halves); lo is 0
    where x^2 is beyond exp's range anyway (there it could be large, and exp(lo) 0 or inf)."""
    c = 134217729.0 * x  # 2^27 + 1
    hi = c - (c - x)
    hi = xp.where(xp.isfinite(hi), hi, x)
    lo = x - hi
    sq = x * x
    err = ((hi * hi - sq) + 2 * hi * lo) + lo * lo
    return sq, xp.where(xp.isfinite(err) & (sq < 1500.0), err, 0.0)


def _square_exp(xp: Any, x: Any, scale: float = 1.0) -> Any:
    """exp(-scale x^2) from the exact square of x, so that the rounding of x^2 (relative
    1e-16, absolute 7e-14 at x = 26) does not reach the result."""
    sq, err = _exact_square(xp, x)
    return xp.exp(-scale * sq) * xp.exp(-scale * err)


# ------------------------------------------------------------------ log-gamma and digamma


def _lgamma1p_series(xp: Any, z: Any) -> Any:
    """lgamma(1 + z) for |z| <= 1/2 (A&S 6.1.33 with the first two zeta terms summed in
    closed form): -gamma z + (z - log1p z) + (z/2 - log1p(z/2)) + sum (-1)^k c_k z^k / k."""
    poly = _horner(_lgamma1p_coeffs(), z) * z * z
    return -_EULER * z + (z - xp.log1p(z)) + (0.5 * z - xp.log1p(0.5 * z)) + poly


def _digamma1p_series(xp: Any, z: Any) -> Any:
    """digamma(1 + z) for |z| <= 1/2: -gamma + z/(1+z) + z/(2(2+z)) + sum (-1)^k c_k z^(k-1)."""
    poly = _horner(_digamma1p_coeffs(), z) * z
    return -_EULER + z / (1 + z) + z / (2 * (2 + z)) + poly


_STIRLING_TERMS = 9


@functools.cache
def _stirling_lgamma() -> tuple[float, ...]:
    """B_2k / (2k (2k-1)), highest k first: lgamma's asymptotic series in 1/x^2."""
    return tuple(_b2k(k) / (2 * k * (2 * k - 1)) for k in range(_STIRLING_TERMS, 0, -1))


@functools.cache
def _stirling_digamma() -> tuple[float, ...]:
    """B_2k / (2k), highest k first: digamma's asymptotic series in 1/x^2."""
    return tuple(_b2k(k) / (2 * k) for k in range(_STIRLING_TERMS, 0, -1))


def _shift_down(xp: Any, x: Any) -> tuple[Any, Any]:
    """For x in [2.5, 13): m = floor(x - 3/2) and x - m in [1.5, 2.5) (exact)."""
    m = xp.floor(x - 1.5)
    return m, x - m


def _lgamma_pos(xp: Any, x: Any) -> Any:
    """lgamma for finite x >= 1/2."""
    out = xp.empty_like(x)
    _fill(out, x < 1.5, lambda v: _lgamma1p_series(xp, v - 1), x)
    _fill(out, (x >= 1.5) & (x < 2.5), lambda v: xp.log1p(v - 2) + _lgamma1p_series(xp, v - 2), x)

    def shifted(v: Any) -> Any:  # lgamma(x) = log((x-1)...(x-m)) + lgamma(x - m)
        m, y = _shift_down(xp, v)
        prod = xp.ones_like(v)
        for j in range(1, 12):
            # the factor x - j where j <= m, else 1, as 1 + (j <= m)(x - j - 1): exact
            # (x - j - 1 is, for x in [2.5, 13)), five passes where xp.where took ten
            f = v - (j + 1)
            f *= j <= m
            f += 1
            prod *= f
        return xp.log(prod) + (xp.log1p(y - 2) + _lgamma1p_series(xp, y - 2))

    _fill(out, (x >= 2.5) & (x < 13), shifted, x)

    def stirling(v: Any) -> Any:
        r = 1 / v
        corr = _horner(_stirling_lgamma(), r * r) * r
        return (v - 0.5) * xp.log(v) - v + _LOG_2PI_HALF + corr

    _fill(out, x >= 13, stirling, x)
    return out


def _lgamma_core(xp: Any, x: Any) -> Any:
    """log|Gamma(x)| for float64 x: inf at the poles (0, negative integers) and at +-inf."""
    out = xp.full(x.shape, xp.nan)
    finite = xp.isfinite(x)
    _fill(out, finite & (x >= 0.5), lambda v: _lgamma_pos(xp, v), x)
    # |x| < 1/2: Gamma(x) = Gamma(1 + x) / x
    _fill(out, xp.abs(x) < 0.5, lambda v: _lgamma1p_series(xp, v) - xp.log(xp.abs(v)), x)

    def reflected(v: Any) -> Any:  # Gamma(x) Gamma(1 - x) = pi / sin(pi x)
        return xp.log(math.pi / xp.abs(_sinpi(xp, v))) - _lgamma_pos(xp, 1 - v)

    _fill(out, finite & (x <= -0.5), reflected, x)
    return xp.where(xp.isinf(x), xp.inf, out)


def _lgamma_edges(xp: Any, x: Any, out: Any) -> Any:
    return xp.where(xp.isinf(x) | ((x <= 0) & _is_int(xp, x)), xp.inf, out)


def _digamma_pos(xp: Any, x: Any) -> Any:
    """digamma for x >= 1/2 (+inf included)."""
    out = xp.empty_like(x)
    _fill(out, x < 1.5, lambda v: _digamma1p_series(xp, v - 1), x)

    def near2(v: Any) -> Any:
        return _digamma1p_series(xp, v - 2) + 1 / (v - 1)

    _fill(out, (x >= 1.5) & (x < 2.5), near2, x)

    def shifted(v: Any) -> Any:  # digamma(x) = digamma(x - m) + sum_j 1 / (x - j)
        m, y = _shift_down(xp, v)
        acc = near2(y)
        for j in range(1, 12):
            # 1 / (x - j) where j <= m, else 0: (j <= m) / max(x - j, y), exact (x - j >= y
            # exactly where j <= m; y >= 1.5 keeps 0 / y from 0 / 0), without xp.where
            acc += (j <= m) / xp.maximum(v - j, y)
        return acc

    _fill(out, (x >= 2.5) & (x < 13), shifted, x)

    def asymptotic(v: Any) -> Any:
        r2 = 1 / (v * v)
        return xp.log(v) - 0.5 / v - _horner(_stirling_digamma(), r2) * r2

    _fill(out, x >= 13, asymptotic, x)
    return out


def _digamma_core(xp: Any, x: Any) -> Any:
    """digamma for float64 x: -inf at +0 and +inf at -0 (as torch), NaN at the negative
    integers and -inf, +inf at +inf."""
    out = xp.full(x.shape, xp.nan)
    _fill(out, x >= 0.5, lambda v: _digamma_pos(xp, v), x)
    # |x| < 1/2: digamma(x) = digamma(1 + x) - 1/x (+-inf at +-0)
    _fill(out, xp.abs(x) < 0.5, lambda v: _digamma1p_series(xp, v) - 1 / v, x)

    def reflected(v: Any) -> Any:  # digamma(1 - x) - digamma(x) = pi cot(pi x)
        return _digamma_pos(xp, 1 - v) - math.pi * _cospi(xp, v) / _sinpi(xp, v)

    _fill(out, xp.isfinite(x) & (x <= -0.5) & ~_is_int(xp, x), reflected, x)
    return out


def _digamma_edges(xp: Any, x: Any, out: Any) -> Any:
    out = xp.where(x == 0, xp.copysign(xp.inf, -x), out)
    out = xp.where((x < 0) & _is_int(xp, x), xp.nan, out)
    return xp.where(x == xp.inf, xp.inf, out)


# ------------------------------------------------------------------ Hurwitz zeta, polygamma

_EM_TERMS = 12


@functools.cache
def _em_coeffs() -> tuple[float, ...]:
    """B_2j / (2j)! for j = 1 .. 12: the Euler-Maclaurin remainder's coefficients."""
    return tuple(_b2k(j) / math.factorial(2 * j) for j in range(1, _EM_TERMS + 1))


def _inv_power(xp: Any, v: Any, s: Any, whole: int | None) -> Any:
    """v^-s; by repeated squaring where s is one whole number for all (``whole``, from
    polygamma: a few multiplications instead of a pow per element)."""
    if whole is None:
        return v**-s
    # powers of 1/v: v^whole overflowed to inf (and 1/inf to 0) where v^-whole is a
    # representable small number (polygamma(1, 1e160) = 1e-160 came out 0)
    acc, base, m = None, 1 / v, whole
    while m:
        if m & 1:
            acc = base if acc is None else acc * base
        m >>= 1
        if m:
            base = base * base
    return acc


def _zeta_regular(xp: Any, s: Any, q: Any, whole: int | None = None) -> Any:
    """sum_{k>=0} (q + k)^-s for finite s > 1 and finite q (q > 0, or s an integer and q
    not a pole): the first terms directly, until q + k reaches 10 + s/2 (more for larger
    s, so that the remainder's series converges fast), then Euler-Maclaurin. Every element
    takes at least the number of direct terms the others need (up to 32: whole arrays, no
    masks); elements far below 0 go on alone."""
    width = 10 + 0.5 * xp.minimum(s, 100.0)
    need = xp.maximum(xp.ceil(width - q), 0.0)
    common = float(min(need.max(), 32.0)) if need.size else 0.0
    n = xp.maximum(need, common)
    total = xp.zeros_like(q)
    for k in range(int(common)):
        total += _inv_power(xp, q + k, s, whole)
    idx = xp.nonzero(n > common)[0]
    k = int(common)
    while idx.size:
        total[idx] += _inv_power(xp, q[idx] + k, s[idx], whole)
        k += 1
        idx = idx[n[idx] > k]
    w = q + n
    b = _inv_power(xp, w, s, whole)
    coeffs = _em_coeffs()
    rising = s / w  # s (s+1) ... (s+2j-2) / w^(2j-1)
    corr = xp.zeros_like(w)
    for j, c in enumerate(coeffs, start=1):
        corr = corr + c * rising
        rising = rising * (s + 2 * j - 1) * (s + 2 * j) / (w * w)
    # the integral term w^(1-s) / (s-1) on its own: b * w underflows first for huge w
    lead = _inv_power(xp, w, s - 1, None if whole is None else whole - 1) / (s - 1)
    return total + lead + b * (0.5 + corr)


def _zeta_core(xp: Any, s: Any, q: Any, whole: int | None = None) -> Any:
    """The Hurwitz zeta function sum_{k>=0} (q + k)^-s, with torch's conventions: inf at
    s = 1 and at q a non-positive integer, NaN for s < 1 and for q < 0 with s not an
    integer; sums over negative q (integer s) as the series itself defines them.
    ``whole``: s is this whole number everywhere (polygamma)."""
    s, q = xp.broadcast_arrays(s, q)
    s, q = s.copy(), q.copy()  # (writable, contiguous)
    out = xp.full(s.shape, xp.nan)
    regular = (
        (s > 1)
        & xp.isfinite(s)
        & xp.isfinite(q)
        & ((q > 0) | ((q < 0) & _is_int(xp, s) & ~_is_int(xp, q)))
    )
    _fill(out, regular, lambda a, b: _zeta_regular(xp, a, b, whole), s, q)
    return _zeta_edges(xp, s, q, out)


def _zeta_edges(xp: Any, s: Any, q: Any, out: Any) -> Any:
    big = s > 1
    out = xp.where(big & (q == xp.inf), 0.0, out)  # (torch: NaN; the limit is 0)
    out = xp.where((s == xp.inf) & (q > 0), q**-s, out)  # 1 at q = 1, 0 above, inf below
    out = xp.where((s == xp.inf) & (q < 0), xp.nan, out)
    out = xp.where(big & (q <= 0) & _is_int(xp, q), xp.inf, out)
    out = xp.where(s < 1, xp.nan, out)
    out = xp.where(s == 1, xp.inf, out)
    return xp.where(xp.isnan(s) | xp.isnan(q), xp.nan, out)


def _factorial(n: int) -> float:
    return float(math.factorial(n)) if n <= 170 else math.inf


def _polygamma_core(xp: Any, n: int, x: Any) -> Any:
    if n == 0:
        return _digamma_edges(xp, x, _digamma_core(xp, x))
    # far below 0 the zeta sum runs term by term up to 0 (6 s at -1e6) and cancels for
    # even n: the reflection formula from 1 - x there
    far = (x < _REFLECT_BELOW) & ~_is_int(xp, x) & xp.isfinite(x)
    out = xp.empty(x.shape, xp.float64)
    _fill(out, ~far, lambda v: _polygamma_direct(xp, n, v), x)
    _fill(out, far, lambda v: _polygamma_reflected(xp, n, v), x)
    return out


def _polygamma_direct(xp: Any, n: int, x: Any) -> Any:
    sign = 1.0 if n % 2 else -1.0
    return sign * _factorial(n) * _zeta_core(xp, xp.full(x.shape, n + 1.0), x, n + 1)


_REFLECT_BELOW = -30.0


@functools.cache
def _cot_derivative(n: int) -> tuple[float, ...]:
    """Coefficients (highest power first) of P_n with d^n/dt^n cot(t) = P_n(cot t):
    P_0(u) = u, P_(k+1)(u) = -(1 + u^2) P_k'(u)."""
    p = [0, 1]  # ascending powers, exact integers
    for _ in range(n):
        d = [k * c for k, c in enumerate(p)][1:]
        nxt = [0] * (len(d) + 2)
        for k, c in enumerate(d):
            nxt[k] -= c
            nxt[k + 2] -= c
        p = nxt
    return tuple(float(c) for c in reversed(p))


def _polygamma_reflected(xp: Any, n: int, x: Any) -> Any:
    """psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)) for non-integer x
    (DLMF 5.15.6 differentiated n times)."""
    right = _polygamma_direct(xp, n, 1 - x)
    cot = _cospi(xp, x) / _sinpi(xp, x)
    return (-1.0) ** n * right - math.pi ** (n + 1) * _horner(_cot_derivative(n), cot)


def _polygamma_gpu(xp: Any, n: int, x: Any) -> Any:
    if n == 0:
        return _digamma_edges(xp, x, gpu_special("digamma")(x))
    sign = 1.0 if n % 2 else -1.0
    s = xp.full(x.shape, n + 1.0, x.dtype)
    z = _zeta_edges(xp, s, x, gpu_special("zeta")(s, x))
    return (sign * _factorial(n) * z).astype(x.dtype, copy=False)


# ------------------------------------------------------------------ modified Bessel I0, I1

_I_SERIES_TERMS = 64
_I_ASYMPTOTIC_TERMS = 40
_I_SWITCH = 25.0


def _bessel_i_series(xp: Any, x: Any, nu: int) -> Any:
    """I_nu(x) = (x/2)^nu sum_k (x^2/4)^k / (k! (k+nu)!) for nu = 0, 1: positive terms, no
    cancellation; 64 terms reach 1e-17 of the sum for |x| <= 25."""
    q = 0.25 * x * x
    term = xp.ones_like(x)
    acc = xp.ones_like(x)
    for k in range(1, _I_SERIES_TERMS):
        term = term * q / (k * (k + nu))
        acc = acc + term
    return acc if nu == 0 else 0.5 * x * acc


def _bessel_i_asymptotic(xp: Any, x: Any, nu: int) -> Any:
    """sqrt(2 pi x) e^-x I_nu(x) for x >= 25: 1 - (mu-1)/(8x) + (mu-1)(mu-9)/(2! (8x)^2) - ...
    with mu = 4 nu^2 (the smallest term, near k = 2x, is below 1e-21)."""
    mu = 4.0 * nu * nu
    term = xp.ones_like(x)
    acc = xp.ones_like(x)
    for k in range(1, _I_ASYMPTOTIC_TERMS):
        term = term * -(mu - (2 * k - 1) ** 2) / (k * 8 * x)
        acc = acc + term
    return acc


def _bessel_i_core(xp: Any, x: Any, nu: int, scaled: bool) -> Any:
    """I_nu(x), or e^-|x| I_nu(x) when ``scaled``, for nu = 0, 1 (I_1 odd, I_0 even)."""
    ax = xp.abs(x)
    out = xp.full(x.shape, xp.nan)

    def small(v: Any) -> Any:
        r = _bessel_i_series(xp, v, nu)
        return r * xp.exp(-v) if scaled else r

    def large(v: Any) -> Any:
        r = _bessel_i_asymptotic(xp, v, nu) / xp.sqrt(2 * math.pi * v)
        if scaled:
            return r
        h = xp.exp(0.5 * v)  # e^v as two halves: finite up to where I_nu itself overflows
        return h * (h * r)

    _fill(out, ax < _I_SWITCH, small, ax)
    _fill(out, (ax >= _I_SWITCH) & (ax < xp.inf), large, ax)
    out = _bessel_i_edges(xp, x, out, nu, scaled)
    return xp.where(x < 0, -out, out) if nu == 1 else out


def _bessel_i_edges(xp: Any, x: Any, out: Any, nu: int, scaled: bool) -> Any:
    """Values at +-inf on |x| (the sign of I_1 is applied after): I_nu -> inf, the scaled
    functions -> 0 (torch gives NaN for i0(inf) and i1(inf))."""
    return xp.where(xp.isinf(x), 0.0 if scaled else xp.inf, out)


def _bessel_i_gpu(xp: Any, x: Any, nu: int, scaled: bool) -> Any:
    # the scaled ufunc and e^|x| in two halves: the same overflow point as the CPU's
    e = gpu_special("i0e" if nu == 0 else "i1e")(x)
    if not scaled:
        h = xp.exp(0.5 * xp.abs(x))
        e = h * (h * e)
    out = xp.where(xp.isinf(x), 0.0 if scaled else xp.inf, e)
    if nu == 1:
        out = xp.where(xp.isinf(x), xp.copysign(out, x), out)
    return out.astype(x.dtype, copy=False)


# ------------------------------------------------------------------ erfcx, normal distribution
# (their values on the CPU: kernels/normal.py; the GPU's come from CuPy, edges set here)


def _erfcx_edges(xp: Any, x: Any, out: Any) -> Any:
    return xp.where(x == xp.inf, 0.0, xp.where(x == -xp.inf, xp.inf, out))


def _erfcx_slope(xp: Any, x: Any, y: Any) -> Any:
    """erfcx'(x) = 2x erfcx(x) - 2/sqrt(pi), which cancels for large x: there (x >= 10)
    2/sqrt(pi) (x sqrt(pi) erfcx(x) - 1) from the asymptotic series
    x sqrt(pi) erfcx(x) = 1 + sum_{n>=1} (-1)^n (2n-1)!! / (2x^2)^n."""
    big = x >= 10
    v = xp.where(big, x, 10.0)
    u = 1 / (2 * v * v)
    term = xp.ones_like(v)
    acc = xp.zeros_like(v)
    for n in range(1, 16):
        term = term * -(2 * n - 1) * u
        acc = acc + term
    return xp.where(big, _TWO_OVER_SQRT_PI * acc, 2 * x * y - _TWO_OVER_SQRT_PI)


def _ndtr_edges(xp: Any, x: Any, out: Any) -> Any:
    return xp.where(x == xp.inf, 1.0, xp.where(x == -xp.inf, 0.0, out))


def _log_ndtr_edges(xp: Any, x: Any, out: Any) -> Any:
    return xp.where(x == xp.inf, -0.0, xp.where(x == -xp.inf, -xp.inf, out))


def _ndtri_edges(xp: Any, p: Any, out: Any) -> Any:
    out = xp.where(p == 0, -xp.inf, xp.where(p == 1, xp.inf, out))
    return xp.where((p < 0) | (p > 1), xp.nan, out)


# ------------------------------------------------------------------ incomplete gamma

_IGAM_EPS = 1e-17
_IGAM_MAX_ITER = 200_000
_FRACTION_EPS = 2 * float(np.finfo(np.float64).eps)


def _log1pmx(xp: Any, x: Any, a: Any) -> Any:
    """log(x/a) - (x - a)/a, i.e. log1p(t) - t at t = (x - a)/a, without cancellation for
    small t: with u = t / (2 + t), log(1 + t) = 2 atanh(u), so that
    log1p(t) - t = -t u + 2 (u^3/3 + u^5/5 + ...); log(x/a) - t directly elsewhere (t is
    exact near 0 and x/a carries no error into the log where x << a)."""
    t = (x - a) / a
    small = xp.abs(t) <= 0.5
    ts = xp.where(small, t, 0.0)
    u = ts / (2 + ts)
    u2 = u * u
    acc = xp.zeros_like(u)
    for k in range(20, 0, -1):
        acc = acc * u2 + 2.0 / (2 * k + 1)
    near = -ts * u + acc * u2 * u
    return xp.where(small, near, xp.log(x / a) - t)


def _igam_factor(xp: Any, a: Any, x: Any) -> Any:
    """x^a e^-x / Gamma(a) for a > 0, x > 0: directly for a < 10, else as
    sqrt(a / 2 pi) exp(a log1pmx((x - a)/a) - mu(a)) with mu Stirling's correction
    (lgamma(a) minus its leading terms), which keeps the large cancelling terms out."""
    out = xp.empty_like(a)

    def direct(aa: Any, xx: Any) -> Any:
        return xp.exp(aa * xp.log(xx) - xx - _lgamma_core(xp, aa))

    def uniform(aa: Any, xx: Any) -> Any:
        r = 1 / aa
        mu = _horner(_stirling_lgamma(), r * r) * r
        return xp.sqrt(aa / (2 * math.pi)) * xp.exp(aa * _log1pmx(xp, xx, aa) - mu)

    _fill(out, a < 10, direct, a, x)
    _fill(out, a >= 10, uniform, a, x)
    return out


def _igam_series(xp: Any, a: Any, x: Any) -> Any:
    """P(a, x) = x^a e^-x / Gamma(a + 1) sum_n x^n / ((a+1) ... (a+n)), for x < a: its
    terms fall from the first, all positive."""
    term = xp.ones_like(a)
    total = xp.ones_like(a)
    idx = xp.arange(a.size)
    n = 0
    while idx.size and n < _IGAM_MAX_ITER:
        n += 1
        t = term[idx] * x[idx] / (a[idx] + n)
        term[idx] = t
        total[idx] += t
        idx = idx[t > _IGAM_EPS * total[idx]]
    return _igam_factor(xp, a, x) / a * total


def _igamc_fraction(xp: Any, a: Any, x: Any) -> Any:
    """Q(a, x) = x^a e^-x / Gamma(a) / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / ...)),
    Legendre's continued fraction by the modified Lentz method, for x >= a, x > 1.1."""
    tiny = 1e-300
    b = x + 1 - a
    c = xp.full(a.shape, 1 / tiny)
    d = 1 / b
    h = d.copy()
    idx = xp.arange(a.size)
    i = 0
    while idx.size and i < _IGAM_MAX_ITER:
        i += 1
        an = -i * (i - a[idx])
        bi = b[idx] + 2
        b[idx] = bi
        di = an * d[idx] + bi
        di = xp.where(xp.abs(di) < tiny, tiny, di)
        ci = bi + an / c[idx]
        ci = xp.where(xp.abs(ci) < tiny, tiny, ci)
        di = 1 / di
        step = di * ci
        d[idx], c[idx] = di, ci
        h[idx] *= step
        # (within two ulps of 1: a tighter bound is never met once the steps round to
        # 1 - 2**-53, and x = 1e38 then ran _IGAM_MAX_ITER rounds, seconds per element)
        idx = idx[xp.abs(step - 1) > _FRACTION_EPS]
    return _igam_factor(xp, a, x) * h


def _igam_small_x(xp: Any, a: Any, x: Any) -> tuple[Any, Any]:
    """(P, Q) for x <= 1.1: with e = x^a / Gamma(a + 1) and S = sum_{n>=1} (-x)^n / (n! (a+n)),
    P = e (1 + a S) and Q = -expm1(log e) - e a S, each free of cancellation (Q stays
    accurate where it is tiny, for small a)."""
    lg = xp.where(a <= 0.5, _lgamma1p_series(xp, xp.minimum(a, 0.5)), _lgamma_core(xp, a + 1))
    le = a * xp.log(x) - lg
    e = xp.exp(le)
    term = xp.ones_like(x)
    s = xp.zeros_like(x)
    for n in range(1, 30):
        term = term * -x / n
        s = s + term / (a + n)
    return e * (1 + a * s), -xp.expm1(le) - e * a * s


def _igam_core(xp: Any, a: Any, x: Any, upper: bool) -> Any:
    """P(a, x) (``upper`` False) or Q(a, x) = 1 - P(a, x), torch's conventions at the edges."""
    a, x = xp.broadcast_arrays(a, x)
    a, x = a.copy(), x.copy()
    out = xp.full(a.shape, xp.nan)
    regular = (a > 0) & (x > 0) & xp.isfinite(a) & xp.isfinite(x)
    small = regular & (x <= 1.1)
    _fill(out, small, lambda aa, xx: _igam_small_x(xp, aa, xx)[1 if upper else 0], a, x)
    below = regular & (x > 1.1) & (x < a)

    def series(aa: Any, xx: Any) -> Any:
        p = _igam_series(xp, aa, xx)
        return 1 - p if upper else p

    def fraction(aa: Any, xx: Any) -> Any:
        q = _igamc_fraction(xp, aa, xx)
        return q if upper else 1 - q

    # large a with x near a: the series and the fraction need ~sqrt(a) terms there (and
    # stopped short, wrong, past a ~ 1e7): Temme's uniform expansion instead
    near = regular & (a > _TEMME_MIN_A) & (xp.abs(x - a) <= 0.3 * a)
    _fill(out, below & ~near, series, a, x)
    _fill(out, regular & (x > 1.1) & (x >= a) & ~near, fraction, a, x)
    _fill(out, near, lambda aa, xx: _igam_temme(xp, aa, xx, upper), a, x)
    return _igam_edges(xp, a, x, out, upper)


_TEMME_MIN_A = 2e4  # (its two terms are within ~1e-13 there, 1e-15 from a = 1e5)


def _igam_temme(xp: Any, a: Any, x: Any, upper: bool) -> Any:
    """P(a, x) or Q(a, x) by Temme's uniform asymptotic expansion (DLMF 8.12.3-8.12.10):
    Q = erfc(eta sqrt(a/2)) / 2 + R, P = erfc(-eta sqrt(a/2)) / 2 - R, with
    eta^2 / 2 = lambda - 1 - log(lambda), lambda = x / a, eta of the sign of lambda - 1, and
    R = e^(-a eta^2 / 2) / sqrt(2 pi a) (c0(eta) + c1(eta) / a); c0 and c1 from their
    closed forms, or their Taylor series where |eta| < 1e-3 (the closed forms cancel)."""
    t = (x - a) / a  # lambda - 1
    d = _log1pmx(xp, x, a)  # log(lambda) - (lambda - 1) <= 0
    eta = xp.sign(t) * xp.sqrt(-2 * d)
    small = xp.abs(eta) < 1e-3
    es = xp.where(small, eta, 0.0)
    c0_near = _horner((1 / 25515, -139 / 777600, 1 / 2835, 1 / 864, -2 / 135, 1 / 12, -1 / 3), es)
    c1_near = _horner((1 / 378, -1 / 288, -1 / 540), es)
    e, tt = xp.where(small, 1.0, eta), xp.where(small, 1.0, t)
    c0 = xp.where(small, c0_near, 1 / tt - 1 / e)
    c1 = xp.where(small, c1_near, 1 / e**3 - 1 / tt**3 - 1 / tt**2 - 1 / (12 * tt))
    r = xp.exp(a * d) / xp.sqrt(2 * math.pi * a) * (c0 + c1 / a)
    z = eta * xp.sqrt(a / 2)
    return 0.5 * E._erfc(xp, z) + r if upper else 0.5 * E._erfc(xp, -z) - r


def _igam_edges(xp: Any, a: Any, x: Any, out: Any, upper: bool) -> Any:
    one, zero = (0.0, 1.0) if upper else (1.0, 0.0)  # (P's value, and Q's for it)
    out = xp.where(x == xp.inf, one, out)
    out = xp.where((a == xp.inf) & (x < xp.inf), zero, out)
    out = xp.where((x == 0) & (a > 0), zero, out)
    out = xp.where((a == 0) & (x > 0), one, out)
    bad = (x < 0) | (a < 0) | ((a == 0) & (x == 0)) | ((a == xp.inf) & (x == xp.inf))
    return xp.where(bad | xp.isnan(a) | xp.isnan(x), xp.nan, out)


def _igam_slope(xp: Any, a: Any, x: Any) -> Any:
    """dP/dx = x^(a-1) e^-x / Gamma(a): torch's exp((a-1) log x - x - lgamma(a)), with the
    accurate factor of :func:`_igam_factor` where a >= 10 (the large terms cancel there)."""
    a, x = xp.broadcast_arrays(a, x)
    direct = xp.exp((a - 1) * xp.log(x) - x - _lgamma_core(xp, a))
    good = (a >= 10) & xp.isfinite(a) & (x > 0) & xp.isfinite(x)
    out = direct.copy()
    _fill(out, good, lambda aa, xx: _igam_factor(xp, aa, xx) / xx, a, x)
    return out


# ------------------------------------------------------------------ Bessel J0, J1

_J_SWITCH = 25.0
_J_MILLER_START = 80  # J_80(25) ~ 1e-31: the recurrence's error is below 1e-17
_J_ASYMPTOTIC_TERMS = 24


def _bessel_j_small(xp: Any, x: Any) -> tuple[Any, Any]:
    """(J0, J1) from their power series: for |x| < 1/2 here, for Y0, Y1 up to 2 (the 12th
    term is below 5e-18 there)."""
    q = -0.25 * x * x
    t0 = xp.ones_like(x)
    t1 = xp.ones_like(x)
    j0 = xp.ones_like(x)
    j1 = xp.ones_like(x)
    for k in range(1, 12):
        t0 = t0 * q / (k * k)
        t1 = t1 * q / (k * (k + 1))
        j0 = j0 + t0
        j1 = j1 + t1
    return j0, 0.5 * x * j1


def _bessel_j_miller(xp: Any, x: Any) -> tuple[Any, Any]:
    """(J0, J1) for 1/2 <= x < 25 by Miller's backward recurrence
    J_(n-1) = (2n/x) J_n - J_(n+1) from n = 80, normalised by J0 + 2 (J2 + J4 + ...) = 1
    (rescaled on the way: the values grow by up to 1e300)."""
    inv = 2 / x
    nxt = xp.zeros_like(x)
    cur = xp.full(x.shape, 1e-300)
    norm = xp.zeros_like(x)
    j1 = xp.zeros_like(x)
    for n in range(_J_MILLER_START, 0, -1):
        prev = (n * inv) * cur - nxt
        if n == 1:
            j1 = cur
        nxt, cur = cur, prev
        if (n - 1) % 2 == 0 and n - 1 > 0:
            norm = norm + 2 * cur
        if n % 8 == 0:  # (8 steps grow the values by at most (160/0.5)^8 = 1e20)
            scale = xp.where(xp.abs(cur) > 1e200, 1e-200, 1.0)
            cur, nxt, norm = cur * scale, nxt * scale, norm * scale
    norm = norm + cur
    return cur / norm, j1 / norm


@functools.cache
def _hankel_coeffs(nu: int) -> tuple[float, ...]:
    """a_k(nu) = (4nu^2 - 1)(4nu^2 - 9)...(4nu^2 - (2k-1)^2) / (k! 8^k), k = 0, 1, ..."""
    mu = 4 * nu * nu
    out = [1.0]
    for k in range(1, 2 * _J_ASYMPTOTIC_TERMS):
        out.append(out[-1] * (mu - (2 * k - 1) ** 2) / (k * 8))
    return tuple(out)


def _bessel_j_asymptotic(xp: Any, x: Any, nu: int, second: bool = False) -> Any:
    """J_nu(x) for x >= 25 from Hankel's expansion sqrt(2/(pi x)) (P cos chi - Q sin chi),
    chi = x - (nu/2 + 1/4) pi, with cos chi and sin chi from cos x and sin x (no rounding
    of x - pi/4 for large x); Y_nu(x) = sqrt(2/(pi x)) (P sin chi + Q cos chi) for
    ``second``."""
    a = _hankel_coeffs(nu)
    r = 1 / x
    p = xp.zeros_like(x)
    q = xp.zeros_like(x)
    for k in range(_J_ASYMPTOTIC_TERMS - 1, -1, -1):
        p = p * (-r * r) + a[2 * k]
        q = q * (-r * r) + a[2 * k + 1]
    q = q * r
    c, s = xp.cos(x), xp.sin(x)
    if nu == 0:  # chi = x - pi/4
        cc, sc = (c + s) * _SQRT_HALF, (s - c) * _SQRT_HALF
    else:  # chi = x - 3 pi/4
        cc, sc = (s - c) * _SQRT_HALF, -(s + c) * _SQRT_HALF
    if second:
        return xp.sqrt(2 / (math.pi * x)) * (p * sc + q * cc)
    return xp.sqrt(2 / (math.pi * x)) * (p * cc - q * sc)


def _bessel_j_core(xp: Any, x: Any, nu: int) -> Any:
    """J0 (even) or J1 (odd); 0 at +-inf (torch: NaN)."""
    ax = xp.abs(x)
    out = xp.full(x.shape, xp.nan)
    _fill(out, ax < 0.5, lambda v: _bessel_j_small(xp, v)[nu], ax)
    _fill(out, (ax >= 0.5) & (ax < _J_SWITCH), lambda v: _bessel_j_miller(xp, v)[nu], ax)
    _fill(out, (ax >= _J_SWITCH) & (ax < xp.inf), lambda v: _bessel_j_asymptotic(xp, v, nu), ax)
    out = xp.where(xp.isinf(x), 0.0, out)
    return xp.where(x < 0, -out, out) if nu == 1 else out


# ------------------------------------------------------------------ Bessel Y0, Y1 and K0, K1

_Y_SERIES_BELOW = 2.0
_Y_SERIES_TERMS = 30  # (x^2/4)^k / k!^2 at x = 2, k = 30: 4e-65
_Y_MILLER_START = 90


def _log_half_euler(xp: Any, x: Any) -> Any:
    return xp.log(0.5 * x) + _EULER


def _y_small(xp: Any, x: Any, nu: int) -> Any:
    """Y0 or Y1 for 0 < x < 2 from their power series (DLMF 10.8.2):
    Y0 = 2/pi ((log(x/2) + gamma) J0 + sum_{k>=1} (-1)^(k+1) H_k (x^2/4)^k / k!^2),
    Y1 = -2/(pi x) + 2/pi log(x/2) J1
         - x/(2 pi) sum_{k>=0} (psi(k+1) + psi(k+2)) (-x^2/4)^k / (k! (k+1)!)."""
    q = -0.25 * x * x
    j0, j1 = _bessel_j_small(xp, x)
    term = xp.ones_like(x)
    acc = xp.zeros_like(x)
    harmonic = 0.0
    if nu == 0:
        for k in range(1, _Y_SERIES_TERMS):
            term = term * q / (k * k)
            harmonic += 1.0 / k
            acc = acc - harmonic * term
        return (2 / math.pi) * (_log_half_euler(xp, x) * j0 + acc)
    acc = xp.full(x.shape, 1.0 - 2 * _EULER)  # (k = 0: psi(1) + psi(2))
    for k in range(1, _Y_SERIES_TERMS):
        term = term * q / (k * (k + 1))
        harmonic += 1.0 / k
        acc = acc + (2 * harmonic + 1.0 / (k + 1) - 2 * _EULER) * term
    return -2 / (math.pi * x) + (2 / math.pi) * xp.log(0.5 * x) * j1 - x / (2 * math.pi) * acc


def _y_miller(xp: Any, x: Any, nu: int) -> Any:
    """Y0 or Y1 for 2 <= x < 25 from Neumann's series over J_n (Miller's backward
    recurrence, normalised by J0 + 2 (J2 + J4 + ...) = 1):
    Y0 = 2/pi ((log(x/2) + gamma) J0 - 2 sum_{k>=1} (-1)^k J_2k / k), and Y1 = -Y0':
    Y1 = 2/pi ((log(x/2) + gamma) J1 - J0 / x + sum_{k>=1} (-1)^k (J_(2k-1) - J_(2k+1)) / k)."""
    inv = 2 / x
    nxt = xp.zeros_like(x)
    cur = xp.full(x.shape, 1e-300)  # J_n for n = _Y_MILLER_START, unnormalised
    norm = xp.zeros_like(x)
    s0 = xp.zeros_like(x)  # sum (-1)^k J_2k / k
    s1 = xp.zeros_like(x)  # sum (-1)^k (J_(2k-1) - J_(2k+1)) / k
    for n in range(_Y_MILLER_START, 0, -1):
        prev = (n * inv) * cur - nxt  # J_(n-1)
        m = n - 1
        if m > 0 and m % 2 == 0:
            k = m // 2
            norm = norm + 2 * prev
            s0 = s0 + (-1) ** k * prev / k
        if m % 2 == 1:  # J_m with m = 2k - 1 (k = (m + 1) / 2) and m = 2k + 1 (k = (m - 1) / 2)
            s1 = s1 + (-1) ** ((m + 1) // 2) * prev / ((m + 1) // 2)
            if m > 1:
                s1 = s1 - (-1) ** ((m - 1) // 2) * prev / ((m - 1) // 2)
        nxt, cur = cur, prev
        if n % 8 == 0:  # (keep the values finite: they grow by up to 1e20 per 8 steps)
            scale = xp.where(xp.abs(cur) > 1e200, 1e-200, 1.0)
            cur, nxt, norm, s0, s1 = cur * scale, nxt * scale, norm * scale, s0 * scale, s1 * scale
    norm = norm + cur
    j0, j1 = cur / norm, nxt / norm
    lead = _log_half_euler(xp, x)
    if nu == 0:
        return (2 / math.pi) * (lead * j0 - 2 * s0 / norm)
    return (2 / math.pi) * (lead * j1 - j0 / x + s1 / norm)


def _bessel_y_core(xp: Any, x: Any, nu: int) -> Any:
    """Y0 or Y1: -inf at 0, NaN below, 0 at inf (torch: NaN)."""
    out = xp.full(x.shape, xp.nan)
    _fill(out, (x > 0) & (x < _Y_SERIES_BELOW), lambda v: _y_small(xp, v, nu), x)
    _fill(out, (x >= _Y_SERIES_BELOW) & (x < _J_SWITCH), lambda v: _y_miller(xp, v, nu), x)
    big = (x >= _J_SWITCH) & (x < xp.inf)
    _fill(out, big, lambda v: _bessel_j_asymptotic(xp, v, nu, second=True), x)
    out = xp.where(x == 0, -xp.inf, out)
    return xp.where(x == xp.inf, 0.0, out)


_K_SERIES_BELOW = 1.0
_K_ASYMPTOTIC_FROM = 25.0
_K_STEP = 1 / 32  # trapezoidal steps in t over [0, 4.5]: e^(x (1 - cosh 4.5)) < 1e-18 for x >= 1
_K_NODES = 145


def _k_small(xp: Any, x: Any, nu: int) -> Any:
    """K0 or K1 for 0 < x < 1 from their series (DLMF 10.31.2, positive sums):
    K0 = -(log(x/2) + gamma) I0 + sum_{k>=1} H_k (x^2/4)^k / k!^2,
    K1 = 1/x + log(x/2) I1 - x/4 sum_{k>=0} (psi(k+1) + psi(k+2)) (x^2/4)^k / (k! (k+1)!)."""
    q = 0.25 * x * x
    term = xp.ones_like(x)
    harmonic = 0.0
    if nu == 0:
        acc = xp.zeros_like(x)
        for k in range(1, _Y_SERIES_TERMS):
            term = term * q / (k * k)
            harmonic += 1.0 / k
            acc = acc + harmonic * term
        return acc - _log_half_euler(xp, x) * _bessel_i_series(xp, x, 0)
    acc = xp.full(x.shape, 1.0 - 2 * _EULER)
    for k in range(1, _Y_SERIES_TERMS):
        term = term * q / (k * (k + 1))
        harmonic += 1.0 / k
        acc = acc + (2 * harmonic + 1.0 / (k + 1) - 2 * _EULER) * term
    return 1 / x + xp.log(0.5 * x) * _bessel_i_series(xp, x, 1) - 0.25 * x * acc


def _k_integral(xp: Any, x: Any, nu: int) -> Any:
    """e^x K_nu(x) for 1 <= x < 25 as int_0^inf e^(-x (cosh t - 1)) cosh(nu t) dt by the
    trapezoidal rule (exponentially accurate for this analytic, fast decaying integrand)."""
    acc = xp.zeros_like(x)
    for k in range(_K_NODES - 1, -1, -1):
        t = k * _K_STEP
        w = 0.5 if k == 0 else 1.0
        acc = acc + (w * math.cosh(nu * t)) * xp.exp(-x * (math.cosh(t) - 1.0))
    return _K_STEP * acc


def _k_asymptotic(xp: Any, x: Any, nu: int) -> Any:
    """e^x K_nu(x) for x >= 25: sqrt(pi/(2x)) (1 + (mu-1)/(8x) + (mu-1)(mu-9)/(2! (8x)^2)
    + ...), mu = 4 nu^2 (DLMF 10.40.2)."""
    mu = 4.0 * nu * nu
    term = xp.ones_like(x)
    acc = xp.ones_like(x)
    for k in range(1, _I_ASYMPTOTIC_TERMS):
        term = term * (mu - (2 * k - 1) ** 2) / (k * 8 * x)
        acc = acc + term
    return xp.sqrt(math.pi / (2 * x)) * acc


def _bessel_k_core(xp: Any, x: Any, nu: int, scaled: bool) -> Any:
    """K_nu(x), or e^x K_nu(x) when ``scaled``: inf at 0, NaN below 0, 0 at inf."""
    out = xp.full(x.shape, xp.nan)

    def small(v: Any) -> Any:
        r = _k_small(xp, v, nu)
        return r * xp.exp(v) if scaled else r

    def rest(v: Any) -> Any:
        r = xp.where(
            v < _K_ASYMPTOTIC_FROM,
            _k_integral(xp, xp.minimum(v, _K_ASYMPTOTIC_FROM), nu),
            _k_asymptotic(xp, xp.maximum(v, _K_ASYMPTOTIC_FROM), nu),
        )
        return r if scaled else r * xp.exp(-v)

    _fill(out, (x > 0) & (x < _K_SERIES_BELOW), small, x)
    _fill(out, (x >= _K_SERIES_BELOW) & (x < xp.inf), rest, x)
    out = xp.where(x == 0, xp.inf, out)
    return xp.where(x == xp.inf, 0.0, out)


def _bessel_j_gpu(xp: Any, x: Any, nu: int) -> Any:
    out = gpu_special("j0" if nu == 0 else "j1")(x)
    return xp.where(xp.isinf(x), 0.0, out).astype(x.dtype, copy=False)


def _spherical_j0_core(xp: Any, x: Any) -> Any:
    """sin(x)/x: its series below |x| = 1/2, 0 at +-inf (as torch)."""
    small = xp.abs(x) < 0.5
    xs = xp.where(small, x, 0.0)
    x2 = xs * xs
    acc = xp.zeros_like(x)
    for k in range(9, 0, -1):  # 1 - x^2/(2*3) (1 - x^2/(4*5) (1 - ...)): sum (-x^2)^k / (2k+1)!
        acc = x2 / ((2 * k) * (2 * k + 1)) * (1.0 - acc)
    acc = 1.0 - acc
    xl = xp.where(small, 1.0, x)
    out = xp.where(small, acc, xp.sin(xl) / xl)
    return xp.where(xp.isinf(x), 0.0, out)


# ------------------------------------------------------------------ sinc, entr, xlog1py


def _sinc_core(xp: Any, x: Any) -> Any:
    """sin(pi x) / (pi x), 1 at 0, with sin(pi x) reduced exactly (0 at the integers)."""
    safe = xp.where(x == 0, 1.0, x)
    out = _sinpi(xp, safe) / (math.pi * safe)
    return xp.where(x == 0, 1.0, out)


def _sinc_slope(xp: Any, x: Any) -> Any:
    """d/dx sinc = (cos(pi x) - sinc(x)) / x; its Taylor series where |pi x| < 1/2 (the
    difference cancels there): sum_{k>=1} (-1)^k 2k pi^(2k) x^(2k-1) / (2k+1)!."""
    small = xp.abs(math.pi * x) < 0.5
    xs = xp.where(small, x, 0.0)
    y = math.pi * xs
    y2 = y * y
    acc = xp.zeros_like(xs)
    for k in range(12, 0, -1):
        acc = acc * y2 + (-1) ** k * 2 * k / math.factorial(2 * k + 1)
    near = acc * math.pi * y  # sum_k c_k y^(2k-1) * pi (the y2 factor: one fewer power)
    safe = xp.where(small, 1.0, x)
    far = (_cospi(xp, safe) - _sinc_core(xp, safe)) / safe
    return xp.where(small, near, far)


def _entr_core(xp: Any, x: Any) -> Any:
    """-x log x for x > 0, 0 at 0, -inf below (NaN stays NaN)."""
    pos = xp.where(x > 0, x, 1.0)
    out = xp.where(x > 0, -pos * xp.log(pos), xp.where(x == 0, 0.0, -xp.inf))
    return xp.where(xp.isnan(x), xp.nan, out)


# ------------------------------------------------------------------ Airy Ai

_AIRY_H = 0.25  # spacing of the table of (Ai, Ai') below
_AIRY_TABLE_TO = 10  # the table covers [-10, 10]; the asymptotic expansions lie beyond
_AIRY_START = 12  # the table's upper side is stepped down from the expansion at x = 12
_AIRY_LOCAL_TERMS = 18  # |dx| <= 1/8, |x| <= 10: the Taylor terms fall below 1e-20
_AIRY_ASYMPTOTIC_TERMS = 24  # zeta >= 21 beyond |x| = 10: the last term is below 4e-18
_AIRY_ZERO_FROM = 103.892  # torch's Ai is 0 from here (the value is subnormal or 0)
_AIRY_AI0 = "0.35502805388781723926006318600418317640"  # Ai(0) = 3^(-2/3) / Gamma(2/3)
_AIRY_AIP0 = "-0.25881940379280679840518356018920396348"  # Ai'(0) = -3^(-1/3) / Gamma(1/3)


@functools.cache
def _airy_u(count: int) -> tuple[float, ...]:
    """The coefficients u_k of the asymptotic expansions of Ai (DLMF 9.7.i):
    u_k = u_(k-1) (6k-5)(6k-3)(6k-1) / (216 k (2k-1)), u_0 = 1."""
    u = [1.0]
    for k in range(1, count):
        u.append(u[-1] * (6 * k - 5) * (6 * k - 3) * (6 * k - 1) / (216 * k * (2 * k - 1)))
    return tuple(u)


def _airy_step(x0: Any, y: Any, dy: Any, d: Any, terms: int = 60) -> tuple[Any, Any]:
    """(y, y') at x0 + d from (y, y') at x0 for y'' = x y, by its Taylor series at x0
    (c_(k+2) = (x0 c_k + c_(k-1)) / ((k+2)(k+1))); in whatever number type it is given."""
    c = [y, dy, x0 * y / 2]
    for k in range(1, terms):
        c.append((x0 * c[k] + c[k - 1]) / ((k + 2) * (k + 1)))
    value = sum(ck * d**k for k, ck in enumerate(c))
    slope = sum(k * ck * d ** (k - 1) for k, ck in enumerate(c) if k)
    return value, slope


@functools.cache
def _airy_table() -> tuple[np.ndarray, np.ndarray]:
    """Ai and Ai' at x = j/4 for |x| <= 10, to 40 digits in :mod:`decimal` (rounded once).

    Below 0 stepped from Ai(0), Ai'(0) (both solutions oscillate there: the steps are
    stable); above 0 stepped down from the asymptotic expansion at x = 12 (error e^-55),
    the direction in which Ai is the growing solution (stepping up from 0 would amplify
    the initial values' error by e^(2 zeta)). The two sides meet at 0 within 1e-24."""
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 40
        dec = decimal.Decimal
        h = dec(_AIRY_H)
        pi = dec("3.141592653589793238462643383279502884197")
        x = dec(_AIRY_START)
        zeta = 2 * x * x.sqrt() / 3
        terms = 30
        u = [dec(1)]
        for k in range(1, terms):
            u.append(u[-1] * (6 * k - 5) * (6 * k - 3) * (6 * k - 1) / (216 * k * (2 * k - 1)))
        v = [dec(1)] + [-dec(6 * k + 1) / (6 * k - 1) * u[k] for k in range(1, terms)]
        su = sum((-1) ** k * u[k] / zeta**k for k in range(terms))
        sv = sum((-1) ** k * v[k] / zeta**k for k in range(terms))
        scale = (-zeta).exp() / (2 * pi.sqrt())
        quarter = x.sqrt().sqrt()
        y, dy = scale / quarter * su, -quarter * scale * sv
        top = int(_AIRY_START / _AIRY_H)
        last = int(_AIRY_TABLE_TO / _AIRY_H)
        values = {}
        for j in range(top, 0, -1):
            y, dy = _airy_step(j * h, y, dy, -h)
            if j - 1 <= last:
                values[j - 1] = (y, dy)
        y, dy = dec(_AIRY_AI0), dec(_AIRY_AIP0)
        values[0] = (y, dy)
        for j in range(0, -last, -1):
            y, dy = _airy_step(j * h, y, dy, -h)
            values[j - 1] = (y, dy)
        ai = np.array([float(values[j][0]) for j in range(-last, last + 1)])
        aip = np.array([float(values[j][1]) for j in range(-last, last + 1)])
    return ai, aip


def _airy_local(xp: Any, x: Any) -> Any:
    """Ai(x) for |x| <= 10: the Taylor series of y'' = x y around the nearest node of
    :func:`_airy_table` (|dx| <= 1/8)."""
    ai, aip = _airy_table()
    last = int(_AIRY_TABLE_TO / _AIRY_H)
    j = xp.rint(x / _AIRY_H)
    x0 = j * _AIRY_H
    d = x - x0
    pos = (j + last).astype(xp.int64)
    c_prev = xp.asarray(ai)[pos]  # c_0
    c_cur = xp.asarray(aip)[pos]  # c_1
    out = c_prev + c_cur * d
    c_next = x0 * c_prev / 2  # c_2
    power = d * d
    out += c_next * power
    older, c_prev, c_cur = c_prev, c_cur, c_next  # c_(k-1), c_k with k = 2 next
    for k in range(2, _AIRY_LOCAL_TERMS):
        # c_(k+1) = (x0 c_(k-1) + c_(k-2)) / ((k+1) k)
        c_next = (x0 * c_prev + older) / ((k + 1) * k)
        power = power * d
        out += c_next * power
        older, c_prev, c_cur = c_prev, c_cur, c_next
    return out


def _airy_right(xp: Any, x: Any) -> Any:
    """Ai(x) for x > 10: e^-zeta / (2 sqrt(pi) x^(1/4)) sum (-1)^k u_k zeta^-k."""
    zeta = 2.0 / 3.0 * x * xp.sqrt(x)
    r = 1.0 / zeta
    u = _airy_u(_AIRY_ASYMPTOTIC_TERMS)
    acc = xp.zeros_like(x)
    for k in range(len(u) - 1, -1, -1):
        acc = acc * r + (-1) ** k * u[k]
    return xp.exp(-zeta) / (2 * _SQRT_PI * xp.sqrt(xp.sqrt(x))) * acc


def _airy_left(xp: Any, x: Any) -> Any:
    """Ai(x) for x < -10 (t = -x): t^(-1/4) / sqrt(pi) (cos(zeta - pi/4) P + sin(zeta -
    pi/4) Q), P = sum (-1)^k u_2k zeta^-2k, Q = sum (-1)^k u_(2k+1) zeta^-(2k+1)."""
    t = -x
    zeta = 2.0 / 3.0 * t * xp.sqrt(t)
    r2 = 1.0 / (zeta * zeta)
    u = _airy_u(2 * _AIRY_ASYMPTOTIC_TERMS)
    big_p = xp.zeros_like(x)
    big_q = xp.zeros_like(x)
    for k in range(_AIRY_ASYMPTOTIC_TERMS - 1, -1, -1):
        big_p = big_p * r2 + (-1) ** k * u[2 * k]
        big_q = big_q * r2 + (-1) ** k * u[2 * k + 1]
    big_q = big_q / zeta
    c, s = xp.cos(zeta), xp.sin(zeta)
    # cos(zeta - pi/4) = (c + s)/sqrt 2, sin(zeta - pi/4) = (s - c)/sqrt 2
    return ((c + s) * big_p + (s - c) * big_q) * (_SQRT_HALF / _SQRT_PI) / xp.sqrt(xp.sqrt(t))


def _airy_ai_core(xp: Any, x: Any) -> Any:
    """Ai(x): the table and local Taylor series on [-10, 10], the asymptotic expansions
    beyond; 0 from x = 103.892 (as torch) and at +-inf (torch: NaN), NaN at NaN."""
    out = xp.zeros_like(x)
    mid = xp.abs(x) <= _AIRY_TABLE_TO
    _fill(out, mid, lambda v: _airy_local(xp, v), x)
    _fill(out, (x > _AIRY_TABLE_TO) & (x < _AIRY_ZERO_FROM), lambda v: _airy_right(xp, v), x)
    _fill(out, (x < -_AIRY_TABLE_TO) & xp.isfinite(x), lambda v: _airy_left(xp, v), x)
    return xp.where(xp.isnan(x), xp.nan, out)


# ------------------------------------------------------------------ orthogonal polynomials

# The families: torch's name -> (the recurrence's kind, shifted to [0, 1]). torch.special
# has Chebyshev T, U, V, W (and shifted), Hermite H (physicists') and He (probabilists'),
# Laguerre L and Legendre P.
_CHEBYSHEV_FIRST = {"t": (1.0, 0.0), "u": (2.0, 0.0), "v": (2.0, -1.0), "w": (2.0, 1.0)}
# torch's trigonometric form for |y| < 1 takes over above these degrees (the values are
# the same to rounding: kept so that the rounding is torch's too)
_TRIG_ABOVE = {
    ("t", False): 6,
    ("u", False): 8,
    ("v", False): 8,
    ("w", False): 8,
    ("t", True): 6,
    ("u", True): 6,
    ("v", True): 6,
    ("w", True): 4,
}
_HYPERBOLIC_ABOVE = 4096  # Chebyshev with |y| > 1: cosh/sinh forms (no n-step loop)
_MAX_STEPS = 1 << 17  # Legendre, Laguerre: the recurrence's length that darklib accepts
_INT64_LIMIT = 2.0**63


def _odd(xp: Any, n: Any) -> Any:
    return xp.fmod(n, 2.0) != 0


def _parity_sign(xp: Any, n: Any) -> Any:
    """(-1)^n for integral float n."""
    return xp.where(_odd(xp, n), -1.0, 1.0)


def _recurrence(
    xp: Any,
    y: Any,
    n: Any,
    first: Any,
    step: Callable[[int, Any, Any, Any], Any],
    beyond: Any,
    name: str,
) -> Any:
    """p_n(y) for n >= 2 (1-d arrays) from p_0 = 1, p_1 = ``first`` and p_k = step(k, y,
    p_(k-1), p_(k-2)), all entries in lockstep up to the largest n: an entry leaves the
    arrays once its degree is reached, once its value is NaN, or once it is infinite
    where ``beyond`` (past the largest zero, where the value keeps its sign and grows)."""
    out = xp.empty_like(y)
    idx = xp.arange(y.size)
    p, q = xp.ones_like(y), first
    k = 1
    while idx.size:
        k += 1
        if k > _MAX_STEPS:
            raise NotImplementedError(
                f"{name}(): degrees n above {_MAX_STEPS} are not supported (the three-term "
                f"recurrence would take n steps); got n = {int(n.max())}"
            )
        p, q = q, step(k, y, q, p)
        done = (n == k) | xp.isnan(q) | (xp.isinf(q) & beyond)
        if bool(done.any()):
            out[idx[done]] = q[done]
            keep = ~done
            idx, y, n, p, q, beyond = idx[keep], y[keep], n[keep], p[keep], q[keep], beyond[keep]
    return out


def _chebyshev_trig(xp: Any, kind: str, y: Any, n: Any) -> Any:
    """T, U, V, W at y = cos(theta), |y| < 1: cos(n theta), sin((n+1) theta) / sin theta,
    cos((n+1/2) theta) / cos(theta/2), sin((n+1/2) theta) / sin(theta/2); at the ends
    where the denominators round to nothing, their limits (as torch, except shifted W)."""
    theta = xp.arccos(y)
    if kind == "t":
        return xp.cos(n * theta)
    if kind == "u":
        s = xp.sin(theta)
        ok = s != 0
        ss = xp.where(ok, s, 1.0)
        return xp.where(ok, xp.sin((n + 1) * theta) / ss, (n + 1) * xp.cos((n + 1) * theta) / y)
    half = theta / 2
    if kind == "v":
        end = xp.sin(half) == 1.0  # y rounds to -1: V_n(-1) = (-1)^n (2n + 1)
        den = xp.where(end, 1.0, xp.cos(half))
        return xp.where(end, _parity_sign(xp, n) * (2 * n + 1), xp.cos((n + 0.5) * theta) / den)
    end = xp.cos(half) == 1.0  # y rounds to 1: W_n(1) = 2n + 1
    den = xp.where(end, 1.0, xp.sin(half))
    return xp.where(end, 2 * n + 1, xp.sin((n + 0.5) * theta) / den)


def _chebyshev_hyperbolic(xp: Any, kind: str, y: Any, n: Any) -> Any:
    """T, U, V, W at |y| > 1 for large n: with |y| = cosh(t), cosh(n t), sinh((n+1) t) /
    sinh t, cosh((n+1/2) t) / cosh(t/2), sinh((n+1/2) t) / sinh(t/2) at y > 1; below -1
    by T_n(-y) = (-1)^n T_n(y), U likewise, V_n(-y) = (-1)^n W_n(y), W_n(-y) = (-1)^n V_n(y)."""
    t = xp.arccosh(xp.abs(y))
    neg = y < 0
    if kind == "t":
        val = xp.cosh(n * t)
    elif kind == "u":
        val = xp.sinh((n + 1) * t) / xp.sinh(t)
    else:
        as_v = (kind == "v") != neg
        val = xp.where(
            as_v,
            xp.cosh((n + 0.5) * t) / xp.cosh(t / 2),
            xp.sinh((n + 0.5) * t) / xp.sinh(t / 2),
        )
    return xp.where(neg & _odd(xp, n), -val, val)


def _poly_core(xp: Any, x: Any, n: Any, family: str, shifted: bool, limit: int, name: str) -> Any:
    """One of torch.special's orthogonal polynomials at (x, n), elementwise over
    same-shaped float64 arrays; n is truncated toward 0 as torch's cast to int64 (which
    makes NaN, +-inf and |n| >= 2^63 negative: 0)."""
    shape = x.shape
    x, n = x.reshape(-1), n.reshape(-1)
    n = xp.where(xp.isfinite(n) & (xp.abs(n) < _INT64_LIMIT), xp.trunc(n), -1.0)
    y = 2 * x - 1 if shifted else x
    out = xp.full(x.shape, xp.nan)
    todo = xp.ones(x.shape, dtype=bool)

    def settle(mask: Any, value: Any) -> None:
        nonlocal todo
        mask = mask & todo
        out[mask] = xp.broadcast_to(xp.asarray(value, dtype=xp.float64), x.shape)[mask]
        todo = todo & ~mask

    settle(n < 0, 0.0)
    sign_n = _parity_sign(xp, n)
    capped = xp.zeros(x.shape, dtype=bool)
    if family in _CHEBYSHEV_FIRST:
        a, b = _CHEBYSHEV_FIRST[family]
        ends = {"t": (1.0, sign_n), "u": (n + 1, sign_n * (n + 1))}
        ends["v"] = (1.0, sign_n * (2 * n + 1))
        ends["w"] = (2 * n + 1, sign_n)
        at_one, at_minus_one = ends[family]
        settle(y == 1, at_one)
        settle(y == -1, at_minus_one)
        inside = (xp.abs(y) < 1) & (n > _TRIG_ABOVE[(family, shifted)]) & todo
        if bool(inside.any()):
            out[inside] = _chebyshev_trig(xp, family, y[inside], n[inside])
            todo = todo & ~inside
        settle(n == 0, 1.0)
        settle(n == 1, a * y + b)
        far = (n > _HYPERBOLIC_ABOVE) & xp.isfinite(y) & todo  # |y| > 1 here
        if bool(far.any()):
            out[far] = _chebyshev_hyperbolic(xp, family, y[far], n[far])
            todo = todo & ~far

        def step(k: int, v: Any, q: Any, p: Any) -> Any:
            return (v + v) * q - p

        first = a * y + b
        bound = 1.0
        lead = 1.0
    elif family == "p":
        settle(xp.abs(y) == 1, xp.where(y > 0, 1.0, sign_n))
        settle(n == 0, 1.0)
        settle(n == 1, y)

        def step(k: int, v: Any, q: Any, p: Any) -> Any:
            j = k - 1
            return ((2 * j + 1) * v * q - j * p) / k

        first, bound, lead = y, 1.0, 1.0
    elif family == "l":
        settle(y == 0, 1.0)
        settle(n == 0, 1.0)
        settle(n == 1, 1.0 - y)

        def step(k: int, v: Any, q: Any, p: Any) -> Any:
            j = k - 1
            return ((2 * j + (1.0 - v)) * q - j * p) / k

        first = 1.0 - y
        bound = 4 * n + 2  # the zeros of L_n lie in (0, 4n + 2)
        lead = sign_n
    else:  # Hermite H (physicists') and He (probabilists')
        settle(n == 0, 1.0)
        settle(n == 1, y + y if family == "h" else y)
        capped = n > limit  # torch's cap on the degree (128 in float32, 512 in float64)
        settle(capped, xp.nan)
        if family == "h":

            def step(k: int, v: Any, q: Any, p: Any) -> Any:
                return (v + v) * q - (2 * (k - 1)) * p

            first = y + y
            bound = xp.sqrt(2 * n + 1)  # the zeros of H_n lie in (-sqrt(2n+1), sqrt(2n+1))
        else:

            def step(k: int, v: Any, q: Any, p: Any) -> Any:
                return v * q - (k - 1) * p

            first = y
            bound = xp.sqrt(4 * n + 2)
        lead = 1.0
    settle(xp.isnan(y), xp.nan)
    # beyond every zero (and at +-inf) the value has the sign of its leading term
    if family == "l":
        beyond = (y < 0) | (y > bound)
        sign_far = xp.where(y < 0, 1.0, lead)
    else:
        beyond = xp.abs(y) > bound
        sign_far = xp.where(y < 0, sign_n, 1.0)
    if bool(todo.any()):
        first = xp.broadcast_to(first, x.shape)
        bnd = xp.broadcast_to(beyond, x.shape)
        out[todo] = _recurrence(xp, y[todo], n[todo], first[todo], step, bnd[todo], name)
    # overflow: torch's recurrence turns inf into NaN (inf - inf); the limit is +-inf
    blown = ~xp.isfinite(out) & ~xp.isnan(y) & beyond & (n > 0) & ~capped
    return xp.where(blown, sign_far * xp.inf, out).reshape(shape)


# ------------------------------------------------------------------ evaluation by device


# Values per block of the CPU evaluation (see :func:`_blocked`)
_BLOCK = 1 << 16


def _blocked(cpu: Callable[..., Any], dtype: Any, *arrays: Any) -> Any:
    """``cpu(np, *arrays)`` (same-shaped float64 arrays; a function of each element
    alone) in blocks of :data:`_BLOCK` values, split over darklib's threads, the result
    rounded to ``dtype`` block by block.

    The formulas here take tens to hundreds of NumPy passes, each writing a temporary:
    over a whole array of 1e6 values every pass streams 8 MB through memory, over a
    block of 64 Ki it stays in the caches (the Bessel I0 and polygamma series ran 1.6-2x
    faster on one thread; 16 Ki blocks were no faster, 4 Ki ones slower from the Python
    overhead of the many small calls)."""
    # contiguous and writable (no broadcast views); a 0-d array copied, as
    # np.ascontiguousarray would make it 1-d
    arrays = tuple(np.ascontiguousarray(a) if a.ndim else a.copy() for a in arrays)
    shape, n = arrays[0].shape, arrays[0].size
    if n <= _BLOCK:
        return cpu(np, *arrays).astype(dtype, copy=False)
    flat = [a.reshape(-1) for a in arrays]
    out = np.empty(n, dtype)

    def run(s: int, e: int) -> None:
        out[s:e] = cpu(np, *(f[s:e] for f in flat))

    par.map_reduce(run, n, n, block=_BLOCK)
    return out.reshape(shape)


def _values(
    x: Any,
    cpu: Callable[[Any, Any], Any],
    gpu: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """``cpu(xp, x)`` on x in float64 (NumPy, or CuPy where ``gpu`` is None), else
    ``gpu(xp, x)`` on x in its own precision (half in float32); the result in x's dtype.
    On NumPy in cache-sized blocks over darklib's threads (:func:`_blocked`)."""
    xp = get_xp(x)
    if xp is np:
        return _blocked(cpu, x.dtype, x.astype(np.float64))
    if gpu is None:
        out = cpu(xp, x.astype(xp.float64))
    else:
        out = gpu(xp, x if x.dtype.itemsize >= 4 else x.astype(xp.float32))
    return out.astype(x.dtype, copy=False)


def _values2(
    a: Any,
    b: Any,
    cpu: Callable[[Any, Any, Any], Any],
    gpu: Callable[[Any, Any, Any], Any] | None = None,
) -> Any:
    """:func:`_values` for two operands of one dtype (broadcast together)."""
    xp = get_xp(a)
    dt = a.dtype
    if xp is np:
        wa, wb = np.broadcast_arrays(a.astype(np.float64), b.astype(np.float64))
        return _blocked(cpu, dt, wa, wb)
    if gpu is None:
        out = cpu(xp, a.astype(xp.float64), b.astype(xp.float64))
    else:
        wide = xp.float32 if dt.itemsize < 4 else dt
        out = gpu(xp, a.astype(wide, copy=False), b.astype(wide, copy=False))
    return out.astype(dt, copy=False)


def _gpu_unary(name: str, edges: Callable[[Any, Any, Any], Any] | None = None) -> Callable:
    def run(xp: Any, x: Any) -> Any:
        out = gpu_special(name)(x)
        return out if edges is None else edges(xp, x, out)

    return run


def lgamma_values(x: Any) -> Any:
    return _values(x, lambda xp, v: _lgamma_core(xp, v), _gpu_unary("gammaln", _lgamma_edges))


def digamma_values(x: Any) -> Any:
    return _values(
        x,
        lambda xp, v: _digamma_edges(xp, v, _digamma_core(xp, v)),
        _gpu_unary("digamma", _digamma_edges),
    )


def polygamma_values(n: int, x: Any) -> Any:
    return _values(
        x,
        lambda xp, v: _polygamma_core(xp, n, v),
        lambda xp, v: _polygamma_gpu(xp, n, v),
    )


def bessel_i_values(x: Any, nu: int, scaled: bool) -> Any:
    return _values(
        x,
        lambda xp, v: _bessel_i_core(xp, v, nu, scaled),
        lambda xp, v: _bessel_i_gpu(xp, v, nu, scaled),
    )


def _normal(fn: Callable[[Any], Any], x: Any) -> Any:
    """``fn`` of kernels/normal.py (float32/float64 in, the same out) for any float x."""
    wide = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    return fn(wide).astype(x.dtype, copy=False)


def _gpu_values(x: Any, gpu: Callable[[Any, Any], Any]) -> Any:
    """``gpu(xp, x)`` on x in its own precision (half in float32), in x's dtype."""
    out = gpu(get_xp(x), x if x.dtype.itemsize >= 4 else x.astype(get_xp(x).float32))
    return out.astype(x.dtype, copy=False)


def erfcx_values(x: Any) -> Any:
    if get_xp(x) is np:  # a few polynomials (kernels/normal.py)
        return _normal(normal.erfcx, x)
    return _gpu_values(x, _gpu_unary("erfcx", _erfcx_edges))


def ndtr_values(x: Any) -> Any:
    if get_xp(x) is np:
        return _normal(normal.ndtr, x)
    return _gpu_values(x, _gpu_unary("ndtr", _ndtr_edges))


def log_ndtr_values(x: Any) -> Any:
    if get_xp(x) is np:
        return _normal(normal.log_ndtr, x)
    return _gpu_values(x, _gpu_unary("log_ndtr", _log_ndtr_edges))


def ndtri_values(p: Any) -> Any:
    if get_xp(p) is not np:
        return _gpu_values(p, _gpu_unary("ndtri", _ndtri_edges))
    if p.dtype != np.float64:  # one polynomial per value, in p's precision
        return _normal(normal.ndtri, p)
    out = normal.ndtri(p)
    far = np.flatnonzero(p < _NDTRI_POLISH)
    if far.size:
        out[far] = _ndtri_tail_step(np.take(out, far), np.take(p, far))
    return out


# Below this p the fit's last ulp (2.8e-16) moves Phi(x) by |x|^2 times as much, and a
# Newton step on log Phi settles it (ndtr(ndtri(1e-300)) was 2e-13 off 1e-300, 1e-16 with it)
_NDTRI_POLISH = 1e-18


def _ndtri_tail_step(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """One Newton step on log Phi(x) = log p from x < 0, with the Mills ratio
    Phi / phi = sqrt(pi/2) erfcx(-x / sqrt 2); x = -inf (p = 0) stays."""
    ex = normal.erfcx(-x * _SQRT_HALF)
    step = (np.log(0.5 * ex) - 0.5 * x * x - np.log(p)) * (_SQRT_PI * _SQRT_HALF * ex)
    return np.where(np.isfinite(x), x - step, x)


def zeta_values(s: Any, q: Any) -> Any:
    def gpu(xp: Any, a: Any, b: Any) -> Any:
        a, b = xp.broadcast_arrays(a, b)
        return _zeta_edges(xp, a, b, gpu_special("zeta")(a, b))

    return _values2(s, q, lambda xp, a, b: _zeta_core(xp, a, b), gpu)


def igamma_values(a: Any, x: Any, upper: bool) -> Any:
    def gpu(xp: Any, aa: Any, xx: Any) -> Any:
        aa, xx = xp.broadcast_arrays(aa, xx)
        out = gpu_special("gammaincc" if upper else "gammainc")(aa, xx)
        return _igam_edges(xp, aa, xx, out, upper)

    return _values2(a, x, lambda xp, aa, xx: _igam_core(xp, aa, xx, upper), gpu)


# ------------------------------------------------------------------ Functions


class _Arrays:
    """The ops a derivative formula uses, on arrays (NumPy or CuPy by the operand)."""

    mask = staticmethod(lambda m: m)
    exp = staticmethod(lambda a: get_xp(a).exp(a))
    log = staticmethod(lambda a: get_xp(a).log(a))
    abs = staticmethod(lambda a: get_xp(a).abs(a))
    sign = staticmethod(lambda a: get_xp(a).sign(a))

    @staticmethod
    def where(c: Any, a: Any, b: Any) -> Any:
        out = get_xp(c).where(c, a, b)
        dt = np.result_type(*(v.dtype for v in (a, b) if hasattr(v, "dtype")))
        return out.astype(dt, copy=False)

    digamma = staticmethod(digamma_values)
    erfc = staticmethod(lambda a: E._erfc(get_xp(a), a))
    i0 = staticmethod(lambda a: bessel_i_values(a, 0, False))
    i1 = staticmethod(lambda a: bessel_i_values(a, 1, False))
    i0e = staticmethod(lambda a: bessel_i_values(a, 0, True))
    i1e = staticmethod(lambda a: bessel_i_values(a, 1, True))
    erfcx = staticmethod(erfcx_values)

    @staticmethod
    def polygamma(n: int, a: Any) -> Any:
        return polygamma_values(n, a)


class _Tensors:
    """The same ops on tensors, recorded (for ``create_graph``)."""

    mask = staticmethod(Tensor._wrap)
    exp = staticmethod(E.exp)
    log = staticmethod(E.log)
    abs = staticmethod(E.abs)
    sign = staticmethod(E.sign)
    where = staticmethod(E.where)
    digamma = staticmethod(lambda t: digamma(t))
    erfc = staticmethod(E.erfc)
    i0 = staticmethod(lambda t: i0(t))
    i1 = staticmethod(lambda t: i1(t))
    i0e = staticmethod(lambda t: i0e(t))
    i1e = staticmethod(lambda t: i1e(t))
    erfcx = staticmethod(lambda t: erfcx(t))
    polygamma = staticmethod(lambda n, t: polygamma(n, t))


def _unary_function(
    name: str,
    values: Callable[[Any], Any],
    slope: Callable[[Any, Any, Any, Any], Any],
    array_slope: Callable[[Any, Any], Any] | None = None,
    saves: str = "input",
) -> type[Function]:
    """A Function for ``values(x)`` whose derivative is ``slope(ops, x, y, raw)``, with
    ``ops`` :class:`_Arrays` (backward) or :class:`_Tensors` (backward_graph), ``x`` and
    ``y`` the input and output as arrays or tensors, ``raw`` the input array (for masks).
    ``array_slope(x, y)``, where given, is a more accurate derivative on arrays. Forward
    saves what the derivative reads, as torch: ``saves`` is ``"input"`` (``y`` is None),
    ``"output"`` (``x`` and ``raw`` are None) or ``"both"``."""
    keep_in, keep_out = saves != "output", saves != "input"

    def forward(ctx, a):
        out = values(a)
        ctx.save_for_backward(a if keep_in else None, out if keep_out else None)
        return out

    def backward(ctx, g):
        a, out = ctx.saved_tensors
        d = array_slope(a, out) if array_slope else slope(_Arrays, a, out, a)
        return g * d

    def backward_graph(ctx, g):
        a, out = ctx.saved_tensors
        x = ctx.lift(a, 0) if keep_in else None
        y = ctx.lift_output(out) if keep_out else None
        return g * slope(_Tensors, x, y, a)

    return type(
        name,
        (Function,),
        {
            "forward": staticmethod(forward),
            "backward": staticmethod(backward),
            "backward_graph": staticmethod(backward_graph),
        },
    )


def _wide_slope(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """An array derivative computed in float64 (on NumPy) and rounded to x's dtype."""

    def slope(a: Any, out: Any) -> Any:
        xp = get_xp(a)
        wide = a.astype(xp.float64) if xp is np else a.astype(xp.promote_types(a.dtype, "f4"))
        with np.errstate(all="ignore"):
            y = None if out is None else out.astype(wide.dtype)
            return fn(xp, wide, y).astype(a.dtype, copy=False)

    return slope


Lgamma = _unary_function("Lgamma", lgamma_values, lambda o, x, y, r: o.digamma(x))
Digamma = _unary_function("Digamma", digamma_values, lambda o, x, y, r: o.polygamma(1, x))
I0 = _unary_function("I0", lambda a: bessel_i_values(a, 0, False), lambda o, x, y, r: o.i1(x))
I0e = _unary_function(
    "I0e",
    lambda a: bessel_i_values(a, 0, True),
    lambda o, x, y, r: o.i1e(x) - o.mask(get_xp(r).sign(r).astype(r.dtype)) * y,
    saves="both",
)


def _tiny(r: Any) -> Any:
    """Where |x| is below sqrt(tiny): I1(x)/x and i1e(x)/x are 1/2 to the dtype's precision
    there, and 1/x overflows near the subnormals (the gradient was -inf at 1e-310)."""
    return get_xp(r).abs(r) < np.sqrt(np.finfo(r.dtype).tiny)


def _i1_slope(o: Any, x: Any, y: Any, r: Any) -> Any:
    """I1' = I0 - I1/x (1/2 near 0), as e^|x| (i0e - i1e/x): no inf - inf for large x."""
    xp = get_xp(r)
    zero = o.mask(_tiny(r))
    safe = o.where(zero, 1.0, x) if o is _Tensors else xp.where(_tiny(r), 1.0, x).astype(r.dtype)
    d = o.exp(o.abs(x)) * (o.i0e(x) - o.i1e(x) / safe)
    return o.where(zero, 0.5, d)


def _i1e_slope(o: Any, x: Any, y: Any, r: Any) -> Any:
    """i1e' = i0e - i1e (sign(x) + 1/x) (1/2 near 0)."""
    xp = get_xp(r)
    zero = o.mask(_tiny(r))
    safe = o.where(zero, 1.0, x) if o is _Tensors else xp.where(_tiny(r), 1.0, x).astype(r.dtype)
    sgn = o.mask(xp.sign(r).astype(r.dtype))
    return o.where(zero, 0.5, o.i0e(x) - y * (sgn + 1 / safe))


I1 = _unary_function("I1", lambda a: bessel_i_values(a, 1, False), _i1_slope)
I1e = _unary_function("I1e", lambda a: bessel_i_values(a, 1, True), _i1e_slope, saves="both")
Erfcx = _unary_function(
    "Erfcx",
    erfcx_values,
    lambda o, x, y, r: 2 * x * y - _TWO_OVER_SQRT_PI,
    _wide_slope(_erfcx_slope),
    saves="both",
)
Ndtr = _unary_function(
    "Ndtr",
    ndtr_values,
    lambda o, x, y, r: o.exp(-0.5 * x * x) * (1 / _SQRT_2PI),
    _wide_slope(lambda xp, x, y: _square_exp(xp, x, 0.5) / _SQRT_2PI),
)
Ndtri = _unary_function(
    "Ndtri", ndtri_values, lambda o, x, y, r: _SQRT_2PI * o.exp(0.5 * y * y), saves="output"
)


def _log_ndtr_slope(o: Any, x: Any, y: Any, r: Any) -> Any:
    """phi / Phi: sqrt(2/pi) / erfcx(-x / sqrt 2) for x < 0 (no 0/0 in the left tail),
    sqrt(2/pi) e^(-x^2/2) / erfc(-x / sqrt 2) for x >= 0, where erfcx overflows (x > 37.7
    in float64) and its derivative gave inf / inf."""
    right = o.mask(r >= 0)
    xr, xl = o.where(right, x, 0.0), o.where(right, 0.0, x)
    far_right = _SQRT_2_OVER_PI * o.exp(-0.5 * xr * xr) / o.erfc(xr * -_SQRT_HALF)
    return o.where(right, far_right, _SQRT_2_OVER_PI / o.erfcx(xl * -_SQRT_HALF))


LogNdtr = _unary_function("LogNdtr", log_ndtr_values, _log_ndtr_slope)
Entr = _unary_function(
    "Entr",
    lambda a: _values(a, lambda xp, v: _entr_core(xp, v)),
    lambda o, x, y, r: -(1 + o.log(x)),
)


def _sinc_graph_slope(o: Any, x: Any, y: Any, r: Any) -> Any:
    if o is _Arrays:
        return _values(r, lambda xp, v: _sinc_slope(xp, v))
    # as _sinc_slope, in differentiable ops: the series near 0, where the quotient cancels
    # (its derivatives there came out -pi^2 instead of -pi^2/3)
    small = o.mask(get_xp(r).abs(math.pi * r) < 0.5)
    y = math.pi * o.where(small, x, 0.0)
    y2 = y * y
    acc = 0.0
    for k in range(12, 0, -1):
        acc = acc * y2 + (-1) ** k * 2 * k / math.factorial(2 * k + 1)
    safe = o.where(small, 1.0, x)
    return o.where(small, acc * math.pi * y, (E.cos(math.pi * safe) - sinc(safe)) / safe)


Sinc = _unary_function(
    "Sinc", lambda a: _values(a, lambda xp, v: _sinc_core(xp, v)), _sinc_graph_slope
)


class Polygamma(Function):
    @staticmethod
    def forward(ctx, x, n):
        ctx.n = n
        ctx.save_for_backward(x)
        return polygamma_values(n, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * polygamma_values(ctx.n + 1, x), None

    @staticmethod
    def backward_graph(ctx, g):
        return g * polygamma(ctx.n + 1, ctx.lift(ctx.saved_tensors[0], 0)), None


class Zeta(Function):
    """Hurwitz zeta: differentiable in ``q`` only (d/dq zeta(s, q) = -s zeta(s + 1, q)), as
    torch, which raises for the gradient with respect to ``s``."""

    @staticmethod
    def forward(ctx, s, q):
        ctx.save_for_backward(s, q)
        return zeta_values(s, q)

    @staticmethod
    def backward(ctx, g):
        s, q = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError("the derivative for 'zeta' is not implemented.")
        return None, g * -s * zeta_values(s + 1, q)

    @staticmethod
    def backward_graph(ctx, g):
        s, q = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError("the derivative for 'zeta' is not implemented.")
        st = Tensor._wrap(s)
        return None, g * -st * zeta(st + 1, ctx.lift(q, 1))


class Igamma(Function):
    """Regularised incomplete gamma P(a, x) (``upper``: Q = 1 - P), differentiable in x only
    (torch raises for the gradient with respect to ``a``)."""

    @staticmethod
    def forward(ctx, a, x, upper):
        ctx.upper = upper
        ctx.save_for_backward(a, x)
        return igamma_values(a, x, upper)

    @staticmethod
    def _refuse(ctx):
        if ctx.needs_input_grad[0]:
            name = "igammac" if ctx.upper else "igamma"
            raise NotImplementedError(f"the derivative for '{name}: input' is not implemented.")

    @staticmethod
    def backward(ctx, g):
        Igamma._refuse(ctx)
        a, x = ctx.saved_tensors
        d = _values2(a, x, lambda xp, aa, xx: _igam_slope(xp, aa, xx))
        return None, (-g * d if ctx.upper else g * d), None

    @staticmethod
    def backward_graph(ctx, g):
        Igamma._refuse(ctx)
        a, x = ctx.saved_tensors
        at = Tensor._wrap(a)
        xt = ctx.lift(x, 1)
        d = E.exp((at - 1) * E.log(xt) - xt - lgamma(at))
        return None, (-g * d if ctx.upper else g * d), None


class XLog1py(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = get_xp(a)
        ctx.save_for_backward(a, b)
        out = xp.where((a == 0) & ~xp.isnan(b), 0, a * xp.log1p(b))
        return out.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_xp(g)
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:  # torch: xlog1py(g, b) zeroed where a == 0 and b <= -1
            ga = xp.where((g == 0) & ~xp.isnan(b), 0, g * xp.log1p(b))
            ga = xp.where((a == 0) & (b <= -1), 0, ga).astype(g.dtype, copy=False)
        if nb:
            gb = g * a / (b + 1)
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        at, bt = ctx.lift(a, 0), ctx.lift(b, 1)
        ga = E.where(Tensor._wrap((a == 0) & (b <= -1)), 0.0, g * E.log1p(bt)) if na else None
        gb = g * at / (bt + 1) if nb else None
        return ga, gb


# ------------------------------------------------------------------ functional API


def _tensor(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(
            f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}"
        )
    return x


def _no_half(x: Tensor, name: str) -> None:
    """torch has no half-precision kernel for some of these ops: refuse it as torch does."""
    if x.array.dtype == np.float16:
        raise NotImplementedError(f"\"{name}_cpu\" not implemented for 'Half'")


def _floating(x: Any, name: str, half: bool = True) -> Tensor:
    """A float tensor: integer and bool inputs in the default float dtype (as torch)."""
    x = _tensor(x, name)
    if x.array.dtype.kind != "f":
        x = x.to(_dt.get_default_dtype())
    elif not half:
        _no_half(x, name)
    return x


def _nondiff(x: Tensor, fn: Callable[[Any], Any]) -> Tensor:
    """A value without a graph (ops torch does not differentiate)."""
    return Tensor._wrap(_dt.silent(fn, x.array))


def _pair(input: Any, other: Any, name: str) -> tuple[Tensor, Tensor]:
    """Two operands (tensors or numbers, at least one tensor) promoted to one float dtype
    (integers to the default float dtype), as 0-d tensors for numbers."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise InvalidType(f"{name}(): expected at least one Tensor, got two numbers")
    a, b = promote(input, other, floating=True)
    ref = a if isinstance(a, Tensor) else b
    xp = get_xp(ref.array)
    dt = ref.array.dtype
    a, b = (
        v if isinstance(v, Tensor) else Tensor._wrap(_dt.scalar_array(xp, v, dt)) for v in (a, b)
    )
    E.check_broadcast(name, a, b)
    return a, b


def lgamma(input: Tensor) -> Tensor:
    """log|Gamma(x)| elementwise (inf at 0 and the negative integers); gradient digamma(x)."""
    return Lgamma.apply(_floating(input, "lgamma"))


gammaln = lgamma


def digamma(input: Tensor) -> Tensor:
    """d/dx log Gamma(x) (-inf at 0, NaN at the negative integers, as torch); gradient
    polygamma(1, x)."""
    return Digamma.apply(_floating(input, "digamma"))


psi = digamma


def polygamma(n: int, input: Tensor) -> Tensor:
    """The n-th derivative of digamma: (-1)^(n+1) n! zeta(n + 1, x) for n >= 1."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise InvalidType(f"polygamma(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return Polygamma.apply(_floating(input, "polygamma"), int(n))


def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The multivariate log-gamma function of dimension ``p``:
    sum_{i<p} lgamma(x - i/2) + p (p - 1)/4 log(pi)."""
    if isinstance(p, bool) or not isinstance(p, int | np.integer):
        raise InvalidType(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__}")
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = _floating(input, "mvlgamma")
    xp = get_xp(x.array)
    offsets = Tensor._wrap(xp.asarray([-0.5 * i for i in range(int(p))], dtype=x.array.dtype))
    terms = lgamma(x.unsqueeze(-1) + offsets)
    return terms.sum(-1) + p * (p - 1) / 4 * _LOG_PI


multigammaln = mvlgamma


def i0(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind of order 0; gradient i1(x)."""
    return I0.apply(_floating(input, "i0"))


def i0e(input: Tensor) -> Tensor:
    """e^-|x| i0(x), finite for every x."""
    return I0e.apply(_floating(input, "i0e"))


def i1(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind of order 1."""
    return I1.apply(_floating(input, "i1"))


def i1e(input: Tensor) -> Tensor:
    """e^-|x| i1(x)."""
    return I1e.apply(_floating(input, "i1e"))


def sinc(input: Tensor) -> Tensor:
    """The normalised sinc: sin(pi x) / (pi x), 1 at 0."""
    return Sinc.apply(_floating(input, "sinc"))


def entr(input: Tensor) -> Tensor:
    """Elementwise entropy -x log x (0 at 0, -inf for negative x)."""
    return Entr.apply(_floating(input, "entr"))


def erfcx(input: Tensor) -> Tensor:
    """The scaled complementary error function e^(x^2) erfc(x)."""
    return Erfcx.apply(_floating(input, "erfcx", half=False))


def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF Phi(x)."""
    return Ndtr.apply(_floating(input, "ndtr"))


def ndtri(input: Tensor) -> Tensor:
    """The standard normal quantile: Phi(ndtri(p)) = p (-inf at 0, inf at 1, NaN outside)."""
    return Ndtri.apply(_floating(input, "ndtri", half=False))


def log_ndtr(input: Tensor) -> Tensor:
    """log Phi(x), accurate far in the left tail."""
    return LogNdtr.apply(_floating(input, "log_ndtr", half=False))


def xlog1py(input: Any, other: Any) -> Tensor:
    """``input * log1p(other)``, and 0 where ``input`` is 0 (unless ``other`` is NaN)."""
    return XLog1py.apply(*_pair(input, other, "xlog1py"))


def zeta(input: Any, other: Any) -> Tensor:
    """The Hurwitz zeta function sum_{k>=0} (other + k)^-input (Riemann's at other = 1)."""
    s, q = _pair(input, other, "zeta")
    _no_half(s, "zeta")
    return Zeta.apply(s, q)


def _igamma(input: Tensor, other: Tensor, upper: bool, name: str) -> Tensor:
    for v, pos, arg in ((input, 1, "input"), (other, 2, "other")):
        if not isinstance(v, Tensor):
            raise InvalidType(
                f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                f"{type(v).__name__}"
            )
    dt = result_dtype(input, other)
    if dt.kind != "f":
        kind = {"b": "Bool", "u": "Byte"}.get(dt.kind, "Long" if dt.itemsize == 8 else "Int")
        raise NotImplementedError(f"\"igamma_cpu\" not implemented for '{kind}'")
    a, x = promote(input, other)
    E.check_broadcast(name, a, x)
    return Igamma.apply(a, x, upper)


def igamma(input: Tensor, other: Tensor) -> Tensor:
    """The regularised lower incomplete gamma function P(input, other); differentiable in
    ``other`` only (as torch)."""
    return _igamma(input, other, False, "igamma")


def igammac(input: Tensor, other: Tensor) -> Tensor:
    """The regularised upper incomplete gamma function Q(input, other) = 1 - P."""
    return _igamma(input, other, True, "igammac")


gammainc, gammaincc = igamma, igammac


def bessel_j0(input: Tensor) -> Tensor:
    """The Bessel function of the first kind of order 0 (no gradient, as torch)."""
    x = _floating(input, "bessel_j0", half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _bessel_j_core(xp, v, 0), _bessel_j0_gpu))


def bessel_j1(input: Tensor) -> Tensor:
    """The Bessel function of the first kind of order 1 (no gradient, as torch)."""
    x = _floating(input, "bessel_j1", half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _bessel_j_core(xp, v, 1), _bessel_j1_gpu))


def _bessel_j0_gpu(xp: Any, x: Any) -> Any:
    return _bessel_j_gpu(xp, x, 0)


def _bessel_j1_gpu(xp: Any, x: Any) -> Any:
    return _bessel_j_gpu(xp, x, 1)


def bessel_y0(input: Tensor) -> Tensor:
    """The Bessel function of the second kind of order 0 (no gradient, as torch): -inf
    at 0, NaN for negative x, 0 at inf (torch: NaN)."""
    x = _floating(input, "bessel_y0", half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _bessel_y_core(xp, v, 0)))


def bessel_y1(input: Tensor) -> Tensor:
    """The Bessel function of the second kind of order 1 (no gradient, as torch): -inf
    at 0, NaN for negative x, 0 at inf (torch: NaN)."""
    x = _floating(input, "bessel_y1", half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _bessel_y_core(xp, v, 1)))


def _bessel_k(input: Tensor, nu: int, scaled: bool, name: str) -> Tensor:
    x = _floating(input, name, half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _bessel_k_core(xp, v, nu, scaled)))


def modified_bessel_k0(input: Tensor) -> Tensor:
    """The modified Bessel function of the second kind K0 (no gradient, as torch)."""
    return _bessel_k(input, 0, False, "modified_bessel_k0")


def modified_bessel_k1(input: Tensor) -> Tensor:
    """The modified Bessel function of the second kind K1 (no gradient, as torch)."""
    return _bessel_k(input, 1, False, "modified_bessel_k1")


def scaled_modified_bessel_k0(input: Tensor) -> Tensor:
    """e^x K0(x) (no gradient, as torch)."""
    return _bessel_k(input, 0, True, "scaled_modified_bessel_k0")


def scaled_modified_bessel_k1(input: Tensor) -> Tensor:
    """e^x K1(x) (no gradient, as torch)."""
    return _bessel_k(input, 1, True, "scaled_modified_bessel_k1")


def spherical_bessel_j0(input: Tensor) -> Tensor:
    """The spherical Bessel function j0(x) = sin(x)/x (no gradient, as torch)."""
    x = _floating(input, "spherical_bessel_j0", half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _spherical_j0_core(xp, v)))


def airy_ai(input: Tensor) -> Tensor:
    """The Airy function Ai(x), the solution of y'' = x y that decays as x -> inf (no
    gradient, as torch): 0 from x = 103.892 (as torch) and at +-inf (torch: NaN)."""
    x = _floating(input, "airy_ai", half=False)
    return _nondiff(x, lambda a: _values(a, lambda xp, v: _airy_ai_core(xp, v)))


def _polynomial(input: Any, n: Any, family: str, shifted: bool, name: str) -> Tensor:
    """torch.special's ``name(input, n)``: x and n tensors or numbers (one a tensor at
    least), promoted together to one float dtype (integers to the default float dtype),
    broadcast; n truncated toward 0. No gradient (as torch)."""
    x, deg = _pair(input, n, name)
    _no_half(x, name)
    limit = 128 if x.array.dtype == np.float32 else 512  # torch's Hermite cap

    def cpu(xp: Any, a: Any, b: Any) -> Any:
        return _poly_core(xp, a, b, family, shifted, limit, name)

    return Tensor._wrap(_dt.silent(_values2, x.array, deg.array, cpu))


def chebyshev_polynomial_t(input: Any, n: Any) -> Tensor:
    """The Chebyshev polynomial of the first kind T_n(x) (cos(n theta) at x = cos theta)."""
    return _polynomial(input, n, "t", False, "chebyshev_polynomial_t")


def chebyshev_polynomial_u(input: Any, n: Any) -> Tensor:
    """The Chebyshev polynomial of the second kind U_n(x)."""
    return _polynomial(input, n, "u", False, "chebyshev_polynomial_u")


def chebyshev_polynomial_v(input: Any, n: Any) -> Tensor:
    """The Chebyshev polynomial of the third kind V_n(x)."""
    return _polynomial(input, n, "v", False, "chebyshev_polynomial_v")


def chebyshev_polynomial_w(input: Any, n: Any) -> Tensor:
    """The Chebyshev polynomial of the fourth kind W_n(x)."""
    return _polynomial(input, n, "w", False, "chebyshev_polynomial_w")


def shifted_chebyshev_polynomial_t(input: Any, n: Any) -> Tensor:
    """T_n(2x - 1), the Chebyshev polynomial of the first kind on [0, 1]."""
    return _polynomial(input, n, "t", True, "shifted_chebyshev_polynomial_t")


def shifted_chebyshev_polynomial_u(input: Any, n: Any) -> Tensor:
    """U_n(2x - 1), the Chebyshev polynomial of the second kind on [0, 1]."""
    return _polynomial(input, n, "u", True, "shifted_chebyshev_polynomial_u")


def shifted_chebyshev_polynomial_v(input: Any, n: Any) -> Tensor:
    """V_n(2x - 1), the Chebyshev polynomial of the third kind on [0, 1]."""
    return _polynomial(input, n, "v", True, "shifted_chebyshev_polynomial_v")


def shifted_chebyshev_polynomial_w(input: Any, n: Any) -> Tensor:
    """W_n(2x - 1), the Chebyshev polynomial of the fourth kind on [0, 1]."""
    return _polynomial(input, n, "w", True, "shifted_chebyshev_polynomial_w")


def hermite_polynomial_h(input: Any, n: Any) -> Tensor:
    """The physicists' Hermite polynomial H_n(x) (NaN above n = 128 in float32 and 512 in
    float64, as torch)."""
    return _polynomial(input, n, "h", False, "hermite_polynomial_h")


def hermite_polynomial_he(input: Any, n: Any) -> Tensor:
    """The probabilists' Hermite polynomial He_n(x) (NaN above n = 128 in float32 and 512
    in float64, as torch)."""
    return _polynomial(input, n, "he", False, "hermite_polynomial_he")


def laguerre_polynomial_l(input: Any, n: Any) -> Tensor:
    """The Laguerre polynomial L_n(x)."""
    return _polynomial(input, n, "l", False, "laguerre_polynomial_l")


def legendre_polynomial_p(input: Any, n: Any) -> Tensor:
    """The Legendre polynomial P_n(x)."""
    return _polynomial(input, n, "p", False, "legendre_polynomial_p")


__all__ = [
    "airy_ai",
    "bessel_j0",
    "bessel_j1",
    "chebyshev_polynomial_t",
    "chebyshev_polynomial_u",
    "chebyshev_polynomial_v",
    "chebyshev_polynomial_w",
    "digamma",
    "entr",
    "erfcx",
    "gammainc",
    "gammaincc",
    "gammaln",
    "hermite_polynomial_h",
    "hermite_polynomial_he",
    "i0",
    "i0e",
    "i1",
    "i1e",
    "igamma",
    "igammac",
    "laguerre_polynomial_l",
    "legendre_polynomial_p",
    "lgamma",
    "log_ndtr",
    "multigammaln",
    "mvlgamma",
    "ndtr",
    "ndtri",
    "polygamma",
    "psi",
    "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w",
    "sinc",
    "spherical_bessel_j0",
    "xlog1py",
    "zeta",
]


def modified_bessel_i0(input: Tensor) -> Tensor:
    """I0(x), as :func:`i0` but without a gradient (as torch.special.modified_bessel_i0)."""
    x = _floating(input, "modified_bessel_i0", half=False)
    return _nondiff(x, lambda a: bessel_i_values(a, 0, False))


def modified_bessel_i1(input: Tensor) -> Tensor:
    """I1(x), as :func:`i1` but without a gradient (as torch.special.modified_bessel_i1)."""
    x = _floating(input, "modified_bessel_i1", half=False)
    return _nondiff(x, lambda a: bessel_i_values(a, 1, False))


__all__ += [
    "bessel_y0",
    "bessel_y1",
    "modified_bessel_i0",
    "modified_bessel_i1",
    "modified_bessel_k0",
    "modified_bessel_k1",
    "scaled_modified_bessel_k0",
    "scaled_modified_bessel_k1",
]
