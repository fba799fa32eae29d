"""PyTorch's own documentation examples, run against darklib (session 13, nn side).

Every docstring with ``>>>`` examples of a torch name that darklib also has, in torch.nn
(layers, losses, containers, Module), nn.functional, nn.init, nn.utils (rnn packing,
parametrizations, prune, stateless, weight/spectral norm), optim, lr_scheduler,
swa_utils, distributions, utils.data and autograd (functional, grad modes, Function), is
parsed with ``doctest.DocTestParser`` and run twice in lockstep, statement by statement:
once with torch and once with darklib bound to ``torch`` (``nn``, ``F``, ``init``, ``optim``,
``prune``, the defining module's names and ``import torch...`` lines map to darklib's).
torch.manual_seed(0) starts each example; darklib's random creators (randn, rand,
randint, *_like, randperm, normal, bernoulli, multinomial, poisson, the Tensor's random
fills) and nn.init's random initialisers draw torch's numbers, ``empty`` gives zeros on
both sides, and each Module an example builds gets torch's weights. Compared: the value
of every expression statement, what the example printed, and every name it bound at the
end (types, shapes, dtypes by name, values with allclose, Modules' reprs, state dicts
and gradients, optimizers' learning rates and parameters, schedulers' last lrs,
distributions' shapes), and, where torch raises, that darklib raises the same family.

Examples whose output is random inside the op (dropout, fractional pooling, RReLU, the
Transformer layers' dropout, samplers, distributions' draws) compare types, shapes and
dtypes only. Sketches that name undefined objects get a small prelude (a model, an
optimizer, a loader) or drop their placeholder lines; the rest, and what darklib
deliberately lacks (CUDA, distributed), are skipped with the reason. Findings are named
S13-N<n>: S13-N1 (fixed): ``nn.Unflatten`` kept a ``torch.Size`` (and any tuple) as a plain
tuple, so its repr differed from torch's (``unflattened_size=torch.Size([2, 5, 5])``).
"""

from __future__ import annotations

import ast
import builtins
import collections
import contextlib
import doctest
import functools
import importlib
import inspect
import io
import math
import sys
import typing
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import darklib as dl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ------------------------------------------------------------------ collection

SPACES = [
    ("torch.nn", "darklib.nn"),
    ("torch.nn.functional", "darklib.nn.functional"),
    ("torch.nn.init", "darklib.nn.init"),
    ("torch.nn.utils", "darklib.nn.utils"),
    ("torch.nn.utils.rnn", "darklib.nn.utils.rnn"),
    ("torch.nn.utils.parametrizations", "darklib.nn.utils.parametrizations"),
    ("torch.nn.utils.parametrize", "darklib.nn.utils.parametrize"),
    ("torch.nn.utils.prune", "darklib.nn.utils.prune"),
    ("torch.nn.utils.stateless", "darklib.nn.utils.stateless"),
    ("torch.optim", "darklib.optim"),
    ("torch.optim.lr_scheduler", "darklib.optim.lr_scheduler"),
    ("torch.optim.swa_utils", "darklib.optim.swa_utils"),
    ("torch.distributions", "darklib.distributions"),
    ("torch.utils.data", "darklib.utils.data"),
    ("torch.autograd", "darklib.autograd"),
    ("torch.autograd.functional", "darklib.autograd.functional"),
]


def collect() -> dict[str, tuple[str, str, str, list[str]]]:
    """Docstring examples of the torch names darklib also has: key -> the sources of its
    ``>>>`` examples in order; a docstring met under several names counts once."""
    parser = doctest.DocTestParser()
    out: dict[str, tuple[str, str, str, list[str]]] = {}
    seen: set[str] = set()
    for tmod, dmod in SPACES:
        T = importlib.import_module(tmod)
        D = importlib.import_module(dmod)
        for name in sorted(dir(T)):
            if name.startswith("_") or not hasattr(D, name):
                continue
            obj = getattr(T, name)
            if inspect.ismodule(obj) or not getattr(obj, "__module__", "").startswith("torch"):
                continue
            docs = [(f"{tmod}.{name}", getattr(obj, "__doc__", None))]
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if not attr.startswith("_") and hasattr(getattr(D, name), attr):
                        docs.append((f"{tmod}.{name}.{attr}", getattr(value, "__doc__", None)))
            for key, doc in docs:
                if not isinstance(doc, str) or ">>>" not in doc:
                    continue
                sources = group([_complete(e) for e in parser.get_examples(inspect.cleandoc(doc))])
                text = "".join(sources)
                if sources and text not in seen:
                    seen.add(text)
                    out[key] = (tmod, dmod, obj.__module__, sources)
    return out


def group(lines: list[str]) -> list[str]:
    """Whole statements from doctest's examples: torch's docs often write a block's body
    (and a call's further lines) with ``>>>`` instead of ``...``."""
    out: list[str] = []
    for line in lines:
        if out and (line[:1].isspace() or not _parses(out[-1])):
            out[-1] += line
        else:
            out.append(line)
    return out


def _complete(example: doctest.Example) -> str:
    """The source of one ``>>>`` line with the continuation lines torch's docs sometimes
    write without ``...`` (doctest reads them as the expected output)."""
    want = example.want.splitlines(keepends=True)
    for i in range(len(want) + 1):
        if _parses(example.source + "".join(want[:i])):
            return example.source + "".join(want[:i])
    return example.source


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
    except SyntaxError:
        return False
    return True


# ------------------------------------------------------------------ conversions


def dtype_to_torch(d: Any) -> Any:
    if isinstance(d, dl.dtype):
        return getattr(torch, str(d).split(".")[-1])
    return d


def to_torch(obj: Any) -> Any:
    if isinstance(obj, dl.Tensor):
        t = torch.from_numpy(np.array(obj.detach().cpu().numpy()))
        return t.requires_grad_(obj.requires_grad) if t.is_floating_point() else t
    if isinstance(obj, dl.dtype):
        return dtype_to_torch(obj)
    if isinstance(obj, (list, tuple)):
        return (
            type(obj)(to_torch(o) for o in obj) if not isinstance(obj, dl.Size) else torch.Size(obj)
        )
    if isinstance(obj, dict):
        return {k: to_torch(v) for k, v in obj.items()}
    return obj


def to_dl(t: torch.Tensor, requires_grad: bool = False) -> dl.Tensor:
    return dl.tensor(t.detach().numpy().copy(), requires_grad=requires_grad)


_CREATORS = [
    "empty",
    "empty_like",
    "randn",
    "rand",
    "randint",
    "randn_like",
    "rand_like",
    "randint_like",
    "randperm",
    "normal",
    "bernoulli",
    "multinomial",
    "poisson",
]
_METHODS = [
    "uniform_",
    "normal_",
    "random_",
    "bernoulli_",
    "exponential_",
    "cauchy_",
    "geometric_",
    "log_normal_",
]
_INITS = [
    "uniform_",
    "normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "trunc_normal_",
    "orthogonal_",
    "sparse_",
]
_DROP = ("generator", "device", "out", "layout", "pin_memory")


def _torch_kwargs(kwargs: dict) -> dict:
    return {k: to_torch(v) for k, v in kwargs.items() if k not in _DROP}


def _creator(name: str):
    def draw(*args: Any, **kwargs: Any) -> dl.Tensor:
        rg = bool(kwargs.pop("requires_grad", False))
        t = getattr(torch, _ZEROED.get(name, name))(*to_torch(args), **_torch_kwargs(kwargs))
        return to_dl(t, rg)

    return draw


def _method(name: str):
    def fill(self: dl.Tensor, *args: Any, **kwargs: Any) -> dl.Tensor:
        t = to_torch(self).detach()
        getattr(t, name)(*to_torch(args), **_torch_kwargs(kwargs))
        with dl.no_grad():
            self.copy_(dl.tensor(t.numpy()))
        return self

    return fill


def _init(name: str):
    def init(tensor: dl.Tensor, *args: Any, **kwargs: Any) -> dl.Tensor:
        t = to_torch(tensor).detach()
        getattr(torch.nn.init, name)(t, *to_torch(args), **_torch_kwargs(kwargs))
        with dl.no_grad():
            tensor.copy_(dl.tensor(t.numpy()))
        return tensor

    return init


_ZEROED = {"empty": "zeros", "empty_like": "zeros_like"}


@contextlib.contextmanager
def zeroed_empty():
    """torch's uninitialised ``empty`` made deterministic: zeros (darklib's run draws them
    through torch too)."""
    saved = torch.empty, torch.empty_like
    torch.empty, torch.empty_like = torch.zeros, torch.zeros_like
    try:
        yield
    finally:
        torch.empty, torch.empty_like = saved


@contextlib.contextmanager
def torch_draws():
    """darklib's random creators, fills and initialisers draw torch's numbers meanwhile."""
    saved = []
    for name in _CREATORS:
        saved.append((dl, name, getattr(dl, name)))
        setattr(dl, name, _creator(name))
    for name in _METHODS:
        saved.append((dl.Tensor, name, getattr(dl.Tensor, name)))
        setattr(dl.Tensor, name, _method(name))
    for name in _INITS:
        saved.append((dl.nn.init, name, getattr(dl.nn.init, name)))
        setattr(dl.nn.init, name, _init(name))
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def _dl_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and (name == "torch" or name.startswith("torch.")):
        name = "darklib" + name[5:]
    return builtins.__import__(name, globals, locals, fromlist, level)


_ALIASES = {
    "nn": "nn",
    "F": "nn.functional",
    "init": "nn.init",
    "optim": "optim",
    "prune": "nn.utils.prune",
    "parametrize": "nn.utils.parametrize",
    "D": "distributions",
    "lr_scheduler": "optim.lr_scheduler",
}
_SHARED = {
    "math": math,
    "namedtuple": collections.namedtuple,
    "List": list,
    "Iterator": typing.Iterator,
    "Optional": typing.Optional,
}
_DL_HOMES = [
    "",
    "nn",
    "nn.utils",
    "nn.utils.parametrizations",
    "nn.utils.rnn",
    "optim",
    "optim.lr_scheduler",
    "optim.swa_utils",
    "distributions",
    "utils.data",
    "autograd",
    "autograd.functional",
    "nn.functional",
    "nn.init",
]


def _dotted(root: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        root = getattr(root, part)
    return root


def namespaces(tmod: str, dmod: str, home: str) -> tuple[dict, dict]:
    """The globals of the example in torch and in darklib: as doctest, the names of the
    module that defines the documented object and of the namespace that exports it, plus
    the usual aliases; darklib's side binds the darklib object of each name it has."""
    names: dict[str, Any] = {}
    for modname in (home, tmod):
        mod = sys.modules.get(modname)
        if mod is not None:
            names.update({k: v for k, v in vars(mod).items() if not k.startswith("_")})
    tns = dict(names)
    tns.update(_SHARED)
    tns.update({"torch": torch, "__name__": "__doc__"})
    tns.update({k: _dotted(torch, v) for k, v in _ALIASES.items()})
    D = importlib.import_module(dmod)
    homes = [D] + [_dotted(dl, h) for h in _DL_HOMES]
    dns: dict[str, Any] = {}
    for k, v in names.items():
        if inspect.ismodule(v) and not v.__name__.startswith("torch"):
            dns[k] = v  # math, warnings, ...: shared
            continue
        for h in homes:
            if hasattr(h, k):
                dns[k] = getattr(h, k)
                break
    b = dict(vars(builtins))
    b["__import__"] = _dl_import
    dns.update(_SHARED)
    dns.update({"torch": dl, "__builtins__": b, "__name__": "__doc__"})
    dns.update({k: _dotted(dl, v) for k, v in _ALIASES.items()})
    return tns, dns


# ------------------------------------------------------------------ comparison

FAMILIES = (
    OSError,
    NotImplementedError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    AssertionError,
    StopIteration,
    RuntimeError,
)


def family(exc: BaseException) -> type:
    for f in FAMILIES:
        if isinstance(exc, f):
            return f
    return Exception


def _scale(a: np.ndarray) -> float:
    """The tolerance's scale: the largest finite magnitude, at least 1 (sums of large
    terms lose absolute precision near zero)."""
    finite = np.abs(a[np.isfinite(a)])
    return max(1.0, float(finite.max(initial=0.0)))


def compare(
    t: Any,
    d: Any,
    what: str,
    rtol: float,
    atol: float,
    out: list[str],
    depth=0,
    values: bool = True,
) -> None:
    """Appends to ``out`` how darklib's ``d`` differs from torch's ``t``: types, shapes,
    dtypes and (``values``) the values, recursively through containers and modules."""
    if depth > 6:
        return
    sub = functools.partial(compare, rtol=rtol, atol=atol, out=out, depth=depth + 1, values=values)
    if isinstance(t, torch.Tensor):
        if not isinstance(d, dl.Tensor):
            out.append(f"{what}: darklib gave {type(d).__name__}, torch a Tensor")
            return
        if tuple(t.shape) != tuple(d.shape):
            out.append(f"{what}: shape {tuple(d.shape)} != torch {tuple(t.shape)}")
            return
        if str(t.dtype).split(".")[-1] != str(d.dtype).split(".")[-1]:
            out.append(f"{what}: dtype {d.dtype} != torch {t.dtype}")
            return
        if t.requires_grad != d.requires_grad:
            out.append(f"{what}: requires_grad {d.requires_grad} != torch {t.requires_grad}")
        if t.is_complex() or t.layout != torch.strided or not values:
            return
        if t.is_leaf and t.grad is not None:
            sub(t.grad, d.grad, f"{what}.grad")
        a = t.detach().numpy()
        b = np.asarray(d.detach().cpu().numpy())
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.inexact):
            if not np.array_equal(a, b):
                out.append(
                    f"{what}: values differ (exact)\n torch {a.ravel()[:8]}\n dl    {b.ravel()[:8]}"
                )
        elif not np.allclose(b, a, rtol=rtol, atol=atol * _scale(a), equal_nan=True):
            err = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))
            out.append(
                f"{what}: values differ (max abs {err:.3g})\n"
                f" torch {a.ravel()[:6]}\n dl    {b.ravel()[:6]}"
            )
        return
    if isinstance(t, torch.dtype):
        if str(t).split(".")[-1] != str(d).split(".")[-1]:
            out.append(f"{what}: {d} != torch {t}")
        return
    if isinstance(t, torch.Size):
        if tuple(t) != tuple(d):
            out.append(f"{what}: size {tuple(d)} != torch {tuple(t)}")
        return
    if isinstance(t, (bool, int, float, str, type(None))):
        if not values and type(t) in (int, float) and isinstance(d, (int, float)):
            return
        if isinstance(t, float) and isinstance(d, (float, int)) and not isinstance(d, bool):
            if not math.isclose(t, d, rel_tol=rtol, abs_tol=atol) and not (
                math.isnan(t) and math.isnan(d)
            ):
                out.append(f"{what}: {d!r} != torch {t!r}")
        elif type(t) is not type(d) and not (isinstance(t, int) and isinstance(d, int)):
            out.append(f"{what}: {type(d).__name__} {d!r} != torch {type(t).__name__} {t!r}")
        elif t != d:
            out.append(f"{what}: {d!r} != torch {t!r}")
        return
    if isinstance(t, (list, tuple)):
        if not isinstance(d, (list, tuple)) or len(t) != len(d):
            out.append(
                f"{what}: {type(d).__name__} of {len(d) if hasattr(d, '__len__') else '?'}"
                f" != torch {type(t).__name__} of {len(t)}"
            )
            return
        fields = getattr(t, "_fields", None)
        for i, (a, b) in enumerate(zip(t, d)):
            sub(a, b, f"{what}.{fields[i]}" if fields else f"{what}[{i}]")
        return
    if isinstance(t, dict):
        if not isinstance(d, dict):
            out.append(f"{what}: {type(d).__name__} != torch dict")
            return
        if [str(k) for k in t] != [str(k) for k in d]:
            out.append(f"{what}: keys {list(d)[:8]} != torch {list(t)[:8]}")
            return
        for (k, a), b in zip(t.items(), d.values()):
            sub(a, b, f"{what}[{k!r}]")
        return
    if isinstance(t, torch.nn.Module):
        if type(t).__name__ != type(d).__name__:
            out.append(f"{what}: {type(d).__name__} != torch {type(t).__name__}")
            return
        if not type(t).__module__.startswith("torch"):
            sub(t.state_dict(), d.state_dict(), f"{what}.state_dict()")
            return
        if repr(t) != repr(d).replace("darklib.", "torch."):
            out.append(f"{what}: repr\n {repr(d)[:300]}\n != torch\n {repr(t)[:300]}")
        sub(dict(t.state_dict()), dict(d.state_dict()), f"{what}.state_dict()")
        if values:
            dparams = dict(d.named_parameters())
            for name, p in t.named_parameters():
                if p.grad is not None:
                    sub(
                        p.grad,
                        getattr(dparams.get(name), "grad", "<no parameter>"),
                        f"{what}.{name}.grad",
                    )
        return
    if isinstance(t, torch.distributions.Distribution):
        if type(t).__name__ != type(d).__name__:
            out.append(f"{what}: {type(d).__name__} != torch {type(t).__name__}")
            return
        sub(t.batch_shape, d.batch_shape, f"{what}.batch_shape")
        sub(t.event_shape, d.event_shape, f"{what}.event_shape")
        return
    if isinstance(t, torch.optim.Optimizer):
        sub([g["lr"] for g in t.param_groups], [g["lr"] for g in d.param_groups], f"{what} lrs")
        sub(
            [p for g in t.param_groups for p in g["params"]],
            [p for g in d.param_groups for p in g["params"]],
            f"{what} params",
        )
    if isinstance(t, torch.optim.lr_scheduler.LRScheduler):
        sub(t.get_last_lr(), d.get_last_lr(), f"{what}.get_last_lr()")
    mod = type(t).__module__ or ""
    if mod.startswith("torch") and not isinstance(t, (type, torch.device)):
        if type(t).__name__ != type(d).__name__:
            out.append(f"{what}: {type(d).__name__} != torch {type(t).__name__}")


# ------------------------------------------------------------------ lockstep run


def _module_names(ns: dict) -> dict:
    return {k: id(v) for k, v in ns.items() if isinstance(v, torch.nn.Module)}


def _sync_modules(tns: dict, dns: dict, before: dict) -> None:
    """Each name a statement bound to a torch Module gets torch's values in darklib's."""
    for k, v in tns.items():
        if not isinstance(v, torch.nn.Module) or before.get(k) == id(v):
            continue
        d = dns.get(k)
        if not isinstance(d, dl.nn.Module):
            continue
        dsd = d.state_dict()
        with dl.no_grad():
            for key, value in v.state_dict().items():
                if key in dsd and tuple(dsd[key].shape) == tuple(value.shape):
                    dsd[key].copy_(dl.tensor(value.detach().numpy().copy()).to(dsd[key].dtype))


def _is_placeholder(tree: ast.Module) -> bool:
    """``loader, optimizer, model = ...``: the documentation's "given these"; the prelude
    binds them."""
    return (
        len(tree.body) == 1
        and isinstance(tree.body[0], ast.Assign)
        and isinstance(tree.body[0].value, ast.Constant)
        and tree.body[0].value.value is Ellipsis
    )


def _run_example(
    tmod: str,
    dmod: str,
    home: str,
    sources: list[str],
    rtol: float = 1e-4,
    atol: float = 1e-5,
    values: bool = True,
    ignore: tuple[str, ...] = (),
    prelude: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    postlude: tuple[str, ...] = (),
) -> dict:
    """Runs one example in torch and in darklib, statement by statement in lockstep.

    Before darklib runs a statement, torch's generator goes back to where it stood before
    torch ran it, and darklib's random creators draw through torch: both sides see the
    same numbers. A statement that binds a name to a new Module copies torch's state into
    darklib's. Compared: each expression statement's value, what each printed, and at the
    end every name the example bound (``values=False``: types, shapes and dtypes only, for
    examples whose results are random inside the op). Returns ``torch_error`` (torch
    could not run the example: an undefined name, CUDA), ``diffs``, ``statements`` and
    ``compared`` (how many values and printouts were compared)."""
    torch.manual_seed(0)
    dl.manual_seed(0)
    tns, dns = namespaces(tmod, dmod, home)
    initial = set(tns)
    diffs: list[str] = []
    result: dict[str, Any] = {"torch_error": None, "diffs": diffs, "statements": 0, "compared": 0}
    for src in list(prelude) + list(sources) + list(postlude):
        tree = ast.parse(src)
        if _is_placeholder(tree) or any(src.startswith(d) for d in drop):
            continue
        is_expr = len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
        code = compile(src, "<doc>", "eval" if is_expr else "exec")
        before = _module_names(tns)
        state = torch.get_rng_state()
        texc = dexc = None
        tval = dval = None
        tout, dout = io.StringIO(), io.StringIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with zeroed_empty(), contextlib.redirect_stdout(tout):
                    tval = eval(code, tns) if is_expr else exec(code, tns)
            except BaseException as e:
                texc = e
            after = torch.get_rng_state()
            torch.set_rng_state(state)
            try:
                with torch_draws(), contextlib.redirect_stdout(dout):
                    dval = eval(code, dns) if is_expr else exec(code, dns)
            except BaseException as e:
                dexc = e
            torch.set_rng_state(after)
        if tout.getvalue():
            result["compared"] += 1
            printed = dout.getvalue().replace("darklib.tensor.Tensor", "torch.Tensor")
            if printed.replace("darklib.", "torch.") != tout.getvalue():
                diffs.append(
                    f"[{src.strip()[:70]}] printed\n{printed[:400]}\n"
                    f"!= torch\n{tout.getvalue()[:400]}"
                )
        result["statements"] += 1
        line = src.strip().splitlines()[0][:70]
        if texc is not None:
            if (
                isinstance(texc, (NameError, ImportError))
                or "CUDA" in str(texc)
                or "cuda" in str(texc)
            ):
                result["torch_error"] = f"{type(texc).__name__}: {texc}"[:200]
                return result
            if dexc is None:
                diffs.append(
                    f"[{line}] torch raised {type(texc).__name__}: {str(texc)[:120]};"
                    " darklib did not"
                )
            elif family(dexc) is not family(texc):
                diffs.append(
                    f"[{line}] darklib raised {type(dexc).__name__}: {str(dexc)[:120]};"
                    f" torch {type(texc).__name__}: {str(texc)[:120]}"
                )
            continue
        if dexc is not None:
            diffs.append(f"[{line}] darklib raised {type(dexc).__name__}: {str(dexc)[:300]}")
            return result
        _sync_modules(tns, dns, before)
        if is_expr:
            compare(tval, dval, f"[{line}]", rtol, atol, diffs, values=values)
            result["compared"] += 1
    for k, v in tns.items():
        if k in ignore or k.startswith("__") or inspect.ismodule(v):
            continue
        if (k in initial and tns[k] is v) or inspect.isfunction(v) or inspect.isclass(v):
            continue
        compare(v, dns.get(k, "<unbound>"), k, rtol, atol, diffs, values=values)
        result["compared"] += 1
    return result


# ------------------------------------------------------------------ per-example set-up

# the objects the optimizer and scheduler examples take as given
TRAIN = (
    "model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))\n",
    "input, target = torch.randn(6, 4), torch.randn(6, 2)\n",
    "loss_fn = nn.MSELoss()\n",
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.05)\n",
    "loader = [(input[:3], target[:3]), (input[3:], target[3:])]\n",
    "train = validate = train_batch = lambda *args, **kwargs: 1.0\n",
)
# results random inside the op: compared by type, shape and dtype
RANDOM = {
    "torch.nn.AlphaDropout",
    "torch.nn.Dropout",
    "torch.nn.Dropout1d",
    "torch.nn.Dropout2d",
    "torch.nn.Dropout3d",
    "torch.nn.FeatureAlphaDropout",
    "torch.nn.FractionalMaxPool2d",
    "torch.nn.FractionalMaxPool3d",
    "torch.nn.RReLU",
    "torch.nn.Transformer",
    "torch.nn.TransformerDecoder",
    "torch.nn.TransformerDecoderLayer",
    "torch.nn.TransformerEncoder",
    "torch.nn.TransformerEncoderLayer",
    "torch.nn.functional.fractional_max_pool2d",
    "torch.nn.functional.fractional_max_pool3d",
    "torch.nn.functional.gumbel_softmax",
    "torch.nn.utils.prune.is_pruned",
    "torch.utils.data.WeightedRandomSampler",
}
# ``model``/``self``/``module`` of Module's method examples
MODEL = (
    "model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))\n",
    "self = module = model\n",
)
_FOLD_SKETCH = (
    "fold_params =",
    "fold = nn.Fold(output_size=...",
    "unfold = nn.Unfold(**",
    "input_ones =",
    "divisor =",
)
OPTIONS = {
    "torch.nn.Fold": {"drop": _FOLD_SKETCH},
    "torch.nn.Unfold": {"drop": _FOLD_SKETCH},
    "torch.nn.Module.to": {
        "drop": (
            "gpu1",
            "linear.to(gpu1",
            "linear = nn.Linear(2, 2, bias=None).to(torch.cdouble)",
            "linear(torch.ones(3, 2, dtype=torch.cdouble))",
        )
    },
    "torch.utils.data.default_collate": {
        "drop": ("default_collate_fn_map", "default_collate(batch)")
    },
    "torch.nn.Transformer.forward": {
        "prelude": (
            "transformer_model = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1,"
            " num_decoder_layers=1, dim_feedforward=32, dropout=0.0)\n",
            "src, tgt = torch.randn(5, 3, 16), torch.randn(4, 3, 16)\n",
            "src_mask = nn.Transformer.generate_square_subsequent_mask(5)\n",
            "tgt_mask = nn.Transformer.generate_square_subsequent_mask(4)\n",
        )
    },
    "torch.nn.Module.parameters": {"prelude": MODEL},
    "torch.nn.Module.named_parameters": {"prelude": MODEL},
    "torch.nn.Module.buffers": {"prelude": MODEL},
    "torch.nn.Module.named_buffers": {"prelude": MODEL},
    "torch.nn.Module.named_children": {"prelude": MODEL},
    "torch.nn.Module.state_dict": {"prelude": MODEL},
    "torch.nn.MultiheadAttention": {
        "prelude": (
            "embed_dim, num_heads = 8, 2\n",
            "query = torch.randn(5, 3, 8)\n",
            "key, value = torch.randn(4, 3, 8), torch.randn(4, 3, 8)\n",
        )
    },
    # darklib's inference_mode is no_grad without separate inference tensors (documented)
    "torch.autograd.inference_mode": {"drop": ("y._version",)},
    # examples that only define a class: use it
    "torch.autograd.Function": {
        "prelude": ("input = torch.randn(3, requires_grad=True)\n",),
        "postlude": ("output.sum().backward()\n", "input.grad\n"),
    },
    "torch.utils.data.Sampler": {
        "postlude": (
            "data = ['abc', 'a', 'abcde', 'ab']\n",
            "list(AccedingSequenceLengthSampler(data))\n",
            "list(AccedingSequenceLengthBatchSampler(data, 2))\n",
        )
    },
    "torch.optim.lr_scheduler.LambdaLR": {
        "prelude": (
            *TRAIN,
            "opt = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)\n",
            "optimizer = torch.optim.SGD([{'params': [nn.Parameter(torch.zeros(2))]},"
            " {'params': [nn.Parameter(torch.zeros(3))]}], lr=0.1)\n",
        )
    },
    "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.step": {
        "prelude": (
            *TRAIN,
            "T_0, T_mult = 10, 2\n",
            "dataloader = [{'inputs': input[:3], 'labels': target[:3]},"
            " {'inputs': input[3:], 'labels': target[3:]}]\n",
            "net, criterion = model, loss_fn\n",
        )
    },
    # torch's unpad_sequence transposes its input in place (a side effect, not its result)
    "torch.nn.utils.rnn.unpad_sequence": {"ignore": ("padded_sequences",)},
}

# not run: what the example needs, or what it lacks
SKIP = {
    "torch.nn.DataParallel": "CUDA-only (device_ids=[0, 1, 2])",
    "torch.nn.functional.scaled_dot_product_attention": "CUDA-only (float16 flash kernels)",
    "torch.nn.SyncBatchNorm": "distributed (process groups)",
    "torch.nn.SyncBatchNorm.convert_sync_batchnorm": "distributed and CUDA-only",
    "torch.utils.data.DistributedSampler": "distributed",
    "torch.nn.Module.register_buffer": "incomplete sketch (a line from inside a Module's __init__)",
    "torch.nn.utils.stateless.functional_call": "incomplete sketch (Foo only described)",
    "torch.utils.data.StackDataset": "incomplete sketch (ImageDataset, TextDataset undefined)",
    "torch.distributions.Poisson": "torch's own example raises (no poisson_cpu for int64)",
}

# real darklib differences pinned until fixed: key -> "S13-N<n>: ..."
XFAIL: dict[str, str] = {}

EXAMPLES = collect()


def _options(key: str) -> dict:
    opts = dict(OPTIONS.get(key, {}))
    if key in RANDOM or key.startswith("torch.distributions."):
        opts["values"] = False
    if key.startswith("torch.optim"):
        opts.setdefault("prelude", TRAIN)
    return opts


def run_example(*args: Any, **kwargs: Any) -> dict:
    """:func:`_run_example`, with both libraries' grad mode restored afterwards (torch's
    own set_grad_enabled example switches it off for good, and later tests would run
    without gradients)."""
    modes = torch.is_grad_enabled(), dl.is_grad_enabled()
    try:
        return _run_example(*args, **kwargs)
    finally:
        torch.set_grad_enabled(modes[0])
        dl.set_grad_enabled(modes[1])


def _params() -> list:
    params = []
    for key in EXAMPLES:
        marks = []
        if key in SKIP:
            marks.append(pytest.mark.skip(reason=SKIP[key]))
        elif key in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[key]))
        params.append(pytest.param(key, id=key.removeprefix("torch."), marks=marks))
    return params


@pytest.mark.parametrize("key", _params())
def test_doc_example_matches_torch(key: str) -> None:
    result = run_example(*EXAMPLES[key], **_options(key))
    assert result["torch_error"] is None, f"torch cannot run it: {result['torch_error']}"
    assert not result["diffs"], "\n".join(result["diffs"])
    assert result["compared"] > 0, "nothing was compared"


def test_inventory_of_examples() -> None:
    # the tables name examples that exist, and torch 2.13's docs give this many (a new
    # torch brings new examples to classify)
    assert len(EXAMPLES) == 302
    for table in (SKIP, XFAIL, OPTIONS, RANDOM):
        assert set(table) <= set(EXAMPLES), set(table) - set(EXAMPLES)
    assert not set(SKIP) & set(XFAIL)
    assert sum(len(v[3]) for v in EXAMPLES.values()) > 1000


def test_lockstep_runner_sees_a_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    # the comparison is live: a darklib ReLU that doubles its output, a wrong gain and an
    # MSELoss that sums are each caught
    import darklib.nn.functional as DF

    relu = DF.relu
    monkeypatch.setattr(DF, "relu", lambda x, inplace=False: relu(x) * 2)
    assert run_example(*EXAMPLES["torch.nn.ReLU"])["diffs"]
    monkeypatch.setattr(dl.nn.init, "calculate_gain", lambda *a, **k: 1.0)
    assert run_example(*EXAMPLES["torch.nn.init.calculate_gain"])["diffs"]
    mse = DF.mse_loss
    monkeypatch.setattr(DF, "mse_loss", lambda x, y, **kw: mse(x, y, reduction="sum"))
    assert run_example(*EXAMPLES["torch.nn.MSELoss"])["diffs"]


def test_unflatten_keeps_the_size_it_was_given() -> None:
    # S13-N1: darklib turned a Size (and any tuple subclass) into a plain tuple
    size = dl.Size([2, 5, 5])
    m = dl.nn.Unflatten(1, size)
    assert m.unflattened_size is size
    assert repr(m) == "Unflatten(dim=1, unflattened_size=darklib.Size([2, 5, 5]))"
    assert repr(dl.nn.Unflatten(1, [2, 5])) == repr(torch.nn.Unflatten(1, [2, 5]))
    assert repr(dl.nn.Unflatten(1, (2, 5))) == repr(torch.nn.Unflatten(1, (2, 5)))
    assert tuple(m(dl.zeros(3, 50)).shape) == (3, 2, 5, 5)
