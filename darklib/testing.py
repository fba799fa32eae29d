"""``darklib.testing.assert_close``: torch.testing's comparison, for tests written against
either library.

``assert_close(actual, expected)`` passes when the two are close elementwise
(``|actual - expected| <= atol + rtol * |expected|``, infinities equal to themselves) with
tolerances chosen by dtype, and raises an ``AssertionError`` that says how they differ
otherwise: which attribute (shape, dtype, device, stride) does not match, or how many
elements are off, the greatest absolute and relative differences and where. Tensors,
NumPy arrays and Python numbers compare with their own kind; sequences and mappings of them
compare item by item, the message naming the item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from darklib.tensor import Tensor

__all__ = ["assert_close", "make_tensor"]

# (rtol, atol) by dtype, as torch's defaults; exact for integers and bools
_TOLERANCES = {
    np.dtype(np.float16): (1e-3, 1e-5),
    np.dtype(np.float32): (1.3e-6, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-7),
    np.dtype(np.complex64): (1.3e-6, 1e-5),
    np.dtype(np.complex128): (1e-7, 1e-7),
}
_NUMBERS = (bool, int, float, complex)


def assert_close(
    actual: Any,
    expected: Any,
    *,
    allow_subclasses: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg: str | Callable[[str], str] | None = None,
) -> None:
    """Raise ``AssertionError`` unless ``actual`` and ``expected`` are close.

    Args:
        actual, expected: tensors, NumPy arrays, Python numbers, None, or (nested)
            sequences and mappings of them; each pair must be of one kind (a tensor and a
            float is a TypeError, as in torch).
        rtol, atol: the tolerances; both or neither (then by dtype: float16 1e-3/1e-5,
            float32 1.3e-6/1e-5, float64 1e-7/1e-7, integers and bools exact).
        equal_nan: NaN counts as equal to NaN.
        check_device, check_dtype, check_stride: whether those must match (without the
            dtype check both are compared in their common dtype; without the device
            check, on the CPU).
        allow_subclasses, check_layout: accepted for torch's signature (darklib has one
            tensor type and one layout).
        msg: replaces the message; a callable gets the generated one and returns it.
    """
    if (rtol is None) != (atol is None):
        raise ValueError(
            "Both 'rtol' and 'atol' must be either specified or omitted, but got no "
            f"{'atol' if atol is None else 'rtol'}."
        )
    options = {
        "rtol": rtol,
        "atol": atol,
        "equal_nan": equal_nan,
        "check_device": check_device,
        "check_dtype": check_dtype,
        "check_stride": check_stride,
    }
    problem = _compare(actual, expected, (), options)
    if problem is None:
        return
    text, path = problem
    if path:
        text += f"\n\nThe failure occurred for item {''.join(f'[{p!r}]' for p in path)}"
    if callable(msg):
        text = msg(text)
    elif msg is not None:
        text = msg
    raise AssertionError(text)


def _compare(actual: Any, expected: Any, path: tuple, options: dict) -> tuple | None:
    """None when the pair is close, otherwise (message, path of the failing item)."""
    if actual is None or expected is None:
        if actual is None and expected is None:
            return None
        return f"None mismatch: {actual!r} is not {expected!r}", path
    # NumPy scalars count as the Python numbers they hold, as in torch
    actual = actual.item() if isinstance(actual, np.generic) else actual
    expected = expected.item() if isinstance(expected, np.generic) else expected
    if isinstance(actual, Tensor) and isinstance(expected, Tensor):
        return _compare_arrays(*_tensor_pair(actual, expected, options), path, options)
    if isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray):
        return _compare_arrays(actual, expected, None, path, options)
    if isinstance(actual, _NUMBERS) and isinstance(expected, _NUMBERS):
        return _compare_numbers(actual, expected, path, options)
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            return (
                "The keys of the mappings do not match:\n"
                f"Missing keys in the actual mapping: {sorted(missing, key=repr)}\n"
                f"Additional keys in the actual mapping: {sorted(extra, key=repr)}",
                path,
            )
        for k in expected:
            found = _compare(actual[k], expected[k], (*path, k), options)
            if found is not None:
                return found
        return None
    if _is_sequence(actual) and _is_sequence(expected):
        if len(actual) != len(expected):
            return (f"The length of the sequences mismatch: {len(actual)} != {len(expected)}", path)
        for i, (a, e) in enumerate(zip(actual, expected)):
            found = _compare(a, e, (*path, i), options)
            if found is not None:
                return found
        return None
    raise TypeError(
        f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}."
    )


def _is_sequence(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, str | bytes)


def _tensor_pair(actual: Tensor, expected: Tensor, options: dict) -> tuple:
    """The two tensors' values as NumPy arrays, after the attribute checks (the first that
    fails: its message in place of the second array)."""
    checks = [("shape", actual.shape, expected.shape)]
    if options["check_device"]:
        checks.append(("device", actual.device, expected.device))
    if options["check_dtype"]:
        checks.append(("dtype", actual.dtype, expected.dtype))
    if options["check_stride"]:
        checks.append(("stride()", actual.stride(), expected.stride()))
    for name, a, e in checks:
        if a != e:
            return None, None, f"The values for attribute '{name}' do not match: {a} != {e}."
    return _host(actual), _host(expected), None


def _host(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy())


def _compare_arrays(
    actual: Any, expected: Any, attribute: str | None, path: tuple, options: dict
) -> tuple | None:
    if attribute is not None:
        return attribute, path
    if actual.shape != expected.shape:
        return (
            f"The values for attribute 'shape' do not match: {actual.shape} != {expected.shape}.",
            path,
        )
    if actual.dtype != expected.dtype:
        if options["check_dtype"]:
            return (
                f"The values for attribute 'dtype' do not match: {actual.dtype} != "
                f"{expected.dtype}.",
                path,
            )
    rtol, atol = _tolerances(actual.dtype, expected.dtype, options)
    common = np.result_type(actual.dtype, expected.dtype)
    a, e = actual.astype(common, copy=False), expected.astype(common, copy=False)
    exact = rtol == 0 and atol == 0  # ("not equal" rather than "not close", as torch)
    matches, abs_diff, rel_diff = _closeness(a, e, rtol, atol, options["equal_nan"])
    if bool(matches.all()):
        return None
    if actual.ndim == 0:
        return _scalar_message(a.item(), e.item(), abs_diff, rel_diff, rtol, atol, exact), path
    n, bad = matches.size, int((~matches).sum())
    lines = [
        f"Tensor-likes are not {'equal' if exact else 'close'}!",
        "",
        f"Mismatched elements: {bad} / {n} ({bad / n:.1%})",
    ]
    for kind, diff, tol in (("absolute", abs_diff, atol), ("relative", rel_diff, rtol)):
        at = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
        allowed = "" if exact else f" (up to {tol} allowed)"
        value = diff[at].item()
        lines.append(
            f"Greatest {kind} difference: {value} at index {tuple(int(i) for i in at)}{allowed}"
        )
    return "\n".join(lines), path


def _tolerances(a: np.dtype, b: np.dtype, options: dict) -> tuple:
    if options["rtol"] is not None:
        return options["rtol"], options["atol"]
    ra, aa = _TOLERANCES.get(np.dtype(a), (0.0, 0.0))
    rb, ab = _TOLERANCES.get(np.dtype(b), (0.0, 0.0))
    return max(ra, rb), max(aa, ab)


def _closeness(a: np.ndarray, e: np.ndarray, rtol: float, atol: float, equal_nan: bool) -> tuple:
    """Which elements match (within ``atol + rtol * |expected|``; an infinity only to
    itself), and the absolute and relative differences (0 where they match; NaN where a
    NaN does not). Integers and bools: their differences exact, the relative ones in
    float32, as torch prints them."""
    with np.errstate(all="ignore"):
        if a.dtype.kind in "biu":
            abs_diff = np.abs(a.astype(np.int64) - e.astype(np.int64))
            rel_diff = abs_diff.astype(np.float32) / np.abs(e.astype(np.float32))
            bound = atol + rtol * np.abs(e.astype(np.float64))
            matches = (a == e) | (abs_diff <= bound)
        else:
            abs_diff = np.abs(a - e)
            rel_diff = abs_diff / np.abs(e)
            # (an infinity matches only itself: its error, infinite, is never within tolerance)
            matches = (a == e) | (np.isfinite(abs_diff) & (abs_diff <= atol + rtol * np.abs(e)))
            if equal_nan:
                matches |= np.isnan(a) & np.isnan(e)
        abs_diff = np.where(matches, 0, abs_diff).astype(abs_diff.dtype)
        rel_diff = np.where(matches, 0, rel_diff).astype(rel_diff.dtype)
        return matches, abs_diff, rel_diff


def _compare_numbers(actual: Any, expected: Any, path: tuple, options: dict) -> tuple | None:
    if options["check_dtype"] and type(actual) is not type(expected):
        return (
            f"The (d)types do not match: {type(actual)} != {type(expected)}.",
            path,
        )
    if type(actual) is int and type(expected) is int and max(abs(actual), abs(expected)) >= 2**63:
        # beyond int64: compared as Python ints (exact unless tolerances are given)
        rtol, atol = _tolerances(np.dtype(np.int64), np.dtype(np.int64), options)
        diff = abs(actual - expected)
        if diff <= atol + rtol * abs(expected):
            return None
        rel = diff / abs(expected) if expected else float("inf")
        return (
            _scalar_message(
                actual,
                expected,
                np.asarray(diff, object),
                np.asarray(rel),
                rtol,
                atol,
                rtol == atol == 0,
            ),
            path,
        )
    kind = np.result_type(type(actual), type(expected))
    if kind.kind == "b":
        kind = np.dtype(np.bool_)
    a, e = np.asarray(actual, kind), np.asarray(expected, kind)
    return _compare_arrays(a, e, None, path, options)


def _scalar_message(
    actual: Any, expected: Any, abs_diff: Any, rel_diff: Any, rtol: float, atol: float, exact: bool
) -> str:
    if exact:
        return (
            f"Scalars are not equal!\n\nExpected {expected} but got {actual}.\n"
            f"Absolute difference: {abs_diff.item()}\nRelative difference: {rel_diff.item()}"
        )
    return (
        f"Scalars are not close!\n\nExpected {expected} but got {actual}.\n"
        f"Absolute difference: {abs_diff.item()} (up to {atol} allowed)\n"
        f"Relative difference: {rel_diff.item()} (up to {rtol} allowed)"
    )


# make_tensor's default value ranges, as torch's: small numbers around 0 for signed types
_DEFAULT_LOW, _DEFAULT_HIGH = -9, 10
_DEFAULT_FLOAT_HIGH = 9


def make_tensor(
    *shape: Any,
    dtype: Any,
    device: Any,
    low: float | None = None,
    high: float | None = None,
    requires_grad: bool = False,
    noncontiguous: bool = False,
    exclude_zero: bool = False,
    memory_format: Any = None,
) -> Tensor:
    """A tensor of ``shape`` filled with random values, for tests, as
    ``torch.testing.make_tensor``: floats uniform in [low, high) (default [-9, 9]),
    integers in [low, high) (default [-9, 10), [0, 10) for unsigned ones), bools either
    value; ``low`` and ``high`` are clamped to the dtype's range. ``noncontiguous`` gives a
    strided view holding the same kind of values, ``exclude_zero`` replaces zeros (by 1,
    or the smallest normal float)."""
    import math

    import darklib as dl
    from darklib import dtypes

    if len(shape) == 1 and isinstance(shape[0], Sequence):
        shape = tuple(shape[0])
    np_dt = dtypes.to_numpy_dtype(dtype)
    dt = dtypes.from_numpy_dtype(np_dt)
    floating = np_dt.kind == "f"
    if requires_grad and not floating:
        raise ValueError(
            "`requires_grad=True` is not supported for boolean and integral dtypes, but got "
            f"dtype={dt}"
        )
    if np_dt.kind == "b":
        values = dl.randint(0, 2, shape, device=device).bool()
    else:
        info = np.finfo(np_dt) if floating else np.iinfo(np_dt)
        lo = max(_DEFAULT_LOW if np_dt.kind != "u" else 0, info.min) if low is None else low
        hi_default = _DEFAULT_FLOAT_HIGH if floating else _DEFAULT_HIGH
        hi = min(hi_default, info.max) if high is None else high
        for name, v in (("low", lo), ("high", hi)):
            if math.isnan(v):
                raise ValueError(f"`{name}` cannot be NaN, but got {name}={v}")
        lo, hi = max(lo, info.min), min(hi, info.max)
        if lo > hi or (lo == hi and not floating):
            raise ValueError(f"`low` must be less than `high`, but got {lo} >= {hi}")
        if floating:
            values = dl.rand(shape, dtype=dt, device=device) * (hi - lo) + lo
        else:
            values = dl.randint(math.ceil(lo), math.ceil(hi), shape, dtype=dt, device=device)
    if exclude_zero:
        values = dl.where(values == 0, np.finfo(np_dt).tiny if floating else 1, values).to(dt)
    if noncontiguous and values.numel() > 1:
        values = values.repeat_interleave(2, dim=-1)[..., ::2]
    elif memory_format is not None:
        values = values.contiguous(memory_format=memory_format)
    return values.requires_grad_(requires_grad)
