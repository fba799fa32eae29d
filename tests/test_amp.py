"""dl.amp.GradScaler against torch.amp.GradScaler: the same scales, skipped steps and
parameters over a run with overflows, the same errors for calls out of order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import rng


def _run(L, dtype, blowups, init_scale=8.0, growth_interval=2, clip=None):
    L.manual_seed(0)
    model = L.nn.Linear(3, 2)
    with L.no_grad():
        model.weight.copy_(L.tensor(rng(0).standard_normal((2, 3)), dtype=L.float32))
        model.bias.copy_(L.tensor(rng(1).standard_normal(2), dtype=L.float32))
    model = model.to(dtype)
    opt = L.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = L.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    trace = []
    for step, blowup in enumerate(blowups):
        x = L.tensor(rng(10 + step).standard_normal((4, 3)), dtype=dtype)
        opt.zero_grad()
        loss = (model(x) ** 2).mean() * (float("inf") if blowup else 1.0)
        scaler.scale(loss).backward()
        if clip is not None:
            scaler.unscale_(opt)
            L.nn.utils.clip_grad_norm_(model.parameters(), clip)
        out = scaler.step(opt)
        scaler.update()
        trace.append((out, scaler.get_scale(), scaler.state_dict()["_growth_tracker"]))
    weights = [p.detach().float().numpy() for p in model.parameters()]
    return trace, weights, scaler.state_dict()


def test_float16_gradients_are_not_unscaled_as_torch():
    for L in (dl, torch):
        with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
            _run(L, L.float16, [False])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_scaler_schedule_skips_and_weights_match_torch(dtype, clip):
    blowups = [False, False, True, False, False, False, True, True, False]
    d = _run(dl, getattr(dl, dtype), blowups, clip=clip)
    t = _run(torch, getattr(torch, dtype), blowups, clip=clip)
    assert [(o, s, int(g)) for o, s, g in d[0]] == [(o, s, int(g)) for o, s, g in t[0]]
    for a, b in zip(d[1], t[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)
    assert {k: float(v) for k, v in d[2].items()} == {k: float(v) for k, v in t[2].items()}


def test_scale_of_nested_outputs_and_state_dict_round_trip():
    s = dl.amp.GradScaler("cpu", init_scale=4.0)
    out = s.scale([dl.tensor(1.0), (dl.tensor(2.0),)])
    assert out[0].item() == 4.0 and out[1][0].item() == 8.0
    with pytest.raises(ValueError, match="Tensor or an iterable of Tensors"):
        s.scale(3.0)
    t = dl.amp.GradScaler("cpu")
    t.load_state_dict(s.state_dict())
    assert t.get_scale() == 4.0 and t.state_dict() == s.state_dict()
    with pytest.raises(RuntimeError, match="empty"):
        t.load_state_dict({})


def test_calls_out_of_order_raise_as_torch():
    for L in (dl, torch):
        m = L.nn.Linear(2, 1)
        opt = L.optim.SGD(m.parameters(), lr=0.1)
        s = L.amp.GradScaler("cpu")
        s.scale(m(L.ones(3, 2)).sum()).backward()
        s.unscale_(opt)
        with pytest.raises(RuntimeError, match="already been called on this optimizer"):
            s.unscale_(opt)
        with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
            s.step(opt, closure=lambda: None)
        s.step(opt)
        with pytest.raises(RuntimeError, match="after step"):
            s.unscale_(opt)
        s.update()
    with pytest.raises(RuntimeError, match="No inf checks were recorded"):
        dl.amp.GradScaler("cpu").update()


def test_disabled_scaler_passes_through_and_cuda_without_gpu_disables():
    s = dl.amp.GradScaler("cpu", enabled=False)
    x = dl.tensor(2.0)
    assert s.scale(x) is x and s.get_scale() == 1.0 and s.state_dict() == {}
    if dl.cuda.is_available():
        assert dl.amp.GradScaler().is_enabled()
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert not dl.amp.GradScaler().is_enabled()
        assert any("CUDA is not available" in str(w.message) for w in caught)
