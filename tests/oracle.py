"""Test helpers: compare darklib against PyTorch, and gradients against finite differences.

Every op test goes through :func:`compare` (forward and every input gradient against
torch, on any device) and :func:`gradcheck` (float64 central differences).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

import darklib as dl

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")),
]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def to_np(x: Any) -> Any:
    if isinstance(x, dl.Tensor):
        return np.asarray(x.detach().cpu().numpy())
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _flat(out: Any) -> list:
    if isinstance(out, tuple | list):
        return [o for x in out for o in _flat(x)]
    return [out]


def assert_close(
    actual: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4, what: str = "value"
) -> None:
    a, e = to_np(actual), to_np(expected)
    assert np.shape(a) == np.shape(e), f"{what}: shape {np.shape(a)} != torch's {np.shape(e)}"
    np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=what)


def compare(
    dl_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    *arrays: np.ndarray,
    grad: Sequence[bool] | bool = True,
    device: str = "cpu",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 1,
) -> None:
    """Run ``dl_fn`` and ``torch_fn`` on the same inputs; compare outputs and input grads.

    ``arrays`` are numpy arrays; float ones get requires_grad where ``grad`` says so.
    The backward pass uses the same random output gradient on both sides.
    """
    flags = [grad] * len(arrays) if isinstance(grad, bool) else list(grad)
    flags = [f and a.dtype.kind == "f" for f, a in zip(flags, arrays)]
    dx = [dl.tensor(a, device=device, requires_grad=f) for a, f in zip(arrays, flags)]
    tx = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)]
    d_out, t_out = _flat(dl_fn(*dx)), _flat(torch_fn(*tx))
    assert len(d_out) == len(t_out)
    for i, (d, t) in enumerate(zip(d_out, t_out)):
        if isinstance(t, torch.Tensor):
            assert isinstance(d, dl.Tensor), f"output {i}: expected a Tensor, got {type(d)}"
            assert d.dtype.name == str(t.dtype).replace("torch.", ""), (
                f"output {i}: dtype {d.dtype} != torch's {t.dtype}"
            )
            assert d.device.type == device
        assert_close(d, t, atol, rtol, f"output {i}")
    if not any(flags):
        return
    r = np.random.default_rng(seed)
    d_sum, t_sum = 0, 0
    for d, t in zip(d_out, t_out):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            g = r.standard_normal(t.shape).astype(to_np(t).dtype)
            d_sum = d_sum + (d * dl.tensor(g, device=device)).sum()
            t_sum = t_sum + (t * torch.tensor(g)).sum()
    if isinstance(t_sum, int):
        return
    d_sum.backward()
    t_sum.backward()
    for i, (d, t, f) in enumerate(zip(dx, tx, flags)):
        if not f:
            continue
        if t.grad is None:
            assert d.grad is None or not np.any(to_np(d.grad)), f"input {i}: torch has no grad"
            continue
        assert d.grad is not None, f"input {i}: darklib computed no gradient"
        assert d.grad.dtype == d.dtype, f"input {i}: grad dtype {d.grad.dtype} != {d.dtype}"
        assert_close(d.grad, t.grad, atol, rtol, f"grad of input {i}")


def gradcheck(
    fn: Callable[..., Any],
    *arrays: np.ndarray,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    grad: Sequence[bool] | bool = True,
    seed: int = 2,
) -> None:
    """Check analytic gradients of ``fn`` against float64 central differences.

    The output is projected onto a fixed random direction, so one backward pass checks
    the full Jacobian-vector product for every input element.
    """
    # C-ordered copies: the perturbations below go through reshape(-1) views, which a
    # transposed array would not give (its differences would silently be zero)
    arrays = [
        np.array(a, np.float64 if a.dtype.kind == "f" else a.dtype, order="C") for a in arrays
    ]
    flags = [grad] * len(arrays) if isinstance(grad, bool) else list(grad)
    flags = [f and a.dtype.kind == "f" for f, a in zip(flags, arrays)]
    r = np.random.default_rng(seed)
    probe = None

    def scalar(*arrs: np.ndarray) -> float:
        nonlocal probe
        outs = [
            o
            for o in _flat(fn(*[dl.tensor(a) for a in arrs]))
            if isinstance(o, dl.Tensor) and o.dtype.is_floating_point
        ]
        if probe is None:
            probe = [r.standard_normal(o.shape) for o in outs]
        return float(sum((o.numpy() * p).sum() for o, p in zip(outs, probe)))

    scalar(*arrays)
    xs = [dl.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)]
    outs = [o for o in _flat(fn(*xs)) if isinstance(o, dl.Tensor) and o.dtype.is_floating_point]
    total = sum((o * dl.tensor(p)).sum() for o, p in zip(outs, probe))
    total.backward()
    for i, (a, x, f) in enumerate(zip(arrays, xs, flags)):
        if not f:
            continue
        num = np.zeros_like(a)
        flat, nflat = a.reshape(-1), num.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            up = scalar(*arrays)
            flat[j] = old - eps
            down = scalar(*arrays)
            flat[j] = old
            nflat[j] = (up - down) / (2 * eps)
        ana = np.zeros_like(a) if x.grad is None else x.grad.numpy()
        np.testing.assert_allclose(
            ana, num, atol=atol, rtol=rtol, err_msg=f"finite-difference gradient of input {i}"
        )


# ------------------------------------------------------------------ whole programs
# (tests/test_fuzz_programs.py, tests/test_tutorials_*.py: the same program written once
# over a library argument ``m``, run with torch and with darklib)


def copy_weights(d_model: Any, t_model: Any) -> None:
    """torch's state_dict -> numpy -> darklib tensors, the way a user ports a checkpoint."""
    d_model.load_state_dict(
        {k: dl.tensor(v.detach().numpy().copy()) for k, v in t_model.state_dict().items()}
    )


def build_pair(make: Callable, dtype: str, *args: Any, **kwargs: Any) -> tuple:
    """``make(m, ...)``'s model built with each library, darklib's with torch's weights:
    ``(darklib_model, torch_model)``, in float64 if ``dtype`` says so."""
    torch.manual_seed(0)
    t_model = make(torch, *args, **kwargs)
    d_model = make(dl, *args, **kwargs)
    if dtype == "float64":
        t_model, d_model = t_model.double(), d_model.double()
    copy_weights(d_model, t_model)
    return d_model, t_model
