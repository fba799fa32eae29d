"""torch's module paths, for code that imports from them: ``from torch.nn.modules.batchnorm
import _BatchNorm``, ``from torch.optim.adamw import AdamW``, ``from torch.distributions.beta
import Beta``, ``from torch.nn.utils.clip_grad import clip_grad_norm_``.

darklib groups its files differently from torch (darklib/nn/normalization.py holds what
torch spreads over batchnorm.py, instancenorm.py and normalization.py), so each of these
paths is a small module that looks names up where darklib keeps them: first the package's
public names (``darklib.nn`` for ``darklib.nn.modules.conv``), then, for torch's private
base classes (``_BatchNorm``, ``_ConvNd``, ``_Loss``) and classes torch keeps out of the
package's namespace (``LazyModuleMixin``), the package's own files. (Private functions are
not looked up: darklib's helpers of the same names take other arguments;
``torch.nn.modules.utils``'s are in darklib/nn/module_utils.py.)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# torch path prefix -> (the darklib package whose names it shows, torch's file names there)
PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "darklib.nn.modules": (
        "darklib.nn",
        (
            "activation",
            "adaptive",
            "batchnorm",
            "channelshuffle",
            "container",
            "conv",
            "distance",
            "dropout",
            "flatten",
            "fold",
            "instancenorm",
            "lazy",
            "linear",
            "loss",
            "normalization",
            "padding",
            "pixelshuffle",
            "pooling",
            "rnn",
            "sparse",
            "transformer",
            "upsampling",
        ),
    ),
    "darklib.nn.utils": (
        "darklib.nn.utils",
        ("clip_grad", "convert_parameters", "spectral_norm", "weight_norm"),
    ),
    "darklib.optim": ("darklib.optim", ("adadelta", "adamax", "adamw", "nadam", "radam")),
    "darklib.autograd": ("darklib.autograd", ("variable",)),
    "darklib.distributions": (
        "darklib.distributions",
        (
            "beta",
            "binomial",
            "chi2",
            "fishersnedecor",
            "geometric",
            "gumbel",
            "half_cauchy",
            "half_normal",
            "inverse_gamma",
            "kumaraswamy",
            "log_normal",
            "logistic_normal",
            "negative_binomial",
            "one_hot_categorical",
            "pareto",
            "relaxed_bernoulli",
            "relaxed_categorical",
            "studentT",
            "weibull",
        ),
    ),
}


# torch paths that are one real darklib module
MODULES = {
    "darklib.nn.modules.module": "darklib.nn.module",
    "darklib.nn.modules.utils": "darklib.nn.module_utils",
    "darklib.autograd.grad_mode": "darklib.grad_mode",
}


class TorchPath(types.ModuleType):
    """One of torch's module paths: attribute lookups go to the darklib package ``home``
    (public names), then to the files of that package (private names)."""

    def __init__(self, name: str, home: str) -> None:
        super().__init__(name, f"torch's {name.replace('darklib', 'torch', 1)}, in darklib.")
        self._home = home

    def __getattr__(self, name: str) -> Any:
        home = sys.modules[self._home]
        if name == "__all__":  # (``from path import *``: the package's names, no modules)
            names = getattr(home, "__all__", None) or dir(home)
            return [
                n
                for n in names
                if not n.startswith("_") and not isinstance(getattr(home, n), types.ModuleType)
            ]
        if name.startswith("__"):
            raise AttributeError(name)
        if not name.startswith("_") and hasattr(home, name):
            return getattr(home, name)
        if name.lstrip("_")[:1].isupper():  # a class kept out of the package's namespace
            prefix = self._home + "."
            for key in sorted(sys.modules):  # (a fixed order: the same class every time)
                mod = sys.modules[key]
                if key.startswith(prefix) and not isinstance(mod, TorchPath):
                    value = vars(mod).get(name)
                    # (one of the package's classes: not typing's, nor another package's)
                    if isinstance(value, type) and value.__module__.startswith(prefix):
                        return value
        raise AttributeError(
            f"module {self.__name__!r} has no attribute {name!r}: darklib has no {name}"
        )

    def __dir__(self) -> list[str]:
        return [n for n in dir(sys.modules[self._home]) if not n.startswith("__")]


def install() -> None:
    """Register every path in :data:`PATHS` (called once darklib has loaded its packages);
    a path that is a real darklib module already is left alone."""
    for prefix, (home, names) in PATHS.items():
        parent = sys.modules.get(prefix)
        if parent is None:  # darklib.nn.modules itself: torch.nn.modules shows the layers
            _register(prefix, TorchPath(prefix, home))
        for name in names:
            full = f"{prefix}.{name}"
            if full not in sys.modules:
                _register(full, TorchPath(full, home))
    for full, real in MODULES.items():
        _register(full, importlib.import_module(real))


def _register(full: str, module: types.ModuleType) -> None:
    sys.modules[full] = module
    head, _, name = full.rpartition(".")
    parent = sys.modules[head]
    # as in torch, a function of the same name keeps the attribute (nn.utils.spectral_norm
    # is the function; ``import torch.nn.utils.spectral_norm`` still finds the module)
    if name not in vars(parent):
        setattr(parent, name, module)
