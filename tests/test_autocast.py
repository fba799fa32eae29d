"""dl.autocast against torch.autocast on the CPU (float16): which ops run in which dtype,
their values, and float32 gradients for float32 parameters; the switches and warnings."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import rng


def _t(L, shape, seed, **kw):
    return L.tensor(rng(seed).standard_normal(shape), dtype=L.float32, **kw)


def _ops(L):
    F = L.nn.functional
    return {
        "linear": lambda x, w: F.linear(x, w),
        "matmul": lambda x, w: x @ w.t(),
        "mm": lambda x, w: L.mm(x, w.t()),
        "bmm": lambda x, w: L.bmm(x[None], w.t()[None]),
        "addmm": lambda x, w: L.addmm(L.zeros(4, 2), x, w.t()),
        "conv2d": lambda x, w: F.conv2d(x.reshape(1, 1, 4, 3), w.reshape(1, 2, 1, 3)[:, :1]),
        "softmax": lambda x, w: L.softmax(x @ w.t(), 1),
        "log_softmax": lambda x, w: L.log_softmax(x @ w.t(), 1),
        "cross_entropy": lambda x, w: F.cross_entropy(x @ w.t(), L.tensor([0, 1, 0, 1])),
        "mse_loss": lambda x, w: F.mse_loss(x @ w.t(), L.zeros(4, 2)),
        "l1_loss": lambda x, w: F.l1_loss(x @ w.t(), L.zeros(4, 2)),
        "bce_logits": lambda x, w: F.binary_cross_entropy_with_logits(x @ w.t(), L.ones(4, 2)),
        "layer_norm": lambda x, w: F.layer_norm(x @ w.t(), (2,)),
        "sum": lambda x, w: (x @ w.t()).sum(),
        "exp": lambda x, w: (x @ w.t()).exp(),
        "add_f32": lambda x, w: (x @ w.t()) + L.ones(4, 2),
        "relu": lambda x, w: L.relu(x @ w.t()),
        "mv": lambda x, w: L.mv(x, w[0]),
        "dot": lambda x, w: L.dot(x[0], w[0]),
        "einsum": lambda x, w: L.einsum("ij,kj->ik", x, w),
        "soft_margin": lambda x, w: F.soft_margin_loss((x @ w.t()).half(), L.ones(4, 2).half()),
        "poisson_nll": lambda x, w: F.poisson_nll_loss((x @ w.t()).half(), L.ones(4, 2).half()),
        "gru_cell": lambda x, w: _cell(L, L.nn.GRUCell, x, w),
        "lstm_cell": lambda x, w: _cell(L, L.nn.LSTMCell, x, w)[0],
        "gru": lambda x, w: _gru(L, x, w),
    }


def _cell(L, kind, x, w):
    L.manual_seed(0)
    cell = kind(3, 2)
    with L.no_grad():
        for k, p in enumerate(cell.parameters()):
            p.copy_(L.tensor(rng(20 + k).standard_normal(tuple(p.shape)), dtype=L.float32))
    return cell(x * w.sum())


def _gru(L, x, w):
    L.manual_seed(0)
    gru = L.nn.GRU(3, 2)
    with L.no_grad():
        for k, p in enumerate(gru.parameters()):
            p.copy_(L.tensor(rng(30 + k).standard_normal(tuple(p.shape)), dtype=L.float32))
    return gru((x * w.sum())[:, None])[0]


@pytest.mark.parametrize("name", list(_ops(torch)))
def test_cpu_float16_autocast_runs_each_op_in_torchs_dtype(name):
    res = {}
    for L in (dl, torch):
        x, w = _t(L, (4, 3), 0), _t(L, (2, 3), 1, requires_grad=True)
        with L.autocast("cpu", dtype=L.float16):
            y = _ops(L)[name](x, w)
        y.float().sum().backward()
        res[L.__name__] = (str(y.dtype).split(".")[-1], y.detach().float().numpy(), w.grad)
    assert res["darklib"][0] == res["torch"][0]
    np.testing.assert_allclose(res["darklib"][1], res["torch"][1], rtol=2e-2, atol=2e-2)
    gd, gt = res["darklib"][2], res["torch"][2]
    assert str(gd.dtype) == "darklib.float32" and gt.dtype == torch.float32
    np.testing.assert_allclose(gd.numpy(), gt.numpy(), rtol=3e-2, atol=3e-2)


def test_autocast_nests_decorates_and_stays_in_its_thread():
    x, w = _t(dl, (4, 3), 0), _t(dl, (2, 3), 1)
    with dl.autocast("cpu", dtype=dl.float16):
        assert dl.is_autocast_enabled("cpu") and not dl.is_autocast_enabled("cuda")
        with dl.autocast("cpu", enabled=False):
            assert dl.nn.functional.linear(x, w).dtype == dl.float32
        assert dl.nn.functional.linear(x, w).dtype == dl.float16
        seen = []
        worker = threading.Thread(target=lambda: seen.append(dl.nn.functional.linear(x, w).dtype))
        worker.start()
        worker.join()
        assert seen == [dl.float32]  # (another thread is not in the block)
    assert not dl.is_autocast_enabled("cpu")

    @dl.autocast("cpu", dtype=dl.float16)
    def forward(a, b):
        return dl.nn.functional.linear(a, b)

    assert forward(x, w).dtype == dl.float16 and forward(x, w).dtype == dl.float16
    assert dl.nn.functional.linear(x, w).dtype == dl.float32
    # float64 tensors are not lowered, as torch
    with dl.autocast("cpu", dtype=dl.float16):
        assert dl.nn.functional.linear(x.double(), w.double()).dtype == dl.float64


def test_unsupported_autocast_settings_warn_and_run_in_full_precision():
    x, w = _t(dl, (4, 3), 0), _t(dl, (2, 3), 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dl.autocast("cpu"):  # (torch's CPU default is bfloat16, which darklib lacks)
            assert dl.nn.functional.linear(x, w).dtype == dl.float32
    assert any("target dtype is not supported" in str(c.message) for c in caught)
    if not dl.cuda.is_available():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dl.autocast("cuda"):
                assert not dl.is_autocast_enabled("cuda")
        assert any("CUDA is not available" in str(c.message) for c in caught)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        dl.autocast("tpu")


@pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")
def test_cuda_autocast_lowers_products_and_raises_losses():
    x = _t(dl, (8, 16), 0).cuda()
    lin = dl.nn.Linear(16, 4).cuda()
    with dl.autocast("cuda"):
        y = lin(x)
        assert y.dtype == dl.float16
        assert dl.softmax(y, 1).dtype == dl.float32
        loss = dl.nn.functional.cross_entropy(y, dl.tensor([0, 1, 2, 3] * 2).cuda())
        assert loss.dtype == dl.float32
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            dl.nn.functional.binary_cross_entropy(dl.sigmoid(y), dl.ones(8, 4).cuda())
    loss.backward()
    assert lin.weight.grad.dtype == dl.float32


def test_the_older_homes_of_autocast_and_grad_scaler_warn_as_torch_and_work():
    from darklib.cpu.amp import autocast as cpu_autocast
    from darklib.cuda.amp import GradScaler

    x, w = _t(dl, (4, 3), 0), _t(dl, (2, 3), 1)
    with pytest.warns(FutureWarning, match="deprecated"):
        block = cpu_autocast(dtype=dl.float16)
    with block:
        assert dl.nn.functional.linear(x, w).dtype == dl.float16
    with pytest.warns(FutureWarning, match="deprecated"):
        scaler = GradScaler(enabled=False)
    assert scaler.get_scale() == 1.0
    assert dl.cuda.amp.autocast is not None and dl.cpu.amp.autocast is cpu_autocast
