"""Tensor API extras against torch: index_copy, masked_scatter, put, resize_, sum_to_size,
msort, hsplit/vsplit/dsplit, randint_like, can_cast, memory formats, dtype flags, the
unsigned types, legacy reduce arguments, overflow checks, var/std gradients past their
degrees of freedom, and copy_ into a leaf."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, assert_close, compare, gradcheck, rng

_MAKERS = frozenset(
    "tensor as_tensor zeros ones empty full arange linspace eye rand randn randint".split()
)


class _OnDevice:
    """darklib whose creation functions default to ``device``: one ``fn(L)`` body builds
    torch's tensors on the CPU and darklib's on the device under test."""

    def __init__(self, device):
        self.device = device

    def __getattr__(self, name):
        attr = getattr(dl, name)
        return functools.partial(attr, device=self.device) if name in _MAKERS else attr


def lib_on(lib, device="cpu"):
    """``lib`` itself, or for darklib off the CPU a view of it that creates on ``device``."""
    return lib if lib is torch or device == "cpu" else _OnDevice(device)


def both(fn, device="cpu"):
    """``fn(dl)`` and ``fn(torch)``: the same result, or the same kind of error."""
    out = {}
    for lib in (dl, torch):
        try:
            out[lib] = ("ok", fn(lib_on(lib, device)))
        except Exception as e:
            out[lib] = ("err", e)
    (dk, dv), (tk, tv) = out[dl], out[torch]
    assert dk == tk, f"darklib {dk} {dv!r} but torch {tk} {tv!r}"
    if dk == "err":
        assert isinstance(dv, type(tv)) or isinstance(dv, RuntimeError), (dv, tv)
        return dv, tv
    return dv, tv


def same(fn, exact=True, device="cpu"):
    d, t = both(fn, device)
    if isinstance(t, torch.Tensor):
        assert d.dtype.name == str(t.dtype).replace("torch.", ""), (d.dtype, t.dtype)
        assert tuple(d.shape) == tuple(t.shape)
        if exact:
            np.testing.assert_array_equal(d.cpu().numpy(), t.numpy())
        else:
            assert_close(d, t)
    elif isinstance(t, tuple | list) and t and isinstance(t[0], torch.Tensor):
        assert len(d) == len(t)
        for a, b in zip(d, t):
            np.testing.assert_array_equal(a.cpu().numpy(), b.numpy())
    elif isinstance(t, torch.dtype):
        assert d.name == str(t)[6:], (d, t)
    elif not isinstance(t, Exception):
        assert d == t, (d, t)


def raises(fn, exc=RuntimeError, match=None, device="cpu"):
    """torch raises ``exc``, and darklib does too (with ``match`` in its message)."""
    with pytest.raises(exc):
        fn(torch)
    with pytest.raises(exc, match=match):
        fn(lib_on(dl, device))


# ------------------------------------------------------------------ index_copy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_copy_values_and_gradients(device, dim):
    x = rng(0).standard_normal((4, 5)).astype(np.float32)
    n = x.shape[dim]
    idx = np.array([n - 1, 0, 2])
    src_shape = list(x.shape)
    src_shape[dim] = 3
    src = rng(1).standard_normal(src_shape).astype(np.float32)
    compare(
        lambda a, s: a.index_copy(dim, dl.tensor(idx, device=device), s),
        lambda a, s: a.index_copy(dim, torch.tensor(idx), s),
        x,
        src,
        device=device,
    )
    gradcheck(lambda a, s: dl.index_copy(a, dim, dl.tensor(idx), s), x, src)


def test_index_copy_repeated_index_and_scalars():
    same(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([1, 1]), L.arange(8.0).reshape(2, 4)))
    same(lambda L: L.tensor(1.0).index_copy(0, L.tensor([0]), L.tensor(5.0)))
    same(lambda L: L.tensor(1.0).index_copy(0, L.tensor(0), L.tensor(5.0)))
    # the repeated index: the source gets every copy's gradient, as torch's
    compare(
        lambda a, s: a.index_copy(0, dl.tensor([1, 1]), s),
        lambda a, s: a.index_copy(0, torch.tensor([1, 1]), s),
        np.ones((3, 2), np.float32),
        np.arange(4.0, dtype=np.float32).reshape(2, 2),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_index_copy_inplace_bumps_version_and_refuses_bad_input(device):
    x = dl.zeros(3, 2, device=device)
    v = x._version
    assert x.index_copy_(0, dl.tensor([2], device=device), dl.ones(1, 2, device=device)) is x
    assert x._version == v + 1 and x.tolist() == [[0, 0], [0, 0], [1, 1]]
    src = lambda L: L.arange(8.0).reshape(2, 4)
    raises_on = functools.partial(raises, device=device)
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([2, 0]), L.ones(2, 3)))
    raises_on(
        lambda L: L.zeros(3, 4).index_copy(0, L.tensor([2, 0]), src(L).double()), match="dtype"
    )
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([2, 0], dtype=L.int32), src(L)))
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([3, 0]), src(L)), IndexError)
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([-1, 0]), src(L)), IndexError)
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([[2, 0]]), src(L)), IndexError)
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([2, 0, 1]), src(L)), IndexError)
    raises_on(lambda L: L.zeros(3, 4).index_copy(0, L.tensor([1]), L.ones(4)), IndexError)


# ------------------------------------------------------------------ masked_scatter


@pytest.mark.parametrize("device", DEVICES)
def test_masked_scatter_values_and_gradients(device):
    m = np.array([[True, False, True], [False, True, False]])
    x = rng(2).standard_normal((2, 3)).astype(np.float32)
    src = rng(3).standard_normal(7).astype(np.float32)
    compare(
        lambda a, s: a.masked_scatter(dl.tensor(m, device=device), s),
        lambda a, s: a.masked_scatter(torch.tensor(m), s),
        x,
        src,
        device=device,
    )
    # self broadcast to the mask's shape (out of place), mask broadcast to self's
    compare(
        lambda a, s: dl.masked_scatter(a, dl.tensor(m, device=device), s),
        lambda a, s: torch.masked_scatter(a, torch.tensor(m), s),
        x[0],
        src.reshape(1, 7)[:, :6].reshape(2, 3),
        device=device,
    )
    compare(
        lambda a, s: a.masked_scatter(dl.tensor(m[0], device=device), s),
        lambda a, s: a.masked_scatter(torch.tensor(m[0]), s),
        x,
        src,
        device=device,
    )
    gradcheck(lambda a, s: a.masked_scatter(dl.tensor(m), s), x, src)


@pytest.mark.parametrize("device", DEVICES)
def test_masked_scatter_inplace_and_errors(device):
    m = [[True, False, True], [False, True, False]]
    x = dl.zeros(2, 3, device=device)
    v = x._version
    assert x.masked_scatter_(dl.tensor(m, device=device), dl.arange(6.0, device=device)) is x
    assert x._version == v + 1 and x.tolist() == [[0, 0, 1], [0, 2, 0]]
    raises_on = functools.partial(raises, device=device)
    raises_on(lambda L: L.zeros(2, 3).masked_scatter(L.tensor(m), L.arange(2.0)), match="source")
    raises_on(lambda L: L.zeros(2, 3).masked_scatter(L.tensor(m), L.arange(6)), match="dtype")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raises_on(lambda L: L.zeros(2, 3).masked_scatter(L.tensor(m).to(L.uint8), L.arange(6.0)))
    raises_on(lambda L: L.zeros(3).masked_scatter_(L.tensor(m), L.arange(6.0)))
    # a leaf that requires grad can be the source of the in-place form
    s = dl.arange(6.0, device=device, requires_grad=True)
    y = dl.zeros(2, 3, device=device).masked_scatter_(dl.tensor(m, device=device), s)
    y.sum().backward()
    assert s.grad.tolist() == [1, 1, 1, 0, 0, 0]


# ------------------------------------------------------------------ put


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("accumulate", [False, True])
def test_put_values_and_gradients(device, accumulate):
    x = rng(4).standard_normal((2, 3)).astype(np.float32)
    idx = np.array([[0, 5], [-1, 1]]) if accumulate else np.array([[0, 4], [-1, 1]])
    src = rng(5).standard_normal((2, 2)).astype(np.float32)
    compare(
        lambda a, s: a.put(dl.tensor(idx, device=device), s, accumulate=accumulate),
        lambda a, s: a.put(torch.tensor(idx), s, accumulate=accumulate),
        x,
        src,
        device=device,
    )
    gradcheck(lambda a, s: dl.put(a, dl.tensor(idx), s, accumulate), x, src)


@pytest.mark.parametrize("device", DEVICES)
def test_put_repeats_integers_inplace_and_errors(device):
    same_on = functools.partial(same, device=device)
    same_on(
        lambda L: L.zeros(2, 3).put(L.tensor([0, 0, -1]), L.tensor([1.0, 2, 3]), accumulate=True)
    )
    same_on(
        lambda L: L.zeros(3, dtype=L.uint8).put(
            L.tensor([0, 0]), L.tensor([200, 100], dtype=L.uint8), accumulate=True
        )
    )
    same_on(lambda L: L.put(L.zeros(2, 3), L.tensor([[0, 1]]), L.tensor([1.0, 2.0])))
    same_on(lambda L: L.zeros(0).put(L.tensor([], dtype=L.int64), L.tensor([])))
    x = dl.zeros(4, device=device)
    v = x._version
    assert x.put_(dl.tensor([3], device=device), dl.tensor([7.0], device=device)) is x
    assert x._version == v + 1
    assert x.tolist() == [0, 0, 0, 7]
    raises_on = functools.partial(raises, device=device)
    raises_on(lambda L: L.zeros(2, 3).put(L.tensor([0, 1]), L.tensor([1.0, 2, 3])), IndexError)
    raises_on(lambda L: L.zeros(2, 3).put(L.tensor([0, 1]), L.tensor([1, 2])), match="dtype")
    raises_on(lambda L: L.zeros(2, 3).put(L.tensor([0, 1], dtype=L.int32), L.tensor([1.0, 2])))
    raises_on(lambda L: L.zeros(2, 3).put(L.tensor([6]), L.tensor([1.0])), IndexError)
    raises_on(lambda L: L.zeros(2, 3).put(L.tensor([-7]), L.tensor([1.0])), IndexError)
    raises_on(lambda L: L.zeros(0).put(L.tensor([0]), L.tensor([1.0])), IndexError)


# ------------------------------------------------------------------ resize_, sum_to_size


def _resized(L, size, **kw):
    x = L.arange(6.0)
    x.resize_(*size, **kw)
    return x


def _bumps(L, size):
    x = L.arange(6.0)
    v = x._version  # (torch's arange starts at version 1)
    x.resize_(*size)
    return x._version - v


@pytest.mark.parametrize("device", DEVICES)
def test_resize_shrinks_and_grows_within_the_storage_as_torch(device):
    D = lib_on(dl, device)
    for size in [(2, 2), (6,), (3, 2), (0,), ((),)]:
        same(lambda L, size=size: _resized(L, size), device=device)
        d, t = _resized(D, size), _resized(torch, size)
        assert d.stride() == t.stride() and _bumps(D, size) == _bumps(torch, size)
    for L in (D, torch):  # back to the old size: the storage kept the elements
        x = L.arange(6.0)
        x.resize_(2)
        x.resize_(6)
        assert x.tolist() == [0, 1, 2, 3, 4, 5]
        y = L.arange(6.0)
        y.resize_(3, 3)  # a larger storage: the old elements first
        assert y.shape == (3, 3) and y[:2].tolist() == [[0, 1, 2], [3, 4, 5]]
        v = L.arange(6.0)
        w = v[:3]
        w.resize_(5)  # a view reaches into its base's storage
        assert w.tolist() == [0, 1, 2, 3, 4]
        z = L.arange(6.0).reshape(2, 3).t()
        z.resize_(6)  # a new shape: row-major over the storage
        assert z.tolist() == [0, 1, 2, 3, 4, 5] and z.stride() == (1,)


@pytest.mark.parametrize("device", DEVICES)
def test_resize_version_formats_and_refusals(device):
    for L in (lib_on(dl, device), torch):
        x = L.zeros(2)
        x.resize_(2)
        assert x._version == 0  # the same shape changes nothing
        y = L.zeros(3, 2).t()
        y.resize_(2, 3)
        assert y.stride() == (1, 2)
        assert L.zeros(24).resize_(1, 2, 3, 4, memory_format=L.channels_last).stride() == (
            24,
            1,
            8,
            2,
        )
        assert L.zeros(3).resize_as_(L.zeros(2, 2)).shape == (2, 2)
    raises_on = functools.partial(raises, device=device)
    raises_on(lambda L: L.ones(3, requires_grad=True).resize_(2), match="require grad")
    raises_on(lambda L: (L.ones(3, requires_grad=True) * 2).resize_(3), match="require grad")
    raises_on(lambda L: L.zeros(24).resize_(24, memory_format=L.preserve_format))
    raises_on(lambda L: L.zeros(3).resize_(), TypeError)
    raises_on(lambda L: L.zeros(3).resize_(2.0), TypeError)
    same(lambda L: L.zeros(3).resize_(L.tensor(2), 1).shape, device=device)


def test_sum_to_size_as_torch():
    a = lambda L: L.arange(6.0).reshape(2, 3)
    for size in [(1, 3), ((2, 1),), (3,), ((),), (), (2, 3)]:
        same(lambda L, size=size: a(L).sum_to_size(*size))
    x = dl.ones(2, 3)
    assert x.sum_to_size(2, 3) is x
    same(lambda L: L.tensor([[1, 2], [3, 4]], dtype=L.int32).sum_to_size(1, 2))
    same(lambda L: L.tensor([[200, 200]], dtype=L.uint8).sum_to_size(1, 1))
    same(lambda L: L.tensor([[True, True]]).sum_to_size(1, 1))
    raises(lambda L: a(L).sum_to_size(2), match="expandable")
    raises(lambda L: a(L).sum_to_size(1, 2, 3), match="expandable")
    compare(
        lambda t: t.sum_to_size(1, 3),
        lambda t: t.sum_to_size(1, 3),
        rng(6).standard_normal((4, 2, 3)).astype(np.float32),
    )


# ------------------------------------------------------------------ small tensor methods


def test_is_nonzero_msort_get_device_real_imag():
    for v in ([0.0], [1], [[False]], float("nan"), 3):
        same(lambda L, v=v: L.tensor(v).is_nonzero())
        same(lambda L, v=v: L.is_nonzero(L.tensor(v)))
    raises(lambda L: L.tensor([1, 2]).is_nonzero(), match="more than one")
    raises(lambda L: L.tensor([]).is_nonzero(), match="no values")
    same(lambda L: L.msort(L.tensor([[3, 1], [1, 2], [2, 0]])))
    same(lambda L: L.tensor([3.0, 1.0]).msort())
    same(lambda L: L.msort(L.tensor(3.0)))
    compare(
        lambda t: dl.msort(t),
        lambda t: torch.msort(t),
        rng(7).standard_normal((4, 3)).astype(np.float32),
    )
    assert dl.zeros(1).get_device() == torch.zeros(1).get_device() == -1
    assert dl.get_device(dl.zeros(1)) == -1
    for L in (dl, torch):
        x = L.arange(3.0)
        assert x.real is x and L.real(x) is x and L.arange(3).real.tolist() == [0, 1, 2]
        x.real = L.zeros(3)
        assert x.tolist() == [0, 0, 0]
    raises(lambda L: L.arange(3.0).imag, match="non-complex")
    raises(lambda L: L.imag(L.arange(3.0)), match="non-complex")
    raises(lambda L: setattr(L.arange(3.0), "imag", L.zeros(3)), match="non-complex")


@pytest.mark.parametrize("device", DEVICES)
def test_real_keeps_gradients(device):
    x = dl.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x.real * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


# ------------------------------------------------------------------ hsplit / vsplit / dsplit


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.hsplit(L.arange(6.0), 3),
        lambda L: L.hsplit(L.arange(6.0), [1, 4]),
        lambda L: L.hsplit(L.arange(24.0).reshape(2, 3, 4), 3),
        lambda L: L.hsplit(L.arange(24.0).reshape(2, 3, 4), (1,)),
        lambda L: L.hsplit(L.arange(6.0), L.tensor(2)),
        lambda L: L.hsplit(L.arange(6.0), [-2]),
        lambda L: L.hsplit(L.arange(6.0), [4, 2, 10]),
        lambda L: L.vsplit(L.arange(24.0).reshape(2, 3, 4), 2),
        lambda L: L.dsplit(L.arange(24.0).reshape(2, 3, 4), 2),
        lambda L: L.dsplit(L.arange(24.0).reshape(2, 3, 4), [1, -1]),
        lambda L: L.arange(24.0).reshape(2, 3, 4).dsplit(2),
        lambda L: L.arange(24.0).reshape(2, 3, 4).dsplit(1, 2),
        lambda L: L.arange(24.0).reshape(2, 3, 4).vsplit([1]),
    ],
)
def test_directional_splits_as_torch(call):
    same(call)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.hsplit(L.arange(6.0), 4),
        lambda L: L.hsplit(L.arange(6.0), 0),
        lambda L: L.hsplit(L.arange(6.0), -2),
        lambda L: L.hsplit(L.tensor(1.0), 1),
        lambda L: L.vsplit(L.arange(6.0), 2),
        lambda L: L.dsplit(L.arange(6.0).reshape(2, 3), 3),
        lambda L: L.dsplit(L.arange(24.0).reshape(2, 3, 4), 3),
    ],
)
def test_directional_split_errors(call):
    raises(call)
    raises(lambda L: L.hsplit(L.arange(6.0), 2.0), TypeError)
    raises(lambda L: L.hsplit(L.arange(6.0), L.tensor([1, 2])), TypeError)


# ------------------------------------------------------------------ randint_like, randint


@pytest.mark.parametrize("device", DEVICES)
def test_randint_like_dtype_range_and_bounds(device):
    x = dl.zeros(2, 3, device=device)
    for args, kw in [((5,), {}), ((3, 5), {}), ((), {"low": 1, "high": 5}), ((), {"high": 5})]:
        d, t = dl.randint_like(x, *args, **kw), torch.randint_like(torch.zeros(2, 3), *args, **kw)
        assert d.dtype.name == str(t.dtype)[6:] and tuple(d.shape) == tuple(t.shape)
        lo, hi = args if len(args) == 2 else (kw.get("low", 0), (args or (kw["high"],))[-1])
        assert lo <= float(d.min()) and float(d.max()) < hi
    assert dl.randint_like(dl.zeros(2, dtype=dl.int32, device=device), 5).dtype == dl.int32
    assert dl.randint_like(x, 5, dtype=dl.int64).dtype == dl.int64
    assert dl.randint_like(x, dl.tensor(5, device=device)).dtype == dl.float32
    assert dl.randint_like(x, 5, requires_grad=True).requires_grad
    g = dl.Generator().manual_seed(3)
    a = dl.randint_like(x, 100, generator=g)
    assert a.equal(dl.randint_like(x, 100, generator=dl.Generator().manual_seed(3)))
    for call in [
        lambda L: L.randint_like(L.zeros(2), 5, 3),
        lambda L: L.randint_like(L.zeros(2), 0),
        lambda L: L.randint_like(L.zeros(2, dtype=L.uint8), 300),
        lambda L: L.randint_like(L.zeros(2, dtype=L.uint8), -1, 5),
        lambda L: L.randint_like(L.zeros(2, dtype=L.bool), 3),
        lambda L: L.randint_like(L.zeros(2, dtype=L.float16), 100000),
    ]:
        raises(call, match="from|to", device=device)
    raises(lambda L: L.randint_like(L.zeros(2), 5.5), TypeError, device=device)
    assert dl.randint_like(dl.zeros(50, dtype=dl.uint8, device=device), 256).dtype == dl.uint8


@pytest.mark.parametrize("device", DEVICES)
def test_randint_bounds_must_fit_the_dtype(device):
    raises_on = functools.partial(raises, device=device)
    raises_on(lambda L: L.randint(0, 300, (3,), dtype=L.uint8), match="to - 1 is out of bounds")
    raises_on(lambda L: L.randint(-1, 5, (3,), dtype=L.uint8), match="from is out of bounds")
    raises_on(lambda L: L.randint(0, 200, (3,), dtype=L.int8), match="out of bounds")
    raises_on(lambda L: L.randint(0, 3, (3,), dtype=L.bool), match="out of bounds")
    raises_on(lambda L: L.randint(0, 100000, (3,), dtype=L.float16), match="out of bounds")
    for L in (lib_on(dl, device), torch):
        warnings.filterwarnings("ignore", "to - 1 is out of bounds")  # (torch, float16)
        assert L.randint(0, 256, (50,), dtype=L.uint8).dtype == L.uint8
        assert L.randint(0, 2, (3,), dtype=L.bool).dtype == L.bool
        assert L.randint(0, 5000, (3,), dtype=L.float16).dtype == L.float16
        assert L.randint(0, 2**32, (3,), dtype=L.uint32).dtype == L.uint32


# ------------------------------------------------------------------ can_cast, dtype flags


def test_can_cast_matches_torch_on_every_pair():
    names = "bool uint8 int8 int16 int32 int64 float16 float32 float64 uint16 uint32 uint64".split()
    for a in names:
        for b in names:
            assert dl.can_cast(getattr(dl, a), getattr(dl, b)) == torch.can_cast(
                getattr(torch, a), getattr(torch, b)
            ), (a, b)
    raises(lambda L: L.can_cast("float32", L.int32), TypeError)


def test_dtype_flags():
    for (
        name
    ) in "bool uint8 int8 int16 int32 int64 float16 float32 float64 uint16 uint32 uint64".split():
        d, t = getattr(dl, name), getattr(torch, name)
        assert d.is_signed == t.is_signed, name
        assert d.is_floating_point == t.is_floating_point, name
        assert d.is_complex == t.is_complex, name
        assert d.itemsize == t.itemsize, name


# ------------------------------------------------------------------ memory formats


@pytest.mark.parametrize("device", DEVICES)
def test_memory_formats_are_observable_through_stride(device):
    x = lambda L: L.arange(24.0).reshape(1, 2, 3, 4)
    for call in [
        lambda L: x(L).contiguous(memory_format=L.channels_last).stride(),
        lambda L: x(L).contiguous(memory_format=L.channels_last).is_contiguous(),
        lambda L: (
            x(L)
            .contiguous(memory_format=L.channels_last)
            .is_contiguous(memory_format=L.channels_last)
        ),
        lambda L: x(L).clone(memory_format=L.channels_last).stride(),
        lambda L: x(L).contiguous(memory_format=L.channels_last).clone().stride(),
        lambda L: (
            x(L)
            .contiguous(memory_format=L.channels_last)
            .clone(memory_format=L.contiguous_format)
            .stride()
        ),
        lambda L: x(L).contiguous(memory_format=L.channels_last).contiguous().stride(),
        lambda L: L.empty_like(x(L), memory_format=L.channels_last).stride(),
        lambda L: L.empty_like(x(L).transpose(1, 3)).stride(),
        lambda L: L.zeros_like(x(L).transpose(1, 3)).stride(),
        lambda L: L.ones_like(x(L), memory_format=L.channels_last).stride(),
        lambda L: L.empty_like(x(L).transpose(1, 3), memory_format=L.contiguous_format).stride(),
        lambda L: L.empty_like(x(L)[:, :, ::2]).stride(),
        lambda L: x(L).to(memory_format=L.channels_last).stride(),
        lambda L: L.empty(1, 2, 3, 4, memory_format=L.channels_last).stride(),
        lambda L: (x(L).contiguous(memory_format=L.channels_last) + 1).stride(),
        lambda L: L.zeros(2, 1, 3, 3).contiguous(memory_format=L.channels_last).stride(),
        lambda L: x(L).is_contiguous(memory_format=L.preserve_format),
        lambda L: L.zeros(2, 3, 4).is_contiguous(memory_format=L.channels_last),
        lambda L: x(L).clone(memory_format=L.contiguous_format).stride(),
        lambda L: L.zeros(2, 3).t().clone(memory_format=L.contiguous_format).stride(),
        lambda L: x(L).contiguous(memory_format=L.preserve_format).stride(),
        lambda L: (
            L.arange(120.0)
            .reshape(1, 2, 3, 4, 5)
            .contiguous(memory_format=L.channels_last_3d)
            .stride()
        ),
    ]:
        same(call, device=device)
    D = lib_on(dl, device)
    assert dl.equal(x(D).contiguous(memory_format=dl.channels_last), x(D))
    assert repr(dl.channels_last) == "darklib.channels_last"


@pytest.mark.parametrize("device", DEVICES)
def test_memory_format_errors_and_gradients(device):
    raises_on = functools.partial(raises, device=device)
    raises_on(lambda L: L.zeros(2, 3, 4).contiguous(memory_format=L.channels_last), match="rank 4")
    raises_on(lambda L: L.zeros(2, 3, 4).clone(memory_format=L.channels_last), match="rank 4")
    raises_on(lambda L: L.zeros(1, 2, 3, 4).contiguous(memory_format=L.channels_last_3d))
    raises_on(lambda L: L.empty_like(L.zeros(2, 3), memory_format=L.channels_last))
    raises_on(lambda L: L.zeros(2, 3).t().contiguous(memory_format=L.preserve_format))
    raises_on(lambda L: L.zeros(2).clone(memory_format="channels_last"), TypeError)
    compare(
        lambda t: t.contiguous(memory_format=dl.channels_last) * 2,
        lambda t: t.contiguous(memory_format=torch.channels_last) * 2,
        rng(8).standard_normal((2, 3, 4, 5)).astype(np.float32),
        device=device,
    )


# ------------------------------------------------------------------ legacy reduce arguments


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_legacy_reduce(reduce, device):
    idx = [[0, 1, 0], [1, 0, 1]]
    same_on = functools.partial(same, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_on(
            lambda L: L.ones(2, 3).scatter(
                0, L.tensor(idx), L.arange(2.0, 8.0).reshape(2, 3), reduce=reduce
            )
        )
        same_on(lambda L: L.ones(2, 3).scatter(0, L.tensor(idx), 3.0, reduce=reduce))
        same_on(lambda L: L.ones(2, 3).scatter(0, L.tensor(idx), value=3.0, reduce=reduce))
        same_on(
            lambda L: L.ones(2, 3, dtype=L.int64).scatter(
                0, L.tensor(idx), L.arange(2, 8).reshape(2, 3), reduce=reduce
            )
        )
        same_on(
            lambda L: L.ones(3).scatter(0, L.tensor([0, 0]), L.tensor([2.0, 3.0]), reduce=reduce)
        )
        D = lib_on(dl, device)
        x = D.ones(2, 3)
        v = x._version
        x.scatter_(0, D.tensor(idx), D.arange(2.0, 8.0).reshape(2, 3), reduce=reduce)
        t = torch.ones(2, 3).scatter_(
            0, torch.tensor(idx), torch.arange(2.0, 8.0).reshape(2, 3), reduce=reduce
        )
        assert x.tolist() == t.tolist() and x._version == v + 1
        raises(
            lambda L: L.ones(3, dtype=L.uint8).scatter(0, L.tensor([0]), 300, reduce=reduce),
            device=device,
        )
    raises(
        lambda L: L.ones(2, 3).scatter(0, L.tensor(idx), 2.0, reduce="sum"),
        match="add or",
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_scatter_reduce_legacy_max_min_names(device):
    idx = [[0, 1, 0], [1, 0, 1]]
    same_on = functools.partial(same, device=device)
    raises_on = functools.partial(raises, device=device)
    for r in ("max", "min"):
        for include_self in (True, False):
            same_on(
                lambda L, r=r, i=include_self: L.ones(2, 3).scatter_reduce(
                    0, L.tensor(idx), L.arange(2.0, 8.0).reshape(2, 3), r, include_self=i
                )
            )
        same_on(
            lambda L, r=r: L.ones(2, 3).scatter_reduce_(
                0, L.tensor(idx), L.arange(2.0, 8.0).reshape(2, 3), r
            )
        )

        def backward(L, r=r):  # forward only, as torch's
            a = L.ones(2, 3, requires_grad=True)
            a.scatter_reduce(0, L.tensor(idx), L.arange(2.0, 8.0).reshape(2, 3), r).sum().backward()

        raises_on(backward, match="Expected 'reduce'")
    for r in ("add", "multiply", "foo"):
        raises_on(
            lambda L, r=r: L.ones(2, 3).scatter_reduce(0, L.tensor(idx), L.ones(2, 3), r),
            match="reduce argument",
        )


# ------------------------------------------------------------------ arguments


def test_repeat_interleave_output_size():
    x = lambda L: L.tensor([1, 2, 3])
    same(lambda L: x(L).repeat_interleave(2, output_size=6))
    same(lambda L: x(L).repeat_interleave(L.tensor([1, 2, 3]), output_size=6))
    same(lambda L: L.repeat_interleave(L.tensor([1, 2]), output_size=3))
    same(lambda L: L.ones(2, 3).repeat_interleave(2, dim=1, output_size=6))
    same(lambda L: x(L).repeat_interleave(2, output_size=L.tensor(6)))
    same(lambda L: x(L).repeat_interleave(L.tensor(2), output_size=6))
    raises(lambda L: x(L).repeat_interleave(2, output_size=5), match="Invalid output_size")
    raises(lambda L: x(L).repeat_interleave(2, output_size=-1), match="Invalid output_size")
    raises(lambda L: x(L).repeat_interleave(L.tensor([1, 2, 3]), output_size=4), match="alloc")
    raises(lambda L: L.repeat_interleave(L.tensor([1, 2]), output_size=2), match="alloc")
    raises(lambda L: x(L).repeat_interleave(2, output_size=6.0), TypeError)


@pytest.mark.parametrize("device", DEVICES)
def test_searchsorted_sorter(device):
    seq = [3.0, 1, 2, 5, 4]
    rows = [[3.0, 1, 2], [9, 7, 8]]
    for L in (dl, torch):
        dev = {"device": device} if L is dl else {}
        s = L.tensor(seq, **dev)
        srt = L.argsort(s)
        got = [
            L.searchsorted(s, L.tensor([2.5, 0, 6], **dev), sorter=srt).tolist(),
            L.searchsorted(s, L.tensor([2.0, 3], **dev), right=True, sorter=srt).tolist(),
            L.searchsorted(s, L.tensor([2.0, 3], **dev), side="right", sorter=srt).tolist(),
            L.searchsorted(s, L.tensor([2.5], **dev), sorter=srt, out_int32=True).dtype,
        ]
        r = L.tensor(rows, **dev)
        got.append(L.searchsorted(r, L.tensor([[2.5], [8.5]], **dev), sorter=L.argsort(r)).tolist())
        if L is dl:
            mine = got
        else:
            assert mine[:3] == got[:3] and mine[4] == got[4]
            assert mine[3].name == str(got[3])[6:]
    s = lambda L: L.tensor(seq)
    raises(lambda L: L.searchsorted(s(L), L.tensor([2.5]), sorter=L.argsort(s(L)).int()))
    raises(lambda L: L.searchsorted(s(L), L.tensor([2.5]), sorter=L.argsort(s(L))[:3]))
    raises(lambda L: L.searchsorted(s(L), L.tensor([2.5]), sorter=L.tensor([0, 1, 2, 3, 9])))
    raises(lambda L: L.searchsorted(s(L), L.tensor([2.5]), sorter=L.tensor([0, 1, 2, 3, -1])))


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.tensor_split(L.arange(7), L.tensor(3)),
        lambda L: L.tensor_split(L.arange(7), L.tensor([1, 5])),
        lambda L: L.tensor_split(L.arange(7), L.tensor([], dtype=L.int64)),
        lambda L: L.tensor_split(L.arange(7), [-2]),
        lambda L: L.tensor_split(L.arange(7), [-20, 3]),
        lambda L: L.tensor_split(L.arange(7), [5, 2]),
        lambda L: L.tensor_split(L.arange(7), (2, 4)),
        lambda L: L.tensor_split(L.arange(7), sections=2),
        lambda L: L.tensor_split(L.arange(7), indices=[2]),
        lambda L: L.arange(7).tensor_split(L.tensor([2])),
        lambda L: L.arange(12).reshape(3, 4).tensor_split(L.tensor([1, 3]), dim=1),
    ],
)
def test_tensor_split_with_tensors_and_python_slice_rules(call):
    same(call)


def test_tensor_split_errors():
    raises(lambda L: L.tensor_split(L.arange(7), L.tensor([1, 5], dtype=L.int32)), match="long")
    raises(lambda L: L.tensor_split(L.arange(7), L.tensor([1.0, 5])), match="long")
    raises(lambda L: L.tensor_split(L.arange(7), L.tensor([[1, 5]])), match="one-dimensional")
    raises(lambda L: L.tensor_split(L.arange(7), 0), match="larger than 0")
    raises(lambda L: L.tensor_split(L.arange(7), L.tensor(-1)), match="larger than 0")
    raises(lambda L: L.tensor_split(L.tensor(1), 2), match="at least a 1-dimensional")
    raises(lambda L: L.tensor_split(L.arange(7), True), TypeError)


def test_broadcast_to_varargs_on_the_method_only():
    same(lambda L: L.ones(3).broadcast_to(2, 3))
    same(lambda L: L.ones(3).broadcast_to((2, 3)))
    same(lambda L: L.ones(1).broadcast_to(3))
    same(lambda L: L.broadcast_to(L.ones(3), [2, 3]))
    same(lambda L: L.broadcast_to(L.ones(3), size=(2, -1)))
    raises(lambda L: L.broadcast_to(L.ones(3), 2, 3), TypeError)
    raises(lambda L: L.broadcast_to(L.ones(1), 3), TypeError)


# ------------------------------------------------------------------ uint16 / uint32 / uint64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["uint16", "uint32", "uint64"])
def test_limited_unsigned_types(name, device):
    npd = np.dtype(name)
    for call in [
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)),
        lambda L: L.tensor([-1], dtype=getattr(L, name)) if name != "uint64" else L.tensor([1]),
        lambda L: L.zeros(2, dtype=getattr(L, name)),
        lambda L: L.ones(2, dtype=getattr(L, name)),
        lambda L: L.full((2,), 7, dtype=getattr(L, name)),
        lambda L: L.full((2,), -1, dtype=getattr(L, name)),
        lambda L: L.from_numpy(np.array([1, np.iinfo(npd).max], dtype=npd)),
        lambda L: L.tensor(np.array([1, 2], dtype=npd)),
        lambda L: L.as_tensor(np.array([1, 2], dtype=npd)),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).float(),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).long(),
        lambda L: L.tensor([1.5, 2.0]).to(getattr(L, name)),
        lambda L: L.tensor([-1]).to(getattr(L, name)),
        lambda L: (
            L.tensor([1, 2, 3], dtype=getattr(L, name))
            == L.tensor([3, 2, 1], dtype=getattr(L, name))
        ),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)) != 2,
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)) == L.tensor(1),
        lambda L: (
            L.tensor([1, 2, 3], dtype=getattr(L, name))
            * L.tensor([3, 2, 1], dtype=getattr(L, name))
        ),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)) + L.tensor([1.0, 2, 3]),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)) * 2.5,
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)) / 2,
        lambda L: (
            L.tensor([1, 2, 3], dtype=getattr(L, name))
            & L.tensor([3, 2, 1], dtype=getattr(L, name))
        ),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).sum(),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).cumsum(0),
        lambda L: L.tensor([3, 1, 2], dtype=getattr(L, name)).sort()[0],
        lambda L: L.cat([L.ones(2, dtype=getattr(L, name)), L.zeros(1, dtype=getattr(L, name))]),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name))[L.tensor([0, 2])],
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).clone().fill_(4),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).clone().copy_(L.tensor([4, 5, 6])),
        lambda L: L.tensor([1, 2, 3], dtype=getattr(L, name)).bool(),
        lambda L: L.promote_types(getattr(L, name), L.float32),
        lambda L: L.promote_types(getattr(L, name), getattr(L, name)),
    ]:
        same(call, device=device)
    for other in ("bool", "uint8", "int8", "int64", "uint16" if name != "uint16" else "uint32"):
        raises(
            lambda L, other=other: L.promote_types(getattr(L, name), getattr(L, other)),
            match="Promotion for uint16, uint32, uint64",
        )
    x = dl.tensor([5, 6], dtype=getattr(dl, name), device=device)
    assert x.tolist() == [5, 6] and x[0].item() == 5 and x.cpu().numpy().dtype == npd
    # type() and repr() name the device: torch's CPU strings are the reference
    assert x.cpu().type() == torch.tensor([1], dtype=getattr(torch, name)).type().replace(
        "torch", "darklib"
    )
    assert repr(x.cpu()) == f"tensor([5, 6], dtype=darklib.{name})"
    raises(
        lambda L: L.tensor([1, 2], dtype=getattr(L, name)).requires_grad_(),
        match="float",
        device=device,
    )
    with pytest.raises(RuntimeError, match=r"(?i)overflow"):
        dl.tensor(
            [2**64 if name == "uint64" else int(np.iinfo(npd).max) + 1],
            dtype=x.dtype,
            device=device,
        )


@pytest.mark.parametrize("device", DEVICES)
def test_uint64_beyond_int64(device):
    same(lambda L: L.tensor([2**64 - 1], dtype=L.uint64), device=device)
    same(lambda L: L.full((2,), 2**64 - 1, dtype=L.uint64), device=device)
    same(lambda L: L.tensor(np.array([2**64 - 1], dtype=np.uint64)), device=device)
    assert dl.randint(0, 2**64 - 1, (4,), dtype=dl.uint64, device=device).dtype == dl.uint64
    with pytest.raises(RuntimeError):  # (no silent uint64 from Python ints, as torch)
        dl.tensor([2**63], device=device)


# ------------------------------------------------------------------ overflow checks


@pytest.mark.parametrize(
    "value",
    [[-1], [300], [-256], [-255], [256], [255.7], [300.0], [-1.0], [-0.5], [True, 2], [1, 300.5]],
)
def test_tensor_creation_overflow_into_uint8(value):
    same(lambda L: L.tensor(value, dtype=L.uint8))


def test_tensor_creation_overflow_into_signed_types():
    for value, name in [([128], "int8"), ([-129], "int8"), ([200.0], "int8"), ([1e10], "int32")]:
        same(lambda L, v=value, n=name: L.tensor(v, dtype=getattr(L, n)))
    same(lambda L: L.tensor(np.array([300]), dtype=L.uint8))  # arrays wrap, as torch's


def _set(x, key, value):
    x[key] = value
    return x


@pytest.mark.parametrize(
    "call",
    [
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, L.tensor(1e5)),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, L.tensor(300)),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, L.tensor(-1)),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, L.tensor(1.5)),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, L.tensor([300])),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, L.tensor(True)),
        lambda L, m: _set(L.zeros(3, dtype=L.float16), m, L.tensor(1e5)),
        lambda L, m: _set(L.zeros(3, dtype=L.float16), m, L.tensor(float("inf"))),
        lambda L, m: _set(L.zeros(3), m, L.tensor(1e39, dtype=L.float64)),
        lambda L, m: _set(L.zeros(3), m, L.tensor(1.5, dtype=L.float64)),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, 1e5),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, 300),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, -1),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, -1.0),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), m, 255.5),
        lambda L, m: _set(L.zeros(3, dtype=L.float16), m, 1e5),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), 0, 300),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), slice(None), 300),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), slice(None), -1),
        lambda L, m: _set(L.zeros(3, dtype=L.int8), 0, 127.5),
        lambda L, m: _set(L.zeros(3, dtype=L.int8), 0, -128.0),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), slice(0, 2), L.tensor(300)),
        lambda L, m: _set(L.zeros(3, dtype=L.uint8), 0, L.tensor(1e5)),
        lambda L, m: _set(L.zeros(2, 2, dtype=L.uint8), (L.tensor([True, False]), slice(None)), 7),
    ],
)
def test_item_assignment_overflow_and_masked_fill_dispatch(call):
    same(lambda L: call(L, L.tensor([True, False, True])))


@pytest.mark.parametrize(
    "call",
    [
        lambda L: _set(L.zeros(3, dtype=L.uint8), L.tensor([0, 1]), 300),
        lambda L: _set(L.zeros(3, dtype=L.uint8), L.tensor([0, 1]), L.tensor(300)),
        lambda L: _set(L.zeros(3, dtype=L.uint8), L.tensor([0, 1]), L.tensor([300, 1])),
        lambda L: _set(L.zeros(3), L.tensor([0, 1]), L.tensor([1.0, 2.0], dtype=L.float64)),
        lambda L: _set(L.zeros(3), L.tensor([0, 1]), L.tensor(1.0, dtype=L.float64)),
        lambda L: _set(L.zeros(3), L.tensor([0, 1]), L.tensor([1, 2])),
        lambda L: _set(L.zeros(3), L.tensor([True, False, True]), L.tensor([1.0, 2.0]).double()),
        lambda L: _set(L.zeros(3), L.tensor([True, False, True]), L.tensor([1, 2])),
        lambda L: _set(L.zeros(3, dtype=L.uint8), L.tensor([0]), L.tensor(True)),
        lambda L: _set(L.zeros(3, 3), (L.tensor([0, 1]), L.tensor([0, 1])), L.ones(2).double()),
        lambda L: _set(L.zeros(3, 3), (L.tensor([0, 1]), slice(None)), L.ones(3).double()),
        lambda L: _set(L.zeros(3), [0, 1], L.tensor([1.0, 2.0], dtype=L.float64)),
        lambda L: _set(L.zeros(3), slice(0, 2), L.tensor([1.0, 2.0], dtype=L.float64)),
        lambda L: _set(L.zeros(3), 0, L.tensor([1.0], dtype=L.float64)),
        lambda L: _set(L.zeros(3, dtype=L.uint8), L.tensor([0, 1]), L.tensor(7, dtype=L.uint8)),
    ],
)
def test_index_put_requires_matching_dtypes(call):
    d, t = both(call)
    if isinstance(t, Exception):
        for phrase in ("Index put requires the source and destination dtypes match", "overflow"):
            assert (phrase in str(d)) == (phrase in str(t)), (d, t)
    else:
        assert d.tolist() == t.tolist()


def test_index_put_function_follows_the_same_rule():
    m = lambda L: (L.tensor([True, False, True]),)
    same(lambda L: L.zeros(3).index_put(m(L), L.tensor(2.0, dtype=L.float64)))
    raises(lambda L: L.zeros(3).index_put(m(L), L.tensor([2.0, 3.0], dtype=L.float64)))
    raises(lambda L: L.zeros(3, dtype=L.uint8).index_put(m(L), L.tensor(300)))


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.zeros(3, dtype=L.uint8).fill_(300),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(-1),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(-1.0),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(-0.0),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(255.0),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(255.5),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(np.float64(-1)),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(np.int64(-1)),
        lambda L: L.zeros(3, dtype=L.uint8).fill_(L.tensor(300)),
        lambda L: L.zeros(3, dtype=L.uint8).masked_fill(L.tensor([True, False, True]), 300),
        lambda L: L.zeros(3, dtype=L.uint8).masked_fill(L.tensor([True, False, True]), -1.0),
        lambda L: L.zeros(3, dtype=L.uint8).masked_fill(
            L.tensor([True, False, True]), L.tensor(300)
        ),
        lambda L: L.zeros(3, dtype=L.float16).masked_fill(
            L.tensor([True, False, True]), L.tensor(1e5)
        ),
        lambda L: L.full((2,), 300, dtype=L.uint8),
        lambda L: L.full((2,), -1.0, dtype=L.uint8),
        lambda L: L.zeros(3, dtype=L.uint8).index_fill(0, L.tensor([0]), 300),
        lambda L: L.zeros(3, dtype=L.float16).fill_(1e5),
    ],
)
def test_fills_check_overflow_as_torch(call):
    same(call)


def test_maximum_minimum_take_tensors_only():
    u8 = lambda L: L.tensor([1, 2], dtype=L.uint8)
    raises(lambda L: L.maximum(u8(L), -1), TypeError, match="must be Tensor")
    raises(lambda L: L.minimum(u8(L), np.int64(-1)), TypeError, match="must be Tensor")
    raises(lambda L: L.maximum(3, u8(L)), TypeError, match="must be Tensor")
    raises(lambda L: L.tensor([1.0, 2.0]).maximum(1.5), TypeError, match="must be Tensor")
    same(lambda L: L.maximum(u8(L), L.tensor(-1)))  # a 0-d tensor: it wraps, as torch's
    same(lambda L: L.minimum(L.tensor([1.0, 5.0]), L.tensor(2.0)))


# ------------------------------------------------------------------ var / std past their dof


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("correction", [2, 3, 4, 5, 2.5])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_var_std_gradients_with_correction_beyond_n(fn, correction, dim, device):
    data = [[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]]
    res = {}
    for L in (dl, torch):
        dev = {"device": device} if L is dl else {}
        x = L.tensor(data, requires_grad=True, **dev)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {} if dim is None else {"dim": dim}
            y = getattr(x, fn)(correction=correction, **kw)
            (y * L.tensor(-1.0, **dev)).sum().backward()
        res[L] = (y.detach().cpu().numpy(), x.grad.cpu().numpy())
    np.testing.assert_array_equal(res[dl][0], res[torch][0])
    np.testing.assert_allclose(res[dl][1], res[torch][1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", ["var_mean", "std_mean"])
def test_var_mean_gradients_with_correction_beyond_n(fn, device):
    res = {}
    for L in (dl, torch):
        dev = {"device": device} if L is dl else {}
        x = L.tensor([5.0, 6.0], requires_grad=True, **dev)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v, m = getattr(L, fn)(x, correction=3)
        (v + m).backward()
        res[L] = x.grad.cpu().numpy()
    np.testing.assert_array_equal(res[dl], res[torch])


# ------------------------------------------------------------------ copy_ into a leaf


def test_copy_from_a_tensor_that_requires_grad_into_a_leaf():
    out = {}
    for L in (dl, torch):
        d = L.zeros(3)
        d.grad = L.ones(3)
        s = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        v = d._version
        d.copy_(s * 2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch: no warning, the old .grad stays
            kept = d.grad.tolist()
        d.sum().backward()
        out[L] = (d.is_leaf, d.requires_grad, kept, d.grad.tolist(), s.grad.tolist())
        assert d._version == v + 1
    assert out[dl] == out[torch] == (False, True, [1, 1, 1], [1, 1, 1], [2, 2, 2])
    raises(lambda L: L.zeros(3, requires_grad=True).copy_(L.ones(3)), match="leaf")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("a, b", [("uint16", "int64"), ("uint64", "int64"), ("uint32", "bool")])
def test_limited_unsigned_types_refuse_mixed_integer_arithmetic_as_torch(a, b, device):
    D = lib_on(dl, device)
    with pytest.raises(RuntimeError):
        torch.zeros(2, dtype=getattr(torch, a)) + torch.ones(2, dtype=getattr(torch, b))
    with pytest.raises(RuntimeError, match="Promotion for uint16, uint32, uint64"):
        D.zeros(2, dtype=getattr(dl, a)) + D.ones(2, dtype=getattr(dl, b))
    assert (D.zeros(2, dtype=getattr(dl, a)) + D.ones(2)).dtype == dl.float32
