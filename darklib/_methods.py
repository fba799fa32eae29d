"""Binds the functional ops to Tensor methods and operators (``x.sum()``, ``a @ b``, ...).

Kept apart from tensor.py so that the Tensor class stays small and the ops modules can
import it without a cycle. One section per ops module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from darklib.backend import get_xp
from darklib.errors import InvalidValue
from darklib.ops import decomp as D
from darklib.ops import elementwise as E
from darklib.ops import linalg as L
from darklib.ops import products as P
from darklib.ops import special as SP
from darklib.tensor import NamedConstant, Tensor

_SEQUENCES = (list, tuple)


def _operator(fn):
    """An operator's method: a list or tuple operand gives NotImplemented, so that Python
    raises its TypeError (``unsupported operand type(s) for +: 'Tensor' and 'list'``, and
    ``==`` falls back to identity), as torch does; the functional forms refuse them too."""

    def method(self, other):
        if isinstance(other, _SEQUENCES):
            return NotImplemented
        return fn(self, other)

    method.__name__ = getattr(fn, "__name__", "operator")
    return method


def _reflect(fn):
    return _operator(lambda self, other: fn(other, self))


def _bind(**methods: Any) -> None:
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


# ------------------------------------------------------------------ elementwise
_bind(
    __add__=_operator(E.add),
    __radd__=_reflect(E.add),
    __sub__=_operator(E.sub),
    __rsub__=_reflect(E.sub),
    __mul__=_operator(E.mul),
    __rmul__=_reflect(E.mul),
    __truediv__=_operator(E.div),
    __rtruediv__=_reflect(E.div),
    __pow__=_operator(E.pow),
    __rpow__=_reflect(E.pow),
    __neg__=E.neg,
    __abs__=E.abs,
    __floordiv__=_operator(E.floor_divide),
    __rfloordiv__=_reflect(E.floor_divide),
    __mod__=_operator(E.remainder),
    __rmod__=_reflect(E.remainder),
    __pos__=lambda self: self,
    # as torch: x == None is False; a list or tuple compares by identity
    __eq__=_operator(lambda a, b: False if b is None else E.eq(a, b)),
    __ne__=_operator(lambda a, b: True if b is None else E.ne(a, b)),
    __lt__=_operator(E.lt),
    __le__=_operator(E.le),
    __gt__=_operator(E.gt),
    __ge__=_operator(E.ge),
    __invert__=E.bitwise_not,
    __and__=_operator(E.bitwise_and),
    __rand__=_reflect(E.bitwise_and),
    __or__=_operator(E.bitwise_or),
    __ror__=_reflect(E.bitwise_or),
    __xor__=_operator(E.bitwise_xor),
    __rxor__=_reflect(E.bitwise_xor),
    __lshift__=_operator(E.bitwise_left_shift),
    __rlshift__=_reflect(E.bitwise_left_shift),
    __rshift__=_operator(E.bitwise_right_shift),
    __rrshift__=_reflect(E.bitwise_right_shift),
    add=E.add,
    sub=E.sub,
    subtract=E.sub,
    mul=E.mul,
    multiply=E.mul,
    div=E.div,
    true_divide=E.div,
    logaddexp=E.logaddexp,
    divide=E.div,
    pow=E.pow,
    neg=E.neg,
    negative=E.neg,
    abs=E.abs,
    absolute=E.abs,
    exp=E.exp,
    exp2=E.exp2,
    expm1=E.expm1,
    log1p=E.log1p,
    log2=E.log2,
    log10=E.log10,
    tan=E.tan,
    asin=E.asin,
    erfc=E.erfc,
    erfinv=E.erfinv,
    asinh=E.asinh,
    acosh=E.acosh,
    atanh=E.atanh,
    arcsinh=E.asinh,
    arccosh=E.acosh,
    arctanh=E.atanh,
    copysign=E.copysign,
    fmax=E.fmax,
    fmin=E.fmin,
    signbit=E.signbit,
    float_power=E.float_power,
    logaddexp2=E.logaddexp2,
    bitwise_left_shift=E.bitwise_left_shift,
    bitwise_right_shift=E.bitwise_right_shift,
    acos=E.acos,
    atan=E.atan,
    arcsin=E.asin,
    arccos=E.acos,
    arctan=E.atan,
    atan2=E.atan2,
    arctan2=E.atan2,
    sinh=E.sinh,
    cosh=E.cosh,
    erf=E.erf,
    frac=E.frac,
    sgn=E.sign,
    fix=E.trunc,
    floor_divide=E.floor_divide,
    remainder=E.remainder,
    fmod=E.fmod,
    lerp=E.lerp,
    addcmul=E.addcmul,
    addcdiv=E.addcdiv,
    nan_to_num=E.nan_to_num,
    isclose=E.isclose,
    allclose=E.allclose,
    equal=E.equal,
    clamp_min=E.clamp_min,
    clamp_max=E.clamp_max,
    logical_xor=E.logical_xor,
    bitwise_and=E.bitwise_and,
    bitwise_or=E.bitwise_or,
    bitwise_xor=E.bitwise_xor,
    bitwise_not=E.bitwise_not,
    logit=E.logit,
    hypot=E.hypot,
    xlogy=E.xlogy,
    greater=E.gt,
    greater_equal=E.ge,
    less=E.lt,
    less_equal=E.le,
    not_equal=E.ne,
    log=E.log,
    sqrt=E.sqrt,
    rsqrt=E.rsqrt,
    sin=E.sin,
    cos=E.cos,
    tanh=E.tanh,
    sigmoid=E.sigmoid,
    relu=E.relu,
    clamp=E.clamp,
    clip=E.clamp,
    maximum=E.maximum,
    minimum=E.minimum,
    sign=E.sign,
    floor=E.floor,
    ceil=E.ceil,
    round=E.round,
    trunc=E.trunc,
    isnan=E.isnan,
    isinf=E.isinf,
    isfinite=E.isfinite,
    eq=E.eq,
    ne=E.ne,
    lt=E.lt,
    le=E.le,
    gt=E.gt,
    ge=E.ge,
    logical_not=E.logical_not,
    logical_and=E.logical_and,
    logical_or=E.logical_or,
    where=lambda self, condition, other: E.where(condition, self, other),
    reciprocal=E.reciprocal,
    square=E.square,
)

# in-place forms: the out-of-place op, rebased onto this tensor (see Tensor._inplace)
_bind(
    add_=lambda self, other, *, alpha=1: self._inplace("add_", E.add, other, alpha=alpha),
    sub_=lambda self, other, *, alpha=1: self._inplace("sub_", E.sub, other, alpha=alpha),
    mul_=lambda self, other: self._inplace("mul_", E.mul, other),
    div_=lambda self, other, *, rounding_mode=None: self._inplace(
        "div_", E.div, other, rounding_mode=rounding_mode
    ),
    divide_=lambda self, other, *, rounding_mode=None: self._inplace(
        "divide_", E.div, other, rounding_mode=rounding_mode
    ),
    true_divide_=lambda self, other: self._inplace("true_divide_", E.div, other),
    subtract_=lambda self, other, *, alpha=1: self._inplace("subtract_", E.sub, other, alpha=alpha),
    multiply_=lambda self, other: self._inplace("multiply_", E.mul, other),
    float_power_=lambda self, e: _float_power_(self, e),
    pow_=lambda self, e: self._inplace("pow_", E.pow, e),
    clamp_=lambda self, min=None, max=None: self._inplace("clamp_", E.clamp, min, max),
    clip_=lambda self, min=None, max=None: self._inplace("clip_", E.clamp, min, max),
    clamp_min_=lambda self, min: self._inplace("clamp_min_", E.clamp, min, None),
    clamp_max_=lambda self, max: self._inplace("clamp_max_", E.clamp, None, max),
    floor_divide_=lambda self, other: self._inplace("floor_divide_", E.floor_divide, other),
    remainder_=lambda self, other: self._inplace("remainder_", E.remainder, other),
    fmod_=lambda self, other: self._inplace("fmod_", E.fmod, other),
    lerp_=lambda self, end, weight: self._inplace("lerp_", E.lerp, end, weight),
    addcmul_=lambda self, t1, t2, *, value=1: self._inplace(
        "addcmul_", E.addcmul, t1, t2, value=value
    ),
    addcdiv_=lambda self, t1, t2, *, value=1: self._inplace(
        "addcdiv_", E.addcdiv, t1, t2, value=value
    ),
    nan_to_num_=lambda self, nan=0.0, posinf=None, neginf=None: self._inplace(
        "nan_to_num_", E.nan_to_num, nan, posinf, neginf
    ),
    __ilshift__=lambda self, other: self._inplace("<<=", E.bitwise_left_shift, other),
    __irshift__=lambda self, other: self._inplace(">>=", E.bitwise_right_shift, other),
    __ifloordiv__=lambda self, other: self._inplace("//=", E.floor_divide, other),
    __imod__=lambda self, other: self._inplace("%=", E.remainder, other),
    __ipow__=lambda self, other: self._inplace("**=", E.pow, other),
    __iand__=lambda self, other: self._inplace("&=", E.bitwise_and, other),
    __ior__=lambda self, other: self._inplace("|=", E.bitwise_or, other),
    __ixor__=lambda self, other: self._inplace("^=", E.bitwise_xor, other),
    __iadd__=lambda self, other: self._inplace("+=", E.add, other),
    __isub__=lambda self, other: self._inplace("-=", E.sub, other),
    __imul__=lambda self, other: self._inplace("*=", E.mul, other),
    __itruediv__=lambda self, other: self._inplace("/=", E.div, other),
)


def _float_power_(self: Tensor, exponent: Any) -> Tensor:
    if self.array.dtype != "float64":
        raise RuntimeError(
            f"float_power_: the base has dtype {self.dtype} but the result is float64; "
            "call .double() first"
        )
    return self._inplace("float_power_", E.float_power, exponent)


def _inplace_binary(name: str, fn: Any) -> Any:
    return lambda self, other: self._inplace(name + "_", fn, other)


# binary ops whose result is cast back into the tensor (comparisons and logical ops write
# 0/1 in its dtype, as torch)
for _name in (
    "bitwise_and bitwise_or bitwise_xor bitwise_left_shift bitwise_right_shift logical_and "
    "logical_or logical_xor eq ne lt le gt ge atan2 hypot xlogy copysign heaviside ldexp"
).split():
    setattr(Tensor, _name + "_", _inplace_binary(_name, getattr(E, _name)))
for _alias, _name in (  # torch's long names of the in-place comparisons
    ("greater", "gt"),
    ("greater_equal", "ge"),
    ("less", "lt"),
    ("less_equal", "le"),
    ("not_equal", "ne"),
):
    setattr(Tensor, _alias + "_", _inplace_binary(_alias, getattr(E, _name)))
_bind(
    heaviside=E.heaviside,
    ldexp=E.ldexp,
    logit_=lambda self, eps=None: self._inplace("logit_", E.logit, eps),
    # `x in t` and reversed(t), as torch: any element equal; t flipped along dim 0
    __contains__=lambda self, element: bool(E.eq(self, element).array.any()),
    __reversed__=lambda self: self if self.ndim == 0 else self.flip(0),
)


def _inplace_unary(name: str, fn: Any) -> Any:
    return lambda self: self._inplace(name + "_", fn)


for _name in (
    "abs exp log sqrt rsqrt sin cos tan tanh sigmoid neg floor ceil trunc frac sign "
    "reciprocal square log1p expm1 log2 log10 exp2 erf asin acos atan sinh cosh "
    "bitwise_not logical_not sgn erfinv asinh acosh atanh erfc"
).split():
    setattr(Tensor, _name + "_", _inplace_unary(_name, getattr(E, _name)))
_bind(  # torch's aliases of in-place methods
    absolute_=Tensor.abs_,
    arctan2_=Tensor.atan2_,
    fix_=Tensor.trunc_,
    arcsin_=Tensor.asin_,
    arccos_=Tensor.acos_,
    arctan_=Tensor.atan_,
    arcsinh_=Tensor.asinh_,
    arccosh_=Tensor.acosh_,
    arctanh_=Tensor.atanh_,
)
_bind(
    round_=lambda self, *, decimals=0: self._inplace("round_", E.round, decimals=decimals),
    relu_=lambda self: self._inplace("relu_", E.relu),
)

# ------------------------------------------------------------------ linalg
_bind(
    __matmul__=_operator(L.matmul),
    __rmatmul__=_reflect(L.matmul),
    matmul=L.matmul,
    mm=L.mm,
    bmm=L.bmm,
    mv=L.mv,
    dot=L.dot,
    inner=L.inner,
    outer=L.outer,
    ger=L.outer,
    addmm=L.addmm,
    baddbmm=L.baddbmm,
    dist=L.dist,
)

# ------------------------------------------------------------------ reduction
from darklib.ops import reduction as R  # noqa: E402

_bind(
    sum=R.sum,
    mean=R.mean,
    var=R.var,
    std=R.std,
    max=R.max,
    min=R.min,
    amax=R.amax,
    amin=R.amin,
    argmax=R.argmax,
    argmin=R.argmin,
    logsumexp=R.logsumexp,
    isin=R.isin,
    prod=R.prod,
    all=R.all,
    any=R.any,
    norm=R.norm,
    cumsum=R.cumsum,
    logcumsumexp=R.logcumsumexp,
    cumprod=R.cumprod,
    sort=R.sort,
    argsort=R.argsort,
    topk=R.topk,
    median=R.median,
    nanmedian=R.nanmedian,
    mode=R.mode,
    aminmax=R.aminmax,
    var_mean=R.var_mean,
    std_mean=R.std_mean,
    count_nonzero=R.count_nonzero,
    nansum=R.nansum,
    nanmean=R.nanmean,
    kthvalue=R.kthvalue,
    cummax=R.cummax,
    cummin=R.cummin,
    quantile=R.quantile,
    softmax=lambda self, dim=None, dtype=None: R.softmax(self, dim, dtype=dtype),
    log_softmax=lambda self, dim=None, dtype=None: R.log_softmax(self, dim, dtype=dtype),
)

# ------------------------------------------------------------------ shape
from darklib.ops import shape as S  # noqa: E402

_bind(
    reshape=S.reshape,
    view=S.view,
    view_as=S.view_as,
    as_strided=S.as_strided,
    reshape_as=S.reshape_as,
    flatten=S.flatten,
    ravel=S.ravel,
    unflatten=S.unflatten,
    squeeze=S.squeeze,
    unsqueeze=S.unsqueeze,
    permute=S.permute,
    transpose=S.transpose,
    swapaxes=S.swapaxes,
    swapdims=S.swapdims,
    t=S.t,
    T=property(S._T),
    mT=property(S._mT),
    mH=property(S._mT),  # (real tensors: the conjugate transpose is the transpose)
    H=property(S._H),
    movedim=S.movedim,
    moveaxis=S.moveaxis,
    expand=S.expand,
    expand_as=S.expand_as,
    broadcast_to=S.broadcast_to,
    repeat=S.repeat,
    tile=S.tile,
    split=S.split,
    chunk=S.chunk,
    unbind=S.unbind,
    narrow=S.narrow,
    select=S.select,
    flip=S.flip,
    fliplr=S.fliplr,
    flipud=S.flipud,
    roll=S.roll,
    triu=S.triu,
    tril=S.tril,
    triu_=lambda self, diagonal=0: self._inplace("triu_", S.triu, diagonal),
    tril_=lambda self, diagonal=0: self._inplace("tril_", S.tril, diagonal),
    diagonal=S.diagonal,
    diag=S.diag,
    trace=S.trace,
    repeat_interleave=S.repeat_interleave,
    unfold=S.unfold,
    tensor_split=S.tensor_split,
    rot90=S.rot90,
    diff=S.diff,
    hsplit=S.hsplit,
    vsplit=S.vsplit,
    dsplit=S.dsplit,
    sum_to_size=S.sum_to_size,
    msort=S.msort,
)
# (torch.broadcast_to takes a sequence; the method also takes varargs, as expand)
_bind(broadcast_to=S._broadcast_to_method)

# in-place shape changes: the tensor becomes the view (see Tensor._inplace_view)
_bind(
    squeeze_=lambda self, dim=None: self._inplace_view("squeeze_", S.squeeze, dim),
    unsqueeze_=lambda self, dim: self._inplace_view("unsqueeze_", S.unsqueeze, dim),
    t_=lambda self: self._inplace_view("t_", S.t),
    transpose_=lambda self, dim0, dim1: self._inplace_view("transpose_", S.transpose, dim0, dim1),
    swapdims_=lambda self, dim0, dim1: self._inplace_view("swapdims_", S.transpose, dim0, dim1),
    swapaxes_=lambda self, axis0, axis1: self._inplace_view("swapaxes_", S.transpose, axis0, axis1),
)

# ------------------------------------------------------------------ indexing
from darklib.ops import indexing as I  # noqa: E402

_bind(
    __getitem__=I.getitem,
    __setitem__=I.setitem,
    index_select=I.index_select,
    gather=I.gather,
    take_along_dim=I.take_along_dim,
    take=I.take,
    scatter_reduce=I.scatter_reduce,
    scatter=I.scatter,
    scatter_add=I.scatter_add,
    masked_fill=I.masked_fill,
    masked_select=I.masked_select,
    nonzero=I.nonzero,
    argwhere=I.argwhere,
    unique=I.unique,
    unique_consecutive=I.unique_consecutive,
    index_put=I.index_put,
    index_add=I.index_add,
    index_fill=I.index_fill,
    bincount=I.bincount,
    index_add_=lambda self, dim, index, source, *, alpha=1: self._inplace(
        "index_add_", I.index_add, dim, index, source, alpha=alpha
    ),
    index_fill_=lambda self, dim, index, value: self._inplace(
        "index_fill_", I.index_fill, dim, index, value
    ),
    fill_diagonal_=lambda self, fill_value, wrap=False: self._inplace(
        "fill_diagonal_", I.fill_diagonal, fill_value, wrap
    ),
    scatter_=lambda self, dim, index, src=None, *, value=None, reduce=None: self._inplace(
        "scatter_", I.scatter, dim, index, src, value=value, reduce=reduce
    ),
    scatter_add_=lambda self, dim, index, src: self._inplace(
        "scatter_add_", I.scatter_add, dim, index, src
    ),
    masked_fill_=lambda self, mask, value: self._inplace(
        "masked_fill_", I.masked_fill, mask, value
    ),
    index_put_=lambda self, indices, values, accumulate=False: self._inplace(
        "index_put_", I.index_put, indices, values, accumulate
    ),
    scatter_reduce_=lambda self, dim, index, src, reduce, *, include_self=True: self._inplace(
        "scatter_reduce_", I.scatter_reduce, dim, index, src, reduce, include_self=include_self
    ),
    index_copy=I.index_copy,
    index_copy_=lambda self, dim, index, source: self._inplace(
        "index_copy_", I.index_copy, dim, index, source
    ),
    masked_scatter=I.masked_scatter,
    masked_scatter_=lambda self, mask, source: self._inplace(
        "masked_scatter_", I.masked_scatter_inplace, mask, source
    ),
    put=I.put,
    put_=lambda self, index, source, accumulate=False: self._inplace(
        "put_", I.put, index, source, accumulate
    ),
)

# ------------------------------------------------------------------ creation like self
from darklib import creation as C  # noqa: E402
from darklib import dtypes as _dt  # noqa: E402


def _new(fn):
    def method(self, *args, dtype=None, device=None, requires_grad=False, **kw):
        return fn(
            *args,
            dtype=self.dtype if dtype is None else dtype,
            device=self.device if device is None else device,
            requires_grad=requires_grad,
            **kw,
        )

    return method


_bind(
    new_zeros=_new(C.zeros),
    new_ones=_new(C.ones),
    new_empty=_new(C.empty),
    new_full=_new(C.full),
    new_tensor=_new(C.tensor),
)


# ------------------------------------------------------------------ random fills


def _fill_random(name: str, make: Any) -> Any:
    def method(self, *args: Any, generator: Any = None, **kw: Any) -> Tensor:
        def sample(t: Tensor) -> Tensor:
            return make(t, generator, *args, **kw)

        return self._inplace(name, sample)

    method.__name__ = name
    return method


def _uniform(t: Tensor, gen: Any, from_: float = 0.0, to: float = 1.0) -> Tensor:
    from_, to = _dt.number(from_), _dt.number(to)
    if not from_ <= to:
        raise InvalidValue(
            f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}"
        )
    if t.array.dtype.kind == "f":
        _dt.check_uniform_bounds("uniform_", float(from_), float(to), t.array.dtype)
    u = C.rand(*t.shape, generator=gen, dtype=t.dtype, device=t.device)
    return Tensor._wrap((u.array * (to - from_) + from_).astype(t.array.dtype, copy=False))


def _normal(t: Tensor, gen: Any, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return C.normal(mean, std, t.shape, generator=gen, dtype=t.dtype, device=t.device)


def _bernoulli(t: Tensor, gen: Any, p: Any = 0.5) -> Tensor:
    C.check_probability("bernoulli_", p)
    prob = p.array if isinstance(p, Tensor) else p
    u = C.rand(*t.shape, generator=gen, device=t.device).array
    return Tensor._wrap((u < prob).astype(t.array.dtype))


def _from_uniform(t: Tensor, gen: Any, f: Any) -> Tensor:
    """``f(xp, u)`` of uniform samples ``u`` in [0, 1) (float64), in ``t``'s dtype."""
    u = C.rand(*t.shape, generator=gen, dtype=_dt.float64, device=t.device).array
    with np.errstate(all="ignore"):  # values beyond the dtype become inf, as torch's
        return Tensor._wrap(f(get_xp(u), u).astype(t.array.dtype))


def _positive(name: str, what: str, v: float) -> float:
    if not v > 0:
        raise InvalidValue(f"{name}: {what} must be positive, got {v}")
    return float(v)


def _exponential(t: Tensor, gen: Any, lambd: float = 1.0) -> Tensor:
    lam = _positive("exponential_", "lambd", lambd)
    return _from_uniform(t, gen, lambda xp, u: -xp.log1p(-u) / lam)


def _geometric(t: Tensor, gen: Any, p: float) -> Tensor:
    if not 0 < p < 1:  # (torch refuses p = 1 too)
        raise InvalidValue(f"geometric_ expects p to be in (0, 1), got p={p}")
    # trials up to the first success: 1, 2, ...
    return _from_uniform(
        t,
        gen,
        lambda xp, u: xp.maximum(1.0, xp.ceil(xp.log1p(-u) / math.log1p(-p))),
    )


def _cauchy(t: Tensor, gen: Any, median: float = 0.0, sigma: float = 1.0) -> Tensor:
    s = _positive("cauchy_", "sigma", sigma)
    return _from_uniform(t, gen, lambda xp, u: median + s * xp.tan(math.pi * (u - 0.5)))


def _log_normal(t: Tensor, gen: Any, mean: float = 1.0, std: float = 2.0) -> Tensor:
    s = _positive("log_normal_", "std", std)
    z = C.randn(*t.shape, generator=gen, dtype=_dt.float64, device=t.device).array
    with np.errstate(all="ignore"):  # values beyond the dtype become inf, as torch's
        return Tensor._wrap(get_xp(z).exp(mean + s * z).astype(t.array.dtype))


_ONE_BOUND = object()  # random_(to) as opposed to random_(from, None)


def _random(t: Tensor, gen: Any, from_: int = 0, to: Any = _ONE_BOUND) -> Tensor:
    """Integers in [from_, to): random_(to) draws from [0, to); without ``to`` (or with
    to=None), up to 2**digits for floats (2**24 for float32) and the largest value of an
    integer dtype, as torch; bounds beyond the dtype are refused, as torch."""
    if to is _ONE_BOUND:
        from_, to = (0, from_) if from_ != 0 else (0, None)
    dt = t.array.dtype
    if dt.kind == "b":
        top = 1
    elif dt.kind == "f":
        top = 2 ** (np.finfo(dt).nmant + 1)
    else:
        top = int(np.iinfo(dt).max)
    low = int(np.iinfo(dt).min) if dt.kind in "iu" else (0 if dt.kind == "b" else -top)
    if to is None:
        to = top + 1
    if not from_ < to:
        raise InvalidValue(f"random_: expects from < to, got from={from_} to={to}")
    if from_ < low or to - 1 > top:
        raise InvalidValue(
            f"random_: [from, to - 1] = [{from_}, {to - 1}] is out of bounds for {t.dtype} "
            f"([{low}, {top}])"
        )
    r = C.randint(int(from_), int(to), tuple(t.shape), generator=gen, device=t.device)
    return Tensor._wrap(r.array.astype(dt))


_bind(
    exponential_=_fill_random("exponential_", _exponential),
    geometric_=_fill_random("geometric_", _geometric),
    cauchy_=_fill_random("cauchy_", _cauchy),
    log_normal_=_fill_random("log_normal_", _log_normal),
    random_=_fill_random("random_", _random),
    uniform_=_fill_random("uniform_", _uniform),
    normal_=_fill_random("normal_", _normal),
    bernoulli_=_fill_random("bernoulli_", _bernoulli),
    bernoulli=lambda self, p=None, *, generator=None: C.bernoulli(self, p, generator=generator),
    multinomial=lambda self, num_samples, replacement=False, *, generator=None: C.multinomial(
        self, num_samples, replacement, generator=generator
    ),
)

# ------------------------------------------------------------------ products, histograms, scatters

_bind(
    kron=P.kron,
    renorm=P.renorm,
    renorm_=lambda self, p, dim, maxnorm: self._inplace("renorm_", P.renorm, p, dim, maxnorm),
    diag_embed=P.diag_embed,
    diagflat=P.diagflat,
    histc=P.histc,
    histogram=P.histogram,
    cov=P.cov,
    corrcoef=P.corrcoef,
    addmv=P.addmv,
    addmv_=lambda self, mat, vec, *, beta=1, alpha=1: self._inplace(
        "addmv_", P.addmv, mat, vec, beta=beta, alpha=alpha
    ),
    addr=P.addr,
    addr_=lambda self, vec1, vec2, *, beta=1, alpha=1: self._inplace(
        "addr_", P.addr, vec1, vec2, beta=beta, alpha=alpha
    ),
    addbmm=P.addbmm,
    addbmm_=lambda self, batch1, batch2, *, beta=1, alpha=1: self._inplace(
        "addbmm_", P.addbmm, batch1, batch2, beta=beta, alpha=alpha
    ),
    addmm_=lambda self, mat1, mat2, *, beta=1, alpha=1: self._inplace(
        "addmm_", L.addmm, mat1, mat2, beta=beta, alpha=alpha
    ),
    baddbmm_=lambda self, batch1, batch2, *, beta=1, alpha=1: self._inplace(
        "baddbmm_", L.baddbmm, batch1, batch2, beta=beta, alpha=alpha
    ),
    narrow_copy=P.narrow_copy,
    select_scatter=P.select_scatter,
    slice_scatter=P.slice_scatter,
    diagonal_scatter=P.diagonal_scatter,
)


# ------------------------------------------------------------------ linear algebra (decomp)

_bind(
    det=D.det,
    logdet=D.logdet,
    slogdet=D.slogdet,
    inverse=D.inverse,
    cholesky=D.cholesky,
    cholesky_solve=D.cholesky_solve,
    cholesky_inverse=D.cholesky_inverse,
    qr=D.qr,
    geqrf=D.geqrf,
    svd=D.svd,
    pinverse=D.pinverse,
    matrix_power=D.matrix_power,
    cross=D.cross,
    matrix_exp=D.matrix_exp,
    lu=D.lu,
    lu_solve=D.lu_solve,
    triangular_solve=D.triangular_solve,
)

# ------------------------------------------------------------------ special functions

_bind(
    lgamma=SP.lgamma,
    digamma=SP.digamma,
    polygamma=lambda self, n: SP.polygamma(n, self),
    mvlgamma=lambda self, p: SP.mvlgamma(self, p),
    i0=SP.i0,
    sinc=SP.sinc,
    igamma=SP.igamma,
    igammac=SP.igammac,
    lgamma_=lambda self: self._inplace("lgamma_", SP.lgamma),
    digamma_=lambda self: self._inplace("digamma_", SP.digamma),
    polygamma_=lambda self, n: self._inplace("polygamma_", lambda t: SP.polygamma(n, t)),
    mvlgamma_=lambda self, p: self._inplace("mvlgamma_", SP.mvlgamma, p),
    i0_=lambda self: self._inplace("i0_", SP.i0),
    sinc_=lambda self: self._inplace("sinc_", SP.sinc),
    igamma_=lambda self, other: self._inplace("igamma_", SP.igamma, other),
    igammac_=lambda self, other: self._inplace("igammac_", SP.igammac, other),
)

# ------------------------------------------------------------------ extras (session 9)
from darklib.ops import extras as X  # noqa: E402


def _cumulative_(name: str, fn: Any) -> Any:
    """``cumsum_`` / ``cumprod_``: computed in the tensor's own dtype (as torch; a
    ``dtype`` other than it is a bad in-place call)."""

    def method(self: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
        if dtype is not None and _dt.to_numpy_dtype(dtype) != self.array.dtype:
            raise RuntimeError(
                f"{name}: Bad in-place call: input tensor dtype {self.dtype} and output "
                f"tensor dtype {dtype} should match"
            )
        if self.array.dtype.kind == "b":
            raise NotImplementedError(f"{name}: not implemented for bool tensors")
        return self._inplace(name, lambda t: fn(t, dim, dtype=self.dtype))

    method.__name__ = name
    return method


_bind(
    gcd=X.gcd,
    lcm=X.lcm,
    gcd_=lambda self, other: self._inplace("gcd_", X.gcd, other),
    lcm_=lambda self, other: self._inplace("lcm_", X.lcm, other),
    nextafter=X.nextafter,
    nextafter_=lambda self, other: self._inplace("nextafter_", X.nextafter, other),
    isposinf=X.isposinf,
    isneginf=X.isneginf,
    deg2rad=X.deg2rad,
    rad2deg=X.rad2deg,
    deg2rad_=lambda self: self._inplace("deg2rad_", X.deg2rad),
    rad2deg_=lambda self: self._inplace("rad2deg_", X.rad2deg),
    frexp=X.frexp,
    positive=X.positive,
    negative_=lambda self: self._inplace("negative_", E.neg),
    nanquantile=X.nanquantile,
    vdot=L.vdot,
    cumsum_=_cumulative_("cumsum_", R.cumsum),
    cumprod_=_cumulative_("cumprod_", R.cumprod),
    split_with_sizes=S.split_with_sizes,
    index_reduce=I.index_reduce,
    index_reduce_=lambda self, dim, index, source, reduce, *, include_self=True: self._inplace(
        "index_reduce_", I.index_reduce, dim, index, source, reduce, include_self=include_self
    ),
)


# ------------------------------------------------------------------ torch's remaining queries
def _apply_(self: Tensor, fn: Any) -> Tensor:
    """``fn`` (a Python function of one number) applied to every element, in place; CPU
    tensors that do not require grad only, as torch."""
    _python_map_allowed(self, "apply_")
    arr = self.array
    flat = [fn(v) for v in arr.reshape(-1).tolist()]
    _write_values(self, np.asarray(flat).reshape(arr.shape))
    return self


def _map_(self: Tensor, other: Tensor, fn: Any) -> Tensor:
    """``self[i] = fn(self[i], other[i])`` for every element (``other`` broadcast to this
    tensor's shape), in place; CPU tensors that do not require grad only, as torch."""
    _python_map_allowed(self, "map_")
    if not isinstance(other, Tensor):
        raise TypeError(f"map_(): argument 'tensor' must be Tensor, not {type(other).__name__}")
    arr = self.array
    others = np.broadcast_to(other.cpu().numpy(), arr.shape).reshape(-1).tolist()
    flat = [fn(a, b) for a, b in zip(arr.reshape(-1).tolist(), others)]
    _write_values(self, np.asarray(flat).reshape(arr.shape))
    return self


def _python_map_allowed(t: Tensor, name: str) -> None:
    if t.requires_grad:
        raise RuntimeError(
            f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() "
            "instead."
        )
    if t.is_cuda:
        raise TypeError(f"{name} is only implemented on CPU tensors")


def _write_values(t: Tensor, values: np.ndarray) -> None:
    """Write ``values`` into ``t``'s memory (in its dtype, as an in-place op casts)."""
    with _no_grad():
        t.copy_(Tensor._wrap(values.astype(t.array.dtype, copy=False)))


from darklib.grad_mode import no_grad as _no_grad  # noqa: E402


def _functional(name: str) -> Any:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        from darklib.nn import functional as F

        return getattr(F, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


_bind(
    angle=X.angle,
    hardshrink=_functional("hardshrink"),
    prelu=_functional("prelu"),
    isreal=lambda self: C.ones(self.shape, dtype=_dt.bool, device=self.device),
    # darklib has no complex dtypes: conjugation is the identity, never pending
    conj=lambda self: self,
    conj_physical=lambda self: self,
    resolve_conj=lambda self: self,
    resolve_neg=lambda self: self,
    is_conj=lambda self: False,
    is_neg=lambda self: False,
    apply_=_apply_,
    map_=_map_,
)
for _name in (
    "is_meta is_sparse is_sparse_csr is_quantized is_mkldnn is_nested is_mps is_xpu".split()
):  # (darklib's tensors are dense, strided, on the CPU or CUDA: torch's other kinds never)
    setattr(Tensor, _name, property(lambda self: False))


# ------------------------------------------------------------------ legacy and storage forms


class layout(NamedConstant):
    """A tensor's memory layout (``torch.layout``): darklib's tensors are all strided."""

    __slots__ = ()


strided = layout("strided")


def _legacy_new(self: Tensor, *args: Any) -> Tensor:
    """``x.new(...)``, torch's legacy constructor in ``x``'s dtype and device: no argument
    gives an empty tensor, sizes an uninitialised one, a sequence a tensor of that data."""
    if not args:
        return C.empty(0, dtype=self.dtype, device=self.device)
    if all(isinstance(a, int) and not isinstance(a, bool) for a in args) or (
        len(args) == 1 and isinstance(args[0], tuple) and all(isinstance(a, int) for a in args[0])
    ):
        return C.empty(*args, dtype=self.dtype, device=self.device)
    if len(args) == 1:
        if isinstance(args[0], Tensor) and args[0].dtype != self.dtype:
            raise TypeError(f"new(): expected a tensor of dtype {self.dtype}, got {args[0].dtype}")
        return C.tensor(args[0], dtype=self.dtype, device=self.device)
    raise TypeError(f"new(): expected sizes or one sequence of data, got {args}")


def nonzero_static(input: Tensor, *, size: int, fill_value: int = -1) -> Tensor:
    """The first ``size`` rows of ``nonzero(input)``, padded with ``fill_value`` rows to
    exactly ``size`` (a fixed output shape, whatever the data)."""
    if not isinstance(size, int) or size < 0:
        raise InvalidValue(f"nonzero_static: size must be a non-negative int, got {size!r}")
    hits = I.nonzero(input)[:size]
    if hits.shape[0] == size:
        return hits
    pad = C.full((size - hits.shape[0], hits.shape[1]), fill_value, dtype=_dt.int64)
    return S.cat([hits, pad.to(hits.device)])


_bind(
    layout=property(lambda self: strided),
    new=_legacy_new,
    nonzero_static=lambda self, *, size, fill_value=-1: nonzero_static(
        self, size=size, fill_value=fill_value
    ),
    unsafe_chunk=S.chunk,
    unsafe_split=S.split,
    unsafe_split_with_sizes=S.split_with_sizes,
)


class UntypedStorage:
    """The memory a tensor and its views share, as torch's ``untyped_storage()``: its
    address (``data_ptr``, the same for every view of one memory), size in bytes
    (``nbytes``, ``size()``, ``len``) and device. A view of the memory, not a copy."""

    def __init__(self, root: Any, device: Any) -> None:
        self._root, self.device = root, device

    def data_ptr(self) -> int:
        return 0 if self._root.size == 0 else S._address(self._root)

    def nbytes(self) -> int:
        return int(self._root.nbytes)

    size = nbytes

    def __len__(self) -> int:
        return self.nbytes()

    def element_size(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"<UntypedStorage of {self.nbytes()} bytes on {self.device}>"


class TypedStorage(UntypedStorage):
    """torch's deprecated ``storage()``: the same memory counted in elements of ``dtype``."""

    def __init__(self, root: Any, device: Any, dtype: Any) -> None:
        super().__init__(root, device)
        self.dtype = dtype

    def size(self) -> int:  # type: ignore[override]
        return self.nbytes() // self._root.itemsize

    def __len__(self) -> int:
        return self.size()

    def element_size(self) -> int:
        return int(self._root.itemsize)


def _storage(self: Tensor) -> TypedStorage:
    import warnings

    warnings.warn(
        "TypedStorage is deprecated (as in torch); use tensor.untyped_storage()",
        UserWarning,
        stacklevel=2,
    )
    return TypedStorage(S.storage_of(self.array), self.device, self.dtype)


_bind(
    untyped_storage=lambda self: UntypedStorage(S.storage_of(self.array), self.device),
    storage=_storage,
)
