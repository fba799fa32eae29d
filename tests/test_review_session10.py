"""Findings of session 10's reviews against torch, pinned: each test failed before its
fix."""

import numpy as np
import pytest
import torch

import darklib as dl
import darklib.nn.functional as DF

# ------------------------------------------------------------------ bicubic / antialias


@pytest.mark.parametrize(
    "size, antialias", [((4, 4), True), ((3, 5), True), ((16, 16), False), ((5, 13), False)]
)
def test_a_non_finite_pixel_spoils_only_the_outputs_its_filter_reaches(size, antialias):
    # the dense resampling matrices multiplied the inf by every zero weight: NaN planes
    a = np.random.default_rng(0).standard_normal((1, 2, 8, 8))
    a[0, 0, 2, 3], a[0, 1, 5, 5] = np.inf, np.nan
    kw = {"size": size, "mode": "bicubic", "align_corners": False, "antialias": antialias}
    x = dl.tensor(a, requires_grad=True)
    mine = DF.interpolate(x, **kw)
    theirs = torch.nn.functional.interpolate(torch.tensor(a), **kw).numpy()
    np.testing.assert_allclose(mine.detach().numpy(), theirs, rtol=1e-12, atol=1e-12)
    # the backward of a finite gradient stays finite; an inf gradient stays local
    g = np.zeros(mine.shape)
    g[0, 0, 0, 0] = np.inf
    mine.backward(dl.tensor(g))
    assert 0 < (~np.isfinite(x.grad.numpy())).sum() < 8 * 8


# ------------------------------------------------------------------ in place and views


def test_retain_grad_again_after_a_shape_changing_in_place_op_changes_nothing():
    # the second retain_grad() retained the new node too: the gradient came twice
    for L in (dl, torch):
        x = L.ones(3, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.unsqueeze_(0)
        y.retain_grad()
        assert y.retains_grad
        (y * 3).sum().backward()
        assert y.grad.tolist() == [3.0, 3.0, 3.0], L.__name__
        (g,) = L.autograd.grad((y * 3).sum(), [y])
        assert g.tolist() == [[3.0, 3.0, 3.0]], L.__name__


@pytest.mark.parametrize(
    "key, after",
    [
        ((0,), [[1.0] * 3] * 2),
        ((slice(None), 0), None),
        ((Ellipsis,), None),
        (([0], [1]), [[0.0, 1.0, 0.0]] * 2),
    ],
)
def test_writing_into_an_expanded_tensor_follows_torch(key, after):
    # a[:, 0] = 1 on an expanded tensor wrote one element for two; torch refuses
    for L in (dl, torch):
        a = L.zeros(3).expand(2, 3)
        if after is None:
            with pytest.raises(RuntimeError, match="more than one element of the written-to"):
                a[key] = 1.0
        else:
            with np.testing.suppress_warnings() as sup:
                sup.filter(UserWarning)
                a[key] = 1.0
            assert a.tolist() == after, L.__name__
