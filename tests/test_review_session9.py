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
