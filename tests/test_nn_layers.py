"""Every nn layer against its PyTorch twin: weights copied over, outputs and all gradients.

For each layer the PyTorch module's state dict is copied into the darklib module (through
numpy), both run on the same input in train and eval mode, and the output, the input
gradient, every parameter gradient and every buffer (running statistics) are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import DEVICES, assert_close, compare, rng

import darklib as dl
from darklib import nn
from darklib.nn import functional as F


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Tiny ops: torch's thread pool only adds contention (restored after each test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def copy_weights(d: nn.Module, t: torch.nn.Module) -> None:
    d.load_state_dict({k: dl.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})


def check_layer(
    build,
    *arrays: np.ndarray,
    train: bool = True,
    device: str = "cpu",
    dtype: str = "float32",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    grad: bool = True,
    steps: int = 1,
) -> tuple[nn.Module, torch.nn.Module]:
    """Build the layer with both libraries (``build(dl)``, ``build(torch)``) and compare."""
    t_mod = build(torch)
    d_mod = build(dl)
    if dtype == "float64":
        t_mod.double()
        d_mod.double()
    copy_weights(d_mod, t_mod)
    d_mod.to(device)
    d_mod.train(train)
    t_mod.train(train)
    r = np.random.default_rng(5)
    for _ in range(steps):
        arrs = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
        flags = [grad and a.dtype.kind == "f" for a in arrs]
        dx = [dl.tensor(a, device=device, requires_grad=f) for a, f in zip(arrs, flags)]
        tx = [torch.tensor(a, requires_grad=f) for a, f in zip(arrs, flags)]
        d_out, t_out = d_mod(*dx), t_mod(*tx)
        assert d_out.dtype.name == str(t_out.dtype).replace("torch.", "")
        assert_close(d_out, t_out, atol, rtol, "output")
        if t_out.requires_grad:
            g = r.standard_normal(tuple(t_out.shape)).astype(dtype)
            d_out.backward(dl.tensor(g, device=device))
            t_out.backward(torch.tensor(g))
            for i, (d, t, f) in enumerate(zip(dx, tx, flags)):
                if f:
                    assert_close(d.grad, t.grad, atol, rtol, f"grad of input {i}")
        d_params = dict(d_mod.named_parameters())
        t_params = dict(t_mod.named_parameters())
        assert list(d_params) == list(t_params)
        for name, tp in t_params.items():
            dp = d_params[name]
            if tp.grad is None:
                assert dp.grad is None or not np.any(dp.grad.cpu().numpy()), name
            else:
                assert dp.grad is not None, f"no gradient for parameter {name}"
                assert_close(dp.grad, tp.grad, atol, rtol, f"grad of {name}")
        d_bufs = dict(d_mod.named_buffers())
        for name, tb in t_mod.named_buffers():
            assert_close(d_bufs[name], tb, atol, rtol, f"buffer {name}")
        d_mod.zero_grad()
        t_mod.zero_grad()
    return d_mod, t_mod


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ linear


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(device, bias):
    check_layer(lambda m: m.nn.Linear(7, 5, bias=bias), randn(4, 7), device=device)
    check_layer(lambda m: m.nn.Linear(7, 5, bias=bias), randn(2, 3, 7), device=device)


def test_linear_float64_tight():
    check_layer(lambda m: m.nn.Linear(6, 4), randn(5, 6), dtype="float64", atol=1e-12, rtol=1e-10)


def test_identity():
    x = dl.randn(2, 3)
    assert nn.Identity(54, unused="x")(x) is x


# ------------------------------------------------------------------ convolution

CONV_CASES = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), groups=2, bias=False),
    dict(in_channels=2, out_channels=3, kernel_size=3, dilation=2, padding=2),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding="same"),
    dict(in_channels=2, out_channels=3, kernel_size=4, padding="same"),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="valid"),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=(1, 2), padding_mode="replicate"),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="circular"),
    dict(in_channels=2, out_channels=3, kernel_size=1),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", CONV_CASES)
def test_conv2d(device, kw):
    x = randn(2, kw["in_channels"], 7, 8)
    check_layer(lambda m: m.nn.Conv2d(**kw), x, device=device, atol=1e-4)


def test_conv2d_unbatched_and_float64():
    check_layer(lambda m: m.nn.Conv2d(3, 4, 3, padding=1), randn(3, 5, 5), atol=1e-4)
    check_layer(
        lambda m: m.nn.Conv2d(3, 4, 3, stride=2),
        randn(2, 3, 7, 7),
        dtype="float64",
        atol=1e-12,
        rtol=1e-10,
    )


CONVT_CASES = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=3, out_channels=4, kernel_size=4, stride=2, padding=1),
    dict(
        in_channels=4,
        out_channels=6,
        kernel_size=3,
        stride=2,
        padding=1,
        output_padding=1,
        groups=2,
    ),
    dict(in_channels=2, out_channels=3, kernel_size=3, dilation=2, bias=False),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", CONVT_CASES)
def test_conv_transpose2d(device, kw):
    x = randn(2, kw["in_channels"], 5, 6)
    check_layer(lambda m: m.nn.ConvTranspose2d(**kw), x, device=device, atol=1e-4)


def test_conv_transpose2d_output_size():
    t = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    d = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    copy_weights(d, t)
    x = randn(1, 3, 4, 4)
    out = d(dl.tensor(x), output_size=(8, 8))
    assert_close(out, t(torch.tensor(x), output_size=(8, 8)), 1e-5)
    assert tuple(out.shape) == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="valid sizes range from"):
        d(dl.tensor(x), output_size=(12, 12))


# ------------------------------------------------------------------ pooling

POOL_CASES = [
    lambda m: m.nn.MaxPool2d(2),
    lambda m: m.nn.MaxPool2d(3, stride=2, padding=1),
    lambda m: m.nn.MaxPool2d((2, 3), stride=(1, 2), ceil_mode=True),
    lambda m: m.nn.AvgPool2d(2),
    lambda m: m.nn.AvgPool2d(3, stride=2, padding=1),
    lambda m: m.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    lambda m: m.nn.AdaptiveAvgPool2d((2, 3)),
    lambda m: m.nn.AdaptiveAvgPool2d(1),
    lambda m: m.nn.AdaptiveMaxPool2d((3, 2)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("build", POOL_CASES)
def test_pooling(device, build):
    check_layer(build, randn(2, 3, 7, 8), device=device)


def test_maxpool_return_indices():
    x = randn(1, 2, 4, 4)
    d_out, d_idx = nn.MaxPool2d(2, return_indices=True)(dl.tensor(x))
    t_out, t_idx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    assert_close(d_out, t_out)
    np.testing.assert_array_equal(d_idx.numpy(), t_idx.numpy())


# ------------------------------------------------------------------ normalisation

NORM_CASES = [
    (lambda m: m.nn.BatchNorm1d(4), (6, 4)),
    (lambda m: m.nn.BatchNorm1d(4, momentum=0.3), (3, 4, 5)),
    (lambda m: m.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda m: m.nn.BatchNorm2d(3, affine=False), (2, 3, 4, 4)),
    (lambda m: m.nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 4)),
    (lambda m: m.nn.BatchNorm2d(3, momentum=None), (2, 3, 4, 4)),
    (lambda m: m.nn.LayerNorm(6), (3, 4, 6)),
    (lambda m: m.nn.LayerNorm((4, 6), elementwise_affine=False), (3, 4, 6)),
    (lambda m: m.nn.LayerNorm(6, bias=False), (5, 6)),
    (lambda m: m.nn.GroupNorm(2, 6), (3, 6, 4, 4)),
    (lambda m: m.nn.GroupNorm(3, 6, affine=False), (3, 6, 5)),
    (lambda m: m.nn.InstanceNorm2d(3, affine=True), (2, 3, 4, 5)),
    (lambda m: m.nn.InstanceNorm2d(3), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("build,shape", NORM_CASES)
def test_normalization(device, train, build, shape):
    def built(m):
        mod = build(m)
        # non-trivial affine parameters and running statistics
        with m.no_grad():
            for p in mod.parameters():
                p.copy_(m.tensor(np.linspace(0.5, 1.5, p.numel()).reshape(tuple(p.shape))))
        return mod

    x = randn(*shape) * 2 + 0.5
    check_layer(built, x, train=train, device=device, atol=1e-4, steps=3)


def test_batchnorm_float64_and_running_stats():
    d, t = check_layer(
        lambda m: m.nn.BatchNorm2d(3, momentum=None),
        randn(4, 3, 3, 3),
        dtype="float64",
        atol=1e-10,
        rtol=1e-9,
        steps=4,
    )
    assert int(d.num_batches_tracked.item()) == int(t.num_batches_tracked) == 4
    # eval uses the running statistics
    d.eval()
    t.eval()
    x = randn(2, 3, 3, 3).astype(np.float64)
    assert_close(d(dl.tensor(x)), t(torch.tensor(x)), 1e-10, 1e-9)


def test_batchnorm_eval_does_not_update():
    bn = nn.BatchNorm2d(2)
    bn(dl.randn(4, 2, 3, 3))
    rm = bn.running_mean.numpy().copy()
    bn.eval()
    bn(dl.randn(4, 2, 3, 3))
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)
    assert bn.num_batches_tracked.item() == 1


# ------------------------------------------------------------------ dropout


def test_dropout_train_and_eval():
    x = dl.ones(200, 50)
    drop = nn.Dropout(0.3)
    y = drop(x).numpy()
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    drop.eval()
    assert drop(x) is x
    x = dl.ones(8, 16, 3, 3, requires_grad=True)
    d2 = nn.Dropout2d(0.5)
    out = d2(x)
    out.backward(dl.ones(8, 16, 3, 3))
    y = out.detach().numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # whole channels dropped
    np.testing.assert_array_equal(x.grad.numpy(), y)  # gradient is the same mask
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    assert nn.Dropout(0.0)(x) is x


# ------------------------------------------------------------------ resampling and shape

UPSAMPLE_CASES = [
    lambda m: m.nn.Upsample(scale_factor=2),
    lambda m: m.nn.Upsample(size=(5, 7)),
    lambda m: m.nn.Upsample(scale_factor=2, mode="bilinear"),
    lambda m: m.nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=True),
    lambda m: m.nn.UpsamplingNearest2d(scale_factor=3),
    lambda m: m.nn.UpsamplingBilinear2d(size=(6, 5)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("build", UPSAMPLE_CASES)
def test_upsample(device, build):
    check_layer(build, randn(2, 3, 3, 4), device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "build,shape",
    [
        (lambda m: m.nn.Flatten(), (2, 3, 4, 5)),
        (lambda m: m.nn.Flatten(0, 2), (2, 3, 4, 5)),
        (lambda m: m.nn.Unflatten(1, (3, 4)), (2, 12, 5)),
        (lambda m: m.nn.Unflatten(-1, (2, -1)), (2, 3, 8)),
        (lambda m: m.nn.ZeroPad2d((1, 2, 0, 3)), (2, 3, 4, 4)),
        (lambda m: m.nn.ConstantPad2d(2, 0.5), (2, 3, 4, 4)),
        (lambda m: m.nn.ReflectionPad2d((1, 2, 2, 1)), (2, 3, 4, 4)),
        (lambda m: m.nn.ReplicationPad2d(2), (1, 3, 4, 4)),
    ],
)
def test_shape_layers(device, build, shape):
    check_layer(build, randn(*shape), device=device)


def test_embedding():
    ids = np.array([[1, 0, 4], [4, 4, 2]], dtype=np.int64)
    check_layer(lambda m: m.nn.Embedding(6, 3), ids, grad=False)
    t = torch.nn.Embedding(6, 3, padding_idx=4)
    d = nn.Embedding(6, 3, padding_idx=4)
    copy_weights(d, t)
    out = d(dl.tensor(ids))
    t_out = t(torch.tensor(ids))
    assert_close(out, t_out)
    g = randn(2, 3, 3)
    out.backward(dl.tensor(g))
    t_out.backward(torch.tensor(g))
    assert_close(d.weight.grad, t.weight.grad)
    with pytest.raises(IndexError, match="out of range"):
        d(dl.tensor([6]))


# ------------------------------------------------------------------ activations

ACTIVATIONS = [
    lambda m: m.nn.ReLU(),
    lambda m: m.nn.LeakyReLU(0.2),
    lambda m: m.nn.ELU(0.7),
    lambda m: m.nn.GELU(),
    lambda m: m.nn.GELU("tanh"),
    lambda m: m.nn.SiLU(),
    lambda m: m.nn.Sigmoid(),
    lambda m: m.nn.Tanh(),
    lambda m: m.nn.Softmax(dim=1),
    lambda m: m.nn.Softmax(dim=-1),
    lambda m: m.nn.LogSoftmax(dim=1),
    lambda m: m.nn.Softmin(dim=0),
    lambda m: m.nn.Softplus(),
    lambda m: m.nn.Softplus(beta=2.0, threshold=3.0),
    lambda m: m.nn.ReLU6(),
    lambda m: m.nn.Hardtanh(-0.5, 1.5),
    lambda m: m.nn.Hardsigmoid(),
    lambda m: m.nn.Hardswish(),
    lambda m: m.nn.Mish(),
    lambda m: m.nn.SELU(),
    lambda m: m.nn.CELU(0.5),
    lambda m: m.nn.LogSigmoid(),
    lambda m: m.nn.Softsign(),
    lambda m: m.nn.Tanhshrink(),
    lambda m: m.nn.Threshold(0.1, -2.0),
    lambda m: m.nn.PReLU(),
    lambda m: m.nn.PReLU(4),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("build", ACTIVATIONS)
def test_activation(device, build):
    x = randn(3, 4, 5) * 3
    x[0, 0, :3] = [0.0, 6.0, -1.0]  # exact kinks: the gradient conventions must agree too
    check_layer(build, x, device=device, atol=2e-5)


def test_activation_float64_tight():
    for build in ACTIVATIONS[:12]:
        check_layer(build, randn(4, 6), dtype="float64", atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize(
    "build",
    [
        lambda m: m.nn.ReLU(inplace=True),
        lambda m: m.nn.LeakyReLU(0.1, inplace=True),
        lambda m: m.nn.ReLU6(inplace=True),
    ],
)
def test_inplace_activation(build):
    x = randn(3, 4)
    d = dl.tensor(x)
    out = build(dl)(d)
    assert out is d
    np.testing.assert_allclose(d.numpy(), build(torch)(torch.tensor(x)).numpy(), atol=1e-6)
    # after a differentiable op it is still differentiable
    check_layer(lambda m: m.nn.Sequential(m.nn.Linear(4, 4), build(m)), x)


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmax()(dl.randn(2, 3))
    np.testing.assert_allclose(out.numpy().sum(1), 1, rtol=1e-6)


# ------------------------------------------------------------------ losses


def _logits_targets():
    r = np.random.default_rng(3)
    logits = r.standard_normal((6, 5)).astype(np.float32)
    target = r.integers(0, 5, 6).astype(np.int64)
    return logits, target


LOSSES = [
    (lambda m: m.nn.MSELoss(), "reg"),
    (lambda m: m.nn.MSELoss(reduction="sum"), "reg"),
    (lambda m: m.nn.L1Loss(), "reg"),
    (lambda m: m.nn.L1Loss(reduction="none"), "reg"),
    (lambda m: m.nn.SmoothL1Loss(beta=0.5), "reg"),
    (lambda m: m.nn.HuberLoss(delta=0.7), "reg"),
    (lambda m: m.nn.CrossEntropyLoss(), "cls"),
    (lambda m: m.nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1), "cls"),
    (lambda m: m.nn.CrossEntropyLoss(weight=m.tensor([1.0, 2.0, 0.5, 1.0, 3.0])), "cls"),
    (lambda m: m.nn.CrossEntropyLoss(ignore_index=2, reduction="none"), "cls"),
    (lambda m: m.nn.CrossEntropyLoss(), "soft"),
    (lambda m: m.nn.NLLLoss(), "logp"),
    (lambda m: m.nn.NLLLoss(weight=m.tensor([1.0, 2.0, 0.5, 1.0, 3.0]), ignore_index=1), "logp"),
    (lambda m: m.nn.BCELoss(), "prob"),
    (lambda m: m.nn.BCELoss(weight=m.tensor([1.0, 2.0, 0.5, 1.0, 3.0])), "prob"),
    (lambda m: m.nn.BCEWithLogitsLoss(), "bin"),
    (lambda m: m.nn.BCEWithLogitsLoss(pos_weight=m.tensor([1.0, 2.0, 0.5, 1.0, 3.0])), "bin"),
    (lambda m: m.nn.BCEWithLogitsLoss(weight=m.tensor([2.0]), reduction="sum"), "bin"),
    (lambda m: m.nn.KLDivLoss(reduction="batchmean"), "kl"),
    (lambda m: m.nn.KLDivLoss(reduction="sum", log_target=True), "kl"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("build,kind", LOSSES)
def test_loss(device, build, kind):
    r = np.random.default_rng(4)
    logits, target = _logits_targets()
    if kind == "reg":
        args = (logits, r.standard_normal(logits.shape).astype(np.float32))
    elif kind == "cls":
        args = (logits, target)
    elif kind == "soft":
        p = r.random(logits.shape).astype(np.float32)
        args = (logits, p / p.sum(1, keepdims=True))
    elif kind == "logp":
        args = (logits - np.log(np.exp(logits).sum(1, keepdims=True)), target)
    elif kind == "prob":
        args = (1 / (1 + np.exp(-logits)), r.random(logits.shape).astype(np.float32))
    elif kind == "bin":
        args = (logits, (r.random(logits.shape) > 0.5).astype(np.float32))
    else:
        args = (
            logits - np.log(np.exp(logits).sum(1, keepdims=True)),
            r.random(logits.shape).astype(np.float32) / 5,
        )
    check_layer(build, *args, device=device)


def test_loss_buffers_and_args():
    w = dl.tensor([1.0, 2.0])
    ce = nn.CrossEntropyLoss(weight=w)
    assert list(ce.state_dict()) == list(
        torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0])).state_dict()
    )
    bce = nn.BCEWithLogitsLoss(pos_weight=dl.tensor([3.0]))
    assert list(bce.state_dict()) == ["pos_weight"]
    assert list(nn.MSELoss().state_dict()) == []
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.warns(UserWarning):
        assert nn.L1Loss(size_average=False).reduction == "sum"


# ------------------------------------------------------------------ errors


def test_shape_errors_name_the_layer():
    with pytest.raises(RuntimeError) as e:
        nn.Linear(784, 10)(dl.zeros(32, 512))
    assert str(e.value) == (
        "Linear(in_features=784, out_features=10, bias=True): expected input with last "
        "dimension 784, got (32, 512)"
    )
    with pytest.raises(RuntimeError) as e:
        nn.Conv2d(3, 64, 3)(dl.zeros(8, 1, 28, 28))
    assert str(e.value) == (
        "Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1)): expected input with 3 channels, "
        "got (8, 1, 28, 28)"
    )
    with pytest.raises(RuntimeError, match=r"Conv2d\(3, 64.*expected 4-D input"):
        nn.Conv2d(3, 64, 3)(dl.zeros(2, 3, 4, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*expected 4-D .*got \(2, 3\)"):
        nn.BatchNorm2d(3)(dl.zeros(2, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3.*3 channels.*got \(2, 4\)"):
        nn.BatchNorm1d(3)(dl.zeros(2, 4))
    with pytest.raises(RuntimeError, match=r"LayerNorm\(\(5,\).*trailing shape \(5,\), got"):
        nn.LayerNorm(5)(dl.zeros(2, 4))
    with pytest.raises(RuntimeError, match=r"GroupNorm\(2, 4.*got \(2, 6, 3\)"):
        nn.GroupNorm(2, 4)(dl.zeros(2, 6, 3))
    with pytest.raises(RuntimeError, match=r"MaxPool2d\(.*expected 3-D .* or 4-D"):
        nn.MaxPool2d(2)(dl.zeros(4, 4))
    with pytest.raises(RuntimeError, match=r"ConvTranspose2d\(4, 2.*4 channels"):
        nn.ConvTranspose2d(4, 2, 3)(dl.zeros(1, 3, 5, 5))
    with pytest.raises(TypeError, match=r"Linear\(.*expected a Tensor input, got ndarray"):
        nn.Linear(2, 2)(np.zeros((1, 2)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Linear(-1, 3),
        lambda: nn.Conv2d(3, 4, 0),
        lambda: nn.Conv2d(3, 4, 3, groups=2),
        lambda: nn.Conv2d(3, 4, 3, padding="full"),
        lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"),
        lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"),
        lambda: nn.Conv2d(3, 4, (3, 3, 3)),
        lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"),
        lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2),
        lambda: nn.MaxPool2d(0),
        lambda: nn.AvgPool2d(2, padding=-1),
        lambda: nn.AdaptiveAvgPool2d(-1),  # (0 is valid, as torch: an empty output)
        lambda: nn.BatchNorm2d(0),
        lambda: nn.BatchNorm2d(3, momentum=2.0),
        lambda: nn.GroupNorm(4, 6),
        lambda: nn.LayerNorm(0),
        lambda: nn.Dropout(-0.1),
        lambda: nn.Upsample(),
        lambda: nn.Upsample(size=3, scale_factor=2),
        lambda: nn.GELU("fast"),
        lambda: nn.CrossEntropyLoss(label_smoothing=2.0),
        lambda: nn.Hardtanh(1.0, -1.0),
        lambda: nn.Embedding(4, 2, padding_idx=5),
    ],
)
def test_invalid_constructor_args(make):
    with pytest.raises(ValueError):
        make()


# ------------------------------------------------------------------ nn.utils


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    r = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    grads = [r.standard_normal(s).astype(np.float32) for s in shapes]
    dp = [nn.Parameter(dl.zeros(*s)) for s in shapes]
    tp = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, q, g in zip(dp, tp, grads):
        p.grad = dl.tensor(g.copy())
        q.grad = torch.tensor(g.copy())
    tot = nn.utils.clip_grad_norm_(dp, max_norm, norm_type)
    ttot = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    assert tot.dtype == dl.float32 and tot.shape == ()
    assert_close(tot, ttot, 1e-5, 1e-5)
    for p, q in zip(dp, tp):
        assert_close(p.grad, q.grad, 1e-6, 1e-5)


def test_clip_grad_misc():
    p = nn.Parameter(dl.zeros(3))
    assert float(nn.utils.clip_grad_norm_([p], 1.0)) == 0.0  # no grads: norm 0
    p.grad = dl.tensor([np.nan, 1.0, 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    p.grad = dl.tensor([-3.0, 0.5, 2.0])
    nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, 0.5, 1.0])


def test_parameters_to_vector_roundtrip():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(net.parameters())
    assert vec.shape == (11,)
    t = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    copy_weights(net, t)
    vec = nn.utils.parameters_to_vector(net.parameters())
    assert_close(vec, torch.nn.utils.parameters_to_vector(t.parameters()))
    nn.utils.vector_to_parameters(dl.arange(11, dtype=dl.float32), net.parameters())
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(net[1].bias.detach().numpy(), [10.0])
    with pytest.raises(ValueError, match="11"):
        nn.utils.vector_to_parameters(dl.zeros(5), net.parameters())


# ------------------------------------------------------------------ functional


def test_functional_namespace():
    for name in [
        "relu",
        "conv2d",
        "max_pool2d",
        "batch_norm",
        "cross_entropy",
        "softmax",
        "log_softmax",
        "pad",
        "interpolate",
        "dropout",
        "one_hot",
        "linear",
        "embedding",
        "normalize",
        "glu",
        "mse_loss",
        "binary_cross_entropy_with_logits",
    ]:
        assert callable(getattr(F, name)), name
    x = randn(3, 4)
    assert_close(
        F.normalize(dl.tensor(x), dim=1),
        torch.nn.functional.normalize(torch.tensor(x), dim=1),
        1e-6,
    )
    assert_close(F.glu(dl.tensor(x)), torch.nn.functional.glu(torch.tensor(x)), 1e-6)


_R = np.random.default_rng(11)
COMPOSED_CASES = [
    (lambda m: m.nn.PixelShuffle(2), [(2, 8, 3, 5)]),
    (lambda m: m.nn.PixelShuffle(3), [(9, 2, 2)]),
    (lambda m: m.nn.PixelUnshuffle(2), [(2, 3, 4, 6)]),
    (lambda m: m.nn.Softmax2d(), [(2, 4, 3, 3)]),
    (lambda m: m.nn.GLU(), [(3, 6)]),
    (lambda m: m.nn.GLU(1), [(2, 4, 3)]),
    (lambda m: m.nn.Hardshrink(0.3), [(4, 5)]),
    (lambda m: m.nn.Softshrink(0.3), [(4, 5)]),
    (lambda m: m.nn.CosineSimilarity(), [(4, 5), (4, 5)]),
    (lambda m: m.nn.CosineSimilarity(dim=-1, eps=1e-3), [(4, 1, 5), (1, 3, 5)]),
    (lambda m: m.nn.PairwiseDistance(), [(4, 5), (4, 5)]),
    (lambda m: m.nn.PairwiseDistance(p=1.0, keepdim=True), [(4, 5), (4, 5)]),
    (lambda m: m.nn.RMSNorm(5), [(2, 3, 5)]),
    (lambda m: m.nn.RMSNorm((3, 5), eps=1e-3), [(2, 3, 5)]),
    (lambda m: m.nn.RMSNorm(5, elementwise_affine=False), [(4, 5)]),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", COMPOSED_CASES, ids=[str(i) for i in range(len(COMPOSED_CASES))])
def test_composed_layers_match_torch(case, device):
    build, shapes = case
    arrays = [_R.standard_normal(s).astype(np.float32) for s in shapes]
    d_mod, t_mod = check_layer(build, *arrays, device=device)
    assert repr(d_mod) == repr(t_mod)
    assert list(d_mod.state_dict()) == list(t_mod.state_dict())


def test_composed_layers_reject_bad_shapes():
    with pytest.raises(RuntimeError, match="divisible by 4"):
        nn.PixelShuffle(2)(dl.zeros(1, 3, 2, 2))
    with pytest.raises(RuntimeError, match="divisible by 2"):
        nn.PixelUnshuffle(2)(dl.zeros(1, 3, 3, 2))
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        nn.Softmax2d()(dl.zeros(2, 3))
    with pytest.raises(RuntimeError, match="trailing shape"):
        nn.RMSNorm(4)(dl.zeros(2, 3))


def test_rrelu_follows_torch_in_eval_and_draws_slopes_in_training():
    x = np.random.default_rng(1).standard_normal((4000,)).astype(np.float32)
    x[:3] = [0.0, -0.0, float("nan")]
    lo, hi = 0.1, 0.3
    want = torch.nn.functional.rrelu(torch.tensor(x), lo, hi, training=False)
    got = dl.nn.RReLU(lo, hi).eval()(dl.tensor(x))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert repr(dl.nn.RReLU(lo, hi, True)) == repr(torch.nn.RReLU(lo, hi, True))
    assert repr(dl.nn.RReLU()) == repr(torch.nn.RReLU())
    # training: each x <= 0 takes its own slope in [lo, hi], which is also its gradient
    xt = dl.tensor(x[3:], requires_grad=True)
    y = dl.nn.functional.rrelu(xt, lo, hi, training=True)
    y.sum().backward()
    xs, ys, gs = x[3:], y.detach().numpy(), xt.grad.numpy()
    neg = xs <= 0
    np.testing.assert_array_equal(ys[~neg], xs[~neg])
    np.testing.assert_array_equal(gs[~neg], 1.0)
    slopes = ys[neg] / xs[neg]
    assert slopes.min() >= lo - 1e-6 and slopes.max() <= hi + 1e-6
    assert slopes.std() > 0.03 and abs(slopes.mean() - (lo + hi) / 2) < 0.01
    np.testing.assert_allclose(gs[neg], slopes, rtol=1e-5)
    # in place, and the errors
    z = dl.tensor([-2.0, 2.0])
    assert dl.nn.functional.rrelu(z, training=True, inplace=True) is z and z[1].item() == 2.0
    assert 1 / 8 <= z[0].item() / -2.0 <= 1 / 3
    with pytest.raises(RuntimeError, match="lower bound"):
        dl.nn.functional.rrelu(dl.randn(3), 0.5, 0.1, training=True)
    with pytest.raises(NotImplementedError, match="rrelu"):
        dl.nn.functional.rrelu(dl.tensor([1, 2]), training=True)


def test_celu_with_a_negative_alpha_prelu_of_0d_and_empty_strided_convs_follow_torch():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0, np.nan])
    for a in (-1.0, -0.3, 0.7):
        t, d = torch.tensor(x, requires_grad=True), dl.tensor(x, requires_grad=True)
        yt, yd = torch.nn.functional.celu(t, alpha=a), F.celu(d, alpha=a)
        yt.sum().backward()
        yd.sum().backward()
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-6)  # (torch: a
        # float32 1/alpha inside its float64 celu gradient)
    assert F.prelu(dl.tensor(-2.0), dl.tensor([0.25])).shape == ()
    assert F.prelu(dl.tensor(-2.0), dl.tensor([0.25])).item() == -0.5
    for shape, fn, tfn, w in (
        ((0, 2, 6), F.conv1d, torch.nn.functional.conv1d, (3, 2, 2)),
        ((0, 2, 6, 6), F.conv2d, torch.nn.functional.conv2d, (3, 2, 2, 2)),
        ((0, 2, 6), F.conv_transpose1d, torch.nn.functional.conv_transpose1d, (2, 3, 2)),
        ((0, 2, 6, 6), F.conv_transpose2d, torch.nn.functional.conv_transpose2d, (2, 3, 2, 2)),
    ):
        xd = dl.zeros(shape, requires_grad=True)
        y = fn(xd, dl.ones(w), stride=2)
        y.sum().backward()
        assert tuple(y.shape) == tuple(tfn(torch.zeros(shape), torch.ones(w), stride=2).shape)
        assert tuple(xd.grad.shape) == shape


BAG_IDS = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4, -1])
@pytest.mark.parametrize(
    "offsets, last",
    [([0, 2, 2, 5], False), ([0, 3, 7, 10], True), ([0, 0, 10], True), ([0, 2, 4], True)],
)
def test_embedding_bag_matches_torch(device, mode, padding_idx, offsets, last):
    # empty bags and bags of padding ids only give zeros; padding ids are not counted
    weight = rng(0).standard_normal((10, 4))
    off = np.array(offsets)
    kw = dict(mode=mode, padding_idx=padding_idx, include_last_offset=last)
    compare(
        lambda w: dl.nn.functional.embedding_bag(
            dl.tensor(BAG_IDS, device=device), w, dl.tensor(off, device=device), **kw
        ),
        lambda w: torch.nn.functional.embedding_bag(
            torch.tensor(BAG_IDS), w, torch.tensor(off), **kw
        ),
        weight,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_embedding_bag_2d_per_sample_weights_module_and_errors(device):
    ids = rng(1).integers(0, 10, (3, 5))
    weight, psw = rng(2).standard_normal((10, 4)), rng(3).standard_normal((3, 5))
    compare(
        lambda w, p: dl.nn.functional.embedding_bag(
            dl.tensor(ids, device=device), w, mode="sum", per_sample_weights=p
        ),
        lambda w, p: torch.nn.functional.embedding_bag(
            torch.tensor(ids), w, mode="sum", per_sample_weights=p
        ),
        weight,
        psw,
        device=device,
    )
    bag = dl.nn.EmbeddingBag.from_pretrained(dl.tensor(weight, device=device), mode="max")
    tbag = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(weight), mode="max")
    assert_close(bag(dl.tensor(ids, device=device)), tbag(torch.tensor(ids)))
    assert not bag.weight.requires_grad and list(bag.state_dict()) == ["weight"]
    e = dl.nn.functional.embedding_bag
    w = dl.tensor(weight, device=device)
    with pytest.raises(ValueError, match="offsets are required"):
        e(dl.tensor([1, 2], device=device), w)
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        e(dl.tensor([1, 2], device=device), w, dl.tensor([1], device=device))
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        e(dl.tensor(ids, device=device), w, per_sample_weights=dl.tensor(psw, device=device))
    with pytest.raises(ValueError, match="mode has to be one of"):
        e(dl.tensor(ids, device=device), w, mode="min")


def test_embedding_freeze_and_parameter_dict_repr_as_torch():
    assert not dl.nn.Embedding(3, 2, _freeze=True).weight.requires_grad
    assert dl.nn.Embedding(3, 2).weight.requires_grad
    d = dl.nn.ParameterDict(
        {"a": dl.nn.Parameter(dl.zeros(1)), "b": dl.nn.Parameter(dl.zeros(2, 3))}
    )
    t = torch.nn.ParameterDict(
        {"a": torch.nn.Parameter(torch.zeros(1)), "b": torch.nn.Parameter(torch.zeros(2, 3))}
    )

    # the same text, up to the library's name (darklib.FloatTensor for torch.FloatTensor)
    assert repr(d).replace("darklib.", "torch.") == repr(t)
