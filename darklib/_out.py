"""``out=``: torch's top-level functions write their result into a given tensor
(``dl.matmul(a, b, out=c)``), and darklib's top-level forms of them take it too.

The result is computed as usual, then copied into ``out`` (which is resized if its shape
differs, with torch's warning when it was not empty) and ``out`` is returned; several
outputs (``max(x, 0, out=(values, indices))``) go into a tuple of tensors. As in torch,
this is outside autograd: with grad mode on, inputs that require grad are refused; and the
result must cast to ``out``'s dtype without changing kind (no float into an int tensor).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from darklib.backend import on_device_of
from darklib.dtypes import can_cast
from darklib.grad_mode import is_grad_enabled, no_grad
from darklib.tensor import Tensor

# the darklib top-level functions whose torch counterparts take ``out=``
NAMES = """
abs absolute acos acosh add addbmm addcdiv addcmul addmm addmv addr all amax amin aminmax
angle any arange arccos arccosh arcsin arcsinh arctan arctan2 arctanh argmax argmin asin asinh
atan atan2 atanh baddbmm bernoulli bitwise_and bitwise_left_shift bitwise_not bitwise_or
bitwise_right_shift bitwise_xor bmm bucketize cat ceil cholesky cholesky_inverse
cholesky_solve clamp clamp_max clamp_min clip column_stack concat concatenate copysign cos cosh
cross cummax cummin cumprod cumsum deg2rad diag diag_embed diff digamma div divide dot dstack
empty eq erf erfc erfinv exp exp2 expm1 eye fix float_power floor floor_divide fmax fmin fmod
frac frexp full full_like gather gcd ge ger greater greater_equal gt heaviside histc hstack
hypot i0 igamma igammac index_select inner inverse isneginf isposinf kron kthvalue lcm ldexp
le lerp less less_equal lgamma linspace log log10 log1p log2 logaddexp logaddexp2
logcumsumexp logical_and logical_not logical_or logical_xor logspace logsumexp lt lu_solve
lu_unpack masked_select matmul max maximum mean median min minimum mm mode msort mul
multinomial multiply mv nan_to_num nanmean nanmedian nanquantile nansum narrow_copy ne neg
negative nextafter norm normal not_equal ones outer polygamma positive pow prod quantile
rad2deg rand randint randn randperm reciprocal remainder renorm round row_stack rsqrt
searchsorted sgn sigmoid sign signbit sin sinc sinh sort sqrt square std subtract sub sum
take_along_dim tan tanh tensordot topk tril triu trunc var vdot vstack where xlogy zeros
""".split()


def _write(op: str, result: Any, out: Any) -> Any:
    if not isinstance(out, Tensor):
        raise TypeError(f"{op}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if not isinstance(result, Tensor):
        raise TypeError(f"{op}(): out= takes a tensor result, but {op} gave a {type(result)}")
    if is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(
            f"{op}(): functions with out=... arguments don't support automatic "
            "differentiation, but one of the arguments requires grad."
        )
    if not can_cast(result.dtype, out.dtype):
        raise RuntimeError(
            f"{op}(): result type {result.dtype} can't be cast to the desired output type "
            f"{out.dtype}"
        )
    if out.device != result.device:
        raise RuntimeError(f"{op}(): expected the out tensor on {result.device}, got {out.device}")
    resize = tuple(out.shape) != tuple(result.shape)
    if resize and out.numel():
        warnings.warn(
            f"{op}(): an output with one or more elements was resized since it had "
            f"shape {list(out.shape)}, which does not match the required output shape "
            f"{list(result.shape)} (as torch, deprecated: pass an empty tensor or one "
            "of the right shape)",
            UserWarning,
            stacklevel=3,
        )
    # resize_ allocates, and the copy launches, on the current GPU: on out's GPU here
    with on_device_of(out.array):
        if resize:
            out.resize_(tuple(result.shape))
        with no_grad():
            out.copy_(result)
    return out


def with_out(fn: Callable, op: str) -> Callable:
    """``fn`` taking torch's ``out=`` keyword."""

    @functools.wraps(fn)
    def call(*args: Any, out: Any = None, **kwargs: Any) -> Any:
        if out is None:
            return fn(*args, **kwargs)
        result = fn(*args, **kwargs)
        if isinstance(result, tuple):
            if not isinstance(out, tuple | list) or len(out) != len(result):
                raise TypeError(
                    f"{op}(): out must be a tuple of {len(result)} tensors, got {out!r}"
                )
            written = [_write(op, r, o) for r, o in zip(result, out, strict=True)]
            return type(result)(*written) if hasattr(result, "_fields") else tuple(written)
        return _write(op, result, out)

    return call


def add_out(namespace: dict) -> None:
    """Give the functions of :data:`NAMES` in ``namespace`` the ``out=`` keyword."""
    for name in NAMES:
        if name in namespace:
            namespace[name] = with_out(namespace[name], name)
