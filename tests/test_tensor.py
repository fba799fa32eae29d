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
