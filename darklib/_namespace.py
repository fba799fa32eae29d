"""The rest of torch's top-level namespace that scripts reach for: the ``torch.conv2d``,
``torch.dropout``, ``torch.layer_norm`` forms of the functional ops (with torch's
top-level signatures, which for some differ from ``nn.functional``'s: ``dropout(input, p,
train)``, ``embedding(weight, indices)``), the in-place functions (``torch.relu_(x)`` is
``x.relu_()``), and small queries and switches (``is_signed``, ``typename``,
``use_deterministic_algorithms``, ``set_float32_matmul_precision``).
"""

from __future__ import annotations

from typing import Any

from darklib.errors import InvalidType, InvalidValue
from darklib.nn import functional as F
from darklib.ops.decomp import geqrf
from darklib.tensor import Tensor

# ------------------------------------------------------------------ constants
# torch's math constants (Python floats, as ``math``'s), so ``torch.nan`` in a script works
e = 2.718281828459045
pi = 3.141592653589793
inf = float("inf")
nan = float("nan")
newaxis = None  # ``x[:, dl.newaxis]`` as NumPy's

# ------------------------------------------------------------------ functional forms
# (the same signature as nn.functional's)
conv1d = F.conv1d
conv2d = F.conv2d
conv3d = F.conv3d
conv_transpose1d = F.conv_transpose1d
conv_transpose2d = F.conv_transpose2d
conv_transpose3d = F.conv_transpose3d
avg_pool1d = F.avg_pool1d
adaptive_avg_pool1d = F.adaptive_avg_pool1d
pixel_shuffle = F.pixel_shuffle
pixel_unshuffle = F.pixel_unshuffle
channel_shuffle = F.channel_shuffle
native_channel_shuffle = F.channel_shuffle
prelu = F.prelu
hardshrink = F.hardshrink
cosine_similarity = F.cosine_similarity
pairwise_distance = F.pairwise_distance
bilinear = F.bilinear
rms_norm = F.rms_norm
selu = F.selu
celu = F.celu
rrelu = F.rrelu


def _stride(stride: Any) -> Any:
    """torch's top-level pools take ``stride=[]`` (empty) for the kernel size."""
    return None if isinstance(stride, list | tuple) and len(stride) == 0 else stride


def _max_pool(pool: Any) -> Any:
    """torch's top-level form of ``pool``: no ``return_indices`` (the ``_with_indices``
    functions give them), and ``stride=[]`` for the kernel size."""

    def top_level(
        input: Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
    ) -> Tensor:
        return pool(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)

    top_level.__name__ = top_level.__qualname__ = pool.__name__
    top_level.__doc__ = f"``torch.{pool.__name__}``: see ``nn.functional.{pool.__name__}``."
    return top_level


max_pool1d = _max_pool(F.max_pool1d)
max_pool2d = _max_pool(F.max_pool2d)
max_pool3d = _max_pool(F.max_pool3d)


def max_pool1d_with_indices(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(values, indices)`` of a 1-D max pooling."""
    return F.max_pool1d(
        input, kernel_size, _stride(stride), padding, dilation, ceil_mode, return_indices=True
    )


def adaptive_max_pool1d(input: Tensor, output_size: Any) -> tuple[Tensor, Tensor]:
    """``torch.adaptive_max_pool1d``: ``(values, indices)``, always (as torch's)."""
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.dropout(input, p, train)``: ``train`` is required, as in torch."""
    return F.dropout(input, p, train)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    return F.alpha_dropout(input, p, train)


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    return F.feature_alpha_dropout(input, p, train)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """Dropout of whole channels (dims from 2 on share one draw), as ``dropout2d``."""
    if input.ndim < 2:
        raise InvalidValue(
            f"feature_dropout: expected an input with at least 2 dims (N, C, ...), got shape "
            f"{tuple(input.shape)}"
        )
    if not 0 <= p <= 1:
        raise InvalidValue(f"feature_dropout: probability has to be between 0 and 1, got {p}")
    if not train or p == 0:
        return input
    if p == 1:
        return input * 0
    from darklib.creation import bernoulli, full

    mask_shape = (*input.shape[:2], *(1,) * (input.ndim - 2))
    keep = bernoulli(full(mask_shape, 1 - p, dtype=input.dtype, device=input.device))
    return input * keep / (1 - p)


def dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return F.dropout(input, p, train, inplace=True)


def alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return F.alpha_dropout(input, p, train, inplace=True)


def feature_alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return F.feature_alpha_dropout(input, p, train, inplace=True)


def threshold(input: Tensor, threshold: float, value: float) -> Tensor:
    return F.threshold(input, threshold, value)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return F.threshold(input, threshold, value, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return F.selu(input, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return F.celu(input, alpha, inplace=True)


def rrelu_(
    input: Tensor, lower: float = 1 / 8, upper: float = 1 / 3, training: bool = False
) -> Tensor:
    return F.rrelu(input, lower, upper, training, inplace=True)


def layer_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    cudnn_enable: bool = True,
) -> Tensor:
    """``torch.layer_norm`` (``cudnn_enable`` is torch's backend switch: no effect here)."""
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    cudnn_enabled: bool = True,
) -> Tensor:
    return F.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    cudnn_enabled: bool,
) -> Tensor:
    """``torch.batch_norm``: the parameters come before the running statistics, and every
    argument is required (as torch's)."""
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    use_input_stats: bool,
    momentum: float,
    eps: float,
    cudnn_enabled: bool,
) -> Tensor:
    return F.instance_norm(
        input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps
    )


def embedding(
    weight: Tensor,
    indices: Tensor,
    padding_idx: int = -1,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """``torch.embedding(weight, indices)``: the table first, and ``padding_idx=-1`` for
    none (``nn.functional.embedding`` takes the indices first and None)."""
    return F.embedding(
        indices,
        weight,
        None if padding_idx == -1 else padding_idx,
        scale_grad_by_freq=scale_grad_by_freq,
        sparse=sparse,
    )


def constant_pad_nd(input: Tensor, pad: Any, value: float = 0.0) -> Tensor:
    return F.pad(input, pad, "constant", value)


# ------------------------------------------------------------------ in-place functions

_INPLACE = (
    "abs_ acos_ acosh_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ "
    "atan_ atanh_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ cos_ cosh_ deg2rad_ detach_ "
    "erf_ erfc_ exp2_ exp_ expm1_ fill_ fix_ floor_ frac_ gcd_ i0_ index_put_ lcm_ "
    "ldexp_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ negative_ rad2deg_ "
    "reciprocal_ relu_ resize_as_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ square_ "
    "tan_ tanh_ trunc_ xlogy_ zero_ addmv_"
).split()


def _inplace_function(name: str) -> Any:
    def fn(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if not isinstance(input, Tensor):
            raise InvalidType(
                f"{name}(): argument 'input' (position 1) must be Tensor, not "
                f"{type(input).__name__}"
            )
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``torch.{name}(input, ...)``: ``input.{name}(...)``."
    return fn


for _name in _INPLACE:
    globals()[_name] = _inplace_function(_name)


def fill(input: Tensor, value: Any) -> Tensor:
    """A tensor like ``input`` filled with ``value`` (out of place, differentiable in a
    tensor ``value``, as torch's)."""
    return input.clone().fill_(value)


# ------------------------------------------------------------------ queries and switches


def is_signed(input: Tensor) -> bool:
    """Whether the dtype holds negative numbers (False for bool and uint8)."""
    if not isinstance(input, Tensor):
        raise InvalidType(f"is_signed(): argument 'input' must be Tensor, not {type(input)}")
    return input.array.dtype.kind in "fi"


def is_complex(input: Tensor) -> bool:
    """False: darklib has no complex dtypes."""
    if not isinstance(input, Tensor):
        raise InvalidType(f"is_complex(): argument 'input' must be Tensor, not {type(input)}")
    return False


def typename(obj: Any) -> str:
    """``'darklib.FloatTensor'`` for a tensor (its ``type()``), a class's or function's own
    qualified name (``'darklib.nn.parameter.Parameter'``, ``'len'``), else the object's
    qualified type name (``'int'``, ``'darklib.nn.modules...Linear'``), as ``torch.typename``."""
    if isinstance(obj, Tensor):
        return obj.type()
    # torch names what has a __qualname__ (classes, functions) itself, not its type
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if isinstance(qualname, str):
        module = getattr(obj, "__module__", "") or ""
    else:
        module, qualname = type(obj).__module__ or "", type(obj).__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


_settings = {"deterministic": False, "warn_only": False, "matmul_precision": "highest"}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record the switch, as torch (it selects no other algorithms here). darklib's ops
    on the CPU are deterministic whatever it says: sums are split in fixed chunks and
    reduced in order. On the GPU, scatter-add style gradients (indexing, index_add,
    embedding) add with atomics, whose order, and so the last bits of float sums, can vary
    between runs."""
    if not isinstance(mode, bool):
        raise InvalidType(
            f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}"
        )
    _settings["deterministic"], _settings["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _settings["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _settings["warn_only"]


def set_float32_matmul_precision(precision: str) -> None:
    """torch's switch between full float32 products (``'highest'``) and faster,
    less precise ones (``'high'``, ``'medium'``: TF32 or bfloat16 on recent GPUs). Recorded
    and reported by :func:`get_float32_matmul_precision`; darklib's products always run in
    full float32."""
    if precision not in ("highest", "high", "medium"):
        raise InvalidValue(
            f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium', got "
            f"{precision!r}"
        )
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def set_num_interop_threads(n: int) -> None:
    """torch's pool for running independent ops concurrently; darklib runs ops one after
    another (each splitting its own work over ``dl.set_num_threads``'s pool), so the number
    is recorded and reported by :func:`get_num_interop_threads` only."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidValue(f"set_num_interop_threads: expected a positive int, got {n!r}")
    _settings["interop_threads"] = n


def get_num_interop_threads() -> int:
    from darklib.kernels.parallel import get_num_threads

    return _settings.get("interop_threads") or get_num_threads()


def set_warn_always(b: bool) -> None:
    """torch's switch for warnings it gives once per process (recorded: darklib's warn
    through Python's warnings, whose filters decide)."""
    _settings["warn_always"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _settings.get("warn_always", False)


# ------------------------------------------------------------------ aliases and old forms


def detach(input: Tensor) -> Tensor:
    return input.detach()


def conj(input: Tensor) -> Tensor:
    """The complex conjugate: darklib's tensors are real, so ``input`` itself, as torch's."""
    return input.conj()


def isreal(input: Tensor) -> Tensor:
    return input.isreal()


def chain_matmul(*matrices: Tensor) -> Tensor:
    """The product of the matrices, left to right (torch's deprecated form of
    ``linalg.multi_dot``, which it warns about)."""
    import warnings

    from darklib.linalg import multi_dot

    warnings.warn(
        "torch.chain_matmul is deprecated (as in torch); use linalg.multi_dot, which takes "
        "a list of matrices",
        UserWarning,
        stacklevel=2,
    )
    return multi_dot(list(matrices))


def range(  # (torch's name; nothing in this module uses the builtin after it)
    start: float,
    end: float,
    step: float = 1,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """torch's deprecated ``range``: like :func:`arange` but including ``end``, in the
    default float dtype unless given (it warns, as torch does)."""
    import math
    import warnings

    import numpy as np

    from darklib.creation import tensor
    from darklib.dtypes import get_default_dtype

    warnings.warn(
        "torch.range is deprecated (as in torch) in favour of arange, which excludes end",
        UserWarning,
        stacklevel=2,
    )
    count = math.floor((end - start) / step) + 1
    values = start + step * np.arange(max(count, 0), dtype=np.float64)
    return tensor(
        values,
        dtype=get_default_dtype() if dtype is None else dtype,
        device=device,
        requires_grad=requires_grad,
    )


def compile(  # (torch's name)
    model: Any = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: Any = None,
    mode: str | None = None,
    options: dict | None = None,
    disable: bool = False,
    **_: Any,
) -> Any:
    """``torch.compile``'s place: darklib has no graph compiler, so the model or function
    comes back as it is and runs eagerly (what torch's ``backend="eager"`` does; results
    are the same, the speed is darklib's). Scripts that compile their model run unchanged;
    as a decorator, with or without arguments, too."""
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise InvalidType(f"compile: expected a module or a function, got {type(model).__name__}")
    return model


def cond(pred: Any, true_fn: Any, false_fn: Any, operands: tuple = ()) -> Any:
    """``true_fn(*operands)`` if ``pred`` (a bool or a one-element tensor) holds, else
    ``false_fn(*operands)``: torch's control-flow operator, run eagerly."""
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise InvalidValue(f"cond: pred must have one element, got shape {tuple(pred.shape)}")
        pred = bool(pred.item())
    return (true_fn if pred else false_fn)(*operands)


__all__ = [
    *_INPLACE,
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
    "alpha_dropout",
    "alpha_dropout_",
    "are_deterministic_algorithms_enabled",
    "avg_pool1d",
    "batch_norm",
    "bilinear",
    "celu",
    "celu_",
    "channel_shuffle",
    "constant_pad_nd",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "cosine_similarity",
    "dropout",
    "dropout_",
    "embedding",
    "feature_alpha_dropout",
    "feature_alpha_dropout_",
    "feature_dropout",
    "fill",
    "get_float32_matmul_precision",
    "group_norm",
    "hardshrink",
    "instance_norm",
    "is_complex",
    "is_deterministic_algorithms_warn_only_enabled",
    "is_signed",
    "layer_norm",
    "max_pool1d",
    "max_pool1d_with_indices",
    "max_pool2d",
    "max_pool3d",
    "native_channel_shuffle",
    "pairwise_distance",
    "pixel_shuffle",
    "pixel_unshuffle",
    "prelu",
    "rms_norm",
    "rrelu",
    "rrelu_",
    "selu",
    "selu_",
    "set_float32_matmul_precision",
    "threshold",
    "threshold_",
    "typename",
    "use_deterministic_algorithms",
    "chain_matmul",
    "cond",
    "conj",
    "detach",
    "isreal",
    "range",
    "compile",
    "get_num_interop_threads",
    "is_warn_always_enabled",
    "set_num_interop_threads",
    "set_warn_always",
    "geqrf",
    "e",
    "pi",
    "inf",
    "nan",
    "newaxis",
]
