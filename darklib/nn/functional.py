"""``darklib.nn.functional`` (``F``): the functional forms of layers, activations and losses.

Most names are the ops themselves, re-exported from ``darklib.ops``; the few defined here
only compose those ops (hardtanh, mish, prelu, normalize, ...).

Example::

    >>> import darklib.nn.functional as F
    >>> F.cross_entropy(logits, labels)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from darklib.amp.autocast_mode import autocasts
from darklib.creation import rand_like, zeros_like
from darklib.errors import InvalidType, InvalidValue
from darklib.nn.sparse import embedding, embedding_bag
from darklib.ops.attention import multi_head_attention_forward, scaled_dot_product_attention
from darklib.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from darklib.ops.dropout import (
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)
from darklib.ops.elementwise import (
    ELU,
    GLU,
    Hardshrink,
    Hardsigmoid,
    Hardtanh,
    PReLU,
    Softshrink,
    Threshold,
    check_broadcast,
    clamp,
    elu,
    float_only,
    gelu,
    hardswish,
    le,
    leaky_relu,
    logsigmoid,
    mish,
    mul,
    relu,
    sigmoid,
    silu,
    softplus,
    tanh,
    where,
)
from darklib.ops.elementwise import (
    abs as _abs,
)
from darklib.ops.fractional import fractional_max_pool2d, fractional_max_pool3d
from darklib.ops.linalg import bilinear, linear, pdist
from darklib.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    ctc_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    nll_loss,
    one_hot,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from darklib.ops.norm import batch_norm, group_norm, layer_norm, local_response_norm
from darklib.ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    fold,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool1d,
    max_pool1d_with_indices,
    max_pool2d,
    max_pool2d_with_indices,
    max_pool3d_with_indices,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
    unfold,
)
from darklib.ops.reduction import log_softmax, logsumexp, norm, softmax
from darklib.ops.sampling import affine_grid, grid_sample, interpolate
from darklib.ops.shape import (
    broadcast_tensors,
    flatten,
    norm_dim,
    pad,
    permute,
    reshape,
    unflatten,
)
from darklib.ops.volumetric import (
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    avg_pool3d,
    conv3d,
    conv_transpose3d,
    max_pool3d,
)
from darklib.tensor import Tensor

__all__ = [
    "celu_",
    "channel_shuffle",
    "elu_",
    "hardtanh_",
    "leaky_relu_",
    "lp_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d",
    "fractional_max_pool3d_with_indices",
    "max_pool3d_with_indices",
    "max_unpool3d",
    "native_channel_shuffle",
    "relu_",
    "rrelu_",
    "selu_",
    "threshold_",
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "avg_pool3d",
    "conv3d",
    "conv_transpose3d",
    "max_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices",
    "upsample_bilinear",
    "upsample_nearest",
    "affine_grid",
    "alpha_dropout",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "bilinear",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "celu",
    "clamp",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "ctc_loss",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "elu",
    "embedding",
    "embedding_bag",
    "feature_alpha_dropout",
    "flatten",
    "fold",
    "gaussian_nll_loss",
    "gelu",
    "glu",
    "grid_sample",
    "group_norm",
    "gumbel_softmax",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "hinge_embedding_loss",
    "huber_loss",
    "instance_norm",
    "interpolate",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "local_response_norm",
    "log_softmax",
    "logsigmoid",
    "logsumexp",
    "lp_pool1d",
    "lp_pool2d",
    "margin_ranking_loss",
    "max_pool1d",
    "max_pool2d",
    "max_unpool1d",
    "max_unpool2d",
    "mish",
    "mse_loss",
    "multi_head_attention_forward",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "pairwise_distance",
    "pdist",
    "pixel_shuffle",
    "pixel_unshuffle",
    "poisson_nll_loss",
    "prelu",
    "relu",
    "relu6",
    "rms_norm",
    "rrelu",
    "scaled_dot_product_attention",
    "selu",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "soft_margin_loss",
    "softmax",
    "softmin",
    "softplus",
    "softshrink",
    "softsign",
    "tanh",
    "tanhshrink",
    "threshold",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "unflatten",
    "unfold",
    "upsample",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _tensor(x: Any, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise InvalidType(f"{op}: expected a Tensor input, got {type(x).__name__}")
    return x


def _inplace_or_not(fn: Any, input: Tensor, inplace: bool, name: str, *args: Any) -> Tensor:
    """``fn(input, *args)``, or its result written into ``input`` when ``inplace``.

    The in-place form applies ``fn`` to the tensor's pre-update value inside
    ``Tensor._inplace``, so that under autograd the graph runs through that value (a result
    computed from ``input`` itself beforehand would make ``input`` its own ancestor).
    """
    if not inplace:
        return fn(input, *args)
    return input._inplace(name + "_", lambda t: fn(t, *args))


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``clamp(x, min_val, max_val)``; the gradient is 1 strictly inside the bounds (and at
    NaN), else 0."""
    x = _tensor(input, "hardtanh")
    if x.array.dtype == bool:
        raise RuntimeError("hardtanh: bool inputs are not supported (torch neither)")
    if max_val < min_val:
        raise InvalidValue(f"hardtanh: max_val ({max_val}) cannot be less than min_val ({min_val})")
    if x.array.dtype.kind in "iu":  # integers stay integers, as torch: a plain clamp
        return _inplace_or_not(clamp, x, inplace, "hardtanh", int(min_val), int(max_val))
    lo, hi = float(min_val), float(max_val)
    return _inplace_or_not(Hardtanh.apply, x, inplace, "hardtanh", lo, hi)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(0, x), 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``."""
    x = float_only(input, "hardsigmoid")
    return _inplace_or_not(Hardsigmoid.apply, x, inplace, "hardsigmoid")


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    x = _tensor(input, "softsign")
    return x / (_abs(x) + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    x = _tensor(input, "tanhshrink")
    return x - tanh(x)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    x = float_only(input, "selu")
    return _inplace_or_not(ELU.apply, x, inplace, "selu", _SELU_ALPHA, _SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (torch's elu kernel with input
    scale ``1 / alpha``: the branch is taken on the sign of x, also for a negative alpha)."""
    x = float_only(input, "celu")
    if alpha == 0:
        raise InvalidValue("celu: alpha must not be 0")
    alpha = float(alpha)
    return _inplace_or_not(ELU.apply, x, inplace, "celu", alpha, 1.0, 1.0 / alpha)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``value`` where ``x <= threshold``, else ``x`` (so NaN passes through, as torch)."""
    x = _tensor(input, "threshold")
    if x.array.dtype.kind == "b":
        raise NotImplementedError("threshold: not implemented for bool input")
    if x.array.dtype.kind in "iu":  # the value takes the integer dtype, as torch
        value = int(value)
    return _inplace_or_not(Threshold.apply, x, inplace, "threshold", threshold, value)


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Randomised leaky ReLU: in training, each entry ``x <= 0`` is multiplied by a slope
    drawn uniformly from ``[lower, upper]`` (its gradient too); in eval, by the fixed
    slope ``(lower + upper) / 2``."""
    x = float_only(input, "rrelu")
    if lower > upper:
        raise RuntimeError(
            f"rrelu: the lower bound ({lower}) must be less than or equal to the upper ({upper})"
        )
    if not training:
        return leaky_relu(x, (lower + upper) / 2, inplace)

    def rrelu_of(t: Tensor) -> Tensor:
        slope = rand_like(t.detach()) * (upper - lower) + lower
        return where(le(t, 0), mul(slope, t), t)

    return _inplace_or_not(rrelu_of, x, inplace, "rrelu")


@autocasts("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` where ``x > 0``, else ``weight * x``; ``weight`` has 1 or C (dim 1) entries."""
    x = _tensor(input, "prelu")
    w = _tensor(weight, "prelu")
    if w.array.dtype != x.array.dtype:
        raise RuntimeError(
            f"prelu: Type promoting not supported: input is {x.dtype} and weight {w.dtype} "
            "(convert one of them with .to())"
        )
    n = w.numel()
    if n == 1 and x.ndim == 0:  # a 0-d input stays 0-d (its one slope applies)
        weight = reshape(weight, ())
    elif n != 1:
        if x.ndim < 2 or x.shape[1] != n:
            raise RuntimeError(
                f"prelu: weight of {n} elements needs an input with {n} channels "
                f"(dim 1), got {tuple(x.shape)}"
            )
        weight = reshape(weight, (n,) + (1,) * (x.ndim - 2))
    return PReLU.apply(x, weight)


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``softmax(-x, dim)``."""
    return softmax(-_tensor(input, "softmin"), dim, dtype=dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: halves ``a, b`` of ``dim`` give ``a * sigmoid(b)``."""
    x = _tensor(input, "glu")
    if x.ndim == 0:
        raise RuntimeError("glu: does not support scalars (0-d tensors): nothing to halve")
    dim = norm_dim(dim, x.ndim, "glu")
    if x.shape[dim] % 2:
        raise RuntimeError(
            f"glu: halving dimension {dim} must have an even size, got {tuple(x.shape)}"
        )
    return GLU.apply(x, dim)


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None
) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``."""
    x = _tensor(input, "normalize")
    if out is not None:
        raise InvalidValue("normalize: out= is not supported")
    return x / clamp(norm(x, p, dim, keepdim=True), min=eps)


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each (sample, channel) over its positions, as ``torch.instance_norm``.

    With running statistics (both or neither), a call with ``use_input_stats`` also moves
    them in place by ``momentum`` toward the batch average of the per-instance means and
    unbiased variances; ``use_input_stats=False`` normalises with them instead (eval mode
    of ``InstanceNorm2d(track_running_stats=True)``)."""
    x = _tensor(input, "instance_norm")
    if (running_mean is None) != (running_var is None):
        raise InvalidValue(
            "instance_norm: running_mean and running_var must both be given or both be None"
        )
    if x.ndim < 3:
        raise InvalidValue(f"instance_norm: expected input (N, C, *spatial), got {tuple(x.shape)}")
    if not use_input_stats:
        if running_mean is None:
            raise InvalidValue(
                "instance_norm: use_input_stats=False normalises with running_mean and "
                "running_var, which were not given"
            )
        return batch_norm(x, running_mean, running_var, weight, bias, False, 0.0, eps)
    if math.prod(x.shape[2:]) <= 1:
        raise InvalidValue(
            f"instance_norm: expected more than 1 spatial element when training, got input "
            f"{tuple(x.shape)}"
        )
    if running_mean is not None:
        if running_mean.numel() != x.shape[1] or running_var.numel() != x.shape[1]:
            raise InvalidValue(
                f"instance_norm: running_mean and running_var must have {x.shape[1]} elements "
                f"(the channels of input {tuple(x.shape)}), got {tuple(running_mean.shape)} "
                f"and {tuple(running_var.shape)}"
            )
        _track_instance_stats(x, running_mean, running_var, float(momentum))
    return group_norm(x, x.shape[1], weight, bias, eps)


def _track_instance_stats(x: Tensor, mean: Tensor, var: Tensor, momentum: float) -> None:
    """``mean``, ``var`` (C,) moved in place toward the batch average of each instance's
    mean and unbiased variance (torch's instance norm: batch norm over N*C channels whose
    running statistics are averaged back over N)."""
    n, c = x.shape[0], x.shape[1]
    if n == 0:
        return
    a = x.array.reshape(n, c, math.prod(x.shape[2:]))
    with np.errstate(all="ignore"):  # inf/NaN inputs give inf/NaN statistics, silently
        # in float64, as torch accumulates them (1e38 values in float32 would overflow)
        stats = (a.mean(axis=2, dtype=np.float64), a.var(axis=2, ddof=1, dtype=np.float64))
        for buf, stat in zip((mean, var), stats):
            new = (1 - momentum) * buf.array + momentum * stat.mean(axis=0)
            buf.array[...] = new.astype(buf.array.dtype, copy=False)
            buf._version += 1


def upsample(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """Deprecated: ``interpolate(..., mode='bilinear', align_corners=True)``, as torch's."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _adaptive_with_indices(pool: Callable) -> Callable:
    """torch's ``adaptive_max_poolNd_with_indices``: the pool returning ``(output,
    indices)`` whatever ``return_indices`` says."""

    def with_indices(
        input: Tensor, output_size: Any, return_indices: bool = False
    ) -> tuple[Tensor, Tensor]:
        return pool(input, output_size, True)

    name = f"{pool.__name__}_with_indices"
    with_indices.__name__ = with_indices.__qualname__ = name
    with_indices.__doc__ = f"``{pool.__name__}`` returning ``(output, indices)``."
    return with_indices


adaptive_max_pool1d_with_indices = _adaptive_with_indices(adaptive_max_pool1d)
adaptive_max_pool2d_with_indices = _adaptive_with_indices(adaptive_max_pool2d)
adaptive_max_pool3d_with_indices = _adaptive_with_indices(adaptive_max_pool3d)


def _fractional_with_indices(pool: Any) -> Any:
    """``pool`` (a fractional max pool) returning ``(output, indices)``, as torch's
    ``*_with_indices`` forms."""

    def with_indices(
        input: Tensor,
        kernel_size: Any,
        output_size: Any = None,
        output_ratio: Any = None,
        return_indices: bool = False,
        _random_samples: Any = None,
    ) -> tuple[Tensor, Tensor]:
        return pool(input, kernel_size, output_size, output_ratio, True, _random_samples)

    name = f"{pool.__name__}_with_indices"
    with_indices.__name__ = with_indices.__qualname__ = name
    with_indices.__doc__ = f"``{pool.__name__}`` returning ``(output, indices)``."
    return with_indices


fractional_max_pool2d_with_indices = _fractional_with_indices(fractional_max_pool2d)
fractional_max_pool3d_with_indices = _fractional_with_indices(fractional_max_pool3d)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0."""
    x = float_only(input, "hardshrink")
    return Hardshrink.apply(x, float(lambd))  # (NaN is kept, with slope 1, as torch)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    x = float_only(input, "softshrink")
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found {lambd}")
    # x - lambd * sign(x) outside [-lambd, lambd] and for NaN (slope 1), +0 inside
    return Softshrink.apply(x, float(lambd))


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)`` (sub-pixel convolution)."""
    x = _tensor(input, "pixel_shuffle")
    r = int(upscale_factor)
    if r < 1:
        raise RuntimeError(f"pixel_shuffle: upscale_factor must be positive, got {r}")
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise RuntimeError(
            f"pixel_shuffle: expected input (*, C * {r}^2, H, W) with channels divisible by "
            f"{r * r}, got {tuple(x.shape)}"
        )
    *lead, c, h, w = x.shape
    n = len(lead)
    y = reshape(x, (*lead, c // (r * r), r, r, h, w))
    y = permute(y, (*range(n), n, n + 3, n + 1, n + 4, n + 2))
    return reshape(y, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)`` (the inverse of pixel_shuffle)."""
    x = _tensor(input, "pixel_unshuffle")
    r = int(downscale_factor)
    if r < 1:
        raise RuntimeError(f"pixel_unshuffle: downscale_factor must be positive, got {r}")
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise RuntimeError(
            f"pixel_unshuffle: expected input (*, C, H, W) with H and W divisible by {r}, got "
            f"{tuple(x.shape)}"
        )
    *lead, c, h, w = x.shape
    n = len(lead)
    y = reshape(x, (*lead, c, h // r, r, w // r, r))
    y = permute(y, (*range(n), n, n + 2, n + 4, n + 1, n + 3))
    return reshape(y, (*lead, c * r * r, h // r, w // r))


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / (max(||x1||, eps) * max(||x2||, eps))`` along ``dim`` (broadcasting)."""
    a, b = _tensor(x1, "cosine_similarity"), _tensor(x2, "cosine_similarity")
    check_broadcast("cosine_similarity", a, b)
    a, b = broadcast_tensors(a, b)  # before the norms: a size-1 dim is repeated along dim
    na = clamp(norm(a, 2, dim, keepdim=True), min=eps)
    nb = clamp(norm(b, 2, dim, keepdim=True), min=eps)
    return ((a / na) * (b / nb)).sum(dim)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dimension."""
    a, b = _tensor(x1, "pairwise_distance"), _tensor(x2, "pairwise_distance")
    check_broadcast("pairwise_distance", a, b)
    return norm(a - b + eps, p, -1, keepdim=keepdim)


def rms_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape``
    dimensions, in the input's dtype. As torch, float16 is computed in float32 (its
    squares overflow above 256) and ``eps`` defaults to the machine epsilon of the dtype
    computed in."""
    import numpy as np

    x = _tensor(input, "rms_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise RuntimeError(
            f"rms_norm: expected input with trailing shape {shape}, got {tuple(x.shape)}"
        )
    dtype = x.array.dtype
    xc = x.float() if dtype == np.float16 else x
    if eps is None:
        eps = float(np.finfo(xc.array.dtype).eps) if dtype.kind == "f" else 1.1920929e-07
    dims = tuple(range(x.ndim - k, x.ndim))
    y = xc * ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()
    if weight is not None:
        y = y * weight
    return y if y.array.dtype == dtype else y.to(x.dtype)


def gumbel_softmax(
    logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1
) -> Tensor:
    """A sample from the Gumbel-softmax (concrete) distribution over ``dim``:
    ``softmax((logits + g) / tau)`` with ``g = -log(E)``, ``E ~ Exponential(1)`` drawn from
    darklib's generator. ``hard=True`` returns the one-hot of its argmax with the soft
    sample's gradient (straight-through: ``y_hard - y_soft.detach() + y_soft``).
    ``eps`` is unused, as in torch (kept for the signature)."""
    x = _tensor(logits, "gumbel_softmax")
    if x.array.dtype.kind != "f":
        raise InvalidType(f"gumbel_softmax: expected floating-point logits, got {x.dtype}")
    u = rand_like(x)  # [0, 1): E = -log(1 - u) in [0, inf), clamped off 0
    e = (-(-u).log1p()).clamp(min=float(np.finfo(x.array.dtype).tiny))
    y_soft = softmax((x - e.log()) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = zeros_like(y_soft).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


# ------------------------------------------------------------------ channel shuffle, in-place forms


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Split the C channels of ``(N, C, *)`` into ``groups`` groups and interleave them:
    ``(N, g, C / g, *)`` transposed to ``(N, C / g, g, *)`` (ShuffleNet)."""
    x = _tensor(input, "channel_shuffle")
    groups = int(groups)
    if x.ndim <= 2:
        raise RuntimeError(
            f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(x.shape)}"
        )
    if groups <= 0:
        raise RuntimeError(
            f"Number of groups to divide channels in must be positive. Value of groups:{groups}"
        )
    n, c, *rest = (int(d) for d in x.shape)
    if c % groups:
        raise RuntimeError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} "
            f"groups (input {tuple(x.shape)})."
        )
    y = reshape(x, (n, groups, c // groups, *rest)).transpose(1, 2)
    return reshape(y, (n, c, *rest))


native_channel_shuffle = channel_shuffle


def relu_(input: Tensor) -> Tensor:
    """In-place :func:`relu`."""
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    return elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu`."""
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place :func:`threshold`."""
    return globals()["threshold"](input, threshold, value, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`celu`."""
    return celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    """In-place :func:`selu`."""
    return selu(input, inplace=True)


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False
) -> Tensor:
    """In-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, inplace=True)
