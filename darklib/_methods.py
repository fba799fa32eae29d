"""Binds the functional ops to Tensor methods and operators (``x.sum()``, ``a @ b``, ...).

Kept apart from tensor.py so that the Tensor class stays small and the ops modules can
import it without a cycle. One section per ops module.
"""

from __future__ import annotations

from typing import Any

from darklib.ops import elementwise as E
from darklib.ops import linalg as L
from darklib.tensor import Tensor


def _reflect(fn):
    return lambda self, other: fn(other, self)


def _bind(**methods: Any) -> None:
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


# ------------------------------------------------------------------ elementwise
_bind(
    __add__=E.add,
    __radd__=_reflect(E.add),
    __sub__=E.sub,
    __rsub__=_reflect(E.sub),
    __mul__=E.mul,
    __rmul__=_reflect(E.mul),
    __truediv__=E.div,
    __rtruediv__=_reflect(E.div),
    __pow__=E.pow,
    __rpow__=_reflect(E.pow),
    __neg__=E.neg,
    __abs__=E.abs,
    __floordiv__=lambda s, o: E.div(s, o, rounding_mode="floor"),
    __rfloordiv__=lambda s, o: E.div(o, s, rounding_mode="floor"),
    __eq__=E.eq,
    __ne__=E.ne,
    __lt__=E.lt,
    __le__=E.le,
    __gt__=E.gt,
    __ge__=E.ge,
    __invert__=E.logical_not,
    __and__=E.logical_and,
    __or__=E.logical_or,
    __xor__=E.logical_xor,
    add=E.add,
    sub=E.sub,
    subtract=E.sub,
    mul=E.mul,
    multiply=E.mul,
    div=E.div,
    divide=E.div,
    pow=E.pow,
    neg=E.neg,
    negative=E.neg,
    abs=E.abs,
    exp=E.exp,
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
    reciprocal=lambda self: E.div(1.0, self),
    square=lambda self: E.mul(self, self),
)

# in-place forms: the out-of-place op, rebased onto this tensor (see Tensor._inplace)
_bind(
    add_=lambda self, other, *, alpha=1: self._inplace("add_", E.add, other, alpha=alpha),
    sub_=lambda self, other, *, alpha=1: self._inplace("sub_", E.sub, other, alpha=alpha),
    mul_=lambda self, other: self._inplace("mul_", E.mul, other),
    div_=lambda self, other: self._inplace("div_", E.div, other),
    pow_=lambda self, e: self._inplace("pow_", E.pow, e),
    clamp_=lambda self, min=None, max=None: self._inplace("clamp_", E.clamp, min, max),
    relu_=lambda self: self._inplace("relu_", E.relu),
    neg_=lambda self: self._inplace("neg_", E.neg),
    sqrt_=lambda self: self._inplace("sqrt_", E.sqrt),
    exp_=lambda self: self._inplace("exp_", E.exp),
    __iadd__=lambda self, other: self._inplace("+=", E.add, other),
    __isub__=lambda self, other: self._inplace("-=", E.sub, other),
    __imul__=lambda self, other: self._inplace("*=", E.mul, other),
    __itruediv__=lambda self, other: self._inplace("/=", E.div, other),
)

# ------------------------------------------------------------------ linalg
_bind(
    __matmul__=L.matmul,
    __rmatmul__=_reflect(L.matmul),
    matmul=L.matmul,
    mm=L.mm,
    bmm=L.bmm,
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
    prod=R.prod,
    all=R.all,
    any=R.any,
    norm=R.norm,
    cumsum=R.cumsum,
    softmax=lambda self, dim=None, dtype=None: R.softmax(self, dim, dtype=dtype),
    log_softmax=lambda self, dim=None, dtype=None: R.log_softmax(self, dim, dtype=dtype),
)

# ------------------------------------------------------------------ shape
from darklib.ops import shape as S  # noqa: E402

_bind(
    reshape=S.reshape,
    view=S.view,
    view_as=S.view_as,
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
)

# ------------------------------------------------------------------ indexing
from darklib.ops import indexing as I  # noqa: E402

_bind(
    __getitem__=I.getitem,
    __setitem__=I.setitem,
    index_select=I.index_select,
    gather=I.gather,
    take_along_dim=I.take_along_dim,
    scatter=I.scatter,
    scatter_add=I.scatter_add,
    masked_fill=I.masked_fill,
    masked_select=I.masked_select,
    nonzero=I.nonzero,
    argwhere=I.argwhere,
    unique=I.unique,
    index_put=I.index_put,
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
)

# ------------------------------------------------------------------ creation like self
from darklib import creation as C  # noqa: E402


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
