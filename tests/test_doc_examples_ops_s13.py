"""Differential tests from PyTorch's own documentation examples.

Every docstring of a ``torch.*`` function, ``torch.Tensor`` method, ``torch.linalg.*`` and
``torch.special.*`` function that darklib also has is parsed with ``doctest.DocTestParser``;
its ``>>>`` lines form one example, run twice in a fresh namespace: once with ``torch`` bound
to PyTorch and once with ``torch`` bound to darklib (``import torch`` inside an example gives
darklib too). Random inputs are made comparable: ``torch.manual_seed(0)`` runs before each
example, and in the darklib run the random creators the examples use (randn, rand, randint,
randn_like, rand_like, randint_like, randperm, normal) return ``dl.tensor`` of torch's own
draw with the same arguments; any other darklib draw raises (``draws_refused``), so an
example cannot pass on unrelated random numbers.

After every line the two runs are compared: the line's value (an expression's value, or what
it printed: ``print`` records its arguments), every variable in the namespace, and raised
exceptions. Tensors must agree in shape, dtype (by name), ``requires_grad`` and values
(exactly for integers and booleans, ``allclose`` with NaNs equal for floats); Python scalars
in type and value; sizes, dtypes, devices as values; a line that raises in torch must raise
the same built-in exception family in darklib.

Examples that use what darklib deliberately lacks (complex numbers, bfloat16, sparse and
quantized tensors, named tensors, torch.jit/compile, CUDA, uninitialised memory from
``empty``, explicit ``Generator`` streams and random ops whose streams differ from torch's)
are skipped by rules on their source; examples whose difference is a quirk of the
documentation (a darklib API outside this scope, a printed representation) are skipped by
id with the reason. ``test_inventory`` pins the counts. Real darklib bugs not fixed here are
strict xfails named ``S13-D<n>``.
"""

from __future__ import annotations

import builtins
import contextlib
import doctest
import itertools
import math
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.random import draws_refused

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore"),  # the examples' own deprecation and beta warnings
]

# ----------------------------------------------------------------------------------------
# collection


def _docs() -> dict[str, str]:
    """id -> docstring, for every documented name darklib has (identical docstrings once)."""
    out: dict[str, str] = {}
    seen: set[str] = set()

    def add(prefix: str, tmod: Any, dmod: Any) -> None:
        for name in sorted(dir(tmod)):
            if name.startswith("_") or not hasattr(dmod, name):
                continue
            obj = getattr(tmod, name, None)
            if obj is None or isinstance(obj, types.ModuleType):
                continue
            doc = getattr(obj, "__doc__", None)
            if not isinstance(doc, str) or ">>>" not in doc or doc in seen:
                continue
            seen.add(doc)
            out[f"{prefix}.{name}"] = doc

    add("torch", torch, dl)
    add("Tensor", torch.Tensor, dl.Tensor)
    add("linalg", torch.linalg, dl.linalg)
    add("special", torch.special, dl.special)
    return out


_PARSER = doctest.DocTestParser()


def _sources(doc: str) -> list[str]:
    return [ex.source for ex in _PARSER.get_examples(doc)]


DOCS = _docs()
EXAMPLES: dict[str, list[str]] = {}
for _id, _doc in DOCS.items():
    try:
        _src = _sources(_doc)
    except ValueError:  # a docstring doctest cannot parse (bad indentation in torch's text)
        continue
    if _src:
        EXAMPLES[_id] = _src

# Lines dropped from an example (in both runs) because they use what darklib deliberately
# lacks: (reason, pattern). The rest of the example still runs; a later line that needed a
# dropped one raises NameError in both runs, which compares equal.
LINE_DROP_RULES: list[tuple[str, str]] = [
    (
        "complex numbers",
        r"complex|cfloat|cdouble|chalf|\d[jJ]\b|\.real\b|\.imag\b|view_as_real"
        r"|\bpolar\b|\.conj\(|is_conj|resolve_conj|resolve_neg|\bangle\b",
    ),
    ("CUDA/MPS only", r"cuda|\bmps\b"),
]

# Whole examples skipped by rules on their source: (reason, pattern); the first match wins.
SKIP_RULES: list[tuple[str, str]] = [
    ("bfloat16/float8", r"bfloat16|float8"),
    ("sparse", r"sparse|to_dense|\bcoo\b|_csr|_csc|_bsr|_bsc|crow_indices"),
    ("quantized", r"quantize|qint|quint|q_scale|int_repr|q_per_channel"),
    ("named tensors", r"names=|refine_names|align_to|\.rename\(|\.names\b"),
    ("jit/compile", r"torch\.jit|script|torch\.compile|_dynamo|torch\.fx|torch\.export"),
    (
        "random ops whose streams differ from torch's (no torch draw to replay)",
        r"[Gg]enerator|rng_state|multinomial|bernoulli|poisson|random_\(|exponential_|geometric_"
        r"|cauchy_|log_normal_|dropout|initial_seed|\bseed\(\)",
    ),
    ("storage/pointer internals", r"storage\(|untyped_storage|data_ptr|from_file|share_memory"),
    ("files and buffers", r"open\(|\.save\(|\.load\(|tempfile|io\.BytesIO"),
]

# Examples skipped by id: uninitialised memory shown, or a quirk of the example itself.
SKIP_IDS: dict[str, str] = {
    "torch.empty": "uninitialised memory",
    "Tensor.new_empty": "uninitialised memory",
}

# Lines (index after LINE_DROP_RULES) whose value or exception is not compared; they still
# run, and the variables after later lines are compared.
IGNORE_LINES: dict[str, dict[int, str]] = {
    "torch.sort": {8: "unstable sort: the order of equal keys' indices is unspecified"},
    "linalg.solve": {8: "float32 round-off decides allclose at atol=1e-8 (residual 3.6e-7)"},
    "torch.inference_mode": {
        4: "documented: darklib's inference_mode has no separate inference "
        "tensors, so they keep a version counter"
    },
    # lines 6-8: darklib has LU without pivoting on the CPU, which torch raises for
    "linalg.lu": {i: "pivot=False works on darklib's CPU" for i in (6, 7, 8)},
    # lines 8-11: from_dlpack takes objects with __dlpack__, not capsules (its documented
    # choice: NumPy reads legacy capsules read-only, so the memory could not be shared)
    "torch.from_dlpack": {i: "darklib's from_dlpack refuses capsules" for i in range(8, 14)},
}

# Wider float tolerances (rtol, atol) by example: 3-D convolutions sum 432 products of
# N(0, 1) numbers, so float32 outputs near zero carry absolute round-off of about 1e-4.
TOL_BY_ID: dict[str, tuple[float, float]] = {
    "torch.conv3d": (1e-5, 1e-3),
    "torch.conv_transpose3d": (1e-5, 1e-3),
}

# Strict xfails: real darklib bugs left open (id -> "S13-D<n>: ...").
XFAIL_IDS: dict[str, str] = {}


def _complete(lines: list[str]) -> list[str]:
    """Statements from lines: torch's docs sometimes continue a statement, or a def's body,
    on a new ``>>>`` line instead of ``...``; such lines are joined until they compile."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        for j in range(i, min(i + 8, len(lines))):
            src = "".join(lines[i : j + 1])
            try:
                compile(src, "<doc>", "exec")
            except SyntaxError:
                continue
            out.append(src)
            i = j + 1
            break
        else:  # never compiles: kept alone (it raises SyntaxError in both runs)
            out.append(lines[i])
            i += 1
    return out


def _lines(eid: str) -> list[str]:
    """An example's statements, without the lines LINE_DROP_RULES drop."""
    return _complete(
        [s for s in EXAMPLES[eid] if not any(re.search(p, s) for _, p in LINE_DROP_RULES)]
    )


def dropped_lines(eid: str) -> dict[str, int]:
    """reason -> how many of an example's lines were dropped for it."""
    out: dict[str, int] = {}
    for s in EXAMPLES[eid]:
        for reason, pat in LINE_DROP_RULES:
            if re.search(pat, s):
                out[reason] = out.get(reason, 0) + 1
                break
    return out


def skip_reason(eid: str) -> str | None:
    lines = _lines(eid)
    if not lines:
        return next(iter(dropped_lines(eid)))  # every line needs what darklib lacks
    src = "\n".join(lines)
    for reason, pat in SKIP_RULES:
        if re.search(pat, src):
            return reason
    return SKIP_IDS.get(eid)


# ----------------------------------------------------------------------------------------
# the darklib stand-in for ``torch``


def _tdtype(d: Any) -> Any:
    """A darklib dtype (or Python type) as torch's, for drawing torch's numbers."""
    if isinstance(d, dl.dtype):
        return getattr(torch, d.name)
    return d


def _targ(a: Any) -> Any:
    if isinstance(a, dl.Tensor):
        return torch.from_numpy(np.array(a.detach().numpy()))
    if isinstance(a, dl.dtype):
        return _tdtype(a)
    if isinstance(a, list | tuple) and not isinstance(a, dl.Size):
        return type(a)(_targ(x) for x in a) if not hasattr(a, "_fields") else a
    if isinstance(a, dl.Size):
        return tuple(a)
    return a


def _drawn(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A darklib creator that returns torch's draw for the same arguments."""

    def creator(*args: Any, **kwargs: Any) -> Any:
        requires_grad = kwargs.pop("requires_grad", False)
        kwargs.pop("device", None)
        t = fn(*[_targ(a) for a in args], **{k: _targ(v) for k, v in kwargs.items()})
        return dl.tensor(t.numpy(), requires_grad=requires_grad)

    return creator


def _manual_seed(seed: Any) -> Any:
    dl.manual_seed(seed)
    return torch.manual_seed(seed)


def _zeroed(empty: Callable[..., Any], no_grad: Callable[[], Any]) -> Callable[..., Any]:
    """``empty`` filled with zeros: examples that overwrite it agree in both runs."""

    def creator(*args: Any, **kwargs: Any) -> Any:
        t = empty(*args, **kwargs)
        with no_grad():
            t.zero_()
        return t

    return creator


class _Proxy(types.ModuleType):
    """A library under the name ``torch``, with a few names replaced."""

    def __init__(self, lib: Any):
        super().__init__("torch")
        self._lib = lib

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)


TORCH = _Proxy(torch)
TORCH.empty = _zeroed(torch.empty, torch.no_grad)
TORCH.empty_like = _zeroed(torch.empty_like, torch.no_grad)

DARK = _Proxy(dl)
for _name in (
    "randn",
    "rand",
    "randint",
    "randn_like",
    "rand_like",
    "randint_like",
    "randperm",
    "normal",
):
    setattr(DARK, _name, _drawn(getattr(torch, _name)))
DARK.manual_seed = _manual_seed
DARK.empty = _zeroed(dl.empty, dl.no_grad)
DARK.empty_like = _zeroed(dl.empty_like, dl.no_grad)


def _drawn_inplace(method: str) -> Callable[..., Any]:
    """``Tensor.uniform_``/``normal_`` for darklib, filled with torch's draw."""

    def fill(self: Any, *args: Any, **kwargs: Any) -> Any:
        t = getattr(torch.empty(tuple(self.shape), dtype=_tdtype(self.dtype)), method)(
            *args, **kwargs
        )
        with dl.no_grad():
            self.copy_(dl.tensor(t.numpy()))
        return self

    return fill


@contextlib.contextmanager
def _dark_inplace_draws() -> Iterator[None]:
    saved = {m: dl.Tensor.__dict__.get(m) for m in ("uniform_", "normal_")}
    try:
        for m in saved:
            setattr(dl.Tensor, m, _drawn_inplace(m))
        yield
    finally:
        for m, f in saved.items():
            if f is None:
                delattr(dl.Tensor, m)
            else:
                setattr(dl.Tensor, m, f)


# ----------------------------------------------------------------------------------------
# running one example


class Unsupported(Exception):
    """A value darklib deliberately cannot hold (complex, bfloat16, sparse...)."""


def _canon(v: Any, depth: int = 0) -> Any:
    """A library-neutral snapshot of a value (arrays copied)."""
    if depth > 6:
        return ("deep",)
    if isinstance(v, torch.Tensor):
        if v.is_complex() or v.dtype in (torch.bfloat16,) or v.layout != torch.strided:
            raise Unsupported(str(v.dtype))
        if v.is_quantized or any(n is not None for n in getattr(v, "names", None) or ()):
            raise Unsupported("quantized/named")
        a = v.detach().cpu().resolve_neg().numpy().copy()
        return ("T", tuple(v.shape), str(v.dtype).removeprefix("torch."), v.requires_grad, a)
    if isinstance(v, dl.Tensor):
        a = np.array(v.detach().cpu().numpy(), copy=True)
        return ("T", tuple(v.shape), v.dtype.name, v.requires_grad, a)
    if isinstance(v, torch.dtype):
        return ("dtype", str(v).removeprefix("torch."))
    if isinstance(v, dl.dtype):
        return ("dtype", v.name)
    if isinstance(v, torch.Size | dl.Size):
        return ("size", tuple(int(x) for x in v))
    if isinstance(v, torch.device | dl.device):
        return ("device", str(v))
    if isinstance(v, bool | int | float | np.generic):
        return ("py", type(v).__name__, v)
    if isinstance(v, str):
        return ("str", v.replace("darklib", "torch"))
    if v is None:
        return ("none",)
    if isinstance(v, tuple | list):
        kind = "list" if isinstance(v, list) else "tuple"
        return (kind, [_canon(x, depth + 1) for x in v])
    if isinstance(v, dict):
        return ("dict", {k: _canon(x, depth + 1) for k, x in v.items()})
    return ("other",)


def _family(cls: type) -> type:
    """The built-in exception class an error class derives from (its family)."""
    for base in cls.__mro__:
        if base.__module__ == "builtins":
            return base
    return Exception


_RECORD_SKIP = (types.ModuleType, types.FunctionType, type, types.BuiltinFunctionType)


@contextlib.contextmanager
def _global_state() -> Iterator[None]:
    """Restores the global switches examples flip (default dtype, grad mode, printing)."""
    tdt, ddt = torch.get_default_dtype(), dl.get_default_dtype()
    tgrad, dgrad = torch.is_grad_enabled(), dl.is_grad_enabled()
    tdet, ddet = (
        torch.are_deterministic_algorithms_enabled(),
        dl.are_deterministic_algorithms_enabled(),
    )
    try:
        yield
    finally:
        torch.set_default_dtype(tdt)
        dl.set_default_dtype(ddt)
        torch.set_grad_enabled(tgrad)
        dl.set_grad_enabled(dgrad)
        torch.use_deterministic_algorithms(tdet)
        dl.use_deterministic_algorithms(ddet)
        torch.set_printoptions(profile="default")
        dl.set_printoptions(profile="default")


def run_example(sources: list[str], mod: Any) -> list[Any]:
    """Runs an example's lines; returns one record per line: ('ok', value, variables) or
    ('raise', exception class, message)."""
    printed: list[Any] = []

    def fake_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if name == "torch" or name.startswith("torch."):
            if not fromlist:  # ``import torch.nn.functional`` binds ``torch``
                return mod
            obj = mod  # ``from torch.linalg import multi_dot``
            for part in name.split(".")[1:]:
                obj = getattr(obj, part)
            return obj
        return builtins.__import__(name, globals, locals, fromlist, level)

    def fake_print(*args: Any, **kwargs: Any) -> None:
        printed.append(args[0] if len(args) == 1 else args)

    bi = dict(vars(builtins))
    bi["__import__"] = fake_import
    bi["print"] = fake_print
    ns: dict[str, Any] = {"__builtins__": bi, "torch": mod, "__name__": "__doc_example__"}
    # the names torch's examples take as imported
    ns.update(
        np=np, numpy=np, math=math, itertools=itertools, F=mod.nn.functional, linalg=mod.linalg
    )
    records: list[Any] = []
    dark = mod is DARK
    refuse = draws_refused("darklib draw in a doc example") if dark else contextlib.nullcontext()
    draws = _dark_inplace_draws() if dark else contextlib.nullcontext()
    with _global_state(), refuse, draws:
        torch.manual_seed(0)
        dl.manual_seed(0)
        for src in sources:
            printed.clear()
            try:
                try:
                    code = compile(src, "<doc>", "eval")
                except SyntaxError:
                    exec(compile(src, "<doc>", "exec"), ns)
                    value = printed[0] if len(printed) == 1 else (tuple(printed) or None)
                else:
                    value = eval(code, ns)
            except Unsupported:
                raise
            except Exception as e:
                records.append(("raise", type(e), f"{type(e).__name__}: {e}"[:300]))
                continue
            vars_ = {
                k: _canon(x)
                for k, x in ns.items()
                if not k.startswith("__") and k != "torch" and not isinstance(x, _RECORD_SKIP)
            }
            records.append(("ok", _canon(value), vars_))
    return records


# ----------------------------------------------------------------------------------------
# comparison

_TOL = {"float16": (1e-3, 1e-3), "float32": (1e-5, 1e-5), "float64": (1e-7, 1e-9)}


def _value_diff(ta: np.ndarray, da: np.ndarray) -> str:
    """Where two arrays of one shape differ, briefly."""
    if ta.size <= 24:
        return f"{ta.tolist()} (torch) vs {da.tolist()} (darklib)"
    with np.errstate(all="ignore"):
        err = np.abs(ta.astype(np.float64) - da.astype(np.float64))
    err = np.where(np.isnan(err) & (np.isnan(ta) != np.isnan(da)), np.inf, np.nan_to_num(err))
    i = np.unravel_index(int(np.argmax(err)), ta.shape)
    return f"max |difference| {err[i]:.3g} at {i}: {ta[i]} (torch) vs {da[i]} (darklib)"


def diff(
    t: Any, d: Any, where: str = "value", tol: tuple[float, float] | None = None
) -> str | None:
    """None when the snapshots agree, else what differs (``tol``: (rtol, atol) for floats
    instead of the dtype's)."""
    if t[0] != d[0]:
        return f"{where}: torch {t[0]} vs darklib {d[0]} ({t!r:.200} / {d!r:.200})"
    kind = t[0]
    if kind == "T":
        _, ts, tdt, trg, ta = t
        _, ds, ddt, drg, da = d
        if ts != ds:
            return f"{where}: shape {ts} vs {ds}"
        if tdt != ddt:
            return f"{where}: dtype {tdt} vs {ddt}"
        if trg != drg:
            return f"{where}: requires_grad {trg} vs {drg}"
        if tdt in _TOL:
            rtol, atol = tol or _TOL[tdt]
            ok = np.allclose(
                da.astype(np.float64), ta.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True
            )
        else:
            ok = np.array_equal(da, ta)
        return None if ok else f"{where}: values {_value_diff(ta, da)}"
    if kind == "py":
        _, tty, tv = t
        _, dty, dv = d
        if tty != dty:
            return f"{where}: Python type {tty} vs {dty}"
        if isinstance(tv, float) and not (
            tv == dv or np.isclose(tv, dv, rtol=1e-5, atol=1e-6, equal_nan=True)
        ):
            return f"{where}: {tv} vs {dv}"
        if not isinstance(tv, float) and tv != dv:
            return f"{where}: {tv} vs {dv}"
        return None
    if kind in ("list", "tuple"):
        if len(t[1]) != len(d[1]):
            return f"{where}: length {len(t[1])} vs {len(d[1])}"
        for i, (a, b) in enumerate(zip(t[1], d[1], strict=True)):
            r = diff(a, b, f"{where}[{i}]", tol)
            if r:
                return r
        return None
    if kind == "dict":
        if t[1].keys() != d[1].keys():
            return f"{where}: keys {sorted(t[1])} vs {sorted(d[1])}"
        for k in t[1]:
            r = diff(t[1][k], d[1][k], f"{where}[{k!r}]", tol)
            if r:
                return r
        return None
    if kind == "other":
        return None
    return None if t == d else f"{where}: {t!r} vs {d!r}"


def compare(eid: str) -> str | None:
    """Runs one example in both libraries; None when they agree, else the first difference."""
    sources = _lines(eid)
    ignored = IGNORE_LINES.get(eid, {})
    tol = TOL_BY_ID.get(eid)
    ref = run_example(sources, TORCH)
    got = run_example(sources, DARK)
    for i, (src, r, g) in enumerate(zip(sources, ref, got, strict=True)):
        line = f"line {i} `{src.strip()[:120]}`"
        if i in ignored:
            continue
        if r[0] == "raise" or g[0] == "raise":
            if r[0] != g[0]:
                return (
                    f"{line}: torch {r[0]} {r[1:] if r[0] == 'raise' else ''} / "
                    f"darklib {g[0]} {g[1:] if g[0] == 'raise' else ''}"
                )
            if not issubclass(g[1], _family(r[1])):
                return f"{line}: torch raised {r[2]} / darklib {g[2]}"
            continue
        m = diff(r[1], g[1], tol=tol)
        if m:
            return f"{line}: {m}"
        if r[2].keys() != g[2].keys():
            return f"{line}: variables {sorted(r[2])} vs {sorted(g[2])}"
        for k in r[2]:
            m = diff(r[2][k], g[2][k], f"variable {k}", tol)
            if m:
                return f"{line}: {m}"
    return None


# ----------------------------------------------------------------------------------------
# tests

RUN_IDS = [e for e in EXAMPLES if skip_reason(e) is None]


def _param(eid: str) -> Any:
    if eid in XFAIL_IDS:
        return pytest.param(
            eid, id=eid, marks=pytest.mark.xfail(strict=True, reason=XFAIL_IDS[eid])
        )
    return pytest.param(eid, id=eid)


@pytest.mark.parametrize("eid", [_param(e) for e in RUN_IDS])
def test_doc_example(eid: str) -> None:
    assert compare(eid) is None, compare(eid)


def test_inventory() -> None:
    """The counts this file was written against (torch 2.13): examples found, skipped by
    reason, run; and every id the tables name still exists and runs."""
    skipped: dict[str, int] = {}
    for eid in EXAMPLES:
        reason = skip_reason(eid)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
    dropped: dict[str, int] = {}
    for eid in RUN_IDS:
        for reason, n in dropped_lines(eid).items():
            dropped[reason] = dropped.get(reason, 0) + n
    print(
        f"doc examples: {len(EXAMPLES)} found, {len(RUN_IDS)} run ({len(XFAIL_IDS)} strict "
        f"xfail), skipped {skipped}; lines dropped in run examples {dropped}"
    )
    assert len(EXAMPLES) >= 400  # 400 docstrings with examples when written
    assert len(RUN_IDS) >= 386 and sum(skipped.values()) <= 14, skipped
    assert sum(len(_lines(e)) for e in RUN_IDS) >= 1900  # statements compared
    for table in (SKIP_IDS, IGNORE_LINES, TOL_BY_ID, XFAIL_IDS):
        assert set(table) <= set(EXAMPLES), set(table) - set(EXAMPLES)
    for eid in (*IGNORE_LINES, *TOL_BY_ID, *XFAIL_IDS):
        assert eid in RUN_IDS, eid


def test_harness_sees_differences(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is not vacuous: a wrong value, a wrong dtype, a missing exception and
    a patched darklib op each make an example differ."""
    t = _canon(torch.tensor([1.0, 2.0]))
    assert diff(t, _canon(dl.tensor([1.0, 2.001]))) is not None
    assert diff(t, _canon(dl.tensor([1.0, 2.0], dtype=dl.float64))) is not None
    assert diff(_canon(torch.tensor([1, 2])), _canon(dl.tensor([1, 3]))) is not None
    assert diff(_canon(torch.Size([2])), _canon((2,))) is not None
    assert diff(t, _canon(dl.tensor([1.0, 2.0]))) is None
    assert compare("torch.cumsum") is None
    real = dl.cumsum
    monkeypatch.setattr(dl, "cumsum", lambda *a, **k: real(*a, **k) + 1)
    assert "values" in (compare("torch.cumsum") or "")
    monkeypatch.setattr(dl, "cumsum", lambda *a, **k: real(*a, **k).float())
    assert "dtype" in (compare("torch.cumsum") or "")
