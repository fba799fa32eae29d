"""torch names a script reaches for: dl.vmap, dl.utils.hooks.RemovableHandle (one handle type
for tensor, module and optimizer hooks)."""

import numpy as np

import darklib as dl
from darklib.utils.hooks import RemovableHandle


def test_top_level_vmap_is_func_vmap():
    x = dl.arange(12.0).reshape(3, 4)
    assert dl.vmap is dl.func.vmap
    np.testing.assert_array_equal(dl.vmap(lambda row: row.sum())(x).numpy(), [6.0, 22.0, 38.0])


def test_one_removable_handle_type_for_every_hook():
    calls = []
    t = dl.ones(2, requires_grad=True)
    m = dl.nn.Linear(2, 2)
    opt = dl.optim.SGD(m.parameters(), lr=0.1)
    handles = [
        t.register_hook(lambda g: calls.append("tensor")),
        m.register_forward_hook(lambda *a: calls.append("module")),
        opt.register_step_pre_hook(lambda *a: calls.append("optimizer")),
    ]
    assert all(type(h) is RemovableHandle for h in handles)
    assert len({h.id for h in handles}) == 3
    for h in handles:
        h.remove()
        h.remove()  # (a second remove does nothing)
    m(t).sum().backward()
    opt.step()
    assert calls == []
    with t.register_hook(lambda g: calls.append("inside")):
        (t * 2).sum().backward()
    (t * 2).sum().backward()
    assert calls == ["inside"]
