"""End to end: small networks trained with plain SGD track PyTorch's loss curve step by step.

Both libraries start from the same weights (copied through the state dict) and see the
same batches; the SGD update is written inline under ``no_grad`` (optim is tested
elsewhere). A bug in any layer's forward or backward shows up as diverging losses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import nn

STEPS = 30


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Tiny ops: torch's thread pool only adds contention (restored after each test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def copy_weights(d: nn.Module, t: torch.nn.Module) -> None:
    d.load_state_dict({k: dl.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})


def train_both(build, xs, ys, loss_name, lr, steps=STEPS):
    torch.manual_seed(0)
    t_net, d_net = build(torch), build(dl)
    copy_weights(d_net, t_net)
    t_loss_fn, d_loss_fn = getattr(torch.nn, loss_name)(), getattr(nn, loss_name)()
    t_curve, d_curve = [], []
    n = len(xs)
    batch = 16
    for step in range(steps):
        i = (step * batch) % n
        xb, yb = xs[i : i + batch], ys[i : i + batch]

        t_net.zero_grad()
        t_loss = t_loss_fn(t_net(torch.tensor(xb)), torch.tensor(yb))
        t_loss.backward()
        with torch.no_grad():
            for p in t_net.parameters():
                p -= lr * p.grad
        t_curve.append(t_loss.item())

        d_net.zero_grad()
        d_loss = d_loss_fn(d_net(dl.tensor(xb)), dl.tensor(yb))
        d_loss.backward()
        with dl.no_grad():
            for p in d_net.parameters():
                p -= p.grad * lr
        d_curve.append(d_loss.item())
    return d_net, t_net, np.array(d_curve), np.array(t_curve)


def _mlp(m):
    return m.nn.Sequential(
        m.nn.Linear(10, 32),
        m.nn.ReLU(),
        m.nn.Linear(32, 32),
        m.nn.Tanh(),
        m.nn.LayerNorm(32),
        m.nn.Linear(32, 3),
    )


def _cnn(m):
    return m.nn.Sequential(
        m.nn.Conv2d(1, 6, 3, padding=1),
        m.nn.BatchNorm2d(6),
        m.nn.ReLU(),
        m.nn.MaxPool2d(2),
        m.nn.Conv2d(6, 8, 3, padding=1, bias=False),
        m.nn.GroupNorm(2, 8),
        m.nn.SiLU(),
        m.nn.AdaptiveAvgPool2d(1),
        m.nn.Flatten(),
        m.nn.Linear(8, 3),
    )


def test_mlp_tracks_torch():
    r = np.random.default_rng(0)
    xs = r.standard_normal((96, 10)).astype(np.float32)
    ys = (xs[:, 0] + xs[:, 1] > 0).astype(np.int64) + (xs[:, 2] > 1).astype(np.int64)
    d_net, t_net, dc, tc = train_both(_mlp, xs, ys, "CrossEntropyLoss", lr=0.2)
    np.testing.assert_allclose(dc, tc, rtol=1e-3, atol=1e-5)
    assert dc[-5:].mean() < 0.7 * dc[:5].mean()  # it actually learns
    for (name, p), tp in zip(d_net.named_parameters(), t_net.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), atol=1e-4, err_msg=name)


def test_mlp_regression_tracks_torch():
    r = np.random.default_rng(1)
    xs = r.standard_normal((64, 10)).astype(np.float32)
    w = r.standard_normal((10, 3)).astype(np.float32)
    ys = np.tanh(xs @ w).astype(np.float32)
    _, _, dc, tc = train_both(_mlp, xs, ys, "MSELoss", lr=0.05)
    np.testing.assert_allclose(dc, tc, rtol=1e-3, atol=1e-6)


def _blob_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images with a bright 2x2 blob in the left, middle or right third (the label)."""
    r = np.random.default_rng(seed)
    xs = 0.3 * r.standard_normal((n, 1, 8, 8)).astype(np.float32)
    ys = r.integers(0, 3, n).astype(np.int64)
    rows = r.integers(0, 7, n)
    cols = ys * 3 + r.integers(0, 2, n)
    for k in range(n):
        xs[k, 0, rows[k] : rows[k] + 2, cols[k] : cols[k] + 2] += 2.0
    return xs, ys


def test_cnn_tracks_torch():
    xs, ys = _blob_images(96, 2)
    d_net, t_net, dc, tc = train_both(_cnn, xs, ys, "CrossEntropyLoss", lr=0.3)
    np.testing.assert_allclose(dc, tc, rtol=1e-3, atol=1e-5)
    assert dc[-5:].mean() < 0.8 * dc[:5].mean()
    # running statistics followed the same path
    np.testing.assert_allclose(
        d_net[1].running_mean.numpy(), t_net[1].running_mean.numpy(), rtol=1e-3, atol=1e-5
    )
    # eval mode (running statistics) agrees too
    d_net.eval()
    t_net.eval()
    with dl.no_grad(), torch.no_grad():
        np.testing.assert_allclose(
            d_net(dl.tensor(xs[:8])).numpy(),
            t_net(torch.tensor(xs[:8])).numpy(),
            rtol=1e-3,
            atol=1e-4,
        )


@pytest.mark.parametrize("loss_name", ["BCEWithLogitsLoss"])
def test_cnn_multilabel_tracks_torch(loss_name):
    xs, ys = _blob_images(64, 3)
    onehot = np.eye(3, dtype=np.float32)[ys]
    _, _, dc, tc = train_both(_cnn, xs, onehot, loss_name, lr=0.1, steps=20)
    np.testing.assert_allclose(dc, tc, rtol=1e-3, atol=1e-5)
