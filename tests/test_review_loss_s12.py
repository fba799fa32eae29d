"""Review of the losses and attention against torch 2.13: regressions for the differences
found (torch's inference fast paths for fully masked queries, kl_div's 'mean' warning,
legacy reduction flags, margin-loss and cross-entropy shapes torch accepts, errors)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import darklib as dl
import darklib.nn.functional as F
from darklib.errors import InvalidValue

E, H = 8, 2


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x.detach().numpy()


def _pair(torch_module, dl_module):
    dl_module.load_state_dict(
        {k: dl.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()}
    )
    return torch_module.eval(), dl_module.eval()


def _close(d, t, atol=1e-5):
    d, t = _np(d), _np(t)
    assert d.shape == t.shape
    np.testing.assert_array_equal(np.isnan(d), np.isnan(t))
    np.testing.assert_allclose(d, t, atol=atol, rtol=1e-4, equal_nan=True)


# ------------------------------------------------------------------ attention


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("mask", ["padding", "attn"])
def test_mha_fully_masked_query_without_weights_as_torch(grad, mask):
    """torch's inference fast path (batch-first self-attention without grad) gives a
    query whose keys are all masked NaN; its SDPA path (grad recorded) gives zeros."""
    torch.manual_seed(0)
    tm, dm = _pair(
        torch.nn.MultiheadAttention(E, H, batch_first=True),
        dl.nn.MultiheadAttention(E, H, batch_first=True),
    )
    x = np.random.default_rng(0).standard_normal((2, 4, E)).astype(np.float32)
    if mask == "padding":
        m = np.zeros((2, 4), bool)
        m[0] = True
        kw = "key_padding_mask"
    else:
        m = np.zeros((4, 4), bool)
        m[1] = True
        kw = "attn_mask"
    tx, dx = torch.tensor(x), dl.tensor(x)
    with torch.set_grad_enabled(grad):
        to = tm(tx, tx, tx, need_weights=False, **{kw: torch.tensor(m)})[0]
    with dl.set_grad_enabled(grad):
        do, w = dm(dx, dx, dx, need_weights=False, **{kw: dl.tensor(m)})
    assert w is None
    assert bool(torch.isnan(to).any()) != grad  # (the two torch paths differ)
    _close(do, to)


def test_mha_fast_path_needs_self_attention_and_bool_masks():
    torch.manual_seed(0)
    tm, dm = _pair(
        torch.nn.MultiheadAttention(E, H, batch_first=True),
        dl.nn.MultiheadAttention(E, H, batch_first=True),
    )
    rng = np.random.default_rng(1)
    q, k = (rng.standard_normal((2, s, E)).astype(np.float32) for s in (3, 4))
    kpm = np.zeros((2, 4), bool)
    kpm[1] = True
    fkpm = np.where(kpm, -np.inf, 0.0).astype(np.float32)
    for (a, b), m in (((q, k), kpm), ((k, k), fkpm)):  # cross-attention; a float mask
        ta, tb = torch.tensor(a), torch.tensor(b)
        da, db = dl.tensor(a), dl.tensor(b)
        with torch.no_grad():
            to = tm(ta, tb, tb, key_padding_mask=torch.tensor(m), need_weights=False)[0]
        with dl.no_grad():
            do = dm(da, db, db, key_padding_mask=dl.tensor(m), need_weights=False)[0]
        assert not bool(torch.isnan(to).any())
        _close(do, to)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("float_mask", [False, True])
def test_encoder_layer_fully_padded_sample_in_inference_as_torch(norm_first, float_mask):
    torch.manual_seed(0)
    kw = {"dim_feedforward": 16, "dropout": 0.0, "batch_first": True, "norm_first": norm_first}
    tl, dlayer = _pair(
        torch.nn.TransformerEncoderLayer(E, H, **kw), dl.nn.TransformerEncoderLayer(E, H, **kw)
    )
    x = np.random.default_rng(2).standard_normal((3, 5, E)).astype(np.float32)
    kpm = np.zeros((3, 5), bool)
    kpm[0] = True
    kpm[1, 3:] = True
    if float_mask:
        kpm = np.where(kpm, -np.inf, 0.0).astype(np.float32)
    with torch.no_grad():
        to = tl(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm))
    with dl.no_grad():
        do = dlayer(dl.tensor(x), src_key_padding_mask=dl.tensor(kpm))
    assert bool(torch.isnan(to[0]).all()) and not bool(torch.isnan(to[1:]).any())
    _close(do, to)


@pytest.mark.parametrize(
    "layer_kw, enc_kw",
    [
        ({}, {}),
        ({"activation": "gelu"}, {}),
        ({}, {"enable_nested_tensor": False}),
        ({"norm_first": True}, {}),
    ],
)
@pytest.mark.parametrize("left_aligned", [True, False])
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_encoder_padded_outputs_in_inference_as_torch(layer_kw, enc_kw, left_aligned):
    """torch's TransformerEncoder runs right-padded batches as nested tensors in inference
    (their padded positions come back as zeros), unless the layer does not qualify."""
    torch.manual_seed(0)
    kw = {"dim_feedforward": 16, "dropout": 0.0, "batch_first": True, **layer_kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's "enable_nested_tensor is True, but...")
        te = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, **kw), 2, **enc_kw)
    de = dl.nn.TransformerEncoder(dl.nn.TransformerEncoderLayer(E, H, **kw), 2, **enc_kw)
    te, de = _pair(te, de)
    assert de.use_nested_tensor == te.use_nested_tensor
    x = np.random.default_rng(3).standard_normal((3, 5, E)).astype(np.float32)
    kpm = np.zeros((3, 5), bool)
    kpm[0] = True
    kpm[1, 3:] = True
    if not left_aligned:
        kpm[2, 0] = True
    with torch.no_grad():
        to = te(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm))
    with dl.no_grad():
        do = de(dl.tensor(x), src_key_padding_mask=dl.tensor(kpm))
    _close(do, to)
    # with gradients recorded, torch runs the padded path (no zeros)
    to = te(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm))
    do = de(dl.tensor(x), src_key_padding_mask=dl.tensor(kpm))
    _close(do, to)


def test_sdpa_rank_error_names_the_shape():
    x = dl.randn(8)
    with pytest.raises(InvalidValue, match=r"query \(8,\)"):
        F.scaled_dot_product_attention(x, x, x)


# ------------------------------------------------------------------ losses


def test_kl_div_mean_warns_as_torch():
    x = dl.randn(3, 4).log_softmax(1)
    y = dl.rand(3, 4)
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(x, y)
    with pytest.warns(UserWarning, match="batchmean"):
        dl.nn.KLDivLoss()(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for reduction in ("batchmean", "sum", "none"):
            F.kl_div(x, y, reduction=reduction)


@pytest.mark.parametrize("size_average", [None, True, False])
@pytest.mark.parametrize("reduce", [None, True, False])
def test_kl_div_loss_legacy_flags_replace_batchmean_as_torch(size_average, reduce):
    rng = np.random.default_rng(4)
    x = np.log(rng.uniform(0.1, 1, (3, 4))).astype(np.float32)
    y = rng.uniform(0.1, 1, (3, 4)).astype(np.float32)
    kw = {"size_average": size_average, "reduce": reduce, "reduction": "batchmean"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm, dm = torch.nn.KLDivLoss(**kw), dl.nn.KLDivLoss(**kw)
        t, d = tm(torch.tensor(x), torch.tensor(y)), dm(dl.tensor(x), dl.tensor(y))
    assert dm.reduction == tm.reduction
    _close(d, t)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_unbatched_class_loss_takes_a_one_element_target_as_torch(fn, reduction):
    x = np.random.default_rng(5).standard_normal(4).astype(np.float32)
    t = getattr(TF, fn)(torch.tensor(x), torch.tensor([2]), reduction=reduction)
    xd = dl.tensor(x, requires_grad=True)
    d = getattr(F, fn)(xd, dl.tensor([2]), reduction=reduction)
    _close(d, t)
    d.backward()  # (torch's own backward refuses this form; the target () one is the same)
    xt = torch.tensor(x, requires_grad=True)
    getattr(TF, fn)(xt, torch.tensor(2), reduction=reduction).backward()
    _close(xd.grad, xt.grad)
    with pytest.raises(InvalidValue, match=r"target \(2,\)"):
        getattr(F, fn)(dl.tensor(x), dl.tensor([2, 1]))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    "fn, shape, target",
    [
        ("multi_margin_loss", (), 0),
        ("multi_margin_loss", (), [0]),
        ("multi_margin_loss", (1, 4), 2),
        ("multi_margin_loss", (4,), [2]),
        ("multilabel_margin_loss", (), 0),
        ("multilabel_margin_loss", (), [-1]),
    ],
)
def test_margin_losses_take_torchs_scalar_forms(fn, shape, target, reduction):
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    xd = dl.tensor(x, requires_grad=True)
    t = getattr(TF, fn)(xt, torch.tensor(target), reduction=reduction)
    d = getattr(F, fn)(xd, dl.tensor(target), reduction=reduction)
    _close(d, t)
    t.sum().backward()
    d.sum().backward()
    _close(xd.grad, xt.grad)


@pytest.mark.parametrize("fn", ["multi_margin_loss", "multilabel_margin_loss"])
def test_margin_losses_refuse_zero_classes_naming_the_shape(fn):
    target = dl.zeros((3, 0) if fn == "multilabel_margin_loss" else (3,), dtype=dl.int64)
    with pytest.raises(InvalidValue, match=r"non-empty.*\(3, 0\)"):
        getattr(F, fn)(dl.randn(3, 0), target)
    with pytest.raises(RuntimeError):
        getattr(TF, fn)(torch.randn(3, 0), torch.zeros(tuple(target.shape), dtype=torch.long))


def test_cosine_embedding_target_of_the_wrong_batch_names_the_shapes():
    a, b = dl.randn(3, 4), dl.randn(3, 4)
    with pytest.raises(InvalidValue, match=r"target \(4,\).*\(3, 4\).*\(3, 4\)"):
        F.cosine_embedding_loss(a, b, dl.ones(4))
    with pytest.raises(RuntimeError):
        TF.cosine_embedding_loss(torch.randn(3, 4), torch.randn(3, 4), torch.ones(4))
