"""Weight initialisation, in place, with PyTorch's names, arguments and distributions.

Every function fills ``tensor``'s array directly (outside autograd, as under ``no_grad``)
and returns the tensor. Random ones draw from ``darklib.random.default_generator`` unless a
``generator`` is given.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib import dtypes as _dt
from darklib import random as _random
from darklib.backend import get_xp
from darklib.errors import InvalidType, InvalidValue
from darklib.ops.elementwise import normal_quantile
from darklib.tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR_LIKE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float | int:
    """The recommended gain for a nonlinearity (PyTorch's table).

    Args:
        nonlinearity: ``'linear'``, ``'conv2d'``, ``'sigmoid'``, ``'tanh'``, ``'relu'``,
            ``'leaky_relu'`` or ``'selu'`` (and the other conv variants).
        param: negative slope for ``'leaky_relu'`` (default 0.01).

    The linear-like gains are the int ``1``, as torch's; the others are floats.
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise InvalidValue(f"negative_slope {param} not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InvalidValue(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight laid out as (out, in, *kernel)."""
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise InvalidValue(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
            f"(got shape {shape})"
        )
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise InvalidValue(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _random_target(tensor: Any, op: str) -> None:
    """Random fills need a floating-point tensor (torch: not implemented for integers)."""
    if not isinstance(tensor, Tensor):
        raise InvalidType(f"{op}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.array.dtype.kind != "f":
        raise NotImplementedError(f"{op}: not implemented for dtype {tensor.dtype}")


def _fill(tensor: Tensor, kind: str, generator: Any, **kw: Any) -> Tensor:
    _random_target(tensor, f"init.{kind}_")
    gen = _random.resolve(generator, f"init.{kind}_")
    arr = tensor.array
    if arr.size:  # (a huge std gives inf samples without NumPy's warning, as torch)
        arr[...] = _dt.silent(gen.sample, kind, get_xp(arr), arr.shape, arr.dtype, **kw)
    tensor._version += 1
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples of U(a, b)."""
    if a > b:
        raise RuntimeError(f"uniform_: expects a [from, to) range, but found from={a} > to={b}")
    if isinstance(tensor, Tensor) and tensor.array.dtype.kind == "f":
        _dt.check_uniform_bounds("init.uniform_", float(a), float(b), tensor.array.dtype)
    return _fill(tensor, "uniform", generator, low=float(a), high=float(b))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples of N(mean, std**2)."""
    if not std >= 0:
        raise RuntimeError(f"normal_: expects std >= 0.0, but found std {std}")
    return _fill(tensor, "normal", generator, mean=float(mean), std=float(std))


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Any = None,
) -> Tensor:
    """Fill with N(mean, std**2) samples restricted to [a, b]: uniform draws between the
    normal CDF at a and at b, mapped back through the inverse CDF (as torch), on the side
    of the mean where the CDF keeps its precision, so windows far in a tail are sampled
    without bias."""
    _random_target(tensor, "trunc_normal_")
    if not a < b:
        raise InvalidValue(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    if not std > 0:
        raise InvalidValue(f"trunc_normal_: expected std > 0, got {std}")
    gen = _random.resolve(generator, "trunc_normal_")
    arr = tensor.array
    xp = get_xp(arr)
    za, zb = (a - mean) / std, (b - mean) / std
    flip = za > -zb  # the window lies mostly above the mean: sample its mirror image
    if flip:
        za, zb = -zb, -za
    lo, hi = (0.5 * math.erfc(-z / math.sqrt(2)) for z in (za, zb))
    u = gen.sample("uniform", xp, (arr.size,), np.dtype(np.float64), low=lo, high=hi)
    z = normal_quantile(xp, u)
    out = xp.clip(mean + std * (-z if flip else z), a, b)
    arr[...] = _dt.silent(out.reshape(arr.shape).astype, arr.dtype)
    tensor._version += 1
    return tensor


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val`` (refused, as torch, where it does not fit the dtype)."""
    tensor.array[...] = _dt.fill_value(val, tensor.array.dtype, "init.constant_")
    tensor._version += 1
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.ndim != 2:
        raise InvalidValue(f"eye_: only tensors with 2 dimensions are supported, got {tensor.ndim}")
    xp = get_xp(tensor.array)
    tensor.array[...] = xp.eye(*tensor.shape, dtype=tensor.array.dtype)
    tensor._version += 1
    return tensor


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3/4/5-D conv weight with the Dirac delta (identity convolution)."""
    if tensor.ndim not in (3, 4, 5):
        raise InvalidValue("dirac_: only tensors with 3, 4, or 5 dimensions are supported")
    out_ch = tensor.shape[0]
    if out_ch % groups != 0:
        raise InvalidValue("dirac_: dim 0 must be divisible by groups")
    per = out_ch // groups
    n = min(per, tensor.shape[1])
    arr = tensor.array
    arr[...] = 0
    centre = tuple(s // 2 for s in arr.shape[2:])
    for g in range(groups):
        for d in range(n):
            arr[(g * per + d, d, *centre)] = 1
    tensor._version += 1
    return tensor


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan)``.

    Args:
        a: negative slope of the rectifier after this layer (for ``'leaky_relu'``).
        mode: ``'fan_in'`` (preserves forward variance) or ``'fan_out'`` (backward).
        nonlinearity: name passed to :func:`calculate_gain`.
    """
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan)``."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix (trailing dimensions are flattened)."""
    if tensor.ndim < 2:
        raise InvalidValue("orthogonal_: only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    gen = _random.resolve(generator, "orthogonal_")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    xp = get_xp(tensor.array)
    flat = gen.sample("randn", xp, (rows, cols), np.dtype(np.float64))
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))  # make the decomposition unique (Haar-distributed)
    if rows < cols:
        q = q.T
    tensor.array[...] = _dt.silent((gain * q).reshape(tensor.shape).astype, tensor.array.dtype)
    tensor._version += 1
    return tensor


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator: Any = None) -> Tensor:
    """Fill a 2-D tensor as a sparse matrix (Martens, 2010): N(0, std**2) samples with
    ``ceil(sparsity * rows)`` entries of each column set to zero, rows drawn at random.

    Args:
        sparsity: the fraction of each column's entries set to zero.
        std: standard deviation of the non-zero entries.
        generator: draws both the values and the zeroed rows (torch draws the rows from its
            global generator).
    """
    if tensor.ndim != 2:
        raise InvalidValue("Only tensors with 2 dimensions are supported")
    _random_target(tensor, "sparse_")
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    normal_(tensor, 0.0, std, generator)
    if rows and cols:
        gen = _random.resolve(generator, "sparse_")
        xp = get_xp(tensor.array)
        # one random permutation of the rows per column: the order of uniform keys
        keys = gen.sample("rand", xp, (rows, cols), np.dtype(np.float64))
        zeroed = xp.argsort(keys, axis=0)[:num_zeros]
        tensor.array[zeroed, xp.arange(cols)] = 0
    tensor._version += 1
    return tensor


# ------------------------------------------------------------------ deprecated names


def _deprecated(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """torch's old name of an init function (``uniform`` for ``uniform_``): the same
    function, with a FutureWarning naming its replacement."""
    new = fn.__name__
    old = new[:-1]

    @functools.wraps(fn)
    def alias(*args: Any, **kwargs: Any) -> Tensor:
        warnings.warn(
            f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new}`.",
            FutureWarning,
            stacklevel=2,
        )
        return fn(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated: use :func:`{new}`."
    return alias


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
