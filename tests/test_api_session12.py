"""torch names a script reaches for: dl.vmap, dl.utils.hooks.RemovableHandle (one handle type
for tensor, module and optimizer hooks)."""

import numpy as np
import pytest
import torch

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


def _hook_log(lib):
    """What the global module hooks of ``lib`` see on a small Sequential's forward and
    backward, in order."""
    import darklib.nn.modules.module as dmm
    import torch.nn.modules.module as tmm

    mm = tmm if lib is torch else dmm
    log = []
    net = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.ReLU())
    net[0].register_forward_hook(lambda m, a, out: log.append(("own", type(m).__name__)))
    handles = [
        mm.register_module_forward_pre_hook(
            lambda m, a: log.append(("pre", type(m).__name__, tuple(a[0].shape)))
        ),
        mm.register_module_forward_hook(
            lambda m, a, kw, out: log.append(("fwd", type(m).__name__, sorted(kw))),
            with_kwargs=True,
        ),
        mm.register_module_full_backward_pre_hook(
            lambda m, go: log.append(("bpre", type(m).__name__))
        ),
        mm.register_module_full_backward_hook(
            lambda m, gi, go: log.append(("bwd", type(m).__name__, len(gi)))
        ),
    ]
    try:
        x = lib.ones(4, 3, requires_grad=True)
        net(x).sum().backward()
        for h in handles:
            h.remove()
        net(x).sum().backward()
    finally:
        for h in handles:
            h.remove()
    return log


def test_global_module_hooks_run_as_torchs():
    assert _hook_log(dl) == _hook_log(torch)


def test_global_forward_hook_may_replace_the_output_and_always_call_runs_on_errors():
    from darklib.nn.modules import module as mm

    h = mm.register_module_forward_hook(lambda m, a, out: out * 0 if out is not None else None)
    try:
        assert dl.nn.Linear(2, 2)(dl.ones(1, 2)).abs().sum().item() == 0
    finally:
        h.remove()
    seen = []
    h = mm.register_module_forward_hook(lambda m, a, out: seen.append(out), always_call=True)
    try:
        with pytest.raises(RuntimeError, match="last dimension 2"):
            dl.nn.Linear(2, 2)(dl.ones(1, 3))
    finally:
        h.remove()
    assert seen == [None]


def test_registration_hooks_see_and_may_replace_what_modules_register():
    from darklib.nn.modules import module as mm

    log = []
    handles = [
        mm.register_module_parameter_registration_hook(
            lambda m, name, p: log.append(("param", name))
        ),
        mm.register_module_buffer_registration_hook(
            lambda m, name, b: log.append(("buffer", name)) or dl.zeros(1)
        ),
        mm.register_module_module_registration_hook(
            lambda m, name, sub: log.append(("module", name))
        ),
    ]
    try:
        net = dl.nn.Sequential(dl.nn.BatchNorm1d(2))
        net.extra = dl.nn.ReLU()
    finally:
        for h in handles:
            h.remove()
    assert ("param", "weight") in log and ("param", "bias") in log
    assert ("buffer", "running_mean") in log and ("module", "0") in log
    assert ("module", "extra") in log
    assert net[0].running_mean.shape == (1,)  # the hook's replacement was registered
    assert dl.nn.BatchNorm1d(2).running_mean.shape == (2,)  # and removed again


@pytest.mark.parametrize(
    ("n", "replicas", "drop_last"),
    [(10, 3, False), (10, 3, True), (2, 4, False), (0, 2, False), (7, 7, True), (5, 2, True)],
)
def test_distributed_sampler_gives_torchs_shares(n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    from darklib.utils.data import DistributedSampler

    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        ref = TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(ref) and len(ours) == len(ref)


def test_distributed_sampler_shuffles_alike_on_every_rank_and_per_epoch():
    from darklib.utils.data import DistributedSampler

    samplers = [DistributedSampler(range(23), 4, r, seed=7) for r in range(4)]
    shares = [list(s) for s in samplers]
    union = sorted(i for share in shares for i in share)
    assert len(union) == 24 and set(union) == set(range(23))  # one index repeated as padding
    assert shares[0] == list(DistributedSampler(range(23), 4, 0, seed=7))
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != shares
    with pytest.raises(RuntimeError, match="num_replicas"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match=r"Invalid rank 4, rank should be in .*\[0, 3\]"):
        DistributedSampler(range(4), num_replicas=4, rank=4)
    assert dl.distributed.is_available() is False and dl.distributed.is_initialized() is False


def test_linearize_matches_torch_and_reuses_its_graph():
    x = np.array([0.3, -1.2, 2.0])
    results = {}
    for lib in (torch, dl):
        out, jvp_fn = lib.func.linearize(lambda t, lib=lib: (t.sin() * t).sum() * t, lib.tensor(x))
        pushes = [
            jvp_fn(lib.tensor(v, dtype=lib.float64)).numpy() for v in ([1.0, 0, 0], [0, 1.0, 1])
        ]
        results[lib] = (out.detach().numpy(), pushes)
    np.testing.assert_allclose(results[dl][0], results[torch][0])
    for a, b in zip(results[dl][1], results[torch][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    _, jvp_fn = dl.func.linearize(lambda t: t * 2, dl.ones(3))
    with pytest.raises(ValueError, match=r"same shape as the primals, got \(2,\) for \(3,\)"):
        jvp_fn(dl.ones(2))
