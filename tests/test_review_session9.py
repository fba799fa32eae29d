"""Findings of session 9's probe reviews against torch, pinned: each test failed before
its fix."""

import numpy as np
import pytest
import torch

import darklib as dl
import darklib.nn.functional as DF

# ------------------------------------------------------------------ index tensors changed
# in place before backward: the gradient followed the new indices; now refused, as torch


# each use reads the index i = [0, 2] or the mask m = [True, False, True, False]
INDEX_USES = {
    "getitem": lambda L, x, i, m: x[i],
    "getitem mask": lambda L, x, i, m: x[m],
    "getitem tuple": lambda L, x, i, m: x[i, 1:],
    "index_select": lambda L, x, i, m: L.index_select(x, 0, i),
    "gather": lambda L, x, i, m: L.gather(x, 0, i[:, None].expand(2, 3)),
    "take": lambda L, x, i, m: L.take(x, i),
    "masked_select": lambda L, x, i, m: L.masked_select(x, m[:, None]),
    "scatter": lambda L, x, i, m: x.scatter(0, i[:, None].expand(2, 3), x[:2] * 2),
    "index_add": lambda L, x, i, m: x.index_add(0, i, x[:2] * 2),
    "index_copy": lambda L, x, i, m: x.index_copy(0, i, x[:2] * 2),
    "embedding": lambda L, x, i, m: (DF if L is dl else torch.nn.functional).embedding(i, x),
}


@pytest.mark.parametrize("use", list(INDEX_USES))
def test_an_index_changed_in_place_before_backward_is_refused_like_torch(use):
    for L in (dl, torch):
        x = L.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
        i, m = L.tensor([0, 2]), L.tensor([True, False, True, False])
        y = INDEX_USES[use](L, x, i, m)
        with L.no_grad():
            i[0] = 1
            m.logical_not_()
        with pytest.raises(RuntimeError, match=r"modified by an in-?place"):
            y.sum().backward()


def test_an_unchanged_or_copied_index_still_works():
    x = dl.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    i = dl.tensor([0, 0, 2])
    y = x[i]
    j = i.clone()
    j[0] = 3  # a copy changed: the saved index is intact
    (y * dl.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    assert x.grad[:, 0].tolist() == [3.0, 0.0, 3.0, 0.0]
    # setitem with index tensors keeps its own copy: the right gradient either way
    x.grad = None
    b = x * 1
    b[i] = dl.zeros(3, 3, dtype=dl.float64)
    i[0] = 1
    b.sum().backward()
    assert x.grad[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


# ------------------------------------------------------------------ nn and functional


def _pair(values, dtype=np.float64, grad=True):
    a = np.asarray(values, dtype)
    return dl.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _same(mine, theirs, atol=1e-6):
    np.testing.assert_allclose(
        np.asarray(mine.detach().cpu().numpy(), np.float64),
        theirs.detach().double().numpy(),
        atol=atol,
        rtol=1e-5,
    )
    assert str(mine.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_ignores_non_finite_rows_of_ignored_targets(reduction):
    # a fully masked position: its log-probabilities are -inf or NaN, its target ignored
    rows = [[-1.0, -2.0, -3.0], [-np.inf, -1.0, -1.0], [np.nan, np.nan, np.nan]]
    a, b = _pair(rows)
    t = [0, -100, -100]
    la = DF.nll_loss(a, dl.tensor(t), reduction=reduction)
    lb = torch.nn.functional.nll_loss(b, torch.tensor(t), reduction=reduction)
    _same(la, lb)
    la.sum().backward()
    lb.sum().backward()
    _same(a.grad, b.grad)


def test_rms_norm_in_float16_is_computed_in_float32_like_torch():
    for values in ([[300.0, 400.0, -500.0]], [[1e-3, 2e-3, -1e-3]]):
        a, b = _pair(values, np.float16)
        ya, yb = DF.rms_norm(a, (3,)), torch.nn.functional.rms_norm(b, (3,))
        _same(ya, yb, atol=1e-3)
        ya.sum().backward()
        yb.sum().backward()
        _same(a.grad, b.grad, atol=1e-2)
    assert dl.nn.RMSNorm(3)(dl.ones(2, 3, dtype=dl.float16)).dtype == dl.float16
    assert DF.rms_norm(dl.ones(2, 3), (3,), dl.ones(3, dtype=dl.float64)).dtype == dl.float32


def test_float16_attention_with_large_values_stays_finite():
    q = np.full((1, 2, 4), 150, np.float16)
    out = DF.scaled_dot_product_attention(*(dl.tensor(q),) * 3)
    want = torch.nn.functional.scaled_dot_product_attention(*(torch.tensor(q),) * 3)
    _same(out, want)


def test_constant_pads_take_any_rank_like_torch():
    for L in (dl, torch):
        assert tuple(L.nn.ZeroPad2d(1)(L.ones(2, 3)).shape) == (4, 5)
        assert tuple(L.nn.ConstantPad2d((1, 0, 2, 0), 1.0)(L.ones(1, 1, 1, 2, 3)).shape) == (
            1,
            1,
            1,
            4,
            4,
        )
        assert tuple(L.nn.ConstantPad3d(1, 2.0)(L.ones(2, 3, 4)).shape) == (4, 5, 6)
    with pytest.raises(RuntimeError, match="3-D or 4-D"):
        dl.nn.ReflectionPad2d(1)(dl.ones(2, 3))


def test_kl_div_broadcasts_its_target_like_torch():
    r = np.random.default_rng(0)
    x = np.log(r.dirichlet([1, 1, 1], 4))
    prior = np.array([0.2, 0.3, 0.5])
    for reduction in ("sum", "batchmean", "mean", "none"):
        for xs, ts in ((x, prior), (x[0], np.tile(prior, (4, 1)))):
            a, b = _pair(xs)
            ta, tb = _pair(ts)
            la = DF.kl_div(a, ta, reduction=reduction)
            lb = torch.nn.functional.kl_div(b, tb, reduction=reduction)
            _same(la, lb)
            (la * la).sum().backward()
            (lb * lb).sum().backward()
            _same(a.grad, b.grad)
            _same(ta.grad, tb.grad)
    with pytest.raises(dl.errors.InvalidValue, match="does not broadcast"):
        DF.kl_div(dl.zeros(4, 3), dl.zeros(2))


def test_bad_arguments_of_linear_bilinear_and_prelu_are_named():
    with pytest.raises(dl.errors.InvalidType, match="argument 'weight' must be a Tensor"):
        DF.linear(dl.ones(2, 3), np.ones((4, 3), np.float32))
    with pytest.raises(dl.errors.InvalidType, match="argument 'weight' must be a Tensor"):
        DF.bilinear(dl.ones(2, 3), dl.ones(2, 3), [1.0])
    for x, w in ((dl.randn(2, 3), dl.ones(1, dtype=dl.float64)), (dl.randn(2, 3).double(), None)):
        with pytest.raises(RuntimeError, match="prelu: Type promoting not supported"):
            DF.prelu(x, w) if w is not None else dl.nn.PReLU()(x)


# ------------------------------------------------------------------ tensor ops


def test_lerp_is_exact_at_the_end_like_torch():
    inf = float("inf")
    for L in (dl, torch):
        assert L.lerp(L.tensor([1e20, 3.0]), L.tensor([1.0, 1e-8]), 1.0).tolist() == [
            1.0,
            pytest.approx(1e-8, rel=1e-6),
        ]
        assert L.lerp(L.tensor([inf]), L.zeros(1), 0.5).tolist() == [inf]
    r = np.random.default_rng(0)
    a, b, w = (r.standard_normal((3, 4)) for _ in range(3))
    w[0] = [0.5, -0.5, 1.0, 0.49]
    for weight in (w, 0.7, 0.2):
        got = []
        for L in (dl, torch):
            A, B = L.tensor(a, requires_grad=True), L.tensor(b, requires_grad=True)
            W = L.tensor(weight, requires_grad=True) if isinstance(weight, np.ndarray) else weight
            y = L.lerp(A, B, W)
            y.sum().backward()
            got.append([y, A.grad, B.grad] + ([W.grad] if W is not weight else []))
        for mine, theirs in zip(*got):
            _same(mine, theirs, atol=1e-12)


def test_top_level_softmax_takes_its_dtype_positionally_like_torch():
    for L in (dl, torch):
        assert str(L.softmax(L.ones(2, 3), 1, L.float64).dtype).endswith("float64")
        assert str(L.log_softmax(L.ones(2, 3), 1, L.float64).dtype).endswith("float64")
    assert DF.softmax(dl.ones(2, 3), 1, 3, dl.float64).dtype == dl.float64


def test_deprecated_upsample_functions_and_adaptive_pools_with_indices():
    r = np.random.default_rng(2)
    x = r.random((1, 2, 3, 4)).astype(np.float32)
    tf = torch.nn.functional
    with pytest.warns(UserWarning):  # (torch's deprecation warnings)
        want = [tf.upsample_bilinear(torch.tensor(x), scale_factor=2)]
        want.append(tf.upsample_nearest(torch.tensor(x), size=(5, 7)))
    _same(DF.upsample_bilinear(dl.tensor(x), scale_factor=2), want[0])
    _same(DF.upsample_nearest(dl.tensor(x), size=(5, 7)), want[1])
    for n in (1, 2, 3):
        xs = r.random([2, 3] + [5] * n).astype(np.float32)
        name = f"adaptive_max_pool{n}d_with_indices"
        mine = getattr(DF, name)(dl.tensor(xs), 3)
        theirs = getattr(tf, name)(torch.tensor(xs), 3)
        _same(mine[0], theirs[0])
        assert mine[1].tolist() == theirs[1].tolist()


def test_feature_alpha_dropout_module():
    m = dl.nn.FeatureAlphaDropout(0.5)
    assert repr(m) == repr(torch.nn.FeatureAlphaDropout(0.5))
    y = m(dl.ones(64, 8, 3, 3)).numpy()
    per_channel = y.reshape(64 * 8, 9)
    assert (per_channel == per_channel[:, :1]).all()  # whole channels dropped or kept
    assert len(np.unique(per_channel[:, 0])) == 2
    m.eval()
    assert m(dl.ones(2, 3)).tolist() == [[1.0] * 3] * 2


@pytest.mark.parametrize("name", ["multi_margin_loss", "multilabel_margin_loss"])
@pytest.mark.parametrize("first", [np.inf, -np.inf, 0.2])
def test_margin_losses_with_an_infinite_target_score_like_torch(name, first):
    a, b = _pair([[first, 0.5, 1.0]])
    t = [0] if name == "multi_margin_loss" else [[0, -1, 0]]
    la = getattr(DF, name)(a, dl.tensor(t))
    lb = getattr(torch.nn.functional, name)(b, torch.tensor(t))
    _same(la, lb)
    la.backward()
    lb.backward()
    _same(a.grad, b.grad)


def test_a_zero_dim_index_counts_as_one_dim_in_gather_and_scatter_like_torch():
    got = []
    for L in (dl, torch):
        x = L.arange(4.0, requires_grad=True)
        y = L.gather(x, 0, L.tensor(2))
        y.backward()
        got.append(
            [
                y.tolist(),
                tuple(y.shape),
                x.grad.tolist(),
                L.zeros(4).scatter(0, L.tensor(2), L.tensor(5.0)).tolist(),
                L.zeros(4).scatter_add(0, L.tensor(2), L.tensor([5.0, 6])).tolist(),
                L.zeros(4).scatter_reduce(0, L.tensor(2), L.tensor([5.0]), "sum").tolist(),
                L.zeros(10).scatter_(0, L.tensor(3), value=1).tolist(),
            ]
        )
    assert got[0] == got[1]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_leaves_a_non_finite_padding_row_out(mode):
    w = [[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]]
    a, b = _pair(w)
    ids = [[0, 1], [1, 2]]
    ya = DF.embedding_bag(dl.tensor(ids), a, padding_idx=1, mode=mode)
    yb = torch.nn.functional.embedding_bag(torch.tensor(ids), b, padding_idx=1, mode=mode)
    _same(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    _same(a.grad, b.grad)
