"""The sample convention, the Transform base class, Compose and the config registry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from darklib.tensor import Tensor
from darklib.utils.data._worker import sample_rng

_REGISTRY: dict[str, type[Transform]] = {}

#: keys of a sample dict that geometric transforms move with the pixels
SPATIAL_KEYS = ("image", "mask", "keypoints", "boxes")


def probability(p: Any, where: str) -> float:
    """``p`` as a probability in [0, 1] (NaN refused), or a ValueError naming ``where``."""
    p = float(p)
    if not 0 <= p <= 1:
        raise ValueError(f"{where}: p should be a probability in [0, 1], got {p}")
    return p


def min_max(v: Sequence[float], where: str, name: str, low: float, high: float) -> tuple:
    """A (min, max) pair within [low, high] (finite bounds unless ``high`` is inf; NaN
    refused), or a ValueError naming ``where`` and ``name``."""
    if len(v) != 2:
        raise ValueError(f"{where}: {name} should be a (min, max) pair, got {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if not (low <= lo <= hi <= high and hi < float("inf")):
        raise ValueError(
            f"{where}: {name} should be (min, max) with {low} <= min <= max <= {high}, got "
            f"({lo}, {hi})"
        )
    return lo, hi


def _resolve_rng(generator: Any) -> np.random.Generator:
    if generator is None:
        return sample_rng()
    if isinstance(generator, np.random.Generator):
        return generator
    from darklib.random import Generator

    if isinstance(generator, Generator):
        return generator.numpy_rng()
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(
        f"generator must be None, a numpy.random.Generator, a darklib.Generator or an int "
        f"seed, got {type(generator).__name__}"
    )


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.")


def _pil_to_numpy(img: Any) -> Any:
    """A PIL image as a (writable) numpy array holding what the image stores, as
    torchvision's ``to_tensor`` reads it: one channel (``HW``) for the single-band modes,
    ``HWC`` for the others, without any conversion to RGB.

    ``L`` and ``P`` give uint8 (``P``: the palette *indices*, e.g. the class ids of a VOC
    mask), ``1`` gives uint8 0/255 (torchvision's ``255 * bool``), ``I`` int32, ``I;16``
    (and its byte orders) uint16, ``F`` float32; ``LA``, ``RGB``, ``RGBA``, ``CMYK``,
    ``YCbCr``... give their bands as uint8 channels, as stored. Anything else is returned
    as it is.
    """
    if not _is_pil(img):
        return img
    if img.mode == "1":
        return np.array(img, np.uint8) * np.uint8(255)
    arr = np.array(img)  # a copy: transforms may write into it
    if arr.dtype.byteorder not in "=|":  # "I;16B": big-endian on the file, native here
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _mask_to_numpy(mask: Any) -> Any:
    """A PIL mask as its stored values (palette indices for ``P``)."""
    return np.array(mask) if _is_pil(mask) else mask


def _is_image(x: Any) -> bool:
    return isinstance(x, np.ndarray | Tensor) or _is_pil(x)


def _is_sample(x: Any) -> bool:
    """Whether ``x`` is one of the sample forms the image transforms take (see
    :class:`Transform`); anything else passes through Lambda and Compose untouched."""
    if isinstance(x, dict):
        return "image" in x
    if isinstance(x, tuple | list):
        return len(x) == 2 and _is_image(x[0])
    return _is_image(x)


def _unpack(sample: Any) -> tuple[dict, Callable[[dict], Any]]:
    """Turn any accepted sample into a dict of fields plus a function that rebuilds it."""
    if isinstance(sample, dict):
        s = dict(sample)
        if "image" in s:
            s["image"] = _pil_to_numpy(s["image"])
        if "mask" in s:
            s["mask"] = _mask_to_numpy(s["mask"])
        return s, lambda d: d
    if isinstance(sample, tuple | list) and len(sample) == 2 and _is_image(sample[0]):
        image, target = sample
        if isinstance(target, dict):
            s = dict(target)
            s["image"] = _pil_to_numpy(image)
            if "mask" in s:
                s["mask"] = _mask_to_numpy(s["mask"])

            def rebuild(d: dict) -> tuple:
                d = dict(d)
                return d.pop("image"), d

            return s, rebuild
        return {"image": _pil_to_numpy(image), "_target": target}, lambda d: (
            d["image"],
            d["_target"],
        )
    if _is_image(sample):
        return {"image": _pil_to_numpy(sample)}, lambda d: d["image"]
    raise TypeError(
        f"transforms: expected an image (numpy array, Tensor or PIL image), a tuple (image, "
        f"target) or a dict with an 'image' key, got {type(sample).__name__}"
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, Transform):
        return v.config()
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, bool | int | float | str):
        return v
    raise TypeError(f"cannot describe {type(v).__name__} in a transform config")


class Transform:
    """Base class: a callable that transforms a sample jointly.

    A sample is one of

    * an image: numpy ``HWC`` (or ``HW``) of any numeric dtype, a darklib Tensor ``CHW``, or
      a PIL image (read as stored, see :func:`_pil_to_numpy`);
    * a tuple ``(image, target)``: the target is passed through unchanged unless it is a dict,
      whose ``mask``/``keypoints``/``boxes`` move with the image;
    * a dict with ``"image"`` and optionally ``"mask"`` (``HW`` ints), ``"keypoints"``
      (``(K, 2)`` float32 pixel x, y), ``"boxes"`` (``(M, 4)`` float32 pixel x1, y1, x2, y2)
      and any other keys (such as ``"label"``), which are passed through.

    Coordinates refer to the continuous image plane: pixel (row i, column j) covers
    ``[j, j+1) x [i, i+1)``, so its centre is ``(j + 0.5, i + 0.5)``.

    Random transforms draw from ``generator`` when given (a numpy Generator, a
    ``darklib.Generator`` or an int seed), else from the per-sample stream of the DataLoader
    (:func:`darklib.utils.data.sample_rng`), else from darklib's default generator.
    """

    _args: dict[str, Any]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recorded_init(self: Transform, *args: Any, **kwargs: Any) -> None:
            if type(self) is cls:
                bound = sig.bind(self, *args, **kwargs)
                self._args = {k: v for k, v in list(bound.arguments.items())[1:]}
            init(self, *args, **kwargs)

        cls.__init__ = recorded_init  # type: ignore[method-assign]

    #: containers and Lambda take any object: what is not a sample is handed to their
    #: callables as it is (``call_object``), as torchvision's Compose and Lambda do
    _takes_any_object = False

    def __call__(self, sample: Any, generator: Any = None) -> Any:
        if self._takes_any_object and not _is_sample(sample):
            return self.call_object(sample, _resolve_rng(generator))
        s, rebuild = _unpack(sample)
        self.apply(s, _resolve_rng(generator))
        return rebuild(s)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        """Transform the fields of sample dict ``s`` in place (subclasses implement this)."""
        raise NotImplementedError

    def call_object(self, x: Any, rng: np.random.Generator) -> Any:
        """Transform ``x``, which is not an image sample (a label, a string...): image
        transforms refuse it; Lambda and the containers pass it to their callables."""
        s, rebuild = _unpack(x)  # (raises the "expected an image" TypeError)
        self.apply(s, rng)
        return rebuild(s)

    def config(self) -> dict:
        """A JSON-able description: ``{"type": name, **arguments}`` (see :func:`from_config`)."""
        return {
            "type": type(self).__name__,
            **{k: _jsonable(v) for k, v in getattr(self, "_args", {}).items()},
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in getattr(self, "_args", {}).items())
        return f"{type(self).__name__}({args})"


def from_config(config: dict | list) -> Transform:
    """Build a transform from :meth:`Transform.config` output (a list becomes a Compose)."""
    if isinstance(config, list):
        return Compose([from_config(c) for c in config])
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"from_config: expected a dict with a 'type' key, got {config!r}")
    kw = dict(config)
    name = kw.pop("type")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(
            f"from_config: unknown transform {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        )
    for key in ("transforms",):
        if key in kw and isinstance(kw[key], list):
            kw[key] = [from_config(c) if isinstance(c, dict) else c for c in kw[key]]
    try:
        return cls(**kw)
    except TypeError as e:
        raise ValueError(f"from_config: bad arguments for {name}: {e}") from None


class Compose(Transform):
    """Apply ``transforms`` one after the other to the same sample.

    Args:
        transforms: the transforms (callables taking a sample also work).
    """

    _takes_any_object = True

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, sample: Any, generator: Any = None) -> Any:
        if self.transforms and isinstance(self.transforms[-1], ToTuple):
            return self.transforms[-1](Compose(self.transforms[:-1])(sample, generator))
        return super().__call__(sample, generator)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        for t in self.transforms:
            if isinstance(t, Transform):
                t.apply(s, rng)
            else:
                _apply_callable(t, s)

    def call_object(self, x: Any, rng: np.random.Generator) -> Any:
        # one transform after the other on the object itself: once a callable has made it
        # an image sample, the image transforms that follow take it as usual
        for t in self.transforms:
            x = t(x, rng) if isinstance(t, Transform) else t(x)
        return x

    def __repr__(self) -> str:
        lines = [f"    {t!r}" for t in self.transforms]
        return "Compose(\n" + "\n".join(lines) + "\n)" if lines else "Compose()"


def _apply_callable(fn: Callable, s: dict) -> None:
    """A plain callable sees the image only (as torchvision's v1 transforms do)."""
    s["image"] = fn(s["image"])


class RandomApply(Transform):
    """Apply ``transforms`` (in order) with probability ``p``."""

    _takes_any_object = True

    def __init__(self, transforms: Sequence[Callable], p: float = 0.5):
        self.transforms = Compose(transforms)
        self.p = probability(p, "RandomApply")

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        if rng.random() < self.p:
            self.transforms.apply(s, rng)

    def call_object(self, x: Any, rng: np.random.Generator) -> Any:
        return self.transforms.call_object(x, rng) if rng.random() < self.p else x


class RandomChoice(Transform):
    """Apply one of ``transforms``, picked at random (with probabilities ``p``)."""

    _takes_any_object = True

    def __init__(self, transforms: Sequence[Callable], p: Sequence[float] | None = None):
        self.transforms = list(transforms)
        if p is not None and len(p) != len(self.transforms):
            raise ValueError("RandomChoice: p must have one probability per transform")
        self.p = None if p is None else np.asarray(p, np.float64) / np.sum(p)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        t = self.transforms[int(rng.choice(len(self.transforms), p=self.p))]
        Compose([t]).apply(s, rng)

    def call_object(self, x: Any, rng: np.random.Generator) -> Any:
        t = self.transforms[int(rng.choice(len(self.transforms), p=self.p))]
        return Compose([t]).call_object(x, rng)


class Lambda(Transform):
    """Apply a function to the image, or to whatever it is given when that is not an
    image sample (a label, a string...), as torchvision's Lambda: e.g. a one-hot target
    ``Lambda(lambda y: dl.zeros(10).scatter_(0, dl.tensor(y), value=1))``. Not describable
    in a config.
    """

    _takes_any_object = True

    def __init__(self, lambd: Callable[[Any], Any]):
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, sample: Any, generator: Any = None) -> Any:
        if not _is_sample(sample):  # (no random stream needed)
            return self.lambd(sample)
        return super().__call__(sample, generator)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        s["image"] = self.lambd(s["image"])

    def call_object(self, x: Any, rng: np.random.Generator) -> Any:
        return self.lambd(x)

    def config(self) -> dict:
        raise TypeError("Lambda transforms cannot be described in a config")


class ToTuple(Transform):
    """Turn a dict sample into a tuple of its ``keys`` (e.g. ``("image", "mask")``)."""

    def __init__(self, keys: Sequence[str] = ("image", "label")):
        self.keys = tuple(keys)

    def __call__(self, sample: Any, generator: Any = None) -> Any:
        if not isinstance(sample, dict):
            raise TypeError(f"ToTuple: expected a dict sample, got {type(sample).__name__}")
        missing = [k for k in self.keys if k not in sample]
        if missing:
            raise KeyError(f"ToTuple: the sample has no key(s) {missing}; it has {sorted(sample)}")
        return tuple(sample[k] for k in self.keys)

    def apply(self, s: dict, rng: np.random.Generator) -> None:
        raise TypeError("ToTuple must be the last transform (apply it after Compose)")
