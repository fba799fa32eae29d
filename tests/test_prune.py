"""dl.nn.utils.prune against torch.nn.utils.prune: masks, reparameterisation, iterative
and global pruning, removal, errors."""

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as TP

import darklib as dl
import darklib.nn.utils.prune as DP
from tests.oracle import DEVICES


def _pair(kind="linear", seed=0):
    """The same layer in torch and darklib, with distinct random weights."""
    rng = np.random.default_rng(seed)
    if kind == "linear":
        t, d = torch.nn.Linear(5, 7), dl.nn.Linear(5, 7)
    else:
        t, d = torch.nn.Conv2d(3, 6, 3), dl.nn.Conv2d(3, 6, 3)
    state = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in t.state_dict().items()}
    t.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    d.load_state_dict({k: dl.tensor(v) for k, v in state.items()})
    return t, d


def _same(t_tensor, d_tensor):
    np.testing.assert_array_equal(d_tensor.detach().numpy(), t_tensor.detach().numpy())


@pytest.mark.parametrize(
    "steps",
    [
        [("l1_unstructured", {"amount": 0.3})],
        [("l1_unstructured", {"amount": 0.3}), ("l1_unstructured", {"amount": 4})],
        [("ln_structured", {"amount": 2, "n": 2, "dim": 0})],
        [("ln_structured", {"amount": 0.5, "n": 1, "dim": 1})],
        [("ln_structured", {"amount": 1, "n": float("inf"), "dim": -1})],
        [("l1_unstructured", {"amount": 0.2}), ("ln_structured", {"amount": 2, "n": 2, "dim": 0})],
        [("ln_structured", {"amount": 2, "n": 2, "dim": 0}), ("l1_unstructured", {"amount": 0.5})],
    ],
)
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_masks_and_pruned_weights_match_torch(steps, kind):
    t, d = _pair(kind)
    for fn, kw in steps:
        getattr(TP, fn)(t, "weight", **kw)
        getattr(DP, fn)(d, "weight", **kw)
        _same(t.weight_mask, d.weight_mask)
        _same(t.weight, d.weight)
    assert sorted(d.state_dict()) == sorted(t.state_dict())
    assert isinstance(d.weight_orig, dl.nn.Parameter) and "weight" not in d._parameters
    shape = (2, 5) if kind == "linear" else (2, 3, 8, 8)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    yt, yd = t(torch.tensor(x)), d(dl.tensor(x))
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    (yt**2).sum().backward()
    (yd**2).sum().backward()
    np.testing.assert_allclose(d.weight_orig.grad.numpy(), t.weight_orig.grad.numpy(), atol=1e-4)
    assert (d.weight_orig.grad.numpy()[d.weight_mask.numpy() == 0] == 0).all()


def test_global_unstructured_and_importance_scores_match_torch():
    (t1, d1), (t2, d2) = _pair("linear", 0), _pair("conv", 1)
    TP.global_unstructured(
        [(t1, "weight"), (t1, "bias"), (t2, "weight")], TP.L1Unstructured, amount=0.6
    )
    DP.global_unstructured(
        [(d1, "weight"), (d1, "bias"), (d2, "weight")], DP.L1Unstructured, amount=0.6
    )
    for t_mod, d_mod, name in ((t1, d1, "weight"), (t1, d1, "bias"), (t2, d2, "weight")):
        _same(getattr(t_mod, name + "_mask"), getattr(d_mod, name + "_mask"))
    total = sum(m.numel() for m in (d1.weight_mask, d1.bias_mask, d2.weight_mask))
    zeros = sum(int((m == 0).sum().item()) for m in (d1.weight_mask, d1.bias_mask, d2.weight_mask))
    assert zeros == round(0.6 * total)
    t, d = _pair("linear", 2)
    scores = np.arange(35, dtype=np.float32).reshape(7, 5)[::-1].copy()
    TP.l1_unstructured(t, "weight", amount=10, importance_scores=torch.tensor(scores))
    DP.l1_unstructured(d, "weight", amount=10, importance_scores=dl.tensor(scores))
    _same(t.weight_mask, d.weight_mask)
    assert d.weight_mask.numpy().reshape(-1)[-10:].sum() == 0  # the lowest scores went


def test_remove_makes_the_pruning_permanent():
    t, d = _pair("conv")
    for lib, m in ((TP, t), (DP, d)):
        lib.ln_structured(m, "weight", amount=3, n=2, dim=0)
        lib.l1_unstructured(m, "bias", amount=2)
        assert lib.is_pruned(m)
        lib.remove(m, "weight")
        lib.remove(m, "bias")
        assert not lib.is_pruned(m)
    assert sorted(d.state_dict()) == ["bias", "weight"] and isinstance(d.weight, dl.nn.Parameter)
    _same(t.weight, d.weight)
    _same(t.bias, d.bias)
    assert int((d.weight.detach().numpy().reshape(6, -1) == 0).all(axis=1).sum()) == 3
    with pytest.raises(ValueError, match="has to be pruned before"):
        DP.remove(d, "weight")


def test_random_methods_prune_the_asked_share():
    dl.manual_seed(0)
    _, d = _pair("conv")
    DP.random_unstructured(d, "weight", amount=0.25)
    assert int((d.weight_mask == 0).sum().item()) == round(0.25 * 162)
    DP.random_structured(d, "weight", amount=2, dim=0)
    channels = d.weight_mask.numpy().reshape(6, -1)
    assert int((channels == 0).all(axis=1).sum()) == 2
    _, d2 = _pair("linear")
    DP.random_structured(d2, "weight", amount=0.4, dim=1)
    assert int((d2.weight_mask.numpy() == 0).all(axis=0).sum()) == 2


def test_custom_mask_identity_and_training_keeps_pruned_entries_zero():
    _, d = _pair("linear")
    mask = dl.tensor((np.arange(35).reshape(7, 5) % 3 != 0).astype(np.float32))
    DP.custom_from_mask(d, "weight", mask)
    _same(torch.tensor(mask.numpy()), d.weight_mask)
    DP.identity(d, "bias")
    assert d.bias_mask.sum().item() == 7
    opt = dl.optim.SGD(d.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        d(dl.ones(4, 5)).pow(2).sum().backward()
        opt.step()
    d(dl.ones(1, 5))  # the pre-hook recomputes weight from weight_orig
    assert (d.weight.detach().numpy()[mask.numpy() == 0] == 0).all()
    assert not np.allclose(d.weight.detach().numpy(), 0)
    with pytest.raises(ValueError, match=r"mask's shape \(2, 2\)"):
        DP.custom_from_mask(_pair("linear")[1], "weight", dl.ones(2, 2))


@pytest.mark.parametrize(
    ("amount", "error", "message"),
    [
        (1.5, ValueError, "should either be a float in the range"),
        (-1, ValueError, "should either be a float in the range"),
        ("a", TypeError, "Invalid type for amount"),
        (100, ValueError, "should be smaller than the number of parameters to prune=35"),
    ],
)
def test_bad_amounts_raise_torchs_errors(amount, error, message):
    t, d = _pair("linear")
    with pytest.raises(error, match=message):
        TP.l1_unstructured(t, "weight", amount=amount)
    with pytest.raises(error, match=message):
        DP.l1_unstructured(d, "weight", amount=amount)
    # a failed pruning leaves the module as it was
    assert sorted(d.state_dict()) == ["bias", "weight"] and not DP.is_pruned(d)


@pytest.mark.parametrize("device", DEVICES)
def test_every_method_builds_its_mask_on_the_parameters_device(device):
    dl.manual_seed(0)
    layer = dl.nn.Conv2d(3, 6, 3).to(device)
    DP.random_structured(layer, "weight", amount=2, dim=0)
    DP.ln_structured(layer, "weight", amount=1, n=2, dim=1)
    DP.l1_unstructured(layer, "weight", amount=0.2)
    DP.random_unstructured(layer, "bias", amount=2)
    for name in ("weight", "bias"):
        mask = getattr(layer, name + "_mask")
        assert mask.device == getattr(layer, name).device == dl.device(device)
    kept = layer.weight_mask.cpu().numpy()
    assert (kept.reshape(6, -1).any(axis=1).sum() == 4) and (kept.any(axis=(0, 2, 3)).sum() == 2)
    assert int((layer.bias_mask == 0).sum()) == 2
    layer(dl.randn(1, 3, 5, 5, device=device)).sum().backward()
    grad = layer.weight_orig.grad.cpu().numpy()
    assert (grad[kept == 0] == 0).all()
