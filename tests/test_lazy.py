"""Lazy layers against torch's: the sizes inferred from the first input, the class they
become, their reprs before and after, loading a state dict, optimizers built before the
first call, and the eager layer's initialisation."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES

CASES = [
    ("LazyLinear", (4,), (2, 3)),
    ("LazyLinear", (4,), (2, 5, 3)),
    ("LazyConv1d", (6, 3), (2, 4, 9)),
    ("LazyConv2d", (8, 3), (1, 5, 6, 6)),
    ("LazyConv2d", (8, 3), (5, 6, 6)),  # unbatched
    ("LazyConv2d", (8, 3, 2, 1, 1, 2, False), (1, 4, 6, 6)),  # positional, as torch's
    ("LazyConvTranspose2d", (4, 3, 2, 1, 1, 2, True, 1), (1, 6, 5, 5)),
    ("LazyConv3d", (2, 2), (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), (2, 6, 5)),
    ("LazyConvTranspose2d", (8, 3), (1, 4, 6, 6)),
    ("LazyConvTranspose3d", (2, 2), (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), (4, 3)),
    ("LazyBatchNorm2d", (), (2, 5, 3, 3)),
    ("LazyBatchNorm3d", (), (2, 2, 3, 3, 3)),
    ("LazyInstanceNorm1d", (), (2, 3, 7)),
    ("LazyInstanceNorm2d", (), (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), (1, 2, 3, 3, 3)),
]


def _norm_repr(m):
    return repr(m).replace("darklib.", "torch.")


@pytest.mark.parametrize("name, args, shape", CASES)
def test_lazy_layers_infer_their_sizes_and_become_the_eager_layer(name, args, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch warns that lazy modules are new)
        d, t = getattr(dl.nn, name)(*args), getattr(torch.nn, name)(*args)
    assert _norm_repr(d) == repr(t)
    placeholders = [*d.parameters(), *d.buffers()]
    assert any(type(p).__name__.startswith("Uninitialized") for p in placeholders)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    yd, yt = d(dl.tensor(x)), t(torch.tensor(x))
    assert tuple(yd.shape) == tuple(yt.shape)
    assert type(d).__name__ == type(t).__name__ == name[4:]
    assert _norm_repr(d) == repr(t)
    for (kd, pd), (kt, pt) in zip(d.state_dict().items(), t.state_dict().items()):
        assert kd == kt and tuple(pd.shape) == tuple(pt.shape)
        assert type(pd).__name__ in ("Tensor", "Parameter")
    # the eager layer's initialisation (kaiming-uniform bounds for the weights)
    if name.startswith("LazyConv") or name == "LazyLinear":
        fan_in = np.prod(d.weight.shape[1:])
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(d.weight.detach().numpy()).max() <= bound + 1e-6
        assert np.abs(d.weight.detach().numpy()).max() > bound / 4


def test_uninitialized_parameters_have_no_shape_and_copy_as_placeholders():
    m = dl.nn.LazyLinear(3)
    for L, mod in ((dl, m), (torch, torch.nn.LazyLinear(3))):
        with pytest.raises(RuntimeError, match="uninitialized parameter"):
            mod.weight.shape
        assert isinstance(mod.weight, L.nn.UninitializedParameter)
        assert isinstance(mod.weight, L.nn.Parameter)
    twin = copy.deepcopy(m)
    assert isinstance(twin.weight, dl.nn.UninitializedParameter)
    twin(dl.ones(2, 5))
    assert tuple(twin.weight.shape) == (3, 5) and isinstance(m.weight, dl.nn.UninitializedParameter)


def test_optimizer_built_before_the_first_call_trains_the_created_parameters():
    m = dl.nn.Sequential(dl.nn.LazyLinear(4), dl.nn.ReLU(), dl.nn.LazyLinear(1))
    opt = dl.optim.SGD(m.parameters(), lr=0.1)
    x = dl.randn(8, 3)
    m(x)  # (the dry run that creates the parameters)
    before = [p.detach().clone() for p in m.parameters()]
    loss = m(x).pow(2).mean()
    loss.backward()
    opt.step()
    assert all(
        not np.allclose(a.numpy(), p.detach().numpy()) for a, p in zip(before, m.parameters())
    )
    assert [tuple(p.shape) for p in m.parameters()] == [(4, 3), (4,), (1, 4), (1,)]


def test_loading_a_state_dict_creates_the_parameters_with_the_saved_shapes():
    src = dl.nn.Sequential(dl.nn.Conv2d(3, 4, 3), dl.nn.BatchNorm2d(4))
    dst = dl.nn.Sequential(dl.nn.LazyConv2d(4, 3), dl.nn.LazyBatchNorm2d())
    dst.load_state_dict(src.state_dict())
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    y = dst(dl.randn(2, 3, 5, 5))
    assert tuple(y.shape) == (2, 4, 3, 3) and type(dst[0]) is dl.nn.Conv2d
    assert dst[0].in_channels == 3


@pytest.mark.parametrize("device", DEVICES)
def test_lazy_layers_follow_their_device_and_dtype(device):
    m = dl.nn.LazyLinear(2, device=device, dtype=dl.float64)
    m(dl.ones(1, 3, device=device, dtype=dl.float64))
    assert m.weight.device.type == device and m.weight.dtype == dl.float64


def test_lazy_instance_norm_reads_the_channels_of_an_unbatched_input():
    """(torch's LazyInstanceNorm2d takes dim 1 of a (C, H, W) input and then fails)"""
    m = dl.nn.LazyInstanceNorm2d(affine=True)
    y = m(dl.randn(3, 4, 4))
    assert m.num_features == 3 and tuple(m.weight.shape) == (3,) and tuple(y.shape) == (3, 4, 4)


def test_lazy_edge_cases_as_torch():
    res = {}
    for L in (dl, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bn = L.nn.LazyBatchNorm1d(affine=False, track_running_stats=False)
            y = bn(L.randn(4, 3))
            m = L.nn.LazyLinear(3)
            m.load_state_dict(L.nn.LazyLinear(3).state_dict())  # (a lazy one's: stays lazy)
            kw = L.nn.LazyLinear(3)(input=L.ones(1, 2))
        res[L.__name__] = (tuple(y.shape), type(bn).__name__, type(m).__name__, tuple(kw.shape))
        # (torch's keeps num_features=0 there, having nothing to create; darklib's says 3)
    assert res["darklib"] == res["torch"]
    assert (
        dl.nn.LazyBatchNorm1d(affine=False, track_running_stats=False)(dl.ones(2, 3)).shape[1] == 3
    )
