"""The error function family and the normal quantile on NumPy, in float64, from
polynomial fits: erf, erfc, erfcx, ndtr, log_ndtr, erfinv and ndtri.

Every function here is a few polynomials, one per range of its argument, each evaluated
(Horner's rule) on the elements of its own range only, through their positions
(``flatnonzero``, ``take``, a put: NumPy's boolean gathers and scatters cost 4.7 ns per
element of the whole array, the positions 0.7 ns once), in blocks of 16 Ki values that
keep the temporaries in cache, split over darklib's threads (:func:`_run`).

The coefficients are Chebyshev interpolants computed with mpmath at 40-50 digits and
written as powers of the variable minus the range's centre; each range's comment gives
the largest relative error of the fit as evaluated in float64 (about 2e-16: the results
are within a few ulps of the exact values). They replaced series and continued fractions
of 40 to 60 terms on every element (erf of 1e6 float64 values took 105 ms, torch 3.3 ms)
and Newton iterations on those (erfinv of 1e6 float32 values: 500 ms, torch 2 ms); see
bench/slow_ops.py for the present figures. The GPU keeps its own kernels.

erf, erfc, erfcx: ``erf(x) = x P(x^2)`` for |x| < 1/2; above, the scaled complement
``erfcx(t) = e^(t^2) erfc(t)``, smooth and slowly varying, in t up to 2 and in 1/t beyond
(``t erfcx(t)`` tends to 1/sqrt(pi)). erfc multiplies it by ``e^(-t^2)`` with t^2 split
exactly in two (Dekker's product): the rounding of t^2 would otherwise cost 26^2 ulps at
t = 26, where erfc is near its underflow.

erfinv, ndtri: ``erfinv(y) = y R(w)`` with Giles' variable ``w = -log(1 - y^2)``
("Approximating the erfinv function", GPU Computing Gems, 2011): R = erfinv(y) / y is a
smooth function of w from R(0) = sqrt(pi)/2 on, and w is computed without cancellation as
``-log((1 - |y|)(1 + |y|))``, or from a probability p as ``-log(4 p (1 - p))`` (the normal
quantile is ``sqrt(2) erfinv(2p - 1)``, and ``1 - (2p - 1)^2 = 4 p (1 - p)``: the lower
tail keeps its digits down to the smallest subnormal). R is one polynomial in w below
6.25, in sqrt(w) up to 16 (40), in log(w) beyond (where ndtri's w reaches 744). For
float32 arguments shorter fits (within 2e-9) are enough: the result is rounded once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib.kernels import parallel as par

_SQRT_PI = math.sqrt(math.pi)
_SQRT_HALF = math.sqrt(0.5)

# ------------------------------------------------------------------ fits: erf, erfcx

# erf(x) / x in s = x^2 on [0, 1/4] (|x| < 1/2) (fit error 2.1e-16)
_ERF_SMALL_CENTRE = 0.125
_ERF_SMALL = (
    1.4725865480556744e-06,
    -1.3373262711652195e-05,
    0.00010818748975606738,
    -0.0007691399920694917,
    0.004716969080911766,
    -0.024383165104740107,
    0.10323658675594932,
    -0.3491364710935831,
    1.0830752376761712,
)
# erfcx(t) in t on [1/2, 2] (fit error 2.2e-16)
_ERFCX_NEAR_CENTRE = 1.25
_ERFCX_NEAR = (
    3.3712729956417845e-09,
    -1.2698965108345007e-08,
    3.782128556692057e-08,
    -1.3495543222071708e-07,
    4.800179855650226e-07,
    -1.6322773246505447e-06,
    5.395510924839193e-06,
    -1.7343494354731172e-05,
    5.4054092895471115e-05,
    -0.00016296013925133016,
    0.00047397030596022346,
    -0.0013257829127515989,
    0.0035531099035342175,
    -0.009081627634127992,
    0.022011364250847418,
    -0.050218274395869365,
    0.10679557149659888,
    -0.2088218759646102,
    0.3678229164523611,
)
# t erfcx(t) in u = 1/t on [1/27, 1/2] (t in [2, 27]) (fit error 2.2e-16)
_ERFCX_MID_CENTRE = 0.26851851851851855
_ERFCX_MID = (
    428.01446211739045,
    -314.18239896228164,
    -8.608162288447149,
    94.18975016752802,
    -52.882465747069006,
    12.107789140642234,
    6.085434957231775,
    -8.656026254456618,
    4.725011651849845,
    -0.6283469829999488,
    -1.2716518162695427,
    1.262513347489771,
    -0.4790558802228598,
    -0.18539155450067465,
    0.39237275238395647,
    -0.22802130098622136,
    -0.051254601390688694,
    0.21654886874170248,
    -0.15566541587111807,
    -0.12543626733787477,
    0.5457297006052771,
)
# t erfcx(t) in u^2 = 1/t^2 on [0, 1/729] (t >= 27) (fit error 2.0e-16)
_ERFCX_FAR_CENTRE = 0.0006858710562414266
_ERFCX_FAR = (
    88.83833067666386,
    -16.290392986295423,
    3.645996843110462,
    -1.0477755255986034,
    0.42097592720616533,
    -0.28151583796172713,
    0.5639963016086348,
)

# ------------------------------------------------------------------ fits: erfinv

W, SQRT_W, LOG_W = 0, 1, 2  # the variable each range's polynomial is written in

_FITS32 = (
    (  # w in [0, 6.25), in W (fit error 6.7e-10)
        6.25,
        W,
        3.125,
        (
            -1.2570814414523687e-11,
            5.688216479117087e-12,
            1.0363882341451174e-09,
            -4.752745619151995e-09,
            -2.895896037948332e-08,
            4.2698513895053384e-07,
            -1.3658217507589212e-06,
            -1.389214124592301e-05,
            0.00018673466051691629,
            -0.0007406910325430195,
            -0.006033671032285515,
            0.24015817844735166,
            1.6536545626831027,
        ),
    ),
    (  # w in [6.25, 16.5), in SQRT_W (fit error 1.6e-10)
        16.5,
        SQRT_W,
        3.28100960115899,
        (
            -3.819934644928304e-05,
            7.048375647675817e-05,
            3.781171370857711e-05,
            -0.00035556574639416546,
            0.0008779590885751657,
            -0.0015158579365058846,
            0.0022429561312130504,
            -0.0034580800775018514,
            0.005035831448467352,
            1.0055815425024155,
            3.1150633451885112,
        ),
    ),
    (  # w in [16, 110), in LOG_W (fit error 3.8e-10)
        110,
        LOG_W,
        3.7365345440160986,
        (
            8.937547977491655e-07,
            -9.199716179134266e-07,
            -9.804205056948388e-07,
            1.3268124250296943e-05,
            0.00013881722085465635,
            0.0016490771264006025,
            0.017248114227420418,
            0.1330944007559709,
            0.8116797072538109,
            3.2681086894751994,
            6.341447802976811,
        ),
    ),
)
_FITS64 = (
    (  # w in [0, 6.25), in W (fit error 4.4e-16)
        6.25,
        W,
        3.125,
        (
            -2.362369698566107e-22,
            -1.6787330615256773e-19,
            1.1027771591500033e-18,
            1.1125794759379464e-17,
            -1.290702354613073e-16,
            2.166994626283574e-17,
            6.581955305929239e-15,
            -4.0554139746886e-14,
            -8.106594456438496e-14,
            2.6335724924608484e-12,
            -1.2977505202014966e-11,
            -5.4154417754696635e-11,
            1.0512202440121784e-09,
            -4.112633104297614e-09,
            -2.907038666019143e-08,
            4.2347877672780653e-07,
            -1.3654691796592068e-06,
            -1.3882523361276876e-05,
            0.0001867342080212427,
            -0.0007407025341669402,
            -0.006033670871427011,
            0.2401581824255897,
            1.6536545626831027,
        ),
    ),
    (  # w in [6.25, 16), in SQRT_W (fit error 1.9e-16)
        16,
        SQRT_W,
        3.25,
        (
            -1.5102695423335065e-08,
            6.969241977629694e-10,
            1.3104351499972014e-07,
            -2.713451105439456e-07,
            -2.7004219280868947e-08,
            1.4987130784186127e-06,
            -3.986084395214756e-06,
            2.9257291901789823e-06,
            1.2465167157087251e-05,
            -4.731898412011245e-05,
            6.828708654753377e-05,
            2.4031257015092525e-05,
            -0.00035503780975963814,
            0.0009532893637435638,
            -0.0016882755357337071,
            0.0024914420969817607,
            -0.003751208508215561,
            0.00537091455357168,
            1.0052589676941652,
            3.0838856104922208,
        ),
    ),
    (  # w in [16, 40), in SQRT_W (fit error 2.3e-16)
        40,
        SQRT_W,
        5.162277660168379,
        (
            -7.786836834482009e-12,
            9.764119494454488e-12,
            7.240640242979502e-11,
            -2.6643798712499063e-10,
            5.851544475225721e-10,
            -1.337217929460105e-09,
            2.89772901738811e-09,
            -5.5919292994569e-09,
            1.1917882126555229e-08,
            -3.661420024676817e-08,
            1.562660327737253e-07,
            -7.477384867511095e-07,
            3.5462180318652297e-06,
            -1.5774442175587623e-05,
            6.167529018435484e-05,
            -0.00017051970005842307,
            -0.0002321917380648473,
            1.0102396886674792,
            5.013851075524762,
        ),
    ),
    (  # w in [40, 750), in LOG_W (fit error 2.8e-16)
        750,
        LOG_W,
        5.154476330322146,
        (
            -2.1333535304285146e-16,
            -2.5552812465379795e-15,
            3.585109900238068e-14,
            -2.1394666595701303e-13,
            8.053476772671023e-13,
            -1.5414357838181756e-14,
            -1.9616654016391514e-11,
            4.3661500161615163e-10,
            1.6984757822987677e-09,
            7.970602138634688e-08,
            1.2516499287650762e-06,
            2.0287507428890055e-05,
            0.0002880474799978515,
            0.0034037002542866143,
            0.034418962337984284,
            0.2737789730059043,
            1.6428378339578222,
            6.608214436281486,
            13.067243295028376,
        ),
    ),
)


# ------------------------------------------------------------------ evaluation

_BLOCK = 1 << 14  # values per block: a block's float64 temporaries stay in the L2 cache


def _run(fn: Callable[..., np.ndarray], x: np.ndarray, *args: Any) -> np.ndarray:
    """``fn(block of x in float64, *args)`` over the blocks of ``x``, split over darklib's
    threads; the result in x's dtype and shape."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, x.dtype)

    def run(s: int, e: int) -> None:
        out[s:e] = fn(flat[s:e].astype(np.float64), *args)

    par.map_reduce(run, flat.size, flat.size, block=_BLOCK)
    return out.reshape(x.shape)


def _poly(coeffs: tuple, v: np.ndarray) -> np.ndarray:
    """``coeffs[0] v^n + ... + coeffs[n]`` (a new array; ``v`` is kept)."""
    acc = np.multiply(v, coeffs[0])
    for c in coeffs[1:-1]:
        acc += c
        acc *= v
    acc += coeffs[-1]
    return acc


def _where(cond: np.ndarray) -> np.ndarray | None:
    """The positions where ``cond`` holds, or None where it holds nowhere."""
    idx = np.flatnonzero(cond)
    return idx if idx.size else None


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| < 1/2 (x kept)."""
    s = np.multiply(x, x)
    s -= _ERF_SMALL_CENTRE
    r = _poly(_ERF_SMALL, s)
    r *= x
    return r


def _erfcx_big(t: np.ndarray) -> np.ndarray:
    """erfcx(t) for t >= 1/2, +inf included (t kept)."""
    out = np.empty_like(t)
    idx = _where(t < 2)
    if idx is not None:
        v = np.take(t, idx)
        v -= _ERFCX_NEAR_CENTRE
        out[idx] = _poly(_ERFCX_NEAR, v)
    for cond, centre, coeffs, square in (
        ((t >= 2) & (t < 27), _ERFCX_MID_CENTRE, _ERFCX_MID, False),
        (t >= 27, _ERFCX_FAR_CENTRE, _ERFCX_FAR, True),
    ):
        idx = _where(cond)
        if idx is None:
            continue
        tt = np.take(t, idx)
        v = np.reciprocal(tt)
        if square:
            v *= v
        v -= centre
        r = _poly(coeffs, v)
        r /= tt  # erfcx = (t erfcx) / t: one rounding
        out[idx] = r
    return out


def _exp_square(t: np.ndarray, k: float) -> np.ndarray:
    """exp(k t^2) for t >= 0, with t^2 split exactly into sq + err (Dekker's product):
    exp(k sq) (1 + k err), where |err| < 2^-53 t^2 (exp(k err) to 1e-26)."""
    t = np.minimum(t, 40.0)  # exp(-800) = 0, exp(800) = inf already; no overflow below
    c = np.multiply(t, 134217729.0)  # 2^27 + 1
    hi = np.subtract(c, t)
    np.subtract(c, hi, out=hi)  # t's upper 26 bits
    lo = np.subtract(t, hi)
    sq = np.multiply(t, t)
    err = np.multiply(hi, hi)
    err -= sq
    hi *= lo
    hi *= 2
    err += hi
    lo *= lo
    err += lo  # t^2 = sq + err exactly
    sq *= k
    np.exp(sq, out=sq)
    err *= k
    err += 1
    sq *= err
    return sq


def _erf_block(x: np.ndarray) -> np.ndarray:
    t = np.abs(x)
    out = x.copy()  # (NaN stays)
    idx = _where(t < 0.5)
    if idx is not None:
        out[idx] = _erf_small(np.take(x, idx))
    idx = _where(t >= 0.5)
    if idx is not None:
        tt = np.take(t, idx)
        e = _erfcx_big(tt)
        tt *= tt
        np.negative(tt, out=tt)
        np.exp(tt, out=tt)
        e *= tt  # erfc(|x|): an absolute error of 1e-16 * erfc is all erf needs
        np.subtract(1, e, out=e)
        out[idx] = np.copysign(e, np.take(x, idx), out=e)
    return out


def _erfc_block(x: np.ndarray) -> np.ndarray:
    t = np.abs(x)
    out = x.copy()
    idx = _where(t < 0.5)
    if idx is not None:
        r = _erf_small(np.take(x, idx))
        out[idx] = np.subtract(1, r, out=r)
    idx = _where(t >= 0.5)
    if idx is not None:
        tt = np.take(t, idx)
        e = _erfcx_big(tt)
        e *= _exp_square(tt, -1.0)
        out[idx] = e
        neg = _where(x <= -0.5)  # erfc(-t) = 2 - erfc(t)
        if neg is not None:
            out[neg] = 2 - np.take(out, neg)
    return out


def _erfcx_block(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    idx = _where((x >= 0) & (x < 0.5))
    if idx is not None:
        v = np.take(x, idx)
        r = _erf_small(v)
        np.subtract(1, r, out=r)
        v *= v
        np.exp(v, out=v)  # (|x| < 1/2: x^2 rounds by at most 3e-17)
        r *= v
        out[idx] = r
    idx = _where(x >= 0.5)
    if idx is not None:
        out[idx] = _erfcx_big(np.take(x, idx))
    idx = _where(x < 0)  # erfcx(-t) = 2 e^(t^2) - erfcx(t)
    if idx is not None:
        t = np.negative(np.take(x, idx))
        out[idx] = 2 * _exp_square(t, 1.0) - _erfcx_block(t)
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """erf of a float32 or float64 array, computed in float64."""
    return _run(_erf_block, x)


def erfc(x: np.ndarray) -> np.ndarray:
    """erfc of a float32 or float64 array, computed in float64."""
    return _run(_erfc_block, x)


def erfcx(x: np.ndarray) -> np.ndarray:
    """erfcx (e^(x^2) erfc(x)) of a float32 or float64 array: 0 at +inf, inf below -26.6."""
    return _run(_erfcx_block, x)


def _ndtr_block(x: np.ndarray) -> np.ndarray:
    """Phi(x) = e^(-x^2/2) erfcx(|x|/sqrt 2) / 2 for x < 0, 1 minus that above (e^(-x^2/2)
    from the exact square of x: no loss in the far tail)."""
    t = np.abs(x)
    h = np.multiply(t, _SQRT_HALF)
    e = _erfcx_block(h)
    e *= _exp_square(t, -0.5)
    e *= 0.5
    pos = _where(x >= 0)
    if pos is not None:
        e[pos] = 1 - np.take(e, pos)
    return e


def ndtr(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF of a float32 or float64 array."""
    return _run(_ndtr_block, x)


def _ratio(w: np.ndarray, fits: tuple) -> np.ndarray:
    """``erfinv(y) / y`` at ``w = -log(1 - y^2)`` (float64), NaN where ``w`` is NaN or
    past the last range (infinite: ``|y| = 1``)."""
    out = np.full(w.shape, np.nan)
    lo = 0.0
    for hi, var, centre, coeffs in fits:
        idx = _where((w >= lo) & (w < hi))
        lo = hi
        if idx is None:
            continue
        every = idx.size == w.size  # (the common case: no gather or scatter)
        v = w.copy() if every else np.take(w, idx)
        if var == SQRT_W:
            np.sqrt(v, out=v)
        elif var == LOG_W:
            np.log(v, out=v)
        v -= centre
        r = _poly(coeffs, v)
        if every:
            return r
        out[idx] = r
    return out


def _erfinv_block(y: np.ndarray, fits: tuple) -> np.ndarray:
    a = np.abs(y)
    t = 1 - a
    t *= 1 + a  # (1 - |y|)(1 + |y|): 1 - |y| is exact where it matters (|y| >= 1/2)
    np.log(t, out=t)
    np.negative(t, out=t)  # w (NaN for |y| > 1, inf at |y| = 1)
    r = _ratio(t, fits)
    r *= y
    ends = _where(a == 1)
    if ends is not None:
        r[ends] = np.copysign(np.inf, np.take(y, ends))
    return r


def erfinv(y: np.ndarray) -> np.ndarray:
    """erfinv of a float32 or float64 array (NaN outside [-1, 1], +-inf at +-1)."""
    return _run(_erfinv_block, y, _FITS32 if y.dtype == np.float32 else _FITS64)


def _ndtri_block(p: np.ndarray, fits: tuple) -> np.ndarray:
    q = np.minimum(p, 1 - p)  # the lower tail (1 - p is exact for p >= 1/2)
    w = 1 - q
    w *= q
    w *= 4
    np.log(w, out=w)
    np.negative(w, out=w)  # -log(4 q (1 - q)): inf at q = 0, NaN below
    r = _ratio(w, fits)
    ends = _where(q == 0)  # p = 0 or 1
    q *= 2
    q -= 1  # 2q - 1 <= 0
    r *= q
    r *= math.sqrt(2)  # ndtri(q) <= 0
    np.copysign(r, p - 0.5, out=r)  # ndtri(p) = -ndtri(1 - p)
    if ends is not None:
        r[ends] = np.copysign(np.inf, np.take(p, ends) - 0.5)
    return r


def ndtri(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile of a float32 or float64 array (NaN outside [0, 1])."""
    return _run(_ndtri_block, p, _FITS32 if p.dtype == np.float32 else _FITS64)


def _log_ndtr_block(x: np.ndarray) -> np.ndarray:
    """log Phi(x): log(erfcx(-x/sqrt 2) / 2) - x^2/2 for x < 0 (no log(0) in the left
    tail), log1p(-Phi(-x)) for x >= 0."""
    out = x.copy()
    idx = _where(x < 0)
    if idx is not None:
        v = np.take(x, idx)
        r = _erfcx_block(np.multiply(v, -_SQRT_HALF))
        r *= 0.5
        np.log(r, out=r)
        v *= v
        v *= 0.5
        r -= v
        out[idx] = r
    idx = _where(x >= 0)
    if idx is not None:
        r = _ndtr_block(np.negative(np.take(x, idx)))
        np.negative(r, out=r)
        out[idx] = np.log1p(r, out=r)
    return out


def log_ndtr(x: np.ndarray) -> np.ndarray:
    """log of the standard normal CDF of a float32 or float64 array."""
    return _run(_log_ndtr_block, x)
