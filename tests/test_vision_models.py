"""dl.vision.models against torch transcriptions of the same architectures.

torchvision is not a dependency: its ResNet is written here once more in torch (compactly,
with its attribute names), as are the PyTorch DCGAN tutorial's networks and the usual
ResNet9. darklib's models must have the same state_dict keys and shapes, give the same
outputs once torch's weights are loaded into them through numpy arrays, and, in train
mode, the same loss and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as tF

import darklib as dl
from darklib.errors import InvalidValue
from darklib.vision import models

# ------------------------------------------------------------------- torch transcriptions


def _t_conv3(cin, cout, stride=1, groups=1, dilation=1):
    return tnn.Conv2d(cin, cout, 3, stride, dilation, dilation, groups, bias=False)


class _TBasic(tnn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, down=None, groups=1, width=64, dilation=1):
        super().__init__()
        self.conv1, self.bn1 = _t_conv3(cin, planes, stride), tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2, self.bn2 = _t_conv3(planes, planes), tnn.BatchNorm2d(planes)
        self.downsample = down

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _TBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, down=None, groups=1, width=64, dilation=1):
        super().__init__()
        w = int(planes * width / 64) * groups
        self.conv1, self.bn1 = tnn.Conv2d(cin, w, 1, bias=False), tnn.BatchNorm2d(w)
        self.conv2 = _t_conv3(w, w, stride, groups, dilation)
        self.bn2 = tnn.BatchNorm2d(w)
        self.conv3 = tnn.Conv2d(w, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = down

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _TResNet(tnn.Module):
    """torchvision's ResNet (v1.5: the stride on the 3x3 convolution)."""

    def __init__(self, block, layers, num_classes=1000, groups=1, width=64, dilate=None):
        super().__init__()
        self.cin, self.dilation, self.groups, self.width = 64, 1, groups, width
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu = tnn.BatchNorm2d(64), tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        dilate = [False, *(dilate or [False] * 3)]
        for i, (planes, n) in enumerate(zip([64, 128, 256, 512], layers)):
            setattr(self, f"layer{i + 1}", self._stage(block, planes, n, 1 + (i > 0), dilate[i]))
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512 * block.expansion, num_classes)

    def _stage(self, block, planes, n, stride, dilate):
        prev = self.dilation
        if dilate:
            self.dilation, stride = self.dilation * stride, 1
        down = None
        if stride != 1 or self.cin != planes * block.expansion:
            down = tnn.Sequential(
                tnn.Conv2d(self.cin, planes * block.expansion, 1, stride, bias=False),
                tnn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self.cin, planes, stride, down, self.groups, self.width, prev)]
        self.cin = planes * block.expansion
        for _ in range(1, n):
            blocks.append(block(self.cin, planes, 1, None, self.groups, self.width, self.dilation))
        return tnn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


_T_RESNETS = {
    "resnet18": lambda **kw: _TResNet(_TBasic, [2, 2, 2, 2], **kw),
    "resnet50": lambda **kw: _TResNet(_TBottleneck, [3, 4, 6, 3], **kw),
    "resnext50_32x4d": lambda **kw: _TResNet(_TBottleneck, [3, 4, 6, 3], groups=32, width=4, **kw),
}


def _t_conv_block(cin, cout, pool=False):
    layers = [tnn.Conv2d(cin, cout, 3, padding=1), tnn.BatchNorm2d(cout), tnn.ReLU(inplace=True)]
    return tnn.Sequential(*layers, *([tnn.MaxPool2d(2)] if pool else []))


class _TResNet9(tnn.Module):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        self.conv1 = _t_conv_block(in_channels, 64)
        self.conv2 = _t_conv_block(64, 128, pool=True)
        self.res1 = tnn.Sequential(_t_conv_block(128, 128), _t_conv_block(128, 128))
        self.conv3 = _t_conv_block(128, 256, pool=True)
        self.conv4 = _t_conv_block(256, 512, pool=True)
        self.res2 = tnn.Sequential(_t_conv_block(512, 512), _t_conv_block(512, 512))
        self.classifier = tnn.Sequential(
            tnn.AdaptiveMaxPool2d(1), tnn.Flatten(), tnn.Linear(512, num_classes)
        )

    def forward(self, x):
        x = self.conv2(self.conv1(x))
        x = self.res1(x) + x
        x = self.conv4(self.conv3(x))
        return self.classifier(self.res2(x) + x)


class _TGenerator(tnn.Module):
    """The PyTorch DCGAN tutorial's generator (64x64)."""

    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = tnn.Sequential(
            tnn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            tnn.BatchNorm2d(ngf * 8),
            tnn.ReLU(True),
            tnn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(ngf * 4),
            tnn.ReLU(True),
            tnn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(ngf * 2),
            tnn.ReLU(True),
            tnn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(ngf),
            tnn.ReLU(True),
            tnn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            tnn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class _TDiscriminator(tnn.Module):
    """The PyTorch DCGAN tutorial's discriminator (64x64)."""

    def __init__(self, nc=3, ndf=64):
        super().__init__()
        self.main = tnn.Sequential(
            tnn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            tnn.LeakyReLU(0.2, inplace=True),
            tnn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(ndf * 2),
            tnn.LeakyReLU(0.2, inplace=True),
            tnn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(ndf * 4),
            tnn.LeakyReLU(0.2, inplace=True),
            tnn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(ndf * 8),
            tnn.LeakyReLU(0.2, inplace=True),
            tnn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            tnn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x)


# ------------------------------------------------------------------------------- helpers


def _randomise(tmodel: tnn.Module, seed: int = 0) -> None:
    """Non-trivial norm parameters and running statistics, so that eval-mode outputs
    depend on every tensor of the state dict."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in tmodel.modules():
            if isinstance(m, tnn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                m.num_batches_tracked.fill_(7)


def _to_darklib(tmodel: tnn.Module, dmodel: dl.nn.Module) -> None:
    state = {k: dl.tensor(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()}
    result = dmodel.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys


def _shapes(state) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _np(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.detach().cpu().numpy()


# -------------------------------------------------------------------------------- ResNet


@pytest.mark.parametrize(
    "name, count",
    [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnext50_32x4d", 25_028_904),
        ("wide_resnet50_2", 68_883_240),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
    ],
)
def test_resnet_parameter_counts(name, count):
    assert _n_params(getattr(models, name)()) == count


def test_resnet_num_classes_and_builder_fixed_kwargs():
    m = models.resnet18(num_classes=7)
    assert tuple(m.fc.weight.shape) == (7, 512)
    assert models.resnext50_32x4d().layer1[0].conv2.groups == 32
    with pytest.raises(InvalidValue, match="groups is fixed to 32"):
        models.resnext50_32x4d(groups=8)
    with pytest.raises(InvalidValue, match="BasicBlock only supports groups=1"):
        models.ResNet(models.BasicBlock, [2, 2, 2, 2], groups=2)
    with pytest.raises(InvalidValue, match="3-element"):
        models.resnet50(replace_stride_with_dilation=[False, True])


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_resnet_matches_torch_transcription(name):
    torch.manual_seed(0)
    tmodel = _T_RESNETS[name]().eval()
    _randomise(tmodel)
    dmodel = getattr(models, name)().eval()
    assert _shapes(dmodel.state_dict()) == _shapes(tmodel.state_dict())

    _to_darklib(tmodel, dmodel)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with dl.no_grad():
        out = dmodel(dl.tensor(x))
    assert out.dtype == dl.float32 and tuple(out.shape) == (2, 1000)
    np.testing.assert_allclose(_np(out), expected, rtol=1e-5, atol=1e-5)


def test_resnet18_train_step_matches_torch():
    torch.manual_seed(0)
    tmodel = _T_RESNETS["resnet18"](num_classes=5).train()
    _randomise(tmodel)
    dmodel = models.resnet18(num_classes=5).train()
    _to_darklib(tmodel, dmodel)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    y = np.array([1, 3])

    tloss = tF.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    dloss = dl.nn.functional.cross_entropy(dmodel(dl.tensor(x)), dl.tensor(y))
    dloss.backward()

    np.testing.assert_allclose(float(dloss.item()), float(tloss.item()), rtol=1e-5)
    tparams = dict(tmodel.named_parameters())
    dparams = dict(dmodel.named_parameters())
    for key in [
        "conv1.weight",
        "bn1.weight",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.bias",
        "fc.weight",
        "fc.bias",
    ]:
        expected = tparams[key].grad.numpy()
        scale = np.abs(expected).max()
        np.testing.assert_allclose(
            _np(dparams[key].grad), expected, rtol=1e-4, atol=1e-4 * scale, err_msg=key
        )
    # the batch statistics went into the running ones as in torch
    tstate, dstate = tmodel.state_dict(), dmodel.state_dict()
    for key in ["bn1.running_mean", "layer3.1.bn1.running_var", "layer4.0.bn1.num_batches_tracked"]:
        np.testing.assert_allclose(_np(dstate[key]), tstate[key].numpy(), rtol=1e-5, atol=1e-6)


def test_resnet_checkpoint_from_safetensors_loads(tmp_path):
    """The documented route: a torch state dict saved with safetensors, read by dl.load."""
    from safetensors.torch import save_file

    tmodel = _T_RESNETS["resnet18"](num_classes=3).eval()
    _randomise(tmodel, seed=3)
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in tmodel.state_dict().items()}, str(path))
    dmodel = models.resnet18(num_classes=3).eval()
    dmodel.load_state_dict(dl.load(str(path)))
    x = np.random.default_rng(4).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with dl.no_grad():
        np.testing.assert_allclose(_np(dmodel(dl.tensor(x))), expected, rtol=1e-5, atol=1e-5)


def test_resnet_initialisation():
    m = models.resnet18()
    w = _np(m.layer3[0].conv2.weight)
    # kaiming normal, fan_out, relu gain: std = sqrt(2 / (256 * 3 * 3))
    assert abs(w.std() / np.sqrt(2 / (256 * 9)) - 1) < 0.03
    assert abs(w.mean()) < 3e-3
    assert np.all(_np(m.bn1.weight) == 1) and np.all(_np(m.bn1.bias) == 0)
    assert np.all(_np(m.layer1[0].bn2.weight) == 1)  # no zero init by default


@pytest.mark.parametrize("name, last", [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_zero_init_residual(name, last):
    m = getattr(models, name)(zero_init_residual=True).eval()
    blocks = [b for layer in (m.layer1, m.layer2, m.layer3, m.layer4) for b in layer]
    for b in blocks:
        assert np.all(_np(getattr(b, last).weight) == 0)
        assert np.all(_np(b.bn1.weight) == 1)
    # each residual branch starts at zero: a block without projection is the identity on
    # non-negative inputs
    block = m.layer1[1]
    x = dl.relu(dl.randn(1, block.conv1.in_channels, 8, 8))
    with dl.no_grad():
        np.testing.assert_array_equal(_np(block(x)), _np(x))


def test_replace_stride_with_dilation():
    torch.manual_seed(0)
    dilate = [False, True, True]
    dmodel = models.resnet50(replace_stride_with_dilation=dilate, num_classes=4).eval()
    assert dmodel.layer3[0].conv2.stride == (1, 1) and dmodel.layer3[1].conv2.dilation == (2, 2)
    assert dmodel.layer4[0].conv2.dilation == (2, 2) and dmodel.layer4[1].conv2.dilation == (4, 4)
    x = dl.randn(1, 3, 32, 32)
    with dl.no_grad():
        trunk = dmodel.maxpool(dmodel.relu(dmodel.bn1(dmodel.conv1(x))))
        trunk = dmodel.layer4(dmodel.layer3(dmodel.layer2(dmodel.layer1(trunk))))
    assert tuple(trunk.shape) == (1, 2048, 4, 4)  # output stride 8

    tmodel = _TResNet(_TBottleneck, [3, 4, 6, 3], num_classes=4, dilate=dilate).eval()
    _randomise(tmodel)
    _to_darklib(tmodel, dmodel)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(_np(x))).numpy()
    with dl.no_grad():
        np.testing.assert_allclose(_np(dmodel(x)), expected, rtol=1e-5, atol=1e-5)

    with pytest.raises(NotImplementedError, match="dilation"):
        models.resnet18(replace_stride_with_dilation=[False, False, True])


@pytest.mark.parametrize("builder", [models.resnet18, models.resnet50, models.wide_resnet101_2])
def test_pretrained_weights_refused(builder):
    name = builder.__name__
    with pytest.raises(InvalidValue, match="downloads no pretrained weights") as info:
        builder(weights="IMAGENET1K_V1")
    assert f"{name}(weights='IMAGENET1K_V1')" in str(info.value)
    assert "load_state_dict(dl.load(" in str(info.value)
    with pytest.raises(InvalidValue, match=r"pretrained=True"):
        builder(pretrained=True)


# ------------------------------------------------------------------------------- ResNet9


def test_resnet9_matches_usual_pytorch_version():
    torch.manual_seed(0)
    tmodel = _TResNet9(num_classes=6, in_channels=1).eval()
    _randomise(tmodel)
    dmodel = models.resnet9(num_classes=6, in_channels=1).eval()
    assert _n_params(models.resnet9()) == 6_575_370
    assert _shapes(dmodel.state_dict()) == _shapes(tmodel.state_dict())
    _to_darklib(tmodel, dmodel)
    x = np.random.default_rng(5).standard_normal((2, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with dl.no_grad():
        np.testing.assert_allclose(_np(dmodel(dl.tensor(x))), expected, rtol=1e-5, atol=1e-5)


def test_resnet9_loss_falls():
    model = models.resnet9(num_classes=4)
    opt = dl.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(6)
    x = dl.tensor(rng.standard_normal((8, 3, 16, 16)).astype(np.float32))
    y = dl.tensor(rng.integers(0, 4, 8))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = dl.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


# ---------------------------------------------------------------------------------- UNet


@pytest.mark.parametrize("bilinear", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_unet_output_shapes(depth, bilinear):
    model = models.UNet(in_channels=3, num_classes=2, base=4, depth=depth, bilinear=bilinear)
    assert len(model.downs) == len(model.ups) == depth
    h, w = 2**depth, 3 * 2**depth
    with dl.no_grad():
        assert tuple(model(dl.randn(2, 3, h, w)).shape) == (2, 2, h, w)
        assert tuple(model(dl.randn(1, 3, 2 * h, w)).shape) == (1, 2, 2 * h, w)
    ups = [type(up.up).__name__ for up in model.ups]
    assert ups == ["Upsample" if bilinear else "ConvTranspose2d"] * depth


def test_unet_default_size_and_keys():
    plain, bilinear = models.UNet(), models.UNet(bilinear=True)
    # the sizes of the usual PyTorch UNet (Pytorch-UNet, one class)
    assert _n_params(plain) == 31_037_633
    assert _n_params(bilinear) == 17_262_977
    keys = plain.state_dict().keys()
    assert "inc.0.weight" in keys and "downs.3.1.3.weight" in keys
    assert tuple(plain.state_dict()["ups.0.up.weight"].shape) == (1024, 512, 2, 2)
    assert tuple(plain.state_dict()["outc.weight"].shape) == (1, 64, 1, 1)
    assert tuple(bilinear.state_dict()["downs.3.1.0.weight"].shape) == (512, 512, 3, 3)


@pytest.mark.parametrize("shape", [(1, 3, 24, 32), (1, 3, 32, 20), (1, 3, 8, 8)])
def test_unet_bad_size_is_named(shape):
    model = models.UNet(base=2, depth=4)
    with pytest.raises(InvalidValue, match="multiples of 2\\*\\*depth = 16") as info:
        model(dl.randn(*shape))
    assert str(shape) in str(info.value)
    with pytest.raises(InvalidValue, match=r"\(N, C, H, W\)"):
        model(dl.randn(3, 32, 32))


@pytest.mark.parametrize("bilinear", [False, True])
def test_unet_gradient_and_training(bilinear):
    rng = np.random.default_rng(7)
    # the gradient against a central difference along a random direction, in float64
    model = models.UNet(in_channels=2, num_classes=1, base=2, depth=2, bilinear=bilinear)
    model = model.double()
    x = dl.tensor(rng.standard_normal((2, 2, 8, 8)))
    target = dl.tensor((rng.random((2, 1, 8, 8)) > 0.5).astype(np.float64))
    crit = dl.nn.BCEWithLogitsLoss()
    params = list(model.parameters())
    loss = crit(model(x), target)
    loss.backward()
    direction = [rng.standard_normal(p.shape) for p in params]
    slope = sum(float((_np(p.grad) * d).sum()) for p, d in zip(params, direction))

    def loss_at(t: float) -> float:
        with dl.no_grad():
            for p, d in zip(params, direction):
                p.add_(dl.tensor(t * d))
            value = crit(model(x), target).item()
            for p, d in zip(params, direction):
                p.sub_(dl.tensor(t * d))
        return value

    eps = 1e-5
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert abs(numeric - slope) <= 1e-6 + 1e-5 * abs(slope), (numeric, slope)

    # and a few Adam steps on the one batch bring the loss down
    model = models.UNet(in_channels=2, num_classes=1, base=4, depth=2, bilinear=bilinear)
    x = x.float()
    target = (x[:, :1] > 0).float()  # a mask the network can learn from its input
    opt = dl.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = crit(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < 0.8 * losses[0], losses


# --------------------------------------------------------------------------------- DCGAN


def test_dcgan_matches_tutorial():
    torch.manual_seed(0)
    tg, td = _TGenerator(ngf=8).eval(), _TDiscriminator(ndf=8).eval()
    _randomise(tg)
    _randomise(td)
    dg, dd = models.DCGANGenerator(ngf=8).eval(), models.DCGANDiscriminator(ndf=8).eval()
    assert _shapes(dg.state_dict()) == _shapes(tg.state_dict())
    assert _shapes(dd.state_dict()) == _shapes(td.state_dict())
    _to_darklib(tg, dg)
    _to_darklib(td, dd)
    z = np.random.default_rng(8).standard_normal((3, 100, 1, 1)).astype(np.float32)
    with torch.no_grad():
        timg = tg(torch.from_numpy(z))
        tp = td(timg).numpy()
    with dl.no_grad():
        img = dg(dl.tensor(z))
        p = dd(img)
    np.testing.assert_allclose(_np(img), timg.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(p), tp, rtol=1e-5, atol=1e-6)
    # the default widths are the tutorial's
    assert _n_params(models.DCGANGenerator()) == _n_params(_TGenerator()) == 3_576_704
    assert _n_params(models.DCGANDiscriminator()) == _n_params(_TDiscriminator()) == 2_765_568


@pytest.mark.parametrize("image_size", [64, 32])
def test_dcgan_shapes_and_ranges(image_size):
    g = models.DCGANGenerator(nz=16, ngf=8, nc=3, image_size=image_size)
    d = models.DCGANDiscriminator(nc=3, ndf=8, image_size=image_size)
    z = dl.randn(4, 16, 1, 1) * 3
    with dl.no_grad():
        img = g(z)
        p = d(img)
        assert tuple(g(z.reshape(4, 16)).shape) == tuple(img.shape)  # (N, nz) accepted
    assert tuple(img.shape) == (4, 3, image_size, image_size)
    a = _np(img)
    assert a.min() >= -1 and a.max() <= 1 and a.std() > 0
    assert tuple(p.shape) == (4, 1, 1, 1)  # the tutorial's; netD(x).view(-1) gives (N,)
    assert np.all((_np(p) > 0) & (_np(p) < 1))
    # the DCGAN initialisation
    convs = [m for m in g.modules() if isinstance(m, dl.nn.ConvTranspose2d)]
    assert len(convs) == int(np.log2(image_size)) - 1
    w = np.concatenate([_np(m.weight).ravel() for m in convs])
    assert abs(w.std() - 0.02) < 0.002 and abs(w.mean()) < 0.002
    bns = [m for m in d.modules() if isinstance(m, dl.nn.BatchNorm2d)]
    gamma = np.concatenate([_np(m.weight) for m in bns])
    assert abs(gamma.mean() - 1) < 0.01 and 0.01 < gamma.std() < 0.03
    assert all(np.all(_np(m.bias) == 0) for m in bns)


def test_dcgan_bad_sizes():
    with pytest.raises(InvalidValue, match="power of two"):
        models.DCGANGenerator(image_size=48)
    with pytest.raises(InvalidValue, match="power of two"):
        models.DCGANDiscriminator(image_size=8)
    with pytest.raises(InvalidValue, match=r"\(N, 100, 1, 1\)"):
        models.DCGANGenerator(ngf=4)(dl.randn(2, 50, 1, 1))
    with pytest.raises(InvalidValue, match="expected 32x32 images"):
        models.DCGANDiscriminator(ndf=4, image_size=32)(dl.randn(2, 3, 64, 64))


def test_dcgan_adversarial_step_has_gradients():
    g = models.DCGANGenerator(nz=8, ngf=4, nc=1, image_size=32)
    d = models.DCGANDiscriminator(nc=1, ndf=4, image_size=32)
    bce = dl.nn.BCELoss()
    fake = g(dl.randn(4, 8, 1, 1))
    loss = bce(d(fake).view(-1), dl.ones(4))
    loss.backward()
    assert all(p.grad is not None and np.abs(_np(p.grad)).sum() > 0 for p in g.parameters())
