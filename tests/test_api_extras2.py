"""Rprop, ASGD, optimizer hooks, init.sparse_, StackDataset, Bilinear and Embedding's
max_norm against torch: trajectories, state dicts, values, gradients and errors."""

import numpy as np
import pytest
import torch

import darklib as dl
from darklib.optim import optimizer as dl_optimizer
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPES = [(3, 4), (5,), (), (2, 3)]
DT = {np.float32: (dl.float32, torch.float32), np.float64: (dl.float64, torch.float64)}


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.detach().cpu().numpy())


def _grads(steps, dtype, seed=1):
    """Per step one gradient per parameter: random signs (Rprop flips), some exact zeros,
    and parameter 1 without a gradient on steps 3 and 7."""
    r = rng(seed)
    out = []
    for k in range(steps):
        gs = []
        for s in SHAPES:
            g = r.standard_normal(s).astype(dtype)
            g = np.where(r.random(s) < 0.15, 0, g).astype(dtype)
            gs.append(g)
        if k in (3, 7):
            gs[1] = None
        out.append(gs)
    return out


def _pair(name, kw, dtype, device="cpu", groups=True):
    """The same parameters (two groups, the second with its own lr) in both libraries."""
    r = rng(0)
    arrays = [r.standard_normal(s).astype(dtype) for s in SHAPES]
    dps = [dl.tensor(a.copy(), device=device, requires_grad=True) for a in arrays]
    tps = [torch.nn.Parameter(torch.tensor(a.copy())) for a in arrays]

    def split(ps):
        if not groups:
            return ps
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.003}]

    return (
        dps,
        tps,
        getattr(dl.optim, name)(split(dps), **kw),
        getattr(torch.optim, name)(split(tps), **kw),
    )


def _step(opt, ps, gs, lib, device="cpu"):
    for p, g in zip(ps, gs):
        if g is None:
            p.grad = None
        else:
            p.grad = dl.tensor(g, device=device) if lib is dl else torch.tensor(g)
    opt.step()


def _same_state(dopt, topt, dps, tps, tol):
    for dp, tp in zip(dps, tps):
        ds, ts = dopt.state[dp], topt.state[tp]
        assert list(ds) == list(ts), "state keys and their order"
        for key, tv in ts.items():
            dv = ds[key]
            assert dv.dtype.name == str(tv.dtype).replace("torch.", ""), key
            assert tuple(dv.shape) == tuple(tv.shape), key
            np.testing.assert_allclose(_np(dv), _np(tv), rtol=tol, atol=tol, err_msg=key)


OPT_CASES = [
    ("Rprop", {}),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(lr=0.02, maximize=True)),
    ("ASGD", {}),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1)),
    ("ASGD", dict(lr=0.02, lambd=0.1, t0=0, maximize=True, weight_decay=0.05)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", OPT_CASES)
def test_trajectory_and_state_match_torch(name, kw, dtype, device):
    tol = 2e-5 if dtype == np.float32 else 1e-12
    dps, tps, dopt, topt = _pair(name, kw, dtype, device)
    moved = False
    for k, gs in enumerate(_grads(30, dtype)):
        _step(dopt, dps, gs, dl, device)
        _step(topt, tps, gs, torch)
        for i, (dp, tp) in enumerate(zip(dps, tps)):
            np.testing.assert_allclose(
                _np(dp), _np(tp), rtol=tol, atol=tol, err_msg=f"{name} step {k} param {i}"
            )
            moved |= not np.allclose(_np(dp), rng(0).standard_normal(1)[0])
    assert moved
    _same_state(dopt, topt, dps, tps, tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", OPT_CASES[1::2] + OPT_CASES[4:5])
def test_state_dict_save_and_load_mid_run_like_torch(name, kw, dtype):
    """Run 10 steps, carry both state dicts into fresh optimizers built with default
    hyper-parameters, run 15 more: darklib follows torch (ASGD's eta and mu become the
    parameter's dtype on load in both)."""
    tol = 2e-5 if dtype == np.float32 else 1e-12
    grads = _grads(25, dtype, seed=5)
    dps, tps, dopt, topt = _pair(name, kw, dtype)
    for gs in grads[:10]:
        _step(dopt, dps, gs, dl)
        _step(topt, tps, gs, torch)
    dsd, tsd = dopt.state_dict(), topt.state_dict()
    assert [list(g) for g in dsd["param_groups"]] == [list(g) for g in tsd["param_groups"]]
    assert dsd["param_groups"] == tsd["param_groups"]
    assert {i: list(s) for i, s in dsd["state"].items()} == {
        i: list(s) for i, s in tsd["state"].items()
    }
    dps2 = [dl.tensor(_np(p), requires_grad=True) for p in dps]
    tps2 = [torch.nn.Parameter(p.detach().clone()) for p in tps]
    dopt2 = getattr(dl.optim, name)([{"params": dps2[:2]}, {"params": dps2[2:]}])
    topt2 = getattr(torch.optim, name)([{"params": tps2[:2]}, {"params": tps2[2:]}])
    dopt2.load_state_dict(dsd)
    topt2.load_state_dict(tsd)
    assert dopt2.param_groups[1]["lr"] == 0.003
    _same_state(dopt2, topt2, dps2, tps2, tol)
    for gs in grads[10:]:
        _step(dopt2, dps2, gs, dl)
        _step(topt2, tps2, gs, torch)
    for dp, tp in zip(dps2, tps2):
        np.testing.assert_allclose(_np(dp), _np(tp), rtol=tol, atol=tol)
    _same_state(dopt2, topt2, dps2, tps2, tol)
    # loading copied the state: the first optimizer's buffers did not move on
    for dp, dp2 in zip(dps, dps2):
        for key, v in dopt.state[dp].items():
            assert v.array is not dopt2.state[dp2][key].array


def test_load_a_torch_state_dict_and_continue():
    grads = _grads(20, np.float32, seed=2)
    dps, tps, dopt, topt = _pair("Rprop", dict(lr=0.03), np.float32)
    for gs in grads[:8]:
        _step(topt, tps, gs, torch)
    tsd = topt.state_dict()
    for dp, tp in zip(dps, tps):
        dp.array[...] = _np(tp)
    dopt.load_state_dict(
        {
            "state": {
                i: {k: dl.tensor(v.numpy()) for k, v in s.items()} for i, s in tsd["state"].items()
            },
            "param_groups": tsd["param_groups"],
        }
    )
    for gs in grads[8:]:
        _step(dopt, dps, gs, dl)
        _step(topt, tps, gs, torch)
    for dp, tp in zip(dps, tps):
        np.testing.assert_allclose(_np(dp), _np(tp), rtol=2e-5, atol=2e-5)
    assert dopt.state[dps[0]]["step"].item() == 20


@pytest.mark.parametrize("name", ["Rprop", "ASGD"])
def test_defaults_match_torch(name):
    d = getattr(dl.optim, name)([dl.zeros(2, requires_grad=True)])
    t = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
    assert d.defaults == t.defaults
    assert list(d.defaults) == list(t.defaults)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("Rprop", dict(lr=-0.1)),
        ("Rprop", dict(etas=(1.5, 2.0))),
        ("Rprop", dict(etas=(0.5, 0.9))),
        ("Rprop", dict(etas=(0.0, 1.2))),
        ("ASGD", dict(lr=-1)),
        ("ASGD", dict(weight_decay=-0.5)),
    ],
)
def test_invalid_hyper_parameters_match_torch(name, kw):
    with pytest.raises(ValueError) as ours:
        getattr(dl.optim, name)([dl.zeros(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw)
    assert str(ours.value) == str(theirs.value)


def test_asgd_average_starts_after_t0():
    p = dl.tensor(np.zeros(2, np.float64), requires_grad=True)
    opt = dl.optim.ASGD([p], lr=0.1, lambd=0.0, t0=2)
    iterates, averages = [], []
    for g in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        p.grad = dl.tensor(np.full(2, g))
        opt.step()
        iterates.append(float(p.detach().numpy()[0]))
        averages.append(float(opt.state[p]["ax"].numpy()[0]))
    # mu = 1 / max(1, step - t0) weighs the next step: the average is the iterate itself
    # up to step t0 + 2, then the running mean of the iterates from step t0 + 2 on
    assert averages[:4] == iterates[:4]
    assert averages[4] == pytest.approx(np.mean(iterates[3:5]), abs=1e-7)
    assert averages[5] == pytest.approx(np.mean(iterates[3:6]), abs=1e-7)  # mu in float32
    assert iterates[-1] == pytest.approx(-2.1, abs=1e-6)  # plain SGD steps (lambd=0)


# ------------------------------------------------------------------ optimizer hooks


def _hook_run(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    log = []

    def pre(o, args, kwargs):
        assert o is opt and args[0] is opt
        log.append(("pre", len(args), sorted(kwargs)))

    def post(o, args, kwargs):
        log.append(("post", len(args), sorted(kwargs)))

    h1 = opt.register_step_pre_hook(pre)
    h2 = opt.register_step_post_hook(post)
    p.grad = lib.ones(2)
    opt.step()
    loss = opt.step(closure=lambda: 3.0)
    h1.remove()
    opt.step()
    h2.remove()
    opt.step()
    return log, loss, _np(p).tolist()


def test_step_hooks_match_torch():
    ours, theirs = _hook_run(dl), _hook_run(torch)
    assert ours == theirs
    assert ours[0] == [
        ("pre", 1, []),
        ("post", 1, []),
        ("pre", 1, ["closure"]),
        ("post", 1, ["closure"]),
        ("post", 1, []),
    ]
    assert ours[1] == 3.0


@pytest.mark.parametrize("lib", [dl, torch], ids=["darklib", "torch"])
def test_step_pre_hook_may_replace_the_arguments(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    p.grad = lib.ones(2)
    opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0}))
    seen = []
    opt.register_step_post_hook(lambda o, a, k: seen.append(k["closure"]()))
    assert opt.step() == 7.0
    assert seen == [7.0]


@pytest.mark.parametrize("lib", [dl, torch], ids=["darklib", "torch"])
def test_step_pre_hook_with_a_bad_result_raises(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    p.grad = lib.ones(2)
    opt.register_step_pre_hook(lambda o, a, k: 5)
    with pytest.raises(RuntimeError, match="must return None or a tuple of"):
        opt.step()
    assert _np(p).tolist() == [1.0, 1.0]


def test_global_step_hooks_and_subclass_steps_run_once():
    log = []
    hpre = dl_optimizer.register_optimizer_step_pre_hook(lambda o, a, k: log.append("gpre"))
    hpost = dl_optimizer.register_optimizer_step_post_hook(lambda o, a, k: log.append("gpost"))

    class Wrapped(dl.optim.SGD):
        def step(self, closure=None):
            log.append("step")
            return super().step(closure)

    try:
        p = dl.nn.Parameter(dl.ones(2))
        opt = Wrapped([p], lr=0.5)
        opt.register_step_pre_hook(lambda o, a, k: log.append("pre"))
        opt.register_step_post_hook(lambda o, a, k: log.append("post"))
        p.grad = dl.ones(2)
        opt.step()
    finally:
        hpre.remove()
        hpost.remove()
    assert log == ["gpre", "pre", "step", "post", "gpost"]
    assert _np(p).tolist() == [0.5, 0.5]
    opt.step()
    assert log[-3:] == ["pre", "step", "post"]


def _state_dict_hooks(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = lib.ones(2)
    opt.step()
    log = []
    opt.register_state_dict_pre_hook(lambda o: log.append("pre"))
    opt.register_state_dict_pre_hook(lambda o: log.append("pre-first"), prepend=True)

    def post(o, sd):
        log.append("post")
        sd["extra"] = 1
        return sd

    opt.register_state_dict_post_hook(post)
    sd = opt.state_dict()
    got_extra = sd.get("extra")

    def load_pre(o, sd):
        log.append("load-pre")
        sd.pop("extra")
        sd["param_groups"] = [dict(g, lr=0.25) for g in sd["param_groups"]]
        return sd

    h = opt.register_load_state_dict_pre_hook(load_pre)
    opt.register_load_state_dict_post_hook(lambda o: log.append("load-post"))
    opt.load_state_dict(sd)
    kept = "extra" in sd  # the hook edited a shallow copy
    lr = opt.param_groups[0]["lr"]
    h.remove()
    sd2 = opt.state_dict()
    sd2.pop("extra")
    opt.load_state_dict(sd2)
    return log, got_extra, kept, lr


def test_state_dict_hooks_match_torch():
    ours, theirs = _state_dict_hooks(dl), _state_dict_hooks(torch)
    assert ours == theirs
    assert ours[0][:5] == ["pre-first", "pre", "post", "load-pre", "load-post"]
    assert ours[1:] == (1, True, 0.25)


# ------------------------------------------------------------------ init.sparse_


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,sparsity", [((10, 4), 0.5), ((7, 3), 0.1), ((6, 5), 1.0)])
def test_sparse_init_zeroes_a_fraction_of_each_column(shape, sparsity, device):
    w = dl.empty(*shape, device=device)
    out = dl.nn.init.sparse_(w, sparsity, std=0.5, generator=dl.Generator().manual_seed(3))
    assert out is w
    t = torch.nn.init.sparse_(torch.empty(*shape), sparsity, std=0.5)
    ours, theirs = (_np(w) == 0).sum(axis=0), (_np(t) == 0).sum(axis=0)
    assert ours.tolist() == theirs.tolist()
    nz = _np(w)[_np(w) != 0]
    if nz.size > 10:
        assert 0.2 < nz.std() < 1.0
    again = dl.nn.init.sparse_(
        dl.empty(*shape, device=device), sparsity, std=0.5, generator=dl.Generator().manual_seed(3)
    )
    np.testing.assert_array_equal(_np(again), _np(w))


def test_sparse_init_rows_differ_per_column_and_default_std():
    w = dl.nn.init.sparse_(dl.empty(40, 30), 0.5)
    zero = _np(w) == 0
    assert (zero.sum(axis=0) == 20).all()
    assert len({tuple(c) for c in zero.T}) > 1  # not the same rows in every column
    assert 0.005 < _np(w)[~zero].std() < 0.02


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_sparse_init_refuses_non_2d_like_torch(shape):
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        dl.nn.init.sparse_(dl.empty(*shape), 0.5)
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        torch.nn.init.sparse_(torch.empty(*shape), 0.5)


# ------------------------------------------------------------------ StackDataset


def test_stack_dataset_tuple_and_dict_like_torch():
    a, b = [1, 2, 3], ["x", "y", "z"]
    for kind in ("args", "kwargs"):
        if kind == "args":
            ours, theirs = dl.utils.data.StackDataset(a, b), torch.utils.data.StackDataset(a, b)
        else:
            ours = dl.utils.data.StackDataset(n=a, s=b)
            theirs = torch.utils.data.StackDataset(n=a, s=b)
        assert len(ours) == len(theirs) == 3
        assert [ours[i] for i in range(3)] == [theirs[i] for i in range(3)]
        assert ours.__getitems__([2, 0]) == theirs.__getitems__([2, 0])
    assert dl.utils.data.StackDataset(n=a, s=b)[1] == {"n": 2, "s": "y"}
    assert dl.utils.data.StackDataset(a, b)[-1] == (3, "z")


def test_stack_dataset_uses_nested_getitems():
    class Batched(dl.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise AssertionError("read one by one")

        def __getitems__(self, idx):
            return [10 * i for i in idx]

    ds = dl.utils.data.StackDataset(Batched(), [0, 1, 2, 3])
    assert ds.__getitems__([3, 1]) == [(30, 3), (10, 1)]

    class Short(Batched):
        def __getitems__(self, idx):
            return [0]

    with pytest.raises(ValueError, match="Nested dataset's output size mismatch"):
        dl.utils.data.StackDataset(a=Short()).__getitems__([0, 1])


def test_stack_dataset_in_a_dataloader():
    x = dl.tensor(np.arange(12, dtype=np.float32).reshape(6, 2))
    ds = dl.utils.data.StackDataset(x=dl.utils.data.TensorDataset(x), y=list(range(6)))
    batches = list(dl.utils.data.DataLoader(ds, batch_size=4))
    assert [b["y"].numpy().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5]]
    assert batches[1]["x"][0].numpy().tolist() == [[8.0, 9.0], [10.0, 11.0]]


@pytest.mark.parametrize(
    "args,kwargs",
    [(([1, 2], [3]), {}), ((), {"a": [1], "b": [1, 2]}), (([1],), {"b": [1]}), ((), {})],
    ids=["tuple-sizes", "dict-sizes", "both", "none"],
)
def test_stack_dataset_errors_like_torch(args, kwargs):
    with pytest.raises(ValueError) as ours:
        dl.utils.data.StackDataset(*args, **kwargs)
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.StackDataset(*args, **kwargs)
    assert str(ours.value) == str(theirs.value)


# ------------------------------------------------------------------ Bilinear


def _copy(dmod, tmod):
    dmod.load_state_dict({k: dl.tensor(v.detach().numpy()) for k, v in tmod.state_dict().items()})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_module_matches_torch(lead, bias, dtype, device):
    ddt, tdt = DT[dtype]
    t = torch.nn.Bilinear(3, 4, 2, bias=bias).to(tdt)
    d = dl.nn.Bilinear(3, 4, 2, bias=bias).to(ddt)
    _copy(d, t)
    d = d.to(device)
    x1, x2 = rng(1).standard_normal((*lead, 3)), rng(2).standard_normal((*lead, 4))
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-10)
    compare(d, t, x1.astype(dtype), x2.astype(dtype), device=device, **tol)
    # parameter gradients, with one more forward
    g = rng(3).standard_normal((*lead, 2)).astype(dtype)
    a1, a2 = x1.astype(dtype), x2.astype(dtype)
    dy = d(dl.tensor(a1, device=device), dl.tensor(a2, device=device))
    (dy * dl.tensor(g, device=device)).sum().backward()
    (t(torch.tensor(a1), torch.tensor(a2)) * torch.tensor(g)).sum().backward()
    assert_close(d.weight.grad, t.weight.grad, what="weight grad", **tol)
    if bias:
        assert_close(d.bias.grad, t.bias.grad, what="bias grad", **tol)


def test_bilinear_functional_gradcheck_and_layout():
    x1, x2 = rng(4).standard_normal((4, 3)), rng(5).standard_normal((4, 2))
    w, b = rng(6).standard_normal((5, 3, 2)), rng(7).standard_normal(5)
    gradcheck(dl.nn.functional.bilinear, x1, x2, w, b)
    compare(dl.nn.functional.bilinear, torch.nn.functional.bilinear, x1, x2, w, b)
    m = dl.nn.Bilinear(3, 2, 5)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in torch.nn.Bilinear(3, 2, 5).state_dict().items()
    ]
    assert repr(m) == repr(torch.nn.Bilinear(3, 2, 5))
    assert repr(dl.nn.Bilinear(3, 2, 5, bias=False)) == repr(torch.nn.Bilinear(3, 2, 5, bias=False))


def test_bilinear_init_bounds_like_torch():
    m = dl.nn.Bilinear(16, 3, 50)
    bound = 1 / 4
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.9 * bound  # 2400 draws fill the range
    assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)


@pytest.mark.parametrize(
    "s1,s2,sw,sb",
    [
        ((5, 3), (4, 4), (2, 3, 4), None),
        ((5, 2), (5, 4), (2, 3, 4), None),
        ((5, 3), (5, 5), (2, 3, 4), None),
        ((5, 3), (5, 4), (2, 3, 4), (3,)),
        ((3,), (2, 4), (2, 3, 4), None),
    ],
    ids=["batch", "in1", "in2", "bias", "ndim"],
)
def test_bilinear_errors_like_torch(s1, s2, sw, sb):
    def args(lib):
        out = [lib.ones(*s1), lib.ones(*s2), lib.ones(*sw)]
        return out + ([lib.ones(*sb)] if sb else [])

    with pytest.raises(RuntimeError) as ours:
        dl.nn.functional.bilinear(*args(dl))
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.functional.bilinear(*args(torch))
    assert str(ours.value) == str(theirs.value)


# ------------------------------------------------------------------ Embedding max_norm


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kw",
    [
        dict(max_norm=1.0),
        dict(max_norm=0.5, norm_type=1.0),
        dict(max_norm=0.8, norm_type=float("inf"), padding_idx=2),
        dict(max_norm=1.5, norm_type=3.0, scale_grad_by_freq=True),
        dict(scale_grad_by_freq=True, padding_idx=0),
    ],
    ids=["l2", "l1", "inf-pad", "p3-freq", "freq-pad"],
)
def test_embedding_max_norm_renormalises_in_place_like_torch(kw, dtype, device):
    ddt, tdt = DT[dtype]
    t = torch.nn.Embedding(7, 4, **kw).to(tdt)
    d = dl.nn.Embedding(7, 4, **kw).to(ddt)
    scales = np.array([0.1, 2.0, 3.0, 0.2, 2.5, 3.0, 0.3])  # rows above and below max_norm
    with torch.no_grad():
        t.weight.copy_(torch.tensor(rng(9).standard_normal((7, 4)) * scales[:, None]))
    _copy(d, t)
    d = d.to(device)
    before = t.weight.detach().clone().numpy()
    idx = np.array([[0, 2, 4, 4], [6, 1, 0, 4]])
    g = rng(8).standard_normal((2, 4, 4)).astype(dtype)
    dout = d(dl.tensor(idx, device=device))
    tout = t(torch.tensor(idx))
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    assert_close(dout, tout, what="output", **tol)
    assert_close(d.weight, t.weight, what="weight renormalised in place", **tol)
    (dout * dl.tensor(g, device=device)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    assert_close(d.weight.grad, t.weight.grad, what="weight grad", **tol)
    if "max_norm" in kw:
        changed = ~np.isclose(_np(t.weight), before).all(axis=1)
        assert changed[[1, 2, 4]].all() and not changed[[0, 3, 5]].any()  # big looked-up rows
    assert repr(d) == repr(t)


def test_embedding_functional_max_norm_and_norms():
    w = dl.tensor(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]), requires_grad=True)
    tw = torch.tensor(w.detach().numpy().copy(), requires_grad=True)
    out = dl.nn.functional.embedding(dl.tensor(np.array([0, 1])), w, max_norm=1.0)
    tout = torch.nn.functional.embedding(torch.tensor([0, 1]), tw, max_norm=1.0)
    assert_close(out, tout, atol=1e-12, rtol=1e-12)
    norms = np.linalg.norm(w.detach().numpy(), axis=1)
    assert norms[0] == pytest.approx(1.0, abs=1e-6)  # renormalised
    assert norms[1] == pytest.approx(0.5) and norms[2] == pytest.approx(10.0)  # untouched
    assert out.grad_fn is not None  # the lookup itself stays differentiable


def test_embedding_sparse_is_refused():
    with pytest.raises(ValueError, match="sparse"):
        dl.nn.Embedding(3, 2, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        dl.nn.functional.embedding(dl.tensor(np.array([0])), dl.ones(3, 2), sparse=True)
