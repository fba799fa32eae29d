"""Findings of session 11's review of darklib.nn against torch, pinned: each test (some
case of each parametrised one) failed before its fix; the cases that already agreed stay
as the reference beside them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import DEVICES, assert_close

import darklib as dl
import darklib.nn.functional as DF
from darklib import nn

TF = torch.nn.functional


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, dl.Tensor) else t.detach().numpy()


# ------------------------------------------------------------------ 1. mixed-precision norms


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "name, shape",
    [
        ("BatchNorm1d", (6, 3)),
        ("BatchNorm1d", (4, 3, 5)),
        ("BatchNorm2d", (4, 3, 5, 5)),
        ("BatchNorm3d", (2, 3, 2, 3, 3)),
    ],
)
def test_batch_norm_takes_a_float16_input_with_float32_parameters(name, shape, device):
    # torch normalises a float16 input with its float32 weight and statistics (computing
    # in float32), returns float16 and updates the float32 running statistics; darklib
    # refused the mixed dtypes
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float16)
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float16)
    tm = getattr(torch.nn, name)(3)
    dm = getattr(nn, name)(3).to(device)
    with torch.no_grad():
        tm.weight.uniform_(0.5, 1.5)
        tm.bias.uniform_(-0.5, 0.5)
    dm.load_state_dict({k: dl.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    for _ in range(2):  # two steps: the running statistics move twice
        tx = torch.tensor(a, requires_grad=True)
        dx = dl.tensor(a, device=device, requires_grad=True)
        ty, dy = tm(tx), dm(dx)
        assert dy.dtype == dl.float16
        ty.backward(torch.tensor(g))
        dy.backward(dl.tensor(g, device=device))
        assert_close(dy.float(), ty.float(), atol=2e-3, rtol=2e-3, what="output")
        assert dx.grad.dtype == dl.float16
        assert_close(dx.grad.float(), tx.grad.float(), atol=5e-3, rtol=5e-3, what="grad x")
    for key in ("weight", "bias"):
        p = getattr(dm, key)
        assert p.grad.dtype == dl.float32
        assert_close(p.grad, getattr(tm, key).grad, atol=2e-2, rtol=2e-3, what=key)
    for key in ("running_mean", "running_var"):
        assert getattr(dm, key).dtype == dl.float32
        assert_close(getattr(dm, key), getattr(tm, key), atol=1e-5, rtol=1e-5, what=key)
    assert int(dm.num_batches_tracked.item()) == 2
    dm.eval()
    tm.eval()
    out = dm(dl.tensor(a, device=device))
    assert out.dtype == dl.float16
    assert_close(out.float(), tm(torch.tensor(a)).float(), atol=2e-3, rtol=2e-3, what="eval")


def test_functional_batch_norm_mixed_dtypes_as_torch():
    a = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float16)
    stats = [np.zeros(3, np.float32), np.ones(3, np.float32)]
    t_stats = [torch.tensor(s) for s in stats]
    d_stats = [dl.tensor(s) for s in stats]
    ty = TF.batch_norm(torch.tensor(a), *t_stats, torch.ones(3), torch.zeros(3), True)
    dy = DF.batch_norm(dl.tensor(a), *d_stats, dl.ones(3), dl.zeros(3), True)
    assert dy.dtype == dl.float16
    assert_close(dy.float(), ty.float(), atol=2e-3, rtol=2e-3)
    for d, t in zip(d_stats, t_stats):
        assert_close(d, t, atol=1e-6, rtol=1e-6)
    # mixing float16 and float32 among the parameters, or float64 statistics for a
    # float32 input, stays an error in both
    for mixed in (
        lambda m, f, x: f.batch_norm(x, m.zeros(3).half(), m.ones(3), None, None, True),
        lambda m, f, x: f.batch_norm(x.float(), m.zeros(3).double(), m.ones(3).double()),
    ):
        with pytest.raises(RuntimeError):
            mixed(torch, TF, torch.tensor(a))
        with pytest.raises(RuntimeError, match="batch_norm"):
            mixed(dl, DF, dl.tensor(a))


@pytest.mark.parametrize("name", ["layer_norm", "group_norm"])
def test_layer_and_group_norm_take_float32_parameters_for_float16(name):
    a = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float16)
    args = ((3,), np.ones(3), np.zeros(3)) if name == "layer_norm" else (2, np.ones(6), np.zeros(6))
    w = np.random.default_rng(2).uniform(0.5, 1.5, args[1].shape).astype(np.float32)
    tx, dx = torch.tensor(a, requires_grad=True), dl.tensor(a, requires_grad=True)
    tw, dw = torch.tensor(w, requires_grad=True), dl.tensor(w, requires_grad=True)
    ty = getattr(TF, name)(tx, args[0], tw, torch.zeros(w.shape))
    dy = getattr(DF, name)(dx, args[0], dw, dl.zeros(w.shape))
    assert dy.dtype == dl.float16
    assert_close(dy.float(), ty.float(), atol=2e-3, rtol=2e-3)
    ty.float().sum().backward()
    dy.float().sum().backward()
    assert dx.grad.dtype == dl.float16 and dw.grad.dtype == dl.float32
    assert_close(dw.grad, tw.grad, atol=1e-2, rtol=1e-3)


# ------------------------------------------------------------------ 2. integer average pools


def _int_pool_cases():
    r = np.random.default_rng(0)
    cases = []
    for nd in (1, 2, 3):
        for _ in range(12):
            sizes = tuple(int(v) for v in r.integers(3, 7, nd))
            k = tuple(int(v) for v in r.integers(1, 4, nd))
            s = tuple(int(v) for v in r.integers(1, 4, nd))
            p = tuple(int(r.integers(0, kk // 2 + 1)) for kk in k)
            kw = {"ceil_mode": bool(r.integers(0, 2)), "count_include_pad": bool(r.integers(0, 2))}
            if nd > 1 and r.integers(0, 2):
                kw["divisor_override"] = int(r.choice([-3, 2, 5]))
            cases.append((nd, sizes, k, s, p, kw))
    return cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("nd, sizes, k, s, p, kw", _int_pool_cases())
def test_avg_pool_of_int64_truncates_as_torch(nd, sizes, k, s, p, kw, device):
    # torch averages int64 inputs exactly and truncates each quotient toward zero (C's
    # division: -2.5 -> -2); darklib refused integer inputs
    a = np.random.default_rng(1).integers(-50, 50, (2, 3, *sizes))
    fn = f"avg_pool{nd}d"
    t = getattr(TF, fn)(torch.tensor(a), k, s, p, **kw)
    d = getattr(DF, fn)(dl.tensor(a, device=device), k, s, p, **kw)
    assert d.dtype == dl.int64
    np.testing.assert_array_equal(_np(d), t.numpy())
    # the modules, and an unbatched input
    t = getattr(torch.nn, f"AvgPool{nd}d")(k, s, p, **kw)(torch.tensor(a[0]))
    d = getattr(nn, f"AvgPool{nd}d")(k, s, p, **kw)(dl.tensor(a[0], device=device))
    np.testing.assert_array_equal(_np(d), t.numpy())


def test_avg_pool_rounds_toward_zero():
    x = [[[-5, 0, 0, 3, 1, 1, -1, 0, 7]]]
    out = DF.avg_pool1d(dl.tensor(x), 2, 1)
    assert (
        out.tolist()
        == TF.avg_pool1d(torch.tensor(x), 2, 1).tolist()
        == [[[-2, 0, 1, 2, 1, 0, 0, 3]]]
    )


@pytest.mark.parametrize("norm_type", [1, 2, 2.0])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_of_int64_as_torch(nd, norm_type):
    # an int power keeps the integers (and torch's truncated average); a float one does not
    a = np.arange(-8, 8).reshape(
        (1, 1, 16) if nd == 1 else (1, 1, 4, 4) if nd == 2 else (1, 1, 2, 2, 4)
    )
    t = getattr(TF, f"lp_pool{nd}d")(torch.tensor(a), norm_type, 2)
    d = getattr(DF, f"lp_pool{nd}d")(dl.tensor(a), norm_type, 2)
    assert d.dtype.name == str(t.dtype).removeprefix("torch.")
    np.testing.assert_allclose(_np(d), t.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "int16", "uint8", "bool"])
@pytest.mark.parametrize("fn", ["avg_pool1d", "avg_pool2d", "avg_pool3d"])
def test_avg_pool_refuses_other_integer_dtypes_as_torch(fn, dtype):
    shape = {"avg_pool1d": (1, 1, 4), "avg_pool2d": (1, 1, 4, 4), "avg_pool3d": (1, 1, 2, 2, 2)}
    with pytest.raises(NotImplementedError):
        getattr(TF, fn)(torch.zeros(shape[fn], dtype=getattr(torch, dtype)), 2)
    with pytest.raises(NotImplementedError, match=fn):
        getattr(DF, fn)(dl.zeros(shape[fn], dtype=getattr(dl, dtype)), 2)


def test_avg_pool3d_refuses_a_window_larger_than_the_unpadded_input():
    for m in (TF, DF):
        with pytest.raises(RuntimeError):
            m.avg_pool3d(
                (torch if m is TF else dl).ones(1, 1, 1, 1, 4), (1, 2, 2), padding=(0, 1, 1)
            )


def _int_max_pool_cases():
    r = np.random.default_rng(3)
    cases = []
    for nd in (2, 3):
        for dtype in ("int64", "int32", "int16", "uint8"):
            for _ in range(4):
                sizes = tuple(int(v) for v in r.integers(3, 7, nd))
                k = tuple(int(v) for v in r.integers(1, 4, nd))
                s = tuple(int(v) for v in r.integers(1, 4, nd))
                p = tuple(int(r.integers(0, kk // 2 + 1)) for kk in k)
                d = tuple(int(v) for v in r.integers(1, 3, nd))
                if any(n + 2 * p_ < d_ * (k_ - 1) + 1 for n, k_, p_, d_ in zip(sizes, k, p, d)):
                    continue  # (no output: both refuse it)
                cases.append((nd, dtype, sizes, k, s, p, d, bool(r.integers(0, 2))))
    return cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("nd, dtype, sizes, k, s, p, d, ceil_mode", _int_max_pool_cases())
def test_max_pool_of_integers_as_torch(nd, dtype, sizes, k, s, p, d, ceil_mode, device):
    # torch's max_pool2d/3d take integer inputs (not bool); darklib refused them. A window
    # of the dtype's lowest values reports its first position inside the input.
    info = np.iinfo(dtype)
    a = np.random.default_rng(4).integers(max(info.min, -4), min(info.max, 4), (2, 3, *sizes))
    a = a.astype(dtype)
    a[0, 0] = info.min
    fn = f"max_pool{nd}d"
    t = getattr(TF, fn)(torch.tensor(a), k, s, p, d, ceil_mode, True)
    out = getattr(DF, fn)(dl.tensor(a, device=device), k, s, p, d, ceil_mode, True)
    for mine, theirs in zip(out, t):
        assert mine.dtype.name == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(_np(mine), theirs.numpy())
    mod = getattr(nn, f"MaxPool{nd}d")(k, s, p, d, ceil_mode=ceil_mode)
    theirs = getattr(torch.nn, f"MaxPool{nd}d")(k, s, p, d, ceil_mode=ceil_mode)(torch.tensor(a[0]))
    np.testing.assert_array_equal(_np(mod(dl.tensor(a[0], device=device))), theirs.numpy())


def test_max_pool_integer_quirks_as_torch():
    x = np.arange(-4, 5).reshape(1, 1, 9)
    # max_pool1d refuses integers, its with-indices form (max_pool2d underneath) takes them
    with pytest.raises(NotImplementedError):
        TF.max_pool1d(torch.tensor(x), 3)
    with pytest.raises(NotImplementedError, match="max_pool1d"):
        DF.max_pool1d(dl.tensor(x), 3)
    t = TF.max_pool1d(torch.tensor(x), 3, 2, return_indices=True)
    d = DF.max_pool1d(dl.tensor(x), 3, 2, return_indices=True)
    assert [v.tolist() for v in d] == [v.tolist() for v in t]
    for fn, shape in (("max_pool2d", (1, 1, 2, 2)), ("max_pool3d", (1, 1, 2, 2, 2))):
        with pytest.raises(NotImplementedError):
            getattr(TF, fn)(torch.zeros(shape, dtype=torch.bool), 2)
        with pytest.raises(NotImplementedError, match=fn):
            getattr(DF, fn)(dl.zeros(shape, dtype=dl.bool), 2)


# ------------------------------------------------------------------ 3. errors name the op called


@pytest.mark.parametrize(
    "op, call",
    [
        ("max_pool1d", lambda x: DF.max_pool1d(x, 5)),
        ("max_pool1d", lambda x: DF.max_pool1d(x.long(), 2)),
        ("max_pool1d", lambda x: DF.max_pool1d(x[..., :0], 1)),
        ("avg_pool1d", lambda x: DF.avg_pool1d(x, 5)),
        ("avg_pool1d", lambda x: DF.avg_pool1d(x.int(), 2)),
        ("adaptive_avg_pool1d", lambda x: DF.adaptive_avg_pool1d(x.long(), 1)),
        ("adaptive_avg_pool1d", lambda x: DF.adaptive_avg_pool1d(x[..., :0], 1)),
        ("adaptive_avg_pool1d", lambda x: DF.adaptive_avg_pool1d(x, -1)),
        ("adaptive_max_pool1d", lambda x: DF.adaptive_max_pool1d(x.long(), 1)),
        ("adaptive_max_pool1d", lambda x: DF.adaptive_max_pool1d(x[..., :0], 1)),
        ("adaptive_max_pool1d", lambda x: DF.adaptive_max_pool1d(x, -1)),
        ("lp_pool1d", lambda x: DF.lp_pool1d(x, 2, 5)),
        ("lp_pool1d", lambda x: DF.lp_pool1d(x, float("inf"), 5)),
        ("lp_pool2d", lambda x: DF.lp_pool2d(x.unsqueeze(0), 2, 5)),
        ("lp_pool2d", lambda x: DF.lp_pool2d(x.unsqueeze(0), float("inf"), 5)),
        ("lp_pool3d", lambda x: DF.lp_pool3d(x.reshape(1, 1, 1, 1, 3), 2, 5)),
        ("lp_pool3d", lambda x: DF.lp_pool3d(x.reshape(1, 1, 1, 1, 3), float("inf"), 5)),
    ],
)
def test_pool_errors_name_the_op_called(op, call):
    # the 1-d pools (and lp pools) run on the 2-d (or average) ones, whose names were in
    # the messages, with the shapes of the 2-d view
    with pytest.raises(RuntimeError) as info:
        call(dl.zeros(1, 1, 3))
    message = str(info.value)
    assert message.startswith(op), message
    if op.endswith("1d"):  # the user's 1-d shape, not the 2-d view of it
        assert "(1, 1, 1, 3)" not in message, message


# ------------------------------------------------------------------ 4. zero channels


@pytest.mark.parametrize(
    "name, args",
    [
        ("Conv1d", (0, 2, 3)),
        ("Conv2d", (0, 4, 3)),
        ("Conv2d", (3, 0, 3)),
        ("Conv2d", (0, 0, 3)),
        ("Conv2d", (0, 4, 3, 1, 0, 1, 2)),
        ("Conv3d", (0, 2, 3)),
        ("ConvTranspose2d", (0, 4, 3)),
        ("ConvTranspose2d", (3, 0, 3)),
        ("Linear", (0, 3)),
        ("Linear", (3, 0)),
    ],
)
def test_layers_take_zero_channels_as_torch(name, args):
    # torch builds these (with an empty weight); darklib refused in_channels=0
    t = getattr(torch.nn, name)(*args)
    with pytest.warns(UserWarning, match="zero-element"):  # (torch's kaiming warning too)
        d = getattr(nn, name)(*args)
    for key in ("weight", "bias"):
        assert tuple(getattr(d, key).shape) == tuple(getattr(t, key).shape), key
    assert repr(d) == repr(t)


def test_conv_with_no_output_channels_is_refused_when_called():
    t, d = torch.nn.Conv2d(3, 0, 3), nn.Conv2d(3, 0, 3)
    with pytest.raises(RuntimeError, match="at least 1 at dimension 0"):
        t(torch.zeros(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match="at least 1 at dimension 0"):
        d(dl.zeros(1, 3, 5, 5))


def test_bilinear_refuses_no_first_features_as_torch():
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        torch.nn.Bilinear(0, 2, 3)
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        nn.Bilinear(0, 2, 3)


# ------------------------------------------------------------------ 5. tensors only


@pytest.mark.parametrize("value", [np.zeros((3, 2), np.float32), [[0.0, 0.0]] * 3, 1.0])
def test_load_state_dict_refuses_non_tensors_as_torch(value):
    # darklib accepted arrays and lists (and broadcast a float); torch refuses each
    for lib, m in ((torch, torch.nn.Linear(2, 3)), (dl, nn.Linear(2, 3))):
        with pytest.raises(RuntimeError, match=r"weight.*Tensor-like object.*received") as info:
            m.load_state_dict({"weight": value, "bias": lib.zeros(3)})
        assert type(value).__name__ in str(info.value)
    m = nn.Linear(2, 3)
    before = m.weight.detach().clone()
    with pytest.raises(RuntimeError):
        m.load_state_dict({"weight": value, "bias": dl.zeros(3)}, strict=False)
    assert np.array_equal(_np(m.weight), _np(before))


@pytest.mark.parametrize("data", [[1.0, 2.0], np.zeros(2, np.float32), 3.0, (1.0, 2.0)])
def test_parameter_and_buffer_refuse_non_tensors_as_torch(data):
    # torch's constructors call data.detach(): an AttributeError; darklib's is also a
    # TypeError (its type errors), where it accepted the data
    with pytest.raises(AttributeError):
        torch.nn.Parameter(data)
    with pytest.raises(AttributeError, match="Parameter"):
        nn.Parameter(data)
    with pytest.raises(TypeError, match="Parameter"):
        nn.Parameter(data)
    with pytest.raises(AttributeError):
        torch.nn.Buffer(data)
    with pytest.raises(AttributeError, match="Buffer"):
        nn.Buffer(data)
    assert nn.Parameter().shape == torch.nn.Parameter().shape == (0,)


# ------------------------------------------------------------------ 6. embedding indices


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8", "bool"])
def test_embedding_takes_only_int64_and_int32_indices(dtype):
    idx = [[1, 2], [0, 1]]
    for fn in ("embedding", "embedding_bag"):
        w = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
        tcall = getattr(TF, fn)
        dcall = getattr(DF, fn)
        ti = torch.tensor(idx, dtype=getattr(torch, dtype))
        di = dl.tensor(idx, dtype=getattr(dl, dtype))
        if dtype in ("int64", "int32"):
            assert_close(dcall(di, dl.tensor(w)), tcall(ti, torch.tensor(w)))
            continue
        with pytest.raises(RuntimeError):
            tcall(ti, torch.tensor(w))
        with pytest.raises(RuntimeError, match=f"{fn}: expected indices of dtype int64 or int32"):
            dcall(di, dl.tensor(w))
    if dtype not in ("int64", "int32"):
        with pytest.raises(RuntimeError, match="embedding"):
            nn.Embedding(5, 3)(dl.tensor(idx, dtype=getattr(dl, dtype)))


# ------------------------------------------------------------------ 7. flatten of a 0-d tensor


@pytest.mark.parametrize("dims", [(), (0, -1), (0, 0), (-1, -1), (1, -1), (0, 1), (-2, 0)])
def test_flatten_of_a_scalar_checks_its_dims_as_torch(dims):
    # a 0-d tensor's dims are [-1, 0]: nn.Flatten()'s default start_dim=1 is out of range
    for m, lib in ((torch.nn, torch), (nn, dl)):
        x = lib.tensor(3.0)
        try:
            expected = tuple(torch.nn.Flatten(*dims)(torch.tensor(3.0)).shape)
        except IndexError:
            with pytest.raises(IndexError, match="out of range"):
                m.Flatten(*dims)(x)
            if dims:  # (the function's default start_dim is 0, the module's 1)
                with pytest.raises(IndexError, match="out of range"):
                    lib.flatten(x, *dims)
        else:
            assert tuple(m.Flatten(*dims)(x).shape) == expected == (1,)


# ------------------------------------------------------------------ 8. backward hook kinds


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("first", ["old", "full"])
def test_a_module_refuses_both_kinds_of_backward_hook(first):
    def register(m, kind):
        hook = lambda *a: None
        if kind == "old":
            return m.register_backward_hook(hook)
        return m.register_full_backward_hook(hook)

    second = "full" if first == "old" else "old"
    for m in (torch.nn.Linear(2, 2), nn.Linear(2, 2)):
        handle = register(m, first)
        with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full"):
            register(m, second)
        handle.remove()  # (torch keeps refusing after the removal)
        with pytest.raises(RuntimeError, match="Cannot use both"):
            register(m, second)
        register(m, first)  # the same kind again is fine
        m.register_full_backward_pre_hook(lambda *a: None)  # pre-hooks mix with both


# ------------------------------------------------------------------ 9. soft margin's target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_soft_margin_loss_refuses_a_target_requiring_grad(reduction):
    # torch has no derivative for the target and refuses it; darklib differentiated it
    a = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = np.sign(np.random.default_rng(1).standard_normal((4, 3))).astype(np.float32)
    for lib, f in ((torch, TF), (dl, DF)):
        x, t = lib.tensor(a, requires_grad=True), lib.tensor(y, requires_grad=True)
        with pytest.raises(RuntimeError, match="soft_margin_loss"):
            f.soft_margin_loss(x, t, reduction=reduction)
        with pytest.raises(RuntimeError, match="soft_margin_loss"):
            (torch.nn if lib is torch else nn).SoftMarginLoss(reduction=reduction)(x, t)
        with lib.no_grad():  # without grad mode the target's flag does not matter
            f.soft_margin_loss(x, t, reduction=reduction)
    out = DF.soft_margin_loss(dl.tensor(a), dl.tensor(y), reduction=reduction)
    assert_close(out, TF.soft_margin_loss(torch.tensor(a), torch.tensor(y), reduction=reduction))


# ------------------------------------------------------------------ 10. padding, sequences


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["Reflection", "Replication", "Circular"])
def test_non_constant_pads_take_no_value(kind, nd):
    name = f"{kind}Pad{nd}d"
    with pytest.raises(TypeError):
        getattr(torch.nn, name)(1, 0.5)
    with pytest.raises(TypeError):
        getattr(nn, name)(1, 0.5)
    assert not hasattr(getattr(nn, name)(1), "value")
    assert hasattr(getattr(nn, f"ZeroPad{nd}d")(1), "value")
    assert isinstance(getattr(nn, f"ZeroPad{nd}d")(1), getattr(nn, f"ConstantPad{nd}d"))
    assert repr(getattr(nn, f"ZeroPad{nd}d")(1)) == repr(getattr(torch.nn, f"ZeroPad{nd}d")(1))


@pytest.mark.parametrize(
    "first, second",
    [
        ("float32", "int64"),
        ("int64", "float32"),
        ("int32", "int64"),
        ("float16", "float32"),
        ("float32", "float64"),
        ("uint8", "int8"),
        ("bool", "int64"),
    ],
)
def test_pad_sequence_has_the_first_sequences_dtype(first, second):
    # torch copies every sequence into a tensor of the first one's dtype; darklib promoted
    from torch.nn.utils.rnn import pad_sequence as tpad

    from darklib.nn.utils.rnn import pad_sequence as dpad

    def seqs(lib):
        return [lib.ones(3, dtype=getattr(lib, first)), lib.ones(2, dtype=getattr(lib, second)) * 3]

    t = tpad(seqs(torch), padding_value=0.5)
    d = dpad(seqs(dl), padding_value=0.5)
    assert d.dtype.name == str(t.dtype).removeprefix("torch.")
    assert d.tolist() == t.tolist()


# ------------------------------------------------------------------ 11. deprecated names


def test_hardtanh_takes_the_deprecated_min_value_max_value():
    for kw in ({"min_value": -2.0}, {"max_value": 3.0}, {"min_value": -0.5, "max_value": 0.5}):
        with pytest.warns(FutureWarning, match="deprecated and renamed"):
            t = torch.nn.Hardtanh(**kw)
        with pytest.warns(FutureWarning, match="deprecated and renamed"):
            d = nn.Hardtanh(**kw)
        assert (d.min_val, d.max_val) == (t.min_val, t.max_val)
        assert repr(d) == repr(t)


@pytest.mark.parametrize(
    "name, args",
    [
        ("uniform", (-1.0, 1.0)),
        ("normal", (0.0, 2.0)),
        ("constant", (0.5,)),
        ("eye", ()),
        ("dirac", ()),
        ("xavier_uniform", ()),
        ("xavier_normal", ()),
        ("kaiming_uniform", ()),
        ("kaiming_normal", ()),
        ("orthogonal", ()),
        ("sparse", (0.5,)),
    ],
)
def test_init_deprecated_aliases_warn_as_torch(name, args):
    shape = (3, 3, 3) if name == "dirac" else (4, 3)
    with pytest.warns(FutureWarning, match=f"`nn.init.{name}` is now deprecated") as rec:
        getattr(torch.nn.init, name)(torch.empty(shape), *args)
    message = str(rec[0].message)
    with pytest.warns(FutureWarning) as mine:
        out = getattr(nn.init, name)(t := dl.empty(*shape), *args)
    assert str(mine[0].message) == message
    assert out is t
    if name == "constant":
        assert np.all(_np(t) == 0.5)


@pytest.mark.parametrize(
    "nonlinearity",
    ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "sigmoid", "tanh", "relu", "selu"],
)
def test_calculate_gain_types_as_torch(nonlinearity):
    t = torch.nn.init.calculate_gain(nonlinearity)
    d = nn.init.calculate_gain(nonlinearity)
    assert type(d) is type(t) and d == t


# ------------------------------------------------------------------ 12. missing API


def _pair():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    d = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    d.load_state_dict({k: dl.tensor(v.numpy()) for k, v in t.state_dict().items()})
    return t, d


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_functional_call_as_torch():
    from torch.nn.utils.stateless import functional_call as tcall

    from darklib.nn.utils.stateless import functional_call as dcall

    t, d = _pair()
    r = np.random.default_rng(0)
    x = r.standard_normal((4, 2)).astype(np.float32)
    w = r.standard_normal((3, 2)).astype(np.float32)
    tw, dw = torch.tensor(w, requires_grad=True), dl.tensor(w, requires_grad=True)
    trm, drm = torch.zeros(3), dl.zeros(3)
    ty = tcall(t, {"0.weight": tw, "1.running_mean": trm}, (torch.tensor(x),))
    dy = dcall(d, {"0.weight": dw, "1.running_mean": drm}, (dl.tensor(x),))
    assert_close(dy, ty)
    ty.sum().backward()
    dy.sum().backward()
    assert_close(dw.grad, tw.grad)
    assert_close(drm, trm)  # the given buffer is the one updated
    assert_close(d[1].running_mean, t[1].running_mean)  # the module's own stayed
    assert isinstance(d[0].weight, nn.Parameter) and d[0].weight.grad is None  # restored
    # a single argument needs no tuple; kwargs; unknown names are set for the call only
    dy2 = dcall(d, {"0.weight": dw, "extra": dw}, dl.tensor(x), {})
    assert_close(dy2, tcall(t, {"0.weight": tw, "extra": tw}, torch.tensor(x), {}))
    assert not hasattr(d, "extra")
    for lib, call, m in ((torch, tcall, t), (dl, dcall, d)):
        with pytest.raises(RuntimeError, match="Missing key"):
            call(m, {"0.weight": lib.zeros(3, 2)}, lib.zeros(4, 2), strict=True)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_functional_call_ties_shared_weights():
    from torch.nn.utils.stateless import functional_call as tcall

    from darklib.nn.utils.stateless import functional_call as dcall

    outs = []
    for lib, call in ((torch, tcall), (dl, dcall)):
        a, b = lib.nn.Linear(2, 2, bias=False), lib.nn.Linear(2, 2, bias=False)
        b.weight = a.weight
        s = lib.nn.Sequential(a, b)
        with lib.no_grad():
            a.weight.fill_(1.0)
        x = lib.ones(1, 2)
        outs.append(
            (
                call(s, {"1.weight": lib.eye(2) * 2}, x).tolist(),
                call(s, {"1.weight": lib.eye(2) * 2}, x, tie_weights=False).tolist(),
            )
        )
        with pytest.raises(ValueError, match="tied"):
            call(s, {"0.weight": lib.eye(2), "1.weight": lib.zeros(2, 2)}, x)
    assert outs[0] == outs[1]


def test_clip_grads_with_norm_and_get_total_norm_as_torch():
    r = np.random.default_rng(0)
    arrays = [r.standard_normal(s).astype(np.float32) * 3 for s in ((3, 4), (5,), (2, 2))]
    tp = [torch.zeros(a.shape, requires_grad=True) for a in arrays]
    dp = [dl.zeros(a.shape, requires_grad=True) for a in arrays]
    for t, d, a in zip(tp, dp, arrays):
        t.grad, d.grad = torch.tensor(a), dl.tensor(a)
    for norm_type in (2.0, 1.0, float("inf")):
        tn = torch.nn.utils.get_total_norm([p.grad for p in tp], norm_type, False, None)
        dn = nn.utils.get_total_norm([p.grad for p in dp], norm_type, False, None)
        assert_close(dn, tn)
    total = torch.nn.utils.get_total_norm([p.grad for p in tp])
    assert torch.nn.utils.clip_grads_with_norm_(tp, 1.5, total, None) is None
    assert (
        nn.utils.clip_grads_with_norm_(dp, 1.5, nn.utils.get_total_norm([p.grad for p in dp]))
        is None
    )
    for t, d in zip(tp, dp):
        assert_close(d.grad, t.grad)


def test_module_to_empty_as_torch():
    for lib in (torch, dl):
        m = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
        w = m[0].weight
        assert m.to_empty(device="cpu") is m
        assert m[0].weight is w  # the same parameter, new data
        assert tuple(m[0].weight.shape) == (3, 2) and m[1].num_batches_tracked.dtype == lib.int64
        with pytest.raises(TypeError):
            m.to_empty("cpu")  # device is keyword only
        m.to_empty(device=None, recurse=False)


def test_parameter_dict_or_and_reversed_as_torch():
    def make(lib):
        p = lib.nn.Parameter
        a = lib.nn.ParameterDict({"b": p(lib.zeros(2)), "a": p(lib.zeros(2, 3))})
        return a, lib.nn.ParameterDict({"c": p(lib.ones(1))}), {"z": p(lib.ones(1))}

    (ta, tb, tz), (da, db, dz) = make(torch), make(dl)
    assert list(reversed(da)) == list(reversed(ta)) == ["b", "a"]
    assert list(da | db) == list(ta | tb)
    assert type(da | db) is nn.ParameterDict and list(da) == ["a", "b"]  # a copy
    assert list(da | dz) == list(ta | tz)
    both = dz | da
    assert type(both) is dict and list(both) == list(tz | ta)
    da |= db
    ta |= tb
    assert list(da) == list(ta)
    assert repr(da).replace("darklib", "torch") == repr(ta)


def test_parameter_and_module_dict_errors_as_torch():
    for lib in (torch, dl):
        pd = lib.nn.ParameterDict()
        with pytest.raises(KeyError, match="dictionary is empty"):
            pd.popitem()  # darklib raised StopIteration
        with pytest.raises(TypeError, match="cannot be used as a key as it is not a string"):
            pd[1]
        for cls in (lib.nn.ModuleDict, lib.nn.ParameterDict):
            with pytest.raises(TypeError, match="update should be called with an iterable"):
                cls(5)
            with pytest.raises(TypeError, match="element #0 should be Iterable"):
                cls([1])
            with pytest.raises(ValueError, match="element #0 has length 1; 2 is required"):
                cls([("a",)])


# ------------------------------------------------------------------ 13. reprs


@pytest.mark.parametrize(
    "build",
    [
        "m.MultiheadAttention(8, 2)",
        "m.MultiheadAttention(8, 2, dropout=0.1, bias=False, kdim=4, vdim=6, batch_first=True)",
        "m.TransformerEncoderLayer(8, 2, 16)",
        "m.EmbeddingBag(10, 3)",
        "m.EmbeddingBag(10, 3, max_norm=1.0, norm_type=1.0, mode='sum', padding_idx=2, "
        "scale_grad_by_freq=True, include_last_offset=True)",
        "m.EmbeddingBag(10, 3, norm_type=3.0)",
        "m.RNN(4, 5, nonlinearity='relu')",
        "m.RNN(4, 5, 2, nonlinearity='tanh', bias=False, batch_first=True, bidirectional=True)",
        "m.RNNCell(4, 5, nonlinearity='relu')",
        "m.ParameterList([m.Parameter(lib.zeros(2)), m.Parameter(lib.zeros(2, 3)), 'x'])",
        "m.Sequential(m.ParameterList([m.Parameter(lib.zeros(2))]))",
        "m.ParameterDict({'a': m.Parameter(lib.zeros(2, dtype=lib.float64)), 't': lib.ones(1),"
        " 'i': m.Parameter(lib.zeros(2, dtype=lib.int64), requires_grad=False), 'o': 3})",
    ],
)
def test_reprs_as_torch(build):
    t = eval(build, {"m": torch.nn, "lib": torch})
    d = eval(build, {"m": nn, "lib": dl})
    assert repr(d).replace("darklib", "torch") == repr(t)
