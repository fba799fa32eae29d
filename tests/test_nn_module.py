"""nn.Module, Parameter, containers and state dicts: PyTorch's API and semantics."""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import nn


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Tiny ops: torch's thread pool only adds contention (restored after each test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_cnn(lib):
    m = lib.nn
    return m.Sequential(
        OrderedDict(
            conv=m.Conv2d(3, 8, 3, padding=1),
            bn=m.BatchNorm2d(8),
            act=m.ReLU(),
            pool=m.MaxPool2d(2),
            flat=m.Flatten(),
            head=m.Sequential(m.Linear(8 * 4 * 4, 16), m.Dropout(0.2), m.Linear(16, 10)),
        )
    )


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
        self.register_buffer("scale", dl.ones(8))
        self.register_buffer("tmp", dl.zeros(2), persistent=False)
        self.alpha = nn.Parameter(dl.tensor([0.5]))
        self.plain = 3

    def forward(self, x):
        return self.block(self.fc1(x)) * self.scale * self.alpha


# ------------------------------------------------------------------ Parameter


def test_parameter_basics():
    t = dl.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, dl.Tensor)
    assert p.requires_grad and p.is_leaf
    assert p.array is t.array  # shares the tensor's array
    assert repr(p) == "Parameter containing:\n" + repr(t.detach().requires_grad_())
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    q = nn.Parameter(dl.zeros(3), requires_grad=False)
    assert not q.requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating-point"):
        nn.Parameter(dl.tensor([1, 2]))


# ------------------------------------------------------------------ registration


def test_registration_and_named_members():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "alpha",
        "fc1.weight",
        "fc1.bias",
        "block.0.weight",
        "block.0.bias",
        "block.1.weight",
        "block.1.bias",
    ]
    assert [n for n, _ in net.named_buffers()] == [
        "scale",
        "tmp",
        "block.1.running_mean",
        "block.1.running_var",
        "block.1.num_batches_tracked",
    ]
    assert [n for n, _ in net.named_children()] == ["fc1", "block"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "block", "block.0", "block.1"]
    assert len(list(net.parameters(recurse=False))) == 1
    assert len(list(net.modules())) == 5
    assert net.plain == 3 and "plain" not in net._parameters
    assert isinstance(net.fc1, nn.Linear) and net.scale.shape == (8,)
    # state dict: parameters then persistent buffers per module, children after
    assert list(net.state_dict()) == [
        "alpha",
        "scale",
        "fc1.weight",
        "fc1.bias",
        "block.0.weight",
        "block.0.bias",
        "block.1.weight",
        "block.1.bias",
        "block.1.running_mean",
        "block.1.running_var",
        "block.1.num_batches_tracked",
    ]
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        net.nope
    assert net.get_submodule("block.1") is net.block[1]
    assert net.get_parameter("block.0.bias") is net.block[0].bias
    assert net.get_buffer("block.1.running_var") is net.block[1].running_var
    assert "fc1" in dir(net) and "alpha" in dir(net)
    net.extra = nn.Buffer(dl.ones(2), persistent=False)
    assert "extra" in dict(net.named_buffers()) and "extra" not in net.state_dict()
    assert not isinstance(net.extra, nn.Parameter)


def test_assignment_rules():
    net = Net()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'alpha'"):
        net.alpha = dl.ones(1)
    net.alpha = None  # allowed: declared but absent
    assert "alpha" not in dict(net.named_parameters())
    with pytest.raises(TypeError, match="as child module 'fc1'"):
        net.fc1 = 5
    with pytest.raises(TypeError, match="as buffer 'scale'"):
        net.scale = 5
    net.scale = dl.zeros(8)
    assert float(net.scale.numpy().sum()) == 0
    # re-assigning a module name to a parameter moves it between registries
    net.fc1 = nn.Parameter(dl.ones(2))
    assert "fc1" not in net._modules and "fc1" in net._parameters
    del net.fc1
    assert not hasattr(net, "fc1")
    with pytest.raises(KeyError, match="contain"):
        net.register_buffer("a.b", dl.ones(1))
    with pytest.raises(KeyError, match="already exists"):
        net.register_parameter("plain", None)

    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(dl.ones(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Bad()


def test_shared_parameters_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_modules())) == 3
    # state_dict keeps both paths, as PyTorch does
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_propagate():
    net = small_cnn(dl)
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and not net.head[1].training
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")


def test_zero_grad_requires_grad_and_apply():
    net = Net()
    x = dl.randn(5, 4)
    net(x).backward(dl.ones(5, 8))
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Linear", "BatchNorm1d", "Sequential", "Net"]


def test_to_dtype_keeps_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net(dl.randn(5, 4)).backward(dl.ones(5, 8))
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == dl.float64 for p in net.parameters())
    assert all(p.grad.dtype == dl.float64 for p in net.parameters())
    assert net.block[1].running_mean.dtype == dl.float64
    assert net.block[1].num_batches_tracked.dtype == dl.int64  # integer buffers stay
    net.to(dl.float32)
    assert all(p.dtype == dl.float32 for p in net.parameters())
    net.to("cpu", dtype=dl.float64)
    assert net.fc1.weight.dtype == dl.float64
    net.to(dl.zeros(1, dtype=dl.float32))
    assert net.fc1.weight.dtype == dl.float32
    assert net.cpu() is net and net.float() is net
    out = net(dl.randn(2, 4))
    assert out.dtype == dl.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(dl.int64)
    if not dl.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            net.cuda()


@pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")
def test_to_cuda_keeps_parameter_objects():
    net = small_cnn(dl)
    params = list(net.parameters())
    net.cuda()
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.device.type == "cuda" for p in net.parameters())
    assert net.bn.running_mean.device.type == "cuda"
    out = net(dl.randn(2, 3, 8, 8, device="cuda"))
    assert out.device.type == "cuda"
    net.cpu()
    assert net.conv.weight.device.type == "cpu"


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []

    def pre(mod, args):
        calls.append(("pre", mod))
        return (args[0] * 2,)

    def post(mod, args, out):
        calls.append(("post", args[0].shape))
        return out * 0

    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_hook(post)
    out = lin(dl.ones(3, 2))
    assert calls == [("pre", lin), ("post", (3, 2))]
    assert not out.detach().numpy().any()
    h1.remove()
    h2.remove()
    calls.clear()
    x = dl.ones(1, 2)
    a = lin(x).detach().numpy()
    assert calls == [] and a.any()
    # with_kwargs and always_call
    seen = []
    with lin.register_forward_hook(lambda m, a, k, o: seen.append(k), with_kwargs=True):
        lin(input=x)
    assert seen == [{"input": x}]
    assert not lin._forward_hooks


def test_missing_forward_message():
    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match=r'NoForward.*missing the required "forward"'):
        NoForward()(dl.ones(1))


# ------------------------------------------------------------------ containers


def test_sequential():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub._modules) == ["1", "2"]  # slicing keeps the names, as PyTorch
    with pytest.raises(IndexError, match="out of range"):
        s[3]
    d = nn.Linear(1, 1)
    s.append(d)
    assert s[3] is d
    e = nn.Tanh()
    s.insert(1, e)
    assert list(s) == [a, e, b, c, d] and list(s._modules) == ["0", "1", "2", "3", "4"]
    s.extend([nn.Sigmoid()])
    assert len(s) == 6
    del s[1]
    assert list(s)[:4] == [a, b, c, d] and list(s._modules) == ["0", "1", "2", "3", "4"]
    s[0] = nn.Linear(2, 3)
    assert s[0] is not a
    named = nn.Sequential(OrderedDict(enc=nn.Linear(2, 2), dec=nn.Linear(2, 2)))
    assert list(named.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert named.enc is named[0]
    x = dl.randn(4, 2)
    out = nn.Sequential(a, b, c)(x)
    assert out.shape == (4, 1)
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), 3)


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert isinstance(layers[0], nn.Identity) and isinstance(layers[-1], nn.Tanh)
    assert list(layers._modules) == [str(i) for i in range(6)]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert isinstance(layers[0], nn.Linear) and list(layers._modules)[-1] == "4"
    layers += [nn.ReLU()]
    assert len(layers) == 6
    assert layers.pop() is not None and len(layers) == 5
    d = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    d["c"] = nn.Linear(2, 1)
    assert list(d) == ["a", "b", "c"] and "c" in d and len(d) == 3
    assert list(d.keys()) == ["a", "b", "c"]
    assert list(d.state_dict()) == ["a.weight", "a.bias", "c.weight", "c.bias"]
    d.pop("b")
    assert list(d) == ["a", "c"]
    d.update([("z", nn.Identity())])
    assert list(d)[-1] == "z"
    pl = nn.ParameterList([nn.Parameter(dl.ones(2)), dl.zeros(3)])
    assert len(pl) == 2 and isinstance(pl[1], nn.Parameter)
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    pd = nn.ParameterDict({"w": dl.ones(2)})
    assert isinstance(pd["w"], nn.Parameter) and list(pd.state_dict()) == ["w"]


def test_module_list_repr_matches_torch():
    d = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    t = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    assert repr(d) == repr(t)


# ------------------------------------------------------------------ state dict


def test_state_dict_keys_match_torch():
    d, t = small_cnn(dl), small_cnn(torch)
    assert list(d.state_dict()) == list(t.state_dict())
    for (k, v), tv in zip(d.state_dict().items(), t.state_dict().values()):
        assert tuple(v.shape) == tuple(tv.shape), k
        assert v.dtype.name == str(tv.dtype).replace("torch.", ""), k
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in d.named_buffers()] == [n for n, _ in t.named_buffers()]


def test_state_dict_detached_shares_memory_and_keep_vars():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    assert isinstance(sd, OrderedDict)
    assert not sd["weight"].requires_grad and not isinstance(sd["weight"], nn.Parameter)
    assert sd["weight"].array is lin.weight.array
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight
    assert list(lin.state_dict(prefix="fc.")) == ["fc.weight", "fc.bias"]


def test_load_state_dict_roundtrip_from_torch():
    d, t = small_cnn(dl), small_cnn(torch)
    t.train()
    t(torch.randn(4, 3, 8, 8))  # move the running stats away from their defaults
    sd = {k: v.numpy() for k, v in t.state_dict().items()}
    params = list(d.parameters())
    res = d.load_state_dict({k: dl.tensor(v) for k, v in sd.items()})  # (arrays: refused)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert [id(p) for p in d.parameters()] == [id(p) for p in params]  # copied in place
    for k, v in d.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k], err_msg=k)
    assert int(d.bn.num_batches_tracked.item()) == 1
    d.eval()
    t.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        d(dl.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), atol=1e-5
    )


def test_load_state_dict_errors():
    net = small_cnn(dl)
    sd = dict(net.state_dict())
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict({**sd, "head.0.weight": dl.zeros(16, 5)})
    msg = str(e.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert "size mismatch for head.0.weight" in msg
    assert "(16, 5)" in msg and "(16, 128)" in msg

    missing = {k: v for k, v in sd.items() if k != "conv.bias"}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "conv\.bias"'):
        net.load_state_dict(missing)
    res = net.load_state_dict(missing, strict=False)
    assert res.missing_keys == ["conv.bias"] and res.unexpected_keys == []

    extra = {**sd, "conv.extra": dl.ones(1), "nothing.here": dl.ones(1)}
    # torch's order: the root's own unexpected keys, then each submodule's
    with pytest.raises(
        RuntimeError, match=r'Unexpected key\(s\) in state_dict: "nothing\.here", "conv\.extra"'
    ):
        net.load_state_dict(extra)
    res = net.load_state_dict(extra, strict=False)
    assert res.unexpected_keys == ["nothing.here", "conv.extra"] and res.missing_keys == []
    # a shape mismatch is an error even when not strict
    with pytest.raises(RuntimeError, match=r"size mismatch for conv\.weight"):
        net.load_state_dict({"conv.weight": dl.zeros(1)}, strict=False)
    with pytest.raises(TypeError, match="dict-like"):
        net.load_state_dict([1, 2])


def test_load_state_dict_compat_with_torch_errors():
    """torch raises on the same mismatches (the oracle for what counts as an error)."""
    t = small_cnn(torch)
    sd = dict(t.state_dict())
    sd.pop("conv.bias")
    with pytest.raises(RuntimeError, match="Missing key"):
        t.load_state_dict(sd)
    d = small_cnn(dl)
    with pytest.raises(RuntimeError, match="Missing key"):
        d.load_state_dict({k: dl.tensor(v.numpy()) for k, v in sd.items()})


def test_load_state_dict_missing_num_batches_tracked_is_tolerated():
    bn = nn.BatchNorm2d(3)
    sd = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    res = bn.load_state_dict(sd)
    assert res.missing_keys == []


def test_load_state_dict_casts_dtype_and_assign():
    lin = nn.Linear(2, 2)
    w = np.arange(4, dtype=np.float64).reshape(2, 2)
    lin.load_state_dict({"weight": dl.tensor(w), "bias": dl.zeros(2, dtype=dl.float64)})
    assert lin.weight.dtype == dl.float32
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w)
    new = dl.ones(2, 2)
    lin.load_state_dict({"weight": new, "bias": dl.zeros(2)}, assign=True)
    assert lin.weight.array is new.array and isinstance(lin.weight, nn.Parameter)


def test_non_persistent_buffer_not_saved():
    net = Net()
    assert "tmp" not in net.state_dict()
    with pytest.raises(RuntimeError, match="Unexpected"):
        net.load_state_dict({**net.state_dict(), "tmp": dl.zeros(2)})


def test_deepcopy_is_independent():
    net = small_cnn(dl)
    twin = copy.deepcopy(net)
    assert twin.conv.weight is not net.conv.weight
    np.testing.assert_array_equal(
        twin.conv.weight.detach().numpy(), net.conv.weight.detach().numpy()
    )
    with dl.no_grad():
        twin.conv.weight.fill_(0)
    assert net.conv.weight.detach().numpy().any()
    assert isinstance(twin.conv.weight, nn.Parameter)


# ------------------------------------------------------------------ repr


def test_repr_matches_torch():
    for build in (
        small_cnn,
        lambda m: m.nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),
        lambda m: m.nn.Conv2d(3, 6, (3, 5), dilation=2, groups=3, padding_mode="reflect"),
        lambda m: m.nn.Conv2d(3, 4, 3, padding="same"),
        lambda m: m.nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1, output_padding=1),
        lambda m: m.nn.BatchNorm1d(5, momentum=None, affine=False),
        lambda m: m.nn.LayerNorm((4, 5)),
        lambda m: m.nn.GroupNorm(2, 4),
        lambda m: m.nn.InstanceNorm2d(3, affine=True),
        lambda m: m.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        lambda m: m.nn.AvgPool2d(2),
        lambda m: m.nn.AdaptiveAvgPool2d((2, 3)),
        lambda m: m.nn.AdaptiveMaxPool2d(1),
        lambda m: m.nn.Dropout2d(0.3),
        lambda m: m.nn.Upsample(scale_factor=2, mode="bilinear"),
        lambda m: m.nn.Upsample(size=(3, 4)),
        lambda m: m.nn.Unflatten(1, (2, 3)),
        lambda m: m.nn.Identity(),
        lambda m: m.nn.Embedding(10, 3, padding_idx=0),
        lambda m: m.nn.ZeroPad2d(1),
        lambda m: m.nn.ConstantPad2d((1, 2, 3, 4), 0.5),
        lambda m: m.nn.ReflectionPad2d(2),
        lambda m: m.nn.CrossEntropyLoss(label_smoothing=0.1),
        lambda m: m.nn.Sequential(
            m.nn.ReLU(inplace=True),
            m.nn.LeakyReLU(0.2),
            m.nn.ELU(),
            m.nn.GELU("tanh"),
            m.nn.SiLU(),
            m.nn.Sigmoid(),
            m.nn.Tanh(),
            m.nn.Softmax(dim=1),
            m.nn.LogSoftmax(1),
            m.nn.Softplus(2.0),
            m.nn.ReLU6(),
            m.nn.Hardtanh(-2.0, 2.0),
            m.nn.Hardswish(),
            m.nn.Hardsigmoid(),
            m.nn.Mish(),
            m.nn.PReLU(3),
            m.nn.SELU(),
            m.nn.CELU(0.5),
            m.nn.Threshold(0.1, 20.0),
            m.nn.Softmin(1),
            m.nn.LogSigmoid(),
            m.nn.Softsign(),
            m.nn.Tanhshrink(),
            m.nn.MSELoss(),
            m.nn.BCEWithLogitsLoss(),
        ),
    ):
        assert repr(build(dl)) == repr(build(torch))


def test_load_state_dict_key_of_an_absent_parameter_is_unexpected_like_torch():
    results = []
    for lib in (torch, dl):
        m = lib.nn.Linear(2, 3)
        m.bias = None
        sd = {"weight": lib.zeros(3, 2), "bias": lib.zeros(3)}
        results.append(m.load_state_dict(sd, strict=False))
        with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "bias"'):
            m.load_state_dict(sd)
    assert tuple(results[1]) == tuple(results[0]) == ([], ["bias"])


def test_set_submodule_like_torch():
    for lib in (torch, dl):
        m = lib.nn.Sequential(lib.nn.Sequential(lib.nn.Linear(1, 1)))
        m.set_submodule("0.0", lib.nn.ReLU())
        assert isinstance(m[0][0], lib.nn.ReLU)
        assert list(m.state_dict()) == []
        with pytest.raises(AttributeError):
            m.set_submodule("0.x", lib.nn.ReLU(), strict=True)


def test_forgotten_super_init_is_named():
    class NoInit(nn.Module):
        def __init__(self):
            self.scale = 2  # plain attributes still work, as in torch

        def forward(self, x):
            return x * self.scale

    with pytest.raises(AttributeError, match=r"did not call super\(\)\.__init__\(\)"):
        NoInit()(dl.ones(1))

    class NoInitModule(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"cannot assign module before Module\.__init__"):
        NoInitModule()


def _hooked_net(lib):
    m = lib.nn
    return m.Sequential(
        m.Conv2d(3, 4, 3, padding=1), m.ReLU(), m.Conv2d(4, 5, 3), m.BatchNorm2d(5), m.ReLU(),
        m.AdaptiveAvgPool2d(1), m.Flatten(), m.Linear(5, 3),
    )  # fmt: skip


def test_full_backward_hooks_match_torch():
    tm, dm = _hooked_net(torch), _hooked_net(dl)
    dm.load_state_dict({k: dl.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    logs: dict = {}

    def record(tag, scale_inputs=False):
        def hook(mod, gin, gout):
            logs.setdefault(tag, []).append(
                ([None if g is None else g.numpy().copy() for g in gin], [g.numpy() for g in gout])
            )
            if scale_inputs:  # a returned grad_input replaces the gradient passed on
                return tuple(None if g is None else g * 2 for g in gin)

        return hook

    def triple(mod, gout):
        return tuple(g * 3 for g in gout)

    for lib, m, tag in ((torch, tm, "t"), (dl, dm, "d")):
        m[0].register_full_backward_hook(record(tag + "first"))  # its input needs no grad
        m[2].register_full_backward_hook(record(tag + "mid", scale_inputs=True))
        m[7].register_full_backward_pre_hook(triple)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the input without grad
            m(lib.tensor(x)).sum().backward()
    for name in ("first", "mid"):
        (tin, tout), (din, dout) = logs["t" + name][0], logs["d" + name][0]
        assert [a is None for a in tin] == [b is None for b in din]
        for a, b in zip(tin + tout, din + dout):
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    for (name, tp), (_, dp) in zip(tm.named_parameters(), dm.named_parameters()):
        np.testing.assert_allclose(dp.grad.numpy(), tp.grad.numpy(), 1e-4, 1e-5, err_msg=name)


def test_backward_hook_refuses_in_place_modules_and_is_removable():
    r = nn.ReLU(inplace=True)
    h = r.register_full_backward_hook(lambda m, gi, go: None)
    with pytest.raises(RuntimeError, match="modified in place"):
        r(nn.Linear(2, 2)(dl.ones(1, 2)))
    h.remove()
    r(nn.Linear(2, 2)(dl.ones(1, 2))).sum().backward()  # fine without the hook
    with pytest.warns(FutureWarning, match="deprecated"):
        nn.Linear(1, 1).register_backward_hook(lambda m, gi, go: None)


# ------------------------------------------------------------------ full backward hooks (torch's
# firing rules: gradients that do not arrive)


def _plain(v):
    """Hook arguments and gradients as nested lists (None kept), for comparing libraries."""
    if v is None or isinstance(v, str | int | float):
        return v
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v.detach().numpy().tolist()


def _two_outputs(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x, y):
            return x * 2, y * 3

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    m.register_full_backward_pre_hook(lambda mod, go: rec.append(("pre", go)))
    x, y = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
    a, _ = m(x, y)
    a.sum().backward()  # the second output gets no gradient
    return x, y


def _ignored_input(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x, y):
            return x * 2

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x, y = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
    m(x, y).sum().backward()
    return x, y


def _first_of_two(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x):
            return x * 2, x * 3

    m = M()
    m.register_full_backward_pre_hook(lambda mod, go: rec.append(("pre", go)))
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x = lib.ones(2, requires_grad=True)
    m(x)[0].sum().backward()
    return (x,)


def _non_tensors(lib, rec):
    class M(lib.nn.Module):  # an int argument, a string output, a tensor without grad
        def forward(self, x, k, z):
            return x * k, "s", z * 1.0

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    m.register_full_backward_pre_hook(lambda mod, go: rec.append(("pre", go)))
    x, z = lib.ones(2, requires_grad=True), lib.ones(2)
    out = m(x, 3, z)
    rec.append(("out", out[1], out[2].requires_grad))
    out[0].sum().backward()
    return (x,)


def _output_without_grad(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x):
            return x.detach() * 2, x * 3

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x = lib.ones(2, requires_grad=True)
    m(x)[1].sum().backward()
    return (x,)


def _input_without_grad(lib, rec):
    class M(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = lib.nn.Parameter(lib.ones(2) * 3)

        def forward(self, x, y):
            return x * self.w + y

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x, y = lib.ones(2), lib.ones(2, requires_grad=True)
    m(x, y).sum().backward()
    return (y,)


def _called_twice(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x):
            return x * 2

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x = lib.ones(2, requires_grad=True)
    m(m(x)).sum().backward()
    return (x,)


def _retain_graph(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x):
            return x * 2

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x = lib.ones(2, requires_grad=True)
    out = m(x)
    (out.sum() * 3).backward(retain_graph=True)
    out.sum().backward()
    return (x,)


def _hooks_return_gradients(lib, rec):
    class M(lib.nn.Module):
        def forward(self, x, y):
            return x * 2, y * 3

    m = M()

    # a gradient for the unused output flows on; the ignored input's zeros are replaced
    def pre(mod, go):
        rec.append(("pre", go))
        return go[0] * 10, lib.ones(2)

    def hook(mod, gi, go):
        rec.append(("hook", gi, go))
        return gi[0] + 1, gi[1] - 1

    m.register_full_backward_pre_hook(pre)
    m.register_full_backward_hook(hook)
    x, y = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
    m(x, y)[0].sum().backward()
    return x, y


def _named_tuple_output(lib, rec):
    from collections import namedtuple

    pair = namedtuple("pair", "a b")

    class M(lib.nn.Module):
        def forward(self, x):
            return pair(x * 2, x * 3)

    m = M()
    m.register_full_backward_hook(lambda mod, gi, go: rec.append(("hook", gi, go)))
    x = lib.ones(2, requires_grad=True)
    out = m(x)
    rec.append(("type", type(out).__name__))
    out.b.sum().backward()
    return (x,)


def _hooks_taken_at_forward(lib, rec):
    lin = lib.nn.ReLU()
    h = lin.register_full_backward_hook(lambda mod, gi, go: rec.append("registered before"))
    x = lib.ones(1, 2, requires_grad=True)
    out = lin(x)
    h.remove()
    lin.register_full_backward_hook(lambda mod, gi, go: rec.append("registered after"))
    out.sum().backward()
    return (x,)


@pytest.mark.parametrize(
    "scenario",
    [
        _two_outputs,
        _ignored_input,
        _first_of_two,
        _non_tensors,
        _output_without_grad,
        _input_without_grad,
        _called_twice,
        _retain_graph,
        _hooks_return_gradients,
        _named_tuple_output,
        _hooks_taken_at_forward,
    ],
)
def test_full_backward_hooks_fire_as_torch_when_gradients_are_missing(scenario):
    """torch fires a module's hooks once per backward through its outputs, with None for
    outputs that got no gradient and zeros for tensor inputs that got none; darklib waited
    for every output and input and never fired."""
    runs = {}
    for lib in (torch, dl):
        rec: list = []
        leaves = scenario(lib, rec)
        runs[lib.__name__] = (_plain(rec), [_plain(t.grad) for t in leaves])
    assert runs["torch"][0], "the scenario must record something"
    assert runs["darklib"] == runs["torch"]


def test_full_backward_hook_without_input_grad_warns_and_list_output_never_fires():
    for lib in (torch, dl):
        rec = []
        lin = lib.nn.Linear(2, 2)
        lin.register_full_backward_hook(lambda mod, gi, go, rec=rec: rec.append(_plain(gi)))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            lin(lib.ones(1, 2)).sum().backward()
        assert rec == [[None]], lib.__name__

        class Listing(lib.nn.Module):
            def forward(self, x):
                return [x * 2]

        m = Listing()
        m.register_full_backward_hook(lambda mod, gi, go, rec=rec: rec.append("list"))
        with pytest.warns(UserWarning, match="module output should be a Tensor or a tuple"):
            out = m(lib.ones(2, requires_grad=True))
        out[0].sum().backward()
        assert rec == [[None]], lib.__name__


def test_full_backward_hooks_under_autograd_grad_and_errors():
    rec = []
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda mod, gi, go: rec.append(len(gi)))
    x = dl.ones(1, 2, requires_grad=True)
    (g,) = dl.autograd.grad(lin(x).sum(), x)
    assert rec == [1] and g.shape == (1, 2)
    lin.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        lin(x).sum().backward()


# ------------------------------------------------------------------ always_call forward hooks


def _always_call_log(lib, where):
    class M(lib.nn.Module):
        def forward(self, x):
            if where == "forward":
                raise ValueError("forward fails")
            return x + 1

    def fail(*a):
        raise ValueError(f"{where} fails")

    m, log = M(), []
    if where == "pre":
        m.register_forward_pre_hook(fail)
    m.register_forward_hook(lambda mod, a, o: log.append(("always1", _plain(o))), always_call=True)
    if where == "hook":
        m.register_forward_hook(fail)
    m.register_forward_hook(lambda mod, a, o: log.append(("plain", _plain(o))))
    m.register_forward_hook(
        lambda mod, a, k, o: log.append(("always2", _plain(o), k)),
        always_call=True,
        with_kwargs=True,
    )

    def broken(mod, a, o):
        log.append("broken")
        raise KeyError("always_call hook fails too")

    m.register_forward_hook(broken, always_call=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=f"{where} fails"):
            m(lib.ones(1))
    return log, [str(w.message) for w in caught]


@pytest.mark.parametrize("where", ["pre", "forward", "hook"])
def test_always_call_forward_hooks_run_when_hooks_raise_like_torch(where):
    log, warned = _always_call_log(dl, where)
    assert (log, warned) == _always_call_log(torch, where)
    assert "broken" in log and any("always_call hook fails too" in w for w in warned)


def test_always_call_hooks_do_not_swallow_base_exceptions():
    for lib in (torch, dl):

        class M(lib.nn.Module):
            def forward(self, x):
                raise KeyboardInterrupt

        m, log = M(), []
        m.register_forward_hook(lambda *a, log=log: log.append("always"), always_call=True)
        with pytest.raises(KeyboardInterrupt):
            m(lib.ones(1))
        assert log == [], lib.__name__  # torch catches Exception only


# ------------------------------------------------------------------ extra state, metadata


def _extra_net(lib):
    class WithExtra(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.nn.Linear(1, 1)
            self.extra = {"steps": 1}

        def get_extra_state(self):
            return dict(self.extra)

        def set_extra_state(self, state):
            self.extra = state

    class GetOnly(lib.nn.Module):
        def get_extra_state(self):
            return 5

    return lib.nn.Sequential(WithExtra(), GetOnly())


def _extra_state_outcomes(lib):
    out = {"keys": list(_extra_net(lib).state_dict())}
    net = _extra_net(lib)
    sd = net.state_dict()
    sd["0._extra_state"] = {"steps": 7}
    for strict in (True, False):
        try:
            res = net.load_state_dict(sd, strict=strict)
            out[strict] = (res.missing_keys, res.unexpected_keys)
        except RuntimeError as e:
            out[strict] = str(e)
    out["loaded"] = net[0].extra
    del sd["0._extra_state"]
    res = net.load_state_dict(sd, strict=False)
    out["missing"] = (res.missing_keys, res.unexpected_keys)
    return out


def test_extra_state_saved_and_loaded_like_torch():
    got, want = _extra_state_outcomes(dl), _extra_state_outcomes(torch)
    assert got == want
    assert got["keys"] == ["0._extra_state", "0.lin.weight", "0.lin.bias", "1._extra_state"]
    assert got["loaded"] == {"steps": 7}
    assert got["missing"] == (["0._extra_state"], ["1._extra_state"])  # (no setter)


def test_extra_state_through_save_and_load(tmp_path):
    net = _extra_net(dl)
    net[0].extra = {"steps": 3, "names": ["a", "b"]}
    dl.save(net.state_dict(), tmp_path / "m.safetensors")
    other = _extra_net(dl)
    loaded = dl.load(tmp_path / "m.safetensors")
    assert loaded["1._extra_state"] == 5
    other.load_state_dict(loaded, strict=False)  # (module 1 has no set_extra_state)
    assert other[0].extra == {"steps": 3, "names": ["a", "b"]}

    class Opaque:
        pass

    net[0].extra = {"obj": Opaque()}  # not storable without pickle: a clear error
    with pytest.raises(TypeError, match=r"cannot save an object of type Opaque at key path "):
        dl.save(net.state_dict(), tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_state_dict_metadata_matches_torch():
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.BatchNorm1d(2))

    got, want = build(dl).state_dict(), build(torch).state_dict()
    assert dict(got._metadata) == dict(want._metadata)
    assert got._metadata["1"] == {"version": 2}


# ------------------------------------------------------------------ load_state_dict inputs


def _renaming_linear(lib, seen):
    class Renaming(lib.nn.Linear):
        """A torch-style override with the 7 positional arguments, renaming a key."""

        def _load_from_state_dict(self, sd, prefix, local_metadata, strict, miss, unexp, errs):
            seen.append(dict(local_metadata))
            if prefix + "w" in sd:
                sd[prefix + "weight"] = sd.pop(prefix + "w")
            super()._load_from_state_dict(sd, prefix, local_metadata, strict, miss, unexp, errs)

    return Renaming(1, 1)


def test_load_state_dict_leaves_the_callers_dict_alone_and_takes_torch_overrides():
    for lib in (torch, dl):
        seen = []
        m = lib.nn.Sequential(_renaming_linear(lib, seen))
        user = {"0.w": lib.full((1, 1), 4.0), "0.bias": lib.zeros(1)}
        before = dict(user)
        res = m.load_state_dict(user)
        assert (res.missing_keys, res.unexpected_keys) == ([], []), lib.__name__
        assert user == before and list(user) == ["0.w", "0.bias"], lib.__name__
        assert m[0].weight.item() == 4.0
        m.load_state_dict(m.state_dict(), assign=True)  # with metadata, and assign
        assert seen == [{}, {"version": 1, "assign_to_params_buffers": True}], lib.__name__


def test_load_one_element_vector_into_0d_entries_like_torch():
    for lib in (torch, dl):
        bn = lib.nn.BatchNorm1d(2)
        sd = dict(bn.state_dict())
        sd["num_batches_tracked"] = lib.tensor([5])
        bn.load_state_dict(sd)
        assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.item() == 5
        sd["num_batches_tracked"] = lib.tensor([5, 6])  # only one element is allowed
        with pytest.raises(RuntimeError, match="size mismatch for num_batches_tracked"):
            bn.load_state_dict(sd)
        sd["num_batches_tracked"] = lib.tensor([7])
        bn.load_state_dict(sd, assign=True)
        assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.item() == 7
        lin = lib.nn.Linear(1, 1)  # the converse (0-d into a 1-element vector) is refused
        with pytest.raises(RuntimeError, match="size mismatch for bias"):
            lin.load_state_dict({"weight": lib.ones(1, 1), "bias": lib.tensor(3.0)})


def test_missing_num_batches_tracked_follows_torchs_version_rule():
    for lib in (torch, dl):
        sd = lib.nn.BatchNorm1d(2).state_dict()
        del sd["num_batches_tracked"]  # metadata says version 2: the key is missing
        with pytest.raises(RuntimeError, match=r'Missing key.*"num_batches_tracked"'):
            lib.nn.BatchNorm1d(2).load_state_dict(sd)
        assert lib.nn.BatchNorm1d(2).load_state_dict(dict(sd)).missing_keys == []  # no metadata


def test_state_dict_positional_destination_like_torch():
    for lib in (torch, dl):
        lin, d = lib.nn.Linear(2, 2), {}
        with pytest.warns(FutureWarning, match="Positional args are being deprecated"):
            res = lin.state_dict(d, "fc.", True)
        assert res is d and list(d) == ["fc.weight", "fc.bias"], lib.__name__
        assert d["fc.weight"] is lin.weight  # keep_vars
        assert not hasattr(d, "_metadata")


# ------------------------------------------------------------------ state dict hooks


def _state_dict_hook_log(lib):
    log = []
    net = lib.nn.Sequential(lib.nn.Linear(1, 1), lib.nn.Sequential(lib.nn.Linear(1, 1)))
    for name, mod in net.named_modules():
        mod.register_state_dict_pre_hook(
            lambda m, prefix, keep_vars, name=name: log.append(("pre", name, prefix, keep_vars))
        )

        def post(m, sd, prefix, meta, name=name):
            log.append(("post", name, prefix, meta, sorted(sd)))
            sd[prefix + "seen"] = 1

        mod.register_state_dict_post_hook(post)
    sd = net.state_dict(keep_vars=True)
    log.append(list(sd))

    def load_pre(m, sd, prefix, meta, strict, missing, unexpected, errors):
        log.append(("load_pre", type(m).__name__, prefix, meta, strict, sorted(sd)))
        for k in [k for k in sd if k.endswith("seen")]:
            del sd[k]  # load_state_dict's own copy

    def load_post(m, keys):
        log.append(("load_post", type(m).__name__, list(keys.missing_keys)))
        keys.missing_keys.clear()  # in place: strict loading then passes

    for mod in net.modules():
        mod.register_load_state_dict_pre_hook(load_pre)
    net[1].register_load_state_dict_post_hook(load_post)
    del sd["1.0.bias"]
    res = net.load_state_dict(sd)
    log.append((res.missing_keys, res.unexpected_keys, "1.seen" in sd))
    h = net.register_state_dict_post_hook(lambda *a: {})
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        net.state_dict()
    h.remove()
    net.register_load_state_dict_post_hook(lambda m, keys: keys)
    with pytest.raises(AssertionError, match="not expected to return new values"):
        net.load_state_dict(sd)
    return log


def test_state_dict_and_load_state_dict_hooks_like_torch():
    got, want = _state_dict_hook_log(dl), _state_dict_hook_log(torch)
    assert got == want
    assert got[0] == ("pre", "", "", True) and ([], [], True) in got


def test_private_state_dict_hook_may_replace_the_result():
    for lib in (torch, dl):
        lin = lib.nn.Linear(1, 1)
        lin._register_state_dict_hook(lambda m, sd, prefix, meta: {"replaced": 1})
        assert lin.state_dict() == {"replaced": 1}, lib.__name__
        seen = []
        lin._register_load_state_dict_pre_hook(lambda *a, seen=seen: seen.append(len(a)))
        lin.load_state_dict({"weight": lib.ones(1, 1), "bias": lib.ones(1)})
        assert seen == [7], lib.__name__  # without the module


def test_module_requires_grad_takes_a_bool_only():
    for v in ("no", 1, None):
        with pytest.raises(TypeError) as want:
            torch.nn.Linear(2, 2).requires_grad_(v)
        m = nn.Linear(2, 2)
        with pytest.raises(type(want.value), match=r"argument 'requires_grad' must be bool"):
            m.requires_grad_(v)
        assert all(p.requires_grad for p in m.parameters())  # nothing changed
    m = nn.Linear(2, 2).requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    assert all(p.requires_grad for p in m.requires_grad_().parameters())
