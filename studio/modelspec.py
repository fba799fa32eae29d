"""Model specs: a JSON layer graph, its shape inference and parameter counts. This module is
darklib-free, so that validating a project file needs no engine (the model itself is built
by :mod:`studio.network`).

A spec is a list of layers; each has a ``name``, a ``type`` from the registry below (darklib.nn
module names plus the merge nodes ``add`` and ``concat``), keyword ``args`` and optional
``inputs`` (earlier layer names or ``"input"``; by default the previous layer's output).
The registry knows, for each type, its arguments, its output shape and its parameter and buffer
shapes, so the model panel can check a spec row by row without building anything. Size
arguments that follow from the input (``in_features``, ``in_channels``, ``num_features``,
``num_channels``) may be left out; they are filled in from the inferred shapes.

Nothing here evaluates code: a type is looked up by name in a fixed table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.project import LayerSpec, ModelSpec

Shape = tuple[int, ...]  # without the batch dimension
#: models whose float32 parameters would take more than this are refused before building
MAX_PARAM_BYTES = 2_000_000_000
_REQ = object()  # marks a required argument


class SpecError(ValueError):
    """A layer whose arguments or input shape are wrong; ``layer`` names it."""

    def __init__(self, message: str, layer: str | None = None):
        super().__init__(message)
        self.layer = layer


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pair(v: Any, what: str, lo: int | None = None) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``lo`` when given."""
    if _is_int(v):
        out = (v, v)
    elif isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(n) for n in v):
        out = (int(v[0]), int(v[1]))
    else:
        raise SpecError(f"{what} must be an integer or a pair of integers, not {v!r}")
    if lo is not None and min(out) < lo:
        kind = "a positive integer" if lo == 1 else f"an integer >= {lo}"
        raise SpecError(f"{what} must be {kind} (or a pair of them), got {v!r}")
    return out


def _int(v: Any, what: str, lo: int | None = None) -> int:
    if not _is_int(v):
        raise SpecError(f"{what} must be an integer, not {v!r}")
    if lo is not None and v < lo:
        kind = "a positive integer" if lo == 1 else f"an integer >= {lo}"
        raise SpecError(f"{what} must be {kind}, got {v}")
    return v


# argument checks shared by every layer type that has the argument (after filling in)
_POSITIVE = (
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "num_features",
    "num_channels",
    "num_groups",
    "groups",
    "num_parameters",
)
_POSITIVE_PAIR = ("kernel_size", "dilation")
_BOOL = (
    "bias",
    "affine",
    "track_running_stats",
    "elementwise_affine",
    "inplace",
    "ceil_mode",
    "count_include_pad",
)


#: arguments that are plain real numbers (activations' slopes, scales, thresholds)
_FLOAT = ("negative_slope", "alpha", "beta", "threshold", "init")


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(f"{what} must be a number, not {v!r}")
    return float(v)


def check_args(type_name: str, a: dict[str, Any]) -> None:
    """Types and ranges of the (filled-in) arguments: sizes are positive integers, flags
    are true/false, probabilities lie in [0, 1]. Raises :class:`SpecError` naming the
    argument."""
    for k in _POSITIVE:
        if k in a:
            _int(a[k], k, 1)
    for k in _POSITIVE_PAIR:
        if k in a:
            _pair(a[k], k, 1)
    if a.get("stride") is not None:
        _pair(a["stride"], "stride", 1)
    if "padding" in a and not (type_name == "Conv2d" and a["padding"] in ("same", "valid")):
        _pair(a["padding"], "padding", 0)
    if "output_padding" in a:
        _pair(a["output_padding"], "output_padding", 0)
    for k in _BOOL:
        if k in a and not isinstance(a[k], bool):
            raise SpecError(f"{k} must be true or false, not {a[k]!r}")
    if "p" in a and not 0.0 <= _number(a["p"], "p") <= 1.0:
        raise SpecError(f"p is a probability: it must lie in [0, 1], got {a['p']!r}")
    if "eps" in a and _number(a["eps"], "eps") <= 0:
        raise SpecError(f"eps must be positive, got {a['eps']!r}")
    if a.get("momentum") is not None and not 0.0 <= _number(a["momentum"], "momentum") <= 1.0:
        raise SpecError(f"momentum must lie in [0, 1], got {a['momentum']!r}")
    if type_name == "Upsample":
        if a.get("size") is not None:
            _pair(a["size"], "size", 1)
        sf = a.get("scale_factor")
        if sf is not None and not all(
            _number(f, "scale_factor") > 0 for f in (sf if isinstance(sf, (list, tuple)) else [sf])
        ):
            raise SpecError(f"scale_factor must be positive, got {sf!r}")
    if "normalized_shape" in a:
        ns = a["normalized_shape"]
        for n in ns if isinstance(ns, (list, tuple)) else [ns]:
            _int(n, "normalized_shape", 1)
    for k in _FLOAT:
        if a.get(k) is not None:
            _number(a[k], k)
    if type_name == "Conv2d" and a.get("padding_mode") not in (
        "zeros",
        "reflect",
        "replicate",
        "circular",
    ):
        raise SpecError(
            "padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', not "
            f"{a.get('padding_mode')!r}"
        )


def _need_dims(shape: Shape, dims: Sequence[int], what: str) -> None:
    if len(shape) not in dims:
        want = " or ".join(f"{d + 1}-D" for d in dims)
        raise SpecError(
            f"{what} expects a {want} input (batch included), got shape "
            f"(N, {', '.join(map(str, shape))})"
        )


# --------------------------------------------------------------------------- rules


@dataclass
class LayerRule:
    """How one layer type behaves: arguments (name -> default or required), shape rule and
    parameter/buffer shapes (given the filled-in args and the input shapes)."""

    args: dict[str, Any]
    shape: Callable[[dict, list[Shape]], Shape]
    state: Callable[[dict, list[Shape]], dict[str, tuple[Shape, bool]]] = (
        lambda a, s: {}  # name -> (shape, is_parameter)
    )
    fill: Callable[[dict, list[Shape]], dict] = lambda a, s: a
    merge: bool = False
    doc: str = ""


def _fill_key(key: str, dim: int) -> Callable[[dict, list[Shape]], dict]:
    """Fill argument ``key`` from input dimension ``dim`` when it is left out (None)."""

    def fill(a: dict, s: list[Shape]) -> dict:
        if a.get(key) is None:
            if not s[0]:
                raise SpecError(f"cannot infer {key} from a scalar input")
            a = dict(a)
            a[key] = s[0][dim]
        return a

    return fill


def _linear_shape(a: dict, s: list[Shape]) -> Shape:
    x = s[0]
    if len(x) < 1:
        raise SpecError("Linear needs an input with a feature dimension")
    if x[-1] != a["in_features"]:
        raise SpecError(
            f"Linear expects {a['in_features']} input features, got {x[-1]} "
            f"(input shape (N, {', '.join(map(str, x))})); add a Flatten or fix "
            "in_features"
        )
    _int(a["out_features"], "out_features", 1)
    return (*x[:-1], a["out_features"])


def _linear_state(a: dict, s: list[Shape]) -> dict:
    st = {"weight": ((a["out_features"], a["in_features"]), True)}
    if a["bias"]:
        st["bias"] = ((a["out_features"],), True)
    return st


def _conv_out(n: int, k: int, st: int, p: int, d: int, what: str) -> int:
    out = (n + 2 * p - d * (k - 1) - 1) // st + 1
    if out < 1:
        raise SpecError(
            f"{what}: input size {n} is too small for kernel {k} (padding {p}, "
            f"dilation {d}); output would be {out}"
        )
    return out


def _conv_padding(a: dict, k: tuple[int, int], d: tuple[int, int]) -> tuple[int, int]:
    p = a["padding"]
    if p == "valid":
        return 0, 0
    if p == "same":
        if _pair(a["stride"], "stride") != (1, 1):
            raise SpecError("padding='same' needs stride 1")
        return d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2
    return _pair(p, "padding")


def _check_padding_mode(
    a: dict,
    size: tuple[int, int],
    k: tuple[int, int],
    d: tuple[int, int],
    p: tuple[int, int],
) -> None:
    """torch's limits on padding that copies the input: 'reflect' pads less than the input
    size, 'circular' at most the input size (it wraps around once); 'replicate' and 'zeros'
    have no limit."""
    mode = a.get("padding_mode", "zeros")
    if mode not in ("reflect", "circular"):
        return
    for axis, n in enumerate(size):
        most = p[axis]
        if a["padding"] == "same":  # the larger side of torch's split of d * (k - 1)
            total = d[axis] * (k[axis] - 1)
            most = total - total // 2
        if mode == "reflect" and most >= n:
            raise SpecError(
                f"padding_mode='reflect' needs padding smaller than the input size: padding "
                f"{most} on an input of size {n} (reduce the padding or use 'zeros')"
            )
        if mode == "circular" and most > n:
            raise SpecError(
                f"padding_mode='circular' needs padding at most the input size: padding "
                f"{most} on an input of size {n} (reduce the padding or use 'zeros')"
            )


def _conv_shape(a: dict, s: list[Shape]) -> Shape:
    _need_dims(s[0], (3,), "Conv2d")
    c, h, w = s[0]
    if c != a["in_channels"]:
        raise SpecError(f"Conv2d expects {a['in_channels']} input channels, got {c}")
    g = _int(a["groups"], "groups", 1)
    if a["in_channels"] % g or a["out_channels"] % g:
        raise SpecError(
            f"in_channels {a['in_channels']} and out_channels "
            f"{a['out_channels']} must be divisible by groups {g}"
        )
    k = _pair(a["kernel_size"], "kernel_size")
    st = _pair(a["stride"], "stride")
    d = _pair(a["dilation"], "dilation")
    p = _conv_padding(a, k, d)
    _check_padding_mode(a, (h, w), k, d, p)
    if p != (0, 0) and a["padding"] == "same":
        return (a["out_channels"], h, w)
    return (
        a["out_channels"],
        _conv_out(h, k[0], st[0], p[0], d[0], "Conv2d"),
        _conv_out(w, k[1], st[1], p[1], d[1], "Conv2d"),
    )


def _conv_state(a: dict, s: list[Shape]) -> dict:
    k = _pair(a["kernel_size"], "kernel_size")
    st = {"weight": ((a["out_channels"], a["in_channels"] // a["groups"], *k), True)}
    if a["bias"]:
        st["bias"] = ((a["out_channels"],), True)
    return st


def _convt_shape(a: dict, s: list[Shape]) -> Shape:
    _need_dims(s[0], (3,), "ConvTranspose2d")
    c, h, w = s[0]
    if c != a["in_channels"]:
        raise SpecError(f"ConvTranspose2d expects {a['in_channels']} input channels, got {c}")
    k = _pair(a["kernel_size"], "kernel_size")
    st = _pair(a["stride"], "stride")
    p = _pair(a["padding"], "padding")
    op = _pair(a["output_padding"], "output_padding")
    d = _pair(a["dilation"], "dilation")
    for o, sv, dv in zip(op, st, d):
        if o >= sv and o >= dv:
            raise SpecError(
                f"output_padding {o} must be smaller than the stride ({sv}) or the dilation ({dv})"
            )
    ho = (h - 1) * st[0] - 2 * p[0] + d[0] * (k[0] - 1) + op[0] + 1
    wo = (w - 1) * st[1] - 2 * p[1] + d[1] * (k[1] - 1) + op[1] + 1
    if ho < 1 or wo < 1:
        raise SpecError(f"ConvTranspose2d output would be {ho}x{wo}")
    return (a["out_channels"], ho, wo)


def _convt_state(a: dict, s: list[Shape]) -> dict:
    k = _pair(a["kernel_size"], "kernel_size")
    st = {"weight": ((a["in_channels"], a["out_channels"] // a["groups"], *k), True)}
    if a["bias"]:
        st["bias"] = ((a["out_channels"],), True)
    return st


def _pool_out(n: int, k: int, st: int, p: int, d: int, ceil: bool, what: str) -> int:
    if p > k // 2:
        raise SpecError(f"{what}: padding {p} must be at most half the kernel size {k}")
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // st) if ceil else span // st) + 1
    if ceil and (out - 1) * st >= n + p:
        out -= 1
    if out < 1:
        raise SpecError(f"{what}: input size {n} is too small for kernel {k}")
    return out


def _pool_shape(name: str) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, s: list[Shape]) -> Shape:
        _need_dims(s[0], (3,), name)
        c, h, w = s[0]
        k = _pair(a["kernel_size"], "kernel_size")
        st = _pair(a["stride"] if a["stride"] is not None else a["kernel_size"], "stride")
        p = _pair(a["padding"], "padding")
        d = _pair(a.get("dilation", 1), "dilation")
        ceil = bool(a["ceil_mode"])
        return (
            c,
            _pool_out(h, k[0], st[0], p[0], d[0], ceil, name),
            _pool_out(w, k[1], st[1], p[1], d[1], ceil, name),
        )

    return shape


def _adaptive_shape(name: str) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, s: list[Shape]) -> Shape:
        _need_dims(s[0], (3,), name)
        c, h, w = s[0]
        o = a["output_size"]
        if isinstance(o, (list, tuple)) and len(o) == 2:
            oh = h if o[0] is None else _int(o[0], "output_size", 1)
            ow = w if o[1] is None else _int(o[1], "output_size", 1)
        else:
            oh = ow = _int(o, "output_size", 1)
        return (c, oh, ow)

    return shape


def _bn_shape(name: str, dims: tuple[int, ...]) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, s: list[Shape]) -> Shape:
        _need_dims(s[0], dims, name)
        if s[0][0] != a["num_features"]:
            raise SpecError(f"{name} expects {a['num_features']} features/channels, got {s[0][0]}")
        return s[0]

    return shape


def _bn_state(a: dict, s: list[Shape]) -> dict:
    c = (a["num_features"],)
    st: dict = {}
    if a["affine"]:
        st["weight"] = (c, True)
        st["bias"] = (c, True)
    if a["track_running_stats"]:
        st["running_mean"] = (c, False)
        st["running_var"] = (c, False)
        st["num_batches_tracked"] = ((), False)
    return st


def _ln_norm_shape(a: dict) -> Shape:
    ns = a["normalized_shape"]
    return (ns,) if isinstance(ns, int) else tuple(ns)


def _ln_shape(a: dict, s: list[Shape]) -> Shape:
    ns = _ln_norm_shape(a)
    if tuple(s[0][-len(ns) :]) != ns:
        raise SpecError(
            f"LayerNorm normalized_shape {list(ns)} does not match the input's "
            f"trailing dimensions {list(s[0])}"
        )
    return s[0]


def _ln_state(a: dict, s: list[Shape]) -> dict:
    ns = _ln_norm_shape(a)
    st: dict = {}
    if a["elementwise_affine"]:
        st["weight"] = (ns, True)
        if a["bias"]:
            st["bias"] = (ns, True)
    return st


def _gn_shape(a: dict, s: list[Shape]) -> Shape:
    if s[0][0] != a["num_channels"]:
        raise SpecError(f"GroupNorm expects {a['num_channels']} channels, got {s[0][0]}")
    if a["num_channels"] % _int(a["num_groups"], "num_groups", 1):
        raise SpecError(
            f"num_channels {a['num_channels']} is not divisible by num_groups {a['num_groups']}"
        )
    return s[0]


def _gn_state(a: dict, s: list[Shape]) -> dict:
    if not a["affine"]:
        return {}
    return {"weight": ((a["num_channels"],), True), "bias": ((a["num_channels"],), True)}


def _flatten_shape(a: dict, s: list[Shape]) -> Shape:
    full = (1, *s[0])  # batch included, as torch counts dims
    n = len(full)
    st = a["start_dim"] % n
    en = a["end_dim"] % n
    if st > en:
        raise SpecError(f"Flatten start_dim {a['start_dim']} is after end_dim {a['end_dim']}")
    if st == 0:
        raise SpecError("Flatten over the batch dimension is not supported in a model spec")
    out = (*full[:st], math.prod(full[st : en + 1]), *full[en + 1 :])
    return out[1:]


def _upsample_shape(a: dict, s: list[Shape]) -> Shape:
    _need_dims(s[0], (3,), "Upsample")
    c, h, w = s[0]
    if a["size"] is not None:
        oh, ow = _pair(a["size"], "size")
        return (c, oh, ow)
    if a["scale_factor"] is None:
        raise SpecError("Upsample needs size or scale_factor")
    sf = a["scale_factor"]
    fh, fw = (sf, sf) if isinstance(sf, (int, float)) else sf
    return (c, math.floor(h * fh), math.floor(w * fw))


def _same(a: dict, s: list[Shape]) -> Shape:  # keeps_shape: set below
    return s[0]


def _add_shape(a: dict, s: list[Shape]) -> Shape:
    if len(s) < 2:
        raise SpecError("add needs at least two inputs")
    for x in s[1:]:
        if x != s[0]:
            raise SpecError(f"add inputs must have equal shapes, got {[list(x) for x in s]}")
    return s[0]


def _concat_shape(a: dict, s: list[Shape]) -> Shape:
    if len(s) < 2:
        raise SpecError("concat needs at least two inputs")
    dim = _int(a["dim"], "dim")
    nd = len(s[0]) + 1
    if not -nd <= dim < nd or dim % nd == 0:
        raise SpecError(f"concat dim {dim} is out of range (or the batch dim) for {nd}-D inputs")
    d = dim % nd - 1
    for x in s[1:]:
        if len(x) != len(s[0]) or any(x[i] != s[0][i] for i in range(len(x)) if i != d):
            raise SpecError(f"concat inputs differ outside dim {dim}: {[list(x) for x in s]}")
    out = list(s[0])
    out[d] = sum(x[d] for x in s)
    return tuple(out)


def _prelu_state(a: dict, s: list[Shape]) -> dict:
    return {"weight": ((a["num_parameters"],), True)}


_ACT = {
    "ReLU": {"inplace": False},
    "ReLU6": {"inplace": False},
    "LeakyReLU": {"negative_slope": 0.01, "inplace": False},
    "ELU": {"alpha": 1.0, "inplace": False},
    "GELU": {"approximate": "none"},
    "SiLU": {"inplace": False},
    "Mish": {"inplace": False},
    "Sigmoid": {},
    "Tanh": {},
    "Hardswish": {"inplace": False},
    "Softplus": {"beta": 1.0, "threshold": 20.0},
    "Softmax": {"dim": None},
    "LogSoftmax": {"dim": None},
    "Identity": {},
    "Dropout": {"p": 0.5, "inplace": False},
    "Dropout2d": {"p": 0.5, "inplace": False},
}

_POOL = {"kernel_size": _REQ, "stride": None, "padding": 0, "ceil_mode": False}

REGISTRY: dict[str, LayerRule] = {
    "Linear": LayerRule(
        {"in_features": None, "out_features": _REQ, "bias": True},
        _linear_shape,
        _linear_state,
        _fill_key("in_features", -1),
        doc="y = x W^T + b",
    ),
    "Conv2d": LayerRule(
        {
            "in_channels": None,
            "out_channels": _REQ,
            "kernel_size": _REQ,
            "stride": 1,
            "padding": 0,
            "dilation": 1,
            "groups": 1,
            "bias": True,
            "padding_mode": "zeros",
        },
        _conv_shape,
        _conv_state,
        _fill_key("in_channels", 0),
        doc="2-D convolution",
    ),
    "ConvTranspose2d": LayerRule(
        {
            "in_channels": None,
            "out_channels": _REQ,
            "kernel_size": _REQ,
            "stride": 1,
            "padding": 0,
            "output_padding": 0,
            "groups": 1,
            "bias": True,
            "dilation": 1,
        },
        _convt_shape,
        _convt_state,
        _fill_key("in_channels", 0),
        doc="transposed 2-D convolution",
    ),
    "MaxPool2d": LayerRule({**_POOL, "dilation": 1}, _pool_shape("MaxPool2d")),
    "AvgPool2d": LayerRule({**_POOL, "count_include_pad": True}, _pool_shape("AvgPool2d")),
    "AdaptiveAvgPool2d": LayerRule({"output_size": _REQ}, _adaptive_shape("AdaptiveAvgPool2d")),
    "AdaptiveMaxPool2d": LayerRule({"output_size": _REQ}, _adaptive_shape("AdaptiveMaxPool2d")),
    "BatchNorm1d": LayerRule(
        {
            "num_features": None,
            "eps": 1e-5,
            "momentum": 0.1,
            "affine": True,
            "track_running_stats": True,
        },
        _bn_shape("BatchNorm1d", (1, 2)),
        _bn_state,
        _fill_key("num_features", 0),
    ),
    "BatchNorm2d": LayerRule(
        {
            "num_features": None,
            "eps": 1e-5,
            "momentum": 0.1,
            "affine": True,
            "track_running_stats": True,
        },
        _bn_shape("BatchNorm2d", (3,)),
        _bn_state,
        _fill_key("num_features", 0),
    ),
    "LayerNorm": LayerRule(
        {"normalized_shape": _REQ, "eps": 1e-5, "elementwise_affine": True, "bias": True},
        _ln_shape,
        _ln_state,
    ),
    "GroupNorm": LayerRule(
        {"num_groups": _REQ, "num_channels": None, "eps": 1e-5, "affine": True},
        _gn_shape,
        _gn_state,
        _fill_key("num_channels", 0),
    ),
    "PReLU": LayerRule({"num_parameters": 1, "init": 0.25}, _same, _prelu_state),
    "Flatten": LayerRule({"start_dim": 1, "end_dim": -1}, _flatten_shape),
    "Upsample": LayerRule(
        {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None},
        _upsample_shape,
    ),
    "add": LayerRule({}, _add_shape, merge=True, doc="sum of the inputs"),
    "concat": LayerRule({"dim": 1}, _concat_shape, merge=True, doc="concatenate the inputs"),
}


def _softmax_shape(name: str) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, s: list[Shape]) -> Shape:
        if a.get("dim") is not None:
            rank = len(s[0]) + 1  # torch counts the batch dimension
            dim = _int(a["dim"], "dim")
            if not -rank <= dim < rank:
                raise SpecError(
                    f"dim {dim} is out of range for its {rank}-D input (batch "
                    f"included): use a dim from {-rank} to {rank - 1}, e.g. dim=1 for classes"
                )
        return s[0]

    shape.keeps_shape = True  # type: ignore[attr-defined]
    return shape


_same.keeps_shape = True  # type: ignore[attr-defined]
for _name, _args in _ACT.items():
    REGISTRY[_name] = LayerRule(dict(_args), _softmax_shape(_name) if "dim" in _args else _same)

MERGE_TYPES = ("add", "concat")


def known_layer_types() -> tuple[str, ...]:
    """Every type name a spec may use."""
    return tuple(REGISTRY)


def default_args(type_name: str) -> dict[str, Any]:
    """The arguments a new layer of this type starts with (required ones get a placeholder)."""
    rule = REGISTRY[type_name]
    placeholders = {
        "out_features": 10,
        "out_channels": 16,
        "kernel_size": 3,
        "output_size": 1,
        "normalized_shape": 8,
        "num_groups": 1,
    }
    return {k: placeholders.get(k, 1) for k, v in rule.args.items() if v is _REQ}


# --------------------------------------------------------------------------- inference


@dataclass
class LayerInfo:
    """One row of the model table."""

    name: str
    type: str
    args: dict[str, Any]  # as written in the spec
    resolved: dict[str, Any] = field(default_factory=dict)  # every argument, filled in
    inputs: list[str] = field(default_factory=list)  # resolved input names
    in_shapes: list[Shape] = field(default_factory=list)
    out_shape: Shape | None = None
    params: int = 0
    state: dict[str, tuple[Shape, bool]] = field(default_factory=dict)
    error: str | None = None  # this layer is wrong
    blocked: bool = False  # an input of this layer is wrong

    @property
    def ok(self) -> bool:
        return self.error is None and not self.blocked


@dataclass
class ModelReport:
    """Shape inference for a whole spec: one :class:`LayerInfo` per layer."""

    input_shape: Shape
    layers: list[LayerInfo]

    @property
    def ok(self) -> bool:
        return bool(self.layers) and all(li.ok for li in self.layers)

    @property
    def total_params(self) -> int:
        return sum(li.params for li in self.layers)

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].out_shape if self.layers else None

    def first_error(self) -> str | None:
        """The first bad row, numbered as the model table shows it (from 1)."""
        if not self.layers:
            return "the model has no layers"
        for i, li in enumerate(self.layers):
            if li.error:
                return f"row {i + 1} '{li.name}' ({li.type}): {li.error}"
        return None


def _resolve_args(layer: LayerSpec, rule: LayerRule) -> dict[str, Any]:
    unknown = [k for k in layer.args if k not in rule.args]
    if unknown:
        raise SpecError(
            f"{layer.type} has no argument {unknown[0]!r} (it takes "
            f"{', '.join(rule.args) or 'no arguments'})"
        )
    args = {}
    for k, default in rule.args.items():
        if k in layer.args:
            args[k] = layer.args[k]
        elif default is _REQ:
            raise SpecError(f"{layer.type} needs the argument {k!r}")
        else:
            args[k] = default
    return args


def infer(spec: ModelSpec) -> ModelReport:
    """Shape inference and parameter counts, row by row; errors are recorded, not raised."""
    input_shape = tuple(int(n) for n in spec.input_shape)
    shapes: dict[str, Shape | None] = {"input": input_shape}
    rows: list[LayerInfo] = []
    prev = "input"
    total = 0
    for layer in spec.layers:
        info = LayerInfo(layer.name, layer.type, dict(layer.args))
        rows.append(info)
        rule = REGISTRY.get(layer.type)
        inputs = list(layer.inputs) or [prev]
        info.inputs = inputs
        prev = layer.name
        shapes[layer.name] = None
        if rule is None:
            info.error = f"unknown layer type {layer.type!r}"
            continue
        if not rule.merge and len(inputs) != 1:
            info.error = f"{layer.type} takes one input, got {len(inputs)}"
            continue
        missing = [n for n in inputs if n not in shapes or n == layer.name]
        if missing:
            info.error = (
                f"input {missing[0]!r} is not an earlier layer (inputs must name "
                "earlier layers or 'input')"
            )
            continue
        in_shapes = [shapes[n] for n in inputs]
        if any(s is None for s in in_shapes):
            info.blocked = True
            continue
        info.in_shapes = in_shapes  # type: ignore[assignment]
        try:
            args = _resolve_args(layer, rule)
            args = rule.fill(args, in_shapes)  # type: ignore[arg-type]
            check_args(layer.type, args)
            out = tuple(int(n) for n in rule.shape(args, in_shapes))  # type: ignore[arg-type]
            state = rule.state(args, in_shapes)  # type: ignore[arg-type]
        except SpecError as e:
            info.error = str(e)
            continue
        except (TypeError, ValueError, KeyError, ZeroDivisionError, OverflowError) as e:
            info.error = f"arguments that do not fit together ({type(e).__name__}: {e})"
            continue
        params = sum(math.prod(s) for s, is_param in state.values() if is_param)
        total += params
        if total * 4 > MAX_PARAM_BYTES:
            info.error = (
                f"the model's parameters would reach {total:,} ({gb(total * 4)} as float32, "
                f"more with gradients and optimizer state), over the "
                f"{gb(MAX_PARAM_BYTES)} limit: make this layer smaller"
            )
            continue
        info.resolved = args
        info.out_shape = out
        info.state = state
        info.params = params
        shapes[layer.name] = out
    return ModelReport(input_shape, rows)


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:,.1f} GB"


def expected_state_shapes(spec: ModelSpec) -> dict[str, Shape]:
    """``state_dict`` names and shapes of the model the spec builds (raises on a bad spec)."""
    rep = infer(spec)
    err = rep.first_error()
    if err:
        raise SpecError(err)
    out: dict[str, Shape] = {}
    for li in rep.layers:
        for k, (shape, _) in li.state.items():
            out[f"{li.name}.{k}"] = shape
    return out


def format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "(N, " + ", ".join(str(n) for n in shape) + ")"


def output_layer(spec: ModelSpec) -> LayerSpec | None:
    """The layer that sets the model's output size: the last layer, or the ``Linear`` before
    trailing shape-keeping layers (activations, dropout, softmax); None when it is not a
    ``Linear`` (a convolution head, a merge node): such heads are the user's to resize."""
    for layer in reversed(spec.layers):
        rule = REGISTRY.get(layer.type)
        if layer.type == "Linear":
            return layer
        if rule is None or not getattr(rule.shape, "keeps_shape", False) or layer.inputs:
            return None
    return None


def with_outputs(spec: ModelSpec, n: int) -> tuple[ModelSpec, str, int] | None:
    """A copy of ``spec`` whose output ``Linear`` gives ``n`` values: (new spec, layer name,
    old size), or None when there is no such layer or it already gives ``n``."""
    layer = output_layer(spec)
    if layer is None:
        return None
    old = layer.args.get("out_features")
    if old == n:
        return None
    new = spec.model_copy(deep=True)
    for ls in new.layers:
        if ls.name == layer.name:
            ls.args = {**ls.args, "out_features": int(n)}
    return new, layer.name, int(old) if isinstance(old, int) else -1
