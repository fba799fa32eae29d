"""Tensor creation, dtypes, devices, conversions and repr."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1.0, 2.0], "float32"),
        ([1, 2], "int64"),
        ([True, False], "bool"),
        (3.5, "float32"),
        (7, "int64"),
        ([[1, 2.5]], "float32"),
        (np.array([1.0], np.float64), "float64"),
        (np.array([1], np.int32), "int32"),
        (np.array([1], np.uint8), "uint8"),
    ],
)
def test_tensor_default_dtypes_match_torch(data, expected):
    t = dl.tensor(data)
    assert t.dtype.name == expected
    assert str(torch.tensor(data).dtype) == f"torch.{expected}"


def test_tensor_copies_but_from_numpy_shares():
    a = np.arange(4, dtype=np.float32)
    t = dl.tensor(a)
    s = dl.from_numpy(a)
    a[0] = 10
    assert t.tolist()[0] == 0
    assert s.tolist()[0] == 10
    assert dl.as_tensor(a).array is a


def test_unsupported_dtype_is_rejected_clearly():
    with pytest.raises(TypeError, match="complex128"):
        dl.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="cannot make a tensor"):
        dl.tensor(["a", "b"])
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad"):
        dl.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("device", DEVICES)
def test_creation_functions(device):
    assert dl.zeros(2, 3, device=device).shape == (2, 3)
    assert dl.zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert dl.ones(4, dtype=dl.int64, device=device).dtype == dl.int64
    assert dl.full((2,), 7).dtype == dl.int64
    assert dl.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert dl.arange(5).tolist() == list(range(5))
    assert dl.arange(5).dtype == dl.int64
    assert dl.arange(0, 1, 0.25, device=device).tolist() == [0, 0.25, 0.5, 0.75]
    assert dl.arange(0, 1, 0.25).dtype == dl.float32
    np.testing.assert_allclose(dl.linspace(0, 1, 5).tolist(), torch.linspace(0, 1, 5).tolist())
    assert dl.eye(3).tolist() == torch.eye(3).tolist()
    assert dl.eye(2, 3).shape == (2, 3)
    x = dl.randn(3, 4, device=device)
    assert dl.zeros_like(x).shape == (3, 4) and dl.ones_like(x).device == x.device
    assert dl.full_like(x, 2.0).tolist()[0][0] == 2.0
    assert dl.empty(2, 2).shape == (2, 2)
    assert dl.rand(1000).numpy().min() >= 0 and dl.rand(1000).numpy().max() < 1
    r = dl.randint(3, 9, (1000,))
    assert r.dtype == dl.int64 and r.numpy().min() >= 3 and r.numpy().max() <= 8
    assert sorted(dl.randperm(6).tolist()) == list(range(6))
    with pytest.raises(RuntimeError, match="negative dimension"):
        dl.zeros(2, -1)


def test_manual_seed_makes_random_ops_reproducible():
    dl.manual_seed(123)
    a = dl.randn(5).tolist()
    b = dl.rand(3).tolist()
    dl.manual_seed(123)
    assert dl.randn(5).tolist() == a
    assert dl.rand(3).tolist() == b
    g = dl.Generator().manual_seed(5)
    c = dl.randn(4, generator=g).tolist()
    assert dl.randn(4, generator=dl.Generator().manual_seed(5)).tolist() == c
    x = dl.randn(20000)
    assert abs(float(x.numpy().mean())) < 0.05 and abs(float(x.numpy().std()) - 1) < 0.05


def test_attributes_and_conversions():
    t = dl.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and t.dim() == 2
    assert t.size() == (2, 3) and t.size(1) == 3 and t.size(-1) == 3
    assert t.numel() == 6 and len(t) == 2 and t.element_size() == 4
    assert t.device == "cpu" and t.device == dl.device("cpu") and str(t.device) == "cpu"
    assert t.is_leaf and not t.requires_grad and t.grad_fn is None
    assert t.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert t.double().dtype == dl.float64 and t.long().dtype == dl.int64
    assert t.int().dtype == dl.int32 and t.bool().dtype == dl.bool and t.half().dtype == dl.float16
    assert t.to(dl.float64).dtype == dl.float64 and t.to("cpu") is t
    assert t.to(dl.float32) is t
    assert t.to(torch_like := dl.zeros(1, dtype=dl.int64)).dtype == torch_like.dtype
    assert t.float() is t
    assert dl.tensor(2.5).item() == 2.5 and float(dl.tensor([3.0])) == 3.0
    assert int(dl.tensor(4)) == 4
    assert isinstance(t.numpy(), np.ndarray)
    assert np.asarray(t).shape == (2, 3)
    with pytest.raises(RuntimeError, match="one-element"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    with pytest.raises(RuntimeError, match="requires grad"):
        dl.randn(2, requires_grad=True).numpy()
    with pytest.raises(TypeError, match="0-d"):
        len(dl.tensor(1.0))


def test_to_dtype_is_differentiable():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3
    assert y.dtype == dl.float64
    y.backward(dl.ones(2, dtype=dl.float64))
    assert x.grad.dtype == dl.float32 and x.grad.tolist() == [3.0, 3.0]


def test_detach_clone_contiguous():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.array is x.array
    c = x.clone()
    assert c.requires_grad and c.grad_fn is not None and c.array is not x.array
    c.backward(dl.tensor([1.0, 1.0]))
    assert x.grad.tolist() == [1.0, 1.0]
    assert x.data.array is x.array and not x.data.requires_grad


def test_devices():
    assert dl.device("cuda") == dl.device("cuda:0") == "cuda:0"
    assert repr(dl.device("cuda", 1)) == "device(type='cuda', index=1)"
    with pytest.raises(ValueError, match="unknown device type"):
        dl.device("tpu")
    if not dl.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA was asked for but is not available"):
            dl.zeros(2, device="cuda")
        with pytest.raises(RuntimeError, match="not available"):
            dl.zeros(2).cuda()


@pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")
def test_cuda_round_trip_and_mixed_device_error():
    x = dl.randn(3, 4, requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0" and y.is_cuda
    (y * 2).cpu().backward(dl.ones(3, 4))
    assert x.grad.device == "cpu" and x.grad.tolist() == [[2.0] * 4] * 3
    with pytest.raises(RuntimeError, match="same device"):
        y + dl.randn(3, 4)


def test_repr_like_torch():
    assert repr(dl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(dl.tensor([[1, 2], [3, 4]])) == "tensor([[1, 2],\n        [3, 4]])"
    assert repr(dl.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(dl.tensor([1.0], dtype=dl.float64)) == "tensor([1.], dtype=darklib.float64)"
    y = dl.tensor([1.0], requires_grad=True) * 2
    assert repr(y) == "tensor([2.], grad_fn=<MulBackward0>)"
    assert repr(dl.float32) == "darklib.float32"
    assert f"{dl.tensor(0.5):.2f}" == "0.50"


def test_inplace_ops_under_no_grad_keep_the_array():
    p = dl.tensor([1.0, 2.0], requires_grad=True)
    arr = p.array
    with dl.no_grad():
        p.add_(1).mul_(2).sub_(dl.tensor([1.0, 1.0]), alpha=0.5).div_(2)
        p.clamp_(max=2.5)
    assert p.array is arr and p.is_leaf
    np.testing.assert_allclose(p.tolist(), [1.75, 2.5])
    p2 = dl.zeros(3)
    p2.fill_(4).copy_(dl.tensor([1.0, 2.0, 3.0]))
    assert p2.tolist() == [1.0, 2.0, 3.0]
    p2.zero_()
    assert p2.tolist() == [0.0] * 3
    with pytest.raises(RuntimeError, match="does not fit"):
        p2.add_(dl.ones(2, 3))
    i = dl.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.mul_(0.5)


def test_new_creation_methods_inherit_dtype_and_device():
    x = dl.randn(2, dtype=dl.float64)
    assert x.new_zeros((3,)).tolist() == [0.0] * 3 and x.new_zeros(3).dtype == dl.float64
    assert x.new_ones(2, 2).shape == (2, 2)
    assert x.new_full((2,), 3.0).tolist() == [3.0, 3.0]
    t = x.new_tensor([1, 2])
    assert t.dtype == dl.float64 and t.tolist() == [1.0, 2.0]
    assert x.new_zeros(2, dtype=dl.int64).dtype == dl.int64


def test_arange_follows_torch_for_integer_dtypes_float_bounds_and_directions():
    rnd = np.random.default_rng(0)
    cases = [(0.5,), (1, 10, 2.5), (0, 10, 3), (10, 0, -3), (1, 2, 0.3), (0, 1, 0.1), (10,)]
    cases += [tuple(np.round(rnd.uniform(-20, 20, 3), 1).tolist()) for _ in range(60)]
    for c in cases:
        for name in (None, "int64", "int32", "int8", "uint8", "float64"):
            kw_t = {} if name is None else {"dtype": getattr(torch, name)}
            kw_d = {} if name is None else {"dtype": getattr(dl, name)}
            try:
                want = torch.arange(*c, **kw_t)
            except (RuntimeError, ValueError) as e:
                with pytest.raises(type(e)):
                    dl.arange(*c, **kw_d)
                continue
            got = dl.arange(*c, **kw_d)
            assert got.dtype == getattr(dl, str(want.dtype).split(".")[1]), (c, name)
            if name == "float64":  # torch's vector lanes round some entries past the 8th
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14, atol=1e-13)
            else:
                np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=str((c, name)))
    for bad in ((5, 1), (0, 1, -1)):
        with pytest.raises(RuntimeError, match="inconsistent with step sign"):
            dl.arange(*bad)


def test_all_any_over_no_dims_give_truth_values():
    x = dl.tensor([2, 0, 4], dtype=dl.uint8)
    assert dl.all(x, dim=()).tolist() == [1, 0, 1] == dl.any(x, dim=()).tolist()
    assert dl.all(dl.tensor([0.5, 0.0]), dim=()).tolist() == [True, False]


# ------------------------------------------------------------------ argument errors (review)
def _same_error(call, exc=None, match=None):
    """``call(lib)`` raises for torch and for darklib; darklib's error is of torch's type
    (or ``exc``) and its message matches ``match``."""
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(exc or want.type, match=match) as got:
        call(dl)
    assert isinstance(got.value, want.type), (got.value, want.value)
    return got.value


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda L: L.zeros(2.5), r"zeros\(\): argument 'size' must be a tuple of ints, not float"),
        (lambda L: L.randn(3.9), r"randn\(\): argument 'size'.*not float"),
        (lambda L: L.ones(3.7), r"ones\(\): argument 'size'.*not float"),
        (lambda L: L.zeros("a"), r"not str"),
        (lambda L: L.ones(None), r"not NoneType"),
        (lambda L: L.zeros(True), r"not bool"),
        (lambda L: L.zeros([2, 3.0]), r"float \(3.0\) at position 1"),
        (lambda L: L.zeros(L.tensor(3.0)), r"not Tensor"),
        (lambda L: L.zeros(np.array([2, 3])), r"not ndarray"),
        (lambda L: L.full(-1, 2.0), r"full\(\): argument 'size' must be a tuple of ints, not int"),
        (lambda L: L.randint(5), r"randint\(\): missing the 'size'"),
        (lambda L: L.randint(0, 5, 3), r"argument 'size'.*not int"),
        (lambda L: L.randperm(2.5), r"randperm\(\): argument 'n' must be int, not float"),
        (lambda L: L.eye(2.5), r"eye\(\): argument 'n' must be int, not float"),
        (lambda L: L.linspace(0, 1, 2.5), r"linspace\(\): argument 'steps' must be int"),
        (lambda L: L.arange("a"), r"arange\(\): argument 'end' must be a number, not str"),
        (lambda L: L.triu_indices(3, 3, 1.5), r"argument 'offset' must be int, not float"),
    ],
)
def test_creation_sizes_must_be_ints_as_in_torch(call, match):
    _same_error(call, TypeError, match)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda L: L.zeros(-1), r"non-negative.*-1"),
        (lambda L: L.zeros(2, -3), r"non-negative.*-3 in size \(2, -3\)"),
        (lambda L: L.full((-1,), 2.0), r"non-negative"),
        (lambda L: L.eye(-1), r"n must be greater or equal to 0, got -1"),
        (lambda L: L.eye(2, -1), r"m must be greater or equal to 0, got -1"),
        (lambda L: L.randperm(-1), r"n must be greater or equal to 0"),
        (lambda L: L.linspace(0, 1, -1), r"steps must be greater or equal to 0"),
        (lambda L: L.logspace(0, 1, -1), r"steps must be greater or equal to 0"),
        (lambda L: L.tril_indices(-1, 3), r"row must be greater or equal to 0, got -1"),
        (lambda L: L.triu_indices(3, -1), r"col must be greater or equal to 0, got -1"),
        (lambda L: L.arange(0, float("inf")), r"unsupported range"),
        (lambda L: L.multinomial(L.ones(3), 0), r"cannot sample n_sample <= 0"),
    ],
)
def test_creation_negative_sizes_are_refused_as_in_torch(call, match):
    _same_error(call, RuntimeError, match)


def test_creation_sizes_accept_integer_scalars_of_every_kind():
    for size in (3, np.int64(3), np.int32(3), dl.tensor(3), (3,), [3], dl.Size([3])):
        assert dl.zeros(size).shape == (3,) == tuple(torch.zeros(3).shape)
    assert dl.ones(2, np.int16(3)).shape == (2, 3)
    assert dl.zeros(()).shape == () and dl.zeros(0).shape == (0,)
    assert dl.randint(5, size=(3,)).shape == (3,)
    want = tuple(torch.randint(high=5, size=(2,)).shape)
    assert dl.randint(high=5, size=(2,)).shape == (2,) == want
    assert dl.eye(2, 3).shape == (2, 3) and dl.eye(np.int64(2)).shape == (2, 2)


def test_creation_refuses_sizes_beyond_memory_before_allocating():
    # torch: RuntimeError (allocation failure / storage size overflow); darklib says so first
    for call in (lambda L: L.arange(0, 1, 1e-12), lambda L: L.zeros(2**40, 2**40)):
        err = _same_error(call, RuntimeError, r"too large")
        assert isinstance(err, MemoryError) and "float128" not in str(err)
    with pytest.raises(MemoryError, match=r"empty\(\): a tensor of size \[1099511627776, 1024\]"):
        dl.empty(2**40, 1024)


def test_like_functions_and_tensor_helpers_refuse_non_tensors():
    for name in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"):
        _same_error(
            lambda L, n=name: getattr(L, n)([1, 2]),
            TypeError,
            rf"{name}\(\): argument 'input' \(position 1\) must be Tensor, not list",
        )
    _same_error(lambda L: L.full_like([1, 2], 1.0), TypeError, r"full_like.*not list")
    _same_error(lambda L: L.is_floating_point(5), TypeError, r"is_floating_point.*not int")
    _same_error(lambda L: L.numel([1, 2]), TypeError, r"numel.*not list")
    _same_error(lambda L: L.randn(3).type_as(5), TypeError, r"type_as.*'other'.*not int")
    with pytest.raises(TypeError, match=r"randn\(\): argument 'generator' must be a darklib"):
        dl.randn(2, generator=5)
    with pytest.raises(TypeError, match=r"multinomial\(\): argument 'generator'"):
        dl.multinomial(dl.ones(3), 1, generator="g")


def test_size_and_stride_out_of_range_dims_as_torch():
    for m in ("size", "stride"):
        for d in (2, -3):
            err = _same_error(
                lambda L, m=m, d=d: getattr(L.randn(2, 3), m)(d),
                IndexError,
                rf"Dimension out of range \(expected to be in range of \[-2, 1\], but got {d}\)",
            )
            assert isinstance(err, RuntimeError)
        _same_error(lambda L, m=m: getattr(L.tensor(1.0), m)(0), IndexError, r"no dimensions")
        _same_error(lambda L, m=m: getattr(L.randn(2), m)(1.5), TypeError, r"must be an integer")
    t = dl.randn(2, 3, 4).transpose(0, 2)
    tt = torch.randn(2, 3, 4).transpose(0, 2)
    assert [t.size(d) for d in range(-3, 3)] == [tt.size(d) for d in range(-3, 3)]
    assert [t.stride(d) for d in range(-3, 3)] == [tt.stride(d) for d in range(-3, 3)]


@pytest.mark.parametrize(
    "data, exc, match",
    [
        ([[1, 2], [3]], ValueError, r"expected sequence of length 2 at dim 1 \(got 1\)"),
        ([[[1], [2]], [[3], [4, 5]]], ValueError, r"length 1 at dim 2 \(got 2\) at index \[1, 1\]"),
        ([[1, 2], 3], TypeError, r"expected a sequence of length 2 at dim 1 at index \[1\]"),
        ([1, [2]], TypeError, r"expected a number at index \[1\], got a list"),
        (None, RuntimeError, r"Could not infer dtype of NoneType"),
        ([1, None], RuntimeError, r"Could not infer dtype of NoneType at index \[1\]"),
        ({1: 2}, RuntimeError, r"Could not infer dtype of dict"),
        ([2**70], ValueError, r"Overflow: the integer 1180591620717411303424 does not fit int64"),
        ([-(2**63) - 1, 1], ValueError, r"Overflow"),
    ],
)
def test_tensor_constructor_errors_as_torch(data, exc, match):
    err = _same_error(lambda L: L.tensor(data), exc, match)
    assert "inhomogeneous" not in str(err) and "setting an array element" not in str(err)


def test_tensor_constructor_still_takes_big_numbers_as_floats():
    for data in ([1.5, 2**70], [[2**70]]):
        kw = {} if isinstance(data[0], float) else {"dtype": torch.float32}
        want = torch.tensor(data, **kw)
        got = dl.tensor(data, **({} if not kw else {"dtype": dl.float32}))
        assert got.dtype == dl.float32 == getattr(dl, str(want.dtype).split(".")[1])
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert dl.tensor([[1, 2], (3, 4)]).tolist() == torch.tensor([[1, 2], (3, 4)]).tolist()


def test_generator_manual_seed_takes_64_bit_integers_only():
    _same_error(lambda L: L.Generator().manual_seed("x"), RuntimeError, r"expected a long.*str")
    _same_error(lambda L: L.Generator().manual_seed(1.5), RuntimeError, r"expected a long.*float")
    _same_error(lambda L: L.Generator().manual_seed(True), RuntimeError, r"expected a long.*bool")
    _same_error(lambda L: L.Generator().manual_seed(2**64), ValueError, r"overflows")
    for s in (-1, 2**63, np.int64(5)):
        g, gt = dl.Generator().manual_seed(s), torch.Generator().manual_seed(int(s))
        assert g.initial_seed() == gt.initial_seed()
    a = dl.randn(3, generator=dl.Generator().manual_seed(-1))
    b = dl.randn(3, generator=dl.Generator().manual_seed(2**64 - 1))
    assert a.tolist() == b.tolist()


def test_requires_grad_flag_must_be_a_bool():
    for v in ("no", 1, None):
        _same_error(
            lambda L, v=v: L.randn(2).requires_grad_(v),
            TypeError,
            rf"requires_grad_\(\): argument 'requires_grad' must be bool, not {type(v).__name__}",
        )
        t = dl.randn(2)
        with pytest.raises(RuntimeError, match="requires_grad must be a bool"):
            t.requires_grad = v
        assert t.requires_grad is False
    assert dl.randn(2).requires_grad_().requires_grad is True


def test_random_fills_draw_torchs_distributions():
    dl.manual_seed(0)
    n = 100_000
    cases = [  # (method, args, mean, lower bound, upper bound)
        ("exponential_", (2.0,), 0.5, 0.0, np.inf),
        ("geometric_", (0.3,), 1 / 0.3, 1.0, np.inf),
        ("log_normal_", (0.5, 0.25), np.exp(0.5 + 0.25**2 / 2), 0.0, np.inf),
        ("random_", (3, 10), 6.0, 3.0, 9.0),
        ("random_", (5,), 2.0, 0.0, 4.0),
    ]
    for name, args, mean, lo, hi in cases:
        x = getattr(dl.empty(n, dtype=dl.float64), name)(*args).numpy()
        t = getattr(torch.empty(5, dtype=torch.float64), name)(*args)  # same signature
        assert t.shape == (5,)
        assert abs(x.mean() - mean) < 0.02 * mean, name
        assert x.min() >= lo and x.max() <= hi, name
        if name in ("geometric_", "random_"):
            assert np.array_equal(x, np.round(x)), name
    c = dl.empty(n, dtype=dl.float64).cauchy_(1.0, 2.0).numpy()
    assert abs(np.median(c) - 1.0) < 0.05 and abs(np.percentile(c, 75) - 3.0) < 0.1
    g = dl.Generator().manual_seed(3)
    a = dl.empty(4).exponential_(generator=g).tolist()
    g.manual_seed(3)
    assert dl.empty(4).exponential_(generator=g).tolist() == a
    i = dl.empty(1000, dtype=dl.int32).random_()
    assert i.dtype == dl.int32 and i.numpy().min() >= 0
    with pytest.raises(RuntimeError, match="lambd"):
        dl.empty(3).exponential_(0.0)
    with pytest.raises(RuntimeError, match="from < to"):
        dl.empty(3).random_(5, 2)


def test_clone_keeps_the_layout_and_contiguous_makes_it_row_major():
    for L in (torch, dl):
        x = L.arange(6.0).reshape(2, 3).requires_grad_()
        c = x.t().clone()
        assert c.stride() == (1, 3) and not c.is_contiguous()
        assert x.t().contiguous().stride() == (2, 1)
        assert x[:, ::2].clone().stride() == (2, 1)
        (c * L.arange(6.0).reshape(3, 2)).sum().backward()
        assert x.grad.tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]


def test_random_bounds_are_checked_against_the_dtype_as_torch():
    cases = [
        lambda L: L.zeros(3, dtype=L.uint8).random_(0, 1000),
        lambda L: L.zeros(3, dtype=L.uint8).random_(-5, 3),
        lambda L: L.zeros(3, dtype=L.float16).random_(0, 100000),
        lambda L: L.zeros(3, dtype=L.bool).random_(0, 3),
    ]
    for case in cases:
        with pytest.raises(RuntimeError):
            case(torch)
        with pytest.raises(RuntimeError, match="out of bounds"):
            case(dl)
    assert dl.zeros(1000).random_(5, None).min().item() >= 5  # [5, max], not [0, 5)
    assert dl.zeros(1000).random_(5).max().item() <= 4


@pytest.mark.parametrize(
    "args",
    [(), (3,), (2, 3), ([1, 2],), ((2, 3),), (0,), "size", "int64", "array"],
    ids=str,
)
def test_tensor_constructor_as_torch(args):
    """dl.Tensor is torch.Tensor: data in the default float dtype, or sizes."""
    if args == "size":
        d, t = dl.Tensor(dl.Size([2, 3])), torch.Tensor(torch.Size([2, 3]))
    elif args == "int64":
        d, t = dl.Tensor(np.int64(3)), torch.Tensor(np.int64(3))
    elif args == "array":
        d, t = dl.Tensor(np.array([1, 2])), torch.Tensor(np.array([1, 2]))
    else:
        d, t = dl.Tensor(*args), torch.Tensor(*args)
    assert tuple(d.shape) == tuple(t.shape) and d.dtype == dl.float32
    if args in (([1, 2],), "array"):
        np.testing.assert_array_equal(d.numpy(), t.numpy())


@pytest.mark.parametrize("args", [(3.5,), (True,), (np.float64(2.5),), (2, 3.0)], ids=str)
def test_tensor_constructor_refuses_what_torch_refuses(args):
    with pytest.raises(TypeError):
        torch.Tensor(*args)
    with pytest.raises(TypeError, match="Tensor"):
        dl.Tensor(*args)
