"""torch names a script reaches for: dl.vmap, dl.utils.hooks.RemovableHandle (one handle type
for tensor, module and optimizer hooks)."""

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.utils.hooks import RemovableHandle
from tests.oracle import DEVICES


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


def test_sync_batchnorm_is_batchnorm_in_one_process_as_torchs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 2, 2)).astype(np.float32)
    t_bn, d_bn = torch.nn.SyncBatchNorm(3), dl.nn.SyncBatchNorm(3)
    for _ in range(2):
        yt, yd = t_bn(torch.tensor(x)), d_bn(dl.tensor(x))
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(d_bn.running_var.numpy(), t_bn.running_var.numpy(), rtol=1e-5)
    assert repr(d_bn) == repr(t_bn)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        d_bn(dl.ones(3))

    def net(lib):
        return lib.nn.Sequential(
            lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4), lib.nn.Sequential(lib.nn.BatchNorm1d(4))
        )

    model = net(dl).eval()
    weight = model[1].weight
    converted = dl.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert repr(converted) == repr(torch.nn.SyncBatchNorm.convert_sync_batchnorm(net(torch)))
    assert converted[1].weight is weight and not converted[1].training
    assert isinstance(converted[2][0], dl.nn.SyncBatchNorm)


def test_data_parallel_wraps_one_module_with_torchs_state_dict_keys():
    inner = dl.nn.Linear(2, 3)
    dp = dl.nn.DataParallel(inner, device_ids=[0])
    assert list(dp.state_dict()) == list(torch.nn.DataParallel(torch.nn.Linear(2, 3)).state_dict())
    x = dl.ones(4, 2)
    assert np.array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    assert repr(dp) == repr(torch.nn.DataParallel(torch.nn.Linear(2, 3)))


def test_nll_loss_2d_is_the_deprecated_name_of_nll_loss():
    with pytest.warns(FutureWarning, match="NLLLoss2d"):
        loss = dl.nn.NLLLoss2d(ignore_index=1)
    x = dl.randn(2, 3, 4, 4).log_softmax(1)
    t = dl.randint(0, 3, (2, 4, 4))
    assert loss(x, t).item() == dl.nn.NLLLoss(ignore_index=1)(x, t).item()


def test_legacy_tensor_forms_as_torch():
    for lib in (torch, dl):
        x = lib.arange(6.0).reshape(2, 3)
        assert tuple(x.new(2, 4).shape) == (2, 4) and x.new([1, 2]).dtype == x.dtype
        assert tuple(x.new().shape) == (0,)
        assert x.layout == lib.strided
        y = lib.arange(6.0)
        y.resize_(2, 2)
        assert y.tolist() == [[0, 1], [2, 3]]
        z = lib.arange(3.0)
        z.resize_as_(lib.ones(2, 2))
        assert tuple(z.shape) == (2, 2) and z.reshape(-1)[:3].tolist() == [0, 1, 2]
        hits = lib.nonzero_static(lib.tensor([[0, 1], [2, 0], [3, 4]]), size=4, fill_value=-7)
        assert hits.tolist() == [[0, 1], [1, 0], [2, 0], [2, 1]]
        assert lib.tensor([0, 5]).nonzero_static(size=3).tolist() == [[1], [-1], [-1]]
        assert [tuple(c.shape) for c in x.unsafe_chunk(2, dim=1)] == [(2, 2), (2, 1)]
        with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
            lib.ones(2, requires_grad=True).resize_(3)


def _adaptive_pair(head_bias=True):
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 50, [5, 20, 35], div_value=2.0, head_bias=head_bias)
    d = dl.nn.AdaptiveLogSoftmaxWithLoss(16, 50, [5, 20, 35], div_value=2.0, head_bias=head_bias)
    assert [(k, tuple(v.shape)) for k, v in d.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in t.state_dict().items()
    ]
    d.load_state_dict({k: dl.tensor(v.numpy()) for k, v in t.state_dict().items()})
    return t, d


def test_adaptive_log_softmax_matches_torch():
    t, d = _adaptive_pair()
    assert repr(d) == repr(t)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 16)).astype(np.float32)
    y = np.array([0, 4, 5, 19, 20, 34, 35, 49, 2, 7, 40, 21])  # every cluster, both edges
    tx, dx = torch.tensor(x, requires_grad=True), dl.tensor(x, requires_grad=True)
    ot, od = t(tx, torch.tensor(y)), d(dx, dl.tensor(y))
    np.testing.assert_allclose(od.output.detach().numpy(), ot.output.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(od.loss.item(), ot.loss.item(), rtol=1e-5)
    ot.loss.backward()
    od.loss.backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), atol=1e-6)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(
            dict(d.named_parameters())[name].grad.numpy(), p.grad.numpy(), atol=1e-6
        )
    lp = d.log_prob(dx)
    np.testing.assert_allclose(lp.detach().numpy(), t.log_prob(tx).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(np.exp(lp.detach().numpy()).sum(1), 1.0, rtol=1e-5)
    with torch.no_grad():
        t.head.bias[5:] += 5.0  # the head now prefers the tail clusters for most rows
    d.head.bias.data = dl.tensor(t.head.bias.detach().numpy())
    assert d.predict(dx).tolist() == t.predict(tx).tolist()
    assert (t.predict(tx) >= 5).any()
    one_t, one_d = t(tx[3], torch.tensor(y[3])), d(dx[3], dl.tensor(y[3]))
    assert one_d.output.shape == () and abs(one_d.output.item() - one_t.output.item()) < 1e-5


def test_adaptive_log_softmax_errors():
    with pytest.raises(ValueError, match="cutoffs should be a sequence of unique"):
        dl.nn.AdaptiveLogSoftmaxWithLoss(16, 50, [20, 5])
    _, d = _adaptive_pair()
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 49\]"):
        d(dl.ones(2, 16), dl.tensor([1, 60]))
    with pytest.raises(RuntimeError, match="same size in the batch dimension"):
        d(dl.ones(3, 16), dl.tensor([1, 2]))


def test_dlpack_shares_memory_with_torch_and_numpy_both_ways():
    t = torch.arange(6.0).reshape(2, 3)
    d = dl.from_dlpack(t)
    d[0, 0] = 100.0
    assert t[0, 0].item() == 100.0 and d.dtype == dl.float32 and d.shape == (2, 3)
    x = dl.arange(4.0)
    back = torch.from_dlpack(x)
    back[1] = 50.0
    assert x.tolist() == [0.0, 50.0, 2.0, 3.0] and np.from_dlpack(x).tolist() == x.tolist()
    assert torch.from_dlpack(dl.to_dlpack(x)).tolist() == x.tolist()
    assert dl.from_dlpack(torch.arange(3)).dtype == dl.int64
    with pytest.raises(RuntimeError, match="require gradient"):
        torch.from_dlpack(dl.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match="__dlpack__"):
        dl.from_dlpack([1, 2])


def test_poisson_and_binomial_draws():
    dl.manual_seed(0)
    rates = dl.tensor([0.0, 1.0, 5.0, 50.0]).expand(20000, 4).contiguous()
    draws = dl.poisson(rates)
    assert draws.dtype == dl.float32 and (draws.numpy()[:, 0] == 0).all()
    np.testing.assert_allclose(draws.numpy().mean(0)[1:], [1, 5, 50], rtol=0.03)
    dl.manual_seed(1)
    again = dl.poisson(rates)
    dl.manual_seed(1)
    assert np.array_equal(dl.poisson(rates).numpy(), again.numpy())
    with pytest.raises(RuntimeError, match="invalid Poisson rate"):
        dl.poisson(dl.tensor([-1.0]))
    counts = dl.tensor([10.0, 5.0, -3.0, 3.0]).expand(20000, 4).contiguous()
    probs = dl.tensor([0.3, 1.5, 0.5, float("nan")])
    b = dl.binomial(counts, probs).numpy()  # clipped probability and count, NaN kept
    np.testing.assert_allclose(b[:, 0].mean(), 3.0, rtol=0.03)
    assert (b[:, 1] == 5).all() and (b[:, 2] == 0).all() and np.isnan(b[:, 3]).all()
    with pytest.raises(ValueError, match="floating-point dtypes for count"):
        dl.binomial(dl.tensor([3, 2]), dl.tensor([0.5, 0.5]))


@pytest.mark.parametrize("device", DEVICES)
def test_poisson_binomial_out_and_dlpack_on_each_device(device):
    dl.manual_seed(0)
    rates = dl.tensor([0.0, 2.0, 1e16], device=device).expand(4000, 3).contiguous()
    draws = dl.poisson(rates)
    assert draws.device == rates.device and draws.dtype == dl.float32
    host = draws.cpu().numpy()
    assert (host[:, 0] == 0).all()
    np.testing.assert_allclose(host[:, 1].mean(), 2.0, rtol=0.1)
    np.testing.assert_allclose(host[:, 2].mean(), 1e16, rtol=1e-6)  # (a normal there)
    counts = dl.tensor([10.0, -3.0, 4.0], device=device).expand(4000, 3).contiguous()
    probs = dl.tensor([0.3, 0.5, float("nan")], device=device)
    b = dl.binomial(counts, probs)
    assert b.device == counts.device and b.dtype == dl.float32
    bh = b.cpu().numpy()
    np.testing.assert_allclose(bh[:, 0].mean(), 3.0, rtol=0.1)
    assert (bh[:, 1] == 0).all() and np.isnan(bh[:, 2]).all()
    if device != "cpu":
        with pytest.raises(RuntimeError, match="same device"):
            dl.binomial(counts, probs.cpu())
    o = dl.empty(0, device=device)
    assert dl.add(dl.arange(3.0, device=device), 1, out=o) is o
    assert o.device == dl.device(device) and o.tolist() == [1.0, 2.0, 3.0]
    x = dl.arange(4.0, device=device)
    y = dl.from_dlpack(x)  # (a CuPy array's memory on the GPU)
    assert y.device == x.device
    y[1] = 50.0
    assert x.tolist() == [0.0, 50.0, 2.0, 3.0]


def test_old_top_level_forms():
    with pytest.warns(UserWarning, match="range is deprecated"):
        r = dl.range(1, 2, 0.25, requires_grad=True)
    with pytest.warns(UserWarning):
        ref = torch.range(1, 2, 0.25)
    assert r.tolist() == ref.tolist() and r.is_leaf and r.dtype == dl.float32
    with pytest.warns(UserWarning, match="chain_matmul is deprecated"):
        assert dl.chain_matmul(dl.ones(2, 3), dl.ones(3, 4)).tolist() == [[3.0] * 4] * 2
    assert not dl.detach(dl.ones(2, requires_grad=True)).requires_grad
    assert dl.cond(dl.tensor(False), lambda x: x + 1, lambda x: x - 1, (dl.ones(1),)).item() == 0
    assert dl.isreal(dl.ones(2)).tolist() == [True, True]


@pytest.mark.parametrize(
    "call",
    [
        lambda L, o: L.matmul(L.ones(2, 3), L.arange(12.0).reshape(3, 4), out=o),
        lambda L, o: L.add(L.arange(4.0), 2.5, alpha=2, out=o),
        lambda L, o: L.sum(L.arange(6.0).reshape(2, 3), dim=1, out=o),
        lambda L, o: L.cat([L.ones(2), L.zeros(3)], out=o),
        lambda L, o: L.exp(L.arange(3.0), out=o),
        lambda L, o: L.arange(5, out=o),
        lambda L, o: L.where(L.tensor([True, False]), L.ones(2), L.zeros(2), out=o),
        lambda L, o: L.clamp(L.arange(5.0), 1, 3, out=o),
    ],
)
def test_out_keyword_writes_the_result_into_the_given_tensor_as_torch(call):
    for lib in (torch, dl):
        expect = call(lib, lib.empty(0))
        o = lib.empty(0, dtype=expect.dtype)
        got = call(lib, o)
        assert got is o and o.tolist() == expect.tolist()


def test_out_keyword_rules():
    v, i = dl.empty(0), dl.empty(0, dtype=dl.int64)
    res = dl.max(dl.tensor([[1.0, 5.0], [3.0, 2.0]]), 1, out=(v, i))
    assert res.values is v and res.indices is i and v.tolist() == [5, 3] and i.tolist() == [1, 0]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        dl.add(dl.ones(2), dl.ones(2), out=dl.empty(2, dtype=dl.int64))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        dl.mul(dl.ones(2, requires_grad=True), 2, out=dl.empty(2))
    with dl.no_grad():
        dl.mul(dl.ones(2, requires_grad=True), 2, out=dl.empty(2))  # fine outside autograd
    full = dl.ones(5)
    with pytest.warns(UserWarning, match="was resized"):
        dl.exp(dl.zeros(2), out=full)
    assert full.tolist() == [1.0, 1.0]
    same_shape = dl.full((2,), 7.0)
    before = same_shape._version
    dl.add(dl.ones(2), 1, out=same_shape)
    assert same_shape.tolist() == [2.0, 2.0] and same_shape._version > before


def test_searchsorted_refuses_zero_dim_boundaries_as_torch():
    for lib in (torch, dl):
        with pytest.raises(RuntimeError, match="boundaries tensor should have positive dimension"):
            lib.searchsorted(lib.tensor(1.0), lib.tensor([1.0]))


def test_compile_runs_eagerly_and_version_names():
    model = dl.nn.Linear(2, 2)
    assert dl.compile(model) is model and model.compile() is None

    @dl.compile
    def double(x):
        return x * 2

    @dl.compile(mode="max-autotune", fullgraph=True)
    def inc(x):
        return x + 1

    assert double(dl.ones(1)).item() == 2.0 and inc(dl.ones(1)).item() == 2.0
    with pytest.raises(TypeError, match="module or a function"):
        dl.compile(3)
    assert dl.version.__version__ == dl.__version__
    assert dl.version.cuda is None or isinstance(dl.version.cuda, str)


@pytest.mark.parametrize(
    "call",
    [
        lambda L, F, x: L.prod(x),
        lambda L, F, x: L.trace(x[0, 0, 0]),
        lambda L, F, x: L.quantile(x.flatten()[:10].float(), 0.5),
        lambda L, F, x: F.max_pool3d(x, 2),
        lambda L, F, x: F.avg_pool3d(x, 2),
        lambda L, F, x: F.adaptive_max_pool3d(x, 2),
        lambda L, F, x: F.grid_sample(x[:, :, 0], L.zeros(2, 4, 4, 2), align_corners=False),
        lambda L, F, x: L.linalg.lstsq(x[0, 0, 0].float(), x[0, 0, 1].float()).solution,
        lambda L, F, x: L.linalg.solve(x[0, 0, 0] + 4 * L.eye(4), x[0, 0, 1]),
        lambda L, F, x: L.linalg.qr(x[0, 0, 0])[0],
        lambda L, F, x: L.linalg.vecdot(x.float(), x.float()),
        lambda L, F, x: F.pad(x[0], (1, 1, 1, 1), mode="reflect"),
        lambda L, F, x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="reflect"),
        lambda L, F, x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate"),
        lambda L, F, x: F.pad(x[0, 0], (1, 1), mode="circular"),
        lambda L, F, x: F.pad(x, (1, 1)),
    ],
)
def test_autocast_dtypes_of_float32_and_composite_ops_as_torch(call):
    """Under CPU float16 autocast these ops run in float32 (vecdot in float16), and a
    composite op's inner products are not lowered (lstsq stays float32)."""
    import torch.nn.functional as TF

    import darklib.nn.functional as DF

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4, 4)).astype(np.float16)
    dtypes = []
    for lib, F in ((torch, TF), (dl, DF)):
        with lib.autocast("cpu", dtype=lib.float16):
            dtypes.append(str(call(lib, F, lib.tensor(x)).dtype).split(".")[1])
    assert dtypes[0] == dtypes[1]


def test_return_types_name_the_named_tuples_ops_return():
    assert isinstance(dl.max(dl.ones(2, 3), 0), dl.return_types.max)
    assert isinstance(dl.sort(dl.ones(3)), dl.return_types.sort)
    assert isinstance(dl.linalg.qr(dl.eye(2)), dl.return_types.linalg_qr)
    for name in dl.return_types.__all__:
        fields = getattr(dl.return_types, name)._fields
        assert fields == getattr(torch.return_types, name).__match_args__, name


@pytest.mark.parametrize("mod", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
def test_recurrent_layers_take_half_inputs_under_autocast(mod):
    """torch runs its recurrent layers on float16 inputs under CPU autocast; darklib runs
    them in float32 (its float32 weights), giving the float32 result of the rounded input."""
    layer = getattr(dl.nn, mod)(4, 3)
    x = dl.randn(5, 2, 4) if not mod.endswith("Cell") else dl.randn(2, 4)
    with dl.autocast("cpu", dtype=dl.float16):
        out = layer(x.half())
    out = out[0] if isinstance(out, tuple) else out
    ref = layer(x.half().float())
    ref = ref[0] if isinstance(ref, tuple) else ref
    assert out.dtype == dl.float32
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="float16"):
        layer(x.half())  # outside autocast the mixed dtypes are refused, as torch


def test_storages_tell_views_from_copies_as_torch():
    for lib in (torch, dl):
        t = lib.arange(6.0)
        views = (t[2:], t.reshape(2, 3).t(), t.view(3, 2)[1])
        assert all(v.untyped_storage().data_ptr() == t.data_ptr() for v in views)
        assert t.clone().untyped_storage().data_ptr() != t.data_ptr()
        s = t[2:].untyped_storage()
        assert s.nbytes() == len(s) == 24 and str(s.device) == "cpu"
        with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
            typed = t.storage()
        assert typed.size() == 6 and str(typed.dtype).split(".")[1] == "float32"


def test_sdpa_kernel_allows_and_refuses_as_torch_on_the_cpu():
    from torch.nn.attention import SDPBackend as TB
    from torch.nn.attention import sdpa_kernel as t_kernel

    from darklib.nn.attention import SDPBackend, sdpa_kernel

    assert list(SDPBackend.__members__) == list(TB.__members__)
    for lib, kernel, backends in ((torch, t_kernel, TB), (dl, sdpa_kernel, SDPBackend)):
        q = lib.ones(1, 1, 2, 4)
        attend = lib.nn.functional.scaled_dot_product_attention
        with kernel(backends.MATH):
            assert tuple(attend(q, q, q).shape) == (1, 1, 2, 4)
        with kernel([backends.FLASH_ATTENTION]):
            attend(q, q, q)
        with pytest.raises(RuntimeError, match="No viable backend"):
            with kernel([backends.CUDNN_ATTENTION]):
                attend(q, q, q)
        attend(q, q, q)  # all allowed again after the block


def test_forward_ad_tangents_match_torch():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    tx, tw = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    results = []
    for lib in (torch, dl):
        fw = lib.autograd.forward_ad
        with fw.dual_level():
            dx = fw.make_dual(lib.tensor(x), lib.tensor(tx))
            dw = fw.make_dual(lib.tensor(w), lib.tensor(tw))
            h = lib.tanh(dx @ dw)
            y = (h * h).sum(dim=1)
            tangents = [fw.unpack_dual(v).tangent for v in (h, y, dx)]
            assert fw.unpack_dual(lib.tensor(x)).tangent is None
        assert fw.unpack_dual(y).tangent is None  # the level is closed
        results.append([t.detach().numpy() for t in tangents])
    for ours, ref in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="no level exists"):
        dl.autograd.forward_ad.make_dual(dl.ones(2), dl.ones(2))
    with dl.autograd.forward_ad.dual_level():
        with pytest.raises(ValueError, match="different size"):
            dl.autograd.forward_ad.make_dual(dl.ones(2), dl.ones(3))


def test_interop_and_warn_always_switches_are_recorded():
    assert dl.get_num_interop_threads() >= 1
    dl.set_num_interop_threads(3)
    dl.set_warn_always(True)
    try:
        assert dl.get_num_interop_threads() == 3 and dl.is_warn_always_enabled()
        with pytest.raises(ValueError, match="positive int"):
            dl.set_num_interop_threads(0)
    finally:
        dl.set_warn_always(False)
